/*
 * Lab 6 guest for steal time: asks lab 6's VMM for a struct kvm_steal_time (MVM_HC_STEAL) and, where CPUID offers
 * it, KVM for its own (MSR_KVM_STEAL_TIME); then spins in rounds of its own time (the pvclock page), asks lab 6 for
 * an update after each (one exit, which also brings KVM's up to date at the next KVM_RUN), and prints the steal
 * each round saw. A host thread competing for the vCPU thread's core makes it rise. Its output holds timings: not
 * for the fidelity test.
 */
#include "runtime/hypercall.h"
#include "runtime/pvclock.h"
#include "runtime/runtime.h"

#define DEFAULT_ROUNDS  30
#define DEFAULT_SPIN_US 100000 /* 100 ms of guest time a round */

static struct pvclock_vcpu_time_info page __attribute__((aligned(4096)));
static struct kvm_steal_time st __attribute__((aligned(64)));
static struct kvm_steal_time kvm_st __attribute__((aligned(64)));
static struct mvm_pvclock_params local;
static struct mvm_steal_params local_steal;

/* Spins until `ns` of guest time (the pvclock page) have passed. */
static void spin(uint64_t ns)
{
    uint64_t t0 = pvclock_read(&page, 0, 0);

    while (pvclock_read(&page, 0, 0) - t0 < ns)
        ;
}

void guest_main(void)
{
    struct mvm_pvclock_params *p = addr_ptr(MVM_PVCLOCK_PARAMS_GPA);
    struct mvm_steal_params *s = addr_ptr(MVM_STEAL_PARAMS_GPA);
    uint64_t prev, kvm_prev = 0, now, kvm_now = 0, spin_ns, half;
    int quiet = p->magic == MVM_PVCLOCK_PARAMS_MAGIC; /* a test: results in the params, no console */

    if (!quiet) {
        p = &local;
        s = &local_steal;
        p->reads = DEFAULT_ROUNDS;
    }
    spin_ns = (uint64_t)(s->spin_us ? s->spin_us : DEFAULT_SPIN_US) * 1000;
    /* What the VMM refuses: a page not 64-byte aligned, outside RAM. */
    GUEST_ASSERT_EQ(hypercall(MVM_HC_STEAL, (uintptr_t)&st + 32, 0, 0, 0), -MVM_HC_EINVAL, "unaligned steal page");
    GUEST_ASSERT_EQ(hypercall(MVM_HC_STEAL, 0x40000000, 0, 0, 0), -MVM_HC_EFAULT, "steal page outside RAM");
    GUEST_ASSERT_EQ(st.version, 0, "nothing written for a refused request");
    GUEST_ASSERT_EQ(hypercall(MVM_HC_PVCLOCK, (uintptr_t)&page, 0, 0, 0), 0, "MVM_HC_PVCLOCK(page)");
    GUEST_ASSERT_EQ(hypercall(MVM_HC_STEAL, (uintptr_t)&st, 0, 0, 0), 0, "MVM_HC_STEAL(page)");
    GUEST_ASSERT_EQ(st.version & 1, 0, "the steal page's version is even once the VMM is done writing");
    GUEST_ASSERT_EQ(st.version != 0, 1, "steal page still version 0: lab6_steal_publish wrote nothing");
    s->has_kvm = kvm_feature_available(KVM_FEATURE_STEAL_TIME);
    if (s->has_kvm) {
        /* Answered in the kernel (no exit), which writes the page before the guest runs on: the test checks it. */
        wrmsr(MSR_KVM_STEAL_TIME, (uintptr_t)&kvm_st | KVM_MSR_ENABLED);
        kvm_prev = s->kvm_first_ns = steal_read(&kvm_st, &s->kvm_version);
        s->kvm_version_first = s->kvm_version;
    }
    prev = s->first_ns = steal_read(&st, 0);
    half = p->reads / 2;
    for (uint64_t i = 0; i < p->reads; i++) {
        if (i != half)
            p->done = i;
        spin(spin_ns);
        if (i == half && (p->flags & MVM_PVC_P_WAIT)) {
            /* The host pauses the VM now (it waits for `done` to reach half); the resume updates the page. */
            s->before_wait_ns = steal_read(&st, 0);
            p->done = i;
            while (!p->go)
                ;
            s->after_wait_ns = steal_read(&st, 0);
        }
        GUEST_ASSERT_EQ(hypercall(MVM_HC_STEAL, (uintptr_t)&st, 0, 0, 0), 0, "MVM_HC_STEAL(page) again");
        now = steal_read(&st, &s->version);
        if (s->has_kvm)
            kvm_now = steal_read(&kvm_st, &s->kvm_version);
        if (now < prev || kvm_now < kvm_prev)
            s->backwards++;
        if (!quiet)
            guest_printf("round %2llu: steal %6llu us of %llu ms (lab 6), %6llu us (KVM)\n", (unsigned long long)i,
                         (unsigned long long)((now - prev) / 1000), (unsigned long long)(spin_ns / 1000000),
                         (unsigned long long)((kvm_now - kvm_prev) / 1000));
        prev = now;
        kvm_prev = kvm_now;
    }
    s->last_ns = prev;
    s->kvm_last_ns = kvm_prev;
    p->done = p->reads;
    GUEST_ASSERT_EQ(s->backwards, 0, "steal time went down between two updates");
    if (!quiet)
        guest_printf(
            "steal in all: %llu us (lab 6), %llu us (KVM%s)\n", (unsigned long long)((s->last_ns - s->first_ns) / 1000),
            (unsigned long long)((s->kvm_last_ns - s->kvm_first_ns) / 1000), s->has_kvm ? "" : ": not offered");
}
