/*
 * KVM_GET_SUPPORTED_HV_CPUID on the soft backend (hyperv.c kvm_get_hv_cpuid): the Hyper-V CPUID leaves a VMM may
 * give its guest, saying what of Hyper-V this backend supports: the synthetic MSRs, the reference TSC page and the
 * hypercalls soft_hyperv.c implements, as KVM sets their bits; not SynIC, its timers and messages, nor the synthetic
 * debugger. The leaves' layout, identification and limits are KVM's.
 */
#include "soft_hyperv.h"
#include "soft_priv.h"
#include "soft_pv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Leaf numbers and bits of the Hyper-V TLFS, as the kernel's hyperv-tlfs.h and kvm/hyperv.h name them. */
#define HV_CPUID_VENDOR_AND_MAX_FUNCTIONS        0x40000000u
#define HV_CPUID_INTERFACE                       0x40000001u
#define HV_CPUID_VERSION                         0x40000002u
#define HV_CPUID_FEATURES                        0x40000003u
#define HV_CPUID_ENLIGHTMENT_INFO                0x40000004u
#define HV_CPUID_IMPLEMENT_LIMITS                0x40000005u
#define HV_CPUID_NESTED_FEATURES                 0x4000000au
#define HV_CPUID_SYNDBG_VENDOR_AND_MAX_FUNCTIONS 0x40000080u
#define HV_CPUID_SYNDBG_INTERFACE                0x40000081u
#define HV_CPUID_SYNDBG_PLATFORM_CAPABILITIES    0x40000082u
#define HV_CPUID_SIGNATURE_EAX                   0x31237648u /* "Hv#1" */
#define HV_X64_RELAXED_TIMING_RECOMMENDED        (1u << 5)
#define HV_X64_APIC_ACCESS_RECOMMENDED           (1u << 3)
#define HV_FEATURE_FREQUENCY_MSRS_AVAILABLE      (1u << 8)
#define HV_X64_NO_NONARCH_CORESHARING            (1u << 18)
#define HV_X64_NESTED_MSR_BITMAP                 (1u << 19)
#define HV_X64_NESTED_EVMCS1_PERF_GLOBAL_CTRL    (1u << 0)

static void hv_signature(struct kvm_cpuid_entry2 *e, const char sig[12])
{
    memcpy(&e->ebx, sig, 4);
    memcpy(&e->ecx, sig + 4, 4);
    memcpy(&e->edx, sig + 8, 4);
}

void soft_hv_cpuid_entries(bool smt_possible, struct kvm_cpuid_entry2 out[SOFT_HV_CPUID_NENT])
{
    static const uint32_t leaves[SOFT_HV_CPUID_NENT] = {
        HV_CPUID_VENDOR_AND_MAX_FUNCTIONS,
        HV_CPUID_INTERFACE,
        HV_CPUID_VERSION,
        HV_CPUID_FEATURES,
        HV_CPUID_ENLIGHTMENT_INFO,
        HV_CPUID_IMPLEMENT_LIMITS,
        HV_CPUID_SYNDBG_VENDOR_AND_MAX_FUNCTIONS,
        HV_CPUID_SYNDBG_INTERFACE,
        HV_CPUID_SYNDBG_PLATFORM_CAPABILITIES,
        HV_CPUID_NESTED_FEATURES,
    };
    memset(out, 0, SOFT_HV_CPUID_NENT * sizeof out[0]);
    for (int i = 0; i < SOFT_HV_CPUID_NENT; i++) {
        struct kvm_cpuid_entry2 *e = &out[i];
        e->function = leaves[i];
        switch (e->function) {
        case HV_CPUID_VENDOR_AND_MAX_FUNCTIONS:
            e->eax = HV_CPUID_SYNDBG_PLATFORM_CAPABILITIES;
            hv_signature(e, "Linux KVM Hv");
            break;
        case HV_CPUID_INTERFACE:
            e->eax = HV_CPUID_SIGNATURE_EAX;
            break;
        case HV_CPUID_VERSION: /* KVM's: Hyper-V 2016 */
            e->eax = 0x00003839;
            e->ebx = 0x000a0000;
            break;
        case HV_CPUID_FEATURES: /* what soft_hyperv.c implements, as KVM sets it; no SynIC, timers or debugger */
            e->eax = HV_MSR_VP_RUNTIME_AVAILABLE | HV_MSR_TIME_REF_COUNT_AVAILABLE | HV_MSR_APIC_ACCESS_AVAILABLE |
                     HV_MSR_HYPERCALL_AVAILABLE | HV_MSR_VP_INDEX_AVAILABLE | HV_MSR_RESET_AVAILABLE |
                     HV_MSR_REFERENCE_TSC_AVAILABLE | HV_ACCESS_FREQUENCY_MSRS | HV_ACCESS_REENLIGHTENMENT;
            e->edx = HV_X64_HYPERCALL_XMM_INPUT_AVAILABLE | HV_FEATURE_FREQUENCY_MSRS_AVAILABLE |
                     HV_FEATURE_GUEST_CRASH_MSR_AVAILABLE;
            break;
        case HV_CPUID_ENLIGHTMENT_INFO:
            /*
             * KVM's: remote TLB flushes and IPIs by hypercall, the APIC's MSRs, relaxed timing (no watchdogs), no
             * core sharing where the host cannot run two threads on a core (!cpu_smt_possible()), and a long spin
             * wait notified after 0xfff retries (soft_hyperv_hcall.c).
             */
            e->eax = HV_X64_REMOTE_TLB_FLUSH_RECOMMENDED | HV_X64_APIC_ACCESS_RECOMMENDED |
                     HV_X64_RELAXED_TIMING_RECOMMENDED | HV_X64_CLUSTER_IPI_RECOMMENDED |
                     HV_X64_EX_PROCESSOR_MASKS_RECOMMENDED | (smt_possible ? 0 : HV_X64_NO_NONARCH_CORESHARING);
            e->ebx = 0xfff;
            break;
        case HV_CPUID_IMPLEMENT_LIMITS:
            e->eax = SOFT_MAX_VCPUS; /* virtual processors */
            e->ebx = 64;             /* logical processors, as KVM's (Hyper-V 2016) */
            break;
        case HV_CPUID_SYNDBG_VENDOR_AND_MAX_FUNCTIONS:
            hv_signature(e, "Linux KVM Hv");
            break;
        case HV_CPUID_SYNDBG_INTERFACE:
            memcpy(&e->eax, "VS#1", 4);
            break;
        case HV_CPUID_SYNDBG_PLATFORM_CAPABILITIES:
            break; /* no synthetic debugger */
        case HV_CPUID_NESTED_FEATURES:
            /*
             * KVM sets these two whatever the CPU: they only change how an L1 hypervisor's MSR bitmap and eVMCS are
             * read, and with no SVM or VMX offered (soft_cpuid.c) there is no L1 hypervisor to read them for.
             */
            e->eax = HV_X64_NESTED_MSR_BITMAP;
            e->ebx = HV_X64_NESTED_EVMCS1_PERF_GLOBAL_CTRL;
            break;
        default:
            break;
        }
    }
}

/* The kernel's cpu_smt_possible(), as its sysfs file shows it: false when SMT is forced off or not supported. */
static bool soft_host_smt_possible(void)
{
    char buf[16] = "";
    FILE *f = fopen("/sys/devices/system/cpu/smt/control", "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strncmp(buf, "forceoff", 8) != 0 && strncmp(buf, "notsupported", 12) != 0;
}

int soft_get_supported_hv_cpuid(struct kvm_cpuid2 *c)
{
    if (c->nent < SOFT_HV_CPUID_NENT) {
        soft_set_error("soft backend: KVM_GET_SUPPORTED_HV_CPUID: room for %u entries, %d needed", c->nent,
                       SOFT_HV_CPUID_NENT);
        return -E2BIG;
    }
    soft_hv_cpuid_entries(soft_host_smt_possible(), c->entries);
    c->nent = SOFT_HV_CPUID_NENT;
    return 0;
}
