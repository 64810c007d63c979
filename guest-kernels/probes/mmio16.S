/* Probe: MMIO writes and reads of 1, 2, 4 and 8 bytes to a guest-physical address no slot covers (long mode). */
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
    movb $0x12, (%rbx)
    movw $0x3456, 2(%rbx)
    movl $0x789abcde, 4(%rbx)
    mov $0x1122334455667788, %rax
    mov %rax, 8(%rbx)
    xor %eax, %eax
    movb 1(%rbx), %al
    out %al, $PROBE_PORT
    movw 2(%rbx), %ax
    out %ax, $PROBE_PORT
    movl 4(%rbx), %eax
    out %eax, $PROBE_PORT
    mov 8(%rbx), %rax
    out %eax, $PROBE_PORT
    shr $32, %rax
    out %eax, $PROBE_PORT
    hlt

    PROBE_GDT
