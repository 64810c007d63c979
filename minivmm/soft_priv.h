/* The soft backend's shared state (Unicorn under the KVM API): objects behind the fds, slots, the vCPU. */
#ifndef MINIVMM_SOFT_PRIV_H
#define MINIVMM_SOFT_PRIV_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unicorn/unicorn.h>

#include "soft_backend.h"
#include "soft_coro.h"
#include "soft_hyperv.h"
#include "soft_mmu.h"
#include "soft_seg.h"

#define SOFT_PAGE       4096ull
#define SOFT_MAX_SLOTS  32
#define SOFT_MAX_VCPUS  8
#define SOFT_MAX_CPUID  64
#define SOFT_RUN_PAGES  3 /* kvm_run, the PIO data page, the (unused) coalesced MMIO page: as KVM on x86 */
#define SOFT_RUN_SIZE   (SOFT_RUN_PAGES * SOFT_PAGE)
#define SOFT_PIO_OFFSET (KVM_PIO_PAGE_OFFSET * SOFT_PAGE)
/*
 * Guest-physical addresses below this that no slot covers are MMIO gaps mapped with the slots; above it, MMIO is
 * mapped on first touch (soft_lazy.c). 4 GiB, not more: Unicorn unmaps a region page by page (about 60 ns a
 * page), so every change of a gap pays for it; 64 GiB took 0.9 s of CPU. Pooled engines keep their gaps
 * (soft_map_memory).
 */
#define SOFT_MMIO_LIMIT (1ull << 32)
/*
 * Slots larger than this are mapped into the engine a chunk at a time, on first touch (soft_lazy.c): creating,
 * running and destroying a VM with a 64 GiB slot then costs the pages it touched, not 16 M page unmaps. Smaller
 * slots are mapped whole when the memory map changes. The MMIO above SOFT_MMIO_LIMIT goes in chunks too.
 */
#define SOFT_LAZY_SLOT  (64ull << 20)
#define SOFT_LAZY_CHUNK (2ull << 20)
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
struct soft_engine;

/* One MMIO gap [base, end): the callbacks reach the vCPU through the engine, so a pooled engine keeps its gaps. */
struct soft_mmio_region {
    struct soft_engine *e;
    uint64_t base, end;
};

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
    /* MMIO chunks above SOFT_MMIO_LIMIT mapped on first touch (soft_lazy.c); unmapped with the RAM. */
    struct soft_mmio_region **lazy_mmio;
    int nlazy_mmio, lazy_mmio_cap;
    unsigned nlazy; /* chunks mapped on first touch since the last unmap: the next ones are larger (soft_lazy.c) */
};

struct soft_vm {
    int fd;
    int refs;             /* the VM fd plus one per vCPU, as KVM keeps a VM alive while its vCPUs are open */
    pthread_mutex_t lock; /* serialises vCPUs: LOCK-prefixed instructions are not atomic across engines */
    struct soft_slot slots[SOFT_MAX_SLOTS];
    unsigned slots_gen;
    struct soft_vcpu *vcpus[SOFT_MAX_VCPUS];
    int64_t clock_offset_ns;   /* kvmclock = master_ns + offset + the host TSC since master_tsc, in ns */
    struct soft_irqchip *chip; /* in-kernel irqchip, ioeventfds, irqfds (soft_irqchip.c); NULL until first used */
    /* KVM's master clock (soft_msr.c): a host TSC and CLOCK_MONOTONIC_RAW read together. */
    uint64_t master_tsc, master_ns;
    /* Memory address space 1 (soft_smm.c): its slots, which a vCPU in SMM sees instead; NULL until one is added. */
    struct soft_vm *smram;
    /* MSR exits to user space (soft_msr_filter.c): KVM_X86_SET_MSR_FILTER's filter (NULL: none) and the
     * KVM_MSR_EXIT_REASON_* bits of KVM_CAP_X86_USER_SPACE_MSR; the quirks KVM_CAP_DISABLE_QUIRKS2 turned off. */
    struct soft_msr_filter *msr_filter;
    uint32_t user_space_msr_mask;
    uint64_t disabled_quirks;
    /* KVM's kvm->arch settings (soft_vmcaps.c): KVM_CAP_MAX_VCPU_ID (0: not set), KVM_SET_BOOT_CPU_ID, vCPUs ever
     * created (KVM_SET_BOOT_CPU_ID is -EBUSY after the first), KVM_CAP_MSR_PLATFORM_INFO turned off. */
    uint32_t max_vcpu_ids, bsp_vcpu_id;
    int created_vcpus;
    bool platform_info_hidden;
    /* KVM's TSC matching (soft_msr.c soft_tsc_synchronize): the VMM's last TSC write, this generation's offset. */
    struct {
        uint64_t last_nsec, last_write, last_offset, cur_offset;
        uint32_t last_khz;
    } tsc_sync;
    struct soft_hv_vm hv; /* Hyper-V's partition-wide state (soft_hyperv.c) */
};

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

/* A block's memory operands of 2, 4 and 8 bytes, decoded once (soft_mmio_split.c). */
struct soft_split_site {
    uint64_t blk_addr, cs, cr0, cr3, hash;
    uint32_t blk_size;
    unsigned gen, code, n;
    const uint8_t *hva; /* the block's bytes in guest RAM (one page), hashed at every use */
    struct {
        int8_t base, index, seg;
        uint8_t scale, asize, size, len;
        uint16_t off;
        int64_t disp;
    } cand[8];
};

struct soft_vcpu {
    int fd;
    int id;
    struct soft_vm *vm;
    struct kvm_run *run; /* the backend's own mapping of the run memfd */
    struct soft_engine *engine;
    uc_engine *uc;   /* engine->uc */
    uc_context *ctx; /* engine->ctx */
    uint8_t *img;    /* aligned copy of the CPU state image inside ctx */
    size_t img_size;
    struct soft_coro co;
    bool co_started;
    bool in_exit; /* suspended inside a hook waiting for the VMM (IO/MMIO) */
    bool remap;   /* the VMM changed the memory slots during an exit: stop at the next block and remap */
    bool cancel;  /* being closed: hooks return at once and the engine stops */
    int co_ret;   /* KVM_RUN's return value handed from the coroutine */
    unsigned mapped_gen;
    bool mapped_any;
    bool lazy_any;     /* a slot is mapped on first touch: a #PF may come from a page table not yet mapped */
    uint64_t lazy_cr2; /* CR2 when the engine was started, put back when such a #PF is retried (soft_lazy.c) */
    /* Why the engine stopped, set by hooks. */
    int stop;
    bool stop_at_block; /* the block hook stopped the engine before the block at stop_rip (soft_block_stop) */
    uint64_t stop_rip;
    int exc_vector, exc_error;
    bool exc_has_error, exc_soft;
    bool ud_seen; /* the invalid-instruction hook ran; ignore the #UD Unicorn then also reports */
    uint64_t exc_next_rip;
    uint64_t syscall_rip;  /* the SYSCALL that stopped the engine (STOP_SYSCALL) */
    bool syscall_tf;       /* its RFLAGS.TF, taken out of the engine's RFLAGS until the transition */
    unsigned exc_insn_len; /* a software INT's length: a fault in its delivery is reported at the INT */
    /* Userspace interrupt controller model, as KVM without an in-kernel irqchip. */
    int irq_pending; /* vector queued by KVM_INTERRUPT, or -1 */
    bool watch_if;   /* the block hook stops when IF becomes 1 */
    /* With in-kernel devices (soft_irqchip.c): the I/O hooks ask them first; the block hook looks for interrupts. */
    bool kio;
    bool halted;           /* HLT with an in-kernel irqchip: KVM_RUN waits for an interrupt (soft_irqchip_halt_wait) */
    bool irq_want;         /* an interrupt waits for the interrupt window */
    uint32_t irq_kick;     /* atomic: the interrupt state changed; the block hook stops the engine */
    uint64_t irq_deadline; /* host TSC at which the local APIC timer is due; 0: none */
    uint64_t irq_skip_rip; /* an interrupt waits out an STI/MOV SS shadow: the block here runs before the next stop */
    int wake_fd;           /* eventfd that wakes the halted vCPU */
    /* Blocks end after memory writes too (soft_tb_current): the xAPIC page is on, or the IOAPIC holds a line. */
    bool tb_cut_mem;
    /* String I/O batching. */
    uint32_t pio_left; /* elements still expected for the current batched exit */
    uint32_t pio_index;
    uint64_t pio_rcx, pio_rdi; /* a rep ins batch's RCX (masked) and RDI at its exit: did the VMM change them? */
    unsigned pio_asz;          /* and its address size */
    /*
     * MMIO writes held back until the access is whole (soft_io.c): the pieces the engine splits one access
     * into, and a rep-ins batch that KVM writes as one access. wbuf_len bytes at wpend_gpa.
     */
    bool wpend, rhigh_valid;
    bool ins_store;        /* the next MMIO write may be the store of the element an IN hook just returned */
    bool ins_block;        /* the current rep-ins batch is written as one access (DF=0) */
    bool ins_rep;          /* the current batch is a rep ins */
    uint64_t db_batch_rip; /* 1 + RIP of a rep ins whose batch just ended: KVM's single step reports it there */
    bool db_skip;          /* an MMIO write exited with TF set: KVM makes no single-step trap for it */
    uint64_t wpend_gpa, rhigh_gpa;
    uint32_t rhigh, wbuf_len;
    int wpend_n;
    void *wpend_bt[10];
    uint8_t wbuf[1024 + 16];
    /* An unaligned MMIO read the engine widens into two aligned ones (soft_mmio_split.c): their answers. */
    uint64_t racc_gpa[2];
    unsigned racc_size;
    uint8_t racc_win[16];
    struct soft_split_site split_site;
    /* The I/O instruction of the current exit, found from the block start on demand. */
    unsigned io_in_block;
    bool io_exit, io_string;
    uint64_t io_rip;
    unsigned io_len;
    uint8_t io_bytes[15];
    /* KVM_RUN with immediate_exit completed the port I/O exit (soft_io_done.c): the registers as it left them. */
    bool io_done, io_done_in;
    unsigned io_done_size;
    uint64_t io_done_rip;
    uint8_t io_done_data[4];
    uint64_t blk_addr; /* the block the engine is running, from the block hook */
    uint32_t blk_size;
    struct soft_io_site io_sites[16];
    /*
     * System management mode (soft_smm.c): in SMM, an SMI pending, an SMI taken inside NMI handling, an INIT latched
     * while in SMM. KVM_GET/SET_VCPU_EVENTS report and set these as its .smi fields.
     */
    struct {
        bool in_smm, pending, inside_nmi, latched_init;
        bool mapped;     /* in_smm as the engine's memory map last saw it (soft_smm_check) */
        uint64_t smbase; /* MSR_IA32_SMBASE, 0x30000 at reset */
        uint64_t count;  /* SMIs taken (MSR_SMI_COUNT) */
    } smm;
    /* KVM_SET_VCPU_EVENTS' exception and NMI, delivered at the next KVM_RUN (soft_vcpu_events.c). */
    struct {
        bool exc_injected, exc_has_error, nmi_pending, nmi_injected;
        bool nmi_masked; /* only where the engine's state cannot hold the NMI mask */
        uint8_t exc_vector;
        uint32_t exc_error;
    } ev;
    /* CPUID table. */
    struct kvm_cpuid_entry2 cpuid[SOFT_MAX_CPUID];
    int ncpuid;
    bool cpuid_set; /* KVM_SET_CPUID2 was called: its table's CR4 rules apply (soft_vcpu_cr4_reserved) */
    /* MSR state the engine does not keep. */
    uint64_t apic_base, cr8, tsc_offset;
    uint64_t tsc_adjust, platform_info; /* IA32_TSC_ADJUST, MSR_PLATFORM_INFO (soft_msr.c) */
    uint64_t kvm_system_time, kvm_wall_clock;
    /* KVM_CAP_ENFORCE_PV_FEATURE_CPUID, and the KVM_CPUID_FEATURES bits it checks (soft_hypercall.c). */
    bool pv_enforce;
    uint32_t pv_features;
    uint64_t misc_enable_delta; /* IA32_MISC_ENABLE XOR its value at creation (soft_mwait.c), so calloc starts right */
    uint32_t pvclock_version;
    /*
     * The guest TSC (soft_msr.c): ((host TSC * tsc_ratio) >> 32) + tsc_offset, as KVM scales it (AMD's 32 fraction
     * bits). tsc_ratio is 1 << 32 (the engine's own RDTSC) unless KVM_SET_TSC_KHZ chose another rate; then the
     * RDTSC code hooks compute it. tsc_khz: what KVM_GET_TSC_KHZ answers.
     */
    uint64_t tsc_ratio;
    uint32_t tsc_khz;
    /* MSR_KVM_STEAL_TIME (soft_steal.c): the MSR, the run delay already counted, /proc/thread-self/schedstat. */
    uint64_t steal_msr, steal_last;
    int steal_fd;
    int steal_tid;
    /* Hyper-V's per-vCPU state (soft_hyperv.c); a remote TLB flush it asked for, done before the next run. */
    struct soft_hv_vcpu hv;
    bool hv_tlb_flush;
    /* Code hooks placed on single RDTSC/RDMSR/WRMSR instructions found by scanning new blocks. */
    uint64_t scanned[1024];
    /*
     * Code the VMM may rewrite through its own mapping between two KVM_RUNs (soft_uc_scan.c): where each scanned
     * block's bytes lie and their hash, checked the first time the block runs in a KVM_RUN (epoch).
     */
    struct soft_code_sum {
        uint64_t gpa0, gpa1;    /* the block's bytes: n0 at gpa0, the rest at gpa1 (a block may cross a page) */
        const uint8_t *h0, *h1; /* where they are in the VMM's memory while the slots are those of gen */
        uint64_t hash;
        uint32_t n0, epoch; /* epoch 0: not checkable (not in RAM) */
        unsigned gen;
    } code_sum[1024];
    uint32_t run_epoch; /* KVM_RUN calls, from 1 */
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
    struct soft_debug *dbg; /* KVM_SET_GUEST_DEBUG's state (soft_debug.c); NULL until first enabled */
};

/* Why the engine stopped, set by hooks (v->stop). */
enum soft_stop {
    STOP_NONE,
    STOP_EXCEPTION, /* deliver v->exc_* through the IDT */
    STOP_RESTART,   /* re-enter (state changed by a hook) */
    STOP_EXIT,      /* run->exit_reason is set; return to the VMM */
    STOP_EINTR,     /* immediate_exit became set */
    STOP_IF,        /* IF became 1 while an interrupt or a window was waiting */
    STOP_SCAN,      /* new code hooks to place before the block runs */
    STOP_SYSCALL,   /* a SYSCALL ran as the engine runs it (a no-op): make the transition (soft_syscall_enter) */
    STOP_RSM,       /* RSM in SMM, which the engine refuses (#UD): KVM emulates it (soft_smm_rsm) */
};

static inline uint64_t soft_rd(struct soft_vcpu *v, int reg)
{
    uint64_t x = 0;
    uc_reg_read(v->uc, reg, &x);
    return x;
}

static inline void soft_wr(struct soft_vcpu *v, int reg, uint64_t x)
{
    uc_reg_write(v->uc, reg, &x);
}

/* backend_soft.c: the system and VM fds. */
/* Record the thread's last message (printf-style). */
void soft_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* soft_caps.c: KVM_CHECK_EXTENSION (vm NULL on /dev/kvm's fd) and KVM_ENABLE_CAP on a VM fd and on a vCPU fd. */
int soft_check_extension(struct soft_vm *vm, long cap);
int soft_vm_enable_cap(struct soft_vm *vm, const struct kvm_enable_cap *cap);
int soft_vcpu_enable_cap(struct soft_vcpu *v, const struct kvm_enable_cap *cap);

/* soft_vmcaps.c: a VM's vCPU ids and its BSP. 0 or -errno, with the last error set. */
/* KVM_ENABLE_CAP(KVM_CAP_MAX_VCPU_ID): vCPU ids below max_id, set once. */
int soft_vm_max_vcpu_id_set(struct soft_vm *vm, uint64_t max_id);
/* KVM_CREATE_VCPU's check of the id against the VM's bound (kvm_arch_vcpu_precreate). vm->lock held. */
int soft_vm_vcpu_precreate(struct soft_vm *vm, uint64_t id);
/* KVM_SET_BOOT_CPU_ID: -EBUSY once a vCPU exists. */
int soft_vm_set_boot_cpu_id(struct soft_vm *vm, unsigned long id);
/* The vCPU is the VM's boot processor (KVM's kvm_vcpu_is_reset_bsp): IA32_APIC_BASE.BSP at reset. */
bool soft_vcpu_is_reset_bsp(const struct soft_vcpu *v);
/* Host pointer for guest-physical [gpa, gpa+len) if one slot covers it all, else NULL. */
uint8_t *soft_gpa_to_hva(struct soft_vm *vm, uint64_t gpa, uint64_t len);

/* soft_ioctl.c: the vCPU fd. */
/* A new vCPU in KVM's reset state, with an engine and its run page. 0 or -errno. */
int soft_vcpu_create(struct soft_vm *vm, int id, struct soft_vcpu **out);
/* Unwind a suspended run, give the engine back to the pool, free v and close its fd. */
void soft_vcpu_destroy(struct soft_vcpu *v);
/* A vCPU ioctl, as KVM answers it. */
int soft_vcpu_ioctl(struct soft_vcpu *v, unsigned long req, unsigned long arg);

/* soft_run.c: KVM_RUN. */
/* KVM_RUN: resume the vCPU's coroutine until the next exit. Its return value, or -EINTR. */
int soft_vcpu_run(struct soft_vcpu *v);
/* The coroutine's body: run, yield the result to KVM_RUN, again, until cancelled. */
void soft_co_main(void *arg);
/* The fields of kvm_run every exit fills (if_flag, cr8, apic_base, ready_for_interrupt_injection). */
void soft_fill_exit_common(struct soft_vcpu *v);
/* KVM_EXIT_INTERNAL_ERROR (emulation) with the instruction bytes at RIP, and why as the last error. */
void soft_internal_error(struct soft_vcpu *v, const char *why);
/* From inside a hook: hand the exit to the VMM and wait for the next KVM_RUN. False when being closed. */
bool soft_exit_to_vmm(struct soft_vcpu *v);
/* UC_HOOK_BLOCK: before every block (kicks, interrupt windows, remaps, segment re-checks, new blocks to scan). */
void soft_hook_block(uc_engine *uc, uint64_t addr, uint32_t size, void *ud);

/* soft_state.c: registers as KVM_GET/SET_REGS and SREGS see them, and the reset state. */
void soft_regs_get(struct soft_vcpu *v, struct kvm_regs *r);
void soft_regs_set(struct soft_vcpu *v, const struct kvm_regs *r);
void soft_sregs_get(struct soft_vcpu *v, struct kvm_sregs *s);
void soft_sregs_set(struct soft_vcpu *v, const struct kvm_sregs *s);
/* The state KVM gives a new vCPU (kvm_vcpu_reset); init_event: an INIT, which keeps APIC base and CR0.CD/NW. */
void soft_vcpu_reset(struct soft_vcpu *v, bool init_event);

/* soft_mmu.c: guest memory through the guest's paging. The image must be loaded. */
/* soft_mmu_walk with the paging registers of the loaded image. */
struct soft_walk soft_translate(struct soft_vcpu *v, uint64_t lin, bool write, bool user);
/* Read or write len bytes at a linear address. 0; 1 with pf_addr and pferr set on a page fault; -1 outside RAM. */
int soft_lin_rw(struct soft_vcpu *v, uint64_t lin, void *buf, size_t len, bool write, bool user, uint64_t *pf_addr,
                uint32_t *pferr);
/* Up to 15 bytes at linear address lin (fewer where memory ends). */
size_t soft_fetch_lin(struct soft_vcpu *v, uint64_t lin, uint8_t *out);
/* Up to 15 instruction bytes at CS:rip (fewer where memory ends). */
size_t soft_fetch(struct soft_vcpu *v, uint64_t rip, uint8_t *out);

/* soft_io.c: port I/O and MMIO exits. */
/* Find the I/O instruction of the current exit in its block: v->io_rip/io_len/io_bytes. The image must be loaded. */
bool soft_locate_io(struct soft_vcpu *v);
/* RIP as KVM reports it at an I/O exit: at the I/O instruction. */
uint64_t soft_io_exit_rip(struct soft_vcpu *v, uint64_t engine_rip);
/* Send an MMIO write held back for merging. Call before any other exit and at block boundaries. */
void soft_mmio_flush(struct soft_vcpu *v);
/*
 * An engine read of MMIO that is half of an unaligned guest access (or the answer kept for the other half):
 * the access is made as KVM makes it and *val gets this half. False when the read is a plain one.
 */
bool soft_mmio_split_read(struct soft_vcpu *v, uint64_t gpa, unsigned size, uint64_t *val);
/* True when an instruction of the running block makes one access over [gpa, gpa + len) (soft_mmio_split.c). */
bool soft_mmio_one_access(struct soft_vcpu *v, uint64_t gpa, unsigned len);
void soft_hook_out(uc_engine *uc, uint32_t port, int size, uint32_t value, void *ud);
uint32_t soft_hook_in(uc_engine *uc, uint32_t port, int size, void *ud);
uint64_t soft_hook_mmio_read(uc_engine *uc, uint64_t off, unsigned size, void *ud);
void soft_hook_mmio_write(uc_engine *uc, uint64_t off, unsigned size, uint64_t value, void *ud);

/* soft_cpuid.c: CPUID. */
/* KVM_GET_SUPPORTED_CPUID: what the engine emulates, as KVM would offer it. Entries written (at most max). */
int soft_supported_cpuid(struct kvm_cpuid_entry2 *out, int max);
/* UC_HOOK_INSN for CPUID: answer from the vCPU's table (KVM_SET_CPUID2). */
int soft_hook_cpuid(uc_engine *uc, void *ud);

/* soft_msr.c: MSRs the backend keeps, the TSC and kvmclock. */
uint64_t soft_host_tsc(void);
/* soft_clock.c: deterministic mode (MINIVMM_SOFT_DETERMINISTIC=1): time from the instruction count. */
bool soft_deterministic(void);
uint64_t soft_icount(void);
/* Deterministic mode, a vCPU halted until a timer: the count jumps ahead to `to` (QEMU's icount without sleeping). */
void soft_icount_warp(uint64_t to);
uint64_t soft_det_realtime_ns(void);
/* Adds the instruction-counting hook to a new engine in deterministic mode; false when Unicorn refused it. */
bool soft_clock_hook_add(uc_engine *uc);
uint64_t soft_tsc_khz(void);
/* kvmclock of vm: CLOCK_MONOTONIC_RAW plus the VM's offset, in ns. */
uint64_t soft_kvmclock_ns(struct soft_vm *vm);
/* A new VM's kvmclock starts at 0. */
void soft_vm_clock_init(struct soft_vm *vm);
/* KVM_GET_CLOCK and KVM_SET_CLOCK. 0 or -errno. */
int soft_vm_clock_get(struct soft_vm *vm, struct kvm_clock_data *c);
int soft_vm_clock_set(struct soft_vm *vm, const struct kvm_clock_data *c);
/* Guest TSC = ((host TSC * tsc_ratio) >> 32) + off. */
void soft_set_tsc_offset(struct soft_vcpu *v, uint64_t off);
/* The ratio for a guest TSC at the host's rate (no scaling). */
#define SOFT_TSC_RATIO_ONE (1ull << 32)
/* The guest TSC now. */
uint64_t soft_guest_tsc(struct soft_vcpu *v);
/*
 * The VMM's write of data to IA32_TSC (a new vCPU's is 0), as KVM's kvm_synchronize_tsc: a write of 0, or within a
 * second of where the VM's last write would be now, takes the offset of the other vCPUs' TSC line instead.
 */
void soft_tsc_synchronize(struct soft_vcpu *v, uint64_t data);
/* KVM_HAS/GET/SET_DEVICE_ATTR on a vCPU fd (req): KVM_VCPU_TSC_CTRL's KVM_VCPU_TSC_OFFSET. 0 or -errno. */
int soft_vcpu_tsc_attr(struct soft_vcpu *v, unsigned long req, const struct kvm_device_attr *a);
/* The vCPU in KVM_RUN on this thread (set by KVM_RUN): the engine's RDTSC scales by its ratio. */
extern __thread struct soft_vcpu *soft_tsc_vcpu;
/* The engine's RDTSC before its offset: the host TSC scaled by soft_tsc_vcpu's ratio (soft_clock.c calls it). */
uint64_t soft_engine_tsc(void);
/* KVM_SET_TSC_KHZ with KVM's semantics (a host with TSC scaling): 0 or -EINVAL. The guest TSC's offset is kept. */
int soft_vcpu_set_tsc_khz(struct soft_vcpu *v, uint32_t khz);
/* KVM_REQ_CLOCK_UPDATE: publish the vCPU's kvmclock page again (when enabled) from the clock and TSC now. */
void soft_kvmclock_update(struct soft_vcpu *v);
/* vCPU v's kvmclock page as it would be written now: its TSC, kvmclock (ns) and the pvclock scale. */
void soft_pvclock_now(struct soft_vcpu *v, uint64_t *tsc, uint64_t *ns, uint32_t *mul, int8_t *shift);
/* The guest's RDMSR/WRMSR of idx (KVM's rules for the guest): 1 done, 0 not the backend's, -1 #GP(0). */
int soft_msr_guest(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write);
/* An MSR the backend keeps (the engine ignores it), as KVM_GET/SET_MSRS reach it: true if handled. */
bool soft_msr_write(struct soft_vcpu *v, uint32_t idx, uint64_t val);
bool soft_msr_read(struct soft_vcpu *v, uint32_t idx, uint64_t *val);
/* KVM_GET_MSRS (set false) or KVM_SET_MSRS: the number of entries done, or -E2BIG. */
int soft_vcpu_msrs(struct soft_vcpu *v, struct kvm_msrs *m, bool set);

/* soft_steal.c: MSR_KVM_STEAL_TIME, KVM's steal time from the run delay of the thread in KVM_RUN. */
/* The guest writes MSR_KVM_STEAL_TIME: false where KVM refuses it (#GP: reserved bits, no run delay to read). */
bool soft_steal_msr_write(struct soft_vcpu *v, uint64_t val);
/* KVM's record_steal_time: at each KVM_RUN and when enabled, add the run delay since the last update. */
void soft_steal_update(struct soft_vcpu *v);
/* Close what the steal time keeps open. */
void soft_steal_destroy(struct soft_vcpu *v);

/* soft_seg.c: segment limit checks in protected mode (the engine makes none). */
/* Re-read segment state into the checker's cache; true when the limit hook must be added or removed. */
bool soft_limits_refresh(struct soft_vcpu *v);
/* Between runs: add or remove the limit hook as the segment state asks. 0 or -errno. */
int soft_limits_apply(struct soft_vcpu *v);

/* soft_event.c: exceptions and interrupts through the guest's IVT/IDT. */
/* Deliver an event, with the double- and triple-fault rules. false: shutdown or internal error (run filled). */
bool soft_deliver_event(struct soft_vcpu *v, int vec, bool has_err, uint32_t err, bool soft, bool ext);
/* UC_HOOK_INTR: an exception the engine raised, to deliver. */
void soft_hook_intr(uc_engine *uc, uint32_t intno, void *ud);
/* UC_HOOK_INSN_INVALID: VMCALL/VMMCALL as KVM's hypercalls, else #UD. */
bool soft_hook_invalid(uc_engine *uc, void *ud);

/* soft_syscall.c: SYSCALL, which the engine runs as a no-op. */
/* UC_HOOK_INSN for SYSCALL: stop the engine after it (STOP_SYSCALL). */
void soft_hook_syscall(uc_engine *uc, void *ud);
/* The SYSCALL transition (or its #UD) after STOP_SYSCALL. false: shutdown or internal error (run filled). */
bool soft_syscall_enter(struct soft_vcpu *v);

/* soft_io_done.c: a port I/O exit completed by KVM_RUN with immediate_exit, as KVM's complete_userspace_io. */
/* Complete a waiting non-string IN or OUT exit in the registers' view; false for any other exit (not done). */
bool soft_io_done_mark(struct soft_vcpu *v);
/* KVM_GET_REGS' view of a completed exit: RIP past the instruction, an IN's data in RAX. */
void soft_io_done_regs(struct soft_vcpu *v, struct kvm_regs *r);
/* Before the engine resumes: it finishes the instruction with the data KVM took at completion. */
void soft_io_done_resume(struct soft_vcpu *v);

/* soft_smm.c: system management mode and memory address space 1. */
/* The slots the vCPU sees: the VM's, or address space 1's while it is in SMM. */
struct soft_vm *soft_vcpu_mem(struct soft_vcpu *v);
/* The slots of address space as_id (KVM_SET_USER_MEMORY_REGION's slot >> 16): 0 the VM, 1 SMRAM's (made on first use);
 * NULL for another id or when out of memory. vm->lock held. */
struct soft_vm *soft_vm_as(struct soft_vm *vm, uint32_t as_id);
/*
 * The MMIO gaps [base[i], end[i]) of the vCPU's address space (n of them, ascending), cut where the other address
 * space's slots begin and end, so that the gaps both share (the long one up to 4 GiB) stay mapped across SMM entry
 * and exit. The new count; n unchanged when the VM has no address space 1 or the pieces would exceed max.
 */
int soft_smm_gaps_split(const struct soft_vcpu *v, uint64_t *base, uint64_t *end, int n, int max);
/* Free address space 1's slots. */
void soft_smm_vm_destroy(struct soft_vm *vm);
/* kvm_vcpu_reset's part: out of SMM, no SMI pending, count 0; SMBASE 0x30000 unless init_event. */
void soft_smm_reset(struct soft_vcpu *v, bool init_event);
/* An SMI for v (KVM_SMI, an SMI from a local APIC): pending, and the engine stops at the next block. */
void soft_smm_raise(struct soft_vcpu *v);
/* Before the engine runs: take a pending SMI (enter SMM) and map the address space the vCPU is in. True if entered. */
bool soft_smm_check(struct soft_vcpu *v);
/* The instruction bytes b[0..n) at RIP are an RSM the backend emulates (the vCPU is in SMM). */
bool soft_smm_is_rsm(const struct soft_vcpu *v, const uint8_t *b, size_t n);
/* RSM (STOP_RSM): the state back from SMRAM. False: shutdown or internal error (run filled). */
bool soft_smm_rsm(struct soft_vcpu *v);
/* MSR_IA32_SMBASE and MSR_SMI_COUNT (host: KVM_GET/SET_MSRS): true if handled, false for #GP or another MSR. */
bool soft_smm_msr(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool set, bool host);

/* soft_engine.c: the pool of Unicorn engines and the guest memory map inside one. */
struct soft_engine *soft_engine_get(void);
void soft_engine_put(struct soft_engine *e);
/*
 * Puts the engine in its pristine CPU state with no RAM mapped and no translations of it. Also safe while the
 * engine is suspended in a hook: the rest of the running block then reaches no host memory of the VM's.
 */
void soft_engine_drop_ram(struct soft_engine *e);
/*
 * Map every slot (RAM) up to SOFT_LAZY_SLOT bytes and every gap below SOFT_MMIO_LIMIT (MMIO) into v's engine;
 * larger slots and the MMIO above are mapped on first touch (soft_lazy.c). 0 or -errno.
 */
int soft_map_memory(struct soft_vcpu *v);

/* soft_lazy.c: slots and MMIO mapped into the engine on first touch. */
/* Pages mapped into engines (slots and MMIO chunks, not the gaps below SOFT_MMIO_LIMIT), and pages unmapped. */
extern uint64_t soft_pages_mapped, soft_pages_unmapped;
/* The highest guest-physical address width a slot may reach: the supported CPUID's MAXPHYADDR. */
unsigned soft_gpa_bits(void);
/* UC_HOOK_MEM_UNMAPPED: map the chunk of the slot (RAM) or of the MMIO at gpa, so the engine retries the access. */
bool soft_hook_unmapped(uc_engine *uc, uc_mem_type type, uint64_t gpa, int size, int64_t value, void *ud);
/*
 * The engine raised #PF (v->exc_vector): true when a paging-structure entry on the walk lay in a chunk not yet
 * mapped (the engine's page walker reads physical memory without the unmapped hook): those chunks are now
 * mapped and CR2 is as before, so the instruction runs again instead of taking the fault.
 */
bool soft_lazy_pf_retry(struct soft_vcpu *v);
/* Unmap-time bookkeeping: frees the lazily mapped MMIO chunks' contexts (after the engine unmapped them). */
void soft_lazy_forget(struct soft_engine *e);

/* soft_uc_scan.c: code hooks on single instructions (RDTSC/RDMSR/WRMSR, segment loads) found in new blocks. */
/* Scan a block about to run; true when new hooks wait (stop, soft_apply_pending_hooks, re-enter). */
bool soft_scan_block(struct soft_vcpu *v, uint64_t addr, uint32_t size);
/*
 * A scanned block (scanned[idx]) runs for the first time in this KVM_RUN: true if its bytes are as translated.
 * False when the VMM rewrote them: the entry is dropped and the block queued for flushing (stop and re-enter).
 */
bool soft_code_check(struct soft_vcpu *v, unsigned idx, uint64_t addr, uint32_t size);
void soft_apply_pending_hooks(struct soft_vcpu *v);

/* soft_uc_tb.c: Unicorn's x86 translator, replaced to bound the instructions per translation block. */
/* True once a block was translated through the replacement (after soft_layout_probe: the bound is in force). */
bool soft_tb_bound_active(void);
/*
 * With the in-kernel irqchip, KVM delivers an interrupt at the first instruction boundary where it is deliverable;
 * the engine looks at block boundaries only. So the translator ends a block after the first instruction that may
 * make one deliverable (soft_insn_may_unmask: a PIC port, WRMSR, MOV to CR8; and memory writes while the local APIC
 * is in xAPIC mode or the IOAPIC holds a masked or unacknowledged line: v->tb_cut_mem, soft_irqchip_take) and the
 * next block's hook delivers it. soft_tb_current: the vCPU whose engine runs on this thread now (NULL outside the
 * engine), whose code the translator reads.
 */
void soft_tb_current(struct soft_vcpu *v);

/* soft_uc_probe.c: start-up probes of this Unicorn build. */
/* Find and check the CPU state image's layout (once a process). 0, or -ENOSYS with the last error set. */
int soft_layout_probe(void);
/* The frame of the engine's 8-byte load helper in an MMIO read callback's backtrace, or -1 (soft_io.c). */
#define SOFT_BT_DEPTH 10
extern int soft_ldq_frame;
extern void *soft_ldq_addr;

#endif
