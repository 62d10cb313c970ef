/* Address classes, CIDR blocks and the forward-proxy egress decision.
 * RFC 4291 (IPv6 addressing), RFC 1122 §3.2.1.3 and RFC 3927 (IPv4
 * special ranges), RFC 4632 §3.1 (prefix notation). */
#include <arpa/inet.h>
#include <string.h>
#include "http/netaddr.h"

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void net_addr_from_ipv4(struct net_addr *a, const uint8_t v4[4])
{
    memcpy(a->b, v4_mapped_prefix, 12);
    memcpy(a->b + 12, v4, 4);
}

void net_addr_from_ipv6(struct net_addr *a, const uint8_t v6[16])
{
    memcpy(a->b, v6, 16);
}

bool net_addr_is_ipv4(const struct net_addr *a)
{
    return memcmp(a->b, v4_mapped_prefix, 12) == 0;
}

bool net_addr_eq(const struct net_addr *a, const struct net_addr *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}

static bool covers(const struct net_addr *wild, const struct net_addr *a)
{
    static const uint8_t zero[16];
    if (memcmp(wild->b, zero, 16) == 0)
        return true; /* :: */
    return net_addr_is_ipv4(wild) && memcmp(wild->b + 12, zero, 4) == 0 && net_addr_is_ipv4(a);
}

bool net_endpoints_overlap(const struct net_endpoint *a, const struct net_endpoint *b)
{
    if (a->port == 0 || a->port != b->port)
        return false;
    return net_addr_eq(&a->addr, &b->addr) || covers(&a->addr, &b->addr) ||
           covers(&b->addr, &a->addr);
}

static enum net_addr_class classify_v4(const uint8_t *q)
{
    if (q[0] == 127)
        return NET_ADDR_LOOPBACK;
    if (q[0] == 169 && q[1] == 254)
        return NET_ADDR_LINK_LOCAL;
    /* Linux connects 0.0.0.0 to this host; the rest of 0/8 is "this network". */
    if (q[0] == 0)
        return NET_ADDR_UNSPECIFIED;
    return NET_ADDR_GLOBAL;
}

enum net_addr_class net_addr_classify(const struct net_addr *a)
{
    static const uint8_t zero[16];
    if (net_addr_is_ipv4(a))
        return classify_v4(a->b + 12);
    if (memcmp(a->b, zero, 12) == 0) {
        if (memcmp(a->b + 12, zero, 3) == 0 && a->b[15] <= 1)
            return a->b[15] == 0 ? NET_ADDR_UNSPECIFIED : NET_ADDR_LOOPBACK;
        /* deprecated IPv4-compatible ::a.b.c.d (§2.5.5.1): judged by its IPv4 part */
        return classify_v4(a->b + 12);
    }
    if (a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0x80)
        return NET_ADDR_LINK_LOCAL;
    return NET_ADDR_GLOBAL;
}

const char *net_addr_class_name(enum net_addr_class k)
{
    switch (k) {
    case NET_ADDR_LOOPBACK:
        return "loopback";
    case NET_ADDR_LINK_LOCAL:
        return "link-local";
    case NET_ADDR_UNSPECIFIED:
        return "unspecified";
    case NET_ADDR_GLOBAL:
        break;
    }
    return "global";
}

/* Plain decimal, no sign, no leading zero, at most max. -1 if not. */
static int parse_prefix(struct slice s, unsigned max)
{
    if (s.len == 0 || s.len > 3 || (s.len > 1 && s.p[0] == '0'))
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s.p[i] - '0');
    }
    return v <= max ? (int)v : -1;
}

enum net_cidr_parse net_cidr_parse(struct slice s, struct net_cidr *out)
{
    const char *slash = s.len ? memchr(s.p, '/', s.len) : NULL;
    size_t alen = slash ? (size_t)(slash - s.p) : s.len;
    /* inet_pton wants a C string; the longest IPv6 text is 45 bytes */
    char text[48];
    if (alen == 0 || alen >= sizeof text || memchr(s.p, 0, alen))
        return NET_CIDR_BAD_ADDRESS;
    memcpy(text, s.p, alen);
    text[alen] = 0;
    uint8_t raw[16];
    unsigned width;
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, raw) == 1) {
        net_addr_from_ipv4(&out->addr, raw);
        width = 32;
    } else if (inet_pton(AF_INET6, text, raw) == 1) {
        net_addr_from_ipv6(&out->addr, raw);
        width = 128;
    } else {
        return NET_CIDR_BAD_ADDRESS;
    }
    int prefix = (int)width;
    if (slash) {
        prefix = parse_prefix((struct slice){slash + 1, s.len - alen - 1}, width);
        if (prefix < 0)
            return NET_CIDR_BAD_PREFIX;
    }
    out->prefix = (unsigned)prefix + (128 - width);
    for (unsigned bit = out->prefix; bit < 128; bit++)
        if (out->addr.b[bit / 8] & (0x80u >> (bit % 8)))
            return NET_CIDR_HOST_BITS;
    return NET_CIDR_OK;
}

const char *net_cidr_parse_reason(enum net_cidr_parse rc)
{
    switch (rc) {
    case NET_CIDR_OK:
        return "ok";
    case NET_CIDR_BAD_ADDRESS:
        return "not an IPv4 or IPv6 address";
    case NET_CIDR_BAD_PREFIX:
        return "prefix must be 0 to 32 for IPv4, 0 to 128 for IPv6";
    case NET_CIDR_HOST_BITS:
        return "address has bits set past the prefix";
    }
    return "invalid";
}

bool net_cidr_contains(const struct net_cidr *c, const struct net_addr *a)
{
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr.b, a->b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (c->addr.b[full] & mask) == (a->b[full] & mask);
}

/* Would a connection to addr arrive on this host? Our own sockets are all
 * bound to such addresses, so two of them with one port are one socket as
 * far as a client is concerned: a socket bound to 0.0.0.0 answers on
 * 127.0.0.2 and on the LAN address, and one bound to 127.0.0.1 answers a
 * connect to 0.0.0.0. Matching on "this host + port" errs towards refusing. */
static bool is_this_host(const struct net_egress_policy *p, const struct net_addr *addr)
{
    enum net_addr_class k = net_addr_classify(addr);
    if (k == NET_ADDR_LOOPBACK || k == NET_ADDR_UNSPECIFIED)
        return true;
    for (size_t i = 0; i < p->nlocal; i++)
        if (net_addr_eq(&p->local[i], addr))
            return true;
    for (size_t i = 0; i < p->nself; i++)
        if (net_addr_eq(&p->self[i].addr, addr))
            return true;
    return false;
}

enum net_egress net_egress_decide(const struct net_egress_policy *p, const struct net_endpoint *dst)
{
    for (size_t i = 0; i < p->nself; i++)
        if (p->self[i].port == dst->port && is_this_host(p, &dst->addr))
            return NET_EGRESS_SELF;
    if (p->allow_private)
        return NET_EGRESS_ALLOWED;
    /* This host's own LAN address is loopback in all but name: the kernel
     * delivers it locally, past any firewall rule on the wire. */
    if (net_addr_classify(&dst->addr) == NET_ADDR_GLOBAL && !is_this_host(p, &dst->addr))
        return NET_EGRESS_ALLOWED;
    for (size_t i = 0; i < p->nallow; i++)
        if (net_cidr_contains(&p->allow[i], &dst->addr))
            return NET_EGRESS_ALLOWED;
    return NET_EGRESS_PRIVATE;
}
