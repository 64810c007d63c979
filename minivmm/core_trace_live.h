/* The live feed's layout, shared by its writer (core_trace.c) and its readers (core_trace_read.c). */
#ifndef MINIVMM_CORE_TRACE_LIVE_H
#define MINIVMM_CORE_TRACE_LIVE_H

#include <stdatomic.h>
#include <stdint.h>

/* The live feed: this header, then `capacity` events, in a file both sides map. */
#define MVM_LIVE_MAGIC  "MVMLIVE1"
#define MVM_LIVE_EVENTS 65536

struct mvm_live_header {
    char magic[8];
    uint32_t version;
    uint32_t event_size;
    uint32_t capacity; /* a power of two */
    uint32_t pid;
    uint64_t start_ns;
    char backend[16];
    _Atomic uint64_t head;     /* events published so far; event i is at slot i % capacity */
    _Atomic uint32_t finished; /* 1 once the VMM closed the feed */
    uint8_t reserved[68];
};
_Static_assert(sizeof(struct mvm_live_header) == 128, "live header layout");

#endif
