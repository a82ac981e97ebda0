/* tls_server.c — server SSL_CTX construction and hot swap (see tls_server.h). */
#include "tls_server.h"

#include "rh_log.h"

#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>

struct tls_holder {
    pthread_mutex_t mu;
    SSL_CTX *ctx;
};

void tls_log_errors(const char *subsys, const char *what)
{
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        RH_LOG(RH_LOG_WARN, subsys, "openssl error what=\"%s\" err=\"%s\"", what, buf);
    }
}

static int fail_ssl(rh_diag_t *d, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return rh_diag_fail(d, RH_EINVAL, "%s %s: %s", what, file ? file : "", buf);
}

SSL_CTX *tls_server_ctx_new(const rh_tls_config_t *cfg, rh_diag_t *diag)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        fail_ssl(diag, "TLS context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    /* TLS 1.3: one session ticket per handshake instead of OpenSSL's default two (each costs an
     * encryption and a record written): a member resumes one connection per ticket, and a
     * resumed handshake brings a fresh ticket (issue #15). */
    SSL_CTX_set_num_tickets(ctx, 1);
    static const unsigned char sid_ctx[] = "roamhub";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
        fail_ssl(diag, "tls_cert", cfg->cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
        fail_ssl(diag, "tls_key", cfg->key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        fail_ssl(diag, "tls_key does not match tls_cert", cfg->key_file);
        goto fail;
    }
    if (cfg->client_ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->client_ca_file, NULL) != 1) {
            fail_ssl(diag, "tls_client_ca", cfg->client_ca_file);
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca_file);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        int mode = SSL_VERIFY_PEER;
        if (cfg->require_client_cert)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
        SSL_CTX_set_verify_depth(ctx, 4);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

tls_holder_t *tls_holder_new(SSL_CTX *ctx)
{
    tls_holder_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    pthread_mutex_init(&h->mu, NULL);
    h->ctx = ctx;
    return h;
}

void tls_holder_swap(tls_holder_t *h, SSL_CTX *ctx)
{
    pthread_mutex_lock(&h->mu);
    SSL_CTX *old = h->ctx;
    h->ctx = ctx;
    pthread_mutex_unlock(&h->mu);
    SSL_CTX_free(old);
}

SSL_CTX *tls_holder_get(void *holder)
{
    tls_holder_t *h = holder;
    pthread_mutex_lock(&h->mu);
    SSL_CTX *ctx = h->ctx;
    if (ctx)
        SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&h->mu);
    return ctx;
}

void tls_holder_free(tls_holder_t *h)
{
    if (!h)
        return;
    SSL_CTX_free(h->ctx);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
