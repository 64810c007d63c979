#!/usr/bin/env bash
# The fuzzers' short run (about a minute): build them, check that the guest fuzzer catches a planted crash, hang,
# sanitizer reports and a leak, and goes on, replay every seed, check malformed ucalls end as guest failures, then fuzz
# every target briefly. Skips, saying why, without clang or libFuzzer. FUZZ_SEED picks the inputs (default 1).
# usage: test_fuzz_short.sh [BUILD]      Ends with "fuzz: N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
build=${1:-build}
seed=${FUZZ_SEED:-1}
out=$build/fuzz/short
# The libFuzzer targets: tests/fuzz/fuzz_NAME.c, but for the guest fuzzer's parts and the null backend
parsers=$(ls tests/fuzz/fuzz_*.c | sed -n 's|^tests/fuzz/fuzz_\(.*\)\.c$|\1|p' | grep -v '^guest\|^backend$' | tr '\n' ' ')
passed=0 failed=0 skipped=0
guest_runs=0 parser_inputs=0 found=0 per_target=""

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
finish() {
    echo "fuzz figures: guest runs $guest_runs, parser inputs $parser_inputs ($per_target), crashes+hangs+sanitizer $found"
    echo "fuzz: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
    exit
}
# the build, 5 self-tests, the guest and each parser replayed, the ucall statuses, the guest and each parser fuzzed
total=$((9 + 2 * $(wc -w <<<"$parsers")))
skip_all() {
    echo "skip: $1"
    skipped=$total
    finish
}

command -v clang >/dev/null || skip_all "clang is not installed (Debian: apt-get install clang)"
probe=$(mktemp -d)
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
    >"$probe/p.c"
if ! clang -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" >/dev/null 2>&1; then
    rm -rf "$probe"
    skip_all "clang cannot link libFuzzer (-fsanitize=fuzzer): its runtime is missing (Debian 12: apt-get install libclang-rt-14-dev)"
fi
rm -rf "$probe"

echo "== build (make fuzz-bin)"
if make -s -j2 -f Makefile -f tests/fuzz/fuzz.mk O="$build" fuzz-bin; then
    ok "build"
else
    fail "build"
    skipped=$((total - 1))
    finish
fi
rm -rf "$out"
mkdir -p "$out"

echo "== the guest fuzzer catches what it must, and goes on (a planted fault at run 3 of 6)"
# self_test WHAT FIELD: one run ends in WHAT; the summary must count exactly one in FIELD, all 6 runs, a reproducer
self_test() {
    local what=$1 field=$2 log=$out/self-$1.log rc
    "$build/fuzz/fuzz-guest" -n 6 -b 3 -t 20 -g 300 -S "$seed" -o "$out/self-$what" --self-test "$what" >"$log" 2>&1
    rc=$?
    if [ "$rc" -eq 1 ] && grep -q "^fuzz-guest: runs=6 .*$field=1 " "$log" &&
        ls "$out/self-$what"/*.bin >/dev/null 2>&1; then
        ok "self-test $what: caught as $field, reproducer saved, all runs done"
    else
        fail "self-test $what: expected status 1, $field=1, runs=6 and a reproducer; got status $rc:"
        tail -n 5 "$log"
    fi
}
self_test crash crashes
self_test hang hangs
self_test ubsan sanitizer
self_test asan sanitizer
self_test leak sanitizer

echo "== every seed replays cleanly"
if "$build/fuzz/fuzz-guest" --replay tests/fuzz/corpus/guest/* >"$out/replay-guest.log" 2>&1; then
    ok "replay guest ($(grep -c "^tests/fuzz/corpus/guest/" "$out/replay-guest.log") seeds: no VMM error, set-up failure or late stop)"
else
    fail "replay guest:"
    grep -v ': \(halted\|done\|guest assertion failed\|shutdown\|time limit\|exit limit\|internal error\)' \
        "$out/replay-guest.log" | head -n 10
fi
for t in $parsers; do
    if ! ls tests/fuzz/corpus/$t/* >/dev/null 2>&1; then
        skipped=$((skipped + 1))
        echo "skip replay $t: no seeds in tests/fuzz/corpus/$t"
    elif "$build/fuzz/fuzz-$t" tests/fuzz/corpus/$t/* >"$out/replay-$t.log" 2>&1; then
        ok "replay $t ($(ls tests/fuzz/corpus/$t | wc -l) seeds)"
    else
        fail "replay $t:"
        tail -n 15 "$out/replay-$t.log"
    fi
done

echo "== a malformed ucall is the guest's failure (status 1), not the VMM's (5)"
if [ -x "$build/bin/minivmm" ]; then
    bad=0
    # mov dx, 0x500; then: out dx, al (1 byte) / out dx, eax of an address past RAM / of a struct with cmd 0; hlt
    printf '\xba\x00\x05\xb0\x01\xee\xf4' >"$out/uc-byte.bin"
    printf '\xba\x00\x05\x66\xb8\x00\x00\x00\x70\x66\xef\xf4' >"$out/uc-outside.bin"
    printf '\xba\x00\x05\x66\xb8\x00\x20\x00\x00\x66\xef\xf4' >"$out/uc-cmd0.bin"
    for f in uc-byte uc-outside uc-cmd0; do
        "$build/bin/minivmm" run --backend soft "$out/$f.bin" >"$out/$f.log" 2>&1
        rc=$?
        if [ "$rc" -ne 1 ] || ! grep -q "malformed ucall" "$out/$f.log"; then
            echo "   $f: status $rc: $(cat "$out/$f.log")"
            bad=1
        fi
    done
    [ "$bad" -eq 0 ] && ok "malformed ucalls: status 1, 'malformed ucall' said" || fail "malformed ucalls"
else
    skipped=$((skipped + 1))
    echo "skip malformed ucalls: $build/bin/minivmm is not built ('make all')"
fi

echo "== fuzzing: the guest fuzzer for 20 s on 2 workers, then each parser target ($parsers) for 8 s, two at a time"
# fuzz_check LABEL RESULT_LINE: passes when the run found nothing; keeps the figures
fuzz_check() {
    local line=$2
    if [ -z "$line" ]; then
        fail "$1: no result line (the run died)"
        return
    fi
    eval "$(sed 's/^fuzz-result: //; s/ out=.*//' <<<"$line")" # target= inputs= crashes= hangs= sanitizer= seconds=
    found=$((found + crashes + hangs + sanitizer))
    if [ "$target" = guest ]; then
        guest_runs=$inputs
    else
        parser_inputs=$((parser_inputs + inputs))
        per_target="$per_target${per_target:+, }$target $inputs"
    fi
    if grep -q ' crashes=0 hangs=0 sanitizer=0 ' <<<"$line" && ! grep -q ' inputs=0 ' <<<"$line"; then
        ok "$1: ${line#fuzz-result: }"
    else
        fail "$1: ${line#fuzz-result: }"
    fi
}
line=$(FUZZ_OUT=$out ./tests/fuzz/run-fuzz.sh guest "$build" -n 100000000 -s 20 -j 2 -S "$seed" 2>&1 |
    tee "$out/guest.log" | grep '^fuzz-result:' | tail -n1)
grep '^fuzz-guest: \(stops\|reproducer\|run [0-9]*: VMM\)' "$out/guest.log"
fuzz_check "fuzz guest" "$line"
set -- $parsers
while [ $# -gt 0 ]; do
    for t in "$1" "${2:-}"; do
        [ -n "$t" ] && FUZZ_OUT=$out ./tests/fuzz/run-fuzz.sh parser "$build" "$t" -max_total_time=8 1 "$seed" \
            >"$out/$t.log" 2>&1 &
    done
    wait
    for t in "$1" "${2:-}"; do
        [ -z "$t" ] && continue
        grep '^run-fuzz:' "$out/$t.log"
        fuzz_check "fuzz $t" "$(grep '^fuzz-result:' "$out/$t.log" | tail -n1)"
    done
    shift $(($# < 2 ? $# : 2))
done
finish
