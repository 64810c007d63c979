/*
 * System management mode as KVM on AMD gives it: the SMRAM state-save area KVM writes at an SMI (x86.c enter_smm,
 * enter_smm_save_state_32/64), the state the vCPU enters SMM with, and what RSM loads back (emulate.c em_rsm,
 * rsm_load_state_32/64). Pure logic on KVM's own structs, unit-tested; soft_smm.c applies it to a vCPU.
 */
#ifndef MINIVMM_SOFT_SMM_H
#define MINIVMM_SOFT_SMM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

/* The state-save area: the last 512 bytes of the 64 KiB above SMBASE (SMBASE + 0xfe00), offsets as the SDM and KVM
 * name them (0x7e00-0x7fff, relative to SMBASE + 0x8000). */
#define SOFT_SMM_SAVE_OFFSET 0xfe00u
#define SOFT_SMM_SAVE_SIZE   512u
#define SOFT_SMM_ENTRY_RIP   0x8000u
/* The revision identifiers KVM writes: the 32-bit layout, and AMD64's. Bit 17: SMBASE relocation supported. */
#define SOFT_SMM_REV_32 0x00020000u
#define SOFT_SMM_REV_64 0x00020064u
/* The reset SMBASE (kvm_vcpu_reset). */
#define SOFT_SMM_SMBASE_RESET 0x30000u
/* MSRs: SMBASE (host-initiated accesses only) and the count of SMIs taken (guest-readable). */
#define X86_MSR_SMBASE    0x9eu
#define X86_MSR_SMI_COUNT 0x34u

/* What the state-save area holds: the registers as KVM_GET_REGS/SREGS see them, DR6/DR7 and SMBASE. */
struct soft_smm_cpu {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    uint64_t dr6, dr7;
    uint64_t smbase;
};

/* enter_smm_save_state_64 (lm: the vCPU's CPUID has long mode) or _32: the 512 bytes of the state-save area. */
void soft_smm_save(const struct soft_smm_cpu *c, bool lm, uint8_t buf[SOFT_SMM_SAVE_SIZE]);
/* enter_smm's new state: big real mode at SMBASE:0x8000, RFLAGS 2, CR0 less PE/EM/TS/PG, CR4 0, IDT 0/0, DR7 0x400,
 * flat 4 GiB data segments; EFER 0 when lm. GDT, LDT, TR, CR2, CR3 and the GPRs stay. */
void soft_smm_entry_state(struct soft_smm_cpu *c, bool lm);
/*
 * em_rsm's rsm_load_state_64 (lm) or _32: load *c from the state-save area. c's GPRs, segments and CRs are replaced;
 * apic_base, cr8 and the interrupt bitmap are kept. False where KVM fails the RSM (its set_cr, set_dr or EFER write
 * refuses a value: the vCPU shuts down), with *why saying which; cr4_reserved and efer_reserved: the CR4 and EFER
 * bits the vCPU's CPUID leaves reserved (EFER is only in the 64-bit area).
 */
bool soft_smm_load(const uint8_t buf[SOFT_SMM_SAVE_SIZE], bool lm, uint64_t cr4_reserved, uint64_t efer_reserved,
                   struct soft_smm_cpu *c, const char **why);

#endif
