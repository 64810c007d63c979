/* The soft backend's segments as the CPU caches them, descriptors and limit checks: pure logic, unit-tested. */
#ifndef MINIVMM_SOFT_SEG_H
#define MINIVMM_SOFT_SEG_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "x86.h"

/* x86's segment register numbers (the sreg field of mov Sreg), then the engine's order of the system segments. */
enum { R_ES, R_CS, R_SS, R_DS, R_FS, R_GS, R_LDT, R_TR, R_GDT, R_IDT };

/* A segment as the CPU caches it (Unicorn's SegmentCache): flags are the descriptor's high dword. */
struct soft_seg {
    uint32_t selector;
    uint32_t pad;
    uint64_t base;
    uint32_t limit; /* in bytes: a G descriptor's limit is already scaled */
    uint32_t flags;
};
_Static_assert(sizeof(struct soft_seg) == 24, "SegmentCache layout");

/* Bits of soft_seg.flags: x86.h's X86_DESC_* bits, less 32. */
#define SOFT_SEG_TYPE_SHIFT (X86_DESC_TYPE_SHIFT - 32)
#define SOFT_SEG_DPL_SHIFT  (X86_DESC_DPL_SHIFT - 32)
#define SOFT_SEG_L_SHIFT    21
#define SOFT_SEG_B_SHIFT    22
#define SOFT_SEG_S          ((uint32_t)(X86_DESC_S >> 32))
#define SOFT_SEG_P          ((uint32_t)(X86_DESC_P >> 32))
#define SOFT_SEG_AVL        ((uint32_t)(X86_DESC_AVL >> 32))
#define SOFT_SEG_G          ((uint32_t)(X86_DESC_G >> 32))
#define SOFT_SEG_TYPE(t)    ((uint32_t)(t) << SOFT_SEG_TYPE_SHIFT)
_Static_assert(SOFT_SEG_TYPE_SHIFT == 8 && SOFT_SEG_DPL_SHIFT == 13 && SOFT_SEG_P == 1u << 15,
               "SegmentCache flags are the descriptor's high dword");
_Static_assert((1ull << (SOFT_SEG_L_SHIFT + 32)) == X86_DESC_L && (1ull << (SOFT_SEG_B_SHIFT + 32)) == X86_DESC_DB,
               "L and D/B in the descriptor's high dword");

/* The segment cache loaded from the 8-byte descriptor desc for selector sel (limit scaled by G). */
void soft_seg_from_desc(uint64_t desc, uint16_t sel, struct soft_seg *s);
/* The segment cache as KVM_GET_SREGS reports it, and back (an unusable segment has no flags). */
void soft_seg_to_kvm(const struct soft_seg *s, struct kvm_segment *k);
void soft_seg_from_kvm(struct soft_seg *s, const struct kvm_segment *k);
/* True when s needs no limit check: not present, or a 4 GiB expand-up segment. */
bool soft_seg_flat(const struct soft_seg *s);
/*
 * True when an access of size bytes at linear address lin through s is
 * within its limit (expand-down data segments: above the limit, up to 64 KiB
 * or 4 GiB as D/B says). Offsets are 32-bit, as in protected mode.
 */
bool soft_seg_access_ok(const struct soft_seg *s, uint64_t lin, unsigned size);

#endif
