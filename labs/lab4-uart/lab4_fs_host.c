/*
 * Lab 4, given: the file service's host side, the only part of it that makes system calls. The share is an
 * O_PATH descriptor of --share DIR; every open is openat2(2) beneath it, so the kernel, not a string check,
 * decides what "inside" means (a symlink or a rename racing the check cannot get out). Not a student file.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lab4-uart/lab4.h"

_Static_assert(MVM_HC_O_WRONLY == O_WRONLY && MVM_HC_O_RDWR == O_RDWR && MVM_HC_O_ACCMODE == O_ACCMODE &&
                   MVM_HC_O_CREAT == O_CREAT && MVM_HC_O_TRUNC == O_TRUNC && MVM_HC_O_APPEND == O_APPEND,
               "the ABI's open flags are Linux's");
_Static_assert(MVM_HC_ENOENT == ENOENT && MVM_HC_EBADF == EBADF && MVM_HC_EACCES == EACCES && MVM_HC_EXDEV == EXDEV &&
                   MVM_HC_ENODEV == ENODEV && MVM_HC_EMFILE == EMFILE && MVM_HC_ELOOP == ELOOP &&
                   MVM_HC_EFAULT == EFAULT && MVM_HC_EINVAL == EINVAL,
               "the ABI's errno values are Linux's");

void lab4_fs_init(struct lab4_fs *fs)
{
    fs->root_fd = LAB4_FS_FREE;
    for (int i = 0; i < MVM_HC_FS_FDS; i++)
        fs->files[i] = (struct lab4_fs_file){.host_fd = LAB4_FS_FREE};
}

void lab4_fs_reset(struct lab4_fs *fs)
{
    for (int i = 0; i < MVM_HC_FS_FDS; i++) {
        if (fs->files[i].host_fd >= 0)
            close(fs->files[i].host_fd);
        fs->files[i] = (struct lab4_fs_file){.host_fd = LAB4_FS_FREE};
    }
}

void lab4_fs_release(struct lab4_fs *fs)
{
    lab4_fs_reset(fs);
    if (fs->root_fd >= 0)
        close(fs->root_fd);
    fs->root_fd = LAB4_FS_FREE;
}

struct lab4_fs *lab4_fs_find(struct mvm_vm *vm)
{
    const struct mvm_hypercall *hc = vm_hypercall_find(vm, MVM_HC_FS_OPEN);

    return hc ? hc->opaque : NULL;
}

int lab4_fs_share(struct mvm_vm *vm, const char *dir)
{
    struct lab4_fs *fs = lab4_fs_find(vm);
    int fd;

    if (!fs)
        return mvm_fail(ENODEV, "--share %s: this VM has no file service (hypercall %d)", dir, MVM_HC_FS_OPEN);
    fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return mvm_fail(errno, "--share %s: %s", dir, strerror(errno));
    if (fs->root_fd >= 0)
        close(fs->root_fd);
    fs->root_fd = fd;
    return 0;
}

int lab4_fs_host_open(const struct lab4_fs *fs, const char *path, uint32_t flags)
{
    /* O_NONBLOCK: a FIFO in the share must not hang the VMM in open(); it is refused just after. */
    struct open_how how = {
        .flags = (flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND)) | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK,
        .mode = flags & O_CREAT ? 0644 : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    struct stat st;
    long fd;

    if (fs->root_fd < 0)
        return -ENODEV;
    fd = syscall(SYS_openat2, fs->root_fd, path, &how, sizeof(how));
    if (fd < 0)
        return -errno;
    if (fstat((int)fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close((int)fd);
        return -EACCES;
    }
    return (int)fd;
}

int64_t lab4_fs_host_read(int host_fd, void *buf, size_t len)
{
    ssize_t n = read(host_fd, buf, len);

    return n < 0 ? -errno : n;
}

int64_t lab4_fs_host_write(int host_fd, const void *buf, size_t len)
{
    ssize_t n = write(host_fd, buf, len);

    return n < 0 ? -errno : n;
}

int lab4_fs_host_close(int host_fd)
{
    return close(host_fd) < 0 ? -errno : 0;
}

int lab4_fs_host_stat(int host_fd, struct mvm_hc_stat *out)
{
    struct stat st;

    if (fstat(host_fd, &st) < 0)
        return -errno;
    *out = (struct mvm_hc_stat){
        .size = (uint64_t)st.st_size,
        .mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec,
        .mode = st.st_mode & 07777,
    };
    return 0;
}
