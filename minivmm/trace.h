/* Exit tracing: one event per exit into a ring, a versioned trace file, a live shared-memory feed, and the reader. */
#ifndef MINIVMM_TRACE_H
#define MINIVMM_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "mvm.h"

/* Where an event was seen. */
enum mvm_trace_src {
    MVM_TRACE_SRC_USER = 1,   /* an exit to the VMM (KVM_RUN returned); reason is KVM_EXIT_* */
    MVM_TRACE_SRC_KERNEL = 2, /* real KVM handled it in the kernel (BPF); reason is the hardware exit code */
    MVM_TRACE_SRC_SOFT = 3,   /* the soft backend did in-kernel work itself; reason is MVM_SOFT_EV_* */
};

/* In-kernel work of the soft backend, from its counters (soft_backend.h). */
enum mvm_soft_ev {
    MVM_SOFT_EV_CPUID = 1,
    MVM_SOFT_EV_HYPERCALL,
    MVM_SOFT_EV_RDTSC,
    MVM_SOFT_EV_MSR,
    MVM_SOFT_EV_EXCEPTION,
};

#define MVM_TRACE_F_WRITE   0x01 /* OUT or MMIO write */
#define MVM_TRACE_F_RIP     0x02 /* rip is known */
#define MVM_TRACE_F_HW      0x04 /* a userspace exit annotated with the hardware exit (hw_reason) */
#define MVM_TRACE_F_ISA_VMX 0x10 /* hardware codes are Intel VMX basic exit reasons */
#define MVM_TRACE_F_ISA_SVM 0x20 /* hardware codes are AMD SVM exit codes */

/*
 * One exit, 64 bytes, the same in the ring, the live feed and the file
 * (little-endian, as the x86 host writes it). Times are CLOCK_MONOTONIC ns,
 * the clock bpf_ktime_get_ns() reads too.
 */
struct mvm_trace_event {
    uint64_t enter_ns;  /* the vCPU was entered (KVM_RUN called; kernel: the previous kvm_entry) */
    uint64_t exit_ns;   /* it exited (KVM_RUN returned; kernel: kvm_exit) */
    uint64_t done_ns;   /* the exit was handled (handler returned; kernel: the next kvm_entry) */
    uint64_t rip;       /* guest RIP of the exit when MVM_TRACE_F_RIP */
    uint64_t addr;      /* port or gpa; kernel: info1 */
    uint64_t data;      /* up to 8 bytes of I/O data; kernel: info2 */
    uint32_t reason;    /* KVM_EXIT_*, hardware exit code or MVM_SOFT_EV_*, by source */
    uint32_t hw_reason; /* the hardware exit behind a userspace exit when MVM_TRACE_F_HW */
    uint32_t count;     /* I/O repeat count; soft events: how many were folded into this one */
    uint8_t vcpu;
    uint8_t source; /* enum mvm_trace_src */
    uint8_t flags;  /* MVM_TRACE_F_* */
    uint8_t size;   /* I/O or MMIO access size in bytes */
};
_Static_assert(sizeof(struct mvm_trace_event) == 64, "trace event layout");

/*
 * The trace file, version 1:
 *   header (64 bytes, struct mvm_trace_file_header, CRC-32 over its first 60 bytes)
 *   blocks: struct mvm_trace_block_header, then `count` events (CRC-32 over them)
 *   end record (struct mvm_trace_file_end): the total, so truncation is detected
 */
#define MVM_TRACE_MAGIC        "MVMTRACE"
#define MVM_TRACE_VERSION      1
#define MVM_TRACE_BLOCK_MAGIC  0x4b4c4254u /* "TBLK" */
#define MVM_TRACE_END_MAGIC    0x444e4554u /* "TEND" */
#define MVM_TRACE_BLOCK_EVENTS 256         /* events per block the writer emits (a reader takes 1..65536) */

struct mvm_trace_file_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size; /* 64 */
    uint32_t event_size;  /* 64 */
    uint32_t flags;       /* MVM_TRACE_HDR_* */
    uint64_t start_ns;    /* CLOCK_MONOTONIC when recording began */
    char backend[16];     /* "kvm" or "soft", NUL-padded */
    uint32_t pid;         /* the VMM's process */
    uint8_t reserved[8];
    uint32_t crc;
};
_Static_assert(sizeof(struct mvm_trace_file_header) == 64, "trace header layout");
#define MVM_TRACE_HDR_KERNEL 0x1 /* kernel-side exits (BPF) were recorded */

struct mvm_trace_block_header {
    uint32_t magic;
    uint32_t count;
    uint32_t crc; /* CRC-32 of the count * 64 event bytes that follow */
    uint32_t reserved;
};

struct mvm_trace_file_end {
    uint32_t magic;
    uint32_t reserved;
    uint64_t events;         /* events in all blocks */
    uint64_t kernel_exits;   /* kvm:kvm_exit events the kernel tracer saw */
    uint64_t kernel_to_user; /* kvm:kvm_userspace_exit events it saw (exits that reached the VMM) */
    uint64_t dropped;        /* kernel events the BPF ring lost */
    uint32_t crc;            /* CRC-32 of the 40 bytes above */
    uint32_t reserved2;
};
_Static_assert(sizeof(struct mvm_trace_file_end) == 48, "trace end layout");

struct mvm_trace;
struct mvm_vcpu;

/* CLOCK_MONOTONIC in ns (vDSO: no syscall). */
static inline uint64_t mvm_trace_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The time for the run loop: the trace's clock now, or 0 when there is no trace (an untraced run reads no clock). */
uint64_t mvm_trace_clock(const struct mvm_trace *t);
/*
 * Timestamps from `clock` (ns) instead of CLOCK_MONOTONIC, from here on: a deterministic run's virtual time (the
 * backend's virtual_ns), so two runs write the same file. The trace's start moves to clock()'s now.
 */
void mvm_trace_clock_set(struct mvm_trace *t, uint64_t (*clock)(void));

/*
 * Creates a recorder with an in-memory ring of `ring_events` (rounded up to a
 * power of two, at least 64). `backend` names the backend for the file header.
 */
int mvm_trace_create(const char *backend, size_t ring_events, struct mvm_trace **out);
/*
 * Streams every event to the trace file at `path` as well: created, or a
 * regular file truncated (/dev/null and terminals too; a FIFO, socket or other
 * device is refused, never waited on). Write errors, from the header on, are
 * reported by mvm_trace_close.
 */
int mvm_trace_file_open(struct mvm_trace *t, const char *path);
/*
 * Publishes every event in a shared-memory ring at `path` (a file, best on
 * tmpfs such as /dev/shm) that a viewer attaches to with mvm_trace_live_attach.
 * The feed is made beside `path` and renamed onto it, so `path` must be new or
 * an old feed whose VMM is gone: any other file, a symlink, a device or a FIFO
 * there is refused (-EEXIST, -EINVAL, -EBUSY), never replaced.
 */
int mvm_trace_live_open(struct mvm_trace *t, const char *path);
/*
 * Adds kernel-side exits of this process through the BPF tracer (real KVM
 * only). -errno with a message saying why not (no BTF, no privilege, no
 * tracefs, built without BPF); the trace goes on without them.
 */
int mvm_trace_kernel_enable(struct mvm_trace *t);
/*
 * Finishes the file (last block and end record) and the live feed, and frees
 * the recorder. Returns 0, or -errno when the file could not be completed.
 * NULL is fine.
 */
int mvm_trace_close(struct mvm_trace *t);

/* Adds one event to the ring, the live feed and the file. */
void mvm_trace_add(struct mvm_trace *t, const struct mvm_trace_event *ev);
/*
 * Called by vcpu_run around a run: attach turns on cheap RIP capture
 * (KVM_CAP_SYNC_REGS on kvm) and snapshots the soft backend's counters;
 * detach collects the last kernel-side events.
 */
void mvm_trace_vcpu_attach(struct mvm_trace *t, struct mvm_vcpu *vcpu);
void mvm_trace_vcpu_detach(struct mvm_trace *t, struct mvm_vcpu *vcpu);
/*
 * Records the exit now in the vCPU's kvm_run (after its handler ran), with
 * the times KVM_RUN was called and returned, plus any kernel-side or soft
 * in-kernel events that happened during that KVM_RUN.
 */
void mvm_trace_exit_record(struct mvm_trace *t, struct mvm_vcpu *vcpu, uint64_t enter_ns, uint64_t exit_ns);

/* Totals so far. */
struct mvm_trace_counts {
    uint64_t events;         /* all events recorded */
    uint64_t user;           /* userspace exits */
    uint64_t kernel;         /* in-kernel exits (BPF or soft) */
    bool kernel_on;          /* the kernel tracer was running */
    uint64_t kernel_exits;   /* kvm:kvm_exit events the kernel tracer saw */
    uint64_t kernel_to_user; /* kvm:kvm_userspace_exit events it saw */
    uint64_t dropped;        /* kernel events lost */
};
void mvm_trace_counts_get(const struct mvm_trace *t, struct mvm_trace_counts *out);
/* Copies up to `max` of the newest ring events, oldest first; returns how many. */
size_t mvm_trace_ring_copy(const struct mvm_trace *t, struct mvm_trace_event *dst, size_t max);

/* A whole trace file, validated, in memory. */
struct mvm_trace_data {
    struct mvm_trace_file_header header;
    struct mvm_trace_event *events;
    size_t count;
    uint64_t kernel_exits; /* from the end record; 0 when the kernel tracer was off */
    uint64_t kernel_to_user;
    uint64_t dropped;
};
/*
 * Reads and checks a trace file: magic, version, sizes, CRCs, every block and
 * the end record. Returns 0, or -errno with a message naming the file, the
 * offset and what was wrong (-EPROTO corrupt, -ENODATA truncated, -ENOTSUP
 * another version). Never reads past what it checked.
 */
int mvm_trace_load(const char *path, struct mvm_trace_data *out);
/* The same from a buffer (for tests and tools); `name` is used in messages. */
int mvm_trace_parse(const void *buf, size_t len, const char *name, struct mvm_trace_data *out);
void mvm_trace_data_free(struct mvm_trace_data *d);

/* A reader attached to a live feed. */
struct mvm_trace_live;
/* Attaches read-only to the feed at `path`. -errno with a message if it is not one. */
int mvm_trace_live_attach(const char *path, struct mvm_trace_live **out);
/*
 * Copies up to `max` events published since the last call, oldest first;
 * *lost grows by the events the writer overwrote before they were read.
 */
size_t mvm_trace_live_read(struct mvm_trace_live *l, struct mvm_trace_event *dst, size_t max, uint64_t *lost);
/* True once the VMM closed the feed (or its process is gone). */
bool mvm_trace_live_finished(const struct mvm_trace_live *l);
const char *mvm_trace_live_backend(const struct mvm_trace_live *l);
/* The writing VMM's process id, as its feed says (a viewer may pause it with SIGUSR1/SIGUSR2: check it first). */
pid_t mvm_trace_live_pid(const struct mvm_trace_live *l);
uint64_t mvm_trace_live_start_ns(const struct mvm_trace_live *l);
void mvm_trace_live_detach(struct mvm_trace_live *l);

/* The event's kind, for grouping: "IO", "HLT", "in-kernel cpuid", "in-kernel npf", ... */
void mvm_trace_event_kind(const struct mvm_trace_event *ev, char *buf, size_t len);
/* One line of decoded detail: "out port=0x3f8 size=1 data=48", "info1=0x... info2=0x...", ... */
void mvm_trace_event_detail(const struct mvm_trace_event *ev, char *buf, size_t len);
/* The name of a hardware exit code: VMX basic reasons or SVM exit codes; "hw 0x..." when unknown. */
const char *mvm_trace_hw_reason_name(uint8_t flags, uint32_t code);

/*
 * The kernel-side tracer behind mvm_trace_kernel_enable (trace_bpf.c), for
 * core_trace.c only. Events arrive as MVM_TRACE_SRC_KERNEL events; those
 * whose exit went on to the VMM come with MVM_TRACE_F_HW set and hw_reason.
 */
struct mvm_kexit;
typedef void (*mvm_kexit_fn)(void *ctx, const struct mvm_trace_event *ev);
/* Loads and attaches the BPF program for process `tgid`. -errno with a message saying why not. */
int mvm_kexit_open(int tgid, struct mvm_kexit **out);
/* Hands every event the kernel has queued to fn. Reads shared memory only: no syscall. */
void mvm_kexit_drain(struct mvm_kexit *k, mvm_kexit_fn fn, void *ctx);
/* The tracer's counters (a map lookup: a syscall each; call at the end). */
void mvm_kexit_counts(struct mvm_kexit *k, uint64_t *exits, uint64_t *to_user, uint64_t *dropped);
void mvm_kexit_close(struct mvm_kexit *k);

#endif
