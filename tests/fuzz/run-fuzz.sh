#!/usr/bin/env bash
# Runs the fuzzers (tests/fuzz/README.md); `make fuzz` is `run-fuzz.sh long BUILD`.
#   run-fuzz.sh parser BUILD TARGET BUDGET [JOBS [SEED]]   one libFuzzer target (trace, live, image, ucall, virtq, guest-lf)
#       on a copy of its corpus, in fork mode so crashes are survived; BUDGET is -runs=N or -max_total_time=S
#   run-fuzz.sh guest BUILD [fuzz-guest options]            the guest fuzzer, seeded from the guest corpus
#   run-fuzz.sh long BUILD      FUZZ_RUNS guest runs (default 1000000; half of them with a 1 MiB code buffer),
#       FUZZ_INPUTS parser inputs shared by the parser targets (default 10000000), FUZZ_GUEST_LF_SECONDS of
#       coverage-guided guest fuzzing (default 600), all on FUZZ_JOBS cores (default 2) with FUZZ_SEED (default 1)
# Reproducers and logs go to $FUZZ_OUT/TARGET (default BUILD/fuzz/out). Each run prints
# "fuzz-result: target=T inputs=N crashes=N hangs=N sanitizer=N seconds=S out=DIR" and exits 1 if it found anything.
set -u
cd "$(dirname "$0")/../.."

# result TARGET INPUTS CRASHES HANGS SANITIZER SECONDS OUT: the one line every run ends with
result() {
    echo "fuzz-result: target=$1 inputs=$2 crashes=$3 hangs=$4 sanitizer=$5 seconds=$6 out=$7"
    [ "$3" -eq 0 ] && [ "$4" -eq 0 ] && [ "$5" -eq 0 ]
}

parser() {
    local build=$1 t=$2 budget=$3 jobs=${4:-1} seed=${5:-1}
    local bin=$build/fuzz/fuzz-$t out=${FUZZ_OUT:-$build/fuzz/out}/$t corpus=tests/fuzz/corpus/${2%-lf}
    local work log start line inputs crashes timeouts
    if [ ! -x "$bin" ]; then
        echo "run-fuzz: $bin is not built ('make fuzz-bin')"
        return 2
    fi
    work=$out/corpus
    log=$out/libfuzzer.log
    mkdir -p "$work"
    cp -n "$corpus"/* "$work/" 2>/dev/null
    start=$(date +%s)
    # Fork mode: a crash, timeout or OOM ends a job, not the campaign; its input is kept under $out.
    "$bin" -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -timeout=10 -rss_limit_mb=4096 \
        -seed="$seed" "$budget" -artifact_prefix="$out/" "$work" >"$log" 2>&1 </dev/null
    line=$(grep -a '^#[0-9]*: cov:' "$log" | tail -n1)
    inputs=$(sed -n 's/^INFO: fuzzed for \([0-9]*\) iterations.*/\1/p' "$log" | tail -n1)
    [ -n "$inputs" ] || inputs=$(sed -n 's/^#\([0-9]*\):.*/\1/p' <<<"$line")
    crashes=$(sed -n 's/.*oom\/timeout\/crash: \([0-9]*\)\/\([0-9]*\)\/\([0-9]*\).*/\3/p' <<<"$line")
    timeouts=$(sed -n 's/.*oom\/timeout\/crash: \([0-9]*\)\/\([0-9]*\)\/\([0-9]*\).*/\2/p' <<<"$line")
    if [ -z "$line" ]; then
        echo "run-fuzz: $t: libFuzzer made no progress report; the end of $log:"
        tail -n 20 "$log"
        crashes=1
    fi
    for f in "$out"/crash-* "$out"/timeout-* "$out"/oom-*; do
        [ -e "$f" ] && echo "run-fuzz: $t: reproducer $f (run: $bin $f)"
    done
    result "$t" "${inputs:-0}" "${crashes:-0}" "${timeouts:-0}" 0 "$(($(date +%s) - start))" "$out"
}

guest() {
    local build=$1 out line v
    shift
    out=${FUZZ_OUT:-$build/fuzz/out}/guest
    mkdir -p "$out"
    # Its lines stream to stderr as they come (never `tee /dev/stderr`: reopening a log file truncates it).
    line=$("$build/fuzz/fuzz-guest" -c tests/fuzz/corpus/guest -o "$out" "$@" | while IFS= read -r l; do
        echo "$l" >&2
        case $l in "fuzz-guest: runs="*) echo "$l" ;; esac
    done | tail -n1)
    v() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<" $line"; }
    if [ -z "$line" ]; then
        echo "run-fuzz: guest: the fuzzer died before its summary"
        result guest 0 1 0 0 0 "$out"
        return
    fi
    result guest "$(v runs)" "$(v crashes)" "$(v hangs)" "$(v sanitizer)" "$(v seconds | cut -d. -f1)" "$out"
}

long() {
    local build=$1 runs=${FUZZ_RUNS:-1000000} inputs=${FUZZ_INPUTS:-10000000} jobs=${FUZZ_JOBS:-2}
    local seed=${FUZZ_SEED:-1} lf=${FUZZ_GUEST_LF_SECONDS:-600} t results=() start=$(date +%s)
    local total_in=0 total_crash=0 total_hang=0 total_san=0 guest_runs=0 r parsers nparsers
    # The libFuzzer targets: tests/fuzz/fuzz_NAME.c, but for the guest fuzzer's parts and the null backend
    parsers=$(ls tests/fuzz/fuzz_*.c | sed -n 's|^tests/fuzz/fuzz_\(.*\)\.c$|\1|p' | grep -v '^guest\|^backend$')
    nparsers=$(wc -w <<<"$parsers")
    echo "== fuzz campaign: $runs guest runs, $inputs parser inputs, ${lf}s guest-lf, $jobs jobs, seed $seed"
    for t in $parsers; do
        echo "== $t: $((inputs / nparsers)) inputs"
        r=$(parser "$build" "$t" "-runs=$((inputs / nparsers))" "$jobs" "$seed")
        echo "$r"
        results+=("$(tail -n1 <<<"$r")")
    done
    # Half the guest runs with the engine's code buffer shrunk to 1 MiB, so looping guests fill and flush it.
    echo "== guest: $((runs / 2)) runs with the stock code buffer"
    r=$(guest "$build" -n "$((runs / 2))" -j "$jobs" -S "$seed" -p 300 | tail -n1)
    echo "$r"
    results+=("$r")
    echo "== guest: $((runs - runs / 2)) runs with a 1 MiB code buffer (MINIVMM_SOFT_TCG_MIB=1)"
    r=$(FUZZ_OUT=${FUZZ_OUT:-$build/fuzz/out}/tcg1 MINIVMM_SOFT_TCG_MIB=1 \
        guest "$build" -n "$((runs - runs / 2))" -j "$jobs" -S "$((seed + 1))" -p 300 | tail -n1)
    echo "$r"
    results+=("$r")
    if [ "$lf" -gt 0 ]; then
        echo "== guest-lf: ${lf}s coverage-guided"
        r=$(parser "$build" guest-lf "-max_total_time=$lf" "$jobs" "$seed")
        echo "$r"
        results+=("$(tail -n1 <<<"$r")")
    fi
    echo
    echo "== fuzz campaign summary ($(($(date +%s) - start)) s)"
    for r in "${results[@]}"; do
        echo "$r"
        eval "$(sed 's/^fuzz-result: //; s/ out=.*//' <<<"$r")" # target= inputs= crashes= hangs= sanitizer= seconds=
        case $target in
        guest) guest_runs=$((guest_runs + inputs)) ;;
        guest-lf) ;;
        *) total_in=$((total_in + inputs)) ;;
        esac
        total_crash=$((total_crash + crashes)); total_hang=$((total_hang + hangs)); total_san=$((total_san + sanitizer))
    done
    echo "fuzz-long: guest runs $guest_runs, parser inputs $total_in, crashes $total_crash, hangs $total_hang, sanitizer reports $total_san"
    [ "$total_crash" -eq 0 ] && [ "$total_hang" -eq 0 ] && [ "$total_san" -eq 0 ]
}

case ${1:-} in
parser) shift; parser "$@" ;;
guest) shift; guest "$@" ;;
long) shift; long "$@" ;;
*) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 2 ;;
esac
