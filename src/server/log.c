/* Logging sinks. Each line is formatted into a stack buffer and written
 * with one fwrite, so lines from different workers never interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
#include "server/log.h"

static FILE *access_fp;
static FILE *error_fp;
static int max_level = LOG_INFO;
/* The paths of file sinks ("" for stdout/stderr), for log_reopen. */
static char access_path[512];
static char error_path[512];

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, level_names[i]))
            return i;
    return -1;
}

static FILE *open_sink(const char *what, char *err, size_t errlen, const char *name)
{
    if (!strcmp(what, "stdout"))
        return stdout;
    if (!strcmp(what, "stderr"))
        return stderr;
    FILE *fp = fopen(what, "a");
    if (!fp)
        snprintf(err, errlen, "log.%s: cannot open '%s': %s", name, what, strerror(errno));
    else
        setvbuf(fp, NULL, _IOLBF, 0);
    return fp;
}

static void remember(char *slot, size_t cap, const char *what)
{
    if (!strcmp(what, "stdout") || !strcmp(what, "stderr") || !strcmp(what, "off"))
        slot[0] = 0;
    else
        snprintf(slot, cap, "%s", what);
}

int log_open(const char *access, const char *error, int level, char *err, size_t errlen)
{
    max_level = level;
    remember(access_path, sizeof access_path, access);
    remember(error_path, sizeof error_path, error);
    setvbuf(stdout, NULL, _IOLBF, 0);
    error_fp = open_sink(error, err, errlen, "error");
    if (!error_fp)
        return -1;
    if (!strcmp(access, "off")) {
        access_fp = NULL;
        return 0;
    }
    access_fp = open_sink(access, err, errlen, "access");
    return access_fp ? 0 : -1;
}

int log_check(const char *access, const char *error, char *err, size_t errlen)
{
    const char *paths[2] = {error, access};
    const char *names[2] = {"error", "access"};
    for (int i = 0; i < 2; i++) {
        if (!strcmp(paths[i], "off"))
            continue;
        FILE *fp = open_sink(paths[i], err, errlen, names[i]);
        if (!fp)
            return -1;
        if (fp != stdout && fp != stderr)
            fclose(fp);
    }
    return 0;
}

/* Point fp at a fresh open of path. dup2 swaps the descriptor under the
 * FILE in one step, so workers writing at that moment never see a closed
 * stream: each line lands whole in the old file or the new one. */
static int reopen_one(FILE *fp, const char *path)
{
    if (!fp || !path[0])
        return 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    fflush(fp);
    int rc = dup2(fd, fileno(fp)) < 0 ? -1 : 0;
    close(fd);
    return rc;
}

int log_reopen(void)
{
    int rc = reopen_one(access_fp, access_path);
    if (reopen_one(error_fp, error_path) < 0)
        rc = -1;
    return rc;
}

int log_debug_enabled(void)
{
    return max_level >= LOG_DEBUG;
}

void log_msg(int level, const char *fmt, ...)
{
    if (level > max_level)
        return;
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, "[%s] ", level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n += m < 0 ? 0 : (m >= (int)sizeof line - n - 1 ? (int)sizeof line - n - 2 : m);
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, error_fp ? error_fp : stderr);
    fflush(error_fp ? error_fp : stderr);
}

int log_access_enabled(void)
{
    return access_fp != NULL;
}

/* JSON string body: escape quotes, backslashes and control bytes. */
static size_t json_str(char *out, size_t cap, struct slice s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < s.len && n + 7 < cap; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            n += (size_t)snprintf(out + n, cap - n, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
        } else {
            out[n++] = (char)c;
        }
    }
    return n;
}

void log_access(const struct access_entry *e)
{
    if (!access_fp)
        return;
    char line[4096], t[2048], m[64], ip[80];
    t[json_str(t, sizeof t, e->target)] = 0;
    m[json_str(m, sizeof m, e->method)] = 0;
    ip[json_str(ip, sizeof ip, e->client)] = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(line, sizeof line,
                     "{\"ts\":%lld.%03ld,\"client\":\"%s\",\"method\":\"%s\",\"target\":\"%s\","
                     "\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"upstream_ms\":%.3f,"
                     "\"total_ms\":%.3f}\n",
                     (long long)ts.tv_sec, ts.tv_nsec / 1000000, ip, m, t, e->status,
                     (unsigned long long)e->bytes_in, (unsigned long long)e->bytes_out,
                     e->upstream_ms, e->total_ms);
    if (n > 0 && n < (int)sizeof line)
        fwrite(line, 1, (size_t)n, access_fp);
}
