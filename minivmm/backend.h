/* The backend seam: the syscall boundary of the KVM API (open /dev/kvm, ioctl, mmap of kvm_run). */
#ifndef MINIVMM_BACKEND_H
#define MINIVMM_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Work a backend did itself, with no userspace exit, as real KVM does in the
 * kernel. A trace shows these as "in-kernel" events.
 */
struct mvm_backend_stats {
    uint64_t cpuid;      /* CPUID instructions answered from the vCPU's CPUID table */
    uint64_t hypercall;  /* VMCALL/VMMCALL answered (RAX = -KVM_ENOSYS for unknown numbers) */
    uint64_t rdtsc;      /* RDTSC/RDTSCP executed (guest TSC = host TSC + offset) */
    uint64_t msr;        /* RDMSR/WRMSR executed by the guest */
    uint64_t exceptions; /* exceptions and interrupts delivered through the guest IDT/IVT */
};

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

    /* Optional members (NULL/false where a backend has none); the core never names a backend. */
    /* The ioctls are function calls in this process: KVM_GET_REGS after every exit costs no syscall. */
    bool in_process;
    /* vcpu_fd's counters of in-kernel work into *out: 0, or -EBADF for a fd that is not its vCPU. */
    int (*stats_get)(int vcpu_fd, struct mvm_backend_stats *out);
    /*
     * The calling thread's last reason for a failed ioctl or a KVM_EXIT_INTERNAL_ERROR, in words
     * (what failed, at which RIP). Never NULL; "" when there is none.
     */
    const char *(*last_error)(void);
    /*
     * Deterministic runs: the guest's virtual time in ns (its instruction count), for trace timestamps; 0 when the
     * backend's time is the host's (the soft backend with MINIVMM_SOFT_DETERMINISTIC=1 has virtual time).
     */
    uint64_t (*virtual_ns)(void);
};

extern const struct mvm_backend mvm_backend_kvm;
extern const struct mvm_backend mvm_backend_soft;

#endif
