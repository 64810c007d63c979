/*
 * The soft backend's VM capabilities, MSRs and clock through KVM's ioctls, as KVM 6.1 answers them:
 * KVM_CAP_MAX_VCPU_ID, KVM_SET_BOOT_CPU_ID and the BSP flag, the feature MSRs on /dev/kvm's fd, IA32_TSC_ADJUST
 * against IA32_TSC writes from the guest and from the VMM, MSR_PLATFORM_INFO and its #GP, KVM_GET/SET_CLOCK.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <cmocka.h>

#include <linux/kvm.h>

#include "backend.h"
#include "soft_test_vm.h"

#define MSR_TSC           0x10u
#define MSR_APIC_BASE     0x1bu
#define MSR_TSC_ADJUST    0x3bu
#define MSR_PLATFORM_INFO 0xceu
#define MSR_SYSTEM_TIME   0x4b564d01u /* MSR_KVM_SYSTEM_TIME_NEW */
#define APIC_BASE_BSP     (1ull << 8)
#define GUEST_MEM         (1u << 20)

static const struct mvm_backend *be = &mvm_backend_soft;

struct one_msr {
    struct kvm_msrs h;
    struct kvm_msr_entry e[1];
};

static int sys_open(void)
{
    int fd = be->open_dev();
    assert_true(fd >= 0);
    return fd;
}

static int vm_new(int sys)
{
    int vm = be->ioctl(sys, KVM_CREATE_VM, 0);
    assert_true(vm >= 0);
    return vm;
}

static int msr_get(int vcpu, uint32_t idx, uint64_t *val)
{
    struct one_msr m = {.h.nmsrs = 1, .e[0].index = idx};
    int r = be->ioctl(vcpu, KVM_GET_MSRS, (unsigned long)&m);
    *val = m.e[0].data;
    return r;
}

static uint64_t msr(int vcpu, uint32_t idx)
{
    uint64_t val;
    assert_int_equal(msr_get(vcpu, idx, &val), 1);
    return val;
}

static void msr_set(int vcpu, uint32_t idx, uint64_t val)
{
    struct one_msr m = {.h.nmsrs = 1, .e[0] = {.index = idx, .data = val}};
    assert_int_equal(be->ioctl(vcpu, KVM_SET_MSRS, (unsigned long)&m), 1);
}

static void caps(void **state)
{
    (void)state;
    int sys = sys_open();
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_SET_BOOT_CPU_ID), 1);
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_GET_MSR_FEATURES), 1);
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_MSR_PLATFORM_INFO), 1);
    /* KVM_CLOCK_VALID_FLAGS, as x86.c answers KVM_CAP_ADJUST_CLOCK */
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK),
                     KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC);
    be->close(sys);
}

static void enable_cap(int vm, uint32_t cap, uint64_t arg, int want)
{
    struct kvm_enable_cap c = {.cap = cap, .args[0] = arg};
    assert_int_equal(be->ioctl(vm, KVM_ENABLE_CAP, (unsigned long)&c), want);
}

/* KVM_CAP_MAX_VCPU_ID: at most what KVM_CHECK_EXTENSION says, set once, and the first vCPU sets it to that. */
static void max_vcpu_id(void **state)
{
    (void)state;
    int sys = sys_open(), vm = vm_new(sys);
    int max = be->ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID);
    assert_true(max >= 2);
    enable_cap(vm, KVM_CAP_MAX_VCPU_ID, (uint64_t)max + 1, -EINVAL);
    enable_cap(vm, KVM_CAP_MAX_VCPU_ID, 2, 0);
    enable_cap(vm, KVM_CAP_MAX_VCPU_ID, 2, 0); /* the same value again */
    enable_cap(vm, KVM_CAP_MAX_VCPU_ID, 3, -EINVAL);
    assert_int_equal(be->ioctl(vm, KVM_CREATE_VCPU, 2), -EINVAL);
    int v1 = be->ioctl(vm, KVM_CREATE_VCPU, 1);
    assert_true(v1 >= 0);
    be->close(v1);
    be->close(vm);
    vm = vm_new(sys);
    int v0 = be->ioctl(vm, KVM_CREATE_VCPU, 0);
    assert_true(v0 >= 0);
    enable_cap(vm, KVM_CAP_MAX_VCPU_ID, 2, -EINVAL); /* the first vCPU fixed it at the largest */
    enable_cap(vm, KVM_CAP_MAX_VCPU_ID, (uint64_t)max, 0);
    be->close(v0);
    be->close(vm);
    be->close(sys);
}

/* KVM_SET_BOOT_CPU_ID: the chosen vCPU resets with IA32_APIC_BASE.BSP and, with the irqchip, LVT0 in ExtINT. */
static void boot_cpu_id(void **state)
{
    (void)state;
    int sys = sys_open(), vm = vm_new(sys);
    assert_int_equal(be->ioctl(vm, KVM_CREATE_IRQCHIP, 0), 0);
    assert_int_equal(be->ioctl(vm, KVM_SET_BOOT_CPU_ID, 1), 0);
    int v0 = be->ioctl(vm, KVM_CREATE_VCPU, 0), v1 = be->ioctl(vm, KVM_CREATE_VCPU, 1);
    assert_true(v0 >= 0 && v1 >= 0);
    assert_int_equal(msr(v0, MSR_APIC_BASE) & APIC_BASE_BSP, 0);
    assert_int_equal(msr(v1, MSR_APIC_BASE) & APIC_BASE_BSP, APIC_BASE_BSP);
    struct kvm_sregs s;
    assert_int_equal(be->ioctl(v1, KVM_GET_SREGS, (unsigned long)&s), 0);
    assert_true(s.apic_base & APIC_BASE_BSP);
    struct kvm_lapic_state l0, l1;
    assert_int_equal(be->ioctl(v0, KVM_GET_LAPIC, (unsigned long)&l0), 0);
    assert_int_equal(be->ioctl(v1, KVM_GET_LAPIC, (unsigned long)&l1), 0);
    uint32_t lvt0_0, lvt0_1;
    memcpy(&lvt0_0, &l0.regs[0x350], 4);
    memcpy(&lvt0_1, &l1.regs[0x350], 4);
    assert_int_equal(lvt0_0, 0x10000); /* masked */
    assert_int_equal(lvt0_1, 0x700);   /* ExtINT, unmasked (KVM_X86_QUIRK_LINT0_REENABLED) */
    assert_int_equal(be->ioctl(vm, KVM_SET_BOOT_CPU_ID, 0), -EBUSY);
    be->close(v0);
    be->close(v1);
    be->close(vm);
    /* By default vCPU 0 is the BSP. */
    vm = vm_new(sys);
    v0 = be->ioctl(vm, KVM_CREATE_VCPU, 0);
    v1 = be->ioctl(vm, KVM_CREATE_VCPU, 1);
    assert_int_equal(msr(v0, MSR_APIC_BASE) & APIC_BASE_BSP, APIC_BASE_BSP);
    assert_int_equal(msr(v1, MSR_APIC_BASE) & APIC_BASE_BSP, 0);
    be->close(v0);
    be->close(v1);
    be->close(vm);
    be->close(sys);
}

/* KVM_GET_MSR_FEATURE_INDEX_LIST and KVM_GET_MSRS on /dev/kvm's fd. */
static void feature_msrs(void **state)
{
    (void)state;
    int sys = sys_open();
    struct kvm_msr_list probe = {.nmsrs = 0};
    assert_int_equal(be->ioctl(sys, KVM_GET_MSR_FEATURE_INDEX_LIST, (unsigned long)&probe), -E2BIG);
    assert_int_equal(probe.nmsrs, 4); /* AMD's DE_CFG, UCODE_REV, ARCH_CAPABILITIES, PERF_CAPABILITIES */
    struct kvm_msr_list *l = calloc(1, sizeof *l + probe.nmsrs * sizeof(uint32_t));
    assert_non_null(l);
    l->nmsrs = probe.nmsrs;
    assert_int_equal(be->ioctl(sys, KVM_GET_MSR_FEATURE_INDEX_LIST, (unsigned long)l), 0);
    struct kvm_msrs *m = calloc(1, sizeof *m + (l->nmsrs + 1) * sizeof(struct kvm_msr_entry));
    assert_non_null(m);
    for (uint32_t i = 0; i < l->nmsrs; i++)
        m->entries[i].index = l->indices[i];
    m->nmsrs = l->nmsrs;
    assert_int_equal(be->ioctl(sys, KVM_GET_MSRS, (unsigned long)m), (int)l->nmsrs);
    for (uint32_t i = 0; i < l->nmsrs; i++)
        if (m->entries[i].index == 0x10a) /* ARCH_CAPABILITIES: not susceptible to Meltdown (RDCL_NO) */
            assert_true(m->entries[i].data & 1);
    /* An MSR that is not a feature MSR stops the list there, its data cleared, as KVM's msr_io. */
    m->entries[1].index = MSR_TSC;
    m->entries[1].data = 0x1234;
    assert_int_equal(be->ioctl(sys, KVM_GET_MSRS, (unsigned long)m), 1);
    assert_int_equal(m->entries[1].data, 0);
    m->nmsrs = 256;
    assert_int_equal(be->ioctl(sys, KVM_GET_MSRS, (unsigned long)m), -E2BIG);
    free(m);
    free(l);
    be->close(sys);
}

/*
 * A real-mode guest at 0x1000 (each OUT to 0xe9 is an exit):
 *   1: wrmsr IA32_TSC = 0x40_0000_0000        2: wrmsr IA32_TSC_ADJUST = 0x80_0000_0000
 *   3: rdmsr MSR_PLATFORM_INFO (EDX:EAX kept)  4: rdmsr MSR_PLATFORM_INFO again: #GP once turned off
 * The #GP handler (0x1100, IVT vector 13) outputs 'G'.
 */
static const uint8_t guest[] = {
    0x66, 0xb9, 0x10, 0x00, 0x00, 0x00, /* mov ecx, 0x10 */
    0x66, 0x31, 0xc0,                   /* xor eax, eax */
    0x66, 0xba, 0x40, 0x00, 0x00, 0x00, /* mov edx, 0x40 */
    0x0f, 0x30,                         /* wrmsr */
    0xb0, '1',  0xe6, 0xe9,             /* mov al, '1'; out 0xe9, al */
    0x66, 0xb9, 0x3b, 0x00, 0x00, 0x00, /* mov ecx, 0x3b */
    0x66, 0x31, 0xc0,                   /* xor eax, eax */
    0x66, 0xba, 0x80, 0x00, 0x00, 0x00, /* mov edx, 0x80 */
    0x0f, 0x30,                         /* wrmsr */
    0xb0, '2',  0xe6, 0xe9,             /* mov al, '2'; out 0xe9, al */
    0x66, 0xb9, 0xce, 0x00, 0x00, 0x00, /* mov ecx, 0xce */
    0x0f, 0x32,                         /* rdmsr */
    0x66, 0x89, 0xc3,                   /* mov ebx, eax */
    0xb0, '3',  0xe6, 0xe9,             /* mov al, '3'; out 0xe9, al */
    0x0f, 0x32,                         /* rdmsr */
    0xb0, '4',  0xe6, 0xe9,             /* mov al, '4'; out 0xe9, al */
    0xf4,                               /* hlt */
};
static const uint8_t gp_handler[] = {0xb0, 'G', 0xe6, 0xe9, 0xf4}; /* mov al, 'G'; out 0xe9, al; hlt */

static void guest_vm_create(struct soft_test_vm *g, bool tsc_adjust_cpuid)
{
    soft_test_vm_open(be, g, GUEST_MEM);
    memcpy(g->mem + 0x1000, guest, sizeof guest);
    memcpy(g->mem + 0x1100, gp_handler, sizeof gp_handler);
    uint32_t ivt = 0x1100;
    memcpy(g->mem + 13 * 4, &ivt, 4);
    soft_test_vcpu_open(be, g);
    /* The supported CPUID (it offers TSC_ADJUST, as KVM's), or the same without TSC_ADJUST. */
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + 100 * sizeof(struct kvm_cpuid_entry2));
    assert_non_null(c);
    c->nent = 100;
    assert_int_equal(be->ioctl(g->sys, KVM_GET_SUPPORTED_CPUID, (unsigned long)c), 0);
    bool offered = false;
    for (uint32_t i = 0; i < c->nent; i++) {
        if (c->entries[i].function == 7 && c->entries[i].index == 0) {
            offered = (c->entries[i].ebx & 2) != 0;
            if (!tsc_adjust_cpuid)
                c->entries[i].ebx &= ~2u;
        }
    }
    assert_true(offered);
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_CPUID2, (unsigned long)c), 0);
    free(c);
    struct kvm_sregs s;
    assert_int_equal(be->ioctl(g->vcpu, KVM_GET_SREGS, (unsigned long)&s), 0);
    s.cs.selector = 0;
    s.cs.base = 0;
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_SREGS, (unsigned long)&s), 0);
    struct kvm_regs regs = {.rip = 0x1000, .rflags = 2};
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_REGS, (unsigned long)&regs), 0);
}

static void guest_vm_destroy(struct soft_test_vm *g)
{
    soft_test_vm_close(be, g);
}

/* KVM_RUN to the next exit, which must be the guest's OUT of `c` to port 0xe9. */
static void expect_out(struct soft_test_vm *g, char c)
{
    assert_int_equal(be->ioctl(g->vcpu, KVM_RUN, 0), 0);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_IO);
    assert_int_equal(g->run->io.port, 0xe9);
    assert_int_equal(((char *)g->run)[g->run->io.data_offset], c);
}

/* Within 2^34 TSC ticks (several seconds at any host's rate): what elapsed since the vCPU was made. */
#define NEAR(a, b) ((a) - (b) + (1ull << 34) < (1ull << 35))

/* IA32_TSC_ADJUST and IA32_TSC, written by the guest and by the VMM (kvm_set_msr_common), and MSR_PLATFORM_INFO. */
static void tsc_adjust_and_platform_info(void **state)
{
    (void)state;
    struct soft_test_vm g;
    guest_vm_create(&g, true);
    uint64_t tsc0 = msr(g.vcpu, MSR_TSC);
    assert_true(NEAR(tsc0, 0));
    assert_int_equal(msr(g.vcpu, MSR_TSC_ADJUST), 0);
    assert_int_equal(msr(g.vcpu, MSR_PLATFORM_INFO), 1ull << 31); /* KVM's: CPUID faulting offered */
    msr_set(g.vcpu, MSR_PLATFORM_INFO, (1ull << 31) | 0xff00);

    /* The guest's write to IA32_TSC moves IA32_TSC_ADJUST by as much. */
    expect_out(&g, '1');
    uint64_t tsc = msr(g.vcpu, MSR_TSC), adj = msr(g.vcpu, MSR_TSC_ADJUST);
    assert_true(NEAR(tsc, 0x4000000000ull));
    assert_true(NEAR(adj, 0x4000000000ull));
    assert_true(NEAR(tsc - adj, 0)); /* TSC - ADJUST: the TSC as it would be without the write */

    /* The guest's write to IA32_TSC_ADJUST moves the TSC by as much. */
    expect_out(&g, '2');
    assert_int_equal(msr(g.vcpu, MSR_TSC_ADJUST), 0x8000000000ull);
    tsc = msr(g.vcpu, MSR_TSC);
    assert_true(NEAR(tsc, 0x8000000000ull));

    /* The VMM's write to IA32_TSC leaves IA32_TSC_ADJUST alone; its write to IA32_TSC_ADJUST leaves the TSC. */
    msr_set(g.vcpu, MSR_TSC, 0x1000000000000ull);
    assert_int_equal(msr(g.vcpu, MSR_TSC_ADJUST), 0x8000000000ull);
    assert_true(NEAR(msr(g.vcpu, MSR_TSC), 0x1000000000000ull));
    msr_set(g.vcpu, MSR_TSC_ADJUST, 12345);
    assert_int_equal(msr(g.vcpu, MSR_TSC_ADJUST), 12345);
    assert_true(NEAR(msr(g.vcpu, MSR_TSC), 0x1000000000000ull));

    /* MSR_PLATFORM_INFO reads what the VMM wrote; turned off, the guest's RDMSR takes #GP. */
    expect_out(&g, '3');
    struct kvm_regs regs;
    assert_int_equal(be->ioctl(g.vcpu, KVM_GET_REGS, (unsigned long)&regs), 0);
    assert_int_equal((uint32_t)regs.rbx, (1u << 31) | 0xff00);
    enable_cap(g.vm, KVM_CAP_MSR_PLATFORM_INFO, 0, 0);
    expect_out(&g, 'G');
    assert_int_equal(msr(g.vcpu, MSR_PLATFORM_INFO), (1ull << 31) | 0xff00); /* the VMM still reads it */
    guest_vm_destroy(&g);
}

/* Without TSC_ADJUST in the vCPU's CPUID, KVM drops writes to IA32_TSC_ADJUST (guest's and VMM's) without a fault. */
static void tsc_adjust_without_cpuid(void **state)
{
    (void)state;
    struct soft_test_vm g;
    guest_vm_create(&g, false);
    msr_set(g.vcpu, MSR_TSC_ADJUST, 777);
    assert_int_equal(msr(g.vcpu, MSR_TSC_ADJUST), 0);
    expect_out(&g, '1');
    assert_true(NEAR(msr(g.vcpu, MSR_TSC_ADJUST), 0x4000000000ull)); /* a TSC write still counts */
    uint64_t adj = msr(g.vcpu, MSR_TSC_ADJUST);
    expect_out(&g, '2');
    assert_int_equal(msr(g.vcpu, MSR_TSC_ADJUST), adj);
    assert_true(NEAR(msr(g.vcpu, MSR_TSC), 0x4000000000ull)); /* the TSC did not move */
    guest_vm_destroy(&g);
}

/*
 * KVM's TSC matching (kvm_synchronize_tsc): a new vCPU joins the first one's TSC line; the VMM's write of a value
 * within a second of where the last write would be is taken as an attempt to synchronize (the offset stays); a
 * write further off sets the TSC.
 */
static void tsc_sync(void **state)
{
    (void)state;
    int sys = sys_open(), vm = vm_new(sys);
    int v0 = be->ioctl(vm, KVM_CREATE_VCPU, 0);
    assert_true(v0 >= 0);
    struct timespec d = {0, 200 * 1000 * 1000};
    nanosleep(&d, NULL);
    int v1 = be->ioctl(vm, KVM_CREATE_VCPU, 1);
    assert_true(v1 >= 0);
    int khz = be->ioctl(v0, KVM_GET_TSC_KHZ, 0);
    assert_true(khz > 0);
    uint64_t hz = (uint64_t)khz * 1000, t0 = msr(v0, MSR_TSC), t1 = msr(v1, MSR_TSC);
    /* 200 ms apart, yet on one line: v1 reads at least what v0 read just before, and far less than 200 ms more. */
    assert_true(t1 >= t0 && t1 - t0 < hz / 20);
    /* Half a second ahead of v1's TSC: taken as synchronizing, v1 stays on the line. */
    msr_set(v1, MSR_TSC, msr(v1, MSR_TSC) + hz / 2);
    t0 = msr(v0, MSR_TSC);
    t1 = msr(v1, MSR_TSC);
    assert_true(t1 >= t0 && t1 - t0 < hz / 20);
    /* Ten seconds ahead: a new line for v1, where the VMM put it. */
    uint64_t far = msr(v1, MSR_TSC) + 10 * hz;
    msr_set(v1, MSR_TSC, far);
    t1 = msr(v1, MSR_TSC);
    assert_true(t1 >= far && t1 - far < hz / 20);
    assert_true(t1 - msr(v0, MSR_TSC) > 9 * hz);
    be->close(v0);
    be->close(v1);
    be->close(vm);
    be->close(sys);
}

/* KVM_VCPU_TSC_CTRL's KVM_VCPU_TSC_OFFSET (KVM_CAP_VCPU_ATTRIBUTES): the guest TSC's offset, read and written. */
static void tsc_offset_attr(void **state)
{
    (void)state;
    int sys = sys_open(), vm = vm_new(sys);
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_ATTRIBUTES), 1);
    int v = be->ioctl(vm, KVM_CREATE_VCPU, 0);
    assert_true(v >= 0);
    uint64_t off = 0, hz = (uint64_t)be->ioctl(v, KVM_GET_TSC_KHZ, 0) * 1000;
    struct kvm_device_attr a = {.group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET, .addr = (uintptr_t)&off};
    assert_int_equal(be->ioctl(v, KVM_HAS_DEVICE_ATTR, (unsigned long)&a), 0);
    assert_int_equal(be->ioctl(v, KVM_GET_DEVICE_ATTR, (unsigned long)&a), 0);
    uint64_t t0 = msr(v, MSR_TSC);
    off += 10 * hz; /* ten seconds ahead */
    assert_int_equal(be->ioctl(v, KVM_SET_DEVICE_ATTR, (unsigned long)&a), 0);
    uint64_t t1 = msr(v, MSR_TSC), got = 0;
    assert_true(t1 - t0 >= 10 * hz && t1 - t0 < 10 * hz + hz / 20);
    a.addr = (uintptr_t)&got;
    assert_int_equal(be->ioctl(v, KVM_GET_DEVICE_ATTR, (unsigned long)&a), 0);
    assert_true(got == off);
    /* Another group or attribute: -ENXIO; no address: -EFAULT. */
    struct kvm_device_attr bad = {.group = 1, .addr = (uintptr_t)&got};
    assert_int_equal(be->ioctl(v, KVM_HAS_DEVICE_ATTR, (unsigned long)&bad), -ENXIO);
    bad = (struct kvm_device_attr){.group = KVM_VCPU_TSC_CTRL, .attr = 1, .addr = (uintptr_t)&got};
    assert_int_equal(be->ioctl(v, KVM_GET_DEVICE_ATTR, (unsigned long)&bad), -ENXIO);
    bad.attr = KVM_VCPU_TSC_OFFSET;
    bad.addr = 0;
    assert_int_equal(be->ioctl(v, KVM_SET_DEVICE_ATTR, (unsigned long)&bad), -EFAULT);
    be->close(v);
    be->close(vm);
    be->close(sys);
}

/* The host's CLOCK_REALTIME as the backend reads it (KVM_GET_CLOCK's realtime: virtual in deterministic mode). */
static uint64_t realtime_ns(int vm)
{
    struct kvm_clock_data c;
    assert_int_equal(be->ioctl(vm, KVM_GET_CLOCK, (unsigned long)&c), 0);
    assert_true(c.flags & KVM_CLOCK_REALTIME);
    return c.realtime;
}

/* pvclock_vcpu_time_info as a guest reads it, for a guest TSC value. */
static uint64_t pvclock_read(const uint8_t *p, uint64_t tsc)
{
    uint64_t ts, sys;
    uint32_t mul;
    int8_t shift;
    memcpy(&ts, p + 8, 8);
    memcpy(&sys, p + 16, 8);
    memcpy(&mul, p + 24, 4);
    memcpy(&shift, p + 28, 1);
    uint64_t d = tsc - ts;
    d = shift >= 0 ? d << shift : d >> -shift;
    return sys + (uint64_t)(((unsigned __int128)d * mul) >> 32);
}

/* KVM_GET/SET_CLOCK with KVM_CLOCK_REALTIME, and the vCPU's kvmclock page between two KVM_GET_CLOCKs. */
static void vm_clock(void **state)
{
    (void)state;
    struct soft_test_vm g;
    guest_vm_create(&g, true);
    struct kvm_clock_data c = {.clock = 5000000000ull}, a, b;
    assert_int_equal(be->ioctl(g.vm, KVM_SET_CLOCK, (unsigned long)&c), 0);
    assert_int_equal(be->ioctl(g.vm, KVM_GET_CLOCK, (unsigned long)&a), 0);
    assert_int_equal(a.flags & (KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC), KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC);
    assert_true(a.clock >= 5000000000ull && a.clock < 6000000000ull);
    /* REALTIME: the clock moves on by the real time since c.realtime; never back when c.realtime is ahead. */
    c = (struct kvm_clock_data){
        .flags = KVM_CLOCK_REALTIME, .clock = 0, .realtime = realtime_ns(g.vm) - 180000000000ull};
    assert_int_equal(be->ioctl(g.vm, KVM_SET_CLOCK, (unsigned long)&c), 0);
    assert_int_equal(be->ioctl(g.vm, KVM_GET_CLOCK, (unsigned long)&a), 0);
    assert_true(a.clock >= 180000000000ull && a.clock < 181000000000ull);
    c = (struct kvm_clock_data){
        .flags = KVM_CLOCK_REALTIME, .clock = 0, .realtime = realtime_ns(g.vm) + 180000000000ull};
    assert_int_equal(be->ioctl(g.vm, KVM_SET_CLOCK, (unsigned long)&c), 0);
    assert_int_equal(be->ioctl(g.vm, KVM_GET_CLOCK, (unsigned long)&a), 0);
    assert_true(a.clock < 1000000000ull);
    /* KVM_GET_CLOCK's answer goes back as it is; a flag outside KVM_CLOCK_VALID_FLAGS is -EINVAL. */
    assert_int_equal(be->ioctl(g.vm, KVM_SET_CLOCK, (unsigned long)&a), 0);
    c = (struct kvm_clock_data){.flags = 1u << 4};
    assert_int_equal(be->ioctl(g.vm, KVM_SET_CLOCK, (unsigned long)&c), -EINVAL);

    /*
     * The kvmclock page at 0x8000: read at the guest TSC, it lies between two KVM_GET_CLOCKs around that read, right
     * after KVM_SET_CLOCK published it and 300 ms later (one clock: KVM's master clock, not two that drift apart).
     */
    msr_set(g.vcpu, MSR_SYSTEM_TIME, 0x8000 | 1);
    for (int i = 0; i < 4; i++) {
        c = (struct kvm_clock_data){.clock = (uint64_t)i * 180000000000ull};
        if (i < 3)
            assert_int_equal(be->ioctl(g.vm, KVM_SET_CLOCK, (unsigned long)&c), 0);
        else
            nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
        assert_int_equal(be->ioctl(g.vm, KVM_GET_CLOCK, (unsigned long)&a), 0);
        uint64_t obs = pvclock_read(g.mem + 0x8000, msr(g.vcpu, MSR_TSC));
        assert_int_equal(be->ioctl(g.vm, KVM_GET_CLOCK, (unsigned long)&b), 0);
        if (obs < a.clock || obs > b.clock)
            fail_msg("kvmclock page reads %llu, outside KVM_GET_CLOCK's [%llu, %llu]", (unsigned long long)obs,
                     (unsigned long long)a.clock, (unsigned long long)b.clock);
    }
    guest_vm_destroy(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(caps),
        cmocka_unit_test(max_vcpu_id),
        cmocka_unit_test(boot_cpu_id),
        cmocka_unit_test(feature_msrs),
        cmocka_unit_test(tsc_adjust_and_platform_info),
        cmocka_unit_test(tsc_adjust_without_cpuid),
        cmocka_unit_test(tsc_sync),
        cmocka_unit_test(tsc_offset_attr),
        cmocka_unit_test(vm_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
