/*
 * Hyper-V's hypercalls as KVM answers them (hyperv.c kvm_hv_hypercall), through the hypercall page soft_hyperv.c
 * writes (VMMCALL; RET): the access checks against the vCPU's Hyper-V CPUID, the remote TLB flushes, the IPIs, the
 * long-spin notification, and the calls KVM hands to user space (KVM_EXIT_HYPERV_HCALL).
 */
#include "soft_hyperv.h"
#include "soft_irqchip.h"
#include "soft_irqchip_priv.h"
#include "soft_lapic.h"
#include "soft_priv.h"
#include "soft_pv.h"
#include "soft_uc_state.h"

#include <sched.h>
#include <string.h>

#define HV_HYPERCALL_RSVD_MASK      (0x1full << 27 | 0xfull << 44 | 0xfull << 60)
#define HV_GENERIC_SET_SPARSE_4K    0
#define HV_GENERIC_SET_ALL          1
#define HV_FLUSH_ALL_PROCESSORS     1ull
#define HV_IPI_LOW_VECTOR           0x10
#define HV_IPI_HIGH_VECTOR          0xff
#define HV_SYNDBG_OPTION_USE_HCALLS (1ull << 2)
#define HV_BANKS                    ((SOFT_MAX_VCPUS + 63) / 64)

/* A hypercall's decoded control word and parameters (struct kvm_hv_hcall). */
struct hv_hcall {
    uint64_t param, ingpa, outgpa;
    uint16_t code, var_cnt, rep_cnt, rep_idx;
    bool fast, rep;
    uint64_t xmm[12]; /* XMM0-5, low then high halves */
};

static bool hv_read(struct soft_vm *vm, uint64_t gpa, void *out, uint64_t len)
{
    uint8_t *p = soft_gpa_to_hva(vm, gpa, len);
    if (!p)
        return false;
    memcpy(out, p, len);
    return true;
}

/* The vCPUs whose VP index is in the sparse set (sparse_set_to_vcpu_mask); all when banks is NULL. */
static uint32_t hv_vcpu_mask(struct soft_vm *vm, const uint64_t *banks, uint64_t valid)
{
    uint64_t bitmap[HV_BANKS] = {0};
    int sbank = 0;
    for (int bank = 0; banks && bank < 64; bank++)
        if ((valid >> bank) & 1) {
            uint64_t b = banks[sbank++];
            if (bank < HV_BANKS)
                bitmap[bank] = b;
        }
    uint32_t mask = 0;
    for (int i = 0; i < SOFT_MAX_VCPUS; i++) {
        struct soft_vcpu *t = vm->vcpus[i];
        if (!t)
            continue;
        uint32_t vp = soft_hv_vp_index(t);
        if (!banks || (vp / 64 < HV_BANKS && ((bitmap[vp / 64] >> (vp % 64)) & 1)))
            mask |= 1u << i;
    }
    return mask;
}

/* kvm_get_sparse_vp_set: var_cnt banks from the XMM registers (fast) or the input page at offset. */
static bool hv_sparse_banks(struct soft_vm *vm, const struct hv_hcall *hc, int consumed, uint64_t *banks,
                            uint64_t offset)
{
    if (hc->var_cnt > 64)
        return false;
    if (hc->fast) {
        if (hc->var_cnt > 12 - consumed)
            return false;
        for (int i = 0; i < hc->var_cnt; i++)
            banks[i] = hc->xmm[i + consumed];
        return true;
    }
    return hv_read(vm, hc->ingpa + offset, banks, hc->var_cnt * 8ull);
}

/*
 * KVM_REQ_TLB_FLUSH_GUEST to the targets: each engine keeps its own TLB, flushed whole before its next run
 * (soft_run_once); a running target is kicked so that it stops at its next block.
 */
static void hv_flush_vcpus(struct soft_vcpu *self, uint32_t mask)
{
    for (int i = 0; i < SOFT_MAX_VCPUS; i++) {
        struct soft_vcpu *t = self->vm->vcpus[i];
        if (!t || !((mask >> i) & 1))
            continue;
        __atomic_store_n(&t->hv_tlb_flush, true, __ATOMIC_RELEASE);
        if (t != self && t->kio)
            __atomic_store_n(&t->irq_kick, 1, __ATOMIC_RELEASE);
    }
}

/* kvm_hv_flush_tlb. */
static uint64_t hv_flush_tlb(struct soft_vcpu *v, const struct hv_hcall *hc)
{
    uint64_t banks[64], valid;
    bool all;
    if (hc->code == HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST || hc->code == HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE) {
        uint64_t f[3]; /* address_space, flags, processor_mask */
        if (hc->fast) {
            f[0] = hc->ingpa;
            f[1] = hc->outgpa;
            f[2] = hc->xmm[0];
        } else if (!hv_read(v->vm, hc->ingpa, f, sizeof f)) {
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        }
        valid = 1;
        banks[0] = f[2];
        all = (f[1] & HV_FLUSH_ALL_PROCESSORS) || f[2] == 0; /* KVM's work-around: mask 0 means all */
    } else {
        uint64_t f[4]; /* address_space, flags, vp_set.format, vp_set.valid_bank_mask */
        if (hc->fast) {
            f[0] = hc->ingpa;
            f[1] = hc->outgpa;
            f[2] = hc->xmm[0];
            f[3] = hc->xmm[1];
        } else if (!hv_read(v->vm, hc->ingpa, f, sizeof f)) {
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        }
        valid = f[3];
        all = f[2] != HV_GENERIC_SET_SPARSE_4K;
        if (hc->var_cnt != __builtin_popcountll(valid))
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        if (!all) {
            if (!hc->var_cnt)
                return HV_STATUS_SUCCESS | ((uint64_t)hc->rep_cnt << 32);
            if (!hv_sparse_banks(v->vm, hc, 2, banks, 32))
                return HV_STATUS_INVALID_HYPERCALL_INPUT;
        }
    }
    hv_flush_vcpus(v, hv_vcpu_mask(v->vm, all ? NULL : banks, valid));
    return HV_STATUS_SUCCESS | ((uint64_t)hc->rep_cnt << 32); /* a full flush: all reps done */
}

/* kvm_hv_send_ipi: fixed interrupts to the local APICs (kvm_send_ipi_to_many). */
static uint64_t hv_send_ipi(struct soft_vcpu *v, const struct hv_hcall *hc)
{
    uint64_t banks[64], valid = 1;
    uint32_t vector;
    bool all = false;
    struct soft_irqchip *c = v->vm->chip;
    if (!soft_irqchip_in_kernel(v) || !c)
        return HV_STATUS_INVALID_HYPERCALL_INPUT;
    if (hc->code == HVCALL_SEND_IPI) {
        if (!hc->fast) {
            uint64_t in[2]; /* vector, reserved; cpu_mask */
            if (!hv_read(v->vm, hc->ingpa, in, sizeof in))
                return HV_STATUS_INVALID_HYPERCALL_INPUT;
            vector = (uint32_t)in[0];
            banks[0] = in[1];
        } else {
            if (hc->ingpa >> 32)
                return HV_STATUS_INVALID_HYPERCALL_INPUT;
            vector = (uint32_t)hc->ingpa;
            banks[0] = hc->outgpa;
        }
    } else {
        uint64_t in[3]; /* vector, reserved, flags; vp_set.format; vp_set.valid_bank_mask */
        if (!hc->fast) {
            if (!hv_read(v->vm, hc->ingpa, in, sizeof in))
                return HV_STATUS_INVALID_HYPERCALL_INPUT;
        } else {
            in[0] = (uint32_t)hc->ingpa;
            in[1] = hc->outgpa;
            in[2] = hc->xmm[0];
        }
        vector = (uint32_t)in[0];
        valid = in[2];
        all = in[1] == HV_GENERIC_SET_ALL;
        if (hc->var_cnt != __builtin_popcountll(valid))
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        if (!all) {
            if (!hc->var_cnt)
                return HV_STATUS_SUCCESS;
            if (!hv_sparse_banks(v->vm, hc, 1, banks, 24))
                return HV_STATUS_INVALID_HYPERCALL_INPUT;
        }
    }
    if (vector < HV_IPI_LOW_VECTOR || vector > HV_IPI_HIGH_VECTOR)
        return HV_STATUS_INVALID_HYPERCALL_INPUT;
    uint32_t mask = hv_vcpu_mask(v->vm, all ? NULL : banks, valid);
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < SOFT_MAX_VCPUS; i++)
        if (((mask >> i) & 1) && c->vcpu[i])
            soft_lapic_accept(soft_chip_lapic_of(c, i), (int)vector, false);
    soft_chip_kick_all(c, v);
    pthread_mutex_unlock(&c->lock);
    return HV_STATUS_SUCCESS;
}

/* kvm_hvcall_signal_event: no KVM_HYPERV_EVENTFD here, so every connection is unknown to the kernel. */
static uint64_t hv_signal_event(struct soft_vcpu *v, struct hv_hcall *hc)
{
    if (!hc->fast) {
        if ((hc->ingpa & 7) || (hc->ingpa & 0xfff) + 8 > 4096 || !hv_read(v->vm, hc->ingpa, &hc->ingpa, 8))
            return HV_STATUS_INVALID_ALIGNMENT;
    }
    if (hc->ingpa & 0xffff00000000ull)
        return HV_STATUS_INVALID_PORT_ID;
    if (hc->ingpa & ~0xffffffull) /* KVM_HYPERV_CONN_ID_MASK */
        return HV_STATUS_INVALID_HYPERCALL_INPUT;
    return HV_STATUS_INVALID_PORT_ID;
}

static void hv_fault(struct soft_vcpu *v, int vec)
{
    v->stop = STOP_EXCEPTION;
    v->exc_vector = vec;
    v->exc_has_error = false;
    v->exc_error = 0;
    v->exc_soft = false;
    v->exc_insn_len = 0;
}

/* KVM_EXIT_HYPERV_HCALL: the VMM answers in run->hyperv.u.hcall.result (kvm_hv_hypercall_complete_userspace). */
static uint64_t hv_hcall_to_vmm(struct soft_vcpu *v, const struct hv_hcall *hc)
{
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_HYPERV;
    memset(&run->hyperv, 0, sizeof run->hyperv);
    run->hyperv.type = KVM_EXIT_HYPERV_HCALL;
    run->hyperv.u.hcall.input = hc->param;
    run->hyperv.u.hcall.params[0] = hc->ingpa;
    run->hyperv.u.hcall.params[1] = hc->outgpa;
    soft_exit_to_vmm(v);
    return run->hyperv.u.hcall.result;
}

static bool hv_xmm_fast(uint16_t code)
{
    return code == HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST || code == HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE ||
           code == HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX || code == HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX ||
           code == HVCALL_SEND_IPI_EX;
}

/* The switch of kvm_hv_hypercall: the status, or -1 for #UD (an XMM fast call the CPUID does not offer). */
static int64_t hv_dispatch(struct soft_vcpu *v, struct hv_hcall *hc)
{
    struct soft_hv_vcpu *h = &v->hv;
    if (!soft_hv_hcall_access(&h->cpuid, h->enforce, hc->code))
        return HV_STATUS_ACCESS_DENIED;
    if (hc->param & HV_HYPERCALL_RSVD_MASK)
        return HV_STATUS_INVALID_HYPERCALL_INPUT;
    if (hc->fast && hv_xmm_fast(hc->code)) {
        if (h->enforce && !(h->cpuid.features_edx & HV_X64_HYPERCALL_XMM_INPUT_AVAILABLE))
            return -1;
        for (int i = 0; i < 6; i++) {
            uint8_t x[16];
            uc_reg_read(v->uc, UC_X86_REG_XMM0 + i, x);
            memcpy(&hc->xmm[2 * i], x, 8);
            memcpy(&hc->xmm[2 * i + 1], x + 8, 8);
        }
    }
    switch (hc->code) {
    case HVCALL_NOTIFY_LONG_SPIN_WAIT:
        if (hc->rep || hc->var_cnt)
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        sched_yield(); /* kvm_vcpu_on_spin */
        return HV_STATUS_SUCCESS;
    case HVCALL_SIGNAL_EVENT: {
        if (hc->rep || hc->var_cnt)
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        uint64_t r = hv_signal_event(v, hc);
        if (r != HV_STATUS_INVALID_PORT_ID)
            return (int64_t)r;
    } /* fall through: the VMM may know the connection */
    /* fall through */
    case HVCALL_POST_MESSAGE:
        if (hc->rep || hc->var_cnt || !h->synic.active)
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        return (int64_t)hv_hcall_to_vmm(v, hc);
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST:
        if (hc->var_cnt)
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        /* fall through */
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX:
        if (!hc->rep_cnt || hc->rep_idx)
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        return (int64_t)hv_flush_tlb(v, hc);
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE:
        if (hc->var_cnt)
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        /* fall through */
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX:
        if (hc->rep)
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        return (int64_t)hv_flush_tlb(v, hc);
    case HVCALL_SEND_IPI:
        if (hc->var_cnt)
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        /* fall through */
    case HVCALL_SEND_IPI_EX:
        if (hc->rep)
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        return (int64_t)hv_send_ipi(v, hc);
    case HVCALL_POST_DEBUG_DATA:
    case HVCALL_RETRIEVE_DEBUG_DATA:
        if (hc->fast)
            return HV_STATUS_INVALID_PARAMETER;
        /* fall through */
    case HVCALL_RESET_DEBUG_SESSION: {
        if (!(h->cpuid.syndbg_cap_eax & HV_X64_SYNDBG_CAP_ALLOW_KERNEL_DEBUGGING))
            return HV_STATUS_INVALID_HYPERCALL_CODE;
        if (!(soft_hv_syndbg_options(v->vm) & HV_SYNDBG_OPTION_USE_HCALLS))
            return HV_STATUS_OPERATION_DENIED;
        return (int64_t)hv_hcall_to_vmm(v, hc);
    }
    default:
        return HV_STATUS_INVALID_HYPERCALL_CODE;
    }
}

void soft_hv_hypercall(struct soft_vcpu *v, uint64_t rip)
{
    uint32_t hf = img_u32(v, soft_layout.hflags);
    /* Hyper-V's rule: #UD at CPL > 0 and in real mode. */
    if ((hf & HF_CPL_MASK) || !(hf & HF_PE_MASK)) {
        hv_fault(v, X86_VEC_UD);
        return;
    }
    bool op64 = (hf & HF_CS64_MASK) != 0;
    struct hv_hcall hc = {0};
    if (op64) {
        hc.param = soft_rd(v, UC_X86_REG_RCX);
        hc.ingpa = soft_rd(v, UC_X86_REG_RDX);
        hc.outgpa = soft_rd(v, UC_X86_REG_R8);
    } else {
        hc.param = soft_rd(v, UC_X86_REG_RDX) << 32 | (uint32_t)soft_rd(v, UC_X86_REG_RAX);
        hc.ingpa = soft_rd(v, UC_X86_REG_RBX) << 32 | (uint32_t)soft_rd(v, UC_X86_REG_RCX);
        hc.outgpa = soft_rd(v, UC_X86_REG_RDI) << 32 | (uint32_t)soft_rd(v, UC_X86_REG_RSI);
    }
    hc.code = (uint16_t)hc.param;
    hc.var_cnt = (uint16_t)((hc.param >> 17) & 0x3ff);
    hc.fast = (hc.param & HV_HYPERCALL_FAST_BIT) != 0;
    hc.rep_cnt = (uint16_t)((hc.param >> 32) & 0xfff);
    hc.rep_idx = (uint16_t)((hc.param >> 48) & 0xfff);
    hc.rep = hc.rep_cnt || hc.rep_idx;
    int64_t r = hv_dispatch(v, &hc);
    if (v->cancel)
        return;
    if (r < 0) {
        hv_fault(v, X86_VEC_UD);
        return;
    }
    uint64_t ret = (uint64_t)r;
    if (op64) {
        soft_wr(v, UC_X86_REG_RAX, ret);
    } else {
        soft_wr(v, UC_X86_REG_RDX, ret >> 32);
        soft_wr(v, UC_X86_REG_RAX, ret & 0xffffffffu);
    }
    soft_wr(v, UC_X86_REG_RIP, rip + 3);
    v->stats.hypercall++;
    v->stop = STOP_RESTART;
    soft_skip_single_step(v);
}
