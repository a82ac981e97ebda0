/* rh_fs.c — mkdir -p (see rh_fs.h). */
#include "rh_fs.h"

#include "rh_err.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

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
