/*
 * Lab 4 as a plug-in: puts the UART model on COM1 (the console's stream on its
 * line) and the hypercall doorbell with lab 4's hypercalls in the VM's table.
 * Not a student file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device.h"
#include "lab4-uart/lab4.h"
#include "lab_plugin.h"

#ifndef MVM_LAB_FALLBACK
struct uart_dev {
    struct lab4_uart u;
    struct mvm_vm *vm;
};

/* The line's far end is the VM's console. */
static int uart_tx(void *opaque, uint8_t byte)
{
    struct uart_dev *d = opaque;

    vm_console_write(d->vm, &byte, 1);
    return 0;
}

/*
 * A 16550 register is 8 bits: a wider IN gets the register in its low byte
 * and zeros above, a wider OUT counts by its low byte. When the guest looks
 * for received data (LSR, or RBR with DLAB clear) and none is there, one
 * byte of console input, if there is one now, arrives on the line first (not
 * in loopback: the line is cut off then). So input arrives at the same point
 * of a guest's run on every backend, and a guest that never looks reads none.
 */
static int uart_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    struct uart_dev *d = dev->priv;
    bool looks = off == UART_LSR || (off == UART_RX && !(d->u.lcr & UART_LCR_DLAB));
    uint8_t byte;

    (void)vcpu;
    memset(data, 0, len);
    if (looks && !(d->u.lsr & UART_LSR_DR) && !(d->u.mcr & UART_MCR_LOOP) && vm_console_read(d->vm, &byte) == 1)
        lab4_uart_receive(&d->u, byte);
    return lab4_uart_read(&d->u, (unsigned)off, &data[0]);
}

static int uart_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct uart_dev *d = dev->priv;

    (void)vcpu;
    (void)len;
    return lab4_uart_write(&d->u, (unsigned)off, data[0]);
}

static void uart_reset(struct mvm_device *dev)
{
    struct uart_dev *d = dev->priv;

    lab4_uart_reset(&d->u);
}

static const struct mvm_device_ops uart_ops = {
    .name = "16550A UART (lab 4)",
    .read = uart_read,
    .write = uart_write,
    .reset = uart_reset,
};

static int hc_nop(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    (void)vcpu;
    (void)opaque;
    (void)args;
    *ret = 0;
    return 0;
}

static int hc_clock_ns(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    struct timespec ts;

    (void)vcpu;
    (void)opaque;
    (void)args;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        return mvm_fail(errno, "hypercall clock_ns: clock_gettime: %s", strerror(errno));
    *ret = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return 0;
}

/* The lab's devices and hypercalls on a new VM (vm_devices_add_standard runs this before the console's). */
static int lab4_vm_init(struct mvm_vm *vm)
{
    struct uart_dev *d = calloc(1, sizeof(*d));
    int rc;

    if (!d)
        return mvm_fail(ENOMEM, "lab 4 UART: out of memory");
    d->vm = vm;
    d->u.tx = uart_tx;
    d->u.opaque = d;
    lab4_uart_reset(&d->u);
    rc = vm_device_add(vm, &uart_ops, MVM_BUS_PIO, MVM_PORT_SERIAL, LAB4_UART_PORTS, d, NULL);
    if (rc == 0)
        rc = vm_hypercall_dispatch_set(vm, lab4_hypercall_dispatch);
    if (rc == 0)
        rc = vm_hypercall_register(vm, MVM_HC_NOP, "nop", 0, hc_nop, NULL);
    if (rc == 0)
        rc = vm_hypercall_register(vm, MVM_HC_CONSOLE_WRITE, "console_write", 2, lab4_hc_console_write, NULL);
    if (rc == 0)
        rc = vm_hypercall_register(vm, MVM_HC_CLOCK_NS, "clock_ns", 0, hc_clock_ns, NULL);
    return rc;
}
#endif

MVM_LAB_DEFINE(4, "lab4-uart", .vm_init = lab4_vm_init)

MVM_LAB_FORWARD(void, lab4_uart_reset, (struct lab4_uart * u), (u))
MVM_LAB_FORWARD(int, lab4_uart_read, (struct lab4_uart * u, unsigned reg, uint8_t *val), (u, reg, val))
MVM_LAB_FORWARD(int, lab4_uart_write, (struct lab4_uart * u, unsigned reg, uint8_t val), (u, reg, val))
MVM_LAB_FORWARD(void, lab4_uart_receive, (struct lab4_uart * u, uint8_t byte), (u, byte))
MVM_LAB_FORWARD(int, lab4_hypercall_dispatch, (struct mvm_vcpu * vcpu, uint32_t out_size, uint32_t out_value),
                (vcpu, out_size, out_value))
MVM_LAB_FORWARD(int, lab4_hc_console_write,
                (struct mvm_vcpu * vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret),
                (vcpu, opaque, args, ret))
