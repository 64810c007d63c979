/* Console devices: a 16550 subset on COM1 (transmit only, unless a lab's UART claims the port), the 0xe9 debug byte
 * port, the VM's console streams. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_internal.h"
#include "device.h"

/* 16550 register offsets from the base port, and the bits the guest polls. */
#define UART_THR      0 /* transmit holding register (DLAB = 0) */
#define UART_LCR      3
#define UART_LSR      5
#define UART_LCR_DLAB 0x80
#define UART_LSR_THRE 0x20 /* transmit holding register empty */
#define UART_LSR_TEMT 0x40 /* transmitter empty */
#define UART_PORTS    8

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

static int serial_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t reg, const uint8_t *data, uint32_t len)
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
    struct serial *s;
    int rc;

    /* A lab's full UART (lab 4) took COM1 first: the console then only adds the debug port. */
    if (!vm_device_find(vm, MVM_BUS_PIO, MVM_PORT_SERIAL)) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return mvm_fail(ENOMEM, "console: out of memory");
        s->out = out;
        rc = vm_device_add(vm, &serial_ops, MVM_BUS_PIO, MVM_PORT_SERIAL, UART_PORTS, s, NULL);
        if (rc < 0)
            return rc;
    }
    return vm_device_add(vm, &debugcon_ops, MVM_BUS_PIO, MVM_PORT_DEBUG, 1, out, NULL);
}

void vm_console_write(struct mvm_vm *vm, const void *buf, size_t len)
{
    if (!vm->console_out || len == 0)
        return;
    fwrite(buf, 1, len, vm->console_out);
    if (memchr(buf, '\n', len))
        fflush(vm->console_out);
}

int vm_console_read(struct mvm_vm *vm, uint8_t *byte)
{
    FILE *in = vm->console_in;
    int fd, c;

    if (!in || vm->console_in_eof)
        return 0;
    fd = fileno(in);
    if (fd >= 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        /* A terminal or pipe may have nothing yet: the guest polls again (a regular file is always readable). */
        if (poll(&p, 1, 0) <= 0)
            return 0;
        n = read(fd, byte, 1);
        if (n == 1)
            return 1;
        vm->console_in_eof = n == 0;
        return 0;
    }
    c = getc(in); /* a memory stream (tests): no descriptor, never blocks */
    if (c == EOF) {
        vm->console_in_eof = true;
        return 0;
    }
    *byte = (uint8_t)c;
    return 1;
}

void vm_console_input_set(struct mvm_vm *vm, FILE *in)
{
    vm->console_in = in;
    vm->console_in_eof = false;
}

int vm_devices_add_standard(struct mvm_vm *vm, FILE *console)
{
    int rc;

    vm->console_out = console;
    /* The labs' devices first (lab 4's UART on COM1), then the console's, which fills in what no lab claimed. */
    rc = mvm_labs_vm_init(vm);
    if (rc == 0)
        rc = vm_console_add(vm, console);
    return rc ? rc : vm_testport_add(vm, console);
}
