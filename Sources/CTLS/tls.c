#include "CTLS.h"
#include <arpa/inet.h>
#include <crypt.h>
#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

// Every OpenSSL function used, called through a pointer found by dlsym. The
// names below are redefined to those pointers, so the code reads as plain
// OpenSSL (OpenSSL's own macros expand to these names at the point of use).
#define OPENSSL_FUNCTIONS(F) \
    F(TLS_server_method) F(SSL_CTX_new) F(SSL_CTX_free) F(SSL_CTX_ctrl) F(SSL_CTX_set_options) \
    F(SSL_CTX_set_cipher_list) F(SSL_CTX_set_session_id_context) F(SSL_CTX_set_verify) \
    F(SSL_CTX_use_certificate) F(SSL_CTX_use_PrivateKey) F(SSL_CTX_check_private_key) \
    F(SSL_CTX_get_cert_store) F(SSL_CTX_set_client_CA_list) F(SSL_new) F(SSL_free) F(SSL_set_fd) \
    F(SSL_accept) F(SSL_get_error) F(SSL_read) F(SSL_write) F(SSL_shutdown) F(SSL_is_init_finished) \
    F(SSL_get1_peer_certificate) F(BIO_new_mem_buf) F(BIO_free) F(PEM_read_bio_X509_AUX) \
    F(PEM_read_bio_X509) F(PEM_read_bio_PrivateKey) F(X509_free) F(EVP_PKEY_free) \
    F(X509_STORE_add_cert) F(X509_NAME_dup) F(X509_NAME_free) F(X509_get_subject_name) F(X509_get_ext_d2i) \
    F(GENERAL_NAMES_free) F(ASN1_STRING_length) F(ASN1_STRING_get0_data) F(OPENSSL_sk_new_null) \
    F(OPENSSL_sk_push) F(OPENSSL_sk_num) F(OPENSSL_sk_value) F(ERR_get_error) F(ERR_peek_last_error) \
    F(ERR_clear_error) F(ERR_error_string_n) F(CRYPTO_memcmp) F(SHA256)

#define DECLARE(name) static __typeof__(&name) p_##name;
OPENSSL_FUNCTIONS(DECLARE)
static __typeof__(&crypt_r) p_crypt_r;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;
static char load_error[256];

static void load(void) {
    void *ssl = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!ssl) { snprintf(load_error, sizeof load_error, "%s (Debian: apt-get install libssl3)", dlerror()); return; }
    void *crypt = dlopen("libcrypt.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!crypt) { snprintf(load_error, sizeof load_error, "%s (Debian: apt-get install libcrypt1)", dlerror()); return; }
    // dlsym on libssl's handle also searches what it depends on: libcrypto.
#define RESOLVE(name) \
    if (!(p_##name = (__typeof__(&name))dlsym(ssl, #name))) { \
        snprintf(load_error, sizeof load_error, "libssl.so.3 has no %s", #name); return; }
    OPENSSL_FUNCTIONS(RESOLVE)
    if (!(p_crypt_r = (__typeof__(&crypt_r))dlsym(crypt, "crypt_r"))) {
        snprintf(load_error, sizeof load_error, "libcrypt.so.1 has no crypt_r");
        return;
    }
    loaded = 1;
}

int slabwatch_tls_load(char *why, size_t size) {
    pthread_once(&once, load);
    if (!loaded && size > 0) snprintf(why, size, "%s", load_error);
    return loaded;
}

#define CALL(name) (*p_##name)
#define TLS_server_method CALL(TLS_server_method)
#define SSL_CTX_new CALL(SSL_CTX_new)
#define SSL_CTX_free CALL(SSL_CTX_free)
#define SSL_CTX_ctrl CALL(SSL_CTX_ctrl)
#define SSL_CTX_set_options CALL(SSL_CTX_set_options)
#define SSL_CTX_set_cipher_list CALL(SSL_CTX_set_cipher_list)
#define SSL_CTX_set_session_id_context CALL(SSL_CTX_set_session_id_context)
#define SSL_CTX_set_verify CALL(SSL_CTX_set_verify)
#define SSL_CTX_use_certificate CALL(SSL_CTX_use_certificate)
#define SSL_CTX_use_PrivateKey CALL(SSL_CTX_use_PrivateKey)
#define SSL_CTX_check_private_key CALL(SSL_CTX_check_private_key)
#define SSL_CTX_get_cert_store CALL(SSL_CTX_get_cert_store)
#define SSL_CTX_set_client_CA_list CALL(SSL_CTX_set_client_CA_list)
#define SSL_new CALL(SSL_new)
#define SSL_free CALL(SSL_free)
#define SSL_set_fd CALL(SSL_set_fd)
#define SSL_accept CALL(SSL_accept)
#define SSL_get_error CALL(SSL_get_error)
#define SSL_read CALL(SSL_read)
#define SSL_write CALL(SSL_write)
#define SSL_shutdown CALL(SSL_shutdown)
#define SSL_is_init_finished CALL(SSL_is_init_finished)
#define SSL_get1_peer_certificate CALL(SSL_get1_peer_certificate)
#define BIO_new_mem_buf CALL(BIO_new_mem_buf)
#define BIO_free CALL(BIO_free)
#define PEM_read_bio_X509_AUX CALL(PEM_read_bio_X509_AUX)
#define PEM_read_bio_X509 CALL(PEM_read_bio_X509)
#define PEM_read_bio_PrivateKey CALL(PEM_read_bio_PrivateKey)
#define X509_free CALL(X509_free)
#define EVP_PKEY_free CALL(EVP_PKEY_free)
#define X509_STORE_add_cert CALL(X509_STORE_add_cert)
#define X509_NAME_dup CALL(X509_NAME_dup)
#define X509_NAME_free CALL(X509_NAME_free)
#define X509_get_subject_name CALL(X509_get_subject_name)
#define X509_get_ext_d2i CALL(X509_get_ext_d2i)
#define GENERAL_NAMES_free CALL(GENERAL_NAMES_free)
#define ASN1_STRING_length CALL(ASN1_STRING_length)
#define ASN1_STRING_get0_data CALL(ASN1_STRING_get0_data)
#define OPENSSL_sk_new_null CALL(OPENSSL_sk_new_null)
#define OPENSSL_sk_push CALL(OPENSSL_sk_push)
#define OPENSSL_sk_num CALL(OPENSSL_sk_num)
#define OPENSSL_sk_value CALL(OPENSSL_sk_value)
#define ERR_get_error CALL(ERR_get_error)
#define ERR_peek_last_error CALL(ERR_peek_last_error)
#define ERR_clear_error CALL(ERR_clear_error)
#define ERR_error_string_n CALL(ERR_error_string_n)
#define CRYPTO_memcmp CALL(CRYPTO_memcmp)
#define SHA256 CALL(SHA256)

SSL_CTX *slabwatch_ctx_new(int prefer_server_ciphers) {
    if (!loaded) return NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return NULL;
    uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
    if (prefer_server_ciphers) options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    SSL_CTX_set_options(ctx, options);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"slabwatch", 9);
    return ctx;
}

void slabwatch_ctx_free(SSL_CTX *ctx) { SSL_CTX_free(ctx); }

int slabwatch_ctx_set_proto_range(SSL_CTX *ctx, int min_version, int max_version) {
    return SSL_CTX_set_min_proto_version(ctx, min_version) == 1
        && SSL_CTX_set_max_proto_version(ctx, max_version) == 1;
}

int slabwatch_ctx_set_ciphers(SSL_CTX *ctx, const char *list) { return SSL_CTX_set_cipher_list(ctx, list); }

int slabwatch_ctx_set_groups(SSL_CTX *ctx, const char *groups) { return (int)SSL_CTX_set1_groups_list(ctx, groups); }

static int accept_any_certificate(int preverified, X509_STORE_CTX *store) {
    (void)preverified;
    (void)store;
    return 1;
}

void slabwatch_ctx_set_client_auth(SSL_CTX *ctx, int request, int require, int verify) {
    if (!request) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return;
    }
    int mode = SSL_VERIFY_PEER | (require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    SSL_CTX_set_verify(ctx, mode, verify ? NULL : accept_any_certificate);
}

static int is_end_of_pem(void) {
    unsigned long err = ERR_peek_last_error();
    return ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
}

int slabwatch_ctx_use_chain_pem(SSL_CTX *ctx, const char *pem, size_t length) {
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (!bio) return 0;
    int ok = 0;
    X509 *leaf = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
    if (leaf && SSL_CTX_use_certificate(ctx, leaf) == 1) {
        ok = SSL_CTX_clear_chain_certs(ctx) == 1;
        X509 *extra;
        while (ok && (extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            // add0 takes ownership only on success.
            if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) { X509_free(extra); ok = 0; }
        }
        // The loop ends on "no start line" at the end of the input: not an error.
        if (ok && is_end_of_pem()) ERR_clear_error();
    }
    X509_free(leaf);
    BIO_free(bio);
    return ok;
}

int slabwatch_ctx_use_key_pem(SSL_CTX *ctx, const char *pem, size_t length) {
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (!bio) return 0;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    int ok = key && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    BIO_free(bio);
    return ok;
}

int slabwatch_ctx_use_client_ca_pem(SSL_CTX *ctx, const char *pem, size_t length) {
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (!bio) return 0;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    int count = 0;
    X509 *cert;
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, cert) == 1) {
            X509_NAME *name = X509_NAME_dup(X509_get_subject_name(cert));
            if (name && (!names || sk_X509_NAME_push(names, name) == 0)) X509_NAME_free(name);
            count++;
        }
        X509_free(cert);
    }
    if (is_end_of_pem()) ERR_clear_error();
    if (names) SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
    BIO_free(bio);
    return count;
}

SSL *slabwatch_ssl_new(SSL_CTX *ctx, int fd) {
    SSL *ssl = SSL_new(ctx);
    if (ssl && SSL_set_fd(ssl, fd) != 1) { SSL_free(ssl); return NULL; }
    return ssl;
}

void slabwatch_ssl_free(SSL *ssl) { SSL_free(ssl); }

static int outcome(SSL *ssl, int result) {
    switch (SSL_get_error(ssl, result)) {
    case SSL_ERROR_WANT_READ: return SLABWATCH_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return SLABWATCH_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return SLABWATCH_TLS_CLOSED;
    default: return SLABWATCH_TLS_FAILED;  // the error stays queued for slabwatch_last_error
    }
}

// OpenSSL's error queue is per thread and must be empty before a call whose
// outcome SSL_get_error is to judge.
int slabwatch_ssl_accept(SSL *ssl) {
    ERR_clear_error();
    int result = SSL_accept(ssl);
    return result == 1 ? SLABWATCH_TLS_DONE : outcome(ssl, result);
}

int slabwatch_ssl_read(SSL *ssl, void *buffer, int size) {
    ERR_clear_error();
    int n = SSL_read(ssl, buffer, size);
    return n > 0 ? n : outcome(ssl, n);
}

int slabwatch_ssl_write(SSL *ssl, const void *bytes, int count) {
    ERR_clear_error();
    int n = SSL_write(ssl, bytes, count);
    return n > 0 ? n : outcome(ssl, n);
}

void slabwatch_ssl_shutdown(SSL *ssl) {
    ERR_clear_error();
    if (SSL_is_init_finished(ssl)) (void)SSL_shutdown(ssl);
    ERR_clear_error();
}

static int san_text(const GENERAL_NAME *name, char *text, size_t size) {
    const ASN1_STRING *value = NULL;
    switch (name->type) {
    case GEN_DNS: value = name->d.dNSName; break;
    case GEN_EMAIL: value = name->d.rfc822Name; break;
    case GEN_URI: value = name->d.uniformResourceIdentifier; break;
    case GEN_IPADD: {
        const ASN1_OCTET_STRING *ip = name->d.iPAddress;
        int family = ip->length == 4 ? AF_INET : ip->length == 16 ? AF_INET6 : 0;
        return family && inet_ntop(family, ip->data, text, (socklen_t)size) != NULL;
    }
    default: return 0;
    }
    int length = ASN1_STRING_length(value);
    if (length < 0 || (size_t)length >= size) return 0;
    memcpy(text, ASN1_STRING_get0_data(value), (size_t)length);
    text[length] = 0;
    return strlen(text) == (size_t)length;  // an embedded NUL never matches
}

int slabwatch_peer_has_allowed_san(SSL *ssl, const char *const *allowed, size_t count) {
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer) return 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    char text[1024];
    for (int i = 0; names && !found && i < sk_GENERAL_NAME_num(names); i++) {
        if (!san_text(sk_GENERAL_NAME_value(names, i), text, sizeof text)) continue;
        for (size_t j = 0; j < count && !found; j++) found = strcmp(text, allowed[j]) == 0;
    }
    GENERAL_NAMES_free(names);
    X509_free(peer);
    return found;
}

void slabwatch_last_error(char *buffer, size_t size) {
    if (size == 0) return;
    buffer[0] = 0;
    if (!loaded) return;
    unsigned long code = ERR_get_error();
    if (code != 0) ERR_error_string_n(code, buffer, size);
    ERR_clear_error();
}

int slabwatch_equal(const void *a, const void *b, size_t length) {
    return loaded && CRYPTO_memcmp(a, b, length) == 0;
}

int slabwatch_sha256(const void *bytes, size_t length, unsigned char *digest) {
    return loaded && SHA256(bytes, length, digest) != NULL;
}

int slabwatch_crypt(const char *phrase, const char *setting, char *out, size_t size) {
    if (!loaded || size == 0) return 0;
    struct crypt_data data;
    memset(&data, 0, sizeof data);
    const char *result = (*p_crypt_r)(phrase, setting, &data);
    if (!result || result[0] == '*' || strlen(result) >= size) return 0;
    strcpy(out, result);
    explicit_bzero(&data, sizeof data);
    return 1;
}
