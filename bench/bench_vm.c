/* VMs for the bench guests: real mode for exits16, long mode on host-built identity page tables for mem64, and the
 * sample ring. */
#include <errno.h>
#include <string.h>

#include "bench/bench_abi.h"
#include "bench_env.h"
#include "bench_vm.h"
#include "lab_parts.h"
#include "x86.h"

static int port_count(struct mvm_vcpu *vcpu, void *opaque, uint16_t port, bool is_write, uint8_t *data, uint32_t size)
{
    struct bench_vm *bv = opaque;

    (void)vcpu;
    (void)port;
    bv->pio_exits++;
    if (!is_write)
        memset(data, 0x5a, size);
    return 0;
}

static int mmio_count(struct mvm_vcpu *vcpu, void *opaque, uint64_t gpa, bool is_write, uint8_t *data, uint32_t len)
{
    struct bench_vm *bv = opaque;

    (void)vcpu;
    (void)gpa;
    bv->mmio_exits++;
    if (!is_write)
        memset(data, 0xa5, len);
    return 0;
}

/* mem64's "warm-up done": stop the run loop so the host can start its clock. */
static int port_sync(struct mvm_vcpu *vcpu, void *opaque, uint16_t port, bool is_write, uint8_t *data, uint32_t size)
{
    struct bench_vm *bv = opaque;

    (void)vcpu;
    (void)port;
    (void)is_write;
    (void)data;
    (void)size;
    bv->syncs++;
    return MVM_STOP_DONE;
}

static int vm_with_guest(const struct mvm_backend *be, const char *guest, uint64_t ram, struct bench_vm *bv)
{
    char path[600];
    int rc;

    memset(bv, 0, sizeof(*bv));
    bench_guest_path(guest, path, sizeof(path));
    rc = vm_create(be, &bv->vm);
    if (rc == 0)
        rc = vm_mem_add(bv->vm, 0, ram, 0);
    if (rc == 0)
        rc = vm_load_file(bv->vm, path, BENCH_LOAD_GPA, NULL);
    if (rc == 0)
        rc = vm_testport_add(bv->vm, NULL);
    if (rc == 0)
        rc = vcpu_create(bv->vm, 0, &bv->vcpu);
    if (rc < 0)
        bench_vm_destroy(bv);
    return rc;
}

int bench_vm16_create(const struct mvm_backend *be, int kind, uint32_t iterations, struct bench_vm *bv)
{
    struct kvm_regs regs;
    int rc = vm_with_guest(be, "bench/exits16", BENCH_RAM16_SIZE, bv);

    if (rc == 0)
        rc = vm_pio_register(bv->vm, BENCH_PORT, 1, port_count, bv);
    if (rc == 0)
        rc = vm_mmio_register(bv->vm, BENCH_MMIO_GPA, X86_PAGE_SIZE, mmio_count, bv);
    if (rc == 0)
        rc = lab1_vcpu_setup_real(bv->vcpu, BENCH_LOAD_GPA);
    if (rc == 0)
        rc = vcpu_regs_get(bv->vcpu, &regs);
    if (rc == 0) {
        regs.rbx = (uint64_t)kind;
        regs.rcx = iterations;
        rc = vcpu_regs_set(bv->vcpu, &regs);
    }
    if (rc < 0)
        bench_vm_destroy(bv);
    return rc;
}

/* Page tables from a bump allocator in guest RAM (fresh anonymous memory reads as zero). */
struct pt_pool {
    struct mvm_vm *vm;
    uint64_t next_gpa, end_gpa;
};

static uint64_t *pt_entry(struct pt_pool *pool, uint64_t table_gpa, unsigned index)
{
    return vm_gpa_to_hva(pool->vm, table_gpa + index * sizeof(uint64_t), sizeof(uint64_t));
}

/* The table that entry `index` of `table_gpa` points to, made on first use; 0 when the pool is spent. */
static uint64_t pt_next(struct pt_pool *pool, uint64_t table_gpa, unsigned index)
{
    uint64_t *e = pt_entry(pool, table_gpa, index);

    if (!e)
        return 0;
    if (!(*e & X86_PTE_P)) {
        if (pool->next_gpa + X86_PAGE_SIZE > pool->end_gpa)
            return 0;
        *e = pool->next_gpa | X86_PTE_P | X86_PTE_RW;
        pool->next_gpa += X86_PAGE_SIZE;
    }
    return *e & X86_PTE_ADDR_MASK;
}

/* Identity-maps [gpa, gpa + size) with pages of page_size (4 KiB or 2 MiB) under the PML4 at pml4_gpa. */
static int pt_map(struct pt_pool *pool, uint64_t pml4_gpa, uint64_t gpa, uint64_t size, uint64_t page_size)
{
    for (uint64_t a = gpa; a < gpa + size; a += page_size) {
        uint64_t pdpt = pt_next(pool, pml4_gpa, X86_PT_INDEX(a, 4));
        uint64_t pd = pdpt ? pt_next(pool, pdpt, X86_PT_INDEX(a, 3)) : 0;
        uint64_t *e;

        if (!pd)
            return mvm_fail(ENOSPC, "bench page tables: the pool of %llu KiB at gpa 0x%llx is full",
                            (unsigned long long)(BENCH_PT_POOL_SIZE >> 10), (unsigned long long)BENCH_PT_POOL_GPA);
        if (page_size == X86_LARGE_PAGE_SIZE) {
            e = pt_entry(pool, pd, X86_PT_INDEX(a, 2));
            *e = a | X86_PTE_P | X86_PTE_RW | X86_PTE_PS;
        } else {
            uint64_t pt = pt_next(pool, pd, X86_PT_INDEX(a, 2));

            if (!pt)
                return mvm_fail(ENOSPC, "bench page tables: the pool at gpa 0x%llx is full",
                                (unsigned long long)BENCH_PT_POOL_GPA);
            e = pt_entry(pool, pt, X86_PT_INDEX(a, 1));
            *e = a | X86_PTE_P | X86_PTE_RW;
        }
    }
    return 0;
}

static void segment_flat(struct kvm_segment *seg, uint16_t selector, uint8_t type, bool code64)
{
    *seg = (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = selector,
        .type = type,
        .present = 1,
        .s = 1,
        .l = code64,
        .db = !code64,
        .g = 1,
    };
}

/* Long mode straight from the VMM: CR3, PAE, EFER.LME|LMA, CR0.PE|PG and a 64-bit CS, no guest boot code. */
static int vcpu_setup_long(struct mvm_vcpu *vcpu, uint64_t pml4_gpa)
{
    struct kvm_sregs sregs;
    int rc = vcpu_sregs_get(vcpu, &sregs);

    if (rc < 0)
        return rc;
    segment_flat(&sregs.cs, 0x8, X86_SEG_TYPE_CODE_XR | X86_SEG_TYPE_ACCESSED, true);
    segment_flat(&sregs.ds, 0x10, X86_SEG_TYPE_DATA_RW | X86_SEG_TYPE_ACCESSED, false);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.cr3 = pml4_gpa;
    sregs.cr4 = X86_CR4_PAE;
    sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
    sregs.efer = X86_EFER_LME | X86_EFER_LMA;
    return vcpu_sregs_set(vcpu, &sregs);
}

/* A long-mode VM for a 64-bit bench guest; data_size 0: no data slot, one unbacked 2 MiB page mapped there (MMIO). */
static int vm64_create(const struct mvm_backend *be, const char *guest, uint64_t data_size, uint64_t page_size,
                       uint64_t mode, uint64_t n, struct bench_vm *bv)
{
    struct pt_pool pool;
    struct kvm_regs regs;
    uint64_t pml4 = BENCH_PT_POOL_GPA;
    uint64_t map_size = data_size ? (data_size + page_size - 1) & ~(page_size - 1) : page_size;
    int rc;

    if (page_size != X86_PAGE_SIZE && page_size != X86_LARGE_PAGE_SIZE)
        return mvm_fail(EINVAL, "bench: page size %llu is neither 4 KiB nor 2 MiB", (unsigned long long)page_size);
    rc = vm_with_guest(be, guest, BENCH_SYS_SIZE, bv);
    if (rc < 0)
        return rc;
    pool = (struct pt_pool){bv->vm, BENCH_PT_POOL_GPA + X86_PAGE_SIZE, BENCH_PT_POOL_GPA + BENCH_PT_POOL_SIZE};
    rc = data_size ? vm_mem_add(bv->vm, BENCH_DATA_GPA, data_size, 0)
                   : vm_mmio_register(bv->vm, BENCH_MMIO64_GPA, X86_PAGE_SIZE, mmio_count, bv);
    if (rc == 0)
        rc = vm_pio_register(bv->vm, BENCH_PORT, 1, port_count, bv);
    if (rc == 0)
        rc = vm_pio_register(bv->vm, BENCH_PORT_SYNC, 1, port_sync, bv);
    if (rc == 0)
        rc = pt_map(&pool, pml4, 0, BENCH_SYS_SIZE, X86_LARGE_PAGE_SIZE);
    if (rc == 0)
        rc = pt_map(&pool, pml4, BENCH_DATA_GPA, map_size, page_size);
    if (rc == 0)
        rc = vcpu_setup_long(bv->vcpu, pml4);
    if (rc == 0) {
        memset(&regs, 0, sizeof(regs));
        regs.rip = BENCH_LOAD_GPA;
        regs.rsp = BENCH_STACK_TOP - 8; /* as after a call: the SysV ABI wants rsp + 8 16-byte aligned */
        regs.rflags = 0x2;
        regs.rdi = mode;
        regs.rsi = BENCH_DATA_GPA;
        regs.rdx = data_size;
        regs.rcx = n;
        rc = vcpu_regs_set(bv->vcpu, &regs);
    }
    if (rc < 0)
        bench_vm_destroy(bv);
    return rc;
}

int bench_vm64_create(const struct mvm_backend *be, uint64_t data_size, uint64_t page_size, int mode, uint64_t n,
                      struct bench_vm *bv)
{
    if (data_size == 0)
        return mvm_fail(EINVAL, "bench: mem64 needs a buffer of at least one page");
    return vm64_create(be, "bench/mem64", data_size, page_size, (uint64_t)mode, n, bv);
}

int bench_vm64_exits_create(const struct mvm_backend *be, int kind, uint32_t iterations, struct bench_vm *bv)
{
    return vm64_create(be, "bench/exits64", 0, X86_LARGE_PAGE_SIZE, (uint64_t)kind, iterations, bv);
}

void bench_vm_destroy(struct bench_vm *bv)
{
    vm_destroy(bv->vm);
    bv->vm = NULL;
    bv->vcpu = NULL;
}

int bench_samples_collect(struct bench_state *st, struct bench_vm *bv, uint64_t units, uint64_t per_sample)
{
    uint64_t count = units < BENCH_SAMPLES_MAX ? units : BENCH_SAMPLES_MAX;
    const uint32_t *ring = vm_gpa_to_hva(bv->vm, BENCH_SAMPLES_GPA, count * sizeof(uint32_t));
    double scale = bench_ns_per_cycle() / (double)per_sample;

    if (!ring)
        return mvm_fail(EFAULT, "bench: the sample ring at gpa 0x%x is not in guest RAM", BENCH_SAMPLES_GPA);
    for (uint64_t i = 0; i < count; i++)
        bench_sample_ns(st, ring[i] * scale);
    return 0;
}

int bench_result_read(struct bench_vm *bv, void *res, size_t len)
{
    return vm_read(bv->vm, BENCH_RESULT_GPA, res, len);
}

int bench_lab_vm_create(const struct mvm_backend *be, const char *guest, uint64_t params_gpa, const void *params,
                        size_t len, int (*setup)(struct mvm_vm *vm, void *ctx), void *ctx, struct mvm_vm **vm_out,
                        struct mvm_vcpu **vcpu_out)
{
    struct mvm_vm *vm = NULL;
    char path[600];
    int rc;

    bench_guest_path(guest, path, sizeof(path));
    rc = vm_create(be, &vm);
    if (rc == 0)
        rc = vm_mem_add(vm, 0, 2 << 20, 0);
    if (rc == 0)
        rc = vm_devices_add_standard(vm, NULL); /* what the devices print is discarded */
    if (rc == 0 && setup)
        rc = setup(vm, ctx);
    if (rc == 0)
        rc = vm_load_file(vm, path, MVM_BOOT_LOAD_GPA, NULL);
    if (rc == 0)
        rc = vm_write(vm, params_gpa, params, len);
    if (rc == 0)
        rc = vcpu_create(vm, 0, vcpu_out);
    if (rc == 0)
        rc = vcpu_setup_mode(*vcpu_out, MVM_MODE_LONG, MVM_BOOT_LOAD_GPA);
    if (rc < 0) {
        vm_destroy(vm);
        return rc;
    }
    *vm_out = vm;
    return 0;
}
