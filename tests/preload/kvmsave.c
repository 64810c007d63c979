/*
 * KVM's vCPU state save and restore, as an unmodified program sees it (linux/kvm.h and libc only): what a new vCPU
 * reports through KVM_GET_FPU, KVM_GET_XSAVE, KVM_GET_XCRS, KVM_GET_DEBUGREGS and KVM_GET_VCPU_EVENTS, the values KVM
 * refuses, round trips, and a real-mode guest that reads back what was set: XMM1 from KVM_SET_XSAVE, an NMI from
 * KVM_SET_VCPU_EVENTS (masked in its handler until IRET), an injected #UD. The preload tests run it on real KVM and on
 * the soft backend (minivmm exec) and compare what it prints, line for line. It prints only what does not depend on
 * the host CPU (not the host's XCR0 in the XSAVE software bytes, nor whether AVX state is accepted), and after
 * KVM_SET_XSAVE with no component only what KVM's buffer shows the same before and after the vCPU runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE 0x10000

/*
 * 0x1000: movd eax,xmm1; out 0x80,eax; hlt; hlt
 * 0x1100 (NMI): mov al,'N'; out 0x81,al; iret
 * 0x1200 (#UD): mov al,'U'; out 0x82,al; iret
 */
static const uint8_t code[] = {0x66, 0x0f, 0x7e, 0xc8, 0x66, 0xe7, 0x80, 0xf4, 0xf4};
static const uint8_t nmi_handler[] = {0xb0, 'N', 0xe6, 0x81, 0xcf};
static const uint8_t ud_handler[] = {0xb0, 'U', 0xe6, 0x82, 0xcf};

static struct kvm_xsave xs;
static int vcpu;
static struct kvm_run *run;

static uint64_t u64(const void *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static uint32_t u32(const void *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

/* The ioctl's result as "0" or the errno's name. */
static const char *res(int r)
{
    static char buf[32];
    if (r >= 0)
        snprintf(buf, sizeof buf, "%d", r);
    else
        snprintf(buf, sizeof buf, "%s", errno == EINVAL ? "EINVAL" : errno == EFAULT ? "EFAULT" : "other errno");
    return buf;
}

static void show_xsave(const char *what, int all)
{
    memset(&xs, 0xaa, sizeof xs);
    int r = ioctl(vcpu, KVM_GET_XSAVE, &xs);
    const uint8_t *b = (const uint8_t *)xs.region;
    printf("%s: KVM_GET_XSAVE %s fcw=%x fsw=%x ftw=%x xmm1=%llx ymm0h=%llx rest=%s", what, res(r), b[0] | b[1] << 8,
           b[2] | b[3] << 8, b[4], (unsigned long long)u64(b + 176), (unsigned long long)u64(b + 576),
           b[4095] == 0 ? "0" : "not 0");
    if (all)
        printf(" mxcsr=%x mask=%x xstate_bv=%llx xcomp_bv=%llx", u32(b + 24), u32(b + 28),
               (unsigned long long)u64(b + 512), (unsigned long long)u64(b + 520));
    printf("\n");
}

static void show_events(const char *what)
{
    struct kvm_vcpu_events e;
    memset(&e, 0xaa, sizeof e);
    int r = ioctl(vcpu, KVM_GET_VCPU_EVENTS, &e);
    printf("%s: KVM_GET_VCPU_EVENTS %s flags=%x exception=%u/%u nr=%u err=%u/%x interrupt=%u nr=%u shadow=%u "
           "nmi=%u/%u/%u sipi=%u smi=%u/%u/%u/%u\n",
           what, res(r), e.flags, e.exception.injected, e.exception.pending, e.exception.nr, e.exception.has_error_code,
           e.exception.error_code, e.interrupt.injected, e.interrupt.nr, e.interrupt.shadow, e.nmi.injected,
           e.nmi.pending, e.nmi.masked, e.sipi_vector, e.smi.smm, e.smi.pending, e.smi.smm_inside_nmi,
           e.smi.latched_init);
}

static void run_once(const char *what)
{
    int r = ioctl(vcpu, KVM_RUN, 0);
    if (r < 0) {
        printf("%s: KVM_RUN %s\n", what, res(r));
        return;
    }
    if (run->exit_reason == KVM_EXIT_IO) {
        uint32_t data = 0;
        memcpy(&data, (uint8_t *)run + run->io.data_offset, run->io.size);
        printf("%s: exit IO %s port=0x%x size=%u data=0x%x\n", what, run->io.direction ? "out" : "in", run->io.port,
               run->io.size, data);
    } else {
        printf("%s: exit %u\n", what, run->exit_reason);
    }
}

int main(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        perror("open /dev/kvm");
        return 1;
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (vm < 0 || mem == MAP_FAILED) {
        perror("KVM_CREATE_VM or mmap");
        return 1;
    }
    printf("caps: XSAVE=%d XSAVE2=%d XCRS=%d DEBUGREGS=%d VCPU_EVENTS=%d\n",
           ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE), ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2),
           ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_XCRS), ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS),
           ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_EVENTS));
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uint64_t)(uintptr_t)mem};
    vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0 || vcpu < 0 || size <= 0) {
        perror("memory region or vCPU");
        return 1;
    }
    run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) {
        perror("mmap kvm_run");
        return 1;
    }

    /* A new vCPU. */
    struct kvm_fpu fpu;
    memset(&fpu, 0xaa, sizeof fpu);
    int r = ioctl(vcpu, KVM_GET_FPU, &fpu);
    printf("new: KVM_GET_FPU %s fcw=%x fsw=%x ftwx=%x mxcsr=%x\n", res(r), fpu.fcw, fpu.fsw, fpu.ftwx, fpu.mxcsr);
    show_xsave("new", 1);
    struct kvm_xcrs xc;
    memset(&xc, 0xaa, sizeof xc);
    r = ioctl(vcpu, KVM_GET_XCRS, &xc);
    printf("new: KVM_GET_XCRS %s nr=%u flags=%u xcr=%u value=%llx\n", res(r), xc.nr_xcrs, xc.flags, xc.xcrs[0].xcr,
           (unsigned long long)xc.xcrs[0].value);
    struct kvm_debugregs d;
    memset(&d, 0xaa, sizeof d);
    r = ioctl(vcpu, KVM_GET_DEBUGREGS, &d);
    printf("new: KVM_GET_DEBUGREGS %s db0=%llx dr6=%llx dr7=%llx flags=%llx\n", res(r), (unsigned long long)d.db[0],
           (unsigned long long)d.dr6, (unsigned long long)d.dr7, (unsigned long long)d.flags);
    show_events("new");

    /* What KVM refuses. */
    xc.xcrs[0].value = 3;
    printf("KVM_SET_XCRS XCR0=3 with no CPUID leaf 0xD: %s\n", res(ioctl(vcpu, KVM_SET_XCRS, &xc)));
    xc.xcrs[0].value = 1;
    xc.flags = 1;
    printf("KVM_SET_XCRS flags=1: %s\n", res(ioctl(vcpu, KVM_SET_XCRS, &xc)));
    xc.flags = 0;
    printf("KVM_SET_XCRS XCR0=1: %s\n", res(ioctl(vcpu, KVM_SET_XCRS, &xc)));
    struct kvm_debugregs dd = d;
    dd.dr7 = 1ull << 32;
    printf("KVM_SET_DEBUGREGS DR7 bit 32: %s\n", res(ioctl(vcpu, KVM_SET_DEBUGREGS, &dd)));
    dd = d;
    dd.flags = 1;
    printf("KVM_SET_DEBUGREGS flags=1: %s\n", res(ioctl(vcpu, KVM_SET_DEBUGREGS, &dd)));
    dd = d;
    dd.db[1] = 0x1234;
    dd.dr7 = 0x404;
    r = ioctl(vcpu, KVM_SET_DEBUGREGS, &dd);
    memset(&d, 0xaa, sizeof d);
    int r2 = ioctl(vcpu, KVM_GET_DEBUGREGS, &d);
    printf("KVM_SET_DEBUGREGS DR1=0x1234 DR7=0x404: %s, then %s db1=%llx dr7=%llx\n", res(r), res(r2),
           (unsigned long long)d.db[1], (unsigned long long)d.dr7);
    struct kvm_vcpu_events e0, e;
    ioctl(vcpu, KVM_GET_VCPU_EVENTS, &e0);
    e = e0;
    e.flags |= 0x80;
    printf("KVM_SET_VCPU_EVENTS flag 0x80: %s\n", res(ioctl(vcpu, KVM_SET_VCPU_EVENTS, &e)));
    e = e0;
    e.flags |= KVM_VCPUEVENT_VALID_PAYLOAD;
    printf("KVM_SET_VCPU_EVENTS VALID_PAYLOAD (capability off): %s\n", res(ioctl(vcpu, KVM_SET_VCPU_EVENTS, &e)));
    e = e0;
    e.exception.injected = 1;
    e.exception.nr = 2;
    printf("KVM_SET_VCPU_EVENTS exception 2: %s\n", res(ioctl(vcpu, KVM_SET_VCPU_EVENTS, &e)));
    e.exception.nr = 32;
    printf("KVM_SET_VCPU_EVENTS exception 32: %s\n", res(ioctl(vcpu, KVM_SET_VCPU_EVENTS, &e)));

    /* Round trips of events, undone afterwards. */
    e = e0;
    e.interrupt.shadow = KVM_X86_SHADOW_INT_MOV_SS;
    e.nmi.pending = 1;
    e.nmi.masked = 1;
    e.exception.injected = 1;
    e.exception.nr = 13;
    e.exception.has_error_code = 1;
    e.exception.error_code = 0x18;
    e.interrupt.injected = 1;
    e.interrupt.nr = 0x30;
    printf("KVM_SET_VCPU_EVENTS #GP(0x18), interrupt 0x30, shadow, NMI pending and masked: %s\n",
           res(ioctl(vcpu, KVM_SET_VCPU_EVENTS, &e)));
    show_events("set");
    struct kvm_sregs s;
    ioctl(vcpu, KVM_GET_SREGS, &s);
    printf("set: KVM_GET_SREGS interrupt_bitmap[0]=%llx\n", (unsigned long long)s.interrupt_bitmap[0]);
    e.exception.nr = 3;
    e.exception.has_error_code = 0;
    printf("KVM_SET_VCPU_EVENTS #BP: %s\n", res(ioctl(vcpu, KVM_SET_VCPU_EVENTS, &e)));
    show_events("#BP");
    printf("KVM_SET_VCPU_EVENTS as new: %s\n", res(ioctl(vcpu, KVM_SET_VCPU_EVENTS, &e0)));
    show_events("as new");

    /* XSAVE: x87 and SSE given, then the header without its reserved bytes, the compacted format, MXCSR. */
    show_xsave("before", 1);
    uint8_t *b = (uint8_t *)xs.region;
    b[512] = 3;
    b[0] = 0x7f;
    b[1] = 0x02;
    uint32_t mx = 0x1fa0;
    memcpy(b + 24, &mx, 4);
    uint64_t x1 = 0x1122334455667788ull;
    memcpy(b + 176, &x1, 8);
    printf("KVM_SET_XSAVE x87+SSE, FCW 0x27f, MXCSR 0x1fa0, XMM1: %s\n", res(ioctl(vcpu, KVM_SET_XSAVE, &xs)));
    show_xsave("x87+SSE", 1);
    memset(&fpu, 0xaa, sizeof fpu);
    r = ioctl(vcpu, KVM_GET_FPU, &fpu);
    printf("x87+SSE: KVM_GET_FPU %s fcw=%x ftwx=%x mxcsr=%x xmm1=%llx\n", res(r), fpu.fcw, fpu.ftwx, fpu.mxcsr,
           (unsigned long long)u64(fpu.xmm[1]));
    b = (uint8_t *)xs.region;
    b[520] = 1;
    printf("KVM_SET_XSAVE XCOMP_BV=1: %s\n", res(ioctl(vcpu, KVM_SET_XSAVE, &xs)));
    b[520] = 0;
    b[540] = 1;
    printf("KVM_SET_XSAVE a reserved header byte: %s\n", res(ioctl(vcpu, KVM_SET_XSAVE, &xs)));
    b[540] = 0;
    mx = 0x10000;
    memcpy(b + 24, &mx, 4);
    printf("KVM_SET_XSAVE MXCSR 0x10000: %s\n", res(ioctl(vcpu, KVM_SET_XSAVE, &xs)));
    mx = 0x1fa0;
    memcpy(b + 24, &mx, 4);

    /* A real-mode guest: XMM1 as set, a pending NMI first (masked in its handler until IRET), an injected #UD. */
    memcpy(mem + 0x1000, code, sizeof code);
    memcpy(mem + 0x1100, nmi_handler, sizeof nmi_handler);
    memcpy(mem + 0x1200, ud_handler, sizeof ud_handler);
    uint32_t vec = 0x1100;
    memcpy(mem + 2 * 4, &vec, 4);
    vec = 0x1200;
    memcpy(mem + 6 * 4, &vec, 4);
    ioctl(vcpu, KVM_GET_SREGS, &s);
    s.cs.selector = 0;
    s.cs.base = 0;
    s.cr4 |= 1u << 9; /* OSFXSR */
    struct kvm_regs regs = {.rip = 0x1000, .rflags = 2, .rsp = 0x8000};
    r = ioctl(vcpu, KVM_SET_SREGS, &s);
    r2 = ioctl(vcpu, KVM_SET_REGS, &regs);
    printf("real mode at 0x1000: KVM_SET_SREGS %s, KVM_SET_REGS %s\n", res(r), res(r2));
    e = e0;
    e.nmi.pending = 1;
    printf("KVM_SET_VCPU_EVENTS NMI pending: %s\n", res(ioctl(vcpu, KVM_SET_VCPU_EVENTS, &e)));
    run_once("run 1");
    show_events("in the NMI handler");
    run_once("run 2");
    show_events("after its IRET");
    run_once("run 3");
    e = e0;
    e.exception.injected = 1;
    e.exception.nr = 6;
    printf("KVM_SET_VCPU_EVENTS #UD: %s\n", res(ioctl(vcpu, KVM_SET_VCPU_EVENTS, &e)));
    run_once("run 4");
    show_events("in the #UD handler");
    run_once("run 5");
    ioctl(vcpu, KVM_GET_REGS, &regs);
    printf("after the #UD handler's IRET: rip=%llx\n", (unsigned long long)regs.rip);
    show_xsave("after the runs", 1);

    /* No component given: x87 and SSE go to their initial state. */
    memset(b + 512, 0, 8);
    printf("KVM_SET_XSAVE no component: %s\n", res(ioctl(vcpu, KVM_SET_XSAVE, &xs)));
    show_xsave("no component", 0);
    return 0;
}
