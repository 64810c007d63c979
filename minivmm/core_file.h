/* Host files the tools open: inputs are regular files, outputs never block, nothing is replaced that is not ours. */
#ifndef MINIVMM_CORE_FILE_H
#define MINIVMM_CORE_FILE_H

#include <stdbool.h>
#include <sys/stat.h>

/* The kind of file a mode says, as a phrase: "a FIFO or pipe", "a directory", "a socket", ... */
const char *mvm_file_kind(mode_t mode);

/*
 * Opens an input for reading: a regular file only. The type is checked before
 * the open and again on the open fd, and the open never blocks (a FIFO is
 * refused, not waited on). `what` names it in messages ("guest image"; NULL:
 * the path alone). Returns the fd (O_CLOEXEC, blocking reads) and fills *st,
 * or -errno with a message ("guest image X: is a FIFO or pipe, not a regular file").
 */
int mvm_file_open_input(const char *what, const char *path, struct stat *st);

/*
 * Checks, without opening it, that `path` may be an output: absent (it will be
 * created), a regular file (it will be truncated and overwritten in place),
 * /dev/null, /dev/full or a terminal. A FIFO, socket, directory or any other
 * device is refused. Sets *exists and fills *st when the path exists.
 * Returns 0, or -errno with a message ("--trace X: is a FIFO or pipe; give a regular file").
 */
int mvm_file_check_output(const char *what, const char *path, struct stat *st, bool *exists);

/*
 * Opens an output for writing, after mvm_file_check_output's checks, without
 * blocking: the type is checked again on the open fd, and a regular file is
 * truncated only then. Returns the fd (O_CLOEXEC, blocking writes) and fills
 * *st, or -errno with a message.
 */
int mvm_file_open_output(const char *what, const char *path, struct stat *st);

/*
 * Checks that `path` is absent or a regular file that the caller may replace
 * by renaming a new file over it (the caller checks its contents). A symbolic
 * link is refused (the rename would replace the link, not its target), and so
 * is anything not a regular file. Sets *exists and fills *st (lstat) when it exists.
 */
int mvm_file_check_replace(const char *what, const char *path, struct stat *st, bool *exists);

/* True when a and b are the same file (device and inode). */
bool mvm_file_same(const struct stat *a, const struct stat *b);

#endif
