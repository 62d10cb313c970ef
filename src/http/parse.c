/* Strict HTTP/1.1 head parser: RFC 9112 §2 (message format), §3 (request
 * line), §4 (status line), §5 (field syntax), §6 (body framing). Every
 * ambiguity is an error, because a proxy that reads a message differently
 * from the server behind it enables request smuggling (RFC 9112 §11.2). */
#include <stdbool.h>
#include "http/http.h"
#include "http/chars.h"
#include "http/fields.h"

#define CL_MAX ((uint64_t)1 << 62)

static const char *const error_texts[] = {
    [HTTP_ERR_NONE] = "",
    [HTTP_ERR_CL_WITH_TE] = "Content-Length with Transfer-Encoding",
    [HTTP_ERR_CL_DUPLICATE] = "duplicate Content-Length",
    [HTTP_ERR_CL_INVALID] = "invalid Content-Length",
    [HTTP_ERR_TE_NOT_CHUNKED] = "Transfer-Encoding not ending in chunked",
    [HTTP_ERR_TE_INVALID] = "invalid Transfer-Encoding",
    [HTTP_ERR_TE_HTTP10] = "Transfer-Encoding in HTTP/1.0",
    [HTTP_ERR_TE_UNSUPPORTED] = "transfer coding other than chunked",
    [HTTP_ERR_BARE_CR] = "bare CR",
    [HTTP_ERR_BARE_LF] = "bare LF",
    [HTTP_ERR_OBS_FOLD] = "obs-fold",
    [HTTP_ERR_SPACE_BEFORE_NAME] = "whitespace before the first field",
    [HTTP_ERR_SPACE_BEFORE_COLON] = "whitespace before a colon",
    [HTTP_ERR_FIELD_NAME] = "invalid field name",
    [HTTP_ERR_FIELD_VALUE] = "invalid byte in a field value",
    [HTTP_ERR_METHOD] = "invalid method",
    [HTTP_ERR_TARGET] = "invalid request target",
    [HTTP_ERR_TARGET_USERINFO] = "userinfo in the request target",
    [HTTP_ERR_HTTP09] = "HTTP/0.9",
    [HTTP_ERR_VERSION] = "invalid HTTP version",
    [HTTP_ERR_VERSION_MAJOR] = "HTTP major version other than 1",
    [HTTP_ERR_HOST_MISSING] = "missing Host",
    [HTTP_ERR_HOST_DUPLICATE] = "duplicate Host",
    [HTTP_ERR_HOST_INVALID] = "invalid Host",
    [HTTP_ERR_CONNECTION] = "invalid Connection",
    [HTTP_ERR_EXPECT] = "Expect other than 100-continue",
    [HTTP_ERR_REQUEST_LINE] = "request line over limits.request_line",
    [HTTP_ERR_HEADER_SECTION] = "header section over limits.header_section",
    [HTTP_ERR_HEADER_COUNT] = "header count over limits.header_count",
};
_Static_assert(sizeof error_texts / sizeof error_texts[0] == HTTP_ERR__COUNT,
               "every parse error needs a text");

const char *http_error_text(enum http_error e)
{
    return (unsigned)e < HTTP_ERR__COUNT ? error_texts[e] : "";
}

/* Record why, answer with status: every refusal carries its reason. */
static int refuse(enum http_error *why, enum http_error e, int status)
{
    *why = e;
    return status;
}

/* Field lines from `pos` to the blank line. Errors are request statuses;
 * the response parser maps them all to 502. */
static int parse_fields(const char *buf, size_t len, size_t pos, const struct http_limits *lim,
                        struct http_field *fields, unsigned cap, unsigned *nfields,
                        size_t *head_len, enum http_error *why)
{
    unsigned n = 0;
    for (;;) {
        if (pos > lim->header_section)
            return refuse(why, HTTP_ERR_HEADER_SECTION, 431);
        if (pos >= len)
            goto more;
        unsigned char c = (unsigned char)buf[pos];
        if (c == '\r') {
            if (pos + 1 >= len)
                goto more;
            if (buf[pos + 1] != '\n')
                return refuse(why, HTTP_ERR_BARE_CR, 400);
            *head_len = pos + 2;
            *nfields = n;
            return *head_len > lim->header_section ? refuse(why, HTTP_ERR_HEADER_SECTION, 431)
                                                   : HTTP_PARSE_OK;
        }
        /* obs-fold and whitespace before the first field are rejected
         * (RFC 9112 §5.2, §2.2). */
        if (c == ' ' || c == '\t')
            return refuse(why, n ? HTTP_ERR_OBS_FOLD : HTTP_ERR_SPACE_BEFORE_NAME, 400);
        if (c == '\n')
            return refuse(why, HTTP_ERR_BARE_LF, 400);
        size_t name_start = pos;
        while (pos < len && http_is((unsigned char)buf[pos], CH_TCHAR))
            pos++;
        if (pos >= len)
            goto more;
        if (buf[pos] == ' ' || buf[pos] == '\t')
            return refuse(why, pos > name_start ? HTTP_ERR_SPACE_BEFORE_COLON : HTTP_ERR_FIELD_NAME,
                          400); /* §5.1 */
        if (buf[pos] != ':' || pos == name_start)
            return refuse(why, HTTP_ERR_FIELD_NAME, 400); /* a bad byte, an empty name */
        size_t name_end = pos++;
        while (pos < len && (buf[pos] == ' ' || buf[pos] == '\t'))
            pos++;
        size_t value_start = pos;
        while (pos < len && http_is((unsigned char)buf[pos], CH_VALUE))
            pos++;
        if (pos >= len)
            goto more;
        if (buf[pos] != '\r')
            return refuse(why, buf[pos] == '\n' ? HTTP_ERR_BARE_LF : HTTP_ERR_FIELD_VALUE, 400);
        if (pos + 1 >= len)
            goto more;
        if (buf[pos + 1] != '\n')
            return refuse(why, HTTP_ERR_BARE_CR, 400);
        size_t value_end = pos;
        while (value_end > value_start && (buf[value_end - 1] == ' ' || buf[value_end - 1] == '\t'))
            value_end--;
        if (n >= lim->header_count || n >= cap)
            return refuse(why, HTTP_ERR_HEADER_COUNT, 431);
        fields[n].name = (struct slice){buf + name_start, name_end - name_start};
        fields[n].value = (struct slice){buf + value_start, value_end - value_start};
        fields[n].id = http_field_classify(fields[n].name);
        n++;
        pos += 2;
    }
more:
    return len > lim->header_section ? refuse(why, HTTP_ERR_HEADER_SECTION, 431) : HTTP_PARSE_MORE;
}

/* "HTTP/1.1" at p (8 bytes available). Returns the minor version (0/1), or
 * -505 for another major version, or -400 for anything else. */
static int parse_version(const char *p)
{
    if (memcmp(p, "HTTP/", 5) != 0 || !http_is((unsigned char)p[5], CH_DIGIT) || p[6] != '.' ||
        !http_is((unsigned char)p[7], CH_DIGIT))
        return -400;
    if (p[5] != '1')
        return -505;
    /* RFC 9110 §2.5: a higher minor version is handled as the highest we know. */
    return p[7] == '0' ? 0 : 1;
}

/* uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2). */
bool http_valid_authority(struct slice a, bool need_port)
{
    size_t i = 0;
    if (a.len == 0)
        return false;
    if (a.p[0] == '[') {
        for (i = 1; i < a.len && a.p[i] != ']'; i++)
            if (!http_is((unsigned char)a.p[i], CH_HEX) && a.p[i] != ':' && a.p[i] != '.')
                return false;
        if (i >= a.len || i == 1)
            return false;
        i++;
    } else {
        for (; i < a.len && a.p[i] != ':'; i++) {
            unsigned char c = (unsigned char)a.p[i];
            if (!http_is(c, CH_HOST) || c == '[' || c == ']')
                return false;
        }
        if (i == 0)
            return false;
    }
    if (i == a.len)
        return !need_port;
    if (a.p[i] != ':')
        return false;
    size_t digits = a.len - i - 1;
    if (digits > 5 || (need_port && digits == 0))
        return false;
    unsigned port = 0;
    for (i++; i < a.len; i++) {
        if (!http_is((unsigned char)a.p[i], CH_DIGIT))
            return false;
        port = port * 10 + (unsigned)(a.p[i] - '0');
    }
    return port <= 65535;
}

/* RFC 9112 §3.2: the four forms of request-target. */
static int classify_target(struct http_request *r)
{
    struct slice t = r->target;
    r->path = t;
    if (slice_eq(r->method, SLICE_LIT("CONNECT"))) {
        r->form = HTTP_TARGET_AUTHORITY;
        r->authority = t;
        r->path = (struct slice){0};
        return http_valid_authority(t, true) ? 0 : refuse(&r->error, HTTP_ERR_TARGET, 400);
    }
    if (t.p[0] == '/') {
        r->form = HTTP_TARGET_ORIGIN;
        return 0;
    }
    if (t.len == 1 && t.p[0] == '*') {
        r->form = HTTP_TARGET_ASTERISK;
        return slice_eq(r->method, SLICE_LIT("OPTIONS")) ? 0
                                                         : refuse(&r->error, HTTP_ERR_TARGET, 400);
    }
    size_t i = 0;
    while (i < t.len && (http_is((unsigned char)t.p[i], CH_TCHAR) && t.p[i] != '%'))
        i++;
    if (i == 0 || i + 3 > t.len || memcmp(t.p + i, "://", 3) != 0)
        return refuse(&r->error, HTTP_ERR_TARGET, 400);
    r->scheme = (struct slice){t.p, i};
    if (!slice_case_eq(r->scheme, "http") && !slice_case_eq(r->scheme, "https"))
        return refuse(&r->error, HTTP_ERR_TARGET, 400);
    size_t a = i + 3, e = a;
    while (e < t.len && t.p[e] != '/' && t.p[e] != '?')
        e++;
    r->authority = (struct slice){t.p + a, e - a};
    /* userinfo is deprecated and a phishing vector (RFC 9110 §4.2.4). */
    if (memchr(r->authority.p, '@', r->authority.len))
        return refuse(&r->error, HTTP_ERR_TARGET_USERINFO, 400);
    if (!http_valid_authority(r->authority, false))
        return refuse(&r->error, HTTP_ERR_TARGET, 400);
    r->path = (struct slice){t.p + e, t.len - e};
    r->form = HTTP_TARGET_ABSOLUTE;
    return 0;
}

int http_content_length_parse(struct slice v, uint64_t *out)
{
    if (v.len == 0 || v.len > 19)
        return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (!http_is((unsigned char)v.p[i], CH_DIGIT))
            return -1;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    if (n > CL_MAX)
        return -1;
    *out = n;
    return 0;
}

/* Transfer-Encoding facts across all its field lines (RFC 9112 §6.1). */
struct te_state {
    int chunked_count;
    int last_chunked;
    int other; /* a coding other than chunked */
    int bad;
};

static void te_add(struct te_state *te, struct slice v)
{
    struct http_list_iter it = http_list_begin(v);
    struct slice el;
    int rc;
    while ((rc = http_list_next(&it, &el)) > 0) {
        struct slice name = el;
        const char *semi = memchr(el.p, ';', el.len);
        if (semi)
            name.len = (size_t)(semi - el.p);
        while (name.len && (name.p[name.len - 1] == ' ' || name.p[name.len - 1] == '\t'))
            name.len--;
        if (!http_is_token(name)) {
            te->bad = 1;
            return;
        }
        if (slice_case_eq(name, "chunked")) {
            if (semi)
                te->bad = 1; /* chunked takes no parameters */
            te->chunked_count++;
            te->last_chunked = 1;
        } else {
            te->other = 1;
            te->last_chunked = 0;
        }
    }
    if (rc < 0)
        te->bad = 1;
}

static unsigned connection_flags(struct slice v, int *bad)
{
    unsigned flags = 0;
    struct http_list_iter it = http_list_begin(v);
    struct slice el;
    int rc;
    while ((rc = http_list_next(&it, &el)) > 0) {
        if (!http_is_token(el))
            *bad = 1;
        else if (slice_case_eq(el, "close"))
            flags |= HTTP_CONN_CLOSE;
        else if (slice_case_eq(el, "keep-alive"))
            flags |= HTTP_CONN_KEEPALIVE;
        else if (slice_case_eq(el, "upgrade"))
            flags |= HTTP_CONN_UPGRADE;
        else
            flags |= HTTP_CONN_OTHER;
    }
    if (rc < 0)
        *bad = 1;
    return flags;
}

/* Request framing and the fields a proxy must understand (RFC 9112 §6.3,
 * §3.2; RFC 9110 §10.1.1). */
static int request_semantics(struct http_request *r)
{
    int hosts = 0, lengths = 0, te_seen = 0, bad = 0;
    struct te_state te = {0};
    for (unsigned i = 0; i < r->nfields; i++) {
        const struct http_field *f = &r->fields[i];
        switch (f->id) {
        case HF_HOST:
            if (hosts++)
                return refuse(&r->error, HTTP_ERR_HOST_DUPLICATE, 400);
            r->host = f->value;
            break;
        case HF_CONTENT_LENGTH:
            if (lengths++)
                return refuse(&r->error, HTTP_ERR_CL_DUPLICATE, 400);
            if (http_content_length_parse(f->value, &r->content_length) < 0)
                return refuse(&r->error, HTTP_ERR_CL_INVALID, 400);
            break;
        case HF_CONNECTION:
            r->conn_flags |= connection_flags(f->value, &bad);
            break;
        case HF_TRANSFER_ENCODING:
            te_seen = 1;
            te_add(&te, f->value);
            break;
        case HF_EXPECT:
            if (r->minor >= 1) {
                if (!slice_case_eq(f->value, "100-continue"))
                    return refuse(&r->error, HTTP_ERR_EXPECT, 417);
                r->expect_continue = 1;
            }
            break;
        case HF_UPGRADE:
            r->has_upgrade = 1;
            break;
        default:
            break;
        }
    }
    if (bad)
        return refuse(&r->error, HTTP_ERR_CONNECTION, 400);
    /* RFC 9112 §3.2: exactly one valid Host in every HTTP/1.1 request. */
    if (r->minor >= 1 && hosts == 0)
        return refuse(&r->error, HTTP_ERR_HOST_MISSING, 400);
    if (hosts && !http_valid_authority(r->host, false))
        return refuse(&r->error, HTTP_ERR_HOST_INVALID, 400);
    if (te_seen) {
        /* §6.1: TE in 1.0 is faulty framing; §6.3: TE with CL is smuggling. */
        if (lengths)
            return refuse(&r->error, HTTP_ERR_CL_WITH_TE, 400);
        if (r->minor == 0)
            return refuse(&r->error, HTTP_ERR_TE_HTTP10, 400);
        if (te.bad || te.chunked_count > 1)
            return refuse(&r->error, HTTP_ERR_TE_INVALID, 400);
        if (!te.last_chunked)
            return refuse(&r->error, HTTP_ERR_TE_NOT_CHUNKED, 400);
        if (te.other)
            return refuse(&r->error, HTTP_ERR_TE_UNSUPPORTED, 501);
        r->body = HTTP_BODY_CHUNKED;
    } else if (lengths) {
        r->body = r->content_length ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
    } else {
        r->body = HTTP_BODY_NONE;
    }
    return 0;
}

int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *r)
{
    size_t pos = 0;
    r->nfields = 0;
    r->conn_flags = 0;
    r->expect_continue = 0;
    r->has_upgrade = 0;
    r->content_length = 0;
    r->host = r->authority = r->scheme = (struct slice){0};
    r->error = HTTP_ERR_NONE;
    enum http_error *why = &r->error;
    /* RFC 9112 §2.2: ignore at least one empty line before the request. */
    for (int skipped = 0; pos < len && buf[pos] == '\r' && skipped < 2; skipped++) {
        if (pos + 1 >= len)
            return HTTP_PARSE_MORE;
        if (buf[pos + 1] != '\n')
            return refuse(why, HTTP_ERR_BARE_CR, 400);
        pos += 2;
    }
    size_t line = pos;
    while (pos < len && http_is((unsigned char)buf[pos], CH_TCHAR))
        pos++;
    r->method = (struct slice){buf + line, pos - line};
    if (pos >= len)
        goto more;
    if (buf[pos] != ' ' || r->method.len == 0)
        return refuse(why, HTTP_ERR_METHOD, 400);
    size_t t = ++pos;
    while (pos < len && http_is((unsigned char)buf[pos], CH_TARGET)) {
        if (buf[pos] == '%') {
            if (pos + 2 >= len)
                goto more;
            if (!http_is((unsigned char)buf[pos + 1], CH_HEX) ||
                !http_is((unsigned char)buf[pos + 2], CH_HEX))
                return refuse(why, HTTP_ERR_TARGET, 400);
            pos += 2;
        }
        pos++;
    }
    r->target = (struct slice){buf + t, pos - t};
    if (pos >= len)
        goto more;
    if (buf[pos] != ' ' || r->target.len == 0) {
        if (pos - line > lim->request_line)
            return refuse(why, HTTP_ERR_REQUEST_LINE, 414);
        /* "GET /\r\n" is HTTP/0.9; anything else is a bad byte */
        return refuse(why,
                      r->target.len && (buf[pos] == '\r' || buf[pos] == '\n') ? HTTP_ERR_HTTP09
                                                                              : HTTP_ERR_TARGET,
                      400);
    }
    pos++;
    if (len - pos < 10)
        goto more;
    int v = parse_version(buf + pos);
    if (v < 0)
        return refuse(why, v == -505 ? HTTP_ERR_VERSION_MAJOR : HTTP_ERR_VERSION, -v);
    r->minor = v;
    pos += 8;
    if (buf[pos] != '\r' || buf[pos + 1] != '\n')
        return refuse(why,
                      buf[pos] == '\n'   ? HTTP_ERR_BARE_LF
                      : buf[pos] == '\r' ? HTTP_ERR_BARE_CR
                                         : HTTP_ERR_VERSION,
                      400);
    if (pos - line > lim->request_line)
        return refuse(why, HTTP_ERR_REQUEST_LINE, 414);
    int rc = classify_target(r);
    if (rc)
        return rc;
    rc = parse_fields(buf, len, pos + 2, lim, r->fields, r->fields_cap, &r->nfields, &r->head_len,
                      why);
    if (rc != HTTP_PARSE_OK)
        return rc;
    return request_semantics(r);
more:
    return len - line > lim->request_line + 2 ? refuse(why, HTTP_ERR_REQUEST_LINE, 414)
                                              : HTTP_PARSE_MORE;
}

size_t http_request_copy_size(const struct http_request *r)
{
    return r->nfields * sizeof(struct http_field) + r->head_len;
}

/* A slice into [head, head + len) moves to the same offset in `to`; an
 * empty one stays as it is. */
static struct slice rebase(struct slice s, const char *head, size_t len, const char *to)
{
    uintptr_t at = (uintptr_t)s.p, from = (uintptr_t)head;
    if (!s.p || at < from || at - from > len)
        return s;
    return (struct slice){to + (at - from), s.len};
}

void http_request_copy(struct http_request *dst, const struct http_request *r, const char *head,
                       void *arena)
{
    struct http_field *fields = arena;
    char *bytes = (char *)(fields + r->nfields);
    size_t len = r->head_len;
    memcpy(bytes, head, len);
    *dst = *r;
    dst->fields = fields;
    dst->fields_cap = r->nfields;
    dst->method = rebase(r->method, head, len, bytes);
    dst->target = rebase(r->target, head, len, bytes);
    dst->host = rebase(r->host, head, len, bytes);
    dst->authority = rebase(r->authority, head, len, bytes);
    dst->path = rebase(r->path, head, len, bytes);
    dst->scheme = rebase(r->scheme, head, len, bytes);
    for (unsigned i = 0; i < r->nfields; i++) {
        fields[i].name = rebase(r->fields[i].name, head, len, bytes);
        fields[i].value = rebase(r->fields[i].value, head, len, bytes);
        fields[i].id = r->fields[i].id;
    }
}

static int response_semantics(struct http_response *r)
{
    int lengths = 0, bad = 0;
    struct te_state te = {0};
    for (unsigned i = 0; i < r->nfields; i++) {
        const struct http_field *f = &r->fields[i];
        if (f->id == HF_CONTENT_LENGTH) {
            if (lengths++)
                return refuse(&r->error, HTTP_ERR_CL_DUPLICATE, 502);
            if (http_content_length_parse(f->value, &r->content_length) < 0)
                return refuse(&r->error, HTTP_ERR_CL_INVALID, 502);
        } else if (f->id == HF_TRANSFER_ENCODING) {
            r->has_transfer_encoding = 1;
            te_add(&te, f->value);
        } else if (f->id == HF_CONNECTION) {
            r->conn_flags |= connection_flags(f->value, &bad);
        }
    }
    if (bad)
        return refuse(&r->error, HTTP_ERR_CONNECTION, 502);
    if (te.bad || te.chunked_count > 1)
        return refuse(&r->error, HTTP_ERR_TE_INVALID, 502);
    if (r->has_transfer_encoding && lengths) /* RFC 9112 §6.3: smuggling or a broken origin */
        return refuse(&r->error, HTTP_ERR_CL_WITH_TE, 502);
    /* We decode the framing and relay the content: a coding we do not decode
     * (gzip, chunked) would be dropped with the framing and the content altered
     * and stored that way (RFC 9112 §6.1). Only exactly "chunked" is accepted. */
    if (r->has_transfer_encoding && (te.other || !te.last_chunked))
        return refuse(&r->error, te.other ? HTTP_ERR_TE_UNSUPPORTED : HTTP_ERR_TE_NOT_CHUNKED, 502);
    r->has_content_length = lengths;
    r->te_chunked = te.last_chunked;
    return 0;
}

int http_parse_response(const char *buf, size_t len, const struct http_limits *lim,
                        struct http_response *r)
{
    r->nfields = 0;
    r->conn_flags = 0;
    r->has_content_length = r->has_transfer_encoding = r->te_chunked = 0;
    r->content_length = 0;
    r->error = HTTP_ERR_NONE;
    if (len < 12) {
        /* Reject garbage early rather than waiting for more of it. */
        if (len && memcmp(buf, "HTTP/1.", len < 7 ? len : 7) != 0)
            return 502;
        return HTTP_PARSE_MORE;
    }
    int v = parse_version(buf);
    if (v < 0 || buf[8] != ' ')
        return 502;
    r->minor = v;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (!http_is((unsigned char)buf[i], CH_DIGIT))
            return 502;
        status = status * 10 + (buf[i] - '0');
    }
    if (status < 100 || status > 599)
        return 502;
    r->status = status;
    size_t pos = 12;
    if (pos >= len)
        return HTTP_PARSE_MORE;
    if (buf[pos] == ' ')
        pos++;
    else if (buf[pos] != '\r')
        return 502; /* a fourth digit or junk after the status code */
    size_t rs = pos;
    while (pos < len && http_is((unsigned char)buf[pos], CH_VALUE))
        pos++;
    if (pos + 1 >= len)
        return pos > lim->request_line ? 502 : HTTP_PARSE_MORE;
    if (buf[pos] != '\r' || buf[pos + 1] != '\n')
        return 502;
    r->reason = (struct slice){buf + rs, pos - rs};
    int rc = parse_fields(buf, len, pos + 2, lim, r->fields, HTTP_FIELDS_MAX, &r->nfields,
                          &r->head_len, &r->error);
    if (rc == HTTP_PARSE_MORE)
        return rc;
    if (rc != HTTP_PARSE_OK)
        return 502;
    return response_semantics(r);
}

/* RFC 9112 §6.3, in order. */
enum http_body_kind http_response_body_kind(const struct http_response *r, int method_head)
{
    if (method_head || r->status < 200 || r->status == 204 || r->status == 304)
        return HTTP_BODY_NONE;
    if (r->has_transfer_encoding)
        return r->te_chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_CLOSE;
    if (r->has_content_length)
        return r->content_length ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
    return HTTP_BODY_CLOSE;
}
