/*
 * System-call probe: SYSCALL and SYSRET as a 64-bit kernel uses them. The guest sets EFER.SCE, STAR, LSTAR,
 * CSTAR and SFMASK, drops to ring 3 with SYSRET (64-bit, then 32-bit into compatibility mode), makes a SYSCALL
 * back, and reports what each side saw: RCX, R11, CS, SS, RFLAGS and RSP. Before that, SYSCALL and SYSRET with
 * EFER.SCE clear must raise #UD; after it, a SYSCALL with TF set traps at the entry only when SFMASK leaves TF,
 * and a SYSRETQ to a non-canonical RCX raises #GP. Run with --mode long.
 */
#include "runtime/runtime.h"

/* Selectors: the runtime's GDT (code32 0x08, data 0x10, code64 0x18) plus the kernel's data and the user's. */
#define SEL_KDATA   0x20 /* SYSCALL's SS: STAR[47:32] + 8 */
#define SEL_UCODE32 0x28 /* STAR[63:48]: SYSRET's 32-bit CS (RPL 3) */
#define SEL_UDATA   0x30 /* STAR[63:48] + 8: SYSRET's SS (RPL 3) */
#define SEL_UCODE64 0x38 /* STAR[63:48] + 16: SYSRET's 64-bit CS (RPL 3) */
#define STAR_VALUE  (((uint64_t)SEL_UCODE32 << 48) | ((uint64_t)MVM_SEL_CODE64 << 32))
/* RFLAGS bits this probe names (SDM vol. 1, 3.4.3) beyond x86.h's. */
#define FL_CF    0x1u
#define FL_PF    0x4u
#define FL_AF    0x10u
#define FL_ZF    0x40u
#define FL_SF    0x80u
#define FL_OF    0x800u
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)
/*
 * SFMASK clears the arithmetic flags and DF, as Linux's does: the QEMU under the KVM oracle (7.2) clears the
 * arithmetic flags at SYSCALL whatever SFMASK says (ring 3's RFLAGS 0xec7 and SFMASK 0x40701 gave the kernel 0x2,
 * not the CPU's 0x8c6: its helper_syscall reloads RFLAGS from the part it keeps apart from the lazy flags), where
 * the CPU keeps what SFMASK leaves. AC and IOPL are left, to show what SFMASK does not clear.
 */
#define SFMASK_VALUE (FL_ARITH | X86_RFLAGS_TF | X86_RFLAGS_IF | X86_RFLAGS_DF | X86_RFLAGS_NT)
/* What SYSRET takes from R11 for ring 3: in 64-bit mode (IOPL 3 too), then in compatibility mode. */
#define USER64_FLAGS                                                                                                   \
    (X86_RFLAGS_FIXED | FL_CF | FL_PF | FL_ZF | FL_SF | FL_OF | X86_RFLAGS_IF | X86_RFLAGS_DF | X86_RFLAGS_AC |        \
     X86_RFLAGS_IOPL)
#define USER32_FLAGS (X86_RFLAGS_FIXED | FL_CF | FL_SF | FL_OF | X86_RFLAGS_AC)

/* What each side saw; written by the assembly below (ring 3 writes its own, the kernel entry the rest). */
struct seen {
    uint64_t user_cs, user_ss, user_rflags;
    uint64_t rcx, r11, cs, ss, rflags, rsp;
};
struct seen seen64, seen32;
uint64_t saved_ksp;
uint8_t user_stack[4096] __attribute__((aligned(16)));
/* #UD: where it came from (the handler skips the SYSCALL or SYSRETQ). */
static volatile uint64_t ud_rip, ud_count;

void enter_user64(uint64_t r11);
void enter_user32(uint64_t r11);
extern char user64_code[], user64_after_syscall[], user32_code[], user32_after_syscall[];
extern char kernel_entry64[], kernel_entry32[], syscall_ring0[], sysret_ring0[];
/* syscall_tf: SYSCALL from ring 0 with TF set, to kernel_entry_r0, which records RCX and R11 and jumps back. */
extern char syscall_tf[], syscall_tf_after[], kernel_entry_r0[];
uint64_t r0_rcx, r0_r11;
/*
 * enter_user_at(r11, rcx): SYSRETQ to RCX (a non-canonical one here); gp_entry, the #GP handler, records the error
 * code, RIP and CS of the fault and a count, and returns from enter_user_at on the kernel's stack.
 */
void enter_user_at(uint64_t r11, uint64_t rcx);
extern char gp_entry[];
struct {
    uint64_t err, rip, cs, count;
} gp_seen;
/* The 64-bit TSS: RSP0 for a fault taken in ring 3. */
static struct __attribute__((packed)) {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1, ist[7], reserved2;
    uint16_t reserved3, iomap_base;
} tss = {.iomap_base = 104};
_Static_assert(sizeof tss == 104, "the 64-bit TSS");
static uint8_t ring0_stack[4096] __attribute__((aligned(16)));
#define SEL_TSS 0x40
static volatile uint64_t db_rip, db_count, db_dr6;

/*
 * enter_userNN(r11): save the kernel's stack, SYSRET to ring 3 with that RFLAGS; ring 3 records its CS, SS and
 * RFLAGS and makes a SYSCALL; the kernel entry (LSTAR or CSTAR) records RCX, R11, CS, SS, RFLAGS and RSP, takes
 * the kernel's stack back and returns from enter_userNN.
 */
#define KERNEL_ENTRY(name, s)                                                                                          \
#name ":\n"                                                                                                        \
          "    mov %rcx, " #s "+24(%rip)\n"                                                                            \
          "    mov %r11, " #s "+32(%rip)\n"                                                                            \
          "    mov %cs, %ecx\n"                                                                                        \
          "    mov %rcx, " #s "+40(%rip)\n"                                                                            \
          "    mov %ss, %ecx\n"                                                                                        \
          "    mov %rcx, " #s "+48(%rip)\n"                                                                            \
          "    pushfq\n"                                                                                               \
          "    popq " #s "+56(%rip)\n"                                                                                 \
          "    mov %rsp, " #s "+64(%rip)\n"                                                                            \
          "    mov saved_ksp(%rip), %rsp\n"                                                                            \
          "    pop %r15\n    pop %r14\n    pop %r13\n    pop %r12\n    pop %rbp\n    pop %rbx\n"                       \
          "    ret\n"
#define SAVE_KERNEL                                                                                                    \
    "    push %rbx\n    push %rbp\n    push %r12\n    push %r13\n    push %r14\n    push %r15\n"                       \
    "    mov %rsp, saved_ksp(%rip)\n"                                                                                  \
    "    mov %rdi, %r11\n"
__asm__(
    ".text\n"
    ".globl enter_user64, user64_code, user64_after_syscall, kernel_entry64\n"
    "enter_user64:\n" SAVE_KERNEL "    lea user64_code(%rip), %rcx\n"
    "    lea user_stack+4096(%rip), %rsp\n"
    "    sysretq\n"
    "user64_code:\n"
    "    mov %cs, %eax\n"
    "    mov %rax, seen64(%rip)\n"
    "    mov %ss, %eax\n"
    "    mov %rax, seen64+8(%rip)\n"
    "    pushfq\n"
    "    popq seen64+16(%rip)\n"
    "    syscall\n"
    "user64_after_syscall:\n"
    "    ud2\n" KERNEL_ENTRY(
        kernel_entry64,
        seen64) ".globl enter_user32, user32_code, user32_after_syscall, "
                "kernel_entry32\n"
                "enter_user32:\n" SAVE_KERNEL "    mov $user32_code, %ecx\n"
                "    lea user_stack+4096(%rip), %rsp\n"
                "    sysretl\n"
                ".code32\n"
                "user32_code:\n"
                "    mov %cs, %eax\n"
                "    mov %eax, seen32\n"
                "    mov %ss, %eax\n"
                "    mov %eax, seen32+8\n"
                "    pushfl\n"
                "    popl seen32+16\n"
                "    syscall\n"
                "user32_after_syscall:\n"
                "    ud2\n"
                ".code64\n" KERNEL_ENTRY(
                    kernel_entry32,
                    seen32) ".globl syscall_ring0, sysret_ring0\n"
                            "syscall_ring0:\n"
                            "    syscall\n"
                            "    ret\n"
                            "sysret_ring0:\n"
                            "    sysretq\n"
                            "    ret\n"
                            ".globl syscall_tf, syscall_tf_after, kernel_entry_r0\n"
                            "syscall_tf:\n"
                            "    pushfq\n"
                            "    orq $0x100, (%rsp)\n"
                            "    popfq\n"
                            "    syscall\n"
                            "syscall_tf_after:\n"
                            "    ret\n"
                            "kernel_entry_r0:\n"
                            "    mov %rcx, r0_rcx(%rip)\n"
                            "    mov %r11, r0_r11(%rip)\n"
                            "    and $~0x100, %r11\n"
                            "    push %r11\n"
                            "    popfq\n"
                            "    jmp *%rcx\n"
                            ".globl enter_user_at, gp_entry\n"
                            "enter_user_at:\n" SAVE_KERNEL "    mov %rsi, %rcx\n"
                            "    lea user_stack+4096(%rip), %rsp\n"
                            "    sysretq\n"
                            "gp_entry:\n"
                            "    popq gp_seen(%rip)\n"
                            "    popq gp_seen+8(%rip)\n"
                            "    popq gp_seen+16(%rip)\n"
                            "    incq gp_seen+24(%rip)\n"
                            "    pushq $2\n" /* the kernel's RFLAGS back (the fault kept ring 3's DF, AC and IOPL) */
                            "    popfq\n"
                            "    mov saved_ksp(%rip), %rsp\n"
                            "    pop %r15\n    pop %r14\n    pop %r13\n    pop %r12\n    pop %rbp\n    pop %rbx\n"
                            "    ret\n");

__attribute__((interrupt)) static void ud_handler(struct interrupt_frame *frame)
{
    ud_rip = frame->ip;
    ud_count++;
    frame->ip += *(const uint8_t *)frame->ip == 0x48 ? 3 : 2; /* sysretq (48 0f 07) or syscall (0f 05) */
}

__attribute__((interrupt)) static void db_handler(struct interrupt_frame *frame)
{
    uint64_t dr6;
    __asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
    db_rip = frame->ip;
    db_dr6 = dr6;
    db_count++;
    frame->flags &= ~(uword_t)X86_RFLAGS_TF;
}

static void wrmsr64(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* The GDT: the runtime's four entries, then the kernel's data and the user's segments. */
static uint64_t gdt[10] __attribute__((aligned(16)));

static void gdt_extend(void)
{
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } cur, next = {sizeof gdt - 1, (uint64_t)(uintptr_t)gdt};
    __asm__ volatile("sgdt %0" : "=m"(cur));
    memcpy(gdt, (void *)(uintptr_t)cur.base, 4 * 8);
    gdt[SEL_KDATA / 8] = 0x00cf93000000ffffull;   /* data, DPL 0, 4 GiB */
    gdt[SEL_UCODE32 / 8] = 0x00cffb000000ffffull; /* code, DPL 3, 32-bit */
    gdt[SEL_UDATA / 8] = 0x00cff3000000ffffull;   /* data, DPL 3 */
    gdt[SEL_UCODE64 / 8] = 0x00affb000000ffffull; /* code, DPL 3, 64-bit (L) */
    uint64_t base = (uintptr_t)&tss, limit = sizeof tss - 1;
    tss.rsp[0] = (uintptr_t)ring0_stack + sizeof ring0_stack;
    gdt[SEL_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) | /* available 64-bit TSS, P */
                       ((base >> 24 & 0xff) << 56);
    gdt[SEL_TSS / 8 + 1] = base >> 32;
    __asm__ volatile("lgdt %0" : : "m"(next) : "memory");
    __asm__ volatile("ltr %w0" : : "r"(SEL_TSS));
}

/* Ring 3 may use the first 2 MiB (this image, its data and stacks): the user bit on their page-table entries. */
static void user_pages(void)
{
    uint64_t *pml4 = (uint64_t *)(uintptr_t)(cr3_read() & X86_PTE_ADDR_MASK);
    uint64_t *pdpt = (uint64_t *)(uintptr_t)(pml4[0] & X86_PTE_ADDR_MASK);
    uint64_t *pd = (uint64_t *)(uintptr_t)(pdpt[0] & X86_PTE_ADDR_MASK);
    pml4[0] |= X86_PTE_US;
    pdpt[0] |= X86_PTE_US;
    pd[0] |= X86_PTE_US;
    if (!(pd[0] & X86_PTE_PS)) {
        uint64_t *pt = (uint64_t *)(uintptr_t)(pd[0] & X86_PTE_ADDR_MASK);
        for (int i = 0; i < 512; i++)
            if (pt[i] & X86_PTE_P)
                pt[i] |= X86_PTE_US;
    }
    __asm__ volatile("mov %0, %%cr3" : : "r"(cr3_read()) : "memory");
}

static void report(const char *what, const struct seen *s)
{
    guest_printf("%s: ring 3 CS=0x%llx SS=0x%llx RFLAGS=0x%llx\n", what, (unsigned long long)s->user_cs,
                 (unsigned long long)s->user_ss, (unsigned long long)s->user_rflags);
    guest_printf("%s: SYSCALL gave RCX=0x%llx R11=0x%llx CS=0x%llx SS=0x%llx RFLAGS=0x%llx RSP=0x%llx\n", what,
                 (unsigned long long)s->rcx, (unsigned long long)s->r11, (unsigned long long)s->cs,
                 (unsigned long long)s->ss, (unsigned long long)s->rflags, (unsigned long long)s->rsp);
}

void guest_main(void)
{
    idt_set_handler(X86_VEC_UD, (void *)ud_handler);
    gdt_extend();
    user_pages();

    /* EFER.SCE clear: both instructions are undefined. */
    uint64_t efer = msr_read(X86_MSR_EFER);
    wrmsr64(X86_MSR_EFER, efer & ~(uint64_t)X86_EFER_SCE);
    ((void (*)(void))syscall_ring0)();
    GUEST_ASSERT_EQ(ud_count, 1, "SYSCALL with EFER.SCE clear raises #UD");
    GUEST_ASSERT_EQ(ud_rip, (uintptr_t)syscall_ring0, "#UD is reported at the SYSCALL");
    ud_rip = 0;
    ((void (*)(void))sysret_ring0)();
    GUEST_ASSERT_EQ(ud_count, 2, "SYSRET with EFER.SCE clear raises #UD");
    GUEST_ASSERT_EQ(ud_rip, (uintptr_t)sysret_ring0, "#UD is reported at the SYSRET");
    guest_printf("EFER.SCE=0: SYSCALL and SYSRET raise #UD\n");

    wrmsr64(X86_MSR_EFER, efer | X86_EFER_SCE);
    wrmsr64(X86_MSR_STAR, STAR_VALUE);
    wrmsr64(X86_MSR_STAR + 1, (uintptr_t)kernel_entry64); /* LSTAR */
    wrmsr64(X86_MSR_STAR + 2, (uintptr_t)kernel_entry32); /* CSTAR */
    wrmsr64(X86_MSR_SFMASK, SFMASK_VALUE);
    GUEST_ASSERT_EQ(msr_read(X86_MSR_STAR), STAR_VALUE, "STAR reads back");
    GUEST_ASSERT_EQ(msr_read(X86_MSR_SFMASK), SFMASK_VALUE, "SFMASK reads back");

    enter_user64(USER64_FLAGS);
    report("64-bit", &seen64);
    GUEST_ASSERT_EQ(seen64.user_cs, (SEL_UCODE32 + 16) | 3, "SYSRETQ: CS = STAR[63:48] + 16, RPL 3");
    GUEST_ASSERT_EQ(seen64.user_ss, (SEL_UCODE32 + 8) | 3, "SYSRET: SS = STAR[63:48] + 8, RPL 3");
    GUEST_ASSERT_EQ(seen64.user_rflags, USER64_FLAGS, "SYSRET: RFLAGS from R11");
    GUEST_ASSERT_EQ(seen64.rcx, (uintptr_t)user64_after_syscall, "SYSCALL: RCX = the next RIP");
    GUEST_ASSERT_EQ(seen64.r11, USER64_FLAGS, "SYSCALL: R11 = RFLAGS");
    GUEST_ASSERT_EQ(seen64.cs, MVM_SEL_CODE64, "SYSCALL: CS = STAR[47:32]");
    GUEST_ASSERT_EQ(seen64.ss, SEL_KDATA, "SYSCALL: SS = STAR[47:32] + 8");
    GUEST_ASSERT_EQ(seen64.rflags, (USER64_FLAGS & ~SFMASK_VALUE) | X86_RFLAGS_FIXED, "SYSCALL: RFLAGS &= ~SFMASK");
    GUEST_ASSERT_EQ(seen64.rsp, (uintptr_t)user_stack + sizeof user_stack, "SYSCALL leaves RSP alone");

    enter_user32(USER32_FLAGS);
    report("compat", &seen32);
    GUEST_ASSERT_EQ(seen32.user_cs, SEL_UCODE32 | 3, "SYSRETL: CS = STAR[63:48], RPL 3");
    GUEST_ASSERT_EQ(seen32.user_ss, SEL_UDATA | 3, "SYSRET: SS = STAR[63:48] + 8, RPL 3");
    GUEST_ASSERT_EQ(seen32.user_rflags, USER32_FLAGS, "SYSRET: RFLAGS from R11");
    GUEST_ASSERT_EQ(seen32.rcx, (uintptr_t)user32_after_syscall, "SYSCALL from compatibility mode: RCX, via CSTAR");
    GUEST_ASSERT_EQ(seen32.r11, USER32_FLAGS, "SYSCALL: R11 = RFLAGS");
    GUEST_ASSERT_EQ(seen32.cs, MVM_SEL_CODE64, "SYSCALL: CS = STAR[47:32]");
    GUEST_ASSERT_EQ(seen32.rflags, (USER32_FLAGS & ~SFMASK_VALUE) | X86_RFLAGS_FIXED, "SYSCALL: RFLAGS &= ~SFMASK");
    /* SYSCALL from ring 0 with TF set: no trap when SFMASK clears TF, else a single step at the entry. */
    idt_set_handler(X86_VEC_DB, (void *)db_handler);
    wrmsr64(X86_MSR_STAR + 1, (uintptr_t)kernel_entry_r0);
    ((void (*)(void))syscall_tf)();
    GUEST_ASSERT_EQ(db_count, 0, "no single-step trap: SFMASK cleared TF");
    GUEST_ASSERT_EQ(r0_rcx, (uintptr_t)syscall_tf_after, "SYSCALL from ring 0: RCX");
    GUEST_ASSERT_EQ(r0_r11 & X86_RFLAGS_TF, X86_RFLAGS_TF, "SYSCALL: R11 holds TF");
    wrmsr64(X86_MSR_SFMASK, SFMASK_VALUE & ~X86_RFLAGS_TF);
    ((void (*)(void))syscall_tf)();
    guest_printf("TF left set by SFMASK: %llu single-step trap(s), at 0x%llx, DR6=0x%llx\n",
                 (unsigned long long)db_count, (unsigned long long)db_rip, (unsigned long long)db_dr6);
    GUEST_ASSERT_EQ(db_count, 1, "a single-step trap after SYSCALL when SFMASK leaves TF");
    GUEST_ASSERT_EQ(db_rip, (uintptr_t)kernel_entry_r0, "the trap is at the entry point (LSTAR)");
    GUEST_ASSERT_EQ(db_dr6 & X86_DR6_BS, X86_DR6_BS, "DR6.BS: a single step");
    /*
     * SYSRETQ to a non-canonical RCX: a #GP either way; Intel CPUs raise it at the SYSRET, in ring 0, AMD's (and
     * the QEMU under the oracle) at the fetch, in ring 3. The console shows which.
     */
    idt_set_handler(X86_VEC_GP, (void *)gp_entry);
    enter_user_at(USER64_FLAGS & ~(uint64_t)X86_RFLAGS_IF, 0x0000800000000000ull);
    guest_printf("SYSRETQ to RCX=0x800000000000: #GP(0x%llx) at CS=0x%llx RIP=0x%llx\n",
                 (unsigned long long)gp_seen.err, (unsigned long long)gp_seen.cs, (unsigned long long)gp_seen.rip);
    GUEST_ASSERT_EQ(gp_seen.count, 1, "SYSRETQ to a non-canonical RCX: one #GP");
    GUEST_ASSERT_EQ(gp_seen.err, 0, "#GP(0)");
    /* Back on the runtime's data selector for SS, as it was. */
    __asm__ volatile("mov %0, %%ss" : : "r"((uint32_t)MVM_SEL_DATA));
}
