/*
 * Lab 6 guest for the read-cost bench: `reads` reads of one time source
 * (params flags >> 8: the pvclock page, raw RDTSC, the trapping MMIO clock,
 * lab 4's clock hypercall), timed in TSC cycles. Default: 1000 page reads.
 * MVM_PVC_P_WAIT: at half the reads, reading goes on until the host sets
 * `go` (the bench pauses or migrates the VM then); page reads count the
 * publishes they see (`republished`).
 */
#include "runtime/hypercall.h"
#include "runtime/pvclock.h"
#include "runtime/runtime.h"

static struct pvclock_vcpu_time_info page __attribute__((aligned(64)));
static struct mvm_pvclock_params local = {.reads = 1000};

static inline uint64_t mmio_clock(void)
{
    return *(volatile uint64_t *)addr_ptr(MVM_CLOCK_MMIO_GPA);
}

void guest_main(void)
{
    struct mvm_pvclock_params *p = addr_ptr(MVM_PVCLOCK_PARAMS_GPA);
    struct pvclock_vcpu_time_info snap;
    uint64_t prev = 0, now = 0, t0, retries = 0, tsc, half;
    uint32_t version = 0;
    unsigned src;

    if (p->magic != MVM_PVCLOCK_PARAMS_MAGIC)
        p = &local;
    src = (p->flags & MVM_PVC_P_SOURCE_MASK) >> 8;
    p->page_gpa = (uintptr_t)&page;
    GUEST_ASSERT_EQ(hypercall(MVM_HC_PVCLOCK, (uintptr_t)&page, 0, 0, 0), 0, "MVM_HC_PVCLOCK(page)");
    half = p->flags & MVM_PVC_P_WAIT ? p->reads / 2 : ~0ull;
    t0 = rdtsc();
    for (uint64_t i = 0; i < p->reads; i++) {
        if (i == half)
            p->done = i;
        switch (src) {
        case MVM_PVC_SRC_PAGE:
            do {
                tsc = pvclock_snapshot(&page, &snap, &retries);
                now = pvclock_at(&snap, tsc);
                if (snap.version != version) {
                    p->republished += version != 0;
                    version = snap.version;
                }
                if (now < prev)
                    p->backwards++;
                prev = now;
            } while (i == half && !p->go);
            break;
        case MVM_PVC_SRC_RDTSC:
            now = rdtsc();
            break;
        case MVM_PVC_SRC_MMIO:
            now = mmio_clock();
            break;
        default:
            now = (uint64_t)hc_clock_ns();
            break;
        }
        if (now < prev)
            p->backwards++;
        prev = now;
    }
    p->tsc_cycles = rdtsc() - t0;
    p->retries = retries;
    p->done = p->reads;
    GUEST_ASSERT_EQ(p->backwards, 0, "the clock went backwards");
}
