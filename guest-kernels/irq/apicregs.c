/* Interrupt probe: the local APIC's registers: LVT masking, DFR/LDR, self-IPIs, IRR/ISR, TPR/PPR priorities, EOI. */
#include "irq.h"

static volatile unsigned order[4], pprs[4], n;

static void record(unsigned vec)
{
    order[n] = vec;
    pprs[n] = lapic_read(LAPIC_PPR);
    n++;
    lapic_write(LAPIC_EOI, 0);
}

__attribute__((interrupt)) static void h50(struct interrupt_frame *f)
{
    (void)f;
    record(0x50);
}

__attribute__((interrupt)) static void h61(struct interrupt_frame *f)
{
    (void)f;
    record(0x61);
}

static void self_ipi(unsigned vec)
{
    lapic_write(LAPIC_ICR2, 0);
    lapic_write(LAPIC_ICR, vec | (1u << 18)); /* fixed, shorthand self */
}

void guest_main(void)
{
    irq_handler_set(0x50, h50);
    irq_handler_set(0x61, h61);
    lapic_write(LAPIC_LVTT, 0x45);
    guest_printf("software-disabled: LVT timer written 0x45 reads 0x%x; SPIV 0x%x\n", lapic_read(LAPIC_LVTT),
                 lapic_read(LAPIC_SPIV));
    lapic_enable();
    lapic_write(LAPIC_LVTT, 0x45);
    lapic_write(LAPIC_DFR, 0);
    lapic_write(LAPIC_LDR, 0x12345678);
    guest_printf("enabled: LVT timer 0x%x, DFR 0x%x, LDR 0x%x, TPR 0x%x, PPR 0x%x\n", lapic_read(LAPIC_LVTT),
                 lapic_read(LAPIC_DFR), lapic_read(LAPIC_LDR), lapic_read(LAPIC_TPR), lapic_read(LAPIC_PPR));
    lapic_write(LAPIC_DFR, 0xffffffff);

    self_ipi(0x50);
    self_ipi(0x61);
    guest_printf("two self-IPIs with IF=0: IRR 0x50 %u, 0x61 %u; ICR reads 0x%x\n", lapic_bit(LAPIC_IRR, 0x50),
                 lapic_bit(LAPIC_IRR, 0x61), lapic_read(LAPIC_ICR));
    lapic_write(LAPIC_TPR, 0x70);
    irq_window();
    guest_printf("TPR 0x70: PPR 0x%x, %u taken\n", lapic_read(LAPIC_PPR), n);
    lapic_write(LAPIC_TPR, 0x50); /* class 5: only 0x61 is above it (AMD's V_TPR keeps no low nibble) */
    irq_window();
    guest_printf("TPR 0x50: PPR 0x%x, %u taken\n", lapic_read(LAPIC_PPR), n);
    lapic_write(LAPIC_TPR, 0);
    irq_window();
    for (unsigned i = 0; i < n; i++)
        guest_printf("taken %u: vector 0x%x, PPR inside 0x%x\n", i, order[i], pprs[i]);
    GUEST_ASSERT_EQ(n, 2, "both self-IPIs taken");
    GUEST_ASSERT_EQ(lapic_bit(LAPIC_ISR, 0x50) | lapic_bit(LAPIC_ISR, 0x61), 0, "nothing left in service");
    lapic_write(LAPIC_EOI, 0); /* an EOI with nothing in service changes nothing */
    lapic_write(LAPIC_SPIV, 0xff);
    guest_printf("software-disabled again: LVT timer 0x%x, PPR 0x%x\n", lapic_read(LAPIC_LVTT), lapic_read(LAPIC_PPR));
}
