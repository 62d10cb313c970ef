/* The peer handshake's pure parts: signatures, the seen-nonce table
 * (replay protection), the FIFO both sides run in step, dcz. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/sha.h>
#include "peer/peer.h"

static struct slice S(const char *s) {
    return (struct slice){s, strlen(s)};
}

static void
test_sign_verify(void **st)
{
    const unsigned char *key = (const unsigned char *)"s3cret";
    char sig[PEER_SIG_LEN + 1], hdr[200];
    const char *nonce = "AAAAAAAAAAAAAAAAAAAAAA";
    peer_sign(key, 6, S("edge-1"), S("http"), S("POST"), S("/api/x?q=1"), 1000, S(nonce),
              S("sha-256=:AAAA:"), sig);
    assert_int_equal(strlen(sig), PEER_SIG_LEN);
    snprintf(hdr, sizeof hdr, "id=edge-1, scheme=http, ts=1000, nonce=%s, sig=%s", nonce, sig);
    struct peer_claim c;
    assert_int_equal(peer_parse(S(hdr), &c), 0);
    assert_int_equal(c.ts, 1000);
    assert_true(c.id.len == 6 && !memcmp(c.id.p, "edge-1", 6));
    assert_true(c.nonce.len == PEER_NONCE_LEN && !memcmp(c.nonce.p, nonce, PEER_NONCE_LEN));
    assert_true(peer_verify(&c, key, 6, S("POST"), S("/api/x?q=1"), S("sha-256=:AAAA:"), 1030));
    /* the nonce is signed: another one in the same field fails */
    struct peer_claim other = c;
    other.nonce = S("AAAAAAAAAAAAAAAAAAAAAB");
    assert_false(
        peer_verify(&other, key, 6, S("POST"), S("/api/x?q=1"), S("sha-256=:AAAA:"), 1030));
    /* the id is signed: the same capture under another id fails */
    struct peer_claim other_id = c;
    other_id.id = S("edge-2");
    assert_false(
        peer_verify(&other_id, key, 6, S("POST"), S("/api/x?q=1"), S("sha-256=:AAAA:"), 1030));
    /* the scheme is signed: the reverse side keys by it */
    assert_true(c.scheme.len == 4 && !memcmp(c.scheme.p, "http", 4));
    struct peer_claim other_scheme = c;
    other_scheme.scheme = S("https");
    assert_false(
        peer_verify(&other_scheme, key, 6, S("POST"), S("/api/x?q=1"), S("sha-256=:AAAA:"), 1030));
    /* anything changed and it fails */
    assert_false(peer_verify(&c, key, 6, S("GET"), S("/api/x?q=1"), S("sha-256=:AAAA:"), 1030));
    assert_false(peer_verify(&c, key, 6, S("POST"), S("/api/x?q=2"), S("sha-256=:AAAA:"), 1030));
    assert_false(peer_verify(&c, key, 6, S("POST"), S("/api/x?q=1"), S("sha-256=:AAAB:"), 1030));
    assert_false(peer_verify(&c, key, 6, S("POST"), S("/api/x?q=1"), S(""), 1030));
    assert_false(peer_verify(&c, (const unsigned char *)"s3creT", 6, S("POST"), S("/api/x?q=1"),
                             S("sha-256=:AAAA:"), 1030));
    /* a minute either way, not more */
    assert_true(peer_verify(&c, key, 6, S("POST"), S("/api/x?q=1"), S("sha-256=:AAAA:"), 940));
    assert_false(peer_verify(&c, key, 6, S("POST"), S("/api/x?q=1"), S("sha-256=:AAAA:"), 1061));
    assert_false(peer_verify(&c, key, 6, S("POST"), S("/api/x?q=1"), S("sha-256=:AAAA:"), 939));
    static const char *const bad[] = {
        "", "id=a, ts=1", "id=a, sig=x", "ts=1, sig=x",
        "id=a, scheme=http, ts=1x, sig=x, nonce=AAAAAAAAAAAAAAAAAAAAAA",
        "id=, scheme=http, ts=1, sig=x, nonce=AAAAAAAAAAAAAAAAAAAAAA",
        /* each row with a scheme, so it fails for the reason it names;
         * version 1, before nonces: refused */
        "id=a, scheme=http, ts=1, sig=x",
        /* a nonce is 22 base64url characters */
        "id=a, scheme=http, ts=1, sig=x, nonce=AAAAAAAAAAAAAAAAAAAAA",
        "id=a, scheme=http, ts=1, sig=x, nonce=AAAAAAAAAAAAAAAAAAAAAAA",
        "id=a, scheme=http, ts=1, sig=x, nonce=AAAAAAAAAAAAAAAAAAAAA+",
        "id=a, scheme=http, ts=1, sig=x, nonce=AAAAAAAAAAAAAAAAAAAAA=",
        "id=a, scheme=http, ts=1, sig=x, nonce=", "garbage",
        /* version 3: a scheme, http or https */
        "id=a, ts=1, sig=x, nonce=AAAAAAAAAAAAAAAAAAAAAA",
        "id=a, scheme=ftp, ts=1, sig=x, nonce=AAAAAAAAAAAAAAAAAAAAAA",
        "id=a, scheme=HTTPS, ts=1, sig=x, nonce=AAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (peer_parse(S(bad[i]), &c) == 0)
            fail_msg("'%s' parsed", bad[i]);
}

static void test_nonce_encode(void **st)
{
    (void)st;
    unsigned char r[16];
    char out[PEER_NONCE_LEN + 1];
    memset(r, 0, sizeof r);
    peer_nonce_encode(r, out);
    assert_string_equal(out, "AAAAAAAAAAAAAAAAAAAAAA");
    memset(r, 0xff, sizeof r);
    peer_nonce_encode(r, out);
    assert_string_equal(out, "_____________________w"); /* RFC 4648 §5, unpadded */
    for (unsigned i = 0; i < 16; i++)
        r[i] = (unsigned char)(i * 17 + 3);
    peer_nonce_encode(r, out);
    char hdr[120];
    snprintf(hdr, sizeof hdr, "id=a, scheme=http, ts=1, sig=x, nonce=%s", out);
    struct peer_claim c;
    assert_int_equal(peer_parse(S(hdr), &c), 0); /* what we make, we accept */
}

/* (nonce, ts, now) -> verdict, in order, on one table of capacity 3. */
static void test_nonce_table(void **st)
{
    (void)st;
    static const struct {
        const char *nonce;
        int64_t ts, now;
        enum peer_nonce_result want;
    } rows[] = {
        {"AAAAAAAAAAAAAAAAAAAAA1", 1000, 1000, PEER_NONCE_FRESH},
        {"AAAAAAAAAAAAAAAAAAAAA1", 1000, 1000, PEER_NONCE_REPLAYED},
        /* replayed at the last second its signature verifies */
        {"AAAAAAAAAAAAAAAAAAAAA1", 1000, 1000 + PEER_SKEW_MAX, PEER_NONCE_REPLAYED},
        {"AAAAAAAAAAAAAAAAAAAAA2", 1010, 1010, PEER_NONCE_FRESH},
        {"AAAAAAAAAAAAAAAAAAAAA3", 1020, 1020, PEER_NONCE_FRESH},
        /* capacity + 1 inside the window: refused, none forgotten */
        {"AAAAAAAAAAAAAAAAAAAAA4", 1030, 1030, PEER_NONCE_FULL},
        {"AAAAAAAAAAAAAAAAAAAAA1", 1000, 1030, PEER_NONCE_REPLAYED},
        {"AAAAAAAAAAAAAAAAAAAAA2", 1010, 1030, PEER_NONCE_REPLAYED},
        {"AAAAAAAAAAAAAAAAAAAAA3", 1020, 1030, PEER_NONCE_REPLAYED},
        /* a signature from the future (clock skew) is kept until its own ts + 60 */
        {"AAAAAAAAAAAAAAAAAAAAA4", 1090, 1061, PEER_NONCE_FRESH}, /* ...A1 aged out */
        {"AAAAAAAAAAAAAAAAAAAAA5", 1061, 1061, PEER_NONCE_FULL},
        {"AAAAAAAAAAAAAAAAAAAAA4", 1090, 1149, PEER_NONCE_REPLAYED},
        /* past its window a nonce may come again (its old signature cannot) */
        {"AAAAAAAAAAAAAAAAAAAAA1", 1200, 1200, PEER_NONCE_FRESH},
        {"AAAAAAAAAAAAAAAAAAAAA1", 1200, 1200, PEER_NONCE_REPLAYED},
        {"short", 1200, 1200, PEER_NONCE_MALFORMED},
    };
    struct peer_nonces *t = peer_nonces_new(3);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        enum peer_nonce_result got =
            peer_nonces_check(t, S(rows[i].nonce), rows[i].ts, rows[i].now);
        if (got != rows[i].want)
            fail_msg("row %zu (%s ts=%lld now=%lld): got %d, want %d", i, rows[i].nonce,
                     (long long)rows[i].ts, (long long)rows[i].now, got, rows[i].want);
    }
    assert_true(peer_nonces_count(t) <= 3);
    peer_nonces_free(&t);
    assert_null(t);
}

/* Growth past the first slots, and a steady stream: memory stays bounded
 * by the capacity, every nonce inside the window is still refused. */
static void test_nonce_table_grows_and_ages(void **st)
{
    (void)st;
    const uint32_t cap = 1000;
    struct peer_nonces *t = peer_nonces_new(cap);
    char n[PEER_NONCE_LEN + 1];
    unsigned char r[16] = {0};
    int64_t now = 5000;
    for (uint32_t i = 0; i < 20 * cap; i++) {
        if (i % 50 == 0)
            now++; /* 50 a second: 3000 a minute, three times the capacity */
        memcpy(r, &i, sizeof i);
        peer_nonce_encode(r, n);
        enum peer_nonce_result res = peer_nonces_check(t, S(n), now, now);
        assert_true(res == PEER_NONCE_FRESH || res == PEER_NONCE_FULL);
        assert_true(peer_nonces_count(t) <= cap);
        if (res == PEER_NONCE_FRESH)
            assert_int_equal(peer_nonces_check(t, S(n), now, now), PEER_NONCE_REPLAYED);
    }
    peer_nonces_free(&t);
}

static void digest_of(int n, unsigned char d[32])
{
    char s[16];
    snprintf(s, sizeof s, "%d", n);
    SHA256((const unsigned char *)s, strlen(s), d);
}

static void test_fifo(void **st)
{
    const uint64_t cap = 100 + 3 * PEER_FIFO_ENTRY_COST;
    struct peer_fifo *bodies = peer_fifo_new(cap, 1), *mirror = peer_fifo_new(cap, 0);
    unsigned char d[32];
    char body[60];
    /* the same insertions on both sides: the same verdicts, always */
    for (int i = 0; i < 500; i++) {
        int n = (i * 7919) % 37, len = (n * 13) % 60;
        digest_of(n, d);
        memset(body, 'a' + n % 26, (size_t)len);
        peer_fifo_insert(bodies, d, body, (size_t)len);
        peer_fifo_insert(mirror, d, NULL, (size_t)len);
        for (int k = 0; k < 37; k++) {
            unsigned char q[32];
            digest_of(k, q);
            const void *b;
            size_t bl;
            int held = peer_fifo_find(bodies, q, &b, &bl);
            if (held != peer_fifo_find(mirror, q, NULL, NULL))
                fail_msg("step %d: the mirror disagrees on %d", i, k);
            if (held &&
                (bl != (size_t)((k * 13) % 60) || (bl && ((const char *)b)[0] != 'a' + k % 26)))
                fail_msg("step %d: wrong body for %d", i, k);
        }
    }
    /* FIFO order and the byte bound: each entry costs 30 + the entry cost */
    const uint64_t three = 3 * peer_fifo_cost(30) + 10;
    peer_fifo_reset(bodies, three);
    for (int n = 0; n < 5; n++) {
        digest_of(n, d);
        peer_fifo_insert(bodies, d, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 30);
    }
    for (int n = 0; n < 5; n++) {
        digest_of(n, d);
        assert_int_equal(peer_fifo_find(bodies, d, NULL, NULL), n >= 2); /* 3 fit */
    }
    assert_int_equal(peer_fifo_count(bodies), 3);
    assert_int_equal(peer_fifo_used(bodies), 3 * peer_fifo_cost(30));
    digest_of(99, d);
    /* a body that fits but whose cost does not: never held */
    peer_fifo_insert(bodies, d, NULL, three - PEER_FIFO_ENTRY_COST + 1);
    assert_false(peer_fifo_find(bodies, d, NULL, NULL));
    digest_of(2, d);
    assert_true(peer_fifo_find(bodies, d, NULL, NULL));
    peer_fifo_free(bodies);
    peer_fifo_free(mirror);
    /* issue 10, finding 6: many tiny distinct bodies stay within the
     * capacity, counted with the entries' own cost, on both sides alike */
    bodies = peer_fifo_new(16384, 1);
    mirror = peer_fifo_new(16384, 0);
    for (int n = 0; n < 5000; n++) {
        digest_of(n, d);
        peer_fifo_insert(bodies, d, "x", 1);
        peer_fifo_insert(mirror, d, NULL, 1);
        assert_true(peer_fifo_used(bodies) <= 16384);
    }
    assert_int_equal(peer_fifo_count(bodies), 16384 / peer_fifo_cost(1));
    assert_int_equal(peer_fifo_count(mirror), peer_fifo_count(bodies));
    assert_int_equal(peer_fifo_used(mirror), peer_fifo_used(bodies));
    assert_int_equal(peer_fifo_cost(UINT64_MAX - 1), UINT64_MAX); /* no wrap */
    peer_fifo_free(bodies);
    peer_fifo_free(mirror);
    /* many entries: the index grows */
    struct peer_fifo *big = peer_fifo_new(1 << 30, 0);
    for (int n = 0; n < 5000; n++) {
        digest_of(n, d);
        peer_fifo_insert(big, d, NULL, 10);
    }
    for (int n = 0; n < 5000; n += 97) {
        digest_of(n, d);
        assert_true(peer_fifo_find(big, d, NULL, NULL));
    }
    peer_fifo_free(big);
}

/* Idem-Store from the reverse side: both members or nothing learned. */
static void test_store_field(void **st)
{
    static const struct {
        const char *value, *epoch;
        uint64_t capacity;
        int rc;
    } rows[] = {
        {"epoch=0123456789abcdef, capacity=67108864", "0123456789abcdef", 67108864, 0},
        {"capacity=5,epoch=e1", "e1", 5, 0},
        {"epoch=e1", "", 0, -1},
        {"capacity=5", "", 0, -1},
        {"epoch=0123456789abcdef0, capacity=5", "", 0, -1}, /* 17 chars */
        {"epoch=a b, capacity=5", "", 0, -1},
        {"epoch=e, capacity=5x", "", 0, -1},
        {"epoch=e, capacity=-5", "", 0, -1},
        {"epoch=e, capacity=99999999999999999999999", "e", UINT64_C(1) << 63, 0},
        {"epoch=e, capacity=18446744073709551616", "e", UINT64_C(1) << 63, 0},
        {"", "", 0, -1},
        {"\"epoch=e, capacity=5", "", 0, -1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char epoch[PEER_EPOCH_MAX + 1] = "";
        uint64_t cap = 0;
        int rc =
            peer_store_parse((struct slice){rows[i].value, strlen(rows[i].value)}, epoch, &cap);
        if (rc != rows[i].rc ||
            (rc == 0 && (strcmp(epoch, rows[i].epoch) || cap != rows[i].capacity)))
            fail_msg("row %zu '%s': rc %d epoch '%s' capacity %llu", i, rows[i].value, rc, epoch,
                     (unsigned long long)cap);
    }
}

static void test_dcz(void **st)
{
    char dict[20000], body[20000];
    for (size_t i = 0; i < sizeof dict; i++)
        dict[i] = (char)('a' + (i * 7 + i / 100) % 26);
    memcpy(body, dict, sizeof body);
    memcpy(body + 5000, "CHANGED", 7);
    memcpy(body + 15000, "ALSO", 4);
    unsigned char dd[32], other[32];
    SHA256((const unsigned char *)dict, sizeof dict, dd);
    memset(other, 1, 32);
    size_t n, m;
    unsigned char *z = peer_dcz_encode(body, sizeof body, dict, sizeof dict, dd, &n);
    assert_non_null(z);
    assert_true(n < 200); /* two small edits of a 20 KB body */
    unsigned char *back = peer_dcz_decode(z, n, dict, sizeof dict, dd, 1 << 20, &m);
    assert_non_null(back);
    assert_int_equal(m, sizeof body);
    assert_memory_equal(back, body, m);
    free(back);
    assert_null(peer_dcz_decode(z, n, dict, sizeof dict, other, 1 << 20, &m));  /* other dict */
    assert_null(peer_dcz_decode(z, n - 1, dict, sizeof dict, dd, 1 << 20, &m)); /* truncated */
    assert_null(peer_dcz_decode(z, n, dict, sizeof dict, dd, 1000, &m));        /* over max */
    assert_null(peer_dcz_decode(z, 20, dict, sizeof dict, dd, 1 << 20, &m));
    free(z);
    char field[64];
    peer_digest_field(dd, field);
    unsigned char back_d[32];
    assert_int_equal(peer_digest_parse(S(field), back_d), 0);
    assert_memory_equal(back_d, dd, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify), cmocka_unit_test(test_nonce_encode),
        cmocka_unit_test(test_nonce_table), cmocka_unit_test(test_nonce_table_grows_and_ages),
        cmocka_unit_test(test_fifo),        cmocka_unit_test(test_dcz),
        cmocka_unit_test(test_store_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
