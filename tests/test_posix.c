/* The POSIX networking: the client transport against scripted servers this test forks on
   127.0.0.1 (plain, chunked, close-delimited, drip-fed, silent, resetting), blocking and
   non-blocking, cancel; the server loop with concurrent clients, streaming, keep-alive,
   pipelining, every hostile-client defence and graceful shutdown. Child processes are
   killed by PID at exit, and each also dies on its own after 20 s. */
#include "test.h"
#include "mockserver.h" /* mock_close_with_reset */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static int slow = 1; /* timing multiplier for valgrind, which makes everything slower */

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* ---- children ------------------------------------------------------------------------------ */

static pid_t children[64];
static int nchildren;

static void kill_children(void) {
    int i;
    for (i = 0; i < nchildren; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
}

/* Killed by a signal: children go too (kill and waitpid are safe in a handler). */
static void on_signal(int sig) {
    int i;
    for (i = 0; i < nchildren; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
        }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void forget_child(pid_t pid) {
    int i;
    for (i = 0; i < nchildren; i++)
        if (children[i] == pid) children[i] = 0;
}

/* ---- a context that counts memory, keeps its log and has a clock the test moves ------------------ */

typedef struct env {
    t_alloc ta;
    ak_context ctx;
    long long skew;            /* added to the monotonic clock */
    char log[4096];            /* every message, one per line (truncated when full) */
} env;

static int64_t env_mono(void *ud) { return now_ms() + ((env *)ud)->skew; }

static void env_log(void *ud, ak_log_level level, const char *msg) {
    env *e = (env *)ud;
    size_t n = strlen(e->log);
    (void)level;
    snprintf(e->log + n, sizeof e->log - n, "%s\n", msg);
}

/* e must stay where it is while its context is used. */
static void env_init(env *e, long long fail_at) {
    ak_context_desc d;
    memset(&d, 0, sizeof d);
    e->skew = 0;
    e->log[0] = 0;
    d.allocator = *t_alloc_init(&e->ta, fail_at);
    d.mono_ms = env_mono;
    d.log = env_log;
    d.user_data = e;
    ak_context_init(&e->ctx, &d);
}

/* ---- scripted servers (forked) ------------------------------------------------------------------ */

enum { S_END, S_READ_HEAD, S_READ_BODY, S_SEND, S_SLEEP, S_CLOSE, S_RESET, S_DRAIN };
typedef struct step {
    int op;
    const char *data;
    int ms;
} step;

typedef struct scripted {
    int port;
    pid_t pid;
    int report;                /* pipe: what the child received */
} scripted;

static int listen_local(int *port) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0) return -1;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static size_t head_end(const char *buf, size_t n) {
    size_t i;
    for (i = 3; i < n; i++)
        if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' && buf[i] == '\n') return i + 1;
    return 0;
}

static void child_read_until(int fd, char *req, size_t *n, size_t cap, size_t want) {
    while (*n < want && *n < cap) {
        ssize_t r = read(fd, req + *n, cap - *n);
        if (r <= 0) return;
        *n += (size_t)r;
    }
}

static void child_run(int lfd, const step *s, int report) {
    static char req[1 << 20];
    size_t n = 0, he = 0;
    int fd;
    alarm(20); /* and, on Linux, dies with the test: */
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    fd = accept(lfd, NULL, NULL);
    for (; s->op != S_END && fd >= 0; s++) {
        switch (s->op) {
        case S_READ_HEAD:
            while (!(he = head_end(req, n)) && n < sizeof req) {
                ssize_t r = read(fd, req + n, sizeof req - n);
                if (r <= 0) break;
                n += (size_t)r;
            }
            break;
        case S_READ_BODY: {
            const char *cl = strstr(req, "Content-Length: ");
            child_read_until(fd, req, &n, sizeof req, he + (cl ? (size_t)atol(cl + 16) : 0));
            break;
        }
        case S_SEND: {
            size_t off = 0, len = strlen(s->data);
            while (off < len) {
                ssize_t w = send(fd, s->data + off, len - off, MSG_NOSIGNAL);
                if (w <= 0) break;
                off += (size_t)w;
            }
            break;
        }
        case S_SLEEP:
            sleep_ms(s->ms);
            break;
        case S_CLOSE:
            close(fd);
            fd = -1;
            break;
        case S_RESET:
            mock_close_with_reset(fd);
            fd = -1;
            break;
        case S_DRAIN: { /* read and drop for s->ms, so closing sends no reset */
            long long end = now_ms() + s->ms;
            char tmp[65536];
            shutdown(fd, SHUT_WR);
            while (now_ms() < end) {
                struct pollfd p;
                p.fd = fd;
                p.events = POLLIN;
                if (poll(&p, 1, 10) > 0 && read(fd, tmp, sizeof tmp) <= 0) break;
            }
            break;
        }
        }
    }
    if (write(report, req, n) < 0) _exit(1);
    _exit(0);
}

static void scripted_start(scripted *sv, const step *script) {
    int p[2], lfd = listen_local(&sv->port);
    if (lfd < 0 || pipe(p) != 0) {
        sv->pid = -1;
        return;
    }
    sv->pid = fork();
    if (sv->pid == 0) {
        close(p[0]);
        child_run(lfd, script, p[1]);
    }
    close(lfd);
    close(p[1]);
    sv->report = p[0];
    children[nchildren++] = sv->pid;
}

/* Stops a scripted server whose report does not matter. */
static void scripted_kill(scripted *sv) {
    close(sv->report);
    kill(sv->pid, SIGKILL);
    waitpid(sv->pid, NULL, 0);
    forget_child(sv->pid);
}

/* What the server received (NUL-terminated into out), once it has finished. */
static void scripted_finish(scripted *sv, char *out, size_t cap) {
    size_t n = 0;
    struct pollfd p;
    p.fd = sv->report;
    p.events = POLLIN;
    while (n + 1 < cap && poll(&p, 1, 10000 * slow) > 0) {
        ssize_t r = read(sv->report, out + n, cap - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    out[n] = 0;
    close(sv->report);
    kill(sv->pid, SIGKILL);
    waitpid(sv->pid, NULL, 0);
    forget_child(sv->pid);
}

static void url_of(char *url, size_t cap, int port, const char *path) {
    snprintf(url, cap, "http://127.0.0.1:%d%s", port, path);
}

/* ---- a sink that records --------------------------------------------------------------------- */

typedef struct tsink {
    ak_http_sink sink;
    int status, done, body_calls, calls_after_done;
    ak_result rc;
    char msg[AK_ERROR_MAX];
    char headers[2048];
    char body[1 << 16];
    size_t body_len;
    long long first_body_ms;
    long long took_ms;         /* how long a blocking start() took */
    size_t idle_after;         /* idle connections the transport kept afterwards */
    ak_transport *cancel_on_body; /* cancels its own request from on_body */
    void *handle;
    int stop_on_body;
} tsink;

static ak_result ts_status(ak_http_sink *s, int status) {
    tsink *t = (tsink *)s->ud;
    t->calls_after_done += t->done;
    t->status = status;
    return AK_OK;
}

static ak_result ts_header(ak_http_sink *s, const char *n, size_t nl, const char *v, size_t vl) {
    tsink *t = (tsink *)s->ud;
    size_t len = strlen(t->headers);
    t->calls_after_done += t->done;
    snprintf(t->headers + len, sizeof t->headers - len, "%.*s=%.*s;", (int)nl, n, (int)vl, v);
    return AK_OK;
}

static ak_result ts_body(ak_http_sink *s, const char *d, size_t n) {
    tsink *t = (tsink *)s->ud;
    t->calls_after_done += t->done;
    if (!t->body_calls++) t->first_body_ms = now_ms();
    if (n > sizeof t->body - 1 - t->body_len) n = sizeof t->body - 1 - t->body_len;
    memcpy(t->body + t->body_len, d, n);
    t->body_len += n;
    t->body[t->body_len] = 0;
    if (t->cancel_on_body) t->cancel_on_body->cancel(t->cancel_on_body->ud, t->handle);
    return t->stop_on_body ? AK_ERR_CANCELLED : AK_OK;
}

static void ts_done(ak_http_sink *s, ak_result rc, const char *msg) {
    tsink *t = (tsink *)s->ud;
    t->calls_after_done += t->done;
    t->done++;
    t->rc = rc;
    snprintf(t->msg, sizeof t->msg, "%s", msg ? msg : "");
}

static void ts_init(tsink *t) {
    memset(t, 0, sizeof *t);
    t->sink.on_status = ts_status;
    t->sink.on_header = ts_header;
    t->sink.on_body = ts_body;
    t->sink.on_done = ts_done;
    t->sink.ud = t;
    t->rc = AK_PENDING;
}

static ak_http_request mkreq(const char *method, const char *url, const char *body, int64_t timeout_ms) {
    ak_http_request r;
    memset(&r, 0, sizeof r);
    r.method = method;
    r.url = url;
    r.body = body;
    r.body_len = body ? strlen(body) : 0;
    r.timeout_ms = timeout_ms;
    return r;
}

static void tr_init(ak_posix_transport *t, env *e, int nonblocking) {
    ak_posix_transport_desc d;
    memset(&d, 0, sizeof d);
    d.ctx = &e->ctx;
    d.nonblocking = nonblocking;
    d.connect_timeout_ms = 2000 * slow;
    CHECK_OK(ak_posix_transport_init(t, &d, NULL));
}

/* Non-blocking: polls until the sink is done or ms pass. */
static void tr_wait(ak_posix_transport *t, tsink *s, int ms) {
    long long end = now_ms() + (long long)ms * slow;
    while (!s->done && now_ms() < end && ak_posix_transport_pending(t)) ak_posix_transport_poll(t, 10);
}

/* One blocking exchange against a scripted server. */
static void blocking_exchange(const step *script, const char *method, const char *body, int64_t timeout,
                              tsink *s, char *received, size_t cap) {
    env e;
    ak_posix_transport t;
    scripted sv;
    char url[128];
    ak_http_request req;
    void *h = NULL;
    env_init(&e, 0);
    ts_init(s);
    scripted_start(&sv, script);
    url_of(url, sizeof url, sv.port, "/v1/x?y=1");
    req = mkreq(method, url, body, timeout);
    tr_init(&t, &e, 0);
    s->took_ms = now_ms();
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s->sink, &h));
    s->took_ms = now_ms() - s->took_ms;
    CHECK_EQ(s->done, 1); /* blocking: everything happened inside start */
    CHECK_EQ(ak_posix_transport_pending(&t), 0);
    s->idle_after = ak_posix_transport_idle(&t);
    ak_posix_transport_free(&t);
    CHECK_EQ(e.ta.live, 0);
    if (received) scripted_finish(&sv, received, cap);
    else scripted_kill(&sv);
}

/* ---- transport ------------------------------------------------------------------------------- */

static void blocking_content_length_response(void) {
    static const step script[] = {
        {S_READ_HEAD, 0, 0}, {S_READ_BODY, 0, 0},
        {S_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Id: 7\r\n\r\nhello", 0}, {S_END, 0, 0}};
    tsink s;
    char got[4096];
    blocking_exchange(script, "POST", "{\"q\":1}", 5000, &s, got, sizeof got);
    CHECK_EQ(s.rc, AK_OK);
    CHECK_EQ(s.status, 200);
    CHECK_STR(s.headers, "Content-Length=5;X-Id=7;");
    CHECK_STR(s.body, "hello");
    CHECK_EQ(s.calls_after_done, 0);
    CHECK_EQ(s.idle_after, 1);
    CHECK(strstr(got, "POST /v1/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:") == got);
    CHECK(strstr(got, "\r\nContent-Length: 7\r\n\r\n{\"q\":1}") != NULL); /* keep-alive: no Connection */
}

static void blocking_chunked_and_close_delimited_responses(void) {
    static const step chunked[] = {
        {S_READ_HEAD, 0, 0},
        {S_SEND, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n", 0}, {S_SLEEP, 0, 30},
        {S_SEND, "6;x=1\r\n: more\r\n0\r\n\r\n", 0}, {S_END, 0, 0}};
    static const step until_close[] = {
        {S_READ_HEAD, 0, 0}, {S_SEND, "HTTP/1.0 200 OK\r\n\r\nall of it", 0}, {S_CLOSE, 0, 0}, {S_END, 0, 0}};
    tsink s;
    char got[4096];
    blocking_exchange(chunked, "GET", NULL, 5000, &s, got, sizeof got);
    CHECK_EQ(s.rc, AK_OK);
    CHECK_STR(s.body, "data: more");
    CHECK(s.body_calls >= 2);
    blocking_exchange(until_close, "GET", NULL, 5000, &s, got, sizeof got);
    CHECK_EQ(s.rc, AK_OK);
    CHECK_STR(s.body, "all of it");
    CHECK(strstr(got, "Content-Length") == NULL); /* a GET without a body says nothing */
}

static void head_requests_have_no_body(void) {
    static const step script[] = {
        {S_READ_HEAD, 0, 0}, {S_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 0}, {S_END, 0, 0}};
    tsink s;
    char got[4096];
    blocking_exchange(script, "HEAD", NULL, 5000, &s, got, sizeof got);
    CHECK_EQ(s.rc, AK_OK);
    CHECK_EQ(s.body_len, 0);
}

static void silent_server_times_out(void) {
    static const step script[] = {{S_READ_HEAD, 0, 0}, {S_SLEEP, 0, 60000}, {S_END, 0, 0}}; /* killed first */
    tsink s;
    blocking_exchange(script, "GET", NULL, 300 * slow, &s, NULL, 0);
    CHECK_EQ(s.rc, AK_ERR_TIMEOUT);
    CHECK_MSG(strstr(s.msg, "no response from 127.0.0.1 within") != NULL, "%s", s.msg);
    CHECK_MSG(s.took_ms >= 300 * slow && s.took_ms < 1000 * slow, "took %lld ms", s.took_ms);
}

static void reset_and_cut_bodies_are_errors(void) {
    static const step reset[] = {
        {S_READ_HEAD, 0, 0}, {S_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", 0},
        {S_SLEEP, 0, 200}, {S_RESET, 0, 0}, {S_END, 0, 0}};
    static const step cut[] = {
        {S_READ_HEAD, 0, 0}, {S_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", 0},
        {S_CLOSE, 0, 0}, {S_END, 0, 0}};
    static const step cut_chunked[] = {
        {S_READ_HEAD, 0, 0}, {S_SEND, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc", 0},
        {S_CLOSE, 0, 0}, {S_END, 0, 0}};
    static const step garbage[] = {{S_READ_HEAD, 0, 0}, {S_SEND, "SSH-2.0-OpenSSH\r\n\r\n", 0}, {S_SLEEP, 0, 200}, {S_END, 0, 0}};
    static const step nothing[] = {{S_READ_HEAD, 0, 0}, {S_CLOSE, 0, 0}, {S_END, 0, 0}};
    tsink s;
    char got[4096];
    blocking_exchange(reset, "GET", NULL, 5000, &s, got, sizeof got);
    CHECK_EQ(s.rc, AK_ERR_CLOSED);
    CHECK_MSG(strstr(s.msg, "reset after 10 body bytes") != NULL, "%s", s.msg);
    CHECK_STR(s.body, "0123456789");
    blocking_exchange(cut, "GET", NULL, 5000, &s, got, sizeof got);
    CHECK_EQ(s.rc, AK_ERR_TRUNCATED);
    CHECK_MSG(strstr(s.msg, "10 body bytes, 90 short") != NULL, "%s", s.msg);
    blocking_exchange(cut_chunked, "GET", NULL, 5000, &s, got, sizeof got);
    CHECK_EQ(s.rc, AK_ERR_TRUNCATED);
    blocking_exchange(garbage, "GET", NULL, 5000, &s, got, sizeof got);
    CHECK_EQ(s.rc, AK_ERR_HTTP);
    CHECK_MSG(strstr(s.msg, "did not answer with HTTP") != NULL, "%s", s.msg);
    blocking_exchange(nothing, "GET", NULL, 5000, &s, got, sizeof got);
    CHECK_EQ(s.rc, AK_ERR_CLOSED);
    CHECK_MSG(strstr(s.msg, "before a response") != NULL, "%s", s.msg);
}

static void an_early_answer_beats_a_big_upload(void) {
    /* The server answers 413 after the head and stops reading; the upload cannot finish,
       but the answer arrives and is what the caller gets. */
    static const step script[] = {
        {S_READ_HEAD, 0, 0}, {S_SEND, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\n\r\nbig", 0},
        {S_SLEEP, 0, 500}, {S_DRAIN, 0, 500}, {S_END, 0, 0}};
    static char body[8 << 20];
    tsink s;
    static char got[1 << 20];
    memset(body, 'x', sizeof body - 1);
    blocking_exchange(script, "POST", body, 10000, &s, got, sizeof got);
    CHECK_EQ(s.rc, AK_OK);
    CHECK_EQ(s.status, 413);
    CHECK_STR(s.body, "big");
    CHECK_EQ(s.idle_after, 0); /* the upload never finished: the connection cannot carry another */
}

static void connect_failures_say_why(void) {
    env e;
    ak_posix_transport t;
    tsink s;
    char url[128];
    ak_http_request req;
    int port, fd = listen_local(&port);
    close(fd); /* nothing listens there now */
    env_init(&e, 0);
    tr_init(&t, &e, 0);
    url_of(url, sizeof url, port, "/");
    ts_init(&s);
    req = mkreq("GET", url, NULL, 0);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, NULL));
    CHECK_EQ(s.rc, AK_ERR_CONNECT);
    CHECK_MSG(strstr(s.msg, "cannot connect to 127.0.0.1 port") && strstr(s.msg, "refused"), "%s", s.msg);
    ts_init(&s);
    req = mkreq("GET", "http://exa mple.com/", NULL, 0);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, NULL));
    CHECK_EQ(s.rc, AK_ERR_INVALID_ARGUMENT);
    CHECK_MSG(strstr(s.msg, "0x20") != NULL, "%s", s.msg);
    ts_init(&s);
    req = mkreq("GET", "http://nonexistent.invalid/", NULL, 0);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, NULL));
    CHECK_EQ(s.rc, AK_ERR_CONNECT);
    CHECK_MSG(strstr(s.msg, "cannot resolve nonexistent.invalid") != NULL, "%s", s.msg);
    ts_init(&s);
    req = mkreq("G T", "http://127.0.0.1:1/", NULL, 0);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, NULL));
    CHECK_EQ(s.rc, AK_ERR_INVALID_ARGUMENT);
    ts_init(&s);
    req = mkreq("GET", NULL, NULL, 0);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, NULL));
    CHECK_EQ(s.rc, AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(t.transport.start(t.transport.ud, NULL, &s.sink, NULL), AK_ERR_INVALID_ARGUMENT);
    ak_posix_transport_free(&t);
    CHECK_EQ(e.ta.live, 0);
}

static void nonblocking_mode_streams_as_bytes_arrive(void) {
    static const step script[] = {
        {S_READ_HEAD, 0, 0}, {S_SEND, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst \r\n", 0},
        {S_SLEEP, 0, 400}, {S_SEND, "6\r\nsecond\r\n0\r\n\r\n", 0}, {S_END, 0, 0}};
    env e;
    ak_posix_transport t;
    scripted sv;
    tsink s;
    char url[128], got[4096];
    ak_http_request req;
    void *h = NULL;
    long long t0, worst = 0;
    env_init(&e, 0);
    tr_init(&t, &e, 1);
    scripted_start(&sv, script);
    url_of(url, sizeof url, sv.port, "/stream");
    ts_init(&s);
    req = mkreq("GET", url, NULL, 10000);
    t0 = now_ms();
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, &h));
    CHECK(now_ms() - t0 < 100);
    CHECK_EQ(s.status, 0); /* nothing happens inside start */
    CHECK_EQ(ak_posix_transport_pending(&t), 1);
    while (!s.done && now_ms() - t0 < 5000 * slow) {
        long long p0 = now_ms(), took;
        CHECK_OK(ak_posix_transport_poll(&t, 0)); /* a frame: never waits */
        took = now_ms() - p0;
        if (took > worst) worst = took;
        if (s.body_calls == 1 && !s.done) CHECK_STR(s.body, "first "); /* before "second" was sent */
        sleep_ms(5);
    }
    CHECK_EQ(s.rc, AK_OK);
    CHECK_STR(s.body, "first second");
    CHECK_MSG(worst < 50 * slow, "a poll(0) took %lld ms", worst);
    CHECK(s.first_body_ms - t0 < 350 * slow); /* the first chunk did not wait for the second */
    CHECK_EQ(ak_posix_transport_pending(&t), 0);
    ak_posix_transport_free(&t);
    CHECK_EQ(e.ta.live, 0);
    scripted_finish(&sv, got, sizeof got);
}

static void poll_waits_no_longer_than_asked(void) {
    static const step script[] = {{S_READ_HEAD, 0, 0}, {S_SLEEP, 0, 2000}, {S_END, 0, 0}};
    env e;
    ak_posix_transport t;
    scripted sv;
    tsink s;
    char url[128];
    ak_http_request req;
    long long t0, took;
    void *h;
    env_init(&e, 0);
    tr_init(&t, &e, 1);
    CHECK_OK(ak_posix_transport_poll(&t, 1000)); /* nothing pending: returns at once */
    scripted_start(&sv, script);
    url_of(url, sizeof url, sv.port, "/");
    ts_init(&s);
    req = mkreq("GET", url, NULL, 0);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, &h));
    ak_posix_transport_poll(&t, 50);
    ak_posix_transport_poll(&t, 50); /* connected and sent by now */
    t0 = now_ms();
    CHECK_OK(ak_posix_transport_poll(&t, 120));
    took = now_ms() - t0;
    CHECK_MSG(took >= 100 && took < 300 * slow, "poll(120) took %lld ms", took);
    CHECK_EQ(s.done, 0);
    t.transport.cancel(t.transport.ud, h);
    CHECK_EQ(ak_posix_transport_pending(&t), 0);
    ak_posix_transport_free(&t);
    CHECK_EQ(s.done, 0);
    CHECK_EQ(e.ta.live, 0);
    scripted_kill(&sv);
}

static void cancel_stops_every_sink_call(void) {
    static const step script[] = {
        {S_READ_HEAD, 0, 0}, {S_SEND, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n", 0},
        {S_SLEEP, 0, 300}, {S_SEND, "3\r\ntwo\r\n0\r\n\r\n", 0}, {S_END, 0, 0}};
    env e;
    ak_posix_transport t;
    scripted sv;
    tsink s, s2;
    char url[128], got[256];
    ak_http_request req;
    void *h = NULL, *h2 = NULL;
    long long t0;
    env_init(&e, 0);
    tr_init(&t, &e, 1);
    /* 1: cancelled after the first chunk, from the host loop */
    scripted_start(&sv, script);
    url_of(url, sizeof url, sv.port, "/");
    ts_init(&s);
    req = mkreq("GET", url, NULL, 0);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, &h));
    t0 = now_ms();
    while (!s.body_calls && now_ms() - t0 < 3000 * slow) ak_posix_transport_poll(&t, 10);
    CHECK_STR(s.body, "one");
    t.transport.cancel(t.transport.ud, h);
    t.transport.cancel(t.transport.ud, h);              /* twice: harmless */
    t.transport.cancel(t.transport.ud, (void *)999999); /* unknown: harmless */
    CHECK_EQ(ak_posix_transport_pending(&t), 0);
    t0 = now_ms();
    while (now_ms() - t0 < 500 * slow) ak_posix_transport_poll(&t, 20);
    CHECK_EQ(s.done, 0);
    CHECK_STR(s.body, "one");
    scripted_finish(&sv, got, sizeof got);
    /* 2: cancelled from inside its own on_body; 3: cancelled before it ever ran */
    scripted_start(&sv, script);
    url_of(url, sizeof url, sv.port, "/");
    ts_init(&s);
    s.cancel_on_body = &t.transport;
    req = mkreq("GET", url, NULL, 0);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, &s.handle));
    ts_init(&s2);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s2.sink, &h2));
    t.transport.cancel(t.transport.ud, h2);
    t0 = now_ms();
    while (now_ms() - t0 < 800 * slow) ak_posix_transport_poll(&t, 20);
    CHECK_EQ(s.body_calls, 1);
    CHECK_EQ(s.done, 0);
    CHECK_EQ(s2.status, 0);
    CHECK_EQ(s2.done, 0);
    CHECK_EQ(ak_posix_transport_pending(&t), 0);
    scripted_finish(&sv, got, sizeof got);
    ak_posix_transport_free(&t);
    CHECK_EQ(e.ta.live, 0);
}

static void a_refusing_sink_is_released_silently(void) {
    static const step script[] = {
        {S_READ_HEAD, 0, 0}, {S_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody", 0}, {S_END, 0, 0}};
    env e;
    ak_posix_transport t;
    scripted sv;
    tsink s;
    char url[128], got[256];
    ak_http_request req;
    env_init(&e, 0);
    tr_init(&t, &e, 0);
    scripted_start(&sv, script);
    url_of(url, sizeof url, sv.port, "/");
    ts_init(&s);
    s.stop_on_body = 1;
    req = mkreq("GET", url, NULL, 0);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, NULL));
    CHECK_EQ(s.body_calls, 1);
    CHECK_EQ(s.done, 0);
    CHECK_EQ(ak_posix_transport_pending(&t), 0);
    ak_posix_transport_free(&t);
    CHECK_EQ(e.ta.live, 0);
    scripted_finish(&sv, got, sizeof got);
}

static void concurrent_requests_finish_independently(void) {
    static const step slow_script[] = {
        {S_READ_HEAD, 0, 0}, {S_SLEEP, 0, 600}, {S_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow", 0}, {S_END, 0, 0}};
    static const step fast_script[] = {
        {S_READ_HEAD, 0, 0}, {S_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfast", 0}, {S_END, 0, 0}};
    env e;
    ak_posix_transport t;
    scripted a, b;
    tsink sa, sb;
    char ua[128], ub[128], got[256];
    ak_http_request ra, rb;
    long long t0;
    env_init(&e, 0);
    tr_init(&t, &e, 1);
    scripted_start(&a, slow_script);
    scripted_start(&b, fast_script);
    url_of(ua, sizeof ua, a.port, "/");
    url_of(ub, sizeof ub, b.port, "/");
    ts_init(&sa);
    ts_init(&sb);
    ra = mkreq("GET", ua, NULL, 0);
    rb = mkreq("GET", ub, NULL, 0);
    CHECK_OK(t.transport.start(t.transport.ud, &ra, &sa.sink, NULL));
    CHECK_OK(t.transport.start(t.transport.ud, &rb, &sb.sink, NULL));
    CHECK_EQ(ak_posix_transport_pending(&t), 2);
    t0 = now_ms();
    while (!sb.done && now_ms() - t0 < 3000 * slow) ak_posix_transport_poll(&t, 10);
    CHECK_STR(sb.body, "fast");
    CHECK_EQ(sa.done, 0);
    tr_wait(&t, &sa, 3000);
    CHECK_STR(sa.body, "slow");
    ak_posix_transport_free(&t);
    CHECK_EQ(e.ta.live, 0);
    scripted_finish(&a, got, sizeof got);
    scripted_finish(&b, got, sizeof got);
}

static void transport_fails_cleanly_without_memory(void) {
    static const step script[] = {
        {S_READ_HEAD, 0, 0}, {S_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0}, {S_SLEEP, 0, 200}, {S_END, 0, 0}};
    long long n;
    int saw_ok = 0, saw_fail = 0;
    for (n = 1; n <= 6; n++) {
        env e;
        ak_posix_transport t;
        scripted sv;
        tsink s;
        char url[128];
        ak_http_request req;
        ak_result rc;
        env_init(&e, n);
        tr_init(&t, &e, 0);
        scripted_start(&sv, script);
        url_of(url, sizeof url, sv.port, "/");
        ts_init(&s);
        req = mkreq("GET", url, NULL, 2000);
        rc = t.transport.start(t.transport.ud, &req, &s.sink, NULL);
        if (rc == AK_OK && s.rc == AK_OK) saw_ok = 1;
        else saw_fail = 1;
        CHECK(rc == AK_OK || rc == AK_ERR_OUT_OF_MEMORY);
        CHECK(rc != AK_OK || s.done == 1);
        ak_posix_transport_free(&t);
        CHECK_EQ(e.ta.live, 0);
        scripted_kill(&sv);
    }
    CHECK(saw_ok && saw_fail);
}

/* ---- keep-alive: a forked server that answers by path and counts in shared memory ---------------- */

typedef struct ka_stats {
    int accepts;               /* connections accepted */
    int requests;              /* requests read (also those answered by a reset) */
    int client_closes;         /* connections the client closed */
    char last[2048];           /* the last request, head and body */
} ka_stats;

typedef struct ka_server {
    int port;
    pid_t pid;
    volatile ka_stats *st;     /* written by the child, read by the test */
} ka_server;

enum { KA_KEEP, KA_CLOSE, KA_ARM, KA_RESET };

/* What each path gets; HEAD gets a Content-Length without a body. After KA_ARM the next
   request on that connection is read and answered with a reset. */
static const struct ka_route {
    const char *path, *response;
    int then;
} ka_routes[] = {
    {"/cl", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", KA_KEEP},
    {"/chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", KA_KEEP},
    {"/204", "HTTP/1.1 204 No Content\r\n\r\n", KA_KEEP},
    {"/304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", KA_KEEP},
    {"/http10ka", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", KA_KEEP},
    {"/half", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf ", KA_KEEP},
    {"/junk", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK", KA_KEEP},
    {"/close", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", KA_CLOSE},
    {"/eof", "HTTP/1.1 200 OK\r\n\r\nok", KA_CLOSE},
    {"/http10", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", KA_CLOSE},
    {"/drop", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", KA_CLOSE},
    {"/arm", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", KA_ARM},
    {"/reset", NULL, KA_RESET},
};

#define KA_CONNS 16

typedef struct ka_conn {
    int fd, armed;
    size_t n;
    char buf[8192];
} ka_conn;

static void ka_send(int fd, const char *text) {
    size_t off = 0, len = strlen(text);
    while (off < len) {
        ssize_t w = send(fd, text + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) return;
        off += (size_t)w;
    }
}

/* Answers one request; 1 when that closed the connection. */
static int ka_answer(ka_conn *c, const char *req) {
    char method[16] = "", path[64] = "";
    size_t i;
    sscanf(req, "%15s %63s", method, path);
    if (c->armed) {
        mock_close_with_reset(c->fd);
        return 1;
    }
    if (!strcmp(method, "HEAD")) {
        ka_send(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        return 0;
    }
    for (i = 0; i < sizeof ka_routes / sizeof ka_routes[0]; i++) {
        const struct ka_route *r = &ka_routes[i];
        if (strcmp(path, r->path) != 0) continue;
        if (r->then == KA_RESET) {
            mock_close_with_reset(c->fd);
            return 1;
        }
        ka_send(c->fd, r->response);
        c->armed = r->then == KA_ARM;
        if (r->then == KA_CLOSE) close(c->fd);
        return r->then == KA_CLOSE;
    }
    ka_send(c->fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    return 0;
}

/* Serves every complete request in c->buf; 1 when the connection was closed. */
static int ka_serve(ka_conn *c, volatile ka_stats *st) {
    for (;;) {
        size_t he = head_end(c->buf, c->n), len;
        const char *cl;
        int closed;
        if (!he) return 0;
        c->buf[he - 1] = 0; /* for the searches below; restored after */
        cl = strstr(c->buf, "Content-Length: ");
        len = he + (cl ? (size_t)atol(cl + 16) : 0);
        c->buf[he - 1] = '\n';
        if (c->n < len) return 0;
        memcpy((char *)st->last, c->buf, len < sizeof st->last - 1 ? len : sizeof st->last - 1);
        st->last[len < sizeof st->last - 1 ? len : sizeof st->last - 1] = 0;
        st->requests++;
        c->buf[he - 1] = 0;
        closed = ka_answer(c, c->buf);
        memmove(c->buf, c->buf + len, c->n - len);
        c->n -= len;
        if (closed) return 1;
    }
}

static void ka_child(int lfd, volatile ka_stats *st) {
    static ka_conn conns[KA_CONNS];
    struct pollfd p[KA_CONNS + 1];
    int i;
    alarm(20);
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    for (i = 0; i < KA_CONNS; i++) conns[i].fd = -1;
    for (;;) {
        p[0].fd = lfd;
        p[0].events = POLLIN;
        for (i = 0; i < KA_CONNS; i++) {
            p[i + 1].fd = conns[i].fd;
            p[i + 1].events = POLLIN;
        }
        if (poll(p, KA_CONNS + 1, -1) < 0) continue;
        if (p[0].revents & POLLIN) {
            int fd = accept(lfd, NULL, NULL);
            for (i = 0; fd >= 0 && i < KA_CONNS && conns[i].fd >= 0; i++) {
            }
            if (fd >= 0 && i < KA_CONNS) {
                conns[i].fd = fd, conns[i].armed = 0, conns[i].n = 0;
                st->accepts++;
            } else if (fd >= 0) {
                close(fd);
            }
        }
        for (i = 0; i < KA_CONNS; i++) {
            ka_conn *c = &conns[i];
            ssize_t r;
            if (c->fd < 0 || !p[i + 1].revents || p[i + 1].fd != c->fd) continue;
            r = read(c->fd, c->buf + c->n, sizeof c->buf - 1 - c->n);
            if (r <= 0) {
                st->client_closes++;
                close(c->fd);
                c->fd = -1;
                continue;
            }
            c->n += (size_t)r;
            if (ka_serve(c, st)) c->fd = -1;
        }
    }
}

static void ka_start(ka_server *sv) {
    int lfd = listen_local(&sv->port);
    void *mem = mmap(NULL, sizeof(ka_stats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sv->pid = -1;
    sv->st = NULL;
    if (lfd < 0 || mem == MAP_FAILED) return;
    memset(mem, 0, sizeof(ka_stats));
    sv->st = (volatile ka_stats *)mem;
    sv->pid = fork();
    if (sv->pid == 0) ka_child(lfd, sv->st);
    close(lfd);
    children[nchildren++] = sv->pid;
}

static void ka_stop(ka_server *sv) {
    if (sv->pid > 0) {
        kill(sv->pid, SIGKILL);
        waitpid(sv->pid, NULL, 0);
        forget_child(sv->pid);
    }
    if (sv->st) munmap((void *)sv->st, sizeof(ka_stats));
    sv->st = NULL;
}

/* The server noticed `want` client closes (they arrive a little after the client closes). */
static int ka_closes(ka_server *sv, int want) {
    long long end = now_ms() + 2000LL * slow;
    while (sv->st->client_closes < want && now_ms() < end) sleep_ms(2);
    return sv->st->client_closes;
}

/* One request through t (either mode) to sv: the sink's result, or start()'s failure. */
static ak_result ka_request(ak_posix_transport *t, ka_server *sv, const char *method, const char *path,
                            const char *body, tsink *s) {
    char url[128];
    ak_http_request req;
    ak_result rc;
    url_of(url, sizeof url, sv->port, path);
    ts_init(s);
    req = mkreq(method, url, body, 3000 * slow);
    rc = t->transport.start(t->transport.ud, &req, &s->sink, &s->handle);
    if (rc != AK_OK) return rc;
    if (t->desc.nonblocking) tr_wait(t, s, 3000);
    CHECK_EQ(s->done, 1);
    return s->rc;
}

static void ka_transport(ak_posix_transport *t, env *e, int nonblocking, int max_idle) {
    ak_posix_transport_desc d;
    memset(&d, 0, sizeof d);
    d.ctx = &e->ctx;
    d.nonblocking = nonblocking;
    d.connect_timeout_ms = 2000 * slow;
    d.max_idle = max_idle;
    CHECK_OK(ak_posix_transport_init(t, &d, NULL));
}

/* A fresh environment, a server and a transport to it, for one test. */
static void ka_begin(env *e, ka_server *sv, ak_posix_transport *t, int nonblocking, int max_idle) {
    env_init(e, 0);
    ka_start(sv);
    ka_transport(t, e, nonblocking, max_idle);
}

/* Frees the transport (which must leave nothing allocated) and stops the server. */
static void ka_end(env *e, ka_server *sv, ak_posix_transport *t) {
    ak_posix_transport_free(t);
    CHECK_EQ(e->ta.live, 0);
    ka_stop(sv);
}

static void sequential_requests_share_one_connection(void) {
    static const char *const paths[] = {"/chunked", "/204", "/304", "/http10ka", "/cl"};
    int mode;
    for (mode = 0; mode < 2; mode++) {
        env e;
        ak_posix_transport t;
        ka_server sv;
        tsink s;
        size_t i;
        ka_begin(&e, &sv, &t, mode, 0);
        for (i = 0; i < 5; i++) {
            CHECK_EQ(ka_request(&t, &sv, "GET", "/cl", NULL, &s), AK_OK);
            CHECK_STR(s.body, "ok");
            CHECK_EQ(ak_posix_transport_idle(&t), 1);
            CHECK_EQ(ak_posix_transport_pending(&t), 0); /* idle connections are not requests */
        }
        CHECK_EQ(ka_request(&t, &sv, "POST", "/cl", "{\"n\":6}", &s), AK_OK);
        CHECK(strstr((const char *)sv.st->last, "\r\n\r\n{\"n\":6}") != NULL);
        CHECK(strstr((const char *)sv.st->last, "Connection") == NULL); /* HTTP/1.1's default: keep-alive */
        CHECK_EQ(ka_request(&t, &sv, "HEAD", "/x", NULL, &s), AK_OK);
        CHECK_EQ(s.body_len, 0);
        for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
            CHECK_MSG(ka_request(&t, &sv, "GET", paths[i], NULL, &s) == AK_OK, "%s: %s", paths[i], s.msg);
            CHECK_STR(s.body, strcmp(paths[i], "/204") && strcmp(paths[i], "/304") ? "ok" : "");
        }
        CHECK_EQ(sv.st->requests, 12);
        CHECK_EQ(sv.st->accepts, 1);
        CHECK_EQ(sv.st->client_closes, 0);
        CHECK_EQ(ak_posix_transport_idle(&t), 1);
        ak_posix_transport_free(&t); /* closes the idle connection */
        CHECK_EQ(ak_posix_transport_idle(&t), 0);
        CHECK_EQ(ka_closes(&sv, 1), 1);
        CHECK_EQ(e.ta.live, 0);
        ka_stop(&sv);
    }
}

static void responses_that_end_the_connection_are_not_reused(void) {
    static const char *const paths[] = {"/close", "/eof", "/http10", "/junk"};
    size_t i;
    for (i = 0; i <= sizeof paths / sizeof paths[0]; i++) {
        env e;
        ak_posix_transport t;
        ka_server sv;
        tsink s;
        ka_begin(&e, &sv, &t, (int)(i % 2), 0);
        if (i < sizeof paths / sizeof paths[0]) {
            CHECK_EQ(ka_request(&t, &sv, "GET", paths[i], NULL, &s), AK_OK);
        } else { /* the caller's own "Connection: close" */
            char url[128];
            ak_http_request req;
            ak_header h;
            h.name = "Connection";
            h.value = "close";
            url_of(url, sizeof url, sv.port, "/cl");
            req = mkreq("GET", url, NULL, 3000);
            req.headers = &h;
            req.header_count = 1;
            ts_init(&s);
            CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, NULL));
            tr_wait(&t, &s, 3000);
            CHECK_EQ(s.rc, AK_OK);
            CHECK(strstr((const char *)sv.st->last, "\r\nConnection: close\r\n") != NULL);
        }
        CHECK_STR(s.body, "ok");
        CHECK_MSG(ak_posix_transport_idle(&t) == 0, "%s", i < 4 ? paths[i] : "Connection: close");
        CHECK_EQ(ka_request(&t, &sv, "GET", "/cl", NULL, &s), AK_OK);
        CHECK_EQ(sv.st->accepts, 2);
        ka_end(&e, &sv, &t);
    }
}

/* The server closes each connection after its response, without saying so. */
static void a_server_closing_idle_connections_is_survived(void) {
    env e;
    ak_posix_transport t;
    ka_server sv;
    tsink s;
    int i;
    ka_begin(&e, &sv, &t, 0, 0);
    for (i = 0; i < 4; i++) { /* the close has arrived: the health check drops the connection */
        CHECK_EQ(ka_request(&t, &sv, "GET", "/drop", NULL, &s), AK_OK);
        CHECK_EQ(ak_posix_transport_idle(&t), 1);
        sleep_ms(50);
    }
    CHECK_EQ(sv.st->accepts, 4);
    CHECK_MSG(strstr(e.log, "retrying") == NULL, "%s", e.log);
    for (i = 0; i < 6; i++) /* no pause: the check or the retry, whichever the race allows */
        CHECK_MSG(ka_request(&t, &sv, "GET", "/drop", NULL, &s) == AK_OK, "%s", s.msg);
    CHECK_EQ(sv.st->accepts, 10);
    CHECK_EQ(sv.st->requests, 10);
    ka_end(&e, &sv, &t);
}

/* The server reads the next request on a kept connection and resets it unanswered. */
static void a_reused_connection_reset_on_arrival_is_retried_once(void) {
    int mode;
    for (mode = 0; mode < 2; mode++) {
        env e;
        ak_posix_transport t;
        ka_server sv;
        tsink s;
        ka_begin(&e, &sv, &t, mode, 0);
        CHECK_EQ(ka_request(&t, &sv, "GET", "/arm", NULL, &s), AK_OK);
        CHECK_EQ(ka_request(&t, &sv, "POST", "/cl", "{\"again\":true}", &s), AK_OK);
        CHECK_STR(s.body, "ok");
        CHECK_EQ(s.status, 200);
        CHECK_EQ(s.calls_after_done, 0);
        CHECK_EQ(sv.st->accepts, 2);
        CHECK_EQ(sv.st->requests, 3); /* the reset one, then the retry */
        CHECK(strstr((const char *)sv.st->last, "POST /cl HTTP/1.1\r\n") && strstr((const char *)sv.st->last, "{\"again\":true}"));
        CHECK_MSG(strstr(e.log, "retrying on a new one") != NULL, "%s", e.log);
        CHECK_EQ(ak_posix_transport_idle(&t), 1);
        /* the retry fails too: reported, never retried again */
        CHECK_EQ(ka_request(&t, &sv, "GET", "/arm", NULL, &s), AK_OK);
        CHECK_EQ(ka_request(&t, &sv, "GET", "/reset", NULL, &s), AK_ERR_CLOSED);
        CHECK_EQ(s.status, 0);
        CHECK_EQ(sv.st->accepts, 3);
        CHECK_EQ(sv.st->requests, 6);
        CHECK_EQ(ak_posix_transport_idle(&t), 0);
        ka_end(&e, &sv, &t);
    }
}

static void a_fresh_connection_failure_is_not_retried(void) {
    env e;
    ak_posix_transport t;
    ka_server sv;
    tsink s;
    ka_begin(&e, &sv, &t, 0, 0);
    CHECK_EQ(ka_request(&t, &sv, "GET", "/reset", NULL, &s), AK_ERR_CLOSED);
    CHECK_EQ(sv.st->accepts, 1);
    CHECK_EQ(sv.st->requests, 1);
    CHECK(strstr(e.log, "retrying") == NULL);
    ka_end(&e, &sv, &t);
}

static void idle_connections_expire_on_the_context_clock(void) {
    env e;
    ak_posix_transport t;
    ak_posix_transport_desc d;
    ka_server sv;
    tsink s;
    env_init(&e, 0);
    ka_start(&sv);
    memset(&d, 0, sizeof d);
    d.ctx = &e.ctx;
    d.nonblocking = 1;
    d.idle_timeout_ms = 1000;
    CHECK_OK(ak_posix_transport_init(&t, &d, NULL));
    CHECK_EQ(ka_request(&t, &sv, "GET", "/cl", NULL, &s), AK_OK);
    e.skew += 900;
    CHECK_OK(ak_posix_transport_poll(&t, 0));
    CHECK_EQ(ak_posix_transport_idle(&t), 1);
    e.skew += 100;
    CHECK_OK(ak_posix_transport_poll(&t, 0)); /* nothing pending: it still closes old ones */
    CHECK_EQ(ak_posix_transport_idle(&t), 0);
    CHECK_EQ(ka_closes(&sv, 1), 1);
    CHECK_EQ(ka_request(&t, &sv, "GET", "/cl", NULL, &s), AK_OK);
    CHECK_EQ(sv.st->accepts, 2);
    ak_posix_transport_free(&t);
    /* the default, 30 s, checked by start() */
    ka_transport(&t, &e, 0, 0);
    CHECK_EQ(ka_request(&t, &sv, "GET", "/cl", NULL, &s), AK_OK);
    e.skew += 29000;
    CHECK_EQ(ka_request(&t, &sv, "GET", "/cl", NULL, &s), AK_OK);
    CHECK_EQ(sv.st->accepts, 3);
    e.skew += 30000;
    CHECK_EQ(ka_request(&t, &sv, "GET", "/cl", NULL, &s), AK_OK);
    CHECK_EQ(sv.st->accepts, 4);
    ka_end(&e, &sv, &t);
}

/* Cancelled, stopped by the sink or timed out: the connection is closed, never kept. */
static void an_unfinished_response_never_goes_to_the_pool(void) {
    env e;
    ak_posix_transport t;
    ka_server sv;
    tsink s;
    char url[128];
    ak_http_request req;
    long long t0;
    ka_begin(&e, &sv, &t, 1, 0);
    url_of(url, sizeof url, sv.port, "/half");
    req = mkreq("GET", url, NULL, 0);
    ts_init(&s);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, &s.handle));
    t0 = now_ms();
    while (!s.body_calls && now_ms() - t0 < 3000 * slow) ak_posix_transport_poll(&t, 10);
    CHECK_STR(s.body, "half ");
    t.transport.cancel(t.transport.ud, s.handle);
    CHECK_EQ(ak_posix_transport_pending(&t), 0);
    CHECK_EQ(ak_posix_transport_idle(&t), 0);
    CHECK_EQ(ka_closes(&sv, 1), 1);
    url_of(url, sizeof url, sv.port, "/cl");
    req = mkreq("GET", url, NULL, 0);
    ts_init(&s);
    s.stop_on_body = 1; /* a sink that stops listening, on a whole response */
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, NULL));
    t0 = now_ms();
    while (ak_posix_transport_pending(&t) && now_ms() - t0 < 3000 * slow) ak_posix_transport_poll(&t, 10);
    CHECK_EQ(s.body_calls, 1);
    CHECK_EQ(s.done, 0);
    CHECK_EQ(ak_posix_transport_idle(&t), 0);
    CHECK_EQ(ka_closes(&sv, 2), 2);
    url_of(url, sizeof url, sv.port, "/half");
    req = mkreq("GET", url, NULL, 200 * slow);
    ts_init(&s);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, NULL));
    tr_wait(&t, &s, 3000);
    CHECK_EQ(s.rc, AK_ERR_TIMEOUT);
    CHECK_EQ(ak_posix_transport_idle(&t), 0);
    CHECK_EQ(ka_closes(&sv, 3), 3);
    CHECK_EQ(ka_request(&t, &sv, "GET", "/cl", NULL, &s), AK_OK);
    CHECK_EQ(sv.st->accepts, 4);
    ka_end(&e, &sv, &t);
}

static void two_origins_do_not_mix(void) {
    env e;
    ak_posix_transport t;
    ka_server a, b;
    tsink s;
    char url[128];
    ak_http_request req;
    int i;
    env_init(&e, 0);
    ka_start(&a);
    ka_start(&b);
    ka_transport(&t, &e, 0, 0);
    for (i = 0; i < 6; i++) CHECK_EQ(ka_request(&t, i % 2 ? &b : &a, "GET", "/cl", NULL, &s), AK_OK);
    CHECK_EQ(a.st->accepts, 1);
    CHECK_EQ(b.st->accepts, 1);
    CHECK_EQ(a.st->requests, 3);
    CHECK_EQ(b.st->requests, 3);
    CHECK_EQ(ak_posix_transport_idle(&t), 2);
    /* another host name for the same server is another origin; its case is not */
    snprintf(url, sizeof url, "http://localhost:%d/cl", a.port);
    req = mkreq("GET", url, NULL, 3000);
    ts_init(&s);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, NULL));
    CHECK_EQ(s.rc, AK_OK);
    CHECK_EQ(a.st->accepts, 2);
    snprintf(url, sizeof url, "http://LocalHost:%d/cl", a.port);
    req = mkreq("GET", url, NULL, 3000);
    ts_init(&s);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, NULL));
    CHECK_EQ(s.rc, AK_OK);
    CHECK_EQ(a.st->accepts, 2);
    CHECK_EQ(ak_posix_transport_idle(&t), 3);
    ak_posix_transport_free(&t);
    CHECK_EQ(e.ta.live, 0);
    ka_stop(&a);
    ka_stop(&b);
}

/* Concurrent requests: one connection each; only max_idle of them are kept. */
static void max_idle_is_respected(void) {
    env e;
    ak_posix_transport t;
    ka_server sv;
    tsink s[4];
    char url[128];
    ak_http_request req;
    int i, round;
    ka_begin(&e, &sv, &t, 1, 2);
    url_of(url, sizeof url, sv.port, "/cl");
    req = mkreq("GET", url, NULL, 3000);
    for (round = 0; round < 2; round++) {
        long long t0 = now_ms();
        for (i = 0; i < 4; i++) {
            ts_init(&s[i]);
            CHECK_OK(t.transport.start(t.transport.ud, &req, &s[i].sink, NULL));
        }
        CHECK_EQ(ak_posix_transport_idle(&t), 0); /* round 2: both kept ones taken */
        while (ak_posix_transport_pending(&t) && now_ms() - t0 < 3000 * slow) ak_posix_transport_poll(&t, 10);
        for (i = 0; i < 4; i++) CHECK_EQ(s[i].rc, AK_OK);
        CHECK_EQ(ak_posix_transport_idle(&t), 2);
        CHECK_EQ(sv.st->accepts, 4 + 2 * round);
        CHECK_EQ(ka_closes(&sv, 2 + 2 * round), 2 + 2 * round);
    }
    ka_end(&e, &sv, &t);
}

static void reuse_can_be_turned_off(void) {
    env e;
    ak_posix_transport t;
    ka_server sv;
    tsink s;
    int i;
    ka_begin(&e, &sv, &t, 0, -1);
    for (i = 0; i < 3; i++) {
        CHECK_EQ(ka_request(&t, &sv, "GET", "/cl", NULL, &s), AK_OK);
        CHECK_EQ(ak_posix_transport_idle(&t), 0);
        CHECK(strstr((const char *)sv.st->last, "\r\nConnection: close\r\n") != NULL);
    }
    CHECK_EQ(sv.st->accepts, 3);
    CHECK_EQ(ka_closes(&sv, 3), 3);
    ka_end(&e, &sv, &t);
}

/* Any allocation may fail, the pool's included: a request fails cleanly or works, and
   nothing leaks. */
static void keep_alive_survives_allocation_failure(void) {
    long long n;
    int saw_reuse = 0, saw_fail = 0;
    ka_server sv;
    ka_start(&sv);
    for (n = 1; n <= 24; n++) {
        env e;
        ak_posix_transport t;
        tsink s;
        int i, before = sv.st->accepts, ok = 0;
        env_init(&e, n);
        ka_transport(&t, &e, (int)(n % 2), 0);
        for (i = 0; i < 3; i++) {
            ak_result rc = ka_request(&t, &sv, "GET", "/cl", NULL, &s);
            CHECK(rc == AK_OK || rc == AK_ERR_OUT_OF_MEMORY || rc == AK_ERR_CONNECT);
            ok += rc == AK_OK;
        }
        if (ok == 3 && sv.st->accepts - before == 1) saw_reuse = 1;
        if (ok < 3 || sv.st->accepts - before > 1) saw_fail = 1;
        ak_posix_transport_free(&t);
        CHECK_EQ(e.ta.live, 0);
    }
    CHECK(saw_reuse && saw_fail);
    ka_stop(&sv);
}

/* ---- server --------------------------------------------------------------------------------- */

typedef struct app {
    ak_http_writer *held[16];
    int nheld, requests, closes;
    ak_http_writer *closed[16];
    char last[512];
} app;

static void app_handler(void *ud, const ak_http_server_request *req, ak_http_writer *w) {
    app *a = (app *)ud;
    char text[1024];
    ak_header h[1];
    a->requests++;
    snprintf(a->last, sizeof a->last, "%s %s ?%s x=%s body=%.*s", req->method, req->path, req->query,
             ak_http_server_request_header(req, "x-test") ? ak_http_server_request_header(req, "x-test") : "-",
             (int)req->body_len, req->body);
    if (strcmp(req->path, "/hello") == 0) {
        snprintf(text, sizeof text, "hello %s", req->query);
        ak_http_respond(w, 200, "text/plain", text, strlen(text));
    } else if (strcmp(req->path, "/echo") == 0) {
        ak_http_respond(w, 200, "application/octet-stream", req->body, req->body_len);
    } else if (strcmp(req->path, "/stream") == 0 || strcmp(req->path, "/hold") == 0) {
        h[0].name = "Content-Type";
        h[0].value = "text/event-stream";
        if (strcmp(req->path, "/stream") == 0) w->start(w->ud, 200, h, 1);
        a->held[a->nheld++] = w; /* answered later, from the test's loop */
    } else {
        ak_http_respond(w, 404, NULL, "", 0);
    }
}

static void app_on_close(void *ud, ak_http_writer *w) {
    app *a = (app *)ud;
    a->closed[a->closes++] = w;
}

static ak_http_server_desc srv_desc(env *e, app *a) {
    ak_http_server_desc d;
    memset(&d, 0, sizeof d);
    d.ctx = &e->ctx;
    d.handler = app_handler;
    d.on_close = app_on_close;
    d.ud = a;
    return d;
}

/* A fresh environment, app and server on an ephemeral port. */
static void srv_start(env *e, app *a, ak_http_server *s) {
    ak_http_server_desc d;
    env_init(e, 0);
    memset(a, 0, sizeof *a);
    d = srv_desc(e, a);
    CHECK_OK(ak_http_server_init(s, &d, NULL));
}

static void pump(ak_http_server *s, int ms) {
    long long end = now_ms() + ms;
    do ak_http_server_poll(s, 5);
    while (now_ms() < end);
}

static int cli_connect(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1 when nothing listens on port any more. */
static int cli_refused(int port) {
    int fd = cli_connect(port), e = 0;
    socklen_t len = sizeof e;
    struct pollfd p;
    if (fd < 0) return errno == ECONNREFUSED;
    p.fd = fd;
    p.events = POLLOUT;
    poll(&p, 1, 1000);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
    close(fd);
    return e == ECONNREFUSED;
}

static void cli_send(ak_http_server *s, int fd, const char *data, size_t len) {
    size_t off = 0;
    long long end = now_ms() + 5000 * slow;
    while (off < len && now_ms() < end) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n > 0) off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) break;
        else ak_http_server_poll(s, 2);
    }
}

static void cli_puts(ak_http_server *s, int fd, const char *text) { cli_send(s, fd, text, strlen(text)); }

/* Reads while pumping the server until `until` shows up in the bytes read (NULL: until EOF)
   or ms pass. Returns 1 if the connection was closed (EOF or reset). */
static int cli_read(ak_http_server *s, int fd, char *out, size_t cap, const char *until, int ms) {
    size_t n = strlen(out);
    long long end = now_ms() + (long long)ms * slow;
    while (now_ms() < end) {
        ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
        if (r > 0) {
            n += (size_t)r;
            out[n] = 0;
            if (until && strstr(out, until)) return 0;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return 1;
        ak_http_server_poll(s, 5);
    }
    return 0;
}

static void server_answers_and_keeps_connections_alive(void) {
    env e;
    app a;
    ak_http_server s;
    char buf[8192] = "";
    int fd;
    srv_start(&e, &a, &s);
    CHECK(ak_http_server_port(&s) > 0);
    fd = cli_connect(ak_http_server_port(&s));
    cli_puts(&s, fd, "GET /hello?name=ada HTTP/1.1\r\nHost: x\r\nX-Test: 1\r\n\r\n");
    cli_read(&s, fd, buf, sizeof buf, "hello name=ada", 2000);
    CHECK_STR(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nhello name=ada");
    CHECK_STR(a.last, "GET /hello ?name=ada x=1 body=");
    /* The same connection: a body, then two pipelined requests answered in order. */
    buf[0] = 0;
    cli_puts(&s, fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    cli_read(&s, fd, buf, sizeof buf, "\r\n\r\nabc", 2000);
    CHECK(strstr(buf, "Content-Length: 3\r\n\r\nabc") != NULL);
    buf[0] = 0;
    cli_puts(&s, fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
                     "GET /hello?2 HTTP/1.1\r\nHost: x\r\n\r\n");
    cli_read(&s, fd, buf, sizeof buf, "hello 2", 2000);
    CHECK(strstr(buf, "\r\n\r\nhiHTTP/1.1 200 OK") != NULL);
    CHECK_EQ(a.requests, 4);
    CHECK_EQ(ak_http_server_connections(&s), 1);
    /* Connection: close is honoured: the server closes after the answer. */
    buf[0] = 0;
    cli_puts(&s, fd, "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK_EQ(cli_read(&s, fd, buf, sizeof buf, NULL, 3000), 1);
    CHECK(strncmp(buf, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    CHECK(strstr(buf, "Connection: close\r\n") != NULL);
    close(fd);
    pump(&s, 50);
    CHECK_EQ(ak_http_server_connections(&s), 0);
    /* HTTP/1.0 without keep-alive: answered, then closed. */
    fd = cli_connect(ak_http_server_port(&s));
    buf[0] = 0;
    cli_puts(&s, fd, "GET /hello HTTP/1.0\r\n\r\n");
    CHECK_EQ(cli_read(&s, fd, buf, sizeof buf, NULL, 3000), 1);
    CHECK(strstr(buf, "hello ") != NULL);
    close(fd);
    ak_http_server_free(&s);
    CHECK_EQ(e.ta.live, 0);
}

static void expect_continue_gets_100_before_the_body(void) {
    env e;
    app a;
    ak_http_server s;
    char buf[4096] = "";
    int fd;
    srv_start(&e, &a, &s);
    fd = cli_connect(ak_http_server_port(&s));
    cli_puts(&s, fd, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    cli_read(&s, fd, buf, sizeof buf, "\r\n\r\n", 2000);
    CHECK_STR(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    cli_puts(&s, fd, "data");
    cli_read(&s, fd, buf, sizeof buf, "\r\n\r\ndata", 2000);
    CHECK(strstr(buf, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n") == buf);
    close(fd);
    ak_http_server_free(&s);
    CHECK_EQ(e.ta.live, 0);
}

static void a_stream_does_not_block_other_clients(void) {
    env e;
    app a;
    ak_http_server s;
    char sbuf[8192] = "", buf[4096] = "";
    int fs, fo, i;
    srv_start(&e, &a, &s);
    fs = cli_connect(ak_http_server_port(&s));
    cli_puts(&s, fs, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    cli_read(&s, fs, sbuf, sizeof sbuf, "\r\n\r\n", 2000);
    CHECK(strstr(sbuf, "Transfer-Encoding: chunked") != NULL);
    CHECK_EQ(a.nheld, 1);
    for (i = 0; i < 3 && a.nheld; i++) {
        char ev[32];
        int fo2;
        snprintf(ev, sizeof ev, "data: %d\n\n", i);
        CHECK_OK(a.held[0]->write(a.held[0]->ud, ev, strlen(ev))); /* from the host loop */
        cli_read(&s, fs, sbuf, sizeof sbuf, ev, 2000);
        /* Meanwhile another client is served at once. */
        fo2 = cli_connect(ak_http_server_port(&s));
        buf[0] = 0;
        cli_puts(&s, fo2, "GET /hello?other HTTP/1.1\r\nHost: x\r\n\r\n");
        cli_read(&s, fo2, buf, sizeof buf, "hello other", 2000);
        CHECK(strstr(buf, "hello other") != NULL);
        close(fo2);
    }
    CHECK_EQ(ak_http_server_pending_output(a.held[0]), 0);
    CHECK_OK(a.held[0]->end(a.held[0]->ud));
    CHECK_EQ(a.held[0]->write(a.held[0]->ud, "x", 1), AK_ERR_STATE); /* ended */
    cli_read(&s, fs, sbuf, sizeof sbuf, "0\r\n\r\n", 2000);
    CHECK(strstr(sbuf, "\r\n\r\n9\r\ndata: 0\n\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n") != NULL);
    /* keep-alive after a stream */
    buf[0] = 0;
    cli_puts(&s, fs, "GET /hello?again HTTP/1.1\r\nHost: x\r\n\r\n");
    cli_read(&s, fs, buf, sizeof buf, "hello again", 2000);
    CHECK(strstr(buf, "hello again") != NULL);
    close(fs);
    fo = cli_connect(ak_http_server_port(&s));
    close(fo);
    pump(&s, 50);
    CHECK_EQ(ak_http_server_connections(&s), 0);
    ak_http_server_free(&s);
    CHECK_EQ(e.ta.live, 0);
}

static void a_departed_client_is_reported_to_the_writer(void) {
    env e;
    app a;
    ak_http_server s;
    char buf[4096] = "";
    int fd;
    srv_start(&e, &a, &s);
    fd = cli_connect(ak_http_server_port(&s));
    cli_puts(&s, fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    cli_read(&s, fd, buf, sizeof buf, "\r\n\r\n", 2000);
    CHECK_EQ(a.nheld, 1);
    mock_close_with_reset(fd); /* a reset: writing to it would raise SIGPIPE without MSG_NOSIGNAL */
    pump(&s, 100);
    CHECK_EQ(a.closes, 1);
    CHECK(a.closed[0] == a.held[0]);
    CHECK_EQ(a.held[0]->write(a.held[0]->ud, "late", 4), AK_ERR_CLOSED);
    CHECK_EQ(ak_http_server_connections(&s), 0);
    CHECK_EQ(a.held[0]->end(a.held[0]->ud), AK_ERR_CLOSED); /* releases it */
    pump(&s, 20);
    CHECK_EQ(a.closes, 1);
    /* A write that discovers the reset itself reports it, and on_close stays quiet. */
    fd = cli_connect(ak_http_server_port(&s));
    buf[0] = 0;
    cli_puts(&s, fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    cli_read(&s, fd, buf, sizeof buf, "\r\n\r\n", 2000);
    CHECK_EQ(a.nheld, 2);
    mock_close_with_reset(fd);
    sleep_ms(50);
    {
        ak_result rc = AK_OK;
        int i;
        for (i = 0; i < 100 && rc == AK_OK; i++) rc = a.held[1]->write(a.held[1]->ud, "data: x\n\n", 9);
        CHECK_EQ(rc, AK_ERR_CLOSED);
    }
    pump(&s, 50);
    CHECK_EQ(a.closes, 1);
    CHECK_EQ(a.held[1]->end(a.held[1]->ud), AK_ERR_CLOSED);
    ak_http_server_free(&s);
    CHECK_EQ(e.ta.live, 0);
}

/* A client that pipelines more than the server buffers during a response, then resets: the
   hang-up is still noticed (no busy poll loop, the holder is told). */
static void a_hang_up_is_seen_even_with_input_backed_up(void) {
    env e;
    app a;
    ak_http_server s;
    ak_http_server_desc d;
    char junk[4096];
    int fd, polls = 0;
    long long t0;
    env_init(&e, 0);
    memset(&a, 0, sizeof a);
    memset(junk, 'j', sizeof junk);
    d = srv_desc(&e, &a);
    d.limits.max_header_bytes = 64;
    CHECK_OK(ak_http_server_init(&s, &d, NULL));
    fd = cli_connect(ak_http_server_port(&s));
    cli_puts(&s, fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    pump(&s, 50);
    CHECK_EQ(a.nheld, 1);
    cli_send(&s, fd, junk, sizeof junk); /* far more than the 64 bytes kept while answering */
    pump(&s, 50);
    mock_close_with_reset(fd);
    t0 = now_ms();
    while (a.closes == 0 && now_ms() - t0 < 300 * slow) {
        ak_http_server_poll(&s, 50);
        polls++;
    }
    CHECK_EQ(a.closes, 1);
    CHECK_MSG(polls < 20, "%d polls: the server spun instead of waiting", polls);
    if (a.nheld) CHECK_EQ(a.held[0]->end(a.held[0]->ud), AK_ERR_CLOSED);
    ak_http_server_free(&s);
    CHECK_EQ(e.ta.live, 0);
}

/* A client that half-closes and never reads a big answer: no busy loop while the answer
   waits, then the write timeout drops it. */
static void a_half_closed_client_does_not_make_the_server_spin(void) {
    static char big[8 << 20];
    env e;
    app a;
    ak_http_server s;
    ak_http_server_desc d;
    int fd, polls = 0, rcvbuf = 4096;
    long long t0;
    env_init(&e, 0);
    memset(&a, 0, sizeof a);
    memset(big, 'b', sizeof big);
    d = srv_desc(&e, &a);
    d.write_timeout_ms = 400 * slow;
    CHECK_OK(ak_http_server_init(&s, &d, NULL));
    fd = cli_connect(ak_http_server_port(&s));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    cli_puts(&s, fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    pump(&s, 50);
    CHECK_EQ(a.nheld, 1);
    CHECK_OK(a.held[0]->start(a.held[0]->ud, 200, NULL, 0));
    CHECK_OK(a.held[0]->write(a.held[0]->ud, big, sizeof big));
    CHECK_OK(a.held[0]->end(a.held[0]->ud)); /* ended: waiting for the client to read it */
    shutdown(fd, SHUT_WR);
    t0 = now_ms();
    while (ak_http_server_connections(&s) && now_ms() - t0 < 2000 * slow) {
        ak_http_server_poll(&s, 50);
        polls++;
    }
    CHECK_EQ(ak_http_server_connections(&s), 0);
    CHECK_MSG(polls < 40, "%d polls: the server spun instead of waiting", polls);
    close(fd);
    ak_http_server_free(&s);
    CHECK_EQ(e.ta.live, 0);
}

typedef struct bad_case {
    const char *request;
    const char *status;
} bad_case;

static void hostile_requests_get_their_4xx_and_a_close(void) {
    static const bad_case cases[] = {
        {"GARBAGE\r\n\r\n", "HTTP/1.1 400 "},
        {"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 "},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 "},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "HTTP/1.1 501 "},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 400 "},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", "HTTP/1.1 413 "},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n", "HTTP/1.1 413 "},
        {"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 414 "},
        {"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", "HTTP/1.1 431 "},
        {"GET / HTTP/1.1\r\nHost: x\r\nBig: 0123456789012345678901234567890123456789012345678901234567890123456789"
         "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n",
         "HTTP/1.1 431 "},
    };
    env e;
    app a;
    ak_http_server s;
    ak_http_server_desc d;
    size_t i;
    int good;
    char gbuf[4096];
    env_init(&e, 0);
    memset(&a, 0, sizeof a);
    d = srv_desc(&e, &a);
    d.limits.max_body = 1000;
    d.limits.max_target = 64;
    d.limits.max_headers = 4;
    d.limits.max_header_bytes = 200;
    CHECK_OK(ak_http_server_init(&s, &d, NULL));
    good = cli_connect(ak_http_server_port(&s)); /* a well-behaved client alongside */
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[4096] = "";
        int fd = cli_connect(ak_http_server_port(&s)), closed;
        cli_puts(&s, fd, cases[i].request);
        closed = cli_read(&s, fd, buf, sizeof buf, NULL, 3000);
        CHECK_MSG(strncmp(buf, cases[i].status, strlen(cases[i].status)) == 0, "case %zu: got \"%.60s\"", i, buf);
        CHECK_MSG(closed, "case %zu: connection left open", i);
        CHECK(strstr(buf, "Connection: close\r\n") != NULL);
        close(fd);
        gbuf[0] = 0;
        cli_puts(&s, good, "GET /hello?ok HTTP/1.1\r\nHost: x\r\n\r\n");
        cli_read(&s, good, gbuf, sizeof gbuf, "hello ok", 2000);
        CHECK_MSG(strstr(gbuf, "hello ok") != NULL, "case %zu disturbed another client", i);
    }
    CHECK_EQ(a.requests, (int)(sizeof cases / sizeof cases[0])); /* only the good ones */
    close(good);
    ak_http_server_free(&s);
    CHECK_EQ(e.ta.live, 0);
}

static void slow_clients_time_out(void) {
    env e;
    app a;
    ak_http_server s;
    ak_http_server_desc d;
    char b1[4096] = "", b2[4096] = "", b3[4096] = "";
    int loris, mute, dribble, closed;
    long long t0;
    env_init(&e, 0);
    memset(&a, 0, sizeof a);
    d = srv_desc(&e, &a);
    d.header_timeout_ms = 300 * slow;
    d.body_timeout_ms = 300 * slow;
    CHECK_OK(ak_http_server_init(&s, &d, NULL));
    t0 = now_ms();
    loris = cli_connect(ak_http_server_port(&s));
    mute = cli_connect(ak_http_server_port(&s));
    dribble = cli_connect(ak_http_server_port(&s));
    cli_puts(&s, loris, "GET / HTTP/1.1\r\nHost: x\r\n"); /* never finishes its head */
    cli_puts(&s, dribble, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
    closed = cli_read(&s, loris, b1, sizeof b1, NULL, 3000);
    CHECK(closed);
    CHECK(strncmp(b1, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0);
    CHECK(strstr(b1, "request head timed out") != NULL);
    CHECK(now_ms() - t0 >= 300 * slow);
    CHECK(cli_read(&s, mute, b2, sizeof b2, NULL, 3000));
    CHECK_STR(b2, ""); /* never said anything: closed without an answer */
    CHECK(cli_read(&s, dribble, b3, sizeof b3, NULL, 3000));
    CHECK(strstr(b3, "request body timed out") != NULL);
    close(loris);
    close(mute);
    close(dribble);
    pump(&s, 20);
    CHECK_EQ(ak_http_server_connections(&s), 0);
    ak_http_server_free(&s);
    CHECK_EQ(e.ta.live, 0);
}

static void connections_beyond_the_limit_get_503(void) {
    env e;
    app a;
    ak_http_server s;
    ak_http_server_desc d;
    char buf[4096] = "";
    int c1, c2, c3;
    env_init(&e, 0);
    memset(&a, 0, sizeof a);
    d = srv_desc(&e, &a);
    d.max_connections = 2;
    CHECK_OK(ak_http_server_init(&s, &d, NULL));
    c1 = cli_connect(ak_http_server_port(&s));
    c2 = cli_connect(ak_http_server_port(&s));
    pump(&s, 50);
    c3 = cli_connect(ak_http_server_port(&s));
    CHECK(cli_read(&s, c3, buf, sizeof buf, NULL, 2000));
    CHECK(strncmp(buf, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
    CHECK_EQ(ak_http_server_connections(&s), 2);
    buf[0] = 0;
    cli_puts(&s, c1, "GET /hello?still HTTP/1.1\r\nHost: x\r\n\r\n");
    cli_read(&s, c1, buf, sizeof buf, "hello still", 2000);
    CHECK(strstr(buf, "hello still") != NULL);
    close(c1);
    close(c2);
    close(c3);
    ak_http_server_free(&s);
    CHECK_EQ(e.ta.live, 0);
}

static void a_client_that_does_not_read_is_dropped(void) {
    static char chunk[65536], big[8 << 20];
    env e;
    app a;
    ak_http_server s;
    ak_http_server_desc d;
    char buf[4096] = "";
    int fd, i, rcvbuf = 4096;
    ak_result rc = AK_OK;
    long long t0;
    env_init(&e, 0);
    memset(&a, 0, sizeof a);
    memset(chunk, 'z', sizeof chunk);
    d = srv_desc(&e, &a);
    d.max_output_bytes = 256 * 1024;
    d.write_timeout_ms = 300 * slow;
    CHECK_OK(ak_http_server_init(&s, &d, NULL));
    /* 1: a producer outruns the client: writes fail with AK_ERR_LIMIT at the cap */
    fd = cli_connect(ak_http_server_port(&s));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    cli_puts(&s, fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    pump(&s, 50);
    CHECK_EQ(a.nheld, 1);
    for (i = 0; i < 2048 && rc == AK_OK; i++) {
        rc = a.held[0]->write(a.held[0]->ud, chunk, sizeof chunk);
        if (i % 16 == 0) ak_http_server_poll(&s, 0);
    }
    CHECK_EQ(rc, AK_ERR_LIMIT);
    CHECK_EQ(a.held[0]->write(a.held[0]->ud, "x", 1), AK_ERR_CLOSED);
    CHECK_EQ(a.held[0]->end(a.held[0]->ud), AK_ERR_CLOSED);
    CHECK_EQ(a.closes, 0); /* the writer already knew */
    close(fd);
    /* 2: one big answer the client never reads: dropped after the write timeout */
    fd = cli_connect(ak_http_server_port(&s));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    cli_puts(&s, fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    pump(&s, 50);
    CHECK_EQ(a.nheld, 2);
    CHECK_OK(a.held[1]->start(a.held[1]->ud, 200, NULL, 0));
    memset(big, 'b', sizeof big);
    CHECK_OK(a.held[1]->write(a.held[1]->ud, big, sizeof big)); /* one write may exceed the cap */
    CHECK(ak_http_server_pending_output(a.held[1]) > 0);
    t0 = now_ms();
    while (a.closes == 0 && now_ms() - t0 < 3000 * slow) ak_http_server_poll(&s, 10);
    CHECK_EQ(a.closes, 1);
    CHECK(now_ms() - t0 >= 250 * slow);
    CHECK_EQ(a.held[1]->end(a.held[1]->ud), AK_ERR_CLOSED);
    CHECK_EQ(ak_http_server_connections(&s), 0);
    (void)buf;
    close(fd);
    ak_http_server_free(&s);
    CHECK_EQ(e.ta.live, 0);
}

static void shutdown_drains_then_closes(void) {
    env e;
    app a;
    ak_http_server s;
    char b1[4096] = "", b2[4096] = "", b3[4096] = "";
    int streaming, idle, stuck, port;
    long long t0;
    srv_start(&e, &a, &s);
    port = ak_http_server_port(&s);
    streaming = cli_connect(port);
    idle = cli_connect(port);
    stuck = cli_connect(port);
    cli_puts(&s, streaming, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    cli_read(&s, streaming, b1, sizeof b1, "\r\n\r\n", 2000);
    cli_puts(&s, stuck, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"); /* held[1] */
    pump(&s, 50);
    CHECK_EQ(a.nheld, 2);
    CHECK_EQ(ak_http_server_connections(&s), 3);
    ak_http_server_shutdown(&s, 600 * slow);
    CHECK(cli_refused(port)); /* the listener is gone */
    CHECK(cli_read(&s, idle, b2, sizeof b2, NULL, 1000)); /* an idle client is let go at once */
    CHECK_EQ(ak_http_server_poll(&s, 0), AK_PENDING);
    /* The stream finishes within the grace period and its connection then closes. */
    CHECK_OK(a.held[0]->write(a.held[0]->ud, "data: bye\n\n", 11));
    CHECK_OK(a.held[0]->end(a.held[0]->ud));
    CHECK(cli_read(&s, streaming, b1, sizeof b1, NULL, 2000));
    CHECK(strstr(b1, "data: bye\n\n\r\n0\r\n\r\n") != NULL);
    /* The held one never answers: closed at the deadline, its holder told. */
    t0 = now_ms();
    while (ak_http_server_poll(&s, 20) == AK_PENDING && now_ms() - t0 < 3000 * slow) {
    }
    CHECK_EQ(ak_http_server_poll(&s, 0), AK_OK);
    CHECK_EQ(a.closes, 1);
    CHECK(a.closed[0] == a.held[1]);
    CHECK(cli_read(&s, stuck, b3, sizeof b3, NULL, 1000));
    CHECK_EQ(a.held[1]->write(a.held[1]->ud, "x", 1), AK_ERR_CLOSED);
    CHECK_EQ(a.held[1]->end(a.held[1]->ud), AK_ERR_CLOSED);
    close(streaming);
    close(idle);
    close(stuck);
    ak_http_server_free(&s);
    CHECK_EQ(e.ta.live, 0);
}

static void free_tells_holders_and_releases_everything(void) {
    env e;
    app a;
    ak_http_server s;
    char buf[1024] = "";
    int fd;
    srv_start(&e, &a, &s);
    fd = cli_connect(ak_http_server_port(&s));
    cli_puts(&s, fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    cli_read(&s, fd, buf, sizeof buf, "\r\n\r\n", 2000);
    CHECK_EQ(a.nheld, 1);
    ak_http_server_free(&s);
    CHECK_EQ(a.closes, 1);
    CHECK_EQ(e.ta.live, 0);
    close(fd);
}

static void server_setup_errors(void) {
    env e;
    app a;
    ak_http_server s, s2;
    ak_http_server_desc d;
    ak_error err;
    env_init(&e, 0);
    memset(&a, 0, sizeof a);
    d = srv_desc(&e, &a);
    d.handler = NULL;
    CHECK_EQ(ak_http_server_init(&s, &d, &err), AK_ERR_INVALID_ARGUMENT);
    d = srv_desc(&e, &a);
    d.port = 70000;
    CHECK_EQ(ak_http_server_init(&s, &d, &err), AK_ERR_INVALID_ARGUMENT);
    d.port = 0;
    d.host = "no.such.host.invalid";
    CHECK_EQ(ak_http_server_init(&s, &d, &err), AK_ERR_CONNECT);
    CHECK(strstr(err.message, "cannot resolve") != NULL);
    d.host = NULL;
    CHECK_OK(ak_http_server_init(&s, &d, &err));
    d.port = ak_http_server_port(&s);
    CHECK_EQ(ak_http_server_init(&s2, &d, &err), AK_ERR_CONNECT); /* in use */
    CHECK_MSG(strstr(err.message, "in use") != NULL, "%s", err.message);
    ak_http_server_free(&s2);
    ak_http_server_free(&s);
    CHECK_EQ(ak_http_server_poll(&s, 0), AK_ERR_STATE);
    d.port = 0;
    d.host = "::1";
    if (ak_http_server_init(&s, &d, &err) == AK_OK) { /* when the machine has IPv6 */
        CHECK(ak_http_server_port(&s) > 0);
        ak_http_server_free(&s);
    }
    CHECK_EQ(e.ta.live, 0);
}

/* The transport and the server in one loop: a stream flows through both. */
static void transport_and_server_talk(void) {
    env e;
    app a;
    ak_http_server s;
    ak_posix_transport t;
    tsink k;
    char url[128];
    ak_http_request req;
    ak_header hdr[1];
    long long t0;
    int i;
    srv_start(&e, &a, &s);
    tr_init(&t, &e, 1);
    snprintf(url, sizeof url, "http://localhost:%d/stream", ak_http_server_port(&s)); /* ::1 first, maybe */
    req = mkreq("POST", url, "{}", 5000);
    hdr[0].name = "X-Test";
    hdr[0].value = "yes";
    req.headers = hdr;
    req.header_count = 1;
    ts_init(&k);
    CHECK_OK(t.transport.start(t.transport.ud, &req, &k.sink, NULL));
    t0 = now_ms();
    while (!k.status && now_ms() - t0 < 3000 * slow) {
        ak_posix_transport_poll(&t, 0);
        ak_http_server_poll(&s, 5);
    }
    CHECK_EQ(k.status, 200);
    CHECK_STR(a.last, "POST /stream ? x=yes body={}");
    for (i = 0; i < 3 && a.nheld; i++) {
        char ev[32];
        int before = k.body_calls;
        snprintf(ev, sizeof ev, "data: %d\n\n", i);
        a.held[0]->write(a.held[0]->ud, ev, strlen(ev));
        t0 = now_ms();
        while (k.body_calls == before && now_ms() - t0 < 2000 * slow) {
            ak_http_server_poll(&s, 0);
            ak_posix_transport_poll(&t, 5);
        }
        CHECK_EQ(k.body_calls, before + 1); /* each event arrives on its own, as it is sent */
    }
    if (a.nheld) a.held[0]->end(a.held[0]->ud);
    t0 = now_ms();
    while (!k.done && now_ms() - t0 < 2000 * slow) {
        ak_http_server_poll(&s, 0);
        ak_posix_transport_poll(&t, 5);
    }
    CHECK_EQ(k.rc, AK_OK);
    CHECK_STR(k.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
    ak_posix_transport_free(&t);
    ak_http_server_free(&s);
    CHECK_EQ(e.ta.live, 0);
}

static void server_survives_allocation_failure(void) {
    long long n;
    int answered = 0, refused = 0;
    for (n = 1; n <= 14; n++) {
        env e;
        app a;
        ak_http_server s;
        ak_http_server_desc d;
        char buf[4096] = "";
        int fd;
        env_init(&e, n);
        memset(&a, 0, sizeof a);
        d = srv_desc(&e, &a);
        if (ak_http_server_init(&s, &d, NULL) != AK_OK) {
            CHECK_EQ(e.ta.live, 0);
            continue;
        }
        fd = cli_connect(ak_http_server_port(&s));
        cli_puts(&s, fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        cli_read(&s, fd, buf, sizeof buf, "\r\n\r\nhello", 1000);
        if (strstr(buf, "\r\n\r\nhello")) answered = 1;
        else refused = 1;
        close(fd);
        ak_http_server_free(&s);
        CHECK_EQ(e.ta.live, 0);
    }
    CHECK(answered && refused);
}

int main(void) {
    if (getenv("AK_VALGRIND")) slow = 5;
    atexit(kill_children);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    RUN(blocking_content_length_response);
    RUN(blocking_chunked_and_close_delimited_responses);
    RUN(head_requests_have_no_body);
    RUN(silent_server_times_out);
    RUN(reset_and_cut_bodies_are_errors);
    RUN(an_early_answer_beats_a_big_upload);
    RUN(connect_failures_say_why);
    RUN(nonblocking_mode_streams_as_bytes_arrive);
    RUN(poll_waits_no_longer_than_asked);
    RUN(cancel_stops_every_sink_call);
    RUN(a_refusing_sink_is_released_silently);
    RUN(concurrent_requests_finish_independently);
    RUN(transport_fails_cleanly_without_memory);
    RUN(sequential_requests_share_one_connection);
    RUN(responses_that_end_the_connection_are_not_reused);
    RUN(a_server_closing_idle_connections_is_survived);
    RUN(a_reused_connection_reset_on_arrival_is_retried_once);
    RUN(a_fresh_connection_failure_is_not_retried);
    RUN(idle_connections_expire_on_the_context_clock);
    RUN(an_unfinished_response_never_goes_to_the_pool);
    RUN(two_origins_do_not_mix);
    RUN(max_idle_is_respected);
    RUN(reuse_can_be_turned_off);
    RUN(keep_alive_survives_allocation_failure);
    RUN(server_answers_and_keeps_connections_alive);
    RUN(expect_continue_gets_100_before_the_body);
    RUN(a_stream_does_not_block_other_clients);
    RUN(a_departed_client_is_reported_to_the_writer);
    RUN(a_hang_up_is_seen_even_with_input_backed_up);
    RUN(a_half_closed_client_does_not_make_the_server_spin);
    RUN(hostile_requests_get_their_4xx_and_a_close);
    RUN(slow_clients_time_out);
    RUN(connections_beyond_the_limit_get_503);
    RUN(a_client_that_does_not_read_is_dropped);
    RUN(shutdown_drains_then_closes);
    RUN(free_tells_holders_and_releases_everything);
    RUN(server_setup_errors);
    RUN(transport_and_server_talk);
    RUN(server_survives_allocation_failure);
    kill_children();
    return t_summary();
}
