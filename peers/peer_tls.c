/*
 * peer_tls.c — certificate identity extraction (fingerprint, RFC 2253 subject) and OpenSSL
 * error text. See peer_tls.h.
 */
#include "peer_tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "rh_hex.h"

int peer_tls_identity_from_x509(X509 *cert, peer_tls_identity_t *id)
{
    if (!id)
        return RH_EINVAL;
    memset(id, 0, sizeof *id);
    if (!cert)
        return RH_OK;
    unsigned int n = 0;
    if (X509_digest(cert, EVP_sha256(), id->fingerprint, &n) != 1 || n != PEER_SHA256_LEN)
        return RH_ECRYPTO;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return RH_ENOMEM;
    /* XN_FLAG_RFC2253 is what `openssl x509 -nameopt RFC2253` prints: most specific RDN first,
     * ',' separators, RFC 2253 escaping, non-ASCII as UTF-8 escaped per the flag set. */
    int w = X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    if (w < 0) {
        BIO_free(b);
        return RH_ECRYPTO;
    }
    char *p = NULL;
    long len = BIO_get_mem_data(b, &p);
    if (len >= 0 && (size_t)len < sizeof id->subject && (len == 0 || p)) {
        memcpy(id->subject, p, (size_t)len);
        id->subject[len] = '\0';
        /* An embedded NUL would make the C string differ from the certificate's name. */
        if (memchr(id->subject, '\0', (size_t)len))
            id->subject[0] = '\0';
    }
    BIO_free(b);
    id->present = true;
    return RH_OK;
}

int peer_tls_identity_from_ssl(const SSL *ssl, peer_tls_identity_t *id)
{
    if (!ssl || !id)
        return RH_EINVAL;
    return peer_tls_identity_from_x509(SSL_get0_peer_certificate(ssl), id);
}

void peer_tls_fingerprint_hex(const peer_tls_identity_t *id, char out[65])
{
    rh_hex_encode(id->fingerprint, PEER_SHA256_LEN, out, 0);
    out[64] = '\0';
}

char *peer_tls_errors(char *buf, size_t cap)
{
    if (!cap)
        return buf;
    buf[0] = '\0';
    size_t used = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char one[160];
        ERR_error_string_n(e, one, sizeof one);
        int n = snprintf(buf + used, cap - used, "%s%s", used ? "; " : "", one);
        if (n < 0 || (size_t)n >= cap - used) {
            ERR_clear_error();
            break;
        }
        used += (size_t)n;
    }
    return buf;
}
