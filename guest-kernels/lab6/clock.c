/*
 * Lab 6 guest: asks the VMM for a pvclock page (one hypercall exit), then reads
 * time from it many times with no exit, checking it never goes backwards; with
 * kvmclock, KVM's own page is read at the same TSC values and the two compared.
 */
#include "runtime/hypercall.h"
#include "runtime/pvclock.h"
#include "runtime/runtime.h"

#define DEFAULT_READS 20000
#define AGREE_NS      1000000 /* the two clocks must agree to 1 ms (the host samples its base in microseconds) */

static struct pvclock_vcpu_time_info page __attribute__((aligned(4096)));
static struct pvclock_vcpu_time_info kvm_page __attribute__((aligned(4096)));
static struct mvm_pvclock_params local;

/* KVM's kvmclock and this clock at one TSC value: pvclock - kvmclock, ns. */
static int64_t clocks_diff(void)
{
    struct pvclock_vcpu_time_info a, b;
    uint64_t tsc;

    pvclock_snapshot(&page, &a, 0);
    pvclock_snapshot(&kvm_page, &b, 0);
    tsc = rdtsc();
    return (int64_t)(pvclock_at(&a, tsc) - pvclock_at(&b, tsc));
}

void guest_main(void)
{
    struct mvm_pvclock_params *p = addr_ptr(MVM_PVCLOCK_PARAMS_GPA);
    struct pvclock_vcpu_time_info snap;
    uint64_t prev, now, tsc, prev_tsc, t0, retries = 0, half;
    uint32_t version;
    int kvmclock;

    if (p->magic != MVM_PVCLOCK_PARAMS_MAGIC) {
        p = &local;
        p->reads = DEFAULT_READS;
        p->flags = MVM_PVC_P_KVMCLOCK;
    }
    p->page_gpa = (uintptr_t)&page;
    /* What the VMM refuses in RAX: a page not 32-byte aligned, outside RAM, an argument it does not take. */
    GUEST_ASSERT_EQ(hypercall(MVM_HC_PVCLOCK, (uintptr_t)&page + 8, 0, 0, 0), -MVM_HC_EINVAL, "unaligned page");
    GUEST_ASSERT_EQ(hypercall(MVM_HC_PVCLOCK, 0x40000000, 0, 0, 0), -MVM_HC_EFAULT, "page outside RAM");
    GUEST_ASSERT_EQ(hypercall(MVM_HC_PVCLOCK, (uintptr_t)&page, 1, 0, 0), -MVM_HC_EINVAL, "RCX != 0");
    GUEST_ASSERT_EQ(page.version, 0, "nothing published for a refused request");
    GUEST_ASSERT_EQ(hypercall(MVM_HC_PVCLOCK, (uintptr_t)&page, 0, 0, 0), 0, "MVM_HC_PVCLOCK(page)");
    GUEST_ASSERT_EQ(page.version & 1, 0, "the version is even once the VMM is done writing");
    GUEST_ASSERT_EQ(page.version != 0, 1, "page still version 0: lab6_pvclock_publish wrote nothing");
    GUEST_ASSERT_EQ(page.tsc_to_system_mul >> 31, 1, "tsc_to_system_mul < 2^31: see lab6_tsc_scale");
    kvmclock = (p->flags & MVM_PVC_P_KVMCLOCK) && kvmclock_available();
    if (kvmclock) {
        wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uintptr_t)&kvm_page | 1); /* answered in the kernel: no exit */
        GUEST_ASSERT_EQ(kvm_page.version & 1, 0, "kvmclock's page is published, version even");
        GUEST_ASSERT(kvm_page.version != 0);
        p->kvm_diff_first = clocks_diff();
    }

    /* The loop: no exit in it. */
    half = p->reads / 2;
    t0 = rdtsc();
    prev_tsc = pvclock_snapshot(&page, &snap, &retries);
    prev = p->first_ns = pvclock_at(&snap, prev_tsc);
    version = snap.version;
    for (uint64_t i = 1; i < p->reads; i++) {
        if ((i & 4095) == 0 || i == half)
            p->done = i;
        /* MVM_PVC_P_WAIT: at half the reads, the host pauses the VM; reading goes on until it says so. */
        do {
            tsc = pvclock_snapshot(&page, &snap, &retries);
            now = pvclock_at(&snap, tsc);
            if (snap.version != version) {
                /* The host published again (a pause's resume): how far time moved, and how far the TSC did. */
                p->republished++;
                p->step_ns = now - prev;
                p->step_tsc_ns = pvclock_scale_delta(tsc - prev_tsc, snap.tsc_to_system_mul, snap.tsc_shift);
                version = snap.version;
            }
            prev_tsc = tsc;
            if (now < prev)
                p->backwards++;
            else if (now - prev > p->max_step_ns)
                p->max_step_ns = now - prev;
            prev = now;
        } while (i == half && (p->flags & MVM_PVC_P_WAIT) && !p->go);
        if (kvmclock && (i & 1023) == 0) {
            int64_t d = clocks_diff();
            uint64_t a = (uint64_t)(d < 0 ? -d : d);

            if (a > p->kvm_diff_max)
                p->kvm_diff_max = a;
        }
    }
    p->tsc_cycles = rdtsc() - t0;
    p->last_ns = prev;
    p->retries = retries;
    p->done = p->reads;
    GUEST_ASSERT_EQ(p->backwards, 0, "pvclock time went backwards");
    GUEST_ASSERT(p->last_ns > p->first_ns);
    guest_printf("pvclock: %s reads with no exit, never backwards\n", p == &local ? "20000" : "all");
    if (kvmclock) {
        GUEST_ASSERT(p->kvm_diff_max < AGREE_NS);
        guest_printf("kvmclock: read beside it, the two agree to 1 ms\n");
    }
    /* Leave no time value in a register: the fidelity test compares the final registers. */
    __asm__ volatile("xor %%eax, %%eax; xor %%ecx, %%ecx; xor %%edx, %%edx; xor %%esi, %%esi; xor %%edi, %%edi;"
                     "xor %%r8d, %%r8d; xor %%r9d, %%r9d; xor %%r10d, %%r10d; xor %%r11d, %%r11d"
                     :
                     :
                     : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11");
}
