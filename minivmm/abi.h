/* Guest <-> host ABI of minivmm labs: ports, ucall and hypercall numbers. Shared by VMM and guests. */
#ifndef MINIVMM_ABI_H
#define MINIVMM_ABI_H

/* Bump on any change to a port, a number or a struct layout below. */
#define MVM_ABI_VERSION 1

/* Serial console: a 16550 subset at COM1. */
#define MVM_PORT_SERIAL 0x3f8
/* Debug byte port (Bochs/QEMU convention): each OUT byte is console output. */
#define MVM_PORT_DEBUG 0xe9
/*
 * Test port (ucall). A 32-bit OUT of the address of a struct mvm_ucall; the
 * VMM reads the struct through its checked translator. Paging off (CR0.PG
 * clear: real mode, lab 2): a guest-physical address (protected-mode guests
 * pass it with a flat, base-0 DS). Paging on (lab 3): a guest-virtual
 * address, sign-extended to 64 bits in long mode so a higher-half
 * (0xffffffff80000000 + x) address fits, which the VMM translates through
 * the guest's page tables (lab3_gva_to_gpa) page by page.
 */
#define MVM_PORT_UCALL 0x500
/* Hypercall port: a 32-bit OUT of the hypercall number, arguments in registers. */
#define MVM_PORT_HYPERCALL 0x510

#define MVM_UCALL_DONE 1   /* the guest finished; all its checks passed */
#define MVM_UCALL_ASSERT 2 /* a GUEST_ASSERT failed: line, actual, expected, msg */
#define MVM_UCALL_SYNC 3   /* a sync point: args[0] is a stage number */
#define MVM_UCALL_PRINT 4  /* msg is a line of text for the host log */

#define MVM_UCALL_MSG_LEN 64

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Layout is fixed: 16-bit asm guests fill it with .long/.quad/.ascii directives. */
struct mvm_ucall {
    uint32_t cmd;
    uint32_t line;
    uint64_t actual;
    uint64_t expected;
    char msg[MVM_UCALL_MSG_LEN];
};
_Static_assert(sizeof(struct mvm_ucall) == 24 + MVM_UCALL_MSG_LEN, "ucall layout");
#endif

#endif
