/* The core's private structs, shared by core_*.c and dev_*.c only. */
#ifndef MINIVMM_CORE_INTERNAL_H
#define MINIVMM_CORE_INTERNAL_H

#include "mvm.h"

struct mvm_slot {
    uint64_t gpa;
    uint64_t size;
    uint8_t *hva;
    uint32_t flags;
};

struct mvm_pio_entry {
    uint16_t port;
    uint16_t count;
    mvm_pio_fn fn;
    void *opaque;
};

struct mvm_mmio_entry {
    uint64_t gpa;
    uint64_t len;
    mvm_mmio_fn fn;
    void *opaque;
};

struct mvm_vcpu {
    struct mvm_vm *vm;
    int id;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    struct mvm_run_result *res; /* the result of the run in progress, for devices */
};

struct mvm_vm {
    const struct mvm_backend *be;
    int sys_fd;
    int fd;
    int run_size;
    struct mvm_slot slots[MVM_MAX_SLOTS];
    int nslots;
    struct mvm_pio_entry pio[MVM_MAX_PIO];
    int npio;
    struct mvm_mmio_entry mmio[MVM_MAX_MMIO];
    int nmmio;
    struct mvm_vcpu *vcpus[MVM_MAX_VCPUS];
    int nvcpus;
    void *devices[4]; /* device state owned by the VM, freed with it */
    int ndevices;
};

/* ioctl through the backend; on failure records "NAME: strerror" and returns -errno. */
int mvm_ioctl(const struct mvm_backend *be, int fd, unsigned long req, unsigned long arg, const char *name);
#define MVM_IOCTL(be, fd, req, arg) mvm_ioctl((be), (fd), (req), (unsigned long)(arg), #req)

/* Gives the VM ownership of a heap block (freed by vm_destroy). */
int vm_own(struct mvm_vm *vm, void *p);

#endif
