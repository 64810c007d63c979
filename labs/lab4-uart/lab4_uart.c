/*
 * Lab 4 (student file): the 16550A UART's register model. Lab 1's console
 * knew two registers (THR out, LSR always "empty"); Linux's 8250 driver, and
 * any real driver, needs the whole chip: the divisor latch, the FIFOs, the
 * interrupt identification, loopback. The VMM side (lab4_plugin.c) puts this
 * model on ports 0x3f8-0x3ff and hands it every access; your code decides
 * what each IN returns and what each OUT does. Names: linux/serial_reg.h.
 */
#include <errno.h>
#include <string.h>

#include "lab4-uart/lab4.h"

/*
 * Given: the part of the chip lab 1 already used, so every guest's output
 * works before you start (THR transmits, LSR says "empty", SCR stores).
 * Everything else is yours; the TODOs below say what the datasheet says.
 */
static int not_yet(const char *what, unsigned reg, int val)
{
    if (val < 0)
        return mvm_fail(ENOSYS,
                        "lab4: lab4_uart_read() of register %u (%s) is not written yet: TODO(lab4) in "
                        "lab4_uart.c",
                        reg, what);
    return mvm_fail(ENOSYS,
                    "lab4: lab4_uart_write() of 0x%02x to register %u (%s) is not written yet: TODO(lab4) "
                    "in lab4_uart.c",
                    val, reg, what);
}

/*
 * TODO(lab4): the power-on state (see lab4.h): IER, FCR, LCR, MCR 0; LSR
 * THRE | TEMT; the FIFO empty; no THRE interrupt pending; SCR and the
 * divisor 0. Keep u->tx and u->opaque: the VMM set them.
 */
void lab4_uart_reset(struct lab4_uart *u)
{
    u->lsr = UART_LSR_THRE | UART_LSR_TEMT;
    u->scr = 0;
}

/*
 * TODO(lab4): a byte arrives. Room in the FIFO (16 deep with FCR's
 * ENABLE_FIFO, else 1): store it at (rx_head + rx_count) % 16, count it, set
 * LSR.DR. No room: set LSR.OE; without FIFOs the new byte overwrites the
 * holding register, with them it is lost.
 */
void lab4_uart_receive(struct lab4_uart *u, uint8_t byte)
{
    (void)u;
    (void)byte; /* dropped: nothing can be received until you write this */
}

/*
 * TODO(lab4), register by register (LCR.DLAB, bit 7, switches offsets 0 and
 * 1 to the divisor latch, DLL and DLM):
 *  - RBR (0): the oldest byte of the FIFO (clear LSR.DR when it empties), 0
 *    when empty.
 *  - IER (1): as written, bits 0-3 only. Linux's probe writes 0x0f and 0x00
 *    and checks what comes back, and later checks that bit 6 does NOT stick.
 *  - IIR (2): 0x01 when nothing is pending, else the highest of: line status
 *    0x06 (IER.RLSI and an LSR error bit), received data 0x04 (IER.RDI, at
 *    least the trigger level of bytes; fewer: timeout 0x0c), THR empty 0x02
 *    (IER.THRI and u->thr_ipending; reading IIR then clears thr_ipending).
 *    OR in 0xc0 while the FIFOs are on: that is how a probe tells a 16550A.
 *  - LCR (3), MCR (4), SCR (7): as stored.
 *  - LSR (5): u->lsr; reading it clears OE, PE, FE, BI.
 *  - MSR (6): low nibble 0 (the lines never change here); high nibble the
 *    line (LAB4_UART_LINE_MSR) or, in loopback (MCR.LOOP), MCR looped back:
 *    RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. Linux's probe writes MCR =
 *    LOOP | OUT2 | RTS and wants MSR & 0xf0 == 0x90.
 *  - anything above 7: -EINVAL with a message.
 */
int lab4_uart_read(struct lab4_uart *u, unsigned reg, uint8_t *val)
{
    switch (reg) {
    case UART_LSR:
        *val = u->lsr;
        return 0;
    case UART_SCR:
        *val = u->scr;
        return 0;
    case UART_RX:
        return not_yet(u->lcr & UART_LCR_DLAB ? "DLL" : "RBR", reg, -1);
    case UART_IER:
        return not_yet(u->lcr & UART_LCR_DLAB ? "DLM" : "IER", reg, -1);
    case UART_IIR:
        return not_yet("IIR", reg, -1);
    case UART_LCR:
        return not_yet("LCR", reg, -1);
    case UART_MCR:
        return not_yet("MCR", reg, -1);
    case UART_MSR:
        return not_yet("MSR", reg, -1);
    }
    return not_yet("no such register", reg, -1);
}

/*
 * TODO(lab4):
 *  - THR (0, DLAB 0): in loopback the byte goes to lab4_uart_receive();
 *    else out through u->tx(u->opaque, byte) (return its error). Either way
 *    THR is empty again at once: set u->thr_ipending.
 *  - DLL/DLM (0/1, DLAB 1): store.
 *  - IER (1): store bits 0-3; when THRI goes 0 -> 1 (THR is always empty)
 *    the THRE interrupt is pending at once: Linux checks for it at start-up.
 *  - FCR (2): FIFO enable (bit 0) and the trigger level (bits 7:6); turning
 *    the FIFOs on or off, or bit 1, empties the receive FIFO.
 *  - LCR (3), SCR (7): store. MCR (4): bits 0-4. LSR, MSR: ignore writes.
 *  - anything above 7: -EINVAL with a message.
 */
int lab4_uart_write(struct lab4_uart *u, unsigned reg, uint8_t val)
{
    switch (reg) {
    case UART_TX:
        if (u->lcr & UART_LCR_DLAB)
            return not_yet("DLL", reg, val);
        return u->tx ? u->tx(u->opaque, val) : 0;
    case UART_SCR:
        u->scr = val;
        return 0;
    case UART_IER:
        return not_yet(u->lcr & UART_LCR_DLAB ? "DLM" : "IER", reg, val);
    case UART_FCR:
        return not_yet("FCR", reg, val);
    case UART_LCR:
        return not_yet("LCR", reg, val);
    case UART_MCR:
        return not_yet("MCR", reg, val);
    case UART_LSR:
    case UART_MSR:
        return 0;
    }
    return not_yet("no such register", reg, val);
}
