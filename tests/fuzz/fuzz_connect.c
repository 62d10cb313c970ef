/* libFuzzer: what reaches idemcache's Connect code from outside: a GET
 * query (parameters, percent and base64 decoding) and a descriptor set
 * (the protobuf wire reader). The same input is used as both. */
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
