/* The CLI's files (minivmm/main.c): every path checked before any output is opened, outputs opened and closed with
 * their errors named. */
#ifndef MINIVMM_CLI_FILES_H
#define MINIVMM_CLI_FILES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses, stable for scripts and the grader. */
enum {
    EXIT_PASS = 0, /* GUEST_DONE, or a clean HLT */
    EXIT_GUEST_FAIL = 1,
    EXIT_USAGE = 2, /* bad flags or bad input */
    EXIT_CRASH = 3, /* triple fault, internal error, unhandled exit */
    EXIT_LIMIT = 4, /* exit or time limit */
    EXIT_VMM = 5,   /* the VMM itself failed */
};

/* The outputs, by option. */
enum { OUT_EXITS, OUT_REGS, OUT_TRACE, OUT_LIVE, OUT_PCAP, OUT_N };
static const char *const out_opts[OUT_N]
    __attribute__((unused)) = {"--exits", "--final-regs", "--trace", "--trace-live", "--net-pcap"};

/*
 * Every file is checked before any output is opened: the image must be a regular file, each output a kind that
 * may be written (or, for the live feed, replaced), and no output the image or another output. 0 or -errno.
 */
int cli_files_check(const char *image, const char *const paths[OUT_N]);
/* Opens the file of -d or -r ('-': standard output). 0 or -errno with a message. */
int cli_output_open(const char *opt, const char *path, FILE **out);
/* Flushes and closes an output; false, with a message naming it, when a write to it failed. */
bool cli_output_close(FILE *f, const char *opt, const char *path);
/* Opens --serial-in (a file, or '-' for standard input), refused if it is one of the outputs. 0 or -errno. */
int cli_serial_in_open(const char *path, const char *const outs[OUT_N], FILE **in);

/* The built-in guest NAME's image path: $MINIVMM_GUEST_DIR/NAME.bin, else ../guests/NAME.bin beside the binary. */
int cli_guest_path(const char *name, char *buf, size_t len);
/*
 * The mode built-in guest NAME starts in (real, protected or long), from NAME.mode beside its image (the build
 * writes it from the guest's runtime, or from MVM_GUEST_START_MODE in its source). NULL when there is none.
 */
const char *cli_guest_mode(const char *name);
/*
 * The mode a run starts in: --mode when given (with a warning when a built-in guest says otherwise), else the
 * built-in guest's own mode, else real (lab 1's raw images).
 */
const char *cli_mode_pick(const char *given, const char *guest);
/* `minivmm list`: prints the built-in guests; an EXIT_* status. */
int cli_list(void);

/* Parses a number (decimal, 0x hex, 0 octal) with an optional K/M/G suffix when `suffixes`; false on garbage,
 * a sign or overflow. */
bool cli_parse_size(const char *s, uint64_t *out, bool suffixes);
/* A bad flag: "minivmm[ CMD]: <message> (see 'minivmm[ CMD] --help')" on stderr; returns EXIT_USAGE. cmd may be NULL.
 */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
