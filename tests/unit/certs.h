/* Test certificates for the TLS unit tests, made at run time by
 * tests/integration/certs.mjs (the same set the integration tests use). */
#ifndef IDEM_TEST_CERTS_H
#define IDEM_TEST_CERTS_H
#include <stddef.h>

/* Make the set in a new directory under /tmp, its name into dir. 0 or -1. */
int test_certs_make(char *dir, size_t n);
/* Remove that directory. 0 or -1. */
int test_certs_remove(const char *dir);

#endif
