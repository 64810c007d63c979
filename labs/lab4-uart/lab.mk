# lab4-uart's make fragment: the student's files as MAKEVAR:file (the grader sets MAKEVAR to a student's copy; the
# file service's host side, lab4_fs_host.c, is a part too, with no copy in solutions/: every build takes it from
# here), its C guests as GUESTDIR:BITS (guest-kernels/GUESTDIR/*.c), its demo, and the guest its benchmarks run.
LABS += lab4-uart
lab4-uart_PARTS := LAB4_SRC:lab4_uart.c LAB4_HC_SRC:lab4_hypercall.c LAB4_FS_SRC:lab4_files.c \
                   LAB4_FS_HOST_SRC:lab4_fs_host.c
lab4-uart_GUESTS := lab4:64

.PHONY: demo-lab4
## make demo-lab4       lab 4's guests: the UART probed like Linux does, a line read and echoed, hypercalls vs the UART
demo-lab4: all
	$(Q)./scripts/demo-lab4.sh $(O)

# bench/bench_lab4.c runs lab4/bytes: bytes out through the UART, the console hypercall, or in-kernel VMCALL.
bench-bin: $(O)/guests/lab4/bytes.bin
