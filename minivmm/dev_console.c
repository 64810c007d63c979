/* Console devices: a 16550 subset on COM1 (transmit only) and the 0xe9 debug byte port. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "device.h"

/* 16550 register offsets from the base port, and the bits the guest polls. */
#define UART_THR 0 /* transmit holding register (DLAB = 0) */
#define UART_LCR 3
#define UART_LSR 5
#define UART_LCR_DLAB 0x80
#define UART_LSR_THRE 0x20 /* transmit holding register empty */
#define UART_LSR_TEMT 0x40 /* transmitter empty */
#define UART_PORTS 8

struct serial {
    FILE *out;
    uint8_t lcr;
    uint8_t scratch[UART_PORTS];
};

static void console_put(FILE *out, uint8_t byte)
{
    if (out) {
        fputc(byte, out);
        if (byte == '\n')
            fflush(out);
    }
}

static int serial_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t reg, const uint8_t *data,
                        uint32_t len)
{
    struct serial *s = dev->priv;

    (void)vcpu;
    (void)len;
    /* Only the first byte counts: a 16550 register is 8 bits wide. */
    if (reg == UART_THR && !(s->lcr & UART_LCR_DLAB))
        console_put(s->out, data[0]);
    else if (reg == UART_LCR)
        s->lcr = data[0];
    else
        s->scratch[reg] = data[0];
    return 0;
}

static int serial_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t reg, uint8_t *data, uint32_t len)
{
    struct serial *s = dev->priv;

    (void)vcpu;
    memset(data, 0, len);
    if (reg == UART_LSR)
        data[0] = UART_LSR_THRE | UART_LSR_TEMT;
    else if (reg == UART_LCR)
        data[0] = s->lcr;
    else if (reg != UART_THR)
        data[0] = s->scratch[reg];
    return 0;
}

static void serial_reset(struct mvm_device *dev)
{
    struct serial *s = dev->priv;

    s->lcr = 0;
    memset(s->scratch, 0, sizeof(s->scratch));
}

static const struct mvm_device_ops serial_ops = {
    .name = "serial (COM1, transmit only)",
    .read = serial_read,
    .write = serial_write,
    .reset = serial_reset,
};

static int debugcon_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data,
                          uint32_t len)
{
    (void)vcpu;
    (void)off;
    (void)len;
    console_put(dev->priv, data[0]);
    return 0;
}

static int debugcon_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    (void)dev;
    (void)vcpu;
    (void)off;
    memset(data, 0, len);
    return 0;
}

/* The debug port's priv is the caller's FILE: nothing to free. */
static void debugcon_destroy(struct mvm_device *dev)
{
    (void)dev;
}

static const struct mvm_device_ops debugcon_ops = {
    .name = "debug port 0xe9",
    .read = debugcon_read,
    .write = debugcon_write,
    .destroy = debugcon_destroy,
};

int vm_console_add(struct mvm_vm *vm, FILE *out)
{
    struct serial *s = calloc(1, sizeof(*s));
    int rc;

    if (!s)
        return mvm_fail(ENOMEM, "console: out of memory");
    s->out = out;
    rc = vm_device_add(vm, &serial_ops, MVM_BUS_PIO, MVM_PORT_SERIAL, UART_PORTS, s, NULL);
    return rc ? rc : vm_device_add(vm, &debugcon_ops, MVM_BUS_PIO, MVM_PORT_DEBUG, 1, out, NULL);
}
