/* Guest <-> host ABI of minivmm labs: ports, ucall and hypercall numbers. Shared by VMM and guests. */
#ifndef MINIVMM_ABI_H
#define MINIVMM_ABI_H

/* Bump on any change to a port, a number or a struct layout below. */
#define MVM_ABI_VERSION 1

/* Serial console: a 16550 subset at COM1. */
#define MVM_PORT_SERIAL 0x3f8
/* Debug byte port (Bochs/QEMU convention): each OUT byte is console output. */
#define MVM_PORT_DEBUG 0xe9
/*
 * Test port (ucall). A 32-bit OUT of the address of a struct mvm_ucall; the
 * VMM reads the struct through its checked translator. Paging off (CR0.PG
 * clear: real mode, lab 2): a guest-physical address (protected-mode guests
 * pass it with a flat, base-0 DS). Paging on (lab 3): a guest-virtual
 * address, sign-extended to 64 bits in long mode so a higher-half
 * (0xffffffff80000000 + x) address fits, which the VMM translates through
 * the guest's page tables (lab3_gva_to_gpa) page by page.
 */
#define MVM_PORT_UCALL 0x500
/* Hypercall port: a 32-bit OUT of the hypercall number, arguments in registers. */
#define MVM_PORT_HYPERCALL 0x510
/*
 * Interrupt requests (`minivmm run --irqchip`): the guest asks the VMM to drive the in-kernel irqchip, as a
 * device would. A 32-bit OUT to MVM_PORT_IRQ: bits 0-7 a GSI, bits 8-9 MVM_IRQ_OP_* (KVM_IRQ_LINE_STATUS:
 * lower, raise, or pulse = raise then lower). A 32-bit OUT to MVM_PORT_IRQ_MSI_ADDR sets the MSI address
 * (0xfeeXXXXX), one to MVM_PORT_IRQ_MSI sends KVM_SIGNAL_MSI with that data. A 32-bit IN of MVM_PORT_IRQ
 * reads the last status (the pulse's raise, or KVM_SIGNAL_MSI's return) as a signed number.
 */
#define MVM_PORT_IRQ          0x520
#define MVM_PORT_IRQ_MSI_ADDR 0x524
#define MVM_PORT_IRQ_MSI      0x528
#define MVM_IRQ_OP_LOWER      0
#define MVM_IRQ_OP_RAISE      1
#define MVM_IRQ_OP_PULSE      2
/*
 * Hypercalls (lab 4), the doorbell convention: RAX = the number, arguments in
 * RBX, RCX, RSI, RDI, then `out %eax, %dx` with DX = MVM_PORT_HYPERCALL (a
 * port above 0xff needs DX, so RDX, KVM's third VMCALL argument, is taken);
 * the result comes back in RAX: >= 0, or -MVM_HC_E* (Linux errno values). The
 * arguments a hypercall does not take must be 0 (room to grow). Buffers are
 * guest-virtual (physical with paging off) and checked against guest RAM.
 * Under KVM, VMCALL/VMMCALL never reach the VMM: KVM answers them in the
 * kernel (-KVM_ENOSYS, -1000), hence the port. 1..15 are lab 4's; later labs
 * take the next free numbers (lab 6: the pvclock page).
 */
#define MVM_HC_NOP           1 /* () -> 0: one doorbell round trip, nothing else (the bench's floor) */
#define MVM_HC_CONSOLE_WRITE 2 /* (buf, len) -> len: len bytes of buf to the console, in one exit */
#define MVM_HC_CLOCK_NS      3 /* () -> the host's CLOCK_MONOTONIC in ns */
/*
 * The console's shared buffer (lab 4, path (c) of the byte-cost table): MVM_HC_CONSOLE_SHARE registers a buffer of
 * guest RAM once (guest-physical; size 0 unregisters); then each message is one 32-bit OUT of its length to
 * MVM_PORT_CONSOLE_KICK, which prints that many bytes from the buffer's start: no registers read, no page walk.
 * A kick longer than the buffer, or with none registered, prints nothing (a device ignores what it cannot do).
 */
#define MVM_HC_CONSOLE_SHARE  4 /* (gpa, size) -> 0: size <= MVM_HC_CONSOLE_MAX, all of it RAM */
#define MVM_PORT_CONSOLE_KICK 0x511
/*
 * The file service (lab 4): regular files of the host directory given with `minivmm run --share DIR`, nothing
 * outside it (no "..", absolute paths or symlinks: the VMM opens beneath DIR with openat2 and follows no symlink).
 * A path is (gva, len): 1..MVM_HC_PATH_MAX bytes, no NUL, relative to DIR. Descriptors are the VM's own,
 * 0..MVM_HC_FS_FDS-1. Answers are Linux errno values: the kernel's own for a path it refuses (EXDEV: leaves the
 * share, ELOOP: a symlink, ENOENT), EBADF, EMFILE, EFAULT, EINVAL from the VMM's checks, ENODEV without --share.
 */
#define MVM_HC_FS_OPEN   5 /* (path, len, flags) -> fd: flags MVM_HC_O_*; O_CREAT makes a regular file of mode 0644 */
#define MVM_HC_FS_READ   6 /* (fd, buf, len) -> bytes read, 0 at the end; len <= MVM_HC_FS_IO_MAX */
#define MVM_HC_FS_WRITE  7 /* (fd, buf, len) -> bytes written; len <= MVM_HC_FS_IO_MAX */
#define MVM_HC_FS_CLOSE  8 /* (fd) -> 0 */
#define MVM_HC_FS_STAT   9 /* (fd, buf) -> 0: a struct mvm_hc_stat at buf */
#define MVM_HC_PATH_MAX  255
#define MVM_HC_FS_IO_MAX 4096
#define MVM_HC_FS_FDS    16
#define MVM_HC_O_RDONLY  0 /* open flags: Linux's values, and only these */
#define MVM_HC_O_WRONLY  1
#define MVM_HC_O_RDWR    2
#define MVM_HC_O_ACCMODE 3
#define MVM_HC_O_CREAT   0100
#define MVM_HC_O_TRUNC   01000 /* only with write access */
#define MVM_HC_O_APPEND  02000
#define MVM_HC_ENOENT    2
#define MVM_HC_EBADF     9  /* not an open descriptor, or not open for that access */
#define MVM_HC_EACCES    13 /* the host refused, or not a regular file */
#define MVM_HC_EXDEV     18 /* the path leaves the shared directory */
#define MVM_HC_ENODEV    19 /* no --share: the VM has no file service */
#define MVM_HC_EMFILE    24 /* all MVM_HC_FS_FDS descriptors are open */
#define MVM_HC_ELOOP     40 /* a symlink on the path */
#ifndef __ASSEMBLER__
#include <stdint.h>
/* What MVM_HC_FS_STAT writes. */
struct mvm_hc_stat {
    uint64_t size;     /* bytes */
    uint64_t mtime_ns; /* last modification, ns since the epoch */
    uint32_t mode;     /* permission bits (0644...); the type is always a regular file */
    uint32_t pad;
};
_Static_assert(sizeof(struct mvm_hc_stat) == 24, "mvm_hc_stat layout");
#endif
/* (16 stays free: the table's own tests register it as "a later lab's" number.) */
#define MVM_HC_PVCLOCK     17   /* (gpa) -> 0: lab 6 publishes its pvclock_vcpu_time_info at gpa; gpa 0 stops it */
#define MVM_HC_STEAL       18   /* (gpa) -> 0: lab 6 keeps a struct kvm_steal_time at gpa; again: updates it */
#define MVM_HC_CONSOLE_MAX 4096 /* the longest MVM_HC_CONSOLE_WRITE */
#define MVM_HC_ARGS        4    /* RBX, RCX, RSI, RDI */
#define MVM_HC_EFAULT      14   /* a buffer outside guest RAM or not mapped */
#define MVM_HC_EINVAL      22   /* a bad argument: a length over the limit, a non-zero unused argument */
#define MVM_HC_ENOSYS      38   /* no such hypercall */

#define MVM_UCALL_DONE   1 /* the guest finished; all its checks passed */
#define MVM_UCALL_ASSERT 2 /* a GUEST_ASSERT failed: line, actual, expected, msg */
#define MVM_UCALL_SYNC   3 /* a sync point: args[0] is a stage number */
#define MVM_UCALL_PRINT  4 /* msg is a line of text for the host log */

#define MVM_UCALL_MSG_LEN 64

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Layout is fixed: 16-bit asm guests fill it with .long/.quad/.ascii directives. */
struct mvm_ucall {
    uint32_t cmd;
    uint32_t line;
    uint64_t actual;
    uint64_t expected;
    char msg[MVM_UCALL_MSG_LEN];
};
_Static_assert(sizeof(struct mvm_ucall) == 24 + MVM_UCALL_MSG_LEN, "ucall layout");
#endif

/*
 * Lab 5: one virtio-mmio device (virtio 1.2 section 4.2, version 2) with
 * virtio-net (device ID 1) behind it, at a guest-physical base outside RAM
 * (guest RAM must end below it) and inside the standard identity map, so
 * every register access is a KVM_EXIT_MMIO. No interrupt is delivered: this
 * VM has no interrupt controller yet, so the device only sets InterruptStatus
 * and the driver polls the used ring (interrupts come with the irqchip).
 * Lab 5's guests read a struct mvm_virtio_params at MVM_VIRTIO_PARAMS_GPA
 * when its magic is MVM_VIRTIO_PARAMS_MAGIC (a test or benchmark writes it
 * before the run; else they use their defaults) and write their results there.
 */
#define MVM_VIRTIO_MMIO_BASE      0x3fd00000
#define MVM_VIRTIO_MMIO_SIZE      0x1000
#define MVM_VIRTIO_PARAMS_GPA     0x1ff000
#define MVM_VIRTIO_PARAMS_MAGIC   0x35766d6d /* "mmv5" */
#define MVM_VIRTIO_P_EVENT_IDX    1u         /* negotiate VIRTIO_RING_F_EVENT_IDX */
#define MVM_VIRTIO_P_INDIRECT     2u         /* negotiate VIRTIO_RING_F_INDIRECT_DESC: one indirect table per frame */
#define MVM_VIRTIO_P_NO_INTERRUPT 4u         /* without EVENT_IDX: set VRING_AVAIL_F_NO_INTERRUPT (the driver polls) */
#define MVM_VIRTIO_P_NO_RX        8u         /* post no receive buffers: transmit only */
#ifndef __ASSEMBLER__
struct mvm_virtio_params {
    uint32_t magic;   /* MVM_VIRTIO_PARAMS_MAGIC */
    uint32_t packets; /* frames to transmit */
    uint32_t batch;   /* frames per kick: 1..256 */
    uint32_t flags;   /* MVM_VIRTIO_P_* */
    /* Written by the guest: */
    uint64_t kicks;     /* QueueNotify writes it made for the transmit queue */
    uint64_t rx_frames; /* frames it received back */
    uint64_t tsc_total; /* TSC cycles from the first enqueue to the last frame used */
    uint64_t tsc_first; /* sum over batches of TSC cycles from a batch's first enqueue to its first used */
    uint64_t batches;
};
_Static_assert(sizeof(struct mvm_virtio_params) == 56, "virtio params layout");
#endif

/*
 * Lab 6: the paravirtual clock. struct pvclock_vcpu_time_info is KVM's and
 * Xen's time page (Linux arch/x86/include/asm/pvclock-abi.h; the layout
 * Documentation/virt/kvm/x86/msr.rst gives for MSR_KVM_SYSTEM_TIME_NEW),
 * defined here once since no uapi header carries it. Guest time in ns at TSC
 * value tsc: d = tsc - tsc_timestamp; d <<= tsc_shift (>>= -tsc_shift when
 * negative); time = system_time + ((d * tsc_to_system_mul) >> 32), the
 * product taken in 96 bits. `version` is a seqlock: odd while the host writes.
 * MVM_HC_PVCLOCK(gpa) asks lab 6's VMM for one (32-byte aligned, in RAM);
 * MSR_KVM_SYSTEM_TIME_NEW asks KVM for its own (kvmclock) in the same layout.
 * The trapping clock for comparison: an 8-byte read at MVM_CLOCK_MMIO_GPA is
 * one KVM_EXIT_MMIO, answered with the same clock the page gives.
 * Lab 6's guests read a struct mvm_pvclock_params at MVM_PVCLOCK_PARAMS_GPA
 * when its magic is MVM_PVCLOCK_PARAMS_MAGIC (else they use their defaults)
 * and write their results there.
 */
#define MVM_CLOCK_MMIO_GPA       0x3fe10000
#define MVM_CLOCK_MMIO_SIZE      8
#define MVM_PVCLOCK_PARAMS_GPA   0x1fe000
#define MVM_PVCLOCK_PARAMS_MAGIC 0x36766d6d /* "mmv6" */
#define PVCLOCK_TSC_STABLE_BIT   (1 << 0)   /* the TSC is synchronized across vCPUs: no per-vCPU max needed */
#define PVCLOCK_GUEST_STOPPED    (1 << 1)   /* the host paused the guest (a watchdog hint; cleared by the guest) */
#define MVM_PVC_P_KVMCLOCK       1u /* also enable KVM's kvmclock (MSR_KVM_SYSTEM_TIME_NEW) and compare the two */
#define MVM_PVC_P_WAIT           2u /* at half the reads, keep reading until the host sets `go` (a test pauses the VM then) */
#define MVM_PVC_P_SOURCE_MASK    0xf00u /* the bench: which clock the loop reads (MVM_PVC_SRC_* << 8) */
#define MVM_PVC_SRC_PAGE         0      /* the pvclock page: no exit */
#define MVM_PVC_SRC_RDTSC        1      /* raw RDTSC: no exit, no ns */
#define MVM_PVC_SRC_MMIO         2      /* the trapping clock at MVM_CLOCK_MMIO_GPA: one exit */
#define MVM_PVC_SRC_HC           3      /* lab 4's MVM_HC_CLOCK_NS hypercall: one exit */
#ifndef __ASSEMBLER__
struct pvclock_vcpu_time_info {
    uint32_t version;
    uint32_t pad0;
    uint64_t tsc_timestamp;
    uint64_t system_time;
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    uint8_t flags;
    uint8_t pad[2];
} __attribute__((__packed__));
_Static_assert(sizeof(struct pvclock_vcpu_time_info) == 32, "pvclock_vcpu_time_info layout (msr.rst)");
_Static_assert(__builtin_offsetof(struct pvclock_vcpu_time_info, tsc_timestamp) == 8 &&
                   __builtin_offsetof(struct pvclock_vcpu_time_info, system_time) == 16 &&
                   __builtin_offsetof(struct pvclock_vcpu_time_info, tsc_to_system_mul) == 24 &&
                   __builtin_offsetof(struct pvclock_vcpu_time_info, tsc_shift) == 28 &&
                   __builtin_offsetof(struct pvclock_vcpu_time_info, flags) == 29,
               "pvclock_vcpu_time_info field offsets (msr.rst)");

struct mvm_pvclock_params {
    uint32_t magic;       /* MVM_PVCLOCK_PARAMS_MAGIC */
    uint32_t flags;       /* MVM_PVC_P_* */
    uint64_t reads;       /* clock reads in the loop */
    volatile uint32_t go; /* MVM_PVC_P_WAIT: set by the host to let the guest finish */
    uint32_t pad;
    /* Written by the guest: */
    volatile uint64_t done; /* reads so far (updated every 4096 reads, and at the end) */
    uint64_t retries;       /* reads the version check sent round again */
    uint64_t backwards;     /* reads that gave less than the one before */
    uint64_t first_ns, last_ns;
    uint64_t max_step_ns;   /* the largest step forward between two consecutive reads */
    uint64_t kvm_diff_max;  /* MVM_PVC_P_KVMCLOCK: the largest |pvclock - kvmclock| at one TSC value, ns */
    int64_t kvm_diff_first; /* the first such difference (pvclock - kvmclock), ns */
    uint64_t tsc_cycles;    /* TSC cycles the loop took */
    uint64_t page_gpa;      /* where the guest keeps its pvclock page (what it gave MVM_HC_PVCLOCK) */
    uint64_t republished;   /* reads that found a new version (the host published again) */
    uint64_t step_ns;       /* at the last new version: the time between it and the read before ... */
    uint64_t step_tsc_ns;   /* ... and the TSC ticks between them, in ns at the new scale (time that passed) */
};
_Static_assert(sizeof(struct mvm_pvclock_params) == 128, "pvclock params layout");
#endif

/*
 * Lab 6's steal time: MVM_HC_STEAL(gpa) asks lab 6's VMM to keep a struct
 * kvm_steal_time (KVM's layout, linux/kvm_para.h: steal in ns, version a
 * seqlock as pvclock's) at gpa, 64-byte aligned in RAM; the VMM adds the time
 * its vCPU thread was runnable but not running (its run delay) and, when guest
 * time jumps over a pause, the pause, each time the guest calls it again and
 * at each resume. MSR_KVM_STEAL_TIME asks KVM for its own, brought up to date
 * at every KVM_RUN. lab6/steal reads a struct mvm_steal_params at
 * MVM_STEAL_PARAMS_GPA beside lab 6's params (rounds in `reads`, the pause
 * handshake in `go`) and writes its results there.
 */
#define MVM_STEAL_PARAMS_GPA (MVM_PVCLOCK_PARAMS_GPA + 0x100)
#ifndef __ASSEMBLER__
struct mvm_steal_params {
    uint32_t spin_us;  /* in: guest time each round spins before it asks for an update (0: 100 ms) */
    uint32_t has_kvm;  /* out: 1 when KVM's steal time was on (CPUID 0x40000001 KVM_FEATURE_STEAL_TIME) */
    uint64_t first_ns; /* lab 6's steal after registering */
    uint64_t before_wait_ns, after_wait_ns; /* around the host's pause at half the rounds (MVM_PVC_P_WAIT) */
    uint64_t last_ns;                       /* at the end */
    uint64_t kvm_first_ns, kvm_last_ns;     /* KVM's steal, when has_kvm */
    uint64_t backwards;                     /* updates that found less steal than the one before (either page) */
    uint32_t version, kvm_version;          /* the versions at the end: even */
    uint32_t kvm_version_first;             /* KVM's, right after the WRMSR: even and not 0 (written already) */
    uint32_t pad;
};
_Static_assert(sizeof(struct mvm_steal_params) == 80, "steal params layout");
#endif

#endif
