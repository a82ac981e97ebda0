/*
 * tls_server.h — server-side TLS contexts for the hub's listeners (OpenSSL 3).
 * TLS 1.2 minimum, renegotiation off, session resumption on (tickets — one per TLS 1.3 handshake —
 * + server cache), optional
 * client certificates verified against a configured CA (mTLS member authentication; the member is
 * then found by certificate fingerprint or subject, see peers/).
 * A tls_holder_t lets SIGHUP swap certificates while connections are being accepted on other
 * threads: accept takes a reference under a mutex; existing connections keep their own.
 */
#ifndef RH_TLS_SERVER_H
#define RH_TLS_SERVER_H

#include "config.h"
#include "rh_err.h"

#include <openssl/ssl.h>

typedef struct tls_holder tls_holder_t;

/* Builds an SSL_CTX from the listener's TLS config (cert_file must be set).
 * Errors: NULL with diag naming the file and OpenSSL's reason. Caller owns the context. */
SSL_CTX *tls_server_ctx_new(const rh_tls_config_t *cfg, rh_diag_t *diag);

/* Holder around a context (takes ownership of ctx). NULL on allocation failure. */
tls_holder_t *tls_holder_new(SSL_CTX *ctx);

/* Replaces the context (takes ownership of ctx; the old one is released once unused). */
void tls_holder_swap(tls_holder_t *h, SSL_CTX *ctx);

/* A new reference to the current context (SSL_CTX_free it), for hs_opts_t.tls_ctx. */
SSL_CTX *tls_holder_get(void *holder);

/* Frees the holder and its reference. NULL is a no-op. */
void tls_holder_free(tls_holder_t *h);

/* Logs and clears the OpenSSL error queue under `subsys` with context `what`. */
void tls_log_errors(const char *subsys, const char *what);

#endif
