/*
 * The soft backend's port I/O and MMIO exits, as KVM makes them: IN/OUT and INS/OUTS (string IN batched as
 * KVM's emulator does), MMIO from the gaps between slots (8-byte accesses merged back from the engine's halves).
 */
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
    uint64_t base = img_seg(v, R_CS)->base, rip = v->blk_addr, end = v->blk_addr + v->blk_size;
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
        uint64_t end = img_seg(v, R_CS)->base + v->blk_addr + v->blk_size;
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
                     : soft_gpa_to_hva(v->vm, w.gpa, v->io_len);
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

/*
 * Start an I/O exit. For rep ins KVM's emulator batches: one exit carries
 * min(RCX, elements left in the guest page, one page of data) elements, and the
 * engine asks for them one per callback, so the batch is consumed across
 * callbacks. rep outs is not batched by KVM (one exit per element, measured on
 * this AMD host), so OUT never is here either.
 */
static void soft_pio_begin(struct soft_vcpu *v, uint32_t port, int size, uint8_t dir)
{
    struct kvm_run *run = v->run;
    struct soft_pio_insn d = soft_decode_pio(v);
    uint32_t count = 1;
    if (d.string && dir == KVM_EXIT_IO_IN) {
        uint64_t cnt = d.rep ? soft_rd(v, UC_X86_REG_RCX) & soft_mask(d.addr_size) : 1;
        uint64_t ptr = soft_rd(v, dir == KVM_EXIT_IO_OUT ? UC_X86_REG_RSI : UC_X86_REG_RDI) & soft_mask(d.addr_size);
        bool df = (soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_DF) != 0;
        uint64_t in_page = df ? (ptr & 0xfff) + (uint64_t)size : SOFT_PAGE - (ptr & 0xfff);
        uint64_t n = in_page / (uint64_t)size;
        if (n == 0)
            n = 1;
        if (n > SOFT_PAGE / (uint64_t)size)
            n = SOFT_PAGE / (uint64_t)size;
        if (cnt < n)
            n = cnt;
        count = n ? (uint32_t)n : 1;
    }
    run->exit_reason = KVM_EXIT_IO;
    run->io.direction = dir;
    run->io.size = (uint8_t)size;
    run->io.port = (uint16_t)port;
    run->io.count = count;
    run->io.data_offset = SOFT_PIO_OFFSET;
    v->pio_left = count;
    v->pio_index = 0;
}

void soft_hook_out(uc_engine *uc, uint32_t port, int size, uint32_t value, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)uc;
    if (v->cancel)
        return;
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

uint32_t soft_hook_in(uc_engine *uc, uint32_t port, int size, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)uc;
    if (v->cancel)
        return 0;
    soft_mmio_flush(v);
    v->io_in_block++;
    if (v->pio_left == 0 || v->run->exit_reason != KVM_EXIT_IO || v->run->io.direction != KVM_EXIT_IO_IN ||
        v->run->io.port != port || v->run->io.size != size) {
        soft_pio_begin(v, port, size, KVM_EXIT_IO_IN);
        memset((uint8_t *)v->run + SOFT_PIO_OFFSET, 0, (size_t)v->run->io.count * (size_t)size);
        v->io_exit = true;
        if (!soft_exit_to_vmm(v))
            return 0;
    }
    uint32_t value = 0;
    memcpy(&value, (uint8_t *)v->run + SOFT_PIO_OFFSET + (size_t)v->pio_index * (size_t)size, (size_t)size);
    v->pio_index++;
    v->pio_left--;
    return value;
}

/*
 * Unicorn workaround: 8-byte MMIO accesses reach the callbacks as two 4-byte
 * halves; KVM reports one 8-byte access. Reads: the host call chain of the
 * first half passes through the engine's 8-byte load helper, found once at
 * start-up (soft_uc_probe.c). Writes: a 4-byte write waits; if the other half
 * follows from the same call chain it becomes one 8-byte exit, otherwise it is
 * sent alone before anything else the guest does reaches the VMM (same exit
 * order as KVM).
 */
static void soft_mmio_exit(struct soft_vcpu *v, uint64_t gpa, unsigned len, bool write, uint64_t value)
{
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_MMIO;
    run->mmio.phys_addr = gpa;
    run->mmio.len = len;
    run->mmio.is_write = write;
    memset(run->mmio.data, 0, sizeof run->mmio.data);
    if (write)
        memcpy(run->mmio.data, &value, len > 8 ? 8 : len);
    soft_exit_to_vmm(v);
}

void soft_mmio_flush(struct soft_vcpu *v)
{
    if (!v->wpend)
        return;
    v->wpend = false;
    soft_mmio_exit(v, v->wpend_gpa, 4, true, v->wpend_val);
}

uint64_t soft_hook_mmio_read(uc_engine *uc, uint64_t off, unsigned size, void *ud)
{
    struct soft_mmio_region *m = ud;
    struct soft_vcpu *v = m->e->v;
    (void)uc;
    if (v->cancel || v->limit_fault)
        return 0;
    uint64_t gpa = m->base + off;
    if (v->rhigh_valid && gpa == v->rhigh_gpa && size == 4) {
        v->rhigh_valid = false;
        return v->rhigh;
    }
    v->rhigh_valid = false;
    uint8_t *hva = v->remap ? soft_gpa_to_hva(v->vm, gpa, size) : NULL;
    if (hva) {
        /* A slot added during this exit: the access completes in the new RAM, as on KVM. */
        uint64_t x = 0;
        memcpy(&x, hva, size > 8 ? 8 : size);
        return x;
    }
    soft_mmio_flush(v);
    unsigned len = size;
    if (size == 4 && soft_ldq_frame >= 0) {
        void *bt[SOFT_BT_DEPTH];
        int n = backtrace(bt, soft_ldq_frame + 1);
        if (n > soft_ldq_frame && bt[soft_ldq_frame] == soft_ldq_addr)
            len = 8;
    }
    soft_mmio_exit(v, gpa, len, false, 0);
    if (v->cancel)
        return 0;
    uint64_t x = 0;
    memcpy(&x, v->run->mmio.data, 8);
    if (len == 8) {
        v->rhigh = x >> 32;
        v->rhigh_gpa = gpa + 4;
        v->rhigh_valid = true;
        return (uint32_t)x;
    }
    return len == 8 ? x : x & soft_mask(len);
}

static int soft_backtrace_sig(void **bt)
{
    return backtrace(bt, SOFT_BT_DEPTH);
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
    uint8_t *hva = v->remap ? soft_gpa_to_hva(v->vm, gpa, size) : NULL;
    if (hva) {
        soft_mmio_flush(v);
        memcpy(hva, &value, size > 8 ? 8 : size);
        return;
    }
    if (size != 4) {
        soft_mmio_flush(v);
        soft_mmio_exit(v, gpa, size, true, value);
        return;
    }
    void *bt[SOFT_BT_DEPTH];
    int n = soft_backtrace_sig(bt);
    if (v->wpend && gpa == v->wpend_gpa + 4 && n == v->wpend_n &&
        memcmp(bt, v->wpend_bt, sizeof(void *) * (size_t)n) == 0) {
        v->wpend = false;
        soft_mmio_exit(v, v->wpend_gpa, 8, true, (uint32_t)v->wpend_val | ((uint64_t)(uint32_t)value << 32));
        return;
    }
    soft_mmio_flush(v);
    if (v->cancel)
        return;
    v->wpend = true;
    v->wpend_gpa = gpa;
    v->wpend_val = (uint32_t)value;
    v->wpend_n = n;
    memcpy(v->wpend_bt, bt, sizeof(void *) * (size_t)n);
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
