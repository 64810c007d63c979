/* The soft backend's vCPU: a Unicorn x86-64 engine driven with KVM's exit model, full segment state, IDT delivery and in-kernel work. */
#include "soft_priv.h"

#include <errno.h>
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

struct soft_layout soft_layout;

/* QEMU's hidden-flag and descriptor bits (target/i386/cpu.h), named once here. */
#define HF_CPL_MASK 3u
#define HF_INHIBIT_IRQ_MASK (1u << 3)
#define HF_CS32_MASK (1u << 4)
#define HF_SS32_MASK (1u << 5)
#define HF_ADDSEG_MASK (1u << 6)
#define HF_PE_MASK (1u << 7)
#define HF_TF_MASK (1u << 8)
#define HF_MP_MASK (1u << 9)
#define HF_EM_MASK (1u << 10)
#define HF_TS_MASK (1u << 11)
#define HF_IOPL_MASK (3u << 12)
#define HF_LMA_MASK (1u << 14)
#define HF_CS64_MASK (1u << 15)
#define HF_VM_MASK (1u << 17)
#define HF_OSFXSR_MASK (1u << 22)

#define DESC_TYPE_SHIFT 8
#define DESC_S_MASK (1u << 12)
#define DESC_DPL_SHIFT 13
#define DESC_P_MASK (1u << 15)
#define DESC_AVL_MASK (1u << 20)
#define DESC_L_SHIFT 21
#define DESC_B_SHIFT 22
#define DESC_G_MASK (1u << 23)

#define CR0_PE 1ull
#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_OSFXSR (1ull << 9)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

#define RFLAGS_TF (1ull << 8)
#define RFLAGS_IF (1ull << 9)
#define RFLAGS_NT (1ull << 14)
#define RFLAGS_RF (1ull << 16)
#define RFLAGS_VM (1ull << 17)
#define RFLAGS_AC (1ull << 18)

enum { R_ES, R_CS, R_SS, R_DS, R_FS, R_GS, R_LDT, R_TR, R_GDT, R_IDT };

enum soft_stop {
    STOP_NONE,
    STOP_EXCEPTION, /* deliver v->exc_* through the IDT */
    STOP_RESTART,   /* re-enter (state changed by a hook) */
    STOP_EXIT,      /* run->exit_reason is set; return to the VMM */
    STOP_EINTR,     /* immediate_exit became set */
    STOP_IF,        /* IF became 1 while an interrupt or a window was waiting */
    STOP_SCAN,      /* new code hooks to place before the block runs */
};

static void soft_calibrate_mmio(void);
static void soft_mmio_flush(struct soft_vcpu *v);

#define KVM_ENOSYS_RET ((uint64_t)-1000)
#define KVM_EPERM_RET ((uint64_t)-1)

static const int soft_gpr_ids[16] = {
    UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RSI, UC_X86_REG_RDI,
    UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
    UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
};

static uint64_t soft_rd(struct soft_vcpu *v, int reg)
{
    uint64_t x = 0;
    uc_reg_read(v->uc, reg, &x);
    return x;
}

static void soft_wr(struct soft_vcpu *v, int reg, uint64_t x)
{
    uc_reg_write(v->uc, reg, &x);
}


/*
 * The state image sits at a 4-byte offset inside a uc_context; it is copied to
 * an aligned buffer (v->img) so its fields can be used in place.
 */
static uint8_t *img(struct soft_vcpu *v)
{
    return v->img;
}

static void img_load(struct soft_vcpu *v)
{
    uc_context_save(v->uc, v->ctx);
    memcpy(v->img, (uint8_t *)v->ctx + soft_layout.data, v->img_size);
}

static void img_commit(struct soft_vcpu *v)
{
    memcpy((uint8_t *)v->ctx + soft_layout.data, v->img, v->img_size);
    uc_context_restore(v->uc, v->ctx);
}

static void img_store(struct soft_vcpu *v)
{
    img_commit(v);
    uc_ctl_flush_tlb(v->uc);
}

static struct soft_seg *img_seg(struct soft_vcpu *v, int i)
{
    return (struct soft_seg *)(img(v) + soft_layout.segs + (size_t)i * sizeof(struct soft_seg));
}

static uint64_t img_u64(struct soft_vcpu *v, size_t off)
{
    uint64_t x;
    memcpy(&x, img(v) + off, 8);
    return x;
}

static void img_set_u64(struct soft_vcpu *v, size_t off, uint64_t x)
{
    memcpy(img(v) + off, &x, 8);
}

static uint32_t img_u32(struct soft_vcpu *v, size_t off)
{
    uint32_t x;
    memcpy(&x, img(v) + off, 4);
    return x;
}

static void img_set_u32(struct soft_vcpu *v, size_t off, uint32_t x)
{
    memcpy(img(v) + off, &x, 4);
}

#define IMG_CR(v, n) img_u64(v, soft_layout.cr + 8 * (n))

/* QEMU's x86_update_hflags: the translation flags that follow from segments, CRs, EFER and RFLAGS. */
static void img_update_hflags(struct soft_vcpu *v, uint64_t rflags)
{
    uint32_t keep = ~(HF_CPL_MASK | HF_PE_MASK | HF_MP_MASK | HF_EM_MASK | HF_TS_MASK | HF_TF_MASK | HF_VM_MASK |
                      HF_IOPL_MASK | HF_OSFXSR_MASK | HF_LMA_MASK | HF_CS32_MASK | HF_SS32_MASK | HF_CS64_MASK |
                      HF_ADDSEG_MASK);
    uint32_t hf = img_u32(v, soft_layout.hflags) & keep;
    uint64_t cr0 = IMG_CR(v, 0), cr4 = IMG_CR(v, 4), efer = img_u64(v, soft_layout.efer);
    struct soft_seg *cs = img_seg(v, R_CS), *ss = img_seg(v, R_SS);
    hf |= (ss->flags >> DESC_DPL_SHIFT) & HF_CPL_MASK;
    hf |= (uint32_t)(cr0 & CR0_PE) << 7;
    hf |= (uint32_t)(cr0 << 8) & (HF_MP_MASK | HF_EM_MASK | HF_TS_MASK);
    hf |= (uint32_t)rflags & (HF_TF_MASK | HF_VM_MASK | HF_IOPL_MASK);
    if (cr4 & CR4_OSFXSR)
        hf |= HF_OSFXSR_MASK;
    if (efer & EFER_LMA)
        hf |= HF_LMA_MASK;
    if ((hf & HF_LMA_MASK) && (cs->flags & (1u << DESC_L_SHIFT))) {
        hf |= HF_CS32_MASK | HF_SS32_MASK | HF_CS64_MASK;
    } else {
        hf |= (cs->flags >> (DESC_B_SHIFT - 4)) & HF_CS32_MASK;
        hf |= (ss->flags >> (DESC_B_SHIFT - 5)) & HF_SS32_MASK;
        if (!(cr0 & CR0_PE) || (rflags & RFLAGS_VM) || !(hf & HF_CS32_MASK))
            hf |= HF_ADDSEG_MASK;
        else if (img_seg(v, R_DS)->base | img_seg(v, R_ES)->base | ss->base)
            hf |= HF_ADDSEG_MASK;
    }
    img_set_u32(v, soft_layout.hflags, hf);
}

static void seg_to_kvm(const struct soft_seg *s, struct kvm_segment *k)
{
    *k = (struct kvm_segment){
        .base = s->base,
        .limit = s->limit,
        .selector = (uint16_t)s->selector,
        .type = (s->flags >> DESC_TYPE_SHIFT) & 15,
        .present = !!(s->flags & DESC_P_MASK),
        .dpl = (s->flags >> DESC_DPL_SHIFT) & 3,
        .db = (s->flags >> DESC_B_SHIFT) & 1,
        .s = !!(s->flags & DESC_S_MASK),
        .l = (s->flags >> DESC_L_SHIFT) & 1,
        .g = !!(s->flags & DESC_G_MASK),
        .avl = !!(s->flags & DESC_AVL_MASK),
    };
    k->unusable = !k->present;
}

static void seg_from_kvm(struct soft_seg *s, const struct kvm_segment *k)
{
    s->selector = k->selector;
    s->base = k->base;
    s->limit = k->limit;
    s->flags = k->unusable ? 0
                           : ((uint32_t)(k->type & 15) << DESC_TYPE_SHIFT) | (k->present ? DESC_P_MASK : 0) |
                                 ((uint32_t)(k->dpl & 3) << DESC_DPL_SHIFT) | ((uint32_t)(k->db & 1) << DESC_B_SHIFT) |
                                 (k->s ? DESC_S_MASK : 0) | ((uint32_t)(k->l & 1) << DESC_L_SHIFT) |
                                 (k->g ? DESC_G_MASK : 0) | (k->avl ? DESC_AVL_MASK : 0);
}


static pthread_once_t soft_probe_once = PTHREAD_ONCE_INIT;
static int soft_probe_result;
static int soft_probe_intno = -1;

static void soft_probe_intr(uc_engine *uc, uint32_t intno, void *ud)
{
    (void)ud;
    soft_probe_intno = (int)intno;
    uc_emu_stop(uc);
}

static long soft_find(const uint8_t *p, size_t n, const void *pat, size_t len)
{
    for (size_t i = 0; i + len <= n; i += 4)
        if (memcmp(p + i, pat, len) == 0)
            return (long)i;
    return -1;
}

/* Engines kept for the life of the process (volatile: the stores must stay, nothing reads them). */
static uc_engine *volatile soft_probe_engine, *volatile soft_cal_engine;

static void soft_probe(void)
{
    uc_engine *uc = NULL;
    uc_context *ctx = NULL;
    int r = -ENOSYS;
    static uint8_t ram[0x4000] __attribute__((aligned(4096)));
    if (uc_open(UC_ARCH_X86, UC_MODE_64, &uc) != UC_ERR_OK || uc_context_alloc(uc, &ctx) != UC_ERR_OK)
        goto out;
    size_t n = uc_context_size(uc);
    uint64_t rax = 0x1122334455667788ull, dr0 = 0xdd00dd00dd00dd01ull, cr3 = 0x3000;
    uc_x86_mmr tr = {.selector = 0x1238, .base = 0x5566778899aabbccull, .limit = 0x12345, .flags = 0x8b00};
    uc_x86_mmr gdt = {.base = 0xa1a2a3a4a5a6a7a8ull, .limit = 0x1357};
    uc_x86_msr hsave = {.rid = 0xc0010117, .value = 0x77aa000};
    uc_reg_write(uc, UC_X86_REG_RAX, &rax);
    uc_reg_write(uc, UC_X86_REG_TR, &tr);
    uc_reg_write(uc, UC_X86_REG_GDTR, &gdt);
    uc_reg_write(uc, UC_X86_REG_CR3, &cr3);
    uc_reg_write(uc, UC_X86_REG_DR0, &dr0);
    uc_reg_write(uc, UC_X86_REG_MSR, &hsave);
    uc_context_save(uc, ctx);
    const uint8_t *c = (const uint8_t *)ctx;
    long d = soft_find(c, 128, &rax, 8);
    if (d < 0)
        goto out;
    soft_layout.data = (size_t)d;
    const uint8_t *e = c + d;
    size_t en = n - (size_t)d;
    struct soft_seg trs = {.selector = 0x1238, .base = tr.base, .limit = 0x12345, .flags = 0x8b00};
    long t = soft_find(e, en, &trs, sizeof trs);
    long dr = soft_find(e, en, &dr0, 8);
    uint64_t hs = hsave.value;
    long h = soft_find(e, en, &hs, 8);
    if (t < 7 * 24 + 8 || dr < 16 || h < 0)
        goto out;
    soft_layout.segs = (size_t)t - 7 * 24;
    soft_layout.hflags = soft_layout.segs - 8;
    soft_layout.cr = (size_t)t + 3 * 24;
    soft_layout.efer = soft_layout.cr + 136;
    soft_layout.error_code = (size_t)dr - 16;
    soft_layout.old_exception = (size_t)dr + 96;
    soft_layout.tsc_offset = (size_t)dr + 112; /* old_exception, vm_vmcb, then tsc_offset (QEMU 5) */
    soft_layout.eflags = 136;
    uint64_t u;
    uint32_t w;
    memcpy(&u, e + t + 24 + 8, 8);
    if (u != gdt.base)
        goto out;
    memcpy(&u, e + soft_layout.cr + 24, 8);
    if (u != cr3)
        goto out;
    memcpy(&w, e + soft_layout.hflags, 4);
    if ((w & (HF_LMA_MASK | HF_CS64_MASK)) != (HF_LMA_MASK | HF_CS64_MASK))
        goto out;
    memcpy(&u, e + soft_layout.efer, 8);
    if ((u & (EFER_LMA | EFER_LME)) != (EFER_LMA | EFER_LME) || u > 0xffff)
        goto out;
    if (soft_layout.tsc_offset + 8 > en || soft_layout.old_exception + 4 > en)
        goto out;
    /* Run: mov ax,0x2b; mov ds,ax (GDT limit 0x1357 at a bogus base: #GP(0x28) is expected only if the
       descriptor read faults, so use a tiny limit instead); then rdtsc with a huge offset. */
    gdt = (uc_x86_mmr){.base = 0, .limit = 7};
    uc_reg_write(uc, UC_X86_REG_GDTR, &gdt);
    if (uc_mem_map_ptr(uc, 0, sizeof ram, UC_PROT_ALL, ram) != UC_ERR_OK)
        goto out;
    static const uint8_t code[] = {0x66, 0xb8, 0x2b, 0x00, 0x8e, 0xd8, 0xf4, 0x0f, 0x31, 0xf4};
    memcpy(ram + 0x1000, code, sizeof code);
    uc_hook hh;
    if (uc_hook_add(uc, &hh, UC_HOOK_INTR, (void *)soft_probe_intr, NULL, 1, 0) != UC_ERR_OK)
        goto out;
    uc_ctl_exits_enable(uc);
    uc_emu_start(uc, 0x1000, 0, 0, 0);
    uc_context_save(uc, ctx);
    int32_t ec, old;
    memcpy(&ec, e + soft_layout.error_code, 4);
    memcpy(&old, e + soft_layout.old_exception, 4);
    if (soft_probe_intno != 13 || ec != 0x28 || old != 13)
        goto out;
    uint64_t big = 1ull << 56;
    old = -1;
    memcpy((uint8_t *)ctx + d + soft_layout.old_exception, &old, 4);
    memcpy((uint8_t *)ctx + d + soft_layout.tsc_offset, &big, 8);
    uc_context_restore(uc, ctx);
    uc_emu_start(uc, 0x1007, 0, 0, 0);
    uint64_t lo, hi;
    uc_reg_read(uc, UC_X86_REG_RAX, &lo);
    uc_reg_read(uc, UC_X86_REG_RDX, &hi);
    if ((((hi << 32) | (uint32_t)lo) & big) == 0)
        goto out;
    r = 0;
    soft_calibrate_mmio();
out:
    if (ctx)
        uc_context_free(ctx);
    /* Not closed: Unicorn 2.1 leaks 32 bytes per closed engine with hooks; a kept one stays reachable. */
    soft_probe_engine = uc;
    if (r)
        soft_set_error("soft backend: this Unicorn's CPU state layout failed the start-up self-check");
    soft_probe_result = r;
}

int soft_layout_probe(void)
{
    pthread_once(&soft_probe_once, soft_probe);
    if (soft_probe_result)
        soft_set_error("soft backend: this Unicorn's CPU state layout failed the start-up self-check");
    return soft_probe_result;
}


uint64_t soft_host_tsc(void)
{
    return __rdtsc();
}

static uint64_t soft_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

uint64_t soft_kvmclock_ns(struct soft_vm *vm)
{
    return soft_mono_ns() + (uint64_t)vm->clock_offset_ns;
}

static pthread_once_t soft_tsc_once = PTHREAD_ONCE_INIT;
static uint64_t soft_tsc_khz_val;

static void soft_tsc_calibrate(void)
{
    uint64_t n0 = soft_mono_ns(), t0 = __rdtsc();
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, NULL);
    uint64_t n1 = soft_mono_ns(), t1 = __rdtsc();
    soft_tsc_khz_val = (t1 - t0) * 1000000 / (n1 - n0);
}

uint64_t soft_tsc_khz(void)
{
    pthread_once(&soft_tsc_once, soft_tsc_calibrate);
    return soft_tsc_khz_val;
}


struct soft_walk {
    uint64_t gpa;
    bool fault;     /* #PF: error code in pferr */
    bool bad;       /* a page-table entry outside guest RAM */
    uint32_t pferr;
};

/* Translate a linear address as the CPU would; cr0/cr3/cr4/efer from the loaded image. */
static struct soft_walk soft_translate(struct soft_vcpu *v, uint64_t lin, bool write, bool user)
{
    struct soft_walk w = {0};
    uint64_t cr0 = IMG_CR(v, 0), cr3 = IMG_CR(v, 3), cr4 = IMG_CR(v, 4), efer = img_u64(v, soft_layout.efer);
    if (!(cr0 & CR0_PG)) {
        w.gpa = (efer & EFER_LMA) ? lin : (uint32_t)lin;
        return w;
    }
    bool rw = true, us = true;
    uint64_t table, e = 0;
    int level;
    unsigned esz;
    if (efer & EFER_LMA) {
        table = cr3 & 0x000ffffffffff000ull;
        level = 4;
        esz = 8;
    } else if (cr4 & CR4_PAE) {
        uint8_t *p = soft_gpa_to_hva(v->vm, (cr3 & 0xffffffe0u) + ((lin >> 30) & 3) * 8, 8);
        if (!p) {
            w.bad = true;
            return w;
        }
        memcpy(&e, p, 8);
        if (!(e & 1))
            goto fault;
        table = e & 0x000ffffffffff000ull;
        level = 2;
        esz = 8;
    } else {
        table = cr3 & 0xfffff000u;
        level = 2;
        esz = 4;
        lin = (uint32_t)lin;
    }
    for (; level >= 1; level--) {
        unsigned shift = esz == 8 ? 12 + 9 * (unsigned)(level - 1) : 12 + 10 * (unsigned)(level - 1);
        uint64_t idx = (lin >> shift) & (esz == 8 ? 511 : 1023);
        uint8_t *p = soft_gpa_to_hva(v->vm, table + idx * esz, esz);
        if (!p) {
            w.bad = true;
            return w;
        }
        e = 0;
        memcpy(&e, p, esz);
        if (!(e & 1))
            goto fault;
        rw = rw && (e & 2);
        us = us && (e & 4);
        bool large = (e & 0x80) && level > 1 && (esz == 8 ? level <= 3 : (cr4 & CR4_PSE));
        if (large) {
            uint64_t mask = (1ull << shift) - 1;
            uint64_t base = esz == 8 ? (e & 0x000fffffffffffffull & ~mask) : (e & 0xffc00000u);
            w.gpa = base | (lin & mask);
            goto check;
        }
        table = esz == 8 ? (e & 0x000ffffffffff000ull) : (e & 0xfffff000u);
    }
    w.gpa = table | (lin & 0xfff);
check:
    if ((write && !rw && (user || (cr0 & CR0_WP))) || (user && !us)) {
        w.fault = true;
        w.pferr = 1u | (write ? 2u : 0) | (user ? 4u : 0);
    }
    return w;
fault:
    w.fault = true;
    w.pferr = (write ? 2u : 0) | (user ? 4u : 0);
    return w;
}

/* Read or write len bytes at a linear address. 0; 1 with pf_addr and pferr set on a page fault; -1 outside RAM. */
static int soft_lin_rw(struct soft_vcpu *v, uint64_t lin, void *buf, size_t len, bool write, bool user,
                       uint64_t *pf_addr, uint32_t *pferr)
{
    uint8_t *b = buf;
    while (len) {
        size_t chunk = SOFT_PAGE - (lin & (SOFT_PAGE - 1));
        if (chunk > len)
            chunk = len;
        struct soft_walk w = soft_translate(v, lin, write, user);
        if (w.bad)
            return -1;
        if (w.fault) {
            *pf_addr = lin;
            *pferr = w.pferr;
            return 1;
        }
        uint8_t *h = soft_gpa_to_hva(v->vm, w.gpa, chunk);
        if (!h)
            return -1;
        if (write)
            memcpy(h, b, chunk);
        else
            memcpy(b, h, chunk);
        b += chunk;
        lin += chunk;
        len -= chunk;
    }
    return 0;
}

/* Up to 15 bytes at linear address lin (fewer where memory ends). Needs the image loaded. */
static size_t soft_fetch_lin(struct soft_vcpu *v, uint64_t lin, uint8_t *out)
{
    uint64_t pa;
    uint32_t pe;
    if (soft_lin_rw(v, lin, out, 15, false, false, &pa, &pe) == 0)
        return 15; /* one or two page walks, not one per byte */
    size_t n = 0;
    for (; n < 15; n++)
        if (soft_lin_rw(v, lin + n, out + n, 1, false, false, &pa, &pe) != 0)
            break;
    return n;
}

/* Up to 15 instruction bytes at CS:rip (fewer where memory ends). Needs the image loaded. */
static size_t soft_fetch(struct soft_vcpu *v, uint64_t rip, uint8_t *out)
{
    return soft_fetch_lin(v, img_seg(v, R_CS)->base + rip, out);
}


static void soft_fill_exit_common(struct soft_vcpu *v)
{
    struct kvm_run *run = v->run;
    uint64_t rflags = soft_rd(v, UC_X86_REG_RFLAGS);
    run->if_flag = !!(rflags & RFLAGS_IF);
    run->cr8 = v->cr8;
    run->apic_base = v->apic_base;
    run->flags = 0;
    /* KVM's userspace-irqchip rule: IF set and nothing queued. */
    run->ready_for_interrupt_injection = run->if_flag && v->irq_pending < 0;
}

static void soft_internal_error(struct soft_vcpu *v, const char *why)
{
    img_load(v);
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
    uint8_t b[15];
    size_t n = soft_fetch(v, rip, b);
    char hex[15 * 3 + 1] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 3 * i, 4, "%02x ", b[i]);
    soft_set_error("soft backend: %s at rip 0x%llx (cs base 0x%llx), bytes: %s", why, (unsigned long long)rip,
                   (unsigned long long)img_seg(v, R_CS)->base, hex);
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
    memset(&run->emulation_failure, 0, sizeof run->emulation_failure);
    run->emulation_failure.suberror = KVM_INTERNAL_ERROR_EMULATION;
    run->emulation_failure.ndata = 3;
    run->emulation_failure.flags = KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
    run->emulation_failure.insn_size = (uint8_t)n;
    memcpy(run->emulation_failure.insn_bytes, b, n);
}

/* From inside a hook: hand the exit to the VMM and wait for the next KVM_RUN. False when being closed. */
static bool soft_exit_to_vmm(struct soft_vcpu *v)
{
    soft_fill_exit_common(v);
    v->co_ret = 0;
    v->in_exit = true;
    soft_coro_yield(&v->co);
    v->in_exit = false;
    v->io_exit = false;
    if (v->mapped_gen != v->vm->slots_gen)
        v->remap = true; /* the engine maps the new slots before the next block; until then the MMIO hooks use them */
    if (v->cancel) {
        uc_emu_stop(v->uc);
        return false;
    }
    return true;
}


/* Length of the x86 instruction at b (n bytes available), 0 if unknown. code: 2, 4 or 8 (16/32/64-bit code). */
static unsigned soft_insn_len(const uint8_t *b, size_t n, unsigned code, int *is_io)
{
    size_t i = 0;
    bool opsz = false, adsz = false, rexw = false;
    *is_io = 0;
    for (; i < n && i < 14; i++) {
        uint8_t c = b[i];
        if (c == 0x66)
            opsz = true;
        else if (c == 0x67)
            adsz = true;
        else if (c == 0xf0 || c == 0xf2 || c == 0xf3 || c == 0x2e || c == 0x36 || c == 0x3e || c == 0x26 ||
                 c == 0x64 || c == 0x65)
            continue;
        else
            break;
    }
    if (code == 8 && i < n && (b[i] & 0xf0) == 0x40) {
        rexw = (b[i] & 8) != 0;
        i++;
    }
    if (i >= n)
        return 0;
    unsigned osize = code == 2 ? (opsz ? 4 : 2) : (opsz ? 2 : 4); /* immediate size of "z" operands */
    unsigned asize = code == 8 ? (adsz ? 4 : 8) : code == 4 ? (adsz ? 2 : 4) : (adsz ? 4 : 2);
    uint8_t op = b[i++];
    bool modrm = false;
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
        } else if ((o2 >= 0x30 && o2 <= 0x37) || o2 == 0x05 || o2 == 0x06 || o2 == 0x07 || o2 == 0x08 ||
                   o2 == 0x09 || o2 == 0x0b || o2 == 0x0e || o2 == 0x77 || o2 == 0xa0 || o2 == 0xa1 || o2 == 0xa2 ||
                   o2 == 0xa8 || o2 == 0xa9 || o2 == 0xaa || (o2 >= 0xc8 && o2 <= 0xcf)) {
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
        case 0x04: case 0x0c: case 0x14: case 0x1c: case 0x24: case 0x2c: case 0x34: case 0x3c:
        case 0x6a: case 0xa8: case 0xcd: case 0xd4: case 0xd5: case 0xeb:
        case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
        case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
        case 0xe0: case 0xe1: case 0xe2: case 0xe3:
        case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
            imm = 1;
            break;
        case 0xe4: case 0xe5: case 0xe6: case 0xe7:
            imm = 1;
            *is_io = 1;
            break;
        case 0xec: case 0xed: case 0xee: case 0xef:
            *is_io = 1;
            break;
        case 0x6c: case 0x6d: case 0x6e: case 0x6f:
            *is_io = 2; /* string I/O */
            break;
        case 0x05: case 0x0d: case 0x15: case 0x1d: case 0x25: case 0x2d: case 0x35: case 0x3d:
        case 0x68: case 0xa9: case 0xe8: case 0xe9:
            imm = (code == 8 && (op == 0xe8 || op == 0xe9)) ? 4 : osize;
            break;
        case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
            imm = rexw ? 8 : osize;
            break;
        case 0xa0: case 0xa1: case 0xa2: case 0xa3:
            imm = asize;
            break;
        case 0xc2: case 0xca:
            imm = 2;
            break;
        case 0xc8:
            imm = 3;
            break;
        case 0x9a: case 0xea:
            imm = osize + 2;
            break;
        case 0x69: case 0x81: case 0xc7:
            modrm = true;
            imm = osize;
            break;
        case 0x6b: case 0x80: case 0x82: case 0x83: case 0xc0: case 0xc1: case 0xc6:
            modrm = true;
            imm = 1;
            break;
        case 0xf6: case 0xf7:
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

/*
 * The engine reports the start of the running block, not the I/O instruction,
 * in its I/O hooks. The block is straight-line code, so the k-th I/O callback
 * since the block began belongs to the k-th I/O instruction in it: walk there.
 * Sets v->io_rip/io_len; false if the walk fails.
 */
static bool soft_locate_io(struct soft_vcpu *v)
{
    uint32_t hf = img_u32(v, soft_layout.hflags);
    unsigned code = (hf & HF_CS64_MASK) ? 8 : (hf & HF_CS32_MASK) ? 4 : 2;
    uint64_t base = img_seg(v, R_CS)->base, rip = v->blk_addr, end = v->blk_addr + v->blk_size;
    unsigned seen = 0;
    while (rip < end) {
        uint8_t b[16];
        size_t n = soft_fetch_lin(v, base + rip, b);
        int io;
        unsigned len = soft_insn_len(b, n, code, &io);
        if (len == 0)
            return false;
        if (io && ++seen == v->io_in_block) {
            v->io_rip = rip;
            v->io_len = len;
            v->io_string = io == 2;
            memcpy(v->io_bytes, b, sizeof v->io_bytes);
            return true;
        }
        rip += len;
    }
    return false;
}


struct soft_pio_insn {
    bool string, rep;
    unsigned addr_size; /* 2, 4 or 8 */
};

static struct soft_pio_insn soft_decode_pio_slow(struct soft_vcpu *v);

/*
 * Decode the IN instruction of the current exit. Decoding needs the state
 * image and a walk of the block (several hundred ns), so the result is kept
 * per site: same block, same index in it, same CS/CR0/CR3 and slots, and the
 * same bytes still in guest RAM at the same place.
 */
static struct soft_pio_insn soft_decode_pio(struct soft_vcpu *v)
{
    struct soft_io_site *c = &v->io_sites[(v->blk_addr ^ v->io_in_block) & 15];
    uint64_t cs = soft_rd(v, UC_X86_REG_CS), cr0 = soft_rd(v, UC_X86_REG_CR0), cr3 = soft_rd(v, UC_X86_REG_CR3);
    if (c->hva && c->blk_addr == v->blk_addr && c->blk_size == v->blk_size && c->in_block == v->io_in_block &&
        c->cs == cs && c->cr0 == cr0 && c->cr3 == cr3 && c->gen == v->vm->slots_gen &&
        memcmp(c->hva, c->bytes, c->len) == 0) {
        v->io_rip = c->rip;
        v->io_len = c->len;
        v->io_string = c->string;
        return (struct soft_pio_insn){.string = c->string, .rep = c->rep, .addr_size = c->addr_size};
    }
    struct soft_pio_insn d = soft_decode_pio_slow(v);
    c->hva = NULL;
    if (!soft_locate_io(v))
        return d;
    uint64_t lin = img_seg(v, R_CS)->base + v->io_rip;
    struct soft_walk w = soft_translate(v, lin, false, false);
    uint8_t *h = (w.fault || w.bad || (lin & (SOFT_PAGE - 1)) + v->io_len > SOFT_PAGE)
                     ? NULL
                     : soft_gpa_to_hva(v->vm, w.gpa, v->io_len);
    if (!h)
        return d;
    *c = (struct soft_io_site){.blk_addr = v->blk_addr, .cs = cs, .cr0 = cr0, .cr3 = cr3, .rip = v->io_rip,
                               .blk_size = v->blk_size, .in_block = v->io_in_block, .gen = v->vm->slots_gen,
                               .len = v->io_len, .hva = h, .string = d.string, .rep = d.rep,
                               .addr_size = d.addr_size};
    memcpy(c->bytes, h, v->io_len);
    return d;
}

static struct soft_pio_insn soft_decode_pio_slow(struct soft_vcpu *v)
{
    struct soft_pio_insn d = {0};
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
    uint32_t hf;
    img_load(v);
    hf = img_u32(v, soft_layout.hflags);
    bool a32 = (hf & HF_CS32_MASK) != 0, a64 = (hf & HF_CS64_MASK) != 0;
    uint8_t b[15];
    size_t n, i = 0;
    if (soft_locate_io(v)) {
        memcpy(b, v->io_bytes, sizeof b);
        n = 15;
    } else {
        n = soft_fetch(v, rip, b);
    }
    bool asz = false;
    for (; i < n; i++) {
        uint8_t c = b[i];
        if (c == 0xf3 || c == 0xf2)
            d.rep = true;
        else if (c == 0x67)
            asz = true;
        else if (!(c == 0x66 || c == 0x26 || c == 0x2e || c == 0x36 || c == 0x3e || c == 0x64 || c == 0x65 ||
                   (a64 && (c & 0xf0) == 0x40)))
            break;
    }
    bool io = i < n && ((b[i] >= 0x6c && b[i] <= 0x6f) || (b[i] >= 0xe4 && b[i] <= 0xe7) || b[i] >= 0xec);
    if (io) {
        d.string = b[i] <= 0x6f;
    } else if (v->blk_size > 0 && v->blk_size <= 15 + 4096) {
        /*
         * The engine reports the block's start, not the instruction, for the first
         * element of a string instruction; a string instruction ends its block, so
         * read it backwards from the block's end.
         */
        uint8_t t[16] = {0};
        uint64_t pa;
        uint32_t pe;
        uint64_t end = img_seg(v, R_CS)->base + v->blk_addr + v->blk_size;
        unsigned k = v->blk_size < 16 ? v->blk_size : 16;
        d.rep = false;
        asz = false;
        if (soft_lin_rw(v, end - k, t, k, false, false, &pa, &pe) == 0 && (t[k - 1] == 0x6c || t[k - 1] == 0x6d)) {
            d.string = true;
            for (int j = (int)k - 2; j >= 0; j--) {
                uint8_t c = t[j];
                if (c == 0xf3 || c == 0xf2)
                    d.rep = true;
                else if (c == 0x67)
                    asz = true;
                else if (!(c == 0x66 || c == 0x26 || c == 0x2e || c == 0x36 || c == 0x3e || c == 0x64 || c == 0x65 ||
                           (a64 && (c & 0xf0) == 0x40)))
                    break;
            }
        }
    }
    d.addr_size = a64 ? (asz ? 4 : 8) : ((a32 != asz) ? 4 : 2);
    return d;
}

static uint64_t soft_mask(unsigned size)
{
    return size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/*
 * Start an I/O exit. For rep ins KVM's emulator batches: one exit carries
 * min(RCX, elements left in the guest page, one page of data) elements, and the
 * engine asks for them one per callback, so the batch is consumed across
 * callbacks. rep outs is not batched by KVM (one exit per element, measured on
 * this AMD host), so OUT never is here either.
 */
static void soft_pio_begin(struct soft_vcpu *v, uint32_t port, int size, uint8_t dir)
{
    struct kvm_run *run = v->run;
    struct soft_pio_insn d = soft_decode_pio(v);
    uint32_t count = 1;
    if (d.string && dir == KVM_EXIT_IO_IN) {
        uint64_t cnt = d.rep ? soft_rd(v, UC_X86_REG_RCX) & soft_mask(d.addr_size) : 1;
        uint64_t ptr = soft_rd(v, dir == KVM_EXIT_IO_OUT ? UC_X86_REG_RSI : UC_X86_REG_RDI) & soft_mask(d.addr_size);
        bool df = (soft_rd(v, UC_X86_REG_RFLAGS) >> 10) & 1;
        uint64_t in_page = df ? (ptr & 0xfff) + (uint64_t)size : SOFT_PAGE - (ptr & 0xfff);
        uint64_t n = in_page / (uint64_t)size;
        if (n == 0)
            n = 1;
        if (n > SOFT_PAGE / (uint64_t)size)
            n = SOFT_PAGE / (uint64_t)size;
        if (cnt < n)
            n = cnt;
        count = n ? (uint32_t)n : 1;
    }
    run->exit_reason = KVM_EXIT_IO;
    run->io.direction = dir;
    run->io.size = (uint8_t)size;
    run->io.port = (uint16_t)port;
    run->io.count = count;
    run->io.data_offset = SOFT_PIO_OFFSET;
    v->pio_left = count;
    v->pio_index = 0;
}

static void soft_hook_out(uc_engine *uc, uint32_t port, int size, uint32_t value, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)uc;
    if (v->cancel)
        return;
    soft_mmio_flush(v);
    v->io_in_block++;
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_IO;
    run->io.direction = KVM_EXIT_IO_OUT;
    run->io.size = (uint8_t)size;
    run->io.port = (uint16_t)port;
    run->io.count = 1;
    run->io.data_offset = SOFT_PIO_OFFSET;
    memcpy((uint8_t *)run + SOFT_PIO_OFFSET, &value, (size_t)size);
    v->io_exit = true;
    soft_exit_to_vmm(v);
}

static uint32_t soft_hook_in(uc_engine *uc, uint32_t port, int size, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)uc;
    if (v->cancel)
        return 0;
    soft_mmio_flush(v);
    v->io_in_block++;
    if (v->pio_left == 0 || v->run->exit_reason != KVM_EXIT_IO || v->run->io.direction != KVM_EXIT_IO_IN ||
        v->run->io.port != port || v->run->io.size != size) {
        soft_pio_begin(v, port, size, KVM_EXIT_IO_IN);
        memset((uint8_t *)v->run + SOFT_PIO_OFFSET, 0, (size_t)v->run->io.count * (size_t)size);
        v->io_exit = true;
        if (!soft_exit_to_vmm(v))
            return 0;
    }
    uint32_t value = 0;
    memcpy(&value, (uint8_t *)v->run + SOFT_PIO_OFFSET + (size_t)v->pio_index * (size_t)size, (size_t)size);
    v->pio_index++;
    v->pio_left--;
    return value;
}


/* One MMIO gap [base, end): the callbacks reach the vCPU through the engine, so a pooled engine keeps its gaps. */
struct soft_mmio_region {
    struct soft_engine *e;
    uint64_t base, end;
};

/*
 * 8-byte MMIO accesses reach the callbacks as two 4-byte halves; KVM reports
 * one 8-byte access. Reads: the host call chain of the first half passes
 * through the engine's 8-byte load helper, found once by calibration (below).
 * Writes: a 4-byte write waits; if the other half follows from the same call
 * chain it becomes one 8-byte exit, otherwise it is sent alone before anything
 * else the guest does reaches the VMM (same exit order as KVM).
 */
#define SOFT_BT_DEPTH 10
static int soft_ldq_frame = -1;
static void *soft_ldq_addr;

static void soft_mmio_exit(struct soft_vcpu *v, uint64_t gpa, unsigned len, bool write, uint64_t value)
{
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_MMIO;
    run->mmio.phys_addr = gpa;
    run->mmio.len = len;
    run->mmio.is_write = write;
    memset(run->mmio.data, 0, sizeof run->mmio.data);
    if (write)
        memcpy(run->mmio.data, &value, len > 8 ? 8 : len);
    soft_exit_to_vmm(v);
}

/* Send a write held back for merging. Call before any other exit and at block boundaries. */
static void soft_mmio_flush(struct soft_vcpu *v)
{
    if (!v->wpend)
        return;
    v->wpend = false;
    soft_mmio_exit(v, v->wpend_gpa, 4, true, v->wpend_val);
}

static uint64_t soft_hook_mmio_read(uc_engine *uc, uint64_t off, unsigned size, void *ud)
{
    struct soft_mmio_region *m = ud;
    struct soft_vcpu *v = m->e->v;
    (void)uc;
    if (v->cancel || v->limit_fault)
        return 0;
    uint64_t gpa = m->base + off;
    if (v->rhigh_valid && gpa == v->rhigh_gpa && size == 4) {
        v->rhigh_valid = false;
        return v->rhigh;
    }
    v->rhigh_valid = false;
    uint8_t *hva = v->remap ? soft_gpa_to_hva(v->vm, gpa, size) : NULL;
    if (hva) {
        /* A slot added during this exit: the access completes in the new RAM, as on KVM. */
        uint64_t x = 0;
        memcpy(&x, hva, size > 8 ? 8 : size);
        return x;
    }
    soft_mmio_flush(v);
    unsigned len = size;
    if (size == 4 && soft_ldq_frame >= 0) {
        void *bt[SOFT_BT_DEPTH];
        int n = backtrace(bt, soft_ldq_frame + 1);
        if (n > soft_ldq_frame && bt[soft_ldq_frame] == soft_ldq_addr)
            len = 8;
    }
    soft_mmio_exit(v, gpa, len, false, 0);
    if (v->cancel)
        return 0;
    uint64_t x = 0;
    memcpy(&x, v->run->mmio.data, 8);
    if (len == 8) {
        v->rhigh = x >> 32;
        v->rhigh_gpa = gpa + 4;
        v->rhigh_valid = true;
        return (uint32_t)x;
    }
    return len == 8 ? x : x & soft_mask(len);
}

static int soft_backtrace_sig(void **bt)
{
    return backtrace(bt, SOFT_BT_DEPTH);
}

static void soft_hook_mmio_write(uc_engine *uc, uint64_t off, unsigned size, uint64_t value, void *ud)
{
    struct soft_mmio_region *m = ud;
    struct soft_vcpu *v = m->e->v;
    (void)uc;
    if (v->cancel || v->limit_fault)
        return;
    uint64_t gpa = m->base + off;
    v->rhigh_valid = false;
    uint8_t *hva = v->remap ? soft_gpa_to_hva(v->vm, gpa, size) : NULL;
    if (hva) {
        soft_mmio_flush(v);
        memcpy(hva, &value, size > 8 ? 8 : size);
        return;
    }
    if (size != 4) {
        soft_mmio_flush(v);
        soft_mmio_exit(v, gpa, size, true, value);
        return;
    }
    void *bt[SOFT_BT_DEPTH];
    int n = soft_backtrace_sig(bt);
    if (v->wpend && gpa == v->wpend_gpa + 4 && n == v->wpend_n && memcmp(bt, v->wpend_bt, sizeof(void *) * (size_t)n) == 0) {
        v->wpend = false;
        soft_mmio_exit(v, v->wpend_gpa, 8, true, (uint32_t)v->wpend_val | ((uint64_t)(uint32_t)value << 32));
        return;
    }
    soft_mmio_flush(v);
    if (v->cancel)
        return;
    v->wpend = true;
    v->wpend_gpa = gpa;
    v->wpend_val = (uint32_t)value;
    v->wpend_n = n;
    memcpy(v->wpend_bt, bt, sizeof(void *) * (size_t)n);
}

/* Find the 8-byte load helper's frame: the first frame where an 8-byte and a 4-byte MMIO read differ. */
static void *soft_cal_bt[2][SOFT_BT_DEPTH];
static int soft_cal_n[2];
static int soft_cal_i;

static uint64_t soft_cal_read(uc_engine *uc, uint64_t off, unsigned size, void *ud)
{
    (void)uc;
    (void)size;
    (void)ud;
    if (off == 0 && soft_cal_i < 2) {
        soft_cal_n[soft_cal_i] = backtrace(soft_cal_bt[soft_cal_i], SOFT_BT_DEPTH);
        soft_cal_i++;
    }
    return 0;
}

static void soft_calibrate_mmio(void)
{
    static uint8_t ram[0x2000] __attribute__((aligned(4096)));
    uc_engine *uc;
    if (uc_open(UC_ARCH_X86, UC_MODE_64, &uc) != UC_ERR_OK)
        return;
    /* mov rax,[0x10000]; mov eax,[0x10000]; hlt */
    static const uint8_t code[] = {0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x01, 0x00,
                                   0x8b, 0x04, 0x25, 0x00, 0x00, 0x01, 0x00, 0xf4};
    memcpy(ram + 0x1000, code, sizeof code);
    if (uc_mem_map_ptr(uc, 0, sizeof ram, UC_PROT_ALL, ram) == UC_ERR_OK &&
        uc_mmio_map(uc, 0x10000, 0x1000, soft_cal_read, NULL, NULL, NULL) == UC_ERR_OK) {
        uc_ctl_exits_enable(uc);
        uc_emu_start(uc, 0x1000, 0, 0, 0);
    }
    soft_cal_engine = uc; /* kept, not closed: see soft_probe */
    if (soft_cal_i != 2)
        return;
    int n = soft_cal_n[0] < soft_cal_n[1] ? soft_cal_n[0] : soft_cal_n[1];
    for (int i = 1; i < n; i++) {
        if (soft_cal_bt[0][i] != soft_cal_bt[1][i]) {
            soft_ldq_frame = i;
            soft_ldq_addr = soft_cal_bt[0][i];
            return;
        }
    }
}

/* True when `begin` starts one of the engine's MMIO gaps. */
static bool soft_is_mmio(const struct soft_engine *e, uint64_t begin)
{
    for (int i = 0; i < e->nmmio; i++)
        if (e->mmio[i]->base == begin)
            return true;
    return false;
}

/*
 * Drops the translations of the engine's RAM regions and unmaps them (not its
 * MMIO gaps). Call in the pristine state (paging off): uc_ctl_remove_cache and
 * uc_mem_unmap translate addresses through the guest's MMU.
 */
static void soft_unmap_ram(struct soft_engine *e)
{
    uc_mem_region *regs = NULL;
    uint32_t nreg = 0;
    if (uc_mem_regions(e->uc, &regs, &nreg) != UC_ERR_OK)
        return;
    for (uint32_t i = 0; i < nreg; i++) {
        if (soft_is_mmio(e, regs[i].begin))
            continue;
        uc_ctl_remove_cache(e->uc, regs[i].begin, regs[i].end + 1);
        uc_mem_unmap(e->uc, regs[i].begin, regs[i].end - regs[i].begin + 1);
    }
    uc_free(regs);
}

/*
 * Map every slot (RAM) and every gap below SOFT_MMIO_LIMIT (MMIO) into the
 * engine. Unicorn unmaps a region page by page (about 60 ns a page, mostly
 * tb_flush_jmp_cache), so the gaps already mapped as this layout needs them
 * stay: a VM's last gap runs to 4 GiB, and remapping it cost every VM about
 * 120 ms. 0 or -errno.
 */
static int soft_map_memory(struct soft_vcpu *v)
{
    struct soft_engine *e = v->engine;
    struct soft_slot sorted[SOFT_MAX_SLOTS];
    int n = 0;
    for (int i = 0; i < SOFT_MAX_SLOTS; i++)
        if (v->vm->slots[i].used)
            sorted[n++] = v->vm->slots[i];
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && sorted[j].gpa < sorted[j - 1].gpa; j--) {
            struct soft_slot t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    uint64_t gap_base[SOFT_MAX_SLOTS + 1], gap_end[SOFT_MAX_SLOTS + 1];
    bool have[SOFT_MAX_SLOTS + 1];
    int ngap = 0;
    uint64_t at = 0;
    for (int i = 0; i <= n; i++) {
        uint64_t end = i < n ? sorted[i].gpa : SOFT_MMIO_LIMIT;
        if (end > at) {
            gap_base[ngap] = at;
            gap_end[ngap] = end;
            have[ngap++] = false;
        }
        if (i < n)
            at = sorted[i].gpa + sorted[i].size;
    }
    struct soft_mmio_region *gone[SOFT_MAX_SLOTS + 1];
    int k = 0, ngone = 0;
    for (int i = 0; i < e->nmmio; i++) {
        struct soft_mmio_region *r = e->mmio[i];
        int j = 0;
        while (j < ngap && !(gap_base[j] == r->base && gap_end[j] == r->end && !have[j]))
            j++;
        if (j < ngap) {
            have[j] = true;
            e->mmio[k++] = r;
        } else {
            gone[ngone++] = r;
        }
    }
    e->nmmio = k;
    /*
     * Unmap in the pristine state (paging off), then come back. Unmapping under the guest's paging made
     * the engine read guest memory through the gap being unmapped: a long-mode VM after a real-mode one
     * on the same engine got a phantom 4-byte MMIO read at 0x100000 (its PML4, inside the old VM's gap).
     * uc_ctl_remove_cache translates its start address through the MMU too.
     */
    if (uc_context_save(v->uc, e->saved) != UC_ERR_OK || uc_context_restore(v->uc, e->pristine) != UC_ERR_OK)
        return -EIO;
    uc_ctl_flush_tlb(v->uc);
    for (int i = 0; i < ngone; i++) {
        uc_mem_unmap(v->uc, gone[i]->base, gone[i]->end - gone[i]->base);
        free(gone[i]);
    }
    soft_unmap_ram(e);
    if (uc_context_restore(v->uc, e->saved) != UC_ERR_OK)
        return -EIO;
    uc_ctl_flush_tlb(v->uc);
    for (int i = 0; i < n; i++) {
        /* The VMM's memory must really be there, or the engine would fault in the host. */
        unsigned char vec;
        if (mincore(sorted[i].hva, SOFT_PAGE, &vec) != 0 && errno == ENOMEM)
            return -EFAULT;
        if (uc_mem_map_ptr(v->uc, sorted[i].gpa, sorted[i].size, UC_PROT_ALL, sorted[i].hva) != UC_ERR_OK)
            return -ENOMEM;
    }
    for (int j = 0; j < ngap; j++) {
        if (have[j])
            continue;
        struct soft_mmio_region *r = malloc(sizeof *r);
        if (!r)
            return -ENOMEM;
        *r = (struct soft_mmio_region){.e = e, .base = gap_base[j], .end = gap_end[j]};
        if (uc_mmio_map(v->uc, r->base, r->end - r->base, soft_hook_mmio_read, r, soft_hook_mmio_write, r) !=
            UC_ERR_OK) {
            free(r);
            return -ENOMEM;
        }
        e->mmio[e->nmmio++] = r;
    }
    v->mapped_gen = v->vm->slots_gen;
    v->mapped_any = true;
    return 0;
}

static void soft_native_cpuid(uint32_t leaf, uint32_t sub, uint32_t *r)
{
    /* The engine's own answer, from a throwaway engine: what it really emulates. */
    static uint8_t ram[0x2000] __attribute__((aligned(4096)));
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static uc_engine *uc;
    pthread_mutex_lock(&lock);
    if (!uc) {
        if (uc_open(UC_ARCH_X86, UC_MODE_64, &uc) == UC_ERR_OK) {
            uc_mem_map_ptr(uc, 0, sizeof ram, UC_PROT_ALL, ram);
            ram[0x1000] = 0x0f;
            ram[0x1001] = 0xa2;
            ram[0x1002] = 0xf4;
            uc_ctl_exits_enable(uc);
        }
    }
    memset(r, 0, 16);
    if (uc) {
        uint64_t a = leaf, c = sub;
        uc_reg_write(uc, UC_X86_REG_RAX, &a);
        uc_reg_write(uc, UC_X86_REG_RCX, &c);
        uc_emu_start(uc, 0x1000, 0, 0, 0);
        int ids[4] = {UC_X86_REG_EAX, UC_X86_REG_EBX, UC_X86_REG_ECX, UC_X86_REG_EDX};
        for (int i = 0; i < 4; i++)
            uc_reg_read(uc, ids[i], &r[i]);
    }
    pthread_mutex_unlock(&lock);
}

int soft_supported_cpuid(struct kvm_cpuid_entry2 *out, int max)
{
    int n = 0;
    uint32_t r[4];
    soft_native_cpuid(0, 0, r);
    uint32_t maxbasic = r[0] < 7 ? r[0] : 7;
#define ADD(fn, idx, fl, a, b, c, d)                                                                                 \
    do {                                                                                                             \
        if (n < max)                                                                                                 \
            out[n++] = (struct kvm_cpuid_entry2){.function = (fn), .index = (idx), .flags = (fl), .eax = (a),       \
                                                 .ebx = (b), .ecx = (c), .edx = (d)};                                \
    } while (0)
    ADD(0, 0, 0, maxbasic, r[1], r[2], r[3]);
    for (uint32_t l = 1; l <= maxbasic; l++) {
        soft_native_cpuid(l, 0, r);
        if (l == 1) {
            r[1] &= 0x0000ffffu;   /* APIC ID and logical count are the VMM's to fill in */
            r[2] |= 1u << 31;      /* hypervisor present */
            r[2] &= ~(1u << 21);   /* no x2APIC */
            r[2] &= ~(1u << 24);   /* no TSC deadline */
            r[2] &= ~(1u << 27);   /* OSXSAVE mirrors CR4 */
        }
        ADD(l, 0, l == 7 || l == 4 ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0, r[0], r[1], r[2], r[3]);
    }
    ADD(0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d);           /* "KVMKVMKVM\0\0\0" */
    ADD(0x40000001, 0, 0, (1u << 0) | (1u << 3) | (1u << 24), 0, 0, 0); /* CLOCKSOURCE, CLOCKSOURCE2, STABLE */
    soft_native_cpuid(0x80000000, 0, r);
    uint32_t maxext = r[0] < 0x80000008 ? r[0] : 0x80000008;
    ADD(0x80000000, 0, 0, maxext, r[1], r[2], r[3]);
    for (uint32_t l = 0x80000001; l <= maxext; l++) {
        soft_native_cpuid(l, 0, r);
        if (l == 0x80000001)
            r[3] |= 1u << 29; /* LM */
        ADD(l, 0, 0, r[0], r[1], r[2], r[3]);
    }
#undef ADD
    return n;
}

static int soft_hook_cpuid(uc_engine *uc, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)uc;
    uint32_t leaf = (uint32_t)soft_rd(v, UC_X86_REG_RAX), sub = (uint32_t)soft_rd(v, UC_X86_REG_RCX);
    const struct kvm_cpuid_entry2 *e = NULL;
    for (int i = 0; i < v->ncpuid && !e; i++) {
        const struct kvm_cpuid_entry2 *c = &v->cpuid[i];
        if (c->function == leaf && (!(c->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || c->index == sub))
            e = c;
    }
    uint32_t a = 0, b = 0, c = 0, d = 0;
    if (e) {
        a = e->eax;
        b = e->ebx;
        c = e->ecx;
        d = e->edx;
        if (leaf == 1) {
            c &= ~(1u << 27);
            if (soft_rd(v, UC_X86_REG_CR4) & (1ull << 18))
                c |= 1u << 27; /* OSXSAVE follows CR4, as on hardware */
        }
    }
    soft_wr(v, UC_X86_REG_RAX, a);
    soft_wr(v, UC_X86_REG_RBX, b);
    soft_wr(v, UC_X86_REG_RCX, c);
    soft_wr(v, UC_X86_REG_RDX, d);
    v->stats.cpuid++;
    return 1; /* skip the engine's own CPUID */
}


static bool soft_hook_invalid(uc_engine *uc, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
    img_load(v);
    uint8_t b[15];
    size_t n = soft_fetch(v, rip, b);
    if (n >= 3 && b[0] == 0x0f && b[1] == 0x01 && (b[2] == 0xc1 || b[2] == 0xd9)) {
        uint32_t hf = img_u32(v, soft_layout.hflags);
        uint64_t nr = soft_rd(v, UC_X86_REG_RAX), ret;
        if ((hf & HF_CPL_MASK) != 0)
            ret = KVM_EPERM_RET;
        else if ((hf & HF_CS64_MASK ? nr : (uint32_t)nr) == 1 /* KVM_HC_VAPIC_POLL_IRQ */)
            ret = 0;
        else
            ret = KVM_ENOSYS_RET;
        if (!(hf & HF_CS64_MASK))
            ret = (uint32_t)ret;
        soft_wr(v, UC_X86_REG_RAX, ret);
        soft_wr(v, UC_X86_REG_RIP, rip + 3);
        v->stats.hypercall++;
        v->stop = STOP_RESTART;
    } else {
        v->stop = STOP_EXCEPTION;
        v->exc_vector = 6;
        v->exc_has_error = false;
        v->exc_soft = false;
    }
    v->ud_seen = true;
    uc_emu_stop(uc);
    return true;
}


static bool soft_vector_has_error(int vec)
{
    return vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30;
}

static void soft_hook_intr(uc_engine *uc, uint32_t intno, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    if (intno == 6 && v->ud_seen) {
        v->ud_seen = false; /* Unicorn 2.1 also reports the #UD the invalid-instruction hook already handled */
        return;
    }
    img_load(v);
    int32_t ec = (int32_t)img_u32(v, soft_layout.error_code);
    int32_t is_int = (int32_t)img_u32(v, soft_layout.error_code + 4);
    v->exc_vector = (int)intno;
    v->exc_soft = is_int != 0;
    v->exc_has_error = !v->exc_soft && soft_vector_has_error((int)intno);
    v->exc_error = ec;
    v->stop = STOP_EXCEPTION;
    uc_emu_stop(uc);
}


static void soft_publish_pvclock(struct soft_vcpu *v)
{
    if (!(v->kvm_system_time & 1))
        return;
    uint64_t gpa = v->kvm_system_time & ~63ull;
    struct pvclock_vcpu_time_info_layout {
        uint32_t version, pad0;
        uint64_t tsc_timestamp, system_time;
        uint32_t tsc_to_system_mul;
        int8_t tsc_shift;
        uint8_t flags, pad[2];
    } p;
    _Static_assert(sizeof p == 32, "pvclock_vcpu_time_info layout");
    uint8_t *h = soft_gpa_to_hva(v->vm, gpa, sizeof p);
    if (!h)
        return;
    uint64_t khz = soft_tsc_khz();
    /* ns = (tsc_delta << shift) * mul >> 32, with mul = 1e6/khz * 2^32 scaled into 32 bits. */
    int8_t shift = 0;
    uint64_t base_hz = khz * 1000;
    uint64_t target = 1000000000ull;
    while (base_hz > 2 * target) {
        base_hz >>= 1;
        shift--;
    }
    while (base_hz <= target) {
        base_hz <<= 1;
        shift++;
    }
    uint32_t mul = (uint32_t)((target << 32) / base_hz);
    memcpy(&p, h, sizeof p);
    uint32_t ver = p.version + 1;
    memcpy(h, &ver, 4);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    p.tsc_timestamp = soft_host_tsc() + v->tsc_offset;
    p.system_time = soft_kvmclock_ns(v->vm);
    p.tsc_to_system_mul = mul;
    p.tsc_shift = shift;
    p.flags = 1; /* PVCLOCK_TSC_STABLE_BIT */
    p.version = ver;
    memcpy(h + 4, (uint8_t *)&p + 4, sizeof p - 4);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    ver++;
    memcpy(h, &ver, 4);
}

static void soft_publish_wall_clock(struct soft_vcpu *v)
{
    uint8_t *h = soft_gpa_to_hva(v->vm, v->kvm_wall_clock, 12);
    if (!h)
        return;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    uint64_t now = (uint64_t)rt.tv_sec * 1000000000 + (uint64_t)rt.tv_nsec;
    uint64_t boot = now - soft_kvmclock_ns(v->vm);
    uint32_t ver, sec = (uint32_t)(boot / 1000000000), nsec = (uint32_t)(boot % 1000000000);
    memcpy(&ver, h, 4);
    ver = (ver | 1) + 1;
    memcpy(h + 4, &sec, 4);
    memcpy(h + 8, &nsec, 4);
    memcpy(h, &ver, 4);
}

static void soft_set_tsc_offset(struct soft_vcpu *v, uint64_t off)
{
    v->tsc_offset = off;
    img_load(v);
    img_set_u64(v, soft_layout.tsc_offset, off);
    img_commit(v);
}

/* MSRs the backend keeps itself (the engine ignores them). true if handled. */
static bool soft_msr_write(struct soft_vcpu *v, uint32_t idx, uint64_t val, bool from_guest)
{
    switch (idx) {
    case 0x10:
        soft_set_tsc_offset(v, val - soft_host_tsc());
        return true;
    case 0x1b:
        v->apic_base = val;
        return true;
    case 0x4b564d01:
    case 0x12:
        v->kvm_system_time = val;
        soft_publish_pvclock(v);
        return true;
    case 0x4b564d00:
    case 0x11:
        v->kvm_wall_clock = val;
        soft_publish_wall_clock(v);
        return true;
    default:
        (void)from_guest;
        return false;
    }
}

static bool soft_msr_read(struct soft_vcpu *v, uint32_t idx, uint64_t *val)
{
    switch (idx) {
    case 0x10:
        *val = soft_host_tsc() + v->tsc_offset;
        return true;
    case 0x1b:
        *val = v->apic_base;
        return true;
    case 0x4b564d01:
    case 0x12:
        *val = v->kvm_system_time;
        return true;
    case 0x4b564d00:
    case 0x11:
        *val = v->kvm_wall_clock;
        return true;
    default:
        return false;
    }
}

static bool soft_seg_flat(const struct soft_seg *s)
{
    bool data = (s->flags & DESC_S_MASK) && !(s->flags & (8u << DESC_TYPE_SHIFT));
    bool expand_down = data && (s->flags & (4u << DESC_TYPE_SHIFT));
    return !(s->flags & DESC_P_MASK) || (s->limit == 0xffffffffu && !expand_down);
}

/*
 * Re-read the segment state from the loaded image into the limit checker's
 * cache. True when the limit hook must be added or removed (between runs):
 * it is wanted in protected mode (not long, not virtual-8086) while any data
 * segment is not flat.
 */
static bool soft_limits_refresh(struct soft_vcpu *v)
{
    uint32_t hf = img_u32(v, soft_layout.hflags);
    bool want = false;
    if ((IMG_CR(v, 0) & CR0_PE) && !(hf & (HF_LMA_MASK | HF_VM_MASK))) {
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
 * The segment register through which the instruction at b makes a data
 * access (write or not) at linear address lin; -1 when the access is not the
 * instruction's own operand (descriptor reads of a segment load).
 */
static int soft_access_seg(struct soft_vcpu *v, const uint8_t *b, size_t n, bool write, uint64_t lin)
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
    unsigned asize = v->lim_code == 4 ? (adsz ? 2 : 4) : (adsz ? 4 : 2);
    uint8_t op = b[i];
    size_t mi = i + 1; /* the ModRM byte */
    switch (op) {
    case 0x06: case 0x07: case 0x0e: case 0x16: case 0x17: case 0x1e: case 0x1f: case 0x60: case 0x61:
    case 0x68: case 0x6a: case 0x9a: case 0x9c: case 0x9d: case 0xc2: case 0xc3: case 0xc8: case 0xc9:
    case 0xca: case 0xcb: case 0xcf: case 0xe8:
        return R_SS; /* stack */
    case 0xa4: case 0xa5: case 0xaa: case 0xab: case 0x6c: case 0x6d:
        return write ? R_ES : data; /* movs, stos, ins: the destination is ES:(E)DI */
    case 0xa6: case 0xa7: { /* cmps reads DS:(E)SI and ES:(E)DI */
        uint64_t si = soft_rd(v, UC_X86_REG_RSI) & soft_mask(asize);
        return ((lin - v->lim_seg[data].base) & 0xffffffffu) == si ? data : R_ES;
    }
    case 0xae: case 0xaf:
        return R_ES; /* scas */
    case 0xa0: case 0xa1: case 0xa2: case 0xa3: case 0xac: case 0xad: case 0x6e: case 0x6f: case 0xd7:
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
    int seg = soft_access_seg(v, b, n, write, lin);
    if (seg < 0)
        return;
    const struct soft_seg *s = &v->lim_seg[seg];
    if (!(s->flags & DESC_P_MASK))
        return;
    uint64_t off = (lin - s->base) & 0xffffffffu, last = off + (uint64_t)size - 1;
    bool data = (s->flags & DESC_S_MASK) && !(s->flags & (8u << DESC_TYPE_SHIFT));
    bool ok;
    if (data && (s->flags & (4u << DESC_TYPE_SHIFT)))
        ok = off > s->limit && last <= (((s->flags >> DESC_B_SHIFT) & 1) ? 0xffffffffull : 0xffffull);
    else
        ok = last <= s->limit;
    if (ok)
        return;
    v->limit_fault = true;
    v->stop = STOP_EXCEPTION;
    v->exc_vector = seg == R_SS ? 12 : 13;
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

/* Between runs: add or remove the limit hook as the segment state asks. 0 or -errno. */
static int soft_limits_apply(struct soft_vcpu *v)
{
    v->seg_check = false;
    img_load(v);
    if (!soft_limits_refresh(v))
        return 0;
    if (v->limits_on) {
        uc_hook_del(v->uc, v->limit_hook);
        v->limits_on = false;
    } else {
        if (uc_hook_add(v->uc, &v->limit_hook, UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, (void *)soft_hook_limit,
                        v->engine, 1, 0) != UC_ERR_OK)
            return -ENOMEM;
        v->limits_on = true;
    }
    /* Retranslate: with the hook, translations keep RIP exact at every access; without it, run at full speed. */
    uc_ctl_flush_tb(v->uc);
    uc_ctl_flush_tlb(v->uc);
    return 0;
}

/* Instructions that can change a data segment or whether limits apply (CR0.PE, EFER via WRMSR is hooked anyway). */
static bool soft_insn_changes_segs(const uint8_t *b, size_t n)
{
    size_t i = 0;
    while (i < n && (b[i] == 0x66 || b[i] == 0x67 || b[i] == 0xf0 || b[i] == 0xf2 || b[i] == 0xf3 || b[i] == 0x26 ||
                     b[i] == 0x2e || b[i] == 0x36 || b[i] == 0x3e || b[i] == 0x64 || b[i] == 0x65))
        i++;
    if (i >= n)
        return false;
    switch (b[i]) {
    case 0x8e: case 0x07: case 0x17: case 0x1f: case 0xc4: case 0xc5: case 0xca: case 0xcb: case 0xcf:
        return true; /* mov/pop sreg, les/lds, retf, iret */
    case 0x0f:
        if (i + 1 >= n)
            return false;
        switch (b[i + 1]) {
        case 0xa1: case 0xa9: case 0xb2: case 0xb4: case 0xb5: case 0x22: case 0x34: case 0x35: case 0x05: case 0x07:
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

static void soft_hook_code(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)size;
    uint8_t b[15] = {0};
    img_load(v);
    if (!(img_u32(v, soft_layout.hflags) & HF_LMA_MASK)) {
        /* Maybe placed after a segment load: the limit hook may be due before this instruction runs. */
        v->seg_check = true;
        if (soft_limits_refresh(v)) {
            v->stop = STOP_RESTART;
            uc_emu_stop(uc);
            return;
        }
    }
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
    (void)addr;
    soft_fetch(v, rip, b);
    if (b[0] != 0x0f)
        return;
    if (b[1] == 0x31 || (b[1] == 0x01 && b[2] == 0xf9)) {
        v->stats.rdtsc++;
        return; /* the engine adds the TSC offset itself */
    }
    if (b[1] != 0x30 && b[1] != 0x32)
        return;
    v->stats.msr++;
    if (img_u32(v, soft_layout.hflags) & HF_CPL_MASK)
        return; /* the engine raises #GP */
    uint32_t idx = (uint32_t)soft_rd(v, UC_X86_REG_RCX);
    if (b[1] == 0x30) {
        uint64_t val = (uint32_t)soft_rd(v, UC_X86_REG_RAX) | (soft_rd(v, UC_X86_REG_RDX) << 32);
        if (!soft_msr_write(v, idx, val, true))
            return;
    } else {
        uint64_t val;
        if (!soft_msr_read(v, idx, &val))
            return;
        soft_wr(v, UC_X86_REG_RAX, (uint32_t)val);
        soft_wr(v, UC_X86_REG_RDX, val >> 32);
    }
    soft_wr(v, UC_X86_REG_RIP, rip + 2);
}

/* Queue a code hook at guest address at, once. True if newly queued. */
static bool soft_hook_later(struct soft_vcpu *v, uint64_t at)
{
    for (int k = 0; k < v->nhooked; k++)
        if (v->hooked[k] == at)
            return false;
    for (int k = 0; k < v->npending_hooks; k++)
        if (v->pending_hooks[k] == at)
            return false;
    if (v->nhooked + v->npending_hooks >= 256 || v->npending_hooks >= 16)
        return false;
    v->pending_hooks[v->npending_hooks++] = at;
    return true;
}

/* Scan a block the engine is about to run for the instructions above; place a code hook on each, once. */
static __attribute__((noinline)) bool soft_scan_block(struct soft_vcpu *v, uint64_t addr, uint32_t size)
{
    v->scanned[(addr ^ (addr >> 12)) & 1023] = addr ^ ((uint64_t)size << 48);
    if (size > 4096)
        return false;
    uint8_t buf[4096 + 2];
    uint64_t pa;
    uint32_t pe;
    img_load(v);
    uint64_t lin = addr + img_seg(v, R_CS)->base;
    if (soft_lin_rw(v, lin, buf, size, false, false, &pa, &pe) != 0)
        return false;
    bool found = false;
    for (uint32_t i = 0; i + 1 < size; i++) {
        if (buf[i] != 0x0f)
            continue;
        uint8_t c = buf[i + 1];
        bool hit = c == 0x30 || c == 0x31 || c == 0x32 || (c == 0x01 && i + 2 < size && buf[i + 2] == 0xf9);
        if (!hit)
            continue;
        if (soft_hook_later(v, addr + i))
            found = true;
    }
    uint32_t hf = img_u32(v, soft_layout.hflags);
    if (!(hf & HF_LMA_MASK)) {
        /*
         * Segment loads and mode changes: hook the next instruction (the code hook
         * re-checks the segments before it runs), or the load itself when it ends
         * the block (then the next block hook re-checks).
         */
        unsigned code = (hf & HF_CS32_MASK) ? 4 : 2;
        for (uint32_t i = 0; i < size;) {
            int io;
            unsigned len = soft_insn_len(buf + i, size - i, code, &io);
            if (len == 0)
                break;
            if (soft_insn_changes_segs(buf + i, len) && soft_hook_later(v, addr + i + len < addr + size ? addr + i + len : addr + i))
                found = true;
            i += len;
        }
    }
    if (found) {
        v->flush_begin = addr;
        v->flush_end = addr + size;
    }
    return found;
}

static void soft_hook_block(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    /* Runs before every block: keep the common path to a few loads and compares. */
    v->blk_addr = addr;
    v->blk_size = size;
    v->io_in_block = 0;
    if (__builtin_expect(v->wpend | v->rhigh_valid | v->remap | v->seg_check, 0)) {
        v->rhigh_valid = false;
        soft_mmio_flush(v);
        if (v->seg_check) {
            v->seg_check = false;
            img_load(v);
            if (soft_limits_refresh(v)) {
                v->seg_check = true; /* soft_run_once adds or removes the limit hook */
                v->stop = STOP_RESTART;
                uc_emu_stop(uc);
                return;
            }
        }
        if (v->remap) {
            v->stop = STOP_RESTART;
            uc_emu_stop(uc);
            return;
        }
    }
    if (__builtin_expect(__atomic_load_n(&v->run->immediate_exit, __ATOMIC_RELAXED), 0)) {
        v->stop = STOP_EINTR;
        uc_emu_stop(uc);
        return;
    }
    if (__builtin_expect(v->watch_if, 0) && (soft_rd(v, UC_X86_REG_RFLAGS) & RFLAGS_IF)) {
        v->stop = STOP_IF;
        uc_emu_stop(uc);
        return;
    }
    if (__builtin_expect(v->scanned[(addr ^ (addr >> 12)) & 1023] == (addr ^ ((uint64_t)size << 48)), 1))
        return;
    if (soft_scan_block(v, addr, size)) {
        v->stop = STOP_SCAN;
        uc_emu_stop(uc);
    }
}

static void soft_apply_pending_hooks(struct soft_vcpu *v)
{
    for (int i = 0; i < v->npending_hooks; i++) {
        uc_hook h;
        uint64_t at = v->pending_hooks[i];
        if (uc_hook_add(v->uc, &h, UC_HOOK_CODE, (void *)soft_hook_code, v->engine, at, at) == UC_ERR_OK) {
            v->hooked_h[v->nhooked] = h;
            v->hooked[v->nhooked++] = at;
        }
    }
    v->npending_hooks = 0;
    if (v->flush_end > v->flush_begin)
        uc_ctl_remove_cache(v->uc, v->flush_begin, v->flush_end);
    v->flush_begin = v->flush_end = 0;
}


static void soft_reset(struct soft_vcpu *v, bool init_event);

/*
 * A triple fault: KVM on SVM answers the SHUTDOWN intercept with
 * kvm_vcpu_reset(init_event), so KVM_EXIT_SHUTDOWN shows the vCPU already at
 * its INIT state (RIP 0xfff0, CS 0xf000) and a later KVM_RUN starts there.
 */
static void soft_shutdown(struct soft_vcpu *v)
{
    soft_reset(v, true);
    v->run->exit_reason = KVM_EXIT_SHUTDOWN;
}

enum soft_deliver { DELIVER_OK, DELIVER_FAULT, DELIVER_UNSUPPORTED };

struct soft_fault {
    int vector;
    bool has_error;
    uint32_t error;
    uint64_t cr2;
    bool set_cr2;
};

static int soft_read_desc(struct soft_vcpu *v, uint16_t sel, uint64_t *desc, struct soft_fault *f)
{
    struct soft_seg *table = (sel & 4) ? img_seg(v, R_LDT) : img_seg(v, R_GDT);
    uint32_t idx = sel & ~7u;
    if ((sel & ~3u) == 0 || idx + 7 > table->limit) {
        *f = (struct soft_fault){.vector = 13, .has_error = true, .error = sel & ~3u};
        return DELIVER_FAULT;
    }
    uint64_t pa;
    uint32_t pe;
    int r = soft_lin_rw(v, table->base + idx, desc, 8, false, false, &pa, &pe);
    if (r == 1) {
        *f = (struct soft_fault){.vector = 14, .has_error = true, .error = pe, .cr2 = pa, .set_cr2 = true};
        return DELIVER_FAULT;
    }
    return r == 0 ? DELIVER_OK : DELIVER_UNSUPPORTED;
}

static void soft_desc_to_seg(uint64_t d, uint16_t sel, struct soft_seg *s)
{
    uint32_t lo = (uint32_t)d, hi = (uint32_t)(d >> 32);
    s->selector = sel;
    s->base = (lo >> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000u);
    uint32_t limit = (lo & 0xffff) | (hi & 0x000f0000u);
    if (hi & DESC_G_MASK)
        limit = (limit << 12) | 0xfff;
    s->limit = limit;
    s->flags = hi & 0x00f0ff00u;
}

static int soft_push(struct soft_vcpu *v, uint64_t ss_base, uint64_t *sp, uint64_t mask, const void *val, unsigned n,
                     bool user, struct soft_fault *f)
{
    *sp = (*sp - n) & mask;
    uint64_t pa;
    uint32_t pe;
    int r = soft_lin_rw(v, ss_base + *sp, (void *)val, n, true, user, &pa, &pe);
    if (r == 1) {
        *f = (struct soft_fault){.vector = 14, .has_error = true, .error = pe, .cr2 = pa, .set_cr2 = true};
        return DELIVER_FAULT;
    }
    return r == 0 ? DELIVER_OK : DELIVER_UNSUPPORTED;
}

/*
 * Deliver one event as the CPU does: real mode through the IVT, protected and
 * long mode through the IDT (interrupt/trap gates, privilege change through the
 * TSS, IST). ext: external interrupt (sets EXT in error codes). The image must
 * be loaded; on DELIVER_OK the new state is stored into the engine.
 */
static int soft_deliver(struct soft_vcpu *v, int vec, bool has_err, uint32_t err, bool soft, bool ext,
                        struct soft_fault *f)
{
    uint64_t cr0 = IMG_CR(v, 0), efer = img_u64(v, soft_layout.efer);
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP), rsp = soft_rd(v, UC_X86_REG_RSP);
    uint64_t rflags = soft_rd(v, UC_X86_REG_RFLAGS);
    struct soft_seg *cs = img_seg(v, R_CS), *ss = img_seg(v, R_SS), *idt = img_seg(v, R_IDT);
    uint32_t cpl = img_u32(v, soft_layout.hflags) & HF_CPL_MASK;
    uint32_t ext_bit = ext ? 1 : 0;
    (void)soft;

    if (!(cr0 & CR0_PE)) {
        if ((uint32_t)vec * 4 + 3 > idt->limit) {
            *f = (struct soft_fault){.vector = 13, .has_error = true, .error = (uint32_t)vec * 8 + 2 + ext_bit};
            return DELIVER_FAULT;
        }
        uint32_t ent;
        uint64_t pa;
        uint32_t pe;
        if (soft_lin_rw(v, idt->base + (uint64_t)vec * 4, &ent, 4, false, false, &pa, &pe) != 0)
            return DELIVER_UNSUPPORTED;
        uint64_t sp = rsp & 0xffff;
        uint16_t fl = (uint16_t)rflags, csel = (uint16_t)cs->selector, ip = (uint16_t)rip;
        int r;
        if ((r = soft_push(v, ss->base, &sp, 0xffff, &fl, 2, false, f)) ||
            (r = soft_push(v, ss->base, &sp, 0xffff, &csel, 2, false, f)) ||
            (r = soft_push(v, ss->base, &sp, 0xffff, &ip, 2, false, f)))
            return r;
        cs->selector = ent >> 16;
        cs->base = (uint64_t)(ent >> 16) << 4;
        rflags &= ~(RFLAGS_IF | RFLAGS_TF | RFLAGS_AC | RFLAGS_RF);
        img_set_u32(v, soft_layout.old_exception, 0xffffffffu);
        img_update_hflags(v, rflags);
        img_store(v);
        soft_wr(v, UC_X86_REG_RSP, (rsp & ~0xffffull) | sp);
        soft_wr(v, UC_X86_REG_RIP, ent & 0xffff);
        soft_wr(v, UC_X86_REG_RFLAGS, rflags);
        return DELIVER_OK;
    }

    bool lm = (efer & EFER_LMA) != 0;
    unsigned gsz = lm ? 16 : 8;
    uint32_t gate_err = (uint32_t)vec * 8 + 2 + ext_bit;
    if ((uint64_t)vec * gsz + gsz - 1 > idt->limit) {
        *f = (struct soft_fault){.vector = 13, .has_error = true, .error = gate_err};
        return DELIVER_FAULT;
    }
    uint32_t g[4] = {0};
    uint64_t pa;
    uint32_t pe;
    int rr = soft_lin_rw(v, idt->base + (uint64_t)vec * gsz, g, gsz, false, false, &pa, &pe);
    if (rr == 1) {
        *f = (struct soft_fault){.vector = 14, .has_error = true, .error = pe, .cr2 = pa, .set_cr2 = true};
        return DELIVER_FAULT;
    }
    if (rr < 0)
        return DELIVER_UNSUPPORTED;
    uint32_t type = (g[1] >> 8) & 0x1f, dpl = (g[1] >> 13) & 3;
    bool gate32 = type == 0x0e || type == 0x0f, gate16 = type == 0x06 || type == 0x07;
    if (!(gate32 || (gate16 && !lm))) {
        if (type == 0x05 && !lm)
            return DELIVER_UNSUPPORTED; /* task gates */
        *f = (struct soft_fault){.vector = 13, .has_error = true, .error = gate_err};
        return DELIVER_FAULT;
    }
    if (soft && dpl < cpl) {
        *f = (struct soft_fault){.vector = 13, .has_error = true, .error = gate_err};
        return DELIVER_FAULT;
    }
    if (!(g[1] & DESC_P_MASK)) {
        *f = (struct soft_fault){.vector = 11, .has_error = true, .error = gate_err};
        return DELIVER_FAULT;
    }
    bool trap = (type & 1) != 0;
    uint16_t sel = (uint16_t)(g[0] >> 16);
    uint64_t off = (g[0] & 0xffff) | (g[1] & 0xffff0000u);
    if (lm)
        off |= (uint64_t)g[2] << 32;
    uint64_t d;
    int r = soft_read_desc(v, sel, &d, f);
    if (r)
        return r;
    struct soft_seg ncs;
    soft_desc_to_seg(d, sel, &ncs);
    uint32_t ndpl = (ncs.flags >> DESC_DPL_SHIFT) & 3;
    bool code = (ncs.flags & DESC_S_MASK) && (ncs.flags & (8u << DESC_TYPE_SHIFT));
    if (!code || ndpl > cpl || (lm && !((ncs.flags >> DESC_L_SHIFT) & 1))) {
        *f = (struct soft_fault){.vector = 13, .has_error = true, .error = (sel & ~3u) + ext_bit};
        return DELIVER_FAULT;
    }
    if (!(ncs.flags & DESC_P_MASK)) {
        *f = (struct soft_fault){.vector = 11, .has_error = true, .error = (sel & ~3u) + ext_bit};
        return DELIVER_FAULT;
    }
    bool conforming = (ncs.flags & (4u << DESC_TYPE_SHIFT)) != 0;
    uint32_t ncpl = conforming ? cpl : ndpl;
    struct soft_seg nss = *ss;
    uint64_t nsp = rsp, ssmask;
    struct soft_seg *tr = img_seg(v, R_TR);
    unsigned ist = lm ? (g[1] & 7) : 0;
    if (ncpl < cpl || ist) {
        uint64_t tss_off = lm ? (ist ? 0x24 + 8 * (ist - 1) : 4 + 8 * ncpl) : 4 + 8 * ncpl;
        unsigned len = lm ? 8 : 8;
        if (!(tr->flags & DESC_P_MASK) || tss_off + len - 1 > tr->limit) {
            *f = (struct soft_fault){.vector = 10, .has_error = true, .error = (tr->selector & ~3u) + ext_bit};
            return DELIVER_FAULT;
        }
        uint8_t t[8];
        if (soft_lin_rw(v, tr->base + tss_off, t, len, false, false, &pa, &pe) != 0)
            return DELIVER_UNSUPPORTED;
        if (lm) {
            memcpy(&nsp, t, 8);
            if (ncpl < cpl) {
                nss = (struct soft_seg){.selector = ncpl, .flags = 0};
            }
        } else {
            uint32_t esp0;
            uint16_t ss0;
            memcpy(&esp0, t, 4);
            memcpy(&ss0, t + 4, 2);
            uint64_t sd;
            if ((r = soft_read_desc(v, ss0, &sd, f)))
                return r;
            soft_desc_to_seg(sd, ss0, &nss);
            nsp = esp0;
        }
    }
    bool switched = ncpl < cpl;
    if (lm) {
        nsp &= ~15ull;
        ssmask = ~0ull;
    } else {
        ssmask = (nss.flags >> DESC_B_SHIFT) & 1 ? 0xffffffffull : 0xffffull;
        nsp &= ssmask;
    }
    unsigned w = lm ? 8 : (gate32 ? 4 : 2);
    bool user = false;
    uint64_t vals[6];
    int nv = 0;
    if (lm || switched) {
        vals[nv++] = ss->selector;
        vals[nv++] = rsp;
    }
    vals[nv++] = rflags;
    vals[nv++] = cs->selector;
    vals[nv++] = rip;
    if (has_err)
        vals[nv++] = err;
    for (int i = 0; i < nv; i++)
        if ((r = soft_push(v, nss.base, &nsp, ssmask, &vals[i], w, user, f)))
            return r;
    rflags &= ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
    if (!trap)
        rflags &= ~RFLAGS_IF;
    ncs.selector = (ncs.selector & ~3u) | ncpl;
    ncs.flags |= 1u << DESC_TYPE_SHIFT; /* accessed */
    *cs = ncs;
    if (switched)
        *ss = nss;
    if (switched && !lm)
        ss->selector = (ss->selector & ~3u) | ncpl;
    /* CPL follows SS.DPL in the engine's hidden flags. */
    ss->flags = (ss->flags & ~(3u << DESC_DPL_SHIFT)) | (ncpl << DESC_DPL_SHIFT);
    img_set_u32(v, soft_layout.old_exception, 0xffffffffu);
    img_update_hflags(v, rflags);
    img_store(v);
    if (lm || ssmask == ~0ull)
        soft_wr(v, UC_X86_REG_RSP, nsp);
    else
        soft_wr(v, UC_X86_REG_RSP, (rsp & ~ssmask) | nsp);
    soft_wr(v, UC_X86_REG_RIP, lm ? off : (gate32 ? (uint32_t)off : (uint16_t)off));
    soft_wr(v, UC_X86_REG_RFLAGS, rflags);
    return DELIVER_OK;
}

static bool soft_contributory(int vec)
{
    return vec == 0 || (vec >= 10 && vec <= 13);
}

/* Deliver an event, with the double-fault and triple-fault rules. false: shutdown or internal error (run filled). */
static bool soft_deliver_event(struct soft_vcpu *v, int vec, bool has_err, uint32_t err, bool soft, bool ext)
{
    int first = vec;
    for (int tries = 0; tries < 3; tries++) {
        img_load(v);
        struct soft_fault f;
        int r = soft_deliver(v, vec, has_err, err, soft, ext, &f);
        if (r == DELIVER_OK) {
            v->stats.exceptions++;
            v->seg_check = true; /* CS and SS may have changed */
            return true;
        }
        if (r == DELIVER_UNSUPPORTED) {
            soft_internal_error(v, "event delivery the soft backend cannot emulate");
            return false;
        }
        if (f.set_cr2)
            soft_wr(v, UC_X86_REG_CR2, f.cr2);
        if (vec == 8) {
            soft_shutdown(v);
            return false;
        }
        bool df = (soft_contributory(first) && soft_contributory(f.vector)) ||
                  (first == 14 && (soft_contributory(f.vector) || f.vector == 14));
        if (df) {
            vec = 8;
            has_err = true;
            err = 0;
        } else {
            vec = f.vector;
            has_err = f.has_error;
            err = f.error;
        }
        first = vec;
        soft = false;
    }
    soft_shutdown(v);
    return false;
}


static bool soft_irq_window_open(struct soft_vcpu *v)
{
    if (!(soft_rd(v, UC_X86_REG_RFLAGS) & RFLAGS_IF))
        return false;
    img_load(v);
    return !(img_u32(v, soft_layout.hflags) & HF_INHIBIT_IRQ_MASK);
}

static int soft_run_once(struct soft_vcpu *v)
{
    struct kvm_run *run = v->run;
    for (;;) {
        v->remap = false;
        if (!v->mapped_any || v->mapped_gen != v->vm->slots_gen) {
            int r = soft_map_memory(v);
            if (r < 0)
                return r;
        }
        if (v->npending_hooks || v->flush_end)
            soft_apply_pending_hooks(v);
        if (v->seg_check) {
            int r = soft_limits_apply(v);
            if (r < 0)
                return r;
        }
        if (v->irq_pending >= 0 && soft_irq_window_open(v)) {
            int vec = v->irq_pending;
            v->irq_pending = -1;
            if (!soft_deliver_event(v, vec, false, 0, false, true)) {
                soft_fill_exit_common(v);
                return 0;
            }
        }
        if (run->request_interrupt_window && v->irq_pending < 0 && soft_irq_window_open(v)) {
            run->exit_reason = KVM_EXIT_IRQ_WINDOW_OPEN;
            soft_fill_exit_common(v);
            return 0;
        }
        if (__atomic_load_n(&run->immediate_exit, __ATOMIC_RELAXED)) {
            run->exit_reason = KVM_EXIT_INTR;
            soft_fill_exit_common(v);
            return -EINTR;
        }
        v->watch_if = (v->irq_pending >= 0 || run->request_interrupt_window) &&
                      !(soft_rd(v, UC_X86_REG_RFLAGS) & RFLAGS_IF);
        v->stop = STOP_NONE;
        v->ud_seen = false;
        v->limit_fault = false;
        uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
        uc_err e = uc_emu_start(v->uc, rip, 0, 0, 0);
        if (v->cancel)
            return -EINTR;
        if (v->limit_fault && v->undo_len) {
            /* The write past the limit landed before the engine stopped: undo it, as the CPU never makes it. */
            uint64_t pa;
            uint32_t pe;
            img_load(v);
            soft_lin_rw(v, v->undo_lin, v->undo_bytes, v->undo_len, true, false, &pa, &pe);
            v->undo_len = 0;
        }
        if (v->wpend) {
            /* A held-back MMIO write goes out before what stopped the engine; the stop is handled on re-entry. */
            v->wpend = false;
            run->exit_reason = KVM_EXIT_MMIO;
            run->mmio.phys_addr = v->wpend_gpa;
            run->mmio.len = 4;
            run->mmio.is_write = 1;
            memset(run->mmio.data, 0, sizeof run->mmio.data);
            memcpy(run->mmio.data, &v->wpend_val, 4);
            soft_fill_exit_common(v);
            v->co_ret = 0;
            v->in_exit = true;
            soft_coro_yield(&v->co);
            v->in_exit = false;
            if (v->cancel)
                return -EINTR;
        }
        switch (v->stop) {
        case STOP_EXCEPTION:
            if (!soft_deliver_event(v, v->exc_vector, v->exc_has_error, (uint32_t)v->exc_error, v->exc_soft, false)) {
                soft_fill_exit_common(v);
                return 0;
            }
            continue;
        case STOP_EINTR:
            continue; /* the check above returns -EINTR */
        case STOP_RESTART:
        case STOP_IF:
        case STOP_SCAN:
            continue;
        default:
            break;
        }
        if (e != UC_ERR_OK) {
            soft_internal_error(v, uc_strerror(e));
            soft_fill_exit_common(v);
            return 0;
        }
        img_load(v);
        uint64_t nrip = soft_rd(v, UC_X86_REG_RIP);
        uint8_t b = 0;
        uint64_t pa;
        uint32_t pe;
        if (nrip > 0 && soft_lin_rw(v, img_seg(v, R_CS)->base + nrip - 1, &b, 1, false, false, &pa, &pe) == 0 &&
            b == 0xf4) {
            run->exit_reason = KVM_EXIT_HLT;
            soft_fill_exit_common(v);
            return 0;
        }
        soft_internal_error(v, "the engine stopped for no known reason");
        soft_fill_exit_common(v);
        return 0;
    }
}

static void soft_co_main(void *arg)
{
    struct soft_vcpu *v = arg;
    while (!v->cancel) {
        v->co_ret = soft_run_once(v);
        if (v->cancel)
            break;
        soft_coro_yield(&v->co);
    }
}


/*
 * RIP as KVM 6.1 reports it at an I/O exit: at the I/O instruction, string or
 * not. KVM skips a plain IN/OUT only when the next KVM_RUN completes it
 * (complete_fast_pio_in/out), and string I/O is still being emulated.
 */
static uint64_t soft_io_exit_rip(struct soft_vcpu *v, uint64_t engine_rip)
{
    img_load(v);
    if (!soft_locate_io(v))
        return engine_rip;
    return v->io_rip;
}

static void soft_get_regs(struct soft_vcpu *v, struct kvm_regs *r)
{
    uint64_t g[16];
    for (int i = 0; i < 16; i++)
        g[i] = soft_rd(v, soft_gpr_ids[i]);
    *r = (struct kvm_regs){.rax = g[0], .rbx = g[1], .rcx = g[2], .rdx = g[3], .rsi = g[4], .rdi = g[5],
                           .rsp = g[6], .rbp = g[7], .r8 = g[8], .r9 = g[9], .r10 = g[10], .r11 = g[11],
                           .r12 = g[12], .r13 = g[13], .r14 = g[14], .r15 = g[15],
                           .rip = soft_rd(v, UC_X86_REG_RIP), .rflags = soft_rd(v, UC_X86_REG_RFLAGS)};
    if (v->in_exit && v->io_exit)
        r->rip = soft_io_exit_rip(v, r->rip);
}

static void soft_set_regs(struct soft_vcpu *v, const struct kvm_regs *r)
{
    if (v->in_exit && v->io_exit && r->rip == soft_io_exit_rip(v, soft_rd(v, UC_X86_REG_RIP))) {
        /* The engine is inside the I/O instruction; its RIP register must stay as the engine left it. */
        struct kvm_regs same = *r;
        same.rip = soft_rd(v, UC_X86_REG_RIP);
        r = &same;
        const uint64_t g[16] = {r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rsp, r->rbp,
                                r->r8,  r->r9,  r->r10, r->r11, r->r12, r->r13, r->r14, r->r15};
        for (int i = 0; i < 16; i++)
            soft_wr(v, soft_gpr_ids[i], g[i]);
        soft_wr(v, UC_X86_REG_RFLAGS, r->rflags | 2);
        return;
    }
    if (v->in_exit)
        soft_set_error("soft backend: KVM_SET_REGS moving RIP during an I/O or MMIO exit takes effect at the next block");
    const uint64_t g[16] = {r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rsp, r->rbp,
                            r->r8,  r->r9,  r->r10, r->r11, r->r12, r->r13, r->r14, r->r15};
    for (int i = 0; i < 16; i++)
        soft_wr(v, soft_gpr_ids[i], g[i]);
    soft_wr(v, UC_X86_REG_RIP, r->rip);
    uint64_t old = soft_rd(v, UC_X86_REG_RFLAGS);
    uint64_t fl = r->rflags | 2;
    soft_wr(v, UC_X86_REG_RFLAGS, fl);
    if ((old ^ fl) & (RFLAGS_TF | RFLAGS_VM | HF_IOPL_MASK)) {
        img_load(v);
        img_update_hflags(v, fl);
        img_commit(v);
        v->seg_check = true;
    }
}

static void soft_get_sregs(struct soft_vcpu *v, struct kvm_sregs *s)
{
    img_load(v);
    memset(s, 0, sizeof *s);
    struct kvm_segment *k[8] = {&s->es, &s->cs, &s->ss, &s->ds, &s->fs, &s->gs, &s->ldt, &s->tr};
    for (int i = 0; i < 8; i++)
        seg_to_kvm(img_seg(v, i), k[i]);
    s->gdt.base = img_seg(v, R_GDT)->base;
    s->gdt.limit = (uint16_t)img_seg(v, R_GDT)->limit;
    s->idt.base = img_seg(v, R_IDT)->base;
    s->idt.limit = (uint16_t)img_seg(v, R_IDT)->limit;
    s->cr0 = IMG_CR(v, 0);
    s->cr2 = IMG_CR(v, 2);
    s->cr3 = IMG_CR(v, 3);
    s->cr4 = IMG_CR(v, 4);
    s->cr8 = v->cr8;
    s->efer = img_u64(v, soft_layout.efer);
    s->apic_base = v->apic_base;
    if (v->irq_pending >= 0)
        s->interrupt_bitmap[v->irq_pending / 64] |= 1ull << (v->irq_pending % 64);
}

static void soft_set_sregs(struct soft_vcpu *v, const struct kvm_sregs *s)
{
    uint64_t rflags = soft_rd(v, UC_X86_REG_RFLAGS);
    img_load(v);
    const struct kvm_segment *k[8] = {&s->es, &s->cs, &s->ss, &s->ds, &s->fs, &s->gs, &s->ldt, &s->tr};
    for (int i = 0; i < 8; i++)
        seg_from_kvm(img_seg(v, i), k[i]);
    img_seg(v, R_GDT)->base = s->gdt.base;
    img_seg(v, R_GDT)->limit = s->gdt.limit;
    img_seg(v, R_IDT)->base = s->idt.base;
    img_seg(v, R_IDT)->limit = s->idt.limit;
    img_set_u64(v, soft_layout.cr + 0, s->cr0);
    img_set_u64(v, soft_layout.cr + 16, s->cr2);
    img_set_u64(v, soft_layout.cr + 24, s->cr3);
    img_set_u64(v, soft_layout.cr + 32, s->cr4);
    img_set_u64(v, soft_layout.efer, s->efer);
    img_update_hflags(v, rflags);
    img_store(v);
    /* Let the engine's own CR0/CR4 handlers recompute the derived bits (MP/EM/TS, OSFXSR, paging mode). */
    uint64_t cr4 = s->cr4;
    uc_reg_write(v->uc, UC_X86_REG_CR4, &cr4);
    img_load(v);
    img_set_u64(v, soft_layout.efer, s->efer);
    img_set_u64(v, soft_layout.cr + 0, s->cr0);
    img_update_hflags(v, rflags);
    img_store(v);
    v->cr8 = s->cr8;
    v->apic_base = s->apic_base;
    v->seg_check = true;
    int pending = -1;
    for (int i = 0; i < 256 && pending < 0; i++)
        if (s->interrupt_bitmap[i / 64] & (1ull << (i % 64)))
            pending = i;
    v->irq_pending = pending;
}

/*
 * The state KVM gives a new vCPU (kvm_vcpu_reset). init_event: an INIT (here
 * after a triple fault), which keeps the APIC base and CR0.CD/NW, and
 * RDX = the family/model/stepping (CPUID leaf 1 EAX) of the vCPU's CPUID table.
 */
static void soft_reset(struct soft_vcpu *v, bool init_event)
{
    uint64_t rdx = 0x600;
    for (int i = 0; i < v->ncpuid; i++)
        if (v->cpuid[i].function == 1)
            rdx = v->cpuid[i].eax;
    struct kvm_regs r = {.rip = 0xfff0, .rflags = 2, .rdx = rdx};
    struct kvm_segment data = {.limit = 0xffff, .type = 3, .present = 1, .s = 1};
    struct kvm_sregs s = {
        .cs = {.selector = 0xf000, .base = 0xffff0000, .limit = 0xffff, .type = 0xb, .present = 1, .s = 1},
        .ds = data, .es = data, .fs = data, .gs = data, .ss = data,
        .ldt = {.limit = 0xffff, .type = 2, .present = 1},
        .tr = {.limit = 0xffff, .type = 0xb, .present = 1},
        .gdt = {.limit = 0xffff},
        .idt = {.limit = 0xffff},
        .cr0 = 0x60000010,
        .apic_base = 0xfee00000 | 0x800 | (v->id == 0 ? 0x100 : 0),
    };
    if (init_event) {
        img_load(v);
        s.cr0 = 0x10 | (IMG_CR(v, 0) & 0x60000000); /* ET, CD and NW as they were */
        s.apic_base = v->apic_base;
    }
    v->irq_pending = -1;
    soft_set_sregs(v, &s);
    soft_set_regs(v, &r);
    img_load(v);
    img_set_u32(v, soft_layout.old_exception, 0xffffffffu); /* no exception in progress */
    img_commit(v);
    v->irq_pending = -1;
    v->kvm_system_time = 0; /* kvmclock_reset */
}


/*
 * Engines are pooled, not closed: Unicorn 2.1 leaks 32 bytes per closed engine
 * that had hooks or contexts, which the sanitizer's leak check would report.
 * A pooled engine keeps its hooks (they find the current vCPU through the
 * engine) and gets back its pristine CPU state, no RAM and no translations of
 * it; its MMIO gaps stay mapped for the next VM (see soft_map_memory).
 */
static pthread_mutex_t soft_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct soft_engine *soft_pool;

/*
 * Bytes of translated code per engine: SOFT_TCG_BUFFER_SIZE, or
 * $MINIVMM_SOFT_TCG_MIB MiB (1 to 1024) where set, which the robustness test
 * uses to make every looping guest fill and flush the buffer many times.
 */
static uint32_t soft_tcg_buffer_size(void)
{
    const char *s = getenv("MINIVMM_SOFT_TCG_MIB");
    char *end = "";
    unsigned long mib = s && *s ? strtoul(s, &end, 10) : 0;
    if (mib >= 1 && mib <= 1024 && *end == '\0')
        return (uint32_t)(mib << 20);
    return SOFT_TCG_BUFFER_SIZE;
}

static struct soft_engine *soft_engine_get(void)
{
    pthread_mutex_lock(&soft_pool_lock);
    struct soft_engine *e = soft_pool;
    if (e)
        soft_pool = e->next;
    pthread_mutex_unlock(&soft_pool_lock);
    if (e)
        return e;
    e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    if (uc_open(UC_ARCH_X86, UC_MODE_64, &e->uc) != UC_ERR_OK) {
        free(e);
        return NULL;
    }
    uc_ctl_set_tcg_buffer_size(e->uc, soft_tcg_buffer_size());
    uc_hook h;
    /*
     * The flush right after initialisation arms the code buffer. Unicorn 2.1.1
     * sets up the buffer as one TCG region but never allocates it at start
     * (region.current stays 0), so the first time the buffer fills, tcg_tb_alloc
     * "allocates" region 0 again: code_gen_ptr rewinds and the buffer is zeroed
     * WITHOUT tb_flush, while the hash table, the page lists, the jump cache and
     * chained jumps still point at the old blocks. The next store to a code page
     * walks a page list into new code (SIGBUS/SIGSEGV), and unmapping RAM hits
     * g_assert_not_reached in tb_page_remove (SIGABRT). After any tb_flush,
     * region.current is 1 and every later overflow goes through tb_flush, which
     * resets all of those. It costs one zeroing of the buffer, once per engine.
     */
    bool ok = uc_context_alloc(e->uc, &e->ctx) == UC_ERR_OK && uc_context_alloc(e->uc, &e->pristine) == UC_ERR_OK &&
              uc_context_alloc(e->uc, &e->saved) == UC_ERR_OK &&
              uc_ctl_flush_tb(e->uc) == UC_ERR_OK &&
              uc_ctl_exits_enable(e->uc) == UC_ERR_OK && uc_context_save(e->uc, e->pristine) == UC_ERR_OK &&
              uc_hook_add(e->uc, &h, UC_HOOK_INSN, (void *)soft_hook_in, e, 1, 0, UC_X86_INS_IN) == UC_ERR_OK &&
              uc_hook_add(e->uc, &h, UC_HOOK_INSN, (void *)soft_hook_out, e, 1, 0, UC_X86_INS_OUT) == UC_ERR_OK &&
              uc_hook_add(e->uc, &h, UC_HOOK_INSN, (void *)soft_hook_cpuid, e, 1, 0, UC_X86_INS_CPUID) == UC_ERR_OK &&
              uc_hook_add(e->uc, &h, UC_HOOK_INSN_INVALID, (void *)soft_hook_invalid, e, 1, 0) == UC_ERR_OK &&
              uc_hook_add(e->uc, &h, UC_HOOK_INTR, (void *)soft_hook_intr, e, 1, 0) == UC_ERR_OK &&
              uc_hook_add(e->uc, &h, UC_HOOK_BLOCK, (void *)soft_hook_block, e, 1, 0) == UC_ERR_OK;
    if (!ok) {
        /* Keep it reachable rather than closing it (see above); it is unusable, so never handed out. */
        static struct soft_engine *volatile broken;
        e->next = broken;
        broken = e;
        return NULL;
    }
    return e;
}

static void soft_engine_put(struct soft_engine *e)
{
    /*
     * The next VM must not run this one's code: drop the translations of its
     * RAM, not all of them. A full flush (uc_ctl_flush_tb) zeroes the whole
     * code buffer; dropping a range costs what the range held.
     */
    uc_context_restore(e->uc, e->pristine);
    uc_ctl_flush_tlb(e->uc);
    soft_unmap_ram(e);
    uc_ctl_flush_tlb(e->uc);
    e->v = NULL;
    pthread_mutex_lock(&soft_pool_lock);
    e->next = soft_pool;
    soft_pool = e;
    pthread_mutex_unlock(&soft_pool_lock);
}

int soft_vcpu_create(struct soft_vm *vm, int id, struct soft_vcpu **out)
{
    struct soft_vcpu *v = calloc(1, sizeof *v);
    if (!v)
        return -ENOMEM;
    v->vm = vm;
    v->id = id;
    v->irq_pending = -1;
    v->fd = memfd_create("kvm-vcpu", MFD_CLOEXEC);
    int r = v->fd < 0 ? -errno : 0;
    if (!r && ftruncate(v->fd, SOFT_RUN_SIZE) != 0)
        r = -errno;
    if (!r) {
        void *p = mmap(NULL, SOFT_RUN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
        if (p == MAP_FAILED)
            r = -errno;
        else
            v->run = p;
    }
    if (!r) {
        v->engine = soft_engine_get();
        if (!v->engine)
            r = -ENOMEM;
    }
    if (!r) {
        v->engine->v = v;
        v->uc = v->engine->uc;
        v->ctx = v->engine->ctx;
        v->img_size = uc_context_size(v->uc) - soft_layout.data;
        v->img = aligned_alloc(64, (v->img_size + 63) & ~(size_t)63);
        if (!v->img)
            r = -ENOMEM;
    }
    if (!r)
        r = soft_coro_init(&v->co, 1u << 20, soft_co_main, v);
    if (r) {
        soft_vcpu_destroy(v);
        return r;
    }
    v->co_started = true;
    v->ncpuid = 0; /* as KVM: CPUID answers zeros until KVM_SET_CPUID2 */
    v->run->io.data_offset = SOFT_PIO_OFFSET;
    soft_reset(v, false);
    /* Guest TSC starts near 0 at creation, as KVM's does. */
    soft_set_tsc_offset(v, (uint64_t)0 - vm->tsc_at_create);
    *out = v;
    return 0;
}

void soft_vcpu_destroy(struct soft_vcpu *v)
{
    if (v->co_started && !v->co.finished && v->co.host_sp) {
        /* Let a suspended run unwind out of the engine before the engine goes away. */
        v->cancel = true;
        soft_coro_resume(&v->co);
    }
    if (v->co_started)
        soft_coro_destroy(&v->co);
    if (v->engine) {
        for (int i = 0; i < v->nhooked; i++)
            uc_hook_del(v->uc, v->hooked_h[i]);
        if (v->limits_on)
            uc_hook_del(v->uc, v->limit_hook);
        soft_engine_put(v->engine);
    }
    free(v->img);
    if (v->run)
        munmap(v->run, SOFT_RUN_SIZE);
    if (v->fd >= 0)
        close(v->fd);
    free(v);
}


static int soft_vcpu_run(struct soft_vcpu *v)
{
    struct kvm_run *run = v->run;
    if (__atomic_load_n(&run->immediate_exit, __ATOMIC_RELAXED))
        return -EINTR; /* as KVM: exit_reason is left as it was */
    pthread_mutex_lock(&v->vm->lock);
    soft_coro_resume(&v->co);
    pthread_mutex_unlock(&v->vm->lock);
    return v->co_ret;
}

static int soft_get_msrs(struct soft_vcpu *v, struct kvm_msrs *m, bool set)
{
    if (m->nmsrs >= 256)
        return -E2BIG;
    uint32_t i;
    for (i = 0; i < m->nmsrs; i++) {
        struct kvm_msr_entry *e = &m->entries[i];
        uint64_t val = e->data;
        if (set ? soft_msr_write(v, e->index, val, false) : soft_msr_read(v, e->index, &val)) {
            e->data = val;
            continue;
        }
        bool engine = e->index == 0xc0000080 || (e->index >= 0xc0000081 && e->index <= 0xc0000084) ||
                      (e->index >= 0xc0000100 && e->index <= 0xc0000102) || (e->index >= 0x174 && e->index <= 0x176);
        if (!engine)
            break;
        uc_x86_msr msr = {.rid = e->index, .value = e->data};
        if (set) {
            if (e->index == 0xc0000080) {
                img_load(v);
                img_set_u64(v, soft_layout.efer, e->data);
                img_update_hflags(v, soft_rd(v, UC_X86_REG_RFLAGS));
                img_store(v);
                v->seg_check = true;
            } else if (e->index == 0xc0000100 || e->index == 0xc0000101) {
                soft_wr(v, e->index == 0xc0000100 ? UC_X86_REG_FS_BASE : UC_X86_REG_GS_BASE, e->data);
            } else {
                uc_reg_write(v->uc, UC_X86_REG_MSR, &msr);
            }
        } else {
            uc_reg_read(v->uc, UC_X86_REG_MSR, &msr);
            e->data = msr.value;
        }
    }
    return (int)i;
}

int soft_vcpu_ioctl(struct soft_vcpu *v, unsigned long req, unsigned long arg)
{
    void *p = (void *)arg;
    switch (req) {
    case KVM_RUN:
    case KVM_GET_TSC_KHZ:
    case KVM_SET_GUEST_DEBUG:
        break;
    case KVM_GET_REGS:
    case KVM_SET_REGS:
    case KVM_GET_SREGS:
    case KVM_SET_SREGS:
    case KVM_GET_MSRS:
    case KVM_SET_MSRS:
    case KVM_SET_CPUID2:
    case KVM_GET_CPUID2:
    case KVM_INTERRUPT:
        if (!p)
            return -EFAULT;
        break;
    default:
        soft_set_error("soft backend: vCPU ioctl 0x%lx is not supported", req);
        return -EINVAL; /* x86 KVM's answer to an unknown vCPU ioctl */
    }
    switch (req) {
    case KVM_RUN:
        return soft_vcpu_run(v);
    case KVM_GET_REGS:
        soft_get_regs(v, p);
        return 0;
    case KVM_SET_REGS:
        soft_set_regs(v, p);
        return 0;
    case KVM_GET_SREGS:
        soft_get_sregs(v, p);
        return 0;
    case KVM_SET_SREGS:
        soft_set_sregs(v, p);
        return 0;
    case KVM_GET_MSRS:
        return soft_get_msrs(v, p, false);
    case KVM_SET_MSRS:
        return soft_get_msrs(v, p, true);
    case KVM_SET_CPUID2: {
        struct kvm_cpuid2 *c = p;
        if (c->nent > 256)
            return -E2BIG;
        if (c->nent > SOFT_MAX_CPUID) {
            soft_set_error("soft backend: at most %d CPUID entries", SOFT_MAX_CPUID);
            return -E2BIG;
        }
        memcpy(v->cpuid, c->entries, c->nent * sizeof c->entries[0]);
        v->ncpuid = (int)c->nent;
        return 0;
    }
    case KVM_GET_CPUID2: {
        struct kvm_cpuid2 *c = p;
        if (c->nent < (uint32_t)v->ncpuid)
            return -E2BIG;
        memcpy(c->entries, v->cpuid, (size_t)v->ncpuid * sizeof c->entries[0]);
        c->nent = (uint32_t)v->ncpuid;
        return 0;
    }
    case KVM_INTERRUPT: {
        const struct kvm_interrupt *irq = p;
        if (irq->irq >= 256)
            return -EINVAL;
        v->irq_pending = (int)irq->irq; /* as KVM without an in-kernel irqchip: replaces a queued one */
        return 0;
    }
    case KVM_SET_GUEST_DEBUG: {
        const struct kvm_guest_debug *d = p;
        if (d && d->control == 0)
            return 0;
        soft_set_error("soft backend: KVM_SET_GUEST_DEBUG is not supported");
        return -EINVAL;
    }
    case KVM_GET_TSC_KHZ:
        return (int)soft_tsc_khz();
    default:
        soft_set_error("soft backend: vCPU ioctl 0x%lx is not supported", req);
        return -ENOTTY;
    }
}
