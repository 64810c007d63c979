/* VMs: backend choice, creation, memory slots, the checked gpa -> hva translator. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_file.h"
#include "core_internal.h"
#include "kvm_api.h"

#define PAGE_SIZE 4096ULL

int mvm_ioctl(const struct mvm_backend *be, int fd, unsigned long req, unsigned long arg, const char *name)
{
    int rc = be->ioctl(fd, req, arg);

    if (rc < 0)
        return mvm_fail(-rc, "%s (%s backend): %s", name, be->name, strerror(-rc));
    return rc;
}

int mvm_backend_pick(const char *name, const struct mvm_backend **out)
{
    if (!name || !strcmp(name, "auto")) {
        int fd = mvm_backend_kvm.open_dev();

        if (fd >= 0) {
            mvm_backend_kvm.close(fd);
            *out = &mvm_backend_kvm;
        } else {
            *out = &mvm_backend_soft;
        }
        return 0;
    }
    if (!strcmp(name, "kvm")) {
        int fd = mvm_backend_kvm.open_dev();

        if (fd < 0)
            return mvm_fail(-fd,
                            "backend kvm: cannot open /dev/kvm: %s (try --backend soft, or "
                            "tests/kvm-in-qemu/run.sh for real KVM inside QEMU)",
                            strerror(-fd));
        mvm_backend_kvm.close(fd);
        *out = &mvm_backend_kvm;
        return 0;
    }
    if (!strcmp(name, "soft")) {
        *out = &mvm_backend_soft;
        return 0;
    }
    return mvm_fail(EINVAL, "unknown backend '%s' (expected auto, kvm or soft)", name);
}

int vm_create(const struct mvm_backend *be, struct mvm_vm **out)
{
    struct mvm_vm *vm = calloc(1, sizeof(*vm));
    int rc;

    if (!vm)
        return mvm_fail(ENOMEM, "vm_create: out of memory");
    vm->be = be;
    vm->fd = -1;
    mvm_labs_compose(&vm->lab);
    vm->sys_fd = -1;
    if (vm->lab.kvm.vm_open) {
        const struct mvm_backend *old = mvm_kvm_api_bind(be);

        rc = vm->lab.kvm.vm_open(&vm->sys_fd, &vm->fd);
        mvm_kvm_api_bind(old);
        if (rc == 0 && (vm->sys_fd < 0 || vm->fd < 0))
            rc = mvm_fail(EINVAL, "vm_open returned 0 with /dev/kvm fd %d and VM fd %d: both must be open fds",
                          vm->sys_fd, vm->fd);
        if (rc > 0)
            rc = mvm_fail(EINVAL, "vm_open returned %d: expected 0 or -errno", rc);
        if (rc < 0) {
            vm->sys_fd = vm->fd = -1; /* what it opened is its own to close */
            free(vm);
            return rc;
        }
    } else {
        vm->sys_fd = be->open_dev();
        if (vm->sys_fd < 0) {
            rc = mvm_fail(-vm->sys_fd, "open /dev/kvm (%s backend): %s", be->name, strerror(-vm->sys_fd));
            free(vm);
            return rc;
        }
        rc = MVM_IOCTL(be, vm->sys_fd, KVM_GET_API_VERSION, 0);
        if (rc >= 0 && rc != KVM_API_VERSION)
            rc = mvm_fail(EINVAL, "KVM_GET_API_VERSION: got %d, expected %d", rc, KVM_API_VERSION);
        if (rc >= 0)
            rc = vm->fd = MVM_IOCTL(be, vm->sys_fd, KVM_CREATE_VM, 0);
    }
    if (rc < 0) {
        vm_destroy(vm);
        return rc;
    }
    mvm_kvm_api_fd_set(vm->sys_fd, be);
    mvm_kvm_api_fd_set(vm->fd, be);
    *out = vm;
    return 0;
}

void vm_destroy(struct mvm_vm *vm)
{
    if (!vm)
        return;
    vm_bus_destroy(vm); /* first: a device may still hold guest memory */
    for (int i = 0; i < vm->nvcpus; i++) {
        struct mvm_vcpu *vcpu = vm->vcpus[i];

        if (vcpu->run)
            vm->be->munmap_run(vcpu->run, vcpu->run_size);
        mvm_kvm_api_fd_set(vcpu->fd, NULL);
        vm->be->close(vcpu->fd);
        free(vcpu);
    }
    if (vm->fd >= 0) {
        mvm_kvm_api_fd_set(vm->fd, NULL);
        vm->be->close(vm->fd);
    }
    if (vm->sys_fd >= 0) {
        mvm_kvm_api_fd_set(vm->sys_fd, NULL);
        vm->be->close(vm->sys_fd);
    }
    for (int i = 0; i < vm->nslots; i++)
        munmap(vm->slots[i].hva, vm->slots[i].size);
    free(vm);
}

const struct mvm_backend *vm_backend(const struct mvm_vm *vm)
{
    return vm->be;
}

int vm_fd(const struct mvm_vm *vm)
{
    return vm->fd;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

int vm_mem_add(struct mvm_vm *vm, uint64_t gpa, uint64_t size, uint32_t flags)
{
    struct kvm_userspace_memory_region region;
    struct mvm_slot *slot;
    void *hva;
    int rc;

    if (size == 0 || (gpa | size) & (PAGE_SIZE - 1))
        return mvm_fail(EINVAL, "memory slot at gpa 0x%llx size 0x%llx: both must be non-zero multiples of 4 KiB",
                        (unsigned long long)gpa, (unsigned long long)size);
    if (gpa + size < gpa)
        return mvm_fail(EINVAL, "memory slot at gpa 0x%llx size 0x%llx wraps around", (unsigned long long)gpa,
                        (unsigned long long)size);
    if (vm->nslots == MVM_MAX_SLOTS)
        return mvm_fail(ENOSPC, "no free memory slot (max %d)", MVM_MAX_SLOTS);
    for (int i = 0; i < vm->nslots; i++)
        if (ranges_overlap(gpa, size, vm->slots[i].gpa, vm->slots[i].size))
            return mvm_fail(EEXIST, "memory slot at gpa 0x%llx overlaps slot %d", (unsigned long long)gpa, i);
    hva = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (hva == MAP_FAILED)
        return mvm_fail(errno, "guest RAM of %llu bytes: %s", (unsigned long long)size, strerror(errno));
    region = (struct kvm_userspace_memory_region){
        .slot = (uint32_t)vm->nslots,
        .flags = flags,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)hva,
    };
    if (vm->lab.kvm.mem_region_set) {
        const struct mvm_backend *old = mvm_kvm_api_bind(vm->be);

        rc = vm->lab.kvm.mem_region_set(vm->fd, region.slot, gpa, size, hva, flags);
        mvm_kvm_api_bind(old);
        if (rc > 0)
            rc = mvm_fail(EINVAL, "mem_region_set returned %d: expected 0 or -errno", rc);
    } else {
        rc = MVM_IOCTL(vm->be, vm->fd, KVM_SET_USER_MEMORY_REGION, &region);
    }
    if (rc < 0) {
        munmap(hva, size);
        return rc;
    }
    slot = &vm->slots[vm->nslots++];
    *slot = (struct mvm_slot){.gpa = gpa, .size = size, .hva = hva, .flags = flags};
    return 0;
}

uint64_t vm_mem_size(const struct mvm_vm *vm)
{
    uint64_t total = 0;

    for (int i = 0; i < vm->nslots; i++)
        total += vm->slots[i].size;
    return total;
}

void *vm_gpa_to_hva(struct mvm_vm *vm, uint64_t gpa, uint64_t len)
{
    for (int i = 0; i < vm->nslots; i++) {
        const struct mvm_slot *s = &vm->slots[i];

        /* Written so that no sum can overflow: gpa and len come from the guest. */
        if (gpa >= s->gpa && gpa - s->gpa <= s->size && len <= s->size - (gpa - s->gpa))
            return s->hva + (gpa - s->gpa);
    }
    return NULL;
}

int vm_write(struct mvm_vm *vm, uint64_t gpa, const void *src, size_t len)
{
    void *hva = vm_gpa_to_hva(vm, gpa, len);

    if (!hva)
        return mvm_fail(EFAULT, "guest-physical range 0x%llx+%zu is not in guest RAM", (unsigned long long)gpa, len);
    memcpy(hva, src, len);
    return 0;
}

int vm_read(struct mvm_vm *vm, uint64_t gpa, void *dst, size_t len)
{
    const void *hva = vm_gpa_to_hva(vm, gpa, len);

    if (!hva)
        return mvm_fail(EFAULT, "guest-physical range 0x%llx+%zu is not in guest RAM", (unsigned long long)gpa, len);
    memcpy(dst, hva, len);
    return 0;
}

int vm_load_file(struct mvm_vm *vm, const char *path, uint64_t gpa, size_t *size_out)
{
    struct stat st;
    uint8_t *hva;
    size_t size, done = 0;
    int fd, rc = 0;

    fd = mvm_file_open_input("guest image", path, &st);
    if (fd < 0)
        return fd;
    if (st.st_size == 0) {
        close(fd);
        return mvm_fail(EINVAL, "guest image %s: empty file", path);
    }
    size = (size_t)st.st_size;
    hva = vm_gpa_to_hva(vm, gpa, (uint64_t)st.st_size);
    if (!hva) {
        close(fd);
        return mvm_fail(EFBIG, "guest image %s: %lld bytes at gpa 0x%llx do not fit in guest RAM (%llu bytes)", path,
                        (long long)st.st_size, (unsigned long long)gpa, (unsigned long long)vm_mem_size(vm));
    }
    /* One read() returns at most 0x7ffff000 bytes on Linux: read until all of it is in. */
    while (done < size) {
        ssize_t n = pread(fd, hva + done, size - done, (off_t)done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = mvm_fail(errno, "guest image %s: read failed at byte %zu of %zu: %s", path, done, size,
                          strerror(errno));
            break;
        }
        if (n == 0) {
            rc = mvm_fail(EIO, "guest image %s: ended at byte %zu of %zu (did it shrink while loading?)", path, done,
                          size);
            break;
        }
        done += (size_t)n;
    }
    close(fd);
    if (rc == 0 && size_out)
        *size_out = size;
    return rc;
}
