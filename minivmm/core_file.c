/* Host files the tools open: inputs are regular files, outputs never block, nothing is replaced that is not ours. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core_file.h"
#include "mvm.h"

const char *mvm_file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
        return "a regular file";
    case S_IFDIR:
        return "a directory";
    case S_IFIFO:
        return "a FIFO or pipe";
    case S_IFSOCK:
        return "a socket";
    case S_IFBLK:
        return "a block device";
    case S_IFCHR:
        return "a character device";
    case S_IFLNK:
        return "a symbolic link";
    default:
        return "not a regular file";
    }
}

/* "what path" or "path", for messages. */
static const char *name_of(const char *what, const char *path, char *buf, size_t len)
{
    if (!what)
        return path;
    snprintf(buf, len, "%s %s", what, path);
    return buf;
}

/* The character devices an output may be: /dev/null and /dev/full (mem major 1), or a terminal. */
static bool chr_null(dev_t rdev)
{
    return major(rdev) == 1 && (minor(rdev) == 3 || minor(rdev) == 7);
}

/* Pseudo-terminals (136-143), virtual consoles (4, below 64), /dev/tty and /dev/console (5:0, 5:1); not ptmx. */
static bool chr_tty(dev_t rdev)
{
    unsigned maj = major(rdev), min = minor(rdev);

    return (maj >= 136 && maj <= 143) || (maj == 4 && min < 64) || (maj == 5 && min <= 1);
}

/* By the mode alone: may this be an output? (A terminal is confirmed with isatty() once open.) */
static bool output_type_ok(const struct stat *st)
{
    return S_ISREG(st->st_mode) || (S_ISCHR(st->st_mode) && (chr_null(st->st_rdev) || chr_tty(st->st_rdev)));
}

static int refuse_output(const char *name, const struct stat *st)
{
    if (S_ISCHR(st->st_mode))
        return mvm_fail(EINVAL, "%s: is a character device other than /dev/null or a terminal; give a regular file",
                        name);
    return mvm_fail(EINVAL, "%s: is %s; give a regular file%s", name, mvm_file_kind(st->st_mode),
                    S_ISFIFO(st->st_mode) ? " (writing to a FIFO waits for a reader, maybe forever)" : "");
}

static int nonblock_clear(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ? -errno : 0;
}

int mvm_file_open_input(const char *what, const char *path, struct stat *st)
{
    char buf[512];
    const char *name = name_of(what, path, buf, sizeof(buf));
    int fd, rc;

    /* Opening a device can have effects of its own (a watchdog arms on open): look before opening. */
    if (stat(path, st) != 0)
        return mvm_fail(errno, "%s: %s", name, strerror(errno));
    if (!S_ISREG(st->st_mode))
        return mvm_fail(EINVAL, "%s: is %s, not a regular file", name, mvm_file_kind(st->st_mode));
    /* O_NONBLOCK: if a FIFO took the file's place meanwhile, the open must not wait for a writer. */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return mvm_fail(errno, "%s: %s", name, strerror(errno));
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return mvm_fail(EINVAL, "%s: is %s, not a regular file", name, mvm_file_kind(st->st_mode));
    }
    rc = nonblock_clear(fd);
    if (rc < 0) {
        close(fd);
        return mvm_fail(-rc, "%s: %s", name, strerror(-rc));
    }
    return fd;
}

int mvm_file_check_output(const char *what, const char *path, struct stat *st, bool *exists)
{
    char buf[512];
    const char *name = name_of(what, path, buf, sizeof(buf));

    *exists = false;
    if (stat(path, st) != 0) {
        if (errno == ENOENT)
            return 0; /* created when opened; a missing directory is reported then */
        return mvm_fail(errno, "%s: %s", name, strerror(errno));
    }
    *exists = true;
    if (!output_type_ok(st))
        return refuse_output(name, st);
    return 0;
}

int mvm_file_open_output(const char *what, const char *path, struct stat *st)
{
    char buf[512];
    const char *name = name_of(what, path, buf, sizeof(buf));
    bool exists;
    int fd, rc = mvm_file_check_output(what, path, st, &exists);

    if (rc < 0)
        return rc;
    /* No O_TRUNC: nothing is changed until the open file's type is known. O_NONBLOCK: a FIFO never blocks. */
    fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644);
    if (fd < 0)
        return mvm_fail(errno, "%s: %s", name, strerror(errno));
    if (fstat(fd, st) != 0) {
        rc = mvm_fail(errno, "%s: %s", name, strerror(errno));
        close(fd);
        return rc;
    }
    if (!output_type_ok(st) || (S_ISCHR(st->st_mode) && chr_tty(st->st_rdev) && !isatty(fd))) {
        rc = refuse_output(name, st);
        close(fd);
        return rc;
    }
    rc = S_ISREG(st->st_mode) && ftruncate(fd, 0) != 0 ? -errno : nonblock_clear(fd);
    if (rc < 0) {
        close(fd);
        return mvm_fail(-rc, "%s: %s", name, strerror(-rc));
    }
    return fd;
}

int mvm_file_check_replace(const char *what, const char *path, struct stat *st, bool *exists)
{
    char buf[512];
    const char *name = name_of(what, path, buf, sizeof(buf));

    *exists = false;
    if (lstat(path, st) != 0) {
        if (errno == ENOENT)
            return 0;
        return mvm_fail(errno, "%s: %s", name, strerror(errno));
    }
    *exists = true;
    if (S_ISLNK(st->st_mode))
        return mvm_fail(EINVAL,
                        "%s: is a symbolic link; the new file is renamed into place and would replace the "
                        "link itself: give the path it points to, or a new path",
                        name);
    if (!S_ISREG(st->st_mode))
        return mvm_fail(EINVAL, "%s: is %s; refusing to replace it: give a new path", name, mvm_file_kind(st->st_mode));
    return 0;
}

bool mvm_file_same(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}
