/*
 * Lab 4 as a plug-in: puts the UART model on COM1 (the console's stream on its
 * line), the hypercall doorbell with lab 4's hypercalls in the VM's table (the
 * file service among them), and the console's shared buffer with its kick port.
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
/* The UART device's state, and the file service's: the bus destroys both with the VM (uart_destroy). */
struct uart_dev {
    struct lab4_uart u;
    struct mvm_vm *vm;
    struct lab4_fs fs;
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

/* A reset also closes the guest's files (its descriptors are gone with its memory); the share stays. */
static void uart_reset(struct mvm_device *dev)
{
    struct uart_dev *d = dev->priv;

    lab4_uart_reset(&d->u);
    lab4_fs_reset(&d->fs);
}

static void uart_destroy(struct mvm_device *dev)
{
    struct uart_dev *d = dev->priv;

    lab4_fs_release(&d->fs);
    free(d);
}

static const struct mvm_device_ops uart_ops = {
    .name = "16550A UART (lab 4)",
    .read = uart_read,
    .write = uart_write,
    .reset = uart_reset,
    .destroy = uart_destroy,
};

/* The console's shared buffer: guest RAM registered once (MVM_HC_CONSOLE_SHARE), printed at each kick. */
struct console_share {
    struct mvm_vm *vm;
    uint64_t gpa;
    uint32_t size; /* 0: none registered */
};

/* A 32-bit OUT of the message's length: that many bytes from the buffer's start, no register read, no walk. */
static int kick_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct console_share *cs = dev->priv;
    uint32_t n = 0;
    void *hva;

    (void)vcpu;
    (void)off;
    if (len != sizeof(n))
        return 0;
    memcpy(&n, data, sizeof(n));
    if (n == 0 || n > cs->size)
        return 0;
    /* Translated again at each kick, a lookup in the memory slots: the guest's page tables play no part. */
    hva = vm_gpa_to_hva(cs->vm, cs->gpa, n);
    if (hva)
        vm_console_write(cs->vm, hva, n);
    return 0;
}

/* Reads as the registered buffer's size (0: none), so a guest can see its registration took. */
static int kick_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    struct console_share *cs = dev->priv;

    (void)vcpu;
    (void)off;
    memset(data, 0, len);
    memcpy(data, &cs->size, len < sizeof(cs->size) ? len : sizeof(cs->size));
    return 0;
}

static void kick_reset(struct mvm_device *dev)
{
    struct console_share *cs = dev->priv;

    cs->gpa = 0;
    cs->size = 0;
}

static const struct mvm_device_ops kick_ops = {
    .name = "console kick (lab 4)",
    .read = kick_read,
    .write = kick_write,
    .reset = kick_reset,
};

/* MVM_HC_CONSOLE_SHARE(gpa, size): size 0 unregisters; else all of [gpa, gpa + size) must be guest RAM. */
static int hc_console_share(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    struct console_share *cs = opaque;

    (void)vcpu;
    if (args[1] > MVM_HC_CONSOLE_MAX) {
        *ret = -MVM_HC_EINVAL;
        return 0;
    }
    if (args[1] && !vm_gpa_to_hva(cs->vm, args[0], args[1])) {
        *ret = -MVM_HC_EFAULT;
        return 0;
    }
    cs->gpa = args[1] ? args[0] : 0;
    cs->size = (uint32_t)args[1];
    *ret = 0;
    return 0;
}

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

/* lab 4's hypercalls: number, name, arguments, service (its opaque is the file service's state or NULL). */
static const struct {
    uint64_t nr;
    const char *name;
    unsigned nargs;
    mvm_hypercall_fn fn;
    bool fs;
} hypercalls[] = {
    {MVM_HC_NOP, "nop", 0, hc_nop, false},
    {MVM_HC_CONSOLE_WRITE, "console_write", 2, lab4_hc_console_write, false},
    {MVM_HC_CLOCK_NS, "clock_ns", 0, hc_clock_ns, false},
    {MVM_HC_FS_OPEN, "fs_open", 3, lab4_hc_fs_open, true},
    {MVM_HC_FS_READ, "fs_read", 3, lab4_hc_fs_read, true},
    {MVM_HC_FS_WRITE, "fs_write", 3, lab4_hc_fs_write, true},
    {MVM_HC_FS_CLOSE, "fs_close", 1, lab4_hc_fs_close, true},
    {MVM_HC_FS_STAT, "fs_stat", 2, lab4_hc_fs_stat, true},
};

/* The lab's devices and hypercalls on a new VM (vm_devices_add_standard runs this before the console's). */
static int lab4_vm_init(struct mvm_vm *vm)
{
    struct uart_dev *d = calloc(1, sizeof(*d));
    struct console_share *cs;
    int rc;

    if (!d)
        return mvm_fail(ENOMEM, "lab 4 UART: out of memory");
    d->vm = vm;
    d->u.tx = uart_tx;
    d->u.opaque = d;
    lab4_uart_reset(&d->u);
    lab4_fs_init(&d->fs);
    rc = vm_device_add(vm, &uart_ops, MVM_BUS_PIO, MVM_PORT_SERIAL, LAB4_UART_PORTS, d, NULL);
    if (rc == 0)
        rc = vm_hypercall_dispatch_set(vm, lab4_hypercall_dispatch);
    for (size_t i = 0; rc == 0 && i < sizeof(hypercalls) / sizeof(hypercalls[0]); i++)
        rc = vm_hypercall_register(vm, hypercalls[i].nr, hypercalls[i].name, hypercalls[i].nargs, hypercalls[i].fn,
                                   hypercalls[i].fs ? &d->fs : NULL);
    if (rc < 0)
        return rc;
    cs = calloc(1, sizeof(*cs));
    if (!cs)
        return mvm_fail(ENOMEM, "lab 4 console kick: out of memory");
    cs->vm = vm;
    rc = vm_device_add(vm, &kick_ops, MVM_BUS_PIO, MVM_PORT_CONSOLE_KICK, 4, cs, NULL);
    if (rc == 0)
        rc = vm_hypercall_register(vm, MVM_HC_CONSOLE_SHARE, "console_share", 2, hc_console_share, cs);
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
MVM_LAB_FORWARD(int, lab4_hc_fs_open,
                (struct mvm_vcpu * vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret),
                (vcpu, opaque, args, ret))
MVM_LAB_FORWARD(int, lab4_hc_fs_read,
                (struct mvm_vcpu * vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret),
                (vcpu, opaque, args, ret))
MVM_LAB_FORWARD(int, lab4_hc_fs_write,
                (struct mvm_vcpu * vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret),
                (vcpu, opaque, args, ret))
MVM_LAB_FORWARD(int, lab4_hc_fs_close,
                (struct mvm_vcpu * vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret),
                (vcpu, opaque, args, ret))
MVM_LAB_FORWARD(int, lab4_hc_fs_stat,
                (struct mvm_vcpu * vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret),
                (vcpu, opaque, args, ret))
MVM_LAB_FORWARD(void, lab4_fs_init, (struct lab4_fs * fs), (fs))
MVM_LAB_FORWARD(void, lab4_fs_reset, (struct lab4_fs * fs), (fs))
MVM_LAB_FORWARD(void, lab4_fs_release, (struct lab4_fs * fs), (fs))
MVM_LAB_FORWARD(struct lab4_fs *, lab4_fs_find, (struct mvm_vm * vm), (vm))
MVM_LAB_FORWARD(int, lab4_fs_share, (struct mvm_vm * vm, const char *dir), (vm, dir))
MVM_LAB_FORWARD(int, lab4_fs_host_open, (const struct lab4_fs *fs, const char *path, uint32_t flags), (fs, path, flags))
MVM_LAB_FORWARD(int64_t, lab4_fs_host_read, (int host_fd, void *buf, size_t len), (host_fd, buf, len))
MVM_LAB_FORWARD(int64_t, lab4_fs_host_write, (int host_fd, const void *buf, size_t len), (host_fd, buf, len))
MVM_LAB_FORWARD(int, lab4_fs_host_close, (int host_fd), (host_fd))
MVM_LAB_FORWARD(int, lab4_fs_host_stat, (int host_fd, struct mvm_hc_stat *st), (host_fd, st))
