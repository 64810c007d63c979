/* Lab 2 (student file): GDT descriptors, and a vCPU put in 32-bit protected mode by the VMM. */
#include <errno.h>
#include <string.h>

#include "lab_parts.h"

/*
 * Encode one code/data segment into the 8-byte descriptor the CPU reads from
 * the GDT when a selector is loaded (mov ds, far jmp, iret...).
 *
 * struct kvm_segment is KVM's view of a *loaded* segment: the hidden part of
 * the register (base, byte-granular limit, type, s, dpl, present, avl, l, db,
 * g). A descriptor packs the same facts, scattered for 286 compatibility.
 *
 * TODO(lab2):
 *  1. Check the input; each failure is mvm_fail(EINVAL, ...) naming the field:
 *     the base must fit 32 bits; type 4 bits, dpl 2 bits; L=1 with D=1 is
 *     reserved.
 *  2. The limit field has only 20 bits. With G=1 the CPU scales it by 4 KiB
 *     and fills the low 12 bits with ones, so seg->limit must end in 0xfff and
 *     the field holds limit >> 12. With G=0 the limit must fit 20 bits.
 *  3. Place each field with the X86_DESC_* shifts and bits of x86.h: limit
 *     15:0 and 19:16, base 23:0 and 31:24, type, S, DPL, P, AVL, L, D/B, G.
 *     Check yourself: a flat 32-bit code segment (type 0xb, G, D) is
 *     0x00cf9b000000ffff.
 */
int lab2_gdt_entry_encode(const struct kvm_segment *seg, uint64_t *desc_out)
{
    (void)desc_out;
    return mvm_fail(ENOSYS,
                    "lab2: lab2_gdt_entry_encode() is not written yet: pack base 0x%llx, limit 0x%x, "
                    "type 0x%x and the flag bits into an 8-byte GDT descriptor (x86.h names the fields)",
                    (unsigned long long)seg->base, seg->limit, seg->type);
}

/*
 * Put a fresh vCPU in 32-bit protected mode at `entry_gpa`, the way a boot
 * loader leaves it, but without running one: the VMM writes the state.
 *
 * TODO(lab2):
 *  1. Reject entry_gpa above 4 GiB with mvm_fail(EINVAL, ...): EIP has 32 bits.
 *  2. Describe the boot segments as struct kvm_segment: flat (base 0, limit
 *     0xffffffff, G=1), present, S=1, DPL 0, D/B=1; code is type 0xb
 *     (execute/read, accessed), data type 0x3 (read/write, accessed) - Intel
 *     CPUs refuse KVM_SET_SREGS with a loaded segment whose accessed bit is
 *     clear. Selectors MVM_SEL_CODE32 and MVM_SEL_DATA; also a 64-bit code
 *     segment for lab 3 at MVM_SEL_CODE64 (L=1, D=0).
 *  3. Encode them with lab2_gdt_entry_encode() into a table of
 *     MVM_BOOT_GDT_ENTRIES descriptors (entry 0 is the null descriptor; entry
 *     i has selector i * 8) and vm_write() it at MVM_BOOT_GDT_GPA. KVM never
 *     reads it here; the guest's CPU does when it reloads a selector.
 *  4. vcpu_sregs_get(); set gdt.base/limit (limit = size - 1); copy the code
 *     segment into cs and the data segment into ds, es, fs, gs and ss - this
 *     fills the hidden descriptor caches directly; set CR0.PE (X86_CR0_PE);
 *     vcpu_sregs_set().
 *  5. struct kvm_regs: RIP = entry_gpa, RSP = MVM_BOOT_STACK_TOP, RFLAGS = 0x2.
 */
int lab2_vcpu_setup_protected(struct mvm_vcpu *vcpu, uint64_t entry_gpa)
{
    (void)vcpu;
    return mvm_fail(ENOSYS,
                    "lab2: lab2_vcpu_setup_protected() is not written yet: write the boot GDT at 0x%x, load "
                    "CS=0x%x and DS..SS=0x%x as flat 32-bit segments, set CR0.PE and EIP=0x%llx",
                    MVM_BOOT_GDT_GPA, MVM_SEL_CODE32, MVM_SEL_DATA, (unsigned long long)entry_gpa);
}
