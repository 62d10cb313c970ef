/* idemcache: command line. Defaults, then the config file, then flags. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include "server/config.h"
#include "server/log.h"
#include "server/server.h"

#define IDEMCACHE_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: idemcache [options]\n"
            "  --listen HOST:PORT     address to accept clients on (repeatable)\n"
            "  --upstream URL         origin for reverse mode, e.g. http://127.0.0.1:9000\n"
            "  --mode reverse|forward reverse proxy (default) or forward proxy\n"
            "  --config FILE          YAML configuration (flags override it)\n"
            "  --workers N            worker threads (default: one per core)\n"
            "  --access-log DEST      stdout, off or a file path\n"
            "  --admin HOST:PORT      admin listener: /healthz, /stats, PURGE (off by default)\n"
            "  --peer URL             forward mode: the reverse idemcache to speak the digest\n"
            "                         handshake with, e.g. http://10.0.0.2:8080\n"
            "  --peer-id NAME         our name at that peer\n"
            "  --peer-secret FILE     the secret shared with it\n"
            "  --check-config FILE    validate a configuration file and exit\n"
            "  --version              print the version\n"
            "  --help                 this text\n");
}

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
};

static const struct option options[] = {
    {"listen", required_argument, 0, OPT_LISTEN},
    {"upstream", required_argument, 0, OPT_UPSTREAM},
    {"mode", required_argument, 0, OPT_MODE},
    {"config", required_argument, 0, OPT_CONFIG},
    {"workers", required_argument, 0, OPT_WORKERS},
    {"access-log", required_argument, 0, OPT_ACCESS},
    {"admin", required_argument, 0, OPT_ADMIN},
    {"peer", required_argument, 0, OPT_PEER},
    {"peer-id", required_argument, 0, OPT_PEER_ID},
    {"peer-secret", required_argument, 0, OPT_PEER_SECRET},
    {"check-config", required_argument, 0, OPT_CHECK},
    {"version", no_argument, 0, OPT_VERSION},
    {"help", no_argument, 0, OPT_HELP},
    {0, 0, 0, 0},
};

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
    const char *config_file = NULL;
    int check_only = 0;
    int opt;
    /* Pass 1: the file, so that flags can override it in pass 2. */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt == OPT_CONFIG || opt == OPT_CHECK) {
            config_file = optarg;
            check_only |= opt == OPT_CHECK;
        } else if (opt == OPT_HELP) {
            usage(stdout);
            return 0;
        } else if (opt == OPT_VERSION) {
            printf("idemcache %s\n", IDEMCACHE_VERSION);
            return 0;
        } else if (opt == '?') {
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (config_file && config_load_file(&cfg, config_file, err, sizeof err) < 0)
        return die(err);
    optind = 1;
    int cli_listen = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
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
                         "--upstream: invalid URL '%s' (expected http://HOST[:PORT])", optarg);
                return die(err);
            }
            cfg.has_upstream = true;
            break;
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
                snprintf(err, sizeof err, "--peer: invalid URL '%s' (expected http://HOST:PORT)",
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
    if (check_only) {
        /* A file alone may leave listen/upstream to the command line. */
        if (cfg.nlisten == 0)
            cfg.nlisten = 1, strcpy(cfg.listen[0].host, "127.0.0.1"), cfg.listen[0].port = 8080;
        if (cfg.mode == MODE_REVERSE && !cfg.has_upstream)
            cfg.has_upstream = true, strcpy(cfg.upstream.host, "127.0.0.1"), cfg.upstream.port = 80;
    }
    if (config_validate(&cfg, err, sizeof err) < 0 ||
        config_connect_finish(&cfg, err, sizeof err) < 0 ||
        config_peer_finish(&cfg, err, sizeof err) < 0)
        return die(err);
    char cache_warning[256];
    int clamped = config_cache_finish(&cfg, cache_warning, sizeof cache_warning);
    if (check_only) {
        if (clamped)
            fprintf(stderr, "idemcache: warning: %s\n", cache_warning);
        printf("%s: ok\n", config_file);
        connect_procedures_free(&cfg.connect.procs);
        connect_procedures_free(&cfg.connect.never);
        return 0;
    }
    if (log_open(cfg.log.access, cfg.log.error, cfg.log.level, err, sizeof err) < 0)
        return die(err);
    if (clamped)
        log_msg(LOG_WARN, "%s", cache_warning);
    signal(SIGPIPE, SIG_IGN);
    int rc = worker_run_all(&cfg);
    connect_procedures_free(&cfg.connect.procs);
    connect_procedures_free(&cfg.connect.never);
    return rc;
}
