/*
 * The soft backend's paravirtual surface and exits to user space for MSRs: KVM_X86_SET_MSR_FILTER and
 * KVM_CAP_X86_USER_SPACE_MSR (soft_msr_filter.c), KVM's hypercalls and the VMCALL fix-up quirk, KVM_CAP_ENFORCE_
 * PV_FEATURE_CPUID (soft_hypercall.c), and KVM_GET_SUPPORTED_HV_CPUID (soft_hv_cpuid.c). The pure parts (the
 * filter, the decisions, the Hyper-V leaves) take no vCPU and are unit-tested alone.
 */
#ifndef MINIVMM_SOFT_PV_H
#define MINIVMM_SOFT_PV_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

struct soft_vm;
struct soft_vcpu;

/* KVM_X86_SET_MSR_FILTER's filter as KVM keeps it (struct kvm_x86_msr_filter): the bitmaps copied in. */
struct soft_msr_filter {
    bool default_allow;
    uint32_t count;
    struct {
        uint32_t flags, base, nmsrs;
        uint8_t *bitmap; /* bit i: MSR base + i is allowed */
    } ranges[KVM_MSR_FILTER_MAX_RANGES];
};

/*
 * A filter from KVM_X86_SET_MSR_FILTER's argument, checked as kvm_vm_ioctl_set_msr_filter checks it: unknown flags,
 * a deny-by-default filter with no range, a range with no access type or a bitmap over
 * KVM_MSR_FILTER_MAX_BITMAP_SIZE are -EINVAL; ranges with no MSRs are left out. 0 with *out set, or -errno.
 */
int soft_msr_filter_build(const struct kvm_msr_filter *arg, struct soft_msr_filter **out);
void soft_msr_filter_free(struct soft_msr_filter *f);
/* kvm_msr_allowed: may the guest access MSR idx (type KVM_MSR_FILTER_READ or _WRITE)? NULL filter: yes. */
bool soft_msr_filter_allows(const struct soft_msr_filter *f, uint32_t idx, uint32_t type);
/* KVM_X86_SET_MSR_FILTER on a VM: replaces the VM's filter (under the VM lock). 0 or -errno. */
int soft_vm_set_msr_filter(struct soft_vm *vm, const struct kvm_msr_filter *arg);

/* Why an MSR access did not complete in the kernel, as x86.c's kvm_msr_reason sorts it. */
enum soft_msr_ret {
    SOFT_MSR_OK,          /* done in the kernel */
    SOFT_MSR_INVALID,     /* KVM refused the access (returned 1): KVM_MSR_EXIT_REASON_INVAL */
    SOFT_MSR_UNSUPPORTED, /* KVM_MSR_RET_UNSUPPORTED, an MSR KVM does not know: KVM_MSR_EXIT_REASON_UNKNOWN */
    SOFT_MSR_FILTERED,    /* KVM_MSR_RET_FILTERED, denied by the filter: KVM_MSR_EXIT_REASON_FILTER */
};
/* The KVM_MSR_EXIT_REASON_* bit of a failed access (kvm_msr_reason). */
uint32_t soft_msr_exit_reason(enum soft_msr_ret r);

/* The KVM_FEATURE_* bit of KVM_CPUID_FEATURES.EAX that a paravirtual MSR needs (kvm_set/get_msr_common), or -1. */
int soft_pv_msr_feature(uint32_t idx);
/*
 * KVM's kvm_update_pv_runtime from a CPUID table: true with *eax set to the KVM_CPUID_FEATURES leaf's EAX at the
 * base whose signature is "KVMKVMKVM" (0x40000000 + n * 0x100), false when there is no such leaf.
 */
bool soft_pv_cpuid_features(const struct kvm_cpuid_entry2 *tab, int n, uint32_t *eax);

/* What a hypercall does (kvm_emulate_hypercall), decided from its number, the CPL and the PV features. */
struct soft_hc {
    uint64_t ret; /* RAX after it, already cut to 32 bits outside 64-bit mode */
    bool yield;   /* KVM_HC_SCHED_YIELD: the vCPU gives up the host CPU (kvm_sched_yield) */
};
/*
 * nr: RAX; cpl; op64: 64-bit code (CS.L in long mode); enforce/features: KVM_CAP_ENFORCE_PV_FEATURE_CPUID and the
 * KVM_CPUID_FEATURES bits it checks. KVM_HC_VAPIC_POLL_IRQ answers 0 and KVM_HC_SCHED_YIELD yields and answers 0;
 * every other number (KICK_CPU and SEND_IPI too, which this backend does not implement) -KVM_ENOSYS; CPL > 0
 * -KVM_EPERM.
 */
struct soft_hc soft_hypercall_decide(uint64_t nr, unsigned cpl, bool op64, bool enforce, uint32_t features);

/* The quirks whose both behaviours this backend has: what KVM_CHECK_EXTENSION(KVM_CAP_DISABLE_QUIRKS2) answers. */
#define SOFT_VALID_QUIRKS                                                                                              \
    (KVM_X86_QUIRK_FIX_HYPERCALL_INSN | KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS | KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT)

/* Hooks for the rest of the backend (soft_msr_filter.c, soft_hypercall.c). */
/*
 * A guest RDMSR (write false) or WRMSR of MSR idx at CPL 0, from the RDMSR/WRMSR code hook, as KVM's
 * kvm_emulate_rdmsr/wrmsr: the filter, the PV feature check, the guest's access (soft_msr_guest), and where KVM
 * would fail the access and the VM asked for that reason (KVM_CAP_X86_USER_SPACE_MSR), a KVM_EXIT_X86_RDMSR/WRMSR
 * exit that the next KVM_RUN completes (RDMSR: *val from run->msr.data; run->msr.error: #GP). As soft_msr_guest:
 * 1 done (*val read), 0 an MSR the engine keeps (it runs the instruction), -1 #GP(0).
 */
int soft_msr_guest_user(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write);
/*
 * soft_msr_guest_user's answer when the access would exit but KVM_RUN only completes the last exit
 * (immediate_exit): the engine stops before the instruction, which runs on the next KVM_RUN.
 */
#define SOFT_MSR_GUEST_STOPPED 2
/* False when the vCPU enforces PV features (KVM_CAP_ENFORCE_PV_FEATURE_CPUID) and its CPUID lacks idx's. */
bool soft_pv_msr_allowed(const struct soft_vcpu *v, uint32_t idx);
/* KVM_SET_CPUID2 or KVM_CAP_ENFORCE_PV_FEATURE_CPUID changed the vCPU's table: refresh its PV features. */
void soft_pv_cpuid_update(struct soft_vcpu *v);
/* True for the third byte of the 0f 01 instructions KVM on AMD answers after the engine's #UD (below). */
bool soft_hypercall_insn_is(uint8_t modrm);
/*
 * 0f 01 modrm at rip raised #UD in the engine (image loaded). As KVM on AMD: VMMCALL (d9) is the hypercall; VMCALL
 * (c1) is rewritten into VMMCALL and run again (KVM_X86_QUIRK_FIX_HYPERCALL_INSN), or #UD with the quirk disabled,
 * #GP(0) at CPL > 0; MONITOR (c8) and MWAIT (c9) go to soft_monitor_mwait. Sets v->stop and any exception.
 */
void soft_hypercall_insn(struct soft_vcpu *v, uint64_t rip, uint8_t modrm);
/* After KVM skipped or emulated an instruction: its single-step #DB when TF is set (kvm_vcpu_do_singlestep). */
void soft_skip_single_step(struct soft_vcpu *v);

/* soft_mwait.c: MONITOR/MWAIT and IA32_MISC_ENABLE, with KVM's two MWAIT quirks. */
#define SOFT_MSR_MISC_ENABLE 0x1a0u
/* True for the third byte of MONITOR (0f 01 c8) and MWAIT (0f 01 c9): the engine runs them, a code hook stops it. */
bool soft_mwait_insn_is(uint8_t modrm);
/*
 * MONITOR or MWAIT at rip (3 bytes), from the code hook before the engine runs it (image loaded): a NOP, or #UD at
 * CPL > 0 or when the quirk is off and CPUID lacks MWAIT. Sets v->stop; the caller stops the engine.
 */
void soft_monitor_mwait(struct soft_vcpu *v, uint64_t rip);
/*
 * IA32_MISC_ENABLE read or written by the guest (host false) or the VMM: 0 done (*val read), -1 refused (a guest
 * write of a read-only bit; with KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT off, an MWAIT change without SSE3 in CPUID).
 */
int soft_misc_enable_msr(struct soft_vcpu *v, uint64_t *val, bool write, bool host);
/* With KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT off: CPUID.1.ECX.MWAIT as IA32_MISC_ENABLE.MWAIT says. */
void soft_mwait_cpuid_update(struct soft_vcpu *v);
/*
 * The VMM's KVM_GET/SET_MSRS of idx, where this file's rules apply: 1 done (*val read), -1 refused (KVM_GET/SET_MSRS
 * stops there), 0 not one of them.
 */
int soft_msr_vmm(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write);

/*
 * KVM_GET_SUPPORTED_HV_CPUID's ten leaves (hyperv.c kvm_get_hv_cpuid), as this backend supports Hyper-V: the
 * identification, version, limits and debugging-interface leaves as KVM's, the enlightenments soft_hyperv.c
 * implements (no SynIC, synthetic timers or debugger), the SMT recommendation from the host as KVM's, and the nested
 * leaf's two bits KVM always sets. smt_possible: the host may run another thread on a core.
 */
#define SOFT_HV_CPUID_NENT 10
void soft_hv_cpuid_entries(bool smt_possible, struct kvm_cpuid_entry2 out[SOFT_HV_CPUID_NENT]);
/* The ioctl on /dev/kvm or a vCPU fd: E2BIG below ten entries, else the ten and nent = 10. */
int soft_get_supported_hv_cpuid(struct kvm_cpuid2 *c);

#endif
