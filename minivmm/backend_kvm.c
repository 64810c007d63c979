/* The kvm backend: the kernel's /dev/kvm, one syscall per seam call. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"

/* $MINIVMM_KVM_DEVICE names another device node (tests use it to play a machine without KVM). */
static int kvm_open_dev(void)
{
    const char *path = getenv("MINIVMM_KVM_DEVICE");
    int fd = open(path && *path ? path : "/dev/kvm", O_RDWR | O_CLOEXEC);

    return fd < 0 ? -errno : fd;
}

static int kvm_ioctl(int fd, unsigned long req, unsigned long arg)
{
    int rc = ioctl(fd, req, arg);

    return rc < 0 ? -errno : rc;
}

static void *kvm_mmap_run(int vcpu_fd, size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);

    return p == MAP_FAILED ? NULL : p;
}

static int kvm_munmap_run(void *run, size_t len)
{
    return munmap(run, len) < 0 ? -errno : 0;
}

static int kvm_close(int fd)
{
    return close(fd) < 0 ? -errno : 0;
}

const struct mvm_backend mvm_backend_kvm = {
    .name = "kvm",
    .open_dev = kvm_open_dev,
    .ioctl = kvm_ioctl,
    .mmap_run = kvm_mmap_run,
    .munmap_run = kvm_munmap_run,
    .close = kvm_close,
};
