/* Structured Field Dictionaries (RFC 9651 §3.2, §4.2.2), read member by
 * member without allocation: what targeted cache control (RFC 9213 §2.1)
 * needs. Pure; slices point into the input. */
#ifndef IDEM_HTTP_SF_H
#define IDEM_HTTP_SF_H
#include <stdint.h>
#include "http/slice.h"

enum sf_type {
    SF_INTEGER,    /* .integer */
    SF_DECIMAL,    /* .integer holds the value times 1000 */
    SF_STRING,     /* .raw: the content between the quotes, escapes as sent */
    SF_TOKEN,      /* .raw */
    SF_BYTES,      /* .raw: the base64 between the colons */
    SF_BOOLEAN,    /* .integer 0 or 1 */
    SF_DATE,       /* .integer: seconds since the epoch (RFC 9651 §3.3.7) */
    SF_DISPLAY,    /* .raw: the content between the quotes, %xx as sent */
    SF_INNER_LIST, /* .raw: the whole "( ... )", already checked */
};

struct sf_item {
    enum sf_type type;
    int64_t integer;
    struct slice raw;
};

/* A member: its key, its value (Boolean true when the key stands alone),
 * and its parameters as sent (";a=1;b", checked, to be ignored or read). */
struct sf_member {
    struct slice key;
    struct sf_item value;
    struct slice params;
};

enum sf_next {
    SF_END = 0,    /* no more members: the whole input was valid */
    SF_MEMBER = 1, /* *m holds the next member */
    SF_ERROR = -1, /* a parse error (§4.2: the whole field must be ignored) */
};

struct sf_dict_iter {
    struct slice in;
    size_t pos;
    int started;
};

struct sf_dict_iter sf_dict_begin(struct slice field_value);
/* Members in order; a key may repeat, and the last one wins (§3.2): the
 * caller applies members in order, each overwriting. A field is valid
 * only if iteration ends in SF_END: check before acting on any member. */
enum sf_next sf_dict_next(struct sf_dict_iter *it, struct sf_member *m);

#endif
