#!/usr/bin/env bash
# Robustness: no guest crashes the VMM. Known crashers (a far jump to 0:0, int 0 in real mode, a lone 0xfe in
# protected mode) and seeded random byte guests in real, protected and long mode run on the soft backend; each
# must end with one of minivmm's own statuses (0 done/halted, 1 guest assert, 3 guest crash, 4 exit/time limit),
# never a signal (status > 128), a VMM failure (5) or a hang past `timeout`.
# The engine's code buffer is shrunk to 1 MiB (MINIVMM_SOFT_TCG_MIB) so every looping guest fills it, and
# flushes it, many times: the Unicorn 2.1.1 first-overflow bug (minivmm/soft_engine.c, soft_engine_get) crashed
# about one random guest in six with the stock buffer.
#   tests/robust/test_guest_crashes.sh BUILD_DIR [GUESTS_PER_MODE] [SEED]
# Ends with one line: "robust: N passed, N failed, N skipped".
set -u
build=${1:?usage: test_guest_crashes.sh BUILD_DIR [GUESTS_PER_MODE] [SEED]}
per_mode=${2:-200}
seed=${3:-11}
bin=$build/bin/minivmm
jobs=$(nproc 2>/dev/null || echo 2)

if [ ! -x "$bin" ] || ! command -v python3 >/dev/null; then
    echo "skip: needs $bin and python3"
    echo "robust: 0 passed, 0 failed, $((18 + 3 * per_mode)) skipped"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The cases, one a line: NAME MODE IMAGE MS. The known crashers get 3 s of wall time: with the stock 32 MiB
# buffer (no MINIVMM_SOFT_TCG_MIB) they took about 1 s to fill it and crash.
printf '\xea\x00\x00\x00\x00' >"$tmp/farjmp.bin"
printf '\xcd\x00' >"$tmp/int0.bin"
printf '\xfe' >"$tmp/fe.bin"
{
    echo "repro/far-jmp-0:0 real $tmp/farjmp.bin 3000"
    echo "repro/int-0 real $tmp/int0.bin 3000"
    echo "repro/lone-fe protected $tmp/fe.bin 3000"
} >"$tmp/cases"
# Translation blocks long enough to overflow Unicorn 2.1.1's 512 TCG temporaries (SIGSEGV in tcg_emit_op before
# minivmm/soft_uc_tb.c bounded blocks; tests/fuzz/findings/README.md): 240 x `fadd st0, st0` or 500 x
# `mov eax, cr0` then hlt, and images filled with them (and with 0xd4, `aam`), in every mode.
python3 - "$tmp" >>"$tmp/cases" <<'EOF'
import os, sys
tmp = sys.argv[1]
images = {
    "x87-long-block": b"\xd8\xc0" * 240 + b"\xf4",
    "x87-fill": b"\xd8\xc0" * 0x4000,
    "mov-cr0-long-block": b"\x0f\x20\xc0" * 500 + b"\xf4",
    "mov-cr0-fill": b"\x0f\x20\xc0" * 0x2000,
    "aam-fill": b"\xd4" * 0x8000,
}
for name, image in images.items():
    path = os.path.join(tmp, name + ".bin")
    with open(path, "wb") as f:
        f.write(image)
    for mode in ("real", "protected", "long"):
        print("repro/%s/%s %s %s 1000" % (name, mode, mode, path))
EOF
python3 - "$tmp" "$per_mode" "$seed" >>"$tmp/cases" <<'EOF'
import os, random, sys
tmp, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
for mode in ("real", "protected", "long"):
    for i in range(n):
        path = os.path.join(tmp, "%s-%03d.bin" % (mode, i))
        with open(path, "wb") as f:
            f.write(bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))))
        print("random/%s/%03d %s %s 300" % (mode, i, mode, path))
EOF

# One case: writes "STATUS NAME" to OUT.rc and its stderr to OUT.err (a hang is 124, from timeout).
run_case() {
    local name=$1 mode=$2 image=$3 ms=$4 out=$5 rc
    MINIVMM_SOFT_TCG_MIB=1 timeout 20 "$bin" run --backend soft --mode "$mode" --timeout "$ms" --quiet "$image" \
        >/dev/null 2>"$out.err"
    rc=$?
    echo "$rc $name" >"$out.rc"
}
export -f run_case
export bin
i=0
while read -r name mode image ms; do
    i=$((i + 1))
    echo "$name $mode $image $ms $tmp/result.$i"
done <"$tmp/cases" | xargs -P "$jobs" -n 5 bash -c 'run_case "$@"' _

passed=0 failed=0
for r in "$tmp"/result.*.rc; do
    read -r rc name <"$r"
    case $rc in
    0 | 1 | 3 | 4) passed=$((passed + 1)) ;;
    *)
        failed=$((failed + 1))
        if [ "$rc" -gt 128 ]; then why="killed by signal $((rc - 128))"
        elif [ "$rc" -eq 124 ]; then why="hung (killed after 20 s)"
        else why="exit status $rc"; fi
        echo "FAIL $name: $why"
        sed 's/^/     | /' "${r%.rc}.err" | tail -n 3
        ;;
    esac
done
[ "$failed" -eq 0 ] && echo "ok   all $passed guests ended with a status of their own (0, 1, 3 or 4)"
echo "robust: $passed passed, $failed failed, 0 skipped"
[ "$failed" -eq 0 ]
