/* exchange.c, the request an exchange owns: a copy made from slices
 * anywhere (exchange_copy_request, for h2 HEADERS) outlives the buffers
 * it came from, and takes a body read whole (exchange_set_body) like a
 * copy of a parsed HTTP/1 head does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "server/server.h"

/* A slice into its own heap block, as nghttp2 hands each name and value. */
static struct slice dup_slice(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n ? n : 1);
    memcpy(p, s, n);
    return (struct slice){p, n};
}

static void test_copy_from_slices(void **st)
{
    (void)st;
    struct srv_worker w = {0};
    struct conninfo ci = {.ip = "127.0.0.1"};
    struct exchange *ex = exchange_new(&w, &h1_front, NULL, &ci);
    assert_non_null(ex);
    struct http_field fields[3] = {
        {dup_slice("host"), dup_slice("a.example"), HF_HOST},
        {dup_slice("accept"), dup_slice("application/json"), HF_OTHER},
        {dup_slice("x-empty"), dup_slice(""), HF_OTHER},
    };
    struct http_request r = {
        .method = dup_slice("POST"),
        .target = dup_slice("/rpc?x=1"),
        .host = dup_slice("a.example"),
        .authority = dup_slice("a.example"),
        .path = dup_slice("/rpc?x=1"),
        .scheme = dup_slice("https"),
        .form = HTTP_TARGET_ABSOLUTE,
        .minor = 1,
        .body = HTTP_BODY_STREAM,
        .nfields = 3,
        .fields_cap = 3,
        .fields = fields,
    };
    assert_int_equal(exchange_copy_request(ex, &r), 0);
    /* the sources go, as a stream's HEADERS buffers do */
    struct slice *const top[] = {&r.method, &r.target, &r.host, &r.authority, &r.path, &r.scheme};
    for (unsigned i = 0; i < 6; i++)
        memset((char *)top[i]->p, 'Z', top[i]->len), free((char *)top[i]->p);
    for (unsigned i = 0; i < 3; i++) {
        memset((char *)fields[i].name.p, 'Z', fields[i].name.len);
        memset((char *)fields[i].value.p, 'Z', fields[i].value.len);
        free((char *)fields[i].name.p);
        free((char *)fields[i].value.p);
    }
    const struct http_request *own = ex->req;
    assert_true(slice_eq(own->method, SLICE_LIT("POST")));
    assert_true(slice_eq(own->target, SLICE_LIT("/rpc?x=1")));
    assert_true(slice_eq(own->authority, SLICE_LIT("a.example")));
    assert_true(slice_eq(own->scheme, SLICE_LIT("https")));
    assert_true(slice_eq(ex->method, SLICE_LIT("POST")));
    assert_int_equal(own->body, HTTP_BODY_STREAM);
    assert_int_equal(own->nfields, 3);
    assert_true(slice_eq(own->fields[1].value, SLICE_LIT("application/json")));
    assert_int_equal(own->fields[0].id, HF_HOST);
    assert_int_equal(own->fields[2].value.len, 0);

    /* the body read whole: a Content-Length of its own, the rest kept */
    assert_int_equal(exchange_set_body(ex, (struct slice){"", 0}, "{\"a\":1}", 7), 0);
    own = ex->req;
    assert_int_equal(own->body, HTTP_BODY_LENGTH);
    assert_int_equal(own->content_length, 7);
    assert_true(slice_eq(own->path, SLICE_LIT("/rpc?x=1")));
    const struct http_field *cl = NULL;
    for (unsigned i = 0; i < own->nfields; i++)
        if (own->fields[i].id == HF_CONTENT_LENGTH)
            cl = &own->fields[i];
    assert_non_null(cl);
    assert_true(slice_eq(cl->value, SLICE_LIT("7")));
    assert_int_equal(ex->collected, COLLECT_COMPLETE);
    assert_memory_equal(ex->col.body.p, "{\"a\":1}", 7);
    exchange_free(&ex);
    assert_null(ex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_from_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
