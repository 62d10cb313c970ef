/* Which requests the cache may answer beyond GET and HEAD (seed 003): the
 * configured rules (first match wins) and the naming convention that keeps
 * mutations out whatever the rules say. Pure: bytes in, verdicts out. */
#ifndef IDEM_RULES_H
#define IDEM_RULES_H
#include <stdbool.h>
#include <stdint.h>
#include "http/http.h"

#define RULES_MAX         64
#define RULE_PATH_MAX     256
#define RULE_HEADER_MAX   256
#define RULE_NAME_MAX     64
#define NAMING_PREFIX_MAX 32
#define NAMING_PREFIX_LEN 32

/* Method bits for rule.methods. */
enum {
    RM_GET = 1 << 0,
    RM_HEAD = 1 << 1,
    RM_POST = 1 << 2,
    RM_PUT = 1 << 3,
    RM_DELETE = 1 << 4,
    RM_PATCH = 1 << 5,
    RM_QUERY = 1 << 6,
    RM_OPTIONS = 1 << 7,
};

struct rule {
    char path[RULE_PATH_MAX];           /* glob on the path: '*' any run, '?' one byte */
    unsigned methods;                   /* RM_* bits; 0: every method */
    char header_name[RULE_NAME_MAX];    /* context header; "" when none */
    char header_value[RULE_HEADER_MAX]; /* "" : present with any value */
    bool cache;
    uint64_t ttl;                      /* ms; 0: only the origin's freshness */
    bool normalize;                    /* decode Content-Encoding, canonical JSON */
    char key_headers[RULE_HEADER_MAX]; /* "Accept, X-Tenant": a Vary-style list */
    unsigned line;                     /* where it was written, for messages */
};

/* RM_* bit of a method name, 0 when it has none. */
unsigned rules_method_bit(struct slice method);

/* Glob match of a whole string. */
int rules_glob(const char *pattern, struct slice s);

/* The first rule that applies to this request, or NULL. `path` is the
 * normal form of the target's path without the query (http_path_normalize),
 * `loose` its loose form (http_path_loose). A `cache: false` rule applies
 * when its glob matches `path` or, without case, `loose`; a `cache: true`
 * rule only when it matches both, so the loose form never widens it. */
const struct rule *rules_match(const struct rule *rules, unsigned n, struct slice method,
                               struct slice path, struct slice loose,
                               const struct http_field *fields, unsigned nfields);

/* Does the last path segment name a mutation ("setUser", "delete_item",
 * "AddOne")? A prefix counts when the name ends there or goes on with a
 * new word (an upper-case letter, a digit, '_', '-' or '.'): "settings"
 * and "address" are not mutations. Case-insensitive prefix. */
int rules_never_cache_name(struct slice path, const char (*prefixes)[NAMING_PREFIX_LEN],
                           unsigned n);

#endif
