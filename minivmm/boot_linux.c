/* The x86 Linux boot protocol: setup header checks, boot_params and the e820 map, 64-bit entry on identity tables. */
#include <asm/bootparam.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "boot_linux.h"
#include "core_internal.h"
#include "x86.h"

_Static_assert(sizeof(struct boot_params) == 4096, "struct boot_params is the one-page zero page");
_Static_assert(offsetof(struct boot_params, hdr) == 0x1f1, "the setup header sits at 0x1f1 of the image");
_Static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "the e820 table at 0x2d0 of the zero page");
_Static_assert(MVM_LINUX_PD_GPA + 4 * X86_PAGE_SIZE <= 0xf000 && MVM_LINUX_PARAMS_GPA + 4096 <= MVM_LINUX_PML4_GPA,
               "boot_params, the page tables and the GDT do not overlap");

#define HDR_BOOT_FLAG             0xaa55
#define HDR_MAGIC                 0x53726448u /* "HdrS" */
#define SETUP_SECTS_DEFAULT       4           /* setup_sects 0 means 4 (boot.rst) */
#define KERNEL_64_ENTRY           0x200       /* startup_64: 0x200 past the protected-mode kernel's start */
#define LOADER_UNDEFINED          0xff        /* type_of_loader: no assigned ID */
#define X86_CPUID1_ECX_HYPERVISOR (1u << 31)

int mvm_linux_parse(const void *bz, size_t size, struct mvm_linux_image *img)
{
    const uint8_t *b = bz;
    const struct setup_header *h;
    struct setup_header hdr;
    uint32_t sects;

    memset(img, 0, sizeof(*img));
    if (size < 0x1f1 + sizeof(hdr))
        return mvm_fail(EINVAL, "bzImage: %zu bytes is too short for a setup header (it ends at byte 0x%zx)", size,
                        0x1f1 + sizeof(hdr));
    h = (const struct setup_header *)(b + 0x1f1);
    memcpy(&hdr, h, sizeof(hdr));
    if (hdr.boot_flag != HDR_BOOT_FLAG)
        return mvm_fail(EINVAL, "bzImage: boot_flag at 0x1fe is 0x%04x, expected 0xaa55 (not a Linux kernel image?)",
                        hdr.boot_flag);
    if (hdr.header != HDR_MAGIC)
        return mvm_fail(EINVAL,
                        "bzImage: header at 0x202 is 0x%08x, expected 0x53726448 (\"HdrS\"): a kernel older than "
                        "the 2.00 boot protocol",
                        hdr.header);
    img->protocol = hdr.version;
    if (hdr.version < MVM_LINUX_MIN_PROTOCOL)
        return mvm_fail(EINVAL,
                        "bzImage: boot protocol %u.%02u (version at 0x206 is 0x%04x); the 64-bit entry needs 2.12 "
                        "(0x020c) or later",
                        hdr.version >> 8, hdr.version & 0xff, hdr.version);
    if (!(hdr.xloadflags & XLF_KERNEL_64))
        return mvm_fail(EINVAL,
                        "bzImage: xloadflags at 0x236 is 0x%04x without XLF_KERNEL_64 (bit 0): not a 64-bit "
                        "kernel, or one without the 64-bit entry point",
                        hdr.xloadflags);
    if (!(hdr.loadflags & LOADED_HIGH))
        return mvm_fail(EINVAL,
                        "bzImage: loadflags at 0x211 is 0x%02x without LOADED_HIGH: a zImage loaded at "
                        "0x10000, which this loader does not do",
                        hdr.loadflags);
    sects = hdr.setup_sects ? hdr.setup_sects : SETUP_SECTS_DEFAULT;
    img->setup_size = (sects + 1) * 512;
    if (img->setup_size >= size)
        return mvm_fail(EINVAL, "bzImage: setup_sects %u puts the kernel at byte %u, past the file's %zu bytes",
                        hdr.setup_sects, img->setup_size, size);
    img->kernel_size = (uint32_t)(size - img->setup_size);
    img->init_size = hdr.init_size;
    img->initrd_addr_max = hdr.initrd_addr_max;
    img->cmdline_size = hdr.cmdline_size;
    img->kernel_alignment = hdr.kernel_alignment;
    if (img->init_size < img->kernel_size)
        img->init_size = img->kernel_size;
    /* kernel_version: a pointer, less 0x200, to a NUL-terminated string inside the setup code. */
    if (hdr.kernel_version && (size_t)hdr.kernel_version + 0x200 < img->setup_size) {
        const char *v = (const char *)b + hdr.kernel_version + 0x200;
        size_t max = img->setup_size - (hdr.kernel_version + 0x200u), n = 0;

        while (n < max && n + 1 < sizeof(img->version) && v[n] >= 0x20 && v[n] < 0x7f)
            n++;
        memcpy(img->version, v, n);
        img->version[n] = '\0';
    }
    return 0;
}

int vm_linux_prepare(struct mvm_vm *vm, bool irqchip)
{
    uint64_t idmap = MVM_LINUX_IDMAP_GPA;
    /* SPEAKER_DUMMY: KVM answers port 0x61 (PIT channel 2's gate and output) too, which TSC calibration reads. */
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    int rc;

    rc = vm_ioctl(vm, KVM_SET_TSS_ADDR, (void *)(uintptr_t)MVM_LINUX_TSS_GPA, "KVM_SET_TSS_ADDR");
    if (rc >= 0)
        rc = vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &idmap, "KVM_SET_IDENTITY_MAP_ADDR");
    if (rc >= 0 && irqchip)
        rc = vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");
    if (rc >= 0 && irqchip)
        rc = vm_ioctl(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2");
    return rc < 0 ? rc : 0;
}

/* The e820 map: low RAM, the BIOS area, RAM from 1 MiB to the end. */
static void e820_fill(struct boot_params *bp, uint64_t ram_size)
{
    static const uint64_t bios_end = 0x100000;
    struct boot_e820_entry *e = bp->e820_table;

    e[0] = (struct boot_e820_entry){.addr = 0, .size = MVM_LINUX_EBDA_GPA, .type = MVM_E820_RAM};
    e[1] = (struct boot_e820_entry){
        .addr = MVM_LINUX_EBDA_GPA, .size = bios_end - MVM_LINUX_EBDA_GPA, .type = MVM_E820_RESERVED};
    e[2] = (struct boot_e820_entry){.addr = bios_end, .size = ram_size - bios_end, .type = MVM_E820_RAM};
    bp->e820_entries = 3;
}

/* The boot GDT and the identity tables: 4 GiB in 2 MiB pages (the kernel, boot_params and the command line in it). */
static int tables_write(struct mvm_vm *vm)
{
    const uint64_t code64 = 0x00af9b000000ffffull, data = 0x00cf93000000ffffull;
    uint64_t gdt[4] = {0, 0, code64, data};
    uint64_t pml4[X86_PT_ENTRIES] = {0}, pdpt[X86_PT_ENTRIES] = {0};
    uint64_t *pd = calloc(4 * X86_PT_ENTRIES, sizeof(*pd));
    int rc;

    _Static_assert(MVM_LINUX_BOOT_CS / 8 == 2 && MVM_LINUX_BOOT_DS / 8 == 3, "selectors index the GDT above");
    if (!pd)
        return mvm_fail(ENOMEM, "boot: out of memory for page tables");
    pml4[0] = MVM_LINUX_PDPT_GPA | X86_PTE_P | X86_PTE_RW;
    for (unsigned i = 0; i < 4; i++)
        pdpt[i] = (MVM_LINUX_PD_GPA + i * X86_PAGE_SIZE) | X86_PTE_P | X86_PTE_RW;
    for (unsigned i = 0; i < 4 * X86_PT_ENTRIES; i++)
        pd[i] = (uint64_t)i * X86_LARGE_PAGE_SIZE | X86_PTE_P | X86_PTE_RW | X86_PTE_PS;
    rc = vm_write(vm, MVM_LINUX_GDT_GPA, gdt, sizeof(gdt));
    if (rc == 0)
        rc = vm_write(vm, MVM_LINUX_PML4_GPA, pml4, sizeof(pml4));
    if (rc == 0)
        rc = vm_write(vm, MVM_LINUX_PDPT_GPA, pdpt, sizeof(pdpt));
    if (rc == 0)
        rc = vm_write(vm, MVM_LINUX_PD_GPA, pd, 4 * X86_PT_ENTRIES * sizeof(*pd));
    free(pd);
    return rc;
}

int vm_linux_load(struct mvm_vm *vm, struct mvm_linux_image *img, const void *bz, size_t bz_size, const void *initrd,
                  size_t initrd_size, const char *cmdline, uint64_t ram_size)
{
    const uint8_t *b = bz;
    struct boot_params *bp = calloc(1, sizeof(*bp));
    uint64_t kernel_end = MVM_LINUX_KERNEL_GPA + img->init_size;
    size_t hdr_len, cmd_len = cmdline ? strlen(cmdline) : 0;
    int rc;

    if (!bp)
        return mvm_fail(ENOMEM, "boot: out of memory for boot_params");
    img->ram_size = ram_size;
    img->entry_gpa = MVM_LINUX_KERNEL_GPA + KERNEL_64_ENTRY;
    rc = 0;
    if (kernel_end > ram_size)
        rc = mvm_fail(EINVAL, "boot: the kernel needs 0x%llx-0x%llx (init_size %u bytes) but RAM ends at 0x%llx",
                      (unsigned long long)MVM_LINUX_KERNEL_GPA, (unsigned long long)kernel_end, img->init_size,
                      (unsigned long long)ram_size);
    else if (cmd_len > img->cmdline_size || cmd_len >= MVM_LINUX_KERNEL_GPA - MVM_LINUX_CMDLINE_GPA)
        rc = mvm_fail(EINVAL, "boot: the command line is %zu bytes; this kernel takes at most %u (cmdline_size)",
                      cmd_len, img->cmdline_size);
    if (rc == 0 && initrd_size) {
        uint64_t top = ram_size < (uint64_t)img->initrd_addr_max + 1 ? ram_size : (uint64_t)img->initrd_addr_max + 1;

        img->initrd_size = initrd_size;
        img->initrd_gpa = top >= initrd_size ? (top - initrd_size) & ~(X86_PAGE_SIZE - 1) : 0;
        if (top < initrd_size || img->initrd_gpa < kernel_end)
            rc = mvm_fail(EINVAL,
                          "boot: the initrd (%zu bytes) does not fit between the kernel's end 0x%llx and 0x%llx "
                          "(RAM's end or initrd_addr_max); give more --mem",
                          initrd_size, (unsigned long long)kernel_end, (unsigned long long)top);
    }
    if (rc == 0)
        rc = vm_write(vm, MVM_LINUX_KERNEL_GPA, b + img->setup_size, img->kernel_size);
    if (rc == 0 && initrd_size)
        rc = vm_write(vm, img->initrd_gpa, initrd, initrd_size);
    if (rc == 0)
        rc = vm_write(vm, MVM_LINUX_CMDLINE_GPA, cmdline ? cmdline : "", cmd_len + 1);
    if (rc == 0) {
        /* The setup header as the image has it: from 0x1f1 to the end its jump at 0x200 says (0x202 + byte 0x201). */
        hdr_len = 0x202u + b[0x201] - 0x1f1u;
        if (hdr_len > sizeof(bp->hdr))
            hdr_len = sizeof(bp->hdr);
        if (0x1f1 + hdr_len > bz_size)
            hdr_len = bz_size - 0x1f1;
        memcpy(&bp->hdr, b + 0x1f1, hdr_len);
        bp->hdr.type_of_loader = LOADER_UNDEFINED;
        bp->hdr.loadflags |= CAN_USE_HEAP;
        bp->hdr.loadflags &= (uint8_t)~KEEP_SEGMENTS;
        bp->hdr.heap_end_ptr = 0xfe00;
        bp->hdr.cmd_line_ptr = (uint32_t)MVM_LINUX_CMDLINE_GPA;
        bp->hdr.code32_start = (uint32_t)MVM_LINUX_KERNEL_GPA;
        bp->hdr.ramdisk_image = (uint32_t)img->initrd_gpa;
        bp->hdr.ramdisk_size = (uint32_t)img->initrd_size;
        bp->hdr.vid_mode = 0xffff; /* "normal" */
        bp->acpi_rsdp_addr = img->acpi_rsdp_gpa;
        e820_fill(bp, ram_size);
        rc = vm_write(vm, MVM_LINUX_PARAMS_GPA, bp, sizeof(*bp));
    }
    if (rc == 0)
        rc = tables_write(vm);
    free(bp);
    return rc;
}

/*
 * CPUID: what KVM supports, with this vCPU's APIC ID in leaf 1 and the "hypervisor present" bit, which KVM
 * leaves to the VMM: without it Linux never looks at the KVM leaves (0x40000000: "KVMKVMKVM", 0x40000001:
 * kvmclock and the other PV features) and boots "on bare hardware", calibrating the TSC against a PIT.
 */
static int cpuid_setup(struct mvm_vcpu *vcpu)
{
    enum { MAX_ENTRIES = 256 };
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + MAX_ENTRIES * sizeof(cpuid->entries[0]));
    struct mvm_vm *vm = vcpu->vm;
    int rc;

    if (!cpuid)
        return mvm_fail(ENOMEM, "boot: out of memory for CPUID");
    cpuid->nent = MAX_ENTRIES;
    rc = MVM_IOCTL(vm->be, vm->sys_fd, KVM_GET_SUPPORTED_CPUID, cpuid);
    if (rc < 0) {
        free(cpuid);
        return rc;
    }
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

        if (e->function == 1) {
            e->ebx = (e->ebx & 0x00ffffffu) | (uint32_t)vcpu->id << 24; /* initial APIC ID */
            e->ecx |= X86_CPUID1_ECX_HYPERVISOR;
        }
    }
    rc = vcpu_ioctl(vcpu, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
    free(cpuid);
    return rc < 0 ? rc : 0;
}

int vcpu_linux_setup(struct mvm_vcpu *vcpu, const struct mvm_linux_image *img)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    struct kvm_segment code = {
        .base = 0,
        .limit = 0xffffffff,
        .selector = MVM_LINUX_BOOT_CS,
        .type = X86_SEG_TYPE_CODE_XR | X86_SEG_TYPE_ACCESSED,
        .present = 1,
        .s = 1,
        .l = 1,
        .g = 1,
    };
    struct kvm_segment data = {
        .base = 0,
        .limit = 0xffffffff,
        .selector = MVM_LINUX_BOOT_DS,
        .type = X86_SEG_TYPE_DATA_RW | X86_SEG_TYPE_ACCESSED,
        .present = 1,
        .s = 1,
        .db = 1,
        .g = 1,
    };
    int rc = cpuid_setup(vcpu);

    if (rc == 0)
        rc = vcpu_sregs_get(vcpu, &sregs);
    if (rc < 0)
        return rc;
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.ss = sregs.fs = sregs.gs = data;
    sregs.gdt.base = MVM_LINUX_GDT_GPA;
    sregs.gdt.limit = 4 * 8 - 1;
    sregs.cr3 = MVM_LINUX_PML4_GPA;
    sregs.cr4 = X86_CR4_PAE;
    sregs.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_PG;
    sregs.efer = X86_EFER_LME | X86_EFER_LMA;
    rc = vcpu_sregs_set(vcpu, &sregs);
    if (rc < 0)
        return rc;
    memset(&regs, 0, sizeof(regs));
    regs.rflags = X86_RFLAGS_FIXED; /* interrupts off */
    regs.rip = img->entry_gpa;
    regs.rsi = MVM_LINUX_PARAMS_GPA;
    return vcpu_regs_set(vcpu, &regs);
}
