/* Interrupt probe: the local APIC timer, one-shot then periodic then divided, each tick counted and waited for. */
#include "irq.h"

#define VEC 0x40

static volatile unsigned ticks;
static volatile uint32_t isr_seen, ppr_seen;

__attribute__((interrupt)) static void timer_handler(struct interrupt_frame *f)
{
    (void)f;
    ticks++;
    isr_seen = lapic_bit(LAPIC_ISR, VEC);
    ppr_seen = lapic_read(LAPIC_PPR);
    lapic_write(LAPIC_EOI, 0);
}

/* Stop the timer and take a tick that may already wait in IRR, so the next phase starts clean. */
static void timer_quiesce(void)
{
    lapic_write(LAPIC_LVTT, VEC | LVT_MASKED);
    lapic_write(LAPIC_TMICT, 0);
    if (lapic_bit(LAPIC_IRR, VEC))
        irq_window();
    GUEST_ASSERT_EQ(lapic_bit(LAPIC_IRR, VEC), 0, "no tick left pending");
    ticks = 0;
}

void guest_main(void)
{
    irq_handler_set(VEC, timer_handler);
    guest_printf("local APIC: id 0x%x, version 0x%x, LVT timer 0x%x at reset\n", lapic_read(LAPIC_ID),
                 lapic_read(LAPIC_VER), lapic_read(LAPIC_LVTT));
    lapic_enable();
    lapic_write(LAPIC_TDCR, 0xb); /* divide by 1 */
    lapic_write(LAPIC_LVTT, VEC); /* one-shot */
    for (unsigned i = 1; i <= 5; i++) {
        lapic_write(LAPIC_TMICT, 2000000);
        GUEST_ASSERT(lapic_read(LAPIC_TMCCT) <= 2000000);
        while (ticks < i)
            sti_hlt_cli();
        GUEST_ASSERT_EQ(lapic_read(LAPIC_TMCCT), 0, "a one-shot count that ran out reads 0");
    }
    GUEST_ASSERT_EQ(lapic_read(LAPIC_TMICT), 2000000, "TMICT keeps its value");
    guest_printf("one-shot: %u ticks; inside the handler ISR bit %u, PPR 0x%x; after EOI ISR bit %u\n", ticks, isr_seen,
                 ppr_seen, lapic_bit(LAPIC_ISR, VEC));
    timer_quiesce();

    lapic_write(LAPIC_LVTT, VEC | LVT_PERIODIC);
    lapic_write(LAPIC_TMICT, 1000000);
    while (ticks < 10)
        sti_hlt_cli();
    unsigned seen = ticks;
    GUEST_ASSERT(lapic_read(LAPIC_TMCCT) <= 1000000);
    timer_quiesce();
    guest_printf("periodic: %u ticks counted, then masked and stopped\n", seen);

    lapic_write(LAPIC_TDCR, 0x3); /* divide by 16 */
    lapic_write(LAPIC_LVTT, VEC);
    lapic_write(LAPIC_TMICT, 100000);
    GUEST_ASSERT(lapic_read(LAPIC_TMCCT) <= 100000); /* (how far it ran depends on the host: not checked) */
    while (ticks < 1)
        sti_hlt_cli();
    guest_printf("divide by 16: TDCR 0x%x, %u tick\n", lapic_read(LAPIC_TDCR), ticks);

    /* A masked one-shot timer still counts down, and raises nothing. */
    lapic_write(LAPIC_TDCR, 0xb);
    lapic_write(LAPIC_LVTT, VEC | LVT_MASKED);
    lapic_write(LAPIC_TMICT, 1000);
    while (lapic_read(LAPIC_TMCCT) != 0)
        __asm__ volatile("pause");
    irq_window();
    guest_printf("masked: the count ran out, IRR bit %u, %u tick\n", lapic_bit(LAPIC_IRR, VEC), ticks);
}
