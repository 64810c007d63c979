/* The gdb stub's x86 registers: gdb's layouts (32-bit and x86-64), the target description, one register's value. */
#ifndef MINIVMM_GDBSTUB_X86_H
#define MINIVMM_GDBSTUB_X86_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Two layouts: x86-64 (layout64) and the 32-bit one gdb's i386 and i8086
 * architectures share. Registers are numbered as gdb numbers them (the order
 * of the target description, and of the 'g' packet).
 */
size_t gdb_x86_nregs(bool layout64);
/* Register n's size in bytes (at most 16). */
unsigned gdb_x86_reg_size(bool layout64, size_t n);
/* Register n's value from regs/sregs, little-endian, into out (zeros for the x87 and SSE state, not kept). */
void gdb_x86_reg_get(bool layout64, size_t n, struct kvm_regs *regs, struct kvm_sregs *sregs, uint8_t *out);
/*
 * Sets register n in regs/sregs from `in` (little-endian): a 32-bit register
 * keeps the upper half of its 64-bit one; a real-mode selector sets its base
 * too; writes to the x87 and SSE state are dropped.
 */
void gdb_x86_reg_set(bool layout64, size_t n, struct kvm_regs *regs, struct kvm_sregs *sregs, const uint8_t *in);
/* The code size of the vCPU's mode: 64 (long mode, CS.L), 32 (protected, CS.D) or 16 (real, or CS.D = 0). */
int gdb_x86_code_bits(const struct kvm_sregs *sregs);
/*
 * target.xml for a layout, with the architecture of `bits`-bit code (i8086,
 * i386, i386:x86-64) and no OS ABI. Returns its length, as snprintf.
 */
size_t gdb_x86_target_xml(bool layout64, int bits, char *buf, size_t len);

#endif
