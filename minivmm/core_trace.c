/* Exit tracing, the recording side: the ring, the trace file and the live feed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core_file.h"
#include "core_internal.h"
#include "trace.h"

#include "core_trace_live.h"

struct mvm_trace {
    char backend[16];
    uint64_t start_ns;
    uint64_t (*clock)(void); /* NULL: CLOCK_MONOTONIC */
    struct mvm_trace_event *ring;
    uint64_t ring_mask;
    uint64_t head;
    struct mvm_trace_counts counts;

    int fd; /* trace file, -1 when none */
    char *path;
    struct mvm_trace_event block[MVM_TRACE_BLOCK_EVENTS];
    uint32_t nblock;
    int file_err;
    char file_msg[200];

    struct mvm_live_header *live;
    size_t live_len;

    struct mvm_kexit *kexit;
    bool hw_pending; /* the kernel saw the exit the VMM is about to record */
    struct mvm_trace_event hw;

    bool rip_sync; /* kvm: RIP from kvm_run's synced registers */
    bool stats;    /* the backend counts its in-kernel work (backend.h stats_get) */
    struct mvm_backend_stats stats_last;
};

int mvm_trace_create(const char *backend, size_t ring_events, struct mvm_trace **out)
{
    struct mvm_trace *t = calloc(1, sizeof(*t));
    size_t cap = 64;

    if (!t)
        return mvm_fail(ENOMEM, "trace: out of memory");
    while (cap < ring_events && cap < ((size_t)1 << 24))
        cap <<= 1;
    t->ring = calloc(cap, sizeof(*t->ring));
    if (!t->ring) {
        free(t);
        return mvm_fail(ENOMEM, "trace: no memory for a ring of %zu events", cap);
    }
    t->ring_mask = cap - 1;
    t->fd = -1;
    snprintf(t->backend, sizeof(t->backend), "%s", backend ? backend : "");
    t->start_ns = mvm_trace_now_ns();
    *out = t;
    return 0;
}

uint64_t mvm_trace_clock(const struct mvm_trace *t)
{
    return !t ? 0 : t->clock ? t->clock() : mvm_trace_now_ns();
}

void mvm_trace_clock_set(struct mvm_trace *t, uint64_t (*clock)(void))
{
    t->clock = clock;
    t->start_ns = mvm_trace_clock(t);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void file_error(struct mvm_trace *t, int err)
{
    if (t->file_err)
        return;
    t->file_err = err;
    snprintf(t->file_msg, sizeof(t->file_msg), "trace file %s: write failed: %s", t->path, strerror(-err));
}

int mvm_trace_file_open(struct mvm_trace *t, const char *path)
{
    struct mvm_trace_file_header h = {0};
    struct stat st;
    int rc;

    if (t->fd >= 0)
        return mvm_fail(EBUSY, "trace: a trace file is already open");
    t->fd = mvm_file_open_output("trace file", path, &st);
    if (t->fd < 0) {
        rc = t->fd;
        t->fd = -1;
        return rc;
    }
    free(t->path);
    t->path = strdup(path);
    memcpy(h.magic, MVM_TRACE_MAGIC, sizeof(h.magic));
    h.version = MVM_TRACE_VERSION;
    h.header_size = sizeof(h);
    h.event_size = sizeof(struct mvm_trace_event);
    h.start_ns = t->start_ns;
    memcpy(h.backend, t->backend, sizeof(h.backend));
    h.pid = t->clock ? 0 : (uint32_t)getpid(); /* a deterministic run's file names no process */
    h.flags = t->kexit ? MVM_TRACE_HDR_KERNEL : 0;
    h.crc = (uint32_t)crc32(0, (const Bytef *)&h, offsetof(struct mvm_trace_file_header, crc));
    /* A write error here is kept, like any later one, and reported by mvm_trace_close. */
    rc = write_all(t->fd, &h, sizeof(h));
    if (rc < 0)
        file_error(t, rc);
    return 0;
}

static void block_flush(struct mvm_trace *t)
{
    struct mvm_trace_block_header b = {.magic = MVM_TRACE_BLOCK_MAGIC, .count = t->nblock};
    int rc;

    if (t->file_err)
        t->nblock = 0; /* the file is already broken: drop the block, or the next events overrun it */
    if (!t->nblock)
        return;
    b.crc = (uint32_t)crc32(0, (const Bytef *)t->block, t->nblock * sizeof(t->block[0]));
    rc = write_all(t->fd, &b, sizeof(b));
    if (rc == 0)
        rc = write_all(t->fd, t->block, t->nblock * sizeof(t->block[0]));
    if (rc < 0)
        file_error(t, rc);
    t->nblock = 0;
}

/*
 * May the live feed replace what is at path (lstat'ed into *st)? Only an old
 * feed: a regular file with the feed's magic, whose VMM is gone.
 */
static int live_replace_check(const char *path, const struct stat *st)
{
    struct mvm_live_header h;
    struct stat now;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);

    if (fd < 0)
        return mvm_fail(errno, "live feed %s: %s", path, strerror(errno));
    n = fstat(fd, &now) == 0 && mvm_file_same(&now, st) && S_ISREG(now.st_mode) ? pread(fd, &h, sizeof(h), 0) : -1;
    close(fd);
    if (n != (ssize_t)sizeof(h) || memcmp(h.magic, MVM_LIVE_MAGIC, sizeof(h.magic)) != 0)
        return mvm_fail(EEXIST,
                        "live feed %s: the file exists and is not a minivmm live feed (no %s magic); "
                        "refusing to replace it: remove it, or give a new path",
                        path, MVM_LIVE_MAGIC);
    if (!atomic_load(&h.finished) && h.pid != (uint32_t)getpid() && (kill((pid_t)h.pid, 0) == 0 || errno == EPERM))
        return mvm_fail(EBUSY,
                        "live feed %s: is the feed of a running minivmm (pid %u); give another path, or "
                        "remove the file if that process is not a minivmm",
                        path, h.pid);
    return 0;
}

int mvm_trace_live_open(struct mvm_trace *t, const char *path)
{
    size_t len = sizeof(struct mvm_live_header) + (size_t)MVM_LIVE_EVENTS * sizeof(struct mvm_trace_event);
    char tmp[4096];
    struct mvm_live_header *h;
    struct stat old, now;
    bool exists;
    int fd, rc;

    if (t->live)
        return mvm_fail(EBUSY, "trace: a live feed is already open");
    rc = mvm_file_check_replace("live feed", path, &old, &exists);
    if (rc == 0 && exists)
        rc = live_replace_check(path, &old);
    if (rc < 0)
        return rc;
    /* Built under a temporary name and renamed: a viewer never maps a half-made feed. */
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
        return mvm_fail(ENAMETOOLONG, "live feed %s: path too long", path);
    fd = mkostemp(tmp, O_CLOEXEC); /* a new file (O_EXCL): never one that was there */
    if (fd < 0)
        return mvm_fail(errno, "live feed %s: cannot create a file beside it: %s", path, strerror(errno));
    if (fchmod(fd, 0644) != 0 || ftruncate(fd, (off_t)len) != 0) {
        int err = errno;

        close(fd);
        unlink(tmp);
        return mvm_fail(err, "live feed %s: %s", path, strerror(err));
    }
    h = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (h == MAP_FAILED) {
        int err = errno;

        unlink(tmp);
        return mvm_fail(err, "live feed %s: mmap: %s", path, strerror(err));
    }
    memcpy(h->magic, MVM_LIVE_MAGIC, sizeof(h->magic));
    h->version = MVM_TRACE_VERSION;
    h->event_size = sizeof(struct mvm_trace_event);
    h->capacity = MVM_LIVE_EVENTS;
    h->pid = (uint32_t)getpid();
    h->start_ns = t->start_ns;
    memcpy(h->backend, t->backend, sizeof(h->backend));
    atomic_store(&h->head, 0);
    atomic_store(&h->finished, 0);
    if (!exists) {
        /* Nothing was there: take the name only if it is still free. */
        rc = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE);
        if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) /* a file system without it */
            rc = lstat(path, &now) == 0 ? (errno = EEXIST, -1) : rename(tmp, path);
    } else {
        /* The old feed checked above, if it is still the one there. */
        rc = lstat(path, &now) == 0 && mvm_file_same(&now, &old) ? rename(tmp, path) : (errno = EEXIST, -1);
    }
    if (rc != 0) {
        int err = errno;

        munmap(h, len);
        unlink(tmp);
        if (err == EEXIST)
            return mvm_fail(err, "live feed %s: another file took the name meanwhile; refusing to replace it", path);
        return mvm_fail(err, "live feed %s: %s", path, strerror(err));
    }
    t->live = h;
    t->live_len = len;
    return 0;
}

int mvm_trace_kernel_enable(struct mvm_trace *t)
{
    if (t->kexit)
        return 0;
    return mvm_kexit_open((int)getpid(), &t->kexit);
}

void mvm_trace_add(struct mvm_trace *t, const struct mvm_trace_event *ev)
{
    t->ring[t->head++ & t->ring_mask] = *ev;
    t->counts.events++;
    if (ev->source == MVM_TRACE_SRC_USER)
        t->counts.user++;
    else
        t->counts.kernel += ev->source == MVM_TRACE_SRC_SOFT ? ev->count : 1;
    if (t->live) {
        uint64_t i = atomic_load_explicit(&t->live->head, memory_order_relaxed);
        struct mvm_trace_event *slots = (struct mvm_trace_event *)(t->live + 1);

        slots[i & (MVM_LIVE_EVENTS - 1)] = *ev;
        atomic_store_explicit(&t->live->head, i + 1, memory_order_release);
    }
    if (t->fd >= 0) {
        t->block[t->nblock++] = *ev;
        if (t->nblock == MVM_TRACE_BLOCK_EVENTS)
            block_flush(t);
    }
}

/* A kernel event: an in-kernel exit joins the stream; a forwarded one annotates the VMM's next exit. */
static void kexit_take(void *ctx, const struct mvm_trace_event *ev)
{
    struct mvm_trace *t = ctx;

    if (ev->flags & MVM_TRACE_F_HW) {
        t->hw = *ev;
        t->hw_pending = true;
        return;
    }
    mvm_trace_add(t, ev);
}

void mvm_trace_vcpu_attach(struct mvm_trace *t, struct mvm_vcpu *vcpu)
{
    const struct mvm_backend *be = vcpu->vm->be;
    int caps;

    t->stats = be->stats_get && be->stats_get(vcpu->fd, &t->stats_last) == 0;
    /* KVM copies the GPRs into kvm_run on every exit: RIP without a KVM_GET_REGS ioctl. */
    caps = be->in_process ? 0 : be->ioctl(vcpu->vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
    t->rip_sync = caps > 0 && (caps & KVM_SYNC_X86_REGS);
    if (t->rip_sync)
        vcpu->run->kvm_valid_regs |= KVM_SYNC_X86_REGS;
    if (t->kexit)
        mvm_kexit_drain(t->kexit, kexit_take, t);
    t->hw_pending = false;
}

void mvm_trace_vcpu_detach(struct mvm_trace *t, struct mvm_vcpu *vcpu)
{
    if (t->rip_sync)
        vcpu->run->kvm_valid_regs &= ~(uint64_t)KVM_SYNC_X86_REGS;
    if (t->kexit)
        mvm_kexit_drain(t->kexit, kexit_take, t);
    t->hw_pending = false;
}

/* The backend's in-kernel work during the last KVM_RUN (where it counts it), one event per kind that happened. */
static void kernel_events_add(struct mvm_trace *t, struct mvm_vcpu *vcpu, uint64_t enter_ns, uint64_t exit_ns)
{
    struct mvm_backend_stats now;
    const uint64_t *a = (const uint64_t *)&t->stats_last, *b = (const uint64_t *)&now;
    static const uint32_t kinds[] = {MVM_SOFT_EV_CPUID, MVM_SOFT_EV_HYPERCALL, MVM_SOFT_EV_RDTSC, MVM_SOFT_EV_MSR,
                                     MVM_SOFT_EV_EXCEPTION};

    _Static_assert(sizeof(now) == sizeof(kinds) / sizeof(kinds[0]) * sizeof(uint64_t), "backend stats fields");
    if (vcpu->vm->be->stats_get(vcpu->fd, &now) < 0)
        return;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        /* Real KVM takes no exit for these (RDTSC is not intercepted, guest exceptions go to the guest's IDT). */
        if (b[i] == a[i] || kinds[i] == MVM_SOFT_EV_RDTSC || kinds[i] == MVM_SOFT_EV_EXCEPTION)
            continue;
        struct mvm_trace_event ev = {
            .enter_ns = enter_ns,
            .exit_ns = exit_ns,
            .reason = kinds[i],
            .count = b[i] - a[i] > UINT32_MAX ? UINT32_MAX : (uint32_t)(b[i] - a[i]),
            .vcpu = (uint8_t)vcpu->id,
            .source = MVM_TRACE_SRC_SOFT,
        };
        mvm_trace_add(t, &ev);
    }
    t->stats_last = now;
}

void mvm_trace_exit_record(struct mvm_trace *t, struct mvm_vcpu *vcpu, uint64_t enter_ns, uint64_t exit_ns)
{
    const struct kvm_run *run = vcpu->run;
    struct mvm_trace_event ev = {
        .enter_ns = enter_ns,
        .exit_ns = exit_ns,
        .reason = run->exit_reason,
        .count = 1,
        .vcpu = (uint8_t)vcpu->id,
        .source = MVM_TRACE_SRC_USER,
    };
    struct kvm_regs regs;
    uint64_t bytes;

    if (t->kexit)
        mvm_kexit_drain(t->kexit, kexit_take, t);
    if (t->stats)
        kernel_events_add(t, vcpu, enter_ns, exit_ns);
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        ev.addr = run->io.port;
        ev.size = run->io.size;
        ev.count = run->io.count;
        ev.flags |= run->io.direction == KVM_EXIT_IO_OUT ? MVM_TRACE_F_WRITE : 0;
        bytes = (uint64_t)run->io.size * run->io.count;
        if (run->io.data_offset >= sizeof(*run) && run->io.data_offset <= vcpu->run_size &&
            bytes <= vcpu->run_size - run->io.data_offset)
            memcpy(&ev.data, (const uint8_t *)run + run->io.data_offset, bytes < 8 ? bytes : 8);
        break;
    case KVM_EXIT_MMIO:
        ev.addr = run->mmio.phys_addr;
        ev.size = (uint8_t)run->mmio.len;
        ev.flags |= run->mmio.is_write ? MVM_TRACE_F_WRITE : 0;
        memcpy(&ev.data, run->mmio.data, run->mmio.len < 8 ? run->mmio.len : 8);
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        ev.data = run->internal.suberror;
        break;
    case KVM_EXIT_FAIL_ENTRY:
        ev.data = run->fail_entry.hardware_entry_failure_reason;
        break;
    default:
        break;
    }
    if (t->rip_sync) {
        ev.rip = run->s.regs.regs.rip;
        ev.flags |= MVM_TRACE_F_RIP;
    } else if (vcpu->vm->be->in_process && vcpu->vm->be->ioctl(vcpu->fd, KVM_GET_REGS, (unsigned long)&regs) == 0) {
        ev.rip = regs.rip; /* an in-process backend: no syscall */
        ev.flags |= MVM_TRACE_F_RIP;
    }
    if (t->hw_pending) {
        ev.hw_reason = t->hw.hw_reason;
        ev.flags |= MVM_TRACE_F_HW | (t->hw.flags & (MVM_TRACE_F_ISA_VMX | MVM_TRACE_F_ISA_SVM));
        if (!(ev.flags & MVM_TRACE_F_RIP)) {
            ev.rip = t->hw.rip;
            ev.flags |= MVM_TRACE_F_RIP;
        }
        t->hw_pending = false;
    }
    ev.done_ns = mvm_trace_clock(t);
    mvm_trace_add(t, &ev);
}

void mvm_trace_counts_get(const struct mvm_trace *t, struct mvm_trace_counts *out)
{
    *out = t->counts;
    out->kernel_on = t->kexit != NULL;
    if (t->kexit)
        mvm_kexit_counts(t->kexit, &out->kernel_exits, &out->kernel_to_user, &out->dropped);
}

size_t mvm_trace_ring_copy(const struct mvm_trace *t, struct mvm_trace_event *dst, size_t max)
{
    uint64_t cap = t->ring_mask + 1, n = t->head < cap ? t->head : cap;

    if (n > max)
        n = max;
    for (uint64_t i = t->head - n; i < t->head; i++)
        *dst++ = t->ring[i & t->ring_mask];
    return (size_t)n;
}

int mvm_trace_close(struct mvm_trace *t)
{
    int rc = 0;

    if (!t)
        return 0;
    if (t->fd >= 0) {
        struct mvm_trace_file_end end = {.magic = MVM_TRACE_END_MAGIC};
        int wrc;

        block_flush(t);
        end.events = t->counts.events;
        if (t->kexit)
            mvm_kexit_counts(t->kexit, &end.kernel_exits, &end.kernel_to_user, &end.dropped);
        end.crc = (uint32_t)crc32(0, (const Bytef *)&end, offsetof(struct mvm_trace_file_end, crc));
        wrc = t->file_err ? 0 : write_all(t->fd, &end, sizeof(end));
        if (wrc < 0)
            file_error(t, wrc);
        if (close(t->fd) != 0 && !t->file_err)
            file_error(t, -errno);
        if (t->file_err)
            rc = mvm_fail(-t->file_err, "%s", t->file_msg);
    }
    if (t->live) {
        atomic_store_explicit(&t->live->finished, 1, memory_order_release);
        munmap(t->live, t->live_len);
    }
    mvm_kexit_close(t->kexit);
    free(t->path);
    free(t->ring);
    free(t);
    return rc;
}
