/* Lab 3 guest: runs in 64-bit long mode on the VMM's page tables; reads and prints through the higher-half alias. */
#include "runtime/runtime.h"

static const char greeting[] = "Hello from 64-bit long mode!\n";
static volatile uint64_t shared_word;
/* Sent to the VMM by its higher-half address: the VMM must walk the page tables to find it. */
static struct mvm_ucall alias_print = {.cmd = MVM_UCALL_PRINT, .msg = "printed from a higher-half address"};

/* The same guest-physical byte, seen at MVM_HIGHER_HALF_GVA + its identity address. */
static void *alias_of(const volatile void *p)
{
    return (void *)(uintptr_t)(MVM_HIGHER_HALF_GVA + (uintptr_t)p);
}

void guest_main(void)
{
    volatile uint64_t *alias_word = alias_of(&shared_word);
    const char *alias_greeting = alias_of(greeting);

    serial_puts(alias_greeting);
    GUEST_ASSERT_EQ(cr0_read() & (X86_CR0_PE | X86_CR0_PG), X86_CR0_PE | X86_CR0_PG, "CR0.PE and CR0.PG");
    GUEST_ASSERT_EQ(cr4_read() & X86_CR4_PAE, X86_CR4_PAE, "CR4.PAE (long mode needs PAE page tables)");
    GUEST_ASSERT_EQ(msr_read(X86_MSR_EFER) & (X86_EFER_LME | X86_EFER_LMA), X86_EFER_LME | X86_EFER_LMA,
                    "EFER.LME and EFER.LMA");
    GUEST_ASSERT_EQ(cs_read(), MVM_SEL_CODE64, "CS selector: the 64-bit code segment");
    guest_printf("code at %p, higher-half alias of the greeting at %p\n", (void *)greeting, (void *)alias_greeting);
    *alias_word = 0x1122334455667788ull;
    GUEST_ASSERT_EQ(shared_word, 0x1122334455667788ull, "a write through the alias shows at the identity address");
    shared_word = 42;
    GUEST_ASSERT_EQ(*alias_word, 42, "a write at the identity address shows through the alias");
    ucall_send(alias_of(&alias_print));
    guest_printf("identity and higher-half views agree\n");
}
