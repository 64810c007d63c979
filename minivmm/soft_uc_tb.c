/*
 * Unicorn workaround: at most SOFT_TB_MAX_INSNS guest instructions per translation block.
 *
 * Unicorn 2.1.1 (QEMU 5) has a fixed table of TCG_MAX_TEMPS (512) temporaries per translation, checked only in
 * debug builds (tcg_temp_alloc). Some x86 translators leak temporaries (tcg_const_* never freed): two per x87
 * `fadd st0, st(i)`, one per `mov r, crN` or `aam`. A straight run of enough of them in one block (a block may
 * hold 512 instructions) writes temporary 512 over the op list's head that follows the table in TCGContext, and
 * the next tcg_emit_op stores through a NULL pointer: 240 x `d8 c0` (or 500 x `0f 20 c0`) then hlt crashed the
 * VMM with SIGSEGV. No Unicorn control bounds a block, and a block hook or a code hook placed by scanning runs
 * after translation, too late.
 *
 * Unicorn's tb_gen_code calls the x86 translator, gen_intermediate_code_x86_64(cpu, tb, max_insns), through the
 * PLT of libunicorn.so, so this definition in the program takes its place and passes the real one a smaller
 * max_insns. A block then ends after SOFT_TB_MAX_INSNS instructions and chains to the next, as QEMU ends one at
 * 512 (guest-invisible). 64 instructions keep a translation under about 200 temporaries even at 2 leaked per
 * instruction (the most a sweep of every one- and two-byte opcode with prefixes and ModRM forms found), so an
 * instruction would have to leak 7 to overflow. Straight-line code longer than 64 instructions is rare; its
 * cost is one more block hook call per 64 instructions.
 *
 * The same place ends a block early where the in-kernel irqchip needs a boundary (soft_tb_current, soft_priv.h):
 * after the first instruction that may make an interrupt deliverable. It reads the block's code itself (the
 * engine's TranslationBlock starts with its linear pc, CS base and hidden flags, as QEMU 5 lays it out), decodes
 * it, and passes a smaller max_insns; that costs one decode when a block is translated.
 */
#include "soft_decode.h"
#include "soft_irqchip.h"
#include "soft_uc_state.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SOFT_TB_MAX_INSNS /* a build may set another bound, to measure */
#define SOFT_TB_MAX_INSNS 64
#endif

typedef void soft_gen_code_fn(void *cpu, void *tb, int max_insns);

/* Unicorn's own translator entry (the next definition after this program's). */
static soft_gen_code_fn *soft_gen_code_real;
static pthread_once_t soft_gen_code_once = PTHREAD_ONCE_INIT;
static unsigned long soft_gen_code_calls;
/* The vCPU whose engine runs on this thread (soft_tb_current). */
static __thread struct soft_vcpu *soft_tb_vcpu;

static void soft_gen_code_find(void)
{
    soft_gen_code_real = (soft_gen_code_fn *)dlsym(RTLD_NEXT, "gen_intermediate_code_x86_64");
}

/* Appends the guest's code at linear address lin (through pg) to buf, up to end; returns the new length. */
static size_t soft_tb_fetch(struct soft_vcpu *v, const struct soft_paging *pg, uint64_t lin, uint8_t *buf, size_t have,
                            size_t end)
{
    while (have < end) {
        struct soft_walk w = soft_mmu_walk(v->vm, pg, lin + have, false, false);
        size_t chunk = SOFT_PAGE - ((lin + have) & (SOFT_PAGE - 1));
        if (chunk > end - have)
            chunk = end - have;
        const uint8_t *h = w.fault || w.bad ? NULL : soft_gpa_to_hva(v->vm, w.gpa, chunk);
        if (!h)
            break;
        memcpy(buf + have, h, chunk);
        have += chunk;
    }
    return have;
}

/*
 * How many instructions the block at linear address pc (hidden flags hf) may hold, at most max: up to and including
 * the first that may make an interrupt deliverable, looking no further than where the engine ends it anyway. Its code
 * is read through the guest's page tables as they are, 128 bytes at a time.
 */
static int soft_tb_insns(struct soft_vcpu *v, uint64_t pc, uint32_t hf, int max)
{
    /* Only EFER.LMA matters to the walk, and the hidden flags hold it. */
    struct soft_paging pg = {soft_rd(v, UC_X86_REG_CR0), soft_rd(v, UC_X86_REG_CR3), soft_rd(v, UC_X86_REG_CR4),
                             (hf & HF_LMA_MASK) ? X86_EFER_LMA | X86_EFER_LME : 0};
    unsigned code = (hf & HF_CS64_MASK) ? 8 : (hf & HF_CS32_MASK) ? 4 : 2;
    uint8_t buf[SOFT_TB_MAX_INSNS * 15 + 128];
    size_t have = 0, i = 0;
    for (int k = 0; k + 1 < max; k++) {
        if (have - i < 15) {
            size_t had = have;
            have = soft_tb_fetch(v, &pg, pc, buf, have, have + 128);
            if (have == had && have == i)
                break;
        }
        int io;
        unsigned len = soft_insn_len(buf + i, have - i, code, &io);
        bool ends;
        if (len == 0)
            break;
        if (soft_insn_may_unmask(buf + i, have - i, code, v->tb_cut_mem, &ends))
            return k + 1;
        if (ends)
            break; /* the block ends here anyway */
        i += len;
    }
    return max;
}

/* Takes the place of Unicorn's (target/i386/translate.c): the same arguments, with max_insns bounded. */
__attribute__((visibility("default"))) void gen_intermediate_code_x86_64(void *cpu, void *tb, int max_insns);

void gen_intermediate_code_x86_64(void *cpu, void *tb, int max_insns)
{
    pthread_once(&soft_gen_code_once, soft_gen_code_find);
    if (!soft_gen_code_real) {
        fprintf(stderr, "soft backend: Unicorn's gen_intermediate_code_x86_64 not found\n");
        abort();
    }
    __atomic_fetch_add(&soft_gen_code_calls, 1, __ATOMIC_RELAXED);
    int n = max_insns < 1 || max_insns > SOFT_TB_MAX_INSNS ? SOFT_TB_MAX_INSNS : max_insns;
    struct soft_vcpu *v = soft_tb_vcpu;
    if (v && v->kio && n > 1 && soft_irqchip_in_kernel(v)) {
        struct {
            uint64_t pc, cs_base;
            uint32_t flags;
        } head;
        memcpy(&head, tb, sizeof head);
        n = soft_tb_insns(v, head.pc, head.flags, n);
    }
    soft_gen_code_real(cpu, tb, n);
}

void soft_tb_current(struct soft_vcpu *v)
{
    soft_tb_vcpu = v;
}

bool soft_tb_bound_active(void)
{
    return __atomic_load_n(&soft_gen_code_calls, __ATOMIC_RELAXED) > 0;
}
