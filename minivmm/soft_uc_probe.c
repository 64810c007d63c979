/*
 * Unicorn workaround: start-up probes of the Unicorn build. The layout of the CPU state image inside a saved
 * context (so hidden segment state can be set, soft_uc_state.h), and the frame of the 8-byte MMIO load helper
 * (so an 8-byte MMIO read split into halves is reported as one, soft_io.c).
 */
#include "soft_uc_state.h"

#include <errno.h>
#include <execinfo.h>
#include <stdio.h>
#include <string.h>

struct soft_layout soft_layout;
int soft_ldq_frame = -1;
void *soft_ldq_addr;

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

/*
 * Write known values through the API, save a context and find them in the
 * image; then check the offsets that follow from them by running code: a
 * #GP's error code and "exception in progress", and the TSC offset.
 */
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
    if ((u & (X86_EFER_LMA | X86_EFER_LME)) != (X86_EFER_LMA | X86_EFER_LME) || u > 0xffff)
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
    if (soft_probe_intno != X86_VEC_GP || ec != 0x28 || old != X86_VEC_GP)
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
    /* The probe translated code: through soft_uc_tb.c's replacement, unless this Unicorn calls its own directly. */
    if (!soft_tb_bound_active())
        fprintf(stderr, "minivmm: soft backend: this Unicorn's x86 translator could not be replaced: translation "
                        "blocks are not bounded, and long runs of some instructions crash the engine\n");
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
