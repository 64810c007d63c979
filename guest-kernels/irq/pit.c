/* Interrupt probe: the in-kernel 8254 PIT on IRQ 0 through the PIC: rate generator ticks, one-shot, latches. */
#include "irq.h"

static volatile unsigned ticks;

__attribute__((interrupt)) static void h0(struct interrupt_frame *f)
{
    (void)f;
    ticks++;
    outb(0x20, 0x20);
}

static void pic_init(void)
{
    static const uint8_t icw[2][4] = {{0x11, 0x20, 0x04, 0x01}, {0x11, 0x28, 0x02, 0x01}};
    for (int i = 0; i < 2; i++) {
        outb(i ? 0xa0 : 0x20, icw[i][0]);
        for (int k = 1; k < 4; k++)
            outb(i ? 0xa1 : 0x21, icw[i][k]);
    }
    outb(0x21, 0xfe); /* IRQ 0 only */
    outb(0xa1, 0xff);
}

/* Channel 0's count, latched (control word 0x00) and read low byte then high byte. */
static unsigned pit_latched(void)
{
    outb(0x43, 0x00);
    unsigned lo = inb(0x40);
    return lo | (unsigned)inb(0x40) << 8;
}

void guest_main(void)
{
    irq_handler_set(0x20, h0);
    pic_init();
    outb(0x43, 0x34); /* channel 0, low then high byte, mode 2 (rate generator) */
    outb(0x40, 11932 & 0xff);
    outb(0x40, 11932 >> 8); /* 10 ms */
    while (ticks < 10)
        sti_hlt_cli();
    unsigned seen = ticks;
    unsigned c = pit_latched();
    GUEST_ASSERT(c >= 1 && c <= 11932);
    outb(0x43, 0xe2); /* read-back: channel 0's status only */
    uint8_t status = inb(0x40);
    guest_printf("mode 2: %u ticks; status 0x%x (bits 0-5: mode 2, low then high byte)\n", seen,
                 (unsigned)(status & 0x3f));

    outb(0x43, 0x30); /* mode 0: one interrupt at terminal count */
    outb(0x40, 0xff);
    outb(0x40, 0xff); /* 55 ms */
    outb(0x43, 0xe2);
    status = inb(0x40) & 0x3f; /* OUT (bit 7) depends on how long the host took: not shown */
    while (ticks < seen + 1)   /* the tick of mode 2 that was due may come first */
        sti_hlt_cli();
    ticks = 0;
    outb(0x43, 0x30);
    outb(0x40, 0x10);
    outb(0x40, 0x00); /* 16 PIT ticks: 13 us */
    while (ticks < 1)
        sti_hlt_cli();
    irq_window();
    guest_printf("mode 0: status 0x%x (mode 0, low then high byte), %u tick at terminal count\n", status, ticks);
    outb(0x43, 0xb6); /* channel 2, mode 3 */
    outb(0x61, 0x01); /* its gate on (the speaker port) */
    guest_printf("speaker port: gate bit %u\n", inb(0x61) & 1);
}
