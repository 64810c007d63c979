/* The soft backend's guest debugging (KVM_SET_GUEST_DEBUG): single steps, INT3 and DR0-3 breakpoints. */
#ifndef MINIVMM_SOFT_DEBUG_H
#define MINIVMM_SOFT_DEBUG_H

#include <linux/kvm.h>
#include <stdbool.h>

struct soft_vcpu;

/*
 * KVM_SET_GUEST_DEBUG with KVM's rules: without KVM_GUESTDBG_ENABLE all
 * debugging is off; SINGLESTEP, USE_SW_BP and USE_HW_BP (DR0-3 with DR7,
 * execution breakpoints) take effect at the next KVM_RUN. 0 or -EINVAL
 * (unknown flags, or INJECT_DB/INJECT_BP, which this backend does not do).
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
/* Takes the code hook out of the engine (pooled engines keep hooks) and frees the state. */
void soft_debug_destroy(struct soft_vcpu *v);

#endif
