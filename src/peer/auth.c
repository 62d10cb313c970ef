/* Peer authentication: an HMAC over who asks and what, with a
 * timestamp so a captured request goes stale within a minute, and a nonce
 * the reverse side remembers for that minute (nonce.c) so it is not
 * accepted twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "peer/peer.h"
#include "http/chars.h"
#include "http/digest_field.h"
#include "http/fields.h"

void peer_sign(const unsigned char *secret, size_t secret_len, struct slice id, struct slice scheme,
               struct slice method, struct slice target, int64_t ts, struct slice nonce,
               struct slice digest, char sig[PEER_SIG_LEN + 1])
{
    char tsbuf[24];
    int tl = snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)ts);
    /* The id is signed first: nonces are remembered per id, so an unsigned
     * id let a capture replay once more under every other id sharing the
     * secret (finding 4). The scheme is the one the forward side keys the
     * request under, which the reverse side keys and forwards by. */
    const struct slice parts[] = {id, scheme, method, target, {tsbuf, (size_t)tl}, nonce, digest};
    const size_t nparts = sizeof parts / sizeof parts[0];
    size_t len = nparts - 1; /* the "\n" between parts */
    for (size_t i = 0; i < nparts; i++)
        len += parts[i].len;
    unsigned char *msg = malloc(len);
    if (!msg)
        abort();
    size_t p = 0;
    for (size_t i = 0; i < nparts; i++) {
        if (i)
            msg[p++] = '\n';
        if (parts[i].len)
            memcpy(msg + p, parts[i].p, parts[i].len);
        p += parts[i].len;
    }
    unsigned char mac[32];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), secret, (int)secret_len, msg, len, mac, &ml);
    free(msg);
    EVP_EncodeBlock((unsigned char *)sig, mac, 32);
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void peer_nonce_encode(const unsigned char random[16], char out[PEER_NONCE_LEN + 1])
{
    /* RFC 4648 §5, unpadded: 5 groups of 3 bytes, then 1 byte in 2 chars */
    size_t o = 0;
    for (int i = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)random[i] << 16 | (uint32_t)random[i + 1] << 8 | random[i + 2];
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        out[o++] = b64url[v >> 6 & 63];
        out[o++] = b64url[v & 63];
    }
    out[o++] = b64url[random[15] >> 2];
    out[o++] = b64url[(random[15] & 3) << 4];
    out[o] = 0;
}

static int is_nonce(struct slice v)
{
    if (v.len != PEER_NONCE_LEN)
        return 0;
    for (size_t i = 0; i < v.len; i++)
        if (!memchr(b64url, v.p[i], sizeof b64url - 1))
            return 0;
    return 1;
}

int peer_parse(struct slice v, struct peer_claim *out)
{
    memset(out, 0, sizeof *out);
    int have_ts = 0;
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t k = i;
        while (i < v.len && v.p[i] != '=' && v.p[i] != ',')
            i++;
        if (i == v.len || v.p[i] != '=')
            return -1;
        struct slice key = {v.p + k, i - k};
        size_t s = ++i;
        while (i < v.len && v.p[i] != ',' && v.p[i] != ' ')
            i++;
        struct slice val = {v.p + s, i - s};
        if (!val.len)
            return -1;
        if (slice_eq(key, SLICE_LIT("id")))
            out->id = val;
        else if (slice_eq(key, SLICE_LIT("sig")))
            out->sig = val;
        else if (slice_eq(key, SLICE_LIT("scheme"))) {
            if (!slice_eq(val, SLICE_LIT("http")) && !slice_eq(val, SLICE_LIT("https")))
                return -1;
            out->scheme = val;
        } else if (slice_eq(key, SLICE_LIT("nonce"))) {
            if (!is_nonce(val))
                return -1;
            out->nonce = val;
        } else if (slice_eq(key, SLICE_LIT("ts"))) {
            int64_t ts = 0;
            for (size_t j = 0; j < val.len; j++) {
                if (val.p[j] < '0' || val.p[j] > '9' || ts > (INT64_MAX - 9) / 10)
                    return -1;
                ts = ts * 10 + (val.p[j] - '0');
            }
            out->ts = ts;
            have_ts = 1;
        }
    }
    return out->id.len && out->scheme.len && out->sig.len && out->nonce.len && have_ts ? 0 : -1;
}

int peer_verify(const struct peer_claim *c, const unsigned char *secret, size_t secret_len,
                struct slice method, struct slice target, struct slice digest, int64_t now)
{
    if (c->ts > now + PEER_SKEW_MAX || c->ts < now - PEER_SKEW_MAX)
        return 0;
    char want[PEER_SIG_LEN + 1];
    peer_sign(secret, secret_len, c->id, c->scheme, method, target, c->ts, c->nonce, digest, want);
    return c->sig.len == PEER_SIG_LEN && CRYPTO_memcmp(c->sig.p, want, PEER_SIG_LEN) == 0;
}

void peer_digest_field(const unsigned char digest[32], char out[64])
{
    memcpy(out, "sha-256=:", 9);
    EVP_EncodeBlock((unsigned char *)out + 9, digest, 32); /* 44 chars + NUL */
    out[53] = ':';
    out[54] = 0;
}

int peer_digest_parse(struct slice v, unsigned char digest[32])
{
    unsigned char d[64];
    if (http_digest_field(v, d) != HTTP_DIGEST_SHA256)
        return -1;
    memcpy(digest, d, 32);
    return 0;
}

int peer_store_parse(struct slice value, char epoch[PEER_EPOCH_MAX + 1], uint64_t *capacity)
{
    int have_epoch = 0, have_capacity = 0;
    struct http_list_iter it = http_list_begin(value);
    struct slice el;
    while (http_list_next(&it, &el) > 0) {
        if (el.len > 6 && !memcmp(el.p, "epoch=", 6)) {
            if (el.len - 6 > PEER_EPOCH_MAX)
                return -1;
            for (size_t i = 6; i < el.len; i++)
                if (!http_is((unsigned char)el.p[i], CH_TCHAR))
                    return -1;
            memcpy(epoch, el.p + 6, el.len - 6);
            epoch[el.len - 6] = 0;
            have_epoch = 1;
        } else if (el.len > 9 && !memcmp(el.p, "capacity=", 9)) {
            uint64_t cap = 0;
            for (size_t i = 9; i < el.len; i++) {
                if (el.p[i] < '0' || el.p[i] > '9')
                    return -1;
                cap = cap > (UINT64_C(1) << 63) / 10 ? UINT64_C(1) << 63
                                                     : cap * 10 + (uint64_t)(el.p[i] - '0');
            }
            *capacity = cap > UINT64_C(1) << 63 ? UINT64_C(1) << 63 : cap;
            have_capacity = 1;
        }
    }
    return have_epoch && have_capacity ? 0 : -1;
}
