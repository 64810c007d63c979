/* Lab 2 guest: runs in 32-bit protected mode set up by the VMM, checks CR0/CS, and reloads segments from the VMM's GDT.
 */
#include "runtime/runtime.h"

/* Reloads CS with a far return: the CPU reads the descriptor of `sel` from the GDT. */
static void cs_reload(uint16_t sel)
{
    __asm__ volatile("pushl %0\n\t"
                     "pushl $1f\n\t"
                     "lretl\n"
                     "1:"
                     :
                     : "r"((uint32_t)sel)
                     : "memory");
}

void guest_main(void)
{
    struct desc_table_ptr gdtr;
    const uint64_t *gdt;

    guest_printf("Hello from 32-bit protected mode!\n");
    GUEST_ASSERT_EQ(cr0_read() & X86_CR0_PE, X86_CR0_PE, "CR0.PE must be set in protected mode");
    GUEST_ASSERT_EQ(cs_read(), MVM_SEL_CODE32, "CS selector");
    __asm__ volatile("sgdt %0" : "=m"(gdtr));
    GUEST_ASSERT_EQ(gdtr.base, MVM_BOOT_GDT_GPA, "GDTR.base: the VMM's boot GDT");
    GUEST_ASSERT_EQ(gdtr.limit, MVM_BOOT_GDT_ENTRIES * 8 - 1, "GDTR.limit: 4 descriptors");
    gdt = addr_ptr(gdtr.base);
    guest_printf("GDT at 0x%x: code32 %08x%08x data %08x%08x\n", (unsigned)gdtr.base, (unsigned)(gdt[1] >> 32),
                 (unsigned)gdt[1], (unsigned)(gdt[2] >> 32), (unsigned)gdt[2]);
    /* Loading a selector makes the CPU read the VMM's descriptor: a wrong one faults right here. */
    ds_write(MVM_SEL_DATA);
    es_write(MVM_SEL_DATA);
    cs_reload(MVM_SEL_CODE32);
    guest_printf("reloaded CS and DS from the GDT: still running\n");
}
