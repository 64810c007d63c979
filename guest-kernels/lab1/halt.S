/* Lab 1 guest: the smallest guest there is. One HLT, one exit. */
    .code16
    .section .text.start
    .globl _start
_start:
    hlt
