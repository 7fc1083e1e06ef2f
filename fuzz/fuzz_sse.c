/* libFuzzer target for the SSE parser. The stream is parsed fed whole and fed in pieces
   whose sizes come from the first input bytes; both must give the same events, the same
   result and the same error offset, or the target aborts. Every event must also keep the
   parser's promises: NUL-terminated strings, valid UTF-8, a non-empty type.
   Input: byte 0 = options (bits 0-1 limit: default/16/64/1024, bit 2 stop at the third
   event, bit 3 also feed byte by byte), bytes 1-3 = piece sizes, the rest = the stream. */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdlib.h>
#include <string.h>

typedef struct rec {
    ak_buf out;
    int events, stop_at;
} rec;

static void rec_field(ak_buf *b, const char *s, size_t n) {
    if (s[n] != 0 || !ak_utf8_valid(s, n)) abort();
    ak_buf_put_u64(b, (uint64_t)n);
    ak_buf_putc(b, ':');
    ak_buf_append(b, s, n);
}

static ak_result on_event(void *ud, const ak_sse_event *ev) {
    rec *r = (rec *)ud;
    if (!ev->event_len) abort();
    rec_field(&r->out, ev->event, ev->event_len);
    rec_field(&r->out, ev->data, ev->data_len);
    rec_field(&r->out, ev->id, ev->id_len);
    ak_buf_put_i64(&r->out, ev->retry);
    ak_buf_putc(&r->out, ';');
    return ++r->events == r->stop_at ? AK_ERR_CANCELLED : AK_OK;
}

typedef struct outcome {
    rec r;
    ak_result rc;
    size_t offset;
} outcome;

/* pieces: sizes to cycle through (NULL = the whole input at once) */
static void run(const char *s, size_t len, const size_t *pieces, size_t npieces, size_t max,
                int stop_at, outcome *o) {
    ak_sse_parser p;
    ak_error err;
    size_t at = 0, k = 0;
    memset(o, 0, sizeof *o);
    ak_buf_init(&o->r.out, NULL);
    o->r.stop_at = stop_at;
    ak_sse_init(&p, NULL, on_event, &o->r);
    if (max) p.max_event = max;
    o->rc = AK_OK;
    while (o->rc == AK_OK && at < len) {
        size_t n = pieces ? pieces[k++ % npieces] : len - at;
        if (n > len - at) n = len - at;
        o->rc = ak_sse_feed(&p, s + at, n, &err);
        at += n;
    }
    if (o->rc == AK_OK) o->rc = ak_sse_finish(&p, &err);
    o->offset = o->rc == AK_ERR_LIMIT ? err.offset : 0;
    ak_sse_free(&p);
}

static void same(outcome *a, outcome *b) {
    if (a->rc != b->rc || a->offset != b->offset || a->r.out.len != b->r.out.len ||
        (a->r.out.len && memcmp(a->r.out.ptr, b->r.out.ptr, a->r.out.len) != 0))
        abort();
    ak_buf_free(&b->r.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const size_t limits[4] = {0, 16, 64, 1024};
    size_t pieces[3], max, i;
    int stop_at;
    outcome whole, cut;
    if (size < 4) return 0;
    max = limits[data[0] & 3];
    stop_at = data[0] & 4 ? 3 : 0;
    for (i = 0; i < 3; i++) pieces[i] = (size_t)data[1 + i] % 17 + 1;
    run((const char *)data + 4, size - 4, NULL, 0, max, stop_at, &whole);
    run((const char *)data + 4, size - 4, pieces, 3, max, stop_at, &cut);
    same(&whole, &cut);
    if (data[0] & 8) {
        size_t one = 1;
        run((const char *)data + 4, size - 4, &one, 1, max, stop_at, &cut);
        same(&whole, &cut);
    }
    ak_buf_free(&whole.r.out);
    return 0;
}
