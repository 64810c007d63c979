/* Probe: IN of each width from a device port and from an unclaimed port; results shown by OUT. */
    .code16
    .section .text.start
    .globl _start
_start:
    mov $0x3ff, %dx
    mov $0xa5, %al
    out %al, %dx
    xor %eax, %eax
    in %dx, %al
    out %al, $0x80
    in %dx, %ax
    out %ax, $0x80
    in %dx, %eax
    out %eax, $0x80
    in $0x81, %al
    out %al, $0x80
    in $0x81, %ax
    out %ax, $0x80
    in $0x81, %eax
    out %eax, $0x80
    mov $0x3fd, %dx           /* UART line status */
    in %dx, %al
    out %al, $0x80
    hlt
