/* Field-value list parsing and the hop-by-hop rules of RFC 9110 §7.6.1. */
#include "http/fields.h"
#include "http/chars.h"

int http_list_next(struct http_list_iter *it, struct slice *el)
{
    for (;;) {
        while (it->p < it->end && (*it->p == ' ' || *it->p == '\t' || *it->p == ','))
            it->p++;
        if (it->p >= it->end)
            return 0;
        const char *s = it->p;
        int quoted = 0;
        while (it->p < it->end) {
            char c = *it->p;
            if (quoted) {
                if (c == '\\' && it->p + 1 < it->end)
                    it->p++;
                else if (c == '"')
                    quoted = 0;
            } else if (c == '"') {
                quoted = 1;
            } else if (c == ',') {
                break;
            }
            it->p++;
        }
        if (quoted)
            return -1;
        const char *e = it->p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s) {
            *el = (struct slice){s, (size_t)(e - s)};
            return 1;
        }
    }
}

bool http_is_token(struct slice s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!http_is((unsigned char)s.p[i], CH_TCHAR))
            return false;
    return true;
}

static size_t skip_ows(struct slice v, size_t i)
{
    while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t'))
        i++;
    return i;
}

static size_t skip_token(struct slice v, size_t i)
{
    while (i < v.len && http_is((unsigned char)v.p[i], CH_TCHAR))
        i++;
    return i;
}

/* RFC 9110 §5.6.4: quoted-string from the opening DQUOTE at i; the index
 * after the closing DQUOTE, or 0 when it does not close. */
static size_t skip_quoted(struct slice v, size_t i)
{
    for (i++; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.p[i];
        if (ch == '"')
            return i + 1;
        if (ch == '\\') {
            if (++i == v.len)
                return 0;
            ch = (unsigned char)v.p[i];
        }
        if (!http_is(ch, CH_VALUE))
            return 0;
    }
    return 0;
}

enum http_forwarded_syntax http_forwarded_check(struct slice v)
{
    unsigned pairs = 0;
    size_t i = 0;
    while (i < v.len) {
        /* one forwarded-pair, or the separators around it; OWS is taken
         * around ";" and "," (the list rule, and senders that space) */
        i = skip_ows(v, i);
        if (i == v.len)
            break;
        if (v.p[i] == ',' || v.p[i] == ';') {
            i++;
            continue;
        }
        size_t name_end = skip_token(v, i);
        if (name_end == i || name_end == v.len || v.p[name_end] != '=')
            return HTTP_FORWARDED_MALFORMED;
        i = name_end + 1;
        if (i < v.len && v.p[i] == '"') {
            i = skip_quoted(v, i);
            if (i == 0)
                return HTTP_FORWARDED_MALFORMED;
        } else {
            size_t value_end = skip_token(v, i);
            if (value_end == i)
                return HTTP_FORWARDED_MALFORMED;
            i = value_end;
        }
        pairs++;
        i = skip_ows(v, i);
        if (i < v.len && v.p[i] != ',' && v.p[i] != ';')
            return HTTP_FORWARDED_MALFORMED;
    }
    return pairs ? HTTP_FORWARDED_WELL_FORMED : HTTP_FORWARDED_MALFORMED;
}

const struct http_field *http_find_field(const struct http_field *f, unsigned n, const char *name)
{
    size_t len = strlen(name);
    unsigned char first = len ? http_lower((unsigned char)name[0]) : 0;
    for (unsigned i = 0; i < n; i++)
        if (f[i].name.len == len && http_lower((unsigned char)f[i].name.p[0]) == first &&
            slice_case_eqs(f[i].name, (struct slice){name, len}))
            return &f[i];
    return NULL;
}

/* Dispatch on length, then compare: one case-insensitive compare at most. */
enum http_field_id http_field_classify(struct slice n)
{
    static const struct {
        const char *name;
        enum http_field_id id;
    } by_len[][2] = {
        [2] = {{"te", HF_TE}},
        [3] = {{"via", HF_OTHER}},
        [4] = {{"host", HF_HOST}},
        [6] = {{"expect", HF_EXPECT}},
        [7] = {{"trailer", HF_TRAILER}, {"upgrade", HF_UPGRADE}},
        [9] = {{"forwarded", HF_FORWARDED}},
        [10] = {{"connection", HF_CONNECTION}, {"keep-alive", HF_KEEP_ALIVE}},
        [14] = {{"content-length", HF_CONTENT_LENGTH}},
        [15] = {{"x-forwarded-for", HF_X_FORWARDED_FOR}},
        [17] = {{"transfer-encoding", HF_TRANSFER_ENCODING}},
    };
    if (n.len > 6 && http_lower((unsigned char)n.p[0]) == 'p' &&
        slice_case_eq((struct slice){n.p, 6}, "proxy-"))
        return HF_PROXY;
    if (n.len > 5 && http_lower((unsigned char)n.p[0]) == 'i' &&
        slice_case_eq((struct slice){n.p, 5}, "idem-"))
        return HF_IDEM;
    if (n.len >= sizeof by_len / sizeof by_len[0])
        return HF_OTHER;
    for (int i = 0; i < 2 && by_len[n.len][i].name; i++)
        if (http_lower((unsigned char)n.p[0]) == by_len[n.len][i].name[0] &&
            slice_case_eq(n, by_len[n.len][i].name))
            return by_len[n.len][i].id;
    return HF_OTHER;
}

bool http_is_hop_by_hop(const struct http_field *f, const struct http_field *fields, unsigned n,
                        unsigned conn_flags)
{
    switch (f->id) {
    case HF_CONNECTION:
    case HF_KEEP_ALIVE:
    case HF_TE:
    case HF_TRAILER:
    case HF_TRANSFER_ENCODING:
    case HF_UPGRADE:
    case HF_CONTENT_LENGTH:
    case HF_PROXY:
    case HF_IDEM:
        return true;
    default:
        break;
    }
    /* Only when Connection named something else is a scan needed. */
    if (!(conn_flags & HTTP_CONN_OTHER))
        return false;
    for (unsigned i = 0; i < n; i++) {
        if (fields[i].id != HF_CONNECTION)
            continue;
        struct http_list_iter it = http_list_begin(fields[i].value);
        struct slice el;
        while (http_list_next(&it, &el) > 0)
            if (slice_case_eqs(el, f->name))
                return true;
    }
    return false;
}
