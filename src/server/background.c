/* Background revalidation (RFC 5861 §3, stale-while-revalidate): the
 * stale copy is served at once and the refresh runs as an internal request,
 * the way nginx's background update runs a subrequest.
 *
 * The internal request is an exchange of the internal front (internal.c),
 * with no client behind it: the whole pipeline is reused as it is
 * (routing, validators, the 304 merge, storing, Vary, coalescing and the
 * access log), and what it would send a client is dropped.
 *
 * One refresh per key: the foreground request takes the key's coalescing
 * slot before it starts the refresh, and hands it to the internal request,
 * which releases it when its fetch ends (or when it ends without one). */
#include <stdlib.h>
#include <string.h>
#include "server/server.h"
#include "server/log.h"
#include "http/chars.h"
#include "http/fields.h"

/* Request fields that must not reach the refresh: the client's own
 * preconditions, ranges and directives (ours are added by the pipeline). */
static int dropped_field(const struct http_field *f)
{
    static const char *const names[] = {
        "if-none-match", "if-modified-since",
        "if-match",      "if-unmodified-since",
        "if-range",      "range",
        "cache-control", "pragma",
        "expect",        NULL,
    };
    for (int i = 0; names[i]; i++)
        if (slice_case_eq(f->name, names[i]))
            return 1;
    return 0;
}

/* A GET of r's target with r's fields but those dropped above, the
 * hop-by-hop ones (RFC 9110 §7.6.1) and the framing (it has no body): its
 * fields point into r, into `kept` (r->nfields entries). A HEAD's refresh
 * fetches the body too. */
static void build_request(struct http_request *out, struct http_field *kept,
                          const struct http_request *r)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->nfields; i++) {
        const struct http_field *f = &r->fields[i];
        if (dropped_field(f) || http_is_hop_by_hop(f, r->fields, r->nfields, r->conn_flags) ||
            f->id == HF_CONTENT_LENGTH || f->id == HF_TRANSFER_ENCODING)
            continue;
        kept[n++] = *f;
    }
    *out = (struct http_request){
        .method = SLICE_LIT("GET"),
        .target = r->target,
        .host = r->host,
        .authority = r->authority,
        .path = r->path,
        .scheme = r->scheme,
        .form = r->form,
        .minor = 1,
        .conn_flags = HTTP_CONN_CLOSE, /* no connection to keep */
        .body = HTTP_BODY_NONE,
        .nfields = n,
        .fields_cap = n,
        .fields = kept,
    };
}

int background_revalidate(struct exchange *ex, const struct http_request *r, const char *key,
                          size_t key_len)
{
    struct srv_worker *w = ex->w;
    if (!w->co || w->draining || w->background >= w->cfg->cache.background_fetches)
        return -1;
    /* A refresh is a GET without a body: a request that has one (a POST
     * keyed by it) revalidates in the foreground, its body going along. */
    if (r->body != HTTP_BODY_NONE && !(r->body == HTTP_BODY_LENGTH && !r->content_length))
        return -1;
    if (!coalesce_join(w->co, key, key_len, w->id))
        return 0; /* a fetch for this key is already in flight */
    struct http_field *kept = malloc((r->nfields ? r->nfields : 1) * sizeof *kept);
    struct http_request req;
    /* its key and its proto= are its starter's (a verified peer's: the
     * signed scheme, not the link's transport) */
    struct conninfo ci = *ex->ci;
    ci.tls = srv_request_scheme(ex, r) == CACHE_SCHEME_HTTPS;
    if (kept)
        build_request(&req, kept, r);
    if (!kept || internal_start(w, &req, &ci, key, key_len) < 0) {
        free(kept);
        log_msg(LOG_WARN, "background revalidation not started: out of memory");
        cache_stage_release_key(w, key, key_len);
        return -1;
    }
    free(kept);
    return 0;
}
