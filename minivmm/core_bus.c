/* The VM's bus: owns its devices, refuses overlaps, hands each port or MMIO access to the device at its offset. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "device.h"

static const char *space_name(enum mvm_bus_space space)
{
    return space == MVM_BUS_PIO ? "port" : "MMIO";
}

static void device_free(struct mvm_device *dev)
{
    if (dev->ops->destroy)
        dev->ops->destroy(dev);
    else
        free(dev->priv);
    free(dev);
}

/* A device that never made it onto the bus: its state goes as the device would have freed it. */
static void priv_destroy(const struct mvm_device_ops *ops, struct mvm_vm *vm, void *priv)
{
    struct mvm_device tmp = {.ops = ops, .vm = vm, .priv = priv};

    if (ops->destroy)
        ops->destroy(&tmp);
    else
        free(priv);
}

int vm_device_add(struct mvm_vm *vm, const struct mvm_device_ops *ops, enum mvm_bus_space space, uint64_t base,
                  uint64_t len, void *priv, struct mvm_device **out)
{
    struct mvm_bus *bus = &vm->bus;
    struct mvm_device *dev;
    int rc = 0;

    if (len == 0 || base + len < base || (space == MVM_BUS_PIO && base + len > 0x10000))
        rc = mvm_fail(EINVAL, "device %s: %s range 0x%llx+0x%llx is empty or out of range", ops->name,
                      space_name(space), (unsigned long long)base, (unsigned long long)len);
    for (int i = 0; rc == 0 && i < bus->ndevs; i++) {
        const struct mvm_device *o = bus->devs[i];

        if (o->space == space && base < o->base + o->len && o->base < base + len)
            rc = mvm_fail(EEXIST, "device %s at %s 0x%llx+0x%llx overlaps device %s at 0x%llx+0x%llx", ops->name,
                          space_name(space), (unsigned long long)base, (unsigned long long)len, o->ops->name,
                          (unsigned long long)o->base, (unsigned long long)o->len);
    }
    if (rc == 0 && bus->ndevs == bus->cap) {
        int cap = bus->cap ? 2 * bus->cap : 8;
        struct mvm_device **devs = realloc(bus->devs, (size_t)cap * sizeof(*devs));

        if (!devs)
            rc = mvm_fail(ENOMEM, "device %s: out of memory", ops->name);
        else
            bus->devs = devs, bus->cap = cap;
    }
    dev = rc == 0 ? calloc(1, sizeof(*dev)) : NULL;
    if (rc == 0 && !dev)
        rc = mvm_fail(ENOMEM, "device %s: out of memory", ops->name);
    if (rc < 0) {
        priv_destroy(ops, vm, priv);
        return rc;
    }
    *dev = (struct mvm_device){.ops = ops, .vm = vm, .space = space, .base = base, .len = len, .priv = priv};
    bus->devs[bus->ndevs++] = dev;
    if (out)
        *out = dev;
    return 0;
}

struct mvm_device *vm_device_find(struct mvm_vm *vm, enum mvm_bus_space space, uint64_t addr)
{
    for (int i = 0; i < vm->bus.ndevs; i++) {
        struct mvm_device *d = vm->bus.devs[i];

        if (d->space == space && addr >= d->base && addr - d->base < d->len)
            return d;
    }
    return NULL;
}

void vm_devices_reset(struct mvm_vm *vm)
{
    for (int i = 0; i < vm->bus.ndevs; i++)
        if (vm->bus.devs[i]->ops->reset)
            vm->bus.devs[i]->ops->reset(vm->bus.devs[i]);
}

int vm_devices_each(struct mvm_vm *vm, int (*fn)(struct mvm_device *dev, void *arg), void *arg)
{
    for (int i = 0; i < vm->bus.ndevs; i++) {
        int rc = fn(vm->bus.devs[i], arg);

        if (rc)
            return rc;
    }
    return 0;
}

void vm_bus_destroy(struct mvm_vm *vm)
{
    for (int i = vm->bus.ndevs - 1; i >= 0; i--)
        device_free(vm->bus.devs[i]);
    free(vm->bus.devs);
    vm->bus = (struct mvm_bus){0};
}

/* An access to the bus: the device whose range holds it gets it at its offset. */
static int bus_access(struct mvm_vcpu *vcpu, enum mvm_bus_space space, uint64_t addr, bool is_write, uint8_t *data,
                      uint32_t len)
{
    struct mvm_device *d = vm_device_find(vcpu->vm, space, addr);

    /*
     * A port access belongs to the device at its first port, whatever its width (an OUT of 4 bytes to a
     * one-port device, as the ucall port takes); an MMIO access must lie inside the device's range.
     */
    if (d && (space == MVM_BUS_PIO || len <= d->len - (addr - d->base))) {
        uint64_t off = addr - d->base;

        if (is_write)
            return d->ops->write ? d->ops->write(d, vcpu, off, data, len) : 0;
        if (d->ops->read)
            return d->ops->read(d, vcpu, off, data, len);
        memset(data, 0xff, len);
        return 0;
    }
    /* Unclaimed (or straddling a device's end): reads float high and writes vanish, as on a PC bus. */
    if (vcpu->res)
        vcpu->res->unhandled_io++;
    if (!is_write)
        memset(data, 0xff, len);
    return 0;
}

int vm_pio_dispatch(struct mvm_vcpu *vcpu, uint16_t port, bool is_write, uint8_t *data, uint32_t size)
{
    if (size != 1 && size != 2 && size != 4)
        return mvm_fail(EINVAL, "port 0x%x: I/O size %u is not 1, 2 or 4", port, size);
    return bus_access(vcpu, MVM_BUS_PIO, port, is_write, data, size);
}

int vm_mmio_dispatch(struct mvm_vcpu *vcpu, uint64_t gpa, bool is_write, uint8_t *data, uint32_t len)
{
    if (len == 0 || len > 8)
        return mvm_fail(EINVAL, "MMIO at gpa 0x%llx: length %u is not 1..8", (unsigned long long)gpa, len);
    return bus_access(vcpu, MVM_BUS_MMIO, gpa, is_write, data, len);
}

/* vm_pio_register / vm_mmio_register: a plain callback as a device (absolute address, as the callback expects). */
struct callback_dev {
    mvm_pio_fn pio;
    mvm_mmio_fn mmio;
    void *opaque;
};

static int callback_access(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, bool is_write, uint8_t *data,
                           uint32_t len)
{
    struct callback_dev *c = dev->priv;

    if (c->pio)
        return c->pio(vcpu, c->opaque, (uint16_t)(dev->base + off), is_write, data, len);
    return c->mmio(vcpu, c->opaque, dev->base + off, is_write, data, len);
}

static int callback_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    return callback_access(dev, vcpu, off, false, data, len);
}

static int callback_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data,
                          uint32_t len)
{
    uint8_t copy[8];

    memcpy(copy, data, len);
    return callback_access(dev, vcpu, off, true, copy, len);
}

static const struct mvm_device_ops callback_ops = {
    .name = "handler",
    .read = callback_read,
    .write = callback_write,
};

int vm_pio_register(struct mvm_vm *vm, uint16_t port, uint16_t count, mvm_pio_fn fn, void *opaque)
{
    struct callback_dev *c = calloc(1, sizeof(*c));

    if (!c)
        return mvm_fail(ENOMEM, "port handler: out of memory");
    *c = (struct callback_dev){.pio = fn, .opaque = opaque};
    return vm_device_add(vm, &callback_ops, MVM_BUS_PIO, port, count, c, NULL);
}

int vm_mmio_register(struct mvm_vm *vm, uint64_t gpa, uint64_t len, mvm_mmio_fn fn, void *opaque)
{
    struct callback_dev *c = calloc(1, sizeof(*c));

    if (!c)
        return mvm_fail(ENOMEM, "MMIO handler: out of memory");
    *c = (struct callback_dev){.mmio = fn, .opaque = opaque};
    return vm_device_add(vm, &callback_ops, MVM_BUS_MMIO, gpa, len, c, NULL);
}
