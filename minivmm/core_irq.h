/* The in-kernel irqchip from the VMM's side (KVM_CREATE_IRQCHIP), and the guest's interrupt-request port. */
#ifndef MINIVMM_CORE_IRQ_H
#define MINIVMM_CORE_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#include "mvm.h"

/*
 * KVM_CREATE_IRQCHIP (PIC pair, IOAPIC, a local APIC per vCPU; HLT then waits in the kernel) and KVM_CREATE_PIT2
 * (the 8254 on ports 0x40-0x43 and 0x61, IRQ 0), before any vCPU, and
 * the interrupt-request port (abi.h MVM_PORT_IRQ) through which a guest asks for KVM_IRQ_LINE and KVM_SIGNAL_MSI.
 * 0 or -errno with a message naming the backend.
 */
int vm_irqchip_create(struct mvm_vm *vm);
/* KVM_IRQ_LINE_STATUS: GSI gsi to level; *status gets KVM's answer (>0 delivered, 0 coalesced, <0 masked). */
int vm_irq_line(struct mvm_vm *vm, uint32_t gsi, bool level, int *status);
/* KVM_SIGNAL_MSI: its return (>0 delivered, 0 blocked by the guest), or -errno (-EPERM: no destination). */
int vm_signal_msi(struct mvm_vm *vm, uint64_t addr, uint32_t data);
/*
 * Offers the TSC-deadline timer in the vCPU's CPUID (leaf 1 ECX bit 24) when the backend has it
 * (KVM_CAP_TSC_DEADLINE_TIMER): KVM lists it among the emulated features, so a VMM turns it on itself.
 */
int vcpu_cpuid_tsc_deadline(struct mvm_vcpu *vcpu);

#endif
