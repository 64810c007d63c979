/* The soft backend's x86 instruction decoder: lengths, I/O instructions, segments of data accesses. Pure logic. */
#include "soft_decode.h"
#include "soft_seg.h"

static bool soft_is_prefix(uint8_t c)
{
    return c == 0x66 || c == 0x67 || c == 0xf0 || c == 0xf2 || c == 0xf3 || c == 0x2e || c == 0x36 || c == 0x3e ||
           c == 0x26 || c == 0x64 || c == 0x65;
}

/* Where the parts of an instruction are, for soft_decode_memop. */
struct soft_insn_info {
    int modrm_at; /* offset of the ModRM byte, or -1 */
    int moffs_at; /* offset of the moffs of A0-A3, or -1 */
    unsigned asize;
    int seg; /* a segment override (R_ES...), or -1 */
    uint8_t rex;
    uint8_t op, op2; /* the opcode; op2 after 0x0f */
    unsigned osize;  /* operand size of "v" operands: 2, 4 or 8 */
};

static unsigned soft_insn_parse(const uint8_t *b, size_t n, unsigned code, int *is_io, struct soft_insn_info *info)
{
    size_t i = 0;
    bool opsz = false, adsz = false, rexw = false;
    *is_io = SOFT_IO_NONE;
    info->modrm_at = info->moffs_at = info->seg = -1;
    info->rex = 0;
    for (; i < n && i < 14; i++) {
        uint8_t c = b[i];
        if (c == 0x66)
            opsz = true;
        else if (c == 0x67)
            adsz = true;
        else if (c == 0x26 || c == 0x2e || c == 0x36 || c == 0x3e || c == 0x64 || c == 0x65)
            info->seg = c == 0x26   ? R_ES
                        : c == 0x2e ? R_CS
                        : c == 0x36 ? R_SS
                        : c == 0x3e ? R_DS
                        : c == 0x64 ? R_FS
                                    : R_GS;
        else if (c == 0xf0 || c == 0xf2 || c == 0xf3)
            continue;
        else
            break;
    }
    if (code == 8 && i < n && (b[i] & 0xf0) == 0x40) {
        rexw = (b[i] & 8) != 0;
        info->rex = b[i];
        i++;
    }
    if (i >= n)
        return 0;
    unsigned osize = code == 2 ? (opsz ? 4 : 2) : (opsz ? 2 : 4); /* immediate size of "z" operands */
    unsigned asize = code == 8 ? (adsz ? 4 : 8) : code == 4 ? (adsz ? 2 : 4) : (adsz ? 4 : 2);
    info->asize = asize;
    uint8_t op = b[i++];
    bool modrm = false;
    info->op = op;
    info->op2 = op == 0x0f && i < n ? b[i] : 0;
    info->osize = rexw ? 8 : osize;
    unsigned imm = 0;
    if (op == 0x0f) {
        if (i >= n)
            return 0;
        uint8_t o2 = b[i++];
        if (o2 == 0x38) {
            i++;
            modrm = true;
        } else if (o2 == 0x3a) {
            i++;
            modrm = true;
            imm = 1;
        } else if (o2 >= 0x80 && o2 <= 0x8f) {
            imm = code == 2 && !opsz ? 2 : 4;
        } else if ((o2 >= 0x30 && o2 <= 0x37) || o2 == 0x05 || o2 == 0x06 || o2 == 0x07 || o2 == 0x08 || o2 == 0x09 ||
                   o2 == 0x0b || o2 == 0x0e || o2 == 0x77 || o2 == 0xa0 || o2 == 0xa1 || o2 == 0xa2 || o2 == 0xa8 ||
                   o2 == 0xa9 || o2 == 0xaa || (o2 >= 0xc8 && o2 <= 0xcf)) {
            modrm = false;
        } else {
            modrm = true;
            if ((o2 >= 0x70 && o2 <= 0x73) || o2 == 0xa4 || o2 == 0xac || o2 == 0xba || o2 == 0xc2 || o2 == 0xc4 ||
                o2 == 0xc5 || o2 == 0xc6 || o2 == 0x0f)
                imm = 1;
        }
    } else if (code == 8 && (op == 0xc4 || op == 0xc5)) {
        /* VEX */
        unsigned map = 1;
        if (op == 0xc4) {
            if (i + 1 >= n)
                return 0;
            map = b[i] & 0x1f;
            i += 2;
        } else {
            i += 1;
        }
        i++; /* opcode */
        modrm = true;
        imm = map == 3 ? 1 : 0;
    } else {
        switch (op) {
        case 0x04:
        case 0x0c:
        case 0x14:
        case 0x1c:
        case 0x24:
        case 0x2c:
        case 0x34:
        case 0x3c:
        case 0x6a:
        case 0xa8:
        case 0xcd:
        case 0xd4:
        case 0xd5:
        case 0xeb:
        case 0x70:
        case 0x71:
        case 0x72:
        case 0x73:
        case 0x74:
        case 0x75:
        case 0x76:
        case 0x77:
        case 0x78:
        case 0x79:
        case 0x7a:
        case 0x7b:
        case 0x7c:
        case 0x7d:
        case 0x7e:
        case 0x7f:
        case 0xe0:
        case 0xe1:
        case 0xe2:
        case 0xe3:
        case 0xb0:
        case 0xb1:
        case 0xb2:
        case 0xb3:
        case 0xb4:
        case 0xb5:
        case 0xb6:
        case 0xb7:
            imm = 1;
            break;
        case 0xe4:
        case 0xe5:
        case 0xe6:
        case 0xe7:
            imm = 1;
            *is_io = SOFT_IO_PORT;
            break;
        case 0xec:
        case 0xed:
        case 0xee:
        case 0xef:
            *is_io = SOFT_IO_PORT;
            break;
        case 0x6c:
        case 0x6d:
        case 0x6e:
        case 0x6f:
            *is_io = SOFT_IO_STRING;
            break;
        case 0x05:
        case 0x0d:
        case 0x15:
        case 0x1d:
        case 0x25:
        case 0x2d:
        case 0x35:
        case 0x3d:
        case 0x68:
        case 0xa9:
        case 0xe8:
        case 0xe9:
            imm = (code == 8 && (op == 0xe8 || op == 0xe9)) ? 4 : osize;
            break;
        case 0xb8:
        case 0xb9:
        case 0xba:
        case 0xbb:
        case 0xbc:
        case 0xbd:
        case 0xbe:
        case 0xbf:
            imm = rexw ? 8 : osize;
            break;
        case 0xa0:
        case 0xa1:
        case 0xa2:
        case 0xa3:
            imm = asize;
            info->moffs_at = (int)i;
            break;
        case 0xc2:
        case 0xca:
            imm = 2;
            break;
        case 0xc8:
            imm = 3;
            break;
        case 0x9a:
        case 0xea:
            imm = osize + 2;
            break;
        case 0x69:
        case 0x81:
        case 0xc7:
            modrm = true;
            imm = osize;
            break;
        case 0x6b:
        case 0x80:
        case 0x82:
        case 0x83:
        case 0xc0:
        case 0xc1:
        case 0xc6:
            modrm = true;
            imm = 1;
            break;
        case 0xf6:
        case 0xf7:
            modrm = true;
            if (i < n && ((b[i] >> 3) & 7) <= 1)
                imm = op == 0xf6 ? 1 : osize;
            break;
        default:
            modrm = (op <= 0x3f && (op & 7) < 4) || op == 0x62 || op == 0x63 || (op >= 0x84 && op <= 0x8f) ||
                    op == 0xc4 || op == 0xc5 || (op >= 0xd0 && op <= 0xd3) || (op >= 0xd8 && op <= 0xdf) ||
                    op == 0xfe || op == 0xff;
            break;
        }
    }
    if (modrm) {
        if (i >= n)
            return 0;
        info->modrm_at = (int)i;
        uint8_t m = b[i++];
        unsigned mod = m >> 6, rm = m & 7;
        if (mod != 3) {
            if (asize == 2) {
                if (mod == 1)
                    i += 1;
                else if (mod == 2 || (mod == 0 && rm == 6))
                    i += 2;
            } else {
                if (rm == 4) {
                    if (i >= n)
                        return 0;
                    uint8_t sib = b[i++];
                    if (mod == 0 && (sib & 7) == 5)
                        i += 4;
                }
                if (mod == 1)
                    i += 1;
                else if (mod == 2 || (mod == 0 && rm == 5))
                    i += 4;
            }
        }
    }
    i += imm;
    return i <= 15 ? (unsigned)i : 0;
}

unsigned soft_insn_len(const uint8_t *b, size_t n, unsigned code, int *is_io)
{
    struct soft_insn_info info;
    return soft_insn_parse(b, n, code, is_io, &info);
}

static int64_t soft_disp(const uint8_t *p, unsigned size)
{
    if (size == 1)
        return (int8_t)p[0];
    if (size == 2)
        return (int16_t)(p[0] | p[1] << 8);
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* Bytes the memory operand of a common integer instruction covers; 0 when not known here. */
static unsigned soft_memop_size(const struct soft_insn_info *info)
{
    uint8_t op = info->op;
    unsigned v = info->osize, w = (op & 1) ? v : 1;
    if (op == 0x0f)
        return info->op2 == 0xb6 || info->op2 == 0xbe ? 1 : info->op2 == 0xb7 || info->op2 == 0xbf ? 2 : 0;
    if ((op <= 0x3f && (op & 7) < 4) || (op >= 0x84 && op <= 0x8b) || (op >= 0xa0 && op <= 0xa3) || op == 0xc6 ||
        op == 0xc7 || op == 0xf6 || op == 0xf7 || op == 0xfe || op == 0xff || (op >= 0xd0 && op <= 0xd3) ||
        op == 0xc0 || op == 0xc1)
        return w;
    if (op >= 0x80 && op <= 0x83)
        return op == 0x80 || op == 0x82 ? 1 : v;
    if (op == 0x8c || op == 0x8e)
        return 2;
    if (op == 0x69 || op == 0x6b || op == 0x63)
        return op == 0x63 ? 4 : v;
    return 0;
}

bool soft_decode_memop(const uint8_t *b, size_t n, unsigned code, struct soft_memop *m)
{
    struct soft_insn_info info;
    int io;
    unsigned len = soft_insn_parse(b, n, code, &io, &info);
    if (len == 0)
        return false;
    *m = (struct soft_memop){.base = -1,
                             .index = -1,
                             .scale = 1,
                             .asize = info.asize,
                             .len = len,
                             .seg = R_DS,
                             .size = soft_memop_size(&info)};
    if (info.moffs_at >= 0) {
        const uint8_t *p = b + info.moffs_at;
        uint64_t a = 0;
        for (unsigned k = 0; k < info.asize; k++)
            a |= (uint64_t)p[k] << (8 * k);
        m->disp = (int64_t)a;
    } else if (info.modrm_at >= 0) {
        const uint8_t *p = b + info.modrm_at;
        unsigned mod = p[0] >> 6, rm = p[0] & 7;
        if (mod == 3)
            return false;
        p++;
        if (info.asize == 2) {
            static const int8_t base16[8] = {3, 3, 5, 5, 6, 7, 5, 3}, index16[8] = {6, 7, 6, 7, -1, -1, -1, -1};
            m->base = (mod == 0 && rm == 6) ? -1 : base16[rm];
            m->index = index16[rm];
            if (m->base == 5)
                m->seg = R_SS; /* BP-based */
            m->disp = mod == 1 ? soft_disp(p, 1) : (mod == 2 || (mod == 0 && rm == 6)) ? soft_disp(p, 2) : 0;
        } else {
            unsigned rexb = (info.rex & 1) ? 8 : 0, rexx = (info.rex & 2) ? 8 : 0;
            if (rm == 4) {
                uint8_t sib = *p++;
                unsigned sb = sib & 7, si = (sib >> 3) & 7;
                m->scale = 1u << (sib >> 6);
                m->index = (si | rexx) == 4 ? -1 : (int)(si | rexx);
                m->base = (mod == 0 && sb == 5) ? -1 : (int)(sb | rexb);
                if (mod == 0 && sb == 5)
                    m->disp = soft_disp(p, 4);
            } else if (mod == 0 && rm == 5) {
                m->base = code == 8 ? SOFT_MEMOP_RIP : -1;
                m->disp = soft_disp(p, 4);
            } else {
                m->base = (int)(rm | rexb);
            }
            if (mod == 1)
                m->disp = soft_disp(p, 1);
            else if (mod == 2)
                m->disp = soft_disp(p, 4);
            if (m->base == 4 || m->base == 5)
                m->seg = R_SS; /* SP- or BP-based */
        }
    } else {
        return false;
    }
    if (info.seg >= 0)
        m->seg = info.seg;
    return true;
}

/* Prefixes an I/O instruction may carry besides REP and 0x67 (operand size, segments; REX in 64-bit code). */
static bool soft_io_other_prefix(uint8_t c, bool a64)
{
    return c == 0x66 || c == 0x26 || c == 0x2e || c == 0x36 || c == 0x3e || c == 0x64 || c == 0x65 ||
           (a64 && (c & 0xf0) == 0x40);
}

bool soft_decode_io_insn(const uint8_t *b, size_t n, bool a64, struct soft_pio_insn *d, bool *asz)
{
    size_t i = 0;
    for (; i < n; i++) {
        uint8_t c = b[i];
        if (c == 0xf3 || c == 0xf2)
            d->rep = true;
        else if (c == 0x67)
            *asz = true;
        else if (!soft_io_other_prefix(c, a64))
            break;
    }
    bool io = i < n && ((b[i] >= 0x6c && b[i] <= 0x6f) || (b[i] >= 0xe4 && b[i] <= 0xe7) || b[i] >= 0xec);
    if (io)
        d->string = b[i] <= 0x6f;
    return io;
}

void soft_decode_io_tail(const uint8_t *t, unsigned k, bool a64, struct soft_pio_insn *d, bool *asz)
{
    if (k == 0 || (t[k - 1] != 0x6c && t[k - 1] != 0x6d))
        return;
    d->string = true;
    for (int j = (int)k - 2; j >= 0; j--) {
        uint8_t c = t[j];
        if (c == 0xf3 || c == 0xf2)
            d->rep = true;
        else if (c == 0x67)
            *asz = true;
        else if (!soft_io_other_prefix(c, a64))
            break;
    }
}

unsigned soft_io_addr_size(bool a32, bool a64, bool asz)
{
    return a64 ? (asz ? 4 : 8) : ((a32 != asz) ? 4 : 2);
}

int soft_decode_access_seg(const uint8_t *b, size_t n, unsigned code, bool write, uint64_t lin, uint64_t rsi,
                           const struct soft_seg segs[6])
{
    size_t i = 0;
    int ovr = -1;
    bool adsz = false;
    for (; i < n; i++) {
        uint8_t c = b[i];
        if (c == 0x26 || c == 0x2e || c == 0x36 || c == 0x3e)
            ovr = (c >> 3) & 3; /* ES CS SS DS */
        else if (c == 0x64 || c == 0x65)
            ovr = c == 0x64 ? R_FS : R_GS;
        else if (c == 0x67)
            adsz = true;
        else if (!(c == 0x66 || c == 0xf0 || c == 0xf2 || c == 0xf3))
            break;
    }
    if (i >= n)
        return -1;
    int data = ovr >= 0 ? ovr : R_DS;
    unsigned asize = code == 4 ? (adsz ? 2 : 4) : (adsz ? 4 : 2);
    uint8_t op = b[i];
    size_t mi = i + 1; /* the ModRM byte */
    switch (op) {
    case 0x06:
    case 0x07:
    case 0x0e:
    case 0x16:
    case 0x17:
    case 0x1e:
    case 0x1f:
    case 0x60:
    case 0x61:
    case 0x68:
    case 0x6a:
    case 0x9a:
    case 0x9c:
    case 0x9d:
    case 0xc2:
    case 0xc3:
    case 0xc8:
    case 0xc9:
    case 0xca:
    case 0xcb:
    case 0xcf:
    case 0xe8:
        return R_SS; /* stack */
    case 0xa4:
    case 0xa5:
    case 0xaa:
    case 0xab:
    case 0x6c:
    case 0x6d:
        return write ? R_ES : data; /* movs, stos, ins: the destination is ES:(E)DI */
    case 0xa6:
    case 0xa7: { /* cmps reads DS:(E)SI and ES:(E)DI */
        uint64_t si = rsi & soft_mask(asize);
        return ((lin - segs[data].base) & 0xffffffffu) == si ? data : R_ES;
    }
    case 0xae:
    case 0xaf:
        return R_ES; /* scas */
    case 0xa0:
    case 0xa1:
    case 0xa2:
    case 0xa3:
    case 0xac:
    case 0xad:
    case 0x6e:
    case 0x6f:
    case 0xd7:
        return data; /* moffs, lods, outs, xlat */
    case 0x0f:
        if (mi >= n)
            return -1;
        if (b[mi] == 0xa0 || b[mi] == 0xa1 || b[mi] == 0xa8 || b[mi] == 0xa9)
            return R_SS; /* push/pop fs/gs */
        mi += (b[mi] == 0x38 || b[mi] == 0x3a) ? 2 : 1;
        break;
    default:
        if (op >= 0x50 && op <= 0x5f)
            return R_SS;
        break;
    }
    /* Everything else that touches memory has a ModRM operand. */
    if (mi >= n)
        return -1;
    uint8_t m = b[mi];
    unsigned mod = m >> 6, rm = m & 7, reg = (m >> 3) & 7;
    if (op == 0xff && (reg == 2 || reg == 3 || reg == 6) && write)
        return R_SS; /* call/push r/m: the push */
    if (op == 0x8f && !write)
        return R_SS; /* pop r/m: the pop */
    if (mod == 3)
        return -1;
    if (ovr >= 0)
        return ovr;
    if (asize == 2)
        return (rm == 2 || rm == 3 || (rm == 6 && mod != 0)) ? R_SS : R_DS;
    if (rm == 4 && mi + 1 < n) {
        unsigned base = b[mi + 1] & 7;
        return (base == 4 || (base == 5 && mod != 0)) ? R_SS : R_DS;
    }
    return (rm == 5 && mod != 0) ? R_SS : R_DS;
}

bool soft_insn_changes_segs(const uint8_t *b, size_t n)
{
    size_t i = 0;
    while (i < n && soft_is_prefix(b[i]))
        i++;
    if (i >= n)
        return false;
    switch (b[i]) {
    case 0x8e:
    case 0x07:
    case 0x17:
    case 0x1f:
    case 0xc4:
    case 0xc5:
    case 0xca:
    case 0xcb:
    case 0xcf:
        return true; /* mov/pop sreg, les/lds, retf, iret */
    case 0x0f:
        if (i + 1 >= n)
            return false;
        switch (b[i + 1]) {
        case 0xa1:
        case 0xa9:
        case 0xb2:
        case 0xb4:
        case 0xb5:
        case 0x22:
        case 0x34:
        case 0x35:
        case 0x05:
        case 0x07:
            return true; /* pop fs/gs, lss/lfs/lgs, mov crN, sysenter/sysexit, syscall/sysret */
        case 0x01:
            return i + 2 < n && ((b[i + 2] >> 3) & 7) == 6; /* lmsw */
        default:
            return false;
        }
    default:
        return false;
    }
}

uint32_t soft_ins_batch(uint64_t rdi, bool df, unsigned size, uint64_t count)
{
    enum { PAGE = 4096, READ_AHEAD = 1024 /* sizeof(struct read_cache.data) */ };
    uint64_t off = rdi & (PAGE - 1);
    uint64_t n = df ? off : PAGE - off;
    if (n > READ_AHEAD / size)
        n = READ_AHEAD / size;
    if (count < n)
        n = count;
    return n ? (uint32_t)n : 1;
}

/* Control transfers, and what else ends the engine's block (HLT, STI, POPF, SYSCALL...). */
static bool soft_insn_ends_block(const struct soft_insn_info *info, const uint8_t *b)
{
    uint8_t op = info->op, op2 = info->op2;
    unsigned reg = info->modrm_at >= 0 ? (b[info->modrm_at] >> 3) & 7 : 0;
    if (op == 0x0f)
        return (op2 >= 0x80 && op2 <= 0x8f) || op2 == 0x05 || op2 == 0x07 || op2 == 0x34 || op2 == 0x35 || op2 == 0x0b;
    return (op >= 0x70 && op <= 0x7f) || (op >= 0xe0 && op <= 0xe3) || (op >= 0xe8 && op <= 0xeb) || op == 0x9a ||
           op == 0xc2 || op == 0xc3 || op == 0xca || op == 0xcb || (op >= 0xcc && op <= 0xcf) || op == 0xf4 ||
           op == 0xfb || op == 0x9d || (op == 0xff && reg >= 2 && reg <= 5);
}

bool soft_insn_may_unmask(const uint8_t *b, size_t n, unsigned code, bool mem, bool *ends_block)
{
    struct soft_insn_info info;
    int io;
    if (ends_block)
        *ends_block = false;
    if (soft_insn_parse(b, n, code, &io, &info) == 0)
        return false;
    if (ends_block)
        *ends_block = soft_insn_ends_block(&info, b);
    if (io != SOFT_IO_NONE)
        return true; /* the PIC's ports, or an exit during which the VMM may raise a line */
    uint8_t op = info.op, op2 = info.op2;
    if (op == 0x0f && (op2 == 0x30 || op2 == 0x22))
        return true; /* WRMSR (x2APIC, TSC deadline), MOV to CRn (CR8 is the TPR) */
    if (!mem)
        return false;
    if (op == 0xa2 || op == 0xa3 || op == 0xa4 || op == 0xa5 || op == 0xaa || op == 0xab)
        return true; /* a store to a moffs, MOVS, STOS */
    if (info.modrm_at < 0 || (b[info.modrm_at] >> 6) == 3)
        return false; /* no memory operand */
    unsigned reg = (b[info.modrm_at] >> 3) & 7;
    if (op == 0x0f && op2 == 0xc7 && reg == 1)
        return false; /* CMPXCHG8B/16B: see soft_decode.h */
    if (op == 0x0f) {
        switch (op2) {
        case 0x0d: /* prefetchw */
        case 0x10: /* movups/movss load */
        case 0x12:
        case 0x16:
        case 0x18: /* prefetch */
        case 0x1f: /* nop */
        case 0x28: /* movaps load */
        case 0x2e: /* ucomiss */
        case 0x2f:
        case 0x6e: /* movd load */
        case 0x6f: /* movq/movdqa load */
        case 0xa3: /* bt */
        case 0xaf: /* imul */
        case 0xb6: /* movzx, movsx */
        case 0xb7:
        case 0xbc: /* bsf, bsr */
        case 0xbd:
        case 0xbe:
        case 0xbf:
            return false;
        default:
            return !(op2 >= 0x40 && op2 <= 0x4f) && !(op2 == 0xba && reg == 4); /* cmov, bt imm: reads */
        }
    }
    switch (op) {
    case 0x02: /* ALU reg <- mem: reads */
    case 0x03:
    case 0x0a:
    case 0x0b:
    case 0x12:
    case 0x13:
    case 0x1a:
    case 0x1b:
    case 0x22:
    case 0x23:
    case 0x2a:
    case 0x2b:
    case 0x32:
    case 0x33:
    case 0x38: /* cmp */
    case 0x39:
    case 0x3a:
    case 0x3b:
    case 0x69: /* imul */
    case 0x6b:
    case 0x84: /* test */
    case 0x85:
    case 0x8a: /* mov reg <- mem */
    case 0x8b:
    case 0x8d: /* lea: no access */
        return false;
    case 0x80: /* cmp mem, imm */
    case 0x81:
    case 0x83:
        return reg != 7;
    case 0xf6: /* test, mul, imul, div, idiv of mem */
    case 0xf7:
        return reg == 2 || reg == 3;
    case 0xff: /* call/jmp through mem, push mem: the memory is read (the stack is RAM) */
        return reg == 0 || reg == 1;
    default:
        return true;
    }
}
