#!/usr/bin/env bash
# The drop-in /dev/kvm (libminivmm-kvm.so, minivmm exec): unmodified KVM programs (kvmhello, kvmfds, kvmsave, kvmsmm) print
# on the soft backend what they print on real KVM; the kit's own guests, run by `minivmm run --backend kvm` through the
# library, give exactly the soft backend's own results (which the fidelity test holds to real KVM's); nothing that is
# not a KVM descriptor is touched; bad use is refused.
#   tests/preload/test_preload.sh [--kvm] BUILD      --kvm: also run the programs on real KVM inside QEMU, now
#   tests/preload/test_preload.sh --record BUILD     take kvm-expected.txt again, on real KVM inside QEMU
# Real KVM's output is kept in tests/preload/kvm-expected.txt (see its header). Ends with one line:
# "preload: N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.." || exit 2
live=0 record=0 build=
for a in "$@"; do
    case $a in
    --kvm) live=1 ;;
    --record) record=1 ;;
    *) build=$a ;;
    esac
done
build=${build:?usage: test_preload.sh [--kvm | --record] BUILD}
minivmm=$(realpath "$build/bin/minivmm")
bin=$build/tests/preload
expected=tests/preload/kvm-expected.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 skip=0 runner=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/     /' <<<"$2" | head -n 40; }
skipped() { skip=$((skip + 1)); echo "skip $1"; }

# kvm_run OUT: the programs on real KVM inside QEMU, their sections into OUT; false if QEMU gave none ($runner: the
# runner's status)
kvm_run() {
    local p=$tmp/payload
    mkdir -p "$p/bin" "$p/guests"
    cp "$bin/kvmhello" "$bin/kvmfds" "$bin/kvmsave" "$bin/kvmsmm" "$p/bin/" && cp "$build"/guests/lab1/*.bin "$p/guests/" &&
        cp tests/preload/programs.sh "$p/" || return 1
    ./tests/kvm-in-qemu/run.sh --timeout 240 "$p" -- ./programs.sh bin guests >"$tmp/qemu.raw" 2>&1
    runner=$?
    tr -d '\r' <"$tmp/qemu.raw" >"$tmp/qemu.log"
    sed -n '/^=== kvmhello$/,/^=== end$/p' "$tmp/qemu.log" >"$1"
    grep -q '^=== end$' "$1"
}

if [ "$record" = 1 ]; then
    kvm_run "$tmp/kvm.txt" || { echo "no output from real KVM inside QEMU:"; tail -n 20 "$tmp/qemu.log"; exit 1; }
    kernel=$(cat build/kvm-in-qemu/kernel/PACKAGE 2>/dev/null || echo "?")
    {
        echo "# What tests/preload/programs.sh prints on real KVM: $kernel, kvm_amd, inside QEMU"
        echo "# (tests/kvm-in-qemu/run.sh, -cpu max). The soft backend must print the same. Taken again with:"
        echo "#   tests/preload/test_preload.sh --record BUILD"
        cat "$tmp/kvm.txt"
    } >"$expected"
    echo "recorded $expected ($(grep -c '^=== ' "$expected") sections)"
    exit 0
fi

# split FILE DIR: one file per section
split() {
    mkdir -p "$2"
    awk -v dir="$2" '/^# / { next } /^=== / { name = substr($0, 5); gsub("[/ ]", "_", name); file = dir "/" name; printf "" > file; next }
        file != "" { print >> file }' "$1"
}

# compare LABEL REF_DIR OURS_DIR: one verdict per section of REF_DIR
compare() {
    local f
    for f in "$2"/*; do
        [ "$(basename "$f")" = end ] && continue
        if [ ! -f "$3/$(basename "$f")" ]; then
            bad "$1 $(basename "$f"): no output on soft"
        elif diff -u --label "real KVM" --label "soft (preloaded)" "$f" "$3/$(basename "$f")" >"$tmp/d"; then
            ok "$1 $(basename "$f" | tr _ ' '): $(wc -l <"$f") lines identical"
        else
            bad "$1 $(basename "$f" | tr _ ' '): the soft backend, preloaded, differs from real KVM" "$(cat "$tmp/d")"
        fi
    done
}

echo "== minivmm exec: usage and errors"
[ -f "$build/lib/libminivmm-kvm.so" ] && ok "the library is built" || bad "$build/lib/libminivmm-kvm.so is missing"
"$minivmm" exec >"$tmp/o" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "no program given" "$tmp/o" && ok "no program: status 2 and says so" ||
    bad "no program: status $rc" "$(cat "$tmp/o")"
"$minivmm" exec --lib "$tmp/none.so" -- true >"$tmp/o" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "preload library" "$tmp/o" && ok "a missing library: status 2, named" ||
    bad "a missing library: status $rc" "$(cat "$tmp/o")"
"$minivmm" exec -- "$tmp/no-such-program" >"$tmp/o" 2>&1
rc=$?
[ $rc -eq 127 ] && ok "a missing program: status 127" || bad "a missing program: status $rc" "$(cat "$tmp/o")"
"$minivmm" exec --frobnicate -- true >"$tmp/o" 2>&1
rc=$?
[ $rc -eq 2 ] && ok "an unknown option: status 2" || bad "an unknown option: status $rc" "$(cat "$tmp/o")"

echo "== nothing that is not /dev/kvm is touched"
echo "not a KVM device" >"$tmp/kvm"
out=$(cd "$tmp" && "$minivmm" exec -- cat kvm ./kvm "$tmp/kvm" 2>&1)
[ "$out" = "$(printf 'not a KVM device\n%.0s' 1 2 3)" ] && ok "a file named kvm elsewhere is that file" ||
    bad "a file named kvm elsewhere" "$out"
"$minivmm" exec -- sh -c 'exec 7>"$1"; echo fd7 >&7; exec 7>&-; exec 8<"$1"; cat <&8; exit 9' sh "$tmp/f" >"$tmp/o" 2>&1
rc=$?
[ $rc -eq 9 ] && [ "$(cat "$tmp/o")" = fd7 ] && ok "a shell's own fds, dup2 and close: as without the library" ||
    bad "a shell's fds under the library: status $rc" "$(cat "$tmp/o")"

echo "== unmodified KVM programs: soft (preloaded) against real KVM"
tests/preload/programs.sh "$bin" "$build/guests/lab1" "$minivmm" exec -- >"$tmp/soft.txt"
split "$tmp/soft.txt" "$tmp/soft"
split "$expected" "$tmp/kvm-rec"
compare "recorded real KVM:" "$tmp/kvm-rec" "$tmp/soft"
if [ "$live" = 1 ]; then
    if [ "${MINIVMM_NO_QEMU:-0}" = 1 ] || ! command -v qemu-system-x86_64 >/dev/null; then
        skipped "real KVM inside QEMU, now: MINIVMM_NO_QEMU=1 or no qemu-system-x86_64"
    elif kvm_run "$tmp/kvm.txt"; then
        split "$tmp/kvm.txt" "$tmp/kvm-live"
        compare "real KVM now (QEMU):" "$tmp/kvm-live" "$tmp/soft"
        if diff -q <(grep -v '^# ' "$expected") "$tmp/kvm.txt" >/dev/null; then
            ok "real KVM now prints what $expected recorded"
        else
            bad "real KVM now differs from $expected (tests/preload/test_preload.sh --record BUILD takes it again)" \
                "$(diff <(grep -v '^# ' "$expected") "$tmp/kvm.txt")"
        fi
    elif [ "$runner" -eq 2 ] || [ "$runner" -eq 4 ]; then
        skipped "real KVM inside QEMU, now: the runner could not start it (status $runner: no kernel, or no KVM in the VM)"
    else
        bad "real KVM inside QEMU gave no output (runner status $runner)" "$(tail -n 20 "$tmp/qemu.log")"
    fi
fi

echo "== the kit's own guests: minivmm run --backend kvm, its /dev/kvm the preload library's"
# A build dir whose minivmm runs under the library with the kvm backend: test_diff.sh's "soft" runs are these.
mkdir -p "$tmp/via/bin"
cat >"$tmp/via/bin/minivmm" <<EOF
#!/bin/sh
# minivmm run --backend soft ... becomes minivmm exec -- minivmm run --backend kvm ...
n=\$#
i=0
prev=
for a in "\$@"; do
    i=\$((i + 1))
    [ "\$prev" = --backend ] && [ "\$a" = soft ] && a=kvm
    set -- "\$@" "\$a"
    prev=\$a
done
shift \$n
# The library answers for /dev/kvm only: a machine playing one without KVM (MINIVMM_KVM_DEVICE) must not send the
# kvm backend elsewhere here.
unset MINIVMM_KVM_DEVICE
exec "$minivmm" exec -- "$minivmm" "\$@"
EOF
chmod +x "$tmp/via/bin/minivmm"
# Against the soft backend called directly: the library must add nothing and lose nothing. Soft against real KVM is
# the fidelity test's (tests/diff/test_diff.sh); the two together put the library's runs against real KVM.
what="the soft backend called directly"
MINIVMM_GUEST_DIR=$build/guests tests/diff/dump-all.sh "$build" soft tests/diff/guests.txt >"$tmp/direct.txt"
dumps=$tmp/direct.txt
MINIVMM_GUEST_DIR=$build/guests tests/diff/test_diff.sh "$tmp/via" "$dumps" >"$tmp/diff.txt" 2>&1
read -r p f s <<<"$(sed -n 's/^diff: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' "$tmp/diff.txt")"
if [ -n "${p:-}" ] && [ "$f" -eq 0 ] && [ "$p" -gt 0 ]; then
    ok "$p guests of tests/diff/guests.txt: verdict, console, exits and registers as $what"
    skip=$((skip + s))
else
    bad "the kit's guests through the library differ from $what (in test_diff.sh's words below, \"kvm\" is the
     soft backend called directly, \"soft\" the run through the library)" "$(grep -v '^ok' "$tmp/diff.txt")"
fi

echo "preload: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
