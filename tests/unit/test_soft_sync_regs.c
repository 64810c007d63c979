/*
 * The soft backend's run page through KVM's ioctls, as KVM 6.1 treats it: KVM_CAP_SYNC_REGS (kvm_run's s.regs,
 * x86.c's sync_regs and store_regs, with their EINVALs), a rep ins whose RCX the VMM changes during the exit
 * (the batch sized again, nothing of it left for the next IN), and a vCPU closed in an exit after the VMM
 * deleted and unmapped the guest's memory (the engine must not touch it).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <linux/kvm.h>

#include "backend.h"
#include "soft_test_vm.h"

#define GUEST_MEM (1u << 20)
#define CODE_GPA  0x1000u

static const struct mvm_backend *be = &mvm_backend_soft;

/* A real-mode vCPU at CODE_GPA (CS base 0) running code, with GUEST_MEM of RAM at 0. */
static void guest_vm_create(struct soft_test_vm *g, const uint8_t *code, size_t len)
{
    soft_test_vm_open(be, g, GUEST_MEM);
    memcpy(g->mem + CODE_GPA, code, len);
    soft_test_vcpu_open(be, g);
    struct kvm_sregs s;
    assert_int_equal(be->ioctl(g->vcpu, KVM_GET_SREGS, (unsigned long)&s), 0);
    s.cs.selector = 0;
    s.cs.base = 0;
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_SREGS, (unsigned long)&s), 0);
    struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2};
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_REGS, (unsigned long)&regs), 0);
}

static void guest_vm_destroy(struct soft_test_vm *g)
{
    soft_test_vm_close(be, g);
}

static struct kvm_regs regs_get(struct soft_test_vm *g)
{
    struct kvm_regs r;
    assert_int_equal(be->ioctl(g->vcpu, KVM_GET_REGS, (unsigned long)&r), 0);
    return r;
}

/* 1: in al, 0x80; add bx, 1; jmp 1b (sync_regs_test's guest, in real mode). */
static const uint8_t loop_guest[] = {
    0xe4, 0x80,       /* in al, 0x80 */
    0x83, 0xc3, 0x01, /* add bx, 1 */
    0xeb, 0xf9,       /* jmp 1b */
};

/* KVM_RUN to the loop's next IN exit. */
static void run_to_in(struct soft_test_vm *g)
{
    assert_int_equal(be->ioctl(g->vcpu, KVM_RUN, 0), 0);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_IO);
    assert_int_equal(g->run->io.port, 0x80);
}

static void sync_regs_cap_and_einval(void **state)
{
    (void)state;
    struct soft_test_vm g;
    guest_vm_create(&g, loop_guest, sizeof loop_guest);
    assert_int_equal(be->ioctl(g.sys, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS), KVM_SYNC_X86_VALID_FIELDS);
    /* A bit beyond KVM_SYNC_X86_VALID_FIELDS in either field: KVM_RUN fails before running. */
    g.run->kvm_valid_regs = 0x80000000u;
    assert_int_equal(be->ioctl(g.vcpu, KVM_RUN, 0), -EINVAL);
    g.run->kvm_valid_regs = 0;
    g.run->kvm_dirty_regs = 0x80000000u | KVM_SYNC_X86_REGS;
    g.run->s.regs.regs.rbx = 0x5555;
    assert_int_equal(be->ioctl(g.vcpu, KVM_RUN, 0), -EINVAL);
    assert_int_equal(g.run->kvm_dirty_regs, 0x80000000u | KVM_SYNC_X86_REGS); /* nothing was loaded */
    assert_int_not_equal(regs_get(&g).rbx, 0x5555);
    /* The valid sets are still stored on the way out of a KVM_RUN that failed (x86.c: out: store_regs). */
    g.run->kvm_dirty_regs = 0;
    g.run->kvm_valid_regs = 0x80000000u | KVM_SYNC_X86_REGS;
    memset(&g.run->s.regs.regs, 0xee, sizeof g.run->s.regs.regs);
    assert_int_equal(be->ioctl(g.vcpu, KVM_RUN, 0), -EINVAL);
    assert_int_equal(g.run->s.regs.regs.rip, CODE_GPA);
    g.run->kvm_valid_regs = 0;
    guest_vm_destroy(&g);
}

static void sync_regs_in_and_out(void **state)
{
    (void)state;
    struct soft_test_vm g;
    guest_vm_create(&g, loop_guest, sizeof loop_guest);

    /* Stored after the run: what KVM_GET_REGS, KVM_GET_SREGS and KVM_GET_VCPU_EVENTS say. */
    g.run->kvm_valid_regs = KVM_SYNC_X86_VALID_FIELDS;
    run_to_in(&g);
    struct kvm_regs r = regs_get(&g);
    assert_memory_equal(&r, &g.run->s.regs.regs, sizeof r);
    assert_int_equal(r.rip, CODE_GPA); /* at the IN, as KVM has it before completing the exit */
    struct kvm_sregs s;
    assert_int_equal(be->ioctl(g.vcpu, KVM_GET_SREGS, (unsigned long)&s), 0);
    assert_memory_equal(&s, &g.run->s.regs.sregs, sizeof s);
    struct kvm_vcpu_events ev;
    assert_int_equal(be->ioctl(g.vcpu, KVM_GET_VCPU_EVENTS, (unsigned long)&ev), 0);
    assert_memory_equal(&ev, &g.run->s.regs.events, sizeof ev);

    /* Loaded before the run, during the IN's exit: the guest goes on from the VMM's RBX; the dirty bits clear. */
    g.run->s.regs.regs.rbx = 0xbad1dea;
    g.run->kvm_dirty_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
    run_to_in(&g);
    assert_int_equal(g.run->kvm_dirty_regs, 0);
    assert_int_equal(g.run->s.regs.regs.rbx, 0xbad1dea + 1);
    assert_int_equal(regs_get(&g).rbx, 0xbad1dea + 1);

    /* Not dirty: s.regs is overwritten with the guest's values. */
    g.run->s.regs.regs.rbx = 0xdeadbeef;
    run_to_in(&g);
    assert_int_equal(g.run->s.regs.regs.rbx, 0xbad1dea + 2);

    /* Neither valid nor dirty: s.regs is left alone, and KVM_SET_REGS is what the guest sees. */
    g.run->kvm_valid_regs = 0;
    g.run->s.regs.regs.rbx = 0xaaaa;
    r = regs_get(&g);
    r.rbx = 0xbac0;
    assert_int_equal(be->ioctl(g.vcpu, KVM_SET_REGS, (unsigned long)&r), 0);
    run_to_in(&g);
    assert_int_equal(g.run->s.regs.regs.rbx, 0xaaaa);
    assert_int_equal(regs_get(&g).rbx, 0xbac0 + 1);

    /* Dirty but not valid: loaded, and not stored back. */
    g.run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
    g.run->s.regs.regs.rbx = 0xbbbb;
    run_to_in(&g);
    assert_int_equal(g.run->s.regs.regs.rbx, 0xbbbb);
    assert_int_equal(regs_get(&g).rbx, 0xbbbb + 1);

    /* Sets that KVM_SET_SREGS refuses: -EINVAL; the regs before them are loaded, their dirty bit cleared. */
    g.run->kvm_valid_regs = KVM_SYNC_X86_SREGS;
    run_to_in(&g);
    g.run->kvm_valid_regs = 0;
    g.run->s.regs.sregs.cr4 |= 1ull << 63; /* reserved */
    g.run->s.regs.regs = regs_get(&g);
    g.run->s.regs.regs.rbx = 0x7777;
    g.run->kvm_dirty_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
    assert_int_equal(be->ioctl(g.vcpu, KVM_RUN, 0), -EINVAL);
    assert_int_equal(g.run->kvm_dirty_regs, KVM_SYNC_X86_SREGS);
    assert_int_equal(regs_get(&g).rbx, 0x7777);
    g.run->kvm_dirty_regs = 0;
    guest_vm_destroy(&g);
}

/*
 * cld; mov di, 0x2000; mov cx, 2; rep insb (port 0x80); out 0xe9, al
 *      mov di, 0x3000; mov cx, 2; rep insb;               out 0xe9, al
 *      mov di, 0x4000; mov cx, 3; rep insb;               out 0xe9, al
 *      mov di, 0x5000; mov cx, 3; rep insb;               out 0xe9, al; hlt
 */
static const uint8_t ins_guest[] = {
    0xfc,             /* cld */
    0xba, 0x80, 0x00, /* mov dx, 0x80 */
    0xbf, 0x00, 0x20, /* mov di, 0x2000 */
    0xb9, 0x02, 0x00, /* mov cx, 2 */
    0xf3, 0x6c,       /* rep insb */
    0xe6, 0xe9,       /* out 0xe9, al */
    0xbf, 0x00, 0x30, /* mov di, 0x3000 */
    0xb9, 0x02, 0x00, /* mov cx, 2 */
    0xf3, 0x6c,       /* rep insb */
    0xe6, 0xe9,       /* out 0xe9, al */
    0xbf, 0x00, 0x40, /* mov di, 0x4000 */
    0xb9, 0x03, 0x00, /* mov cx, 3 */
    0xf3, 0x6c,       /* rep insb */
    0xe6, 0xe9,       /* out 0xe9, al */
    0xbf, 0x00, 0x50, /* mov di, 0x5000 */
    0xb9, 0x03, 0x00, /* mov cx, 3 */
    0xf3, 0x6c,       /* rep insb */
    0xe6, 0xe9,       /* out 0xe9, al */
    0xf4,             /* hlt */
};

/* KVM_RUN to a rep insb's exit: count elements from port 0x80; the VMM answers fill in each, then sets RCX. */
static void ins_exit(struct soft_test_vm *g, uint32_t count, uint64_t rdi, uint8_t fill, uint64_t new_rcx)
{
    assert_int_equal(be->ioctl(g->vcpu, KVM_RUN, 0), 0);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_IO);
    assert_int_equal(g->run->io.direction, KVM_EXIT_IO_IN);
    assert_int_equal(g->run->io.port, 0x80);
    assert_int_equal(g->run->io.count, count);
    struct kvm_regs r = regs_get(g);
    assert_int_equal(r.rdi, rdi);
    memset((uint8_t *)g->run + g->run->io.data_offset, fill, 64);
    r.rcx = new_rcx;
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_REGS, (unsigned long)&r), 0);
}

static void expect_out(struct soft_test_vm *g, uint64_t rcx, uint64_t rdi)
{
    assert_int_equal(be->ioctl(g->vcpu, KVM_RUN, 0), 0);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_IO);
    assert_int_equal(g->run->io.port, 0xe9);
    struct kvm_regs r = regs_get(g);
    assert_int_equal(r.rcx, rcx);
    assert_int_equal(r.rdi, rdi);
}

static void rep_ins_count_changed(void **state)
{
    (void)state;
    struct soft_test_vm g;
    guest_vm_create(&g, ins_guest, sizeof ins_guest);
    /* 2 -> 1: one element, the instruction ends (RDI + 1), and the batch's second element is dropped... */
    ins_exit(&g, 2, 0x2000, 0xa1, 1);
    expect_out(&g, 0, 0x2001);
    assert_int_equal(g.mem[0x2000], 0xa1);
    assert_int_equal(g.mem[0x2001], 0);
    /* ...so the next rep insb exits for its own batch. */
    ins_exit(&g, 2, 0x3000, 0xb2, 2);
    expect_out(&g, 0, 0x3002);
    assert_int_equal(g.mem[0x3000], 0xb2);
    assert_int_equal(g.mem[0x3001], 0xb2);
    /* 3 -> 8: the batch is sized again from RCX 8 (8 bytes left: all of them), RDI + 8, RCX 0. */
    ins_exit(&g, 3, 0x4000, 0xc3, 8);
    expect_out(&g, 0, 0x4008);
    for (int i = 0; i < 8; i++)
        assert_int_equal(g.mem[0x4000 + i], 0xc3);
    assert_int_equal(g.mem[0x4008], 0);
    /*
     * 3 -> 0: the instruction ends with no element (KVM's emulator), RDI where it was, rather than going on for
     * 65535 more. (The first element's byte holds 0, the engine's early store, where KVM leaves it alone.)
     */
    ins_exit(&g, 3, 0x5000, 0xd4, 0);
    expect_out(&g, 0, 0x5000);
    assert_int_equal(g.mem[0x5001], 0);
    assert_int_equal(be->ioctl(g.vcpu, KVM_RUN, 0), 0);
    assert_int_equal(g.run->exit_reason, KVM_EXIT_HLT);
    guest_vm_destroy(&g);
}

/* 1: out 0xe9, al; mov [0x500], ax; inc ax; jmp 1b: the block goes on into RAM after the OUT. */
static const uint8_t store_guest[] = {
    0xe6, 0xe9,       /* out 0xe9, al */
    0xa3, 0x00, 0x05, /* mov [0x500], ax */
    0x40,             /* inc ax */
    0xeb, 0xf8,       /* jmp 1b */
};

/* The selftests' kvm_vm_free: the slot deleted and unmapped, then the vCPU closed while it waits in its exit. */
static void close_in_exit_after_unmap(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* cmocka's handlers would report a fault here and run the other tests in this child: die of it instead. */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        struct soft_test_vm g;
        guest_vm_create(&g, store_guest, sizeof store_guest);
        for (int i = 0; i < 3; i++)
            if (be->ioctl(g.vcpu, KVM_RUN, 0) != 0 || g.run->exit_reason != KVM_EXIT_IO)
                _exit(2);
        struct kvm_userspace_memory_region r = {.memory_size = 0, .userspace_addr = (uintptr_t)g.mem};
        if (be->ioctl(g.vm, KVM_SET_USER_MEMORY_REGION, (unsigned long)&r) != 0)
            _exit(3);
        munmap(g.mem, GUEST_MEM);
        be->munmap_run(g.run, g.run_size);
        be->close(g.vcpu);
        be->close(g.vm);
        be->close(g.sys);
        _exit(0);
    }
    int st = 0;
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st))
        fail_msg("closing the vCPU in its exit after the guest's memory was unmapped: signal %d", WTERMSIG(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sync_regs_cap_and_einval),
        cmocka_unit_test(sync_regs_in_and_out),
        cmocka_unit_test(rep_ins_count_changed),
        cmocka_unit_test(close_in_exit_after_unmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
