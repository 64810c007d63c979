#!/usr/bin/env bash
# Recording overhead of exit tracing: an OUT-loop guest (N exits to userspace) run R times with and
# without tracing; prints the median wall time of each and the added cost per exit. A benchmark, not a test.
#   visualizer/bench_overhead.sh [BUILD_DIR] [BACKEND] [EXITS] [RUNS]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build} backend=${2:-kvm} exits=${3:-200000} runs=${4:-7}
vmm=$build/bin/minivmm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The guest: `exits` OUTs to port 0x80 (nobody claims it: the cheapest exit there is), then HLT.
cat >"$tmp/loop.S" <<ASM
    .code16
    .globl _start
_start:
    mov \$$exits, %ecx
1:  outb %al, \$0x80
    dec %ecx
    jnz 1b
    hlt
ASM
cc -m16 -ffreestanding -nostdlib -c -o "$tmp/loop.o" "$tmp/loop.S"
ld -m elf_i386 -Ttext=0x1000 -e _start --oformat binary -o "$tmp/loop.bin" "$tmp/loop.o"

# median_ms ARGS...: the median wall time of `runs` runs of minivmm with ARGS
median_ms() {
    local i t0 t1
    for i in $(seq "$runs"); do
        t0=$(date +%s%N)
        "$vmm" run -q --backend "$backend" -x 0 -t 0 "$@" "$tmp/loop.bin" >/dev/null
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000))
    done | sort -n | sed -n "$(((runs + 1) / 2))p"
}

# The recording path alone, in process: mvm_trace_exit_record on a fake vCPU's IO exit, 1M times.
cat >"$tmp/micro.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core_internal.h"
#include "trace.h"
int main(int argc, char **argv)
{
    static uint8_t page[4096];
    struct mvm_vm vm = { .be = &mvm_backend_kvm };
    struct mvm_vcpu vcpu = { .vm = &vm, .run = (struct kvm_run *)page, .run_size = sizeof(page) };
    struct mvm_trace *t;
    int n = 1000000;
    vcpu.run->exit_reason = KVM_EXIT_IO;
    vcpu.run->io.direction = KVM_EXIT_IO_OUT; vcpu.run->io.size = 1; vcpu.run->io.port = 0x80;
    vcpu.run->io.count = 1; vcpu.run->io.data_offset = 512;
    for (int pass = 0; pass < 3; pass++) {
        mvm_trace_create("kvm", 4096, &t);
        if (pass >= 1)
            mvm_trace_file_open(t, argv[1]);
        if (pass == 2)
            mvm_trace_live_open(t, argv[2]);
        uint64_t t0 = mvm_trace_now_ns();
        for (int i = 0; i < n; i++) {
            uint64_t a = mvm_trace_clock(t), b = mvm_trace_clock(t);
            mvm_trace_exit_record(t, &vcpu, a, b);
        }
        uint64_t t1 = mvm_trace_now_ns();
        mvm_trace_close(t);
        printf("%-44s %9.1f ns/exit\n", pass == 0 ? "record path, ring only" : pass == 1 ? "record path, ring + file"
               : "record path, ring + file + live feed", (double)(t1 - t0) / n);
        (void)argc;
    }
    return 0;
}
C
cc -std=c11 -D_GNU_SOURCE -O2 -Iminivmm -o "$tmp/micro" "$tmp/micro.c" "$build"/obj/lab*.o "$build/lib/libminivmm.a" \
    $(pkg-config --libs unicorn libbpf 2>/dev/null) -lz -lpthread && "$tmp/micro" "$tmp/m.trace" "$tmp/m.live"

base=$(median_ms)
printf '%-44s %9.1f ms\n' "no trace" "$(echo "$base / 1000" | bc -l)"
for mode in "--trace $tmp/t.trace --no-kernel-exits" "--trace-live $tmp/t.live --no-kernel-exits" \
            "--trace $tmp/t.trace" "--trace $tmp/t.trace --trace-live $tmp/t.live"; do
    # shellcheck disable=SC2086
    t=$(median_ms $mode)
    printf '%-44s %9.1f ms  %+6.1f ns/exit (%+.1f%%)\n' "${mode//$tmp\//}" "$(echo "$t / 1000" | bc -l)" \
        "$(echo "($t - $base) * 1000 / $exits" | bc -l)" "$(echo "($t - $base) * 100 / $base" | bc -l)"
done
echo "($exits exits per run, median of $runs runs, backend $backend, $(uname -r))"
