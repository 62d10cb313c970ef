/* Cached objects: building the stored head, the body segments, Vary
 * secondary keys (RFC 9111 §4.1) and 304 field merging (§3.2, §4.3.4). */
#include <stdlib.h>
#include <string.h>
#include "cache/object.h"
#include "http/chars.h"
#include "http/fields.h"

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

/* Fields a cache must not store or replay (§3.1): hop-by-hop, framing,
 * Age (recomputed) and our own Cache-Status. */
static int field_dropped(const struct http_field *f, const struct http_field *all, unsigned n,
                         unsigned conn_flags)
{
    return http_is_hop_by_hop(f, all, n, conn_flags) || slice_case_eq(f->name, "age") ||
           slice_case_eq(f->name, "cache-status");
}

/* RFC 7234 §5.5 (obsoleted by RFC 9111 §5.5, still read by some
 * clients): a 1xx warn-code (110 Response is Stale, 111 Revalidation
 * Failed, 112 Disconnected Operation, 113 Heuristic Expiration) describes
 * the response's freshness at the cache that added it, so a cache "MUST"
 * delete it after validation and never replays another's (§4.3.4 deletes
 * stored 1xx, keeps 2xx). We add our own per response (cache_stage.c). */
enum warning_line {
    WARNING_LINE_KEPT,      /* no 1xx member: stored as sent */
    WARNING_LINE_DROPPED,   /* only 1xx members, or not a readable list */
    WARNING_LINE_REWRITTEN, /* its other members (214 ...) are stored */
};

/* warn-code = 3DIGIT; a member is read by its first three bytes. */
static int warning_member_1xx(struct slice m)
{
    return m.len >= 3 && m.p[0] == '1' && http_is((unsigned char)m.p[1], CH_DIGIT) &&
           http_is((unsigned char)m.p[2], CH_DIGIT);
}

/* One Warning line's value without its 1xx members, written to `out`
 * (NULL: only the verdict), which has room for value.len bytes: the kept
 * members are joined by "," and the list had at least one comma between
 * any two, so never longer. A line with nothing left is dropped, and so
 * is one with an unterminated quote, which hides where members end
 * (Warning is advisory: a stale warning replayed on a fresh hit misleads). */
static enum warning_line warning_filter(struct slice value, char *out, size_t *out_len)
{
    struct http_list_iter it = http_list_begin(value);
    struct slice m;
    int rc, kept = 0, dropped = 0;
    size_t len = 0;
    while ((rc = http_list_next(&it, &m)) > 0) {
        if (warning_member_1xx(m)) {
            dropped++;
            continue;
        }
        if (out) {
            if (kept)
                out[len++] = ',';
            memcpy(out + len, m.p, m.len);
            len += m.len;
        }
        kept++;
    }
    *out_len = len;
    if (rc < 0 || !kept)
        return WARNING_LINE_DROPPED;
    return dropped ? WARNING_LINE_REWRITTEN : WARNING_LINE_KEPT;
}

/* Rewritten Warning lines until the head is built from them. */
struct warning_scratch {
    struct http_field *fields;
    char *text;
    size_t used;
    unsigned nfields;
};

/* Remove the 1xx members of every Warning line in keep[0..n) (above);
 * returns the new count. A rewritten line points into `s`, which the
 * caller frees (warning_scratch_fini) once build_head has copied it. The
 * common head has no Warning: one name compare per field. */
static unsigned keep_without_1xx_warnings(const struct http_field **keep, unsigned n,
                                          struct warning_scratch *s)
{
    unsigned out = 0;
    for (unsigned i = 0; i < n; i++) {
        const struct http_field *f = keep[i];
        if (!slice_case_eq(f->name, "warning")) {
            keep[out++] = f;
            continue;
        }
        if (!s->text) {
            size_t room = 0;
            for (unsigned j = i; j < n; j++)
                if (slice_case_eq(keep[j]->name, "warning"))
                    room += keep[j]->value.len;
            s->text = xmalloc(room);
            s->fields = xmalloc(sizeof *s->fields * n);
        }
        size_t len;
        switch (warning_filter(f->value, s->text + s->used, &len)) {
        case WARNING_LINE_KEPT:
            keep[out++] = f;
            break;
        case WARNING_LINE_DROPPED:
            break;
        case WARNING_LINE_REWRITTEN: {
            struct http_field *w = &s->fields[s->nfields++];
            *w = (struct http_field){f->name, {s->text + s->used, len}, f->id};
            s->used += len;
            keep[out++] = w;
            break;
        }
        }
    }
    return out;
}

static void warning_scratch_fini(struct warning_scratch *s)
{
    free(s->fields);
    free(s->text);
    *s = (struct warning_scratch){0};
}

/* A 304's Warning line that keeps nothing once its 1xx members go does
 * not replace the stored Warning (RFC 7234 §4.3.4: stored 2xx are kept). */
static int warning_stores_nothing(const struct http_field *f)
{
    size_t len;
    return slice_case_eq(f->name, "warning") &&
           warning_filter(f->value, NULL, &len) == WARNING_LINE_DROPPED;
}

/* Serialize the status line and fields; index the fields. */
static void build_head(struct cache_object *o, int status, struct slice reason,
                       const struct http_field *const *fs, unsigned n)
{
    size_t len = 9 + 4 + reason.len + 2;
    for (unsigned i = 0; i < n; i++)
        len += fs[i]->name.len + 2 + fs[i]->value.len + 2;
    /* one block: the fields, then the head they point into */
    struct http_field *fields = xmalloc(sizeof *fields * n + len);
    char *h = (char *)(fields + n);
    size_t p = 0;
    memcpy(h, "HTTP/1.1 ", 9);
    p = 9;
    h[p++] = (char)('0' + status / 100);
    h[p++] = (char)('0' + status / 10 % 10);
    h[p++] = (char)('0' + status % 10);
    h[p++] = ' ';
    memcpy(h + p, reason.p, reason.len);
    p += reason.len;
    h[p++] = '\r';
    h[p++] = '\n';
    o->fields = fields;
    for (unsigned i = 0; i < n; i++) {
        struct http_field *f = &o->fields[i];
        memcpy(h + p, fs[i]->name.p, fs[i]->name.len);
        f->name = (struct slice){h + p, fs[i]->name.len};
        p += fs[i]->name.len;
        h[p++] = ':';
        h[p++] = ' ';
        memcpy(h + p, fs[i]->value.p, fs[i]->value.len);
        f->value = (struct slice){h + p, fs[i]->value.len};
        f->id = fs[i]->id;
        p += fs[i]->value.len;
        h[p++] = '\r';
        h[p++] = '\n';
    }
    o->head = h;
    o->head_len = p;
    o->nfields = n;
    o->status = status;
    o->etag = http_find_field(o->fields, n, "etag");
    o->last_modified = http_find_field(o->fields, n, "last-modified");
    o->surrogate_key = http_find_field(o->fields, n, "surrogate-key");
}

/* All Vary lines as one list (RFC 9110 §5.3: lines combine with commas),
 * sized to fit: a name dropped here would drop out of the variant key and
 * let one variant answer every request. malloc'd; NULL when there is none. */
static char *vary_names_dup(const struct http_field *f, unsigned n, size_t *out_len)
{
    size_t len = 0;
    for (unsigned i = 0; i < n; i++)
        if (slice_case_eq(f[i].name, "vary") && f[i].value.len)
            len += f[i].value.len + 1;
    *out_len = 0;
    if (!len)
        return NULL;
    char *buf = xmalloc(len), *p = buf;
    for (unsigned i = 0; i < n; i++)
        if (slice_case_eq(f[i].name, "vary") && f[i].value.len) {
            if (p != buf)
                *p++ = ',';
            memcpy(p, f[i].value.p, f[i].value.len);
            p += f[i].value.len;
        }
    *out_len = (size_t)(p - buf);
    return buf;
}

/* List fields we know (RFC 9110 §12.5), whose members can be compared
 * without the space around them; 2 when they are case-insensitive tokens
 * too (§12.5.3, and language tags, RFC 5646 §2.1.1). Other fields are
 * compared as sent: a comma in a User-Agent is no list separator. */
static int known_list(struct slice name)
{
    if (slice_case_eq(name, "accept-encoding") || slice_case_eq(name, "accept-language") ||
        slice_case_eq(name, "accept-charset"))
        return 2;
    return slice_case_eq(name, "accept");
}

/* A weight (RFC 9110 §12.4.2): "0" ["." 0*3DIGIT] / "1" ["." 0*3"0"], in
 * thousandths; -1 when it is not one. */
static int qvalue(const char *p, size_t len)
{
    if (!len || (p[0] != '0' && p[0] != '1') || (len > 1 && (p[1] != '.' || len > 5)))
        return -1;
    int w = (p[0] - '0') * 1000, scale = 100;
    for (size_t i = 2; i < len; i++, scale /= 10) {
        if (!http_is((unsigned char)p[i], CH_DIGIT) || (p[0] == '1' && p[i] != '0'))
            return -1;
        w += (p[i] - '0') * scale;
    }
    return w;
}

/* One Accept-Language member in a canonical spelling, written at `out`
 * (never longer than the member): lowercase, no whitespace, and a weight
 * as its shortest decimal, dropped when it is the default 1. A member
 * whose parameters are not a single q is kept as it is otherwise. */
static size_t language_member(struct slice el, char *out)
{
    size_t len = 0;
    for (size_t j = 0; j < el.len; j++)
        if (el.p[j] != ' ' && el.p[j] != '\t')
            out[len++] = (char)http_lower((unsigned char)el.p[j]);
    char *semi = memchr(out, ';', len);
    if (!semi || (size_t)(out + len - semi) < 4 || semi[1] != 'q' || semi[2] != '=')
        return len;
    int w = qvalue(semi + 3, (size_t)(out + len - semi - 3));
    if (w < 0)
        return len;
    size_t tag = (size_t)(semi - out);
    if (w == 1000)
        return tag;
    char *q = out + tag;
    memcpy(q, ";q=0", 4);
    q += 4;
    if (w) {
        *q++ = '.';
        for (int scale = 100; w; scale /= 10) {
            *q++ = (char)('0' + w / scale);
            w %= scale;
        }
    }
    return (size_t)(q - out);
}

static int slice_cmp(const void *a, const void *b)
{
    const struct slice *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Accept-Language (RFC 9110 §12.5.4) is a set of weighted language
 * ranges: "fr;q=0.5, en" and "en,fr;q=0.50" ask for the same thing, so
 * they select the same variant (RFC 9111 §4.1 allows normalizing). The
 * members of every line, canonical and sorted, go to k; returns how many. */
static int language_set(struct slice name, const struct http_field *f, unsigned n, char *k,
                        size_t *len, int seen)
{
    size_t total = 0, count = 0;
    for (unsigned i = 0; i < n; i++)
        if (slice_case_eqs(f[i].name, name))
            total += f[i].value.len + 1;
    char *scratch = xmalloc(total);
    struct slice *members = xmalloc(sizeof *members * (total ? total : 1));
    size_t used = 0;
    int lines = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!slice_case_eqs(f[i].name, name))
            continue;
        lines++;
        struct http_list_iter vi = http_list_begin(f[i].value);
        struct slice el;
        while (http_list_next(&vi, &el) > 0) {
            size_t m = language_member(el, scratch + used);
            members[count++] = (struct slice){scratch + used, m};
            used += m;
        }
    }
    qsort(members, count, sizeof *members, slice_cmp);
    for (size_t i = 0; i < count; i++) {
        k[(*len)++] = seen++ ? ',' : ':';
        memcpy(k + *len, members[i].p, members[i].len);
        *len += members[i].len;
    }
    if (lines && !count) /* an empty line still counts as present */
        k[(*len)++] = seen++ ? ',' : ':';
    free(members);
    free(scratch);
    return seen;
}

char *cache_vary_key(struct slice vary, const struct http_field *f, unsigned n, size_t *out_len)
{
    size_t cap = 256, len = 0;
    char *k = xmalloc(cap);
    struct http_list_iter it = http_list_begin(vary);
    struct slice name;
    while (http_list_next(&it, &name) > 0) {
        /* §4.1: all values of the field, combined, normalized where that
         * keeps their meaning: the members of each line without the space
         * around them, lowercased where the field is case-insensitive. So
         * "gzip, br", "gzip,br" and two lines "gzip" and "br" are one
         * variant. A missing field and an empty one differ. */
        size_t need = name.len + 2;
        for (unsigned i = 0; i < n; i++)
            if (slice_case_eqs(f[i].name, name))
                need += f[i].value.len + 2;
        while (len + need + 1 > cap) {
            k = realloc(k, cap *= 2);
            if (!k)
                abort();
        }
        for (size_t j = 0; j < name.len; j++)
            k[len++] = (char)http_lower((unsigned char)name.p[j]);
        int seen = 0, list = known_list(name), lower = list == 2;
        int language = slice_case_eq(name, "accept-language");
        if (language)
            seen = language_set(name, f, n, k, &len, 0);
        for (unsigned i = 0; i < n && !language; i++)
            if (slice_case_eqs(f[i].name, name)) {
                if (!list) {
                    k[len++] = seen++ ? ',' : ':';
                    memcpy(k + len, f[i].value.p, f[i].value.len);
                    len += f[i].value.len;
                    continue;
                }
                struct http_list_iter vi = http_list_begin(f[i].value);
                struct slice el;
                int members = 0;
                while (http_list_next(&vi, &el) > 0) {
                    k[len++] = seen++ ? ',' : ':';
                    for (size_t j = 0; j < el.len; j++)
                        k[len++] = lower ? (char)http_lower((unsigned char)el.p[j]) : el.p[j];
                    members++;
                }
                if (!members) /* an empty line still counts as present */
                    k[len++] = seen++ ? ',' : ':';
            }
        if (!seen)
            k[len++] = '!';
        k[len++] = '\n';
    }
    *out_len = len;
    return k;
}

int cache_object_vary_match(const struct cache_object *o, const struct http_field *f, unsigned n)
{
    /* never stored (policy.c), but never matched either should one be */
    if (o->facts.vary_star || o->facts.vary_invalid)
        return 0;
    if (!o->vary)
        return 1;
    size_t names_len, len;
    char *names = vary_names_dup(o->fields, o->nfields, &names_len);
    char *k = cache_vary_key((struct slice){names ? names : "", names_len}, f, n, &len);
    int ok = len == o->vary_len && memcmp(k, o->vary, len) == 0;
    free(k);
    free(names);
    return ok;
}

/* One block: the object, its key, and its Vary key (`vary`, may be NULL):
 * a small object pays one allocation's overhead instead of three. */
static struct cache_object *object_alloc(const char *key, size_t key_len, const char *vary,
                                         size_t vary_len)
{
    struct cache_object *o = xmalloc(sizeof *o + key_len + vary_len);
    memset(o, 0, sizeof *o);
    o->magic = CACHE_OBJECT_MAGIC;
    atomic_init(&o->refs, 1);
    atomic_init(&o->fill, FILL_OPEN);
    o->expected_len = -1;
    memcpy(o->key, key, key_len);
    o->key_len = key_len;
    if (vary) {
        o->vary = o->key + key_len;
        memcpy(o->vary, vary, vary_len);
        o->vary_len = (uint32_t)vary_len;
        o->vary_inline = 1;
    }
    return o;
}

static void vary_free(struct cache_object *o)
{
    if (!o->vary_inline)
        free(o->vary);
    o->vary = NULL;
    o->vary_len = 0;
    o->vary_inline = 0;
}

/* The secondary key (§4.1) of the request this object answers. */
static void object_vary_key(struct cache_object *o, const struct http_field *req_fields,
                            unsigned req_n)
{
    vary_free(o);
    size_t names_len, len;
    char *names = vary_names_dup(o->fields, o->nfields, &names_len);
    if (names) {
        char *k = cache_vary_key((struct slice){names, names_len}, req_fields, req_n, &len);
        /* kept at its size: the key is built in a larger buffer, and the
         * object is charged for exactly what it holds */
        o->vary = xmalloc(len);
        memcpy(o->vary, k, len);
        o->vary_len = (uint32_t)len;
        free(k);
    }
    free(names);
}

struct cache_object *cache_object_new(const char *key, size_t key_len,
                                      const struct http_response *res,
                                      const struct http_field *req_fields, unsigned req_n,
                                      int64_t request_time, int64_t response_time, int64_t lifetime)
{
    const struct http_field *keep[HTTP_FIELDS_MAX];
    unsigned n = 0, nvary = 0;
    for (unsigned i = 0; i < res->nfields; i++)
        if (!field_dropped(&res->fields[i], res->fields, res->nfields, res->conn_flags)) {
            keep[n++] = &res->fields[i];
            nvary += slice_case_eq(res->fields[i].name, "vary");
        }
    struct warning_scratch warnings = {0};
    n = keep_without_1xx_warnings(keep, n, &warnings);
    /* the Vary key first, so that it can share the object's block */
    char *vary = NULL;
    size_t vary_len = 0;
    if (nvary) {
        struct http_field *vf = xmalloc(nvary * sizeof *vf);
        for (unsigned i = 0, j = 0; i < n; i++)
            if (slice_case_eq(keep[i]->name, "vary"))
                vf[j++] = *keep[i];
        size_t names_len;
        char *names = vary_names_dup(vf, nvary, &names_len);
        if (names)
            vary = cache_vary_key((struct slice){names, names_len}, req_fields, req_n, &vary_len);
        free(names);
        free(vf);
    }
    struct cache_object *o = object_alloc(key, key_len, vary, vary_len);
    free(vary);
    build_head(o, res->status, res->reason, keep, n);
    warning_scratch_fini(&warnings);
    cache_response_facts(o->fields, o->nfields, res->status, &o->facts);
    o->facts.age = cache_age_value(res->fields, res->nfields); /* Age is not stored */
    o->request_time = request_time;
    o->response_time = response_time;
    o->lifetime = lifetime;
    o->body = calloc(1, sizeof *o->body);
    if (!o->body)
        abort();
    atomic_init(&o->body->refs, 1);
    return o;
}

/* Facts read again from the stored fields, keeping what those fields no
 * longer say: the Age received (never stored, §4.2.3) and the directives
 * of a targeted field (RFC 9213: the caller, which knows the target list,
 * applied them). */
static void refresh_facts(struct cache_object *o, const struct cache_response_facts *prev)
{
    struct cache_response_facts was = *prev; /* prev may be o's own */
    cache_response_facts(o->fields, o->nfields, o->status, &o->facts);
    o->facts.age = was.age;
    if (was.targeted) {
        o->facts.cc = was.cc;
        o->facts.has_expires = was.has_expires;
        o->facts.expires = was.expires;
        o->facts.targeted = 1;
    }
}

/* What a copy with new fields keeps of the old object: its facts (read
 * again from the new fields) and Vary key. */
static void copy_of(struct cache_object *o, const struct cache_object *old)
{
    refresh_facts(o, &old->facts);
    if (old->vary && !o->vary) {
        o->vary = xmalloc(old->vary_len);
        memcpy(o->vary, old->vary, old->vary_len);
        o->vary_len = old->vary_len;
    }
}

/* A Set-Cookie in a 304 is meant for the client that revalidated (the
 * origin refreshing its session), not for everyone the entry serves: it
 * neither enters the stored fields nor replaces the stored ones. The
 * caller relays it to that client. */
static int set_cookie(struct slice name)
{
    return slice_case_eq(name, "set-cookie") || slice_case_eq(name, "set-cookie2");
}

struct cache_object *cache_object_revalidated(const struct cache_object *old,
                                              const struct http_response *r,
                                              const struct http_field *req_fields, unsigned req_n,
                                              int64_t request_time, int64_t response_time,
                                              unsigned heuristic_pct, int64_t heuristic_max)
{
    struct cache_object *o = object_alloc(old->key, old->key_len, NULL, 0); /* Vary may change */
    const struct http_field *keep[HTTP_FIELDS_MAX];
    unsigned n = 0;
    int new_vary = 0;
    /* which 304 fields replace the stored ones of their name, read once */
    unsigned char replaces[HTTP_FIELDS_MAX];
    for (unsigned j = 0; j < r->nfields; j++)
        replaces[j] = !set_cookie(r->fields[j].name) && !warning_stores_nothing(&r->fields[j]);
    for (unsigned i = 0; i < old->nfields && n < HTTP_FIELDS_MAX; i++) {
        int replaced = 0;
        for (unsigned j = 0; j < r->nfields && !replaced; j++)
            replaced = replaces[j] && slice_case_eqs(old->fields[i].name, r->fields[j].name);
        if (!replaced)
            keep[n++] = &old->fields[i];
    }
    /* §3.2: Content-Length of a 304 says nothing about the stored body. */
    for (unsigned j = 0; j < r->nfields && n < HTTP_FIELDS_MAX; j++)
        if (!field_dropped(&r->fields[j], r->fields, r->nfields, r->conn_flags) &&
            !set_cookie(r->fields[j].name)) {
            keep[n++] = &r->fields[j];
            new_vary |= slice_case_eq(r->fields[j].name, "vary");
        }
    /* neither the 304's 1xx warnings nor any stored ones (RFC 7234 §4.3.4) */
    struct warning_scratch warnings = {0};
    n = keep_without_1xx_warnings(keep, n, &warnings);
    const char *sp = memchr(old->head + 13, '\r', old->head_len - 13);
    build_head(o, old->status, (struct slice){old->head + 13, (size_t)(sp - old->head - 13)}, keep,
               n);
    warning_scratch_fini(&warnings);
    copy_of(o, old);
    o->facts.age = cache_age_value(r->fields, r->nfields); /* the 304 is the new response */
    /* A 304 may name other Vary fields: the merged response then answers
     * the requests that match the one revalidating on those (§4.1). */
    if (new_vary)
        object_vary_key(o, req_fields, req_n);
    o->request_time = request_time;
    o->response_time = response_time;
    int h;
    o->lifetime = cache_lifetime(&o->facts, response_time, heuristic_pct, heuristic_max, &h);
    o->body = old->body;
    atomic_fetch_add(&o->body->refs, 1);
    o->complete = 1;
    return o;
}

struct cache_object *cache_object_with_field(const struct cache_object *old, struct slice name,
                                             struct slice value)
{
    struct cache_object *o = object_alloc(old->key, old->key_len, old->vary, old->vary_len);
    const struct http_field *keep[HTTP_FIELDS_MAX];
    unsigned n = 0;
    for (unsigned i = 0; i < old->nfields && n + 1 < HTTP_FIELDS_MAX; i++)
        keep[n++] = &old->fields[i];
    struct http_field added = {name, value, HF_OTHER};
    keep[n++] = &added;
    const char *sp = memchr(old->head + 13, '\r', old->head_len - 13);
    build_head(o, old->status, (struct slice){old->head + 13, (size_t)(sp - old->head - 13)}, keep,
               n);
    copy_of(o, old);
    o->request_time = old->request_time;
    o->response_time = old->response_time;
    o->lifetime = old->lifetime;
    o->expected_len = old->expected_len;
    o->body = old->body;
    atomic_fetch_add(&o->body->refs, 1);
    o->complete = old->complete;
    atomic_store(&o->fill, atomic_load(&old->fill));
    return o;
}

/* Rebuild the head of an object not yet published from `keep` (pointers
 * into its own fields), keeping its status line; its facts are read again. */
static void rebuild_head(struct cache_object *o, const struct http_field *const *keep, unsigned n)
{
    char *old_head = o->head;
    struct http_field *old_block = o->fields; /* the head lives in it too */
    const char *sp = memchr(old_head + 13, '\r', o->head_len - 13);
    build_head(o, o->status, (struct slice){old_head + 13, (size_t)(sp - old_head - 13)}, keep, n);
    free(old_block);
    refresh_facts(o, &o->facts);
}

void cache_object_add_field(struct cache_object *o, struct slice name, struct slice value)
{
    const struct http_field *keep[HTTP_FIELDS_MAX];
    unsigned n = 0;
    for (unsigned i = 0; i < o->nfields && n + 1 < HTTP_FIELDS_MAX; i++)
        keep[n++] = &o->fields[i];
    struct http_field added = {name, value, HF_OTHER};
    keep[n++] = &added;
    rebuild_head(o, keep, n);
}

void cache_object_remove_fields(struct cache_object *o, struct slice names)
{
    const struct http_field *keep[HTTP_FIELDS_MAX];
    unsigned n = 0;
    for (unsigned i = 0; i < o->nfields; i++) {
        struct http_list_iter it = http_list_begin(names);
        struct slice name;
        int named = 0;
        while (!named && http_list_next(&it, &name) > 0)
            named = slice_case_eqs(o->fields[i].name, name);
        if (!named)
            keep[n++] = &o->fields[i];
    }
    if (n == o->nfields)
        return;
    rebuild_head(o, keep, n);
}

size_t cache_alloc_cost(size_t n)
{
    size_t chunk = (n + 8 + 15) & ~(size_t)15;
    return chunk < 32 ? 32 : chunk;
}

/* The capacity of the next segment: what remains of a known length (up
 * to a segment), else doubling from 1 KiB so that a body of unknown
 * length wastes at most half of its last segment until it is trimmed. */
static size_t next_segment_cap(const struct cache_body *b, int64_t expected, size_t want)
{
    size_t len = b->len;
    if (expected >= 0 && (uint64_t)expected > len) {
        uint64_t rest = (uint64_t)expected - len;
        return rest < CACHE_SEGMENT_SIZE ? (size_t)rest : CACHE_SEGMENT_SIZE;
    }
    size_t cap = b->last ? b->last_cap * 2 : 1024;
    if (cap < want)
        cap = want;
    return cap < CACHE_SEGMENT_SIZE ? cap : CACHE_SEGMENT_SIZE;
}

static struct cache_segment *inline_segment(const struct cache_body *b)
{
    return (struct cache_segment *)(uintptr_t)(b + 1);
}

void cache_object_expect(struct cache_object *o, int64_t len)
{
    o->expected_len = len;
    struct cache_body *b = o->body;
    if (len <= 0 || b->first || atomic_load(&b->refs) != 1 || o->shared)
        return;
    size_t cap = next_segment_cap(b, len, 0);
    b = realloc(b, sizeof *b + sizeof(struct cache_segment) + cap);
    if (!b)
        abort();
    struct cache_segment *s = inline_segment(b);
    s->next = NULL;
    s->len = 0;
    b->first_inline = 1;
    b->first = s;
    b->last = s;
    b->last_cap = cap;
    o->body = b;
}

void cache_object_append(struct cache_object *o, const char *p, size_t n)
{
    struct cache_body *b = o->body;
    while (n) {
        struct cache_segment *s = b->last;
        if (!s || s->len == b->last_cap) {
            size_t cap = next_segment_cap(b, o->expected_len, n);
            s = xmalloc(sizeof *s + cap);
            s->next = NULL;
            s->len = 0;
            if (b->last)
                b->last->next = s; /* published after its fields: readers may follow */
            else
                b->first = s;
            b->last = s;
            b->last_cap = cap;
        }
        size_t k = b->last_cap - s->len;
        if (k > n)
            k = n;
        memcpy(s->data + s->len, p, k);
        s->len += k;
        b->len += k;
        p += k;
        n -= k;
    }
}

/* A copy of a complete object whose body is laid out anew at its size:
 * others may still stream the old one's segments. */
static struct cache_object *compacted(const struct cache_object *old)
{
    struct cache_object *o = object_alloc(old->key, old->key_len, old->vary, old->vary_len);
    const struct http_field *keep[HTTP_FIELDS_MAX];
    for (unsigned i = 0; i < old->nfields; i++)
        keep[i] = &old->fields[i];
    const char *sp = memchr(old->head + 13, '\r', old->head_len - 13);
    build_head(o, old->status, (struct slice){old->head + 13, (size_t)(sp - old->head - 13)}, keep,
               old->nfields);
    copy_of(o, old);
    o->request_time = old->request_time;
    o->response_time = old->response_time;
    o->lifetime = old->lifetime;
    o->body = calloc(1, sizeof *o->body);
    if (!o->body)
        abort();
    atomic_init(&o->body->refs, 1);
    cache_object_expect(o, (int64_t)old->body->len);
    for (const struct cache_segment *g = old->body->first; g; g = g->next)
        cache_object_append(o, g->data, g->len);
    o->complete = old->complete;
    atomic_store(&o->fill, atomic_load(&old->fill));
    return o;
}

void cache_object_trim(struct cache_object **op)
{
    struct cache_object *o = *op;
    struct cache_body *b = o->body;
    struct cache_segment *s = b->last;
    if (!s || s->len == b->last_cap)
        return;
    if (o->shared || atomic_load(&b->refs) != 1) {
        /* Streamers may be reading these segments: a small body is copied
         * to its size instead; a large one keeps at most one segment's
         * slack (and its size says so). */
        if (b->len <= CACHE_BODY_ONE_PIECE_MAX) {
            struct cache_object *c = compacted(o);
            cache_object_unref(op);
            *op = c;
        }
        return;
    }
    size_t len = s->len;
    if (b->first_inline && s == b->first) {
        struct cache_body *nb = realloc(b, sizeof *b + sizeof *s + len);
        if (!nb)
            return; /* keeps the slack, and says so in its size */
        nb->first = nb->last = inline_segment(nb);
        o->body = nb;
    } else {
        struct cache_segment *prev = NULL;
        for (struct cache_segment *x = b->first; x != s; x = x->next)
            prev = x;
        struct cache_segment *ns = realloc(s, sizeof *s + len);
        if (!ns)
            return;
        if (prev)
            prev->next = ns;
        else
            b->first = ns;
        b->last = ns;
    }
    o->body->last_cap = len;
}

/* The body block alone, with its first segment when that lives in it. */
static size_t body_cost(const struct cache_body *b)
{
    size_t cost = 0;
    for (const struct cache_segment *s = b->first; s; s = s->next) {
        size_t cap = s == b->last ? b->last_cap : s->len;
        if (b->first_inline && s == b->first)
            cost += cache_alloc_cost(sizeof *b + sizeof *s + cap);
        else
            cost += cache_alloc_cost(sizeof *s + cap);
    }
    return b->first_inline ? cost : cost + cache_alloc_cost(sizeof *b);
}

static size_t head_cost(const struct cache_object *o)
{
    size_t inline_vary = o->vary_inline ? o->vary_len : 0;
    return cache_alloc_cost(sizeof *o + o->key_len + inline_vary) +
           cache_alloc_cost(o->nfields * sizeof *o->fields + o->head_len) +
           (o->vary && !o->vary_inline ? cache_alloc_cost(o->vary_len) : 0);
}

size_t cache_object_size(const struct cache_object *o)
{
    return head_cost(o) + body_cost(o->body);
}

size_t cache_object_head_size(const struct cache_object *o)
{
    return head_cost(o);
}

size_t cache_body_size(const struct cache_body *b)
{
    return body_cost(b);
}

size_t cache_object_size_with_body(const struct cache_object *o, uint64_t body_len)
{
    const size_t seg = sizeof(struct cache_segment), hdr = sizeof(struct cache_body);
    if (body_len == 0)
        return head_cost(o) + cache_alloc_cost(hdr);
    /* as cache_object_expect lays it out: the first segment in the body's
     * block, then full segments, the last sized to what remains */
    size_t first = body_len < CACHE_SEGMENT_SIZE ? (size_t)body_len : CACHE_SEGMENT_SIZE;
    uint64_t rest = body_len - first, full = rest / CACHE_SEGMENT_SIZE;
    size_t tail = (size_t)(rest % CACHE_SEGMENT_SIZE);
    uint64_t cost = head_cost(o) + cache_alloc_cost(hdr + seg + first) +
                    full * cache_alloc_cost(seg + CACHE_SEGMENT_SIZE) +
                    (tail ? cache_alloc_cost(seg + tail) : 0);
    return cost > SIZE_MAX ? SIZE_MAX : (size_t)cost;
}

void cache_object_ref(struct cache_object *o)
{
    atomic_fetch_add(&o->refs, 1);
}

void cache_object_unref(struct cache_object **op)
{
    struct cache_object *o = *op;
    *op = NULL;
    if (!o)
        return;
    if (o->magic != CACHE_OBJECT_MAGIC)
        abort();
    int left = atomic_fetch_sub(&o->refs, 1) - 1;
    if (left > 0)
        return;
    if (left < 0)
        abort(); /* a refcount never goes below zero */
    if (atomic_fetch_sub(&o->body->refs, 1) == 1) {
        for (struct cache_segment *s = o->body->first, *next; s; s = next) {
            next = s->next;
            if (!(o->body->first_inline && s == o->body->first))
                free(s);
        }
        free(o->body);
    }
    o->magic = 0;
    free(o->fields); /* and the head, in the same block */
    vary_free(o);
    free(o); /* and the key */
}

const struct http_field *cache_object_field(const struct cache_object *o, const char *name)
{
    /* the three every hit asks for were found when the head was built */
    if (name[0] == 'e' && !strcmp(name, "etag"))
        return o->etag;
    if (name[0] == 'l' && !strcmp(name, "last-modified"))
        return o->last_modified;
    if (name[0] == 's' && !strcmp(name, "surrogate-key"))
        return o->surrogate_key;
    return http_find_field(o->fields, o->nfields, name);
}

struct slice cache_object_reason(const struct cache_object *o)
{
    /* build_head: "HTTP/1.1 NNN " (13 bytes), the reason, CRLF */
    const char *end = memchr(o->head + 13, '\r', o->head_len - 13);
    return (struct slice){o->head + 13, end ? (size_t)(end - o->head - 13) : 0};
}
