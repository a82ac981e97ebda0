/*
 * bench-bi — TS002 JSON codec benchmark (docs/PERFORMANCE.md, "TS002 JSON codec").
 *
 * Measures, on a realistic ChirpStack-style PRStartReq with one and with three GWInfo entries:
 *   cJSON parse+print      cJSON_ParseWithLength + cJSON_PrintUnformatted of the same bytes (the
 *                          reference: what any cJSON-based relay pays at least)
 *   cJSON parse alone      cJSON_ParseWithLength + cJSON_Delete (reference for decode)
 *   decode                 bi_msg_decode (scan + parse + typed validation)
 *   decode+canonical       the relay's fast path: decode, bi_msg_is_canonical_for, forward bytes
 *   decode+encode (same)   decode + validate + re-encode for the sender's dialect
 *   decode+encode (other)  ... for a dialect that needs rewriting (upper-case hex, 0x-free)
 *   decode+strip+encode    ... after removing RSSI/SNR/Lat/Lon/FineRecvTime (policy strip)
 * Each row: median over RUNS runs of ITER iterations, µs/op, and heap allocations/op (malloc,
 * calloc and realloc calls) of one extra pass, counted without taking the allocator's names:
 * libcjson's through cJSON_InitHooks (installed for the counting pass only, so the timed runs
 * use cJSON's defaults), the codec's and this program's through the linker's --wrap=malloc,
 * --wrap=calloc, --wrap=realloc (tools/CMakeLists.txt passes them, with BENCH_WRAP_ALLOC, except
 * in sanitizer builds; allocations then read "n/a").
 * Usage: bench-bi [ITER] [RUNS]   (defaults 100000 and 5)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bi_msg.h"
#include "rh_version.h"
#include "rh_time.h"

static unsigned long n_alloc;
static int counting;

#if BENCH_WRAP_ALLOC
/* --wrap=X makes this program's and the static libraries' calls to X land in __wrap_X;
 * __real_X is the C library's X. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n)
{
    n_alloc += counting;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t a, size_t b)
{
    n_alloc += counting;
    return __real_calloc(a, b);
}
void *__wrap_realloc(void *p, size_t n)
{
    n_alloc += counting;
    return __real_realloc(p, n);
}

/* libcjson is a shared library, out of --wrap's reach: its allocations come through its hooks.
 * (With hooks other than malloc/free, cJSON grows a print buffer by allocate + copy + free
 * instead of realloc: one allocation either way.) */
static void *count_cjson_malloc(size_t n)
{
    n_alloc += counting;
    return __real_malloc(n);
}
static cJSON_Hooks counting_hooks = {count_cjson_malloc, free};
#define HAVE_COUNT 1
#else
#define HAVE_COUNT 0
#endif

/* ---- messages ---- */
#define GWI(id, rssi, snr, tok)                                                                  \
    "{\"ID\":\"" id "\",\"FineRecvTime\":123456789,\"RFRegion\":\"EU868\",\"RSSI\":" rssi         \
    ",\"SNR\":" snr ",\"Lat\":52.3676,\"Lon\":4.9041,\"ULToken\":\"" tok "\",\"DLAllowed\":true}"
#define TOK1 "0a0801020304050607081002180122080a00120012001a0020d00f2a0b088ed0a2ac0610c0843d3a0208023a"
#define TOK2 "0a08aabbccdd0506070810021801220a080a00120012001a0020c80f2a0b088ed0a2ac0610c0843d3a0208033a"
#define TOK3 "0a0811223344050607081002180122080a00120012001a0020e00f2a0b088ed0a2ac0610c0843d3a0208043a"
#define HEAD                                                                                      \
    "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000202\",\"ReceiverID\":\"000505\","            \
    "\"TransactionID\":3845224576,\"MessageType\":\"PRStartReq\",\"PHYPayload\":"                \
    "\"400000000a8001000163d1a0b8e4b60d\",\"ULMetaData\":{\"DataRate\":5,\"ULFreq\":868.1,"     \
    "\"RecvTime\":\"2024-01-01T12:00:00.123Z\",\"RFRegion\":\"EU868\",\"GWCnt\":"

static const char msg1[] = HEAD "1,\"GWInfo\":[" GWI("05060708", "-112", "5.5", TOK1) "]}}";
static const char msg3[] = HEAD "3,\"GWInfo\":[" GWI("05060708", "-112", "5.5", TOK1) ","
    GWI("aabbccdd", "-98", "9.25", TOK2) "," GWI("11223344", "-120", "-7.5", TOK3) "]}}";

enum op { OP_CJSON, OP_CJSON_PARSE, OP_DECODE, OP_CANON, OP_SAME, OP_OTHER, OP_STRIP, OP_COUNT };
static const char *const op_names[OP_COUNT] = {
    "cJSON parse+print (reference)", "cJSON parse alone (reference)", "decode+validate", "decode+validate+canonical check",
    "decode+validate+re-encode (sender's dialect)", "decode+validate+re-encode (other dialect)",
    "decode+validate+strip+re-encode",
};

static size_t sink;

static void run_once(enum op op, const char *body, size_t len)
{
    bi_dialect_t cs = BI_DIALECT_CHIRPSTACK, he = BI_DIALECT_HELIUM;
    if (op == OP_CJSON) {
        cJSON *j = cJSON_ParseWithLength(body, len);
        char *s = cJSON_PrintUnformatted(j);
        sink += strlen(s);
        cJSON_free(s);
        cJSON_Delete(j);
        return;
    }
    if (op == OP_CJSON_PARSE) {
        cJSON *j = cJSON_ParseWithLength(body, len);
        sink += j != NULL;
        cJSON_Delete(j);
        return;
    }
    bi_msg_t *m;
    bi_error_t err;
    if (bi_msg_decode(body, len, &m, &err) != RH_OK) {
        fprintf(stderr, "decode failed: %s\n", err.description);
        exit(1);
    }
    char *out = NULL;
    size_t olen = 0;
    switch (op) {
    case OP_DECODE: sink += bi_msg_fields(m)->ul.gw_count; break;
    case OP_CANON: sink += bi_msg_is_canonical_for(m, &cs) ? len : 0; break;
    case OP_SAME: bi_msg_encode(m, &cs, &out, &olen); break;
    case OP_OTHER: bi_msg_encode(m, &he, &out, &olen); break;
    case OP_STRIP:
        bi_msg_strip_gwinfo(m, BI_STRIP_SIGNAL | BI_STRIP_LOCATION);
        bi_msg_encode(m, &cs, &out, &olen);
        break;
    default: break;
    }
    sink += olen;
    bi_buf_free(out);
    bi_msg_free(m);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc == 2 && rh_version_arg(argv[1], "bench-bi"))
        return 0;
    long iter = argc > 1 ? atol(argv[1]) : 100000;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (iter < 1 || runs < 1 || runs > 99)
        return 2;
    const char *bodies[2] = {msg1, msg3};
    size_t lens[2] = {sizeof msg1 - 1, sizeof msg3 - 1};
    printf("# bench-bi: %ld iterations x %d runs, median\n", iter, runs);
    printf("| message | operation | µs/op | allocs/op |\n|---|---|---:|---:|\n");
    for (int b = 0; b < 2; b++) {
        for (int op = 0; op < OP_COUNT; op++) {
            double us[99];
            for (int r = 0; r < runs; r++) {
                uint64_t t0 = rh_mono_ns();
                for (long i = 0; i < iter; i++)
                    run_once((enum op)op, bodies[b], lens[b]);
                us[r] = (double)(rh_mono_ns() - t0) / 1e3 / (double)iter;
            }
            qsort(us, (size_t)runs, sizeof us[0], cmp_d);
            n_alloc = 0;
#if HAVE_COUNT
            cJSON_InitHooks(&counting_hooks);
#endif
            counting = 1;
            run_once((enum op)op, bodies[b], lens[b]);
            counting = 0;
#if HAVE_COUNT
            cJSON_InitHooks(NULL); /* back to cJSON's defaults for the timed runs */
#endif
            char allocs[24] = "n/a";
            if (HAVE_COUNT)
                snprintf(allocs, sizeof allocs, "%lu", n_alloc);
            printf("| PRStartReq, %d GWInfo (%zu B) | %s | %.2f | %s |\n", b ? 3 : 1, lens[b],
                   op_names[op], us[runs / 2], allocs);
        }
    }
    return sink == 42 ? 1 : 0;
}
