/* Lab 1 (reference): the VMM's KVM calls (a VM, a memory slot, a vCPU, KVM_RUN and the exit switch), real mode. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "lab_parts.h"

int lab1_vm_open(int *kvm_fd, int *vm_fd)
{
    int kvm, vm, version, err;

    kvm = kvm_open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        return mvm_fail(errno, "lab1: open /dev/kvm: %s", strerror(errno));
    version = kvm_ioctl(kvm, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        err = version < 0 ? errno : EINVAL;
        kvm_close(kvm);
        return mvm_fail(err, "lab1: KVM_GET_API_VERSION returned %d, expected %d: this KVM speaks another API", version,
                        KVM_API_VERSION);
    }
    vm = kvm_ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) {
        err = errno;
        kvm_close(kvm);
        return mvm_fail(err, "lab1: KVM_CREATE_VM: %s", strerror(err));
    }
    *kvm_fd = kvm;
    *vm_fd = vm;
    return 0;
}

int lab1_mem_region_set(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva, uint32_t flags)
{
    struct kvm_userspace_memory_region region = {
        .slot = slot,
        .flags = flags,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)hva,
    };

    if (kvm_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return mvm_fail(errno, "lab1: KVM_SET_USER_MEMORY_REGION slot %u gpa 0x%llx size 0x%llx flags 0x%x: %s", slot,
                        (unsigned long long)gpa, (unsigned long long)size, flags, strerror(errno));
    return 0;
}

int lab1_vcpu_open(int kvm_fd, int vm_fd, int id, int *vcpu_fd, struct kvm_run **run, size_t *run_size)
{
    int size, fd, err;
    void *p;

    size = kvm_ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size < 0)
        return mvm_fail(errno, "lab1: KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
    if ((size_t)size < sizeof(struct kvm_run))
        return mvm_fail(EINVAL, "lab1: KVM_GET_VCPU_MMAP_SIZE is %d, smaller than struct kvm_run (%zu)", size,
                        sizeof(struct kvm_run));
    fd = kvm_ioctl(vm_fd, KVM_CREATE_VCPU, id);
    if (fd < 0)
        return mvm_fail(errno, "lab1: KVM_CREATE_VCPU %d: %s", id, strerror(errno));
    /* Shared: KVM writes the exit into this page and reads back the data of an IN. */
    p = kvm_mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        err = errno;
        kvm_close(fd);
        return mvm_fail(err, "lab1: mmap of vCPU %d's kvm_run (%d bytes): %s", id, size, strerror(err));
    }
    *vcpu_fd = fd;
    *run = p;
    *run_size = (size_t)size;
    return 0;
}

int lab1_vcpu_enter(int vcpu_fd, struct kvm_run *run)
{
    (void)run;
    if (kvm_ioctl(vcpu_fd, KVM_RUN, 0) < 0) {
        /* A signal (the run loop's time limit) interrupted KVM_RUN: not an error, the caller goes round again. */
        if (errno == EINTR || errno == EAGAIN)
            return -errno;
        return mvm_fail(errno, "lab1: KVM_RUN: %s", strerror(errno));
    }
    return 0;
}

int lab1_exit_switch(struct mvm_vcpu *vcpu, struct kvm_run *run)
{
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        return lab1_exit_io(vcpu, run);
    case KVM_EXIT_HLT:
        return lab1_exit_hlt(vcpu, run);
    default:
        return vcpu_exit_default(vcpu, run);
    }
}

/* Real-mode segments are 64 KiB windows; the base is always selector * 16. */
static void segment_real(struct kvm_segment *seg, uint16_t selector)
{
    seg->selector = selector;
    seg->base = (uint64_t)selector << 4;
    seg->limit = 0xffff;
}

int lab1_vcpu_setup_real(struct mvm_vcpu *vcpu, uint64_t entry_gpa)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    uint16_t selector;

    if (entry_gpa >= 0x100000)
        return mvm_fail(EINVAL, "lab1: entry 0x%llx is above 1 MiB, out of real mode's reach",
                        (unsigned long long)entry_gpa);
    if (kvm_ioctl(vcpu_fd(vcpu), KVM_GET_SREGS, &sregs) < 0)
        return mvm_fail(errno, "lab1: KVM_GET_SREGS: %s", strerror(errno));
    /* The highest segment whose window still starts at or below the entry. */
    selector = (uint16_t)((entry_gpa >> 4) & 0xf000);
    segment_real(&sregs.cs, selector);
    segment_real(&sregs.ds, selector);
    segment_real(&sregs.es, selector);
    segment_real(&sregs.fs, selector);
    segment_real(&sregs.gs, selector);
    segment_real(&sregs.ss, selector);
    if (kvm_ioctl(vcpu_fd(vcpu), KVM_SET_SREGS, &sregs) < 0)
        return mvm_fail(errno, "lab1: KVM_SET_SREGS: %s", strerror(errno));
    memset(&regs, 0, sizeof(regs));
    regs.rip = entry_gpa - ((uint64_t)selector << 4);
    regs.rsp = 0xfffe;
    regs.rflags = 0x2; /* bit 1 is reserved and always 1 */
    if (kvm_ioctl(vcpu_fd(vcpu), KVM_SET_REGS, &regs) < 0)
        return mvm_fail(errno, "lab1: KVM_SET_REGS: %s", strerror(errno));
    return 0;
}

int lab1_exit_io(struct mvm_vcpu *vcpu, struct kvm_run *run)
{
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

    /* String I/O (rep outs/ins) arrives as one exit with count elements, back to back. */
    for (uint32_t i = 0; i < run->io.count; i++) {
        int rc = vm_pio_dispatch(vcpu, run->io.port, is_write, data + (size_t)i * run->io.size, run->io.size);

        if (rc != 0)
            return rc;
    }
    return 0;
}

int lab1_exit_hlt(struct mvm_vcpu *vcpu, struct kvm_run *run)
{
    (void)vcpu;
    (void)run;
    return MVM_STOP_HLT;
}
