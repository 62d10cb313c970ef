/* TLS over memory BIOs (tls.h). The read BIO is fed what the socket
 * read, the write BIO is drained into what the socket writes; OpenSSL
 * never sees a descriptor, so the event loop stays libuv's.
 *
 *   tls_new -> handshake (tls_start / tls_in) -> tls_in, tls_out
 *           -> tls_close_notify -> tls_free
 * Any fatal error ends in TLS_FAILED with its reason kept for the log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "server/server.h"
#include "server/tls.h"

#define TLS_PLAIN_CHUNK 16384 /* one record's worth of plaintext */
/* A drained write BIO whose buffer grew past this is replaced by a fresh
 * one: a memory BIO never gives its buffer back, so one large write would
 * pin its size for the life of the connection. */
#define TLS_WBIO_KEEP (32 * 1024)

struct tls {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    int server;
    int verify;          /* client side: the peer's certificate is checked */
    int done;            /* handshake completed */
    int failed;          /* no more I/O: a fatal error happened */
    int verify_failed;   /* that error was the peer's certificate */
    int notified;        /* close_notify written */
    int peer_closed;     /* close_notify read */
    struct outbuf early; /* plaintext written before the handshake ended */
    char err[200];
};

static int is_ip_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

struct tls *tls_new(SSL_CTX *ctx, int server, const char *sni, const char *verify_host,
                    SSL_SESSION *resume)
{
    struct tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->server = server;
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        return NULL;
    }
    /* An empty read BIO means "wait for more", not end of stream. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    /* Renegotiation: a client-driven CPU cost and a history of bugs
     * (RFC 8446 dropped it); refused both ways. */
    SSL_set_options(t->ssl, SSL_OP_NO_RENEGOTIATION);
    if (server) {
        SSL_set_accept_state(t->ssl);
        return t;
    }
    SSL_set_connect_state(t->ssl);
    if (sni && *sni && !is_ip_literal(sni))
        SSL_set_tlsext_host_name(t->ssl, sni);
    if (verify_host && *verify_host) {
        t->verify = 1;
        SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
        /* subjectAltName only: no fallback to the subject CN, which
         * browsers and Go refuse too (RFC 6125 §6.4.4 leaves it to
         * policy; a CA's device or user certificates name no host). */
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
                                      X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
        int ok = is_ip_literal(verify_host)
                     ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), verify_host)
                     : SSL_set1_host(t->ssl, verify_host);
        if (ok != 1) {
            tls_free(&t);
            return NULL;
        }
    }
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_set_alpn_protos(t->ssl, alpn, sizeof alpn - 1);
    if (resume) {
        /* A copy: OpenSSL marks a TLS 1.3 session used once resumed, and
         * the new ticket an origin sends after a resumption may come after
         * its response (node's does), past the point where the pool keeps
         * the connection's session; the kept one stays usable this way. */
        SSL_SESSION *copy = SSL_SESSION_dup(resume);
        SSL_set_session(t->ssl, copy ? copy : resume);
        SSL_SESSION_free(copy);
    }
    return t;
}

void tls_free(struct tls **tp)
{
    struct tls *t = *tp;
    if (!t)
        return;
    /* Without a close_notify sent, SSL_free would mark the session spent;
     * since TLS 1.1 an unclosed connection need not stop its resumption
     * (RFC 5246 §7.2.1), and the pool keeps it. A failed one stays spent. */
    if (t->done && !t->failed)
        SSL_set_shutdown(t->ssl, SSL_get_shutdown(t->ssl) | SSL_SENT_SHUTDOWN);
    SSL_free(t->ssl); /* and both BIOs */
    free(t->early.p);
    free(t);
    *tp = NULL;
}

/* Keep the reason of a fatal error: the certificate check's own words
 * when that is what failed, else OpenSSL's error queue. */
static enum tls_rc fail(struct tls *t, int ssl_err)
{
    t->failed = 1;
    long v = SSL_get_verify_result(t->ssl);
    /* server side: tls.client_verify asked for the client's certificate */
    int asked = t->server && (SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER);
    unsigned long last = ERR_peek_last_error();
    if ((t->verify || asked) && v != X509_V_OK) {
        t->verify_failed = 1;
        snprintf(t->err, sizeof t->err, "%scertificate verify failed: %s",
                 t->server ? "client " : "", X509_verify_cert_error_string(v));
    } else if (asked && ERR_GET_LIB(last) == ERR_LIB_SSL &&
               ERR_GET_REASON(last) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        t->verify_failed = 1;
        snprintf(t->err, sizeof t->err, "no client certificate (tls.client_verify: require)");
    } else {
        unsigned long e = ERR_peek_last_error();
        if (e) {
            ERR_error_string_n(e, t->err, sizeof t->err);
        } else {
            snprintf(t->err, sizeof t->err, "%s",
                     ssl_err == SSL_ERROR_SYSCALL ? "unexpected end of stream" : "protocol error");
        }
    }
    ERR_clear_error();
    return TLS_FAILED;
}

static enum tls_rc handshake(struct tls *t)
{
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->done = 1;
        if (t->early.len) {
            uv_buf_t b = uv_buf_init(t->early.p, (unsigned)t->early.len);
            t->early.len = 0;
            enum tls_rc rc = tls_out(t, &b, 1);
            free(t->early.p);
            t->early = (struct outbuf){0};
            return rc;
        }
        return TLS_OK;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return TLS_OK;
    return fail(t, e);
}

enum tls_rc tls_start(struct tls *t)
{
    return handshake(t);
}

enum tls_rc tls_in(struct tls *t, const char *cipher, size_t n, struct iobuf *plain, size_t *added)
{
    *added = 0;
    if (t->failed)
        return TLS_FAILED;
    if (n && BIO_write(t->rbio, cipher, (int)n) != (int)n)
        return fail(t, SSL_ERROR_SSL);
    if (!t->done) {
        enum tls_rc rc = handshake(t);
        if (rc != TLS_OK || !t->done)
            return rc;
    }
    for (;;) {
        if (iobuf_reserve(plain, TLS_PLAIN_CHUNK, (size_t)-1) < 0)
            srv_panic(__FILE__, __LINE__, "out of memory");
        size_t got = 0;
        ERR_clear_error();
        int r = SSL_read_ex(t->ssl, plain->base + plain->end, plain->cap - plain->end, &got);
        if (r == 1) {
            plain->end += got;
            *added += got;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            return TLS_OK;
        if (e == SSL_ERROR_ZERO_RETURN) {
            t->peer_closed = 1;
            return TLS_CLOSED;
        }
        return fail(t, e);
    }
}

enum tls_rc tls_out(struct tls *t, const uv_buf_t *b, unsigned n)
{
    if (t->failed)
        return TLS_FAILED;
    if (!t->done) {
        for (unsigned i = 0; i < n; i++)
            outbuf_add(&t->early, b[i].base, b[i].len);
        return TLS_OK;
    }
    for (unsigned i = 0; i < n; i++) {
        size_t off = 0;
        while (off < b[i].len) {
            size_t wrote = 0;
            ERR_clear_error();
            /* A memory BIO takes everything: each call writes whole
             * records (16 KiB at most) until the buffer is done. */
            if (SSL_write_ex(t->ssl, b[i].base + off, b[i].len - off, &wrote) != 1)
                return fail(t, SSL_get_error(t->ssl, 0));
            off += wrote;
        }
    }
    return TLS_OK;
}

void tls_close_notify(struct tls *t)
{
    if (t->notified || t->failed || !t->done)
        return;
    t->notified = 1;
    ERR_clear_error();
    SSL_shutdown(t->ssl); /* writes close_notify; we do not wait for theirs */
    ERR_clear_error();
}

void tls_take_out(struct tls *t, struct outbuf *o)
{
    size_t n = BIO_ctrl_pending(t->wbio);
    if (!n)
        return;
    outbuf_reserve(o, n);
    int r = BIO_read(t->wbio, o->p + o->len, (int)n);
    if (r > 0)
        o->len += (size_t)r;
    BUF_MEM *bm = NULL;
    if (BIO_ctrl_pending(t->wbio) == 0 && BIO_get_mem_ptr(t->wbio, &bm) == 1 && bm &&
        bm->max > TLS_WBIO_KEEP) {
        BIO *fresh = BIO_new(BIO_s_mem());
        if (fresh) {
            SSL_set0_wbio(t->ssl, fresh); /* frees the old one */
            t->wbio = fresh;
        }
    }
}

int tls_handshake_done(const struct tls *t)
{
    return t->done;
}

int tls_is_server(const struct tls *t)
{
    return t->server;
}

int tls_peer_closed(const struct tls *t)
{
    return t->peer_closed;
}

void tls_set_error(struct tls *t, const char *why)
{
    snprintf(t->err, sizeof t->err, "%s", why);
}

const char *tls_error(const struct tls *t)
{
    return t->err;
}

int tls_verify_failed(const struct tls *t)
{
    return t->verify_failed;
}

struct slice tls_alpn(const struct tls *t)
{
    const unsigned char *p = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &len);
    return (struct slice){(const char *)p, p ? len : 0};
}

SSL_SESSION *tls_session(const struct tls *t)
{
    if (t->failed)
        return NULL;
    SSL_SESSION *s = SSL_get1_session(t->ssl);
    if (s && !SSL_SESSION_is_resumable(s)) {
        SSL_SESSION_free(s);
        return NULL;
    }
    return s;
}

void tls_session_unref(SSL_SESSION **s)
{
    SSL_SESSION_free(*s);
    *s = NULL;
}

int tls_resumed(const struct tls *t)
{
    return SSL_session_reused(t->ssl);
}
