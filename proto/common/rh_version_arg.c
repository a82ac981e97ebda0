/* rh_version_arg.c — the shared `--version` answer (see rh_version.h). */
#include "rh_version.h"

#include <stdio.h>
#include <string.h>

int rh_version_arg(const char *arg, const char *prog)
{
    if (!arg || strcmp(arg, "--version") != 0)
        return 0;
    printf("%s (roamhub) %s\n", prog, rh_version());
    return 1;
}
