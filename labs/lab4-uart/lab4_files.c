/*
 * Lab 4 (student file): the file service's checks. A guest opens, reads, writes, stats and closes files of the
 * host directory given with `minivmm run --share DIR`, through the hypercalls MVM_HC_FS_* (abi.h). The system
 * calls are given (lab4_fs_host.c: openat2 beneath the share, read, write, close, fstat); what stands between
 * them and a hostile guest is this file: every argument is the guest's, so check it, and keep the guest's
 * descriptor table. A refused call must change nothing: no descriptor taken, no byte moved in any file.
 */
#include <errno.h>
#include <string.h>

#include "lab4-uart/lab4.h"

/*
 * TODO(lab4): MVM_HC_FS_OPEN(path = args[0], len = args[1], flags = args[2]); opaque is the VM's struct lab4_fs.
 *  1. No share (fs->root_fd == LAB4_FS_FREE): *ret = -MVM_HC_ENODEV.
 *  2. len 0 or > MVM_HC_PATH_MAX: -MVM_HC_EINVAL, before copying anything (the guest chose len).
 *  3. flags: only MVM_HC_O_ACCMODE | _CREAT | _TRUNC | _APPEND bits (all 64 of args[2]); access mode 3 is
 *     not one; O_TRUNC without write access is refused too (Linux would truncate a file opened read-only).
 *     Else -MVM_HC_EINVAL.
 *  4. Copy the path with vm_read_gva() into a buffer of MVM_HC_PATH_MAX + 1; -EFAULT/-EINVAL from it (the
 *     guest's bad pointer): -MVM_HC_EFAULT; other errors are the VMM's: return them.
 *  5. A NUL inside the len bytes: -MVM_HC_EINVAL (the host would see a shorter path than the guest sent).
 *     Then terminate it.
 *  6. The lowest free slot of fs->files (host_fd == LAB4_FS_FREE); none: -MVM_HC_EMFILE.
 *  7. lab4_fs_host_open(fs, path, flags): negative is the kernel's answer (EXDEV: the path leaves the share,
 *     ELOOP: a symlink, ENOENT...), the guest's as is. Else fill the slot (host_fd, access = flags &
 *     MVM_HC_O_ACCMODE) and *ret = the slot's index.
 * Why not check for ".." and "/" yourself? You may, but a string check cannot see symlinks, or a directory
 * renamed between the check and the open; RESOLVE_BENEATH makes the kernel check each step as it resolves.
 */
int lab4_hc_fs_open(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    (void)vcpu;
    (void)opaque;
    (void)ret;
    return mvm_fail(ENOSYS,
                    "lab4: lab4_hc_fs_open() is not written yet: the guest asked to open %llu bytes of path at gva "
                    "0x%llx with flags 0x%llx",
                    (unsigned long long)args[1], (unsigned long long)args[0], (unsigned long long)args[2]);
}

/*
 * TODO(lab4): MVM_HC_FS_READ(fd = args[0], buf = args[1], len = args[2]).
 *  - fd (all 64 bits) must name an open descriptor of fs->files that is not write-only: else -MVM_HC_EBADF.
 *    (A helper that finds the descriptor for a given use serves read, write, close and stat.)
 *  - len > MVM_HC_FS_IO_MAX: -MVM_HC_EINVAL; len 0: 0.
 *  - Check the destination before reading the file: reading from the file moves its offset, so a read into
 *    MMIO or past RAM that fails afterwards would lose bytes. vm_read_gva() of [buf, buf + len) checks every
 *    byte is mapped RAM: -MVM_HC_EFAULT if not.
 *  - lab4_fs_host_read() into a buffer of yours; n > 0 bytes go to the guest with vm_write_gva(); *ret = n.
 */
int lab4_hc_fs_read(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    (void)vcpu;
    (void)opaque;
    (void)ret;
    return mvm_fail(ENOSYS,
                    "lab4: lab4_hc_fs_read() is not written yet: the guest asked for %llu bytes of descriptor %lld "
                    "into gva 0x%llx",
                    (unsigned long long)args[2], (long long)args[0], (unsigned long long)args[1]);
}

/*
 * TODO(lab4): MVM_HC_FS_WRITE(fd = args[0], buf = args[1], len = args[2]).
 *  - fd: open and not read-only, else -MVM_HC_EBADF. len > MVM_HC_FS_IO_MAX: -MVM_HC_EINVAL; len 0: 0.
 *  - Copy all len bytes out of the guest first (vm_read_gva: -MVM_HC_EFAULT when any byte is not RAM), then
 *    lab4_fs_host_write() them: a buffer that runs off the end of RAM writes nothing, not its first page.
 *  - *ret = what the host returned.
 */
int lab4_hc_fs_write(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    (void)vcpu;
    (void)opaque;
    (void)ret;
    return mvm_fail(ENOSYS,
                    "lab4: lab4_hc_fs_write() is not written yet: the guest asked to write %llu bytes from gva "
                    "0x%llx to descriptor %lld",
                    (unsigned long long)args[2], (unsigned long long)args[1], (long long)args[0]);
}

/*
 * TODO(lab4): MVM_HC_FS_CLOSE(fd = args[0]): not an open descriptor: -MVM_HC_EBADF (twice closed is not
 * open). Else lab4_fs_host_close(), free the slot (LAB4_FS_FREE) whatever it returned, *ret = its return.
 */
int lab4_hc_fs_close(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    (void)vcpu;
    (void)opaque;
    (void)ret;
    return mvm_fail(ENOSYS, "lab4: lab4_hc_fs_close() is not written yet: the guest asked to close descriptor %lld",
                    (long long)args[0]);
}

/*
 * TODO(lab4): MVM_HC_FS_STAT(fd = args[0], buf = args[1]): not an open descriptor: -MVM_HC_EBADF. Else
 * lab4_fs_host_stat() (negative: the answer), then vm_write_gva() the struct mvm_hc_stat to buf
 * (-MVM_HC_EFAULT when it is not all RAM; vm_write_gva writes nothing then), *ret = 0.
 */
int lab4_hc_fs_stat(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    (void)vcpu;
    (void)opaque;
    (void)ret;
    return mvm_fail(ENOSYS,
                    "lab4: lab4_hc_fs_stat() is not written yet: the guest asked to stat descriptor %lld "
                    "into gva 0x%llx",
                    (long long)args[0], (unsigned long long)args[1]);
}
