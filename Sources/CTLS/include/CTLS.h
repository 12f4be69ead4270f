#ifndef SLABWATCH_CTLS_H
#define SLABWATCH_CTLS_H

// OpenSSL (TLS, SHA-256) and libcrypt (bcrypt) for the HTTP server, loaded
// with dlopen only when a web configuration asks for TLS or passwords: linked
// always, libcrypto alone would add about 2.5 MB to the resident memory of
// every daemon, most of which never use it. Swift calls only these functions;
// the OpenSSL headers are here for their types and constants.
#include <openssl/ssl.h>
#include <stddef.h>

// Loads libssl.so.3 (with libcrypto) and libcrypt.so.1 once; 1 when every
// function was found, else 0 and the reason in `why`. Safe to call again.
int slabwatch_tls_load(char *why, size_t size);

// Context: NULL when it cannot be made. Options: no renegotiation or
// compression, the server's cipher order when asked, partial writes from a
// buffer that may move, resumption within this process.
SSL_CTX *slabwatch_ctx_new(int prefer_server_ciphers);
void slabwatch_ctx_free(SSL_CTX *ctx);
// SSL_CTX_set_min/max_proto_version (TLS1_2_VERSION etc.); 1 on success.
int slabwatch_ctx_set_proto_range(SSL_CTX *ctx, int min_version, int max_version);
int slabwatch_ctx_set_ciphers(SSL_CTX *ctx, const char *list);
int slabwatch_ctx_set_groups(SSL_CTX *ctx, const char *groups);
// Client certificates: `request` asks for one, `require` fails the handshake
// without one, `verify` checks it against the client CAs (otherwise any
// certificate is accepted, as Go's RequestClientCert/RequireAnyClientCert do).
void slabwatch_ctx_set_client_auth(SSL_CTX *ctx, int request, int require, int verify);
// A PEM certificate chain (leaf first) / private key / client CAs from memory.
int slabwatch_ctx_use_chain_pem(SSL_CTX *ctx, const char *pem, size_t length);
int slabwatch_ctx_use_key_pem(SSL_CTX *ctx, const char *pem, size_t length);
// Returns how many CA certificates were loaded (0: none or error).
int slabwatch_ctx_use_client_ca_pem(SSL_CTX *ctx, const char *pem, size_t length);

// What a TLS call on a non-blocking socket came to (negative), or bytes (> 0).
enum {
    SLABWATCH_TLS_DONE = 0,
    SLABWATCH_TLS_FAILED = -1,
    SLABWATCH_TLS_WANT_READ = -2,
    SLABWATCH_TLS_WANT_WRITE = -3,
    SLABWATCH_TLS_CLOSED = -4,
};

SSL *slabwatch_ssl_new(SSL_CTX *ctx, int fd);
void slabwatch_ssl_free(SSL *ssl);
int slabwatch_ssl_accept(SSL *ssl);
int slabwatch_ssl_read(SSL *ssl, void *buffer, int size);
int slabwatch_ssl_write(SSL *ssl, const void *bytes, int count);
// Sends close_notify once the handshake is done, without waiting for the peer's.
void slabwatch_ssl_shutdown(SSL *ssl);
// 1 when the peer's certificate has a subject alternative name (DNS, e-mail,
// URI, or IP address as text) equal to one of `allowed`.
int slabwatch_peer_has_allowed_san(SSL *ssl, const char *const *allowed, size_t count);

// The oldest queued OpenSSL error as text, cleared from the queue; empty when none.
void slabwatch_last_error(char *buffer, size_t size);

// Constant-time comparison (CRYPTO_memcmp): 1 when equal.
int slabwatch_equal(const void *a, const void *b, size_t length);
// SHA-256 of `length` bytes into `digest` (32 bytes); 1 on success.
int slabwatch_sha256(const void *bytes, size_t length, unsigned char *digest);
// crypt_r(phrase, setting) into `out`; 1 on success (0 on error or a "*" failure token).
int slabwatch_crypt(const char *phrase, const char *setting, char *out, size_t size);

#endif
