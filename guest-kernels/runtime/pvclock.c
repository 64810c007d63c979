/* Guest side of a paravirtual clock: the version-checked read of a pvclock_vcpu_time_info, with no exit. */
#include "runtime/pvclock.h"

uint64_t pvclock_scale_delta(uint64_t delta, uint32_t mul, int8_t shift)
{
    uint64_t lo, hi;

    if (shift < 0)
        delta >>= -shift;
    else
        delta <<= shift;
    /* (delta * mul) >> 32 in 96 bits: each 32-bit half of delta times mul fits in 64. */
    lo = (delta & 0xffffffffu) * mul;
    hi = (delta >> 32) * mul;
    return hi + (lo >> 32);
}

uint64_t pvclock_at(const struct pvclock_vcpu_time_info *snap, uint64_t tsc)
{
    return snap->system_time + pvclock_scale_delta(tsc - snap->tsc_timestamp, snap->tsc_to_system_mul, snap->tsc_shift);
}

/* The fields the reader uses, copied between two matching even versions; returns the TSC read inside. */
static uint64_t snapshot_tsc(const volatile struct pvclock_vcpu_time_info *ti, struct pvclock_vcpu_time_info *snap,
                             uint64_t *retries)
{
    uint32_t v;
    uint64_t tsc;

    for (;;) {
        v = ti->version;
        /* x86 keeps loads in order; the compiler must too (Linux: pvclock_read_begin's smp_rmb). */
        __asm__ volatile("" ::: "memory");
        tsc = rdtsc();
        snap->tsc_timestamp = ti->tsc_timestamp;
        snap->system_time = ti->system_time;
        snap->tsc_to_system_mul = ti->tsc_to_system_mul;
        snap->tsc_shift = ti->tsc_shift;
        snap->flags = ti->flags;
        __asm__ volatile("" ::: "memory");
        if (!(v & 1) && ti->version == v)
            break;
        if (retries)
            ++*retries;
    }
    snap->version = v;
    return tsc;
}

uint64_t pvclock_read(const volatile struct pvclock_vcpu_time_info *ti, uint64_t *tsc_out, uint64_t *retries)
{
    struct pvclock_vcpu_time_info snap;
    uint64_t tsc = snapshot_tsc(ti, &snap, retries);

    if (tsc_out)
        *tsc_out = tsc;
    return pvclock_at(&snap, tsc);
}

uint64_t pvclock_snapshot(const volatile struct pvclock_vcpu_time_info *ti, struct pvclock_vcpu_time_info *snap,
                          uint64_t *retries)
{
    return snapshot_tsc(ti, snap, retries);
}

int kvm_feature_available(unsigned bit)
{
    uint32_t a = KVM_CPUID_SIGNATURE, b, c = 0, d;

    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    if (b != 0x4b4d564b || c != 0x564b4d56 || d != 0x4d) /* "KVMKVMKVM\0\0\0" */
        return 0;
    a = KVM_CPUID_FEATURES;
    c = 0;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return (a >> bit) & 1;
}

int kvmclock_available(void)
{
    return kvm_feature_available(KVM_FEATURE_CLOCKSOURCE2);
}

uint64_t steal_read(const volatile struct kvm_steal_time *st, uint32_t *version)
{
    uint32_t v;
    uint64_t steal;

    do {
        v = st->version;
        __asm__ volatile("" ::: "memory"); /* Linux: virt_rmb() */
        steal = st->steal;
        __asm__ volatile("" ::: "memory");
    } while ((v & 1) || v != st->version);
    if (version)
        *version = v;
    return steal;
}
