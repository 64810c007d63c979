#!/usr/bin/env bash
# `make demo-lab6`: lab 6's paravirtual clock: time read from a shared page with no exit, next to KVM's kvmclock;
# a pause with time standing still and with time jumping; and what one time read costs each way.
set -euo pipefail
build=${1:-build}
bin=$build/bin/minivmm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bold=$(tput bold 2>/dev/null || true)
plain=$(tput sgr0 2>/dev/null || true)

section() { printf '\n%s== %s%s\n' "$bold" "$1" "$plain"; }

run() { # run GUEST [ARGS...]: its output, how it ended, its exits by port
    local guest=$1
    shift
    # A guest that fails still shows what it did: the demo goes on.
    "$bin" run --mode long --guest "$guest" --exits "$tmp/exits.txt" "$@" 2>"$tmp/summary.txt" | sed 's/^/   | /' ||
        true
    sed 's/^minivmm: /   /' "$tmp/summary.txt"
    awk '{ k = $1 " " $2 " " $3; n[k]++ } END { for (k in n) printf "   %6d  %s\n", n[k], k }' "$tmp/exits.txt" |
        sort -rn
}

section "lab6/clock: the page asked for with one hypercall, then 20000 time reads with no exit, beside kvmclock"
run lab6/clock
echo "   port 0x510 is the doorbell: 3 requests the VMM refuses on purpose (unaligned, outside RAM, a stray"
echo "   argument), then MVM_HC_PVCLOCK(page). Port 0x3f8 is the console, 0x500 the DONE. The reads: 0 exits."
echo "   kvmclock (MSR_KVM_SYSTEM_TIME_NEW) is answered inside KVM: its WRMSR is not in the dump either."

section "a pause, time standing still: --pause-at 300 --pause-for 500 --pause-clock stop"
run lab6/pause --pause-at 300 --pause-for 500 --pause-clock stop
echo "   KVM_GET_CLOCK at the pause, KVM_SET_CLOCK with it at the resume: kvmclock takes up where it stopped;"
echo "   lab 6's page is moved the same way (lab6_clock_resume with add_ns = 0). What QEMU does for 'stop'/'cont'."

section "a pause, time jumping: --pause-clock jump"
run lab6/pause --pause-at 300 --pause-for 500 --pause-clock jump
echo "   kvmclock runs on; the page's new point adds the pause (add_ns = its length), so the two agree again."
echo "   By hand: $bin run --mode long --guest lab6/pause, then kill -USR1 and kill -USR2 its pid."

section "what one time read costs (make bench for the full run)"
if [ -x "$build/bin/minivmm-bench" ]; then
    MINIVMM_GUEST_DIR=$build/guests "$build/bin/minivmm-bench" --benchmark_filter='^lab6/' \
        --benchmark_min_time=0.05 2>/dev/null |
        sed -n 's/^\(lab6\/[^ ]*\)\/manual_time.*\(exits_per_iter=[^ ]*\) \(ns_per_read=[^ ]*\).*/   \1  \2  \3/p'
    echo "   page: version, RDTSC, 4 fields, version; rdtsc: the floor; mmio: an 8-byte load that traps (one"
    echo "   KVM_EXIT_MMIO, like a CMOS clock); hypercall: lab 4's MVM_HC_CLOCK_NS (one doorbell exit)."
    echo "   On kvm here (KVM-PVM, no SVM/VMX) RDTSC itself traps in the kernel: read the soft rows' ratios."
else
    echo "   (make bench-bin builds the benchmarks)"
fi
echo "   labs/lab6-pvclock/README.md is the handout; make grade LAB=6 grades it."
