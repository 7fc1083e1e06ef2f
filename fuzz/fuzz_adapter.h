/* fuzz_adapter.h - the libFuzzer harness of the provider adapter targets. A target defines
   FUZZ_ADAPTER (the adapter getter, e.g. ak_adapter_openai) and includes this file.

   Input: byte 0 = options, bytes 1-3 = piece sizes (1..17), the rest = a response body.
     bit 0      streaming body (SSE / NDJSON) instead of a whole JSON body
     bits 1-2   HTTP status: 200, 200, 429 (with Retry-After), 503
     bit 3      a 200-byte limit on what one answer may accumulate
     bit 4      also build a request from the rest (when it is JSON): the provider body
                must be JSON and everything must be freed
   The body is decoded fed whole and fed in pieces (also byte by byte when bit 0 is set);
   both must give the same chunks and the same outcome, every chunk and the final message
   must be valid Genkit parts, and every byte allocated must be freed, or the target
   aborts. */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdlib.h>
#include <string.h>
#include "fuzz_heap.h"

static void fz_check_parts(const ak_json *parts) {
    const ak_json *p;
    if (!ak_json_is(parts, AK_JSON_ARRAY)) abort();
    for (p = ak_json_first(parts); p; p = p->next)
        if (ak_part_validate(p, NULL) != AK_OK) abort();
}

static ak_result fz_chunk(void *ud, const ak_json *chunk) {
    fz_check_parts(ak_json_get(chunk, "content"));
    ak_json_write(chunk, (ak_buf *)ud);
    ak_buf_putc((ak_buf *)ud, '\n');
    return AK_OK;
}

/* Decodes s[0..len) cut into pieces (cycling; NULL = whole) and appends the chunks and
   the outcome to out. */
static void fz_decode(int opts, const char *s, size_t len, const size_t *pieces, size_t np, ak_buf *out) {
    static const int statuses[4] = {200, 200, 429, 503};
    int status = statuses[(opts >> 1) & 3];
    fz_heap fa;
    ak_context_desc desc;
    ak_context ctx;
    ak_json_doc doc;
    ak_decode dc;
    size_t at = 0, k = 0;
    fz_heap_init(&fa, 0);
    memset(&desc, 0, sizeof desc);
    desc.allocator = fa.a;
    ak_context_init(&ctx, &desc);
    ak_json_doc_init(&doc, ak_context_allocator(&ctx));
    if (ak_decode_init(&dc, &ctx, FUZZ_ADAPTER(), opts & 1, &doc) != AK_OK) abort();
    if (opts & 8) dc.max_body = 200;
    dc.on_chunk = fz_chunk;
    dc.chunk_ud = out;
    ak_decode_status(&dc, status);
    if (status == 429) ak_decode_header(&dc, "Retry-After", 11, "2", 1);
    while (at < len) {
        size_t n = pieces ? pieces[k++ % np] : len - at;
        if (n > len - at) n = len - at;
        if (ak_decode_body(&dc, s + at, n) != AK_OK) break;
        at += n;
    }
    ak_decode_done(&dc, AK_OK, NULL);
    if (!!dc.response == !!dc.failed) abort(); /* exactly one outcome */
    if (dc.response) {
        const ak_json *msg = ak_json_get(dc.response, "message");
        if (ak_msg_validate(msg, NULL) != AK_OK || !ak_json_get_str(dc.response, "finishReason")) abort();
        ak_json_write(dc.response, out);
    } else {
        ak_buf_puts(out, ak_status_name(dc.error.status));
        ak_buf_puts(out, dc.error.message);
        ak_buf_put_i64(out, dc.retry_after_ms);
        if (!ak_utf8_valid(dc.error.message, strlen(dc.error.message))) abort();
    }
    ak_decode_free(&dc);
    ak_json_doc_free(&doc);
    if (fa.live != 0) abort();
}

static void fz_same(const ak_buf *a, const ak_buf *b) {
    if (a->len != b->len || (a->len && memcmp(a->ptr, b->ptr, a->len) != 0)) abort();
}

/* Builds a provider request from s when it is a JSON request. */
static void fz_build(const char *s, size_t len) {
    fz_heap fa;
    ak_context ctx;
    ak_json_doc doc, check;
    ak_json *req = NULL, *body = NULL;
    ak_model_call call;
    ak_provider_config cfg;
    ak_http_out out;
    ak_error err;
    int stream;
    ak_context_init(&ctx, NULL);
    ak_json_doc_init(&doc, NULL);
    if (ak_json_parse_value(&doc, s, len, NULL, &req, NULL) != AK_OK) {
        ak_json_doc_free(&doc);
        return;
    }
    ak_model_call_init(&call, &ctx, req, &doc);
    memset(&cfg, 0, sizeof cfg);
    cfg.model = "m";
    cfg.api_key = "k";
    for (stream = 0; stream < 2; stream++) {
        fz_heap_init(&fa, 0);
        ak_http_out_init(&out, &fa.a);
        if (FUZZ_ADAPTER()->build(&cfg, req, call.messages, call.message_count, stream, &out, &err) == AK_OK) {
            ak_json_doc_init(&check, NULL);
            if (!out.url.len || ak_json_parse_value(&check, out.body.ptr, out.body.len, NULL, &body, NULL) != AK_OK) abort();
            ak_json_doc_free(&check);
        } else if (!err.message[0]) {
            abort(); /* a refusal always says why */
        }
        ak_http_out_free(&out);
        if (fa.live != 0) abort();
    }
    ak_json_doc_free(&doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data + 4;
    size_t len, pieces[3], i, one = 1;
    ak_buf whole, cut;
    int opts;
    if (size < 4) return 0;
    opts = data[0];
    len = size - 4;
    for (i = 0; i < 3; i++) pieces[i] = (size_t)data[1 + i] % 17 + 1;
    ak_buf_init(&whole, NULL);
    ak_buf_init(&cut, NULL);
    fz_decode(opts, s, len, NULL, 0, &whole);
    fz_decode(opts, s, len, pieces, 3, &cut);
    fz_same(&whole, &cut);
    if (opts & 1) {
        ak_buf_clear(&cut);
        fz_decode(opts, s, len, &one, 1, &cut);
        fz_same(&whole, &cut);
    }
    if (opts & 16) fz_build(s, len);
    ak_buf_free(&whole);
    ak_buf_free(&cut);
    return 0;
}
