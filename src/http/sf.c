/* Structured Field Dictionaries, RFC 9651 §4.2.2 and the items it needs
 * (§4.2.3-§4.2.10). Strict as §4.2 asks: any error fails the whole field.
 * Not checked: that a Display String's bytes decode as UTF-8 (§4.2.10
 * step 9); the cache never reads one. */
#include "http/sf.h"
#include "http/chars.h"

struct sf_in {
    const char *p;
    size_t len, pos;
};

static int peek(const struct sf_in *in)
{
    return in->pos < in->len ? (unsigned char)in->p[in->pos] : -1;
}

static int is_lcalpha(int c)
{
    return c >= 'a' && c <= 'z';
}

static int is_alpha(int c)
{
    return is_lcalpha(c) || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static void skip_sp(struct sf_in *in)
{
    while (peek(in) == ' ')
        in->pos++;
}

static void skip_ows(struct sf_in *in)
{
    while (peek(in) == ' ' || peek(in) == '\t')
        in->pos++;
}

/* §4.2.3.3 */
static int parse_key(struct sf_in *in, struct slice *key)
{
    size_t start = in->pos;
    int c = peek(in);
    if (!is_lcalpha(c) && c != '*')
        return -1;
    for (;;) {
        c = peek(in);
        if (!is_lcalpha(c) && !is_digit(c) && c != '_' && c != '-' && c != '.' && c != '*')
            break;
        in->pos++;
    }
    *key = (struct slice){in->p + start, in->pos - start};
    return 0;
}

/* §4.2.4: at most 15 integer digits, or 12 + "." + 1 to 3. */
static int parse_number(struct sf_in *in, struct sf_item *it)
{
    int neg = 0;
    if (peek(in) == '-') {
        neg = 1;
        in->pos++;
    }
    if (!is_digit(peek(in)))
        return -1;
    int64_t whole = 0, frac = 0;
    int digits = 0, frac_digits = 0, decimal = 0;
    for (;;) {
        int c = peek(in);
        if (is_digit(c)) {
            if (decimal) {
                if (++frac_digits > 3)
                    return -1;
                frac = frac * 10 + (c - '0');
            } else {
                if (++digits > 15)
                    return -1;
                whole = whole * 10 + (c - '0');
            }
        } else if (c == '.' && !decimal) {
            if (digits > 12)
                return -1;
            decimal = 1;
        } else {
            break;
        }
        in->pos++;
    }
    if (decimal) {
        if (!frac_digits)
            return -1;
        while (frac_digits++ < 3)
            frac *= 10;
        it->type = SF_DECIMAL;
        it->integer = whole * 1000 + frac;
    } else {
        it->type = SF_INTEGER;
        it->integer = whole;
    }
    if (neg)
        it->integer = -it->integer;
    return 0;
}

/* §4.2.5: printable ASCII, with \" and \\ the only escapes. */
static int parse_string(struct sf_in *in, struct sf_item *it)
{
    size_t start = ++in->pos;
    for (;;) {
        int c = peek(in);
        if (c < 0)
            return -1;
        in->pos++;
        if (c == '\\') {
            c = peek(in);
            if (c != '"' && c != '\\')
                return -1;
            in->pos++;
        } else if (c == '"') {
            break;
        } else if (c < 0x20 || c > 0x7e) {
            return -1;
        }
    }
    it->type = SF_STRING;
    it->raw = (struct slice){in->p + start, in->pos - 1 - start};
    return 0;
}

/* §4.2.10: %" then printable ASCII, %xx in lowercase hex for the rest. */
static int parse_display(struct sf_in *in, struct sf_item *it)
{
    in->pos++;
    if (peek(in) != '"')
        return -1;
    size_t start = ++in->pos;
    for (;;) {
        int c = peek(in);
        if (c < 0x20 || c > 0x7e)
            return -1; /* also the end of input */
        in->pos++;
        if (c == '"')
            break;
        if (c == '%') {
            for (int k = 0; k < 2; k++) {
                int h = peek(in);
                if (!is_digit(h) && !(h >= 'a' && h <= 'f'))
                    return -1;
                in->pos++;
            }
        }
    }
    it->type = SF_DISPLAY;
    it->raw = (struct slice){in->p + start, in->pos - 1 - start};
    return 0;
}

/* §4.2.6: (ALPHA / "*") *(tchar / ":" / "/") */
static int parse_token(struct sf_in *in, struct sf_item *it)
{
    size_t start = in->pos++;
    for (;;) {
        int c = peek(in);
        if (c < 0 || !(http_is((unsigned char)c, CH_TCHAR) || c == ':' || c == '/'))
            break;
        in->pos++;
    }
    it->type = SF_TOKEN;
    it->raw = (struct slice){in->p + start, in->pos - start};
    return 0;
}

/* §4.2.7: ":" base64 ":" */
static int parse_bytes(struct sf_in *in, struct sf_item *it)
{
    size_t start = ++in->pos;
    for (;;) {
        int c = peek(in);
        if (c < 0)
            return -1;
        in->pos++;
        if (c == ':')
            break;
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '/' && c != '=')
            return -1;
    }
    it->type = SF_BYTES;
    it->raw = (struct slice){in->p + start, in->pos - 1 - start};
    return 0;
}

/* §4.2.3.1 */
static int parse_bare_item(struct sf_in *in, struct sf_item *it)
{
    int c = peek(in);
    if (c == '-' || is_digit(c))
        return parse_number(in, it);
    if (c == '"')
        return parse_string(in, it);
    if (is_alpha(c) || c == '*')
        return parse_token(in, it);
    if (c == ':')
        return parse_bytes(in, it);
    if (c == '?') {
        in->pos++;
        c = peek(in);
        if (c != '0' && c != '1')
            return -1;
        in->pos++;
        it->type = SF_BOOLEAN;
        it->integer = c == '1';
        return 0;
    }
    if (c == '@') { /* §4.2.9: an Integer */
        in->pos++;
        if (parse_number(in, it) < 0 || it->type != SF_INTEGER)
            return -1;
        it->type = SF_DATE;
        return 0;
    }
    if (c == '%')
        return parse_display(in, it);
    return -1;
}

/* §4.2.3.2: *( ";" *SP key [ "=" bare-item ] ) */
static int parse_params(struct sf_in *in, struct slice *params)
{
    size_t start = in->pos;
    while (peek(in) == ';') {
        in->pos++;
        skip_sp(in);
        struct slice key;
        if (parse_key(in, &key) < 0)
            return -1;
        if (peek(in) == '=') {
            in->pos++;
            struct sf_item v;
            if (parse_bare_item(in, &v) < 0)
                return -1;
        }
    }
    *params = (struct slice){in->p + start, in->pos - start};
    return 0;
}

/* §4.2.1.2: "(" *SP [ item *( 1*SP item ) *SP ] ")" parameters */
static int parse_inner_list(struct sf_in *in, struct sf_item *it)
{
    size_t start = in->pos++;
    for (;;) {
        skip_sp(in);
        if (peek(in) == ')') {
            in->pos++;
            break;
        }
        struct sf_item item;
        struct slice params;
        if (parse_bare_item(in, &item) < 0 || parse_params(in, &params) < 0)
            return -1;
        int c = peek(in);
        if (c != ' ' && c != ')')
            return -1;
    }
    it->type = SF_INNER_LIST;
    it->raw = (struct slice){in->p + start, in->pos - start};
    return 0;
}

struct sf_dict_iter sf_dict_begin(struct slice v)
{
    return (struct sf_dict_iter){v, 0, 0};
}

enum sf_next sf_dict_next(struct sf_dict_iter *it, struct sf_member *m)
{
    if (it->started == 2)
        return SF_ERROR;
    struct sf_in in = {it->in.p, it->in.len, it->pos};
    if (!it->started) {
        it->started = 1;
        skip_sp(&in); /* §4.2 step 2 */
        if (in.pos == in.len) {
            it->pos = in.pos;
            return SF_END; /* an empty dictionary */
        }
    } else {
        /* after a member: OWS, then the end, or "," OWS and another member */
        skip_ows(&in);
        if (in.pos == in.len) {
            it->pos = in.pos;
            return SF_END;
        }
        if (peek(&in) != ',')
            goto fail;
        in.pos++;
        skip_ows(&in);
        if (in.pos == in.len)
            goto fail; /* a trailing comma */
    }
    if (parse_key(&in, &m->key) < 0)
        goto fail;
    if (peek(&in) == '=') {
        in.pos++;
        int rc =
            peek(&in) == '(' ? parse_inner_list(&in, &m->value) : parse_bare_item(&in, &m->value);
        if (rc < 0)
            goto fail;
    } else {
        m->value = (struct sf_item){SF_BOOLEAN, 1, {0}};
    }
    if (parse_params(&in, &m->params) < 0)
        goto fail;
    it->pos = in.pos;
    return SF_MEMBER;
fail:
    it->pos = it->in.len; /* an error is final: the next call says so again */
    it->started = 2;
    return SF_ERROR;
}
