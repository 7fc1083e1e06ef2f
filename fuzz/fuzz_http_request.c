/* libFuzzer target: the HTTP request parser and the response framer. Byte 0 picks options,
   byte 1 a split size, the rest is what clients send on one connection (pipelined requests):
     bit 0     small limits (256 header bytes, 4 headers, 64-byte target, 512-byte body)
     bit 1     answer with Content-Length (else chunked, or close-delimited for HTTP/1.0)
     bits 3-7  0 = no failure, n = the nth allocation fails
   Checks: every accepted request is well formed (token method, a path, NUL-terminated
   strings, limits held); every refusal names a 4xx/5xx status that matches its result;
   whole and split feeding parse the same requests and fail the same way; each request's
   answer, framed and parsed back, carries the same body and keep-alive decision;
   allocation failure gives AK_ERR_OUT_OF_MEMORY (503); nothing leaks. */
#define AGENTKIT_IMPLEMENTATION
#include "../agentkit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_heap.h"

static int fz_token(const char *s) {
    const char *p;
    if (!*s) return 0;
    for (p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7F || strchr("\"(),/:;<=>?@[\\]{}", *p)) return 0;
    return 1;
}

static void fz_check_request(const ak_http_server_request *q, const ak_http_limits *lim) {
    size_t i;
    if (!fz_token(q->method) || !q->path || !q->query || (q->path[0] != '/' && strcmp(q->path, "*") != 0)) abort();
    if (q->header_count > lim->max_headers || q->body_len > lim->max_body || q->body[q->body_len] != 0) abort();
    if (q->version_minor != 0 && q->version_minor != 1) abort();
    for (i = 0; i < q->header_count; i++)
        if (!fz_token(q->headers[i].name) || strchr(q->headers[i].value, '\r') || strchr(q->headers[i].value, '\n'))
            abort();
}

/* Frames an answer echoing the body and parses it back: same body, same keep-alive. */
typedef struct fz_body {
    ak_http_sink sink;
    ak_buf got;
} fz_body;

static ak_result fz_on_body(ak_http_sink *s, const char *d, size_t n) {
    ak_buf_append(&((fz_body *)s->ud)->got, d, n);
    return AK_OK;
}

static void fz_round_trip(const ak_http_server_request *q, int with_length) {
    ak_http_response_framer f;
    ak_http_response_parser p;
    ak_header h[1];
    char len[24];
    fz_body b;
    ak_buf out;
    size_t used;
    int head = strcmp(q->method, "HEAD") == 0;
    ak_result rc;
    snprintf(len, sizeof len, "%zu", q->body_len);
    h[0].name = "Content-Length";
    h[0].value = len;
    ak_buf_init(&out, NULL);
    ak_http_framer_init(&f, q);
    if (ak_http_framer_start(&f, &out, 200, h, with_length ? 1 : 0, NULL) != AK_OK) abort();
    if (ak_http_framer_write(&f, &out, q->body, q->body_len, NULL) != AK_OK) abort();
    if (ak_http_framer_end(&f, &out, NULL) != AK_OK) abort();
    memset(&b, 0, sizeof b);
    b.sink.on_body = fz_on_body;
    b.sink.ud = &b;
    ak_buf_init(&b.got, NULL);
    ak_http_response_parser_init(&p, &b.sink, NULL, NULL, head);
    rc = ak_http_response_parser_feed(&p, out.ptr, out.len, &used, NULL);
    if (rc == AK_PENDING) rc = ak_http_response_parser_eof(&p, NULL);
    if (rc != AK_OK || used != out.len) abort();
    if (b.got.len != (head ? 0 : q->body_len) || (b.got.len && memcmp(b.got.ptr, q->body, b.got.len) != 0)) abort();
    if (p.keep_alive != f.keep_alive) abort();
    ak_http_response_parser_free(&p);
    ak_buf_free(&b.got);
    ak_buf_free(&out);
}

static int fz_status_ok(ak_result rc, int status) {
    switch (rc) {
    case AK_ERR_HTTP: return status == 400;
    case AK_ERR_LIMIT: return status == 413 || status == 414 || status == 431;
    case AK_ERR_UNSUPPORTED: return status == 501 || status == 505;
    case AK_ERR_OUT_OF_MEMORY: return status == 503;
    default: return 0;
    }
}

/* Parses every request in data, in pieces of `step` (0 = whole); logs what it found. */
static ak_result fz_parse(const char *data, size_t len, size_t step, int opts, ak_buf *log, fz_heap *h) {
    ak_http_request_parser p;
    ak_http_limits lim;
    size_t off = 0, used;
    ak_result rc = AK_PENDING;
    int requests = 0;
    memset(&lim, 0, sizeof lim);
    if (opts & 1) {
        lim.max_header_bytes = 256;
        lim.max_headers = 4;
        lim.max_target = 64;
        lim.max_body = 512;
    }
    fz_heap_init(h, opts >> 3);
    ak_http_request_parser_init(&p, &h->a, &lim);
    while (off < len && requests < 16) {
        size_t n = step && step < len - off ? step : len - off;
        rc = ak_http_request_parser_feed(&p, data + off, n, &used, NULL);
        if (used > n || (rc == AK_PENDING && used != n)) abort();
        off += used;
        if (rc == AK_PENDING) continue;
        if (rc != AK_OK) break;
        fz_check_request(&p.req, &p.limits);
        fz_round_trip(&p.req, opts & 2);
        ak_buf_printf(log, "%s %s?%s %zu/%zu %d|", p.req.method, p.req.path, p.req.query, p.req.header_count,
                      p.req.body_len, p.req.keep_alive);
        ak_buf_append(log, p.req.body, p.req.body_len);
        ak_http_request_parser_reset(&p);
        requests++;
        rc = AK_PENDING;
    }
    if (rc != AK_OK && rc != AK_PENDING) {
        if (!fz_status_ok(rc, p.error_status)) abort();
        ak_buf_printf(log, "E%d", p.error_status);
    }
    ak_http_request_parser_free(&p);
    if (h->live != 0) abort();
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ak_buf a, b;
    fz_heap h1, h2;
    ak_result ra, rb;
    if (size < 2) return 0;
    ak_buf_init(&a, NULL);
    ak_buf_init(&b, NULL);
    ra = fz_parse((const char *)data + 2, size - 2, 0, data[0], &a, &h1);
    if (ra != AK_ERR_OUT_OF_MEMORY) {
        rb = fz_parse((const char *)data + 2, size - 2, (size_t)data[1] % 64 + 1, data[0] & 7, &b, &h2);
        if (ra != rb || a.len != b.len || (a.len && memcmp(a.ptr, b.ptr, a.len) != 0)) abort();
    }
    ak_buf_free(&a);
    ak_buf_free(&b);
    return 0;
}
