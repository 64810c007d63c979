/* Lab 1 guest: sums 1..100 and computes 7! in 16-bit registers, checks both through the test port. */
#include "ucall16.h"

    .code16
    .section .text.start
    .globl _start
_start:
    xor %ax, %ax
    mov $100, %cx
sum:
    add %cx, %ax
    loop sum
    GUEST_ASSERT_EQ16(%ax, 5050, "sum of 1..100")

    mov $1, %ax
    mov $7, %cx
fact:
    mul %cx              /* dx:ax = ax * cx */
    loop fact
    GUEST_ASSERT_EQ16(%ax, 5040, "7 factorial")

    mov $MVM_PORT_SERIAL, %dx
    mov $0x3d, %al        /* '=' */
    out %al, %dx
    mov $0x0a, %al        /* newline */
    out %al, %dx
    GUEST_DONE
