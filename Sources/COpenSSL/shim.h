#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

// Macros Swift cannot import, as functions.
static inline void SSL_CTX_set_min_proto_version_shim(SSL_CTX *ctx) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}
static inline long SSL_set_tlsext_host_name_shim(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
