/* Replay transport: scripted responses, matching, faults, delays on a fake clock, both
   delivery modes, cancellation (also from inside callbacks), request recording, leaks and
   allocation failure. */
#include "test.h"

/* ---- a recording sink -------------------------------------------------------------------- */

typedef struct sink {
    ak_http_sink s;           /* first: callbacks get &sink.s */
    char log[4096];
    size_t n;
    int calls, done;
    int stop_at;              /* return AK_ERR_CANCELLED from the Nth callback */
    int cancel_at;            /* cancel the own request in the Nth callback */
    ak_transport *t;
    void *handle;
    ak_result done_rc;
    /* on_done starts this request again once (a retry) */
    const ak_http_request *retry;
    struct sink *retry_sink;
} sink;

static void logf_(sink *k, const char *fmt, const char *a, size_t alen, long v) {
    char tmp[512];
    int n = snprintf(tmp, sizeof tmp, fmt, (int)alen, a, v);
    if (n > 0 && k->n + (size_t)n < sizeof k->log) memcpy(k->log + k->n, tmp, (size_t)n + 1), k->n += (size_t)n;
}

static ak_result sink_after(sink *k) {
    k->calls++;
    if (k->calls == k->cancel_at) k->t->cancel(k->t->ud, k->handle);
    return k->calls == k->stop_at ? AK_ERR_CANCELLED : AK_OK;
}

static ak_result on_status(ak_http_sink *s, int status) {
    sink *k = (sink *)s;
    logf_(k, "S%.*s%ld;", "", 0, status);
    return sink_after(k);
}

static ak_result on_header(ak_http_sink *s, const char *n, size_t nl, const char *v, size_t vl) {
    sink *k = (sink *)s;
    char both[256];
    snprintf(both, sizeof both, "%.*s=%.*s", (int)nl, n, (int)vl, v);
    logf_(k, "H%.*s;", both, strlen(both), 0);
    return sink_after(k);
}

static ak_result on_body(ak_http_sink *s, const char *d, size_t len) {
    sink *k = (sink *)s;
    logf_(k, "B%.*s;", d, len, 0);
    return sink_after(k);
}

static void on_done(ak_http_sink *s, ak_result rc, const char *msg) {
    sink *k = (sink *)s;
    (void)msg;
    k->done++;
    k->done_rc = rc;
    logf_(k, "D%.*s%ld;", "", 0, rc);
    if (k->retry) {
        const ak_http_request *req = k->retry;
        k->retry = NULL;
        k->t->start(k->t->ud, req, &k->retry_sink->s, &k->retry_sink->handle);
    }
}

static void sink_init(sink *k, ak_transport *t) {
    memset(k, 0, sizeof *k);
    k->s.on_status = on_status;
    k->s.on_header = on_header;
    k->s.on_body = on_body;
    k->s.on_done = on_done;
    k->t = t;
}

static ak_http_request request(const char *url) {
    ak_http_request r;
    memset(&r, 0, sizeof r);
    r.method = "POST";
    r.url = url;
    return r;
}

static ak_replay_response response(const char *body, size_t chunk) {
    ak_replay_response r;
    memset(&r, 0, sizeof r);
    r.body = body;
    r.chunk = chunk;
    return r;
}

/* A context with a counting allocator and a clock the test moves by hand. */
typedef struct fixture {
    t_alloc ta;
    ak_context ctx;
    int64_t now;
    ak_replay rp;
    ak_transport t;
} fixture;

static int64_t fake_clock(void *ud) { return ((fixture *)ud)->now; }

static void fixture_init(fixture *f, ak_replay_mode mode, long long fail_at) {
    ak_context_desc d;
    memset(f, 0, sizeof *f);
    memset(&d, 0, sizeof d);
    d.allocator = *t_alloc_init(&f->ta, fail_at);
    d.mono_ms = fake_clock;
    d.user_data = f;
    f->now = 1000;
    ak_context_init(&f->ctx, &d);
    ak_replay_init(&f->rp, &f->ctx, mode);
    f->t = ak_replay_transport(&f->rp);
}

static void fixture_free(fixture *f) {
    ak_replay_free(&f->rp);
    CHECK_EQ(f->ta.live, 0);
    CHECK_EQ(f->ctx.mem_in_use, 0);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void sync_delivers_everything_inside_start(void) {
    fixture f;
    sink k;
    ak_header h[2];
    ak_replay_response res = response("data: hi\n\n", 4);
    ak_http_request req = request("http://api.test/v1/chat");
    fixture_init(&f, AK_REPLAY_SYNC, 0);
    CHECK(f.t.poll == NULL);
    h[0].name = "content-type", h[0].value = "text/event-stream";
    h[1].name = "x-request-id", h[1].value = "r1";
    res.headers = h, res.header_count = 2;
    CHECK_OK(ak_replay_add(&f.rp, &res, NULL));
    sink_init(&k, &f.t);
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK(k.handle != NULL);
    CHECK_STR(k.log, "S200;Hcontent-type=text/event-stream;Hx-request-id=r1;Bdata;B: hi;B\n\n;D0;");
    CHECK_EQ(ak_replay_active(&f.rp), 0);
    CHECK_EQ(ak_replay_unused(&f.rp), 0);
    f.t.cancel(f.t.ud, k.handle); /* after completion: a no-op */
    CHECK_EQ(k.done, 1);
    fixture_free(&f);
}

static void requests_are_recorded_as_deep_copies(void) {
    fixture f;
    sink k;
    char url[64], body[32], hname[16], hval[16];
    ak_header h;
    ak_http_request req;
    ak_replay_response res = response("{}", 0);
    const ak_http_request *got;
    fixture_init(&f, AK_REPLAY_SYNC, 0);
    CHECK_OK(ak_replay_add(&f.rp, &res, NULL));
    strcpy(url, "http://x/y?alt=sse");
    memcpy(body, "{\"a\":\0\"b\"}", 11);
    strcpy(hname, "authorization");
    strcpy(hval, "Bearer k");
    h.name = hname, h.value = hval;
    req = request(url);
    req.body = body, req.body_len = 10;
    req.headers = &h, req.header_count = 1;
    req.timeout_ms = 5000, req.streaming = 1;
    sink_init(&k, &f.t);
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    memset(url, 'z', sizeof url - 1);
    memset(body, 'z', sizeof body);
    memset(hname, 'z', sizeof hname - 1);
    memset(hval, 'z', sizeof hval - 1);
    CHECK_EQ(ak_replay_request_count(&f.rp), 1);
    got = ak_replay_request(&f.rp, 0);
    CHECK(got != NULL);
    if (!got) return;
    CHECK_STR(got->method, "POST");
    CHECK_STR(got->url, "http://x/y?alt=sse");
    CHECK_EQ(got->body_len, 10);
    CHECK(memcmp(got->body, "{\"a\":\0\"b\"}", 11) == 0);
    CHECK_EQ(got->header_count, 1);
    CHECK_STR(got->headers[0].name, "authorization");
    CHECK_STR(got->headers[0].value, "Bearer k");
    CHECK_EQ(got->timeout_ms, 5000);
    CHECK_EQ(got->streaming, 1);
    CHECK(ak_replay_request(&f.rp, 1) == NULL);
    fixture_free(&f);
}

static void responses_match_in_order_or_by_url(void) {
    fixture f;
    sink k;
    ak_replay_response a = response("A", 0), b = response("B", 0), c = response("C", 0);
    ak_http_request r1 = request("http://h/one"), r2 = request("http://h/two");
    ak_error e;
    fixture_init(&f, AK_REPLAY_SYNC, 0);
    b.match = "/two";
    c.status = 503;
    CHECK_OK(ak_replay_add(&f.rp, &b, NULL));
    CHECK_OK(ak_replay_add(&f.rp, &a, NULL));
    CHECK_OK(ak_replay_add(&f.rp, &c, NULL));
    CHECK_EQ(ak_replay_unused(&f.rp), 3);
    sink_init(&k, &f.t);
    CHECK_OK(f.t.start(f.t.ud, &r1, &k.s, &k.handle)); /* skips b: its URL does not match */
    CHECK_OK(f.t.start(f.t.ud, &r2, &k.s, &k.handle));
    CHECK_OK(f.t.start(f.t.ud, &r2, &k.s, &k.handle)); /* b is used up: c answers anything */
    CHECK_STR(k.log, "S200;BA;D0;S200;BB;D0;S503;BC;D0;");
    k.n = 0, k.log[0] = 0;
    CHECK_EQ(f.t.start(f.t.ud, &r1, &k.s, &k.handle), AK_ERR_NOT_FOUND);
    CHECK(k.handle == NULL);
    CHECK_STR(k.log, "");
    CHECK_EQ(f.rp.unmatched, 1);
    CHECK_EQ(ak_replay_request_count(&f.rp), 4);
    CHECK_EQ(ak_replay_unused(&f.rp), 0);
    CHECK(ak_replay_add(&f.rp, NULL, &e) == AK_ERR_INVALID_ARGUMENT);
    fixture_free(&f);
}

static void http_errors_carry_headers_and_body(void) {
    fixture f;
    sink k;
    ak_header h[2];
    ak_replay_response res = response("{\"error\":{\"message\":\"slow down\"}}", 0);
    ak_http_request req = request("http://h/");
    fixture_init(&f, AK_REPLAY_SYNC, 0);
    h[0].name = "retry-after-ms", h[0].value = "1500";
    h[1].name = "x-should-retry", h[1].value = "true";
    res.status = 429, res.headers = h, res.header_count = 2;
    CHECK_OK(ak_replay_add(&f.rp, &res, NULL));
    sink_init(&k, &f.t);
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK_STR(k.log, "S429;Hretry-after-ms=1500;Hx-should-retry=true;B{\"error\":{\"message\":\"slow down\"}};D0;");
    fixture_free(&f);
}

static void faults_refuse_connect_reset_truncate(void) {
    fixture f;
    sink k;
    ak_replay_response refuse = response(NULL, 0), conn = response(NULL, 0);
    ak_replay_response reset = response("0123456789", 3), trunc = response("0123456789", 0);
    ak_replay_response late = response("abc", 0), bad = response(NULL, 0);
    ak_http_request req = request("http://h/");
    fixture_init(&f, AK_REPLAY_SYNC, 0);
    refuse.fault = AK_REPLAY_FAULT_REFUSE;
    conn.fault = AK_REPLAY_FAULT_CONNECT;
    reset.fault = AK_REPLAY_FAULT_RESET, reset.fault_at = 7;
    trunc.fault = AK_REPLAY_FAULT_TRUNCATE, trunc.fault_at = 4;
    late.fault = AK_REPLAY_FAULT_RESET, late.fault_at = 99; /* beyond the body: all of it first */
    bad.fault = (ak_replay_fault)42;
    CHECK_EQ(ak_replay_add(&f.rp, &bad, NULL), AK_ERR_INVALID_ARGUMENT);
    CHECK_OK(ak_replay_add(&f.rp, &refuse, NULL));
    CHECK_OK(ak_replay_add(&f.rp, &conn, NULL));
    CHECK_OK(ak_replay_add(&f.rp, &reset, NULL));
    CHECK_OK(ak_replay_add(&f.rp, &trunc, NULL));
    CHECK_OK(ak_replay_add(&f.rp, &late, NULL));
    sink_init(&k, &f.t);
    CHECK_EQ(f.t.start(f.t.ud, &req, &k.s, &k.handle), AK_ERR_CONNECT);
    CHECK(k.handle == NULL);
    CHECK_STR(k.log, "");
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK_EQ(AK_ERR_CONNECT, -202);
    CHECK_EQ(AK_ERR_CLOSED, -204);
    CHECK_STR(k.log, "D-202;"
                     "S200;B012;B345;B6;D-204;"
                     "S200;B0123;D0;"
                     "S200;Babc;D-204;");
    CHECK_EQ(ak_replay_request_count(&f.rp), 5);
    fixture_free(&f);
}

static void pumped_delivers_one_step_per_poll(void) {
    fixture f;
    sink k;
    ak_header h;
    ak_replay_response res = response("abcdefgh", 3);
    ak_http_request req = request("http://h/");
    int polls = 0;
    fixture_init(&f, AK_REPLAY_PUMPED, 0);
    CHECK(f.t.poll != NULL);
    h.name = "a", h.value = "1";
    res.headers = &h, res.header_count = 1;
    CHECK_OK(ak_replay_add(&f.rp, &res, NULL));
    sink_init(&k, &f.t);
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK_STR(k.log, "");
    CHECK_EQ(ak_replay_active(&f.rp), 1);
    CHECK_OK(f.t.poll(f.t.ud, 0));
    CHECK_STR(k.log, "S200;Ha=1;");
    CHECK_OK(f.t.poll(f.t.ud, 0));
    CHECK_STR(k.log, "S200;Ha=1;Babc;");
    while (ak_replay_active(&f.rp) && polls++ < 10) f.t.poll(f.t.ud, 0);
    CHECK_EQ(polls, 3); /* "def", "gh", done */
    CHECK_STR(k.log, "S200;Ha=1;Babc;Bdef;Bgh;D0;");
    CHECK_OK(f.t.poll(f.t.ud, 0)); /* idle: nothing happens */
    CHECK_EQ(k.done, 1);
    fixture_free(&f);
}

static void pumped_requests_take_turns(void) {
    fixture f;
    sink k1, k2;
    ak_replay_response a = response("1234", 2), b = response("wxyz", 2);
    ak_http_request r1 = request("http://h/a"), r2 = request("http://h/b");
    int i;
    fixture_init(&f, AK_REPLAY_PUMPED, 0);
    a.match = "/a", b.match = "/b";
    CHECK_OK(ak_replay_add(&f.rp, &a, NULL));
    CHECK_OK(ak_replay_add(&f.rp, &b, NULL));
    sink_init(&k1, &f.t);
    sink_init(&k2, &f.t);
    CHECK_OK(f.t.start(f.t.ud, &r1, &k1.s, &k1.handle));
    CHECK_OK(f.t.start(f.t.ud, &r2, &k2.s, &k2.handle));
    for (i = 0; i < 3; i++) f.t.poll(f.t.ud, 0);
    CHECK_STR(k1.log, "S200;B12;");
    CHECK_STR(k2.log, "S200;");
    for (i = 0; i < 5; i++) f.t.poll(f.t.ud, 0);
    CHECK_STR(k1.log, "S200;B12;B34;D0;");
    CHECK_STR(k2.log, "S200;Bwx;Byz;D0;");
    CHECK_EQ(ak_replay_active(&f.rp), 0);
    fixture_free(&f);
}

static void delays_follow_the_fake_clock(void) {
    fixture f;
    sink k;
    ak_replay_response slow = response("ok", 0);
    ak_http_request req = request("http://h/");
    fixture_init(&f, AK_REPLAY_PUMPED, 0);
    slow.delay_ms = 250;
    CHECK_OK(ak_replay_add(&f.rp, &slow, NULL));
    sink_init(&k, &f.t);
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    f.t.poll(f.t.ud, 0);
    f.now += 249;
    f.t.poll(f.t.ud, 0);
    CHECK_STR(k.log, "");
    f.now += 1;
    f.t.poll(f.t.ud, 0);
    CHECK_STR(k.log, "S200;");
    f.t.poll(f.t.ud, 0);
    f.t.poll(f.t.ud, 0);
    CHECK_STR(k.log, "S200;Bok;D0;");
    fixture_free(&f);
}

static void sync_delay_times_out_against_the_request_timeout(void) {
    fixture f;
    sink k;
    ak_replay_response slow = response("late", 0), quick = response("soon", 0);
    ak_http_request req = request("http://h/");
    fixture_init(&f, AK_REPLAY_SYNC, 0);
    slow.delay_ms = 3000;
    quick.delay_ms = 2999;
    CHECK_OK(ak_replay_add(&f.rp, &slow, NULL));
    CHECK_OK(ak_replay_add(&f.rp, &quick, NULL));
    CHECK_OK(ak_replay_add(&f.rp, &slow, NULL));
    req.timeout_ms = 3000;
    sink_init(&k, &f.t);
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    req.timeout_ms = 0; /* no timeout: the delay passes unnoticed */
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK_EQ(AK_ERR_TIMEOUT, -9);
    CHECK_STR(k.log, "D-9;S200;Bsoon;D0;S200;Blate;D0;");
    CHECK_EQ(f.now, 1000);
    fixture_free(&f);
}

static void cancel_mid_stream_stops_delivery(void) {
    fixture f;
    sink k;
    ak_replay_response res = response("aabbccdd", 2);
    ak_http_request req = request("http://h/");
    int i;
    fixture_init(&f, AK_REPLAY_PUMPED, 0);
    CHECK_OK(ak_replay_add(&f.rp, &res, NULL));
    sink_init(&k, &f.t);
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    for (i = 0; i < 3; i++) f.t.poll(f.t.ud, 0);
    f.t.cancel(f.t.ud, k.handle);
    for (i = 0; i < 5; i++) f.t.poll(f.t.ud, 0);
    CHECK_STR(k.log, "S200;Baa;Bbb;");
    CHECK_EQ(ak_replay_active(&f.rp), 0);
    f.t.cancel(f.t.ud, k.handle);        /* twice: a no-op */
    f.t.cancel(f.t.ud, (void *)&k);      /* a handle it never gave out */
    f.t.cancel(f.t.ud, NULL);
    fixture_free(&f);
}

static void cancel_and_stop_from_inside_callbacks(void) {
    fixture f;
    sink k;
    ak_replay_response res = response("aabbccdd", 2);
    ak_http_request req = request("http://h/");
    fixture_init(&f, AK_REPLAY_SYNC, 0);
    CHECK_OK(ak_replay_add(&f.rp, &res, NULL));
    CHECK_OK(ak_replay_add(&f.rp, &res, NULL));
    CHECK_OK(ak_replay_add(&f.rp, &res, NULL));
    sink_init(&k, &f.t);
    k.cancel_at = 3; /* in the second body chunk */
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK_STR(k.log, "S200;Baa;Bbb;");
    sink_init(&k, &f.t);
    k.cancel_at = 1; /* in on_status: no headers or body after it */
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK_STR(k.log, "S200;");
    sink_init(&k, &f.t);
    k.stop_at = 2; /* the sink stops listening: no more calls, not even on_done */
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK_STR(k.log, "S200;Baa;");
    CHECK_EQ(k.done, 0);
    CHECK_EQ(ak_replay_active(&f.rp), 0);
    fixture_free(&f);
}

static void on_done_may_start_a_retry(void) {
    fixture f;
    sink k, k2;
    ak_replay_response busy = response("busy", 0), ok = response("ok", 0);
    ak_http_request req = request("http://h/");
    fixture_init(&f, AK_REPLAY_SYNC, 0);
    busy.status = 503;
    CHECK_OK(ak_replay_add(&f.rp, &busy, NULL));
    CHECK_OK(ak_replay_add(&f.rp, &ok, NULL));
    sink_init(&k, &f.t);
    sink_init(&k2, &f.t);
    k.retry = &req;
    k.retry_sink = &k2;
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &k.handle));
    CHECK_STR(k.log, "S503;Bbusy;D0;");
    CHECK_STR(k2.log, "S200;Bok;D0;");
    CHECK_EQ(ak_replay_request_count(&f.rp), 2);
    fixture_free(&f);
}

/* The SSE parser behind a sink, fed one byte per on_body: the integration later layers use. */
typedef struct sse_sink {
    ak_http_sink s;
    ak_sse_parser p;
    int events;
    ak_result rc;
} sse_sink;

static ak_result count_event(void *ud, const ak_sse_event *ev) {
    sse_sink *k = (sse_sink *)ud;
    k->events++;
    return ev->data_len ? AK_OK : AK_ERR_STREAM;
}
static ak_result sse_status(ak_http_sink *s, int st) { (void)s; return st == 200 ? AK_OK : AK_ERR_HTTP_STATUS; }
static ak_result sse_header(ak_http_sink *s, const char *n, size_t nl, const char *v, size_t vl) {
    (void)s, (void)n, (void)nl, (void)v, (void)vl;
    return AK_OK;
}
static ak_result sse_body(ak_http_sink *s, const char *d, size_t n) {
    return ak_sse_feed(&((sse_sink *)s)->p, d, n, NULL);
}
static void sse_done(ak_http_sink *s, ak_result rc, const char *msg) {
    sse_sink *k = (sse_sink *)s;
    (void)msg;
    k->rc = rc == AK_OK ? ak_sse_finish(&k->p, NULL) : rc;
}

static void sse_consumer_behind_the_transport(void) {
    fixture f;
    sse_sink k;
    void *h;
    ak_replay_response res = response("data: {\"a\":1}\r\n\r\n: ping\r\n\r\nevent: x\r\ndata: [DONE]\r\n\r\n", 1);
    ak_http_request req = request("http://h/");
    fixture_init(&f, AK_REPLAY_SYNC, 0);
    CHECK_OK(ak_replay_add(&f.rp, &res, NULL));
    memset(&k, 0, sizeof k);
    k.s.on_status = sse_status, k.s.on_header = sse_header, k.s.on_body = sse_body, k.s.on_done = sse_done;
    ak_sse_init(&k.p, ak_context_allocator(&f.ctx), count_event, &k);
    k.rc = AK_ERR_INTERNAL;
    CHECK_OK(f.t.start(f.t.ud, &req, &k.s, &h));
    CHECK_EQ(k.events, 2);
    CHECK_OK(k.rc);
    ak_sse_free(&k.p);
    fixture_free(&f);
}

static void bad_arguments_are_rejected(void) {
    fixture f;
    sink k;
    ak_header h;
    ak_replay_response res = response("x", 0);
    ak_http_request req = request("http://h/");
    void *handle = &k;
    ak_replay r;
    CHECK_EQ(ak_replay_init(&r, NULL, AK_REPLAY_SYNC), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_replay_init(NULL, NULL, AK_REPLAY_SYNC), AK_ERR_INVALID_ARGUMENT);
    fixture_init(&f, AK_REPLAY_SYNC, 0);
    h.name = "a", h.value = NULL;
    res.headers = &h, res.header_count = 1;
    CHECK_EQ(ak_replay_add(&f.rp, &res, NULL), AK_ERR_INVALID_ARGUMENT);
    res.header_count = 0;
    res.body = NULL, res.body_len = 3;
    CHECK_EQ(ak_replay_add(&f.rp, &res, NULL), AK_ERR_INVALID_ARGUMENT);
    res = response("x", 0);
    CHECK_OK(ak_replay_add(&f.rp, &res, NULL));
    sink_init(&k, &f.t);
    k.s.on_done = NULL;
    CHECK_EQ(f.t.start(f.t.ud, &req, &k.s, &handle), AK_ERR_INVALID_ARGUMENT);
    CHECK(handle == NULL);
    sink_init(&k, &f.t);
    req.url = NULL;
    CHECK_EQ(f.t.start(f.t.ud, &req, &k.s, &k.handle), AK_ERR_INVALID_ARGUMENT);
    req = request("http://h/");
    req.body_len = 4;
    CHECK_EQ(f.t.start(f.t.ud, &req, &k.s, &k.handle), AK_ERR_INVALID_ARGUMENT);
    req.body_len = 0;
    req.header_count = 2;
    CHECK_EQ(f.t.start(f.t.ud, &req, &k.s, &k.handle), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(f.t.start(f.t.ud, &req, &k.s, NULL), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_replay_request_count(&f.rp), 0);
    CHECK_EQ(ak_replay_unused(&f.rp), 1);
    CHECK_EQ(ak_replay_request_count(NULL), 0);
    CHECK_EQ(ak_replay_active(NULL), 0);
    ak_replay_free(NULL);
    fixture_free(&f);
}

/* Every allocation of add and start fails in turn: clean errors, nothing half-recorded,
   nothing leaked. */
static void survives_every_allocation_failure(void) {
    long long n;
    int ok_seen = 0;
    for (n = 1; n < 40 && !ok_seen; n++) {
        fixture f;
        sink k;
        ak_header h;
        ak_replay_response res = response("data: x\n\n", 0);
        ak_http_request req = request("http://h/path");
        ak_result rc;
        fixture_init(&f, AK_REPLAY_SYNC, n);
        f.rp.arena.next_size = 16; /* a block per copy: many allocations to fail */
        h.name = "k", h.value = "v";
        res.headers = &h, res.header_count = 1, res.match = "path";
        req.headers = &h, req.header_count = 1, req.body = "{}", req.body_len = 2;
        rc = ak_replay_add(&f.rp, &res, NULL);
        CHECK(rc == AK_OK || rc == AK_ERR_OUT_OF_MEMORY);
        CHECK_EQ(ak_replay_unused(&f.rp), rc == AK_OK);
        if (rc == AK_OK) {
            sink_init(&k, &f.t);
            rc = f.t.start(f.t.ud, &req, &k.s, &k.handle);
            CHECK(rc == AK_OK || rc == AK_ERR_OUT_OF_MEMORY);
            CHECK_EQ(ak_replay_request_count(&f.rp), rc == AK_OK);
            if (rc == AK_OK) {
                ok_seen = 1;
                CHECK_STR(k.log, "S200;Hk=v;Bdata: x\n\n;D0;");
            } else {
                CHECK_STR(k.log, "");
            }
        }
        fixture_free(&f);
    }
    CHECK(ok_seen);
}

int main(void) {
    RUN(sync_delivers_everything_inside_start);
    RUN(requests_are_recorded_as_deep_copies);
    RUN(responses_match_in_order_or_by_url);
    RUN(http_errors_carry_headers_and_body);
    RUN(faults_refuse_connect_reset_truncate);
    RUN(pumped_delivers_one_step_per_poll);
    RUN(pumped_requests_take_turns);
    RUN(delays_follow_the_fake_clock);
    RUN(sync_delay_times_out_against_the_request_timeout);
    RUN(cancel_mid_stream_stops_delivery);
    RUN(cancel_and_stop_from_inside_callbacks);
    RUN(on_done_may_start_a_retry);
    RUN(sse_consumer_behind_the_transport);
    RUN(bad_arguments_are_rejected);
    RUN(survives_every_allocation_failure);
    return t_summary();
}
