# lab6-pvclock's make fragment: the student's file as MAKEVAR:file (the grader sets LAB6_SRC to a student's copy),
# its C guests as GUESTDIR:BITS (guest-kernels/GUESTDIR/*.c) on the runtime's pvclock reader (runtime/pvclock.c).
LABS += lab6-pvclock
lab6-pvclock_PARTS := LAB6_SRC:lab6_pvclock.c
lab6-pvclock_GUESTS := lab6:64

.PHONY: demo-lab6
## make demo-lab6       lab 6's guests: time read with no exit, across a pause (time stands or jumps), next to kvmclock
demo-lab6: all
	$(Q)./scripts/demo-lab6.sh $(O)

# bench/bench_lab6.c runs lab6/readcost: one time read through the page, RDTSC, the trapping clock, the hypercall.
bench-bin: $(O)/guests/lab6/readcost.bin
