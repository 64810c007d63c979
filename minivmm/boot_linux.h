/* The x86 Linux boot protocol (Documentation/arch/x86/boot.rst): a bzImage, its initrd and command line, 64-bit entry.
 */
#ifndef MINIVMM_BOOT_LINUX_H
#define MINIVMM_BOOT_LINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mvm.h"

/* The guest-physical layout the loader uses (all below 1 MiB except the kernel and the initrd). */
#define MVM_LINUX_GDT_GPA     0x500ULL  /* the boot GDT: null, null, __BOOT_CS (0x10), __BOOT_DS (0x18) */
#define MVM_LINUX_PARAMS_GPA  0x7000ULL /* struct boot_params, the "zero page" */
#define MVM_LINUX_PML4_GPA    0x9000ULL /* identity page tables: PML4, one PDPT, four PDs of 2 MiB pages (4 GiB) */
#define MVM_LINUX_PDPT_GPA    0xa000ULL
#define MVM_LINUX_PD_GPA      0xb000ULL   /* .. 0xefff */
#define MVM_LINUX_CMDLINE_GPA 0x20000ULL  /* the command line, NUL-terminated */
#define MVM_LINUX_KERNEL_GPA  0x100000ULL /* the protected-mode kernel (code32_start; 64-bit entry at +0x200) */
#define MVM_LINUX_EBDA_GPA    0x9fc00ULL  /* RAM in the e820 map ends here below 1 MiB (the BIOS area above) */
/* KVM's own pages on Intel (the real-mode TSS, the EPT identity map), out of RAM's way, under 4 GiB. */
#define MVM_LINUX_TSS_GPA   0xfffbd000ULL
#define MVM_LINUX_IDMAP_GPA 0xfffbc000ULL

/* The ACPI hardware-reduced registers on I/O ports (boot_acpi.c): sleep control (SLP_EN, bit 5, with
 * SLP_TYP 5 is S5: power off), sleep status, and the reset register with the value that resets. */
#define MVM_LINUX_ACPI_SLEEP_PORT  0x600
#define MVM_LINUX_ACPI_RESET_PORT  0x602
#define MVM_LINUX_ACPI_PORTS       3
#define MVM_LINUX_ACPI_SLP_EN      0x20
#define MVM_LINUX_ACPI_RESET_VALUE 0x01

/* COM1's ISA interrupt, named in the DSDT (boot_acpi.c). */
#define MVM_LINUX_COM1_IRQ 4

/* The boot protocol's selectors for 64-bit entry. */
#define MVM_LINUX_BOOT_CS 0x10
#define MVM_LINUX_BOOT_DS 0x18

/* e820 types (arch/x86/include/asm/e820/types.h; not in the uapi headers). */
#define MVM_E820_RAM      1
#define MVM_E820_RESERVED 2

/* The oldest protocol with a 64-bit entry point (2.12: XLF_KERNEL_64 in xloadflags). */
#define MVM_LINUX_MIN_PROTOCOL 0x020c

/* What the setup header says, and where the loader put things. */
struct mvm_linux_image {
    uint16_t protocol;        /* setup_header.version, e.g. 0x020f */
    uint32_t setup_size;      /* bytes of real-mode setup ((setup_sects + 1) * 512) before the kernel proper */
    uint32_t kernel_size;     /* bytes of the protected-mode kernel */
    uint32_t init_size;       /* memory the kernel needs from its load address while it decompresses */
    uint32_t initrd_addr_max; /* the highest address the initrd may end at (inclusive) */
    uint32_t cmdline_size;    /* the longest command line it takes, without the NUL */
    uint32_t kernel_alignment;
    char version[160]; /* the kernel's version string from the header ("6.1.0-... (debian-kernel@...) #1 SMP ..."), or
                          "" */
    uint64_t acpi_rsdp_gpa; /* set before vm_linux_load: the RSDP it names in boot_params (0: no ACPI) */
    /* Filled by vm_linux_load: */
    uint64_t entry_gpa; /* the 64-bit entry point: the kernel's load address + 0x200 */
    uint64_t initrd_gpa, initrd_size;
    uint64_t ram_size;
};

/*
 * Checks a bzImage's setup header (boot_flag 0xAA55, "HdrS", protocol >= 2.12
 * with XLF_KERNEL_64, LOADED_HIGH, the setup size inside the file) and fills
 * *img. Pure: any bytes at all. Returns 0, or -EINVAL with a message naming
 * the field, its offset, what it holds and what was expected.
 */
int mvm_linux_parse(const void *bz, size_t size, struct mvm_linux_image *img);

/*
 * The VM-wide state a PC kernel needs from KVM, before any vCPU exists:
 * KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR, then with `irqchip` the
 * in-kernel PIC/IOAPIC/LAPIC (KVM_CREATE_IRQCHIP) and PIT (KVM_CREATE_PIT2).
 * Returns 0, or -errno with a message naming the ioctl.
 */
int vm_linux_prepare(struct mvm_vm *vm, bool irqchip);

/*
 * Lays a bzImage out in guest RAM as a boot loader does for the 64-bit
 * protocol: the protected-mode kernel at MVM_LINUX_KERNEL_GPA, the initrd
 * (may be NULL) at the top of RAM below initrd_addr_max, page-aligned and
 * clear of the kernel's init_size, the command line, a boot_params whose
 * setup header is the image's own with the loader's fields set, an e820 map
 * of RAM (`ram_size` bytes from 0, the BIOS area below 1 MiB reserved), the
 * boot GDT and identity page tables for the first 4 GiB. `img` comes from
 * mvm_linux_parse of the same bytes. Returns 0, or -errno with a message
 * (-EINVAL: it does not fit: RAM too small, command line too long).
 */
int vm_linux_load(struct mvm_vm *vm, struct mvm_linux_image *img, const void *bz, size_t bz_size, const void *initrd,
                  size_t initrd_size, const char *cmdline, uint64_t ram_size);

/*
 * Writes ACPI tables into the BIOS area (0xe0000): RSDP, XSDT, a hardware-reduced FADT whose sleep
 * and reset registers are the MVM_LINUX_ACPI_* ports, a MADT (one LAPIC, KVM's IOAPIC at 0xfec00000)
 * and a DSDT naming one virtio-mmio device ("LNRO0005") at [mmio_gpa, + mmio_len) on `irq`, and \_S5.
 * Sets *rsdp_gpa. Returns 0, or -errno with a message.
 */
int vm_linux_acpi_write(struct mvm_vm *vm, uint64_t mmio_gpa, uint32_t mmio_len, uint32_t irq, uint64_t *rsdp_gpa);

/*
 * The vCPU as the 64-bit boot protocol wants it: CPUID from
 * KVM_GET_SUPPORTED_CPUID with its APIC ID and the KVM leaves kept, long mode
 * on the identity tables, CS = __BOOT_CS, DS/ES/SS = __BOOT_DS (flat 4 GiB),
 * interrupts off, RSI = the boot_params address, RIP = the 64-bit entry.
 * Returns 0, or -errno with a message.
 */
int vcpu_linux_setup(struct mvm_vcpu *vcpu, const struct mvm_linux_image *img);

#endif
