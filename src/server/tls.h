/* One TLS connection (OpenSSL 3) between two memory BIOs: ciphertext in,
 * plaintext out and back. Never touches a socket: conn.c moves the bytes.
 * The SSL_CTX comes from tls_ctx.c. RFC 8446 (TLS 1.3), RFC 5246 (1.2). */
#ifndef IDEM_TLS_H
#define IDEM_TLS_H
#include <stddef.h>
#include <uv.h>
#include <openssl/ssl.h>
#include "http/slice.h"
#include "server/iobuf.h"

struct outbuf;
struct tls;

enum tls_rc {
    TLS_OK,     /* go on (more input may be needed) */
    TLS_CLOSED, /* the peer sent close_notify */
    TLS_FAILED, /* a fatal error: tls_error says which; the alert is queued */
};

/* server: accept side. Client side: `sni` (NULL or an IP literal: none
 * sent, RFC 6066 §3), the peer's certificate checked against
 * `verify_host` (NULL: not checked), `resume` a session to offer (NULL:
 * none; the SSL takes its own reference). NULL when out of memory. */
struct tls *tls_new(SSL_CTX *ctx, int server, const char *sni, const char *verify_host,
                    SSL_SESSION *resume);
void tls_free(struct tls **t);

/* Client side: put the ClientHello out (tls_take_out). */
enum tls_rc tls_start(struct tls *t);
/* n ciphertext bytes arrived: run the handshake, then decrypt every record
 * into `plain` (grown as needed; *added counts the bytes appended). */
enum tls_rc tls_in(struct tls *t, const char *cipher, size_t n, struct iobuf *plain, size_t *added);
/* Encrypt b[0..n) in order. Before the handshake completes, the bytes are
 * kept (copied) and go out when it does. */
enum tls_rc tls_out(struct tls *t, const uv_buf_t *b, unsigned n);
/* A close_notify (once, and only after the handshake). */
void tls_close_notify(struct tls *t);
/* Move the ciphertext waiting to go out (handshake, records, tickets,
 * alerts) to the end of o. */
void tls_take_out(struct tls *t, struct outbuf *o);

int tls_handshake_done(const struct tls *t);
int tls_is_server(const struct tls *t);
/* The peer's close_notify was read (TLS_CLOSED returned). */
int tls_peer_closed(const struct tls *t);
/* Say why the connection failed where OpenSSL did not (tls_error). */
void tls_set_error(struct tls *t, const char *why);
/* The reason of the failure ("" if none): for the log. */
const char *tls_error(const struct tls *t);
/* The failure was the peer's certificate (unknown CA, name, dates). */
int tls_verify_failed(const struct tls *t);
struct slice tls_alpn(const struct tls *t);
/* A new reference to the session when it can be resumed, else NULL. */
SSL_SESSION *tls_session(const struct tls *t);
int tls_resumed(const struct tls *t);
/* Drop a reference from tls_session; *s becomes NULL. */
void tls_session_unref(SSL_SESSION **s);

#endif
