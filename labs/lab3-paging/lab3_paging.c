/* Lab 3 (student file): 4-level page tables, a vCPU put in long mode, and the host-side GVA -> GPA walker. */
#include <errno.h>
#include <string.h>

#include "lab_parts.h"

/*
 * Map one page of `page_size` (4 KiB or 2 MiB): gva -> gpa, in the tables
 * whose PML4 is pool->pml4_gpa, taking missing tables from `pool`.
 *
 * TODO(lab3):
 *  1. Reject with -EINVAL: a page size other than X86_PAGE_SIZE or
 *     X86_LARGE_PAGE_SIZE; gva or gpa not aligned to it; a non-canonical gva
 *     (bits 63:47 must all equal bit 47); a gpa with bits outside
 *     X86_PTE_ADDR_MASK.
 *  2. The first call allocates the PML4 (pool->pml4_gpa was 0). A table is one
 *     zeroed 4 KiB page at pool->base_gpa + pool->used; -ENOSPC when the pool
 *     is used up, -EFAULT when vm_gpa_to_hva() says it is not in guest RAM.
 *  3. Descend from level 4: the entry of `gva` in a table is at
 *     table_gpa + X86_PT_INDEX(gva, level) * 8 (use vm_gpa_to_hva to reach it).
 *     A missing upper entry gets a new table: next_gpa | P | RW | US (upper
 *     levels allow everything; the leaf decides). An upper entry with PS set
 *     is already a large page: -EEXIST.
 *  4. Stop at the leaf: level 1 (PT) for 4 KiB, level 2 (PD) for 2 MiB, where
 *     the entry also needs X86_PTE_PS. If it is present already: -EEXIST.
 *     Write gpa | flags | P.
 */
int lab3_page_map(struct mvm_vm *vm, struct lab3_pt_pool *pool, uint64_t gva, uint64_t gpa, uint64_t page_size,
                  uint64_t flags)
{
    (void)vm;
    (void)pool;
    (void)flags;
    return mvm_fail(ENOSYS,
                    "lab3: lab3_page_map() is not written yet: walk PML4 -> PDPT -> PD (-> PT) for gva 0x%llx, "
                    "allocating tables, and write the leaf entry for gpa 0x%llx (page size 0x%llx)",
                    (unsigned long long)gva, (unsigned long long)gpa, (unsigned long long)page_size);
}

/*
 * Build minivmm's standard page tables with lab3_page_map().
 *
 * TODO(lab3): all writable (X86_PTE_RW):
 *  - [4 KiB, 2 MiB) identity with 4 KiB pages. Leave page 0 out: a NULL
 *    dereference then faults instead of reading whatever lies at 0.
 *  - [2 MiB, MVM_IDENTITY_MAP_SIZE) identity with 2 MiB pages, RAM or not:
 *    page tables say nothing about which guest-physical addresses have memory.
 *  - [0, MVM_IDENTITY_MAP_SIZE) again at MVM_HIGHER_HALF_GVA + gpa, 2 MiB pages.
 *  Then *cr3_out = pool->pml4_gpa.
 */
int lab3_page_tables_build(struct mvm_vm *vm, struct lab3_pt_pool *pool, uint64_t *cr3_out)
{
    (void)vm;
    (void)pool;
    (void)cr3_out;
    return mvm_fail(ENOSYS,
                    "lab3: lab3_page_tables_build() is not written yet: map [0, 1 GiB) identity (4 KiB pages "
                    "below 2 MiB, page 0 unmapped) and again at 0x%llx",
                    MVM_HIGHER_HALF_GVA);
}

/*
 * Put a fresh vCPU in 64-bit long mode at `entry_gva`, paging with the tables at `cr3`.
 *
 * TODO(lab3):
 *  1. Reject a non-canonical entry or a CR3 that is not page-aligned (-EINVAL).
 *  2. Long mode is protected mode plus paging: start from
 *     lab2_vcpu_setup_protected() (GDT, data segments, CR0.PE), then
 *     vcpu_sregs_get().
 *  3. CS = MVM_SEL_CODE64 with L=1 and D=0: a 64-bit code segment.
 *  4. CR3 = cr3; CR4.PAE (long mode only walks 64-bit entries); EFER.LME and
 *     EFER.LMA (on hardware the CPU sets LMA when CR0.PG goes on with LME set;
 *     through KVM_SET_SREGS you set the end state); CR0.PG (and WP), and
 *     clear CR0.CD/NW, which reset leaves set. vcpu_sregs_set().
 *  5. RIP = entry_gva (vcpu_regs_get, change, vcpu_regs_set).
 */
int lab3_vcpu_setup_long(struct mvm_vcpu *vcpu, uint64_t entry_gva, uint64_t cr3)
{
    (void)vcpu;
    return mvm_fail(ENOSYS,
                    "lab3: lab3_vcpu_setup_long() is not written yet: CS.L=1, CR3=0x%llx, CR4.PAE, EFER.LME+LMA, "
                    "CR0.PG, RIP=0x%llx",
                    (unsigned long long)cr3, (unsigned long long)entry_gva);
}

/*
 * Translate a guest-virtual address the way the guest's MMU would, in
 * software: the VMM needs this whenever a guest hands it a pointer (the ucall
 * port does, for every GUEST_DONE and GUEST_ASSERT of a lab 3 guest).
 *
 * TODO(lab3):
 *  1. A non-canonical gva is -EINVAL.
 *  2. From the table at cr3 & X86_PTE_ADDR_MASK, for level 4 down to 1: read
 *     the 8-byte entry at table + X86_PT_INDEX(gva, level) * 8 with vm_read()
 *     (-EFAULT if that is outside RAM: the guest's tables are guest input).
 *     Not present (no X86_PTE_P): -EFAULT, naming the level.
 *  3. A leaf: level 1, or level 2 or 3 with X86_PTE_PS (2 MiB, 1 GiB pages).
 *     The frame is entry & X86_PTE_ADDR_MASK; the page offset is the low 12,
 *     21 or 30 bits of gva. Otherwise the entry points at the next table.
 */
int lab3_gva_to_gpa(struct mvm_vm *vm, uint64_t cr3, uint64_t gva, uint64_t *gpa_out)
{
    (void)vm;
    (void)gpa_out;
    return mvm_fail(ENOSYS,
                    "lab3: lab3_gva_to_gpa() is not written yet: walk the guest's page tables at CR3 0x%llx "
                    "for gva 0x%llx",
                    (unsigned long long)cr3, (unsigned long long)gva);
}
