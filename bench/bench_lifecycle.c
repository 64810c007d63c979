/*
 * VM lifecycle: creation to the first guest exit, and how creation and a
 * first full-memory touch scale with guest RAM from 1 MiB to 1 GiB.
 * Timing: the host's clock around each iteration (manual time, one sample
 * per iteration); set-up and teardown outside the measured part are not
 * counted. $MINIVMM_BENCH_MAX_MIB skips the larger touches (smoke runs).
 */
#include <stdlib.h>

#include "bench/bench_abi.h"
#include "bench.h"
#include "bench_env.h"
#include "mvm.h"
#include "bench_vm.h"
#include "x86.h"

#define MIB (1024 * 1024ull)

static const int64_t ram_mib[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 0};

/* True (after bench_skip) when $MINIVMM_BENCH_MAX_MIB rules this size out. */
static bool ram_capped(struct bench_state *st, int64_t mib)
{
    const char *cap = getenv("MINIVMM_BENCH_MAX_MIB");

    if (cap && *cap && mib > atoll(cap)) {
        bench_skip(st, "%lld MiB is above MINIVMM_BENCH_MAX_MIB=%s", (long long)mib, cap);
        return true;
    }
    return false;
}

static void sample_iteration(struct bench_state *st, uint64_t t0, uint64_t t1)
{
    bench_set_iteration_time(st, (double)(t1 - t0) * 1e-9);
    bench_sample_ns(st, (double)(t1 - t0));
}

/*
 * vm_create, RAM, the image from its file, the vCPU in real mode, and
 * KVM_RUN until the first exit: exits16's first OUT, a few instructions in.
 */
static void bench_first_insn(struct bench_state *st, const struct mvm_backend *be, int64_t unused)
{
    struct bench_vm bv;
    uint64_t first_outs = 0;

    (void)unused;
    while (bench_keep_running(st)) {
        uint64_t t0 = bench_now_ns(), t1;
        int rc = bench_vm16_create(be, BENCH_KIND_OUT, 1, &bv);
        struct kvm_run *run;

        if (rc == 0)
            rc = vcpu_enter(bv.vcpu);
        t1 = bench_now_ns();
        if (rc < 0) {
            bench_fail(st, "%s", mvm_error());
            break;
        }
        run = vcpu_run_page(bv.vcpu);
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == BENCH_PORT)
            first_outs++;
        sample_iteration(st, t0, t1);
        bench_vm_destroy(&bv);
    }
    if (first_outs != bench_iterations(st))
        bench_fail(st, "the first exit of exits16 (kind OUT) should be an OUT to port 0x%x every time: %llu of %llu",
                   BENCH_PORT, (unsigned long long)first_outs, (unsigned long long)bench_iterations(st));
    else
        bench_set_counter(st, "exits_per_iter", 1);
}

/* vm_create + one RAM slot of `mib` MiB + one vCPU; no guest runs. */
static void bench_create(struct bench_state *st, const struct mvm_backend *be, int64_t mib)
{
    while (bench_keep_running(st)) {
        struct mvm_vm *vm = NULL;
        struct mvm_vcpu *vcpu;
        uint64_t t0 = bench_now_ns(), t1;
        int rc = vm_create(be, &vm);

        if (rc == 0)
            rc = vm_mem_add(vm, 0, (uint64_t)mib * MIB, 0);
        if (rc == 0)
            rc = vcpu_create(vm, 0, &vcpu);
        t1 = bench_now_ns();
        vm_destroy(vm);
        if (rc < 0) {
            bench_fail(st, "%s", mvm_error());
            return;
        }
        sample_iteration(st, t0, t1);
    }
    bench_set_counter(st, "exits_per_iter", 0);
}

/*
 * A fresh VM each iteration whose guest writes one byte to every 4 KiB page
 * of `mib` MiB (2 MiB guest pages), so every page is touched for the first
 * time: host page faults and nested-paging faults, or the soft CPU's.
 * Only the guest run is timed.
 */
static void bench_touch(struct bench_state *st, const struct mvm_backend *be, int64_t mib)
{
    const struct mvm_run_opts opts = {.max_exits = 4, .max_ms = 120000};
    uint64_t size = (uint64_t)mib * MIB, total_ns = 0, exits = 0;

    if (ram_capped(st, mib))
        return;
    while (bench_keep_running(st)) {
        struct mvm_run_result res;
        struct bench_vm bv;
        uint64_t t0, t1;
        int rc;

        rc = bench_vm64_create(be, size, X86_LARGE_PAGE_SIZE, BENCH_MEM_TOUCH, 0, &bv);
        if (rc < 0) {
            bench_fail(st, "%s", mvm_error());
            return;
        }
        t0 = bench_now_ns();
        rc = vcpu_run(bv.vcpu, &opts, &res);
        t1 = bench_now_ns();
        bench_vm_destroy(&bv);
        if (rc < 0 || res.stop != MVM_STOP_DONE) {
            bench_fail(st, "mem64 touching %lld MiB should end with GUEST_DONE, but ended with '%s': %s",
                       (long long)mib, mvm_stop_name(res.stop), rc < 0 ? mvm_error() : res.detail);
            return;
        }
        exits += res.exits;
        total_ns += t1 - t0;
        sample_iteration(st, t0, t1);
    }
    if (exits != bench_iterations(st)) {
        bench_fail(st, "mem64 touch: expected exactly one userspace exit (GUEST_DONE) per VM, saw %llu in %llu VMs",
                   (unsigned long long)exits, (unsigned long long)bench_iterations(st));
        return;
    }
    bench_set_counter(st, "exits_per_iter", (double)exits / bench_iterations(st));
    bench_set_counter(st, "ns_per_page", (double)total_ns / bench_iterations(st) / (size / X86_PAGE_SIZE));
}

const struct bench_case bench_lifecycle_cases[] = {
    {.name = "lifecycle/first_insn", .fn = bench_first_insn, .flags = BENCH_MANUAL_TIME},
    {.name = "lifecycle/create", .fn = bench_create, .args = ram_mib, .arg_unit = "MiB", .flags = BENCH_MANUAL_TIME},
    {.name = "lifecycle/touch", .fn = bench_touch, .args = ram_mib, .arg_unit = "MiB", .flags = BENCH_MANUAL_TIME},
    {0},
};
