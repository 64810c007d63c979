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
#include <string.h>

#include "bench.h"
#include "bench_env.h"
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
    struct mvm_vm *vm = NULL;
    char path[600];
    int rc;

    bench_guest_path("lab6/readcost", path, sizeof(path));
    rc = vm_create(be, &vm);
    if (rc == 0)
        rc = vm_mem_add(vm, 0, 2 << 20, 0);
    if (rc == 0)
        rc = vm_devices_add_standard(vm, NULL); /* lab 6's clock device and hypercall, lab 4's clock_ns */
    if (rc == 0)
        rc = vm_load_file(vm, path, MVM_BOOT_LOAD_GPA, NULL);
    if (rc == 0)
        rc = vm_write(vm, MVM_PVCLOCK_PARAMS_GPA, p, sizeof(*p));
    if (rc == 0)
        rc = vcpu_create(vm, 0, vcpu_out);
    if (rc == 0)
        rc = vcpu_setup_mode(*vcpu_out, MVM_MODE_LONG, MVM_BOOT_LOAD_GPA);
    if (rc < 0) {
        vm_destroy(vm);
        return rc;
    }
    *vm_out = vm;
    return 0;
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

/* The names say the source: lab6/read/page/soft is one read of the pvclock page on the soft backend. */
const struct bench_case bench_lab6_cases[] = {
    {.name = "lab6/read/page", .fn = bench_lab6_read, .arg = MVM_PVC_SRC_PAGE, .flags = BENCH_MANUAL_TIME},
    {.name = "lab6/read/rdtsc", .fn = bench_lab6_read, .arg = MVM_PVC_SRC_RDTSC, .flags = BENCH_MANUAL_TIME},
    {.name = "lab6/read/mmio", .fn = bench_lab6_read, .arg = MVM_PVC_SRC_MMIO, .flags = BENCH_MANUAL_TIME},
    {.name = "lab6/read/hypercall", .fn = bench_lab6_read, .arg = MVM_PVC_SRC_HC, .flags = BENCH_MANUAL_TIME},
    {0},
};
