/*
 * Load: VM create/run/destroy cycles in one process (cycles/s, the time of one
 * cycle, resident memory before and after), and many VMs alive at once, one a
 * thread (VMs/s, resident memory with all of them created). The guest is
 * bench/load_vm.h's: its code and answer are VM-specific and every answer is
 * checked. Timing: the host's clock around each cycle (manual time).
 * tests/unit/test_soft_load.c is the pass/fail version.
 */
#include <string.h>

#include "bench.h"
#include "bench_env.h"
#include "load_vm.h"

static const int64_t load_cycles[] = {10000, 0};
static const int64_t load_vms[] = {100, 0};

/* `cycles` create/run/destroy cycles an iteration, one sample each. */
static void bench_cycles(struct bench_state *st, const struct mvm_backend *be, int64_t cycles)
{
    uint64_t rss_before, total_ns = 0, done = 0;
    char why[200] = "";

    /* A first cycle, not counted, creates the engine the others reuse: memory is then measured from there. */
    if (load_vm_cycle(be, 0, why, sizeof(why)) != 1) {
        bench_fail(st, "the first cycle failed: %s", why[0] ? why : mvm_error());
        return;
    }
    rss_before = load_rss_kib();

    while (bench_keep_running(st)) {
        uint64_t t_iter = 0;

        for (int64_t i = 0; i < cycles; i++) {
            uint64_t t0 = bench_now_ns();
            int r = load_vm_cycle(be, (uint32_t)(done + (uint64_t)i), why, sizeof(why));
            uint64_t t1 = bench_now_ns();

            if (r < 0) {
                bench_fail(st, "cycle %lld: %s", (long long)i, mvm_error());
                return;
            }
            if (r == 0) {
                bench_fail(st, "cycle %lld: the guest's answer is wrong: %s", (long long)i, why);
                return;
            }
            bench_sample_ns(st, (double)(t1 - t0));
            t_iter += t1 - t0;
        }
        done += (uint64_t)cycles;
        total_ns += t_iter;
        bench_set_iteration_time(st, (double)t_iter * 1e-9);
    }
    uint64_t rss_after = load_rss_kib();
    bench_set_counter(st, "cycles_per_s", total_ns ? (double)done * 1e9 / (double)total_ns : 0);
    bench_set_counter(st, "rss_before_kib", (double)rss_before);
    bench_set_counter(st, "rss_after_kib", (double)rss_after);
}

/* `n` VMs at once, one a thread, all created before any runs; one iteration creates, runs and destroys them all. */
static void bench_at_once(struct bench_state *st, const struct mvm_backend *be, int64_t n)
{
    uint64_t rss_before = load_rss_kib(), rss_peak = 0, total_ns = 0, vms = 0;
    uint32_t seed = 0;

    while (bench_keep_running(st)) {
        struct load_at_once res;
        uint64_t t0 = bench_now_ns(), t1;
        int rc = load_vms_at_once(be, (int)n, seed, &res);

        t1 = bench_now_ns();
        if (rc < 0 || res.right != n) {
            bench_fail(st, "%d of %lld VMs created, %d answered right: %s", res.created, (long long)n, res.right,
                       rc < 0 ? mvm_error() : res.why);
            return;
        }
        seed += 37 * (uint32_t)n;
        vms += (uint64_t)n;
        total_ns += t1 - t0;
        rss_peak = res.rss_kib > rss_peak ? res.rss_kib : rss_peak;
        bench_sample_ns(st, (double)(t1 - t0));
        bench_set_iteration_time(st, (double)(t1 - t0) * 1e-9);
    }
    bench_set_counter(st, "vms_per_s", total_ns ? (double)vms * 1e9 / (double)total_ns : 0);
    bench_set_counter(st, "rss_before_kib", (double)rss_before);
    bench_set_counter(st, "rss_all_alive_kib", (double)rss_peak);
    bench_set_counter(st, "rss_after_kib", (double)load_rss_kib());
}

/* The soft backend only: these are its engine pool's figures (on KVM a cycle is a few ms of kernel work). */
static const char *soft_only(const struct mvm_backend *be)
{
    return strcmp(be->name, "soft") == 0 ? NULL : "the load cases measure the soft backend's engine pool";
}

const struct bench_case bench_load_cases[] = {
    {.name = "load/cycles",
     .fn = bench_cycles,
     .valid = soft_only,
     .args = load_cycles,
     .arg_unit = "cycles",
     .flags = BENCH_MANUAL_TIME},
    {.name = "load/at_once",
     .fn = bench_at_once,
     .valid = soft_only,
     .args = load_vms,
     .arg_unit = "VMs",
     .flags = BENCH_MANUAL_TIME},
    {0},
};
