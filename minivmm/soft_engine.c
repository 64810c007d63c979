/*
 * The soft backend's Unicorn engines: a pool of engines with the backend's hooks installed, and the guest's
 * memory map inside one (slots as RAM, the gaps below SOFT_MMIO_LIMIT as MMIO).
 */
#include "soft_cpuid.h"
#include "soft_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

/* True when `begin` starts one of the engine's MMIO gaps. */
static bool soft_is_mmio(const struct soft_engine *e, uint64_t begin)
{
    for (int i = 0; i < e->nmmio; i++)
        if (e->mmio[i]->base == begin)
            return true;
    return false;
}

/*
 * Drops the translations of the engine's RAM regions and unmaps them (not its
 * MMIO gaps). Call in the pristine state (paging off): uc_ctl_remove_cache and
 * uc_mem_unmap translate addresses through the guest's MMU.
 */
static void soft_unmap_ram(struct soft_engine *e)
{
    uc_mem_region *regs = NULL;
    uint32_t nreg = 0;
    if (uc_mem_regions(e->uc, &regs, &nreg) != UC_ERR_OK)
        return;
    for (uint32_t i = 0; i < nreg; i++) {
        if (soft_is_mmio(e, regs[i].begin))
            continue;
        uc_ctl_remove_cache(e->uc, regs[i].begin, regs[i].end + 1);
        if (uc_mem_unmap(e->uc, regs[i].begin, regs[i].end - regs[i].begin + 1) == UC_ERR_OK)
            __atomic_add_fetch(&soft_pages_unmapped, (regs[i].end - regs[i].begin + 1) / SOFT_PAGE, __ATOMIC_RELAXED);
    }
    uc_free(regs);
    soft_lazy_forget(e); /* the MMIO chunks above SOFT_MMIO_LIMIT went with the RAM */
}

/*
 * Map every slot (RAM) up to SOFT_LAZY_SLOT and every gap below SOFT_MMIO_LIMIT
 * (MMIO) into the engine; larger slots wait for their first touch (soft_lazy.c).
 * Unicorn unmaps a region page by page (about 60 ns a page, mostly
 * tb_flush_jmp_cache), so the gaps already mapped as this layout needs them
 * stay: a VM's last gap runs to 4 GiB, and remapping it cost every VM about
 * 120 ms. 0 or -errno.
 */
int soft_map_memory(struct soft_vcpu *v)
{
    struct soft_engine *e = v->engine;
    struct soft_slot sorted[SOFT_MAX_SLOTS];
    int n = 0;
    const struct soft_vm *mem = soft_vcpu_mem(v); /* address space 1's slots while in SMM (soft_smm.c) */
    for (int i = 0; i < SOFT_MAX_SLOTS; i++)
        if (mem->slots[i].used)
            sorted[n++] = mem->slots[i];
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && sorted[j].gpa < sorted[j - 1].gpa; j--) {
            struct soft_slot t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    uint64_t gap_base[SOFT_MAX_SLOTS + 1], gap_end[SOFT_MAX_SLOTS + 1];
    bool have[SOFT_MAX_SLOTS + 1];
    int ngap = 0;
    uint64_t at = 0;
    for (int i = 0; i <= n; i++) {
        uint64_t end = i < n ? sorted[i].gpa : SOFT_MMIO_LIMIT;
        if (end > at) {
            gap_base[ngap] = at;
            gap_end[ngap] = end;
            have[ngap++] = false;
        }
        if (i < n)
            at = sorted[i].gpa + sorted[i].size;
    }
    ngap = soft_smm_gaps_split(v, gap_base, gap_end, ngap, SOFT_MAX_SLOTS + 1); /* kept across SMM (soft_smm.c) */
    for (int j = 0; j < ngap; j++)
        have[j] = false;
    struct soft_mmio_region *gone[SOFT_MAX_SLOTS + 1];
    int k = 0, ngone = 0;
    for (int i = 0; i < e->nmmio; i++) {
        struct soft_mmio_region *r = e->mmio[i];
        int j = 0;
        while (j < ngap && !(gap_base[j] == r->base && gap_end[j] == r->end && !have[j]))
            j++;
        if (j < ngap) {
            have[j] = true;
            e->mmio[k++] = r;
        } else {
            gone[ngone++] = r;
        }
    }
    e->nmmio = k;
    /*
     * Unmap in the pristine state (paging off), then come back. Unmapping under the guest's paging made
     * the engine read guest memory through the gap being unmapped: a long-mode VM after a real-mode one
     * on the same engine got a phantom 4-byte MMIO read at 0x100000 (its PML4, inside the old VM's gap).
     * uc_ctl_remove_cache translates its start address through the MMU too.
     */
    if (uc_context_save(v->uc, e->saved) != UC_ERR_OK || uc_context_restore(v->uc, e->pristine) != UC_ERR_OK)
        return -EIO;
    uc_ctl_flush_tlb(v->uc);
    for (int i = 0; i < ngone; i++) {
        uc_mem_unmap(v->uc, gone[i]->base, gone[i]->end - gone[i]->base);
        free(gone[i]);
    }
    soft_unmap_ram(e);
    if (uc_context_restore(v->uc, e->saved) != UC_ERR_OK)
        return -EIO;
    uc_ctl_flush_tlb(v->uc);
    v->lazy_any = false;
    for (int i = 0; i < n; i++) {
        /* The VMM's memory must really be there, or the engine would fault in the host. */
        unsigned char vec;
        if (mincore(sorted[i].hva, SOFT_PAGE, &vec) != 0 && errno == ENOMEM)
            return -EFAULT;
        if (sorted[i].size > SOFT_LAZY_SLOT) {
            v->lazy_any = true; /* mapped a chunk at a time on first touch (soft_lazy.c) */
            continue;
        }
        if (uc_mem_map_ptr(v->uc, sorted[i].gpa, sorted[i].size, UC_PROT_ALL, sorted[i].hva) != UC_ERR_OK)
            return -ENOMEM;
        __atomic_add_fetch(&soft_pages_mapped, sorted[i].size / SOFT_PAGE, __ATOMIC_RELAXED);
    }
    for (int j = 0; j < ngap; j++) {
        if (have[j])
            continue;
        struct soft_mmio_region *r = malloc(sizeof *r);
        if (!r)
            return -ENOMEM;
        *r = (struct soft_mmio_region){.e = e, .base = gap_base[j], .end = gap_end[j]};
        if (uc_mmio_map(v->uc, r->base, r->end - r->base, soft_hook_mmio_read, r, soft_hook_mmio_write, r) !=
            UC_ERR_OK) {
            free(r);
            return -ENOMEM;
        }
        e->mmio[e->nmmio++] = r;
    }
    v->mapped_gen = v->vm->slots_gen;
    v->mapped_any = true;
    return 0;
}

/*
 * Engines are pooled, not closed: Unicorn 2.1 leaks 32 bytes per closed engine
 * that had hooks or contexts, which the sanitizer's leak check would report.
 * A pooled engine keeps its hooks (they find the current vCPU through the
 * engine) and gets back its pristine CPU state, no RAM and no translations of
 * it; its MMIO gaps stay mapped for the next VM (see soft_map_memory).
 */
static pthread_mutex_t soft_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct soft_engine *soft_pool;

/*
 * Bytes of translated code per engine: SOFT_TCG_BUFFER_SIZE, or
 * $MINIVMM_SOFT_TCG_MIB MiB (1 to 1024) where set, which the robustness test
 * uses to make every looping guest fill and flush the buffer many times.
 */
static uint32_t soft_tcg_buffer_size(void)
{
    const char *s = getenv("MINIVMM_SOFT_TCG_MIB");
    char *end = "";
    unsigned long mib = s && *s ? strtoul(s, &end, 10) : 0;
    if (mib >= 1 && mib <= 1024 && *end == '\0')
        return (uint32_t)(mib << 20);
    return SOFT_TCG_BUFFER_SIZE;
}

struct soft_engine *soft_engine_get(void)
{
    pthread_mutex_lock(&soft_pool_lock);
    struct soft_engine *e = soft_pool;
    if (e)
        soft_pool = e->next;
    pthread_mutex_unlock(&soft_pool_lock);
    if (e)
        return e;
    e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    if (soft_uc_open(&e->uc) != UC_ERR_OK) {
        free(e);
        return NULL;
    }
    uc_ctl_set_tcg_buffer_size(e->uc, soft_tcg_buffer_size());
    uc_hook h;
    /*
     * The flush right after initialisation arms the code buffer. Unicorn 2.1.1
     * sets up the buffer as one TCG region but never allocates it at start
     * (region.current stays 0), so the first time the buffer fills, tcg_tb_alloc
     * "allocates" region 0 again: code_gen_ptr rewinds and the buffer is zeroed
     * WITHOUT tb_flush, while the hash table, the page lists, the jump cache and
     * chained jumps still point at the old blocks. The next store to a code page
     * walks a page list into new code (SIGBUS/SIGSEGV), and unmapping RAM hits
     * g_assert_not_reached in tb_page_remove (SIGABRT). After any tb_flush,
     * region.current is 1 and every later overflow goes through tb_flush, which
     * resets all of those. It costs one zeroing of the buffer, once per engine.
     */
    bool ok =
        uc_context_alloc(e->uc, &e->ctx) == UC_ERR_OK && uc_context_alloc(e->uc, &e->pristine) == UC_ERR_OK &&
        uc_context_alloc(e->uc, &e->saved) == UC_ERR_OK && uc_ctl_flush_tb(e->uc) == UC_ERR_OK &&
        uc_ctl_exits_enable(e->uc) == UC_ERR_OK && uc_context_save(e->uc, e->pristine) == UC_ERR_OK &&
        uc_hook_add(e->uc, &h, UC_HOOK_INSN, (void *)soft_hook_in, e, 1, 0, UC_X86_INS_IN) == UC_ERR_OK &&
        uc_hook_add(e->uc, &h, UC_HOOK_INSN, (void *)soft_hook_out, e, 1, 0, UC_X86_INS_OUT) == UC_ERR_OK &&
        uc_hook_add(e->uc, &h, UC_HOOK_INSN, (void *)soft_hook_cpuid, e, 1, 0, UC_X86_INS_CPUID) == UC_ERR_OK &&
        uc_hook_add(e->uc, &h, UC_HOOK_INSN, (void *)soft_hook_syscall, e, 1, 0, UC_X86_INS_SYSCALL) == UC_ERR_OK &&
        uc_hook_add(e->uc, &h, UC_HOOK_INSN_INVALID, (void *)soft_hook_invalid, e, 1, 0) == UC_ERR_OK &&
        uc_hook_add(e->uc, &h, UC_HOOK_INTR, (void *)soft_hook_intr, e, 1, 0) == UC_ERR_OK &&
        uc_hook_add(e->uc, &h, UC_HOOK_BLOCK, (void *)soft_hook_block, e, 1, 0) == UC_ERR_OK &&
        uc_hook_add(e->uc, &h, UC_HOOK_MEM_UNMAPPED, (void *)soft_hook_unmapped, e, 1, 0) == UC_ERR_OK &&
        soft_clock_hook_add(e->uc);
    if (!ok) {
        /* Keep it reachable rather than closing it (see above); it is unusable, so never handed out. */
        static struct soft_engine *volatile broken;
        e->next = broken;
        broken = e;
        return NULL;
    }
    return e;
}

void soft_engine_drop_ram(struct soft_engine *e)
{
    /*
     * The next VM must not run this one's code: drop the translations of its
     * RAM, not all of them. A full flush (uc_ctl_flush_tb) zeroes the whole
     * code buffer; dropping a range costs what the range held.
     */
    uc_context_restore(e->uc, e->pristine);
    uc_ctl_flush_tlb(e->uc);
    soft_unmap_ram(e);
    uc_ctl_flush_tlb(e->uc);
}

void soft_engine_put(struct soft_engine *e)
{
    soft_engine_drop_ram(e);
    e->v = NULL;
    pthread_mutex_lock(&soft_pool_lock);
    e->next = soft_pool;
    soft_pool = e;
    pthread_mutex_unlock(&soft_pool_lock);
}
