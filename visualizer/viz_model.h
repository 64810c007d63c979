/* The visualizer's model: what the screens show, folded from trace events one at a time. */
#ifndef MINIVMM_VIZ_MODEL_H
#define MINIVMM_VIZ_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace.h"

#define VIZ_KINDS       48
#define VIZ_ADDRS       256
#define VIZ_LAST        256
#define VIZ_RATE_BINS   512
#define VIZ_LAT_BUCKETS 6

struct viz_kind {
    char name[32];
    uint64_t n;
    bool kernel;
};

struct viz_addr {
    uint64_t addr;
    bool mmio;
    bool write;
    uint64_t n;
};

struct viz_model {
    uint64_t start_ns; /* time 0 of the rate graph and the exit list */
    uint64_t last_ns;
    uint64_t events, user, kernel;
    struct viz_kind kinds[VIZ_KINDS];
    int nkinds;
    uint64_t other_kinds; /* events whose kind did not fit the table */
    uint64_t lat[VIZ_LAT_BUCKETS];
    struct viz_addr addrs[VIZ_ADDRS];
    int naddrs;
    struct mvm_trace_event last[VIZ_LAST]; /* ring of the newest events that pass the filter */
    uint64_t nlast;
    uint64_t rate[VIZ_RATE_BINS]; /* events per bin (that pass the filter) */
    uint64_t bin_ns;              /* bin width; doubles when the trace outgrows the bins */
    int filter;                   /* index into kinds, or -1: all */
};

/* Upper bounds of the latency buckets in ns (the last is open). */
extern const uint64_t viz_lat_bounds[VIZ_LAT_BUCKETS];
extern const char *const viz_lat_labels[VIZ_LAT_BUCKETS];

/* Empties the model; start_ns is time 0. */
void viz_model_init(struct viz_model *m, uint64_t start_ns);
/* Folds one event in. */
void viz_model_add(struct viz_model *m, const struct mvm_trace_event *ev);
/* The kind index of an event (adding it when new), or -1 when the table is full. */
int viz_model_kind(struct viz_model *m, const struct mvm_trace_event *ev);
/* Kind indices sorted by count, largest first; returns how many (at most max). */
int viz_model_kinds_sorted(const struct viz_model *m, int *idx, int max);
/* Address indices sorted by count, largest first. */
int viz_model_addrs_sorted(const struct viz_model *m, int *idx, int max);
/* The i-th newest event of the exit list (0: newest), or NULL. */
const struct mvm_trace_event *viz_model_last(const struct viz_model *m, uint64_t i);
/* How many rate bins hold data. */
int viz_model_rate_bins(const struct viz_model *m);

#endif
