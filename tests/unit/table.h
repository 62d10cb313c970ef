/* Loader for tests/malformed.tsv, shared with the end-to-end test. */
#ifndef IDEM_TEST_TABLE_H
#define IDEM_TEST_TABLE_H
#include <stddef.h>

struct table_row {
    int status;
    char name[96];
    char *bytes;
    size_t len;
};

/* Returns the number of rows (allocated into *rows), or -1. */
int table_load(const char *path, struct table_row **rows);
void table_free(struct table_row *rows, int n);
/* Decode \r \n \t \\ \xHH and {repeat:STR:N}; returns malloc'd bytes. */
char *table_unescape(const char *s, size_t n, size_t *out_len);

#endif
