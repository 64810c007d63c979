/* Unit tests of the soft backend's interrupt controller models: local APIC, IOAPIC, 8259 pair (pure logic). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "soft_ioapic.h"
#include "soft_lapic.h"
#include "soft_pic.h"
#include "soft_pit.h"

static struct soft_lapic enabled_apic(void)
{
    struct soft_lapic a = {0};
    struct soft_lapic_effect e;
    soft_lapic_reset(&a, 0, true);
    soft_lapic_write(&a, APIC_REG_SPIV, 0x1ff, 0, &e);
    return a;
}

static void lapic_reset_state(void **state)
{
    struct soft_lapic a = {0}, b = {0};
    (void)state;
    soft_lapic_reset(&a, 0, true);
    soft_lapic_reset(&b, 3, false);
    assert_int_equal(a.apic_base, 0xfee00900);
    assert_int_equal(b.apic_base, 0xfee00800);
    assert_int_equal(soft_lapic_read(&b, APIC_REG_ID, 0), 3u << 24);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_LVR, 0), 0x50014);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_LVTT, 0), APIC_LVT_MASKED);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_LVT0, 0), 0x700); /* the BSP's LINT0 takes the PIC */
    assert_int_equal(soft_lapic_read(&b, APIC_REG_LVT0, 0), APIC_LVT_MASKED);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_DFR, 0), 0xffffffffu);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_SPIV, 0), 0xff);
    assert_true(soft_lapic_accepts_pic(&a));
    assert_false(soft_lapic_accepts_pic(&b));
    /* Software-disabled: no fixed interrupt is accepted, LVT writes stay masked. */
    assert_int_equal(soft_lapic_accept(&a, 0x40, false), 0);
    struct soft_lapic_effect e;
    soft_lapic_write(&a, APIC_REG_LVTT, 0x45, 0, &e);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_LVTT, 0), 0x10045);
}

static void lapic_priorities(void **state)
{
    struct soft_lapic a = enabled_apic();
    struct soft_lapic_effect e;
    (void)state;
    assert_int_equal(soft_lapic_pending(&a), -1);
    assert_int_equal(soft_lapic_accept(&a, 0x50, false), 1);
    assert_int_equal(soft_lapic_accept(&a, 0x61, true), 1);
    assert_int_equal(soft_lapic_pending(&a), 0x61);
    soft_lapic_write(&a, APIC_REG_TPR, 0x70, 0, &e);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_PPR, 0), 0x70);
    assert_int_equal(soft_lapic_pending(&a), -1); /* class 6 is not above class 7 */
    soft_lapic_write(&a, APIC_REG_TPR, 0x5f, 0, &e);
    assert_int_equal(soft_lapic_pending(&a), 0x61);
    soft_lapic_ack(&a, 0x61);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_PPR, 0), 0x60); /* in service: class 6 over TPR's 5 */
    assert_int_equal(soft_lapic_pending(&a), -1);                 /* 0x50 waits for the EOI and for TPR */
    soft_lapic_write(&a, APIC_REG_EOI, 0, 0, &e);
    assert_int_equal(e.eoi_vector, 0x61); /* level-triggered: the IOAPIC hears of it */
    assert_int_equal(soft_lapic_read(&a, APIC_REG_PPR, 0), 0x5f);
    assert_int_equal(soft_lapic_pending(&a), -1);
    soft_lapic_write(&a, APIC_REG_TPR, 0, 0, &e);
    assert_int_equal(soft_lapic_pending(&a), 0x50);
    soft_lapic_ack(&a, 0x50);
    soft_lapic_write(&a, APIC_REG_EOI, 0, 0, &e);
    assert_int_equal(e.eoi_vector, -1);           /* edge: no EOI broadcast */
    soft_lapic_write(&a, APIC_REG_EOI, 0, 0, &e); /* nothing in service: nothing happens */
    assert_int_equal(soft_lapic_read(&a, APIC_REG_PPR, 0), 0);
}

static void lapic_registers(void **state)
{
    struct soft_lapic a = enabled_apic();
    struct soft_lapic_effect e;
    (void)state;
    soft_lapic_write(&a, APIC_REG_DFR, 0, 0, &e);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_DFR, 0), 0x0fffffff);
    soft_lapic_write(&a, APIC_REG_LDR, 0x12345678, 0, &e);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_LDR, 0), 0x12000000);
    soft_lapic_write(&a, APIC_REG_ICR2, 0x03ffffff, 0, &e);
    soft_lapic_write(&a, APIC_REG_ICR, 0x1040 | (1u << 14), 0, &e);
    assert_true(e.ipi);
    assert_int_equal(e.icr, 0x4040); /* delivery status never reads busy */
    assert_int_equal(e.icr2, 0x03000000);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_ICR, 0), 0x4040);
    soft_lapic_write(&a, APIC_REG_TDCR, 0xff, 0, &e);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_TDCR, 0), 0xb);
    soft_lapic_write(&a, APIC_REG_LVT0, 0xffffffff, 0, &e);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_LVT0, 0), 0x1f7ff);
    soft_lapic_write(&a, APIC_REG_LVTT, 0xffffffff, 0, &e); /* no TSC deadline offered: only the periodic bit */
    assert_int_equal(soft_lapic_read(&a, APIC_REG_LVTT, 0), 0x310ff);
    soft_lapic_write(&a, APIC_REG_SPIV, 0xff, 0, &e); /* software disable masks every LVT */
    assert_int_equal(soft_lapic_read(&a, APIC_REG_LVT0, 0) & APIC_LVT_MASKED, APIC_LVT_MASKED);
    assert_true(soft_lapic_match_dest(&a, 0xff, false));
    assert_true(soft_lapic_match_dest(&a, 0, false));
    assert_false(soft_lapic_match_dest(&a, 1, false));
    assert_true(soft_lapic_match_dest(&a, 0x13, true)); /* flat: LDR 0x12 & 0x13 */
    assert_false(soft_lapic_match_dest(&a, 0x01, true));
}

static void lapic_timer_modes(void **state)
{
    struct soft_lapic a = enabled_apic();
    struct soft_lapic_effect e;
    (void)state;
    soft_lapic_write(&a, APIC_REG_TDCR, 0xb, 0, &e); /* divide by 1: one tick per ns */
    soft_lapic_write(&a, APIC_REG_LVTT, 0x40, 0, &e);
    soft_lapic_write(&a, APIC_REG_TMICT, 1000, 100, &e);
    assert_true(e.timer_changed);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_TMCCT, 600), 500);
    assert_false(soft_lapic_timer_poll(&a, 1099));
    assert_true(soft_lapic_timer_poll(&a, 1100));
    assert_int_equal(soft_lapic_pending(&a), 0x40);
    assert_false(soft_lapic_timer_poll(&a, 5000)); /* one-shot: once */
    assert_int_equal(soft_lapic_read(&a, APIC_REG_TMCCT, 5000), 0);
    soft_lapic_ack(&a, 0x40);
    soft_lapic_write(&a, APIC_REG_EOI, 0, 0, &e);

    /* Periodic, at KVM's floor of 200 us a period; late polls coalesce into one IRR bit. */
    soft_lapic_write(&a, APIC_REG_LVTT, 0x41 | (1u << 17), 0, &e);
    soft_lapic_write(&a, APIC_REG_TMICT, 10, 0, &e);
    assert_int_equal(a.period_ns, APIC_MIN_PERIOD_NS);
    assert_true(soft_lapic_timer_poll(&a, APIC_MIN_PERIOD_NS));
    assert_true(soft_lapic_timer_poll(&a, 5 * APIC_MIN_PERIOD_NS + 7));
    assert_int_equal(a.expire_ns, 6 * APIC_MIN_PERIOD_NS);
    soft_lapic_write(&a, APIC_REG_TMICT, 0, 0, &e);
    assert_false(soft_lapic_timer_poll(&a, 100 * APIC_MIN_PERIOD_NS));

    /* TSC deadline: only when offered; leaving the mode clears TMICT and the deadline. */
    a.tsc_deadline_ok = true;
    soft_lapic_write(&a, APIC_REG_LVTT, 0x42 | (2u << 17), 0, &e);
    soft_lapic_write(&a, APIC_REG_TMICT, 99, 0, &e);
    assert_int_equal(soft_lapic_read(&a, APIC_REG_TMICT, 0), 0);
    soft_lapic_set_tsc_deadline(&a, 3000, 1000, 1000, 1000000); /* 2000 TSC ticks at 1 GHz: 2 us */
    assert_int_equal(soft_lapic_get_tsc_deadline(&a), 3000);
    assert_false(soft_lapic_timer_poll(&a, 2999));
    assert_true(soft_lapic_timer_poll(&a, 3000));
    assert_int_equal(soft_lapic_get_tsc_deadline(&a), 0);
    soft_lapic_set_tsc_deadline(&a, 50000, 0, 0, 1000000);
    soft_lapic_write(&a, APIC_REG_LVTT, 0x42, 0, &e);
    assert_int_equal(soft_lapic_get_tsc_deadline(&a), 0);
    assert_int_equal(a.expire_ns, 0);
}

static void lapic_state_page(void **state)
{
    struct soft_lapic a = enabled_apic(), b = {0};
    struct soft_lapic_effect e;
    uint8_t page[APIC_PAGE_SIZE];
    (void)state;
    soft_lapic_write(&a, APIC_REG_TDCR, 0xb, 0, &e);
    soft_lapic_write(&a, APIC_REG_LVTT, 0x40, 0, &e);
    soft_lapic_write(&a, APIC_REG_TMICT, 1000, 0, &e);
    soft_lapic_get_page(&a, page, 400);
    uint32_t cur;
    memcpy(&cur, page + APIC_REG_TMCCT, 4);
    assert_int_equal(cur, 600);
    soft_lapic_reset(&b, 0, true);
    b.apic_base = a.apic_base;
    soft_lapic_set_page(&b, page, 10000); /* the count goes on from TMCCT */
    assert_int_equal(b.expire_ns, 10600);
    assert_int_equal(soft_lapic_reg(&b, APIC_REG_SPIV), 0x1ff);
}

static int msgs, last_vec;
static int deliver(void *ctx, const struct soft_irq_msg *m)
{
    (void)ctx;
    msgs++;
    last_vec = m->vector;
    return m->dest == 0 ? 1 : 0;
}

static void ioapic_pins(void **state)
{
    struct soft_ioapic io = {.deliver = deliver};
    (void)state;
    soft_ioapic_reset(&io);
    soft_ioapic_write(&io, IOAPIC_REG_SELECT, 1);
    assert_int_equal(soft_ioapic_read(&io, IOAPIC_REG_WINDOW), 0x170011);
    soft_ioapic_write(&io, IOAPIC_REG_SELECT, 0x10);
    assert_int_equal(soft_ioapic_read(&io, IOAPIC_REG_WINDOW), 0x10000); /* masked at reset */
    assert_int_equal(soft_ioapic_set_irq(&io, 0, true, true), -1);       /* masked */
    soft_ioapic_set_irq(&io, 0, false, false);

    msgs = 0;
    soft_ioapic_write(&io, IOAPIC_REG_SELECT, 0x10 + 2 * 5);
    soft_ioapic_write(&io, IOAPIC_REG_WINDOW, 0x52);
    assert_int_equal(soft_ioapic_set_irq(&io, 5, true, true), 1);
    assert_int_equal(soft_ioapic_set_irq(&io, 5, true, true), 1); /* KVM's IOAPIC sends each raise (no edge memory) */
    assert_int_equal(soft_ioapic_set_irq(&io, 5, false, false), 1);
    assert_int_equal(msgs, 2);
    soft_ioapic_write(&io, IOAPIC_REG_WINDOW, 0x52 | (1u << 16));
    assert_int_equal(soft_ioapic_set_irq(&io, 5, true, true), -1); /* masked: the edge waits in IRR */
    assert_int_equal(soft_ioapic_set_irq(&io, 5, true, true), 0);  /* coalesced with it */
    soft_ioapic_set_irq(&io, 5, false, false);
    assert_int_equal(last_vec, 0x52);

    /* Level: remote IRR until the EOI; a line still high at the EOI is sent again. */
    soft_ioapic_write(&io, IOAPIC_REG_SELECT, 0x10 + 2 * 6);
    soft_ioapic_write(&io, IOAPIC_REG_WINDOW, 0x53 | (1u << 15) | (1u << 14) | (1u << 12));
    assert_int_equal(soft_ioapic_read(&io, IOAPIC_REG_WINDOW), 0x53 | (1u << 15)); /* read-only bits */
    assert_int_equal(soft_ioapic_set_irq(&io, 6, true, true), 1);
    assert_int_equal(soft_ioapic_read(&io, IOAPIC_REG_WINDOW) & (1u << 14), 1u << 14);
    assert_int_equal(soft_ioapic_set_irq(&io, 6, true, true), -1); /* waits for the EOI */
    msgs = 0;
    soft_ioapic_eoi(&io, 0x53, 0);
    assert_int_equal(msgs, 1);
    soft_ioapic_set_irq(&io, 6, false, false);
    soft_ioapic_eoi(&io, 0x53, 0);
    assert_int_equal(soft_ioapic_read(&io, IOAPIC_REG_WINDOW) & (1u << 14), 0);
    assert_int_equal(msgs, 1);
}

static void pic_pair(void **state)
{
    struct soft_pic p;
    static const uint8_t icw[2][4] = {{0x11, 0x20, 0x04, 0x01}, {0x11, 0x28, 0x02, 0x01}};
    (void)state;
    soft_pic_init(&p);
    assert_int_equal(soft_pic_set_irq(&p, 3, true), 1); /* unmasked at power-on, as KVM's */
    soft_pic_set_irq(&p, 3, false);
    for (int i = 0; i < 2; i++) {
        soft_pic_write(&p, i ? 0xa0 : 0x20, icw[i][0]);
        for (int k = 1; k < 4; k++)
            soft_pic_write(&p, i ? 0xa1 : 0x21, icw[i][k]);
    }
    assert_int_equal(soft_pic_read(&p, 0x20), 0); /* ICW1 drops pending edges (the output stays stale, as KVM's) */
    soft_pic_write(&p, 0x21, (uint8_t) ~((1 << 2) | (1 << 3)));
    soft_pic_write(&p, 0xa1, (uint8_t) ~(1 << 2));
    assert_int_equal(soft_pic_read(&p, 0x21), 0xf3);
    assert_int_equal(soft_pic_set_irq(&p, 4, true), -1);
    assert_int_equal(soft_pic_set_irq(&p, 3, true), 1);
    assert_true(p.output);
    assert_int_equal(soft_pic_read(&p, 0x20), 0x18); /* IRR */
    assert_int_equal(soft_pic_ack(&p), 0x23);
    soft_pic_write(&p, 0x20, 0x0b);
    assert_int_equal(soft_pic_read(&p, 0x20), 0x08); /* ISR */
    soft_pic_write(&p, 0x20, 0x20);                  /* EOI */
    assert_int_equal(soft_pic_read(&p, 0x20), 0x00);
    soft_pic_set_irq(&p, 3, false);

    soft_pic_set_irq(&p, 10, true); /* the slave, through the master's IRQ 2 */
    assert_true(p.output);
    assert_int_equal(soft_pic_ack(&p), 0x2a);
    assert_false(p.output);
    assert_int_equal(soft_pic_ack(&p), 0x27); /* nothing left: spurious IRQ 7 */

    soft_pic_write(&p, 0x4d0, 0xff);
    soft_pic_write(&p, 0x4d1, 0xff);
    assert_int_equal(soft_pic_read(&p, 0x4d0), 0xf8);
    assert_int_equal(soft_pic_read(&p, 0x4d1), 0xde);

    soft_pic_write(&p, 0xa0, 0x20);
    soft_pic_write(&p, 0x20, 0x20);
    soft_pic_write(&p, 0x4d0, 0);
    soft_pic_set_irq(&p, 10, false);
    soft_pic_set_irq(&p, 3, true);
    soft_pic_write(&p, 0x20, 0x0c); /* poll: the IRQ, acknowledged, as KVM answers it (no bit 7) */
    assert_int_equal(soft_pic_read(&p, 0x20), 3);
    assert_false(p.output);
}

static void pit_channels(void **state)
{
    struct soft_pit p;
    (void)state;
    soft_pit_reset(&p, 0);
    assert_int_equal(p.expire_ns, 0); /* mode 0xff: no timer until programmed */
    assert_int_equal(p.s.channels[2].gate, 0);
    soft_pit_write(&p, 0x43, 0x34, 0); /* channel 0, low/high, mode 2 */
    soft_pit_write(&p, 0x40, 0x9c, 0);
    soft_pit_write(&p, 0x40, 0x2e, 0); /* 11932: 10 ms */
    assert_int_equal(p.s.channels[0].count, 11932);
    assert_int_equal(p.period_ns, 11932ull * 1000000000u / PIT_FREQ_HZ);
    assert_int_equal(soft_pit_poll(&p, p.expire_ns - 1), 0);
    assert_int_equal(soft_pit_poll(&p, p.expire_ns), 1);
    assert_int_equal(soft_pit_poll(&p, 100 * p.period_ns), 1); /* late: one edge, the next period re-based */
    assert_true(p.expire_ns > 100 * p.period_ns);
    uint64_t t = 2000000;              /* 2 ms after the load: 2386 PIT ticks gone */
    soft_pit_write(&p, 0x43, 0x00, t); /* latch channel 0 */
    unsigned lo = soft_pit_read(&p, 0x40, 5 * t), hi = soft_pit_read(&p, 0x40, 5 * t);
    assert_int_equal(lo | hi << 8, 11932 - 2386);
    soft_pit_write(&p, 0x43, 0xe2, t); /* read-back, status of channel 0 */
    assert_int_equal(soft_pit_read(&p, 0x40, t) & 0x3f, 0x34);
    soft_pit_write(&p, 0x43, 0x30, t); /* mode 0, one-shot */
    soft_pit_write(&p, 0x40, 0x10, t);
    soft_pit_write(&p, 0x40, 0x00, t);
    assert_int_equal(p.period_ns, 0);
    assert_int_equal(soft_pit_poll(&p, t + 20000), 1);
    assert_int_equal(soft_pit_poll(&p, t + 40000), 0);
    soft_pit_write(&p, 0x61, 0x03, t);
    assert_int_equal(soft_pit_read(&p, 0x61, 0) & 3, 3);
    assert_int_equal(soft_pit_read(&p, 0x43, t), 0xff);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lapic_reset_state), cmocka_unit_test(lapic_priorities), cmocka_unit_test(lapic_registers),
        cmocka_unit_test(lapic_timer_modes), cmocka_unit_test(lapic_state_page), cmocka_unit_test(ioapic_pins),
        cmocka_unit_test(pic_pair),          cmocka_unit_test(pit_channels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
