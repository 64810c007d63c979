/* Lab 2 guest: starts in 16-bit real mode and switches itself to 32-bit protected mode (lgdt, CR0.PE, far jump). */
#include "runtime/runtime.h"

MVM_GUEST_START_MODE("real");

/*
 * The switch, in the only language that can do it: entered at 0x1000 in real
 * mode with CS = DS = 0 (lab 1's set-up). After the far jump CS holds a
 * protected-mode selector whose hidden part came from switch_gdt.
 */
__asm__(".section .text.start16, \"ax\"\n"
        ".code16\n"
        "    cli\n"
        "    xor %ax, %ax\n"
        "    mov %ax, %ds\n"
        "    lgdtl switch_gdt_ptr\n"
        "    mov %cr0, %eax\n"
        "    or $1, %eax\n" /* CR0.PE */
        "    mov %eax, %cr0\n"
        /* Still 16-bit code, with the old CS cache, until this jump loads CS from the GDT. */
        "    ljmpl $0x08, $protected_entry\n"
        ".code32\n"
        "protected_entry:\n"
        "    mov $0x10, %ax\n"
        "    mov %ax, %ds\n"
        "    mov %ax, %es\n"
        "    mov %ax, %fs\n"
        "    mov %ax, %gs\n"
        "    mov %ax, %ss\n"
        "    jmp _start\n"
        ".previous\n");

/* The guest's own GDT: null, flat code (0x08), flat data (0x10), as the SDM's examples encode them. */
const uint64_t switch_gdt[3] __attribute__((aligned(8))) = {
    0, 0x00cf9a000000ffffull, /* base 0, limit 0xfffff pages, G, D, P, DPL 0, code execute/read */
    0x00cf92000000ffffull,    /* same, data read/write */
};
const struct desc_table_ptr switch_gdt_ptr = {sizeof(switch_gdt) - 1, (uintptr_t)switch_gdt};

void guest_main(void)
{
    guest_printf("switched to protected mode by the guest itself\n");
    GUEST_ASSERT_EQ(cr0_read() & X86_CR0_PE, X86_CR0_PE, "CR0.PE after the switch");
    GUEST_ASSERT_EQ(cs_read(), 0x08, "CS selector after the far jump");
    GUEST_ASSERT_EQ(ds_read(), 0x10, "DS selector");
    guest_printf("gdt[1]=%08x%08x gdt[2]=%08x%08x\n", (unsigned)(switch_gdt[1] >> 32), (unsigned)switch_gdt[1],
                 (unsigned)(switch_gdt[2] >> 32), (unsigned)switch_gdt[2]);
}
