/* How a lab plugs into the core: one ops structure per lab, registered once; the core knows no lab by name. */
#ifndef MINIVMM_LAB_H
#define MINIVMM_LAB_H

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
};

/*
 * Registers a lab (kept by pointer; it must outlive every VM). A second
 * registration of the same lab and kind (reference or student) replaces the
 * first. Returns 0, or -EINVAL/-ENOSPC with a message.
 */
int mvm_lab_register(const struct mvm_lab_ops *ops);

/* The ops registered for `lab`: the student's if any, else the reference; NULL if none. */
const struct mvm_lab_ops *mvm_lab_get(int lab);

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
