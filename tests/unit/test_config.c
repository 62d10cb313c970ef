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
    assert_int_equal(config_parse_addr("https://a", &a, true), -1);
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
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct config c;
        char err[512] = "";
        assert_int_equal(load(bad[i].yaml, &c, err), -1);
        if (!strstr(err, bad[i].want) || !strstr(err, "/tmp/idem-config-"))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].want);
    }
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
