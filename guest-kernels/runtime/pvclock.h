/* Guest side of a paravirtual clock: reading a pvclock_vcpu_time_info page (lab 6's, or KVM's kvmclock) with no exit.
 */
#ifndef GUEST_PVCLOCK_H
#define GUEST_PVCLOCK_H

#include <stdint.h>

#include "abi.h"

/*
 * From the uapi's asm/kvm_para.h, which this runtime cannot include: it is installed for x86-64 only, and the
 * runtime builds for 32-bit guests too. The layout is checked below.
 */
#define KVM_CPUID_SIGNATURE      0x40000000
#define KVM_CPUID_FEATURES       0x40000001
#define KVM_FEATURE_CLOCKSOURCE2 3
#define KVM_FEATURE_STEAL_TIME   5
#define KVM_MSR_ENABLED          1
#define MSR_KVM_SYSTEM_TIME_NEW  0x4b564d01 /* kvmclock's page, bit 0 = enable */
#define MSR_KVM_STEAL_TIME       0x4b564d03 /* steal time's page (64-byte aligned), bit 0 = enable */

/* KVM's steal time (msr.rst): steal in ns, version a seqlock (odd while the host writes). */
struct kvm_steal_time {
    uint64_t steal;
    uint32_t version;
    uint32_t flags;
    uint8_t preempted;
    uint8_t u8_pad[3];
    uint32_t pad[11];
};
_Static_assert(sizeof(struct kvm_steal_time) == 64 && __builtin_offsetof(struct kvm_steal_time, version) == 8 &&
                   __builtin_offsetof(struct kvm_steal_time, preempted) == 16,
               "struct kvm_steal_time layout (msr.rst)");

/* RDTSC after LFENCE (Linux's rdtsc_ordered): not executed ahead of the loads before it. */
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

/*
 * delta << shift (>> -shift) times mul, >> 32: Linux's pvclock_scale_delta.
 * The product is taken in 96 bits (a 64x32 multiply split in two 32x32
 * halves), so a delta of many seconds does not overflow.
 */
uint64_t pvclock_scale_delta(uint64_t delta, uint32_t mul, int8_t shift);

/* Time in ns that the page gives at TSC value `tsc` (one consistent snapshot of the fields; no version check). */
uint64_t pvclock_at(const struct pvclock_vcpu_time_info *snap, uint64_t tsc);

/*
 * One read of the clock: version (retried while odd), RDTSC and the fields,
 * version again (retried when it changed: the host wrote meanwhile). No exit.
 * *tsc_out (may be NULL) gets the TSC value the time belongs to, *retries (may
 * be NULL) is increased by the rounds the version check sent back.
 */
uint64_t pvclock_read(const volatile struct pvclock_vcpu_time_info *ti, uint64_t *tsc_out, uint64_t *retries);

/*
 * The same read, keeping what it saw: a consistent copy of the page (version
 * included) in *snap, and the TSC value read inside, which it returns; time
 * is pvclock_at(snap, tsc). For reading two clocks at one TSC value, or
 * noticing the host published again.
 */
uint64_t pvclock_snapshot(const volatile struct pvclock_vcpu_time_info *ti, struct pvclock_vcpu_time_info *snap,
                          uint64_t *retries);

/* Whether the hypervisor says it is KVM with kvmclock's MSR_KVM_SYSTEM_TIME_NEW (CPUID 0x40000001 bit 3). */
int kvmclock_available(void);

/* Whether the hypervisor says it is KVM and offers feature bit `bit` of CPUID 0x40000001 (KVM_FEATURE_*). */
int kvm_feature_available(unsigned bit);

/*
 * Steal time from a struct kvm_steal_time (lab 6's or KVM's), ns: version
 * retried while odd or changed meanwhile, as Linux's kvm_steal_clock. No exit.
 * *version (may be NULL) gets the even version the value belongs to.
 */
uint64_t steal_read(const volatile struct kvm_steal_time *st, uint32_t *version);

#endif
