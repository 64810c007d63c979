/* The VMM's own guest page walker (4-level, long mode): the test port and tools read guest-virtual memory with it. */
#include <errno.h>

#include "core_internal.h"
#include "x86.h"

static const char *const level_names[] = {"", "PT", "PD", "PDPT", "PML4"};

int vm_gva_to_gpa(struct mvm_vm *vm, uint64_t cr3, uint64_t gva, uint64_t *gpa_out)
{
    uint64_t table_gpa = cr3 & X86_PTE_ADDR_MASK;

    /* Canonical: bits 63:47 all equal. */
    if ((uint64_t)((int64_t)(gva << 16) >> 16) != gva)
        return mvm_fail(EINVAL, "gva 0x%llx is not canonical", (unsigned long long)gva);
    for (int level = 4; level >= 1; level--) {
        uint64_t entry_gpa = table_gpa + X86_PT_INDEX(gva, level) * 8, entry;
        uint64_t offset_mask = (1ull << (X86_PAGE_SHIFT + X86_PT_INDEX_BITS * (level - 1))) - 1;

        if (vm_read(vm, entry_gpa, &entry, sizeof(entry)) < 0)
            return mvm_fail(EFAULT, "gva 0x%llx: the %s entry at gpa 0x%llx is outside guest RAM",
                            (unsigned long long)gva, level_names[level], (unsigned long long)entry_gpa);
        if (!(entry & X86_PTE_P))
            return mvm_fail(EFAULT, "gva 0x%llx is not mapped: %s entry %u (gpa 0x%llx) is not present",
                            (unsigned long long)gva, level_names[level], (unsigned)X86_PT_INDEX(gva, level),
                            (unsigned long long)entry_gpa);
        if (level == 1 || ((level == 2 || level == 3) && (entry & X86_PTE_PS))) {
            *gpa_out = (entry & X86_PTE_ADDR_MASK & ~offset_mask) | (gva & offset_mask);
            return 0;
        }
        table_gpa = entry & X86_PTE_ADDR_MASK;
    }
    return mvm_fail(EFAULT, "gva 0x%llx: the walk ended without a page", (unsigned long long)gva);
}

int vm_read_gva(struct mvm_vcpu *vcpu, uint64_t gva, void *dst, size_t len)
{
    struct kvm_sregs sregs;
    size_t done = 0;
    int rc = vcpu_sregs_get(vcpu, &sregs);

    if (rc < 0)
        return rc;
    if (!(sregs.cr0 & X86_CR0_PG))
        return vm_read(vcpu->vm, gva, dst, len);
    if (!(sregs.efer & X86_EFER_LMA))
        return mvm_fail(EINVAL,
                        "gva 0x%llx: the guest has paging on outside long mode; the VMM walks 4-level "
                        "(long-mode) page tables only",
                        (unsigned long long)gva);
    while (done < len) {
        uint64_t gpa, chunk = X86_PAGE_SIZE - ((gva + done) & (X86_PAGE_SIZE - 1));

        rc = vm_gva_to_gpa(vcpu->vm, sregs.cr3, gva + done, &gpa);
        if (rc < 0)
            return rc;
        if (chunk > len - done)
            chunk = len - done;
        rc = vm_read(vcpu->vm, gpa, (char *)dst + done, chunk);
        if (rc < 0)
            return rc;
        done += chunk;
    }
    return 0;
}
