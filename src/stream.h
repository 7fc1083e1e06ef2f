/* >>stream: resumable push parsers for response streams: SSE (text/event-stream, the
   WHATWG rules) and NDJSON (one JSON value per line). Bytes go in cut anywhere; events
   come out through a callback, in bounded memory.

   Usage (an OpenAI-style stream; the transport's on_body feeds the parser):

       static ak_result on_event(void *ud, const ak_sse_event *ev) {
           if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) return AK_OK;
           return handle_chunk(ud, ev->data, ev->data_len);
       }

       ak_sse_parser p;
       ak_sse_init(&p, alloc, on_event, state);
       while ((n = read_some(buf, sizeof buf)) > 0)
           if ((rc = ak_sse_feed(&p, buf, n, &err)) != AK_OK) break;
       if (rc == AK_OK) rc = ak_sse_finish(&p, &err);
       ak_sse_free(&p);

   NDJSON works the same way with ak_ndjson_init / _feed / _finish / _free; its callback
   gets one line at a time. */

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Default limit of both parsers: the longest line, and for SSE also the largest data of
   one event. Real events can be big (a whole tool call, a thinking signature, base64 image
   output), so the default is generous; it is a guard against a hostile or broken server
   making the parser grow without end. */
#ifndef AK_SSE_MAX_EVENT
#define AK_SSE_MAX_EVENT ((size_t)16 << 20)
#endif
#ifndef AK_NDJSON_MAX_LINE
#define AK_NDJSON_MAX_LINE ((size_t)16 << 20)
#endif

/* ---- SSE ------------------------------------------------------------------------------ */

/* One dispatched event. The strings are NUL-terminated, valid UTF-8 (invalid bytes were
   replaced by U+FFFD) and valid only during the callback. data may contain NUL bytes. */
typedef struct ak_sse_event {
    const char *event;      /* the event type; "message" when the stream named none */
    size_t event_len;
    const char *data;       /* the data lines joined with "\n"; may be empty ("data:" alone) */
    size_t data_len;
    const char *id;         /* the last event id of the stream (it persists across events);
                               "" when none was set */
    size_t id_len;
    int64_t retry;          /* reconnection time in ms from a "retry" field seen since the
                               previous dispatch, else -1 */
} ak_sse_event;

/* Called for each event. Return AK_OK to go on; anything else stops the parser and is
   returned by the feed call that dispatched the event (and by every later call). */
typedef ak_result (*ak_sse_cb)(void *ud, const ak_sse_event *ev);

/* Parser state. Set up with ak_sse_init; the fields above "internal" may be read, and
   max_event may be changed before the first feed. */
typedef struct ak_sse_parser {
    size_t max_event;       /* longest line and largest event data in bytes (AK_SSE_MAX_EVENT);
                               beyond it the feed fails with AK_ERR_LIMIT */
    int64_t retry;          /* reconnection time the stream set last (ms), -1 = never */
    /* internal */
    ak_sse_cb cb;
    void *ud;
    ak_buf line;            /* a line cut by the end of a feed */
    ak_buf data;            /* data of the event being assembled: each line + "\n" */
    ak_buf event;           /* event type of the event being assembled */
    ak_buf id;              /* last event id */
    ak_buf clean;           /* data with invalid UTF-8 replaced, when needed */
    size_t pos;             /* bytes of this stream consumed so far */
    size_t line_pos;        /* stream offset where the held line starts */
    size_t room;            /* bytes the held line may still take on the fast path; 0 = none */
    ak_result err;          /* sticky: set once the parser failed or was stopped */
    unsigned char bom;      /* BOM bytes matched at stream start; 3 once past it */
    unsigned char after_cr; /* the last line ended with CR: a following LF belongs to it */
    unsigned char retry_new;/* a retry field arrived since the last dispatch */
} ak_sse_parser;

/* Prepares p to parse one stream. alloc may be NULL (the default allocator); it must
   outlive p. cb (not NULL) receives each event with ud. Never fails, never allocates. */
AKDEF void ak_sse_init(ak_sse_parser *p, const ak_allocator *alloc, ak_sse_cb cb, void *ud);

/* Parses len more bytes of the stream (any split: a line, a CRLF or a UTF-8 sequence may
   be cut anywhere) and calls the callback for every event they complete. data may be NULL
   when len is 0. Work is linear in len however the stream is cut. The callback must not
   call ak_sse_* on p.
   Returns AK_OK; AK_ERR_LIMIT when a line or an event's data exceeds max_event (err->offset
   is the stream offset of that line); AK_ERR_OUT_OF_MEMORY; or what the callback returned
   to stop (err is then left to the callback). Any failure is sticky: later calls return
   the same code. */
AKDEF ak_result ak_sse_feed(ak_sse_parser *p, const char *data, size_t len, ak_error *err);

/* Ends the stream: an event not terminated by an empty line is discarded, as the WHATWG
   rules say (a consumer detects a cut stream by its provider's end marker). Afterwards p
   takes a new stream (after a reconnect), keeping the last event id and retry. Returns
   AK_OK, or the sticky failure. */
AKDEF ak_result ak_sse_finish(ak_sse_parser *p, ak_error *err);

/* Releases p's buffers. p may be NULL. */
AKDEF void ak_sse_free(ak_sse_parser *p);

/* ---- NDJSON --------------------------------------------------------------------------- */

/* Called with one line: not NUL-terminated, valid only during the call, without its "\n"
   and a CR before it. Blank lines (only spaces, tabs, CRs) are skipped. The bytes are
   passed as received: the JSON parser validates them. Return AK_OK to go on. */
typedef ak_result (*ak_ndjson_cb)(void *ud, const char *line, size_t len);

typedef struct ak_ndjson_parser {
    size_t max_line;        /* longest line in bytes (AK_NDJSON_MAX_LINE), else AK_ERR_LIMIT */
    /* internal */
    ak_ndjson_cb cb;
    void *ud;
    ak_buf line;            /* a line cut by the end of a feed */
    size_t pos;             /* bytes of this stream consumed so far */
    size_t line_pos;        /* stream offset where the held line starts */
    ak_result err;          /* sticky failure */
} ak_ndjson_parser;

/* Same contracts as the SSE functions above. finish delivers a last line that has no
   "\n" (a complete JSON value or not: the consumer's parser decides). */
AKDEF void ak_ndjson_init(ak_ndjson_parser *p, const ak_allocator *alloc, ak_ndjson_cb cb,
                          void *ud);
AKDEF ak_result ak_ndjson_feed(ak_ndjson_parser *p, const char *data, size_t len, ak_error *err);
AKDEF ak_result ak_ndjson_finish(ak_ndjson_parser *p, ak_error *err);
AKDEF void ak_ndjson_free(ak_ndjson_parser *p);

#ifdef __cplusplus
}
#endif
