/* The gdb stub's transport: GDB remote serial protocol packets ($data#cs) with acks, escapes, hex. */
#ifndef MINIVMM_GDBSTUB_RSP_H
#define MINIVMM_GDBSTUB_RSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GDB_PACKET_MAX 16384 /* what qSupported offers as PacketSize */

/* One connection to gdb. */
struct gdb_conn {
    int fd;
    bool no_ack; /* after QStartNoAckMode */
    char rbuf[4096];
    size_t rlen, rpos;
    char in[GDB_PACKET_MAX + 1];       /* the last packet received, NUL-terminated */
    char out[2 * GDB_PACKET_MAX + 64]; /* the packet being sent (first half); callers may build data in the rest */
};

/* A hex digit's value, or -1. */
int rsp_hexval(int c);
/* Parses hex digits at *p up to a non-hex character; false when there are none or more than 16. */
bool rsp_parse_hex(const char **p, uint64_t *out);
/* n bytes as 2n hex digits, NUL-terminated. */
void rsp_hex_encode(char *dst, const uint8_t *src, size_t n);
/* 2n hex digits as n bytes; false on a non-hex digit. */
bool rsp_hex_decode(uint8_t *dst, const char *src, size_t n);
/* Sends $data#cs (binary-safe: $ # } * escaped), then waits for gdb's '+' unless acks are off. 0 or -errno. */
int rsp_send_bin(struct gdb_conn *c, const char *data, size_t n);
int rsp_send(struct gdb_conn *c, const char *s);
/* Text on gdb's console (an 'O' packet, in pieces), for people. 0 or -errno. */
int rsp_console(struct gdb_conn *c, const char *text);
/* Receives one packet into c->in (checksum checked, '+' or '-' answered): its length, or -EPIPE when gdb left. */
int rsp_recv(struct gdb_conn *c);

#endif
