/* akdriver: the CLI over the library used by tests and external conformance tools. The
   command set and output formats are fixed by the DESIGN contract. */
#ifndef AKDRIVER_H
#define AKDRIVER_H
#include "../agentkit.h"
#include <stdio.h>

/* Reads a whole file ("-" or NULL = stdin) into *out; returns 0 on success. free() it. */
int drv_read_all(const char *path, char **out, size_t *len);
/* Writes b's bytes and a newline to stdout. */
void drv_print_line(const ak_buf *b);

int drv_json_parse(int argc, char **argv);
int drv_conformance(int argc, char **argv);
int drv_serve(int argc, char **argv);
int drv_json_patch(int argc, char **argv);
int drv_sse(int argc, char **argv);
int drv_model_response(int argc, char **argv);
int drv_model_request(int argc, char **argv);
#endif
