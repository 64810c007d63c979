/*
 * The soft backend's Unicorn workarounds, end to end on small guests: translation blocks bounded so that no run
 * of temporary-leaking instructions crashes the engine (soft_uc_tb.c), RIP right after a stop at a block
 * (soft_run.c, soft_block_stop), and code the VMM rewrites between two runs seen by the next run (soft_uc_scan.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lab_parts.h"
#include "mvm.h"
#include "soft_priv.h"

#define RAM (2u << 20)

struct vm1 {
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    FILE *out;
};

/* A VM on the soft backend with RAM at 0, the standard devices (console to a temporary file) and one vCPU. */
static void vm1_create(struct vm1 *g)
{
    const struct mvm_backend *soft;
    memset(g, 0, sizeof(*g));
    assert_int_equal(mvm_backend_pick("soft", &soft), 0);
    g->out = tmpfile();
    assert_non_null(g->out);
    assert_int_equal(vm_create(soft, &g->vm), 0);
    assert_int_equal(vm_mem_add(g->vm, 0, RAM, 0), 0);
    assert_int_equal(vm_devices_add_standard(g->vm, g->out), 0);
    assert_int_equal(vcpu_create(g->vm, 0, &g->vcpu), 0);
}

static void vm1_destroy(struct vm1 *g)
{
    vm_destroy(g->vm);
    fclose(g->out);
}

/* The vCPU in mode (0 real, 1 protected, 2 long) at MVM_BOOT_LOAD_GPA, as the CLI sets it up. */
static int vm1_setup(struct vm1 *g, int mode)
{
    struct lab3_pt_pool pool = {.base_gpa = MVM_BOOT_PT_POOL_GPA, .size = MVM_BOOT_PT_POOL_SIZE};
    uint64_t cr3;
    int rc;
    if (mode == 0)
        return lab1_vcpu_setup_real(g->vcpu, MVM_BOOT_LOAD_GPA);
    if (mode == 1)
        return lab2_vcpu_setup_protected(g->vcpu, MVM_BOOT_LOAD_GPA);
    rc = lab3_page_tables_build(g->vm, &pool, &cr3);
    return rc < 0 ? rc : lab3_vcpu_setup_long(g->vcpu, MVM_BOOT_LOAD_GPA, cr3);
}

/* Runs image in mode in a child process: its exit status, or 128 + the signal that killed it. */
static int run_in_child(const uint8_t *image, size_t len, int mode)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct vm1 g;
        struct mvm_run_opts o = {.max_exits = 100, .max_ms = 500};
        struct mvm_run_result r;
        vm1_create(&g);
        if (vm_write(g.vm, MVM_BOOT_LOAD_GPA, image, len) < 0 || vm1_setup(&g, mode) < 0)
            _exit(2);
        vcpu_run(g.vcpu, &o, &r);
        _exit(r.stop == MVM_STOP_ERROR ? 3 : 0);
    }
    int st = 0;
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/*
 * 240 x `fadd st0, st0` or 500 x `mov eax, cr0` in one block used up Unicorn 2.1.1's 512 TCG temporaries and
 * crashed it (SIGSEGV in tcg_emit_op); RAM full of 0xd4 (`aam`) too. Every mode.
 */
static void long_blocks_translate(void **state)
{
    (void)state;
    static uint8_t image[0x8000];
    static const struct {
        const char *name;
        uint8_t insn[3];
        size_t len, count;
    } cases[] = {
        {"fadd st0, st0", {0xd8, 0xc0}, 2, 240},      {"fadd st0, st0 (fill)", {0xd8, 0xc0}, 2, 0x3000},
        {"mov eax, cr0", {0x0f, 0x20, 0xc0}, 3, 500}, {"mov eax, cr0 (fill)", {0x0f, 0x20, 0xc0}, 3, 0x2000},
        {"aam 0xd4 (fill)", {0xd4}, 1, 0x6000},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t n = 0;
        for (size_t i = 0; i < cases[c].count; i++, n += cases[c].len)
            memcpy(image + n, cases[c].insn, cases[c].len);
        image[n++] = 0xf4; /* hlt */
        for (int mode = 0; mode < 3; mode++) {
            int st = run_in_child(image, n, mode);
            if (st != 0)
                fail_msg("%s x %zu in mode %d: the VMM %s %d", cases[c].name, cases[c].count, mode,
                         st > 128 ? "died of signal" : "failed, status", st > 128 ? st - 128 : st);
        }
    }
    /* The bound is in force: the backend's start-up probe translated code through the program's replacement. */
    struct vm1 g;
    vm1_create(&g);
    assert_true(soft_tb_bound_active());
    vm1_destroy(&g);
}

/*
 * A stop at a block (a pause: KVM_RUN interrupted) leaves RIP at that block. With a code hook in the engine
 * (the rdtsc here gets one), Unicorn 2.1.1 left RIP where it was last stored, blocks behind the registers.
 * The loop keeps ax == bx at L0 and ax == bx + 1 at L1; after each interruption the state must be one of the two.
 */
static void pause_keeps_rip(void **state)
{
    (void)state;
    /* 0x1000: rdtsc; xor ax,ax; xor bx,bx; L0 (0x1006): inc ax; jmp L1; L1 (0x1009): inc bx; jmp L0 */
    static const uint8_t code[] = {0x0f, 0x31, 0x31, 0xc0, 0x31, 0xdb, 0x40, 0xeb, 0x00, 0x43, 0xeb, 0xfa};
    struct vm1 g;
    struct kvm_regs regs;
    vm1_create(&g);
    assert_int_equal(vm_write(g.vm, MVM_BOOT_LOAD_GPA, code, sizeof(code)), 0);
    assert_int_equal(vm1_setup(&g, 0), 0);
    for (int i = 0; i < 40; i++) {
        struct mvm_run_opts o = {.max_ms = 2 + i % 5};
        struct mvm_run_result r;
        vcpu_run(g.vcpu, &o, &r);
        assert_int_equal(r.stop, MVM_STOP_TIME_LIMIT);
        assert_int_equal(vcpu_regs_get(g.vcpu, &regs), 0);
        uint16_t ax = (uint16_t)regs.rax, bx = (uint16_t)regs.rbx;
        if (!((regs.rip == 0x1006 && ax == bx) || (regs.rip == 0x1009 && ax == (uint16_t)(bx + 1))))
            fail_msg("stop %d: rip 0x%llx with ax %u, bx %u: RIP does not match the registers", i,
                     (unsigned long long)regs.rip, ax, bx);
    }
    vm1_destroy(&g);
}

/* One real-mode run to its hlt: the number of exits, and AL at the end. */
static uint64_t run_to_hlt(struct vm1 *g, uint8_t *al)
{
    struct mvm_run_opts o = {.max_exits = 100, .max_ms = 2000};
    struct mvm_run_result r;
    struct kvm_regs regs;
    assert_int_equal(lab1_vcpu_setup_real(g->vcpu, MVM_BOOT_LOAD_GPA), 0);
    vcpu_run(g->vcpu, &o, &r);
    if (r.stop != MVM_STOP_HLT)
        fail_msg("expected a hlt, got stop %d: %s", r.stop, r.detail);
    assert_int_equal(vcpu_regs_get(g->vcpu, &regs), 0);
    *al = (uint8_t)regs.rax;
    return r.exits;
}

/*
 * The VMM rewrites the guest's code through its own mapping between two runs: as on KVM, the next run executes
 * the new code (Unicorn kept the old translation: one OUT and "the engine stopped for no known reason").
 */
static void rewritten_code_runs(void **state)
{
    (void)state;
    static const uint8_t a[] = {0xb0, 'A', 0xe6, 0xe9, 0xf4};                        /* out 'A'; hlt */
    static const uint8_t b[] = {0xb0, 'B', 0xe6, 0xe9, 0xb0, 'C', 0xe6, 0xe9, 0xf4}; /* out 'B', 'C'; hlt */
    struct vm1 g;
    uint8_t al;
    vm1_create(&g);
    for (int i = 0; i < 4; i++) {
        uint8_t *ram = vm_gpa_to_hva(g.vm, MVM_BOOT_LOAD_GPA, sizeof(b));
        assert_non_null(ram);
        memset(ram, 0, sizeof(b));
        memcpy(ram, (i & 1) ? b : a, (i & 1) ? sizeof(b) : sizeof(a));
        uint64_t exits = run_to_hlt(&g, &al);
        assert_int_equal(exits, (i & 1) ? 3 : 2);
        assert_int_equal(al, (i & 1) ? 'C' : 'A');
    }
    /* A rewrite in the middle of a loop the guest left at a hlt: the byte it prints changes. */
    static const uint8_t loop[] = {0xb0, 'x', 0xe6, 0xe9, 0xf4, 0xeb, 0xf9}; /* L: out 'x'; hlt; jmp L */
    struct mvm_run_opts o = {.max_exits = 2, .max_ms = 2000};
    struct mvm_run_result r;
    struct kvm_regs regs;
    assert_int_equal(vm_write(g.vm, MVM_BOOT_LOAD_GPA, loop, sizeof(loop)), 0);
    assert_int_equal(lab1_vcpu_setup_real(g.vcpu, MVM_BOOT_LOAD_GPA), 0);
    vcpu_run(g.vcpu, &o, &r); /* out, hlt */
    for (char ch = 'a'; ch < 'e'; ch++) {
        uint8_t *imm = vm_gpa_to_hva(g.vm, MVM_BOOT_LOAD_GPA + 1, 1);
        *imm = (uint8_t)ch;
        o.max_exits = 2;
        vcpu_run(g.vcpu, &o, &r); /* jmp, out, hlt */
        assert_int_equal(vcpu_regs_get(g.vcpu, &regs), 0);
        assert_int_equal((uint8_t)regs.rax, (uint8_t)ch);
    }
    vm1_destroy(&g);
}

/*
 * KVM's INIT after a triple fault (kvm_vcpu_reset): RDX holds CPUID leaf 1's EAX from the table the VMM
 * installed, here a made-up signature; and KVM_SET_SREGS refuses a CR4 bit KVM does not allow (-EINVAL).
 */
static void shutdown_reset_signature(void **state)
{
    (void)state;
    /* protected mode: lidt [0x100c] (limit 0); int3 -> #GP -> #DF -> shutdown */
    static const uint8_t code[] = {0x0f, 0x01, 0x1d, 0x0c, 0x10, 0x00, 0x00, 0xcc, 0xf4,
                                   0x90, 0x90, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    struct vm1 g;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    vm1_create(&g);
    struct {
        struct kvm_cpuid2 c;
        struct kvm_cpuid_entry2 e[64];
    } t = {.c.nent = 64};
    assert_int_equal(vcpu_ioctl(g.vcpu, KVM_GET_CPUID2, &t, "KVM_GET_CPUID2"), 0);
    bool found = false;
    for (uint32_t i = 0; i < t.c.nent; i++)
        if (t.e[i].function == 1) {
            t.e[i].eax = 0x000a0f12; /* family 0x19 + 0xa, model 0x01 .. */
            found = true;
        }
    assert_true(found);
    assert_int_equal(vcpu_ioctl(g.vcpu, KVM_SET_CPUID2, &t, "KVM_SET_CPUID2"), 0);
    assert_int_equal(vm_write(g.vm, MVM_BOOT_LOAD_GPA, code, sizeof(code)), 0);
    assert_int_equal(vm1_setup(&g, 1), 0);
    struct mvm_run_opts o = {.max_exits = 10, .max_ms = 2000};
    struct mvm_run_result r;
    vcpu_run(g.vcpu, &o, &r);
    assert_int_equal(r.stop, MVM_STOP_SHUTDOWN);
    assert_int_equal(vcpu_regs_get(g.vcpu, &regs), 0);
    assert_int_equal(regs.rip, 0xfff0);
    assert_int_equal(regs.rdx, 0x000a0f12);
    assert_int_equal(vcpu_ioctl(g.vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS"), 0);
    sregs.cr4 |= 1u << 15; /* reserved */
    assert_true(vcpu_ioctl(g.vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS") < 0);
    vm1_destroy(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shutdown_reset_signature),
        cmocka_unit_test(long_blocks_translate),
        cmocka_unit_test(pause_keeps_rip),
        cmocka_unit_test(rewritten_code_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
