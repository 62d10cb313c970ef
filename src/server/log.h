/* Error log with levels, and the JSON access log (one line per request).
 * Sinks are opened once before workers start; log_reopen (SIGUSR1) points
 * the file sinks at their paths again, for logrotate. */
#ifndef IDEM_LOG_H
#define IDEM_LOG_H
#include <stdint.h>
#include "http/slice.h"

enum { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

int log_level_parse(const char *s);
/* Open sinks: access "stdout" | "off" | path; error "stderr" | path. */
int log_open(const char *access, const char *error, int level, char *err, size_t errlen);
/* --check-config: can the sinks be opened (files are created, as nginx -t
 * does)? 0, or -1 with "log.X: cannot open 'path': why" in err. */
int log_check(const char *access, const char *error, char *err, size_t errlen);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reopen the file sinks at their paths (a rotated file is left behind).
 * Safe while workers log. 0, or -1 when a path cannot be opened (that
 * sink keeps its old file). */
int log_reopen(void);
int log_debug_enabled(void);

struct access_entry {
    struct slice method;
    struct slice target;
    struct slice client;
    int status;
    uint64_t bytes_in;  /* request head + body from the client */
    uint64_t bytes_out; /* response head + body to the client */
    double upstream_ms; /* -1 when the origin was not reached */
    double total_ms;
};

int log_access_enabled(void);
void log_access(const struct access_entry *e);

#endif
