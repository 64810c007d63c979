/*
 * A bare VM on the soft backend through its KVM ioctls, for the soft_*.c unit tests that need one: /dev/kvm's fd,
 * a VM with `mem_size` bytes of anonymous RAM at GPA 0 (soft_test_vm_open), then one vCPU with its run page mapped
 * (soft_test_vcpu_open), each step asserted. The tests fill the RAM and set the registers themselves.
 */
#ifndef SOFT_TEST_VM_H
#define SOFT_TEST_VM_H

#include <linux/kvm.h>
#include <stdint.h>
#include <sys/mman.h>

#include "backend.h"

struct soft_test_vm {
    int sys, vm, vcpu;
    uint8_t *mem;
    size_t mem_size;
    struct kvm_run *run;
    size_t run_size;
};

static inline void soft_test_vm_open(const struct mvm_backend *be, struct soft_test_vm *g, size_t mem_size)
{
    g->sys = be->open_dev();
    assert_true(g->sys >= 0);
    g->vm = be->ioctl(g->sys, KVM_CREATE_VM, 0);
    assert_true(g->vm >= 0);
    g->mem_size = mem_size;
    g->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->mem != MAP_FAILED);
    struct kvm_userspace_memory_region r = {.memory_size = mem_size, .userspace_addr = (uintptr_t)g->mem};
    assert_int_equal(be->ioctl(g->vm, KVM_SET_USER_MEMORY_REGION, (unsigned long)&r), 0);
}

static inline void soft_test_vcpu_open(const struct mvm_backend *be, struct soft_test_vm *g)
{
    g->vcpu = be->ioctl(g->vm, KVM_CREATE_VCPU, 0);
    assert_true(g->vcpu >= 0);
    g->run_size = (size_t)be->ioctl(g->sys, KVM_GET_VCPU_MMAP_SIZE, 0);
    g->run = be->mmap_run(g->vcpu, g->run_size);
    assert_non_null(g->run);
}

static inline void soft_test_vm_close(const struct mvm_backend *be, struct soft_test_vm *g)
{
    be->munmap_run(g->run, g->run_size);
    be->close(g->vcpu);
    be->close(g->vm);
    be->close(g->sys);
    munmap(g->mem, g->mem_size);
}

#endif
