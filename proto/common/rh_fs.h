/*
 * rh_fs.h — filesystem helpers (shared runtime).
 */
#ifndef RH_FS_H
#define RH_FS_H

#include <sys/types.h>

/* Creates directory `path` and its missing parents with `mode` (like mkdir -p); an existing
 * directory is fine. Errors: RH_ERANGE (path longer than 1023 bytes), RH_EIO (errno kept). */
int rh_mkdir_p(const char *path, mode_t mode);

/* Creates the missing parent directories of file `path` (nothing for a bare file name).
 * Errors: as rh_mkdir_p. */
int rh_mkdir_parent(const char *path, mode_t mode);

#endif
