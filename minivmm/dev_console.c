/* Console devices: a 16550 subset on COM1 (transmit only) and the 0xe9 debug byte port. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

/* 16550 register offsets from the base port, and the bits the guest polls. */
#define UART_THR 0 /* transmit holding register (DLAB = 0) */
#define UART_LCR 3
#define UART_LSR 5
#define UART_LCR_DLAB 0x80
#define UART_LSR_THRE 0x20 /* transmit holding register empty */
#define UART_LSR_TEMT 0x40 /* transmitter empty */

struct console {
    FILE *out;
    uint8_t lcr;
    uint8_t scratch[8];
};

static void console_put(struct console *c, uint8_t byte)
{
    if (c->out) {
        fputc(byte, c->out);
        if (byte == '\n')
            fflush(c->out);
    }
}

static int serial_io(struct mvm_vcpu *vcpu, void *opaque, uint16_t port, bool is_write, uint8_t *data,
                     uint32_t size)
{
    struct console *c = opaque;
    unsigned reg = port - MVM_PORT_SERIAL;

    (void)vcpu;
    if (is_write) {
        /* Only the first byte counts: a 16550 register is 8 bits wide. */
        if (reg == UART_THR && !(c->lcr & UART_LCR_DLAB))
            console_put(c, data[0]);
        else if (reg == UART_LCR)
            c->lcr = data[0];
        else
            c->scratch[reg] = data[0];
        return 0;
    }
    memset(data, 0, size);
    if (reg == UART_LSR)
        data[0] = UART_LSR_THRE | UART_LSR_TEMT;
    else if (reg == UART_LCR)
        data[0] = c->lcr;
    else if (reg != UART_THR)
        data[0] = c->scratch[reg];
    return 0;
}

static int debug_io(struct mvm_vcpu *vcpu, void *opaque, uint16_t port, bool is_write, uint8_t *data,
                    uint32_t size)
{
    (void)vcpu;
    (void)port;
    if (is_write)
        console_put(opaque, data[0]);
    else
        memset(data, 0, size);
    return 0;
}

int vm_console_add(struct mvm_vm *vm, FILE *out)
{
    struct console *c = calloc(1, sizeof(*c));
    int rc;

    if (!c)
        return mvm_fail(ENOMEM, "console: out of memory");
    c->out = out;
    rc = vm_own(vm, c);
    if (rc == 0)
        rc = vm_pio_register(vm, MVM_PORT_SERIAL, 8, serial_io, c);
    if (rc == 0)
        rc = vm_pio_register(vm, MVM_PORT_DEBUG, 1, debug_io, c);
    return rc;
}
