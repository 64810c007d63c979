/* KVM's optional surface on the soft backend: what KVM_CHECK_EXTENSION answers, and KVM_ENABLE_CAP on a VM fd and
 * on a vCPU fd. A capability is answered nonzero only where the backend really gives what KVM gives for it. */
#include "soft_priv.h"
#include "soft_save.h"
#include "soft_pv.h"

#include <errno.h>

/* KVM's capabilities as the soft backend really provides them; 0 for everything else. vm is NULL on /dev/kvm's fd
 * (KVM_CHECK_EXTENSION on a VM fd may answer for that VM). */
int soft_check_extension(struct soft_vm *vm, long cap)
{
    switch (cap) {
    case KVM_CAP_USER_MEMORY:
    case KVM_CAP_IMMEDIATE_EXIT:
    case KVM_CAP_SET_TSS_ADDR:
    case KVM_CAP_SET_IDENTITY_MAP_ADDR:
    case KVM_CAP_EXT_CPUID:
    case KVM_CAP_SYNC_MMU:
    case KVM_CAP_DESTROY_MEMORY_REGION_WORKS:
    case KVM_CAP_JOIN_MEMORY_REGIONS_WORKS:
    case KVM_CAP_GET_TSC_KHZ:
    case KVM_CAP_TSC_CONTROL: /* KVM_SET_TSC_KHZ scales the guest TSC (soft_msr.c) */
    case KVM_CAP_SET_GUEST_DEBUG:
    case KVM_CAP_IRQCHIP: /* the in-kernel PIC, IOAPIC and local APICs (soft_irqchip.c) */
    case KVM_CAP_IRQ_INJECT_STATUS:
    case KVM_CAP_IRQFD:
    case KVM_CAP_IOEVENTFD:
    case KVM_CAP_SIGNAL_MSI:
    case KVM_CAP_TSC_DEADLINE_TIMER:
    case KVM_CAP_PIT2: /* the 8254 on ports 0x40-0x43, IRQ 0 (soft_pit.c) */
    case KVM_CAP_PIT_STATE2:
    case KVM_CAP_REINJECT_CONTROL:
    case KVM_CAP_MP_STATE:          /* runnable and halted (HLT waiting with the in-kernel irqchip) */
    case KVM_CAP_SET_BOOT_CPU_ID:   /* the BSP flag of IA32_APIC_BASE at reset (soft_vmcaps.c) */
    case KVM_CAP_GET_MSR_FEATURES:  /* KVM_GET_MSR_FEATURE_INDEX_LIST, KVM_GET_MSRS on /dev/kvm (soft_msr_feature.c) */
    case KVM_CAP_MSR_PLATFORM_INFO: /* MSR_PLATFORM_INFO, and its #GP to the guest when turned off (soft_msr.c) */
    case KVM_CAP_VCPU_ATTRIBUTES:   /* KVM_VCPU_TSC_CTRL's KVM_VCPU_TSC_OFFSET (soft_msr.c) */
    /* The vCPU state a VMM saves and restores: events, debug registers, x87/SSE in the XSAVE layout (soft_save.h). */
    case KVM_CAP_VCPU_EVENTS:
    case KVM_CAP_DEBUGREGS:
    case KVM_CAP_XSAVE:
    case KVM_CAP_X86_USER_SPACE_MSR:       /* KVM_EXIT_X86_RDMSR/WRMSR for the reasons asked (soft_msr_filter.c) */
    case KVM_CAP_X86_MSR_FILTER:           /* KVM_X86_SET_MSR_FILTER (soft_msr_filter.c) */
    case KVM_CAP_ENFORCE_PV_FEATURE_CPUID: /* PV MSRs and hypercalls as KVM_CPUID_FEATURES says (soft_hypercall.c) */
    case KVM_CAP_HYPERV_CPUID:             /* KVM_GET_SUPPORTED_HV_CPUID on a vCPU (soft_hv_cpuid.c) */
    case KVM_CAP_SYS_HYPERV_CPUID:         /* and on /dev/kvm */
    /* Hyper-V's MSRs, reference TSC page, hypercalls and their CPUID checks (soft_hyperv.c); no SynIC timers or
     * messages, no VP assist page PV EOI, no KVM_HYPERV_EVENTFD: SYNIC, SYNIC2, VAPIC and EVENTFD stay 0. */
    case KVM_CAP_HYPERV:
    case KVM_CAP_HYPERV_TIME:
    case KVM_CAP_HYPERV_VP_INDEX:
    case KVM_CAP_HYPERV_SPIN:
    case KVM_CAP_HYPERV_TLBFLUSH:
    case KVM_CAP_HYPERV_SEND_IPI:
    case KVM_CAP_HYPERV_ENFORCE_CPUID:
        return 1;
    case KVM_CAP_DISABLE_QUIRKS2: /* the quirks this backend can turn off (soft_pv.h) */
        return SOFT_VALID_QUIRKS;
    case KVM_CAP_XCRS: /* XCR0 lives in the engine's state; found by a start-up probe */
        return soft_xcrs_available();
    case KVM_CAP_XSAVE2: /* KVM_GET_XSAVE2's buffer size */
        return soft_xsave2_size();
    case KVM_CAP_X86_SMM: /* SMIs, SMM entry and RSM, SMBASE (soft_smm.c) */
        return 1;
    case KVM_CAP_MULTI_ADDRESS_SPACE: /* address space 1: SMRAM, seen in SMM only (soft_smm.c) */
        return 2;
    case KVM_CAP_IRQ_ROUTING: /* KVM_SET_GSI_ROUTING: irqchip pins and MSIs, KVM_MAX_IRQ_ROUTES of them */
        return 4096;
    case KVM_CAP_ADJUST_CLOCK: /* KVM_CLOCK_VALID_FLAGS: KVM_SET_CLOCK takes KVM_CLOCK_REALTIME (soft_msr.c) */
        return KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;
    case KVM_CAP_SYNC_REGS: /* kvm_run's s.regs: regs, sregs and events (soft_sync_regs.c) */
        return KVM_SYNC_X86_VALID_FIELDS;
    case KVM_CAP_SET_GUEST_DEBUG2: /* the KVM_GUESTDBG_* flags soft_debug.c takes (no INJECT_DB or INJECT_BP) */
        return KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_SW_BP | KVM_GUESTDBG_USE_HW_BP |
               KVM_GUESTDBG_BLOCKIRQ;
    case KVM_CAP_NR_MEMSLOTS:
        return SOFT_MAX_SLOTS;
    case KVM_CAP_NR_VCPUS:
    case KVM_CAP_MAX_VCPUS:
    case KVM_CAP_MAX_VCPU_ID:
        return SOFT_MAX_VCPUS;
    case KVM_CAP_COALESCED_MMIO:
        return 0;
    default:
        (void)vm;
        return 0;
    }
}

/* KVM_ENABLE_CAP on a VM fd (kvm_vm_ioctl_enable_cap): flags must be 0; a capability this backend does not take is
 * -EINVAL, as KVM answers for one it does not know. */
int soft_vm_enable_cap(struct soft_vm *vm, const struct kvm_enable_cap *cap)
{
    if (cap->flags)
        return -EINVAL;
    switch (cap->cap) {
    case KVM_CAP_MAX_VCPU_ID:
        return soft_vm_max_vcpu_id_set(vm, cap->args[0]);
    case KVM_CAP_MSR_PLATFORM_INFO:
        vm->platform_info_hidden = !cap->args[0]; /* KVM: guest_can_read_msr_platform_info = args[0] */
        return 0;
    case KVM_CAP_X86_USER_SPACE_MSR: /* the KVM_MSR_EXIT_REASON_* that exit to user space */
        if (cap->args[0] &
            ~(uint64_t)(KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_FILTER)) {
            soft_set_error("soft backend: KVM_CAP_X86_USER_SPACE_MSR 0x%llx: only KVM_MSR_EXIT_REASON_INVAL, UNKNOWN "
                           "and FILTER are valid",
                           (unsigned long long)cap->args[0]);
            return -EINVAL;
        }
        vm->user_space_msr_mask = (uint32_t)cap->args[0];
        return 0;
    case KVM_CAP_DISABLE_QUIRKS2:
        if (cap->args[0] & ~(uint64_t)SOFT_VALID_QUIRKS) {
            soft_set_error("soft backend: KVM_CAP_DISABLE_QUIRKS2 0x%llx: only quirks 0x%x can be disabled",
                           (unsigned long long)cap->args[0], SOFT_VALID_QUIRKS);
            return -EINVAL;
        }
        vm->disabled_quirks = cap->args[0]; /* KVM_CAP_DISABLE_QUIRKS (which takes any bits) is not offered */
        return 0;
    default:
        (void)vm;
        soft_set_error("soft backend: KVM_ENABLE_CAP of capability %u on a VM is not supported", cap->cap);
        return -EINVAL;
    }
}

/* KVM_ENABLE_CAP on a vCPU fd (kvm_vcpu_ioctl_enable_cap). */
int soft_vcpu_enable_cap(struct soft_vcpu *v, const struct kvm_enable_cap *cap)
{
    if (cap->flags)
        return -EINVAL;
    switch (cap->cap) {
    case KVM_CAP_ENFORCE_PV_FEATURE_CPUID:
        v->pv_enforce = cap->args[0] != 0;
        if (v->pv_enforce)
            soft_pv_cpuid_update(v); /* kvm_update_pv_runtime */
        return 0;
    case KVM_CAP_HYPERV_ENFORCE_CPUID: /* soft_hyperv.c */
    case KVM_CAP_HYPERV_SYNIC:
    case KVM_CAP_HYPERV_SYNIC2:
        return soft_hv_enable_cap(v, cap);
    default:
        (void)v;
        soft_set_error("soft backend: KVM_ENABLE_CAP of capability %u on a vCPU is not supported", cap->cap);
        return -EINVAL;
    }
}
