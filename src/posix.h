/* >>posix: the optional built-in networking (define AK_ENABLE_POSIX; HTTPS also needs
   AK_ENABLE_MBEDTLS and -lmbedtls -lmbedx509 -lmbedcrypto): byte streams over TCP (and TLS),
   an HTTP/1.1 client transport and a small HTTP/1.1 server loop, all on POSIX sockets and
   poll(). Nothing here is compiled without AK_ENABLE_POSIX.

   Client: fill a desc, init, and give the library &t.transport. Blocking mode (the
   default) runs each exchange inside start(); non-blocking mode returns at once and the
   host advances requests with poll(), which never waits longer than asked (a game loop):

       ak_posix_transport t;
       ak_posix_transport_desc d;
       memset(&d, 0, sizeof d);
       d.ctx = &ctx;                 allocator, clock, random source (TLS), logger
       d.nonblocking = 1;
       if (ak_posix_transport_init(&t, &d, &err) != AK_OK) ...
       ... give &t.transport to the library, then every frame:
       ak_posix_transport_poll(&t, 0);
       ak_posix_transport_free(&t);

   Connections are kept alive between requests (desc.max_idle, desc.idle_timeout_ms): the
   next request to the same scheme, host and port skips the connect and the TLS handshake.
   A kept connection the server closed meanwhile is closed when found (its socket turned
   readable), and a request that meets the close anyway (EOF or reset before a byte of the
   response) is sent again, once, on a new connection.

   Server: the handler gets each complete request and a writer. It answers at once
   (ak_http_respond) or keeps the writer and writes later, while the host keeps polling:

       static void handle(void *ud, const ak_http_server_request *req, ak_http_writer *w) {
           ak_http_respond(w, 200, "text/plain", "hi\n", 3);
       }
       sd.ctx = &ctx; sd.port = 8080; sd.handler = handle;   (host NULL = 127.0.0.1)
       ak_http_server_init(&srv, &sd, &err);
       while (running) ak_http_server_poll(&srv, 100);
       ak_http_server_shutdown(&srv, 5000);                  stop accepting, drain 5 s
       while (ak_http_server_poll(&srv, 100) == AK_PENDING) {}
       ak_http_server_free(&srv);

   Both are single-threaded: call everything from the thread that polls. Host names are
   resolved with getaddrinfo(), which blocks; numeric addresses never do. SIGPIPE is never
   raised (MSG_NOSIGNAL / SO_NOSIGPIPE). mbedTLS allocates with its own calloc/free. */

#ifdef AK_ENABLE_POSIX

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes read from a socket at a time (one buffer per request or per server). */
#ifndef AK_POSIX_IO_BUF
#define AK_POSIX_IO_BUF 16384
#endif
/* Idle keep-alive connections a client transport keeps for reuse (desc.max_idle 0 means
   this). Defining it as 0 turns connection reuse off by default. */
#ifndef AK_POSIX_MAX_IDLE
#define AK_POSIX_MAX_IDLE 4
#endif
#ifndef AK_HTTP_SERVER_MAX_CONNECTIONS
#define AK_HTTP_SERVER_MAX_CONNECTIONS 256
#endif

/* ---- byte streams --------------------------------------------------------------------------- */

/* What a stream waits for after AK_PENDING: poll its fd for these, then call again. */
#define AK_NET_WANT_READ 1
#define AK_NET_WANT_WRITE 2

typedef struct ak_net_stream ak_net_stream;

/* A non-blocking byte stream. Every call returns at once: AK_PENDING means "poll fd for
   `want`, then call again". */
typedef struct ak_net_stream_vtable {
    /* Advances connection setup (TCP connect, then a TLS handshake): AK_OK when the stream
       is usable, AK_PENDING, or AK_ERR_CONNECT / AK_ERR_TLS with the reason in err. */
    ak_result (*connect)(ak_net_stream *s, ak_error *err);
    /* Reads up to cap bytes: AK_OK with *got > 0; AK_OK with *got == 0 at the end of the
       stream; AK_PENDING; AK_ERR_CLOSED when the peer reset the connection; AK_ERR_IO/TLS. */
    ak_result (*read)(ak_net_stream *s, void *buf, size_t cap, size_t *got, ak_error *err);
    /* Writes up to len bytes: AK_OK with *sent (maybe fewer than len); AK_PENDING;
       AK_ERR_CLOSED when the peer is gone. */
    ak_result (*write)(ak_net_stream *s, const void *buf, size_t len, size_t *sent, ak_error *err);
    /* Closes the connection and frees the stream. */
    void (*close)(ak_net_stream *s);
} ak_net_stream_vtable;

struct ak_net_stream {
    const ak_net_stream_vtable *vt;
    int fd;                    /* the socket to poll; -1 while there is none */
    int want;                  /* AK_NET_WANT_* after AK_PENDING */
};

/* A TCP stream to host[0..host_len):port (resolved and connected by vt->connect: every
   address getaddrinfo returns is tried in turn, IPv4 and IPv6). alloc may be NULL. */
AKDEF ak_result ak_tcp_stream_open(const ak_allocator *alloc, const char *host, size_t host_len,
                                   uint16_t port, ak_net_stream **out, ak_error *err);

/* TLS settings (used with AK_ENABLE_MBEDTLS; https URLs fail with AK_ERR_UNSUPPORTED
   without it). Certificates and host names are verified unless explicitly disabled. */
typedef struct ak_tls_config {
    const char *ca_file;       /* PEM bundle of trusted CAs; NULL: ca_pem, else the system's */
    const char *ca_pem;        /* PEM (or DER) CA certificates in memory */
    size_t ca_pem_len;
    const char *server_name;   /* name to verify and send as SNI; NULL = the URL's host */
    /* DANGER: 1 accepts any certificate from anyone, so anyone on the path can read and
       change the traffic. For throwaway tests only; logged as a warning. */
    int dangerously_skip_verification;
} ak_tls_config;

#ifdef AK_ENABLE_MBEDTLS
/* Shared client TLS state (trusted CAs, DRBG seeded from ak_random(ctx), settings). */
typedef struct ak_tls ak_tls;
AKDEF ak_result ak_tls_new(ak_context *ctx, const ak_tls_config *cfg, ak_tls **out, ak_error *err);
AKDEF void ak_tls_free(ak_tls *tls);
/* Wraps a not yet connected stream in TLS for `host` (unless cfg->server_name is set).
   The new stream owns `inner` (closing it closes inner), also when this fails. */
AKDEF ak_result ak_tls_stream_wrap(ak_tls *tls, ak_net_stream *inner, const char *host,
                                   size_t host_len, ak_net_stream **out, ak_error *err);
#endif

/* ---- client transport ------------------------------------------------------------------------ */

typedef struct ak_posix_transport_desc {
    ak_context *ctx;           /* required: allocator, clock, random source, logger */
    int nonblocking;           /* 0: start() runs the whole exchange before returning;
                                  1: start() returns at once, poll() advances requests */
    int64_t connect_timeout_ms; /* 0 = 30000; a request's timeout_ms bounds it too */
    ak_http_limits limits;     /* response head limits; 0 fields = defaults */
    ak_tls_config tls;
    /* Keep-alive: a connection whose response ended cleanly (HTTP/1.1 or keep-alive, no
       "Connection: close" either way, a Content-Length or chunked body read to its end,
       not cancelled or stopped by the sink) waits idle for the next request to the same
       scheme, host and port, which then skips the TCP connect and the TLS handshake. */
    int max_idle;              /* idle connections kept: 0 = AK_POSIX_MAX_IDLE (4); the
                                  least recently used beyond it is closed. Negative: no
                                  reuse, every request opens its own connection and
                                  sends "Connection: close" */
    int64_t idle_timeout_ms;   /* an idle connection older than this is closed by the next
                                  start, poll or free: 0 = 30000 */
} ak_posix_transport_desc;

typedef struct ak__posix_req ak__posix_req;
typedef struct ak__posix_idle ak__posix_idle;

/* Do not move or copy it after init: transport.ud points to it. */
typedef struct ak_posix_transport {
    ak_transport transport;    /* give &t.transport to the library */
    ak_posix_transport_desc desc;
    ak__posix_req *reqs;       /* requests not yet finished and freed */
    uintptr_t next_id;         /* handles are ids, so a stale one is harmless */
    int busy;                  /* inside start/poll: finished requests are freed later */
    void *tls;                 /* ak_tls, made for the first https request */
    void *pfds;                /* poll() scratch: pollfds and the request of each */
    void **pptrs;
    size_t pfd_cap;
    ak__posix_idle *idle;      /* keep-alive connections, most recently used first */
} ak_posix_transport;

/* Sets up the transport; no I/O happens until a request starts. */
AKDEF ak_result ak_posix_transport_init(ak_posix_transport *t, const ak_posix_transport_desc *desc,
                                        ak_error *err);
/* Advances every pending request, waiting up to timeout_ms for the network (0: do not
   wait; negative: until something happens). Never blocks longer than asked, apart from
   getaddrinfo() on a host name. Sink callbacks run inside. AK_ERR_STATE when called from
   a sink callback. */
AKDEF ak_result ak_posix_transport_poll(ak_posix_transport *t, int timeout_ms);
/* Requests started and not finished or cancelled (idle connections are not requests). */
AKDEF size_t ak_posix_transport_pending(const ak_posix_transport *t);
/* Idle keep-alive connections kept for reuse. */
AKDEF size_t ak_posix_transport_idle(const ak_posix_transport *t);
/* Cancels whatever is pending (no sink calls), closes idle connections and frees
   everything. */
AKDEF void ak_posix_transport_free(ak_posix_transport *t);

/* ---- server ---------------------------------------------------------------------------------- */

/* Called for each complete request (head and body). req is valid during the call only;
   w until w->end(). Answer at once, or keep w and write later while the host keeps
   calling ak_http_server_poll (a stream). */
typedef void (*ak_http_handler)(void *ud, const ak_http_server_request *req, ak_http_writer *w);

typedef struct ak_http_server_desc {
    ak_context *ctx;           /* required */
    const char *host;          /* address to listen on; NULL = "127.0.0.1" ("::" = all) */
    int port;                  /* 0 = any free port: see ak_http_server_port */
    ak_http_handler handler;   /* required */
    /* Optional: the client of a writer the handler still holds went away (or the server
       is shutting down). Later writer calls return AK_ERR_CLOSED; call w->end() to release
       it. Not called when a writer call already returned AK_ERR_CLOSED or AK_ERR_LIMIT. */
    void (*on_close)(void *ud, ak_http_writer *w);
    void *ud;                  /* passed to handler and on_close */
    ak_http_limits limits;     /* request limits; 0 fields = defaults */
    size_t max_connections;    /* 0 = AK_HTTP_SERVER_MAX_CONNECTIONS; beyond it: 503 */
    size_t max_output_bytes;   /* unsent bytes per connection before writes fail (a client
                                  that does not read): 0 = 4 MiB */
    int64_t header_timeout_ms; /* a request head must arrive within it (slowloris): 0 = 10 s */
    int64_t body_timeout_ms;   /* then its body within this: 0 = 60 s */
    int64_t idle_timeout_ms;   /* keep-alive connection without a request: 0 = 60 s */
    int64_t write_timeout_ms;  /* unsent output making no progress: 0 = 30 s */
} ak_http_server_desc;

typedef struct ak__server_conn ak__server_conn;

typedef struct ak_http_server {
    ak_http_server_desc desc;
    int listen_fd;             /* -1 once shut down */
    int port;                  /* the bound port */
    ak__server_conn *conns;
    size_t open_count;         /* connections with a socket */
    int polling;               /* inside poll: closed connections are freed at its end */
    int draining;              /* shutdown called */
    int64_t drain_deadline;
    int64_t accept_pause_until; /* out of file descriptors: accept again later */
    char *rbuf;                /* AK_POSIX_IO_BUF bytes */
    void *pfds;                /* poll() scratch: pollfds and the connection of each */
    void **pptrs;
    size_t pfd_cap;
    size_t round;              /* rotates which connection is served first */
} ak_http_server;

/* Binds and listens. Fails with AK_ERR_CONNECT (address in use, cannot resolve...). */
AKDEF ak_result ak_http_server_init(ak_http_server *s, const ak_http_server_desc *desc, ak_error *err);
/* The port the server listens on (the chosen one when desc.port was 0). */
AKDEF int ak_http_server_port(const ak_http_server *s);
/* Accepts, reads, calls handlers, writes, enforces timeouts; waits up to timeout_ms
   (negative: until something happens). Returns AK_OK; after ak_http_server_shutdown,
   AK_PENDING while connections remain and AK_OK once all are closed; AK_ERR_IO if poll()
   itself fails. Not reentrant: do not call it from a handler. */
AKDEF ak_result ak_http_server_poll(ak_http_server *s, int timeout_ms);
/* Graceful shutdown: stops accepting, closes idle connections, lets requests in progress
   finish (closing each connection after its response) for up to grace_ms, then closes
   the rest (on_close for held writers). Keep calling poll until it returns AK_OK. */
AKDEF void ak_http_server_shutdown(ak_http_server *s, int64_t grace_ms);
/* Open connections. */
AKDEF size_t ak_http_server_connections(const ak_http_server *s);
/* Unsent output bytes of a writer handed out by this server (to slow down a producer). */
AKDEF size_t ak_http_server_pending_output(const ak_http_writer *w);
/* Closes everything (on_close for writers still held) and frees everything; writers
   handed out are invalid afterwards. */
AKDEF void ak_http_server_free(ak_http_server *s);

#ifdef __cplusplus
}
#endif

#endif /* AK_ENABLE_POSIX */
