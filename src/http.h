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
   each header, on_body any number of times (any split), then on_done exactly once. If a
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

#ifdef __cplusplus
}
#endif
