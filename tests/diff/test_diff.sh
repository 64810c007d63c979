#!/usr/bin/env bash
# Fidelity test: every guest of guests.txt must give the same verdict, console output, exit dump and final
# registers on the soft backend as on the kernel's real KVM (the oracle). Any difference fails with a diff.
#   tests/diff/test_diff.sh BUILD_DIR [KVM_DUMPS]
# KVM_DUMPS: dump-all.sh output taken on real KVM elsewhere (inside QEMU); without it, real KVM must be here.
set -u
build=${1:?usage: test_diff.sh BUILD_DIR [KVM_DUMPS]}
here=$(dirname "$0")
list=$here/guests.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0

# split DUMPS DIR: one file per guest
split() {
    mkdir -p "$2"
    awk -v dir="$2" '
        /^=== GUEST / { name = $3; gsub("/", "_", name); file = dir "/" name; printf "" > file; next }
        /^=== END / { close(file); file = ""; next }
        file != "" { print >> file }' "$1"
}

nguests=$(grep -cv '^#' "$list")
if [ -n "${2:-}" ]; then
    cp "$2" "$tmp/kvm.txt"
elif [ -r "${MINIVMM_KVM_DEVICE:-/dev/kvm}" ] && [ -w "${MINIVMM_KVM_DEVICE:-/dev/kvm}" ]; then
    "$here/dump-all.sh" "$build" kvm "$list" >"$tmp/kvm.txt"
else
    echo "skip: no real KVM here and no dumps from the QEMU runner: $nguests guests not compared"
    echo "diff: 0 passed, 0 failed, $nguests skipped"
    exit 0
fi
"$here/dump-all.sh" "$build" soft "$list" >"$tmp/soft.txt"
split "$tmp/kvm.txt" "$tmp/kvm"
split "$tmp/soft.txt" "$tmp/soft"

for guest in $(grep -v '^#' "$list" | awk 'NF { print $1 }'); do
    f=$(tr / _ <<<"$guest")
    if [ ! -s "$tmp/kvm/$f" ]; then
        echo "FAIL $guest: no result from real KVM"
        failed=$((failed + 1))
    elif diff -u --label "kvm $guest" --label "soft $guest" "$tmp/kvm/$f" "$tmp/soft/$f" >"$tmp/d"; then
        echo "ok   $guest ($(grep -c . <(sed -n '/^--- exits/,/^--- regs/p' "$tmp/kvm/$f")) lines identical)"
        passed=$((passed + 1))
    else
        echo "FAIL $guest: the soft backend differs from real KVM:"
        head -n 40 "$tmp/d" | sed 's/^/     /'
        failed=$((failed + 1))
    fi
done
echo "diff: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
