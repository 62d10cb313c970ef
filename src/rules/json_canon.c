/* Canonical JSON without a document tree: one pass writes the canonical
 * bytes into a buffer the size of the input, and a stack of member spans
 * lets each object put its members in key order once they are written.
 * Sorting needs the members of one object at a time, not a tree of every
 * value, so the cost is one buffer, one scratch copy and a span per member.
 * RFC 8259 §2 (whitespace), §4 (objects), §6 (numbers), §7 (strings),
 * §8.1 (UTF-8); RFC 3629 §4 (well-formed UTF-8). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "rules/json_canon.h"

/* One object member as written: "key":value at out[start..end). */
struct member {
    const char *key; /* the canonical key in out, without its quotes */
    size_t key_len;
    size_t start, end;
};

struct canon {
    const unsigned char *in;
    size_t len, pos;
    char *out; /* len bytes: the canonical form is never longer than the text */
    size_t out_len;
    int overflow;  /* a write past len: cannot happen, see put() */
    char *scratch; /* len bytes, taken the first time an object is out of order */
    struct member *m;
    size_t nm, cap_m;
    unsigned values;
    const struct json_canon_limits *lim;
};

/* Every byte written stands for at least one byte read (an escape is never
 * longer in canonical form than as sent), so out_len <= pos <= len. */
static void put(struct canon *c, const void *p, size_t n)
{
    if (n > c->len - c->out_len) {
        c->overflow = 1;
        return;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void put1(struct canon *c, char ch)
{
    put(c, &ch, 1);
}

static int peek(const struct canon *c)
{
    return c->pos < c->len ? c->in[c->pos] : -1;
}

static void skip_ws(struct canon *c)
{
    while (c->pos < c->len) {
        unsigned char ch = c->in[c->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            return;
        c->pos++;
    }
}

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int read_hex4(struct canon *c, uint32_t *v)
{
    if (c->len - c->pos < 4)
        return -1;
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(c->in[c->pos + (size_t)i]);
        if (h < 0)
            return -1;
        x = x << 4 | (uint32_t)h;
    }
    c->pos += 4;
    *v = x;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at p, 0 when there is none:
 * no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char b = p[0];
    size_t n;
    uint32_t cp, min;
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        n = 2, cp = b & 0x1F, min = 0x80;
    else if ((b & 0xF0) == 0xE0)
        n = 3, cp = b & 0x0F, min = 0x800;
    else if (b >= 0xF0 && b <= 0xF4)
        n = 4, cp = b & 0x07, min = 0x10000;
    else
        return 0;
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* The one way a code point is written: the two-character escapes of §7
 * where there is one, \u00xx for the other control characters, and every
 * other character as itself in UTF-8 ("\u00e9" and "\/" become é and /). */
static void put_code_point(struct canon *c, uint32_t cp)
{
    static const char hex[] = "0123456789abcdef";
    char b[6];
    size_t n;
    switch (cp) {
    case '"':
    case '\\':
        b[0] = '\\', b[1] = (char)cp, n = 2;
        break;
    case '\b':
        b[0] = '\\', b[1] = 'b', n = 2;
        break;
    case '\f':
        b[0] = '\\', b[1] = 'f', n = 2;
        break;
    case '\n':
        b[0] = '\\', b[1] = 'n', n = 2;
        break;
    case '\r':
        b[0] = '\\', b[1] = 'r', n = 2;
        break;
    case '\t':
        b[0] = '\\', b[1] = 't', n = 2;
        break;
    default:
        if (cp < 0x20) {
            memcpy(b, "\\u00", 4);
            b[4] = hex[cp >> 4], b[5] = hex[cp & 15], n = 6;
        } else if (cp < 0x80) {
            b[0] = (char)cp, n = 1;
        } else if (cp < 0x800) {
            b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
        } else if (cp < 0x10000) {
            b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
        } else {
            b[0] = (char)(0xF0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
        }
    }
    put(c, b, n);
}

/* A backslash escape (§7); a surrogate pair must come whole. */
static enum json_canon_result canon_escape(struct canon *c)
{
    if (c->len - c->pos < 2)
        return JSON_CANON_INVALID;
    unsigned char e = c->in[c->pos + 1];
    c->pos += 2;
    uint32_t cp, low;
    switch (e) {
    case '"':
    case '\\':
    case '/':
        cp = e;
        break;
    case 'b':
        cp = '\b';
        break;
    case 'f':
        cp = '\f';
        break;
    case 'n':
        cp = '\n';
        break;
    case 'r':
        cp = '\r';
        break;
    case 't':
        cp = '\t';
        break;
    case 'u':
        if (read_hex4(c, &cp) < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
            return JSON_CANON_INVALID;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (c->len - c->pos < 2 || c->in[c->pos] != '\\' || c->in[c->pos + 1] != 'u')
                return JSON_CANON_INVALID;
            c->pos += 2;
            if (read_hex4(c, &low) < 0 || low < 0xDC00 || low > 0xDFFF)
                return JSON_CANON_INVALID;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        break;
    default:
        return JSON_CANON_INVALID;
    }
    put_code_point(c, cp);
    return JSON_CANON_OK;
}

static enum json_canon_result canon_string(struct canon *c)
{
    c->pos++; /* the opening quote, seen by the caller */
    put1(c, '"');
    for (;;) {
        if (c->pos >= c->len)
            return JSON_CANON_INVALID;
        unsigned char ch = c->in[c->pos];
        if (ch == '"') {
            c->pos++;
            put1(c, '"');
            return JSON_CANON_OK;
        }
        if (ch < 0x20) /* §7: control characters must be escaped */
            return JSON_CANON_INVALID;
        if (ch == '\\') {
            enum json_canon_result r = canon_escape(c);
            if (r != JSON_CANON_OK)
                return r;
            continue;
        }
        size_t n = utf8_len(c->in + c->pos, c->len - c->pos);
        if (!n)
            return JSON_CANON_INVALID;
        put(c, c->in + c->pos, n); /* already in its one form */
        c->pos += n;
    }
}

/* §6 grammar, checked; the text is kept exactly as written. */
static enum json_canon_result canon_number(struct canon *c)
{
    size_t start = c->pos;
    if (peek(c) == '-')
        c->pos++;
    if (peek(c) == '0') {
        c->pos++;
    } else if (is_digit(peek(c))) {
        while (is_digit(peek(c)))
            c->pos++;
    } else {
        return JSON_CANON_INVALID;
    }
    if (peek(c) == '.') {
        c->pos++;
        if (!is_digit(peek(c)))
            return JSON_CANON_INVALID;
        while (is_digit(peek(c)))
            c->pos++;
    }
    if (peek(c) == 'e' || peek(c) == 'E') {
        c->pos++;
        if (peek(c) == '+' || peek(c) == '-')
            c->pos++;
        if (!is_digit(peek(c)))
            return JSON_CANON_INVALID;
        while (is_digit(peek(c)))
            c->pos++;
    }
    put(c, c->in + start, c->pos - start);
    return JSON_CANON_OK;
}

static enum json_canon_result canon_literal(struct canon *c, const char *word, size_t n)
{
    if (c->len - c->pos < n || memcmp(c->in + c->pos, word, n))
        return JSON_CANON_INVALID;
    c->pos += n;
    put(c, word, n);
    return JSON_CANON_OK;
}

static enum json_canon_result canon_value(struct canon *c, unsigned depth);

static enum json_canon_result canon_array(struct canon *c, unsigned depth)
{
    if (depth > c->lim->max_depth)
        return JSON_CANON_OVER_LIMIT;
    c->pos++;
    put1(c, '[');
    skip_ws(c);
    if (peek(c) == ']') {
        c->pos++;
        put1(c, ']');
        return JSON_CANON_OK;
    }
    for (;;) {
        enum json_canon_result r = canon_value(c, depth);
        if (r != JSON_CANON_OK)
            return r;
        skip_ws(c);
        int ch = peek(c);
        if (ch < 0)
            return JSON_CANON_INVALID;
        c->pos++;
        if (ch == ']') {
            put1(c, ']');
            return JSON_CANON_OK;
        }
        if (ch != ',')
            return JSON_CANON_INVALID;
        put1(c, ',');
    }
}

static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int d = memcmp(x->key, y->key, n);
    if (d)
        return d;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Members sorted by their canonical key bytes: the order depends only on
 * the keys, which is all a canonical form needs. Already in order (the
 * usual case): nothing moves. Otherwise the object's members are copied
 * aside once and written back in order. A key twice is refused. */
static enum json_canon_result order_members(struct canon *c, size_t base)
{
    struct member *m = c->m + base;
    size_t n = c->nm - base;
    int in_order = 1;
    for (size_t i = 1; i < n; i++) {
        int d = member_cmp(&m[i - 1], &m[i]);
        if (d == 0)
            return JSON_CANON_INVALID;
        if (d > 0)
            in_order = 0;
    }
    if (in_order)
        return JSON_CANON_OK;
    qsort(m, n, sizeof *m, member_cmp);
    for (size_t i = 1; i < n; i++)
        if (member_cmp(&m[i - 1], &m[i]) == 0)
            return JSON_CANON_INVALID;
    if (!c->scratch && !(c->scratch = malloc(c->len)))
        return JSON_CANON_NO_MEMORY;
    size_t from = m[0].start, to = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i].start < from)
            from = m[i].start;
        if (m[i].end > to)
            to = m[i].end;
    }
    memcpy(c->scratch, c->out + from, to - from);
    size_t w = from;
    for (size_t i = 0; i < n; i++) {
        if (i)
            c->out[w++] = ',';
        memcpy(c->out + w, c->scratch + (m[i].start - from), m[i].end - m[i].start);
        w += m[i].end - m[i].start;
    }
    return w == to ? JSON_CANON_OK : JSON_CANON_INVALID;
}

static enum json_canon_result push_member(struct canon *c)
{
    if (c->nm == c->cap_m) {
        size_t cap = c->cap_m ? c->cap_m * 2 : 64;
        struct member *m = realloc(c->m, cap * sizeof *m);
        if (!m)
            return JSON_CANON_NO_MEMORY;
        c->m = m;
        c->cap_m = cap;
    }
    c->nm++;
    return JSON_CANON_OK;
}

/* Members are pushed on c->m (by index: a nested object may move the
 * array) and popped once this object is in order. */
static enum json_canon_result canon_object(struct canon *c, unsigned depth)
{
    if (depth > c->lim->max_depth)
        return JSON_CANON_OVER_LIMIT;
    c->pos++;
    put1(c, '{');
    size_t base = c->nm;
    skip_ws(c);
    if (peek(c) == '}') {
        c->pos++;
        put1(c, '}');
        return JSON_CANON_OK;
    }
    enum json_canon_result r;
    for (;;) {
        skip_ws(c);
        if (peek(c) != '"')
            return JSON_CANON_INVALID;
        if ((r = push_member(c)) != JSON_CANON_OK)
            return r;
        size_t i = c->nm - 1, start = c->out_len;
        if ((r = canon_string(c)) != JSON_CANON_OK)
            return r;
        c->m[i].start = start;
        c->m[i].key = c->out + start + 1;
        c->m[i].key_len = c->out_len - start - 2;
        skip_ws(c);
        if (peek(c) != ':')
            return JSON_CANON_INVALID;
        c->pos++;
        put1(c, ':');
        if ((r = canon_value(c, depth)) != JSON_CANON_OK)
            return r;
        c->m[i].end = c->out_len;
        skip_ws(c);
        int ch = peek(c);
        if (ch < 0)
            return JSON_CANON_INVALID;
        c->pos++;
        if (ch == '}')
            break;
        if (ch != ',')
            return JSON_CANON_INVALID;
        put1(c, ',');
    }
    r = order_members(c, base);
    c->nm = base;
    if (r != JSON_CANON_OK)
        return r;
    put1(c, '}');
    return JSON_CANON_OK;
}

/* depth: how many arrays and objects enclose this value. */
static enum json_canon_result canon_value(struct canon *c, unsigned depth)
{
    if (++c->values > c->lim->max_values)
        return JSON_CANON_OVER_LIMIT;
    skip_ws(c);
    switch (peek(c)) {
    case '{':
        return canon_object(c, depth + 1);
    case '[':
        return canon_array(c, depth + 1);
    case '"':
        return canon_string(c);
    case 't':
        return canon_literal(c, "true", 4);
    case 'f':
        return canon_literal(c, "false", 5);
    case 'n':
        return canon_literal(c, "null", 4);
    default:
        return canon_number(c);
    }
}

enum json_canon_result json_canonicalize(const char *in, size_t len,
                                         const struct json_canon_limits *lim, char **out,
                                         size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!len)
        return JSON_CANON_INVALID;
    struct canon c = {.in = (const unsigned char *)in, .len = len, .lim = lim};
    if (!(c.out = malloc(len)))
        return JSON_CANON_NO_MEMORY;
    enum json_canon_result r = canon_value(&c, 0);
    if (r == JSON_CANON_OK) {
        skip_ws(&c);
        if (c.pos != len || c.overflow)
            r = JSON_CANON_INVALID;
    }
    free(c.scratch);
    free(c.m);
    if (r != JSON_CANON_OK) {
        free(c.out);
        return r;
    }
    *out = c.out;
    *out_len = c.out_len;
    return JSON_CANON_OK;
}
