/* The Content-Encoding reader (RFC 9110 §8.4), on the list parser. */
#include "http/coding.h"
#include "http/chars.h"

struct http_coding_iter http_codings_begin(const struct http_field *fields, unsigned n)
{
    /* no fields may come as NULL: NULL + 0 is undefined */
    const struct http_field *end = n ? fields + n : fields;
    return (struct http_coding_iter){fields, end, http_list_begin((struct slice){"", 0})};
}

struct http_coding_iter http_codings_of(struct slice value)
{
    return (struct http_coding_iter){NULL, NULL, http_list_begin(value)};
}

enum http_coding_rc http_coding_next(struct http_coding_iter *it, struct slice *coding)
{
    for (;;) {
        struct slice el;
        int rc = http_list_next(&it->list, &el);
        if (rc < 0)
            return HTTP_CODING_MALFORMED;
        if (rc > 0) {
            if (!http_is_token(el))
                return HTTP_CODING_MALFORMED;
            *coding = el;
            return HTTP_CODING_NEXT;
        }
        while (it->next_field < it->end && !slice_case_eq(it->next_field->name, "content-encoding"))
            it->next_field++;
        if (it->next_field >= it->end)
            return HTTP_CODING_END;
        it->list = http_list_begin(it->next_field->value);
        it->next_field++;
    }
}
