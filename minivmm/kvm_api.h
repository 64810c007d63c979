/*
 * The KVM API as a program calls it: open /dev/kvm, ioctl, mmap of kvm_run, close. Same arguments, same
 * returns (-1 with errno on failure) as the system calls, on whichever backend the VM runs on, so a lab's
 * code reads like any VMM's and runs unchanged on kvm and soft.
 */
#ifndef MINIVMM_KVM_API_H
#define MINIVMM_KVM_API_H

#include <stddef.h>
#include <sys/types.h>

#include "backend.h"

/* open("/dev/kvm", O_RDWR | O_CLOEXEC): the system fd, or -1 with errno (ENOENT for any other path). */
int kvm_open(const char *path, int flags);

/* ioctl(fd, req, arg) on a system, VM or vCPU fd: the ioctl's return, or -1 with errno. */
int kvm_ioctl(int fd, unsigned long req, ...);

/*
 * mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0): the vCPU's struct kvm_run, or MAP_FAILED
 * with errno. Only that mapping exists: any other address hint, protection, flags or offset is EINVAL, with a
 * message (mvm_error) that says why.
 */
void *kvm_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset);

/* munmap of what kvm_mmap returned: 0, or -1 with errno. */
int kvm_munmap(void *addr, size_t len);

/* close() of a fd kvm_open or an ioctl handed out: 0, or -1 with errno. */
int kvm_close(int fd);

/*
 * Makes the calling thread's kvm_* calls go to `be` (the core does this around each call into a lab's KVM
 * code; a test does it to watch those calls). Returns the backend bound before, NULL when none was: then
 * kvm_open picks one as mvm_backend_pick("auto") does.
 */
const struct mvm_backend *mvm_kvm_api_bind(const struct mvm_backend *be);

/*
 * Records that `fd` belongs to `be` (NULL: forgets it). The core does this for the fds of each VM and vCPU, so
 * that kvm_ioctl, kvm_mmap and kvm_close on them reach their own backend from any thread, bound or not.
 */
void mvm_kvm_api_fd_set(int fd, const struct mvm_backend *be);

#endif
