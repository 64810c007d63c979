#!/bin/sh
# Runs the integration tests of one backend from a build dir; POSIX sh, so it also runs under busybox inside QEMU.
#   tests/run-suite.sh BUILD_DIR BACKEND
# Prints each test binary's output, then one line the caller parses:
#   SUITE backend=NAME passed=N failed=N skipped=N
# Exit status 0 when nothing failed.
set -u
build=${1:?usage: run-suite.sh BUILD_DIR BACKEND}
backend=${2:?usage: run-suite.sh BUILD_DIR BACKEND}
passed=0
failed=0
skipped=0

MINIVMM_BACKEND=$backend
MINIVMM_GUEST_DIR=$build/guests
export MINIVMM_BACKEND MINIVMM_GUEST_DIR

# cmocka's summary lines: "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:"
count() { # count FILE TAG (TAG padded as cmocka pads it: "PASSED  ", "FAILED  ", "SKIPPED ")
    sed -n "s/^\[  $2\] \([0-9][0-9]*\) test(s).*/\1/p" "$1" | head -n 1
}

for t in "$build"/tests/test_lab*; do
    [ -x "$t" ] || continue
    out=${TMPDIR:-/tmp}/minivmm-suite.$$
    echo "== $(basename "$t") on $backend"
    "$t" >"$out" 2>&1
    rc=$?
    cat "$out"
    p=$(count "$out" "PASSED  ")
    f=$(count "$out" "FAILED  ")
    s=$(count "$out" "SKIPPED ")
    passed=$((passed + ${p:-0}))
    skipped=$((skipped + ${s:-0}))
    if [ "$rc" -ne 0 ] && [ -z "$f" ]; then
        echo "!! $(basename "$t") exited with status $rc before reporting (crash?)"
        f=1
    fi
    failed=$((failed + ${f:-0}))
    rm -f "$out"
done

echo "SUITE backend=$backend passed=$passed failed=$failed skipped=$skipped"
[ "$failed" -eq 0 ]
