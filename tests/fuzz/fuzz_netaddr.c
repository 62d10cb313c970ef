/* libFuzzer: CIDR text as forward.allow gives it. A parsed block must hold
 * its own address, keep its prefix in range and have no bits past it; the
 * classification and the egress decision must take any address, and a
 * listener address must clash with itself and with the wildcard. */
#include <stdint.h>
#include <stdlib.h>
#include "http/netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct net_cidr c;
    enum net_cidr_parse rc = net_cidr_parse((struct slice){(const char *)data, size}, &c);
    if (rc != NET_CIDR_OK)
        return 0;
    if (c.prefix > 128 || !net_cidr_contains(&c, &c.addr))
        abort();
    if (net_addr_is_ipv4(&c.addr) && c.prefix < 96)
        abort(); /* an IPv4 block never spills into IPv6 */
    struct net_endpoint self = {c.addr, 443};
    struct net_egress_policy p = {&self, 1, &c.addr, 1, false, &c, 1};
    struct net_endpoint dst = {c.addr, 443};
    if (net_egress_decide(&p, &dst) != NET_EGRESS_SELF)
        abort(); /* our own socket is refused whatever allow says */
    dst.port = 80;
    enum net_egress v = net_egress_decide(&p, &dst);
    if (v != NET_EGRESS_ALLOWED)
        abort(); /* in an allowed block, on another port */
    (void)net_addr_class_name(net_addr_classify(&c.addr));
    /* listeners: an address clashes with itself and under ::, never on port 0 */
    struct net_endpoint any6 = {{{0}}, 443};
    if (!net_endpoints_overlap(&self, &self) || !net_endpoints_overlap(&self, &any6) ||
        !net_endpoints_overlap(&any6, &self) ||
        net_endpoints_overlap(&self, &dst) != net_endpoints_overlap(&dst, &self))
        abort();
    self.port = dst.port = 0;
    if (net_endpoints_overlap(&self, &dst))
        abort();
    return 0;
}
