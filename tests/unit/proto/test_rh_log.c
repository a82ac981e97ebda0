/* Unit tests for proto/common/rh_log: logfmt escaping of every value (log injection), JSON lines,
 * journald priority prefixes, level names, per-call-site rate limits with suppressed counts. */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "rh_err.h"
#include "rh_log.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int rd = -1, wr = -1;
static char out[1 << 20];

static int setup(void **state)
{
    (void)state;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    rd = fds[0];
    wr = fds[1];
    fcntl(rd, F_SETFL, O_NONBLOCK);
    fcntl(wr, F_SETPIPE_SZ, 1 << 20);
    rh_log_set_fd(wr);
    rh_log_set_journal(0);
    rh_log_set_format(RH_LOG_LOGFMT);
    rh_log_set_level_name("debug");
    rh_log_set_rate(20, 1000);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    close(rd);
    close(wr);
    rh_log_set_fd(2);
    return 0;
}

/* Everything written since the last call. */
static const char *drain(void)
{
    size_t n = 0;
    ssize_t r;
    while (n < sizeof out - 1 && (r = read(rd, out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    return out;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A strict logfmt parser (the go-logfmt grammar): key=value pairs separated by one space; a key
 * is [a-z0-9_]+; a value is bare (no space, '=', '"', '\' or control character) or quoted with
 * \" \\ \n \r \t \uXXXX escapes. Fills keys/values (decoded, values as UTF-8). Returns the number
 * of pairs, or -1 when the line is not valid logfmt or repeats a key. */
#define MAXF 24
typedef struct {
    char key[MAXF][32];
    char val[MAXF][4200];
} fields_t;

static int parse_logfmt(const char *line, fields_t *f)
{
    const char *p = line;
    int n = 0;
    while (*p && *p != '\n') {
        if (n == MAXF)
            return -1;
        size_t k = 0;
        while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_') {
            if (k + 1 >= sizeof f->key[0])
                return -1;
            f->key[n][k++] = *p++;
        }
        f->key[n][k] = 0;
        if (k == 0 || *p++ != '=')
            return -1;
        for (int i = 0; i < n; i++) {
            if (strcmp(f->key[i], f->key[n]) == 0)
                return -1;
        }
        size_t v = 0;
        if (*p == '"') {
            p++;
            while (*p != '"') {
                if (*p == 0 || *p == '\n' || (unsigned char)*p < 0x20)
                    return -1;
                if (v + 8 >= sizeof f->val[0])
                    return -1;
                if (*p == '\\') {
                    p++;
                    switch (*p) {
                    case '"': f->val[n][v++] = '"'; break;
                    case '\\': f->val[n][v++] = '\\'; break;
                    case 'n': f->val[n][v++] = '\n'; break;
                    case 'r': f->val[n][v++] = '\r'; break;
                    case 't': f->val[n][v++] = '\t'; break;
                    case 'u': {
                        unsigned cp;
                        if (sscanf(p + 1, "%4x", &cp) != 1 || cp > 0x7f)
                            return -1;
                        f->val[n][v++] = (char)cp;
                        p += 4;
                        break;
                    }
                    default: return -1;
                    }
                    p++;
                } else {
                    f->val[n][v++] = *p++;
                }
            }
            p++;
        } else {
            while (*p && *p != ' ' && *p != '\n') {
                unsigned char c = (unsigned char)*p;
                if (c < 0x20 || c == '=' || c == '"' || c == '\\' || v + 1 >= sizeof f->val[0])
                    return -1;
                f->val[n][v++] = *p++;
            }
        }
        f->val[n][v] = 0;
        n++;
        if (*p == ' ')
            p++;
        else if (*p && *p != '\n')
            return -1;
    }
    return n;
}

static const char *field(const fields_t *f, int n, const char *key)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(f->key[i], key) == 0)
            return f->val[i];
    }
    return NULL;
}

static fields_t F;

static void test_hostile_values_cannot_forge_keys(void **state)
{
    (void)state;
    drain();
    const char *client = "x level=err";
    const char *remote = "a\"b\\c\nd\te\x01 sub=forged";
    RH_LOG(RH_LOG_INFO, "admin", "token refused client=%s remote=%s", client, remote);
    const char *line = drain();
    assert_int_equal(count_lines(line), 1);
    int n = parse_logfmt(line, &F);
    assert_int_equal(n, 6);
    assert_string_equal(F.key[0], "ts");
    assert_string_equal(field(&F, n, "level"), "info");
    assert_string_equal(field(&F, n, "sub"), "admin");
    assert_string_equal(field(&F, n, "msg"), "token refused");
    assert_string_equal(field(&F, n, "client"), client);
    assert_string_equal(field(&F, n, "remote"), remote);

    /* Values quoted in the format stay quoted; a value holding the closing quote cannot end it. */
    RH_LOG(RH_LOG_WARN, "relay", "refused reason=\"%s\" peer=%s txid=%u", "bad\" peer=evil", "netA",
           7u);
    line = drain();
    n = parse_logfmt(line, &F);
    assert_int_equal(n, 7);
    assert_string_equal(field(&F, n, "reason"), "bad\" peer=evil");
    assert_string_equal(field(&F, n, "peer"), "netA");
    assert_string_equal(field(&F, n, "txid"), "7");
    assert_non_null(strstr(line, " txid=7\n"));

    /* Arguments in the message are escaped into msg; empty values are "" */
    RH_LOG(RH_LOG_INFO, "admin", "%s %s key=\"%s\" by=%s", "created", "network x=1", "", "");
    line = drain();
    n = parse_logfmt(line, &F);
    assert_int_equal(n, 6);
    assert_string_equal(field(&F, n, "msg"), "created network x=1");
    assert_string_equal(field(&F, n, "key"), "");
    assert_string_equal(field(&F, n, "by"), "");

    /* Every conversion kind takes exactly its argument */
    RH_LOG(RH_LOG_INFO, "t", "kinds a=%06X b=%016llx c=%zu d=%.3s e=%.*s f=%d g=%c h=%%", 0x505u,
           0x70b3d57ed000aaaaull, (size_t)42, "abcdef", 2, "xyz", -3, 'q');
    line = drain();
    n = parse_logfmt(line, &F);
    assert_int_equal(n, 12);
    assert_string_equal(field(&F, n, "a"), "000505");
    assert_string_equal(field(&F, n, "b"), "70b3d57ed000aaaa");
    assert_string_equal(field(&F, n, "c"), "42");
    assert_string_equal(field(&F, n, "d"), "abc");
    assert_string_equal(field(&F, n, "e"), "xy");
    assert_string_equal(field(&F, n, "f"), "-3");
    assert_string_equal(field(&F, n, "g"), "q");
    assert_string_equal(field(&F, n, "h"), "%");
}

static void test_invalid_utf8_and_long_values(void **state)
{
    (void)state;
    drain();
    RH_LOG(RH_LOG_INFO, "t", "bytes v=%s w=%s", "a\xff\xc3(b", "caf\xc3\xa9");
    const char *line = drain();
    int n = parse_logfmt(line, &F);
    assert_int_equal(n, 6);
    assert_string_equal(field(&F, n, "v"), "a\xef\xbf\xbd\xef\xbf\xbd(b");
    assert_string_equal(field(&F, n, "w"), "caf\xc3\xa9");

    static char big[20000];
    memset(big, '"', sizeof big - 1);
    RH_LOG(RH_LOG_INFO, "t", "big v=%s after=%s", big, "x");
    line = drain();
    assert_int_equal(count_lines(line), 1);
    assert_true(strlen(line) <= 4096);
    n = parse_logfmt(line, &F);
    assert_true(n >= 5);
    assert_string_equal(field(&F, n, "truncated"), "true");
}

static void test_json_lines(void **state)
{
    (void)state;
    drain();
    rh_log_set_format(RH_LOG_JSON);
    RH_LOG(RH_LOG_WARN, "relay", "refused reason=\"%s\" peer=%s txid=%u netid=%06X n=%d z=%05u",
           "a\"b\n\x02", "x level=err", 17u, 0x505u, -2, 42u);
    RH_LOG(RH_LOG_INFO, "t", "no fields at all");
    rh_log_set_format(RH_LOG_LOGFMT);
    const char *text = drain();
    assert_int_equal(count_lines(text), 2);
    const char *nl = strchr(text, '\n');
    char first[4096];
    memcpy(first, text, (size_t)(nl - text));
    first[nl - text] = 0;
    cJSON *o = cJSON_Parse(first);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "level")->valuestring, "warn");
    assert_string_equal(cJSON_GetObjectItem(o, "sub")->valuestring, "relay");
    assert_string_equal(cJSON_GetObjectItem(o, "msg")->valuestring, "refused");
    assert_string_equal(cJSON_GetObjectItem(o, "reason")->valuestring, "a\"b\n\x02");
    assert_string_equal(cJSON_GetObjectItem(o, "peer")->valuestring, "x level=err");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "txid")));
    assert_int_equal(cJSON_GetObjectItem(o, "txid")->valueint, 17);
    assert_string_equal(cJSON_GetObjectItem(o, "netid")->valuestring, "000505"); /* hex: string */
    assert_int_equal(cJSON_GetObjectItem(o, "n")->valueint, -2);
    assert_string_equal(cJSON_GetObjectItem(o, "z")->valuestring, "00042"); /* not a JSON number */
    cJSON_Delete(o);
    o = cJSON_Parse(nl + 1);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "msg")->valuestring, "no fields at all");
    cJSON_Delete(o);
}

static void test_levels_and_journal(void **state)
{
    (void)state;
    assert_int_equal(rh_log_level_from_name("warning"), RH_LOG_WARN);
    assert_int_equal(rh_log_level_from_name("WARN"), RH_LOG_WARN);
    assert_int_equal(rh_log_level_from_name("error"), RH_LOG_ERR);
    assert_int_equal(rh_log_level_from_name("err"), RH_LOG_ERR);
    assert_int_equal(rh_log_level_from_name("info"), RH_LOG_INFO);
    assert_int_equal(rh_log_level_from_name("debug"), RH_LOG_DEBUG);
    assert_int_equal(rh_log_level_from_name("trace"), RH_EINVAL);
    assert_int_equal(rh_log_level_from_name(NULL), RH_EINVAL);
    assert_int_equal(rh_log_format_from_name("json"), RH_LOG_JSON);
    assert_int_equal(rh_log_format_from_name("logfmt"), RH_LOG_LOGFMT);
    assert_int_equal(rh_log_format_from_name("xml"), RH_EINVAL);

    assert_int_equal(rh_log_set_level_name("warning"), RH_OK);
    drain();
    RH_LOG(RH_LOG_INFO, "t", "filtered");
    assert_string_equal(drain(), "");
    assert_int_equal(rh_log_set_level_name("nope"), RH_EINVAL);
    assert_int_equal(rh_log_level, RH_LOG_WARN); /* unchanged */
    rh_log_set_level_name("debug");

    /* $JOURNAL_STREAM naming the log descriptor turns on "<N>" syslog priorities. */
    struct stat st;
    assert_int_equal(fstat(wr, &st), 0);
    char js[64];
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    rh_log_set_fd(wr); /* re-checks */
    RH_LOG(RH_LOG_ERR, "t", "e");
    RH_LOG(RH_LOG_WARN, "t", "w");
    RH_LOG(RH_LOG_INFO, "t", "i");
    RH_LOG(RH_LOG_DEBUG, "t", "d");
    const char *text = drain();
    assert_int_equal(count_lines(text), 4);
    assert_true(strncmp(text, "<3>ts=", 6) == 0);
    assert_non_null(strstr(text, "\n<4>ts="));
    assert_non_null(strstr(text, "\n<6>ts="));
    assert_non_null(strstr(text, "\n<7>ts="));
    /* another stream: no prefixes */
    setenv("JOURNAL_STREAM", "1:2", 1);
    rh_log_set_fd(wr);
    RH_LOG(RH_LOG_ERR, "t", "e");
    assert_true(strncmp(drain(), "ts=", 3) == 0);
    unsetenv("JOURNAL_STREAM");
    rh_log_set_fd(wr);
}

static void one_site(int i) { RH_LOG(RH_LOG_WARN, "http", "bad request n=%d peer=%s", i, "1.2.3.4"); }

static void test_rate_limit_per_call_site(void **state)
{
    (void)state;
    rh_log_set_rate(5, 300);
    drain();
    for (int i = 0; i < 1000; i++)
        one_site(i);
    RH_LOG(RH_LOG_WARN, "t", "another site"); /* its own budget */
    const char *text = drain();
    assert_int_equal(count_lines(text), 6);
    assert_non_null(strstr(text, "n=4 "));
    assert_null(strstr(text, "n=5 "));
    assert_non_null(strstr(text, "another site"));

    rh_log_flush_suppressed(0); /* window not over yet: nothing */
    assert_string_equal(drain(), "");
    usleep(350 * 1000);
    rh_log_flush_suppressed(0); /* window over: one report */
    text = drain();
    assert_int_equal(count_lines(text), 1);
    int n = parse_logfmt(text, &F);
    assert_true(n > 0);
    assert_string_equal(field(&F, n, "msg"), "log lines suppressed");
    assert_string_equal(field(&F, n, "suppressed"), "995");
    assert_string_equal(field(&F, n, "level"), "warn");
    assert_string_equal(field(&F, n, "sub"), "http");
    assert_string_equal(field(&F, n, "of"), "bad request");
    assert_non_null(strstr(field(&F, n, "site"), "test_rh_log.c:"));
    rh_log_flush_suppressed(1); /* reported once only */
    assert_string_equal(drain(), "");

    /* the next window writes again; a window's suppressions are reported by the site itself too */
    for (int i = 0; i < 7; i++)
        one_site(i);
    assert_int_equal(count_lines(drain()), 5);
    usleep(350 * 1000);
    one_site(99);
    text = drain();
    assert_int_equal(count_lines(text), 2);
    assert_non_null(strstr(text, "suppressed=2 "));
    assert_non_null(strstr(text, "n=99 "));
    rh_log_set_rate(20, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_values_cannot_forge_keys),
        cmocka_unit_test(test_invalid_utf8_and_long_values),
        cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_levels_and_journal),
        cmocka_unit_test(test_rate_limit_per_call_site),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
