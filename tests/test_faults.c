/* faulty networks, end to end: prompt agents on the OpenAI and Anthropic adapters, their
   state in a store, meeting resets mid-stream, truncated bodies, garbage bytes, servers that
   never answer, drip-fed streams and 429/503 with retry delays; first through the replay
   transport, then over real sockets (the POSIX transport against servers this test forks on
   127.0.0.1). Then the remote-agent client against a misbehaving agent server.

   What must hold: a fault is retried only while nothing has been streamed, provider delays
   are honoured (on a clock whose sleeps are virtual, so waiting costs no real time), a turn
   that fails says why with the right status, and the state the session resumes from is the
   last good snapshot: a failed turn writes a failed row beside it and changes nothing the
   next turn sees. Children are killed by PID and die on their own after 20 s. */
#include "test.h"
#include "mockserver.h"
#include <time.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* ---- a clock whose sleeps are virtual ---------------------------------------------------------- */

static int64_t skipped_ms; /* time the library slept, added without waiting */

static int64_t real_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static int64_t virtual_clock(void *ud) { (void)ud; return real_ms() + skipped_ms; }
static int64_t wall_clock(void *ud) { (void)ud; return 1700000000000LL + real_ms() + skipped_ms; }
static void virtual_sleep(void *ud, int64_t ms) { (void)ud; skipped_ms += ms; }

/* ---- provider bodies --------------------------------------------------------------------------- */

typedef struct provider {
    const char *name;
    const ak_adapter *(*adapter)(void);
    const char *stream;          /* a good streamed answer: "Hello world" */
    const char *second_chunk;    /* where the stream's second text delta starts */
    const char *rate_limited;    /* a 429 body */
} provider;

static const provider providers[2] = {
    {"openai", ak_adapter_openai,
     "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n"
     "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},\"finish_reason\":null}]}\n\n"
     "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
     "data: [DONE]\n\n",
     "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"",
     "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}"},
    {"anthropic", ak_adapter_anthropic,
     "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"type\":\"message\",\"role\":\"assistant\","
     "\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
     "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
     "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
     "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" world\"}}\n\n"
     "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
     "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n"
     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
     "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" world\"",
     "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Rate limit reached\"}}"},
};

static size_t second_chunk_at(const provider *p) { return (size_t)(strstr(p->stream, p->second_chunk) - p->stream); }

/* ---- an agent on a provider, server-managed --------------------------------------------------- */

typedef struct fixture {
    t_alloc ta;
    ak_context ctx;
    ak_memstore store;
    ak_http_model model;
    ak_agent agent;
    ak_chat chat;
    char good[AK_ID_MAX + 1];    /* the last snapshot a turn reported */
} fixture;

/* The context (counting allocator, virtual sleeps) and the store; the transport comes next. */
static void fixture_begin(fixture *f) {
    ak_context_desc cd;
    memset(f, 0, sizeof *f);
    memset(&cd, 0, sizeof cd);
    cd.allocator = *t_alloc_init(&f->ta, 0);
    cd.now_ms = wall_clock, cd.mono_ms = virtual_clock, cd.sleep_ms = virtual_sleep;
    ak_context_init(&f->ctx, &cd);
    ak_memstore_init(&f->store, &f->ctx);
}

/* The model on transport t, the agent (retrying `attempts` times) and a chat. */
static void fixture_agent(fixture *f, const provider *p, ak_transport *t, const char *base_url, int64_t timeout_ms,
                          int attempts) {
    ak_provider_config cfg;
    ak_agent_desc ad;
    ak_error e;
    memset(&cfg, 0, sizeof cfg);
    cfg.model = "m";
    cfg.api_key = "k";
    cfg.base_url = base_url;
    cfg.transport = t;
    cfg.timeout_ms = timeout_ms;
    CHECK_OK(ak_http_model_init(&f->model, &f->ctx, p->adapter(), &cfg));
    memset(&ad, 0, sizeof ad);
    ad.name = "faulty";
    ad.model = &f->model.model;
    ad.system = "Be brief.";
    ad.store = &f->store.store;
    ad.retry.max_attempts = attempts;
    ad.retry.initial_delay_ms = 1000;
    ad.retry.no_jitter = 1;
    CHECK_OK(ak_agent_init(&f->agent, &f->ctx, &ad, &e));
    CHECK_OK(ak_chat_init(&f->chat, &f->agent, NULL, &e));
}

/* Frees the agent side; the caller frees its transport, then checks f->ta.live. */
static void fixture_free(fixture *f) {
    ak_chat_free(&f->chat);
    ak_agent_free(&f->agent);
    ak_memstore_free(&f->store);
}

/* One turn; remembers its snapshot when it succeeds. Returns the result, err filled. */
static ak_result turn(fixture *f, const char *text, ak_error *e, char *reply, size_t cap) {
    ak_response r;
    ak_result rc = ak_chat_send(&f->chat, text, &r, e);
    if (rc == AK_OK && r.snapshot_id) snprintf(f->good, sizeof f->good, "%s", r.snapshot_id);
    if (reply) snprintf(reply, cap, "%s", rc == AK_OK ? r.text : "");
    ak_response_free(&r);
    return rc;
}

/* After a failed turn: the chat resumes from the last good snapshot, which is unchanged and
   completed; the session's newest row is the failed turn, a child of it, saying why. */
static void check_last_good_kept(fixture *f, ak_status why) {
    ak_json_doc d;
    ak_json *snap;
    ak_error e;
    ak_json_doc_init(&d, NULL);
    CHECK_STR(ak_chat_snapshot_id(&f->chat), f->good);
    CHECK_OK(ak_agent_get_snapshot(&f->agent, f->good, NULL, NULL, &d, &snap, &e));
    CHECK_STR(ak_json_get_str(snap, "status"), "completed");
    CHECK_OK(ak_agent_get_snapshot(&f->agent, NULL, ak_chat_session_id(&f->chat), NULL, &d, &snap, &e));
    CHECK_STR(ak_json_get_str(snap, "status"), "failed");
    CHECK_STR(ak_json_get_str(snap, "parentId"), f->good);
    CHECK_STR(ak_json_str(ak_json_path(snap, "error.status")), ak_status_name(why));
    ak_json_doc_free(&d);
}

/* The number of messages in a recorded provider request (system + conversation). */
static size_t request_messages(const ak_http_request *q) {
    ak_json_doc d;
    size_t n = 0;
    ak_json_doc_init(&d, NULL);
    if (ak_json_parse(&d, q->body, q->body_len, NULL) == AK_OK) n = ak_json_len(ak_json_get(d.root, "messages"));
    ak_json_doc_free(&d);
    return n;
}

/* ---- faults through the replay transport --------------------------------------------------------- */

/* Chats always stream the model (their chunks reach the caller), so answers are streams. */
typedef struct scenario {
    const char *name;
    ak_replay_response res[3];   /* the answers to the faulty turn's attempts */
    size_t count;
    int ok;                      /* the turn succeeds (after retries) */
    ak_status status;            /* else its status */
    size_t attempts;             /* requests the turn makes */
    int64_t min_wait;            /* virtual time the retries must wait, at least */
} scenario;

#define MAX_SCENARIOS 12

static const ak_header retry_after_2[1] = {{"Retry-After", "2"}};

/* Fills s[0..MAX_SCENARIOS) with the scenarios for provider p (bodies depend on it);
   returns how many. */
static size_t make_scenarios(const provider *p, scenario *s) {
    size_t n = 0, cut = second_chunk_at(p);
    memset(s, 0, MAX_SCENARIOS * sizeof *s);
    s[n].name = "429 with Retry-After: 2, then an answer";
    s[n].res[0].status = 429, s[n].res[0].body = p->rate_limited, s[n].res[0].headers = retry_after_2;
    s[n].res[0].header_count = 1;
    s[n].res[1].body = p->stream;
    s[n].count = 2, s[n].ok = 1, s[n].attempts = 2, s[n].min_wait = 2000;
    n++;
    s[n].name = "503 three times";
    s[n].res[0].status = s[n].res[1].status = s[n].res[2].status = 503;
    s[n].res[0].body = s[n].res[1].body = s[n].res[2].body = "upstream unavailable";
    s[n].count = 3, s[n].status = AK_STATUS_UNAVAILABLE, s[n].attempts = 3, s[n].min_wait = 1000 + 2000;
    n++;
    s[n].name = "a reset before any byte of the body, then an answer";
    s[n].res[0].body = p->stream, s[n].res[0].fault = AK_REPLAY_FAULT_RESET;
    s[n].res[1].body = p->stream;
    s[n].count = 2, s[n].ok = 1, s[n].attempts = 2, s[n].min_wait = 1000;
    n++;
    s[n].name = "a reset mid-stream (text already streamed: no retry)";
    s[n].res[0].body = p->stream, s[n].res[0].fault = AK_REPLAY_FAULT_RESET, s[n].res[0].fault_at = cut;
    s[n].count = 1, s[n].status = AK_STATUS_UNAVAILABLE, s[n].attempts = 1;
    n++;
    s[n].name = "a stream closed cleanly before its end marker";
    s[n].res[0].body = p->stream, s[n].res[0].fault = AK_REPLAY_FAULT_TRUNCATE, s[n].res[0].fault_at = cut;
    s[n].count = 1, s[n].status = AK_STATUS_UNAVAILABLE, s[n].attempts = 1;
    n++;
    s[n].name = "a stream closed cleanly before its first event, then an answer";
    s[n].res[0].body = p->stream, s[n].res[0].fault = AK_REPLAY_FAULT_TRUNCATE, s[n].res[0].fault_at = 10;
    s[n].res[1].body = p->stream;
    s[n].count = 2, s[n].ok = 1, s[n].attempts = 2, s[n].min_wait = 1000;
    n++;
    s[n].name = "garbage bytes as a stream, three times";
    s[n].res[0].body = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not an event stream\n\n\xff\xfe";
    s[n].res[1] = s[n].res[2] = s[n].res[0];
    s[n].count = 3, s[n].status = AK_STATUS_UNAVAILABLE, s[n].attempts = 3, s[n].min_wait = 1000 + 2000;
    n++;
    s[n].name = "a server that never answers (timeout), three times";
    s[n].res[0].delay_ms = s[n].res[1].delay_ms = s[n].res[2].delay_ms = 60000;
    s[n].count = 3, s[n].status = AK_STATUS_DEADLINE_EXCEEDED, s[n].attempts = 3, s[n].min_wait = 1000 + 2000;
    n++;
    s[n].name = "a refused connection, then an answer";
    s[n].res[0].fault = AK_REPLAY_FAULT_REFUSE;
    s[n].res[1].body = p->stream;
    s[n].count = 2, s[n].ok = 1, s[n].attempts = 2, s[n].min_wait = 1000;
    n++;
    s[n].name = "a slow stream, one byte per delivery";
    s[n].res[0].body = p->stream, s[n].res[0].chunk = 1;
    s[n].count = 1, s[n].ok = 1, s[n].attempts = 1;
    n++;
    s[n].name = "400: not worth retrying";
    s[n].res[0].status = 400, s[n].res[0].body = "{\"error\":{\"message\":\"bad request\",\"type\":\"invalid_request_error\"}}";
    s[n].count = 1, s[n].status = AK_STATUS_INVALID_ARGUMENT, s[n].attempts = 1;
    n++;
    return n;
}

static void replay_answer(ak_replay *rp, const char *body) {
    ak_replay_response res;
    memset(&res, 0, sizeof res);
    res.body = body;
    CHECK_OK(ak_replay_add(rp, &res, NULL));
}

static int scenarios_run;

static void run_replay_scenario(const provider *p, const scenario *s) {
    fixture f;
    ak_replay rp;
    ak_transport t;
    ak_error e;
    char reply[128];
    size_t i, before;
    int64_t waited;
    ak_result rc;
    fixture_begin(&f);
    CHECK_OK(ak_replay_init(&rp, &f.ctx, AK_REPLAY_SYNC));
    t = ak_replay_transport(&rp);
    fixture_agent(&f, p, &t, NULL, 5000, 3);
    replay_answer(&rp, p->stream);
    CHECK_OK(turn(&f, "hello", &e, reply, sizeof reply));
    CHECK_STR(reply, "Hello world");
    for (i = 0; i < s->count; i++) CHECK_OK(ak_replay_add(&rp, &s->res[i], NULL));
    before = ak_replay_request_count(&rp);
    skipped_ms = 0;
    waited = virtual_clock(NULL);
    rc = turn(&f, "second", &e, reply, sizeof reply);
    waited = virtual_clock(NULL) - waited;
    CHECK_MSG(ak_replay_request_count(&rp) - before == s->attempts, "%s / %s: %zu attempts, expected %zu", p->name, s->name,
              ak_replay_request_count(&rp) - before, s->attempts);
    CHECK_MSG(waited >= s->min_wait && skipped_ms < s->min_wait + 1000, "%s / %s: waited %lld ms", p->name, s->name,
              (long long)waited);
    if (s->ok) {
        CHECK_MSG(rc == AK_OK && !strcmp(reply, "Hello world"), "%s / %s: %s", p->name, s->name, e.message);
    } else {
        CHECK_MSG(rc == AK_ERR_AGENT && e.status == s->status, "%s / %s: %d %s (%s)", p->name, s->name, (int)rc,
                  ak_status_name(e.status), e.message);
        check_last_good_kept(&f, s->status);
    }
    /* the next turn resumes from the last good snapshot: (OpenAI: the system message +) its 2
       or 4 messages + the new one */
    replay_answer(&rp, p->stream);
    CHECK_OK(turn(&f, "third", &e, reply, sizeof reply));
    CHECK_EQ(request_messages(ak_replay_request(&rp, ak_replay_request_count(&rp) - 1)),
             (p->adapter == ak_adapter_anthropic ? 0 : 1) + (s->ok ? 5 : 3));
    CHECK_EQ(ak_replay_unused(&rp), 0);
    fixture_free(&f);
    ak_replay_free(&rp);
    CHECK_EQ(f.ta.live, 0);
    scenarios_run++;
}

static void replay_faults_on_both_adapters(void) {
    scenario s[MAX_SCENARIOS];
    size_t i, k, n;
    for (k = 0; k < 2; k++)
        for (i = 0, n = make_scenarios(&providers[k], s); i < n; i++) run_replay_scenario(&providers[k], &s[i]);
}

/* ---- faults over real sockets ----------------------------------------------------------------- */

/* How a raw answer ends: closing, resetting, or holding the connection until the client
   gives up (it is then read to its end, so the next answer goes to the next connection). */
typedef enum raw_end { RAW_CLOSE = 0, RAW_RESET, RAW_HOLD } raw_end;

typedef struct raw_answer {
    const char *bytes;           /* everything sent, head included; NULL = nothing */
    size_t piece;                /* bytes per write; 0 = all at once */
    int delay_ms;                /* before each piece */
    raw_end end;
} raw_answer;

typedef struct raw_server {
    char url[64];
    pid_t pid;
} raw_server;

static pid_t live_child;

static void raw_child(int lfd, const raw_answer *a, size_t n) {
    static char buf[1 << 20];
    size_t i;
    alarm(20);
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    for (i = 0; i < n; i++) {
        int fd = accept(lfd, NULL, NULL);
        const char *p = a[i].bytes ? a[i].bytes : "";
        size_t len = strlen(p), off = 0, piece = a[i].piece ? a[i].piece : len + 1;
        if (fd < 0) _exit(2);
        mock__read_request(fd, buf, sizeof buf);
        while (off < len) {
            size_t k = len - off < piece ? len - off : piece;
            if (a[i].delay_ms) mock__sleep_ms(a[i].delay_ms);
            if (mock__send_all(fd, p + off, k)) break;
            off += k;
        }
        if (a[i].end == RAW_RESET) {
            mock_close_with_reset(fd);
            continue;
        }
        while (a[i].end == RAW_HOLD && read(fd, buf, sizeof buf) > 0) {
        }
        close(fd);
    }
    _exit(0);
}

/* Serves answers[i] to the i-th connection. */
static void raw_start(raw_server *s, const raw_answer *answers, size_t n) {
    int port, lfd = mock__listen(&port);
    if (lfd < 0) abort();
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", port);
    fflush(NULL);
    s->pid = fork();
    if (s->pid == 0) raw_child(lfd, answers, n);
    close(lfd);
    live_child = s->pid;
}

static void raw_stop(raw_server *s) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    live_child = 0;
}

static void on_signal(int sig) {
    if (live_child > 0) kill(live_child, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* An HTTP/1.1 response with Content-Length. */
static char *http_answer(int status, const char *type, const char *extra, const char *body) {
    size_t cap = strlen(body) + 512;
    char *r = (char *)malloc(cap);
    snprintf(r, cap, "HTTP/1.1 %d X\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s", status,
             type, extra ? extra : "", strlen(body), body);
    return r;
}

/* The same head, but only the first `keep` bytes of the body: a truncated answer. */
static char *http_cut(const char *type, const char *body, size_t keep) {
    char *r = http_answer(200, type, NULL, body);
    r[strlen(r) - strlen(body) + keep] = 0;
    return r;
}

typedef struct net_case {
    const char *name;
    raw_answer fault[2];         /* what the faulty turn's connections get */
    size_t count;
    int ok;
    ak_status status;
    int64_t min_wait;            /* virtual */
    int64_t max_real;            /* real ms the faulty turn may take */
    int64_t timeout_ms;          /* of each attempt; 0 = 5000 */
} net_case;

static void run_net_case(const provider *p, const net_case *c) {
    raw_answer all[4];
    raw_server srv;
    ak_posix_transport pt;
    ak_posix_transport_desc pd;
    fixture f;
    ak_error e;
    char reply[128], *good = http_answer(200, "text/event-stream", NULL, p->stream);
    int64_t started;
    ak_result rc;
    size_t i;
    memset(all, 0, sizeof all);
    all[0].bytes = good;
    for (i = 0; i < c->count; i++) all[1 + i] = c->fault[i];
    all[1 + c->count].bytes = good;
    raw_start(&srv, all, c->count + 2);
    fixture_begin(&f);
    memset(&pd, 0, sizeof pd);
    pd.ctx = &f.ctx;
    CHECK_OK(ak_posix_transport_init(&pt, &pd, &e));
    fixture_agent(&f, p, &pt.transport, srv.url, c->timeout_ms ? c->timeout_ms : 5000, 2);
    CHECK_OK(turn(&f, "hello", &e, reply, sizeof reply));
    skipped_ms = 0;
    started = real_ms();
    rc = turn(&f, "second", &e, reply, sizeof reply);
    CHECK_MSG(real_ms() - started <= c->max_real, "%s / %s: took %lld ms", p->name, c->name, (long long)(real_ms() - started));
    CHECK_MSG(real_ms() - started + skipped_ms >= c->min_wait, "%s / %s: waited %lld ms", p->name, c->name,
              (long long)(real_ms() - started + skipped_ms));
    if (c->ok) {
        CHECK_MSG(rc == AK_OK && !strcmp(reply, "Hello world"), "%s / %s: %s", p->name, c->name, e.message);
    } else {
        CHECK_MSG(rc == AK_ERR_AGENT && e.status == c->status, "%s / %s: %d %s (%s)", p->name, c->name, (int)rc,
                  ak_status_name(e.status), e.message);
        check_last_good_kept(&f, c->status);
        CHECK_OK(turn(&f, "third", &e, reply, sizeof reply)); /* the server's last answer */
    }
    CHECK_STR(reply, "Hello world");
    fixture_free(&f);
    ak_posix_transport_free(&pt);
    CHECK_EQ(f.ta.live, 0);
    raw_stop(&srv);
    free(good);
    scenarios_run++;
}

static void socket_faults_on_both_adapters(void) {
    size_t k, i;
    for (k = 0; k < 2; k++) {
        const provider *p = &providers[k];
        char *sse_reset = http_cut("text/event-stream", p->stream, second_chunk_at(p));
        char *early_cut = http_cut("text/event-stream", p->stream, 10);
        char *drip = http_answer(200, "text/event-stream", NULL, p->stream);
        char *limited = http_answer(429, "application/json", "Retry-After: 1\r\n", p->rate_limited);
        char *busy = http_answer(503, "text/plain", NULL, "busy");
        net_case c[6];
        memset(c, 0, sizeof c);
        c[0].name = "a reset mid-stream";
        c[0].fault[0].bytes = sse_reset, c[0].fault[0].end = RAW_RESET;
        c[0].count = 1, c[0].status = AK_STATUS_UNAVAILABLE, c[0].max_real = 2000;
        c[1].name = "a body cut short of its Content-Length before any event, then an answer";
        c[1].fault[0].bytes = early_cut;
        c[1].count = 1, c[1].ok = 1, c[1].min_wait = 1000, c[1].max_real = 2000;
        c[2].name = "garbage bytes instead of HTTP";
        c[2].fault[0].bytes = "\x16\x03\x01\x02\x00garbage\r\n\r\n";
        c[2].count = 1, c[2].status = AK_STATUS_UNAVAILABLE, c[2].max_real = 2000;
        c[3].name = "a server that never answers, twice (400 ms timeout)";
        c[3].fault[0].end = c[3].fault[1].end = RAW_HOLD;
        c[3].count = 2, c[3].status = AK_STATUS_DEADLINE_EXCEEDED, c[3].min_wait = 1000, c[3].max_real = 3000;
        c[3].timeout_ms = 400;
        c[4].name = "a stream drip-fed 7 bytes every 2 ms";
        c[4].fault[0].bytes = drip, c[4].fault[0].piece = 7, c[4].fault[0].delay_ms = 2;
        c[4].count = 1, c[4].ok = 1, c[4].max_real = 5000;
        c[5].name = "429 with Retry-After: 1 (virtual wait), then 503";
        c[5].fault[0].bytes = limited, c[5].fault[1].bytes = busy;
        c[5].count = 2, c[5].status = AK_STATUS_UNAVAILABLE, c[5].min_wait = 1000, c[5].max_real = 900;
        for (i = 0; i < 6; i++) run_net_case(p, &c[i]);
        free(sse_reset), free(early_cut), free(drip), free(limited), free(busy);
    }
}

/* ---- the remote client against a misbehaving agent server ---------------------------------------- */

#define FRAME_CHUNK "data: {\"message\":{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"hi\"}]}}}\n\n"
#define FRAME_RESULT(id) "data: {\"result\":{\"sessionId\":\"s1\",\"snapshotId\":\"" id "\",\"finishReason\":\"stop\"," \
                         "\"message\":{\"role\":\"model\",\"content\":[{\"text\":\"hi\"}]}}}\n\n"

typedef struct remote_case {
    const char *name;
    ak_replay_response res;
    ak_status status;
} remote_case;

/* One faulty turn between two good ones (the server's snapshots: snap-1, then snap-3): the
   fault says what went wrong, and the chat keeps the snapshot and messages it had. */
static void remote_turns(ak_transport *t, ak_context *ctx, const char *url, const char *name, ak_status want) {
    ak_remote_agent ra;
    ak_remote_desc rd;
    ak_chat chat;
    ak_response r;
    ak_error e;
    size_t before;
    memset(&rd, 0, sizeof rd);
    rd.url = url;
    rd.transport = t;
    rd.timeout_ms = 5000;
    CHECK_OK(ak_remote_agent_init(&ra, ctx, &rd, NULL));
    CHECK_OK(ak_remote_chat(&chat, &ra, NULL, &e));
    CHECK_OK(ak_chat_send(&chat, "one", &r, &e));
    ak_response_free(&r);
    CHECK_STR(ak_chat_snapshot_id(&chat), "snap-1");
    before = ak_json_len(ak_chat_messages(&chat));
    CHECK_MSG(ak_chat_send(&chat, "two", &r, &e) == AK_ERR_AGENT && e.status == want, "%s: %s %s", name,
              ak_status_name(e.status), e.message);
    ak_response_free(&r);
    CHECK_STR(ak_chat_snapshot_id(&chat), "snap-1");
    CHECK_EQ(ak_json_len(ak_chat_messages(&chat)), before);
    CHECK_OK(ak_chat_send(&chat, "three", &r, &e));
    CHECK_STR(ak_chat_snapshot_id(&chat), "snap-3");
    CHECK_EQ(ak_json_len(ak_chat_messages(&chat)), before + 2);
    ak_response_free(&r);
    ak_chat_free(&chat);
    ak_remote_agent_free(&ra);
    scenarios_run++;
}

static void remote_client_through_replay(void) {
    static const ak_header err_type[1] = {{"Content-Type", "application/json"}};
    remote_case c[6];
    size_t i;
    memset(c, 0, sizeof c);
    c[0].name = "a reset between frames";
    c[0].res.body = FRAME_CHUNK FRAME_RESULT("snap-2"), c[0].res.fault = AK_REPLAY_FAULT_RESET;
    c[0].res.fault_at = strlen(FRAME_CHUNK), c[0].status = AK_STATUS_UNAVAILABLE;
    c[1].name = "a frame cut in half";
    c[1].res.body = FRAME_CHUNK FRAME_RESULT("snap-2"), c[1].res.fault = AK_REPLAY_FAULT_TRUNCATE;
    c[1].res.fault_at = strlen(FRAME_CHUNK) + 30, c[1].status = AK_STATUS_UNAVAILABLE;
    c[2].name = "the end of the stream without a result";
    c[2].res.body = FRAME_CHUNK, c[2].status = AK_STATUS_UNAVAILABLE;
    c[3].name = "500 with a Genkit error";
    c[3].res.status = 500, c[3].res.headers = err_type, c[3].res.header_count = 1;
    c[3].res.body = "{\"status\":\"INTERNAL\",\"message\":\"boom\"}", c[3].status = AK_STATUS_INTERNAL;
    c[4].name = "503 without a body";
    c[4].res.status = 503, c[4].status = AK_STATUS_UNAVAILABLE;
    c[5].name = "a chunk that is not an object"; /* a fuzz finding: it reached the chunk callback */
    c[5].res.body = "data: {\"message\":5}\n\n" FRAME_RESULT("snap-2"), c[5].status = AK_STATUS_INTERNAL;
    for (i = 0; i < 6; i++) {
        ak_context ctx;
        ak_context_desc cd;
        ak_replay rp;
        ak_replay_response good;
        ak_transport t;
        t_alloc ta;
        memset(&cd, 0, sizeof cd);
        cd.allocator = *t_alloc_init(&ta, 0);
        ak_context_init(&ctx, &cd);
        /* pumped: answers arrive over later polls, as from a non-blocking transport */
        CHECK_OK(ak_replay_init(&rp, &ctx, AK_REPLAY_PUMPED));
        memset(&good, 0, sizeof good);
        good.body = FRAME_CHUNK FRAME_RESULT("snap-1");
        good.chunk = 16;
        CHECK_OK(ak_replay_add(&rp, &good, NULL));
        CHECK_OK(ak_replay_add(&rp, &c[i].res, NULL));
        good.body = FRAME_CHUNK FRAME_RESULT("snap-3");
        CHECK_OK(ak_replay_add(&rp, &good, NULL));
        t = ak_replay_transport(&rp);
        remote_turns(&t, &ctx, "http://agents.test/api/storeAgent", c[i].name, c[i].status);
        ak_replay_free(&rp);
        CHECK_EQ(ta.live, 0);
    }
}

static void remote_client_over_sockets(void) {
    static const char *const names[4] = {"a reset mid-body", "chunked frames cut by a clean close",
                                         "the end of the stream without a result", "500 with a Genkit error"};
    static const ak_status want[4] = {AK_STATUS_UNAVAILABLE, AK_STATUS_UNAVAILABLE, AK_STATUS_UNAVAILABLE,
                                      AK_STATUS_INTERNAL};
    char *good1 = http_answer(200, "text/plain", NULL, FRAME_CHUNK FRAME_RESULT("snap-1"));
    char *good3 = http_answer(200, "text/plain", NULL, FRAME_CHUNK FRAME_RESULT("snap-3"));
    char *faults[4], cut[1024];
    size_t i;
    /* chunked frames whose last chunk never comes */
    snprintf(cut, sizeof cut, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n",
             strlen(FRAME_CHUNK), FRAME_CHUNK);
    faults[0] = faults[1] = cut;
    faults[2] = http_answer(200, "text/plain", NULL, FRAME_CHUNK);
    faults[3] = http_answer(500, "application/json", NULL, "{\"status\":\"INTERNAL\",\"message\":\"boom\"}");
    for (i = 0; i < 4; i++) {
        raw_answer a[3];
        raw_server srv;
        ak_context ctx;
        ak_posix_transport pt;
        ak_posix_transport_desc pd;
        ak_error e;
        char url[128];
        memset(a, 0, sizeof a);
        a[0].bytes = good1, a[1].bytes = faults[i], a[2].bytes = good3;
        a[1].end = i == 0 ? RAW_RESET : RAW_CLOSE;
        raw_start(&srv, a, 3);
        ak_context_init(&ctx, NULL);
        memset(&pd, 0, sizeof pd);
        pd.ctx = &ctx;
        pd.nonblocking = (int)(i % 2); /* both modes */
        CHECK_OK(ak_posix_transport_init(&pt, &pd, &e));
        snprintf(url, sizeof url, "%s/api/storeAgent", srv.url);
        remote_turns(&pt.transport, &ctx, url, names[i], want[i]);
        ak_posix_transport_free(&pt);
        raw_stop(&srv);
    }
    free(good1), free(good3), free(faults[2]), free(faults[3]);
}

/* Regression: the blocking helpers returned AK_PENDING after one step of a call that was not
   finished yet, instead of pumping on (found by fuzz_remote). */
static void blocking_helpers_pump_until_the_end(void) {
    ak_context ctx;
    ak_context_desc cd;
    ak_replay rp;
    ak_replay_response res;
    ak_transport t;
    ak_remote_agent ra;
    ak_remote_desc rd;
    ak_json_doc d;
    ak_json *snap;
    ak_error e;
    ak_model model;
    ak_agent agent;
    ak_agent_desc ad;
    ak_chat chat;
    ak_response r;
    memset(&cd, 0, sizeof cd);
    cd.mono_ms = virtual_clock, cd.sleep_ms = virtual_sleep;
    ak_context_init(&ctx, &cd);
    ak_json_doc_init(&d, NULL);
    CHECK_OK(ak_replay_init(&rp, &ctx, AK_REPLAY_PUMPED));
    memset(&res, 0, sizeof res);
    res.body = "{\"result\":{\"snapshotId\":\"x\",\"status\":\"completed\"}}";
    res.chunk = 5;
    CHECK_OK(ak_replay_add(&rp, &res, NULL));
    t = ak_replay_transport(&rp);
    memset(&rd, 0, sizeof rd);
    rd.url = "http://agents.test/api/a";
    rd.transport = &t;
    CHECK_OK(ak_remote_agent_init(&ra, &ctx, &rd, NULL));
    CHECK_OK(ak_remote_get_snapshot(&ra, "x", NULL, &d, &snap, &e));
    CHECK_STR(ak_json_get_str(snap, "status"), "completed");
    ak_remote_agent_free(&ra);
    ak_replay_free(&rp);
    /* a local turn that waits (slowstream: ten virtual seconds) */
    ak_scripted_model_init(&model);
    memset(&ad, 0, sizeof ad);
    ad.name = "slow";
    ad.model = &model;
    CHECK_OK(ak_agent_init(&agent, &ctx, &ad, &e));
    CHECK_OK(ak_chat_init(&chat, &agent, NULL, &e));
    CHECK_OK(ak_chat_send(&chat, "slowstream", &r, &e));
    CHECK_STR(r.text, "slow done");
    ak_response_free(&r);
    ak_chat_free(&chat);
    ak_agent_free(&agent);
    ak_json_doc_free(&d);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    RUN(replay_faults_on_both_adapters);
    RUN(socket_faults_on_both_adapters);
    RUN(remote_client_through_replay);
    RUN(remote_client_over_sockets);
    RUN(blocking_helpers_pump_until_the_end);
    printf("%d fault scenarios\n", scenarios_run);
    return t_summary();
}
