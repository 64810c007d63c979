/*
 * Hyper-V's enlightenments as KVM emulates them (arch/x86/kvm/hyperv.c) on the soft backend: the synthetic MSRs,
 * the reference TSC page, the hypercall page and the hypercalls, checked against the Hyper-V CPUID the VMM set when
 * it asked for KVM_CAP_HYPERV_ENFORCE_CPUID. SynIC's and the synthetic timers' registers are kept as KVM keeps them,
 * but no synthetic timer ever fires and no SynIC message is delivered: KVM_CHECK_EXTENSION answers 0 for
 * KVM_CAP_HYPERV_SYNIC and SYNIC2 (KVM_ENABLE_CAP still takes them, for their registers).
 */
#include "soft_hyperv.h"
#include "soft_irqchip.h"
#include "soft_irqchip_priv.h"
#include "soft_lapic.h"
#include "soft_priv.h"
#include "soft_uc_state.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define HV_CPUID_INTERFACE            0x40000001u
#define HV_CPUID_FEATURES             0x40000003u
#define HV_CPUID_ENLIGHTMENT_INFO     0x40000004u
#define HV_CPUID_SYNDBG_PLATFORM_CAPS 0x40000082u
#define HV_CPUID_SIGNATURE_EAX        0x31237648u /* "Hv#1" */

#define HV_X64_MSR_HYPERCALL_ENABLE     1ull
#define HV_X64_MSR_TSC_REFERENCE_ENABLE 1ull
#define HV_CRASH_CTL_CRASH_NOTIFY       (1ull << 63)
#define HV_SYNIC_ENABLE                 1ull /* SIEFP, SIMP and SCONTROL's enable bit */
#define HV_SYNIC_SINT_MASKED            (1ull << 16)
#define HV_SYNIC_VERSION_1              1ull
#define HV_APIC_BUS_FREQUENCY           1000000000ull /* KVM's APIC_BUS_FREQUENCY: 1 GHz */

/* KVM's hv_lock: the VM-wide MSRs and the TSC page. */
static pthread_mutex_t hv_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct kvm_cpuid_entry2 *hv_find(const struct kvm_cpuid_entry2 *tab, int n, uint32_t fn)
{
    for (int i = 0; i < n; i++)
        if (tab[i].function == fn)
            return &tab[i];
    return NULL;
}

bool soft_hv_cpuid_parse(const struct kvm_cpuid_entry2 *tab, int n, struct soft_hv_cpuid *c)
{
    memset(c, 0, sizeof *c);
    const struct kvm_cpuid_entry2 *e = hv_find(tab, n, HV_CPUID_INTERFACE);
    if (!e || e->eax != HV_CPUID_SIGNATURE_EAX)
        return false;
    if ((e = hv_find(tab, n, HV_CPUID_FEATURES))) {
        c->features_eax = e->eax;
        c->features_ebx = e->ebx;
        c->features_edx = e->edx;
    }
    if ((e = hv_find(tab, n, HV_CPUID_ENLIGHTMENT_INFO))) {
        c->enlightenments_eax = e->eax;
        c->enlightenments_ebx = e->ebx;
    }
    if ((e = hv_find(tab, n, HV_CPUID_SYNDBG_PLATFORM_CAPS)))
        c->syndbg_cap_eax = e->eax;
    return true;
}

bool soft_hv_msr_is(uint32_t idx)
{
    return (idx >= HV_X64_MSR_GUEST_OS_ID && idx <= HV_X64_MSR_SINT15) ||
           (idx >= HV_X64_MSR_STIMER0_CONFIG && idx <= HV_X64_MSR_STIMER3_COUNT) ||
           (idx >= HV_X64_MSR_SYNDBG_CONTROL && idx <= HV_X64_MSR_SYNDBG_PENDING_BUFFER) ||
           idx == HV_X64_MSR_SYNDBG_OPTIONS || (idx >= HV_X64_MSR_CRASH_P0 && idx <= HV_X64_MSR_TSC_EMULATION_STATUS);
}

static bool hv_synic_msr(uint32_t idx)
{
    return (idx >= HV_X64_MSR_SCONTROL && idx <= HV_X64_MSR_EOM) ||
           (idx >= HV_X64_MSR_SINT0 && idx <= HV_X64_MSR_SINT15);
}

static bool hv_syndbg_msr(uint32_t idx)
{
    return (idx >= HV_X64_MSR_SYNDBG_CONTROL && idx <= HV_X64_MSR_SYNDBG_PENDING_BUFFER) ||
           idx == HV_X64_MSR_SYNDBG_OPTIONS;
}

bool soft_hv_msr_access(const struct soft_hv_cpuid *c, bool enforce, uint32_t idx)
{
    if (!enforce)
        return true;
    uint32_t a = c->features_eax, d = c->features_edx;
    switch (idx) {
    case HV_X64_MSR_GUEST_OS_ID:
    case HV_X64_MSR_HYPERCALL:
        return a & HV_MSR_HYPERCALL_AVAILABLE;
    case HV_X64_MSR_VP_RUNTIME:
        return a & HV_MSR_VP_RUNTIME_AVAILABLE;
    case HV_X64_MSR_TIME_REF_COUNT:
        return a & HV_MSR_TIME_REF_COUNT_AVAILABLE;
    case HV_X64_MSR_VP_INDEX:
        return a & HV_MSR_VP_INDEX_AVAILABLE;
    case HV_X64_MSR_RESET:
        return a & HV_MSR_RESET_AVAILABLE;
    case HV_X64_MSR_REFERENCE_TSC:
        return a & HV_MSR_REFERENCE_TSC_AVAILABLE;
    case HV_X64_MSR_EOI:
    case HV_X64_MSR_ICR:
    case HV_X64_MSR_TPR:
    case HV_X64_MSR_VP_ASSIST_PAGE:
        return a & HV_MSR_APIC_ACCESS_AVAILABLE;
    case HV_X64_MSR_TSC_FREQUENCY:
    case HV_X64_MSR_APIC_FREQUENCY:
        return a & HV_ACCESS_FREQUENCY_MSRS;
    case HV_X64_MSR_REENLIGHTENMENT_CONTROL:
    case HV_X64_MSR_TSC_EMULATION_CONTROL:
    case HV_X64_MSR_TSC_EMULATION_STATUS:
        return a & HV_ACCESS_REENLIGHTENMENT;
    default:
        break;
    }
    if (hv_synic_msr(idx))
        return a & HV_MSR_SYNIC_AVAILABLE;
    if (idx >= HV_X64_MSR_STIMER0_CONFIG && idx <= HV_X64_MSR_STIMER3_COUNT)
        return a & HV_MSR_SYNTIMER_AVAILABLE;
    if (idx >= HV_X64_MSR_CRASH_P0 && idx <= HV_X64_MSR_CRASH_CTL)
        return d & HV_FEATURE_GUEST_CRASH_MSR_AVAILABLE;
    if (hv_syndbg_msr(idx))
        return d & HV_FEATURE_DEBUG_MSRS_AVAILABLE;
    return false;
}

bool soft_hv_hcall_access(const struct soft_hv_cpuid *c, bool enforce, uint16_t code)
{
    if (!enforce)
        return true;
    uint32_t rec = c->enlightenments_eax;
    switch (code) {
    case HVCALL_NOTIFY_LONG_SPIN_WAIT:
        return c->enlightenments_ebx && c->enlightenments_ebx != UINT32_MAX;
    case HVCALL_POST_MESSAGE:
        return c->features_ebx & HV_POST_MESSAGES;
    case HVCALL_SIGNAL_EVENT:
        return c->features_ebx & HV_SIGNAL_EVENTS;
    case HVCALL_POST_DEBUG_DATA:
    case HVCALL_RETRIEVE_DEBUG_DATA:
    case HVCALL_RESET_DEBUG_SESSION:
        /* Allowed when SynDBG is off, so that the call answers HV_STATUS_INVALID_HYPERCALL_CODE. */
        return !(c->syndbg_cap_eax & HV_X64_SYNDBG_CAP_ALLOW_KERNEL_DEBUGGING) || (c->features_ebx & HV_DEBUGGING);
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX:
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX:
        if (!(rec & HV_X64_EX_PROCESSOR_MASKS_RECOMMENDED))
            return false;
        /* fall through */
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST:
    case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE:
        return rec & HV_X64_REMOTE_TLB_FLUSH_RECOMMENDED;
    case HVCALL_SEND_IPI_EX:
        if (!(rec & HV_X64_EX_PROCESSOR_MASKS_RECOMMENDED))
            return false;
        /* fall through */
    case HVCALL_SEND_IPI:
        return rec & HV_X64_CLUSTER_IPI_RECOMMENDED;
    default:
        return true;
    }
}

uint64_t soft_hv_mul_shr64(uint64_t a, uint64_t b)
{
    return (uint64_t)(((unsigned __int128)a * b) >> 64);
}

bool soft_hv_tsc_page_params(uint64_t tsc_timestamp, uint64_t system_time, uint32_t mul, int8_t shift, bool stable,
                             uint64_t *scale, int64_t *offset)
{
    if (!stable || shift < -31 || shift > 31)
        return false;
    /* scale = mul * 2^(32 + shift) / 100 must fit in 64 bits: mul < 100 << (32 - shift). */
    if ((unsigned __int128)mul >= ((unsigned __int128)100 << (32 - shift)))
        return false;
    *scale = (uint64_t)((((unsigned __int128)1 << (32 + shift)) * mul) / 100);
    *offset = (int64_t)(system_time / 100 - soft_hv_mul_shr64(tsc_timestamp, *scale));
    return true;
}

/* kvm_hv_vcpu_init: the state a vCPU's Hyper-V part starts with, the first time it is used. */
static struct soft_hv_vcpu *hv_vcpu(struct soft_vcpu *v)
{
    struct soft_hv_vcpu *h = &v->hv;
    if (!h->init) {
        h->init = true;
        h->synic.version = HV_SYNIC_VERSION_1;
        for (int i = 0; i < 16; i++)
            h->synic.sint[i] = HV_SYNIC_SINT_MASKED;
        h->vp_index = (uint32_t)v->id; /* vcpu_idx: the selftests and the kit create vCPUs in id order */
    }
    return h;
}

void soft_hv_cpuid_update(struct soft_vcpu *v)
{
    struct soft_hv_vcpu *h = hv_vcpu(v);
    h->enabled = soft_hv_cpuid_parse(v->cpuid, v->ncpuid, &h->cpuid);
}

bool soft_hv_hypercall_enabled(struct soft_vcpu *v)
{
    if (!v->hv.enabled)
        return false;
    pthread_mutex_lock(&hv_lock);
    bool on = v->vm->hv.guest_os_id != 0;
    pthread_mutex_unlock(&hv_lock);
    return on;
}

/* KVM's kvmclock in 100 ns, or from the TSC page once it is set (get_time_ref_counter). hv_lock held. */
static uint64_t hv_time_ref(struct soft_vm *vm)
{
    struct soft_hv_vm *hv = &vm->hv;
    struct soft_vcpu *v0 = vm->vcpus[0];
    if (hv->tsc_page_status != SOFT_HV_TSC_SET || !v0)
        return soft_kvmclock_ns(vm) / 100;
    return soft_hv_mul_shr64(soft_guest_tsc(v0), hv->tsc_ref.scale) + (uint64_t)hv->tsc_ref.offset;
}

/* KVM leaves the page as the guest last saw it while it asked for TSC emulation (tsc_page_update_unsafe). */
static bool hv_tsc_update_unsafe(const struct soft_hv_vm *hv)
{
    return hv->tsc_page_status != SOFT_HV_TSC_GUEST_CHANGED && hv->tsc_emulation_control;
}

/* kvm_hv_setup_tsc_page, from vCPU 0's kvmclock now. hv_lock held. */
static void hv_setup_tsc_page(struct soft_vm *vm)
{
    struct soft_hv_vm *hv = &vm->hv;
    struct soft_vcpu *v0 = vm->vcpus[0];
    if (hv->tsc_page_status == SOFT_HV_TSC_BROKEN || hv->tsc_page_status == SOFT_HV_TSC_SET ||
        hv->tsc_page_status == SOFT_HV_TSC_UNSET || !(hv->tsc_page_msr & HV_X64_MSR_TSC_REFERENCE_ENABLE) || !v0)
        return;
    uint8_t *page = soft_gpa_to_hva(vm, hv->tsc_page_msr & ~0xfffull, sizeof hv->tsc_ref);
    if (!page) {
        hv->tsc_page_status = SOFT_HV_TSC_BROKEN;
        return;
    }
    uint32_t seq;
    memcpy(&seq, page, 4);
    if (seq && hv_tsc_update_unsafe(hv)) {
        memcpy(&hv->tsc_ref, page, sizeof hv->tsc_ref);
        hv->tsc_page_status = SOFT_HV_TSC_SET;
        return;
    }
    /* Sequence 0 while the rest changes: the guest reads HV_X64_MSR_TIME_REF_COUNT meanwhile. */
    hv->tsc_ref.sequence = 0;
    __atomic_store_n((uint32_t *)page, 0, __ATOMIC_SEQ_CST);
    uint64_t tsc, ns;
    uint32_t mul;
    int8_t shift;
    soft_pvclock_now(v0, &tsc, &ns, &mul, &shift);
    if (!soft_hv_tsc_page_params(tsc, ns, mul, shift, true, &hv->tsc_ref.scale, &hv->tsc_ref.offset)) {
        hv->tsc_page_status = SOFT_HV_TSC_BROKEN;
        return;
    }
    memcpy(page + 8, &hv->tsc_ref.scale, 8);
    memcpy(page + 16, &hv->tsc_ref.offset, 8);
    if (++seq == 0xffffffffu || seq == 0)
        seq = 1;
    hv->tsc_ref.sequence = seq;
    __atomic_store_n((uint32_t *)page, seq, __ATOMIC_SEQ_CST);
    hv->tsc_page_status = SOFT_HV_TSC_SET;
}

void soft_hv_clock_changed(struct soft_vm *vm)
{
    pthread_mutex_lock(&hv_lock);
    struct soft_hv_vm *hv = &vm->hv;
    if (hv->tsc_page_status == SOFT_HV_TSC_SET && !hv_tsc_update_unsafe(hv))
        hv->tsc_page_status = SOFT_HV_TSC_HOST_CHANGED; /* kvm_hv_request_tsc_page_update */
    hv_setup_tsc_page(vm);                              /* vCPU 0's KVM_REQ_CLOCK_UPDATE */
    pthread_mutex_unlock(&hv_lock);
}

/* A KVM_EXIT_SYSTEM_EVENT (KVM_REQ_HV_RESET / KVM_REQ_HV_CRASH) from inside the guest's WRMSR. */
static void hv_system_event(struct soft_vcpu *v, uint32_t type)
{
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
    memset(&run->system_event, 0, sizeof run->system_event);
    run->system_event.type = type;
    soft_exit_to_vmm(v);
}

/* The hypercall page: VMMCALL; RET, as KVM on AMD patches it (svm_patch_hypercall). */
static int hv_write_hypercall_page(struct soft_vm *vm, uint64_t data)
{
    static const uint8_t insn[4] = {0x0f, 0x01, 0xd9, 0xc3};
    uint8_t *p = soft_gpa_to_hva(vm, data & ~0xfffull, sizeof insn);
    if (!p)
        return -1;
    memcpy(p, insn, sizeof insn);
    return 0;
}

/* kvm_hv_set_msr_pw / kvm_hv_get_msr_pw. hv_lock held. */
static int hv_msr_pw(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write, bool host, uint32_t *event)
{
    struct soft_hv_vm *hv = &v->vm->hv;
    uint64_t d = *val;
    if (hv_syndbg_msr(idx)) {
        /* syndbg_set/get_msr: the guest needs SynDBG in CPUID (the VMM does not). */
        if (!host && !(v->hv.cpuid.syndbg_cap_eax & HV_X64_SYNDBG_CAP_ALLOW_KERNEL_DEBUGGING))
            return -1;
        uint64_t *r = idx == HV_X64_MSR_SYNDBG_CONTROL       ? &hv->syndbg.control
                      : idx == HV_X64_MSR_SYNDBG_STATUS      ? &hv->syndbg.status
                      : idx == HV_X64_MSR_SYNDBG_OPTIONS     ? &hv->syndbg.options
                      : idx == HV_X64_MSR_SYNDBG_SEND_BUFFER ? &hv->syndbg.send_page
                      : idx == HV_X64_MSR_SYNDBG_RECV_BUFFER ? &hv->syndbg.recv_page
                                                             : &hv->syndbg.pending_page;
        if (write)
            *r = d;
        else
            *val = *r;
        if (write && !host && (idx == HV_X64_MSR_SYNDBG_CONTROL || idx == HV_X64_MSR_SYNDBG_PENDING_BUFFER))
            *event = KVM_EXIT_HYPERV_SYNDBG;
        return 1;
    }
    if (idx >= HV_X64_MSR_CRASH_P0 && idx <= HV_X64_MSR_CRASH_P4) {
        if (write)
            hv->crash_param[idx - HV_X64_MSR_CRASH_P0] = d;
        else
            *val = hv->crash_param[idx - HV_X64_MSR_CRASH_P0];
        return 1;
    }
    switch (idx) {
    case HV_X64_MSR_GUEST_OS_ID:
        if (!write) {
            *val = hv->guest_os_id;
        } else {
            hv->guest_os_id = d;
            if (!d)
                hv->hypercall &= ~HV_X64_MSR_HYPERCALL_ENABLE; /* OS ID 0 turns the hypercall page off */
        }
        return 1;
    case HV_X64_MSR_HYPERCALL:
        if (!write) {
            *val = hv->hypercall;
        } else if (hv->guest_os_id) { /* without a guest OS ID the write is ignored */
            if ((d & HV_X64_MSR_HYPERCALL_ENABLE) && hv_write_hypercall_page(v->vm, d) < 0)
                return -1;
            hv->hypercall = d;
        }
        return 1;
    case HV_X64_MSR_REFERENCE_TSC:
        if (!write) {
            *val = hv->tsc_page_msr;
            return 1;
        }
        hv->tsc_page_msr = d;
        if (d & HV_X64_MSR_TSC_REFERENCE_ENABLE) {
            hv->tsc_page_status = host ? SOFT_HV_TSC_HOST_CHANGED : SOFT_HV_TSC_GUEST_CHANGED;
            hv_setup_tsc_page(v->vm); /* KVM_REQ_MASTERCLOCK_UPDATE: done before the guest runs again */
        } else {
            hv->tsc_page_status = SOFT_HV_TSC_UNSET;
        }
        return 1;
    case HV_X64_MSR_TIME_REF_COUNT:
        if (write)
            return host ? 1 : -1; /* read-only; the VMM's write is ignored */
        *val = hv_time_ref(v->vm);
        return 1;
    case HV_X64_MSR_CRASH_CTL:
        if (!write)
            *val = hv->crash_ctl;
        else if (host)
            hv->crash_ctl = d & HV_CRASH_CTL_CRASH_NOTIFY;
        else if (d & HV_CRASH_CTL_CRASH_NOTIFY)
            *event = KVM_SYSTEM_EVENT_CRASH + 0x100; /* KVM_REQ_HV_CRASH */
        return 1;
    case HV_X64_MSR_RESET:
        if (!write)
            *val = 0;
        else if (d == 1)
            *event = KVM_SYSTEM_EVENT_RESET + 0x100; /* KVM_REQ_HV_RESET */
        return 1;
    case HV_X64_MSR_REENLIGHTENMENT_CONTROL:
        if (write)
            hv->reenlightenment_control = d;
        else
            *val = hv->reenlightenment_control;
        return 1;
    case HV_X64_MSR_TSC_EMULATION_CONTROL:
        if (write)
            hv->tsc_emulation_control = d;
        else
            *val = hv->tsc_emulation_control;
        return 1;
    case HV_X64_MSR_TSC_EMULATION_STATUS:
        if (!write) {
            *val = hv->tsc_emulation_status;
            return 1;
        }
        if (d && !host)
            return -1; /* the guest may only clear it */
        hv->tsc_emulation_status = d;
        return 1;
    default:
        return -1;
    }
}

/* kvm_hv_vapic_msr_read/write: the local APIC's EOI, ICR and TPR, whatever its mode. */
static int hv_vapic(struct soft_vcpu *v, uint32_t off, uint64_t *val, bool write)
{
    struct soft_irqchip *c = v->vm->chip;
    if (!c || !c->have_chip)
        return -1;
    if (write && off != APIC_REG_ICR && (*val >> 32))
        return -1;
    pthread_mutex_lock(&c->lock);
    struct soft_lapic *a = soft_chip_lapic_of(c, v->id);
    uint64_t now = soft_chip_now_ns();
    if (write) {
        uint32_t hi = (uint32_t)(*val >> 32);
        if (off == APIC_REG_ICR)
            memcpy(a->regs + APIC_REG_ICR2, &hi, 4);
        struct soft_lapic_effect eff;
        soft_lapic_write(a, off, (uint32_t)*val, now, &eff);
        if (eff.timer_changed)
            soft_lapic_timer_poll(a, now);
        soft_chip_apply_effect(c, v, &eff);
    } else {
        *val = soft_lapic_read(a, off, now);
        if (off == APIC_REG_ICR)
            *val |= (uint64_t)soft_lapic_reg(a, APIC_REG_ICR2) << 32;
    }
    soft_chip_update_deadline(v, a, now);
    pthread_mutex_unlock(&c->lock);
    return 1;
}

/* The vCPU thread's CPU time in 100 ns (current_task_runtime_100ns). */
static uint64_t hv_runtime_100ns(void)
{
    if (soft_deterministic())
        return soft_icount() / 100; /* deterministic runs: one ns per instruction, as their clocks */
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec) / 100;
}

/* synic_set_msr / synic_get_msr. */
static int hv_synic(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write, bool host, uint32_t *event)
{
    struct soft_hv_vcpu *h = &v->hv;
    uint64_t d = *val;
    if (!h->synic.active && (!host || (write && d)))
        return -1;
    if (!write) {
        switch (idx) {
        case HV_X64_MSR_SCONTROL:
            *val = h->synic.control;
            break;
        case HV_X64_MSR_SVERSION:
            *val = h->synic.version;
            break;
        case HV_X64_MSR_SIEFP:
            *val = h->synic.evt_page;
            break;
        case HV_X64_MSR_SIMP:
            *val = h->synic.msg_page;
            break;
        case HV_X64_MSR_EOM:
            *val = 0;
            break;
        default:
            if (idx < HV_X64_MSR_SINT0)
                return -1;
            *val = h->synic.sint[idx - HV_X64_MSR_SINT0];
        }
        return 1;
    }
    switch (idx) {
    case HV_X64_MSR_SCONTROL:
        h->synic.control = d;
        break;
    case HV_X64_MSR_SVERSION:
        if (!host)
            return -1;
        h->synic.version = d;
        return 1;
    case HV_X64_MSR_SIEFP:
    case HV_X64_MSR_SIMP:
        if ((d & HV_SYNIC_ENABLE) && !host && !h->synic.dont_zero) {
            uint8_t *p = soft_gpa_to_hva(v->vm, d & ~0xfffull, 4096);
            if (!p)
                return -1;
            memset(p, 0, 4096);
        }
        *(idx == HV_X64_MSR_SIEFP ? &h->synic.evt_page : &h->synic.msg_page) = d;
        break;
    case HV_X64_MSR_EOM:
        return 1; /* no message slot is ever pending: nothing to re-deliver */
    default:
        if (idx < HV_X64_MSR_SINT0)
            return -1;
        /* synic_set_sint: vectors below 16 are refused unless the SINT stays masked (or the VMM writes it). */
        if ((d & 0xff) < 16 && !host && !(d & HV_SYNIC_SINT_MASKED))
            return -1;
        h->synic.sint[idx - HV_X64_MSR_SINT0] = d;
        return 1;
    }
    if (!host)
        *event = KVM_EXIT_HYPERV_SYNIC; /* synic_exit: the VMM learns the new pages */
    return 1;
}

/* stimer_set_config / stimer_set_count, and their reads. */
static int hv_stimer(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write, bool host)
{
    struct soft_hv_vcpu *h = &v->hv;
    struct soft_hv_stimer *t = &h->stimer[(idx - HV_X64_MSR_STIMER0_CONFIG) / 2];
    bool config = !((idx - HV_X64_MSR_STIMER0_CONFIG) & 1);
    const uint64_t enable = 1, auto_enable = 1ull << 3, direct = 1ull << 12, sintx = 0xfull << 16;
    if (!write) {
        *val = config ? t->config : t->count;
        return 1;
    }
    uint64_t d = *val;
    if (!h->synic.active && (!host || d))
        return -1;
    if (config) {
        if (!host && h->enforce && (d & direct) && !(h->cpuid.features_edx & HV_STIMER_DIRECT_MODE_AVAILABLE))
            return -1;
        if ((t->config & enable) && !(d & direct) && !(d & sintx))
            d &= ~enable;
        t->config = d;
    } else {
        t->count = d;
        if (!host) {
            if (!d)
                t->config &= ~enable;
            else if (t->config & auto_enable)
                t->config |= enable;
        }
    }
    return 1;
}

/* kvm_hv_set_msr / kvm_hv_get_msr. */
static int hv_msr_vp(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write, bool host, uint32_t *event)
{
    struct soft_hv_vcpu *h = &v->hv;
    if (hv_synic_msr(idx))
        return hv_synic(v, idx, val, write, host, event);
    if (idx >= HV_X64_MSR_STIMER0_CONFIG && idx <= HV_X64_MSR_STIMER3_COUNT)
        return hv_stimer(v, idx, val, write, host);
    switch (idx) {
    case HV_X64_MSR_VP_INDEX:
        if (!write) {
            *val = h->vp_index;
            return 1;
        }
        if (!host || (uint32_t)*val >= 1024) /* KVM_MAX_VCPUS (6.1) */
            return -1;
        h->vp_index = (uint32_t)*val;
        return 1;
    case HV_X64_MSR_VP_ASSIST_PAGE:
        if (!write) {
            *val = h->vapic;
            return 1;
        }
        if (*val & 1) { /* enabled: its first word (apic_assist) is cleared */
            uint8_t *p = soft_gpa_to_hva(v->vm, *val & ~0xfffull, 4);
            if (!p)
                return -1;
            memset(p, 0, 4);
        }
        h->vapic = *val;
        return 1;
    case HV_X64_MSR_EOI:
        return hv_vapic(v, APIC_REG_EOI, val, write);
    case HV_X64_MSR_ICR:
        return hv_vapic(v, APIC_REG_ICR, val, write);
    case HV_X64_MSR_TPR:
        return hv_vapic(v, APIC_REG_TPR, val, write);
    case HV_X64_MSR_VP_RUNTIME:
        if (!write)
            *val = hv_runtime_100ns() + h->runtime_offset;
        else if (!host)
            return -1;
        else
            h->runtime_offset = *val - hv_runtime_100ns();
        return 1;
    case HV_X64_MSR_TSC_FREQUENCY:
    case HV_X64_MSR_APIC_FREQUENCY:
        if (write)
            return host ? 1 : -1; /* read-only; the VMM's write is ignored */
        *val = idx == HV_X64_MSR_TSC_FREQUENCY ? (uint64_t)v->tsc_khz * 1000 : HV_APIC_BUS_FREQUENCY;
        return 1;
    default:
        return -1;
    }
}

static bool hv_partition_wide(uint32_t idx)
{
    return idx == HV_X64_MSR_GUEST_OS_ID || idx == HV_X64_MSR_HYPERCALL || idx == HV_X64_MSR_REFERENCE_TSC ||
           idx == HV_X64_MSR_TIME_REF_COUNT || idx == HV_X64_MSR_RESET ||
           (idx >= HV_X64_MSR_CRASH_P0 && idx <= HV_X64_MSR_TSC_EMULATION_STATUS) || hv_syndbg_msr(idx);
}

int soft_hv_msr(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write, bool host)
{
    if (!soft_hv_msr_is(idx))
        return 0;
    struct soft_hv_vcpu *h = hv_vcpu(v);
    if (!host && !h->enabled)
        return -1; /* no "Hv#1" in the vCPU's CPUID: the guest gets #GP */
    if (!host && !soft_hv_msr_access(&h->cpuid, h->enforce, idx))
        return -1;
    uint32_t event = 0;
    int r;
    if (hv_partition_wide(idx)) {
        pthread_mutex_lock(&hv_lock);
        r = hv_msr_pw(v, idx, val, write, host, &event);
        pthread_mutex_unlock(&hv_lock);
    } else {
        r = hv_msr_vp(v, idx, val, write, host, &event);
    }
    if (r <= 0 || !event)
        return r;
    struct kvm_run *run = v->run;
    if (event > 0x100) {
        hv_system_event(v, event - 0x100);
        return 1;
    }
    /* KVM_REQ_HV_EXIT: KVM_EXIT_HYPERV with the registers the VMM must see (synic_exit, syndbg_exit). */
    run->exit_reason = KVM_EXIT_HYPERV;
    memset(&run->hyperv, 0, sizeof run->hyperv);
    run->hyperv.type = event;
    if (event == KVM_EXIT_HYPERV_SYNIC) {
        run->hyperv.u.synic.msr = idx;
        run->hyperv.u.synic.control = h->synic.control;
        run->hyperv.u.synic.evt_page = h->synic.evt_page;
        run->hyperv.u.synic.msg_page = h->synic.msg_page;
        soft_exit_to_vmm(v);
        return 1;
    }
    struct soft_hv_vm *hv = &v->vm->hv;
    pthread_mutex_lock(&hv_lock);
    run->hyperv.u.syndbg.msr = idx;
    run->hyperv.u.syndbg.control = hv->syndbg.control;
    run->hyperv.u.syndbg.send_page = hv->syndbg.send_page;
    run->hyperv.u.syndbg.recv_page = hv->syndbg.recv_page;
    run->hyperv.u.syndbg.pending_page = hv->syndbg.pending_page;
    pthread_mutex_unlock(&hv_lock);
    if (soft_exit_to_vmm(v) && idx == HV_X64_MSR_SYNDBG_CONTROL) {
        pthread_mutex_lock(&hv_lock); /* kvm_hv_syndbg_complete_userspace */
        hv->syndbg.status = run->hyperv.u.syndbg.status;
        pthread_mutex_unlock(&hv_lock);
    }
    return 1;
}

int soft_hv_enable_cap(struct soft_vcpu *v, const struct kvm_enable_cap *cap)
{
    struct soft_hv_vcpu *h = hv_vcpu(v);
    switch (cap->cap) {
    case KVM_CAP_HYPERV_ENFORCE_CPUID:
        h->enforce = cap->args[0] != 0;
        return 0;
    case KVM_CAP_HYPERV_SYNIC2:
        if (cap->args[0]) {
            soft_set_error("soft backend: KVM_CAP_HYPERV_SYNIC2 takes no argument (args[0] 0x%llx)",
                           (unsigned long long)cap->args[0]);
            return -EINVAL;
        }
        /* fall through */
    case KVM_CAP_HYPERV_SYNIC:
        if (!soft_irqchip_in_kernel(v)) {
            soft_set_error("soft backend: KVM_CAP_HYPERV_SYNIC needs the in-kernel irqchip (KVM_CREATE_IRQCHIP)");
            return -EINVAL;
        }
        h->synic.active = true; /* kvm_hv_activate_synic */
        h->synic.dont_zero = cap->cap == KVM_CAP_HYPERV_SYNIC2;
        h->synic.control = HV_SYNIC_ENABLE;
        return 0;
    default:
        return -EINVAL;
    }
}

uint32_t soft_hv_vp_index(const struct soft_vcpu *v)
{
    return v->hv.init ? v->hv.vp_index : (uint32_t)v->id; /* read-only: another vCPU's may not be set up yet */
}

uint64_t soft_hv_syndbg_options(struct soft_vm *vm)
{
    pthread_mutex_lock(&hv_lock);
    uint64_t o = vm->hv.syndbg.options;
    pthread_mutex_unlock(&hv_lock);
    return o;
}
