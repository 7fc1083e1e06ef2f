/* adapter_check.h - what the Anthropic and Gemini adapter tests share beyond
   model_fixtures.h (the response fixtures): request golden files, allocation-failure
   sweeps and the end-to-end client over the real POSIX transport.

   Request fixtures are tests/fixtures/<provider>/requests/NAME.json (a Genkit
   GenerateRequest; "_stream" in NAME builds the streaming form) with NAME.out: the
   {"method","url","headers","body"} line `akdriver model-request` prints, or
   {"error":"<message>"} for a request the adapter refuses. MF_WRITE=1 rewrites the .out
   files from what the adapter does now (review the diff before keeping it). */
#ifndef AK_ADAPTER_CHECK_H
#define AK_ADAPTER_CHECK_H

#include "test.h"
#include "model_fixtures.h"
#include "mockserver.h"

/* The placeholder configuration of the request fixtures (as akdriver model-request). */
T_UNUSED static const char *ac_model_id(const char *provider) {
    return strcmp(provider, "anthropic") == 0 ? "claude-sonnet-4-5" : "gemini-2.5-flash";
}

/* Builds the provider request of a GenerateRequest into out as one line (see above);
   alloc (may be NULL) backs everything. Returns the adapter's result. */
T_UNUSED static ak_result ac_build(const char *provider, const ak_json *request, int stream, const ak_allocator *alloc,
                                   ak_buf *out, ak_error *err) {
    ak_provider_config cfg;
    ak_http_out o;
    ak_json_doc d;
    const ak_json *list[64], *m;
    ak_json *body = NULL;
    size_t n = 0, i;
    ak_result rc;
    memset(&cfg, 0, sizeof cfg);
    cfg.model = ac_model_id(provider);
    cfg.api_key = "test-key";
    for (m = ak_json_first(ak_json_get(request, "messages")); m && n < 64; m = m->next) list[n++] = m;
    ak_http_out_init(&o, alloc);
    ak_json_doc_init(&d, alloc);
    rc = ak_adapter_find(provider)->build(&cfg, request, list, n, stream, &o, err);
    if (rc == AK_OK && (o.url.err || o.body.err || o.header_text.err)) rc = AK_ERR_OUT_OF_MEMORY;
    if (rc == AK_OK) rc = ak_json_parse_value(&d, o.body.ptr, o.body.len, NULL, &body, err);
    if (rc == AK_OK) {
        const char *text = o.header_text.ptr;
        ak_buf_printf(out, "{\"method\":\"%s\",\"url\":", o.method);
        ak_json_write_str(out, o.url.ptr, o.url.len);
        ak_buf_puts(out, ",\"headers\":{");
        /* header_text holds name NUL value NUL for each header, in order */
        for (i = 0; i < o.header_count; i++) {
            const char *value = text + strlen(text) + 1;
            if (i) ak_buf_putc(out, ',');
            ak_json_write_str(out, text, strlen(text));
            ak_buf_putc(out, ':');
            ak_json_write_str(out, value, strlen(value));
            text = value + strlen(value) + 1;
        }
        ak_buf_puts(out, "},\"body\":");
        ak_json_write(body, out);
        ak_buf_putc(out, '}');
    }
    ak_json_doc_free(&d);
    ak_http_out_free(&o);
    return rc;
}

/* The line for one request fixture. */
T_UNUSED static void ac_request_line(const char *provider, const char *name, const char *input, ak_buf *out) {
    ak_json_doc d;
    ak_json *req = NULL;
    ak_error e;
    ak_json_doc_init(&d, NULL);
    if (ak_json_parse_value(&d, input, strlen(input), NULL, &req, &e) != AK_OK ||
        ac_build(provider, req, strstr(name, "_stream") != NULL, NULL, out, &e) != AK_OK) {
        ak_buf_clear(out);
        ak_buf_puts(out, "{\"error\":");
        ak_json_write_str(out, e.message, strlen(e.message));
        ak_buf_putc(out, '}');
    }
    ak_buf_putc(out, '\n');
    ak_json_doc_free(&d);
}

/* Checks every request fixture of provider; returns how many there were. */
T_UNUSED static int ac_check_requests(const char *provider) {
    char dir[256], path[600];
    DIR *dp;
    struct dirent *ent;
    int count = 0;
    snprintf(dir, sizeof dir, "tests/fixtures/%s/requests", provider);
    if ((dp = opendir(dir)) == NULL) return 0;
    while ((ent = readdir(dp)) != NULL) {
        const char *dot = strrchr(ent->d_name, '.');
        char *input, *want;
        ak_buf out;
        if (!dot || strcmp(dot, ".json") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        input = mf_read(path, NULL);
        snprintf(path, sizeof path, "%s/%.*s.out", dir, (int)(dot - ent->d_name), ent->d_name);
        ak_buf_init(&out, NULL);
        ac_request_line(provider, ent->d_name, input ? input : "", &out);
        if (getenv("MF_WRITE")) mf_write(path, out.ptr, out.len);
        want = mf_read(path, NULL);
        CHECK_MSG(want && strcmp(want, out.ptr) == 0, "%s:\n  got      %s  expected %s", path, out.ptr, want ? want : "(none)\n");
        ak_buf_free(&out);
        free(input), free(want);
        count++;
    }
    closedir(dp);
    return count;
}

/* Runs `run` with the n-th allocation failing, for n = 1, 2, ... until a run never reaches
   the failing allocation: each must end cleanly and free everything. */
T_UNUSED static void ac_sweep_alloc_failures(void (*run)(const ak_allocator *a, void *ud), void *ud, const char *what) {
    long long n;
    for (n = 1; n < 100000; n++) {
        t_alloc ta;
        run(t_alloc_init(&ta, n), ud);
        CHECK_MSG(ta.live == 0, "%s: allocation %lld failing leaks %lld bytes", what, n, ta.live);
        if (ta.count < n) break;
    }
}

/* A response fixture decoded with the allocator given (for ac_sweep_alloc_failures). */
T_UNUSED static void ac_decode_with(const ak_allocator *a, void *ud) {
    ak_buf out;
    ak_buf_init(&out, NULL);
    mf_run((const mf_case *)ud, 0, 0, a, &out, NULL);
    ak_buf_free(&out);
}

/* Reads a fixture body into c (free c->body). */
T_UNUSED static void ac_fixture(mf_case *c, const char *provider, const char *file) {
    char path[512];
    const char *dot = strrchr(file, '.');
    memset(c, 0, sizeof *c);
    snprintf(path, sizeof path, "tests/fixtures/%s/%s", provider, file);
    c->adapter = ak_adapter_find(provider);
    c->stream = dot && strcmp(dot, ".sse") == 0;
    c->body = mf_read(path, &c->len);
    if (!c->body) {
        CHECK_MSG(0, "cannot read %s", path);
        c->body = (char *)calloc(1, 1);
    }
}

/* ---- end to end: the adapter over the POSIX transport against a mock server ----------- */

/* A fake monotonic clock that moves only when the library sleeps, so retry delays are
   exact and cost no time. */
static int64_t ac_clock;
T_UNUSED static int64_t ac_clock_now(void *ud) { (void)ud; return ac_clock; }
T_UNUSED static void ac_clock_sleep(void *ud, int64_t ms) { (void)ud; ac_clock += ms; }

typedef struct ac_e2e {
    ak_buf chunks;               /* streamed chunks, one per line */
    ak_buf out;                  /* the response, or "ERR STATUS: message" */
    int attempts;
    int64_t waited_ms;           /* fake time spent waiting between attempts */
} ac_e2e;

T_UNUSED static ak_result ac_e2e_chunk(void *ud, const ak_json *chunk) {
    ak_buf *b = (ak_buf *)ud;
    ak_json_write(chunk, b);
    ak_buf_putc(b, '\n');
    return AK_OK;
}

/* Runs one model call of `request` (JSON text) through provider's adapter and transport t
   against base_url (NULL: the provider's), pumping until it finishes. */
T_UNUSED static void ac_call(const char *provider, const char *base_url, ak_transport *t, const char *request,
                             int stream, ac_e2e *r) {
    ak_context ctx;
    ak_context_desc desc;
    ak_provider_config cfg;
    ak_http_model hm;
    ak_model_call call;
    ak_json_doc d;
    ak_json *req = NULL;
    ak_error e;
    ak_result rc;
    int64_t start;
    memset(&desc, 0, sizeof desc);
    desc.mono_ms = ac_clock_now;
    desc.sleep_ms = ac_clock_sleep;
    ak_context_init(&ctx, &desc);
    memset(&cfg, 0, sizeof cfg);
    cfg.model = ac_model_id(provider);
    cfg.base_url = base_url;
    cfg.api_key = "test-key";
    cfg.transport = t;
    CHECK_OK(ak_http_model_init(&hm, &ctx, ak_adapter_find(provider), &cfg));
    ak_json_doc_init(&d, NULL);
    CHECK_OK(ak_json_parse_value(&d, request, strlen(request), NULL, &req, &e));
    ak_buf_init(&r->chunks, NULL);
    ak_buf_init(&r->out, NULL);
    ak_model_call_init(&call, &ctx, req, &d);
    call.stream = stream;
    call.on_chunk = ac_e2e_chunk;
    call.chunk_ud = &r->chunks;
    call.retry.no_jitter = 1;
    start = ac_clock;
    rc = ak_model_call_start(&call, &hm.model);
    while (rc == AK_PENDING) rc = ak_model_call_poll(&call, 1000);
    CHECK_OK(rc);
    if (call.state == AK_CALL_DONE) ak_json_write(call.response, &r->out);
    else ak_buf_printf(&r->out, "ERR %s: %s", ak_status_name(call.error.status), call.error.message);
    r->attempts = call.attempts;
    r->waited_ms = ac_clock - start;
    ak_json_doc_free(&d);
}

/* ac_call over the nonblocking POSIX transport (real sockets, real time for them). */
T_UNUSED static void ac_e2e_run(const char *provider, const char *base_url, const char *request, int stream,
                                ac_e2e *r) {
    ak_context net_ctx;
    ak_posix_transport t;
    ak_posix_transport_desc td;
    ak_error e;
    ak_context_init(&net_ctx, NULL);
    memset(&td, 0, sizeof td);
    td.ctx = &net_ctx;
    td.nonblocking = 1;
    CHECK_OK(ak_posix_transport_init(&t, &td, &e));
    ac_call(provider, base_url, &t.transport, request, stream, r);
    ak_posix_transport_free(&t);
}

/* The expected output of a response fixture (its .out without the newline; free()). */
T_UNUSED static char *ac_expected(const char *provider, const char *name, const char *ext) {
    char path[512], *s;
    size_t n;
    snprintf(path, sizeof path, "tests/fixtures/%s/%s%s", provider, name, ext);
    s = mf_read(path, NULL);
    if (!s) return (char *)calloc(1, 1);
    n = strlen(s);
    if (strcmp(ext, ".out") == 0 && n && s[n - 1] == '\n') s[n - 1] = 0;
    return s;
}

/* Decodes c with a response size limit of max_body bytes; out gets the akdriver line. */
T_UNUSED static void ac_decode_limited(const mf_case *c, size_t max_body, ak_buf *out) {
    ak_context ctx;
    ak_json_doc doc;
    ak_decode dc;
    ak_context_init(&ctx, NULL);
    ak_json_doc_init(&doc, NULL);
    CHECK_OK(ak_decode_init(&dc, &ctx, c->adapter, c->stream, &doc));
    dc.max_body = max_body;
    ak_decode_status(&dc, 200);
    ak_decode_body(&dc, c->body, c->len);
    ak_decode_done(&dc, AK_OK, NULL);
    mf_render(&dc, out);
    ak_decode_free(&dc);
    ak_json_doc_free(&doc);
}

T_UNUSED static void ac_e2e_free(ac_e2e *r) {
    ak_buf_free(&r->chunks);
    ak_buf_free(&r->out);
}

#endif
