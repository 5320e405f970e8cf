#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/rand.h>
#include <openssl/ecdsa.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/asn1.h>

/* Function-like macros are not imported by Swift's ClangImporter: re-export as inline functions. */
static inline int cshim_BIO_pending(BIO *bio) { return BIO_pending(bio); }

/* TLS (Sources/TLS): SSL_CTX_set_mode & co. are macros over SSL_CTX_ctrl. */
static inline long cshim_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline int cshim_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_min_proto_version(ctx, version); }
static inline long cshim_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_session_cache_mode(ctx, mode); }
static inline int cshim_SSL_CTX_set_tlsext_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *)) {
    return (int)SSL_CTX_set_tlsext_servername_callback(ctx, cb);
}
static inline int cshim_SSL_CTX_set_tlsext_servername_arg(SSL_CTX *ctx, void *arg) { return (int)SSL_CTX_set_tlsext_servername_arg(ctx, arg); }
static inline int cshim_SSL_set_tlsext_host_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
static inline int cshim_SSL_CTX_add1_chain_cert(SSL_CTX *ctx, X509 *x) { return (int)SSL_CTX_add1_chain_cert(ctx, x); }
static inline int cshim_SSL_CTX_clear_chain_certs(SSL_CTX *ctx) { return (int)SSL_CTX_clear_chain_certs(ctx); }
static inline int cshim_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) { return (int)SSL_CTX_set1_groups_list(ctx, list); }
static inline int cshim_SSL_CTX_set_ecdh_auto(SSL_CTX *ctx) { (void)ctx; return 1; }
static inline int cshim_ERR_GET_LIB(unsigned long e) { return ERR_GET_LIB(e); }
static inline int cshim_ERR_GET_REASON(unsigned long e) { return ERR_GET_REASON(e); }

/* Reason codes the TLS transport maps to metric labels (macros in sslerr.h / constants that may not import). */
static const int cshim_SSL_R_UNEXPECTED_EOF_WHILE_READING = SSL_R_UNEXPECTED_EOF_WHILE_READING;
static const int cshim_SSL_R_WRONG_VERSION_NUMBER = SSL_R_WRONG_VERSION_NUMBER;
static const int cshim_SSL_R_UNSUPPORTED_PROTOCOL = SSL_R_UNSUPPORTED_PROTOCOL;
static const int cshim_SSL_R_NO_SHARED_CIPHER = SSL_R_NO_SHARED_CIPHER;
static const int cshim_SSL_R_VERSION_TOO_LOW = SSL_R_VERSION_TOO_LOW;
static const int cshim_SSL_R_NO_PROTOCOLS_AVAILABLE = SSL_R_NO_PROTOCOLS_AVAILABLE;
static const int cshim_SSL_R_HTTP_REQUEST = SSL_R_HTTP_REQUEST;
static const int cshim_SSL_R_NO_APPLICATION_PROTOCOL = SSL_R_NO_APPLICATION_PROTOCOL;
static const int cshim_SSL_R_NO_RENEGOTIATION = SSL_R_NO_RENEGOTIATION;
static const int cshim_SSL_AD_REASON_OFFSET = SSL_AD_REASON_OFFSET;

/* ALPN (RFC 7301): select http/1.1 when offered; otherwise answer without ALPN (no alert). In C so the
   selected pointer can point into a static list. */
static inline int cshim_alpn_select_http11(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                           const unsigned char *in, unsigned int inlen, void *arg) {
    static const unsigned char ours[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
    unsigned char *selected = NULL;
    unsigned char length = 0;
    (void)ssl; (void)arg;
    if (SSL_select_next_proto(&selected, &length, ours, sizeof ours, in, inlen) != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
    *out = selected;
    *outlen = length;
    return SSL_TLSEXT_ERR_OK;
}
static inline void cshim_SSL_CTX_select_alpn_http11(SSL_CTX *ctx) { SSL_CTX_set_alpn_select_cb(ctx, cshim_alpn_select_http11, NULL); }

/* SSL_OP_BIT(n) expands to a cast expression Swift does not import. */
static const uint64_t cshim_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
static const uint64_t cshim_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;
static const uint64_t cshim_SSL_OP_CIPHER_SERVER_PREFERENCE = SSL_OP_CIPHER_SERVER_PREFERENCE;

/* The certificate's notAfter as seconds since the epoch (-1 when unreadable). */
static inline long long cshim_X509_not_after_epoch(X509 *x) {
    const ASN1_TIME *t = X509_get0_notAfter(x);
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) return -1;
    return (long long)timegm(&tm);
}
#endif
