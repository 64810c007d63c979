/*
 * The exit-cost table, after kvm-unit-tests' vmexit suite: one exits64 loop
 * (long mode: some KVMs, KVM-PVM for one, emulate real mode instruction by
 * instruction) per exit kind, on each backend, plus the same OUT loop driven by a bare
 * KVM_RUN loop to show what the VMM's own exit path adds.
 * Timing: Google Benchmark's time is the host's clock over a whole run of
 * bare iterations divided by their number (the mean; one GUEST_DONE exit
 * included). min/median/p99 come from a second run in which the guest
 * brackets each iteration with RDTSC; where RDTSC itself traps (nested or
 * software virtualization) exit/none shows that floor in the same units.
 */
#include <stdio.h>
#include <string.h>

#include "bench/bench_abi.h"
#include "bench.h"
#include "bench_env.h"
#include "bench_vm.h"

/* The most iterations one run asks of the guest: %ecx is 32 bits and one run should stay well under its timer. */
#define EXIT_ITERATIONS_MAX 100000000u
#define KVM_ENOSYS          1000 /* linux/kvm_para.h: the answer to an unknown hypercall number */

struct exit_kind {
    int kind;
    uint32_t reason; /* the KVM_EXIT_* each iteration makes, or 0 when it makes none */
    const char *what;
};

static const struct exit_kind exit_kinds[BENCH_KIND_COUNT] = {
    [BENCH_KIND_NONE] = {BENCH_KIND_NONE, 0, "no exit"},
    [BENCH_KIND_OUT] = {BENCH_KIND_OUT, KVM_EXIT_IO, "OUT to port 0x530"},
    [BENCH_KIND_IN] = {BENCH_KIND_IN, KVM_EXIT_IO, "IN from port 0x530"},
    [BENCH_KIND_MMIO_READ] = {BENCH_KIND_MMIO_READ, KVM_EXIT_MMIO, "load from MMIO gpa 0x40000000"},
    [BENCH_KIND_MMIO_WRITE] = {BENCH_KIND_MMIO_WRITE, KVM_EXIT_MMIO, "store to MMIO gpa 0x40000000"},
    [BENCH_KIND_HLT] = {BENCH_KIND_HLT, KVM_EXIT_HLT, "HLT"},
    [BENCH_KIND_CPUID] = {BENCH_KIND_CPUID, 0, "CPUID"},
    [BENCH_KIND_HYPERCALL] = {BENCH_KIND_HYPERCALL, 0, "hypercall"},
};

/* The iteration count as the guest's %ecx; 0 (after bench_fail) when it does not fit one guest run. */
static uint32_t iterations_of(struct bench_state *st)
{
    uint64_t n = bench_iterations(st);

    if (n > EXIT_ITERATIONS_MAX) {
        bench_fail(st, "%llu iterations do not fit one guest run (at most %u): ask for less time per benchmark",
                   (unsigned long long)n, EXIT_ITERATIONS_MAX);
        return 0;
    }
    return (uint32_t)n;
}

/* HLT stops the run loop every time, so each iteration is one vcpu_run; then one more for GUEST_DONE. */
static int run_hlts(struct bench_vm *bv, uint32_t n, uint64_t *exits, struct mvm_run_result *res)
{
    static const struct mvm_run_opts once = {.max_exits = 1};
    int rc;

    for (uint32_t i = 0; i < n; i++) {
        rc = vcpu_run(bv->vcpu, &once, res);
        if (rc < 0)
            return rc;
        *exits += res->exits;
        if (res->stop != MVM_STOP_HLT)
            return 0;
    }
    rc = vcpu_run(bv->vcpu, &once, res);
    *exits += res->exits;
    return rc;
}

/*
 * The VMM's exit path left out: bare KVM_RUN calls, no exit switch, no
 * handler, until the done ucall. Counts the OUTs as if a handler had.
 */
static int run_bare(struct bench_vm *bv, uint64_t *exits, struct mvm_run_result *res)
{
    struct kvm_run *run = vcpu_run_page(bv->vcpu);

    for (;;) {
        int rc = vcpu_enter(bv->vcpu);

        if (rc < 0)
            return rc;
        ++*exits;
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == BENCH_PORT) {
            bv->pio_exits++;
            continue;
        }
        res->stop =
            run->exit_reason == KVM_EXIT_IO && run->io.port == MVM_PORT_UCALL ? MVM_STOP_DONE : MVM_STOP_UNHANDLED;
        snprintf(res->detail, sizeof(res->detail), "bare KVM_RUN loop: exit %s", mvm_exit_name(run->exit_reason));
        return 0;
    }
}

/* Runs exits64 to its GUEST_DONE; adds the userspace exits it made to *exits. */
static int run_guest(struct bench_vm *bv, int kind, uint32_t n, bool bare, uint64_t *exits, struct mvm_run_result *res)
{
    const struct mvm_run_opts opts = {.max_exits = EXIT_ITERATIONS_MAX + 2, .max_ms = 20000};
    int rc;

    memset(res, 0, sizeof(*res));
    if (bare)
        return run_bare(bv, exits, res);
    if ((kind & ~BENCH_KIND_TIMED) == BENCH_KIND_HLT)
        return run_hlts(bv, n, exits, res);
    rc = vcpu_run(bv->vcpu, &opts, res);
    *exits += res->exits;
    return rc;
}

/* Exact exit accounting: any surprise fails the benchmark with what was expected and what came. */
static bool exits_check(struct bench_state *st, const struct bench_vm *bv, const struct exit_kind *k, uint32_t n,
                        uint64_t exits, const struct mvm_run_result *res)
{
    uint64_t want = k->reason ? n : 0;
    uint64_t handled = k->reason == KVM_EXIT_IO ? bv->pio_exits : k->reason == KVM_EXIT_MMIO ? bv->mmio_exits : want;

    if (res->stop != MVM_STOP_DONE) {
        bench_fail(st, "exits64 (%s x %u) should end with GUEST_DONE, but ended with '%s': %s", k->what, n,
                   mvm_stop_name(res->stop), res->detail);
        return false;
    }
    if (exits != want + 1 || handled != want) {
        bench_fail(st,
                   "exits64 (%s x %u): expected %llu userspace exits (%s, plus GUEST_DONE), "
                   "saw %llu, %llu of them at the handler",
                   k->what, n, (unsigned long long)want + 1, k->reason ? "one per iteration" : "none per iteration",
                   (unsigned long long)exits, (unsigned long long)handled);
        return false;
    }
    return true;
}

/* A hypercall KVM does not know must come back as -KVM_ENOSYS in EAX, with no userspace exit. */
static bool hypercall_check(struct bench_state *st, struct bench_vm *bv)
{
    struct bench_result r;

    if (bench_result_read(bv, &r, sizeof(r)) < 0) {
        bench_fail(st, "%s", mvm_error());
        return false;
    }
    if (r.hc_ret != (uint32_t)-KVM_ENOSYS) {
        bench_fail(st, "%s with RAX=0x%x: expected EAX = -KVM_ENOSYS (0x%x) from the kernel, got 0x%x",
                   r.hc_insn == BENCH_HC_VMMCALL ? "vmmcall" : "vmcall", BENCH_HC_NR, (uint32_t)-KVM_ENOSYS, r.hc_ret);
        return false;
    }
    bench_set_counter(st, "vmmcall", r.hc_insn == BENCH_HC_VMMCALL);
    return true;
}

/* One run of exits64 in a fresh VM, its exits checked; returns false after bench_fail. */
static bool run_checked(struct bench_state *st, const struct mvm_backend *be, const struct exit_kind *k, int kind,
                        uint32_t n, bool bare, bool timed_by_library, struct bench_vm *bv)
{
    struct mvm_run_result res;
    uint64_t exits = 0;
    int rc = bench_vm64_exits_create(be, kind, n, bv);

    if (rc < 0) {
        bench_fail(st, "%s", mvm_error());
        return false;
    }
    if (timed_by_library)
        while (rc == 0 && bench_keep_running_batch(st, n))
            rc = run_guest(bv, kind, n, bare, &exits, &res);
    else
        rc = run_guest(bv, kind, n, bare, &exits, &res);
    if (rc < 0)
        bench_fail(st, "%s", mvm_error());
    else if (exits_check(st, bv, k, n, exits, &res) && (k->kind != BENCH_KIND_HYPERCALL || hypercall_check(st, bv))) {
        if (timed_by_library)
            bench_set_counter(st, "exits_per_iter", (double)(exits - 1) / n);
        return true;
    }
    bench_vm_destroy(bv);
    return false;
}

/*
 * The host's clock times a bare loop of n iterations (Google Benchmark's
 * time: the mean); then a second VM runs up to BENCH_SAMPLES_MAX iterations
 * with RDTSC around each, for min/median/p99.
 */
static void exit_measure(struct bench_state *st, const struct mvm_backend *be, int kind, bool bare)
{
    const struct exit_kind *k = &exit_kinds[kind];
    uint32_t n = iterations_of(st), s = n < BENCH_SAMPLES_MAX ? n : BENCH_SAMPLES_MAX;
    struct bench_vm bv;

    if (n == 0 || !run_checked(st, be, k, kind, n, bare, true, &bv))
        return;
    bench_vm_destroy(&bv);
    if (!run_checked(st, be, k, kind | BENCH_KIND_TIMED, s, bare, false, &bv))
        return;
    if (bench_samples_collect(st, &bv, s, 1) < 0)
        bench_fail(st, "%s", mvm_error());
    bench_vm_destroy(&bv);
}

static void bench_exit(struct bench_state *st, const struct mvm_backend *be, int64_t kind)
{
    exit_measure(st, be, (int)kind, false);
}

/* exit/out minus this is what the VMM's exit switch and handler dispatch add per exit. */
static void bench_exit_out_bare(struct bench_state *st, const struct mvm_backend *be, int64_t unused)
{
    (void)unused;
    exit_measure(st, be, BENCH_KIND_OUT, true);
}

static const char *hypercall_valid(const struct mvm_backend *be)
{
    if (bench_kvm_is_pvm(be))
        return "/dev/kvm is KVM-PVM, which does not answer VMMCALL/VMCALL: the guest spins on the instruction";
    return NULL;
}

const struct bench_case bench_exit_cases[] = {
    {.name = "exit/none", .fn = bench_exit, .arg = BENCH_KIND_NONE},
    {.name = "exit/out", .fn = bench_exit, .arg = BENCH_KIND_OUT},
    {.name = "exit/out_bare", .fn = bench_exit_out_bare},
    {.name = "exit/in", .fn = bench_exit, .arg = BENCH_KIND_IN},
    {.name = "exit/mmio_read", .fn = bench_exit, .arg = BENCH_KIND_MMIO_READ},
    {.name = "exit/mmio_write", .fn = bench_exit, .arg = BENCH_KIND_MMIO_WRITE},
    {.name = "exit/hlt", .fn = bench_exit, .arg = BENCH_KIND_HLT},
    {.name = "exit/cpuid", .fn = bench_exit, .arg = BENCH_KIND_CPUID},
    {.name = "exit/hypercall", .fn = bench_exit, .valid = hypercall_valid, .arg = BENCH_KIND_HYPERCALL},
    {0},
};
