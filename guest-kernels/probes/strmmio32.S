/*
 * Probe: rep ins into MMIO and across the end of RAM (32-bit protected mode, 2 MiB of RAM). With DF=0
 * KVM writes a batch as one access (emulator_write_emulated): the MMIO part leaves in pieces of at most
 * 8 bytes; with DF=1 each element is written alone. rep outs from MMIO reads one element per exit.
 */
#include "probes/modes16.h"

#define MMIO_GPA 0x3fe00000
#define RAM_END 0x200000

    .code16
    .section .text.start
    .globl _start
_start:
    ENTER_PROTECTED pm
pm:
    cld
    mov $PROBE_PORT, %dx
    mov $MMIO_GPA, %edi
    mov $20, %ecx
    rep insb                  /* one exit of 20, then MMIO writes of 8, 8, 4 */
    mov $MMIO_GPA + 0x100, %edi
    mov $3, %ecx
    std
    rep insw                  /* one exit of 3, then three 2-byte MMIO writes going down */
    cld
    mov $RAM_END - 1, %edi
    mov $4, %ecx
    rep insw                  /* 1 byte left in the page: 1 word (1 byte to RAM, 1 to MMIO), then 3 */
    mov $RAM_END - 4, %edi
    mov $3, %ecx
    rep insl                  /* 1 dword to RAM, then 2 to MMIO: one 8-byte write */
    mov $MMIO_GPA + 0x200, %esi
    mov $2, %ecx
    rep outsw                 /* MMIO read, OUT, MMIO read, OUT */
    mov (RAM_END - 4), %eax
    out %eax, $PROBE_PORT     /* what the batches left in RAM */
    hlt

    PROBE_GDT
