/*
 * rh_fs.h — filesystem helpers (shared runtime): mkdir -p, and reading a whole file into memory
 * (the one implementation every configuration, key, import and vector loader uses).
 */
#ifndef RH_FS_H
#define RH_FS_H

#include "rh_err.h"

#include <stddef.h>
#include <sys/types.h>

/* Creates directory `path` and its missing parents with `mode` (like mkdir -p); an existing
 * directory is fine. Errors: RH_ERANGE (path longer than 1023 bytes), RH_EIO (errno kept). */
int rh_mkdir_p(const char *path, mode_t mode);

/* Creates the missing parent directories of file `path` (nothing for a bare file name).
 * Errors: as rh_mkdir_p. */
int rh_mkdir_parent(const char *path, mode_t mode);

/* Reads the whole file `path` into a new buffer.
 *   max   size cap in bytes (at most SIZE_MAX / 4): a longer file is refused without reading
 *         more than max + 1 bytes, so a wrong path (/dev/zero, a huge log) cannot exhaust memory.
 *         A regular file's size is taken from fstat, so it is read with one allocation.
 *   *out  on RH_OK: the content plus a terminating NUL byte (also for an empty file); the caller
 *         owns it and frees it with free(). Unchanged on failure (nothing to free).
 *   *len  on RH_OK: the content's length without the NUL (may be 0; callers decide whether an
 *         empty file is an error). `len` may be NULL. The content may contain NUL bytes.
 * Errors (diag = "<path>: <reason>", diag may be NULL):
 *   RH_EIO    cannot open (reason = strerror(errno), errno kept) or a read error (e.g. a directory);
 *   RH_ERANGE larger than max ("larger than N bytes");
 *   RH_ENOMEM allocation failed.
 * Blocking I/O: for start-up and command-line tools, never on an event-loop thread. */
int rh_read_file(const char *path, size_t max, char **out, size_t *len, rh_diag_t *diag);

/* rh_read_file for command-line arguments: the name "-" reads standard input to its end (diag
 * names it "-"; stdin is not closed); any other name is rh_read_file(path, ...). */
int rh_read_input(const char *path, size_t max, char **out, size_t *len, rh_diag_t *diag);

/* rh_read_file for files served to remote parties (the console's assets): a symbolic link as
 * the last path component is refused (O_NOFOLLOW: RH_EIO, errno ELOOP) and so is anything but a
 * regular file (RH_EIO, "not a regular file"). Otherwise as rh_read_file. */
int rh_read_file_nofollow(const char *path, size_t max, char **out, size_t *len,
                          rh_diag_t *diag);

#endif
