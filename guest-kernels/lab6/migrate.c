/*
 * Lab 6 guest for a migration from outside (`minivmm run --pause-at MS --pause-for MS --migrate-tsc-khz KHZ`):
 * reads the pvclock page 10 million times with no exit and checks time never goes backwards; each time the VMM
 * publishes the page again (at the resume) it prints the TSC rate the new scale stands for, and how far time and
 * the TSC moved across. Its output holds timings: not for the fidelity test.
 */
#include "runtime/hypercall.h"
#include "runtime/pvclock.h"
#include "runtime/runtime.h"

#define READS 10000000ull

static struct pvclock_vcpu_time_info page __attribute__((aligned(4096)));

/* The TSC rate in kHz a scale stands for: 1e6 kHz per ns-per-tick, undoing the shift. */
static uint64_t scale_khz(uint32_t mul, int8_t shift)
{
    uint64_t khz = (1000000ull << 32) / mul;

    return shift < 0 ? khz << -shift : khz >> shift;
}

void guest_main(void)
{
    struct pvclock_vcpu_time_info snap;
    uint64_t reads, backwards = 0, retries = 0, republished = 0, tsc, prev_tsc, now, prev;
    uint32_t version;

    GUEST_ASSERT_EQ(hypercall(MVM_HC_PVCLOCK, (uintptr_t)&page, 0, 0, 0), 0, "MVM_HC_PVCLOCK(page)");
    prev_tsc = pvclock_snapshot(&page, &snap, &retries);
    prev = pvclock_at(&snap, prev_tsc);
    version = snap.version;
    guest_printf("page: mul %u shift %d (a %llu kHz TSC); %llu reads\n", snap.tsc_to_system_mul, snap.tsc_shift,
                 (unsigned long long)scale_khz(snap.tsc_to_system_mul, snap.tsc_shift), READS);
    for (reads = 1; reads < READS; reads++) {
        tsc = pvclock_snapshot(&page, &snap, &retries);
        now = pvclock_at(&snap, tsc);
        if (now < prev)
            backwards++;
        if (snap.version != version) {
            republished++;
            version = snap.version;
            guest_printf("read %llu: published again, mul %u shift %d (a %llu kHz TSC)\n", (unsigned long long)reads,
                         snap.tsc_to_system_mul, snap.tsc_shift,
                         (unsigned long long)scale_khz(snap.tsc_to_system_mul, snap.tsc_shift));
            guest_printf("  across it time moved %llu us; the TSC reads %s than before\n",
                         (unsigned long long)((now - prev) / 1000), tsc < prev_tsc ? "LOWER" : "higher");
        }
        prev = now;
        prev_tsc = tsc;
    }
    guest_printf("%llu reads with no exit: %llu backwards, %llu retried, %llu republished\n", (unsigned long long)reads,
                 (unsigned long long)backwards, (unsigned long long)retries, (unsigned long long)republished);
    GUEST_ASSERT_EQ(backwards, 0, "time went backwards");
}
