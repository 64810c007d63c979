/* Lab 4's student functions: the 16550A UART's register model and the hypercall doorbell's decoder, with their
 * contracts. */
#ifndef LAB4_UART_LAB4_H
#define LAB4_UART_LAB4_H

#include <linux/serial_reg.h> /* UART_* register offsets and bits, as Linux's 8250 driver names them */
#include <stdbool.h>
#include <stdint.h>

#include "hypercall.h"
#include "mvm.h"

#define LAB4_UART_PORTS    8  /* COM1: MVM_PORT_SERIAL .. + 7 */
#define LAB4_UART_FIFO     16 /* the 16550A's receive FIFO (transmission here is instant: no transmit FIFO to model) */
#define LAB4_UART_IER_MASK 0x0f /* IER bits a 16550A has; bits 4-7 read 0 (Linux's probe checks) */
#define LAB4_UART_MCR_MASK 0x1f /* MCR bits a 16550A has: DTR RTS OUT1 OUT2 LOOP; bits 5-7 read 0 */
#define LAB4_UART_IIR_FIFO 0xc0 /* IIR bits 7:6 when FCR enabled the FIFOs: "16550A" to a probe */
/* Out of loopback, the modem lines as a connected terminal holds them: DCD, DSR, CTS asserted, no ring. */
#define LAB4_UART_LINE_MSR (UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS)

/*
 * One UART's state. The VMM (lab4_plugin.c) fills in `tx` and `opaque`, calls
 * lab4_uart_reset(), then hands every register access to lab4_uart_read() or
 * lab4_uart_write(), and each byte that arrives on the line to
 * lab4_uart_receive(). Everything else is the model's.
 */
struct lab4_uart {
    uint8_t ier; /* interrupt enable: bits 0-3 */
    uint8_t lcr; /* line control: word length, stop bits, parity, break, DLAB (bit 7) */
    uint8_t mcr; /* modem control: bits 0-4 */
    uint8_t scr; /* scratch */
    uint8_t dll; /* divisor latch, low and high byte: baud = 115200 / divisor */
    uint8_t dlm;
    uint8_t fcr;       /* the FIFO set-up FCR last wrote (ENABLE_FIFO, trigger bits); FCR itself is write-only */
    uint8_t lsr;       /* line status: DR and OE change; THRE and TEMT stay set (transmission is instant) */
    bool thr_ipending; /* the "THR empty" interrupt condition (IIR 0x2), see lab4_uart_read */
    uint8_t rx[LAB4_UART_FIFO]; /* receive FIFO, a ring: rx_count bytes from rx_head */
    unsigned rx_head;
    unsigned rx_count;
    /* Set by the VMM: a byte leaves on the line (to the console). 0, or -errno with a message. */
    int (*tx)(void *opaque, uint8_t byte);
    void *opaque;
};

/*
 * Lab 4. Puts the UART in its power-on state (16550A datasheet, "reset"):
 * IER 0, IIR 0x01 (no interrupt), FCR 0 (FIFOs off), LCR 0, MCR 0, LSR 0x60
 * (THRE | TEMT), MSR high nibble = the lines, low nibble 0; the receive
 * FIFO empty, no THRE interrupt pending. SCR and the divisor latch are
 * undefined on hardware; this model powers on with 0. Keeps tx and opaque.
 */
void lab4_uart_reset(struct lab4_uart *u);

/*
 * Lab 4. The guest reads register `reg` (0..7, the offset from the base
 * port): *val is what a 16550A returns, with its side effects (reading RBR
 * takes a byte from the FIFO; reading LSR clears OE; reading IIR clears the
 * THRE interrupt when that is the one it shows). Returns 0, or -EINVAL for a
 * reg outside 0..7 (with a message).
 */
int lab4_uart_read(struct lab4_uart *u, unsigned reg, uint8_t *val);

/*
 * Lab 4. The guest writes `val` to register `reg`: THR (transmits through
 * u->tx, or into the receive FIFO in loopback), DLL/DLM under LCR.DLAB, IER,
 * FCR, LCR, MCR, SCR; LSR and MSR ignore writes. Returns 0, what u->tx
 * returned when it failed, or -EINVAL for a reg outside 0..7.
 */
int lab4_uart_write(struct lab4_uart *u, unsigned reg, uint8_t val);

/*
 * Lab 4. A byte arrives on the receive line (or from THR in loopback): into
 * the FIFO (16 deep with FCR's FIFOs on, else 1), LSR.DR set. When there is
 * no room the byte is lost and LSR.OE set (without FIFOs, the holding
 * register is overwritten, as on a 16450).
 */
void lab4_uart_receive(struct lab4_uart *u, uint8_t byte);

/*
 * Lab 4. The hypercall doorbell's decoder (hypercall.h), called for each OUT
 * to MVM_PORT_HYPERCALL of `out_size` bytes with value `out_value`. Reads
 * the registers (vcpu_regs_get): number in RAX, arguments in RBX, RCX, RSI,
 * RDI. Finds the number in the VM's table (vm_hypercall_find) and checks,
 * answering in RAX (vcpu_regs_set) without calling anything when:
 *  - the OUT is not 32 bits, or its value is not EAX: -MVM_HC_EINVAL;
 *  - no entry has the number: -MVM_HC_ENOSYS;
 *  - an argument register beyond the entry's nargs is not 0: -MVM_HC_EINVAL.
 * Else calls the entry's fn and puts its *ret in RAX. Returns 0, or what fn
 * or the register ioctls returned when they failed or stopped the run.
 */
int lab4_hypercall_dispatch(struct mvm_vcpu *vcpu, uint32_t out_size, uint32_t out_value);

/*
 * Lab 4. MVM_HC_CONSOLE_WRITE (buf = args[0], len = args[1]): writes len
 * bytes of guest memory at buf (guest-virtual, read with vm_read_gva) to the
 * console (vm_console_write) in one go. *ret = len; -MVM_HC_EINVAL when len
 * > MVM_HC_CONSOLE_MAX; -MVM_HC_EFAULT when any byte of [buf, buf + len) is
 * not mapped or not RAM (then nothing is written). len 0 writes nothing.
 */
int lab4_hc_console_write(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret);

#endif
