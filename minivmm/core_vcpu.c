/* vCPUs: creation, the kvm_run mapping, register access, one KVM_RUN. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

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

int vcpu_create(struct mvm_vm *vm, int id, struct mvm_vcpu **out)
{
    struct mvm_vcpu *vcpu;
    int fd, rc;

    if (vm->nvcpus == MVM_MAX_VCPUS)
        return mvm_fail(ENOSPC, "vcpu_create: at most %d vCPUs", MVM_MAX_VCPUS);
    fd = MVM_IOCTL(vm->be, vm->fd, KVM_CREATE_VCPU, id);
    if (fd < 0)
        return fd;
    rc = vcpu_cpuid_set_supported(vm, fd);
    if (rc < 0) {
        vm->be->close(fd);
        return rc;
    }
    vcpu = calloc(1, sizeof(*vcpu));
    if (!vcpu) {
        vm->be->close(fd);
        return mvm_fail(ENOMEM, "vcpu_create: out of memory");
    }
    vcpu->vm = vm;
    vcpu->id = id;
    vcpu->fd = fd;
    vcpu->run_size = (size_t)vm->run_size;
    vcpu->run = vm->be->mmap_run(fd, vcpu->run_size);
    if (!vcpu->run) {
        int err = errno;

        vm->be->close(fd);
        free(vcpu);
        return mvm_fail(err, "mmap of kvm_run (%s backend): %s", vm->be->name, strerror(err));
    }
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

int vcpu_enter(struct mvm_vcpu *vcpu)
{
    int rc = vcpu->vm->be->ioctl(vcpu->fd, KVM_RUN, 0);

    if (rc < 0 && rc != -EINTR && rc != -EAGAIN)
        return mvm_fail(-rc, "KVM_RUN (%s backend): %s", vcpu->vm->be->name, strerror(-rc));
    return rc;
}
