/* Lab 6 (reference): the paravirtual clock's scale, its 96-bit multiply, the seqlock publish, and resume after a pause.
 */
#include "lab6-pvclock/lab6.h"

void lab6_tsc_scale(uint64_t tsc_hz, uint32_t *mul, int8_t *shift)
{
    uint64_t rate = tsc_hz;
    int s = 0;

    while (rate > 2 * LAB6_NSEC_PER_SEC || (rate >> 32)) {
        rate >>= 1;
        s--;
    }
    while (rate <= LAB6_NSEC_PER_SEC) {
        rate <<= 1;
        s++;
    }
    *shift = (int8_t)s;
    *mul = (uint32_t)((LAB6_NSEC_PER_SEC << 32) / rate);
}

uint64_t lab6_scale_delta(uint64_t delta, uint32_t mul, int8_t shift)
{
    if (shift < 0)
        delta >>= -shift;
    else
        delta <<= shift;
    return (uint64_t)(((unsigned __int128)delta * mul) >> 32);
}

uint64_t lab6_clock_at(const struct lab6_clock *c, uint64_t tsc)
{
    return c->system_time + lab6_scale_delta(tsc - c->tsc_timestamp, c->mul, c->shift);
}

void lab6_pvclock_publish(volatile struct pvclock_vcpu_time_info *ti, const struct lab6_clock *c)
{
    uint32_t v = (ti->version + 1) | 1;

    ti->version = v;
    /* x86 does not reorder stores with stores; the compiler must not either (Linux: smp_wmb). */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    ti->tsc_timestamp = c->tsc_timestamp;
    ti->system_time = c->system_time;
    ti->tsc_to_system_mul = c->mul;
    ti->tsc_shift = c->shift;
    ti->flags = c->flags;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    ti->version = v + 1;
}

void lab6_steal_publish(volatile struct kvm_steal_time *st, uint64_t add_ns)
{
    uint32_t v = (st->version + 1) | 1;

    st->version = v;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    st->steal += add_ns;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    st->version = v + 1;
}

void lab6_clock_resume(struct lab6_clock *c, uint64_t tsc_at_pause, uint64_t tsc_now, uint64_t tsc_hz, uint64_t add_ns)
{
    uint64_t stood = lab6_clock_at(c, tsc_at_pause);

    c->tsc_hz = tsc_hz;
    lab6_tsc_scale(tsc_hz, &c->mul, &c->shift);
    c->tsc_timestamp = tsc_now;
    c->system_time = stood + add_ns;
}
