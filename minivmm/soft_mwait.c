/*
 * MONITOR/MWAIT and IA32_MISC_ENABLE as KVM 6.1 on AMD has them (x86.c kvm_emulate_monitor_mwait, the
 * MSR_IA32_MISC_ENABLE case of kvm_set_msr_common, cpuid.c's runtime MWAIT bit), with their two quirks:
 * KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS and KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT.
 */
#include "soft_cpuid.h"
#include "soft_priv.h"
#include "soft_pv.h"
#include "soft_uc_state.h"

#define MISC_ENABLE_EMON         (1ull << 7)
#define MISC_ENABLE_BTS_UNAVAIL  (1ull << 11)
#define MISC_ENABLE_PEBS_UNAVAIL (1ull << 12)
#define MISC_ENABLE_MWAIT        (1ull << 18)
#define CPUID_1_ECX_SSE3         (1u << 0)
#define CPUID_1_ECX_MWAIT        (1u << 3)

/* KVM's value at vCPU creation (kvm_vcpu_reset); v->misc_enable_delta holds the difference from it. */
#define MISC_ENABLE_RESET (MISC_ENABLE_PEBS_UNAVAIL | MISC_ENABLE_BTS_UNAVAIL)

static bool soft_quirk_on(const struct soft_vcpu *v, uint64_t quirk)
{
    return !(v->vm->disabled_quirks & quirk);
}

static bool soft_guest_cpuid_has(const struct soft_vcpu *v, uint32_t ecx_bit)
{
    const struct kvm_cpuid_entry2 *e = soft_cpuid_find(v->cpuid, v->ncpuid, 1, 0);
    return e && (e->ecx & ecx_bit);
}

void soft_mwait_cpuid_update(struct soft_vcpu *v)
{
    /* __kvm_update_cpuid_runtime: without the quirk, CPUID.1.ECX.MWAIT follows IA32_MISC_ENABLE.MWAIT. */
    if (soft_quirk_on(v, KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT))
        return;
    uint64_t misc = v->misc_enable_delta ^ MISC_ENABLE_RESET;
    for (int i = 0; i < v->ncpuid; i++) {
        if (v->cpuid[i].function != 1)
            continue;
        if (misc & MISC_ENABLE_MWAIT)
            v->cpuid[i].ecx |= CPUID_1_ECX_MWAIT;
        else
            v->cpuid[i].ecx &= ~CPUID_1_ECX_MWAIT;
        break;
    }
}

int soft_misc_enable_msr(struct soft_vcpu *v, uint64_t *val, bool write, bool host)
{
    uint64_t old = v->misc_enable_delta ^ MISC_ENABLE_RESET, data = *val;
    if (!write) {
        *val = old;
        return 0;
    }
    if (!host) {
        if ((old ^ data) & MISC_ENABLE_RESET)
            return -1; /* PEBS_UNAVAIL and BTS_UNAVAIL are read-only to the guest */
        data = (data & ~MISC_ENABLE_EMON) | (old & MISC_ENABLE_EMON); /* EMON: the guest's writes are ignored */
    }
    bool mwait_follows = !soft_quirk_on(v, KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT) && ((old ^ data) & MISC_ENABLE_MWAIT);
    if (mwait_follows && !soft_guest_cpuid_has(v, CPUID_1_ECX_SSE3))
        return -1; /* KVM: MWAIT only for a vCPU with SSE3 */
    v->misc_enable_delta = data ^ MISC_ENABLE_RESET;
    if (mwait_follows)
        soft_mwait_cpuid_update(v); /* kvm_update_cpuid_runtime */
    return 0;
}

bool soft_mwait_insn_is(uint8_t modrm)
{
    return modrm == 0xc8 || modrm == 0xc9;
}

void soft_monitor_mwait(struct soft_vcpu *v, uint64_t rip)
{
    uint32_t hf = img_u32(v, soft_layout.hflags);
    if (__atomic_load_n(&v->run->immediate_exit, __ATOMIC_RELAXED)) {
        v->stop = STOP_EINTR; /* KVM_RUN only completes the last exit: KVM would be out before this instruction */
        return;
    }
    /* At CPL > 0 the CPU raises #UD before KVM's intercept; at 0 KVM answers (kvm_emulate_monitor_mwait). */
    if ((hf & HF_CPL_MASK) ||
        (!soft_quirk_on(v, KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS) && !soft_guest_cpuid_has(v, CPUID_1_ECX_MWAIT))) {
        v->stop = STOP_EXCEPTION;
        v->exc_vector = X86_VEC_UD;
        v->exc_has_error = false;
        v->exc_soft = false;
        v->exc_insn_len = 0;
        return;
    }
    soft_wr(v, UC_X86_REG_RIP, rip + 3); /* a NOP (kvm_emulate_as_nop) */
    v->stop = STOP_RESTART;
    soft_skip_single_step(v);
}
