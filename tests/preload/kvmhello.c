/*
 * The classic first KVM program, written against /dev/kvm with linux/kvm.h and libc only: a real-mode guest prints
 * through OUT and stops with HLT. It knows nothing of minivmm; the preload tests run it unchanged on real KVM and
 * on the soft backend (minivmm exec), and compare what it prints.
 *
 *   kvmhello             the built-in guest: 2 + 2 and a newline to port 0x3f8, then HLT
 *   kvmhello IMAGE       a flat real-mode image loaded at 0x1000 (the kit's lab 1 guests)
 *
 * Prints one line per exit, then the console's text. Exit status: 0 the guest halted or reported done, 1 it
 * reported a failed assertion, 2 bad usage, 3 any other exit, 4 too many exits, 5 a KVM call failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MEM_SIZE  0x200000
#define LOAD_GPA  0x1000
#define MAX_EXITS 10000
/* The kit's guests: console ports, and the test port that gets the address of a {cmd, line, actual, expected, msg}. */
#define PORT_SERIAL    0x3f8
#define PORT_DEBUG     0xe9
#define PORT_UCALL     0x500
#define UCALL_DONE     1
#define UCALL_ASSERT   2
#define UART_LSR       (PORT_SERIAL + 5)
#define UART_SCR       (PORT_SERIAL + 7)
#define UART_LSR_EMPTY 0x60

static const uint8_t builtin_guest[] = {
    0xba, 0xf8, 0x03, /* mov $0x3f8, %dx */
    0x00, 0xd8,       /* add %bl, %al */
    0x04, '0',        /* add $'0', %al */
    0xee,             /* out %al, (%dx) */
    0xb0, '\n',       /* mov $'\n', %al */
    0xee,             /* out %al, (%dx) */
    0xf4,             /* hlt */
};

static int fail(const char *what)
{
    fprintf(stderr, "kvmhello: %s: %s\n", what, strerror(errno));
    return 5;
}

/* The image's bytes at LOAD_GPA; 0 or an exit status with a message. */
static int load_image(const char *path, uint8_t *mem)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "kvmhello: %s: %s\n", path, strerror(errno));
        return 2;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > MEM_SIZE - LOAD_GPA) {
        fprintf(stderr, "kvmhello: %s: not a flat image of 1 to %d bytes\n", path, MEM_SIZE - LOAD_GPA);
        close(fd);
        return 2;
    }
    ssize_t n = read(fd, mem + LOAD_GPA, (size_t)st.st_size);
    close(fd);
    if (n != st.st_size) {
        fprintf(stderr, "kvmhello: %s: short read\n", path);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: kvmhello [IMAGE]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        return fail("open /dev/kvm");
    int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        fprintf(stderr, "kvmhello: KVM_GET_API_VERSION gave %d, expected %d\n", api, KVM_API_VERSION);
        return 5;
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0UL);
    if (vm < 0)
        return fail("KVM_CREATE_VM");
    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return fail("mmap of guest memory");
    if (argc == 2) {
        int rc = load_image(argv[1], mem);
        if (rc)
            return rc;
    } else {
        memcpy(mem + LOAD_GPA, builtin_guest, sizeof builtin_guest);
    }
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return fail("KVM_SET_USER_MEMORY_REGION");
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0UL);
    if (vcpu < 0)
        return fail("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run))
        return fail("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        return fail("mmap of kvm_run");

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        return fail("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        return fail("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = LOAD_GPA, .rax = 2, .rbx = 2, .rflags = 0x2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        return fail("KVM_SET_REGS");

    char console[4096];
    size_t console_len = 0;
    uint8_t scratch = 0;
    int status = 4;
    for (int exits = 0; exits < MAX_EXITS && status == 4; exits++) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0)
            return fail("KVM_RUN");
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            bool out = run->io.direction == KVM_EXIT_IO_OUT;
            printf("exit io %s port=0x%x size=%u count=%u", out ? "out" : "in", run->io.port, run->io.size,
                   run->io.count);
            for (uint32_t i = 0; i < run->io.count; i++) {
                uint8_t *d = data + i * run->io.size;
                uint32_t v = 0;
                if (out) {
                    memcpy(&v, d, run->io.size);
                    printf(" %x", v);
                    if ((run->io.port == PORT_SERIAL || run->io.port == PORT_DEBUG) && console_len < sizeof console)
                        console[console_len++] = (char)v;
                    if (run->io.port == UART_SCR)
                        scratch = (uint8_t)v;
                } else {
                    v = run->io.port == UART_LSR ? UART_LSR_EMPTY : run->io.port == UART_SCR ? scratch : 0xffffffff;
                    memcpy(d, &v, run->io.size);
                }
            }
            printf("\n");
            if (out && run->io.port == PORT_UCALL && run->io.size == 4) {
                uint32_t gpa, cmd = 0;
                memcpy(&gpa, data, 4);
                if (gpa <= MEM_SIZE - 24)
                    memcpy(&cmd, mem + gpa, 4);
                if (cmd == UCALL_DONE) {
                    printf("ucall done\n");
                    status = 0;
                } else if (cmd == UCALL_ASSERT) {
                    printf("ucall assert failed: %.*s\n", 64, (char *)mem + gpa + 24);
                    status = 1;
                }
            }
            break;
        }
        case KVM_EXIT_HLT:
            printf("exit hlt\n");
            status = 0;
            break;
        case KVM_EXIT_MMIO:
            printf("exit mmio %s addr=0x%llx len=%u\n", run->mmio.is_write ? "write" : "read",
                   (unsigned long long)run->mmio.phys_addr, run->mmio.len);
            if (!run->mmio.is_write)
                memset(run->mmio.data, 0xff, sizeof run->mmio.data);
            break;
        case KVM_EXIT_SHUTDOWN:
            printf("exit shutdown\n");
            status = 3;
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            printf("exit internal error, suberror %u\n", run->internal.suberror);
            status = 3;
            break;
        default:
            printf("exit reason %u\n", run->exit_reason);
            status = 3;
            break;
        }
    }
    printf("console: %.*s", (int)console_len, console);
    if (console_len == 0 || console[console_len - 1] != '\n')
        printf("\n");
    munmap(run, (size_t)run_size);
    close(vcpu);
    close(vm);
    close(kvm);
    munmap(mem, MEM_SIZE);
    return status;
}
