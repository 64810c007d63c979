/* Exit tracing, the reading side: the trace file parser, the live feed reader, and the event decoder. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core_file.h"
#include "core_internal.h"
#include "core_trace_live.h"
#include "trace.h"

/* The parser; on error the caller frees what it had read. */
static int trace_parse(const void *buf, size_t len, const char *name, struct mvm_trace_data *out)
{
    const uint8_t *p = buf;
    struct mvm_trace_file_header h;
    struct mvm_trace_file_end end;
    size_t off = sizeof(h), cap = 0, nblocks = 0;

    memset(out, 0, sizeof(*out));
    if (len < sizeof(h) || memcmp(p, MVM_TRACE_MAGIC, 8) != 0)
        return mvm_fail(EPROTO, "%s: not a minivmm trace file (no %s magic at offset 0)", name, MVM_TRACE_MAGIC);
    memcpy(&h, p, sizeof(h));
    if (h.version != MVM_TRACE_VERSION)
        return mvm_fail(ENOTSUP, "%s: trace format version %u; this reader knows version %u", name, h.version,
                        MVM_TRACE_VERSION);
    if (h.crc != (uint32_t)crc32(0, (const Bytef *)&h, offsetof(struct mvm_trace_file_header, crc)))
        return mvm_fail(EPROTO, "%s: header CRC mismatch (the file is corrupt)", name);
    if (h.header_size != sizeof(h) || h.event_size != sizeof(struct mvm_trace_event))
        return mvm_fail(EPROTO, "%s: header says %u-byte header and %u-byte events, expected %zu and %zu", name,
                        h.header_size, h.event_size, sizeof(h), sizeof(struct mvm_trace_event));
    for (;;) {
        struct mvm_trace_block_header b;
        uint32_t magic;

        if (len - off < sizeof(magic))
            return mvm_fail(ENODATA,
                            "%s: truncated after %zu events at offset %zu: no end record (was the VMM "
                            "killed before it closed the trace?)",
                            name, out->count, off);
        memcpy(&magic, p + off, sizeof(magic));
        if (magic == MVM_TRACE_END_MAGIC)
            break;
        if (magic != MVM_TRACE_BLOCK_MAGIC)
            return mvm_fail(EPROTO, "%s: corrupt at offset %zu: expected a block or the end record, found 0x%08x", name,
                            off, magic);
        if (len - off < sizeof(b))
            return mvm_fail(ENODATA, "%s: truncated inside the header of block %zu at offset %zu", name, nblocks, off);
        memcpy(&b, p + off, sizeof(b));
        off += sizeof(b);
        if (b.reserved != 0)
            return mvm_fail(EPROTO, "%s: block %zu at offset %zu: reserved field is 0x%x, expected 0 (corrupt)", name,
                            nblocks, off - sizeof(b), b.reserved);
        if (b.count == 0 || b.count > 65536)
            return mvm_fail(EPROTO, "%s: block %zu at offset %zu claims %u events (1..65536 allowed)", name, nblocks,
                            off - sizeof(b), b.count);
        if ((len - off) / sizeof(struct mvm_trace_event) < b.count)
            return mvm_fail(ENODATA,
                            "%s: truncated in block %zu: it holds %u events (%zu bytes), the file has %zu "
                            "bytes left",
                            name, nblocks, b.count, (size_t)b.count * sizeof(struct mvm_trace_event), len - off);
        if (b.crc != (uint32_t)crc32(0, p + off, b.count * (uInt)sizeof(struct mvm_trace_event))) {
            mvm_trace_data_free(out);
            return mvm_fail(EPROTO, "%s: block %zu at offset %zu: CRC mismatch (the events are corrupt)", name, nblocks,
                            off - sizeof(b));
        }
        if (out->count + b.count > cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            struct mvm_trace_event *n;

            while (ncap < out->count + b.count)
                ncap *= 2;
            n = realloc(out->events, ncap * sizeof(*n));
            if (!n) {
                mvm_trace_data_free(out);
                return mvm_fail(ENOMEM, "%s: out of memory at %zu events", name, out->count);
            }
            out->events = n;
            cap = ncap;
        }
        memcpy(out->events + out->count, p + off, b.count * sizeof(struct mvm_trace_event));
        for (size_t i = out->count; i < out->count + b.count; i++) {
            uint8_t src = out->events[i].source;

            if (src < MVM_TRACE_SRC_USER || src > MVM_TRACE_SRC_SOFT) {
                mvm_trace_data_free(out);
                return mvm_fail(EPROTO, "%s: event %zu has source %u (1..3 allowed)", name, i, src);
            }
        }
        out->count += b.count;
        off += b.count * sizeof(struct mvm_trace_event);
        nblocks++;
    }
    if (len - off < sizeof(end)) {
        mvm_trace_data_free(out);
        return mvm_fail(ENODATA, "%s: truncated inside the end record at offset %zu", name, off);
    }
    memcpy(&end, p + off, sizeof(end));
    if (end.crc != (uint32_t)crc32(0, (const Bytef *)&end, offsetof(struct mvm_trace_file_end, crc)) ||
        end.events != out->count || end.reserved2 != 0) {
        size_t got = out->count;

        mvm_trace_data_free(out);
        return mvm_fail(EPROTO,
                        "%s: the end record (%llu events) does not match the %zu events read, or its CRC is "
                        "wrong",
                        name, (unsigned long long)end.events, got);
    }
    if (len - off != sizeof(end)) {
        mvm_trace_data_free(out);
        return mvm_fail(EPROTO, "%s: %zu stray bytes after the end record", name, len - off - sizeof(end));
    }
    out->header = h;
    out->header.backend[sizeof(h.backend) - 1] = '\0';
    out->kernel_exits = end.kernel_exits;
    out->kernel_to_user = end.kernel_to_user;
    out->dropped = end.dropped;
    return 0;
}

int mvm_trace_parse(const void *buf, size_t len, const char *name, struct mvm_trace_data *out)
{
    int rc = trace_parse(buf, len, name, out);

    if (rc < 0)
        mvm_trace_data_free(out);
    return rc;
}

int mvm_trace_load(const char *path, struct mvm_trace_data *out)
{
    struct stat st;
    void *buf;
    int fd, rc;

    memset(out, 0, sizeof(*out));
    fd = mvm_file_open_input(NULL, path, &st); /* a FIFO is refused, not waited on */
    if (fd < 0)
        return fd;
    if (st.st_size == 0) {
        close(fd);
        return mvm_fail(ENODATA, "%s: empty file (truncated: no trace header)", path);
    }
    buf = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (buf == MAP_FAILED)
        return mvm_fail(errno, "%s: mmap: %s", path, strerror(errno));
    rc = mvm_trace_parse(buf, (size_t)st.st_size, path, out);
    munmap(buf, (size_t)st.st_size);
    return rc;
}

void mvm_trace_data_free(struct mvm_trace_data *d)
{
    free(d->events);
    d->events = NULL;
    d->count = 0;
}

struct mvm_trace_live {
    const struct mvm_live_header *h;
    size_t len;
    uint64_t tail;
    uint64_t capacity; /* as found at attach: the writer cannot change it under us */
    char backend[16];
};

int mvm_trace_live_attach(const char *path, struct mvm_trace_live **out)
{
    struct mvm_live_header h;
    struct mvm_trace_live *l;
    struct stat st;
    void *map;
    size_t len;
    int fd = mvm_file_open_input("live feed", path, &st); /* a FIFO is refused, not waited on */

    if (fd < 0)
        return fd;
    if ((size_t)st.st_size < sizeof(h) || pread(fd, &h, sizeof(h), 0) != sizeof(h) ||
        memcmp(h.magic, MVM_LIVE_MAGIC, 8) != 0) {
        close(fd);
        return mvm_fail(EPROTO, "live feed %s: not a minivmm live feed (see minivmm run --trace-live)", path);
    }
    if (h.version != MVM_TRACE_VERSION || h.event_size != sizeof(struct mvm_trace_event) || h.capacity == 0 ||
        (h.capacity & (h.capacity - 1)) || h.capacity > (1u << 24)) {
        close(fd);
        return mvm_fail(EPROTO, "live feed %s: version %u, %u-byte events, capacity %u: not what this viewer reads",
                        path, h.version, h.event_size, h.capacity);
    }
    len = sizeof(h) + (size_t)h.capacity * sizeof(struct mvm_trace_event);
    if ((size_t)st.st_size != len) {
        close(fd);
        return mvm_fail(EPROTO, "live feed %s: %lld bytes, expected %zu", path, (long long)st.st_size, len);
    }
    map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return mvm_fail(errno, "live feed %s: mmap: %s", path, strerror(errno));
    l = calloc(1, sizeof(*l));
    if (!l) {
        munmap(map, len);
        return mvm_fail(ENOMEM, "live feed: out of memory");
    }
    l->h = map;
    l->len = len;
    l->capacity = h.capacity;
    memcpy(l->backend, h.backend, sizeof(l->backend));
    l->backend[sizeof(l->backend) - 1] = '\0';
    *out = l;
    return 0;
}

size_t mvm_trace_live_read(struct mvm_trace_live *l, struct mvm_trace_event *dst, size_t max, uint64_t *lost)
{
    const struct mvm_trace_event *slots = (const struct mvm_trace_event *)(l->h + 1);
    uint64_t cap = l->capacity, mask = cap - 1;
    uint64_t head = atomic_load_explicit((_Atomic uint64_t *)&l->h->head, memory_order_acquire), n, safe;

    if (head - l->tail > cap) {
        *lost += head - cap - l->tail;
        l->tail = head - cap;
    }
    n = head - l->tail < max ? head - l->tail : max;
    for (uint64_t i = 0; i < n; i++)
        dst[i] = slots[(l->tail + i) & mask];
    /* The writer may have lapped the copy: events at or below head2 - capacity are suspect. */
    atomic_thread_fence(memory_order_acquire);
    head = atomic_load_explicit((_Atomic uint64_t *)&l->h->head, memory_order_relaxed);
    safe = head >= cap ? head - cap + 1 : 0;
    if (l->tail < safe) {
        uint64_t bad = safe - l->tail < n ? safe - l->tail : n;

        memmove(dst, dst + bad, (size_t)(n - bad) * sizeof(*dst));
        *lost += safe - l->tail;
        l->tail = l->tail + n > safe ? l->tail + n : safe;
        return (size_t)(n - bad);
    }
    l->tail += n;
    return (size_t)n;
}

bool mvm_trace_live_finished(const struct mvm_trace_live *l)
{
    if (atomic_load_explicit((_Atomic uint32_t *)&l->h->finished, memory_order_acquire))
        return true;
    return kill((pid_t)l->h->pid, 0) != 0 && errno == ESRCH;
}

const char *mvm_trace_live_backend(const struct mvm_trace_live *l)
{
    return l->backend;
}

pid_t mvm_trace_live_pid(const struct mvm_trace_live *l)
{
    return (pid_t)l->h->pid;
}

uint64_t mvm_trace_live_start_ns(const struct mvm_trace_live *l)
{
    return l->h->start_ns;
}

void mvm_trace_live_detach(struct mvm_trace_live *l)
{
    if (!l)
        return;
    munmap((void *)l->h, l->len);
    free(l);
}

static const char *const svm_names[] = {
    [0x00] = "read_cr0",
    [0x03] = "read_cr3",
    [0x04] = "read_cr4",
    [0x10] = "write_cr0",
    [0x13] = "write_cr3",
    [0x14] = "write_cr4",
    [0x40] = "DE excp",
    [0x41] = "DB excp",
    [0x43] = "BP excp",
    [0x46] = "UD excp",
    [0x47] = "NM excp",
    [0x48] = "DF excp",
    [0x4d] = "GP excp",
    [0x4e] = "PF excp",
    [0x51] = "AC excp",
    [0x52] = "MC excp",
    [0x60] = "interrupt",
    [0x61] = "nmi",
    [0x62] = "smi",
    [0x63] = "init",
    [0x64] = "vintr",
    [0x65] = "cr0_sel_write",
    [0x6e] = "rdtsc",
    [0x6f] = "rdpmc",
    [0x70] = "pushf",
    [0x71] = "popf",
    [0x72] = "cpuid",
    [0x74] = "iret",
    [0x75] = "swint",
    [0x76] = "invd",
    [0x77] = "pause",
    [0x78] = "hlt",
    [0x79] = "invlpg",
    [0x7a] = "invlpga",
    [0x7b] = "io",
    [0x7c] = "msr",
    [0x7d] = "task_switch",
    [0x7f] = "shutdown",
    [0x80] = "vmrun",
    [0x81] = "hypercall",
    [0x82] = "vmload",
    [0x83] = "vmsave",
    [0x84] = "stgi",
    [0x85] = "clgi",
    [0x86] = "skinit",
    [0x87] = "rdtscp",
    [0x88] = "icebp",
    [0x89] = "wbinvd",
    [0x8a] = "monitor",
    [0x8b] = "mwait",
    [0x8d] = "xsetbv",
    [0x8f] = "write_efer_trap",
    [0x90] = "write_cr0_trap",
    [0x94] = "write_cr4_trap",
    [0x98] = "write_cr8_trap",
    [0xa2] = "invpcid",
    [0xa5] = "buslock",
    [0xa6] = "idle-halt",
};

static const char *const vmx_names[] = {
    [0] = "EXCEPTION_NMI",
    [1] = "EXTERNAL_INTERRUPT",
    [2] = "TRIPLE_FAULT",
    [3] = "INIT_SIGNAL",
    [7] = "INTERRUPT_WINDOW",
    [8] = "NMI_WINDOW",
    [9] = "TASK_SWITCH",
    [10] = "CPUID",
    [12] = "HLT",
    [13] = "INVD",
    [14] = "INVLPG",
    [15] = "RDPMC",
    [16] = "RDTSC",
    [18] = "VMCALL",
    [28] = "CR_ACCESS",
    [29] = "DR_ACCESS",
    [30] = "IO_INSTRUCTION",
    [31] = "MSR_READ",
    [32] = "MSR_WRITE",
    [33] = "INVALID_STATE",
    [36] = "MWAIT_INSTRUCTION",
    [37] = "MONITOR_TRAP_FLAG",
    [39] = "MONITOR_INSTRUCTION",
    [40] = "PAUSE_INSTRUCTION",
    [43] = "TPR_BELOW_THRESHOLD",
    [44] = "APIC_ACCESS",
    [45] = "EOI_INDUCED",
    [46] = "GDTR_IDTR",
    [47] = "LDTR_TR",
    [48] = "EPT_VIOLATION",
    [49] = "EPT_MISCONFIG",
    [51] = "RDTSCP",
    [52] = "PREEMPTION_TIMER",
    [54] = "WBINVD",
    [55] = "XSETBV",
    [56] = "APIC_WRITE",
    [62] = "PML_FULL",
};

static const char *const soft_names[] = {
    [MVM_SOFT_EV_CPUID] = "cpuid", [MVM_SOFT_EV_HYPERCALL] = "hypercall", [MVM_SOFT_EV_RDTSC] = "rdtsc",
    [MVM_SOFT_EV_MSR] = "msr",     [MVM_SOFT_EV_EXCEPTION] = "exception",
};

const char *mvm_trace_hw_reason_name(uint8_t flags, uint32_t code)
{
    static _Thread_local char buf[24];

    if ((flags & MVM_TRACE_F_ISA_SVM) && code == 0x400)
        return "npf";
    if ((flags & MVM_TRACE_F_ISA_SVM) && code < sizeof(svm_names) / sizeof(svm_names[0]) && svm_names[code])
        return svm_names[code];
    if ((flags & MVM_TRACE_F_ISA_VMX) && (code & 0xffff) < sizeof(vmx_names) / sizeof(vmx_names[0]) &&
        vmx_names[code & 0xffff])
        return vmx_names[code & 0xffff];
    snprintf(buf, sizeof(buf), "hw 0x%x", code);
    return buf;
}

void mvm_trace_event_kind(const struct mvm_trace_event *ev, char *buf, size_t len)
{
    switch (ev->source) {
    case MVM_TRACE_SRC_USER:
        snprintf(buf, len, "%s", mvm_exit_name(ev->reason));
        break;
    case MVM_TRACE_SRC_KERNEL:
        snprintf(buf, len, "kernel %s", mvm_trace_hw_reason_name(ev->flags, ev->reason));
        break;
    default:
        snprintf(buf, len, "kernel %s",
                 ev->reason < sizeof(soft_names) / sizeof(soft_names[0]) && soft_names[ev->reason]
                     ? soft_names[ev->reason]
                     : "?");
        break;
    }
}

static void data_hex(char *buf, size_t len, uint64_t data, uint64_t bytes)
{
    size_t used = 0;

    if (len)
        buf[0] = '\0';
    for (uint64_t i = 0; i < bytes && i < 8 && used + 3 <= len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%02x", (unsigned)((data >> (8 * i)) & 0xff));
}

void mvm_trace_event_detail(const struct mvm_trace_event *ev, char *buf, size_t len)
{
    char hex[20], hw[40] = "";

    if (ev->flags & MVM_TRACE_F_HW)
        snprintf(hw, sizeof(hw), " [hw %s]", mvm_trace_hw_reason_name(ev->flags, ev->hw_reason));
    if (ev->source == MVM_TRACE_SRC_SOFT) {
        snprintf(buf, len, "x%u in the soft backend during this run", ev->count);
        return;
    }
    if (ev->source == MVM_TRACE_SRC_KERNEL) {
        bool svm = ev->flags & MVM_TRACE_F_ISA_SVM, vmx = ev->flags & MVM_TRACE_F_ISA_VMX;

        if (svm && ev->reason == 0x7b)
            snprintf(buf, len, "%s port=0x%04x size=%u%s", (ev->addr & 1) ? "in" : "out", (unsigned)(ev->addr >> 16),
                     (ev->addr & 0x10)   ? 1u
                     : (ev->addr & 0x20) ? 2u
                                         : 4u,
                     (ev->addr & 8) ? " rep" : "");
        else if (vmx && ev->reason == 30)
            snprintf(buf, len, "%s port=0x%04x size=%u", (ev->addr & 8) ? "in" : "out",
                     (unsigned)(ev->addr >> 16) & 0xffff, (unsigned)(ev->addr & 7) + 1);
        else if (svm && ev->reason == 0x400)
            snprintf(buf, len, "gpa=0x%llx error=0x%llx", (unsigned long long)ev->data, (unsigned long long)ev->addr);
        else
            snprintf(buf, len, "info1=0x%llx info2=0x%llx", (unsigned long long)ev->addr, (unsigned long long)ev->data);
        return;
    }
    switch (ev->reason) {
    case KVM_EXIT_IO:
        data_hex(hex, sizeof(hex), ev->data, (uint64_t)ev->size * ev->count);
        snprintf(buf, len, "%s port=0x%04x size=%u count=%u data=%s%s", (ev->flags & MVM_TRACE_F_WRITE) ? "out" : "in",
                 (unsigned)ev->addr, ev->size, ev->count, hex, hw);
        break;
    case KVM_EXIT_MMIO:
        data_hex(hex, sizeof(hex), ev->data, ev->size);
        snprintf(buf, len, "%s gpa=0x%llx len=%u data=%s%s", (ev->flags & MVM_TRACE_F_WRITE) ? "write" : "read",
                 (unsigned long long)ev->addr, ev->size, hex, hw);
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        snprintf(buf, len, "suberror=%llu%s", (unsigned long long)ev->data, hw);
        break;
    case KVM_EXIT_FAIL_ENTRY:
        snprintf(buf, len, "hardware reason=0x%llx%s", (unsigned long long)ev->data, hw);
        break;
    default:
        snprintf(buf, len, "%s", hw[0] ? hw + 1 : "");
        break;
    }
}
