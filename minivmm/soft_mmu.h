/* The soft backend's page walker: a linear address to a guest-physical one as the CPU translates it. Pure logic. */
#ifndef MINIVMM_SOFT_MMU_H
#define MINIVMM_SOFT_MMU_H

#include <stdbool.h>
#include <stdint.h>

struct soft_vm;

/* The registers that decide the paging mode. */
struct soft_paging {
    uint64_t cr0, cr3, cr4, efer;
};

struct soft_walk {
    uint64_t gpa;
    bool fault;     /* #PF: error code in pferr */
    bool bad;       /* a page-table entry outside guest RAM */
    uint32_t pferr; /* X86_PF_ERR_* */
    /* The guest-physical address of each paging-structure entry read, in walk order (soft_lazy.c maps them). */
    uint64_t entry_gpa[5];
    unsigned nentries;
};

/*
 * Translate lin as the CPU would for a data access (write or read, at user
 * privilege or not): no paging, 32-bit, PAE or 4-level paging, 4 KiB pages
 * and 4 MiB/2 MiB/1 GiB ones. Page tables are read from vm's memory slots.
 * Accessed/dirty bits are not set, and reserved bits are not checked.
 */
struct soft_walk soft_mmu_walk(struct soft_vm *vm, const struct soft_paging *pg, uint64_t lin, bool write, bool user);

#endif
