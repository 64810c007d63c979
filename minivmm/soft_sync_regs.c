/*
 * KVM_CAP_SYNC_REGS on the soft backend: the register sets a VMM reads and writes through kvm_run's s.regs
 * instead of ioctls, loaded before KVM_RUN where kvm_dirty_regs asks and stored after it where kvm_valid_regs
 * asks (x86.c: sync_regs, store_regs). Each set goes through the vCPU ioctl that KVM's own path shares, so the
 * checks are those of KVM_SET_SREGS and KVM_SET_VCPU_EVENTS.
 */
#include "soft_sync_regs.h"
#include "soft_priv.h"

#include <errno.h>

int soft_sync_regs_in(struct soft_vcpu *v)
{
    struct kvm_run *run = v->run;
    if ((run->kvm_valid_regs & ~(uint64_t)KVM_SYNC_X86_VALID_FIELDS) ||
        (run->kvm_dirty_regs & ~(uint64_t)KVM_SYNC_X86_VALID_FIELDS)) {
        soft_set_error("soft backend: KVM_RUN: kvm_valid_regs 0x%llx or kvm_dirty_regs 0x%llx has a bit beyond "
                       "KVM_SYNC_X86_VALID_FIELDS (0x%x)",
                       (unsigned long long)run->kvm_valid_regs, (unsigned long long)run->kvm_dirty_regs,
                       (unsigned)KVM_SYNC_X86_VALID_FIELDS);
        return -EINVAL;
    }
    if (run->kvm_dirty_regs & KVM_SYNC_X86_REGS) {
        soft_vcpu_ioctl(v, KVM_SET_REGS, (unsigned long)&run->s.regs.regs);
        run->kvm_dirty_regs &= ~(uint64_t)KVM_SYNC_X86_REGS;
    }
    if (run->kvm_dirty_regs & KVM_SYNC_X86_SREGS) {
        if (soft_vcpu_ioctl(v, KVM_SET_SREGS, (unsigned long)&run->s.regs.sregs) != 0)
            return -EINVAL;
        run->kvm_dirty_regs &= ~(uint64_t)KVM_SYNC_X86_SREGS;
    }
    if (run->kvm_dirty_regs & KVM_SYNC_X86_EVENTS) {
        if (soft_vcpu_ioctl(v, KVM_SET_VCPU_EVENTS, (unsigned long)&run->s.regs.events) != 0)
            return -EINVAL;
        run->kvm_dirty_regs &= ~(uint64_t)KVM_SYNC_X86_EVENTS;
    }
    return 0;
}

void soft_sync_regs_out(struct soft_vcpu *v)
{
    struct kvm_run *run = v->run;
    if (run->kvm_valid_regs & KVM_SYNC_X86_REGS)
        soft_vcpu_ioctl(v, KVM_GET_REGS, (unsigned long)&run->s.regs.regs);
    if (run->kvm_valid_regs & KVM_SYNC_X86_SREGS)
        soft_vcpu_ioctl(v, KVM_GET_SREGS, (unsigned long)&run->s.regs.sregs);
    if (run->kvm_valid_regs & KVM_SYNC_X86_EVENTS)
        soft_vcpu_ioctl(v, KVM_GET_VCPU_EVENTS, (unsigned long)&run->s.regs.events);
}
