/* >>http: the transport interface (how the library reaches the network) and the response
   writer interface (how a server answers); HTTP/1.1 framing and the optional built-in
   POSIX/mbedTLS networking build on them. */

#ifdef __cplusplus
extern "C" {
#endif

/* One header line. Strings are NUL-terminated and only valid during the call they are
   passed to, unless a function says otherwise. */
typedef struct ak_header {
    const char *name;
    const char *value;
} ak_header;

/* What the library asks a transport to send. Everything stays valid until the request
   completes or is cancelled. */
typedef struct ak_http_request {
    const char *method;        /* "POST", "GET", ... */
    const char *url;           /* absolute: http://host[:port]/path?query or https://... */
    const ak_header *headers;
    size_t header_count;
    const char *body;
    size_t body_len;
    int64_t timeout_ms;        /* whole request, 0 = none; blocking transports must honour it,
                                  the library also enforces it through the clock hook */
    int streaming;             /* 1: the body is an event stream the caller consumes as it
                                  arrives; do not buffer it */
} ak_http_request;

/* The sink: where a transport pushes the response. Order: on_status once, on_header for
   each header (name and value are slices: read name_len / value_len bytes, do not expect a
   NUL), on_body any number of times (any split), then on_done exactly once. If a
   callback returns anything but AK_OK the library has stopped listening: the transport
   must release the request and call nothing more on this sink. */
typedef struct ak_http_sink ak_http_sink;
struct ak_http_sink {
    ak_result (*on_status)(ak_http_sink *s, int status);
    ak_result (*on_header)(ak_http_sink *s, const char *name, size_t name_len,
                           const char *value, size_t value_len);
    ak_result (*on_body)(ak_http_sink *s, const char *data, size_t len);
    /* rc AK_OK: the body is complete. Otherwise the request failed (AK_ERR_CONNECT,
       AK_ERR_TLS, AK_ERR_CLOSED, AK_ERR_TRUNCATED, AK_ERR_TIMEOUT, ...) after whatever
       was already delivered; msg (may be NULL) says why. */
    void (*on_done)(ak_http_sink *s, ak_result rc, const char *msg);
    void *ud;
};

/* A transport: plug in libcurl, esp_http_client, WinHTTP, a game engine's HTTP module, the
   built-in POSIX one, or the replay transport of the tests.

   start() may complete the whole exchange before it returns (a blocking transport: every
   sink call happens inside start) or return at once and feed the sink later, from poll()
   or from the host's own event loop, on the thread that pumps the library. It stores a
   per-request handle in *handle for cancel(). A start() that fails returns an error and
   calls nothing on the sink. */
typedef struct ak_transport {
    ak_result (*start)(void *ud, const ak_http_request *req, ak_http_sink *sink, void **handle);
    /* Stops a started request. Afterwards the transport never touches its sink again.
       Cancelling a completed request is a no-op. */
    void (*cancel)(void *ud, void *handle);
    /* Optional: advance pending requests for up to timeout_ms (0 = do not wait). Transports
       driven by the host's loop leave it NULL. */
    ak_result (*poll)(void *ud, int timeout_ms);
    void *ud;
} ak_transport;

/* How a server answers a request, implemented by the HTTP server in use (the built-in POSIX
   loop, civetweb, an engine's server). start() sends the status line and headers; write()
   sends body bytes, as they are produced (chunked when no Content-Length was given); end()
   finishes the response. Any call may return AK_ERR_CLOSED when the client has gone; the
   writer stays valid until end() even then. */
typedef struct ak_http_writer {
    ak_result (*start)(void *ud, int status, const ak_header *headers, size_t header_count);
    ak_result (*write)(void *ud, const char *data, size_t len);
    ak_result (*end)(void *ud);
    void *ud;
} ak_http_writer;


/* ---------------------------------------------------------------------------------------
   HTTP/1.1 framing: URLs, the client request head, an incremental response parser, an
   incremental request parser and a response framer for servers. Pure byte processing (no
   sockets, usable freestanding); the POSIX transport and server are built on it.

   Limits guard against hostile peers. Every limit has a macro default and a runtime field
   in ak_http_limits (0 there = the macro).
   --------------------------------------------------------------------------------------- */

/* Bytes of the start line plus all header lines (and of a chunked body's trailers). */
#ifndef AK_HTTP_MAX_HEADER_BYTES
#define AK_HTTP_MAX_HEADER_BYTES 32768
#endif
/* Number of header lines in one message. */
#ifndef AK_HTTP_MAX_HEADERS
#define AK_HTTP_MAX_HEADERS 100
#endif
/* Bytes of a request target (path and query) a server accepts: longer is 414. */
#ifndef AK_HTTP_MAX_TARGET
#define AK_HTTP_MAX_TARGET 8192
#endif
/* Bytes of a request body a server accepts: longer is 413. */
#ifndef AK_HTTP_MAX_BODY
#define AK_HTTP_MAX_BODY (8u * 1024u * 1024u)
#endif
/* Bytes of one chunk-size line (size and extensions; extensions are skipped, not stored). */
#ifndef AK_HTTP_MAX_CHUNK_LINE
#define AK_HTTP_MAX_CHUNK_LINE 4096
#endif
/* Interim (1xx) responses skipped before a final one; more is a hostile server. */
#ifndef AK_HTTP_MAX_INTERIM
#define AK_HTTP_MAX_INTERIM 8
#endif

typedef struct ak_http_limits {
    size_t max_header_bytes;   /* 0 = AK_HTTP_MAX_HEADER_BYTES */
    size_t max_headers;        /* 0 = AK_HTTP_MAX_HEADERS */
    size_t max_target;         /* 0 = AK_HTTP_MAX_TARGET (request parser only) */
    size_t max_body;           /* 0 = AK_HTTP_MAX_BODY (request parser only) */
} ak_http_limits;

/* Standard reason phrase of a status code ("Not Found"); "" when it has none. */
AKDEF const char *ak_http_status_reason(int status);
/* Value of the first header called `name` (ASCII case-insensitive), or NULL. headers may
   be NULL when count is 0. */
AKDEF const char *ak_http_header_get(const ak_header *headers, size_t count, const char *name);
/* 1 when the comma-separated header value contains `token` (case-insensitive), e.g.
   ak_http_has_token("keep-alive, Upgrade", "upgrade"). value may be NULL (0). */
AKDEF int ak_http_has_token(const char *value, const char *token);

/* ---- URLs ------------------------------------------------------------------------------ */

/* An absolute http:// or https:// URL split into slices of the parsed text (nothing is
   copied: the slices live as long as the text). */
typedef struct ak_url {
    int https;                 /* 1 for https */
    const char *host;          /* host name or address; an IPv6 literal without brackets */
    size_t host_len;
    int ipv6;                  /* the host was a [v6] literal */
    uint16_t port;             /* the explicit port, else 80 or 443 */
    int port_explicit;
    const char *path;          /* from the first '/'; empty (length 0) means "/" */
    size_t path_len;
    const char *query;         /* after '?', without it; NULL when there is no '?' */
    size_t query_len;
} ak_url;

/* Parses url[0..len). Accepts http and https (any case), a host name, an IPv4 address or a
   [v6] literal, an optional port 1..65535, a path and a query of printable ASCII with valid
   %XX escapes; a #fragment is dropped. Rejects user:password@ (credentials do not belong
   in URLs), control bytes, spaces and non-ASCII with AK_ERR_INVALID_ARGUMENT and a message
   that names the problem. */
AKDEF ak_result ak_url_parse(const char *url, size_t len, ak_url *out, ak_error *err);

/* ---- client side: request head and response parser -------------------------------------- */

/* Appends the head of `req` to `out`: request line, Host (unless req has one), req's
   headers, Content-Length (when there is a body or the method usually has one) and
   "Connection: close" when close_connection is set and req has no Connection header.
   The body is not copied: send req->body after the head. Header names must be tokens and
   values free of CR, LF and NUL; Content-Length and Transfer-Encoding belong to the
   writer and are rejected (AK_ERR_INVALID_ARGUMENT). On error `out` is left as it was. */
AKDEF ak_result ak_http_write_request_head(ak_buf *out, const ak_http_request *req,
                                           const ak_url *url, int close_connection,
                                           ak_error *err);

/* Where the parsers below are in a head and in a body. Private: set by init, never touched
   by callers. */
typedef struct ak_http_head_state {
    size_t line_bytes;         /* bytes of the line being read */
    size_t lines;              /* complete lines so far */
    size_t skipped;            /* blank lines skipped before a request line */
    int why;                   /* which limit a refused head hit */
} ak_http_head_state;

typedef struct ak_http_body_state {
    int mode;                  /* none, Content-Length, chunked, until close */
    int chunk_state;
    int chunk_digits;
    uint64_t remaining;        /* Content-Length bytes left, or of the current chunk */
    uint64_t total;            /* body bytes decoded so far */
    size_t line_bytes;         /* of the chunk-size line being read */
    size_t trailer_bytes;
} ak_http_body_state;

/* Incremental HTTP/1.x response parser: feed it bytes as they arrive, split anywhere; it
   calls sink->on_status (final status only: 1xx responses are skipped), on_header for each
   header (name and value NUL-terminated, value trimmed) and on_body with decoded body bytes
   (chunked framing removed, never buffered). It never calls on_done: the owner of the
   connection does, with the result. Zero-initialised state is not valid: call init. */
typedef struct ak_http_response_parser {
    ak_http_sink *sink;
    ak_http_limits limits;
    ak_buf head;               /* the head being collected (bounded by max_header_bytes) */
    int state;
    ak_result error;           /* after a failure: what every later call returns */
    int head_request;          /* the request was HEAD: no body whatever the headers say */
    int status;                /* the final status, once known */
    int interim;               /* 1xx responses skipped so far */
    int keep_alive;            /* after AK_OK: the connection could carry another request */
    int sink_stopped;          /* a sink callback returned an error: it is no longer called */
    uint64_t body_bytes;       /* decoded body bytes delivered so far */
    ak_http_head_state hs;
    ak_http_body_state bs;
} ak_http_response_parser;

/* head_request: the request was HEAD (the response has no body). limits may be NULL. */
AKDEF void ak_http_response_parser_init(ak_http_response_parser *p, ak_http_sink *sink,
                                        const ak_allocator *alloc, const ak_http_limits *limits,
                                        int head_request);
/* Consumes data[0..len); *consumed (may be NULL) says how much (after an error: how far it
   got, which depends on the split). Returns AK_PENDING when
   the response needs more bytes, AK_OK when it is complete (bytes after it are not
   consumed), AK_ERR_HTTP for a malformed or over-limit response, AK_ERR_OUT_OF_MEMORY, or
   the error a sink callback returned (then p->sink_stopped is 1). After an error, further
   calls return the same error. */
AKDEF ak_result ak_http_response_parser_feed(ak_http_response_parser *p, const char *data,
                                             size_t len, size_t *consumed, ak_error *err);
/* The connection ended (clean EOF). AK_OK when that completes the response (a body
   delimited by the close, or a response already complete); AK_ERR_TRUNCATED when the head,
   a Content-Length body or a chunked body was cut short; AK_ERR_CLOSED when not a byte of
   a response arrived. */
AKDEF ak_result ak_http_response_parser_eof(ak_http_response_parser *p, ak_error *err);
AKDEF void ak_http_response_parser_free(ak_http_response_parser *p);

/* ---- server side: request parser and response framer ------------------------------------ */

/* A complete request as a server hands it to its handler. Everything is NUL-terminated and
   owned by the parser: valid until the parser is reset or freed (for a handler: during the
   call; copy what you keep). */
typedef struct ak_http_server_request {
    const char *method;        /* "GET", "POST", ... (case-sensitive, as sent) */
    const char *path;          /* "/agents/x" as sent (percent-escapes not decoded) */
    const char *query;         /* "a=1&b=2" without '?'; "" when absent */
    const ak_header *headers;
    size_t header_count;
    const char *body;          /* "" when there is none; NUL-terminated beyond body_len */
    size_t body_len;
    int version_minor;         /* HTTP/1.0 -> 0, HTTP/1.1 -> 1 */
    int keep_alive;            /* the client allows another request on the connection */
} ak_http_server_request;

/* Value of header `name` of a request (case-insensitive), or NULL. */
AKDEF const char *ak_http_server_request_header(const ak_http_server_request *req,
                                                const char *name);

/* Incremental HTTP/1.x request parser. Collects the head (request line, headers) and the
   body (Content-Length or chunked) of one request, enforcing the limits. When feed fails,
   error_status is the response to send before closing: 400 (malformed; also a missing or
   repeated Host, Content-Length with Transfer-Encoding), 413 (body too large), 414 (target
   too long), 431 (headers too large or too many), 501 (unknown transfer coding), 505
   (not HTTP/1.x), 503 (out of memory). */
typedef struct ak_http_request_parser {
    ak_http_limits limits;
    int state;
    ak_result error;           /* after a failure: what every later call returns */
    int error_status;          /* after a failure: the status to answer with */
    int expect_continue;       /* head complete, body expected, client sent Expect: 100-continue */
    ak_buf head;
    ak_buf body;
    ak_header *headers;        /* header_cap entries, from the allocator */
    size_t header_cap;
    ak_http_head_state hs;
    ak_http_body_state bs;
    ak_http_server_request req;
} ak_http_request_parser;

/* limits may be NULL (defaults). alloc may be NULL (default allocator). */
AKDEF void ak_http_request_parser_init(ak_http_request_parser *p, const ak_allocator *alloc,
                                       const ak_http_limits *limits);
/* Consumes data[0..len) (*consumed says how much; may be NULL). AK_PENDING: need more;
   AK_OK: p->req is complete (bytes after it, a pipelined request, are not consumed);
   after an error *consumed is how far it got, which depends on the split;
   AK_ERR_HTTP / AK_ERR_LIMIT / AK_ERR_UNSUPPORTED / AK_ERR_OUT_OF_MEMORY: answer with
   p->error_status and close. Later calls repeat the result until reset. */
AKDEF ak_result ak_http_request_parser_feed(ak_http_request_parser *p, const char *data,
                                            size_t len, size_t *consumed, ak_error *err);
/* Forgets the request (keeping memory) so the next one on the connection can be parsed. */
AKDEF void ak_http_request_parser_reset(ak_http_request_parser *p);
AKDEF void ak_http_request_parser_free(ak_http_request_parser *p);

/* Frames one response into bytes: status line and headers, then the body with
   Content-Length (when the headers carry one), chunked (HTTP/1.1 otherwise), or delimited
   by closing the connection (HTTP/1.0). No body for HEAD, 1xx, 204 and 304. It decides
   whether the connection survives the response: keep_alive after end(). */
typedef struct ak_http_response_framer {
    int state;                 /* 0 before start, 1 sending the body, 2 ended */
    int body_mode;
    uint64_t remaining;        /* Content-Length bytes still owed */
    int version_minor;
    int keep_alive;            /* in: the request allows it; out: the connection stays */
    int head_request;
} ak_http_response_framer;

/* Prepares a framer answering `req` (its version, keep-alive and method). */
AKDEF void ak_http_framer_init(ak_http_response_framer *f, const ak_http_server_request *req);
/* Appends the status line and headers. status must be 200..999 (interim 1xx answers are
   the server's business); names must be tokens, values free of CR/LF/NUL; Transfer-Encoding
   is the framer's to choose and is rejected; a Content-Length header fixes the body length
   (not allowed on 204); a Connection header containing "close" ends keep-alive. */
AKDEF ak_result ak_http_framer_start(ak_http_response_framer *f, ak_buf *out, int status,
                                     const ak_header *headers, size_t count, ak_error *err);
/* Appends body bytes in the chosen framing (dropped for bodiless responses). More bytes
   than a Content-Length announced is AK_ERR_INVALID_ARGUMENT. */
AKDEF ak_result ak_http_framer_write(ak_http_response_framer *f, ak_buf *out, const char *data,
                                     size_t len, ak_error *err);
/* Appends the end of the body (the last chunk). A Content-Length body left short is
   AK_ERR_INVALID_ARGUMENT, and the connection must then be closed (keep_alive is 0). */
AKDEF ak_result ak_http_framer_end(ak_http_response_framer *f, ak_buf *out, ak_error *err);

/* Answers with a whole body in one go through any writer: start (with Content-Type when
   content_type is non-NULL, and Content-Length), write, end. Returns the first error. */
AKDEF ak_result ak_http_respond(ak_http_writer *w, int status, const char *content_type,
                                const char *body, size_t len);

#ifdef __cplusplus
}
#endif
