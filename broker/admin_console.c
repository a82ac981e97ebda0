/* admin_console.c — the web console's static files on the admin listener (docs/console.md).
 *
 * The built assets (broker/console/, bundled by esbuild in the CMake build) are read once at
 * start from one directory into memory: only regular files directly in it whose names match
 * [a-z0-9][a-z0-9._-]* with a known extension (symbolic links are refused). A request is answered
 * only by an exact name match against that list, so no path can reach any other file (no traversal,
 * no symlinks followed at request time, no directory listing). Directory, in order: console.dir;
 * beside the executable `<exe dir>/console` (the build tree: build/broker/console); the install
 * layout
 * `<exe dir>/../share/roamhub/console`.
 *
 * Every response carries a strict Content-Security-Policy (scripts and styles only from the
 * console's own files, no inline code, connections only to the same origin; images also from the
 * configured tile server's origin), nosniff, no referrer, no framing. The console sets no
 * cookies and the static files hold no data: everything else comes from /api/v1/ with a token
 * held in the page's memory, so an unauthenticated visitor gets the sign-in page and nothing
 * more.
 */
#include "admin_internal.h"

#include "rh_fs.h"
#include "rh_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONSOLE_MAX_FILES 64
#define CONSOLE_MAX_FILE_BYTES (8u << 20)

typedef struct console_file {
    char name[64];
    const char *ctype;
    uint8_t *data, *gz;
    size_t len, gzlen;
} console_file_t;

struct admin_console {
    char dir[PATH_MAX];
    console_file_t files[CONSOLE_MAX_FILES];
    size_t nfiles;
    char headers[1024]; /* CSP and the other security headers, CRLF-terminated lines */
};

static const char *ctype_of(const char *name)
{
    static const struct {
        const char *ext, *ctype;
    } t[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(dot, t[i].ext))
            return t[i].ctype;
    return NULL;
}

static int name_ok(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l >= sizeof(((console_file_t *)0)->name))
        return 0;
    if (!((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= '0' && n[0] <= '9')))
        return 0;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
              *p == '-'))
            return 0;
    return strstr(n, "..") == NULL;
}

/* Origin ("https://host[:port]") of the tile URL (validated by config.c), into out. */
static void tile_origin(const char *url, char *out, size_t cap)
{
    out[0] = '\0';
    if (!url)
        return;
    const char *h = strstr(url, "://");
    if (!h)
        return;
    const char *end = strchr(h + 3, '/');
    size_t n = end ? (size_t)(end - url) : strlen(url);
    /* a {s} or other placeholder in the host cannot be expressed as one origin: allow the
     * scheme's hosts rather than breaking the map */
    if (memchr(url, '{', n))
        n = (size_t)(h - url) + 1; /* "https:" */
    if (n < cap) {
        memcpy(out, url, n);
        out[n] = '\0';
    }
}

static int load_file(admin_console_t *c, const char *name)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", c->dir, name) >= (int)sizeof path)
        return RH_EINVAL;
    console_file_t *cf = &c->files[c->nfiles];
    memset(cf, 0, sizeof *cf);
    size_t n = 0; /* symlinks and anything but regular files are not served */
    char *data = NULL;
    int rc = rh_read_file_nofollow(path, CONSOLE_MAX_FILE_BYTES, &data, &n, NULL);
    if (rc != RH_OK)
        return rc;
    cf->data = (uint8_t *)data;
    cf->len = n;
    snprintf(cf->name, sizeof cf->name, "%s", name);
    cf->ctype = ctype_of(name);
    if (n > 1024 && strncmp(cf->ctype, "image/png", 9) &&
        admin_gzip(cf->data, n, &cf->gz, &cf->gzlen) != RH_OK) {
        cf->gz = NULL;
        cf->gzlen = 0;
    }
    c->nfiles++;
    return RH_OK;
}

static int find_dir(const rh_config_t *cfg, char *out, size_t cap)
{
    struct stat st;
    if (cfg->console_dir) {
        snprintf(out, cap, "%s", cfg->console_dir);
        return stat(out, &st) == 0 && S_ISDIR(st.st_mode) ? RH_OK : RH_EIO;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return RH_EIO;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return RH_EIO;
    *slash = '\0';
    const char *cands[] = {"%s/console", "%s/../share/roamhub/console"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(out, cap, cands[i], exe);
        char probe[PATH_MAX + 16];
        snprintf(probe, sizeof probe, "%s/index.html", out);
        if (stat(probe, &st) == 0 && S_ISREG(st.st_mode))
            return RH_OK;
    }
    return RH_EIO;
}

int admin_console_new(const rh_config_t *cfg, admin_console_t **out, rh_diag_t *d)
{
    *out = NULL;
    admin_console_t *c = calloc(1, sizeof *c);
    if (!c)
        return rh_diag_fail(d, RH_ENOMEM, "console");
    char origin[600];
    tile_origin(cfg->console_tile_url, origin, sizeof origin);
    snprintf(c->headers, sizeof c->headers,
             "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
             "img-src 'self' data:%s%s; connect-src 'self'; base-uri 'none'; form-action 'none'; "
             "frame-ancestors 'none'\r\n"
             "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
             "X-Frame-Options: DENY\r\nCross-Origin-Opener-Policy: same-origin\r\n"
             "Cache-Control: no-cache\r\n",
             origin[0] ? " " : "", origin);
    if (find_dir(cfg, c->dir, sizeof c->dir) != RH_OK) {
        if (cfg->console_dir) {
            free(c);
            return rh_diag_fail(d, RH_EIO, "console.dir %s: not a directory", cfg->console_dir);
        }
        RH_LOG(RH_LOG_WARN, "admin",
               "console assets not found beside the executable: the "
               "console answers 503 (build with npm available, or set console.dir)");
        c->dir[0] = '\0';
        *out = c;
        return RH_OK;
    }
    DIR *dh = opendir(c->dir);
    if (!dh) {
        int rc = rh_diag_fail(d, RH_EIO, "console directory %s: %s", c->dir, strerror(errno));
        free(c);
        return rc;
    }
    struct dirent *de;
    while ((de = readdir(dh)) != NULL && c->nfiles < CONSOLE_MAX_FILES) {
        if (!name_ok(de->d_name) || !ctype_of(de->d_name))
            continue;
        if (load_file(c, de->d_name) != RH_OK) /* skipped: symlink, unreadable, > 8 MiB */
            RH_LOG(RH_LOG_WARN, "admin", "console file skipped name=%s", de->d_name);
    }
    closedir(dh);
    RH_LOG(RH_LOG_INFO, "admin", "console ready files=%zu tiles=%s", c->nfiles,
           cfg->console_tile_url ? "yes" : "no");
    *out = c;
    return RH_OK;
}

void admin_console_free(admin_console_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nfiles; i++) {
        free(c->files[i].data);
        free(c->files[i].gz);
    }
    free(c);
}

static void reply_text(admin_console_t *c, hs_req_t *req, int status, const char *text)
{
    hs_reply_ex(req, status, "text/plain; charset=utf-8", c ? c->headers : NULL, text,
                strlen(text));
}

int admin_console_handle(admin_api_t *a, hs_req_t *req)
{
    const char *path = hs_req_path(req);
    if (strcmp(path, "/") && strcmp(path, "/console") && strncmp(path, "/console/", 9))
        return 0;
    admin_console_t *c = a->console;
    if (strcmp(hs_req_method(req), "GET")) {
        hs_reply_ex(req, 405, "text/plain", "Allow: GET\r\n", "GET only\n", 9);
        return 1;
    }
    if (!strcmp(path, "/") || !strcmp(path, "/console")) {
        char h[1200];
        snprintf(h, sizeof h, "Location: /console/\r\n%s", c ? c->headers : "");
        hs_reply_ex(req, 302, "text/plain", h, "/console/\n", 10);
        return 1;
    }
    if (!c) {
        reply_text(NULL, req, 404, "the console is disabled (console.enabled)\n");
        return 1;
    }
    if (!c->dir[0]) {
        reply_text(c, req, 503, "console assets were not built\n");
        return 1;
    }
    const char *name = path + 9;
    if (!*name)
        name = "index.html";
    const console_file_t *f = NULL;
    for (size_t i = 0; i < c->nfiles && !f; i++)
        if (!strcmp(c->files[i].name, name))
            f = &c->files[i];
    if (!f) {
        reply_text(c, req, 404, "not found\n");
        return 1;
    }
    const char *ae = hs_req_header(req, "accept-encoding");
    int gz = f->gz && ae && strstr(ae, "gzip");
    char h[1200];
    snprintf(h, sizeof h, "%s%s", c->headers,
             gz ? "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n"
                : "Vary: Accept-Encoding\r\n");
    hs_reply_ex(req, 200, f->ctype, h, gz ? f->gz : f->data, gz ? f->gzlen : f->len);
    return 1;
}

/* GET /api/v1/console: what the console needs from the configuration (authenticated). */
void admin_console_settings(admin_req_t *r)
{
    if (strcmp(r->method, "GET") || r->nseg != 1) {
        admin_reply_error(r, 405, "console: GET /api/v1/console");
        return;
    }
    const rh_config_t *cfg = &r->a->hub->cfg;
    cJSON *o = cJSON_CreateObject();
    if (cfg->console_tile_url)
        cJSON_AddStringToObject(o, "tile_url", cfg->console_tile_url);
    if (cfg->console_tile_attribution)
        cJSON_AddStringToObject(o, "tile_attribution", cfg->console_tile_attribution);
    cJSON_AddNumberToObject(o, "gateways_max", cfg->console_gateways_max);
    admin_reply_json(r, 200, o);
}

/* ---- SIGHUP: the console's configuration keys (admin.h) ---- */

struct admin_reload {
    int enabled;
    admin_console_t *console; /* the new files and CSP (enabled) */
    gw_store_t *store;        /* a first store (none yet), or the arrays of a resized one */
};

int admin_reload_prepare(admin_api_t *a, const rh_config_t *next, admin_reload_t **state,
                         rh_diag_t *diag)
{
    *state = NULL;
    admin_reload_t *s = calloc(1, sizeof *s);
    if (!s)
        return rh_diag_fail(diag, RH_ENOMEM, "console reload");
    s->enabled = next->console_enabled;
    int rc = RH_OK;
    if (s->enabled)
        rc = admin_console_new(next, &s->console, diag);
    if (rc == RH_OK && (s->enabled || a->gws) &&
        (!a->gws || gw_store_max(a->gws) != next->console_gateways_max) &&
        gw_store_new(next->console_gateways_max, &s->store) != RH_OK)
        rc = rh_diag_fail(diag, RH_ENOMEM, "console.gateways_max: %u entries",
                          next->console_gateways_max);
    if (rc != RH_OK) {
        admin_reload_abort(s);
        return rc;
    }
    *state = s;
    return RH_OK;
}

void admin_reload_commit(admin_api_t *a, admin_reload_t *s)
{
    if (!s)
        return;
    admin_console_free(a->console); /* main thread: no request holds its files (replies copy) */
    a->console = s->console;
    if (s->store) {
        if (a->gws)
            gw_store_take(a->gws, s->store); /* resized in place: workers keep their pointer */
        else
            a->gws = s->store;
    }
    atomic_store(&gateways_global, s->enabled ? a->gws : NULL);
    free(s);
}

void admin_reload_abort(admin_reload_t *s)
{
    if (!s)
        return;
    admin_console_free(s->console);
    gw_store_free(s->store);
    free(s);
}
