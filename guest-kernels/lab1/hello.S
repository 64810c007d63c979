/* Lab 1 guest: prints a greeting on the serial port, one OUT (one exit) per byte, then reports done. */
#include "ucall16.h"

    .code16
    .section .text.start
    .globl _start
_start:
    mov $MVM_PORT_SERIAL, %dx
    mov $message, %si
    cld
next:
    lodsb
    test %al, %al
    jz finished
    out %al, %dx
    jmp next
finished:
    GUEST_DONE

    .section .rodata
message:
    .asciz "Hello from real mode!\n"
