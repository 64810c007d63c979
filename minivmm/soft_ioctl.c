/* The soft backend's vCPU fd: creation with its engine and run page, destruction, and the vCPU ioctls. */
#include "soft_cpuid.h"
#include "soft_debug.h"
#include "soft_irqchip.h"
#include "soft_event.h"
#include "soft_sync_regs.h"
#include "soft_save.h"
#include "soft_pv.h"
#include "soft_uc_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int soft_vcpu_create(struct soft_vm *vm, int id, struct soft_vcpu **out)
{
    struct soft_vcpu *v = calloc(1, sizeof *v);
    if (!v)
        return -ENOMEM;
    v->vm = vm;
    v->id = id;
    v->irq_pending = -1;
    v->wake_fd = -1;
    v->steal_fd = -1;
    v->tsc_ratio = SOFT_TSC_RATIO_ONE;
    v->tsc_khz = (uint32_t)soft_tsc_khz();
    v->platform_info = X86_PLATFORM_INFO_CPUID_FAULT; /* KVM's kvm_arch_vcpu_create */
    v->fd = memfd_create("kvm-vcpu", MFD_CLOEXEC);
    int r = v->fd < 0 ? -errno : 0;
    if (!r && ftruncate(v->fd, SOFT_RUN_SIZE) != 0)
        r = -errno;
    if (!r) {
        void *p = mmap(NULL, SOFT_RUN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
        if (p == MAP_FAILED)
            r = -errno;
        else
            v->run = p;
    }
    if (!r) {
        v->engine = soft_engine_get();
        if (!v->engine)
            r = -ENOMEM;
    }
    if (!r) {
        v->engine->v = v;
        v->uc = v->engine->uc;
        v->ctx = v->engine->ctx;
        v->img_size = uc_context_size(v->uc) - soft_layout.data;
        v->img = aligned_alloc(64, (v->img_size + 63) & ~(size_t)63);
        if (!v->img)
            r = -ENOMEM;
    }
    if (!r)
        r = soft_coro_init(&v->co, 1u << 20, soft_co_main, v);
    if (r) {
        soft_vcpu_destroy(v);
        return r;
    }
    v->co_started = true;
    v->ncpuid = 0; /* as KVM: CPUID answers zeros until KVM_SET_CPUID2 */
    v->run->io.data_offset = SOFT_PIO_OFFSET;
    soft_vcpu_reset(v, false);
    soft_fpu_reset(v);
    r = soft_irqchip_vcpu_init(v); /* its local APIC, when the VM has an in-kernel irqchip */
    if (r) {
        soft_vcpu_destroy(v);
        return r;
    }
    /* Guest TSC: 0 for the VM's first vCPU, the others on its line (KVM's kvm_arch_vcpu_postcreate). */
    soft_tsc_synchronize(v, 0);
    *out = v;
    return 0;
}

void soft_vcpu_destroy(struct soft_vcpu *v)
{
    if (v->co_started && !v->co.finished && v->co.host_sp) {
        /* Let a suspended run unwind out of the engine before the engine goes away. */
        v->cancel = true;
        soft_coro_resume(&v->co);
    }
    if (v->co_started)
        soft_coro_destroy(&v->co);
    if (v->engine) {
        for (int i = 0; i < v->nhooked; i++)
            uc_hook_del(v->uc, v->hooked_h[i]);
        if (v->limits_on)
            uc_hook_del(v->uc, v->limit_hook);
        soft_debug_destroy(v);
        soft_engine_put(v->engine);
    }
    soft_steal_destroy(v);
    soft_irqchip_vcpu_fini(v);
    free(v->img);
    if (v->run)
        munmap(v->run, SOFT_RUN_SIZE);
    if (v->fd >= 0)
        close(v->fd);
    free(v);
}

int soft_vcpu_ioctl(struct soft_vcpu *v, unsigned long req, unsigned long arg)
{
    void *p = (void *)arg;
    switch (req) {
    case KVM_RUN:
    case KVM_SMI:
    case KVM_GET_TSC_KHZ:
    case KVM_SET_TSC_KHZ:
    case KVM_SET_GUEST_DEBUG:
        break;
    case KVM_GET_REGS:
    case KVM_SET_REGS:
    case KVM_GET_SREGS:
    case KVM_SET_SREGS:
    case KVM_GET_MSRS:
    case KVM_SET_MSRS:
    case KVM_SET_CPUID2:
    case KVM_GET_CPUID2:
    case KVM_INTERRUPT:
    case KVM_GET_LAPIC:
    case KVM_SET_LAPIC:
    case KVM_GET_MP_STATE:
    case KVM_SET_MP_STATE:
    case KVM_ENABLE_CAP:
    case KVM_HAS_DEVICE_ATTR:
    case KVM_GET_DEVICE_ATTR:
    case KVM_SET_DEVICE_ATTR:
    case KVM_GET_SUPPORTED_HV_CPUID:
    case KVM_GET_VCPU_EVENTS:
    case KVM_SET_VCPU_EVENTS:
    case KVM_GET_DEBUGREGS:
    case KVM_SET_DEBUGREGS:
    case KVM_GET_XSAVE:
    case KVM_GET_XSAVE2:
    case KVM_SET_XSAVE:
    case KVM_GET_XCRS:
    case KVM_SET_XCRS:
    case KVM_GET_FPU:
    case KVM_SET_FPU:
        if (!p)
            return -EFAULT;
        break;
    default:
        soft_set_error("soft backend: vCPU ioctl 0x%lx is not supported", req);
        return -EINVAL; /* x86 KVM's answer to an unknown vCPU ioctl */
    }
    switch (req) {
    case KVM_RUN: {
        /* KVM's vcpu_load: the steal time is brought up to date (KVM_REQ_STEAL_UPDATE); RDTSC scales by this vCPU. */
        soft_steal_update(v);
        struct soft_vcpu *outer = soft_tsc_vcpu;
        soft_tsc_vcpu = v;
        int r = soft_sync_regs_in(v); /* KVM_CAP_SYNC_REGS: kvm_run's s.regs in and out (soft_sync_regs.c) */
        if (r == 0)
            r = soft_vcpu_run(v);
        soft_sync_regs_out(v);
        soft_tsc_vcpu = outer;
        return r;
    }
    case KVM_GET_REGS:
        soft_regs_get(v, p);
        return 0;
    case KVM_SET_REGS:
        soft_regs_set(v, p);
        return 0;
    case KVM_GET_SREGS:
        soft_sregs_get(v, p);
        return 0;
    case KVM_SET_SREGS:
        if (soft_vcpu_sregs_check(v, p) != 0)
            return -EINVAL; /* kvm_is_valid_sregs, kvm_set_apic_base: nothing is changed */
        soft_sregs_set(v, p);
        return 0;
    case KVM_GET_MSRS:
        return soft_vcpu_msrs(v, p, false);
    case KVM_SET_MSRS:
        return soft_vcpu_msrs(v, p, true);
    case KVM_SET_CPUID2: {
        int r = soft_vcpu_set_cpuid(v, p); /* soft_cpuid.c */
        if (r == 0)
            soft_pv_cpuid_update(v); /* kvm_vcpu_after_set_cpuid: kvm_update_pv_runtime */
        if (r == 0)
            soft_hv_cpuid_update(v); /* and kvm_hv_set_cpuid (soft_hyperv.c) */
        return r;
    }
    case KVM_GET_CPUID2:
        return soft_vcpu_get_cpuid(v, p);
    case KVM_INTERRUPT: {
        const struct kvm_interrupt *irq = p;
        if (irq->irq >= 256)
            return -EINVAL;
        if (v->wake_fd >= 0) /* as KVM: with the in-kernel PIC, interrupts come through it, not KVM_INTERRUPT */
            return -ENXIO;
        v->irq_pending = (int)irq->irq; /* as KVM without an in-kernel irqchip: replaces a queued one */
        return 0;
    }
    case KVM_SET_GUEST_DEBUG: {
        if (!p)
            return -EFAULT;
        return soft_debug_set(v, p);
    }
    case KVM_GET_LAPIC:
    case KVM_SET_LAPIC:
    case KVM_GET_MP_STATE:
    case KVM_SET_MP_STATE:
        return soft_irqchip_vcpu_ioctl(v, req, p);
    case KVM_ENABLE_CAP:
        return soft_vcpu_enable_cap(v, p);
    case KVM_HAS_DEVICE_ATTR:
    case KVM_GET_DEVICE_ATTR:
    case KVM_SET_DEVICE_ATTR:
        return soft_vcpu_tsc_attr(v, req, p);
    case KVM_GET_VCPU_EVENTS:
        soft_vcpu_events_get(v, p);
        return 0;
    case KVM_SET_VCPU_EVENTS:
        return soft_vcpu_events_set(v, p);
    case KVM_GET_DEBUGREGS:
        soft_vcpu_debugregs_get(v, p);
        return 0;
    case KVM_SET_DEBUGREGS:
        return soft_vcpu_debugregs_set(v, p);
    case KVM_GET_XSAVE:
        return soft_vcpu_get_xsave(v, p, sizeof(struct kvm_xsave));
    case KVM_GET_XSAVE2: /* KVM writes its uabi size; the VMM sized the buffer from KVM_CAP_XSAVE2, never less */
        return soft_vcpu_get_xsave(v, p, soft_xsave_uabi_size());
    case KVM_SET_XSAVE:
        return soft_vcpu_set_xsave(v, p);
    case KVM_GET_XCRS:
        return soft_vcpu_get_xcrs(v, p);
    case KVM_SET_XCRS:
        return soft_vcpu_set_xcrs(v, p);
    case KVM_GET_FPU:
        return soft_vcpu_get_fpu(v, p);
    case KVM_SET_FPU:
        return soft_vcpu_set_fpu(v, p);
    case KVM_GET_SUPPORTED_HV_CPUID: /* soft_hv_cpuid.c */
        return soft_get_supported_hv_cpuid(p);
    case KVM_SMI: /* kvm_vcpu_ioctl_smi: pending, taken before the guest runs again (soft_smm.c) */
        soft_smm_raise(v);
        return 0;
    case KVM_GET_TSC_KHZ:
        return (int)v->tsc_khz;
    case KVM_SET_TSC_KHZ:
        return soft_vcpu_set_tsc_khz(v, (uint32_t)arg); /* the rate itself, not a pointer, as KVM takes it */
    default:
        soft_set_error("soft backend: vCPU ioctl 0x%lx is not supported", req);
        return -ENOTTY;
    }
}
