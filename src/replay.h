/* >>replay: a scripted transport for tests. It answers requests with queued responses
   (status, headers, body cut into chunks of a chosen size) and injects the faults real
   networks produce: refused connections, resets mid-body, bodies that end early, delays.
   It records every request for assertions.

       ak_replay rp;
       ak_replay_response res;
       ak_transport t;
       ak_replay_init(&rp, &ctx, AK_REPLAY_SYNC);
       memset(&res, 0, sizeof res);
       res.body = "data: {\"x\":1}\n\ndata: [DONE]\n\n";   (body_len 0: a C string)
       res.chunk = 7;                                      (seven bytes per on_body)
       ak_replay_add(&rp, &res, NULL);
       t = ak_replay_transport(&rp);
       ... code under test calls t.start(t.ud, &req, &sink, &handle) ...
       assert(strcmp(ak_replay_request(&rp, 0)->url, "http://x/v1/chat") == 0);
       ak_replay_free(&rp);

   Thread safety: one thread, like the context. Callback safety: sink callbacks may start
   new requests and cancel any request, but must not poll or free the replay. */

#include "base.h"
#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ak_replay_fault {
    AK_REPLAY_FAULT_NONE = 0,
    AK_REPLAY_FAULT_REFUSE,    /* start() fails with AK_ERR_CONNECT; the sink hears nothing */
    AK_REPLAY_FAULT_CONNECT,   /* on_done(AK_ERR_CONNECT) instead of a status (an async
                                  transport's failed connect) */
    AK_REPLAY_FAULT_RESET,     /* fault_at body bytes, then on_done(AK_ERR_CLOSED) */
    AK_REPLAY_FAULT_TRUNCATE   /* fault_at body bytes, then on_done(AK_OK): the server closed
                                  cleanly too early; only missing end markers tell */
} ak_replay_fault;

typedef enum ak_replay_mode {
    AK_REPLAY_SYNC = 0,        /* a blocking transport: start() delivers the whole response
                                  before it returns; poll is NULL */
    AK_REPLAY_PUMPED           /* start() returns at once; each poll() call delivers at most
                                  one step: the status with all headers, one body chunk, or
                                  on_done */
} ak_replay_mode;

/* A scripted response. ak_replay_add copies everything it points to. */
typedef struct ak_replay_response {
    const char *match;         /* answers the first request whose URL contains this; NULL =
                                  any request. Responses are taken in the order added. */
    int status;                /* 0 = 200 */
    const ak_header *headers;
    size_t header_count;
    const char *body;          /* NULL = empty */
    size_t body_len;           /* 0 = body is a NUL-terminated string */
    size_t chunk;              /* bytes per on_body call; 0 = the whole body in one call */
    int64_t delay_ms;          /* wait before the status, on the context's monotonic clock.
                                  PUMPED: nothing is delivered before it has passed. SYNC:
                                  nothing waits (a fake clock could not move inside start);
                                  a delay of at least the request's timeout_ms (when set)
                                  ends the request with on_done(AK_ERR_TIMEOUT) */
    ak_replay_fault fault;
    size_t fault_at;           /* RESET / TRUNCATE: body bytes delivered first (at most the
                                  body length) */
} ak_replay_response;

typedef struct ak_replay_script ak_replay_script;
typedef struct ak_replay_call ak_replay_call;

typedef struct ak_replay {
    ak_context *ctx;
    ak_replay_mode mode;
    size_t unmatched;          /* requests that found no scripted response */
    /* internal */
    ak_arena arena;            /* copies of responses and requests */
    ak_replay_script *scripts, *scripts_tail;
    ak_replay_call *calls, *calls_tail;
    ak_replay_call *cursor;    /* the call poll() served last (round robin) */
    size_t call_count;
} ak_replay;

/* Sets up r on ctx (its allocator and monotonic clock; ctx must outlive r). Never
   allocates. AK_ERR_INVALID_ARGUMENT if r or ctx is NULL. */
AKDEF ak_result ak_replay_init(ak_replay *r, ak_context *ctx, ak_replay_mode mode);

/* Queues a copy of res. AK_ERR_INVALID_ARGUMENT for a NULL argument, headers with NULL
   strings or an unknown fault; AK_ERR_OUT_OF_MEMORY. */
AKDEF ak_result ak_replay_add(ak_replay *r, const ak_replay_response *res, ak_error *err);

/* The transport to hand to the code under test; valid as long as r. Its start() records a
   deep copy of the request, then answers it with the first matching response; with none
   left it returns AK_ERR_NOT_FOUND (and counts r->unmatched). A start() that fails
   calls nothing on the sink and stores NULL in *handle. cancel() works at any time, also
   from inside sink callbacks, and is a no-op for finished requests or unknown handles.
   Once a sink callback returns non-AK_OK the request is dropped silently. */
AKDEF ak_transport ak_replay_transport(ak_replay *r);

/* Requests received so far, in order (also the refused and unmatched ones). The copy is
   owned by r: strings and body are NUL-terminated. NULL when index is out of range. */
AKDEF size_t ak_replay_request_count(const ak_replay *r);
AKDEF const ak_http_request *ak_replay_request(const ak_replay *r, size_t index);

/* Requests started and not yet finished, cancelled or dropped. */
AKDEF size_t ak_replay_active(const ak_replay *r);
/* Scripted responses no request has taken yet. */
AKDEF size_t ak_replay_unused(const ak_replay *r);

/* Frees every copy r made. Requests still active are dropped without a call to their sink.
   r may be NULL. */
AKDEF void ak_replay_free(ak_replay *r);

#ifdef __cplusplus
}
#endif
