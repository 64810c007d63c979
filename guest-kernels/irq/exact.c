/*
 * Interrupt probe: the exact instruction boundary where an interrupt comes in. Each case makes one interrupt
 * deliverable with one instruction (STI, POPF, IRET, an APIC, IOAPIC or PIC write, WRMSR, HLT, an OUT during whose
 * exit the VMM raises a line) and then runs a straight line of `inc %esi`: the handler records ESI and the return
 * EIP, so the line says after how many of them the interrupt came. KVM takes it at the first boundary where it may
 * (after the instruction the STI shadow covers); a CPU that looked only now and then would show a larger count.
 */
#include "irq.h"

#define V_LOW  0x40 /* the probe's vectors: V_HIGH outranks V_LOW (priority class 8 above 4) */
#define V_IO   0x50
#define V_HIGH 0x80
#define V_PIC  0x23 /* the master PIC's IRQ 3 */

#define RTE(pin)  (0x10 + 2 * (pin))
#define RTE_LEVEL (1u << 15)
#define RTE_MASK  (1u << 16)
#define ICR_SELF  (1u << 18) /* destination shorthand: self */
#define X2APIC(r) (0x800u + ((r) >> 4))

volatile uint32_t exact_esi, exact_eip, exact_vec, exact_count;

/* One stub per vector: ESI, the return EIP and the vector recorded, no EOI (the case sends it). */
#define EXACT_STUB(vec)                                                                                                \
    __asm__(".text\n.globl exact_stub_" #vec "\nexact_stub_" #vec ":\n"                                                \
            "mov %esi, exact_esi\n"                                                                                    \
            "push %eax\n"                                                                                              \
            "mov 4(%esp), %eax\n"                                                                                      \
            "mov %eax, exact_eip\n"                                                                                    \
            "movl $" #vec ", exact_vec\n"                                                                              \
            "incl exact_count\n"                                                                                       \
            "pop %eax\n"                                                                                               \
            "iret\n");                                                                                                 \
    extern char exact_stub_##vec[];
EXACT_STUB(0x40)
EXACT_STUB(0x50)
EXACT_STUB(0x80)
EXACT_STUB(0x23)

/* Eight counted instructions after the label that marks the boundary under test. */
#define INCS "inc %%esi\n inc %%esi\n inc %%esi\n inc %%esi\n inc %%esi\n inc %%esi\n inc %%esi\n inc %%esi\n"

static void exact_reset(void)
{
    exact_esi = exact_eip = exact_vec = exact_count = 0;
}

/* The case's line: which vector came, after how many INCs, and where its return EIP points (from the label). */
static void exact_report(const char *name, uint32_t label)
{
    if (!exact_count) {
        guest_printf("%s: no interrupt\n", name);
        return;
    }
    guest_printf("%s: vector 0x%x, %u taken, after %u instructions (return EIP label+%d)\n", name, exact_vec,
                 exact_count, exact_esi, (int)(exact_eip - label));
    exact_reset();
}

static void self_ipi(unsigned vec)
{
    lapic_write(LAPIC_ICR2, 0);
    lapic_write(LAPIC_ICR, vec | ICR_SELF);
}

static uint32_t rdmsr32(uint32_t idx)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(idx));
    return lo;
}

/* Interrupt already pending, IF clear: STI, then one instruction in its shadow, then the interrupt. */
static void case_sti(void)
{
    uint32_t label;
    self_ipi(V_LOW);
    __asm__ volatile("xor %%esi, %%esi\n sti\n1:\n" INCS "cli\n mov $1b, %0" : "=r"(label) : : "esi", "memory");
    exact_report("sti", label);
    lapic_write(LAPIC_EOI, 0);
}

/* STI, then MOV SS in its shadow. */
static void case_sti_movss(void)
{
    uint32_t label;
    self_ipi(V_LOW);
    __asm__ volatile("mov %%ss, %%eax\n xor %%esi, %%esi\n sti\n mov %%eax, %%ss\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     :
                     : "eax", "esi", "memory");
    exact_report("sti; mov ss", label);
    lapic_write(LAPIC_EOI, 0);
}

/* STI, then POP SS in its shadow. */
static void case_sti_popss(void)
{
    uint32_t label;
    self_ipi(V_LOW);
    __asm__ volatile("push %%ss\n xor %%esi, %%esi\n sti\n pop %%ss\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     :
                     : "esi", "memory");
    exact_report("sti; pop ss", label);
    lapic_write(LAPIC_EOI, 0);
}

/* POPF that sets IF: no shadow. */
static void case_popf(void)
{
    uint32_t label;
    self_ipi(V_LOW);
    __asm__ volatile("pushf\n orl $0x200, (%%esp)\n xor %%esi, %%esi\n popf\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     :
                     : "esi", "memory");
    exact_report("popf", label);
    lapic_write(LAPIC_EOI, 0);
}

/* IRET to the next instruction with IF set in the frame. */
static void case_iret(void)
{
    uint32_t label;
    self_ipi(V_LOW);
    __asm__ volatile("pushf\n orl $0x200, (%%esp)\n push %%cs\n push $1f\n xor %%esi, %%esi\n iret\n1:\n" INCS
                     "cli\n mov $1b, %0"
                     : "=r"(label)
                     :
                     : "esi", "memory");
    exact_report("iret", label);
    lapic_write(LAPIC_EOI, 0);
}

/* Interrupt pending, STI then HLT in its shadow: the HLT ends at once, the frame points after it. */
static void case_hlt(void)
{
    uint32_t label;
    self_ipi(V_LOW);
    __asm__ volatile("xor %%esi, %%esi\n sti\n hlt\n1:\n" INCS "cli\n mov $1b, %0" : "=r"(label) : : "esi", "memory");
    exact_report("sti; hlt", label);
    lapic_write(LAPIC_EOI, 0);
}

/* IF set, nothing pending: the ICR write itself raises the interrupt. */
static void case_self_ipi(void)
{
    uint32_t label;
    volatile uint32_t *icr = addr_ptr(LAPIC_BASE + LAPIC_ICR);
    lapic_write(LAPIC_ICR2, 0);
    __asm__ volatile("sti\n nop\n xor %%esi, %%esi\n movl %1, (%2)\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     : "r"(V_LOW | ICR_SELF), "r"(icr)
                     : "esi", "memory");
    exact_report("self IPI (ICR write)", label);
    lapic_write(LAPIC_EOI, 0);
}

/* IF set, the interrupt held by TPR 0xf0: the TPR write lets it in. */
static void case_tpr(void)
{
    uint32_t label;
    volatile uint32_t *tpr = addr_ptr(LAPIC_BASE + LAPIC_TPR);
    lapic_write(LAPIC_TPR, 0xf0);
    self_ipi(V_LOW);
    __asm__ volatile("sti\n nop\n nop\n xor %%esi, %%esi\n movl $0, (%1)\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     : "r"(tpr)
                     : "esi", "memory");
    exact_report("TPR write (xAPIC page)", label);
    lapic_write(LAPIC_EOI, 0);
}

/* V_HIGH in service holds V_LOW back; the EOI of V_HIGH lets it in. */
static void case_eoi(void)
{
    uint32_t label;
    volatile uint32_t *eoi = addr_ptr(LAPIC_BASE + LAPIC_EOI);
    self_ipi(V_LOW);
    self_ipi(V_HIGH);
    /* V_HIGH comes first, and stays in service */
    __asm__ volatile("xor %%esi, %%esi\n sti\n1:\n" INCS "cli\n mov $1b, %0" : "=r"(label) : : "esi", "memory");
    exact_report("two pending, the higher first", label);
    __asm__ volatile("sti\n nop\n nop\n xor %%esi, %%esi\n movl $0, (%1)\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     : "r"(eoi)
                     : "esi", "memory");
    exact_report("EOI of a higher vector", label);
    lapic_write(LAPIC_EOI, 0);
}

/* A level-triggered IOAPIC pin, asserted while masked: the redirection entry's write that unmasks it. */
static void case_ioapic(void)
{
    uint32_t label;
    volatile uint32_t *sel = addr_ptr(IOAPIC_BASE), *win = addr_ptr(IOAPIC_BASE + 0x10);
    ioapic_write(RTE(19) + 1, 0);
    ioapic_write(RTE(19), V_IO | RTE_LEVEL | RTE_MASK);
    irq_request(19, MVM_IRQ_OP_RAISE);
    __asm__ volatile("sti\n nop\n xor %%esi, %%esi\n movl %2, (%3)\n movl %1, (%4)\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     : "r"(V_IO | RTE_LEVEL), "r"(RTE(19)), "r"(sel), "r"(win)
                     : "esi", "memory");
    exact_report("IOAPIC entry unmasked, level high", label);
    irq_request(19, MVM_IRQ_OP_LOWER);
    lapic_write(LAPIC_EOI, 0);
    ioapic_write(RTE(19), V_IO | RTE_MASK);
}

/* An edge the VMM raises on an unmasked IOAPIC pin while it handles the guest's OUT (KVM_IRQ_LINE in the exit). */
static void case_line_in_exit(void)
{
    uint32_t label;
    ioapic_write(RTE(18) + 1, 0);
    ioapic_write(RTE(18), V_IO);
    __asm__ volatile("sti\n nop\n xor %%esi, %%esi\n out %%eax, %%dx\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     : "a"(18 | MVM_IRQ_OP_PULSE << 8), "d"(MVM_PORT_IRQ)
                     : "esi", "memory");
    exact_report("IOAPIC edge raised during an OUT exit", label);
    lapic_write(LAPIC_EOI, 0);
    ioapic_write(RTE(18), V_IO | RTE_MASK);
}

/* An edge latched in the master PIC's IRR while masked: the OUT to its mask register. */
static void case_pic(void)
{
    uint32_t label;
    outb(0x20, 0x11); /* ICW1: edge, cascade, ICW4 follows */
    outb(0x21, 0x20); /* ICW2: vectors 0x20-0x27 */
    outb(0x21, 0x04); /* ICW3: the slave on IRQ 2 */
    outb(0x21, 0x01); /* ICW4: 8086 mode */
    outb(0x21, 0xff);
    irq_request(3, MVM_IRQ_OP_PULSE);
    __asm__ volatile("sti\n nop\n xor %%esi, %%esi\n mov $0xf7, %%al\n out %%al, $0x21\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     :
                     : "eax", "esi", "memory");
    exact_report("PIC mask register (OUT)", label);
    outb(0x21, 0xff);
    outb(0x20, 0x20);
}

/* TSC-deadline mode, a deadline already past: the WRMSR fires the timer. */
static void case_tsc_deadline(void)
{
    uint32_t label;
    lapic_write(LAPIC_LVTT, V_LOW | LVT_TSCDL);
    __asm__ volatile("sti\n nop\n xor %%esi, %%esi\n wrmsr\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     : "c"(MSR_TSCDL), "a"(1), "d"(0)
                     : "esi", "memory");
    exact_report("TSC deadline in the past (WRMSR)", label);
    lapic_write(LAPIC_EOI, 0);
    lapic_write(LAPIC_LVTT, V_LOW | LVT_MASKED);
}

/* x2APIC mode: TPR, self IPI and the SELF IPI register, each a WRMSR. */
static void case_x2apic(void)
{
    uint32_t label;
    wrmsr64(X2APIC(LAPIC_TPR), 0xf0);
    wrmsr64(X2APIC(LAPIC_ICR), V_LOW | ICR_SELF);
    __asm__ volatile("sti\n nop\n xor %%esi, %%esi\n wrmsr\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     : "c"(X2APIC(LAPIC_TPR)), "a"(0), "d"(0)
                     : "esi", "memory");
    exact_report("x2APIC TPR (WRMSR)", label);
    wrmsr64(X2APIC(LAPIC_EOI), 0);
    __asm__ volatile("sti\n nop\n xor %%esi, %%esi\n wrmsr\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     : "c"(X2APIC(LAPIC_ICR)), "a"(V_LOW | ICR_SELF), "d"(0)
                     : "esi", "memory");
    exact_report("x2APIC self IPI (ICR)", label);
    wrmsr64(X2APIC(LAPIC_EOI), 0);
    __asm__ volatile("sti\n nop\n xor %%esi, %%esi\n wrmsr\n1:\n" INCS "cli\n mov $1b, %0"
                     : "=r"(label)
                     : "c"(0x83fu), "a"(V_LOW), "d"(0)
                     : "esi", "memory");
    exact_report("x2APIC SELF IPI register", label);
    wrmsr64(X2APIC(LAPIC_EOI), 0);
}

void guest_main(void)
{
    irq_handler_set(V_LOW, exact_stub_0x40);
    irq_handler_set(V_IO, exact_stub_0x50);
    irq_handler_set(V_HIGH, exact_stub_0x80);
    irq_handler_set(V_PIC, exact_stub_0x23);
    outb(0x21, 0xff); /* both PICs masked until the PIC's case */
    outb(0xa1, 0xff);
    lapic_enable();
    exact_reset();
    case_sti();
    case_sti_movss();
    case_sti_popss();
    case_popf();
    case_iret();
    case_hlt();
    case_self_ipi();
    case_tpr();
    case_eoi();
    case_ioapic();
    case_line_in_exit();
    case_pic();
    uint32_t r[4];
    cpuid4(1, r);
    if (r[2] & (1u << 24))
        case_tsc_deadline();
    else
        guest_printf("no TSC deadline in CPUID\n");
    if (r[2] & (1u << 21)) {
        wrmsr64(MSR_APICBASE, rdmsr32(MSR_APICBASE) | (1u << 10)); /* x2APIC mode */
        case_x2apic();
    } else {
        guest_printf("no x2APIC in CPUID\n");
    }
}
