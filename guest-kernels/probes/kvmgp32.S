/*
 * Probe: faults KVM injects itself (32-bit protected mode): #GP(0) for MOV to CR4 with a reserved bit
 * (kvm_set_cr4), #GP(0) for RDMSR/WRMSR of an MSR KVM does not know (no userspace MSR exits asked for),
 * and #GP((n << 3) | 2) for INT n beyond the IDT limit, saved EIP at the INT. The #GP handler reports
 * the error code and the saved EIP, then steps over the instruction (its length in `skip`).
 */
#include "probes/modes16.h"

#define UNKNOWN_MSR 0x1234

    .code16
    .section .text.start
    .globl _start
_start:
    ENTER_PROTECTED pm
pm:
    mov $handler_gp, %eax
    lea idt + 13 * 8, %edi
    mov %ax, (%edi)
    movw $SEL_CODE32, 2(%edi)
    movw $0x8e00, 4(%edi)     /* present, DPL 0, 32-bit interrupt gate */
    shr $16, %eax
    mov %ax, 6(%edi)
    lidt idt_ptr

    movl $3, skip
    mov %cr4, %eax
    or $0x8000, %eax          /* CR4 bit 15: reserved */
    mov %eax, %cr4            /* 0f 22 e0 */
    mov %cr4, %eax
    out %eax, $PROBE_PORT     /* unchanged */
    movl $2, skip
    mov $UNKNOWN_MSR, %ecx
    mov $0x5a5a5a5a, %eax
    mov $0xa5a5a5a5, %edx
    rdmsr
    out %eax, $PROBE_PORT     /* untouched by the faulting RDMSR */
    mov %edx, %eax
    out %eax, $PROBE_PORT
    wrmsr
    mov $0xc0000080, %ecx     /* EFER: known, no fault */
    rdmsr
    out %eax, $PROBE_PORT
    int $0x50                 /* beyond the IDT limit */
    mov $0x2a, %al
    out %al, $PROBE_PORT
    hlt

handler_gp:
    push %eax
    mov $13, %al
    out %al, $PROBE_PORT
    mov 4(%esp), %eax         /* the error code */
    out %eax, $PROBE_PORT
    mov 8(%esp), %eax         /* the saved EIP */
    out %eax, $PROBE_PORT
    mov skip, %eax
    add %eax, 8(%esp)
    pop %eax
    add $4, %esp
    iret

    PROBE_GDT
    .section .rodata
idt_ptr:
    .word 0x20 * 8 - 1
    .long idt
    .section .data
skip:
    .long 2
    .section .bss
    .balign 8
idt:
    .skip 0x20 * 8
