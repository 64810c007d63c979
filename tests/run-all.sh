#!/usr/bin/env bash
# `make test`: unit, CLI and integration tests on every backend there is, then again under ASan+UBSan.
# Real KVM: native when /dev/kvm opens, else inside QEMU (tests/kvm-in-qemu) unless MINIVMM_NO_QEMU=1.
# MINIVMM_NO_SAN=1 skips the sanitizer pass. Ends with one line: "tests: N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
total_pass=0 total_fail=0 total_skip=0
summary=()
start=$(date +%s)

# record LABEL PASSED FAILED SKIPPED [NOTE]
record() {
    total_pass=$((total_pass + $2)); total_fail=$((total_fail + $3)); total_skip=$((total_skip + $4))
    summary+=("$(printf '%-34s %4d passed %4d failed %4d skipped  %s' "$1" "$2" "$3" "$4" "${5:-}")")
}

# cmocka_counts FILE -> "PASSED FAILED SKIPPED" from cmocka's closing lines
cmocka_counts() {
    local p f s
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s).*/\1/p' "$1" | head -n1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$1" | head -n1)
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test(s).*/\1/p' "$1" | head -n1)
    echo "${p:-0} ${f:-0} ${s:-0}"
}

# run_cmocka LABEL BINARY: runs one cmocka binary, a crash before its summary counts as one failure
run_cmocka() {
    local out rc counts
    out=$(mktemp)
    "$2" >"$out" 2>&1
    rc=$?
    cat "$out"
    read -r -a counts <<<"$(cmocka_counts "$out")"
    if [ "$rc" -ne 0 ] && [ "${counts[1]}" -eq 0 ]; then
        echo "!! $2 exited with status $rc before its summary"
        counts[1]=1
    fi
    record "$1" "${counts[0]}" "${counts[1]}" "${counts[2]}"
    rm -f "$out"
}

# run_suite LABEL BUILD BACKEND [via-qemu]: integration tests of one backend, parsed from the SUITE line
run_suite() {
    local label=$1 build=$2 backend=$3 out line
    out=$(mktemp)
    if [ "${4:-}" = via-qemu ]; then
        ./tests/kvm-in-qemu/run.sh --timeout 540 "$build/qemu-payload" -- ./run-suite.sh . kvm 2>&1 | tee "$out"
    else
        ./tests/run-suite.sh "$build" "$backend" 2>&1 | tee "$out"
    fi
    line=$(grep -a '^SUITE backend=' "$out" | tail -n1 | tr -d '\r')
    rm -f "$out"
    if [ -z "$line" ]; then
        record "$label" 0 1 0 "(no SUITE line: the run died)"
        return
    fi
    eval "$(sed 's/^SUITE //' <<<"$line")"  # sets backend= passed= failed= skipped=
    record "$label" "$passed" "$failed" "$skipped"
}

# count_suite_tests BUILD: how many integration tests a skipped suite would have run
count_suite_tests() {
    local n=0 t
    for t in "$1"/tests/test_lab*; do
        [ -x "$t" ] && n=$((n + $("$t" --list | wc -l)))
    done
    echo "$n"
}

# Native KVM, unless MINIVMM_FORCE_QEMU=1 asks for the QEMU path anyway (to test the runner itself).
kvm_native() { [ "${MINIVMM_FORCE_QEMU:-0}" != 1 ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }

# make_payload BUILD: what the QEMU runner copies into its VM
make_payload() {
    local p=$1/qemu-payload
    rm -rf "$p"
    mkdir -p "$p/tests"
    cp -r "$1/bin" "$1/guests" "$p/"
    cp "$1"/tests/test_lab* "$p/tests/"
    cp tests/run-suite.sh "$p/"
}

# pass BUILD LABEL_SUFFIX: everything, for one build
pass() {
    local build=$1 sfx=$2 t
    for t in "$build"/tests/test_*; do
        case $(basename "$t") in test_lab*) continue ;; esac
        [ -x "$t" ] && run_cmocka "unit $(basename "$t")$sfx" "$t"
    done
    if [ -z "$sfx" ]; then
        local out
        out=$(mktemp)
        ./tests/cli/test_cli.sh "$build" kvm >"$out" 2>&1 </dev/null || true
        if kvm_native; then
            cat "$out"
            read -r p f <<<"$(sed -n 's/^cli (kvm): \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$out")"
            record "cli kvm" "${p:-0}" "${f:-1}" 0
        fi
        rm -f "$out"
    fi
    if kvm_native; then
        run_suite "integration kvm (native)$sfx" "$build" kvm
    elif [ -n "$sfx" ]; then
        record "integration kvm$sfx" 0 0 "$(count_suite_tests "$build")" "(no /dev/kvm; the QEMU pass runs without sanitizers)"
    elif [ "${MINIVMM_NO_QEMU:-0}" = 1 ]; then
        record "integration kvm" 0 0 "$(count_suite_tests "$build")" "(no /dev/kvm and MINIVMM_NO_QEMU=1)"
    else
        make_payload "$build"
        run_suite "integration kvm (inside QEMU)" "$build" kvm via-qemu
    fi
}

echo "== build"
make -s -j"$JOBS" all || { echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
pass build ""

if [ "${MINIVMM_NO_SAN:-0}" = 1 ]; then
    record "ASan+UBSan pass" 0 0 1 "(MINIVMM_NO_SAN=1)"
else
    echo "== build with ASan+UBSan"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    if make -s -j"$JOBS" O=build/san SAN=1 all; then
        pass build/san " [asan+ubsan]"
    else
        record "ASan+UBSan build" 0 1 0
    fi
fi

echo
echo "== summary ($(($(date +%s) - start)) s)"
printf '%s\n' "${summary[@]}"
echo "tests: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
