/* The TLS contexts (OpenSSL 3 SSL_CTX), built once from the configuration
 * before the workers start and shared read-only by them: one for the
 * client listeners, one toward the origin, one toward the reverse peer.
 * Connections get their SSL objects from these (tls.c). */
#ifndef IDEM_TLS_CTX_H
#define IDEM_TLS_CTX_H
#include <stddef.h>
#include <openssl/ssl.h>
#include "server/config.h"

struct tls_contexts {
    SSL_CTX *server;   /* tls.listen given: certs by SNI, ALPN http/1.1, tickets */
    SSL_CTX *upstream; /* upstream is https:// */
    SSL_CTX *peer;     /* peer.url is https:// */
};

/* Build what the configuration asks for (NULL members for what it does
 * not). 0, or -1 with "FILE:LINE: FIELD: reason" (or "--flag: reason")
 * in err, naming the certificate, key or CA that cannot be used, and a
 * key that does not match its certificate. */
int tls_contexts_build(const struct config *cfg, struct tls_contexts *out, char *err,
                       size_t errlen);
void tls_contexts_free(struct tls_contexts *t);

#endif
