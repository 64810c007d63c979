/*
 * The soft backend's KVM_SET_GUEST_DEBUG beyond steps and INT3, as KVM on hardware reports it (Linux's
 * debug_regs selftest): data breakpoints in DR0-3 (a trap after the access, DR6.Bn; write-only ones ignore
 * reads; matched on the linear address under paging), DR7.GD (a fault at the MOV DR, DR6.BD) and
 * KVM_GUESTDBG_BLOCKIRQ (no interrupt injected while it is on); and the address rule under them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include <linux/kvm.h>

#include "backend.h"
#include "soft_test_vm.h"
#include "soft_debug.h"

#define GUEST_MEM       (1u << 20)
#define CODE_GPA        0x1000u
#define PD_GPA          0x10000u /* page directory; page tables at 0x11000 (linear 0-4 MiB) and 0x12000 (4-8 MiB) */
#define IDT_GPA         0x20000u
#define GDT_GPA         0x30000u
#define DATA_LIN        0x400010u /* mapped to DATA_GPA: a linear address that is not the physical one */
#define DATA_GPA        0x5010u
#define DR6_FIXED       0xffff0ff0ull
#define DR6_BD          (1ull << 13)
#define DR6_BS          (1ull << 14)
#define DR7_FIXED       0x400ull
#define DR7_GD          (1ull << 13)
#define DR7_G(n)        (2ull << (2 * (n)))
#define DR7_RW(n, rw)   ((unsigned long long)(rw) << (16 + 4 * (n)))
#define DR7_LEN(n, len) ((unsigned long long)(len) << (18 + 4 * (n))) /* 00 1 byte, 01 2, 11 4, 10 8 */

static const struct mvm_backend *be = &mvm_backend_soft;

/* 32-bit protected mode with paging, code at CODE_GPA: */
static const uint8_t code[] = {
    0xb8, 0x34, 0x12, 0x00, 0x00,       /* 0x1000 mov eax, 0x1234 */
    0xa3, 0x10, 0x00, 0x40, 0x00,       /* 0x1005 mov [DATA_LIN], eax */
    0x90,                               /* 0x100a nop */
    0x8b, 0x1d, 0x10, 0x00, 0x40, 0x00, /* 0x100b mov ebx, [DATA_LIN] */
    0x90,                               /* 0x1011 nop */
    0x0f, 0x21, 0xf8,                   /* 0x1012 mov eax, dr7 */
    0xfb,                               /* 0x1015 sti */
    0x90,                               /* 0x1016 nop */
    0x90,                               /* 0x1017 nop */
    0xb0, 'D',  0xe6, 0xe9,             /* 0x1018 mov al, 'D'; out 0xe9, al */
    0xf4,                               /* hlt */
};
static const uint8_t handler[] = {0xb0, 'I', 0xe6, 0xe9, 0xf4}; /* 0x1800: mov al, 'I'; out 0xe9, al; hlt */

static void put32(uint8_t *mem, uint32_t gpa, uint32_t v)
{
    memcpy(mem + gpa, &v, 4);
}

static void guest_vm_create(struct soft_test_vm *g)
{
    soft_test_vm_open(be, g, GUEST_MEM);
    memcpy(g->mem + CODE_GPA, code, sizeof code);
    memcpy(g->mem + 0x1800, handler, sizeof handler);
    /* Paging: linear 0-1 MiB onto itself, linear 4 MiB onto physical 0x5000. */
    put32(g->mem, PD_GPA, 0x11000 | 3);
    put32(g->mem, PD_GPA + 4, 0x12000 | 3);
    for (uint32_t i = 0; i < 256; i++)
        put32(g->mem, 0x11000 + 4 * i, (i << 12) | 3);
    put32(g->mem, 0x12000, 0x5000 | 3);
    /* GDT: null, flat 32-bit code (0x08), flat data (0x10); IDT: vector 0x20, an interrupt gate to 0x1800. */
    uint64_t gdt[3] = {0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull};
    memcpy(g->mem + GDT_GPA, gdt, sizeof gdt);
    uint64_t gate = 0x1800 | (0x08ull << 16) | (0x8eull << 40);
    memcpy(g->mem + IDT_GPA + 0x20 * 8, &gate, 8);
    soft_test_vcpu_open(be, g);
    struct kvm_sregs s;
    assert_int_equal(be->ioctl(g->vcpu, KVM_GET_SREGS, (unsigned long)&s), 0);
    struct kvm_segment cs = {.limit = 0xffffffff, .selector = 0x08, .type = 11, .present = 1, .db = 1, .s = 1, .g = 1};
    struct kvm_segment ds = cs;
    ds.selector = 0x10;
    ds.type = 3;
    s.cs = cs;
    s.ds = s.es = s.fs = s.gs = s.ss = ds;
    s.gdt.base = GDT_GPA;
    s.gdt.limit = sizeof gdt - 1;
    s.idt.base = IDT_GPA;
    s.idt.limit = 0x21 * 8 - 1;
    s.cr0 = 0x80000011; /* PG, ET, PE */
    s.cr3 = PD_GPA;
    s.cr4 = 0;
    s.efer = 0;
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_SREGS, (unsigned long)&s), 0);
    struct kvm_regs regs = {.rip = CODE_GPA, .rsp = 0x8000, .rflags = 2};
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_REGS, (unsigned long)&regs), 0);
}

static void guest_vm_destroy(struct soft_test_vm *g)
{
    soft_test_vm_close(be, g);
}

static void debug_set(struct soft_test_vm *g, uint32_t control, const uint64_t dr[4], uint64_t dr7)
{
    struct kvm_guest_debug d = {.control = control};
    for (int i = 0; i < 4; i++)
        d.arch.debugreg[i] = dr ? dr[i] : 0;
    d.arch.debugreg[7] = dr7;
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_GUEST_DEBUG, (unsigned long)&d), 0);
}

/* KVM_RUN to a KVM_EXIT_DEBUG for #DB at pc with DR6 dr6. */
static void expect_db(struct soft_test_vm *g, uint64_t pc, uint64_t dr6)
{
    assert_int_equal(be->ioctl(g->vcpu, KVM_RUN, 0), 0);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_DEBUG);
    assert_int_equal(g->run->debug.arch.exception, 1);
    assert_int_equal(g->run->debug.arch.pc, pc);
    assert_int_equal(g->run->debug.arch.dr6, dr6);
    struct kvm_regs r;
    assert_int_equal(be->ioctl(g->vcpu, KVM_GET_REGS, (unsigned long)&r), 0);
    assert_int_equal(r.rip, pc); /* flat CS: the linear address is RIP */
}

static void expect_out(struct soft_test_vm *g, char c)
{
    assert_int_equal(be->ioctl(g->vcpu, KVM_RUN, 0), 0);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_IO);
    assert_int_equal(g->run->io.port, 0xe9);
    assert_int_equal(((char *)g->run)[g->run->io.data_offset], c);
}

static void data_breakpoints_gd_blockirq(void **state)
{
    (void)state;
    struct soft_test_vm g;
    guest_vm_create(&g);
    const uint32_t hw = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;

    /* A 4-byte write breakpoint on DATA_LIN in DR0: a trap after the store, the store done. */
    uint64_t dr[4] = {DATA_LIN, 0, 0, 0};
    debug_set(&g, hw, dr, DR7_FIXED | DR7_G(0) | DR7_RW(0, 1) | DR7_LEN(0, 3));
    expect_db(&g, 0x100a, DR6_FIXED | 1);
    assert_int_equal(g.run->debug.arch.dr7, DR7_FIXED | DR7_G(0) | DR7_RW(0, 1) | DR7_LEN(0, 3));
    uint32_t stored;
    memcpy(&stored, g.mem + DATA_GPA, 4);
    assert_int_equal(stored, 0x1234);

    /*
     * The load of the same 4 bytes: DR0 (write only) stays quiet, DR1 (read or write, its 1 byte inside) hits,
     * DR2 (elsewhere) does not; DR3 is not enabled.
     */
    uint64_t dr2[4] = {DATA_LIN, DATA_LIN + 2, DATA_LIN + 0x10, DATA_LIN};
    debug_set(&g, hw, dr2,
              DR7_FIXED | DR7_G(0) | DR7_RW(0, 1) | DR7_LEN(0, 3) | DR7_G(1) | DR7_RW(1, 3) | DR7_G(2) | DR7_RW(2, 3) |
                  DR7_LEN(2, 3) | DR7_RW(3, 3));
    expect_db(&g, 0x1011, DR6_FIXED | 2);

    /* DR7.GD: a fault before the MOV from DR7, RIP left at it. */
    debug_set(&g, hw, NULL, DR7_FIXED | DR7_GD);
    expect_db(&g, 0x1012, DR6_FIXED | DR6_BD);

    /* Single steps with BLOCKIRQ: an interrupt queued while IF is set stays queued... */
    const uint32_t step = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_BLOCKIRQ;
    debug_set(&g, step, NULL, DR7_FIXED);
    expect_db(&g, 0x1015, DR6_FIXED | DR6_BS); /* mov eax, dr7 */
    expect_db(&g, 0x1016, DR6_FIXED | DR6_BS); /* sti */
    struct kvm_interrupt irq = {.irq = 0x20};
    assert_int_equal(be->ioctl(g.vcpu, KVM_INTERRUPT, (unsigned long)&irq), 0);
    expect_db(&g, 0x1017, DR6_FIXED | DR6_BS); /* nop */
    expect_db(&g, 0x1018, DR6_FIXED | DR6_BS); /* nop */
    /* ...and is delivered once debugging is off. */
    debug_set(&g, 0, NULL, 0);
    expect_out(&g, 'I');
    guest_vm_destroy(&g);
}

/* KVM_CAP_SET_GUEST_DEBUG2: the flags KVM_SET_GUEST_DEBUG takes here. */
static void guest_debug2_cap(void **state)
{
    (void)state;
    int sys = be->open_dev();
    assert_true(sys >= 0);
    int flags = be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_SET_GUEST_DEBUG2);
    assert_int_equal(flags, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_SW_BP |
                                KVM_GUESTDBG_USE_HW_BP | KVM_GUESTDBG_BLOCKIRQ);
    be->close(sys);
}

/* The hardware's rule: enabled DRn with R/W 01 (writes) or 11 (reads, writes), LEN bytes at DRn aligned down. */
static void data_match_rule(void **state)
{
    (void)state;
    uint64_t dr[4] = {0x1003, 0x2005, 0x3000, 0x4000};
    uint64_t dr7 = DR7_G(0) | DR7_RW(0, 1) | DR7_LEN(0, 3)   /* 4 bytes: 0x1000-0x1003 */
                   | DR7_G(1) | DR7_RW(1, 3) | DR7_LEN(1, 2) /* 8 bytes: 0x2000-0x2007 */
                   | DR7_G(2) | DR7_RW(2, 0)                 /* execution: never a data hit */
                   | DR7_RW(3, 3);                           /* not enabled */
    assert_int_equal(soft_debug_data_match(dr7, dr, 0x1003, 1, true), 1);
    assert_int_equal(soft_debug_data_match(dr7, dr, 0x1000, 1, true), 1);
    assert_int_equal(soft_debug_data_match(dr7, dr, 0x1004, 1, true), 0);
    assert_int_equal(soft_debug_data_match(dr7, dr, 0xffc, 8, true), 1);   /* overlaps from below */
    assert_int_equal(soft_debug_data_match(dr7, dr, 0xff8, 8, true), 0);   /* ends just before */
    assert_int_equal(soft_debug_data_match(dr7, dr, 0x1003, 1, false), 0); /* write-only: a read */
    assert_int_equal(soft_debug_data_match(dr7, dr, 0x2007, 1, false), 2);
    assert_int_equal(soft_debug_data_match(dr7, dr, 0x2008, 4, false), 0);
    assert_int_equal(soft_debug_data_match(dr7, dr, 0x3000, 4, true), 0);
    assert_int_equal(soft_debug_data_match(dr7, dr, 0x4000, 4, true), 0);
    /* LEN 01 (2 bytes) and 00 (1 byte); two hits at once. */
    uint64_t dr_b[4] = {0x5001, 0x5001, 0, 0};
    uint64_t dr7_b = DR7_G(0) | DR7_RW(0, 3) | DR7_LEN(0, 1) | DR7_G(1) | DR7_RW(1, 3) | DR7_LEN(1, 0);
    assert_int_equal(soft_debug_data_match(dr7_b, dr_b, 0x5000, 1, false), 1);
    assert_int_equal(soft_debug_data_match(dr7_b, dr_b, 0x5001, 1, true), 3);
    assert_int_equal(soft_debug_data_match(dr7_b, dr_b, 0x5002, 2, true), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(data_match_rule),
        cmocka_unit_test(guest_debug2_cap),
        cmocka_unit_test(data_breakpoints_gd_blockirq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
