/*
 * Lab 1 guest: IN as well as OUT, and string I/O. Polls the UART's line
 * status (IN), round-trips its scratch register, sends a line with one
 * rep outsb, reads four bytes with one rep insb, and checks what it read.
 * Real KVM exits once per byte of rep outsb but once for the whole rep insb
 * (it reads ahead into the run page): the exit dump shows both.
 */
#include "ucall16.h"

#define UART_LSR (MVM_PORT_SERIAL + 5)
#define UART_SCR (MVM_PORT_SERIAL + 7)

    .code16
    .section .text.start
    .globl _start
_start:
    cld
    /* Transmitter empty? The VMM supplies the byte this IN reads. */
    mov $UART_LSR, %dx
    in %dx, %al
    and $0x20, %ax
    GUEST_ASSERT_EQ16(%ax, 0x20, "UART LSR.THRE set")

    /* Scratch register: what goes out must come back in. */
    mov $UART_SCR, %dx
    mov $0x5a, %al
    out %al, %dx
    xor %ax, %ax
    in %dx, %al
    GUEST_ASSERT_EQ16(%ax, 0x5a, "UART scratch register read back")

    /* One rep outsb: KVM still exits once per byte. */
    mov $MVM_PORT_SERIAL, %dx
    mov $line, %si
    mov $line_end - line, %cx
    rep outsb

    /* rep insb from the scratch register: four bytes, one exit of count 4. */
    mov $UART_SCR, %dx
    mov $buffer, %di
    mov $4, %cx
    rep insb
    mov buffer, %ax
    GUEST_ASSERT_EQ16(%ax, 0x5a5a, "rep insb filled the buffer")
    mov buffer + 2, %ax
    GUEST_ASSERT_EQ16(%ax, 0x5a5a, "rep insb filled all four bytes")
    GUEST_DONE

    .section .rodata
line:
    .ascii "string I/O: rep outsb exits once per byte\n"
line_end:

    .section .bss
buffer:
    .skip 4
