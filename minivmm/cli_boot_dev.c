/* The PC devices `minivmm boot` gives Linux: lab 4's UART and lab 5's virtio-net with interrupt lines, reset, CMOS. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot_linux.h"
#include "cli_boot.h"
#include "device.h"
#include "lab4-uart/lab4.h"
#include "lab5-virtio/lab5.h"

#define I8042_DATA_PORT     0x60
#define I8042_STATUS_PORT   0x64
#define I8042_CMD_READ_CTR  0x20
#define I8042_CMD_WRITE_CTR 0x60
#define I8042_CMD_SELF_TEST 0xaa /* answers 0x55 */
#define I8042_CMD_KBD_TEST  0xab /* answers 0 */
#define I8042_CMD_AUX_TEST  0xa9
#define I8042_CMD_RESET     0xfe /* pulse the CPU's reset line: how Linux reboots a PC without ACPI (reboot=k) */
#define I8042_CMD_AUX_OFF   0xa7 /* CTR bit 5 set: the mouse port disabled */
#define I8042_CMD_AUX_ON    0xa8
#define I8042_CMD_KBD_OFF   0xad /* CTR bit 4 set: the keyboard port disabled */
#define I8042_CMD_KBD_ON    0xae
#define I8042_CTR_KBDDIS    0x10
#define I8042_CTR_AUXDIS    0x20
#define I8042_STR_OBF       0x01 /* output buffer full: a byte waits at port 0x60 */
#define I8042_STR_SYSFLAG   0x04 /* the self test passed since power-on */
#define I8042_STR_KEYLOCK   0x10 /* set: the keyboard is not locked */
#define CMOS_INDEX_PORT     0x70
#define CMOS_REG_A          0x0a /* UIP (bit 7) clear: the clock may be read */
#define CMOS_REG_B          0x0b
#define CMOS_REG_D          0x0d /* VRT (bit 7): the battery is good */

/* Sets an ISA line's level through KVM_IRQ_LINE when it changes (an edge-triggered line fires on 0 -> 1). */
static void irq_set(struct boot_devs *d, unsigned gsi, bool level, bool *cur)
{
    struct kvm_irq_level l = {.irq = gsi, .level = level};

    if (!d->irqchip || level == *cur)
        return;
    if (vm_ioctl(d->vm, KVM_IRQ_LINE, &l, "KVM_IRQ_LINE") < 0) {
        d->irq_errors++;
        return;
    }
    *cur = level;
    if (level && gsi < 16)
        d->irq_raised[gsi]++;
}

/* COM1: lab 4's register model with the PC's wiring: IRQ4 follows "an interrupt is pending" (IIR bit 0 clear). */
struct boot_uart {
    struct lab4_uart u;
    struct boot_devs *d;
    FILE *out;
    FILE *in;
    bool line;
    pthread_mutex_t lock; /* the model against the input thread */
    pthread_t thread;
    volatile bool thread_on, thread_stop;
};

static int uart_tx(void *opaque, uint8_t byte)
{
    struct boot_uart *s = opaque;

    if (s->out) {
        fputc(byte, s->out);
        if (byte == '\n')
            fflush(s->out);
    }
    return 0;
}

/* IIR as the guest would read it now, without its side effect (reading IIR clears a THRE interrupt). */
static void uart_irq_update(struct boot_uart *s)
{
    struct lab4_uart copy = s->u;
    uint8_t iir = UART_IIR_NO_INT;

    lab4_uart_read(&copy, UART_IIR, &iir);
    irq_set(s->d, BOOT_IRQ_COM1, !(iir & UART_IIR_NO_INT), &s->line);
}

static int uart_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    struct boot_uart *s = dev->priv;
    bool looks = off == UART_LSR || (off == UART_RX && !(s->u.lcr & UART_LCR_DLAB));
    uint8_t byte;
    int rc;

    (void)vcpu;
    memset(data, 0, len);
    pthread_mutex_lock(&s->lock);
    /* Without the input thread (no irqchip), input arrives when the guest looks for it, as in lab 4. */
    if (!s->thread_on && looks && !(s->u.lsr & UART_LSR_DR) && !(s->u.mcr & UART_MCR_LOOP) &&
        vm_console_read(s->d->vm, &byte) == 1)
        lab4_uart_receive(&s->u, byte);
    rc = lab4_uart_read(&s->u, (unsigned)off, &data[0]);
    uart_irq_update(s);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int uart_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct boot_uart *s = dev->priv;
    int rc;

    (void)vcpu;
    (void)len;
    pthread_mutex_lock(&s->lock);
    rc = lab4_uart_write(&s->u, (unsigned)off, data[0]);
    uart_irq_update(s);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/*
 * With the in-kernel irqchip a guest waiting for input sits in HLT inside KVM_RUN, where no access of
 * its brings input in: this thread does, as a terminal line would, and raises IRQ4 (KVM_IRQ_LINE is
 * allowed while the vCPU runs). One byte at a time, only while the FIFO has room and the port is open.
 */
/*
 * A driver has the port open: DTR and RTS up, out of loopback, receive interrupts on. Before that (Linux's
 * probes, its console set-up) bytes would be lost in its FIFO resets or read by a probe, so a terminal's
 * line holds them, as a user waits for the prompt.
 */
static bool uart_listening(const struct lab4_uart *u)
{
    return (u->mcr & (UART_MCR_DTR | UART_MCR_RTS | UART_MCR_LOOP)) == (UART_MCR_DTR | UART_MCR_RTS) &&
           (u->ier & UART_IER_RDI);
}

static void *uart_input_thread(void *arg)
{
    struct boot_uart *s = arg;
    int fd = fileno(s->in);

    while (!s->thread_stop) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        bool room;
        uint8_t byte;

        pthread_mutex_lock(&s->lock);
        room = s->u.rx_count < LAB4_UART_FIFO && uart_listening(&s->u);
        pthread_mutex_unlock(&s->lock);
        if (!room || poll(&p, 1, 20) <= 0) {
            if (!room)
                usleep(2000);
            continue;
        }
        if (read(fd, &byte, 1) != 1)
            break; /* end of input */
        pthread_mutex_lock(&s->lock);
        if (!(s->u.mcr & UART_MCR_LOOP))
            lab4_uart_receive(&s->u, byte);
        uart_irq_update(s);
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

static void uart_destroy(struct mvm_device *dev)
{
    struct boot_uart *s = dev->priv;

    pthread_mutex_destroy(&s->lock);
    free(s);
}

static const struct mvm_device_ops uart_ops = {
    .name = "16550A UART (lab 4) on IRQ4",
    .read = uart_read,
    .write = uart_write,
    .destroy = uart_destroy,
};

/*
 * virtio-mmio's interrupt: lab 5's transport keeps InterruptStatus (offset 0x60, a read without side
 * effects) but has no line to raise. This adapter wraps the device's ops in place and, after each
 * access, sets IRQ5 to "InterruptStatus is not 0": a kick that used buffers raises it, the driver's
 * InterruptACK lowers it.
 */
struct irq_wrap {
    struct mvm_device_ops ops; /* first: dev->ops points here */
    const struct mvm_device_ops *inner;
    struct boot_devs *d;
    unsigned gsi;
    bool line;
};

static struct irq_wrap *wrap_of(struct mvm_device *dev)
{
    return (struct irq_wrap *)(void *)dev->ops;
}

static void virtio_irq_update(struct mvm_device *dev, struct mvm_vcpu *vcpu)
{
    struct irq_wrap *w = wrap_of(dev);
    uint8_t st[4] = {0};

    if (w->inner->read(dev, vcpu, VIRTIO_MMIO_INTERRUPT_STATUS, st, sizeof(st)) == 0)
        irq_set(w->d, w->gsi, (st[0] | st[1] | st[2] | st[3]) != 0, &w->line);
}

static int wrap_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    int rc = wrap_of(dev)->inner->read(dev, vcpu, off, data, len);

    virtio_irq_update(dev, vcpu);
    return rc;
}

static int wrap_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data, uint32_t len)
{
    int rc = wrap_of(dev)->inner->write(dev, vcpu, off, data, len);

    virtio_irq_update(dev, vcpu);
    return rc;
}

static void wrap_reset(struct mvm_device *dev)
{
    struct irq_wrap *w = wrap_of(dev);

    if (w->inner->reset)
        w->inner->reset(dev);
}

static int wrap_pause(struct mvm_device *dev, struct mvm_vcpu *vcpu, bool resume, bool clock_runs, uint64_t paused_ns)
{
    struct irq_wrap *w = wrap_of(dev);

    return w->inner->pause ? w->inner->pause(dev, vcpu, resume, clock_runs, paused_ns) : 0;
}

static void wrap_destroy(struct mvm_device *dev)
{
    struct irq_wrap *w = wrap_of(dev);

    dev->ops = w->inner;
    if (dev->ops->destroy)
        dev->ops->destroy(dev);
    else
        free(dev->priv);
    dev->priv = NULL;
    free(w);
}

static int irq_wrap_install(struct boot_devs *d, struct mvm_device *dev, unsigned gsi)
{
    struct irq_wrap *w = calloc(1, sizeof(*w));

    if (!w)
        return mvm_fail(ENOMEM, "boot: out of memory");
    w->ops = (struct mvm_device_ops){
        .name = dev->ops->name,
        .read = wrap_read,
        .write = wrap_write,
        .reset = wrap_reset,
        .pause = wrap_pause,
        .destroy = wrap_destroy,
    };
    w->inner = dev->ops;
    w->d = d;
    w->gsi = gsi;
    dev->ops = &w->ops;
    return 0;
}

/* The i8042 as far as Linux uses it on a machine with no keyboard: self tests, the CTR, and the reset pulse. */
struct i8042 {
    struct boot_devs *d;
    uint8_t ctr;
    uint8_t out;      /* the byte at port 0x60 */
    bool out_full;    /* status OBF */
    bool ctr_pending; /* the next data byte is the CTR (after command 0x60) */
};

static int i8042_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    struct i8042 *k = dev->priv;

    (void)vcpu;
    memset(data, 0, len);
    if (dev->base == I8042_STATUS_PORT) {
        data[0] = (uint8_t)(I8042_STR_SYSFLAG | I8042_STR_KEYLOCK | (k->out_full ? I8042_STR_OBF : 0));
    } else {
        data[0] = k->out;
        k->out_full = false;
    }
    (void)off;
    return 0;
}

static void i8042_answer(struct i8042 *k, uint8_t byte)
{
    k->out = byte;
    k->out_full = true;
}

static int i8042_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct i8042 *k = dev->priv;

    (void)vcpu;
    (void)off;
    (void)len;
    if (dev->base == I8042_DATA_PORT) {
        if (k->ctr_pending)
            k->ctr = data[0];
        k->ctr_pending = false;
        return 0;
    }
    switch (data[0]) {
    case I8042_CMD_READ_CTR:
        i8042_answer(k, k->ctr);
        break;
    case I8042_CMD_WRITE_CTR:
        k->ctr_pending = true;
        break;
    case I8042_CMD_SELF_TEST:
        i8042_answer(k, 0x55);
        break;
    case I8042_CMD_KBD_TEST:
    case I8042_CMD_AUX_TEST:
        i8042_answer(k, 0x00);
        break;
    case I8042_CMD_AUX_OFF:
        k->ctr |= I8042_CTR_AUXDIS;
        break;
    case I8042_CMD_AUX_ON:
        k->ctr &= (uint8_t)~I8042_CTR_AUXDIS;
        break;
    case I8042_CMD_KBD_OFF:
        k->ctr |= I8042_CTR_KBDDIS;
        break;
    case I8042_CMD_KBD_ON:
        k->ctr &= (uint8_t)~I8042_CTR_KBDDIS;
        break;
    case I8042_CMD_RESET:
        k->d->reset = true;
        return MVM_STOP_DONE;
    default:
        break;
    }
    return 0;
}

static const struct mvm_device_ops i8042_ops = {
    .name = "i8042 (reset line)",
    .read = i8042_read,
    .write = i8042_write,
};

/* Both ports share one state, which the data port's device owns: the status port's must not free it. */
static void i8042_status_destroy(struct mvm_device *dev)
{
    (void)dev;
}

static const struct mvm_device_ops i8042_status_ops = {
    .name = "i8042 (reset line)",
    .read = i8042_read,
    .write = i8042_write,
    .destroy = i8042_status_destroy,
};

/* The CMOS clock: an index port and a data port; every register reads 0 but the "valid, not updating" ones. */
static int cmos_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    uint8_t *index = dev->priv;

    (void)vcpu;
    memset(data, 0, len);
    if (off == 1 && *index == CMOS_REG_B)
        data[0] = 0x02; /* 24-hour mode */
    else if (off == 1 && *index == CMOS_REG_D)
        data[0] = 0x80;
    else if (off == 1 && *index == CMOS_REG_A)
        data[0] = 0x26; /* the usual divider and rate, UIP clear */
    return 0;
}

static int cmos_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data, uint32_t len)
{
    uint8_t *index = dev->priv;

    (void)vcpu;
    (void)len;
    if (off == 0)
        *index = data[0] & 0x7f; /* bit 7 masks NMIs */
    return 0;
}

static const struct mvm_device_ops cmos_ops = {
    .name = "CMOS clock (stopped)",
    .read = cmos_read,
    .write = cmos_write,
};

/* ACPI's hardware-reduced sleep control (S5: power off) and reset registers: either ends the run. */
static int acpi_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    (void)dev;
    (void)vcpu;
    (void)off;
    memset(data, 0, len);
    return 0;
}

static int acpi_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct boot_devs *d = dev->priv;

    (void)vcpu;
    (void)len;
    if (dev->base + off == MVM_LINUX_ACPI_SLEEP_PORT && (data[0] & MVM_LINUX_ACPI_SLP_EN)) {
        d->powered_off = true;
        return MVM_STOP_DONE;
    }
    if (dev->base + off == MVM_LINUX_ACPI_RESET_PORT && data[0] == MVM_LINUX_ACPI_RESET_VALUE) {
        d->reset = true;
        return MVM_STOP_DONE;
    }
    return 0;
}

/* The state is the caller's struct boot_devs: nothing to free. */
static void acpi_destroy(struct mvm_device *dev)
{
    (void)dev;
}

static const struct mvm_device_ops acpi_ops = {
    .name = "ACPI sleep and reset registers",
    .read = acpi_read,
    .write = acpi_write,
    .destroy = acpi_destroy,
};

int boot_devices_add(struct boot_devs *d, FILE *console, FILE *input, FILE *pcap)
{
    struct boot_uart *s = calloc(1, sizeof(*s));
    struct i8042 *k;
    uint8_t *cmos;
    struct lab5_net *net;
    struct mvm_device *dev;
    static const struct lab5_ring_ops ring = {
        .setup = lab5_virtq_setup,
        .pop = lab5_virtq_pop,
        .push = lab5_virtq_push,
        .should_notify = lab5_virtq_should_notify,
    };
    const struct lab5_net_config cfg = {.pcap = pcap, .log = stderr, .no_loopback = true};
    int rc;

    if (!s)
        return mvm_fail(ENOMEM, "boot: out of memory");
    s->d = d;
    s->out = console;
    s->in = input;
    s->u.tx = uart_tx;
    s->u.opaque = s;
    pthread_mutex_init(&s->lock, NULL);
    lab4_uart_reset(&s->u);
    rc = vm_device_add(d->vm, &uart_ops, MVM_BUS_PIO, MVM_PORT_SERIAL, LAB4_UART_PORTS, s, NULL);
    if (rc < 0)
        return rc;
    d->uart = s;
    if (input) {
        vm_console_input_set(d->vm, input);
        if (d->irqchip && pthread_create(&s->thread, NULL, uart_input_thread, s) == 0)
            s->thread_on = true;
    }
    rc = lab5_net_add(d->vm, MVM_VIRTIO_MMIO_BASE, &ring, &net);
    if (rc == 0)
        rc = lab5_net_configure(net, &cfg);
    dev = rc == 0 ? vm_device_find(d->vm, MVM_BUS_MMIO, MVM_VIRTIO_MMIO_BASE) : NULL;
    if (rc == 0 && !dev)
        rc = mvm_fail(ENODEV, "boot: no virtio-mmio device at 0x%x after lab 5 added it", MVM_VIRTIO_MMIO_BASE);
    if (rc == 0)
        rc = irq_wrap_install(d, dev, BOOT_IRQ_VIRTIO);
    if (rc < 0)
        return rc;
    k = calloc(1, sizeof(*k));
    if (!k)
        return mvm_fail(ENOMEM, "boot: out of memory");
    k->d = d;
    rc = vm_device_add(d->vm, &i8042_ops, MVM_BUS_PIO, I8042_DATA_PORT, 1, k, NULL);
    if (rc == 0)
        rc = vm_device_add(d->vm, &i8042_status_ops, MVM_BUS_PIO, I8042_STATUS_PORT, 1, k, NULL);
    if (rc < 0)
        return rc;
    rc = vm_device_add(d->vm, &acpi_ops, MVM_BUS_PIO, MVM_LINUX_ACPI_SLEEP_PORT, MVM_LINUX_ACPI_PORTS, d, NULL);
    if (rc < 0)
        return rc;
    cmos = calloc(1, 1);
    if (!cmos)
        return mvm_fail(ENOMEM, "boot: out of memory");
    return vm_device_add(d->vm, &cmos_ops, MVM_BUS_PIO, CMOS_INDEX_PORT, 2, cmos, NULL);
}

void boot_devices_stop(struct boot_devs *d)
{
    struct boot_uart *s = d->uart;

    if (s && s->thread_on) {
        s->thread_stop = true;
        pthread_join(s->thread, NULL);
        s->thread_on = false;
    }
}
