/* >>replay implementation: the scripted test transport */

#include "context.c"
#include "replay.h"

struct ak_replay_script {
    ak_replay_response res;    /* pointers into the replay's arena */
    int used;
    ak_replay_script *next;
};

enum { AK__CALL_CONNECTING, AK__CALL_BODY, AK__CALL_FINISHED };

struct ak_replay_call {
    ak_http_request req;       /* deep copy */
    ak_http_sink *sink;
    const ak_replay_response *res;
    int64_t started_ms;
    size_t sent;               /* body bytes delivered */
    int state;
    ak_replay_call *next;
};

AKDEF ak_result ak_replay_init(ak_replay *r, ak_context *ctx, ak_replay_mode mode) {
    if (!r || !ctx) return AK_ERR_INVALID_ARGUMENT;
    AK_MEMSET(r, 0, sizeof *r);
    r->ctx = ctx;
    r->mode = mode;
    ak_arena_init(&r->arena, ak_context_allocator(ctx), 0);
    return AK_OK;
}

AKDEF void ak_replay_free(ak_replay *r) {
    if (!r) return;
    ak_arena_free(&r->arena);
    r->scripts = r->scripts_tail = NULL;
    r->calls = r->calls_tail = r->cursor = NULL;
    r->call_count = 0;
}

/* ---- copies into the arena (NULL when it is exhausted) -------------------------------------- */

AK_PRIVATE char *ak__replay_dup(ak_arena *a, const char *s, size_t len) {
    return ak_arena_strdup(a, s ? s : "", s ? len : 0);
}

AK_PRIVATE ak_header *ak__replay_dup_headers(ak_arena *a, const ak_header *h, size_t n) {
    ak_header *copy;
    size_t i;
    if (!n) return NULL;
    if (n > (size_t)-1 / sizeof *copy) return NULL;
    copy = (ak_header *)ak_arena_alloc(a, n * sizeof *copy);
    for (i = 0; copy && i < n; i++) {
        copy[i].name = ak__replay_dup(a, h[i].name, ak__strlen(h[i].name));
        copy[i].value = ak__replay_dup(a, h[i].value, ak__strlen(h[i].value));
        if (!copy[i].name || !copy[i].value) return NULL;
    }
    return copy;
}

AK_PRIVATE int ak__headers_ok(const ak_header *h, size_t n) {
    size_t i;
    if (n && !h) return 0;
    for (i = 0; i < n; i++)
        if (!h[i].name || !h[i].value) return 0;
    return 1;
}

/* ---- scripting ------------------------------------------------------------------------------ */

AKDEF ak_result ak_replay_add(ak_replay *r, const ak_replay_response *res, ak_error *err) {
    ak_arena_mark mark;
    ak_replay_script *s;
    size_t body_len;
    if (!r || !r->ctx || !res)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_replay_add: NULL replay or response");
    if (!ak__headers_ok(res->headers, res->header_count) || (unsigned)res->fault > (unsigned)AK_REPLAY_FAULT_TRUNCATE)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_replay_add: NULL header string or unknown fault");
    body_len = res->body && !res->body_len ? ak__strlen(res->body) : res->body_len;
    if (!res->body && body_len)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_replay_add: body_len without a body");
    mark = ak_arena_save(&r->arena);
    s = (ak_replay_script *)ak_arena_zalloc(&r->arena, sizeof *s);
    if (s) {
        s->res = *res;
        s->res.status = AK__DEF(res->status, 200);
        s->res.body_len = body_len;
        s->res.body = ak__replay_dup(&r->arena, res->body, body_len);
        s->res.match = res->match ? ak__replay_dup(&r->arena, res->match, ak__strlen(res->match)) : NULL;
        s->res.headers = ak__replay_dup_headers(&r->arena, res->headers, res->header_count);
    }
    if (!s || !s->res.body || (res->match && !s->res.match) || (res->header_count && !s->res.headers)) {
        ak_arena_restore(&r->arena, mark);
        return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "ak_replay_add: out of memory");
    }
    if (r->scripts_tail) r->scripts_tail->next = s;
    else r->scripts = s;
    r->scripts_tail = s;
    return AK_OK;
}

/* Whether needle occurs in hay (both NUL-terminated). */
AK_PRIVATE int ak__contains(const char *hay, const char *needle) {
    size_t h = ak__strlen(hay), n = ak__strlen(needle), i;
    for (i = 0; n <= h && i <= h - n; i++)
        if (AK_MEMCMP(hay + i, needle, n) == 0) return 1;
    return 0;
}

AK_PRIVATE const ak_replay_response *ak__replay_take(ak_replay *r, const char *url) {
    ak_replay_script *s;
    for (s = r->scripts; s; s = s->next) {
        if (s->used || (s->res.match && !ak__contains(url, s->res.match))) continue;
        s->used = 1;
        return &s->res;
    }
    return NULL;
}

AKDEF size_t ak_replay_unused(const ak_replay *r) {
    const ak_replay_script *s;
    size_t n = 0;
    for (s = r ? r->scripts : NULL; s; s = s->next) n += !s->used;
    return n;
}

/* ---- recorded requests ---------------------------------------------------------------------- */

AK_PRIVATE ak_replay_call *ak__replay_record(ak_replay *r, const ak_http_request *req) {
    ak_arena_mark mark = ak_arena_save(&r->arena);
    ak_replay_call *c = (ak_replay_call *)ak_arena_zalloc(&r->arena, sizeof *c);
    if (c) {
        c->req = *req;
        c->req.method = ak__replay_dup(&r->arena, req->method, ak__strlen(req->method));
        c->req.url = ak__replay_dup(&r->arena, req->url, ak__strlen(req->url));
        c->req.body = ak__replay_dup(&r->arena, req->body, req->body_len);
        c->req.headers = ak__replay_dup_headers(&r->arena, req->headers, req->header_count);
    }
    if (!c || !c->req.method || !c->req.url || !c->req.body ||
        (req->header_count && !c->req.headers)) {
        ak_arena_restore(&r->arena, mark);
        return NULL;
    }
    c->state = AK__CALL_FINISHED;
    if (r->calls_tail) r->calls_tail->next = c;
    else r->calls = c;
    r->calls_tail = c;
    r->call_count++;
    return c;
}

AKDEF size_t ak_replay_request_count(const ak_replay *r) { return r ? r->call_count : 0; }

AKDEF const ak_http_request *ak_replay_request(const ak_replay *r, size_t index) {
    const ak_replay_call *c;
    for (c = r ? r->calls : NULL; c; c = c->next)
        if (!index--) return &c->req;
    return NULL;
}

AKDEF size_t ak_replay_active(const ak_replay *r) {
    const ak_replay_call *c;
    size_t n = 0;
    for (c = r ? r->calls : NULL; c; c = c->next) n += c->state != AK__CALL_FINISHED;
    return n;
}

/* ---- delivery ------------------------------------------------------------------------------- */

/* A sink callback's answer: anything but AK_OK means the consumer stopped listening. The
   callback may also have cancelled the call itself. Returns whether to go on. */
AK_PRIVATE int ak__replay_heard(ak_replay_call *c, ak_result rc) {
    if (rc != AK_OK) c->state = AK__CALL_FINISHED;
    return c->state != AK__CALL_FINISHED;
}

AK_PRIVATE void ak__replay_done(ak_replay_call *c, ak_result rc, const char *msg) {
    ak_http_sink *sink = c->sink;
    c->state = AK__CALL_FINISHED; /* before the call: on_done may free the sink or restart */
    sink->on_done(sink, rc, msg);
}

AK_PRIVATE void ak__replay_status(ak_replay_call *c) {
    const ak_replay_response *res = c->res;
    size_t i;
    if (res->fault == AK_REPLAY_FAULT_CONNECT) {
        ak__replay_done(c, AK_ERR_CONNECT, "connection refused (replay fault)");
        return;
    }
    if (!ak__replay_heard(c, c->sink->on_status(c->sink, res->status))) return;
    for (i = 0; i < res->header_count; i++) {
        const ak_header *h = &res->headers[i];
        if (!ak__replay_heard(c, c->sink->on_header(c->sink, h->name, ak__strlen(h->name), h->value,
                                                    ak__strlen(h->value))))
            return;
    }
    c->state = AK__CALL_BODY;
}

/* Where the body stops: its end, or the byte a reset or truncation fault cuts it at. */
AK_PRIVATE size_t ak__replay_body_end(const ak_replay_response *res) {
    if (res->fault == AK_REPLAY_FAULT_RESET || res->fault == AK_REPLAY_FAULT_TRUNCATE)
        return AK__MIN(res->fault_at, res->body_len);
    return res->body_len;
}

AK_PRIVATE void ak__replay_body(ak_replay_call *c) {
    const ak_replay_response *res = c->res;
    size_t end = ak__replay_body_end(res), n;
    if (c->sent < end) {
        n = res->chunk ? AK__MIN(res->chunk, end - c->sent) : end - c->sent;
        c->sent += n;
        ak__replay_heard(c, c->sink->on_body(c->sink, res->body + c->sent - n, n));
    } else if (res->fault == AK_REPLAY_FAULT_RESET) {
        ak__replay_done(c, AK_ERR_CLOSED, "connection reset by peer (replay fault)");
    } else {
        ak__replay_done(c, AK_OK, NULL);
    }
}

/* One delivery step: the status with its headers, one body chunk, or the end. */
AK_PRIVATE void ak__replay_step(ak_replay_call *c) {
    if (c->state == AK__CALL_CONNECTING) ak__replay_status(c);
    else if (c->state == AK__CALL_BODY) ak__replay_body(c);
}

AK_PRIVATE int ak__replay_ready(ak_replay *r, const ak_replay_call *c) {
    if (c->state == AK__CALL_FINISHED) return 0;
    return c->state != AK__CALL_CONNECTING || c->res->delay_ms <= 0 ||
           ak_mono_ms(r->ctx) - c->started_ms >= c->res->delay_ms;
}

/* SYNC: the whole exchange now. A delay is not waited for; it only decides a timeout. */
AK_PRIVATE void ak__replay_run(ak_replay_call *c) {
    int64_t timeout = c->req.timeout_ms, delay = c->res->delay_ms;
    if (timeout > 0 && delay >= timeout) {
        ak__replay_done(c, AK_ERR_TIMEOUT, "timed out (replay delay exceeds the request timeout)");
        return;
    }
    while (c->state != AK__CALL_FINISHED) ak__replay_step(c);
}

/* ---- the transport -------------------------------------------------------------------------- */

AK_PRIVATE int ak__request_ok(const ak_http_request *req, const ak_http_sink *s) {
    return req && req->method && req->url && (req->body || !req->body_len) &&
           ak__headers_ok(req->headers, req->header_count) && s && s->on_status &&
           s->on_header && s->on_body && s->on_done;
}

AK_PRIVATE ak_result ak__replay_start(void *ud, const ak_http_request *req, ak_http_sink *sink,
                                      void **handle) {
    ak_replay *r = (ak_replay *)ud;
    const ak_replay_response *res;
    ak_replay_call *c;
    if (handle) *handle = NULL;
    if (!r || !handle || !ak__request_ok(req, sink)) return AK_ERR_INVALID_ARGUMENT;
    c = ak__replay_record(r, req);
    if (!c) return AK_ERR_OUT_OF_MEMORY;
    res = ak__replay_take(r, req->url);
    if (!res) {
        r->unmatched++;
        return AK_ERR_NOT_FOUND;
    }
    if (res->fault == AK_REPLAY_FAULT_REFUSE) return AK_ERR_CONNECT;
    c->sink = sink;
    c->res = res;
    c->started_ms = ak_mono_ms(r->ctx);
    c->state = AK__CALL_CONNECTING;
    *handle = c;
    if (r->mode == AK_REPLAY_SYNC) ak__replay_run(c);
    return AK_OK;
}

AK_PRIVATE void ak__replay_cancel(void *ud, void *handle) {
    ak_replay *r = (ak_replay *)ud;
    ak_replay_call *c;
    for (c = r ? r->calls : NULL; c; c = c->next) /* only handles this replay gave out */
        if (c == handle) c->state = AK__CALL_FINISHED;
}

/* PUMPED: one step for the next ready request after the one served last. Never waits. */
AK_PRIVATE ak_result ak__replay_poll(void *ud, int timeout_ms) {
    ak_replay *r = (ak_replay *)ud;
    ak_replay_call *c, *start;
    AK__UNUSED(timeout_ms);
    if (!r || !r->calls) return AK_OK;
    start = r->cursor && r->cursor->next ? r->cursor->next : r->calls;
    c = start;
    do {
        if (ak__replay_ready(r, c)) {
            r->cursor = c;
            ak__replay_step(c);
            return AK_OK;
        }
        c = c->next ? c->next : r->calls;
    } while (c != start);
    return AK_OK;
}

AKDEF ak_transport ak_replay_transport(ak_replay *r) {
    ak_transport t;
    t.start = ak__replay_start;
    t.cancel = ak__replay_cancel;
    t.poll = r && r->mode == AK_REPLAY_PUMPED ? ak__replay_poll : NULL;
    t.ud = r;
    return t;
}
