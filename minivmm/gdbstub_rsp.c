/* The gdb stub's transport: packets with checksums, acks (until QStartNoAckMode), escapes; hex encoding. */
#include "gdbstub_rsp.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char hexdig[] = "0123456789abcdef";

int rsp_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool rsp_parse_hex(const char **p, uint64_t *out)
{
    uint64_t v = 0;
    int d, n = 0;

    while ((d = rsp_hexval((unsigned char)**p)) >= 0) {
        v = (v << 4) | (uint64_t)d;
        (*p)++;
        n++;
    }
    *out = v;
    return n > 0 && n <= 16;
}

void rsp_hex_encode(char *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = hexdig[src[i] >> 4];
        dst[2 * i + 1] = hexdig[src[i] & 15];
    }
    dst[2 * n] = '\0';
}

bool rsp_hex_decode(uint8_t *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = rsp_hexval((unsigned char)src[2 * i]), lo = hi < 0 ? -1 : rsp_hexval((unsigned char)src[2 * i + 1]);

        if (lo < 0)
            return false;
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* One byte from gdb; -EPIPE when it closed the connection. */
static int rsp_getc(struct gdb_conn *conn)
{
    while (conn->rpos == conn->rlen) {
        ssize_t n = recv(conn->fd, conn->rbuf, sizeof(conn->rbuf), 0);

        if (n == 0)
            return -EPIPE;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        conn->rlen = (size_t)n;
        conn->rpos = 0;
    }
    return (unsigned char)conn->rbuf[conn->rpos++];
}

static int rsp_write(struct gdb_conn *conn, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = send(conn->fd, buf, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EPIPE;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

int rsp_send_bin(struct gdb_conn *conn, const char *data, size_t n)
{
    char *p = conn->out;
    uint8_t sum = 0;
    int rc, c;

    *p++ = '$';
    for (size_t i = 0; i < n && p < conn->out + sizeof(conn->out) - 4; i++) {
        char ch = data[i];

        if (ch == '$' || ch == '#' || ch == '}' || ch == '*') {
            *p++ = '}';
            sum += '}';
            ch ^= 0x20;
        }
        *p++ = ch;
        sum += (uint8_t)ch;
    }
    *p++ = '#';
    *p++ = hexdig[sum >> 4];
    *p++ = hexdig[sum & 15];
    for (;;) {
        rc = rsp_write(conn, conn->out, (size_t)(p - conn->out));
        if (rc < 0 || conn->no_ack)
            return rc;
        do
            c = rsp_getc(conn);
        while (c >= 0 && c != '+' && c != '-');
        if (c != '-')
            return c < 0 ? c : 0;
    }
}

int rsp_send(struct gdb_conn *conn, const char *s)
{
    return rsp_send_bin(conn, s, strlen(s));
}

int rsp_console(struct gdb_conn *conn, const char *text)
{
    char pkt[1 + 2 * 1024 + 1];
    size_t n = strlen(text);

    pkt[0] = 'O';
    for (size_t off = 0; off < n; off += 1024) {
        size_t k = n - off < 1024 ? n - off : 1024;
        int rc;

        rsp_hex_encode(pkt + 1, (const uint8_t *)text + off, k);
        rc = rsp_send(conn, pkt);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int rsp_recv(struct gdb_conn *conn)
{
    for (;;) {
        int c, n = 0, h, l;
        uint8_t sum = 0;

        do
            c = rsp_getc(conn);
        while (c >= 0 && c != '$'); /* acks and a ^C (0x03) while stopped mean nothing here */
        if (c < 0)
            return c;
        while ((c = rsp_getc(conn)) >= 0 && c != '#') {
            sum += (uint8_t)c;
            if (c == '}') { /* an escaped byte */
                c = rsp_getc(conn);
                if (c < 0)
                    return c;
                sum += (uint8_t)c;
                c ^= 0x20;
            }
            if (n < GDB_PACKET_MAX)
                conn->in[n++] = (char)c;
        }
        if (c < 0 || (h = rsp_getc(conn)) < 0 || (l = rsp_getc(conn)) < 0)
            return -EPIPE;
        conn->in[n] = '\0';
        if (conn->no_ack)
            return n;
        if (rsp_hexval(h) >= 0 && rsp_hexval(l) >= 0 && (uint8_t)(rsp_hexval(h) << 4 | rsp_hexval(l)) == sum) {
            c = rsp_write(conn, "+", 1);
            return c < 0 ? c : n;
        }
        if (rsp_write(conn, "-", 1) < 0)
            return -EPIPE;
    }
}
