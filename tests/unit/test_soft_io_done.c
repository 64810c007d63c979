/*
 * KVM_RUN with immediate_exit while a port I/O exit waits (soft_io_done.c): as KVM's complete_userspace_io, the
 * instruction is completed before the -EINTR (RIP past it, an IN's data merged into RAX), nothing after it runs, the
 * next KVM_RUN goes on with the data KVM took then, and the registers moved into a new VM do not repeat the IN.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lab.h"
#include "mvm.h"

/* 0x1000: in al,0x90; mov bl,al; out 0x91,al; mov al,bl; out 0x92,al; hlt */
static const uint8_t code[] = {0xe4, 0x90, 0x88, 0xc3, 0xe6, 0x91, 0x88, 0xd8, 0xe6, 0x92, 0xf4};

struct vm1 {
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct kvm_run *run;
};

static void vm1_create(struct vm1 *g)
{
    const struct mvm_backend *be;
    memset(g, 0, sizeof *g);
    assert_int_equal(mvm_backend_pick("soft", &be), 0);
    assert_int_equal(vm_create(be, &g->vm), 0);
    assert_int_equal(vm_mem_add(g->vm, 0, 1 << 20, 0), 0);
    assert_int_equal(vcpu_create(g->vm, 0, &g->vcpu), 0);
    if (vcpu_setup_mode(g->vcpu, MVM_MODE_REAL, 0x1000) < 0)
        fail_msg("vcpu_setup_mode: %s", mvm_error());
    assert_int_equal(vm_write(g->vm, 0x1000, code, sizeof code), 0);
    g->run = vcpu_run_page(g->vcpu);
}

static uint8_t *io_data(struct vm1 *g)
{
    return (uint8_t *)g->run + g->run->io.data_offset;
}

static void enter(struct vm1 *g)
{
    alarm(10);
    int rc = vcpu_enter(g->vcpu);
    alarm(0);
    assert_int_equal(rc, 0);
}

static void expect_io(struct vm1 *g, uint8_t dir, uint16_t port)
{
    enter(g);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_IO);
    assert_int_equal(g->run->io.direction, dir);
    assert_int_equal(g->run->io.port, port);
}

static void in_completed_by_immediate_exit(void **state)
{
    (void)state;
    struct vm1 g;
    vm1_create(&g);
    struct kvm_regs r;
    assert_int_equal(vcpu_regs_get(g.vcpu, &r), 0);
    r.rax = 0x11223344;
    assert_int_equal(vcpu_regs_set(g.vcpu, &r), 0);
    expect_io(&g, KVM_EXIT_IO_IN, 0x90);
    *io_data(&g) = 0xab;
    g.run->immediate_exit = 1;
    assert_int_equal(vcpu_enter(g.vcpu), -EINTR);
    assert_int_equal(g.run->exit_reason, KVM_EXIT_IO); /* left as it was */
    assert_int_equal(vcpu_enter(g.vcpu), -EINTR);      /* nothing more to complete */
    g.run->immediate_exit = 0;
    assert_int_equal(vcpu_regs_get(g.vcpu, &r), 0);
    assert_int_equal(r.rip, 0x1002); /* past the IN, and not one instruction further */
    assert_int_equal(r.rax, 0x112233ab);
    assert_int_equal(r.rbx & 0xff, 0);
    /* The VMM may reuse the page now: the IN keeps the data KVM took at completion. */
    *io_data(&g) = 0x00;
    expect_io(&g, KVM_EXIT_IO_OUT, 0x91);
    assert_int_equal(*io_data(&g), 0xab);
    /* An OUT completed the same way: RIP past it. */
    g.run->immediate_exit = 1;
    assert_int_equal(vcpu_enter(g.vcpu), -EINTR);
    g.run->immediate_exit = 0;
    assert_int_equal(vcpu_regs_get(g.vcpu, &r), 0);
    assert_int_equal(r.rip, 0x1006);
    expect_io(&g, KVM_EXIT_IO_OUT, 0x92);
    assert_int_equal(*io_data(&g), 0xab);
    vm_destroy(g.vm);
}

/* The registers of a vCPU whose IN was completed, moved into a new VM: it goes on after the IN, which does not run
 * again. */
static void completed_state_moves(void **state)
{
    (void)state;
    struct vm1 a, b;
    vm1_create(&a);
    expect_io(&a, KVM_EXIT_IO_IN, 0x90);
    *io_data(&a) = 0x5c;
    a.run->immediate_exit = 1;
    assert_int_equal(vcpu_enter(a.vcpu), -EINTR);
    a.run->immediate_exit = 0;
    struct kvm_regs r;
    struct kvm_sregs s;
    assert_int_equal(vcpu_regs_get(a.vcpu, &r), 0);
    assert_int_equal(vcpu_sregs_get(a.vcpu, &s), 0);
    vm1_create(&b);
    assert_int_equal(vcpu_sregs_set(b.vcpu, &s), 0);
    assert_int_equal(vcpu_regs_set(b.vcpu, &r), 0);
    expect_io(&b, KVM_EXIT_IO_OUT, 0x91);
    assert_int_equal(*io_data(&b), 0x5c);
    vm_destroy(b.vm);
    vm_destroy(a.vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(in_completed_by_immediate_exit),
        cmocka_unit_test(completed_state_moves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
