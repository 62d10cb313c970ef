/* The TLS contexts: certificates, keys and CAs read once from the
 * configuration into OpenSSL SSL_CTXs that the workers share read-only.
 * Server side: certificate selection by SNI (RFC 6066 §3), ALPN (RFC 7301),
 * session tickets (RFC 8446 §4.6.1, RFC 5077), no renegotiation. Client
 * side (origin, peer): the CA store, verification, a client certificate.
 * Every file is opened here, so that an error names the field that gave it. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "server/tls_ctx.h"

_Static_assert(CONFIG_TLS1_2 == TLS1_2_VERSION && CONFIG_TLS1_3 == TLS1_3_VERSION,
               "config.h's protocol numbers are OpenSSL's");

/* A PEM file larger than this is no certificate, key or CA bundle we want
 * (the Mozilla bundle is about 200 KiB). */
#define TLS_PEM_FILE_MAX (16u << 20)

/* ---- naming what went wrong ----------------------------------------- */

/* Which configuration value a file came from: its field, the line the
 * file set it on (0: a flag or a default) and its flag, if it has one. */
struct tls_source {
    const struct config *cfg;
    char field[64];
    unsigned line;
    const char *flag;
};

/* "FILE:LINE: FIELD: reason", or "--flag: reason" when the flag set it. */
static int fail(const struct tls_source *s, char *err, size_t errlen, const char *reason)
{
    if (s->line && s->cfg->file[0])
        snprintf(err, errlen, "%s:%u: %s: %s", s->cfg->file, s->line, s->field, reason);
    else
        snprintf(err, errlen, "%s: %s", s->flag ? s->flag : s->field, reason);
    ERR_clear_error();
    return -1;
}

/* The deepest OpenSSL reason, for the rare error we cannot say better. */
static const char *openssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown OpenSSL error";
}

/* ---- reading PEM files ---------------------------------------------- */

/* The whole file in a memory BIO, so that "cannot open" (with errno) and
 * "not PEM" are told apart. NULL with the reason in why. */
static BIO *read_file(const char *path, char *why, size_t whylen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(why, whylen, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    BIO *mem = BIO_new(BIO_s_mem());
    char buf[16384];
    size_t got, total = 0;
    int bad = !mem;
    while (!bad && (got = fread(buf, 1, sizeof buf, fp)) > 0) {
        total += got;
        bad = total > TLS_PEM_FILE_MAX || BIO_write(mem, buf, (int)got) != (int)got;
    }
    if (!bad && ferror(fp)) {
        snprintf(why, whylen, "cannot read '%s': %s", path, strerror(errno));
        bad = 2;
    } else if (bad) {
        snprintf(why, whylen, "'%s': larger than %u MiB or out of memory", path,
                 TLS_PEM_FILE_MAX >> 20);
    }
    fclose(fp);
    if (bad) {
        BIO_free(mem);
        return NULL;
    }
    return mem;
}

/* Never ask a terminal for a pass phrase: an encrypted key is an error. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

/* A certificate, the chain after it, and its private key. */
struct tls_identity {
    X509 *leaf;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
};

static void identity_fini(struct tls_identity *id)
{
    X509_free(id->leaf);
    sk_X509_pop_free(id->chain, X509_free);
    EVP_PKEY_free(id->key);
    memset(id, 0, sizeof *id);
}

/* The certificate file: the leaf first, then its chain (as nginx's
 * ssl_certificate and OpenSSL's use_certificate_chain_file read it). */
static int read_cert_chain(const char *path, const struct tls_source *s, struct tls_identity *id,
                           char *err, size_t errlen)
{
    char why[700];
    BIO *b = read_file(path, why, sizeof why);
    if (!b)
        return fail(s, err, errlen, why);
    id->leaf = PEM_read_bio_X509_AUX(b, NULL, no_passphrase, NULL);
    if (!id->leaf) {
        BIO_free(b);
        snprintf(why, sizeof why, "'%s': no PEM certificate in it", path);
        return fail(s, err, errlen, why);
    }
    id->chain = sk_X509_new_null();
    X509 *x;
    while (id->chain && (x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL)
        if (!sk_X509_push(id->chain, x))
            X509_free(x);
    BIO_free(b);
    /* the loop ends on "no start line" at the end of the file: not an error */
    unsigned long e = ERR_peek_last_error();
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        snprintf(why, sizeof why, "'%s': a certificate after the first is not valid PEM: %s", path,
                 openssl_reason());
        return fail(s, err, errlen, why);
    }
    ERR_clear_error();
    return 0;
}

static int read_key(const char *path, const struct tls_source *s, struct tls_identity *id,
                    char *err, size_t errlen)
{
    char why[700];
    BIO *b = read_file(path, why, sizeof why);
    if (!b)
        return fail(s, err, errlen, why);
    id->key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    if (!id->key) {
        snprintf(why, sizeof why, "'%s': no PEM private key in it (or it is encrypted)", path);
        return fail(s, err, errlen, why);
    }
    return 0;
}

/* A certificate and its key, checked to belong together. */
static int read_identity(const struct config_tls_cert *tc, struct tls_source *cert_src,
                         struct tls_source *key_src, struct tls_identity *id, char *err,
                         size_t errlen)
{
    if (read_cert_chain(tc->cert, cert_src, id, err, errlen) < 0 ||
        read_key(tc->key, key_src, id, err, errlen) < 0)
        return -1;
    if (X509_check_private_key(id->leaf, id->key) != 1) {
        char why[1200];
        snprintf(why, sizeof why, "'%s' does not match the certificate in '%s'", tc->key, tc->cert);
        return fail(key_src, err, errlen, why);
    }
    return 0;
}

/* The sources of tls.certs[i]: certs[0] is tls.cert/tls.key (or the
 * flags), the others tls.certs[i - 1]. */
static void cert_sources(const struct config *cfg, unsigned i, struct tls_source *cert,
                         struct tls_source *key)
{
    const struct config_tls_cert *tc = &cfg->tls.certs[i];
    *cert = (struct tls_source){cfg, "", tc->line, i == 0 ? "--tls-cert" : NULL};
    *key = (struct tls_source){cfg, "", tc->key_line, i == 0 ? "--tls-key" : NULL};
    if (i == 0) {
        strcpy(cert->field, "tls.cert");
        strcpy(key->field, "tls.key");
    } else {
        snprintf(cert->field, sizeof cert->field, "tls.certs[%u].cert", i - 1);
        snprintf(key->field, sizeof key->field, "tls.certs[%u].key", i - 1);
    }
}

static int load_ca(SSL_CTX *ctx, const char *path, const struct tls_source *s, char *err,
                   size_t errlen);

/* ---- server: certificates by SNI ------------------------------------ */

/* Every certificate of tls.certs, the default first; owned by the server
 * SSL_CTX (freed with it through its ex_data). */
struct sni_table {
    struct tls_identity ids[CONFIG_TLS_CERTS_MAX];
    unsigned n;
};

static int sni_index = -1;

static void sni_table_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
    struct sni_table *t = ptr;
    if (!t)
        return;
    for (unsigned i = 0; i < t->n; i++)
        identity_fini(&t->ids[i]);
    free(t);
}

/* The certificate for a client's server name: a SAN dNSName equal to it,
 * else one whose leading "*." label covers it (RFC 6125 §6.4.3: the
 * wildcard is a whole left-most label and matches exactly one label).
 * Subject CNs are not looked at (RFC 6125 §6.4.4 keeps them for clients
 * that have no SAN). -1: none, the default stays. */
static int sni_pick(const struct sni_table *t, const char *name)
{
    size_t len = strlen(name);
    static const unsigned int passes[] = {
        X509_CHECK_FLAG_NO_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT};
    for (unsigned p = 0; p < 2; p++)
        for (unsigned i = 0; i < t->n; i++)
            if (X509_check_host(t->ids[i].leaf, name, len, passes[p], NULL) == 1)
                return (int)i;
    return -1;
}

/* An unknown or absent name is no error: the default certificate answers
 * (as nginx's default_server does), and the client judges it. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    const struct sni_table *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name || !*name)
        return SSL_TLSEXT_ERR_OK;
    int i = sni_pick(t, name);
    if (i <= 0) /* none, or the default already in place */
        return SSL_TLSEXT_ERR_OK;
    const struct tls_identity *id = &t->ids[i];
    if (SSL_use_cert_and_key(ssl, id->leaf, id->key, id->chain, 1) != 1) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN protocol lists in wire format, our preference first. */
static const unsigned char alpn_http1[] = "\x08http/1.1";
static const unsigned char alpn_h2_http1[] = "\x02h2\x08http/1.1";

/* RFC 7301 §3.2: the server picks; nothing in common is a fatal
 * no_application_protocol alert. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    const unsigned char *ours = arg;
    unsigned ours_len = ours == alpn_h2_http1 ? sizeof alpn_h2_http1 - 1 : sizeof alpn_http1 - 1;
    unsigned char *picked;
    if (SSL_select_next_proto(&picked, outlen, ours, ours_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = picked;
    return SSL_TLSEXT_ERR_OK;
}

/* tls.client_verify (nginx's ssl_verify_client): the CertificateRequest
 * names the subjects of tls.client_ca (RFC 8446 §4.2.4, so that a client
 * holding several certificates picks the right one), and a certificate
 * presented must chain to one of them, for TLS client use (OpenSSL checks
 * the extended key usage against "ssl_client" on the server side). */
static int client_verification(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
    struct tls_source ca = {cfg, "tls.client_ca", cfg->tls.client_ca_line, NULL};
    /* read even when off, so that a bad file is found before it is used */
    if (cfg->tls.client_ca[0] && load_ca(ctx, cfg->tls.client_ca, &ca, err, errlen) < 0)
        return -1;
    if (cfg->tls.client_verify == CLIENT_VERIFY_OFF)
        return 0;
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
    for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (x && SSL_CTX_add_client_CA(ctx, x) != 1)
            return fail(&ca, err, errlen, openssl_reason());
    }
    int mode = SSL_VERIFY_PEER;
    if (cfg->tls.client_verify == CLIENT_VERIFY_REQUIRE)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    return 0;
}

/* tls.ciphers (TLS 1.2) and tls.ciphersuites (TLS 1.3). OpenSSL skips a
 * TLS 1.3 name it does not know, and a list of only such names would turn
 * TLS 1.3 off without a word: each name must be one it took. */
static int cipher_choice(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
    char why[700];
    struct tls_source ciphers = {cfg, "tls.ciphers", cfg->tls.ciphers_line, NULL};
    struct tls_source suites = {cfg, "tls.ciphersuites", cfg->tls.ciphersuites_line, NULL};
    if (cfg->tls.ciphers[0] && SSL_CTX_set_cipher_list(ctx, cfg->tls.ciphers) != 1) {
        snprintf(why, sizeof why, "no cipher OpenSSL knows in '%.600s'", cfg->tls.ciphers);
        return fail(&ciphers, err, errlen, why);
    }
    if (!cfg->tls.ciphersuites[0])
        return 0;
    if (SSL_CTX_set_ciphersuites(ctx, cfg->tls.ciphersuites) != 1) {
        snprintf(why, sizeof why, "'%.600s': %s", cfg->tls.ciphersuites, openssl_reason());
        return fail(&suites, err, errlen, why);
    }
    STACK_OF(SSL_CIPHER) *have = SSL_CTX_get_ciphers(ctx);
    const char *p = cfg->tls.ciphersuites;
    while (*p) {
        size_t len = strcspn(p, ":");
        int found = 0;
        for (int i = 0; !found && i < sk_SSL_CIPHER_num(have); i++) {
            const char *name = SSL_CIPHER_standard_name(sk_SSL_CIPHER_value(have, i));
            found = name && strlen(name) == len && !strncmp(name, p, len);
        }
        if (!found) {
            snprintf(why, sizeof why,
                     "unknown TLS 1.3 cipher suite '%.*s' (e.g. TLS_AES_128_GCM_SHA256)",
                     (int)(len > 200 ? 200 : len), p);
            return fail(&suites, err, errlen, why);
        }
        p += len + (p[len] == ':');
    }
    return 0;
}

/* The client listeners' context. offer_h2: ALPN offers "h2" before
 * "http/1.1" (for the HTTP/2 issue; false until then). */
static SSL_CTX *server_ctx(const struct config *cfg, bool offer_h2, char *err, size_t errlen)
{
    struct tls_source ctx_src = {cfg, "tls", 0, NULL};
    struct sni_table *t = calloc(1, sizeof *t);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!t || !ctx || sni_index < 0) {
        free(t);
        SSL_CTX_free(ctx);
        fail(&ctx_src, err, errlen, "cannot create the TLS context (out of memory)");
        return NULL;
    }
    /* the table belongs to the context from here: freed with it */
    if (SSL_CTX_set_ex_data(ctx, sni_index, t) != 1) {
        free(t);
        SSL_CTX_free(ctx);
        fail(&ctx_src, err, errlen, "cannot create the TLS context (out of memory)");
        return NULL;
    }
    /* certs[0] empty: tls.certs alone, its first is the default */
    for (unsigned i = cfg->tls.certs[0].cert[0] ? 0 : 1; i < cfg->tls.ncerts; i++) {
        struct tls_source cs, ks;
        cert_sources(cfg, i, &cs, &ks);
        if (read_identity(&cfg->tls.certs[i], &cs, &ks, &t->ids[t->n], err, errlen) < 0) {
            t->n++; /* what was read is freed with the table */
            goto fail;
        }
        t->n++;
    }
    if (t->n == 0) {
        fail(&ctx_src, err, errlen, "no certificate (tls.cert and tls.key)");
        goto fail;
    }
    if (SSL_CTX_use_cert_and_key(ctx, t->ids[0].leaf, t->ids[0].key, t->ids[0].chain, 1) != 1) {
        struct tls_source cs, ks;
        cert_sources(cfg, cfg->tls.certs[0].cert[0] ? 0 : 1, &cs, &ks);
        fail(&cs, err, errlen, openssl_reason());
        goto fail;
    }
    if (t->n > 1) {
        SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
        SSL_CTX_set_tlsext_servername_arg(ctx, t);
    }
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, (void *)(offer_h2 ? alpn_h2_http1 : alpn_http1));
    struct tls_source ver = {cfg, "tls.min_version", 0, NULL};
    if (SSL_CTX_set_min_proto_version(ctx, cfg->tls.min_version) != 1) {
        fail(&ver, err, errlen, openssl_reason());
        goto fail;
    }
    if (client_verification(ctx, cfg, err, errlen) < 0)
        goto fail;
    /* Resumption by stateless tickets (the keys live in this context,
     * shared by the workers); no server-side cache to lock across them. */
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (!cfg->tls.session_tickets) {
        /* no ticket at all (none sent after a TLS 1.3 handshake either),
         * and no cache: every connection is a full handshake, as nginx's
         * ssl_session_tickets off without an ssl_session_cache */
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    if (cipher_choice(ctx, cfg, err, errlen) < 0)
        goto fail;
    static const unsigned char sid_ctx[] = "idemcache";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    /* renegotiation is a client-driven CPU cost we have no use for */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    return ctx;
fail:
    SSL_CTX_free(ctx); /* frees the table too */
    return NULL;
}

/* ---- clients: origin and peer --------------------------------------- */

/* Every certificate of a PEM bundle into the context's trust store. */
static int load_ca(SSL_CTX *ctx, const char *path, const struct tls_source *s, char *err,
                   size_t errlen)
{
    char why[700];
    BIO *b = read_file(path, why, sizeof why);
    if (!b)
        return fail(s, err, errlen, why);
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int added = 0, bad = 0;
    for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *xi = sk_X509_INFO_value(infos, i);
        if (xi->x509)
            bad |= X509_STORE_add_cert(store, xi->x509) != 1, added++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    if (!added || bad) {
        snprintf(why, sizeof why, "'%s': %s", path,
                 added ? openssl_reason() : "no PEM certificate in it");
        return fail(s, err, errlen, why);
    }
    ERR_clear_error();
    return 0;
}

/* Toward an origin (upstream_tls) or the reverse peer (peer_tls). The
 * name to verify is set per connection (SSL_set1_host) by the transport;
 * sessions are kept by it per pool key, not in OpenSSL's cache. */
static SSL_CTX *client_ctx(const struct config *cfg, const struct config_tls_client *tc,
                           const char *prefix, const char *ca_flag, char *err, size_t errlen)
{
    struct tls_source ca = {cfg, "", tc->line, ca_flag};
    struct tls_source cs = {cfg, "", tc->client.line, NULL};
    struct tls_source ks = {cfg, "", tc->client.key_line, NULL};
    snprintf(ca.field, sizeof ca.field, "%s.ca", prefix);
    snprintf(cs.field, sizeof cs.field, "%s.cert", prefix);
    snprintf(ks.field, sizeof ks.field, "%s.key", prefix);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        fail(&ca, err, errlen, "cannot create the TLS context (out of memory)");
        return NULL;
    }
    struct tls_identity id = {0};
    if (tc->ca[0]) {
        if (load_ca(ctx, tc->ca, &ca, err, errlen) < 0)
            goto fail;
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        fail(&ca, err, errlen, "cannot load the system CA store");
        goto fail;
    }
    SSL_CTX_set_verify(ctx, tc->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    /* a wildcard is a whole left-most label (RFC 6125 §6.4.3) */
    X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(ctx), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (tc->client.cert[0]) {
        if (read_identity(&tc->client, &cs, &ks, &id, err, errlen) < 0)
            goto fail;
        if (SSL_CTX_use_cert_and_key(ctx, id.leaf, id.key, id.chain, 1) != 1) {
            fail(&cs, err, errlen, openssl_reason());
            goto fail;
        }
        identity_fini(&id); /* the context holds its own references */
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    return ctx;
fail:
    identity_fini(&id);
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- the whole set -------------------------------------------------- */

static bool client_files_set(const struct config_tls_client *tc)
{
    return tc->ca[0] || tc->client.cert[0] || tc->client.key[0];
}

int tls_contexts_build(const struct config *cfg, struct tls_contexts *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* called once, before the workers start: no race on the index */
    if (sni_index < 0)
        sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_table_free);
    bool any_cert = false;
    for (unsigned i = 0; i < cfg->tls.ncerts; i++)
        any_cert |= cfg->tls.certs[i].cert[0] != 0;
    /* Certificates given without tls.listen (e.g. --check-config on a file
     * whose listeners come from flags) are read and checked all the same. */
    if (cfg->tls.nlisten || any_cert) {
        out->server = server_ctx(cfg, false, err, errlen);
        if (!out->server)
            goto fail;
    }
    /* A client context is built when used, and also when only its files
     * are set, so that a bad file is found before the flag that uses it. */
    bool origin_tls = cfg->mode == MODE_REVERSE && cfg->has_upstream && cfg->upstream.tls;
    if (origin_tls || client_files_set(&cfg->upstream_tls)) {
        out->upstream =
            client_ctx(cfg, &cfg->upstream_tls, "upstream_tls", "--upstream-ca", err, errlen);
        if (!out->upstream)
            goto fail;
        if (!origin_tls) {
            SSL_CTX_free(out->upstream);
            out->upstream = NULL;
        }
    }
    bool peer_tls = cfg->peer.forward && cfg->peer.url.tls;
    if (peer_tls || client_files_set(&cfg->peer_tls)) {
        out->peer = client_ctx(cfg, &cfg->peer_tls, "peer_tls", NULL, err, errlen);
        if (!out->peer)
            goto fail;
        if (!peer_tls) {
            SSL_CTX_free(out->peer);
            out->peer = NULL;
        }
    }
    return 0;
fail:
    tls_contexts_free(out);
    return -1;
}

void tls_contexts_free(struct tls_contexts *t)
{
    SSL_CTX_free(t->server);
    SSL_CTX_free(t->upstream);
    SSL_CTX_free(t->peer);
    memset(t, 0, sizeof *t);
}
