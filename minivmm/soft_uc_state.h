/*
 * Unicorn workaround: the engine's API cannot set hidden segment state or clear its "exception in progress"
 * field, so the backend edits the CPU state image inside a saved context (QEMU's CPUX86State), at offsets
 * found and checked at start-up (soft_uc_probe.c). Everything that knows that image is here.
 */
#ifndef MINIVMM_SOFT_UC_STATE_H
#define MINIVMM_SOFT_UC_STATE_H

#include <stdint.h>
#include <string.h>
#include <unicorn/unicorn.h>

#include "soft_priv.h"

/* Layout of Unicorn's CPUX86State inside a saved context, found and checked at start-up. */
struct soft_layout {
    size_t data;          /* offset of the CPU state image inside a uc_context */
    size_t hflags;        /* uint32 */
    size_t segs;          /* SegmentCache[6], then ldt, tr, gdt, idt */
    size_t cr;            /* target_ulong cr[5] */
    size_t efer;          /* uint64 */
    size_t error_code;    /* int, then int exception_is_int */
    size_t old_exception; /* int */
    size_t tsc_offset;    /* uint64 */
    size_t eflags;        /* target_ulong */
};

extern struct soft_layout soft_layout;

/* QEMU's hidden flags (target/i386/cpu.h): what the translator assumes about the mode. */
#define HF_CPL_MASK         3u
#define HF_INHIBIT_IRQ_MASK (1u << 3)
#define HF_CS32_MASK        (1u << 4)
#define HF_SS32_MASK        (1u << 5)
#define HF_ADDSEG_MASK      (1u << 6)
#define HF_PE_MASK          (1u << 7)
#define HF_TF_MASK          (1u << 8)
#define HF_MP_MASK          (1u << 9)
#define HF_EM_MASK          (1u << 10)
#define HF_TS_MASK          (1u << 11)
#define HF_IOPL_MASK        (3u << 12)
#define HF_LMA_MASK         (1u << 14)
#define HF_CS64_MASK        (1u << 15)
#define HF_VM_MASK          (1u << 17)
#define HF_OSFXSR_MASK      (1u << 22)
_Static_assert(HF_TF_MASK == X86_RFLAGS_TF && HF_IOPL_MASK == X86_RFLAGS_IOPL && HF_VM_MASK == X86_RFLAGS_VM,
               "QEMU keeps TF, IOPL and VM at their RFLAGS positions");

/* The CPU state image of v: an aligned copy of the one inside v->ctx, so its fields can be used in place. */
static inline uint8_t *img(struct soft_vcpu *v)
{
    return v->img;
}

/* Copy the engine's state into the image. */
static inline void img_load(struct soft_vcpu *v)
{
    uc_context_save(v->uc, v->ctx);
    memcpy(v->img, (uint8_t *)v->ctx + soft_layout.data, v->img_size);
}

/* Put the image back into the engine. */
static inline void img_commit(struct soft_vcpu *v)
{
    memcpy((uint8_t *)v->ctx + soft_layout.data, v->img, v->img_size);
    uc_context_restore(v->uc, v->ctx);
}

/* img_commit, and drop the engine's TLB (paging or segments changed). */
static inline void img_store(struct soft_vcpu *v)
{
    img_commit(v);
    uc_ctl_flush_tlb(v->uc);
}

/* QEMU's x86_update_hflags: the translation flags that follow from segments, CRs, EFER and rflags. */
void img_update_hflags(struct soft_vcpu *v, uint64_t rflags);

static inline struct soft_seg *img_seg(struct soft_vcpu *v, int i)
{
    return (struct soft_seg *)(img(v) + soft_layout.segs + (size_t)i * sizeof(struct soft_seg));
}

static inline uint64_t img_u64(struct soft_vcpu *v, size_t off)
{
    uint64_t x;
    memcpy(&x, img(v) + off, 8);
    return x;
}

static inline void img_set_u64(struct soft_vcpu *v, size_t off, uint64_t x)
{
    memcpy(img(v) + off, &x, 8);
}

static inline uint32_t img_u32(struct soft_vcpu *v, size_t off)
{
    uint32_t x;
    memcpy(&x, img(v) + off, 4);
    return x;
}

static inline void img_set_u32(struct soft_vcpu *v, size_t off, uint32_t x)
{
    memcpy(img(v) + off, &x, 4);
}

#define IMG_CR(v, n) img_u64(v, soft_layout.cr + 8 * (n))

#endif
