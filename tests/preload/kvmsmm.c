/*
 * System management mode through /dev/kvm, written against linux/kvm.h and libc only: SMRAM in memory address space
 * 1, MSR_IA32_SMBASE, KVM_SMI, the SMI handler's view of memory (address space 1 only), the state-save area KVM
 * writes, RSM, an SMI held while in SMM and taken after RSM, RSM outside SMM (#UD), MSR_SMI_COUNT. The preload tests
 * run it unchanged on real KVM and on the soft backend (minivmm exec), and compare what it prints.
 *
 * Prints one line per step. Exit status: 0 done, 3 an unexpected exit, 5 a KVM call failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE   0x100000
#define SMBASE     0x40000
#define SMRAM_SIZE 0x10000
#define MSR_SMBASE 0x9e
#define MSR_SMI_CT 0x34

/* 0x1000: mov al,0x11; out 0x80,al; rsm (#UD outside SMM). 0x1100 (#UD): mov al,0x66; out 0x83,al; hlt */
static const uint8_t main_code[] = {0xb0, 0x11, 0xe6, 0x80, 0x0f, 0xaa};
static const uint8_t ud_code[] = {0xb0, 0x66, 0xe6, 0x83, 0xf4};
/* SMBASE + 0x8000 in address space 1: mov al,[0x1000] (RAM only in address space 0); out 0x82,al; rsm */
static const uint8_t smi_code[] = {0xa0, 0x00, 0x10, 0xe6, 0x82, 0x0f, 0xaa};

static int vcpu_fd;
static struct kvm_run *run;
static uint8_t *smram;

static int fail(const char *what)
{
    fprintf(stderr, "kvmsmm: %s: %s\n", what, strerror(errno));
    exit(5);
}

static void xioctl(int fd, unsigned long req, void *arg, const char *name)
{
    if (ioctl(fd, req, arg) < 0)
        fail(name);
}

static uint64_t msr_get(uint32_t idx)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = idx};
    if (ioctl(vcpu_fd, KVM_GET_MSRS, &m) != 1)
        fail("KVM_GET_MSRS");
    return m.e.data;
}

/* One KVM_RUN; prints the exit. Returns the exit reason. */
static unsigned step(void)
{
    if (ioctl(vcpu_fd, KVM_RUN, 0) < 0)
        fail("KVM_RUN");
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        printf("exit io %s port=0x%x size=%u data=0x%x\n", run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
               run->io.port, run->io.size, ((uint8_t *)run)[run->io.data_offset]);
        break;
    case KVM_EXIT_MMIO:
        printf("exit mmio %s addr=0x%llx len=%u\n", run->mmio.is_write ? "write" : "read",
               (unsigned long long)run->mmio.phys_addr, run->mmio.len);
        break;
    default:
        printf("exit reason %u\n", run->exit_reason);
    }
    return run->exit_reason;
}

static void show_events(const char *when)
{
    struct kvm_vcpu_events ev;
    xioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
    printf("%s: smi.smm=%u smi.pending=%u smm_inside_nmi=%u valid_smm=%u\n", when, ev.smi.smm, ev.smi.pending,
           ev.smi.smm_inside_nmi, !!(ev.flags & KVM_VCPUEVENT_VALID_SMM));
}

static void show_cpu(const char *when)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    xioctl(vcpu_fd, KVM_GET_REGS, &r, "KVM_GET_REGS");
    xioctl(vcpu_fd, KVM_GET_SREGS, &s, "KVM_GET_SREGS");
    printf("%s: rip=0x%llx rflags=0x%llx rax=0x%llx cs=0x%x base=0x%llx limit=0x%x type=%u s=%u db=%u g=%u "
           "ds.base=0x%llx ds.limit=0x%x cr0=0x%llx cr4=0x%llx efer=0x%llx idt=0x%llx/0x%x\n",
           when, (unsigned long long)r.rip, (unsigned long long)r.rflags, (unsigned long long)r.rax, s.cs.selector,
           (unsigned long long)s.cs.base, s.cs.limit, s.cs.type, s.cs.s, s.cs.db, s.cs.g, (unsigned long long)s.ds.base,
           s.ds.limit, (unsigned long long)s.cr0, (unsigned long long)s.cr4, (unsigned long long)s.efer,
           (unsigned long long)s.idt.base, s.idt.limit);
}

/* The state-save area at SMBASE + 0xfe00: every nonzero 32-bit word, by its SDM offset (0x7e00-0x7fff). */
static void show_save_area(void)
{
    printf("state-save area:");
    for (unsigned off = 0; off < 512; off += 4) {
        uint32_t w;
        memcpy(&w, smram + 0xfe00 + off, 4);
        if (w)
            printf(" %04x=%x", 0x7e00 + off, w);
    }
    printf("\n");
}

int main(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        fail("/dev/kvm");
    printf("KVM_CAP_X86_SMM=%d KVM_CAP_MULTI_ADDRESS_SPACE=%d\n", ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_X86_SMM),
           ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MULTI_ADDRESS_SPACE));
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        fail("KVM_CREATE_VM");
    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    smram = mmap(NULL, SMRAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED || smram == MAP_FAILED)
        fail("mmap");
    memcpy(mem + 0x1000, main_code, sizeof main_code);
    memcpy(mem + 0x1100, ud_code, sizeof ud_code);
    uint32_t ud_vector = 0x1100; /* IVT entry 6: 0000:1100 */
    memcpy(mem + 6 * 4, &ud_vector, 4);
    mem[SMBASE + 0x8000] = 0xf4; /* address space 0 at the handler's address: never run */
    memcpy(smram + 0x8000, smi_code, sizeof smi_code);
    struct kvm_userspace_memory_region r0 = {.slot = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)mem};
    struct kvm_userspace_memory_region r1 = {
        .slot = 1u << 16 | 1, .guest_phys_addr = SMBASE, .memory_size = SMRAM_SIZE, .userspace_addr = (uintptr_t)smram};
    xioctl(vm, KVM_SET_USER_MEMORY_REGION, &r0, "KVM_SET_USER_MEMORY_REGION (address space 0)");
    xioctl(vm, KVM_SET_USER_MEMORY_REGION, &r1, "KVM_SET_USER_MEMORY_REGION (address space 1)");
    struct kvm_userspace_memory_region r2 = r1;
    r2.slot = 2u << 16 | 1;
    printf("address space 2: %s\n", ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r2) < 0 ? strerror(errno) : "taken");
    vcpu_fd = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu_fd < 0)
        fail("KVM_CREATE_VCPU");
    int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
    if (run == MAP_FAILED)
        fail("mmap kvm_run");
    /* The supported CPUID (long mode: the AMD64 state-save layout). */
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof *cpuid + 100 * sizeof(struct kvm_cpuid_entry2));
    if (!cpuid)
        fail("calloc");
    cpuid->nent = 100;
    xioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid, "KVM_GET_SUPPORTED_CPUID");
    xioctl(vcpu_fd, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
    free(cpuid);
    struct kvm_sregs s;
    xioctl(vcpu_fd, KVM_GET_SREGS, &s, "KVM_GET_SREGS");
    s.cs.selector = 0;
    s.cs.base = 0;
    xioctl(vcpu_fd, KVM_SET_SREGS, &s, "KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = 0x1000,
                            .rflags = 2,
                            .rax = 0x1111111122222222ull,
                            .rbx = 0xb,
                            .rcx = 0xc,
                            .rdx = 0xd,
                            .rsi = 0x51,
                            .rdi = 0xd1,
                            .rsp = 0x8000,
                            .rbp = 0xb9,
                            .r8 = 8,
                            .r15 = 15};
    xioctl(vcpu_fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
    printf("SMBASE at reset=0x%llx\n", (unsigned long long)msr_get(MSR_SMBASE));
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = MSR_SMBASE, .e.data = SMBASE};
    if (ioctl(vcpu_fd, KVM_SET_MSRS, &m) != 1)
        fail("KVM_SET_MSRS");
    printf("SMBASE=0x%llx\n", (unsigned long long)msr_get(MSR_SMBASE));

    xioctl(vcpu_fd, KVM_SMI, NULL, "KVM_SMI");
    show_events("after KVM_SMI");
    if (step() != KVM_EXIT_MMIO) /* the handler reads 0x1000: address space 1 has no RAM there */
        return 3;
    run->mmio.data[0] = 0x77;
    if (step() != KVM_EXIT_IO)
        return 3;
    show_cpu("in SMM");
    show_events("in SMM");
    show_save_area();
    /* Another SMI while in SMM waits for RSM, then goes in at once. */
    xioctl(vcpu_fd, KVM_SMI, NULL, "KVM_SMI");
    show_events("second KVM_SMI in SMM");
    if (step() != KVM_EXIT_MMIO)
        return 3;
    run->mmio.data[0] = 0x78;
    if (step() != KVM_EXIT_IO)
        return 3;
    show_events("in SMM again");
    if (step() != KVM_EXIT_IO) /* RSM: back at 0x1000 */
        return 3;
    show_cpu("after RSM");
    show_events("after RSM");
    if (step() != KVM_EXIT_IO) /* RSM outside SMM: #UD */
        return 3;
    if (step() != KVM_EXIT_HLT)
        return 3;
    printf("SMI_COUNT=%llu\n", (unsigned long long)msr_get(MSR_SMI_CT));
    return 0;
}
