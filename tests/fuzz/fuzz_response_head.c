/* libFuzzer: the response head parser and the framing decision. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "http/http.h"

static struct http_response res;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http_limits lim = {65536, 65536, HTTP_FIELDS_MAX};
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    int rc = http_parse_response((const char *)buf, size, &lim, &res);
    if (rc == HTTP_PARSE_OK) {
        if (res.head_len > size || res.status < 100 || res.status > 599)
            abort();
        enum http_body_kind k = http_response_body_kind(&res, size & 1);
        if (res.has_content_length && res.has_transfer_encoding)
            abort(); /* must have been refused */
        if ((size & 1) && k != HTTP_BODY_NONE)
            abort(); /* a response to HEAD never has a body */
    } else if (rc != HTTP_PARSE_MORE && rc != 502) {
        abort();
    }
    free(buf);
    return 0;
}
