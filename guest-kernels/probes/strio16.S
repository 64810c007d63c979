/* Probe: string I/O of each width and direction (rep outs/ins b/w/d, DF=0 and DF=1), real mode. */
    .code16
    .section .text.start
    .globl _start
_start:
    cld
    mov $0x80, %dx
    mov $data, %si
    mov $3, %cx
    rep outsb                 /* KVM: one exit per element */
    mov $data, %si
    mov $2, %cx
    rep outsw
    mov $data, %si
    mov $2, %cx
    rep outsl
    std
    mov $data + 3, %si
    mov $2, %cx
    rep outsb                 /* backwards */
    cld
    mov $0x3ff, %dx           /* UART scratch: reads back what was written */
    mov $0x7e, %al
    out %al, %dx
    mov $buf, %di
    mov $5, %cx
    rep insb                  /* KVM: one exit of count 5 */
    mov $buf, %di
    mov $3, %cx
    rep insw
    mov $buf, %di
    mov $2, %cx
    rep insl
    std
    mov $buf + 8, %di
    mov $3, %cx
    rep insb                  /* backwards */
    cld
    /* Show what landed in memory: the exit dump carries it. */
    mov $0x80, %dx
    mov $buf, %si
    mov $4, %cx
    rep outsl
    hlt

    .section .rodata
data:
    .byte 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88
    .section .data
buf:
    .fill 16, 1, 0xcc
