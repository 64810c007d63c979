/* Lab 2 (reference): GDT descriptors, and a vCPU put in 32-bit protected mode by the VMM. */
#include <errno.h>
#include <string.h>

#include "lab_parts.h"

int lab2_gdt_entry_encode(const struct kvm_segment *seg, uint64_t *desc_out)
{
    uint64_t limit = seg->limit, base = seg->base, desc;

    if (base > 0xffffffffull)
        return mvm_fail(EINVAL, "lab2: segment base 0x%llx does not fit the descriptor's 32 bits",
                        (unsigned long long)base);
    if (seg->g) {
        /* G: the CPU shifts the 20-bit field left by 12 and fills the low bits with ones. */
        if ((limit & 0xfff) != 0xfff)
            return mvm_fail(EINVAL, "lab2: limit 0x%llx with G=1 must end in 0xfff (it counts 4 KiB units)",
                            (unsigned long long)limit);
        limit >>= 12;
    } else if (limit > X86_DESC_LIMIT_MAX) {
        return mvm_fail(EINVAL, "lab2: limit 0x%llx with G=0 does not fit 20 bits; set G for limits above 1 MiB",
                        (unsigned long long)limit);
    }
    if (seg->type > 0xf || seg->dpl > 3)
        return mvm_fail(EINVAL, "lab2: type %u (4 bits) or DPL %u (2 bits) out of range", seg->type, seg->dpl);
    if (seg->l && seg->db)
        return mvm_fail(EINVAL, "lab2: L=1 with D=1 is reserved; a 64-bit code segment has D=0");
    desc = (limit & 0xffff) << X86_DESC_LIMIT_LO_SHIFT;
    desc |= ((limit >> 16) & 0xf) << X86_DESC_LIMIT_HI_SHIFT;
    desc |= (base & 0xffffff) << X86_DESC_BASE_LO_SHIFT;
    desc |= (base >> 24) << X86_DESC_BASE_HI_SHIFT;
    desc |= (uint64_t)seg->type << X86_DESC_TYPE_SHIFT;
    desc |= (uint64_t)seg->dpl << X86_DESC_DPL_SHIFT;
    desc |= seg->s ? X86_DESC_S : 0;
    desc |= seg->present ? X86_DESC_P : 0;
    desc |= seg->avl ? X86_DESC_AVL : 0;
    desc |= seg->l ? X86_DESC_L : 0;
    desc |= seg->db ? X86_DESC_DB : 0;
    desc |= seg->g ? X86_DESC_G : 0;
    *desc_out = desc;
    return 0;
}

/* A flat (base 0, 4 GiB) present ring-0 segment; type includes "accessed", as the CPU leaves it after a load. */
static struct kvm_segment segment_flat(uint16_t selector, uint8_t type, bool code64)
{
    return (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = selector,
        .type = type | X86_SEG_TYPE_ACCESSED,
        .present = 1,
        .dpl = 0,
        .db = !code64,
        .s = 1,
        .l = code64,
        .g = 1,
    };
}

int lab2_vcpu_setup_protected(struct mvm_vcpu *vcpu, uint64_t entry_gpa)
{
    struct kvm_segment boot[MVM_BOOT_GDT_ENTRIES - 1] = {
        segment_flat(MVM_SEL_CODE32, X86_SEG_TYPE_CODE_XR, false),
        segment_flat(MVM_SEL_DATA, X86_SEG_TYPE_DATA_RW, false),
        segment_flat(MVM_SEL_CODE64, X86_SEG_TYPE_CODE_XR, true),
    };
    uint64_t gdt[MVM_BOOT_GDT_ENTRIES] = {0}; /* entry 0 is the null descriptor */
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    int rc;

    if (entry_gpa > 0xffffffffull)
        return mvm_fail(EINVAL, "lab2: entry 0x%llx is beyond 32-bit protected mode's 4 GiB",
                        (unsigned long long)entry_gpa);
    for (int i = 0; i < MVM_BOOT_GDT_ENTRIES - 1; i++) {
        rc = lab2_gdt_entry_encode(&boot[i], &gdt[boot[i].selector >> 3]);
        if (rc < 0)
            return rc;
    }
    /* The GDT only matters when the guest loads a selector; the VMM still leaves a true one behind. */
    rc = vm_write(vcpu_vm(vcpu), MVM_BOOT_GDT_GPA, gdt, sizeof(gdt));
    if (rc < 0)
        return rc;
    rc = vcpu_sregs_get(vcpu, &sregs);
    if (rc < 0)
        return rc;
    sregs.gdt.base = MVM_BOOT_GDT_GPA;
    sregs.gdt.limit = sizeof(gdt) - 1;
    /* KVM_SET_SREGS writes the hidden descriptor caches directly: no GDT read happens here. */
    sregs.cs = boot[0];
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = boot[1];
    sregs.cr0 |= X86_CR0_PE;
    rc = vcpu_sregs_set(vcpu, &sregs);
    if (rc < 0)
        return rc;
    memset(&regs, 0, sizeof(regs));
    regs.rip = entry_gpa;
    regs.rsp = MVM_BOOT_STACK_TOP;
    regs.rflags = 0x2;
    return vcpu_regs_set(vcpu, &regs);
}
