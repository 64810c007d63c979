/* The soft backend's MSR tables and kvmclock arithmetic. Pure logic. */
#ifndef MINIVMM_SOFT_MSR_H
#define MINIVMM_SOFT_MSR_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

/* The MSRs KVM_GET_MSR_INDEX_LIST reports; *n gets their count. */
const uint32_t *soft_msr_index_list(uint32_t *n);
/* soft_msr_feature.c: the feature MSRs KVM_GET_MSR_FEATURE_INDEX_LIST reports; *n gets their count. */
const uint32_t *soft_msr_feature_list(uint32_t *n);
/* A feature MSR's value as KVM reports it (KVM_CAP_GET_MSR_FEATURES): true if idx is one. */
bool soft_msr_feature_get(uint32_t idx, uint64_t *val);
/* KVM_GET_MSRS on the system fd: the number of entries read, or -errno. */
int soft_msr_feature_msrs(struct kvm_msrs *m);
/* True for the MSRs the engine itself keeps (EFER, SYSCALL and SYSENTER MSRs, FS/GS bases). */
bool soft_msr_in_engine(uint32_t idx);
/*
 * pvclock's scale for a TSC of tsc_khz: ns = ((tsc_delta << shift) * mul) >> 32
 * (shift negative: >> -shift), as a guest's kvmclock reads it.
 */
void soft_pvclock_scale(uint64_t tsc_khz, uint32_t *mul, int8_t *shift);

#endif
