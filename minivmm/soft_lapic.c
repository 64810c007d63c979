/* The soft backend's local APIC (KVM's arch/x86/kvm/lapic.c), as pure logic on the register page. */
#include "soft_lapic.h"

#include <string.h>

#define LVT_MASK  (APIC_LVT_MASKED | (1u << 12) | 0xffu)
#define LINT_MASK (LVT_MASK | 0x700u | (1u << 13) | APIC_LVT_REMOTE_IRR | APIC_LVT_LEVEL)

uint32_t soft_lapic_reg(const struct soft_lapic *a, uint32_t off)
{
    uint32_t x;
    memcpy(&x, a->regs + off, 4);
    return x;
}

static void reg_set(struct soft_lapic *a, uint32_t off, uint32_t x)
{
    memcpy(a->regs + off, &x, 4);
}

/* Bit vec of a 256-bit register (ISR, TMR, IRR): eight 32-bit words 16 bytes apart. */
static bool vec_test(const struct soft_lapic *a, uint32_t base, int vec)
{
    return (soft_lapic_reg(a, base + 0x10 * (uint32_t)(vec >> 5)) >> (vec & 31)) & 1;
}

static void vec_set(struct soft_lapic *a, uint32_t base, int vec, bool on)
{
    uint32_t off = base + 0x10 * (uint32_t)(vec >> 5), x = soft_lapic_reg(a, off), bit = 1u << (vec & 31);
    reg_set(a, off, on ? x | bit : x & ~bit);
}

/* The highest vector set in a 256-bit register, or -1. */
static int vec_highest(const struct soft_lapic *a, uint32_t base)
{
    for (int w = 7; w >= 0; w--) {
        uint32_t x = soft_lapic_reg(a, base + 0x10 * (uint32_t)w);
        if (x)
            return w * 32 + 31 - __builtin_clz(x);
    }
    return -1;
}

static bool sw_enabled(const struct soft_lapic *a)
{
    return (soft_lapic_reg(a, APIC_REG_SPIV) & APIC_SPIV_ENABLED) != 0;
}

bool soft_lapic_enabled(const struct soft_lapic *a)
{
    return (a->apic_base & APIC_BASE_MSR_ENABLE) && sw_enabled(a);
}

static bool x2apic(const struct soft_lapic *a)
{
    return (a->apic_base & APIC_BASE_MSR_EXTD) != 0;
}

static unsigned timer_mode(const struct soft_lapic *a)
{
    return (soft_lapic_reg(a, APIC_REG_LVTT) >> APIC_LVT_TIMER_SHIFT) & 3;
}

static uint32_t divide_count(const struct soft_lapic *a)
{
    uint32_t d = soft_lapic_reg(a, APIC_REG_TDCR) & 0xf;
    uint32_t t = ((d & 3) | ((d & 8) >> 1)) + 1;
    return 1u << (t & 7);
}

/* PPR = TPR when its class is at least the highest in-service class, else that class (apic_update_ppr). */
static void update_ppr(struct soft_lapic *a)
{
    uint32_t tpr = soft_lapic_reg(a, APIC_REG_TPR) & 0xff;
    int isrv = vec_highest(a, APIC_REG_ISR);
    uint32_t isr = isrv < 0 ? 0 : (uint32_t)isrv;
    reg_set(a, APIC_REG_PPR, (tpr & 0xf0) >= (isr & 0xf0) ? tpr : (isr & 0xf0));
}

void soft_lapic_reset(struct soft_lapic *a, uint32_t vcpu_id, bool bsp)
{
    bool tscd = a->tsc_deadline_ok;
    memset(a, 0, sizeof *a);
    a->tsc_deadline_ok = tscd;
    a->apic_base = APIC_DEFAULT_BASE | APIC_BASE_MSR_ENABLE | (bsp ? APIC_BASE_MSR_BSP : 0);
    reg_set(a, APIC_REG_ID, vcpu_id << 24);
    reg_set(a, APIC_REG_LVR, APIC_VERSION_VALUE);
    for (uint32_t off = APIC_REG_LVTT; off <= APIC_REG_LVTERR; off += 0x10)
        reg_set(a, off, APIC_LVT_MASKED);
    /* KVM_X86_QUIRK_LINT0_REENABLED: the BSP's LINT0 takes the PIC (ExtINT), unmasked. */
    if (bsp)
        reg_set(a, APIC_REG_LVT0, APIC_MODE_EXTINT << 8);
    reg_set(a, APIC_REG_DFR, 0xffffffffu);
    reg_set(a, APIC_REG_SPIV, 0xff);
    update_ppr(a);
}

static uint32_t tmcct(const struct soft_lapic *a, uint64_t now_ns)
{
    if (soft_lapic_reg(a, APIC_REG_TMICT) == 0 || a->period_ns == 0 || timer_mode(a) == APIC_TIMER_TSCDEADLINE)
        return 0;
    uint64_t rem = a->expire_ns > now_ns ? a->expire_ns - now_ns : 0;
    return (uint32_t)((rem % a->period_ns) / divide_count(a));
}

uint32_t soft_lapic_read(struct soft_lapic *a, uint32_t off, uint64_t now_ns)
{
    off &= 0x3f0;
    switch (off) {
    case APIC_REG_TMCCT:
        return tmcct(a, now_ns);
    case APIC_REG_PPR:
        update_ppr(a);
        return soft_lapic_reg(a, off);
    case APIC_REG_EOI:
    case APIC_REG_RRR:
    case APIC_REG_SELF_IPI:
        return 0;
    default:
        if (off < APIC_REG_ID || off == 0x2a0 || (off > APIC_REG_LVTERR && off < APIC_REG_TMICT) ||
            (off > APIC_REG_TMCCT && off != APIC_REG_TDCR))
            return 0; /* not a register KVM reads back */
        return soft_lapic_reg(a, off);
    }
}

static void timer_stop(struct soft_lapic *a)
{
    a->expire_ns = 0;
    a->period_ns = 0;
}

/* Arm one-shot or periodic: from TMICT (count 0), or from a TMCCT count when the VMM restores state. */
static void timer_start(struct soft_lapic *a, uint32_t count, uint64_t now_ns)
{
    uint64_t period = (uint64_t)soft_lapic_reg(a, APIC_REG_TMICT) * divide_count(a);
    if (period == 0) {
        timer_stop(a);
        return;
    }
    if (timer_mode(a) == APIC_TIMER_PERIODIC && period < APIC_MIN_PERIOD_NS)
        period = APIC_MIN_PERIOD_NS;
    uint64_t first = (uint64_t)count * divide_count(a);
    if (first == 0 || first > period)
        first = period;
    a->start_ns = now_ns;
    a->period_ns = period;
    a->expire_ns = now_ns + first;
    if (a->expire_ns == 0)
        a->expire_ns = 1;
}

/* The timer's mode bits changed: leaving or entering TSC-deadline mode stops it and clears TMICT. */
static void update_lvtt(struct soft_lapic *a, unsigned old_mode, struct soft_lapic_effect *eff)
{
    unsigned mode = timer_mode(a);
    if (mode == old_mode)
        return;
    if ((old_mode == APIC_TIMER_TSCDEADLINE) != (mode == APIC_TIMER_TSCDEADLINE)) {
        timer_stop(a);
        reg_set(a, APIC_REG_TMICT, 0);
        a->tsc_deadline = 0;
        eff->timer_changed = true;
    }
}

void soft_lapic_write(struct soft_lapic *a, uint32_t off, uint32_t val, uint64_t now_ns, struct soft_lapic_effect *eff)
{
    *eff = (struct soft_lapic_effect){.eoi_vector = -1};
    off &= 0x3f0;
    switch (off) {
    case APIC_REG_ID:
        if (!x2apic(a))
            reg_set(a, off, val & 0xff000000u);
        break;
    case APIC_REG_TPR:
        reg_set(a, off, val & 0xff);
        update_ppr(a);
        break;
    case APIC_REG_EOI: {
        int v = vec_highest(a, APIC_REG_ISR);
        if (v >= 0) {
            vec_set(a, APIC_REG_ISR, v, false);
            if (vec_test(a, APIC_REG_TMR, v))
                eff->eoi_vector = v;
            update_ppr(a);
        }
        break;
    }
    case APIC_REG_LDR:
        if (!x2apic(a))
            reg_set(a, off, val & 0xff000000u);
        break;
    case APIC_REG_DFR:
        if (!x2apic(a))
            reg_set(a, off, val | 0x0fffffffu);
        break;
    case APIC_REG_SPIV: {
        unsigned old_mode = timer_mode(a);
        reg_set(a, off, val & 0x3ff);
        if (!(val & APIC_SPIV_ENABLED)) {
            for (uint32_t r = APIC_REG_LVTT; r <= APIC_REG_LVTERR; r += 0x10)
                reg_set(a, r, soft_lapic_reg(a, r) | APIC_LVT_MASKED);
            update_lvtt(a, old_mode, eff);
        }
        break;
    }
    case APIC_REG_ESR:
        break;
    case APIC_REG_ICR:
        val &= ~(1u << 12); /* delivered at once: never "send pending" */
        reg_set(a, off, val);
        eff->ipi = true;
        eff->icr = val;
        eff->icr2 = soft_lapic_reg(a, APIC_REG_ICR2);
        break;
    case APIC_REG_ICR2:
        if (!x2apic(a))
            reg_set(a, off, val & 0xff000000u);
        break;
    case APIC_REG_LVTT: {
        unsigned old_mode = timer_mode(a);
        uint32_t modes = (a->tsc_deadline_ok ? 3u : 1u) << APIC_LVT_TIMER_SHIFT;
        if (!sw_enabled(a))
            val |= APIC_LVT_MASKED;
        reg_set(a, off, val & (LVT_MASK | modes));
        update_lvtt(a, old_mode, eff);
        break;
    }
    case APIC_REG_LVTTHMR:
    case APIC_REG_LVTPC:
    case APIC_REG_LVT0:
    case APIC_REG_LVT1:
    case APIC_REG_LVTERR: {
        static const uint32_t mask[] = {0, LVT_MASK | 0x700u, LVT_MASK | 0x700u, LINT_MASK, LINT_MASK, LVT_MASK};
        if (!sw_enabled(a))
            val |= APIC_LVT_MASKED;
        reg_set(a, off, val & mask[(off - APIC_REG_LVTT) >> 4]);
        break;
    }
    case APIC_REG_TMICT:
        if (timer_mode(a) == APIC_TIMER_TSCDEADLINE)
            break;
        reg_set(a, off, val);
        timer_start(a, 0, now_ns);
        eff->timer_changed = true;
        break;
    case APIC_REG_TDCR: {
        uint32_t old_div = divide_count(a);
        reg_set(a, off, val & 0xb);
        if (divide_count(a) != old_div && a->period_ns && timer_mode(a) != APIC_TIMER_TSCDEADLINE) {
            /*
             * The rest of the count runs at the new rate (update_target_expiration); as in KVM, a one-shot count
             * that already ran out (its period kept) is due again at once.
             */
            uint64_t rem = a->expire_ns > now_ns ? a->expire_ns - now_ns : 0;
            uint64_t period = (uint64_t)soft_lapic_reg(a, APIC_REG_TMICT) * divide_count(a);
            if (timer_mode(a) == APIC_TIMER_PERIODIC && period < APIC_MIN_PERIOD_NS)
                period = APIC_MIN_PERIOD_NS;
            a->period_ns = period;
            a->expire_ns = now_ns + rem / old_div * divide_count(a);
            eff->timer_changed = true;
        }
        break;
    }
    case APIC_REG_SELF_IPI:
        if (x2apic(a)) {
            eff->ipi = true;
            eff->icr = (val & 0xff) | (1u << 18); /* fixed, to self */
            eff->icr2 = 0;
        }
        break;
    default:
        break; /* read-only or reserved: ignored */
    }
}

int soft_lapic_accept(struct soft_lapic *a, int vector, bool level_trig)
{
    if (!soft_lapic_enabled(a) || vector < 0 || vector > 255)
        return 0;
    vec_set(a, APIC_REG_IRR, vector, true);
    vec_set(a, APIC_REG_TMR, vector, level_trig);
    return 1;
}

int soft_lapic_pending(const struct soft_lapic *a)
{
    if (!soft_lapic_enabled(a))
        return -1;
    int v = vec_highest(a, APIC_REG_IRR);
    if (v < 0)
        return -1;
    uint32_t tpr = soft_lapic_reg(a, APIC_REG_TPR) & 0xff;
    int isrv = vec_highest(a, APIC_REG_ISR);
    uint32_t isr = isrv < 0 ? 0 : (uint32_t)isrv;
    uint32_t ppr = (tpr & 0xf0) >= (isr & 0xf0) ? tpr : (isr & 0xf0);
    return ((uint32_t)v & 0xf0) > (ppr & 0xf0) ? v : -1;
}

void soft_lapic_ack(struct soft_lapic *a, int vector)
{
    vec_set(a, APIC_REG_IRR, vector, false);
    vec_set(a, APIC_REG_ISR, vector, true);
    update_ppr(a);
}

bool soft_lapic_accepts_pic(const struct soft_lapic *a)
{
    uint32_t lvt0 = soft_lapic_reg(a, APIC_REG_LVT0);
    if (!(a->apic_base & APIC_BASE_MSR_ENABLE))
        return true;
    return !(lvt0 & APIC_LVT_MASKED) && ((lvt0 >> 8) & 7) == APIC_MODE_EXTINT;
}

bool soft_lapic_timer_poll(struct soft_lapic *a, uint64_t now_ns)
{
    if (!a->expire_ns || now_ns < a->expire_ns)
        return false;
    uint32_t lvtt = soft_lapic_reg(a, APIC_REG_LVTT);
    unsigned mode = timer_mode(a);
    if (mode == APIC_TIMER_PERIODIC && a->period_ns) {
        a->expire_ns += a->period_ns;
        if (a->expire_ns <= now_ns) /* late by whole periods: they coalesce in IRR, as KVM's */
            a->expire_ns = now_ns + a->period_ns - (now_ns - a->expire_ns) % a->period_ns;
    } else {
        a->expire_ns = 0;
        if (mode == APIC_TIMER_TSCDEADLINE)
            a->tsc_deadline = 0;
    }
    if (lvtt & APIC_LVT_MASKED)
        return false;
    return soft_lapic_accept(a, (int)(lvtt & 0xff), false) == 1;
}

void soft_lapic_set_tsc_deadline(struct soft_lapic *a, uint64_t deadline, uint64_t now_ns, uint64_t guest_tsc,
                                 uint64_t tsc_khz)
{
    if (timer_mode(a) != APIC_TIMER_TSCDEADLINE)
        return;
    a->tsc_deadline = deadline;
    if (deadline == 0) {
        a->expire_ns = 0;
        return;
    }
    uint64_t ns = 0;
    if (deadline > guest_tsc && tsc_khz)
        ns = (uint64_t)((unsigned __int128)(deadline - guest_tsc) * 1000000u / tsc_khz);
    a->expire_ns = now_ns + ns;
    if (a->expire_ns == 0)
        a->expire_ns = 1;
}

uint64_t soft_lapic_get_tsc_deadline(const struct soft_lapic *a)
{
    return timer_mode(a) == APIC_TIMER_TSCDEADLINE ? a->tsc_deadline : 0;
}

void soft_lapic_get_page(struct soft_lapic *a, uint8_t *regs, uint64_t now_ns)
{
    update_ppr(a);
    memcpy(regs, a->regs, APIC_PAGE_SIZE);
    uint32_t cur = tmcct(a, now_ns);
    memcpy(regs + APIC_REG_TMCCT, &cur, 4);
}

void soft_lapic_set_page(struct soft_lapic *a, const uint8_t *regs, uint64_t now_ns)
{
    memcpy(a->regs, regs, APIC_PAGE_SIZE);
    reg_set(a, APIC_REG_LVR, APIC_VERSION_VALUE);
    update_ppr(a);
    timer_stop(a);
    unsigned mode = timer_mode(a);
    if (mode == APIC_TIMER_TSCDEADLINE)
        return; /* the deadline MSR is restored on its own (KVM_SET_MSRS) */
    timer_start(a, soft_lapic_reg(a, APIC_REG_TMCCT), now_ns);
}

bool soft_lapic_match_dest(const struct soft_lapic *a, uint32_t dest, bool logical)
{
    if (x2apic(a)) {
        if (dest == 0xffffffffu)
            return true;
        if (!logical)
            return dest == soft_lapic_reg(a, APIC_REG_ID);
        uint32_t ldr = soft_lapic_reg(a, APIC_REG_LDR);
        return (dest >> 16) == (ldr >> 16) && (dest & ldr & 0xffff) != 0;
    }
    dest &= 0xff;
    if (dest == 0xff)
        return true;
    if (!logical)
        return dest == soft_lapic_reg(a, APIC_REG_ID) >> 24;
    uint32_t ldr = soft_lapic_reg(a, APIC_REG_LDR) >> 24;
    if ((soft_lapic_reg(a, APIC_REG_DFR) >> 28) == 0xf) /* flat */
        return (ldr & dest) != 0;
    return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf) != 0; /* cluster */
}
