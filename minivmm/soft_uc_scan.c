/*
 * Unicorn workaround: 2.1.1 cannot hook RDTSC/RDMSR/WRMSR as instructions (UC_ERR_HOOK), and a UC_HOOK_CODE on
 * everything costs 22-30x. So each new block is scanned once, and a code hook goes on just the instructions
 * that need one: RDTSC/RDTSCP (counted), RDMSR/WRMSR (the MSRs the backend keeps, soft_msr.c), and in
 * protected mode the instruction after a segment load or mode change (the limit checks re-evaluate, soft_seg.c).
 */
#include "soft_decode.h"
#include "soft_uc_state.h"

static void soft_hook_code(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)size;
    uint8_t b[15] = {0};
    img_load(v);
    if (!(img_u32(v, soft_layout.hflags) & HF_LMA_MASK)) {
        /* Maybe placed after a segment load: the limit hook may be due before this instruction runs. */
        v->seg_check = true;
        if (soft_limits_refresh(v)) {
            v->stop = STOP_RESTART;
            uc_emu_stop(uc);
            return;
        }
    }
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
    (void)addr;
    soft_fetch(v, rip, b);
    if (b[0] != 0x0f)
        return;
    if (b[1] == 0x31 || (b[1] == 0x01 && b[2] == 0xf9)) { /* rdtsc, rdtscp */
        v->stats.rdtsc++;
        return; /* the engine adds the TSC offset itself */
    }
    if (b[1] != 0x30 && b[1] != 0x32) /* wrmsr, rdmsr */
        return;
    v->stats.msr++;
    if (img_u32(v, soft_layout.hflags) & HF_CPL_MASK)
        return; /* the engine raises #GP */
    uint32_t idx = (uint32_t)soft_rd(v, UC_X86_REG_RCX);
    if (b[1] == 0x30) {
        uint64_t val = (uint32_t)soft_rd(v, UC_X86_REG_RAX) | (soft_rd(v, UC_X86_REG_RDX) << 32);
        if (!soft_msr_write(v, idx, val))
            return;
    } else {
        uint64_t val;
        if (!soft_msr_read(v, idx, &val))
            return;
        soft_wr(v, UC_X86_REG_RAX, (uint32_t)val);
        soft_wr(v, UC_X86_REG_RDX, val >> 32);
    }
    soft_wr(v, UC_X86_REG_RIP, rip + 2);
}

/* Queue a code hook at guest address at, once. True if newly queued. */
static bool soft_hook_later(struct soft_vcpu *v, uint64_t at)
{
    for (int k = 0; k < v->nhooked; k++)
        if (v->hooked[k] == at)
            return false;
    for (int k = 0; k < v->npending_hooks; k++)
        if (v->pending_hooks[k] == at)
            return false;
    if (v->nhooked + v->npending_hooks >= 256 || v->npending_hooks >= 16)
        return false;
    v->pending_hooks[v->npending_hooks++] = at;
    return true;
}

/* Scan a block the engine is about to run for the instructions above; queue a code hook on each, once. */
__attribute__((noinline)) bool soft_scan_block(struct soft_vcpu *v, uint64_t addr, uint32_t size)
{
    v->scanned[(addr ^ (addr >> 12)) & 1023] = addr ^ ((uint64_t)size << 48);
    if (size > 4096)
        return false;
    uint8_t buf[4096 + 2];
    uint64_t pa;
    uint32_t pe;
    img_load(v);
    uint64_t lin = addr + img_seg(v, R_CS)->base;
    if (soft_lin_rw(v, lin, buf, size, false, false, &pa, &pe) != 0)
        return false;
    bool found = false;
    for (uint32_t i = 0; i + 1 < size; i++) {
        if (buf[i] != 0x0f)
            continue;
        uint8_t c = buf[i + 1];
        bool hit = c == 0x30 || c == 0x31 || c == 0x32 || (c == 0x01 && i + 2 < size && buf[i + 2] == 0xf9);
        if (!hit)
            continue;
        if (soft_hook_later(v, addr + i))
            found = true;
    }
    uint32_t hf = img_u32(v, soft_layout.hflags);
    if (!(hf & HF_LMA_MASK)) {
        /*
         * Segment loads and mode changes: hook the next instruction (the code hook
         * re-checks the segments before it runs), or the load itself when it ends
         * the block (then the next block hook re-checks).
         */
        unsigned code = (hf & HF_CS32_MASK) ? 4 : 2;
        for (uint32_t i = 0; i < size;) {
            int io;
            unsigned len = soft_insn_len(buf + i, size - i, code, &io);
            if (len == 0)
                break;
            if (soft_insn_changes_segs(buf + i, len) &&
                soft_hook_later(v, addr + i + len < addr + size ? addr + i + len : addr + i))
                found = true;
            i += len;
        }
    }
    if (found) {
        v->flush_begin = addr;
        v->flush_end = addr + size;
    }
    return found;
}

void soft_apply_pending_hooks(struct soft_vcpu *v)
{
    for (int i = 0; i < v->npending_hooks; i++) {
        uc_hook h;
        uint64_t at = v->pending_hooks[i];
        if (uc_hook_add(v->uc, &h, UC_HOOK_CODE, (void *)soft_hook_code, v->engine, at, at) == UC_ERR_OK) {
            v->hooked_h[v->nhooked] = h;
            v->hooked[v->nhooked++] = at;
        }
    }
    v->npending_hooks = 0;
    if (v->flush_end > v->flush_begin)
        uc_ctl_remove_cache(v->uc, v->flush_begin, v->flush_end);
    v->flush_begin = v->flush_end = 0;
}
