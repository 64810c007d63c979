#!/usr/bin/env bash
# `make test`: unit, CLI and integration tests on every backend there is, then again under ASan+UBSan.
# Real KVM: inside QEMU (tests/kvm-in-qemu; the oracle for the fidelity test) unless MINIVMM_NO_QEMU=1,
# and natively too when /dev/kvm opens.
# MINIVMM_NO_SAN=1 skips the sanitizer pass. Ends with one line: "tests: N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
total_pass=0 total_fail=0 total_skip=0
summary=()
start=$(date +%s)

# In the student handout (no solutions/), `make test` grades each lab's visible tests on the student's files.
if [ ! -d solutions ]; then
    echo "== handout: each lab's visible tests on your files (make grade LAB=n shows one lab)"
    p=0 f=0
    for t in tests/grading/lab*.points; do
        lab=$(basename "$t" .points); lab=${lab#lab}
        out=$(mktemp)
        python3 tests/grading/grade.py "$lab" --json "build/grade/lab$lab/results.json" | tee "$out"
        read -r np nf <<<"$(awk '$1 == "PASS" { p++ } $1 == "FAIL" { f++ } END { print p + 0, f + 0 }' "$out")"
        p=$((p + np)); f=$((f + nf))
        rm -f "$out"
    done
    echo "tests: $p passed, $f failed, 0 skipped"
    [ "$f" -eq 0 ]
    exit
fi

# record LABEL PASSED FAILED SKIPPED [NOTE]
record() {
    total_pass=$((total_pass + $2)); total_fail=$((total_fail + $3)); total_skip=$((total_skip + $4))
    summary+=("$(printf '%-42s %4d passed %4d failed %4d skipped  %s' "$1" "$2" "$3" "$4" "${5:-}")")
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

# suite_record LABEL OUTPUT_FILE: records the SUITE line of run-suite.sh's output
suite_record() {
    local line
    line=$(grep -a '^SUITE backend=' "$2" | tail -n1 | tr -d '\r')
    if [ -z "$line" ]; then
        record "$1" 0 1 0 "(no SUITE line: the run died)"
        return
    fi
    eval "$(sed 's/^SUITE //' <<<"$line")"  # sets backend= passed= failed= skipped=
    record "$1" "$passed" "$failed" "$skipped"
}

# run_suite LABEL BUILD BACKEND: integration tests of one backend, natively
run_suite() {
    local out
    out=$(mktemp)
    ./tests/run-suite.sh "$2" "$3" 2>&1 | tee "$out"
    suite_record "$1" "$out"
    rm -f "$out"
}

# qemu_gdb_payload BUILD PAYLOAD: the gdb stub test in the same boot: bash, gdb (the runner adds their libraries),
# the Python codecs gdb's Python needs to start, and the guests' ELF files for symbols.
qemu_gdb_payload() {
    local g py
    command -v gdb >/dev/null || return 0
    mkdir -p "$2/hostbin"
    cp "$(command -v bash)" "$(command -v gdb)" "$2/hostbin/"
    py=$(ldd "$(command -v gdb)" | sed -n 's/.*libpython\(3\.[0-9]*\).*/\1/p' | head -n1)
    if [ -n "$py" ] && [ -d "/usr/lib/python$py/encodings" ]; then
        mkdir -p "$2/gdb-python/lib/python$py/encodings"
        cp "/usr/lib/python$py/encodings/"*.py "$2/gdb-python/lib/python$py/encodings/"
    fi
    for g in lab1/hello lab2/switch lab3/hello64; do
        mkdir -p "$2/obj/guests/$(dirname $g)" && cp "$1/obj/guests/$g.elf" "$2/obj/guests/$g.elf"
    done
    cp tests/gdb/test_gdb.sh "$2/"
}

# qemu_gdb_record LOG: the gdb stub test's summary line from the QEMU boot's log
qemu_gdb_record() {
    local label="gdb stub (real gdb, kvm inside QEMU)" p f k
    read -r p f k <<<"$(sed -n 's/^gdb: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' "$1")"
    if [ -n "$p" ]; then
        record "$label" "$p" "$f" "$k"
    elif ! command -v gdb >/dev/null; then
        record "$label" 0 0 4 "(no gdb on this machine: scripts/install-deps.sh installs it)"
    else
        record "$label" 0 1 0 "(no summary line: the run died)"
    fi
}

# qemu_pass BUILD: one boot of real KVM inside QEMU runs the integration suite and takes every guest's
# exit dump, kept in BUILD/kvm-dumps.txt as the oracle for the fidelity test.
qemu_pass() {
    local p=$1/qemu-payload out=$1/qemu-tests.log
    rm -rf "$p" "$1/kvm-dumps.txt"
    mkdir -p "$p/tests"
    cp -r "$1/bin" "$1/guests" "$p/"
    cp "$1"/tests/test_lab* "$p/tests/"
    cp tests/run-suite.sh tests/diff/dump-all.sh tests/diff/guests.txt tests/diff/qemu-tests.sh "$p/"
    mkdir -p "$p/tests/diff" && cp tests/diff/*.in "$p/tests/diff/" # guests.txt's --serial-in files, same paths
    cp -r tests/diff/lab4-share "$p/tests/diff/"                      # and its --share folders
    qemu_gdb_payload "$1" "$p"
    ./tests/kvm-in-qemu/run.sh --timeout 540 "$p" -- ./qemu-tests.sh 2>&1 | tr -d '\r' >"$out"
    sed '/^=== DUMPS BEGIN/,/^=== DUMPS END/d' "$out"
    suite_record "integration kvm (inside QEMU)" "$out"
    qemu_gdb_record "$out"
    if grep -q '^=== DUMPS END' "$out"; then
        sed -n '/^=== DUMPS BEGIN/,/^=== DUMPS END/p' "$out" | sed '1d;$d' >"$1/kvm-dumps.txt"
    fi
}

# count_suite_tests BUILD: how many integration tests a skipped suite would have run
count_suite_tests() {
    local n=0 t
    for t in "$1"/tests/test_lab*; do
        [ -x "$t" ] && n=$((n + $("$t" --list | wc -l)))
    done
    echo "$n"
}

# run_counted LABEL PREFIX CMD...: a script that ends with "PREFIX: N passed, N failed, N skipped" (exit tracing)
run_counted() {
    local label=$1 prefix=$2 out p f k
    shift 2
    out=$(mktemp)
    "$@" </dev/null 2>&1 | tee "$out"
    read -r p f k <<<"$(sed -n "s/^$prefix: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p" "$out")"
    rm -f "$out"
    record "$label" "${p:-0}" "${f:-1}" "${k:-0}" "$([ -z "$p" ] && echo "(no summary line: the script died)")"
}

# $MINIVMM_KVM_DEVICE (as the kvm backend reads it) lets a machine with KVM play one without.
kvm_native() { local dev=${MINIVMM_KVM_DEVICE:-/dev/kvm}; [ -r "$dev" ] && [ -w "$dev" ]; }

# cli BUILD BACKEND: the CLI's bad-input and verdict tests
cli() {
    local out p f
    out=$(mktemp)
    ./tests/cli/test_cli.sh "$1" "$2" >"$out" 2>&1 </dev/null
    cat "$out"
    read -r p f <<<"$(sed -n "s/^cli ($2): \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p" "$out")"
    record "cli $2" "${p:-0}" "${f:-1}" 0
    rm -f "$out"
}

# fidelity BUILD LABEL_SUFFIX: soft against real KVM's dumps (from QEMU, else native KVM)
fidelity() {
    local out p f s
    out=$(mktemp)
    if [ -s build/kvm-dumps.txt ]; then
        ./tests/diff/test_diff.sh "$1" build/kvm-dumps.txt >"$out" 2>&1
    else
        ./tests/diff/test_diff.sh "$1" >"$out" 2>&1
    fi
    cat "$out"
    read -r p f s <<<"$(sed -n 's/^diff: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' "$out")"
    record "fidelity soft = kvm$2" "${p:-0}" "${f:-1}" "${s:-0}"
    rm -f "$out"
}

# pass BUILD LABEL_SUFFIX: everything, for one build
pass() {
    local build=$1 sfx=$2 t
    for t in "$build"/tests/test_*; do
        case $(basename "$t") in test_lab*) continue ;; esac
        [ -x "$t" ] && run_cmocka "unit $(basename "$t")$sfx" "$t"
    done
    [ -z "$sfx" ] && cli "$build" soft
    [ -z "$sfx" ] && run_counted "demos (status 0, 80 columns)" demos ./tests/cli/test_demos.sh "$build"
    run_suite "integration soft$sfx" "$build" soft
    # No guest crashes the VMM: known crashers and 600 random byte guests on the soft backend.
    [ -z "$sfx" ] && run_counted "robust (random guests, soft)" robust ./tests/robust/test_guest_crashes.sh "$build"
    if kvm_native; then
        [ -z "$sfx" ] && cli "$build" kvm
        run_suite "integration kvm (native)$sfx" "$build" kvm
    fi
    if [ -z "$sfx" ]; then
        if [ "${MINIVMM_NO_QEMU:-0}" = 1 ]; then
            kvm_native || record "integration kvm" 0 0 "$(count_suite_tests "$build")" "(no /dev/kvm and MINIVMM_NO_QEMU=1)"
        else
            qemu_pass "$build"
        fi
    fi
    # The capstone: `minivmm boot` boots the Debian kernel on kvm inside QEMU (tests/linux/README.md).
    # (Not again under ASan+UBSan: a minute of QEMU for the same VMM code the sanitized suites run.)
    [ -z "$sfx" ] && run_counted "linux boot (kvm in QEMU)" linux ./tests/linux/test_linux.sh "$build"
    fidelity "$build" "$sfx"
    # Unmodified KVM programs through the preload library; the first pass also runs them on real KVM in QEMU (~15 s).
    run_counted "preload: KVM programs on soft$sfx" preload ./tests/preload/test_preload.sh \
        $([ -z "$sfx" ] && echo --kvm) "$build"
    run_counted "KVM selftests (quick, soft)$sfx" selftests ./scripts/selftests.sh --quick "$build"
    if [ -z "$sfx" ]; then
        run_counted "visualizer (tmux)" viz-tmux ./tests/visualizer/test_viz_tmux.sh "$build"
        run_counted "bpf exit tracer" bpf ./tests/visualizer/test_bpf.sh "$build"
        run_counted "gdb stub (real gdb)" gdb ./tests/gdb/test_gdb.sh "$build"
    fi
}

echo "== build"
make -s -j"$JOBS" all || { echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
pass build ""

echo "== benchmarks, smoke run (tiny time budget; exit counts checked, no timings judged)"
out=$(mktemp)
./tests/bench/test_bench_smoke.sh build >"$out" 2>&1 </dev/null
cat "$out"
read -r p f s <<<"$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' "$out" | tail -n1)"
record "bench smoke" "${p:-0}" "${f:-1}" "${s:-0}"
rm -f "$out"

echo "== architecture: the core names no lab, files under 800 lines, clang-format"
run_counted "architecture and format" arch ./tests/arch/test_arch.sh build

echo "== the grader grades itself"
out=$(mktemp)
python3 tests/grading/test_grader.py >"$out" 2>&1
cat "$out"
read -r p f s <<<"$(sed -n 's/^grader: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' "$out")"
record "grader self-test" "${p:-0}" "${f:-1}" "${s:-0}"
rm -f "$out"

echo "== fuzzing, short run (about a minute; 'make fuzz' is the long campaign)"
run_counted "fuzz (short run)" fuzz ./tests/fuzz/test_fuzz_short.sh build

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
