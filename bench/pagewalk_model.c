/* The page-walk reference-count model: native and nested walks, page-walk caches, a TLB, access patterns. */
#include <string.h>

#include "pagewalk_model.h"

#define PAGE_SHIFT 12
#define INDEX_BITS 9

/* The lowest level a walk of `levels` levels reads: 1 (PT) for 4 levels, 2 (PD) for 3. */
static unsigned leaf_level(unsigned levels)
{
    return 5 - levels;
}

/* The key of level `level`'s entry: every address bit that selects it (its index and the ones above). */
static uint64_t entry_key(uint64_t addr, unsigned level)
{
    return addr >> (PAGE_SHIFT + INDEX_BITS * (level - 1));
}

static unsigned page_shift(unsigned levels)
{
    return PAGE_SHIFT + INDEX_BITS * (leaf_level(levels) - 1);
}

unsigned pagewalk_refs_cold(unsigned guest_levels, unsigned host_levels)
{
    if (guest_levels < 3 || guest_levels > 4 || (host_levels && (host_levels < 3 || host_levels > 4)))
        return 0;
    return host_levels ? (guest_levels + 1) * (host_levels + 1) - 1 : guest_levels;
}

bool pagewalk_config_valid(const struct pagewalk_config *cfg)
{
    return cfg && pagewalk_refs_cold(cfg->guest_levels, cfg->host_levels) != 0 &&
           cfg->pwc_entries <= PAGEWALK_MAX_PWC && cfg->tlb_entries <= PAGEWALK_MAX_TLB;
}

bool pagewalk_model_init(struct pagewalk_model *m, const struct pagewalk_config *cfg)
{
    memset(m, 0, sizeof(*m));
    if (!pagewalk_config_valid(cfg))
        return false;
    m->cfg = *cfg;
    return true;
}

uint64_t pagewalk_table_gpa(unsigned level, uint64_t va)
{
    /* One page per table, the tables of each level side by side, the levels 2^40 apart. */
    return ((uint64_t)level << 40) | (entry_key(va, level + 1) << PAGE_SHIFT);
}

/* LRU lookup in `n` entries; a hit refreshes the entry. */
static bool cache_hit(struct pagewalk_model *m, struct pagewalk_cache_entry *c, unsigned n, uint64_t key)
{
    for (unsigned i = 0; i < n; i++) {
        if (c[i].stamp && c[i].key == key) {
            c[i].stamp = ++m->clock;
            return true;
        }
    }
    return false;
}

/* Inserts `key` (if absent), evicting the least recently used entry. */
static void cache_fill(struct pagewalk_model *m, struct pagewalk_cache_entry *c, unsigned n, uint64_t key)
{
    unsigned victim = 0;

    if (n == 0 || cache_hit(m, c, n, key))
        return;
    for (unsigned i = 1; i < n; i++)
        if (c[i].stamp < c[victim].stamp)
            victim = i;
    c[victim] = (struct pagewalk_cache_entry){.key = key, .stamp = ++m->clock};
}

/* The level a walk starts reading at: the one below the deepest non-leaf entry the PWC holds, else the top. */
static unsigned walk_start(struct pagewalk_model *m, struct pagewalk_cache_entry pwc[5][PAGEWALK_MAX_PWC],
                           unsigned levels, uint64_t addr)
{
    for (unsigned l = leaf_level(levels) + 1; l <= 4; l++)
        if (cache_hit(m, pwc[l], m->cfg.pwc_entries, entry_key(addr, l)))
            return l - 1;
    return 4;
}

/* A host walk of guest-physical `gpa`: one reference per host level read. */
static unsigned host_walk(struct pagewalk_model *m, uint64_t gpa)
{
    unsigned levels = m->cfg.host_levels, leaf = leaf_level(levels), refs = 0;

    for (unsigned l = walk_start(m, m->host_pwc, levels, gpa); l >= leaf; l--) {
        refs++;
        if (l > leaf)
            cache_fill(m, m->host_pwc[l], m->cfg.pwc_entries, entry_key(gpa, l));
    }
    m->stats.host_refs += refs;
    return refs;
}

/* The guest (or native) walk; nested, each guest table's address is host-walked before its entry is read. */
static unsigned guest_walk(struct pagewalk_model *m, uint64_t va)
{
    unsigned levels = m->cfg.guest_levels, leaf = leaf_level(levels), refs = 0;

    for (unsigned l = walk_start(m, m->guest_pwc, levels, va); l >= leaf; l--) {
        if (m->cfg.host_levels)
            refs += host_walk(m, pagewalk_table_gpa(l, va));
        refs++;
        m->stats.guest_refs++;
        if (l > leaf)
            cache_fill(m, m->guest_pwc[l], m->cfg.pwc_entries, entry_key(va, l));
    }
    /* The guest maps va to gpa == va; nested, that data address needs a host walk of its own. */
    if (m->cfg.host_levels)
        refs += host_walk(m, va);
    return refs;
}

unsigned pagewalk_model_access(struct pagewalk_model *m, uint64_t va)
{
    unsigned shift = page_shift(m->cfg.guest_levels), refs;

    /* A TLB entry covers the smaller of the guest and host pages (a 2 MiB guest page on 4 KiB host pages splinters). */
    if (m->cfg.host_levels && page_shift(m->cfg.host_levels) < shift)
        shift = page_shift(m->cfg.host_levels);
    m->stats.accesses++;
    if (cache_hit(m, m->tlb, m->cfg.tlb_entries, va >> shift))
        return 0;
    refs = guest_walk(m, va);
    cache_fill(m, m->tlb, m->cfg.tlb_entries, va >> shift);
    m->stats.walks++;
    m->stats.refs += refs;
    return refs;
}

/* splitmix64: a counter-based generator, so address i needs no state. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t pagewalk_pattern_addr(enum pagewalk_pattern pattern, uint64_t i, uint64_t footprint, uint64_t stride,
                               uint64_t seed)
{
    uint64_t slots;

    if (stride == 0)
        stride = 1;
    slots = footprint / stride ? footprint / stride : 1;
    if (pattern == PAGEWALK_RANDOM)
        return (mix64(seed ^ mix64(i)) % slots) * stride;
    return (i % slots) * stride;
}

struct pagewalk_stats pagewalk_simulate(const struct pagewalk_config *cfg, enum pagewalk_pattern pattern,
                                        uint64_t footprint, uint64_t accesses, uint64_t seed)
{
    static const struct pagewalk_stats none;
    struct pagewalk_model m;

    if (footprint == 0 || !pagewalk_model_init(&m, cfg))
        return none;
    for (uint64_t i = 0; i < accesses; i++)
        pagewalk_model_access(&m, pagewalk_pattern_addr(pattern, i, footprint, 1ull << PAGE_SHIFT, seed));
    return m.stats;
}
