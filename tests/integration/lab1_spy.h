/*
 * Lab 1's tests: a backend that wraps the chosen one and watches the KVM calls the lab's code makes (what it
 * opened and closed, the registers it set), or makes one of them fail; and a VM runner on any backend.
 * Header-only, for test_lab1*.c; one test at a time (the watch is global, as the backend seam has no context).
 */
#ifndef TESTS_LAB1_SPY_H
#define TESTS_LAB1_SPY_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "lab.h"

struct spy_watch {
    const struct mvm_backend *inner;
    int opened, closed;     /* fds handed out (system, VM, vCPU) and closed */
    int api_version;        /* KVM_GET_API_VERSION answers this when non-zero */
    unsigned long fail_req; /* this ioctl fails with fail_errno ... */
    int fail_errno;
    bool set_regs_seen, set_sregs_seen;
    struct kvm_regs set_regs; /* the last KVM_SET_REGS / KVM_SET_SREGS argument */
    struct kvm_sregs set_sregs;
    int mmap_size;                             /* what KVM_GET_VCPU_MMAP_SIZE answered */
    size_t mmap_len;                           /* the length of the last kvm_run mapping */
    struct kvm_userspace_memory_region region; /* the last KVM_SET_USER_MEMORY_REGION */
    int regions;
};

static struct spy_watch spy;

static int spy_open_dev(void)
{
    int fd = spy.inner->open_dev();

    spy.opened += fd >= 0;
    return fd;
}

static int spy_ioctl(int fd, unsigned long req, unsigned long arg)
{
    int rc;

    if (spy.fail_req && req == spy.fail_req)
        return -spy.fail_errno;
    if (req == KVM_GET_API_VERSION && spy.api_version)
        return spy.api_version;
    if (req == KVM_SET_REGS && arg) {
        spy.set_regs = *(const struct kvm_regs *)arg;
        spy.set_regs_seen = true;
    }
    if (req == KVM_SET_SREGS && arg) {
        spy.set_sregs = *(const struct kvm_sregs *)arg;
        spy.set_sregs_seen = true;
    }
    if (req == KVM_SET_USER_MEMORY_REGION && arg) {
        spy.region = *(const struct kvm_userspace_memory_region *)arg;
        spy.regions++;
    }
    rc = spy.inner->ioctl(fd, req, arg);
    if (req == KVM_GET_VCPU_MMAP_SIZE)
        spy.mmap_size = rc;
    if ((req == KVM_CREATE_VM || req == KVM_CREATE_VCPU) && rc >= 0)
        spy.opened++;
    return rc;
}

static void *spy_mmap_run(int vcpu_fd, size_t len)
{
    spy.mmap_len = len;
    return spy.inner->mmap_run(vcpu_fd, len);
}

static int spy_close(int fd)
{
    int rc = spy.inner->close(fd);

    spy.closed += rc == 0;
    return rc;
}

/* The chosen backend ($MINIVMM_BACKEND), watched. Resets the watch. */
static const struct mvm_backend *spy_backend(void)
{
    static struct mvm_backend be;

    memset(&spy, 0, sizeof(spy));
    if (mvm_backend_pick(harness_backend_name(), &spy.inner) < 0)
        fail_msg("backend %s: %s", harness_backend_name(), mvm_error());
    be = *spy.inner;
    be.open_dev = spy_open_dev;
    be.ioctl = spy_ioctl;
    be.mmap_run = spy_mmap_run;
    be.close = spy_close;
    return &be;
}

/* cmocka teardown: the next test grades the whole of everyone's lab again. */
static int part_reset(void **state)
{
    (void)state;
    mvm_lab_part(0, 0, 0);
    return 0;
}

/* Grades only `member` of lab 1 (lab.h: MVM_LAB_PART); the teardown part_reset ends it. */
#define LAB1_PART(member)                                                                                              \
    do {                                                                                                               \
        if (MVM_LAB_PART(1, member) < 0)                                                                               \
            fail_msg("%s", mvm_error());                                                                               \
    } while (0)

/* A VM on `be` with `ram` bytes at gpa 0, the standard devices, `code` at `gpa` entered in real mode there. */
static int spy_run_code(const struct mvm_backend *be, uint64_t ram, const void *code, size_t len, uint64_t gpa,
                        struct guest_run *run)
{
    struct mvm_run_opts opts = {.max_exits = 1000, .max_ms = 2000};
    struct mvm_vm *vm = NULL;
    struct mvm_vcpu *vcpu;
    FILE *console, *exits;
    int rc;

    memset(run, 0, sizeof(*run));
    console = open_memstream(&run->console, &run->console_len);
    exits = open_memstream(&run->exits, &run->exits_len);
    if (!console || !exits)
        fail_msg("out of memory");
    opts.exit_dump = exits;
    run->backend = be->name;
    rc = vm_create(be, &vm);
    if (rc == 0)
        rc = vm_mem_add(vm, 0, ram, 0);
    if (rc == 0)
        rc = vm_devices_add_standard(vm, console);
    if (rc == 0)
        rc = vm_write(vm, gpa, code, len);
    if (rc == 0)
        rc = vcpu_create(vm, 0, &vcpu);
    if (rc == 0)
        rc = vcpu_setup_mode(vcpu, MVM_MODE_REAL, gpa);
    if (rc < 0) {
        snprintf(run->error, sizeof(run->error), "VM setup failed: %s", mvm_error());
    } else {
        run->rc = vcpu_run(vcpu, &opts, &run->res);
        vcpu_regs_get(vcpu, &run->regs);
        vcpu_sregs_get(vcpu, &run->sregs);
    }
    vm_destroy(vm);
    fclose(console);
    fclose(exits);
    return rc;
}

#endif
