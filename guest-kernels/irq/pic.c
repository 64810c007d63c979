/* Interrupt probe: the 8259 pair through LINT0 (ExtINT): ICWs, masks, IRR/ISR reads, EOI, cascade, ELCR, poll. */
#include "irq.h"

static volatile unsigned taken[16], isr_seen;

static void pic_init(void)
{
    outb(0x20, 0x11); /* ICW1: edge, cascade, ICW4 follows */
    outb(0x21, 0x20); /* ICW2: vectors 0x20-0x27 */
    outb(0x21, 0x04); /* ICW3: the slave on IRQ 2 */
    outb(0x21, 0x01); /* ICW4: 8086 mode */
    outb(0xa0, 0x11);
    outb(0xa1, 0x28);
    outb(0xa1, 0x02);
    outb(0xa1, 0x01);
}

__attribute__((interrupt)) static void h3(struct interrupt_frame *f)
{
    (void)f;
    taken[3]++;
    outb(0x20, 0x0b); /* OCW3: read ISR */
    isr_seen = inb(0x20);
    outb(0x20, 0x0a); /* back to IRR */
    outb(0x20, 0x20); /* non-specific EOI */
}

__attribute__((interrupt)) static void h10(struct interrupt_frame *f)
{
    (void)f;
    taken[10]++;
    outb(0xa0, 0x20);
    outb(0x20, 0x20);
}

/* IRQ 5, level-triggered through the ELCR: the line goes low before the EOI. */
__attribute__((interrupt)) static void h5(struct interrupt_frame *f)
{
    (void)f;
    taken[5]++;
    irq_request(5, MVM_IRQ_OP_LOWER);
    outb(0x20, 0x65); /* specific EOI, IRQ 5 */
}

void guest_main(void)
{
    irq_handler_set(0x23, h3);
    irq_handler_set(0x25, h5);
    irq_handler_set(0x2a, h10);
    guest_printf("local APIC LVT0 0x%x (ExtINT: the PIC reaches the CPU)\n", lapic_read(LAPIC_LVT0));
    pic_init();
    outb(0x21, (uint8_t) ~((1 << 2) | (1 << 3) | (1 << 5)));
    outb(0xa1, (uint8_t) ~(1 << 2));
    guest_printf("masks 0x%x 0x%x\n", inb(0x21), inb(0xa1));

    irq_request(3, MVM_IRQ_OP_PULSE);
    int32_t st = irq_status();
    uint8_t irr = inb(0x20);
    irq_window();
    guest_printf("IRQ 3: status %d, IRR 0x%x before, ISR 0x%x inside, %u taken, IRR 0x%x after\n", st, irr, isr_seen,
                 taken[3], inb(0x20));

    irq_request(4, MVM_IRQ_OP_PULSE);
    st = irq_status();
    irq_window();
    guest_printf("IRQ 4 (masked): status %d, IRR 0x%x\n", st, inb(0x20));

    irq_request(10, MVM_IRQ_OP_PULSE);
    st = irq_status();
    irq_window();
    guest_printf("IRQ 10 (slave): status %d, %u taken\n", st, taken[10]);

    outb(0x4d0, 0xff);
    outb(0x4d1, 0xff);
    guest_printf("ELCR written 0xff: 0x%x 0x%x\n", inb(0x4d0), inb(0x4d1));
    outb(0x4d0, 1 << 5);
    outb(0x4d1, 0);
    irq_request(5, MVM_IRQ_OP_RAISE);
    st = irq_status();
    irq_window();
    guest_printf("IRQ 5 (level): status %d, %u taken\n", st, taken[5]);

    irq_request(3, MVM_IRQ_OP_PULSE);
    outb(0x20, 0x0c); /* OCW3: poll */
    uint8_t poll = inb(0x20);
    outb(0x20, 0x20);
    irq_window();
    guest_printf("poll: 0x%x (IRQ 3 acknowledged by the read), %u taken through the IDT\n", poll, taken[3]);
}
