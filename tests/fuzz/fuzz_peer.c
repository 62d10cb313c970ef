/* libFuzzer: what the peer handshake parses from the wire. Idem-Peer comes
 * from anyone who can reach the reverse side; Idem-Digest and a dcz body
 * from a verified peer (still never trusted: a broken one must fail
 * cleanly). The input is used as each. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "peer/peer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice v = {(const char *)data, size};
    struct peer_claim c;
    if (peer_parse(v, &c) == 0 && (!c.id.len || !c.sig.len))
        abort();
    if (peer_parse(v, &c) == 0)
        peer_verify(&c, (const unsigned char *)"0123456789abcdef", 16, (struct slice){"GET", 3},
                    (struct slice){"/", 1}, (struct slice){"", 0}, c.ts);
    unsigned char d[32];
    peer_digest_parse(v, d);
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
