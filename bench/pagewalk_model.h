/* A model that counts the memory references of native and nested (two-dimensional) page walks, with and without
 * page-walk caches. */
#ifndef BENCH_PAGEWALK_MODEL_H
#define BENCH_PAGEWALK_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The model (Bhargava et al., "Accelerating two-dimensional page walks for
 * virtualized systems", ASPLOS 2008, in miniature):
 * - A walk of L levels reads one entry per level: L references natively
 *   (4 for 4 KiB pages, 3 for 2 MiB pages, where the PD entry is the leaf).
 * - Nested, every guest-physical address the guest walk touches (each guest
 *   table, then the data page) is itself translated by a host walk of H
 *   levels: G * (H + 1) + H = (G + 1)(H + 1) - 1 references, 24 for 4 on 4.
 * - A page-walk cache (PWC) remembers non-leaf entries, per level, keyed by
 *   the address bits above that level: a hit on level l's entry skips the
 *   reads of levels top..l. The guest dimension and the host dimension have
 *   one each; a guest PWC hit also skips the host walks of the skipped guest
 *   tables. Entries are LRU, `pwc_entries` per level.
 * - An optional TLB (fully associative, LRU) holds finished translations at
 *   the smaller of the two page sizes; a hit costs 0 references.
 * - The guest's page tables sit in guest-physical memory, one 4 KiB page per
 *   table, level by level (pagewalk_table_gpa), and the guest maps its
 *   virtual addresses to the same guest-physical addresses.
 * Everything is deterministic: same inputs, same counts.
 */

#define PAGEWALK_MAX_PWC 64 /* entries per level per dimension */
#define PAGEWALK_MAX_TLB 1024

struct pagewalk_config {
    unsigned guest_levels; /* 4: 4 KiB pages, 3: 2 MiB pages (guest page tables, or native ones) */
    unsigned host_levels;  /* 0: native, no nesting; 4 or 3: the host's (EPT/NPT) page size */
    unsigned pwc_entries;  /* page-walk cache entries per level, 0: no PWC (at most PAGEWALK_MAX_PWC) */
    unsigned tlb_entries;  /* 0: no TLB, every access walks (at most PAGEWALK_MAX_TLB) */
};

enum pagewalk_pattern {
    PAGEWALK_SEQUENTIAL, /* addresses 0, stride, 2 * stride, ... wrapping at the footprint */
    PAGEWALK_RANDOM,     /* stride-aligned addresses drawn uniformly from the footprint (seeded) */
};

struct pagewalk_stats {
    uint64_t accesses;
    uint64_t walks;      /* accesses that missed the TLB */
    uint64_t refs;       /* memory references of all walks */
    uint64_t guest_refs; /* of those, reads of guest (or native) page-table entries */
    uint64_t host_refs;  /* reads of host page-table entries (nested only) */
};

struct pagewalk_cache_entry {
    uint64_t key;
    uint64_t stamp; /* 0: empty; else the time of the last use */
};

/* A model instance: fixed-size state, no allocation. Initialise with pagewalk_model_init(). */
struct pagewalk_model {
    struct pagewalk_config cfg;
    uint64_t clock;
    struct pagewalk_cache_entry guest_pwc[5][PAGEWALK_MAX_PWC]; /* indexed by level 2..4 */
    struct pagewalk_cache_entry host_pwc[5][PAGEWALK_MAX_PWC];
    struct pagewalk_cache_entry tlb[PAGEWALK_MAX_TLB];
    struct pagewalk_stats stats;
};

/* References of one walk with every cache cold: G natively, (G + 1)(H + 1) - 1 nested. 0 for bad levels. */
unsigned pagewalk_refs_cold(unsigned guest_levels, unsigned host_levels);

/* True when cfg is one the model handles (levels 3 or 4, host 0/3/4, sizes within the maxima). */
bool pagewalk_config_valid(const struct pagewalk_config *cfg);

/* Empties all caches and counters. Returns false (and leaves *m unusable) for an invalid cfg. */
bool pagewalk_model_init(struct pagewalk_model *m, const struct pagewalk_config *cfg);

/* Translates one access to virtual address `va`; returns the references it cost (0 on a TLB hit). */
unsigned pagewalk_model_access(struct pagewalk_model *m, uint64_t va);

/* Guest-physical address of the guest page table at `level` (4..1) that translates `va`. */
uint64_t pagewalk_table_gpa(unsigned level, uint64_t va);

/*
 * Address number `i` (from 0) of a pattern over [0, footprint) in steps of
 * `stride` bytes; RANDOM uses `seed`. A pure function of its arguments.
 */
uint64_t pagewalk_pattern_addr(enum pagewalk_pattern pattern, uint64_t i, uint64_t footprint, uint64_t stride,
                               uint64_t seed);

/*
 * Runs `accesses` accesses of `pattern` over `footprint` bytes (stride 4 KiB)
 * through a fresh model of `cfg`. Returns the totals; all zero for an
 * invalid cfg or an empty footprint.
 */
struct pagewalk_stats pagewalk_simulate(const struct pagewalk_config *cfg, enum pagewalk_pattern pattern,
                                        uint64_t footprint, uint64_t accesses, uint64_t seed);

#ifdef __cplusplus
}
#endif

#endif
