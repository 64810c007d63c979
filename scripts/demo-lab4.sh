#!/usr/bin/env bash
# `make demo-lab4`: lab 4's guests: the 16550A probed like Linux probes it, a line read through the UART and echoed,
# the hypercall doorbell, KVM's in-kernel VMCALL, the file service, and what a byte costs each way.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
demo_init "$@"


section "lab4/uart: reset values, Linux's probe (IER, scratch, loopback, FIFO), 115200 8N1, then a line out"
demo_run long lab4/uart
echo "   port 0x3fd is LSR, 0x3f8 THR: the polled driver reads LSR.THRE, then writes THR,"
echo "   two exits for every byte of the greeting. No interrupt controller here: IRQ 4 is left for the irqchip lab."
echo "   the first accesses, as Linux's 8250 probe makes them:"
head -n 14 "$tmp/exits.txt" | sed 's/^/     /'

section "lab4/echo: a line typed on the VMM's stdin (here piped in), read by polling LSR.DR, echoed back"
printf 'hello from the host\n' | demo_run long lab4/echo --serial-in -
echo "   by hand: $bin run --mode long --guest lab4/echo --serial-in - --max-exits 0 --timeout 0"

section "lab4/hypercall: one doorbell OUT per request, the VMM answers in RAX; bad requests refused, nothing crashes"
demo_run long lab4/hypercall
echo "   port 0x510 is the doorbell: 46 bytes in one exit, where the UART took 92."

section "lab4/vmcall: KVM's own VMCALL/VMMCALL, answered inside the kernel"
demo_run long lab4/vmcall --timeout 3000
echo "   (KVM-PVM, software virtualization without SVM/VMX, does not answer VMCALL: the guest spins there.)"
echo "   1000 hypercalls, not one of them in the exit dump: KVM answered -KVM_ENOSYS without leaving the kernel."
echo "   That is why a Type 2 VMM on KVM takes its hypercalls through a port (KVM_CAP_EXIT_HYPERCALL aside)."

section "lab4/files: the file service (--share DIR): cat a file of the share, write a copy back, escapes refused"
mkdir "$tmp/share"
printf 'a file of the host, read by the guest through MVM_HC_FS_READ\n' >"$tmp/share/hello.txt"
demo_run long lab4/files --share "$tmp/share"
echo "   what the guest wrote back, $tmp/share/from-guest.txt:"
sed 's/^/     /' "$tmp/share/from-guest.txt"
echo "   by hand: $bin run --mode long --guest lab4/files --share DIR (DIR holding hello.txt)"

section "exits per byte (make bench for the timings)"
if [ -x "$build/bin/minivmm-bench" ]; then
    MINIVMM_GUEST_DIR=$build/guests "$build/bin/minivmm-bench" --benchmark_filter='^lab4/.*/soft' \
        --benchmark_min_time=0.01 2>/dev/null |
        sed -n 's/^\(lab4\/[^ ]*\).*\(exits_per_byte=[^ ]*\).*/   \1  \2/p'
else
    echo "   (make bench-bin builds the benchmarks)"
fi
echo "   labs/lab4-uart/README.md is the handout; make grade LAB=4 grades it."
