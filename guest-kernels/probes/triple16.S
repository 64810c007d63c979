/*
 * Probe: a triple fault. Enters 32-bit protected mode, loads an empty IDT and
 * executes UD2: the #UD cannot be delivered (#GP), nor can the #GP (#DF),
 * nor the #DF: the CPU shuts down, which KVM reports as KVM_EXIT_SHUTDOWN.
 * (Real mode is no good for this: there the IDT limit is not checked.)
 */
    .code16
    .section .text.start
    .globl _start
_start:
    cli
    lgdtl gdt_ptr
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $pm32

    .code32
pm32:
    mov $0x10, %ax
    mov %ax, %ds
    lidt idt_empty
    ud2
    hlt

    .section .rodata
    .balign 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff   /* 0x08: flat 32-bit code */
    .quad 0x00cf92000000ffff   /* 0x10: flat data */
gdt_ptr:
    .word gdt_ptr - gdt - 1
    .long gdt
idt_empty:
    .word 0
    .long 0
