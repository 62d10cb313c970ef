/* RFC 9113 §8.2-§8.3: an h2 request's fields to the pipeline's request,
 * and the fields an h2 response may carry. See h2_request.h for which
 * checks nghttp2 makes first. */
#include <string.h>
#include <strings.h>
#include "http/h2_request.h"
#include "http/chars.h"
#include "http/fields.h"

/* The pseudo-header fields of a request (§8.3.1; :protocol, RFC 8441 §4). */
enum {
    H2P_METHOD = 1,
    H2P_SCHEME = 2,
    H2P_AUTHORITY = 4,
    H2P_PATH = 8,
    H2P_PROTOCOL = 16,
};

size_t h2_request_arena_size(const struct h2_request_limits *lim)
{
    /* every name and value fits in max_header_list (each costs 32 more
     * there); the joined cookie line is at most as long again */
    return 2 * (size_t)lim->max_header_list + 64;
}

void h2_request_init(struct h2_request *h, const struct h2_request_limits *lim, char *arena,
                     size_t arena_cap, struct http_field *fields, unsigned fields_cap)
{
    *h = (struct h2_request){.arena = arena,
                             .arena_cap = arena_cap,
                             .fields = fields,
                             .fields_cap = fields_cap,
                             .max_list = lim->max_header_list,
                             .max_fields = lim->max_fields,
                             .max_line = lim->max_request_line};
}

static enum h2_request_verdict refuse(struct h2_request *h, enum h2_request_verdict v,
                                      const char *why)
{
    if (h->verdict == H2_REQUEST_OK) {
        h->verdict = v;
        h->why = why;
    }
    return h->verdict;
}

/* A copy in the arena: nghttp2's bytes last only for the callback. */
static int keep(struct h2_request *h, struct slice s, struct slice *out)
{
    if (s.len > h->arena_cap - h->used)
        return -1;
    if (s.len)
        memcpy(h->arena + h->used, s.p, s.len);
    *out = (struct slice){h->arena + h->used, s.len};
    h->used += s.len;
    return 0;
}

/* §8.2.1: lowercase token characters only. */
static int valid_name(struct slice n)
{
    if (n.len == 0)
        return 0;
    for (size_t i = 0; i < n.len; i++) {
        unsigned char c = (unsigned char)n.p[i];
        if (!http_is(c, CH_TCHAR) || (c >= 'A' && c <= 'Z'))
            return 0;
    }
    return 1;
}

/* §8.2.1: field-vchar, SP, HTAB (no NUL, CR, LF), and no whitespace at
 * either end. */
static int valid_value(struct slice v)
{
    for (size_t i = 0; i < v.len; i++)
        if (!http_is((unsigned char)v.p[i], CH_VALUE))
            return 0;
    if (v.len &&
        (v.p[0] == ' ' || v.p[0] == '\t' || v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
        return 0;
    return 1;
}

/* §8.2.2: fields of a connection, meaningless on a stream. */
static int connection_specific(struct slice n)
{
    return slice_case_eq(n, "connection") || slice_case_eq(n, "keep-alive") ||
           slice_case_eq(n, "proxy-connection") || slice_case_eq(n, "transfer-encoding") ||
           slice_case_eq(n, "upgrade");
}

static enum h2_request_verdict pseudo_field(struct h2_request *h, struct slice name,
                                            struct slice value)
{
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {{":method", H2P_METHOD},
                 {":scheme", H2P_SCHEME},
                 {":authority", H2P_AUTHORITY},
                 {":path", H2P_PATH},
                 {":protocol", H2P_PROTOCOL}};
    /* §8.3: pseudo-headers come before every regular field */
    if (h->regular_seen)
        return refuse(h, H2_REQUEST_MALFORMED, "pseudo-header after a regular field");
    unsigned bit = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (slice_eq(name, (struct slice){known[i].name, strlen(known[i].name)}))
            bit = known[i].bit;
    if (!bit)
        return refuse(h, H2_REQUEST_MALFORMED, "unknown pseudo-header");
    if (h->pseudo_seen & bit)
        return refuse(h, H2_REQUEST_MALFORMED, "repeated pseudo-header");
    h->pseudo_seen |= bit;
    struct slice *dst = bit == H2P_METHOD      ? &h->method
                        : bit == H2P_SCHEME    ? &h->scheme
                        : bit == H2P_AUTHORITY ? &h->authority
                        : bit == H2P_PATH      ? &h->path
                                               : &h->protocol;
    if (bit == H2P_METHOD && !http_is_token(value))
        return refuse(h, H2_REQUEST_MALFORMED, "invalid :method");
    if (bit != H2P_METHOD && !valid_value(value))
        return refuse(h, H2_REQUEST_MALFORMED, "invalid pseudo-header value");
    if (keep(h, value, dst) < 0)
        return refuse(h, H2_REQUEST_TOO_LARGE, "header list too large");
    return H2_REQUEST_OK;
}

/* limits.header_count, for the fields as the pipeline will have them:
 * cookie crumbs join into one (§8.2.3), so only the first counts, and
 * a browser that splits its cookies for HPACK is served as one that
 * sends them in one HTTP/1.1 line. */
static int too_many_fields(const struct h2_request *h, struct slice name)
{
    if (h->cookies && slice_case_eq(name, "cookie"))
        return 0;
    unsigned joined = h->nfields - h->cookies + (h->cookies ? 1 : 0);
    return joined >= h->max_fields;
}

enum h2_request_verdict h2_request_field(struct h2_request *h, struct slice name,
                                         struct slice value)
{
    if (h->verdict != H2_REQUEST_OK)
        return h->verdict;
    /* §6.5.2: the size of a field in the list is its name and value
     * lengths plus 32 */
    h->list_size += name.len + value.len + 32;
    if (h->list_size > h->max_list)
        return refuse(h, H2_REQUEST_TOO_LARGE, "header list over h2.max_header_list");
    if (name.len && name.p[0] == ':')
        return pseudo_field(h, name, value);
    h->regular_seen = 1;
    if (!valid_name(name))
        return refuse(h, H2_REQUEST_MALFORMED, "invalid field name");
    if (!valid_value(value))
        return refuse(h, H2_REQUEST_MALFORMED, "invalid field value");
    if (connection_specific(name))
        return refuse(h, H2_REQUEST_MALFORMED, "connection-specific field");
    /* §8.2.2: TE may appear, with "trailers" only */
    if (slice_case_eq(name, "te") && !slice_case_eq(value, "trailers"))
        return refuse(h, H2_REQUEST_MALFORMED, "te other than trailers");
    if (slice_case_eq(name, "content-length")) {
        if (h->has_length)
            return refuse(h, H2_REQUEST_MALFORMED, "repeated content-length");
        if (http_content_length_parse(value, &h->content_length) < 0)
            return refuse(h, H2_REQUEST_MALFORMED, "invalid content-length");
        h->has_length = 1;
    }
    if (h->nfields + 2 > h->fields_cap || too_many_fields(h, name))
        return refuse(h, H2_REQUEST_TOO_LARGE, "too many fields (limits.header_count)");
    struct http_field *f = &h->fields[h->nfields];
    if (keep(h, name, &f->name) < 0 || keep(h, value, &f->value) < 0)
        return refuse(h, H2_REQUEST_TOO_LARGE, "header list too large");
    f->id = http_field_classify(name);
    h->nfields++;
    if (f->id == HF_HOST) {
        if (h->host.p)
            return refuse(h, H2_REQUEST_BAD, "repeated host");
        h->host = f->value;
    } else if (f->id == HF_EXPECT) {
        /* RFC 9110 §10.1.1: the only expectation defined; we cannot meet
         * another (nor forward it: Expect does not go upstream), as the
         * HTTP/1 front answers (417) */
        if (!slice_case_eq(value, "100-continue"))
            return refuse(h, H2_REQUEST_EXPECTATION_FAILED, "expect other than 100-continue");
        h->expect_continue = 1;
    } else if (slice_case_eq(name, "cookie")) {
        h->cookies++;
    } else if (slice_case_eq(name, "content-type")) {
        /* gRPC over HTTP/2: "application/grpc" [("+proto" / "+json" / ...)]
         * [";" params]; grpc-web is another protocol, over any version */
        struct slice g = SLICE_LIT("application/grpc");
        h->grpc = value.len >= g.len && !strncasecmp(value.p, g.p, g.len) &&
                  (value.len == g.len || value.p[g.len] == '+' || value.p[g.len] == ';' ||
                   value.p[g.len] == ' ');
    }
    return H2_REQUEST_OK;
}

/* §8.2.3: crumbs are joined with "; " into one field before an HTTP/1.1
 * hop (and before keys and Vary see them). The joined line goes to the
 * arena; the crumbs leave the field list. An empty crumb adds no cookie:
 * it is skipped, so "a=1" + "" is "a=1" as in the HTTP/1.1 request (no
 * "a=1; " that would key apart); all of them empty: an empty line. */
static int join_cookies(struct h2_request *h, struct slice *joined)
{
    size_t start = h->used;
    for (unsigned i = 0; i < h->nfields; i++) {
        if (!slice_case_eq(h->fields[i].name, "cookie") || h->fields[i].value.len == 0)
            continue;
        struct slice sep = h->used > start ? SLICE_LIT("; ") : (struct slice){"", 0}, dummy;
        if (keep(h, sep, &dummy) < 0 || keep(h, h->fields[i].value, &dummy) < 0)
            return -1;
    }
    *joined = (struct slice){h->arena + start, h->used - start};
    return 0;
}

/* The request's fields as the pipeline wants them: host first (from
 * :authority), the rest in order without the client's host and the
 * crumbs, then the one cookie line. */
static void arrange_fields(struct h2_request *h, struct slice host, struct slice cookie)
{
    unsigned j = 0;
    for (unsigned i = 0; i < h->nfields; i++) {
        if (h->fields[i].id == HF_HOST ||
            (h->cookies && slice_case_eq(h->fields[i].name, "cookie")))
            continue;
        h->fields[j++] = h->fields[i];
    }
    memmove(h->fields + 1, h->fields, j * sizeof *h->fields);
    h->fields[0] = (struct http_field){SLICE_LIT("host"), host, HF_HOST};
    j++;
    if (h->cookies)
        h->fields[j++] = (struct http_field){SLICE_LIT("cookie"), cookie, HF_OTHER};
    h->nfields = j;
}

/* §8.3.1: :path is "*" for OPTIONS * and otherwise an absolute path with
 * an optional query (http and https URIs). */
static enum h2_request_verdict check_path(struct h2_request *h, enum http_target_form *form)
{
    struct slice p = h->path;
    if (p.len == 0)
        return refuse(h, H2_REQUEST_MALFORMED, "empty :path");
    if (p.len == 1 && p.p[0] == '*') {
        if (!slice_eq(h->method, SLICE_LIT("OPTIONS")))
            return refuse(h, H2_REQUEST_MALFORMED, ":path * without OPTIONS");
        *form = HTTP_TARGET_ASTERISK;
        return H2_REQUEST_OK;
    }
    if (p.p[0] != '/')
        return refuse(h, H2_REQUEST_MALFORMED, ":path not starting with /");
    for (size_t i = 0; i < p.len; i++)
        if (!http_is((unsigned char)p.p[i], CH_TARGET))
            return refuse(h, H2_REQUEST_BAD, "invalid :path");
    *form = HTTP_TARGET_ORIGIN;
    return H2_REQUEST_OK;
}

/* :method and :path are the origin's request line ("GET /x HTTP/1.1",
 * RFC 9112 §3): limits.request_line holds as over HTTP/1.1 (414). */
static int request_line_too_long(const struct h2_request *h)
{
    size_t line = h->method.len + 1 + h->path.len + strlen(" HTTP/1.1");
    return h->max_line && line > h->max_line;
}

enum h2_request_verdict h2_request_end(struct h2_request *h, int end_stream,
                                       struct http_request *out, enum h2_request_body *body)
{
    if (h->verdict != H2_REQUEST_OK)
        return h->verdict;
    if (!(h->pseudo_seen & H2P_METHOD))
        return refuse(h, H2_REQUEST_MALFORMED, "no :method");
    /* RFC 8441 §4: :protocol belongs to an extended CONNECT only */
    if ((h->pseudo_seen & H2P_PROTOCOL) && !slice_eq(h->method, SLICE_LIT("CONNECT")))
        return refuse(h, H2_REQUEST_MALFORMED, ":protocol without CONNECT");
    if (slice_eq(h->method, SLICE_LIT("CONNECT"))) {
        /* §8.5: :authority only, unless extended (RFC 8441): both are
         * tunnels, which this release does not carry over h2 */
        if (!(h->pseudo_seen & H2P_PROTOCOL) &&
            (h->pseudo_seen & (H2P_SCHEME | H2P_PATH | H2P_AUTHORITY)) != H2P_AUTHORITY)
            return refuse(h, H2_REQUEST_MALFORMED, "CONNECT with :scheme or :path");
        return refuse(h, H2_REQUEST_NOT_IMPLEMENTED, "CONNECT over h2 is not supported");
    }
    if ((h->pseudo_seen & (H2P_SCHEME | H2P_PATH)) != (H2P_SCHEME | H2P_PATH))
        return refuse(h, H2_REQUEST_MALFORMED, "no :scheme or :path");
    if (!slice_case_eq(h->scheme, "http") && !slice_case_eq(h->scheme, "https"))
        return refuse(h, H2_REQUEST_BAD, ":scheme not http or https");
    enum http_target_form form;
    if (check_path(h, &form) != H2_REQUEST_OK)
        return h->verdict;
    if (request_line_too_long(h))
        return refuse(h, H2_REQUEST_URI_TOO_LONG, "request line over limits.request_line");
    struct slice host = h->authority.p ? h->authority : h->host;
    if (!host.p)
        return refuse(h, H2_REQUEST_BAD, "no :authority or host");
    /* §8.3.1: no userinfo in an http or https :authority */
    if (memchr(host.p, '@', host.len) || !http_valid_authority(host, false))
        return refuse(h, H2_REQUEST_BAD, "invalid :authority");
    /* §8.3.1: a host that names another entity than :authority */
    if (h->authority.p && h->host.p && !slice_case_eqs(h->authority, h->host))
        return refuse(h, H2_REQUEST_BAD, "host differs from :authority");
    if (h->grpc)
        return refuse(h, H2_REQUEST_UNSUPPORTED_MEDIA, "native gRPC needs h2 to the origin");
    /* §8.1.1: END_STREAM on the HEADERS is an empty content */
    if (end_stream && h->has_length && h->content_length > 0)
        return refuse(h, H2_REQUEST_MALFORMED, "content-length with no DATA");
    struct slice cookie = {0};
    if (h->cookies && join_cookies(h, &cookie) < 0)
        return refuse(h, H2_REQUEST_TOO_LARGE, "header list too large");
    arrange_fields(h, host, cookie);

    *out = (struct http_request){0};
    out->method = h->method;
    out->target = h->path;
    out->path = h->path;
    out->host = host;
    out->form = form;
    out->minor = 1;
    out->expect_continue = h->expect_continue;
    out->head_len = h->used;
    out->nfields = h->nfields;
    out->fields = h->fields;
    out->fields_cap = h->fields_cap;
    if (end_stream) {
        *body = H2_BODY_NONE;
        out->body = HTTP_BODY_NONE;
    } else if (h->has_length) {
        *body = H2_BODY_LENGTH;
        out->body = HTTP_BODY_LENGTH;
        out->content_length = h->content_length;
    } else {
        /* END_STREAM ends it; the caller sets the pipeline's kind for a
         * body of unknown length */
        *body = H2_BODY_STREAM;
        out->body = HTTP_BODY_NONE;
    }
    return H2_REQUEST_OK;
}

enum h2_request_verdict h2_trailer_field(struct slice name, struct slice value)
{
    /* §8.1: "Pseudo-header fields MUST NOT appear in a trailer section" */
    if (name.len && name.p[0] == ':')
        return H2_REQUEST_MALFORMED;
    if (!valid_name(name) || !valid_value(value) || connection_specific(name))
        return H2_REQUEST_MALFORMED;
    return H2_REQUEST_OK;
}

enum h2_request_verdict h2_trailers_end(int end_stream)
{
    /* §8.1: a HEADERS after the first one without END_STREAM is malformed */
    return end_stream ? H2_REQUEST_OK : H2_REQUEST_MALFORMED;
}

int h2_response_keeps_field(struct slice name, struct slice connection)
{
    if (connection_specific(name) || slice_case_eq(name, "te") || slice_case_eq(name, "trailer") ||
        (name.len && name.p[0] == ':'))
        return 0;
    struct http_list_iter it = http_list_begin(connection);
    struct slice el;
    while (http_list_next(&it, &el) == 1)
        if (slice_case_eqs(el, name))
            return 0;
    return 1;
}

int h2_next_field_line(struct slice *rest, struct http_field *f)
{
    if (!rest->len)
        return 0;
    const char *p = rest->p, *end = rest->p + rest->len;
    const char *colon = memchr(p, ':', rest->len);
    const char *eol = memchr(p, '\n', rest->len);
    if (!eol)
        eol = end;
    if (!colon || colon > eol || colon == p) {
        *rest = (struct slice){end, 0};
        return 0;
    }
    const char *v = colon + 1, *ve = eol;
    if (ve > v && ve[-1] == '\r')
        ve--;
    while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    f->name = (struct slice){p, (size_t)(colon - p)};
    f->value = (struct slice){v, (size_t)(ve - v)};
    f->id = http_field_classify(f->name);
    size_t used = eol < end ? (size_t)(eol - p) + 1 : (size_t)(end - p);
    *rest = (struct slice){p + used, rest->len - used};
    return 1;
}

void h2_status_digits(int status, char out[3])
{
    if (status < 100 || status > 999)
        status = 500;
    out[0] = (char)('0' + status / 100);
    out[1] = (char)('0' + status / 10 % 10);
    out[2] = (char)('0' + status % 10);
}
