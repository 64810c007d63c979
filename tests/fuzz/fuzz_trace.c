/* libFuzzer target: the trace file reader (mvm_trace_parse, mvm_trace_load) and the event decoders. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "trace.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/*
 * Recomputes the CRCs and the end record's total of a mutated file, as far as its structure goes, so
 * mutations get past the CRC checks to what lies behind them.
 */
static void crcs_fix(uint8_t *d, size_t n)
{
    struct mvm_trace_file_header h;
    struct mvm_trace_block_header b;
    struct mvm_trace_file_end end;
    size_t off = sizeof(h);
    uint64_t events = 0;
    uint32_t magic;

    if (n < sizeof(h) || memcmp(d, MVM_TRACE_MAGIC, 8) != 0)
        return;
    memcpy(&h, d, sizeof(h));
    h.crc = (uint32_t)crc32(0, (const Bytef *)&h, offsetof(struct mvm_trace_file_header, crc));
    memcpy(d, &h, sizeof(h));
    while (n - off >= sizeof(magic)) {
        memcpy(&magic, d + off, sizeof(magic));
        if (magic == MVM_TRACE_END_MAGIC && n - off >= sizeof(end)) {
            memcpy(&end, d + off, sizeof(end));
            end.events = events;
            end.crc = (uint32_t)crc32(0, (const Bytef *)&end, offsetof(struct mvm_trace_file_end, crc));
            memcpy(d + off, &end, sizeof(end));
            return;
        }
        if (magic != MVM_TRACE_BLOCK_MAGIC || n - off < sizeof(b))
            return;
        memcpy(&b, d + off, sizeof(b));
        if (b.count == 0 || b.count > 65536 || (n - off - sizeof(b)) / sizeof(struct mvm_trace_event) < b.count)
            return;
        b.crc = (uint32_t)crc32(0, d + off + sizeof(b), b.count * (uInt)sizeof(struct mvm_trace_event));
        memcpy(d + off, &b, sizeof(b));
        off += sizeof(b) + b.count * sizeof(struct mvm_trace_event);
        events += b.count;
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    size = LLVMFuzzerMutate(data, size, max_size);
    if (seed % 4) /* mostly; the rest test the CRC checks themselves */
        crcs_fix(data, size);
    return size;
}

/* The decoders take any event, valid or not, into buffers of any size. */
static void decode(const struct mvm_trace_event *ev, size_t len)
{
    char buf[300];

    memset(buf, 0x55, sizeof(buf));
    mvm_trace_event_kind(ev, buf, len);
    FUZZ_CHECK(len == 0 || memchr(buf, '\0', len), "event kind not terminated in %zu bytes", len);
    FUZZ_CHECK(len == sizeof(buf) || buf[len] == 0x55, "event kind wrote past %zu bytes", len);
    memset(buf, 0x55, sizeof(buf));
    mvm_trace_event_detail(ev, buf, len);
    FUZZ_CHECK(len == 0 || memchr(buf, '\0', len), "event detail not terminated in %zu bytes", len);
    FUZZ_CHECK(len == sizeof(buf) || buf[len] == 0x55, "event detail wrote past %zu bytes", len);
    FUZZ_CHECK(strlen(mvm_trace_hw_reason_name(ev->flags, ev->reason)) > 0, "empty hw reason name");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_memfile file;
    struct mvm_trace_data d, l;
    int rc, lrc;

    rc = mvm_trace_parse(data, size, "fuzz", &d);
    if (rc == 0) {
        FUZZ_CHECK(d.count == 0 || d.events, "%zu events but no array", d.count);
        FUZZ_CHECK(memchr(d.header.backend, '\0', sizeof(d.header.backend)), "backend name not terminated");
        FUZZ_CHECK(size >= sizeof(struct mvm_trace_file_header) + sizeof(struct mvm_trace_file_end) +
                               d.count * sizeof(struct mvm_trace_event),
                   "%zu events from %zu bytes", d.count, size);
        for (size_t i = 0; i < d.count; i++) {
            FUZZ_CHECK(d.events[i].source >= MVM_TRACE_SRC_USER && d.events[i].source <= MVM_TRACE_SRC_SOFT,
                       "event %zu: source %u accepted", i, d.events[i].source);
            decode(&d.events[i], i < 64 ? 300 - i : 299);
        }
    } else {
        FUZZ_CHECK(rc == -EPROTO || rc == -ENODATA || rc == -ENOTSUP, "mvm_trace_parse: unexpected error %d", rc);
        FUZZ_CHECK(d.events == NULL && d.count == 0, "a failed parse left %zu events", d.count);
        FUZZ_CHECK(strstr(mvm_error(), "fuzz"), "the message does not name the file: %s", mvm_error());
    }
    /* From a file, the verdict must be the same (an empty file is its own case). */
    FUZZ_CHECK(fuzz_memfile_set(&file, data, size) == 0, "memfd: %s", strerror(errno));
    lrc = mvm_trace_load(file.path, &l);
    FUZZ_CHECK(lrc == rc || (size == 0 && lrc == -ENODATA), "load %d but parse %d for the same %zu bytes", lrc, rc,
               size);
    if (lrc == 0)
        FUZZ_CHECK(l.count == d.count && (!d.count || !memcmp(l.events, d.events, d.count * sizeof(*d.events))),
                   "load and parse read different events");
    mvm_trace_data_free(&l);
    mvm_trace_data_free(&d);
    /* Any 64 bytes as an event, and every buffer size the decoders could get. */
    for (size_t off = 0; off + sizeof(struct mvm_trace_event) <= size && off < 16 * 64; off += 64) {
        struct mvm_trace_event ev;

        memcpy(&ev, data + off, sizeof(ev));
        decode(&ev, data[off] % 2 ? data[off + 1] % 64 : 299);
    }
    return 0;
}
