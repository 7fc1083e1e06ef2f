/* model_fixtures.h - provider response fixtures run through the adapter engine (ak_decode),
   rendered exactly as `akdriver model-response` prints them.

   A fixture is a raw response body in tests/fixtures/<provider>/:
     <name>.sse or <name>.ndjson   a streaming body (SSE / NDJSON), fed with --stream
     <name>.json                   a whole non-streaming body
     <name>.http                   optional: the status code on the first line, then header
                                   lines "Name: value" (default: 200, no headers)
     <name>.out                    expected output: the akdriver line (response or error)
     <name>.chunks                 expected chunks, one compact JSON per line (may be empty)
   mf_check_dir feeds every fixture whole, one byte at a time, and cut in two at every
   offset (every 7th under AK_VALGRIND, which is ~30x slower), and compares each result with
   the .out and .chunks files. With MF_WRITE=1 in the environment it writes the .out and
   .chunks files from the whole-body run instead (review them before committing!). */
#ifndef AK_MODEL_FIXTURES_H
#define AK_MODEL_FIXTURES_H

#include "../agentkit.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define MF_UNUSED __attribute__((unused))
#else
#define MF_UNUSED
#endif

/* One response to decode. */
typedef struct mf_case {
    const ak_adapter *adapter;
    int stream;
    int status;                  /* 0 = 200 */
    const char *headers;         /* "Name: value" lines separated by '\n'; NULL = none */
    const char *body;
    size_t len;
} mf_case;

/* Appends what akdriver prints for a finished decode: the response JSON, or
   {"error":{"status","message"},"retryAfterMs"?}. Returns 0 for a response, 1 for an
   error. */
MF_UNUSED static int mf_render(const ak_decode *dc, ak_buf *out) {
    ak_json_doc d;
    ak_json *o, *e;
    if (dc->response) {
        ak_json_write(dc->response, out);
        return 0;
    }
    ak_json_doc_init(&d, NULL);
    o = ak_json_new_object(&d);
    e = ak_json_new_object(&d);
    ak_json_set_str(&d, e, "status", ak_status_name(dc->error.status));
    ak_json_set_str(&d, e, "message", dc->error.message);
    ak_json_set(&d, o, "error", e);
    if (dc->retry_after_ms >= 0) ak_json_set_int(&d, o, "retryAfterMs", dc->retry_after_ms);
    ak_json_write(o, out);
    ak_json_doc_free(&d);
    return 1;
}

/* The same for a finished model call (call->response or call->error). */
MF_UNUSED static int mf_render_call(const ak_model_call *call, ak_buf *out) {
    ak_decode dc;
    memset(&dc, 0, sizeof dc);
    dc.response = call->state == AK_CALL_DONE ? call->response : NULL;
    dc.error = call->error;
    dc.retry_after_ms = call->retry_after_ms;
    return mf_render(&dc, out);
}

/* Feeds "Name: value" lines (separated by '\n', CR tolerated) to the decoder. */
MF_UNUSED static void mf_headers(ak_decode *dc, const char *lines) {
    while (lines && *lines) {
        const char *eol = strchr(lines, '\n'), *colon, *v, *end;
        if (!eol) eol = lines + strlen(lines);
        end = eol;
        if (end > lines && end[-1] == '\r') end--;
        colon = (const char *)memchr(lines, ':', (size_t)(end - lines));
        if (colon) {
            for (v = colon + 1; v < end && *v == ' '; v++) {
            }
            ak_decode_header(dc, lines, (size_t)(colon - lines), v, (size_t)(end - v));
        }
        lines = *eol ? eol + 1 : eol;
    }
}

static ak_result mf_on_chunk(void *ud, const ak_json *chunk) {
    ak_buf *chunks = (ak_buf *)ud;
    ak_json_write(chunk, chunks);
    ak_buf_putc(chunks, '\n');
    return AK_OK;
}

/* Decodes c with the body fed `step` bytes at a time (0: see `cut`), or cut once at offset
   `cut` (0: whole). Appends the rendered outcome to out and each chunk (a line) to chunks
   (may be NULL). alloc (may be NULL) backs the decoder. Returns mf_render's result, or -1
   when the decoder could not even be set up. */
MF_UNUSED static int mf_run(const mf_case *c, size_t step, size_t cut, const ak_allocator *alloc, ak_buf *out,
                            ak_buf *chunks) {
    ak_context ctx;
    ak_context_desc desc;
    ak_json_doc doc;
    ak_decode dc;
    size_t at = 0;
    int rc;
    memset(&desc, 0, sizeof desc);
    if (alloc) desc.allocator = *alloc;
    ak_context_init(&ctx, &desc);
    ak_json_doc_init(&doc, ak_context_allocator(&ctx));
    if (ak_decode_init(&dc, &ctx, c->adapter, c->stream, &doc) != AK_OK) {
        ak_decode_free(&dc);
        ak_json_doc_free(&doc);
        return -1;
    }
    dc.on_chunk = chunks ? mf_on_chunk : NULL;
    dc.chunk_ud = chunks;
    ak_decode_status(&dc, c->status ? c->status : 200);
    mf_headers(&dc, c->headers);
    while (at < c->len) {
        size_t n = step ? step : cut && at < cut ? cut : c->len - at;
        if (n > c->len - at) n = c->len - at;
        if (ak_decode_body(&dc, c->body + at, n) != AK_OK) break;
        at += n;
    }
    ak_decode_done(&dc, AK_OK, NULL);
    rc = mf_render(&dc, out);
    ak_decode_free(&dc);
    ak_json_doc_free(&doc);
    return rc;
}

/* Reads a whole file (NUL-terminated); NULL if it cannot. free() it. */
MF_UNUSED static char *mf_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = (char *)malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = 0;
            if (len) *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

static int mf_write(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, len, f) == len;
    if (f) fclose(f);
    return ok ? 0 : -1;
}

/* The status and headers of a fixture from its .http file (status 0 if none). */
static char *mf_http(const char *base, int *status) {
    char path[1024];
    char *text, *nl;
    snprintf(path, sizeof path, "%s.http", base);
    *status = 0;
    if (!(text = mf_read(path, NULL))) return NULL;
    *status = atoi(text);
    nl = strchr(text, '\n');
    memmove(text, nl ? nl + 1 : text + strlen(text), strlen(nl ? nl + 1 : "") + 1);
    return text;
}

/* Runs c fed `step` bytes at a time or cut at `cut` and compares with the whole run;
   returns 1 (reported on stderr) when the outcome or the chunks differ. */
static int mf_same(const mf_case *c, size_t step, size_t cut, const ak_buf *out, const ak_buf *chunks, const char *file) {
    ak_buf o, ch;
    int bad;
    ak_buf_init(&o, NULL);
    ak_buf_init(&ch, NULL);
    mf_run(c, step, cut, NULL, &o, &ch);
    ak_buf_putc(&o, '\n');
    bad = strcmp(o.ptr, out->ptr) != 0 || strcmp(ch.ptr ? ch.ptr : "", chunks->ptr ? chunks->ptr : "") != 0;
    if (bad) {
        if (step) fprintf(stderr, "%s: fed %lu byte(s) at a time it gives:\n  %s", file, (unsigned long)step, o.ptr);
        else fprintf(stderr, "%s: cut at offset %lu it gives:\n  %s", file, (unsigned long)cut, o.ptr);
    }
    ak_buf_free(&o);
    ak_buf_free(&ch);
    return bad;
}

/* Checks one fixture; returns the number of mismatches (each reported on stderr). */
static int mf_check_one(const ak_adapter *adapter, const char *dir, const char *file) {
    char base[1024], path[1024];
    const char *dot = strrchr(file, '.');
    char *want_out, *want_chunks, *hdrs;
    size_t k, len, stride = getenv("AK_VALGRIND") ? 7 : 1;
    ak_buf out, chunks;
    mf_case c;
    int bad = 0;
    snprintf(base, sizeof base, "%s/%.*s", dir, (int)(dot - file), file);
    memset(&c, 0, sizeof c);
    c.adapter = adapter;
    c.stream = strcmp(dot, ".json") != 0;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (!(c.body = mf_read(path, &len))) {
        fprintf(stderr, "%s: cannot read\n", path);
        return 1;
    }
    c.len = len;
    hdrs = mf_http(base, &c.status);
    c.headers = hdrs;
    ak_buf_init(&out, NULL);
    ak_buf_init(&chunks, NULL);
    mf_run(&c, 0, 0, NULL, &out, &chunks);
    ak_buf_putc(&out, '\n');
    if (getenv("MF_WRITE")) {
        snprintf(path, sizeof path, "%s.out", base);
        mf_write(path, out.ptr, out.len);
        snprintf(path, sizeof path, "%s.chunks", base);
        mf_write(path, chunks.ptr ? chunks.ptr : "", chunks.len);
    }
    snprintf(path, sizeof path, "%s.out", base);
    want_out = mf_read(path, NULL);
    snprintf(path, sizeof path, "%s.chunks", base);
    want_chunks = mf_read(path, NULL);
    if (!want_out || !want_chunks || strcmp(want_out, out.ptr) != 0 || strcmp(want_chunks, chunks.ptr ? chunks.ptr : "") != 0) {
        fprintf(stderr, "%s/%s: output differs from %s.out/.chunks\n  got: %s  chunks:\n%s", dir, file, base, out.ptr,
                chunks.ptr ? chunks.ptr : "");
        bad++;
    }
    /* every way of cutting the body must give the same result */
    for (k = 1; k < len && !bad; k += stride) bad += mf_same(&c, 0, k, &out, &chunks, file);
    if (!bad) bad += mf_same(&c, 1, 0, &out, &chunks, file);
    ak_buf_free(&out);
    ak_buf_free(&chunks);
    free(want_out);
    free(want_chunks);
    free(hdrs);
    free((void *)c.body);
    return bad;
}

/* Checks every fixture (.sse, .ndjson, .json) of dir against `adapter`; *count receives the
   number of fixtures. Returns the number of mismatches. */
MF_UNUSED static int mf_check_dir(const ak_adapter *adapter, const char *dir, int *count) {
    DIR *dp = opendir(dir);
    struct dirent *e;
    int bad = 0;
    *count = 0;
    if (!dp) {
        fprintf(stderr, "%s: cannot open\n", dir);
        return 1;
    }
    while ((e = readdir(dp)) != NULL) {
        const char *dot = strrchr(e->d_name, '.');
        if (!dot || (strcmp(dot, ".sse") && strcmp(dot, ".ndjson") && strcmp(dot, ".json"))) continue;
        bad += mf_check_one(adapter, dir, e->d_name);
        (*count)++;
    }
    closedir(dp);
    return bad;
}

/* ---- end to end: an ak_http_model over the real POSIX transport, on a fake clock -------- */

#ifdef AK_ENABLE_POSIX
/* A context whose clocks are `clock` (ms) and whose sleep advances it, so a retry delay is
   waited out instantly and can be asserted exactly; a POSIX transport; an HTTP model. Must
   not move after mf_e2e_init. */
typedef struct mf_e2e {
    ak_context ctx;
    ak_posix_transport transport;
    ak_http_model model;
    ak_provider_config cfg;
    int64_t clock;
    int64_t slept;               /* total ms slept (retry delays) */
    ak_buf chunks;               /* chunks streamed by the last call, one JSON per line */
} mf_e2e;

static int64_t mf_e2e_clock(void *ud) { return ((mf_e2e *)ud)->clock; }
static void mf_e2e_sleep(void *ud, int64_t ms) {
    ((mf_e2e *)ud)->clock += ms;
    ((mf_e2e *)ud)->slept += ms;
}

/* base_url is the mock server's URL plus the provider's path prefix ("/v1"...). Returns 0. */
MF_UNUSED static int mf_e2e_init(mf_e2e *e, const ak_adapter *adapter, const char *model, const char *base_url,
                                 const char *api_key, int nonblocking) {
    ak_context_desc desc;
    ak_posix_transport_desc td;
    ak_error err;
    memset(e, 0, sizeof *e);
    memset(&desc, 0, sizeof desc);
    e->clock = 1000000;
    desc.mono_ms = mf_e2e_clock;
    desc.now_ms = mf_e2e_clock;
    desc.sleep_ms = mf_e2e_sleep;
    desc.user_data = e;
    ak_context_init(&e->ctx, &desc);
    memset(&td, 0, sizeof td);
    td.ctx = &e->ctx;
    td.nonblocking = nonblocking;
    if (ak_posix_transport_init(&e->transport, &td, &err) != AK_OK) return -1;
    e->cfg.model = model;
    e->cfg.base_url = base_url;
    e->cfg.api_key = api_key;
    e->cfg.transport = &e->transport.transport;
    ak_buf_init(&e->chunks, NULL);
    return ak_http_model_init(&e->model, &e->ctx, adapter, &e->cfg) == AK_OK ? 0 : -1;
}

/* Runs one call of `request` (GenerateRequest JSON) to the end, pumping the transport;
   `call` is initialised here and its request and response live in doc. */
MF_UNUSED static void mf_e2e_call(mf_e2e *e, const char *request, int stream, int max_attempts, ak_model_call *call,
                                  ak_json_doc *doc) {
    ak_json *req = NULL;
    ak_result rc;
    ak_buf_clear(&e->chunks);
    ak_json_parse_value(doc, request, strlen(request), NULL, &req, NULL);
    ak_model_call_init(call, &e->ctx, req, doc);
    call->stream = stream;
    call->on_chunk = mf_on_chunk;
    call->chunk_ud = &e->chunks;
    call->retry.max_attempts = max_attempts;
    rc = ak_model_call_start(call, &e->model.model);
    while (rc == AK_PENDING) rc = ak_model_call_poll(call, 50);
}

MF_UNUSED static void mf_e2e_free(mf_e2e *e) {
    ak_posix_transport_free(&e->transport);
    ak_buf_free(&e->chunks);
}
#endif

#endif
