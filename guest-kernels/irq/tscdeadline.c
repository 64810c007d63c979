/* Interrupt probe: the local APIC timer in TSC-deadline mode (MSR_IA32_TSC_DEADLINE), as the VMM offers it in CPUID. */
#include "irq.h"

#define VEC 0x41

static volatile unsigned ticks;

__attribute__((interrupt)) static void timer_handler(struct interrupt_frame *f)
{
    (void)f;
    ticks++;
    lapic_write(LAPIC_EOI, 0);
}

void guest_main(void)
{
    uint32_t r[4];
    cpuid4(1, r);
    if (!(r[2] & (1u << 24))) {
        guest_printf("no TSC-deadline timer in CPUID leaf 1\n");
        return;
    }
    irq_handler_set(VEC, timer_handler);
    lapic_enable();
    lapic_write(LAPIC_LVTT, VEC | LVT_TSCDL);
    guest_printf("LVT timer 0x%x: TSC-deadline mode\n", lapic_read(LAPIC_LVTT));
    for (unsigned i = 1; i <= 3; i++) {
        wrmsr64(MSR_TSCDL, rdtsc64() + 3000000);
        while (ticks < i)
            sti_hlt_cli();
        GUEST_ASSERT_EQ(msr_read(MSR_TSCDL), 0, "the deadline MSR reads 0 once it fired");
    }
    wrmsr64(MSR_TSCDL, 1); /* long past: fires at once */
    while (ticks < 4)
        sti_hlt_cli();
    uint64_t far = rdtsc64() + (1ull << 50);
    wrmsr64(MSR_TSCDL, far);
    GUEST_ASSERT_EQ(msr_read(MSR_TSCDL), far, "an armed deadline reads back");
    wrmsr64(MSR_TSCDL, 0); /* disarmed */
    lapic_write(LAPIC_TMICT, 12345);
    GUEST_ASSERT_EQ(lapic_read(LAPIC_TMICT), 0, "TMICT is ignored in TSC-deadline mode");
    wrmsr64(MSR_TSCDL, far);
    lapic_write(LAPIC_LVTT, VEC); /* back to one-shot: the deadline goes */
    GUEST_ASSERT_EQ(msr_read(MSR_TSCDL), 0, "outside TSC-deadline mode the MSR reads 0");
    irq_window();
    guest_printf("TSC deadline: %u ticks (three ahead, one in the past), armed and disarmed\n", ticks);
}
