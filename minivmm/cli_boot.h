/* `minivmm boot`: a Linux kernel on the PC devices it needs (cli_boot.c, the command; cli_boot_dev.c, the devices). */
#ifndef MINIVMM_CLI_BOOT_H
#define MINIVMM_CLI_BOOT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mvm.h"

/* The ISA interrupt lines of the boot's devices (IRQ4 is COM1's on every PC; 5 is free). */
#define BOOT_IRQ_COM1   4
#define BOOT_IRQ_VIRTIO 5

struct boot_uart;

/* What the boot's devices saw, for the summary and the verdict. */
struct boot_devs {
    struct mvm_vm *vm;
    struct boot_uart *uart;  /* COM1's state (boot_devices_stop ends its input thread) */
    bool irqchip;            /* KVM_IRQ_LINE is there: devices raise their lines */
    bool reset;              /* the guest reset the machine: the i8042's reset line (0xfe to port 0x64) or ACPI's */
    bool powered_off;        /* the guest entered ACPI S5 (the FADT's sleep control register) */
    uint64_t irq_raised[16]; /* rising edges per ISA line */
    uint64_t irq_errors;     /* KVM_IRQ_LINE calls that failed */
};

/*
 * The devices a PC kernel is booted with here: lab 4's 16550A UART on COM1
 * (IRQ4), its far end `console` and `input` (may be NULL); lab 5's
 * virtio-net on virtio-mmio at MVM_VIRTIO_MMIO_BASE (IRQ5), its frames into
 * `pcap` (may be NULL); the i8042's reset line (Linux's reboot without ACPI),
 * the ACPI sleep and reset ports (boot_linux.h) and a CMOS clock that reads
 * as a stopped, valid one. With d->irqchip the
 * UART and virtio raise their lines through KVM_IRQ_LINE. 0 or -errno.
 */
int boot_devices_add(struct boot_devs *d, FILE *console, FILE *input, FILE *pcap);

/* Stops the console input thread (if one runs) before the VM goes away. */
void boot_devices_stop(struct boot_devs *d);

/* `minivmm boot ...` (argv[0] is "boot"): the command's exit status. */
int cli_boot(int argc, char **argv);

#endif
