/* The configuration: defaults, the YAML file and the command line, merged
 * into one immutable snapshot shared read-only by all workers. */
#ifndef IDEM_CONFIG_H
#define IDEM_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "rules/rules.h"
#include "connect/connect.h"
#include "peer/peer.h"
#include "http/netaddr.h"

#define CONFIG_LISTEN_MAX        8
#define CONFIG_PEERS_MAX         16
#define CONFIG_FORWARD_ALLOW_MAX 64
#define CONFIG_CONNECT_PORTS_MAX 32
#define CONFIG_TLS_CERTS_MAX     16
#define CONFIG_PATH_MAX          512
/* tls.min_version: the protocol numbers OpenSSL uses (TLS1_2_VERSION,
 * TLS1_3_VERSION), without making config.h include OpenSSL */
#define CONFIG_TLS1_2 0x0303
#define CONFIG_TLS1_3 0x0304

enum config_mode { MODE_REVERSE, MODE_FORWARD };

/* tls.client_verify: client certificates on the TLS listeners (nginx's
 * ssl_verify_client). */
enum config_client_verify {
    CLIENT_VERIFY_OFF,      /* none asked for */
    CLIENT_VERIFY_OPTIONAL, /* asked for; one presented must chain to tls.client_ca */
    CLIENT_VERIFY_REQUIRE,  /* a handshake without one chained to tls.client_ca fails */
};

/* The Host a reverse proxy sends its origin (proxy.host). */
enum config_origin_host {
    ORIGIN_HOST_CLIENT,   /* the client's, as Varnish does */
    ORIGIN_HOST_UPSTREAM, /* the upstream URL's authority, as nginx's $proxy_host */
    ORIGIN_HOST_FIXED,    /* proxy.host_value */
};

struct config_addr {
    char host[256];
    int port;
    unsigned line; /* where the file set it, for errors found later; 0: not from the file */
    bool tls;      /* an https:// URL (upstream, peer): TLS to it */
};

/* A certificate and its private key (PEM files). */
struct config_tls_cert {
    char cert[CONFIG_PATH_MAX];
    char key[CONFIG_PATH_MAX];
    unsigned line;     /* where the file set cert; 0: not from the file (a flag) */
    unsigned key_line; /* where the file set key; 0: not from the file (a flag) */
};

/* TLS toward an origin (upstream_tls) or the reverse idemcache (peer_tls). */
struct config_tls_client {
    char ca[CONFIG_PATH_MAX];      /* PEM bundle; "": the system store */
    bool verify;                   /* false only when set so: logged at startup */
    char sni[256];                 /* "": the URL's host (upstream_tls only) */
    struct config_tls_cert client; /* our certificate, optional: cert "" = none */
    unsigned line;                 /* where the file set ca; 0: default or a flag */
    unsigned sni_line;             /* where the file set sni (unused settings are warned about) */
    unsigned verify_line;          /* where the file set verify (false is warned about) */
};

/* limits.max_connections when not set: lowered at startup to what the
 * descriptor limit allows (a configured value is kept, with a warning). */
#define CONFIG_MAX_CONNECTIONS_DEFAULT 10000

struct config {
    char file[512]; /* the file loaded, "" if none: errors found after loading name it */
    enum config_mode mode;
    struct config_addr listen[CONFIG_LISTEN_MAX];
    int nlisten;
    struct config_addr upstream; /* reverse mode: the origin */
    struct config_addr admin;    /* admin listener; port 0: off */

    /* Client TLS termination (tls:, --tls-listen/--tls-cert/--tls-key). */
    struct {
        struct config_addr listen[CONFIG_LISTEN_MAX];
        int nlisten;
        /* certs[0] is tls.cert/tls.key, the default; the others from
         * tls.certs are chosen by SNI against their names. Without
         * tls.cert, certs[0] stays empty and certs[1] (the first of
         * tls.certs) is the default. ncerts counts certs[0] whenever any
         * is set. */
        struct config_tls_cert certs[CONFIG_TLS_CERTS_MAX];
        unsigned ncerts;
        int min_version;                 /* CONFIG_TLS1_2 or CONFIG_TLS1_3 */
        char client_ca[CONFIG_PATH_MAX]; /* PEM bundle client certificates chain to */
        enum config_client_verify client_verify;
        unsigned client_ca_line;     /* where the file set client_ca; 0: not from the file */
        unsigned client_verify_line; /* where the file set client_verify; 0: default */
        /* nginx's ssl_session_tickets, ssl_ciphers and (through
         * ssl_conf_command) Ciphersuites; "": OpenSSL's defaults */
        bool session_tickets;
        char ciphers[1024];     /* TLS 1.2, OpenSSL cipher list syntax */
        char ciphersuites[512]; /* TLS 1.3, names joined by ':' */
        unsigned ciphers_line, ciphersuites_line, session_tickets_line;
    } tls;
    struct config_tls_client upstream_tls; /* --upstream https://... */
    struct config_tls_client peer_tls;     /* --peer https://... */
    bool has_upstream;
    int workers; /* 0: one per core */

    struct {
        uint64_t client_header;    /* whole request head, from its first byte */
        uint64_t client_body_idle; /* between reads of a request body */
        uint64_t client_send_idle; /* a client that stops reading its response */
        uint64_t keepalive_idle;   /* between requests */
        uint64_t upstream_connect;
        uint64_t upstream_first_byte; /* request sent -> response head starts */
        uint64_t upstream_idle;       /* between reads of a response */
        uint64_t upstream_keepalive;  /* idle pooled connection lifetime */
        uint64_t drain;               /* graceful shutdown bound */
        uint64_t tls_handshake;       /* a TLS handshake, client or origin side */
    } timeouts;                       /* milliseconds */

    struct {
        uint64_t request_line;
        uint64_t header_section;
        uint64_t header_count;
        uint64_t request_body; /* 0: unlimited */
        uint64_t response_header_section;
        uint64_t upstream_idle_per_worker; /* pooled connections kept */
        uint64_t max_connections;          /* client connections, all workers; admin apart */
        uint64_t ranges; /* range-specs in a Range served as 206/416; more: the whole 200 */
    } limits;

    /* Forward mode: where a client may make us connect (README, "Forward
     * proxy"). Our own sockets are refused whatever these say. */
    struct {
        bool allow_private; /* loopback, link-local, unspecified destinations */
        struct net_cidr allow[CONFIG_FORWARD_ALLOW_MAX]; /* allowed even when private */
        unsigned nallow;
        uint16_t connect_ports[CONFIG_CONNECT_PORTS_MAX]; /* CONNECT only to these */
        unsigned nconnect_ports;
    } forward;

    struct {
        bool via;
        bool x_forwarded_for;
        /* X-Forwarded-Proto: the scheme the client used (ours, never the
         * client's: a client-sent one is removed either way). */
        bool x_forwarded_proto;
        bool forwarded;
        /* Reverse mode only: a forward proxy sends the authority of the
         * request's URI (RFC 9112 §3.2.2). The cache key keeps the
         * client's authority whatever this says. */
        enum config_origin_host host;
        char host_value[256]; /* ORIGIN_HOST_FIXED: a valid host[:port] */
        unsigned host_line;   /* where the file set proxy.host; 0: default */
        bool
            pass_surrogate_key; /* false: Surrogate-Key reaches no client (a verified peer apart) */
    } proxy;

    struct {
        bool enabled;
        uint64_t memory_size;       /* bytes across all shards */
        uint64_t max_object_size;   /* larger responses stream through unstored */
        uint64_t max_stream_buffer; /* body held for collapsed requests past max_object_size */
        uint64_t max_variants;      /* Vary variants kept per URL */
        uint64_t eviction_scan;     /* objects in use an insert's eviction passes over */
        uint64_t heuristic_percent;
        uint64_t heuristic_max;      /* ms, like every duration */
        bool serve_stale_on_error;   /* origin down: serve any stale copy, Warning 111 */
        bool generate_etag;          /* stored 200s without ETag get one from a body hash */
        uint64_t background_fetches; /* stale-while-revalidate refreshes in flight per worker */
        uint64_t etag_hold_max;      /* unstored 200s up to this size are held to be tagged */
        char bypass_fields[RULE_HEADER_MAX]; /* a request with one of these skips the cache */
        /* RFC 9213 target list, most applicable first ("A, B"); "" = none */
        char targeted_fields[RULE_HEADER_MAX];
        bool strip_targeted; /* remove the listed targeted fields from responses (§2.3) */
        char name[64];       /* our name in Cache-Status (RFC 9211 §2) */
    } cache;

    struct rule rules[RULES_MAX]; /* first match wins */
    unsigned nrules;

    struct {
        uint64_t max_bytes;    /* request body read to compute a key; larger: bypass */
        uint64_t memo_entries; /* per worker: normalized digests by raw digest */
        /* Bounds on normalizing one body for its key (issue 10, finding 4);
         * past any of them the raw bytes are keyed. */
        uint64_t normalize_max_bytes;  /* decoded size, JSON text included */
        uint64_t normalize_max_values; /* JSON values */
        uint64_t normalize_max_depth;  /* JSON nesting */
    } body_key;

    struct {
        char never_cache_prefixes[NAMING_PREFIX_MAX][NAMING_PREFIX_LEN];
        unsigned n;
    } naming;

    /* The digest handshake (DESIGN.md, "Peer protocol"). */
    struct {
        struct config_peer {
            char id[64];
            unsigned char secret[PEER_SECRET_MAX];
            size_t secret_len;
        } list[CONFIG_PEERS_MAX]; /* reverse side: who may speak it */
        unsigned n;
        struct config_addr url; /* forward side: the reverse idemcache */
        bool forward;           /* --peer given */
        char id[64];            /* forward side: our name */
        unsigned char secret[PEER_SECRET_MAX];
        size_t secret_len;
        char secret_file[512];
        uint64_t request_store;  /* reverse: request bodies kept per peer */
        uint64_t response_store; /* reverse: response bodies kept per peer */
        uint64_t max_body;       /* larger bodies stream past the handshake */
        uint64_t nonces;         /* reverse: nonces remembered per peer (replays) */
    } peer;

    struct {
        char descriptors[512];           /* FileDescriptorSet path, relative to the config file */
        char cacheable[4096];            /* more procedures, comma-separated */
        char not_cacheable[4096];        /* procedures never cached */
        uint64_t ttl;                    /* ms: freshness of a 200 when the handler sets none */
        struct connect_procedures procs; /* built by config_connect_finish */
        struct connect_procedures never; /* not_cacheable, in any form or rule */
    } connect;

    /* HTTP/2 toward clients (h2_server.c): ALPN h2 on TLS listeners, the
     * prior-knowledge preface on cleartext ones. RFC 9113 §6.5.2 names
     * the SETTINGS these become. */
    struct {
        bool enabled;
        uint64_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
        uint64_t initial_window;         /* SETTINGS_INITIAL_WINDOW_SIZE, per stream */
        uint64_t max_header_list;        /* SETTINGS_MAX_HEADER_LIST_SIZE; more: stream error */
        uint64_t max_resets_per_10s;     /* RST_STREAM from the client; more: GOAWAY */
        /* request body bytes read ahead (body keys, peers) by all the
         * streams of one connection; a stream past it: REFUSED_STREAM */
        uint64_t max_read_ahead;
        /* response body memory the streams of one connection may hold
         * queued (copies, relayed blocks; not stored hits), shared out
         * fairly: each open stream may queue budget / open streams */
        uint64_t max_output_buffer;
    } h2;

    struct {
        char access[512]; /* "stdout", "off" or a path */
        char error[512];  /* "stderr" or a path */
        int level;        /* LOG_ERROR .. LOG_DEBUG */
    } log;
};

void config_defaults(struct config *c);

/* Load a YAML file over the current values. On error returns -1 and writes
 * "FILE:LINE: FIELD: reason" into err. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);

/* "HOST:PORT" -> addr; with want_url "http://HOST[:PORT]" (port 80) or
 * "https://HOST[:PORT]" (port 443, addr->tls set). 0 or -1. */
int config_parse_addr(const char *s, struct config_addr *a, bool want_url);
int config_parse_duration(const char *s, uint64_t *ms);
int config_parse_size(const char *s, uint64_t *bytes);

/* Values that are valid yet have no effect, one "FIELD: why" line each
 * through say(): what --check-config prints as warnings and startup logs. */
void config_warnings(const struct config *c, void (*say)(const char *line, void *arg), void *arg);

/* "host:port", "[v6]:port"; without ":port" when it is omit_port
 * (RFC 9110 §7.2: the Host of a URI with its scheme's default port). */
void config_addr_authority(const struct config_addr *a, int omit_port, char *out, size_t len);

/* Cross-field checks once everything is merged. Listen and admin
 * addresses are resolved as the listeners will be, to find two that
 * would take each other's connections. */
int config_validate(const struct config *c, char *err, size_t errlen);
/* No object larger than one store shard (cache.memory_size / the shard
 * count) can be kept: clamp cache.max_object_size to it, so that a larger
 * response is known unstorable before its head goes out. Returns 1 with
 * the warning in `warn` when it clamped, else 0. */
int config_cache_finish(struct config *c, char *warn, size_t warnlen);

/* The secret in a file: its bytes without trailing whitespace. */
int config_read_secret(const char *path, unsigned char *out, size_t *len, char *err, size_t errlen);

/* Forward side: --peer needs forward mode, an id and a secret (read here). */
int config_peer_finish(struct config *c, char *err, size_t errlen);

/* Read connect.descriptors and apply connect.cacheable / not_cacheable. */
int config_connect_finish(struct config *c, char *err, size_t errlen);

#endif
