/* libFuzzer: what reaches idemcache's Connect code from outside: a GET
 * query (parameters, percent and base64 decoding) and a descriptor set
 * (the protobuf wire reader). The same input is used as both. A query
 * read as a Connect GET also gives the rest that its key keeps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "connect/connect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice q = {(const char *)data, size};
    struct connect_get g;
    if (connect_get_parse(q, &g) == 0) {
        size_t len = 0;
        char *m = connect_get_message(&g, 1 << 16, &len);
        if (m && len > g.message.len)
            abort(); /* decoding only ever shrinks */
        free(m);
        /* the rest of the query holds no Connect parameter: its own rest
         * is itself, and it is never longer than the query */
        char *rest = malloc(size + 1), *again = malloc(size + 1);
        size_t n = connect_query_rest(q, rest);
        if (n > size || (n && rest[0] == '&'))
            abort();
        size_t n2 = connect_query_rest((struct slice){rest, n}, again);
        if (n2 != n || memcmp(rest, again, n))
            abort();
        free(rest);
        free(again);
    }
    struct slice codec;
    connect_classify((struct slice){"GET", 3}, (struct slice){"", 0}, q, &codec);
    struct connect_procedures p = {0};
    char err[128];
    if (connect_descriptors_add(&p, data, size, err, sizeof err) == 0)
        for (unsigned i = 0; i < p.n; i++)
            if (p.names[i][0] != '/' ||
                !connect_procedure_cacheable(&p, (struct slice){p.names[i], strlen(p.names[i])}))
                abort();
    connect_procedures_free(&p);
    return 0;
}
