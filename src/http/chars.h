/* Byte classes of RFC 9110 §5.6.2 (tchar), §5.5 (field-vchar) and RFC 3986
 * (request-target), as one 256-entry table. */
#ifndef IDEM_HTTP_CHARS_H
#define IDEM_HTTP_CHARS_H
#include <stdint.h>

enum {
    CH_TCHAR = 1,  /* token character */
    CH_VALUE = 2,  /* field-vchar / SP / HTAB / obs-text */
    CH_TARGET = 4, /* allowed unescaped in a request-target */
    CH_HEX = 8,
    CH_DIGIT = 16,
    CH_HOST = 32, /* reg-name / IPv4 / IP-literal characters of uri-host */
};

extern const uint8_t http_chars[256];

static inline int http_is(unsigned char c, int cls)
{
    return (http_chars[c] & cls) != 0;
}

static inline unsigned char http_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

int http_hexval(unsigned char c);

#endif
