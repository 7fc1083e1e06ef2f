/* mockserver.h - a scripted HTTP/1.1 server for end-to-end tests of the model adapters.

   mock_start forks a child that listens on 127.0.0.1 (an ephemeral port) and answers the
   i-th connection with the i-th scripted response, then closes it (the POSIX transport
   opens one connection per request). The child records every request it reads (method,
   path, headers, body) before answering, so once the client has its answer the parent can
   assert what was sent. The child exits after the last scripted response; mock_stop kills
   it by PID in any case, and it kills itself after MOCK_LIFETIME_S seconds if a test
   forgets it. Only for tests: POSIX, one test process, no threads.

       mock_response r[2];
       mock_server m;
       memset(r, 0, sizeof r);
       r[0].status = 429;                          a rate limit with a delay hint
       r[0].headers = "retry-after: 2\r\n";
       r[0].body = "{\"error\":{\"message\":\"slow down\"}}";
       r[1].body = sse_text;                       200: a stream, drip-fed
       r[1].content_type = "text/event-stream";
       r[1].piece = 7;                             7 bytes per write ...
       r[1].delay_ms = 1;                          ... 1 ms apart
       if (mock_start(&m, r, 2) != 0) fail;
       cfg.base_url = m.url;                       "http://127.0.0.1:PORT"
       ... run the client ...
       mock_stop(&m);                              stop the child, collect the requests
       m.count == 2; m.req[1].path; m.req[1].body; mock_header(&m.req[1], "authorization")
       mock_free(&m);

   The responses (and the strings they point to) must stay valid until mock_start returns:
   the child has its own copy of memory after the fork. */
#ifndef AK_MOCKSERVER_H
#define AK_MOCKSERVER_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#if defined(__GNUC__) || defined(__clang__)
#define MOCK_UNUSED __attribute__((unused))
#else
#define MOCK_UNUSED
#endif

#define MOCK_MAX_REQUESTS 16
#define MOCK_MAX_REQUEST_BYTES (4u << 20)
#define MOCK_LIFETIME_S 30

/* One scripted answer. Zero-initialised fields take the defaults shown. */
typedef struct mock_response {
    int status;                  /* 0 = 200 */
    const char *content_type;    /* NULL = "application/json" */
    const char *headers;         /* extra header lines, each ending in "\r\n"; NULL = none */
    const char *body;            /* NULL = empty */
    size_t body_len;             /* 0 = strlen(body) */
    int chunked;                 /* 1: Transfer-Encoding: chunked, one HTTP chunk per piece;
                                    0: Content-Length */
    size_t piece;                /* write the body this many bytes at a time; 0 = at once */
    int delay_ms;                /* sleep before each piece (after the head) */
    int reset;                   /* 1: after reset_at body bytes, reset the connection (RST)
                                    instead of finishing the response */
    size_t reset_at;
} mock_response;

/* A request the server read. Strings point into `raw` and are NUL-terminated. */
typedef struct mock_request {
    char *raw;                   /* head + body as received (malloc'd) */
    size_t raw_len;
    const char *method;
    const char *path;            /* request target: "/v1/chat/completions" */
    const char *headers;         /* the header lines, "Name: value\r\n" each */
    const char *body;
    size_t body_len;
} mock_request;

typedef struct mock_server {
    int port;
    char url[64];                /* "http://127.0.0.1:PORT" (no trailing slash) */
    pid_t pid;
    FILE *log;                   /* anonymous temp file the child appends records to */
    size_t count;                /* requests recorded (after mock_stop) */
    mock_request req[MOCK_MAX_REQUESTS];
} mock_server;

/* ---- child side -------------------------------------------------------------------------- */

static void mock__sleep_ms(int ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static int mock__send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

static size_t mock__head_end(const char *buf, size_t n) {
    size_t i;
    for (i = 3; i < n; i++)
        if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' && buf[i] == '\n') return i + 1;
    return 0;
}

/* Content-Length of a request head (case-insensitive name), 0 if absent. */
static size_t mock__content_length(const char *head, size_t n) {
    static const char name[] = "\r\ncontent-length:";
    size_t i, k;
    for (i = 0; i + sizeof name - 1 <= n; i++) {
        for (k = 0; k < sizeof name - 1; k++) {
            char c = head[i + k];
            if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
            if (c != name[k]) break;
        }
        if (k == sizeof name - 1) return (size_t)strtoul(head + i + k, NULL, 10);
    }
    return 0;
}

/* Reads one request (head + Content-Length body) into buf; returns its length, 0 if the
   client went away first. */
static size_t mock__read_request(int fd, char *buf, size_t cap) {
    size_t n = 0, he = 0, want = 0;
    for (;;) {
        ssize_t r;
        if (!he && (he = mock__head_end(buf, n)) != 0) want = he + mock__content_length(buf, he);
        if (he && n >= want) return want;
        if (n == cap) return n;
        r = read(fd, buf + n, cap - n);
        if (r <= 0) return 0;
        n += (size_t)r;
    }
}

/* Appends "<length>\n<bytes>" to the log (a file, so the child never blocks on it). */
static void mock__record(int log_fd, const char *req, size_t n) {
    char len[32];
    int k = snprintf(len, sizeof len, "%lu\n", (unsigned long)n);
    if (write(log_fd, len, (size_t)k) != k || write(log_fd, req, n) != (ssize_t)n) _exit(3);
}

/* Closes fd so that the peer sees a reset (RST), not an orderly end. */
static void mock_close_with_reset(int fd) {
    struct linger l;
    l.l_onoff = 1;
    l.l_linger = 0;
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static int mock__send_piece(int fd, const mock_response *r, const char *p, size_t n) {
    char size[32];
    if (!r->chunked) return mock__send_all(fd, p, n);
    snprintf(size, sizeof size, "%lx\r\n", (unsigned long)n);
    return mock__send_all(fd, size, strlen(size)) || mock__send_all(fd, p, n) || mock__send_all(fd, "\r\n", 2);
}

static void mock__answer(int fd, const mock_response *r) {
    char head[4096];
    const char *body = r->body ? r->body : "";
    size_t len = r->body_len ? r->body_len : strlen(body), off = 0;
    size_t piece = r->piece ? r->piece : (len ? len : 1);
    int status = r->status ? r->status : 200;
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d Mock\r\nContent-Type: %s\r\nConnection: close\r\n%s", status,
                     r->content_type ? r->content_type : "application/json", r->headers ? r->headers : "");
    if (r->chunked) n += snprintf(head + n, sizeof head - (size_t)n, "Transfer-Encoding: chunked\r\n\r\n");
    else n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %lu\r\n\r\n", (unsigned long)len);
    if (mock__send_all(fd, head, (size_t)n)) return;
    while (off < len) {
        size_t k = len - off < piece ? len - off : piece;
        if (r->reset && off + k > r->reset_at) k = r->reset_at - off;
        if (r->delay_ms) mock__sleep_ms(r->delay_ms);
        if (k && mock__send_piece(fd, r, body + off, k)) return;
        off += k;
        if (r->reset && off == r->reset_at) break;
    }
    if (r->reset) {
        mock_close_with_reset(fd);
        return;
    }
    if (r->chunked) mock__send_all(fd, "0\r\n\r\n", 5);
    close(fd);
}

static void mock__child(int lfd, int log_fd, const mock_response *rs, size_t count) {
    static char buf[MOCK_MAX_REQUEST_BYTES];
    size_t i;
    alarm(MOCK_LIFETIME_S);
    for (i = 0; i < count; i++) {
        int fd = accept(lfd, NULL, NULL);
        size_t n;
        if (fd < 0) _exit(2);
        n = mock__read_request(fd, buf, sizeof buf);
        if (n) mock__record(log_fd, buf, n);
        mock__answer(fd, &rs[i]);
    }
    _exit(0);
}

/* ---- parent side ------------------------------------------------------------------------- */

static int mock__listen(int *port) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Starts serving `count` (<= MOCK_MAX_REQUESTS) responses. Returns 0, or -1 when the
   socket, the log or the fork failed. */
MOCK_UNUSED static int mock_start(mock_server *m, const mock_response *responses, size_t count) {
    int lfd;
    memset(m, 0, sizeof *m);
    if (count > MOCK_MAX_REQUESTS || (lfd = mock__listen(&m->port)) < 0) return -1;
    if (!(m->log = tmpfile())) {
        close(lfd);
        return -1;
    }
    snprintf(m->url, sizeof m->url, "http://127.0.0.1:%d", m->port);
    fflush(NULL); /* nothing buffered may be written twice */
    m->pid = fork();
    if (m->pid == 0) mock__child(lfd, fileno(m->log), responses, count);
    close(lfd);
    if (m->pid < 0) {
        fclose(m->log);
        m->log = NULL;
        return -1;
    }
    return 0;
}

/* Splits one recorded request into its parts (in place). */
static void mock__parse(mock_request *r) {
    char *sp, *end = strstr(r->raw, "\r\n\r\n");
    r->method = r->raw;
    r->path = r->headers = r->body = "";
    if (!end) return;
    end[2] = 0; /* the head ends after the last header's CRLF */
    r->body = end + 4;
    r->body_len = r->raw_len - (size_t)(end + 4 - r->raw);
    if ((sp = strchr(r->raw, ' ')) != NULL) {
        *sp = 0;
        r->path = sp + 1;
        if ((sp = strchr(sp + 1, ' ')) != NULL) *sp = 0;
        if ((sp = strstr(sp ? sp + 1 : r->raw, "\r\n")) != NULL) r->headers = sp + 2;
    }
}

/* Stops the child (by PID) and loads the requests it recorded into m->req[0..count). */
MOCK_UNUSED static void mock_stop(mock_server *m) {
    unsigned long n;
    if (m->pid > 0) {
        kill(m->pid, SIGKILL);
        waitpid(m->pid, NULL, 0);
        m->pid = 0;
    }
    if (!m->log) return;
    rewind(m->log);
    while (m->count < MOCK_MAX_REQUESTS && fscanf(m->log, "%lu", &n) == 1 && fgetc(m->log) == '\n') {
        mock_request *r = &m->req[m->count];
        if (!(r->raw = (char *)malloc(n + 1)) || fread(r->raw, 1, n, m->log) != n) {
            free(r->raw);
            r->raw = NULL;
            break;
        }
        r->raw[n] = 0;
        r->raw_len = n;
        mock__parse(r);
        m->count++;
    }
    fclose(m->log);
    m->log = NULL;
}

/* Value of header `name` (case-insensitive) in a recorded request, copied into a static
   buffer (valid until the next call); NULL if absent. */
MOCK_UNUSED static const char *mock_header(const mock_request *r, const char *name) {
    static char value[1024];
    size_t nl = strlen(name);
    const char *line = r->headers;
    while (line && *line) {
        const char *eol = strstr(line, "\r\n");
        size_t k;
        if (!eol) break;
        for (k = 0; k < nl && line[k] && (line[k] | 32) == (name[k] | 32); k++) {
        }
        if (k == nl && line[nl] == ':') {
            const char *v = line + nl + 1;
            size_t len;
            while (*v == ' ') v++;
            len = (size_t)(eol - v) < sizeof value - 1 ? (size_t)(eol - v) : sizeof value - 1;
            memcpy(value, v, len);
            value[len] = 0;
            return value;
        }
        line = eol + 2;
    }
    return NULL;
}

/* Frees the recorded requests (and stops the child if mock_stop was not called). */
MOCK_UNUSED static void mock_free(mock_server *m) {
    size_t i;
    mock_stop(m);
    for (i = 0; i < m->count; i++) free(m->req[i].raw);
    m->count = 0;
}

#endif
