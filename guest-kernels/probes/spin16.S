/* Probe: a guest that never exits; only the VMM's wall-time limit stops it. */
    .code16
    .section .text.start
    .globl _start
_start:
    jmp _start
