/*
 * The gdb stub's x86 registers: the layouts gdb's i386 and amd64 code expect (gdb/features/i386/{32,64}bit-core,
 * -sse, -segments.xml), then minivmm's own feature with the hidden segment bases, control registers and EFER;
 * the target description (qXfer:features:read) for each; and each register read or written in kvm_regs/sregs.
 */
#include "gdbstub_x86.h"

#include <stdio.h>
#include <string.h>

#include "x86.h"

enum { SRC_GPR, SRC_RIP, SRC_FLAGS, SRC_SEL, SRC_BASE, SRC_CR, SRC_EFER, SRC_FPU };
enum { SEG_CS, SEG_SS, SEG_DS, SEG_ES, SEG_FS, SEG_GS };
/* Index in struct kvm_regs, which is 18 u64 in this order. */
enum { G_RAX, G_RBX, G_RCX, G_RDX, G_RSI, G_RDI, G_RSP, G_RBP, G_R8 };

/* gdb's features, in this order: core and SSE (required by gdb's i386 code), segments, and minivmm's own. */
enum { F_CORE, F_SSE, F_SEGS, F_SYS };

struct gdb_reg {
    const char *name;
    uint8_t bits, src, idx;
    const char *type;
    uint8_t feature;
};

/* gdb/features/i386/32bit-{core,sse,segments}.xml; the x87 and SSE state is not kept (zeros). */
// clang-format off
static const struct gdb_reg regs32[] = {
    {"eax", 32, SRC_GPR, G_RAX, "int32", F_CORE},
    {"ecx", 32, SRC_GPR, G_RCX, "int32", F_CORE},
    {"edx", 32, SRC_GPR, G_RDX, "int32", F_CORE},
    {"ebx", 32, SRC_GPR, G_RBX, "int32", F_CORE},
    {"esp", 32, SRC_GPR, G_RSP, "data_ptr", F_CORE},
    {"ebp", 32, SRC_GPR, G_RBP, "data_ptr", F_CORE},
    {"esi", 32, SRC_GPR, G_RSI, "int32", F_CORE},
    {"edi", 32, SRC_GPR, G_RDI, "int32", F_CORE},
    {"eip", 32, SRC_RIP, 0, "code_ptr", F_CORE},
    {"eflags", 32, SRC_FLAGS, 0, "i386_eflags", F_CORE},
    {"cs", 32, SRC_SEL, SEG_CS, "int32", F_CORE},
    {"ss", 32, SRC_SEL, SEG_SS, "int32", F_CORE},
    {"ds", 32, SRC_SEL, SEG_DS, "int32", F_CORE},
    {"es", 32, SRC_SEL, SEG_ES, "int32", F_CORE},
    {"fs", 32, SRC_SEL, SEG_FS, "int32", F_CORE},
    {"gs", 32, SRC_SEL, SEG_GS, "int32", F_CORE},
    {"st0", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st1", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st2", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st3", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st4", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st5", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st6", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st7", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"fctrl", 32, SRC_FPU, 0, "int", F_CORE},
    {"fstat", 32, SRC_FPU, 0, "int", F_CORE},
    {"ftag", 32, SRC_FPU, 0, "int", F_CORE},
    {"fiseg", 32, SRC_FPU, 0, "int", F_CORE},
    {"fioff", 32, SRC_FPU, 0, "int", F_CORE},
    {"foseg", 32, SRC_FPU, 0, "int", F_CORE},
    {"fooff", 32, SRC_FPU, 0, "int", F_CORE},
    {"fop", 32, SRC_FPU, 0, "int", F_CORE},
    {"xmm0", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm1", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm2", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm3", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm4", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm5", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm6", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm7", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"mxcsr", 32, SRC_FPU, 0, "int", F_SSE},
    {"fs_base", 32, SRC_BASE, SEG_FS, "int", F_SEGS},
    {"gs_base", 32, SRC_BASE, SEG_GS, "int", F_SEGS},
    {"cs_base", 64, SRC_BASE, SEG_CS, "uint64", F_SYS},
    {"ss_base", 64, SRC_BASE, SEG_SS, "uint64", F_SYS},
    {"ds_base", 64, SRC_BASE, SEG_DS, "uint64", F_SYS},
    {"es_base", 64, SRC_BASE, SEG_ES, "uint64", F_SYS},
    {"cr0", 64, SRC_CR, 0, "uint64", F_SYS},
    {"cr2", 64, SRC_CR, 2, "uint64", F_SYS},
    {"cr3", 64, SRC_CR, 3, "uint64", F_SYS},
    {"cr4", 64, SRC_CR, 4, "uint64", F_SYS},
    {"efer", 64, SRC_EFER, 0, "uint64", F_SYS},
};
// clang-format on

/* gdb/features/i386/64bit-{core,sse,segments}.xml, then minivmm's. */
// clang-format off
static const struct gdb_reg regs64[] = {
    {"rax", 64, SRC_GPR, G_RAX, "int64", F_CORE},
    {"rbx", 64, SRC_GPR, G_RBX, "int64", F_CORE},
    {"rcx", 64, SRC_GPR, G_RCX, "int64", F_CORE},
    {"rdx", 64, SRC_GPR, G_RDX, "int64", F_CORE},
    {"rsi", 64, SRC_GPR, G_RSI, "int64", F_CORE},
    {"rdi", 64, SRC_GPR, G_RDI, "int64", F_CORE},
    {"rbp", 64, SRC_GPR, G_RBP, "data_ptr", F_CORE},
    {"rsp", 64, SRC_GPR, G_RSP, "data_ptr", F_CORE},
    {"r8", 64, SRC_GPR, G_R8, "int64", F_CORE},
    {"r9", 64, SRC_GPR, G_R8 + 1, "int64", F_CORE},
    {"r10", 64, SRC_GPR, G_R8 + 2, "int64", F_CORE},
    {"r11", 64, SRC_GPR, G_R8 + 3, "int64", F_CORE},
    {"r12", 64, SRC_GPR, G_R8 + 4, "int64", F_CORE},
    {"r13", 64, SRC_GPR, G_R8 + 5, "int64", F_CORE},
    {"r14", 64, SRC_GPR, G_R8 + 6, "int64", F_CORE},
    {"r15", 64, SRC_GPR, G_R8 + 7, "int64", F_CORE},
    {"rip", 64, SRC_RIP, 0, "code_ptr", F_CORE},
    {"eflags", 32, SRC_FLAGS, 0, "i386_eflags", F_CORE},
    {"cs", 32, SRC_SEL, SEG_CS, "int32", F_CORE},
    {"ss", 32, SRC_SEL, SEG_SS, "int32", F_CORE},
    {"ds", 32, SRC_SEL, SEG_DS, "int32", F_CORE},
    {"es", 32, SRC_SEL, SEG_ES, "int32", F_CORE},
    {"fs", 32, SRC_SEL, SEG_FS, "int32", F_CORE},
    {"gs", 32, SRC_SEL, SEG_GS, "int32", F_CORE},
    {"st0", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st1", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st2", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st3", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st4", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st5", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st6", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"st7", 80, SRC_FPU, 0, "i387_ext", F_CORE},
    {"fctrl", 32, SRC_FPU, 0, "int", F_CORE},
    {"fstat", 32, SRC_FPU, 0, "int", F_CORE},
    {"ftag", 32, SRC_FPU, 0, "int", F_CORE},
    {"fiseg", 32, SRC_FPU, 0, "int", F_CORE},
    {"fioff", 32, SRC_FPU, 0, "int", F_CORE},
    {"foseg", 32, SRC_FPU, 0, "int", F_CORE},
    {"fooff", 32, SRC_FPU, 0, "int", F_CORE},
    {"fop", 32, SRC_FPU, 0, "int", F_CORE},
    {"xmm0", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm1", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm2", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm3", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm4", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm5", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm6", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm7", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm8", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm9", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm10", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm11", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm12", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm13", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm14", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"xmm15", 128, SRC_FPU, 0, "vec128", F_SSE},
    {"mxcsr", 32, SRC_FPU, 0, "int", F_SSE},
    {"fs_base", 64, SRC_BASE, SEG_FS, "int", F_SEGS},
    {"gs_base", 64, SRC_BASE, SEG_GS, "int", F_SEGS},
    {"cs_base", 64, SRC_BASE, SEG_CS, "uint64", F_SYS},
    {"ss_base", 64, SRC_BASE, SEG_SS, "uint64", F_SYS},
    {"ds_base", 64, SRC_BASE, SEG_DS, "uint64", F_SYS},
    {"es_base", 64, SRC_BASE, SEG_ES, "uint64", F_SYS},
    {"cr0", 64, SRC_CR, 0, "uint64", F_SYS},
    {"cr2", 64, SRC_CR, 2, "uint64", F_SYS},
    {"cr3", 64, SRC_CR, 3, "uint64", F_SYS},
    {"cr4", 64, SRC_CR, 4, "uint64", F_SYS},
    {"efer", 64, SRC_EFER, 0, "uint64", F_SYS},
};
// clang-format on

_Static_assert(sizeof(struct kvm_regs) == 18 * sizeof(uint64_t), "kvm_regs: 16 GPRs, rip, rflags");

static const struct gdb_reg *gdb_regs(bool layout64, size_t *n)
{
    *n = layout64 ? sizeof(regs64) / sizeof(regs64[0]) : sizeof(regs32) / sizeof(regs32[0]);
    return layout64 ? regs64 : regs32;
}

int gdb_x86_code_bits(const struct kvm_sregs *s)
{
    if ((s->efer & X86_EFER_LMA) && s->cs.l)
        return 64;
    return (s->cr0 & X86_CR0_PE) && s->cs.db ? 32 : 16;
}

static const char *const eflags_fields =
    "<flags id=\"i386_eflags\" size=\"4\"><field name=\"CF\" start=\"0\" end=\"0\"/>"
    "<field name=\"\" start=\"1\" end=\"1\"/><field name=\"PF\" start=\"2\" end=\"2\"/>"
    "<field name=\"AF\" start=\"4\" end=\"4\"/><field name=\"ZF\" start=\"6\" end=\"6\"/>"
    "<field name=\"SF\" start=\"7\" end=\"7\"/><field name=\"TF\" start=\"8\" end=\"8\"/>"
    "<field name=\"IF\" start=\"9\" end=\"9\"/><field name=\"DF\" start=\"10\" end=\"10\"/>"
    "<field name=\"OF\" start=\"11\" end=\"11\"/><field name=\"NT\" start=\"14\" end=\"14\"/>"
    "<field name=\"RF\" start=\"16\" end=\"16\"/><field name=\"VM\" start=\"17\" end=\"17\"/>"
    "<field name=\"AC\" start=\"18\" end=\"18\"/><field name=\"VIF\" start=\"19\" end=\"19\"/>"
    "<field name=\"VIP\" start=\"20\" end=\"20\"/><field name=\"ID\" start=\"21\" end=\"21\"/></flags>";

/* The xmm registers' type: a union of vectors, as gdb's own 32bit-sse.xml has it. */
static const char *const sse_types =
    "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/><vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>"
    "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/><vector id=\"v8i16\" type=\"int16\" count=\"8\"/>"
    "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/><vector id=\"v2i64\" type=\"int64\" count=\"2\"/>"
    "<union id=\"vec128\"><field name=\"v4_float\" type=\"v4f\"/><field name=\"v2_double\" type=\"v2d\"/>"
    "<field name=\"v16_int8\" type=\"v16i8\"/><field name=\"v8_int16\" type=\"v8i16\"/>"
    "<field name=\"v4_int32\" type=\"v4i32\"/><field name=\"v2_int64\" type=\"v2i64\"/>"
    "<field name=\"uint128\" type=\"uint128\"/></union>";

size_t gdb_x86_target_xml(bool layout64, int bits, char *buf, size_t len)
{
    static const char *const feature[] = {"org.gnu.gdb.i386.core", "org.gnu.gdb.i386.sse", "org.gnu.gdb.i386.segments",
                                          "org.minivmm.x86.sys"};
    size_t n, used, nregs;
    const struct gdb_reg *r = gdb_regs(layout64, &nregs);
    int f = -1;

    used = (size_t)snprintf(buf, len,
                            "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
                            "<target version=\"1.0\"><architecture>%s</architecture><osabi>none</osabi>",
                            layout64     ? "i386:x86-64"
                            : bits == 16 ? "i8086"
                                         : "i386");
    for (size_t i = 0; i < nregs && used < len; i++) {
        int want = r[i].feature;

        if (want != f) {
            n = (size_t)snprintf(buf + used, len - used, "%s<feature name=\"%s\">%s", f >= 0 ? "</feature>" : "",
                                 feature[want],
                                 want == F_CORE  ? eflags_fields
                                 : want == F_SSE ? sse_types
                                                 : "");
            used += n;
            f = want;
        }
        if (used < len)
            used += (size_t)snprintf(buf + used, len - used, "<reg name=\"%s\" bitsize=\"%u\" type=\"%s\"%s/>",
                                     r[i].name, r[i].bits, r[i].type, r[i].src == SRC_FPU ? " group=\"float\"" : "");
    }
    if (used < len)
        used += (size_t)snprintf(buf + used, len - used, "</feature></target>");
    return used;
}

static struct kvm_segment *seg_of(struct kvm_sregs *s, int idx)
{
    struct kvm_segment *const segs[] = {&s->cs, &s->ss, &s->ds, &s->es, &s->fs, &s->gs};

    return segs[idx];
}

static void reg_get(const struct gdb_reg *r, struct kvm_regs *regs, struct kvm_sregs *s, uint8_t *out)
{
    uint64_t v = 0;

    switch (r->src) {
    case SRC_GPR:
        v = ((uint64_t *)regs)[r->idx];
        break;
    case SRC_RIP:
        v = regs->rip;
        break;
    case SRC_FLAGS:
        v = regs->rflags;
        break;
    case SRC_SEL:
        v = seg_of(s, r->idx)->selector;
        break;
    case SRC_BASE:
        v = seg_of(s, r->idx)->base;
        break;
    case SRC_CR:
        v = r->idx == 0 ? s->cr0 : r->idx == 2 ? s->cr2 : r->idx == 3 ? s->cr3 : s->cr4;
        break;
    case SRC_EFER:
        v = s->efer;
        break;
    default:
        break; /* the x87 state is not kept: zeros */
    }
    memset(out, 0, r->bits / 8);
    for (unsigned i = 0; i < r->bits / 8 && i < 8; i++)
        out[i] = (uint8_t)(v >> (8 * i));
}

static void reg_set(const struct gdb_reg *r, struct kvm_regs *regs, struct kvm_sregs *s, const uint8_t *in)
{
    uint64_t v = 0, keep = r->bits >= 64 ? 0 : ~0ull << r->bits;
    __u64 *dst = NULL;

    for (unsigned i = 0; i < r->bits / 8 && i < 8; i++)
        v |= (uint64_t)in[i] << (8 * i);
    switch (r->src) {
    case SRC_GPR:
        dst = &((__u64 *)regs)[r->idx];
        break;
    case SRC_RIP:
        dst = &regs->rip;
        break;
    case SRC_FLAGS:
        regs->rflags = (uint32_t)v | X86_RFLAGS_FIXED;
        return;
    case SRC_SEL:
        seg_of(s, r->idx)->selector = (uint16_t)v;
        if (!(s->cr0 & X86_CR0_PE)) /* real mode: the base follows the selector */
            seg_of(s, r->idx)->base = (uint16_t)v << 4;
        return;
    case SRC_BASE:
        dst = &seg_of(s, r->idx)->base;
        break;
    case SRC_CR:
        dst = r->idx == 0 ? &s->cr0 : r->idx == 2 ? &s->cr2 : r->idx == 3 ? &s->cr3 : &s->cr4;
        break;
    case SRC_EFER:
        dst = &s->efer;
        break;
    default:
        return;
    }
    *dst = (*dst & keep) | (v & ~keep);
}

size_t gdb_x86_nregs(bool layout64)
{
    size_t n;

    gdb_regs(layout64, &n);
    return n;
}

unsigned gdb_x86_reg_size(bool layout64, size_t n)
{
    size_t nregs;

    return gdb_regs(layout64, &nregs)[n].bits / 8;
}

void gdb_x86_reg_get(bool layout64, size_t n, struct kvm_regs *regs, struct kvm_sregs *s, uint8_t *out)
{
    size_t nregs;

    reg_get(&gdb_regs(layout64, &nregs)[n], regs, s, out);
}

void gdb_x86_reg_set(bool layout64, size_t n, struct kvm_regs *regs, struct kvm_sregs *s, const uint8_t *in)
{
    size_t nregs;

    reg_set(&gdb_regs(layout64, &nregs)[n], regs, s, in);
}
