/* Connect RPC awareness (connect-protocol.md): which procedures are free of
 * side effects, from a protobuf descriptor set, and what a unary call
 * carries, as a POST body or in a GET query. Pure: bytes in, verdicts out. */
#ifndef IDEM_CONNECT_H
#define IDEM_CONNECT_H
#include <stddef.h>
#include "http/http.h"

/* Procedures ("/pkg.Service/Method") calls to which may be cached. */
struct connect_procedures {
    char **names; /* sorted, for bsearch */
    unsigned n, cap;
};

/* Add the unary methods of a binary FileDescriptorSet (buf build -o x.binpb,
 * protoc --descriptor_set_out) whose MethodOptions.idempotency_level is
 * NO_SIDE_EFFECTS. 0, or -1 with a reason in err. Unknown fields are
 * skipped by wire type. */
int connect_descriptors_add(struct connect_procedures *p, const unsigned char *buf, size_t len,
                            char *err, size_t errlen);
/* Add or remove one name by hand (config lists). */
void connect_procedure_add(struct connect_procedures *p, const char *name, size_t len);
void connect_procedure_remove(struct connect_procedures *p, const char *name, size_t len);
void connect_procedures_free(struct connect_procedures *p);

/* The procedure a path names: its last two segments, "/pkg.Svc/Method"
 * (a server may mount its routes under a prefix). Empty when the path
 * cannot be one. */
struct slice connect_procedure_of(struct slice path);
int connect_procedure_cacheable(const struct connect_procedures *p, struct slice procedure);

enum connect_call_kind {
    CONNECT_NONE,   /* not Connect, as far as a cache can tell */
    CONNECT_UNARY,  /* POST application/proto or application/json */
    CONNECT_GET,    /* GET whose query connect_get_parse accepts */
    CONNECT_STREAM, /* application/connect+*, application/grpc*: pass through */
};

/* Classify a request's Content-Type (POST) or query (GET). `codec` is
 * "proto", "json" or another codec name. */
enum connect_call_kind connect_classify(struct slice method, struct slice content_type,
                                        struct slice query, struct slice *codec);

/* The query of a Connect GET: parameters in any order, unknown ones
 * allowed (connect_query_rest keeps them for the key). 0, or -1 when it is
 * no Connect GET a cache can key by its message: encoding or message
 * missing, a Connect parameter repeated, or spelled so that the server
 * might read it otherwise than we do (a percent-encoded parameter name,
 * encoding other than "proto"/"json", base64 other than "1", connect other
 * than "v1", an escape in encoding or compression). The server decodes the
 * query form-style and takes a parameter's first value; a cache that reads
 * it another way would key one call and store the answer to another. */
struct connect_get {
    struct slice encoding, message, compression;
    int base64;
};
int connect_get_parse(struct slice query, struct connect_get *out);

/* The query without its Connect parameters (connect, encoding, message,
 * base64, compression): the others as sent, in their order, joined by '&'
 * (empty ones, "a&&b", dropped: a form decoder skips them).
 * They are the application's (a user, a tenant ...), so a key keeps them.
 * out holds query.len bytes; returns the length written. */
size_t connect_query_rest(struct slice query, char *out);

/* The message bytes of a GET: percent-decoding (and '+' as space), then
 * base64url with or without padding when base64=1. malloc'd; NULL when
 * malformed or longer than max. */
char *connect_get_message(const struct connect_get *g, size_t max, size_t *len);

#endif
