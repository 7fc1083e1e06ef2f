/* libFuzzer target for the NDJSON splitter: fed whole and fed in pieces whose sizes come
   from the first input bytes, the lines, result and error offset must agree, or it aborts.
   Each line must be non-blank and hold no LF. Input: byte 0 = options (bits 0-1 limit:
   default/8/64/1024, bit 2 stop at the third line), bytes 1-3 = piece sizes, the rest =
   the stream. */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdlib.h>
#include <string.h>

typedef struct rec {
    ak_buf out;
    int lines, stop_at;
} rec;

static ak_result on_line(void *ud, const char *s, size_t n) {
    rec *r = (rec *)ud;
    size_t i, blank = 1;
    for (i = 0; i < n; i++) {
        if (s[i] == '\n') abort();
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') blank = 0;
    }
    if (blank) abort();
    ak_buf_put_u64(&r->out, (uint64_t)n);
    ak_buf_putc(&r->out, ':');
    ak_buf_append(&r->out, s, n);
    return ++r->lines == r->stop_at ? AK_ERR_CANCELLED : AK_OK;
}

typedef struct outcome {
    rec r;
    ak_result rc;
    size_t offset;
} outcome;

static void run(const char *s, size_t len, const size_t *pieces, size_t max, int stop_at,
                outcome *o) {
    ak_ndjson_parser p;
    ak_error err;
    size_t at = 0, k = 0;
    memset(o, 0, sizeof *o);
    ak_buf_init(&o->r.out, NULL);
    o->r.stop_at = stop_at;
    ak_ndjson_init(&p, NULL, on_line, &o->r);
    if (max) p.max_line = max;
    o->rc = AK_OK;
    while (o->rc == AK_OK && at < len) {
        size_t n = pieces ? pieces[k++ % 3] : len - at;
        if (n > len - at) n = len - at;
        o->rc = ak_ndjson_feed(&p, s + at, n, &err);
        at += n;
    }
    if (o->rc == AK_OK) o->rc = ak_ndjson_finish(&p, &err);
    o->offset = o->rc == AK_ERR_LIMIT ? err.offset : 0;
    ak_ndjson_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const size_t limits[4] = {0, 8, 64, 1024};
    size_t pieces[3], max, i;
    int stop_at;
    outcome whole, cut;
    if (size < 4) return 0;
    max = limits[data[0] & 3];
    stop_at = data[0] & 4 ? 3 : 0;
    for (i = 0; i < 3; i++) pieces[i] = (size_t)data[1 + i] % 17 + 1;
    run((const char *)data + 4, size - 4, NULL, max, stop_at, &whole);
    run((const char *)data + 4, size - 4, pieces, max, stop_at, &cut);
    if (whole.rc != cut.rc || whole.offset != cut.offset || whole.r.out.len != cut.r.out.len ||
        (whole.r.out.len && memcmp(whole.r.out.ptr, cut.r.out.ptr, whole.r.out.len) != 0))
        abort();
    ak_buf_free(&whole.r.out);
    ak_buf_free(&cut.r.out);
    return 0;
}
