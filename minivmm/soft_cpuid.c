/*
 * The soft backend's CPUID (KVM's cpuid.c): the engine's CPU model, the supported table from what the engine
 * emulates, the vCPU's table with KVM's runtime bits and rules, the guest's CPUID, and the CR4 bits a table allows.
 */
#include "soft_cpuid.h"
#include "soft_event.h"
#include "soft_priv.h"

#include <asm/kvm_para.h>
#include <errno.h>
#include <string.h>

#define CPUID_1_EDX_APIC         (1u << 9)
#define CPUID_1_ECX_X2APIC       (1u << 21)
#define CPUID_1_ECX_XSAVE        (1u << 26)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_OSXSAVE      (1u << 27)
#define CPUID_1_ECX_HYPERVISOR   (1u << 31)
#define CPUID_80000001_EDX_NX    (1u << 20)
#define CPUID_80000001_EDX_LM    (1u << 29)
#define CPUID_80000001_ECX_SVM   (1u << 2)
#define CPUID_D_1_EAX_XSAVEOPT   (1u << 0)
#define CPUID_D_1_EAX_XSAVEC     (1u << 1)
#define CPUID_D_1_EAX_XGETBV1    (1u << 2)
#define CPUID_D_1_EAX_XSAVES     (1u << 3)
#define APIC_BASE_EXTD           (1ull << 10)
#define APIC_BASE_EN             (1ull << 11)

uc_err soft_uc_open(uc_engine **out)
{
    uc_err e = uc_open(UC_ARCH_X86, UC_MODE_64, out);
    if (e != UC_ERR_OK) {
        *out = NULL;
        return e;
    }
    e = uc_ctl_set_cpu_model(*out, SOFT_UC_CPU_MODEL);
    if (e != UC_ERR_OK) {
        uc_close(*out);
        *out = NULL;
    }
    return e;
}

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
        r[2] |= CPUID_1_ECX_XSAVE;         /* the engines' model runs XSAVE and XSETBV (SOFT_UC_CPU_MODEL) */
        r[2] &= ~CPUID_1_ECX_TSC_DEADLINE; /* no TSC deadline */
        r[2] &= ~CPUID_1_ECX_OSXSAVE;      /* OSXSAVE mirrors CR4 */
    } else if (leaf == 0x80000001) {
        r[3] |= CPUID_80000001_EDX_LM;
        r[2] &= ~CPUID_80000001_ECX_SVM; /* no nested guests: as KVM without kvm_amd.nested (svm_set_cpu_caps) */
    } else if (leaf == 7) {
        r[1] |= X86_CPUID_7_EBX_TSC_ADJUST; /* emulated, as KVM's kvm_set_cpu_caps (soft_msr.c) */
    }
}

/*
 * The CPU the supported table describes, from a throwaway engine of Unicorn's default model (qemu64): its identity
 * and features, all of which the engines' model (SOFT_UC_CPU_MODEL) also runs (test_soft_cpuid checks it); the
 * fixups add what the backend emulates itself, and XSAVE, which only the engines' model runs.
 */
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
    uint32_t maxbasic = r[0] < 0xd ? r[0] : 0xd;
#define ADD(fn, idx, fl, a, b, c, d)                                                                                   \
    do {                                                                                                               \
        if (n < max)                                                                                                   \
            out[n++] = (struct kvm_cpuid_entry2){                                                                      \
                .function = (fn), .index = (idx), .flags = (fl), .eax = (a), .ebx = (b), .ecx = (c), .edx = (d)};      \
    } while (0)
    ADD(0, 0, 0, maxbasic, r[1], r[2], r[3]);
    for (uint32_t l = 1; l <= maxbasic && l <= 7; l++) {
        soft_native_cpuid(l, 0, r);
        soft_cpuid_supported_fixup(l, r);
        ADD(l, 0, l == 7 || l == 4 ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0, r[0], r[1], r[2], r[3]);
    }
    if (maxbasic >= 0xd) {
        /* XSAVE (KVM's __do_cpuid_func, leaf 0xD): x87 and SSE and their size; XSAVEOPT, XGETBV with ECX = 1. */
        ADD(0xd, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, (uint32_t)SOFT_CPUID_XCR0, SOFT_CPUID_XSAVE_SIZE,
            SOFT_CPUID_XSAVE_SIZE, (uint32_t)(SOFT_CPUID_XCR0 >> 32));
        ADD(0xd, 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, CPUID_D_1_EAX_XSAVEOPT | CPUID_D_1_EAX_XGETBV1, 0, 0, 0);
    }
    ADD(KVM_CPUID_SIGNATURE, 0, 0, KVM_CPUID_FEATURES, 0x4b4d564b, 0x564b4d56, 0x4d); /* "KVMKVMKVM\0\0\0" */
    ADD(KVM_CPUID_FEATURES, 0, 0,
        (1u << KVM_FEATURE_CLOCKSOURCE) | (1u << KVM_FEATURE_CLOCKSOURCE2) | (1u << KVM_FEATURE_STEAL_TIME) |
            (1u << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT) |
            (1u << KVM_FEATURE_PV_SCHED_YIELD), /* KVM_HC_SCHED_YIELD (soft_hypercall.c) */
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

const struct kvm_cpuid_entry2 *soft_cpuid_lookup(const struct kvm_cpuid_entry2 *tab, int n, uint32_t leaf, uint32_t sub)
{
    const struct kvm_cpuid_entry2 *e = soft_cpuid_find(tab, n, leaf, sub);
    const struct kvm_cpuid_entry2 *basic = soft_cpuid_find(tab, n, 0, 0);
    if (e || !basic)
        return e;
    /* "AuthenticAMD", "HygonGenuine": zeros, as on AMD (get_out_of_range_cpuid_entry) */
    if ((basic->ebx == 0x68747541 && basic->ecx == 0x444d4163 && basic->edx == 0x69746e65) ||
        (basic->ebx == 0x6f677948 && basic->ecx == 0x656e6975 && basic->edx == 0x6e65476e))
        return NULL;
    uint32_t cls = leaf >= 0x40000000 && leaf <= 0x4fffffff ? leaf & 0xffffff00
                   : leaf >= 0xc0000000                     ? 0xc0000000
                                                            : leaf & 0x80000000;
    const struct kvm_cpuid_entry2 *c = soft_cpuid_find(tab, n, cls, 0);
    if (c && leaf <= c->eax)
        return NULL;                                 /* in range, just not in the table: zeros */
    return soft_cpuid_find(tab, n, basic->eax, sub); /* Intel: beyond its class, the highest basic leaf */
}

int soft_hook_cpuid(uc_engine *uc, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)uc;
    uint32_t leaf = (uint32_t)soft_rd(v, UC_X86_REG_RAX), sub = (uint32_t)soft_rd(v, UC_X86_REG_RCX);
    uint64_t cr4 = soft_rd(v, UC_X86_REG_CR4);
    const struct kvm_cpuid_entry2 *e = soft_cpuid_lookup(v->cpuid, v->ncpuid, leaf, sub);
    if (e && (e->function == 1 || e->function == 0xd)) /* the only leaves with runtime bits */
        soft_cpuid_update_runtime(v->cpuid, v->ncpuid, cr4, v->apic_base);
    uint32_t r[4];
    soft_cpuid_guest_regs(e, cr4, r);
    soft_wr(v, UC_X86_REG_RAX, r[0]);
    soft_wr(v, UC_X86_REG_RBX, r[1]);
    soft_wr(v, UC_X86_REG_RCX, r[2]);
    soft_wr(v, UC_X86_REG_RDX, r[3]);
    v->stats.cpuid++;
    return 1; /* skip the engine's own CPUID */
}

/* The first entry for leaf whatever its subleaf, as KVM looks up leaves it treats as unindexed. */
static struct kvm_cpuid_entry2 *soft_cpuid_first(struct kvm_cpuid_entry2 *tab, int n, uint32_t leaf)
{
    for (int i = 0; i < n; i++)
        if (tab[i].function == leaf)
            return &tab[i];
    return NULL;
}

void soft_cpuid_update_runtime(struct kvm_cpuid_entry2 *tab, int n, uint64_t cr4, uint64_t apic_base)
{
    struct kvm_cpuid_entry2 *e = soft_cpuid_first(tab, n, 1);
    if (e) {
        e->ecx = (cr4 & X86_CR4_OSXSAVE) ? e->ecx | CPUID_1_ECX_OSXSAVE : e->ecx & ~CPUID_1_ECX_OSXSAVE;
        e->edx = (apic_base & APIC_BASE_EN) ? e->edx | CPUID_1_EDX_APIC : e->edx & ~CPUID_1_EDX_APIC;
    }
    /* The size of an XSAVE image for the guest's XCR0: x87 and SSE only here (soft_cpuid_guest_xcr0), so fixed. */
    struct kvm_cpuid_entry2 *d0 = (struct kvm_cpuid_entry2 *)soft_cpuid_find(tab, n, 0xd, 0);
    if (d0)
        d0->ebx = SOFT_CPUID_XSAVE_SIZE;
    struct kvm_cpuid_entry2 *d1 = (struct kvm_cpuid_entry2 *)soft_cpuid_find(tab, n, 0xd, 1);
    if (d1 && (d1->eax & (CPUID_D_1_EAX_XSAVES | CPUID_D_1_EAX_XSAVEC)))
        d1->ebx = SOFT_CPUID_XSAVE_SIZE;
}

int soft_cpuid_maxphyaddr(const struct kvm_cpuid_entry2 *tab, int n)
{
    const struct kvm_cpuid_entry2 *e = soft_cpuid_find(tab, n, 0x80000000, 0);
    if (!e || e->eax < 0x80000008)
        return 36;
    e = soft_cpuid_find(tab, n, 0x80000008, 0);
    return e ? (int)(e->eax & 0xff) : 36;
}

uint64_t soft_cpuid_guest_xcr0(const struct kvm_cpuid_entry2 *tab, int n)
{
    const struct kvm_cpuid_entry2 *e = soft_cpuid_find(tab, n, 0xd, 0);
    return e ? (e->eax | (uint64_t)e->edx << 32) & SOFT_CPUID_XCR0 : 0;
}

bool soft_xcr0_valid(uint64_t xcr0, uint64_t guest_supported)
{
    const uint64_t fp = 1, sse = 2, ymm = 4, bndregs = 8, bndcsr = 16, avx512 = 0xe0, xtile = 0x60000;
    if (!(xcr0 & fp) || (xcr0 & ~(guest_supported | fp)))
        return false;
    if ((xcr0 & ymm) && !(xcr0 & sse))
        return false;
    if (!(xcr0 & bndregs) != !(xcr0 & bndcsr))
        return false;
    if ((xcr0 & avx512) && (!(xcr0 & ymm) || (xcr0 & avx512) != avx512))
        return false;
    return !(xcr0 & xtile) || (xcr0 & xtile) == xtile;
}

/* Bits hi..63 (KVM's rsvd_bits(hi, 63)). */
static uint64_t soft_bits_from(int hi)
{
    return hi >= 64 ? 0 : ~0ull << hi;
}

int soft_sregs_check(const struct kvm_sregs *s, uint64_t cr4_rsvd, int maxphyaddr, bool x2apic)
{
    if ((s->efer & X86_EFER_LME) && (s->cr0 & X86_CR0_PG)) {
        if (!(s->cr4 & X86_CR4_PAE) || !(s->efer & X86_EFER_LMA)) {
            soft_set_error("KVM_SET_SREGS: EFER.LME and CR0.PG (long mode) need CR4.PAE and EFER.LMA set too "
                           "(CR4 0x%llx, EFER 0x%llx)",
                           s->cr4, s->efer);
            return -EINVAL;
        }
        if (s->cr3 & soft_bits_from(maxphyaddr)) {
            soft_set_error("KVM_SET_SREGS: CR3 0x%llx lies beyond MAXPHYADDR (%d bits, CPUID 0x80000008)", s->cr3,
                           maxphyaddr);
            return -EINVAL;
        }
    } else if ((s->efer & X86_EFER_LMA) || s->cs.l) {
        soft_set_error("KVM_SET_SREGS: EFER.LMA (EFER 0x%llx) or CS.L (%u) set outside long mode, which needs "
                       "EFER.LME and CR0.PG (CR0 0x%llx)",
                       s->efer, s->cs.l, s->cr0);
        return -EINVAL;
    }
    if (s->cr4 & cr4_rsvd) {
        soft_set_error("KVM_SET_SREGS: CR4 0x%llx has bit(s) 0x%llx that KVM refuses (reserved, or a feature the "
                       "backend or the vCPU's CPUID lacks)",
                       s->cr4, s->cr4 & cr4_rsvd);
        return -EINVAL;
    }
    if ((s->cr0 >> 32) || ((s->cr0 & X86_CR0_NW) && !(s->cr0 & X86_CR0_CD)) ||
        ((s->cr0 & X86_CR0_PG) && !(s->cr0 & X86_CR0_PE))) {
        soft_set_error("KVM_SET_SREGS: CR0 0x%llx: bits 63:32 set, NW without CD, or PG without PE", s->cr0);
        return -EINVAL;
    }
    uint64_t rsvd = soft_bits_from(maxphyaddr) | 0x2ff | (x2apic ? 0 : APIC_BASE_EXTD);
    if ((s->apic_base & rsvd) || ((s->apic_base & APIC_BASE_EXTD) && !(s->apic_base & APIC_BASE_EN))) {
        soft_set_error("KVM_SET_SREGS: IA32_APIC_BASE 0x%llx: reserved bits 0x%llx (x2APIC %s in CPUID), or x2APIC "
                       "mode (bit 10) without the enable bit (11)",
                       s->apic_base, s->apic_base & rsvd, x2apic ? "offered" : "not offered");
        return -EINVAL;
    }
    return 0;
}

/* The CR4 bits KVM refuses whatever the vCPU's CPUID (x86.c cr4_reserved_bits): those of the supported table. */
static uint64_t soft_backend_cr4_rsvd;
static pthread_once_t soft_backend_cr4_once = PTHREAD_ONCE_INIT;

static void soft_backend_cr4_init(void)
{
    struct kvm_cpuid_entry2 tab[SOFT_MAX_CPUID];
    int n = soft_supported_cpuid(tab, SOFT_MAX_CPUID);
    soft_backend_cr4_rsvd = soft_cr4_reserved(tab, n);
}

uint64_t soft_vcpu_cr4_reserved(const struct soft_vcpu *v)
{
    pthread_once(&soft_backend_cr4_once, soft_backend_cr4_init);
    /* KVM's cr4_guest_rsvd_bits: 0 until KVM_SET_CPUID2, so a VMM may set CR4 before it sets a table. */
    return soft_backend_cr4_rsvd | (v->cpuid_set ? soft_cr4_reserved(v->cpuid, v->ncpuid) : 0);
}

int soft_vcpu_sregs_check(const struct soft_vcpu *v, const struct kvm_sregs *s)
{
    const struct kvm_cpuid_entry2 *e = soft_cpuid_find(v->cpuid, v->ncpuid, 1, 0);
    return soft_sregs_check(s, soft_vcpu_cr4_reserved(v), soft_cpuid_maxphyaddr(v->cpuid, v->ncpuid),
                            e && (e->ecx & CPUID_1_ECX_X2APIC));
}

int soft_vcpu_set_cpuid(struct soft_vcpu *v, const struct kvm_cpuid2 *c)
{
    if (c->nent > 256) /* KVM_MAX_CPUID_ENTRIES */
        return -E2BIG;
    if (c->nent > SOFT_MAX_CPUID) {
        soft_set_error("soft backend: KVM_SET_CPUID2 with %u entries: at most %d", c->nent, SOFT_MAX_CPUID);
        return -E2BIG;
    }
    int n = (int)c->nent;
    struct kvm_cpuid_entry2 e2[SOFT_MAX_CPUID];
    memcpy(e2, c->entries, (size_t)n * sizeof e2[0]);
    uint64_t cr4 = soft_rd(v, UC_X86_REG_CR4);
    soft_cpuid_update_runtime(e2, n, cr4, v->apic_base);
    if (v->run_epoch != 0) {
        /* After the first KVM_RUN (KVM's last_vmentry_cpu != -1): only the same table, for VMMs that re-set it. */
        soft_cpuid_update_runtime(v->cpuid, v->ncpuid, cr4, v->apic_base);
        if (n != v->ncpuid) {
            soft_set_error("KVM_SET_CPUID2 after KVM_RUN: %d entries where the vCPU has %d; KVM takes only an "
                           "identical table once the vCPU has run",
                           n, v->ncpuid);
            return -EINVAL;
        }
        for (int i = 0; i < n; i++) {
            const struct kvm_cpuid_entry2 *a = &e2[i], *b = &v->cpuid[i];
            if (a->function != b->function || a->index != b->index || a->flags != b->flags || a->eax != b->eax ||
                a->ebx != b->ebx || a->ecx != b->ecx || a->edx != b->edx) {
                soft_set_error("KVM_SET_CPUID2 after KVM_RUN: entry %d (leaf 0x%x.%u) differs from the vCPU's; KVM "
                               "takes only an identical table once the vCPU has run",
                               i, a->function, a->index);
                return -EINVAL;
            }
        }
        return 0;
    }
    /* kvm_check_cpuid: the canonical-address checks know 48- and 57-bit virtual addresses only. */
    const struct kvm_cpuid_entry2 *x = NULL;
    for (int i = 0; i < n && !x; i++)
        if (e2[i].function == 0x80000008)
            x = &e2[i];
    unsigned vbits = x ? (x->eax >> 8) & 0xff : 0;
    if (vbits != 48 && vbits != 57 && vbits != 0) {
        soft_set_error("KVM_SET_CPUID2: CPUID 0x80000008 EAX[15:8] = %u virtual-address bits: KVM takes 48, 57 or 0",
                       vbits);
        return -EINVAL;
    }
    memcpy(v->cpuid, e2, (size_t)n * sizeof e2[0]);
    v->ncpuid = n;
    v->cpuid_set = true;
    return 0;
}

int soft_vcpu_get_cpuid(struct soft_vcpu *v, struct kvm_cpuid2 *c)
{
    if (c->nent < (uint32_t)v->ncpuid)
        return -E2BIG;
    soft_cpuid_update_runtime(v->cpuid, v->ncpuid, soft_rd(v, UC_X86_REG_CR4), v->apic_base);
    memcpy(c->entries, v->cpuid, (size_t)v->ncpuid * sizeof c->entries[0]);
    c->nent = (uint32_t)v->ncpuid;
    return 0;
}

bool soft_efer_guest_ok(const struct kvm_cpuid_entry2 *tab, int n, uint64_t old, uint64_t efer, uint64_t cr0)
{
    const struct kvm_cpuid_entry2 *e = soft_cpuid_find(tab, n, 0x80000001, 0);
    uint32_t edx = e ? e->edx : 0;
    if (efer & ~SOFT_EFER_KNOWN)
        return false;
    if ((efer & (X86_EFER_LME | X86_EFER_LMA)) && !(edx & CPUID_80000001_EDX_LM))
        return false;
    if ((efer & X86_EFER_NXE) && !(edx & CPUID_80000001_EDX_NX))
        return false;
    return !((cr0 & X86_CR0_PG) && ((old ^ efer) & X86_EFER_LME));
}
