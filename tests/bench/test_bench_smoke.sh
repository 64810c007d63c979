#!/usr/bin/env bash
# Smoke test of the benchmarks: runs them all with a tiny time budget, checks the JSON is well-formed, has every
# benchmark on every backend that ran, and that each one made exactly the userspace exits per iteration it should.
# No timing is judged. Usage: tests/bench/test_bench_smoke.sh [BUILD_DIR]. Ends with "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
build=${1:-build}
out=$build/bench-smoke
if ! make -s O="$build" bench-bin >"$out.build.log" 2>&1; then
    cat "$out.build.log"
    echo "bench smoke: building $build/bin/minivmm-bench failed"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
rm -rf "$out"
timeout 120 ./bench/run.sh --smoke "$build" "$out" >"$out.log" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then
    tail -n 30 "$out.log"
    echo "bench smoke: bench/run.sh --smoke exited with status $rc"
fi
listed=$(MINIVMM_GUEST_DIR="$build/guests" "$build/bin/minivmm-bench" --benchmark_list_tests 2>/dev/null)
python3 - "$out/results.json" "$rc" "$listed" <<'PY'
import json, re, sys

path, rc, listed = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
passed = failed = skipped = 0

def result(ok, name, why=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL %s: %s" % (name, why))

# Userspace exits per iteration, from what each guest loop does (bench/README.md), not from the code under test.
EXPECTED = [
    ("exit/none", 0), ("exit/out", 1), ("exit/out_bare", 1), ("exit/in", 1), ("exit/mmio_read", 1),
    ("exit/mmio_write", 1), ("exit/hlt", 1), ("exit/cpuid", 0), ("exit/hypercall", 0),
    ("lifecycle/first_insn", 1),
] + [("lifecycle/create/%dMiB" % m, 0) for m in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)] \
  + [("lifecycle/touch/%dMiB" % m, 1) for m in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)] \
  + [("lab3/%s_%s" % (a, p), 0) for a in ("seq", "rand") for p in ("4k", "2m")]
# Lab 4: per message of N bytes, the polled UART makes 2 exits a byte, the console hypercall 1, the shared buffer's
# kick 1 (its one registration is not per message), KVM's VMCALL none.
EXPECTED += [("lab4/uart/%dB" % n, 2 * n) for n in (1, 16, 256, 4096)] \
  + [("lab4/hypercall/%dB" % n, 1) for n in (1, 16, 256, 4096)] \
  + [("lab4/shared/%dB" % n, 1) for n in (1, 16, 256, 4096)] \
  + [("lab4/vmcall/%dB" % n, 0) for n in (1, 16, 256, 4096)] + [("lab4/nop", 1)]
# Lab 6: one time read through the pvclock page or RDTSC makes no exit; the trapping MMIO clock and the clock
# hypercall make one each.
EXPECTED += [("lab6/read/page", 0), ("lab6/read/rdtsc", 0), ("lab6/read/mmio", 1), ("lab6/read/hypercall", 1)]
# ... and reading the page across a migration to another TSC rate makes none either.
EXPECTED += [("lab6/migrate/page", 0)]

try:
    with open(path) as f:
        doc = json.load(f)
    ok = isinstance(doc.get("benchmarks"), list) and isinstance(doc.get("context"), dict)
    result(ok, "results.json", "no 'benchmarks' list or 'context' object")
except (OSError, ValueError) as e:
    result(False, "results.json", "not readable JSON: %s" % e)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1)
result(rc == 0, "bench/run.sh --smoke", "exit status %d" % rc)

def base_backend(name):
    parts = [p for p in name.split("/") if p != "manual_time" and not p.startswith("iterations:")]
    return "/".join(parts[:-1]), parts[-1]

runs = {}
for b in doc["benchmarks"]:
    runs[base_backend(b["name"])] = b
skipped_backends = doc["context"].get("backends_skipped", "")
result(bool(listed), "--benchmark_list_tests", "listed nothing")
missing = [n for n in listed if base_backend(n) not in runs]
result(not missing, "every listed benchmark is in the JSON", "missing: %s" % " ".join(missing[:5]))

for backend in ("kvm", "soft"):
    m = re.search(r"(?:^|; )%s: ([^;]*)" % backend, skipped_backends)
    if m:
        print("SKIP %d benchmarks on %s: the backend did not run (%s)" % (len(EXPECTED), backend, m.group(1)))
        skipped += len(EXPECTED)
        continue
    for base, want in EXPECTED:
        name = "%s/%s" % (base, backend)
        b = runs.get((base, backend))
        if b is None:
            result(False, name, "not in the JSON")
        elif b.get("error_occurred"):
            msg = b.get("error_message", "")
            if msg.startswith("skipped:"):
                skipped += 1
                print("SKIP %s: %s" % (name, msg[len("skipped: "):]))
            else:
                result(False, name, msg)
        elif b.get("exits_per_iter") != want:
            result(False, name, "exits_per_iter is %r, expected exactly %d" % (b.get("exits_per_iter"), want))
        elif "median_ns" in b and not (b["min_ns"] <= b["median_ns"] <= b["p99_ns"]) or b.get("samples", 1) < 1:
            result(False, name, "min/median/p99 out of order or no samples: %r" % b)
        else:
            result(True, name)
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
PY
