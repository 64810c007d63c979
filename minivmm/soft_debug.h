/* The soft backend's guest debugging (KVM_SET_GUEST_DEBUG): single steps, INT3 and DR0-3 breakpoints. */
#ifndef MINIVMM_SOFT_DEBUG_H
#define MINIVMM_SOFT_DEBUG_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

struct soft_vcpu;

/*
 * KVM_SET_GUEST_DEBUG with KVM's rules: without KVM_GUESTDBG_ENABLE all
 * debugging is off; SINGLESTEP, USE_SW_BP, USE_HW_BP (DR0-3 with DR7:
 * execution and data breakpoints, DR7.GD) and BLOCKIRQ take effect at the
 * next KVM_RUN. 0 or -EINVAL (unknown flags, or INJECT_DB/INJECT_BP, which
 * this backend does not do).
 */
int soft_debug_set(struct soft_vcpu *v, const struct kvm_guest_debug *dbg);
/*
 * Before the engine starts: puts the code hook in or takes it out, and drops
 * the translated code after a change, since the VMM may have written INT3
 * bytes into guest RAM behind the engine's back.
 */
void soft_debug_prepare(struct soft_vcpu *v);
/*
 * The engine raised an exception: true when it is the debugger's (an INT3
 * with USE_SW_BP), and then run holds KVM_EXIT_DEBUG with exception 3 and
 * RIP is back at the INT3, as KVM leaves it.
 */
bool soft_debug_exception(struct soft_vcpu *v);
/* True while KVM_GUESTDBG_BLOCKIRQ is on: no interrupt is injected (x86.c, inject_pending_event). */
bool soft_debug_blocks_irq(const struct soft_vcpu *v);
/*
 * The data breakpoints of DR0-3 (as DR7 enables them: R/W 01 on writes, 11 on
 * reads and writes; LEN 1, 2, 4 or 8 bytes at dr[n] aligned down to it) that
 * an access of size bytes at addr hits, as DR6's B0-3. The addresses are of
 * one kind: linear as the CPU compares them, or guest-physical as the engine
 * reports its accesses.
 */
uint32_t soft_debug_data_match(uint64_t dr7, const uint64_t dr[4], uint64_t addr, unsigned size, bool write);
/* Takes the code and memory hooks out of the engine (pooled engines keep hooks) and frees the state. */
void soft_debug_destroy(struct soft_vcpu *v);

#endif
