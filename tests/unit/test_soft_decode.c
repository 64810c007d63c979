/* Unit tests of the soft backend's instruction decoder (soft_decode.h): lengths, I/O instructions, access segments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "soft_decode.h"

#define LEN(code, ...)                                                                                                 \
    ({                                                                                                                 \
        static const uint8_t b_[] = {__VA_ARGS__};                                                                     \
        int io_;                                                                                                       \
        soft_insn_len(b_, sizeof b_, code, &io_);                                                                      \
    })

static void len_plain_and_immediates(void **state)
{
    (void)state;
    assert_int_equal(LEN(4, 0x90), 1);                                /* nop */
    assert_int_equal(LEN(4, 0xb8, 1, 2, 3, 4), 5);                    /* mov eax, imm32 */
    assert_int_equal(LEN(2, 0xb8, 1, 2), 3);                          /* mov ax, imm16 */
    assert_int_equal(LEN(2, 0x66, 0xb8, 1, 2, 3, 4), 6);              /* 16-bit code, o32 */
    assert_int_equal(LEN(4, 0x66, 0xb8, 1, 2), 4);                    /* 32-bit code, o16 */
    assert_int_equal(LEN(8, 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8), 10); /* REX.W mov rax, imm64 */
    assert_int_equal(LEN(8, 0xe8, 1, 2, 3, 4), 5);                    /* call rel32 */
    assert_int_equal(LEN(4, 0xea, 1, 2, 3, 4, 5, 6), 7);              /* jmp ptr16:32 */
    assert_int_equal(LEN(2, 0xea, 1, 2, 3, 4), 5);                    /* jmp ptr16:16 */
    assert_int_equal(LEN(4, 0xc8, 1, 2, 3), 4);                       /* enter imm16, imm8 */
    assert_int_equal(LEN(4, 0xa1, 1, 2, 3, 4), 5);                    /* mov eax, moffs32 */
    assert_int_equal(LEN(8, 0xa1, 1, 2, 3, 4, 5, 6, 7, 8), 9);        /* moffs64 */
    assert_int_equal(LEN(4, 0x0f, 0xa2), 2);                          /* cpuid */
    assert_int_equal(LEN(4, 0x0f, 0x84, 1, 2, 3, 4), 6);              /* jz rel32 */
    assert_int_equal(LEN(2, 0x0f, 0x84, 1, 2), 4);                    /* jz rel16 */
    assert_int_equal(LEN(4, 0x0f, 0x20, 0xc0), 3);                    /* mov eax, cr0 */
    assert_int_equal(LEN(4, 0x0f, 0xba, 0xe0, 5), 4);                 /* bt eax, 5 */
    assert_int_equal(LEN(4, 0x0f, 0x3a, 0x0f, 0xc1, 8), 5);           /* palignr: 0f 3a, imm8 */
    assert_int_equal(LEN(8, 0xc5, 0xf9, 0x6f, 0xc1), 4);              /* VEX2 vmovdqa */
    assert_int_equal(LEN(8, 0xc4, 0xe3, 0x79, 0x0f, 0xc1, 8), 6);     /* VEX3 map 3: imm8 */
    assert_int_equal(LEN(4, 0xf6, 0xc0, 1), 3);                       /* test al, imm8 */
    assert_int_equal(LEN(4, 0xf7, 0xc0, 1, 2, 3, 4), 6);              /* test eax, imm32 */
    assert_int_equal(LEN(4, 0xf7, 0xd0), 2);                          /* not eax: no immediate */
    assert_int_equal(LEN(4, 0x26, 0x66, 0x67, 0x89, 0x07), 5);        /* es o16 a16 mov [bx], ax */
    assert_int_equal(LEN(4, 0xf0, 0x0f, 0xb1, 0x0b), 4);              /* lock cmpxchg [ebx], ecx */
}

static void len_modrm_sib_and_address_sizes(void **state)
{
    (void)state;
    /* 32-bit addressing */
    assert_int_equal(LEN(4, 0x8b, 0x03), 2);                   /* mov eax, [ebx] */
    assert_int_equal(LEN(4, 0x8b, 0x43, 8), 3);                /* [ebx+disp8] */
    assert_int_equal(LEN(4, 0x8b, 0x83, 1, 2, 3, 4), 6);       /* [ebx+disp32] */
    assert_int_equal(LEN(4, 0x8b, 0x05, 1, 2, 3, 4), 6);       /* [disp32] */
    assert_int_equal(LEN(4, 0x8b, 0x04, 0x24), 3);             /* [esp]: SIB */
    assert_int_equal(LEN(4, 0x8b, 0x44, 0x24, 8), 4);          /* [esp+disp8] */
    assert_int_equal(LEN(4, 0x8b, 0x04, 0x25, 0, 0, 1, 0), 7); /* SIB, no base: disp32 */
    assert_int_equal(LEN(4, 0x8b, 0x84, 0x8b, 1, 2, 3, 4), 7); /* [ebx+ecx*4+disp32] */
    assert_int_equal(LEN(4, 0xc7, 0x45, 0xf8, 1, 2, 3, 4), 7); /* mov dword [ebp-8], imm32 */
    assert_int_equal(LEN(4, 0x66, 0xc7, 0x45, 0xf8, 1, 2), 6); /* mov word [ebp-8], imm16 */
    assert_int_equal(LEN(4, 0x89, 0xc0), 2);                   /* register operand */
    /* 64-bit: RIP-relative is mod 0 rm 5 with disp32, REX before the opcode */
    assert_int_equal(LEN(8, 0x48, 0x8b, 0x05, 1, 2, 3, 4), 7);       /* mov rax, [rip+disp32] */
    assert_int_equal(LEN(8, 0x48, 0x8b, 0x04, 0x25, 0, 0, 1, 0), 8); /* mov rax, [0x10000] */
    assert_int_equal(LEN(8, 0x67, 0x8b, 0x03), 3);                   /* a32 mov eax, [ebx] */
    /* 16-bit addressing: no SIB, disp16 */
    assert_int_equal(LEN(2, 0x8b, 0x46, 2), 3);                /* mov ax, [bp+2] */
    assert_int_equal(LEN(2, 0x8b, 0x06, 0x34, 0x12), 4);       /* mov ax, [0x1234] */
    assert_int_equal(LEN(2, 0x8b, 0x87, 0x34, 0x12), 4);       /* mov ax, [bx+disp16] */
    assert_int_equal(LEN(2, 0x8b, 0x04), 2);                   /* mov ax, [si] (rm 4 is no SIB here) */
    assert_int_equal(LEN(2, 0x67, 0x8b, 0x04, 0x24), 4);       /* a32 in 16-bit code: SIB */
    assert_int_equal(LEN(4, 0x67, 0x8b, 0x06, 0x34, 0x12), 5); /* a16 in 32-bit code: disp16 */
}

static void len_io_and_failures(void **state)
{
    static const uint8_t in_imm[] = {0xe4, 0x60}, in_dx[] = {0xec}, rep_insb[] = {0xf3, 0x6c}, out_ax[] = {0x66, 0xef},
                         mov[] = {0x89, 0xc0}, no_modrm[] = {0x8b};
    uint8_t prefixes[15];
    int io;
    (void)state;
    assert_int_equal(soft_insn_len(in_imm, sizeof in_imm, 2, &io), 2);
    assert_int_equal(io, SOFT_IO_PORT);
    assert_int_equal(soft_insn_len(in_dx, sizeof in_dx, 4, &io), 1);
    assert_int_equal(io, SOFT_IO_PORT);
    assert_int_equal(soft_insn_len(rep_insb, sizeof rep_insb, 4, &io), 2);
    assert_int_equal(io, SOFT_IO_STRING);
    assert_int_equal(soft_insn_len(out_ax, sizeof out_ax, 2, &io), 2);
    assert_int_equal(io, SOFT_IO_PORT);
    assert_int_equal(soft_insn_len(mov, sizeof mov, 4, &io), 2);
    assert_int_equal(io, SOFT_IO_NONE);
    assert_int_equal(soft_insn_len(no_modrm, sizeof no_modrm, 4, &io), 0); /* the ModRM byte is missing */
    assert_int_equal(soft_insn_len(no_modrm, 0, 4, &io), 0);
    for (int i = 0; i < 14; i++)
        prefixes[i] = 0x66;
    prefixes[14] = 0x05; /* 14 prefixes, add eax, imm: over 15 bytes */
    assert_int_equal(soft_insn_len(prefixes, sizeof prefixes, 4, &io), 0);
}

static void io_insn_prefixes(void **state)
{
    static const uint8_t rep_insb[] = {0xf3, 0x6c}, a32_rep_insd[] = {0x67, 0xf3, 0x6d}, in_dx[] = {0xec},
                         rex_in[] = {0x48, 0xed}, seg_outsw[] = {0x66, 0x2e, 0x6f}, nop[] = {0x90};
    struct soft_pio_insn d;
    bool asz;
    (void)state;
    d = (struct soft_pio_insn){0}, asz = false;
    assert_true(soft_decode_io_insn(rep_insb, sizeof rep_insb, false, &d, &asz));
    assert_true(d.string && d.rep && !asz);
    d = (struct soft_pio_insn){0}, asz = false;
    assert_true(soft_decode_io_insn(a32_rep_insd, sizeof a32_rep_insd, false, &d, &asz));
    assert_true(d.string && d.rep && asz);
    d = (struct soft_pio_insn){0}, asz = false;
    assert_true(soft_decode_io_insn(in_dx, sizeof in_dx, false, &d, &asz));
    assert_true(!d.string && !d.rep);
    d = (struct soft_pio_insn){0}, asz = false;
    assert_true(soft_decode_io_insn(rex_in, sizeof rex_in, true, &d, &asz));   /* REX is a prefix in 64-bit code */
    assert_false(soft_decode_io_insn(rex_in, sizeof rex_in, false, &d, &asz)); /* and dec eax elsewhere */
    d = (struct soft_pio_insn){0}, asz = false;
    assert_true(soft_decode_io_insn(seg_outsw, sizeof seg_outsw, false, &d, &asz));
    assert_true(d.string && !d.rep);
    assert_false(soft_decode_io_insn(nop, sizeof nop, false, &d, &asz));
    assert_false(soft_decode_io_insn(nop, 0, false, &d, &asz));
}

static void io_tail_read_backwards(void **state)
{
    static const uint8_t rep_a32_insb[] = {0xb0, 0x01, 0xf3, 0x67, 0x6c}, insd[] = {0xb0, 0x01, 0x6d},
                         outsb[] = {0xf3, 0x6e}, rex_insb[] = {0x90, 0xf3, 0x48, 0x6c};
    struct soft_pio_insn d;
    bool asz;
    (void)state;
    d = (struct soft_pio_insn){0}, asz = false;
    soft_decode_io_tail(rep_a32_insb, sizeof rep_a32_insb, false, &d, &asz);
    assert_true(d.string && d.rep && asz);
    d = (struct soft_pio_insn){0}, asz = false;
    soft_decode_io_tail(insd, sizeof insd, false, &d, &asz); /* mov al, 1 before it: no prefixes */
    assert_true(d.string && !d.rep && !asz);
    d = (struct soft_pio_insn){0}, asz = false;
    soft_decode_io_tail(outsb, sizeof outsb, false, &d, &asz); /* only INS ends a block this way */
    assert_false(d.string || d.rep);
    d = (struct soft_pio_insn){0}, asz = false;
    soft_decode_io_tail(rex_insb, sizeof rex_insb, true, &d, &asz);
    assert_true(d.string && d.rep);
}

static void io_address_sizes(void **state)
{
    (void)state;
    assert_int_equal(soft_io_addr_size(false, false, false), 2);
    assert_int_equal(soft_io_addr_size(false, false, true), 4);
    assert_int_equal(soft_io_addr_size(true, false, false), 4);
    assert_int_equal(soft_io_addr_size(true, false, true), 2);
    assert_int_equal(soft_io_addr_size(true, true, false), 8);
    assert_int_equal(soft_io_addr_size(true, true, true), 4);
    assert_int_equal(soft_mask(1), 0xff);
    assert_int_equal(soft_mask(4), 0xffffffffu);
    assert_true(soft_mask(8) == ~0ull);
}

#define SEG(code, write, ...)                                                                                          \
    ({                                                                                                                 \
        static const uint8_t b_[] = {__VA_ARGS__};                                                                     \
        soft_decode_access_seg(b_, sizeof b_, code, write, lin, rsi, segs);                                            \
    })

static void access_segments(void **state)
{
    struct soft_seg segs[6] = {[R_DS] = {.base = 0x10000}, [R_ES] = {.base = 0x20000}, [R_FS] = {.base = 0x30000}};
    uint64_t lin = 0x10000 + 0x40, rsi = 0x40;
    (void)state;
    assert_int_equal(SEG(4, true, 0x50), R_SS);             /* push eax */
    assert_int_equal(SEG(4, false, 0x58), R_SS);            /* pop eax */
    assert_int_equal(SEG(4, true, 0xe8, 0, 0, 0, 0), R_SS); /* call: the return address */
    assert_int_equal(SEG(4, true, 0x0f, 0xa0), R_SS);       /* push fs */
    assert_int_equal(SEG(4, true, 0xa4), R_ES);             /* movsb writes ES:EDI */
    assert_int_equal(SEG(4, false, 0xa4), R_DS);            /* and reads DS:ESI */
    assert_int_equal(SEG(4, false, 0x2e, 0xa4), R_CS);      /* an override moves the source only */
    assert_int_equal(SEG(4, true, 0x2e, 0xa4), R_ES);
    assert_int_equal(SEG(4, false, 0xae), R_ES); /* scasb */
    assert_int_equal(SEG(4, false, 0xac), R_DS); /* lodsb */
    assert_int_equal(SEG(4, false, 0xa6), R_DS); /* cmpsb: lin is DS.base + ESI */
    lin = 0x20000 + 0x80;
    assert_int_equal(SEG(4, false, 0xa6), R_ES);                        /* cmpsb: the ES:EDI operand */
    assert_int_equal(SEG(4, false, 0x64, 0xa6), R_ES);                  /* FS.base + ESI is not lin either */
    assert_int_equal(SEG(4, true, 0x89, 0x03), R_DS);                   /* mov [ebx], eax */
    assert_int_equal(SEG(4, true, 0x89, 0x45, 0), R_SS);                /* [ebp+0] */
    assert_int_equal(SEG(4, true, 0x89, 0x05, 0, 0, 0, 0), R_DS);       /* [disp32]: no EBP base */
    assert_int_equal(SEG(4, true, 0x89, 0x04, 0x24), R_SS);             /* [esp] */
    assert_int_equal(SEG(4, true, 0x89, 0x04, 0x25, 0, 0, 0, 0), R_DS); /* SIB, no base */
    assert_int_equal(SEG(4, true, 0x89, 0x44, 0x25, 0), R_SS);          /* SIB base EBP with disp8 */
    assert_int_equal(SEG(4, true, 0x64, 0x89, 0x03), R_FS);             /* fs: override */
    assert_int_equal(SEG(4, true, 0x26, 0x89, 0x45, 0), R_ES);          /* an override beats the EBP default */
    assert_int_equal(SEG(2, true, 0x89, 0x02), R_SS);                   /* 16-bit [bp+si] */
    assert_int_equal(SEG(2, true, 0x89, 0x46, 0), R_SS);                /* [bp+disp8] */
    assert_int_equal(SEG(2, true, 0x89, 0x06, 0x34, 0x12), R_DS);       /* [disp16] */
    assert_int_equal(SEG(2, true, 0x89, 0x07), R_DS);                   /* [bx] */
    assert_int_equal(SEG(2, true, 0x67, 0x89, 0x45, 0), R_SS);          /* a32 in 16-bit code: [ebp+0] */
    assert_int_equal(SEG(4, true, 0xff, 0x30), R_SS);                   /* push dword [eax]: the push */
    assert_int_equal(SEG(4, false, 0xff, 0x30), R_DS);                  /* and the read */
    assert_int_equal(SEG(4, false, 0x8f, 0x00), R_SS);                  /* pop dword [eax]: the pop */
    assert_int_equal(SEG(4, true, 0x8f, 0x00), R_DS);                   /* and the write */
    assert_int_equal(SEG(4, false, 0x8e, 0xd8), -1);                    /* mov ds, ax: a descriptor read */
    assert_int_equal(SEG(4, false, 0x89, 0xc0), -1);                    /* no memory operand */
    assert_int_equal(SEG(4, false, 0x66), -1);                          /* nothing after the prefix */
}

static void segment_changing_instructions(void **state)
{
    static const uint8_t mov_ds[] = {0x8e, 0xd8}, pop_ds[] = {0x1f}, retf[] = {0x66, 0xcb}, iret[] = {0xcf},
                         lss[] = {0x0f, 0xb2, 0x20}, mov_cr0[] = {0x0f, 0x22, 0xc0}, lmsw[] = {0x0f, 0x01, 0xf0},
                         smsw[] = {0x0f, 0x01, 0xe0}, mov[] = {0x89, 0xc0}, lds[] = {0xc5, 0x06, 0, 0},
                         sysenter[] = {0x0f, 0x34}, lone_0f[] = {0x0f};
    (void)state;
    assert_true(soft_insn_changes_segs(mov_ds, sizeof mov_ds));
    assert_true(soft_insn_changes_segs(pop_ds, sizeof pop_ds));
    assert_true(soft_insn_changes_segs(retf, sizeof retf));
    assert_true(soft_insn_changes_segs(iret, sizeof iret));
    assert_true(soft_insn_changes_segs(lss, sizeof lss));
    assert_true(soft_insn_changes_segs(mov_cr0, sizeof mov_cr0));
    assert_true(soft_insn_changes_segs(lmsw, sizeof lmsw));
    assert_true(soft_insn_changes_segs(lds, sizeof lds));
    assert_true(soft_insn_changes_segs(sysenter, sizeof sysenter));
    assert_false(soft_insn_changes_segs(smsw, sizeof smsw));
    assert_false(soft_insn_changes_segs(mov, sizeof mov));
    assert_false(soft_insn_changes_segs(lone_0f, sizeof lone_0f));
}

/* Memory operands for the unaligned-read finder (soft_mmio_split.c): registers, scale, displacement, segment. */
static void memory_operands(void **state)
{
    (void)state;
    struct soft_memop m;
    static const uint8_t esi_m2[] = {0x8b, 0x46, 0xfe}, moffs[] = {0xa1, 0xfe, 0xff, 0x1f, 0x00};
    static const uint8_t bp16[] = {0x8b, 0x46, 0x02}, sib64[] = {0x48, 0x8b, 0x04, 0x8b};
    static const uint8_t rip64[] = {0x8b, 0x05, 0x10, 0x00, 0x00, 0x00}, movdqu[] = {0xf3, 0x0f, 0x6f, 0x43, 0x20};
    static const uint8_t fs64[] = {0x64, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00, 0x00}, reg[] = {0x89, 0xc0};
    assert_true(soft_decode_memop(esi_m2, sizeof esi_m2, 4, &m));
    assert_int_equal(m.base, 6);
    assert_int_equal(m.index, -1);
    assert_int_equal(m.disp, -2);
    assert_int_equal(m.seg, R_DS);
    assert_int_equal(m.len, 3);
    assert_int_equal(m.size, 4);
    assert_true(soft_decode_memop(moffs, sizeof moffs, 4, &m));
    assert_int_equal(m.base, -1);
    assert_int_equal(m.disp, 0x1ffffe);
    assert_true(soft_decode_memop(bp16, sizeof bp16, 2, &m));
    assert_int_equal(m.base, 5);
    assert_int_equal(m.seg, R_SS);
    assert_int_equal(m.asize, 2);
    assert_int_equal(m.size, 2);
    assert_true(soft_decode_memop(sib64, sizeof sib64, 8, &m));
    assert_int_equal(m.base, 3);
    assert_int_equal(m.index, 1);
    assert_int_equal(m.scale, 4);
    assert_int_equal(m.size, 8);
    assert_true(soft_decode_memop(rip64, sizeof rip64, 8, &m));
    assert_int_equal(m.base, SOFT_MEMOP_RIP);
    assert_int_equal(m.disp, 0x10);
    assert_int_equal(m.len, 6);
    assert_true(soft_decode_memop(movdqu, sizeof movdqu, 4, &m));
    assert_int_equal(m.base, 3);
    assert_int_equal(m.disp, 0x20);
    assert_true(soft_decode_memop(fs64, sizeof fs64, 8, &m));
    assert_int_equal(m.base, -1);
    assert_int_equal(m.index, -1);
    assert_int_equal(m.seg, R_FS);
    assert_int_equal(m.disp, 8);
    assert_false(soft_decode_memop(reg, sizeof reg, 4, &m));
}

/* rep ins batches, against what real KVM 6.1 gave for probes/strbatch16 and strmmio32. */
static void ins_batches(void **state)
{
    (void)state;
    assert_int_equal(soft_ins_batch(0x2000, false, 1, 1030), 1024); /* the 1 KiB read-ahead */
    assert_int_equal(soft_ins_batch(0x2400, false, 1, 6), 6);
    assert_int_equal(soft_ins_batch(0x3f01, false, 2, 300), 255); /* 255 bytes left: 255 words */
    assert_int_equal(soft_ins_batch(0x4ff8, false, 4, 10), 8);
    assert_int_equal(soft_ins_batch(0x6000, false, 4, 700), 256);
    assert_int_equal(soft_ins_batch(0x5004, true, 1, 20), 4); /* DF=1: the offset in the page */
    assert_int_equal(soft_ins_batch(0x5000, true, 1, 16), 1); /* offset 0: none, so one */
    assert_int_equal(soft_ins_batch(0x4fff, true, 1, 15), 15);
    assert_int_equal(soft_ins_batch(0x0ff0, false, 1, 40), 16); /* DI without the ES base */
    assert_int_equal(soft_ins_batch(0x1fffff, false, 2, 4), 1);
    assert_int_equal(soft_ins_batch(0x1ffffc, false, 4, 3), 3);
}

/* Which instructions may make an interrupt deliverable (a block ends after each, with the in-kernel irqchip). */
static void unmasking_instructions(void **state)
{
    (void)state;
    static const struct {
        uint8_t b[8];
        size_t n;
        unsigned code;
        bool may;
    } cases[] = {
        {{0x89, 0x03}, 2, 4, true},                    /* mov [ebx], eax: an APIC or IOAPIC write */
        {{0xc7, 0x00, 0, 0, 0, 0}, 6, 4, true},        /* mov dword [eax], 0 */
        {{0xa3, 0xb0, 0x00, 0xe0, 0xfe}, 5, 4, true},  /* mov [0xfee000b0], eax */
        {{0xab}, 1, 4, true},                          /* stosd */
        {{0xf3, 0xa5}, 2, 4, true},                    /* rep movsd */
        {{0xe6, 0x21}, 2, 4, true},                    /* out 0x21, al: the PIC's mask */
        {{0xee}, 1, 2, true},                          /* out dx, al */
        {{0xec}, 1, 4, true},                          /* in al, dx: an exit */
        {{0x0f, 0x30}, 2, 4, true},                    /* wrmsr */
        {{0x44, 0x0f, 0x22, 0xc0}, 4, 8, true},        /* mov cr8, rax */
        {{0xff, 0x00}, 2, 4, true},                    /* inc dword [eax] */
        {{0x83, 0x08, 0x01}, 3, 4, true},              /* or dword [eax], 1 */
        {{0x0f, 0xc1, 0x03}, 3, 4, true},              /* xadd [ebx], eax */
        {{0x48, 0x0f, 0xc7, 0x0f}, 4, 8, false},       /* cmpxchg16b [rdi]: the engine's junk flags */
        {{0x8b, 0x03}, 2, 4, false},                   /* mov eax, [ebx]: a read */
        {{0xa1, 0x20, 0x00, 0xe0, 0xfe}, 5, 4, false}, /* mov eax, [0xfee00020] */
        {{0x3b, 0x03}, 2, 4, false},                   /* cmp eax, [ebx] */
        {{0x83, 0x38, 0x01}, 3, 4, false},             /* cmp dword [eax], 1 */
        {{0xf7, 0x00, 1, 0, 0, 0}, 6, 4, false},       /* test dword [eax], 1 */
        {{0x0f, 0xb6, 0x03}, 3, 4, false},             /* movzx eax, byte [ebx] */
        {{0x8d, 0x04, 0x24}, 3, 4, false},             /* lea eax, [esp] */
        {{0xff, 0x10}, 2, 4, false},                   /* call [eax] (the stack is RAM) */
        {{0x01, 0xd8}, 2, 4, false},                   /* add eax, ebx */
        {{0x46}, 1, 4, false},                         /* inc esi */
        {{0xfb}, 1, 4, false},                         /* sti: the engine ends its block itself */
        {{0x0f, 0x31}, 2, 4, false},                   /* rdtsc */
        {{0x48, 0x8b, 0x05, 0, 0, 0, 0}, 7, 8, false}, /* mov rax, [rip] */
        {{0x48, 0x89, 0x05, 0, 0, 0, 0}, 7, 8, true},  /* mov [rip], rax */
        {{0x0f}, 1, 4, false},                         /* cut short: unknown */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (soft_insn_may_unmask(cases[i].b, cases[i].n, cases[i].code, true, NULL) != cases[i].may)
            fail_msg("case %zu (first byte 0x%02x): expected %s", i, cases[i].b[0], cases[i].may ? "true" : "false");
    }
    /* Without memory writes (no xAPIC page, nothing held in the IOAPIC): port I/O, WRMSR and MOV to CRn only. */
    static const uint8_t store[] = {0x89, 0x03}, out[] = {0xe6, 0x21}, wrmsr[] = {0x0f, 0x30};
    assert_false(soft_insn_may_unmask(store, sizeof store, 4, false, NULL));
    assert_true(soft_insn_may_unmask(out, sizeof out, 4, false, NULL));
    assert_true(soft_insn_may_unmask(wrmsr, sizeof wrmsr, 4, false, NULL));
    /* Where the engine's block ends anyway, the scan for a cut stops. */
    static const uint8_t jne[] = {0x75, 0xfe}, ret[] = {0xc3}, call_ind[] = {0xff, 0xd0}, inc[] = {0x46};
    bool ends;
    assert_false(soft_insn_may_unmask(jne, sizeof jne, 4, true, &ends));
    assert_true(ends);
    soft_insn_may_unmask(ret, sizeof ret, 8, true, &ends);
    assert_true(ends);
    soft_insn_may_unmask(call_ind, sizeof call_ind, 8, true, &ends);
    assert_true(ends);
    soft_insn_may_unmask(inc, sizeof inc, 4, true, &ends);
    assert_false(ends);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ins_batches),
        cmocka_unit_test(memory_operands),
        cmocka_unit_test(len_plain_and_immediates),
        cmocka_unit_test(len_modrm_sib_and_address_sizes),
        cmocka_unit_test(len_io_and_failures),
        cmocka_unit_test(io_insn_prefixes),
        cmocka_unit_test(io_tail_read_backwards),
        cmocka_unit_test(io_address_sizes),
        cmocka_unit_test(access_segments),
        cmocka_unit_test(segment_changing_instructions),
        cmocka_unit_test(unmasking_instructions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
