/* KVM's optional surface on the soft backend: what KVM_CHECK_EXTENSION answers, and KVM_ENABLE_CAP on a VM fd and
 * on a vCPU fd. A capability is answered nonzero only where the backend really gives what KVM gives for it. */
#include "soft_priv.h"

#include <errno.h>

/* KVM's capabilities as the soft backend really provides them; 0 for everything else. vm is NULL on /dev/kvm's fd
 * (KVM_CHECK_EXTENSION on a VM fd may answer for that VM). */
int soft_check_extension(struct soft_vm *vm, long cap)
{
    switch (cap) {
    case KVM_CAP_USER_MEMORY:
    case KVM_CAP_IMMEDIATE_EXIT:
    case KVM_CAP_SET_TSS_ADDR:
    case KVM_CAP_SET_IDENTITY_MAP_ADDR:
    case KVM_CAP_EXT_CPUID:
    case KVM_CAP_ADJUST_CLOCK:
    case KVM_CAP_SYNC_MMU:
    case KVM_CAP_DESTROY_MEMORY_REGION_WORKS:
    case KVM_CAP_JOIN_MEMORY_REGIONS_WORKS:
    case KVM_CAP_GET_TSC_KHZ:
    case KVM_CAP_TSC_CONTROL: /* KVM_SET_TSC_KHZ scales the guest TSC (soft_msr.c) */
    case KVM_CAP_SET_GUEST_DEBUG:
    case KVM_CAP_IRQCHIP: /* the in-kernel PIC, IOAPIC and local APICs (soft_irqchip.c) */
    case KVM_CAP_IRQ_INJECT_STATUS:
    case KVM_CAP_IRQFD:
    case KVM_CAP_IOEVENTFD:
    case KVM_CAP_SIGNAL_MSI:
    case KVM_CAP_TSC_DEADLINE_TIMER:
    case KVM_CAP_PIT2: /* the 8254 on ports 0x40-0x43, IRQ 0 (soft_pit.c) */
    case KVM_CAP_PIT_STATE2:
    case KVM_CAP_REINJECT_CONTROL:
    case KVM_CAP_MP_STATE: /* runnable and halted (HLT waiting with the in-kernel irqchip) */
        return 1;
    case KVM_CAP_IRQ_ROUTING: /* KVM_SET_GSI_ROUTING: irqchip pins and MSIs, KVM_MAX_IRQ_ROUTES of them */
        return 4096;
    case KVM_CAP_NR_MEMSLOTS:
        return SOFT_MAX_SLOTS;
    case KVM_CAP_NR_VCPUS:
    case KVM_CAP_MAX_VCPUS:
    case KVM_CAP_MAX_VCPU_ID:
        return SOFT_MAX_VCPUS;
    case KVM_CAP_COALESCED_MMIO:
        return 0;
    default:
        (void)vm;
        return 0;
    }
}

/* KVM_ENABLE_CAP on a VM fd (kvm_vm_ioctl_enable_cap): flags must be 0; a capability this backend does not take is
 * -EINVAL, as KVM answers for one it does not know. */
int soft_vm_enable_cap(struct soft_vm *vm, const struct kvm_enable_cap *cap)
{
    if (cap->flags)
        return -EINVAL;
    switch (cap->cap) {
    default:
        (void)vm;
        soft_set_error("soft backend: KVM_ENABLE_CAP of capability %u on a VM is not supported", cap->cap);
        return -EINVAL;
    }
}

/* KVM_ENABLE_CAP on a vCPU fd (kvm_vcpu_ioctl_enable_cap). */
int soft_vcpu_enable_cap(struct soft_vcpu *v, const struct kvm_enable_cap *cap)
{
    if (cap->flags)
        return -EINVAL;
    switch (cap->cap) {
    default:
        (void)v;
        soft_set_error("soft backend: KVM_ENABLE_CAP of capability %u on a vCPU is not supported", cap->cap);
        return -EINVAL;
    }
}
