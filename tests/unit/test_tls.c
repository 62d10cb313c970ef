/* tls.c: two struct tls (server and client) over memory BIOs, the bytes
 * moved by hand between them as conn.c moves them through sockets: the
 * handshake, data both ways (records split and joined), writes made before
 * the handshake, close_notify, plaintext on a TLS port, a name that does
 * not verify, and session resumption. Certificates from certs.mjs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <cmocka.h>
#include "server/server.h"
#include "server/tls.h"
#include "server/tls_ctx.h"
#include "certs.h"

static char dir[256];
static struct tls_contexts ctxs;

static void pem(char *out, const char *name)
{
    snprintf(out, CONFIG_PATH_MAX, "%s/%s", dir, name);
}

static int setup(void **st)
{
    if (test_certs_make(dir, sizeof dir) < 0)
        return -1;
    struct config c;
    config_defaults(&c);
    c.nlisten = 1;
    config_parse_addr("127.0.0.1:0", &c.listen[0], false);
    c.tls.nlisten = 1;
    config_parse_addr("127.0.0.1:0", &c.tls.listen[0], false);
    pem(c.tls.certs[0].cert, "server.pem");
    pem(c.tls.certs[0].key, "server.key");
    c.tls.ncerts = 1;
    c.has_upstream = true;
    config_parse_addr("https://localhost", &c.upstream, true);
    pem(c.upstream_tls.ca, "ca.pem");
    char err[512];
    return tls_contexts_build(&c, &ctxs, err, sizeof err) == 0 ? 0 : -1;
}

static int teardown(void **st)
{
    tls_contexts_free(&ctxs);
    return test_certs_remove(dir);
}

struct side {
    struct tls *t;
    struct iobuf plain; /* what it decrypted */
    enum tls_rc rc;     /* of its last tls_in */
};

/* Move what `from` wrote to `to`, as one read. */
static void carry(struct side *from, struct side *to)
{
    struct outbuf o = {0};
    tls_take_out(from->t, &o);
    if (o.len || !tls_handshake_done(to->t)) {
        size_t added;
        to->rc = tls_in(to->t, o.p, o.len, &to->plain, &added);
    }
    free(o.p);
}

static void pump(struct side *s, struct side *c)
{
    for (int i = 0; i < 8; i++) {
        carry(c, s);
        carry(s, c);
    }
}

static void pair(struct side *s, struct side *c, const char *name, SSL_SESSION *resume)
{
    memset(s, 0, sizeof *s);
    memset(c, 0, sizeof *c);
    s->t = tls_new(ctxs.server, 1, NULL, NULL, NULL);
    c->t = tls_new(ctxs.upstream, 0, name, name, resume);
    assert_non_null(s->t);
    assert_non_null(c->t);
    assert_int_equal(tls_start(c->t), TLS_OK);
    pump(s, c);
}

static void unpair(struct side *s, struct side *c)
{
    tls_free(&s->t);
    tls_free(&c->t);
    assert_null(s->t);
    iobuf_fini(&s->plain);
    iobuf_fini(&c->plain);
}

static void test_data_both_ways(void **st)
{
    struct side s, c;
    pair(&s, &c, "localhost", NULL);
    assert_true(tls_handshake_done(s.t) && tls_handshake_done(c.t));
    struct slice alpn = tls_alpn(s.t);
    assert_int_equal(alpn.len, 8);
    assert_memory_equal(alpn.p, "http/1.1", 8);
    /* 100 KiB in three vectors: several records, read back joined */
    size_t n = 100 * 1024;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7);
    uv_buf_t b[3] = {uv_buf_init(big, 10), uv_buf_init(big + 10, 60000),
                     uv_buf_init(big + 60010, (unsigned)(n - 60010))};
    assert_int_equal(tls_out(c.t, b, 3), TLS_OK);
    carry(&c, &s);
    assert_int_equal(s.rc, TLS_OK);
    assert_int_equal(iobuf_len(&s.plain), n);
    assert_memory_equal(iobuf_data(&s.plain), big, n);
    uv_buf_t back = uv_buf_init("pong", 4);
    assert_int_equal(tls_out(s.t, &back, 1), TLS_OK);
    carry(&s, &c);
    assert_int_equal(iobuf_len(&c.plain), 4);
    assert_memory_equal(iobuf_data(&c.plain), "pong", 4);
    free(big);
    unpair(&s, &c);
}

static void test_write_before_handshake(void **st)
{
    struct side s = {0}, c = {0};
    s.t = tls_new(ctxs.server, 1, NULL, NULL, NULL);
    c.t = tls_new(ctxs.upstream, 0, "localhost", "localhost", NULL);
    assert_int_equal(tls_start(c.t), TLS_OK);
    uv_buf_t early = uv_buf_init("GET / HTTP/1.1\r\n\r\n", 18);
    assert_int_equal(tls_out(c.t, &early, 1), TLS_OK); /* kept, not sent in clear */
    pump(&s, &c);
    assert_int_equal(iobuf_len(&s.plain), 18);
    assert_memory_equal(iobuf_data(&s.plain), "GET / HTTP/1.1\r\n\r\n", 18);
    unpair(&s, &c);
}

static void test_close_notify(void **st)
{
    struct side s, c;
    pair(&s, &c, "localhost", NULL);
    tls_close_notify(c.t);
    carry(&c, &s);
    assert_int_equal(s.rc, TLS_CLOSED);
    unpair(&s, &c);
}

static void test_plaintext_on_tls_port(void **st)
{
    struct tls *t = tls_new(ctxs.server, 1, NULL, NULL, NULL);
    struct iobuf plain = {0};
    size_t added = 1;
    const char *req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(tls_in(t, req, strlen(req), &plain, &added), TLS_FAILED);
    assert_int_equal(added, 0);
    assert_int_equal(iobuf_len(&plain), 0);
    assert_non_null(strstr(tls_error(t), "http request"));
    assert_false(tls_verify_failed(t));
    /* no TLS record goes back to what is not a TLS client (OpenSSL sends
     * no alert for an HTTP request) */
    struct outbuf back = {0};
    tls_take_out(t, &back);
    assert_true(back.len == 0 || back.p[0] == 0x15);
    free(back.p);
    uv_buf_t b = uv_buf_init("x", 1);
    assert_int_equal(tls_out(t, &b, 1), TLS_FAILED); /* and nothing after */
    tls_free(&t);
    iobuf_fini(&plain);
}

static void test_name_mismatch(void **st)
{
    struct side s, c;
    pair(&s, &c, "other.test", NULL); /* server.pem names 127.0.0.1, localhost */
    assert_false(tls_handshake_done(c.t));
    assert_int_equal(c.rc, TLS_FAILED);
    assert_true(tls_verify_failed(c.t));
    assert_non_null(strstr(tls_error(c.t), "hostname mismatch"));
    assert_null(tls_session(c.t));
    unpair(&s, &c);
    /* an IP address is checked against the IP SANs */
    pair(&s, &c, "127.0.0.2", NULL);
    assert_true(tls_verify_failed(c.t));
    assert_non_null(strstr(tls_error(c.t), "IP address mismatch"));
    unpair(&s, &c);
}

static void test_resumption(void **st)
{
    struct side s, c;
    pair(&s, &c, "localhost", NULL);
    /* a TLS 1.3 ticket comes after the handshake: carried by the pump */
    assert_false(tls_resumed(c.t));
    SSL_SESSION *kept = tls_session(c.t);
    assert_non_null(kept);
    unpair(&s, &c);
    for (int i = 0; i < 2; i++) { /* the kept session serves twice */
        pair(&s, &c, "localhost", kept);
        assert_true(tls_handshake_done(c.t));
        assert_true(tls_resumed(c.t));
        unpair(&s, &c);
    }
    SSL_SESSION_free(kept);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_both_ways), cmocka_unit_test(test_write_before_handshake),
        cmocka_unit_test(test_close_notify),   cmocka_unit_test(test_plaintext_on_tls_port),
        cmocka_unit_test(test_name_mismatch),  cmocka_unit_test(test_resumption),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
