/* Lab 4 (reference): the file service's checks and the guest's descriptor table, on the given host side. */
#include <errno.h>
#include <string.h>

#include "lab4-uart/lab4.h"

#define OPEN_FLAGS (MVM_HC_O_ACCMODE | MVM_HC_O_CREAT | MVM_HC_O_TRUNC | MVM_HC_O_APPEND)

/* vm_read_gva / vm_write_gva: the guest's bad buffer becomes its answer; anything else is the VMM's failure. */
static int guest_buffer(int rc, int64_t *ret)
{
    if (rc == -EFAULT || rc == -EINVAL) {
        *ret = -MVM_HC_EFAULT;
        return 0;
    }
    return rc;
}

/* What a call does with a descriptor: close and stat take any, read and write need that access. */
enum use { USE_ANY, USE_READ, USE_WRITE };

/* The guest's open descriptor `fd` (all 64 bits of it), if it allows `use`; else NULL (the answer is EBADF). */
static struct lab4_fs_file *file_get(struct lab4_fs *fs, uint64_t fd, enum use use)
{
    struct lab4_fs_file *f;

    if (fd >= MVM_HC_FS_FDS)
        return NULL;
    f = &fs->files[fd];
    if (f->host_fd == LAB4_FS_FREE)
        return NULL;
    if ((use == USE_READ && f->access == MVM_HC_O_WRONLY) || (use == USE_WRITE && f->access == MVM_HC_O_RDONLY))
        return NULL;
    return f;
}

int lab4_hc_fs_open(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    struct lab4_fs *fs = opaque;
    uint64_t path_gva = args[0], len = args[1], flags = args[2];
    char path[MVM_HC_PATH_MAX + 1];
    int slot = -1, rc;

    if (fs->root_fd == LAB4_FS_FREE) {
        *ret = -MVM_HC_ENODEV;
        return 0;
    }
    if (len == 0 || len > MVM_HC_PATH_MAX || (flags & ~(uint64_t)OPEN_FLAGS) ||
        (flags & MVM_HC_O_ACCMODE) == MVM_HC_O_ACCMODE ||
        ((flags & MVM_HC_O_TRUNC) && (flags & MVM_HC_O_ACCMODE) == MVM_HC_O_RDONLY)) {
        *ret = -MVM_HC_EINVAL;
        return 0;
    }
    rc = vm_read_gva(vcpu, path_gva, path, len);
    if (rc < 0)
        return guest_buffer(rc, ret);
    /* The host sees a C string: a NUL inside would cut the path the guest asked for. */
    if (memchr(path, '\0', len)) {
        *ret = -MVM_HC_EINVAL;
        return 0;
    }
    path[len] = '\0';
    for (int i = 0; i < MVM_HC_FS_FDS && slot < 0; i++)
        if (fs->files[i].host_fd == LAB4_FS_FREE)
            slot = i;
    if (slot < 0) {
        *ret = -MVM_HC_EMFILE;
        return 0;
    }
    rc = lab4_fs_host_open(fs, path, (uint32_t)flags);
    if (rc < 0) {
        *ret = rc;
        return 0;
    }
    fs->files[slot] = (struct lab4_fs_file){.host_fd = rc, .access = (uint32_t)(flags & MVM_HC_O_ACCMODE)};
    *ret = slot;
    return 0;
}

int lab4_hc_fs_read(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    struct lab4_fs_file *f = file_get(opaque, args[0], USE_READ);
    uint64_t gva = args[1], len = args[2];
    uint8_t buf[MVM_HC_FS_IO_MAX];
    int64_t n;
    int rc;

    if (!f) {
        *ret = -MVM_HC_EBADF;
        return 0;
    }
    if (len > MVM_HC_FS_IO_MAX) {
        *ret = -MVM_HC_EINVAL;
        return 0;
    }
    if (len == 0) {
        *ret = 0;
        return 0;
    }
    /* The destination is checked before the file is read: a refused read must not move the file's offset. */
    rc = vm_read_gva(vcpu, gva, buf, len);
    if (rc < 0)
        return guest_buffer(rc, ret);
    n = lab4_fs_host_read(f->host_fd, buf, len);
    if (n > 0) {
        rc = vm_write_gva(vcpu, gva, buf, (size_t)n);
        if (rc < 0)
            return guest_buffer(rc, ret);
    }
    *ret = n;
    return 0;
}

int lab4_hc_fs_write(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    struct lab4_fs_file *f = file_get(opaque, args[0], USE_WRITE);
    uint64_t gva = args[1], len = args[2];
    uint8_t buf[MVM_HC_FS_IO_MAX];
    int rc;

    if (!f) {
        *ret = -MVM_HC_EBADF;
        return 0;
    }
    if (len > MVM_HC_FS_IO_MAX) {
        *ret = -MVM_HC_EINVAL;
        return 0;
    }
    if (len == 0) {
        *ret = 0;
        return 0;
    }
    /* All of it out of the guest (and so checked) before a byte reaches the file: no partial writes. */
    rc = vm_read_gva(vcpu, gva, buf, len);
    if (rc < 0)
        return guest_buffer(rc, ret);
    *ret = lab4_fs_host_write(f->host_fd, buf, len);
    return 0;
}

int lab4_hc_fs_close(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    struct lab4_fs_file *f = file_get(opaque, args[0], USE_ANY);

    (void)vcpu;
    if (!f) {
        *ret = -MVM_HC_EBADF;
        return 0;
    }
    /* Linux frees the descriptor even when close reports an error: so does the table. */
    *ret = lab4_fs_host_close(f->host_fd);
    f->host_fd = LAB4_FS_FREE;
    return 0;
}

int lab4_hc_fs_stat(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    struct lab4_fs_file *f = file_get(opaque, args[0], USE_ANY);
    struct mvm_hc_stat st;
    int rc;

    if (!f) {
        *ret = -MVM_HC_EBADF;
        return 0;
    }
    rc = lab4_fs_host_stat(f->host_fd, &st);
    if (rc < 0) {
        *ret = rc;
        return 0;
    }
    rc = vm_write_gva(vcpu, args[1], &st, sizeof(st));
    if (rc < 0)
        return guest_buffer(rc, ret);
    *ret = 0;
    return 0;
}
