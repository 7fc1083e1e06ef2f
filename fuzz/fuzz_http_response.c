/* libFuzzer target: the HTTP response parser. Byte 0 picks options, byte 1 a split size,
   the rest is what a server sends:
     bit 0     the request was HEAD
     bit 1     small limits (256 header bytes, 4 headers)
     bit 2     the sink refuses the body after its first piece
     bits 3-7  0 = no failure, n = the nth allocation fails
   Checks: the sink sees status, then headers (NUL-terminated, of the lengths given), then
   body, and nothing after refusing; feeding the bytes whole or in pieces of byte 1 gives the
   same result, the same calls and the same body (the split run never fails allocations);
   allocation failure gives AK_ERR_OUT_OF_MEMORY; nothing leaks. */
#define AGENTKIT_IMPLEMENTATION
#include "../agentkit.h"
#include <stdlib.h>
#include <string.h>
#include "fuzz_heap.h"

/* A sink that checks the call order and keeps a transcript of what it was given. */
typedef struct fz_sink {
    ak_http_sink sink;
    ak_buf log;
    int statuses, stopped, refuse_body;
} fz_sink;

static ak_result fz_status(ak_http_sink *s, int status) {
    fz_sink *f = (fz_sink *)s->ud;
    if (f->stopped || f->statuses++ || status < 200 || status > 599) abort();
    ak_buf_printf(&f->log, "S%d|", status);
    return AK_OK;
}

static ak_result fz_header(ak_http_sink *s, const char *n, size_t nl, const char *v, size_t vl) {
    fz_sink *f = (fz_sink *)s->ud;
    if (f->stopped || !f->statuses || !nl || strlen(n) != nl || strlen(v) != vl) abort();
    ak_buf_printf(&f->log, "H%zu:%zu|", nl, vl);
    ak_buf_append(&f->log, n, nl);
    ak_buf_append(&f->log, v, vl);
    return AK_OK;
}

static ak_result fz_body(ak_http_sink *s, const char *d, size_t n) {
    fz_sink *f = (fz_sink *)s->ud;
    if (f->stopped || !f->statuses || !n) abort();
    if (f->refuse_body) { /* the first piece depends on the split: log only that it came */
        ak_buf_puts(&f->log, "B|");
        f->stopped = 1;
        return AK_ERR_CANCELLED;
    }
    ak_buf_append(&f->log, d, n); /* pieces are concatenated: the split must not show */
    return AK_OK;
}

/* Parses data in pieces of `step` (0 = whole); returns the final result. */
static ak_result fz_parse(const char *data, size_t len, size_t step, int opts, fz_sink *f, fz_heap *h) {
    ak_http_response_parser p;
    ak_http_limits lim;
    size_t off = 0, used;
    ak_result rc = AK_PENDING;
    memset(&lim, 0, sizeof lim);
    if (opts & 2) {
        lim.max_header_bytes = 256;
        lim.max_headers = 4;
    }
    memset(f, 0, sizeof *f);
    f->sink.on_status = fz_status;
    f->sink.on_header = fz_header;
    f->sink.on_body = fz_body;
    f->sink.ud = f;
    f->refuse_body = (opts & 4) != 0;
    ak_buf_init(&f->log, NULL);
    fz_heap_init(h, opts >> 3);
    ak_http_response_parser_init(&p, &f->sink, &h->a, &lim, opts & 1);
    while (rc == AK_PENDING && off < len) {
        size_t n = step && step < len - off ? step : len - off;
        rc = ak_http_response_parser_feed(&p, data + off, n, &used, NULL);
        if (used > n || (rc == AK_PENDING && used != n)) abort();
        off += used;
    }
    if (rc == AK_PENDING) rc = ak_http_response_parser_eof(&p, NULL);
    if (rc != AK_OK && ak_http_response_parser_feed(&p, "x", 1, &used, NULL) != rc) abort(); /* sticky */
    if (p.sink_stopped != f->stopped) abort();
    ak_http_response_parser_free(&p);
    if (h->live != 0) abort();
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_sink whole, split;
    fz_heap h1, h2;
    ak_result a, b;
    int opts;
    size_t step;
    if (size < 2) return 0;
    opts = data[0];
    step = (size_t)data[1] % 64 + 1;
    a = fz_parse((const char *)data + 2, size - 2, 0, opts, &whole, &h1);
    if (h1.fail_at && a == AK_ERR_OUT_OF_MEMORY) {
        ak_buf_free(&whole.log);
        return 0; /* which allocation fails depends on the split: nothing to compare */
    }
    b = fz_parse((const char *)data + 2, size - 2, step, opts & 7, &split, &h2);
    if (a != b || whole.log.len != split.log.len ||
        (whole.log.len && memcmp(whole.log.ptr, split.log.ptr, whole.log.len) != 0))
        abort();
    ak_buf_free(&whole.log);
    ak_buf_free(&split.log);
    return 0;
}
