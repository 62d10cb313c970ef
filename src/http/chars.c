/* The byte-class table behind every parser decision. */
#include "http/chars.h"
#include "http/slice.h"

#define T CH_TCHAR
#define V CH_VALUE
#define G CH_TARGET
#define X CH_HEX
#define D CH_DIGIT
#define H CH_HOST

const uint8_t http_chars[256] = {
    /* 0x00-0x08 CTL */ 0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    /* 0x09 HTAB */ V,
    /* 0x0a-0x1f CTL */ 0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    /* ' ' */ V,
    /* '!' */ T | V | G | H,
    /* '"' */ V,
    /* '#' */ T | V,
    /* '$' */ T | V | G | H,
    /* '%' */ T | V | G | H,
    /* '&' */ T | V | G | H,
    /* '\'' */ T | V | G | H,
    /* '(' */ V | G | H,
    /* ')' */ V | G | H,
    /* '*' */ T | V | G | H,
    /* '+' */ T | V | G | H,
    /* ',' */ V | G | H,
    /* '-' */ T | V | G | H,
    /* '.' */ T | V | G | H,
    /* '/' */ V | G,
    /* '0'-'9' */ T | V | G | X | D | H,
    T | V | G | X | D | H,
    T | V | G | X | D | H,
    T | V | G | X | D | H,
    T | V | G | X | D | H,
    T | V | G | X | D | H,
    T | V | G | X | D | H,
    T | V | G | X | D | H,
    T | V | G | X | D | H,
    T | V | G | X | D | H,
    /* ':' */ V | G | H,
    /* ';' */ V | G | H,
    /* '<' */ V,
    /* '=' */ V | G | H,
    /* '>' */ V,
    /* '?' */ V | G,
    /* '@' */ V | G,
    /* 'A'-'F' */ T | V | G | X | H,
    T | V | G | X | H,
    T | V | G | X | H,
    T | V | G | X | H,
    T | V | G | X | H,
    T | V | G | X | H,
    /* 'G'-'Z' */ T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    /* '[' */ V | G | H,
    /* '\\' */ V,
    /* ']' */ V | G | H,
    /* '^' */ T | V,
    /* '_' */ T | V | G | H,
    /* '`' */ T | V,
    /* 'a'-'f' */ T | V | G | X | H,
    T | V | G | X | H,
    T | V | G | X | H,
    T | V | G | X | H,
    T | V | G | X | H,
    T | V | G | X | H,
    /* 'g'-'z' */ T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    T | V | G | H,
    /* '{' */ V,
    /* '|' */ T | V,
    /* '}' */ V,
    /* '~' */ T | V | G | H,
    /* 0x7f DEL */ 0,
    /* 0x80-0xff obs-text: allowed in field values only (RFC 9110 §5.5) */
    [0x80 ... 0xff] = V,
};

int http_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = http_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int slice_case_eqs(struct slice a, struct slice b)
{
    if (a.len != b.len)
        return 0;
    for (size_t i = 0; i < a.len; i++)
        if (http_lower((unsigned char)a.p[i]) != http_lower((unsigned char)b.p[i]))
            return 0;
    return 1;
}

/* One pass, no strlen: it runs on every field of every request. */
int slice_case_eq(struct slice a, const char *lit)
{
    size_t i = 0;
    for (; i < a.len; i++)
        if (!lit[i] || http_lower((unsigned char)a.p[i]) != http_lower((unsigned char)lit[i]))
            return 0;
    return lit[i] == 0;
}
