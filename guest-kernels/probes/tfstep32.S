/*
 * Probe: single-stepping (EFLAGS.TF) over instructions that exit or that KVM answers itself: OUT, IN,
 * VMMCALL, rep outsb, rep insb, MMIO writes and reads, and a NOP as the control. KVM completes the
 * instruction, then delivers #DB with the saved EIP after it, except where its emulator does otherwise
 * (rep insb: after each batch, EIP at the instruction; an MMIO write: no trap). The #DB handler reports
 * the saved EIP and ECX and clears TF. 32-bit protected mode.
 */
#include "probes/modes16.h"

.macro STEP
    pushf
    orl $0x100, (%esp)
    popf                      /* TF traps after the next instruction */
.endm

    .code16
    .section .text.start
    .globl _start
_start:
    ENTER_PROTECTED pm
pm:
    mov $handler_db, %eax
    lea idt + 1 * 8, %edi
    mov %ax, (%edi)
    movw $SEL_CODE32, 2(%edi)
    movw $0x8e00, 4(%edi)
    shr $16, %eax
    mov %ax, 6(%edi)
    lidt idt_ptr

    STEP
    nop
    mov $0x11, %al
    STEP
    out %al, $PROBE_PORT
    STEP
    in $PROBE_PORT, %al
    mov $12345, %eax          /* no such hypercall: -KVM_ENOSYS, no exit */
    STEP
    vmmcall
    out %eax, $PROBE_PORT
    mov $src, %esi
    mov $2, %ecx
    mov $PROBE_PORT, %dx
    STEP
    rep outsb                 /* KVM: one trap, after the last element */
    mov $buf, %edi
    mov $3, %ecx
    STEP
    rep insb                  /* one exit of 3, then one trap at the rep insb (RCX = 0: it runs as a no-op) */
    mov $0xfffe, %edi
    mov $4, %ecx
    STEP
    rep insb                  /* two bytes left in the page: a batch of 2, a trap at the insn, a batch of 2 */
    mov $0x3fe00000, %ebx
    mov $0x77, %al
    STEP
    mov %al, (%ebx)           /* an MMIO write: the exit and no trap; the next instruction (pushf) traps */
    STEP
    mov (%ebx), %al           /* an MMIO read: the exit, then the trap */
    mov $0x2a, %al
    out %al, $PROBE_PORT
    hlt

handler_db:
    push %eax
    mov $1, %al
    out %al, $PROBE_PORT
    mov 4(%esp), %eax         /* the saved EIP */
    out %eax, $PROBE_PORT
    mov %ecx, %eax
    out %eax, $PROBE_PORT     /* and ECX: elements left in a rep */
    andl $~0x100, 12(%esp)    /* TF off in the saved EFLAGS */
    pop %eax
    iret

    PROBE_GDT
    .section .rodata
idt_ptr:
    .word 0x20 * 8 - 1
    .long idt
src:
    .byte 0x61, 0x62
    .section .data
buf:
    .fill 4, 1, 0
    .section .bss
    .balign 8
idt:
    .skip 0x20 * 8
