/* The digest handshake in the pipeline (DESIGN.md, "Peer protocol").
 *
 * Forward side (--peer): every request that goes upstream goes to the
 * reverse idemcache, signed. A request body the mirror says the reverse
 * side holds is sent as a reference; the body we hold for the key is
 * offered as a dictionary. A referenced or dictionary-coded response is
 * decoded and verified, and the rest of the pipeline gets the origin's
 * response as it was: its head as a parsed one, its body whole from
 * memory (rebuild, h1_client_deliver).
 *
 * Reverse side (peers:): a verified peer's reference is expanded into the
 * exchange's own request (exchange_set_body), which goes on as if it had
 * arrived with its body.
 * A response to a peer is held, then sent as a reference, dcz or whole.
 *
 * Wire fields, all hop-by-hop (stripped at both ends: clients and origins
 * never see them):
 *   Idem-Peer: id=<name>, ts=<unix s>, nonce=<22 b64url>, sig=<base64 HMAC>
 *                                     request; each nonce accepted once
 *   Idem-Digest: sha-256=:<base64>:   the body's own digest, both ways
 *   Idem-Store: epoch=<hex>, capacity=<bytes>              every response
 *   Content-Encoding: ..., idem-ref | dcz     Available-Dictionary: :<b64>:
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include "server/server.h"
#include "server/log.h"
#include "http/chars.h"
#include "http/fields.h"
#include "http/coding.h"

struct peer_side {
    const struct config_peer *cfg;
    pthread_mutex_t lock;
    struct peer_fifo *requests;  /* bodies this peer sent us in full */
    struct peer_fifo *responses; /* bodies we sent this peer */
    struct peer_nonces *nonces;  /* its requests' nonces, inside the window */
};

struct peer_state {
    char epoch[PEER_EPOCH_MAX + 1];
    struct peer_side *sides;
    unsigned n;
    pthread_mutex_t lock; /* forward: the mirror */
    struct peer_fifo *mirror;
    char mirror_epoch[PEER_EPOCH_MAX + 1];
    _Atomic uint64_t refs, fulls, fallbacks;
};

struct peer_state *peer_state_new(const struct config *cfg)
{
    if (!cfg->peer.n && !cfg->peer.forward)
        return NULL;
    struct peer_state *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    unsigned char r[8];
    if (RAND_bytes(r, sizeof r) != 1)
        abort();
    for (int i = 0; i < 8; i++)
        snprintf(s->epoch + 2 * i, 3, "%02x", r[i]);
    s->n = cfg->peer.n;
    s->sides = calloc(s->n ? s->n : 1, sizeof *s->sides);
    for (unsigned i = 0; i < s->n; i++) {
        s->sides[i].cfg = &cfg->peer.list[i];
        pthread_mutex_init(&s->sides[i].lock, NULL);
        s->sides[i].requests = peer_fifo_new(cfg->peer.request_store, 1);
        s->sides[i].responses = peer_fifo_new(cfg->peer.response_store, 1);
        s->sides[i].nonces = peer_nonces_new((uint32_t)cfg->peer.nonces);
    }
    pthread_mutex_init(&s->lock, NULL);
    s->mirror = peer_fifo_new(0, 0); /* capacity learned from Idem-Store */
    return s;
}

void peer_state_free(struct peer_state *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->n; i++) {
        peer_fifo_free(s->sides[i].requests);
        peer_fifo_free(s->sides[i].responses);
        peer_nonces_free(&s->sides[i].nonces);
        pthread_mutex_destroy(&s->sides[i].lock);
    }
    free(s->sides);
    peer_fifo_free(s->mirror);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void peer_state_stats(struct peer_state *s, struct peer_stats *out)
{
    *out = (struct peer_stats){0};
    if (!s)
        return;
    out->refs = s->refs;
    out->fulls = s->fulls;
    out->fallbacks = s->fallbacks;
    for (unsigned i = 0; i < s->n; i++) {
        struct peer_side *side = &s->sides[i];
        pthread_mutex_lock(&side->lock);
        out->request_store_bytes += peer_fifo_used(side->requests);
        out->request_store_entries += peer_fifo_count(side->requests);
        out->response_store_bytes += peer_fifo_used(side->responses);
        out->response_store_entries += peer_fifo_count(side->responses);
        pthread_mutex_unlock(&side->lock);
    }
    pthread_mutex_lock(&s->lock);
    out->mirror_bytes = peer_fifo_used(s->mirror);
    out->mirror_entries = peer_fifo_count(s->mirror);
    pthread_mutex_unlock(&s->lock);
}

static int forward_side(const struct exchange *ex)
{
    return ex->w->cfg->peer.forward && ex->w->handshake;
}

/* A message's Content-Encoding as the one reader (http/coding.h) reads
 * it: how many codings, how often each of the handshake's own appears,
 * the last one, and (when `rest` is given) the list without the last.
 * Both sides decide on this, so a value cannot mean a reference to one
 * and something else to the other. */
struct coding_scan {
    unsigned n, refs, dczs;
    struct slice last;
    int malformed;
};

static struct coding_scan scan_codings(const struct http_field *f, unsigned nf, struct outbuf *rest)
{
    struct coding_scan s = {0};
    struct http_coding_iter it = http_codings_begin(f, nf);
    struct slice cd;
    enum http_coding_rc rc;
    while ((rc = http_coding_next(&it, &cd)) == HTTP_CODING_NEXT) {
        if (rest && s.n) {
            if (rest->len)
                outbuf_addstr(rest, ", ");
            outbuf_addslice(rest, s.last);
        }
        s.n++;
        s.refs += slice_case_eq(cd, "idem-ref");
        s.dczs += slice_case_eq(cd, "dcz");
        s.last = cd;
    }
    s.malformed = rc == HTTP_CODING_MALFORMED;
    return s;
}

static int list_has(struct slice list, const char *token)
{
    struct http_list_iter it = http_list_begin(list);
    struct slice el;
    while (http_list_next(&it, &el) > 0) {
        const char *semi = memchr(el.p, ';', el.len);
        if (semi)
            el.len = (size_t)(semi - el.p);
        while (el.len && (el.p[el.len - 1] == ' ' || el.p[el.len - 1] == '\t'))
            el.len--;
        if (slice_case_eq(el, token))
            return 1;
    }
    return 0;
}

static void body_digest(const struct cache_body *b, unsigned char d[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (const struct cache_segment *s = b->first; s; s = s->next)
        EVP_DigestUpdate(ctx, s->data, s->len);
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, d, &n);
    EVP_MD_CTX_free(ctx);
}

/* A stored body as one buffer (dictionaries and encoders want that). */
static unsigned char *body_flat(const struct cache_body *b)
{
    unsigned char *p = malloc(b->len ? b->len : 1);
    if (!p)
        abort();
    size_t n = 0;
    for (const struct cache_segment *s = b->first; s; s = s->next) {
        memcpy(p + n, s->data, s->len);
        n += s->len;
    }
    return p;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* ---- reverse side: requests ------------------------------------------ */

static void idem_store_field(struct exchange *ex, struct outbuf *o)
{
    char v[160];
    int n = snprintf(v, sizeof v, "epoch=%s, capacity=%llu", ex->w->handshake->epoch,
                     (unsigned long long)ex->w->cfg->peer.request_store);
    outbuf_addfield(o, SLICE_LIT("Idem-Store"),
                    (struct slice){v, (size_t)n < sizeof v ? (size_t)n : sizeof v - 1});
}

void peer_stage_fields(struct exchange *ex, struct outbuf *o)
{
    if (ex->peer)
        idem_store_field(ex, o);
    if (ex->peer_refused) {
        /* RFC 9209 §2.3.9: refused here, nothing went further */
        char v[256];
        int n = snprintf(v, sizeof v, "%s; error=http_request_denied; details=\"%s\"",
                         ex->w->cfg->cache.name, ex->peer_refused);
        outbuf_addfield(o, SLICE_LIT("Proxy-Status"),
                        (struct slice){v, (size_t)n < sizeof v ? (size_t)n : sizeof v - 1});
        if (ex->peer_refused_full)
            outbuf_addfieldu64(o, SLICE_LIT("Retry-After"), PEER_SKEW_MAX);
    }
}

/* The nonce check, once per signed request. The stages run again on the
 * same exchange's request after its body was read ahead or when it is
 * woken from parking (the nonce held, the same): neither is a replay. A
 * reference expanded into its request was checked as the reference. */
static enum peer_nonce_result check_nonce(struct exchange *ex, struct peer_side *side,
                                          const struct peer_claim *claim)
{
    int again = ex->peer_nonce_held && !memcmp(ex->peer_nonce, claim->nonce.p, PEER_NONCE_LEN);
    ex->peer_nonce_held = 0;
    enum peer_nonce_result res = PEER_NONCE_FRESH;
    if (!again) {
        pthread_mutex_lock(&side->lock);
        res = peer_nonces_check(side->nonces, claim->nonce, claim->ts, now_s());
        pthread_mutex_unlock(&side->lock);
    }
    if (res == PEER_NONCE_FRESH) {
        memcpy(ex->peer_nonce, claim->nonce.p, PEER_NONCE_LEN);
        ex->peer_nonce_held = 1;
    }
    return res;
}

/* 415 to a reference we cannot resolve: the peer resends the body at once.
 * The request had no body, so the connection stays usable. */
static void reply_unknown_ref(struct exchange *ex)
{
    struct outbuf ours = {0};
    outbuf_addfield(&ours, SLICE_LIT("Accept-Encoding"), SLICE_LIT("identity"));
    idem_store_field(ex, &ours);
    ex->status = 415;
    ex->fe->answer(ex, &(struct front_answer){.status = 415,
                                              .reason = SLICE_LIT("Unsupported Media Type"),
                                              .length = 0,
                                              .ours = &ours});
    free(ours.p);
}

static enum peer_request_verdict reverse_request(struct exchange *ex, const struct http_request *r)
{
    struct peer_state *ps = ex->w->handshake;
    const struct http_field *hp = http_find_field(r->fields, r->nfields, "idem-peer");
    if (!hp) {
        ex->peer_nonce_held = 0;
        return PEER_REQ_GO_ON; /* an ordinary client: Idem-* and Available-Dictionary are dropped */
    }
    const struct http_field *hd = http_find_field(r->fields, r->nfields, "idem-digest");
    struct slice digest_v = hd ? hd->value : (struct slice){"", 0};
    struct peer_claim claim;
    struct peer_side *side = NULL;
    if (ps && peer_parse(hp->value, &claim) == 0)
        for (unsigned i = 0; i < ps->n; i++)
            if (slice_eq(claim.id,
                         (struct slice){ps->sides[i].cfg->id, strlen(ps->sides[i].cfg->id)}))
                side = &ps->sides[i];
    if (!side || !peer_verify(&claim, side->cfg->secret, side->cfg->secret_len, r->method,
                              r->target, digest_v, now_s())) {
        log_msg(LOG_WARN,
                "client %s: Idem-Peer refused (unknown peer, no nonce, bad or old signature)",
                ex->ci->ip);
        ex->peer_refused = "peer authentication failed";
        reply_error(ex, 401, "peer authentication failed");
        return PEER_REQ_ANSWERED;
    }
    enum peer_nonce_result seen = check_nonce(ex, side, &claim);
    if (seen == PEER_NONCE_FULL) {
        /* Forgetting a nonce would let its request be replayed: refuse
         * until entries age out of the window (peer.nonces). */
        log_msg(LOG_WARN, "client %s: peer %s: request refused, peer.nonces (%llu) full",
                ex->ci->ip, side->cfg->id, (unsigned long long)ex->w->cfg->peer.nonces);
        ex->peer_refused = "peer nonces full";
        ex->peer_refused_full = 1;
        reply_error(ex, 503, "too many signed requests from this peer inside the signature window");
        return PEER_REQ_ANSWERED;
    }
    if (seen != PEER_NONCE_FRESH) {
        log_msg(LOG_WARN, "client %s: peer %s: replayed request refused (nonce %.*s)", ex->ci->ip,
                side->cfg->id, (int)claim.nonce.len, claim.nonce.p);
        ex->peer_refused = "peer nonce replayed";
        reply_error(ex, 401, "peer request replayed");
        return PEER_REQ_ANSWERED;
    }
    ex->peer = side;
    ex->peer_https = slice_eq(claim.scheme, SLICE_LIT("https"));
    const struct http_field *ad = http_find_field(r->fields, r->nfields, "available-dictionary");
    const struct http_field *ae = http_find_field(r->fields, r->nfields, "accept-encoding");
    if (ad && ae) {
        /* RFC 9842 §2.2: a structured-field byte sequence, :base64: */
        struct slice v = ad->value;
        unsigned char tmp[48];
        if (v.len == 46 && v.p[0] == ':' && v.p[45] == ':' &&
            EVP_DecodeBlock(tmp, (const unsigned char *)v.p + 1, 44) == 33) {
            memcpy(ex->peer_dict, tmp, 32);
            ex->peer_has_dict = 1;
        }
        ex->peer_accept_ref = list_has(ae->value, "idem-ref");
        ex->peer_accept_dcz = list_has(ae->value, "dcz");
    }
    unsigned char want[32];
    struct outbuf rest = {0};
    struct coding_scan cs = scan_codings(r->fields, r->nfields, &rest);
    if (cs.malformed || (cs.refs && (cs.refs > 1 || !slice_case_eq(cs.last, "idem-ref")))) {
        /* A reference is the last coding, once, and is expanded once (what
         * it expands to keeps only the codings before it): any other form
         * could be read two ways (issue 10, finding 1). */
        free(rest.p);
        reply_error(ex, 400, "malformed Content-Encoding, or idem-ref not once and last");
        return PEER_REQ_ANSWERED;
    }
    if (cs.refs && (r->body != HTTP_BODY_NONE || ex->method_connect || ex->upgrade)) {
        /* A reference has no body. Answering and reading on would parse
         * whatever follows the head as the next request: close. */
        free(rest.p);
        reply_error(ex, 400, "a reference must carry no body, nor open a tunnel");
        return PEER_REQ_ANSWERED;
    }
    if (cs.refs) {
        /* A reference: expand it into the full request, or ask for it.
         * Expanded, the exchange's request carries the held body as read
         * ahead (the codings before idem-ref kept), its digest the one it
         * is held by; the stages go on with it. */
        const void *body = NULL;
        size_t len = 0;
        int held = 0, rc = 0;
        if (hd && peer_digest_parse(hd->value, want) == 0) {
            pthread_mutex_lock(&side->lock);
            held = peer_fifo_find(side->requests, want, &body, &len);
            if (held)
                rc = exchange_set_body(ex, (struct slice){rest.p, rest.len}, body, len);
            pthread_mutex_unlock(&side->lock);
            free(rest.p);
            rest = (struct outbuf){0};
            if (held) {
                if (rc < 0) {
                    reply_error(ex, 503, "out of memory");
                    return PEER_REQ_ANSWERED;
                }
                return PEER_REQ_GO_ON; /* r is gone: ex->req is the request now */
            }
        }
        free(rest.p);
        reply_unknown_ref(ex); /* no body: the connection stays in step */
        return PEER_REQ_ANSWERED_KEEP;
    }
    free(rest.p);
    if (hd && r->body != HTTP_BODY_NONE) {
        /* A body in full: check it, and hold it for the next reference. */
        enum collect_need k = collect_ensure(ex, r);
        if (k != COLLECT_READY)
            return k == COLLECT_READ_MORE ? PEER_REQ_READ_BODY : PEER_REQ_ANSWERED;
        if (ex->collected == COLLECT_COMPLETE && peer_digest_parse(hd->value, want) == 0) {
            struct slice body = collect_body(ex, r);
            unsigned char got[32];
            SHA256((const unsigned char *)body.p, body.len, got);
            if (memcmp(got, want, 32)) {
                reply_error(ex, 400, "the body does not match its Idem-Digest");
                return PEER_REQ_ANSWERED;
            }
            pthread_mutex_lock(&side->lock);
            peer_fifo_insert(side->requests, want, body.p, body.len);
            pthread_mutex_unlock(&side->lock);
        }
    }
    return PEER_REQ_GO_ON;
}

/* ---- reverse side: responses ----------------------------------------- */

int peer_stage_hold(struct exchange *ex, const struct http_response *res)
{
    if (!ex->peer || ex->held || ex->method_head || !res->has_content_length ||
        res->content_length > ex->w->cfg->peer.max_body || res->status < 200 ||
        res->status == 204 || res->status == 304)
        return 0;
    ex->held = cache_object_new(ex->cache_key ? ex->cache_key : "", ex->cache_key_len, res, NULL, 0,
                                0, now_s(), 0);
    return 1;
}

/* Send `o` to the peer: a reference when its body is the dictionary the
 * peer offered, dcz against that dictionary when smaller, else whole;
 * always with Idem-Digest. `after` holds our fields (Age, Via,
 * Cache-Status) without the blank line. */
void peer_stage_send(struct exchange *ex, struct cache_object *o, struct outbuf *after)
{
    struct peer_side *side = ex->peer;
    unsigned char d[32];
    body_digest(o->body, d);
    unsigned char *flat = body_flat(o->body);
    unsigned char *coded = NULL;
    size_t coded_len = 0;
    const char *coding = NULL;
    pthread_mutex_lock(&side->lock);
    if (ex->peer_has_dict && !memcmp(d, ex->peer_dict, 32) && ex->peer_accept_ref) {
        coding = "idem-ref";
    } else if (ex->peer_has_dict && ex->peer_accept_dcz) {
        const void *dict;
        size_t dict_len;
        if (peer_fifo_find(side->responses, ex->peer_dict, &dict, &dict_len)) {
            coded = peer_dcz_encode(flat, o->body->len, dict, dict_len, ex->peer_dict, &coded_len);
            if (coded && coded_len < o->body->len)
                coding = "dcz";
        }
    }
    peer_fifo_insert(side->responses, d, flat, o->body->len);
    pthread_mutex_unlock(&side->lock);

    struct outbuf h = {0};
    /* the stored fields, with the coding appended to Content-Encoding */
    const struct http_field *ce = coding ? cache_object_field(o, "content-encoding") : NULL;
    for (unsigned i = 0; i < o->nfields; i++)
        if (&o->fields[i] != ce)
            outbuf_addfield(&h, o->fields[i].name, o->fields[i].value);
    if (coding) {
        struct outbuf v = {0};
        if (ce) {
            outbuf_addslice(&v, ce->value);
            outbuf_addstr(&v, ", ");
        }
        outbuf_addstr(&v, coding);
        outbuf_addfield(&h, SLICE_LIT("Content-Encoding"), (struct slice){v.p, v.len});
        free(v.p);
    }
    outbuf_add(&h, after->p, after->len);
    char field[64];
    peer_digest_field(d, field);
    outbuf_addfield(&h, SLICE_LIT("Idem-Digest"), (struct slice){field, strlen(field)});
    idem_store_field(ex, &h);
    size_t body_len = !coding ? o->body->len : coding[0] == 'd' ? coded_len : 0;
    ex->status = o->status;
    ex->resp_started = 1;
    ex->fe->answer(
        ex, &(struct front_answer){.status = o->status,
                                   .reason = cache_object_reason(o),
                                   .length = (int64_t)body_len,
                                   .ours = &h,
                                   .body = !coding ? (const char *)flat : (const char *)coded});
    free(h.p);
    free(flat);
    free(coded);
}

/* ---- forward side: requests ------------------------------------------ */

static enum peer_request_verdict forward_request(struct exchange *ex, const struct http_request *r)
{
    struct coding_scan cs = scan_codings(r->fields, r->nfields, NULL);
    if (cs.malformed) {
        /* read one way here and another there, it could name a reference */
        reply_error(ex, 400, "malformed Content-Encoding");
        return PEER_REQ_ANSWERED;
    }
    if (cs.refs || cs.dczs) {
        /* the handshake's own codings: the peer would take them for ours */
        reply_error(ex, 415, "idem-ref and dcz are codings between idemcache peers only");
        return PEER_REQ_ANSWERED;
    }
    if (r->body == HTTP_BODY_NONE || ex->method_connect || ex->upgrade)
        return PEER_REQ_GO_ON;
    if (r->body == HTTP_BODY_LENGTH && r->content_length > ex->w->cfg->body_key.max_bytes)
        return PEER_REQ_GO_ON; /* streams past the handshake */
    enum collect_need k = collect_ensure(ex, r);
    if (k != COLLECT_READY)
        return k == COLLECT_READ_MORE ? PEER_REQ_READ_BODY : PEER_REQ_ANSWERED;
    if (ex->collected == COLLECT_TOO_LARGE)
        return PEER_REQ_GO_ON;
    struct slice body = collect_body(ex, r);
    SHA256((const unsigned char *)body.p, body.len, ex->peer_body_digest);
    ex->peer_body = (struct outbuf){0};
    outbuf_add(&ex->peer_body, body.p, body.len);
    ex->peer_inline = 1;
    struct peer_state *ps = ex->w->handshake;
    pthread_mutex_lock(&ps->lock);
    ex->peer_ref =
        ps->mirror_epoch[0] && peer_fifo_find(ps->mirror, ex->peer_body_digest, NULL, NULL);
    pthread_mutex_unlock(&ps->lock);
    return PEER_REQ_GO_ON;
}

enum peer_request_verdict peer_stage_request(struct exchange *ex, const struct http_request *r)
{
    if (forward_side(ex))
        return forward_request(ex, r);
    if (ex->w->cfg->peer.n)
        return reverse_request(ex, r);
    return PEER_REQ_GO_ON;
}

int peer_stage_skip_field(struct exchange *ex, const struct http_field *f)
{
    if (slice_case_eq(f->name, "available-dictionary"))
        return 1; /* ours to send (forward) or to consume (reverse), never the origin's */
    if ((ex->peer || forward_side(ex)) && slice_case_eq(f->name, "accept-encoding"))
        return 1; /* rewritten below */
    if (ex->peer_inline && slice_case_eq(f->name, "content-encoding"))
        return 1;
    return 0;
}

/* Idem-Peer with a fresh nonce: every request we send is signed anew, a
 * resend too, since the reverse side accepts each nonce once. */
static void add_signature(struct exchange *ex, struct slice method, struct slice target,
                          struct slice digest, struct outbuf *o)
{
    const struct config *cfg = ex->w->cfg;
    unsigned char random[16];
    if (RAND_bytes(random, sizeof random) != 1)
        abort();
    char nonce[PEER_NONCE_LEN + 1];
    peer_nonce_encode(random, nonce);
    char sig[PEER_SIG_LEN + 1];
    int64_t ts = now_s();
    const char *scheme = ex->peer_https ? "https" : "http";
    peer_sign(cfg->peer.secret, cfg->peer.secret_len,
              (struct slice){cfg->peer.id, strlen(cfg->peer.id)},
              (struct slice){scheme, strlen(scheme)}, method, target, ts,
              (struct slice){nonce, PEER_NONCE_LEN}, digest, sig);
    struct outbuf v = {0};
    outbuf_printf(&v, "id=%s, scheme=%s, ts=%lld, nonce=%s, sig=%s", cfg->peer.id, scheme,
                  (long long)ts, nonce, sig);
    h1_client_field(o, SLICE_LIT("Idem-Peer"), (struct slice){v.p, v.len});
    free(v.p);
}

/* The rest of a request head: Accept-Encoding as rewritten, and on the
 * forward side the handshake fields, signed with a fresh nonce. With the
 * body in memory (peer_inline) this writes the framing, the blank line and
 * the body as well (as a reference while peer_ref), and returns 1. A
 * resend (a 415 to the reference, a retry on a fresh connection) calls it
 * again from the exchange's request: a new signature, never edited text. */
int peer_stage_upstream_fields(struct exchange *ex, const struct http_request *r,
                               struct slice target, struct outbuf *o)
{
    const struct http_field *ae = http_find_field(r->fields, r->nfields, "accept-encoding");
    if (ex->peer && ae) {
        /* reverse: the origin never sees our codings */
        struct outbuf v = {0};
        struct http_list_iter it = http_list_begin(ae->value);
        struct slice el;
        while (http_list_next(&it, &el) > 0) {
            if (list_has(el, "idem-ref") || list_has(el, "dcz"))
                continue;
            if (v.len)
                outbuf_addstr(&v, ", ");
            outbuf_addslice(&v, el);
        }
        if (v.len)
            h1_client_field(o, SLICE_LIT("Accept-Encoding"), (struct slice){v.p, v.len});
        free(v.p);
    }
    if (!forward_side(ex))
        return 0;
    struct outbuf v = {0};
    if (ae && ae->value.len) {
        outbuf_addslice(&v, ae->value);
        outbuf_addstr(&v, ", ");
    }
    outbuf_addstr(&v, "idem-ref, dcz");
    h1_client_field(o, SLICE_LIT("Accept-Encoding"), (struct slice){v.p, v.len});
    free(v.p);
    if (ex->stale && ex->stale->complete && ex->stale->body->len) {
        /* RFC 9842 §2.2: the body we hold for this key, even stale */
        body_digest(ex->stale->body, ex->peer_dict);
        ex->peer_has_dict = 1;
        char b64[48] = ":";
        int n = EVP_EncodeBlock((unsigned char *)b64 + 1, ex->peer_dict, 32);
        b64[1 + n] = ':';
        h1_client_field(o, SLICE_LIT("Available-Dictionary"), (struct slice){b64, (size_t)n + 2});
    }
    char digest[64] = "";
    if (ex->peer_inline)
        peer_digest_field(ex->peer_body_digest, digest);
    /* The scheme we key it under, signed: the reverse side keys and
     * forwards by it rather than by the link's transport (finding 2). */
    ex->peer_https = srv_request_scheme(ex, r) == CACHE_SCHEME_HTTPS;
    add_signature(ex, r->method, target, (struct slice){digest, strlen(digest)}, o);
    if (!ex->peer_inline)
        return 0;
    h1_client_field(o, SLICE_LIT("Idem-Digest"), (struct slice){digest, strlen(digest)});
    /* the client's codings, every field line as one list (checked in
     * forward_request: well-formed, none of the handshake's own) */
    struct outbuf codings = {0};
    struct coding_scan cs = scan_codings(r->fields, r->nfields, &codings);
    if (cs.n) {
        if (codings.len)
            outbuf_addstr(&codings, ", ");
        outbuf_addslice(&codings, cs.last);
    }
    if (ex->peer_ref) {
        /* the body named by Idem-Digest instead of sent */
        if (codings.len)
            outbuf_addstr(&codings, ", ");
        outbuf_addstr(&codings, "idem-ref");
    }
    if (codings.len)
        h1_client_field(o, SLICE_LIT("Content-Encoding"), (struct slice){codings.p, codings.len});
    free(codings.p);
    h1_client_end_head(o, HTTP_BODY_LENGTH, ex->peer_ref ? 0 : ex->peer_body.len);
    if (!ex->peer_ref)
        h1_client_body(o, (struct slice){ex->peer_body.p, ex->peer_body.len}, 0);
    return 1;
}

/* ---- forward side: responses ----------------------------------------- */

static void learn_store(struct exchange *ex, const struct http_response *res)
{
    struct peer_state *ps = ex->w->handshake;
    const struct http_field *st = http_find_field(res->fields, res->nfields, "idem-store");
    if (!st)
        return;
    char epoch[PEER_EPOCH_MAX + 1];
    uint64_t cap;
    if (peer_store_parse(st->value, epoch, &cap) < 0)
        return;
    pthread_mutex_lock(&ps->lock);
    if (strcmp(epoch, ps->mirror_epoch) || cap != peer_fifo_capacity(ps->mirror)) {
        /* the reverse side lost its store (or is new to us): start over */
        peer_fifo_reset(ps->mirror, cap);
        memcpy(ps->mirror_epoch, epoch, sizeof epoch);
    }
    if (ex->peer_inline && !ex->peer_ref && res->status != 415)
        peer_fifo_insert(ps->mirror, ex->peer_body_digest, NULL, ex->peer_body.len);
    pthread_mutex_unlock(&ps->lock);
}

/* The origin's response from a peer's coded one, verified: the peer's
 * head without the handshake's fields and framing, the coding left once
 * ours is taken off (recode), and the body's own length; the fields in the
 * order a parse of that message would give. No wire text: the relay takes
 * it as a parsed head (h1_client_deliver). */
static struct peer_rebuilt *rebuild(const struct http_response *res, size_t wire_len,
                                    struct slice coding_rest, int recode, const void *body,
                                    size_t len)
{
    struct peer_rebuilt *rb = calloc(1, sizeof *rb);
    if (!rb)
        abort();
    struct http_response *o = &rb->res;
    o->status = res->status;
    o->reason = res->reason;
    o->minor = res->minor;
    o->conn_flags = res->conn_flags;
    o->head_len = res->head_len;
    for (unsigned i = 0; i < res->nfields; i++) {
        const struct http_field *f = &res->fields[i];
        if (f->id == HF_IDEM || f->id == HF_CONTENT_LENGTH || f->id == HF_TRANSFER_ENCODING ||
            (recode && slice_case_eq(f->name, "content-encoding")))
            continue;
        o->fields[o->nfields++] = *f;
    }
    /* Idem-Digest and Content-Length were among them: room for two */
    ASSERT(o->nfields + 2 <= res->nfields);
    if (recode && coding_rest.len) {
        outbuf_addslice(&rb->coding, coding_rest);
        struct slice name = SLICE_LIT("Content-Encoding");
        o->fields[o->nfields++] =
            (struct http_field){name, {rb->coding.p, rb->coding.len}, http_field_classify(name)};
    }
    int n = snprintf(rb->length, sizeof rb->length, "%zu", len);
    o->fields[o->nfields++] = (struct http_field){
        SLICE_LIT("Content-Length"), {rb->length, (size_t)n}, HF_CONTENT_LENGTH};
    o->has_content_length = 1;
    o->content_length = len;
    rb->body = (struct slice){body, len};
    rb->wire_len = wire_len;
    return rb;
}

void peer_rebuilt_free(struct peer_rebuilt **rbp)
{
    struct peer_rebuilt *rb = *rbp;
    if (!rb)
        return;
    free(rb->dict);
    free(rb->decoded);
    free(rb->coding.p);
    free(rb);
    *rbp = NULL;
}

/* RFC 9112 §6.3: a response to HEAD, a 204 and a 304 have no body,
 * whatever Content-Length says; the peer coded nothing in them. */
static int bodyless(const struct exchange *ex, const struct http_response *res)
{
    return ex->method_head || res->status == 204 || res->status == 304;
}

enum peer_response_verdict peer_stage_response(struct exchange *ex, const struct http_response *res,
                                               struct peer_rebuilt **rebuilt)
{
    if (!forward_side(ex) || ex->peer_done)
        return PEER_NONE;
    struct peer_state *ps = ex->w->handshake;
    if (!ex->peer_seen) { /* once per response, however often its head is parsed */
        ex->peer_seen = 1;
        learn_store(ex, res);
        if (res->status == 401)
            log_msg(LOG_ERROR, "peer %s refused our signature: check --peer-id and --peer-secret",
                    ex->up_key);
        if (ex->peer_ref && res->status == 415 && !ex->peer_fallback) {
            ex->peer_fallback = 1;
            ex->peer_seen = 0;
            ps->fallbacks++;
            return PEER_RETRY;
        }
        if (ex->peer_inline)
            ex->peer_ref ? ps->refs++ : ps->fulls++;
    }
    const struct http_field *hd = http_find_field(res->fields, res->nfields, "idem-digest");
    if (!hd) {
        ex->peer_done = 1;
        return PEER_NONE; /* streamed past the handshake; Idem-* are hop-by-hop */
    }
    if (bodyless(ex, res)) {
        /* nothing to verify, nor to wait for; but none of our codings may
         * reach the client */
        struct coding_scan cs = scan_codings(res->fields, res->nfields, NULL);
        if (cs.malformed || cs.refs || cs.dczs)
            return PEER_FAIL;
        ex->peer_done = 1;
        return PEER_NONE;
    }
    unsigned char want[32];
    if (peer_digest_parse(hd->value, want) < 0 || !res->has_content_length ||
        res->content_length > ex->w->cfg->peer.max_body)
        return PEER_FAIL;
    struct upstream *u = ex->up;
    size_t whole = res->head_len + (size_t)res->content_length;
    if (iobuf_len(&u->conn.in) < whole)
        return PEER_WAIT;
    const char *enc = iobuf_data(&u->conn.in) + res->head_len;
    size_t enc_len = (size_t)res->content_length;
    struct outbuf rest = {0};
    struct coding_scan cs = scan_codings(res->fields, res->nfields, &rest);
    int ref = cs.n && slice_case_eq(cs.last, "idem-ref");
    int dcz = cs.n && slice_case_eq(cs.last, "dcz");
    if (cs.malformed || cs.refs + cs.dczs > (unsigned)(ref || dcz)) {
        free(rest.p); /* ours are the last coding, once: anything else is broken */
        return PEER_FAIL;
    }
    unsigned char *dict = NULL, *decoded = NULL;
    const void *body = enc;
    size_t len = enc_len;
    if (ref || dcz) {
        if (!ex->peer_has_dict || !ex->stale) {
            free(rest.p);
            return PEER_FAIL; /* we offered nothing to refer to */
        }
        dict = body_flat(ex->stale->body);
        if (ref) {
            body = dict;
            len = ex->stale->body->len;
        } else {
            decoded = peer_dcz_decode(enc, enc_len, dict, ex->stale->body->len, ex->peer_dict,
                                      ex->w->cfg->peer.max_body, &len);
            body = decoded;
        }
    }
    unsigned char got[32];
    if (body)
        SHA256(body, len, got);
    if (!body || memcmp(got, want, 32)) {
        free(rest.p);
        free(dict);
        free(decoded);
        return PEER_FAIL;
    }
    *rebuilt = rebuild(res, whole, (struct slice){rest.p, rest.len}, ref || dcz, body, len);
    (*rebuilt)->dict = dict; /* body may point into either */
    (*rebuilt)->decoded = decoded;
    free(rest.p);
    ex->peer_done = 1;
    return PEER_REBUILT;
}
