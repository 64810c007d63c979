/*
 * Hyper-V's enlightenments as KVM emulates them (arch/x86/kvm/hyperv.c), on the soft backend: the synthetic MSRs
 * (partition-wide and per vCPU), the reference TSC page, the hypercall page and the hypercalls, their access checks
 * against the Hyper-V CPUID the VMM set (KVM_CAP_HYPERV_ENFORCE_CPUID), and SynIC's registers. The pure parts (the
 * access rules, the TSC page's parameters, the CPUID cache) take no vCPU and are unit-tested alone.
 */
#ifndef MINIVMM_SOFT_HYPERV_H
#define MINIVMM_SOFT_HYPERV_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

/* Synthetic MSRs of the Hyper-V TLFS, as the kernel's hyperv-tlfs.h names them (not a uapi header). */
#define HV_X64_MSR_GUEST_OS_ID             0x40000000u
#define HV_X64_MSR_HYPERCALL               0x40000001u
#define HV_X64_MSR_VP_INDEX                0x40000002u
#define HV_X64_MSR_RESET                   0x40000003u
#define HV_X64_MSR_VP_RUNTIME              0x40000010u
#define HV_X64_MSR_TIME_REF_COUNT          0x40000020u
#define HV_X64_MSR_REFERENCE_TSC           0x40000021u
#define HV_X64_MSR_TSC_FREQUENCY           0x40000022u
#define HV_X64_MSR_APIC_FREQUENCY          0x40000023u
#define HV_X64_MSR_EOI                     0x40000070u
#define HV_X64_MSR_ICR                     0x40000071u
#define HV_X64_MSR_TPR                     0x40000072u
#define HV_X64_MSR_VP_ASSIST_PAGE          0x40000073u
#define HV_X64_MSR_SCONTROL                0x40000080u
#define HV_X64_MSR_SVERSION                0x40000081u
#define HV_X64_MSR_SIEFP                   0x40000082u
#define HV_X64_MSR_SIMP                    0x40000083u
#define HV_X64_MSR_EOM                     0x40000084u
#define HV_X64_MSR_SINT0                   0x40000090u
#define HV_X64_MSR_SINT15                  0x4000009Fu
#define HV_X64_MSR_STIMER0_CONFIG          0x400000B0u
#define HV_X64_MSR_STIMER3_COUNT           0x400000B7u
#define HV_X64_MSR_SYNDBG_CONTROL          0x400000F1u
#define HV_X64_MSR_SYNDBG_STATUS           0x400000F2u
#define HV_X64_MSR_SYNDBG_SEND_BUFFER      0x400000F3u
#define HV_X64_MSR_SYNDBG_RECV_BUFFER      0x400000F4u
#define HV_X64_MSR_SYNDBG_PENDING_BUFFER   0x400000F5u
#define HV_X64_MSR_SYNDBG_OPTIONS          0x400000FFu
#define HV_X64_MSR_CRASH_P0                0x40000100u
#define HV_X64_MSR_CRASH_P4                0x40000104u
#define HV_X64_MSR_CRASH_CTL               0x40000105u
#define HV_X64_MSR_REENLIGHTENMENT_CONTROL 0x40000106u
#define HV_X64_MSR_TSC_EMULATION_CONTROL   0x40000107u
#define HV_X64_MSR_TSC_EMULATION_STATUS    0x40000108u

/* HYPERV_CPUID_FEATURES (0x40000003) EAX, EBX and EDX bits, HYPERV_CPUID_ENLIGHTMENT_INFO's, SYNDBG's. */
#define HV_MSR_VP_RUNTIME_AVAILABLE              (1u << 0)
#define HV_MSR_TIME_REF_COUNT_AVAILABLE          (1u << 1)
#define HV_MSR_SYNIC_AVAILABLE                   (1u << 2)
#define HV_MSR_SYNTIMER_AVAILABLE                (1u << 3)
#define HV_MSR_APIC_ACCESS_AVAILABLE             (1u << 4)
#define HV_MSR_HYPERCALL_AVAILABLE               (1u << 5)
#define HV_MSR_VP_INDEX_AVAILABLE                (1u << 6)
#define HV_MSR_RESET_AVAILABLE                   (1u << 7)
#define HV_MSR_REFERENCE_TSC_AVAILABLE           (1u << 9)
#define HV_ACCESS_FREQUENCY_MSRS                 (1u << 11)
#define HV_ACCESS_REENLIGHTENMENT                (1u << 13)
#define HV_POST_MESSAGES                         (1u << 4)
#define HV_SIGNAL_EVENTS                         (1u << 5)
#define HV_DEBUGGING                             (1u << 11)
#define HV_X64_HYPERCALL_XMM_INPUT_AVAILABLE     (1u << 4)
#define HV_FEATURE_GUEST_CRASH_MSR_AVAILABLE     (1u << 10)
#define HV_FEATURE_DEBUG_MSRS_AVAILABLE          (1u << 11)
#define HV_STIMER_DIRECT_MODE_AVAILABLE          (1u << 19)
#define HV_X64_REMOTE_TLB_FLUSH_RECOMMENDED      (1u << 2)
#define HV_X64_CLUSTER_IPI_RECOMMENDED           (1u << 10)
#define HV_X64_EX_PROCESSOR_MASKS_RECOMMENDED    (1u << 11)
#define HV_X64_SYNDBG_CAP_ALLOW_KERNEL_DEBUGGING (1u << 1)

/* Hypercall codes and status values (hyperv-tlfs.h). */
#define HVCALL_NOTIFY_LONG_SPIN_WAIT          0x0008
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE    0x0002
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST     0x0003
#define HVCALL_SEND_IPI                       0x000b
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX 0x0013
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX  0x0014
#define HVCALL_SEND_IPI_EX                    0x0015
#define HVCALL_POST_MESSAGE                   0x005c
#define HVCALL_SIGNAL_EVENT                   0x005d
#define HVCALL_POST_DEBUG_DATA                0x0069
#define HVCALL_RETRIEVE_DEBUG_DATA            0x006a
#define HVCALL_RESET_DEBUG_SESSION            0x006b
#define HV_STATUS_SUCCESS                     0
#define HV_STATUS_INVALID_HYPERCALL_CODE      2
#define HV_STATUS_INVALID_HYPERCALL_INPUT     3
#define HV_STATUS_INVALID_ALIGNMENT           4
#define HV_STATUS_INVALID_PARAMETER           5
#define HV_STATUS_ACCESS_DENIED               6
#define HV_STATUS_OPERATION_DENIED            8
#define HV_STATUS_INVALID_PORT_ID             17
#define HV_HYPERCALL_FAST_BIT                 (1ull << 16)

/* What KVM caches of the vCPU's Hyper-V CPUID (kvm_hv_set_cpuid's cpuid_cache). */
struct soft_hv_cpuid {
    uint32_t features_eax, features_ebx, features_edx;
    uint32_t enlightenments_eax, enlightenments_ebx;
    uint32_t syndbg_cap_eax;
};

/* One synthetic timer (KVM's kvm_vcpu_hv_stimer): its registers. This backend never fires them (see .c). */
struct soft_hv_stimer {
    uint64_t config, count;
};

/* The per-vCPU part (struct kvm_vcpu_hv), zero in a new vCPU until kvm_hv_vcpu_init's values are set (init). */
struct soft_hv_vcpu {
    bool init, enabled, enforce;
    struct soft_hv_cpuid cpuid;
    uint32_t vp_index;
    uint64_t vapic, runtime_offset;
    struct {
        bool active, dont_zero;
        uint64_t control, version, evt_page, msg_page, sint[16];
    } synic;
    struct soft_hv_stimer stimer[4];
};

/* The VM-wide part (struct kvm_hv). */
struct soft_hv_vm {
    uint64_t guest_os_id, hypercall, tsc_page_msr;
    int tsc_page_status; /* enum soft_hv_tsc_status */
    struct {
        uint32_t sequence, reserved;
        uint64_t scale;
        int64_t offset;
    } tsc_ref; /* struct ms_hyperv_tsc_page's head, as last written */
    uint64_t crash_param[5], crash_ctl;
    uint64_t reenlightenment_control, tsc_emulation_control, tsc_emulation_status;
    struct {
        uint64_t control, status, send_page, recv_page, pending_page, options;
    } syndbg;
};

/* KVM's hv_tsc_page_status. */
enum soft_hv_tsc_status {
    SOFT_HV_TSC_UNSET,
    SOFT_HV_TSC_GUEST_CHANGED,
    SOFT_HV_TSC_HOST_CHANGED,
    SOFT_HV_TSC_SET,
    SOFT_HV_TSC_BROKEN,
};

struct soft_vm;
struct soft_vcpu;

/* Pure rules. */
/* kvm_cpuid_has_hyperv and kvm_hv_set_cpuid: true when 0x40000001.EAX is "Hv#1"; *c gets the cached leaves. */
bool soft_hv_cpuid_parse(const struct kvm_cpuid_entry2 *tab, int n, struct soft_hv_cpuid *c);
/* True for the MSRs KVM hands to kvm_hv_get/set_msr_common (x86.c's Hyper-V ranges). */
bool soft_hv_msr_is(uint32_t idx);
/* hv_check_msr_access: may the guest touch idx with these CPUID bits (always when not enforcing)? */
bool soft_hv_msr_access(const struct soft_hv_cpuid *c, bool enforce, uint32_t idx);
/* hv_check_hypercall_access: may the guest make hypercall code? */
bool soft_hv_hcall_access(const struct soft_hv_cpuid *c, bool enforce, uint16_t code);
/*
 * compute_tsc_page_parameters: the reference TSC page's scale and offset from a kvmclock (pvclock) reading, so that
 * (tsc * scale >> 64) + offset is kvmclock in 100 ns units. False when the clock is not stable or the scale would
 * not fit (the guest then falls back to HV_X64_MSR_TIME_REF_COUNT).
 */
bool soft_hv_tsc_page_params(uint64_t tsc_timestamp, uint64_t system_time, uint32_t mul, int8_t shift, bool stable,
                             uint64_t *scale, int64_t *offset);
/* The high 64 bits of a * b (mul_u64_u64_shr(a, b, 64)). */
uint64_t soft_hv_mul_shr64(uint64_t a, uint64_t b);

/* Hooks for the rest of the backend. */
/*
 * A Hyper-V MSR read or written by the guest (host false) or by the VMM's KVM_GET/SET_MSRS (host true), as
 * kvm_hv_get/set_msr_common: 1 done (*val read), -1 refused (#GP for the guest), 0 not a Hyper-V MSR.
 */
int soft_hv_msr(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write, bool host);
/* KVM_SET_CPUID2 changed the vCPU's table: Hyper-V on or off, and the cached leaves (kvm_hv_set_cpuid). */
void soft_hv_cpuid_update(struct soft_vcpu *v);
/* kvm_hv_hypercall_enabled: Hyper-V in CPUID and a guest OS ID written. */
bool soft_hv_hypercall_enabled(struct soft_vcpu *v);
/*
 * VMMCALL at rip with Hyper-V's hypercalls on (kvm_hv_hypercall), image loaded: the status in RAX (RDX:RAX
 * outside 64-bit mode) and RIP past it, #UD at CPL > 0, in real mode, or for an XMM fast call the CPUID lacks;
 * POST_MESSAGE, SIGNAL_EVENT with an unknown port, and the debugging calls exit to user space (KVM_EXIT_HYPERV).
 */
void soft_hv_hypercall(struct soft_vcpu *v, uint64_t rip);
/* KVM_ENABLE_CAP on a vCPU: KVM_CAP_HYPERV_ENFORCE_CPUID, KVM_CAP_HYPERV_SYNIC and SYNIC2. 0 or -errno. */
int soft_hv_enable_cap(struct soft_vcpu *v, const struct kvm_enable_cap *cap);
/* soft_hyperv_hcall.c's view of soft_hyperv.c: a vCPU's VP index, and HV_X64_MSR_SYNDBG_OPTIONS. */
uint32_t soft_hv_vp_index(const struct soft_vcpu *v);
uint64_t soft_hv_syndbg_options(struct soft_vm *vm);
/* KVM_SET_CLOCK moved kvmclock: the reference TSC page follows (kvm_hv_request_tsc_page_update + setup). */
void soft_hv_clock_changed(struct soft_vm *vm);

#endif
