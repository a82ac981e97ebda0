/* admin_cluster_metrics.c — GET /metrics/cluster on a cluster node: every node's /metrics as one
 * Prometheus text, each sample labelled node="N", plus roamhub_cluster_node_up{node} (1: its
 * samples are in; 0: missing or not answering within CLUSTER_METRICS_WAIT_MS) — gathered over
 * NATS by cluster_view_metrics (cluster_view.h). Same access as /metrics (the operator
 * listener). The gathering waits, so it runs on a helper thread (offload.h), never on the
 * listener's loop; at most CLUSTER_METRICS_QUEUE requests wait, beyond that 503. A node without a
 * `cluster` section answers 404. Per node, /metrics is unchanged.
 */
#include "admin_internal.h"

#include "cluster_view.h"
#include "hub.h"
#include "metrics.h"
#include "offload.h"
#include "rh_log.h"

#include <stdlib.h>
#include <string.h>

#define CLUSTER_METRICS_WAIT_MS 1000
#define CLUSTER_METRICS_QUEUE 4

typedef struct cm_job {
    offload_job_t job; /* first */
    admin_api_t *a;
    hs_req_t *req;
    char *text;
    rh_diag_t d;
    int rc;
} cm_job_t;

static void cm_run(offload_job_t *oj)
{
    cm_job_t *j = (cm_job_t *)oj;
    j->rc = cluster_view_metrics(j->a->hub->cview, CLUSTER_METRICS_WAIT_MS, &j->text, &j->d);
}

static void cm_done(offload_job_t *oj)
{
    cm_job_t *j = (cm_job_t *)oj;
    j->a->cluster_metrics_queued--;
    if (j->rc || !j->text)
        hs_reply(j->req, 503, "text/plain", "out of memory\n", 14);
    else
        hs_reply(j->req, 200, METRICS_CONTENT_TYPE, j->text, strlen(j->text));
    free(j->text);
    free(j);
}

static void cm_cancel(offload_job_t *oj)
{
    cm_job_t *j = (cm_job_t *)oj;
    hs_reply(j->req, 503, "text/plain", "shutting down\n", 14);
    free(j);
}

void admin_cluster_metrics_serve(admin_api_t *a, hs_req_t *req)
{
    if (!a->hub->cview) {
        static const char msg[] = "not a cluster node (no cluster section): use /metrics\n";
        hs_reply(req, 404, "text/plain", msg, sizeof msg - 1);
        return;
    }
    if (!a->cluster_metrics && offload_new(a->hub->main_base, &a->cluster_metrics) != RH_OK) {
        hs_reply(req, 503, "text/plain", "cannot start the helper thread\n", 31);
        return;
    }
    if (a->cluster_metrics_queued >= CLUSTER_METRICS_QUEUE) {
        static const char msg[] = "too many cluster metrics requests in progress, retry later\n";
        hs_reply_ex(req, 503, "text/plain", "Retry-After: 1\r\n", msg, sizeof msg - 1);
        return;
    }
    cm_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        hs_reply(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    j->a = a;
    j->req = req;
    j->job.run = cm_run;
    j->job.done = cm_done;
    a->cluster_metrics_queued++;
    offload_submit(a->cluster_metrics, &j->job);
}

void admin_cluster_metrics_fini(admin_api_t *a)
{
    offload_free(a->cluster_metrics, cm_cancel);
    a->cluster_metrics = NULL;
}
