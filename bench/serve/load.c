/* load: the load generator of bench/serve. One thread, one poll() loop, its own small
   HTTP/1.1 client over keep-alive TCP connections to 127.0.0.1:PORT (a server of
   ../shared/interop-agents.md: `akdriver serve` or Genkit's genkit_server.cjs).

     load --port N [--clients 64] [--store-clients 16] [--seconds 30] [--warmup 0]
          [--chain 10] [--probe-ms 100] [--probe-timeout-ms 1000] [--timeout-ms 10000]
          [--server-pid PID]

   For --warmup + --seconds, every client loops over streamed turns (Accept: text/event-stream,
   `stream a b c d e`, read to the result frame and the end of the response): chat clients
   on chatAgent (client-managed, a new conversation each turn), store clients on storeAgent
   (server-managed), each turn resuming the previous one's snapshotId, a new conversation
   every --chain turns. A health prober opens a connection to GET /healthz every --probe-ms
   (a probe slower than --probe-timeout-ms fails). Then, with no more turns in flight, every
   snapshotId a store client got is read back through getSnapshot: it must be `completed`
   with 2 messages per turn of its conversation. Each answer is checked: status 200, five
   word chunks, a turnEnd, a result frame with finishReason stop and text "a b c d e".

   Prints `key value` lines and exits 1 when a turn failed or a snapshot was lost, 2 on bad
   usage. Throughput counts the turns that end in the --seconds after the warm-up; latencies
   (ms, request sent to response end) cover every turn ending after the warm-up. With --server-pid (Linux), the server's CPU time
   over that window and its resident memory at its end come from /proc. Built by
   bench/serve/run.sh. */
#define AGENTKIT_IMPLEMENTATION
#include "../../agentkit.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SNAPSHOT_ID_MAX 64     /* Genkit ids are 36-character UUIDs */
#define MAX_RESPONSE (1 << 22) /* a bigger answer is a failure, not a reason to grow */
#define FAILURES_SHOWN 10      /* failure reasons printed to stderr */
#define RETRY_MS 50            /* a client waits this long after a failed exchange */
#define WORDS "a b c d e"
#define WORD_CHUNKS 5

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n);
    if (!p) {
        fprintf(stderr, "load: out of memory\n");
        exit(3);
    }
    return p;
}

/* ---- byte buffer ----------------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t more) {
    if (b->len + more + 1 <= b->cap) return;
    while (b->len + more + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 1024;
    b->p = (char *)xrealloc(b->p, b->cap);
}

static void buf_add(buf *b, const char *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void buf_printf(buf *b, const char *fmt, ...) {
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---- one HTTP/1.1 connection: a request out, a response in ------------------------------ */

enum { BODY_LENGTH, BODY_CHUNKED, BODY_UNTIL_CLOSE };
enum { CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER };

typedef struct conn conn;
/* fail == NULL: a complete response is in c->status / c->body. */
typedef void (*conn_done_fn)(conn *c, const char *fail);

struct conn {
    int fd;                    /* -1: not connected (connect on the next request) */
    int connecting;
    int busy;                  /* an exchange is in flight */
    int reusable;              /* the response allows another request on the connection */
    buf out;
    size_t sent;
    buf in;                    /* raw response bytes; in.p[in_off..] not parsed yet */
    size_t in_off;
    int head_done, status, framing, chunk_state;
    size_t left;               /* body bytes (BODY_LENGTH) or chunk bytes still expected */
    buf body;                  /* the decoded body */
    double started, deadline;
    conn_done_fn done;
    void *ud;
};

static void conn_close(conn *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->connecting = 0;
}

static void conn_finish(conn *c, const char *fail) {
    c->busy = 0;
    if (fail || !c->reusable) conn_close(c);
    c->done(c, fail);
}

static const char *conn_connect(conn *c, int port) {
    struct sockaddr_in a;
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) return "socket() failed";
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) == 0) return NULL;
    if (errno != EINPROGRESS) return "connect() failed";
    c->connecting = 1;
    return NULL;
}

/* Sends c->out (already filled) as a new exchange, connecting first if needed. */
static void conn_start(conn *c, int port, double timeout_ms) {
    const char *fail;
    c->busy = 1;
    c->sent = 0;
    c->in.len = c->in_off = 0;
    c->body.len = 0;
    c->head_done = c->status = 0;
    c->reusable = 1;
    c->started = now_ms();
    c->deadline = c->started + timeout_ms;
    if (c->fd < 0 && (fail = conn_connect(c, port)) != NULL) conn_finish(c, fail);
}

static int header_is(const char *line, size_t len, const char *name) {
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

static int value_has(const char *line, size_t len, const char *token) {
    size_t n = strlen(token), i;
    for (i = 0; i + n <= len; i++)
        if (strncasecmp(line + i, token, n) == 0) return 1;
    return 0;
}

/* Parses the status line and headers once they are complete: 1 parsed, 0 need more, -1 bad. */
static int conn_parse_head(conn *c) {
    const char *p = c->in.p, *end = strstr(p, "\r\n\r\n"), *line;
    int has_length = 0;
    if (!end) return 0;
    if (strncmp(p, "HTTP/1.", 7) != 0 || sscanf(p + 8, " %3d", &c->status) != 1) return -1;
    c->framing = BODY_UNTIL_CLOSE;
    c->reusable = p[7] == '1';
    for (line = strstr(p, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
        size_t len = (size_t)(strstr(line, "\r\n") - line);
        if (header_is(line, len, "content-length")) {
            c->left = (size_t)strtoull(line + 15, NULL, 10);
            has_length = 1;
        } else if (header_is(line, len, "transfer-encoding") && value_has(line, len, "chunked")) {
            c->framing = BODY_CHUNKED;
            c->chunk_state = CHUNK_SIZE;
        } else if (header_is(line, len, "connection")) {
            if (value_has(line, len, "close")) c->reusable = 0;
            else if (value_has(line, len, "keep-alive")) c->reusable = 1;
        }
    }
    if (c->framing != BODY_CHUNKED && has_length) c->framing = BODY_LENGTH;
    if (c->framing == BODY_UNTIL_CLOSE) c->reusable = 0;
    c->in_off = (size_t)(end + 4 - p);
    c->head_done = 1;
    return 1;
}

/* Decodes as much chunked body as has arrived: 1 complete, 0 need more, -1 bad. */
static int conn_parse_chunks(conn *c) {
    for (;;) {
        const char *p = c->in.p + c->in_off, *eol;
        size_t avail = c->in.len - c->in_off, n;
        switch (c->chunk_state) {
        case CHUNK_SIZE:
        case CHUNK_TRAILER:
            if (!(eol = strstr(p, "\r\n"))) return avail > 1024 ? -1 : 0;
            c->in_off += (size_t)(eol - p) + 2;
            if (c->chunk_state == CHUNK_TRAILER) {
                if (eol == p) return 1;
                break;
            }
            c->left = (size_t)strtoull(p, NULL, 16);
            c->chunk_state = c->left ? CHUNK_DATA : CHUNK_TRAILER;
            break;
        case CHUNK_DATA:
            n = avail < c->left ? avail : c->left;
            buf_add(&c->body, p, n);
            c->in_off += n;
            c->left -= n;
            if (c->left) return 0;
            c->chunk_state = CHUNK_DATA_END;
            break;
        default:
            if (avail < 2) return 0;
            if (p[0] != '\r' || p[1] != '\n') return -1;
            c->in_off += 2;
            c->chunk_state = CHUNK_SIZE;
        }
    }
}

/* 1 when the response is complete, 0 need more, -1 malformed. */
static int conn_parse(conn *c) {
    size_t n;
    if (!c->head_done) {
        int r = conn_parse_head(c);
        if (r <= 0) return r;
    }
    switch (c->framing) {
    case BODY_CHUNKED:
        return conn_parse_chunks(c);
    case BODY_LENGTH:
        n = c->in.len - c->in_off < c->left ? c->in.len - c->in_off : c->left;
        buf_add(&c->body, c->in.p + c->in_off, n);
        c->in_off += n;
        c->left -= n;
        return c->left == 0;
    default:
        buf_add(&c->body, c->in.p + c->in_off, c->in.len - c->in_off);
        c->in_off = c->in.len;
        return 0;
    }
}

static void conn_read(conn *c) {
    ssize_t got;
    int r;
    buf_reserve(&c->in, 65536);
    got = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len - 1, 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (got <= 0) {
        if (got == 0 && c->head_done && c->framing == BODY_UNTIL_CLOSE) conn_finish(c, NULL);
        else conn_finish(c, got == 0 ? "connection closed before the response ended" : "recv() failed");
        return;
    }
    c->in.len += (size_t)got;
    c->in.p[c->in.len] = 0;
    if (c->in.len > MAX_RESPONSE) {
        conn_finish(c, "response too large");
        return;
    }
    if ((r = conn_parse(c)) != 0) conn_finish(c, r < 0 ? "malformed HTTP response" : NULL);
}

static void conn_write(conn *c) {
    ssize_t n;
    if (c->connecting) {
        int e = 0;
        socklen_t el = sizeof e;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el);
        if (e) {
            conn_finish(c, "connect failed");
            return;
        }
        c->connecting = 0;
    }
    n = send(c->fd, c->out.p + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n < 0) {
        conn_finish(c, "send() failed");
        return;
    }
    c->sent += (size_t)n;
}

/* poll() events the connection waits for (0: none). */
static short conn_events(const conn *c) {
    if (!c->busy || c->fd < 0) return 0;
    return c->connecting || c->sent < c->out.len ? POLLOUT : POLLIN;
}

static void conn_io(conn *c, short revents) {
    if (!c->busy) return;
    if (revents & POLLOUT) conn_write(c);
    else if (revents & (POLLIN | POLLHUP | POLLERR)) conn_read(c);
}

static void conn_free(conn *c) {
    conn_close(c);
    free(c->out.p);
    free(c->in.p);
    free(c->body.p);
}

/* ---- the server process, from /proc (Linux; -1 elsewhere) ------------------------------- */

/* User + system CPU seconds of process pid, all its threads. */
static double proc_cpu_s(int pid) {
    char path[64], line[1024], *p;
    unsigned long ut, st;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r"))) return -1;
    p = fgets(line, sizeof line, f);
    fclose(f);
    /* the command name in parentheses may hold spaces: fields count from the last ')' */
    if (!p || !(p = strrchr(line, ')')) ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Resident set of process pid in KiB. */
static long proc_rss_kb(int pid) {
    char path[64], line[256];
    long kb = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    if (!(f = fopen(path, "r"))) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* ---- the benchmark ----------------------------------------------------------------------- */

typedef struct snapshot {
    char id[SNAPSHOT_ID_MAX + 1];
    int messages;              /* the count getSnapshot must show */
} snapshot;

typedef struct client {
    conn c;
    struct bench *b;
    int store;                 /* storeAgent (else chatAgent) */
    char snap[SNAPSHOT_ID_MAX + 1]; /* the chain's last snapshot; "" = new conversation */
    int chain_turns;
    long turns;
    double next_at;            /* when to start the next exchange */
    size_t verifying;          /* snapshot being read back */
} client;

enum { PHASE_LOAD, PHASE_DRAIN, PHASE_VERIFY, PHASE_DONE };

typedef struct options {
    int port, clients, store_clients, chain;
    int server_pid;
    double seconds, warmup, probe_ms, probe_timeout_ms, timeout_ms;
} options;

typedef struct bench {
    options o;
    int phase;
    double start, measure_start, load_end;
    double server_cpu0, server_cpu_s; /* the server's CPU seconds: at measure_start, in the window */
    long server_rss_kb;
    client *clients;
    conn probe;
    double probe_due, probe_max_ms;
    long probes, probe_failures;
    double *lat;               /* ms per turn */
    size_t nlat, cap_lat;
    long in_window;            /* turns completed before load_end */
    long warmup_turns;
    long failed, failures_shown;
    long *per_second;          /* turns completed in each second of the window */
    snapshot *snaps;
    size_t nsnaps, cap_snaps, next_verify;
    long verified, verify_failed;
    ak_json_doc doc;
} bench;

/* Counts a failure and shows the first few, each with the end of the answer (where a
   stream's error or result frame is) on one line. */
static void note_failure(bench *b, long *counter, const char *what, const char *why, const buf *body) {
    size_t i = body && body->len > 300 ? body->len - 300 : 0;
    (*counter)++;
    if (b->failures_shown++ >= FAILURES_SHOWN) return;
    fprintf(stderr, "load: %s failed: %s", what, why);
    if (body && body->len) fprintf(stderr, "; answer %s", i ? "ends: ..." : "");
    for (; body && i < body->len; i++) fputc(body->p[i] == '\n' || body->p[i] == '\r' ? ' ' : body->p[i], stderr);
    fputc('\n', stderr);
}

static void add_latency(bench *b, double ms, double done_at) {
    if (done_at < b->measure_start) {
        b->warmup_turns++;
        return;
    }
    if (b->nlat == b->cap_lat) {
        b->cap_lat = b->cap_lat ? b->cap_lat * 2 : 65536;
        b->lat = (double *)xrealloc(b->lat, b->cap_lat * sizeof *b->lat);
    }
    b->lat[b->nlat++] = ms;
    if (done_at <= b->load_end) {
        b->in_window++;
        b->per_second[(int)((done_at - b->measure_start) / 1000.0)]++;
    }
}

static void add_snapshot(bench *b, const char *id, int messages) {
    if (b->nsnaps == b->cap_snaps) {
        b->cap_snaps = b->cap_snaps ? b->cap_snaps * 2 : 4096;
        b->snaps = (snapshot *)xrealloc(b->snaps, b->cap_snaps * sizeof *b->snaps);
    }
    snprintf(b->snaps[b->nsnaps].id, sizeof b->snaps[b->nsnaps].id, "%s", id);
    b->snaps[b->nsnaps++].messages = messages;
}

static void request_head(bench *b, buf *out, const char *method, const char *path, int stream, size_t body_len) {
    out->len = 0;
    buf_printf(out, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", method, path, b->o.port);
    if (stream) buf_printf(out, "Accept: text/event-stream\r\n");
    if (body_len) buf_printf(out, "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    buf_printf(out, "\r\n");
}

static void post_json(bench *b, conn *c, const char *path, int stream, const buf *body) {
    request_head(b, &c->out, "POST", path, stream, body->len);
    buf_add(&c->out, body->p, body->len);
    conn_start(c, b->o.port, b->o.timeout_ms);
}

static void client_turn(client *cl) {
    bench *b = cl->b;
    buf body = {0, 0, 0};
    buf_printf(&body, "{\"data\":{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"stream " WORDS "\"}]}},");
    if (cl->snap[0]) buf_printf(&body, "\"init\":{\"snapshotId\":\"%s\"}}", cl->snap);
    else buf_printf(&body, "\"init\":{}}");
    post_json(b, &cl->c, cl->store ? "/agents/storeAgent" : "/agents/chatAgent", 1, &body);
    free(body.p);
}

/* 1 if v is the string want. */
static int json_str_is(const ak_json *v, const char *want) {
    const char *str = ak_json_str(v);
    return str && strcmp(str, want) == 0;
}

/* Checks a streamed turn's frames; returns the reason it is wrong, or NULL and the parsed
   result frame in *result. */
static const char *check_frames(bench *b, const buf *body, ak_json **result) {
    const char *p = body->p, *end = body->p + body->len, *sep;
    int chunks = 0, turn_end = 0;
    ak_error e;
    *result = NULL;
    for (; p < end; p = sep + 2) {
        if (!(sep = strstr(p, "\n\n"))) return "the stream does not end with a complete frame";
        if (*result) return "a frame after the result frame";
        if (strncmp(p, "data: ", 6) != 0) return "an error frame or a frame that is not data";
        if (strncmp(p + 6, "{\"message\":{\"modelChunk\":", 25) == 0) chunks++;
        else if (strncmp(p + 6, "{\"message\":{\"turnEnd\":", 22) == 0) turn_end++;
        else if (strncmp(p + 6, "{\"result\":", 10) == 0) {
            ak_json_doc_reset(&b->doc);
            if (ak_json_parse(&b->doc, p + 6, (size_t)(sep - p - 6), &e) != AK_OK) return "the result frame is not JSON";
            *result = ak_json_get(b->doc.root, "result");
        } else return "an unknown frame";
    }
    if (!*result) return "no result frame";
    if (chunks != WORD_CHUNKS || turn_end != 1) return "not five word chunks and one turnEnd";
    if (!json_str_is(ak_json_get(*result, "finishReason"), "stop")) return "finishReason is not stop";
    if (!json_str_is(ak_json_path(*result, "message.content[0].text"), WORDS)) return "the answer is not \"" WORDS "\"";
    return NULL;
}

/* 1 if id can go into a request as it is: 1 to SNAPSHOT_ID_MAX letters, digits, '-', '_'. */
static int plain_id(const char *id) {
    size_t n = 0;
    for (; id && id[n]; n++)
        if (!isalnum((unsigned char)id[n]) && id[n] != '-' && id[n] != '_') return 0;
    return n > 0 && n <= SNAPSHOT_ID_MAX;
}

/* Records a finished turn; returns why it failed, or NULL. */
static const char *client_turn_result(client *cl) {
    bench *b = cl->b;
    ak_json *result;
    const char *why, *snap;
    if (cl->c.status != 200) return "HTTP status is not 200";
    if ((why = check_frames(b, &cl->c.body, &result)) != NULL) return why;
    if (!cl->store) return ak_json_len(ak_json_path(result, "state.messages")) == 2 ? NULL : "state has not 2 messages";
    snap = ak_json_get_str(result, "snapshotId");
    if (!plain_id(snap)) return "no snapshotId, or not a plain id";
    cl->chain_turns++;
    add_snapshot(b, snap, 2 * cl->chain_turns);
    if (cl->chain_turns < b->o.chain) snprintf(cl->snap, sizeof cl->snap, "%s", snap);
    else cl->snap[0] = 0, cl->chain_turns = 0;
    return NULL;
}

static void client_turn_done(conn *c, const char *fail) {
    client *cl = (client *)c->ud;
    bench *b = cl->b;
    double now = now_ms();
    const char *why = fail ? fail : client_turn_result(cl);
    cl->next_at = now;
    if (why) {
        note_failure(b, &b->failed, cl->store ? "storeAgent turn" : "chatAgent turn", why, fail ? NULL : &c->body);
        cl->snap[0] = 0, cl->chain_turns = 0;
        cl->next_at = now + RETRY_MS;
        return;
    }
    cl->turns++;
    add_latency(b, now - c->started, now);
}

static const char *check_snapshot(bench *b, const buf *body, const snapshot *s) {
    ak_json *r;
    ak_error e;
    ak_json_doc_reset(&b->doc);
    if (ak_json_parse(&b->doc, body->p, body->len, &e) != AK_OK) return "the answer is not JSON";
    r = ak_json_get(b->doc.root, "result");
    if (!json_str_is(ak_json_get(r, "snapshotId"), s->id)) return "another snapshotId";
    if (!json_str_is(ak_json_get(r, "status"), "completed")) return "status is not completed";
    if ((int)ak_json_len(ak_json_path(r, "state.messages")) != s->messages) return "wrong message count";
    return NULL;
}

static void verify_done(conn *c, const char *fail) {
    client *cl = (client *)c->ud;
    bench *b = cl->b;
    const snapshot *s = &b->snaps[cl->verifying];
    const char *why = fail ? fail : c->status != 200 ? "HTTP status is not 200" : check_snapshot(b, &c->body, s);
    cl->next_at = now_ms();
    if (why) {
        char what[SNAPSHOT_ID_MAX + 32];
        snprintf(what, sizeof what, "getSnapshot %s (%d messages)", s->id, s->messages);
        note_failure(b, &b->verify_failed, what, why, fail ? NULL : &c->body);
    } else b->verified++;
}

static void client_verify_next(client *cl) {
    bench *b = cl->b;
    buf body = {0, 0, 0};
    cl->verifying = b->next_verify++;
    buf_printf(&body, "{\"data\":{\"snapshotId\":\"%s\"}}", b->snaps[cl->verifying].id);
    cl->c.done = verify_done;
    post_json(b, &cl->c, "/agents/storeAgent/getSnapshot", 0, &body);
    free(body.p);
}

static void probe_done(conn *c, const char *fail) {
    bench *b = (bench *)c->ud;
    double ms = now_ms() - c->started;
    const char *why = fail;
    if (!why && c->status != 200) why = "HTTP status is not 200";
    if (!why && !strstr(c->body.p ? c->body.p : "", "\"ok\":true")) why = "no \"ok\":true";
    b->probes++;
    conn_close(c); /* a new connection per probe, as an orchestrator's prober makes */
    if (why) {
        note_failure(b, &b->probe_failures, "health probe", why, fail ? NULL : &c->body);
        return;
    }
    if (ms > b->probe_max_ms) b->probe_max_ms = ms;
}

static void probe_tick(bench *b, double now) {
    if (b->probe.busy || now < b->probe_due) return;
    b->probe_due += b->o.probe_ms;
    if (b->probe_due < now) b->probe_due = now + b->o.probe_ms; /* late: do not burst */
    request_head(b, &b->probe.out, "GET", "/healthz", 0, 0);
    conn_start(&b->probe, b->o.port, b->o.probe_timeout_ms);
}

static int clients_busy(const bench *b) {
    int i;
    for (i = 0; i < b->o.clients; i++)
        if (b->clients[i].c.busy) return 1;
    return 0;
}

/* Starts the next exchange of every idle client whose time has come. */
static void clients_tick(bench *b, double now) {
    int i;
    for (i = 0; i < b->o.clients; i++) {
        client *cl = &b->clients[i];
        if (cl->c.busy || now < cl->next_at) continue;
        if (b->phase == PHASE_LOAD) client_turn(cl);
        else if (b->phase == PHASE_VERIFY && b->next_verify < b->nsnaps) client_verify_next(cl);
    }
}

/* Samples the server at the edges of the measured window. */
static void server_tick(bench *b, double now) {
    int pid = b->o.server_pid;
    if (!pid) return;
    if (b->server_cpu0 < 0 && now >= b->measure_start) b->server_cpu0 = proc_cpu_s(pid);
    if (b->phase == PHASE_LOAD && now >= b->load_end) {
        double cpu = proc_cpu_s(pid);
        b->server_cpu_s = cpu < 0 || b->server_cpu0 < 0 ? -1 : cpu - b->server_cpu0;
        b->server_rss_kb = proc_rss_kb(pid);
    }
}

static void phase_tick(bench *b, double now) {
    if (b->phase == PHASE_LOAD && now >= b->load_end) b->phase = PHASE_DRAIN;
    if (b->phase == PHASE_DRAIN && !clients_busy(b) && !b->probe.busy) {
        int i;
        b->phase = PHASE_VERIFY;
        for (i = 0; i < b->o.clients; i++) b->clients[i].next_at = now;
    }
    if (b->phase == PHASE_VERIFY && b->next_verify == b->nsnaps && !clients_busy(b)) b->phase = PHASE_DONE;
}

static void timeouts_tick(bench *b, double now) {
    int i;
    for (i = 0; i < b->o.clients; i++)
        if (b->clients[i].c.busy && now > b->clients[i].c.deadline) conn_finish(&b->clients[i].c, "timed out");
    if (b->probe.busy && now > b->probe.deadline) conn_finish(&b->probe, "timed out");
}

static void poll_once(bench *b, struct pollfd *pfds, conn **owners) {
    int i, n = 0;
    for (i = 0; i <= b->o.clients; i++) {
        conn *c = i < b->o.clients ? &b->clients[i].c : &b->probe;
        short ev = conn_events(c);
        if (!ev) continue;
        pfds[n].fd = c->fd, pfds[n].events = ev, pfds[n].revents = 0;
        owners[n++] = c;
    }
    if (poll(pfds, (nfds_t)n, 5) <= 0) return;
    for (i = 0; i < n; i++)
        if (pfds[i].revents) conn_io(owners[i], pfds[i].revents);
}

static void run(bench *b) {
    struct pollfd *pfds = (struct pollfd *)xrealloc(NULL, sizeof *pfds * (size_t)(b->o.clients + 1));
    conn **owners = (conn **)xrealloc(NULL, sizeof *owners * (size_t)(b->o.clients + 1));
    b->start = now_ms();
    b->measure_start = b->start + b->o.warmup * 1000.0;
    b->load_end = b->measure_start + b->o.seconds * 1000.0;
    b->probe_due = b->start;
    while (b->phase != PHASE_DONE) {
        double now = now_ms();
        server_tick(b, now);
        phase_tick(b, now);
        if (b->phase <= PHASE_DRAIN && now < b->load_end) probe_tick(b, now);
        clients_tick(b, now);
        timeouts_tick(b, now);
        poll_once(b, pfds, owners);
    }
    free(pfds);
    free(owners);
}

/* ---- report ------------------------------------------------------------------------------- */

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, c = *(const double *)y;
    return a < c ? -1 : a > c;
}

static int cmp_long(const void *x, const void *y) {
    long a = *(const long *)x, c = *(const long *)y;
    return a < c ? -1 : a > c;
}

static double percentile(const double *sorted, size_t n, double p) {
    size_t i;
    if (!n) return 0;
    i = (size_t)(p / 100.0 * (double)n);
    return sorted[i < n ? i : n - 1];
}

static void turns_range(const bench *b, int store, long *lo, long *hi) {
    int i;
    *lo = -1, *hi = 0;
    for (i = 0; i < b->o.clients; i++) {
        const client *cl = &b->clients[i];
        if (cl->store != store) continue;
        if (*lo < 0 || cl->turns < *lo) *lo = cl->turns;
        if (cl->turns > *hi) *hi = cl->turns;
    }
    if (*lo < 0) *lo = 0;
}

static void report(bench *b) {
    struct rusage ru;
    int secs = (int)b->o.seconds;
    long lo, hi;
    qsort(b->lat, b->nlat, sizeof *b->lat, cmp_double);
    qsort(b->per_second, (size_t)secs, sizeof *b->per_second, cmp_long);
    getrusage(RUSAGE_SELF, &ru);
    printf("clients %d\nstore_clients %d\nseconds %.0f\nwarmup_turns %ld\n", b->o.clients, b->o.store_clients,
           b->o.seconds, b->warmup_turns);
    printf("requests %zu\n", b->nlat);
    printf("failed %ld\n", b->failed);
    printf("rps %.1f\n", (double)b->in_window / b->o.seconds);
    printf("rps_median_1s %ld\n", secs ? b->per_second[secs / 2] : 0L);
    printf("p50_ms %.3f\np99_ms %.3f\nmax_ms %.3f\n", percentile(b->lat, b->nlat, 50),
           percentile(b->lat, b->nlat, 99), b->nlat ? b->lat[b->nlat - 1] : 0.0);
    turns_range(b, 0, &lo, &hi);
    printf("chat_client_turns %ld..%ld\n", lo, hi);
    turns_range(b, 1, &lo, &hi);
    printf("store_client_turns %ld..%ld\n", lo, hi);
    printf("health_probes %ld\nhealth_failures %ld\nhealth_max_ms %.3f\n", b->probes, b->probe_failures,
           b->probe_max_ms);
    printf("snapshots %zu\nverified %ld\nverify_failed %ld\n", b->nsnaps, b->verified, b->verify_failed);
    if (b->server_cpu_s >= 0 && b->in_window)
        printf("server_cpu_us_per_turn %.1f\n", b->server_cpu_s * 1e6 / (double)b->in_window);
    if (b->server_rss_kb >= 0) printf("server_rss_kb %ld\n", b->server_rss_kb);
    printf("load_cpu_s %.2f\n", (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                                    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
}

/* ---- command line ------------------------------------------------------------------------- */

static int parse_options(int argc, char **argv, options *o) {
    int i;
    o->port = 0, o->clients = 64, o->store_clients = 16, o->chain = 10;
    o->seconds = 30, o->probe_ms = 100, o->probe_timeout_ms = 1000, o->timeout_ms = 10000;
    for (i = 1; i + 1 < argc; i += 2) {
        double v = atof(argv[i + 1]);
        if (!strcmp(argv[i], "--port")) o->port = (int)v;
        else if (!strcmp(argv[i], "--clients")) o->clients = (int)v;
        else if (!strcmp(argv[i], "--store-clients")) o->store_clients = (int)v;
        else if (!strcmp(argv[i], "--chain")) o->chain = (int)v;
        else if (!strcmp(argv[i], "--seconds")) o->seconds = v;
        else if (!strcmp(argv[i], "--warmup")) o->warmup = v;
        else if (!strcmp(argv[i], "--server-pid")) o->server_pid = (int)v;
        else if (!strcmp(argv[i], "--probe-ms")) o->probe_ms = v;
        else if (!strcmp(argv[i], "--probe-timeout-ms")) o->probe_timeout_ms = v;
        else if (!strcmp(argv[i], "--timeout-ms")) o->timeout_ms = v;
        else return 0;
    }
    return i == argc && o->port > 0 && o->port < 65536 && o->clients > 0 && o->clients <= 4096 &&
           o->store_clients >= 0 && o->store_clients <= o->clients && o->chain > 0 && o->seconds >= 1 &&
           o->seconds <= 86400 && o->warmup >= 0 && o->warmup <= 3600 && o->server_pid >= 0 && o->probe_ms > 0 && o->probe_timeout_ms > 0 && o->timeout_ms > 0;
}

int main(int argc, char **argv) {
    bench b;
    int i;
    memset(&b, 0, sizeof b);
    if (!parse_options(argc, argv, &b.o)) {
        fprintf(stderr, "usage: load --port N [--clients 64] [--store-clients 16] [--seconds 30] [--warmup 0]\n"
                        "            [--chain 10] [--probe-ms 100] [--probe-timeout-ms 1000]\n"
                        "            [--timeout-ms 10000] [--server-pid PID]\n");
        return 2;
    }
    ak_json_doc_init(&b.doc, NULL);
    b.server_cpu0 = b.server_cpu_s = -1;
    b.server_rss_kb = -1;
    b.per_second = (long *)xrealloc(NULL, sizeof *b.per_second * ((size_t)b.o.seconds + 1));
    memset(b.per_second, 0, sizeof *b.per_second * ((size_t)b.o.seconds + 1));
    b.clients = (client *)xrealloc(NULL, sizeof *b.clients * (size_t)b.o.clients);
    memset(b.clients, 0, sizeof *b.clients * (size_t)b.o.clients);
    for (i = 0; i < b.o.clients; i++) {
        client *cl = &b.clients[i];
        cl->b = &b;
        cl->c.fd = -1;
        cl->c.ud = cl;
        cl->c.done = client_turn_done;
        cl->store = i < b.o.store_clients;
    }
    b.probe.fd = -1;
    b.probe.ud = &b;
    b.probe.done = probe_done;
    run(&b);
    report(&b);
    for (i = 0; i < b.o.clients; i++) conn_free(&b.clients[i].c);
    conn_free(&b.probe);
    ak_json_doc_free(&b.doc);
    free(b.clients);
    free(b.lat);
    free(b.snaps);
    free(b.per_second);
    return b.failed || b.verify_failed ? 1 : 0;
}
