/* Unit tests of exit tracing: file round trip, truncated/corrupt/foreign files, the live feed, decoding, a traced run.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "lab_parts.h"
#include "trace.h"

#define NEVENTS 1000 /* several blocks and a partial last one */

static char tmpdir[64];

static int dir_make(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_trace.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int dir_remove(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Event i: every field set from i, so a swapped or shifted event shows. */
static struct mvm_trace_event event_make(uint32_t i)
{
    return (struct mvm_trace_event){
        .enter_ns = 1000 + 10ull * i,
        .exit_ns = 1005 + 10ull * i,
        .done_ns = 1008 + 10ull * i,
        .rip = 0x1000 + i,
        .addr = 0x3f8 + (i % 3),
        .data = 0x41 + i,
        .reason = i % 7 ? KVM_EXIT_IO : KVM_EXIT_HLT,
        .hw_reason = i,
        .count = 1,
        .vcpu = (uint8_t)(i % 2),
        .source = (uint8_t)(1 + i % 3),
        .flags = MVM_TRACE_F_RIP,
        .size = 1,
    };
}

/* Writes a trace of n events to path; returns the file's bytes (caller frees) and size. */
static uint8_t *trace_write(const char *path, uint32_t n, size_t *len)
{
    struct mvm_trace *t;
    FILE *f;
    uint8_t *buf;
    long sz;

    assert_int_equal(mvm_trace_create("kvm", 128, &t), 0);
    assert_int_equal(mvm_trace_file_open(t, path), 0);
    for (uint32_t i = 0; i < n; i++) {
        struct mvm_trace_event ev = event_make(i);

        mvm_trace_add(t, &ev);
    }
    assert_int_equal(mvm_trace_close(t), 0);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    sz = ftell(f);
    rewind(f);
    buf = malloc((size_t)sz);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *len = (size_t)sz;
    return buf;
}

static void round_trip(void **state)
{
    char path[128];
    struct mvm_trace_data d;
    size_t len;
    uint8_t *buf;

    (void)state;
    snprintf(path, sizeof(path), "%s/rt.trace", tmpdir);
    buf = trace_write(path, NEVENTS, &len);
    assert_int_equal(mvm_trace_load(path, &d), 0);
    assert_int_equal(d.count, NEVENTS);
    assert_string_equal(d.header.backend, "kvm");
    assert_int_equal(d.header.version, MVM_TRACE_VERSION);
    assert_int_equal(d.header.pid, getpid());
    for (uint32_t i = 0; i < NEVENTS; i++) {
        struct mvm_trace_event want = event_make(i);

        assert_memory_equal(&d.events[i], &want, sizeof(want));
    }
    mvm_trace_data_free(&d);
    /* An empty trace is a valid trace. */
    free(buf);
    buf = trace_write(path, 0, &len);
    assert_int_equal(len, sizeof(struct mvm_trace_file_header) + sizeof(struct mvm_trace_file_end));
    assert_int_equal(mvm_trace_load(path, &d), 0);
    assert_int_equal(d.count, 0);
    free(buf);
}

static void ring_keeps_newest(void **state)
{
    struct mvm_trace *t;
    struct mvm_trace_event out[200];
    struct mvm_trace_counts c;

    (void)state;
    assert_int_equal(mvm_trace_create("soft", 100, &t), 0); /* rounded up to 128 */
    for (uint32_t i = 0; i < 300; i++) {
        struct mvm_trace_event ev = event_make(i);

        mvm_trace_add(t, &ev);
    }
    assert_int_equal(mvm_trace_ring_copy(t, out, 200), 128);
    assert_int_equal(out[0].hw_reason, 300 - 128);
    assert_int_equal(out[127].hw_reason, 299);
    mvm_trace_counts_get(t, &c);
    assert_int_equal(c.events, 300);
    assert_int_equal(c.user, 100); /* source 1 for i % 3 == 0 */
    assert_false(c.kernel_on);
    assert_int_equal(mvm_trace_close(t), 0);
}

/* Every proper prefix of a valid file is rejected with a message naming the file; none crashes. */
static void truncated_files(void **state)
{
    char path[128];
    struct mvm_trace_data d;
    size_t len;
    uint8_t *buf;

    (void)state;
    snprintf(path, sizeof(path), "%s/trunc.trace", tmpdir);
    buf = trace_write(path, 300, &len);
    for (size_t n = 0; n < len; n++) {
        int rc = mvm_trace_parse(buf, n, "cut.trace", &d);

        if (rc != -ENODATA && rc != -EPROTO)
            fail_msg("prefix of %zu bytes: rc %d (%s)", n, rc, mvm_error());
        assert_non_null(strstr(mvm_error(), "cut.trace"));
        assert_null(d.events);
    }
    /* Cut after the first block: says truncated, and how far it got. */
    assert_int_equal(mvm_trace_parse(buf, len - sizeof(struct mvm_trace_file_end), "cut.trace", &d), -ENODATA);
    assert_non_null(strstr(mvm_error(), "truncated after 300 events"));
    /* Through the file API too, and for an empty file. */
    assert_int_equal(truncate(path, 100), 0);
    assert_int_equal(mvm_trace_load(path, &d), -ENODATA);
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(mvm_trace_load(path, &d), -ENODATA);
    assert_non_null(strstr(mvm_error(), "empty"));
    free(buf);
}

/* Any single flipped byte anywhere is caught (CRCs, magics, reserved fields). */
static void corrupt_files(void **state)
{
    char path[128];
    struct mvm_trace_data d;
    size_t len;
    uint8_t *buf;

    (void)state;
    snprintf(path, sizeof(path), "%s/corrupt.trace", tmpdir);
    buf = trace_write(path, 300, &len);
    for (size_t i = 0; i < len; i++) {
        int rc;

        buf[i] ^= 0x5a;
        rc = mvm_trace_parse(buf, len, "bad.trace", &d);
        buf[i] ^= 0x5a;
        if (rc >= 0)
            fail_msg("byte %zu flipped: accepted", i);
        assert_null(d.events);
    }
    /* Garbage after the end, and a file that is not a trace at all. */
    assert_int_equal(mvm_trace_parse(buf, len - 1, "bad.trace", &d) < 0, 1);
    assert_int_equal(
        mvm_trace_parse("hello, world, this is not a trace file at all, no sir, not one bit.", 66, "text.txt", &d),
        -EPROTO);
    assert_non_null(strstr(mvm_error(), "not a minivmm trace"));
    assert_int_equal(mvm_trace_load("/nonexistent/x.trace", &d), -ENOENT);
    assert_non_null(strstr(mvm_error(), "/nonexistent/x.trace"));
    free(buf);
}

static void wrong_version(void **state)
{
    char path[128];
    struct mvm_trace_data d;
    struct mvm_trace_file_header h;
    size_t len;
    uint8_t *buf;

    (void)state;
    snprintf(path, sizeof(path), "%s/v2.trace", tmpdir);
    buf = trace_write(path, 10, &len);
    memcpy(&h, buf, sizeof(h));
    h.version = 2;
    h.crc = (uint32_t)crc32(0, (const Bytef *)&h, offsetof(struct mvm_trace_file_header, crc));
    memcpy(buf, &h, sizeof(h));
    assert_int_equal(mvm_trace_parse(buf, len, "v2.trace", &d), -ENOTSUP);
    assert_non_null(strstr(mvm_error(), "version 2"));
    free(buf);
}

static void live_feed(void **state)
{
    char path[128];
    struct mvm_trace *t;
    struct mvm_trace_live *l;
    static struct mvm_trace_event out[70000];
    uint64_t lost = 0;
    size_t n;

    (void)state;
    snprintf(path, sizeof(path), "%s/feed.live", tmpdir);
    assert_int_equal(mvm_trace_live_attach(path, &l), -ENOENT);
    assert_int_equal(mvm_trace_create("kvm", 64, &t), 0);
    assert_int_equal(mvm_trace_live_open(t, path), 0);
    assert_int_equal(mvm_trace_live_attach(path, &l), 0);
    assert_string_equal(mvm_trace_live_backend(l), "kvm");
    assert_int_equal(mvm_trace_live_read(l, out, 10, &lost), 0);
    for (uint32_t i = 0; i < 50; i++) {
        struct mvm_trace_event ev = event_make(i);

        mvm_trace_add(t, &ev);
    }
    assert_int_equal(mvm_trace_live_read(l, out, 20, &lost), 20);
    assert_int_equal(mvm_trace_live_read(l, out + 20, 100, &lost), 30);
    assert_int_equal(lost, 0);
    for (uint32_t i = 0; i < 50; i++)
        assert_int_equal(out[i].hw_reason, i);
    assert_false(mvm_trace_live_finished(l));
    /* A reader that falls a whole ring behind loses the oldest, and says how many. */
    for (uint32_t i = 50; i < 50 + 70000; i++) {
        struct mvm_trace_event ev = event_make(i);

        mvm_trace_add(t, &ev);
    }
    n = mvm_trace_live_read(l, out, 70000, &lost);
    assert_int_equal(n + lost, 70000);
    assert_true(lost > 0);
    assert_int_equal(out[n - 1].hw_reason, 50 + 70000 - 1);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(out[i].hw_reason, out[i - 1].hw_reason + 1);
    assert_int_equal(mvm_trace_close(t), 0);
    assert_true(mvm_trace_live_finished(l));
    mvm_trace_live_detach(l);
    /* A file that is not a feed. */
    snprintf(path, sizeof(path), "%s/rt.trace", tmpdir);
    assert_int_equal(mvm_trace_live_attach(path, &l), -EPROTO);
}

static void decode(void **state)
{
    struct mvm_trace_event io = {.source = MVM_TRACE_SRC_USER,
                                 .reason = KVM_EXIT_IO,
                                 .addr = 0x3f8,
                                 .size = 1,
                                 .count = 1,
                                 .data = 0x48,
                                 .flags = MVM_TRACE_F_WRITE};
    struct mvm_trace_event npf = {
        .source = MVM_TRACE_SRC_KERNEL, .reason = 0x400, .addr = 6, .data = 0xd0000000, .flags = MVM_TRACE_F_ISA_SVM};
    struct mvm_trace_event kio = {
        .source = MVM_TRACE_SRC_KERNEL, .reason = 0x7b, .addr = (0x3f8u << 16) | 0x10, .flags = MVM_TRACE_F_ISA_SVM};
    struct mvm_trace_event soft = {.source = MVM_TRACE_SRC_SOFT, .reason = MVM_SOFT_EV_CPUID, .count = 3};
    char buf[128];

    (void)state;
    mvm_trace_event_kind(&io, buf, sizeof(buf));
    assert_string_equal(buf, "IO");
    mvm_trace_event_detail(&io, buf, sizeof(buf));
    assert_string_equal(buf, "out port=0x03f8 size=1 count=1 data=48");
    io.flags |= MVM_TRACE_F_HW | MVM_TRACE_F_ISA_SVM;
    io.hw_reason = 0x7b;
    mvm_trace_event_detail(&io, buf, sizeof(buf));
    assert_string_equal(buf, "out port=0x03f8 size=1 count=1 data=48 [hw io]");
    mvm_trace_event_kind(&npf, buf, sizeof(buf));
    assert_string_equal(buf, "kernel npf");
    mvm_trace_event_detail(&npf, buf, sizeof(buf));
    assert_string_equal(buf, "gpa=0xd0000000 error=0x6");
    mvm_trace_event_detail(&kio, buf, sizeof(buf));
    assert_string_equal(buf, "out port=0x03f8 size=1");
    mvm_trace_event_kind(&soft, buf, sizeof(buf));
    assert_string_equal(buf, "kernel cpuid");
    assert_string_equal(mvm_trace_hw_reason_name(MVM_TRACE_F_ISA_VMX, 30), "IO_INSTRUCTION");
    assert_string_equal(mvm_trace_hw_reason_name(0, 0x1234), "hw 0x1234");
}

/* A traced run of lab1/hello: one user event per exit, in the exit dump's order, with its port. */
static void traced_run(void **state)
{
    const char *dir = getenv("MINIVMM_GUEST_DIR");
    const struct mvm_backend *be;
    struct mvm_vm *vm = NULL;
    struct mvm_vcpu *vcpu;
    struct mvm_trace *t;
    struct mvm_run_result res;
    struct mvm_run_opts opts = {.max_exits = 1000, .max_ms = 10000};
    struct mvm_trace_event ev[256];
    char path[256], *dump = NULL, *line;
    size_t dump_len = 0, n;
    FILE *dumpf;

    (void)state;
    snprintf(path, sizeof(path), "%s/lab1/hello.bin", dir ? dir : "build/guests");
    if (access(path, R_OK) != 0) {
        printf("skip: no guest %s (make guests; or set MINIVMM_GUEST_DIR)\n", path);
        skip();
    }
    if (mvm_backend_pick(getenv("MINIVMM_BACKEND") ? getenv("MINIVMM_BACKEND") : "auto", &be) < 0 || !be) {
        printf("skip: no backend: %s\n", mvm_error());
        skip();
    }
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vm_mem_add(vm, 0, 2 << 20, 0), 0);
    assert_int_equal(vm_devices_add_standard(vm, NULL), 0);
    assert_int_equal(vm_load_file(vm, path, 0x1000, NULL), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    assert_int_equal(lab1_vcpu_setup_real(vcpu, 0x1000), 0);
    assert_int_equal(mvm_trace_create(be->name, 256, &t), 0);
    dumpf = open_memstream(&dump, &dump_len);
    opts.exit_dump = dumpf;
    opts.trace = t;
    assert_int_equal(vcpu_run(vcpu, &opts, &res), 0);
    fclose(dumpf);
    assert_int_equal(res.stop, MVM_STOP_DONE);
    n = mvm_trace_ring_copy(t, ev, 256);
    line = dump;
    for (size_t i = 0; i < n; i++) {
        unsigned port;
        char *nl = strchr(line, '\n');

        if (ev[i].source != MVM_TRACE_SRC_USER)
            continue; /* in-kernel work, if the backend did any */
        assert_non_null(nl);
        assert_int_equal(sscanf(line, "IO out port=0x%x", &port), 1);
        assert_int_equal(ev[i].reason, KVM_EXIT_IO);
        assert_int_equal(ev[i].addr, port);
        assert_true(ev[i].enter_ns <= ev[i].exit_ns && ev[i].exit_ns <= ev[i].done_ns);
        line = nl + 1;
    }
    assert_string_equal(line, ""); /* every dumped exit had its event */
    {
        struct mvm_trace_counts c;

        mvm_trace_counts_get(t, &c);
        assert_int_equal(c.user, res.exits);
    }
    free(dump);
    assert_int_equal(mvm_trace_close(t), 0);
    vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),    cmocka_unit_test(ring_keeps_newest), cmocka_unit_test(truncated_files),
        cmocka_unit_test(corrupt_files), cmocka_unit_test(wrong_version),     cmocka_unit_test(live_feed),
        cmocka_unit_test(decode),        cmocka_unit_test(traced_run),
    };

    return cmocka_run_group_tests(tests, dir_make, dir_remove);
}
