#!/usr/bin/env bash
# `make demo-lab6`: lab 6's paravirtual clock: time read from a shared page with no exit, next to KVM's kvmclock;
# a pause with time standing still and with time jumping; a migration to another TSC rate; steal time rising
# under a competing thread; and what one time read costs each way.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
demo_init "$@"


section "lab6/clock: one hypercall for the page, then 20000 reads with no exit"
demo_run long lab6/clock
echo "   port 0x510 is the doorbell: 3 requests the VMM refuses on purpose"
echo "   (unaligned, outside RAM, a stray argument), then MVM_HC_PVCLOCK(page)."
echo "   Port 0x3f8 is the console, 0x500 the DONE. The reads: 0 exits. kvmclock"
echo "   (MSR_KVM_SYSTEM_TIME_NEW) is answered inside KVM: no WRMSR in the dump."

section "a pause, time standing still: --pause-at 300 --pause-for 500"
demo_run long lab6/pause --pause-at 300 --pause-for 500 --pause-clock stop
echo "   KVM_GET_CLOCK at the pause, KVM_SET_CLOCK with it at the resume:"
echo "   kvmclock takes up where it stopped, and KVM publishes its page again;"
echo "   lab 6's page is moved the same way (lab6_clock_resume, add_ns = 0)."
echo "   What QEMU does for 'stop'/'cont'."

section "a pause, time jumping: --pause-clock jump"
demo_run long lab6/pause --pause-at 300 --pause-for 500 --pause-clock jump
echo "   kvmclock runs on; the page's new point adds the pause (add_ns = its"
echo "   length), so the two agree again. By hand: minivmm run --mode long"
echo "   --guest lab6/pause, then kill -USR1 and kill -USR2 its pid."

section "a migration: 10 million reads, at 2 s a pause and a 3 GHz TSC"
demo_run long lab6/migrate --pause-at 2000 --pause-for 300 --migrate-tsc-khz 3000000
echo "   In the pause the VMM reads IA32_TSC, sets KVM_SET_TSC_KHZ, writes"
echo "   IA32_TSC back and calls KVM_SET_CLOCK (kvmclock is published again)."
echo "   The soft backend runs its TSC at any rate; KVM where the CPU scales"
echo "   TSCs (KVM_CAP_TSC_CONTROL). At the resume lab 6 reads the new rate and"
echo "   TSC and moves its line: the new scale says 3 GHz, and none of the 10"
echo "   million reads went backwards or exited."

section "steal time: lab6/steal, and a busy loop on the same core from 1 s"
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then
    (sleep 1 && taskset -c 0 timeout 1.5 sh -c 'while :; do :; done') &
    spinner=$!
    taskset -c 0 "$bin" run --mode long --guest lab6/steal 2>"$tmp/summary.txt" | sed 's/^/   | /' || true
    wait "$spinner" || true
    sed 's/^minivmm: /   /' "$tmp/summary.txt" | fold -s -w 78
    echo "   Each round the guest spins 100 ms of its time, then asks lab 6 for"
    echo "   an update (MVM_HC_STEAL, one exit): the VMM adds its vCPU thread's"
    echo "   run delay (/proc/thread-self/schedstat: runnable, not running). KVM's"
    echo "   page (MSR_KVM_STEAL_TIME) counts the same at each KVM_RUN. With the"
    echo "   busy loop on its core the vCPU thread gets about half of it: steal"
    echo "   rises towards 50 ms a round, and falls back when the loop ends."
else
    echo "   (taskset is missing or cannot pin here: this needs one core for two)"
fi

section "what one time read costs (make bench for the full run)"
if [ -x "$build/bin/minivmm-bench" ]; then
    MINIVMM_GUEST_DIR=$build/guests "$build/bin/minivmm-bench" --benchmark_filter='^lab6/read/' \
        --benchmark_min_time=0.05 2>/dev/null |
        sed -n 's/^\(lab6\/[^ ]*\)\/manual_time.*\(exits_per_iter=[^ ]*\) \(ns_per_read=[^ ]*\).*/   \1  \2  \3/p'
    echo "   page: version, RDTSC, 4 fields, version; rdtsc: the floor; mmio: an"
    echo "   8-byte load that traps (one KVM_EXIT_MMIO, like a CMOS clock);"
    echo "   hypercall: lab 4's MVM_HC_CLOCK_NS (one doorbell exit). On KVM-PVM"
    echo "   (no SVM/VMX) RDTSC itself traps in the kernel: read the soft rows."
else
    echo "   (make bench-bin builds the benchmarks)"
fi
echo "   labs/lab6-pvclock/README.md is the handout; make grade LAB=6 grades it."
