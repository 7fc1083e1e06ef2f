/* >>serve implementation: the Genkit agent HTTP protocol server (any host HTTP server) and
   the remote-agent client (any transport) */

#include "serve.h"
#include "chat.c"

/* ---- server: exchanges ---------------------------------------------------------------- */

struct ak__exchange {
    ak__exchange *next;
    ak_serve *s;
    ak_http_writer *w;
    ak_invocation *inv;
    ak_json_doc doc;             /* the request body and context */
    ak_buf frame;
    int streaming, started, ended, gone;
};

AK_PRIVATE int ak__serve_ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a, y = *b;
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
        if (x != y) return 0;
    }
    return *a == *b;
}

AKDEF const char *ak_serve_header(const ak_serve_request *req, const char *name) {
    size_t i;
    for (i = 0; i < req->header_count; i++)
        if (req->headers[i].name && ak__serve_ieq(req->headers[i].name, name)) return req->headers[i].value;
    return NULL;
}

/* Case-insensitive substring search (for Accept). */
AK_PRIVATE int ak__serve_has(const char *hay, const char *needle) {
    size_t n = ak__strlen(needle), i;
    for (; hay && *hay; hay++) {
        for (i = 0; i < n && hay[i]; i++) {
            char x = hay[i];
            if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
            if (x != needle[i]) break;
        }
        if (i == n) return 1;
    }
    return 0;
}

/* stream=true in the query string (Genkit JS: exactly "true"). */
AK_PRIVATE int ak__serve_stream_query(const char *q) {
    while (q && *q) {
        const char *amp = q;
        while (*amp && *amp != '&') amp++;
        if ((size_t)(amp - q) == 11 && AK_MEMCMP(q, "stream=true", 11) == 0) return 1;
        q = *amp ? amp + 1 : amp;
    }
    return 0;
}

AKDEF ak_result ak_serve_init(ak_serve *s, ak_context *ctx, const ak_serve_desc *desc) {
    AK_MEMSET(s, 0, sizeof *s);
    if (!ctx || !desc || (desc->agent_count && !desc->agents)) return AK_ERR_INVALID_ARGUMENT;
    s->ctx = ctx;
    s->desc = *desc;
    if (!s->desc.prefixes[0]) s->desc.prefixes[0] = "/agents", s->desc.prefixes[1] = "/api";
    if (!s->desc.max_body) s->desc.max_body = AK_SERVE_MAX_BODY;
    if (!s->desc.max_depth) s->desc.max_depth = AK_SERVE_MAX_DEPTH;
    return AK_OK;
}

/* Writes the frame in x->frame; a gone client stops all further writes. */
AK_PRIVATE void ak__serve_send_frame(ak__exchange *x) {
    if (x->gone || x->frame.err) return;
    if (x->w->write(x->w->ud, x->frame.ptr, x->frame.len) != AK_OK) x->gone = 1;
}

/* Starts an answer: status, content type, Content-Length (or none: chunked), the trace
   headers Genkit adds to action results, CORS when configured, and any extra header. */
AK_PRIVATE ak_result ak__serve_start(ak__exchange *x, int status, const char *content_type, const char *length,
                                     int trace, const ak_header *extra) {
    ak_header h[8];
    size_t n = 0;
    char trace_id[33], span_id[17];
    static const char hex[] = "0123456789abcdef";
    h[n].name = "Content-Type", h[n++].value = content_type;
    if (length) h[n].name = "Content-Length", h[n++].value = length;
    if (trace) {
        unsigned char r[24];
        int i;
        if (ak_random(x->s->ctx, r, sizeof r) != AK_OK) AK_MEMSET(r, 0, sizeof r);
        for (i = 0; i < 16; i++) trace_id[2 * i] = hex[r[i] >> 4], trace_id[2 * i + 1] = hex[r[i] & 15];
        for (i = 0; i < 8; i++) span_id[2 * i] = hex[r[16 + i] >> 4], span_id[2 * i + 1] = hex[r[16 + i] & 15];
        trace_id[32] = span_id[16] = 0;
        h[n].name = "x-genkit-trace-id", h[n++].value = trace_id;
        h[n].name = "x-genkit-span-id", h[n++].value = span_id;
    }
    if (x->s->desc.cors_origin) {
        h[n].name = "Access-Control-Allow-Origin", h[n++].value = x->s->desc.cors_origin;
        h[n].name = "Access-Control-Expose-Headers", h[n++].value = "x-genkit-trace-id, x-genkit-span-id";
    }
    if (extra) h[n++] = *extra;
    x->started = 1;
    return x->w->start(x->w->ud, status, h, n);
}

/* A whole JSON answer (the body is in x->frame). */
AK_PRIVATE void ak__serve_json(ak__exchange *x, int status, int trace, const ak_header *extra) {
    char len[24];
    ak_buf b;
    if (x->gone || x->frame.err) return;
    ak_buf_init_fixed(&b, len, sizeof len);
    ak_buf_put_u64(&b, x->frame.len);
    if (ak__serve_start(x, status, "application/json; charset=utf-8", len, trace, extra) == AK_OK) ak__serve_send_frame(x);
}

AK_PRIVATE void ak__serve_end(ak__exchange *x) {
    if (x->ended) return;
    x->ended = 1;
    x->w->end(x->w->ud);
}

/* `<prefix>: {"<key>": value}` + blank line, as Genkit's express handler writes it. */
AK_PRIVATE void ak__serve_frame(ak__exchange *x, const char *prefix, const char *key, const ak_json *value) {
    ak_buf_clear(&x->frame);
    ak_buf_puts(&x->frame, prefix);
    ak_buf_puts(&x->frame, ": {");
    ak_json_write_str(&x->frame, key, ak__strlen(key));
    ak_buf_putc(&x->frame, ':');
    ak_json_write(value, &x->frame);
    ak_buf_puts(&x->frame, "}\n\n");
    ak__serve_send_frame(x);
}

AK_PRIVATE void ak__serve_on_chunk(void *ud, const ak_json *chunk) {
    ak__serve_frame((ak__exchange *)ud, "data", "message", chunk);
}

/* {"status", "message", "details"?} */
AK_PRIVATE ak_json *ak__serve_error_json(ak_json_doc *d, ak_status st, const char *message) {
    ak_json *e = ak_json_new_object(d);
    ak_json_set_str(d, e, "status", ak_status_name(st));
    ak_json_set_str(d, e, "message", message);
    return e;
}

/* Answers with an error: a frame once streaming headers are out, else an HTTP status + JSON
   body (auth and body problems come before any headers, as in Genkit). http 0 = the
   status's own code. */
AK_PRIVATE void ak__serve_fail_http(ak__exchange *x, int http, ak_status st, const char *message,
                                    const ak_header *extra) {
    ak_json *e = ak__serve_error_json(&x->doc, st, message);
    x->s->failed++;
    if (x->started) {
        ak__serve_frame(x, "error", "error", e);
    } else {
        ak_buf_clear(&x->frame);
        ak_json_write(e, &x->frame);
        ak__serve_json(x, http ? http : ak_status_http(st), 0, extra);
    }
    ak__serve_end(x);
}

AK_PRIVATE void ak__serve_fail(ak__exchange *x, ak_status st, const char *message) {
    ak__serve_fail_http(x, 0, st, message, NULL);
}

/* Answers with {"result": v}. */
AK_PRIVATE void ak__serve_result(ak__exchange *x, const ak_json *v) {
    x->s->served++;
    if (x->started) {
        ak__serve_frame(x, "data", "result", v);
    } else {
        ak_buf_clear(&x->frame);
        ak_buf_puts(&x->frame, "{\"result\":");
        ak_json_write(v, &x->frame);
        ak_buf_putc(&x->frame, '}');
        ak__serve_json(x, 200, 1, NULL);
    }
    ak__serve_end(x);
}

AK_PRIVATE void ak__serve_free_exchange(ak__exchange *x) {
    const ak_allocator *a = ak_context_allocator(x->s->ctx);
    ak__exchange **link;
    for (link = &x->s->live; *link; link = &(*link)->next)
        if (*link == x) {
            *link = x->next;
            break;
        }
    ak_invocation_free(x->inv); /* a detached turn lives on in its agent */
    ak_json_doc_free(&x->doc);
    ak_buf_free(&x->frame);
    ak_free(a, x, sizeof *x);
}

/* ---- server: routes ------------------------------------------------------------------- */

AK_PRIVATE ak_agent *ak__serve_agent(ak_serve *s, const char *name, size_t len) {
    size_t i;
    for (i = 0; i < s->desc.agent_count; i++)
        if (ak__eqn(name, len, s->desc.agents[i]->desc.name)) return s->desc.agents[i];
    return NULL;
}

/* What follows "<prefix>/" in path, or NULL. Compares no further than path's NUL: a path
   may be shorter than the prefix. */
AK_PRIVATE const char *ak__serve_under(const char *path, const char *prefix) {
    while (*prefix && *path == *prefix) path++, prefix++;
    return !*prefix && *path == '/' ? path + 1 : NULL;
}

/* Splits path into agent + action ("", "getSnapshot", "abort"); 0 if it is not ours. */
AK_PRIVATE int ak__serve_route(ak_serve *s, const char *path, ak_agent **agent, const char **action) {
    int i;
    for (i = 0; i < 4 && s->desc.prefixes[i]; i++) {
        const char *rest = ak__serve_under(path, s->desc.prefixes[i]), *slash;
        if (!rest) continue;
        for (slash = rest; *slash && *slash != '/'; slash++) {
        }
        *agent = ak__serve_agent(s, rest, (size_t)(slash - rest));
        *action = *slash ? slash + 1 : "";
        return 1;
    }
    return 0;
}

AK_PRIVATE ak_result ak__serve_health(ak_serve *s, ak__exchange *x) {
    ak_json_doc *d = &x->doc;
    ak_json *o = ak_json_new_object(d), *names = ak_json_new_array(d);
    size_t i;
    ak_json_set_bool(d, o, "ok", 1);
    for (i = 0; i < s->desc.agent_count; i++) ak_json_push(names, ak_json_new_str(d, s->desc.agents[i]->desc.name));
    ak_json_set(d, o, "agents", names);
    ak_buf_clear(&x->frame);
    ak_json_write(o, &x->frame);
    ak__serve_json(x, 200, 0, NULL);
    ak__serve_end(x);
    return AK_OK;
}

AK_PRIVATE void ak__serve_preflight(ak_serve *s, ak__exchange *x) {
    ak_header h[4];
    x->started = 1;
    h[0].name = "Access-Control-Allow-Origin", h[0].value = s->desc.cors_origin;
    h[1].name = "Access-Control-Allow-Methods", h[1].value = "POST, GET, OPTIONS";
    h[2].name = "Access-Control-Allow-Headers", h[2].value = "Content-Type, Authorization, Accept";
    h[3].name = "Access-Control-Max-Age", h[3].value = "600";
    x->w->start(x->w->ud, 204, h, 4);
    ak__serve_end(x);
}

/* getSnapshot and abort: {data: {snapshotId | sessionId}}. */
AK_PRIVATE void ak__serve_companion(ak__exchange *x, ak_agent *a, const char *action, const ak_json *data,
                                    const ak_json *context) {
    ak_error e;
    const ak_json *id = ak_json_get(data, "snapshotId"), *sid = ak_json_get(data, "sessionId");
    if (!ak_json_is(data, AK_JSON_OBJECT) || (id && id->type != AK_JSON_STRING) || (sid && sid->type != AK_JSON_STRING)) {
        ak__serve_fail(x, AK_STATUS_INVALID_ARGUMENT, "data must be an object with a string snapshotId or sessionId");
        return;
    }
    if (ak__streq(action, "getSnapshot")) {
        ak_json *snap;
        if (ak_agent_get_snapshot(a, ak_json_str(id), ak_json_str(sid), context, &x->doc, &snap, &e) != AK_OK)
            ak__serve_fail(x, e.status, e.message);
        else
            ak__serve_result(x, snap);
    } else {
        const char *prev = NULL;
        ak_json *r;
        if (ak_agent_abort(a, ak_json_str(id), context, &prev, &e) != AK_OK) {
            ak__serve_fail(x, e.status, e.message);
            return;
        }
        r = ak_json_new_object(&x->doc);
        ak_json_set_str(&x->doc, r, "snapshotId", ak_json_str(id));
        if (prev) ak_json_set_str(&x->doc, r, "status", prev);
        ak__serve_result(x, r);
    }
}

/* Moves an exchange whose turn resolved to its answer. Returns 1 when it is finished. */
AK_PRIVATE int ak__serve_step(ak__exchange *x, int wait_ms) {
    ak_error e;
    ak_result rc = ak_invocation_step(x->inv, wait_ms, &e);
    if (rc == AK_PENDING) return 0;
    if (rc == AK_OK) ak__serve_result(x, ak_invocation_output(x->inv));
    else ak__serve_fail(x, e.status ? e.status : AK_STATUS_INTERNAL, e.message);
    return 1;
}

AK_PRIVATE void ak__serve_turn(ak__exchange *x, ak_agent *a, const ak_json *body, const ak_json *context) {
    const ak_json *data = ak_json_get(body, "data"), *init = ak_json_get(body, "init");
    ak_invoke_opts opts;
    ak_error e;
    /* Genkit validates the envelope: an input object and an init object are required */
    if (!ak_json_is(data, AK_JSON_OBJECT) || !ak_json_is(init, AK_JSON_OBJECT)) {
        ak__serve_fail(x, AK_STATUS_INVALID_ARGUMENT,
                       !data ? "Schema validation failed: 'data' (the agent input) is required"
                       : !init ? "Schema validation failed: 'init' is required (send {} for a new conversation)"
                               : "Schema validation failed: 'data' and 'init' must be objects");
        return;
    }
    AK_MEMSET(&opts, 0, sizeof opts);
    opts.on_chunk = x->streaming ? ak__serve_on_chunk : NULL;
    opts.chunk_ud = x;
    opts.context = context;
    if (ak_agent_invoke(a, init, &opts, &x->inv, &e) != AK_OK || ak_invocation_send(x->inv, data, &e) != AK_OK) {
        ak__serve_fail(x, e.status ? e.status : AK_STATUS_INTERNAL, e.message);
        return;
    }
    ak_invocation_close(x->inv);
    if (!ak__serve_step(x, 0)) { /* still running: ak_serve_pump finishes it */
        x->next = x->s->live;
        x->s->live = x;
    }
}

/* Parses the body and runs auth; fails x and returns 0 when either says no. */
AK_PRIVATE int ak__serve_prepare(ak_serve *s, ak__exchange *x, const ak_serve_request *req, ak_json **body,
                                 ak_json **context) {
    ak_json_parse_opts po;
    ak_error e;
    *body = *context = NULL;
    if (req->body_len > s->desc.max_body) {
        ak__serve_fail_http(x, 413, AK_STATUS_RESOURCE_EXHAUSTED, "Request body is too large.", NULL);
        return 0;
    }
    if (s->desc.auth && s->desc.auth(s->desc.auth_ud, req, &x->doc, context, &e) != AK_OK) {
        ak__serve_fail(x, e.status ? e.status : AK_STATUS_UNAUTHENTICATED, e.message);
        return 0;
    }
    AK_MEMSET(&po, 0, sizeof po);
    po.max_depth = s->desc.max_depth;
    if (ak_json_parse_value(&x->doc, req->body ? req->body : "", req->body_len, &po, body, &e) != AK_OK) {
        ak__serve_fail(x, AK_STATUS_INVALID_ARGUMENT,
                       e.code == AK_ERR_JSON_DEPTH ? "Request body is nested too deeply." : "Request body is not valid JSON.");
        return 0;
    }
    if (!ak_json_is(*body, AK_JSON_OBJECT)) {
        ak__serve_fail(x, AK_STATUS_INVALID_ARGUMENT, "the request body must be a JSON object {\"data\": ..., \"init\": ...}");
        return 0;
    }
    return 1;
}

/* 404 "Cannot POST /x", as Express words it. */
AK_PRIVATE void ak__serve_not_found(ak__exchange *x, const ak_serve_request *req) {
    char msg[AK_ERROR_MAX];
    ak_buf b;
    ak_buf_init_fixed(&b, msg, sizeof msg);
    ak_buf_printf(&b, "Cannot %s %s", req->method ? req->method : "?", req->path);
    ak__serve_fail(x, AK_STATUS_NOT_FOUND, msg);
}

AKDEF ak_result ak_serve_handle(ak_serve *s, const ak_serve_request *req, ak_http_writer *w) {
    const ak_allocator *a = ak_context_allocator(s->ctx);
    ak__exchange *x;
    ak_agent *agent = NULL;
    const char *action = NULL;
    ak_json *body, *context;
    int post = req->method && ak__streq(req->method, "POST");
    int health = !s->desc.no_health && req->path && ak__streq(req->path, "/healthz");
    if (!req->path || (!health && !ak__serve_route(s, req->path, &agent, &action))) return AK_ERR_NOT_FOUND;
    if (!(x = (ak__exchange *)ak_alloc(a, sizeof *x))) return AK_ERR_OUT_OF_MEMORY;
    AK_MEMSET(x, 0, sizeof *x);
    x->s = s;
    x->w = w;
    ak_json_doc_init(&x->doc, a);
    ak_buf_init(&x->frame, a);
    if (health) {
        if (req->method && ak__streq(req->method, "GET")) ak__serve_health(s, x);
        else ak__serve_not_found(x, req);
    } else if (req->method && ak__streq(req->method, "OPTIONS") && s->desc.cors_origin) {
        ak__serve_preflight(s, x);
    } else if (!agent || (*action && !ak__streq(action, "getSnapshot") && !ak__streq(action, "abort"))) {
        ak__serve_not_found(x, req);
    } else if (!post) {
        ak_header allow;
        char msg[AK_ERROR_MAX];
        ak_buf b;
        ak_buf_init_fixed(&b, msg, sizeof msg);
        ak_buf_printf(&b, "Method %s is not allowed on %s; use POST.", req->method ? req->method : "?", req->path);
        allow.name = "Allow", allow.value = "POST";
        ak__serve_fail_http(x, 405, AK_STATUS_UNIMPLEMENTED, msg, &allow);
    } else {
        x->streaming = ak__serve_has(ak_serve_header(req, "accept"), "text/event-stream") ||
                       ak__serve_stream_query(req->query);
        /* auth and body problems are reported before any streaming headers, as Genkit does */
        if (ak__serve_prepare(s, x, req, &body, &context)) {
            /* Genkit's express handler streams as text/plain, chunked; its client does not care */
            if (x->streaming && ak__serve_start(x, 200, "text/plain", NULL, 0, NULL) != AK_OK) x->gone = 1;
            if (*action) ak__serve_companion(x, agent, action, ak_json_get(body, "data"), context);
            else ak__serve_turn(x, agent, body, context);
        }
    }
    if (x->ended) ak__serve_free_exchange(x);
    return AK_OK;
}

AKDEF ak_result ak_serve_pump(ak_serve *s, int wait_ms) {
    ak__exchange *x, *next;
    size_t i;
    int background = 0;
    for (x = s->live; x; x = next) {
        next = x->next;
        if (ak__serve_step(x, 0)) ak__serve_free_exchange(x);
    }
    for (i = 0; i < s->desc.agent_count; i++)
        if (ak_agent_pump(s->desc.agents[i], 0) == AK_PENDING) background = 1;
    /* nothing finished: let the oldest exchange wait for its model's I/O */
    if (s->live && wait_ms > 0 && ak__serve_step(s->live, wait_ms)) ak__serve_free_exchange(s->live);
    return s->live || background ? AK_PENDING : AK_OK;
}

AKDEF void ak_serve_abandon(ak_serve *s, ak_http_writer *w) {
    ak__exchange *x;
    for (x = s->live; x; x = x->next)
        if (x->w == w) {
            x->gone = 1;
            ak__serve_end(x); /* the turn runs on, like Genkit's does after a client leaves */
        }
}

AKDEF void ak_serve_free(ak_serve *s) {
    while (s->live) {
        ak__exchange *x = s->live;
        if (x->streaming && !x->ended) ak__serve_fail(x, AK_STATUS_UNAVAILABLE, "the server is shutting down");
        else ak__serve_end(x);
        ak__serve_free_exchange(x);
    }
}

/* ---- remote agents -------------------------------------------------------------------- */

#ifndef AK_REMOTE_MAX_FRAME
#define AK_REMOTE_MAX_FRAME ((size_t)16 << 20)
#endif

/* One request to a remote agent: a streamed turn, or a JSON call (getSnapshot / abort). */
typedef struct ak__remote_call {
    ak_remote_agent *ra;
    ak_buf body;
    ak_header headers[AK_MAX_REQUEST_HEADERS];
    ak_http_request req;
    ak_http_sink sink;
    void *handle;
    int status, done, streaming, finished;
    ak_buf in;                   /* frames not yet complete, or the whole JSON body */
    ak_agent_chunk_fn on_chunk;
    void *chunk_ud;
    ak_json_doc doc;             /* the result */
    ak_json *result;
    ak_error error;
    int failed;
    int64_t deadline;
} ak__remote_call;

AK_PRIVATE void ak__remote_fail(ak__remote_call *rc, ak_status st, const char *fmt, const char *arg) {
    if (rc->failed || rc->result) return;
    rc->failed = 1;
    ak_error_setst(&rc->error, AK_ERR_AGENT, st, fmt, arg ? arg : "");
}

/* {"status","message"} or {"error":{...}} -> rc->error. */
AK_PRIVATE void ak__remote_error_from(ak__remote_call *rc, const ak_json *e, int http) {
    const char *st = ak_json_get_str(e, "status"), *msg = ak_json_get_str(e, "message");
    ak_status status = st ? ak_status_from_name(st, ak__strlen(st)) : ak_status_from_http(http);
    if (rc->failed || rc->result) return;
    rc->failed = 1;
    ak_error_setst(&rc->error, AK_ERR_AGENT, status, "%s", msg && *msg ? msg : "the remote agent failed");
}

/* One frame: "<field>: <json>" where the JSON holds message, result or error. `last`: the
   bytes the stream ended with, without the blank line that ends a frame; when they are no
   frame, the stream was cut. */
AK_PRIVATE void ak__remote_frame(ak__remote_call *rc, const char *f, size_t n, int last) {
    ak_json_doc tmp;
    ak_json *v, *x;
    size_t i = 0;
    while (i < n && f[i] != ':') i++;
    ak_json_doc_init(&tmp, ak_context_allocator(rc->ra->ctx));
    if (i == n || ak_json_parse_value(&tmp, f + i + 1, n - i - 1, NULL, &v, NULL) != AK_OK || !ak_json_is(v, AK_JSON_OBJECT)) {
        if (last) ak__remote_fail(rc, AK_STATUS_UNAVAILABLE, "the remote agent's stream was cut in the middle of a frame%s", NULL);
        else ak__remote_fail(rc, AK_STATUS_INTERNAL, "the remote agent sent a frame that is not JSON%s", NULL);
    } else if ((x = ak_json_get(v, "message")) != NULL) {
        /* callbacks read chunks as objects, as local turns make them */
        if (!ak_json_is(x, AK_JSON_OBJECT))
            ak__remote_fail(rc, AK_STATUS_INTERNAL, "the remote agent sent a chunk that is not an object%s", NULL);
        else if (rc->on_chunk && !rc->failed && !rc->result) rc->on_chunk(rc->chunk_ud, x);
    } else if ((x = ak_json_get(v, "result")) != NULL) {
        if (!rc->failed && !rc->result) rc->result = ak_json_copy(&rc->doc, x);
    } else if ((x = ak_json_get(v, "error")) != NULL) {
        ak__remote_error_from(rc, x, 500);
    } else {
        ak__remote_fail(rc, AK_STATUS_INTERNAL, "unknown frame from the remote agent%s", NULL);
    }
    ak_json_doc_free(&tmp);
}

/* Splits rc->in into frames at blank lines (LF or CRLF). */
AK_PRIVATE void ak__remote_frames(ak__remote_call *rc) {
    size_t start = 0, i;
    for (i = 0; i + 1 < rc->in.len; i++) {
        size_t end = i, skip;
        if (rc->in.ptr[i] == '\n' && rc->in.ptr[i + 1] == '\n') skip = 2;
        else if (i + 3 < rc->in.len && AK_MEMCMP(rc->in.ptr + i, "\r\n\r\n", 4) == 0) skip = 4;
        else continue;
        if (end > start) ak__remote_frame(rc, rc->in.ptr + start, end - start, 0);
        start = i + skip;
        i = start - 1;
    }
    ak_buf_consume(&rc->in, start);
}

AK_PRIVATE ak_result ak__remote_status(ak_http_sink *s, int status) {
    ((ak__remote_call *)s->ud)->status = status;
    return AK_OK;
}

AK_PRIVATE ak_result ak__remote_header(ak_http_sink *s, const char *n, size_t nl, const char *v, size_t vl) {
    AK__UNUSED(s), AK__UNUSED(n), AK__UNUSED(nl), AK__UNUSED(v), AK__UNUSED(vl);
    return AK_OK;
}

AK_PRIVATE ak_result ak__remote_body(ak_http_sink *s, const char *data, size_t len) {
    ak__remote_call *rc = (ak__remote_call *)s->ud;
    rc->in.max = AK_REMOTE_MAX_FRAME;
    ak_buf_append(&rc->in, data, len);
    if (rc->in.err) {
        ak__remote_fail(rc, AK_STATUS_RESOURCE_EXHAUSTED, "the remote agent's answer is too large%s", NULL);
        return AK_ERR_LIMIT;
    }
    if (rc->streaming && rc->status == 200) ak__remote_frames(rc);
    return AK_OK;
}

AK_PRIVATE void ak__remote_done(ak_http_sink *s, ak_result r, const char *msg) {
    ak__remote_call *rc = (ak__remote_call *)s->ud;
    ak_json *v = NULL;
    rc->done = 1;
    if (r != AK_OK) {
        ak__remote_fail(rc, r == AK_ERR_TIMEOUT ? AK_STATUS_DEADLINE_EXCEEDED : AK_STATUS_UNAVAILABLE,
                        "cannot reach the remote agent: %s", msg ? msg : ak_result_str(r));
        return;
    }
    if (rc->status == 200 && rc->streaming) {
        if (rc->in.len) ak__remote_frame(rc, rc->in.ptr, rc->in.len, 1); /* a last frame without its blank line */
        if (!rc->result) ak__remote_fail(rc, AK_STATUS_UNAVAILABLE, "the remote agent's stream ended without a result%s", NULL);
        return;
    }
    ak_json_parse_value(&rc->doc, rc->in.ptr ? rc->in.ptr : "", rc->in.len, NULL, &v, NULL);
    if (rc->status == 200 && ak_json_get(v, "result")) rc->result = ak_json_get(v, "result");
    else if (rc->status == 200 && ak_json_get(v, "error")) ak__remote_error_from(rc, ak_json_get(v, "error"), 500);
    else if (ak_json_is(v, AK_JSON_OBJECT) && ak_json_get(v, "message")) ak__remote_error_from(rc, v, rc->status);
    else {
        char code[16];
        ak_buf b;
        ak_buf_init_fixed(&b, code, sizeof code);
        ak_buf_put_i64(&b, rc->status);
        ak__remote_fail(rc, ak_status_from_http(rc->status), "the remote agent answered HTTP %s", code);
    }
}

AK_PRIVATE void ak__remote_call_free(ak__remote_call *rc) {
    const ak_allocator *a = ak_context_allocator(rc->ra->ctx);
    if (!rc->done && rc->ra->desc.transport->cancel) rc->ra->desc.transport->cancel(rc->ra->desc.transport->ud, rc->handle);
    ak_buf_free(&rc->body);
    ak_buf_free(&rc->in);
    ak_json_doc_free(&rc->doc);
    ak_free(a, rc, sizeof *rc);
}

/* Starts POST url with {"data": data, "init"?: init}. */
AK_PRIVATE ak_result ak__remote_start(ak_remote_agent *ra, const char *url, const ak_json *data, const ak_json *init,
                                      int streaming, ak_agent_chunk_fn on_chunk, void *chunk_ud, ak__remote_call **out,
                                      ak_error *err) {
    const ak_allocator *a = ak_context_allocator(ra->ctx);
    ak__remote_call *rc = (ak__remote_call *)ak_alloc(a, sizeof *rc);
    size_t i, n = 0;
    ak_result r;
    *out = NULL;
    if (!rc) return ak__oom(err);
    AK_MEMSET(rc, 0, sizeof *rc);
    rc->ra = ra;
    rc->streaming = streaming;
    /* set before the transport starts: a blocking one delivers every frame inside start() */
    rc->on_chunk = on_chunk;
    rc->chunk_ud = chunk_ud;
    ak_buf_init(&rc->body, a);
    ak_buf_init(&rc->in, a);
    ak_json_doc_init(&rc->doc, a);
    ak_buf_puts(&rc->body, "{\"data\":");
    ak_json_write(data, &rc->body);
    if (init) ak_buf_puts(&rc->body, ",\"init\":"), ak_json_write(init, &rc->body);
    ak_buf_putc(&rc->body, '}');
    rc->headers[n].name = "Content-Type", rc->headers[n++].value = "application/json";
    if (streaming) rc->headers[n].name = "Accept", rc->headers[n++].value = "text/event-stream";
    for (i = 0; i < ra->desc.header_count && n < AK_MAX_REQUEST_HEADERS; i++) rc->headers[n++] = ra->desc.headers[i];
    rc->req.method = "POST";
    rc->req.url = url;
    rc->req.headers = rc->headers;
    rc->req.header_count = n;
    rc->req.body = rc->body.ptr;
    rc->req.body_len = rc->body.len;
    rc->req.timeout_ms = AK__DEF(ra->desc.timeout_ms, 300000);
    rc->req.streaming = streaming;
    rc->deadline = ak_mono_ms(ra->ctx) + rc->req.timeout_ms;
    rc->sink.on_status = ak__remote_status;
    rc->sink.on_header = ak__remote_header;
    rc->sink.on_body = ak__remote_body;
    rc->sink.on_done = ak__remote_done;
    rc->sink.ud = rc;
    if (rc->body.err) {
        ak__remote_call_free(rc);
        return ak__oom(err);
    }
    *out = rc;
    r = ra->desc.transport->start(ra->desc.transport->ud, &rc->req, &rc->sink, &rc->handle);
    if (r != AK_OK) {
        rc->done = 1;
        ak__remote_call_free(rc);
        *out = NULL;
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_UNAVAILABLE, "cannot reach the remote agent at %s: %s", url,
                              ak_result_str(r));
    }
    return AK_OK;
}

/* Advances a call: AK_PENDING, or AK_OK / AK_ERR_AGENT once it finished. */
AK_PRIVATE ak_result ak__remote_poll(ak__remote_call *rc, int wait_ms, ak_error *err) {
    ak_transport *t = rc->ra->desc.transport;
    if (!rc->done && t->poll) t->poll(t->ud, wait_ms);
    if (!rc->done && ak_mono_ms(rc->ra->ctx) >= rc->deadline) {
        if (t->cancel) t->cancel(t->ud, rc->handle);
        rc->done = 1;
        ak__remote_fail(rc, AK_STATUS_DEADLINE_EXCEEDED, "the remote agent did not answer in time%s", NULL);
    }
    if (!rc->done) return AK_PENDING;
    if (rc->failed) {
        if (err) *err = rc->error;
        return AK_ERR_AGENT;
    }
    return AK_OK;
}

/* A JSON call to completion (getSnapshot, abort): needs a transport that finishes inside
   start() or has poll(). */
AK_PRIVATE ak_result ak__remote_json(ak_remote_agent *ra, const char *url, const ak_json *data, ak__remote_call **out,
                                     ak_error *err) {
    ak_result r = ak__remote_start(ra, url, data, NULL, 0, NULL, NULL, out, err);
    while (r == AK_OK && (r = ak__remote_poll(*out, 50, err)) == AK_PENDING)
        r = AK_OK; /* not finished: poll again */
    if (r != AK_OK && *out) {
        ak__remote_call_free(*out);
        *out = NULL;
    }
    return r;
}

AK_PRIVATE ak_result ak__rb_start(void *ud, const ak_json *init, const ak_json *input, ak_agent_chunk_fn on_chunk,
                                  void *chunk_ud, void **turn, ak_error *err) {
    ak_remote_agent *ra = (ak_remote_agent *)ud;
    ak__remote_call *rc;
    /* remoteAgent() always streams: even send() is a drained stream (reference §3.7) */
    ak_result r = ak__remote_start(ra, ra->turn_url, input, init, 1, on_chunk, chunk_ud, &rc, err);
    if (r != AK_OK) return r;
    *turn = rc;
    return AK_OK;
}

AK_PRIVATE ak_result ak__rb_poll(void *ud, void *turn, int wait_ms, ak_json_doc *d, ak_json **output, ak_error *err) {
    ak__remote_call *rc = (ak__remote_call *)turn;
    ak_result r = ak__remote_poll(rc, wait_ms, err);
    AK__UNUSED(ud);
    if (r == AK_PENDING) return r;
    if (r == AK_OK && !(*output = ak_json_copy(d, rc->result))) r = ak__oom(err);
    ak__remote_call_free(rc);
    return r;
}

AK_PRIVATE void ak__rb_cancel(void *ud, void *turn) {
    AK__UNUSED(ud);
    ak__remote_call_free((ak__remote_call *)turn);
}

/* POSTs {snapshotId?, sessionId?} to url: the getSnapshot and abort companions. */
AK_PRIVATE ak_result ak__remote_ids(ak_remote_agent *ra, const char *url, const char *snapshot_id,
                                    const char *session_id, ak__remote_call **rc, ak_error *err) {
    ak_json_doc tmp;
    ak_json *data;
    ak_result r;
    ak_json_doc_init(&tmp, ak_context_allocator(ra->ctx));
    data = ak_json_new_object(&tmp);
    if (snapshot_id) ak_json_set_str(&tmp, data, "snapshotId", snapshot_id);
    if (session_id) ak_json_set_str(&tmp, data, "sessionId", session_id);
    r = tmp.err ? ak__oom(err) : ak__remote_json(ra, url, data, rc, err);
    ak_json_doc_free(&tmp);
    return r;
}

AKDEF ak_result ak_remote_get_snapshot(ak_remote_agent *ra, const char *snapshot_id, const char *session_id,
                                       ak_json_doc *d, ak_json **out, ak_error *err) {
    ak__remote_call *rc;
    ak_result r;
    *out = NULL;
    if ((r = ak__remote_ids(ra, ra->snapshot_url, snapshot_id, session_id, &rc, err)) != AK_OK) return r;
    if (!(*out = ak_json_copy(d, rc->result))) r = ak__oom(err);
    ak__remote_call_free(rc);
    return r;
}

AKDEF ak_result ak_remote_abort(ak_remote_agent *ra, const char *snapshot_id, const char **previous, ak_error *err) {
    ak__remote_call *rc;
    ak_result r;
    *previous = NULL;
    if ((r = ak__remote_ids(ra, ra->abort_url, snapshot_id ? snapshot_id : "", NULL, &rc, err)) != AK_OK) return r;
    *previous = ak_snapshot_status_name(ak_snapshot_status_from_name(ak_json_get_str(rc->result, "status")));
    ak__remote_call_free(rc);
    return AK_OK;
}

AK_PRIVATE ak_result ak__rb_get_snapshot(void *ud, const char *snapshot_id, const char *session_id, ak_json_doc *d,
                                         ak_json **out, ak_error *err) {
    return ak_remote_get_snapshot((ak_remote_agent *)ud, snapshot_id, session_id, d, out, err);
}

AK_PRIVATE ak_result ak__rb_abort(void *ud, const char *snapshot_id, const char **previous, ak_error *err) {
    return ak_remote_abort((ak_remote_agent *)ud, snapshot_id, previous, err);
}

AKDEF ak_result ak_remote_agent_init(ak_remote_agent *ra, ak_context *ctx, const ak_remote_desc *desc,
                                     ak_error *err) {
    const ak_allocator *a = ak_context_allocator(ctx);
    size_t ul, sl;
    ak_url parsed;
    ak_result rc;
    ak_buf b;
    AK_MEMSET(ra, 0, sizeof *ra);
    if (!ctx || !desc || !desc->url || !desc->transport || !desc->transport->start)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "remote agent: ctx, url and transport are required");
    if ((rc = ak_url_parse(desc->url, ak__strlen(desc->url), &parsed, err)) != AK_OK) return rc;
    ra->ctx = ctx;
    ra->desc = *desc;
    /* the three URLs in one block: url, url/getSnapshot (or given), url/abort (or given) */
    ak_buf_init(&b, a);
    ak_buf_append(&b, desc->url, ak__strlen(desc->url) + 1);
    ul = b.len;
    if (desc->get_snapshot_url) ak_buf_append(&b, desc->get_snapshot_url, ak__strlen(desc->get_snapshot_url) + 1);
    else ak_buf_puts(&b, desc->url), ak_buf_append(&b, "/getSnapshot", 13);
    sl = b.len;
    if (desc->abort_url) ak_buf_append(&b, desc->abort_url, ak__strlen(desc->abort_url) + 1);
    else ak_buf_puts(&b, desc->url), ak_buf_append(&b, "/abort", 7);
    if (b.err) {
        ak_buf_free(&b);
        return ak__oom(err);
    }
    ra->urls = ak_buf_take(&b, NULL, &ra->urls_size);
    ra->turn_url = ra->urls;
    ra->snapshot_url = ra->urls + ul;
    ra->abort_url = ra->urls + sl;
    ra->backend.start = ak__rb_start;
    ra->backend.poll = ak__rb_poll;
    ra->backend.cancel = ak__rb_cancel;
    ra->backend.get_snapshot = ak__rb_get_snapshot;
    ra->backend.abort = ak__rb_abort;
    ra->backend.ud = ra;
    return AK_OK;
}

AKDEF void ak_remote_agent_free(ak_remote_agent *ra) {
    ak_free(ak_context_allocator(ra->ctx), ra->urls, ra->urls_size);
    ra->urls = NULL;
}

AKDEF ak_result ak_remote_chat(ak_chat *c, ak_remote_agent *ra, const ak_json *init, ak_error *err) {
    return ak_chat_init_backend(c, ra->ctx, &ra->backend, init, err);
}
