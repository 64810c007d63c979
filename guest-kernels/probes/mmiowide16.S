/*
 * Probe: 8-byte MMIO accesses in long mode that are not 8-byte aligned, as KVM makes them (x86.c,
 * emulator_read_write): one access of 8 at a 4-aligned address; split 4 + 4 where a page ends; never widened.
 */
#include "probes/modes16.h"

#define MMIO_GPA 0x3fe00000      /* identity-mapped, above the 2 MiB of RAM */

    .code16
    .section .text.start
    .globl _start
_start:
    ENTER_PROTECTED pm
pm:
    ENTER_LONG lm
lm:
    mov $MMIO_GPA, %rbx
    mov $0x1122334455667788, %rax
    mov %rax, 4(%rbx)         /* one 8-byte write at +4 */
    mov 4(%rbx), %rcx         /* one 8-byte read at +4 */
    out %eax, $PROBE_PORT
    mov %rax, 0xffc(%rbx)     /* 4 + 4 across a page */
    mov 0xffc(%rbx), %rcx
    mov %rcx, %rax
    out %eax, $PROBE_PORT
    mov %rax, 0x1ffd(%rbx)    /* 3 + 5 */
    mov 0x1ffd(%rbx), %rcx
    mov %rcx, %rax
    shr $32, %rax
    out %eax, $PROBE_PORT
    hlt

    PROBE_GDT
