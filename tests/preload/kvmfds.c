/*
 * KVM's file-descriptor semantics, checked by an unmodified program (linux/kvm.h and libc only): capabilities, a VM
 * kept alive by a dup of its fd, fd numbers, close-on-exec, mmap of the vCPU through another name, two vCPUs run by
 * two threads, dup2 over a KVM fd, and fork after close (KVM binds a VM to the process that created it: the child gets
 * EIO from it, and makes VMs of its own through /dev/kvm). The preload tests run it on real KVM and on the soft backend
 * (minivmm exec) and compare what it prints, line for line. Every line is "ok ..." or "FAIL ..."; the status is the
 * number of FAILs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MEM_SIZE 0x10000
#define LOAD_GPA 0x1000

static const uint8_t guest[] = {
    0xba, 0xf8, 0x03, /* mov $0x3f8, %dx */
    0x00, 0xd8,       /* add %bl, %al */
    0x04, '0',        /* add $'0', %al */
    0xee,             /* out %al, (%dx) */
    0xf4,             /* hlt */
};

static int fails;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fails += !ok;
}

/* ioctl's result as a word: "0", "fd", "> 0" or the errno's name. */
static const char *res(int r)
{
    if (r == 0)
        return "0";
    if (r > 0)
        return "> 0";
    switch (errno) {
    case EBADF:
        return "EBADF";
    case EIO:
        return "EIO";
    case EINVAL:
        return "EINVAL";
    case ENODEV:
        return "ENODEV";
    case ENOTTY:
        return "ENOTTY";
    case EEXIST:
        return "EEXIST";
    default:
        return strerror(errno);
    }
}

/* Regs for the guest: RIP at the code, AL + BL printed as a digit. */
static int guest_start(int vcpu, int a, int b)
{
    struct kvm_sregs s;
    if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0)
        return -1;
    s.cs.base = 0;
    s.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0)
        return -1;
    struct kvm_regs r = {.rip = LOAD_GPA, .rax = (unsigned)a, .rbx = (unsigned)b, .rflags = 2};
    return ioctl(vcpu, KVM_SET_REGS, &r);
}

/* Runs the guest to its HLT; the digit it printed, or -1. */
static int guest_run(int vcpu, struct kvm_run *run)
{
    int digit = -1;
    for (int i = 0; i < 10; i++) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0)
            return -1;
        if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0x3f8)
            digit = *((uint8_t *)run + run->io.data_offset) - '0';
        else if (run->exit_reason == KVM_EXIT_HLT)
            return digit;
        else
            return -1;
    }
    return -1;
}

struct vcpu_thread {
    int vcpu, a, b, digit;
    struct kvm_run *run;
};

/* A thread's vCPU runs the guest: the digit it printed into t->digit. */
static void *vcpu_thread(void *arg)
{
    struct vcpu_thread *t = arg;
    t->digit = guest_start(t->vcpu, t->a, t->b) < 0 ? -1 : guest_run(t->vcpu, t->run);
    return NULL;
}

/* A VM with the guest's memory: its fd, or -1. */
static int vm_new(int kvm, uint8_t **mem_out)
{
    int vm = ioctl(kvm, KVM_CREATE_VM, 0UL);
    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (vm < 0 || mem == MAP_FAILED)
        return -1;
    memcpy(mem + LOAD_GPA, guest, sizeof guest);
    struct kvm_userspace_memory_region r = {.memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return -1;
    *mem_out = mem;
    return vm;
}

/* In the child of fork: the parent's VM is not ours; /dev/kvm still is. Exit status: the child's FAIL count. */
static void child(int kvm, int vm_closed, int vcpu, size_t run_size)
{
    struct kvm_regs regs;
    int r = ioctl(vm_closed, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY);
    check(r < 0 && errno == EBADF, "child: the VM fd closed before fork: %s (EBADF)", res(r));
    r = ioctl(vcpu, KVM_GET_REGS, &regs);
    check(r < 0 && errno == EIO, "child: KVM_GET_REGS on the parent's vCPU: %s (EIO)", res(r));
    r = ioctl(vcpu, KVM_RUN, 0);
    check(r < 0 && errno == EIO, "child: KVM_RUN on the parent's vCPU: %s (EIO)", res(r));
    r = ioctl(kvm, KVM_GET_API_VERSION, 0);
    check(r == KVM_API_VERSION, "child: KVM_GET_API_VERSION on the inherited /dev/kvm fd: %d", r);
    uint8_t *mem;
    int vm = vm_new(kvm, &mem);
    check(vm >= 0, "child: a VM of its own: %s", res(vm));
    int cpu = vm < 0 ? -1 : ioctl(vm, KVM_CREATE_VCPU, 0UL);
    check(cpu >= 0, "child: its vCPU: %s", res(cpu));
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
    int d = run == MAP_FAILED || guest_start(cpu, 3, 4) < 0 ? -1 : guest_run(cpu, run);
    check(d == 7, "child: its guest ran and printed %d (7)", d);
    r = close(vcpu);
    check(r == 0, "child: close of the parent's vCPU fd: %s", res(r));
    fflush(stdout);
    _exit(fails);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        printf("FAIL open /dev/kvm: %s\n", strerror(errno));
        return 1;
    }
    check(ioctl(kvm, KVM_GET_API_VERSION, 0) == KVM_API_VERSION, "KVM_GET_API_VERSION is %d", KVM_API_VERSION);
    int r = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY);
    check(r > 0, "KVM_CHECK_EXTENSION(KVM_CAP_USER_MEMORY) on /dev/kvm: %s", res(r));
    r = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT);
    check(r > 0, "KVM_CHECK_EXTENSION(KVM_CAP_IMMEDIATE_EXIT): %s", res(r));
    r = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
    check(r > 0, "KVM_CHECK_EXTENSION(KVM_CAP_NR_MEMSLOTS): %s", res(r));
    r = ioctl(kvm, KVM_CHECK_EXTENSION, 100000);
    check(r == 0, "KVM_CHECK_EXTENSION(100000), no such capability: %s", res(r));
    int dev = open("/dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int k2 = openat(dev, "kvm", O_RDWR | O_CLOEXEC);
    check(k2 >= 0 && ioctl(k2, KVM_GET_API_VERSION, 0) == KVM_API_VERSION, "openat(/dev's fd, \"kvm\") is /dev/kvm");
    close(k2);
    close(dev);
    k2 = open("/dev/../dev//kvm", O_RDWR);
    check(k2 >= 0 && ioctl(k2, KVM_GET_API_VERSION, 0) == KVM_API_VERSION, "so is /dev/../dev//kvm");
    int fdflags = fcntl(k2, F_GETFD);
    check(fdflags == 0, "opened without O_CLOEXEC, it is not close-on-exec");
    close(k2);
    size_t run_size = (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    check(run_size >= sizeof(struct kvm_run), "KVM_GET_VCPU_MMAP_SIZE holds a struct kvm_run");
    void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, kvm, 0);
    check(p == MAP_FAILED && errno == ENODEV, "mmap of /dev/kvm: %s (ENODEV)", p == MAP_FAILED ? res(-1) : "mapped");

    uint8_t *mem;
    int vm = vm_new(kvm, &mem);
    check(vm >= 0, "KVM_CREATE_VM and a memory slot");
    fdflags = fcntl(vm, F_GETFD);
    check(fdflags >= 0 && (fdflags & FD_CLOEXEC), "the VM fd is close-on-exec");
    r = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY);
    check(r > 0, "KVM_CHECK_EXTENSION(KVM_CAP_USER_MEMORY) on the VM fd: %s", res(r));
    p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, vm, 0);
    check(p == MAP_FAILED && errno == ENODEV, "mmap of the VM fd: %s (ENODEV)", p == MAP_FAILED ? res(-1) : "mapped");

    int vm2 = dup(vm);
    check(vm2 > vm, "dup of the VM fd");
    int vm_num = vm;
    check(close(vm) == 0, "close of the first VM fd");
    r = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY);
    check(r < 0 && errno == EBADF, "the closed VM fd: %s (EBADF)", res(r));
    int vcpu = ioctl(vm2, KVM_CREATE_VCPU, 0UL);
    check(vcpu >= 0, "KVM_CREATE_VCPU through the dup: the VM lives while one name is open");
    check(vcpu == vm_num, "the vCPU fd takes the lowest free number (the closed VM fd's)");
    r = ioctl(vm2, KVM_CREATE_VCPU, 0UL);
    check(r < 0 && errno == EEXIST, "a second vCPU 0: %s (EEXIST)", res(r));

    int vcpu_hi = fcntl(vcpu, F_DUPFD_CLOEXEC, 100);
    check(vcpu_hi >= 100, "fcntl(F_DUPFD_CLOEXEC, 100) of the vCPU fd");
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_hi, 0);
    check(run != MAP_FAILED, "mmap of kvm_run through that name");
    check(close(vcpu_hi) == 0, "close of that name; the mapping stays");
    int d = guest_start(vcpu, 2, 2) < 0 ? -1 : guest_run(vcpu, run);
    check(d == 4, "the guest ran and printed %d (4)", d);

    /* A second vCPU, run by another thread while this one runs the first. */
    struct vcpu_thread other = {.vcpu = ioctl(vm2, KVM_CREATE_VCPU, 1UL), .a = 2, .b = 4};
    other.run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, other.vcpu, 0);
    pthread_t th;
    int started = other.vcpu >= 0 && other.run != MAP_FAILED && pthread_create(&th, NULL, vcpu_thread, &other) == 0;
    d = guest_start(vcpu, 1, 4) < 0 ? -1 : guest_run(vcpu, run);
    if (started)
        pthread_join(th, NULL);
    check(started && d == 5 && other.digit == 6, "two vCPUs in two threads at once: printed %d and %d (5 and 6)", d,
          other.digit);
    check(other.run != MAP_FAILED && munmap(other.run, run_size) == 0 && close(other.vcpu) == 0,
          "munmap and close of the second vCPU");

    int kvm2 = dup(kvm);
    r = dup2(vcpu, kvm2);
    check(r == kvm2, "dup2 of the vCPU fd over a dup of /dev/kvm");
    struct kvm_regs regs;
    r = ioctl(kvm2, KVM_GET_REGS, &regs);
    check(r == 0 && regs.rip == LOAD_GPA + sizeof guest, "KVM_GET_REGS through it: the vCPU's RIP after HLT");
    check(close(kvm2) == 0, "close of it");
    r = ioctl(kvm, KVM_GET_API_VERSION, 0);
    check(r == KVM_API_VERSION, "/dev/kvm's own fd still works");

    /* Fork after close: the VM's last fd closed; its vCPU holds it. */
    check(close(vm2) == 0, "close of the last VM fd");
    pid_t pid = fork();
    if (pid == 0)
        child(kvm, vm2, vcpu, run_size);
    int st = 0;
    check(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's checks passed");
    d = guest_start(vcpu, 4, 5) < 0 ? -1 : guest_run(vcpu, run);
    check(d == 9, "parent: its guest runs on, unaffected by the child: printed %d (9)", d);
    check(close(vcpu) == 0, "close of the vCPU fd");
    check(run->exit_reason == KVM_EXIT_HLT, "kvm_run stays readable while mapped");
    check(munmap(run, run_size) == 0, "munmap of kvm_run");
    r = ioctl(vcpu, KVM_RUN, 0);
    check(r < 0 && errno == EBADF, "the closed vCPU fd: %s (EBADF)", res(r));
    check(close(kvm) == 0, "close of /dev/kvm");
    printf("%d failed\n", fails);
    return fails;
}
