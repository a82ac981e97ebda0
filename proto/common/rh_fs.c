/* rh_fs.c — mkdir -p and whole-file reading (see rh_fs.h). */
#include "rh_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rh_mkdir_p(const char *path, mode_t mode)
{
    char tmp[1024];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp)
        return RH_ERANGE;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, mode) != 0 && errno != EEXIST)
                return RH_EIO;
            *p = '/';
        }
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return RH_EIO;
    return RH_OK;
}

int rh_mkdir_parent(const char *path, mode_t mode)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return RH_OK;
    char dir[1024];
    size_t len = (size_t)(slash - path);
    if (len >= sizeof dir)
        return RH_ERANGE;
    memcpy(dir, path, len);
    dir[len] = '\0';
    return rh_mkdir_p(dir, mode);
}

/* Reads `f` to its end. The buffer keeps one byte for the NUL and grows up to max + 2 bytes, so
 * that a stream longer than max is recognised after reading max + 1 bytes. */
static int read_stream(FILE *f, const char *name, size_t max, char **out, size_t *len,
                       rh_diag_t *diag)
{
    if (max > SIZE_MAX / 4)
        max = SIZE_MAX / 4;
    size_t cap = 4096;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0) {
        if ((uintmax_t)st.st_size > max)
            return rh_diag_fail(diag, RH_ERANGE, "%s: larger than %zu bytes", name, max);
        cap = (size_t)st.st_size + 2; /* content, NUL, and room to see the end of the file */
    }
    if (cap > max + 2)
        cap = max + 2;
    char *buf = malloc(cap);
    if (!buf)
        return rh_diag_fail(diag, RH_ENOMEM, "%s: out of memory", name);
    size_t n = 0;
    for (;;) {
        if (n + 1 == cap) {
            if (n > max)
                break;
            size_t nc = cap <= (max + 2) / 2 ? cap * 2 : max + 2;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                return rh_diag_fail(diag, RH_ENOMEM, "%s: out of memory", name);
            }
            buf = nb;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        return rh_diag_fail(diag, RH_EIO, "%s: read error: %s", name, strerror(e));
    }
    if (n > max) {
        free(buf);
        return rh_diag_fail(diag, RH_ERANGE, "%s: larger than %zu bytes", name, max);
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return RH_OK;
}

int rh_read_file(const char *path, size_t max, char **out, size_t *len, rh_diag_t *diag)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        rh_diag_fail(diag, RH_EIO, "%s: %s", path, strerror(e));
        errno = e;
        return RH_EIO;
    }
    int rc = read_stream(f, path, max, out, len, diag);
    int e = errno;
    fclose(f);
    errno = e;
    return rc;
}

int rh_read_input(const char *path, size_t max, char **out, size_t *len, rh_diag_t *diag)
{
    if (strcmp(path, "-") == 0)
        return read_stream(stdin, "-", max, out, len, diag);
    return rh_read_file(path, max, out, len, diag);
}

int rh_read_file_nofollow(const char *path, size_t max, char **out, size_t *len,
                          rh_diag_t *diag)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        rh_diag_fail(diag, RH_EIO, "%s: %s", path, strerror(e));
        errno = e;
        return RH_EIO;
    }
    struct stat st;
    int rc;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        rc = rh_diag_fail(diag, RH_EIO, "%s: not a regular file", path);
    else
        rc = read_stream(f, path, max, out, len, diag);
    int e = errno;
    fclose(f);
    errno = e;
    return rc;
}
