/* The soft backend's CPUID table: lookups, KVM's runtime bits and rules on it, the CR4 and XCR0 bits it allows. */
#ifndef MINIVMM_SOFT_CPUID_H
#define MINIVMM_SOFT_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <unicorn/unicorn.h>

#include "x86.h"

struct soft_vcpu;

/*
 * The CPU model every engine runs: Unicorn's EPYC. Its translator runs XSAVE, XRSTOR, XSAVEOPT, XGETBV and XSETBV,
 * which Unicorn's default model (qemu64) turns into #UD; its features contain qemu64's. The guest never sees the
 * model's own CPUID (the backend answers CPUID from the vCPU's table), so what it offers beyond the table stays hidden.
 */
#define SOFT_UC_CPU_MODEL UC_CPU_X86_EPYC
/* The XCR0 bits the supported table offers: x87 and SSE (the engine runs no VEX-encoded AVX instruction). */
#define SOFT_CPUID_XCR0 3ull
/* XSAVE's legacy area and header: the size of an XSAVE image with x87 and SSE (KVM's xstate_required_size). */
#define SOFT_CPUID_XSAVE_SIZE 576u

/* uc_open for x86-64 with the backend's CPU model (SOFT_UC_CPU_MODEL). *out is NULL unless UC_ERR_OK. */
uc_err soft_uc_open(uc_engine **out);

/* The entry of tab[0..n) for leaf and subleaf sub (sub counts only where the entry says so), or NULL. */
const struct kvm_cpuid_entry2 *soft_cpuid_find(const struct kvm_cpuid_entry2 *tab, int n, uint32_t leaf, uint32_t sub);
/*
 * The entry a guest's CPUID(leaf, sub) reads (KVM's kvm_cpuid): the table's, else, for a table whose vendor is not AMD
 * or Hygon and a leaf beyond its class's maximum (leaf 0, 0x40000000, 0x80000000...), the highest basic leaf's; NULL
 * for zeros.
 */
const struct kvm_cpuid_entry2 *soft_cpuid_lookup(const struct kvm_cpuid_entry2 *tab, int n, uint32_t leaf,
                                                 uint32_t sub);
/* EAX, EBX, ECX, EDX a guest's CPUID returns for entry e (zeros for NULL) with CR4 = cr4 (OSXSAVE follows it). */
void soft_cpuid_guest_regs(const struct kvm_cpuid_entry2 *e, uint64_t cr4, uint32_t out[4]);
/* What KVM_GET_SUPPORTED_CPUID changes in the engine's own answer r for leaf (hypervisor bit, no x2APIC, LM...). */
void soft_cpuid_supported_fixup(uint32_t leaf, uint32_t r[4]);
/*
 * KVM's runtime bits (cpuid.c __kvm_update_cpuid_runtime) in tab[0..n): CPUID.1:ECX.OSXSAVE = CR4.OSXSAVE,
 * CPUID.1:EDX.APIC = IA32_APIC_BASE.EN, the XSAVE sizes of leaf 0xD for the XCR0 the guest can have.
 */
void soft_cpuid_update_runtime(struct kvm_cpuid_entry2 *tab, int n, uint64_t cr4, uint64_t apic_base);
/* MAXPHYADDR of a table (cpuid_query_maxphyaddr): CPUID.80000008H:EAX[7:0], 36 without that leaf. */
int soft_cpuid_maxphyaddr(const struct kvm_cpuid_entry2 *tab, int n);
/* The XCR0 bits a guest with this table may set (KVM's guest_supported_xcr0): leaf 0xD.0 within SOFT_CPUID_XCR0. */
uint64_t soft_cpuid_guest_xcr0(const struct kvm_cpuid_entry2 *tab, int n);
/* The EFER bits KVM takes at all (the complement of efer_reserved_bits, AMD without nested SVM). */
#define SOFT_EFER_KNOWN ((uint64_t)(X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE))
/*
 * A guest's WRMSR to EFER from old to efer with CR0 = cr0 (x86.c set_efer, __kvm_valid_efer): false where KVM injects
 * #GP: a bit outside SOFT_EFER_KNOWN, LME/LMA or NXE without LM or NX in the table, LME changed while paging.
 */
bool soft_efer_guest_ok(const struct kvm_cpuid_entry2 *tab, int n, uint64_t old, uint64_t efer, uint64_t cr0);
/* XSETBV's and KVM_SET_XCRS's rule for XCR0 (x86.c __kvm_set_xcr): true when KVM takes xcr0. */
bool soft_xcr0_valid(uint64_t xcr0, uint64_t guest_supported);
/*
 * KVM_SET_SREGS's checks (kvm_is_valid_sregs, kvm_set_apic_base): long-mode consistency of EFER, CR0, CR4, CR3 and
 * CS.L, CR4 bits in cr4_rsvd, CR0's rules, IA32_APIC_BASE's reserved bits and mode. 0, or -EINVAL with the reason in
 * the last error.
 */
int soft_sregs_check(const struct kvm_sregs *s, uint64_t cr4_rsvd, int maxphyaddr, bool x2apic);

/* The vCPU's CR4 bits KVM refuses (kvm_is_valid_cr4): the backend's own, and the CPUID table's once one is set. */
uint64_t soft_vcpu_cr4_reserved(const struct soft_vcpu *v);
/* KVM_SET_SREGS's checks on s for this vCPU. 0 or -EINVAL. */
int soft_vcpu_sregs_check(const struct soft_vcpu *v, const struct kvm_sregs *s);
/* KVM_SET_CPUID2 (kvm_set_cpuid): after the first KVM_RUN only an identical table. 0 or -errno. */
int soft_vcpu_set_cpuid(struct soft_vcpu *v, const struct kvm_cpuid2 *c);
/* KVM_GET_CPUID2: the table with its runtime bits as of now. 0 or -E2BIG. */
int soft_vcpu_get_cpuid(struct soft_vcpu *v, struct kvm_cpuid2 *c);

#endif
