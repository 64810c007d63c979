/*
 * Unaligned MMIO reads as KVM makes them. Unicorn workaround: the engine reads an unaligned access of size s
 * (within a page or across one) as two aligned reads of s bytes around it, and KVM never widens a read: it
 * reads the bytes asked for, split where a page ends, in exits of at most 8 bytes (x86.c, emulator_read_write).
 * The guest's own access is found by decoding the running block's instructions (common integer instructions:
 * MOV, MOVZX/MOVSX, ALU, TEST; others keep the engine's shape).
 */
#include "soft_decode.h"
#include "soft_uc_state.h"

#include <string.h>

static const int soft_gpr[16] = {UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
                                 UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
                                 UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
                                 UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15};

/* The linear address of m, the operand of the instruction at rip, with the registers as they are now. */
static uint64_t soft_memop_lin(struct soft_vcpu *v, const struct soft_memop *m, uint64_t rip, bool a64)
{
    uint64_t ea = (uint64_t)m->disp;
    if (m->base == SOFT_MEMOP_RIP)
        ea += rip + m->len;
    else if (m->base >= 0)
        ea += soft_rd(v, soft_gpr[m->base]);
    if (m->index >= 0)
        ea += soft_rd(v, soft_gpr[m->index]) * m->scale;
    ea &= soft_mask(m->asize);
    uint64_t lin = ea + ((a64 && m->seg != R_FS && m->seg != R_GS) ? 0 : img_seg(v, m->seg)->base);
    return a64 ? lin : (uint32_t)lin;
}

static uint64_t soft_gpa_of(struct soft_vcpu *v, uint64_t lin)
{
    struct soft_walk w = soft_translate(v, lin, false, false);
    return w.fault || w.bad ? ~0ull : w.gpa;
}

/* Find the unaligned access of size bytes whose widened engine read is (gpa, size): its linear address. */
static bool soft_split_find(struct soft_vcpu *v, uint64_t gpa, unsigned size, uint64_t *lin_out)
{
    uint8_t buf[1024 + 16] = {0};
    uint64_t pa;
    uint32_t pe;
    if (v->blk_size == 0 || v->blk_size > 1024)
        return false;
    img_load(v);
    uint32_t hf = img_u32(v, soft_layout.hflags);
    unsigned code = (hf & HF_CS64_MASK) ? 8 : (hf & HF_CS32_MASK) ? 4 : 2;
    if (soft_lin_rw(v, v->blk_addr, buf, v->blk_size, false, false, &pa, &pe) != 0) /* blk_addr: linear */
        return false;
    for (uint32_t i = 0; i < v->blk_size;) {
        struct soft_memop m;
        int io;
        unsigned len = soft_insn_len(buf + i, v->blk_size + 15 - i, code, &io);
        if (len == 0)
            return false;
        if (soft_decode_memop(buf + i, len, code, &m) && m.size == size) {
            uint64_t lin = soft_memop_lin(v, &m, v->blk_addr + i, code == 8), a = lin & ~(uint64_t)(size - 1);
            if ((lin & (size - 1)) && (soft_gpa_of(v, a) == gpa || soft_gpa_of(v, a + size) == gpa)) {
                *lin_out = lin;
                return true;
            }
        }
        i += len;
    }
    return false;
}

bool soft_mmio_one_access(struct soft_vcpu *v, uint64_t gpa, unsigned len)
{
    uint8_t buf[1024 + 16] = {0};
    uint64_t pa;
    uint32_t pe;
    if (v->blk_size == 0 || v->blk_size > 1024)
        return false;
    img_load(v);
    uint32_t hf = img_u32(v, soft_layout.hflags);
    unsigned code = (hf & HF_CS64_MASK) ? 8 : (hf & HF_CS32_MASK) ? 4 : 2;
    if (soft_lin_rw(v, v->blk_addr, buf, v->blk_size, false, false, &pa, &pe) != 0) /* blk_addr: linear */
        return false;
    for (uint32_t i = 0; i < v->blk_size;) {
        struct soft_memop m;
        int io;
        unsigned ilen = soft_insn_len(buf + i, v->blk_size + 15 - i, code, &io);
        if (ilen == 0)
            return false;
        if (soft_decode_memop(buf + i, ilen, code, &m) && m.size >= len) {
            uint64_t lin = soft_memop_lin(v, &m, v->blk_addr + i, code == 8);
            for (unsigned k = 0; k + len <= m.size; k++)
                if (soft_gpa_of(v, lin + k) == gpa && soft_gpa_of(v, lin + k + len - 1) == gpa + len - 1)
                    return true;
        }
        i += ilen;
    }
    return false;
}

/* Read [lin, lin + size) as KVM does into out: RAM in place, MMIO in exits of at most 8 bytes per page part. */
static bool soft_split_fill(struct soft_vcpu *v, uint64_t lin, unsigned size, uint8_t *out)
{
    unsigned done = 0;
    while (done < size) {
        uint64_t l = lin + done;
        unsigned part = (unsigned)(SOFT_PAGE - (l & (SOFT_PAGE - 1)));
        if (part > size - done)
            part = size - done;
        uint64_t g = soft_gpa_of(v, l);
        if (g == ~0ull)
            return false;
        uint8_t *h = soft_gpa_to_hva(soft_vcpu_mem(v), g, part);
        if (h) {
            memcpy(out + done, h, part);
        } else {
            for (unsigned k = 0; k < part;) {
                unsigned c = part - k < 8 ? part - k : 8;
                struct kvm_run *run = v->run;
                run->exit_reason = KVM_EXIT_MMIO;
                run->mmio.phys_addr = g + k;
                run->mmio.len = c;
                run->mmio.is_write = 0;
                memset(run->mmio.data, 0, sizeof run->mmio.data);
                if (!soft_exit_to_vmm(v))
                    return false;
                memcpy(out + done + k, run->mmio.data, c);
                k += c;
            }
        }
        done += part;
    }
    return true;
}

static uint64_t soft_bytes_hash(const uint8_t *p, uint32_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Decode the running block's memory operands of 2, 4 and 8 bytes into v->split_site; false if it cannot be kept. */
static bool soft_split_site_fill(struct soft_vcpu *v, uint64_t cs, uint64_t cr0, uint64_t cr3)
{
    struct soft_split_site *c = &v->split_site;
    c->hva = NULL;
    if (v->blk_size == 0 || v->blk_size > 1024)
        return false;
    img_load(v);
    uint64_t lin = v->blk_addr; /* the block hook's address is linear */
    if ((lin & (SOFT_PAGE - 1)) + v->blk_size > SOFT_PAGE)
        return false;
    struct soft_walk w = soft_translate(v, lin, false, false);
    const uint8_t *h = w.fault || w.bad ? NULL : soft_gpa_to_hva(soft_vcpu_mem(v), w.gpa, v->blk_size);
    if (!h)
        return false;
    uint32_t hf = img_u32(v, soft_layout.hflags);
    unsigned code = (hf & HF_CS64_MASK) ? 8 : (hf & HF_CS32_MASK) ? 4 : 2, n = 0;
    uint8_t buf[1024 + 16] = {0};
    memcpy(buf, h, v->blk_size);
    for (uint32_t i = 0; i < v->blk_size;) {
        struct soft_memop m;
        int io;
        unsigned len = soft_insn_len(buf + i, v->blk_size + 15 - i, code, &io);
        if (len == 0)
            return false;
        if (soft_decode_memop(buf + i, len, code, &m) && (m.size == 2 || m.size == 4 || m.size == 8)) {
            if (n == sizeof c->cand / sizeof c->cand[0])
                return false;
            c->cand[n].base = (int8_t)m.base;
            c->cand[n].index = (int8_t)m.index;
            c->cand[n].seg = (int8_t)m.seg;
            c->cand[n].scale = (uint8_t)m.scale;
            c->cand[n].asize = (uint8_t)m.asize;
            c->cand[n].size = (uint8_t)m.size;
            c->cand[n].len = (uint8_t)m.len;
            c->cand[n].off = (uint16_t)i;
            c->cand[n].disp = m.disp;
            n++;
        }
        i += len;
    }
    c->blk_addr = v->blk_addr;
    c->blk_size = v->blk_size;
    c->cs = cs;
    c->cr0 = cr0;
    c->cr3 = cr3;
    c->gen = v->vm->slots_gen;
    c->code = code;
    c->n = n;
    c->hash = soft_bytes_hash(h, v->blk_size);
    c->hva = h;
    return true;
}

/*
 * Whether the engine's read of size bytes may be half of an unaligned access, without the state image: it may
 * not when no operand of that size in the block is unaligned with the registers as they are.
 */
static bool soft_split_may(struct soft_vcpu *v, unsigned size)
{
    static const int segreg[6] = {UC_X86_REG_ES, UC_X86_REG_CS, UC_X86_REG_SS,
                                  UC_X86_REG_DS, UC_X86_REG_FS, UC_X86_REG_GS};
    struct soft_split_site *c = &v->split_site;
    uint64_t cs = soft_rd(v, UC_X86_REG_CS), cr0 = soft_rd(v, UC_X86_REG_CR0), cr3 = soft_rd(v, UC_X86_REG_CR3);
    if (!(c->hva && c->blk_addr == v->blk_addr && c->blk_size == v->blk_size && c->cs == cs && c->cr0 == cr0 &&
          c->cr3 == cr3 && c->gen == v->vm->slots_gen && soft_bytes_hash(c->hva, c->blk_size) == c->hash) &&
        !soft_split_site_fill(v, cs, cr0, cr3))
        return true; /* not decodable here: let the full search decide */
    for (unsigned k = 0; k < c->n; k++) {
        if (c->cand[k].size != size)
            continue;
        uint64_t ea = (uint64_t)c->cand[k].disp;
        if (c->cand[k].base == SOFT_MEMOP_RIP)
            ea += c->blk_addr + c->cand[k].off + c->cand[k].len;
        else if (c->cand[k].base >= 0)
            ea += soft_rd(v, soft_gpr[c->cand[k].base]);
        if (c->cand[k].index >= 0)
            ea += soft_rd(v, soft_gpr[c->cand[k].index]) * c->cand[k].scale;
        ea &= soft_mask(c->cand[k].asize);
        if (c->code == 8)
            ea += c->cand[k].seg == R_FS   ? soft_rd(v, UC_X86_REG_FS_BASE)
                  : c->cand[k].seg == R_GS ? soft_rd(v, UC_X86_REG_GS_BASE)
                                           : 0;
        else if (cr0 & X86_CR0_PE)
            ea += v->lim_seg[c->cand[k].seg].base; /* the segments as soft_seg.c last saw them, after each load */
        else
            ea += soft_rd(v, segreg[c->cand[k].seg]) << 4; /* real mode */
        if (ea & (size - 1))
            return true;
    }
    return false;
}

bool soft_mmio_split_read(struct soft_vcpu *v, uint64_t gpa, unsigned size, uint64_t *val)
{
    if (v->rhigh_valid && v->racc_size == size) {
        for (int k = 0; k < 2; k++) {
            if (v->racc_gpa[k] == gpa) {
                *val = 0;
                memcpy(val, v->racc_win + k * size, size);
                v->racc_gpa[k] = ~0ull;
                if (v->racc_gpa[1 - k] == ~0ull)
                    v->racc_size = 0;
                return true;
            }
        }
    }
    if ((size != 2 && size != 4 && size != 8) || (gpa & (size - 1)))
        return false;
    if (!soft_split_may(v, size))
        return false;
    uint64_t lin;
    if (!soft_split_find(v, gpa, size, &lin))
        return false;
    uint64_t a = lin & ~(uint64_t)(size - 1);
    soft_mmio_flush(v);
    memset(v->racc_win, 0, sizeof v->racc_win);
    if (!soft_split_fill(v, lin, size, v->racc_win + (lin - a)))
        return *val = 0, true;
    v->racc_size = size;
    v->racc_gpa[0] = soft_gpa_of(v, a);
    v->racc_gpa[1] = soft_gpa_of(v, a + size);
    v->rhigh_valid = true; /* the block hook ends it */
    v->rhigh_gpa = ~0ull;
    return soft_mmio_split_read(v, gpa, size, val);
}
