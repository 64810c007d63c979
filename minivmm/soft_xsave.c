/*
 * The soft backend's x87/SSE state and XCR0 as KVM hands them to a VMM: KVM_GET/SET_XSAVE, KVM_GET_XSAVE2,
 * KVM_GET/SET_XCRS and KVM_GET/SET_FPU, in the standard XSAVE layout (the rules of Linux's fpu/xstate.c that KVM
 * uses), on the registers the engine keeps.
 */
#include "soft_cpuid.h"
#include "soft_save.h"
#include "soft_uc_state.h"

#include <errno.h>
#include <string.h>

uint64_t soft_xcr0_supported(void)
{
    return SOFT_CPUID_XCR0; /* what KVM_GET_SUPPORTED_CPUID's leaf 0xD offers */
}

size_t soft_xsave_uabi_size(void)
{
    return (soft_xcr0_supported() & SOFT_XFEATURE_YMM) ? SOFT_XSAVE_FULL_SIZE : SOFT_XSAVE_LEGACY_END;
}

int soft_xsave2_size(void)
{
    size_t n = soft_xsave_uabi_size();
    return (int)(n < sizeof(struct kvm_xsave) ? sizeof(struct kvm_xsave) : n);
}

static uint64_t ld64(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static void st64(uint8_t *p, uint64_t x)
{
    memcpy(p, &x, 8);
}

static uint32_t ld32(const uint8_t *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

static void st32(uint8_t *p, uint32_t x)
{
    memcpy(p, &x, 4);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

uint64_t soft_xsave_inuse(const uint8_t *full)
{
    uint64_t inuse = 0;
    uint16_t fcw;
    memcpy(&fcw, full + SOFT_XSAVE_FCW, 2);
    bool fp_init = fcw == SOFT_FCW_INIT && all_zero(full + SOFT_XSAVE_FSW, SOFT_XSAVE_MXCSR - SOFT_XSAVE_FSW);
    for (int i = 0; i < 8 && fp_init; i++)
        fp_init = all_zero(full + SOFT_XSAVE_ST + 16 * i, 10);
    if (!fp_init)
        inuse |= SOFT_XFEATURE_FP;
    if (ld32(full + SOFT_XSAVE_MXCSR) != SOFT_MXCSR_INIT || !all_zero(full + SOFT_XSAVE_XMM, 256))
        inuse |= SOFT_XFEATURE_SSE;
    if (!all_zero(full + SOFT_XSAVE_YMM, 256))
        inuse |= SOFT_XFEATURE_YMM;
    return inuse;
}

/* The x87 part of component 0 in its initial state (bytes 0-23 and the ST registers; MXCSR is apart). */
static void fp_init(uint8_t *p)
{
    uint16_t fcw = SOFT_FCW_INIT;
    memset(p, 0, SOFT_XSAVE_MXCSR);
    memcpy(p + SOFT_XSAVE_FCW, &fcw, 2);
    memset(p + SOFT_XSAVE_ST, 0, SOFT_XSAVE_XMM - SOFT_XSAVE_ST);
}

void soft_xsave_to_uabi(const uint8_t *full, uint64_t xfeatures, uint64_t user_xcr0, uint8_t *out, size_t size)
{
    memset(out, 0, size);
    if (size < SOFT_XSAVE_LEGACY_END)
        return;
    if (xfeatures & SOFT_XFEATURE_FP) {
        memcpy(out, full, SOFT_XSAVE_MXCSR);
        memcpy(out + SOFT_XSAVE_ST, full + SOFT_XSAVE_ST, SOFT_XSAVE_XMM - SOFT_XSAVE_ST);
    } else {
        fp_init(out);
    }
    if (xfeatures & (SOFT_XFEATURE_SSE | SOFT_XFEATURE_YMM)) {
        memcpy(out + SOFT_XSAVE_MXCSR, full + SOFT_XSAVE_MXCSR, 8);
    } else {
        st32(out + SOFT_XSAVE_MXCSR, SOFT_MXCSR_INIT);
        st32(out + SOFT_XSAVE_MXCSR + 4, SOFT_MXCSR_MASK);
    }
    if (xfeatures & SOFT_XFEATURE_SSE)
        memcpy(out + SOFT_XSAVE_XMM, full + SOFT_XSAVE_XMM, 256);
    st64(out + SOFT_XSAVE_SW, user_xcr0); /* xstate_fx_sw_bytes: the user XCR0 word, the rest 0 */
    st64(out + SOFT_XSAVE_HDR, xfeatures);
    if ((xfeatures & SOFT_XFEATURE_YMM) && size >= SOFT_XSAVE_FULL_SIZE)
        memcpy(out + SOFT_XSAVE_YMM, full + SOFT_XSAVE_YMM, 256);
}

int soft_xsave_check(const uint8_t *buf, uint64_t supported)
{
    uint64_t bv = ld64(buf + SOFT_XSAVE_HDR);
    if (bv & ~supported) {
        soft_set_error("soft backend: KVM_SET_XSAVE: XSTATE_BV 0x%llx has components outside the supported 0x%llx",
                       (unsigned long long)bv, (unsigned long long)supported);
        return -EINVAL;
    }
    if (ld64(buf + SOFT_XSAVE_HDR + 8)) {
        soft_set_error("soft backend: KVM_SET_XSAVE: XCOMP_BV must be 0 (the standard, non-compacted format)");
        return -EINVAL;
    }
    if (!all_zero(buf + SOFT_XSAVE_HDR + 16, 48)) {
        soft_set_error("soft backend: KVM_SET_XSAVE: the XSAVE header's reserved bytes 528-575 must be 0");
        return -EINVAL;
    }
    uint32_t mxcsr = ld32(buf + SOFT_XSAVE_MXCSR);
    if ((bv & (SOFT_XFEATURE_FP | SOFT_XFEATURE_SSE | SOFT_XFEATURE_YMM)) && (mxcsr & ~SOFT_MXCSR_MASK)) {
        soft_set_error("soft backend: KVM_SET_XSAVE: MXCSR 0x%x sets reserved bits (mask 0x%x)", mxcsr,
                       SOFT_MXCSR_MASK);
        return -EINVAL;
    }
    return 0;
}

void soft_xsave_from_uabi(uint8_t *full, const uint8_t *buf)
{
    uint64_t bv = ld64(buf + SOFT_XSAVE_HDR);
    uint8_t mxcsr[8];
    memcpy(mxcsr, full + SOFT_XSAVE_MXCSR, 8);
    if (bv & SOFT_XFEATURE_FP) {
        memcpy(full, buf, SOFT_XSAVE_FP_SIZE);
    } else {
        fp_init(full);
        if (bv & (SOFT_XFEATURE_SSE | SOFT_XFEATURE_YMM))
            memcpy(mxcsr, buf + SOFT_XSAVE_MXCSR, 8);
        memcpy(full + SOFT_XSAVE_MXCSR, mxcsr, 8);
    }
    if (bv & SOFT_XFEATURE_SSE)
        memcpy(full + SOFT_XSAVE_XMM, buf + SOFT_XSAVE_XMM, 256);
    else
        memset(full + SOFT_XSAVE_XMM, 0, 256);
    if (bv & SOFT_XFEATURE_YMM)
        memcpy(full + SOFT_XSAVE_YMM, buf + SOFT_XSAVE_YMM, 256);
    else
        memset(full + SOFT_XSAVE_YMM, 0, 256);
}

/* The engine's x87/SSE/AVX registers as a full-state image (every component present, the 64-bit format). */
static void fpu_read(struct soft_vcpu *v, uint8_t *full)
{
    uint16_t fcw = 0, fsw = 0, tag = 0, fop = 0;
    uint32_t mxcsr = 0;
    uint64_t fip = 0, fdp = 0;
    memset(full, 0, SOFT_XSAVE_FULL_SIZE);
    uc_reg_read(v->uc, UC_X86_REG_FPCW, &fcw);
    uc_reg_read(v->uc, UC_X86_REG_FPSW, &fsw); /* with TOP in bits 13:11 */
    uc_reg_read(v->uc, UC_X86_REG_FPTAG, &tag);
    uc_reg_read(v->uc, UC_X86_REG_FOP, &fop);
    uc_reg_read(v->uc, UC_X86_REG_FIP, &fip);
    uc_reg_read(v->uc, UC_X86_REG_FDP, &fdp);
    uc_reg_read(v->uc, UC_X86_REG_MXCSR, &mxcsr);
    uint8_t ftw = 0;
    for (int i = 0; i < 8; i++) /* the full tag word (2 bits a physical register, 3 empty) to FXSAVE's abridged one */
        if (((tag >> (2 * i)) & 3) != 3)
            ftw |= (uint8_t)(1u << i);
    memcpy(full + SOFT_XSAVE_FCW, &fcw, 2);
    memcpy(full + SOFT_XSAVE_FSW, &fsw, 2);
    full[SOFT_XSAVE_FTW] = ftw;
    memcpy(full + SOFT_XSAVE_FOP, &fop, 2);
    st64(full + SOFT_XSAVE_FIP, fip);
    st64(full + SOFT_XSAVE_FDP, fdp);
    st32(full + SOFT_XSAVE_MXCSR, mxcsr);
    st32(full + SOFT_XSAVE_MXCSR + 4, SOFT_MXCSR_MASK);
    for (int i = 0; i < 8; i++) /* ST(i), relative to TOP, as FXSAVE stores them */
        uc_reg_read(v->uc, UC_X86_REG_ST0 + i, full + SOFT_XSAVE_ST + 16 * i);
    for (int i = 0; i < 16; i++) {
        uint8_t y[32];
        uc_reg_read(v->uc, UC_X86_REG_YMM0 + i, y);
        memcpy(full + SOFT_XSAVE_XMM + 16 * i, y, 16);
        memcpy(full + SOFT_XSAVE_YMM + 16 * i, y + 16, 16);
    }
}

/* Load a full-state image into the engine. */
static void fpu_write(struct soft_vcpu *v, const uint8_t *full)
{
    uint16_t fcw, fsw, fop, tag = 0;
    memcpy(&fcw, full + SOFT_XSAVE_FCW, 2);
    memcpy(&fsw, full + SOFT_XSAVE_FSW, 2);
    memcpy(&fop, full + SOFT_XSAVE_FOP, 2);
    uint64_t fip = ld64(full + SOFT_XSAVE_FIP), fdp = ld64(full + SOFT_XSAVE_FDP);
    uint32_t mxcsr = ld32(full + SOFT_XSAVE_MXCSR);
    for (int i = 0; i < 8; i++)
        if (!(full[SOFT_XSAVE_FTW] & (1u << i)))
            tag |= (uint16_t)(3u << (2 * i));
    uc_reg_write(v->uc, UC_X86_REG_FPCW, &fcw);
    uc_reg_write(v->uc, UC_X86_REG_FPSW, &fsw); /* TOP first: ST(i) below are relative to it */
    uc_reg_write(v->uc, UC_X86_REG_FPTAG, &tag);
    uc_reg_write(v->uc, UC_X86_REG_FOP, &fop);
    uc_reg_write(v->uc, UC_X86_REG_FIP, &fip);
    uc_reg_write(v->uc, UC_X86_REG_FDP, &fdp);
    uc_reg_write(v->uc, UC_X86_REG_MXCSR, &mxcsr);
    for (int i = 0; i < 8; i++)
        uc_reg_write(v->uc, UC_X86_REG_ST0 + i, full + SOFT_XSAVE_ST + 16 * i);
    for (int i = 0; i < 16; i++) {
        uint8_t y[32];
        memcpy(y, full + SOFT_XSAVE_XMM + 16 * i, 16);
        memcpy(y + 16, full + SOFT_XSAVE_YMM + 16 * i, 16);
        uc_reg_write(v->uc, UC_X86_REG_YMM0 + i, y);
    }
}

/*
 * Unicorn workaround: the API has no register for XCR0, so the backend keeps it in the CPU state image at an
 * offset found once: an engine whose CPU model has XSAVE runs XSETBV with XCR0 = 1, then 3, and the one 8-byte
 * field that went from 1 to 3 is XCR0. The layout is the same for every CPU model.
 */
static pthread_once_t xcr0_once = PTHREAD_ONCE_INIT;
static long xcr0_off = -1;
static uc_engine *volatile xcr0_engine; /* kept, as soft_uc_probe.c keeps its engines */

static void xcr0_probe(void)
{
    static uint8_t ram[0x2000] __attribute__((aligned(4096)));
    /* xor ecx,ecx; xor edx,edx; mov eax,1; xsetbv; xor eax,eax; hlt; mov eax,3; xsetbv; xor eax,eax; hlt
       (RAX cleared, so that XCR0 is the only field that goes from 1 to 3) */
    static const uint8_t code[] = {0x31, 0xc9, 0x31, 0xd2, 0xb8, 1, 0, 0,    0,    0x0f, 0x01, 0xd1, 0x31,
                                   0xc0, 0xf4, 0xb8, 3,    0,    0, 0, 0x0f, 0x01, 0xd1, 0x31, 0xc0, 0xf4};
    uc_engine *uc = NULL;
    uc_context *c1 = NULL, *c2 = NULL;
    uint64_t cr4 = X86_CR4_OSFXSR | X86_CR4_OSXSAVE | X86_CR4_PAE, rip = 0;
    if (soft_layout_probe() != 0 || uc_open(UC_ARCH_X86, UC_MODE_64, &uc) != UC_ERR_OK)
        return;
    xcr0_engine = uc;
    uc_ctl_set_tcg_buffer_size(uc, 1u << 20); /* two blocks: Unicorn's default 1 GiB is not needed */
    memcpy(ram + 0x1000, code, sizeof code);
    if (uc_ctl_set_cpu_model(uc, UC_CPU_X86_EPYC) != UC_ERR_OK ||
        uc_mem_map_ptr(uc, 0, sizeof ram, UC_PROT_ALL, ram) != UC_ERR_OK ||
        uc_reg_write(uc, UC_X86_REG_CR4, &cr4) != UC_ERR_OK || uc_context_alloc(uc, &c1) != UC_ERR_OK ||
        uc_context_alloc(uc, &c2) != UC_ERR_OK)
        goto out;
    uc_ctl_exits_enable(uc);
    if (uc_emu_start(uc, 0x1000, 0, 0, 0) != UC_ERR_OK || uc_reg_read(uc, UC_X86_REG_RIP, &rip) || rip != 0x100f)
        goto out;
    uc_context_save(uc, c1);
    if (uc_emu_start(uc, 0x100f, 0, 0, 0) != UC_ERR_OK || uc_reg_read(uc, UC_X86_REG_RIP, &rip) || rip != 0x101a)
        goto out;
    uc_context_save(uc, c2);
    const uint8_t *a = (const uint8_t *)c1 + soft_layout.data, *b = (const uint8_t *)c2 + soft_layout.data;
    size_t n = uc_context_size(uc) - soft_layout.data;
    long found = -1;
    for (size_t i = 0; i + 8 <= n; i += 4) {
        if (ld64(a + i) == 1 && ld64(b + i) == 3) {
            if (found >= 0)
                goto out; /* not unique: trust none */
            found = (long)i;
        }
    }
    xcr0_off = found;
out:
    if (c1)
        uc_context_free(c1);
    if (c2)
        uc_context_free(c2);
}

/* The image offset of XCR0, or -1 when this Unicorn's layout could not be found (no KVM_CAP_XCRS then). */
static long xcr0_offset(void)
{
    pthread_once(&xcr0_once, xcr0_probe);
    return xcr0_off;
}

bool soft_xcrs_available(void)
{
    return xcr0_offset() >= 0;
}

void soft_fpu_reset(struct soft_vcpu *v)
{
    uint8_t full[SOFT_XSAVE_FULL_SIZE];
    fpu_read(v, full);
    fp_init(full);
    st32(full + SOFT_XSAVE_MXCSR, SOFT_MXCSR_INIT);
    memset(full + SOFT_XSAVE_XMM, 0, 256);
    memset(full + SOFT_XSAVE_YMM, 0, 256);
    fpu_write(v, full);
    long off = xcr0_offset();
    if (off >= 0) {
        img_load(v);
        img_set_u64(v, (size_t)off, SOFT_XFEATURE_FP); /* kvm_vcpu_reset: XCR0 = x87 */
        img_commit(v);
    }
}

int soft_vcpu_get_xsave(struct soft_vcpu *v, void *buf, size_t size)
{
    uint8_t full[SOFT_XSAVE_FULL_SIZE];
    fpu_read(v, full);
    uint64_t mask =
        (soft_cpuid_guest_xcr0(v->cpuid, v->ncpuid) | SOFT_XFEATURE_FP | SOFT_XFEATURE_SSE) & soft_xcr0_supported();
    soft_xsave_to_uabi(full, soft_xsave_inuse(full) & mask, soft_xcr0_supported(), buf, size);
    return 0;
}

int soft_vcpu_set_xsave(struct soft_vcpu *v, const struct kvm_xsave *x)
{
    const uint8_t *buf = (const uint8_t *)x->region;
    int r = soft_xsave_check(buf, soft_xcr0_supported());
    if (r)
        return r;
    uint8_t full[SOFT_XSAVE_FULL_SIZE];
    fpu_read(v, full);
    soft_xsave_from_uabi(full, buf);
    fpu_write(v, full);
    return 0;
}

int soft_vcpu_get_xcrs(struct soft_vcpu *v, struct kvm_xcrs *x)
{
    long off = xcr0_offset();
    memset(x, 0, sizeof *x);
    if (off < 0)
        return 0; /* as KVM on a host without XSAVE: no XCRs */
    img_load(v);
    x->nr_xcrs = 1;
    x->xcrs[0].xcr = 0; /* XCR_XFEATURE_ENABLED_MASK */
    x->xcrs[0].value = img_u64(v, (size_t)off);
    return 0;
}

int soft_vcpu_set_xcrs(struct soft_vcpu *v, const struct kvm_xcrs *x)
{
    long off = xcr0_offset();
    if (off < 0 || x->nr_xcrs > KVM_MAX_XCRS || x->flags) {
        soft_set_error("soft backend: KVM_SET_XCRS: %s",
                       off < 0 ? "XCR0 is not reachable in this Unicorn build" : "nr_xcrs above 16 or flags not 0");
        return -EINVAL;
    }
    for (uint32_t i = 0; i < x->nr_xcrs; i++) {
        if (x->xcrs[i].xcr != 0)
            continue;
        uint64_t xcr0 = x->xcrs[i].value, allowed = soft_cpuid_guest_xcr0(v->cpuid, v->ncpuid);
        if (!soft_xcr0_valid(xcr0, allowed)) { /* __kvm_set_xcr, as the guest's XSETBV (soft_uc_scan.c) */
            soft_set_error("soft backend: KVM_SET_XCRS: XCR0 0x%llx is not allowed (x87 must be set, AVX needs SSE, "
                           "and only 0x%llx from the vCPU's CPUID leaf 0xD may be set)",
                           (unsigned long long)xcr0, (unsigned long long)(allowed | SOFT_XFEATURE_FP));
            return -EINVAL;
        }
        img_load(v);
        img_set_u64(v, (size_t)off, xcr0);
        img_commit(v);
        break; /* KVM takes the first XCR0 entry */
    }
    return 0;
}

/* KVM_GET_FPU and KVM_SET_FPU take the FXSAVE fields, without MXCSR (KVM 6.1 reports 0 and ignores it). */
int soft_vcpu_get_fpu(struct soft_vcpu *v, struct kvm_fpu *f)
{
    uint8_t full[SOFT_XSAVE_FULL_SIZE];
    fpu_read(v, full);
    memset(f, 0, sizeof *f);
    memcpy(f->fpr, full + SOFT_XSAVE_ST, sizeof f->fpr);
    memcpy(&f->fcw, full + SOFT_XSAVE_FCW, 2);
    memcpy(&f->fsw, full + SOFT_XSAVE_FSW, 2);
    f->ftwx = full[SOFT_XSAVE_FTW];
    memcpy(&f->last_opcode, full + SOFT_XSAVE_FOP, 2);
    f->last_ip = ld64(full + SOFT_XSAVE_FIP);
    f->last_dp = ld64(full + SOFT_XSAVE_FDP);
    memcpy(f->xmm, full + SOFT_XSAVE_XMM, sizeof f->xmm);
    return 0;
}

int soft_vcpu_set_fpu(struct soft_vcpu *v, const struct kvm_fpu *f)
{
    uint8_t full[SOFT_XSAVE_FULL_SIZE];
    fpu_read(v, full);
    memcpy(full + SOFT_XSAVE_ST, f->fpr, sizeof f->fpr);
    memcpy(full + SOFT_XSAVE_FCW, &f->fcw, 2);
    memcpy(full + SOFT_XSAVE_FSW, &f->fsw, 2);
    full[SOFT_XSAVE_FTW] = f->ftwx;
    memcpy(full + SOFT_XSAVE_FOP, &f->last_opcode, 2);
    st64(full + SOFT_XSAVE_FIP, f->last_ip);
    st64(full + SOFT_XSAVE_FDP, f->last_dp);
    memcpy(full + SOFT_XSAVE_XMM, f->xmm, sizeof f->xmm);
    fpu_write(v, full);
    return 0;
}
