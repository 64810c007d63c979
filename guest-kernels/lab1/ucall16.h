/* Real-mode ucall macros for lab 1's asm guests: GUEST_DONE and GUEST_ASSERT_EQ through the test port. */
#ifndef GUEST_UCALL16_H
#define GUEST_UCALL16_H

#include "abi.h"

/* Sends the struct mvm_ucall at `label` to the test port: one 32-bit OUT of its address. */
.macro UCALL label
    mov $MVM_PORT_UCALL, %dx
    mov $\label, %eax
    out %eax, %dx
.endm

/* A struct mvm_ucall in .data: cmd, line, actual, expected, msg. */
.macro UCALL_STRUCT label, cmd, msg, line=0
    .pushsection .data
    .balign 8
\label:
    .long \cmd, \line
    .quad 0, 0
    .ascii "\msg"
    .fill MVM_UCALL_MSG_LEN - (. - \label - 24), 1, 0
    .popsection
.endm

/* Reports done and stops the CPU (HLT is reached only if the VMM resumes the guest). */
.macro GUEST_DONE
    UCALL_STRUCT ucall_done\@, MVM_UCALL_DONE, "done"
    UCALL ucall_done\@
    hlt
.endm

/* If the 16-bit register reg != expected: report actual, expected and the source line, then halt. */
#define GUEST_ASSERT_EQ16(reg, expected, msg) guest_assert_eq16 reg, expected, msg, __LINE__

.macro guest_assert_eq16 reg, expected, msg, line
    cmp $\expected, \reg
    je 9f
    UCALL_STRUCT ucall_assert\@, MVM_UCALL_ASSERT, "\msg", \line
    movzwl \reg, %eax
    mov %eax, ucall_assert\@ + 8
    movl $\expected, ucall_assert\@ + 16
    UCALL ucall_assert\@
    hlt
9:
.endm

#endif
