/*
 * The soft backend's KVM_GET/SET_VCPU_EVENTS (x86.c kvm_vcpu_ioctl_x86_get/set_vcpu_events, with svm.c's interrupt
 * shadow and NMI mask) and KVM_GET/SET_DEBUGREGS: the events a VMM saves and restores, and the exception or NMI a
 * restore leaves to inject, delivered at the next KVM_RUN.
 */
#include "soft_save.h"
#include "soft_uc_state.h"

#include <errno.h>
#include <string.h>

#define SOFT_VEC_NMI 2
/*
 * Unicorn workaround: QEMU 5.0 keeps hflags2 right after hflags in its CPU state; HF2_NMI_MASK blocks NMIs until
 * the next IRET, which clears it (helper_iret_*), as KVM on AMD intercepts IRET to unmask. GIF is set from reset,
 * and no guest here runs STGI/CLGI: a clear GIF means the offset is wrong, and the mask is then kept apart.
 */
#define SOFT_HF2_GIF_MASK (1u << 0)
#define SOFT_HF2_NMI_MASK (1u << 2)

static size_t hflags2_off(void)
{
    return soft_layout.hflags + 4;
}

/* The image must be loaded. */
static bool nmi_masked(struct soft_vcpu *v)
{
    uint32_t h2 = img_u32(v, hflags2_off());
    if (!(h2 & SOFT_HF2_GIF_MASK))
        return v->ev.nmi_masked;
    return (h2 & SOFT_HF2_NMI_MASK) != 0;
}

/* The image must be loaded; the caller commits it. */
static void nmi_mask_set(struct soft_vcpu *v, bool masked)
{
    uint32_t h2 = img_u32(v, hflags2_off());
    if (!(h2 & SOFT_HF2_GIF_MASK)) {
        v->ev.nmi_masked = masked;
        return;
    }
    img_set_u32(v, hflags2_off(), masked ? h2 | SOFT_HF2_NMI_MASK : h2 & ~SOFT_HF2_NMI_MASK);
}

void soft_vcpu_events_get(struct soft_vcpu *v, struct kvm_vcpu_events *e)
{
    memset(e, 0, sizeof *e);
    img_load(v);
    /* Without KVM_CAP_EXCEPTION_PAYLOAD (never enabled here) pending and injected are reported as injected; a
     * software exception (#BP, #OF) is not reported: its instruction runs again (kvm_exception_is_soft). */
    bool soft_exc = v->ev.exc_vector == 3 || v->ev.exc_vector == 4;
    e->exception.injected = v->ev.exc_injected && !soft_exc;
    e->exception.nr = v->ev.exc_vector;
    e->exception.has_error_code = v->ev.exc_has_error;
    e->exception.error_code = v->ev.exc_error;
    /* KVM_INTERRUPT's vector until delivered (interrupt.injected; a soft interrupt is never reported). */
    e->interrupt.injected = v->irq_pending >= 0;
    e->interrupt.nr = (uint8_t)(v->irq_pending >= 0 ? v->irq_pending : 0);
    /* svm_get_interrupt_shadow: AMD has one shadow bit, reported as both kinds. */
    if (img_u32(v, soft_layout.hflags) & HF_INHIBIT_IRQ_MASK)
        e->interrupt.shadow = KVM_X86_SHADOW_INT_STI | KVM_X86_SHADOW_INT_MOV_SS;
    e->nmi.injected = v->ev.nmi_injected;
    e->nmi.pending = v->ev.nmi_pending;
    e->nmi.masked = nmi_masked(v);
    e->sipi_vector = 0; /* never valid when reported */
    e->smi.smm = v->smm.in_smm;
    e->smi.pending = v->smm.pending;
    e->smi.smm_inside_nmi = v->smm.inside_nmi;
    e->smi.latched_init = v->smm.latched_init;
    e->flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
}

/* kvm_smm_changed: entering or leaving SMM by KVM_SET_VCPU_EVENTS. Leaving drops "inside NMI"; the memory seen
 * (SMRAM's address space) follows at the next KVM_RUN (soft_smm_check). */
static void smm_changed(struct soft_vcpu *v, bool entering)
{
    v->smm.in_smm = entering;
    if (!entering)
        v->smm.inside_nmi = false;
}

int soft_vcpu_events_set(struct soft_vcpu *v, const struct kvm_vcpu_events *e)
{
    const uint32_t known = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                           KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD |
                           KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
    if (e->flags & ~known) {
        soft_set_error("soft backend: KVM_SET_VCPU_EVENTS: unknown flags 0x%x", e->flags & ~known);
        return -EINVAL;
    }
    /* KVM_CAP_EXCEPTION_PAYLOAD and KVM_CAP_X86_TRIPLE_FAULT_EVENT are not offered, so never enabled: KVM's -EINVAL. */
    if (e->flags & (KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT)) {
        soft_set_error("soft backend: KVM_SET_VCPU_EVENTS: %s needs its capability enabled on the VM",
                       (e->flags & KVM_VCPUEVENT_VALID_PAYLOAD)
                           ? "KVM_VCPUEVENT_VALID_PAYLOAD (KVM_CAP_EXCEPTION_PAYLOAD)"
                           : "KVM_VCPUEVENT_VALID_TRIPLE_FAULT "
                             "(KVM_CAP_X86_TRIPLE_FAULT_EVENT)");
        return -EINVAL;
    }
    /* Without the payload flag exception.pending is ignored (as KVM: pending = 0). */
    if (e->exception.injected && (e->exception.nr > 31 || e->exception.nr == SOFT_VEC_NMI)) {
        soft_set_error("soft backend: KVM_SET_VCPU_EVENTS: exception vector %u is not an exception (0-31, not NMI)",
                       e->exception.nr);
        return -EINVAL;
    }
    v->ev.exc_injected = e->exception.injected != 0;
    v->ev.exc_vector = e->exception.nr;
    v->ev.exc_has_error = e->exception.has_error_code != 0;
    v->ev.exc_error = e->exception.error_code;
    /* The interrupt KVM_INTERRUPT would have queued; a soft one is the INT instruction's, and RIP is still there. */
    v->irq_pending = e->interrupt.injected && !e->interrupt.soft ? e->interrupt.nr : -1;
    img_load(v);
    if (e->flags & KVM_VCPUEVENT_VALID_SHADOW) {
        uint32_t hf = img_u32(v, soft_layout.hflags);
        img_set_u32(v, soft_layout.hflags, e->interrupt.shadow ? hf | HF_INHIBIT_IRQ_MASK : hf & ~HF_INHIBIT_IRQ_MASK);
    }
    v->ev.nmi_injected = e->nmi.injected != 0;
    if (e->flags & KVM_VCPUEVENT_VALID_NMI_PENDING)
        v->ev.nmi_pending = e->nmi.pending != 0;
    nmi_mask_set(v, e->nmi.masked != 0);
    img_commit(v);
    /* VALID_SIPI_VECTOR: the local APIC's SIPI vector matters only to a vCPU waiting for a SIPI, which never
     * happens here (no INIT_RECEIVED state), so it is accepted and not kept. */
    if (e->flags & KVM_VCPUEVENT_VALID_SMM) {
        if (v->smm.in_smm != (e->smi.smm != 0))
            smm_changed(v, e->smi.smm != 0);
        v->smm.pending = e->smi.pending != 0;
        if (e->smi.smm)
            v->smm.inside_nmi = e->smi.smm_inside_nmi != 0;
        if (v->wake_fd >= 0) /* an INIT latched in SMM exists only with an in-kernel local APIC */
            v->smm.latched_init = e->smi.latched_init != 0;
    }
    return 0;
}

bool soft_vcpu_events_inject(struct soft_vcpu *v)
{
    if (v->ev.exc_injected) {
        /* An exception being injected goes in first and whatever the guest's state (KVM's inject_pending_event). */
        v->ev.exc_injected = false;
        if (!soft_deliver_event(v, v->ev.exc_vector, v->ev.exc_has_error, v->ev.exc_error, false, false))
            return false;
    }
    if (!v->ev.nmi_injected && !v->ev.nmi_pending)
        return true;
    img_load(v);
    /* A pending NMI waits while NMIs are masked or an interrupt shadow holds (svm_nmi_blocked); an injected one
     * is already on its way. */
    if (!v->ev.nmi_injected && (nmi_masked(v) || (img_u32(v, soft_layout.hflags) & HF_INHIBIT_IRQ_MASK)))
        return true;
    v->ev.nmi_injected = v->ev.nmi_pending = false;
    if (!soft_deliver_event(v, SOFT_VEC_NMI, false, 0, false, true))
        return false;
    img_load(v);
    nmi_mask_set(v, true); /* until the handler's IRET */
    img_commit(v);
    return true;
}

void soft_vcpu_debugregs_get(struct soft_vcpu *v, struct kvm_debugregs *d)
{
    memset(d, 0, sizeof *d);
    for (int i = 0; i < 4; i++)
        d->db[i] = soft_rd(v, UC_X86_REG_DR0 + i);
    d->dr6 = soft_rd(v, UC_X86_REG_DR6);
    d->dr7 = soft_rd(v, UC_X86_REG_DR7);
}

int soft_vcpu_debugregs_set(struct soft_vcpu *v, const struct kvm_debugregs *d)
{
    /* kvm_dr6_valid / kvm_dr7_valid: bits 63:32 must be 0. */
    if (d->flags || (d->dr6 >> 32) || (d->dr7 >> 32)) {
        soft_set_error("soft backend: KVM_SET_DEBUGREGS: flags must be 0 and DR6/DR7 bits 63:32 clear (flags 0x%llx, "
                       "DR6 0x%llx, DR7 0x%llx)",
                       (unsigned long long)d->flags, (unsigned long long)d->dr6, (unsigned long long)d->dr7);
        return -EINVAL;
    }
    for (int i = 0; i < 4; i++)
        soft_wr(v, UC_X86_REG_DR0 + i, d->db[i]);
    soft_wr(v, UC_X86_REG_DR6, d->dr6);
    soft_wr(v, UC_X86_REG_DR7, d->dr7);
    return 0;
}
