/*
 * Lab 6 guest for a pause from outside (`minivmm run --pause-at MS --pause-for MS`, or SIGUSR1/SIGUSR2): reads
 * the pvclock page for one second of its own time with no exit; each time the VMM publishes the page again (at a
 * resume) it prints how far time moved against how far the TSC moved, so a pause shows as time standing still or
 * jumping; kvmclock is read beside it throughout. Its output holds timings: not for the fidelity test.
 */
#include "runtime/hypercall.h"
#include "runtime/pvclock.h"
#include "runtime/runtime.h"

#define RUN_NS 1000000000ull /* one second of guest time */

static struct pvclock_vcpu_time_info page __attribute__((aligned(4096)));
static struct pvclock_vcpu_time_info kvm_page __attribute__((aligned(4096)));

/* pvclock - kvmclock at the TSC value of the pvclock read, in ns. */
static int64_t kvm_diff(uint64_t tsc, uint64_t now)
{
    struct pvclock_vcpu_time_info k;

    pvclock_snapshot(&kvm_page, &k, 0);
    return (int64_t)(now - pvclock_at(&k, tsc));
}

void guest_main(void)
{
    struct pvclock_vcpu_time_info snap;
    uint64_t reads = 0, backwards = 0, retries = 0, republished = 0, kvm_max = 0;
    uint64_t tsc, prev_tsc, now, prev, start;
    uint32_t version;
    int kvmclock = kvmclock_available();

    GUEST_ASSERT_EQ(hypercall(MVM_HC_PVCLOCK, (uintptr_t)&page, 0, 0, 0), 0, "MVM_HC_PVCLOCK(page)");
    if (kvmclock)
        wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uintptr_t)&kvm_page | 1);
    prev_tsc = pvclock_snapshot(&page, &snap, &retries);
    start = prev = pvclock_at(&snap, prev_tsc);
    version = snap.version;
    do {
        tsc = pvclock_snapshot(&page, &snap, &retries);
        now = pvclock_at(&snap, tsc);
        reads++;
        if (now < prev)
            backwards++;
        if (snap.version != version) {
            /* A resume: the step across it in guest time, and in TSC ticks at the new scale (time that passed). */
            uint64_t step = now - prev,
                     ticks = pvclock_scale_delta(tsc - prev_tsc, snap.tsc_to_system_mul, snap.tsc_shift);

            republished++;
            version = snap.version;
            guest_printf("page published again (version %u) after %llu reads: across it\n", version,
                         (unsigned long long)reads);
            guest_printf("the TSC +%llu us, guest time +%llu us: it %s\n", (unsigned long long)(ticks / 1000),
                         (unsigned long long)(step / 1000),
                         step + ticks / 4 < ticks ? "stood still over the pause" : "jumped with the pause");
        }
        if (kvmclock && (reads & 1023) == 0) {
            int64_t d = kvm_diff(tsc, now);
            uint64_t a = (uint64_t)(d < 0 ? -d : d);

            if (a > kvm_max)
                kvm_max = a;
        }
        prev = now;
        prev_tsc = tsc;
    } while (now - start < RUN_NS);
    guest_printf("%llu reads in 1 s, %llu backwards, %llu retried, %llu republished; no exit\n",
                 (unsigned long long)reads, (unsigned long long)backwards, (unsigned long long)retries,
                 (unsigned long long)republished);
    if (kvmclock)
        guest_printf("kvmclock beside it: at most %llu ns apart\n", (unsigned long long)kvm_max);
    GUEST_ASSERT_EQ(backwards, 0, "time went backwards");
}
