/* idemcache: command line. Defaults, then the config file, then flags. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include "server/config.h"
#include "server/tls_ctx.h"
#include "server/log.h"
#include "server/server.h"
#include "cache/store.h"

#define IDEMCACHE_VERSION "0.1.0"

/* One table for getopt, the usage text and the messages about a missing
 * argument, so that the three never disagree. */
enum {
    OPT_LISTEN = 256,
    OPT_UPSTREAM,
    OPT_MODE,
    OPT_CONFIG,
    OPT_WORKERS,
    OPT_CHECK,
    OPT_VERSION,
    OPT_HELP,
    OPT_ACCESS,
    OPT_ADMIN,
    OPT_PEER,
    OPT_PEER_ID,
    OPT_PEER_SECRET,
    OPT_TLS_LISTEN,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_UPSTREAM_CA,
};

static const struct cli_option {
    const char *name;
    int id;
    const char *arg; /* NULL: a flag without argument */
    const char *help;
} cli_options[] = {
    {"listen", OPT_LISTEN, "HOST:PORT", "address to accept clients on (repeatable)"},
    {"tls-listen", OPT_TLS_LISTEN, "HOST:PORT", "address to accept TLS clients on (repeatable)"},
    {"tls-cert", OPT_TLS_CERT, "FILE", "certificate chain (PEM) for --tls-listen"},
    {"tls-key", OPT_TLS_KEY, "FILE", "its private key (PEM)"},
    {"upstream", OPT_UPSTREAM, "URL",
     "origin for reverse mode, e.g. http://127.0.0.1:9000 or https://api.example"},
    {"upstream-ca", OPT_UPSTREAM_CA, "FILE",
     "CA certificates (PEM) for an https upstream (default: the system store)"},
    {"mode", OPT_MODE, "reverse|forward", "reverse proxy (default) or forward proxy"},
    {"config", OPT_CONFIG, "FILE", "YAML configuration (flags override it)"},
    {"workers", OPT_WORKERS, "N", "worker threads (default: one per core)"},
    {"access-log", OPT_ACCESS, "DEST", "stdout, off or a file path"},
    {"admin", OPT_ADMIN, "HOST:PORT", "admin listener: /healthz, /stats, PURGE (off by default)"},
    {"peer", OPT_PEER, "URL",
     "forward mode: the reverse idemcache to speak the digest handshake with (http:// or "
     "https://)"},
    {"peer-id", OPT_PEER_ID, "NAME", "our name at that peer"},
    {"peer-secret", OPT_PEER_SECRET, "FILE", "the secret shared with it"},
    {"check-config", OPT_CHECK, "FILE", "validate a configuration file, open its logs, and exit"},
    {"version", OPT_VERSION, NULL, "print the version (-v)"},
    {"help", OPT_HELP, NULL, "this text (-h)"},
};
#define NOPTIONS (sizeof cli_options / sizeof cli_options[0])

static struct option options[NOPTIONS + 1];
static const char short_options[] = ":hv"; /* ':' first: a missing argument is told apart */

static void options_init(void)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        options[i] = (struct option){cli_options[i].name,
                                     cli_options[i].arg ? required_argument : no_argument, 0,
                                     cli_options[i].id};
}

static void usage(FILE *out)
{
    fprintf(out, "usage: idemcache [options]\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", cli_options[i].name, cli_options[i].arg ? " " : "",
                 cli_options[i].arg ? cli_options[i].arg : "");
        fprintf(out, "  %-26s %s\n", left, cli_options[i].help);
    }
}

/* Levenshtein distance of two short names, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* What was wrong with argv[optind - 1], then the usage: exit status 2. */
static int bad_option(int opt, char **argv)
{
    const char *word = argv[optind - 1];
    if (opt == ':') {
        /* the option as typed may be an unambiguous prefix of its name */
        const char *name = word[0] == '-' && word[1] == '-' ? word + 2 : word;
        const struct cli_option *o = NULL;
        for (size_t i = 0; i < NOPTIONS && !(o && !strcmp(o->name, name)); i++)
            if (cli_options[i].arg && !strncmp(cli_options[i].name, name, strlen(name)))
                o = &cli_options[i];
        if (o)
            fprintf(stderr, "idemcache: --%s needs %s\n", o->name, o->arg);
    } else if (word[0] == '-' && word[1] == '-') {
        char name[64];
        snprintf(name, sizeof name, "%s", word + 2);
        name[strcspn(name, "=")] = 0;
        const char *best = NULL;
        size_t best_d = 3; /* suggest only a near miss */
        for (size_t i = 0; i < NOPTIONS; i++) {
            size_t d = edit_distance(name, cli_options[i].name);
            if (d < best_d)
                best = cli_options[i].name, best_d = d;
        }
        if (best)
            fprintf(stderr, "idemcache: unknown option '--%s' (did you mean --%s?)\n", name, best);
        else
            fprintf(stderr, "idemcache: unknown option '--%s'\n", name);
    } else {
        fprintf(stderr, "idemcache: unknown option '-%c'\n", optopt ? optopt : '?');
    }
    usage(stderr);
    return 2;
}

/* "256 MiB", "1536 KiB", "100 B": exact, as an operator would write it. */
static const char *size_text(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (u < 4 && n >= 1024 && n % 1024 == 0)
        n /= 1024, u++;
    snprintf(buf, len, "%llu %s", (unsigned long long)n, units[u]);
    return buf;
}

static void __attribute__((format(printf, 2, 3))) warn(const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "idemcache: warning: %s: ", file);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* --check-config: values that are accepted but ignored or cannot work. */
static void check_warnings(const struct config *cfg, const char *file, int had_listen)
{
    if (cfg->mode == MODE_FORWARD && cfg->has_upstream)
        warn(file, "upstream: ignored in forward mode (each request names its destination)");
    if (!had_listen)
        warn(file,
             "listen: none set; --listen HOST:PORT is needed at startup (or --tls-listen for TLS "
             "only)");
    if (cfg->mode == MODE_REVERSE && !cfg->has_upstream)
        warn(file, "upstream: none set; --upstream URL is needed at startup");
}

/* What an operator wants to see first in the log: what runs, from where. */
static void log_startup(const struct config *cfg, const char *file)
{
    char a[32], b[32];
    log_msg(LOG_INFO, "idemcache %s starting: config %s, %s mode", IDEMCACHE_VERSION,
            file ? file : "none (defaults and flags)",
            cfg->mode == MODE_FORWARD ? "forward" : "reverse");
    for (int i = 0; i < cfg->nlisten; i++)
        log_msg(LOG_INFO, "listener %s:%d", cfg->listen[i].host, cfg->listen[i].port);
    for (int i = 0; i < cfg->tls.nlisten; i++)
        log_msg(LOG_INFO, "TLS listener %s:%d", cfg->tls.listen[i].host, cfg->tls.listen[i].port);
    if (cfg->mode == MODE_REVERSE)
        log_msg(LOG_INFO, "upstream %s://%s:%d", cfg->upstream.tls ? "https" : "http",
                cfg->upstream.host, cfg->upstream.port);
    else if (cfg->peer.forward)
        log_msg(LOG_INFO, "upstream: each request's destination, through peer %s://%s:%d",
                cfg->peer.url.tls ? "https" : "http", cfg->peer.url.host, cfg->peer.url.port);
    else
        log_msg(LOG_INFO, "upstream: each request's destination (forward mode)");
    if (cfg->admin.port)
        log_msg(LOG_INFO, "admin %s:%d", cfg->admin.host, cfg->admin.port);
    else
        log_msg(LOG_INFO, "admin off");
    if (cfg->cache.enabled)
        log_msg(LOG_INFO, "cache %s in memory, objects up to %s",
                size_text(cfg->cache.memory_size, a, sizeof a),
                size_text(cfg->cache.max_object_size, b, sizeof b));
    else
        log_msg(LOG_INFO, "cache off");
}

static void warn_stderr(const char *line, void *arg)
{
    (void)arg;
    fprintf(stderr, "idemcache: warning: %s\n", line);
}

static void warn_log(const char *line, void *arg)
{
    (void)arg;
    log_msg(LOG_WARN, "%s", line);
}

static int die(const char *msg)
{
    fprintf(stderr, "idemcache: %s\n", msg);
    return 2;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    char err[1024];
    config_defaults(&cfg);
    options_init();
    const char *config_file = NULL;
    int check_only = 0;
    int opt;
    /* Pass 1: the file, so that flags can override it in pass 2. */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, short_options, options, NULL)) != -1) {
        if (opt == OPT_CONFIG || opt == OPT_CHECK) {
            config_file = optarg;
            check_only |= opt == OPT_CHECK;
        } else if (opt == OPT_HELP || opt == 'h') {
            usage(stdout);
            return 0;
        } else if (opt == OPT_VERSION || opt == 'v') {
            printf("idemcache %s\n", IDEMCACHE_VERSION);
            return 0;
        } else if (opt == '?' || opt == ':') {
            return bad_option(opt, argv);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "idemcache: unexpected argument '%s' (use --config FILE)\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (config_file && config_load_file(&cfg, config_file, err, sizeof err) < 0)
        return die(err);
    optind = 1;
    int cli_listen = 0, cli_tls_listen = 0;
    while ((opt = getopt_long(argc, argv, short_options, options, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN:
            if (cli_listen == 0)
                cfg.nlisten = 0;
            cli_listen = 1;
            if (cfg.nlisten == CONFIG_LISTEN_MAX ||
                config_parse_addr(optarg, &cfg.listen[cfg.nlisten], false) < 0) {
                snprintf(err, sizeof err, "--listen: invalid address '%s' (expected HOST:PORT)",
                         optarg);
                return die(err);
            }
            cfg.nlisten++;
            break;
        case OPT_UPSTREAM:
            if (config_parse_addr(optarg, &cfg.upstream, true) < 0) {
                snprintf(err, sizeof err,
                         "--upstream: invalid URL '%s' (expected http://HOST[:PORT] or "
                         "https://HOST[:PORT])",
                         optarg);
                return die(err);
            }
            cfg.has_upstream = true;
            break;
        case OPT_TLS_LISTEN:
            if (cli_tls_listen == 0)
                cfg.tls.nlisten = 0; /* the flags replace the file's list, as --listen does */
            cli_tls_listen = 1;
            if (cfg.tls.nlisten == CONFIG_LISTEN_MAX ||
                config_parse_addr(optarg, &cfg.tls.listen[cfg.tls.nlisten], false) < 0) {
                snprintf(err, sizeof err, "--tls-listen: invalid address '%s' (expected HOST:PORT)",
                         optarg);
                return die(err);
            }
            cfg.tls.nlisten++;
            break;
        case OPT_TLS_CERT:
        case OPT_TLS_KEY:
        case OPT_UPSTREAM_CA: {
            /* a flag's path is the caller's, relative to the working directory */
            char *dst = opt == OPT_TLS_CERT  ? cfg.tls.certs[0].cert
                        : opt == OPT_TLS_KEY ? cfg.tls.certs[0].key
                                             : cfg.upstream_tls.ca;
            if (!*optarg || strlen(optarg) >= CONFIG_PATH_MAX) {
                snprintf(err, sizeof err, "--%s: invalid path '%.600s'",
                         opt == OPT_TLS_CERT  ? "tls-cert"
                         : opt == OPT_TLS_KEY ? "tls-key"
                                              : "upstream-ca",
                         optarg);
                return die(err);
            }
            strcpy(dst, optarg);
            if (opt == OPT_TLS_CERT)
                cfg.tls.certs[0].line = 0;
            else if (opt == OPT_TLS_KEY)
                cfg.tls.certs[0].key_line = 0;
            else
                cfg.upstream_tls.line = 0;
            if (opt != OPT_UPSTREAM_CA && cfg.tls.ncerts == 0)
                cfg.tls.ncerts = 1;
            break;
        }
        case OPT_MODE:
            if (!strcmp(optarg, "reverse"))
                cfg.mode = MODE_REVERSE;
            else if (!strcmp(optarg, "forward"))
                cfg.mode = MODE_FORWARD;
            else
                return die("--mode: expected reverse or forward");
            break;
        case OPT_WORKERS: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 0 || n > 256)
                return die("--workers: expected a number from 0 to 256");
            cfg.workers = (int)n;
            break;
        }
        case OPT_ADMIN:
            if (config_parse_addr(optarg, &cfg.admin, false) < 0 || cfg.admin.port == 0) {
                snprintf(err, sizeof err, "--admin: invalid address '%s' (expected HOST:PORT)",
                         optarg);
                return die(err);
            }
            break;
        case OPT_PEER:
            if (config_parse_addr(optarg, &cfg.peer.url, true) < 0) {
                snprintf(
                    err, sizeof err,
                    "--peer: invalid URL '%s' (expected http://HOST:PORT or https://HOST:PORT)",
                    optarg);
                return die(err);
            }
            cfg.peer.forward = true;
            break;
        case OPT_PEER_ID:
            if (!*optarg || strlen(optarg) >= sizeof cfg.peer.id || strpbrk(optarg, " ,=\t"))
                return die("--peer-id: expected a name without spaces, ',' or '='");
            strcpy(cfg.peer.id, optarg);
            break;
        case OPT_PEER_SECRET:
            snprintf(cfg.peer.secret_file, sizeof cfg.peer.secret_file, "%s", optarg);
            break;
        case OPT_ACCESS:
            snprintf(cfg.log.access, sizeof cfg.log.access, "%s", optarg);
            break;
        }
    }
    int had_listen = cfg.nlisten > 0 || cfg.tls.nlisten > 0;
    int upstream_stand_in = 0;
    if (check_only)
        check_warnings(&cfg, config_file, had_listen);
    if (check_only) {
        /* A file alone may leave listen/upstream to the command line. The
         * stand-in listens on port 0, which clashes with no admin address. */
        if (!had_listen)
            cfg.nlisten = 1, strcpy(cfg.listen[0].host, "127.0.0.1"), cfg.listen[0].port = 0;
        if (cfg.mode == MODE_REVERSE && !cfg.has_upstream)
            cfg.has_upstream = true, strcpy(cfg.upstream.host, "127.0.0.1"), cfg.upstream.port = 80,
            upstream_stand_in = 1;
    }
    if (config_validate(&cfg, err, sizeof err) < 0 ||
        config_connect_finish(&cfg, err, sizeof err) < 0 ||
        config_peer_finish(&cfg, err, sizeof err) < 0)
        return die(err);
    /* Certificates, keys and CAs are read now, --check-config included, so
     * that a bad file stops the start naming its field. */
    struct tls_contexts tls;
    if (tls_contexts_build(&cfg, &tls, err, sizeof err) < 0) {
        connect_procedures_free(&cfg.connect.procs);
        connect_procedures_free(&cfg.connect.never);
        return die(err);
    }
    char cache_warning[256];
    int clamped = config_cache_finish(&cfg, cache_warning, sizeof cache_warning);
    if (check_only && log_check(cfg.log.access, cfg.log.error, err, sizeof err) < 0) {
        tls_contexts_free(&tls);
        connect_procedures_free(&cfg.connect.procs);
        connect_procedures_free(&cfg.connect.never);
        fprintf(stderr, "idemcache: %s: %s\n", config_file, err);
        return 2;
    }
    if (check_only) {
        if (clamped)
            warn(config_file, "%s", cache_warning);
        /* the stand-in is no upstream of the file's: nothing to warn about */
        if (upstream_stand_in)
            cfg.has_upstream = false;
        config_warnings(&cfg, warn_stderr, NULL);
        printf("%s: ok\n", config_file);
        tls_contexts_free(&tls);
        connect_procedures_free(&cfg.connect.procs);
        connect_procedures_free(&cfg.connect.never);
        return 0;
    }
    if (log_open(cfg.log.access, cfg.log.error, cfg.log.level, err, sizeof err) < 0) {
        tls_contexts_free(&tls);
        return die(err);
    }
    log_startup(&cfg, config_file);
    if (clamped)
        log_msg(LOG_WARN, "%s", cache_warning);
    config_warnings(&cfg, warn_log, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = worker_run_all(&cfg, &tls);
    tls_contexts_free(&tls);
    connect_procedures_free(&cfg.connect.procs);
    connect_procedures_free(&cfg.connect.never);
    return rc;
}
