/*
 * roamctl — command-line client of roamhubd's admin API (docs/roamctl.md, docs/openapi.yaml).
 *
 *   roamctl [--url URL] [--key ID:SECRET | --key-file F] [--token JWT] [--json] COMMAND ...
 *
 * Credentials: flags, else ROAMCTL_URL / ROAMCTL_KEY (id:secret) / ROAMCTL_KEY_FILE /
 * ROAMCTL_TOKEN, else ~/.config/roamctl.json {"url": ..., "key": ... | "key_file": ...,
 * "ca_file": ...}. A key is exchanged for a short-lived token at every run
 * (POST /api/v1/oauth/token); nothing secret is written to disk. Output: aligned tables, or the
 * server's JSON with --json. Exit codes: 0 ok, 1 refused by the server, 2 usage, 3 connection.
 */
#include "roamctl.h"
#include "rh_fs.h"
#include "rh_version.h"

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static rc_conf_t cf = {.url = "http://127.0.0.1:4271", .timeout_s = 90};
static char auth_header[9000];

/* ------------------------------------------------------------------ the command table */

/* One table drives the help (roamctl --help, roamctl CMD --help), the dispatch check and the
 * shell completion (roamctl completion bash|zsh), so they cannot disagree. */
typedef struct cmd_info {
    const char *name;
    const char *synopsis;          /* lines after "roamctl " */
    const char *help;              /* what it does */
    const char *const *words;      /* verbs and options offered by completion */
} cmd_info_t;

#define RES_WORDS                                                                                \
    (const char *const[]){"list", "get", "create", "update", "delete", "--net-id", "--page-size", \
                          "--page-token", "--all", "-f", "--file", NULL}
#define RES_SYNOPSIS(r)                                                                          \
    r " list [--net-id N] [--page-size N] [--page-token T] [--all]\n" r " get KEY...\n" r        \
      " delete KEY...\n" r " create [-f FILE.json | JSON]\n" r " update KEY... [-f FILE.json | JSON]"

static const cmd_info_t commands[] = {
    {"networks", RES_SYNOPSIS("networks"), "Networks (KEY: NETID).", RES_WORDS},
    {"tenants", RES_SYNOPSIS("tenants"), "Tenants of a network (KEY: NETID TENANT).", RES_WORDS},
    {"endpoints", RES_SYNOPSIS("endpoints"), "TS002 endpoints of members (KEY: ID).", RES_WORDS},
    {"devaddr-blocks", RES_SYNOPSIS("devaddr-blocks"), "DevAddr blocks (KEY: PREFIX LEN).",
     RES_WORDS},
    {"join-routes", RES_SYNOPSIS("join-routes"),
     "Join routes (KEY: JOINEUI LEN [DEVEUI LEN]).", RES_WORDS},
    {"policies", RES_SYNOPSIS("policies"), "Routing policy records (KEY: FWD [HOME|default]).",
     RES_WORDS},
    {"members", RES_SYNOPSIS("members"), "Members (KEY: ID; operator only).", RES_WORDS},
    {"keys",
     "keys list|get ID|delete ID\n"
     "keys create [--net-id N] [--tenant T] [--operator] --rights R1,R2 [--name NAME] [--id ID]\n"
     "keys revoke ID",
     "API keys. `create` prints the new id:secret once, on stderr (stdout keeps the record).",
     (const char *const[]){"list", "get", "create", "revoke", "delete", "--net-id", "--tenant",
                           "--operator", "--rights", "--name", "--id", "--page-size",
                           "--page-token", "--all", NULL}},
    {"policy",
     "policy set FWD HOME|default [--allow CLASSES] [--down CLASSES] [--forwarder-tenant T]\n"
     "           [--home-tenant T]\n"
     "policy effective [--forwarder NETID] [--home NETID]",
     "Set a forwarder's routing policy, or show the policy in force.\n"
     "Uplink CLASSES: join_request,mac_data,application_data,signal_quality,localization;\n"
     "--down: join_accept,mac_data,application_data (classes left out are off).",
     (const char *const[]){"set", "effective", "--allow", "--down", "--forwarder-tenant",
                           "--home-tenant", "--forwarder", "--home", NULL}},
    {"whoami", "whoami", "The key's ID, role, NetID scope and rights.", (const char *const[]){NULL}},
    {"token", "token", "Print a token for the key (for scripts and curl).",
     (const char *const[]){NULL}},
    {"catalog", "catalog", "Listed networks and tenants.", (const char *const[]){NULL}},
    {"routes", "routes --devaddr ADDR | --join-eui EUI [--dev-eui EUI]",
     "Where the hub routes a DevAddr or a JoinEUI/DevEUI.",
     (const char *const[]){"--devaddr", "--join-eui", "--dev-eui", NULL}},
    {"audit", "audit [--since UNIX_MS] [--page-size N] [--page-token T]",
     "The change log, oldest first (operator keys).",
     (const char *const[]){"--since", "--page-size", "--page-token", "--limit", NULL}},
    {"stats",
     "stats [--from T] [--to T] [--by minute|hour|day] [--forwarder N] [--home N] [--class C]\n"
     "      [--outcome O] [--protocol P] [--forwarder-protocol P] [--home-protocol P]\n"
     "      [--format json|csv] [--limit ROWS_PER_PAGE] [--max-pages N]",
     "Traffic statistics; T is RFC 3339 UTC or Unix seconds; P is ts002 or packet_broker\n"
     "(--protocol: either side spoke it). Every row names the protocol its forwarder and its\n"
     "home network spoke. Follows the pages: prints every row of the range (--max-pages stops\n"
     "early and says so).",
     (const char *const[]){"--from", "--to", "--by", "--forwarder", "--home", "--class",
                           "--outcome", "--protocol", "--forwarder-protocol", "--home-protocol",
                           "--format", "--limit", "--max-pages", NULL}},
    {"capture",
     "capture [--seconds N] [--max-events M] -o FILE.jsonl.gz\n"
     "capture --follow [--seconds N] [--max-events M]",
     "Capture of your TS002 traffic metadata (-o -: decompressed to stdout; --follow: live, one\n"
     "JSON line per event on stdout).",
     (const char *const[]){"--seconds", "--max-events", "-o", "--output", "--follow", "-f", NULL}},
    {"gateways", "gateways [--net-id N]",
     "Gateway locations seen in GWInfo (visibility applied).",
     (const char *const[]){"--net-id", NULL}},
    {"endpoint-health", "endpoint-health [--minutes M]",
     "Circuit breaker, recent failures and latency per endpoint.",
     (const char *const[]){"--minutes", NULL}},
    {"import", "import FILE.json [--replace]",
     "Bulk load a roamdb JSON document through the API (operator).",
     (const char *const[]){"--replace", NULL}},
    {"completion", "completion bash|zsh",
     "Print a shell completion script: source <(roamctl completion bash).",
     (const char *const[]){"bash", "zsh", NULL}},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const char *const global_words[] = {"--url", "--key", "--key-file", "--token", "--ca",
                                           "--json", "-o", "--help", "--version", NULL};

static const cmd_info_t *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

/* Prints lines of `text` each prefixed with `prefix`. */
static void print_prefixed(FILE *f, const char *prefix, const char *text)
{
    while (*text) {
        const char *nl = strchr(text, '\n');
        int n = nl ? (int)(nl - text) : (int)strlen(text);
        fprintf(f, "%s%.*s\n", prefix, n, text);
        text += n + (nl ? 1 : 0);
    }
}

static void usage_to(FILE *f)
{
    fputs("Usage: roamctl [OPTIONS] COMMAND [ARGS] [OPTIONS]\n"
          "Command-line client of roamhubd's admin API (docs/roamctl.md, docs/openapi.yaml).\n"
          "\n"
          "Options (before or after the command):\n"
          "  --url URL            admin API base (default http://127.0.0.1:4271)\n"
          "  --key ID:SECRET      API key;  --key-file FILE  a file holding it\n"
          "  --token JWT          a ready token instead of a key\n"
          "  --ca FILE            CA bundle for https://\n"
          "  -o, --output json|table  output format (--json = -o json)\n"
          "  -h, --help           show this help, or a command's: roamctl COMMAND --help\n"
          "  --version            show the version and exit\n"
          "\n"
          "Commands (roamctl COMMAND --help shows its arguments):\n",
          f);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const char *h = commands[i].help;
        fprintf(f, "  %-16s%.*s\n", commands[i].name, (int)strcspn(h, "\n"), h);
    }
    fputs("  (networks ... keys: list, get KEY, create, update KEY, delete KEY)\n", f);
    fputs("\n"
          "Configuration: flags, then ROAMCTL_URL, ROAMCTL_KEY, ROAMCTL_KEY_FILE, ROAMCTL_TOKEN,\n"
          "then $ROAMCTL_CONFIG or $XDG_CONFIG_HOME/roamctl.json (default ~/.config/roamctl.json)\n"
          "with the keys url, key, key_file, ca_file, output.\n"
          "Exit status: 0 ok, 1 refused by the server, 2 usage, 3 connection failure.\n",
          f);
}

static void usage(void) { usage_to(stderr); }

static void command_help(const cmd_info_t *c)
{
    printf("Usage:\n");
    print_prefixed(stdout, "  roamctl ", c->synopsis);
    printf("\n");
    print_prefixed(stdout, "", c->help);
    printf("\nGlobal options (--url, --key, --key-file, --token, --ca, -o json|table, --json) go "
           "before or after the command; see roamctl --help.\n");
}

/* An argument a command does not know: named, with where to look. Returns RC_USAGE. */
static int bad_arg(const char *cmd, const char *arg)
{
    if (arg)
        fprintf(stderr, "roamctl: %s: unknown option or missing value: %s (see roamctl %s --help)\n",
                cmd, arg, cmd);
    else
        fprintf(stderr, "roamctl: %s: missing arguments (see roamctl %s --help)\n", cmd, cmd);
    return RC_USAGE;
}

/* `roamctl completion bash|zsh`: a script generated from the command table. */
static int cmd_completion(int argc, char **argv)
{
    if (argc != 1 || (strcmp(argv[0], "bash") && strcmp(argv[0], "zsh")))
        return bad_arg("completion", argc ? argv[0] : NULL);
    int zsh = !strcmp(argv[0], "zsh");
    if (zsh)
        printf("#compdef roamctl\n# zsh completion for roamctl, generated by `roamctl completion "
               "zsh`\nautoload -U +X bashcompinit && bashcompinit\n");
    else
        printf("# bash completion for roamctl, generated by `roamctl completion bash`\n");
    printf("_roamctl() {\n  local cur=\"${COMP_WORDS[COMP_CWORD]}\" cmd=\"\" w\n"
           "  for w in \"${COMP_WORDS[@]:1:COMP_CWORD-1}\"; do\n"
           "    case \"$w\" in -*) ;; *) cmd=\"$w\"; break;; esac\n  done\n"
           "  local globals=\"");
    for (size_t i = 0; global_words[i]; i++)
        printf("%s%s", i ? " " : "", global_words[i]);
    printf("\"\n  case \"$cmd\" in\n    \"\") COMPREPLY=($(compgen -W \"");
    for (size_t i = 0; i < NCOMMANDS; i++)
        printf("%s%s", i ? " " : "", commands[i].name);
    printf(" $globals\" -- \"$cur\"));;\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        printf("    %s) COMPREPLY=($(compgen -W \"", commands[i].name);
        for (size_t k = 0; commands[i].words[k]; k++)
            printf("%s ", commands[i].words[k]);
        printf("--help $globals\" -- \"$cur\"));;\n");
    }
    printf("  esac\n}\ncomplete -F _roamctl roamctl\n");
    return RC_OK;
}

/* ------------------------------------------------------------------ small helpers */

/* A file, or standard input for "-" (rh_read_input, at most 256 MiB); NULL when unreadable
 * (callers say which file). */
static char *read_file(const char *path, size_t *len)
{
    char *buf;
    return rh_read_input(path, 256u << 20, &buf, len, NULL) == RH_OK ? buf : NULL;
}

static void url_escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c))
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
    }
    out[o] = '\0';
}

/* Appends "&name=value" (escaped) to a query under construction. */
static void q_add(char *q, size_t cap, const char *name, const char *value)
{
    char esc[1024];
    url_escape(value, esc, sizeof esc);
    size_t n = strlen(q);
    snprintf(q + n, cap - n, "%s%s=%s", strchr(q, '?') ? "&" : "?", name, esc);
}

static const char *server_message(const rc_resp_t *r)
{
    static char msg[600];
    cJSON *o = r->body ? cJSON_Parse(r->body) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(e)) /* the token endpoint's RFC 6749 §5.2 shape */
        m = cJSON_GetObjectItemCaseSensitive(o, "error_description");
    snprintf(msg, sizeof msg, "%s", cJSON_IsString(m) ? m->valuestring
                                    : r->body && r->len < 300 ? r->body : "");
    cJSON_Delete(o);
    return msg;
}

/* After a failed https:// connection: whether host:port of cf.url answers plain HTTP (a probe
 * "HEAD / HTTP/1.0" over TCP, 2 s at most), to tell a TLS mismatch from an unreachable server. */
static int answers_plain_http(void)
{
    char host[256] = "", port[8] = "443";
    const char *h = cf.url + 8, *end = h + strcspn(h, "/");
    const char *colon = h[0] == '[' ? strstr(h, "]:") : memchr(h, ':', (size_t)(end - h));
    size_t hl = (size_t)((colon ? colon + (h[0] == '[') : end) - h);
    if (h[0] == '[') {
        h++;
        hl = hl > 0 ? hl - 1 : 0;
    }
    if (hl == 0 || hl >= sizeof host)
        return 0;
    memcpy(host, h, hl);
    if (colon) {
        const char *p = colon + (h[-1] == '[' ? 2 : 1);
        size_t pl = (size_t)(end - p);
        if (pl == 0 || pl >= sizeof port)
            return 0;
        memcpy(port, p, pl);
        port[pl] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
        return 0;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    int plain = 0;
    struct timeval tv = {2, 0};
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0 &&
        connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        static const char probe[] = "HEAD / HTTP/1.0\r\n\r\n";
        char buf[8] = "";
        if (send(fd, probe, sizeof probe - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof probe - 1) &&
            recv(fd, buf, 5, MSG_WAITALL) == 5)
            plain = !memcmp(buf, "HTTP/", 5);
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return plain;
}

/* Reports a refusal; returns the exit code. */
static int report(const rc_resp_t *r)
{
    if (r->status == 0) {
        int https = !strncmp(cf.url, "https://", 8);
        const char *e = r->error;
        if (https && (strstr(e, "wrong version number") || strstr(e, "packet length") ||
                      strstr(e, "unexpected eof") || strstr(e, "record layer") ||
                      strstr(e, "http request") || answers_plain_http()))
            fprintf(stderr, "roamctl: TLS handshake with %s failed: the server does not speak "
                            "TLS on that port (a plain HTTP listener? use http://, or set "
                            "admin.tls_cert on the hub) [%s]\n", cf.url, e);
        else if (https && strstr(e, "certificate"))
            fprintf(stderr, "roamctl: TLS: the server's certificate is not trusted (give its CA "
                            "with --ca FILE or ca_file) [%s]\n", e);
        else if (!https && strncmp(e, "cannot reach", 12) == 0)
            fprintf(stderr, "roamctl: connection failed: %s (if the listener uses TLS, use "
                            "https://)\n", e);
        else
            fprintf(stderr, "roamctl: connection failed: %s\n", e);
        return RC_CONN;
    }
    const char *hint = "";
    switch (r->status) {
    case 401: hint = " (check the key or token: --key, ROAMCTL_KEY, ~/.config/roamctl.json)"; break;
    case 403: hint = " (your key lacks the right or scope for this)"; break;
    case 404: hint = " (it does not exist, or is not yours)"; break;
    case 409: hint = " (conflicts with an existing record)"; break;
    default: break;
    }
    const char *text = r->status == 401 ? "unauthorized" : r->status == 403 ? "forbidden"
                       : r->status == 404 ? "not found" : r->status == 409 ? "conflict"
                       : r->status == 413 ? "request too large" : r->status == 422 ? "invalid"
                       : "refused";
    fprintf(stderr, "roamctl: %d %s: %s%s\n", r->status, text, server_message(r), hint);
    return RC_REFUSED;
}

/* ------------------------------------------------------------------ credentials */

/* The configuration file: $ROAMCTL_CONFIG, else $XDG_CONFIG_HOME/roamctl.json, else
 * ~/.config/roamctl.json. Every key is checked: an unknown key or a wrong type is an error
 * naming the file and the key (a typo must not silently fall back to a default). */
static int load_config(void)
{
    const char *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");
    char path[1024];
    const char *p = getenv("ROAMCTL_CONFIG");
    if (!p && xdg && xdg[0] == '/') {
        snprintf(path, sizeof path, "%s/roamctl.json", xdg);
        p = path;
    } else if (!p && home) {
        snprintf(path, sizeof path, "%s/.config/roamctl.json", home);
        p = path;
    }
    size_t len;
    char *text = p ? read_file(p, &len) : NULL;
    if (!text)
        return 0;
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithOpts(text, &end, 0);
    if (!cJSON_IsObject(o)) {
        size_t line = 1;
        for (const char *c = text; end && c < end && *c; c++)
            line += *c == '\n';
        fprintf(stderr, "roamctl: %s: %s (line %zu)\n", p,
                o ? "expected a JSON object" : "not valid JSON", line);
        free(text);
        cJSON_Delete(o);
        return -1;
    }
    free(text);
    static const char *const string_keys[] = {"url", "key", "key_file", "ca_file", "output", NULL};
    const cJSON *it;
    int rc = 0;
    cJSON_ArrayForEach(it, o)
    {
        size_t k = 0;
        while (string_keys[k] && strcmp(string_keys[k], it->string))
            k++;
        if (!string_keys[k]) {
            fprintf(stderr, "roamctl: %s: unknown key \"%s\" (known: url, key, key_file, ca_file, "
                            "output)\n", p, it->string);
            rc = -1;
        } else if (!cJSON_IsString(it)) {
            fprintf(stderr, "roamctl: %s: \"%s\" must be a string\n", p, it->string);
            rc = -1;
        }
    }
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(o, "output");
    if (!rc && out && strcmp(out->valuestring, "json") && strcmp(out->valuestring, "table")) {
        fprintf(stderr, "roamctl: %s: \"output\" must be \"json\" or \"table\"\n", p);
        rc = -1;
    }
    if (rc) {
        cJSON_Delete(o);
        return -1;
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "url");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "key");
    const cJSON *kf = cJSON_GetObjectItemCaseSensitive(o, "key_file");
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(o, "ca_file");
    if (u)
        cf.url = strdup(u->valuestring);
    if (k)
        cf.key = strdup(k->valuestring);
    else if (kf) {
        cf.key = read_file(kf->valuestring, NULL);
        if (!cf.key)
            fprintf(stderr, "roamctl: cannot read key_file %s\n", kf->valuestring);
    }
    if (ca)
        cf.ca_file = strdup(ca->valuestring);
    if (out)
        cf.json = !strcmp(out->valuestring, "json");
    cJSON_Delete(o);
    return 0;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

/* Gets a token (from --token/ROAMCTL_TOKEN, or by exchanging the key). */
static int authenticate(void)
{
    if (cf.token) {
        snprintf(auth_header, sizeof auth_header, "Bearer %s", cf.token);
        return 0;
    }
    if (!cf.key) {
        fprintf(stderr, "roamctl: no credentials: give --key ID:SECRET, ROAMCTL_KEY, "
                        "ROAMCTL_TOKEN or ~/.config/roamctl.json\n");
        return RC_USAGE;
    }
    trim(cf.key);
    char *colon = strchr(cf.key, ':');
    if (!colon || colon == cf.key) {
        fprintf(stderr, "roamctl: the key must be ID:SECRET\n");
        return RC_USAGE;
    }
    char id[300], sec[600], form[1200];
    *colon = '\0';
    url_escape(cf.key, id, sizeof id);
    url_escape(colon + 1, sec, sizeof sec);
    *colon = ':';
    snprintf(form, sizeof form, "grant_type=client_credentials&client_id=%s&client_secret=%s", id,
             sec);
    rc_resp_t r;
    rc_http(&cf, "POST", "/api/v1/oauth/token", "application/x-www-form-urlencoded", form,
            strlen(form), NULL, 0, &r);
    OPENSSL_cleanse(form, sizeof form);
    OPENSSL_cleanse(sec, sizeof sec);
    if (r.status != 200) {
        int code = report(&r);
        rc_resp_free(&r);
        return code;
    }
    cJSON *o = cJSON_Parse(r.body);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "access_token");
    int rc = 0;
    if (cJSON_IsString(t))
        snprintf(auth_header, sizeof auth_header, "Bearer %s", t->valuestring);
    else {
        fprintf(stderr, "roamctl: the token endpoint answered without access_token\n");
        rc = RC_REFUSED;
    }
    cJSON_Delete(o);
    OPENSSL_cleanse(r.body, r.len);
    rc_resp_free(&r);
    return rc;
}

/* ------------------------------------------------------------------ output */

static void cell_text(const cJSON *v, char *out, size_t cap)
{
    out[0] = '\0';
    if (cJSON_IsString(v))
        snprintf(out, cap, "%s", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(out, cap, "%s", cJSON_IsTrue(v) ? "yes" : "no");
    else if (cJSON_IsNumber(v))
        snprintf(out, cap, "%.15g", v->valuedouble);
    else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        /* arrays: comma list; objects of flags: the names set true */
        const cJSON *it;
        size_t n = 0;
        cJSON_ArrayForEach(it, v)
        {
            char sub[200];
            if (cJSON_IsObject(v)) {
                if (cJSON_IsTrue(it))
                    snprintf(sub, sizeof sub, "%s", it->string);
                else if (cJSON_IsFalse(it))
                    continue;
                else { /* named values: "p50=0.72" */
                    char val[160];
                    cell_text(it, val, sizeof val);
                    snprintf(sub, sizeof sub, "%s=%s", it->string, val);
                }
            } else {
                cell_text(it, sub, sizeof sub);
            }
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s",
                                  n ? (cJSON_IsObject(v) && strchr(sub, '=') ? " " : ",") : "", sub);
            if (n >= cap)
                break;
        }
        if (!n)
            snprintf(out, cap, "-");
    }
}

#define MAXCOL 16
static void print_table(const cJSON *items)
{
    const char *cols[MAXCOL];
    size_t ncol = 0, width[MAXCOL];
    const cJSON *row, *f;
    cJSON_ArrayForEach(row, items)
    {
        cJSON_ArrayForEach(f, row)
        {
            size_t i;
            for (i = 0; i < ncol && strcmp(cols[i], f->string); i++)
                ;
            if (i == ncol && ncol < MAXCOL)
                cols[ncol++] = f->string;
        }
    }
    if (ncol == 0) {
        printf("(none)\n");
        return;
    }
    char cell[256];
    for (size_t i = 0; i < ncol; i++)
        width[i] = strlen(cols[i]);
    cJSON_ArrayForEach(row, items)
    {
        for (size_t i = 0; i < ncol; i++) {
            cell_text(cJSON_GetObjectItemCaseSensitive(row, cols[i]), cell, sizeof cell);
            if (strlen(cell) > width[i])
                width[i] = strlen(cell);
        }
    }
    for (size_t i = 0; i < ncol; i++) {
        char up[64];
        size_t k;
        for (k = 0; cols[i][k] && k < sizeof up - 1; k++)
            up[k] = (char)(cols[i][k] >= 'a' && cols[i][k] <= 'z' ? cols[i][k] - 32 : cols[i][k]);
        up[k] = '\0';
        printf("%-*s%s", (int)width[i], up, i + 1 < ncol ? "  " : "\n");
    }
    cJSON_ArrayForEach(row, items)
    {
        for (size_t i = 0; i < ncol; i++) {
            cell_text(cJSON_GetObjectItemCaseSensitive(row, cols[i]), cell, sizeof cell);
            printf("%-*s%s", (int)width[i], cell[0] ? cell : "-", i + 1 < ncol ? "  " : "\n");
        }
    }
}

/* Prints a successful response: JSON as is with --json, else a table or key: value lines. */
static void print_ok(const rc_resp_t *r)
{
    if (r->len == 0) {
        if (!cf.json)
            printf("ok\n");
        return;
    }
    cJSON *o = strncmp(r->content_type, "application/json", 16) == 0 ? cJSON_Parse(r->body) : NULL;
    if (cf.json || !o) {
        fwrite(r->body, 1, r->len, stdout);
        if (r->len && r->body[r->len - 1] != '\n')
            putchar('\n');
        cJSON_Delete(o);
        return;
    }
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "items");
    if (cJSON_IsArray(items)) {
        print_table(items);
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(o, "next_page_token");
        if (cJSON_IsString(next) && next->valuestring[0])
            printf("(more: --page-token %s)\n", next->valuestring);
    } else {
        const cJSON *f;
        size_t w = 0;
        cJSON_ArrayForEach(f, o) if (strlen(f->string) > w) w = strlen(f->string);
        char cell[1024];
        cJSON_ArrayForEach(f, o)
        {
            if (cJSON_IsArray(f) && cJSON_GetArraySize(f) > 0 &&
                cJSON_IsObject(cJSON_GetArrayItem(f, 0))) {
                printf("%s:\n", f->string);
                print_table(f);
                continue;
            }
            cell_text(f, cell, sizeof cell);
            printf("%-*s  %s\n", (int)w, f->string, cell[0] ? cell : "-");
        }
    }
    cJSON_Delete(o);
}

static int call(const char *method, const char *path, const char *body, size_t len, int print)
{
    rc_resp_t r;
    rc_http(&cf, method, path, "application/json", body, len, auth_header, 0, &r);
    int code = r.status >= 200 && r.status < 300 ? RC_OK : report(&r);
    if (code == RC_OK && print)
        print_ok(&r);
    rc_resp_free(&r);
    return code;
}

/* ------------------------------------------------------------------ commands */

static int key_segs(const char *res, int n)
{
    if (!strcmp(res, "tenants") || !strcmp(res, "devaddr-blocks"))
        return n == 2;
    if (!strcmp(res, "join-routes"))
        return n == 2 || n == 4;
    if (!strcmp(res, "policies"))
        return n == 1 || n == 2;
    return n == 1;
}

static void key_path(char *out, size_t cap, const char *res, char **keys, int n)
{
    size_t o = (size_t)snprintf(out, cap, "/api/v1/%s", res);
    for (int i = 0; i < n && o < cap; i++) {
        char esc[512];
        url_escape(keys[i], esc, sizeof esc);
        o += (size_t)snprintf(out + o, cap - o, "/%s", esc);
    }
}

/* Body from -f FILE, a JSON argument, or stdin. */
static char *body_arg(int argc, char **argv, int *i, size_t *len)
{
    if (*i < argc && (!strcmp(argv[*i], "-f") || !strcmp(argv[*i], "--file"))) {
        if (*i + 1 >= argc)
            return NULL;
        char *b = read_file(argv[*i + 1], len);
        if (!b)
            fprintf(stderr, "roamctl: cannot read %s\n", argv[*i + 1]);
        *i += 2;
        return b;
    }
    if (*i < argc) {
        *len = strlen(argv[*i]);
        return strdup(argv[(*i)++]);
    }
    return read_file("-", len);
}

static int cmd_resource(const char *res, int argc, char **argv)
{
    if (argc < 1)
        return bad_arg(res, NULL);
    const char *verb = argv[0];
    char path[4096];
    if (!strcmp(verb, "list")) {
        char q[2048] = "";
        int all = 0;
        for (int i = 1; i < argc; i++) {
            if (!strcmp(argv[i], "--all"))
                all = 1;
            else if (i + 1 < argc && !strcmp(argv[i], "--net-id"))
                q_add(q, sizeof q, "net_id", argv[++i]);
            else if (i + 1 < argc && !strcmp(argv[i], "--page-size"))
                q_add(q, sizeof q, "page_size", argv[++i]);
            else if (i + 1 < argc && !strcmp(argv[i], "--page-token"))
                q_add(q, sizeof q, "page_token", argv[++i]);
            else
                return bad_arg(res, argv[i]);
        }
        if (!all) {
            snprintf(path, sizeof path, "/api/v1/%s%s", res, q);
            return call("GET", path, NULL, 0, 1);
        }
        /* --all: follow page tokens, print one merged listing */
        cJSON *merged = cJSON_CreateObject();
        cJSON *items = cJSON_AddArrayToObject(merged, "items");
        char tok[1100] = "";
        int code = RC_OK;
        for (;;) {
            char qq[3400];
            snprintf(qq, sizeof qq, "%s", q);
            if (tok[0])
                q_add(qq, sizeof qq, "page_token", tok);
            snprintf(path, sizeof path, "/api/v1/%s%s", res, qq);
            rc_resp_t r;
            rc_http(&cf, "GET", path, NULL, NULL, 0, auth_header, 0, &r);
            if (r.status != 200) {
                code = report(&r);
                rc_resp_free(&r);
                break;
            }
            cJSON *o = cJSON_Parse(r.body);
            rc_resp_free(&r);
            cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "items");
            while (cJSON_GetArraySize(it) > 0)
                cJSON_AddItemToArray(items, cJSON_DetachItemFromArray(it, 0));
            const cJSON *next = cJSON_GetObjectItemCaseSensitive(o, "next_page_token");
            snprintf(tok, sizeof tok, "%s", cJSON_IsString(next) ? next->valuestring : "");
            cJSON_Delete(o);
            if (!tok[0])
                break;
        }
        if (code == RC_OK) {
            char *text = cJSON_PrintUnformatted(merged);
            rc_resp_t fake = {.status = 200, .body = text, .len = strlen(text)};
            snprintf(fake.content_type, sizeof fake.content_type, "application/json");
            print_ok(&fake);
            cJSON_free(text);
        }
        cJSON_Delete(merged);
        return code;
    }
    if (!strcmp(verb, "get") || !strcmp(verb, "delete")) {
        if (!key_segs(res, argc - 1)) {
            fprintf(stderr, "roamctl: %s %s: wrong key (see roamctl --help)\n", res, verb);
            return RC_USAGE;
        }
        key_path(path, sizeof path, res, argv + 1, argc - 1);
        return call(!strcmp(verb, "get") ? "GET" : "DELETE", path, NULL, 0, 1);
    }
    if (!strcmp(verb, "create") || !strcmp(verb, "update")) {
        int i = 1, nkeys = 0;
        if (!strcmp(verb, "update")) {
            while (i < argc && argv[i][0] != '-' && argv[i][0] != '{')
                i++;
            nkeys = i - 1;
            if (!key_segs(res, nkeys)) {
                fprintf(stderr, "roamctl: %s update: wrong key\n", res);
                return RC_USAGE;
            }
        }
        size_t len = 0;
        char *body = body_arg(argc, argv, &i, &len);
        if (!body)
            return RC_USAGE;
        if (nkeys)
            key_path(path, sizeof path, res, argv + 1, nkeys);
        else
            snprintf(path, sizeof path, "/api/v1/%s", res);
        int code = call(nkeys ? "PUT" : "POST", path, body, len, 1);
        free(body);
        return code;
    }
    fprintf(stderr, "roamctl: %s: unknown verb %s (list, get, create, update, delete)\n", res,
            verb);
    return RC_USAGE;
}

static int set_flags(cJSON *obj, const char *list, const char *const *allowed)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            ok |= !strcmp(tok, allowed[i]);
        if (!ok) {
            fprintf(stderr, "roamctl: unknown class %s\n", tok);
            return -1;
        }
        cJSON_AddBoolToObject(obj, tok, 1);
    }
    return 0;
}

static int cmd_policy(int argc, char **argv)
{
    static const char *const up[] = {"join_request", "mac_data", "application_data",
                                     "signal_quality", "localization", NULL};
    static const char *const down[] = {"join_accept", "mac_data", "application_data", NULL};
    if (argc >= 1 && !strcmp(argv[0], "effective")) {
        char q[512] = "", path[1024];
        for (int i = 1; i + 1 < argc; i += 2) {
            if (!strcmp(argv[i], "--forwarder"))
                q_add(q, sizeof q, "forwarder_net_id", argv[i + 1]);
            else if (!strcmp(argv[i], "--home"))
                q_add(q, sizeof q, "home_net_id", argv[i + 1]);
            else
                return bad_arg("policy", argv[i]);
        }
        if (argc % 2 == 0)
            return bad_arg("policy", argv[argc - 1]);
        snprintf(path, sizeof path, "/api/v1/policies/effective%s", q);
        return call("GET", path, NULL, 0, 1);
    }
    if (argc < 3 || strcmp(argv[0], "set"))
        return bad_arg("policy", argc ? argv[0] : NULL);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "forwarder_net_id", argv[1]);
    if (strcmp(argv[2], "default"))
        cJSON_AddStringToObject(p, "home_net_id", argv[2]);
    cJSON *u = cJSON_AddObjectToObject(p, "uplink"), *d = cJSON_AddObjectToObject(p, "downlink");
    char q[512] = "";
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc) {
            cJSON_Delete(p);
            return bad_arg("policy", argv[i]);
        }
        const char *v = argv[++i];
        int bad = 0;
        if (!strcmp(argv[i - 1], "--allow"))
            bad = set_flags(u, v, up);
        else if (!strcmp(argv[i - 1], "--down"))
            bad = set_flags(d, v, down);
        else if (!strcmp(argv[i - 1], "--forwarder-tenant")) {
            cJSON_AddStringToObject(p, "forwarder_tenant_id", v);
            q_add(q, sizeof q, "forwarder_tenant_id", v);
        } else if (!strcmp(argv[i - 1], "--home-tenant")) {
            cJSON_AddStringToObject(p, "home_tenant_id", v);
            q_add(q, sizeof q, "home_tenant_id", v);
        } else
            bad = 1;
        if (bad) {
            cJSON_Delete(p);
            return bad == 1 ? bad_arg("policy", argv[i - 1]) : RC_USAGE;
        }
    }
    char *body = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    char path[1024], e1[64], e2[64];
    url_escape(argv[1], e1, sizeof e1);
    url_escape(argv[2], e2, sizeof e2);
    snprintf(path, sizeof path, "/api/v1/policies/%s/%s%s", e1, e2, q);
    int code = call("PUT", path, body, strlen(body), 1);
    cJSON_free(body);
    return code;
}

static int cmd_keys(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[0], "revoke")) {
        char path[512], e[300];
        url_escape(argv[1], e, sizeof e);
        snprintf(path, sizeof path, "/api/v1/keys/%s", e);
        return call("DELETE", path, NULL, 0, 1);
    }
    if (argc < 1 || strcmp(argv[0], "create"))
        return cmd_resource("keys", argc, argv);
    cJSON *b = cJSON_CreateObject();
    int have_rights = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--operator")) {
            cJSON_AddBoolToObject(b, "operator", 1);
            continue;
        }
        if (i + 1 >= argc) {
            cJSON_Delete(b);
            return bad_arg("keys", argv[i]);
        }
        const char *v = argv[++i];
        if (!strcmp(argv[i - 1], "--net-id"))
            cJSON_AddStringToObject(b, "net_id", v);
        else if (!strcmp(argv[i - 1], "--tenant"))
            cJSON_AddStringToObject(b, "tenant_id", v);
        else if (!strcmp(argv[i - 1], "--name"))
            cJSON_AddStringToObject(b, "name", v);
        else if (!strcmp(argv[i - 1], "--id"))
            cJSON_AddStringToObject(b, "id", v);
        else if (!strcmp(argv[i - 1], "--rights")) {
            cJSON *arr = cJSON_AddArrayToObject(b, "rights");
            char buf[512];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                char full[80];
                snprintf(full, sizeof full, "%s%s", strncmp(t, "RIGHT_", 6) ? "RIGHT_" : "", t);
                for (char *c = full; *c; c++)
                    *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
                cJSON_AddItemToArray(arr, cJSON_CreateString(full));
            }
            have_rights = 1;
        } else {
            cJSON_Delete(b);
            return bad_arg("keys", argv[i - 1]);
        }
    }
    if (!have_rights) {
        cJSON_Delete(b);
        fprintf(stderr, "roamctl: keys create needs --rights\n");
        return RC_USAGE;
    }
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    rc_resp_t r;
    rc_http(&cf, "POST", "/api/v1/keys", "application/json", body, strlen(body), auth_header, 0,
            &r);
    cJSON_free(body);
    int code = r.status == 201 ? RC_OK : report(&r);
    if (code == RC_OK) {
        if (cf.json) {
            print_ok(&r);
        } else {
            /* the secret and its banner on stderr: stdout stays the (secret-free) record */
            cJSON *o = cJSON_Parse(r.body);
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "api_key");
            fprintf(stderr, "API key (shown once, store it now):\n%s\n",
                    cJSON_IsString(k) ? k->valuestring : "?");
            cJSON *rec = cJSON_DetachItemFromObjectCaseSensitive(o, "key");
            char *text = rec ? cJSON_PrintUnformatted(rec) : NULL;
            if (text) {
                rc_resp_t fake = {.status = 201, .body = text, .len = strlen(text)};
                snprintf(fake.content_type, sizeof fake.content_type, "application/json");
                print_ok(&fake);
                cJSON_free(text);
            }
            cJSON_Delete(rec);
            cJSON_Delete(o);
        }
    }
    if (r.body)
        OPENSSL_cleanse(r.body, r.len);
    rc_resp_free(&r);
    return code;
}

/* Turns "--flag value" options into a query string by `map` (pairs of (--flag, query name),
 * NULL-terminated). Returns 0, or RC_USAGE after saying which option is unknown. */
static int query_from_options(const char *what, int argc, char **argv, const char *const *map,
                              char *q, size_t cap)
{
    for (int i = 0; i < argc; i++) {
        int found = 0;
        for (size_t k = 0; map[k]; k += 2) {
            if (!strcmp(argv[i], map[k]) && i + 1 < argc) {
                q_add(q, cap, map[k + 1], argv[++i]);
                found = 1;
                break;
            }
        }
        if (!found)
            return bad_arg(what, argv[i]);
    }
    return 0;
}

static int cmd_query(const char *what, int argc, char **argv, const char *const *map)
{
    char q[2048] = "", path[2400];
    if (query_from_options(what, argc, argv, map, q, sizeof q))
        return RC_USAGE;
    snprintf(path, sizeof path, "/api/v1/%s%s", what, q);
    return call("GET", path, NULL, 0, 1);
}

/* capture --follow: JSON lines as the hub relays; the start line is dropped, keep-alive (empty)
 * lines skipped, the summary goes to stderr. */
typedef struct follow_out {
    char line[8192];
    size_t n;
    unsigned long events;
} follow_out_t;

static void follow_line(follow_out_t *f)
{
    f->line[f->n] = '\0';
    if (f->n == 0 || !strncmp(f->line, "{\"start\"", 8)) {
        /* keep-alive or the stream's first line */
    } else if (!strncmp(f->line, "{\"summary\"", 10)) {
        fprintf(stderr, "%s\n", f->line);
    } else {
        fwrite(f->line, 1, f->n, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        f->events++;
    }
    f->n = 0;
}

static void follow_piece(const char *d, size_t len, void *arg)
{
    follow_out_t *f = arg;
    for (size_t i = 0; i < len; i++) {
        if (d[i] == '\n')
            follow_line(f);
        else if (f->n < sizeof f->line - 1)
            f->line[f->n++] = d[i]; /* an overlong line is cut, never overflows */
    }
}

static int capture_follow(const char *q)
{
    char path[512];
    snprintf(path, sizeof path, "/api/v1/capture?follow=true%s", q);
    follow_out_t *f = calloc(1, sizeof *f);
    if (!f)
        return RC_CONN;
    rc_resp_t r;
    rc_http_stream(&cf, path, auth_header, "application/x-ndjson", follow_piece, f, &r);
    int code = RC_OK;
    if (r.status != 200)
        code = report(&r);
    else if (f->n)
        follow_line(f);
    rc_resp_free(&r);
    free(f);
    return code;
}

/* stats: follows the answer's page tokens until the last page, so the output holds every row
 * of the range: JSON pages are merged into one {"items": [...]} (tables print once), CSV pages
 * are concatenated with one header line. --limit sets the page size (the server's default
 * otherwise); --max-pages stops early and says so on stderr (exit code 0, output marked
 * incomplete by a final next_page_token in JSON). */
static int cmd_stats(int argc, char **argv, const char *const *map)
{
    char q[2048] = "", path[2600];
    long max_pages = 0;
    char *rest[64];
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--max-pages") && i + 1 < argc)
            max_pages = strtol(argv[++i], NULL, 10);
        else if (n < 64)
            rest[n++] = argv[i];
    }
    if (query_from_options("stats", n, rest, map, q, sizeof q))
        return RC_USAGE;
    cJSON *all = NULL, *all_items = NULL;
    char token[256] = "";
    int code = RC_OK, csv = 0;
    long pages = 0;
    for (;;) {
        char qq[2400];
        snprintf(qq, sizeof qq, "%s", q);
        if (token[0])
            q_add(qq, sizeof qq, "page_token", token);
        snprintf(path, sizeof path, "/api/v1/stats%s", qq);
        rc_resp_t r;
        rc_http(&cf, "GET", path, "application/json", NULL, 0, auth_header, 0, &r);
        if (r.status < 200 || r.status >= 300) {
            code = report(&r);
            rc_resp_free(&r);
            break;
        }
        pages++;
        csv = strncmp(r.content_type, "text/csv", 8) == 0;
        if (csv) {
            const char *body = r.body;
            size_t len = r.len;
            if (pages > 1) { /* one header line for the whole output */
                const char *nl = memchr(body, '\n', len);
                len = nl ? len - (size_t)(nl + 1 - body) : 0;
                body = nl ? nl + 1 : body;
            }
            fwrite(body, 1, len, stdout);
        } else {
            cJSON *o = cJSON_Parse(r.body);
            cJSON *items = o ? cJSON_DetachItemFromObject(o, "items") : NULL;
            cJSON_Delete(o);
            if (!cJSON_IsArray(items)) {
                cJSON_Delete(items);
                fprintf(stderr, "roamctl: stats: the answer has no items\n");
                rc_resp_free(&r);
                code = RC_REFUSED;
                break;
            }
            if (!all) {
                all = cJSON_CreateObject();
                cJSON_AddItemToObject(all, "items", items);
                all_items = items;
            } else {
                while (items->child)
                    cJSON_AddItemToArray(all_items, cJSON_DetachItemViaPointer(items, items->child));
                cJSON_Delete(items);
            }
        }
        snprintf(token, sizeof token, "%s", r.next_page_token);
        rc_resp_free(&r);
        if (!token[0])
            break;
        if (max_pages > 0 && pages >= max_pages) {
            fprintf(stderr, "roamctl: stats: stopped after %ld pages; more rows follow "
                    "(next page token %s)\n", pages, token);
            break;
        }
    }
    if (code == RC_OK && all) {
        cJSON_AddStringToObject(all, "next_page_token", token);
        if (cf.json) {
            char *text = cJSON_PrintUnformatted(all);
            if (text)
                printf("%s\n", text);
            cJSON_free(text);
        } else {
            print_table(all_items);
            if (token[0])
                printf("(incomplete: more rows after page %ld)\n", pages);
        }
    }
    cJSON_Delete(all);
    return code;
}

static int cmd_capture(int argc, char **argv)
{
    const char *out = NULL;
    char q[256] = "?download=true", path[512], fq[256] = "";
    int follow = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--follow") || !strcmp(argv[i], "-f")) {
            follow = 1;
            continue;
        }
        if (i + 1 >= argc)
            return bad_arg("capture", argv[i]);
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output"))
            out = argv[++i];
        else if (!strcmp(argv[i], "--seconds")) {
            q_add(fq, sizeof fq, "seconds", argv[i + 1]);
            q_add(q, sizeof q, "seconds", argv[++i]);
        } else if (!strcmp(argv[i], "--max-events")) {
            q_add(fq, sizeof fq, "max_events", argv[i + 1]);
            q_add(q, sizeof q, "max_events", argv[++i]);
        } else {
            return bad_arg("capture", argv[i]);
        }
    }
    if (follow) {
        if (out) {
            fprintf(stderr, "roamctl: capture --follow writes to stdout (no -o)\n");
            return RC_USAGE;
        }
        if (fq[0] == '?')
            fq[0] = '&';
        return capture_follow(fq);
    }
    if (!out) {
        fprintf(stderr, "roamctl: capture needs -o FILE.jsonl.gz (- for stdout, decompressed)\n");
        return RC_USAGE;
    }
    snprintf(path, sizeof path, "/api/v1/capture%s", q);
    rc_resp_t r;
    rc_http(&cf, "GET", path, NULL, NULL, 0, auth_header, 1, &r);
    if (r.status != 200) {
        int code = report(&r);
        rc_resp_free(&r);
        return code;
    }
    int code = RC_OK;
    if (!strcmp(out, "-")) {
        char *plain;
        size_t pl;
        if (rc_gunzip(r.body, r.len, &plain, &pl) == 0) {
            fwrite(plain, 1, pl, stdout);
            free(plain);
        } else {
            fprintf(stderr, "roamctl: the capture is not valid gzip\n");
            code = RC_REFUSED;
        }
    } else {
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(r.body, 1, r.len, f) != r.len) {
            fprintf(stderr, "roamctl: cannot write %s\n", out);
            code = RC_USAGE;
        }
        if (f)
            fclose(f);
        if (code == RC_OK && !cf.json)
            fprintf(stderr, "capture written to %s (%zu bytes, gzip JSON lines)\n", out, r.len);
    }
    rc_resp_free(&r);
    return code;
}

static int cmd_import(int argc, char **argv)
{
    if (argc < 1 || argv[0][0] == '-' || (argc > 1 && strcmp(argv[1], "--replace")) || argc > 2)
        return bad_arg("import", argc < 1 ? NULL : argv[0][0] == '-' ? argv[0] : argv[argc - 1]);
    size_t len;
    char *doc = read_file(argv[0], &len);
    if (!doc) {
        fprintf(stderr, "roamctl: cannot read %s\n", argv[0]);
        return RC_USAGE;
    }
    int replace = argc > 1 && !strcmp(argv[1], "--replace");
    int code = call("POST", replace ? "/api/v1/import?replace=true" : "/api/v1/import", doc, len, 1);
    free(doc);
    return code;
}

/* Global options, accepted before or after the command: taken out of argv (the rest, the
 * command and its own arguments, is compacted into argv). -o/--output is global only with
 * json or table (capture's -o FILE stays the command's). Returns -1 on a bad value. */
static int take_globals(int *argc, char **argv, int *help, int *version)
{
    int n = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < *argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            cf.json = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            *help = 1;
        } else if (!strcmp(a, "--version")) {
            *version = 1;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && v &&
                   (!strcmp(v, "json") || !strcmp(v, "table"))) {
            cf.json = !strcmp(v, "json");
            i++;
        } else if (!strcmp(a, "--url") || !strcmp(a, "--key") || !strcmp(a, "--key-file") ||
                   !strcmp(a, "--token") || !strcmp(a, "--ca")) {
            if (!v) {
                fprintf(stderr, "roamctl: %s needs a value\n", a);
                return -1;
            }
            i++;
            if (!strcmp(a, "--url")) {
                cf.url = v;
            } else if (!strcmp(a, "--key")) {
                free(cf.key);
                cf.key = strdup(v);
            } else if (!strcmp(a, "--key-file")) {
                free(cf.key);
                cf.key = read_file(v, NULL);
                if (!cf.key) {
                    fprintf(stderr, "roamctl: cannot read %s\n", v);
                    return -1;
                }
            } else if (!strcmp(a, "--token")) {
                cf.token = v;
            } else {
                cf.ca_file = v;
            }
        } else {
            argv[n++] = argv[i];
        }
    }
    argv[n] = NULL;
    *argc = n;
    return 0;
}

int main(int argc, char **argv)
{
    int help = 0, version = 0;
    /* help and version first: they need no configuration and no credentials */
    for (int k = 1; k < argc; k++) {
        help |= !strcmp(argv[k], "-h") || !strcmp(argv[k], "--help");
        version |= !strcmp(argv[k], "--version");
    }
    if (version && rh_version_arg("--version", "roamctl"))
        return RC_OK;
    if (help) {
        const cmd_info_t *c = NULL;
        for (int k = 1; k < argc && !c; k++)
            c = argv[k][0] != '-' ? find_command(argv[k]) : NULL;
        if (c)
            command_help(c);
        else
            usage_to(stdout);
        return RC_OK;
    }
    if (argc > 1 && !strcmp(argv[1], "completion"))
        return cmd_completion(argc - 2, argv + 2);
    if (load_config() < 0)
        return RC_USAGE;
    const char *e;
    if ((e = getenv("ROAMCTL_URL")) && *e)
        cf.url = e;
    if ((e = getenv("ROAMCTL_KEY_FILE")) && *e) {
        free(cf.key);
        cf.key = read_file(e, NULL);
    }
    if ((e = getenv("ROAMCTL_KEY")) && *e) {
        free(cf.key);
        cf.key = strdup(e);
    }
    if ((e = getenv("ROAMCTL_TOKEN")) && *e)
        cf.token = e;
    if (take_globals(&argc, argv, &help, &version) < 0)
        return RC_USAGE;
    if (argc < 2) {
        usage();
        return RC_USAGE;
    }
    if (argv[1][0] == '-') {
        fprintf(stderr, "roamctl: unknown option %s (see roamctl --help)\n", argv[1]);
        return RC_USAGE;
    }
    char url_err[256];
    struct evhttp_uri *u = rc_url_parse(cf.url, url_err, sizeof url_err);
    if (!u) {
        fprintf(stderr, "roamctl: %s\n", url_err);
        return RC_USAGE;
    }
    evhttp_uri_free(u);
    const char *cmd = argv[1];
    int n = argc - 2;
    char **av = argv + 2;
    if (!find_command(cmd)) {
        fprintf(stderr, "roamctl: unknown command %s (see roamctl --help)\n", cmd);
        return RC_USAGE;
    }
    if (!strcmp(cmd, "completion"))
        return cmd_completion(n, av);
    /* options the command does not know are named before any credentials are needed */
    const cmd_info_t *ci = find_command(cmd);
    for (int k = 0; k < n; k++) {
        if (av[k][0] != '-' || !strcmp(av[k], "-"))
            continue;
        size_t w = 0;
        while (ci->words[w] && strcmp(ci->words[w], av[k]))
            w++;
        if (!ci->words[w])
            return bad_arg(cmd, av[k]);
    }
    int rc = authenticate();
    if (cf.key) {
        OPENSSL_cleanse(cf.key, strlen(cf.key));
        free(cf.key);
        cf.key = NULL;
    }
    if (rc)
        return rc;
    static const char *const stats_map[] = {
        "--from", "from", "--to", "to", "--by", "by", "--forwarder", "forwarder", "--home",
        "home", "--class", "class", "--outcome", "outcome", "--protocol", "protocol",
        "--forwarder-protocol", "forwarder_protocol", "--home-protocol", "home_protocol",
        "--format", "format", "--limit", "limit", NULL};
    static const char *const routes_map[] = {"--devaddr", "devaddr", "--join-eui", "join_eui",
                                             "--dev-eui", "dev_eui", NULL};
    static const char *const audit_map[] = {"--since",     "since",      "--page-size",
                                            "page_size",   "--page-token", "page_token",
                                            "--limit",     "page_size",  NULL};
    static const char *const none_map[] = {NULL};
    static const char *const gateways_map[] = {"--net-id", "net_id", NULL};
    static const char *const health_map[] = {"--minutes", "minutes", NULL};
    if (!strcmp(cmd, "token")) {
        if (n)
            return bad_arg("token", av[0]);
        printf("%s\n", auth_header + 7);
        return RC_OK;
    }
    if (!strcmp(cmd, "whoami"))
        return cmd_query("whoami", n, av, none_map);
    if (!strcmp(cmd, "catalog"))
        return cmd_query("catalog", n, av, none_map);
    if (!strcmp(cmd, "policy"))
        return cmd_policy(n, av);
    if (!strcmp(cmd, "keys"))
        return cmd_keys(n, av);
    if (!strcmp(cmd, "routes"))
        return cmd_query("routes", n, av, routes_map);
    if (!strcmp(cmd, "audit"))
        return cmd_query("audit", n, av, audit_map);
    if (!strcmp(cmd, "stats"))
        return cmd_stats(n, av, stats_map);
    if (!strcmp(cmd, "capture"))
        return cmd_capture(n, av);
    if (!strcmp(cmd, "gateways"))
        return cmd_query("gateways", n, av, gateways_map);
    if (!strcmp(cmd, "endpoint-health"))
        return cmd_query("endpoint-health", n, av, health_map);
    if (!strcmp(cmd, "import"))
        return cmd_import(n, av);
    return cmd_resource(cmd, n, av);
}
