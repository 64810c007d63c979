/*
 * Mode switches for the probe guests, which start in real mode at 0x1000 (as lab 1 sets up) and
 * climb on their own: ENTER_PROTECTED to flat 32-bit, ENTER_LONG to 64-bit with identity-mapped 2 MiB
 * pages over the first 1 GiB. Fixed addresses below the 2 MiB of RAM the probes get.
 */
#ifndef PROBES_MODES16_H
#define PROBES_MODES16_H

#define PROBE_PML4 0x10000
#define PROBE_PDPT 0x11000
#define PROBE_PD 0x12000
#define PROBE_PT 0x13000
#define PROBE_STACK 0xf000
#define PROBE_PORT 0x80 /* nobody claims it: OUTs land in the exit dump, INs read all ones */

#define SEL_CODE32 0x08
#define SEL_DATA 0x10
#define SEL_CODE64 0x18

/* The GDT every probe uses; emit once with PROBE_GDT. */
.macro PROBE_GDT
    .pushsection .rodata
    .balign 8
probe_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff   /* 0x08: flat 32-bit code, DPL 0 */
    .quad 0x00cf92000000ffff   /* 0x10: flat data */
    .quad 0x00af9a000000ffff   /* 0x18: 64-bit code (L=1) */
probe_gdt_ptr:
    .word probe_gdt_ptr - probe_gdt - 1
    .long probe_gdt
    .popsection
.endm

/* From real mode to flat 32-bit protected mode; continues at label \next in .code32. */
.macro ENTER_PROTECTED next
    cli
    lgdtl probe_gdt_ptr
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $SEL_CODE32, $1f
    .code32
1:
    mov $SEL_DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $PROBE_STACK, %esp
    jmp \next
.endm

/* From 32-bit protected mode to 64-bit long mode; continues at label \next in .code64. */
.macro ENTER_LONG next
    /* PML4[0] -> PDPT, PDPT[0] -> PD, PD[0..511] = 2 MiB pages 0..1 GiB. */
    movl $PROBE_PDPT | 3, PROBE_PML4
    movl $PROBE_PD | 3, PROBE_PDPT
    xor %ecx, %ecx
1:
    mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax            /* present, writable, 2 MiB page */
    mov %eax, PROBE_PD(,%ecx,8)
    movl $0, PROBE_PD + 4(,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jne 1b
    mov $PROBE_PML4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax            /* CR4.PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx     /* IA32_EFER */
    rdmsr
    or $0x100, %eax           /* EFER.LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax      /* CR0.PG: LMA follows */
    mov %eax, %cr0
    ljmp $SEL_CODE64, $2f
    .code64
2:
    mov $PROBE_STACK, %rsp
    jmp \next
.endm

#endif
