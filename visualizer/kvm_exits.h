/* The record the kernel-side exit tracer (kvm_exits.bpf.c) hands to userspace through its BPF ring buffer. */
#ifndef MINIVMM_KVM_EXITS_H
#define MINIVMM_KVM_EXITS_H

/* One hardware exit of a vCPU thread of the traced process, from kvm:kvm_exit to what ended it. */
struct mvm_kexit_event {
    __u64 entry_ns;    /* the kvm_entry before the exit (0 when not seen) */
    __u64 exit_ns;     /* kvm_exit */
    __u64 done_ns;     /* the next kvm_entry (handled in the kernel) or kvm_userspace_exit */
    __u64 rip;         /* guest RIP at the exit */
    __u64 info1;       /* exit qualification / EXITINFO1 */
    __u64 info2;       /* EXITINFO2 (SVM) */
    __u32 reason;      /* hardware exit reason (VMX basic reason or SVM exit code) */
    __u32 isa;         /* 1 VMX, 2 SVM, as KVM's trace reports it */
    __u32 vcpu;        /* KVM's vcpu_id */
    __u32 user_reason; /* KVM_EXIT_* when to_user */
    __s32 user_errno;  /* kvm_userspace_exit's errno (-EINTR: a signal ended KVM_RUN) */
    __u32 to_user;     /* 1: the exit went on to the VMM (KVM_RUN returned) */
};

/* Slots of the `counts` array map. */
enum {
    MVM_KEXIT_SEEN = 0,    /* kvm_exit events of the process */
    MVM_KEXIT_TO_USER = 1, /* kvm_userspace_exit events with a reason (not -EINTR) */
    MVM_KEXIT_DROPPED = 2, /* events the ring buffer had no room for */
    MVM_KEXIT_NCOUNTS = 4,
};

#endif
