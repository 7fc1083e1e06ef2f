/* adapter_check.h - what the model adapter tests (test_anthropic, test_gemini, test_ollama,
   test_openai) share beyond model_fixtures.h (the response fixtures): fixture files,
   request golden files and request text, allocation-failure sweeps, and end-to-end calls
   over the real POSIX transport against a mock server.

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

/* ---- response fixtures ------------------------------------------------------------------ */

/* A response fixture tests/fixtures/<provider>/<file> with what it must give: its .out
   (without the newline) and .chunks. */
typedef struct ac_files {
    char *body, *out, *chunks;
    size_t len;
} ac_files;

/* Loads f (free with ac_files_free); aborts when a file is missing. */
T_UNUSED static void ac_files_load(ac_files *f, const char *provider, const char *file) {
    char path[512];
    int base = (int)(strrchr(file, '.') - file);
    snprintf(path, sizeof path, "tests/fixtures/%s/%s", provider, file);
    f->body = mf_read(path, &f->len);
    snprintf(path, sizeof path, "tests/fixtures/%s/%.*s.out", provider, base, file);
    f->out = mf_read(path, NULL);
    snprintf(path, sizeof path, "tests/fixtures/%s/%.*s.chunks", provider, base, file);
    f->chunks = mf_read(path, NULL);
    if (!f->body || !f->out || !f->chunks) {
        fprintf(stderr, "missing fixture %s/%s\n", provider, file);
        abort();
    }
    if (*f->out) f->out[strlen(f->out) - 1] = 0;
}

T_UNUSED static void ac_files_free(ac_files *f) {
    free(f->body);
    free(f->out);
    free(f->chunks);
}

/* The decode of f's body (file as given to ac_files_load: .json is a whole body, anything
   else a stream) through provider's adapter. */
T_UNUSED static void ac_case(mf_case *c, const char *provider, const char *file, const ac_files *f) {
    memset(c, 0, sizeof *c);
    c->adapter = ak_adapter_find(provider);
    c->stream = strcmp(strrchr(file, '.'), ".json") != 0;
    c->body = f->body;
    c->len = f->len;
}

/* ---- requests ----------------------------------------------------------------------------- */

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

/* What an adapter built, as text: the URL, the headers ("Name: value\n" each) and the body,
   or the error it refused the request with. */
typedef struct ac_built {
    char url[512], headers[1024], body[16384];
    ak_error err;
} ac_built;

/* Builds `request` (GenerateRequest JSON) with adapter a and configuration cfg into b. */
T_UNUSED static ak_result ac_build_text(ac_built *b, const ak_adapter *a, const ak_provider_config *cfg, const char *request,
                                        int stream) {
    ak_context ctx;
    ak_json_doc d;
    ak_model_call call;
    ak_http_out out;
    ak_result rc;
    size_t i;
    ak_context_init(&ctx, NULL);
    ak_json_doc_init(&d, NULL);
    ak_model_call_init(&call, &ctx, t_parse(&d, request), &d);
    ak_http_out_init(&out, NULL);
    ak_error_clear(&b->err);
    b->url[0] = b->headers[0] = b->body[0] = 0;
    rc = a->build(cfg, call.request, call.messages, call.message_count, stream, &out, &b->err);
    if (rc == AK_OK) {
        snprintf(b->url, sizeof b->url, "%s", out.url.ptr);
        snprintf(b->body, sizeof b->body, "%s", out.body.ptr);
        for (i = 0; i < out.header_count; i++) /* offsets into header_text until sealed */
            snprintf(b->headers + strlen(b->headers), sizeof b->headers - strlen(b->headers), "%s: %s\n",
                     out.header_text.ptr + (uintptr_t)out.headers[i].name, out.header_text.ptr + (uintptr_t)out.headers[i].value);
    }
    ak_http_out_free(&out);
    ak_json_doc_free(&d);
    return rc;
}

/* The next turn of a conversation: decodes the streamed fixture `file` of provider, puts
   the content of the message it gives where turn_fmt has its one %s, and builds that
   request into req (as ac_build). */
T_UNUSED static void ac_next_turn(const char *provider, const char *file, const char *turn_fmt, ak_buf *req) {
    ac_files f;
    mf_case c;
    ak_buf out, turn;
    ak_json_doc d;
    ak_json *resp = NULL, *next = NULL;
    ak_error e;
    ac_files_load(&f, provider, file);
    ac_case(&c, provider, file, &f);
    ak_buf_init(&out, NULL);
    ak_buf_init(&turn, NULL);
    ak_json_doc_init(&d, NULL);
    CHECK_EQ(mf_run(&c, 0, 0, NULL, &out, NULL), 0);
    CHECK_OK(ak_json_parse_value(&d, out.ptr, out.len, NULL, &resp, &e));
    ak_buf_clear(&out);
    ak_json_write(ak_json_path(resp, "message.content"), &out);
    ak_buf_printf(&turn, turn_fmt, out.ptr);
    CHECK_OK(ak_json_parse_value(&d, turn.ptr, turn.len, NULL, &next, &e));
    CHECK_OK(ac_build(provider, next, 0, NULL, req, &e));
    ak_buf_free(&out);
    ak_buf_free(&turn);
    ak_json_doc_free(&d);
    ac_files_free(&f);
}

/* ---- allocation failures ---------------------------------------------------------------- */

/* Runs `run` with the n-th allocation failing, for n = 1, 2, ... until a run never reaches
   the failing allocation (which must happen before n = limit): each must end cleanly and
   free everything. */
T_UNUSED static void ac_sweep_alloc_failures(void (*run)(const ak_allocator *a, void *ud), void *ud, const char *what,
                                             long long limit) {
    long long n;
    for (n = 1; n < limit; n++) {
        t_alloc ta;
        run(t_alloc_init(&ta, n), ud);
        CHECK_MSG(ta.live == 0, "%s: allocation %lld failing leaks %lld bytes", what, n, ta.live);
        if (ta.count < n) break; /* this run saw no failure: every allocation was tried */
    }
    CHECK_MSG(n < limit, "%s: still failing after %lld allocations", what, limit);
}

/* A fixture whose decode, fed `step` bytes at a time, must give its .out or a clean
   out-of-memory error (for ac_sweep_alloc_failures). */
typedef struct ac_expect {
    mf_case c;
    const char *want;
    size_t step;
} ac_expect;

T_UNUSED static void ac_decode_expecting(const ak_allocator *a, void *ud) {
    const ac_expect *x = (const ac_expect *)ud;
    ak_buf out;
    ak_buf_init(&out, NULL);
    if (mf_run(&x->c, x->step, 0, a, &out, NULL) != -1 && strcmp(out.ptr, x->want) != 0)
        CHECK_MSG(strstr(out.ptr, "RESOURCE_EXHAUSTED") && strstr(out.ptr, "memory"), "fail_at %lld: %s",
                  ((const t_alloc *)a->ud)->fail_at, out.ptr);
    ak_buf_free(&out);
}

/* Decodes provider's fixture `file` fed `step` bytes at a time with every allocation
   failing in turn: each run ends in the fixture's outcome or a clean out-of-memory error
   and frees everything. */
T_UNUSED static void ac_fixture_survives_alloc_failures(const char *provider, const char *file, size_t step) {
    ac_files f;
    ac_expect x;
    ac_files_load(&f, provider, file);
    ac_case(&x.c, provider, file, &f);
    x.want = f.out;
    x.step = step;
    ac_sweep_alloc_failures(ac_decode_expecting, &x, file, 5000);
    ac_files_free(&f);
}

/* A request the adapter builds with every allocation failing in turn. */
typedef struct ac_build_case {
    const ak_adapter *adapter;
    const ak_provider_config *cfg;
    ak_model_call call;
    size_t min_body;             /* a body built must be longer than this */
} ac_build_case;

T_UNUSED static void ac_build_expecting(const ak_allocator *a, void *ud) {
    const ac_build_case *b = (const ac_build_case *)ud;
    ak_http_out out;
    ak_error e;
    ak_result rc;
    ak_http_out_init(&out, a);
    rc = b->adapter->build(b->cfg, b->call.request, b->call.messages, b->call.message_count, 1, &out, &e);
    CHECK(rc == AK_OK || (rc == AK_ERR_OUT_OF_MEMORY && strcmp(e.message, "out of memory") == 0));
    if (rc == AK_OK) CHECK(out.body.len > b->min_body && !out.url.err && !out.header_text.err);
    ak_http_out_free(&out);
}

/* Builds the streaming form of `request` (GenerateRequest JSON) with every allocation
   failing in turn: each build succeeds (a body longer than min_body) or says "out of
   memory", and frees everything. */
T_UNUSED static void ac_build_survives_alloc_failures(const ak_adapter *adapter, const ak_provider_config *cfg,
                                                      const char *request, size_t min_body) {
    ak_context ctx;
    ak_json_doc d;
    ac_build_case b;
    ak_context_init(&ctx, NULL);
    ak_json_doc_init(&d, NULL);
    b.adapter = adapter;
    b.cfg = cfg;
    b.min_body = min_body;
    ak_model_call_init(&b.call, &ctx, t_parse(&d, request), &d);
    ac_sweep_alloc_failures(ac_build_expecting, &b, "request build", 2000);
    ak_json_doc_free(&d);
}

/* A response fixture decoded with the allocator given (for ac_sweep_alloc_failures). */
T_UNUSED static void ac_decode_with(const ak_allocator *a, void *ud) {
    ak_buf out;
    ak_buf_init(&out, NULL);
    mf_run((const mf_case *)ud, 0, 0, a, &out, NULL);
    ak_buf_free(&out);
}

/* A full request fixture, built by ac_build with the allocator given (for
   ac_sweep_alloc_failures). */
typedef struct ac_full_request {
    const char *provider;
    const ak_json *request;
} ac_full_request;

T_UNUSED static void ac_build_full_with(const ak_allocator *a, void *ud) {
    const ac_full_request *r = (const ac_full_request *)ud;
    ak_buf out;
    ak_error e;
    ak_buf_init(&out, a);
    ac_build(r->provider, r->request, 1, a, &out, &e);
    ak_buf_free(&out);
}

/* Decodes each of provider's response fixtures files[0..n) whole (error_* ones with status
   429) and builds its requests/full.json, with every allocation failing in turn: each run
   ends cleanly and frees everything. */
T_UNUSED static void ac_alloc_failures_are_clean(const char *provider, const char *const *files, size_t n) {
    ac_full_request full;
    ak_json_doc d;
    ak_json *req = NULL;
    char path[256], *text;
    size_t i;
    for (i = 0; i < n; i++) {
        ac_files f;
        mf_case c;
        ac_files_load(&f, provider, files[i]);
        ac_case(&c, provider, files[i], &f);
        if (strncmp(files[i], "error", 5) == 0) c.status = 429;
        ac_sweep_alloc_failures(ac_decode_with, &c, files[i], 100000);
        ac_files_free(&f);
    }
    snprintf(path, sizeof path, "tests/fixtures/%s/requests/full.json", provider);
    text = mf_read(path, NULL);
    ak_json_doc_init(&d, NULL);
    CHECK(text && ak_json_parse_value(&d, text, strlen(text), NULL, &req, NULL) == AK_OK);
    full.provider = provider;
    full.request = req;
    ac_sweep_alloc_failures(ac_build_full_with, &full, "request build", 100000);
    ak_json_doc_free(&d);
    free(text);
}

/* A decode run's extras: what it sets up beyond the body, and the hints it reports. */
typedef struct ac_decode_run {
    int status;                  /* the HTTP status the body comes with; 0 = 200 */
    size_t max_body;             /* the response size limit; 0 = the default */
    ak_chunk_fn on_chunk;        /* NULL: chunks are not delivered */
    int no_retry, retryable;     /* out: the decoder's retry hints */
} ac_decode_run;

/* Decodes body (a stream, or a whole body when stream is 0) through provider's adapter as
   run says; returns the akdriver line (valid until the next call). */
T_UNUSED static const char *ac_decode_as(const char *provider, int stream, const char *body, ac_decode_run *run) {
    static char line[8192];
    ak_context ctx;
    ak_json_doc doc;
    ak_decode dc;
    ak_buf out;
    ak_context_init(&ctx, NULL);
    ak_json_doc_init(&doc, NULL);
    CHECK_OK(ak_decode_init(&dc, &ctx, ak_adapter_find(provider), stream, &doc));
    if (run->max_body) dc.max_body = run->max_body;
    dc.on_chunk = run->on_chunk;
    ak_decode_status(&dc, run->status ? run->status : 200);
    ak_decode_body(&dc, body, strlen(body));
    ak_decode_done(&dc, AK_OK, NULL);
    ak_buf_init_fixed(&out, line, sizeof line);
    mf_render(&dc, &out);
    run->no_retry = dc.no_retry;
    run->retryable = dc.retryable;
    ak_decode_free(&dc);
    ak_json_doc_free(&doc);
    return line;
}

/* ac_decode_as with a response size limit of max_body bytes and nothing else. */
T_UNUSED static const char *ac_decode_limited(const char *provider, int stream, const char *body, size_t max_body) {
    ac_decode_run run;
    memset(&run, 0, sizeof run);
    run.max_body = max_body;
    return ac_decode_as(provider, stream, body, &run);
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
    call.on_chunk = mf_on_chunk;
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

/* ac_e2e_run against a mock server answering rs[0..n); m is left stopped for the caller to
   mock_free. Returns the last request the server read, or NULL (a failed check) when it
   did not read n. */
T_UNUSED static const mock_request *ac_e2e_mock(const char *provider, mock_server *m, const mock_response *rs, size_t n,
                                                const char *request, int stream, ac_e2e *r) {
    CHECK(mock_start(m, rs, n) == 0);
    ac_e2e_run(provider, m->url, request, stream, r);
    mock_stop(m);
    CHECK_EQ(m->count, n);
    return m->count == n ? &m->req[n - 1] : NULL;
}

/* ac_call against a replay transport that answers res[0..n) in order (on ctx); rp is left
   for the caller to inspect and ak_replay_free. */
T_UNUSED static void ac_replay_call(const char *provider, ak_context *ctx, ak_replay *rp, const ak_replay_response *res,
                                    size_t n, const char *request, int stream, ac_e2e *r) {
    ak_transport t;
    size_t i;
    ak_replay_init(rp, ctx, AK_REPLAY_SYNC);
    for (i = 0; i < n; i++) ak_replay_add(rp, &res[i], NULL);
    t = ak_replay_transport(rp);
    ac_call(provider, NULL, &t, request, stream, r);
}

T_UNUSED static void ac_e2e_free(ac_e2e *r) {
    ak_buf_free(&r->chunks);
    ak_buf_free(&r->out);
}


/* ---- end to end with mf_e2e: an HTTP model over the POSIX transport, a mock server ------ */

/* Where and how a call reaches the model. */
typedef struct ac_endpoint {
    const ak_adapter *adapter;
    const char *model;
    const char *api_key;         /* NULL = none */
    const char *base_path;       /* appended to the mock server's URL ("/v1"); "" = none */
    int nonblocking;             /* the POSIX transport's mode */
} ac_endpoint;

/* What one call against a mock server gave. */
typedef struct ac_mock_call {
    mock_server m;               /* stopped: the requests it read are m.req[0..m.count) */
    size_t served;               /* m.count, kept after mock_free */
    char out[4096];              /* the outcome, as akdriver prints it */
    int done;                    /* 1: the outcome is a response, 0: an error */
    char chunks[4096];           /* the chunks streamed, one JSON per line */
    int attempts;
    int64_t slept;               /* fake ms waited between attempts */
} ac_mock_call;

/* Serves rs[0..n) from a mock server and runs one call of `request` (GenerateRequest JSON;
   up to 3 attempts) through ep against it, to the end. Free with mock_free(&mc->m). */
T_UNUSED static void ac_mock_call_run(ac_mock_call *mc, const ac_endpoint *ep, const mock_response *rs, size_t n,
                                      const char *request, int stream) {
    char base[128];
    mf_e2e e;
    ak_model_call call;
    ak_json_doc doc;
    ak_buf b;
    if (mock_start(&mc->m, rs, n) != 0) {
        fprintf(stderr, "cannot start the mock server\n");
        abort();
    }
    snprintf(base, sizeof base, "%s%s", mc->m.url, ep->base_path);
    CHECK(mf_e2e_init(&e, ep->adapter, ep->model, base, ep->api_key, ep->nonblocking) == 0);
    ak_json_doc_init(&doc, NULL);
    mf_e2e_call(&e, request, stream, 3, &call, &doc);
    ak_buf_init_fixed(&b, mc->out, sizeof mc->out);
    mc->done = mf_render_call(&call, &b) == 0;
    snprintf(mc->chunks, sizeof mc->chunks, "%s", e.chunks.ptr ? e.chunks.ptr : "");
    mc->attempts = call.attempts;
    mc->slept = e.slept;
    mock_stop(&mc->m);
    mc->served = mc->m.count;
    mf_e2e_free(&e);
    ak_json_doc_free(&doc);
}

#endif
