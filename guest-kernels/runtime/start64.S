/* Start code of 64-bit guests: entered in long mode (paging on, CS.L = 1) at the image's first byte. */
    .code64
    .section .text.start
    .globl _start
_start:
    mov $guest_stack_top, %rsp
    xor %ebp, %ebp
    call guest_main
    call guest_done_after_main
1:  hlt
    jmp 1b

    .section .bss
    .balign 16
    .space 16384
guest_stack_top:

    .section .note.GNU-stack, "", @progbits
