/* The core's private structs, shared by core_*.c and dev_*.c only. */
#ifndef MINIVMM_CORE_INTERNAL_H
#define MINIVMM_CORE_INTERNAL_H

#include <pthread.h>
#include <signal.h>

#include "lab.h"
#include "mvm.h"

struct mvm_slot {
    uint64_t gpa;
    uint64_t size;
    uint8_t *hva;
    uint32_t flags;
};

/* The VM's devices (core_bus.c), in the order they were added. */
struct mvm_bus {
    struct mvm_device **devs;
    int ndevs;
    int cap;
};

struct mvm_vcpu {
    struct mvm_vm *vm;
    int id;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    struct mvm_run_result *res; /* the result of the run in progress, for devices */
    pthread_t thread;           /* the thread in vcpu_run, while `running` (vcpu_pause_request kicks it) */
    volatile sig_atomic_t running;
    volatile sig_atomic_t pause_ms;     /* a pause vcpu_pause_request asked for; 0: none */
    volatile sig_atomic_t pause_runs;   /* its clock_runs */
    volatile sig_atomic_t pause_resume; /* vcpu_pause_resume: end the pause now */
    volatile sig_atomic_t debug_break;  /* vcpu_debug_break: stop into opts->debug_exit (gdb's Ctrl-C) */
    volatile sig_atomic_t pause_khz;    /* vcpu_pause_migrate: the TSC rate the VM resumes at; 0: unchanged */
};

struct mvm_vm {
    const struct mvm_backend *be;
    int sys_fd;
    int fd;
    int run_size;
    struct mvm_slot slots[MVM_MAX_SLOTS];
    int nslots;
    struct mvm_bus bus;
    struct mvm_vcpu *vcpus[MVM_MAX_VCPUS];
    int nvcpus;
    struct mvm_lab_ops lab; /* composed at vm_create from the registered labs (lab.h) */
    FILE *console_out;      /* vm_devices_add_standard's console (device.h: vm_console_write) */
    FILE *console_in;       /* vm_console_input_set's stream, or NULL */
    bool console_in_eof;    /* it ended: stop polling it */
};

/* ioctl through the backend; on failure records "NAME: strerror" and returns -errno. */
int mvm_ioctl(const struct mvm_backend *be, int fd, unsigned long req, unsigned long arg, const char *name);
#define MVM_IOCTL(be, fd, req, arg) mvm_ioctl((be), (fd), (req), (unsigned long)(arg), #req)

/* Destroys every device on the VM's bus, last added first (vm_destroy). */
void vm_bus_destroy(struct mvm_vm *vm);

/* Calls each registered lab's vm_init hook, lab 1 first (vm_devices_add_standard). */
int mvm_labs_vm_init(struct mvm_vm *vm);

#endif
