/* The functions students write, lab by lab. The core calls them; solutions/ and student trees define them. */
#ifndef MINIVMM_LAB_PARTS_H
#define MINIVMM_LAB_PARTS_H

#include "lab.h"
#include "mvm.h"

/*
 * Lab 1 writes the VMM's own KVM calls, through the KVM API of kvm_api.h (kvm_open, kvm_ioctl, kvm_mmap,
 * kvm_close: the system calls, on the VM's backend). Each returns 0 or -errno with a message (mvm_fail)
 * naming the ioctl that failed, and on failure closes whatever it opened.
 */
#include "kvm_api.h"

/*
 * Lab 1. Opens /dev/kvm (O_RDWR | O_CLOEXEC), checks that KVM_GET_API_VERSION is KVM_API_VERSION (12),
 * creates a VM with KVM_CREATE_VM (machine type 0). Sets *kvm_fd and *vm_fd.
 */
int lab1_vm_open(int *kvm_fd, int *vm_fd);

/*
 * Lab 1. KVM_SET_USER_MEMORY_REGION: memory slot `slot` maps `size` bytes of host memory at `hva` to
 * guest-physical `gpa`, with the KVM_MEM_* `flags` (KVM_MEM_LOG_DIRTY_PAGES: KVM_GET_DIRTY_LOG works on it).
 */
int lab1_mem_region_set(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva, uint32_t flags);

/*
 * Lab 1. Creates vCPU `id` with KVM_CREATE_VCPU and maps its struct kvm_run: KVM_GET_VCPU_MMAP_SIZE (on
 * the /dev/kvm fd) bytes, shared, read-write, from offset 0 of the vCPU fd. Sets *vcpu_fd, *run, *run_size.
 */
int lab1_vcpu_open(int kvm_fd, int vm_fd, int id, int *vcpu_fd, struct kvm_run **run, size_t *run_size);

/*
 * Lab 1. One KVM_RUN on the vCPU: returns 0 once the vCPU has exited (run->exit_reason says why), -EINTR
 * when a signal interrupted it (the run loop's time limit: the caller checks and goes round again), or
 * -errno with a message naming KVM_RUN.
 */
int lab1_vcpu_enter(int vcpu_fd, struct kvm_run *run);

/*
 * Lab 1. The exit switch: KVM_EXIT_IO to lab1_exit_io, KVM_EXIT_HLT to lab1_exit_hlt, every other reason
 * to vcpu_exit_default() (lab.h: MMIO, SHUTDOWN, the later labs' exits). Returns what the handler returns.
 */
int lab1_exit_switch(struct mvm_vcpu *vcpu, struct kvm_run *run);

/*
 * Lab 1. Puts a fresh vCPU in real mode at the 20-bit guest-physical address
 * `entry_gpa` (below 1 MiB): CS:IP points at it with CS.base == CS.selector << 4,
 * DS/ES/FS/GS/SS equal CS, SP at the top of that 64 KiB segment, RFLAGS = 0x2.
 * Returns 0 or -errno with a message (mvm_fail).
 */
int lab1_vcpu_setup_real(struct mvm_vcpu *vcpu, uint64_t entry_gpa);

/*
 * Lab 1. Handles one KVM_EXIT_IO: hands each of run->io.count elements of
 * run->io.size bytes, found at run->io.data_offset inside the run page, to
 * vm_pio_dispatch(). The core has checked that they lie inside the run page.
 * Returns 0 to keep running, a positive MVM_STOP_* to stop, or -errno.
 */
int lab1_exit_io(struct mvm_vcpu *vcpu, struct kvm_run *run);

/*
 * Lab 1. Handles one KVM_EXIT_HLT. This VM has no interrupt controller, so
 * nothing can wake a halted vCPU. Returns MVM_STOP_HLT, 0 or -errno.
 */
int lab1_exit_hlt(struct mvm_vcpu *vcpu, struct kvm_run *run);

/* Labs 2 and 3: bit constants and the boot layout (MVM_BOOT_*) are in x86.h. */
#include "x86.h"

/*
 * Lab 2. Encodes the code/data segment `seg` (as KVM describes a loaded
 * segment: byte-granular base and limit, type, s, dpl, present, avl, l, db,
 * g) into the 8-byte GDT descriptor the CPU reads when a selector is loaded.
 * With g set, seg->limit counts bytes and its low 12 bits must be all ones;
 * without g it must fit in 20 bits. The base must fit in 32 bits.
 * Returns 0 and sets *desc_out, or -EINVAL with a message naming the field.
 */
int lab2_gdt_entry_encode(const struct kvm_segment *seg, uint64_t *desc_out);

/*
 * Lab 2. Puts a fresh vCPU in 32-bit protected mode at `entry_gpa` without
 * running any guest code: writes the boot GDT (null, flat code32, flat data,
 * code64; selectors MVM_SEL_*) at MVM_BOOT_GDT_GPA and points GDTR at it,
 * loads CS = MVM_SEL_CODE32 and DS/ES/FS/GS/SS = MVM_SEL_DATA with the same
 * hidden state their descriptors hold (flat: base 0, limit 4 GiB), sets
 * CR0.PE, EIP = entry_gpa, ESP = MVM_BOOT_STACK_TOP, EFLAGS = 0x2.
 * Returns 0 or -errno with a message.
 */
int lab2_vcpu_setup_protected(struct mvm_vcpu *vcpu, uint64_t entry_gpa);

/* Lab 3. A bump allocator of page-table pages inside guest RAM: [base_gpa, base_gpa + size). */
struct lab3_pt_pool {
    uint64_t base_gpa;
    uint64_t size;
    uint64_t used;     /* bytes handed out so far; the first page is the PML4 */
    uint64_t pml4_gpa; /* what CR3 points at, once a page has been mapped */
};

/*
 * Lab 3. Maps one page: guest-virtual `gva` -> guest-physical `gpa`, of
 * `page_size` X86_PAGE_SIZE (a PT entry) or X86_LARGE_PAGE_SIZE (a PDE with
 * PS), with the entry flags `flags` (X86_PTE_*; P is implied). Missing
 * tables are taken zeroed from `pool` (the first one becomes the PML4).
 * Both addresses must be aligned to the page size and gva canonical.
 * Returns 0, -EINVAL (bad argument), -EEXIST (something is mapped there
 * already), -ENOSPC (pool exhausted) or -EFAULT (pool outside RAM).
 */
int lab3_page_map(struct mvm_vm *vm, struct lab3_pt_pool *pool, uint64_t gva, uint64_t gpa, uint64_t page_size,
                  uint64_t flags);

/*
 * Lab 3. Builds minivmm's standard page tables (x86.h, MVM_IDENTITY_MAP_SIZE):
 * [0, 2 MiB) identity with 4 KiB pages except page 0, [2 MiB, 1 GiB)
 * identity with 2 MiB pages, and [0, 1 GiB) again at MVM_HIGHER_HALF_GVA
 * with 2 MiB pages; all writable. Returns 0 and sets *cr3_out, or -errno.
 */
int lab3_page_tables_build(struct mvm_vm *vm, struct lab3_pt_pool *pool, uint64_t *cr3_out);

/*
 * Lab 3. Puts a fresh vCPU in 64-bit long mode at guest-virtual `entry_gva`
 * with the page tables at `cr3`: protected mode first (lab 2), then CS =
 * MVM_SEL_CODE64 (L = 1, D = 0), CR4.PAE, EFER.LME and LMA, CR0.PG.
 * Returns 0 or -errno with a message.
 */
int lab3_vcpu_setup_long(struct mvm_vcpu *vcpu, uint64_t entry_gva, uint64_t cr3);

/*
 * Lab 3. Walks the guest's 4-level page tables at `cr3` in software, as the
 * MMU would: guest-virtual `gva` -> guest-physical. Handles 2 MiB and 1 GiB
 * pages. Returns 0 and sets *gpa_out, or -EFAULT with a message naming the
 * level whose entry is not present (or lies outside guest RAM), or -EINVAL
 * for a non-canonical gva.
 */
int lab3_gva_to_gpa(struct mvm_vm *vm, uint64_t cr3, uint64_t gva, uint64_t *gpa_out);

#endif
