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
#define MVM_HC_NOP 1           /* () -> 0: one doorbell round trip, nothing else (the bench's floor) */
#define MVM_HC_CONSOLE_WRITE 2 /* (buf, len) -> len: len bytes of buf to the console, in one exit */
#define MVM_HC_CLOCK_NS 3      /* () -> the host's CLOCK_MONOTONIC in ns */
#define MVM_HC_CONSOLE_MAX 4096 /* the longest MVM_HC_CONSOLE_WRITE */
#define MVM_HC_ARGS 4          /* RBX, RCX, RSI, RDI */
#define MVM_HC_EFAULT 14       /* a buffer outside guest RAM or not mapped */
#define MVM_HC_EINVAL 22       /* a bad argument: a length over the limit, a non-zero unused argument */
#define MVM_HC_ENOSYS 38       /* no such hypercall */

#define MVM_UCALL_DONE 1   /* the guest finished; all its checks passed */
#define MVM_UCALL_ASSERT 2 /* a GUEST_ASSERT failed: line, actual, expected, msg */
#define MVM_UCALL_SYNC 3   /* a sync point: args[0] is a stage number */
#define MVM_UCALL_PRINT 4  /* msg is a line of text for the host log */

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
#define MVM_VIRTIO_MMIO_BASE 0x3fd00000
#define MVM_VIRTIO_MMIO_SIZE 0x1000
#define MVM_VIRTIO_PARAMS_GPA 0x1ff000
#define MVM_VIRTIO_PARAMS_MAGIC 0x35766d6d /* "mmv5" */
#define MVM_VIRTIO_P_EVENT_IDX 1u    /* negotiate VIRTIO_RING_F_EVENT_IDX */
#define MVM_VIRTIO_P_INDIRECT 2u     /* negotiate VIRTIO_RING_F_INDIRECT_DESC: one indirect table per frame */
#define MVM_VIRTIO_P_NO_INTERRUPT 4u /* without EVENT_IDX: set VRING_AVAIL_F_NO_INTERRUPT (the driver polls) */
#define MVM_VIRTIO_P_NO_RX 8u        /* post no receive buffers: transmit only */
#ifndef __ASSEMBLER__
struct mvm_virtio_params {
    uint32_t magic;       /* MVM_VIRTIO_PARAMS_MAGIC */
    uint32_t packets;     /* frames to transmit */
    uint32_t batch;       /* frames per kick: 1..256 */
    uint32_t flags;       /* MVM_VIRTIO_P_* */
    /* Written by the guest: */
    uint64_t kicks;       /* QueueNotify writes it made for the transmit queue */
    uint64_t rx_frames;   /* frames it received back */
    uint64_t tsc_total;   /* TSC cycles from the first enqueue to the last frame used */
    uint64_t tsc_first;   /* sum over batches of TSC cycles from a batch's first enqueue to its first used */
    uint64_t batches;
};
_Static_assert(sizeof(struct mvm_virtio_params) == 56, "virtio params layout");
#endif

#endif
