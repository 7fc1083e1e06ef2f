/* akdriver entry point: dispatches to one command per tests/drv_*.c file. */
#include "akdriver.h"
#include <stdlib.h>
#include <string.h>

int drv_read_all(const char *path, char **out, size_t *len) {
    FILE *f = (!path || strcmp(path, "-") == 0) ? stdin : fopen(path, "rb");
    size_t cap = 1 << 16, n = 0, got;
    char *buf;
    if (!f) return -1;
    buf = (char *)malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = (char *)realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb, cap *= 2;
        }
    }
    if (f != stdin) fclose(f);
    if (!buf) return -1;
    *out = buf;
    *len = n;
    return 0;
}

void drv_print_line(const ak_buf *b) {
    if (b->len) fwrite(b->ptr, 1, b->len, stdout);
    fputc('\n', stdout);
}

static const struct { const char *name; int (*fn)(int, char **); const char *usage; } commands[] = {
    {"json-parse", drv_json_parse, "json-parse [FILE]"},
    {"conformance", drv_conformance, "conformance SPEC.json [--filter SUBSTRING]"},
    {"serve", drv_serve, "serve --port N [--host H]"},
    {"json-patch", drv_json_patch, "json-patch DOC PATCH"},
    {"sse", drv_sse, "sse [--chunk N]"},
    {"model-response", drv_model_response, "model-response PROVIDER [--stream] [--chunk N] [--status CODE] [--header 'K: V']... [FILE]"},
    {"model-request", drv_model_request, "model-request PROVIDER [--stream] [FILE]"},
};

int main(int argc, char **argv) {
    size_t i;
    if (argc >= 2)
        for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "usage: akdriver COMMAND ...\n");
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(stderr, "  akdriver %s\n", commands[i].usage);
    return 2;
}
