/* A backend that runs nothing, for fuzz targets that drive the core's checks without a CPU. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_backend.h"

struct kvm_regs fuzz_backend_regs;
struct kvm_sregs fuzz_backend_sregs;

static int null_open_dev(void)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

    return fd < 0 ? -errno : fd;
}

static int null_ioctl(int fd, unsigned long req, unsigned long arg)
{
    void *p = (void *)arg;

    (void)fd;
    switch (req) {
    case KVM_GET_API_VERSION:
        return KVM_API_VERSION;
    case KVM_GET_VCPU_MMAP_SIZE:
        return 4096;
    case KVM_CREATE_VM:
    case KVM_CREATE_VCPU:
        return null_open_dev();
    case KVM_SET_USER_MEMORY_REGION:
    case KVM_SET_CPUID2:
        return 0;
    case KVM_GET_SUPPORTED_CPUID:
        ((struct kvm_cpuid2 *)p)->nent = 0;
        return 0;
    case KVM_GET_REGS:
        memcpy(p, &fuzz_backend_regs, sizeof(fuzz_backend_regs));
        return 0;
    case KVM_SET_REGS:
        memcpy(&fuzz_backend_regs, p, sizeof(fuzz_backend_regs));
        return 0;
    case KVM_GET_SREGS:
        memcpy(p, &fuzz_backend_sregs, sizeof(fuzz_backend_sregs));
        return 0;
    case KVM_SET_SREGS:
        memcpy(&fuzz_backend_sregs, p, sizeof(fuzz_backend_sregs));
        return 0;
    default:
        return -ENOTTY;
    }
}

static void *null_mmap_run(int vcpu_fd, size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    (void)vcpu_fd;
    return p == MAP_FAILED ? NULL : p;
}

static int null_munmap_run(void *run, size_t len)
{
    return munmap(run, len) < 0 ? -errno : 0;
}

static int null_close(int fd)
{
    return close(fd) < 0 ? -errno : 0;
}

const struct mvm_backend fuzz_backend_null = {
    .name = "null",
    .open_dev = null_open_dev,
    .ioctl = null_ioctl,
    .mmap_run = null_mmap_run,
    .munmap_run = null_munmap_run,
    .close = null_close,
};
