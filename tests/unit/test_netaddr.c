/* Address classes, CIDR parsing and matching, and the egress decision. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "http/netaddr.h"

static struct net_addr A(const char *text) {
    struct net_cidr c;
    enum net_cidr_parse rc = net_cidr_parse((struct slice){text, strlen(text)}, &c);
    if (rc != NET_CIDR_OK)
        fail_msg("bad test address %s", text);
    return c.addr;
}

static void
test_classify(void **st)
{
    static const struct {
        const char *addr;
        enum net_addr_class want;
    } rows[] = {
        {"127.0.0.1", NET_ADDR_LOOPBACK},
        {"127.255.255.254", NET_ADDR_LOOPBACK},
        {"::1", NET_ADDR_LOOPBACK},
        {"::ffff:127.0.0.1", NET_ADDR_LOOPBACK}, /* v4-mapped is the v4 address */
        {"::127.0.0.1", NET_ADDR_LOOPBACK},      /* deprecated v4-compatible */
        {"169.254.169.254", NET_ADDR_LINK_LOCAL},
        {"::ffff:169.254.0.1", NET_ADDR_LINK_LOCAL},
        {"fe80::1", NET_ADDR_LINK_LOCAL},
        {"febf:ffff::1", NET_ADDR_LINK_LOCAL},
        {"fec0::1", NET_ADDR_GLOBAL}, /* past fe80::/10 */
        {"0.0.0.0", NET_ADDR_UNSPECIFIED},
        {"0.1.2.3", NET_ADDR_UNSPECIFIED},
        {"::", NET_ADDR_UNSPECIFIED},
        {"::ffff:0.0.0.0", NET_ADDR_UNSPECIFIED},
        {"10.0.0.1", NET_ADDR_GLOBAL}, /* RFC 1918 stays reachable */
        {"192.168.1.1", NET_ADDR_GLOBAL},
        {"128.0.0.1", NET_ADDR_GLOBAL},
        {"1.1.1.1", NET_ADDR_GLOBAL},
        {"2001:db8::1", NET_ADDR_GLOBAL},
        {"::2", NET_ADDR_UNSPECIFIED}, /* ::0.0.0.2, in 0/8 */
        {"::1:0:0:1", NET_ADDR_GLOBAL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct net_addr a = A(rows[i].addr);
        if (net_addr_classify(&a) != rows[i].want)
            fail_msg("%s: got %s, want %s", rows[i].addr,
                     net_addr_class_name(net_addr_classify(&a)), net_addr_class_name(rows[i].want));
    }
}

static void test_cidr_parse(void **st)
{
    static const struct {
        const char *text;
        enum net_cidr_parse want;
        unsigned prefix; /* in the 128-bit form */
    } rows[] = {
        {"10.0.0.0/8", NET_CIDR_OK, 104},
        {"127.0.0.1", NET_CIDR_OK, 128},
        {"0.0.0.0/0", NET_CIDR_OK, 96},
        {"::/0", NET_CIDR_OK, 0},
        {"fe80::/10", NET_CIDR_OK, 10},
        {"::1/128", NET_CIDR_OK, 128},
        {"::ffff:10.0.0.0/104", NET_CIDR_OK, 104},
        {"10.0.0.1/8", NET_CIDR_HOST_BITS, 0},
        {"fe80::1/10", NET_CIDR_HOST_BITS, 0},
        {"10.0.0.0/33", NET_CIDR_BAD_PREFIX, 0},
        {"::/129", NET_CIDR_BAD_PREFIX, 0},
        {"10.0.0.0/", NET_CIDR_BAD_PREFIX, 0},
        {"10.0.0.0/08", NET_CIDR_BAD_PREFIX, 0},
        {"10.0.0.0/+8", NET_CIDR_BAD_PREFIX, 0},
        {"10.0.0.0/8/8", NET_CIDR_BAD_PREFIX, 0},
        {"10.0.0.0/1000", NET_CIDR_BAD_PREFIX, 0},
        {"", NET_CIDR_BAD_ADDRESS, 0},
        {"/8", NET_CIDR_BAD_ADDRESS, 0},
        {"localhost", NET_CIDR_BAD_ADDRESS, 0},
        {"127.1", NET_CIDR_BAD_ADDRESS, 0}, /* no inet_aton shorthand in a config */
        {"010.0.0.0/8", NET_CIDR_BAD_ADDRESS, 0},
        {"10.0.0.256", NET_CIDR_BAD_ADDRESS, 0},
        {" 10.0.0.0/8", NET_CIDR_BAD_ADDRESS, 0},
        {"fe80::1%eth0", NET_CIDR_BAD_ADDRESS, 0},
        {"[::1]", NET_CIDR_BAD_ADDRESS, 0},
        {"1:2:3:4:5:6:7:8:9", NET_CIDR_BAD_ADDRESS, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct net_cidr c;
        enum net_cidr_parse rc =
            net_cidr_parse((struct slice){rows[i].text, strlen(rows[i].text)}, &c);
        if (rc != rows[i].want)
            fail_msg("'%s': got %s, want %s", rows[i].text, net_cidr_parse_reason(rc),
                     net_cidr_parse_reason(rows[i].want));
        if (rc == NET_CIDR_OK && c.prefix != rows[i].prefix)
            fail_msg("'%s': prefix %u, want %u", rows[i].text, c.prefix, rows[i].prefix);
    }
    /* a slice is read to its length only */
    struct net_cidr c;
    assert_int_equal(net_cidr_parse((struct slice){"10.0.0.0/8garbage", 10}, &c), NET_CIDR_OK);
    assert_int_equal(c.prefix, 104);
}

static void test_cidr_contains(void **st)
{
    static const struct {
        const char *cidr, *addr;
        bool want;
    } rows[] = {
        {"127.0.0.0/8", "127.0.0.1", true},
        {"127.0.0.0/8", "::ffff:127.9.9.9", true},
        {"127.0.0.0/8", "128.0.0.1", false},
        {"127.0.0.0/8", "::1", false},
        {"10.1.2.0/23", "10.1.3.255", true},
        {"10.1.2.0/23", "10.1.4.0", false},
        {"0.0.0.0/0", "8.8.8.8", true},
        {"0.0.0.0/0", "2001:db8::1", false}, /* an IPv4 block holds IPv4 only */
        {"::/0", "2001:db8::1", true},
        {"::/0", "127.0.0.1", true}, /* ... an all-IPv6 block holds mapped IPv4 too */
        {"fe80::/10", "febf::1", true},
        {"fe80::/10", "fec0::1", false},
        {"::1", "::1", true},
        {"::1", "::2", false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct net_cidr c;
        assert_int_equal(net_cidr_parse((struct slice){rows[i].cidr, strlen(rows[i].cidr)}, &c),
                         NET_CIDR_OK);
        struct net_addr a = A(rows[i].addr);
        if (net_cidr_contains(&c, &a) != rows[i].want)
            fail_msg("%s in %s: want %d", rows[i].addr, rows[i].cidr, rows[i].want);
    }
}

static void test_egress(void **st)
{
    struct net_endpoint self[] = {{A("127.0.0.1"), 8080}, {A("0.0.0.0"), 9090}};
    struct net_addr local[] = {A("192.0.2.10"), A("fe80::5")};
    struct net_cidr allow;
    assert_int_equal(net_cidr_parse((struct slice){"127.0.0.0/24", 12}, &allow), NET_CIDR_OK);
    struct net_egress_policy strict = {self, 2, local, 2, false, NULL, 0};
    struct net_egress_policy open = {self, 2, local, 2, true, NULL, 0};
    struct net_egress_policy listed = {self, 2, local, 2, false, &allow, 1};
    static const struct {
        const char *addr;
        uint16_t port;
        enum net_egress strict, open, listed;
    } rows[] = {
        /* our own sockets: never, however reached */
        {"127.0.0.1", 8080, NET_EGRESS_SELF, NET_EGRESS_SELF, NET_EGRESS_SELF},
        {"::ffff:127.0.0.1", 8080, NET_EGRESS_SELF, NET_EGRESS_SELF, NET_EGRESS_SELF},
        {"0.0.0.0", 8080, NET_EGRESS_SELF, NET_EGRESS_SELF, NET_EGRESS_SELF},
        {"::", 9090, NET_EGRESS_SELF, NET_EGRESS_SELF, NET_EGRESS_SELF},
        {"127.0.0.7", 9090, NET_EGRESS_SELF, NET_EGRESS_SELF, NET_EGRESS_SELF},
        {"192.0.2.10", 9090, NET_EGRESS_SELF, NET_EGRESS_SELF, NET_EGRESS_SELF},
        {"fe80::5", 8080, NET_EGRESS_SELF, NET_EGRESS_SELF, NET_EGRESS_SELF},
        /* this host by its LAN address, another port: private */
        {"192.0.2.10", 22, NET_EGRESS_PRIVATE, NET_EGRESS_ALLOWED, NET_EGRESS_PRIVATE},
        /* the same port elsewhere is someone else */
        {"192.0.2.11", 9090, NET_EGRESS_ALLOWED, NET_EGRESS_ALLOWED, NET_EGRESS_ALLOWED},
        /* private ranges: by class, unless allowed */
        {"127.0.0.1", 3000, NET_EGRESS_PRIVATE, NET_EGRESS_ALLOWED, NET_EGRESS_ALLOWED},
        {"127.0.1.1", 3000, NET_EGRESS_PRIVATE, NET_EGRESS_ALLOWED, NET_EGRESS_PRIVATE},
        {"::1", 3000, NET_EGRESS_PRIVATE, NET_EGRESS_ALLOWED, NET_EGRESS_PRIVATE},
        {"169.254.169.254", 80, NET_EGRESS_PRIVATE, NET_EGRESS_ALLOWED, NET_EGRESS_PRIVATE},
        {"fe80::9", 80, NET_EGRESS_PRIVATE, NET_EGRESS_ALLOWED, NET_EGRESS_PRIVATE},
        {"0.0.0.0", 80, NET_EGRESS_PRIVATE, NET_EGRESS_ALLOWED, NET_EGRESS_PRIVATE},
        {"203.0.113.5", 80, NET_EGRESS_ALLOWED, NET_EGRESS_ALLOWED, NET_EGRESS_ALLOWED},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct net_endpoint dst = {A(rows[i].addr), rows[i].port};
        assert_int_equal(net_egress_decide(&strict, &dst), rows[i].strict);
        assert_int_equal(net_egress_decide(&open, &dst), rows[i].open);
        assert_int_equal(net_egress_decide(&listed, &dst), rows[i].listed);
    }
    struct net_egress_policy empty = {0};
    struct net_endpoint anywhere = {A("8.8.8.8"), 443};
    assert_int_equal(net_egress_decide(&empty, &anywhere), NET_EGRESS_ALLOWED);
}

/* listen and admin addresses that would share connections (issue 12, part 2) */
static void test_endpoints_overlap(void **st)
{
    static const struct {
        const char *a;
        uint16_t pa;
        const char *b;
        uint16_t pb;
        bool overlap;
    } rows[] = {
        {"127.0.0.1", 8080, "127.0.0.1", 8080, true},
        {"127.0.0.1", 8080, "::ffff:127.0.0.1", 8080, true},
        {"0.0.0.0", 8080, "127.0.0.1", 8080, true},
        {"127.0.0.1", 8080, "0.0.0.0", 8080, true},
        {"::", 8080, "127.0.0.1", 8080, true},
        {"::", 8080, "::1", 8080, true},
        {"0.0.0.0", 8080, "::", 8080, true},
        {"::1", 8080, "::1", 8080, true},
        /* a different port, or an address the other does not cover */
        {"127.0.0.1", 8080, "127.0.0.1", 8081, false},
        {"127.0.0.1", 8080, "127.0.0.2", 8080, false},
        {"0.0.0.0", 8080, "::1", 8080, false},
        {"::1", 8080, "127.0.0.1", 8080, false},
        {"0.0.0.1", 8080, "127.0.0.1", 8080, false},
        /* port 0 is a fresh port each time */
        {"127.0.0.1", 0, "127.0.0.1", 0, false},
        {"0.0.0.0", 0, "127.0.0.1", 0, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct net_endpoint a = {A(rows[i].a), rows[i].pa}, b = {A(rows[i].b), rows[i].pb};
        if (net_endpoints_overlap(&a, &b) != rows[i].overlap ||
            net_endpoints_overlap(&b, &a) != rows[i].overlap)
            fail_msg("row %zu: %s:%u vs %s:%u", i, rows[i].a, rows[i].pa, rows[i].b, rows[i].pb);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),          cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_cidr_contains),     cmocka_unit_test(test_egress),
        cmocka_unit_test(test_endpoints_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
