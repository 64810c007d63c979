/* Interrupt probe: the local APIC in x2APIC mode: its MSRs, self-IPIs, the 64-bit ICR, the timer, the MMIO hole. */
#include "irq.h"

#define X2(reg) (0x800u + (reg) / 16)

static volatile unsigned taken[3];

static void eoi(void)
{
    wrmsr64(X2(LAPIC_EOI), 0);
}

__attribute__((interrupt)) static void h70(struct interrupt_frame *f)
{
    (void)f;
    taken[0]++;
    eoi();
}

__attribute__((interrupt)) static void h71(struct interrupt_frame *f)
{
    (void)f;
    taken[1]++;
    eoi();
}

__attribute__((interrupt)) static void h72(struct interrupt_frame *f)
{
    (void)f;
    taken[2]++;
    eoi();
}

void guest_main(void)
{
    uint32_t r[4];
    cpuid4(1, r);
    if (!(r[2] & (1u << 21))) {
        guest_printf("no x2APIC in CPUID leaf 1\n");
        return;
    }
    irq_handler_set(0x70, h70);
    irq_handler_set(0x71, h71);
    irq_handler_set(0x72, h72);
    uint64_t base = msr_read(MSR_APICBASE);
    wrmsr64(MSR_APICBASE, base | (1u << 10));
    guest_printf("APIC base 0x%x, then 0x%x; ID 0x%x, version 0x%x, LDR 0x%x\n", (unsigned)base,
                 (unsigned)msr_read(MSR_APICBASE), (unsigned)msr_read(X2(LAPIC_ID)), (unsigned)msr_read(X2(LAPIC_VER)),
                 (unsigned)msr_read(X2(LAPIC_LDR)));
    guest_printf("the xAPIC page now: 0x%x\n", lapic_read(LAPIC_VER));
    wrmsr64(X2(LAPIC_SPIV), 0x1ff);
    wrmsr64(X2(0x3f0), 0x70); /* SELF IPI */
    unsigned irr = (unsigned)(msr_read(X2(LAPIC_IRR + 0x30)) >> 16) & 1;
    irq_window();
    wrmsr64(X2(LAPIC_ICR), ((uint64_t)0 << 32) | 0x71); /* fixed, to APIC 0 */
    uint64_t icr = msr_read(X2(LAPIC_ICR));
    irq_window();
    guest_printf("self IPI: IRR bit %u, %u taken; ICR 0x%x:%x, %u taken\n", irr, taken[0], (unsigned)(icr >> 32),
                 (unsigned)icr, taken[1]);
    wrmsr64(X2(LAPIC_TPR), 0x80);
    guest_printf("TPR 0x%x, PPR 0x%x\n", (unsigned)msr_read(X2(LAPIC_TPR)), (unsigned)msr_read(X2(LAPIC_PPR)));
    wrmsr64(X2(LAPIC_TPR), 0);
    wrmsr64(X2(LAPIC_TDCR), 0xb);
    wrmsr64(X2(LAPIC_LVTT), 0x72);
    wrmsr64(X2(LAPIC_TMICT), 1000000);
    while (taken[2] < 1)
        sti_hlt_cli();
    guest_printf("timer: %u tick, TMCCT %u\n", taken[2], (unsigned)msr_read(X2(LAPIC_TMCCT)));
}
