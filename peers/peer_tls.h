/*
 * peer_tls.h — TLS identity extraction for the broker's TS002 listener (server side) and the
 * OpenSSL error text used in logs. The listener's SSL_CTX lives in broker/; this file only turns
 * a verified client certificate into the peer_tls_identity_t that peer_registry_auth_tls maps to
 * a member: SHA-256 over the DER certificate (the same value as
 * `openssl x509 -noout -fingerprint -sha256`) and the subject in RFC 2253 form (the same string
 * as `openssl x509 -noout -subject -nameopt RFC2253`, without the "subject=" prefix).
 * Extract once per connection (after the handshake), authenticate per request.
 */
#ifndef PEER_TLS_H
#define PEER_TLS_H

#include <stddef.h>

#include "peer_registry.h"

typedef struct ssl_st SSL;
typedef struct x509_st X509;

/* Fills *id from a certificate. cert NULL: id->present = false (no certificate), RH_OK.
 * A subject longer than sizeof id->subject - 1 leaves subject "" (it can then never match).
 * Errors: RH_EINVAL (id NULL), RH_ECRYPTO (digest or name printing failed). */
int peer_tls_identity_from_x509(X509 *cert, peer_tls_identity_t *id);

/* Same for the peer certificate of an established server-side SSL connection
 * (SSL_get0_peer_certificate). The caller must have required and verified it (verify result
 * X509_V_OK); this function does not check the chain. Errors as above. */
int peer_tls_identity_from_ssl(const SSL *ssl, peer_tls_identity_t *id);

/* Formats the fingerprint as 64 lower-case hex digits into out (65 bytes). Not a secret. */
void peer_tls_fingerprint_hex(const peer_tls_identity_t *id, char out[65]);

/* Drains the calling thread's OpenSSL error queue into `buf` ("lib:reason; ..." or "" when
 * empty). Always NUL-terminates (cap > 0). Returns buf. */
char *peer_tls_errors(char *buf, size_t cap);

#endif
