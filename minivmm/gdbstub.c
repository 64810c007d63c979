/*
 * The gdb stub: the GDB remote serial protocol (gdb's manual, appendix E) for one vCPU, on either backend
 * through KVM_SET_GUEST_DEBUG. The subset: packets with checksums and acks (and QStartNoAckMode), qSupported,
 * the target description (qXfer:features:read) in the layout of the vCPU's mode when gdb connects (i8086 and
 * i386: 32-bit registers; x86-64), ?, g/G, p/P, m/M, c/s (and vCont), Z0/z0 (INT3 bytes in guest RAM),
 * Z1/z1 (DR0-3), D, k, and monitor commands (qRcmd). Addresses are guest-virtual (linear), through the VMM's
 * own walker, or guest-physical after 'monitor phys on'.
 */
#include "gdbstub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gdbstub_rsp.h"
#include "gdbstub_x86.h"
#include "mvm.h"
#include "x86.h"

#define GDB_SW_BPS  64
#define GDB_SIGTRAP 5

struct gdb_sw_bp {
    bool used;
    uint64_t addr, gpa;
    uint8_t orig;
};

struct mvm_gdb {
    int listen_fd;
    struct gdb_conn c; /* c.fd < 0: no gdb attached */
    uint16_t port;
    FILE *log;
    struct mvm_vcpu *vcpu;
    bool phys;     /* monitor phys on: m/M/Z0 addresses are guest-physical */
    bool layout64; /* the register layout gdb read at connect: x86-64, else i386 */
    int told_mode; /* the code size (16, 32, 64) gdb was last told of */
    bool stepping; /* the last resume was a step */
    bool running;  /* gdb waits for a stop reply */
    /* While the guest runs, a thread watches the connection for gdb's interrupt (Ctrl-C: one 0x03 byte). */
    pthread_t watcher;
    bool watching;
    volatile int watch_stop;  /* the stub wants the connection back */
    volatile int interrupted; /* the stop to report is gdb's interrupt (SIGINT) */
    struct gdb_sw_bp sw[GDB_SW_BPS];
    uint64_t hw[4];
    bool hw_used[4];
};

static int gdb_send(struct mvm_gdb *g, const char *s)
{
    return rsp_send(&g->c, s);
}

static int gdb_console(struct mvm_gdb *g, const char *text)
{
    return rsp_console(&g->c, text);
}

/* The watcher: polls the connection while the guest runs; a 0x03 from gdb interrupts the vCPU. */
static void *watch_thread(void *arg)
{
    struct mvm_gdb *g = arg;
    struct pollfd p = {.fd = g->c.fd, .events = POLLIN};
    uint8_t b;

    while (!g->watch_stop) {
        if (poll(&p, 1, 20) <= 0 || !(p.revents & POLLIN))
            continue;
        if (recv(g->c.fd, &b, 1, MSG_PEEK) != 1)
            break; /* gone: the stub finds out when it next reads */
        if (b != 0x03)
            break; /* a packet while running is for the stub to read once the guest stops */
        if (recv(g->c.fd, &b, 1, 0) == 1) {
            g->interrupted = 1;
            vcpu_debug_break(g->vcpu);
        }
        break;
    }
    return NULL;
}

static void watch_start(struct mvm_gdb *g)
{
    g->watch_stop = 0;
    g->watching = pthread_create(&g->watcher, NULL, watch_thread, g) == 0;
}

static void watch_end(struct mvm_gdb *g)
{
    if (!g->watching)
        return;
    g->watch_stop = 1;
    pthread_join(g->watcher, NULL);
    g->watching = false;
}

/* What the command loop ends with. */
enum gdb_action { GDB_RESUME, GDB_DETACH, GDB_KILL };

static int regs_fetch(struct mvm_gdb *g, struct kvm_regs *regs, struct kvm_sregs *s)
{
    int rc = vcpu_regs_get(g->vcpu, regs);

    return rc < 0 ? rc : vcpu_sregs_get(g->vcpu, s);
}

/* Writes back what changed. */
static int regs_store(struct mvm_gdb *g, const struct kvm_regs *regs, const struct kvm_sregs *s)
{
    struct kvm_regs r0;
    struct kvm_sregs s0;
    int rc = regs_fetch(g, &r0, &s0);

    if (rc == 0 && memcmp(&r0, regs, sizeof(r0)))
        rc = vcpu_regs_set(g->vcpu, regs);
    if (rc == 0 && memcmp(&s0, s, sizeof(s0)))
        rc = vcpu_sregs_set(g->vcpu, s);
    return rc;
}

/*
 * gdb's address (linear; guest-physical after 'monitor phys on') -> guest-physical: the identity with
 * paging off, the VMM's own walk in long mode. Legacy 32-bit paging is not walked (-EINVAL).
 */
static int gdb_to_gpa(struct mvm_gdb *g, const struct kvm_sregs *s, uint64_t addr, uint64_t *gpa)
{
    if (g->phys || !(s->cr0 & X86_CR0_PG)) {
        *gpa = g->phys || (s->efer & X86_EFER_LMA) ? addr : (uint32_t)addr;
        return 0;
    }
    if (s->efer & X86_EFER_LMA)
        return vm_gva_to_gpa(vcpu_vm(g->vcpu), s->cr3, addr, gpa);
    return -EINVAL;
}

/* Reads or writes guest memory page by page; the bytes done (short at the first one that does not translate). */
static size_t gdb_mem(struct mvm_gdb *g, uint64_t addr, uint8_t *buf, size_t len, bool write)
{
    struct kvm_regs regs;
    struct kvm_sregs s;
    size_t done = 0;

    if (regs_fetch(g, &regs, &s) < 0)
        return 0;
    while (done < len) {
        uint64_t a = addr + done, gpa, chunk = 4096 - (a & 4095);
        uint8_t *hva;

        if (chunk > len - done)
            chunk = len - done;
        if (gdb_to_gpa(g, &s, a, &gpa) < 0 || !(hva = vm_gpa_to_hva(vcpu_vm(g->vcpu), gpa, chunk)))
            break;
        if (write)
            memcpy(hva, buf + done, chunk);
        else
            memcpy(buf + done, hva, chunk);
        done += chunk;
    }
    return done;
}

/* Z0/z0: an INT3 byte in guest RAM, the byte it covers kept. 0, or an 'E' error number. */
static int sw_bp(struct mvm_gdb *g, uint64_t addr, bool insert)
{
    struct gdb_sw_bp *free_slot = NULL;
    static const uint8_t int3 = 0xcc;

    for (int i = 0; i < GDB_SW_BPS; i++) {
        struct gdb_sw_bp *b = &g->sw[i];

        if (!b->used) {
            free_slot = free_slot ? free_slot : b;
            continue;
        }
        if (b->addr != addr)
            continue;
        if (!insert) {
            gdb_mem(g, addr, &b->orig, 1, true);
            b->used = false;
        }
        return 0;
    }
    if (!insert)
        return 0;
    if (!free_slot)
        return 28; /* ENOSPC */
    if (gdb_mem(g, addr, &free_slot->orig, 1, false) != 1 || gdb_mem(g, addr, (uint8_t *)&int3, 1, true) != 1)
        return 14; /* EFAULT */
    free_slot->used = true;
    free_slot->addr = addr;
    return 0;
}

/* Z1/z1: an execution breakpoint in one of DR0-3. */
static int hw_bp(struct mvm_gdb *g, uint64_t addr, bool insert)
{
    for (int i = 0; i < 4; i++) {
        if (g->hw_used[i] && g->hw[i] == addr) {
            g->hw_used[i] = insert;
            return 0;
        }
    }
    for (int i = 0; insert && i < 4; i++) {
        if (!g->hw_used[i]) {
            g->hw_used[i] = true;
            g->hw[i] = addr;
            return 0;
        }
    }
    return insert ? 28 : 0; /* four debug registers, all taken */
}

/* KVM_SET_GUEST_DEBUG for the next KVM_RUN: a step or not, the breakpoints gdb has set. */
static int guest_debug_apply(struct mvm_gdb *g, bool on)
{
    struct kvm_guest_debug dbg;

    memset(&dbg, 0, sizeof(dbg));
    if (on) {
        dbg.control = KVM_GUESTDBG_ENABLE | (g->stepping ? KVM_GUESTDBG_SINGLESTEP : 0);
        for (int i = 0; i < GDB_SW_BPS; i++)
            if (g->sw[i].used)
                dbg.control |= KVM_GUESTDBG_USE_SW_BP;
        dbg.arch.debugreg[7] = X86_DR7_FIXED_1 | X86_DR7_GE;
        for (int i = 0; i < 4; i++) {
            if (!g->hw_used[i])
                continue;
            dbg.control |= KVM_GUESTDBG_USE_HW_BP;
            dbg.arch.debugreg[i] = g->hw[i];
            dbg.arch.debugreg[7] |= X86_DR7_G(i); /* R/W 00, LEN 00: execution */
        }
    }
    return vcpu_ioctl(g->vcpu, KVM_SET_GUEST_DEBUG, &dbg, "KVM_SET_GUEST_DEBUG");
}

/* Tells gdb, once per change, when the guest's code size differs from what gdb decodes. */
static int mode_note(struct mvm_gdb *g)
{
    struct kvm_regs regs;
    struct kvm_sregs s;
    char msg[400];
    int bits;

    if (regs_fetch(g, &regs, &s) < 0)
        return 0;
    bits = gdb_x86_code_bits(&s);
    if (bits == g->told_mode)
        return 0;
    g->told_mode = bits;
    if (bits == 64 && !g->layout64)
        snprintf(msg, sizeof(msg),
                 "minivmm: the guest now runs 64-bit code (EFER.LMA=1, CS.L=1), but gdb has "
                 "the 32-bit registers it read when it connected; 'disconnect' and 'target "
                 "remote :%u' again give the x86-64 ones\n",
                 g->port);
    else if (g->layout64)
        snprintf(msg, sizeof(msg),
                 "minivmm: the guest now runs %d-bit code; gdb keeps the x86-64 registers of "
                 "the connect (the low halves are the %d-bit ones)\n",
                 bits, bits);
    else
        snprintf(msg, sizeof(msg),
                 "minivmm: the guest now runs %d-bit code (CR0.PE=%d, CS.D=%d); "
                 "'set architecture %s' makes gdb decode it so\n",
                 bits, !!(s.cr0 & X86_CR0_PE), s.cs.db, bits == 16 ? "i8086" : "i386");
    return gdb_console(g, msg);
}

/* The stop reply for a KVM_EXIT_DEBUG (or the first stop when run is NULL). */
static int stop_reply(struct mvm_gdb *g, const struct kvm_run *run)
{
    const char *why = "";
    char pkt[64];
    int rc;

    if (g->interrupted) {
        g->interrupted = 0;
        rc = mode_note(g);
        g->running = false;
        return rc < 0 ? rc : gdb_send(g, "T02thread:01;"); /* SIGINT: gdb says "Program received SIGINT" */
    }
    if (run && run->debug.arch.exception == X86_VEC_BP) {
        for (int i = 0; i < GDB_SW_BPS; i++)
            if (g->sw[i].used && g->sw[i].addr == run->debug.arch.pc)
                why = "swbreak:;";
    } else if (run && (run->debug.arch.dr6 & 15)) {
        why = "hwbreak:;";
    }
    rc = mode_note(g);
    if (rc < 0)
        return rc;
    snprintf(pkt, sizeof(pkt), "T%02xthread:01;%s", GDB_SIGTRAP, why);
    g->running = false;
    return gdb_send(g, pkt);
}

static void put_reg_hex(struct mvm_gdb *g, size_t n, struct kvm_regs *regs, struct kvm_sregs *s, char *dst)
{
    uint8_t v[16];

    gdb_x86_reg_get(g->layout64, n, regs, s, v);
    rsp_hex_encode(dst, v, gdb_x86_reg_size(g->layout64, n));
}

/* monitor commands: text for gdb's console. */
static int monitor(struct mvm_gdb *g, const char *cmd)
{
    char text[2048];
    struct kvm_regs regs;
    struct kvm_sregs s;
    int rc = regs_fetch(g, &regs, &s);

    if (rc < 0)
        return gdb_send(g, "E05");
    if (!strcmp(cmd, "phys on") || !strcmp(cmd, "phys off")) {
        g->phys = !strcmp(cmd, "phys on");
        snprintf(text, sizeof(text), "memory addresses are now guest-%s\n", g->phys ? "physical" : "virtual (linear)");
    } else if (!strcmp(cmd, "phys")) {
        snprintf(text, sizeof(text), "memory addresses are guest-%s ('monitor phys on|off')\n",
                 g->phys ? "physical" : "virtual (linear)");
    } else if (!strcmp(cmd, "sregs")) {
        mvm_sregs_format(&s, text, sizeof(text));
    } else if (!strcmp(cmd, "mode")) {
        snprintf(text, sizeof(text),
                 "the guest runs %d-bit code (CR0=%llx EFER=%llx CS.D=%u CS.L=%u); gdb has the "
                 "%s registers\n",
                 gdb_x86_code_bits(&s), (unsigned long long)s.cr0, (unsigned long long)s.efer, s.cs.db, s.cs.l,
                 g->layout64 ? "x86-64" : "32-bit");
    } else {
        snprintf(text, sizeof(text),
                 "minivmm's monitor commands:\n"
                 "  monitor sregs       segment registers with their hidden parts, GDT, IDT, "
                 "CRs, EFER\n"
                 "  monitor mode        the guest's code size and gdb's register layout\n"
                 "  monitor phys on|off memory (x, set, break) by guest-physical address, or "
                 "guest-virtual\n");
    }
    rc = gdb_console(g, text);
    return rc < 0 ? rc : gdb_send(g, "OK");
}

static int cmd_query(struct mvm_gdb *g, const char *p)
{
    static char xml[16384];
    uint64_t off, len;

    if (!strncmp(p, "qSupported", 10))
        return gdb_send(g, "PacketSize=4000;qXfer:features:read+;swbreak+;hwbreak+;QStartNoAckMode+;"
                           "vContSupported+");
    if (!strcmp(p, "QStartNoAckMode")) {
        int rc = gdb_send(g, "OK");

        g->c.no_ack = true;
        return rc;
    }
    if (!strncmp(p, "qXfer:features:read:target.xml:", 31)) {
        struct kvm_regs regs;
        struct kvm_sregs s;
        size_t n;
        const char *q = p + 31;

        if (!rsp_parse_hex(&q, &off) || *q++ != ',' || !rsp_parse_hex(&q, &len) || regs_fetch(g, &regs, &s) < 0)
            return gdb_send(g, "E01");
        n = gdb_x86_target_xml(g->layout64, gdb_x86_code_bits(&s), xml, sizeof(xml));
        if (off >= n)
            return gdb_send(g, "l");
        if (len > n - off)
            len = n - off;
        if (len > GDB_PACKET_MAX - 1)
            len = GDB_PACKET_MAX - 1;
        g->c.in[0] = off + len < n ? 'm' : 'l';
        memcpy(g->c.in + 1, xml + off, len);
        return rsp_send_bin(&g->c, g->c.in, len + 1);
    }
    if (!strncmp(p, "qXfer:", 6))
        return gdb_send(g, "E00");
    if (!strcmp(p, "qAttached"))
        return gdb_send(g, "1"); /* quitting gdb detaches: the guest runs on */
    if (!strcmp(p, "qC"))
        return gdb_send(g, "QC01");
    if (!strcmp(p, "qfThreadInfo"))
        return gdb_send(g, "m01");
    if (!strcmp(p, "qsThreadInfo"))
        return gdb_send(g, "l");
    if (!strcmp(p, "qSymbol::"))
        return gdb_send(g, "OK");
    if (!strncmp(p, "qRcmd,", 6)) {
        size_t n = strlen(p + 6) / 2;
        char cmd[256];

        if (n >= sizeof(cmd) || !rsp_hex_decode((uint8_t *)cmd, p + 6, n))
            return gdb_send(g, "E01");
        cmd[n] = '\0';
        return monitor(g, cmd);
    }
    return gdb_send(g, ""); /* not supported: gdb falls back or does without */
}

/* g and G: all registers; p and P: one. */
static int cmd_regs(struct mvm_gdb *g, const char *p)
{
    struct kvm_regs regs;
    struct kvm_sregs s;
    size_t nregs = gdb_x86_nregs(g->layout64), at = 0, size;
    uint64_t n;
    char *out = g->c.out + sizeof(g->c.out) / 2; /* gdb_send builds the packet in the first half */
    uint8_t v[16];

    if (regs_fetch(g, &regs, &s) < 0)
        return gdb_send(g, "E05");
    switch (p[0]) {
    case 'g':
        for (size_t i = 0; i < nregs; i++) {
            put_reg_hex(g, i, &regs, &s, out + at);
            at += 2 * gdb_x86_reg_size(g->layout64, i);
        }
        return gdb_send(g, out);
    case 'G':
        p++;
        for (size_t i = 0; i < nregs && strlen(p) >= 2 * (size = gdb_x86_reg_size(g->layout64, i)); i++) {
            if (!rsp_hex_decode(v, p, size))
                return gdb_send(g, "E01");
            gdb_x86_reg_set(g->layout64, i, &regs, &s, v);
            p += 2 * size;
        }
        return gdb_send(g, regs_store(g, &regs, &s) < 0 ? "E05" : "OK");
    case 'p':
        p++;
        if (!rsp_parse_hex(&p, &n) || n >= nregs)
            return gdb_send(g, "E00");
        put_reg_hex(g, n, &regs, &s, out);
        return gdb_send(g, out);
    default: /* P n=value */
        p++;
        if (!rsp_parse_hex(&p, &n) || n >= nregs || *p++ != '=' ||
            strlen(p) < 2 * (size_t)gdb_x86_reg_size(g->layout64, n) ||
            !rsp_hex_decode(v, p, gdb_x86_reg_size(g->layout64, n)))
            return gdb_send(g, "E00");
        gdb_x86_reg_set(g->layout64, n, &regs, &s, v);
        return gdb_send(g, regs_store(g, &regs, &s) < 0 ? "E05" : "OK");
    }
}

/* m addr,len and M addr,len:bytes. */
static int cmd_mem(struct mvm_gdb *g, const char *p)
{
    static uint8_t buf[GDB_PACKET_MAX / 2];
    bool write = p[0] == 'M';
    uint64_t addr, len;
    size_t done;

    p++;
    if (!rsp_parse_hex(&p, &addr) || *p++ != ',' || !rsp_parse_hex(&p, &len) || len > sizeof(buf) - 1 ||
        (write && (*p++ != ':' || strlen(p) != 2 * len || !rsp_hex_decode(buf, p, len))))
        return gdb_send(g, "E01");
    done = gdb_mem(g, addr, buf, len, write);
    if (done == 0 && len)
        return gdb_send(g, "E14"); /* EFAULT: not mapped, or outside guest RAM */
    if (write)
        return gdb_send(g, done == len ? "OK" : "E14");
    rsp_hex_encode(g->c.out + sizeof(g->c.out) / 2, buf, done);
    return gdb_send(g, g->c.out + sizeof(g->c.out) / 2);
}

/* Z/z type,addr,kind */
static int cmd_bp(struct mvm_gdb *g, const char *p)
{
    bool insert = p[0] == 'Z';
    uint64_t type, addr, kind;
    int err;

    p++;
    if (!rsp_parse_hex(&p, &type) || *p++ != ',' || !rsp_parse_hex(&p, &addr) || *p++ != ',' ||
        !rsp_parse_hex(&p, &kind))
        return gdb_send(g, "E01");
    if (type > 1)
        return gdb_send(g, ""); /* watchpoints: gdb single-steps and compares instead */
    err = type == 0 ? sw_bp(g, addr, insert) : hw_bp(g, addr, insert);
    if (err) {
        char e[8];

        snprintf(e, sizeof(e), "E%02x", err);
        return gdb_send(g, e);
    }
    return gdb_send(g, "OK");
}

/* Takes the INT3 bytes out and turns debugging off: the guest runs on as if gdb had never been there. */
static void debug_off(struct mvm_gdb *g)
{
    for (int i = 0; i < GDB_SW_BPS; i++)
        if (g->sw[i].used)
            sw_bp(g, g->sw[i].addr, false);
    memset(g->hw_used, 0, sizeof(g->hw_used));
    g->stepping = false;
    guest_debug_apply(g, false);
}

/* Serves gdb while the vCPU is stopped, until it resumes, detaches or kills. -errno when the connection broke. */
static int serve(struct mvm_gdb *g)
{
    for (;;) {
        int n = rsp_recv(&g->c), rc = 0;
        const char *p = g->c.in;

        if (n < 0)
            return n;
        switch (p[0]) {
        case '?':
            rc = stop_reply(g, NULL);
            break;
        case 'q':
        case 'Q':
            rc = cmd_query(g, p);
            break;
        case 'g':
        case 'G':
        case 'p':
        case 'P':
            rc = cmd_regs(g, p);
            break;
        case 'm':
        case 'M':
            rc = cmd_mem(g, p);
            break;
        case 'Z':
        case 'z':
            rc = cmd_bp(g, p);
            break;
        case 'H':
        case 'T':
            rc = gdb_send(g, "OK"); /* one thread */
            break;
        case 'c':
        case 's':
        case 'C':
        case 'S':
            /* An address to resume at and a signal to deliver are not supported; gdb sends neither by itself. */
            g->stepping = p[0] == 's' || p[0] == 'S';
            goto resume;
        case 'v':
            if (!strcmp(p, "vCont?")) {
                rc = gdb_send(g, "vCont;c;C;s;S");
            } else if (!strncmp(p, "vCont;", 6)) {
                g->stepping = p[6] == 's' || p[6] == 'S';
                goto resume;
            } else {
                rc = gdb_send(g, "");
            }
            break;
        case 'D':
            debug_off(g);
            gdb_send(g, "OK");
            return GDB_DETACH;
        case 'k':
            debug_off(g);
            return GDB_KILL;
        default:
            rc = gdb_send(g, "");
            break;
        }
        if (rc < 0)
            return rc;
        continue;
    resume:
        rc = guest_debug_apply(g, true);
        if (rc < 0) {
            char msg[400];

            snprintf(msg, sizeof(msg), "minivmm: cannot resume: %.300s\n", mvm_error());
            gdb_console(g, msg);
            rc = gdb_send(g, "E05");
            if (rc < 0)
                return rc;
            continue;
        }
        g->running = true;
        watch_start(g);
        return GDB_RESUME;
    }
}

static int gdb_accept(struct mvm_gdb *g)
{
    int one = 1;

    if (g->log)
        fprintf(g->log, "minivmm: waiting for gdb on 127.0.0.1:%u (in gdb: target remote :%u)\n", g->port, g->port);
    do
        g->c.fd = accept(g->listen_fd, NULL, NULL);
    while (g->c.fd < 0 && errno == EINTR);
    if (g->c.fd < 0)
        return mvm_fail(errno, "gdb stub: accept on port %u: %s", g->port, strerror(errno));
    setsockopt(g->c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* one packet, one segment */
    g->c.no_ack = false;
    g->c.rlen = g->c.rpos = 0;
    return 0;
}

/* A new connection: gdb's register layout follows the vCPU's mode now. */
static int connection_start(struct mvm_gdb *g)
{
    struct kvm_regs regs;
    struct kvm_sregs s;
    int rc = gdb_accept(g);

    if (rc == 0)
        rc = regs_fetch(g, &regs, &s);
    if (rc < 0)
        return rc;
    g->layout64 = (s.efer & X86_EFER_LMA) != 0;
    g->told_mode = gdb_x86_code_bits(&s);
    if (g->log)
        fprintf(g->log, "minivmm: gdb connected; the guest runs %d-bit code: gdb gets the %s registers\n", g->told_mode,
                g->layout64          ? "x86-64"
                : g->told_mode == 16 ? "i8086 (32-bit)"
                                     : "i386");
    return 0;
}

/* Serves gdb until it resumes; when it goes away without detaching, waits for it to come back. */
static int serve_until_resume(struct mvm_gdb *g)
{
    int rc;

    while ((rc = serve(g)) < 0) {
        close(g->c.fd);
        g->c.fd = -1;
        if (rc != -EPIPE)
            return mvm_fail(-rc, "gdb stub: the connection failed: %s", strerror(-rc));
        if (g->log)
            fprintf(g->log, "minivmm: gdb went away without detaching; the guest stays stopped\n");
        rc = connection_start(g);
        if (rc < 0)
            return rc;
    }
    if (rc == GDB_DETACH || rc == GDB_KILL) {
        close(g->c.fd);
        g->c.fd = -1;
        if (g->log)
            fprintf(g->log, "minivmm: gdb %s\n", rc == GDB_KILL ? "killed the guest" : "detached; the guest runs on");
    }
    return rc == GDB_KILL ? MVM_STOP_KILLED : 0;
}

int mvm_gdb_listen(uint16_t port, FILE *log, struct mvm_gdb **out)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    socklen_t len = sizeof(sa);
    struct mvm_gdb *g = calloc(1, sizeof(*g));
    int one = 1, err;

    if (!g)
        return mvm_fail(ENOMEM, "gdb stub: out of memory");
    g->c.fd = -1;
    g->log = log;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* never other machines: the stub can write all guest RAM */
    g->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (g->listen_fd < 0)
        goto fail;
    setsockopt(g->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(g->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(g->listen_fd, 1) < 0 ||
        getsockname(g->listen_fd, (struct sockaddr *)&sa, &len) < 0)
        goto fail;
    g->port = ntohs(sa.sin_port);
    *out = g;
    return 0;
fail:
    err = errno;
    if (g->listen_fd >= 0)
        close(g->listen_fd);
    free(g);
    return mvm_fail(err, "--gdb %u: cannot listen on 127.0.0.1:%u: %s%s", port, port, strerror(err),
                    err == EADDRINUSE ? " (another program has it: pick another port, or 0 for a free one)" : "");
}

uint16_t mvm_gdb_port(const struct mvm_gdb *g)
{
    return g->port;
}

int mvm_gdb_attach(struct mvm_gdb *g, struct mvm_vcpu *vcpu)
{
    int rc;

    g->vcpu = vcpu;
    rc = connection_start(g);
    return rc < 0 ? rc : serve_until_resume(g);
}

int mvm_gdb_debug_exit(struct mvm_vcpu *vcpu, void *opaque)
{
    struct mvm_gdb *g = opaque;
    int rc;

    watch_end(g);
    if (g->c.fd < 0 || vcpu != g->vcpu)
        return 0; /* detached: a leftover stop, nothing to tell */
    rc = stop_reply(g, vcpu_run_page(vcpu));
    if (rc < 0 && rc != -EPIPE)
        return mvm_fail(-rc, "gdb stub: the connection failed: %s", strerror(-rc));
    return serve_until_resume(g);
}

void mvm_gdb_finish(struct mvm_gdb *g, int status, const char *why)
{
    char pkt[8], msg[400];

    if (!g)
        return;
    watch_end(g);
    if (g->c.fd < 0)
        return;
    if (g->running) {
        snprintf(msg, sizeof(msg), "minivmm: the run ended: %.300s\n", why);
        gdb_console(g, msg);
        snprintf(pkt, sizeof(pkt), "W%02x", status & 0xff);
        gdb_send(g, pkt);
        g->running = false;
    }
    debug_off(g);
    close(g->c.fd);
    g->c.fd = -1;
}

void mvm_gdb_close(struct mvm_gdb *g)
{
    if (!g)
        return;
    watch_end(g);
    if (g->c.fd >= 0)
        close(g->c.fd);
    close(g->listen_fd);
    free(g);
}
