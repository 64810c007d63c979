/* KVM_CAP_SYNC_REGS on the soft backend: kvm_run's s.regs around KVM_RUN (soft_sync_regs.c). */
#ifndef MINIVMM_SOFT_SYNC_REGS_H
#define MINIVMM_SOFT_SYNC_REGS_H

struct soft_vcpu;

/*
 * At KVM_RUN's start, as x86.c's kvm_arch_vcpu_ioctl_run: -EINVAL when
 * kvm_valid_regs or kvm_dirty_regs has a bit beyond KVM_SYNC_X86_VALID_FIELDS;
 * else each kvm_dirty_regs set is loaded from s.regs (regs, then sregs, then
 * events, as KVM_SET_REGS, KVM_SET_SREGS and KVM_SET_VCPU_EVENTS load them) and
 * its bit cleared (sync_regs). -EINVAL when sregs or events are refused; the
 * sets before it stay loaded. 0: run the vCPU.
 */
int soft_sync_regs_in(struct soft_vcpu *v);
/*
 * At KVM_RUN's end, whatever it returned: each set kvm_valid_regs names is
 * stored into s.regs, as KVM_GET_REGS, KVM_GET_SREGS and KVM_GET_VCPU_EVENTS
 * give it (store_regs).
 */
void soft_sync_regs_out(struct soft_vcpu *v);

#endif
