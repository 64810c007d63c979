/* The soft backend's CPUID (KVM's cpuid.c): the supported table from what the engine emulates, the guest's CPUID. */
#include "soft_cpuid.h"
#include "soft_priv.h"

#include <asm/kvm_para.h>
#include <string.h>

#define CPUID_1_ECX_X2APIC       (1u << 21)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_OSXSAVE      (1u << 27)
#define CPUID_1_ECX_HYPERVISOR   (1u << 31)
#define CPUID_80000001_EDX_LM    (1u << 29)

const struct kvm_cpuid_entry2 *soft_cpuid_find(const struct kvm_cpuid_entry2 *tab, int n, uint32_t leaf, uint32_t sub)
{
    for (int i = 0; i < n; i++) {
        const struct kvm_cpuid_entry2 *c = &tab[i];
        if (c->function == leaf && (!(c->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || c->index == sub))
            return c;
    }
    return NULL;
}

void soft_cpuid_guest_regs(const struct kvm_cpuid_entry2 *e, uint64_t cr4, uint32_t out[4])
{
    out[0] = out[1] = out[2] = out[3] = 0;
    if (!e)
        return;
    out[0] = e->eax;
    out[1] = e->ebx;
    out[2] = e->ecx;
    out[3] = e->edx;
    if (e->function == 1) {
        out[2] &= ~CPUID_1_ECX_OSXSAVE;
        if (cr4 & X86_CR4_OSXSAVE)
            out[2] |= CPUID_1_ECX_OSXSAVE; /* OSXSAVE follows CR4, as on hardware */
    }
}

void soft_cpuid_supported_fixup(uint32_t leaf, uint32_t r[4])
{
    if (leaf == 1) {
        r[1] &= 0x0000ffffu;               /* APIC ID and logical count are the VMM's to fill in */
        r[2] |= CPUID_1_ECX_HYPERVISOR;    /* hypervisor present */
        r[2] |= CPUID_1_ECX_X2APIC;        /* KVM emulates x2APIC (with the in-kernel irqchip, soft_irqchip.c) */
        r[2] &= ~CPUID_1_ECX_TSC_DEADLINE; /* no TSC deadline */
        r[2] &= ~CPUID_1_ECX_OSXSAVE;      /* OSXSAVE mirrors CR4 */
    } else if (leaf == 0x80000001) {
        r[3] |= CPUID_80000001_EDX_LM;
    }
}

/* The engine's own answer, from a throwaway engine: what it really emulates. */
static void soft_native_cpuid(uint32_t leaf, uint32_t sub, uint32_t *r)
{
    static uint8_t ram[0x2000] __attribute__((aligned(4096)));
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static uc_engine *uc;
    pthread_mutex_lock(&lock);
    if (!uc) {
        if (uc_open(UC_ARCH_X86, UC_MODE_64, &uc) == UC_ERR_OK) {
            uc_mem_map_ptr(uc, 0, sizeof ram, UC_PROT_ALL, ram);
            ram[0x1000] = 0x0f; /* cpuid; hlt */
            ram[0x1001] = 0xa2;
            ram[0x1002] = 0xf4;
            uc_ctl_exits_enable(uc);
        }
    }
    memset(r, 0, 16);
    if (uc) {
        uint64_t a = leaf, c = sub;
        uc_reg_write(uc, UC_X86_REG_RAX, &a);
        uc_reg_write(uc, UC_X86_REG_RCX, &c);
        uc_emu_start(uc, 0x1000, 0, 0, 0);
        int ids[4] = {UC_X86_REG_EAX, UC_X86_REG_EBX, UC_X86_REG_ECX, UC_X86_REG_EDX};
        for (int i = 0; i < 4; i++)
            uc_reg_read(uc, ids[i], &r[i]);
    }
    pthread_mutex_unlock(&lock);
}

int soft_supported_cpuid(struct kvm_cpuid_entry2 *out, int max)
{
    int n = 0;
    uint32_t r[4];
    soft_native_cpuid(0, 0, r);
    uint32_t maxbasic = r[0] < 7 ? r[0] : 7;
#define ADD(fn, idx, fl, a, b, c, d)                                                                                   \
    do {                                                                                                               \
        if (n < max)                                                                                                   \
            out[n++] = (struct kvm_cpuid_entry2){                                                                      \
                .function = (fn), .index = (idx), .flags = (fl), .eax = (a), .ebx = (b), .ecx = (c), .edx = (d)};      \
    } while (0)
    ADD(0, 0, 0, maxbasic, r[1], r[2], r[3]);
    for (uint32_t l = 1; l <= maxbasic; l++) {
        soft_native_cpuid(l, 0, r);
        soft_cpuid_supported_fixup(l, r);
        ADD(l, 0, l == 7 || l == 4 ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0, r[0], r[1], r[2], r[3]);
    }
    ADD(KVM_CPUID_SIGNATURE, 0, 0, KVM_CPUID_FEATURES, 0x4b4d564b, 0x564b4d56, 0x4d); /* "KVMKVMKVM\0\0\0" */
    ADD(KVM_CPUID_FEATURES, 0, 0,
        (1u << KVM_FEATURE_CLOCKSOURCE) | (1u << KVM_FEATURE_CLOCKSOURCE2) | (1u << KVM_FEATURE_STEAL_TIME) |
            (1u << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT),
        0, 0, 0);
    soft_native_cpuid(0x80000000, 0, r);
    uint32_t maxext = r[0] < 0x80000008 ? r[0] : 0x80000008;
    ADD(0x80000000, 0, 0, maxext, r[1], r[2], r[3]);
    for (uint32_t l = 0x80000001; l <= maxext; l++) {
        soft_native_cpuid(l, 0, r);
        soft_cpuid_supported_fixup(l, r);
        ADD(l, 0, 0, r[0], r[1], r[2], r[3]);
    }
#undef ADD
    return n;
}

int soft_hook_cpuid(uc_engine *uc, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)uc;
    uint32_t leaf = (uint32_t)soft_rd(v, UC_X86_REG_RAX), sub = (uint32_t)soft_rd(v, UC_X86_REG_RCX);
    const struct kvm_cpuid_entry2 *e = soft_cpuid_find(v->cpuid, v->ncpuid, leaf, sub);
    uint32_t r[4];
    soft_cpuid_guest_regs(e, e && leaf == 1 ? soft_rd(v, UC_X86_REG_CR4) : 0, r);
    soft_wr(v, UC_X86_REG_RAX, r[0]);
    soft_wr(v, UC_X86_REG_RBX, r[1]);
    soft_wr(v, UC_X86_REG_RCX, r[2]);
    soft_wr(v, UC_X86_REG_RDX, r[3]);
    v->stats.cpuid++;
    return 1; /* skip the engine's own CPUID */
}
