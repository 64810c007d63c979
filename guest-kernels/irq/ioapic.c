/* Interrupt probe: the IOAPIC's redirection table, edge and level pins, remote IRR and EOI, raised by the VMM. */
#include "irq.h"

#define RTE(pin) (0x10 + 2 * (pin))
#define LEVEL    (1u << 15)
#define REMOTE   (1u << 14)
#define MASK     (1u << 16)

static volatile unsigned count[4];
static volatile uint32_t remote_seen, tmr_seen;

__attribute__((interrupt)) static void h_edge(struct interrupt_frame *f)
{
    (void)f;
    count[0]++;
    lapic_write(LAPIC_EOI, 0);
}

/* Level pin 19: lowers its line before the EOI. */
__attribute__((interrupt)) static void h_level(struct interrupt_frame *f)
{
    (void)f;
    count[1]++;
    remote_seen = (ioapic_read(RTE(19)) & REMOTE) != 0;
    tmr_seen = lapic_bit(LAPIC_TMR, 0x53);
    irq_request(19, MVM_IRQ_OP_LOWER);
    lapic_write(LAPIC_EOI, 0);
}

/* Level pin 20: the first time its line is still high at the EOI, so the IOAPIC sends it again. */
__attribute__((interrupt)) static void h_again(struct interrupt_frame *f)
{
    (void)f;
    if (++count[2] == 2)
        irq_request(20, MVM_IRQ_OP_LOWER);
    lapic_write(LAPIC_EOI, 0);
}

void guest_main(void)
{
    irq_handler_set(0x52, h_edge);
    irq_handler_set(0x53, h_level);
    irq_handler_set(0x54, h_again);
    outb(0x21, 0xff); /* both PICs masked: GSIs below 16 reach them too */
    outb(0xa1, 0xff);
    lapic_enable();
    guest_printf("IOAPIC: id 0x%x, version 0x%x, pin 0 entry 0x%x:%x\n", ioapic_read(0), ioapic_read(1),
                 ioapic_read(RTE(0) + 1), ioapic_read(RTE(0)));

    ioapic_write(RTE(18) + 1, 0); /* destination: APIC 0, physical */
    ioapic_write(RTE(18), 0x52);
    irq_request(18, MVM_IRQ_OP_PULSE);
    int32_t st = irq_status();
    irq_window();
    guest_printf("edge pin 18: status %d, %u taken\n", st, count[0]);
    ioapic_write(RTE(18), 0x52 | MASK);
    irq_request(18, MVM_IRQ_OP_PULSE);
    st = irq_status();
    irq_window();
    guest_printf("masked pin 18: status %d, %u taken; IRR bit 0x52 %u\n", st, count[0], lapic_bit(LAPIC_IRR, 0x52));
    ioapic_write(RTE(18), 0x52 | REMOTE | (1u << 12));
    guest_printf("entry written with remote IRR and delivery status reads 0x%x\n", ioapic_read(RTE(18)));

    ioapic_write(RTE(19) + 1, 0);
    ioapic_write(RTE(19), 0x53 | LEVEL);
    irq_request(19, MVM_IRQ_OP_RAISE);
    int32_t st1 = irq_status();
    irq_request(19, MVM_IRQ_OP_RAISE);
    int32_t st2 = irq_status();
    uint32_t rte = ioapic_read(RTE(19));
    irq_window();
    guest_printf("level pin 19: status %d then %d, entry 0x%x; %u taken (remote IRR %u, TMR %u inside), entry "
                 "0x%x after EOI\n",
                 st1, st2, rte, count[1], remote_seen, tmr_seen, ioapic_read(RTE(19)));

    ioapic_write(RTE(20) + 1, 0);
    ioapic_write(RTE(20), 0x54 | LEVEL);
    irq_request(20, MVM_IRQ_OP_RAISE);
    irq_window();
    irq_window();
    guest_printf("level pin 20 held high over an EOI: %u taken\n", count[2]);
    GUEST_ASSERT_EQ(count[2], 2, "the IOAPIC sends a level interrupt again while its line is high");

    irq_request(40, MVM_IRQ_OP_PULSE);
    guest_printf("GSI 40 (no route): status %d\n", irq_status());
}
