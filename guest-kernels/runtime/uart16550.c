/* The guest's polled 16550A driver (no interrupt controller in this VMM: IRQ 4 waits for the irqchip lab). */
#include "runtime/runtime.h"
#include "runtime/uart16550.h"

static enum uart_probe_step fail(struct uart_probe_result *res, enum uart_probe_step step, uint8_t got, uint8_t want)
{
    res->step = step;
    res->got = got;
    res->want = want;
    return step;
}

enum uart_probe_step uart_probe(uint16_t base, struct uart_probe_result *res)
{
    uint8_t ier = inb(base + UART_IER), mcr, got;

    res->step = UART_PROBE_OK;
    /* Linux: IER 0 reads 0, IER 0x0f reads 0x0f: a register that is there and holds 4 bits. */
    outb(base + UART_IER, 0);
    got = inb(base + UART_IER) & 0x0f;
    outb(base + UART_IER, 0x0f);
    if (got != 0)
        return outb(base + UART_IER, ier), fail(res, UART_PROBE_IER, got, 0);
    got = inb(base + UART_IER) & 0x0f;
    outb(base + UART_IER, ier);
    if (got != 0x0f)
        return fail(res, UART_PROBE_IER, got, 0x0f);
    outb(base + UART_SCR, 0x55);
    got = inb(base + UART_SCR);
    if (got != 0x55)
        return fail(res, UART_PROBE_SCRATCH, got, 0x55);
    outb(base + UART_SCR, 0xaa);
    got = inb(base + UART_SCR);
    if (got != 0xaa)
        return fail(res, UART_PROBE_SCRATCH, got, 0xaa);
    /* Loopback: the modem outputs come back as inputs, the transmitter feeds the receiver. */
    mcr = inb(base + UART_MCR);
    outb(base + UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_RTS);
    got = inb(base + UART_MSR) & 0xf0;
    if (got != (UART_MSR_DCD | UART_MSR_CTS))
        return outb(base + UART_MCR, mcr), fail(res, UART_PROBE_LOOP_MSR, got, UART_MSR_DCD | UART_MSR_CTS);
    outb(base + UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
    outb(base + UART_TX, 0xa5);
    got = inb(base + UART_LSR) & UART_LSR_DR;
    if (got != UART_LSR_DR)
        return outb(base + UART_MCR, mcr), fail(res, UART_PROBE_LOOP_DATA, got, UART_LSR_DR);
    got = inb(base + UART_RX);
    outb(base + UART_MCR, mcr);
    if (got != 0xa5)
        return fail(res, UART_PROBE_LOOP_DATA, got, 0xa5);
    /* IIR bits 7:6 = 11 with the FIFOs on: a 16550A (00: 8250/16450, 10: a 16550 with a broken FIFO). */
    outb(base + UART_FCR, UART_FCR_ENABLE_FIFO);
    got = inb(base + UART_IIR) & 0xc0;
    if (got != 0xc0)
        return fail(res, UART_PROBE_FIFO, got, 0xc0);
    return UART_PROBE_OK;
}

const char *uart_probe_step_name(enum uart_probe_step step)
{
    static const char *const names[] = {
        "ok", "IER test", "scratch test", "loopback MSR test", "loopback data test", "FIFO test"};

    return (unsigned)step < sizeof(names) / sizeof(names[0]) ? names[step] : "unknown step";
}

void uart_init(uint16_t base, uint16_t divisor)
{
    outb(base + UART_IER, 0);
    outb(base + UART_LCR, UART_LCR_DLAB);
    outb(base + UART_DLL, (uint8_t)divisor);
    outb(base + UART_DLM, (uint8_t)(divisor >> 8));
    outb(base + UART_LCR, UART_LCR_WLEN8); /* 8 data bits, no parity, 1 stop bit; DLAB off */
    outb(base + UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT | UART_FCR_TRIGGER_1);
    outb(base + UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
}

void uart_putc(uint16_t base, char c)
{
    while (!(inb(base + UART_LSR) & UART_LSR_THRE))
        ;
    outb(base + UART_TX, (uint8_t)c);
}

void uart_write(uint16_t base, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        uart_putc(base, buf[i]);
}

int uart_getc(uint16_t base, unsigned max_polls)
{
    for (unsigned n = 0; max_polls == 0 || n < max_polls; n++)
        if (inb(base + UART_LSR) & UART_LSR_DR)
            return inb(base + UART_RX);
    return -1;
}

int uart_read_line(uint16_t base, char *buf, size_t size, unsigned max_polls)
{
    size_t n = 0;

    for (;;) {
        int c = uart_getc(base, max_polls);

        if (c < 0 || c == '\n' || n + 1 >= size) {
            buf[n] = '\0';
            return c < 0 ? -1 : (int)n;
        }
        buf[n++] = (char)c;
    }
}
