/*
 * Lab 6's measurement: one time read by a long-mode guest through (a) the
 * pvclock page (version, RDTSC, fields, version: no exit), (b) raw RDTSC (no
 * exit, and no nanoseconds: the floor), (c) the trapping clock, an 8-byte
 * load from MVM_CLOCK_MMIO_GPA (one KVM_EXIT_MMIO per read, like a CMOS RTC),
 * (d) lab 4's MVM_HC_CLOCK_NS hypercall (one doorbell exit per read). One
 * iteration is one read (guest-kernels/lab6/readcost.c).
 * Timing (manual): the guest's TSC around its read loop, so the set-up, the
 * page's hypercall and the GUEST_DONE are out. Exits are counted exactly:
 * n reads make 2 + n * (0 or 1) (the MVM_HC_PVCLOCK doorbell and GUEST_DONE).
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "bench_env.h"
#include "bench_vm.h"
#include "lab.h"
#include "x86.h"

#define LAB6_FIXED_EXITS 2 /* MVM_HC_PVCLOCK (the page is asked for whatever the source) and GUEST_DONE */

static const char *const source_names[] = {"the pvclock page", "RDTSC", "the trapping MMIO clock",
                                           "the clock hypercall"};

/* Exits one read makes through each source. */
static uint64_t exits_per_read(int src)
{
    return src == MVM_PVC_SRC_MMIO || src == MVM_PVC_SRC_HC ? 1 : 0;
}

static int readcost_vm_create(const struct mvm_backend *be, const struct mvm_pvclock_params *p, struct mvm_vm **vm_out,
                              struct mvm_vcpu **vcpu_out)
{
    return bench_lab_vm_create(be, "lab6/readcost", MVM_PVCLOCK_PARAMS_GPA, p, sizeof(*p), NULL, NULL, vm_out,
                               vcpu_out);
}

static void bench_lab6_read(struct bench_state *st, const struct mvm_backend *be, int64_t src)
{
    const struct mvm_run_opts opts = {.max_ms = 120000};
    uint64_t n = bench_iterations(st), want = LAB6_FIXED_EXITS + n * exits_per_read((int)src);
    struct mvm_pvclock_params p = {
        .magic = MVM_PVCLOCK_PARAMS_MAGIC, .flags = (uint32_t)src << 8 & MVM_PVC_P_SOURCE_MASK, .reads = n};
    struct mvm_run_result res;
    struct mvm_vcpu *vcpu;
    struct mvm_vm *vm;
    int rc = readcost_vm_create(be, &p, &vm, &vcpu);

    if (rc < 0) {
        bench_fail(st, "%s", mvm_error());
        return;
    }
    memset(&res, 0, sizeof(res));
    while (rc == 0 && bench_keep_running_batch(st, n))
        rc = vcpu_run(vcpu, &opts, &res);
    if (rc == 0)
        rc = vm_read(vm, MVM_PVCLOCK_PARAMS_GPA, &p, sizeof(p));
    if (rc < 0)
        bench_fail(st, "%s", mvm_error());
    else if (res.stop != MVM_STOP_DONE)
        bench_fail(st, "lab6/readcost, %llu reads of %s: ended with '%s': %s", (unsigned long long)n, source_names[src],
                   mvm_stop_name(res.stop), res.detail);
    else if (res.exits != want || p.done != n)
        bench_fail(st,
                   "lab6/readcost, %llu reads of %s: expected exactly %llu exits (%llu per read, plus the page's "
                   "hypercall and GUEST_DONE) and %llu reads done; got %llu exits (%llu MMIO), %llu reads",
                   (unsigned long long)n, source_names[src], (unsigned long long)want,
                   (unsigned long long)exits_per_read((int)src), (unsigned long long)n, (unsigned long long)res.exits,
                   (unsigned long long)res.by_reason[KVM_EXIT_MMIO], (unsigned long long)p.done);
    else {
        double ns = (double)p.tsc_cycles * bench_ns_per_cycle();

        bench_set_iteration_time(st, ns / 1e9);
        bench_set_counter(st, "exits_per_iter", (double)(res.exits - LAB6_FIXED_EXITS) / n);
        bench_set_counter(st, "ns_per_read", ns / n);
        bench_set_counter(st, "retries_per_read", (double)p.retries / n);
        bench_set_label(st, bench_backend_label(be));
    }
    vm_destroy(vm);
}

/* A migration in the middle of the reads: at half, pause 100 ms and move the TSC to 1.5 times its rate. */
struct migrate_arg {
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    uint32_t tsc_khz;
    volatile int stop;
};

static void sleep_ms(unsigned ms)
{
    struct timespec d = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    nanosleep(&d, NULL);
}

static void *migrate_thread(void *arg)
{
    struct migrate_arg *a = arg;
    volatile struct mvm_pvclock_params *p = vm_gpa_to_hva(a->vm, MVM_PVCLOCK_PARAMS_GPA, sizeof(*p));

    while (p && !a->stop && p->done < p->reads / 2)
        sleep_ms(1);
    if (!p || a->stop)
        return NULL;
    vcpu_pause_migrate(a->vcpu, 100, false, a->tsc_khz);
    sleep_ms(150); /* the pause is taken within microseconds; let the guest finish after it */
    p->go = 1;
    return NULL;
}

static const char *migrate_valid(const struct mvm_backend *be)
{
    int fd = be->open_dev(), cap = fd < 0 ? 0 : be->ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL);

    if (fd >= 0)
        be->close(fd);
    return cap > 0 ? NULL : "no TSC scaling (KVM_CAP_TSC_CONTROL is 0): no migration to another TSC rate here";
}

/*
 * `arg` reads of the pvclock page (one iteration each) with a pause and a TSC-rate change at half: the issue's
 * "10 million reads with 0 exits, never backwards, across a pause and a TSC-rate change". Fails unless all hold.
 * The time is the host's wall time of the whole run, the 100 ms pause included.
 */
static void bench_lab6_migrate(struct bench_state *st, const struct mvm_backend *be, int64_t arg)
{
    (void)arg;
    const struct mvm_run_opts opts = {.max_ms = 300000};
    uint64_t n = bench_iterations(st), t0; /* `arg` (10 million) unless bench/run.sh --smoke caps it */
    struct mvm_pvclock_params p = {
        .magic = MVM_PVCLOCK_PARAMS_MAGIC, .flags = MVM_PVC_SRC_PAGE << 8 | MVM_PVC_P_WAIT, .reads = n};
    struct migrate_arg a = {0};
    struct mvm_run_result res;
    struct timespec ts;
    pthread_t thread;
    int khz, rc = readcost_vm_create(be, &p, &a.vm, &a.vcpu);

    if (rc < 0) {
        bench_fail(st, "%s", mvm_error());
        return;
    }
    khz = vcpu_ioctl(a.vcpu, KVM_GET_TSC_KHZ, NULL, "KVM_GET_TSC_KHZ");
    a.tsc_khz = khz > 0 ? (uint32_t)khz / 2 * 3 : 0;
    rc = khz < 0 ? khz : -pthread_create(&thread, NULL, migrate_thread, &a);
    if (rc < 0) {
        bench_fail(st, "%s", khz < 0 ? mvm_error() : "cannot start the migration thread");
        vm_destroy(a.vm);
        return;
    }
    memset(&res, 0, sizeof(res));
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    while (rc == 0 && bench_keep_running_batch(st, n))
        rc = vcpu_run(a.vcpu, &opts, &res);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    a.stop = 1;
    pthread_join(thread, NULL);
    if (rc == 0)
        rc = vm_read(a.vm, MVM_PVCLOCK_PARAMS_GPA, &p, sizeof(p));
    if (rc < 0)
        bench_fail(st, "%s", mvm_error());
    else if (res.stop != MVM_STOP_DONE)
        bench_fail(st, "lab6/readcost, %llu page reads across a migration: ended with '%s': %s", (unsigned long long)n,
                   mvm_stop_name(res.stop), res.detail);
    else if (res.exits != LAB6_FIXED_EXITS || res.pauses != 1 || p.backwards || p.republished != 1 || p.done != n)
        bench_fail(st,
                   "lab6/readcost, %llu page reads with a migration to %u kHz at half: expected %d exits (the page's "
                   "hypercall and GUEST_DONE), 1 pause, 0 reads backwards, 1 publish seen, all reads done; got %llu "
                   "exits, %u pauses, %llu backwards, %llu publishes, %llu reads",
                   (unsigned long long)n, a.tsc_khz, LAB6_FIXED_EXITS, (unsigned long long)res.exits, res.pauses,
                   (unsigned long long)p.backwards, (unsigned long long)p.republished, (unsigned long long)p.done);
    else {
        double ns = (double)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec - t0);

        bench_set_iteration_time(st, ns / 1e9);
        bench_set_counter(st, "exits_per_iter", (double)(res.exits - LAB6_FIXED_EXITS) / (double)n);
        bench_set_counter(st, "backwards", (double)p.backwards);
        bench_set_counter(st, "new_tsc_khz", (double)a.tsc_khz);
        bench_set_counter(st, "retries_per_read", (double)p.retries / (double)n);
    }
    vm_destroy(a.vm);
}

/* The names say the source: lab6/read/page/soft is one read of the pvclock page on the soft backend. */
const struct bench_case bench_lab6_cases[] = {
    {.name = "lab6/read/page", .fn = bench_lab6_read, .arg = MVM_PVC_SRC_PAGE, .flags = BENCH_MANUAL_TIME},
    {.name = "lab6/read/rdtsc", .fn = bench_lab6_read, .arg = MVM_PVC_SRC_RDTSC, .flags = BENCH_MANUAL_TIME},
    {.name = "lab6/read/mmio", .fn = bench_lab6_read, .arg = MVM_PVC_SRC_MMIO, .flags = BENCH_MANUAL_TIME},
    {.name = "lab6/read/hypercall", .fn = bench_lab6_read, .arg = MVM_PVC_SRC_HC, .flags = BENCH_MANUAL_TIME},
    {.name = "lab6/migrate/page",
     .fn = bench_lab6_migrate,
     .valid = migrate_valid,
     .arg = 10000000,
     .flags = BENCH_MANUAL_TIME | BENCH_FIXED_ITERS},
    {0},
};
