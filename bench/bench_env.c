/* The benchmark machine: guest image paths, TSC calibration, hypervisor detection, and backend probing in a child. */
#include <cpuid.h>
#include <errno.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "bench/bench_abi.h"
#include "bench_env.h"
#include "mvm.h"
#include "bench_vm.h"

static char guest_dir[512] = "build/guests";
static double ns_per_cycle = 1.0;
static char kvm_timing[96] = "native";
static char labels[2][128];

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* TSC ticks over 50 ms of CLOCK_MONOTONIC, taken twice; the rate of the faster-settling pass is kept. */
static double tsc_calibrate(void)
{
    double best = 0;

    for (int pass = 0; pass < 2; pass++) {
        uint64_t t0 = bench_now_ns(), c0 = __rdtsc(), t1, c1;
        struct timespec nap = {0, 50 * 1000 * 1000};

        nanosleep(&nap, NULL);
        t1 = bench_now_ns();
        c1 = __rdtsc();
        if (c1 > c0)
            best = (double)(t1 - t0) / (double)(c1 - c0);
    }
    return best > 0 ? best : 1.0;
}

/*
 * CPUID.1:ECX[31] says "a hypervisor is here"; leaf 0x40000000 names it
 * (QEMU's TCG says TCGTCGTCGTCG). A loaded kvm_pvm module means /dev/kvm is
 * KVM-PVM: guests run on shadow page tables with no SVM/VMX at all.
 */
static void hypervisor_detect(void)
{
    unsigned a, b, c, d;
    char vendor[13] = "", outer[48] = "";
    const char *env = getenv("MINIVMM_BENCH_TIMING");
    bool pvm = access("/sys/module/kvm_pvm", F_OK) == 0;

    if (env && !strcmp(env, "emulated")) {
        snprintf(kvm_timing, sizeof(kvm_timing), "emulated (QEMU TCG, said by MINIVMM_BENCH_TIMING)");
        return;
    }
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 31))) {
        __cpuid(0x40000000, a, b, c, d);
        memcpy(vendor, &b, 4);
        memcpy(vendor + 4, &c, 4);
        memcpy(vendor + 8, &d, 4);
        for (int i = 0; i < 12; i++)
            if (vendor[i] && (vendor[i] < 0x20 || vendor[i] > 0x7e))
                vendor[i] = '?';
        snprintf(outer, sizeof(outer), "under %s", vendor[0] ? vendor : "an unnamed hypervisor");
    }
    if (!strcmp(vendor, "TCGTCGTCGTCG"))
        snprintf(kvm_timing, sizeof(kvm_timing), "emulated (QEMU TCG)");
    else if (pvm)
        snprintf(kvm_timing, sizeof(kvm_timing), "kvm-pvm, no SVM/VMX%s%s", outer[0] ? ", " : "", outer);
    else if (outer[0])
        snprintf(kvm_timing, sizeof(kvm_timing), "nested (%s)", outer);
    else
        snprintf(kvm_timing, sizeof(kvm_timing), "native");
}

bool bench_kvm_is_pvm(const struct mvm_backend *be)
{
    return !strcmp(be->name, "kvm") && access("/sys/module/kvm_pvm", F_OK) == 0;
}

int bench_env_init(const char *argv0)
{
    const char *env = getenv("MINIVMM_GUEST_DIR");

    if (env && *env) {
        snprintf(guest_dir, sizeof(guest_dir), "%s", env);
    } else if (argv0 && strchr(argv0, '/')) {
        char copy[512];

        snprintf(copy, sizeof(copy), "%s", argv0);
        snprintf(guest_dir, sizeof(guest_dir), "%s/../guests", dirname(copy));
    }
    ns_per_cycle = tsc_calibrate();
    hypervisor_detect();
    snprintf(labels[0], sizeof(labels[0]), "kvm %s", kvm_timing);
    snprintf(labels[1], sizeof(labels[1]), "soft CPU (Unicorn)");
    return 0;
}

void bench_guest_path(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.bin", guest_dir, name);
}

double bench_ns_per_cycle(void)
{
    return ns_per_cycle;
}

const char *bench_kvm_timing(void)
{
    return kvm_timing;
}

const char *bench_backend_label(const struct mvm_backend *be)
{
    return !strcmp(be->name, "kvm") ? labels[0] : labels[1];
}

/* The child's whole job: exits16 with one OUT must end in GUEST_DONE after exactly two exits. */
static int probe_run(const struct mvm_backend *be)
{
    struct bench_vm bv;
    struct mvm_run_opts opts = {.max_exits = 10, .max_ms = 5000};
    struct mvm_run_result res;
    int rc = bench_vm16_create(be, BENCH_KIND_OUT, 1, &bv);

    if (rc < 0) {
        fprintf(stderr, "%s\n", mvm_error());
        return 1;
    }
    rc = vcpu_run(bv.vcpu, &opts, &res);
    if (rc < 0 || res.stop != MVM_STOP_DONE || res.exits != 2) {
        fprintf(stderr, "the probe guest (one OUT, then done) ended with '%s' after %llu exits: %s\n",
                mvm_stop_name(res.stop), (unsigned long long)res.exits, rc < 0 ? mvm_error() : res.detail);
        bench_vm_destroy(&bv);
        return 1;
    }
    bench_vm_destroy(&bv);
    return 0;
}

int bench_backend_probe(const char *name, const struct mvm_backend **out, char *why, size_t len)
{
    const struct mvm_backend *be = NULL;
    int pipefd[2], status;
    pid_t pid;
    ssize_t n;

    if (mvm_backend_pick(name, &be) < 0 || !be) {
        snprintf(why, len, "%s", be ? mvm_error() : "not built into this libminivmm");
        return -ENODEV;
    }
    if (pipe(pipefd) < 0)
        return -errno;
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -errno;
    }
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], STDERR_FILENO);
        _exit(probe_run(be));
    }
    close(pipefd[1]);
    n = read(pipefd[0], why, len - 1);
    why[n > 0 ? n : 0] = '\0';
    why[strcspn(why, "\n")] = '\0';
    close(pipefd[0]);
    if (waitpid(pid, &status, 0) < 0)
        return -errno;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        *out = be;
        return 0;
    }
    if (WIFSIGNALED(status))
        snprintf(why, len, "the probe guest crashed the process (signal %d, %s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (!why[0])
        snprintf(why, len, "the probe guest failed (exit status %d)", WEXITSTATUS(status));
    return -EIO;
}
