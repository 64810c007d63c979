/*
 * The soft backend's vCPU state beyond registers and MSRs, as a VMM saves and restores it (migration, the
 * selftests' vcpu_save_state): KVM_GET/SET_VCPU_EVENTS and DEBUGREGS (soft_vcpu_events.c), KVM_GET/SET_XSAVE,
 * KVM_GET_XSAVE2, KVM_GET/SET_XCRS and FPU (soft_xsave.c), and the pure XSAVE-layout rules under them.
 */
#ifndef MINIVMM_SOFT_SAVE_H
#define MINIVMM_SOFT_SAVE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct soft_vcpu;

/* XSAVE state components (XCR0 bits) and the standard, non-compacted layout (SDM vol. 1, 13.4). */
#define SOFT_XFEATURE_FP      (1ull << 0)
#define SOFT_XFEATURE_SSE     (1ull << 1)
#define SOFT_XFEATURE_YMM     (1ull << 2)
#define SOFT_XSAVE_FCW        0   /* u16 */
#define SOFT_XSAVE_FSW        2   /* u16 */
#define SOFT_XSAVE_FTW        4   /* u8: the abridged tag, bit i set when physical register i is not empty */
#define SOFT_XSAVE_FOP        6   /* u16 */
#define SOFT_XSAVE_FIP        8   /* u64 (the 64-bit format, as KVM's XSAVE64 writes it) */
#define SOFT_XSAVE_FDP        16  /* u64 */
#define SOFT_XSAVE_MXCSR      24  /* u32, then u32 MXCSR_MASK */
#define SOFT_XSAVE_ST         32  /* ST0-7, 16 bytes each, 10 used */
#define SOFT_XSAVE_XMM        160 /* XMM0-15, 16 bytes each */
#define SOFT_XSAVE_SW         464 /* 48 bytes software-defined: Linux puts its user XCR0 in the first 8 */
#define SOFT_XSAVE_HDR        512 /* u64 XSTATE_BV, u64 XCOMP_BV, 48 reserved bytes */
#define SOFT_XSAVE_YMM        576 /* YMM0-15 bits 255:128, 16 bytes each */
#define SOFT_XSAVE_FP_SIZE    160 /* component 0 spans bytes 0-159 (MXCSR included, as Linux copies it) */
#define SOFT_XSAVE_LEGACY_END 576
#define SOFT_XSAVE_FULL_SIZE  832 /* through the AVX component */
/* The x87 and SSE state after reset: FCW 0x37f, MXCSR 0x1f80 (Linux's init_fpstate, which KVM starts from). */
#define SOFT_FCW_INIT   0x37f
#define SOFT_MXCSR_INIT 0x1f80u
/* MXCSR bits the engine takes (its FXSAVE reports MXCSR_MASK 0xffff); a set bit outside is KVM's -EINVAL. */
#define SOFT_MXCSR_MASK 0xffffu

/*
 * The XCR0 bits the soft backend saves and restores for a guest, as its supported CPUID offers them (x87 and SSE:
 * the engine, QEMU 5.0's translator, runs no VEX-encoded instruction). The layout code handles the AVX component
 * too, so a backend that ran AVX would only change that mask.
 */
uint64_t soft_xcr0_supported(void);
/* What KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) answers: the buffer size for KVM_GET_XSAVE2, at least 4096. */
int soft_xsave2_size(void);
/* The bytes KVM_GET_XSAVE2 writes and KVM_SET_XSAVE reads (KVM's guest_fpu.uabi_size): the supported layout. */
size_t soft_xsave_uabi_size(void);

/*
 * Pure: the state components of a full-state image `full` (SOFT_XSAVE_FULL_SIZE bytes, every component present)
 * that are not in their initial configuration, as a CPU's XINUSE tracks them: x87 unless FCW 0x37f and all else 0;
 * SSE when an XMM register is nonzero or MXCSR is not 0x1f80; AVX when a YMM upper half is nonzero.
 */
uint64_t soft_xsave_inuse(const uint8_t *full);
/*
 * Pure: KVM_GET_XSAVE's buffer (Linux's __copy_xstate_to_uabi_buf, XSAVE mode) from a full-state image: the
 * components in `xfeatures` (the in-use ones, masked by what the guest may use) copied, the others in their
 * initial state, the header's XSTATE_BV = xfeatures, the software bytes naming `user_xcr0`; size bytes in all
 * (the rest zero).
 */
void soft_xsave_to_uabi(const uint8_t *full, uint64_t xfeatures, uint64_t user_xcr0, uint8_t *out, size_t size);
/*
 * Pure: KVM_SET_XSAVE's checks (fpu_copy_uabi_to_guest_fpstate, validate_user_xstate_header): XSTATE_BV within
 * `supported`, XCOMP_BV 0 (the standard format), the reserved header bytes 0, and MXCSR without bits outside
 * SOFT_MXCSR_MASK when x87, SSE or AVX is given. 0 or -EINVAL.
 */
int soft_xsave_check(const uint8_t *buf, uint64_t supported);
/*
 * Pure: apply a checked KVM_SET_XSAVE buffer to a full-state image `full` (XRSTOR's rules as KVM leaves them): a
 * component in XSTATE_BV is loaded, one outside it goes to its initial state; MXCSR comes from the buffer when x87,
 * SSE or AVX is given, and stays as it was otherwise.
 */
void soft_xsave_from_uabi(uint8_t *full, const uint8_t *buf);
/* soft_xsave.c: the ioctls, on the engine's x87/SSE registers and its XCR0. */
/* True when this Unicorn build's XCR0 was found (start-up probe): KVM_CAP_XCRS. */
bool soft_xcrs_available(void);
/* A new vCPU's x87/SSE state and XCR0 as KVM gives it (FCW 0x37f, MXCSR 0x1f80, XCR0 = x87). */
void soft_fpu_reset(struct soft_vcpu *v);
int soft_vcpu_get_xsave(struct soft_vcpu *v, void *buf, size_t size);
int soft_vcpu_set_xsave(struct soft_vcpu *v, const struct kvm_xsave *x);
int soft_vcpu_get_xcrs(struct soft_vcpu *v, struct kvm_xcrs *x);
int soft_vcpu_set_xcrs(struct soft_vcpu *v, const struct kvm_xcrs *x);
int soft_vcpu_get_fpu(struct soft_vcpu *v, struct kvm_fpu *f);
int soft_vcpu_set_fpu(struct soft_vcpu *v, const struct kvm_fpu *f);

/* soft_vcpu_events.c. */
/* KVM_GET_VCPU_EVENTS (kvm_vcpu_ioctl_x86_get_vcpu_events). */
void soft_vcpu_events_get(struct soft_vcpu *v, struct kvm_vcpu_events *e);
/* KVM_SET_VCPU_EVENTS: 0 or -EINVAL (flags this backend does not know or offer, a bad exception vector). */
int soft_vcpu_events_set(struct soft_vcpu *v, const struct kvm_vcpu_events *e);
/*
 * At KVM_RUN, before interrupts: deliver the exception or NMI KVM_SET_VCPU_EVENTS left to inject. False when the
 * delivery ended the run (shutdown or internal error, run filled).
 */
bool soft_vcpu_events_inject(struct soft_vcpu *v);
/* KVM_GET/SET_DEBUGREGS: DR0-3, DR6, DR7. Set: 0 or -EINVAL (flags, or bits 63:32 of DR6/DR7 set). */
void soft_vcpu_debugregs_get(struct soft_vcpu *v, struct kvm_debugregs *d);
int soft_vcpu_debugregs_set(struct soft_vcpu *v, const struct kvm_debugregs *d);

#endif
