/* Output buffers: the bytes a producer builds and hands to a write
 * (conn.c) without copying. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/server.h"
#include "server/log.h"
#include "cache/object.h"

void srv_panic(const char *file, int line, const char *what)
{
    log_msg(LOG_ERROR, "assertion failed at %s:%d: %s", file, line, what);
    abort();
}

void outbuf_reserve(struct outbuf *o, size_t n)
{
    if (o->cap - o->len >= n)
        return;
    size_t cap = o->cap ? o->cap : 1024;
    while (cap - o->len < n)
        cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p)
        srv_panic(__FILE__, __LINE__, "out of memory");
    o->p = p;
    o->cap = cap;
}

void outbuf_add(struct outbuf *o, const void *p, size_t n)
{
    outbuf_reserve(o, n);
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

void outbuf_addstr(struct outbuf *o, const char *s)
{
    outbuf_add(o, s, strlen(s));
}

void outbuf_addslice(struct outbuf *o, struct slice s)
{
    outbuf_add(o, s.p, s.len);
}

void outbuf_addu64(struct outbuf *o, uint64_t v)
{
    char tmp[24];
    int i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    outbuf_add(o, tmp + i, sizeof tmp - (size_t)i);
}

void outbuf_addfield(struct outbuf *o, struct slice name, struct slice value)
{
    outbuf_addslice(o, name);
    outbuf_addstr(o, ": ");
    outbuf_addslice(o, value);
    outbuf_addstr(o, "\r\n");
}

void outbuf_endline(struct outbuf *o)
{
    outbuf_addstr(o, "\r\n");
}

char *field_line_end(char *p)
{
    memcpy(p, "\r\n", 3);
    return p + 2;
}

void outbuf_addfieldu64(struct outbuf *o, struct slice name, uint64_t v)
{
    outbuf_addslice(o, name);
    outbuf_addstr(o, ": ");
    outbuf_addu64(o, v);
    outbuf_addstr(o, "\r\n");
}

void outbuf_addstatus(struct outbuf *o, int status, struct slice reason)
{
    outbuf_addstr(o, "HTTP/1.1 ");
    outbuf_addu64(o, (uint64_t)status);
    outbuf_addstr(o, " ");
    outbuf_addslice(o, reason);
    outbuf_addstr(o, "\r\n");
}

void outbuf_addhex(struct outbuf *o, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    int i = sizeof tmp;
    do {
        tmp[--i] = hex[v & 15];
        v >>= 4;
    } while (v);
    outbuf_add(o, tmp + i, sizeof tmp - (size_t)i);
}

void outbuf_printf(struct outbuf *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    outbuf_reserve(o, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(o->p + o->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}
