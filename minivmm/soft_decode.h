/* The soft backend's x86 instruction decoder: lengths, I/O instructions, segments of data accesses. Pure logic. */
#ifndef MINIVMM_SOFT_DECODE_H
#define MINIVMM_SOFT_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "soft_seg.h"

/* What soft_insn_len says about I/O. */
enum soft_io_kind { SOFT_IO_NONE, SOFT_IO_PORT, SOFT_IO_STRING };

/*
 * Length of the x86 instruction at b (n bytes available), 0 if unknown or
 * over 15 bytes. code: 2, 4 or 8 (16-, 32- or 64-bit code). *is_io: the
 * instruction is IN/OUT (SOFT_IO_PORT) or INS/OUTS (SOFT_IO_STRING).
 */
unsigned soft_insn_len(const uint8_t *b, size_t n, unsigned code, int *is_io);

/* The memory operand of an instruction: seg:(base + index * scale + disp), masked to asize bytes. */
#define SOFT_MEMOP_RIP 16 /* base: RIP-relative (from the next instruction) */
struct soft_memop {
    int base, index; /* general registers 0-15 in encoding order (RAX, RCX, RDX, RBX, RSP, ...), or -1 */
    unsigned scale, asize, len;
    unsigned size; /* bytes accessed, for common integer instructions; 0 when not known */
    int64_t disp;
    int seg; /* R_ES... */
};

/*
 * The ModRM or moffs memory operand of the instruction at b (n bytes; code 2, 4 or 8); false when it has
 * none or cannot be decoded. m->len is the instruction's length.
 */
bool soft_decode_memop(const uint8_t *b, size_t n, unsigned code, struct soft_memop *m);

/*
 * True when the instruction at b (n bytes; code 2, 4 or 8) may make an interrupt deliverable through the in-kernel
 * irqchip: it does port I/O (the PIC), WRMSR or MOV to a control register (CR8), or, with mem, writes memory (the
 * APIC and IOAPIC pages). Memory reads of the common integer forms are not; an unknown form is.
 * *ends_block (when not NULL): the instruction ends the engine's block anyway (a jump, HLT, STI, POPF...).
 * Unicorn workaround: nor is CMPXCHG8B/16B. Unicorn 2.1.1 (QEMU 5) computes their flags in a helper from the
 * flags state the translator has not stored yet, so until the next flag-setting instruction the engine's RFLAGS
 * holds junk (a Linux boot read TF and IF from it): an interrupt frame pushed right after one would carry it.
 */
bool soft_insn_may_unmask(const uint8_t *b, size_t n, unsigned code, bool mem, bool *ends_block);

/* A port I/O instruction as KVM's exit needs it. */
struct soft_pio_insn {
    bool string, rep;
    unsigned addr_size; /* 2, 4 or 8 */
};

/*
 * Scan the prefixes of the instruction at b (n bytes; REX only when a64):
 * REP/REPNE set d->rep, 0x67 sets *asz. True when the opcode is IN/OUT or
 * INS/OUTS; then d->string says which.
 */
bool soft_decode_io_insn(const uint8_t *b, size_t n, bool a64, struct soft_pio_insn *d, bool *asz);
/*
 * The last k bytes t of a block that ends in INS (0x6c/0x6d): set d->string
 * and read its prefixes backwards into d->rep and *asz. Unchanged otherwise.
 */
void soft_decode_io_tail(const uint8_t *t, unsigned k, bool a64, struct soft_pio_insn *d, bool *asz);
/* Address size (2, 4 or 8) of code with CS.D (a32) or CS.L (a64) and a 0x67 prefix (asz). */
unsigned soft_io_addr_size(bool a32, bool a64, bool asz);

/*
 * The segment register (R_ES...) through which the instruction at b makes a
 * data access (write or not) at linear address lin, in 16- or 32-bit code
 * (code 2 or 4); -1 when the access is not the instruction's own operand
 * (descriptor reads of a segment load). For CMPS, segs (ES..GS) and rsi tell
 * the source from the destination.
 */
int soft_decode_access_seg(const uint8_t *b, size_t n, unsigned code, bool write, uint64_t lin, uint64_t rsi,
                           const struct soft_seg segs[6]);

/* True for instructions that can change a data segment or whether limits apply (segment loads, mov crN, ...). */
bool soft_insn_changes_segs(const uint8_t *b, size_t n);

/*
 * How many elements of size bytes one rep-ins exit carries, as KVM's emulator reads ahead (emulate.c,
 * pio_in_emulated): min(bytes left in RDI's page, 1024 / size, count), at least 1. The bytes left are
 * counted from RDI alone (no ES base), and with df they are RDI's offset in its page; the minimum compares
 * bytes with elements, as KVM does.
 */
uint32_t soft_ins_batch(uint64_t rdi, bool df, unsigned size, uint64_t count);

/* The low size bytes (1, 2, 4 or 8) set. */
static inline uint64_t soft_mask(unsigned size)
{
    return size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

#endif
