/* libFuzzer: what the peer handshake parses from the wire. Idem-Peer (its
 * nonce too, and the seen-nonce table it feeds) comes
 * from anyone who can reach the reverse side; Idem-Digest, Idem-Store and a dcz body
 * from a verified peer (still never trusted: a broken one must fail
 * cleanly). The input is used as each. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "peer/peer.h"
#include "http/coding.h"
#include "http/chars.h"

/* The input as Content-Encoding: the whole as one line, and split at the
 * first LF into two lines. Every coding read is a token inside the input,
 * and the walk ends. */
static void codings(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *lf = memchr(p, '\n', size);
    size_t first = lf ? (size_t)(lf - p) : size;
    struct http_field f[3] = {
        {{"Content-Encoding", 16}, {p, first}, HF_OTHER},
        {{"Content-Type", 12}, {p, size}, HF_OTHER},
        {{"content-encoding", 16}, {lf ? lf + 1 : p + size, lf ? size - first - 1 : 0}, HF_OTHER},
    };
    struct http_coding_iter its[2] = {http_codings_of((struct slice){p, size}),
                                      http_codings_begin(f, 3)};
    for (int k = 0; k < 2; k++) {
        struct slice cd;
        size_t n = 0;
        while (http_coding_next(&its[k], &cd) == HTTP_CODING_NEXT) {
            if (!cd.len || cd.p < p || cd.p + cd.len > p + size || ++n > size)
                abort();
            for (size_t i = 0; i < cd.len; i++)
                if (!http_is((unsigned char)cd.p[i], CH_TCHAR))
                    abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice v = {(const char *)data, size};
    codings(data, size);
    struct peer_claim c;
    if (peer_parse(v, &c) == 0 && (!c.id.len || !c.sig.len || c.nonce.len != PEER_NONCE_LEN))
        abort();
    if (peer_parse(v, &c) == 0) {
        /* a parsed nonce is 22 base64url bytes inside the input, and the
         * seen-nonce table takes it once, then refuses it */
        if (c.nonce.p < v.p || c.nonce.p + c.nonce.len > v.p + v.len)
            abort();
        for (size_t i = 0; i < c.nonce.len; i++)
            if (!http_is((unsigned char)c.nonce.p[i], CH_TCHAR) || c.nonce.p[i] == '+' ||
                c.nonce.p[i] == '=')
                abort();
        struct peer_nonces *t = peer_nonces_new(2);
        if (peer_nonces_check(t, c.nonce, c.ts, c.ts) != PEER_NONCE_FRESH ||
            peer_nonces_check(t, c.nonce, c.ts, c.ts) != PEER_NONCE_REPLAYED)
            abort();
        peer_nonces_free(&t);
    }
    if (peer_parse(v, &c) == 0)
        peer_verify(&c, (const unsigned char *)"0123456789abcdef", 16, (struct slice){"GET", 3},
                    (struct slice){"/", 1}, (struct slice){"", 0}, c.ts);
    unsigned char d[32];
    peer_digest_parse(v, d);
    char epoch[PEER_EPOCH_MAX + 1];
    uint64_t cap;
    if (peer_store_parse(v, epoch, &cap) == 0 &&
        (strlen(epoch) > PEER_EPOCH_MAX || cap > (UINT64_C(1) << 63)))
        abort();
    static const unsigned char dict[] = "a dictionary of a few words, as a stored body would be";
    unsigned char dd[32] = {0};
    size_t n;
    unsigned char *out = peer_dcz_decode(data, size, dict, sizeof dict, dd, 1 << 16, &n);
    if (out && n > (1 << 16))
        abort();
    free(out);
    if (size >= 40) { /* with the header's own dictionary digest, past the check */
        memcpy(dd, data + 8, 32);
        out = peer_dcz_decode(data, size, dict, sizeof dict, dd, 1 << 16, &n);
        free(out);
    }
    return 0;
}
