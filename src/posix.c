/* >>posix.c: POSIX sockets (AK_ENABLE_POSIX): the TCP byte stream, the HTTP client transport
   and the HTTP server loop */

#include "posix.h"
#include "http.c"

#ifdef AK_ENABLE_POSIX
#ifdef AK_FREESTANDING
#error "agentkit.h: AK_ENABLE_POSIX needs a hosted POSIX system, not AK_FREESTANDING"
#endif

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netdb.h>
#include <poll.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>

#ifdef MSG_NOSIGNAL
#define AK__SEND_FLAGS MSG_NOSIGNAL
#else
#define AK__SEND_FLAGS 0 /* SO_NOSIGPIPE is set on every socket instead (BSD, macOS) */
#endif

/* How long a server keeps reading (and dropping) a client's bytes after its last response
   before closing: closing with unread input makes the kernel send a reset, which can
   destroy the response before the client has read it. */
#define AK__LINGER_MS 2000
#define AK__LINGER_MAX_BYTES (1024u * 1024u)

/* ---- sockets ------------------------------------------------------------------------------------ */

/* Non-blocking, closed on exec, never raising SIGPIPE. */
AK_PRIVATE int ak__sock_setup(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#ifdef SO_NOSIGPIPE
    {
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    }
#endif
    return 0;
}

AK_PRIVATE int ak__would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

AK_PRIVATE int ak__peer_gone(int e) {
    return e == EPIPE || e == ECONNRESET || e == ENOTCONN || e == ECONNABORTED;
}

/* poll(); an interrupting signal counts as "nothing happened" so the host sees it soon. */
AK_PRIVATE int ak__poll(struct pollfd *p, size_t n, int timeout_ms) {
    int r = poll(p, (nfds_t)n, timeout_ms);
    return r < 0 && errno == EINTR ? 0 : r;
}

/* The wait until `deadline` (0 = none) if shorter than `wait` (negative = forever). */
AK_PRIVATE int ak__wait_until(int64_t now, int64_t deadline, int wait) {
    int64_t left;
    if (!deadline) return wait;
    left = deadline > now ? deadline - now : 0;
    if (left > 0x7FFFFFFF) left = 0x7FFFFFFF;
    return wait < 0 || left < wait ? (int)left : wait;
}

AK_PRIVATE short ak__poll_events(int want) {
    return (short)(((want & AK_NET_WANT_READ) ? POLLIN : 0) | ((want & AK_NET_WANT_WRITE) ? POLLOUT : 0));
}

/* Room for n pollfds and n pointers in a transport's or server's scratch arrays: one block
   (pointers first, for alignment), rebuilt by every poll, so nothing needs copying. */
#define AK__PFD_SLOT (sizeof(void *) + sizeof(struct pollfd))

AK_PRIVATE int ak__pfd_reserve(const ak_allocator *a, void **pfds, void ***ptrs, size_t *cap, size_t n) {
    size_t want = *cap ? *cap : 16;
    void **block;
    if (n <= *cap) return 1;
    while (want < n) want *= 2;
    if (want > (size_t)-1 / AK__PFD_SLOT) return 0;
    block = (void **)ak_alloc(a, want * AK__PFD_SLOT);
    if (!block) return 0;
    ak_free(a, *ptrs, *cap * AK__PFD_SLOT);
    *ptrs = block;
    *pfds = block + want;
    *cap = want;
    return 1;
}

AK_PRIVATE void ak__pfd_free(const ak_allocator *a, void **pfds, void ***ptrs, size_t *cap) {
    ak_free(a, *ptrs, *cap * AK__PFD_SLOT);
    *pfds = NULL;
    *ptrs = NULL;
    *cap = 0;
}

/* ---- the TCP stream ---------------------------------------------------------------------------- */

typedef struct ak__tcp_stream {
    ak_net_stream base;        /* first, so an ak_net_stream* is an ak__tcp_stream* */
    const ak_allocator *alloc;
    struct addrinfo *addrs;    /* from getaddrinfo, once resolved */
    struct addrinfo *next;     /* the next address to try */
    int resolved, connected, last_errno;
    char port[8];
    char host[256];
} ak__tcp_stream;

AK_PRIVATE ak_result ak__tcp_resolve(ak__tcp_stream *t, ak_error *err) {
    struct addrinfo hints;
    int rc;
    AK_MEMSET(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(t->host, t->port, &hints, &t->addrs);
    if (rc != 0)
        return ak_error_set(err, AK_ERR_CONNECT, "cannot resolve %s: %s", t->host,
                            rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    t->resolved = 1;
    t->next = t->addrs;
    return AK_OK;
}

/* Starts a non-blocking connect to the next address: AK_OK (connected at once), AK_PENDING
   (in progress on t->base.fd) or AK_ERR_CONNECT when no address is left. */
AK_PRIVATE ak_result ak__tcp_try_next(ak__tcp_stream *t, ak_error *err) {
    while (t->next) {
        struct addrinfo *ai = t->next;
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol), one = 1;
        t->next = ai->ai_next;
        if (fd < 0 || ak__sock_setup(fd) < 0) {
            t->last_errno = errno;
            if (fd >= 0) close(fd);
            continue;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* requests are small writes */
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            t->base.fd = fd;
            return AK_OK;
        }
        if (errno == EINPROGRESS || errno == EINTR) {
            t->base.fd = fd;
            t->base.want = AK_NET_WANT_WRITE;
            return AK_PENDING;
        }
        t->last_errno = errno;
        close(fd);
    }
    return ak_error_set(err, AK_ERR_CONNECT, "cannot connect to %s port %s: %s", t->host, t->port,
                        strerror(t->last_errno ? t->last_errno : ECONNREFUSED));
}

AK_PRIVATE ak_result ak__tcp_connect(ak_net_stream *s, ak_error *err) {
    ak__tcp_stream *t = (ak__tcp_stream *)s;
    ak_result rc;
    if (t->connected) return AK_OK;
    if (!t->resolved && (rc = ak__tcp_resolve(t, err)) != AK_OK) return rc;
    if (s->fd >= 0) { /* a connect in progress: done when the socket turns writable */
        struct pollfd p;
        int e = 0;
        socklen_t len = sizeof e;
        p.fd = s->fd;
        p.events = POLLOUT;
        p.revents = 0;
        if (ak__poll(&p, 1, 0) == 0) return AK_PENDING;
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == 0) {
            t->connected = 1;
            return AK_OK;
        }
        t->last_errno = e ? e : errno;
        close(s->fd);
        s->fd = -1;
    }
    rc = ak__tcp_try_next(t, err);
    if (rc == AK_OK) t->connected = 1;
    return rc;
}

AK_PRIVATE ak_result ak__tcp_read(ak_net_stream *s, void *buf, size_t cap, size_t *got, ak_error *err) {
    ssize_t n;
    *got = 0;
    n = recv(s->fd, buf, cap, 0);
    if (n >= 0) {
        *got = (size_t)n;
        return AK_OK;
    }
    if (ak__would_block(errno)) {
        s->want = AK_NET_WANT_READ;
        return AK_PENDING;
    }
    if (ak__peer_gone(errno)) return ak_error_set(err, AK_ERR_CLOSED, "connection reset by the peer");
    return ak_error_set(err, AK_ERR_IO, "read failed: %s", strerror(errno));
}

AK_PRIVATE ak_result ak__tcp_write(ak_net_stream *s, const void *buf, size_t len, size_t *sent,
                                   ak_error *err) {
    ssize_t n;
    *sent = 0;
    n = send(s->fd, buf, len, AK__SEND_FLAGS);
    if (n >= 0) {
        *sent = (size_t)n;
        return AK_OK;
    }
    if (ak__would_block(errno)) {
        s->want = AK_NET_WANT_WRITE;
        return AK_PENDING;
    }
    if (ak__peer_gone(errno)) return ak_error_set(err, AK_ERR_CLOSED, "connection closed by the peer");
    return ak_error_set(err, AK_ERR_IO, "write failed: %s", strerror(errno));
}

AK_PRIVATE void ak__tcp_close(ak_net_stream *s) {
    ak__tcp_stream *t = (ak__tcp_stream *)s;
    if (s->fd >= 0) close(s->fd);
    if (t->addrs) freeaddrinfo(t->addrs);
    ak_free(t->alloc, t, sizeof *t);
}

static const ak_net_stream_vtable ak__tcp_vtable = {
    ak__tcp_connect, ak__tcp_read, ak__tcp_write, ak__tcp_close
};

AKDEF ak_result ak_tcp_stream_open(const ak_allocator *alloc, const char *host, size_t host_len,
                                   uint16_t port, ak_net_stream **out, ak_error *err) {
    ak__tcp_stream *t;
    ak_buf b;
    size_t i;
    *out = NULL;
    if (!host || !host_len || host_len >= sizeof t->host || !port)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "bad host or port for a TCP connection");
    for (i = 0; i < host_len; i++)
        if (AK__U8(host[i]) <= 0x20 || AK__U8(host[i]) >= 0x7F)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "bad character in host name");
    t = (ak__tcp_stream *)ak_alloc(alloc, sizeof *t);
    if (!t) return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory for a TCP stream");
    AK_MEMSET(t, 0, sizeof *t);
    t->base.vt = &ak__tcp_vtable;
    t->base.fd = -1;
    t->alloc = alloc;
    AK_MEMCPY(t->host, host, host_len);
    ak_buf_init_fixed(&b, t->port, sizeof t->port);
    ak_buf_put_u64(&b, port);
    *out = &t->base;
    return AK_OK;
}

/* ---- client transport ------------------------------------------------------------------------- */

#ifdef AK_ENABLE_MBEDTLS
/* From tls.c (later in this file in the amalgamation). */
AK_PRIVATE ak_result ak__transport_wrap_tls(ak_posix_transport *t, const ak_url *u,
                                            ak_net_stream **s, ak_error *err);
#endif

enum { AK__RQ_CONNECT, AK__RQ_EXCHANGE, AK__RQ_FINISHED };

struct ak__posix_req {
    ak__posix_req *next;
    ak_posix_transport *t;
    uintptr_t id;
    int state;
    int cancelled;             /* no sink calls any more; freed at the next safe point */
    int failed;                /* err holds a failure to report at the next step */
    ak_error err;
    ak_http_sink *sink;        /* the library's */
    ak_http_sink proxy;        /* what the parser calls: forwards unless cancelled */
    ak_url url;
    ak_net_stream *stream;
    int reused;                /* the stream was idle in the pool: one retry is allowed */
    int got_bytes;             /* response bytes arrived on this stream */
    int no_reuse;              /* the caller asked for a close, or the server sent more than
                                  the response: the connection is not kept */
    ak_http_response_parser parser;
    ak_buf head;               /* the request head, sent before the body */
    size_t head_off;
    const char *body;          /* the caller's, valid until the request completes */
    size_t body_len, body_off;
    int send_done;
    ak_result send_rc;         /* a failed send: reported only if no response follows */
    ak_error send_err;
    int64_t started, deadline, connect_deadline;
    char rbuf[AK_POSIX_IO_BUF];
};

AK_PRIVATE const ak_allocator *ak__pt_alloc(ak_posix_transport *t) {
    return ak_context_allocator(t->desc.ctx);
}

/* ---- idle keep-alive connections ---- */

/* A connection between requests, waiting for the next request to its origin. */
struct ak__posix_idle {
    ak__posix_idle *next;
    ak_net_stream *stream;
    int64_t since;             /* when it went idle, on the context's monotonic clock */
    int https;
    uint16_t port;
    char host[256];            /* as in the URL (NUL-terminated); compared without case */
};

AK_PRIVATE int ak__pt_reuse_on(const ak_posix_transport *t) { return t->desc.max_idle > 0; }

/* The same scheme, host and port: the transport has one TLS setup, so that is enough. */
AK_PRIVATE int ak__pt_idle_for(const ak__posix_idle *c, const ak_url *u) {
    return c->https == u->https && c->port == u->port && ak__ieqn(u->host, u->host_len, c->host);
}

/* Unlinks *pp, closes its connection (unless taken) and frees it. */
AK_PRIVATE void ak__pt_idle_drop(ak_posix_transport *t, ak__posix_idle **pp) {
    ak__posix_idle *c = *pp;
    *pp = c->next;
    if (c->stream) c->stream->vt->close(c->stream);
    ak_free(ak__pt_alloc(t), c, sizeof *c);
}

AK_PRIVATE void ak__pt_idle_expire(ak_posix_transport *t) {
    int64_t now = ak_mono_ms(t->desc.ctx);
    ak__posix_idle **pp = &t->idle;
    while (*pp) {
        if (now - (*pp)->since >= t->desc.idle_timeout_ms) ak__pt_idle_drop(t, pp);
        else pp = &(*pp)->next;
    }
}

/* An idle socket must have nothing to read: readable means the server closed it (EOF,
   reset) or sent bytes nobody asked for. Never waits. */
AK_PRIVATE int ak__pt_idle_healthy(const ak_net_stream *s) {
    struct pollfd p;
    p.fd = s->fd;
    p.events = POLLIN;
    p.revents = 0;
    return s->fd >= 0 && ak__poll(&p, 1, 0) == 0;
}

/* Takes the most recently used healthy idle connection to u's origin out of the pool,
   closing dead ones met on the way; NULL when there is none. */
AK_PRIVATE ak_net_stream *ak__pt_idle_take(ak_posix_transport *t, const ak_url *u) {
    ak__posix_idle **pp = &t->idle;
    while (*pp) {
        ak__posix_idle *c = *pp;
        ak_net_stream *s = c->stream;
        int healthy;
        if (!ak__pt_idle_for(c, u)) {
            pp = &c->next;
            continue;
        }
        healthy = ak__pt_idle_healthy(s);
        if (healthy) c->stream = NULL; /* taken: dropping the record leaves it open */
        ak__pt_idle_drop(t, pp);
        if (healthy) return s;
    }
    return NULL;
}

/* Keeps a connection for the next request to u's origin, first in line; beyond max_idle
   the least recently used one is closed. Without memory it is simply closed. */
AK_PRIVATE void ak__pt_idle_put(ak_posix_transport *t, ak_net_stream *s, const ak_url *u) {
    ak__posix_idle *c = NULL, **pp;
    if (u->host_len < sizeof c->host) c = (ak__posix_idle *)ak_alloc(ak__pt_alloc(t), sizeof *c);
    if (!c) {
        s->vt->close(s);
        return;
    }
    AK_MEMSET(c, 0, sizeof *c);
    c->stream = s;
    c->since = ak_mono_ms(t->desc.ctx);
    c->https = u->https;
    c->port = u->port;
    AK_MEMCPY(c->host, u->host, u->host_len);
    c->next = t->idle;
    t->idle = c;
    if (ak_posix_transport_idle(t) <= (size_t)t->desc.max_idle) return;
    for (pp = &t->idle; (*pp)->next;) pp = &(*pp)->next;
    ak__pt_idle_drop(t, pp);
}

/* ---- requests ---- */

/* The proxy sink: once cancelled, the library's sink is never called again. */
AK_PRIVATE ak_result ak__rq_status(ak_http_sink *s, int status) {
    ak__posix_req *r = (ak__posix_req *)s->ud;
    if (r->cancelled) return AK_ERR_CANCELLED;
    return r->sink->on_status ? r->sink->on_status(r->sink, status) : AK_OK;
}

AK_PRIVATE ak_result ak__rq_header(ak_http_sink *s, const char *n, size_t nl, const char *v, size_t vl) {
    ak__posix_req *r = (ak__posix_req *)s->ud;
    if (r->cancelled) return AK_ERR_CANCELLED;
    return r->sink->on_header ? r->sink->on_header(r->sink, n, nl, v, vl) : AK_OK;
}

AK_PRIVATE ak_result ak__rq_body(ak_http_sink *s, const char *d, size_t n) {
    ak__posix_req *r = (ak__posix_req *)s->ud;
    if (r->cancelled) return AK_ERR_CANCELLED;
    return r->sink->on_body ? r->sink->on_body(r->sink, d, n) : AK_OK;
}

AK_PRIVATE void ak__rq_close_stream(ak__posix_req *r) {
    if (r->stream) r->stream->vt->close(r->stream);
    r->stream = NULL;
}

AK_PRIVATE void ak__rq_free(ak__posix_req *r) {
    const ak_allocator *a = ak__pt_alloc(r->t);
    ak__rq_close_stream(r);
    ak_http_response_parser_free(&r->parser);
    ak_buf_free(&r->head);
    ak_free(a, r, sizeof *r);
}

/* A completed exchange leaves the connection fit for another request when the response
   allows it (HTTP/1.1 or keep-alive, no "Connection: close", a body delimited by its
   length or its chunks and read to the end: the parser's keep_alive), the whole request
   went out (an early answer can come before the upload ends), and nobody asked for a
   close or stopped listening. */
AK_PRIVATE int ak__rq_reusable(const ak__posix_req *r) {
    return ak__pt_reuse_on(r->t) && r->stream && !r->no_reuse && !r->cancelled &&
           r->parser.state == AK__PARSE_DONE && r->parser.keep_alive && r->send_done && r->send_rc == AK_OK;
}

/* The end of a request: its connection goes back to the pool or is closed, then on_done
   (unless cancelled), which may already start the next request on that connection. */
AK_PRIVATE void ak__rq_finish(ak__posix_req *r, ak_result rc, const char *msg) {
    r->state = AK__RQ_FINISHED;
    if (rc == AK_OK && ak__rq_reusable(r)) {
        ak__pt_idle_put(r->t, r->stream, &r->url);
        r->stream = NULL;
    }
    ak__rq_close_stream(r);
    if (!r->cancelled && r->sink->on_done) r->sink->on_done(r->sink, rc, rc == AK_OK ? NULL : msg);
}

/* A sink callback refused more: release the request without calling anything on it. */
AK_PRIVATE void ak__rq_release(ak__posix_req *r) {
    r->state = AK__RQ_FINISHED;
    ak__rq_close_stream(r);
}

AK_PRIVATE ak_result ak__rq_open_stream(ak__posix_req *r, ak_error *err) {
    ak_result rc = ak_tcp_stream_open(ak__pt_alloc(r->t), r->url.host, r->url.host_len, r->url.port,
                                      &r->stream, err);
    if (rc != AK_OK || !r->url.https) return rc;
#ifdef AK_ENABLE_MBEDTLS
    return ak__transport_wrap_tls(r->t, &r->url, &r->stream, err);
#else
    return ak_error_set(err, AK_ERR_UNSUPPORTED, "https:// needs agentkit.h built with AK_ENABLE_MBEDTLS");
#endif
}

/* A connection attempt starting at `now` has connect_timeout_ms, within the request's own
   deadline. */
AK_PRIVATE void ak__rq_connect_deadline(ak__posix_req *r, int64_t now) {
    int64_t ms = r->t->desc.connect_timeout_ms > 0 ? r->t->desc.connect_timeout_ms : 30000;
    r->connect_deadline = now + ms;
    if (r->deadline && r->deadline < r->connect_deadline) r->connect_deadline = r->deadline;
}

/* Everything that can fail before the network is touched; a failure is recorded and
   reported by the first step, never from start() itself. An idle connection to the
   origin is taken when there is one (no connect, no handshake); else a new one is made. */
AK_PRIVATE void ak__rq_prepare(ak__posix_req *r, const ak_http_request *req) {
    ak_posix_transport *t = r->t;
    int reuse = ak__pt_reuse_on(t);
    r->started = ak_mono_ms(t->desc.ctx);
    r->deadline = req->timeout_ms > 0 ? r->started + req->timeout_ms : 0;
    ak__rq_connect_deadline(r, r->started);
    r->body = req->body;
    r->body_len = req->body_len;
    ak_http_response_parser_init(&r->parser, &r->proxy, ak__pt_alloc(t), &t->desc.limits,
                                 req->method && ak__streq(req->method, "HEAD"));
    if (!req->url) {
        r->failed = 1;
        ak_error_set(&r->err, AK_ERR_INVALID_ARGUMENT, "request URL is NULL");
        return;
    }
    if (ak_url_parse(req->url, ak__strlen(req->url), &r->url, &r->err) != AK_OK ||
        ak_http_write_request_head(&r->head, req, &r->url, !reuse, &r->err) != AK_OK) {
        r->failed = 1;
        return;
    }
    r->no_reuse = ak_http_has_token(ak_http_header_get(req->headers, req->header_count, "Connection"), "close");
    if (reuse && (r->stream = ak__pt_idle_take(t, &r->url)) != NULL) {
        r->reused = 1;
        r->state = AK__RQ_EXCHANGE;
    } else if (ak__rq_open_stream(r, &r->err) != AK_OK) {
        r->failed = 1;
    }
}

AK_PRIVATE ak__posix_req *ak__rq_new(ak_posix_transport *t, const ak_http_request *req,
                                     ak_http_sink *sink) {
    ak__posix_req *r = (ak__posix_req *)ak_alloc(ak__pt_alloc(t), sizeof *r);
    if (!r) return NULL;
    AK_MEMSET(r, 0, sizeof *r);
    r->t = t;
    r->id = ++t->next_id;
    r->sink = sink;
    r->proxy.on_status = ak__rq_status;
    r->proxy.on_header = ak__rq_header;
    r->proxy.on_body = ak__rq_body;
    r->proxy.ud = r;
    ak_buf_init(&r->head, ak__pt_alloc(t));
    ak__rq_prepare(r, req);
    r->next = t->reqs;
    t->reqs = r;
    return r;
}

AK_PRIVATE void ak__rq_timeout(ak__posix_req *r, int64_t now) {
    ak_error e;
    long long ms = (long long)(now - r->started);
    int host_len = (int)r->url.host_len;
    if (r->state == AK__RQ_CONNECT)
        ak_error_set(&e, AK_ERR_TIMEOUT, "connecting to %.*s timed out after %lld ms", host_len, r->url.host, ms);
    else if (r->parser.state == AK__PARSE_HEAD)
        ak_error_set(&e, AK_ERR_TIMEOUT, "no response from %.*s within %lld ms", host_len, r->url.host, ms);
    else
        ak_error_set(&e, AK_ERR_TIMEOUT, "response from %.*s timed out after %lld ms (%llu body bytes received)",
                     host_len, r->url.host, ms, (unsigned long long)r->parser.body_bytes);
    ak__rq_finish(r, AK_ERR_TIMEOUT, e.message);
}

/* Sends what the socket takes of head then body. A send failure is kept, not reported:
   a server may answer (413...) and close before reading the whole body. */
AK_PRIVATE void ak__rq_send(ak__posix_req *r) {
    while (!r->send_done) {
        const char *p;
        size_t n, sent = 0;
        ak_result rc;
        if (r->head_off < r->head.len) {
            p = r->head.ptr + r->head_off, n = r->head.len - r->head_off;
        } else if (r->body_off < r->body_len) {
            p = r->body + r->body_off, n = r->body_len - r->body_off;
        } else {
            r->send_done = 1;
            break;
        }
        rc = r->stream->vt->write(r->stream, p, n, &sent, &r->send_err);
        if (rc == AK_PENDING) return;
        if (rc != AK_OK) {
            r->send_done = 1;
            r->send_rc = rc;
            return;
        }
        if (r->head_off < r->head.len) r->head_off += sent;
        else r->body_off += sent;
    }
}

/* A reused connection ended (EOF or reset, on the write or the read) before a byte of the
   response arrived: the server closed it while it sat idle, the race every keep-alive
   client meets. The request goes again, once, on a new connection: nothing reached the
   sink and the body is still the caller's. A new connection failing is never retried. */
AK_PRIVATE int ak__rq_retry(ak__posix_req *r, ak_result rc) {
    if (!r->reused || r->got_bytes || (rc != AK_OK && rc != AK_ERR_CLOSED)) return 0;
    ak_log(r->t->desc.ctx, AK_LOG_DEBUG, "http: the idle connection to %.*s was closed; retrying on a new one",
           (int)r->url.host_len, r->url.host);
    ak__rq_close_stream(r);
    r->reused = 0;
    r->state = AK__RQ_CONNECT;
    r->head_off = r->body_off = 0;
    r->send_done = 0;
    r->send_rc = AK_OK;
    ak__rq_connect_deadline(r, ak_mono_ms(r->t->desc.ctx));
    if (ak__rq_open_stream(r, &r->err) != AK_OK) r->failed = 1;
    return 1;
}

/* The connection ended (EOF or error) before the response was complete. */
AK_PRIVATE void ak__rq_ended(ak__posix_req *r, ak_result rc, const ak_error *e) {
    ak_error msg;
    if (ak__rq_retry(r, rc)) return;
    if (rc == AK_OK) rc = ak_http_response_parser_eof(&r->parser, &msg);
    else msg = *e;
    if (rc == AK_OK) {
        ak__rq_finish(r, AK_OK, NULL);
        return;
    }
    if (r->send_rc && r->parser.state == AK__PARSE_HEAD && !r->parser.head.len) {
        ak__rq_finish(r, r->send_rc, r->send_err.message); /* no answer: the send error says why */
        return;
    }
    if (rc == AK_ERR_CLOSED && r->parser.state == AK__PARSE_BODY)
        ak_error_set(&msg, rc, "connection reset after %llu body bytes",
                     (unsigned long long)r->parser.body_bytes);
    ak__rq_finish(r, rc, msg.message);
}

/* Reads until the socket has nothing more, feeding the parser (and so the sink). */
AK_PRIVATE void ak__rq_recv(ak__posix_req *r) {
    for (;;) {
        size_t got = 0, used = 0;
        ak_error e;
        ak_result rc = r->stream->vt->read(r->stream, r->rbuf, sizeof r->rbuf, &got, &e);
        if (rc == AK_PENDING) return;
        if (rc != AK_OK || got == 0) {
            ak__rq_ended(r, rc, &e);
            return;
        }
        r->got_bytes = 1;
        rc = ak_http_response_parser_feed(&r->parser, r->rbuf, got, &used, &e);
        if (rc == AK_PENDING && !r->cancelled) continue;
        if (rc == AK_OK && used < got) r->no_reuse = 1; /* bytes beyond the response: not ours to read */
        if (rc == AK_OK) ak__rq_finish(r, AK_OK, NULL);
        else if (r->parser.sink_stopped || r->cancelled) ak__rq_release(r);
        else ak__rq_finish(r, rc, e.message);
        return;
    }
}

/* Advances one request as far as it goes without blocking. */
AK_PRIVATE void ak__rq_step(ak__posix_req *r) {
    int64_t now = ak_mono_ms(r->t->desc.ctx);
    ak_result rc;
    if (r->failed) {
        ak__rq_finish(r, r->err.code, r->err.message);
        return;
    }
    if (r->state == AK__RQ_CONNECT) {
        if (now >= r->connect_deadline) {
            ak__rq_timeout(r, now);
            return;
        }
        rc = r->stream->vt->connect(r->stream, &r->err);
        if (rc == AK_PENDING) return;
        if (rc != AK_OK) {
            ak__rq_finish(r, rc, r->err.message);
            return;
        }
        r->state = AK__RQ_EXCHANGE;
    }
    if (r->deadline && now >= r->deadline) {
        ak__rq_timeout(r, now);
        return;
    }
    ak__rq_send(r);
    ak__rq_recv(r);
}

AK_PRIVATE int ak__rq_live(const ak__posix_req *r) { return r->state != AK__RQ_FINISHED && !r->cancelled; }

/* What to poll for, and until when. */
AK_PRIVATE short ak__rq_events(const ak__posix_req *r) {
    int want = r->stream ? r->stream->want : 0;
    if (r->state == AK__RQ_EXCHANGE) want |= AK_NET_WANT_READ | (r->send_done ? 0 : AK_NET_WANT_WRITE);
    return ak__poll_events(want);
}

AK_PRIVATE int ak__rq_wait(const ak__posix_req *r, int64_t now, int wait) {
    if (r->failed || !r->stream || r->stream->fd < 0) return 0; /* ready to step now */
    return ak__wait_until(now, r->state == AK__RQ_CONNECT ? r->connect_deadline : r->deadline, wait);
}

/* Frees finished and cancelled requests; only outside start/poll. */
AK_PRIVATE void ak__pt_sweep(ak_posix_transport *t) {
    ak__posix_req **pp = &t->reqs;
    if (t->busy) return;
    while (*pp) {
        ak__posix_req *r = *pp;
        if (ak__rq_live(r)) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        ak__rq_free(r);
    }
}

/* Blocking mode: the whole exchange, inside start(). */
AK_PRIVATE void ak__rq_run(ak_posix_transport *t, ak__posix_req *r) {
    t->busy++;
    for (;;) {
        struct pollfd p;
        ak__rq_step(r);
        if (!ak__rq_live(r)) break;
        p.fd = r->stream && r->stream->fd >= 0 ? r->stream->fd : -1;
        p.events = ak__rq_events(r);
        p.revents = 0;
        ak__poll(&p, 1, ak__rq_wait(r, ak_mono_ms(t->desc.ctx), -1));
    }
    t->busy--;
    ak__pt_sweep(t);
}

AK_PRIVATE ak_result ak__pt_start(void *ud, const ak_http_request *req, ak_http_sink *sink, void **handle) {
    ak_posix_transport *t = (ak_posix_transport *)ud;
    ak__posix_req *r;
    if (!t || !req || !sink) return AK_ERR_INVALID_ARGUMENT;
    ak__pt_idle_expire(t);
    r = ak__rq_new(t, req, sink);
    if (!r) return AK_ERR_OUT_OF_MEMORY;
    if (handle) *handle = (void *)r->id;
    if (!t->desc.nonblocking) ak__rq_run(t, r);
    return AK_OK;
}

AK_PRIVATE void ak__pt_cancel(void *ud, void *handle) {
    ak_posix_transport *t = (ak_posix_transport *)ud;
    ak__posix_req *r;
    for (r = t->reqs; r; r = r->next)
        if (r->id == (uintptr_t)handle && ak__rq_live(r)) r->cancelled = 1;
    ak__pt_sweep(t);
}

AK_PRIVATE ak_result ak__pt_poll(void *ud, int timeout_ms) {
    return ak_posix_transport_poll((ak_posix_transport *)ud, timeout_ms);
}

/* t->desc keeps the resolved values: max_idle 0 there means no reuse. */
AK_PRIVATE void ak__pt_defaults(ak_posix_transport_desc *d) {
    d->max_idle = d->max_idle < 0 ? 0 : AK__DEF(d->max_idle, AK_POSIX_MAX_IDLE);
    d->idle_timeout_ms = d->idle_timeout_ms > 0 ? d->idle_timeout_ms : 30000;
}

AKDEF ak_result ak_posix_transport_init(ak_posix_transport *t, const ak_posix_transport_desc *desc,
                                        ak_error *err) {
    AK_MEMSET(t, 0, sizeof *t);
    if (!desc || !desc->ctx)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "the transport needs desc->ctx");
    t->desc = *desc;
    ak__pt_defaults(&t->desc);
    t->transport.start = ak__pt_start;
    t->transport.cancel = ak__pt_cancel;
    t->transport.poll = ak__pt_poll;
    t->transport.ud = t;
    if (desc->tls.dangerously_skip_verification)
        ak_log(desc->ctx, AK_LOG_WARN, "TLS certificate verification is DISABLED for this transport");
    return AK_OK;
}

AKDEF size_t ak_posix_transport_pending(const ak_posix_transport *t) {
    const ak__posix_req *r;
    size_t n = 0;
    for (r = t->reqs; r; r = r->next) n += (size_t)ak__rq_live(r);
    return n;
}

AKDEF size_t ak_posix_transport_idle(const ak_posix_transport *t) {
    const ak__posix_idle *c;
    size_t n = 0;
    for (c = t->idle; c; c = c->next) n++;
    return n;
}

/* Idle connections are not polled: nothing is expected from them, and a server closing
   one is noticed when a request wants it (or its idle timeout passes). */
AKDEF ak_result ak_posix_transport_poll(ak_posix_transport *t, int timeout_ms) {
    const ak_allocator *a = ak__pt_alloc(t);
    size_t n = 0, i, live = ak_posix_transport_pending(t);
    int64_t now = ak_mono_ms(t->desc.ctx);
    int wait = timeout_ms;
    ak__posix_req *r;
    struct pollfd *p;
    if (t->busy) return AK_ERR_STATE;
    ak__pt_idle_expire(t);
    if (!live) return AK_OK;
    if (!ak__pfd_reserve(a, &t->pfds, &t->pptrs, &t->pfd_cap, live)) return AK_ERR_OUT_OF_MEMORY;
    p = (struct pollfd *)t->pfds;
    for (r = t->reqs; r; r = r->next) {
        if (!ak__rq_live(r)) continue;
        p[n].fd = r->stream && r->stream->fd >= 0 ? r->stream->fd : -1;
        p[n].events = ak__rq_events(r);
        p[n].revents = 0;
        t->pptrs[n++] = r;
        wait = ak__rq_wait(r, now, wait);
    }
    if (ak__poll(p, n, wait) < 0) return AK_ERR_IO;
    t->busy++;
    for (i = 0; i < n; i++) {
        r = (ak__posix_req *)t->pptrs[i];
        if (ak__rq_live(r)) ak__rq_step(r); /* a step that finds nothing to do is cheap */
    }
    t->busy--;
    ak__pt_sweep(t);
    return AK_OK;
}

AKDEF void ak_posix_transport_free(ak_posix_transport *t) {
    ak__posix_req *r;
    if (!t->desc.ctx) return;
    for (r = t->reqs; r; r = r->next) r->cancelled = 1;
    t->busy = 0;
    ak__pt_sweep(t);
    while (t->idle) ak__pt_idle_drop(t, &t->idle); /* TLS streams before the TLS state they use */
#ifdef AK_ENABLE_MBEDTLS
    if (t->tls) ak_tls_free((ak_tls *)t->tls);
#endif
    t->tls = NULL;
    ak__pfd_free(ak__pt_alloc(t), &t->pfds, &t->pptrs, &t->pfd_cap);
}

/* ---- server ------------------------------------------------------------------------------------- */

/* A connection reads a request, lets the handler answer it, flushes the answer, and then
   reads the next request or lingers and closes. DEAD: the socket is closed; the record
   stays while the handler still holds its writer. */
enum { AK__SC_READ, AK__SC_HANDLE, AK__SC_FLUSH, AK__SC_LINGER, AK__SC_DEAD };

struct ak__server_conn {
    ak__server_conn *next;
    ak_http_server *srv;
    int fd;
    int state;
    int held;                  /* the handler's writer has not been ended */
    int close_reported;        /* the holder knows the client is gone */
    int close_after;           /* close once the current response is out */
    int peer_eof;
    int request_started;       /* bytes of the current request have arrived */
    int body_phase;
    int sent_continue;
    ak_http_request_parser parser;
    ak_http_response_framer framer;
    ak_http_writer writer;
    ak_buf in;                 /* received, not yet parsed (pipelined requests) */
    ak_buf out;                /* framed, not yet sent */
    size_t out_off;
    size_t discarded;          /* bytes dropped while lingering */
    int64_t deadline;          /* of the current phase; 0 = none */
    int deadline_status;       /* what to answer when it passes (408), 0 = close quietly */
    int64_t last_progress;     /* when output last moved */
};

AK_PRIVATE const ak_allocator *ak__srv_alloc(ak_http_server *s) {
    return ak_context_allocator(s->desc.ctx);
}

AK_PRIVATE int64_t ak__srv_now(ak_http_server *s) { return ak_mono_ms(s->desc.ctx); }

AK_PRIVATE size_t ak__conn_pending(const ak__server_conn *c) { return c->out.len - c->out_off; }

AK_PRIVATE void ak__conn_close_socket(ak__server_conn *c) {
    if (c->fd < 0) return;
    close(c->fd);
    c->fd = -1;
    c->state = AK__SC_DEAD;
    c->srv->open_count--;
}

AK_PRIVATE void ak__conn_free(ak__server_conn *c) {
    ak_http_request_parser_free(&c->parser);
    ak_buf_free(&c->in);
    ak_buf_free(&c->out);
    ak_free(ak__srv_alloc(c->srv), c, sizeof *c);
}

/* Tells the holder of a writer that its client is gone (once, and only from poll, shutdown
   or free: never from inside a writer call, which reports it by its result). */
AK_PRIVATE void ak__conn_notify(ak__server_conn *c) {
    ak_http_server *s = c->srv;
    if (c->state != AK__SC_DEAD || !c->held || c->close_reported) return;
    c->close_reported = 1;
    if (s->desc.on_close) s->desc.on_close(s->desc.ud, &c->writer);
}

/* Sends what the socket takes. On a send error the connection dies. */
AK_PRIVATE void ak__conn_flush(ak__server_conn *c) {
    while (c->fd >= 0 && ak__conn_pending(c)) {
        ssize_t n = send(c->fd, c->out.ptr + c->out_off, ak__conn_pending(c), AK__SEND_FLAGS);
        if (n < 0) {
            if (!ak__would_block(errno)) ak__conn_close_socket(c);
            return;
        }
        c->out_off += (size_t)n;
        c->last_progress = ak__srv_now(c->srv);
    }
    if (!ak__conn_pending(c)) {
        ak_buf_clear(&c->out);
        c->out_off = 0;
    }
}

/* Writer output: sent at once outside poll; inside it, kept until the connection's turn
   ends, so the frames one step writes leave in one send() rather than one each. */
AK_PRIVATE void ak__conn_flush_soon(ak__server_conn *c) {
    if (!c->srv->polling) ak__conn_flush(c);
}

/* Output is about to be queued: a write timeout counts from when it starts waiting. */
AK_PRIVATE void ak__conn_queue_start(ak__server_conn *c) {
    if (!ak__conn_pending(c)) c->last_progress = ak__srv_now(c->srv);
}

/* A protocol error, timeout or refusal: a short plain-text answer, then close. */
AK_PRIVATE void ak__conn_answer_error(ak__server_conn *c, int status, const char *msg) {
    ak_log(c->srv->desc.ctx, AK_LOG_INFO, "http server: %d %s", status, msg);
    ak__conn_queue_start(c);
    ak_buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                  status, ak_http_status_reason(status), ak__strlen(msg) + 1, msg);
    c->close_after = 1;
    c->state = AK__SC_FLUSH;
    if (c->out.err) ak__conn_close_socket(c);
    else ak__conn_flush(c);
}

AK_PRIVATE void ak__conn_dispatch(ak__server_conn *c) {
    ak_http_server *s = c->srv;
    c->state = AK__SC_HANDLE;
    c->held = 1;
    c->close_reported = 0;
    c->deadline = 0;
    ak_http_framer_init(&c->framer, &c->parser.req);
    if (s->draining) c->close_after = 1;
    s->desc.handler(s->desc.ud, &c->parser.req, &c->writer);
}

/* Feeds request bytes to the parser; returns how many it took. May call the handler. */
AK_PRIVATE size_t ak__conn_parse(ak__server_conn *c, const char *data, size_t len) {
    ak_http_server *s = c->srv;
    size_t used = 0;
    ak_error e;
    ak_result rc;
    if (!c->request_started && len) { /* the head's clock starts with its first byte */
        c->request_started = 1;
        c->deadline = ak__srv_now(s) + s->desc.header_timeout_ms;
        c->deadline_status = 408;
    }
    rc = ak_http_request_parser_feed(&c->parser, data, len, &used, &e);
    if (rc == AK_OK) {
        ak__conn_dispatch(c);
    } else if (rc != AK_PENDING) {
        ak__conn_answer_error(c, c->parser.error_status, e.message);
        return len; /* the rest is dropped: the connection closes */
    } else if (c->parser.state == AK__PARSE_BODY && !c->body_phase) {
        c->body_phase = 1;
        c->deadline = ak__srv_now(s) + s->desc.body_timeout_ms;
        if (c->parser.expect_continue && !c->sent_continue) {
            c->sent_continue = 1;
            ak__conn_queue_start(c);
            ak_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
            ak__conn_flush(c);
        }
    }
    return used;
}

/* Parses whatever is buffered while the connection waits for a request. */
AK_PRIVATE void ak__conn_parse_buffered(ak__server_conn *c) {
    if (c->state == AK__SC_READ && c->in.len) ak_buf_consume(&c->in, ak__conn_parse(c, c->in.ptr, c->in.len));
}

/* Bytes from the socket: parsed straight away when a request is being read, else kept
   (a pipelined request, read once the current response is out). */
AK_PRIVATE void ak__conn_input(ak__server_conn *c, const char *data, size_t len) {
    if (c->state == AK__SC_READ && !c->in.len) {
        size_t used = ak__conn_parse(c, data, len);
        data += used, len -= used;
    }
    if (!len || c->fd < 0 || (c->state == AK__SC_FLUSH && c->close_after)) return;
    ak_buf_append(&c->in, data, len);
    if (c->in.err) ak__conn_close_socket(c);
    else ak__conn_parse_buffered(c);
}

/* The response is out: close (lingering) or wait for the next request. */
AK_PRIVATE void ak__conn_linger(ak__server_conn *c) {
    if (c->peer_eof) {
        ak__conn_close_socket(c);
        return;
    }
    (void)shutdown(c->fd, SHUT_WR);
    c->state = AK__SC_LINGER;
    c->deadline = ak__srv_now(c->srv) + AK__LINGER_MS;
    c->deadline_status = 0;
}

AK_PRIVATE void ak__conn_advance(ak__server_conn *c) {
    ak_http_server *s = c->srv;
    while (c->fd >= 0 && c->state == AK__SC_FLUSH && !ak__conn_pending(c)) {
        if (c->close_after || !c->framer.keep_alive || c->peer_eof || s->draining) {
            ak__conn_linger(c);
            return;
        }
        ak_http_request_parser_reset(&c->parser);
        c->state = AK__SC_READ;
        c->request_started = c->body_phase = c->sent_continue = 0;
        c->deadline = ak__srv_now(s) + s->desc.idle_timeout_ms;
        c->deadline_status = 0;
        ak__conn_parse_buffered(c);
    }
}

AK_PRIVATE void ak__conn_eof(ak__server_conn *c) {
    c->peer_eof = 1;
    /* Mid-response the client is gone (a half-closing client that still wants its
       answer is treated as gone too, as nginx does); after the last byte of a response
       it just wants the close. */
    if (c->state != AK__SC_FLUSH) ak__conn_close_socket(c);
}

/* Unsent input beyond this is not read while a response is in progress. */
AK_PRIVATE size_t ak__conn_in_cap(const ak__server_conn *c) {
    return c->srv->desc.limits.max_header_bytes ? c->srv->desc.limits.max_header_bytes
                                                : (size_t)AK_HTTP_MAX_HEADER_BYTES;
}

/* hangup: poll() reported the peer gone or the socket in error. */
AK_PRIVATE void ak__conn_read(ak__server_conn *c, int hangup) {
    ak_http_server *s = c->srv;
    int i;
    for (i = 0; i < 4 && c->fd >= 0; i++) { /* bounded, so one client cannot hog a poll */
        ssize_t n;
        if (c->state != AK__SC_READ && c->state != AK__SC_LINGER && c->in.len >= ak__conn_in_cap(c)) {
            /* Reading is paused, but a hang-up stays reported: act on it or poll() spins. */
            if (hangup) ak__conn_close_socket(c);
            return;
        }
        n = recv(c->fd, s->rbuf, AK_POSIX_IO_BUF, 0);
        if (n < 0) {
            if (!ak__would_block(errno)) ak__conn_close_socket(c);
            return;
        }
        if (n == 0) {
            ak__conn_eof(c);
            return;
        }
        if (c->state == AK__SC_LINGER) {
            c->discarded += (size_t)n;
            if (c->discarded > AK__LINGER_MAX_BYTES) ak__conn_close_socket(c);
            continue;
        }
        ak__conn_input(c, s->rbuf, (size_t)n);
    }
}

AK_PRIVATE void ak__conn_check_time(ak__server_conn *c, int64_t now) {
    ak_http_server *s = c->srv;
    if (c->fd < 0) return;
    if (ak__conn_pending(c) && now - c->last_progress >= s->desc.write_timeout_ms) {
        ak_log(s->desc.ctx, AK_LOG_INFO, "http server: client stopped reading; closing");
        ak__conn_close_socket(c);
    } else if (c->deadline && now >= c->deadline && (c->state == AK__SC_READ || c->state == AK__SC_LINGER)) {
        if (c->state == AK__SC_READ && c->deadline_status)
            ak__conn_answer_error(c, 408, c->body_phase ? "request body timed out" : "request head timed out");
        else
            ak__conn_close_socket(c);
    }
}

AK_PRIVATE short ak__conn_events(const ak__server_conn *c) {
    short ev = 0;
    /* After the client's EOF there is nothing more to read, and an EOF stays readable. */
    if (!c->peer_eof && (c->state == AK__SC_READ || c->state == AK__SC_LINGER || c->in.len < ak__conn_in_cap(c)))
        ev |= POLLIN;
    if (ak__conn_pending(c)) ev |= POLLOUT;
    return ev;
}

AK_PRIVATE int64_t ak__conn_deadline(const ak__server_conn *c) {
    int64_t d = c->state == AK__SC_READ || c->state == AK__SC_LINGER ? c->deadline : 0;
    if (ak__conn_pending(c)) {
        int64_t w = c->last_progress + c->srv->desc.write_timeout_ms;
        if (!d || w < d) d = w;
    }
    return d;
}

AK_PRIVATE void ak__conn_service(ak__server_conn *c, short revents, int64_t now) {
    if (c->fd >= 0 && (revents & (POLLIN | POLLHUP | POLLERR))) ak__conn_read(c, (revents & (POLLHUP | POLLERR)) != 0);
    if (c->fd >= 0 && ak__conn_pending(c)) ak__conn_flush(c);
    ak__conn_advance(c);
    ak__conn_check_time(c, now);
    ak__conn_notify(c);
}

/* ---- writer (ud = the connection) ---- */

AK_PRIVATE ak_result ak__w_closed(ak__server_conn *c) {
    c->close_reported = 1;
    return AK_ERR_CLOSED;
}

AK_PRIVATE ak_result ak__w_start(void *ud, int status, const ak_header *h, size_t n) {
    ak__server_conn *c = (ak__server_conn *)ud;
    ak_error e;
    ak_result rc;
    if (!c->held) return AK_ERR_STATE;
    if (c->state == AK__SC_DEAD) return ak__w_closed(c);
    ak__conn_queue_start(c);
    rc = ak_http_framer_start(&c->framer, &c->out, status, h, n, &e);
    if (rc != AK_OK) {
        ak_log(c->srv->desc.ctx, AK_LOG_WARN, "http server: response refused: %s", e.message);
        return rc;
    }
    ak__conn_flush_soon(c);
    return c->state == AK__SC_DEAD ? ak__w_closed(c) : AK_OK;
}

AK_PRIVATE ak_result ak__w_write(void *ud, const char *data, size_t len) {
    ak__server_conn *c = (ak__server_conn *)ud;
    ak_result rc;
    if (!c->held) return AK_ERR_STATE;
    if (c->state == AK__SC_DEAD) return ak__w_closed(c);
    if (ak__conn_pending(c) > c->srv->desc.max_output_bytes) {
        /* The client is not reading: drop it rather than buffer without bound. */
        ak_log(c->srv->desc.ctx, AK_LOG_INFO, "http server: output backlog over the limit; closing");
        ak__conn_close_socket(c);
        c->close_reported = 1;
        return AK_ERR_LIMIT;
    }
    ak__conn_queue_start(c);
    rc = ak_http_framer_write(&c->framer, &c->out, data, len, NULL);
    if (rc != AK_OK) return rc;
    ak__conn_flush_soon(c);
    return c->state == AK__SC_DEAD ? ak__w_closed(c) : AK_OK;
}

AK_PRIVATE void ak__srv_unlink(ak_http_server *s, ak__server_conn *c) {
    ak__server_conn **pp = &s->conns;
    while (*pp != c) pp = &(*pp)->next;
    *pp = c->next;
}

AK_PRIVATE ak_result ak__w_end(void *ud) {
    ak__server_conn *c = (ak__server_conn *)ud;
    ak_result rc;
    if (!c->held) return AK_ERR_STATE;
    c->held = 0;
    if (c->state == AK__SC_DEAD) {
        if (!c->srv->polling) { /* inside poll, the sweep at its end frees it */
            ak__srv_unlink(c->srv, c);
            ak__conn_free(c);
        }
        return AK_ERR_CLOSED;
    }
    ak__conn_queue_start(c);
    rc = ak_http_framer_end(&c->framer, &c->out, NULL);
    if (rc != AK_OK) c->close_after = 1; /* the framing is broken: only a close ends it */
    c->state = AK__SC_FLUSH;
    ak__conn_flush_soon(c); /* the next request is read by poll, never from inside end() */
    return rc;
}

AKDEF size_t ak_http_server_pending_output(const ak_http_writer *w) {
    return w && w->ud ? ak__conn_pending((const ak__server_conn *)w->ud) : 0;
}

/* ---- accepting ---- */

/* Over the connection limit: a best-effort 503, then close. */
AK_PRIVATE void ak__srv_refuse(int fd) {
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n";
    (void)send(fd, busy, sizeof busy - 1, AK__SEND_FLAGS);
    close(fd);
}

AK_PRIVATE ak__server_conn *ak__conn_new(ak_http_server *s, int fd) {
    ak__server_conn *c = (ak__server_conn *)ak_alloc(ak__srv_alloc(s), sizeof *c);
    if (!c) return NULL;
    AK_MEMSET(c, 0, sizeof *c);
    c->srv = s;
    c->fd = fd;
    c->state = AK__SC_READ;
    ak_http_request_parser_init(&c->parser, ak__srv_alloc(s), &s->desc.limits);
    ak_buf_init(&c->in, ak__srv_alloc(s));
    ak_buf_init(&c->out, ak__srv_alloc(s));
    c->writer.start = ak__w_start;
    c->writer.write = ak__w_write;
    c->writer.end = ak__w_end;
    c->writer.ud = c;
    /* A new client must start its request promptly; quietly closed if it never does. */
    c->deadline = ak__srv_now(s) + s->desc.header_timeout_ms;
    c->next = s->conns;
    s->conns = c;
    s->open_count++;
    return c;
}

AK_PRIVATE void ak__srv_accept(ak_http_server *s) {
    int i, one = 1;
    for (i = 0; i < 64; i++) {
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                ak_log(s->desc.ctx, AK_LOG_WARN, "http server: accept: %s", strerror(errno));
                s->accept_pause_until = ak__srv_now(s) + 100; /* else poll() spins on it */
            }
            return;
        }
        if (ak__sock_setup(fd) < 0) {
            close(fd);
            continue;
        }
        /* Stream frames are small: Nagle would hold each one for the client's delayed ACK. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (s->open_count >= s->desc.max_connections || !ak__conn_new(s, fd)) {
            ak__srv_refuse(fd);
        }
    }
}

/* ---- the server ---- */

AK_PRIVATE ak_result ak__srv_listen(ak_http_server *s, ak_error *err) {
    struct addrinfo hints, *res = NULL, *ai;
    char port[8];
    ak_buf b;
    int rc, e = 0, one = 1;
    const char *host = s->desc.host ? s->desc.host : "127.0.0.1";
    AK_MEMSET(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    ak_buf_init_fixed(&b, port, sizeof port);
    ak_buf_put_u64(&b, (uint64_t)s->desc.port);
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return ak_error_set(err, AK_ERR_CONNECT, "cannot resolve %s: %s", host,
                            rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    for (ai = res; ai && s->listen_fd < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ak__sock_setup(fd) == 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            s->listen_fd = fd;
        } else {
            e = errno;
            close(fd);
        }
    }
    freeaddrinfo(res);
    if (s->listen_fd < 0)
        return ak_error_set(err, AK_ERR_CONNECT, "cannot listen on %s port %d: %s", host, s->desc.port,
                            strerror(e ? e : EADDRNOTAVAIL));
    {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &len) == 0)
            s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                               : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    return AK_OK;
}

AK_PRIVATE void ak__srv_defaults(ak_http_server_desc *d) {
    d->max_connections = AK__DEF(d->max_connections, (size_t)AK_HTTP_SERVER_MAX_CONNECTIONS);
    d->max_output_bytes = AK__DEF(d->max_output_bytes, (size_t)4 * 1024 * 1024);
    d->header_timeout_ms = d->header_timeout_ms > 0 ? d->header_timeout_ms : 10000;
    d->body_timeout_ms = d->body_timeout_ms > 0 ? d->body_timeout_ms : 60000;
    d->idle_timeout_ms = d->idle_timeout_ms > 0 ? d->idle_timeout_ms : 60000;
    d->write_timeout_ms = d->write_timeout_ms > 0 ? d->write_timeout_ms : 30000;
}

AKDEF ak_result ak_http_server_init(ak_http_server *s, const ak_http_server_desc *desc, ak_error *err) {
    ak_result rc;
    AK_MEMSET(s, 0, sizeof *s);
    s->listen_fd = -1;
    if (!desc || !desc->ctx || !desc->handler)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "the server needs desc->ctx and desc->handler");
    if (desc->port < 0 || desc->port > 65535)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "port %d is not 0..65535", desc->port);
    s->desc = *desc;
    ak__srv_defaults(&s->desc);
    s->rbuf = (char *)ak_alloc(ak__srv_alloc(s), AK_POSIX_IO_BUF);
    if (!s->rbuf) return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory for the server");
    if ((rc = ak__srv_listen(s, err)) != AK_OK) {
        ak_free(ak__srv_alloc(s), s->rbuf, AK_POSIX_IO_BUF);
        s->rbuf = NULL;
        return rc;
    }
    return AK_OK;
}

AKDEF int ak_http_server_port(const ak_http_server *s) { return s->port; }

AKDEF size_t ak_http_server_connections(const ak_http_server *s) { return s->open_count; }

/* Frees connections whose socket is closed and whose writer nobody holds. */
AK_PRIVATE void ak__srv_sweep(ak_http_server *s) {
    ak__server_conn **pp = &s->conns;
    while (*pp) {
        ak__server_conn *c = *pp;
        if (c->state != AK__SC_DEAD || c->held) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        ak__conn_free(c);
    }
}

AK_PRIVATE void ak__srv_close_all(ak_http_server *s) {
    ak__server_conn *c;
    for (c = s->conns; c; c = c->next) {
        ak__conn_close_socket(c);
        ak__conn_notify(c);
    }
}

AK_PRIVATE void ak__srv_flush_all(ak_http_server *s) {
    ak__server_conn *c;
    for (c = s->conns; c; c = c->next) {
        if (c->fd < 0 || !ak__conn_pending(c)) continue;
        ak__conn_flush(c);
        ak__conn_advance(c);
        ak__conn_notify(c);
    }
}

/* Fills the pollfd array: the listener, then every open connection. */
AK_PRIVATE size_t ak__srv_poll_set(ak_http_server *s, int64_t now, int *wait) {
    struct pollfd *p = (struct pollfd *)s->pfds;
    ak__server_conn *c;
    size_t n = 0;
    if (s->listen_fd >= 0 && now >= s->accept_pause_until) {
        p[n].fd = s->listen_fd;
        p[n].events = POLLIN;
        p[n].revents = 0;
        s->pptrs[n++] = NULL;
    } else if (s->listen_fd >= 0) {
        *wait = ak__wait_until(now, s->accept_pause_until, *wait);
    }
    for (c = s->conns; c; c = c->next) {
        if (c->fd < 0) continue;
        p[n].fd = c->fd;
        p[n].events = ak__conn_events(c);
        p[n].revents = 0;
        s->pptrs[n++] = c;
        if (c->state == AK__SC_FLUSH && !ak__conn_pending(c)) *wait = 0; /* ended outside poll */
        *wait = ak__wait_until(now, ak__conn_deadline(c), *wait);
    }
    if (s->draining) *wait = ak__wait_until(now, s->drain_deadline, *wait);
    return n;
}

AKDEF ak_result ak_http_server_poll(ak_http_server *s, int timeout_ms) {
    int64_t now = ak__srv_now(s);
    int wait = timeout_ms;
    size_t n, i, k, start;
    struct pollfd *p;
    if (s->polling || !s->rbuf) return AK_ERR_STATE;
    ak__srv_sweep(s);
    if (s->draining && !s->open_count) return AK_OK; /* drained: nothing to wait for */
    if (s->draining && now >= s->drain_deadline) ak__srv_close_all(s);
    if (!ak__pfd_reserve(ak__srv_alloc(s), &s->pfds, &s->pptrs, &s->pfd_cap, s->open_count + 1))
        return AK_ERR_OUT_OF_MEMORY;
    n = ak__srv_poll_set(s, now, &wait);
    p = (struct pollfd *)s->pfds;
    if (ak__poll(p, n, wait) < 0) return AK_ERR_IO;
    s->polling = 1;
    now = ak__srv_now(s);
    /* Start at a different connection each round: first served must not mean always served. */
    start = n ? s->round++ % n : 0;
    for (k = 0; k < n; k++) {
        i = (start + k) % n;
        if (s->pptrs[i]) ak__conn_service((ak__server_conn *)s->pptrs[i], p[i].revents, now);
        else if (p[i].revents) ak__srv_accept(s);
    }
    ak__srv_flush_all(s); /* output written for connections already served this round */
    s->polling = 0;
    ak__srv_sweep(s);
    if (s->draining) return s->open_count ? AK_PENDING : AK_OK;
    return AK_OK;
}

AKDEF void ak_http_server_shutdown(ak_http_server *s, int64_t grace_ms) {
    ak__server_conn *c;
    if (s->listen_fd >= 0) close(s->listen_fd);
    s->listen_fd = -1;
    if (!s->draining) s->drain_deadline = ak__srv_now(s) + (grace_ms > 0 ? grace_ms : 0);
    s->draining = 1;
    for (c = s->conns; c; c = c->next) {
        if (c->state == AK__SC_READ && !c->request_started && !c->in.len) ak__conn_close_socket(c);
        else c->close_after = 1;
    }
}

AKDEF void ak_http_server_free(ak_http_server *s) {
    if (s->listen_fd >= 0) close(s->listen_fd);
    s->listen_fd = -1;
    if (!s->rbuf) return;
    s->polling = 1; /* on_close may end writers: nothing is freed under the loop */
    ak__srv_close_all(s);
    s->polling = 0;
    while (s->conns) {
        ak__server_conn *c = s->conns;
        s->conns = c->next;
        ak__conn_free(c);
    }
    ak_free(ak__srv_alloc(s), s->rbuf, AK_POSIX_IO_BUF);
    s->rbuf = NULL;
    ak__pfd_free(ak__srv_alloc(s), &s->pfds, &s->pptrs, &s->pfd_cap);
}

#endif /* AK_ENABLE_POSIX */
