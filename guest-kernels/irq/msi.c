/* Interrupt probe: MSIs from the VMM (KVM_SIGNAL_MSI): physical, logical and broadcast destinations, a disabled APIC.
 */
#include "irq.h"

static volatile unsigned taken;

__attribute__((interrupt)) static void h60(struct interrupt_frame *f)
{
    (void)f;
    taken++;
    lapic_write(LAPIC_EOI, 0);
}

static void try_msi(const char *what, uint32_t addr, uint32_t data)
{
    msi_send(addr, data);
    int32_t st = irq_status();
    irq_window();
    guest_printf("%s: address 0x%x data 0x%x: status %d, %u taken\n", what, addr, data, st, taken);
}

void guest_main(void)
{
    irq_handler_set(0x60, h60);
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    try_msi("software-disabled APIC", 0xfee00000, 0x60);
    lapic_enable();
    try_msi("physical APIC 0", 0xfee00000, 0x60);
    try_msi("physical APIC 3 (none)", 0xfee03000, 0x60);
    lapic_write(LAPIC_LDR, 0x01000000);
    try_msi("logical 0x01 (flat)", 0xfee01004, 0x60);
    try_msi("logical 0x02", 0xfee02004, 0x60);
    try_msi("broadcast", 0xfeeff000, 0x60);
    GUEST_ASSERT_EQ(taken, 3, "three MSIs delivered");
}
