# lab5-virtio's make fragment: the student's file as MAKEVAR:file (the grader sets LAB5_SRC to a student's copy);
# the transport and the device are parts too, with no copy in solutions/, so every build takes them from here.
# Its C guests as GUESTDIR:BITS (guest-kernels/GUESTDIR/*.c), on the runtime's virtio driver (runtime/virtio.c).
LABS += lab5-virtio
lab5-virtio_PARTS := LAB5_SRC:lab5_virtq.c LAB5_MMIO_SRC:lab5_mmio.c LAB5_NET_SRC:lab5_net.c
lab5-virtio_GUESTS := lab5:64

.PHONY: demo-lab5
## make demo-lab5       lab 5's guests: virtio-net over virtio-mmio, kicks per batch, notification suppression, a pcap
demo-lab5: all
	$(Q)./scripts/demo-lab5.sh $(O)
