/* >>serve: Genkit's agent HTTP protocol, both ends.

   Server: ak_serve answers POST <prefix>/<agent>, <prefix>/<agent>/getSnapshot and
   <prefix>/<agent>/abort with Genkit's {"data","init"} envelope, as a JSON body or, when
   the request's Accept has text/event-stream or the query has stream=true, as frames
   `data: {"message": chunk}` ending with `data: {"result": output}` or an `error:` frame
   (reference genkit-agents.md §3). It works with any HTTP server through ak_http_writer:
   hand it each complete request, then keep calling ak_serve_pump so streaming and
   background turns advance. The built-in POSIX server (AK_ENABLE_POSIX) is one such host.

   Client: ak_remote_agent speaks the same protocol over an ak_transport and gives you the
   chat API of a local agent (ak_chat_* on a backend), tracking snapshots, client state,
   custom state (customPatch applied), messages and artifacts like Genkit's remoteAgent(). */

#ifdef __cplusplus
extern "C" {
#endif

#ifndef AK_SERVE_MAX_BODY
#define AK_SERVE_MAX_BODY ((size_t)1 << 20)
#endif
#ifndef AK_SERVE_MAX_DEPTH
#define AK_SERVE_MAX_DEPTH 64
#endif

/* A complete HTTP request as the host server received it. */
typedef struct ak_serve_request {
    const char *method;
    const char *path;            /* without the query */
    const char *query;           /* after '?', or NULL */
    const ak_header *headers;
    size_t header_count;
    const char *body;
    size_t body_len;
} ak_serve_request;

/* Case-insensitive header lookup; NULL when absent. */
AKDEF const char *ak_serve_header(const ak_serve_request *req, const char *name);

/* Runs before any agent code. Reject with an error status (UNAUTHENTICATED,
   PERMISSION_DENIED, ...) and message in err, or accept: optionally build a context value in
   d (e.g. {"auth":{"uid":"alice"}}) that stores and tools receive. */
typedef ak_result (*ak_serve_auth_fn)(void *ud, const ak_serve_request *req, ak_json_doc *d,
                                      ak_json **context, ak_error *err);

typedef struct ak_serve_desc {
    ak_agent *const *agents;     /* served by their names */
    size_t agent_count;
    const char *prefixes[4];     /* route prefixes; default {"/agents", "/api"} */
    ak_serve_auth_fn auth;
    void *auth_ud;
    size_t max_body;             /* default AK_SERVE_MAX_BODY; larger bodies get 413 */
    uint32_t max_depth;          /* JSON nesting limit of request bodies (AK_SERVE_MAX_DEPTH) */
    const char *cors_origin;     /* NULL: no CORS headers; else Access-Control-Allow-Origin */
    int no_health;               /* 1: do not answer GET /healthz */
} ak_serve_desc;

typedef struct ak__exchange ak__exchange;

typedef struct ak_serve {
    ak_context *ctx;
    ak_serve_desc desc;
    ak__exchange *live;          /* requests still being answered */
    size_t served, failed;       /* statistics */
} ak_serve;

AKDEF ak_result ak_serve_init(ak_serve *s, ak_context *ctx, const ak_serve_desc *desc);
/* Stops answering: in-flight exchanges get an error frame and end; background turns stay
   with their agents. */
AKDEF void ak_serve_free(ak_serve *s);
/* Handles one request. Everything the request needs is copied; w must stay valid until its
   end() is called (at once, or from a later ak_serve_pump). AK_OK: taken (answered or in
   progress); AK_ERR_NOT_FOUND: not one of ours and nothing was written (answer it yourself). */
AKDEF ak_result ak_serve_handle(ak_serve *s, const ak_serve_request *req, ak_http_writer *w);
/* Advances streaming turns and the agents' background turns; waits up to wait_ms for model
   I/O when there is nothing else to do. Returns AK_PENDING while exchanges or background
   (detached) turns are in flight, AK_OK when there is nothing to pump. */
AKDEF ak_result ak_serve_pump(ak_serve *s, int wait_ms);
/* Tells the server w's client went away: its turn keeps running (as Genkit's does) but
   nothing more is written to w, and w->end is called once. */
AKDEF void ak_serve_abandon(ak_serve *s, ak_http_writer *w);

/* ---- remote agents -------------------------------------------------------------------- */

typedef struct ak_remote_desc {
    const char *url;             /* e.g. http://127.0.0.1:3400/api/chatAgent */
    const char *get_snapshot_url; /* NULL = url + "/getSnapshot" */
    const char *abort_url;       /* NULL = url + "/abort" */
    const ak_header *headers;    /* sent with every request (auth) */
    size_t header_count;
    ak_transport *transport;     /* required */
    int64_t timeout_ms;          /* per request; 0 = 300000 */
} ak_remote_desc;

typedef struct ak_remote_agent {
    ak_context *ctx;
    ak_remote_desc desc;
    ak_chat_backend backend;     /* give to ak_chat_init_backend / ak_chat_load_backend */
    char *urls;                  /* owned copies of the three URLs */
    size_t urls_size;
    const char *turn_url, *snapshot_url, *abort_url;
} ak_remote_agent;

/* Checks desc (the URL must parse: AK_ERR_INVALID_ARGUMENT with the reason in err). */
AKDEF ak_result ak_remote_agent_init(ak_remote_agent *ra, ak_context *ctx, const ak_remote_desc *desc,
                                     ak_error *err);
AKDEF void ak_remote_agent_free(ak_remote_agent *ra);
/* Shorthands: a chat over the remote agent; getSnapshot; abort. */
AKDEF ak_result ak_remote_chat(ak_chat *c, ak_remote_agent *ra, const ak_json *init, ak_error *err);
AKDEF ak_result ak_remote_get_snapshot(ak_remote_agent *ra, const char *snapshot_id, const char *session_id,
                                       ak_json_doc *d, ak_json **out, ak_error *err);
AKDEF ak_result ak_remote_abort(ak_remote_agent *ra, const char *snapshot_id, const char **previous,
                                ak_error *err);

#ifdef __cplusplus
}
#endif
