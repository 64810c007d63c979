/*
 * Probe: paging where virtual != physical, in long mode. Maps virtual 0x3fe00000 and 0x3fe01000 with
 * 4 KiB pages to the same physical page 0x100000, leaves 0x3fe02000 unmapped, and handles the #PF
 * that touching it raises (CR2 and error code reported by OUT) by mapping it to 0x101000 and retrying.
 */
#include "probes/modes16.h"

#define VIRT 0x3fe00000
#define PHYS 0x100000

    .code16
    .section .text.start
    .globl _start
_start:
    ENTER_PROTECTED pm
pm:
    ENTER_LONG lm
lm:
    /* PD[511] -> a page table of 4 KiB pages. */
    movq $PROBE_PT | 3, PROBE_PD + 511 * 8
    movq $PHYS | 3, PROBE_PT
    movq $PHYS | 3, PROBE_PT + 8
    mov %cr3, %rax
    mov %rax, %cr3

    /* #PF gate: 64-bit interrupt gate to pf_handler. (32-bit moves: this object is ELF32, the code is low.) */
    mov $pf_handler, %eax
    mov $idt + 14 * 16, %edi
    mov %ax, (%rdi)
    movw $SEL_CODE64, 2(%rdi)
    movw $0x8e00, 4(%rdi)
    shr $16, %rax
    mov %ax, 6(%rdi)
    shr $16, %rax
    mov %eax, 8(%rdi)
    movl $0, 12(%rdi)
    mov $idt_ptr, %eax
    lidt (%rax)

    movl $0xdeadbeef, VIRT
    mov PHYS, %eax            /* the same bytes, through the identity map */
    out %eax, $PROBE_PORT
    mov VIRT + 0x1000, %eax   /* and through the alias */
    out %eax, $PROBE_PORT
    movl $0x600d, VIRT + 0x2008   /* not present: #PF, mapped by the handler, retried */
    mov PHYS + 0x1008, %eax
    out %eax, $PROBE_PORT
    hlt

pf_handler:
    push %rax
    mov %cr2, %rax
    out %eax, $PROBE_PORT
    mov 8(%rsp), %rax         /* error code */
    out %eax, $PROBE_PORT
    movq $(PHYS + 0x1000) | 3, PROBE_PT + 16
    invlpg VIRT + 0x2000
    pop %rax
    add $8, %rsp              /* drop the error code */
    iretq

    PROBE_GDT
    .section .rodata
idt_ptr:
    .word 16 * 16 - 1
    .long idt
    .section .bss
    .balign 16
idt:
    .skip 16 * 16
