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

const struct http_field *http_find_field(const struct http_field *f, unsigned n, const char *name)
{
    for (unsigned i = 0; i < n; i++)
        if (slice_case_eq(f[i].name, name))
            return &f[i];
    return NULL;
}

static const char *const hop_names[] = {
    "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "content-length",
    NULL,
};

bool http_is_hop_by_hop(struct slice name, const struct http_field *fields, unsigned n)
{
    for (int i = 0; hop_names[i]; i++)
        if (slice_case_eq(name, hop_names[i]))
            return true;
    /* Proxy-Connection, Proxy-Authorization, ...: meant for this hop. */
    if (name.len > 6 && slice_case_eq((struct slice){name.p, 6}, "proxy-"))
        return true;
    for (unsigned i = 0; i < n; i++) {
        if (!slice_case_eq(fields[i].name, "connection"))
            continue;
        struct http_list_iter it = http_list_begin(fields[i].value);
        struct slice el;
        while (http_list_next(&it, &el) > 0)
            if (slice_case_eqs(el, name))
                return true;
    }
    return false;
}
