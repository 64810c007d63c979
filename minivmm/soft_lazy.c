/*
 * The soft backend's memory map on first touch: large slots and the MMIO above 4 GiB are mapped into the engine
 * a chunk at a time when the guest first reaches them (Unicorn's unmapped-memory hook), so a VM with a 64 GiB
 * slot costs the chunks it used, and unmapping them at the next memory-map change or at teardown costs as little.
 */
#include "soft_cpuid.h"
#include "soft_uc_state.h"

#include <stdlib.h>

uint64_t soft_pages_mapped, soft_pages_unmapped;

unsigned soft_gpa_bits(void)
{
    static unsigned bits;
    unsigned b = __atomic_load_n(&bits, __ATOMIC_RELAXED);
    if (b)
        return b;
    struct kvm_cpuid_entry2 tab[SOFT_MAX_CPUID];
    int n = soft_supported_cpuid(tab, SOFT_MAX_CPUID);
    const struct kvm_cpuid_entry2 *e = soft_cpuid_find(tab, n, 0x80000008, 0);
    b = e && (e->eax & 0xff) >= 32 && (e->eax & 0xff) <= 52 ? (e->eax & 0xff) : 36; /* 36: KVM's default */
    __atomic_store_n(&bits, b, __ATOMIC_RELAXED);
    return b;
}

static const struct soft_slot *soft_slot_at(const struct soft_vm *vm, uint64_t gpa)
{
    for (int i = 0; i < SOFT_MAX_SLOTS; i++) {
        const struct soft_slot *s = &vm->slots[i];
        if (s->used && gpa >= s->gpa && gpa - s->gpa < s->size)
            return s;
    }
    return NULL;
}

static bool soft_lazy_mmio_keep(struct soft_engine *e, struct soft_mmio_region *r)
{
    if (e->nlazy_mmio == e->lazy_mmio_cap) {
        int cap = e->lazy_mmio_cap ? 2 * e->lazy_mmio_cap : 16;
        struct soft_mmio_region **t = realloc(e->lazy_mmio, (size_t)cap * sizeof *t);
        if (!t)
            return false;
        e->lazy_mmio = t;
        e->lazy_mmio_cap = cap;
    }
    e->lazy_mmio[e->nlazy_mmio++] = r;
    return true;
}

/* Maps [lo, hi) as MMIO with the gaps' callbacks. UC_ERR_OK or the engine's error. */
static uc_err soft_lazy_mmio_map(struct soft_vcpu *v, uint64_t lo, uint64_t hi)
{
    struct soft_engine *e = v->engine;
    struct soft_mmio_region *r = malloc(sizeof *r);
    if (!r)
        return UC_ERR_NOMEM;
    *r = (struct soft_mmio_region){.e = e, .base = lo, .end = hi};
    uc_err err = uc_mmio_map(v->uc, lo, hi - lo, soft_hook_mmio_read, r, soft_hook_mmio_write, r);
    if (err == UC_ERR_OK && !soft_lazy_mmio_keep(e, r)) {
        uc_mem_unmap(v->uc, lo, hi - lo);
        err = UC_ERR_NOMEM;
    }
    if (err != UC_ERR_OK)
        free(r);
    return err;
}

/*
 * The chunk size after n chunks: SOFT_LAZY_CHUNK, doubling every 256 chunks up to 1 GiB. Unicorn's memory map
 * holds at most 4096 sections (phys_section_add asserts), and a guest that touches all of 1 TiB in 2 MiB
 * chunks would need 512 K; this way that takes about 3300.
 */
static uint64_t soft_lazy_chunk(unsigned n)
{
    unsigned shift = n / 256 < 9 ? n / 256 : 9;
    return SOFT_LAZY_CHUNK << shift;
}

/* Maps [lo, hi) of slot s (RAM) or, with s NULL, of the MMIO. */
static uc_err soft_lazy_map_range(struct soft_vcpu *v, const struct soft_slot *s, uint64_t lo, uint64_t hi)
{
    if (s)
        return uc_mem_map_ptr(v->uc, lo, hi - lo, UC_PROT_ALL, s->hva + (lo - s->gpa));
    return soft_lazy_mmio_map(v, lo, hi);
}

/*
 * Maps the chunk around gpa: the part of its slot inside the aligned chunk, or, where no slot is, the MMIO
 * between the neighbouring slots inside it. Where part of that is mapped already (smaller chunks mapped before,
 * or the map of before a slot change, a remap being due), the largest aligned piece around gpa that is free.
 * 1 mapped, 0 already mapped, -1 failed.
 */
static int soft_lazy_map(struct soft_vcpu *v, uint64_t gpa)
{
    const struct soft_slot *s = soft_slot_at(soft_vcpu_mem(v), gpa);
    if (!s && gpa >> soft_gpa_bits())
        return -1; /* beyond MAXPHYADDR: no memory, not even MMIO */
    uc_err err = UC_ERR_MAP;
    uint64_t lo = 0, hi = 0;
    for (uint64_t size = soft_lazy_chunk(v->engine->nlazy); size >= SOFT_PAGE && err == UC_ERR_MAP; size >>= 1) {
        lo = gpa & ~(size - 1);
        hi = lo + size;
        if (s) {
            if (lo < s->gpa)
                lo = s->gpa;
            if (hi > s->gpa + s->size)
                hi = s->gpa + s->size;
        } else {
            if (gpa >= SOFT_MMIO_LIMIT && lo < SOFT_MMIO_LIMIT)
                lo = SOFT_MMIO_LIMIT;
            if (gpa < SOFT_MMIO_LIMIT && hi > SOFT_MMIO_LIMIT)
                hi = SOFT_MMIO_LIMIT;
            for (int i = 0; i < SOFT_MAX_SLOTS; i++) {
                const struct soft_slot *o = &soft_vcpu_mem(v)->slots[i];
                if (!o->used)
                    continue;
                if (o->gpa > gpa && o->gpa < hi)
                    hi = o->gpa;
                if (o->gpa <= gpa && o->gpa + o->size > lo)
                    lo = o->gpa + o->size;
            }
        }
        err = soft_lazy_map_range(v, s, lo, hi);
    }
    if (err == UC_ERR_MAP)
        return 0;
    if (err != UC_ERR_OK)
        return -1;
    v->engine->nlazy++;
    __atomic_add_fetch(&soft_pages_mapped, (hi - lo) / SOFT_PAGE, __ATOMIC_RELAXED);
    return 1;
}

bool soft_hook_unmapped(uc_engine *uc, uc_mem_type type, uint64_t gpa, int size, int64_t value, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)uc;
    (void)type;
    (void)size;
    (void)value;
    if (!v || v->cancel)
        return false;
    return soft_lazy_map(v, gpa) > 0;
}

bool soft_lazy_pf_retry(struct soft_vcpu *v)
{
    if (!v->lazy_any)
        return false;
    img_load(v);
    struct soft_walk w = soft_translate(v, IMG_CR(v, 2), false, false);
    bool mapped = false;
    for (unsigned i = 0; i < w.nentries; i++) {
        const struct soft_slot *s = soft_slot_at(soft_vcpu_mem(v), w.entry_gpa[i]);
        if (s && s->size > SOFT_LAZY_SLOT && soft_lazy_map(v, w.entry_gpa[i]) > 0)
            mapped = true;
    }
    if (!mapped)
        return false;
    /* The fault never happened: no exception in progress, CR2 as the guest left it. */
    img_set_u32(v, soft_layout.old_exception, 0xffffffffu);
    img_set_u64(v, soft_layout.cr + 8 * 2, v->lazy_cr2);
    img_store(v);
    return true;
}

void soft_lazy_forget(struct soft_engine *e)
{
    for (int i = 0; i < e->nlazy_mmio; i++)
        free(e->lazy_mmio[i]);
    e->nlazy_mmio = 0;
    e->nlazy = 0;
}
