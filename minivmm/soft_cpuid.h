/* The soft backend's CPUID table: lookups and the fixed-up bits of what the engine emulates. Pure logic. */
#ifndef MINIVMM_SOFT_CPUID_H
#define MINIVMM_SOFT_CPUID_H

#include <linux/kvm.h>
#include <stdint.h>

/* The entry of tab[0..n) for leaf and subleaf sub (sub counts only where the entry says so), or NULL. */
const struct kvm_cpuid_entry2 *soft_cpuid_find(const struct kvm_cpuid_entry2 *tab, int n, uint32_t leaf, uint32_t sub);
/* EAX, EBX, ECX, EDX a guest's CPUID returns for entry e (zeros for NULL) with CR4 = cr4 (OSXSAVE follows it). */
void soft_cpuid_guest_regs(const struct kvm_cpuid_entry2 *e, uint64_t cr4, uint32_t out[4]);
/* What KVM_GET_SUPPORTED_CPUID changes in the engine's own answer r for leaf (hypervisor bit, no x2APIC, LM...). */
void soft_cpuid_supported_fixup(uint32_t leaf, uint32_t r[4]);

#endif
