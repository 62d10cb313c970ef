#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include "certs.h"

int test_certs_make(char *dir, size_t n)
{
    char tmpl[] = "/tmp/idem-tls-XXXXXX", script[PATH_MAX], cmd[3 * PATH_MAX];
    if (!mkdtemp(tmpl) || !realpath("tests/integration/certs.mjs", script))
        return -1;
    snprintf(dir, n, "%s", tmpl);
    snprintf(cmd, sizeof cmd,
             "node -e 'import(process.argv[1]).then((m) => m.makeCerts(process.argv[2]))' "
             "'%s' '%s'",
             script, dir);
    return system(cmd) == 0 ? 0 : -1;
}

int test_certs_remove(const char *dir)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}
