/* A vCPU's TSC rate: KVM_SET_TSC_KHZ as a migration to a host with another TSC rate uses it. */
#include <errno.h>
#include <string.h>

#include "core_internal.h"

#define MSR_IA32_TSC 0x10

/* IA32_TSC through KVM_GET_MSRS (set false) or KVM_SET_MSRS (set true). 0 or -errno with a message. */
static int tsc_msr(struct mvm_vcpu *vcpu, bool set, uint64_t *tsc)
{
    /* struct kvm_msrs ends in a flexible array: room for its one entry in a union (ISO C). */
    union {
        struct kvm_msrs hdr;
        uint8_t buf[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
    } m;
    int rc;

    memset(&m, 0, sizeof(m));
    m.hdr.nmsrs = 1;
    m.hdr.entries[0].index = MSR_IA32_TSC;
    m.hdr.entries[0].data = *tsc;
    rc =
        set ? MVM_IOCTL(vcpu->vm->be, vcpu->fd, KVM_SET_MSRS, &m) : MVM_IOCTL(vcpu->vm->be, vcpu->fd, KVM_GET_MSRS, &m);
    if (rc >= 0 && rc != 1)
        return mvm_fail(EIO, "%s did %d of 1 MSR (IA32_TSC)", set ? "KVM_SET_MSRS" : "KVM_GET_MSRS", rc);
    if (rc < 0)
        return rc;
    *tsc = m.hdr.entries[0].data;
    return 0;
}

int vcpu_tsc_khz_check(struct mvm_vcpu *vcpu, uint32_t tsc_khz)
{
    struct mvm_vm *vm = vcpu->vm;
    int cap = vm->be->ioctl(vm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL);
    int now = vm->be->ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);
    uint64_t lo = now > 0 ? (uint64_t)now * (1000000 - 250) / 1000000 : 0;
    uint64_t hi = now > 0 ? (uint64_t)now * (1000000 + 250) / 1000000 : 0;

    /* Without scaling KVM takes a rate within its tolerance of the host's (250 ppm) and runs it unscaled. */
    if (cap <= 0 && (tsc_khz < lo || tsc_khz > hi))
        return mvm_fail(EOPNOTSUPP,
                        "a guest TSC at %u kHz: the %s backend cannot scale the TSC (KVM_CAP_TSC_CONTROL is 0, as "
                        "under QEMU's emulation): KVM_SET_TSC_KHZ takes only this host's %d kHz; migrate on a host "
                        "with TSC scaling, or with --backend soft",
                        tsc_khz, vm->be->name, now);
    return 0;
}

int vcpu_tsc_khz_set(struct mvm_vcpu *vcpu, uint32_t tsc_khz)
{
    struct mvm_vm *vm = vcpu->vm;
    struct kvm_clock_data clock = {0};
    uint64_t tsc = 0;
    int rc = vcpu_tsc_khz_check(vcpu, tsc_khz), khz;

    if (rc == 0)
        rc = tsc_msr(vcpu, false, &tsc);
    if (rc == 0)
        rc = MVM_IOCTL(vm->be, vm->fd, KVM_GET_CLOCK, &clock);
    if (rc < 0)
        return rc;
    rc = vm->be->ioctl(vcpu->fd, KVM_SET_TSC_KHZ, tsc_khz);
    if (rc < 0)
        return mvm_fail(-rc,
                        "KVM_SET_TSC_KHZ(%u) (%s backend): %s: the rate must be above 0 and below the host's "
                        "times KVM's largest TSC ratio",
                        tsc_khz, vm->be->name, strerror(-rc));
    /* The new rate applies to the old offset: put the guest's TSC back where it stood, then let KVM publish again. */
    rc = tsc_msr(vcpu, true, &tsc);
    if (rc == 0)
        rc = MVM_IOCTL(vm->be, vm->fd, KVM_SET_CLOCK, &(struct kvm_clock_data){.clock = clock.clock});
    if (rc < 0)
        return rc;
    khz = MVM_IOCTL(vm->be, vcpu->fd, KVM_GET_TSC_KHZ, 0);
    if (khz < 0)
        return khz;
    if ((uint32_t)khz != tsc_khz)
        return mvm_fail(EIO, "KVM_SET_TSC_KHZ(%u) succeeded but KVM_GET_TSC_KHZ answers %d kHz", tsc_khz, khz);
    return 0;
}
