/* YAML configuration. Read with libyaml's document API rather than libcyaml:
 * Debian's libcyaml 1.3 reports neither line numbers nor custom units, and a
 * bad file must be refused naming file, line and field. The schema is a
 * table: each known field has a path, a type and a place in struct config. */
#include <errno.h>
#include <netdb.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "server/config.h"
#include "cache/store.h"
#include "server/log.h"
#include "http/fields.h"

/* ---- h2 (issue 15) -------------------------------------------------- */

static void config_h2_defaults(struct config *c)
{
    c->h2.enabled = true;
    c->h2.max_concurrent_streams = 100; /* RFC 9113 §6.5.2 advises no fewer */
    c->h2.initial_window = 256 * 1024;
    c->h2.max_header_list = 64 * 1024;
    c->h2.max_resets_per_10s = 200;
    /* four whole bodies at body_key.max_bytes' default */
    c->h2.max_read_ahead = 4 * 1024 * 1024;
    /* four streams at WRITE_HIGH_WATER, what four h1 clients may hold */
    c->h2.max_output_buffer = 1024 * 1024;
}

/* The range each h2 number may take: what the protocol allows, and what
 * keeps the proxy usable. NULL when v fits; else why not. */
static const char *config_h2_out_of_range(size_t off, uint64_t v)
{
    static const struct {
        size_t off;
        uint64_t min, max;
        const char *why;
    } bounds[] = {
        {offsetof(struct config, h2.max_concurrent_streams), 1, 1000000,
         "1 to 1000000 (h2.enabled: false turns h2 off)"},
        /* RFC 9113 §6.5.2: above 2^31-1 is a FLOW_CONTROL_ERROR */
        {offsetof(struct config, h2.initial_window), 1, 2147483647u, "1 to 2147483647 bytes"},
        {offsetof(struct config, h2.max_header_list), 1024, 16u << 20, "1KiB to 16MiB"},
        {offsetof(struct config, h2.max_resets_per_10s), 1, 1000000, "1 to 1000000"},
        /* a stream's share is at least 16KiB (one DATA frame) anyway */
        {offsetof(struct config, h2.max_output_buffer), 16 * 1024, 1ull << 30, "16KiB to 1GiB"},
    };
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++)
        if (bounds[i].off == off && (v < bounds[i].min || v > bounds[i].max))
            return bounds[i].why;
    return NULL;
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->mode = MODE_REVERSE;
    c->timeouts.client_header = 10000;
    c->timeouts.client_body_idle = 60000;
    c->timeouts.client_send_idle = 60000;
    c->timeouts.keepalive_idle = 75000;
    c->timeouts.upstream_connect = 5000;
    c->timeouts.upstream_first_byte = 60000;
    c->timeouts.upstream_idle = 60000;
    c->timeouts.upstream_keepalive = 30000;
    c->timeouts.drain = 10000;
    c->timeouts.tls_handshake = 10000;
    c->tls.min_version = CONFIG_TLS1_2;
    c->tls.session_tickets = true;
    c->upstream_tls.verify = true;
    c->peer_tls.verify = true;
    c->limits.request_line = 8192;
    c->limits.header_section = 65536;
    c->limits.header_count = 100;
    c->limits.request_body = 0;
    c->limits.response_header_section = 65536;
    c->limits.upstream_idle_per_worker = 64;
    /* Each proxied client holds two descriptors and up to a header section
     * of buffer: 10000 fits a raised nofile limit (65536) with room for
     * the pool, and bounds head buffers near 640 MiB at the default 64 KiB. */
    c->limits.max_connections = CONFIG_MAX_CONNECTIONS_DEFAULT;
    c->limits.ranges = 16;
    c->forward.allow_private = false;
    c->forward.connect_ports[0] = 443; /* CONNECT is for TLS (RFC 9110 §9.3.6) */
    c->forward.nconnect_ports = 1;
    c->cache.enabled = true;
    c->cache.memory_size = 256ULL << 20;
    c->cache.max_object_size = 8ULL << 20;
    c->cache.max_stream_buffer = 64ULL << 20;
    c->cache.max_variants = 16;
    c->cache.eviction_scan = 256; /* STORE_EVICTION_SCAN */
    c->cache.heuristic_percent = 10;
    c->cache.heuristic_max = 86400000;
    c->cache.serve_stale_on_error = false;
    c->cache.generate_etag = true;
    c->cache.background_fetches = 32;
    c->cache.etag_hold_max = 1024 * 1024;
    strcpy(c->cache.name, "idemcache");
    strcpy(c->cache.targeted_fields, "CDN-Cache-Control");
    c->body_key.max_bytes = 1024 * 1024;
    c->body_key.memo_entries = 4096;
    c->body_key.normalize_max_bytes = 64 * 1024;
    c->body_key.normalize_max_values = 8192;
    c->body_key.normalize_max_depth = 64;
    c->peer.request_store = 64u << 20;
    /* A minute of signed requests at ~1000/s from one peer; <= 64 B each */
    c->peer.nonces = 65536;
    c->peer.response_store = 64u << 20;
    c->peer.max_body = 1u << 20;
    /* seed 003: "APIs with names that start with set, add, delete ..." */
    static const char *const mutations[] = {"set",    "add", "create", "update", "delete",
                                            "remove", "put", "insert", "write",  NULL};
    for (c->naming.n = 0; mutations[c->naming.n]; c->naming.n++)
        strcpy(c->naming.never_cache_prefixes[c->naming.n], mutations[c->naming.n]);
    c->proxy.via = true;
    c->proxy.x_forwarded_for = true;
    c->proxy.x_forwarded_proto = true;
    c->proxy.forwarded = false;
    c->proxy.pass_surrogate_key = false;
    strcpy(c->log.access, "stdout");
    strcpy(c->log.error, "stderr");
    c->log.level = LOG_INFO;
    config_h2_defaults(c);
}

int config_parse_duration(const char *s, uint64_t *ms)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || v > 100000000ULL)
        return -1;
    uint64_t mul;
    if (!strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "s") || !*end)
        mul = 1000;
    else if (!strcmp(end, "m"))
        mul = 60000;
    else if (!strcmp(end, "h"))
        mul = 3600000;
    else
        return -1;
    *ms = v * mul;
    return 0;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || v > (1ULL << 40))
        return -1;
    uint64_t mul;
    if (!*end || !strcmp(end, "B"))
        mul = 1;
    else if (!strcmp(end, "KiB") || !strcmp(end, "K") || !strcmp(end, "KB"))
        mul = 1024;
    else if (!strcmp(end, "MiB") || !strcmp(end, "M") || !strcmp(end, "MB"))
        mul = 1024 * 1024;
    else if (!strcmp(end, "GiB") || !strcmp(end, "G") || !strcmp(end, "GB"))
        mul = 1024ULL * 1024 * 1024;
    else
        return -1;
    *bytes = v * mul;
    return 0;
}

int config_parse_addr(const char *s, struct config_addr *a, bool want_url)
{
    int port = want_url ? 80 : -1;
    bool tls = false;
    if (want_url) {
        if (!strncmp(s, "http://", 7)) {
            s += 7;
        } else if (!strncmp(s, "https://", 8)) {
            s += 8;
            port = 443;
            tls = true;
        } else {
            return -1;
        }
    }
    const char *hs = s, *he, *colon;
    if (*s == '[') {
        he = strchr(s, ']');
        if (!he)
            return -1;
        hs = s + 1;
        colon = he[1] == ':' ? he + 1 : NULL;
        if (!colon && he[1] && !(want_url && he[1] == '/' && !he[2]))
            return -1;
    } else {
        colon = strrchr(s, ':');
        he = colon ? colon : s + strcspn(s, "/");
    }
    if (he == hs || (size_t)(he - hs) >= sizeof a->host)
        return -1;
    if (colon) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || p < 0 || p > 65535 || (*end && !(want_url && !strcmp(end, "/"))))
            return -1;
        port = (int)p;
    } else if (*he && !(want_url && !strcmp(he, "/")) && *s != '[') {
        return -1;
    }
    if (port < 0)
        return -1;
    memcpy(a->host, hs, (size_t)(he - hs));
    a->host[he - hs] = 0;
    a->port = port;
    a->line = 0;
    a->tls = tls;
    return 0;
}

void config_addr_authority(const struct config_addr *a, int omit_port, char *out, size_t len)
{
    const char *open = strchr(a->host, ':') ? "[" : "", *close = *open ? "]" : "";
    if (a->port == omit_port)
        snprintf(out, len, "%s%s%s", open, a->host, close);
    else
        snprintf(out, len, "%s%s%s:%d", open, a->host, close, a->port);
}

/* ---- schema ---------------------------------------------------------- */

enum ftype {
    F_DURATION,
    F_SIZE,
    F_COUNT,
    F_RULES,
    F_PREFIXES,
    F_FIELD_NAMES,
    F_CACHE_NAME,
    F_PROCEDURES,
    F_PATH,
    F_PEERS,
    F_PEER_URL,
    F_BOOL,
    F_STRING,
    F_MODE,
    F_LISTEN,
    F_UPSTREAM,
    F_LEVEL,
    F_ADMIN,
    F_CIDRS,
    F_PORTS,
    F_ORIGIN_HOST,
    F_TLS_LISTEN,
    F_TLS_FILE, /* a PEM file, relative to the config file; opened by tls_ctx.c */
    F_TLS_CERTS,
    F_TLS_VERSION,
    F_CLIENT_VERIFY,
};

struct field {
    const char *path;
    enum ftype type;
    size_t off;
    size_t len; /* F_STRING capacity; F_COUNT: the largest value, 0 for 1000000 */
};

#define OFF(m) offsetof(struct config, m)
static const struct field schema[] = {
    {"mode", F_MODE, OFF(mode), 0},
    {"listen", F_LISTEN, 0, 0},
    {"upstream", F_UPSTREAM, 0, 0},
    {"admin", F_ADMIN, 0, 0},
    {"workers", F_COUNT, OFF(workers), 0},
    {"timeouts.client_header", F_DURATION, OFF(timeouts.client_header), 0},
    {"timeouts.client_body_idle", F_DURATION, OFF(timeouts.client_body_idle), 0},
    {"timeouts.client_send_idle", F_DURATION, OFF(timeouts.client_send_idle), 0},
    {"timeouts.keepalive_idle", F_DURATION, OFF(timeouts.keepalive_idle), 0},
    {"timeouts.upstream_connect", F_DURATION, OFF(timeouts.upstream_connect), 0},
    {"timeouts.upstream_first_byte", F_DURATION, OFF(timeouts.upstream_first_byte), 0},
    {"timeouts.upstream_idle", F_DURATION, OFF(timeouts.upstream_idle), 0},
    {"timeouts.upstream_keepalive", F_DURATION, OFF(timeouts.upstream_keepalive), 0},
    {"timeouts.drain", F_DURATION, OFF(timeouts.drain), 0},
    {"timeouts.tls_handshake", F_DURATION, OFF(timeouts.tls_handshake), 0},
    {"tls.listen", F_TLS_LISTEN, 0, 0},
    {"tls.cert", F_TLS_FILE, OFF(tls.certs[0].cert), CONFIG_PATH_MAX},
    {"tls.key", F_TLS_FILE, OFF(tls.certs[0].key), CONFIG_PATH_MAX},
    {"tls.certs", F_TLS_CERTS, 0, 0},
    {"tls.min_version", F_TLS_VERSION, OFF(tls.min_version), 0},
    {"tls.client_ca", F_TLS_FILE, OFF(tls.client_ca), CONFIG_PATH_MAX},
    {"tls.client_verify", F_CLIENT_VERIFY, OFF(tls.client_verify), 0},
    {"tls.session_tickets", F_BOOL, OFF(tls.session_tickets), 0},
    {"tls.ciphers", F_STRING, OFF(tls.ciphers), sizeof(((struct config *)0)->tls.ciphers)},
    {"tls.ciphersuites", F_STRING, OFF(tls.ciphersuites),
     sizeof(((struct config *)0)->tls.ciphersuites)},
    {"upstream_tls.ca", F_TLS_FILE, OFF(upstream_tls.ca), CONFIG_PATH_MAX},
    {"upstream_tls.verify", F_BOOL, OFF(upstream_tls.verify), 0},
    {"upstream_tls.sni", F_STRING, OFF(upstream_tls.sni),
     sizeof(((struct config *)0)->upstream_tls.sni)},
    {"upstream_tls.cert", F_TLS_FILE, OFF(upstream_tls.client.cert), CONFIG_PATH_MAX},
    {"upstream_tls.key", F_TLS_FILE, OFF(upstream_tls.client.key), CONFIG_PATH_MAX},
    {"peer_tls.ca", F_TLS_FILE, OFF(peer_tls.ca), CONFIG_PATH_MAX},
    {"peer_tls.verify", F_BOOL, OFF(peer_tls.verify), 0},
    {"peer_tls.cert", F_TLS_FILE, OFF(peer_tls.client.cert), CONFIG_PATH_MAX},
    {"peer_tls.key", F_TLS_FILE, OFF(peer_tls.client.key), CONFIG_PATH_MAX},
    {"limits.request_line", F_SIZE, OFF(limits.request_line), 0},
    {"limits.header_section", F_SIZE, OFF(limits.header_section), 0},
    {"limits.header_count", F_COUNT, OFF(limits.header_count), 0},
    {"limits.request_body", F_SIZE, OFF(limits.request_body), 0},
    {"limits.response_header_section", F_SIZE, OFF(limits.response_header_section), 0},
    {"limits.upstream_idle_per_worker", F_COUNT, OFF(limits.upstream_idle_per_worker), 0},
    {"limits.max_connections", F_COUNT, OFF(limits.max_connections), 0},
    {"limits.ranges", F_COUNT, OFF(limits.ranges), 0},
    {"forward.allow_private", F_BOOL, OFF(forward.allow_private), 0},
    {"forward.allow", F_CIDRS, 0, 0},
    {"forward.connect_ports", F_PORTS, 0, 0},
    {"cache.enabled", F_BOOL, OFF(cache.enabled), 0},
    {"cache.memory_size", F_SIZE, OFF(cache.memory_size), 0},
    {"cache.max_object_size", F_SIZE, OFF(cache.max_object_size), 0},
    {"cache.max_stream_buffer", F_SIZE, OFF(cache.max_stream_buffer), 0},
    {"cache.max_variants", F_COUNT, OFF(cache.max_variants), 0},
    {"cache.eviction_scan", F_COUNT, OFF(cache.eviction_scan), 0},
    {"cache.heuristic_percent", F_COUNT, OFF(cache.heuristic_percent), 0},
    {"cache.heuristic_max", F_DURATION, OFF(cache.heuristic_max), 0},
    {"cache.serve_stale_on_error", F_BOOL, OFF(cache.serve_stale_on_error), 0},
    {"cache.generate_etag", F_BOOL, OFF(cache.generate_etag), 0},
    {"cache.background_fetches", F_COUNT, OFF(cache.background_fetches), 0},
    {"cache.etag_hold_max", F_SIZE, OFF(cache.etag_hold_max), 0},
    {"cache.bypass_fields", F_FIELD_NAMES, OFF(cache.bypass_fields), 0},
    {"cache.targeted_fields", F_FIELD_NAMES, OFF(cache.targeted_fields), 0},
    {"cache.strip_targeted", F_BOOL, OFF(cache.strip_targeted), 0},
    {"cache.name", F_CACHE_NAME, OFF(cache.name), sizeof(((struct config *)0)->cache.name)},
    {"rules", F_RULES, 0, 0},
    {"body_key.max_bytes", F_SIZE, OFF(body_key.max_bytes), 0},
    {"body_key.memo_entries", F_COUNT, OFF(body_key.memo_entries), 0},
    {"body_key.normalize_max_bytes", F_SIZE, OFF(body_key.normalize_max_bytes), 0},
    {"body_key.normalize_max_values", F_COUNT, OFF(body_key.normalize_max_values), 0},
    /* the canonicalizer recurses once per level: keep the stack small */
    {"body_key.normalize_max_depth", F_COUNT, OFF(body_key.normalize_max_depth), 512},
    {"naming.never_cache_prefixes", F_PREFIXES, 0, 0},
    {"peers", F_PEERS, 0, 0},
    {"peer.url", F_PEER_URL, 0, 0},
    {"peer.id", F_STRING, OFF(peer.id), sizeof(((struct config *)0)->peer.id)},
    {"peer.secret_file", F_PATH, OFF(peer.secret_file),
     sizeof(((struct config *)0)->peer.secret_file)},
    {"peer.request_store", F_SIZE, OFF(peer.request_store), 0},
    {"peer.response_store", F_SIZE, OFF(peer.response_store), 0},
    {"peer.max_body", F_SIZE, OFF(peer.max_body), 0},
    {"peer.nonces", F_COUNT, OFF(peer.nonces), 0},
    {"connect.descriptors", F_PATH, OFF(connect.descriptors),
     sizeof(((struct config *)0)->connect.descriptors)},
    {"connect.cacheable", F_PROCEDURES, OFF(connect.cacheable),
     sizeof(((struct config *)0)->connect.cacheable)},
    {"connect.not_cacheable", F_PROCEDURES, OFF(connect.not_cacheable),
     sizeof(((struct config *)0)->connect.not_cacheable)},
    {"connect.ttl", F_DURATION, OFF(connect.ttl), 0},
    {"proxy.via", F_BOOL, OFF(proxy.via), 0},
    {"proxy.x_forwarded_for", F_BOOL, OFF(proxy.x_forwarded_for), 0},
    {"proxy.x_forwarded_proto", F_BOOL, OFF(proxy.x_forwarded_proto), 0},
    {"proxy.forwarded", F_BOOL, OFF(proxy.forwarded), 0},
    {"proxy.host", F_ORIGIN_HOST, 0, 0},
    {"proxy.pass_surrogate_key", F_BOOL, OFF(proxy.pass_surrogate_key), 0},
    {"h2.enabled", F_BOOL, OFF(h2.enabled), 0},
    {"h2.max_concurrent_streams", F_COUNT, OFF(h2.max_concurrent_streams), 0},
    {"h2.initial_window", F_SIZE, OFF(h2.initial_window), 0},
    {"h2.max_header_list", F_SIZE, OFF(h2.max_header_list), 0},
    {"h2.max_resets_per_10s", F_COUNT, OFF(h2.max_resets_per_10s), 0},
    {"h2.max_read_ahead", F_SIZE, OFF(h2.max_read_ahead), 0},
    {"h2.max_output_buffer", F_SIZE, OFF(h2.max_output_buffer), 0},
    {"log.access", F_STRING, OFF(log.access), sizeof(((struct config *)0)->log.access)},
    {"log.error", F_STRING, OFF(log.error), sizeof(((struct config *)0)->log.error)},
    {"log.level", F_LEVEL, OFF(log.level), 0},
    {NULL, 0, 0, 0},
};

/* Fields whose line is kept for the errors and warnings found after
 * loading (tls_ctx.c reads the files; verify: false is warned about). */
static const struct {
    size_t off, line_off;
} field_lines[] = {
    {OFF(tls.certs[0].cert), OFF(tls.certs[0].line)},
    {OFF(tls.certs[0].key), OFF(tls.certs[0].key_line)},
    {OFF(tls.client_ca), OFF(tls.client_ca_line)},
    {OFF(tls.client_verify), OFF(tls.client_verify_line)},
    {OFF(tls.session_tickets), OFF(tls.session_tickets_line)},
    {OFF(tls.ciphers), OFF(tls.ciphers_line)},
    {OFF(tls.ciphersuites), OFF(tls.ciphersuites_line)},
    {OFF(upstream_tls.ca), OFF(upstream_tls.line)},
    {OFF(upstream_tls.sni), OFF(upstream_tls.sni_line)},
    {OFF(upstream_tls.verify), OFF(upstream_tls.verify_line)},
    {OFF(upstream_tls.client.cert), OFF(upstream_tls.client.line)},
    {OFF(upstream_tls.client.key), OFF(upstream_tls.client.key_line)},
    {OFF(peer_tls.ca), OFF(peer_tls.line)},
    {OFF(peer_tls.verify), OFF(peer_tls.verify_line)},
    {OFF(peer_tls.client.cert), OFF(peer_tls.client.line)},
    {OFF(peer_tls.client.key), OFF(peer_tls.client.key_line)},
};

static void keep_line(struct config *c, size_t off, yaml_node_t *n)
{
    for (size_t i = 0; i < sizeof field_lines / sizeof field_lines[0]; i++)
        if (field_lines[i].off == off)
            *(unsigned *)((char *)c + field_lines[i].line_off) = (unsigned)n->start_mark.line + 1;
}

struct loader {
    struct config *c;
    yaml_document_t *doc;
    const char *file;
    char *err;
    size_t errlen;
};

static int fail(struct loader *l, yaml_node_t *n, const char *path, const char *fmt, const char *v)
{
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, v);
    snprintf(l->err, l->errlen, "%s:%lu: %s: %s", l->file, (unsigned long)n->start_mark.line + 1,
             path, msg);
    return -1;
}

static const char *scalar(yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* listen and tls.listen: a HOST:PORT or a list of them into addrs. */
static int set_listen(struct loader *l, yaml_node_t *n, const char *path, struct config_addr *addrs,
                      int *naddrs)
{
    yaml_node_t *items[CONFIG_LISTEN_MAX + 1];
    int count = 0;
    if (n->type == YAML_SCALAR_NODE) {
        items[count++] = n;
    } else if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            if (count == CONFIG_LISTEN_MAX)
                return fail(l, n, path, "at most %s listeners", "8");
            items[count++] = yaml_document_get_node(l->doc, *it);
        }
    } else {
        return fail(l, n, path, "expected HOST:PORT or a list of them%s", "");
    }
    for (int i = 0; i < count; i++) {
        const char *s = scalar(items[i]);
        if (!s || config_parse_addr(s, &addrs[i], false) < 0)
            return fail(l, items[i], path, "invalid address '%s' (expected HOST:PORT)", s ? s : "");
        addrs[i].line = (unsigned)items[i]->start_mark.line + 1;
    }
    *naddrs = count;
    return 0;
}

/* A scalar or a flow/block list of scalars, each checked by `one`. */
static int for_each_scalar(struct loader *l, yaml_node_t *n, const char *path,
                           int (*one)(struct loader *, yaml_node_t *, const char *, const char *,
                                      void *),
                           void *arg)
{
    if (n->type == YAML_SCALAR_NODE)
        return one(l, n, path, scalar(n), arg);
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(l, n, path, "expected a value or a list of values%s", "");
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(l->doc, *it);
        if (!scalar(item))
            return fail(l, item, path, "expected a plain value%s", "");
        if (one(l, item, path, scalar(item), arg) < 0)
            return -1;
    }
    return 0;
}

static int add_prefix(struct loader *l, yaml_node_t *n, const char *path, const char *s, void *arg)
{
    if (l->c->naming.n == NAMING_PREFIX_MAX)
        return fail(l, n, path, "at most %s prefixes", "32");
    if (!*s || strlen(s) >= NAMING_PREFIX_LEN)
        return fail(l, n, path, "invalid prefix '%s' (1 to 31 characters)", s);
    strcpy(l->c->naming.never_cache_prefixes[l->c->naming.n++], s);
    return 0;
}

static int add_method(struct loader *l, yaml_node_t *n, const char *path, const char *s, void *arg)
{
    unsigned bit = rules_method_bit((struct slice){s, strlen(s)});
    if (!bit)
        return fail(l, n, path,
                    "unknown method '%s' (GET, HEAD, POST, PUT, DELETE, PATCH, QUERY, OPTIONS)", s);
    ((struct rule *)arg)->methods |= bit;
    return 0;
}

struct proc_list {
    char *buf;
    size_t cap;
};

/* "/pkg.Service/Method", joined with commas. */
static int add_procedure(struct loader *l, yaml_node_t *n, const char *path, const char *s,
                         void *arg)
{
    struct proc_list *pl = arg;
    size_t have = strlen(pl->buf), len = strlen(s);
    struct slice proc = connect_procedure_of((struct slice){s, len});
    if (proc.len != len || strchr(s, ','))
        return fail(l, n, path, "invalid procedure '%s' (expected /package.Service/Method)", s);
    if (have + len + 2 >= pl->cap)
        return fail(l, n, path, "too many procedures at '%s'", s);
    if (have)
        strcat(pl->buf, ",");
    strcat(pl->buf, s);
    return 0;
}

/* Field names joined as a list ("Accept, X-Tenant") in a buffer of
 * RULE_HEADER_MAX bytes. */
static int add_field_name(struct loader *l, yaml_node_t *n, const char *path, const char *s,
                          void *arg)
{
    char *list = arg;
    size_t have = strlen(list);
    if (!http_is_token((struct slice){s, strlen(s)}))
        return fail(l, n, path, "invalid field name '%s'", s);
    if (have + strlen(s) + 2 >= RULE_HEADER_MAX)
        return fail(l, n, path, "too many field names at '%s'", s);
    if (have)
        strcat(list, ", ");
    strcat(list, s);
    return 0;
}

/* "Name: value" or "Name" (present with any value). */
static int set_rule_header(struct loader *l, yaml_node_t *n, const char *path, const char *s,
                           struct rule *r)
{
    const char *colon = strchr(s, ':');
    size_t nl = colon ? (size_t)(colon - s) : strlen(s);
    while (nl && s[nl - 1] == ' ')
        nl--;
    const char *v = colon ? colon + 1 : "";
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vl = strlen(v);
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    if (!nl || nl >= sizeof r->header_name || !http_is_token((struct slice){s, nl}) ||
        vl >= sizeof r->header_value)
        return fail(l, n, path, "invalid header '%s' (expected \"Name: value\" or \"Name\")", s);
    memcpy(r->header_name, s, nl);
    r->header_name[nl] = 0;
    memcpy(r->header_value, v, vl);
    r->header_value[vl] = 0;
    return 0;
}

static int load_rule(struct loader *l, yaml_node_t *map, const char *prefix, struct rule *r)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail(l, map, prefix, "expected a mapping (path, methods, cache, ...)%s", "");
    memset(r, 0, sizeof *r);
    r->normalize = true;
    r->line = (unsigned)map->start_mark.line + 1;
    int has_path = 0, has_cache = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
        const char *key = scalar(k);
        char path[256];
        snprintf(path, sizeof path, "%s.%s", prefix, key ? key : "?");
        if (!key)
            return fail(l, k, prefix, "keys must be plain names%s", "");
        const char *s = scalar(v);
        uint64_t d;
        if (!strcmp(key, "methods")) {
            if (for_each_scalar(l, v, path, add_method, r) < 0)
                return -1;
            continue;
        }
        if (!strcmp(key, "key_headers")) {
            if (for_each_scalar(l, v, path, add_field_name, r->key_headers) < 0)
                return -1;
            continue;
        }
        if (!s)
            return fail(l, v, path, "expected a single value%s", "");
        if (!strcmp(key, "path")) {
            if (s[0] != '/' && s[0] != '*')
                return fail(l, v, path, "invalid path '%s' (a glob starting with '/')", s);
            if (strlen(s) >= sizeof r->path)
                return fail(l, v, path, "path too long (at most 255 bytes)%s", "");
            strcpy(r->path, s);
            has_path = 1;
        } else if (!strcmp(key, "header")) {
            if (set_rule_header(l, v, path, s, r) < 0)
                return -1;
        } else if (!strcmp(key, "cache") || !strcmp(key, "normalize")) {
            bool b;
            if (!strcmp(s, "true"))
                b = true;
            else if (!strcmp(s, "false"))
                b = false;
            else
                return fail(l, v, path, "invalid boolean '%s' (expected true or false)", s);
            if (key[0] == 'c') {
                r->cache = b;
                has_cache = 1;
            } else {
                r->normalize = b;
            }
        } else if (!strcmp(key, "ttl")) {
            if (config_parse_duration(s, &d) < 0)
                return fail(l, v, path, "invalid duration '%s' (expected e.g. 500ms, 10s, 2m)", s);
            r->ttl = d;
        } else {
            return fail(l, k, path, "unknown field%s", "");
        }
    }
    if (!has_path)
        return fail(l, map, prefix, "a rule needs a path%s", "");
    if (!has_cache)
        return fail(l, map, prefix, "a rule needs cache: true or false%s", "");
    return 0;
}

static int set_rules(struct loader *l, yaml_node_t *n, const char *path)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(l, n, path, "expected a list of rules%s", "");
    l->c->nrules = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        char p[64];
        snprintf(p, sizeof p, "rules[%u]", l->c->nrules);
        if (l->c->nrules == RULES_MAX)
            return fail(l, n, path, "at most %s rules", "64");
        if (load_rule(l, yaml_document_get_node(l->doc, *it), p, &l->c->rules[l->c->nrules]) < 0)
            return -1;
        l->c->nrules++;
    }
    return 0;
}

int config_read_secret(const char *path, unsigned char *out, size_t *len, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    size_t n = fread(out, 1, PEER_SECRET_MAX, fp);
    int more = fgetc(fp) != EOF;
    fclose(fp);
    while (n &&
           (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    if (more || n < 16) {
        snprintf(err, errlen, "'%s': a secret is 16 to %d bytes", path, PEER_SECRET_MAX);
        return -1;
    }
    *len = n;
    return 0;
}

/* peers: [{ id: edge-1, secret_file: PATH }, ...] */
static int set_peers(struct loader *l, yaml_node_t *n, const char *path)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(l, n, path, "expected a list of { id, secret_file }%s", "");
    l->c->peer.n = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *m = yaml_document_get_node(l->doc, *it);
        char p[64];
        snprintf(p, sizeof p, "peers[%u]", l->c->peer.n);
        if (l->c->peer.n == CONFIG_PEERS_MAX)
            return fail(l, m, path, "at most %s peers", "16");
        if (m->type != YAML_MAPPING_NODE)
            return fail(l, m, p, "expected { id, secret_file }%s", "");
        struct config_peer *peer = &l->c->peer.list[l->c->peer.n];
        memset(peer, 0, sizeof *peer);
        for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < m->data.mapping.pairs.top;
             q++) {
            const char *k = scalar(yaml_document_get_node(l->doc, q->key));
            yaml_node_t *vn = yaml_document_get_node(l->doc, q->value);
            const char *v = scalar(vn);
            char fp[96];
            snprintf(fp, sizeof fp, "%s.%s", p, k ? k : "?");
            if (!k || !v)
                return fail(l, vn, fp, "expected a single value%s", "");
            if (!strcmp(k, "id")) {
                if (!*v || strlen(v) >= sizeof peer->id || strpbrk(v, " ,=\t"))
                    return fail(l, vn, fp, "invalid id '%s'", v);
                strcpy(peer->id, v);
            } else if (!strcmp(k, "secret_file")) {
                char file[512], why[200];
                const char *slash = strrchr(l->file, '/');
                int dir = v[0] != '/' && slash ? (int)(slash - l->file) + 1 : 0;
                snprintf(file, sizeof file, "%.*s%s", dir, l->file, v);
                if (config_read_secret(file, peer->secret, &peer->secret_len, why, sizeof why) < 0)
                    return fail(l, vn, fp, "%s", why);
            } else {
                return fail(l, vn, fp, "unknown field%s", "");
            }
        }
        if (!peer->id[0] || !peer->secret_len)
            return fail(l, m, p, "a peer needs an id and a secret_file%s", "");
        for (unsigned i = 0; i < l->c->peer.n; i++)
            if (!strcmp(l->c->peer.list[i].id, peer->id))
                return fail(l, m, p, "peer id '%s' is listed twice", peer->id);
        l->c->peer.n++;
    }
    return 0;
}

/* forward.allow: one CIDR block per item; the file's list replaces the default (empty). */
static int add_cidr(struct loader *l, yaml_node_t *n, const char *path, const char *s, void *arg)
{
    if (l->c->forward.nallow == CONFIG_FORWARD_ALLOW_MAX)
        return fail(l, n, path, "at most %s blocks", "64");
    enum net_cidr_parse rc =
        net_cidr_parse((struct slice){s, strlen(s)}, &l->c->forward.allow[l->c->forward.nallow]);
    if (rc != NET_CIDR_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "invalid CIDR '%.64s': %s", s, net_cidr_parse_reason(rc));
        return fail(l, n, path, "%s", msg);
    }
    l->c->forward.nallow++;
    return 0;
}

/* forward.connect_ports: TCP ports 1..65535; the file's list replaces [443]. */
static int add_port(struct loader *l, yaml_node_t *n, const char *path, const char *s, void *arg)
{
    if (l->c->forward.nconnect_ports == CONFIG_CONNECT_PORTS_MAX)
        return fail(l, n, path, "at most %s ports", "32");
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '1' || *s > '9' || *end || errno || v > 65535)
        return fail(l, n, path, "invalid port '%s' (expected 1 to 65535)", s);
    l->c->forward.connect_ports[l->c->forward.nconnect_ports++] = (uint16_t)v;
    return 0;
}

/* proxy.host: client, upstream, or the Host to send, a uri-host[":"port]
 * (RFC 9110 §7.2) that the origin's name-based hosting expects. */
static int set_origin_host(struct loader *l, yaml_node_t *n, const char *path)
{
    const char *s = scalar(n);
    if (!s)
        return fail(l, n, path, "expected client, upstream or a HOST[:PORT]%s", "");
    size_t len = strlen(s);
    l->c->proxy.host_line = (unsigned)n->start_mark.line + 1;
    if (!strcmp(s, "client")) {
        l->c->proxy.host = ORIGIN_HOST_CLIENT;
    } else if (!strcmp(s, "upstream")) {
        l->c->proxy.host = ORIGIN_HOST_UPSTREAM;
    } else {
        /* an empty port ("host:") is valid ABNF but surely a slip */
        if (len == 0 || len >= sizeof l->c->proxy.host_value || s[len - 1] == ':' ||
            !http_valid_authority((struct slice){s, len}, false))
            return fail(l, n, path,
                        "invalid host '%.200s' (expected client, upstream or a HOST[:PORT])", s);
        l->c->proxy.host = ORIGIN_HOST_FIXED;
        memcpy(l->c->proxy.host_value, s, len + 1);
    }
    return 0;
}

/* A PEM file named by tls.*, upstream_tls.*, peer_tls.*: relative to the
 * config file's directory, like connect.descriptors. Not opened here:
 * tls_ctx.c reads it and names the field when it cannot. */
static int set_tls_file(struct loader *l, yaml_node_t *n, const char *path, char *dst, size_t len)
{
    const char *s = scalar(n);
    const char *slash = strrchr(l->file, '/');
    int dir = s && s[0] != '/' && slash ? (int)(slash - l->file) + 1 : 0;
    if (!s || !*s || (size_t)dir + strlen(s) >= len)
        return fail(l, n, path, "invalid path '%s'", s ? s : "");
    snprintf(dst, len, "%.*s%s", dir, l->file, s);
    return 0;
}

/* tls.certs: [{cert: FILE, key: FILE}, ...], into certs[1...]: certs[0]
 * is tls.cert/tls.key. */
static int set_tls_certs(struct loader *l, yaml_node_t *n, const char *path)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(l, n, path, "expected a list of { cert, key }%s", "");
    unsigned count = 1;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *m = yaml_document_get_node(l->doc, *it);
        char p[64];
        snprintf(p, sizeof p, "%s[%u]", path, count - 1);
        if (count == CONFIG_TLS_CERTS_MAX)
            return fail(l, m, path, "at most %s certificates with tls.cert", "15");
        if (m->type != YAML_MAPPING_NODE)
            return fail(l, m, p, "expected { cert, key }%s", "");
        struct config_tls_cert *tc = &l->c->tls.certs[count];
        memset(tc, 0, sizeof *tc);
        for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < m->data.mapping.pairs.top;
             q++) {
            const char *k = scalar(yaml_document_get_node(l->doc, q->key));
            yaml_node_t *vn = yaml_document_get_node(l->doc, q->value);
            char fp[96];
            snprintf(fp, sizeof fp, "%s.%s", p, k ? k : "?");
            if (k && !strcmp(k, "cert")) {
                if (set_tls_file(l, vn, fp, tc->cert, sizeof tc->cert) < 0)
                    return -1;
                tc->line = (unsigned)vn->start_mark.line + 1;
            } else if (k && !strcmp(k, "key")) {
                if (set_tls_file(l, vn, fp, tc->key, sizeof tc->key) < 0)
                    return -1;
                tc->key_line = (unsigned)vn->start_mark.line + 1;
            } else {
                return fail(l, vn, fp, "unknown field%s", "");
            }
        }
        if (!tc->cert[0] || !tc->key[0])
            return fail(l, m, p, "a certificate needs a cert and a key%s", "");
        count++;
    }
    l->c->tls.ncerts = count;
    return 0;
}

static int set_field(struct loader *l, const struct field *f, yaml_node_t *n, const char *path)
{
    if (f->type == F_ORIGIN_HOST)
        return set_origin_host(l, n, path);
    if (f->type == F_CIDRS) {
        l->c->forward.nallow = 0;
        return for_each_scalar(l, n, path, add_cidr, NULL);
    }
    if (f->type == F_PORTS) {
        l->c->forward.nconnect_ports = 0;
        return for_each_scalar(l, n, path, add_port, NULL);
    }
    if (f->type == F_LISTEN)
        return set_listen(l, n, path, l->c->listen, &l->c->nlisten);
    if (f->type == F_TLS_LISTEN)
        return set_listen(l, n, path, l->c->tls.listen, &l->c->tls.nlisten);
    if (f->type == F_TLS_FILE) {
        if (set_tls_file(l, n, path, (char *)l->c + f->off, f->len) < 0)
            return -1;
        keep_line(l->c, f->off, n);
        if (f->off == OFF(tls.certs[0].cert) || f->off == OFF(tls.certs[0].key))
            l->c->tls.ncerts = l->c->tls.ncerts ? l->c->tls.ncerts : 1;
        return 0;
    }
    if (f->type == F_TLS_CERTS)
        return set_tls_certs(l, n, path);
    if (f->type == F_RULES)
        return set_rules(l, n, path);
    if (f->type == F_PEERS)
        return set_peers(l, n, path);
    if (f->type == F_CACHE_NAME) {
        /* an sf-token (RFC 8941 §3.3.4), as Cache-Status wants */
        const char *s = scalar(n);
        size_t len = s ? strlen(s) : 0;
        int ok = len && len < f->len &&
                 ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '*');
        for (size_t i = 0; ok && i < len; i++)
            ok = http_is_token((struct slice){s + i, 1}) || s[i] == ':' || s[i] == '/';
        if (!ok)
            return fail(l, n, path,
                        "invalid name '%s' (a token starting with a letter, at most 63)",
                        s ? s : "");
        strcpy((char *)l->c + f->off, s);
        return 0;
    }
    if (f->type == F_PEER_URL) {
        const char *s = scalar(n);
        if (!s || config_parse_addr(s, &l->c->peer.url, true) < 0)
            return fail(l, n, path,
                        "invalid URL '%s' (expected http://HOST:PORT or https://HOST:PORT)",
                        s ? s : "");
        l->c->peer.url.line = (unsigned)n->start_mark.line + 1;
        l->c->peer.forward = true;
        return 0;
    }
    if (f->type == F_PROCEDURES) {
        struct proc_list pl = {(char *)l->c + f->off, f->len};
        pl.buf[0] = 0;
        return for_each_scalar(l, n, path, add_procedure, &pl);
    }
    if (f->type == F_PATH) {
        const char *s = scalar(n);
        char *dst = (char *)l->c + f->off;
        const char *slash = strrchr(l->file, '/');
        int dir = s && s[0] != '/' && slash ? (int)(slash - l->file) + 1 : 0;
        if (!s || !*s || (size_t)dir + strlen(s) >= f->len)
            return fail(l, n, path, "invalid path '%s'", s ? s : "");
        snprintf(dst, f->len, "%.*s%s", dir, l->file, s);
        FILE *fp = fopen(dst, "rb");
        if (!fp)
            return fail(l, n, path, "cannot open '%s'", dst);
        fclose(fp);
        return 0;
    }
    if (f->type == F_FIELD_NAMES) {
        char *list = (char *)l->c + f->off;
        list[0] = 0;
        return for_each_scalar(l, n, path, add_field_name, list);
    }
    if (f->type == F_PREFIXES) {
        l->c->naming.n = 0; /* the file's list replaces the default one */
        return for_each_scalar(l, n, path, add_prefix, NULL);
    }
    const char *s = scalar(n);
    if (!s)
        return fail(l, n, path, "expected a single value%s", "");
    char *base = (char *)l->c;
    uint64_t v;
    switch (f->type) {
    case F_DURATION:
        if (config_parse_duration(s, &v) < 0)
            return fail(l, n, path, "invalid duration '%s' (expected e.g. 500ms, 10s, 2m)", s);
        *(uint64_t *)(base + f->off) = v;
        return 0;
    case F_SIZE:
        if (config_parse_size(s, &v) < 0)
            return fail(l, n, path, "invalid size '%s' (expected e.g. 8192, 64KiB, 1MiB)", s);
        if (config_h2_out_of_range(f->off, v))
            return fail(l, n, path, "out of range: %s", config_h2_out_of_range(f->off, v));
        *(uint64_t *)(base + f->off) = v;
        return 0;
    case F_COUNT: {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 10);
        if (*s < '0' || *s > '9' || *end || errno || x > 1000000)
            return fail(l, n, path, "invalid number '%s'", s);
        if (f->len && x > f->len) {
            char msg[128];
            snprintf(msg, sizeof msg, "%.40s is over %zu", s, f->len);
            return fail(l, n, path, "invalid number: %s", msg);
        }
        if (config_h2_out_of_range(f->off, x))
            return fail(l, n, path, "out of range: %s", config_h2_out_of_range(f->off, x));
        if (x == 0 && f->off == OFF(peer.nonces))
            return fail(l, n, path, "invalid number '%s' (at least 1: no nonce, no signed request)",
                        s);
        if (f->off == OFF(workers))
            *(int *)(base + f->off) = (int)x;
        else
            *(uint64_t *)(base + f->off) = x;
        return 0;
    }
    case F_BOOL:
        if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
            *(bool *)(base + f->off) = true;
        else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
            *(bool *)(base + f->off) = false;
        else
            return fail(l, n, path, "invalid boolean '%s' (expected true or false)", s);
        keep_line(l->c, f->off, n);
        return 0;
    case F_TLS_VERSION:
        /* TLS 1.0 and 1.1 are deprecated (RFC 8996): not offered as a choice */
        if (!strcmp(s, "TLSv1.2"))
            *(int *)(base + f->off) = CONFIG_TLS1_2;
        else if (!strcmp(s, "TLSv1.3"))
            *(int *)(base + f->off) = CONFIG_TLS1_3;
        else
            return fail(l, n, path, "invalid version '%s' (expected TLSv1.2 or TLSv1.3)", s);
        return 0;
    case F_CLIENT_VERIFY:
        /* nginx's ssl_verify_client words; its optional_no_ca is left out:
         * a certificate nobody checks proves nothing */
        if (!strcmp(s, "off"))
            *(enum config_client_verify *)(base + f->off) = CLIENT_VERIFY_OFF;
        else if (!strcmp(s, "optional"))
            *(enum config_client_verify *)(base + f->off) = CLIENT_VERIFY_OPTIONAL;
        else if (!strcmp(s, "require"))
            *(enum config_client_verify *)(base + f->off) = CLIENT_VERIFY_REQUIRE;
        else
            return fail(l, n, path, "invalid value '%s' (expected off, optional or require)", s);
        keep_line(l->c, f->off, n);
        return 0;
    case F_STRING:
        if (strlen(s) >= f->len || !*s)
            return fail(l, n, path, "invalid value '%s' (empty or too long)", s);
        strcpy(base + f->off, s);
        keep_line(l->c, f->off, n);
        return 0;
    case F_MODE:
        if (!strcmp(s, "reverse"))
            l->c->mode = MODE_REVERSE;
        else if (!strcmp(s, "forward"))
            l->c->mode = MODE_FORWARD;
        else
            return fail(l, n, path, "invalid mode '%s' (expected reverse or forward)", s);
        return 0;
    case F_ADMIN:
        if (config_parse_addr(s, &l->c->admin, false) < 0 || l->c->admin.port == 0)
            return fail(l, n, path, "invalid address '%s' (expected HOST:PORT)", s);
        l->c->admin.line = (unsigned)n->start_mark.line + 1;
        return 0;
    case F_UPSTREAM:
        if (config_parse_addr(s, &l->c->upstream, true) < 0)
            return fail(
                l, n, path,
                "invalid upstream '%s' (expected http://HOST[:PORT] or https://HOST[:PORT])", s);
        l->c->upstream.line = (unsigned)n->start_mark.line + 1;
        l->c->has_upstream = true;
        return 0;
    case F_LEVEL: {
        int lv = log_level_parse(s);
        if (lv < 0)
            return fail(l, n, path, "invalid level '%s' (expected error, warn, info or debug)", s);
        l->c->log.level = lv;
        return 0;
    }
    default:
        return -1;
    }
}

static int load_mapping(struct loader *l, yaml_node_t *map, const char *prefix)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail(l, map, *prefix ? prefix : "(top level)", "expected a mapping%s", "");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
        const char *key = scalar(k);
        char path[256];
        if (!key)
            return fail(l, k, prefix, "keys must be plain names%s", "");
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);
        const struct field *f = schema;
        size_t plen = strlen(path);
        int is_section = 0;
        for (; f->path; f++) {
            if (!strcmp(f->path, path))
                break;
            if (!strncmp(f->path, path, plen) && f->path[plen] == '.')
                is_section = 1;
        }
        int rc;
        if (f->path)
            rc = set_field(l, f, v, path);
        else if (is_section)
            rc = load_mapping(l, v, path);
        else
            rc = fail(l, k, path, "unknown field%s", "");
        if (rc < 0)
            return rc;
    }
    return 0;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);
    snprintf(c->file, sizeof c->file, "%s", path);
    int rc = -1;
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%lu: YAML syntax error: %s", path,
                 (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "unknown");
        goto out;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    struct loader l = {c, &doc, path, err, errlen};
    if (!root)
        rc = 0; /* an empty file keeps the defaults */
    else
        rc = load_mapping(&l, root, "");
    yaml_document_delete(&doc);
out:
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

/* ---- listeners that would share connections (issue 12, part 2) ------ */

/* The address a listener on `a` binds: the first getaddrinfo answer, as
 * the worker takes it. -1 when it does not resolve (the worker will say). */
static int listen_endpoint(const struct config_addr *a, struct net_endpoint *e)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    char port[16];
    snprintf(port, sizeof port, "%d", a->port);
    if (getaddrinfo(a->host, port, &hints, &res) != 0)
        return -1;
    int rc = 0;
    if (res->ai_family == AF_INET)
        net_addr_from_ipv4(&e->addr,
                           (const uint8_t *)&((struct sockaddr_in *)res->ai_addr)->sin_addr);
    else if (res->ai_family == AF_INET6)
        net_addr_from_ipv6(&e->addr,
                           (const uint8_t *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr);
    else
        rc = -1;
    e->port = (uint16_t)a->port;
    freeaddrinfo(res);
    return rc;
}

static bool addrs_overlap(const struct config_addr *a, const struct config_addr *b)
{
    if (a->port == 0 || a->port != b->port)
        return false;
    if (!strcasecmp(a->host, b->host))
        return true;
    struct net_endpoint ea, eb;
    return listen_endpoint(a, &ea) == 0 && listen_endpoint(b, &eb) == 0 &&
           net_endpoints_overlap(&ea, &eb);
}

/* "FILE:LINE: " when the file set this address, "" for a flag. */
static void addr_origin(const struct config *c, const struct config_addr *a, char *out, size_t len)
{
    if (a->line && c->file[0])
        snprintf(out, len, "%s:%u: ", c->file, a->line);
    else
        out[0] = 0;
}

/* Every address a listener binds: listen, tls.listen, admin. */
struct bound_addr {
    const struct config_addr *a;
    const char *field;
};

static int bound_addrs(const struct config *c, struct bound_addr *out)
{
    int n = 0;
    for (int i = 0; i < c->nlisten; i++)
        out[n++] = (struct bound_addr){&c->listen[i], "listen"};
    for (int i = 0; i < c->tls.nlisten; i++)
        out[n++] = (struct bound_addr){&c->tls.listen[i], "tls.listen"};
    if (c->admin.port)
        out[n++] = (struct bound_addr){&c->admin, "admin"};
    return n;
}

static int check_listeners(const struct config *c, char *err, size_t errlen)
{
    char where[600], x[300], y[300];
    struct bound_addr all[2 * CONFIG_LISTEN_MAX + 1];
    int n = bound_addrs(c, all);
    /* in the order listen, tls.listen, admin: all[j] is the later field */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (!addrs_overlap(all[i].a, all[j].a))
                continue;
            addr_origin(c, all[j].a, where, sizeof where);
            config_addr_authority(all[i].a, -1, x, sizeof x);
            config_addr_authority(all[j].a, -1, y, sizeof y);
            if (!strcmp(all[j].field, "admin"))
                snprintf(err, errlen,
                         "%sadmin: %s overlaps %s %s: the kernel would split connections between "
                         "the proxy and the admin listener, opening PURGE and /stats to clients; "
                         "give admin a port of its own",
                         where, y, all[i].field, x);
            else if (strcmp(all[i].field, all[j].field))
                snprintf(err, errlen,
                         "%s%s: %s overlaps %s %s: one port cannot take both TLS and plaintext; "
                         "give each a port of its own",
                         where, all[j].field, y, all[i].field, x);
            else
                snprintf(err, errlen,
                         "%s%s: %s and %s overlap (the same port, and the same address or "
                         "a wildcard covering it); list each address once",
                         where, all[j].field, x, y);
            return -1;
        }
    return 0;
}

/* "FILE:LINE: " for a value the file set on `line`, "" for a flag. */
static void line_origin(const struct config *c, unsigned line, char *out, size_t len)
{
    if (line && c->file[0])
        snprintf(out, len, "%s:%u: ", c->file, line);
    else
        out[0] = 0;
}

/* A certificate needs its key and a key its certificate. Flags are named
 * as flags (cert_flag NULL: the field has none). */
static int check_cert_pair(const struct config *c, const struct config_tls_cert *tc,
                           const char *cert_field, const char *key_field, const char *cert_flag,
                           const char *key_flag, char *err, size_t errlen)
{
    char where[600];
    if (!tc->cert[0] == !tc->key[0])
        return 0;
    unsigned line = tc->cert[0] ? tc->line : tc->key_line;
    if (!line && cert_flag)
        cert_field = cert_flag, key_field = key_flag;
    line_origin(c, line, where, sizeof where);
    snprintf(err, errlen, "%s%s: set without %s (a certificate and its private key go together)",
             where, tc->cert[0] ? cert_field : key_field, tc->cert[0] ? key_field : cert_field);
    return -1;
}

static int check_tls(const struct config *c, char *err, size_t errlen)
{
    char where[600];
    bool any_cert = false;
    for (unsigned i = 0; i < c->tls.ncerts; i++)
        any_cert |= c->tls.certs[i].cert[0] != 0;
    if (c->tls.nlisten && !any_cert) {
        addr_origin(c, &c->tls.listen[0], where, sizeof where);
        snprintf(err, errlen,
                 "%stls.listen: needs a certificate and its key (tls.cert and tls.key, or "
                 "--tls-cert FILE --tls-key FILE)",
                 where);
        return -1;
    }
    if (c->tls.min_version != CONFIG_TLS1_2 && c->tls.min_version != CONFIG_TLS1_3) {
        snprintf(err, errlen, "tls.min_version: expected TLSv1.2 or TLSv1.3");
        return -1;
    }
    if (c->tls.client_verify != CLIENT_VERIFY_OFF && !c->tls.client_ca[0]) {
        line_origin(c, c->tls.client_verify_line, where, sizeof where);
        snprintf(err, errlen,
                 "%stls.client_verify: %s needs tls.client_ca (the CA bundle client certificates "
                 "must chain to)",
                 where, c->tls.client_verify == CLIENT_VERIFY_REQUIRE ? "require" : "optional");
        return -1;
    }
    if (check_cert_pair(c, &c->tls.certs[0], "tls.cert", "tls.key", "--tls-cert", "--tls-key", err,
                        errlen) < 0 ||
        check_cert_pair(c, &c->upstream_tls.client, "upstream_tls.cert", "upstream_tls.key", NULL,
                        NULL, err, errlen) < 0 ||
        check_cert_pair(c, &c->peer_tls.client, "peer_tls.cert", "peer_tls.key", NULL, NULL, err,
                        errlen) < 0)
        return -1;
    return 0;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
    if (c->mode == MODE_REVERSE && !c->has_upstream) {
        snprintf(err, errlen, "upstream: required in reverse mode (--upstream http://HOST:PORT)");
        return -1;
    }
    /* TLS listeners alone are a whole setup (nginx's `listen 443 ssl`
     * without a port 80): no cleartext port is opened behind the user's back. */
    if (c->nlisten == 0 && c->tls.nlisten == 0) {
        snprintf(err, errlen,
                 "listen: at least one address is required (--listen HOST:PORT, or "
                 "--tls-listen HOST:PORT for TLS only)");
        return -1;
    }
    if (c->limits.max_connections == 0) {
        snprintf(err, errlen, "limits.max_connections: must be at least 1");
        return -1;
    }
    if (c->limits.header_count == 0 || c->limits.header_count > 256) {
        snprintf(err, errlen, "limits.header_count: must be between 1 and 256");
        return -1;
    }
    if (c->limits.request_line < 16 || c->limits.header_section < 64 ||
        c->limits.response_header_section < 64 || c->limits.header_section > (64u << 20) ||
        c->limits.response_header_section > (64u << 20)) {
        snprintf(err, errlen, "limits: request_line >= 16, header sections between 64 and 64MiB");
        return -1;
    }
    if (c->cache.heuristic_percent > 100 || c->cache.max_variants == 0 ||
        c->cache.max_variants > 1024) {
        snprintf(err, errlen, "cache: heuristic_percent at most 100, max_variants 1 to 1024");
        return -1;
    }
    if (c->cache.eviction_scan == 0) {
        snprintf(err, errlen, "cache: eviction_scan at least 1");
        return -1;
    }
    if (c->workers < 0 || c->workers > 256) {
        snprintf(err, errlen, "workers: must be between 0 (one per core) and 256");
        return -1;
    }
    if (check_listeners(c, err, errlen) < 0 || check_tls(c, err, errlen) < 0)
        return -1;
    return 0;
}

/* The first field of upstream_tls or peer_tls the configuration set, in
 * file order (a flag, line 0, after the file's): its name after the
 * prefix, into *name and *line. false: none is set. */
static bool client_tls_first_set(const struct config_tls_client *t, const char **name,
                                 unsigned *line)
{
    const struct {
        bool set;
        const char *name;
        unsigned line;
    } f[] = {
        {t->ca[0] != 0, "ca", t->line},
        {t->verify_line != 0 || !t->verify, "verify", t->verify_line},
        {t->sni[0] != 0, "sni", t->sni_line},
        {t->client.cert[0] != 0, "cert", t->client.line},
        {t->client.key[0] != 0, "key", t->client.key_line},
    };
    int best = -1;
    for (int i = 0; i < (int)(sizeof f / sizeof f[0]); i++)
        if (f[i].set && (best < 0 || (f[i].line && (!f[best].line || f[i].line < f[best].line))))
            best = i;
    if (best < 0)
        return false;
    *name = f[best].name;
    *line = f[best].line;
    return true;
}

/* TLS settings nothing uses are a mistake worth a word: upstream_tls with
 * an http:// upstream, peer_tls without an https:// peer, a client CA that
 * no client is checked against. */
static void unused_tls_warnings(const struct config *c, void (*say)(const char *line, void *arg),
                                void *arg)
{
    char line[800];
    const char *name;
    unsigned at;
    const char *why = NULL;
    if (client_tls_first_set(&c->upstream_tls, &name, &at)) {
        if (c->mode == MODE_FORWARD)
            why =
                "unused in forward mode (upstream_tls is for an https:// upstream in reverse mode)";
        else if (c->has_upstream && !c->upstream.tls)
            why = "unused: the upstream is http:// (upstream_tls is for an https:// upstream)";
        if (why) {
            line_origin(c, at, line, sizeof line);
            size_t used = strlen(line);
            /* --upstream-ca is the one flag of these: named as a flag */
            if (!at && !strcmp(name, "ca"))
                snprintf(line + used, sizeof line - used, "--upstream-ca: %s", why);
            else
                snprintf(line + used, sizeof line - used, "upstream_tls.%s: %s", name, why);
            say(line, arg);
        }
    }
    why = NULL;
    if (client_tls_first_set(&c->peer_tls, &name, &at)) {
        if (c->mode == MODE_REVERSE)
            why = "unused in reverse mode (peer_tls is for the forward side's --peer https://...)";
        else if (!c->peer.forward)
            why = "unused: no --peer is set (peer_tls is for --peer https://...)";
        else if (!c->peer.url.tls)
            why = "unused: the peer is http:// (peer_tls is for --peer https://...)";
        if (why) {
            line_origin(c, at, line, sizeof line);
            size_t used = strlen(line);
            snprintf(line + used, sizeof line - used, "peer_tls.%s: %s", name, why);
            say(line, arg);
        }
    }
    if (c->tls.client_ca[0] && c->tls.client_verify == CLIENT_VERIFY_OFF) {
        line_origin(c, c->tls.client_ca_line, line, sizeof line);
        size_t used = strlen(line);
        snprintf(line + used, sizeof line - used,
                 "tls.client_ca: unused while tls.client_verify is off (no client certificate "
                 "is asked for)");
        say(line, arg);
    }
}

void config_warnings(const struct config *c, void (*say)(const char *line, void *arg), void *arg)
{
    char line[800];
    if (c->mode == MODE_FORWARD && c->proxy.host_line) {
        snprintf(line, sizeof line,
                 "%s:%u: proxy.host: ignored in forward mode, where the origin gets the Host of "
                 "the request's URI (RFC 9112 §3.2.2)",
                 c->file, c->proxy.host_line);
        say(line, arg);
    }
    /* verify: false is allowed only when written so, and never quietly */
    const struct {
        const struct config_tls_client *t;
        const char *field, *who;
    } clients[] = {{&c->upstream_tls, "upstream_tls", "the origin"},
                   {&c->peer_tls, "peer_tls", "the reverse peer"}};
    for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++) {
        if (clients[i].t->verify)
            continue;
        line_origin(c, clients[i].t->verify_line, line, sizeof line);
        size_t used = strlen(line);
        snprintf(line + used, sizeof line - used,
                 "%s.verify: false: the certificate of %s is not checked; anyone on the path "
                 "can pose as it",
                 clients[i].field, clients[i].who);
        say(line, arg);
    }
    unused_tls_warnings(c, say, arg);
}

int config_cache_finish(struct config *c, char *warn, size_t warnlen)
{
    uint64_t shard = c->cache.memory_size / STORE_MEM_SHARDS;
    if (!c->cache.enabled || c->cache.max_object_size <= shard)
        return 0;
    snprintf(warn, warnlen,
             "cache.max_object_size: %llu bytes is more than one shard holds "
             "(cache.memory_size / %d = %llu bytes): clamped to %llu",
             (unsigned long long)c->cache.max_object_size, STORE_MEM_SHARDS,
             (unsigned long long)shard, (unsigned long long)shard);
    c->cache.max_object_size = shard;
    return 1;
}

static void each_procedure(const char *list, struct connect_procedures *p, int add)
{
    while (*list) {
        const char *end = strchr(list, ',');
        size_t len = end ? (size_t)(end - list) : strlen(list);
        if (add)
            connect_procedure_add(p, list, len);
        else
            connect_procedure_remove(p, list, len);
        list += len + (end ? 1 : 0);
    }
}

int config_connect_finish(struct config *c, char *err, size_t errlen)
{
    if (c->connect.descriptors[0]) {
        FILE *fp = fopen(c->connect.descriptors, "rb");
        if (!fp) {
            snprintf(err, errlen, "connect.descriptors: cannot open '%s': %s",
                     c->connect.descriptors, strerror(errno));
            return -1;
        }
        size_t cap = 1 << 16, len = 0;
        unsigned char *buf = malloc(cap);
        size_t got;
        while (buf && (got = fread(buf + len, 1, cap - len, fp)) > 0) {
            len += got;
            if (len == cap && cap < (64u << 20))
                buf = realloc(buf, cap *= 2);
        }
        fclose(fp);
        char why[128];
        if (!buf || connect_descriptors_add(&c->connect.procs, buf, len, why, sizeof why) < 0) {
            snprintf(err, errlen, "connect.descriptors: '%s': %s", c->connect.descriptors,
                     buf ? why : "out of memory");
            free(buf);
            return -1;
        }
        free(buf);
    }
    each_procedure(c->connect.cacheable, &c->connect.procs, 1);
    each_procedure(c->connect.not_cacheable, &c->connect.procs, 0);
    each_procedure(c->connect.not_cacheable, &c->connect.never, 1);
    return 0;
}

int config_peer_finish(struct config *c, char *err, size_t errlen)
{
    if (!c->peer.forward)
        return 0;
    char why[600];
    if (c->mode != MODE_FORWARD)
        snprintf(err, errlen, "peer: --peer is for forward mode (--mode forward)");
    else if (!c->peer.id[0])
        snprintf(err, errlen, "peer.id: required with --peer (--peer-id NAME)");
    else if (!c->peer.secret_file[0])
        snprintf(err, errlen, "peer.secret_file: required with --peer (--peer-secret FILE)");
    else if (config_read_secret(c->peer.secret_file, c->peer.secret, &c->peer.secret_len, why,
                                sizeof why) < 0)
        snprintf(err, errlen, "peer.secret_file: %s", why);
    else
        return 0;
    return -1;
}
