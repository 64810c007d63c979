/* libFuzzer target: the live feed reader (mvm_trace_live_attach, mvm_trace_live_read) on a feed file anyone could
 * write. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "fuzz_util.h"
#include "trace.h"

/*
 * Input: the feed file's first bytes (its 128-byte header, then event slots). Unless byte 127 (the
 * header's last reserved byte) is odd, the file is padded with zeros or cut to the size the header's
 * capacity implies (capped), so the reader gets past its size check. The next 8-byte words after the
 * header's worth of input also serve as values the "writer" stores into head between reads.
 * What must hold: a read returns at most what was asked, lost counts only grow while head does (a feed
 * whose head goes back is corrupt: its counts may be nonsense), and nothing is read outside the mapping.
 */
#define HDR      128
#define HEAD_OFF 48
#define CAP_MAX  4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_memfile file;
    static uint8_t buf[HDR + CAP_MAX * 64];
    struct mvm_trace_event ev[64];
    struct mvm_trace_live *l;
    size_t len = size < sizeof(buf) ? size : sizeof(buf);
    uint64_t lost = 0, prev_lost = 0, prev_head = 0;
    bool sane = true; /* head never went back */
    uint32_t cap;

    memset(buf, 0, sizeof(buf));
    memcpy(buf, data, len);
    if (len >= HDR && !(buf[HDR - 1] & 1)) {
        memcpy(&cap, buf + 16, sizeof(cap));
        if (cap && !(cap & (cap - 1)) && cap <= CAP_MAX)
            len = HDR + (size_t)cap * 64;
    }
    FUZZ_CHECK(fuzz_memfile_set(&file, buf, len) == 0, "memfd: %s", strerror(errno));
    if (mvm_trace_live_attach(file.path, &l) < 0) {
        FUZZ_CHECK(mvm_error()[0], "attach failed without a message");
        return 0;
    }
    memcpy(&prev_head, buf + HEAD_OFF, sizeof(prev_head));
    FUZZ_CHECK(memchr(mvm_trace_live_backend(l), '\0', 16), "backend name not terminated");
    (void)mvm_trace_live_start_ns(l);
    (void)mvm_trace_live_finished(l);
    for (size_t i = 0; i < 16; i++) {
        size_t max = (size_t)(i < size ? data[i] : i) % 65, n = mvm_trace_live_read(l, ev, max, &lost);
        uint64_t head;

        FUZZ_CHECK(n <= max, "read %zu events into room for %zu", n, max);
        FUZZ_CHECK(!sane || lost >= prev_lost, "lost went down: %llu -> %llu", (unsigned long long)prev_lost,
                   (unsigned long long)lost);
        prev_lost = lost;
        /* The writer moves on: head takes the next value from the input. */
        if (HDR + 8 * (i + 1) > size)
            break;
        memcpy(&head, data + HDR + 8 * i, sizeof(head));
        sane = sane && head >= prev_head;
        prev_head = head;
        FUZZ_CHECK(pwrite(file.fd, &head, sizeof(head), HEAD_OFF) == sizeof(head), "pwrite: %s", strerror(errno));
    }
    mvm_trace_live_detach(l);
    return 0;
}
