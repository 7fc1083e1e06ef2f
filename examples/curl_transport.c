/* curl_transport.c - plugging in your own HTTP stack: an ak_transport over libcurl, in the
   two shapes the library supports. Blocking (curl's easy interface): the whole exchange
   runs inside start(). Pumped (the multi interface): start() returns at once and poll()
   moves every request along without waiting longer than asked, for game loops and GUIs.
   Copy the transport half into your program; main() shows both against a served agent.

   cc -std=c99 -O2 -I.. curl_transport.c -o curl_transport -lcurl -lm
   (Debian/Ubuntu: apt install libcurl4-openssl-dev)

   ./serve &  then  ./curl_transport http://127.0.0.1:3400/api/assistant
   (or build/akdriver serve --port 3400 and .../api/chatAgent). The same transport reaches
   model providers: ak_http_model_from_env(&model, &ctx, &t.transport, &err). libcurl
   brings HTTPS with the system's CA store, proxies (https_proxy) and HTTP/2.
   The rules every transport follows are in agentkit.h, "Plugging in a transport". */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the transport ----------------------------------------------------------------- */

typedef struct curl_req curl_req;
struct curl_req {
    CURL *easy;
    struct curl_slist *headers;
    ak_http_sink *sink;
    uintptr_t id;              /* what the library holds as the handle: a stale one is harmless */
    int status;                /* of the response being read (1xx ones are skipped) */
    int in_body;               /* body bytes arrived: later header lines are trailers */
    int stopped;               /* a sink callback refused, or cancelled: call the sink no more */
    ak_result failed;          /* our own reason to abort the transfer, else AK_OK */
    char error[CURL_ERROR_SIZE];
    curl_req *next;
};

typedef struct curl_transport {
    ak_transport transport;    /* give &t.transport to the library */
    CURLM *multi;              /* NULL: blocking, one easy handle per request */
    curl_req *reqs;            /* pumped: the requests in flight */
    uintptr_t next_id;
    int performing;            /* inside curl_multi_perform: a cancel only marks the request */
    unsigned long events;      /* sink calls made so far (did poll make progress?) */
} curl_transport;

/* Status lines start every response ("HTTP/1.1 200 OK", "HTTP/2 200"): 3 digits after
   the first space, or -1. */
static int parse_status(const char *line, size_t len) {
    const char *sp = (const char *)memchr(line, ' ', len);
    size_t at = sp ? (size_t)(sp - line) + 1 : len;
    int i, status = 0;
    if (len < at + 3 || memcmp(line, "HTTP/", 5) != 0) return -1;
    for (i = 0; i < 3; i++) {
        if (line[at + i] < '0' || line[at + i] > '9') return -1;
        status = status * 10 + (line[at + i] - '0');
    }
    return status;
}

/* Ends the transfer from inside a curl callback (returning a short count does that),
   either because the library stopped listening (then the sink hears nothing more, not
   even on_done) or because the response is broken (on_done reports it). */
static size_t stop_listening(curl_req *r) {
    r->stopped = 1;
    return 0;
}
static size_t reject_response(curl_req *r, ak_result why) {
    r->failed = why;
    return 0;
}

/* curl calls this for every header line, status lines and the blank end line included. */
static size_t on_header_line(char *line, size_t size, size_t count, void *ud) {
    curl_req *r = (curl_req *)ud;
    size_t len = size * count, name_len;
    const char *colon, *value, *end;
    if (r->stopped) return 0;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        if ((r->status = parse_status(line, len)) < 100) return reject_response(r, AK_ERR_HTTP);
        if (r->status < 200) return size * count; /* interim (100 Continue...): the real one follows */
        return r->sink->on_status(r->sink, r->status) == AK_OK ? size * count : stop_listening(r);
    }
    if (!len || r->status < 200 || r->in_body || !(colon = (const char *)memchr(line, ':', len)))
        return size * count; /* the end of the head, trailers, or a line that is no header */
    name_len = (size_t)(colon - line);
    for (value = colon + 1, end = line + len; value < end && (*value == ' ' || *value == '\t'); value++) {
    }
    while (end > value && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (r->sink->on_header(r->sink, line, name_len, value, (size_t)(end - value)) != AK_OK) return stop_listening(r);
    return size * count;
}

/* curl calls this with body bytes as they arrive (already de-chunked and decompressed). */
static size_t on_body_bytes(char *data, size_t size, size_t count, void *ud) {
    curl_req *r = (curl_req *)ud;
    if (r->stopped) return 0;
    r->in_body = 1;
    if (r->sink->on_body(r->sink, data, size * count) != AK_OK) return stop_listening(r);
    return size * count;
}

/* curl's outcome as the library's. */
static ak_result result_of(CURLcode code) {
    switch (code) {
    case CURLE_OK: return AK_OK;
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY: case CURLE_COULDNT_CONNECT: return AK_ERR_CONNECT;
    case CURLE_OPERATION_TIMEDOUT: return AK_ERR_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CACERT_BADFILE: return AK_ERR_TLS;
    case CURLE_PARTIAL_FILE: return AK_ERR_TRUNCATED;
    case CURLE_GOT_NOTHING: case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: return AK_ERR_CLOSED;
    default: return AK_ERR_IO;
    }
}

/* The request is over: tell the sink exactly once, unless it stopped listening. */
static void finish(curl_transport *t, curl_req *r, CURLcode code) {
    ak_result rc = r->failed != AK_OK ? r->failed : result_of(code);
    if (r->stopped) return;
    t->events++;
    r->sink->on_done(r->sink, rc, rc == AK_OK ? NULL : r->failed != AK_OK ? "malformed response" :
                                                 r->error[0] ? r->error : curl_easy_strerror(code));
}

static void request_free(curl_req *r) {
    curl_slist_free_all(r->headers);
    if (r->easy) curl_easy_cleanup(r->easy);
    free(r);
}

/* Appends one line to the request's header list: "Name: value", "Name;" for an empty value
   (curl's spelling), or "Name:" to stop curl from sending a header of its own. */
static ak_result add_header_line(curl_req *r, const char *name, const char *value) {
    struct curl_slist *more;
    char line[4096];
    int n = !value ? snprintf(line, sizeof line, "%s:", name)
            : *value ? snprintf(line, sizeof line, "%s: %s", name, value)
                     : snprintf(line, sizeof line, "%s;", name);
    if (n < 0 || (size_t)n >= sizeof line) return AK_ERR_LIMIT;
    if (!(more = curl_slist_append(r->headers, line))) return AK_ERR_OUT_OF_MEMORY;
    r->headers = more;
    return AK_OK;
}

/* Only http and https, whatever the URL says (libcurl speaks many more protocols). */
static void allow_http_only(CURL *easy) {
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}

/* An easy handle set up for req; nothing is sent yet. */
static ak_result request_new(const ak_http_request *req, ak_http_sink *sink, curl_req **out) {
    curl_req *r = (curl_req *)calloc(1, sizeof *r);
    ak_result rc = AK_OK;
    size_t i;
    *out = NULL;
    if (!r) return AK_ERR_OUT_OF_MEMORY;
    r->sink = sink;
    if (!(r->easy = curl_easy_init())) rc = AK_ERR_OUT_OF_MEMORY;
    for (i = 0; rc == AK_OK && i < req->header_count; i++) rc = add_header_line(r, req->headers[i].name, req->headers[i].value);
    if (rc == AK_OK) rc = add_header_line(r, "Expect", NULL); /* no waiting for "100 Continue" on big bodies */
    if (rc == AK_OK && curl_easy_setopt(r->easy, CURLOPT_URL, req->url) != CURLE_OK) rc = AK_ERR_INVALID_ARGUMENT;
    if (rc != AK_OK) {
        request_free(r);
        return rc;
    }
    allow_http_only(r->easy);
    curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body_len || strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, req->body ? req->body : ""); /* not copied: req outlives us */
    }
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header_line);
    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body_bytes);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L); /* a proxy's CONNECT answer is not ours */
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    if (req->timeout_ms > 0) curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (void *)r);
    *out = r;
    return AK_OK;
}

/* Blocking: every sink call happens before start() returns; there is nothing to cancel. */
static ak_result easy_start(void *ud, const ak_http_request *req, ak_http_sink *sink, void **handle) {
    curl_req *r;
    ak_result rc = request_new(req, sink, &r);
    *handle = NULL;
    if (rc != AK_OK) return rc; /* failing start() calls nothing on the sink */
    finish((curl_transport *)ud, r, curl_easy_perform(r->easy));
    request_free(r);
    return AK_OK;
}

static void easy_cancel(void *ud, void *handle) { (void)ud, (void)handle; }

/* Pumped: start() only queues the transfer; poll() runs it. */
static ak_result multi_start(void *ud, const ak_http_request *req, ak_http_sink *sink, void **handle) {
    curl_transport *t = (curl_transport *)ud;
    curl_req *r;
    ak_result rc = request_new(req, sink, &r);
    if (rc != AK_OK) return rc;
    if (curl_multi_add_handle(t->multi, r->easy) != CURLM_OK) {
        request_free(r);
        return AK_ERR_IO;
    }
    r->id = ++t->next_id;
    r->next = t->reqs;
    t->reqs = r;
    *handle = (void *)r->id;
    return AK_OK;
}

static void unlink_free(curl_transport *t, curl_req *r) {
    curl_req **link = &t->reqs;
    while (*link != r) link = &(*link)->next;
    *link = r->next;
    curl_multi_remove_handle(t->multi, r->easy);
    request_free(r);
}

static void multi_cancel(void *ud, void *handle) {
    curl_transport *t = (curl_transport *)ud;
    curl_req *r = t->reqs;
    while (r && r->id != (uintptr_t)handle) r = r->next;
    if (!r) return; /* finished already: a no-op */
    r->stopped = 1;  /* never touch its sink again */
    if (!t->performing) unlink_free(t, r); /* inside a callback curl still uses it: swept later */
}

/* Runs curl once: sink callbacks, then on_done for finished transfers, then frees what
   finished or was cancelled meanwhile. */
static void perform(curl_transport *t) {
    CURLMsg *msg;
    curl_req *r, *next;
    char *priv;
    int running, left;
    t->performing = 1;
    curl_multi_perform(t->multi, &running);
    while ((msg = curl_multi_info_read(t->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        r = (curl_req *)(void *)priv;
        finish(t, r, msg->data.result);
        r->stopped = 1; /* done: free below */
    }
    t->performing = 0;
    for (r = t->reqs; r; r = next) {
        next = r->next;
        if (r->stopped) unlink_free(t, r);
    }
}

static ak_result multi_poll(void *ud, int timeout_ms) {
    curl_transport *t = (curl_transport *)ud;
    unsigned long before = t->events;
    perform(t);
    if (t->events == before && t->reqs && timeout_ms > 0) { /* nothing happened: wait for the network */
        curl_multi_poll(t->multi, NULL, 0, timeout_ms, NULL);
        perform(t);
    }
    return AK_OK;
}

/* blocking = 1: the easy interface; 0: the multi interface, driven by poll(). */
static ak_result curl_transport_init(curl_transport *t, int blocking) {
    memset(t, 0, sizeof *t);
    if (!blocking && !(t->multi = curl_multi_init())) return AK_ERR_OUT_OF_MEMORY;
    t->transport.start = blocking ? easy_start : multi_start;
    t->transport.cancel = blocking ? easy_cancel : multi_cancel;
    t->transport.poll = blocking ? NULL : multi_poll;
    t->transport.ud = t;
    return AK_OK;
}

/* Drops whatever is still in flight (no sink calls) and frees everything. */
static void curl_transport_free(curl_transport *t) {
    while (t->reqs) unlink_free(t, t->reqs);
    if (t->multi) curl_multi_cleanup(t->multi);
}

/* ---- using it ------------------------------------------------------------------------ */

static void print_chunk(void *ud, const ak_json *chunk) {
    ak_buf text;
    (void)ud;
    ak_buf_init(&text, NULL);
    ak_msg_text(ak_json_get(chunk, "modelChunk"), &text);
    if (text.len) printf("[%s]", text.ptr);
    fflush(stdout);
    ak_buf_free(&text);
}

int main(int argc, char **argv) {
    ak_context ctx;
    curl_transport blocking, pumped;
    ak_remote_agent agent;
    ak_remote_desc desc;
    ak_chat chat;
    ak_response r;
    ak_json_doc d;
    ak_json *input;
    ak_error err;
    ak_result rc;
    int frames = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: curl_transport URL   (an agent served by serve.c or akdriver serve)\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ak_context_init(&ctx, NULL);
    memset(&desc, 0, sizeof desc);
    desc.url = argv[1];

    /* 1. Blocking: ak_chat_send returns with the answer. */
    if (curl_transport_init(&blocking, 1) != AK_OK) return 1;
    desc.transport = &blocking.transport;
    if (ak_remote_agent_init(&agent, &ctx, &desc, &err) != AK_OK || ak_remote_chat(&chat, &agent, NULL, &err) != AK_OK) return 1;
    rc = ak_chat_send(&chat, "hello", &r, &err);
    if (rc == AK_OK) printf("blocking: %s\n", r.text);
    else printf("blocking: error: %s\n", err.message);
    ak_response_free(&r);
    ak_chat_free(&chat);
    ak_remote_agent_free(&agent);
    curl_transport_free(&blocking);
    if (rc != AK_OK) return 1;

    /* 2. Pumped: a frame loop. Each frame polls once without waiting, then does its own work
       (here: sleeps 16 ms); the answer streams in over the frames. */
    if (curl_transport_init(&pumped, 0) != AK_OK) return 1;
    desc.transport = &pumped.transport;
    if (ak_remote_agent_init(&agent, &ctx, &desc, &err) != AK_OK || ak_remote_chat(&chat, &agent, NULL, &err) != AK_OK) return 1;
    ak_json_doc_init(&d, NULL);
    printf("pumped: ");
    input = ak_input_text(&d, "stream one two three");
    rc = input ? ak_chat_start(&chat, input, print_chunk, NULL, &err) : ak_error_set(&err, AK_ERR_OUT_OF_MEMORY, "out of memory");
    if (rc == AK_OK)
        while ((rc = ak_chat_poll(&chat, 0, &r, &err)) == AK_PENDING) {
            frames++;
            ak_sleep_ms(&ctx, 16); /* render the frame */
        }
    if (rc == AK_OK) printf(" -> %s (%d frames, none of them waited for the network)\n", r.text, frames);
    else printf("error: %s\n", err.message);
    ak_response_free(&r);
    ak_json_doc_free(&d);
    ak_chat_free(&chat);
    ak_remote_agent_free(&agent);
    curl_transport_free(&pumped);
    curl_global_cleanup();
    return rc == AK_OK ? 0 : 1;
}
