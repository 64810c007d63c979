/*
 * KVM's hypercalls on the soft backend (x86.c kvm_emulate_hypercall) and what KVM on AMD does with the other
 * vendor's instruction: VMMCALL is the hypercall; VMCALL is patched into VMMCALL by the emulator (emulate.c
 * em_hypercall, x86.c emulator_fix_hypercall) unless KVM_X86_QUIRK_FIX_HYPERCALL_INSN is disabled. Also
 * KVM_CAP_ENFORCE_PV_FEATURE_CPUID: PV MSRs and hypercalls only where the vCPU's KVM_CPUID_FEATURES has them.
 */
#include "soft_pv.h"
#include "soft_uc_state.h"

#include <asm/kvm_para.h>
#include <errno.h>
#include <linux/kvm_para.h>
#include <sched.h>
#include <string.h>

int soft_pv_msr_feature(uint32_t idx)
{
    switch (idx) {
    case MSR_KVM_WALL_CLOCK:
    case MSR_KVM_SYSTEM_TIME:
        return KVM_FEATURE_CLOCKSOURCE;
    case MSR_KVM_WALL_CLOCK_NEW:
    case MSR_KVM_SYSTEM_TIME_NEW:
        return KVM_FEATURE_CLOCKSOURCE2;
    case MSR_KVM_ASYNC_PF_EN:
        return KVM_FEATURE_ASYNC_PF;
    case MSR_KVM_ASYNC_PF_INT:
    case MSR_KVM_ASYNC_PF_ACK:
        return KVM_FEATURE_ASYNC_PF_INT;
    case MSR_KVM_STEAL_TIME:
        return KVM_FEATURE_STEAL_TIME;
    case MSR_KVM_PV_EOI_EN:
        return KVM_FEATURE_PV_EOI;
    case MSR_KVM_POLL_CONTROL:
        return KVM_FEATURE_POLL_CONTROL;
    default:
        return -1;
    }
}

bool soft_pv_cpuid_features(const struct kvm_cpuid_entry2 *tab, int n, uint32_t *eax)
{
    /* kvm_update_kvm_cpuid_base: the first base, in steps of 0x100, whose signature is KVM's. */
    for (uint32_t base = 0x40000000; base < 0x40010000; base += 0x100) {
        const struct kvm_cpuid_entry2 *sig = NULL;
        for (int i = 0; i < n && !sig; i++)
            if (tab[i].function == base)
                sig = &tab[i];
        if (!sig || sig->ebx != 0x4b4d564b || sig->ecx != 0x564b4d56 || sig->edx != 0x4d) /* "KVMKVMKVM\0\0\0" */
            continue;
        for (int i = 0; i < n; i++) {
            if (tab[i].function == (base | KVM_CPUID_FEATURES)) {
                *eax = tab[i].eax;
                return true;
            }
        }
        return false;
    }
    return false;
}

void soft_pv_cpuid_update(struct soft_vcpu *v)
{
    soft_mwait_cpuid_update(v); /* kvm_set_cpuid's runtime bits, before kvm_vcpu_after_set_cpuid */
    uint32_t eax;
    /* kvm_update_pv_runtime: with no such leaf the features stay as they were. */
    if (soft_pv_cpuid_features(v->cpuid, v->ncpuid, &eax))
        v->pv_features = eax;
}

int soft_msr_vmm(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write)
{
    if (!soft_pv_msr_allowed(v, idx))
        return -1; /* kvm_get/set_msr_common refuse the VMM too */
    if (idx == SOFT_MSR_MISC_ENABLE)
        return soft_misc_enable_msr(v, val, write, true) < 0 ? -1 : 1;
    return 0;
}

bool soft_pv_msr_allowed(const struct soft_vcpu *v, uint32_t idx)
{
    int bit = soft_pv_msr_feature(idx);
    return bit < 0 || !v->pv_enforce || ((v->pv_features >> bit) & 1);
}

struct soft_hc soft_hypercall_decide(uint64_t nr, unsigned cpl, bool op64, bool enforce, uint32_t features)
{
    struct soft_hc hc = {.ret = (uint64_t)-KVM_ENOSYS};
    if (!op64)
        nr = (uint32_t)nr;
    if (cpl != 0) {
        hc.ret = (uint64_t)-KVM_EPERM;
    } else if (nr == KVM_HC_VAPIC_POLL_IRQ) {
        hc.ret = 0;
    } else if (nr == KVM_HC_SCHED_YIELD) {
        if (!enforce || ((features >> KVM_FEATURE_PV_SCHED_YIELD) & 1)) {
            hc.ret = 0;
            hc.yield = true;
        }
    }
    if (!op64)
        hc.ret = (uint32_t)hc.ret;
    return hc;
}

/* An exception at the instruction, for soft_run_once to deliver. */
static void soft_hc_fault(struct soft_vcpu *v, int vec, bool has_error, uint32_t error)
{
    v->stop = STOP_EXCEPTION;
    v->exc_vector = vec;
    v->exc_has_error = has_error;
    v->exc_error = (int)error;
    v->exc_soft = false;
    v->exc_insn_len = 0;
}

void soft_skip_single_step(struct soft_vcpu *v)
{
    if (!(soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_TF))
        return;
    soft_wr(v, UC_X86_REG_DR6, soft_rd(v, UC_X86_REG_DR6) | X86_DR6_ACTIVE_LOW | X86_DR6_BS);
    soft_hc_fault(v, X86_VEC_DB, false, 0);
}

/* VMCALL on AMD: the emulator's em_hypercall (Priv: #GP(0) at CPL > 0), then emulator_fix_hypercall. */
static void soft_fix_hypercall(struct soft_vcpu *v, uint64_t rip, uint32_t hf)
{
    if (hf & HF_CPL_MASK) {
        soft_hc_fault(v, X86_VEC_GP, true, 0);
        return;
    }
    if (v->vm->disabled_quirks & KVM_X86_QUIRK_FIX_HYPERCALL_INSN) {
        soft_hc_fault(v, X86_VEC_UD, false, 0);
        return;
    }
    /* KVM writes the native instruction at RIP taken as a linear address (kvm_rip_read), as a supervisor write. */
    static const uint8_t vmmcall[3] = {0x0f, 0x01, 0xd9};
    uint8_t insn[3];
    uint64_t pf_addr;
    uint32_t pferr;
    memcpy(insn, vmmcall, sizeof insn);
    int r = soft_lin_rw(v, rip, insn, sizeof insn, true, false, &pf_addr, &pferr);
    if (r == 1) {
        soft_wr(v, UC_X86_REG_CR2, pf_addr);
        soft_hc_fault(v, X86_VEC_PF, true, pferr);
        return;
    }
    if (r < 0) {
        soft_internal_error(v, "VMCALL outside RAM: the soft backend cannot patch it into VMMCALL");
        v->stop = STOP_EXIT;
        return;
    }
    /* The engine's translation of the bytes written goes (soft_apply_pending_hooks), and the guest runs VMMCALL. */
    uint64_t lin = rip;
    if (v->flush_end > v->flush_begin) {
        v->flush_begin = v->flush_begin < lin ? v->flush_begin : lin;
        v->flush_end = v->flush_end > lin + 3 ? v->flush_end : lin + 3;
    } else {
        v->flush_begin = lin;
        v->flush_end = lin + 3;
    }
    v->stop = STOP_RESTART;
    soft_skip_single_step(v); /* x86_emulate_instruction: the emulated instruction completed, RIP unchanged */
}

bool soft_hypercall_insn_is(uint8_t modrm)
{
    return modrm == 0xc1 || modrm == 0xd9 || modrm == 0xc8 || modrm == 0xc9;
}

void soft_hypercall_insn(struct soft_vcpu *v, uint64_t rip, uint8_t modrm)
{
    uint32_t hf = img_u32(v, soft_layout.hflags);
    if (__atomic_load_n(&v->run->immediate_exit, __ATOMIC_RELAXED)) {
        /* KVM_RUN only completes the last exit (soft_vcpu_run): KVM would be out before this instruction. */
        v->stop = STOP_EINTR;
        return;
    }
    if (modrm == 0xc8 || modrm == 0xc9) {
        soft_monitor_mwait(v, rip);
        return;
    }
    if (modrm == 0xc1) {
        soft_fix_hypercall(v, rip, hf);
        return;
    }
    if (soft_hv_hypercall_enabled(v)) { /* Hyper-V's hypercalls instead of KVM's (soft_hyperv.c) */
        soft_hv_hypercall(v, rip);
        return;
    }
    struct soft_hc hc = soft_hypercall_decide(soft_rd(v, UC_X86_REG_RAX), hf & HF_CPL_MASK, (hf & HF_CS64_MASK) != 0,
                                              v->pv_enforce, v->pv_features);
    if (hc.yield)
        sched_yield();
    soft_wr(v, UC_X86_REG_RAX, hc.ret);
    soft_wr(v, UC_X86_REG_RIP, rip + 3);
    v->stats.hypercall++;
    v->stop = STOP_RESTART;
    soft_skip_single_step(v); /* KVM skips the instruction and then single-steps: #DB, RIP after it */
}
