/* RFC 9530 Content-Digest / Repr-Digest: a structured-field dictionary
 * (RFC 8941 §3.2) of algorithm = :base64 bytes:. Pure: the caller hashes. */
#ifndef IDEM_HTTP_DIGEST_FIELD_H
#define IDEM_HTTP_DIGEST_FIELD_H
#include "http/http.h"

enum http_digest_alg { HTTP_DIGEST_NONE = 0, HTTP_DIGEST_SHA256 = 256, HTTP_DIGEST_SHA512 = 512 };

/* The strongest supported member (sha-512, then sha-256) into out; its
 * algorithm is returned. HTTP_DIGEST_NONE when the field names only
 * algorithms we do not know (RFC 9530 §2: those are ignored); -1 when the
 * field is malformed or a supported member has the wrong length. */
int http_digest_field(struct slice value, unsigned char out[64]);

#endif
