/*
 * The soft backend's KVM_RUN (KVM's vcpu_run): the engine runs on the vCPU's coroutine until a hook hands an
 * exit to the VMM; between runs, interrupts are injected, windows reported and the engine's state kept current.
 */
#include "soft_debug.h"
#include "soft_irqchip.h"
#include "soft_save.h"
#include "soft_uc_state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void soft_fill_exit_common(struct soft_vcpu *v)
{
    struct kvm_run *run = v->run;
    uint64_t rflags = soft_rd(v, UC_X86_REG_RFLAGS);
    run->if_flag = !!(rflags & X86_RFLAGS_IF);
    run->cr8 = v->cr8;
    run->apic_base = v->apic_base;
    run->flags = 0;
    /* KVM's userspace-irqchip rule: IF set and nothing queued; always 1 with the irqchip in the kernel. */
    run->ready_for_interrupt_injection = v->wake_fd >= 0 || (run->if_flag && v->irq_pending < 0);
}

void soft_internal_error(struct soft_vcpu *v, const char *why)
{
    img_load(v);
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
    uint8_t b[15];
    size_t n = soft_fetch(v, rip, b);
    char hex[15 * 3 + 1] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 3 * i, 4, "%02x ", b[i]);
    soft_set_error("soft backend: %s at rip 0x%llx (cs base 0x%llx), bytes: %s", why, (unsigned long long)rip,
                   (unsigned long long)img_seg(v, R_CS)->base, hex);
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
    memset(&run->emulation_failure, 0, sizeof run->emulation_failure);
    run->emulation_failure.suberror = KVM_INTERNAL_ERROR_EMULATION;
    run->emulation_failure.ndata = 3;
    run->emulation_failure.flags = KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
    run->emulation_failure.insn_size = (uint8_t)n;
    memcpy(run->emulation_failure.insn_bytes, b, n);
}

bool soft_exit_to_vmm(struct soft_vcpu *v)
{
    soft_fill_exit_common(v);
    v->co_ret = 0;
    v->in_exit = true;
    soft_tb_current(NULL);
    soft_coro_yield(&v->co);
    soft_tb_current(v);
    v->in_exit = false;
    v->io_exit = false;
    if (v->mapped_gen != v->vm->slots_gen)
        v->remap = true; /* the engine maps the new slots before the next block; until then the MMIO hooks use them */
    if (v->cancel) {
        /*
         * The vCPU is being closed. The engine still runs the rest of its block after this hook returns, and the
         * VMM may already have unmapped the guest's memory (the selftests' kvm_vm_free deletes the slots and
         * munmaps them before closing the vCPU): a load from the old RAM was a SIGSEGV in the host. The engine
         * goes back to the pool without the RAM anyway, so it leaves now; what the block still does reaches an
         * unmapped address (the engine stops) or an MMIO gap (its hooks ignore a cancelled vCPU).
         */
        soft_engine_drop_ram(v->engine);
        uc_emu_stop(v->uc);
        return false;
    }
    return true;
}

/*
 * Unicorn workaround: stop before the block at addr runs. The engine exits before any of the block's instructions,
 * but 2.1.1 leaves RIP where it was last stored (a chained block stores none): after a stop here RIP could lie
 * blocks behind the registers, and the next run would repeat those blocks with the later registers (a pause
 * in lab 6 went back in time). soft_run_once puts RIP at addr when the engine returns.
 */
static void soft_block_stop(struct soft_vcpu *v, uc_engine *uc, uint64_t addr, int why)
{
    v->stop = why;
    v->stop_rip = addr;
    v->stop_at_block = true;
    uc_emu_stop(uc);
}

void soft_hook_block(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    /* Runs before every block: keep the common path to a few loads and compares. */
    v->blk_addr = addr;
    v->blk_size = size;
    v->io_in_block = 0;
    if (__builtin_expect(v->wpend | v->rhigh_valid | v->remap | v->seg_check, 0)) {
        v->rhigh_valid = false;
        soft_mmio_flush(v);
        if (v->seg_check) {
            v->seg_check = false;
            img_load(v);
            if (soft_limits_refresh(v)) {
                v->seg_check = true; /* soft_run_once adds or removes the limit hook */
                soft_block_stop(v, uc, addr, STOP_RESTART);
                return;
            }
        }
        if (v->remap) {
            soft_block_stop(v, uc, addr, STOP_RESTART);
            return;
        }
    }
    if (__builtin_expect(__atomic_load_n(&v->run->immediate_exit, __ATOMIC_RELAXED), 0)) {
        soft_block_stop(v, uc, addr, STOP_EINTR);
        return;
    }
    if (__builtin_expect(v->watch_if, 0) && (soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_IF)) {
        soft_block_stop(v, uc, addr, STOP_IF);
        return;
    }
    /* In-kernel irqchip: an interrupt was raised or a local APIC timer is due (soft_run_once takes it). */
    if (__builtin_expect(v->kio, 0) &&
        (__atomic_load_n(&v->irq_kick, __ATOMIC_ACQUIRE) || (v->irq_deadline && soft_host_tsc() >= v->irq_deadline))) {
        if (addr != v->irq_skip_rip) {
            soft_block_stop(v, uc, addr, STOP_RESTART);
            return;
        }
        v->irq_skip_rip = 0; /* the instruction in the shadow runs first */
    }
    unsigned idx = (addr ^ (addr >> 12)) & 1023;
    if (__builtin_expect(v->scanned[idx] == (addr ^ ((uint64_t)size << 48)), 1)) {
        if (__builtin_expect(v->code_sum[idx].epoch == v->run_epoch, 1) || soft_code_check(v, idx, addr, size))
            return;
        soft_block_stop(v, uc, addr, STOP_RESTART); /* the VMM rewrote it: flush and translate it again */
        return;
    }
    if (soft_scan_block(v, addr, size))
        soft_block_stop(v, uc, addr, STOP_SCAN);
}

static bool soft_irq_window_open(struct soft_vcpu *v)
{
    if (!(soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_IF))
        return false;
    img_load(v);
    return !(img_u32(v, soft_layout.hflags) & HF_INHIBIT_IRQ_MASK);
}

static int soft_run_once(struct soft_vcpu *v)
{
    struct kvm_run *run = v->run;
    for (;;) {
        soft_smm_check(v); /* a pending SMI enters SMM (soft_smm.c); the memory map follows the vCPU's address space */
        v->remap = false;
        if (!v->mapped_any || v->mapped_gen != v->vm->slots_gen) {
            int r = soft_map_memory(v);
            if (r < 0)
                return r;
        }
        if (v->npending_hooks || v->flush_end)
            soft_apply_pending_hooks(v);
        if (__atomic_exchange_n(&v->hv_tlb_flush, false, __ATOMIC_ACQ_REL))
            uc_ctl_flush_tlb(v->uc); /* a Hyper-V remote TLB flush (soft_hyperv.c) */
        if (v->seg_check) {
            int r = soft_limits_apply(v);
            if (r < 0)
                return r;
        }
        bool blockirq = soft_debug_blocks_irq(v); /* KVM_GUESTDBG_BLOCKIRQ: nothing is injected */
        /* What KVM_SET_VCPU_EVENTS left to inject goes first. */
        if (!soft_vcpu_events_inject(v)) {
            soft_fill_exit_common(v);
            return 0;
        }
        if (v->kio) {
            bool iff = !blockirq && (soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_IF) != 0;
            int vec = soft_irqchip_take(v, iff && soft_irq_window_open(v), iff);
            v->irq_skip_rip = v->irq_want && iff ? soft_rd(v, UC_X86_REG_RIP) : 0;
            if (vec >= 0 && !soft_deliver_event(v, vec, false, 0, false, true)) {
                soft_fill_exit_common(v);
                return 0;
            }
        }
        if (v->irq_pending >= 0 && !blockirq && soft_irq_window_open(v)) {
            int vec = v->irq_pending;
            v->irq_pending = -1;
            if (!soft_deliver_event(v, vec, false, 0, false, true)) {
                soft_fill_exit_common(v);
                return 0;
            }
        }
        if (run->request_interrupt_window && v->irq_pending < 0 && v->wake_fd < 0 && soft_irq_window_open(v)) {
            run->exit_reason = KVM_EXIT_IRQ_WINDOW_OPEN;
            soft_fill_exit_common(v);
            return 0;
        }
        if (__atomic_load_n(&run->immediate_exit, __ATOMIC_RELAXED)) {
            run->exit_reason = KVM_EXIT_INTR;
            soft_fill_exit_common(v);
            return -EINTR;
        }
        v->watch_if = ((v->irq_pending >= 0 && !blockirq) || run->request_interrupt_window || v->irq_want) &&
                      !(soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_IF);
        v->stop = STOP_NONE;
        v->stop_at_block = false;
        v->ud_seen = false;
        v->limit_fault = false;
        soft_debug_prepare(v);
        uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
        if (v->lazy_any)
            v->lazy_cr2 = soft_rd(v, UC_X86_REG_CR2); /* for soft_lazy_pf_retry */
        soft_tb_current(v);
        uc_err e = uc_emu_start(v->uc, rip, 0, 0, 0);
        soft_tb_current(NULL);
        if (v->cancel)
            return -EINTR;
        if (v->stop_at_block) { /* see soft_block_stop; the hook's address is linear: CS base + RIP (SMM: SMBASE) */
            img_load(v);
            uint64_t ip = v->stop_rip - img_seg(v, R_CS)->base;
            soft_wr(v, UC_X86_REG_RIP, img_u32(v, soft_layout.hflags) & HF_CS64_MASK ? ip : (uint32_t)ip);
        }
        if (v->limit_fault && v->undo_len) {
            /* The write past the limit landed before the engine stopped: undo it, as the CPU never makes it. */
            uint64_t pa;
            uint32_t pe;
            img_load(v);
            soft_lin_rw(v, v->undo_lin, v->undo_bytes, v->undo_len, true, false, &pa, &pe);
            v->undo_len = 0;
        }
        if (v->wpend) {
            /* A held-back MMIO write goes out before what stopped the engine; the stop is handled on re-entry. */
            soft_mmio_flush(v);
            if (v->cancel)
                return -EINTR;
        }
        switch (v->stop) {
        case STOP_EXCEPTION:
            if (v->exc_vector == X86_VEC_PF && soft_lazy_pf_retry(v))
                continue; /* a page table in a slot mapped on first touch: now mapped, run the instruction again */
            if (soft_debug_exception(v)) {
                soft_fill_exit_common(v);
                return 0;
            }
            if (!soft_deliver_event(v, v->exc_vector, v->exc_has_error, (uint32_t)v->exc_error, v->exc_soft, false)) {
                soft_fill_exit_common(v);
                return 0;
            }
            continue;
        case STOP_SYSCALL:
            if (!soft_syscall_enter(v)) {
                soft_fill_exit_common(v);
                return 0;
            }
            continue;
        case STOP_RSM:
            if (!soft_smm_rsm(v)) {
                soft_fill_exit_common(v);
                return 0;
            }
            continue;
        case STOP_EXIT: /* a hook filled run (soft_debug.c) */
            soft_fill_exit_common(v);
            return 0;
        case STOP_EINTR:
            continue; /* the check above returns -EINTR */
        case STOP_RESTART:
        case STOP_IF:
        case STOP_SCAN:
            continue;
        default:
            break;
        }
        if (e != UC_ERR_OK) {
            soft_internal_error(v, uc_strerror(e));
            soft_fill_exit_common(v);
            return 0;
        }
        /*
         * Unicorn workaround: HLT stops the engine with UC_ERR_OK and nothing says why. Every other stop is
         * recorded in v->stop, so an unexplained one just after a 0xf4 byte is a HLT.
         */
        img_load(v);
        uint64_t nrip = soft_rd(v, UC_X86_REG_RIP);
        uint8_t b = 0;
        uint64_t pa;
        uint32_t pe;
        if (nrip > 0 && soft_lin_rw(v, img_seg(v, R_CS)->base + nrip - 1, &b, 1, false, false, &pa, &pe) == 0 &&
            b == 0xf4 /* hlt */) {
            if (v->wake_fd >= 0) { /* the irqchip is in the kernel: KVM_RUN waits for an interrupt */
                v->halted = true;
                return SOFT_RUN_HALTED;
            }
            run->exit_reason = KVM_EXIT_HLT;
            soft_fill_exit_common(v);
            return 0;
        }
        soft_internal_error(v, "the engine stopped for no known reason");
        soft_fill_exit_common(v);
        return 0;
    }
}

void soft_co_main(void *arg)
{
    struct soft_vcpu *v = arg;
    while (!v->cancel) {
        v->co_ret = soft_run_once(v);
        if (v->cancel)
            break;
        soft_coro_yield(&v->co);
    }
}

int soft_vcpu_run(struct soft_vcpu *v)
{
    struct kvm_run *run = v->run;
    bool complete_only = false;
    if (__atomic_load_n(&run->immediate_exit, __ATOMIC_RELAXED)) {
        if (!v->in_exit)
            return -EINTR; /* as KVM: exit_reason is left as it was */
        /*
         * KVM completes the last exit's I/O or MMIO (complete_userspace_io) before it looks at immediate_exit, so a
         * VMM that saves the vCPU's state then (the selftests' vcpu_run_complete_io) sees the instruction done. A
         * port I/O exit is completed exactly (soft_io_done.c); for any other the engine finishes the instruction and
         * stops at the next block: the rest of that block runs too.
         */
        if (soft_io_done_mark(v))
            return -EINTR;
        complete_only = true;
    }
    soft_io_done_resume(v);
    /* The VMM may have rewritten code since the last run: each block is checked the first time it runs again. */
    if (++v->run_epoch == 0)
        v->run_epoch = 1;
    if (complete_only) {
        uint32_t reason = run->exit_reason;
        pthread_mutex_lock(&v->vm->lock);
        soft_coro_resume(&v->co);
        pthread_mutex_unlock(&v->vm->lock);
        if (v->co_ret == SOFT_RUN_HALTED)
            v->co_ret = -EINTR; /* halted: the next KVM_RUN waits */
        if (v->co_ret == -EINTR)
            run->exit_reason = reason;
        return v->co_ret;
    }
    for (;;) {
        if (v->halted) { /* HLT with an in-kernel irqchip: wait here, without the VM lock, as KVM's vcpu_block */
            int r = soft_irqchip_halt_wait(v);
            if (r < 0) {
                run->exit_reason = KVM_EXIT_INTR;
                return r;
            }
            v->halted = false;
        }
        pthread_mutex_lock(&v->vm->lock);
        soft_coro_resume(&v->co);
        pthread_mutex_unlock(&v->vm->lock);
        if (v->co_ret != SOFT_RUN_HALTED)
            return v->co_ret;
    }
}
