/*
 * Probe: the shapes of MMIO accesses KVM makes (x86.c, emulator_read_write): an access that straddles a
 * page is split at the page boundary, the RAM part done in place; the MMIO part leaves in pieces of at
 * most 8 bytes; a read is never widened. 32-bit protected mode, 2 MiB of RAM, SSE on.
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
    mov %cr4, %eax
    or $0x600, %eax           /* CR4.OSFXSR | OSXMMEXCPT: SSE */
    mov %eax, %cr4
    mov %cr0, %eax
    and $~0xc, %eax           /* CR0.EM and TS clear */
    or $0x2, %eax             /* CR0.MP */
    mov %eax, %cr0
    movl $0x11223344, (RAM_END - 2)         /* 2 bytes to RAM, a 2-byte MMIO write */
    mov (RAM_END - 2), %eax                  /* a 2-byte MMIO read */
    out %eax, $PROBE_PORT
    movl $0x55667788, (MMIO_GPA + 0xffe)    /* 2-byte writes at 0xffe and 0x1000 */
    mov (MMIO_GPA + 0xffe), %eax             /* 2-byte reads, not widened */
    out %eax, $PROBE_PORT
    movw $0x99aa, (MMIO_GPA + 0x1fff)       /* 1 + 1 */
    movzwl (MMIO_GPA + 0x1fff), %eax
    out %eax, $PROBE_PORT
    movl $0xbbccddee, (MMIO_GPA + 0x41)     /* unaligned inside a page: one 4-byte access */
    mov (MMIO_GPA + 0x41), %eax
    out %eax, $PROBE_PORT
    movdqu pattern, %xmm0
    movdqu %xmm0, (MMIO_GPA + 0x10)         /* 16 bytes: 8 + 8 */
    movdqu (MMIO_GPA + 0x20), %xmm1          /* 8 + 8 */
    movd %xmm1, %eax
    out %eax, $PROBE_PORT
    movw $0x1234, (MMIO_GPA + 0x60)         /* aligned: one access each, as always */
    movzwl (MMIO_GPA + 0x60), %eax
    mov (MMIO_GPA + 0x64), %ebx
    add %ebx, %eax
    out %eax, $PROBE_PORT
    mov $MMIO_GPA + 0x3000, %esi
    mov -2(%esi), %eax                       /* through a register, across a page: 2 + 2 */
    out %eax, $PROBE_PORT
    hlt

    PROBE_GDT
    .section .rodata
    .balign 16
pattern:
    .quad 0x0807060504030201, 0x100f0e0d0c0b0a09
