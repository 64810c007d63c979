/* Internal shared state of the soft backend (Unicorn under the KVM API): objects behind the fds, memory slots, the vCPU. */
#ifndef MINIVMM_SOFT_PRIV_H
#define MINIVMM_SOFT_PRIV_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unicorn/unicorn.h>

#include "soft_backend.h"
#include "soft_coro.h"

#define SOFT_PAGE 4096ull
#define SOFT_MAX_SLOTS 32
#define SOFT_MAX_VCPUS 8
#define SOFT_MAX_CPUID 64
#define SOFT_RUN_PAGES 3 /* kvm_run, the PIO data page, the (unused) coalesced MMIO page: as KVM on x86 */
#define SOFT_RUN_SIZE (SOFT_RUN_PAGES * SOFT_PAGE)
#define SOFT_PIO_OFFSET (KVM_PIO_PAGE_OFFSET * SOFT_PAGE)
/*
 * Guest-physical addresses below this that no slot covers are MMIO; above it, accesses fail (internal
 * error). 4 GiB, not more: Unicorn unmaps a region page by page (about 60 ns a page), so every change
 * of a gap pays for it; 64 GiB took 0.9 s of CPU. Pooled engines keep their gaps (soft_map_memory).
 */
#define SOFT_MMIO_LIMIT (1ull << 32)
/*
 * Translated code per engine. Unicorn zeroes the whole buffer at every flush (tcg_region_assign), and each
 * engine is flushed once when created (see soft_engine_get): that memset makes the buffer resident and is
 * most of an engine's creation time (Unicorn's default 1 GiB: 0.7 s; 16 MiB: 25-55 ms; 4 MiB: 8 ms), and
 * every VM alive at once holds an engine. 4 MiB holds a teaching guest's code many times over (the whole
 * integration suite passes with 1 MiB), and a full buffer just flushes.
 */
#define SOFT_TCG_BUFFER_SIZE (4u << 20)

enum soft_kind { SOFT_SYS = 1, SOFT_VM, SOFT_VCPU };

struct soft_slot {
    bool used;
    uint32_t flags;
    uint64_t gpa, size;
    uint8_t *hva;
    uint8_t *snapshot; /* dirty logging: the slot's content at the last KVM_GET_DIRTY_LOG */
};

struct soft_vcpu;
struct soft_mmio_region;

/* A Unicorn engine with the backend's hooks installed; pooled across vCPUs. */
struct soft_engine {
    uc_engine *uc;
    uc_context *ctx;      /* scratch for saving/restoring the state image */
    uc_context *pristine; /* CPU state right after uc_open */
    uc_context *saved;    /* the vCPU's state while memory is unmapped in the pristine one (soft_map_memory) */
    struct soft_vcpu *v;  /* the vCPU using it, for the hooks */
    struct soft_engine *next;
    /* The MMIO gaps mapped in the engine, with their callback contexts; kept across reuse (see soft_map_memory). */
    struct soft_mmio_region *mmio[SOFT_MAX_SLOTS + 1];
    int nmmio;
};

struct soft_vm {
    int fd;
    int refs; /* the VM fd plus one per vCPU, as KVM keeps a VM alive while its vCPUs are open */
    pthread_mutex_t lock; /* serialises vCPUs: LOCK-prefixed instructions are not atomic across engines */
    struct soft_slot slots[SOFT_MAX_SLOTS];
    unsigned slots_gen;
    struct soft_vcpu *vcpus[SOFT_MAX_VCPUS];
    int64_t clock_offset_ns; /* kvmclock = CLOCK_MONOTONIC_RAW + offset */
    uint64_t tsc_at_create;
};

/* Layout of Unicorn's CPUX86State inside a saved context, found and checked at start-up. */
struct soft_layout {
    size_t data;      /* offset of the CPU state image inside a uc_context */
    size_t hflags;    /* uint32 */
    size_t segs;      /* SegmentCache[6], then ldt, tr, gdt, idt */
    size_t cr;        /* target_ulong cr[5] */
    size_t efer;      /* uint64 */
    size_t error_code;/* int, then int exception_is_int */
    size_t old_exception; /* int */
    size_t tsc_offset;/* uint64 */
    size_t eflags;    /* target_ulong */
};

/* Unicorn's SegmentCache. */
struct soft_seg {
    uint32_t selector;
    uint32_t pad;
    uint64_t base;
    uint32_t limit;
    uint32_t flags;
};
_Static_assert(sizeof(struct soft_seg) == 24, "SegmentCache layout");

extern struct soft_layout soft_layout;

/* A decoded IN instruction, kept by where it sits in its block (see soft_decode_pio). */
struct soft_io_site {
    uint64_t blk_addr, cs, cr0, cr3, rip;
    uint32_t blk_size;
    unsigned in_block, gen, len;
    uint8_t *hva; /* the instruction's bytes in guest RAM, compared at every use */
    uint8_t bytes[15];
    bool string, rep;
    unsigned addr_size;
};

struct soft_vcpu {
    int fd;
    int id;
    struct soft_vm *vm;
    struct kvm_run *run; /* the backend's own mapping of the run memfd */
    struct soft_engine *engine;
    uc_engine *uc;   /* engine->uc */
    uc_context *ctx; /* engine->ctx */
    uint8_t *img; /* aligned copy of the CPU state image inside ctx */
    size_t img_size;
    struct soft_coro co;
    bool co_started;
    bool in_exit;   /* suspended inside a hook waiting for the VMM (IO/MMIO) */
    bool remap;     /* the VMM changed the memory slots during an exit: stop at the next block and remap */
    bool cancel;    /* being closed: hooks return at once and the engine stops */
    int co_ret;     /* KVM_RUN's return value handed from the coroutine */
    unsigned mapped_gen;
    bool mapped_any;
    /* Why the engine stopped, set by hooks. */
    int stop;
    int exc_vector, exc_error;
    bool exc_has_error, exc_soft;
    bool ud_seen; /* the invalid-instruction hook ran; ignore the #UD Unicorn then also reports */
    uint64_t exc_next_rip;
    /* Userspace interrupt controller model, as KVM without an in-kernel irqchip. */
    int irq_pending; /* vector queued by KVM_INTERRUPT, or -1 */
    bool watch_if;   /* the block hook stops when IF becomes 1 */
    /* String I/O batching. */
    uint32_t pio_left;  /* elements still expected for the current batched exit */
    uint32_t pio_index;
    /* 8-byte MMIO arrives as two halves (see backend_soft_cpu.c). */
    bool wpend, rhigh_valid;
    uint64_t wpend_gpa, rhigh_gpa;
    uint32_t wpend_val, rhigh;
    int wpend_n;
    void *wpend_bt[10];
    /* The I/O instruction of the current exit, found from the block start on demand. */
    unsigned io_in_block;
    bool io_exit, io_string;
    uint64_t io_rip;
    unsigned io_len;
    uint8_t io_bytes[15];
    uint64_t blk_addr; /* the block the engine is running, from the block hook */
    uint32_t blk_size;
    struct soft_io_site io_sites[16];
    /* CPUID table. */
    struct kvm_cpuid_entry2 cpuid[SOFT_MAX_CPUID];
    int ncpuid;
    /* MSR state the engine does not keep. */
    uint64_t apic_base, cr8, tsc_offset;
    uint64_t kvm_system_time, kvm_wall_clock;
    uint32_t pvclock_version;
    /* Code hooks placed on single RDTSC/RDMSR/WRMSR instructions found by scanning new blocks. */
    uint64_t scanned[1024];
    uint64_t hooked[256];
    uc_hook hooked_h[256];
    int nhooked;
    uint64_t pending_hooks[16];
    int npending_hooks;
    uint64_t flush_begin, flush_end;
    /*
     * Segment limit checks (protected mode only): the engine makes none, so while
     * a data segment is not flat a memory hook checks each access itself.
     */
    bool seg_check;   /* segment state may have changed: re-evaluate before the next block */
    bool limits_on;   /* the limit hook is installed */
    bool limit_fault; /* an access broke a limit: ignore the rest of that instruction's accesses */
    uc_hook limit_hook;
    struct soft_seg lim_seg[6]; /* ES CS SS DS FS GS as of the last check */
    uint64_t lim_tables[4][2];  /* GDT, LDT, IDT, TSS [base, limit]: the CPU's own accesses are not checked */
    unsigned lim_code;          /* 2 or 4: the code size for decoding */
    uint64_t undo_lin;          /* a write that broke a limit lands anyway: its old bytes, put back */
    uint8_t undo_bytes[16];
    unsigned undo_len;
    struct mvm_backend_stats stats;
};

/* Record the thread's last message (printf-style). */
void soft_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Host pointer for guest-physical [gpa, gpa+len) if one slot covers it all, else NULL. */
uint8_t *soft_gpa_to_hva(struct soft_vm *vm, uint64_t gpa, uint64_t len);

/* vCPU side (backend_soft_cpu.c). */
int soft_layout_probe(void);
int soft_vcpu_create(struct soft_vm *vm, int id, struct soft_vcpu **out);
void soft_vcpu_destroy(struct soft_vcpu *v);
int soft_vcpu_ioctl(struct soft_vcpu *v, unsigned long req, unsigned long arg);
int soft_supported_cpuid(struct kvm_cpuid_entry2 *out, int max);
uint64_t soft_kvmclock_ns(struct soft_vm *vm);
uint64_t soft_host_tsc(void);
uint64_t soft_tsc_khz(void);

#endif
