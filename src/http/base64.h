/* Base64 decoding (RFC 4648 §4, and §5 "base64url" when url is set),
 * padding optional. Pure. */
#ifndef IDEM_HTTP_BASE64_H
#define IDEM_HTTP_BASE64_H
#include <stddef.h>
#include "http/http.h"

/* Decoded length, or -1 when a symbol is outside the alphabet, more than
 * two '=' end it, a lone symbol is left over, or cap is too small. out may
 * be in.p itself: decoding only ever writes behind what it reads. */
int http_base64_decode(struct slice in, unsigned char *out, size_t cap, int url);

#endif
