/* Probe: a guest whose check fails, so the VMM must report GUEST_ASSERT with actual and expected. */
#include "lab1/ucall16.h"

    .code16
    .section .text.start
    .globl _start
_start:
    mov $2, %ax
    add $2, %ax
    GUEST_ASSERT_EQ16(%ax, 5, "two plus two is five")
    GUEST_DONE
