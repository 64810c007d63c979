/*
 * The soft backend's deterministic mode: guest time from the guest's instruction count, not the host's clocks.
 *
 * With MINIVMM_SOFT_DETERMINISTIC=1 in the environment (`minivmm run --deterministic` sets it; the grader does for
 * the soft backend), every engine counts the instructions it executes (a UC_HOOK_CODE, one call per instruction),
 * and every time the guest or the VMM can read comes from that count: the TSC ticks once per instruction at a fixed
 * 1 GHz (KVM_GET_TSC_KHZ says 1000000), kvmclock and KVM_GET_CLOCK count one ns per instruction, and the real-time
 * clock starts at a fixed epoch. Two runs of the same guest then read the same times and leave the same trace,
 * timestamps included. The count is per process: runs with more than one vCPU are not deterministic (their
 * interleaving is the host's).
 *
 * Unicorn's RDTSC (helper_rdtsc) reads cpu_get_tsc_x86_64(env) through libunicorn's PLT, so this program's
 * definition below takes its place, as soft_uc_tb.c does for the translator; without the mode it returns the
 * host's TSC, as Unicorn's own does (cpu_get_host_ticks).
 */
#include "soft_priv.h"

#include <stdlib.h>
#include <string.h>

/* 2026-01-01T00:00:00Z: the deterministic mode's real-time clock at instruction 0. */
#define SOFT_DET_EPOCH_NS (1767225600ull * 1000000000ull)

static pthread_once_t soft_det_once = PTHREAD_ONCE_INIT;
static bool soft_det_on;
static uint64_t soft_det_count;

static void soft_det_read(void)
{
    const char *e = getenv("MINIVMM_SOFT_DETERMINISTIC");

    soft_det_on = e && *e && strcmp(e, "0");
}

bool soft_deterministic(void)
{
    pthread_once(&soft_det_once, soft_det_read);
    return soft_det_on;
}

uint64_t soft_icount(void)
{
    return __atomic_load_n(&soft_det_count, __ATOMIC_RELAXED);
}

void soft_icount_warp(uint64_t to)
{
    uint64_t cur = soft_icount();
    while (cur < to &&
           !__atomic_compare_exchange_n(&soft_det_count, &cur, to, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

uint64_t soft_det_realtime_ns(void)
{
    return SOFT_DET_EPOCH_NS + soft_icount();
}

static void soft_hook_icount(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
    (void)uc, (void)addr, (void)size, (void)ud;
    __atomic_fetch_add(&soft_det_count, 1, __ATOMIC_RELAXED);
}

bool soft_clock_hook_add(uc_engine *uc)
{
    uc_hook h;

    return !soft_deterministic() ||
           uc_hook_add(uc, &h, UC_HOOK_CODE, (void *)soft_hook_icount, NULL, 1, 0) == UC_ERR_OK;
}

uint64_t mvm_soft_virtual_ns(void)
{
    return soft_deterministic() ? soft_icount() : 0;
}

/* Takes the place of Unicorn's (target/i386/helper.c): the guest's TSC before its offset. */
__attribute__((visibility("default"))) uint64_t cpu_get_tsc_x86_64(void *env);

uint64_t cpu_get_tsc_x86_64(void *env)
{
    (void)env;
    return soft_engine_tsc(); /* the host's TSC, scaled when KVM_SET_TSC_KHZ chose another rate (soft_msr.c) */
}
