/*
 * Each lab's trade-off, one table line per measurement (bench/README.md
 * shows the pattern for labs to come).
 * Lab 3: dependent 8-byte loads over a 64 MiB buffer, sequential or at
 * random, mapped with 4 KiB or 2 MiB guest pages. Timing: the guest times
 * batches of BENCH_MEM_BATCH loads with RDTSC (min/median/p99 are per load,
 * from those); Google Benchmark's time is the host's clock over the run.
 */
#include <stdlib.h>

#include "bench/bench_abi.h"
#include "bench.h"
#include "bench_vm.h"
#include "x86.h"

#define LAB3_BUFFER_MIB 64    /* far past the 4 KiB TLB reach (a few MiB), inside the 2 MiB one */
#define LAB3_PAGE_2M    0x100 /* in a case's arg, with BENCH_MEM_SEQ or BENCH_MEM_RAND */

/* $MINIVMM_BENCH_LAB3_MIB shrinks the buffer (the smoke run only checks exit counts, not what they cost). */
static uint64_t lab3_buffer_size(void)
{
    const char *env = getenv("MINIVMM_BENCH_LAB3_MIB");
    long mib = env ? strtol(env, NULL, 10) : LAB3_BUFFER_MIB;

    return (uint64_t)(mib > 0 && mib <= LAB3_BUFFER_MIB ? mib : LAB3_BUFFER_MIB) << 20;
}

static void bench_lab3_access(struct bench_state *st, const struct mvm_backend *be, int64_t arg)
{
    const struct mvm_run_opts opts = {.max_exits = 4, .max_ms = 120000};
    uint64_t page = arg & LAB3_PAGE_2M ? X86_LARGE_PAGE_SIZE : X86_PAGE_SIZE;
    int mode = (int)(arg & 0xff);
    uint64_t n = bench_iterations(st), exits = 0;
    struct mvm_run_result res;
    struct bench_result r;
    struct bench_vm bv;
    int rc = bench_vm64_create(be, lab3_buffer_size(), page, mode, n, &bv);

    if (rc < 0) {
        bench_fail(st, "%s", mvm_error());
        return;
    }
    /* Warm-up (first touch of every page) runs untimed, up to the guest's sync OUT. */
    rc = vcpu_run(bv.vcpu, &opts, &res);
    if (rc == 0 && (res.stop != MVM_STOP_DONE || bv.syncs != 1 || res.exits != 1)) {
        bench_fail(st, "mem64 warm-up should end with one OUT to port 0x%x, but ended with '%s' after %llu exits: %s",
                   BENCH_PORT_SYNC, mvm_stop_name(res.stop), (unsigned long long)res.exits, res.detail);
        bench_vm_destroy(&bv);
        return;
    }
    while (rc == 0 && bench_keep_running_batch(st, n)) {
        rc = vcpu_run(bv.vcpu, &opts, &res);
        exits += res.exits;
    }
    if (rc == 0)
        rc = bench_result_read(&bv, &r, sizeof(r));
    if (rc < 0)
        bench_fail(st, "%s", mvm_error());
    else if (res.stop != MVM_STOP_DONE || exits != 1 || bv.syncs != 1)
        bench_fail(st,
                   "mem64 (%llu loads) should make no userspace exit until GUEST_DONE, but ended with '%s' after "
                   "%llu exits: %s",
                   (unsigned long long)n, mvm_stop_name(res.stop), (unsigned long long)exits, res.detail);
    else if (r.batches != n / BENCH_MEM_BATCH)
        bench_fail(st, "mem64 wrote %llu samples for %llu loads; expected one per %d loads, %llu",
                   (unsigned long long)r.batches, (unsigned long long)n, BENCH_MEM_BATCH,
                   (unsigned long long)(n / BENCH_MEM_BATCH));
    else {
        bench_set_counter(st, "exits_per_iter", (double)(exits - 1) / n);
        rc = bench_samples_collect(st, &bv, r.batches, BENCH_MEM_BATCH);
        if (rc < 0)
            bench_fail(st, "%s", mvm_error());
    }
    bench_vm_destroy(&bv);
}

/* One line per measurement; a later lab adds its own lines (bench/README.md). */
const struct bench_case bench_lab_cases[] = {
    {.name = "lab3/seq_4k", .fn = bench_lab3_access, .arg = BENCH_MEM_SEQ},
    {.name = "lab3/seq_2m", .fn = bench_lab3_access, .arg = BENCH_MEM_SEQ | LAB3_PAGE_2M},
    {.name = "lab3/rand_4k", .fn = bench_lab3_access, .arg = BENCH_MEM_RAND},
    {.name = "lab3/rand_2m", .fn = bench_lab3_access, .arg = BENCH_MEM_RAND | LAB3_PAGE_2M},
    {0},
};
