/* KVM's per-VM vCPU settings on the soft backend: KVM_CAP_MAX_VCPU_ID, KVM_SET_BOOT_CPU_ID and the reset BSP. */
#include "soft_priv.h"

#include <errno.h>

/*
 * KVM_ENABLE_CAP(KVM_CAP_MAX_VCPU_ID) on a VM (x86.c kvm_vm_ioctl_enable_cap): above what KVM_CHECK_EXTENSION
 * answers is -EINVAL; the bound is set once (the same value again is accepted, another one is -EINVAL), and the
 * first KVM_CREATE_VCPU sets it to the largest when nobody did (kvm_arch_vcpu_precreate).
 */
int soft_vm_max_vcpu_id_set(struct soft_vm *vm, uint64_t max_id)
{
    int r = -EINVAL;

    if (max_id > SOFT_MAX_VCPUS) {
        soft_set_error("soft backend: KVM_CAP_MAX_VCPU_ID %llu is above this backend's %d", (unsigned long long)max_id,
                       SOFT_MAX_VCPUS);
        return -EINVAL;
    }
    pthread_mutex_lock(&vm->lock);
    if (vm->max_vcpu_ids == max_id || !vm->max_vcpu_ids) {
        vm->max_vcpu_ids = (uint32_t)max_id;
        r = 0;
    } else {
        soft_set_error("soft backend: KVM_CAP_MAX_VCPU_ID is already %u (set once, or by the first KVM_CREATE_VCPU)",
                       vm->max_vcpu_ids);
    }
    pthread_mutex_unlock(&vm->lock);
    return r;
}

int soft_vm_vcpu_precreate(struct soft_vm *vm, uint64_t id)
{
    if (!vm->max_vcpu_ids)
        vm->max_vcpu_ids = SOFT_MAX_VCPUS;
    if (id >= vm->max_vcpu_ids) {
        soft_set_error("soft backend: KVM_CREATE_VCPU id %llu: the VM's vCPU ids end below %u (KVM_CAP_MAX_VCPU_ID)",
                       (unsigned long long)id, vm->max_vcpu_ids);
        return -EINVAL;
    }
    return 0;
}

/* KVM_SET_BOOT_CPU_ID (x86.c kvm_arch_vm_ioctl): -EBUSY once any vCPU was created, else the id is kept as is. */
int soft_vm_set_boot_cpu_id(struct soft_vm *vm, unsigned long id)
{
    int r = 0;

    pthread_mutex_lock(&vm->lock);
    if (vm->created_vcpus) {
        soft_set_error("soft backend: KVM_SET_BOOT_CPU_ID after KVM_CREATE_VCPU: the BSP is chosen before any vCPU");
        r = -EBUSY;
    } else {
        vm->bsp_vcpu_id = (uint32_t)id;
    }
    pthread_mutex_unlock(&vm->lock);
    return r;
}

bool soft_vcpu_is_reset_bsp(const struct soft_vcpu *v)
{
    return (uint32_t)v->id == v->vm->bsp_vcpu_id;
}
