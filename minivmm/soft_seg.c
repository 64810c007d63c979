/*
 * The soft backend's segments: descriptors into the segment cache, KVM's view of it, and limit checks in
 * protected mode, which the engine does not make (a memory hook does, while a data segment is not flat).
 * Code fetches are not checked against CS's limit: the oracle, real KVM inside QEMU, runs such code too.
 */
#include "soft_decode.h"
#include "soft_uc_state.h"

#include <errno.h>
#include <string.h>

void soft_seg_from_desc(uint64_t d, uint16_t sel, struct soft_seg *s)
{
    uint32_t lo = (uint32_t)d, hi = (uint32_t)(d >> 32);
    s->selector = sel;
    s->base = (lo >> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000u);
    uint32_t limit = (lo & 0xffff) | (hi & 0x000f0000u);
    if (hi & SOFT_SEG_G)
        limit = (limit << 12) | 0xfff;
    s->limit = limit;
    s->flags = hi & 0x00f0ff00u;
}

void soft_seg_to_kvm(const struct soft_seg *s, struct kvm_segment *k)
{
    *k = (struct kvm_segment){
        .base = s->base,
        .limit = s->limit,
        .selector = (uint16_t)s->selector,
        .type = (s->flags >> SOFT_SEG_TYPE_SHIFT) & 15,
        .present = !!(s->flags & SOFT_SEG_P),
        .dpl = (s->flags >> SOFT_SEG_DPL_SHIFT) & 3,
        .db = (s->flags >> SOFT_SEG_B_SHIFT) & 1,
        .s = !!(s->flags & SOFT_SEG_S),
        .l = (s->flags >> SOFT_SEG_L_SHIFT) & 1,
        .g = !!(s->flags & SOFT_SEG_G),
        .avl = !!(s->flags & SOFT_SEG_AVL),
    };
    k->unusable = !k->present;
}

void soft_seg_from_kvm(struct soft_seg *s, const struct kvm_segment *k)
{
    s->selector = k->selector;
    s->base = k->base;
    s->limit = k->limit;
    s->flags = k->unusable
                   ? 0
                   : ((uint32_t)(k->type & 15) << SOFT_SEG_TYPE_SHIFT) | (k->present ? SOFT_SEG_P : 0) |
                         ((uint32_t)(k->dpl & 3) << SOFT_SEG_DPL_SHIFT) | ((uint32_t)(k->db & 1) << SOFT_SEG_B_SHIFT) |
                         (k->s ? SOFT_SEG_S : 0) | ((uint32_t)(k->l & 1) << SOFT_SEG_L_SHIFT) |
                         (k->g ? SOFT_SEG_G : 0) | (k->avl ? SOFT_SEG_AVL : 0);
}

static bool soft_seg_is_data(const struct soft_seg *s)
{
    return (s->flags & SOFT_SEG_S) && !(s->flags & SOFT_SEG_TYPE(X86_SEG_TYPE_CODE));
}

bool soft_seg_flat(const struct soft_seg *s)
{
    bool expand_down = soft_seg_is_data(s) && (s->flags & SOFT_SEG_TYPE(X86_SEG_TYPE_DATA_DOWN));
    return !(s->flags & SOFT_SEG_P) || (s->limit == 0xffffffffu && !expand_down);
}

bool soft_seg_access_ok(const struct soft_seg *s, uint64_t lin, unsigned size)
{
    uint64_t off = (lin - s->base) & 0xffffffffu, last = off + (uint64_t)size - 1;
    if (soft_seg_is_data(s) && (s->flags & SOFT_SEG_TYPE(X86_SEG_TYPE_DATA_DOWN)))
        return off > s->limit && last <= (((s->flags >> SOFT_SEG_B_SHIFT) & 1) ? 0xffffffffull : 0xffffull);
    return last <= s->limit;
}

/*
 * Re-read the segment state from the loaded image into the limit checker's
 * cache. True when the limit hook must be added or removed (between runs):
 * it is wanted in protected mode (not long, not virtual-8086) while any data
 * segment is not flat.
 */
bool soft_limits_refresh(struct soft_vcpu *v)
{
    uint32_t hf = img_u32(v, soft_layout.hflags);
    bool want = false;
    if ((IMG_CR(v, 0) & X86_CR0_PE) && !(hf & (HF_LMA_MASK | HF_VM_MASK))) {
        static const int data[] = {R_ES, R_SS, R_DS, R_FS, R_GS};
        for (size_t i = 0; i < sizeof data / sizeof data[0]; i++)
            want |= !soft_seg_flat(img_seg(v, data[i]));
    }
    for (int i = 0; i < 6; i++)
        v->lim_seg[i] = *img_seg(v, i);
    static const int tables[4] = {R_GDT, R_LDT, R_IDT, R_TR};
    for (int i = 0; i < 4; i++) {
        const struct soft_seg *t = img_seg(v, tables[i]);
        bool none = (tables[i] == R_LDT || tables[i] == R_TR) && !(t->selector & ~3u); /* no LDT, no TSS */
        v->lim_tables[i][0] = none ? ~0ull : t->base;
        v->lim_tables[i][1] = none ? 0 : t->limit;
    }
    v->lim_code = (hf & HF_CS32_MASK) ? 4 : 2;
    return want != v->limits_on;
}

/*
 * Memory hook, installed only while a data segment is not flat in protected
 * mode: checks the access against its segment's limit and raises #GP(0), or
 * #SS(0) for SS, with RIP at the instruction. The engine completes the access
 * before it stops, so a write's old bytes are put back before delivery.
 */
static void soft_hook_limit(uc_engine *uc, uc_mem_type type, uint64_t lin, int size, int64_t value, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)value;
    if (v->cancel || v->limit_fault || size <= 0)
        return;
    for (int t = 0; t < 4; t++)
        if (lin - v->lim_tables[t][0] <= v->lim_tables[t][1])
            return; /* the CPU's own descriptor-table and TSS accesses */
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
    img_load(v);
    uint8_t b[15];
    size_t n = soft_fetch(v, rip, b);
    bool write = type == UC_MEM_WRITE;
    int seg = soft_decode_access_seg(b, n, v->lim_code, write, lin, soft_rd(v, UC_X86_REG_RSI), v->lim_seg);
    if (seg < 0)
        return;
    const struct soft_seg *s = &v->lim_seg[seg];
    if (!(s->flags & SOFT_SEG_P))
        return;
    if (soft_seg_access_ok(s, lin, (unsigned)size))
        return;
    v->limit_fault = true;
    v->stop = STOP_EXCEPTION;
    v->exc_vector = seg == R_SS ? X86_VEC_SS : X86_VEC_GP;
    v->exc_has_error = true;
    v->exc_error = 0;
    v->exc_soft = false;
    v->undo_len = 0;
    uint64_t pa;
    uint32_t pe;
    if (write && (size_t)size <= sizeof v->undo_bytes &&
        soft_lin_rw(v, lin, v->undo_bytes, (size_t)size, false, false, &pa, &pe) == 0) {
        v->undo_lin = lin;
        v->undo_len = (unsigned)size;
    }
    uc_emu_stop(uc);
    soft_wr(v, UC_X86_REG_RIP, rip);
}

int soft_limits_apply(struct soft_vcpu *v)
{
    v->seg_check = false;
    img_load(v);
    if (!soft_limits_refresh(v))
        return 0;
    if (v->limits_on) {
        uc_hook_del(v->uc, v->limit_hook);
        v->limits_on = false;
    } else {
        if (uc_hook_add(v->uc, &v->limit_hook, UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, (void *)soft_hook_limit, v->engine,
                        1, 0) != UC_ERR_OK)
            return -ENOMEM;
        v->limits_on = true;
    }
    /* Retranslate: with the hook, translations keep RIP exact at every access; without it, run at full speed. */
    uc_ctl_flush_tb(v->uc);
    uc_ctl_flush_tlb(v->uc);
    return 0;
}
