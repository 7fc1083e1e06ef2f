/* libFuzzer target: the agent server, whole request in, response out. The interop agents
   (tests/interop_agents.c: prompt and custom agents, tools, interrupts, stores) are served by
   ak_serve; every request is answered through a capturing writer and pumped to the end on a
   fake clock that jumps a second per pump (so slow turns and detached ones finish).

   Input: byte 0 = options, byte 1 = the allocation to fail (0 = none), the rest = requests.
     bit 0     the rest is one ak_serve_request built directly, fields separated by NUL:
               method, path, query (empty = none), header lines "name:value" separated by
               '\n', then the body (any bytes); a missing field is NULL. Without bit 0 the
               rest is what a client sends on one connection, parsed by the HTTP/1.1 request
               parser (up to 8 pipelined requests, in the order a server would answer them).
     bit 1     an auth hook: no Authorization header is UNAUTHENTICATED, "deny" is
               PERMISSION_DENIED, anything else becomes the context {"user": value}
     bit 2     tight limits: 512-byte bodies, nesting depth 8
     bit 3     CORS on (preflight answers)
     bits 4-7  n > 0: the client goes away at its nth write (writes fail with AK_ERR_CLOSED)

   Checks: ak_serve_handle takes a request (AK_OK) or declines it untouched (NOT_FOUND, or
   OUT_OF_MEMORY under allocation failure); a taken request is started once, ended once,
   within bounded pumps; a JSON answer parses and, when it is an error, is {status,
   message}; a streamed answer is "data:" frames of {message} ending in one {result} frame
   or an "error:" frame; every body is valid UTF-8; after the server and the agents are
   freed nothing has leaked. Only allocation failure or a vanished client may cut an
   answer short. */
#define AGENTKIT_IMPLEMENTATION
#include "../agentkit.h"
#include "../tests/interop_agents.c"
#include <stdlib.h>
#include <string.h>
#include "fuzz_heap.h"

/* ---- allocator, clock, random ------------------------------------------------------------ */

typedef struct fz_env {
    fz_heap heap;
    int64_t now;
    uint32_t seed;
    ak_context ctx;
} fz_env;

static int64_t fz_clock(void *ud) { return ((fz_env *)ud)->now; }
static void fz_sleep(void *ud, int64_t ms) { ((fz_env *)ud)->now += ms; }
static ak_result fz_random(void *ud, void *buf, size_t len) {
    fz_env *e = (fz_env *)ud;
    size_t i;
    for (i = 0; i < len; i++) {
        e->seed = e->seed * 1664525u + 1013904223u;
        ((unsigned char *)buf)[i] = (unsigned char)(e->seed >> 24);
    }
    return AK_OK;
}

static void fz_env_init(fz_env *e, long long fail_at) {
    ak_context_desc cd;
    memset(e, 0, sizeof *e);
    e->now = 1700000000000LL;
    e->seed = 7;
    memset(&cd, 0, sizeof cd);
    cd.allocator = *fz_heap_init(&e->heap, fail_at);
    cd.now_ms = fz_clock, cd.mono_ms = fz_clock, cd.sleep_ms = fz_sleep, cd.random = fz_random;
    cd.user_data = e;
    ak_context_init(&e->ctx, &cd);
}

/* Allocation failure or a vanished client may cut an answer short; nothing else may. */
static int fz_env_failed(const fz_env *e) { return e->heap.fail_at && e->heap.calls >= e->heap.fail_at; }

/* ---- the capturing writer --------------------------------------------------------------- */

typedef struct fz_answer {
    int status, started, ended, writes, gone_at, gone;
    int json;                    /* Content-Type application/json */
    ak_buf body;
} fz_answer;

static ak_result fz_start(void *ud, int status, const ak_header *h, size_t n) {
    fz_answer *a = (fz_answer *)ud;
    const char *type = ak_http_header_get(h, n, "Content-Type");
    if (a->started || a->ended || status < 200 || status > 599) abort();
    a->started = 1;
    a->status = status;
    a->json = type && strncmp(type, "application/json", 16) == 0;
    return AK_OK;
}
static ak_result fz_write(void *ud, const char *data, size_t len) {
    fz_answer *a = (fz_answer *)ud;
    if (!a->started || a->ended) abort();
    if (a->gone || (a->gone_at && ++a->writes >= a->gone_at)) {
        a->gone = 1;
        return AK_ERR_CLOSED;
    }
    ak_buf_append(&a->body, data, len);
    return AK_OK;
}
static ak_result fz_end(void *ud) {
    fz_answer *a = (fz_answer *)ud;
    if (a->ended) abort();
    a->ended = 1;
    return AK_OK;
}

/* {"status": NAME, "message": text} */
static void fz_check_error_json(const ak_json *e) {
    if (!ak_json_get_str(e, "status") || !ak_json_get_str(e, "message")) abort();
}

/* A streamed answer: "data: {"message":..}" frames, then one {"result"} or an error frame. */
static void fz_check_frames(const ak_buf *b) {
    ak_json_doc d;
    size_t at = 0;
    int last = 0;
    ak_json_doc_init(&d, NULL);
    while (at < b->len) {
        const char *f = b->ptr + at, *end = strstr(f, "\n\n");
        const char *colon = memchr(f, ':', end ? (size_t)(end - f) : 0);
        ak_json *v;
        if (!end || !colon || last) abort(); /* unterminated, nameless, or after the last */
        ak_json_doc_reset(&d);
        if (ak_json_parse(&d, colon + 1, (size_t)(end - colon - 1), NULL) != AK_OK) abort();
        v = d.root;
        if (strncmp(f, "error:", 6) == 0) {
            fz_check_error_json(ak_json_get(v, "error"));
            last = 1;
        } else if (strncmp(f, "data:", 5) != 0) {
            abort();
        } else if (ak_json_get(v, "result")) {
            last = 1;
        } else if (!ak_json_get(v, "message")) {
            abort();
        }
        at = (size_t)(end - b->ptr) + 2;
    }
    if (!last) abort();
    ak_json_doc_free(&d);
}

static void fz_check_answer(const fz_answer *a, const fz_env *e) {
    ak_json_doc d;
    if (!a->ended) abort(); /* taken requests always end */
    if (a->gone || fz_env_failed(e)) return;
    if (!a->started) abort();
    if (!ak_utf8_valid(a->body.ptr ? a->body.ptr : "", a->body.len)) abort();
    if (a->status == 204) return; /* a CORS preflight */
    if (!a->json) {
        fz_check_frames(&a->body);
        return;
    }
    ak_json_doc_init(&d, NULL);
    if (ak_json_parse(&d, a->body.ptr ? a->body.ptr : "", a->body.len, NULL) != AK_OK) abort();
    if (a->status != 200) fz_check_error_json(d.root);
    ak_json_doc_free(&d);
}

/* ---- the server ------------------------------------------------------------------------- */

static ak_result fz_auth(void *ud, const ak_serve_request *req, ak_json_doc *d, ak_json **context, ak_error *err) {
    const char *who = ak_serve_header(req, "authorization");
    (void)ud;
    if (!who) return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_UNAUTHENTICATED, "missing token");
    if (strcmp(who, "deny") == 0) return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_PERMISSION_DENIED, "denied");
    *context = ak_json_new_object(d);
    ak_json_set_str(d, *context, "user", who);
    return d->err ? ak_error_set(err, d->err, "out of memory") : AK_OK;
}

typedef struct fz_server {
    fz_env *env;
    ak_serve serve;
    int options;
} fz_server;

/* Pumps until nothing is live and no agent has background work, a second per pump. */
static void fz_settle(fz_server *s, const fz_answer *a) {
    int pumps;
    for (pumps = 0; pumps < 200; pumps++) {
        size_t i;
        int busy = ak_serve_pump(&s->serve, 0) == AK_PENDING || (a && !a->ended);
        for (i = 0; i < s->serve.desc.agent_count; i++)
            busy |= ak_agent_pump(s->serve.desc.agents[i], 0) == AK_PENDING;
        if (!busy) return;
        s->env->now += 1000;
    }
    abort(); /* a turn that never ends */
}

static void fz_handle(fz_server *s, const ak_serve_request *req) {
    fz_answer a;
    ak_http_writer w;
    ak_result rc;
    memset(&a, 0, sizeof a);
    a.gone_at = s->options >> 4;
    ak_buf_init(&a.body, NULL);
    w.start = fz_start, w.write = fz_write, w.end = fz_end, w.ud = &a;
    rc = ak_serve_handle(&s->serve, req, &w);
    if (rc == AK_ERR_NOT_FOUND || rc == AK_ERR_OUT_OF_MEMORY) {
        if (a.started || a.ended || (rc == AK_ERR_OUT_OF_MEMORY && !fz_env_failed(s->env))) abort();
    } else {
        if (rc != AK_OK) abort();
        if (a.gone && !a.ended) ak_serve_abandon(&s->serve, &w); /* what a host does */
        fz_settle(s, &a);
        fz_check_answer(&a, s->env);
    }
    ak_buf_free(&a.body);
}

/* ---- requests from the HTTP parser -------------------------------------------------------- */

static void fz_http(fz_server *s, const char *data, size_t len) {
    ak_http_request_parser p;
    size_t used;
    int n;
    ak_http_request_parser_init(&p, ak_context_allocator(&s->env->ctx), NULL);
    for (n = 0; n < 8 && len; n++) {
        ak_serve_request sr;
        if (ak_http_request_parser_feed(&p, data, len, &used, NULL) != AK_OK) break;
        data += used, len -= used;
        sr.method = p.req.method;
        sr.path = p.req.path;
        sr.query = *p.req.query ? p.req.query : NULL;
        sr.headers = p.req.headers;
        sr.header_count = p.req.header_count;
        sr.body = p.req.body;
        sr.body_len = p.req.body_len;
        fz_handle(s, &sr);
        ak_http_request_parser_reset(&p);
    }
    ak_http_request_parser_free(&p);
}

/* ---- one request built directly ------------------------------------------------------------ */

#define FZ_MAX_HEADERS 16

/* The next NUL-terminated field of [*at, end) as a malloc'd string, or NULL at the end. */
static char *fz_field(const char **at, const char *end) {
    const char *p = *at, *z;
    char *s;
    if (p >= end) return NULL;
    z = memchr(p, 0, (size_t)(end - p));
    if (!z) z = end;
    s = (char *)malloc((size_t)(z - p) + 1);
    memcpy(s, p, (size_t)(z - p));
    s[z - p] = 0;
    *at = z < end ? z + 1 : end;
    return s;
}

static void fz_direct(fz_server *s, const char *data, size_t len) {
    const char *at = data, *end = data + len;
    char *method = fz_field(&at, end), *path = fz_field(&at, end), *query = fz_field(&at, end);
    char *lines = fz_field(&at, end), *body, *line;
    ak_header h[FZ_MAX_HEADERS];
    ak_serve_request req;
    size_t n = 0;
    for (line = lines; line && *line && n < FZ_MAX_HEADERS;) {
        char *nl = strchr(line, '\n'), *colon = strchr(line, ':');
        if (nl) *nl = 0;
        if (colon && (!nl || colon < nl)) {
            *colon = 0;
            h[n].name = line, h[n++].value = colon + 1;
        }
        if (!nl) break;
        line = nl + 1;
    }
    body = (char *)malloc((size_t)(end - at) + 1); /* its own block: reads past it are caught */
    memcpy(body, at, (size_t)(end - at));
    memset(&req, 0, sizeof req);
    req.method = method, req.path = path, req.query = query && *query ? query : NULL;
    req.headers = h, req.header_count = n;
    req.body = body, req.body_len = (size_t)(end - at);
    fz_handle(s, &req);
    free(method), free(path), free(query), free(lines), free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_env env;
    fz_server s;
    interop_agents ia;
    ak_serve_desc sd;
    if (size < 2) return 0;
    fz_env_init(&env, data[1]);
    s.env = &env;
    s.options = data[0];
    if (interop_agents_init(&ia, &env.ctx) == AK_OK) {
        memset(&sd, 0, sizeof sd);
        sd.agents = ia.list;
        sd.agent_count = INTEROP_AGENT_COUNT;
        if (s.options & 2) sd.auth = fz_auth;
        if (s.options & 4) sd.max_body = 512, sd.max_depth = 8;
        if (s.options & 8) sd.cors_origin = "https://app.example";
        if (ak_serve_init(&s.serve, &env.ctx, &sd) != AK_OK) abort();
        if (s.options & 1) fz_direct(&s, (const char *)data + 2, size - 2);
        else fz_http(&s, (const char *)data + 2, size - 2);
        fz_settle(&s, NULL);
        ak_serve_free(&s.serve);
    }
    interop_agents_free(&ia);
    if (env.heap.live != 0) abort();
    return 0;
}
