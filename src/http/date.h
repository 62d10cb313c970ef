/* HTTP-date (RFC 9110 §5.6.7): parse all three historical forms, format
 * IMF-fixdate. Pure: times are seconds since the epoch, passed in. */
#ifndef IDEM_HTTP_DATE_H
#define IDEM_HTTP_DATE_H
#include <stdint.h>
#include "http/slice.h"

#define HTTP_DATE_INVALID INT64_MIN
#define HTTP_DATE_LEN     29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Seconds since the epoch, or HTTP_DATE_INVALID. */
int64_t http_date_parse(struct slice s);
/* Writes exactly HTTP_DATE_LEN bytes (no NUL). */
void http_date_format(int64_t t, char out[HTTP_DATE_LEN]);

#endif
