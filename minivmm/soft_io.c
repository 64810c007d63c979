/*
 * The soft backend's port I/O and MMIO exits, as KVM makes them: IN/OUT and INS/OUTS (string IN batched as
 * KVM's emulator does), MMIO from the gaps between slots (accesses the engine splits joined back, unaligned
 * reads in soft_mmio_split.c).
 */
#include "soft_irqchip.h"
#include "soft_decode.h"
#include "soft_uc_state.h"

#include <execinfo.h>
#include <string.h>

/*
 * The engine reports the start of the running block, not the I/O instruction,
 * in its I/O hooks. The block is straight-line code, so the k-th I/O callback
 * since the block began belongs to the k-th I/O instruction in it: walk there.
 * Sets v->io_rip/io_len; false if the walk fails.
 */
bool soft_locate_io(struct soft_vcpu *v)
{
    uint32_t hf = img_u32(v, soft_layout.hflags);
    unsigned code = (hf & HF_CS64_MASK) ? 8 : (hf & HF_CS32_MASK) ? 4 : 2;
    /* The block hook's address is linear (CS base + RIP): with a CS base (real mode, SMM) RIP is less. */
    uint64_t base = img_seg(v, R_CS)->base, rip = v->blk_addr - base, end = rip + v->blk_size;
    unsigned seen = 0;
    while (rip < end) {
        uint8_t b[16];
        size_t n = soft_fetch_lin(v, base + rip, b);
        int io;
        unsigned len = soft_insn_len(b, n, code, &io);
        if (len == 0)
            return false;
        if (io && ++seen == v->io_in_block) {
            v->io_rip = rip;
            v->io_len = len;
            v->io_string = io == 2;
            memcpy(v->io_bytes, b, sizeof v->io_bytes);
            return true;
        }
        rip += len;
    }
    return false;
}

/*
 * Decode the IN instruction from the state image. The engine reports the
 * block's start, not the instruction, for the first element of a string
 * instruction; a string instruction ends its block, so when the instruction
 * is not found, read it backwards from the block's end.
 */
static struct soft_pio_insn soft_decode_pio_slow(struct soft_vcpu *v)
{
    struct soft_pio_insn d = {0};
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
    uint32_t hf;
    img_load(v);
    hf = img_u32(v, soft_layout.hflags);
    bool a32 = (hf & HF_CS32_MASK) != 0, a64 = (hf & HF_CS64_MASK) != 0;
    uint8_t b[15];
    size_t n;
    if (soft_locate_io(v)) {
        memcpy(b, v->io_bytes, sizeof b);
        n = 15;
    } else {
        n = soft_fetch(v, rip, b);
    }
    bool asz = false;
    bool io = soft_decode_io_insn(b, n, a64, &d, &asz);
    if (!io && v->blk_size > 0 && v->blk_size <= 15 + 4096) {
        uint8_t t[16] = {0};
        uint64_t pa;
        uint32_t pe;
        uint64_t end = v->blk_addr + v->blk_size; /* linear */
        unsigned k = v->blk_size < 16 ? v->blk_size : 16;
        d.rep = false;
        asz = false;
        if (soft_lin_rw(v, end - k, t, k, false, false, &pa, &pe) == 0)
            soft_decode_io_tail(t, k, a64, &d, &asz);
    }
    d.addr_size = soft_io_addr_size(a32, a64, asz);
    return d;
}

/*
 * Decode the IN instruction of the current exit. Decoding needs the state
 * image and a walk of the block (several hundred ns), so the result is kept
 * per site: same block, same index in it, same CS/CR0/CR3 and slots, and the
 * same bytes still in guest RAM at the same place.
 */
static struct soft_pio_insn soft_decode_pio(struct soft_vcpu *v)
{
    struct soft_io_site *c = &v->io_sites[(v->blk_addr ^ v->io_in_block) & 15];
    uint64_t cs = soft_rd(v, UC_X86_REG_CS), cr0 = soft_rd(v, UC_X86_REG_CR0), cr3 = soft_rd(v, UC_X86_REG_CR3);
    if (c->hva && c->blk_addr == v->blk_addr && c->blk_size == v->blk_size && c->in_block == v->io_in_block &&
        c->cs == cs && c->cr0 == cr0 && c->cr3 == cr3 && c->gen == v->vm->slots_gen &&
        memcmp(c->hva, c->bytes, c->len) == 0) {
        v->io_rip = c->rip;
        v->io_len = c->len;
        v->io_string = c->string;
        return (struct soft_pio_insn){.string = c->string, .rep = c->rep, .addr_size = c->addr_size};
    }
    struct soft_pio_insn d = soft_decode_pio_slow(v);
    c->hva = NULL;
    if (!soft_locate_io(v))
        return d;
    uint64_t lin = img_seg(v, R_CS)->base + v->io_rip;
    struct soft_walk w = soft_translate(v, lin, false, false);
    uint8_t *h = (w.fault || w.bad || (lin & (SOFT_PAGE - 1)) + v->io_len > SOFT_PAGE)
                     ? NULL
                     : soft_gpa_to_hva(soft_vcpu_mem(v), w.gpa, v->io_len);
    if (!h)
        return d;
    *c = (struct soft_io_site){.blk_addr = v->blk_addr,
                               .cs = cs,
                               .cr0 = cr0,
                               .cr3 = cr3,
                               .rip = v->io_rip,
                               .blk_size = v->blk_size,
                               .in_block = v->io_in_block,
                               .gen = v->vm->slots_gen,
                               .len = v->io_len,
                               .hva = h,
                               .string = d.string,
                               .rep = d.rep,
                               .addr_size = d.addr_size};
    memcpy(c->bytes, h, v->io_len);
    return d;
}

/* What a held-back write is, in v->wpend_n when not a call-chain length (soft_mmio_hold). */
enum { SOFT_HOLD_BATCH = -1, SOFT_HOLD_ELEMENT = -2 };

static void soft_mmio_send(struct soft_vcpu *v);
static bool soft_ins_dummy(struct soft_vcpu *v, uint64_t gpa, unsigned len);

/*
 * Start an I/O exit. For rep ins KVM's emulator reads ahead (emulate.c, pio_in_emulated): one exit carries
 * min(bytes left in DI's page, 1024 / size, count) elements, at least one. The bytes left are counted from
 * RDI alone (no ES base); with DF=1 they are RDI's offset in its page. The minimum compares bytes with
 * elements, as KVM does. The engine asks for the elements one per callback, so the batch is consumed
 * across callbacks. rep outs is not batched by KVM (one exit per element), so OUT never is here either.
 */
static void soft_pio_begin(struct soft_vcpu *v, uint32_t port, int size, uint8_t dir)
{
    struct kvm_run *run = v->run;
    struct soft_pio_insn d = soft_decode_pio(v);
    uint32_t count = 1;
    soft_mmio_send(v); /* what an unfinished batch left */
    if (d.string && dir == KVM_EXIT_IO_IN) {
        uint64_t cnt = d.rep ? soft_rd(v, UC_X86_REG_RCX) & soft_mask(d.addr_size) : 1;
        bool df = (soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_DF) != 0;
        count = soft_ins_batch(soft_rd(v, UC_X86_REG_RDI), df, (unsigned)size, cnt);
    }
    run->exit_reason = KVM_EXIT_IO;
    run->io.direction = dir;
    run->io.size = (uint8_t)size;
    run->io.port = (uint16_t)port;
    run->io.count = count;
    run->io.data_offset = SOFT_PIO_OFFSET;
    v->pio_left = count;
    v->pio_index = 0;
    v->ins_rep = d.string && d.rep && dir == KVM_EXIT_IO_IN;
    v->pio_asz = d.addr_size;
    v->pio_rcx = soft_rd(v, UC_X86_REG_RCX) & soft_mask(d.addr_size);
    v->pio_rdi = soft_rd(v, UC_X86_REG_RDI);
    v->ins_block = v->ins_rep && !(soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_DF);
    v->db_batch_rip = 0;
}

void soft_hook_out(uc_engine *uc, uint32_t port, int size, uint32_t value, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)uc;
    if (v->cancel)
        return;
    if (__builtin_expect(v->kio, 0) && soft_irqchip_pio(v, (uint16_t)port, (unsigned)size, true, &value))
        return; /* an in-kernel device's port (PIC) or an ioeventfd: no exit */
    soft_mmio_flush(v);
    v->io_in_block++;
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_IO;
    run->io.direction = KVM_EXIT_IO_OUT;
    run->io.size = (uint8_t)size;
    run->io.port = (uint16_t)port;
    run->io.count = 1;
    run->io.data_offset = SOFT_PIO_OFFSET;
    memcpy((uint8_t *)run + SOFT_PIO_OFFSET, &value, (size_t)size);
    v->io_exit = true;
    soft_exit_to_vmm(v);
}

/*
 * The VMM may change RCX or RDI while a rep ins waits in its exit (Linux's userspace_io_test does). KVM's
 * emulator then sizes the batch again from the new registers as it completes the exit: pio_in_emulated
 * refills its read cache with min(bytes left in RDI's page, 1024 / size, RCX) elements, at least one, the
 * first of them the exit's data (emulator_pio_in_emulated; beyond the exit's count, whatever the cache held:
 * here, whatever the run page holds there). No element of the old batch outlives the instruction: a batch
 * cut short by a smaller RCX is not taken up by the next IN. RCX set to 0 ends the instruction with no element
 * (x86_emulate_insn); the engine is inside one, so it ends it with RCX 0 and RDI as the VMM left them after its
 * decrement and step, the element *keep = 0: the engine's store of 0 at its place (QEMU stores first, so that a
 * page fault comes before the read) has been made already. true when it did that.
 */
static bool soft_ins_rebatch(struct soft_vcpu *v, unsigned size, uint32_t *keep)
{
    uint64_t mask = soft_mask(v->pio_asz), rcx_reg = soft_rd(v, UC_X86_REG_RCX), rdi = soft_rd(v, UC_X86_REG_RDI);
    uint64_t rcx = rcx_reg & mask;
    if (rcx == v->pio_rcx && rdi == v->pio_rdi)
        return false;
    bool df = (soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_DF) != 0;
    if (rcx != 0) {
        v->pio_left = soft_ins_batch(rdi, df, size, rcx);
        return false;
    }
    uint64_t step = df ? (uint64_t)0 - size : size;
    soft_wr(v, UC_X86_REG_RCX, (rcx_reg & ~mask) | 1);
    soft_wr(v, UC_X86_REG_RDI, (rdi & ~mask) | ((rdi - step) & mask));
    *keep = 0;
    v->pio_left = 1;
    return true;
}

uint32_t soft_hook_in(uc_engine *uc, uint32_t port, int size, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)uc;
    if (v->cancel)
        return 0;
    uint32_t kval;
    if (__builtin_expect(v->kio, 0) && soft_irqchip_pio(v, (uint16_t)port, (unsigned)size, false, &kval))
        return kval;
    if (__builtin_expect(v->wpend, 0) && v->wpend_n >= 0 && soft_ins_dummy(v, v->wpend_gpa, v->wbuf_len))
        v->wpend = false;
    soft_mmio_flush(v);
    v->io_in_block++;
    uint32_t value = 0;
    bool keep = false;
    if (v->pio_left == 0 || v->run->exit_reason != KVM_EXIT_IO || v->run->io.direction != KVM_EXIT_IO_IN ||
        v->run->io.port != port || v->run->io.size != size) {
        soft_pio_begin(v, port, size, KVM_EXIT_IO_IN);
        memset((uint8_t *)v->run + SOFT_PIO_OFFSET, 0, (size_t)v->run->io.count * (size_t)size);
        v->io_exit = true;
        if (!soft_exit_to_vmm(v))
            return 0;
        if (v->ins_rep)
            keep = soft_ins_rebatch(v, (unsigned)size, &value);
    }
    if (!keep)
        memcpy(&value, (uint8_t *)v->run + SOFT_PIO_OFFSET + (size_t)v->pio_index * (size_t)size, (size_t)size);
    v->pio_index++;
    v->pio_left--;
    v->ins_store = v->io_string;
    if (v->pio_left == 0 && v->ins_rep)
        v->db_batch_rip = v->io_rip + 1;
    return value;
}

static void soft_mmio_exit(struct soft_vcpu *v, uint64_t gpa, unsigned len, bool write, uint64_t value)
{
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_MMIO;
    run->mmio.phys_addr = gpa;
    run->mmio.len = len;
    run->mmio.is_write = write;
    memset(run->mmio.data, 0, sizeof run->mmio.data);
    if (write) {
        memcpy(run->mmio.data, &value, len > 8 ? 8 : len);
        v->db_skip = (soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_TF) != 0;
    }
    soft_exit_to_vmm(v);
}

/*
 * Send the held-back write as KVM sends one access (x86.c, emulator_read_write): split where a page ends, each
 * part in exits of at most 8 bytes.
 */
static void soft_mmio_send(struct soft_vcpu *v)
{
    if (!v->wpend)
        return;
    v->wpend = false;
    uint64_t gpa = v->wpend_gpa;
    uint32_t len = v->wbuf_len, done = 0;
    while (done < len && !v->cancel) {
        uint64_t to_page = SOFT_PAGE - ((gpa + done) & (SOFT_PAGE - 1));
        uint32_t n = len - done < 8 ? len - done : 8;
        if (n > to_page)
            n = (uint32_t)to_page;
        uint64_t val = 0;
        memcpy(&val, v->wbuf + done, n);
        soft_mmio_exit(v, gpa + done, n, true, val);
        done += n;
    }
}

void soft_mmio_flush(struct soft_vcpu *v)
{
    if (v->wpend_n == SOFT_HOLD_BATCH && v->pio_left > 0)
        return; /* a rep-ins batch still coming in: it goes out whole */
    soft_mmio_send(v);
}

/* The guest-physical address of ES:RDI (the string-in destination), or ~0 when it does not translate. */
static uint64_t soft_ins_dest(struct soft_vcpu *v, unsigned addr_size)
{
    img_load(v);
    uint64_t lin = img_seg(v, R_ES)->base + (soft_rd(v, UC_X86_REG_RDI) & soft_mask(addr_size));
    uint32_t hf = img_u32(v, soft_layout.hflags);
    if (!(hf & HF_CS64_MASK))
        lin = (uint32_t)lin;
    struct soft_walk w = soft_translate(v, lin, true, false);
    return w.fault || w.bad ? ~0ull : w.gpa;
}

/* The next I/O instruction of the block, when it is an INS: its destination (gpa) and element size. */
static bool soft_ins_next(struct soft_vcpu *v, uint64_t *dest, unsigned *op)
{
    img_load(v);
    v->io_in_block++;
    bool found = soft_locate_io(v);
    v->io_in_block--;
    if (!found || !v->io_string)
        return false;
    uint32_t hf = img_u32(v, soft_layout.hflags);
    bool a64 = (hf & HF_CS64_MASK) != 0, a32 = (hf & HF_CS32_MASK) != 0, o16 = false, asz = false;
    unsigned k;
    for (k = 0; k < sizeof v->io_bytes; k++) {
        uint8_t b = v->io_bytes[k];
        if (b == 0x66)
            o16 = true;
        else if (!(b == 0x67 || b == 0xf2 || b == 0xf3 || b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e ||
                   b == 0x64 || b == 0x65 || (a64 && (b & 0xf0) == 0x40)))
            break;
    }
    if (k == sizeof v->io_bytes || (v->io_bytes[k] != 0x6c && v->io_bytes[k] != 0x6d))
        return false;
    struct soft_pio_insn d = {0};
    soft_decode_io_insn(v->io_bytes, sizeof v->io_bytes, a64, &d, &asz);
    *op = v->io_bytes[k] == 0x6c ? 1 : ((a32 || a64) != o16 ? 4 : 2);
    *dest = soft_ins_dest(v, soft_io_addr_size(a32, a64, asz));
    return true;
}

/*
 * Unicorn workaround: the engine's INS stores a zero at the destination before it reads the port (to fault
 * early), which KVM never does. True when the zeros [gpa, gpa + len) lie in the element of the INS that comes
 * next; the IN hook then drops them.
 */
static bool soft_ins_dummy(struct soft_vcpu *v, uint64_t gpa, unsigned len)
{
    uint64_t dest;
    unsigned op;
    for (unsigned k = 0; k < len && k < v->wbuf_len; k++)
        if (v->wbuf[k])
            return false;
    return soft_ins_next(v, &dest, &op) && gpa >= dest && gpa + len <= dest + op;
}

static int soft_backtrace_sig(void **bt)
{
    return backtrace(bt, SOFT_BT_DEPTH);
}

/*
 * Hold a write back (soft_mmio_flush sends it). Unicorn workaround: the engine splits one guest access into
 * pieces: an 8-byte one into two 4-byte halves, one that is unaligned or crosses a page into single bytes. The
 * pieces of one access follow each other with nothing in between (a repeated instruction passes the block hook,
 * which flushes): join them. Halves come from the same host call chain (separate instructions differ in it);
 * bytes join when an instruction of the block makes one access over them (soft_mmio_split.c).
 */
static void soft_mmio_hold(struct soft_vcpu *v, uint64_t gpa, unsigned size, uint64_t value)
{
    void *bt[SOFT_BT_DEPTH];
    int n = size == 4 ? soft_backtrace_sig(bt) : 0;
    bool join = v->wpend && gpa == v->wpend_gpa + v->wbuf_len && v->wbuf_len + size <= 16;
    if (join && size == 4) /* the other half of an 8-byte write: the same call chain */
        join = v->wbuf_len == 4 && n == v->wpend_n && memcmp(bt, v->wpend_bt, sizeof(void *) * (size_t)n) == 0;
    else if (join) /* the next byte of an unaligned write: an instruction of the block makes that access */
        join = size == 1 && v->wpend_n == 0 &&
               (soft_mmio_one_access(v, v->wpend_gpa, v->wbuf_len + 1) ||
                (value == 0 && soft_ins_dummy(v, v->wpend_gpa, v->wbuf_len + 1)));
    if (join) {
        memcpy(v->wbuf + v->wbuf_len, &value, size);
        v->wbuf_len += size;
        return;
    }
    soft_mmio_flush(v);
    if (v->cancel)
        return;
    v->wpend = true;
    v->wpend_gpa = gpa;
    v->wbuf_len = size;
    memcpy(v->wbuf, &value, size);
    v->wpend_n = n;
    if (n)
        memcpy(v->wpend_bt, bt, sizeof(void *) * (size_t)n);
}

/*
 * The store of an element an IN just read. KVM writes a DF=0 rep-ins batch as one access once the batch is in
 * (emulate.c, OP_MEM_STR), and any other element alone.
 */
static void soft_mmio_ins_store(struct soft_vcpu *v, uint64_t gpa, unsigned size, uint64_t value)
{
    if (!v->ins_block) {
        if (!v->wpend || v->wpend_n != SOFT_HOLD_ELEMENT || gpa != v->wpend_gpa + v->wbuf_len) {
            soft_mmio_send(v);
            v->wpend = true;
            v->wpend_gpa = gpa;
            v->wbuf_len = 0;
            v->wpend_n = SOFT_HOLD_ELEMENT; /* its pieces join, nothing else */
        }
        memcpy(v->wbuf + v->wbuf_len, &value, size);
        v->wbuf_len += size;
        return;
    }
    if (!v->wpend || gpa != v->wpend_gpa + v->wbuf_len || v->wbuf_len + size > sizeof v->wbuf) {
        soft_mmio_flush(v);
        if (v->cancel)
            return;
        v->wpend = true;
        v->wpend_gpa = gpa;
        v->wbuf_len = 0;
        v->wpend_n = SOFT_HOLD_BATCH; /* nothing else joins it */
    }
    memcpy(v->wbuf + v->wbuf_len, &value, size);
    v->wbuf_len += size;
    if (v->pio_left == 0 && !v->ins_store)
        soft_mmio_send(v); /* the batch's last element is in */
}

/*
 * Unicorn workaround: an 8-byte MMIO read reaches this callback as two 4-byte halves; KVM reports one 8-byte
 * access. The host call chain of the first half passes through the engine's 8-byte load helper, found once at
 * start-up (soft_uc_probe.c); the second half is then answered from that exit (rhigh).
 */
uint64_t soft_hook_mmio_read(uc_engine *uc, uint64_t off, unsigned size, void *ud)
{
    struct soft_mmio_region *m = ud;
    struct soft_vcpu *v = m->e->v;
    (void)uc;
    if (v->cancel || v->limit_fault)
        return 0;
    uint64_t gpa = m->base + off;
    if (v->rhigh_valid && gpa == v->rhigh_gpa && size == 4) {
        v->rhigh_gpa = ~0ull;
        v->rhigh_valid = v->racc_size != 0; /* the rest of an unaligned read's answers stays for this block */
        return v->rhigh;
    }
    uint64_t kval;
    if (__builtin_expect(v->kio, 0) && soft_irqchip_mmio(v, gpa, size, false, &kval))
        return kval; /* the local APIC's page or the IOAPIC: no exit */
    uint8_t *hva = v->remap ? soft_gpa_to_hva(soft_vcpu_mem(v), gpa, size) : NULL;
    if (hva) {
        /* A slot added during this exit: the access completes in the new RAM, as on KVM. */
        uint64_t x = 0;
        memcpy(&x, hva, size > 8 ? 8 : size);
        return x;
    }
    unsigned len = size;
    if (size == 4 && soft_ldq_frame >= 0) {
        void *bt[SOFT_BT_DEPTH];
        int n = backtrace(bt, soft_ldq_frame + 1);
        if (n > soft_ldq_frame && bt[soft_ldq_frame] == soft_ldq_addr)
            len = 8;
    }
    uint64_t x = 0;
    if ((v->rhigh_valid || (gpa & 1) == 0) && soft_mmio_split_read(v, gpa, len, &x))
        goto answer; /* half of an unaligned read (soft_mmio_split.c) */
    v->rhigh_valid = false;
    v->racc_size = 0;
    soft_mmio_flush(v);
    soft_mmio_exit(v, gpa, len, false, 0);
    if (v->cancel)
        return 0;
    memcpy(&x, v->run->mmio.data, 8);
answer:
    if (len == 8) {
        v->rhigh = x >> 32;
        v->rhigh_gpa = gpa + 4;
        v->rhigh_valid = true;
        return (uint32_t)x;
    }
    return len == 8 ? x : x & soft_mask(len);
}

void soft_hook_mmio_write(uc_engine *uc, uint64_t off, unsigned size, uint64_t value, void *ud)
{
    struct soft_mmio_region *m = ud;
    struct soft_vcpu *v = m->e->v;
    (void)uc;
    if (v->cancel || v->limit_fault)
        return;
    uint64_t gpa = m->base + off;
    v->rhigh_valid = false;
    if (__builtin_expect(v->kio, 0) && soft_irqchip_mmio(v, gpa, size, true, &value))
        return;
    uint8_t *hva = v->remap ? soft_gpa_to_hva(soft_vcpu_mem(v), gpa, size) : NULL;
    if (hva) {
        soft_mmio_flush(v);
        memcpy(hva, &value, size > 8 ? 8 : size);
        return;
    }
    if (size > 8)
        size = 8;
    if (v->ins_store) {
        struct soft_pio_insn d = soft_decode_pio(v);
        uint64_t dest = d.string ? soft_ins_dest(v, d.addr_size) : ~0ull, op = v->run->io.size;
        if (gpa >= dest && gpa + size <= dest + op) {
            /* The element's store, or a piece of it when it is unaligned or crosses a page. */
            v->ins_store = gpa + size < dest + op;
            soft_mmio_ins_store(v, gpa, size, value);
            return;
        }
        v->ins_store = false;
    }
    if (value == 0 && v->wpend && v->wpend_n == SOFT_HOLD_BATCH && v->pio_left > 0)
        return; /* in a rep-ins batch: the engine's zero store before the next element (soft_ins_dummy) */
    if (size == 2 && value != 0) {
        /* Whole: the engine splits into bytes or 4-byte halves. (A zero waits: it may be soft_ins_dummy's.) */
        soft_mmio_flush(v);
        if (!v->cancel)
            soft_mmio_exit(v, gpa, size, true, value);
        return;
    }
    soft_mmio_hold(v, gpa, size, value);
}

/*
 * RIP as KVM 6.1 reports it at an I/O exit: at the I/O instruction, string or
 * not. KVM skips a plain IN/OUT only when the next KVM_RUN completes it
 * (complete_fast_pio_in/out), and string I/O is still being emulated.
 */
uint64_t soft_io_exit_rip(struct soft_vcpu *v, uint64_t engine_rip)
{
    img_load(v);
    if (!soft_locate_io(v))
        return engine_rip;
    return v->io_rip;
}
