#!/usr/bin/env bash
# CLI tests: every bad input gets one clear line and the documented exit status; guests' verdicts map to statuses.
#   tests/cli/test_cli.sh BUILD_DIR [BACKEND]
set -u
build=${1:?usage: test_cli.sh BUILD_DIR [BACKEND]}
backend=${2:-auto}
bin=$build/bin/minivmm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# check NAME WANT_STATUS WANT_TEXT -- ARGS...: runs minivmm, checks status and that stderr+stdout contain WANT_TEXT.
check() {
    local name=$1 want_rc=$2 want_text=$3
    shift 4
    local out rc
    out=$("$bin" "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want_rc" ] && grep -qF -- "$want_text" <<<"$out"; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name: expected status $want_rc and text '$want_text', got status $rc and:"
        sed 's/^/     | /' <<<"$out" | head -n 8
    fi
}

: >"$tmp/empty.bin"
head -c 3000000 /dev/zero >"$tmp/big.bin"
printf '\xf4' >"$tmp/hlt.bin"

check help 0 "usage: minivmm run" -- --help
check no-args 2 "usage:" --
check unknown-command 2 "unknown command 'fly'" -- fly
check unknown-flag 2 "unknown option '--frobnicate'" -- run --frobnicate "$tmp/hlt.bin"
check flag-without-value 2 "needs a value" -- run "$tmp/hlt.bin" --mem
check missing-file 2 "No such file or directory" -- run "$tmp/nope.bin"
check directory-image 2 "not a regular file" -- run "$tmp"
check empty-image 2 "empty file" -- run "$tmp/empty.bin"
check image-too-big 2 "do not fit in guest RAM" -- run --backend "$backend" "$tmp/big.bin"
check entry-outside-ram 2 "entry 0x300000 is outside guest RAM" -- run --entry 0x300000 "$tmp/hlt.bin"
check bad-mem 2 "--mem: '12Q'" -- run --mem 12Q "$tmp/hlt.bin"
check bad-number 2 "--max-exits: 'lots'" -- run --max-exits lots "$tmp/hlt.bin"
check bad-backend 2 "unknown backend 'vmware'" -- run --backend vmware "$tmp/hlt.bin"
check bad-mode 2 "--mode 'unreal'" -- run --mode unreal "$tmp/hlt.bin"
check unknown-guest 2 "no built-in guest 'lab9/nothing'" -- run --guest lab9/nothing
check image-and-guest 2 "not both" -- run --guest lab1/hello "$tmp/hlt.bin"
MINIVMM_KVM_DEVICE=$tmp/no-kvm check no-dev-kvm 2 "cannot open /dev/kvm" -- run --backend kvm "$tmp/hlt.bin"

# Verdicts, on the backend under test.
check halt-passes 0 "halted after 1 exits (HLT 1)" -- run --backend "$backend" "$tmp/hlt.bin"
check hello-done 0 "done after 23 exits (IO 23)" -- run --backend "$backend" --guest lab1/hello
check assert-fails 1 "GUEST_ASSERT failed at line 10: two plus two is five (got 0x4, expected 0x5)" -- \
    run --backend "$backend" --guest probes/assert16
check triple-fault 3 "KVM_EXIT_SHUTDOWN" -- run --backend "$backend" --guest probes/triple16
check hang-times-out 4 "stopped after 200 ms of wall time" -- run --backend "$backend" --timeout 200 --guest probes/spin16
check exit-limit 4 "stopped after 5 exits" -- run --backend "$backend" --max-exits 5 --guest lab1/hello
check exit-dump 0 "IO out port=0x03f8 size=1 count=1 data=48" -- run --backend "$backend" -q --exits - --guest lab1/hello
if "$bin" run --backend "$backend" -q --exits "$tmp/dump.txt" --guest lab1/hello >/dev/null 2>&1 &&
    [ "$(wc -l <"$tmp/dump.txt")" -eq 23 ]; then
    passed=$((passed + 1)); echo "ok   exit-dump-file"
else
    failed=$((failed + 1)); echo "FAIL exit-dump-file: expected 23 lines in the dump file"
fi

echo "cli ($backend): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
