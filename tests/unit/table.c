#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "table.h"

static void put(char **o, size_t *len, size_t *cap, const char *p, size_t n)
{
    while (*len + n + 1 > *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *o = realloc(*o, *cap);
    }
    memcpy(*o + *len, p, n);
    *len += n;
}

char *table_unescape(const char *s, size_t n, size_t *out_len)
{
    char *o = NULL;
    size_t len = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '{' && n - i > 8 && !memcmp(s + i, "{repeat:", 8)) {
            const char *end = memchr(s + i, '}', n - i);
            const char *body = s + i + 8;
            const char *colon = end;
            while (colon > body && colon[-1] != ':')
                colon--;
            int count = atoi(colon);
            size_t ulen;
            char *unit = table_unescape(body, (size_t)(colon - 1 - body), &ulen);
            for (int k = 0; k < count; k++)
                put(&o, &len, &cap, unit, ulen);
            free(unit);
            i = (size_t)(end - s);
            continue;
        }
        if (s[i] != '\\' || i + 1 >= n) {
            put(&o, &len, &cap, s + i, 1);
            continue;
        }
        char c = s[++i];
        char b;
        if (c == 'r')
            b = '\r';
        else if (c == 'n')
            b = '\n';
        else if (c == 't')
            b = '\t';
        else if (c == 'x' && i + 2 < n) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            b = (char)strtol(hex, NULL, 16);
            i += 2;
        } else
            b = c;
        put(&o, &len, &cap, &b, 1);
    }
    put(&o, &len, &cap, "", 0);
    o[len] = 0;
    *out_len = len;
    return o;
}

int table_load(const char *path, struct table_row **rows)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t l;
    int n = 0, cap = 0;
    *rows = NULL;
    while ((l = getline(&line, &lcap, fp)) > 0) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (line[l - 1] == '\n')
            line[--l] = 0;
        char *t1 = strchr(line, '\t');
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            *rows = realloc(*rows, (size_t)cap * sizeof **rows);
        }
        struct table_row *r = &(*rows)[n++];
        r->status = atoi(line);
        snprintf(r->name, sizeof r->name, "%.*s", (int)(t2 - t1 - 1), t1 + 1);
        r->bytes = table_unescape(t2 + 1, strlen(t2 + 1), &r->len);
    }
    free(line);
    fclose(fp);
    return n;
}

void table_free(struct table_row *rows, int n)
{
    for (int i = 0; i < n; i++)
        free(rows[i].bytes);
    free(rows);
}
