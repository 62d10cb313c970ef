/* Configuration: units, addresses, and errors that name file, line, field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "server/config.h"

static void test_units(void **st)
{
    uint64_t v;
    assert_int_equal(config_parse_duration("10s", &v), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(config_parse_duration("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(config_parse_duration("2m", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(config_parse_duration("5", &v), 0);
    assert_int_equal(v, 5000);
    assert_int_equal(config_parse_duration("abc", &v), -1);
    assert_int_equal(config_parse_duration("-1s", &v), -1);
    assert_int_equal(config_parse_duration("1d", &v), -1);
    assert_int_equal(config_parse_size("64KiB", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(config_parse_size("1MiB", &v), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(config_parse_size("8192", &v), 0);
    assert_int_equal(v, 8192);
    assert_int_equal(config_parse_size("12 bananas", &v), -1);
}

static void test_addr(void **st)
{
    struct config_addr a;
    assert_int_equal(config_parse_addr("127.0.0.1:8080", &a, false), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 8080);
    assert_int_equal(config_parse_addr("http://origin.local", &a, true), 0);
    assert_string_equal(a.host, "origin.local");
    assert_int_equal(a.port, 80);
    assert_int_equal(config_parse_addr("http://[::1]:9000/", &a, true), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 9000);
    assert_int_equal(config_parse_addr("127.0.0.1", &a, false), -1);
    assert_int_equal(config_parse_addr("127.0.0.1:99999", &a, false), -1);
    assert_int_equal(config_parse_addr("ftp://a", &a, true), -1);
    assert_int_equal(config_parse_addr("HTTP://a", &a, true), -1);
    assert_int_equal(config_parse_addr("https://", &a, true), -1);
    assert_int_equal(config_parse_addr("https://a:99999", &a, true), -1);
    /* https: TLS to it, port 443 unless given (RFC 9110 §4.2.2) */
    assert_int_equal(config_parse_addr("https://api.example", &a, true), 0);
    assert_string_equal(a.host, "api.example");
    assert_int_equal(a.port, 443);
    assert_true(a.tls);
    assert_int_equal(config_parse_addr("https://[::1]:8443/", &a, true), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 8443);
    assert_true(a.tls);
    assert_int_equal(config_parse_addr("http://api.example", &a, true), 0);
    assert_false(a.tls);
}

static int load(const char *yaml, struct config *c, char *err)
{
    char path[] = "/tmp/idem-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    config_defaults(c);
    int rc = config_load_file(c, path, err, 512);
    unlink(path);
    return rc;
}

static void test_file_ok(void **st)
{
    struct config c;
    char err[512];
    assert_int_equal(load("mode: forward\nlisten: [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n"
                          "timeouts:\n  client_header: 3s\nlimits:\n  header_count: 50\n"
                          "  request_body: 1MiB\nproxy:\n  via: false\n",
                          &c, err),
                     0);
    assert_int_equal(c.mode, MODE_FORWARD);
    assert_int_equal(c.nlisten, 2);
    assert_int_equal(c.listen[1].port, 2);
    assert_int_equal(c.timeouts.client_header, 3000);
    assert_int_equal(c.limits.header_count, 50);
    assert_int_equal(c.limits.request_body, 1048576);
    assert_false(c.proxy.via);
    assert_int_equal(c.timeouts.keepalive_idle, 75000); /* default kept */
    assert_int_equal(c.naming.n, 9);                    /* the seed's list by default */
    assert_int_equal(c.body_key.max_bytes, 1048576);
    assert_int_equal(c.body_key.normalize_max_bytes, 65536);
    assert_int_equal(c.body_key.normalize_max_values, 8192);
    assert_int_equal(c.body_key.normalize_max_depth, 64);
    assert_int_equal(load("body_key:\n  normalize_max_bytes: 1KiB\n  normalize_max_values: 10\n"
                          "  normalize_max_depth: 512\n",
                          &c, err),
                     0);
    assert_int_equal(c.body_key.normalize_max_bytes, 1024);
    assert_int_equal(c.body_key.normalize_max_values, 10);
    assert_int_equal(c.body_key.normalize_max_depth, 512);

    assert_int_equal(load("rules:\n  - path: /api/write/*\n    methods: [POST]\n"
                          "    cache: false\n"
                          "  - path: /rpc/*\n    methods: POST\n"
                          "    header: \"X-Request-Kind: query\"\n    cache: true\n    ttl: 60s\n"
                          "  - path: /api/*\n    methods: [POST, QUERY]\n    cache: true\n"
                          "    key_headers: [Accept, X-Tenant]\n    normalize: false\n"
                          "body_key:\n  max_bytes: 64KiB\nnaming:\n  never_cache_prefixes: []\n",
                          &c, err),
                     0);
    assert_int_equal(c.nrules, 3);
    assert_string_equal(c.rules[0].path, "/api/write/*");
    assert_false(c.rules[0].cache);
    assert_true(c.rules[0].normalize);
    assert_int_equal(c.rules[1].methods, RM_POST);
    assert_string_equal(c.rules[1].header_name, "X-Request-Kind");
    assert_string_equal(c.rules[1].header_value, "query");
    assert_int_equal(c.rules[1].ttl, 60000);
    assert_int_equal(c.rules[2].methods, RM_POST | RM_QUERY);
    assert_string_equal(c.rules[2].key_headers, "Accept, X-Tenant");
    assert_false(c.rules[2].normalize);
    assert_int_equal(c.rules[2].line, 10);
    assert_int_equal(c.body_key.max_bytes, 65536);
    assert_int_equal(c.naming.n, 0);
}

static void test_file_errors(void **st)
{
    static const struct {
        const char *yaml;
        const char *want; /* ":LINE: FIELD" */
    } bad[] = {
        {"mode: reverse\ntimeouts:\n  client_header: soon\n", ":3: timeouts.client_header"},
        {"limits:\n  header_count: -4\n", ":2: limits.header_count"},
        {"\n\nbogus: 1\n", ":3: bogus"},
        {"timeouts:\n  nope: 1s\n", ":2: timeouts.nope"},
        {"upstream: ftp://x\n", ":1: upstream"},
        {"listen: [\"127.0.0.1:1\", \"nope\"]\n", ":1: listen"},
        {"proxy:\n  via: maybe\n", ":2: proxy.via"},
        {"mode: sideways\n", ":1: mode"},
        {"limits: 5\n", ":1: limits"},
        {"a: [\n", "YAML syntax error"},
        {"rules: {path: /x}\n", ":1: rules"},
        {"rules:\n  - path: /x\n", ":2: rules[0]: a rule needs cache"},
        {"rules:\n  - cache: true\n", ":2: rules[0]: a rule needs a path"},
        {"rules:\n  - {path: /x, cache: true}\n  - path: x\n    cache: true\n",
         ":3: rules[1].path"},
        {"rules:\n  - path: /x\n    cache: true\n    methods: [POST, FETCH]\n",
         ":4: rules[0].methods: unknown method 'FETCH'"},
        {"rules:\n  - path: /x\n    cache: yes please\n", ":3: rules[0].cache"},
        {"rules:\n  - path: /x\n    cache: true\n    ttl: forever\n", ":4: rules[0].ttl"},
        {"rules:\n  - path: /x\n    cache: true\n    header: \"Bad Name: v\"\n",
         ":4: rules[0].header"},
        {"rules:\n  - path: /x\n    cache: true\n    key_headers: [\"a b\"]\n",
         ":4: rules[0].key_headers"},
        {"rules:\n  - path: /x\n    cache: true\n    colour: red\n", ":4: rules[0].colour"},
        {"body_key:\n  max_bytes: huge\n", ":2: body_key.max_bytes"},
        {"body_key:\n  normalize_max_bytes: lots\n", ":2: body_key.normalize_max_bytes"},
        {"body_key:\n  normalize_max_values: -1\n", ":2: body_key.normalize_max_values"},
        {"body_key:\n  normalize_max_depth: 513\n",
         ":2: body_key.normalize_max_depth: invalid number: 513 is over 512"},
        {"cache:\n  name: \"has space\"\n", ":2: cache.name: invalid name"},
        {"cache:\n  name: 9lives\n", ":2: cache.name: invalid name"},
        {"cache:\n  targeted_fields: [\"CDN Cache\"]\n",
         ":2: cache.targeted_fields: invalid field name"},
        {"cache:\n  strip_targeted: sometimes\n", ":2: cache.strip_targeted"},
        {"naming:\n  never_cache_prefixes: [\"\"]\n", ":2: naming.never_cache_prefixes"},
        {"peers: {id: a}\n", ":1: peers"},
        {"peers:\n  - id: a\n", ":2: peers[0]: a peer needs an id and a secret_file"},
        {"peers:\n  - id: a\n    secret_file: /nonexistent/s\n",
         ":3: peers[0].secret_file: cannot open"},
        {"peers:\n  - id: a\n    secret_file: /dev/null\n",
         ":3: peers[0].secret_file: '/dev/null': a secret is 16"},
        {"peers:\n  - id: \"a b\"\n", ":2: peers[0].id: invalid id"},
        {"peers:\n  - id: a\n    colour: red\n", ":3: peers[0].colour: unknown field"},
        {"peer:\n  url: ftp://x\n", ":2: peer.url"},
        {"connect:\n  descriptors: /nonexistent.binpb\n", ":2: connect.descriptors: cannot open"},
        {"connect:\n  cacheable: [Method]\n", ":2: connect.cacheable: invalid procedure"},
        {"upstream: https//x\n", ":1: upstream: invalid upstream 'https//x' (expected http://"},
        {"peer:\n  url: ftp://x:1\n", ":2: peer.url: invalid URL 'ftp://x:1' (expected http://"},
        {"tls:\n  listen: nope\n", ":2: tls.listen: invalid address 'nope'"},
        {"tls:\n  cert: \"\"\n", ":2: tls.cert: invalid path"},
        {"tls:\n  key: [a, b]\n", ":2: tls.key: invalid path"},
        {"tls:\n  min_version: TLSv1.1\n",
         ":2: tls.min_version: invalid version 'TLSv1.1' (expected TLSv1.2 or TLSv1.3)"},
        {"tls:\n  min_version: 1.3\n", ":2: tls.min_version: invalid version"},
        {"tls:\n  certs: {cert: a, key: b}\n", ":2: tls.certs: expected a list"},
        {"tls:\n  certs:\n    - cert: a\n",
         ":3: tls.certs[0]: a certificate needs a cert and a key"},
        {"tls:\n  certs:\n    - {cert: a, key: b}\n    - {cert: a, chain: b}\n",
         ":4: tls.certs[1].chain: unknown field"},
        {"tls:\n  colour: red\n", ":2: tls.colour: unknown field"},
        {"upstream_tls:\n  verify: maybe\n", ":2: upstream_tls.verify: invalid boolean"},
        {"upstream_tls:\n  sni: \"\"\n", ":2: upstream_tls.sni"},
        {"peer_tls:\n  sni: a\n", ":2: peer_tls.sni: unknown field"},
        {"timeouts:\n  tls_handshake: soon\n", ":2: timeouts.tls_handshake: invalid duration"},
        {"tls:\n  client_verify: maybe\n",
         ":2: tls.client_verify: invalid value 'maybe' (expected off, optional or require)"},
        {"tls:\n  client_verify: optional_no_ca\n", ":2: tls.client_verify: invalid value"},
        {"tls:\n  client_ca: \"\"\n", ":2: tls.client_ca: invalid path"},
        {"tls:\n  session_tickets: maybe\n", ":2: tls.session_tickets: invalid boolean"},
        {"tls:\n  ciphers: \"\"\n", ":2: tls.ciphers: invalid value"},
        {"tls:\n  ciphersuites: [a, b]\n", ":2: tls.ciphersuites"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct config c;
        char err[512] = "";
        assert_int_equal(load(bad[i].yaml, &c, err), -1);
        if (!strstr(err, bad[i].want) || !strstr(err, "/tmp/idem-config-"))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].want);
    }
}

/* tls, upstream_tls, peer_tls, timeouts.tls_handshake (issue 14) */
static void test_tls_fields(void **st)
{
    struct config c;
    char err[512];
    config_defaults(&c);
    assert_int_equal(c.timeouts.tls_handshake, 10000);
    assert_int_equal(c.tls.min_version, CONFIG_TLS1_2);
    assert_true(c.upstream_tls.verify);
    assert_true(c.peer_tls.verify);
    assert_int_equal(c.tls.ncerts, 0);
    assert_int_equal(load("listen: 127.0.0.1:1\n"
                          "upstream: https://api.example:8443\n"
                          "tls:\n"
                          "  listen: [127.0.0.1:2, 127.0.0.1:3]\n"
                          "  cert: certs/server.pem\n"
                          "  key: /abs/server.key\n"
                          "  certs:\n"
                          "    - {cert: other.pem, key: other.key}\n"
                          "    - cert: w.pem\n"
                          "      key: w.key\n"
                          "  min_version: TLSv1.3\n"
                          "upstream_tls:\n"
                          "  ca: ca.pem\n"
                          "  verify: false\n"
                          "  sni: origin.example\n"
                          "  cert: c.pem\n"
                          "  key: c.key\n"
                          "peer_tls: {ca: /p/ca.pem, verify: true, cert: pc.pem, key: pc.key}\n"
                          "timeouts:\n  tls_handshake: 2s\n",
                          &c, err),
                     0);
    assert_true(c.upstream.tls);
    assert_int_equal(c.upstream.port, 8443);
    assert_int_equal(c.tls.nlisten, 2);
    assert_int_equal(c.tls.listen[1].port, 3);
    assert_int_equal(c.tls.listen[1].line, 4);
    assert_int_equal(c.tls.ncerts, 3);
    /* relative to the file's directory (/tmp), absolute kept */
    assert_string_equal(c.tls.certs[0].cert, "/tmp/certs/server.pem");
    assert_int_equal(c.tls.certs[0].line, 5);
    assert_string_equal(c.tls.certs[0].key, "/abs/server.key");
    assert_int_equal(c.tls.certs[0].key_line, 6);
    assert_string_equal(c.tls.certs[1].cert, "/tmp/other.pem");
    assert_string_equal(c.tls.certs[2].key, "/tmp/w.key");
    assert_int_equal(c.tls.certs[2].key_line, 10);
    assert_int_equal(c.tls.min_version, CONFIG_TLS1_3);
    assert_string_equal(c.upstream_tls.ca, "/tmp/ca.pem");
    assert_int_equal(c.upstream_tls.line, 13);
    assert_false(c.upstream_tls.verify);
    assert_int_equal(c.upstream_tls.verify_line, 14);
    assert_string_equal(c.upstream_tls.sni, "origin.example");
    assert_string_equal(c.upstream_tls.client.cert, "/tmp/c.pem");
    assert_string_equal(c.upstream_tls.client.key, "/tmp/c.key");
    assert_string_equal(c.peer_tls.ca, "/p/ca.pem");
    assert_true(c.peer_tls.verify);
    assert_string_equal(c.peer_tls.client.key, "/tmp/pc.key");
    assert_int_equal(c.timeouts.tls_handshake, 2000);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);

    /* tls.certs alone: certs[0] stays empty, the list's first is the default */
    assert_int_equal(load("tls:\n  certs: [{cert: a, key: b}]\n", &c, err), 0);
    assert_int_equal(c.tls.ncerts, 2);
    assert_string_equal(c.tls.certs[0].cert, "");
    assert_string_equal(c.tls.certs[1].cert, "/tmp/a");

    /* cross-field checks */
    static const struct {
        const char *yaml;
        const char *want; /* NULL: accepted */
    } rows[] = {
        {"listen: 127.0.0.1:8080\ntls:\n  listen: 127.0.0.1:8443\n",
         ":3: tls.listen: needs a certificate and its key"},
        {"listen: 127.0.0.1:8080\ntls:\n  listen: 127.0.0.1:8443\n  key: k\n",
         ":3: tls.listen: needs a certificate"},
        {"listen: 127.0.0.1:8080\ntls:\n  listen: 127.0.0.1:8443\n  cert: c\n",
         ":4: tls.cert: set without tls.key"},
        {"listen: 127.0.0.1:8080\ntls:\n  key: k\n", ":3: tls.key: set without tls.cert"},
        {"listen: 127.0.0.1:8080\nupstream_tls:\n  cert: c\n",
         ":3: upstream_tls.cert: set without upstream_tls.key"},
        {"listen: 127.0.0.1:8080\npeer_tls:\n  key: k\n",
         ":3: peer_tls.key: set without peer_tls.cert"},
        {"listen: 127.0.0.1:8080\ntls:\n  listen: 127.0.0.1:8080\n  cert: c\n  key: k\n",
         ":3: tls.listen: 127.0.0.1:8080 overlaps listen 127.0.0.1:8080: one port cannot take "
         "both TLS and plaintext"},
        {"listen: 127.0.0.1:8080\ntls:\n  listen: 0.0.0.0:8080\n  cert: c\n  key: k\n",
         ":3: tls.listen: 0.0.0.0:8080 overlaps listen 127.0.0.1:8080"},
        {"listen: 127.0.0.1:8080\ntls:\n  listen: [127.0.0.1:8443, 127.0.0.1:8443]\n"
         "  cert: c\n  key: k\n",
         ":3: tls.listen: 127.0.0.1:8443 and 127.0.0.1:8443 overlap"},
        {"listen: 127.0.0.1:8080\ntls:\n  listen: 127.0.0.1:8443\n  cert: c\n  key: k\n"
         "admin: 127.0.0.1:8443\n",
         ":6: admin: 127.0.0.1:8443 overlaps tls.listen 127.0.0.1:8443"},
        {"listen: 127.0.0.1:8080\ntls:\n  listen: 127.0.0.1:8443\n  cert: c\n  key: k\n", NULL},
        {"listen: 127.0.0.1:8080\ntls:\n  listen: 127.0.0.1:8443\n"
         "  certs: [{cert: c, key: k}]\n",
         NULL},
        /* TLS only: tls.listen without listen */
        {"tls:\n  listen: 127.0.0.1:8443\n  cert: c\n  key: k\n", NULL},
        {"listen: 127.0.0.1:8080\ntls:\n  client_verify: require\n",
         ":3: tls.client_verify: require needs tls.client_ca"},
        {"listen: 127.0.0.1:8080\ntls:\n  client_verify: optional\n",
         ":3: tls.client_verify: optional needs tls.client_ca"},
        {"listen: 127.0.0.1:8080\ntls:\n  client_verify: optional\n  client_ca: ca.pem\n", NULL},
        {"listen: 127.0.0.1:8080\ntls:\n  client_verify: off\n", NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        err[0] = 0;
        assert_int_equal(load(rows[i].yaml, &c, err), 0);
        c.has_upstream = true;
        int rc = config_validate(&c, err, sizeof err);
        int ok = rows[i].want
                     ? rc == -1 && strstr(err, rows[i].want) && strstr(err, "/tmp/idem-config-")
                     : rc == 0;
        if (!ok)
            fail_msg("row %zu: rc %d, '%s' (want '%s')", i, rc, err,
                     rows[i].want ? rows[i].want : "ok");
    }
    /* from flags: the flags are named, no file line */
    config_defaults(&c);
    c.has_upstream = true;
    c.nlisten = 1;
    assert_int_equal(config_parse_addr("127.0.0.1:7000", &c.listen[0], false), 0);
    strcpy(c.tls.certs[0].cert, "c.pem");
    c.tls.ncerts = 1;
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_string_equal(err, "--tls-cert: set without --tls-key (a certificate and its private "
                             "key go together)");
    c.tls.min_version = 0x0302;
    strcpy(c.tls.certs[0].key, "k.pem");
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_string_equal(err, "tls.min_version: expected TLSv1.2 or TLSv1.3");
}

/* cache.targeted_fields and cache.strip_targeted (RFC 9213, issue 13) */
static void test_targeted_fields(void **st)
{
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    assert_string_equal(c.cache.targeted_fields, "CDN-Cache-Control");
    assert_false(c.cache.strip_targeted);
    assert_int_equal(
        load("cache:\n  targeted_fields: [Idemcache-Cache-Control, CDN-Cache-Control]\n"
             "  strip_targeted: true\n",
             &c, err),
        0);
    assert_string_equal(c.cache.targeted_fields, "Idemcache-Cache-Control, CDN-Cache-Control");
    assert_true(c.cache.strip_targeted);
    assert_int_equal(load("cache:\n  targeted_fields: []\n", &c, err), 0);
    assert_string_equal(c.cache.targeted_fields, "");
    /* limits.ranges (RFC 9110 §14.2) */
    config_defaults(&c);
    assert_int_equal(c.limits.ranges, 16);
    assert_int_equal(load("limits:\n  ranges: 3\n", &c, err), 0);
    assert_int_equal(c.limits.ranges, 3);
    assert_int_equal(load("limits:\n  ranges: many\n", &c, err), -1);
    assert_non_null(strstr(err, ":2: limits.ranges"));
    /* cache.eviction_scan: what a client pinning objects makes one insert walk */
    config_defaults(&c);
    assert_int_equal(c.cache.eviction_scan, 256);
    assert_int_equal(load("cache:\n  eviction_scan: 8\n", &c, err), 0);
    assert_int_equal(c.cache.eviction_scan, 8);
    assert_int_equal(load("cache:\n  eviction_scan: 2000000\n", &c, err), -1);
    assert_non_null(strstr(err, ":2: cache.eviction_scan"));
    c.nlisten = 1;
    c.has_upstream = true;
    c.cache.eviction_scan = 0;
    assert_int_equal(config_validate(&c, err, 512), -1);
    assert_string_equal(err, "cache: eviction_scan at least 1");
}

static void test_validate(void **st)
{
    struct config c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_validate(&c, err, sizeof err), -1); /* no upstream, no listen */
    c.nlisten = 1;
    c.has_upstream = true;
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    c.limits.header_count = 1000;
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "limits.header_count"));
}

/* forward.* and limits.max_connections (issue 10, finding 3 and hardening) */
static void test_forward_fields(void **st)
{
    struct config c;
    char err[512];
    config_defaults(&c);
    assert_false(c.forward.allow_private);
    assert_int_equal(c.forward.nallow, 0);
    assert_int_equal(c.forward.nconnect_ports, 1);
    assert_int_equal(c.forward.connect_ports[0], 443);
    assert_int_equal(c.limits.max_connections, 10000);
    assert_int_equal(load("forward:\n  allow_private: true\n  allow: [10.0.0.0/8, \"fe80::/10\"]\n"
                          "  connect_ports: [443, 8443]\nlimits:\n  max_connections: 3\n",
                          &c, err),
                     0);
    assert_true(c.forward.allow_private);
    assert_int_equal(c.forward.nallow, 2);
    assert_int_equal(c.forward.allow[0].prefix, 104);
    assert_int_equal(c.forward.allow[1].prefix, 10);
    assert_int_equal(c.forward.nconnect_ports, 2);
    assert_int_equal(c.forward.connect_ports[1], 8443);
    assert_int_equal(c.limits.max_connections, 3);
    assert_int_equal(load("forward:\n  connect_ports: []\n", &c, err), 0);
    assert_int_equal(c.forward.nconnect_ports, 0); /* CONNECT off */

    static const struct {
        const char *yaml;
        const char *want;
    } bad[] = {
        {"forward:\n  allow: [10.0.0.1/8]\n", ":2: forward.allow: invalid CIDR '10.0.0.1/8'"},
        {"forward:\n  allow:\n    - ::/0\n    - 1.2.3.4/40\n", ":4: forward.allow: invalid CIDR"},
        {"forward:\n  allow: [\"%n%s\"]\n", ":2: forward.allow: invalid CIDR '%n%s'"},
        {"forward:\n  allow: localhost\n", ":2: forward.allow: invalid CIDR 'localhost'"},
        {"forward:\n  connect_ports: [65536]\n", ":2: forward.connect_ports: invalid port"},
        {"forward:\n  connect_ports: [-1]\n", ":2: forward.connect_ports: invalid port"},
        {"forward:\n  connect_ports: {a: 1}\n", ":2: forward.connect_ports"},
        {"forward:\n  allow_private: sometimes\n", ":2: forward.allow_private"},
        {"forward:\n  deny: [10.0.0.0/8]\n", ":2: forward.deny: unknown field"},
        {"limits:\n  max_connections: many\n", ":2: limits.max_connections"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char e[512] = "";
        assert_int_equal(load(bad[i].yaml, &c, e), -1);
        if (!strstr(e, bad[i].want) || !strstr(e, "/tmp/idem-config-"))
            fail_msg("case %zu: '%s' lacks '%s'", i, e, bad[i].want);
    }
    config_defaults(&c);
    c.nlisten = 1;
    c.has_upstream = true;
    c.limits.max_connections = 0;
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "limits.max_connections"));
}

/* Listen and admin addresses that would take each other's connections
 * (issue 12, part 2): refused, naming the field, and the file line when
 * the file set it. */
static void test_listener_overlap(void **st)
{
    static const struct {
        const char *yaml;
        const char *want; /* NULL: accepted */
    } rows[] = {
        {"listen: 127.0.0.1:8080\nadmin: 127.0.0.1:8080\n",
         ":2: admin: 127.0.0.1:8080 overlaps listen"},
        {"listen: 0.0.0.0:8080\nadmin: 127.0.0.1:8080\n",
         ":2: admin: 127.0.0.1:8080 overlaps listen 0.0.0.0:8080"},
        {"listen: 127.0.0.1:8080\nadmin: \"[::]:8080\"\n", ":2: admin: [::]:8080 overlaps"},
        {"listen: localhost:8080\nadmin: LOCALHOST:8080\n", ":2: admin"},
        {"listen:\n  - 127.0.0.1:8080\n  - 127.0.0.1:9000\nadmin: 0.0.0.0:9000\n",
         ":4: admin: 0.0.0.0:9000 overlaps listen 127.0.0.1:9000"},
        {"listen:\n  - 127.0.0.1:8080\n  - 127.0.0.1:8080\n",
         ":3: listen: 127.0.0.1:8080 and 127.0.0.1:8080 overlap"},
        {"listen:\n  - 127.0.0.1:8080\n  - 0.0.0.0:8080\n",
         ":3: listen: 127.0.0.1:8080 and 0.0.0.0:8080 overlap"},
        {"listen: 127.0.0.1:8080\nadmin: 127.0.0.1:8081\n", NULL},
        {"listen: 127.0.0.1:8080\nadmin: 127.0.0.2:8080\n", NULL},
        {"listen: [\"127.0.0.1:8080\", \"[::1]:8080\"]\n", NULL},
        {"listen: [\"127.0.0.1:0\", \"127.0.0.1:0\"]\n", NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct config c;
        char err[512] = "";
        assert_int_equal(load(rows[i].yaml, &c, err), 0);
        c.has_upstream = true;
        int rc = config_validate(&c, err, sizeof err);
        int ok = rows[i].want
                     ? rc == -1 && strstr(err, rows[i].want) && strstr(err, "/tmp/idem-config-")
                     : rc == 0;
        if (!ok)
            fail_msg("row %zu: rc %d, '%s' (want '%s')", i, rc, err,
                     rows[i].want ? rows[i].want : "ok");
    }
    /* from flags: no file line, the field still named */
    struct config c;
    char err[512];
    config_defaults(&c);
    c.has_upstream = true;
    c.nlisten = 1;
    assert_int_equal(config_parse_addr("127.0.0.1:7000", &c.listen[0], false), 0);
    assert_int_equal(config_parse_addr("127.0.0.1:7000", &c.admin, false), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_true(!strncmp(err, "admin: 127.0.0.1:7000 overlaps listen 127.0.0.1:7000", 52));
}

/* proxy.host (issue 12, part 3) */
static void test_origin_host(void **st)
{
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    assert_int_equal(c.proxy.host, ORIGIN_HOST_CLIENT);
    static const struct {
        const char *value;
        enum config_origin_host mode;
        const char *fixed;
    } ok[] = {
        {"client", ORIGIN_HOST_CLIENT, ""},
        {"upstream", ORIGIN_HOST_UPSTREAM, ""},
        {"api.internal", ORIGIN_HOST_FIXED, "api.internal"},
        {"\"api.internal:8443\"", ORIGIN_HOST_FIXED, "api.internal:8443"},
        {"\"[::1]:80\"", ORIGIN_HOST_FIXED, "[::1]:80"},
        {"10.0.0.1", ORIGIN_HOST_FIXED, "10.0.0.1"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char yaml[128];
        snprintf(yaml, sizeof yaml, "proxy:\n  host: %s\n", ok[i].value);
        if (load(yaml, &c, err) != 0)
            fail_msg("%s: %s", ok[i].value, err);
        assert_int_equal(c.proxy.host, ok[i].mode);
        assert_int_equal(c.proxy.host_line, 2);
        if (ok[i].mode == ORIGIN_HOST_FIXED)
            assert_string_equal(c.proxy.host_value, ok[i].fixed);
    }
    static const char *const bad[] = {
        "\"\"",     "\"a b\"", "\"host:\"", "\"host:65536\"", "\"user@host\"",
        "\"[::1\"", "\"h/p\"", "[a, b]",    "{a: b}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[128];
        snprintf(yaml, sizeof yaml, "mode: reverse\nproxy:\n  host: %s\n", bad[i]);
        err[0] = 0;
        assert_int_equal(load(yaml, &c, err), -1);
        if (!strstr(err, ":3: proxy.host: ") || !strstr(err, "/tmp/idem-config-"))
            fail_msg("%s: '%s'", bad[i], err);
    }
    char host[300];
    struct config_addr a = {.host = "origin.example", .port = 80};
    config_addr_authority(&a, 80, host, sizeof host);
    assert_string_equal(host, "origin.example");
    a.port = 8080;
    config_addr_authority(&a, 80, host, sizeof host);
    assert_string_equal(host, "origin.example:8080");
    strcpy(a.host, "::1");
    config_addr_authority(&a, 80, host, sizeof host);
    assert_string_equal(host, "[::1]:8080");
}

/* Forward mode ignores proxy.host, and says so once. */
static void count_line(const char *line, void *arg)
{
    if (strstr(line, ":3: proxy.host: ignored in forward mode"))
        ++*(int *)arg;
}

/* verify: false, named with its file and line */
static void count_verify_line(const char *line, void *arg)
{
    if ((strstr(line, ":2: upstream_tls.verify: false: the certificate of the origin is not "
                      "checked") ||
         strstr(line, ":4: peer_tls.verify: false: the certificate of the reverse peer")) &&
        strstr(line, "/tmp/idem-config-"))
        ++*(int *)arg;
}

/* TLS settings nothing uses, named with file, line and field */
static void count_unused_line(const char *line, void *arg)
{
    if (strstr(line, "/tmp/idem-config-") &&
        (strstr(line, ":3: upstream_tls.sni: unused: the upstream is http://") ||
         strstr(line, ":5: peer_tls.cert: unused in reverse mode") ||
         strstr(line, ":8: tls.client_ca: unused while tls.client_verify is off")))
        ++*(int *)arg;
}

static void test_warnings(void **st)
{
    struct config c;
    char err[512];
    int n = 0;
    assert_int_equal(load("mode: forward\nproxy:\n  host: upstream\n", &c, err), 0);
    config_warnings(&c, count_line, &n);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(load("mode: reverse\nproxy:\n  host: upstream\n", &c, err), 0);
    config_warnings(&c, count_line, &n);
    assert_int_equal(n, 0);
    /* verify: false is said, once per side */
    n = 0;
    assert_int_equal(load("upstream_tls:\n  verify: false\npeer_tls:\n  verify: false\n", &c, err),
                     0);
    config_warnings(&c, count_verify_line, &n);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(load("upstream_tls:\n  verify: true\n", &c, err), 0);
    config_warnings(&c, count_verify_line, &n);
    assert_int_equal(n, 0);
    /* unused TLS settings: one line each */
    n = 0;
    assert_int_equal(load("upstream: http://a\nupstream_tls:\n  sni: x\npeer_tls:\n  cert: c\n"
                          "  key: k\ntls:\n  client_ca: ca.pem\n",
                          &c, err),
                     0);
    config_warnings(&c, count_unused_line, &n);
    assert_int_equal(n, 3);
    n = 0;
    assert_int_equal(load("upstream: https://a\nupstream_tls:\n  sni: x\n", &c, err), 0);
    config_warnings(&c, count_unused_line, &n);
    assert_int_equal(n, 0);
}

/* h2 (issue 15): defaults, values, and each bound at its limit + 1 */
static void test_h2_fields(void **st)
{
    struct config c;
    char err[512];
    config_defaults(&c);
    assert_true(c.h2.enabled);
    assert_int_equal(c.h2.max_concurrent_streams, 100);
    assert_int_equal(c.h2.initial_window, 256 * 1024);
    assert_int_equal(c.h2.max_header_list, 64 * 1024);
    assert_int_equal(c.h2.max_resets_per_10s, 200);
    assert_int_equal(c.h2.max_read_ahead, 4 * 1024 * 1024);
    assert_int_equal(c.h2.max_output_buffer, 1024 * 1024);
    assert_int_equal(load("h2:\n"
                          "  enabled: false\n"
                          "  max_concurrent_streams: 8\n"
                          "  initial_window: 2147483647\n"
                          "  max_header_list: 1KiB\n"
                          "  max_resets_per_10s: 1\n"
                          "  max_read_ahead: 0\n"
                          "  max_output_buffer: 16KiB\n",
                          &c, err),
                     0);
    assert_false(c.h2.enabled);
    assert_int_equal(c.h2.max_concurrent_streams, 8);
    assert_int_equal(c.h2.initial_window, 2147483647);
    assert_int_equal(c.h2.max_header_list, 1024);
    assert_int_equal(c.h2.max_resets_per_10s, 1);
    assert_int_equal(c.h2.max_read_ahead, 0);
    assert_int_equal(c.h2.max_output_buffer, 16 * 1024);
    assert_int_equal(load("h2:\n  max_output_buffer: 1GiB\n", &c, err), 0);
    assert_int_equal(c.h2.max_output_buffer, 1u << 30);
    static const struct {
        const char *yaml;
        const char *want;
    } bad[] = {
        {"h2:\n  enabled: maybe\n", ":2: h2.enabled: invalid boolean"},
        {"h2:\n  max_concurrent_streams: 0\n",
         ":2: h2.max_concurrent_streams: out of range: 1 to 1000000"},
        {"h2:\n  max_concurrent_streams: 1000001\n", ":2: h2.max_concurrent_streams: invalid"},
        {"h2:\n  initial_window: 2147483648\n",
         ":2: h2.initial_window: out of range: 1 to 2147483647 bytes"},
        {"h2:\n  initial_window: 0\n", ":2: h2.initial_window: out of range"},
        {"h2:\n  max_header_list: 1023\n", ":2: h2.max_header_list: out of range: 1KiB"},
        {"h2:\n  max_header_list: 16777217\n", ":2: h2.max_header_list: out of range"},
        {"\nh2:\n  max_resets_per_10s: 0\n", ":3: h2.max_resets_per_10s: out of range"},
        {"h2:\n  max_read_ahead: lots\n", ":2: h2.max_read_ahead: invalid size"},
        {"h2:\n  max_output_buffer: 16383\n",
         ":2: h2.max_output_buffer: out of range: 16KiB to 1GiB"},
        {"h2:\n  max_output_buffer: 1073741825\n", ":2: h2.max_output_buffer: out of range"},
        {"h2:\n\n  max_output_buffer: -1\n", ":3: h2.max_output_buffer: invalid size"},
        {"h2:\n  push: true\n", ":2: h2.push: unknown field"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal(load(bad[i].yaml, &c, err), -1);
        if (!strstr(err, bad[i].want) || !strstr(err, "/tmp/idem-config-"))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_file_ok),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_forward_fields),
        cmocka_unit_test(test_listener_overlap),
        cmocka_unit_test(test_origin_host),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_targeted_fields),
        cmocka_unit_test(test_tls_fields),
        cmocka_unit_test(test_h2_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
