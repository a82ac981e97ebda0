/* admin_params.c — query parameters and time stamps shared by the admin API's handlers (see
 * admin_internal.h): bounded integers, NetIDs, RFC 3339 times with milliseconds. */
#include "admin_internal.h"

#include "lw_netid.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int admin_query_uint(admin_req_t *r, const char *name, unsigned lo, unsigned hi, unsigned *v)
{
    char b[32];
    int q = admin_query(r, name, b, sizeof b);
    if (q == 0)
        return 0;
    char *end = b;
    long x = q > 0 ? strtol(b, &end, 10) : -1;
    if (q < 0 || *end || end == b || x < (long)lo || x > (long)hi) {
        admin_reply_error(r, 400, "%s: expected an integer in %u..%u", name, lo, hi);
        return -1;
    }
    *v = (unsigned)x;
    return 0;
}

int admin_query_netid(admin_req_t *r, const char *name, uint32_t *out)
{
    char b[32];
    *out = RP_ANY;
    int q = admin_query(r, name, b, sizeof b);
    if (q == 0)
        return 0;
    rh_diag_t d = {{0}};
    if (q < 0 || lw_netid_parse(b, out, &d) != RH_OK) {
        admin_reply_error(r, 400, "%s: %s", name, d.text[0] ? d.text : "malformed");
        return -1;
    }
    return 0;
}

void admin_time_text(int64_t ms, char out[ADMIN_TIME_TEXT])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, ADMIN_TIME_TEXT, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, ADMIN_TIME_TEXT - n, ".%03dZ", (int)(ms % 1000));
}
