/* Lab 4 (reference): the 16550A UART, register by register, as a guest (and Linux's 8250 probe) sees it. */
#include <errno.h>
#include <string.h>

#include "lab4-uart/lab4.h"

static bool fifo_on(const struct lab4_uart *u)
{
    return u->fcr & UART_FCR_ENABLE_FIFO;
}

/* FCR bits 7:6: 1, 4, 8 or 14 bytes before "received data available" (IIR 0x4) shows. */
static unsigned rx_trigger(const struct lab4_uart *u)
{
    static const unsigned levels[4] = {1, 4, 8, 14};

    return fifo_on(u) ? levels[UART_FCR_R_TRIG_BITS(u->fcr)] : 1;
}

static void rx_clear(struct lab4_uart *u)
{
    u->rx_head = u->rx_count = 0;
    u->lsr &= (uint8_t)~UART_LSR_DR;
}

/* MSR's high nibble: in loopback the MCR outputs looped back (RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD), else the line.
 */
static uint8_t msr_lines(const struct lab4_uart *u)
{
    uint8_t m = u->mcr;

    if (!(m & UART_MCR_LOOP))
        return LAB4_UART_LINE_MSR;
    return (uint8_t)((m & UART_MCR_RTS ? UART_MSR_CTS : 0) | (m & UART_MCR_DTR ? UART_MSR_DSR : 0) |
                     (m & UART_MCR_OUT1 ? UART_MSR_RI : 0) | (m & UART_MCR_OUT2 ? UART_MSR_DCD : 0));
}

/*
 * IIR: the highest-priority pending interrupt among those IER enables, as the
 * 16550A ranks them: line status, received data (or, with FIFOs, the
 * character timeout: this model has no clock, so by the time the guest looks
 * the 4 character times have passed), THR empty, modem status (never: the
 * lines do not change). Bits 7:6 say the FIFOs are on.
 */
static uint8_t iir_value(const struct lab4_uart *u)
{
    uint8_t id = UART_IIR_NO_INT;

    if ((u->ier & UART_IER_RLSI) && (u->lsr & UART_LSR_BRK_ERROR_BITS))
        id = UART_IIR_RLSI;
    else if ((u->ier & UART_IER_RDI) && u->rx_count)
        id = u->rx_count >= rx_trigger(u) ? UART_IIR_RDI : UART_IIR_RX_TIMEOUT;
    else if ((u->ier & UART_IER_THRI) && u->thr_ipending)
        id = UART_IIR_THRI;
    return (uint8_t)(id | (fifo_on(u) ? LAB4_UART_IIR_FIFO : 0));
}

void lab4_uart_reset(struct lab4_uart *u)
{
    int (*tx)(void *, uint8_t) = u->tx;
    void *opaque = u->opaque;

    memset(u, 0, sizeof(*u));
    u->tx = tx;
    u->opaque = opaque;
    u->lsr = UART_LSR_THRE | UART_LSR_TEMT;
}

void lab4_uart_receive(struct lab4_uart *u, uint8_t byte)
{
    unsigned depth = fifo_on(u) ? LAB4_UART_FIFO : 1;

    if (u->rx_count == depth) {
        u->lsr |= UART_LSR_OE;
        if (!fifo_on(u)) /* a 16450's holding register is overwritten */
            u->rx[u->rx_head] = byte;
        return;
    }
    u->rx[(u->rx_head + u->rx_count) % LAB4_UART_FIFO] = byte;
    u->rx_count++;
    u->lsr |= UART_LSR_DR;
}

int lab4_uart_read(struct lab4_uart *u, unsigned reg, uint8_t *val)
{
    bool dlab = u->lcr & UART_LCR_DLAB;

    switch (reg) {
    case UART_RX:
        if (dlab) {
            *val = u->dll;
        } else if (u->rx_count) {
            *val = u->rx[u->rx_head];
            u->rx_head = (u->rx_head + 1) % LAB4_UART_FIFO;
            if (--u->rx_count == 0)
                u->lsr &= (uint8_t)~UART_LSR_DR;
        } else {
            *val = 0;
        }
        return 0;
    case UART_IER:
        *val = dlab ? u->dlm : u->ier;
        return 0;
    case UART_IIR:
        *val = iir_value(u);
        /* Reading IIR while it shows "THR empty" acknowledges that interrupt. */
        if ((*val & UART_IIR_ID) == UART_IIR_THRI && !(*val & UART_IIR_NO_INT))
            u->thr_ipending = false;
        return 0;
    case UART_LCR:
        *val = u->lcr;
        return 0;
    case UART_MCR:
        *val = u->mcr;
        return 0;
    case UART_LSR:
        *val = u->lsr;
        u->lsr &= (uint8_t)~UART_LSR_BRK_ERROR_BITS; /* the error bits clear when read */
        return 0;
    case UART_MSR:
        *val = msr_lines(u);
        return 0;
    case UART_SCR:
        *val = u->scr;
        return 0;
    }
    return mvm_fail(EINVAL, "lab4 UART: read of register %u; a 16550A has 8 (0..7)", reg);
}

static int thr_write(struct lab4_uart *u, uint8_t byte)
{
    int rc = 0;

    /* Transmission is instant: THR and the shift register are empty again at once, so THRE and TEMT stay set. */
    if (u->mcr & UART_MCR_LOOP)
        lab4_uart_receive(u, byte); /* the transmitter feeds the receiver; nothing leaves on the line */
    else if (u->tx)
        rc = u->tx(u->opaque, byte);
    u->thr_ipending = true;
    return rc;
}

int lab4_uart_write(struct lab4_uart *u, unsigned reg, uint8_t val)
{
    bool dlab = u->lcr & UART_LCR_DLAB;

    switch (reg) {
    case UART_TX:
        if (dlab) {
            u->dll = val;
            return 0;
        }
        return thr_write(u, val);
    case UART_IER:
        if (dlab) {
            u->dlm = val;
            return 0;
        }
        /* Enabling the THRE interrupt with THR empty makes it pending at once (the 16550A does). */
        if ((val & UART_IER_THRI) && !(u->ier & UART_IER_THRI))
            u->thr_ipending = true;
        u->ier = val & LAB4_UART_IER_MASK;
        return 0;
    case UART_FCR:
        /* Turning the FIFOs on or off empties them; bits 1 and 2 clear them and read back as 0. */
        if ((val ^ u->fcr) & UART_FCR_ENABLE_FIFO)
            rx_clear(u);
        if (val & UART_FCR_CLEAR_RCVR)
            rx_clear(u);
        u->fcr = val & UART_FCR_ENABLE_FIFO ? (uint8_t)(val & (UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_MASK)) : 0;
        return 0;
    case UART_LCR:
        u->lcr = val;
        return 0;
    case UART_MCR:
        u->mcr = val & LAB4_UART_MCR_MASK;
        return 0;
    case UART_LSR:
    case UART_MSR:
        return 0; /* status registers: writes are ignored (factory test on some parts) */
    case UART_SCR:
        u->scr = val;
        return 0;
    }
    return mvm_fail(EINVAL, "lab4 UART: write of 0x%02x to register %u; a 16550A has 8 (0..7)", val, reg);
}
