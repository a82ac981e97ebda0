/*
 * peer_internal.h — private glue between the files of peers/ (not installed, not for broker/).
 * Holds the SSL ex_data slot that links an outbound SSL to its client connection, so that the
 * SSL_CTX's new-session callback (set when the endpoint is built) can store the session ticket
 * in the right client pool.
 */
#ifndef PEER_INTERNAL_H
#define PEER_INTERNAL_H

#include <openssl/ssl.h>

/* Index for SSL_set_ex_data (created once, thread-safe). -1 if OpenSSL failed. */
int peer_ssl_conn_index(void);

/* SSL_CTX_sess_set_new_cb callback (peer_client.c): caches the session in the pool of the
 * connection found in ex_data. Returns 1 when it keeps the session, else 0. */
int peer_client_new_session_cb(SSL *ssl, SSL_SESSION *sess);

#endif
