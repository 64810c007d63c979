#!/usr/bin/env bash
# Runs the benchmarks on every backend there is; writes OUT/results.json (Google Benchmark's JSON), OUT/table.txt and plots.
#   bench/run.sh [--smoke] BUILD_DIR OUT_DIR [Google Benchmark flags...]
# --smoke: a tiny time budget and RAM sizes up to $MINIVMM_BENCH_MAX_MIB (default 16), no plots.
# MINIVMM_BENCH_MIN_TIME: seconds per benchmark (default 0.2).
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
build=${1:?usage: bench/run.sh [--smoke] BUILD_DIR OUT_DIR [flags]}
out=${2:?usage: bench/run.sh [--smoke] BUILD_DIR OUT_DIR [flags]}
shift 2
mkdir -p "$out"
args=(--benchmark_out="$out/results.json" --benchmark_out_format=json)
if [ "$smoke" = 1 ]; then
    export MINIVMM_BENCH_MAX_MIB=${MINIVMM_BENCH_MAX_MIB:-16} MINIVMM_BENCH_LAB3_MIB=${MINIVMM_BENCH_LAB3_MIB:-4}
    export MINIVMM_BENCH_FIXED_MAX=${MINIVMM_BENCH_FIXED_MAX:-200000} # lab6/migrate/page: 10 million reads otherwise
    args+=(--benchmark_min_time=0.001)
else
    args+=(--benchmark_min_time="${MINIVMM_BENCH_MIN_TIME:-0.2}")
fi
echo "bench: $build/bin/minivmm-bench ${args[*]} $*"
MINIVMM_GUEST_DIR="$build/guests" "$build/bin/minivmm-bench" "${args[@]}" "$@"
python3 bench/report.py "$out/results.json" "$out"
if [ "$smoke" = 0 ]; then
    if command -v gnuplot >/dev/null 2>&1; then
        gnuplot -e "dir='$out'" bench/plot.gnuplot && echo "bench: plots in $out/*.png and $out/*.svg"
    else
        echo "bench: gnuplot not found (scripts/install-deps.sh installs gnuplot-nox): no plots"
    fi
fi
echo "bench: $out/results.json, $out/table.txt"
