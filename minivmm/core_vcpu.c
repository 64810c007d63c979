/* vCPUs: creation, the kvm_run mapping, register access, one KVM_RUN. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "kvm_api.h"

/*
 * A vCPU's CPUID table starts empty: until the VMM sets one, CPUID answers zeros and KVM refuses
 * EFER.LME (no long mode in CPUID). Like every VMM, give the guest what the backend supports.
 */
static int vcpu_cpuid_set_supported(struct mvm_vm *vm, int vcpu_fd)
{
    enum { MAX_ENTRIES = 256 };
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + MAX_ENTRIES * sizeof(cpuid->entries[0]));
    int rc;

    if (!cpuid)
        return mvm_fail(ENOMEM, "vcpu_create: out of memory");
    cpuid->nent = MAX_ENTRIES;
    rc = MVM_IOCTL(vm->be, vm->sys_fd, KVM_GET_SUPPORTED_CPUID, cpuid);
    if (rc >= 0)
        rc = MVM_IOCTL(vm->be, vcpu_fd, KVM_SET_CPUID2, cpuid);
    free(cpuid);
    return rc < 0 ? rc : 0;
}

/* KVM_CREATE_VCPU and the kvm_run mapping: the lab's version where one teaches it, else the core's own. */
static int vcpu_open(struct mvm_vm *vm, struct mvm_vcpu *vcpu)
{
    int rc;

    vcpu->fd = -1;
    if (vm->lab.kvm.vcpu_open) {
        const struct mvm_backend *old = mvm_kvm_api_bind(vm->be);

        rc = vm->lab.kvm.vcpu_open(vm->sys_fd, vm->fd, vcpu->id, &vcpu->fd, &vcpu->run, &vcpu->run_size);
        mvm_kvm_api_bind(old);
        if (rc < 0) {
            vcpu->fd = -1; /* what it opened is its own to close */
            vcpu->run = NULL;
            return rc;
        }
        if (rc > 0 || vcpu->fd < 0 || !vcpu->run || vcpu->run_size < sizeof(struct kvm_run))
            return mvm_fail(EINVAL,
                            "vcpu_open returned %d with vCPU fd %d, kvm_run %p of %zu bytes: expected 0, an open "
                            "fd and a mapping of KVM_GET_VCPU_MMAP_SIZE bytes (at least sizeof(struct kvm_run) = %zu)",
                            rc, vcpu->fd, (void *)vcpu->run, vcpu->run_size, sizeof(struct kvm_run));
        return 0;
    }
    rc = MVM_IOCTL(vm->be, vm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (rc >= 0 && (size_t)rc < sizeof(struct kvm_run))
        rc = mvm_fail(EINVAL, "KVM_GET_VCPU_MMAP_SIZE: %d is smaller than struct kvm_run", rc);
    if (rc < 0)
        return rc;
    vcpu->run_size = (size_t)rc;
    rc = MVM_IOCTL(vm->be, vm->fd, KVM_CREATE_VCPU, vcpu->id);
    if (rc < 0)
        return rc;
    vcpu->fd = rc;
    vcpu->run = vm->be->mmap_run(vcpu->fd, vcpu->run_size);
    if (!vcpu->run)
        return mvm_fail(errno, "mmap of kvm_run (%s backend): %s", vm->be->name, strerror(errno));
    return 0;
}

int vcpu_create(struct mvm_vm *vm, int id, struct mvm_vcpu **out)
{
    struct mvm_vcpu *vcpu;
    int rc;

    if (vm->nvcpus == MVM_MAX_VCPUS)
        return mvm_fail(ENOSPC, "vcpu_create: at most %d vCPUs", MVM_MAX_VCPUS);
    vcpu = calloc(1, sizeof(*vcpu));
    if (!vcpu)
        return mvm_fail(ENOMEM, "vcpu_create: out of memory");
    vcpu->vm = vm;
    vcpu->id = id;
    rc = vcpu_open(vm, vcpu);
    if (rc == 0)
        rc = vcpu_cpuid_set_supported(vm, vcpu->fd);
    if (rc < 0) {
        if (vcpu->run)
            vm->be->munmap_run(vcpu->run, vcpu->run_size);
        if (vcpu->fd >= 0)
            vm->be->close(vcpu->fd);
        free(vcpu);
        return rc;
    }
    mvm_kvm_api_fd_set(vcpu->fd, vm->be);
    vm->vcpus[vm->nvcpus++] = vcpu;
    *out = vcpu;
    return 0;
}

struct mvm_vm *vcpu_vm(struct mvm_vcpu *vcpu)
{
    return vcpu->vm;
}

struct mvm_vcpu *vm_vcpu_get(struct mvm_vm *vm, int id)
{
    for (int i = 0; i < vm->nvcpus; i++)
        if (vm->vcpus[i]->id == id)
            return vm->vcpus[i];
    return NULL;
}

struct kvm_run *vcpu_run_page(struct mvm_vcpu *vcpu)
{
    return vcpu->run;
}

int vcpu_regs_get(struct mvm_vcpu *vcpu, struct kvm_regs *regs)
{
    return MVM_IOCTL(vcpu->vm->be, vcpu->fd, KVM_GET_REGS, regs);
}

int vcpu_regs_set(struct mvm_vcpu *vcpu, const struct kvm_regs *regs)
{
    return MVM_IOCTL(vcpu->vm->be, vcpu->fd, KVM_SET_REGS, regs);
}

int vcpu_sregs_get(struct mvm_vcpu *vcpu, struct kvm_sregs *sregs)
{
    return MVM_IOCTL(vcpu->vm->be, vcpu->fd, KVM_GET_SREGS, sregs);
}

int vcpu_sregs_set(struct mvm_vcpu *vcpu, const struct kvm_sregs *sregs)
{
    return MVM_IOCTL(vcpu->vm->be, vcpu->fd, KVM_SET_SREGS, sregs);
}

int vcpu_ioctl(struct mvm_vcpu *vcpu, unsigned long req, void *arg, const char *name)
{
    return mvm_ioctl(vcpu->vm->be, vcpu->fd, req, (unsigned long)arg, name);
}

int vm_ioctl(struct mvm_vm *vm, unsigned long req, void *arg, const char *name)
{
    return mvm_ioctl(vm->be, vm->fd, req, (unsigned long)arg, name);
}

int vcpu_fd(const struct mvm_vcpu *vcpu)
{
    return vcpu->fd;
}

int vcpu_enter(struct mvm_vcpu *vcpu)
{
    int rc;

    if (vcpu->vm->lab.kvm.vcpu_enter) {
        const struct mvm_backend *old = mvm_kvm_api_bind(vcpu->vm->be);

        rc = vcpu->vm->lab.kvm.vcpu_enter(vcpu->fd, vcpu->run);
        mvm_kvm_api_bind(old);
        if (rc > 0)
            return mvm_fail(EINVAL, "vcpu_enter returned %d: expected 0, -EINTR or -errno", rc);
        return rc; /* a failure comes with its own message */
    }
    rc = vcpu->vm->be->ioctl(vcpu->fd, KVM_RUN, 0);

    if (rc < 0 && rc != -EINTR && rc != -EAGAIN)
        return mvm_fail(-rc, "KVM_RUN (%s backend): %s", vcpu->vm->be->name, strerror(-rc));
    return rc;
}
