/* How a lab plugs into the core: one ops structure per lab, registered once; the core knows no lab by name. */
#ifndef MINIVMM_LAB_H
#define MINIVMM_LAB_H

#include <stddef.h>

#include "mvm.h"

/* The CPU modes a vCPU can be set up in before its first KVM_RUN. */
enum mvm_mode {
    MVM_MODE_REAL,      /* 16-bit real mode (lab 1) */
    MVM_MODE_PROTECTED, /* 32-bit protected mode, flat segments (lab 2) */
    MVM_MODE_LONG,      /* 64-bit long mode on minivmm's standard page tables (lab 3) */
    MVM_MODES,
};

/* An exit handler: returns 0 to keep running, a positive MVM_STOP_* to stop, or -errno. */
typedef int (*mvm_exit_fn)(struct mvm_vcpu *vcpu, struct kvm_run *run);

/*
 * The VMM's own KVM calls, where a lab teaches them (lab 1): each NULL member is the core's built-in
 * version. They call the KVM API through kvm_api.h, bound to the VM's backend. Each returns 0 (or what
 * its line says) or -errno with a message (mvm_fail).
 */
struct mvm_lab_kvm {
    /* Opens /dev/kvm, checks KVM_GET_API_VERSION, KVM_CREATE_VM: the two fds into *kvm_fd and *vm_fd. */
    int (*vm_open)(int *kvm_fd, int *vm_fd);
    /* KVM_SET_USER_MEMORY_REGION of slot `slot`: `size` bytes at host `hva` appear at `gpa`, with KVM_MEM_* `flags`. */
    int (*mem_region_set)(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva, uint32_t flags);
    /* KVM_CREATE_VCPU `id`, then mmap of its kvm_run (KVM_GET_VCPU_MMAP_SIZE bytes): fd, mapping and size out. */
    int (*vcpu_open)(int kvm_fd, int vm_fd, int id, int *vcpu_fd, struct kvm_run **run, size_t *run_size);
    /* One KVM_RUN: 0 when the vCPU exited (run->exit_reason says why), -EINTR when a signal cut it short. */
    int (*vcpu_enter)(int vcpu_fd, struct kvm_run *run);
    /* The exit switch: handles run->exit_reason, the reasons it does not know through vcpu_exit_default(). */
    mvm_exit_fn exit_switch;
};

/*
 * What one lab provides. Every member is optional (NULL: this lab provides
 * none). A VM composes its ops from all registered labs, member by member,
 * the higher lab number winning where two labs provide the same member, and
 * for each lab the student's version where one is registered, else the
 * reference. So any lab runs on top of the reference versions of the others.
 */
struct mvm_lab_ops {
    int lab;          /* 1, 2, 3, ... */
    const char *name; /* its folder: "lab1-realmode" */
    bool reference;   /* the reference solution (else a student's version) */
    /* Exit handlers by KVM_EXIT_* reason. */
    mvm_exit_fn exit[MVM_EXIT_REASONS];
    /* Puts a fresh vCPU in a mode with its entry point at `entry` (gpa, or gva in long mode). */
    int (*vcpu_setup[MVM_MODES])(struct mvm_vcpu *vcpu, uint64_t entry);
    /* Walks the guest's page tables at cr3: gva -> gpa; 0 or -errno with a message. */
    int (*gva_to_gpa)(struct mvm_vm *vm, uint64_t cr3, uint64_t gva, uint64_t *gpa_out);
    /* Adjusts the CPUID table a vCPU gets (KVM_SET_CPUID2), after the backend's supported set is in. */
    int (*cpuid_adjust)(struct mvm_vcpu *vcpu, struct kvm_cpuid2 *cpuid);
    /* Adds this lab's devices and hypercalls to a VM (vm_devices_add_standard calls it). */
    int (*vm_init)(struct mvm_vm *vm);
    /* The VMM's KVM calls (lab 1). */
    struct mvm_lab_kvm kvm;
};

/*
 * Registers a lab (kept by pointer; it must outlive every VM). A second
 * registration of the same lab and kind (reference or student) replaces the
 * first. Returns 0, or -EINVAL/-ENOSPC with a message.
 */
int mvm_lab_register(const struct mvm_lab_ops *ops);

/* The ops registered for `lab`: the student's if any, else the reference; NULL if none. */
const struct mvm_lab_ops *mvm_lab_get(int lab);

/*
 * For tests that grade one part at a time: new VMs take lab `lab`'s one member at byte `offset` of struct
 * mvm_lab_ops (`size` bytes; MVM_LAB_PART names it) from the student's version, and the rest of that lab from
 * the kit: the reference's members, the core's built-in KVM calls (so the core's exit switch reaches the
 * handler under test). mvm_lab_part(0, 0, 0) ends it. Returns 0, or -EINVAL with a message.
 */
int mvm_lab_part(int lab, size_t offset, size_t size);
#define MVM_LAB_PART(lab, member)                                                                                      \
    mvm_lab_part((lab), offsetof(struct mvm_lab_ops, member), sizeof(((struct mvm_lab_ops *)0)->member))

/*
 * The rest of the exit switch, for a lab's exit_switch to call on the reasons it does not handle: the other
 * labs' handlers, MMIO, SHUTDOWN, INTERNAL_ERROR... as the core's switch does. Returns as an mvm_exit_fn.
 */
int vcpu_exit_default(struct mvm_vcpu *vcpu, struct kvm_run *run);

/* The composed ops a new VM takes (see struct mvm_lab_ops), written into *out. */
void mvm_labs_compose(struct mvm_lab_ops *out);

/* One line naming each registered lab and whose version is used: "lab1-realmode: yours, lab2-protected: reference". */
void mvm_labs_describe(char *buf, size_t len);

/* The ops the VM was created with. */
const struct mvm_lab_ops *vm_lab_ops(const struct mvm_vm *vm);

/*
 * Puts a fresh vCPU in `mode` at `entry` through the VM's lab ops. -ENOSYS with
 * a message naming the mode when no registered lab provides that set-up.
 */
int vcpu_setup_mode(struct mvm_vcpu *vcpu, enum mvm_mode mode, uint64_t entry);

/* The mode's name as the CLI spells it: "real", "protected", "long". */
const char *mvm_mode_name(enum mvm_mode mode);

#endif
