/* serve layer: the Genkit agent protocol server and the remote-agent client, talking to each
   other through an in-memory transport (no sockets: tests/test_interop_*.sh and the POSIX
   tests cover the wire), plus the server's answers to bad requests, byte for byte */
#include "test.h"
#include "json_text.h"
#include "interop_agents.h"

/* ---- an in-memory transport: requests go straight into an ak_serve ---------------------- */

typedef struct loop_req {
    ak_http_writer w;
    ak_http_sink *sink;
    int ended, cancelled;
    struct loop_req *next;
} loop_req;

typedef struct loop {
    ak_serve *serve;
    loop_req *reqs;
    ak_transport t;
} loop;

static ak_result w_start(void *ud, int status, const ak_header *h, size_t n) {
    loop_req *r = (loop_req *)ud;
    size_t i;
    if (r->cancelled) return AK_ERR_CLOSED;
    r->sink->on_status(r->sink, status);
    for (i = 0; i < n; i++) r->sink->on_header(r->sink, h[i].name, strlen(h[i].name), h[i].value, strlen(h[i].value));
    return AK_OK;
}
static ak_result w_write(void *ud, const char *data, size_t len) {
    loop_req *r = (loop_req *)ud;
    if (r->cancelled) return AK_ERR_CLOSED;
    return r->sink->on_body(r->sink, data, len) == AK_OK ? AK_OK : AK_ERR_CLOSED;
}
static ak_result w_end(void *ud) {
    loop_req *r = (loop_req *)ud;
    if (!r->cancelled && !r->ended) r->sink->on_done(r->sink, AK_OK, NULL);
    r->ended = 1;
    return AK_OK;
}

static ak_result loop_start(void *ud, const ak_http_request *req, ak_http_sink *sink, void **handle) {
    loop *l = (loop *)ud;
    loop_req *r = (loop_req *)calloc(1, sizeof *r);
    ak_serve_request sr;
    char path[512], *q;
    const char *p = strstr(req->url, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    snprintf(path, sizeof path, "%s", p ? p : "/");
    q = strchr(path, '?');
    if (q) *q++ = 0;
    r->sink = sink;
    r->w.start = w_start, r->w.write = w_write, r->w.end = w_end, r->w.ud = r;
    r->next = l->reqs;
    l->reqs = r;
    memset(&sr, 0, sizeof sr);
    sr.method = req->method, sr.path = path, sr.query = q;
    sr.headers = req->headers, sr.header_count = req->header_count;
    sr.body = req->body, sr.body_len = req->body_len;
    *handle = r;
    if (ak_serve_handle(l->serve, &sr, &r->w) == AK_ERR_NOT_FOUND) {
        sink->on_status(sink, 404);
        sink->on_done(sink, AK_OK, NULL);
        r->ended = 1;
    }
    return AK_OK;
}
static ak_result loop_poll(void *ud, int wait_ms) { return ak_serve_pump(((loop *)ud)->serve, wait_ms); }
static void loop_cancel(void *ud, void *handle) {
    loop *l = (loop *)ud;
    loop_req *r = (loop_req *)handle;
    if (r->ended) return;
    r->cancelled = 1;
    ak_serve_abandon(l->serve, &r->w);
}

static void loop_init(loop *l, ak_serve *s) {
    memset(l, 0, sizeof *l);
    l->serve = s;
    l->t.start = loop_start, l->t.poll = loop_poll, l->t.cancel = loop_cancel, l->t.ud = l;
}
static void loop_free(loop *l) {
    while (l->reqs) {
        loop_req *n = l->reqs->next;
        free(l->reqs);
        l->reqs = n;
    }
}

/* ---- fixture: the interop agents served, a remote agent per name ---------------------- */

static int64_t clock_ms = 1700000000000LL;
static int64_t fake_clock(void *ud) { (void)ud; return clock_ms; }
static void fake_sleep(void *ud, int64_t ms) { (void)ud; clock_ms += ms; }

typedef struct fixture {
    ak_context ctx;
    interop_agents ia;
    ak_serve serve;
    loop l;
    ak_json_doc d;
} fixture;

static void fixture_init(fixture *f, ak_serve_auth_fn auth) {
    ak_context_desc cd;
    ak_serve_desc sd;
    memset(&cd, 0, sizeof cd);
    cd.now_ms = fake_clock, cd.mono_ms = fake_clock, cd.sleep_ms = fake_sleep;
    ak_context_init(&f->ctx, &cd);
    CHECK_OK(interop_agents_init(&f->ia, &f->ctx));
    memset(&sd, 0, sizeof sd);
    sd.agents = f->ia.list;
    sd.agent_count = INTEROP_AGENT_COUNT;
    sd.auth = auth;
    sd.max_body = 4096;
    CHECK_OK(ak_serve_init(&f->serve, &f->ctx, &sd));
    loop_init(&f->l, &f->serve);
    ak_json_doc_init(&f->d, NULL);
}

static void fixture_free(fixture *f) {
    ak_serve_free(&f->serve);
    loop_free(&f->l);
    interop_agents_free(&f->ia);
    ak_json_doc_free(&f->d);
}

static void remote(fixture *f, ak_remote_agent *ra, const char *name) {
    ak_remote_desc rd;
    char url[128];
    static char urls[8][128];
    static int n;
    memset(&rd, 0, sizeof rd);
    snprintf(url, sizeof url, "http://test.local/api/%s", name);
    snprintf(urls[n % 8], sizeof urls[0], "%s", url);
    rd.url = urls[n++ % 8];
    rd.transport = &f->l.t;
    CHECK_OK(ak_remote_agent_init(ra, &f->ctx, &rd, NULL));
}

static ak_json *parse(ak_json_doc *d, const char *text) {
    ak_json *v = NULL;
    if (ak_json_parse_value(d, text, strlen(text), NULL, &v, NULL) != AK_OK) abort();
    return v;
}

static char chunks[8192];
static void log_chunk(void *ud, const ak_json *c) {
    (void)ud;
    strcat(chunks, js(c));
    strcat(chunks, "\n");
}

/* ---- the remote client against the C server ------------------------------------------- */

static void remote_chat_streams_and_keeps_client_state(void) {
    fixture f;
    ak_remote_agent ra;
    ak_chat chat;
    ak_response r;
    ak_error e;
    fixture_init(&f, NULL);
    remote(&f, &ra, "chatAgent");
    CHECK_OK(ak_remote_chat(&chat, &ra, NULL, &e));
    chunks[0] = 0;
    CHECK_OK(ak_chat_start(&chat, parse(&f.d, "{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"stream a b c\"}]}}"),
                           log_chunk, NULL, &e));
    while (ak_chat_poll(&chat, 0, &r, &e) == AK_PENDING) {
    }
    CHECK_STR(r.text, "a b c");
    CHECK_STR(chunks, "{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"a \"}]}}\n"
                      "{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"b \"}]}}\n"
                      "{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"c\"}]}}\n"
                      "{\"turnEnd\":{\"finishReason\":\"stop\"}}\n");
    CHECK(ak_chat_snapshot_id(&chat) == NULL && ak_chat_session_id(&chat) != NULL);
    ak_response_free(&r);
    CHECK_OK(ak_chat_send(&chat, "count", &r, &e));
    CHECK_STR(r.text, "history=3"); /* the client sent its whole state back */
    ak_response_free(&r);
    CHECK_OK(ak_chat_send(&chat, "system?", &r, &e));
    CHECK_STR(r.text, "system=You are a deterministic test agent.");
    ak_response_free(&r);
    ak_chat_free(&chat);
    ak_remote_agent_free(&ra);
    fixture_free(&f);
}

static void remote_tools_interrupts_snapshots_and_failures(void) {
    fixture f;
    ak_remote_agent ra, tool;
    ak_chat chat, branch;
    ak_response r;
    ak_error e;
    ak_json *snap;
    char first[AK_ID_MAX + 1];
    fixture_init(&f, NULL);
    remote(&f, &ra, "interruptAgent");
    remote(&f, &tool, "toolAgent");
    CHECK_OK(ak_remote_chat(&chat, &tool, NULL, &e));
    CHECK_OK(ak_chat_send(&chat, "weather Oslo", &r, &e));
    CHECK_STR(r.text, "tool result: [{\"city\":\"Oslo\",\"tempC\":21,\"sky\":\"clear\"}]");
    ak_response_free(&r);
    ak_chat_free(&chat);

    CHECK_OK(ak_remote_chat(&chat, &ra, NULL, &e));
    CHECK_OK(ak_chat_send(&chat, "hello", &r, &e));
    snprintf(first, sizeof first, "%s", r.snapshot_id);
    ak_response_free(&r);
    CHECK_OK(ak_chat_send(&chat, "both", &r, &e));
    CHECK_EQ(r.finish_reason, AK_FINISH_INTERRUPTED);
    CHECK_EQ(ak_json_len(r.interrupts), 1);
    CHECK_STR(js(ak_json_path(r.message, "content[0].metadata.pendingOutput")), "{\"city\":\"Oslo\",\"tempC\":21,\"sky\":\"clear\"}");
    ak_response_free(&r);
    CHECK_OK(ak_chat_resume(&chat, parse(&f.d, "[{\"toolResponse\":{\"name\":\"approveTransfer\",\"ref\":\"t1\",\"output\":{\"approved\":false}}}]"),
                            NULL, &r, &e));
    CHECK_STR(r.text, "tool result: [{\"city\":\"Oslo\",\"tempC\":21,\"sky\":\"clear\"},{\"approved\":false}]");
    ak_response_free(&r);
    /* respond to something that never happened */
    CHECK_EQ(ak_chat_resume(&chat, parse(&f.d, "[{\"toolResponse\":{\"name\":\"x\",\"ref\":\"9\",\"output\":1}}]"), NULL, &r, &e),
             AK_ERR_AGENT);
    CHECK_EQ(e.status, AK_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(e.message, "not found in session history") != NULL);
    ak_response_free(&r);
    /* model failure keeps the last good snapshot */
    CHECK_EQ(ak_chat_send(&chat, "modelfail", &r, &e), AK_ERR_AGENT);
    CHECK_EQ(e.status, AK_STATUS_RESOURCE_EXHAUSTED);
    CHECK_STR(e.message, "RESOURCE_EXHAUSTED: model on fire");
    ak_response_free(&r);
    /* snapshots over HTTP: by id, by session, missing */
    CHECK_OK(ak_remote_get_snapshot(&ra, first, NULL, &f.d, &snap, &e));
    CHECK_STR(ak_json_get_str(snap, "status"), "completed");
    CHECK_EQ(ak_json_len(ak_json_path(snap, "state.messages")), 2);
    CHECK_OK(ak_remote_get_snapshot(&ra, NULL, ak_chat_session_id(&chat), &f.d, &snap, &e));
    CHECK_STR(ak_json_get_str(snap, "status"), "failed");
    CHECK_EQ(ak_remote_get_snapshot(&ra, "nope", NULL, &f.d, &snap, &e), AK_ERR_AGENT);
    CHECK_EQ(e.status, AK_STATUS_NOT_FOUND);
    /* loadChat + branch from the first snapshot */
    CHECK_OK(ak_chat_load_backend(&branch, &f.ctx, &ra.backend, first, NULL, &e));
    CHECK_EQ(ak_json_len(ak_chat_messages(&branch)), 2);
    CHECK_OK(ak_chat_send(&branch, "count", &r, &e));
    CHECK_STR(r.text, "history=3");
    ak_response_free(&r);
    ak_chat_free(&branch);
    ak_chat_free(&chat);
    ak_remote_agent_free(&ra);
    ak_remote_agent_free(&tool);
    fixture_free(&f);
}

static void remote_custom_state_artifacts_detach_and_abort(void) {
    fixture f;
    ak_remote_agent ra;
    ak_chat chat;
    ak_response r;
    ak_error e;
    ak_json *snap;
    char id[AK_ID_MAX + 1];
    const char *prev;
    fixture_init(&f, NULL);
    remote(&f, &ra, "stateAgent");
    CHECK_OK(ak_remote_chat(&chat, &ra, NULL, &e));
    chunks[0] = 0;
    CHECK_OK(ak_chat_start(&chat, parse(&f.d, "{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"go\"}]}}"), log_chunk, NULL, &e));
    while (ak_chat_poll(&chat, 0, &r, &e) == AK_PENDING) {
    }
    CHECK(strstr(chunks, "{\"customPatch\":[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"counter\":1,\"status\":\"working\"}}]}\n"
                         "{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"working on go\"}]}}\n"
                         "{\"customPatch\":[{\"op\":\"replace\",\"path\":\"/status\",\"value\":\"done\"}]}\n"
                         "{\"artifact\":{\"name\":\"report-1.md\",\"parts\":[{\"text\":\"report 1\"}]}}\n") == chunks);
    CHECK_STR(r.text, "counter=1 turn=0");
    CHECK_STR(js(ak_chat_custom(&chat)), "{\"counter\":1,\"status\":\"done\"}");
    ak_response_free(&r);
    CHECK_OK(ak_chat_send(&chat, "again", &r, &e));
    CHECK_STR(js(ak_chat_custom(&chat)), "{\"counter\":2,\"status\":\"done\"}");
    CHECK_EQ(ak_json_len(ak_chat_artifacts(&chat)), 2);
    ak_response_free(&r);
    /* a failing turn: graceful, the last good snapshot stays */
    CHECK_EQ(ak_chat_send(&chat, "fail", &r, &e), AK_ERR_AGENT);
    CHECK_STR(e.message, "intentional failure");
    CHECK_EQ(e.status, AK_STATUS_INTERNAL);
    ak_response_free(&r);
    /* detach "slow", poll, abort */
    CHECK_OK(ak_chat_detach(&chat, parse(&f.d, "{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"slow\"}]}}"), id, &e));
    CHECK_OK(ak_remote_get_snapshot(&ra, id, NULL, &f.d, &snap, &e));
    CHECK_STR(ak_json_get_str(snap, "status"), "pending");
    CHECK_EQ(ak_serve_pump(&f.serve, 0), AK_PENDING); /* a background turn is work to pump */
    CHECK_OK(ak_remote_abort(&ra, id, &prev, &e));
    CHECK_STR(prev, "pending");
    ak_serve_pump(&f.serve, 0);
    CHECK_OK(ak_remote_get_snapshot(&ra, id, NULL, &f.d, &snap, &e));
    CHECK_STR(ak_json_get_str(snap, "status"), "aborted");
    CHECK_OK(ak_remote_abort(&ra, id, &prev, &e));
    CHECK_STR(prev, "aborted");
    CHECK_OK(ak_remote_abort(&ra, "never-existed", &prev, &e));
    CHECK(prev == NULL);
    /* detach "go" (from a fresh conversation: the chat now points at the aborted row, which
       is not resumable): the background turn completes while the server pumps */
    ak_chat_free(&chat);
    CHECK_OK(ak_remote_chat(&chat, &ra, NULL, &e));
    CHECK_OK(ak_chat_detach(&chat, parse(&f.d, "{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"go\"}]}}"), id, &e));
    ak_serve_pump(&f.serve, 0);
    CHECK_OK(ak_remote_get_snapshot(&ra, id, NULL, &f.d, &snap, &e));
    CHECK_STR(ak_json_get_str(snap, "status"), "completed");
    CHECK_EQ(ak_serve_pump(&f.serve, 0), AK_OK); /* nothing left */
    ak_chat_free(&chat);
    ak_remote_agent_free(&ra);
    fixture_free(&f);
}

static void remote_agent_refuses_a_bad_url(void) {
    fixture f;
    ak_remote_agent ra;
    ak_remote_desc rd;
    ak_error e;
    fixture_init(&f, NULL);
    memset(&rd, 0, sizeof rd);
    rd.transport = &f.l.t;
    rd.url = "ftp://example.com/agent";
    CHECK_EQ(ak_remote_agent_init(&ra, &f.ctx, &rd, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK(strstr(e.message, "http") != NULL);
    rd.url = "http://user:pw@example.com/agent";
    CHECK_EQ(ak_remote_agent_init(&ra, &f.ctx, &rd, &e), AK_ERR_INVALID_ARGUMENT);
    rd.url = NULL;
    CHECK_EQ(ak_remote_agent_init(&ra, &f.ctx, &rd, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK(strstr(e.message, "required") != NULL);
    fixture_free(&f);
}

static void init_misuse_reaches_the_client_as_an_error(void) {
    fixture f;
    ak_remote_agent ra, store;
    ak_chat chat;
    ak_response r;
    ak_error e;
    fixture_init(&f, NULL);
    remote(&f, &ra, "chatAgent");
    remote(&f, &store, "storeAgent");
    CHECK_OK(ak_remote_chat(&chat, &ra, parse(&f.d, "{\"snapshotId\":\"abc\"}"), &e));
    CHECK_EQ(ak_chat_send(&chat, "hi", &r, &e), AK_ERR_AGENT);
    CHECK_EQ(e.status, AK_STATUS_FAILED_PRECONDITION);
    CHECK(strstr(e.message, "Cannot use 'snapshotId' with agent 'chatAgent'") != NULL);
    CHECK_EQ(ak_json_len(ak_chat_messages(&chat)), 0); /* the optimistic message rolled back */
    ak_chat_free(&chat);
    CHECK_OK(ak_remote_chat(&chat, &store, parse(&f.d, "{\"state\":{\"messages\":[]}}"), &e));
    CHECK_EQ(ak_chat_send(&chat, "hi", &r, &e), AK_ERR_AGENT);
    CHECK(strstr(e.message, "Cannot send 'state' to agent 'storeAgent'") != NULL);
    ak_chat_free(&chat);
    ak_remote_agent_free(&ra);
    ak_remote_agent_free(&store);
    fixture_free(&f);
}

/* ---- raw HTTP answers ----------------------------------------------------------------- */

typedef struct capture {
    int status, ended;
    char headers[1024];
    ak_buf body;
} capture;

static ak_result c_start(void *ud, int status, const ak_header *h, size_t n) {
    capture *c = (capture *)ud;
    size_t i;
    c->status = status;
    for (i = 0; i < n; i++) {
        strcat(c->headers, h[i].name);
        strcat(c->headers, ": ");
        strcat(c->headers, strncmp(h[i].name, "x-genkit", 8) ? h[i].value : "*");
        strcat(c->headers, "\n");
    }
    return AK_OK;
}
static ak_result c_write(void *ud, const char *d, size_t n) {
    ak_buf_append(&((capture *)ud)->body, d, n);
    return AK_OK;
}
static ak_result c_end(void *ud) {
    ((capture *)ud)->ended = 1;
    return AK_OK;
}

/* Sends a request straight to the server; returns "STATUS BODY". */
static const char *raw(fixture *f, const char *method, const char *path, const char *accept, const char *body) {
    static char out[8192];
    capture c;
    ak_http_writer w;
    ak_serve_request req;
    ak_header h[1];
    memset(&c, 0, sizeof c);
    ak_buf_init(&c.body, NULL);
    w.start = c_start, w.write = c_write, w.end = c_end, w.ud = &c;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.path = path;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    if (accept) {
        h[0].name = "Accept", h[0].value = accept;
        req.headers = h, req.header_count = 1;
    }
    if (ak_serve_handle(&f->serve, &req, &w) == AK_ERR_NOT_FOUND) {
        snprintf(out, sizeof out, "unhandled");
    } else {
        while (!c.ended) ak_serve_pump(&f->serve, 0);
        snprintf(out, sizeof out, "%d %s", c.status, c.body.ptr ? c.body.ptr : "");
    }
    ak_buf_free(&c.body);
    return out;
}

static ak_result deny_without_token(void *ud, const ak_serve_request *req, ak_json_doc *d, ak_json **context, ak_error *e) {
    const char *auth = ak_serve_header(req, "authorization");
    (void)ud;
    if (!auth) return ak_error_setst(e, AK_ERR_AGENT, AK_STATUS_UNAUTHENTICATED, "missing token");
    *context = ak_json_new_object(d);
    ak_json_set_str(d, *context, "user", auth);
    return AK_OK;
}

static void server_answers_bad_requests_with_the_right_status(void) {
    fixture f;
    char big[5000];
    fixture_init(&f, NULL);
    CHECK_STR(raw(&f, "GET", "/healthz", NULL, NULL),
              "200 {\"ok\":true,\"agents\":[\"chatAgent\",\"toolAgent\",\"interruptAgent\",\"storeAgent\",\"stateAgent\",\"clientStateAgent\"]}");
    CHECK_STR(raw(&f, "POST", "/elsewhere", NULL, "{}"), "unhandled");
    CHECK_STR(raw(&f, "POST", "/api/nobody", NULL, "{}"), "404 {\"status\":\"NOT_FOUND\",\"message\":\"Cannot POST /api/nobody\"}");
    CHECK_STR(raw(&f, "GET", "/api/chatAgent", NULL, NULL), "405 {\"status\":\"UNIMPLEMENTED\",\"message\":\"Method GET is not allowed on /api/chatAgent; use POST.\"}");
    CHECK_STR(raw(&f, "POST", "/api/chatAgent", NULL, "{\"data\":"),
              "400 {\"status\":\"INVALID_ARGUMENT\",\"message\":\"Request body is not valid JSON.\"}");
    CHECK_STR(raw(&f, "POST", "/api/chatAgent", NULL, "[1]"),
              "400 {\"status\":\"INVALID_ARGUMENT\",\"message\":\"the request body must be a JSON object {\\\"data\\\": ..., \\\"init\\\": ...}\"}");
    CHECK_STR(raw(&f, "POST", "/api/chatAgent", NULL, "{\"data\":{}}"),
              "400 {\"status\":\"INVALID_ARGUMENT\",\"message\":\"Schema validation failed: 'init' is required (send {} for a new conversation)\"}");
    CHECK_STR(raw(&f, "POST", "/api/chatAgent", NULL, "{\"data\":{\"message\":{\"role\":\"robot\",\"content\":[]}},\"init\":{}}"),
              "400 {\"status\":\"INVALID_ARGUMENT\",\"message\":\"input.message: role must be one of user, model, system, tool\"}");
    memset(big, '[', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_STR(raw(&f, "POST", "/api/chatAgent", NULL, big), "413 {\"status\":\"RESOURCE_EXHAUSTED\",\"message\":\"Request body is too large.\"}");
    CHECK(strstr(raw(&f, "POST", "/api/chatAgent", NULL, "{\"data\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],\"init\":{}}"),
                 "400 {\"status\":\"INVALID_ARGUMENT\",\"message\":\"Request body is nested too deeply.\"}") != NULL);
    CHECK_STR(raw(&f, "POST", "/api/chatAgent", NULL, "{\"data\":{},\"init\":{\"snapshotId\":\"../../etc/passwd\"}}"),
              "400 {\"status\":\"FAILED_PRECONDITION\",\"message\":\"Cannot use 'snapshotId' with agent 'chatAgent': this agent has "
              "no store configured (client-managed state). Send 'state' instead.\"}");
    /* streaming: the same misuse is a 200 with an error frame */
    CHECK_STR(raw(&f, "POST", "/api/storeAgent", "text/event-stream", "{\"data\":{},\"init\":{\"state\":{}}}"),
              "200 error: {\"error\":{\"status\":\"FAILED_PRECONDITION\",\"message\":\"Cannot send 'state' to agent 'storeAgent': this "
              "agent uses a server-managed store. Send 'snapshotId' or 'sessionId' instead.\"}}\n\n");
    CHECK_STR(raw(&f, "POST", "/api/storeAgent/getSnapshot", NULL, "{\"data\":{\"snapshotId\":\"../x\"}}"),
              "404 {\"status\":\"NOT_FOUND\",\"message\":\"Snapshot '../x' not found for agent 'storeAgent'.\"}");
    CHECK_STR(raw(&f, "POST", "/api/storeAgent/getSnapshot", NULL, "{\"data\":{}}"),
              "400 {\"status\":\"INVALID_ARGUMENT\",\"message\":\"getSnapshot requires exactly one of 'snapshotId' or 'sessionId' (got neither).\"}");
    CHECK_STR(raw(&f, "POST", "/api/chatAgent/getSnapshot", NULL, "{\"data\":{\"snapshotId\":\"x\"}}"),
              "400 {\"status\":\"FAILED_PRECONDITION\",\"message\":\"getSnapshotData requires a persistent store. Provide a "
              "'store' when defining 'chatAgent'.\"}");
    CHECK_STR(raw(&f, "POST", "/api/storeAgent/abort", NULL, "{\"data\":{\"snapshotId\":\"x\"}}"), "200 {\"result\":{\"snapshotId\":\"x\"}}");
    CHECK_STR(raw(&f, "POST", "/api/storeAgent/nonsense", NULL, "{}"), "404 {\"status\":\"NOT_FOUND\",\"message\":\"Cannot POST /api/storeAgent/nonsense\"}");
    /* a detach on a client-managed agent */
    CHECK_STR(raw(&f, "POST", "/api/chatAgent", NULL, "{\"data\":{\"detach\":true},\"init\":{}}"),
              "400 {\"status\":\"FAILED_PRECONDITION\",\"message\":\"Detach is only supported when a session store is provided.\"}");
    fixture_free(&f);
}

static void server_streams_frames_and_json_results(void) {
    fixture f;
    const char *out;
    fixture_init(&f, NULL);
    out = raw(&f, "POST", "/agents/chatAgent", "text/event-stream",
              "{\"data\":{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"stream x y\"}]}},\"init\":{}}");
    {
        const char *want = "200 data: {\"message\":{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"x \"}]}}}\n\n"
                           "data: {\"message\":{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"y\"}]}}}\n\n"
                           "data: {\"message\":{\"turnEnd\":{\"finishReason\":\"stop\"}}}\n\n"
                           "data: {\"result\":{\"sessionId\":\"";
        CHECK(strncmp(out, want, strlen(want)) == 0);
    }
    CHECK(strstr(out, "\"message\":{\"role\":\"model\",\"content\":[{\"text\":\"x y\"}]},\"finishReason\":\"stop\",\"state\":{\"artifacts\":[],"
                      "\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"stream x y\"}]},{\"role\":\"model\",\"content\":[{\"text\":\"x y\"}]}],"
                      "\"sessionId\":\"") != NULL);
    CHECK(strcmp(out + strlen(out) - 6, "\"}}}\n\n") == 0);
    /* ?stream=true works too, JSON without it */
    out = raw(&f, "POST", "/agents/toolAgent", NULL, "{\"data\":{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"weather Rome\"}]}},\"init\":{}}");
    CHECK(strncmp(out, "200 {\"result\":{\"sessionId\":", 27) == 0);
    CHECK(strstr(out, "\"text\":\"tool result: [{\\\"city\\\":\\\"Rome\\\",\\\"tempC\\\":21,\\\"sky\\\":\\\"clear\\\"}]\"") != NULL);
    fixture_free(&f);
}

static void auth_runs_before_any_agent_code(void) {
    fixture f;
    ak_remote_agent ra;
    ak_remote_desc rd;
    ak_header h[1];
    ak_chat chat;
    ak_response r;
    ak_error e;
    fixture_init(&f, deny_without_token);
    CHECK_STR(raw(&f, "POST", "/api/chatAgent", NULL, "{\"data\":{},\"init\":{}}"),
              "401 {\"status\":\"UNAUTHENTICATED\",\"message\":\"missing token\"}");
    CHECK_STR(raw(&f, "POST", "/api/chatAgent", "text/event-stream", "{\"data\":{},\"init\":{}}"),
              "401 {\"status\":\"UNAUTHENTICATED\",\"message\":\"missing token\"}");
    memset(&rd, 0, sizeof rd);
    rd.url = "http://test.local/api/chatAgent";
    rd.transport = &f.l.t;
    h[0].name = "Authorization", h[0].value = "Bearer alice";
    rd.headers = h, rd.header_count = 1;
    CHECK_OK(ak_remote_agent_init(&ra, &f.ctx, &rd, NULL));
    CHECK_OK(ak_remote_chat(&chat, &ra, NULL, &e));
    CHECK_OK(ak_chat_send(&chat, "hello", &r, &e));
    CHECK_STR(r.text, "echo: hello");
    ak_response_free(&r);
    ak_chat_free(&chat);
    ak_remote_agent_free(&ra);
    fixture_free(&f);
}

int main(void) {
    RUN(remote_chat_streams_and_keeps_client_state);
    RUN(remote_tools_interrupts_snapshots_and_failures);
    RUN(remote_custom_state_artifacts_detach_and_abort);
    RUN(remote_agent_refuses_a_bad_url);
    RUN(init_misuse_reaches_the_client_as_an_error);
    RUN(server_answers_bad_requests_with_the_right_status);
    RUN(server_streams_frames_and_json_results);
    RUN(auth_runs_before_any_agent_code);
    return t_summary();
}
