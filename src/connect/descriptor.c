/* The protobuf wire format, read just far enough to find side-effect-free
 * unary methods in a FileDescriptorSet (google/protobuf/descriptor.proto):
 *
 *   FileDescriptorSet     1: file (FileDescriptorProto, repeated)
 *   FileDescriptorProto   2: package, 6: service (repeated)
 *   ServiceDescriptorProto 1: name, 2: method (repeated)
 *   MethodDescriptorProto 1: name, 4: options, 5: client_streaming,
 *                         6: server_streaming
 *   MethodOptions         34: idempotency_level (1 = NO_SIDE_EFFECTS)
 *
 * Everything else is skipped by wire type; a truncated or impossible
 * field refuses the whole file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "connect/connect.h"

struct reader {
    const unsigned char *p, *end;
};

struct field {
    uint32_t number;
    int type;
    uint64_t varint;      /* type 0 */
    struct reader nested; /* type 2 */
};

static int read_varint(struct reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p == r->end)
            return -1;
        unsigned char b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* 1: a field read; 0: end of message; -1: malformed. */
static int next_field(struct reader *r, struct field *f)
{
    if (r->p == r->end)
        return 0;
    uint64_t key;
    if (read_varint(r, &key) < 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return -1;
    f->number = (uint32_t)(key >> 3);
    f->type = (int)(key & 7);
    switch (f->type) {
    case 0:
        return read_varint(r, &f->varint) < 0 ? -1 : 1;
    case 1:
        if (r->end - r->p < 8)
            return -1;
        r->p += 8;
        return 1;
    case 5:
        if (r->end - r->p < 4)
            return -1;
        r->p += 4;
        return 1;
    case 2: {
        uint64_t len;
        if (read_varint(r, &len) < 0 || len > (uint64_t)(r->end - r->p))
            return -1;
        f->nested = (struct reader){r->p, r->p + len};
        r->p += len;
        return 1;
    }
    default:
        return -1; /* groups (3, 4) are not used by descriptor.proto */
    }
}

static void add_sorted(struct connect_procedures *p, char *name)
{
    unsigned lo = 0, hi = p->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        int c = strcmp(p->names[mid], name);
        if (c == 0) {
            free(name);
            return;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->names = realloc(p->names, p->cap * sizeof *p->names);
        if (!p->names)
            abort();
    }
    memmove(p->names + lo + 1, p->names + lo, (p->n - lo) * sizeof *p->names);
    p->names[lo] = name;
    p->n++;
}

void connect_procedure_add(struct connect_procedures *p, const char *name, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        abort();
    memcpy(s, name, len);
    s[len] = 0;
    add_sorted(p, s);
}

void connect_procedure_remove(struct connect_procedures *p, const char *name, size_t len)
{
    for (unsigned i = 0; i < p->n; i++)
        if (strlen(p->names[i]) == len && !memcmp(p->names[i], name, len)) {
            free(p->names[i]);
            memmove(p->names + i, p->names + i + 1, (p->n - i - 1) * sizeof *p->names);
            p->n--;
            return;
        }
}

void connect_procedures_free(struct connect_procedures *p)
{
    for (unsigned i = 0; i < p->n; i++)
        free(p->names[i]);
    free(p->names);
    memset(p, 0, sizeof *p);
}

static int method_cacheable(struct reader m, struct reader *name)
{
    struct field f;
    int rc, streaming = 0, level = 0;
    name->p = name->end = NULL;
    while ((rc = next_field(&m, &f)) > 0) {
        if (f.number == 1 && f.type == 2)
            *name = f.nested;
        else if ((f.number == 5 || f.number == 6) && f.type == 0 && f.varint)
            streaming = 1;
        else if (f.number == 4 && f.type == 2) {
            struct field o;
            int orc;
            while ((orc = next_field(&f.nested, &o)) > 0)
                if (o.number == 34 && o.type == 0)
                    level = (int)o.varint;
            if (orc < 0)
                return -1;
        }
    }
    if (rc < 0 || !name->p)
        return -1;
    return !streaming && level == 1;
}

static int read_service(struct connect_procedures *p, struct reader pkg, struct reader s)
{
    struct field f;
    struct reader svc = {NULL, NULL};
    struct reader methods[1024];
    unsigned nm = 0;
    int rc;
    while ((rc = next_field(&s, &f)) > 0) {
        if (f.number == 1 && f.type == 2)
            svc = f.nested;
        else if (f.number == 2 && f.type == 2) {
            if (nm == sizeof methods / sizeof methods[0])
                return -1;
            methods[nm++] = f.nested;
        }
    }
    if (rc < 0 || !svc.p)
        return -1;
    for (unsigned i = 0; i < nm; i++) {
        struct reader name;
        int ok = method_cacheable(methods[i], &name);
        if (ok < 0)
            return -1;
        if (!ok)
            continue;
        size_t pl = (size_t)(pkg.end - pkg.p), sl = (size_t)(svc.end - svc.p),
               ml = (size_t)(name.end - name.p);
        char *full = malloc(pl + sl + ml + 4);
        if (!full)
            abort();
        size_t k = 0;
        full[k++] = '/';
        if (pl) {
            memcpy(full + k, pkg.p, pl);
            k += pl;
            full[k++] = '.';
        }
        memcpy(full + k, svc.p, sl);
        k += sl;
        full[k++] = '/';
        memcpy(full + k, name.p, ml);
        k += ml;
        full[k] = 0;
        add_sorted(p, full);
    }
    return 0;
}

int connect_descriptors_add(struct connect_procedures *p, const unsigned char *buf, size_t len,
                            char *err, size_t errlen)
{
    struct reader set = {buf, buf + len};
    struct field f;
    int rc, files = 0;
    while ((rc = next_field(&set, &f)) > 0) {
        if (f.number != 1 || f.type != 2)
            continue;
        files++;
        struct reader file = f.nested, pkg = {(const unsigned char *)"", NULL};
        pkg.end = pkg.p;
        struct reader services[256];
        unsigned ns = 0;
        struct field g;
        int frc;
        while ((frc = next_field(&file, &g)) > 0) {
            if (g.number == 2 && g.type == 2)
                pkg = g.nested;
            else if (g.number == 6 && g.type == 2 && ns < sizeof services / sizeof services[0])
                services[ns++] = g.nested;
        }
        if (frc < 0)
            rc = -1;
        for (unsigned i = 0; rc >= 0 && i < ns; i++)
            if (read_service(p, pkg, services[i]) < 0)
                rc = -1;
        if (rc < 0)
            break;
    }
    if (rc < 0 || files == 0) {
        snprintf(err, errlen, "%s",
                 rc < 0 ? "not a FileDescriptorSet (malformed protobuf)"
                        : "not a FileDescriptorSet (no file in it)");
        return -1;
    }
    return 0;
}

struct slice connect_procedure_of(struct slice path)
{
    size_t end = path.len, slashes = 0, i = end;
    while (i > 0) {
        i--;
        if (path.p[i] == '/' && ++slashes == 2)
            break;
    }
    if (slashes < 2 || path.p[end - 1] == '/')
        return (struct slice){path.p, 0};
    struct slice proc = {path.p + i, end - i};
    /* "/pkg.Svc/Method": the service part is qualified and not empty */
    const char *mid = memchr(proc.p + 1, '/', proc.len - 1);
    if (mid == proc.p + 1)
        return (struct slice){path.p, 0};
    return proc;
}

int connect_procedure_cacheable(const struct connect_procedures *p, struct slice proc)
{
    if (!p || !proc.len)
        return 0;
    unsigned lo = 0, hi = p->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        const char *name = p->names[mid];
        size_t nl = strlen(name);
        int c = memcmp(name, proc.p, nl < proc.len ? nl : proc.len);
        if (c == 0)
            c = nl < proc.len ? -1 : nl > proc.len ? 1 : 0;
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}
