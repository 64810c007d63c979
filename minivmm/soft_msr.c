/*
 * The soft backend's MSRs, TSC and kvmclock: the MSRs it keeps itself (TSC, APIC base, kvmclock's), the pvclock
 * and wall-clock pages, KVM_GET/SET_MSRS, and the VM clock (KVM_GET/SET_CLOCK). All clock code is here.
 */
#include "soft_cpuid.h"
#include "soft_irqchip.h"
#include "soft_msr.h"
#include "soft_pv.h"
#include "soft_smm.h"
#include "soft_uc_state.h"

#include <asm/kvm_para.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

static const uint32_t soft_msr_index[] = {
    X86_MSR_TSC,          X86_MSR_APIC_BASE,      X86_MSR_SYSENTER_CS,    X86_MSR_SYSENTER_CS + 1, /* SYSENTER_ESP */
    X86_MSR_SYSENTER_EIP, X86_MSR_EFER,           X86_MSR_STAR, /* then LSTAR, CSTAR */
    X86_MSR_STAR + 1,     X86_MSR_STAR + 2,       X86_MSR_SFMASK,         X86_MSR_FS_BASE,
    X86_MSR_GS_BASE,      X86_MSR_KERNEL_GS_BASE, MSR_KVM_WALL_CLOCK_NEW, MSR_KVM_SYSTEM_TIME_NEW,
    MSR_KVM_WALL_CLOCK,   MSR_KVM_SYSTEM_TIME,    MSR_KVM_STEAL_TIME,     X86_MSR_SMBASE,
    X86_MSR_SMI_COUNT,    X86_MSR_TSC_ADJUST,     X86_MSR_PLATFORM_INFO,
};

const uint32_t *soft_msr_index_list(uint32_t *n)
{
    *n = sizeof soft_msr_index / sizeof soft_msr_index[0];
    return soft_msr_index;
}

bool soft_msr_in_engine(uint32_t idx)
{
    return idx == X86_MSR_EFER || (idx >= X86_MSR_STAR && idx <= X86_MSR_SFMASK) ||
           (idx >= X86_MSR_FS_BASE && idx <= X86_MSR_KERNEL_GS_BASE) ||
           (idx >= X86_MSR_SYSENTER_CS && idx <= X86_MSR_SYSENTER_EIP);
}

void soft_pvclock_scale(uint64_t tsc_khz, uint32_t *mul, int8_t *shift)
{
    /* ns = (tsc_delta << shift) * mul >> 32, with mul = 1e6/khz * 2^32 scaled into 32 bits. */
    int8_t s = 0;
    uint64_t base_hz = tsc_khz * 1000;
    uint64_t target = 1000000000ull;
    while (base_hz > 2 * target) {
        base_hz >>= 1;
        s--;
    }
    while (base_hz <= target) {
        base_hz <<= 1;
        s++;
    }
    *mul = (uint32_t)((target << 32) / base_hz);
    *shift = s;
}

uint64_t soft_host_tsc(void)
{
    return soft_deterministic() ? soft_icount() : __rdtsc();
}

static uint64_t soft_mono_ns(void)
{
    if (soft_deterministic())
        return soft_icount(); /* 1 GHz: one ns per instruction */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static uint64_t soft_realtime_ns(void)
{
    if (soft_deterministic())
        return soft_det_realtime_ns();
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    return (uint64_t)rt.tv_sec * 1000000000 + (uint64_t)rt.tv_nsec;
}

/* The VM clock's reference (master_tsc, master_ns, clock_offset_ns): KVM reads it under pvclock_sc. */
static pthread_mutex_t soft_clock_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * kvmclock at host TSC h, as KVM's master clock gives it (__get_kvmclock): the master's ns plus the host TSC since
 * the master's, scaled as a pvclock page scales it. The vCPUs' pages extrapolate from the same master, so the guest
 * and KVM_GET_CLOCK read one clock.
 */
static uint64_t soft_kvmclock_at(struct soft_vm *vm, uint64_t h)
{
    uint32_t mul;
    int8_t shift;
    soft_pvclock_scale(soft_tsc_khz(), &mul, &shift);
    pthread_mutex_lock(&soft_clock_lock);
    uint64_t d = h - vm->master_tsc, base = vm->master_ns + (uint64_t)vm->clock_offset_ns;
    pthread_mutex_unlock(&soft_clock_lock);
    d = shift >= 0 ? d << shift : d >> -shift;
    return base + (uint64_t)(((unsigned __int128)d * mul) >> 32);
}

uint64_t soft_kvmclock_ns(struct soft_vm *vm)
{
    return soft_kvmclock_at(vm, soft_host_tsc());
}

static pthread_once_t soft_tsc_once = PTHREAD_ONCE_INIT;
static uint64_t soft_tsc_khz_val;

static void soft_tsc_calibrate(void)
{
    uint64_t n0 = soft_mono_ns(), t0 = __rdtsc();
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, NULL);
    uint64_t n1 = soft_mono_ns(), t1 = __rdtsc();
    soft_tsc_khz_val = (t1 - t0) * 1000000 / (n1 - n0);
}

uint64_t soft_tsc_khz(void)
{
    if (soft_deterministic())
        return 1000000;
    pthread_once(&soft_tsc_once, soft_tsc_calibrate);
    return soft_tsc_khz_val;
}

/* Host TSC ticks scaled by the vCPU's ratio (KVM's kvm_scale_tsc). */
static uint64_t soft_tsc_scale(const struct soft_vcpu *v, uint64_t host)
{
    if (v->tsc_ratio == SOFT_TSC_RATIO_ONE)
        return host;
    return (uint64_t)(((unsigned __int128)host * v->tsc_ratio) >> 32);
}

uint64_t soft_guest_tsc(struct soft_vcpu *v)
{
    return soft_tsc_scale(v, soft_host_tsc()) + v->tsc_offset;
}

/* The vCPU in KVM_RUN on this thread (soft_vcpu_ioctl): whose ratio the engine's RDTSC takes. */
__thread struct soft_vcpu *soft_tsc_vcpu;

uint64_t soft_engine_tsc(void)
{
    struct soft_vcpu *v = soft_tsc_vcpu;
    uint64_t h = soft_host_tsc();

    return v ? soft_tsc_scale(v, h) : h;
}

/* KVM's adjust_tsc_khz: khz moved by ppm parts per million. */
static uint64_t soft_khz_ppm(uint64_t khz, int64_t ppm)
{
    return khz * (uint64_t)(1000000 + ppm) / 1000000;
}

/*
 * KVM's KVM_SET_TSC_KHZ on a host with TSC scaling (x86.c kvm_set_tsc_khz): 0 means the host's rate; a rate
 * within 250 ppm of the host's runs unscaled; else the ratio (khz << 32) / host, refused when 0 or at AMD's
 * limit (TSC_RATIO_MAX, 8.32 fixed point). The offset is not touched, so the guest TSC jumps to the new line:
 * a VMM that migrates writes IA32_TSC after it, as QEMU does.
 */
int soft_vcpu_set_tsc_khz(struct soft_vcpu *v, uint32_t khz)
{
    uint64_t host = soft_tsc_khz(), ratio = SOFT_TSC_RATIO_ONE;
    const uint64_t max_ratio = 0xffffffffffull;
    uint64_t max_khz = (uint64_t)(((unsigned __int128)host * max_ratio) >> 32);

    if (max_khz > 0xffffffffu)
        max_khz = 0xffffffffu;
    if (khz >= max_khz) {
        soft_set_error("soft backend: KVM_SET_TSC_KHZ(%u): the rate must be below %llu kHz (this host's %llu kHz "
                       "times the largest TSC ratio)",
                       khz, (unsigned long long)max_khz, (unsigned long long)host);
        return -EINVAL;
    }
    if (khz == 0)
        khz = (uint32_t)host;
    if (khz < soft_khz_ppm(host, -250) || khz > soft_khz_ppm(host, 250)) {
        ratio = (uint64_t)(((unsigned __int128)khz << 32) / host);
        if (ratio == 0 || ratio >= max_ratio) {
            soft_set_error("soft backend: KVM_SET_TSC_KHZ(%u): no TSC ratio for it against this host's %llu kHz", khz,
                           (unsigned long long)host);
            return -EINVAL;
        }
    }
    v->tsc_khz = khz;
    v->tsc_ratio = ratio;
    return 0;
}

void soft_vm_clock_init(struct soft_vm *vm)
{
    vm->master_tsc = soft_host_tsc();
    vm->master_ns = soft_mono_ns();
    vm->clock_offset_ns = -(int64_t)vm->master_ns;
}

int soft_vm_clock_get(struct soft_vm *vm, struct kvm_clock_data *c)
{
    memset(c, 0, sizeof *c);
    c->realtime = soft_realtime_ns();
    c->host_tsc = soft_host_tsc();
    c->clock = soft_kvmclock_at(vm, c->host_tsc); /* the clock at host_tsc exactly, as KVM_CLOCK_HOST_TSC says */
    c->flags = KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;
    return 0;
}

/* KVM_SET_CLOCK: kvmclock moves to c's value (plus the real time since c->realtime with KVM_CLOCK_REALTIME). */
int soft_vm_clock_set(struct soft_vm *vm, const struct kvm_clock_data *c)
{
    /* KVM_CLOCK_VALID_FLAGS: KVM acts on KVM_CLOCK_REALTIME only, and takes KVM_GET_CLOCK's answer back as it is. */
    if (c->flags & ~(uint32_t)(KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)) {
        soft_set_error("soft backend: KVM_SET_CLOCK flags 0x%x: only KVM_CLOCK_TSC_STABLE, REALTIME and HOST_TSC are "
                       "valid",
                       c->flags);
        return -EINVAL;
    }
    uint64_t want = c->clock;
    if (c->flags & KVM_CLOCK_REALTIME) {
        uint64_t now = soft_realtime_ns();
        if (now > c->realtime)
            want += now - c->realtime;
    }
    /* KVM's pvclock_update_vm_gtod_copy: a new master; kvmclock_offset = clock - master_kernel_ns. */
    uint64_t tsc = soft_host_tsc(), ns = soft_mono_ns();
    pthread_mutex_lock(&soft_clock_lock);
    vm->master_tsc = tsc;
    vm->master_ns = ns;
    vm->clock_offset_ns = (int64_t)(want - ns);
    pthread_mutex_unlock(&soft_clock_lock);
    /* KVM: kvm_make_all_cpus_request(KVM_REQ_CLOCK_UPDATE), so each vCPU's page follows the new clock. */
    for (int i = 0; i < SOFT_MAX_VCPUS; i++)
        if (vm->vcpus[i])
            soft_kvmclock_update(vm->vcpus[i]);
    soft_hv_clock_changed(vm); /* and the Hyper-V reference TSC page (soft_hyperv.c) */
    return 0;
}

/* pvclock_vcpu_time_info (the kernel's pvclock-abi.h): what MSR_KVM_SYSTEM_TIME points at. */
struct soft_pvclock {
    uint32_t version, pad0;
    uint64_t tsc_timestamp, system_time;
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    uint8_t flags, pad[2];
};
_Static_assert(sizeof(struct soft_pvclock) == 32, "pvclock_vcpu_time_info layout");
#define SOFT_PVCLOCK_TSC_STABLE_BIT 1

void soft_kvmclock_update(struct soft_vcpu *v)
{
    if (!(v->kvm_system_time & 1))
        return;
    uint64_t gpa = v->kvm_system_time & ~63ull;
    struct soft_pvclock p;
    uint8_t *h = soft_gpa_to_hva(v->vm, gpa, sizeof p);
    if (!h)
        return;
    uint32_t mul;
    int8_t shift;
    /* KVM's kvm_guest_time_update: the scale of the rate the guest TSC really runs at (the host's, scaled). */
    soft_pvclock_scale(soft_tsc_scale(v, soft_tsc_khz()), &mul, &shift);
    memcpy(&p, h, sizeof p);
    uint32_t ver = (p.version + 1) | 1; /* odd while writing, whatever the guest left there */
    memcpy(h, &ver, 4);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint64_t host = soft_host_tsc(); /* one instant: the guest TSC and kvmclock on the VM's master line */
    p.tsc_timestamp = soft_tsc_scale(v, host) + v->tsc_offset;
    p.system_time = soft_kvmclock_at(v->vm, host);
    p.tsc_to_system_mul = mul;
    p.tsc_shift = shift;
    p.flags = SOFT_PVCLOCK_TSC_STABLE_BIT;
    p.version = ver;
    memcpy(h + 4, (uint8_t *)&p + 4, sizeof p - 4);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    ver++;
    memcpy(h, &ver, 4);
}

void soft_pvclock_now(struct soft_vcpu *v, uint64_t *tsc, uint64_t *ns, uint32_t *mul, int8_t *shift)
{
    soft_pvclock_scale(soft_tsc_scale(v, soft_tsc_khz()), mul, shift); /* as soft_kvmclock_update publishes it */
    uint64_t host = soft_host_tsc();
    *tsc = soft_tsc_scale(v, host) + v->tsc_offset;
    *ns = soft_kvmclock_at(v->vm, host);
}

static void soft_publish_wall_clock(struct soft_vcpu *v)
{
    uint8_t *h = soft_gpa_to_hva(v->vm, v->kvm_wall_clock, 12);
    if (!h)
        return;
    uint64_t boot = soft_realtime_ns() - soft_kvmclock_ns(v->vm);
    uint32_t ver, sec = (uint32_t)(boot / 1000000000), nsec = (uint32_t)(boot % 1000000000);
    memcpy(&ver, h, 4);
    ver = (ver | 1) + 1;
    memcpy(h + 4, &sec, 4);
    memcpy(h + 8, &nsec, 4);
    memcpy(h, &ver, 4);
}

static pthread_mutex_t soft_tsc_sync_lock = PTHREAD_MUTEX_INITIALIZER;

/* KVM's __kvm_synchronize_tsc: the VM's record of a TSC write, and a new generation unless it matched. Lock held. */
static void soft_tsc_sync_record(struct soft_vcpu *v, uint64_t offset, uint64_t tsc, uint64_t ns, bool matched)
{
    struct soft_vm *vm = v->vm;
    vm->tsc_sync.last_nsec = ns;
    vm->tsc_sync.last_write = tsc;
    vm->tsc_sync.last_khz = v->tsc_khz;
    vm->tsc_sync.last_offset = offset;
    if (!matched)
        vm->tsc_sync.cur_offset = offset; /* a new generation */
}

void soft_tsc_synchronize(struct soft_vcpu *v, uint64_t data)
{
    struct soft_vm *vm = v->vm;
    uint64_t khz = v->tsc_khz, offset, ns, elapsed;
    bool sync = data == 0; /* a vCPU's reset value: join the others */

    pthread_mutex_lock(&soft_tsc_sync_lock);
    offset = data - soft_tsc_scale(v, soft_host_tsc());
    ns = soft_mono_ns();
    elapsed = ns - vm->tsc_sync.last_nsec;
    if (!sync) {
        /* Within one second (of this vCPU's TSC) of where the last write would be now: an attempt to synchronize. */
        uint64_t expect = vm->tsc_sync.last_write + (uint64_t)((unsigned __int128)elapsed * khz / 1000000);
        uint64_t hz = khz * 1000;
        sync = data < expect + hz && data + hz > expect;
    }
    bool matched = sync && khz == vm->tsc_sync.last_khz;
    if (matched)
        offset = vm->tsc_sync.cur_offset; /* the host TSC is stable: the same offset, not the written value */
    soft_tsc_sync_record(v, offset, data, ns, matched);
    pthread_mutex_unlock(&soft_tsc_sync_lock);
    soft_set_tsc_offset(v, offset);
}

int soft_vcpu_tsc_attr(struct soft_vcpu *v, unsigned long req, const struct kvm_device_attr *a)
{
    uint64_t *uaddr = (uint64_t *)(uintptr_t)a->addr;

    if (a->group != KVM_VCPU_TSC_CTRL || a->attr != KVM_VCPU_TSC_OFFSET) {
        soft_set_error("soft backend: vCPU device attribute group %u attr %llu: only KVM_VCPU_TSC_CTRL's "
                       "KVM_VCPU_TSC_OFFSET (0, 0)",
                       a->group, (unsigned long long)a->attr);
        return -ENXIO;
    }
    if (req == KVM_HAS_DEVICE_ATTR)
        return 0;
    if (!uaddr)
        return -EFAULT;
    if (req == KVM_GET_DEVICE_ATTR) {
        *uaddr = v->tsc_offset; /* L1's offset: the guest TSC is the host's, scaled, plus it */
        return 0;
    }
    /* kvm_arch_tsc_set_attr: the offset as given; it joins the generation when it is the VM's last offset. */
    uint64_t offset = *uaddr;
    pthread_mutex_lock(&soft_tsc_sync_lock);
    struct soft_vm *vm = v->vm;
    bool matched = v->tsc_khz && vm->tsc_sync.last_khz == v->tsc_khz && vm->tsc_sync.last_offset == offset;
    uint64_t tsc = soft_tsc_scale(v, soft_host_tsc()) + offset;
    soft_tsc_sync_record(v, offset, tsc, soft_mono_ns(), matched);
    pthread_mutex_unlock(&soft_tsc_sync_lock);
    soft_set_tsc_offset(v, offset);
    soft_kvmclock_update(v); /* __kvm_synchronize_tsc's kvm_track_tsc_matching: the clock follows */
    return 0;
}

void soft_set_tsc_offset(struct soft_vcpu *v, uint64_t off)
{
    v->tsc_offset = off;
    img_load(v);
    img_set_u64(v, soft_layout.tsc_offset, off);
    img_commit(v);
}

/* KVM writes IA32_TSC_ADJUST only for a vCPU whose CPUID has it (guest_cpuid_has(X86_FEATURE_TSC_ADJUST)). */
static bool soft_tsc_adjust_on(const struct soft_vcpu *v)
{
    const struct kvm_cpuid_entry2 *e = soft_cpuid_find(v->cpuid, v->ncpuid, 7, 0);
    return e && (e->ebx & X86_CPUID_7_EBX_TSC_ADJUST);
}

/*
 * The guest's RDMSR/WRMSR where KVM treats it unlike the VMM's KVM_GET/SET_MSRS (kvm_get/set_msr_common with
 * host_initiated false): a guest write to IA32_TSC moves IA32_TSC_ADJUST by as much, one to IA32_TSC_ADJUST moves
 * the TSC by as much; MSR_PLATFORM_INFO is read-only to the guest, and unreadable once KVM_CAP_MSR_PLATFORM_INFO
 * is turned off. 1 done, 0 not the backend's MSR, -1 KVM injects #GP(0).
 */
int soft_msr_guest(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write)
{
    int hv = soft_hv_msr(v, idx, val, write, false); /* Hyper-V's synthetic MSRs (soft_hyperv.c) */
    if (hv)
        return hv;
    if (idx == X86_MSR_PLATFORM_INFO) {
        if (write || v->vm->platform_info_hidden)
            return -1;
        *val = v->platform_info;
        return 1;
    }
    if (write && idx == X86_MSR_TSC) {
        uint64_t off = *val - soft_tsc_scale(v, soft_host_tsc());
        v->tsc_adjust += off - v->tsc_offset;
        soft_set_tsc_offset(v, off);
        soft_kvmclock_update(v);
        return 1;
    }
    if (write && idx == X86_MSR_TSC_ADJUST) {
        if (soft_tsc_adjust_on(v)) {
            soft_set_tsc_offset(v, v->tsc_offset + (*val - v->tsc_adjust));
            v->tsc_adjust = *val;
            soft_kvmclock_update(v); /* KVM_REQ_CLOCK_UPDATE: the pvclock page follows the TSC */
        }
        return 1;
    }
    return (write ? soft_msr_write(v, idx, *val) : soft_msr_read(v, idx, val)) ? 1 : 0;
}

bool soft_msr_write(struct soft_vcpu *v, uint32_t idx, uint64_t val)
{
    switch (idx) {
    case X86_MSR_TSC: /* the VMM's write: a new TSC line, IA32_TSC_ADJUST unchanged (kvm_synchronize_tsc) */
        soft_tsc_synchronize(v, val);
        soft_kvmclock_update(v); /* KVM: a new TSC line (kvm_synchronize_tsc) updates the clock */
        return true;
    case X86_MSR_TSC_ADJUST: /* the VMM's write sets the MSR only */
        if (soft_tsc_adjust_on(v))
            v->tsc_adjust = val;
        return true;
    case X86_MSR_PLATFORM_INFO: /* KVM refuses clearing CPUID faulting while the guest has it on: never here */
        v->platform_info = val;
        return true;
    case X86_MSR_APIC_BASE:
        v->apic_base = val;
        return true;
    case MSR_KVM_SYSTEM_TIME_NEW:
    case MSR_KVM_SYSTEM_TIME:
        v->kvm_system_time = val;
        soft_kvmclock_update(v);
        return true;
    case MSR_KVM_STEAL_TIME:
        return soft_steal_msr_write(v, val);
    case MSR_KVM_WALL_CLOCK_NEW:
    case MSR_KVM_WALL_CLOCK:
        v->kvm_wall_clock = val;
        soft_publish_wall_clock(v);
        return true;
    default:
        return soft_irqchip_msr(v, idx, &val, true); /* x2APIC, TSC deadline: with an in-kernel APIC */
    }
}

bool soft_msr_read(struct soft_vcpu *v, uint32_t idx, uint64_t *val)
{
    switch (idx) {
    case X86_MSR_TSC:
        *val = soft_guest_tsc(v);
        return true;
    case X86_MSR_TSC_ADJUST:
        *val = v->tsc_adjust;
        return true;
    case X86_MSR_PLATFORM_INFO:
        *val = v->platform_info;
        return true;
    case MSR_KVM_STEAL_TIME:
        *val = v->steal_msr;
        return true;
    case X86_MSR_SMI_COUNT: /* the guest reads it; SMBASE is the VMM's only (soft_smm_msr) */
        return soft_smm_msr(v, idx, val, false, false);
    case X86_MSR_APIC_BASE:
        *val = v->apic_base;
        return true;
    case MSR_KVM_SYSTEM_TIME_NEW:
    case MSR_KVM_SYSTEM_TIME:
        *val = v->kvm_system_time;
        return true;
    case MSR_KVM_WALL_CLOCK_NEW:
    case MSR_KVM_WALL_CLOCK:
        *val = v->kvm_wall_clock;
        return true;
    default:
        return soft_irqchip_msr(v, idx, val, false);
    }
}

int soft_vcpu_msrs(struct soft_vcpu *v, struct kvm_msrs *m, bool set)
{
    if (m->nmsrs >= 256)
        return -E2BIG;
    uint32_t i;
    for (i = 0; i < m->nmsrs; i++) {
        struct kvm_msr_entry *e = &m->entries[i];
        uint64_t val = e->data;
        int hv = soft_hv_msr(v, e->index, &val, set, true); /* Hyper-V's synthetic MSRs (soft_hyperv.c) */
        if (hv < 0)
            break;
        if (hv > 0) {
            e->data = val;
            continue;
        }
        int pv = soft_msr_vmm(v, e->index, &val, set); /* PV features, IA32_MISC_ENABLE (soft_hypercall.c) */
        if (pv < 0)
            break;
        if (pv > 0) {
            e->data = val;
            continue;
        }
        if (soft_smm_msr(v, e->index, &val, set, true) ||
            (set ? soft_msr_write(v, e->index, val) : soft_msr_read(v, e->index, &val))) {
            e->data = val;
            continue;
        }
        if (!soft_msr_in_engine(e->index))
            break;
        uc_x86_msr msr = {.rid = e->index, .value = e->data};
        if (set) {
            if (e->index == X86_MSR_EFER) {
                if (e->data & ~SOFT_EFER_KNOWN)
                    break; /* set_efer: efer_reserved_bits, even from the VMM */
                img_load(v);
                /* The VMM's write keeps LMA as it is (set_efer): KVM_SET_SREGS is how it changes. */
                uint64_t lma = img_u64(v, soft_layout.efer) & X86_EFER_LMA;
                img_set_u64(v, soft_layout.efer, (e->data & ~(uint64_t)X86_EFER_LMA) | lma);
                img_update_hflags(v, soft_rd(v, UC_X86_REG_RFLAGS));
                img_store(v);
                v->seg_check = true;
            } else if (e->index == X86_MSR_FS_BASE || e->index == X86_MSR_GS_BASE) {
                soft_wr(v, e->index == X86_MSR_FS_BASE ? UC_X86_REG_FS_BASE : UC_X86_REG_GS_BASE, e->data);
            } else {
                uc_reg_write(v->uc, UC_X86_REG_MSR, &msr);
            }
        } else {
            uc_reg_read(v->uc, UC_X86_REG_MSR, &msr);
            e->data = msr.value;
        }
    }
    return (int)i;
}
