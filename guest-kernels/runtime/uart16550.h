/* The guest's 16550A driver, polled: probe (IER, scratch, loopback, FIFO), init, transmit on LSR.THRE, receive on
 * LSR.DR. */
#ifndef GUEST_UART16550_H
#define GUEST_UART16550_H

#include <linux/serial_reg.h> /* UART_* offsets and bits, shared with the VMM's model */
#include <stddef.h>
#include <stdint.h>

/*
 * Why a probe failed: the first check that did not hold, with the value read
 * and the value a 16550A gives. UART_PROBE_OK when all held.
 */
enum uart_probe_step {
    UART_PROBE_OK,
    UART_PROBE_IER,       /* IER: 0 and 0x0f written, low nibble read back (Linux's first test) */
    UART_PROBE_SCRATCH,   /* SCR: 0x55 and 0xaa read back */
    UART_PROBE_LOOP_MSR,  /* MCR = LOOP | OUT2 | RTS: MSR & 0xf0 must be 0x90 */
    UART_PROBE_LOOP_DATA, /* in loopback, a byte written to THR comes back in RBR with LSR.DR */
    UART_PROBE_FIFO,      /* FCR = ENABLE_FIFO: IIR bits 7:6 must be 11 (16550A) */
};
struct uart_probe_result {
    enum uart_probe_step step;
    uint8_t got;
    uint8_t want;
};

/* Probes the UART at `base` as Linux's 8250 autoconfig does; restores IER and MCR. UART_PROBE_OK: a 16550A. */
enum uart_probe_step uart_probe(uint16_t base, struct uart_probe_result *res);
/* The probe step's name, for messages: "IER test", "scratch test", ... */
const char *uart_probe_step_name(enum uart_probe_step step);
/*
 * Sets the UART up: no interrupts (IER 0: no interrupt controller here, so
 * it is polled), baud 115200 / divisor, 8N1, FIFOs on and cleared (trigger
 * 1), DTR | RTS | OUT2.
 */
void uart_init(uint16_t base, uint16_t divisor);
/* Waits for LSR.THRE, then writes THR: two exits per byte (an IN, an OUT). */
void uart_putc(uint16_t base, char c);
void uart_write(uint16_t base, const char *buf, size_t len);
/* Waits for LSR.DR up to max_polls LSR reads (0: forever), then reads RBR. The byte, or -1 after max_polls. */
int uart_getc(uint16_t base, unsigned max_polls);
/*
 * Reads a line into buf (at most size - 1 bytes, NUL-terminated, without the
 * '\n'), each byte waiting up to max_polls. Returns its length, or -1 when a
 * byte did not come in time (buf holds what came).
 */
int uart_read_line(uint16_t base, char *buf, size_t size, unsigned max_polls);

#endif
