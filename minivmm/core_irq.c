/*
 * The in-kernel irqchip from the VMM's side: KVM_CREATE_IRQCHIP, KVM_IRQ_LINE_STATUS, KVM_SIGNAL_MSI, the
 * TSC-deadline CPUID bit, and the interrupt-request port a guest drives them through (abi.h, MVM_PORT_IRQ).
 */
#include "core_irq.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "device.h"

#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)

int vm_irq_line(struct mvm_vm *vm, uint32_t gsi, bool level, int *status)
{
    struct kvm_irq_level l = {.irq = gsi, .level = level};
    int rc = vm_ioctl(vm, KVM_IRQ_LINE_STATUS, &l, "KVM_IRQ_LINE_STATUS");
    if (rc >= 0 && status)
        *status = l.status;
    return rc < 0 ? rc : 0;
}

int vm_signal_msi(struct mvm_vm *vm, uint64_t addr, uint32_t data)
{
    struct kvm_msi m = {.address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data};
    return vm_ioctl(vm, KVM_SIGNAL_MSI, &m, "KVM_SIGNAL_MSI");
}

/* The interrupt-request port's state: the MSI address, the last status. */
struct irqport {
    uint32_t msi_addr;
    int32_t status;
};

static int irqport_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t offset, uint8_t *data, uint32_t len)
{
    struct irqport *p = dev->priv;
    (void)vcpu;
    memset(data, 0xff, len);
    if (offset == 0 && len == 4)
        memcpy(data, &p->status, 4);
    return 0;
}

static int irqport_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t offset, const uint8_t *data,
                         uint32_t len)
{
    struct irqport *p = dev->priv;
    uint32_t x;
    int rc = 0;
    (void)vcpu;
    if (len != 4)
        return 0; /* only 32-bit OUTs mean anything; others vanish, as on an unclaimed port */
    memcpy(&x, data, 4);
    switch (offset) {
    case MVM_PORT_IRQ - MVM_PORT_IRQ: {
        uint32_t gsi = x & 0xff, op = (x >> 8) & 3;
        int st = 0;
        if (op == MVM_IRQ_OP_LOWER) {
            rc = vm_irq_line(dev->vm, gsi, false, &st);
        } else {
            rc = vm_irq_line(dev->vm, gsi, true, &st);
            int st2;
            if (rc == 0 && op == MVM_IRQ_OP_PULSE)
                rc = vm_irq_line(dev->vm, gsi, false, &st2);
        }
        p->status = st;
        break;
    }
    case MVM_PORT_IRQ_MSI_ADDR - MVM_PORT_IRQ:
        p->msi_addr = x;
        break;
    case MVM_PORT_IRQ_MSI - MVM_PORT_IRQ:
        rc = vm_signal_msi(dev->vm, p->msi_addr, x);
        p->status = rc >= 0 ? rc : (rc == -EPERM ? -1 : rc);
        rc = rc == -EPERM ? 0 : rc; /* KVM's -1: no destination, the guest's business */
        break;
    default:
        break;
    }
    return rc < 0 ? rc : 0;
}

static const struct mvm_device_ops irqport_ops = {
    .name = "irq-request",
    .read = irqport_read,
    .write = irqport_write,
};

int vm_irqchip_create(struct mvm_vm *vm)
{
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    int rc = vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");
    if (rc >= 0) /* the 8254 on ports 0x40-0x43 (and 0x61) wired to GSI 0, as QEMU sets it up */
        rc = vm_ioctl(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2");
    if (rc < 0)
        return rc;
    struct irqport *p = calloc(1, sizeof *p);
    if (!p)
        return mvm_fail(ENOMEM, "vm_irqchip_create: out of memory");
    return vm_device_add(vm, &irqport_ops, MVM_BUS_PIO, MVM_PORT_IRQ, MVM_PORT_IRQ_MSI - MVM_PORT_IRQ + 4, p, NULL);
}

int vcpu_cpuid_tsc_deadline(struct mvm_vcpu *vcpu)
{
    struct mvm_vm *vm = vcpu_vm(vcpu);
    if (vm_ioctl(vm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_TSC_DEADLINE_TIMER, "KVM_CHECK_EXTENSION") <= 0)
        return 0;
    enum { MAX_ENTRIES = 256 };
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + MAX_ENTRIES * sizeof(c->entries[0]));
    if (!c)
        return mvm_fail(ENOMEM, "vcpu_cpuid_tsc_deadline: out of memory");
    c->nent = MAX_ENTRIES;
    int rc = vcpu_ioctl(vcpu, KVM_GET_CPUID2, c, "KVM_GET_CPUID2");
    for (uint32_t i = 0; rc >= 0 && i < c->nent; i++)
        if (c->entries[i].function == 1)
            c->entries[i].ecx |= CPUID_1_ECX_TSC_DEADLINE;
    if (rc >= 0)
        rc = vcpu_ioctl(vcpu, KVM_SET_CPUID2, c, "KVM_SET_CPUID2");
    free(c);
    return rc < 0 ? rc : 0;
}
