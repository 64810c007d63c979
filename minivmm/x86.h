/* x86 architectural bits (CR0/CR4/EFER, GDT descriptors, page-table entries) and minivmm's boot layout for 32/64-bit
 * guests. */
#ifndef MINIVMM_X86_H
#define MINIVMM_X86_H

/*
 * Shared by the VMM (lab parts, walker) and the freestanding guests, so the
 * constants are plain integers that also work in assembler.
 */

/* Control registers (Intel SDM vol. 3, 2.5; AMD APM vol. 2, 3.1). */
#define X86_CR0_PE      (1u << 0) /* protection enable: segments come from descriptors */
#define X86_CR0_MP      (1u << 1)
#define X86_CR0_ET      (1u << 4) /* hard-wired to 1 on every CPU since the 486 */
#define X86_CR0_NE      (1u << 5)
#define X86_CR0_WP      (1u << 16) /* supervisor writes honour read-only pages */
#define X86_CR0_NW      (1u << 29)
#define X86_CR0_CD      (1u << 30) /* cache disable: set at reset */
#define X86_CR0_PG      (1u << 31) /* paging; needs PE */
#define X86_CR4_PSE     (1u << 4)
#define X86_CR4_PAE     (1u << 5)  /* 64-bit page-table entries; required for long mode */
#define X86_CR4_OSFXSR  (1u << 9)  /* the OS supports FXSAVE/FXRSTOR and SSE */
#define X86_CR4_OSXSAVE (1u << 18) /* XSAVE enabled; CPUID.1:ECX.OSXSAVE mirrors it */

/* RFLAGS (SDM vol. 1, 3.4.3). */
#define X86_RFLAGS_FIXED (1u << 1) /* always reads as 1 */
#define X86_RFLAGS_TF    (1u << 8)
#define X86_RFLAGS_IF    (1u << 9) /* maskable interrupts enabled */
#define X86_RFLAGS_DF    (1u << 10)
#define X86_RFLAGS_IOPL  (3u << 12)
#define X86_RFLAGS_NT    (1u << 14)
#define X86_RFLAGS_RF    (1u << 16)
#define X86_RFLAGS_VM    (1u << 17) /* virtual-8086 mode */
#define X86_RFLAGS_AC    (1u << 18)

/* The EFER MSR. */
#define X86_MSR_EFER 0xc0000080u
/* Other architectural MSRs (SDM vol. 4). */
#define X86_MSR_TSC            0x10u
#define X86_MSR_APIC_BASE      0x1bu
#define X86_MSR_SYSENTER_CS    0x174u /* then SYSENTER_ESP, SYSENTER_EIP */
#define X86_MSR_SYSENTER_EIP   0x176u
#define X86_MSR_STAR           0xc0000081u /* then LSTAR, CSTAR */
#define X86_MSR_SFMASK         0xc0000084u
#define X86_MSR_FS_BASE        0xc0000100u
#define X86_MSR_GS_BASE        0xc0000101u
#define X86_MSR_KERNEL_GS_BASE 0xc0000102u
#define X86_MSR_TSC_ADJUST     0x3bu /* CPUID.7.0:EBX bit 1; KVM emulates it */
#define X86_MSR_PLATFORM_INFO  0xceu /* KVM: host-written, guest-read (KVM_CAP_MSR_PLATFORM_INFO) */
#define X86_EFER_SCE           (1u << 0)
#define X86_EFER_LME           (1u << 8)  /* long mode enable: takes effect when CR0.PG is set */
#define X86_EFER_LMA           (1u << 10) /* long mode active: set by the CPU (by the VMM through sregs) */
#define X86_EFER_NXE           (1u << 11)

/* MSR_PLATFORM_INFO's CPUID faulting bit; CPUID.7.0:EBX's IA32_TSC_ADJUST bit. */
#define X86_PLATFORM_INFO_CPUID_FAULT (1ull << 31)
#define X86_CPUID_7_EBX_TSC_ADJUST    (1u << 1)

/* Exception vectors (SDM vol. 3, 6.3). */
#define X86_VEC_DE         0  /* divide error */
#define X86_VEC_DB         1  /* debug: a single step or a DR0-3 breakpoint (DR6 says which) */
#define X86_VEC_BP         3  /* breakpoint: INT3 (0xcc), a trap, so the pushed RIP is past it */
#define X86_VEC_UD         6  /* invalid opcode */
#define X86_VEC_DF         8  /* double fault: a fault while delivering a fault */
#define X86_VEC_TS         10 /* invalid TSS */
#define X86_VEC_NP         11 /* segment (or gate) not present */
#define X86_VEC_SS         12 /* stack segment fault: a limit violation through SS */
#define X86_VEC_GP         13 /* general protection: a segment limit or privilege violation */
#define X86_VEC_PF         14 /* page fault: CR2 holds the address, the error code says why */
#define X86_VEC_AC         17
#define X86_VEC_CP         21
#define X86_VEC_VC         29
#define X86_VEC_SX         30
#define X86_PF_ERR_PRESENT (1u << 0) /* 0: the page was not present; 1: a protection violation */
#define X86_PF_ERR_WRITE   (1u << 1)
#define X86_PF_ERR_USER    (1u << 2)
#define X86_PF_ERR_FETCH   (1u << 4)

/* Debug registers (SDM vol. 3, 18.2): DR0-3 hold linear addresses, DR7 enables them, DR6 says what hit. */
#define X86_DR6_BD           (1u << 13)        /* the stop was a MOV DR with DR7.GD set */
#define X86_DR6_BS           (1u << 14)        /* the stop was a single step */
#define X86_DR6_ACTIVE_LOW   0xffff0ff0u       /* DR6's bits that read as 1 when nothing set them */
#define X86_DR7_FIXED_1      (1u << 10)        /* reserved, reads as 1 */
#define X86_DR7_GE           (1u << 9)         /* exact global breakpoints (a hint since the P6) */
#define X86_DR7_GD           (1u << 13)        /* general detect: a MOV DR raises #DB first */
#define X86_DR7_L(n)         (1u << (2 * (n))) /* DRn enabled (local) */
#define X86_DR7_G(n)         (2u << (2 * (n))) /* DRn enabled (global) */
#define X86_DR7_RW_SHIFT(n)  (16 + 4 * (n))    /* 2 bits: 00 execute, 01 write, 11 read/write */
#define X86_DR7_LEN_SHIFT(n) (18 + 4 * (n))

/*
 * A GDT segment descriptor is 8 bytes with its fields scattered for 286
 * compatibility (SDM vol. 3, 3.4.5):
 *   bits  0-15 limit 15:0      bits 16-39 base 23:0
 *   bits 40-43 type            bit  44    S (1: code/data, 0: system)
 *   bits 45-46 DPL             bit  47    P (present)
 *   bits 48-51 limit 19:16     bit  52    AVL
 *   bit  53    L (64-bit code) bit  54    D/B (32-bit default size)
 *   bit  55    G (limit counts 4 KiB units)   bits 56-63 base 31:24
 */
#define X86_DESC_LIMIT_LO_SHIFT 0
#define X86_DESC_BASE_LO_SHIFT  16 /* base 23:0 */
#define X86_DESC_TYPE_SHIFT     40
#define X86_DESC_S              (1ull << 44)
#define X86_DESC_DPL_SHIFT      45
#define X86_DESC_P              (1ull << 47)
#define X86_DESC_LIMIT_HI_SHIFT 48 /* limit 19:16 */
#define X86_DESC_AVL            (1ull << 52)
#define X86_DESC_L              (1ull << 53)
#define X86_DESC_DB             (1ull << 54)
#define X86_DESC_G              (1ull << 55)
#define X86_DESC_BASE_HI_SHIFT  56       /* base 31:24 */
#define X86_DESC_LIMIT_MAX      0xfffffu /* the 20-bit limit field */

/* Code/data segment types (S = 1); bit 0 is "accessed", which the CPU sets on load. */
#define X86_SEG_TYPE_ACCESSED   0x1
#define X86_SEG_TYPE_DATA_RW    0x2 /* data, read/write */
#define X86_SEG_TYPE_DATA_DOWN  0x4 /* data, expand-down */
#define X86_SEG_TYPE_CODE       0x8 /* code, execute-only */
#define X86_SEG_TYPE_CODE_XR    0xa /* code, execute/read */
#define X86_SEG_TYPE_CONFORMING 0x4 /* with X86_SEG_TYPE_CODE: conforming code */
/* System descriptor types (S = 0): IDT gates. */
#define X86_GATE_TASK   0x5
#define X86_GATE_INTR16 0x6
#define X86_GATE_TRAP16 0x7
#define X86_GATE_INTR32 0xe /* in long mode: the 64-bit interrupt gate */
#define X86_GATE_TRAP32 0xf /* bit 0 of a gate type: trap gate, IF left as it was */

/*
 * 4-level paging (IA-32e, SDM vol. 3, 4.5): a 48-bit virtual address is four
 * 9-bit indices (PML4, PDPT, PD, PT) and a 12-bit offset. Each table is one
 * 4 KiB page of 512 8-byte entries.
 */
#define X86_PTE_P         (1ull << 0)
#define X86_PTE_RW        (1ull << 1)
#define X86_PTE_US        (1ull << 2)
#define X86_PTE_PWT       (1ull << 3)
#define X86_PTE_PCD       (1ull << 4)
#define X86_PTE_A         (1ull << 5)
#define X86_PTE_D         (1ull << 6)
#define X86_PTE_PS        (1ull << 7) /* in a PDE (PDPTE): this entry maps a 2 MiB (1 GiB) page */
#define X86_PTE_G         (1ull << 8)
#define X86_PTE_NX        (1ull << 63)
#define X86_PTE_ADDR_MASK 0x000ffffffffff000ull /* bits 51:12: the next table or the page frame */
/* 32-bit paging (no PAE): 1024 4-byte entries a table; with CR4.PAE, CR3 points at a 32-byte PDPT. */
#define X86_PTE32_ADDR_MASK    0xfffff000u
#define X86_PDE32_4M_ADDR_MASK 0xffc00000u /* a PDE with PS (and CR4.PSE): a 4 MiB page */
#define X86_CR3_PAE_PDPT_MASK  0xffffffe0u
#define X86_PT_ENTRIES         512
#define X86_PT_INDEX_BITS      9
#define X86_PAGE_SHIFT         12
#define X86_PAGE_SIZE          0x1000ull
#define X86_LARGE_PAGE_SHIFT   21
#define X86_LARGE_PAGE_SIZE    0x200000ull   /* 2 MiB: a PDE with PS */
#define X86_HUGE_PAGE_SIZE     0x40000000ull /* 1 GiB: a PDPTE with PS */
/* Index of `gva` in the table of `level` (4 = PML4, 3 = PDPT, 2 = PD, 1 = PT). */
#define X86_PT_INDEX(gva, level) (((gva) >> (X86_PAGE_SHIFT + X86_PT_INDEX_BITS * ((level)-1))) & 0x1ff)

/*
 * minivmm's boot layout for guests that start in protected or long mode
 * (lab 2's and lab 3's set-up functions, the CLI and the tests all use it;
 * guest linker scripts link at MVM_BOOT_LOAD_GPA).
 *   0x001000  the guest image, entered at its first byte (as in lab 1), up
 *             to 0x60000; the VMM's initial stack grows down from 0x6f000
 *   0x06f000  the boot GDT the VMM writes: null, code32, data, code64. Not
 *             in page 0: GDTR holds a linear address, so with paging on the
 *             GDT must be mapped, and lab 3 leaves page 0 unmapped
 *   0x070000  the page-table pool: lab 3's page tables, 16 pages
 */
#define MVM_BOOT_GDT_GPA      0x6f000
#define MVM_BOOT_GDT_ENTRIES  4
#define MVM_BOOT_LOAD_GPA     0x1000
#define MVM_BOOT_STACK_TOP    0x6f000
#define MVM_BOOT_PT_POOL_GPA  0x70000
#define MVM_BOOT_PT_POOL_SIZE 0x10000
/* Selectors of the boot GDT: index * 8, table indicator 0, RPL 0. */
#define MVM_SEL_CODE32 0x08
#define MVM_SEL_DATA   0x10
#define MVM_SEL_CODE64 0x18
/*
 * Lab 3's page tables: [0, 1 GiB) identity-mapped (the first 2 MiB with
 * 4 KiB pages, page 0 left unmapped to catch NULL; the rest with 2 MiB
 * pages, whether or not a memory slot backs it), and the same physical
 * range again at the higher-half alias MVM_HIGHER_HALF_GVA + gpa.
 */
#define MVM_IDENTITY_MAP_SIZE 0x40000000ull
#define MVM_HIGHER_HALF_GVA   0xffffffff80000000ull

#ifndef __ASSEMBLER__
#include <stdint.h>

_Static_assert(X86_DESC_BASE_HI_SHIFT + 8 == 64, "GDT descriptor: base 31:24 fills the top byte");
_Static_assert((X86_DESC_G | X86_DESC_DB | X86_DESC_L | X86_DESC_AVL) == 0xfull << 52,
               "GDT descriptor: the flags nibble is bits 52-55");
_Static_assert(X86_PT_ENTRIES * sizeof(uint64_t) == X86_PAGE_SIZE, "a page table is one page of 8-byte entries");
_Static_assert(X86_PT_INDEX(MVM_HIGHER_HALF_GVA, 4) == 511 && X86_PT_INDEX(MVM_HIGHER_HALF_GVA, 3) == 510,
               "the higher-half alias lives in the last PML4 slot, second-to-last PDPT slot");
_Static_assert(MVM_BOOT_GDT_GPA >= X86_PAGE_SIZE && MVM_BOOT_GDT_GPA + MVM_BOOT_GDT_ENTRIES * 8 <= MVM_BOOT_PT_POOL_GPA,
               "boot GDT: outside the unmapped page 0, below the page tables");
_Static_assert(MVM_BOOT_PT_POOL_GPA % X86_PAGE_SIZE == 0, "page tables are page-aligned");
#endif

#endif
