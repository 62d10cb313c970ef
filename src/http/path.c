/* RFC 3986 §6.2.2: syntax-based normalization of a path, for comparison
 * only (the request goes upstream as it came). */
#include <string.h>
#include "http/path.h"
#include "http/chars.h"

/* RFC 3986 §2.3: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" */
static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* -1 when a '%' starts no escape. */
static long percent_normalize(struct slice in, char *out)
{
    static const char upper[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.p[i];
        if (c != '%') {
            out[n++] = (char)c;
            continue;
        }
        int hi = i + 2 < in.len ? http_hexval((unsigned char)in.p[i + 1]) : -1;
        int lo = hi >= 0 ? http_hexval((unsigned char)in.p[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return -1;
        unsigned char v = (unsigned char)(hi * 16 + lo);
        if (unreserved(v)) {
            out[n++] = (char)v;
        } else {
            out[n++] = '%';
            out[n++] = upper[hi];
            out[n++] = upper[lo];
        }
        i += 2;
    }
    return (long)n;
}

static int is_dot(const char *s, size_t len)
{
    return len == 1 && s[0] == '.';
}

static int is_dot_dot(const char *s, size_t len)
{
    return len == 2 && s[0] == '.' && s[1] == '.';
}

/* §5.2.4 on a path that begins with '/', in place: a stack of segments in
 * buf[0, w), read from buf[r, len); w never passes r, since each segment
 * written was read first. A "." or ".." last segment leaves a trailing '/'
 * (as the RFC's steps B and C do). */
static size_t remove_dot_segments(char *buf, size_t len)
{
    size_t w = 0, r = 0;
    while (r < len) {
        /* buf[r] == '/': the segment runs to the next '/' or the end */
        size_t s = r + 1, e = s;
        while (e < len && buf[e] != '/')
            e++;
        int last = e == len;
        if (is_dot(buf + s, e - s)) {
            if (last)
                buf[w++] = '/';
        } else if (is_dot_dot(buf + s, e - s)) {
            while (w > 0 && buf[w - 1] != '/')
                w--;
            if (w > 0)
                w--; /* and the '/' before the popped segment */
            if (last)
                buf[w++] = '/';
        } else {
            memmove(buf + w, buf + r, e - r);
            w += e - r;
        }
        r = e;
    }
    return w;
}

enum http_path_rc http_path_normalize(struct slice path, char *out, size_t *len)
{
    long n = percent_normalize(path, out);
    if (n < 0)
        return HTTP_PATH_BAD_ESCAPE;
    *len = n > 0 && out[0] == '/' ? remove_dot_segments(out, (size_t)n) : (size_t)n;
    return HTTP_PATH_OK;
}

/* Decode every escape until none is left, in one pass: `out` is a stack
 * that never holds a complete escape, so a decoded byte can only complete
 * one ending at the top ("%2561" -> "%61" -> "a"). Linear time, where
 * decoding the whole path again per level would be quadratic in a long
 * "%252525..." chain. */
static size_t percent_decode_all(struct slice in, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < in.len; i++) {
        out[n++] = in.p[i];
        while (n >= 3 && out[n - 3] == '%') {
            int hi = http_hexval((unsigned char)out[n - 2]);
            int lo = http_hexval((unsigned char)out[n - 1]);
            if (hi < 0 || lo < 0)
                break;
            out[n - 3] = (char)(hi * 16 + lo);
            n -= 2;
        }
    }
    return n;
}

/* The segment steps of http_path_loose on buf[0, len), which begins with
 * '/', in place: w never passes the '/' before the segment being read. */
static size_t loose_segments(char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\\')
            buf[i] = '/';
    size_t w = 0, r = 0;
    int trailing = 0;
    while (r < len) {
        size_t s = r + 1, e = s;
        while (e < len && buf[e] != '/')
            e++;
        const char *semi = memchr(buf + s, ';', e - s);
        size_t k = semi ? (size_t)(semi - (buf + s)) : e - s;
        trailing = k == 0 || is_dot(buf + s, k) || is_dot_dot(buf + s, k);
        if (is_dot_dot(buf + s, k)) {
            while (w > 0 && buf[w - 1] != '/')
                w--;
            if (w > 0)
                w--;
        } else if (k && !is_dot(buf + s, k)) {
            buf[w++] = '/';
            memmove(buf + w, buf + s, k);
            w += k;
        }
        r = e;
    }
    if (trailing || w == 0)
        buf[w++] = '/';
    return w;
}

void http_path_loose(struct slice path, char *out, size_t *len)
{
    size_t n = percent_decode_all(path, out);
    *len = n > 0 && (out[0] == '/' || out[0] == '\\') ? loose_segments(out, n) : n;
}

int http_path_is_plain(struct slice path)
{
    if (!path.len || path.p[0] != '/')
        return 0;
    for (size_t i = 0; i < path.len; i++) {
        char ch = path.p[i];
        if (ch == '%' || ch == ';' || ch == '\\')
            return 0;
        if (ch == '/' && i + 1 < path.len && (path.p[i + 1] == '/' || path.p[i + 1] == '.'))
            return 0;
    }
    return 1;
}
