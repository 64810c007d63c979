/* The backend seam: the syscall boundary of the KVM API (open /dev/kvm, ioctl, mmap of kvm_run). */
#ifndef MINIVMM_BACKEND_H
#define MINIVMM_BACKEND_H

#include <stddef.h>

/*
 * One backend speaks the KVM API with linux/kvm.h's structs and ioctl numbers.
 * Contract shared by all members: they return a value >= 0 on success and
 * -errno on failure (never -1 with errno), exactly what the kernel's KVM would
 * return for the same call. File descriptors they hand out are real, distinct
 * process fds, so they never collide with the VMM's own files.
 */
struct mvm_backend {
    const char *name; /* "kvm" or "soft" */
    /* open("/dev/kvm", O_RDWR | O_CLOEXEC): the system fd. */
    int (*open_dev)(void);
    /* ioctl(fd, req, arg) on a system, VM or vCPU fd. */
    int (*ioctl)(int fd, unsigned long req, unsigned long arg);
    /* mmap of a vCPU fd's struct kvm_run (len from KVM_GET_VCPU_MMAP_SIZE); NULL and errno set on failure. */
    void *(*mmap_run)(int vcpu_fd, size_t len);
    /* munmap of what mmap_run returned. */
    int (*munmap_run)(void *run, size_t len);
    /* close() of any fd this backend handed out. */
    int (*close)(int fd);
};

extern const struct mvm_backend mvm_backend_kvm;
extern const struct mvm_backend mvm_backend_soft;

#endif
