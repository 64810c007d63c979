#!/bin/sh
# Runs the preload tests' unmodified KVM programs and prints what they print, one section per run, for
# test_preload.sh to compare between real KVM and the soft backend. POSIX sh: it also runs under busybox in QEMU.
#   tests/preload/programs.sh BIN_DIR GUEST_DIR [PREFIX...]
# BIN_DIR holds kvmhello, kvmfds, kvmsave and kvmsmm, GUEST_DIR lab 1's guest images; PREFIX (e.g. minivmm exec --)
# runs each.
set -u
bin=${1:?usage: programs.sh BIN_DIR GUEST_DIR [PREFIX...]}
guests=${2:?usage: programs.sh BIN_DIR GUEST_DIR [PREFIX...]}
shift 2
section() { # section NAME COMMAND...
    name=$1
    shift
    echo "=== $name"
    "$@" 2>&1 </dev/null
    echo "status=$?"
}
section "kvmhello" "$@" "$bin/kvmhello"
for g in halt hello arith io; do
    section "kvmhello lab1/$g" "$@" "$bin/kvmhello" "$guests/$g.bin"
done
section "kvmfds" "$@" "$bin/kvmfds"
section "kvmsave" "$@" "$bin/kvmsave"
section "kvmsmm" "$@" "$bin/kvmsmm"
echo "=== end"
