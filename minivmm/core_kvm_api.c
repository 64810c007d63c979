/* The KVM API's system calls (kvm_api.h) routed to the backend the calling thread is bound to. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "kvm_api.h"
#include "mvm.h"

static _Thread_local const struct mvm_backend *bound;

const struct mvm_backend *mvm_kvm_api_bind(const struct mvm_backend *be)
{
    const struct mvm_backend *old = bound;

    bound = be;
    return old;
}

static const struct mvm_backend *backend(void)
{
    if (!bound && mvm_backend_pick("auto", &bound) < 0)
        bound = &mvm_backend_soft;
    return bound;
}

/* The backend of each fd the core recorded (fds beyond the table go to the bound backend). */
#define FD_TABLE 4096
static const struct mvm_backend *_Atomic fd_backends[FD_TABLE];

void mvm_kvm_api_fd_set(int fd, const struct mvm_backend *be)
{
    if (fd >= 0 && fd < FD_TABLE)
        fd_backends[fd] = be;
}

static const struct mvm_backend *backend_of(int fd)
{
    const struct mvm_backend *be = fd >= 0 && fd < FD_TABLE ? fd_backends[fd] : NULL;

    return be ? be : backend();
}

/* errno = err, a message for mvm_error(), and the system call's -1. */
__attribute__((format(printf, 2, 3))) static int fail_errno(int err, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mvm_fail(err, "%s", msg);
    errno = err;
    return -1;
}

int kvm_open(const char *path, int flags)
{
    int fd;

    if (!path || strcmp(path, "/dev/kvm"))
        return fail_errno(ENOENT, "kvm_open(\"%s\"): the KVM API has one device, \"/dev/kvm\"", path ? path : "(null)");
    if ((flags & O_ACCMODE) != O_RDWR)
        return fail_errno(EACCES, "kvm_open(\"%s\"): /dev/kvm is opened O_RDWR (KVM refuses ioctls on a read-only fd)",
                          path);
    fd = backend()->open_dev();
    if (fd < 0)
        return fail_errno(-fd, "kvm_open(\"%s\") failed", path);
    return fd;
}

int kvm_ioctl(int fd, unsigned long req, ...)
{
    unsigned long arg;
    va_list ap;
    int rc;

    va_start(ap, req);
    arg = va_arg(ap, unsigned long);
    va_end(ap);
    rc = backend_of(fd)->ioctl(fd, req, arg);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return rc;
}

void *kvm_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)
{
    void *p;

    if (addr || offset) {
        fail_errno(EINVAL, "kvm_mmap: %s; pass NULL and 0 (the kvm_run page is mapped from offset 0)",
                   addr ? "an address hint" : "a non-zero offset");
        return MAP_FAILED;
    }
    if (prot != (PROT_READ | PROT_WRITE) || (flags & (MAP_SHARED | MAP_PRIVATE)) != MAP_SHARED) {
        fail_errno(EINVAL, "kvm_mmap: %s",
                   prot != (PROT_READ | PROT_WRITE)
                       ? "kvm_run is mapped PROT_READ | PROT_WRITE (KVM writes the exit, the VMM writes IN data)"
                       : "kvm_run is mapped MAP_SHARED (a private copy would never see KVM's exits)");
        return MAP_FAILED;
    }
    p = backend_of(fd)->mmap_run(fd, len);
    if (!p) {
        int err = errno;

        fail_errno(err, "kvm_mmap of the vCPU's kvm_run failed (%s)", strerror(err));
        return MAP_FAILED;
    }
    return p;
}

int kvm_munmap(void *addr, size_t len)
{
    int rc = backend()->munmap_run(addr, len);

    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 0;
}

int kvm_close(int fd)
{
    int rc = backend_of(fd)->close(fd);

    mvm_kvm_api_fd_set(fd, NULL);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 0;
}
