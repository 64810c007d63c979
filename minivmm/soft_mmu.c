/* The soft backend's page walker and guest-linear memory access, as the CPU sees memory (KVM's paging_tmpl.h). */
#include "soft_uc_state.h"

#include <string.h>

struct soft_walk soft_mmu_walk(struct soft_vm *vm, const struct soft_paging *pg, uint64_t lin, bool write, bool user)
{
    struct soft_walk w = {0};
    uint64_t cr0 = pg->cr0, cr3 = pg->cr3, cr4 = pg->cr4, efer = pg->efer;
    if (!(cr0 & X86_CR0_PG)) {
        w.gpa = (efer & X86_EFER_LMA) ? lin : (uint32_t)lin;
        return w;
    }
    bool rw = true, us = true;
    uint64_t table, e = 0;
    int level;
    unsigned esz;
    if (efer & X86_EFER_LMA) {
        table = cr3 & X86_PTE_ADDR_MASK;
        level = 4;
        esz = 8;
    } else if (cr4 & X86_CR4_PAE) {
        uint64_t pdpte = (cr3 & X86_CR3_PAE_PDPT_MASK) + ((lin >> 30) & 3) * 8;
        uint8_t *p = soft_gpa_to_hva(vm, pdpte, 8);
        w.entry_gpa[w.nentries++] = pdpte;
        if (!p) {
            w.bad = true;
            return w;
        }
        memcpy(&e, p, 8);
        if (!(e & X86_PTE_P))
            goto fault;
        table = e & X86_PTE_ADDR_MASK;
        level = 2;
        esz = 8;
    } else {
        table = cr3 & X86_PTE32_ADDR_MASK;
        level = 2;
        esz = 4;
        lin = (uint32_t)lin;
    }
    for (; level >= 1; level--) {
        unsigned shift = esz == 8 ? 12 + 9 * (unsigned)(level - 1) : 12 + 10 * (unsigned)(level - 1);
        uint64_t idx = (lin >> shift) & (esz == 8 ? 511 : 1023);
        uint8_t *p = soft_gpa_to_hva(vm, table + idx * esz, esz);
        w.entry_gpa[w.nentries++] = table + idx * esz;
        if (!p) {
            w.bad = true;
            return w;
        }
        e = 0;
        memcpy(&e, p, esz);
        if (!(e & X86_PTE_P))
            goto fault;
        rw = rw && (e & X86_PTE_RW);
        us = us && (e & X86_PTE_US);
        bool large = (e & X86_PTE_PS) && level > 1 && (esz == 8 ? level <= 3 : (cr4 & X86_CR4_PSE));
        if (large) {
            uint64_t mask = (1ull << shift) - 1;
            uint64_t base = esz == 8 ? (e & X86_PTE_ADDR_MASK & ~mask) : (e & X86_PDE32_4M_ADDR_MASK);
            w.gpa = base | (lin & mask);
            goto check;
        }
        table = esz == 8 ? (e & X86_PTE_ADDR_MASK) : (e & X86_PTE32_ADDR_MASK);
    }
    w.gpa = table | (lin & 0xfff);
check:
    if ((write && !rw && (user || (cr0 & X86_CR0_WP))) || (user && !us)) {
        w.fault = true;
        w.pferr = X86_PF_ERR_PRESENT | (write ? X86_PF_ERR_WRITE : 0) | (user ? X86_PF_ERR_USER : 0);
    }
    return w;
fault:
    w.fault = true;
    w.pferr = (write ? X86_PF_ERR_WRITE : 0) | (user ? X86_PF_ERR_USER : 0);
    return w;
}

struct soft_walk soft_translate(struct soft_vcpu *v, uint64_t lin, bool write, bool user)
{
    struct soft_paging pg = {
        .cr0 = IMG_CR(v, 0), .cr3 = IMG_CR(v, 3), .cr4 = IMG_CR(v, 4), .efer = img_u64(v, soft_layout.efer)};
    return soft_mmu_walk(soft_vcpu_mem(v), &pg, lin, write, user);
}

int soft_lin_rw(struct soft_vcpu *v, uint64_t lin, void *buf, size_t len, bool write, bool user, uint64_t *pf_addr,
                uint32_t *pferr)
{
    uint8_t *b = buf;
    while (len) {
        size_t chunk = SOFT_PAGE - (lin & (SOFT_PAGE - 1));
        if (chunk > len)
            chunk = len;
        struct soft_walk w = soft_translate(v, lin, write, user);
        if (w.bad)
            return -1;
        if (w.fault) {
            *pf_addr = lin;
            *pferr = w.pferr;
            return 1;
        }
        uint8_t *h = soft_gpa_to_hva(soft_vcpu_mem(v), w.gpa, chunk);
        if (!h)
            return -1;
        if (write)
            memcpy(h, b, chunk);
        else
            memcpy(b, h, chunk);
        b += chunk;
        lin += chunk;
        len -= chunk;
    }
    return 0;
}

size_t soft_fetch_lin(struct soft_vcpu *v, uint64_t lin, uint8_t *out)
{
    uint64_t pa;
    uint32_t pe;
    if (soft_lin_rw(v, lin, out, 15, false, false, &pa, &pe) == 0)
        return 15; /* one or two page walks, not one per byte */
    size_t n = 0;
    for (; n < 15; n++)
        if (soft_lin_rw(v, lin + n, out + n, 1, false, false, &pa, &pe) != 0)
            break;
    return n;
}

size_t soft_fetch(struct soft_vcpu *v, uint64_t rip, uint8_t *out)
{
    return soft_fetch_lin(v, img_seg(v, R_CS)->base + rip, out);
}
