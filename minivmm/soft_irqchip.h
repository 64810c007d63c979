/*
 * The soft backend's in-kernel irqchip (KVM_CREATE_IRQCHIP): the PIC pair, the IOAPIC and a local APIC per vCPU
 * with its timer, behind KVM's ioctls; interrupts reach the engine at block boundaries (a block ends after each
 * instruction that may unmask one: the boundary where KVM takes it), and HLT waits in the backend.
 * Also KVM_IOEVENTFD and KVM_IRQFD, which need no exit either.
 */
#ifndef MINIVMM_SOFT_IRQCHIP_H
#define MINIVMM_SOFT_IRQCHIP_H

#include <stdbool.h>
#include <stdint.h>

struct soft_vm;
struct soft_vcpu;

/* soft_run_once's return when the vCPU halted with an in-kernel irqchip: KVM_RUN waits, then runs on. */
#define SOFT_RUN_HALTED 1

/* VM ioctls of the irqchip, ioeventfds and irqfds: the ioctl's return, or -ENOTTY when req is none of them. */
int soft_irqchip_vm_ioctl(struct soft_vm *vm, unsigned long req, unsigned long arg);
/* KVM_GET_LAPIC / KVM_SET_LAPIC (-EINVAL without an irqchip, as KVM), KVM_GET/SET_MP_STATE (runnable, halted). */
int soft_irqchip_vcpu_ioctl(struct soft_vcpu *v, unsigned long req, void *arg);
/* The VM goes away: threads stopped, fds closed, state freed. */
void soft_irqchip_vm_destroy(struct soft_vm *vm);
/* A new vCPU: its local APIC (with an irqchip) and its wake-up fd. 0 or -errno. */
int soft_irqchip_vcpu_init(struct soft_vcpu *v);
/* A vCPU goes away. */
void soft_irqchip_vcpu_fini(struct soft_vcpu *v);

/* True when the VM has KVM_CREATE_IRQCHIP's chips (not only ioeventfds): interrupts arrive without the VMM. */
bool soft_irqchip_in_kernel(const struct soft_vcpu *v);

/* From the I/O hooks: true when the access was an in-kernel device's (no exit); *val is an IN's or read's data. */
bool soft_irqchip_pio(struct soft_vcpu *v, uint16_t port, unsigned size, bool write, uint32_t *val);
bool soft_irqchip_mmio(struct soft_vcpu *v, uint64_t gpa, unsigned size, bool write, uint64_t *val);
/* RDMSR/WRMSR of an MSR the irqchip keeps (x2APIC, TSC deadline): true if handled. */
bool soft_irqchip_msr(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write);

/*
 * Before the engine runs: fire due timers, and if an interrupt is pending and window_open, acknowledge it
 * (PIC first, then the local APIC) and return its vector for delivery. -1 when there is none to deliver now;
 * then v->irq_want says one waits for the window.
 */
int soft_irqchip_take(struct soft_vcpu *v, bool window_open, bool if_set);
/*
 * KVM_RUN of a vCPU halted with an in-kernel irqchip: wait (without the VM lock) until an interrupt can be taken.
 * 0 when it can (the vCPU runs again), -EINTR on a signal or immediate_exit.
 */
int soft_irqchip_halt_wait(struct soft_vcpu *v);

#endif
