/* Lab 6's student functions: the paravirtual clock's scale, its 64x32 multiply, the seqlock publish, pause and resume.
 */
#ifndef LAB6_PVCLOCK_LAB6_H
#define LAB6_PVCLOCK_LAB6_H

#include <stdbool.h>
#include <stdint.h>

#include <asm/kvm_para.h> /* struct kvm_steal_time */

#include "abi.h" /* struct pvclock_vcpu_time_info (KVM's layout), PVCLOCK_* flags */
#include "mvm.h"

#define LAB6_NSEC_PER_SEC 1000000000ull

/*
 * The clock the VMM gives the guest: a line through one point, guest time
 * system_time (ns) at guest TSC value tsc_timestamp, with slope mul/shift:
 *   ns(tsc) = system_time + lab6_scale_delta(tsc - tsc_timestamp, mul, shift)
 * for tsc >= tsc_timestamp. The page the guest reads is this struct's
 * fields in KVM's layout (lab6_pvclock_publish).
 */
struct lab6_clock {
    uint64_t tsc_hz;        /* the guest TSC's rate (KVM_GET_TSC_KHZ * 1000) */
    uint64_t tsc_timestamp; /* the line's point: a guest TSC value ... */
    uint64_t system_time;   /* ... and the guest time there, ns */
    uint32_t mul;           /* tsc_to_system_mul */
    int8_t shift;           /* tsc_shift */
    uint8_t flags;          /* PVCLOCK_* */
};

/*
 * Lab 6. The scale for a TSC of `tsc_hz` ticks per second (> 0), exactly as
 * KVM's kvm_get_time_scale(NSEC_PER_SEC, tsc_hz) (arch/x86/kvm/x86.c)
 * computes it: rate = tsc_hz, shift = 0; halve the rate (shift - 1) while it
 * is above 2e9 or does not fit in 32 bits; double it (shift + 1) while it is
 * at most 1e9; then mul = (1e9 << 32) / rate, in [2^31, 2^32) since the rate
 * ended in (1e9, 2e9]. So lab6_scale_delta(tsc_hz, mul, shift) is 1e9 to
 * within a few ns, and the guest's clock agrees with KVM's kvmclock.
 */
void lab6_tsc_scale(uint64_t tsc_hz, uint32_t *mul, int8_t *shift);

/*
 * Lab 6. delta shifted left by `shift` (right by -shift when negative), then
 * times mul, divided by 2^32: Linux's pvclock_scale_delta, what the guest
 * computes. The 64x32 product needs 96 bits: it must not overflow for any
 * delta and mul (delta * mul in 64 bits wraps once delta passes 2^32).
 */
uint64_t lab6_scale_delta(uint64_t delta, uint32_t mul, int8_t shift);

/* Lab 6. The clock's time in ns at guest TSC value tsc (>= c->tsc_timestamp). */
uint64_t lab6_clock_at(const struct lab6_clock *c, uint64_t tsc);

/*
 * Lab 6. Writes the clock into the guest's page with the version protocol
 * of msr.rst, which the guest's reader relies on to never use a half-written
 * page: version = (version + 1) | 1 (odd: "writing"), a write barrier,
 * tsc_timestamp, system_time, tsc_to_system_mul, tsc_shift, flags (pad0 and
 * pad left 0), a write barrier, version + 1 (even again). At no moment may
 * an even version stand beside fields of two different publishes. The page
 * lies in guest memory while the guest runs: volatile, and another thread
 * may be reading it at any instant.
 */
void lab6_pvclock_publish(volatile struct pvclock_vcpu_time_info *ti, const struct lab6_clock *c);

/*
 * Lab 6. The VM resumes after a pause that began at guest TSC value
 * tsc_at_pause; the guest TSC reads tsc_now now and runs at tsc_hz (after a
 * "migration", a new host: another rate, and its TSC may even be lower than
 * at the pause). Moves the line so the guest's time goes on from where it
 * stood: its point becomes (tsc_now, lab6_clock_at(c, tsc_at_pause) +
 * add_ns), its slope the scale for tsc_hz (lab6_tsc_scale). add_ns = 0:
 * guest time stands still over the pause (KVM_SET_CLOCK with the value
 * KVM_GET_CLOCK gave at the pause); add_ns = the pause's length: guest time
 * jumps by it (KVM_SET_CLOCK with KVM_CLOCK_REALTIME). Flags are kept.
 */
void lab6_clock_resume(struct lab6_clock *c, uint64_t tsc_at_pause, uint64_t tsc_now, uint64_t tsc_hz, uint64_t add_ns);

/*
 * Lab 6. Adds add_ns of steal time to the guest's struct kvm_steal_time
 * (KVM's layout, MSR_KVM_STEAL_TIME in msr.rst) with the same version
 * protocol as the time page, as KVM's record_steal_time does: version =
 * (version + 1) | 1 (odd: "writing"; a page the guest left odd is made right),
 * a write barrier, steal += add_ns, a write barrier, version + 1 (even).
 * The guest never sees steal half-added, nor less than before. Only version
 * and steal change.
 */
void lab6_steal_publish(volatile struct kvm_steal_time *st, uint64_t add_ns);

#endif
