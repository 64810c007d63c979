/* The soft backend's 8254 PIT (KVM's arch/x86/kvm/i8254.c): three channels, ports 0x40-0x43 and 0x61. Pure logic. */
#ifndef MINIVMM_SOFT_PIT_H
#define MINIVMM_SOFT_PIT_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#define PIT_FREQ_HZ 1193182u

/* count_load_time in the state is the host ns time base of the irqchip (soft_chip_now_ns), as KVM's ktime. */
struct soft_pit {
    struct kvm_pit_state2 s;
    bool speaker_data_on;
    /* Channel 0's timer: due at expire_ns (0: none), again every period_ns when periodic. */
    uint64_t expire_ns, period_ns;
};

/* KVM's kvm_pit_reset: every channel in mode 0xff with a count of 0x10000, gates on but channel 2's. */
void soft_pit_reset(struct soft_pit *p, uint64_t now_ns);
/* True for ports 0x40-0x43 and 0x61 (the speaker port: channel 2's gate). */
bool soft_pit_port(uint16_t port);
void soft_pit_write(struct soft_pit *p, uint16_t port, uint8_t val, uint64_t now_ns);
uint8_t soft_pit_read(struct soft_pit *p, uint16_t port, uint64_t now_ns);
/* Channel 0 fires if due: the number of edges for IRQ 0 (0 or 1: missed periods coalesce). */
unsigned soft_pit_poll(struct soft_pit *p, uint64_t now_ns);
/* KVM_SET_PIT2: restart channel 0 from its state. */
void soft_pit_set_state(struct soft_pit *p, const struct kvm_pit_state2 *s, uint64_t now_ns);

#endif
