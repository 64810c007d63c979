/*
 * Lab 6: the paravirtual clock, VMM side. The guest reads time with no exit
 * from a page the VMM keeps up to date (struct pvclock_vcpu_time_info, KVM's
 * layout, minivmm/abi.h); you compute its scale from the TSC's rate, write
 * it with the version protocol, and move it when the VM is paused.
 * Contracts: labs/lab6-pvclock/lab6.h. The facts: Documentation/virt/kvm/x86/msr.rst
 * (MSR_KVM_SYSTEM_TIME_NEW), Linux's arch/x86/include/asm/pvclock.h.
 */
#include "lab6-pvclock/lab6.h"

void lab6_tsc_scale(uint64_t tsc_hz, uint32_t *mul, int8_t *shift)
{
    /*
     * TODO: KVM's kvm_get_time_scale(NSEC_PER_SEC, tsc_hz). Start with
     * rate = tsc_hz and shift 0. Halve the rate (shift--) while it is above
     * 2e9 or has bits above 31; double it (shift++) while it is <= 1e9. Then
     * mul = (1e9 << 32) / rate (1e9 << 32 fits in 64 bits). Check: for a
     * 2.5 GHz TSC, shift = -1 and mul = 3435973836 (0.8 * 2^32).
     */
    (void)tsc_hz;
    *mul = 0;
    *shift = 0;
}

uint64_t lab6_scale_delta(uint64_t delta, uint32_t mul, int8_t shift)
{
    /*
     * TODO: shift delta (left by shift, right by -shift), then return
     * (delta * mul) >> 32 without losing the top of the product: delta * mul
     * is up to 96 bits. Either unsigned __int128, or split delta in two
     * 32-bit halves as the guest's reader does (runtime/pvclock.c).
     */
    (void)delta;
    (void)mul;
    (void)shift;
    return 0;
}

uint64_t lab6_clock_at(const struct lab6_clock *c, uint64_t tsc)
{
    /* TODO: the line through (tsc_timestamp, system_time): system_time + the scaled TSC delta since then. */
    (void)c;
    (void)tsc;
    return 0;
}

void lab6_pvclock_publish(volatile struct pvclock_vcpu_time_info *ti, const struct lab6_clock *c)
{
    /*
     * TODO: the seqlock's writer. version = (version + 1) | 1, so the guest
     * sees "writing" and retries; a barrier (x86 keeps stores in order, but
     * the compiler need not: __atomic_thread_fence(__ATOMIC_RELEASE)); the
     * five fields from c (mul and shift go to tsc_to_system_mul and
     * tsc_shift); a barrier; version + 1, even again.
     */
    (void)ti;
    (void)c;
}

void lab6_clock_resume(struct lab6_clock *c, uint64_t tsc_at_pause, uint64_t tsc_now, uint64_t tsc_hz, uint64_t add_ns)
{
    /*
     * TODO: the time the guest's clock showed at the pause (lab6_clock_at
     * with the old line), plus add_ns, becomes the new line's system_time at
     * tsc_now; recompute mul and shift for tsc_hz (the TSC may run at
     * another rate after a migration) and keep tsc_hz in c.
     */
    (void)c;
    (void)tsc_at_pause;
    (void)tsc_now;
    (void)tsc_hz;
    (void)add_ns;
}

void lab6_steal_publish(volatile struct kvm_steal_time *st, uint64_t add_ns)
{
    /*
     * TODO: the same seqlock writer as lab6_pvclock_publish, around one
     * field: version = (version + 1) | 1, a barrier, steal += add_ns, a
     * barrier, version + 1. The guest adds up steal between two reads, so
     * it must never see a steal that went down or a half-done update.
     */
    (void)st;
    (void)add_ns;
}
