/* Types of the I/O layer: workers, client connections, upstream
 * connections and the exchange (one proxied request) between them.
 *
 *   worker   one thread, one uv loop, its listeners, clients and pool
 *   client   a client connection: bytes in/out, keep-alive, timeouts
 *   exchange the request in flight on a client, bound to one upstream
 *   upstream a connection to an origin, pooled per worker when idle
 */
#ifndef IDEM_SERVER_H
#define IDEM_SERVER_H
#include <stdint.h>
#include <uv.h>
#include "http/http.h"
#include "http/body.h"
#include "server/config.h"
#include "server/iobuf.h"
#include "server/conn.h"
#include "server/tls_ctx.h"
#include "server/link.h"
#include "server/origin.h"
#include "server/front.h"
#include "cache/store.h"
#include "cache/cache_control.h"
#include "cache/coalesce.h"
#include "cache/key.h"
#include <pthread.h>
#include <stdatomic.h>

#define WORKER_MAGIC 0x574f524bu
#define CLIENT_MAGIC 0x434c4e54u

/* Backpressure: stop reading a source once this much is queued on its sink. */
#define WRITE_HIGH_WATER (256 * 1024)
#define WRITE_LOW_WATER  (64 * 1024)
#define READ_CHUNK       (64 * 1024)
#define LINGER_MS        2000

#define CHECK_MAGIC(p, m)                                                                          \
    do {                                                                                           \
        if (!(p) || (p)->magic != (m))                                                             \
            srv_panic(__FILE__, __LINE__, #p " magic");                                            \
    } while (0)
#define ASSERT(c)                                                                                  \
    do {                                                                                           \
        if (!(c))                                                                                  \
            srv_panic(__FILE__, __LINE__, #c);                                                     \
    } while (0)
void srv_panic(const char *file, int line, const char *what) __attribute__((noreturn));

/* What every worker shares besides the store: built before the threads
 * start and read-only afterwards, but for the connection count. */
struct srv_shared {
    /* accepted client connections open, all workers, and the origin
     * connections of h2 streams past the one a client's slot covers */
    atomic_ulong connections;
    unsigned long max_connections; /* the cap in force (limits.max_connections, see worker.c) */
    /* forward mode: our sockets and this host's addresses, for the egress
     * check (http/netaddr.h) on every address about to be connected */
    struct net_endpoint *self; /* owned */
    struct net_addr *local;    /* owned */
    struct net_egress_policy egress;
    const struct tls_contexts *tls; /* the TLS contexts (members NULL: not used) */
};

/* A slot of limits.max_connections: 0 when all are taken. */
static inline int shared_slot_take(struct srv_shared *sh)
{
    if (atomic_fetch_add(&sh->connections, 1) < sh->max_connections)
        return 1;
    atomic_fetch_sub(&sh->connections, 1);
    return 0;
}

static inline void shared_slot_put(struct srv_shared *sh)
{
    atomic_fetch_sub(&sh->connections, 1);
}

struct srv_worker {
    uint32_t magic;
    int id;
    const struct config *cfg;
    uv_loop_t loop;
    /* listen, then tls.listen, then maybe the admin listener */
    uv_tcp_t listeners[2 * CONFIG_LISTEN_MAX + 1];
    uint8_t listener_tls[2 * CONFIG_LISTEN_MAX + 1]; /* 1: clients there speak TLS */
    int admin_listener;                              /* index in listeners, or -1 */
    int nlisteners;
    uv_async_t wakeup;
    uv_timer_t drain_timer;
    uv_thread_t thread;
    struct http_limits req_limits;
    struct http_limits resp_limits;
    struct sockaddr_storage upstream_addr; /* reverse mode, resolved at start */
    char upstream_key[300];
    /* Via's entry, "1.1 <cache.name>" (RFC 9110 §7.6.3): the pseudonym
     * tells the hops of a peer pair apart; made at start (worker.c) */
    char via[4 + sizeof(((struct config *)0)->cache.name)];
    size_t via_len;
    struct link clients;
    struct link idle_upstreams;
    unsigned nidle;
    int draining;
    int stopped;
    struct store *store;          /* shared by all workers; NULL: cache off */
    struct body_memo *memo;       /* this worker's normalized body digests */
    struct peer_state *handshake; /* the peer handshake's stores, shared; NULL: none */
    struct coalesce *co;          /* shared in-flight table */
    struct srv_shared *shared;
    struct srv_worker *peers; /* all workers, to wake those with waiters */
    int npeers;
    struct link parked;    /* clients waiting on a coalesced fetch */
    struct link streamers; /* clients streaming one as it arrives */
    uv_async_t co_async;   /* "a fetch you wait on is done" */
    pthread_mutex_t inbox_lock;
    char **inbox; /* released keys, NUL-terminated copies */
    size_t inbox_len, inbox_cap;
    int inbox_closed;
    uint64_t background;   /* internal refreshes in flight (background.c) */
    struct link internals; /* their exchanges' fronts, finished ones too (internal.c) */
    struct origin_session sessions[ORIGIN_SESSIONS_MAX]; /* TLS toward origins */
    unsigned sessions_next;                              /* the slot replaced next */
    struct http_request req; /* scratch: the head being parsed, into req_fields */
    struct http_field req_fields[HTTP_FIELDS_MAX];
    struct http_response res; /* scratch: the response head being parsed */
};

/* An owned, growable output buffer; handed to a write without copying. */
struct outbuf {
    char *p;
    size_t len, cap;
};
/* Room for n more bytes after len (p may move). */
void outbuf_reserve(struct outbuf *o, size_t n);
void outbuf_add(struct outbuf *o, const void *p, size_t n);
void outbuf_addstr(struct outbuf *o, const char *s);
void outbuf_addslice(struct outbuf *o, struct slice s);
void outbuf_addu64(struct outbuf *o, uint64_t v);
void outbuf_addhex(struct outbuf *o, uint64_t v);
/* "name: value\r\n" */
void outbuf_addfield(struct outbuf *o, struct slice name, struct slice value);
/* The end of a field line begun with outbuf_addstr (the form of `ours`,
 * front.h), and the same into a char buffer: returns where the NUL went. */
void outbuf_endline(struct outbuf *o);
char *field_line_end(char *p);
/* "name: <decimal v>\r\n" */
void outbuf_addfieldu64(struct outbuf *o, struct slice name, uint64_t v);
/* "HTTP/1.1 <status> <reason>\r\n" */
void outbuf_addstatus(struct outbuf *o, int status, struct slice reason);
void outbuf_printf(struct outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum exchange_state {
    EX_NONE,
    EX_RESOLVING,
    EX_CONNECTING,
    EX_RESP_HEAD, /* request going out, waiting for the response head */
    EX_RESP_BODY,
    EX_TUNNEL,
};

struct upstream;

/* Where reading a request body ahead stands. COMPLETE and TOO_LARGE are
 * kept in ex->collected (else NONE). */
enum collect_state {
    COLLECT_OVER_LIMIT = -3, /* past limits.request_body: answered 413 */
    COLLECT_MALFORMED = -2,  /* a bad chunked body: answered 400 */
    COLLECT_TOO_LARGE = -1,  /* outgrew body_key.max_bytes: it streams instead */
    COLLECT_NONE = 0,        /* more to come; in ex->collected: not yet */
    COLLECT_COMPLETE = 1,
};

/* A request body read ahead of the pipeline to compute its cache key (or
 * check a peer's digest). Its content goes to `body`, the exchange's own;
 * the raw bytes stay with the protocol (front_ops.req_in) until the
 * pipeline, run again from the exchange's request once the body is
 * complete, consumes them: a hit drops them, a miss sends `body` from
 * memory, and a body too large to read ahead streams from there as usual. */
struct body_collect {
    struct http_body_reader reader;
    size_t scanned;     /* raw body bytes of req_in already read */
    struct outbuf body; /* the content, without its framing */
};

/* What the pipeline does with request body bytes as they arrive
 * (exchange_req_data). */
enum exchange_body {
    EX_BODY_NONE,    /* nothing now: no body, all of it read, or not yet wanted */
    EX_BODY_COLLECT, /* reads it ahead to key it (body_key.c) */
    EX_BODY_FORWARD, /* sends it to the origin (proxy.c) */
};

#define EXCHANGE_MAGIC 0x45584348u

/* One request on its way through the pipeline. The head of the struct
 * survives exchange_restart, which runs the stages again on the same
 * request (its body read ahead, or woken from parking); everything from
 * `state` on is per attempt. */
struct exchange {
    uint32_t magic;
    int no_coalesce;            /* woken, the request goes upstream itself */
    const struct front_ops *fe; /* the protocol that answers it (front.h) */
    void *fe_ctx;               /* the protocol's: h1 struct client, h2 stream */
    const struct conninfo *ci;  /* who sent the request (the protocol's) */
    struct srv_worker *w;
    /* coalescing: a parked request waits for another one's fetch */
    struct link park_link; /* in the worker's parked */
    char *park_key;
    size_t park_key_len;
    /* streaming a fetch in flight that another request leads */
    struct link stream_link; /* in the worker's streamers */
    struct cache_object *stream;
    struct cache_segment *stream_seg; /* where we are in its body */
    size_t stream_off;
    struct body_collect col;
    /* The protocol's (h1: bytes of the request's head still at the front
     * of its buffer: head_len at first, 0 once consumed by req_consume). */
    size_t in_head;
    int sent_continue; /* the protocol answered Expect: 100-continue */
    /* Raw body bytes read ahead and let go of by the protocol (parked,
     * answered, sent from memory): bytes_in keeps them across a restart. */
    uint64_t body_in;
    enum collect_state collected; /* COMPLETE, TOO_LARGE, or NONE: not read ahead */
    char *bg_key; /* an internal refresh: its key's coalescing slot, until it is taken */
    size_t bg_key_len;
    /* The nonce of this exchange's signed request, accepted: its stages
     * run again (body read ahead, woken from parking), it is not a replay. */
    char peer_nonce[PEER_NONCE_LEN];
    int peer_nonce_held;
    struct link retired_link; /* the protocol's (h1: in its client's retired list) */

    enum exchange_state state;
    int finished; /* done: the next request gets a new exchange */
    struct upstream *up;
    /* The request, owned (exchange_own_request): one block with its fields
     * and head, so its slices outlive the connection's buffer. NULL: no
     * request began (an error before the head parsed). */
    struct http_request *req;
    struct slice method, target; /* req's, for the log */
    int method_head;
    int upgrade; /* client asked for an Upgrade */
    enum exchange_body req_phase;
    /* "host:port" of the upstream: the worker's own (reverse mode), or
     * up_key_own for one the request names */
    const char *up_key;
    char *up_key_own;
    int up_port;
    struct outbuf up_head; /* the request head to send */
    struct http_body_reader req_body;
    int req_chunked; /* re-frame the request body as chunked */
    int req_done;
    uint64_t req_bytes;
    int retried;
    int resp_started; /* a response head went to the client */
    int status;
    struct http_body_reader resp_body;
    int resp_chunked; /* re-frame the response body as chunked */
    int resp_close_delimited;
    int up_reusable;
    int up_answered_early; /* a response head came before the request was written */
    int client_minor;
    int method_connect;
    struct outbuf resp_head; /* leaves with the first body bytes: one write */
    /* the request can go again whole, its head built anew from req
     * (a retry, a 415 to a reference): bodiless, or its body in peer_body */
    int resendable;
    int tun_client_eof, tun_up_eof;
    /* cache stage (cache_stage.c) */
    char *cache_key;
    size_t cache_key_len;
    const char *fwd;          /* Cache-Status fwd= value; NULL: not via the cache */
    const char *cache_detail; /* Cache-Status detail= */
    /* for the debug line of each exchange (log.level: debug) */
    int rule_no;     /* the rule that matched, from 1; 0: none */
    int said_stored; /* Cache-Status said stored */
    int up_conn;     /* 0: origin not contacted; 1: a new connection; 2: a pooled one */
    struct cache_control req_cc;
    int req_authorization;
    int cache_candidate;        /* GET/HEAD the cache may answer or store */
    int invalidates;            /* unsafe method: invalidate on 2xx/3xx (§4.4) */
    int post_may_store;         /* a POST whose response may answer GETs (RFC 9110 §9.3.3) */
    int revalidating;           /* we added validators for ex->stale */
    struct cache_object *stale; /* stored response being revalidated */
    struct cache_object *fill;  /* response being stored */
    int fill_unstored;          /* fill outgrew the store: fed on for its streamers only */
    size_t fill_reserved;       /* bytes the store set aside for fill (store_ops.reserve) */
    struct cache_object *held;  /* unstored 200 held to be tagged (cache.etag_hold_max) */
    uint64_t purge_generation;  /* the store's when this request was looked up */
    int64_t req_time;
    int discard_body; /* the client was served from the store */
    int body_keyed;   /* keyed by its body (POST by a rule, QUERY) */
    int rpc;          /* a cacheable Connect unary call, GET or POST */
    /* the peer handshake (peer_stage.c) */
    struct peer_side *peer;      /* reverse: the verified peer this came from */
    unsigned char peer_dict[32]; /* the dictionary offered (reverse) or sent (forward) */
    int peer_has_dict, peer_accept_ref, peer_accept_dcz;
    /* the Idem-Peer scheme is https: signed (forward), verified (reverse) */
    int peer_https;
    struct outbuf peer_body; /* forward: the request body, sent from memory */
    unsigned char peer_body_digest[32];
    int peer_inline;   /* forward: the body goes from peer_body */
    int peer_ref;      /* forward: sent as a reference */
    int peer_fallback; /* forward: the reference was refused; resent whole */
    int peer_done;     /* forward: the response was checked (and rebuilt) */
    int peer_seen;     /* forward: its Idem-Store was read */
    uint64_t rule_ttl; /* ms: freshness when the origin gives none */
    int holding;       /* the cache stage holds the response (etag_hold_max) */

    const char *peer_refused; /* reverse: why a signed request was refused (Proxy-Status) */
    int peer_refused_full;    /* reverse: refused because peer.nonces is full */

    int coalesce_leader;
    /* the request's fields for Vary: req's own, or (a Connect call) an
     * owned array of them less Accept-Encoding */
    const struct http_field *req_fields;
    struct http_field *req_fields_owned;
    unsigned req_nfields;
    uint64_t bytes_in, bytes_out;
    uint64_t t_start, t_up_start, t_up_end; /* ns */
};

/* worker.c */
int worker_run_all(const struct config *cfg, const struct tls_contexts *tls);
void worker_client_gone(struct srv_worker *w);

/* exchange.c */
/* ---- protocol -> pipeline (front.h: the other way) ----------------------
 * A protocol makes one exchange per request (h1: per request on the
 * connection; h2: per stream; internal.c: per refresh):
 *   exchange_new           the exchange, bound to the protocol `fe` and its
 *                          fe_ctx (h1: struct client; h2: its stream) and
 *                          to ci, the protocol's, which outlives it
 *   exchange_own_request   its request, copied from a parsed HTTP/1 head
 *   or exchange_copy_request  copied from slices anywhere (h2 HEADERS)
 *   exchange_begin         the stages run; they answer through fe
 *   exchange_req_data      more of the request body is in req_in (or it
 *                          ended): the pipeline reads on
 *   exchange_front_drained what was queued toward the client went out
 *                          (below WRITE_LOW_WATER): relay or stream on
 *   exchange_front_gone    the client went (h1: closed; h2: stream reset):
 *                          unparked, unlinked from streaming, its upstream
 *                          closed, logged (499); no front_ops call after it.
 *                          Or, its response streaming into the cache, the
 *                          fetch goes on without it (EXCHANGE_DETACHED):
 *                          logged as today, then the internal front's
 *                          (internal_adopt), which frees it; the protocol
 *                          drops its pointer and never frees it
 *   exchange_free          once no call chain can hold it (h1: its close
 *                          callback or the next read callback) */
/* A new exchange (NULL: out of memory). ci may be NULL until the protocol
 * knows its client (it must be set before exchange_begin). */
struct exchange *exchange_new(struct srv_worker *w, const struct front_ops *fe, void *fe_ctx,
                              const struct conninfo *ci);
/* Give ex its own copy of r, parsed from the bytes at `head`: ex->req
 * (and ex->method, ex->target) outlive the connection's buffer. 0, or -1
 * out of memory. */
int exchange_own_request(struct exchange *ex, const struct http_request *r, const char *head);
/* The same for a request whose slices point anywhere (h2: HEADERS as
 * nghttp2 hands them over): each is copied; r->head_len is ignored and
 * the copy's is the bytes of text it holds. Fill r's method, target (the
 * path), form (HTTP_TARGET_ABSOLUTE with scheme and authority, or ORIGIN),
 * host, minor 1, body (LENGTH with content_length, STREAM or NONE),
 * fields and nfields. 0, or -1 out of memory. */
int exchange_copy_request(struct exchange *ex, const struct http_request *r);
/* ex->req is owned (above): run the stages. */
void exchange_begin(struct exchange *ex);
void exchange_req_data(struct exchange *ex);
void exchange_front_drained(struct exchange *ex);
/* What became of an exchange whose client went. */
enum exchange_gone {
    EXCHANGE_ENDED,    /* ended: still the protocol's, freed as usual */
    EXCHANGE_DETACHED, /* a background fetch now (internal.c): not the protocol's */
};
enum exchange_gone exchange_front_gone(struct exchange *ex);
/* Free what the last attempt held, keep what carries over (see struct
 * exchange): the connection's first request, or (exchange_restart) the
 * same request again. */
void exchange_reset(struct exchange *ex);
/* The request is answered (or given up): reset, and the next request on
 * the connection gets a new exchange. The memory stays until then, so the
 * code that answered may still read its (now empty) fields. */
void exchange_done(struct exchange *ex);
/* The same request runs through the stages again, without being parsed
 * again: like exchange_reset, but ex keeps its request and start time. */
void exchange_restart(struct exchange *ex);
/* Make the exchange's request the same one carrying `body` (len bytes)
 * whole: its Content-Encoding, Content-Length and Transfer-Encoding lines
 * dropped, `coding` (if any) as its Content-Encoding, a Content-Length
 * added. The body becomes its body read ahead (none of it with the protocol).
 * The old request, and slices into it, are gone. -1: out of memory. */
int exchange_set_body(struct exchange *ex, struct slice coding, const void *body, size_t len);
/* Run the stages again from the exchange's own request (a body read
 * ahead, a parked request woken). */
void proxy_restart(struct exchange *ex);
/* Let go of the request's bytes at the front of its connection's input:
 * its head if still there, and with `body` the body bytes read ahead. */
void proxy_consume_request(struct exchange *ex, int body);
/* Free ex and all it holds; *xp becomes NULL. */
void exchange_free(struct exchange **xp);
/* An exchange made but never begun is used for a request after all (h1:
 * its connection's first): clear what would survive a restart. */
void exchange_renew(struct exchange *ex);

/* proxy.c: the request pipeline (and exchange_begin, exchange_req_data,
 * exchange_front_drained, exchange_front_gone: see exchange.c above) */
void proxy_on_connected(struct exchange *ex, int status);
void proxy_on_upstream_eof(struct exchange *ex, int status);
void proxy_on_upstream_timeout(struct exchange *ex, enum upstream_timer kind);
void proxy_upstream_drained(struct exchange *ex);
/* The upstream's conn_cb.written. */
void proxy_upstream_written(void *owner, int status);
/* Answer ex with an error of ours (pool.c: resolve, connect, TLS failed). */
void proxy_fail(struct exchange *ex, int status, const char *detail);
void proxy_log_exchange(struct exchange *ex);
/* ex is answered whole: logged, exchange_done, then front_ops.done. */
void proxy_done(struct exchange *ex, enum front_done how);
/* w->via from cache.name, once at start (worker.c). */
void proxy_via_init(struct srv_worker *w);
/* A Via field of ours (RFC 9110 §7.6.3) on a message we forward: w->via,
 * its received-protocol HTTP/1.0 when the message came as 1.0 (minor 0). */
void proxy_add_via(const struct srv_worker *w, int minor, struct outbuf *o);

/* cache_stage.c: the cache in the pipeline */
/* What the pipeline (run_stages) does after the cache stage saw the request. */
enum cache_request_verdict {
    CACHE_REQ_FORWARD,   /* go upstream: a miss, a revalidation, or not for the cache */
    CACHE_REQ_ANSWERED,  /* answered: from the store, or refused (only-if-cached, 400) */
    CACHE_REQ_PARKED,    /* waits behind another request's fetch of the same key */
    CACHE_REQ_READ_BODY, /* read the body ahead first (EX_BODY_COLLECT), then run again */
};
enum cache_request_verdict cache_stage_request(struct exchange *ex, const struct http_request *r);
void cache_stage_upstream_fields(struct exchange *ex, struct outbuf *o);
/* What the origin's response head becomes. */
enum cache_response_verdict {
    CACHE_RESP_RELAY,    /* relay it (stored as it streams, or not) */
    CACHE_RESP_ANSWERED, /* answered from the store: read the origin's body and drop it */
    CACHE_RESP_HOLD,     /* send nothing yet: the body is fed in and _finish answers */
};
enum cache_response_verdict cache_stage_response(struct exchange *ex,
                                                 const struct http_response *res);
void cache_stage_status_field(struct exchange *ex, int status, struct outbuf *o);
/* Does this client's answer leave Surrogate-Key out (proxy.pass_surrogate_key)? */
int cache_stage_strips_surrogate_key(const struct exchange *ex);
/* cache.strip_targeted: is this response field one to remove (RFC 9213)? */
int cache_stage_strips_field(const struct exchange *ex, struct slice name);
void cache_stage_body(struct exchange *ex, const char *p, size_t n);
void cache_stage_finish(struct exchange *ex, int complete);
int cache_stage_serve_stale_on_error(struct exchange *ex, int status);
void cache_stage_reset(struct exchange *ex);
void cache_stage_wake(struct srv_worker *w);
void cache_stage_unpark(struct exchange *ex);
void cache_stage_release_key(struct srv_worker *w, const char *key, size_t len);
void cache_stage_stream_pump(struct exchange *ex);
/* The scheme this request is keyed under (cache/key.h
 * cache_request_scheme): https when it came over TLS, or a forward
 * proxy's absolute-form target's own. */
/* A verified peer's request: the scheme its forward side keyed it under,
 * signed in Idem-Peer (peer_https), not the link's transport. */
enum cache_scheme srv_request_scheme(const struct exchange *ex, const struct http_request *r);
/* Did the request come over TLS (a background refresh: the request that
 * started it)? What Forwarded proto= and X-Forwarded-Proto say. */
int srv_over_tls(const struct conninfo *ci);
/* Remove what is stored for a URL (a "G ..." key): its GET/HEAD entry and
 * every body key at it (POST, QUERY, Connect). Invalidation (RFC 9111
 * §4.4) and the admin PURGE share it. Returns the number removed. */
unsigned cache_stage_remove_url(struct store *st, const char *url_key, size_t len);

/* body_key.c: requests keyed by their body, and Connect calls */
struct rule;
enum collect_state collect_start(struct exchange *ex, const struct http_request *r);
/* The body read ahead, or the way there, for a request stage. */
enum collect_need {
    COLLECT_READY,     /* c->collected tells how it went */
    COLLECT_READ_MORE, /* more must be read first (EX_BODY_COLLECT) */
    COLLECT_ANSWERED,  /* it was malformed and answered 400 */
};
enum collect_need collect_ensure(struct exchange *ex, const struct http_request *r);
/* The complete body read ahead, without its framing. */
struct slice collect_body(struct exchange *ex, const struct http_request *r);
void collect_continue(struct exchange *ex);
void collect_free(struct exchange *ex);
/* Key a request by its body read ahead: ex->cache_key (class 'P', 'Q', or
 * 'C' for a Connect call with codec rpc_codec). 0, or -1 after a 400 of our
 * own (Content-Digest). */
int key_body(struct exchange *ex, const struct http_request *r, const struct rule *rule, char cls,
             struct slice rpc_codec);
/* Key a Connect GET by the message in its query, as its POST would be.
 * -1 when the query does not decode (then it is an ordinary GET). */
int key_rpc_get(struct exchange *ex, const struct http_request *r, struct slice codec);
/* The target's path without the query, and the query. */
struct slice request_path(const struct http_request *r);
struct slice request_query(const struct http_request *r);

/* background.c: serve stale, refresh behind it. 0: the refresh runs (or
 * one already does) and the stale copy may be served; -1: revalidate in
 * the foreground instead. */
int background_revalidate(struct exchange *ex, const struct http_request *r, const char *key,
                          size_t key_len);

/* peer_stage.c: the forward/reverse digest handshake */
/* What the forward side makes of a response head from the peer. */
enum peer_response_verdict {
    PEER_FAIL = -1, /* failed verification: 502 */
    PEER_NONE,      /* not coded (or already done): the head goes on as it is */
    PEER_WAIT,      /* a coded body: read it whole first */
    PEER_REBUILT,   /* decoded and verified: the origin's response, in *rebuilt */
    PEER_RETRY,     /* our reference was refused (415): resend the body whole */
};
/* The origin's response decoded from a peer's coded one: what the relay
 * gets in place of the head parsed off the link (h1_client_deliver). Its
 * slices point into u->conn.in (the peer's field lines), which keeps the
 * coded message until the body is relayed, and into the struct itself. */
struct peer_rebuilt {
    struct http_response res;      /* the handshake's fields gone; Content-Length: body.len */
    struct slice body;             /* the body, whole */
    size_t wire_len;               /* the coded message's bytes at the front of u->conn.in */
    unsigned char *dict, *decoded; /* what body points into, when not u->conn.in */
    struct outbuf coding;          /* the Content-Encoding left, if any */
    char length[24];               /* the Content-Length value */
};
void peer_rebuilt_free(struct peer_rebuilt **rb);
struct peer_state;
struct peer_side;
struct peer_state *peer_state_new(const struct config *cfg);
void peer_state_free(struct peer_state *s);
/* /stats: the handshake's counters, and what its stores hold (bytes as
 * charged by peer_fifo_cost; reverse: summed over peers; forward: the
 * mirror of the reverse side's request store). */
struct peer_stats {
    uint64_t refs, fulls, fallbacks;
    uint64_t request_store_bytes, request_store_entries;
    uint64_t response_store_bytes, response_store_entries;
    uint64_t mirror_bytes, mirror_entries;
};
void peer_state_stats(struct peer_state *s, struct peer_stats *out);
/* What the pipeline (run_stages) does after the peer stage saw the request. */
enum peer_request_verdict {
    PEER_REQ_GO_ON,         /* on to the cache stage */
    PEER_REQ_ANSWERED,      /* refused with an error; the connection closes */
    PEER_REQ_ANSWERED_KEEP, /* answered (415 to an unknown reference): keep-alive */
    PEER_REQ_READ_BODY,     /* read the body ahead first (EX_BODY_COLLECT), then run again */
};
enum peer_request_verdict peer_stage_request(struct exchange *ex, const struct http_request *r);
int peer_stage_skip_field(struct exchange *ex, const struct http_field *f);
/* `target` is the request target exactly as sent (signed as it is), with
 * a fresh nonce on every call: a resend calls it again.
 * 1: the head is complete, body included (sent from memory). */
int peer_stage_upstream_fields(struct exchange *ex, const struct http_request *r,
                               struct slice target, struct outbuf *o);
/* Forward: see enum peer_response_verdict. PEER_REBUILT sets *rebuilt
 * (the caller frees it); nothing else does. */
enum peer_response_verdict peer_stage_response(struct exchange *ex, const struct http_response *res,
                                               struct peer_rebuilt **rebuilt);
/* Reverse: hold a response to a peer, send it coded. */
int peer_stage_hold(struct exchange *ex, const struct http_response *res);
void peer_stage_send(struct exchange *ex, struct cache_object *o, struct outbuf *after);
void peer_stage_fields(struct exchange *ex, struct outbuf *o);

/* internal.c: the front of an exchange with no client (front.h) */
extern const struct front_ops internal_front;
/* Run r (copied) as an internal request standing in for ci's client (its
 * address for the log, its scheme for the key and proto=), holding the
 * coalescing slot `key` its starter took (the cache stage takes it over,
 * or it is released when the refresh ends). 0, or -1 out of memory (the
 * slot is still the caller's). */
int internal_start(struct srv_worker *w, const struct http_request *r, const struct conninfo *ci,
                   const char *key, size_t key_len);
/* A client's exchange whose client went while its response streams into
 * the cache goes on as a background fetch: rebound to the internal front
 * (ex->fe, fe_ctx, and ci, copied from the protocol's), counted with the
 * refreshes (cache.background_fetches, the drain), freed by internal.c.
 * 0, or -1 (at the cap, or out of memory): ex is untouched. */
int internal_adopt(struct exchange *ex);
/* A background fetch whose object the store let go of (too large): no one
 * is left to read the rest for, the pipeline ends it. */
int internal_fetch_unwanted(const struct exchange *ex);
/* The drain timed out: every refresh in flight ends now (logged 499). */
void internal_abort_all(struct srv_worker *w);
/* Free them all, once the worker's loop has ended. */
void internal_free_all(struct srv_worker *w);

/* admin.c */
void admin_handle(struct exchange *ex, const struct http_request *r);

/* reply.c */
void reply_error(struct exchange *ex, int status, const char *detail);
/* The same as application/problem+json (RFC 9457). */
void reply_problem(struct exchange *ex, int status, const char *title, const char *detail);
const char *reply_reason(int status);

/* tunnel.c: a CONNECT or Upgrade tunnel, on HTTP/1 only (ex->fe is
 * h1_front): the pipeline's side. */
void tunnel_start(struct exchange *ex);
void tunnel_upstream_data(struct exchange *ex);
void tunnel_upstream_eof(struct exchange *ex);
void tunnel_upstream_drained(struct exchange *ex);
void tunnel_close(struct exchange *ex);

static inline uint64_t ms_since(uint64_t t_ns)
{
    return (uv_hrtime() - t_ns) / 1000000;
}

#endif
