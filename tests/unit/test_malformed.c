/* The malformed-request table, in process: every row gets its status from
 * the parser and body decoder alone, whatever follows it, and no prefix of
 * a row ever gets a different verdict than the whole row. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "http/http.h"
#include "http/body.h"
#include "table.h"

static const struct http_limits lim = {8192, 65536, 100};
static struct http_field req_fields[HTTP_FIELDS_MAX];
static struct http_request req = {.fields = req_fields, .fields_cap = HTTP_FIELDS_MAX};

/* The status idemcache answers for these bytes: 200 means "forwarded",
 * 1 means "needs more bytes". */
static int verdict(const char *buf, size_t len)
{
    int rc = http_parse_request(buf, len, &lim, &req);
    if (rc == HTTP_PARSE_MORE)
        return 1;
    if (rc != HTTP_PARSE_OK)
        return rc;
    if (req.body == HTTP_BODY_NONE)
        return 200;
    struct http_body_reader br;
    http_body_init(&br, req.body, req.content_length, 65536);
    size_t pos = req.head_len;
    for (;;) {
        size_t used;
        struct slice d;
        enum http_body_rc b = http_body_read(&br, buf + pos, len - pos, &used, &d);
        pos += used;
        if (b == HTTP_BODY_ERROR)
            return 400;
        if (b == HTTP_BODY_DONE)
            return 200;
        if (b == HTTP_BODY_MORE)
            return 1;
    }
}

static void test_table(void **state)
{
    struct table_row *rows;
    int n = table_load("tests/malformed.tsv", &rows);
    assert_true(n >= 100);
    int bad = 0;
    static const char good[] = "GET /good HTTP/1.1\r\nHost: a\r\n\r\n";
    for (int i = 0; i < n; i++) {
        struct table_row *r = &rows[i];
        int v = verdict(r->bytes, r->len);
        if (v != r->status) {
            fprintf(stderr, "row %s: expected %d, got %d\n", r->name, r->status, v);
            bad++;
            continue;
        }
        /* Bad then good in one buffer: the verdict is the bad one. */
        if (r->status != 200) {
            char *both = malloc(r->len + sizeof good);
            memcpy(both, r->bytes, r->len);
            memcpy(both + r->len, good, sizeof good - 1);
            int v2 = verdict(both, r->len + sizeof good - 1);
            if (v2 != r->status) {
                fprintf(stderr, "row %s + good: expected %d, got %d\n", r->name, r->status, v2);
                bad++;
            }
            free(both);
        }
        /* Every prefix: need-more, or already the final verdict. Rows of
         * tens of KiB (limit tests) check both ends in full and a stride in
         * between: all prefixes would be quadratic, minutes under ASan. */
        for (size_t k = 0; k < r->len; k += k < 4096 || k + 4096 > r->len ? 1 : 61) {
            int vp = verdict(r->bytes, k);
            if (vp != 1 && vp != r->status && !(r->status == 200 && vp == 200)) {
                fprintf(stderr, "row %s prefix %zu: got %d\n", r->name, k, vp);
                bad++;
                break;
            }
        }
    }
    printf("malformed table: %d rows checked\n", n);
    table_free(rows, n);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
