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
 */
#include "soft_priv.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef SOFT_TB_MAX_INSNS /* a build may set another bound, to measure */
#define SOFT_TB_MAX_INSNS 64
#endif

typedef void soft_gen_code_fn(void *cpu, void *tb, int max_insns);

/* Unicorn's own translator entry (the next definition after this program's). */
static soft_gen_code_fn *soft_gen_code_real;
static pthread_once_t soft_gen_code_once = PTHREAD_ONCE_INIT;
static unsigned long soft_gen_code_calls;

static void soft_gen_code_find(void)
{
    soft_gen_code_real = (soft_gen_code_fn *)dlsym(RTLD_NEXT, "gen_intermediate_code_x86_64");
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
    soft_gen_code_real(cpu, tb, max_insns < 1 || max_insns > SOFT_TB_MAX_INSNS ? SOFT_TB_MAX_INSNS : max_insns);
}

bool soft_tb_bound_active(void)
{
    return __atomic_load_n(&soft_gen_code_calls, __ATOMIC_RELAXED) > 0;
}
