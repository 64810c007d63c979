/* The CLI's files: the checks before any output is opened, and outputs opened and closed with their errors. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_files.h"
#include "core_file.h"
#include "mvm.h"

/*
 * Every file is checked before any output is opened: the image must be a
 * regular file, each output a kind that may be written (or, for the live feed,
 * replaced), and no output the image or another output (same device and inode,
 * after symlinks). '-' (standard output) is not a file here.
 */
int cli_files_check(const char *image, const char *const paths[OUT_N])
{
    struct stat img, st[OUT_N];
    bool exists[OUT_N] = {false}, checked[OUT_N] = {false};
    int fd, rc;

    fd = mvm_file_open_input("guest image", image, &img);
    if (fd < 0)
        return fd;
    close(fd);
    for (int i = 0; i < OUT_N; i++) {
        if (!paths[i] || (i <= OUT_REGS && !strcmp(paths[i], "-")))
            continue;
        rc = i == OUT_LIVE ? mvm_file_check_replace(out_opts[i], paths[i], &st[i], &exists[i])
                           : mvm_file_check_output(out_opts[i], paths[i], &st[i], &exists[i]);
        if (rc < 0 && i <= OUT_REGS && exists[i] && S_ISFIFO(st[i].st_mode)) {
            char msg[256];

            snprintf(msg, sizeof(msg), "%s", mvm_error()); /* /dev/stdout in a pipeline is a pipe */
            return mvm_fail(-rc, "%s; '%s -' writes to standard output", msg, out_opts[i]);
        }
        if (rc < 0)
            return rc;
        if (exists[i] && mvm_file_same(&st[i], &img))
            return mvm_fail(EINVAL,
                            "%s %s: is the guest image %s; an output never overwrites an input: give "
                            "another file",
                            out_opts[i], paths[i], image);
        for (int j = 0; j < i; j++) {
            if (!checked[j])
                continue;
            if (exists[i] && exists[j] ? mvm_file_same(&st[i], &st[j]) && !S_ISCHR(st[i].st_mode)
                                       : !strcmp(paths[i], paths[j]))
                return mvm_fail(EINVAL, "%s %s: is also the %s file; give each output its own file", out_opts[i],
                                paths[i], out_opts[j]);
        }
        checked[i] = true;
    }
    return 0;
}

/* Opens the file of -d or -r ('-': standard output). */
int cli_output_open(const char *opt, const char *path, FILE **out)
{
    struct stat st;
    int fd;

    if (!strcmp(path, "-")) {
        *out = stdout;
        return 0;
    }
    fd = mvm_file_open_output(opt, path, &st);
    if (fd < 0)
        return fd;
    *out = fdopen(fd, "w");
    if (!*out) {
        int err = errno;

        close(fd);
        return mvm_fail(err, "%s %s: %s", opt, path, strerror(err));
    }
    return 0;
}

/* Flushes and closes an output; false, with a message naming it, when a write to it failed. */
bool cli_output_close(FILE *f, const char *opt, const char *path)
{
    int err = 0;

    if (!f)
        return true;
    if (fflush(f) != 0)
        err = errno;
    else if (ferror(f))
        err = -1; /* an earlier write failed; its errno is gone */
    if (f != stdout && fclose(f) != 0 && !err)
        err = errno;
    if (!err)
        return true;
    if (err > 0)
        fprintf(stderr, "minivmm: %s%s%s: write failed: %s; what it holds is incomplete\n", opt, opt[0] ? " " : "",
                path, strerror(err));
    else
        fprintf(stderr, "minivmm: %s%s%s: a write failed; what it holds is incomplete\n", opt, opt[0] ? " " : "", path);
    return false;
}

/* Opens --serial-in: '-' is standard input; else a regular file that is none of the outputs (never overwritten). */
int cli_serial_in_open(const char *path, const char *const outs[OUT_N], FILE **in)
{
    struct stat st, o;
    int fd;

    if (!strcmp(path, "-")) {
        *in = stdin;
        return 0;
    }
    fd = mvm_file_open_input("--serial-in", path, &st);
    if (fd < 0)
        return fd;
    for (int i = 0; i < OUT_N; i++) {
        if (outs[i] && strcmp(outs[i], "-") && stat(outs[i], &o) == 0 && mvm_file_same(&st, &o)) {
            close(fd);
            return mvm_fail(EINVAL, "--serial-in %s: is also the %s file; an output never overwrites an input", path,
                            out_opts[i]);
        }
    }
    *in = fdopen(fd, "r");
    if (!*in) {
        int err = errno;

        close(fd);
        return mvm_fail(err, "--serial-in %s: %s", path, strerror(err));
    }
    return 0;
}

/* Built-in guests live in ../guests next to the binary: build/bin/minivmm -> build/guests/. */
int cli_guest_path(const char *name, char *buf, size_t len)
{
    char exe[PATH_MAX];
    const char *dir = getenv("MINIVMM_GUEST_DIR");
    ssize_t n;

    if (strstr(name, "..") || name[0] == '/')
        return -EINVAL;
    if (!dir) {
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
            return -errno;
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        if ((size_t)snprintf(buf, len, "%s/../guests/%s.bin", exe, name) >= len)
            return -ENAMETOOLONG;
        return 0;
    }
    if ((size_t)snprintf(buf, len, "%s/%s.bin", dir, name) >= len)
        return -ENAMETOOLONG;
    return 0;
}

const char *cli_guest_mode(const char *name)
{
    static const char *const modes[] = {"real", "protected", "long"};
    char path[PATH_MAX], text[16] = "";
    size_t n;
    FILE *f;

    if (cli_guest_path(name, path, sizeof(path)) < 0 || strlen(path) < 4)
        return NULL;
    strcpy(path + strlen(path) - 4, ".mode");
    f = fopen(path, "re");
    if (!f)
        return NULL;
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    text[strcspn(text, " \t\r\n")] = '\0';
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (!strcmp(text, modes[i]))
            return modes[i];
    return NULL;
}

const char *cli_mode_pick(const char *given, const char *guest)
{
    const char *own = guest ? cli_guest_mode(guest) : NULL;

    if (!given)
        return own ? own : "real";
    if (own && strcmp(own, given))
        fprintf(stderr,
                "minivmm: warning: %s starts in %s mode; --mode %s runs it in %s mode anyway (leave --mode out to "
                "use the guest's own)\n",
                guest, own, given, given);
    return given;
}

/* Lists guests/LAB/NAME.bin, two levels deep, with the mode each starts in. */
int cli_list(void)
{
    char root[PATH_MAX], sub[PATH_MAX + 256];
    struct dirent *lab, *g;
    DIR *d, *sd;

    if (cli_guest_path("x", root, sizeof(root)) < 0)
        return EXIT_VMM;
    *strrchr(root, '/') = '\0';
    d = opendir(root);
    if (!d) {
        fprintf(stderr, "minivmm: no built-in guests in %s: %s ('make guests' builds them)\n", root, strerror(errno));
        return EXIT_USAGE;
    }
    printf("built-in guests (minivmm run --guest NAME), with the mode each starts in:\n");
    while ((lab = readdir(d))) {
        if (lab->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", root, lab->d_name);
        sd = opendir(sub);
        if (!sd)
            continue;
        while ((g = readdir(sd))) {
            size_t n = strlen(g->d_name);

            if (n > 4 && !strcmp(g->d_name + n - 4, ".bin")) {
                char name[PATH_MAX];
                const char *mode;

                snprintf(name, sizeof(name), "%s/%.*s", lab->d_name, (int)(n - 4), g->d_name);
                mode = cli_guest_mode(name);
                printf("  %-24s %s\n", name, mode ? mode : "(give --mode)");
            }
        }
        closedir(sd);
    }
    closedir(d);
    return EXIT_PASS;
}

bool cli_parse_size(const char *s, uint64_t *out, bool suffixes)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s)
        return false;
    if (suffixes && *end) {
        switch (*end) {
        case 'K':
        case 'k':
            shift = 10;
            break;
        case 'M':
        case 'm':
            shift = 20;
            break;
        case 'G':
        case 'g':
            shift = 30;
            break;
        default:
            return false;
        }
        end++;
    }
    if (*end || (shift && v > (ULLONG_MAX >> shift)))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "minivmm%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'minivmm%s%s --help')\n", cmd ? " " : "", cmd ? cmd : "");
    return EXIT_USAGE;
}
