#!/bin/sh
# Runs every guest of guests.txt on one backend and prints its verdict, exit dump and final registers
# between markers, for test_diff.sh to compare. POSIX sh: it also runs under busybox inside QEMU.
#   tests/diff/dump-all.sh BUILD_DIR BACKEND GUESTS_TXT
set -u
build=${1:?usage: dump-all.sh BUILD_DIR BACKEND GUESTS_TXT}
backend=${2:?}
list=${3:?}
tmp=${TMPDIR:-/tmp}/minivmm-dump.$$
grep -v '^#' "$list" | while read -r guest args; do
    [ -n "$guest" ] || continue
    # shellcheck disable=SC2086
    "$build/bin/minivmm" run --backend "$backend" --guest "$guest" --timeout 20000 -q \
        --exits "$tmp.exits" --final-regs "$tmp.regs" $args >"$tmp.out" 2>&1
    rc=$?
    echo "=== GUEST $guest"
    echo "status=$rc"
    echo "--- console"
    cat "$tmp.out"
    echo "--- exits"
    cat "$tmp.exits" 2>/dev/null
    echo "--- regs"
    # After a triple fault KVM resets the vCPU: RDX then holds the CPU signature of the backend's CPUID table.
    if [ "$rc" -eq 3 ]; then
        sed 's/rdx=[0-9a-f]*/rdx=(cpu-signature)/' "$tmp.regs" 2>/dev/null
    else
        cat "$tmp.regs" 2>/dev/null
    fi
    echo "=== END $guest"
done
rm -f "$tmp.exits" "$tmp.regs" "$tmp.out"
