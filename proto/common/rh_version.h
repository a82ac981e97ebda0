/*
 * rh_version.h — the one version of every roamhub binary: project(VERSION) of the top-level
 * CMakeLists.txt, followed by `git describe` when built from a git checkout
 * (e.g. "0.1.0+gf7887b1-dirty"). Generated at build time (cmake/version.cmake), so every binary
 * of one build reports the same string. Shown by `--version`, logged at roamhubd's start and
 * exported as roamhub_build_info{version=...}.
 */
#ifndef RH_VERSION_H
#define RH_VERSION_H

/* The version string (static storage, never NULL). */
const char *rh_version(void);

/* If `arg` is "--version", prints "PROG (roamhub) VERSION" on stdout (the GNU form help2man
 * reads) and returns 1; otherwise returns 0. For argument loops: `if (rh_version_arg(a, "x"))
 * return 0;`. */
int rh_version_arg(const char *arg, const char *prog);

#endif
