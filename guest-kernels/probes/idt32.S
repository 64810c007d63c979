/*
 * Probe: exceptions delivered through the guest's own IDT in 32-bit protected mode: #DE, #UD, #GP with
 * its error code, and a software INT. Each handler reports its vector (and error code) by OUT, then
 * steps over the faulting instruction. No exit reaches the VMM for the faults themselves.
 */
#include "probes/modes16.h"

    .code16
    .section .text.start
    .globl _start
_start:
    ENTER_PROTECTED pm
pm:
    /* Fill gates for vectors 0, 6, 13, 0x40: 32-bit interrupt gates, DPL 0, selector 0x08. */
    mov $handler_de, %eax
    mov $0, %ebx
    call set_gate
    mov $handler_ud, %eax
    mov $6, %ebx
    call set_gate
    mov $handler_gp, %eax
    mov $13, %ebx
    call set_gate
    mov $handler_soft, %eax
    mov $0x40, %ebx
    call set_gate
    lidt idt_ptr

    xor %edx, %edx
    mov $7, %eax
    xor %ecx, %ecx
    div %ecx                  /* #DE: f7 f1, 2 bytes */
    ud2                       /* #UD: 2 bytes */
    mov $0x1234, %ax
    mov %ax, %ds              /* #GP(0x1234): selector beyond the GDT; 8e d8, 2 bytes */
    int $0x40
    mov $0x2a, %al
    out %al, $PROBE_PORT
    hlt

/* eax = handler, ebx = vector */
set_gate:
    lea idt(,%ebx,8), %edi
    mov %ax, (%edi)
    movw $SEL_CODE32, 2(%edi)
    movw $0x8e00, 4(%edi)     /* present, DPL 0, 32-bit interrupt gate */
    shr $16, %eax
    mov %ax, 6(%edi)
    ret

handler_de:
    push %eax
    mov $0, %al
    out %al, $PROBE_PORT
    pop %eax
    addl $2, (%esp)
    iret
handler_ud:
    push %eax
    mov $6, %al
    out %al, $PROBE_PORT
    pop %eax
    addl $2, (%esp)
    iret
handler_gp:
    push %eax
    mov $13, %al
    out %al, $PROBE_PORT
    mov 4(%esp), %eax         /* the error code, under the saved eax */
    out %eax, $PROBE_PORT
    pop %eax
    add $4, %esp              /* drop the error code */
    addl $2, (%esp)
    iret
handler_soft:
    push %eax
    mov $0x40, %al
    out %al, $PROBE_PORT
    pop %eax
    iret

    PROBE_GDT
    .section .rodata
idt_ptr:
    .word 0x41 * 8 - 1
    .long idt
    .section .bss
    .balign 8
idt:
    .skip 0x41 * 8
