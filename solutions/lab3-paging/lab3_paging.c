/* Lab 3 (reference): 4-level page tables, a vCPU put in long mode, and the host-side GVA -> GPA walker. */
#include <errno.h>
#include <string.h>

#include "lab_parts.h"

static const char *const level_names[] = {"", "PT", "PD", "PDPT", "PML4"};

/* Bits 63:47 of a canonical address are all equal (48-bit virtual addresses). */
static bool gva_canonical(uint64_t gva)
{
    uint64_t top = gva >> 47;

    return top == 0 || top == 0x1ffff;
}

/* Hands out one zeroed page-table page from the pool. */
static int pool_page_alloc(struct mvm_vm *vm, struct lab3_pt_pool *pool, uint64_t *gpa_out)
{
    void *hva;

    if (pool->used + X86_PAGE_SIZE > pool->size)
        return mvm_fail(ENOSPC, "lab3: the page-table pool at gpa 0x%llx (%llu pages) is used up",
                        (unsigned long long)pool->base_gpa, (unsigned long long)(pool->size / X86_PAGE_SIZE));
    hva = vm_gpa_to_hva(vm, pool->base_gpa + pool->used, X86_PAGE_SIZE);
    if (!hva)
        return mvm_fail(EFAULT, "lab3: page-table page at gpa 0x%llx is not in guest RAM",
                        (unsigned long long)(pool->base_gpa + pool->used));
    memset(hva, 0, X86_PAGE_SIZE);
    *gpa_out = pool->base_gpa + pool->used;
    pool->used += X86_PAGE_SIZE;
    return 0;
}

int lab3_page_map(struct mvm_vm *vm, struct lab3_pt_pool *pool, uint64_t gva, uint64_t gpa, uint64_t page_size,
                  uint64_t flags)
{
    int leaf = page_size == X86_LARGE_PAGE_SIZE ? 2 : 1;
    uint64_t table_gpa, *entry;
    int rc;

    if (page_size != X86_PAGE_SIZE && page_size != X86_LARGE_PAGE_SIZE)
        return mvm_fail(EINVAL, "lab3: page size 0x%llx: only 4 KiB and 2 MiB pages", (unsigned long long)page_size);
    if ((gva | gpa) & (page_size - 1))
        return mvm_fail(EINVAL, "lab3: gva 0x%llx / gpa 0x%llx not aligned to the page size 0x%llx",
                        (unsigned long long)gva, (unsigned long long)gpa, (unsigned long long)page_size);
    if (!gva_canonical(gva) || (gpa & ~X86_PTE_ADDR_MASK))
        return mvm_fail(EINVAL, "lab3: gva 0x%llx is not canonical or gpa 0x%llx is beyond 52 bits",
                        (unsigned long long)gva, (unsigned long long)gpa);
    if (!pool->pml4_gpa) {
        rc = pool_page_alloc(vm, pool, &pool->pml4_gpa);
        if (rc < 0)
            return rc;
    }
    table_gpa = pool->pml4_gpa;
    for (int level = 4;; level--) {
        entry = vm_gpa_to_hva(vm, table_gpa + X86_PT_INDEX(gva, level) * 8, 8);
        if (!entry)
            return mvm_fail(EFAULT, "lab3: %s at gpa 0x%llx is not in guest RAM", level_names[level],
                            (unsigned long long)table_gpa);
        if (level == leaf)
            break;
        if (!(*entry & X86_PTE_P)) {
            uint64_t next;

            rc = pool_page_alloc(vm, pool, &next);
            if (rc < 0)
                return rc;
            /* Upper levels allow everything; the leaf entry decides. */
            *entry = next | X86_PTE_P | X86_PTE_RW | X86_PTE_US;
        } else if (*entry & X86_PTE_PS) {
            return mvm_fail(EEXIST, "lab3: gva 0x%llx lies in a large page mapped by the %s already",
                            (unsigned long long)gva, level_names[level]);
        }
        table_gpa = *entry & X86_PTE_ADDR_MASK;
    }
    if (*entry & X86_PTE_P)
        return mvm_fail(EEXIST, "lab3: gva 0x%llx is mapped already (%s entry 0x%llx)", (unsigned long long)gva,
                        level_names[leaf], (unsigned long long)*entry);
    *entry = gpa | flags | X86_PTE_P | (leaf == 2 ? X86_PTE_PS : 0);
    return 0;
}

int lab3_page_tables_build(struct mvm_vm *vm, struct lab3_pt_pool *pool, uint64_t *cr3_out)
{
    const uint64_t rw = X86_PTE_RW;
    int rc = 0;

    /* Page 0 stays unmapped: a NULL dereference becomes a #PF instead of reading the GDT area. */
    for (uint64_t gpa = X86_PAGE_SIZE; gpa < X86_LARGE_PAGE_SIZE && rc == 0; gpa += X86_PAGE_SIZE)
        rc = lab3_page_map(vm, pool, gpa, gpa, X86_PAGE_SIZE, rw);
    for (uint64_t gpa = X86_LARGE_PAGE_SIZE; gpa < MVM_IDENTITY_MAP_SIZE && rc == 0; gpa += X86_LARGE_PAGE_SIZE)
        rc = lab3_page_map(vm, pool, gpa, gpa, X86_LARGE_PAGE_SIZE, rw);
    for (uint64_t gpa = 0; gpa < MVM_IDENTITY_MAP_SIZE && rc == 0; gpa += X86_LARGE_PAGE_SIZE)
        rc = lab3_page_map(vm, pool, MVM_HIGHER_HALF_GVA + gpa, gpa, X86_LARGE_PAGE_SIZE, rw);
    if (rc < 0)
        return rc;
    *cr3_out = pool->pml4_gpa;
    return 0;
}

int lab3_vcpu_setup_long(struct mvm_vcpu *vcpu, uint64_t entry_gva, uint64_t cr3)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    int rc;

    if (!gva_canonical(entry_gva))
        return mvm_fail(EINVAL, "lab3: entry 0x%llx is not a canonical address", (unsigned long long)entry_gva);
    if (cr3 & ~X86_PTE_ADDR_MASK)
        return mvm_fail(EINVAL, "lab3: CR3 0x%llx is not a page-aligned physical address", (unsigned long long)cr3);
    /* Long mode is protected mode plus paging: reuse lab 2's GDT and data segments. */
    rc = lab2_vcpu_setup_protected(vcpu, 0);
    if (rc < 0)
        return rc;
    rc = vcpu_sregs_get(vcpu, &sregs);
    if (rc < 0)
        return rc;
    sregs.cs.selector = MVM_SEL_CODE64;
    sregs.cs.l = 1;  /* 64-bit code */
    sregs.cs.db = 0; /* must be 0 when L is 1 */
    sregs.cr3 = cr3;
    sregs.cr4 |= X86_CR4_PAE;
    /* Hardware sets LMA when CR0.PG is turned on with LME set; through sregs the VMM sets both. */
    sregs.efer |= X86_EFER_LME | X86_EFER_LMA;
    sregs.cr0 |= X86_CR0_PE | X86_CR0_PG | X86_CR0_WP;
    sregs.cr0 &= ~(uint64_t)(X86_CR0_CD | X86_CR0_NW); /* reset leaves caches off */
    rc = vcpu_sregs_set(vcpu, &sregs);
    if (rc < 0)
        return rc;
    rc = vcpu_regs_get(vcpu, &regs);
    if (rc < 0)
        return rc;
    regs.rip = entry_gva;
    return vcpu_regs_set(vcpu, &regs);
}

int lab3_gva_to_gpa(struct mvm_vm *vm, uint64_t cr3, uint64_t gva, uint64_t *gpa_out)
{
    uint64_t table_gpa = cr3 & X86_PTE_ADDR_MASK, entry;

    if (!gva_canonical(gva))
        return mvm_fail(EINVAL, "lab3: gva 0x%llx is not canonical (bits 63:47 differ)", (unsigned long long)gva);
    for (int level = 4; level >= 1; level--) {
        uint64_t entry_gpa = table_gpa + X86_PT_INDEX(gva, level) * 8;
        /* Bits below this entry's reach: 4 KiB, 2 MiB or 1 GiB of offset. */
        uint64_t offset_mask = (1ull << (X86_PAGE_SHIFT + X86_PT_INDEX_BITS * (level - 1))) - 1;

        if (vm_read(vm, entry_gpa, &entry, sizeof(entry)) < 0)
            return mvm_fail(EFAULT, "lab3: gva 0x%llx: the %s entry at gpa 0x%llx is outside guest RAM",
                            (unsigned long long)gva, level_names[level], (unsigned long long)entry_gpa);
        if (!(entry & X86_PTE_P))
            return mvm_fail(EFAULT, "lab3: gva 0x%llx is not mapped: %s entry %u (gpa 0x%llx) is not present",
                            (unsigned long long)gva, level_names[level], (unsigned)X86_PT_INDEX(gva, level),
                            (unsigned long long)entry_gpa);
        if (level == 1 || ((level == 2 || level == 3) && (entry & X86_PTE_PS))) {
            *gpa_out = (entry & X86_PTE_ADDR_MASK & ~offset_mask) | (gva & offset_mask);
            return 0;
        }
        table_gpa = entry & X86_PTE_ADDR_MASK;
    }
    return mvm_fail(EFAULT, "lab3: unreachable");
}
