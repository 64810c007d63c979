/* The soft backend: the KVM API on the Unicorn CPU emulator; system and VM fds, memory slots, dirty log. */
#include "backend.h"
#include "soft_irqchip.h"
#include "soft_msr.h"
#include "soft_priv.h"
#include "soft_pv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

static _Thread_local char soft_last_error[256];

void soft_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(soft_last_error, sizeof soft_last_error, fmt, ap);
    va_end(ap);
}

const char *mvm_soft_last_error(void)
{
    return soft_last_error;
}

/* fd -> object. Every fd is a real process fd (eventfd or memfd), so it never collides with the VMM's files. */
struct soft_obj {
    enum soft_kind kind;
    void *p;
};

static pthread_mutex_t soft_table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct soft_obj *soft_table;
static int soft_table_len;

static int soft_table_put(int fd, enum soft_kind kind, void *p)
{
    pthread_mutex_lock(&soft_table_lock);
    if (fd >= soft_table_len) {
        int n = soft_table_len ? soft_table_len : 64;
        while (n <= fd)
            n *= 2;
        struct soft_obj *t = realloc(soft_table, (size_t)n * sizeof *t);
        if (!t) {
            pthread_mutex_unlock(&soft_table_lock);
            return -ENOMEM;
        }
        memset(t + soft_table_len, 0, (size_t)(n - soft_table_len) * sizeof *t);
        soft_table = t;
        soft_table_len = n;
    }
    soft_table[fd] = (struct soft_obj){kind, p};
    pthread_mutex_unlock(&soft_table_lock);
    return 0;
}

static void *soft_table_get(int fd, enum soft_kind kind)
{
    void *p = NULL;
    pthread_mutex_lock(&soft_table_lock);
    if (fd >= 0 && fd < soft_table_len && soft_table[fd].kind == kind)
        p = soft_table[fd].p;
    pthread_mutex_unlock(&soft_table_lock);
    return p;
}

static enum soft_kind soft_table_take(int fd, void **p)
{
    enum soft_kind k = 0;
    pthread_mutex_lock(&soft_table_lock);
    if (fd >= 0 && fd < soft_table_len && soft_table[fd].kind) {
        k = soft_table[fd].kind;
        *p = soft_table[fd].p;
        soft_table[fd] = (struct soft_obj){0, NULL};
    }
    pthread_mutex_unlock(&soft_table_lock);
    return k;
}

static int soft_new_fd(void)
{
    int fd = eventfd(0, EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static int soft_sys_token; /* the system fd needs no state; the table only needs a non-NULL pointer */

static int soft_open_dev(void)
{
    int r = soft_layout_probe();
    if (r < 0)
        return r;
    int fd = soft_new_fd();
    if (fd < 0)
        return fd;
    r = soft_table_put(fd, SOFT_SYS, &soft_sys_token);
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

uint8_t *soft_gpa_to_hva(struct soft_vm *vm, uint64_t gpa, uint64_t len)
{
    for (int i = 0; i < SOFT_MAX_SLOTS; i++) {
        struct soft_slot *s = &vm->slots[i];
        if (s->used && gpa >= s->gpa && gpa - s->gpa < s->size && len <= s->size - (gpa - s->gpa))
            return s->hva + (gpa - s->gpa);
    }
    return NULL;
}

static int soft_sys_ioctl(unsigned long req, unsigned long arg)
{
    switch (req) {
    case KVM_GET_API_VERSION:
        return arg ? -EINVAL : KVM_API_VERSION;
    case KVM_CHECK_EXTENSION:
        return soft_check_extension(NULL, (long)arg);
    case KVM_GET_VCPU_MMAP_SIZE:
        return arg ? -EINVAL : (int)SOFT_RUN_SIZE;
    case KVM_CREATE_VM: {
        if (arg != 0)
            return -EINVAL; /* only the default machine type, as on x86 */
        struct soft_vm *vm = calloc(1, sizeof *vm);
        if (!vm)
            return -ENOMEM;
        pthread_mutex_init(&vm->lock, NULL);
        vm->refs = 1;
        soft_vm_clock_init(vm);
        int fd = soft_new_fd();
        if (fd < 0) {
            free(vm);
            return fd;
        }
        vm->fd = fd;
        int r = soft_table_put(fd, SOFT_VM, vm);
        if (r < 0) {
            close(fd);
            free(vm);
            return r;
        }
        return fd;
    }
    case KVM_GET_SUPPORTED_CPUID: {
        struct kvm_cpuid2 *c = (struct kvm_cpuid2 *)arg;
        if (!c)
            return -EFAULT;
        struct kvm_cpuid_entry2 tab[SOFT_MAX_CPUID];
        int n = soft_supported_cpuid(tab, SOFT_MAX_CPUID);
        if (c->nent < 1 || c->nent < (uint32_t)n)
            return -E2BIG;
        memcpy(c->entries, tab, (size_t)n * sizeof tab[0]);
        c->nent = (uint32_t)n;
        return 0;
    }
    case KVM_GET_MSR_INDEX_LIST:
    case KVM_GET_MSR_FEATURE_INDEX_LIST: {
        struct kvm_msr_list *l = (struct kvm_msr_list *)arg;
        if (!l)
            return -EFAULT;
        uint32_t want = l->nmsrs, n;
        const uint32_t *index = req == KVM_GET_MSR_INDEX_LIST ? soft_msr_index_list(&n) : soft_msr_feature_list(&n);
        l->nmsrs = n;
        if (want < n)
            return -E2BIG;
        memcpy(l->indices, index, n * sizeof index[0]);
        return 0;
    }
    case KVM_GET_MSRS: /* the feature MSRs (KVM_CAP_GET_MSR_FEATURES) */
        if (!arg)
            return -EFAULT;
        return soft_msr_feature_msrs((struct kvm_msrs *)arg);
    case KVM_GET_SUPPORTED_HV_CPUID: /* soft_hv_cpuid.c */
        if (!arg)
            return -EFAULT;
        return soft_get_supported_hv_cpuid((struct kvm_cpuid2 *)arg);
    default:
        soft_set_error("soft backend: system ioctl 0x%lx is not supported", req);
        return -EINVAL; /* x86 KVM's answer to an unknown system ioctl */
    }
}

/* Drop one reference; the last one frees the VM (its RAM belongs to the VMM). */
static void soft_vm_unref(struct soft_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    int left = --vm->refs;
    pthread_mutex_unlock(&vm->lock);
    if (left > 0)
        return;
    for (int i = 0; i < SOFT_MAX_SLOTS; i++)
        free(vm->slots[i].snapshot);
    soft_irqchip_vm_destroy(vm);
    soft_smm_vm_destroy(vm);
    soft_msr_filter_free(vm->msr_filter);
    pthread_mutex_destroy(&vm->lock);
    free(vm);
}

static int soft_set_memory_region(struct soft_vm *vm, const struct kvm_userspace_memory_region *m)
{
    uint32_t as_id = m->slot >> 16, id = m->slot & 0xffff;
    if (m->flags & ~(uint32_t)KVM_MEM_LOG_DIRTY_PAGES) {
        soft_set_error("soft backend: memory region flags 0x%x not supported (only KVM_MEM_LOG_DIRTY_PAGES)", m->flags);
        return -EINVAL;
    }
    if ((m->memory_size | m->guest_phys_addr) & (SOFT_PAGE - 1))
        return -EINVAL;
    if (m->memory_size && (m->userspace_addr & (SOFT_PAGE - 1)))
        return -EINVAL;
    if (as_id > 1 || id >= SOFT_MAX_SLOTS) /* vm is already as_id's address space (soft_vm_as) */
        return -EINVAL;
    if (m->guest_phys_addr + m->memory_size < m->guest_phys_addr)
        return -EINVAL;
    struct soft_slot *s = &vm->slots[id];
    if (m->memory_size == 0) {
        if (!s->used)
            return -EINVAL;
        free(s->snapshot);
        *s = (struct soft_slot){0};
        vm->slots_gen++;
        return 0;
    }
    if (m->guest_phys_addr + m->memory_size > 1ull << soft_gpa_bits()) {
        /* KVM's kvm_arch_prepare_memory_region: the last gfn must be below the MMU's reach (MAXPHYADDR). */
        soft_set_error("soft backend: slot at gpa 0x%llx size 0x%llx ends beyond MAXPHYADDR (%u bits: 0x%llx)",
                       (unsigned long long)m->guest_phys_addr, (unsigned long long)m->memory_size, soft_gpa_bits(),
                       1ull << soft_gpa_bits());
        return -EINVAL;
    }
    if (s->used && (m->userspace_addr != (uint64_t)(uintptr_t)s->hva || m->memory_size != s->size))
        return -EINVAL; /* KVM allows moving a slot and changing its flags, never resizing it in place */
    for (int i = 0; i < SOFT_MAX_SLOTS; i++) {
        struct soft_slot *o = &vm->slots[i];
        if (i == (int)id || !o->used)
            continue;
        if (m->guest_phys_addr < o->gpa + o->size && o->gpa < m->guest_phys_addr + m->memory_size)
            return -EEXIST;
    }
    uint8_t *snap = s->snapshot;
    if ((m->flags & KVM_MEM_LOG_DIRTY_PAGES) && !snap) {
        snap = malloc(m->memory_size);
        if (!snap)
            return -ENOMEM;
        memcpy(snap, (void *)(uintptr_t)m->userspace_addr, m->memory_size);
    } else if (!(m->flags & KVM_MEM_LOG_DIRTY_PAGES)) {
        free(snap);
        snap = NULL;
    }
    bool moved = !s->used || s->gpa != m->guest_phys_addr;
    *s = (struct soft_slot){.used = true,
                            .flags = m->flags,
                            .gpa = m->guest_phys_addr,
                            .size = m->memory_size,
                            .hva = (uint8_t *)(uintptr_t)m->userspace_addr,
                            .snapshot = snap};
    if (moved)
        vm->slots_gen++;
    return 0;
}

/* Dirty pages by comparison with the snapshot taken at the previous call: no page protection tricks, no signals. */
static int soft_get_dirty_log(struct soft_vm *vm, const struct kvm_dirty_log *d)
{
    uint32_t as_id = d->slot >> 16, id = d->slot & 0xffff;
    if (as_id > 1 || id >= SOFT_MAX_SLOTS || !vm->slots[id].used)
        return -EINVAL;
    struct soft_slot *s = &vm->slots[id];
    if (!s->snapshot)
        return -ENOENT;
    if (!d->dirty_bitmap)
        return -EFAULT;
    uint64_t npages = s->size / SOFT_PAGE;
    uint64_t *bm = d->dirty_bitmap;
    memset(bm, 0, (npages + 63) / 64 * 8);
    for (uint64_t p = 0; p < npages; p++) {
        uint8_t *now = s->hva + p * SOFT_PAGE, *old = s->snapshot + p * SOFT_PAGE;
        if (memcmp(now, old, SOFT_PAGE) != 0) {
            bm[p / 64] |= 1ull << (p % 64);
            memcpy(old, now, SOFT_PAGE);
        }
    }
    return 0;
}

static int soft_vm_ioctl(struct soft_vm *vm, unsigned long req, unsigned long arg)
{
    switch (req) {
    case KVM_SET_USER_MEMORY_REGION: {
        if (!arg)
            return -EFAULT;
        const struct kvm_userspace_memory_region *m = (const struct kvm_userspace_memory_region *)arg;
        pthread_mutex_lock(&vm->lock);
        struct soft_vm *as = soft_vm_as(vm, m->slot >> 16); /* address space 0, or 1 (SMRAM: soft_smm.c) */
        int r = as ? soft_set_memory_region(as, m) : -EINVAL;
        if (as && as != vm)
            vm->slots_gen++; /* a vCPU in SMM maps its address space again */
        pthread_mutex_unlock(&vm->lock);
        return r;
    }
    case KVM_CREATE_VCPU: {
        int id = (int)arg;
        if (arg >= SOFT_MAX_VCPUS)
            return -EINVAL;
        pthread_mutex_lock(&vm->lock);
        int pre = soft_vm_vcpu_precreate(vm, arg);
        if (pre < 0) {
            pthread_mutex_unlock(&vm->lock);
            return pre;
        }
        for (int i = 0; i < SOFT_MAX_VCPUS; i++) {
            if (vm->vcpus[i] && vm->vcpus[i]->id == id) {
                pthread_mutex_unlock(&vm->lock);
                return -EEXIST;
            }
        }
        int slot = -1;
        for (int i = 0; i < SOFT_MAX_VCPUS && slot < 0; i++)
            if (!vm->vcpus[i])
                slot = i;
        struct soft_vcpu *v = NULL;
        int r = slot < 0 ? -EINVAL : soft_vcpu_create(vm, id, &v);
        if (r == 0) {
            r = soft_table_put(v->fd, SOFT_VCPU, v);
            if (r < 0)
                soft_vcpu_destroy(v);
        }
        if (r == 0) {
            vm->vcpus[slot] = v;
            vm->refs++;
            vm->created_vcpus++;
            r = v->fd;
        }
        pthread_mutex_unlock(&vm->lock);
        return r;
    }
    case KVM_GET_DIRTY_LOG: {
        if (!arg)
            return -EFAULT;
        pthread_mutex_lock(&vm->lock);
        struct soft_vm *as = soft_vm_as(vm, ((const struct kvm_dirty_log *)arg)->slot >> 16);
        int r = as ? soft_get_dirty_log(as, (const struct kvm_dirty_log *)arg) : -EINVAL;
        pthread_mutex_unlock(&vm->lock);
        return r;
    }
    case KVM_GET_CLOCK:
        if (!arg)
            return -EFAULT;
        return soft_vm_clock_get(vm, (struct kvm_clock_data *)arg);
    case KVM_SET_CLOCK:
        if (!arg)
            return -EFAULT;
        return soft_vm_clock_set(vm, (const struct kvm_clock_data *)arg);
    case KVM_SET_BOOT_CPU_ID:
        return soft_vm_set_boot_cpu_id(vm, arg);
    case KVM_SET_NR_MMU_PAGES:
        return arg < 64 ? -EINVAL : 0; /* KVM_MIN_ALLOC_MMU_PAGES; the soft MMU has no shadow pages to bound */
    case KVM_SET_TSS_ADDR:
    case KVM_SET_IDENTITY_MAP_ADDR:
        return 0; /* real-mode helpers of VMX; nothing to do here, as on AMD */
    case KVM_CHECK_EXTENSION:
        return soft_check_extension(vm, (long)arg);
    case KVM_ENABLE_CAP:
        if (!arg)
            return -EFAULT;
        return soft_vm_enable_cap(vm, (const struct kvm_enable_cap *)arg);
    case KVM_X86_SET_MSR_FILTER: /* soft_msr_filter.c */
        if (!arg)
            return -EFAULT;
        return soft_vm_set_msr_filter(vm, (const struct kvm_msr_filter *)arg);
    case KVM_CREATE_PIT2:
    case KVM_GET_PIT2:
    case KVM_SET_PIT2:
    case KVM_REINJECT_CONTROL:
    case KVM_CREATE_IRQCHIP:
    case KVM_IRQ_LINE:
    case KVM_IRQ_LINE_STATUS:
    case KVM_GET_IRQCHIP:
    case KVM_SET_IRQCHIP:
    case KVM_SIGNAL_MSI:
    case KVM_IRQFD:
    case KVM_IOEVENTFD:
    case KVM_SET_GSI_ROUTING:
        return soft_irqchip_vm_ioctl(vm, req, arg);
    default:
        soft_set_error("soft backend: VM ioctl 0x%lx is not supported", req);
        return -ENOTTY;
    }
}

static int soft_ioctl(int fd, unsigned long req, unsigned long arg)
{
    /* One look at the table (one lock) per ioctl: KVM_RUN comes through here at every exit. */
    struct soft_obj o = {0, NULL};
    pthread_mutex_lock(&soft_table_lock);
    if (fd >= 0 && fd < soft_table_len)
        o = soft_table[fd];
    pthread_mutex_unlock(&soft_table_lock);
    switch (o.kind) {
    case SOFT_SYS:
        return soft_sys_ioctl(req, arg);
    case SOFT_VM:
        return soft_vm_ioctl(o.p, req, arg);
    case SOFT_VCPU:
        return soft_vcpu_ioctl(o.p, req, arg);
    default:
        return -EBADF;
    }
}

static void *soft_mmap_run(int vcpu_fd, size_t len)
{
    if (!soft_table_get(vcpu_fd, SOFT_VCPU)) {
        errno = EBADF;
        return NULL;
    }
    if (len == 0 || len > SOFT_RUN_SIZE) {
        errno = EINVAL;
        return NULL;
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

static int soft_munmap_run(void *run, size_t len)
{
    return munmap(run, len) == 0 ? 0 : -errno;
}

static int soft_close(int fd)
{
    void *p = NULL;
    enum soft_kind k = soft_table_take(fd, &p);
    if (!k)
        return -EBADF;
    if (k == SOFT_VM) {
        int r = close(fd) == 0 ? 0 : -errno;
        soft_vm_unref(p);
        return r;
    }
    if (k == SOFT_VCPU) {
        struct soft_vcpu *v = p;
        struct soft_vm *vm = v->vm;
        pthread_mutex_lock(&vm->lock);
        for (int i = 0; i < SOFT_MAX_VCPUS; i++)
            if (vm->vcpus[i] == v)
                vm->vcpus[i] = NULL;
        pthread_mutex_unlock(&vm->lock);
        soft_vcpu_destroy(v); /* closes v->fd */
        soft_vm_unref(vm);
        return 0;
    }
    return close(fd) == 0 ? 0 : -errno;
}

int mvm_soft_stats_get(int vcpu_fd, struct mvm_backend_stats *out)
{
    struct soft_vcpu *v = soft_table_get(vcpu_fd, SOFT_VCPU);
    if (!v)
        return -EBADF;
    *out = v->stats;
    return 0;
}

const struct mvm_backend mvm_backend_soft = {
    .name = "soft",
    .open_dev = soft_open_dev,
    .ioctl = soft_ioctl,
    .mmap_run = soft_mmap_run,
    .munmap_run = soft_munmap_run,
    .close = soft_close,
    .in_process = true,
    .stats_get = mvm_soft_stats_get,
    .last_error = mvm_soft_last_error,
    .virtual_ns = mvm_soft_virtual_ns,
};
