/*
 * The soft backend's in-kernel irqchip through KVM's ioctls, end to end on a small real-mode guest: KVM_IRQ_LINE
 * through the PIC, HLT that waits in KVM_RUN, KVM_IOEVENTFD, KVM_IRQFD, KVM_GET/SET_IRQCHIP and LAPIC, and the
 * answers KVM gives to wrong uses.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "core_irq.h"
#include "lab.h"
#include "mvm.h"

/*
 * 0x1000: sti; hlt; mov al,'D'; out 0xe9,al; mov dx,0x700; mov al,0x42; out dx,al; mov al,0x43; out dx,al;
 *         sti; hlt; mov al,'E'; out 0xe9,al; cli; hlt
 * 0x1100 (vectors 0x20, 0x21): mov al,'I'; out 0xe9,al; mov al,0x20; out 0x20,al; iret
 */
static const uint8_t code[] = {0xfb, 0xf4, 0xb0, 'D',  0xe6, 0xe9, 0xba, 0x00, 0x07, 0xb0, 0x42, 0xee,
                               0xb0, 0x43, 0xee, 0xfb, 0xf4, 0xb0, 'E',  0xe6, 0xe9, 0xfa, 0xf4};
static const uint8_t handler[] = {0xb0, 'I', 0xe6, 0xe9, 0xb0, 0x20, 0xe6, 0x20, 0xcf};

struct vm1 {
    const struct mvm_backend *be;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct kvm_run *run;
};

static void vm1_create(struct vm1 *g)
{
    memset(g, 0, sizeof *g);
    assert_int_equal(mvm_backend_pick("soft", &g->be), 0);
    assert_int_equal(vm_create(g->be, &g->vm), 0);
    if (vm_irqchip_create(g->vm) < 0)
        fail_msg("vm_irqchip_create: %s", mvm_error());
    assert_int_equal(vm_mem_add(g->vm, 0, 1 << 20, 0), 0);
    assert_int_equal(vcpu_create(g->vm, 0, &g->vcpu), 0);
    if (vcpu_setup_mode(g->vcpu, MVM_MODE_REAL, 0x1000) < 0)
        fail_msg("vcpu_setup_mode: %s", mvm_error());
    assert_int_equal(vm_write(g->vm, 0x1000, code, sizeof code), 0);
    assert_int_equal(vm_write(g->vm, 0x1100, handler, sizeof handler), 0);
    uint32_t ivt = 0x1100; /* offset 0x1100, segment 0 */
    assert_int_equal(vm_write(g->vm, 0x20 * 4, &ivt, 4), 0);
    assert_int_equal(vm_write(g->vm, 0x21 * 4, &ivt, 4), 0);
    g->run = vcpu_run_page(g->vcpu);
}

/* KVM_RUN until the next exit, which must be an OUT of `data` to `port`. */
static void expect_out(struct vm1 *g, uint16_t port, uint8_t data)
{
    g->run->immediate_exit = 0;
    alarm(10); /* a guest waiting in HLT for an interrupt that never comes fails the test instead of hanging */
    int rc = vcpu_enter(g->vcpu);
    alarm(0);
    assert_int_equal(rc, 0);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_IO);
    assert_int_equal(g->run->io.port, port);
    assert_int_equal(((uint8_t *)g->run)[g->run->io.data_offset], data);
}

/* The VMM's other thread: KVM_RUN of a halted vCPU ends when immediate_exit is set (within 50 ms). */
static void *stop_later(void *arg)
{
    struct kvm_run *run = arg;
    usleep(100000);
    __atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void line_hlt_ioeventfd_irqfd(void **state)
{
    struct vm1 g;
    (void)state;
    vm1_create(&g);
    struct kvm_irqchip pic = {.chip_id = KVM_IRQCHIP_PIC_MASTER};
    assert_int_equal(vm_ioctl(g.vm, KVM_GET_IRQCHIP, &pic, "KVM_GET_IRQCHIP"), 0);
    assert_int_equal(pic.chip.pic.elcr_mask, 0xf8);
    pic.chip.pic.irq_base = 0x20;
    pic.chip.pic.imr = 0xfc;
    assert_int_equal(vm_ioctl(g.vm, KVM_SET_IRQCHIP, &pic, "KVM_SET_IRQCHIP"), 0);

    int st = 99;
    assert_int_equal(vm_irq_line(g.vm, 0, true, &st), 0);
    assert_int_equal(st, 1);
    assert_int_equal(vm_irq_line(g.vm, 0, false, &st), 0);
    expect_out(&g, 0xe9, 'I'); /* the pending IRQ 0 wakes the HLT, the handler prints */
    expect_out(&g, 0xe9, 'D');

    int ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(ev >= 0);
    struct kvm_ioeventfd io = {.datamatch = 0x42,
                               .addr = 0x700,
                               .len = 1,
                               .fd = ev,
                               .flags = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH};
    assert_int_equal(vm_ioctl(g.vm, KVM_IOEVENTFD, &io, "KVM_IOEVENTFD"), 0);
    assert_int_equal(vm_ioctl(g.vm, KVM_IOEVENTFD, &io, "KVM_IOEVENTFD"), -EEXIST);
    expect_out(&g, 0x700, 0x43); /* 0x42 matched: no exit */
    uint64_t n = 0;
    assert_int_equal(read(ev, &n, 8), 8);
    assert_int_equal(n, 1);

    struct kvm_irqfd irqfd = {.fd = (uint32_t)ev, .gsi = 1};
    assert_int_equal(vm_ioctl(g.vm, KVM_IRQFD, &irqfd, "KVM_IRQFD"), 0);
    n = 1;
    assert_int_equal(write(ev, &n, 8), 8); /* the irqfd raises GSI 1 while the guest waits in HLT */
    expect_out(&g, 0xe9, 'I');
    expect_out(&g, 0xe9, 'E');
    irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
    assert_int_equal(vm_ioctl(g.vm, KVM_IRQFD, &irqfd, "KVM_IRQFD"), 0);
    io.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    assert_int_equal(vm_ioctl(g.vm, KVM_IOEVENTFD, &io, "KVM_IOEVENTFD"), 0);
    assert_int_equal(vm_ioctl(g.vm, KVM_IOEVENTFD, &io, "KVM_IOEVENTFD"), -ENOENT);
    close(ev);

    /* The final cli; hlt: KVM_RUN waits (no KVM_EXIT_HLT with the irqchip in the kernel) until told to stop. */
    struct kvm_mp_state mp;
    pthread_t t;
    g.run->immediate_exit = 0;
    assert_int_equal(pthread_create(&t, NULL, stop_later, g.run), 0);
    assert_int_equal(vcpu_enter(g.vcpu), -EINTR); /* halted, then told to stop from another thread */
    pthread_join(t, NULL);
    assert_int_equal(vcpu_ioctl(g.vcpu, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE"), 0);
    assert_int_equal(mp.mp_state, KVM_MP_STATE_HALTED);
    assert_int_equal(vcpu_enter(g.vcpu), -EINTR); /* immediate_exit still set: KVM_RUN returns at once */
    mp.mp_state = KVM_MP_STATE_INIT_RECEIVED;
    assert_int_equal(vcpu_ioctl(g.vcpu, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE"), -EINVAL);
    vm_destroy(g.vm);
}

static void state_ioctls_and_refusals(void **state)
{
    struct vm1 g;
    (void)state;
    vm1_create(&g);
    assert_int_equal(vm_ioctl(g.vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP"), -EEXIST);
    struct kvm_interrupt intr = {.irq = 0x20};
    assert_int_equal(vcpu_ioctl(g.vcpu, KVM_INTERRUPT, &intr, "KVM_INTERRUPT"), -ENXIO); /* the PIC is in the kernel */
    struct kvm_pit_state2 pit;
    assert_int_equal(vm_ioctl(g.vm, KVM_GET_PIT2, &pit, "KVM_GET_PIT2"), 0); /* vm_irqchip_create made the PIT too */
    assert_int_equal(pit.channels[0].count, 0x10000);
    assert_int_equal(pit.channels[0].mode, 0xff);
    pit.channels[0].count = 0; /* a VMM's zero count is the 8254's 0x10000, never a division by zero */
    pit.channels[0].mode = 2;
    assert_int_equal(vm_ioctl(g.vm, KVM_SET_PIT2, &pit, "KVM_SET_PIT2"), 0);
    assert_int_equal(vm_ioctl(g.vm, KVM_GET_PIT2, &pit, "KVM_GET_PIT2"), 0);
    assert_int_equal(pit.channels[0].count, 0x10000);
    struct kvm_pit_config pc = {.flags = 0};
    assert_int_equal(vm_ioctl(g.vm, KVM_CREATE_PIT2, &pc, "KVM_CREATE_PIT2"), -EEXIST);

    struct kvm_lapic_state ls;
    assert_int_equal(vcpu_ioctl(g.vcpu, KVM_GET_LAPIC, &ls, "KVM_GET_LAPIC"), 0);
    uint32_t x;
    memcpy(&x, ls.regs + 0x30, 4);
    assert_int_equal(x, 0x50014);
    x = 0x60;
    memcpy(ls.regs + 0x80, &x, 4); /* TPR */
    assert_int_equal(vcpu_ioctl(g.vcpu, KVM_SET_LAPIC, &ls, "KVM_SET_LAPIC"), 0);
    memset(&ls, 0, sizeof ls);
    assert_int_equal(vcpu_ioctl(g.vcpu, KVM_GET_LAPIC, &ls, "KVM_GET_LAPIC"), 0);
    memcpy(&x, ls.regs + 0xa0, 4);
    assert_int_equal(x, 0x60); /* PPR follows TPR */

    /* KVM_SET_GSI_ROUTING: GSI 5 becomes an MSI to APIC 0, vector 0x41; GSI 0 then has no route. */
    struct {
        struct kvm_irq_routing r;
        struct kvm_irq_routing_entry e[2];
    } rt = {.r = {.nr = 2}};
    rt.e[0] = (struct kvm_irq_routing_entry){.gsi = 5, .type = KVM_IRQ_ROUTING_MSI};
    rt.e[0].u.msi.address_lo = 0xfee00000;
    rt.e[0].u.msi.data = 0x41;
    rt.e[1] = (struct kvm_irq_routing_entry){.gsi = 6, .type = KVM_IRQ_ROUTING_IRQCHIP};
    rt.e[1].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
    rt.e[1].u.irqchip.pin = 24;
    assert_int_equal(vm_ioctl(g.vm, KVM_SET_GSI_ROUTING, &rt, "KVM_SET_GSI_ROUTING"), -EINVAL); /* no pin 24 */
    rt.e[1].u.irqchip.pin = 3;
    assert_int_equal(vm_ioctl(g.vm, KVM_SET_GSI_ROUTING, &rt, "KVM_SET_GSI_ROUTING"), 0);
    x = 0x1ff;
    memcpy(ls.regs + 0xf0, &x, 4); /* SPIV: software-enabled */
    x = 0;
    memcpy(ls.regs + 0x80, &x, 4);
    assert_int_equal(vcpu_ioctl(g.vcpu, KVM_SET_LAPIC, &ls, "KVM_SET_LAPIC"), 0);
    int st = 0;
    assert_int_equal(vm_irq_line(g.vm, 5, true, &st), 0);
    assert_int_equal(st, 1);
    assert_int_equal(vm_irq_line(g.vm, 5, false, &st), 0);
    assert_int_equal(vm_irq_line(g.vm, 0, true, &st), 0);
    assert_int_equal(st, -1);
    assert_int_equal(vcpu_ioctl(g.vcpu, KVM_GET_LAPIC, &ls, "KVM_GET_LAPIC"), 0);
    memcpy(&x, ls.regs + 0x200 + 0x20, 4); /* IRR bits 32-63 */
    assert_int_equal(x, 1u << 1);          /* vector 0x41 */

    struct kvm_irqchip io = {.chip_id = KVM_IRQCHIP_IOAPIC};
    assert_int_equal(vm_ioctl(g.vm, KVM_GET_IRQCHIP, &io, "KVM_GET_IRQCHIP"), 0);
    assert_int_equal(io.chip.ioapic.base_address, 0xfec00000);
    assert_int_equal(io.chip.ioapic.redirtbl[7].bits, 1u << 16);
    io.chip_id = 3;
    assert_int_equal(vm_ioctl(g.vm, KVM_GET_IRQCHIP, &io, "KVM_GET_IRQCHIP"), -EINVAL);

    struct kvm_msi msi = {.address_lo = 0xfee00000, .data = 0x40};
    assert_int_equal(vm_signal_msi(g.vm, 0xfee00000, 0x40), 1); /* software-enabled above: delivered */
    assert_int_equal(vm_signal_msi(g.vm, 0xfee05000, 0x40), 0); /* no APIC 5: KVM's fast path answers 0 */
    msi.flags = 0x80;
    assert_int_equal(vm_ioctl(g.vm, KVM_SIGNAL_MSI, &msi, "KVM_SIGNAL_MSI"), -EINVAL);
    struct kvm_irqfd bad = {.fd = 0, .gsi = 1}; /* stdin is no eventfd */
    assert_int_equal(vm_ioctl(g.vm, KVM_IRQFD, &bad, "KVM_IRQFD"), -EBADF);
    struct kvm_ioeventfd wide = {.addr = 0x700, .len = 3, .flags = KVM_IOEVENTFD_FLAG_PIO};
    assert_int_equal(vm_ioctl(g.vm, KVM_IOEVENTFD, &wide, "KVM_IOEVENTFD"), -EINVAL);
    vm_destroy(g.vm);

    /* Without an irqchip: KVM's answers, and KVM_EXIT_HLT as before. */
    const struct mvm_backend *be;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    assert_int_equal(mvm_backend_pick("soft", &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    struct kvm_irq_level l = {.irq = 0, .level = 1};
    assert_int_equal(vm_ioctl(vm, KVM_IRQ_LINE, &l, "KVM_IRQ_LINE"), -ENXIO);
    assert_int_equal(vm_mem_add(vm, 0, 1 << 20, 0), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    assert_int_equal(vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP"), -EINVAL); /* after a vCPU */
    assert_int_equal(vcpu_ioctl(vcpu, KVM_GET_LAPIC, &ls, "KVM_GET_LAPIC"), -EINVAL);
    assert_int_equal(vcpu_setup_mode(vcpu, MVM_MODE_REAL, 0x1000), 0);
    static const uint8_t hlt = 0xf4;
    assert_int_equal(vm_write(vm, 0x1000, &hlt, 1), 0);
    assert_int_equal(vcpu_enter(vcpu), 0);
    assert_int_equal(vcpu_run_page(vcpu)->exit_reason, KVM_EXIT_HLT);
    vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(line_hlt_ioeventfd_irqfd),
        cmocka_unit_test(state_ioctls_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
