/* minivmm core: VMs, memory slots, vCPUs, the run loop, port and MMIO handler tables. */
#ifndef MINIVMM_MVM_H
#define MINIVMM_MVM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "abi.h"
#include "backend.h"

#define MVM_MAX_SLOTS 32
#define MVM_MAX_PIO   32
#define MVM_MAX_MMIO  16
#define MVM_MAX_VCPUS 4

struct mvm_vm;
struct mvm_vcpu;
struct mvm_trace;

/*
 * Errors: every core function returns -errno (or NULL) and leaves a one-line
 * message naming what failed; mvm_error() returns it. Nothing in the core exits.
 */
const char *mvm_error(void);
/* Records a message (printf-style) and returns -err, for `return mvm_fail(EINVAL, ...)`. */
int mvm_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Picks a backend by name: "kvm", "soft" or "auto" (kvm when /dev/kvm opens,
 * else soft). Returns 0 and sets *out, or -errno with a message.
 */
int mvm_backend_pick(const char *name, const struct mvm_backend **out);

/* Creates a VM on a backend: opens the system fd, checks the API version, KVM_CREATE_VM. */
int vm_create(const struct mvm_backend *be, struct mvm_vm **out);
/* Destroys a VM with its vCPUs and memory. NULL is fine. */
void vm_destroy(struct mvm_vm *vm);
const struct mvm_backend *vm_backend(const struct mvm_vm *vm);
/* The VM fd, for ioctls the core does not wrap. */
int vm_fd(const struct mvm_vm *vm);

/*
 * Adds guest RAM: allocates `size` bytes (page-aligned) and registers them at
 * `gpa` with KVM_SET_USER_MEMORY_REGION. flags are KVM_MEM_* flags.
 */
int vm_mem_add(struct mvm_vm *vm, uint64_t gpa, uint64_t size, uint32_t flags);
/* Total bytes of guest RAM over all slots. */
uint64_t vm_mem_size(const struct mvm_vm *vm);

/*
 * The one checked guest-physical -> host translation: returns a host pointer
 * to [gpa, gpa + len) when one memory slot covers all of it, else NULL.
 */
void *vm_gpa_to_hva(struct mvm_vm *vm, uint64_t gpa, uint64_t len);
/* Copies a host buffer into guest memory; -EFAULT with a message if any byte is outside RAM. */
int vm_write(struct mvm_vm *vm, uint64_t gpa, const void *src, size_t len);
/* Copies guest memory out; -EFAULT with a message if any byte is outside RAM. */
int vm_read(struct mvm_vm *vm, uint64_t gpa, void *dst, size_t len);
/*
 * The VMM's own walk of 4-level (long-mode) page tables at cr3: gva -> gpa.
 * Returns 0, -EINVAL (non-canonical gva) or -EFAULT, with a message naming
 * the level whose entry is missing or outside RAM. Never calls lab code.
 */
int vm_gva_to_gpa(struct mvm_vm *vm, uint64_t cr3, uint64_t gva, uint64_t *gpa_out);
/*
 * Copies guest memory at a guest-virtual address as the vCPU sees it now:
 * physical with paging off, through vm_gva_to_gpa page by page in long mode.
 * -EINVAL for paging outside long mode, -EFAULT for what is not mapped.
 */
int vm_read_gva(struct mvm_vcpu *vcpu, uint64_t gva, void *dst, size_t len);
/* Loads a flat binary file at gpa; checks it fits. */
int vm_load_file(struct mvm_vm *vm, const char *path, uint64_t gpa, size_t *size_out);

/*
 * Port I/O handler: one element of `size` bytes (1, 2 or 4) at `port`.
 * For OUT, data holds what the guest wrote; for IN, the handler fills data.
 * Returns 0, a positive MVM_STOP_* to stop the run loop, or -errno.
 */
typedef int (*mvm_pio_fn)(struct mvm_vcpu *vcpu, void *opaque, uint16_t port, bool is_write, uint8_t *data,
                          uint32_t size);
/* MMIO handler: `len` bytes at guest-physical `gpa`; same return contract. */
typedef int (*mvm_mmio_fn)(struct mvm_vcpu *vcpu, void *opaque, uint64_t gpa, bool is_write, uint8_t *data,
                           uint32_t len);

/* Registers a handler for ports [port, port + count). Overlaps are -EEXIST. */
int vm_pio_register(struct mvm_vm *vm, uint16_t port, uint16_t count, mvm_pio_fn fn, void *opaque);
/* Registers a handler for guest-physical [gpa, gpa + len). Overlaps are -EEXIST. */
int vm_mmio_register(struct mvm_vm *vm, uint64_t gpa, uint64_t len, mvm_mmio_fn fn, void *opaque);

/*
 * Hands one I/O element to the registered handler. Unclaimed ports read as
 * all ones and swallow writes, as on a PC bus, and count as "unhandled".
 */
int vm_pio_dispatch(struct mvm_vcpu *vcpu, uint16_t port, bool is_write, uint8_t *data, uint32_t size);
/* Same for MMIO; unclaimed addresses read as all ones. */
int vm_mmio_dispatch(struct mvm_vcpu *vcpu, uint64_t gpa, bool is_write, uint8_t *data, uint32_t len);

/* Creates vCPU `id` and maps its kvm_run. */
int vcpu_create(struct mvm_vm *vm, int id, struct mvm_vcpu **out);
struct mvm_vm *vcpu_vm(struct mvm_vcpu *vcpu);
/* The VM's vCPU `id`, or NULL when it has none (yet). */
struct mvm_vcpu *vm_vcpu_get(struct mvm_vm *vm, int id);
struct kvm_run *vcpu_run_page(struct mvm_vcpu *vcpu);
/* The vCPU fd, for the KVM API's ioctls (kvm_api.h). */
int vcpu_fd(const struct mvm_vcpu *vcpu);
int vcpu_regs_get(struct mvm_vcpu *vcpu, struct kvm_regs *regs);
int vcpu_regs_set(struct mvm_vcpu *vcpu, const struct kvm_regs *regs);
int vcpu_sregs_get(struct mvm_vcpu *vcpu, struct kvm_sregs *sregs);
int vcpu_sregs_set(struct mvm_vcpu *vcpu, const struct kvm_sregs *sregs);
/*
 * The system state in sregs as text, one line per segment register with its
 * hidden part decoded (base, limit, type, S, DPL, P, D/B, L, G, AVL), then
 * GDT/IDT, CRs and EFER. Writes at most len bytes (NUL-terminated); returns
 * the length the whole text needs, as snprintf.
 */
size_t mvm_sregs_format(const struct kvm_sregs *sregs, char *buf, size_t len);
/*
 * An ioctl the core does not wrap, on the vCPU's (or the VM's) fd through its
 * backend: KVM_GET_MSRS, KVM_GET_TSC_KHZ, KVM_GET_CLOCK... `name` is the
 * ioctl's name for the message. Its return, or -errno with a message.
 */
int vcpu_ioctl(struct mvm_vcpu *vcpu, unsigned long req, void *arg, const char *name);
int vm_ioctl(struct mvm_vm *vm, unsigned long req, void *arg, const char *name);
/* One KVM_RUN. -EINTR when a signal or the time limit interrupted it. */
int vcpu_enter(struct mvm_vcpu *vcpu);

/* Why the run loop stopped. Positive so handlers can return them. */
enum mvm_stop {
    MVM_STOP_NONE = 0,
    MVM_STOP_HLT = 1,        /* the guest halted */
    MVM_STOP_DONE,           /* the guest reported GUEST_DONE */
    MVM_STOP_ASSERT,         /* the guest reported a failed GUEST_ASSERT */
    MVM_STOP_SHUTDOWN,       /* triple fault */
    MVM_STOP_INTERNAL_ERROR, /* KVM could not run or emulate the guest */
    MVM_STOP_EXIT_LIMIT,     /* more exits than allowed */
    MVM_STOP_TIME_LIMIT,     /* wall time ran out */
    MVM_STOP_UNHANDLED,      /* an exit reason the VMM does not handle */
    MVM_STOP_ERROR,          /* the VMM failed (see mvm_error) */
    MVM_STOP_KILLED,         /* the debugger ended the run (gdb's kill) */
};
const char *mvm_stop_name(enum mvm_stop stop);

/* Exit counters indexed by KVM_EXIT_* reason (up to 64). */
#define MVM_EXIT_REASONS 64

struct mvm_run_opts {
    uint64_t max_exits;      /* 0: no limit */
    uint32_t max_ms;         /* wall time; 0: no limit */
    FILE *exit_dump;         /* canonical exit dump, one line per userspace exit; NULL: none */
    struct mvm_trace *trace; /* exit trace recorder (trace.h); NULL: none */
    /*
     * KVM_EXIT_DEBUG goes here instead of the exit switch when set (the gdb
     * stub, gdbstub.h): returns 0 to go on, MVM_STOP_* to stop, -errno.
     */
    int (*debug_exit)(struct mvm_vcpu *vcpu, void *opaque);
    void *debug_opaque;
};

struct mvm_run_result {
    enum mvm_stop stop;
    uint64_t exits;                       /* userspace exits in this run */
    uint64_t by_reason[MVM_EXIT_REASONS]; /* userspace exits per KVM_EXIT_* */
    uint64_t unhandled_io;                /* I/O to ports nobody registered */
    struct mvm_ucall ucall;               /* the last ucall (cmd 0 if none) */
    uint32_t pauses;                      /* pauses taken (vcpu_pause_request) */
    uint64_t paused_ns;                   /* host time they lasted */
    uint32_t internal_suberror;
    char detail[320]; /* one line: why it stopped, for people */
};

/*
 * The run loop: KVM_RUN, then the one exit switch, until a handler stops it,
 * the guest halts or reports done/failure, or a limit is hit.
 * Returns 0 with *res filled (also for guest failures), or -errno when the
 * VMM itself failed.
 */
int vcpu_run(struct mvm_vcpu *vcpu, const struct mvm_run_opts *opts, struct mvm_run_result *res);

/*
 * Asks the vCPU's run loop to pause the VM for `ms` milliseconds (at least 1),
 * as a VMM stops a VM to snapshot or migrate it: KVM_RUN is interrupted
 * (immediate_exit, and a signal when called from another thread), which is
 * no exit (KVM_RUN returns -EINTR); each device's pause op runs (device.h);
 * with !clock_runs KVM's own clock is saved (KVM_GET_CLOCK); the loop
 * sleeps; the clock is put back (KVM_SET_CLOCK, so kvmclock stands still
 * over the pause) or left running; the devices' resume ops run; KVM_RUN goes
 * on. Async-signal-safe, from any thread; ignored when no run is in progress.
 */
void vcpu_pause_request(struct mvm_vcpu *vcpu, uint32_t ms, bool clock_runs);
/*
 * The same pause as a "migration" to a host whose TSC runs at tsc_khz
 * (0: the same host): while the VM stands, vcpu_tsc_khz_set moves it to the
 * new rate, before the devices' resume ops run (they read the new rate).
 * A failure there (KVM without TSC scaling) ends the run with its message.
 */
void vcpu_pause_migrate(struct mvm_vcpu *vcpu, uint32_t ms, bool clock_runs, uint32_t tsc_khz);
/*
 * Whether the vCPU's TSC can run at tsc_khz: 0, or -EOPNOTSUPP with a message
 * saying why not (KVM_CAP_TSC_CONTROL is 0, no TSC scaling, and the rate is
 * not the host's own to within KVM's 250 ppm).
 */
int vcpu_tsc_khz_check(struct mvm_vcpu *vcpu, uint32_t tsc_khz);
/*
 * Moves a stopped vCPU's TSC to tsc_khz as a migration does (QEMU's order):
 * IA32_TSC and KVM's clock read, KVM_SET_TSC_KHZ, IA32_TSC written back (the
 * guest's TSC goes on from its value, at the new rate) and KVM_SET_CLOCK
 * with the clock read (KVM publishes kvmclock's page again, KVM_REQ_CLOCK_UPDATE).
 * 0, or -errno with a message naming the ioctl and the rate.
 */
int vcpu_tsc_khz_set(struct mvm_vcpu *vcpu, uint32_t tsc_khz);
/* A pause with no end of its own (about 24 days): until vcpu_pause_resume or the run's time limit. */
#define MVM_PAUSE_UNTIL_RESUMED UINT32_MAX
/* Ends the pause in progress (or the one asked for) within 10 ms. Async-signal-safe, from any thread. */
void vcpu_pause_resume(struct mvm_vcpu *vcpu);
/*
 * From any thread: stop the running vCPU between two instructions and call the run's debug_exit, as a debugger's
 * interrupt does (gdb's Ctrl-C). Ignored when the vCPU is not running or the run has no debug_exit.
 */
void vcpu_debug_break(struct mvm_vcpu *vcpu);

/* Writes the canonical one-line text of the exit in `run` (after it was handled). */
void mvm_exit_format(const struct kvm_run *run, char *buf, size_t len);
/* The KVM_EXIT_* name ("IO", "HLT", ...); "UNKNOWN" past the table. */
const char *mvm_exit_name(uint32_t reason);

/*
 * The serial console (COM1, transmit side; left out when a lab's UART already
 * claims COM1) and the 0xe9 debug port, writing to `out` (NULL: discard).
 */
int vm_console_add(struct mvm_vm *vm, FILE *out);
/*
 * The ucall test port; MVM_UCALL_PRINT lines go to `log` (NULL: discard). A
 * ucall the guest gets wrong (an OUT that is not 32 bits, an address that does
 * not translate, an unknown command) stops the run as the guest's failure,
 * MVM_STOP_ASSERT with a "malformed ucall" detail, not as a VMM error.
 */
int vm_testport_add(struct mvm_vm *vm, FILE *log);

/* What one ucall asks of the host. */
struct mvm_ucall_verdict {
    enum mvm_stop stop;  /* MVM_STOP_NONE (keep running), MVM_STOP_DONE or MVM_STOP_ASSERT */
    bool malformed;      /* the command is not in the ABI (stop is MVM_STOP_ASSERT) */
    struct mvm_ucall uc; /* the ucall, msg NUL-terminated */
    const char *print;   /* MVM_UCALL_PRINT: the line for the host log (in uc.msg); else NULL */
    char detail[320];    /* one line for people; empty when the run goes on (as long as mvm_run_result's) */
};
/*
 * Decodes a struct mvm_ucall as read from guest memory: any bytes at all
 * (msg need not be terminated). Pure: no VM, no I/O; the test port's core,
 * and what tests/fuzz/ fuzzes.
 */
void mvm_ucall_decode(const struct mvm_ucall *uc, struct mvm_ucall_verdict *v);
/*
 * The standard devices, sharing `console` (also the VM's console stream,
 * device.h): first each lab's vm_init hook (lab 4: the UART on COM1, the
 * hypercall doorbell), then the console and the test port above.
 */
int vm_devices_add_standard(struct mvm_vm *vm, FILE *console);

#endif
