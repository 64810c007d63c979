/*
 * The feature MSRs of the soft CPU (KVM_CAP_GET_MSR_FEATURES): KVM_GET_MSR_FEATURE_INDEX_LIST and KVM_GET_MSRS on
 * /dev/kvm's fd, with the MSRs KVM 6.1 lists on AMD (x86.c msr_based_features_all, kept where
 * kvm_get_msr_feature or svm_get_msr_feature answers). Pure logic.
 */
#include "soft_msr.h"

#include <errno.h>

#define SOFT_MSR_UCODE_REV    0x8bu
#define SOFT_MSR_ARCH_CAPS    0x10au
#define SOFT_MSR_PERF_CAPS    0x345u
#define SOFT_MSR_AMD64_DE_CFG 0xc0011029u

/* IA32_ARCH_CAPABILITIES bits (the kernel's msr-index.h) that KVM's kvm_get_arch_capabilities sets. */
#define ARCH_CAP_RDCL_NO               (1ull << 0)
#define ARCH_CAP_SKIP_VMENTRY_L1DFLUSH (1ull << 3)
#define ARCH_CAP_SSB_NO                (1ull << 4)
#define ARCH_CAP_MDS_NO                (1ull << 5)
#define ARCH_CAP_PSCHANGE_MC_NO        (1ull << 6)
#define ARCH_CAP_GDS_NO                (1ull << 26)
#define ARCH_CAP_RFDS_NO               (1ull << 27)
#define ARCH_CAP_ITS_NO                (1ull << 62)
#define DE_CFG_LFENCE_SERIALIZE        (1ull << 1)

/* In KVM's order: AMD's DE_CFG, then the microcode revision, ARCH_CAPABILITIES and PERF_CAPABILITIES. */
static const uint32_t soft_msr_features[] = {SOFT_MSR_AMD64_DE_CFG, SOFT_MSR_UCODE_REV, SOFT_MSR_ARCH_CAPS,
                                             SOFT_MSR_PERF_CAPS};

const uint32_t *soft_msr_feature_list(uint32_t *n)
{
    *n = sizeof soft_msr_features / sizeof soft_msr_features[0];
    return soft_msr_features;
}

bool soft_msr_feature_get(uint32_t idx, uint64_t *val)
{
    switch (idx) {
    case SOFT_MSR_AMD64_DE_CFG:
        /* svm_get_msr_feature: LFENCE is serializing (the engine runs one instruction after another). */
        *val = DE_CFG_LFENCE_SERIALIZE;
        return true;
    case SOFT_MSR_UCODE_REV:
        /* The host's revision on KVM; the soft CPU has no microcode: what KVM on AMD gives a vCPU (svm.c). */
        *val = 0x01000065;
        return true;
    case SOFT_MSR_ARCH_CAPS:
        /*
         * kvm_get_arch_capabilities on a host with none of the speculation bugs it asks about (the engine does not
         * speculate) and no RTM: every "not affected" bit it derives, and PSCHANGE_MC_NO and SKIP_VMENTRY_L1DFLUSH,
         * which it sets on AMD.
         */
        *val = ARCH_CAP_RDCL_NO | ARCH_CAP_SKIP_VMENTRY_L1DFLUSH | ARCH_CAP_SSB_NO | ARCH_CAP_MDS_NO |
               ARCH_CAP_PSCHANGE_MC_NO | ARCH_CAP_GDS_NO | ARCH_CAP_RFDS_NO | ARCH_CAP_ITS_NO;
        return true;
    case SOFT_MSR_PERF_CAPS:
        *val = 0; /* kvm_caps.supported_perf_cap: none on AMD */
        return true;
    default:
        return false;
    }
}

int soft_msr_feature_msrs(struct kvm_msrs *m)
{
    if (m->nmsrs >= 256)
        return -E2BIG; /* MAX_IO_MSRS */
    uint32_t i;
    for (i = 0; i < m->nmsrs; i++) {
        uint64_t val = 0;
        bool ok = soft_msr_feature_get(m->entries[i].index, &val);
        m->entries[i].data = val; /* do_get_msr_feature clears the output even when it fails */
        if (!ok)
            break;
    }
    return (int)i;
}
