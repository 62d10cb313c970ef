/* IP addresses as a forward proxy must judge them: which special range an
 * address is in, CIDR blocks, and whether a client may make us connect to
 * a destination. Pure: no sockets, no resolver; the server converts the
 * sockaddr it is about to connect to and asks here.
 *
 * Every address is held in its IPv6 form; an IPv4 address is the
 * IPv4-mapped ::ffff:a.b.c.d (RFC 4291 §2.5.5.2), so "127.0.0.1" and
 * "::ffff:127.0.0.1" are one address and one rule covers both. */
#ifndef IDEM_NETADDR_H
#define IDEM_NETADDR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "http/slice.h"

struct net_addr {
    uint8_t b[16]; /* network byte order, IPv6 form */
};

/* A block: addresses whose first `prefix` bits (of the 128) equal addr's.
 * An IPv4 /n is held as /96+n. */
struct net_cidr {
    struct net_addr addr;
    unsigned prefix;
};

struct net_endpoint {
    struct net_addr addr;
    uint16_t port;
};

void net_addr_from_ipv4(struct net_addr *a, const uint8_t v4[4]);
void net_addr_from_ipv6(struct net_addr *a, const uint8_t v6[16]);
bool net_addr_is_ipv4(const struct net_addr *a);
bool net_addr_eq(const struct net_addr *a, const struct net_addr *b);

/* Would two listening sockets on these endpoints take each other's
 * connections? The same port (0, "any free port", never clashes) and the
 * same address, or one of them the wildcard that covers the other:
 * 0.0.0.0 covers every IPv4 address, :: every address (a dual-stack
 * socket, Linux's default, also takes IPv4). */
bool net_endpoints_overlap(const struct net_endpoint *a, const struct net_endpoint *b);

/* The ranges a proxy reachable by untrusted clients refuses by default:
 * they lead to this host or its link, not to "the Internet". */
enum net_addr_class {
    NET_ADDR_GLOBAL,      /* anything else, RFC 1918 / ULA included */
    NET_ADDR_LOOPBACK,    /* 127.0.0.0/8 (RFC 1122 §3.2.1.3), ::1 (RFC 4291 §2.5.3) */
    NET_ADDR_LINK_LOCAL,  /* 169.254.0.0/16 (RFC 3927), fe80::/10 (RFC 4291 §2.5.6) */
    NET_ADDR_UNSPECIFIED, /* 0.0.0.0/8 (RFC 1122 §3.2.1.3: "this host"), :: (RFC 4291 §2.5.2) */
};
enum net_addr_class net_addr_classify(const struct net_addr *a);
const char *net_addr_class_name(enum net_addr_class k);

enum net_cidr_parse {
    NET_CIDR_OK,
    NET_CIDR_BAD_ADDRESS, /* not a dotted quad or an RFC 4291 §2.2 text address */
    NET_CIDR_BAD_PREFIX,  /* not 0..32 (IPv4) or 0..128 (IPv6) in plain decimal */
    NET_CIDR_HOST_BITS,   /* bits set past the prefix: "10.0.0.1/8" is likely a typo */
};
/* "ADDR" (one address) or "ADDR/PREFIX". Never reads past s.len. */
enum net_cidr_parse net_cidr_parse(struct slice s, struct net_cidr *out);
const char *net_cidr_parse_reason(enum net_cidr_parse rc);
bool net_cidr_contains(const struct net_cidr *c, const struct net_addr *a);

/* Who a forward proxy may connect to on a client's behalf. Arrays are
 * borrowed; all may be empty. */
struct net_egress_policy {
    const struct net_endpoint *self; /* our listen and admin sockets */
    size_t nself;
    const struct net_addr *local; /* this host's interface addresses */
    size_t nlocal;
    bool allow_private;           /* loopback, link-local, unspecified and this
                                     host's own addresses allowed */
    const struct net_cidr *allow; /* allowed even when private */
    size_t nallow;
};

enum net_egress {
    NET_EGRESS_ALLOWED,
    NET_EGRESS_SELF,    /* one of our own sockets: never, whatever allow says */
    NET_EGRESS_PRIVATE, /* a refused range or this host, in no allow block */
};
enum net_egress net_egress_decide(const struct net_egress_policy *p,
                                  const struct net_endpoint *dst);

#endif
