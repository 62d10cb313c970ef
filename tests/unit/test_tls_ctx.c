/* tls_ctx.c: the contexts built from a configuration, exercised by real
 * handshakes between two SSL objects over a BIO pair (no socket): SNI
 * selection, ALPN, min_version, ticket resumption, client verification.
 * The certificates are made at run time by tests/integration/certs.mjs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "server/tls_ctx.h"
#include "server/origin.h"
#include "certs.h"

static char dir[256]; /* a mkdtemp name: short */

static void pem(char *out, const char *name)
{
    snprintf(out, CONFIG_PATH_MAX, "%s/%s", dir, name);
}

static int make_certs(void **st)
{
    return test_certs_make(dir, sizeof dir);
}

static int remove_certs(void **st)
{
    return test_certs_remove(dir);
}

/* A reverse proxy with a TLS listener: server.pem (127.0.0.1, localhost)
 * the default, other.test and *.wild.test by SNI; an https upstream. */
static void tls_config(struct config *c)
{
    config_defaults(c);
    c->nlisten = 1;
    assert_int_equal(config_parse_addr("127.0.0.1:0", &c->listen[0], false), 0);
    c->tls.nlisten = 1;
    assert_int_equal(config_parse_addr("127.0.0.1:0", &c->tls.listen[0], false), 0);
    pem(c->tls.certs[0].cert, "server.pem");
    pem(c->tls.certs[0].key, "server.key");
    pem(c->tls.certs[1].cert, "other.pem");
    pem(c->tls.certs[1].key, "other.key");
    pem(c->tls.certs[2].cert, "wildcard.pem");
    pem(c->tls.certs[2].key, "wildcard.key");
    c->tls.ncerts = 3;
    c->has_upstream = true;
    assert_int_equal(config_parse_addr("https://localhost", &c->upstream, true), 0);
    pem(c->upstream_tls.ca, "ca.pem");
}

/* A test client: trusts ca.pem, verifies, offers what it is told. */
static SSL_CTX *test_client(int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char ca[CONFIG_PATH_MAX];
    pem(ca, "ca.pem");
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (max_version) {
        /* an old version needs the old security level to be offered at all */
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_min_proto_version(ctx, max_version < TLS1_2_VERSION ? TLS1_VERSION : 0);
        SSL_CTX_set_max_proto_version(ctx, max_version);
    }
    return ctx;
}

struct shake {
    int ok;               /* both sides finished */
    char alpn[32];        /* what the server selected */
    int version;          /* negotiated */
    int reused;           /* the client resumed a session */
    SSL_SESSION *session; /* the client's, for a resumption */
    X509 *served;         /* the server certificate the client saw */
};

static void shake_fini(struct shake *h)
{
    SSL_SESSION_free(h->session);
    X509_free(h->served);
}

/* One handshake over a BIO pair. alpn: wire-format list or NULL. */
static struct shake handshake(SSL_CTX *server, SSL_CTX *client, const char *sni,
                              const unsigned char *alpn, unsigned alpn_len, SSL_SESSION *resume,
                              const char *verify_host)
{
    struct shake h = {0};
    SSL *s = SSL_new(server), *c = SSL_new(client);
    BIO *sb, *cb;
    assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    if (sni)
        SSL_set_tlsext_host_name(c, sni);
    if (alpn)
        SSL_set_alpn_protos(c, alpn, alpn_len);
    if (resume)
        SSL_set_session(c, resume);
    if (verify_host)
        SSL_set1_host(c, verify_host);
    int sdone = 0, cdone = 0, failed = 0;
    for (int i = 0; i < 50 && !(sdone && cdone) && !failed; i++) {
        if (!cdone) {
            int r = SSL_do_handshake(c);
            cdone = r == 1;
            failed |= r <= 0 && SSL_get_error(c, r) != SSL_ERROR_WANT_READ;
        }
        if (!sdone) {
            int r = SSL_do_handshake(s);
            sdone = r == 1;
            failed |= r <= 0 && SSL_get_error(s, r) != SSL_ERROR_WANT_READ;
        }
    }
    ERR_clear_error();
    if (sdone && cdone) {
        h.ok = 1;
        /* TLS 1.3 tickets follow the handshake: a read takes them in */
        char buf[16];
        SSL_write(s, "x", 1);
        assert_int_equal(SSL_read(c, buf, sizeof buf), 1);
        const unsigned char *p;
        unsigned len;
        SSL_get0_alpn_selected(s, &p, &len);
        snprintf(h.alpn, sizeof h.alpn, "%.*s", (int)len, (const char *)p);
        h.version = SSL_version(c);
        h.reused = SSL_session_reused(c);
        h.session = SSL_get1_session(c);
        /* freed without a close_notify, OpenSSL marks the session not
         * resumable (RFC 5246 §7.2.1) */
        SSL_shutdown(c);
        SSL_shutdown(s);
        h.served = SSL_get1_peer_certificate(c);
    }
    SSL_free(s);
    SSL_free(c);
    return h;
}

/* The name the client was served a certificate for. */
static int served_for(const struct shake *h, const char *name)
{
    return h->served && X509_check_host(h->served, name, 0, 0, NULL) == 1;
}

static void test_sni(void **st)
{
    struct config c;
    struct tls_contexts t;
    char err[512] = "";
    tls_config(&c);
    assert_int_equal(tls_contexts_build(&c, &t, err, sizeof err), 0);
    assert_non_null(t.server);
    SSL_CTX *client = test_client(0);
    static const struct {
        const char *sni;
        const char *served; /* a name on the certificate served */
    } rows[] = {
        {"other.test", "other.test"},
        {"OTHER.test", "other.test"},   /* DNS names are case-insensitive */
        {"a.wild.test", "x.wild.test"}, /* the leading wildcard label */
        {"a.b.wild.test", "localhost"}, /* a wildcard covers one label only */
        {"wild.test", "localhost"},
        {"unknown.test", "localhost"}, /* unknown: the default */
        {"localhost", "localhost"},
        {NULL, "localhost"}, /* no SNI: the default */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct shake h = handshake(t.server, client, rows[i].sni, NULL, 0, NULL, NULL);
        if (!h.ok || !served_for(&h, rows[i].served))
            fail_msg("row %zu: SNI %s: ok %d, not served %s", i, rows[i].sni ? rows[i].sni : "-",
                     h.ok, rows[i].served);
        shake_fini(&h);
    }
    SSL_CTX_free(client);
    tls_contexts_free(&t);
    assert_null(t.server);
}

static void test_alpn_and_tickets(void **st)
{
    struct config c;
    struct tls_contexts t;
    char err[512] = "";
    tls_config(&c);
    assert_int_equal(tls_contexts_build(&c, &t, err, sizeof err), 0);
    SSL_CTX *client = test_client(0);
    static const unsigned char h2_h1[] = "\x02h2\x08http/1.1", h2[] = "\x02h2";
    struct shake h = handshake(t.server, client, "localhost", h2_h1, sizeof h2_h1 - 1, NULL, NULL);
    assert_true(h.ok);
    assert_string_equal(h.alpn, "http/1.1"); /* h2 is not offered yet */
    assert_int_equal(h.version, TLS1_3_VERSION);
    assert_false(h.reused);
    /* RFC 7301 §3.2: nothing in common is a fatal alert */
    struct shake only_h2 = handshake(t.server, client, "localhost", h2, sizeof h2 - 1, NULL, NULL);
    assert_false(only_h2.ok);
    /* no ALPN at all is fine */
    struct shake none = handshake(t.server, client, "localhost", NULL, 0, NULL, NULL);
    assert_true(none.ok);
    assert_string_equal(none.alpn, "");
    shake_fini(&none);
    /* resumption with the ticket the first handshake left */
    struct shake again = handshake(t.server, client, "localhost", NULL, 0, h.session, NULL);
    assert_true(again.ok);
    assert_true(again.reused);
    shake_fini(&again);
    shake_fini(&h);
    assert_true(SSL_CTX_get_options(t.server) & SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_free(client);
    tls_contexts_free(&t);
}

static void test_min_version(void **st)
{
    struct config c;
    struct tls_contexts t;
    char err[512] = "";
    static const struct {
        int min;        /* tls.min_version */
        int client_max; /* what the client offers at most */
        int ok;
    } rows[] = {
        {CONFIG_TLS1_2, TLS1_1_VERSION, 0},
        {CONFIG_TLS1_2, TLS1_2_VERSION, 1},
        {CONFIG_TLS1_3, TLS1_2_VERSION, 0},
        {CONFIG_TLS1_3, TLS1_3_VERSION, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tls_config(&c);
        c.tls.min_version = rows[i].min;
        assert_int_equal(tls_contexts_build(&c, &t, err, sizeof err), 0);
        SSL_CTX *client = test_client(rows[i].client_max);
        struct shake h = handshake(t.server, client, "localhost", NULL, 0, NULL, NULL);
        if (h.ok != rows[i].ok)
            fail_msg("row %zu: ok %d", i, h.ok);
        shake_fini(&h);
        SSL_CTX_free(client);
        tls_contexts_free(&t);
    }
}

/* The origin-side context verifies against upstream_tls.ca, by name. */
static void test_upstream_client(void **st)
{
    struct config c;
    struct tls_contexts t;
    char err[512] = "";
    tls_config(&c);
    assert_int_equal(tls_contexts_build(&c, &t, err, sizeof err), 0);
    assert_non_null(t.upstream);
    assert_null(t.peer); /* no https peer */
    assert_int_equal(SSL_CTX_get_verify_mode(t.upstream), SSL_VERIFY_PEER);
    struct shake h = handshake(t.server, t.upstream, "localhost", NULL, 0, NULL, "localhost");
    assert_true(h.ok);
    shake_fini(&h);
    /* the name is checked: other.test's certificate for "localhost" fails */
    struct shake wrong = handshake(t.server, t.upstream, "other.test", NULL, 0, NULL, "localhost");
    assert_false(wrong.ok);
    tls_contexts_free(&t);

    /* an unknown CA fails; verify: false lets it through */
    pem(c.upstream_tls.ca, "unknown-ca.pem");
    assert_int_equal(tls_contexts_build(&c, &t, err, sizeof err), 0);
    struct shake unknown = handshake(t.server, t.upstream, "localhost", NULL, 0, NULL, "localhost");
    assert_false(unknown.ok);
    tls_contexts_free(&t);
    c.upstream_tls.verify = false;
    assert_int_equal(tls_contexts_build(&c, &t, err, sizeof err), 0);
    assert_int_equal(SSL_CTX_get_verify_mode(t.upstream), SSL_VERIFY_NONE);
    struct shake lax = handshake(t.server, t.upstream, "localhost", NULL, 0, NULL, "localhost");
    assert_true(lax.ok);
    shake_fini(&lax);
    tls_contexts_free(&t);

    /* a plain http upstream gets no context; an https peer does */
    tls_config(&c);
    assert_int_equal(config_parse_addr("http://localhost", &c.upstream, true), 0);
    c.mode = MODE_FORWARD;
    c.peer.forward = true;
    assert_int_equal(config_parse_addr("https://localhost:8443", &c.peer.url, true), 0);
    assert_int_equal(tls_contexts_build(&c, &t, err, sizeof err), 0);
    assert_null(t.upstream);
    assert_non_null(t.peer);
    tls_contexts_free(&t);
}

/* A test client presenting a certificate (name: "client", ...; NULL: none). */
static SSL_CTX *test_client_with(const char *name)
{
    SSL_CTX *ctx = test_client(0);
    if (!name)
        return ctx;
    char cert[CONFIG_PATH_MAX], key[CONFIG_PATH_MAX], file[64];
    snprintf(file, sizeof file, "%s.pem", name);
    pem(cert, file);
    snprintf(file, sizeof file, "%s.key", name);
    pem(key, file);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    return ctx;
}

/* tls.client_verify: (mode, what the client presents) -> handshake. */
static void test_client_verify(void **st)
{
    static const struct {
        enum config_client_verify mode;
        const char *client; /* certificate presented; NULL: none */
        int ok;
    } rows[] = {
        {CLIENT_VERIFY_OFF, NULL, 1},
        {CLIENT_VERIFY_OFF, "unknown-ca-client", 1}, /* not asked for, not looked at */
        {CLIENT_VERIFY_OPTIONAL, NULL, 1},
        {CLIENT_VERIFY_OPTIONAL, "client", 1},
        {CLIENT_VERIFY_OPTIONAL, "unknown-ca-client", 0},
        {CLIENT_VERIFY_REQUIRE, NULL, 0},
        {CLIENT_VERIFY_REQUIRE, "client", 1},
        {CLIENT_VERIFY_REQUIRE, "unknown-ca-client", 0},
        {CLIENT_VERIFY_REQUIRE, "server", 0}, /* serverAuth only: no client certificate */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct config c;
        struct tls_contexts t;
        char err[512] = "";
        tls_config(&c);
        c.tls.client_verify = rows[i].mode;
        pem(c.tls.client_ca, "ca.pem");
        assert_int_equal(tls_contexts_build(&c, &t, err, sizeof err), 0);
        SSL_CTX *client = test_client_with(rows[i].client);
        struct shake h = handshake(t.server, client, "localhost", NULL, 0, NULL, NULL);
        if (h.ok != rows[i].ok)
            fail_msg("row %zu: mode %d, client %s: ok %d", i, rows[i].mode,
                     rows[i].client ? rows[i].client : "-", h.ok);
        shake_fini(&h);
        SSL_CTX_free(client);
        tls_contexts_free(&t);
    }
}

/* The pool's key (pool.c): a connection or a session made with one TLS
 * profile (its SSL_CTX: CA, client certificate), name or verification is
 * never handed to a request that needs another, for the same host and
 * port. No configuration reaches two profiles for one host:port today (one
 * upstream in reverse mode, every request to the peer in forward mode with
 * --peer, plain http otherwise), so the comparison is checked here. */
static void test_origin_key(void **st)
{
    /* two profiles, as upstream_tls and peer_tls would build */
    static int profile_a, profile_b;
    const SSL_CTX *a = (const SSL_CTX *)&profile_a, *b = (const SSL_CTX *)&profile_b;
    static const struct origin_key base = {"api.test:443", ORIGIN_HTTPS, "api.test", true, NULL};
    static const struct {
        const char *what;
        struct origin_key other;
        int same;
    } rows[] = {
        {"identical", {"api.test:443", ORIGIN_HTTPS, "api.test", true, NULL}, 1},
        {"another TLS profile", {"api.test:443", ORIGIN_HTTPS, "api.test", true, NULL}, 0},
        {"another SNI", {"api.test:443", ORIGIN_HTTPS, "other.test", true, NULL}, 0},
        {"not verified", {"api.test:443", ORIGIN_HTTPS, "api.test", false, NULL}, 0},
        {"cleartext", {"api.test:443", ORIGIN_HTTP, "", false, NULL}, 0},
        {"another port", {"api.test:8443", ORIGIN_HTTPS, "api.test", true, NULL}, 0},
        {"another host", {"api2.test:443", ORIGIN_HTTPS, "api.test", true, NULL}, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct origin_key x = base, y = rows[i].other;
        x.tls = a;
        y.tls = i == 1 ? b : y.scheme == ORIGIN_HTTPS ? a : NULL;
        if (origin_key_eq(&x, &y) != rows[i].same || origin_key_eq(&y, &x) != rows[i].same)
            fail_msg("row %zu (%s): expected %s", i, rows[i].what,
                     rows[i].same ? "the same key" : "different keys");
    }
    /* cleartext keys: host and port alone (no TLS fields to differ on) */
    struct origin_key p = {"api.test:80", ORIGIN_HTTP, "", false, NULL};
    struct origin_key q = p;
    assert_true(origin_key_eq(&p, &q));
    snprintf(q.host_port, sizeof q.host_port, "api.test:81");
    assert_false(origin_key_eq(&p, &q));
}

/* Errors name the field (flags here: no file), and nothing is left built. */
static void test_errors(void **st)
{
    struct config c;
    struct tls_contexts t;
    char err[512];
    tls_config(&c);
    pem(c.tls.certs[2].key, "mismatched.key");
    assert_int_equal(tls_contexts_build(&c, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "tls.certs[1].key: '"));
    assert_non_null(strstr(err, "mismatched.key' does not match the certificate in '"));
    assert_null(t.server);
    assert_null(t.upstream);
    tls_config(&c);
    pem(c.tls.certs[0].cert, "absent.pem");
    assert_int_equal(tls_contexts_build(&c, &t, err, sizeof err), -1);
    assert_true(!strncmp(err, "--tls-cert: cannot open '", 25));
    tls_config(&c);
    pem(c.upstream_tls.ca, "server.key");
    assert_int_equal(tls_contexts_build(&c, &t, err, sizeof err), -1);
    assert_true(!strncmp(err, "--upstream-ca: '", 16));
    assert_non_null(strstr(err, "no PEM certificate in it"));
    assert_null(t.server); /* built first, freed on the error */
    tls_config(&c);
    c.tls.client_verify = CLIENT_VERIFY_REQUIRE;
    pem(c.tls.client_ca, "absent-ca.pem");
    assert_int_equal(tls_contexts_build(&c, &t, err, sizeof err), -1);
    assert_true(!strncmp(err, "tls.client_ca: cannot open '", 28));
    assert_null(t.server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sni),         cmocka_unit_test(test_alpn_and_tickets),
        cmocka_unit_test(test_min_version), cmocka_unit_test(test_upstream_client),
        cmocka_unit_test(test_errors),      cmocka_unit_test(test_client_verify),
        cmocka_unit_test(test_origin_key),
    };
    return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
