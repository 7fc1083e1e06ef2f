/* agentkit.h - v0.1.0 - Genkit's Agents API in one C header - MIT licence (end of file)

   Define an agent (model, system prompt, tools), chat with it in process or over HTTP,
   stream its output, pause it for human approval and resume, persist and branch its
   sessions, run turns in the background and abort them. Speaks Genkit's wire protocol, so
   Genkit's JS client and Developer UI work against it; talks to OpenAI (and every
   OpenAI-compatible server), Anthropic, Gemini and Ollama. No dependencies; C99 or C++11.

   DO THIS
   -------
   In exactly one C or C++ file:

       #define AGENTKIT_IMPLEMENTATION
       #include "agentkit.h"

   Everywhere else include "agentkit.h" without the define. For the built-in sockets add
   -DAK_ENABLE_POSIX (and -DAK_ENABLE_MBEDTLS -lmbedtls -lmbedx509 -lmbedcrypto for https);
   otherwise plug in your own HTTP client (PLUGGING IN A TRANSPORT, below).

   QUICK START (examples/quickstart.c: an agent with one tool)
   -----------

       static ak_result get_weather(ak_tool_call *call) {   (input already schema-checked)
           ak_json *out = ak_json_new_object(call->doc);
           ak_json_set_str(call->doc, out, "city", ak_json_get_str(call->input, "city"));
           ak_json_set_int(call->doc, out, "tempC", 21);
           return ak_tool_return(call, out);
       }
       static const ak_tool tools[] = {{"getWeather", "Current weather for a city.",
           "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}",
           NULL, get_weather, NULL, 0}};

       ak_context_init(&ctx, NULL);                   (allocator, clock, random, budget)
       net_desc.ctx = &ctx;                           (all descs zeroed first)
       ak_posix_transport_init(&net, &net_desc, &err);
       ak_http_model_from_env(&provider, &ctx, &net.transport, &err);  (OPENAI_API_KEY, ...)
       desc.name = "weatherAgent";
       desc.model = &provider.model;
       desc.system = "Answer weather questions with the getWeather tool.";
       desc.tools = tools, desc.tool_count = 1;
       ak_agent_init(&agent, &ctx, &desc, &err);
       ak_chat_init(&chat, &agent, NULL, &err);
       ak_chat_send(&chat, "Weather in Oslo?", &r, &err);   (runs the whole tool loop)
       puts(r.text);
       ak_response_free(&r), ak_chat_free(&chat), ak_agent_free(&agent);

   OPTIONS (define before including; options that change a struct belong in AK_CONFIG_FILE)
   -------
   Build shape                                                       (default)
   AK_STATIC              every function static: one translation unit uses the library
   AKDEF                  linkage of public functions                (extern)
   AK_CONFIG_FILE         "file.h" included first by every translation unit
   AK_FREESTANDING        no libc at all: give ak_context_desc an allocator, clocks and a
                          random source; numbers use built-in conversions (or AK_STRTOD/AK_DTOA)
   AK_NO_PLATFORM         hosted, but no default clock or random source (RTOS with libc)
   AK_MALLOC/AK_REALLOC/AK_FREE   default allocator, all three or none (malloc family)
   AK_MEMCPY/AK_MEMMOVE/AK_MEMSET/AK_MEMCMP   memory primitives     (libc / builtins)
   AK_STRTOD(s, len)      decimal text -> double
   AK_DTOA(v, digits, &n) shortest digits of v > 0; returns their count, n = exponent
   AK_ENABLE_POSIX        built-in sockets, HTTP client transport and HTTP server
   AK_ENABLE_MBEDTLS      https in the built-in transport (mbedTLS 2.28 from Debian 12)
   AK_NO_ERROR_STRINGS    ak_result_str() says only "ok"/"error"     (0.9 KB)

   Compile-out switches (implementation only: the header and structs stay the same). Bytes
   each takes out of the Cortex-M4 -Os object (freestanding, 123.8 KB with everything);
   `make size` prints what a linked firmware keeps:
   AK_NO_OPENAI           OpenAI adapter, 4.7 KB (11.5 KB together with AK_NO_OLLAMA)
   AK_NO_OLLAMA           Ollama adapter, 3.2 KB
   AK_NO_ANTHROPIC        Anthropic adapter, 7.2 KB (15.9 KB together with AK_NO_GEMINI)
   AK_NO_GEMINI           Gemini adapter, 7.3 KB
   AK_NO_SERVE            the agent HTTP server and remote-agent client, 6.7 KB
   AK_NO_REPLAY           the replay test transport, 1.8 KB
   AK_NO_LOCAL_MODELS     the programmable and scripted models, 2.6 KB
   AK_NO_SCHEMA           the JSON Schema validator, 4.7 KB: tool schemas still go to the
                          model but inputs are not checked (tools check their input); an
                          agent with a state schema is refused with AK_ERR_UNSUPPORTED
   AK_NO_STDIO            the file session store, 11.9 KB
   ak_adapter_find skips compiled-out adapters; ak_http_model_from_env answers
   AK_ERR_UNSUPPORTED for a provider the environment names but the build left out.

   Limits (hostile-input guards; every one fails with a clear error, never a crash)
   AK_ERROR_MAX                ak_error.message bytes                         240
   AK_ID_MAX                   longest snapshot/session id accepted            128
   AK_JSON_MAX_DEPTH           JSON nesting                                    512
   AK_JSON_PATCH_MAX_COPY      bytes the "copy" operations of one patch add  16 MiB
   AK_JSON_DOC_BLOCK           first arena block of a JSON document (1024 saves a
                               third of a turn's RAM on a microcontroller)     4096
   AK_JSON_SCHEMA_MAX_DEPTH    schema recursion ($ref cycles)                  256
   AK_JSON_SCHEMA_MAX_STEPS    subschemas applied per validation          1000000
   AK_SSE_MAX_EVENT            bytes of one server-sent event               16 MiB
   AK_NDJSON_MAX_LINE          bytes of one NDJSON line (Ollama)            16 MiB
   AK_HTTP_MAX_HEADER_BYTES    start line + headers                        32 KiB
   AK_HTTP_MAX_HEADERS         header lines per message                        100
   AK_HTTP_MAX_CHUNK_LINE      chunk-size line                              4 KiB
   AK_HTTP_MAX_INTERIM         1xx responses skipped                             8
   AK_HTTP_MAX_TARGET          request target a server accepts (else 414)    8 KiB
   AK_HTTP_MAX_BODY            request body a server accepts (else 413)      8 MiB
   AK_MAX_RESPONSE_BODY        provider response body                       16 MiB
   AK_MAX_REQUEST_HEADERS      headers an adapter sends                         16
   AK_MAX_TOOL_CALLS           tool calls in one model response                128
   AK_ANTHROPIC_DEFAULT_MAX_TOKENS   max_tokens when the config has none      4096
   AK_SERVE_MAX_BODY           agent request body (else 413)                 1 MiB
   AK_SERVE_MAX_DEPTH          agent request JSON nesting                       64
   AK_REMOTE_MAX_FRAME         one stream frame from a remote agent         16 MiB
   AK_POSIX_IO_BUF             socket read buffer (per request / server)    16 KiB
   AK_POSIX_MAX_IDLE           keep-alive connections a client keeps (0 = off)    4
   AK_HTTP_SERVER_MAX_CONNECTIONS   open connections (more get 503)            256
   AK_MEMSTORE_HOT             in-memory snapshots kept parsed                  64
   AK_FILESTORE_CACHE          file-store rows kept in memory                   32
   AK_FILESTORE_MAX_DELTAS     longest delta chain read                       1024
   AK_FILESTORE_MAX_FILE       largest session file read                    64 MiB

   MANUAL
   ------
   1. Conventions. Every function that can fail returns ak_result (AK_OK = 0, AK_PENDING =
      1 means "pump again", errors are negative in bands per layer) and takes an optional
      ak_error* with the reason, the Genkit status (ak_status) and its HTTP code; there is no
      "last error". No globals, no threads, no hidden I/O: the library runs on the thread
      that calls it, and everything that waits can be pumped instead.

   2. Memory. Every byte comes from the ak_allocator in an ak_context (which also holds the
      clocks, the random source, the log hook and an optional memory budget: past it,
      allocations fail cleanly with AK_ERR_OUT_OF_MEMORY and nothing is lost). Results you
      receive own their memory (ak_response_free, ak_json_doc_free); inputs are copied or
      documented as borrowed.

   3. JSON. ak_json_doc owns values in an arena. ak_json_parse is strict RFC 8259 with
      UTF-8 validation and depth limits, and keeps number lexemes so big integers survive.
      Build with ak_json_new_* / ak_json_set* / ak_json_push, read with ak_json_get*,
      ak_json_at, ak_json_path("choices[0].delta.content"), write with ak_json_write.
      JSON Pointer, JSON Patch (RFC 6902, strict or Genkit's lenient mode), diff and a JSON
      Schema validator (the draft-07 subset Genkit tool and state schemas use) come with it.

   4. Streams and HTTP. ak_sse_parser and ak_ndjson_parser take bytes split anywhere.
      ak_http_* parse and frame HTTP/1.1 both ways. The built-in ak_posix_transport
      (AK_ENABLE_POSIX) is blocking or, with desc.nonblocking, pumped through
      ak_posix_transport_poll; TLS verifies certificates by default.

   5. Models. ak_model is a vtable (start/poll/cancel); ak_http_model drives a provider
      adapter (ak_adapter_openai/anthropic/gemini/ollama) over any transport, with retries
      on 429/5xx honouring Retry-After, jittered backoff and a deadline.
      ak_http_model_from_env picks the first of OPENAI_API_KEY or OPENAI_BASE_URL (any
      OpenAI-compatible server: llama.cpp, vLLM, Ollama's /v1), ANTHROPIC_API_KEY,
      GEMINI_API_KEY, OLLAMA_HOST; *_MODEL overrides the model name. Offline:
      ak_scripted_model_init (the demo and interop agents' model) and the programmable
      model (queue exact responses; for tests).

   6. Agents and tools. ak_agent_desc names the model, system prompt, tools, generation
      config, output format, max_turns, a store and a state schema. A tool function gets
      its schema-checked input and answers with ak_tool_return, ak_tool_fail,
      ak_tool_interrupt (pause for a human) or AK_PENDING (answer later with
      ak_agent_tool_return: a tool may take many frames). desc.turn replaces the model loop
      with your own code (a custom agent: ak_runner_* to read and write messages, custom
      state with streamed JSON patches, artifacts, chunks).

   7. Chat. ak_chat_send runs one turn and blocks; ak_chat_start + ak_chat_poll(chat, 0)
      run it a frame at a time, chunks (Genkit AgentStreamChunk) through a callback.
      ak_response has the text, message, finish reason, interrupts, snapshot id and state.
      An interrupted turn (finish reason "interrupted") continues with ak_chat_resume
      (respond to or restart the tool requests). ak_chat_cancel stops a turn client-side.

   8. Sessions. Without a store the chat carries the state (client-managed, as Genkit);
      with one (ak_memstore, ak_filestore, or your ak_store) every turn writes a snapshot
      and the chat carries only its id. ak_chat_load resumes from a snapshot or session
      id; loading an older snapshot branches the conversation. The file store writes
      deltas with periodic checkpoints, crash-safe (write, fsync, rename), with locks.

   9. Background turns. ak_chat_detach starts a turn that outlives its caller and returns
      the pending snapshot id at once; ak_agent_pump advances background turns (keep
      calling it); ak_chat_get_snapshot / ak_agent_get_snapshot read the status
      (pending, completed, failed, aborted) and ak_chat_abort / ak_agent_abort stop one.

   10. Serving. ak_serve answers Genkit's agent protocol (/<agent>, /getSnapshot, /abort;
      JSON or streamed frames) through any HTTP server's ak_http_writer; the built-in
      ak_http_server (AK_ENABLE_POSIX) is a poll() loop with limits and timeouts. Genkit's
      JS client (remoteAgent) and Dev UI talk to it. ak_remote_agent is the client side:
      an ak_chat over a remote Genkit agent, written in JS or C.

   The sections below and every public declaration carry the details; examples/ has a
   complete program for each part.
*/
/* >>doc_transports: how to plug in an HTTP stack (libcurl, ESP-IDF, a game engine) */
/*
   PLUGGING IN A TRANSPORT
   -----------------------
   Every byte the library sends or receives goes through an ak_transport you hand it (in
   ak_provider_config.transport for models, ak_remote_desc.transport for remote agents).
   The built-in POSIX one (AK_ENABLE_POSIX) is optional; any HTTP client can take its place.
   A transport is three functions and a pointer:

       start(ud, req, sink, &handle)  send req; feed the response into sink (now or later)
       cancel(ud, handle)             forget a started request
       poll(ud, timeout_ms)           optional: advance pending requests
       ud                             your state

   req (method, absolute URL, headers, body, timeout_ms, streaming) and sink stay valid
   until on_done has returned or the request was cancelled: no copies needed.

   The sink rules (break one and the library misreads the response):
   - Order: on_status once, with the final status (skip 1xx interim responses); on_header
     for each response header; on_body any number of times, any split, with the decoded
     body (chunked framing and content encoding removed); then on_done exactly once.
   - on_header's name and value are slices: the library reads only name_len / value_len
     bytes, so no NUL is needed. Headers are advisory (the adapters read retry hints such
     as Retry-After from them); a client that cannot deliver them loses only those.
   - An HTTP error status is not a transport failure: deliver it and its body, then
     on_done(AK_OK); the library reads the provider's error body. on_done's rc is for
     failures to get a whole response: AK_ERR_CONNECT, AK_ERR_TLS, AK_ERR_TIMEOUT,
     AK_ERR_CLOSED, AK_ERR_TRUNCATED, AK_ERR_IO, with msg saying why (may be NULL).
   - If any sink callback returns something other than AK_OK, the library has stopped
     listening: abort the transfer, free the request, call nothing more, not even on_done.
   - A start() that returns an error must not have called the sink.
   - After cancel(handle) the sink is never touched again. Cancelling a finished or unknown
     handle is a no-op, so make handles ids (looked up in your table), not pointers to
     memory that may be freed; the library may cancel from inside a sink callback.
   - When req->streaming is 1, deliver bytes as they arrive; do not buffer the body.
   - Honour req->timeout_ms (the library also enforces it with its clock).
   - Call the sink only on the thread that pumps the library: inside start(), inside
     poll(), or from your event loop on that thread. A client with worker threads queues
     what it receives and feeds the sink from the pumping thread.

   Blocking shape: start() runs the whole exchange, calls every sink function, sets
   *handle = NULL and returns AK_OK; cancel does nothing; poll is NULL. The library's
   calls then block for the length of a request (fine in a CLI, a server thread, or an
   RTOS task). Pumped shape: start() queues the request and returns at once; the sink is
   fed later, from poll() or from the host's loop; nothing blocks, so a game can run a
   turn at 60 fps with ak_chat_poll(chat, 0, ...) once per frame.

   libcurl. examples/curl_transport.c has both shapes: the easy interface (curl_easy_perform
   inside start(); header and write callbacks feed the sink; returning 0 from them aborts
   the transfer) and the multi interface (start() adds the easy handle; poll() runs
   curl_multi_perform, then curl_multi_poll when nothing happened, and reports finished
   transfers from curl_multi_info_read). Since curl forbids removing a handle inside its
   own callbacks, a cancel arriving from a sink callback only marks the request, and poll
   removes it after curl_multi_perform returns.

   ESP-IDF (esp_http_client). Blocking: run the agent in its own FreeRTOS task (16 KB of
   stack or more with TLS), never in an event-loop task or an ISR. In start(): fill an
   esp_http_client_config_t (url = req->url, method, timeout_ms, event_handler, user_data =
   your request record, crt_bundle_attach = esp_crt_bundle_attach for https,
   disable_auto_redirect = true so the library sees the real status), init, add each header
   with esp_http_client_set_header, the body with esp_http_client_set_post_field, then
   esp_http_client_perform. Streaming happens in the event handler: on the first
   HTTP_EVENT_ON_DATA call on_status(esp_http_client_get_status_code(client)), then
   on_body(data, data_len) for every one, so tokens reach the agent while the model writes.
   The status is only known once the head is complete, so HTTP_EVENT_ON_HEADER comes too
   early for on_status: keep the few headers worth having (Retry-After) and pass them after
   on_status, or drop them. After perform returns: call on_status if no data came, then
   on_done (ESP_OK -> AK_OK, ESP_ERR_HTTP_CONNECT -> AK_ERR_CONNECT, a timeout ->
   AK_ERR_TIMEOUT, anything else AK_ERR_IO), esp_http_client_cleanup, *handle = NULL. If a
   sink call fails, ignore the rest of the events and skip on_done.

   A game engine's HTTP module (non-blocking, callbacks on the game thread). start()
   creates the engine request (verb, URL, headers, body), binds its callbacks with your
   request id, fires it and returns AK_OK with the id as the handle; poll stays NULL,
   because the engine pumps its own HTTP in its tick. Its progress callback: on_status
   the first time (with the response code), then on_body with only the bytes not yet
   delivered (engines often hand you everything so far). Its completion callback: whatever
   is left, then on_done (success, or the engine's failure mapped as above). cancel():
   cancel the engine request and drop the id, since engines often still fire completion
   after a cancel; a callback whose id is gone does nothing. An engine that gives the body
   only at completion still works: the chunks arrive at once at the end. Each frame the
   game calls ak_chat_poll(chat, 0, ...) (or ak_agent_pump(agent, 0)) and never waits.
*/
/* GENERATED by ./amalgamate from src/ -- do not edit this file, edit src/ and rerun. */

#ifndef AGENTKIT_H
#define AGENTKIT_H

/* ---- begin src/base.h ---- */
/* >>base: configuration, results, errors, allocator, arena, buffer, UTF-8, context */

#define AK_VERSION_MAJOR 0
#define AK_VERSION_MINOR 1
#define AK_VERSION_PATCH 0
#define AK_VERSION_NUM 0x000100
#define AK_VERSION_STRING "0.1.0"

/* Options that change struct layout must be identical in every translation unit, so they
   belong in one config header named by AK_CONFIG_FILE. */
#ifdef AK_CONFIG_FILE
#include AK_CONFIG_FILE /* amalgamate: keep */
#endif

/* A strict ISO build (-std=c99) hides clock_gettime; the implementation needs POSIX 2008.
   Only set when nothing chose feature macros already. */
#if defined(AGENTKIT_IMPLEMENTATION) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && \
    !defined(_GNU_SOURCE) && !defined(_XOPEN_SOURCE) && !defined(_WIN32) && !defined(AK_FREESTANDING)
#define _POSIX_C_SOURCE 200809L
#endif

#include <stddef.h>
#include <stdint.h>

#ifndef AKDEF
#ifdef AK_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define AKDEF static __attribute__((unused))
#else
#define AKDEF static
#endif
#else
#define AKDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Size of the message buffer in ak_error. */
#ifndef AK_ERROR_MAX
#define AK_ERROR_MAX 240
#endif

/* ---------------------------------------------------------------------------------------
   Results. Zero is success, AK_PENDING means "not finished: pump again later", negative
   values are errors grouped in bands of 100 by layer. ak_result_str() names each one.
   --------------------------------------------------------------------------------------- */
typedef enum ak_result {
    AK_OK = 0,
    AK_PENDING = 1,

    /* generic */
    AK_ERR_INVALID_ARGUMENT = -1, /* a parameter is wrong (API misuse) */
    AK_ERR_OUT_OF_MEMORY = -2,    /* allocator, arena or memory budget exhausted */
    AK_ERR_LIMIT = -3,            /* a configured size, count or depth limit was hit */
    AK_ERR_NOT_FOUND = -4,
    AK_ERR_UNSUPPORTED = -5,      /* not compiled in, or not available on this platform */
    AK_ERR_STATE = -6,            /* the call is not valid in the object's current state */
    AK_ERR_IO = -7,
    AK_ERR_CANCELLED = -8,
    AK_ERR_TIMEOUT = -9,
    AK_ERR_NO_RANDOM = -10,       /* no cryptographic random source: set ak_context_desc.random */
    AK_ERR_INTERNAL = -11,
    AK_ERR_ALREADY_EXISTS = -12,

    /* JSON */
    AK_ERR_JSON_SYNTAX = -100,
    AK_ERR_JSON_DEPTH = -101,
    AK_ERR_JSON_UTF8 = -102,      /* invalid UTF-8 or a lone surrogate escape */
    AK_ERR_JSON_TYPE = -103,      /* value has another type than the one asked for */
    AK_ERR_JSON_POINTER = -104,   /* malformed JSON Pointer, or it names nothing */
    AK_ERR_JSON_PATCH = -105,     /* malformed patch operation or one that cannot apply */
    AK_ERR_JSON_TEST = -106,      /* a patch "test" operation did not match */
    AK_ERR_SCHEMA = -107,         /* value does not match its JSON Schema */

    /* streams and transport */
    AK_ERR_STREAM = -200,         /* malformed event stream or line too long */
    AK_ERR_HTTP = -201,           /* malformed HTTP message */
    AK_ERR_CONNECT = -202,        /* could not resolve or connect */
    AK_ERR_TLS = -203,            /* handshake or certificate failure */
    AK_ERR_CLOSED = -204,         /* peer closed or reset the connection */
    AK_ERR_TRUNCATED = -205,      /* body or stream ended before its end marker */
    AK_ERR_HTTP_STATUS = -206,    /* the server answered with an error status */

    /* models */
    AK_ERR_MODEL = -300,          /* the model call failed; ak_error.status says how */

    /* sessions and stores */
    AK_ERR_STORE = -400,          /* the store failed; ak_error.status says how */
    AK_ERR_DATA_LOSS = -401,      /* stored data is corrupt or truncated */

    /* agents */
    AK_ERR_AGENT = -500           /* a Genkit-status error from the agent layer */
} ak_result;

/* Genkit's canonical statuses (gRPC codes). */
typedef enum ak_status {
    AK_STATUS_OK = 0,
    AK_STATUS_CANCELLED = 1,
    AK_STATUS_UNKNOWN = 2,
    AK_STATUS_INVALID_ARGUMENT = 3,
    AK_STATUS_DEADLINE_EXCEEDED = 4,
    AK_STATUS_NOT_FOUND = 5,
    AK_STATUS_ALREADY_EXISTS = 6,
    AK_STATUS_PERMISSION_DENIED = 7,
    AK_STATUS_RESOURCE_EXHAUSTED = 8,
    AK_STATUS_FAILED_PRECONDITION = 9,
    AK_STATUS_ABORTED = 10,
    AK_STATUS_OUT_OF_RANGE = 11,
    AK_STATUS_UNIMPLEMENTED = 12,
    AK_STATUS_INTERNAL = 13,
    AK_STATUS_UNAVAILABLE = 14,
    AK_STATUS_DATA_LOSS = 15,
    AK_STATUS_UNAUTHENTICATED = 16
} ak_status;

AKDEF const char *ak_result_str(ak_result r);          /* static text, never NULL */
AKDEF ak_status ak_result_status(ak_result r);         /* the status a result maps to */
AKDEF const char *ak_status_name(ak_status s);          /* "NOT_FOUND"; "UNKNOWN" if out of range */
AKDEF int ak_status_http(ak_status s);                  /* 404 for NOT_FOUND, ... */
AKDEF ak_status ak_status_from_name(const char *name, size_t len); /* UNKNOWN if unrecognised */
AKDEF ak_status ak_status_from_http(int code);          /* 429 -> RESOURCE_EXHAUSTED, ... */

/* Error detail, owned by the caller; every function taking one accepts NULL. Filled only on
   failure. The message is always NUL-terminated and never needs freeing. */
typedef struct ak_error {
    ak_result code;
    ak_status status;
    size_t offset;              /* byte offset into the input, when the error has one */
    char message[AK_ERROR_MAX];
} ak_error;

/* Clears e (e may be NULL). */
AKDEF void ak_error_clear(ak_error *e);
/* Fills e with a formatted message (printf subset: %s %.*s %d %u %ld %lu %lld %llu %zu
   %x %c %%) and returns code. Status defaults to ak_result_status(code). */
AKDEF ak_result ak_error_set(ak_error *e, ak_result code, const char *fmt, ...);
AKDEF ak_result ak_error_setst(ak_error *e, ak_result code, ak_status st, const char *fmt, ...);

/* ---------------------------------------------------------------------------------------
   Allocator. Every byte the library uses comes from one of these. Sizes are always passed
   back on realloc and free, which makes pool and arena backends possible. A NULL
   `const ak_allocator *` means the default (AK_MALLOC/AK_REALLOC/AK_FREE, malloc by
   default); in AK_FREESTANDING builds there is no default and NULL fails allocations.
   --------------------------------------------------------------------------------------- */
typedef struct ak_allocator {
    void *(*alloc)(void *ud, size_t size);
    void *(*realloc)(void *ud, void *ptr, size_t old_size, size_t new_size);
    void (*free)(void *ud, void *ptr, size_t size);
    void *ud;
} ak_allocator;

AKDEF void *ak_alloc(const ak_allocator *a, size_t size);
AKDEF void *ak_realloc(const ak_allocator *a, void *ptr, size_t old_size, size_t new_size);
AKDEF void ak_free(const ak_allocator *a, void *ptr, size_t size);

/* ---------------------------------------------------------------------------------------
   Arena: bump allocation from caller memory (fixed) or from allocator-backed blocks that
   grow geometrically. Exhaustion returns NULL and never falls back to malloc. Everything
   allocated is released together by reset/free, or back to a mark.
   --------------------------------------------------------------------------------------- */
typedef struct ak_arena_block ak_arena_block;

typedef struct ak_arena {
    const ak_allocator *alloc; /* NULL and fixed: caller memory only */
    ak_arena_block *head;      /* current block; older blocks chain through prev */
    size_t next_size;          /* size of the next block to allocate */
    size_t used_bytes;         /* bytes handed out (statistics) */
    int fixed;                 /* 1: memory came from ak_arena_init_fixed */
} ak_arena;

typedef struct ak_arena_mark {
    ak_arena_block *block;
    size_t used;
    size_t used_bytes;
} ak_arena_mark;

/* Allocator-backed arena. first_block 0 = 1 KiB; blocks double up to 1 MiB. */
AKDEF void ak_arena_init(ak_arena *a, const ak_allocator *alloc, size_t first_block);
/* Arena on caller memory (at least 64 bytes, any alignment). Never allocates. */
AKDEF ak_result ak_arena_init_fixed(ak_arena *a, void *mem, size_t size);
AKDEF void *ak_arena_alloc(ak_arena *a, size_t size);          /* 8-byte aligned, or NULL */
AKDEF void *ak_arena_zalloc(ak_arena *a, size_t size);         /* zeroed */
AKDEF char *ak_arena_strdup(ak_arena *a, const char *s, size_t len); /* NUL-terminated copy */
AKDEF ak_arena_mark ak_arena_save(const ak_arena *a);
AKDEF void ak_arena_restore(ak_arena *a, ak_arena_mark m);    /* frees blocks made since m */
AKDEF void ak_arena_reset(ak_arena *a);                       /* keeps the first block */
AKDEF void ak_arena_free(ak_arena *a);
/* Bytes the arena holds in its blocks (used or not). */
AKDEF size_t ak_arena_capacity(const ak_arena *a);

/* ---------------------------------------------------------------------------------------
   Growable byte buffer / string builder. Always NUL-terminated when ptr is non-NULL. Errors
   are sticky: appends after a failure do nothing, and `err` says what went wrong, so a
   sequence of appends needs one check at the end.
   --------------------------------------------------------------------------------------- */
typedef struct ak_buf {
    char *ptr;
    size_t len;
    size_t cap;
    size_t max;                /* 0 = unlimited; growing beyond it fails with AK_ERR_LIMIT */
    const ak_allocator *alloc;
    ak_result err;
    int fixed;                 /* memory from ak_buf_init_fixed: never grown or freed */
} ak_buf;

AKDEF void ak_buf_init(ak_buf *b, const ak_allocator *alloc);
AKDEF void ak_buf_init_fixed(ak_buf *b, void *mem, size_t cap);
AKDEF void ak_buf_free(ak_buf *b);
AKDEF void ak_buf_clear(ak_buf *b);                      /* len = 0, keeps memory */
AKDEF ak_result ak_buf_reserve(ak_buf *b, size_t extra);  /* room for extra more bytes */
AKDEF void ak_buf_append(ak_buf *b, const void *p, size_t n);
AKDEF void ak_buf_puts(ak_buf *b, const char *s);
AKDEF void ak_buf_putc(ak_buf *b, char c);
AKDEF void ak_buf_put_i64(ak_buf *b, int64_t v);
AKDEF void ak_buf_put_u64(ak_buf *b, uint64_t v);
AKDEF void ak_buf_printf(ak_buf *b, const char *fmt, ...); /* the ak_error_set subset */
AKDEF void ak_buf_consume(ak_buf *b, size_t n);          /* drop n bytes from the front */
/* Hands the memory to the caller (free it with ak_free(alloc, p, *cap)); b becomes empty. */
AKDEF char *ak_buf_take(ak_buf *b, size_t *len, size_t *cap);

/* ---------------------------------------------------------------------------------------
   UTF-8.
   --------------------------------------------------------------------------------------- */
/* Returns the length of the longest valid UTF-8 prefix of s (== len when all valid).
   Overlong forms, surrogates and code points above U+10FFFF are invalid. */
AKDEF size_t ak_utf8_valid_prefix(const char *s, size_t len);
AKDEF int ak_utf8_valid(const char *s, size_t len);
/* Decodes one code point at s[0..len). Returns bytes used (1..4), or 0 when invalid or
   incomplete; *cp is set only on success. */
AKDEF size_t ak_utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Encodes cp into out (room for 4 bytes). Returns bytes written, 0 for an invalid cp. */
AKDEF size_t ak_utf8_encode(uint32_t cp, char *out);
/* Appends s to b with every invalid sequence replaced by U+FFFD. */
AKDEF void ak_utf8_sanitize(ak_buf *b, const char *s, size_t len);

/* ---------------------------------------------------------------------------------------
   Context: the allocator, clocks, random source and logger every higher object uses.
   No globals: several contexts may live in one process. A context and the objects made
   from it are used by one thread at a time.
   --------------------------------------------------------------------------------------- */
typedef enum ak_log_level {
    AK_LOG_DEBUG = 0,
    AK_LOG_INFO = 1,
    AK_LOG_WARN = 2,
    AK_LOG_ERROR = 3
} ak_log_level;

typedef struct ak_context_desc {
    ak_allocator allocator;      /* zero = default malloc family (required when freestanding) */
    size_t memory_budget;        /* 0 = unlimited; beyond it allocations fail cleanly */
    /* Wall clock, milliseconds since the Unix epoch. NULL = the platform clock. */
    int64_t (*now_ms)(void *ud);
    /* Monotonic clock in milliseconds, for timeouts and backoff. NULL = platform clock. */
    int64_t (*mono_ms)(void *ud);
    /* Cryptographic random bytes. NULL = getrandom/arc4random/BCryptGenRandom. Ids are
       never made from a weak source: without one, id generation fails with
       AK_ERR_NO_RANDOM. */
    ak_result (*random)(void *ud, void *buf, size_t len);
    /* Sleep for ms milliseconds; used only by blocking convenience calls (waiting out a
       retry delay). NULL = the platform's sleep; freestanding builds without one spin on
       mono_ms. */
    void (*sleep_ms)(void *ud, int64_t ms);
    /* Log sink; NULL = silent. Secrets (API keys) are never passed here. */
    void (*log)(void *ud, ak_log_level level, const char *msg);
    ak_log_level log_level;      /* minimum level passed to log (default DEBUG) */
    void *user_data;             /* passed as ud to the four hooks above */
} ak_context_desc;

typedef struct ak_context {
    ak_context_desc desc;
    ak_allocator alloc;          /* what objects use: the caller's, wrapped for accounting */
    size_t mem_in_use;
    size_t mem_peak;
    size_t alloc_count;          /* number of successful allocations (statistics) */
} ak_context;

/* desc may be NULL (all defaults). Fails only for a freestanding build without allocator. */
AKDEF ak_result ak_context_init(ak_context *ctx, const ak_context_desc *desc);
AKDEF const ak_allocator *ak_context_allocator(ak_context *ctx);
AKDEF int64_t ak_now_ms(ak_context *ctx);
AKDEF int64_t ak_mono_ms(ak_context *ctx);
AKDEF ak_result ak_random(ak_context *ctx, void *buf, size_t len);
AKDEF void ak_sleep_ms(ak_context *ctx, int64_t ms);
/* Writes a random (v4) UUID, 36 chars + NUL, into out. */
AKDEF ak_result ak_uuid4(ak_context *ctx, char out[37]);
/* Two of them (b may be NULL) from one read of the random source: a system call saved. */
AKDEF ak_result ak_uuid4_pair(ak_context *ctx, char a[37], char b[37]);
/* Formats ms since the epoch as ISO-8601 with milliseconds and Z, 24 chars + NUL. */
AKDEF void ak_iso8601(int64_t ms, char out[25]);
AKDEF void ak_log(ak_context *ctx, ak_log_level level, const char *fmt, ...);

AKDEF const char *ak_version(void);

#ifdef __cplusplus
}
#endif
/* ---- end src/base.h ---- */

/* ---- begin src/json.h ---- */
/* >>json: RFC 8259 DOM (parse, write, build, access, compare), JSON Pointer, JSON Patch,
   diff, JSON Schema subset */

#ifdef __cplusplus
extern "C" {
#endif

/* Default nesting limit of the parser (arrays + objects). The parser does not recurse, so
   the limit guards memory and the recursive consumers (copy, equal, write), not the stack. */
#ifndef AK_JSON_MAX_DEPTH
#define AK_JSON_MAX_DEPTH 512
#endif

/* Size of a document's first arena block (later ones double). Smaller saves RAM on devices
   where most documents are small, at the cost of more allocations for big ones. */
#ifndef AK_JSON_DOC_BLOCK
#define AK_JSON_DOC_BLOCK 4096
#endif

typedef enum ak_json_type {
    AK_JSON_NULL = 0,
    AK_JSON_BOOL,
    AK_JSON_NUMBER,
    AK_JSON_STRING,
    AK_JSON_ARRAY,
    AK_JSON_OBJECT
} ak_json_type;

/* Node flags. */
#define AK_JSON_F_TRUE 0x01u   /* BOOL: the value is true */
#define AK_JSON_F_INT 0x02u    /* NUMBER: lexeme has no fraction and no exponent */

/* One value. Transparent, but prefer the accessors below. Containers hold their children in
   a NULL-terminated list (first child in u.first, then next); `len` counts them. Strings
   and keys are NUL-terminated (and may contain NUL: use len / key_len). A number keeps its
   lexeme exactly as parsed or built, so big integers and long fractions survive a round
   trip; convert on demand with ak_json_int64 / ak_json_double. */
typedef struct ak_json ak_json;
struct ak_json {
    uint8_t type;              /* ak_json_type */
    uint8_t flags;             /* AK_JSON_F_* */
    uint16_t reserved;
    uint32_t len;              /* string/number bytes, or child count */
    uint32_t key_len;
    const char *key;           /* member name inside an object, else NULL */
    union {
        const char *str;       /* STRING text, NUMBER lexeme */
        ak_json *first;        /* ARRAY / OBJECT first child */
    } u;
    ak_json *next;             /* next sibling */
};

/* A document owns the memory of its values (an arena): values are freed all at once with
   the document. Values of one document must not be linked into another: copy them with
   ak_json_copy. Builder calls that run out of memory return NULL and make `err` sticky, so a
   sequence of builds needs one check at the end. */
typedef struct ak_json_doc {
    ak_arena arena;
    ak_json *root;
    ak_result err;
} ak_json_doc;

AKDEF void ak_json_doc_init(ak_json_doc *d, const ak_allocator *alloc);
/* Document on caller memory: never allocates. See ak_json_max_memory. */
AKDEF ak_result ak_json_doc_init_fixed(ak_json_doc *d, void *mem, size_t size);
AKDEF void ak_json_doc_free(ak_json_doc *d);
AKDEF void ak_json_doc_reset(ak_json_doc *d); /* drop all values, keep memory for reuse */
/* Memory ak_json_parse needs at most for `len` bytes of valid JSON (for fixed documents). */
AKDEF size_t ak_json_max_memory(size_t len);

/* A reference-counted, immutable JSON value with its own document: how sessions, snapshots
   and stores share messages, custom state and artifacts without copying them. Create with
   ak_jref_new (copies v in one exact-size allocation), share with ak_jref_retain, drop with
   ak_jref_release (frees at zero). Never modify ->value. */
typedef struct ak_jref {
    uint32_t refs;
    const ak_allocator *alloc;
    ak_json_doc doc;
    ak_json *value;
} ak_jref;

AKDEF ak_jref *ak_jref_new(const ak_allocator *alloc, const ak_json *v);
AKDEF ak_jref *ak_jref_retain(ak_jref *r); /* NULL-safe */
AKDEF void ak_jref_release(ak_jref *r);   /* NULL-safe */

/* ---- parsing -------------------------------------------------------------------------- */

typedef struct ak_json_parse_opts {
    uint32_t max_depth;        /* 0 = AK_JSON_MAX_DEPTH */
    size_t max_bytes;          /* 0 = no limit; longer input fails with AK_ERR_LIMIT */
} ak_json_parse_opts;

/* Parses exactly one JSON text (RFC 8259, strict: no BOM, no comments, no trailing commas,
   no NaN, UTF-8 validated, lone surrogate escapes rejected) from src[0..len) into d and
   stores it in *out. The input is copied into the document, so src may be freed right
   after. On failure err->offset is the byte offset of the problem; d keeps its earlier
   values. opts may be NULL. */
AKDEF ak_result ak_json_parse_value(ak_json_doc *d, const char *src, size_t len,
                                    const ak_json_parse_opts *opts, ak_json **out, ak_error *err);
/* Same, storing the value as d->root. */
AKDEF ak_result ak_json_parse(ak_json_doc *d, const char *src, size_t len, ak_error *err);

/* ---- writing -------------------------------------------------------------------------- */

/* Appends compact JSON for v (NULL writes null) to out; returns out->err. Member order and
   number lexemes are kept; strings are escaped as JSON.stringify does. */
AKDEF ak_result ak_json_write(const ak_json *v, ak_buf *out);
/* Same with two-space indentation (for files people read). */
AKDEF ak_result ak_json_write_pretty(const ak_json *v, ak_buf *out);
/* Appends s as a quoted JSON string. */
AKDEF void ak_json_write_str(ak_buf *out, const char *s, size_t len);

/* ---- building (values live in d; NULL on out-of-memory, and d->err is set) ------------- */

AKDEF ak_json *ak_json_new_null(ak_json_doc *d);
AKDEF ak_json *ak_json_new_bool(ak_json_doc *d, int value);
AKDEF ak_json *ak_json_new_int(ak_json_doc *d, int64_t value);
/* NaN and infinities become null, as in JSON.stringify. */
AKDEF ak_json *ak_json_new_double(ak_json_doc *d, double value);
/* A number from its lexeme; NULL (and AK_ERR_JSON_SYNTAX in d->err) if it is not one. */
AKDEF ak_json *ak_json_new_number(ak_json_doc *d, const char *lexeme, size_t len);
/* Strings are copied; invalid UTF-8 is replaced by U+FFFD. */
AKDEF ak_json *ak_json_new_str(ak_json_doc *d, const char *s);
AKDEF ak_json *ak_json_new_strn(ak_json_doc *d, const char *s, size_t len);
AKDEF ak_json *ak_json_new_array(ak_json_doc *d);
AKDEF ak_json *ak_json_new_object(ak_json_doc *d);
/* Deep copy of v (from any document) into d. */
AKDEF ak_json *ak_json_copy(ak_json_doc *d, const ak_json *v);
/* Bytes of arena ak_json_copy(d, v) uses: a document whose first block has this size holds
   the copy in one allocation. */
AKDEF size_t ak_json_copy_size(const ak_json *v);

/* Container edits. A value may be in one container only; add a copy to put it in two.
   These return AK_ERR_INVALID_ARGUMENT for a NULL value (so a failed ak_json_new_* passed
   straight in is caught), AK_ERR_JSON_TYPE for the wrong container type. */
AKDEF ak_result ak_json_push(ak_json *arr, ak_json *v);                      /* append */
AKDEF ak_result ak_json_insert(ak_json *arr, size_t index, ak_json *v);      /* index <= len */
AKDEF ak_json *ak_json_remove_at(ak_json *arr, size_t index);                /* detached value */
AKDEF ak_result ak_json_replace_at(ak_json *arr, size_t index, ak_json *v);
/* Sets obj[key] = v: replaces the member with that key (the last one, if duplicated) in
   place, or appends a new member. The key is copied into d. */
AKDEF ak_result ak_json_set(ak_json_doc *d, ak_json *obj, const char *key, ak_json *v);
AKDEF ak_result ak_json_setn(ak_json_doc *d, ak_json *obj, const char *key, size_t key_len,
                             ak_json *v);
/* Appends a member without looking for an existing one (duplicates allowed). */
AKDEF ak_result ak_json_add(ak_json_doc *d, ak_json *obj, const char *key, size_t key_len,
                            ak_json *v);
/* Removes every member with that key; returns the last one removed (detached) or NULL. */
AKDEF ak_json *ak_json_remove(ak_json *obj, const char *key);
AKDEF ak_json *ak_json_removen(ak_json *obj, const char *key, size_t key_len);
/* Shorthands for ak_json_set(d, obj, key, ak_json_new_*(d, ...)). */
AKDEF ak_result ak_json_set_str(ak_json_doc *d, ak_json *obj, const char *key, const char *s);
AKDEF ak_result ak_json_set_int(ak_json_doc *d, ak_json *obj, const char *key, int64_t v);
AKDEF ak_result ak_json_set_bool(ak_json_doc *d, ak_json *obj, const char *key, int v);

/* ---- access (all accept NULL and then return NULL / 0 / the default) ------------------ */

AKDEF ak_json_type ak_json_typeof(const ak_json *v); /* NULL counts as AK_JSON_NULL */
AKDEF int ak_json_is(const ak_json *v, ak_json_type t);
AKDEF size_t ak_json_len(const ak_json *v);          /* string bytes or child count */
AKDEF ak_json *ak_json_first(const ak_json *v);      /* first child of a container */
/* Member lookup returns the last member with the key, as JavaScript's JSON.parse keeps it. */
AKDEF ak_json *ak_json_get(const ak_json *obj, const char *key);
AKDEF ak_json *ak_json_getn(const ak_json *obj, const char *key, size_t key_len);
AKDEF ak_json *ak_json_at(const ak_json *arr, size_t index);
/* Path lookup for the common case: "choices[0].delta.content", optionally starting with "$"
   or "$.". Keys may not contain '.' or '['; use JSON Pointer for those. */
AKDEF ak_json *ak_json_path(const ak_json *root, const char *path);
/* The string of a STRING value (NUL-terminated), else NULL / def. */
AKDEF const char *ak_json_str(const ak_json *v);
AKDEF const char *ak_json_str_or(const ak_json *v, const char *def);
/* Shorthand: ak_json_str(ak_json_get(obj, key)). */
AKDEF const char *ak_json_get_str(const ak_json *obj, const char *key);
AKDEF int ak_json_bool(const ak_json *v, int def);
/* Integer value: AK_ERR_JSON_TYPE unless v is a number with an exact int64 value. */
AKDEF ak_result ak_json_int64(const ak_json *v, int64_t *out);
AKDEF int64_t ak_json_int_or(const ak_json *v, int64_t def);
/* Nearest double; AK_ERR_JSON_TYPE if v is not a number. */
AKDEF ak_result ak_json_double(const ak_json *v, double *out);
AKDEF double ak_json_double_or(const ak_json *v, double def);
/* Deep equality as JavaScript deep-equal sees it: object member order does not matter,
   numbers compare by value (1 == 1.0), big integers by their digits. */
AKDEF int ak_json_equal(const ak_json *a, const ak_json *b);
/* 1 if v is NULL, JSON null, or an empty string, array or object. */
AKDEF int ak_json_is_empty(const ak_json *v);

/* ---- JSON Pointer (RFC 6901) ---------------------------------------------------------- */

/* Resolves ptr ("" is the root, "/a/0/b~1c" ...) against root. AK_ERR_JSON_POINTER when
   ptr is malformed or names nothing. */
AKDEF ak_result ak_json_pointer(const ak_json *root, const char *ptr, size_t len, ak_json **out,
                                ak_error *err);
/* Appends the pointer token for key (escaping ~ and /), with its leading slash. */
AKDEF void ak_json_pointer_append(ak_buf *ptr, const char *key, size_t key_len);

/* ---- JSON Patch (RFC 6902) ------------------------------------------------------------ */

/* Strict RFC 6902 (default) or the lenient rules of Genkit's client applyPatch: missing
   parents are created as objects, remove/replace of a missing member is a no-op, and the
   tokens __proto__, prototype and constructor are refused. */
#define AK_PATCH_LENIENT 0x01u

/* The most bytes (values, keys, text) the "copy" operations of one patch may add to a
   document; more is AK_ERR_LIMIT. Each copy can double a document. */
#ifndef AK_JSON_PATCH_MAX_COPY
#define AK_JSON_PATCH_MAX_COPY (16u * 1024u * 1024u)
#endif

/* Applies the operation array `patch` to *root (a value of d; may be NULL for an absent
   document) and stores the new root in *root. All or nothing: on failure *root is
   unchanged and err says which operation failed and why. Values from the patch are copied
   into d. */
AKDEF ak_result ak_json_patch(ak_json_doc *d, ak_json **root, const ak_json *patch,
                              unsigned flags, ak_error *err);

/* Builds in d the patch that turns `from` into `to`, using only add, remove and replace,
   the way Genkit streams custom state: objects member-wise (keys of from, then new keys of
   to), arrays index-wise over the common prefix then "add" at "/-" for extra elements or
   "remove" from the highest index down, anything else a "replace" (root pointer ""). NULL
   from/to mean absent. Equal inputs give an empty array. */
AKDEF ak_result ak_json_diff(ak_json_doc *d, const ak_json *from, const ak_json *to,
                             ak_json **patch);

/* ---- JSON Schema (the draft-07 subset tool and state schemas use) --------------------- */

/* Validates value against schema: type (name or array of names; "integer" included),
   properties, required, additionalProperties (bool or schema), items (also the tuple form
   with additionalItems), enum, const, anyOf, oneOf, allOf, not, minimum, maximum,
   exclusiveMinimum, exclusiveMaximum, minLength, maxLength (in code points), minItems,
   maxItems, minProperties, maxProperties, boolean schemas, and $ref to "#",
   "#/definitions/..." or "#/$defs/...". Unknown keywords are ignored. On failure returns
   AK_ERR_SCHEMA and err's message names the JSON Pointer of the first offending value and
   what was expected, e.g. "/city: must be string". AK_ERR_LIMIT: the schema nests deeper
   than AK_JSON_SCHEMA_MAX_DEPTH (a $ref loop) or needs more than AK_JSON_SCHEMA_MAX_STEPS
   subschema checks; AK_ERR_INVALID_ARGUMENT: the schema itself is malformed. */
AKDEF ak_result ak_json_schema_validate(const ak_json *schema, const ak_json *value, ak_error *err);

#ifdef __cplusplus
}
#endif
/* ---- end src/json.h ---- */

/* ---- begin src/stream.h ---- */
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
/* ---- end src/stream.h ---- */

/* ---- begin src/http.h ---- */
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
/* ---- end src/http.h ---- */

/* ---- begin src/replay.h ---- */
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
/* ---- end src/replay.h ---- */

/* ---- begin src/posix.h ---- */
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
/* ---- end src/posix.h ---- */

/* ---- begin src/model.h ---- */
/* >>model: Genkit's message model, the model interface the turn loop drives, the retry
   policy, the provider adapter engine and the built-in local models.

   Data model. Messages, parts, requests and responses are JSON values in Genkit's shapes
   (reference: genkit-agents.md §2.1), so unknown fields and metadata round-trip untouched:
     Message          {role: "system"|"user"|"model"|"tool", content: [Part], metadata?}
     Part             exactly one of text | media {url, contentType?} |
                      toolRequest {name, ref?, input?} | toolResponse {name, ref?, output?} |
                      reasoning | data | custom | resource {uri}; plus metadata?
     GenerateRequest  {messages, config?: {temperature, maxOutputTokens, topP, topK,
                      stopSequences, ...pass-through}, tools?: [{name, description,
                      inputSchema, outputSchema?}], toolChoice?: "auto"|"required"|"none",
                      output?: {format: "json"|"text", schema?}}
     GenerateResponse {message, finishReason, finishMessage?, usage?: {inputTokens,
                      outputTokens, totalTokens, thoughtsTokens?, cachedContentTokens?},
                      custom?}
     Chunk            {role: "model", index: 0, content: [Part]}
   The helpers below build and read them.

   Model calls. A model is a vtable driven through an ak_model_call: start it, poll it until
   it is no longer AK_PENDING, read call->response or call->error. Chunks stream through a
   callback as they arrive. Nothing blocks unless the model's transport does; the blocking
   convenience ak_model_generate loops the pump for you. Providers reached over HTTP are
   ak_http_model objects built from an ak_adapter (OpenAI, Anthropic, Gemini, Ollama are
   built in); a model implemented directly in C (a local inference engine, the test models)
   fills an ak_model itself. */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ak_finish_reason {
    AK_FINISH_UNKNOWN = 0,
    AK_FINISH_STOP,
    AK_FINISH_LENGTH,
    AK_FINISH_BLOCKED,
    AK_FINISH_INTERRUPTED,
    AK_FINISH_OTHER,
    AK_FINISH_ABORTED,
    AK_FINISH_DETACHED,
    AK_FINISH_FAILED
} ak_finish_reason;

AKDEF const char *ak_finish_reason_name(ak_finish_reason r); /* "stop", ... */
AKDEF ak_finish_reason ak_finish_reason_from_name(const char *name); /* UNKNOWN if not one */

/* ---- messages and parts --------------------------------------------------------------- */

typedef enum ak_part_kind {
    AK_PART_UNKNOWN = 0,
    AK_PART_TEXT,
    AK_PART_MEDIA,
    AK_PART_TOOL_REQUEST,
    AK_PART_TOOL_RESPONSE,
    AK_PART_REASONING,
    AK_PART_DATA,
    AK_PART_CUSTOM,
    AK_PART_RESOURCE
} ak_part_kind;

AKDEF ak_part_kind ak_part_kind_of(const ak_json *part);
AKDEF const char *ak_msg_role(const ak_json *msg);           /* NULL if absent */
/* Appends the concatenation of msg's text parts to out. */
AKDEF void ak_msg_text(const ak_json *msg, ak_buf *out);
/* {role, content: []} in d. */
AKDEF ak_json *ak_msg_new(ak_json_doc *d, const char *role);
/* Appends part to msg.content. */
AKDEF ak_result ak_msg_add(ak_json *msg, ak_json *part);
AKDEF ak_json *ak_part_text(ak_json_doc *d, const char *text);
AKDEF ak_json *ak_part_textn(ak_json_doc *d, const char *text, size_t len);
AKDEF ak_json *ak_part_reasoning(ak_json_doc *d, const char *text);
AKDEF ak_json *ak_part_media(ak_json_doc *d, const char *url, const char *content_type);
/* input/output are copied into d (NULL leaves them out). ref may be NULL. */
AKDEF ak_json *ak_part_tool_request(ak_json_doc *d, const char *name, const char *ref,
                                    const ak_json *input);
AKDEF ak_json *ak_part_tool_response(ak_json_doc *d, const char *name, const char *ref,
                                     const ak_json *output);
/* Shape checks for data arriving from outside (HTTP clients, stores). The message names the
   offending location, e.g. "messages[2].content[0]: a part needs exactly one of text, media,
   toolRequest, toolResponse, reasoning, data, custom, resource". */
AKDEF ak_result ak_msg_validate(const ak_json *msg, ak_error *err);
AKDEF ak_result ak_part_validate(const ak_json *part, ak_error *err);

/* Splits a data URL ("data:image/png;base64,AAAA"). On success *mime and *data point into url
   (not NUL-terminated at their ends: use the lengths). AK_ERR_INVALID_ARGUMENT if url is not a
   base64 data URL. */
AKDEF ak_result ak_data_url_split(const char *url, const char **mime, size_t *mime_len,
                                  const char **data, size_t *data_len);

/* ---- model calls ---------------------------------------------------------------------- */

typedef struct ak_model_call ak_model_call;

/* Receives each streamed chunk ({role, index, content}); the chunk is only valid during the
   call, copy what you keep. Return non-AK_OK to cancel the call. */
typedef ak_result (*ak_chunk_fn)(void *ud, const ak_json *chunk);

typedef enum ak_call_state {
    AK_CALL_IDLE = 0,
    AK_CALL_RUNNING,
    AK_CALL_WAITING,   /* waiting out a retry delay */
    AK_CALL_DONE,      /* response set */
    AK_CALL_FAILED     /* error set */
} ak_call_state;

/* Bounded retries with exponential backoff and jitter for retryable failures (429,
   5xx/529, connection errors) that happen before anything was streamed to the caller. The
   provider's own delay (Retry-After, retry-after-ms, Gemini RetryInfo) wins when given,
   capped at max_delay_ms. Zero fields take the defaults. */
typedef struct ak_retry_policy {
    int max_attempts;          /* total attempts including the first; default 3; 1 = no retry */
    int64_t initial_delay_ms;  /* default 500 */
    int64_t max_delay_ms;      /* default 30000 */
    int no_jitter;             /* 1: exact delays (tests) */
} ak_retry_policy;

typedef struct ak_model ak_model;

struct ak_model_call {
    /* Set by the caller before ak_model_call_start. */
    ak_context *ctx;
    const ak_json *request;      /* GenerateRequest: config, tools, toolChoice, output */
    /* The conversation, borrowed: agents pass their shared history without copying it.
       ak_model_call_init fills it from request.messages. Models read these, never
       request.messages. */
    const ak_json *const *messages;
    size_t message_count;
    ak_json_doc *out;            /* the response is built here (caller-owned document) */
    int stream;                  /* 1: deliver chunks through on_chunk as they arrive */
    ak_chunk_fn on_chunk;
    void *chunk_ud;
    ak_retry_policy retry;
    int64_t timeout_ms;          /* per attempt; 0 = the model's default */

    /* Results. */
    ak_call_state state;
    ak_json *response;           /* GenerateResponse once DONE */
    ak_error error;              /* status + message once FAILED */
    int64_t retry_after_ms;      /* provider's delay hint for the last failure, -1 if none */
    int retryable;               /* the last failure may be retried */
    int attempts;
    int chunks;                  /* chunks delivered so far */

    /* Owned by the driver and the model. */
    ak_model *model;
    void *impl;                  /* the model's per-call state */
    int64_t timer;               /* free for the model's own use (e.g. a deadline) */
    int64_t wake_at;             /* end of a retry delay (mono ms), the driver's */
};

/* A model. start() begins an attempt: it either finishes it before returning (returns AK_OK
   having called ak_model_call_succeed or ak_model_call_fail) or returns AK_PENDING and
   finishes in a later poll(). poll() may block up to wait_ms for I/O. cancel() abandons a
   pending attempt and frees the per-call state; finished attempts hold no state. */
struct ak_model {
    const char *name;
    ak_result (*start)(ak_model *m, ak_model_call *call);
    ak_result (*poll)(ak_model *m, ak_model_call *call, int wait_ms);
    void (*cancel)(ak_model *m, ak_model_call *call);
    void *ud;
};

/* Zeroes call and sets the fields every call needs; messages come from request.messages
   (pointers kept in out's arena). */
AKDEF void ak_model_call_init(ak_model_call *call, ak_context *ctx, const ak_json *request,
                              ak_json_doc *out);
/* Starts the first attempt. AK_PENDING: poll it; AK_OK: finished (DONE or FAILED). */
AKDEF ak_result ak_model_call_start(ak_model_call *call, ak_model *model);
/* Advances a running call, waiting up to wait_ms for I/O or a retry delay. */
AKDEF ak_result ak_model_call_poll(ak_model_call *call, int wait_ms);
/* Abandons a running call: state FAILED with CANCELLED. Safe on finished calls. */
AKDEF void ak_model_call_cancel(ak_model_call *call);
/* Blocking convenience: start + poll until finished. Returns AK_OK with *response, or
   AK_ERR_MODEL with err filled (status from the provider). */
AKDEF ak_result ak_model_generate(ak_context *ctx, ak_model *model, const ak_json *request,
                                  ak_json_doc *out, ak_json **response, ak_error *err);

/* The full GenerateRequest of a call, messages included, built in d (for logging, tests,
   and models that forward JSON). */
AKDEF ak_json *ak_model_request_json(const ak_model_call *call, ak_json_doc *d);
/* For model implementations: deliver a chunk, finish an attempt. */
AKDEF ak_result ak_model_call_emit(ak_model_call *call, const ak_json *chunk);
AKDEF void ak_model_call_succeed(ak_model_call *call, ak_json *response);
/* Records a failure: status, message, whether a retry may help and the provider's delay
   (-1 for none). */
AKDEF void ak_model_call_fail(ak_model_call *call, ak_status status, int retryable,
                              int64_t retry_after_ms, const char *fmt, ...);

/* ---- provider adapters ---------------------------------------------------------------- */

/* What a provider adapter builds for one request. */
#ifndef AK_MAX_REQUEST_HEADERS
#define AK_MAX_REQUEST_HEADERS 16
#endif
typedef struct ak_http_out {
    ak_buf url;
    ak_buf body;
    ak_buf header_text;          /* header strings, NUL-separated, owned here */
    ak_header headers[AK_MAX_REQUEST_HEADERS];
    size_t header_count;
    const char *method;          /* static string */
} ak_http_out;

AKDEF void ak_http_out_init(ak_http_out *o, const ak_allocator *a);
AKDEF void ak_http_out_free(ak_http_out *o);
/* Adds a header; its text is copied. AK_ERR_LIMIT beyond AK_MAX_REQUEST_HEADERS. */
AKDEF ak_result ak_http_out_header(ak_http_out *o, const char *name, const char *value);

/* How to reach a provider. Strings are borrowed and must outlive the model. */
typedef struct ak_provider_config {
    const char *model;           /* provider model id, e.g. "gpt-4o-mini" */
    const char *base_url;        /* NULL = the provider's public endpoint */
    const char *api_key;         /* sent as the provider expects; never logged */
    const ak_header *headers;    /* extra headers (e.g. OpenAI-Organization, proxies) */
    size_t header_count;
    ak_transport *transport;     /* required */
    int64_t timeout_ms;          /* per attempt; 0 = 120000 */
    ak_retry_policy retry;
    unsigned flags;              /* adapter-specific AK_*_ flags */
} ak_provider_config;

/* A response decoder: what an adapter sees of one HTTP response. The engine feeds it the
   status, headers and body bytes (any split), runs the SSE or NDJSON splitter for streaming
   responses, and hands the adapter one event at a time, each parsed into `scratch` (reset
   after every event). */
typedef struct ak_decode ak_decode;
typedef struct ak_adapter ak_adapter;

typedef enum ak_stream_format { AK_STREAM_SSE = 0, AK_STREAM_NDJSON } ak_stream_format;

struct ak_adapter {
    const char *name;            /* "openai", "anthropic", "gemini", "ollama" */
    ak_stream_format format;     /* framing of streaming responses */
    size_t state_size;           /* bytes of per-response state, zeroed before use */
    /* Optional: set up / release the state (buffers made with ak_context_allocator). */
    void (*init)(ak_decode *dc);
    void (*cleanup)(ak_decode *dc);
    /* Builds the provider request: request holds config/tools/toolChoice/output, the
       conversation is messages[0..count). */
    ak_result (*build)(const ak_provider_config *cfg, const ak_json *request,
                       const ak_json *const *messages, size_t count, int stream,
                       ak_http_out *out, ak_error *err);
    /* One streaming event: for SSE the event name (NULL for "message") and the data; for
       NDJSON one line. `data` is also parsed as JSON into `json` when it is JSON (NULL
       otherwise, e.g. "[DONE]"). */
    ak_result (*event)(ak_decode *dc, const char *name, const char *data, size_t len,
                       const ak_json *json);
    /* A whole non-streaming 2xx body, parsed. */
    ak_result (*body)(ak_decode *dc, const ak_json *json);
    /* End of a streaming body: check the terminal marker was seen and build the response
       (ak_decode_finish); a missing marker must be an error, never success. */
    ak_result (*end)(ak_decode *dc);
    /* A non-2xx response: fill the error message (and retry hints) from the provider's error
       body (json may be NULL when it did not parse; fall back to the status line). */
    void (*error)(ak_decode *dc, int status, const char *body, size_t len, const ak_json *json);
};

struct ak_decode {
    ak_context *ctx;
    const ak_adapter *adapter;
    void *state;                 /* adapter state, state_size bytes */
    ak_json_doc *out;            /* the final response is built here */
    ak_json_doc scratch;         /* per-event parse/build space */
    int stream;
    int status;                  /* HTTP status */
    int64_t retry_after_ms;      /* from headers or body, -1 if none */
    int no_retry;                /* x-should-retry: false, insufficient_quota, ... */
    int retryable;               /* set by ak_decode_done for failures worth retrying */
    ak_buf body;                 /* non-streaming and error bodies */
    size_t max_body;             /* limit for body (default 16 MiB) */
    ak_chunk_fn on_chunk;
    void *chunk_ud;
    int chunks;
    ak_json *response;           /* set when decoding succeeded */
    ak_error error;              /* set when it failed */
    int failed;
    void *framing;               /* the SSE / NDJSON parser (engine-owned) */
};

AKDEF ak_result ak_decode_init(ak_decode *dc, ak_context *ctx, const ak_adapter *adapter,
                               int stream, ak_json_doc *out);
AKDEF void ak_decode_free(ak_decode *dc);
AKDEF ak_result ak_decode_status(ak_decode *dc, int status);
AKDEF ak_result ak_decode_header(ak_decode *dc, const char *name, size_t name_len,
                                 const char *value, size_t value_len);
AKDEF ak_result ak_decode_body(ak_decode *dc, const char *data, size_t len);
/* The transport finished (rc AK_OK) or failed. Afterwards exactly one of dc->response /
   dc->failed is set. */
AKDEF ak_result ak_decode_done(ak_decode *dc, ak_result rc, const char *msg);
/* For adapters: deliver a chunk ({content: [parts]}, usually built in dc->scratch, which is
   reset after every event); fail the response (the first failure wins); build the final
   response {message, finishReason, finishMessage?, usage?}: message and usage must already
   live in dc->out, since scratch does not survive the event. */
AKDEF ak_result ak_decode_emit(ak_decode *dc, const ak_json *chunk);
AKDEF ak_result ak_decode_fail(ak_decode *dc, ak_status status, const char *fmt, ...);
AKDEF ak_result ak_decode_finish(ak_decode *dc, ak_json *message, ak_finish_reason reason,
                                 const char *finish_message, ak_json *usage);

/* An HTTP model: a provider adapter + its configuration + a transport. `model` is the
   ak_model to hand to agents. The object must not move while calls run. */
typedef struct ak_http_model {
    ak_model model;
    ak_context *ctx;
    const ak_adapter *adapter;
    ak_provider_config cfg;
    char name[96];
} ak_http_model;

AKDEF ak_result ak_http_model_init(ak_http_model *m, ak_context *ctx, const ak_adapter *adapter,
                                   const ak_provider_config *cfg);

/* The built-in adapters.

   ak_adapter_openai: OpenAI Chat Completions, POST {base}/chat/completions, base default
   "https://api.openai.com/v1". Also every OpenAI-compatible server: give base_url
   ("http://localhost:8080/v1" for llama.cpp, "http://localhost:11434/v1" for Ollama,
   "http://localhost:8000/v1" for vLLM) and the flags below where the server differs.
   Reasoning text of compatible servers (reasoning_content / reasoning deltas) becomes
   reasoning parts; a refusal becomes finishReason "blocked" with the refusal as
   finishMessage; config keys Genkit does not define are sent as they are.

   ak_adapter_ollama: Ollama's native API, POST {base}/api/chat (NDJSON streaming), base
   default "http://localhost:11434". Images must be base64 data URLs; toolChoice "none"
   leaves the tools out ("auto" and "required" are not supported by Ollama and ignored);
   config keys Genkit does not define go into "options", except think and keep_alive,
   which are request fields. The response's total_duration becomes latencyMs.

   Both: tool requests in the history without a ref get "call_<n>" (the n-th such request),
   and the n-th tool response without a ref gets the same id; tool calls the provider sent
   without an id get the ref "call_<i>" (i = position in the response).

   ak_adapter_anthropic: Anthropic Messages, POST {base}/v1/messages, base default
   "https://api.anthropic.com", key in x-api-key, anthropic-version 2023-06-01. System
   messages (text only) become the top-level system prompt; max_tokens defaults to 4096;
   JSON output with a schema uses output_config. Tool requests and responses need a ref.
   Thinking comes back as reasoning parts with metadata.thoughtSignature, redacted thinking
   as {custom: {redactedThinking}}; both go back to the API unchanged (reasoning without a
   signature is left out). Usage: cache reads as cachedContentTokens, both cache counters
   under usage.custom.

   ak_adapter_gemini: the Gemini API, POST {base}/v1beta/models/{model}:generateContent or
   :streamGenerateContent?alt=sse, base default "https://generativelanguage.googleapis.com",
   key in x-goog-api-key. cfg->model may also name a resource ("tunedModels/x"). System
   messages become systemInstruction; tools are sent with parametersJsonSchema and '/' in
   tool names as "__" (read back as '/'); JSON output sets responseMimeType and
   responseJsonSchema. Config keys Genkit does not define go into generationConfig, except
   safetySettings, cachedContent, labels and toolConfig, which are request fields. Function
   calls without an id get the ref "gemini-call-<i>", which is never sent back as an id.
   thoughtSignature round-trips on the part that carried it (also empty text parts).

   Anthropic and Gemini: config keys Genkit does not define are sent as they are; one named
   like a field the adapter derives (max_tokens, tool_choice, responseMimeType, ...) wins
   over the derived one; apiKey in a config is never sent. */

/* ak_provider_config.flags of ak_adapter_openai. */
#define AK_OPENAI_MAX_TOKENS 0x01u        /* maxOutputTokens as max_tokens (llama.cpp, older
                                             vLLM and Ollama, most gateways) instead of
                                             max_completion_tokens */
#define AK_OPENAI_DEVELOPER_ROLE 0x02u    /* system messages with role "developer" (o-series
                                             and gpt-5 models prefer it) */
#define AK_OPENAI_NO_STREAM_OPTIONS 0x04u /* no stream_options.include_usage, for servers that
                                             reject it (usage then only if sent anyway) */
#define AK_OPENAI_TOP_K 0x08u             /* topK as top_k (llama.cpp, vLLM); OpenAI has none */

/* Most tool calls one response may carry (a DoS guard; more fails the response). */
#ifndef AK_MAX_TOOL_CALLS
#define AK_MAX_TOOL_CALLS 128
#endif

AKDEF const ak_adapter *ak_adapter_openai(void);
AKDEF const ak_adapter *ak_adapter_anthropic(void);
AKDEF const ak_adapter *ak_adapter_gemini(void);
AKDEF const ak_adapter *ak_adapter_ollama(void);
/* Hosted builds: sets m up for the first provider configured in the environment, checked in
   this order (the model id variables are optional):
     OPENAI_API_KEY or OPENAI_BASE_URL   OpenAI or any OpenAI-compatible server (llama.cpp,
                                         Ollama /v1, vLLM); OPENAI_MODEL (gpt-4o-mini)
     ANTHROPIC_API_KEY                   ANTHROPIC_MODEL (claude-sonnet-4-5)
     GEMINI_API_KEY                      GEMINI_MODEL (gemini-2.5-flash)
     OLLAMA_HOST                         e.g. http://localhost:11434; OLLAMA_MODEL (llama3.2)
   AK_ERR_NOT_FOUND when none is set. The environment strings are used in place (they live
   as long as the process). Keys are never logged. */
AKDEF ak_result ak_http_model_from_env(ak_http_model *m, ak_context *ctx, ak_transport *transport,
                                       ak_error *err);
/* Looks an adapter up by name ("openai", ...); NULL if unknown. */
AKDEF const ak_adapter *ak_adapter_find(const char *name);

/* ---- built-in local models ------------------------------------------------------------ */

/* The programmable model (conformance harness): answers the i-th call with the i-th queued
   response, after streaming that response's queued chunks. Responses and chunks are copied
   in. Accepts tool definitions. A call with nothing queued fails with INTERNAL. */
typedef struct ak_programmable_model {
    ak_model model;
    ak_json_doc doc;
    ak_json *responses;          /* array of GenerateResponse */
    ak_json *chunks;             /* array of arrays of chunks (may be shorter) */
    size_t next;
    ak_json *last_request;       /* copy of the most recent request (for tests) */
    ak_json_doc request_doc;
} ak_programmable_model;

AKDEF void ak_programmable_model_init(ak_programmable_model *m, const ak_allocator *alloc,
                                      const char *name);
AKDEF void ak_programmable_model_free(ak_programmable_model *m);
/* Replaces the queue: responses is a JSON array of GenerateResponse, chunks an optional
   array of arrays of chunks (chunks[i] is streamed before responses[i]). */
AKDEF ak_result ak_programmable_model_set(ak_programmable_model *m, const ak_json *responses,
                                          const ak_json *chunks);

/* The deterministic scripted model of the interop agents and the offline demo (no
   network): "stream w1 w2", "weather <city>", "transfer <n>", "delete <path>", "both",
   "count", "system?", "modelfail", "slowstream" (10 s, ends early when cancelled), else
   "echo: <text>". See interop-agents.md. */
AKDEF void ak_scripted_model_init(ak_model *m);

#ifdef __cplusplus
}
#endif
/* ---- end src/model.h ---- */

/* ---- begin src/session.h ---- */
/* >>session: session state, snapshots, the store interface, the in-memory and file stores.

   A session's state is {sessionId, messages, custom?, artifacts} (Genkit's SessionState).
   Everything in it is immutable once written and shared by reference: a snapshot taken after
   turn 50 shares turns 1..49 with the snapshot before it, so saving a turn costs what the
   turn added, not the whole history. Messages live in an ak_msgs list (shared prefixes);
   custom state and artifacts in ak_jref values (copy on write).

   Snapshots (Genkit's SessionSnapshot) are reference-counted immutable records. A store
   keeps them: get by snapshot id or by session id (the latest leaf), and save through an
   atomic read-modify-write that calls a mutator with the current row. */

#ifdef __cplusplus
extern "C" {
#endif

/* Longest snapshot or session id accepted from outside (clients, files). */
#ifndef AK_ID_MAX
#define AK_ID_MAX 128
#endif

typedef enum ak_snapshot_status {
    AK_SNAPSHOT_NONE = 0,
    AK_SNAPSHOT_PENDING,
    AK_SNAPSHOT_COMPLETED,
    AK_SNAPSHOT_ABORTED,
    AK_SNAPSHOT_FAILED,
    AK_SNAPSHOT_EXPIRED          /* read-time only: pending with a heartbeat older than 60 s */
} ak_snapshot_status;

AKDEF const char *ak_snapshot_status_name(ak_snapshot_status s); /* "pending", ...; NULL for NONE */
AKDEF ak_snapshot_status ak_snapshot_status_from_name(const char *name);

/* ---- message lists -------------------------------------------------------------------- */

/* An immutable message list made of segments: the first prev_count messages of `prev`, then
   this segment's own messages. Appending to a list somebody else also holds starts a new
   segment on top; nothing is ever copied twice. */
typedef struct ak_msgs ak_msgs;
struct ak_msgs {
    uint32_t refs;
    const ak_allocator *alloc;
    ak_msgs *prev;               /* retained */
    size_t prev_count;
    size_t count;                /* prev_count + own messages */
    ak_json_doc doc;             /* owns this segment's messages */
    ak_json *first, *last;       /* own messages, linked through next */
};

AKDEF size_t ak_msgs_count(const ak_msgs *m);                 /* NULL = 0 */
/* The i-th message (0-based), or NULL. O(segments + messages of its segment). */
AKDEF const ak_json *ak_msgs_at(const ak_msgs *m, size_t i);
/* Fills out[0..count) with every message in order (out has room for ak_msgs_count). */
AKDEF void ak_msgs_collect(const ak_msgs *m, const ak_json **out);
/* Appends a copy of msg to *m, starting a new segment when *m is shared. */
AKDEF ak_result ak_msgs_append(const ak_allocator *a, ak_msgs **m, const ak_json *msg);
/* Repacks the top segment's own messages into one exact-size block when this caller holds
   the only reference (segments grow geometrically while a turn appends; call this before
   sharing the list, e.g. when a snapshot takes it). Costs what the segment holds. */
AKDEF ak_result ak_msgs_compact(const ak_allocator *a, ak_msgs *m);
/* Keeps the first n messages (n <= count). */
AKDEF ak_result ak_msgs_truncate(const ak_allocator *a, ak_msgs **m, size_t n);
/* A new list with copies of the messages of a JSON array (NULL or [] gives an empty list). */
AKDEF ak_result ak_msgs_from_json(const ak_allocator *a, const ak_json *array, ak_msgs **out);
/* Builds the JSON array of the messages in d. */
AKDEF ak_json *ak_msgs_to_json(const ak_msgs *m, ak_json_doc *d);
AKDEF ak_msgs *ak_msgs_retain(ak_msgs *m);
AKDEF void ak_msgs_release(ak_msgs *m);

/* ---- session state -------------------------------------------------------------------- */

typedef struct ak_session_state {
    char *session_id;            /* owned, NUL-terminated; NULL until known */
    ak_msgs *messages;           /* NULL = none */
    ak_jref *custom;             /* NULL = absent (the key is left out) */
    ak_jref *artifacts;          /* JSON array; NULL = [] */
} ak_session_state;

/* A second reference to the same state (shares everything). */
AKDEF ak_result ak_session_state_copy(const ak_allocator *a, const ak_session_state *from,
                                      ak_session_state *to);
AKDEF void ak_session_state_free(const ak_allocator *a, ak_session_state *s);
AKDEF ak_result ak_session_state_set_id(const ak_allocator *a, ak_session_state *s, const char *id);
/* {"custom"?:...,"artifacts":[...],"messages":[...],"sessionId":...} in d (Genkit's order). */
AKDEF ak_json *ak_session_state_to_json(const ak_session_state *s, ak_json_doc *d);
/* From a SessionState value (validated: messages must be valid messages, artifacts an
   array of {name?, parts}); the state is copied. */
AKDEF ak_result ak_session_state_from_json(const ak_allocator *a, const ak_json *v,
                                           ak_session_state *out, ak_error *err);

/* ---- snapshots ------------------------------------------------------------------------ */

typedef struct ak_snapshot {
    uint32_t refs;
    const ak_allocator *alloc;
    char *id;                    /* all strings owned by the snapshot */
    char *session_id;
    char *parent_id;             /* NULL = none */
    int64_t created_at;          /* ms since the epoch */
    int64_t updated_at;          /* 0 = absent */
    int64_t heartbeat_at;        /* 0 = absent */
    ak_snapshot_status status;   /* NONE = absent (treated as completed) */
    ak_finish_reason finish_reason; /* UNKNOWN with has_finish_reason 0 = absent */
    int has_finish_reason;
    ak_jref *error;              /* {status, message, details?} or NULL */
    ak_session_state state;
} ak_snapshot;

/* A new snapshot (refs 1) with copies of the ids (parent_id may be NULL) and a shared copy of
   the state (may be NULL for an empty one). */
AKDEF ak_snapshot *ak_snapshot_new(const ak_allocator *a, const char *id, const char *session_id,
                                   const char *parent_id, const ak_session_state *state);
/* A copy sharing everything, to change fields of before saving (refs 1). */
AKDEF ak_snapshot *ak_snapshot_clone(const ak_snapshot *s);
AKDEF ak_snapshot *ak_snapshot_retain(ak_snapshot *s);
AKDEF void ak_snapshot_release(ak_snapshot *s);
AKDEF ak_result ak_snapshot_set_error(ak_snapshot *s, ak_status status, const char *message,
                                      const ak_json *details);
/* SessionSnapshot JSON in d, in Genkit's key order: {snapshotId, sessionId, createdAt,
   updatedAt?, state, parentId?, status?, finishReason?, error?, heartbeatAt?}.
   status_override (NONE = keep) lets readers report "expired". */
AKDEF ak_json *ak_snapshot_to_json(const ak_snapshot *s, ak_snapshot_status status_override,
                                   ak_json_doc *d);
/* Parses a SessionSnapshot (as stored or sent); AK_ERR_DATA_LOSS with a message saying what
   is wrong when it is not one. */
AKDEF ak_result ak_snapshot_from_json(const ak_allocator *a, const ak_json *v, ak_snapshot **out,
                                      ak_error *err);
/* The status a reader sees at time now_ms: pending with a heartbeat older than 60 s reads as
   expired. */
AKDEF ak_snapshot_status ak_snapshot_read_status(const ak_snapshot *s, int64_t now_ms);

/* Parses "2026-11-21T10:00:00.123Z" (what ak_iso8601 writes; also without milliseconds) to
   ms since the epoch. */
AKDEF ak_result ak_iso8601_parse(const char *s, size_t len, int64_t *ms);

/* ---- stores --------------------------------------------------------------------------- */

typedef struct ak_store ak_store;

/* Called by save with the current row (NULL when there is none). Set *next to the snapshot
   to write (a new reference the store takes over) or leave it NULL to skip the write. An
   error return aborts the save with that error. May be called more than once by retrying
   stores, so it must not have side effects. */
typedef ak_result (*ak_store_mutator)(void *ud, const ak_snapshot *current, ak_snapshot **next);
/* Told about each write to a watched id (the snapshot is only valid during the call). */
typedef void (*ak_store_listener)(void *ud, const ak_snapshot *snap);

struct ak_store {
    /* Exactly one of snapshot_id / session_id. By session: the latest leaf (snapshots of that
       session nobody names as parent; several: the newest createdAt; none:
       AK_ERR_STATE "corrupt or cyclic history"). *out is a new reference, or NULL when
       nothing matches (still AK_OK). `context` is the caller's auth context (may be NULL),
       for per-tenant stores. */
    ak_result (*get)(ak_store *s, const char *snapshot_id, const char *session_id,
                     const ak_json *context, ak_snapshot **out, ak_error *err);
    /* Atomic read-modify-write of snapshot_id (NULL: the mutator's id, else a new UUID).
       Writes the id it stored into written_id (empty when the mutator skipped). */
    ak_result (*save)(ak_store *s, const char *snapshot_id, ak_store_mutator fn, void *fn_ud,
                      const ak_json *context, char written_id[AK_ID_MAX + 1], ak_error *err);
    /* Optional (makes agents abortable): call fn after every write to snapshot_id until
       unwatch(token). */
    ak_result (*watch)(ak_store *s, const char *snapshot_id, ak_store_listener fn, void *fn_ud,
                       const ak_json *context, void **token);
    void (*unwatch)(ak_store *s, void *token);
    /* Optional: notice writes made elsewhere (another process) and call the listeners. */
    ak_result (*poll)(ak_store *s);
    void *ud;
};

/* Validates an id that names a file or key: 1..AK_ID_MAX bytes of printable ASCII without
   '/', '\\', or NUL, and not "." or "..". */
AKDEF int ak_id_is_safe(const char *id);

/* ---- in-memory store ------------------------------------------------------------------ */

/* How many recently written or read snapshots keep their message list parsed ("hot"). Older
   ones keep only what their turn added, as compact JSON text, and are rebuilt when read. */
#ifndef AK_MEMSTORE_HOT
#define AK_MEMSTORE_HOT 64
#endif

typedef struct ak__memrow ak__memrow;
typedef struct ak__memsess ak__memsess;
typedef struct ak_memstore_watch ak_memstore_watch;

/* Snapshots live as compact rows: a binary id (for UUIDs), the parent's id, the messages the
   turn added as compact JSON text, and shared references to custom state and artifacts. A
   conversation of N turns costs N small rows, not N copies of its history. */
typedef struct ak_memstore {
    ak_store store;              /* hand &store to agents */
    ak_context *ctx;
    ak__memrow **rows;           /* hash table by snapshot id */
    size_t row_buckets, count;
    ak__memsess **sessions;      /* hash table by session id */
    size_t session_buckets, session_count;
    ak__memrow *hot[AK_MEMSTORE_HOT]; /* ring of rows whose message list is kept parsed */
    size_t hot_next;
    ak_memstore_watch *watches;
    uint32_t seq;                /* write counter */
    int reject_branching;        /* sessionId lookups with several leaves fail */
} ak_memstore;

AKDEF ak_result ak_memstore_init(ak_memstore *m, ak_context *ctx);
AKDEF void ak_memstore_free(ak_memstore *m);

/* ---- file store ----------------------------------------------------------------------- */

#ifndef AK_NO_STDIO
/* Snapshots as files: dir/<prefix>/<snapshotId>.json, one per row, replaced atomically (temp
   file, fsync, rename, fsync of the directory), so a crash leaves the old row or the new one,
   never a torn file. A row that adds messages to its parent's list stores only the new ones
   ("the first N messages of <parentId> + these"), with a full checkpoint every
   checkpoint_every rows of a chain; a checkpoint is a plain Genkit SessionSnapshot, and rows
   written by Genkit's FileSessionStore read as checkpoints. Saves are serialised across
   processes by an exclusive lock on dir/<prefix>/.lock (reads take it shared), so two
   processes saving the same row lose nothing. dir/<prefix>/.pointers/ holds one small file
   per session naming its latest row, so a sessionId lookup reads one file instead of the
   whole directory.

   Corrupt or truncated rows (only outside damage makes them) read as AK_ERR_DATA_LOSS
   naming the file; they never hide other rows. A sessionId scan skips rows it cannot parse
   (their session is unknown) and logs each at WARN; a row of the session that parses but
   whose delta chain is broken fails the lookup with DATA_LOSS. Snapshot ids must pass
   ak_id_is_safe and may not start with '.' (the store's own files do). Watch listeners run
   inside save (for this store's writes) and poll (for other processes' writes, noticed by
   content), after the lock is released, so they may call the store. */

/* Rows kept in memory (recently read or written): resuming the latest snapshot neither
   re-reads nor re-parses its chain. */
#ifndef AK_FILESTORE_CACHE
#define AK_FILESTORE_CACHE 32
#endif
/* Largest file read (DoS guard); a bigger row reads as DATA_LOSS. */
#ifndef AK_FILESTORE_MAX_FILE
#define AK_FILESTORE_MAX_FILE (64u << 20)
#endif
/* Longest delta chain a reader follows, and the largest checkpoint_every accepted. */
#ifndef AK_FILESTORE_MAX_DELTAS
#define AK_FILESTORE_MAX_DELTAS 1024
#endif

/* File operations. The defaults use POSIX (open/write/fsync/rename/mkdir/opendir/flock) or
   Win32; on other platforms, or with AK_FREESTANDING, there are none and every member must be
   set (the names follow FatFs and littlefs: f_open/f_write/f_sync/f_close map one to one).
   Tests wrap them to fail or "crash" at any step. Unless said otherwise each returns 0 on
   success and nonzero on failure. Paths use '/' separators. */
typedef struct ak_file_ops {
    /* Creates or truncates path for writing; *file is the handle the next three take. */
    int (*open_write)(void *ud, const char *path, void **file);
    int (*write)(void *ud, void *file, const void *data, size_t len); /* all len bytes */
    int (*sync)(void *ud, void *file);                               /* to stable storage */
    int (*close)(void *ud, void *file);          /* releases the handle even when it fails */
    /* Appends the whole file to out (respecting out->max); 1 = it does not exist. */
    int (*read_file)(void *ud, const char *path, ak_buf *out);
    int (*rename_file)(void *ud, const char *from, const char *to);  /* atomic replace */
    int (*remove_file)(void *ud, const char *path);                  /* missing is success */
    int (*sync_dir)(void *ud, const char *dir);  /* makes renames and removals in dir durable */
    int (*make_dir)(void *ud, const char *dir);  /* 0 = created, 1 = existed already */
    /* Calls fn(fud, name) for each entry of dir; 1 = dir does not exist. When fn returns
       nonzero the listing stops and fails (-1). */
    int (*list_dir)(void *ud, const char *dir, int (*fn)(void *fud, const char *name), void *fud);
    /* Locks path (a lock file, created when missing) exclusively or shared, waiting as long
       as needed; 1 = its directory does not exist. Must exclude other processes and other
       handles of the same process. */
    int (*lock)(void *ud, const char *path, int exclusive, void **handle);
    void (*unlock)(void *ud, void *handle);
    void *ud;
} ak_file_ops;

/* Fills ops with the platform defaults (ud NULL). AK_ERR_UNSUPPORTED where there are none. */
AKDEF ak_result ak_file_ops_default(ak_file_ops *ops);

typedef struct ak_filestore_desc {
    const char *dir;             /* root directory (required; created if missing) */
    /* Per-tenant subdirectory from the caller's context (NULL hook: "global"). A result that
       is NULL or fails ak_id_is_safe fails the call with PERMISSION_DENIED. */
    const char *(*prefix)(void *ud, const ak_json *context);
    void *prefix_ud;
    /* >0: after each save, keep the newest max_chain rows of the saved row's parent chain
       (itself included) and delete older ancestors, except rows a kept delta still needs:
       at most max_chain + interval - 1 rows stay, and a session that branched also keeps
       its branch points. Costs a read of each kept row per save. 0 = keep everything. */
    int max_chain;
    /* A full checkpoint every N rows of a chain (default 16; 1 = always full, like Genkit;
       at most AK_FILESTORE_MAX_DELTAS). The interval used is the smaller of this and
       max_chain, so that pruning never waits long for a checkpoint. */
    int checkpoint_every;
    int reject_branching;        /* sessionId lookups always scan and fail on several leaves */
    ak_file_ops ops;             /* NULL members: the platform defaults */
} ak_filestore_desc;

typedef struct ak_filestore_entry ak_filestore_entry;
typedef struct ak_filestore_watch ak_filestore_watch;

typedef struct ak_filestore {
    ak_store store;              /* hand &store to agents */
    ak_context *ctx;
    ak_filestore_desc desc;      /* defaults filled in; desc.dir points at dir */
    char *dir;                   /* owned copy of the root directory */
    ak_filestore_entry *cache;   /* AK_FILESTORE_CACHE slots */
    uint64_t cache_clock;        /* least-recently-used order */
    ak_filestore_watch *watches;
    int notifying;               /* >0 while listeners run (unwatch then only marks) */
    uint64_t bytes_written;      /* statistics: bytes written by saves (rows and pointers) */
    uint64_t files_read;         /* statistics: files read */
} ak_filestore;

/* Opens a file store on desc->dir (created if missing). ctx supplies memory, clock, random
   ids and the WARN log for skipped rows; it must outlive f. Fails with INVALID_ARGUMENT for a
   missing dir or an out-of-range option, UNSUPPORTED when the platform has no default file
   operations and desc->ops leaves one unset, IO when dir cannot be created. Thread safety:
   one thread at a time per store; any number of stores and processes may share dir. */
AKDEF ak_result ak_filestore_init(ak_filestore *f, ak_context *ctx, const ak_filestore_desc *desc,
                                  ak_error *err);
/* Releases the cache and the watches (f may have failed init; then nothing happens). */
AKDEF void ak_filestore_free(ak_filestore *f);
#endif

#ifdef __cplusplus
}
#endif
/* ---- end src/session.h ---- */

/* ---- begin src/agent.h ---- */
/* >>agent: tools, agents (prompt and custom), the turn loop, invocations, chats.

   An agent is Genkit's bidirectional agent action in C. An invocation takes an init
   (nothing, a snapshotId, a sessionId, or client-held state), a sequence of inputs (one turn
   each), streams chunks ({modelChunk} | {customPatch} | {artifact} | {turnEnd}) and resolves
   with one AgentOutput. Everything is a state machine: ak_invocation_step() does a bounded
   amount of work and returns AK_PENDING until the output is ready; callbacks (chunks, tools)
   run only inside the calls you make, on your thread. The blocking helpers (ak_chat_send)
   loop the same steps, so there is one code path for blocking and pumped use.

   Detached turns keep running after their invocation resolved: the agent owns them and
   ak_agent_pump() advances them. */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ak_agent ak_agent;
typedef struct ak_invocation ak_invocation;
/* What a custom agent's turn function and tools see of the running session: the invocation
   itself. */
typedef struct ak_invocation ak_runner;

/* ---- tools ---------------------------------------------------------------------------- */

typedef struct ak_tool ak_tool;
typedef struct ak_tool_call ak_tool_call;

/* A tool's code. Return what one of the helpers below returns: ak_tool_return (answered),
   ak_tool_fail (the turn fails), ak_tool_interrupt (the turn pauses for outside input), or
   AK_PENDING to answer later: keep call->handle and finish it with ak_agent_tool_return /
   ak_agent_tool_fail / ak_agent_tool_interrupt while the host keeps pumping. */
typedef ak_result (*ak_tool_fn)(ak_tool_call *call);

struct ak_tool {
    const char *name;
    const char *description;
    const char *input_schema;    /* JSON Schema text; NULL = any object */
    const char *output_schema;   /* JSON Schema text (informational); NULL = none */
    ak_tool_fn fn;               /* NULL with interrupt = 1: a pure interrupt (defineInterrupt) */
    void *ud;
    int interrupt;               /* 1: never runs; always pauses the turn for a respond/restart */
};

/* Handles of tools answering later: index + generation, so a stale one is refused. */
typedef struct ak_tool_handle {
    uint32_t id;
} ak_tool_handle;

struct ak_tool_call {
    const ak_tool *tool;
    ak_context *ctx;
    const ak_json *input;        /* validated against the tool's input schema */
    const ak_json *resumed;      /* metadata.resumed of a restart, else NULL */
    const char *ref;             /* the request's ref, may be NULL */
    const ak_json *context;      /* the caller's auth context, may be NULL */
    ak_runner *session;          /* the running session: custom state, artifacts, messages */
    ak_json_doc *doc;            /* build the output here */
    void *ud;                    /* the tool's ud */
    ak_tool_handle handle;       /* for tools answering later */
    /* Outcome, set by the helpers. */
    int state;                   /* internal */
    ak_json *output;
    ak_json *interrupt;          /* interrupt metadata (true when none given) */
    ak_error error;
};

AKDEF ak_result ak_tool_return(ak_tool_call *call, ak_json *output);
AKDEF ak_result ak_tool_fail(ak_tool_call *call, ak_status status, const char *fmt, ...);
/* metadata: any JSON value describing what is needed (copied); NULL means true. */
AKDEF ak_result ak_tool_interrupt(ak_tool_call *call, const ak_json *metadata);

/* ---- agents --------------------------------------------------------------------------- */

typedef struct ak_turn_info {
    const char *snapshot_id;     /* reserved before the turn; the turn's snapshot reuses it */
    const char *parent_snapshot_id; /* NULL on the first turn of a fresh session */
    int turn_index;              /* 0-based within the invocation */
} ak_turn_info;

/* A custom agent's turn: called with the turn's input, again and again (on each pump) until
   it returns something other than AK_PENDING: AK_OK ends the turn (finish reason from
   ak_runner_set_finish_reason, default none), an error from ak_runner_fail fails it. Use
   ak_runner_turn_state() for memory that persists across the calls of one turn, and check
   ak_runner_aborted(). */
typedef ak_result (*ak_turn_fn)(ak_runner *r, const ak_json *input, const ak_turn_info *turn,
                                void *ud);
/* Builds the invocation's result after the last input: *message (or NULL) and *artifacts (or
   NULL) in d, and the finish reason (UNKNOWN = the last turn's). Optional: by default the
   result is the last message of the history, all session artifacts, and the last turn's
   finish reason. */
typedef ak_result (*ak_result_fn)(ak_runner *r, ak_json_doc *d, ak_json **message,
                                  ak_json **artifacts, ak_finish_reason *reason, void *ud);

/* Reshapes what clients see (Genkit's clientTransform). state: replace *state (a
   SessionState value in d) with what the client may see. chunk: return 0 to drop the chunk,
   or replace *chunk. Stored data is never transformed. */
typedef struct ak_client_transform {
    ak_result (*state)(void *ud, ak_json_doc *d, ak_json **state);
    int (*chunk)(void *ud, ak_json_doc *d, ak_json **chunk);
    void *ud;
} ak_client_transform;

/* Observability: called at the start (end = 0) and end (end = 1) of every invocation, turn,
   model call and tool call, nested as Genkit's spans are. name: the agent, "runTurn", the
   model or the tool. End events carry duration_ms and the status. attrs (borrowed for the
   call, may be NULL): a tool's input at its start and its output at its end (NULL when it
   failed or interrupted), the model's GenerateResponse at the model call's end. */
typedef enum ak_trace_kind {
    AK_TRACE_INVOCATION = 0,
    AK_TRACE_TURN,
    AK_TRACE_MODEL,
    AK_TRACE_TOOL
} ak_trace_kind;
typedef void (*ak_trace_fn)(void *ud, ak_trace_kind kind, int end, const char *name,
                            int64_t duration_ms, ak_status status, const ak_json *attrs);

typedef struct ak_agent_desc {
    const char *name;            /* required */
    const char *description;
    /* Prompt agent (Genkit defineAgent): a model, a system prompt, tools, config. */
    ak_model *model;
    const char *system;          /* system prompt, NULL = none */
    const ak_tool *tools;
    size_t tool_count;
    const char *config;          /* generation config JSON text, e.g. {"temperature":0.2} */
    const char *output_format;   /* "json" for JSON output (optional) */
    const char *output_schema;   /* JSON Schema text for JSON output (optional) */
    int max_turns;               /* tool-loop iterations per turn, default 5 */
    ak_retry_policy retry;       /* model call retries */
    int stream_model;            /* 1: ask the model to stream even when nobody listens */
    /* Custom agent (Genkit defineCustomAgent): turn instead of the prompt loop. */
    ak_turn_fn turn;
    ak_result_fn result;
    void *ud;
    /* Both kinds. */
    ak_store *store;             /* NULL = client-managed state */
    const char *state_schema;    /* JSON Schema text for custom state, checked on load */
    ak_client_transform transform;
    ak_trace_fn trace;
    void *trace_ud;
} ak_agent_desc;

/* Sets up an agent. desc's strings, tools and model must outlive it; schemas and config are
   parsed (and checked) here. */
AKDEF ak_result ak_agent_init(ak_agent *a, ak_context *ctx, const ak_agent_desc *desc,
                              ak_error *err);
/* Stops and frees everything, background turns included. */
AKDEF void ak_agent_free(ak_agent *a);
/* Advances every background (detached) turn; waits up to wait_ms for I/O when there is
   nothing else to do. Returns AK_PENDING while background work remains. */
AKDEF ak_result ak_agent_pump(ak_agent *a, int wait_ms);
/* Finishes a tool call that returned AK_PENDING (output is copied). AK_ERR_NOT_FOUND for a
   handle that is stale or unknown (the turn ended or was aborted meanwhile). */
AKDEF ak_result ak_agent_tool_return(ak_agent *a, ak_tool_handle h, const ak_json *output);
AKDEF ak_result ak_agent_tool_fail(ak_agent *a, ak_tool_handle h, ak_status status,
                                   const char *message);
AKDEF ak_result ak_agent_tool_interrupt(ak_agent *a, ak_tool_handle h, const ak_json *metadata);

/* Companion actions. getSnapshot: exactly one of snapshot_id / session_id; *out is the
   (transformed) SessionSnapshot in d, with "expired" computed; not found is AK_ERR_NOT_FOUND
   with Genkit's message. Needs a store. */
AKDEF ak_result ak_agent_get_snapshot(ak_agent *a, const char *snapshot_id, const char *session_id,
                                      const ak_json *context, ak_json_doc *d, ak_json **out,
                                      ak_error *err);
/* abort: pending -> aborted. *previous is the status before ("pending", or the unchanged
   terminal status), or NULL when the snapshot does not exist. */
AKDEF ak_result ak_agent_abort(ak_agent *a, const char *snapshot_id, const ak_json *context,
                               const char **previous, ak_error *err);

/* ---- invocations ---------------------------------------------------------------------- */

/* Receives each AgentStreamChunk (valid during the call only). */
typedef void (*ak_agent_chunk_fn)(void *ud, const ak_json *chunk);

typedef struct ak_invoke_opts {
    ak_agent_chunk_fn on_chunk;  /* NULL = no streaming */
    void *chunk_ud;
    const ak_json *context;      /* auth context for stores and tools (copied) */
} ak_invoke_opts;

/* Starts an invocation with init (an AgentInit; NULL = {}). Init misuse is reported at once
   (AK_ERR_AGENT, err->status FAILED_PRECONDITION / INVALID_ARGUMENT, Genkit's messages); on
   success *out is the invocation (free it with ak_invocation_free). */
AKDEF ak_result ak_agent_invoke(ak_agent *a, const ak_json *init, const ak_invoke_opts *opts,
                                ak_invocation **out, ak_error *err);
/* Queues an AgentInput (copied): {message?, resume?: {respond?, restart?}, detach?}. */
AKDEF ak_result ak_invocation_send(ak_invocation *inv, const ak_json *input, ak_error *err);
/* No more inputs: the invocation resolves after the queued ones. */
AKDEF void ak_invocation_close(ak_invocation *inv);
/* Advances the invocation (waiting up to wait_ms for I/O). AK_PENDING: not resolved yet;
   AK_OK: the output is ready; AK_ERR_AGENT: it was rejected with an error (init misuse,
   detach without a store, ...; details in err). */
AKDEF ak_result ak_invocation_step(ak_invocation *inv, int wait_ms, ak_error *err);
/* The AgentOutput once resolved (valid until ak_invocation_free). */
AKDEF const ak_json *ak_invocation_output(const ak_invocation *inv);
/* Releases the caller's interest. A detached invocation still running is handed to its
   agent, which finishes it in ak_agent_pump and frees it then. */
AKDEF void ak_invocation_free(ak_invocation *inv);
/* Blocking convenience: one invocation with the given inputs (a JSON array), pumped until it
   resolves; the output is copied into d. */
AKDEF ak_result ak_agent_run(ak_agent *a, const ak_json *init, const ak_json *inputs,
                             const ak_invoke_opts *opts, ak_json_doc *d, ak_json **output,
                             ak_error *err);

/* ---- the session runner (custom agents, tools) ---------------------------------------- */

AKDEF size_t ak_runner_message_count(const ak_runner *r);
AKDEF const ak_json *ak_runner_message(const ak_runner *r, size_t i);
AKDEF ak_result ak_runner_add_message(ak_runner *r, const ak_json *msg);  /* copied */
AKDEF ak_result ak_runner_set_messages(ak_runner *r, const ak_json *array); /* copied */
AKDEF const ak_json *ak_runner_custom(const ak_runner *r);               /* NULL = none */
/* Replaces the custom state (copied) and streams the customPatch. AK_ERR_SCHEMA (state
   unchanged) when the agent has a state_schema the value does not match; AK_ERR_OUT_OF_MEMORY
   when it cannot (the turn then fails: a listener must not miss a patch). */
AKDEF ak_result ak_runner_set_custom(ak_runner *r, const ak_json *custom);
AKDEF const ak_json *ak_runner_artifacts(const ak_runner *r);            /* array, never NULL */
/* Adds artifacts (an Artifact or an array of them; same name replaces) and streams them. */
AKDEF ak_result ak_runner_add_artifacts(ak_runner *r, const ak_json *artifacts);
/* Streams a model chunk ({content: [...]}; role and index are filled in). */
AKDEF ak_result ak_runner_send_chunk(ak_runner *r, const ak_json *chunk);
AKDEF int ak_runner_aborted(const ak_runner *r);
AKDEF const char *ak_runner_session_id(const ak_runner *r);
AKDEF ak_finish_reason ak_runner_last_finish_reason(const ak_runner *r);
AKDEF const ak_json *ak_runner_last_error(const ak_runner *r);           /* NULL = none */
AKDEF void ak_runner_set_finish_reason(ak_runner *r, ak_finish_reason reason);
/* Fails the current turn; returns AK_ERR_AGENT for the turn function to return. */
AKDEF ak_result ak_runner_fail(ak_runner *r, ak_status status, const char *fmt, ...);
/* size bytes of zeroed memory kept for the current turn (same pointer on every call of the
   turn; NULL on out-of-memory). */
AKDEF void *ak_runner_turn_state(ak_runner *r, size_t size);
/* A per-turn JSON document, reset between turns. */
AKDEF ak_json_doc *ak_runner_doc(ak_runner *r);
/* The agent's context (clock, allocator) and the caller's auth context. */
AKDEF ak_context *ak_runner_context(const ak_runner *r);
AKDEF const ak_json *ak_runner_auth(const ak_runner *r);
/* AK_PENDING until mono_ms reaches `until` (or the turn is aborted: then AK_ERR_CANCELLED). */
AKDEF ak_result ak_runner_wait_until(ak_runner *r, int64_t until);

/* ---- the agent object ----------------------------------------------------------------- */

typedef struct ak__tool_slot ak__tool_slot;

/* Transparent so it can live on the stack or in a struct; treat the fields as private. */
struct ak_agent {
    ak_context *ctx;
    ak_agent_desc desc;
    ak_json_doc doc;             /* parsed config, schemas, the fixed part of model requests */
    ak_json *request;            /* {config?, tools?, output?} of every model call */
    ak_json *system_msg;         /* the system prompt message, or NULL */
    ak_json **input_schemas;     /* per tool; NULL entries accept any input */
    ak_json *state_schema;
    ak_invocation *invocations;  /* every live invocation, background ones included */
    ak__tool_slot *slots;        /* tools answering later */
    uint32_t slot_count;
};

/* ---- chats (Genkit's AgentChat) ------------------------------------------------------- */

/* Where a chat's turns go: a local agent (built in) or a remote one over HTTP. One turn =
   one AgentInput with an AgentInit; the backend streams chunks and produces the output. */
typedef struct ak_chat_backend {
    ak_result (*start)(void *ud, const ak_json *init, const ak_json *input, ak_agent_chunk_fn on_chunk,
                       void *chunk_ud, void **turn, ak_error *err);
    /* AK_PENDING, AK_OK with the AgentOutput copied into d, or an error (the turn was
       rejected: err has Genkit's status and message). Frees the turn when not PENDING. */
    ak_result (*poll)(void *ud, void *turn, int wait_ms, ak_json_doc *d, ak_json **output, ak_error *err);
    void (*cancel)(void *ud, void *turn);
    ak_result (*get_snapshot)(void *ud, const char *snapshot_id, const char *session_id, ak_json_doc *d,
                              ak_json **out, ak_error *err);
    /* *previous: a static status name or NULL. */
    ak_result (*abort)(void *ud, const char *snapshot_id, const char **previous, ak_error *err);
    void *ud;
} ak_chat_backend;

typedef struct ak_chat ak_chat;
struct ak_chat {
    ak_context *ctx;
    ak_chat_backend backend;
    ak_jref *init;               /* the init given at creation (e.g. {sessionId}) */
    ak_jref *client_state;       /* client-managed: the last output.state */
    ak_jref *custom;             /* tracked custom state (customPatch applied) */
    ak_jref *messages;           /* the client's view of the conversation */
    ak_jref *artifacts;
    char snapshot_id[AK_ID_MAX + 1];
    char session_id[AK_ID_MAX + 1];
    /* the turn in flight */
    void *turn;
    ak_json_doc turn_doc;        /* the input and the patched custom state of this turn */
    ak_json *turn_custom;
    size_t messages_before;      /* for rolling back the optimistic user message */
    ak_agent_chunk_fn on_chunk;
    void *chunk_ud;
    int cancelled;
};

/* A chat over any backend (the remote agent client uses this). */
AKDEF ak_result ak_chat_init_backend(ak_chat *c, ak_context *ctx, const ak_chat_backend *backend,
                                     const ak_json *init, ak_error *err);

/* The outcome of one chat turn (Genkit's AgentResponse). */
typedef struct ak_response {
    ak_json_doc doc;             /* owns everything below */
    ak_json *raw;                /* the AgentOutput */
    ak_json *message;            /* raw.message or NULL */
    ak_finish_reason finish_reason;
    const char *text;            /* text parts of message joined ("" when none) */
    const char *snapshot_id;     /* NULL when client-managed */
    const char *session_id;
    ak_json *interrupts;         /* array of the interrupted toolRequest parts */
    ak_json *state;              /* the custom state after the turn, or NULL */
    ak_json *artifacts;          /* array */
    ak_status error_status;      /* for failed turns */
    const char *error_message;
} ak_response;

/* Every call that fills an ak_response zeroes it first, so freeing one is always safe. */
AKDEF void ak_response_free(ak_response *r);

/* A chat over a local agent. init: NULL/{} for a fresh conversation, {snapshotId},
   {sessionId} or {state}. */
AKDEF ak_result ak_chat_init(ak_chat *c, ak_agent *a, const ak_json *init, ak_error *err);
AKDEF void ak_chat_free(ak_chat *c);
/* One turn with a text message; blocks (pumping) until it ends. Returns AK_OK with *r filled
   for every turn that ran (check r->finish_reason: a failed turn is AK_ERR_AGENT with r
   filled and err set); errors before the turn ran leave r empty. */
AKDEF ak_result ak_chat_send(ak_chat *c, const char *text, ak_response *r, ak_error *err);
/* The AgentInput of a user text message, {message: {role: "user", content: [{text}]}},
   built in d (NULL when d is out of memory): for ak_chat_start and ak_chat_detach. */
AKDEF ak_json *ak_input_text(ak_json_doc *d, const char *text);
/* Same as ak_chat_send with an AgentInput ({message}, {resume}, ...). */
AKDEF ak_result ak_chat_send_input(ak_chat *c, const ak_json *input, ak_response *r, ak_error *err);
/* Resume an interrupted turn: respond (array of toolResponse parts) and/or restart (array of
   toolRequest parts), either may be NULL. */
AKDEF ak_result ak_chat_resume(ak_chat *c, const ak_json *respond, const ak_json *restart,
                               ak_response *r, ak_error *err);
/* Streamed turn without blocking: start it, then call ak_chat_poll until it is not
   AK_PENDING; chunks arrive through on_chunk (a Genkit AgentStreamChunk). */
AKDEF ak_result ak_chat_start(ak_chat *c, const ak_json *input, ak_agent_chunk_fn on_chunk, void *ud,
                              ak_error *err);
AKDEF ak_result ak_chat_poll(ak_chat *c, int wait_ms, ak_response *r, ak_error *err);
/* Cancels a started turn on the client side (Genkit's abortSignal): it resolves aborted. */
AKDEF void ak_chat_cancel(ak_chat *c);
/* Runs the input detached: returns at once with the pending snapshot id (copied to id). */
AKDEF ak_result ak_chat_detach(ak_chat *c, const ak_json *input, char id[AK_ID_MAX + 1], ak_error *err);
/* Aborts the chat's current snapshot; *previous as for ak_agent_abort. */
AKDEF ak_result ak_chat_abort(ak_chat *c, const char **previous, ak_error *err);
/* Reads a snapshot (snapshot_id NULL = the chat's current one) into d: how a detached turn
   is polled. */
AKDEF ak_result ak_chat_get_snapshot(ak_chat *c, const char *snapshot_id, ak_json_doc *d, ak_json **out,
                                     ak_error *err);
/* A chat continuing from a stored snapshot (exactly one of snapshot_id / session_id). */
AKDEF ak_result ak_chat_load(ak_chat *c, ak_agent *a, const char *snapshot_id, const char *session_id,
                             ak_error *err);
AKDEF ak_result ak_chat_load_backend(ak_chat *c, ak_context *ctx, const ak_chat_backend *backend,
                                     const char *snapshot_id, const char *session_id, ak_error *err);
/* What the chat tracks between turns (valid until the next turn). */
AKDEF const char *ak_chat_snapshot_id(const ak_chat *c);
AKDEF const char *ak_chat_session_id(const ak_chat *c);
AKDEF const ak_json *ak_chat_custom(const ak_chat *c);
AKDEF const ak_json *ak_chat_messages(const ak_chat *c);
AKDEF const ak_json *ak_chat_artifacts(const ak_chat *c);

#ifdef __cplusplus
}
#endif
/* ---- end src/agent.h ---- */

/* ---- begin src/serve.h ---- */
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
/* ---- end src/serve.h ---- */

#endif /* AGENTKIT_H */

#if defined(AGENTKIT_IMPLEMENTATION) && !defined(AGENTKIT_IMPLEMENTATION_INCLUDED)
#define AGENTKIT_IMPLEMENTATION_INCLUDED

/* ---- begin src/base.c ---- */
/* >>base implementation */


#include <stdarg.h> /* compiler-provided, also when freestanding */

#if defined(AK_MALLOC) || defined(AK_REALLOC) || defined(AK_FREE)
#if !defined(AK_MALLOC) || !defined(AK_REALLOC) || !defined(AK_FREE)
#error "agentkit.h: define all of AK_MALLOC, AK_REALLOC and AK_FREE, or none of them"
#endif
#endif

#ifdef AK_FREESTANDING
#if defined(__GNUC__) || defined(__clang__)
/* These may still become calls to memcpy/memset/memmove/memcmp, the four functions a
   freestanding GCC or clang program must provide anyway. */
#ifndef AK_MEMCPY
#define AK_MEMCPY __builtin_memcpy
#endif
#ifndef AK_MEMMOVE
#define AK_MEMMOVE __builtin_memmove
#endif
#ifndef AK_MEMSET
#define AK_MEMSET __builtin_memset
#endif
#ifndef AK_MEMCMP
#define AK_MEMCMP __builtin_memcmp
#endif
#endif
#else
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef AK_MALLOC
#define AK_MALLOC(sz) malloc(sz)
#define AK_REALLOC(p, sz) realloc(p, sz)
#define AK_FREE(p) free(p)
#endif
#ifndef AK_MEMCPY
#define AK_MEMCPY memcpy
#endif
#ifndef AK_MEMMOVE
#define AK_MEMMOVE memmove
#endif
#ifndef AK_MEMSET
#define AK_MEMSET memset
#endif
#ifndef AK_MEMCMP
#define AK_MEMCMP memcmp
#endif
#endif /* AK_FREESTANDING */

#if !defined(AK_MEMCPY) || !defined(AK_MEMMOVE) || !defined(AK_MEMSET) || !defined(AK_MEMCMP)
#error "agentkit.h: this freestanding compiler needs AK_MEMCPY, AK_MEMMOVE, AK_MEMSET and AK_MEMCMP"
#endif

/* Internal functions. Some are used only by optional parts, hence "unused" is fine. */
#if defined(__GNUC__) || defined(__clang__)
#define AK_PRIVATE static __attribute__((unused))
#else
#define AK_PRIVATE static
#endif
#define AK__MIN(a, b) ((a) < (b) ? (a) : (b))
#define AK__MAX(a, b) ((a) > (b) ? (a) : (b))
#define AK__DEF(v, d) ((v) ? (v) : (d))
#define AK__COUNTOF(a) (sizeof(a) / sizeof((a)[0]))
#define AK__UNUSED(x) ((void)(x))
/* C and C++ both accept this cast; C++ needs it for void* conversions. */
#define AK__CAST(T, p) ((T)(p))

/* Lookup functions take const containers and hand back mutable children, as strchr does.
   Going through an integer keeps -Wcast-qual quiet about that one deliberate conversion. */
#define AK__UNCONST(T, p) ((T)(uintptr_t)(p))
/* Bytes are compared as unsigned everywhere. */
#define AK__U8(c) ((unsigned char)(c))
/* Keeps a rarely taken slow path out of a hot caller (fewer register saves there). */
#if defined(__GNUC__) || defined(__clang__)
#define AK__NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define AK__NOINLINE __declspec(noinline)
#else
#define AK__NOINLINE
#endif

AK_PRIVATE size_t ak__strlen(const char *s) {
    const char *p = s;
    while (*p) p++;
    return (size_t)(p - s);
}

AK_PRIVATE int ak__streq(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

/* The NUL-terminated s begins with prefix (never reads past the end of s). */
AK_PRIVATE int ak__starts_with(const char *s, const char *prefix) {
    while (*prefix && *s == *prefix) s++, prefix++;
    return !*prefix;
}

/* a[0..alen) equals the NUL-terminated b */
AK_PRIVATE int ak__eqn(const char *a, size_t alen, const char *b) {
    size_t i = 0;
    for (; i < alen; i++)
        if (b[i] != a[i] || !b[i]) return 0;
    return b[alen] == 0;
}

/* overflow-checked a + b */
AK_PRIVATE int ak__add_ok(size_t a, size_t b, size_t *out) {
    if (a > (size_t)-1 - b) return 0;
    *out = a + b;
    return 1;
}

/* ---- results and statuses ------------------------------------------------------------ */

AKDEF const char *ak_version(void) { return AK_VERSION_STRING; }

AKDEF const char *ak_result_str(ak_result r) {
#ifdef AK_NO_ERROR_STRINGS
    return r == AK_OK ? "ok" : "error";
#else
    switch (r) {
    case AK_OK: return "ok";
    case AK_PENDING: return "pending";
    case AK_ERR_INVALID_ARGUMENT: return "invalid argument";
    case AK_ERR_OUT_OF_MEMORY: return "out of memory";
    case AK_ERR_LIMIT: return "limit exceeded";
    case AK_ERR_NOT_FOUND: return "not found";
    case AK_ERR_UNSUPPORTED: return "unsupported";
    case AK_ERR_STATE: return "invalid state for this call";
    case AK_ERR_IO: return "I/O error";
    case AK_ERR_CANCELLED: return "cancelled";
    case AK_ERR_TIMEOUT: return "timed out";
    case AK_ERR_NO_RANDOM: return "no cryptographic random source";
    case AK_ERR_INTERNAL: return "internal error";
    case AK_ERR_ALREADY_EXISTS: return "already exists";
    case AK_ERR_JSON_SYNTAX: return "JSON syntax error";
    case AK_ERR_JSON_DEPTH: return "JSON nesting too deep";
    case AK_ERR_JSON_UTF8: return "invalid UTF-8";
    case AK_ERR_JSON_TYPE: return "JSON value has the wrong type";
    case AK_ERR_JSON_POINTER: return "JSON Pointer error";
    case AK_ERR_JSON_PATCH: return "JSON Patch error";
    case AK_ERR_JSON_TEST: return "JSON Patch test failed";
    case AK_ERR_SCHEMA: return "schema validation failed";
    case AK_ERR_STREAM: return "malformed stream";
    case AK_ERR_HTTP: return "malformed HTTP message";
    case AK_ERR_CONNECT: return "connection failed";
    case AK_ERR_TLS: return "TLS error";
    case AK_ERR_CLOSED: return "connection closed";
    case AK_ERR_TRUNCATED: return "truncated";
    case AK_ERR_HTTP_STATUS: return "HTTP error status";
    case AK_ERR_MODEL: return "model error";
    case AK_ERR_STORE: return "store error";
    case AK_ERR_DATA_LOSS: return "data loss";
    case AK_ERR_AGENT: return "agent error";
    }
    return "unknown result";
#endif
}

AKDEF ak_status ak_result_status(ak_result r) {
    switch (r) {
    case AK_OK: case AK_PENDING: return AK_STATUS_OK;
    case AK_ERR_INVALID_ARGUMENT: case AK_ERR_JSON_SYNTAX: case AK_ERR_JSON_DEPTH:
    case AK_ERR_JSON_UTF8: case AK_ERR_JSON_TYPE: case AK_ERR_JSON_POINTER:
    case AK_ERR_JSON_PATCH: case AK_ERR_SCHEMA: case AK_ERR_HTTP:
        return AK_STATUS_INVALID_ARGUMENT;
    case AK_ERR_JSON_TEST: case AK_ERR_STATE: return AK_STATUS_FAILED_PRECONDITION;
    case AK_ERR_OUT_OF_MEMORY: case AK_ERR_LIMIT: return AK_STATUS_RESOURCE_EXHAUSTED;
    case AK_ERR_NOT_FOUND: return AK_STATUS_NOT_FOUND;
    case AK_ERR_ALREADY_EXISTS: return AK_STATUS_ALREADY_EXISTS;
    case AK_ERR_UNSUPPORTED: return AK_STATUS_UNIMPLEMENTED;
    case AK_ERR_CANCELLED: return AK_STATUS_CANCELLED;
    case AK_ERR_TIMEOUT: return AK_STATUS_DEADLINE_EXCEEDED;
    case AK_ERR_IO: case AK_ERR_STREAM: case AK_ERR_CONNECT: case AK_ERR_TLS:
    case AK_ERR_CLOSED: case AK_ERR_TRUNCATED: case AK_ERR_HTTP_STATUS:
        return AK_STATUS_UNAVAILABLE;
    case AK_ERR_DATA_LOSS: return AK_STATUS_DATA_LOSS;
    case AK_ERR_NO_RANDOM: case AK_ERR_INTERNAL: return AK_STATUS_INTERNAL;
    case AK_ERR_MODEL: case AK_ERR_STORE: case AK_ERR_AGENT: return AK_STATUS_UNKNOWN;
    }
    return AK_STATUS_UNKNOWN;
}

/* Indexed by ak_status; names are Genkit's, HTTP codes those of @genkit-ai/core. */
static const struct { const char *name; int http; } ak__statuses[] = {
    {"OK", 200}, {"CANCELLED", 499}, {"UNKNOWN", 500}, {"INVALID_ARGUMENT", 400},
    {"DEADLINE_EXCEEDED", 504}, {"NOT_FOUND", 404}, {"ALREADY_EXISTS", 409},
    {"PERMISSION_DENIED", 403}, {"RESOURCE_EXHAUSTED", 429}, {"FAILED_PRECONDITION", 400},
    {"ABORTED", 409}, {"OUT_OF_RANGE", 400}, {"UNIMPLEMENTED", 501}, {"INTERNAL", 500},
    {"UNAVAILABLE", 503}, {"DATA_LOSS", 500}, {"UNAUTHENTICATED", 401},
};

AKDEF const char *ak_status_name(ak_status s) {
    if ((unsigned)s >= AK__COUNTOF(ak__statuses)) s = AK_STATUS_UNKNOWN;
    return ak__statuses[s].name;
}

AKDEF int ak_status_http(ak_status s) {
    if ((unsigned)s >= AK__COUNTOF(ak__statuses)) s = AK_STATUS_UNKNOWN;
    return ak__statuses[s].http;
}

AKDEF ak_status ak_status_from_name(const char *name, size_t len) {
    unsigned i;
    if (!name) return AK_STATUS_UNKNOWN;
    for (i = 0; i < AK__COUNTOF(ak__statuses); i++)
        if (ak__eqn(name, len, ak__statuses[i].name)) return (ak_status)i;
    return AK_STATUS_UNKNOWN;
}

AKDEF ak_status ak_status_from_http(int code) {
    switch (code) {
    case 200: case 201: case 204: return AK_STATUS_OK;
    case 400: return AK_STATUS_INVALID_ARGUMENT;
    case 401: return AK_STATUS_UNAUTHENTICATED;
    case 403: return AK_STATUS_PERMISSION_DENIED;
    case 404: return AK_STATUS_NOT_FOUND;
    case 408: case 504: return AK_STATUS_DEADLINE_EXCEEDED;
    case 409: return AK_STATUS_ABORTED;
    case 412: return AK_STATUS_FAILED_PRECONDITION;
    case 413: case 429: return AK_STATUS_RESOURCE_EXHAUSTED;
    case 499: return AK_STATUS_CANCELLED;
    case 501: return AK_STATUS_UNIMPLEMENTED;
    case 500: return AK_STATUS_INTERNAL;
    case 502: case 503: case 529: return AK_STATUS_UNAVAILABLE;
    }
    if (code >= 500) return AK_STATUS_UNAVAILABLE;
    if (code >= 400) return AK_STATUS_INVALID_ARGUMENT;
    return AK_STATUS_UNKNOWN;
}

/* ---- allocator ------------------------------------------------------------------------ */

AKDEF void *ak_alloc(const ak_allocator *a, size_t size) {
    if (size == 0) size = 1;
    if (a && a->alloc) return a->alloc(a->ud, size);
#ifdef AK_MALLOC
    if (!a) return AK_MALLOC(size);
#endif
    return NULL;
}

AKDEF void *ak_realloc(const ak_allocator *a, void *ptr, size_t old_size, size_t new_size) {
    if (!ptr) return ak_alloc(a, new_size);
    if (new_size == 0) new_size = 1;
    if (a && a->realloc) return a->realloc(a->ud, ptr, old_size, new_size);
#ifdef AK_MALLOC
    if (!a) return AK_REALLOC(ptr, new_size);
#endif
    AK__UNUSED(old_size);
    return NULL;
}

AKDEF void ak_free(const ak_allocator *a, void *ptr, size_t size) {
    AK__UNUSED(size);
    if (!ptr) return;
    if (a && a->free) {
        a->free(a->ud, ptr, size);
        return;
    }
#ifdef AK_MALLOC
    if (!a) AK_FREE(ptr);
#endif
}

/* ---- formatting: the printf subset used for errors, logs and buffers -------------------- */

AK_PRIVATE void ak__put_uint(ak_buf *b, uint64_t v, unsigned base) {
    char tmp[24];
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (n) ak_buf_putc(b, tmp[--n]);
}

AK_PRIVATE void ak__vfmt(ak_buf *b, const char *fmt, va_list ap) {
    const char *p = fmt;
    while (*p) {
        const char *s = p;
        int lng = 0, prec = -1;
        while (*p && *p != '%') p++;
        if (p > s) ak_buf_append(b, s, (size_t)(p - s));
        if (!*p) break;
        p++;
        if (p[0] == '.' && p[1] == '*') prec = va_arg(ap, int), p += 2;
        while (*p == 'l') lng++, p++;
        if (*p == 'z') lng = 3, p++;
        switch (*p) {
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str) str = "(null)";
            if (prec >= 0) {
                size_t n = 0;
                while (n < (size_t)prec && str[n]) n++;
                ak_buf_append(b, str, n);
            } else {
                ak_buf_puts(b, str);
            }
            break;
        }
        case 'd': case 'i': {
            int64_t v = lng == 0 ? va_arg(ap, int) : lng == 1 ? va_arg(ap, long)
                      : lng == 2 ? va_arg(ap, long long) : (int64_t)va_arg(ap, size_t);
            ak_buf_put_i64(b, v);
            break;
        }
        case 'u': case 'x': {
            uint64_t v = lng == 0 ? va_arg(ap, unsigned) : lng == 1 ? va_arg(ap, unsigned long)
                       : lng == 2 ? va_arg(ap, unsigned long long) : va_arg(ap, size_t);
            ak__put_uint(b, v, *p == 'x' ? 16u : 10u);
            break;
        }
        case 'c': ak_buf_putc(b, (char)va_arg(ap, int)); break;
        case '%': ak_buf_putc(b, '%'); break;
        case 0: return;
        default: ak_buf_putc(b, '%'); ak_buf_putc(b, *p); break;
        }
        p++;
    }
}

/* ---- errors --------------------------------------------------------------------------- */

AKDEF void ak_error_clear(ak_error *e) {
    if (!e) return;
    e->code = AK_OK;
    e->status = AK_STATUS_OK;
    e->offset = 0;
    e->message[0] = 0;
}

AK_PRIVATE void ak__error_vset(ak_error *e, ak_result code, ak_status st, const char *fmt,
                               va_list ap) {
    ak_buf b;
    e->code = code;
    e->status = st;
    e->offset = 0;
    ak_buf_init_fixed(&b, e->message, sizeof e->message);
    ak__vfmt(&b, fmt, ap); /* a too-long message is cut, never overflows */
}

AKDEF ak_result ak_error_set(ak_error *e, ak_result code, const char *fmt, ...) {
    va_list ap;
    if (!e) return code;
    va_start(ap, fmt);
    ak__error_vset(e, code, ak_result_status(code), fmt, ap);
    va_end(ap);
    return code;
}

AKDEF ak_result ak_error_setst(ak_error *e, ak_result code, ak_status st, const char *fmt, ...) {
    va_list ap;
    if (!e) return code;
    va_start(ap, fmt);
    ak__error_vset(e, code, st, fmt, ap);
    va_end(ap);
    return code;
}

/* The plain allocation failure, shared by every layer that has nothing to add to it. */
AK_PRIVATE ak_result ak__oom(ak_error *err) { return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory"); }

/* ---- arena ---------------------------------------------------------------------------- */

struct ak_arena_block {
    ak_arena_block *prev;
    size_t size; /* usable bytes after the header */
    size_t used;
    int owned;   /* allocated by the arena (else caller memory) */
};

#define AK__ALIGN 8u
#define AK__ALIGN_UP(n) (((n) + (AK__ALIGN - 1)) & ~(size_t)(AK__ALIGN - 1))
#define AK__BLOCK_HDR AK__ALIGN_UP(sizeof(ak_arena_block))
#define AK__BLOCK_DATA(b) ((unsigned char *)(b) + AK__BLOCK_HDR)

AKDEF void ak_arena_init(ak_arena *a, const ak_allocator *alloc, size_t first_block) {
    a->alloc = alloc;
    a->head = NULL;
    a->next_size = first_block ? first_block : 1024;
    a->used_bytes = 0;
    a->fixed = 0;
}

AKDEF ak_result ak_arena_init_fixed(ak_arena *a, void *mem, size_t size) {
    uintptr_t p = (uintptr_t)mem, q = (p + AK__ALIGN - 1) & ~(uintptr_t)(AK__ALIGN - 1);
    ak_arena_block *b;
    a->alloc = NULL;
    a->head = NULL;
    a->next_size = 0;
    a->used_bytes = 0;
    a->fixed = 1;
    if (!mem || size < 64 || size - (size_t)(q - p) < AK__BLOCK_HDR + AK__ALIGN)
        return AK_ERR_INVALID_ARGUMENT;
    b = (ak_arena_block *)q;
    b->prev = NULL;
    b->size = size - (size_t)(q - p) - AK__BLOCK_HDR;
    b->used = 0;
    b->owned = 0;
    a->head = b;
    return AK_OK;
}

AK_PRIVATE ak_arena_block *ak__arena_grow(ak_arena *a, size_t need) {
    size_t size = AK__MAX(a->next_size, need), total;
    ak_arena_block *b;
    if (a->fixed || !ak__add_ok(size, AK__BLOCK_HDR, &total)) return NULL;
    b = (ak_arena_block *)ak_alloc(a->alloc, total);
    if (!b) return NULL;
    b->prev = a->head;
    b->size = size;
    b->used = 0;
    b->owned = 1;
    a->head = b;
    if (a->next_size < ((size_t)1 << 20)) a->next_size *= 2;
    return b;
}

AKDEF void *ak_arena_alloc(ak_arena *a, size_t size) {
    ak_arena_block *b = a->head;
    size_t n = AK__ALIGN_UP(size ? size : 1);
    void *p;
    if (n < size) return NULL; /* overflow */
    if (!b || b->size - b->used < n) {
        b = ak__arena_grow(a, n);
        if (!b) return NULL;
    }
    p = AK__BLOCK_DATA(b) + b->used;
    b->used += n;
    a->used_bytes += n;
    return p;
}

AKDEF void *ak_arena_zalloc(ak_arena *a, size_t size) {
    void *p = ak_arena_alloc(a, size);
    if (p) AK_MEMSET(p, 0, size);
    return p;
}

AKDEF char *ak_arena_strdup(ak_arena *a, const char *s, size_t len) {
    char *p;
    if (len == (size_t)-1) return NULL;
    p = (char *)ak_arena_alloc(a, len + 1);
    if (!p) return NULL;
    if (len) AK_MEMCPY(p, s, len);
    p[len] = 0;
    return p;
}

AKDEF ak_arena_mark ak_arena_save(const ak_arena *a) {
    ak_arena_mark m;
    m.block = a->head;
    m.used = a->head ? a->head->used : 0;
    m.used_bytes = a->used_bytes;
    return m;
}

/* Blocks were given back: the next one is sized from the newest block left, as when that
   block was made, so an arena reset every turn does not grow its blocks turn after turn. */
AK_PRIVATE void ak__arena_rewind(ak_arena *a) {
    if (a->head && !a->fixed && a->head->size < ((size_t)1 << 20)) a->next_size = a->head->size * 2;
}

AKDEF void ak_arena_restore(ak_arena *a, ak_arena_mark m) {
    while (a->head && a->head != m.block) {
        ak_arena_block *b = a->head;
        a->head = b->prev;
        if (b->owned) ak_free(a->alloc, b, AK__BLOCK_HDR + b->size);
    }
    if (a->head) a->head->used = m.used;
    a->used_bytes = m.used_bytes;
    ak__arena_rewind(a);
}

AKDEF void ak_arena_reset(ak_arena *a) {
    ak_arena_block *first = a->head;
    while (first && first->prev) first = first->prev;
    /* Keep the oldest block: the one a fixed arena lives in, or a warm block to reuse. */
    while (a->head && a->head != first) {
        ak_arena_block *b = a->head;
        a->head = b->prev;
        if (b->owned) ak_free(a->alloc, b, AK__BLOCK_HDR + b->size);
    }
    if (a->head) a->head->used = 0;
    a->used_bytes = 0;
    ak__arena_rewind(a);
}

AKDEF void ak_arena_free(ak_arena *a) {
    while (a->head) {
        ak_arena_block *b = a->head;
        a->head = b->prev;
        if (b->owned) ak_free(a->alloc, b, AK__BLOCK_HDR + b->size);
    }
    a->used_bytes = 0;
}

AKDEF size_t ak_arena_capacity(const ak_arena *a) {
    const ak_arena_block *b;
    size_t n = 0;
    for (b = a->head; b; b = b->prev) n += b->size;
    return n;
}

/* ---- buffer --------------------------------------------------------------------------- */

AKDEF void ak_buf_init(ak_buf *b, const ak_allocator *alloc) {
    b->ptr = NULL;
    b->len = b->cap = b->max = 0;
    b->alloc = alloc;
    b->err = AK_OK;
    b->fixed = 0;
}

AKDEF void ak_buf_init_fixed(ak_buf *b, void *mem, size_t cap) {
    ak_buf_init(b, NULL);
    b->fixed = 1;
    if (!mem || !cap) {
        b->err = AK_ERR_OUT_OF_MEMORY;
        return;
    }
    b->ptr = (char *)mem;
    b->cap = cap;
    b->ptr[0] = 0;
}

AKDEF void ak_buf_free(ak_buf *b) {
    if (!b->fixed) ak_free(b->alloc, b->ptr, b->cap);
    if (!b->fixed) b->ptr = NULL, b->cap = 0;
    b->len = 0;
    b->err = AK_OK;
}

AKDEF void ak_buf_clear(ak_buf *b) {
    b->len = 0;
    b->err = AK_OK;
    if (b->ptr) b->ptr[0] = 0;
}

AKDEF ak_result ak_buf_reserve(ak_buf *b, size_t extra) {
    size_t need, cap;
    char *p;
    if (b->err) return b->err;
    if (!ak__add_ok(b->len, extra, &need) || !ak__add_ok(need, 1, &need))
        return b->err = AK_ERR_OUT_OF_MEMORY;
    if (b->max && need > b->max + 1) return b->err = AK_ERR_LIMIT;
    if (need <= b->cap) return AK_OK;
    if (b->fixed) return b->err = AK_ERR_OUT_OF_MEMORY;
    cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
    if (b->max && cap > b->max + 1) cap = b->max + 1;
    p = (char *)ak_realloc(b->alloc, b->ptr, b->cap, cap);
    if (!p) return b->err = AK_ERR_OUT_OF_MEMORY;
    b->ptr = p;
    b->cap = cap;
    return AK_OK;
}

AKDEF void ak_buf_append(ak_buf *b, const void *p, size_t n) {
    if (b->err) return;
    if (ak_buf_reserve(b, n) != AK_OK) {
        /* A fixed buffer keeps what fits, so cut error messages stay readable. */
        if (b->fixed && b->cap > b->len + 1) {
            size_t room = b->cap - b->len - 1, back = 0;
            /* ...and cut between characters, so valid UTF-8 stays valid */
            while (back < 3 && back < room && (AK__U8(((const char *)p)[room - back]) & 0xC0) == 0x80) back++;
            if ((AK__U8(((const char *)p)[room - back]) & 0xC0) != 0x80) room -= back;
            AK_MEMCPY(b->ptr + b->len, p, room);
            b->len += room;
            b->ptr[b->len] = 0;
        }
        return;
    }
    if (n) AK_MEMCPY(b->ptr + b->len, p, n);
    b->len += n;
    b->ptr[b->len] = 0;
}

AKDEF void ak_buf_puts(ak_buf *b, const char *s) { ak_buf_append(b, s, ak__strlen(s)); }

AKDEF void ak_buf_putc(ak_buf *b, char c) {
    if (b->err == AK_OK && b->len + 1 < b->cap) { /* fast path */
        b->ptr[b->len++] = c;
        b->ptr[b->len] = 0;
        return;
    }
    ak_buf_append(b, &c, 1);
}

AKDEF void ak_buf_put_u64(ak_buf *b, uint64_t v) { ak__put_uint(b, v, 10); }

AKDEF void ak_buf_put_i64(ak_buf *b, int64_t v) {
    if (v < 0) {
        ak_buf_putc(b, '-');
        ak__put_uint(b, (uint64_t)0 - (uint64_t)v, 10);
    } else {
        ak__put_uint(b, (uint64_t)v, 10);
    }
}

AKDEF void ak_buf_printf(ak_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ak__vfmt(b, fmt, ap);
    va_end(ap);
}

AKDEF void ak_buf_consume(ak_buf *b, size_t n) {
    if (n >= b->len) {
        ak_buf_clear(b);
        return;
    }
    AK_MEMMOVE(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
    b->ptr[b->len] = 0;
}

AKDEF char *ak_buf_take(ak_buf *b, size_t *len, size_t *cap) {
    char *p = b->ptr;
    if (len) *len = b->len;
    if (cap) *cap = b->cap;
    b->ptr = NULL;
    b->len = b->cap = 0;
    return p;
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

AKDEF size_t ak_utf8_decode(const char *s, size_t len, uint32_t *cp) {
    const unsigned char *p = (const unsigned char *)s;
    uint32_t c;
    size_t n, i;
    if (!len) return 0;
    c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2) return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0) n = 2, c &= 0x1F;
    else if (c < 0xF0) n = 3, c &= 0x0F;
    else if (c < 0xF5) n = 4, c &= 0x07;
    else return 0;
    if (len < n) return 0;
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF))) return 0;
    if (c >= 0xD800 && c <= 0xDFFF) return 0;
    *cp = c;
    return n;
}

AKDEF size_t ak_utf8_valid_prefix(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n;
        /* ASCII runs are the common case: skip eight bytes at a time. */
        while (i + 8 <= len) {
            uint32_t w0, w1;
            AK_MEMCPY(&w0, s + i, 4);
            AK_MEMCPY(&w1, s + i + 4, 4);
            if ((w0 | w1) & 0x80808080u) break;
            i += 8;
        }
        if (i >= len) break;
        if (AK__U8(s[i]) < 0x80) {
            i++;
            continue;
        }
        n = ak_utf8_decode(s + i, len - i, &cp);
        if (!n) return i;
        i += n;
    }
    return len;
}

AKDEF int ak_utf8_valid(const char *s, size_t len) { return ak_utf8_valid_prefix(s, len) == len; }

AKDEF size_t ak_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) return 0;
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

AKDEF void ak_utf8_sanitize(ak_buf *b, const char *s, size_t len) {
    while (len) {
        size_t ok = ak_utf8_valid_prefix(s, len);
        ak_buf_append(b, s, ok);
        s += ok, len -= ok;
        if (len) {
            /* One replacement per maximal invalid subpart, as WHATWG decoders do. */
            size_t skip = 1;
            unsigned char c = AK__U8(s[0]);
            size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 1;
            while (skip < want && skip < len && (AK__U8(s[skip]) & 0xC0) == 0x80) {
                /* stop where the sequence stops being a valid prefix */
                unsigned char s1 = AK__U8(s[1]);
                if (skip == 1 && ((c == 0xE0 && s1 < 0xA0) || (c == 0xED && s1 > 0x9F) ||
                                  (c == 0xF0 && s1 < 0x90) || (c == 0xF4 && s1 > 0x8F) ||
                                  c > 0xF4))
                    break;
                skip++;
            }
            ak_buf_append(b, "\xEF\xBF\xBD", 3);
            s += skip, len -= skip;
        }
    }
}
/* ---- end src/base.c ---- */

/* ---- begin src/context.c ---- */
/* >>context: default platform hooks (clock, random), ids, timestamps, logging */


#if !defined(AK_FREESTANDING) && !defined(AK_NO_PLATFORM)
#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <bcrypt.h> /* link with -lbcrypt */
#define AK__HAVE_PLATFORM 1
#elif defined(__unix__) || defined(__unix) || defined(__APPLE__)
#if defined(__linux__) && defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
#include <sys/random.h>
#define AK__HAVE_GETRANDOM 1
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
#define AK__HAVE_ARC4RANDOM 1 /* arc4random_buf, declared in <stdlib.h> */
#endif
#define AK__HAVE_PLATFORM 1
#endif
#endif

#ifdef AK__HAVE_PLATFORM
#if defined(_WIN32)
AK_PRIVATE int64_t ak__platform_now_ms(void *ud) {
    FILETIME ft;
    uint64_t t;
    AK__UNUSED(ud);
    GetSystemTimeAsFileTime(&ft);
    t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime; /* 100 ns since 1601 */
    return (int64_t)(t / 10000u) - INT64_C(11644473600000);
}

AK_PRIVATE int64_t ak__platform_mono_ms(void *ud) {
    AK__UNUSED(ud);
    return (int64_t)GetTickCount64();
}

AK_PRIVATE void ak__platform_sleep(int64_t ms) { Sleep((DWORD)ms); }

AK_PRIVATE ak_result ak__platform_random(void *ud, void *buf, size_t len) {
    AK__UNUSED(ud);
    while (len) {
        ULONG n = len > 0x10000000u ? 0x10000000u : (ULONG)len;
        if (BCryptGenRandom(NULL, (PUCHAR)buf, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return AK_ERR_NO_RANDOM;
        buf = (char *)buf + n, len -= n;
    }
    return AK_OK;
}
#else
AK_PRIVATE int64_t ak__clock_ms(int monotonic) {
#if defined(CLOCK_MONOTONIC) && defined(CLOCK_REALTIME)
    struct timespec ts;
    if (clock_gettime(monotonic ? CLOCK_MONOTONIC : CLOCK_REALTIME, &ts) == 0)
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#elif defined(TIME_UTC)
    struct timespec ts;
    if (timespec_get(&ts, TIME_UTC) == TIME_UTC)
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#endif
    AK__UNUSED(monotonic);
    return (int64_t)time(NULL) * 1000;
}

AK_PRIVATE int64_t ak__platform_now_ms(void *ud) {
    AK__UNUSED(ud);
    return ak__clock_ms(0);
}

AK_PRIVATE void ak__platform_sleep(int64_t ms) {
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
#else
    int64_t end = ak__clock_ms(1) + ms;
    while (ak__clock_ms(1) < end) {
    }
#endif
}

AK_PRIVATE int64_t ak__platform_mono_ms(void *ud) {
    AK__UNUSED(ud);
    return ak__clock_ms(1);
}

AK_PRIVATE ak_result ak__platform_random(void *ud, void *buf, size_t len) {
    unsigned char *p = (unsigned char *)buf;
    AK__UNUSED(ud);
#if defined(AK__HAVE_GETRANDOM)
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n <= 0) return AK_ERR_NO_RANDOM; /* EINTR only interrupts > 256 bytes */
        p += n, len -= (size_t)n;
    }
    return AK_OK;
#elif defined(AK__HAVE_ARC4RANDOM)
    arc4random_buf(p, len);
    return AK_OK;
#else
    {
        /* The kernel's CSPRNG through the file system: still the OS source, not a weak one. */
        FILE *f = fopen("/dev/urandom", "rb");
        size_t got;
        if (!f) return AK_ERR_NO_RANDOM;
        got = fread(p, 1, len, f);
        fclose(f);
        return got == len ? AK_OK : AK_ERR_NO_RANDOM;
    }
#endif
}
#endif
#endif /* AK__HAVE_PLATFORM */

/* The context's allocator wraps the caller's to count bytes and enforce the budget. */
AK_PRIVATE int ak__budget_ok(ak_context *c, size_t add) {
    return !c->desc.memory_budget || (c->mem_in_use <= c->desc.memory_budget &&
                                      add <= c->desc.memory_budget - c->mem_in_use);
}

AK_PRIVATE void ak__ctx_account(ak_context *c, size_t add, size_t sub) {
    c->mem_in_use = c->mem_in_use - sub + add;
    if (c->mem_in_use > c->mem_peak) c->mem_peak = c->mem_in_use;
}

AK_PRIVATE const ak_allocator *ak__ctx_inner(ak_context *c) {
    return c->desc.allocator.alloc ? &c->desc.allocator : NULL;
}

AK_PRIVATE void *ak__ctx_alloc(void *ud, size_t size) {
    ak_context *c = (ak_context *)ud;
    void *p;
    if (!ak__budget_ok(c, size)) return NULL;
    p = ak_alloc(ak__ctx_inner(c), size);
    if (p) ak__ctx_account(c, size, 0), c->alloc_count++;
    return p;
}

AK_PRIVATE void *ak__ctx_realloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    ak_context *c = (ak_context *)ud;
    void *p;
    if (new_size > old_size && !ak__budget_ok(c, new_size - old_size)) return NULL;
    p = ak_realloc(ak__ctx_inner(c), ptr, old_size, new_size);
    if (p) ak__ctx_account(c, new_size, old_size), c->alloc_count++;
    return p;
}

AK_PRIVATE void ak__ctx_free(void *ud, void *ptr, size_t size) {
    ak_context *c = (ak_context *)ud;
    ak_free(ak__ctx_inner(c), ptr, size);
    ak__ctx_account(c, 0, size);
}

AKDEF ak_result ak_context_init(ak_context *ctx, const ak_context_desc *desc) {
    AK_MEMSET(ctx, 0, sizeof *ctx);
    if (desc) ctx->desc = *desc;
#ifndef AK_MALLOC
    if (!ctx->desc.allocator.alloc) return AK_ERR_INVALID_ARGUMENT;
#endif
    if (ctx->desc.allocator.alloc &&
        (!ctx->desc.allocator.realloc || !ctx->desc.allocator.free))
        return AK_ERR_INVALID_ARGUMENT;
    ctx->alloc.alloc = ak__ctx_alloc;
    ctx->alloc.realloc = ak__ctx_realloc;
    ctx->alloc.free = ak__ctx_free;
    ctx->alloc.ud = ctx;
    return AK_OK;
}

AKDEF const ak_allocator *ak_context_allocator(ak_context *ctx) { return &ctx->alloc; }

AKDEF int64_t ak_now_ms(ak_context *ctx) {
    if (ctx->desc.now_ms) return ctx->desc.now_ms(ctx->desc.user_data);
#ifdef AK__HAVE_PLATFORM
    return ak__platform_now_ms(NULL);
#else
    return 0;
#endif
}

AKDEF int64_t ak_mono_ms(ak_context *ctx) {
    if (ctx->desc.mono_ms) return ctx->desc.mono_ms(ctx->desc.user_data);
    if (ctx->desc.now_ms) return ctx->desc.now_ms(ctx->desc.user_data);
#ifdef AK__HAVE_PLATFORM
    return ak__platform_mono_ms(NULL);
#else
    return 0;
#endif
}

AKDEF ak_result ak_random(ak_context *ctx, void *buf, size_t len) {
    if (ctx->desc.random) return ctx->desc.random(ctx->desc.user_data, buf, len);
#ifdef AK__HAVE_PLATFORM
    return ak__platform_random(NULL, buf, len);
#else
    AK__UNUSED(buf), AK__UNUSED(len);
    return AK_ERR_NO_RANDOM;
#endif
}

AKDEF void ak_sleep_ms(ak_context *ctx, int64_t ms) {
    if (ms <= 0) return;
    if (ctx->desc.sleep_ms) {
        ctx->desc.sleep_ms(ctx->desc.user_data, ms);
        return;
    }
#ifdef AK__HAVE_PLATFORM
    ak__platform_sleep(ms);
#else
    {
        int64_t end = ak_mono_ms(ctx) + ms;
        while (ak_mono_ms(ctx) < end) {
        }
    }
#endif
}

/* 16 random bytes as a version 4 UUID. */
AK_PRIVATE void ak__uuid_format(unsigned char r[16], char out[37]) {
    static const char hex[] = "0123456789abcdef";
    int i, o = 0;
    r[6] = (unsigned char)((r[6] & 0x0F) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[r[i] >> 4];
        out[o++] = hex[r[i] & 15];
    }
    out[o] = 0;
}

AKDEF ak_result ak_uuid4(ak_context *ctx, char out[37]) {
    return ak_uuid4_pair(ctx, out, NULL);
}

AKDEF ak_result ak_uuid4_pair(ak_context *ctx, char a[37], char b[37]) {
    unsigned char r[32];
    ak_result rc = ak_random(ctx, r, b ? 32 : 16);
    a[0] = 0;
    if (b) b[0] = 0;
    if (rc != AK_OK) return rc;
    ak__uuid_format(r, a);
    if (b) ak__uuid_format(r + 16, b);
    return AK_OK;
}

/* Days since 1970-01-01 to a civil date (the proleptic Gregorian algorithm by H. Hinnant). */
AK_PRIVATE void ak__civil(int64_t days, int *y, unsigned *m, unsigned *d) {
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

AKDEF void ak_iso8601(int64_t ms, char out[25]) {
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rem = ms - days * 86400000;
    unsigned mon, day, v[7];
    int year, i, o = 0;
    static const int width[7] = {4, 2, 2, 2, 2, 2, 3};
    static const char sep[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
    ak__civil(days, &year, &mon, &day);
    if (year < 0) year = 0;
    if (year > 9999) year = 9999;
    v[0] = (unsigned)year, v[1] = mon, v[2] = day;
    v[3] = (unsigned)(rem / 3600000), v[4] = (unsigned)(rem / 60000 % 60);
    v[5] = (unsigned)(rem / 1000 % 60), v[6] = (unsigned)(rem % 1000);
    for (i = 0; i < 7; i++) {
        unsigned x = v[i], div = width[i] == 4 ? 1000 : width[i] == 3 ? 100 : 10;
        for (; div; div /= 10) out[o++] = (char)('0' + x / div % 10);
        out[o++] = sep[i];
    }
    out[o] = 0;
}

AKDEF void ak_log(ak_context *ctx, ak_log_level level, const char *fmt, ...) {
    char msg[512];
    ak_buf b;
    va_list ap;
    if (!ctx || !ctx->desc.log || level < ctx->desc.log_level) return;
    ak_buf_init_fixed(&b, msg, sizeof msg);
    va_start(ap, fmt);
    ak__vfmt(&b, fmt, ap);
    va_end(ap);
    ctx->desc.log(ctx->desc.user_data, level, msg);
}
/* ---- end src/context.c ---- */

/* ---- begin src/json.c ---- */
/* >>json implementation: document, parser, writer, builder, accessors, equality */


/* ---- document ------------------------------------------------------------------------- */

AKDEF void ak_json_doc_init(ak_json_doc *d, const ak_allocator *alloc) {
    ak_arena_init(&d->arena, alloc, AK_JSON_DOC_BLOCK);
    d->root = NULL;
    d->err = AK_OK;
}

AKDEF ak_result ak_json_doc_init_fixed(ak_json_doc *d, void *mem, size_t size) {
    d->root = NULL;
    d->err = ak_arena_init_fixed(&d->arena, mem, size);
    return d->err;
}

AKDEF void ak_json_doc_free(ak_json_doc *d) {
    ak_arena_free(&d->arena);
    d->root = NULL;
    d->err = AK_OK;
}

AKDEF void ak_json_doc_reset(ak_json_doc *d) {
    ak_arena_reset(&d->arena);
    d->root = NULL;
    d->err = AK_OK;
}

AKDEF size_t ak_json_max_memory(size_t len) {
    /* Valid JSON has at most one value per two input bytes ("[0,0,0...]"). Each value is a
       node plus, for strings and numbers, its text with a NUL, rounded up to 8 bytes; text
       never exceeds the input it came from. Plus a block header and alignment. */
    size_t nodes = len / 2 + 1;
    return len + 64 + nodes * (AK__ALIGN_UP(sizeof(ak_json)) + 8);
}

/* A fresh value of type t: no key, no children, no sibling. */
AK_PRIVATE ak_json *ak__json_blank(ak_json *v, ak_json_type t) {
    v->type = (uint8_t)t;
    v->flags = 0;
    v->reserved = 0;
    v->len = 0;
    v->key_len = 0;
    v->key = NULL;
    v->u.first = NULL;
    v->next = NULL;
    return v;
}

AK_PRIVATE ak_json *ak__json_node(ak_json_doc *d, ak_json_type t) {
    ak_json *v = (ak_json *)ak_arena_alloc(&d->arena, sizeof(ak_json));
    if (!v) {
        d->err = AK_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    return ak__json_blank(v, t);
}

/* ---- parser --------------------------------------------------------------------------- */

/* Character classes, computed (a 256-byte table costs more flash than the compares): JSON
   whitespace, and the bytes that need attention inside a string (quote, backslash, control
   character or non-ASCII). */
AK_PRIVATE int ak__jws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
AK_PRIVATE int ak__jstr_byte(unsigned char c) { return c < 0x20 || c >= 0x80 || c == '"' || c == '\\'; }
#define AK__JWS(c) ak__jws(AK__U8(c))
#define AK__JSTR(c) ak__jstr_byte(AK__U8(c))

/* A machine word of bytes at a time: eight on 64-bit hosts, four on 32-bit MCUs, where
   64-bit arithmetic takes register pairs and much more code (byte order does not matter:
   only "any byte" is asked). */
typedef size_t ak__word;
#define AK__WORD sizeof(ak__word)
#define AK__JONES ((ak__word)-1 / 0xFF)
#define AK__JHIGHS (AK__JONES * 0x80)
#define AK__JHAS_BELOW(w, n) (((w) - AK__JONES * (n)) & ~(w))

/* How many bytes precede the first flagged one (its high bit set) in a mask from the tests
   below: the lowest flag is always exact, as borrows only run upwards. Elsewhere (other
   compilers, big-endian, or 32-bit targets, where the builtin is a libgcc call) it is 0 and
   the byte loop that follows finds the byte. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && __SIZEOF_POINTER__ == 8
#define AK__FIRST_FLAGGED(m) ((size_t)__builtin_ctzll(m) >> 3)
#else
#define AK__FIRST_FLAGGED(m) ((size_t)0)
#endif

AK_PRIVATE ak__word ak__loadw(const char *p) {
    ak__word w;
    AK_MEMCPY(&w, p, AK__WORD);
    return w;
}

/* Nonzero when a byte of w is '"', '\\', a control character or non-ASCII. */
AK_PRIVATE ak__word ak__jstr_special(ak__word w) {
    ak__word q = w ^ (AK__JONES * '"'), b = w ^ (AK__JONES * '\\');
    return (AK__JHAS_BELOW(q, 1) | AK__JHAS_BELOW(b, 1) | AK__JHAS_BELOW(w, 0x20) | w) & AK__JHIGHS;
}

/* The parser reads the caller's input in place and copies only the text of strings, keys
   and numbers into the document, so a document holds no whitespace or punctuation. Values
   and text are bumped from the arena's current block without a call per value; `cur` and
   `avail` mirror that block and are written back by ak__jsync. */
typedef struct ak__jparser {
    const char *p, *end, *base; /* base: start of the input, for error offsets */
    ak_json_doc *d;
    ak_error *err;
    unsigned char *cur;
    size_t avail;
    size_t block_cap;           /* largest block the parse asks for (bounds the slack) */
} ak__jparser;

AK_PRIVATE void ak__jload(ak__jparser *jp) {
    ak_arena_block *b = jp->d->arena.head;
    jp->cur = b ? AK__BLOCK_DATA(b) + b->used : NULL;
    jp->avail = b ? b->size - b->used : 0;
}

AK_PRIVATE void ak__jsync(ak__jparser *jp) {
    ak_arena_block *b = jp->d->arena.head;
    if (b && jp->cur) {
        size_t used = (size_t)(jp->cur - AK__BLOCK_DATA(b));
        jp->d->arena.used_bytes += used - b->used;
        b->used = used;
    }
}

/* The block is full: let the arena add one. Blocks double as usual, but the parse lets them
   grow past neither block_cap nor the size the document already asked for, so the unused
   end of the last one stays small next to the document. */
AK__NOINLINE AK_PRIVATE void *ak__jalloc_slow(ak__jparser *jp, size_t n) {
    ak_arena *a = &jp->d->arena;
    size_t before = a->next_size;
    void *p;
    ak__jsync(jp);
    p = ak_arena_alloc(a, n);
    if (a->next_size > before && a->next_size > jp->block_cap) a->next_size = AK__MAX(before, jp->block_cap);
    ak__jload(jp);
    return p;
}

/* n bytes, 8-byte aligned; n is a multiple of 8. */
AK_PRIVATE void *ak__jalloc(ak__jparser *jp, size_t n) {
    void *p;
    if (n > jp->avail) return ak__jalloc_slow(jp, n);
    p = jp->cur;
    jp->cur += n;
    jp->avail -= n;
    return p;
}

/* Copies the n bytes of text at src into dst, whose room is n + 1 rounded up to 8. Short text
   goes a word at a time instead of through a memcpy call; those reads may pass the text,
   never the input. */
AK_PRIVATE void ak__jcopy(const ak__jparser *jp, char *dst, const char *src, size_t n) {
    size_t i;
    if (n > 64 || (size_t)(jp->end - src) < AK__ALIGN_UP(n)) {
        AK_MEMCPY(dst, src, n);
        return;
    }
    for (i = 0; i < n; i += AK__WORD) {
        ak__word w = ak__loadw(src + i);
        AK_MEMCPY(dst + i, &w, AK__WORD);
    }
}

AK_PRIVATE ak_result ak__jfail(ak__jparser *jp, ak_result code, const char *p, const char *what) {
    if (jp->err) {
        ak_error_set(jp->err, code, "%s at offset %zu", what, (size_t)(p - jp->base));
        jp->err->offset = (size_t)(p - jp->base);
    }
    return code;
}

AK_PRIVATE ak_json *ak__jnode(ak__jparser *jp) {
    ak_json *v = (ak_json *)ak__jalloc(jp, AK__ALIGN_UP(sizeof(ak_json)));
    return v ? ak__json_blank(v, AK_JSON_NULL) : NULL;
}

AK_PRIVATE void ak__jskip_ws_run(ak__jparser *jp) {
    const char *p = jp->p, *end = jp->end;
    while (p < end && AK__JWS(*p)) {
        p++;
        /* Indentation comes in runs of spaces. */
        while ((size_t)(end - p) >= AK__WORD && ak__loadw(p) == AK__JONES * ' ') p += AK__WORD;
    }
    jp->p = p;
}

/* Compact JSON has no whitespace between tokens: that case costs no call. */
#define AK__JSKIP_WS(jp) \
    do { \
        if ((jp)->p < (jp)->end && AK__JWS(*(jp)->p)) ak__jskip_ws_run(jp); \
    } while (0)

AK_PRIVATE int ak__hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* Decodes the escape at *pp (just after the backslash) into w. Advances *pp past the escape
   and returns the bytes written, or 0 on error (*rc says which). */
AK_PRIVATE size_t ak__jescape(const char **pp, const char *end, char *w, ak_result *rc) {
    const char *p = *pp;
    uint32_t cp, lo;
    *rc = AK_ERR_JSON_SYNTAX;
    if (p >= end) return 0;
    switch (*p) {
    case '"': *w = '"'; break;
    case '\\': *w = '\\'; break;
    case '/': *w = '/'; break;
    case 'b': *w = '\b'; break;
    case 'f': *w = '\f'; break;
    case 'n': *w = '\n'; break;
    case 'r': *w = '\r'; break;
    case 't': *w = '\t'; break;
    case 'u':
        if (end - p < 5 || !ak__hex4(p + 1, &cp)) return 0;
        p += 5;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            *rc = AK_ERR_JSON_UTF8; /* a low surrogate with no high one before it */
            return 0;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !ak__hex4(p + 2, &lo) || lo < 0xDC00 ||
                lo > 0xDFFF) {
                *rc = AK_ERR_JSON_UTF8;
                return 0;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        *pp = p;
        return ak_utf8_encode(cp, w);
    default: return 0;
    }
    *pp = p + 1;
    return 1;
}

/* Scans from p to the closing quote of a string that has escapes; p itself ends there.
   Returns NULL if the input ends first. */
AK_PRIVATE const char *ak__jstring_end(const char *p, const char *end) {
    for (; p < end && *p != '"'; p++)
        if (*p == '\\' && ++p == end) break;
    return p < end ? p : NULL;
}

/* Unescapes raw[0..n) (which needs escapes) into w; returns the bytes written. */
AK_PRIVATE ak_result ak__junescape(ak__jparser *jp, const char *raw, const char *end, char *w, size_t *out) {
    char *start = w;
    ak_result rc;
    while (raw < end) {
        char c = *raw;
        if (c == '\\') {
            const char *esc = raw++;
            size_t n = ak__jescape(&raw, end, w, &rc);
            if (!n)
                return ak__jfail(jp, rc, esc, rc == AK_ERR_JSON_UTF8 ? "lone surrogate escape" : "invalid escape");
            w += n;
        } else if (AK__U8(c) < 0x20) {
            return ak__jfail(jp, AK_ERR_JSON_SYNTAX, raw, "control character in string");
        } else if (AK__U8(c) >= 0x80) {
            uint32_t cp;
            size_t n = ak_utf8_decode(raw, (size_t)(end - raw), &cp);
            if (!n) return ak__jfail(jp, AK_ERR_JSON_UTF8, raw, "invalid UTF-8 in string");
            AK_MEMCPY(w, raw, n);
            w += n, raw += n;
        } else {
            *w++ = c, raw++;
        }
    }
    *out = (size_t)(w - start);
    return AK_OK;
}

/* Copies the string whose opening quote is at jp->p into the document, unescaped and
   NUL-terminated. */
AK_PRIVATE ak_result ak__jstring(ak__jparser *jp, const char **out, uint32_t *out_len) {
    const char *start = jp->p + 1, *p = start, *end = jp->end, *close;
    size_t n = 0, room;
    char *text;
    ak_result rc;
    /* Fast path: no escapes, so the text is copied as it is. */
    for (;;) {
        while ((size_t)(end - p) >= AK__WORD) {
            ak__word special = ak__jstr_special(ak__loadw(p));
            if (special) {
                p += AK__FIRST_FLAGGED(special);
                break;
            }
            p += AK__WORD;
        }
        while (p < end && !AK__JSTR(*p)) p++;
        if (p >= end) return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "unterminated string");
        if (AK__U8(*p) >= 0x80) {
            uint32_t cp;
            size_t k = ak_utf8_decode(p, (size_t)(end - p), &cp);
            if (!k) return ak__jfail(jp, AK_ERR_JSON_UTF8, p, "invalid UTF-8 in string");
            p += k;
            continue;
        }
        break;
    }
    if (*p == '"') {
        close = p, n = (size_t)(p - start);
        if (n > 0xFFFFFFFFu) return ak__jfail(jp, AK_ERR_LIMIT, jp->p, "string longer than 4 GiB");
        if (!(text = (char *)ak__jalloc(jp, AK__ALIGN_UP(n + 1))))
            return ak__jfail(jp, AK_ERR_OUT_OF_MEMORY, jp->p, "out of memory");
        ak__jcopy(jp, text, start, n);
    } else if (AK__U8(*p) < 0x20) {
        return ak__jfail(jp, AK_ERR_JSON_SYNTAX, p, "control character in string");
    } else {
        /* Escapes: room for the raw text, then what the unescaped text leaves is given back. */
        if (!(close = ak__jstring_end(p, end))) return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "unterminated string");
        room = AK__ALIGN_UP((size_t)(close - start) + 1);
        if (!(text = (char *)ak__jalloc(jp, room))) return ak__jfail(jp, AK_ERR_OUT_OF_MEMORY, jp->p, "out of memory");
        AK_MEMCPY(text, start, (size_t)(p - start));
        if ((rc = ak__junescape(jp, p, close, text + (p - start), &n)) != AK_OK) return rc;
        n += (size_t)(p - start);
        if (n > 0xFFFFFFFFu) return ak__jfail(jp, AK_ERR_LIMIT, jp->p, "string longer than 4 GiB");
        jp->cur -= room - AK__ALIGN_UP(n + 1);
        jp->avail += room - AK__ALIGN_UP(n + 1);
    }
    text[n] = 0;
    *out = text;
    *out_len = (uint32_t)n;
    jp->p = close + 1;
    return AK_OK;
}

AK_PRIVATE int ak__isdigit(char c) { return c >= '0' && c <= '9'; }

/* Scans the number lexeme at p: returns its end, or NULL if there is none. *flags gets
   AK_JSON_F_INT for a plain integer. */
AK_PRIVATE const char *ak__jnumber_scan(const char *p, const char *end, uint8_t *flags) {
    *flags = AK_JSON_F_INT;
    if (p < end && *p == '-') p++;
    if (p >= end || !ak__isdigit(*p)) return NULL;
    if (*p == '0') p++;
    else while (p < end && ak__isdigit(*p)) p++;
    if (p < end && *p == '.') {
        p++, *flags = 0;
        if (p >= end || !ak__isdigit(*p)) return NULL;
        while (p < end && ak__isdigit(*p)) p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++, *flags = 0;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !ak__isdigit(*p)) return NULL;
        while (p < end && ak__isdigit(*p)) p++;
    }
    return p;
}

/* Validates the number at jp->p and copies its lexeme into the document. */
AK_PRIVATE ak_result ak__jnumber(ak__jparser *jp, ak_json *v) {
    const char *s = jp->p, *e = ak__jnumber_scan(s, jp->end, &v->flags);
    char *text;
    size_t n;
    if (!e) return ak__jfail(jp, AK_ERR_JSON_SYNTAX, s, "invalid number");
    n = (size_t)(e - s);
    if (n > 0xFFFFFFFFu) return ak__jfail(jp, AK_ERR_LIMIT, s, "number too long");
    if (!(text = (char *)ak__jalloc(jp, AK__ALIGN_UP(n + 1)))) return ak__jfail(jp, AK_ERR_OUT_OF_MEMORY, s, "out of memory");
    ak__jcopy(jp, text, s, n);
    text[n] = 0;
    v->u.str = text;
    v->len = (uint32_t)n;
    jp->p = e;
    return AK_OK;
}

AK_PRIVATE ak_result ak__jliteral(ak__jparser *jp, ak_json *v) {
    static const char *const words[3] = {"null", "true", "false"};
    size_t i, n, avail = (size_t)(jp->end - jp->p);
    for (i = 0; i < 3; i++) {
        n = i == 2 ? 5 : 4;
        if (avail >= n && AK_MEMCMP(jp->p, words[i], n) == 0) {
            v->type = (uint8_t)(i == 0 ? AK_JSON_NULL : AK_JSON_BOOL);
            v->flags = (uint8_t)(i == 1 ? AK_JSON_F_TRUE : 0);
            jp->p += n;
            return AK_OK;
        }
    }
    return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "unexpected character");
}

/* Parses the member key at jp->p (a string), then the ':' after it. */
AK_PRIVATE ak_result ak__jkey(ak__jparser *jp, const char **key, uint32_t *key_len) {
    ak_result rc;
    if (jp->p >= jp->end || *jp->p != '"')
        return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "expected a string key");
    if ((rc = ak__jstring(jp, key, key_len)) != AK_OK) return rc;
    AK__JSKIP_WS(jp);
    if (jp->p >= jp->end || *jp->p != ':')
        return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "expected ':' after key");
    jp->p++;
    AK__JSKIP_WS(jp);
    return AK_OK;
}

/* The parser does not recurse. While a container is open, its `next` field points to its
   parent container and its children form a ring through `next` with u.first pointing at
   the last one, so appending costs no walk; closing it opens the ring and links the
   container into its parent. */
AK_PRIVATE void ak__jappend(ak_json *parent, ak_json *v) {
    ak_json *last = parent->u.first;
    v->next = last ? last->next : v;
    if (last) last->next = v;
    parent->u.first = v;
}

AK_PRIVATE ak_result ak__jparse(ak__jparser *jp, uint32_t max_depth, ak_json **out) {
    ak_json *parent = NULL, *v;
    const char *key = NULL;
    uint32_t key_len = 0, depth = 0;
    ak_result rc;
    AK__JSKIP_WS(jp);
    for (;;) {
        /* a value starts at jp->p */
        if (jp->p >= jp->end) return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "unexpected end of input");
        if (!(v = ak__jnode(jp))) return ak__jfail(jp, AK_ERR_OUT_OF_MEMORY, jp->p, "out of memory");
        v->key = key, v->key_len = key_len;
        switch (*jp->p) {
        case '{': case '[':
            if (++depth > max_depth) return ak__jfail(jp, AK_ERR_JSON_DEPTH, jp->p, "nesting too deep");
            v->type = (uint8_t)(*jp->p == '{' ? AK_JSON_OBJECT : AK_JSON_ARRAY);
            v->next = parent;
            parent = v;
            jp->p++;
            AK__JSKIP_WS(jp);
            if (jp->p < jp->end && *jp->p == (v->type == AK_JSON_OBJECT ? '}' : ']')) {
                jp->p++;
                goto close; /* empty container */
            }
            key = NULL, key_len = 0;
            if (v->type == AK_JSON_OBJECT && (rc = ak__jkey(jp, &key, &key_len)) != AK_OK) return rc;
            continue;
        case '"':
            v->type = AK_JSON_STRING;
            if ((rc = ak__jstring(jp, &v->u.str, &v->len)) != AK_OK) return rc;
            break;
        case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6':
        case '7': case '8': case '9':
            v->type = AK_JSON_NUMBER;
            if ((rc = ak__jnumber(jp, v)) != AK_OK) return rc;
            break;
        default:
            if ((rc = ak__jliteral(jp, v)) != AK_OK) return rc;
            break;
        }
        /* v is complete: attach it, then look for ',' or the end of its container */
        for (;;) {
            if (!parent) {
                *out = v;
                return AK_OK;
            }
            ak__jappend(parent, v);
            if (++parent->len == 0) return ak__jfail(jp, AK_ERR_LIMIT, jp->p, "too many members");
            AK__JSKIP_WS(jp);
            if (jp->p >= jp->end) return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "unexpected end of input");
            if (*jp->p == ',') {
                jp->p++;
                AK__JSKIP_WS(jp);
                key = NULL, key_len = 0;
                if (parent->type == AK_JSON_OBJECT && (rc = ak__jkey(jp, &key, &key_len)) != AK_OK)
                    return rc;
                break; /* next value */
            }
            if (*jp->p != (parent->type == AK_JSON_OBJECT ? '}' : ']'))
                return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p,
                                 parent->type == AK_JSON_OBJECT ? "expected ',' or '}'" : "expected ',' or ']'");
            jp->p++;
            v = parent;
        close:
            if (v->u.first) { /* open the ring: the last child's next is the first */
                ak_json *last = v->u.first;
                v->u.first = last->next;
                last->next = NULL;
            }
            parent = v->next;
            v->next = NULL;
            depth--;
        }
    }
}

AKDEF ak_result ak_json_parse_value(ak_json_doc *d, const char *src, size_t len,
                                    const ak_json_parse_opts *opts, ak_json **out, ak_error *err) {
    ak__jparser jp;
    ak_arena_mark mark = ak_arena_save(&d->arena);
    ak_json *v = NULL;
    uint32_t max_depth = opts && opts->max_depth ? opts->max_depth : AK_JSON_MAX_DEPTH;
    ak_result rc;
    if (out) *out = NULL;
    if (!src && len) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "NULL input");
    if (opts && opts->max_bytes && len > opts->max_bytes)
        return ak_error_set(err, AK_ERR_LIMIT, "JSON text of %zu bytes exceeds the limit of %zu",
                            len, opts->max_bytes);
    jp.p = jp.base = src ? src : "";
    jp.end = jp.p + len;
    jp.d = d;
    jp.err = err;
    /* Blocks no larger than the input (AK_JSON_DOC_BLOCK to 1 MiB): few allocations, and what
       the last one leaves unused stays small next to the document. */
    jp.block_cap = AK__MIN(AK__MAX(len, (size_t)AK_JSON_DOC_BLOCK), (size_t)1 << 20);
    ak__jload(&jp);
    rc = ak__jparse(&jp, max_depth, &v);
    if (rc == AK_OK) {
        AK__JSKIP_WS(&jp);
        if (jp.p != jp.end) rc = ak__jfail(&jp, AK_ERR_JSON_SYNTAX, jp.p, "unexpected data after the JSON value");
    }
    ak__jsync(&jp);
    if (rc != AK_OK) {
        ak_arena_restore(&d->arena, mark); /* nothing of a failed parse stays */
        return rc;
    }
    if (out) *out = v;
    return AK_OK;
}

AKDEF ak_result ak_json_parse(ak_json_doc *d, const char *src, size_t len, ak_error *err) {
    ak_json *v;
    ak_result rc = ak_json_parse_value(d, src, len, NULL, &v, err);
    if (rc == AK_OK) d->root = v;
    return rc;
}

/* ---- numbers: text <-> binary --------------------------------------------------------- */

#if defined(AK_FREESTANDING) && !defined(AK_STRTOD)
/* Without libc: exact for up to 19 significant digits with |exponent| <= 22 (every number a
   model or a tool usually sends), within an ulp or two otherwise. Define AK_STRTOD and
   AK_DTOA for correctly rounded conversions. */
AK_PRIVATE double ak__pow10(int e) {
    double r = 1, b = 10;
    int n = e < 0 ? -e : e;
    while (n) {
        if (n & 1) r *= b;
        b *= b, n >>= 1;
    }
    return e < 0 ? 1 / r : r;
}

AK_PRIVATE double ak__strtod(const char *s, size_t len) {
    uint64_t m = 0;
    int digits = 0, exp10 = 0, neg = 0, eneg = 0, e = 0;
    size_t i = 0;
    if (i < len && s[i] == '-') neg = 1, i++;
    for (; i < len && ak__isdigit(s[i]); i++) {
        if (digits < 19) m = m * 10 + (uint64_t)(s[i] - '0'), digits += m != 0;
        else exp10++;
    }
    if (i < len && s[i] == '.')
        for (i++; i < len && ak__isdigit(s[i]); i++)
            if (digits < 19) m = m * 10 + (uint64_t)(s[i] - '0'), digits += m != 0, exp10--;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) eneg = s[i] == '-', i++;
        for (; i < len && ak__isdigit(s[i]); i++)
            if (e < 100000) e = e * 10 + (s[i] - '0');
    }
    exp10 += eneg ? -e : e;
    if (m == 0) return neg ? -0.0 : 0.0;
    if (exp10 < -400) return neg ? -0.0 : 0.0;
    if (exp10 > 400) return neg ? -1e308 * 10 : 1e308 * 10;
    {
        double v = (double)m;
        v = exp10 < -300 ? v * ak__pow10(exp10 + 300) * 1e-300 : v * ak__pow10(exp10);
        return neg ? -v : v;
    }
}
#elif !defined(AK_STRTOD)
AK_PRIVATE double ak__strtod(const char *s, size_t len) {
    /* strtod needs a terminated string; lexemes are not. 800 significant digits decide any
       double, so longer mantissas lose only digits that cannot change the result. */
    char tmp[832];
    size_t n = len, i, o = 0, exp_at = len;
    for (i = 0; i < len; i++)
        if (s[i] == 'e' || s[i] == 'E') {
            exp_at = i;
            break;
        }
    if (n < sizeof tmp) {
        AK_MEMCPY(tmp, s, n);
        tmp[n] = 0;
        return strtod(tmp, NULL);
    }
    {
        /* Keep the first 800 mantissa characters and fold the dropped integer digits into
           the exponent. */
        size_t keep = exp_at < 800 ? exp_at : 800, dot = exp_at;
        long extra = 0, e = 0;
        int eneg = 0;
        for (i = 0; i < exp_at; i++)
            if (s[i] == '.') dot = i;
        AK_MEMCPY(tmp, s, keep);
        o = keep;
        if (dot > keep) extra = (long)(dot - keep);
        if (exp_at < len) {
            i = exp_at + 1;
            if (i < len && (s[i] == '+' || s[i] == '-')) eneg = s[i] == '-', i++;
            for (; i < len; i++)
                if (e < 100000) e = e * 10 + (s[i] - '0');
        }
        e = (eneg ? -e : e) + extra;
        tmp[o++] = 'e';
        {
            ak_buf b;
            ak_buf_init_fixed(&b, tmp + o, sizeof tmp - o);
            ak_buf_put_i64(&b, e);
        }
        return strtod(tmp, NULL);
    }
}
#else
AK_PRIVATE double ak__strtod(const char *s, size_t len) { return AK_STRTOD(s, len); }
#endif

AK_PRIVATE int ak__isnan_or_inf(double v) { return v != v || v - v != 0; }

/* Shortest round-trip digits of v > 0: writes them to digits (no dot), returns the count and
   stores the decimal exponent n such that v = 0.DIGITS x 10^n. */
#if defined(AK_FREESTANDING) && !defined(AK_DTOA)
AK_PRIVATE int ak__shortest(double v, char *digits, int *n) {
    /* Scale into [1e16, 1e17), then take 17 digits and trim trailing zeros. Good to about
       one ulp; define AK_DTOA for shortest correctly rounded output. */
    int e = 0, k, len = 17;
    uint64_t m;
    while (v >= 1e17) v /= 10, e++;
    while (v < 1e16) v *= 10, e--;
    m = (uint64_t)(v + 0.5);
    if (m >= 100000000000000000ull) m /= 10, e++;
    for (k = 16; k >= 0; k--) digits[k] = (char)('0' + m % 10), m /= 10;
    while (len > 1 && digits[len - 1] == '0') len--;
    *n = e + 17;
    return len;
}
#elif !defined(AK_DTOA)
AK_PRIVATE int ak__shortest(double v, char *digits, int *n) {
    char tmp[40];
    int prec, len = 0, i;
    for (prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (prec == 17 || strtod(tmp, NULL) == v) break;
    }
    /* tmp is "d.ddddde[+-]xx" */
    for (i = 0; tmp[i] && tmp[i] != 'e'; i++)
        if (tmp[i] != '.') digits[len++] = tmp[i];
    while (len > 1 && digits[len - 1] == '0') len--;
    *n = atoi(tmp + i + 1) + 1;
    return len;
}
#else
AK_PRIVATE int ak__shortest(double v, char *digits, int *n) { return AK_DTOA(v, digits, n); }
#endif

/* Formats v as JavaScript's Number.prototype.toString does. */
AK_PRIVATE void ak__format_double(ak_buf *b, double v) {
    char dg[32];
    int k, n, i;
    if (ak__isnan_or_inf(v)) {
        ak_buf_puts(b, "null");
        return;
    }
    if (v == 0) {
        ak_buf_putc(b, '0');
        return;
    }
    if (v < 0) ak_buf_putc(b, '-'), v = -v;
    k = ak__shortest(v, dg, &n);
    if (k <= n && n <= 21) {
        ak_buf_append(b, dg, (size_t)k);
        for (i = k; i < n; i++) ak_buf_putc(b, '0');
    } else if (0 < n && n <= 21) {
        ak_buf_append(b, dg, (size_t)n);
        ak_buf_putc(b, '.');
        ak_buf_append(b, dg + n, (size_t)(k - n));
    } else if (-6 < n && n <= 0) {
        ak_buf_puts(b, "0.");
        for (i = 0; i < -n; i++) ak_buf_putc(b, '0');
        ak_buf_append(b, dg, (size_t)k);
    } else {
        ak_buf_putc(b, dg[0]);
        if (k > 1) ak_buf_putc(b, '.'), ak_buf_append(b, dg + 1, (size_t)(k - 1));
        ak_buf_putc(b, 'e');
        ak_buf_putc(b, n - 1 < 0 ? '-' : '+');
        ak_buf_put_i64(b, n - 1 < 0 ? 1 - n : n - 1);
    }
}

/* ---- writer --------------------------------------------------------------------------- */

AKDEF void ak_json_write_str(ak_buf *out, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, run = 0;
    ak_buf_putc(out, '"');
    for (; i < len; i++) {
        unsigned char c = AK__U8(s[i]);
        const char *esc = NULL;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        ak_buf_append(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        }
        if (esc) {
            ak_buf_append(out, esc, 2);
        } else {
            char u[6] = {'\\', 'u', '0', '0', 0, 0};
            u[4] = hex[c >> 4], u[5] = hex[c & 15];
            ak_buf_append(out, u, 6);
        }
    }
    ak_buf_append(out, s + run, len - run);
    ak_buf_putc(out, '"');
}

AK_PRIVATE void ak__jindent(ak_buf *out, int indent) {
    int i;
    ak_buf_putc(out, '\n');
    for (i = 0; i < indent; i++) ak_buf_append(out, "  ", 2);
}

/* Recursion depth is the nesting depth of v (bounded by the parser's limit for parsed
   values). indent < 0 writes compact JSON. */
AK_PRIVATE void ak__jwrite(const ak_json *v, ak_buf *out, int indent) {
    const ak_json *c;
    int obj;
    if (out->err) return;
    switch (v ? (ak_json_type)v->type : AK_JSON_NULL) {
    case AK_JSON_NULL: ak_buf_append(out, "null", 4); return;
    case AK_JSON_BOOL:
        if (v->flags & AK_JSON_F_TRUE) ak_buf_append(out, "true", 4);
        else ak_buf_append(out, "false", 5);
        return;
    case AK_JSON_NUMBER: ak_buf_append(out, v->u.str, v->len); return;
    case AK_JSON_STRING: ak_json_write_str(out, v->u.str, v->len); return;
    case AK_JSON_ARRAY: case AK_JSON_OBJECT: break;
    }
    obj = v->type == AK_JSON_OBJECT;
    ak_buf_putc(out, obj ? '{' : '[');
    for (c = v->u.first; c; c = c->next) {
        if (indent >= 0) ak__jindent(out, indent + 1);
        if (obj) {
            ak_json_write_str(out, c->key ? c->key : "", c->key_len);
            ak_buf_putc(out, ':');
            if (indent >= 0) ak_buf_putc(out, ' ');
        }
        ak__jwrite(c, out, indent >= 0 ? indent + 1 : -1);
        if (c->next) ak_buf_putc(out, ',');
    }
    if (indent >= 0 && v->u.first) ak__jindent(out, indent);
    ak_buf_putc(out, obj ? '}' : ']');
}

AKDEF ak_result ak_json_write(const ak_json *v, ak_buf *out) {
    ak__jwrite(v, out, -1);
    return out->err;
}

AKDEF ak_result ak_json_write_pretty(const ak_json *v, ak_buf *out) {
    ak__jwrite(v, out, 0);
    return out->err;
}

/* ---- builder -------------------------------------------------------------------------- */

AKDEF ak_json *ak_json_new_null(ak_json_doc *d) { return ak__json_node(d, AK_JSON_NULL); }

AKDEF ak_json *ak_json_new_bool(ak_json_doc *d, int value) {
    ak_json *v = ak__json_node(d, AK_JSON_BOOL);
    if (v && value) v->flags = AK_JSON_F_TRUE;
    return v;
}

AK_PRIVATE ak_json *ak__json_number_from_buf(ak_json_doc *d, ak_buf *b, uint8_t flags) {
    ak_json *v;
    if (b->err) return NULL;
    v = ak__json_node(d, AK_JSON_NUMBER);
    if (!v) return NULL;
    if (!(v->u.str = ak_arena_strdup(&d->arena, b->ptr, b->len))) {
        d->err = AK_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    v->len = (uint32_t)b->len;
    v->flags = flags;
    return v;
}

AKDEF ak_json *ak_json_new_int(ak_json_doc *d, int64_t value) {
    char tmp[24];
    ak_buf b;
    ak_buf_init_fixed(&b, tmp, sizeof tmp);
    ak_buf_put_i64(&b, value);
    return ak__json_number_from_buf(d, &b, AK_JSON_F_INT);
}

AKDEF ak_json *ak_json_new_double(ak_json_doc *d, double value) {
    char tmp[40];
    ak_buf b;
    uint8_t flags = AK_JSON_F_INT;
    size_t i;
    if (ak__isnan_or_inf(value)) return ak_json_new_null(d);
    ak_buf_init_fixed(&b, tmp, sizeof tmp);
    ak__format_double(&b, value);
    for (i = 0; i < b.len; i++)
        if (tmp[i] == '.' || tmp[i] == 'e') flags = 0;
    return ak__json_number_from_buf(d, &b, flags);
}

AKDEF ak_json *ak_json_new_number(ak_json_doc *d, const char *lexeme, size_t len) {
    ak_json *v;
    uint8_t flags;
    if (!lexeme || ak__jnumber_scan(lexeme, lexeme + len, &flags) != lexeme + len) {
        if (d->err == AK_OK) d->err = AK_ERR_JSON_SYNTAX;
        return NULL;
    }
    if (len > 0xFFFFFFFFu) {
        d->err = AK_ERR_LIMIT;
        return NULL;
    }
    if (!(v = ak__json_node(d, AK_JSON_NUMBER))) return NULL;
    if (!(v->u.str = ak_arena_strdup(&d->arena, lexeme, len))) {
        d->err = AK_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    v->len = (uint32_t)len;
    v->flags = flags;
    return v;
}

AKDEF ak_json *ak_json_new_strn(ak_json_doc *d, const char *s, size_t len) {
    ak_json *v;
    char *copy;
    if (!s) s = "", len = 0;
    if (len > 0xFFFFFFFFu) {
        d->err = AK_ERR_LIMIT;
        return NULL;
    }
    if (ak_utf8_valid(s, len)) {
        copy = ak_arena_strdup(&d->arena, s, len);
    } else {
        ak_buf b;
        ak_buf_init(&b, d->arena.alloc);
        ak_utf8_sanitize(&b, s, len);
        copy = b.err ? NULL : ak_arena_strdup(&d->arena, b.ptr, b.len);
        len = b.len;
        ak_buf_free(&b);
    }
    if (!copy || !(v = ak__json_node(d, AK_JSON_STRING))) {
        d->err = AK_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    v->u.str = copy;
    v->len = (uint32_t)len;
    return v;
}

AKDEF ak_json *ak_json_new_str(ak_json_doc *d, const char *s) {
    return ak_json_new_strn(d, s, s ? ak__strlen(s) : 0);
}

AKDEF ak_json *ak_json_new_array(ak_json_doc *d) { return ak__json_node(d, AK_JSON_ARRAY); }
AKDEF ak_json *ak_json_new_object(ak_json_doc *d) { return ak__json_node(d, AK_JSON_OBJECT); }

/* Copies scalars by value; text is copied into d too, so the copy outlives the source. */
AKDEF ak_json *ak_json_copy(ak_json_doc *d, const ak_json *v) {
    ak_json *c, *tail = NULL;
    const ak_json *s;
    if (!v) return ak_json_new_null(d);
    if (!(c = ak__json_node(d, (ak_json_type)v->type))) return NULL;
    c->flags = v->flags;
    if (v->type == AK_JSON_STRING || v->type == AK_JSON_NUMBER) {
        if (!(c->u.str = ak_arena_strdup(&d->arena, v->u.str, v->len))) {
            d->err = AK_ERR_OUT_OF_MEMORY;
            return NULL;
        }
        c->len = v->len;
        return c;
    }
    if (v->type != AK_JSON_ARRAY && v->type != AK_JSON_OBJECT) return c;
    for (s = v->u.first; s; s = s->next) {
        ak_json *k = ak_json_copy(d, s);
        if (!k) return NULL;
        if (s->key && !(k->key = ak_arena_strdup(&d->arena, s->key, s->key_len))) {
            d->err = AK_ERR_OUT_OF_MEMORY;
            return NULL;
        }
        k->key_len = s->key_len;
        if (tail) tail->next = k;
        else c->u.first = k;
        tail = k;
        c->len++;
    }
    return c;
}

AKDEF size_t ak_json_copy_size(const ak_json *v) {
    const ak_json *c;
    size_t n = AK__ALIGN_UP(sizeof(ak_json));
    if (!v) return n;
    if (v->type == AK_JSON_STRING || v->type == AK_JSON_NUMBER) return n + AK__ALIGN_UP((size_t)v->len + 1);
    if (v->type != AK_JSON_ARRAY && v->type != AK_JSON_OBJECT) return n;
    for (c = v->u.first; c; c = c->next) {
        n += ak_json_copy_size(c);
        if (c->key) n += AK__ALIGN_UP((size_t)c->key_len + 1);
    }
    return n;
}

AKDEF ak_jref *ak_jref_new(const ak_allocator *alloc, const ak_json *v) {
    ak_jref *r = (ak_jref *)ak_alloc(alloc, sizeof *r);
    if (!r) return NULL;
    r->refs = 1;
    r->alloc = alloc;
    /* One block sized for the copy (plus the arena's header slack). */
    ak_arena_init(&r->doc.arena, alloc, ak_json_copy_size(v));
    r->doc.root = NULL;
    r->doc.err = AK_OK;
    r->value = ak_json_copy(&r->doc, v);
    if (!r->value) {
        ak_json_doc_free(&r->doc);
        ak_free(alloc, r, sizeof *r);
        return NULL;
    }
    return r;
}

AKDEF ak_jref *ak_jref_retain(ak_jref *r) {
    if (r) r->refs++;
    return r;
}

AKDEF void ak_jref_release(ak_jref *r) {
    if (!r || --r->refs) return;
    ak_json_doc_free(&r->doc);
    ak_free(r->alloc, r, sizeof *r);
}

AK_PRIVATE int ak__is_container(const ak_json *v, ak_json_type t) { return v && v->type == t; }

AKDEF ak_result ak_json_push(ak_json *arr, ak_json *v) {
    return ak_json_insert(arr, arr ? arr->len : 0, v);
}

/* Points to the link (first or a next field) that holds the index-th child. */
AK_PRIVATE ak_json **ak__jlink(ak_json *c, size_t index) {
    ak_json **link = &c->u.first;
    while (index-- && *link) link = &(*link)->next;
    return link;
}

AKDEF ak_result ak_json_insert(ak_json *arr, size_t index, ak_json *v) {
    ak_json **link;
    if (!v) return AK_ERR_INVALID_ARGUMENT;
    if (!ak__is_container(arr, AK_JSON_ARRAY)) return AK_ERR_JSON_TYPE;
    if (index > arr->len) return AK_ERR_INVALID_ARGUMENT;
    if (arr->len == 0xFFFFFFFFu) return AK_ERR_LIMIT;
    link = ak__jlink(arr, index);
    v->key = NULL, v->key_len = 0;
    v->next = *link;
    *link = v;
    arr->len++;
    return AK_OK;
}

AKDEF ak_json *ak_json_remove_at(ak_json *arr, size_t index) {
    ak_json **link, *v;
    if (!ak__is_container(arr, AK_JSON_ARRAY) || index >= arr->len) return NULL;
    link = ak__jlink(arr, index);
    v = *link;
    *link = v->next;
    v->next = NULL;
    arr->len--;
    return v;
}

AKDEF ak_result ak_json_replace_at(ak_json *arr, size_t index, ak_json *v) {
    ak_json **link;
    if (!v) return AK_ERR_INVALID_ARGUMENT;
    if (!ak__is_container(arr, AK_JSON_ARRAY)) return AK_ERR_JSON_TYPE;
    if (index >= arr->len) return AK_ERR_INVALID_ARGUMENT;
    link = ak__jlink(arr, index);
    v->key = NULL, v->key_len = 0;
    v->next = (*link)->next;
    (*link)->next = NULL;
    *link = v;
    return AK_OK;
}

AK_PRIVATE int ak__key_is(const ak_json *m, const char *key, size_t key_len) {
    return m->key_len == key_len && (key_len == 0 || AK_MEMCMP(m->key, key, key_len) == 0);
}

AKDEF ak_result ak_json_add(ak_json_doc *d, ak_json *obj, const char *key, size_t key_len,
                            ak_json *v) {
    ak_json **link;
    char *k;
    if (!v || !key) return AK_ERR_INVALID_ARGUMENT;
    if (!ak__is_container(obj, AK_JSON_OBJECT)) return AK_ERR_JSON_TYPE;
    if (obj->len == 0xFFFFFFFFu || key_len > 0xFFFFFFFFu) return AK_ERR_LIMIT;
    if (!(k = ak_arena_strdup(&d->arena, key, key_len))) return d->err = AK_ERR_OUT_OF_MEMORY;
    link = ak__jlink(obj, obj->len);
    v->key = k;
    v->key_len = (uint32_t)key_len;
    v->next = NULL;
    *link = v;
    obj->len++;
    return AK_OK;
}

AKDEF ak_result ak_json_setn(ak_json_doc *d, ak_json *obj, const char *key, size_t key_len,
                             ak_json *v) {
    ak_json **link, **found = NULL;
    if (!v || !key) return AK_ERR_INVALID_ARGUMENT;
    if (!ak__is_container(obj, AK_JSON_OBJECT)) return AK_ERR_JSON_TYPE;
    for (link = &obj->u.first; *link; link = &(*link)->next)
        if (ak__key_is(*link, key, key_len)) found = link;
    if (!found) return ak_json_add(d, obj, key, key_len, v);
    v->key = (*found)->key; /* same key text: reuse it */
    v->key_len = (*found)->key_len;
    v->next = (*found)->next;
    (*found)->next = NULL;
    *found = v;
    return AK_OK;
}

AKDEF ak_result ak_json_set(ak_json_doc *d, ak_json *obj, const char *key, ak_json *v) {
    return ak_json_setn(d, obj, key, key ? ak__strlen(key) : 0, v);
}

AKDEF ak_json *ak_json_removen(ak_json *obj, const char *key, size_t key_len) {
    ak_json **link, *last = NULL;
    if (!ak__is_container(obj, AK_JSON_OBJECT) || !key) return NULL;
    link = &obj->u.first;
    while (*link) {
        ak_json *m = *link;
        if (ak__key_is(m, key, key_len)) {
            *link = m->next;
            m->next = NULL;
            obj->len--;
            last = m;
        } else {
            link = &m->next;
        }
    }
    return last;
}

AKDEF ak_json *ak_json_remove(ak_json *obj, const char *key) {
    return ak_json_removen(obj, key, key ? ak__strlen(key) : 0);
}

AKDEF ak_result ak_json_set_str(ak_json_doc *d, ak_json *obj, const char *key, const char *s) {
    return ak_json_set(d, obj, key, ak_json_new_str(d, s));
}

AKDEF ak_result ak_json_set_int(ak_json_doc *d, ak_json *obj, const char *key, int64_t v) {
    return ak_json_set(d, obj, key, ak_json_new_int(d, v));
}

AKDEF ak_result ak_json_set_bool(ak_json_doc *d, ak_json *obj, const char *key, int v) {
    return ak_json_set(d, obj, key, ak_json_new_bool(d, v));
}

/* ---- access --------------------------------------------------------------------------- */

AKDEF ak_json_type ak_json_typeof(const ak_json *v) {
    return v ? (ak_json_type)v->type : AK_JSON_NULL;
}

AKDEF int ak_json_is(const ak_json *v, ak_json_type t) { return v && v->type == (uint8_t)t; }

AKDEF size_t ak_json_len(const ak_json *v) {
    return v && v->type >= AK_JSON_STRING ? v->len : 0;
}

AKDEF ak_json *ak_json_first(const ak_json *v) {
    return v && (v->type == AK_JSON_ARRAY || v->type == AK_JSON_OBJECT) ? v->u.first : NULL;
}

AKDEF ak_json *ak_json_getn(const ak_json *obj, const char *key, size_t key_len) {
    ak_json *m, *found = NULL;
    if (!ak__is_container(obj, AK_JSON_OBJECT) || !key) return NULL;
    for (m = obj->u.first; m; m = m->next)
        if (ak__key_is(m, key, key_len)) found = m;
    return found;
}

AKDEF ak_json *ak_json_get(const ak_json *obj, const char *key) {
    return key ? ak_json_getn(obj, key, ak__strlen(key)) : NULL;
}

AKDEF ak_json *ak_json_at(const ak_json *arr, size_t index) {
    ak_json *c;
    if (!ak__is_container(arr, AK_JSON_ARRAY) || index >= arr->len) return NULL;
    for (c = arr->u.first; index; index--) c = c->next;
    return c;
}

AKDEF ak_json *ak_json_path(const ak_json *root, const char *path) {
    const ak_json *v = root;
    const char *p = path;
    if (!p) return NULL;
    if (*p == '$') p++;
    while (v && *p) {
        if (*p == '.') p++;
        if (*p == '[') {
            size_t idx = 0;
            int any = 0;
            for (p++; *p >= '0' && *p <= '9'; p++, any = 1) {
                if (idx > ((size_t)-1) / 10 - 1) return NULL;
                idx = idx * 10 + (size_t)(*p - '0');
            }
            if (!any || *p != ']') return NULL;
            p++;
            v = ak_json_at(v, idx);
        } else {
            const char *k = p;
            while (*p && *p != '.' && *p != '[') p++;
            if (p == k) return NULL;
            v = ak_json_getn(v, k, (size_t)(p - k));
        }
    }
    return AK__UNCONST(ak_json *, v);
}

AKDEF const char *ak_json_str(const ak_json *v) {
    return v && v->type == AK_JSON_STRING ? v->u.str : NULL;
}

AKDEF const char *ak_json_str_or(const ak_json *v, const char *def) {
    return v && v->type == AK_JSON_STRING ? v->u.str : def;
}

AKDEF const char *ak_json_get_str(const ak_json *obj, const char *key) {
    return ak_json_str(ak_json_get(obj, key));
}

AKDEF int ak_json_bool(const ak_json *v, int def) {
    return v && v->type == AK_JSON_BOOL ? (v->flags & AK_JSON_F_TRUE) != 0 : def;
}

AKDEF ak_result ak_json_int64(const ak_json *v, int64_t *out) {
    if (!v || v->type != AK_JSON_NUMBER) return AK_ERR_JSON_TYPE;
    if (v->flags & AK_JSON_F_INT) {
        const char *p = v->u.str, *end = p + v->len;
        /* the magnitude limit, INT64_MAX or its negation's, is 10 * tens + last */
        const uint64_t tens = (uint64_t)INT64_MAX / 10;
        uint64_t m = 0;
        int neg = *p == '-';
        unsigned last = (unsigned)((uint64_t)INT64_MAX % 10) + (neg ? 1u : 0u);
        if (neg) p++;
        for (; p < end; p++) {
            unsigned dgt = (unsigned)(*p - '0');
            if (m > tens || (m == tens && dgt > last)) return AK_ERR_JSON_TYPE; /* out of range */
            m = m * 10 + dgt;
        }
        *out = neg ? (int64_t)(0 - m) : (int64_t)m;
        return AK_OK;
    }
    {
        /* 1.0 or 5e2: accept when the value is an exact integer in range */
        double dv = ak__strtod(v->u.str, v->len);
        if (dv != dv || dv < -9223372036854775808.0 || dv >= 9223372036854775808.0 ||
            (double)(int64_t)dv != dv)
            return AK_ERR_JSON_TYPE;
        *out = (int64_t)dv;
        return AK_OK;
    }
}

AKDEF int64_t ak_json_int_or(const ak_json *v, int64_t def) {
    int64_t x;
    return ak_json_int64(v, &x) == AK_OK ? x : def;
}

AKDEF ak_result ak_json_double(const ak_json *v, double *out) {
    if (!v || v->type != AK_JSON_NUMBER) return AK_ERR_JSON_TYPE;
    *out = ak__strtod(v->u.str, v->len);
    return AK_OK;
}

AKDEF double ak_json_double_or(const ak_json *v, double def) {
    double x;
    return ak_json_double(v, &x) == AK_OK ? x : def;
}

AKDEF int ak_json_is_empty(const ak_json *v) {
    if (!v || v->type == AK_JSON_NULL) return 1;
    if (v->type == AK_JSON_STRING || v->type == AK_JSON_ARRAY || v->type == AK_JSON_OBJECT)
        return v->len == 0;
    return 0;
}

AK_PRIVATE int ak__num_equal(const ak_json *a, const ak_json *b) {
    if (a->len == b->len && AK_MEMCMP(a->u.str, b->u.str, a->len) == 0) return 1;
    if ((a->flags & b->flags & AK_JSON_F_INT) && (a->len > 16 || b->len > 16)) {
        /* big integers: equal digits, or both zero ("-0" vs "0") */
        const char *x = a->u.str, *y = b->u.str;
        size_t xl = a->len, yl = b->len;
        if (*x == '-' && *y == '-') x++, y++, xl--, yl--;
        return xl == yl && AK_MEMCMP(x, y, xl) == 0;
    }
    return ak__strtod(a->u.str, a->len) == ak__strtod(b->u.str, b->len);
}

AKDEF int ak_json_equal(const ak_json *a, const ak_json *b) {
    const ak_json *x, *y;
    ak_json_type t = ak_json_typeof(a);
    if (t != ak_json_typeof(b)) return 0;
    if (!a || !b) return a == b || t == AK_JSON_NULL;
    switch (t) {
    case AK_JSON_NULL: return 1;
    case AK_JSON_BOOL: return (a->flags & AK_JSON_F_TRUE) == (b->flags & AK_JSON_F_TRUE);
    case AK_JSON_NUMBER: return ak__num_equal(a, b);
    case AK_JSON_STRING: return a->len == b->len && AK_MEMCMP(a->u.str, b->u.str, a->len) == 0;
    case AK_JSON_ARRAY:
        if (a->len != b->len) return 0;
        for (x = a->u.first, y = b->u.first; x && y; x = x->next, y = y->next)
            if (!ak_json_equal(x, y)) return 0;
        return 1;
    case AK_JSON_OBJECT:
        if (a->len != b->len) return 0;
        /* Same key order is the common case and costs one pass. */
        for (x = a->u.first, y = b->u.first; x && y; x = x->next, y = y->next)
            if (!ak__key_is(y, x->key, x->key_len) || !ak_json_equal(x, y)) break;
        if (!x) return 1;
        for (x = a->u.first; x; x = x->next)
            if (!ak_json_equal(ak_json_getn(a, x->key, x->key_len), ak_json_getn(b, x->key, x->key_len)) ||
                !ak_json_getn(b, x->key, x->key_len))
                return 0;
        return 1;
    }
    return 0;
}
/* ---- end src/json.c ---- */

/* ---- begin src/json_patch.c ---- */
/* >>json_patch: JSON Pointer (RFC 6901), JSON Patch apply (RFC 6902) and diff */


/* ---- pointer tokens ------------------------------------------------------------------- */

/* One reference token of a pointer, still escaped ("a~1b"). */
typedef struct ak__ptok {
    const char *s;
    size_t len;
} ak__ptok;

/* Checks the syntax of ptr[0..len): empty (the root) or '/'-separated tokens in which every
   '~' is followed by '0' or '1'. Counts the tokens into *count. */
AK_PRIVATE int ak__ptr_syntax_ok(const char *ptr, size_t len, size_t *count) {
    size_t i;
    *count = 0;
    if (len == 0) return 1;
    if (!ptr || ptr[0] != '/') return 0;
    for (i = 0; i < len; i++) {
        if (ptr[i] == '/') ++*count;
        else if (ptr[i] == '~' && (i + 1 >= len || (ptr[i + 1] != '0' && ptr[i + 1] != '1'))) return 0;
    }
    return 1;
}

/* Takes the next token of a syntax-checked pointer from *p (which sits on a '/').
   Returns 0 when there are no more. */
AK_PRIVATE int ak__ptr_next(const char **p, const char *end, ak__ptok *t) {
    const char *s;
    if (*p >= end) return 0;
    s = ++*p;
    while (*p < end && **p != '/') ++*p;
    t->s = s;
    t->len = (size_t)(*p - s);
    return 1;
}

/* The token, unescaped, equals key[0..key_len). */
AK_PRIVATE int ak__ptok_is(const ak__ptok *t, const char *key, size_t key_len) {
    size_t i, k = 0;
    for (i = 0; i < t->len; i++, k++) {
        char c = t->s[i];
        if (c == '~') c = t->s[++i] == '0' ? '~' : '/';
        if (k >= key_len || key[k] != c) return 0;
    }
    return k == key_len;
}

AK_PRIVATE int ak__ptok_is_dash(const ak__ptok *t) { return t->len == 1 && t->s[0] == '-'; }

/* Parses an array index token. RFC 6901 allows no leading zeros; Genkit's lenient client
   reads the token as a JavaScript number would, so "01" passes there. Indices too large for
   any array saturate (they are out of range either way). */
AK_PRIVATE int ak__ptok_index(const ak__ptok *t, int lenient, size_t *out) {
    uint64_t v = 0;
    size_t i;
    if (t->len == 0 || (!lenient && t->len > 1 && t->s[0] == '0')) return 0;
    for (i = 0; i < t->len; i++) {
        if (!ak__isdigit(t->s[i])) return 0;
        if (v <= 0xFFFFFFFFu) v = v * 10 + (uint64_t)(t->s[i] - '0');
    }
    *out = v > (uint64_t)(size_t)-1 ? (size_t)-1 : (size_t)v;
    return 1;
}

/* Copies the unescaped token into the arena (NUL-terminated). */
AK_PRIVATE char *ak__ptok_key(ak_arena *a, const ak__ptok *t, size_t *len) {
    char *k = (char *)ak_arena_alloc(a, t->len + 1);
    size_t i, n = 0;
    if (!k) return NULL;
    for (i = 0; i < t->len; i++) {
        char c = t->s[i];
        if (c == '~') c = t->s[++i] == '0' ? '~' : '/';
        k[n++] = c;
    }
    k[n] = 0;
    *len = n;
    return k;
}

/* The child of container c that t names (in an object the last member with that key, as
   ak_json_get sees it) and the sibling before it in *prev (NULL for the first child). */
AK_PRIVATE ak_json *ak__ptr_child(const ak_json *c, const ak__ptok *t, int lenient, ak_json **prev) {
    ak_json *m, *p = NULL, *found = NULL;
    size_t i;
    *prev = NULL;
    if (!c) return NULL;
    if (c->type == AK_JSON_OBJECT) {
        for (m = c->u.first; m; p = m, m = m->next)
            if (ak__ptok_is(t, m->key, m->key_len)) found = m, *prev = p;
        return found;
    }
    if (c->type != AK_JSON_ARRAY || !ak__ptok_index(t, lenient, &i) || i >= c->len) return NULL;
    for (m = c->u.first; i; i--) p = m, m = m->next;
    *prev = p;
    return m;
}

AKDEF ak_result ak_json_pointer(const ak_json *root, const char *ptr, size_t len, ak_json **out,
                                ak_error *err) {
    const char *p = ptr;
    const ak_json *v = root;
    ak_json *prev;
    ak__ptok t;
    size_t count;
    if (out) *out = NULL;
    if (!ak__ptr_syntax_ok(ptr, len, &count))
        return ak_error_set(err, AK_ERR_JSON_POINTER,
                            "invalid JSON Pointer '%.*s': it must be empty or start with '/', and "
                            "'~' must be followed by 0 or 1", (int)AK__MIN(len, 160), ptr ? ptr : "");
    while (v && ak__ptr_next(&p, ptr + len, &t)) v = ak__ptr_child(v, &t, 0, &prev);
    if (!v)
        return ak_error_set(err, AK_ERR_JSON_POINTER, "nothing at '%.*s'", (int)AK__MIN(len, 160), ptr);
    if (out) *out = AK__UNCONST(ak_json *, v);
    return AK_OK;
}

AKDEF void ak_json_pointer_append(ak_buf *ptr, const char *key, size_t key_len) {
    size_t i, run = 0;
    ak_buf_putc(ptr, '/');
    for (i = 0; i < key_len; i++) {
        if (key[i] != '~' && key[i] != '/') continue;
        ak_buf_append(ptr, key + run, i - run);
        ak_buf_append(ptr, key[i] == '~' ? "~0" : "~1", 2);
        run = i + 1;
    }
    ak_buf_append(ptr, key + run, key_len - run);
}

/* ---- patch: an undo journal makes a patch all or nothing ------------------------------- */

/* Strict mode is RFC 6902. AK_PATCH_LENIENT follows Genkit's client applyPatch
   (genkit-agents.md 5.5) where it is defined, and errs on the safe side where JavaScript
   would only produce something odd:
   - add creates missing, null or scalar intermediate values as {} (an absent or null
     document too); in arrays only existing elements are replaced, no holes are made;
   - add past the end of an array appends, as splice does; indices may have leading zeros;
   - remove and replace of something missing (member, element or parent) do nothing;
   - test of something missing fails as a mismatch;
   - the tokens __proto__, prototype and constructor are refused in path and from;
   - move and copy still need an existing from, and malformed operations are errors. */

/* Before a node is changed its fields are saved here; a failed patch writes them back
   newest first, which restores every container, sibling link and key exactly. The first
   chunk lives on the stack, so the usual small patch costs no memory; more come from the
   document's arena and are released with it. */
#define AK__UNDO_CHUNK 16

typedef struct ak__undo_entry {
    ak_json *node;
    ak_json saved;
} ak__undo_entry;

typedef struct ak__undo_chunk ak__undo_chunk;
struct ak__undo_chunk {
    ak__undo_chunk *prev;
    size_t n;
    ak__undo_entry e[AK__UNDO_CHUNK];
};

enum { AK__OP_ADD, AK__OP_REMOVE, AK__OP_REPLACE, AK__OP_MOVE, AK__OP_COPY, AK__OP_TEST };
static const char *const ak__op_names[6] = {"add", "remove", "replace", "move", "copy", "test"};

typedef struct ak__patcher {
    ak_json_doc *d;
    ak_json *root;        /* the document being patched; stored in the caller's *root on success */
    int lenient;
    ak__undo_chunk *undo; /* newest chunk */
    size_t index;         /* operation being applied, for messages */
    size_t copied;        /* bytes of values "copy" operations added so far */
    const char *op;       /* its name, or NULL before it is known */
    ak_error *err;
} ak__patcher;

/* One operation, checked: path and from are STRING values holding valid pointers. */
typedef struct ak__patch_op {
    int kind;
    const ak_json *path, *from, *value;
    size_t depth;         /* tokens in path */
} ak__patch_op;

/* Location a pointer names: the container (NULL for the root), the child there if any, and
   the sibling before it. */
typedef struct ak__loc {
    ak_json *parent, *target, *prev;
    ak__ptok last;
} ak__loc;

/* Pointer text for messages: "(root)" for the empty pointer, long ones cut. */
#define AK__PTR_SHOW(v) (v)->len ? "" : "(root)", (int)AK__MIN((v)->len, 160), (v)->u.str

AK_PRIVATE ak_result ak__pfail(ak__patcher *pp, ak_result code, const char *fmt, ...) {
    ak_buf b;
    va_list ap;
    if (!pp->err) return code;
    ak_error_set(pp->err, code, "");
    ak_buf_init_fixed(&b, pp->err->message, sizeof pp->err->message);
    if (pp->op) ak_buf_printf(&b, "operation %zu (%s): ", pp->index, pp->op);
    else ak_buf_printf(&b, "operation %zu: ", pp->index);
    va_start(ap, fmt);
    ak__vfmt(&b, fmt, ap);
    va_end(ap);
    return code;
}

AK_PRIVATE ak_result ak__patch_oom(ak__patcher *pp) {
    return ak__pfail(pp, AK_ERR_OUT_OF_MEMORY, "out of memory");
}

AK_PRIVATE ak_result ak__undo_save(ak__patcher *pp, ak_json *n) {
    ak__undo_chunk *c = pp->undo;
    if (c->n == AK__UNDO_CHUNK) {
        c = (ak__undo_chunk *)ak_arena_alloc(&pp->d->arena, sizeof *c);
        if (!c) return ak__patch_oom(pp);
        c->prev = pp->undo;
        c->n = 0;
        pp->undo = c;
    }
    c->e[c->n].node = n;
    c->e[c->n].saved = *n;
    c->n++;
    return AK_OK;
}

AK_PRIVATE void ak__undo_all(ak__patcher *pp) {
    ak__undo_chunk *c;
    for (c = pp->undo; c; c = c->prev)
        while (c->n) {
            c->n--;
            *c->e[c->n].node = c->e[c->n].saved;
        }
}

/* The slot holding the child after prev (the first child when prev is NULL). */
AK_PRIVATE ak_json **ak__slot(ak_json *c, ak_json *prev) { return prev ? &prev->next : &c->u.first; }

/* Unlinks the child after prev from container c. */
AK_PRIVATE ak_result ak__detach(ak__patcher *pp, ak_json *c, ak_json *prev, ak_json **out) {
    ak_json **slot = ak__slot(c, prev), *n = *slot;
    ak_result rc;
    if ((rc = ak__undo_save(pp, c)) != AK_OK || (prev && (rc = ak__undo_save(pp, prev)) != AK_OK) ||
        (rc = ak__undo_save(pp, n)) != AK_OK)
        return rc;
    *slot = n->next;
    n->next = NULL;
    c->len--;
    *out = n;
    return AK_OK;
}

/* Links v into container c after prev, as member `key` (NULL inside arrays). */
AK_PRIVATE ak_result ak__attach(ak__patcher *pp, ak_json *c, ak_json *prev, ak_json *v,
                                const char *key, size_t key_len) {
    ak_json **slot = ak__slot(c, prev);
    ak_result rc;
    if (c->len == 0xFFFFFFFFu) return ak__pfail(pp, AK_ERR_LIMIT, "container is full");
    if ((rc = ak__undo_save(pp, c)) != AK_OK || (prev && (rc = ak__undo_save(pp, prev)) != AK_OK) ||
        (rc = ak__undo_save(pp, v)) != AK_OK)
        return rc;
    v->key = key;
    v->key_len = (uint32_t)key_len;
    v->next = *slot;
    *slot = v;
    c->len++;
    return AK_OK;
}

AK_PRIVATE ak_json *ak__last_child(const ak_json *c) {
    ak_json *m = c->u.first;
    while (m && m->next) m = m->next;
    return m;
}

/* Swaps the child after prev for v, which takes over its key. */
AK_PRIVATE ak_result ak__swap(ak__patcher *pp, ak_json *c, ak_json *prev, ak_json *v) {
    ak_json *old;
    ak_result rc = ak__detach(pp, c, prev, &old);
    return rc != AK_OK ? rc : ak__attach(pp, c, prev, v, old->key, old->key_len);
}

AK_PRIVATE int ak__is_container_value(const ak_json *v) {
    return v && (v->type == AK_JSON_OBJECT || v->type == AK_JSON_ARRAY);
}

/* Nesting of v (containers on its deepest branch), counted no further than limit + 1, so
   the recursion is bounded even for a value built deeper than the parser allows. */
AK_PRIVATE size_t ak__nesting(const ak_json *v, size_t limit) {
    const ak_json *c;
    size_t best = 0;
    if (!ak__is_container_value(v)) return 0;
    if (limit == 0) return 1;
    for (c = v->u.first; c && best < limit; c = c->next) {
        size_t n = ak__nesting(c, limit - 1);
        if (n > best) best = n;
    }
    return best + 1;
}

/* A value put at a location `depth` tokens down must keep the document within
   AK_JSON_MAX_DEPTH: copy, move and add could otherwise nest a document in itself until
   the recursive consumers (copy, equal, write) ran out of stack. */
AK_PRIVATE ak_result ak__check_fit(ak__patcher *pp, const ak__patch_op *o, const ak_json *v) {
    if (o->depth > AK_JSON_MAX_DEPTH || ak__nesting(v, AK_JSON_MAX_DEPTH - o->depth) > AK_JSON_MAX_DEPTH - o->depth)
        return ak__pfail(pp, AK_ERR_JSON_DEPTH, "the result would nest deeper than %d levels",
                         (int)AK_JSON_MAX_DEPTH);
    return AK_OK;
}

/* Bytes v takes in a document (nodes, keys, text), counting no further than limit + 1. */
AK_PRIVATE size_t ak__footprint(const ak_json *v, size_t limit) {
    size_t n = sizeof *v + v->key_len + (ak__is_container_value(v) ? 0 : v->len);
    const ak_json *c;
    if (ak__is_container_value(v))
        for (c = v->u.first; c && n <= limit; c = c->next) n += ak__footprint(c, limit - n);
    return n;
}

/* Each "copy" can double a document, so twenty of them in a short patch would ask for
   gigabytes: together they may add AK_JSON_PATCH_MAX_COPY bytes. Other operations add
   only values the patch itself holds. */
AK_PRIVATE ak_result ak__check_copy_growth(ak__patcher *pp, const ak_json *v) {
    size_t room = AK_JSON_PATCH_MAX_COPY - pp->copied, n = ak__footprint(v, room);
    if (n > room)
        return ak__pfail(pp, AK_ERR_LIMIT, "copies would add more than %zu bytes (AK_JSON_PATCH_MAX_COPY)",
                         (size_t)AK_JSON_PATCH_MAX_COPY);
    pp->copied += n;
    return AK_OK;
}

/* Lenient mode creates a missing (or null, or scalar) intermediate value as {}: it replaces
   what is there, or becomes a new member of an object. */
AK_PRIVATE ak_result ak__create_parent(ak__patcher *pp, ak_json *c, const ak__ptok *t, ak_json *child,
                                       ak_json *prev, ak_json **out) {
    ak_json *o = ak_json_new_object(pp->d);
    char *key;
    size_t key_len;
    if (!o) return ak__patch_oom(pp);
    *out = o;
    if (child) return ak__swap(pp, c, prev, o);
    if (c->type != AK_JSON_OBJECT) return AK_ERR_NOT_FOUND; /* arrays do not grow holes */
    if (!(key = ak__ptok_key(&pp->d->arena, t, &key_len))) return ak__patch_oom(pp);
    return ak__attach(pp, c, ak__last_child(c), o, key, key_len);
}

/* Finds where ptr points. Every token but the last must name an existing container (or,
   with create, one is made); AK_ERR_NOT_FOUND otherwise, which the caller reports. */
AK_PRIVATE ak_result ak__locate(ak__patcher *pp, const ak_json *ptr, int create, ak__loc *loc) {
    const char *p = ptr->u.str, *end = p + ptr->len;
    ak_json *cur;
    ak__ptok t;
    ak_result rc;
    loc->parent = loc->prev = NULL;
    loc->target = pp->root;
    if (!ak__ptr_next(&p, end, &t)) return AK_OK; /* the root */
    if (create && (!pp->root || pp->root->type == AK_JSON_NULL) &&
        !(pp->root = ak_json_new_object(pp->d)))
        return ak__patch_oom(pp);
    cur = pp->root;
    for (;;) {
        ak__ptok next;
        const char *q = p;
        ak_json *prev, *child;
        if (!ak__is_container_value(cur)) return AK_ERR_NOT_FOUND;
        child = ak__ptr_child(cur, &t, pp->lenient, &prev);
        if (!ak__ptr_next(&q, end, &next)) {
            loc->parent = cur, loc->target = child, loc->prev = prev, loc->last = t;
            return AK_OK;
        }
        if (create && !ak__is_container_value(child) &&
            (rc = ak__create_parent(pp, cur, &t, child, prev, &child)) != AK_OK)
            return rc;
        cur = child, p = q, t = next;
    }
}

AK_PRIVATE ak_result ak__path_missing(ak__patcher *pp, const char *what, const ak_json *ptr) {
    return ak__pfail(pp, AK_ERR_JSON_PATCH, "%s %s%.*s does not exist", what, AK__PTR_SHOW(ptr));
}

/* add: v (detached, owned by the document) goes in at o->path. */
AK_PRIVATE ak_result ak__op_add(ak__patcher *pp, const ak__patch_op *o, ak_json *v) {
    ak__loc loc;
    ak_result rc = ak__locate(pp, o->path, pp->lenient, &loc);
    size_t index;
    if (rc == AK_ERR_NOT_FOUND) return ak__path_missing(pp, "path", o->path);
    if (rc != AK_OK) return rc;
    if (!loc.parent) {
        if ((rc = ak__undo_save(pp, v)) != AK_OK) return rc;
        v->key = NULL, v->key_len = 0, v->next = NULL;
        pp->root = v;
        return AK_OK;
    }
    if (loc.parent->type == AK_JSON_OBJECT) {
        char *key;
        size_t key_len;
        if (loc.target) return ak__swap(pp, loc.parent, loc.prev, v);
        if (!(key = ak__ptok_key(&pp->d->arena, &loc.last, &key_len))) return ak__patch_oom(pp);
        return ak__attach(pp, loc.parent, ak__last_child(loc.parent), v, key, key_len);
    }
    if (ak__ptok_is_dash(&loc.last)) return ak__attach(pp, loc.parent, ak__last_child(loc.parent), v, NULL, 0);
    if (!ak__ptok_index(&loc.last, pp->lenient, &index))
        return ak__pfail(pp, AK_ERR_JSON_PATCH, "path %.*s: '%.*s' is not an array index",
                         (int)AK__MIN(o->path->len, 160), o->path->u.str, (int)AK__MIN(loc.last.len, 40),
                         loc.last.s);
    if (index > loc.parent->len) {
        if (!pp->lenient)
            return ak__pfail(pp, AK_ERR_JSON_PATCH, "path %.*s: index %zu is beyond the end of an array of %u",
                             (int)AK__MIN(o->path->len, 160), o->path->u.str, index, (unsigned)loc.parent->len);
        index = loc.parent->len; /* as JavaScript's splice does */
    }
    if (index == 0) return ak__attach(pp, loc.parent, NULL, v, NULL, 0);
    return ak__attach(pp, loc.parent, ak_json_at(loc.parent, index - 1), v, NULL, 0);
}

/* remove: unlinks the value at ptr into *out (NULL when lenient and nothing was there).
   Removing an object member removes its duplicates too, so no older one reappears. */
AK_PRIVATE ak_result ak__op_remove(ak__patcher *pp, const ak_json *ptr, const char *what, ak_json **out) {
    ak__loc loc;
    ak_result rc = ak__locate(pp, ptr, 0, &loc);
    *out = NULL;
    if (rc != AK_OK && rc != AK_ERR_NOT_FOUND) return rc;
    if (rc == AK_ERR_NOT_FOUND || !loc.target) return pp->lenient ? AK_OK : ak__path_missing(pp, what, ptr);
    if (!loc.parent) {
        *out = pp->root;
        pp->root = NULL;
        return AK_OK;
    }
    if ((rc = ak__detach(pp, loc.parent, loc.prev, out)) != AK_OK) return rc;
    while (loc.parent->type == AK_JSON_OBJECT && (loc.target = ak__ptr_child(loc.parent, &loc.last, 0, &loc.prev))) {
        ak_json *dup;
        if ((rc = ak__detach(pp, loc.parent, loc.prev, &dup)) != AK_OK) return rc;
    }
    return AK_OK;
}

AK_PRIVATE ak_result ak__op_replace(ak__patcher *pp, const ak__patch_op *o, ak_json *v) {
    ak__loc loc;
    ak_result rc = ak__locate(pp, o->path, 0, &loc);
    if (rc != AK_OK && rc != AK_ERR_NOT_FOUND) return rc;
    if (rc == AK_OK && !loc.parent) {
        pp->root = v; /* the root can always be replaced, even when absent */
        return AK_OK;
    }
    if (rc == AK_ERR_NOT_FOUND || !loc.target)
        return pp->lenient ? AK_OK : ak__path_missing(pp, "path", o->path);
    return ak__swap(pp, loc.parent, loc.prev, v);
}

AK_PRIVATE ak_result ak__op_test(ak__patcher *pp, const ak__patch_op *o) {
    ak__loc loc;
    ak_result rc = ak__locate(pp, o->path, 0, &loc);
    if (rc != AK_OK && rc != AK_ERR_NOT_FOUND) return rc;
    if ((rc == AK_ERR_NOT_FOUND || !loc.target) && !pp->lenient)
        return ak__path_missing(pp, "path", o->path);
    /* Lenient mode compares like Genkit's client: a missing value never equals anything. */
    if (rc == AK_ERR_NOT_FOUND || !loc.target || !ak_json_equal(loc.target, o->value))
        return ak__pfail(pp, AK_ERR_JSON_TEST, "the value at %s%.*s differs", AK__PTR_SHOW(o->path));
    return AK_OK;
}

/* The value at o->from, which must exist in both modes (there is nothing to move or copy
   otherwise). */
AK_PRIVATE ak_result ak__source(ak__patcher *pp, const ak__patch_op *o, ak_json **out) {
    ak__loc loc;
    ak_result rc = ak__locate(pp, o->from, 0, &loc);
    if (rc != AK_OK && rc != AK_ERR_NOT_FOUND) return rc;
    if (rc == AK_ERR_NOT_FOUND || !loc.target) return ak__path_missing(pp, "from", o->from);
    *out = loc.target;
    return AK_OK;
}

/* path lies strictly inside from */
AK_PRIVATE int ak__ptr_inside(const ak_json *path, const ak_json *from) {
    return path->len > from->len && AK_MEMCMP(path->u.str, from->u.str, from->len) == 0 &&
           path->u.str[from->len] == '/';
}

AK_PRIVATE ak_result ak__op_move(ak__patcher *pp, const ak__patch_op *o) {
    ak_json *v;
    ak_result rc = ak__source(pp, o, &v);
    if (rc != AK_OK) return rc;
    if (o->path->len == o->from->len && AK_MEMCMP(o->path->u.str, o->from->u.str, o->path->len) == 0)
        return AK_OK;
    if (ak__ptr_inside(o->path, o->from))
        return ak__pfail(pp, AK_ERR_JSON_PATCH, "cannot move %s%.*s into its own child %.*s",
                         AK__PTR_SHOW(o->from), (int)AK__MIN(o->path->len, 160), o->path->u.str);
    if ((rc = ak__check_fit(pp, o, v)) != AK_OK) return rc;
    if ((rc = ak__op_remove(pp, o->from, "from", &v)) != AK_OK) return rc;
    return ak__op_add(pp, o, v);
}

/* A copy of v in the document, if it fits where o puts it and, for a "copy" (whose value
   comes from the document, not the patch), within what copies may add. The depth check
   goes first: it bounds the recursion of the growth check. */
AK_PRIVATE ak_result ak__copy_for(ak__patcher *pp, const ak__patch_op *o, const ak_json *v, ak_json **out) {
    ak_result rc = ak__check_fit(pp, o, v);
    if (rc == AK_OK && o->kind == AK__OP_COPY) rc = ak__check_copy_growth(pp, v);
    if (rc != AK_OK) return rc;
    if (!(*out = ak_json_copy(pp->d, v))) return ak__patch_oom(pp);
    return AK_OK;
}

/* Lenient mode refuses the tokens that reach JavaScript prototypes, as Genkit's client does. */
AK_PRIVATE const char *ak__forbidden_token(const ak_json *ptr) {
    static const char *const names[3] = {"__proto__", "prototype", "constructor"};
    const char *p = ptr->u.str, *end = p + ptr->len;
    ak__ptok t;
    int i;
    while (ak__ptr_next(&p, end, &t))
        for (i = 0; i < 3; i++)
            if (ak__ptok_is(&t, names[i], ak__strlen(names[i]))) return names[i];
    return NULL;
}

/* Checks one pointer member ("path" or "from") of an operation. */
AK_PRIVATE ak_result ak__op_pointer(ak__patcher *pp, const ak_json *op, const char *name, const ak_json **out,
                                    size_t *depth) {
    const ak_json *v = ak_json_get(op, name);
    const char *bad;
    if (!v) return ak__pfail(pp, AK_ERR_JSON_PATCH, "missing '%s'", name);
    if (v->type != AK_JSON_STRING) return ak__pfail(pp, AK_ERR_JSON_PATCH, "'%s' is not a string", name);
    if (!ak__ptr_syntax_ok(v->u.str, v->len, depth))
        return ak__pfail(pp, AK_ERR_JSON_PATCH, "'%s' is not a JSON Pointer: '%.*s'", name,
                         (int)AK__MIN(v->len, 160), v->u.str);
    if (pp->lenient && (bad = ak__forbidden_token(v)) != NULL)
        return ak__pfail(pp, AK_ERR_JSON_PATCH, "'%s' uses the forbidden token '%s'", name, bad);
    *out = v;
    return AK_OK;
}

/* Reads and checks one operation object. */
AK_PRIVATE ak_result ak__parse_op(ak__patcher *pp, const ak_json *op, ak__patch_op *o) {
    const ak_json *name = ak_json_get(op, "op");
    size_t from_depth;
    ak_result rc;
    int k;
    pp->op = NULL;
    if (!ak_json_is(op, AK_JSON_OBJECT)) return ak__pfail(pp, AK_ERR_JSON_PATCH, "not an object");
    if (!ak_json_is(name, AK_JSON_STRING)) return ak__pfail(pp, AK_ERR_JSON_PATCH, "missing 'op'");
    for (k = 0; k < 6 && !ak__eqn(name->u.str, name->len, ak__op_names[k]); k++) {}
    if (k == 6)
        return ak__pfail(pp, AK_ERR_JSON_PATCH, "unknown op '%.*s'", (int)AK__MIN(name->len, 40), name->u.str);
    pp->op = ak__op_names[k];
    o->kind = k;
    o->from = NULL;
    o->value = ak_json_get(op, "value");
    if ((rc = ak__op_pointer(pp, op, "path", &o->path, &o->depth)) != AK_OK) return rc;
    if ((k == AK__OP_MOVE || k == AK__OP_COPY) &&
        (rc = ak__op_pointer(pp, op, "from", &o->from, &from_depth)) != AK_OK)
        return rc;
    if ((k == AK__OP_ADD || k == AK__OP_REPLACE || k == AK__OP_TEST) && !o->value)
        return ak__pfail(pp, AK_ERR_JSON_PATCH, "missing 'value'");
    return AK_OK;
}

AK_PRIVATE ak_result ak__apply_op(ak__patcher *pp, const ak_json *op) {
    ak__patch_op o;
    ak_json *v;
    ak_result rc = ak__parse_op(pp, op, &o);
    if (rc != AK_OK) return rc;
    switch (o.kind) {
    case AK__OP_ADD:
        if ((rc = ak__copy_for(pp, &o, o.value, &v)) != AK_OK) return rc;
        return ak__op_add(pp, &o, v);
    case AK__OP_REMOVE: return ak__op_remove(pp, o.path, "path", &v);
    case AK__OP_REPLACE:
        if ((rc = ak__copy_for(pp, &o, o.value, &v)) != AK_OK) return rc;
        return ak__op_replace(pp, &o, v);
    case AK__OP_MOVE: return ak__op_move(pp, &o);
    case AK__OP_COPY:
        if ((rc = ak__source(pp, &o, &v)) != AK_OK || (rc = ak__copy_for(pp, &o, v, &v)) != AK_OK) return rc;
        return ak__op_add(pp, &o, v);
    default: return ak__op_test(pp, &o);
    }
}

AKDEF ak_result ak_json_patch(ak_json_doc *d, ak_json **root, const ak_json *patch,
                              unsigned flags, ak_error *err) {
    ak__patcher pp;
    ak__undo_chunk first;
    ak_arena_mark mark;
    ak_result rc = AK_OK, doc_err;
    const ak_json *op;
    if (!d || !root) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "NULL document or root");
    if (!ak_json_is(patch, AK_JSON_ARRAY))
        return ak_error_set(err, AK_ERR_JSON_PATCH, "a JSON Patch must be an array of operations");
    first.prev = NULL;
    first.n = 0;
    pp.d = d, pp.root = *root, pp.lenient = (flags & AK_PATCH_LENIENT) != 0;
    pp.undo = &first, pp.index = 0, pp.copied = 0, pp.op = NULL, pp.err = err;
    mark = ak_arena_save(&d->arena);
    doc_err = d->err;
    for (op = patch->u.first; op && rc == AK_OK; op = op->next, pp.index++) rc = ak__apply_op(&pp, op);
    if (rc != AK_OK) {
        /* Put every changed node back, then drop everything this patch allocated. */
        ak__undo_all(&pp);
        ak_arena_restore(&d->arena, mark);
        d->err = doc_err;
        return rc;
    }
    *root = pp.root;
    return AK_OK;
}

/* ---- diff ----------------------------------------------------------------------------- */

/* A location inside a value, as a chain through the C stack of a recursive walk (the diff
   here, the schema validator later). It is rendered as a pointer only when needed, so
   walking costs nothing. */
typedef struct ak__jpath ak__jpath;
struct ak__jpath {
    const ak__jpath *up;   /* NULL at the root */
    const char *key;       /* member name, or NULL for an array index */
    size_t key_len;
    size_t index;
};

/* Appends the pointer of p (nothing for the root). Recursion is as deep as the walk. */
AK_PRIVATE void ak__jpath_append(ak_buf *b, const ak__jpath *p) {
    if (!p) return;
    ak__jpath_append(b, p->up);
    if (p->key) {
        ak_json_pointer_append(b, p->key, p->key_len);
    } else {
        ak_buf_putc(b, '/');
        ak_buf_put_u64(b, p->index);
    }
}

typedef struct ak__differ {
    ak_json_doc *d;
    ak_json *ops;
} ak__differ;

AK_PRIVATE size_t ak__jpath_token_len(const ak__jpath *p) {
    size_t n = 1, i, v;
    if (!p->key) {
        for (v = p->index; v >= 10; v /= 10) n++;
        return n + 1;
    }
    for (i = 0; i < p->key_len; i++) n += (p->key[i] == '~' || p->key[i] == '/') ? 2 : 1;
    return n;
}

/* Writes p's token (with its '/') so that it ends at end; returns where it starts. */
AK_PRIVATE char *ak__jpath_token_put(const ak__jpath *p, char *end) {
    size_t i;
    if (!p->key) {
        size_t v = p->index;
        do *--end = (char)('0' + v % 10);
        while ((v /= 10) != 0);
    } else {
        for (i = p->key_len; i-- > 0;) {
            char c = p->key[i];
            if (c == '~' || c == '/') { /* "~0" and "~1", written backwards */
                *--end = c == '~' ? '0' : '1';
                c = '~';
            }
            *--end = c;
        }
    }
    *--end = '/';
    return end;
}

/* A string value holding the pointer of p ("" for the root), built from the leaf up. */
AK_PRIVATE ak_json *ak__jpath_string(ak__differ *df, const ak__jpath *p) {
    const ak__jpath *q;
    size_t len = 0;
    char *s, *end;
    ak_json *v;
    for (q = p; q; q = q->up)
        if (!ak__add_ok(len, ak__jpath_token_len(q), &len) || len > 0xFFFFFFFEu) return NULL;
    if (!(s = (char *)ak_arena_alloc(&df->d->arena, len + 1)) || !(v = ak__json_node(df->d, AK_JSON_STRING)))
        return NULL;
    end = s + len;
    *end = 0;
    for (q = p; q; q = q->up) end = ak__jpath_token_put(q, end);
    v->u.str = s;
    v->len = (uint32_t)len;
    return v;
}

/* Appends {"op":op,"path":<p>[,"value":<copy of value>]} to the patch. */
AK_PRIVATE ak_result ak__diff_emit(ak__differ *df, const char *op, const ak__jpath *p, const ak_json *value) {
    ak_json_doc *d = df->d;
    ak_json *o = ak_json_new_object(d), *path = ak__jpath_string(df, p);
    if (!o || !path || ak_json_add(d, o, "op", 2, ak_json_new_str(d, op)) != AK_OK ||
        ak_json_add(d, o, "path", 4, path) != AK_OK ||
        (value && ak_json_add(d, o, "value", 5, ak_json_copy(d, value)) != AK_OK) ||
        ak_json_push(df->ops, o) != AK_OK)
        return AK_ERR_OUT_OF_MEMORY;
    return AK_OK;
}

/* m is the first member of obj with its key (later duplicates are the same member as
   JavaScript sees it). */
AK_PRIVATE int ak__first_of_key(const ak_json *obj, const ak_json *m) {
    const ak_json *x;
    for (x = obj->u.first; x != m; x = x->next)
        if (ak__key_is(x, m->key, m->key_len)) return 0;
    return 1;
}

AK_PRIVATE ak_result ak__diff_at(ak__differ *df, const ak_json *from, const ak_json *to,
                                 const ak__jpath *p, size_t depth);

AK_PRIVATE ak_result ak__diff_objects(ak__differ *df, const ak_json *from, const ak_json *to,
                                      const ak__jpath *p, size_t depth) {
    const ak_json *m;
    ak__jpath child;
    ak_result rc = AK_OK;
    child.up = p, child.index = 0;
    for (m = from->u.first; m && rc == AK_OK; m = m->next) {
        const ak_json *t;
        if (!ak__first_of_key(from, m)) continue;
        child.key = m->key ? m->key : "", child.key_len = m->key_len;
        t = ak_json_getn(to, child.key, child.key_len);
        rc = t ? ak__diff_at(df, ak_json_getn(from, child.key, child.key_len), t, &child, depth + 1)
               : ak__diff_emit(df, "remove", &child, NULL);
    }
    for (m = to->u.first; m && rc == AK_OK; m = m->next) {
        if (!ak__first_of_key(to, m) || ak_json_getn(from, m->key ? m->key : "", m->key_len)) continue;
        child.key = m->key ? m->key : "", child.key_len = m->key_len;
        rc = ak__diff_emit(df, "add", &child, ak_json_getn(to, child.key, child.key_len));
    }
    return rc;
}

AK_PRIVATE ak_result ak__diff_arrays(ak__differ *df, const ak_json *from, const ak_json *to,
                                     const ak__jpath *p, size_t depth) {
    const ak_json *x = from->u.first, *y = to->u.first;
    ak__jpath child;
    ak_result rc = AK_OK;
    child.up = p, child.key = NULL, child.key_len = 0, child.index = 0;
    for (; x && y && rc == AK_OK; x = x->next, y = y->next, child.index++)
        rc = ak__diff_at(df, x, y, &child, depth + 1);
    if (rc != AK_OK) return rc;
    if (y) {
        child.key = "-", child.key_len = 1;
        for (; y && rc == AK_OK; y = y->next) rc = ak__diff_emit(df, "add", &child, y);
    }
    for (child.index = from->len; child.index > to->len && rc == AK_OK;) {
        child.index--;
        rc = ak__diff_emit(df, "remove", &child, NULL);
    }
    return rc;
}

/* Genkit's diff (reference §5.5). Deeper than AK_JSON_MAX_DEPTH it stops descending and
   replaces the whole subtree: still a correct patch, and the recursion stays bounded. */
AK_PRIVATE ak_result ak__diff_at(ak__differ *df, const ak_json *from, const ak_json *to,
                                 const ak__jpath *p, size_t depth) {
    ak_json_type ft = ak_json_typeof(from), tt = ak_json_typeof(to);
    if (depth < AK_JSON_MAX_DEPTH && from && to && ft == tt && ft == AK_JSON_OBJECT)
        return ak__diff_objects(df, from, to, p, depth);
    if (depth < AK_JSON_MAX_DEPTH && from && to && ft == tt && ft == AK_JSON_ARRAY)
        return ak__diff_arrays(df, from, to, p, depth);
    if ((!from && !to) || (from && to && ak_json_equal(from, to))) return AK_OK;
    if (!to) return ak__diff_emit(df, "remove", p, NULL);
    return ak__diff_emit(df, "replace", p, to);
}

AKDEF ak_result ak_json_diff(ak_json_doc *d, const ak_json *from, const ak_json *to,
                             ak_json **patch) {
    ak__differ df;
    ak_arena_mark mark;
    ak_result rc, doc_err;
    if (patch) *patch = NULL;
    if (!d || !patch) return AK_ERR_INVALID_ARGUMENT;
    mark = ak_arena_save(&d->arena);
    doc_err = d->err;
    df.d = d;
    rc = (df.ops = ak_json_new_array(d)) ? ak__diff_at(&df, from, to, NULL, 0) : AK_ERR_OUT_OF_MEMORY;
    if (rc != AK_OK) {
        ak_arena_restore(&d->arena, mark); /* nothing of a failed diff stays */
        d->err = doc_err;
        return rc;
    }
    *patch = df.ops;
    return AK_OK;
}
/* ---- end src/json_patch.c ---- */

#if !defined(AK_NO_SCHEMA)
/* ---- begin src/json_schema.c ---- */
/* >>json_schema: validation against the draft-07 subset Genkit tool and state schemas use */


/* Subschemas applied inside one another (properties, items, combinators, $ref). A schema
   that refers to itself without consuming the value ends here instead of recursing
   forever. */
#ifndef AK_JSON_SCHEMA_MAX_DEPTH
#define AK_JSON_SCHEMA_MAX_DEPTH 256
#endif
/* Subschemas applied in one validation: nested anyOf/oneOf can fan out exponentially, so a
   hostile schema costs at most this much work. */
#ifndef AK_JSON_SCHEMA_MAX_STEPS
#define AK_JSON_SCHEMA_MAX_STEPS 1000000
#endif

typedef struct ak__validator {
    const ak_json *root;   /* the whole schema, which $ref points into */
    ak_error *err;         /* NULL while trying the branches of anyOf, oneOf and not */
    size_t steps;
} ak__validator;

AK_PRIVATE ak_result ak__sv(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at,
                            size_t depth);

/* Fills the error as "<pointer>: <what>", the pointer "(root)" for the value itself. */
AK_PRIVATE ak_result ak__sfail(ak__validator *sv, const ak__jpath *at, ak_result code, const char *fmt, ...) {
    ak_buf b;
    va_list ap;
    if (!sv->err) return code;
    ak_error_set(sv->err, code, "");
    ak_buf_init_fixed(&b, sv->err->message, sizeof sv->err->message);
    if (at) ak__jpath_append(&b, at);
    else ak_buf_puts(&b, "(root)");
    ak_buf_append(&b, ": ", 2);
    va_start(ap, fmt);
    ak__vfmt(&b, fmt, ap);
    va_end(ap);
    return code;
}

/* Appends v as compact JSON to the message the last ak__sfail wrote. */
AK_PRIVATE void ak__sfail_show(ak__validator *sv, const ak_json *v) {
    ak_buf b;
    size_t n;
    if (!sv->err) return;
    n = ak__strlen(sv->err->message);
    ak_buf_init_fixed(&b, sv->err->message + n, sizeof sv->err->message - n);
    ak_json_write(v, &b);
}

AK_PRIVATE ak_result ak__bad_schema(ak__validator *sv, const char *keyword, const char *what) {
    return sv->err ? ak_error_set(sv->err, AK_ERR_INVALID_ARGUMENT, "invalid schema: '%s' %s", keyword, what)
                   : AK_ERR_INVALID_ARGUMENT;
}

/* A number with an integral value: 5 and 5.0 both are, as in JavaScript. */
AK_PRIVATE int ak__json_is_integer(const ak_json *v) {
    double x;
    if (!ak_json_is(v, AK_JSON_NUMBER)) return 0;
    if (v->flags & AK_JSON_F_INT) return 1;
    x = ak__strtod(v->u.str, v->len);
    if (ak__isnan_or_inf(x)) return 0;
    if (x >= 9007199254740992.0 || x <= -9007199254740992.0) return 1; /* no fraction bits left */
    return (double)(int64_t)x == x;
}

AK_PRIVATE int ak__type_is(const ak_json *v, const ak_json *name, int *known) {
    static const char *const names[7] = {"null", "boolean", "number", "string", "array", "object", "integer"};
    int i;
    *known = 1;
    for (i = 0; i < 7; i++)
        if (ak__eqn(name->u.str, name->len, names[i]))
            return i == 6 ? ak__json_is_integer(v) : ak_json_typeof(v) == (ak_json_type)i;
    *known = 0;
    return 0;
}

/* "type": a name or an array of names. */
AK_PRIVATE ak_result ak__sv_type(ak__validator *sv, const ak_json *type, const ak_json *v, const ak__jpath *at) {
    const ak_json *t = ak_json_is(type, AK_JSON_ARRAY) ? type->u.first : type;
    char names[160];
    ak_buf b;
    int known;
    ak_buf_init_fixed(&b, names, sizeof names);
    for (; t; t = type->type == AK_JSON_ARRAY ? t->next : NULL) {
        if (!ak_json_is(t, AK_JSON_STRING)) return ak__bad_schema(sv, "type", "must be a name or an array of names");
        if (ak__type_is(v, t, &known)) return AK_OK;
        if (!known) return ak__bad_schema(sv, "type", "names an unknown type");
        if (b.len) ak_buf_puts(&b, " or ");
        ak_buf_append(&b, t->u.str, t->len);
    }
    return ak__sfail(sv, at, AK_ERR_SCHEMA, "must be %s", b.len ? names : "of no type (empty type list)");
}

AK_PRIVATE ak_result ak__sv_enum_const(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at) {
    const ak_json *e = ak_json_get(s, "enum"), *c = ak_json_get(s, "const"), *x;
    ak_result rc;
    if (c && !ak_json_equal(c, v)) {
        rc = ak__sfail(sv, at, AK_ERR_SCHEMA, "must be equal to ");
        ak__sfail_show(sv, c);
        return rc;
    }
    if (!e) return AK_OK;
    if (!ak_json_is(e, AK_JSON_ARRAY)) return ak__bad_schema(sv, "enum", "must be an array");
    for (x = e->u.first; x; x = x->next)
        if (ak_json_equal(x, v)) return AK_OK;
    rc = ak__sfail(sv, at, AK_ERR_SCHEMA, "must be one of ");
    ak__sfail_show(sv, e);
    return rc;
}

/* A count keyword (minLength, maxItems, ...): a non-negative integer; *n = -1 when absent. */
AK_PRIVATE ak_result ak__count_kw(ak__validator *sv, const ak_json *s, const char *keyword, int64_t *n) {
    const ak_json *k = ak_json_get(s, keyword);
    *n = -1;
    if (!k) return AK_OK;
    if (ak_json_int64(k, n) != AK_OK || *n < 0) return ak__bad_schema(sv, keyword, "must be a non-negative integer");
    return AK_OK;
}

/* Checks count against minKw/maxKw; `unit` names what is counted in messages. */
AK_PRIVATE ak_result ak__sv_counts(ak__validator *sv, const ak_json *s, const char *min_kw, const char *max_kw,
                                   size_t count, const char *unit, const ak__jpath *at) {
    int64_t lo, hi;
    ak_result rc;
    if ((rc = ak__count_kw(sv, s, min_kw, &lo)) != AK_OK || (rc = ak__count_kw(sv, s, max_kw, &hi)) != AK_OK)
        return rc;
    if (lo >= 0 && (uint64_t)count < (uint64_t)lo)
        return ak__sfail(sv, at, AK_ERR_SCHEMA, "must have at least %lld %s", (long long)lo, unit);
    if (hi >= 0 && (uint64_t)count > (uint64_t)hi)
        return ak__sfail(sv, at, AK_ERR_SCHEMA, "must have at most %lld %s", (long long)hi, unit);
    return AK_OK;
}

/* One bound: minimum/maximum (inclusive) or exclusiveMinimum/exclusiveMaximum, which are
   numbers in draft-07 and booleans modifying minimum/maximum in draft-04. */
AK_PRIVATE ak_result ak__sv_bound(ak__validator *sv, const ak_json *s, double x, int upper, const ak__jpath *at) {
    const ak_json *inc = ak_json_get(s, upper ? "maximum" : "minimum");
    const ak_json *exc = ak_json_get(s, upper ? "exclusiveMaximum" : "exclusiveMinimum");
    const char *kw = upper ? "maximum" : "minimum";
    double b;
    int exclusive = ak_json_bool(exc, 0);
    if (inc && ak_json_double(inc, &b) != AK_OK) return ak__bad_schema(sv, kw, "must be a number");
    if (inc && (upper ? (x > b || (exclusive && x == b)) : (x < b || (exclusive && x == b))))
        return ak__sfail(sv, at, AK_ERR_SCHEMA, "must be %s%s %.*s", upper ? "<" : ">", exclusive ? "" : "=",
                         (int)inc->len, inc->u.str);
    if (!exc || exc->type == AK_JSON_BOOL) return AK_OK;
    if (ak_json_double(exc, &b) != AK_OK) return ak__bad_schema(sv, upper ? "exclusiveMaximum" : "exclusiveMinimum", "must be a number");
    if (upper ? x >= b : x <= b)
        return ak__sfail(sv, at, AK_ERR_SCHEMA, "must be %s %.*s", upper ? "<" : ">", (int)exc->len, exc->u.str);
    return AK_OK;
}

AK_PRIVATE ak_result ak__sv_number(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at) {
    double x;
    ak_result rc;
    if (ak_json_double(v, &x) != AK_OK) return AK_OK;
    if ((rc = ak__sv_bound(sv, s, x, 0, at)) != AK_OK) return rc;
    return ak__sv_bound(sv, s, x, 1, at);
}

/* Code points of valid UTF-8: the bytes that are not continuation bytes. */
AK_PRIVATE size_t ak__utf8_count(const char *s, size_t len) {
    size_t i, n = 0;
    for (i = 0; i < len; i++) n += (AK__U8(s[i]) & 0xC0) != 0x80;
    return n;
}

AK_PRIVATE ak_result ak__sv_string(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at) {
    if (!ak_json_is(v, AK_JSON_STRING)) return AK_OK;
    return ak__sv_counts(sv, s, "minLength", "maxLength", ak__utf8_count(v->u.str, v->len), "characters", at);
}

AK_PRIVATE int ak__is_schema(const ak_json *s) { return ak_json_is(s, AK_JSON_OBJECT) || ak_json_is(s, AK_JSON_BOOL); }

/* "items" as one schema for every element, or (tuple form) one per position followed by
   "additionalItems" for the rest. */
AK_PRIVATE ak_result ak__sv_array(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at,
                                  size_t depth) {
    const ak_json *items = ak_json_get(s, "items"), *more = ak_json_get(s, "additionalItems");
    const ak_json *tuple = ak_json_is(items, AK_JSON_ARRAY) ? items->u.first : NULL, *e;
    ak__jpath here;
    ak_result rc;
    if (!ak_json_is(v, AK_JSON_ARRAY)) return AK_OK;
    if ((rc = ak__sv_counts(sv, s, "minItems", "maxItems", v->len, "items", at)) != AK_OK) return rc;
    if (items && !ak__is_schema(items) && !ak_json_is(items, AK_JSON_ARRAY))
        return ak__bad_schema(sv, "items", "must be a schema or an array of schemas");
    if (!ak_json_is(items, AK_JSON_ARRAY)) more = items; /* one schema for all */
    if (more && !ak__is_schema(more)) return ak__bad_schema(sv, "additionalItems", "must be a schema");
    here.up = at, here.key = NULL, here.key_len = 0, here.index = 0;
    for (e = v->u.first; e; e = e->next, here.index++) {
        const ak_json *es = tuple ? tuple : more;
        if (tuple) tuple = tuple->next;
        if (es && (rc = ak__sv(sv, es, e, &here, depth + 1)) != AK_OK) return rc;
    }
    return AK_OK;
}

AK_PRIVATE ak_result ak__sv_required(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at) {
    const ak_json *req = ak_json_get(s, "required"), *r;
    if (!req) return AK_OK;
    if (!ak_json_is(req, AK_JSON_ARRAY)) return ak__bad_schema(sv, "required", "must be an array of names");
    for (r = req->u.first; r; r = r->next) {
        if (!ak_json_is(r, AK_JSON_STRING)) return ak__bad_schema(sv, "required", "must be an array of names");
        if (!ak_json_getn(v, r->u.str, r->len))
            return ak__sfail(sv, at, AK_ERR_SCHEMA, "missing required property '%.*s'", (int)AK__MIN(r->len, 80),
                             r->u.str);
    }
    return AK_OK;
}

/* properties, additionalProperties, required, minProperties, maxProperties */
AK_PRIVATE ak_result ak__sv_object(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at,
                                   size_t depth) {
    const ak_json *props = ak_json_get(s, "properties"), *more = ak_json_get(s, "additionalProperties"), *m;
    ak__jpath here;
    ak_result rc;
    if (!ak_json_is(v, AK_JSON_OBJECT)) return AK_OK;
    if ((rc = ak__sv_required(sv, s, v, at)) != AK_OK ||
        (rc = ak__sv_counts(sv, s, "minProperties", "maxProperties", v->len, "properties", at)) != AK_OK)
        return rc;
    if (props && !ak_json_is(props, AK_JSON_OBJECT)) return ak__bad_schema(sv, "properties", "must be an object");
    if (more && !ak__is_schema(more)) return ak__bad_schema(sv, "additionalProperties", "must be a schema");
    here.up = at, here.index = 0;
    for (m = v->u.first; m; m = m->next) {
        const ak_json *ps;
        here.key = m->key ? m->key : "", here.key_len = m->key_len;
        ps = ak_json_getn(props, here.key, here.key_len);
        if (!ps && ak_json_is(more, AK_JSON_BOOL) && !ak_json_bool(more, 1))
            return ak__sfail(sv, at, AK_ERR_SCHEMA, "property '%.*s' is not allowed", (int)AK__MIN(m->key_len, 80),
                             here.key);
        if (!ps) ps = more;
        if (ps && !ak__is_schema(ps)) return ak__bad_schema(sv, "properties", "must hold schemas");
        if (ps && (rc = ak__sv(sv, ps, m, &here, depth + 1)) != AK_OK) return rc;
    }
    return AK_OK;
}

/* Runs one branch of anyOf/oneOf/not quietly: only whether it matched matters. A broken
   schema or a limit is not a mismatch: it is run again loudly so its message is reported. */
AK_PRIVATE ak_result ak__sv_try(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at,
                                size_t depth, int *matched) {
    ak_error *err = sv->err;
    ak_result rc;
    sv->err = NULL;
    rc = ak__sv(sv, s, v, at, depth + 1);
    sv->err = err;
    *matched = rc == AK_OK;
    if (rc == AK_OK || rc == AK_ERR_SCHEMA) return AK_OK;
    return err ? ak__sv(sv, s, v, at, depth + 1) : rc;
}

/* The array of schemas under keyword in *out (NULL when absent). */
AK_PRIVATE ak_result ak__schema_list(ak__validator *sv, const ak_json *s, const char *keyword, const ak_json **out) {
    *out = ak_json_get(s, keyword);
    if (*out && (!ak_json_is(*out, AK_JSON_ARRAY) || (*out)->len == 0))
        return ak__bad_schema(sv, keyword, "must be a non-empty array of schemas");
    return AK_OK;
}

AK_PRIVATE ak_result ak__sv_combinators(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at,
                                        size_t depth) {
    const ak_json *all, *any, *one, *x, *not_s = ak_json_get(s, "not");
    ak_result rc;
    int matched, count;
    if ((rc = ak__schema_list(sv, s, "allOf", &all)) != AK_OK || (rc = ak__schema_list(sv, s, "anyOf", &any)) != AK_OK ||
        (rc = ak__schema_list(sv, s, "oneOf", &one)) != AK_OK)
        return rc;
    for (x = ak_json_first(all); x; x = x->next)
        if ((rc = ak__sv(sv, x, v, at, depth + 1)) != AK_OK) return rc;
    for (x = ak_json_first(any), matched = 0; x && !matched; x = x->next)
        if ((rc = ak__sv_try(sv, x, v, at, depth, &matched)) != AK_OK) return rc;
    if (any && !matched) return ak__sfail(sv, at, AK_ERR_SCHEMA, "must match at least one schema in anyOf");
    for (x = ak_json_first(one), count = 0; x && count < 2; x = x->next) {
        if ((rc = ak__sv_try(sv, x, v, at, depth, &matched)) != AK_OK) return rc;
        count += matched;
    }
    if (one && count != 1)
        return ak__sfail(sv, at, AK_ERR_SCHEMA, "must match exactly one schema in oneOf (%s matched)",
                         count ? "more than one" : "none");
    if (!not_s) return AK_OK;
    if ((rc = ak__sv_try(sv, not_s, v, at, depth, &matched)) != AK_OK) return rc;
    return matched ? ak__sfail(sv, at, AK_ERR_SCHEMA, "must not match the schema in not") : AK_OK;
}

/* "$ref": only local references, "#" or a JSON Pointer fragment such as
   "#/definitions/Address" or "#/$defs/Address" (no percent-decoding). */
AK_PRIVATE ak_result ak__sv_ref(ak__validator *sv, const ak_json *ref, const ak_json *v, const ak__jpath *at,
                                size_t depth) {
    ak_json *target;
    if (!ak_json_is(ref, AK_JSON_STRING) || ref->len == 0 || ref->u.str[0] != '#' ||
        ak_json_pointer(sv->root, ref->u.str + 1, ref->len - 1, &target, NULL) != AK_OK || !ak__is_schema(target))
        return sv->err ? ak_error_set(sv->err, AK_ERR_INVALID_ARGUMENT, "invalid schema: cannot resolve $ref '%.*s'",
                                      (int)AK__MIN(ak_json_len(ref), 120), ak_json_str_or(ref, ""))
                       : AK_ERR_INVALID_ARGUMENT;
    return ak__sv(sv, target, v, at, depth + 1);
}

AK_PRIVATE ak_result ak__sv(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at,
                            size_t depth) {
    const ak_json *ref, *type;
    ak_result rc;
    if (depth > AK_JSON_SCHEMA_MAX_DEPTH)
        return ak__sfail(sv, at, AK_ERR_LIMIT, "schema applied more than %d levels deep (a $ref loop?)",
                         (int)AK_JSON_SCHEMA_MAX_DEPTH);
    if (++sv->steps > AK_JSON_SCHEMA_MAX_STEPS)
        return ak__sfail(sv, at, AK_ERR_LIMIT, "validation needs more than %lu steps", (unsigned long)AK_JSON_SCHEMA_MAX_STEPS);
    if (ak_json_is(s, AK_JSON_BOOL))
        return ak_json_bool(s, 0) ? AK_OK : ak__sfail(sv, at, AK_ERR_SCHEMA, "no value is allowed here");
    if (!ak_json_is(s, AK_JSON_OBJECT))
        return sv->err ? ak_error_set(sv->err, AK_ERR_INVALID_ARGUMENT, "invalid schema: not an object or boolean")
                       : AK_ERR_INVALID_ARGUMENT;
    if ((ref = ak_json_get(s, "$ref")) != NULL && (rc = ak__sv_ref(sv, ref, v, at, depth)) != AK_OK) return rc;
    if ((type = ak_json_get(s, "type")) != NULL && (rc = ak__sv_type(sv, type, v, at)) != AK_OK) return rc;
    if ((rc = ak__sv_enum_const(sv, s, v, at)) != AK_OK || (rc = ak__sv_number(sv, s, v, at)) != AK_OK ||
        (rc = ak__sv_string(sv, s, v, at)) != AK_OK || (rc = ak__sv_array(sv, s, v, at, depth)) != AK_OK ||
        (rc = ak__sv_object(sv, s, v, at, depth)) != AK_OK)
        return rc;
    return ak__sv_combinators(sv, s, v, at, depth);
}

AKDEF ak_result ak_json_schema_validate(const ak_json *schema, const ak_json *value, ak_error *err) {
    ak__validator sv;
    if (!schema) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "NULL schema");
    sv.root = schema;
    sv.err = err;
    sv.steps = 0;
    return ak__sv(&sv, schema, value, NULL, 0);
}
/* ---- end src/json_schema.c ---- */
#endif /* src/json_schema.c */

/* ---- begin src/stream.c ---- */
/* >>stream implementation: SSE and NDJSON push parsers */


/* ---- shared by both parsers: line ends, cut lines, errors --------------------------------- */

#define AK__ONES UINT64_C(0x0101010101010101)
#define AK__HIGHS UINT64_C(0x8080808080808080)
/* Nonzero when a byte of w equals the byte repeated in rep (the classic zero-byte test on
   w ^ rep; exact as a yes/no answer). */
#define AK__HAS_BYTE(w, rep) ((((w) ^ (rep)) - AK__ONES) & ~((w) ^ (rep)) & AK__HIGHS)

/* Index of the first line end in s[i..n): LF, and CR too when cr is set; n if none. Event
   lines are mostly long runs of JSON, so eight bytes are tested at a time. */
AK_PRIVATE size_t ak__find_eol(const char *s, size_t i, size_t n, int cr) {
    const uint64_t lf = AK__ONES * '\n', crs = AK__ONES * (cr ? '\r' : '\n');
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        AK_MEMCPY(&w, s + i, 8);
        if (AK__HAS_BYTE(w, lf) | AK__HAS_BYTE(w, crs)) break;
    }
    for (; i < n; i++)
        if (s[i] == '\n' || (cr && s[i] == '\r')) break;
    return i;
}

AK_PRIVATE ak_result ak__stream_error(ak_error *err, ak_result rc, const char *who,
                                      const char *what, size_t at, size_t max) {
    if (rc != AK_ERR_LIMIT) return ak_error_set(err, rc, "%s: out of memory", who);
    ak_error_set(err, rc, "%s: %s at byte %zu is longer than the limit of %zu bytes", who, what,
                 at, max);
    if (err) err->offset = at;
    return rc;
}

/* A parser that failed or was stopped by its callback answers every later call so. */
AK_PRIVATE ak_result ak__stream_stopped(ak_error *err, ak_result rc, const char *who) {
    return ak_error_set(err, rc, "%s: the parser stopped earlier (%s)", who, ak_result_str(rc));
}

/* Keeps s[0..n), the start of a line cut by the end of a feed, in held; the line starts at
   stream offset at when nothing was held yet. Fails when the line outgrows max. */
AK_PRIVATE ak_result ak__hold(ak_buf *held, size_t *held_pos, size_t max, const char *s,
                              size_t n, size_t at) {
    if (!held->len) *held_pos = at;
    if (n > max || held->len > max - n) return AK_ERR_LIMIT;
    ak_buf_append(held, s, n);
    return held->err ? AK_ERR_OUT_OF_MEMORY : AK_OK;
}

/* The line ending with s[0..n): s itself when nothing is held (no copy), else the held
   start plus s. The caller clears held after using the line. */
AK_PRIVATE ak_result ak__join_line(ak_buf *held, size_t *held_pos, size_t max, const char *s,
                                   size_t n, size_t at, const char **line, size_t *line_len) {
    ak_result rc;
    if (!held->len) {
        *held_pos = at;
        *line = s, *line_len = n;
        return n > max ? AK_ERR_LIMIT : AK_OK;
    }
    rc = ak__hold(held, held_pos, max, s, n, at);
    *line = held->ptr, *line_len = held->len;
    return rc;
}

/* ---- SSE ---------------------------------------------------------------------------------- */

enum { AK__SSE_IGNORED, AK__SSE_DATA, AK__SSE_EVENT, AK__SSE_ID, AK__SSE_RETRY };

AKDEF void ak_sse_init(ak_sse_parser *p, const ak_allocator *alloc, ak_sse_cb cb, void *ud) {
    AK_MEMSET(p, 0, sizeof *p);
    p->max_event = AK_SSE_MAX_EVENT;
    p->retry = -1;
    p->cb = cb;
    p->ud = ud;
    ak_buf_init(&p->line, alloc);
    ak_buf_init(&p->data, alloc);
    ak_buf_init(&p->event, alloc);
    ak_buf_init(&p->id, alloc);
    ak_buf_init(&p->clean, alloc);
}

AKDEF void ak_sse_free(ak_sse_parser *p) {
    if (!p) return;
    ak_buf_free(&p->line);
    ak_buf_free(&p->data);
    ak_buf_free(&p->event);
    ak_buf_free(&p->id);
    ak_buf_free(&p->clean);
}

AK_PRIVATE size_t ak__sse_max(const ak_sse_parser *p) {
    return AK__DEF(p->max_event, AK_SSE_MAX_EVENT);
}

AK_PRIVATE ak_result ak__sse_oom(ak_error *err) {
    return ak__stream_error(err, AK_ERR_OUT_OF_MEMORY, "SSE", NULL, 0, 0);
}

AK_PRIVATE int ak__sse_field(const char *name, size_t len) {
    if (ak__eqn(name, len, "data")) return AK__SSE_DATA;
    if (ak__eqn(name, len, "event")) return AK__SSE_EVENT;
    if (ak__eqn(name, len, "id")) return AK__SSE_ID;
    if (ak__eqn(name, len, "retry")) return AK__SSE_RETRY;
    return AK__SSE_IGNORED; /* unknown fields, e.g. old llama.cpp "error:", are ignored */
}

/* Replaces b's text with the value, invalid UTF-8 replaced (as a browser decodes it). */
AK_PRIVATE ak_result ak__sse_set(ak_buf *b, const char *v, size_t n, ak_error *err) {
    ak_buf_clear(b);
    ak_utf8_sanitize(b, v, n);
    return b->err ? ak__sse_oom(err) : AK_OK;
}

AK_PRIVATE int ak__has_nul(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!s[i]) return 1;
    return 0;
}

/* "retry" sets the reconnection time when the value is all ASCII digits; anything else,
   including a number too big for int64, is ignored. */
AK_PRIVATE void ak__sse_retry(ak_sse_parser *p, const char *v, size_t n) {
    int64_t ms = 0;
    size_t i;
    if (!n) return;
    for (i = 0; i < n; i++) {
        int d = v[i] - '0';
        if (d < 0 || d > 9 || ms > (INT64_MAX - d) / 10) return;
        ms = ms * 10 + d;
    }
    p->retry = ms;
    p->retry_new = 1;
}

AK_PRIVATE ak_result ak__sse_data(ak_sse_parser *p, const char *v, size_t n, size_t at,
                                  ak_error *err) {
    ak_buf *b = &p->data;
    size_t max = ak__sse_max(p);
    /* b holds the earlier lines, each with its "\n"; the last one's "\n" is not delivered */
    if (n > max || b->len > max - n)
        return ak__stream_error(err, AK_ERR_LIMIT, "SSE", "event data up to the line", at, max);
    if (ak_buf_reserve(b, n + 1) != AK_OK) return ak__sse_oom(err);
    if (n) AK_MEMCPY(b->ptr + b->len, v, n);
    b->len += n;
    b->ptr[b->len++] = '\n';
    b->ptr[b->len] = 0;
    return AK_OK;
}

/* An empty line: hands the assembled event to the callback, then starts the next one.
   No data line, no event (only the type is reset). */
AK_PRIVATE ak_result ak__sse_dispatch(ak_sse_parser *p, ak_error *err) {
    ak_sse_event ev;
    ak_result rc;
    if (!p->data.len) {
        ak_buf_clear(&p->event);
        return AK_OK;
    }
    p->data.ptr[--p->data.len] = 0;
    ev.data = p->data.ptr;
    ev.data_len = p->data.len;
    /* Validated per event, not per feed: a feed may end inside a UTF-8 sequence. */
    if (!ak_utf8_valid(ev.data, ev.data_len)) {
        ak_buf_clear(&p->clean);
        ak_utf8_sanitize(&p->clean, ev.data, ev.data_len);
        if (p->clean.err) return ak__sse_oom(err);
        ev.data = p->clean.ptr;
        ev.data_len = p->clean.len;
    }
    ev.event = p->event.len ? p->event.ptr : "message";
    ev.event_len = p->event.len ? p->event.len : 7;
    ev.id = p->id.len ? p->id.ptr : "";
    ev.id_len = p->id.len;
    ev.retry = p->retry_new ? p->retry : -1;
    p->retry_new = 0;
    rc = p->cb(p->ud, &ev);
    ak_buf_clear(&p->data);
    ak_buf_clear(&p->event);
    return rc;
}

/* One complete line (without its end), starting at stream offset at. */
AK_PRIVATE ak_result ak__sse_line(ak_sse_parser *p, const char *s, size_t n, size_t at,
                                  ak_error *err) {
    size_t name_len = 0;
    const char *v;
    size_t vn;
    if (!n) return ak__sse_dispatch(p, err);
    if (s[0] == ':') return AK_OK; /* a comment: keep-alives like ": ping" */
    while (name_len < n && s[name_len] != ':') name_len++;
    v = s + name_len, vn = n - name_len; /* no colon: the whole line names a field, value "" */
    if (vn) v++, vn--;
    if (vn && v[0] == ' ') v++, vn--;
    switch (ak__sse_field(s, name_len)) {
    case AK__SSE_DATA: return ak__sse_data(p, v, vn, at, err);
    case AK__SSE_EVENT: return ak__sse_set(&p->event, v, vn, err);
    case AK__SSE_ID: return ak__has_nul(v, vn) ? AK_OK : ak__sse_set(&p->id, v, vn, err);
    case AK__SSE_RETRY: ak__sse_retry(p, v, vn); return AK_OK;
    default: return AK_OK;
    }
}

AK_PRIVATE ak_result ak__sse_hold(ak_sse_parser *p, const char *s, size_t n, size_t at,
                                  ak_error *err) {
    ak_result rc = ak__hold(&p->line, &p->line_pos, ak__sse_max(p), s, n, at);
    if (rc == AK_OK) return AK_OK;
    return ak__stream_error(err, rc, "SSE", "line", p->line_pos, ak__sse_max(p));
}

AK_PRIVATE ak_result ak__sse_end_line(ak_sse_parser *p, const char *s, size_t n, size_t at,
                                      ak_error *err) {
    const char *line;
    size_t len;
    ak_result rc = ak__join_line(&p->line, &p->line_pos, ak__sse_max(p), s, n, at, &line, &len);
    if (rc != AK_OK)
        return ak__stream_error(err, rc, "SSE", "line", p->line_pos, ak__sse_max(p));
    rc = ak__sse_line(p, line, len, p->line_pos, err);
    ak_buf_clear(&p->line);
    return rc;
}

/* Strips a UTF-8 BOM at the very start of the stream, which may arrive a byte per feed.
   Returns how many bytes of s it took. A start that turns out not to be a BOM is kept as
   the beginning of the first line. */
AK_PRIVATE size_t ak__sse_bom(ak_sse_parser *p, const char *s, size_t n, ak_result *rc,
                              ak_error *err) {
    static const char bom[] = "\xEF\xBB\xBF";
    size_t i = 0;
    while (p->bom < 3 && i < n) {
        if (s[i] == bom[p->bom]) {
            p->bom++, i++;
            continue;
        }
        if (p->bom) *rc = ak__sse_hold(p, bom, p->bom, 0, err);
        p->bom = 3;
    }
    return i;
}

/* What the fast path below may append to the held line: nothing while a CR may be followed
   by its LF, a BOM may be in progress or the parser has stopped; else what fits both the
   line's memory (and its NUL) and the size limit. Set at the end of every slow-path feed. */
AK_PRIVATE size_t ak__sse_room(const ak_sse_parser *p) {
    const ak_buf *b = &p->line;
    size_t max = ak__sse_max(p), room;
    if (p->err || p->after_cr || p->bom != 3 || !b->cap || b->len >= max) return 0;
    room = b->cap - b->len - 1;
    return max - b->len < room ? max - b->len : room;
}

/* A slow link delivers a few bytes per read, mostly in the middle of a line. This handles
   such a feed in a few instructions when it fits the room left and ends no line (a line's
   first bytes too); returns 0 (having changed nothing) for anything else. */
AK_PRIVATE int ak__sse_extend(ak_sse_parser *p, const char *s, size_t n) {
    ak_buf *b = &p->line;
    size_t len = b->len, i;
    char *dst;
    if (!n || n > 15 || n > p->room) return 0;
    for (i = 0; i < n; i++)
        if (s[i] == '\n' || s[i] == '\r') return 0;
    dst = b->ptr + len;
    for (i = 0; i < n; i++) dst[i] = s[i];
    dst[n] = 0;
    b->len = len + n;
    p->room -= n;
    p->pos += n;
    return 1;
}

/* The general path, kept out of ak_sse_feed so the fast path above does not pay for the
   register saves this loop needs (it makes byte-at-a-time feeding half again as fast). */
AK__NOINLINE AK_PRIVATE ak_result ak__sse_feed_lines(ak_sse_parser *p, const char *data,
                                                     size_t len, ak_error *err) {
    ak_result rc = AK_OK;
    size_t i = ak__sse_bom(p, data, len, &rc, err);
    while (rc == AK_OK && i < len) {
        size_t end;
        if (p->after_cr) { /* the LF of a CRLF whose CR ended the previous line */
            p->after_cr = 0;
            if (data[i] == '\n' && ++i == len) break;
        }
        end = ak__find_eol(data, i, len, 1);
        if (end == len) {
            rc = ak__sse_hold(p, data + i, len - i, p->pos + i, err);
            break;
        }
        rc = ak__sse_end_line(p, data + i, end - i, p->pos + i, err);
        p->after_cr = data[end] == '\r';
        i = end + 1;
    }
    p->pos += len;
    p->err = rc;
    p->room = ak__sse_room(p);
    if (!p->line.len) p->line_pos = p->pos; /* where a line the fast path starts begins */
    return rc;
}

AKDEF ak_result ak_sse_feed(ak_sse_parser *p, const char *data, size_t len, ak_error *err) {
    if (p && data && ak__sse_extend(p, data, len)) return AK_OK; /* room is 0 until checked below */
    if (!p || !p->cb || (!data && len))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_sse_feed: NULL parser, callback or data");
    if (p->err) return ak__stream_stopped(err, p->err, "SSE");
    return ak__sse_feed_lines(p, data, len, err);
}

AKDEF ak_result ak_sse_finish(ak_sse_parser *p, ak_error *err) {
    if (!p) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_sse_finish: NULL parser");
    if (p->err) return ak__stream_stopped(err, p->err, "SSE");
    ak_buf_clear(&p->line);
    ak_buf_clear(&p->data);
    ak_buf_clear(&p->event);
    p->pos = 0;
    p->bom = 0;
    p->after_cr = 0;
    p->room = 0;
    return AK_OK;
}

/* ---- NDJSON ------------------------------------------------------------------------------- */

AKDEF void ak_ndjson_init(ak_ndjson_parser *p, const ak_allocator *alloc, ak_ndjson_cb cb,
                          void *ud) {
    AK_MEMSET(p, 0, sizeof *p);
    p->max_line = AK_NDJSON_MAX_LINE;
    p->cb = cb;
    p->ud = ud;
    ak_buf_init(&p->line, alloc);
}

AKDEF void ak_ndjson_free(ak_ndjson_parser *p) {
    if (p) ak_buf_free(&p->line);
}

AK_PRIVATE size_t ak__ndjson_max(const ak_ndjson_parser *p) {
    return AK__DEF(p->max_line, AK_NDJSON_MAX_LINE);
}

AK_PRIVATE int ak__blank(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

AK_PRIVATE ak_result ak__ndjson_line(ak_ndjson_parser *p, const char *s, size_t n) {
    if (n && s[n - 1] == '\r') n--;
    return ak__blank(s, n) ? AK_OK : p->cb(p->ud, s, n);
}

AK_PRIVATE ak_result ak__ndjson_fail(ak_ndjson_parser *p, ak_result rc, ak_error *err) {
    return ak__stream_error(err, rc, "NDJSON", "line", p->line_pos, ak__ndjson_max(p));
}

AK_PRIVATE ak_result ak__ndjson_end_line(ak_ndjson_parser *p, const char *s, size_t n,
                                         size_t at, ak_error *err) {
    const char *line;
    size_t len;
    ak_result rc = ak__join_line(&p->line, &p->line_pos, ak__ndjson_max(p), s, n, at, &line, &len);
    if (rc != AK_OK) return ak__ndjson_fail(p, rc, err);
    rc = ak__ndjson_line(p, line, len);
    ak_buf_clear(&p->line);
    return rc;
}

AKDEF ak_result ak_ndjson_feed(ak_ndjson_parser *p, const char *data, size_t len, ak_error *err) {
    ak_result rc = AK_OK;
    size_t i = 0;
    if (!p || !p->cb || (!data && len))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_ndjson_feed: NULL parser, callback or data");
    if (p->err) return ak__stream_stopped(err, p->err, "NDJSON");
    while (rc == AK_OK && i < len) {
        size_t end = ak__find_eol(data, i, len, 0);
        if (end == len) {
            rc = ak__hold(&p->line, &p->line_pos, ak__ndjson_max(p), data + i, len - i, p->pos + i);
            if (rc != AK_OK) rc = ak__ndjson_fail(p, rc, err);
            break;
        }
        rc = ak__ndjson_end_line(p, data + i, end - i, p->pos + i, err);
        i = end + 1;
    }
    p->pos += len;
    p->err = rc;
    return rc;
}

AKDEF ak_result ak_ndjson_finish(ak_ndjson_parser *p, ak_error *err) {
    ak_result rc;
    if (!p) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_ndjson_finish: NULL parser");
    if (p->err) return ak__stream_stopped(err, p->err, "NDJSON");
    rc = ak__ndjson_line(p, p->line.ptr, p->line.len);
    ak_buf_clear(&p->line);
    p->pos = 0;
    p->err = rc;
    return rc;
}
/* ---- end src/stream.c ---- */

/* ---- begin src/http.c ---- */
/* >>http.c: HTTP/1.1 framing: URLs, request heads, the response and request parsers, the
   response framer. Pure byte processing: no sockets, freestanding-clean. */


/* Blank lines a server skips before a request line (RFC 9112 2.2 asks for at least one). */
#define AK__HTTP_MAX_LEADING_BLANKS 8

enum { AK__BODY_NONE, AK__BODY_LENGTH, AK__BODY_CHUNKED, AK__BODY_CLOSE };
enum { AK__PARSE_HEAD, AK__PARSE_BODY, AK__PARSE_DONE, AK__PARSE_ERROR };

/* ---- character classes and small helpers ------------------------------------------------ */

AK_PRIVATE unsigned char ak__ascii_lower(unsigned char c) {
    return (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

/* a[0..alen) equals the NUL-terminated b, ignoring ASCII case */
AK_PRIVATE int ak__ieqn(const char *a, size_t alen, const char *b) {
    size_t i;
    for (i = 0; i < alen; i++)
        if (!b[i] || ak__ascii_lower(AK__U8(a[i])) != ak__ascii_lower(AK__U8(b[i]))) return 0;
    return b[alen] == 0;
}

/* RFC 9110 tchar: the characters of methods, header names and transfer codings. */
AK_PRIVATE int ak__http_tchar(unsigned char c) {
    static const char extra[] = "!#$%&'*+-.^_`|~";
    const char *e;
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    for (e = extra; *e; e++)
        if (AK__U8(*e) == c) return 1;
    return 0;
}

AK_PRIVATE int ak__http_token(const char *s, size_t n) {
    size_t i;
    if (!n) return 0;
    for (i = 0; i < n; i++)
        if (!ak__http_tchar(AK__U8(s[i]))) return 0;
    return 1;
}

/* A field value may hold visible ASCII, spaces, tabs and bytes >= 0x80 (obs-text); never
   CR, LF, NUL or other control bytes, which is what keeps header injection out. */
AK_PRIVATE int ak__http_value_ok(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = AK__U8(s[i]);
        if ((c < 0x20 && c != '\t') || c == 0x7F) return 0;
    }
    return 1;
}

AK_PRIVATE int ak__hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = ak__ascii_lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

AK_PRIVATE int ak__http_ows(char c) { return c == ' ' || c == '\t'; }

/* Parses a decimal uint64 of n > 0 digits; 0 on junk or overflow. */
AK_PRIVATE int ak__parse_u64(const char *s, size_t n, uint64_t *out) {
    uint64_t v = 0;
    size_t i;
    if (!n) return 0;
    for (i = 0; i < n; i++) {
        unsigned d = (unsigned)(AK__U8(s[i]) - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

/* Calls fn on each comma-separated element of value[0..n), trimmed of spaces; stops at the
   first nonzero return and returns it. Empty elements are skipped (RFC 9110 5.6.1). */
AK_PRIVATE int ak__http_each_element(const char *v, size_t n,
                                     int (*fn)(void *ud, const char *e, size_t len), void *ud) {
    size_t i = 0;
    while (i < n) {
        size_t s, e;
        int r;
        while (i < n && (ak__http_ows(v[i]) || v[i] == ',')) i++;
        s = i;
        while (i < n && v[i] != ',') i++;
        e = i;
        while (e > s && ak__http_ows(v[e - 1])) e--;
        if (e > s && (r = fn(ud, v + s, e - s)) != 0) return r;
    }
    return 0;
}

AK_PRIVATE int ak__http_token_is(void *ud, const char *e, size_t len) {
    return ak__ieqn(e, len, (const char *)ud);
}

AK_PRIVATE void ak__http_limits_init(ak_http_limits *dst, const ak_http_limits *src) {
    AK_MEMSET(dst, 0, sizeof *dst);
    if (src) *dst = *src;
    dst->max_header_bytes = AK__DEF(dst->max_header_bytes, (size_t)AK_HTTP_MAX_HEADER_BYTES);
    dst->max_headers = AK__DEF(dst->max_headers, (size_t)AK_HTTP_MAX_HEADERS);
    dst->max_target = AK__DEF(dst->max_target, (size_t)AK_HTTP_MAX_TARGET);
    dst->max_body = AK__DEF(dst->max_body, (size_t)AK_HTTP_MAX_BODY);
}

/* ---- public helpers ---------------------------------------------------------------------- */

/* The phrases are one array in this function (not a table of pointers to literals), so a
   program that never calls it does not keep them: linkers keep merged literals whole. */
AKDEF const char *ak_http_status_reason(int status) {
    static const uint16_t codes[] = {
        100, 101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404,
        405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 417, 422, 429, 431, 499, 500, 501,
        502, 503, 504, 505
    };
    static const char phrases[] =
        "Continue\0Switching Protocols\0OK\0Created\0Accepted\0No Content\0Partial Content\0"
        "Moved Permanently\0Found\0See Other\0Not Modified\0Temporary Redirect\0"
        "Permanent Redirect\0Bad Request\0Unauthorized\0Forbidden\0Not Found\0"
        "Method Not Allowed\0Not Acceptable\0Request Timeout\0Conflict\0Gone\0"
        "Length Required\0Precondition Failed\0Content Too Large\0URI Too Long\0"
        "Unsupported Media Type\0Expectation Failed\0Unprocessable Content\0"
        "Too Many Requests\0Request Header Fields Too Large\0Client Closed Request\0"
        "Internal Server Error\0Not Implemented\0Bad Gateway\0Service Unavailable\0"
        "Gateway Timeout\0HTTP Version Not Supported\0";
    const char *p = phrases;
    size_t i;
    for (i = 0; i < AK__COUNTOF(codes); i++, p += ak__strlen(p) + 1)
        if (codes[i] == status) return p;
    return "";
}

AKDEF const char *ak_http_header_get(const ak_header *headers, size_t count, const char *name) {
    size_t i, n;
    if (!headers || !name) return NULL;
    n = ak__strlen(name);
    for (i = 0; i < count; i++)
        if (headers[i].name && ak__ieqn(name, n, headers[i].name)) return headers[i].value;
    return NULL;
}

AKDEF int ak_http_has_token(const char *value, const char *token) {
    if (!value || !token) return 0;
    return ak__http_each_element(value, ak__strlen(value), ak__http_token_is,
                                 AK__UNCONST(void *, token));
}

AKDEF const char *ak_http_server_request_header(const ak_http_server_request *req,
                                                const char *name) {
    return req ? ak_http_header_get(req->headers, req->header_count, name) : NULL;
}

/* ---- URLs ---------------------------------------------------------------------------------- */

/* Path, query and fragment: printable ASCII only (no spaces, controls or raw UTF-8, which
   would let a caller smuggle bytes into the request line), and every '%' a valid escape. */
AK_PRIVATE ak_result ak__url_chars_ok(const char *s, size_t n, const char *part, ak_error *err) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = AK__U8(s[i]);
        if (c <= 0x20 || c >= 0x7F)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT,
                                "URL %s has a byte 0x%x that must be percent-encoded", part,
                                (unsigned)c);
        if (c == '%' && (i + 2 >= n || ak__hexval(AK__U8(s[i + 1])) < 0 ||
                         ak__hexval(AK__U8(s[i + 2])) < 0))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL %s has a bad %%-escape", part);
    }
    return AK_OK;
}

AK_PRIVATE ak_result ak__url_host(const char *s, size_t n, ak_url *u, ak_error *err) {
    size_t i;
    if (!n) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL has no host");
    if (n > 253) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL host is too long");
    for (i = 0; i < n; i++) {
        unsigned char c = AK__U8(s[i]);
        int ok = u->ipv6 ? (ak__hexval(c) >= 0 || c == ':' || c == '.')
                         : ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                            (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_');
        if (!ok)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL host has an invalid character '%c'",
                                c >= 0x21 && c < 0x7F ? (char)c : '?');
    }
    u->host = s;
    u->host_len = n;
    return AK_OK;
}

/* authority = host [":" port], host = reg-name | IPv4 | "[" IPv6 "]" */
AK_PRIVATE ak_result ak__url_authority(const char *s, size_t n, ak_url *u, ak_error *err) {
    size_t i, host_end;
    uint64_t port = 0;
    ak_result rc;
    for (i = 0; i < n; i++)
        if (s[i] == '@')
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT,
                                "URL has user info (user:password@); pass credentials in headers");
    if (n && s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++) {
        }
        if (i == n) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL has an unterminated [IPv6] host");
        u->ipv6 = 1;
        if ((rc = ak__url_host(s + 1, i - 1, u, err)) != AK_OK) return rc;
        for (host_end = 1; host_end < i && s[host_end] != ':'; host_end++) {
        }
        if (host_end == i) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL [IPv6] host is not an IPv6 address");
        host_end = i + 1;
        if (host_end < n && s[host_end] != ':')
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL has junk after the [IPv6] host");
    } else {
        for (host_end = 0; host_end < n && s[host_end] != ':'; host_end++) {
        }
        if ((rc = ak__url_host(s, host_end, u, err)) != AK_OK) return rc;
    }
    if (host_end < n) { /* ":" port */
        const char *p = s + host_end + 1;
        size_t plen = n - host_end - 1;
        if (!plen || plen > 5 || !ak__parse_u64(p, plen, &port) || port == 0 || port > 65535)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL port must be 1..65535");
        u->port = (uint16_t)port;
        u->port_explicit = 1;
    }
    return AK_OK;
}

AKDEF ak_result ak_url_parse(const char *url, size_t len, ak_url *out, ak_error *err) {
    const char *p, *end, *auth;
    ak_result rc;
    AK_MEMSET(out, 0, sizeof *out);
    if (!url) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL is NULL");
    end = url + len;
    if (len >= 8 && ak__ieqn(url, 8, "https://")) out->https = 1, p = url + 8;
    else if (len >= 7 && ak__ieqn(url, 7, "http://")) p = url + 7;
    else return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL must start with http:// or https://");
    out->port = (uint16_t)(out->https ? 443 : 80);
    for (auth = p; p < end && *p != '/' && *p != '?' && *p != '#'; p++) {
    }
    if ((rc = ak__url_chars_ok(auth, (size_t)(p - auth), "authority", err)) != AK_OK) return rc;
    if ((rc = ak__url_authority(auth, (size_t)(p - auth), out, err)) != AK_OK) return rc;
    if ((rc = ak__url_chars_ok(p, (size_t)(end - p), "path", err)) != AK_OK) return rc;
    out->path = p;
    while (p < end && *p != '?' && *p != '#') p++;
    out->path_len = (size_t)(p - out->path);
    if (p < end && *p == '?') {
        out->query = ++p;
        while (p < end && *p != '#') p++;
        out->query_len = (size_t)(p - out->query);
    }
    return AK_OK;
}

/* ---- request head (client) ------------------------------------------------------------------ */

AK_PRIVATE ak_result ak__http_check_fields(const ak_header *h, size_t n, int *has_host,
                                           int *has_connection, ak_error *err) {
    size_t i;
    *has_host = *has_connection = 0;
    if (n && !h) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "headers is NULL");
    for (i = 0; i < n; i++) {
        size_t nlen;
        if (!h[i].name || !h[i].value)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "header %zu has a NULL name or value", i);
        nlen = ak__strlen(h[i].name);
        if (!ak__http_token(h[i].name, nlen))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "header name \"%s\" is not a token", h[i].name);
        if (!ak__http_value_ok(h[i].value, ak__strlen(h[i].value)))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT,
                                "header %s has a control character (CR, LF, NUL...) in its value",
                                h[i].name);
        if (ak__ieqn(h[i].name, nlen, "content-length") || ak__ieqn(h[i].name, nlen, "transfer-encoding"))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "header %s is set by the HTTP layer",
                                h[i].name);
        if (ak__ieqn(h[i].name, nlen, "host")) *has_host = 1;
        if (ak__ieqn(h[i].name, nlen, "connection")) *has_connection = 1;
    }
    return AK_OK;
}

AK_PRIVATE void ak__http_put_headers(ak_buf *out, const ak_header *h, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        ak_buf_puts(out, h[i].name);
        ak_buf_append(out, ": ", 2);
        ak_buf_puts(out, h[i].value);
        ak_buf_append(out, "\r\n", 2);
    }
}

AK_PRIVATE int ak__http_method_has_body(const char *m) {
    return ak__streq(m, "POST") || ak__streq(m, "PUT") || ak__streq(m, "PATCH");
}

AKDEF ak_result ak_http_write_request_head(ak_buf *out, const ak_http_request *req,
                                           const ak_url *url, int close_connection,
                                           ak_error *err) {
    int has_host, has_conn;
    size_t mark = out->len;
    ak_result rc;
    if (!req || !url || !req->method || !ak__http_token(req->method, ak__strlen(req->method)))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "request method must be a token");
    if (req->body_len && !req->body)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "request body is NULL");
    rc = ak__http_check_fields(req->headers, req->header_count, &has_host, &has_conn, err);
    if (rc != AK_OK) return rc;
    ak_buf_puts(out, req->method);
    ak_buf_putc(out, ' ');
    if (url->path_len) ak_buf_append(out, url->path, url->path_len);
    else ak_buf_putc(out, '/');
    if (url->query) {
        ak_buf_putc(out, '?');
        ak_buf_append(out, url->query, url->query_len);
    }
    ak_buf_append(out, " HTTP/1.1\r\n", 11);
    if (!has_host) {
        ak_buf_append(out, "Host: ", 6);
        if (url->ipv6) ak_buf_putc(out, '[');
        ak_buf_append(out, url->host, url->host_len);
        if (url->ipv6) ak_buf_putc(out, ']');
        if (url->port != (url->https ? 443 : 80)) ak_buf_printf(out, ":%u", (unsigned)url->port);
        ak_buf_append(out, "\r\n", 2);
    }
    ak__http_put_headers(out, req->headers, req->header_count);
    if (req->body_len || ak__http_method_has_body(req->method))
        ak_buf_printf(out, "Content-Length: %zu\r\n", req->body_len);
    if (close_connection && !has_conn) ak_buf_puts(out, "Connection: close\r\n");
    ak_buf_append(out, "\r\n", 2);
    if (out->err) {
        rc = out->err;
        out->len = mark;
        if (out->ptr) out->ptr[mark] = 0;
        return ak_error_set(err, rc, "cannot build the request head: %s", ak_result_str(rc));
    }
    return AK_OK;
}


/* ---- collecting a head ---------------------------------------------------------------------- */

/* Why a head was refused (ak_http_head_state.why). */
enum { AK__HEAD_TOO_BIG = 1, AK__HEAD_LINE1_TOO_BIG, AK__HEAD_TOO_MANY_LINES, AK__HEAD_BLANK_START,
       AK__HEAD_NOT_HTTP };

/* Which start line a head begins with. */
enum { AK__START_REQUEST, AK__START_RESPONSE };

/* Checks bytes of the start line as they arrive, `at` bytes into it, so that something that
   is not HTTP (a TLS handshake on a plain port, binary junk) is refused at once instead of
   after a timeout waiting for a line end that never comes. A request line is printable
   ASCII; a status line starts with "HTTP/". */
AK_PRIVATE int ak__start_line_ok(int kind, const char *seg, size_t n, size_t at) {
    static const char version[] = "HTTP/";
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = AK__U8(seg[i]);
        if (kind == AK__START_RESPONSE) {
            if (at + i >= 5) break;
            if (c != AK__U8(version[at + i])) return 0;
        } else if ((c < 0x20 && c != '\r') || c >= 0x7F) {
            return 0;
        }
    }
    return 1;
}

/* A line of the head ended: keep it, finish the head (a blank line), or drop a blank line
   that came before the start line. */
AK_PRIVATE ak_result ak__head_line_end(ak_http_head_state *s, ak_buf *head, size_t max_lines,
                                       int kind) {
    size_t n = s->line_bytes;
    int blank = n == 0 || (n == 1 && head->ptr[head->len - 1] == '\r');
    s->line_bytes = 0;
    if (blank && s->lines == 0) {
        head->len -= n;
        if (head->ptr) head->ptr[head->len] = 0;
        if (kind == AK__START_REQUEST && ++s->skipped <= AK__HTTP_MAX_LEADING_BLANKS) return AK_PENDING;
        s->why = AK__HEAD_BLANK_START;
        return AK_ERR_HTTP;
    }
    ak_buf_putc(head, '\n');
    if (head->err) return head->err;
    if (blank) return AK_OK;
    if (++s->lines > max_lines + 1) {
        s->why = AK__HEAD_TOO_MANY_LINES;
        return AK_ERR_LIMIT;
    }
    return AK_PENDING;
}

/* Appends data to the head until the blank line that ends it; bare LF ends lines as well as
   CRLF. AK_OK: the head is complete and *used bytes were taken (the rest is body);
   AK_PENDING: all taken; AK_ERR_LIMIT / AK_ERR_HTTP with s->why set; AK_ERR_OUT_OF_MEMORY.
   Every byte is looked at once, however the input is split. */
AK_PRIVATE ak_result ak__head_feed(ak_http_head_state *s, ak_buf *head, const ak_http_limits *lim,
                                   int kind, const char *data, size_t len, size_t *used) {
    size_t i = 0;
    while (i < len) {
        size_t j = i, room = lim->max_header_bytes > head->len ? lim->max_header_bytes - head->len : 0;
        ak_result rc;
        while (j < len && data[j] != '\n') j++;
        /* Only the bytes within the limit are judged, so the verdict is the same however
           the input was split. */
        if (!s->lines && !ak__start_line_ok(kind, data + i, AK__MIN(j - i, room), s->line_bytes)) {
            s->why = AK__HEAD_NOT_HTTP;
            *used = i;
            return AK_ERR_HTTP;
        }
        if ((j - i) + (j < len) > room) {
            s->why = s->lines ? AK__HEAD_TOO_BIG : AK__HEAD_LINE1_TOO_BIG;
            *used = i;
            return AK_ERR_LIMIT;
        }
        ak_buf_append(head, data + i, j - i);
        s->line_bytes += j - i;
        if (j == len) break;
        rc = head->err ? head->err : ak__head_line_end(s, head, lim->max_headers, kind);
        i = j + 1;
        if (rc != AK_PENDING) {
            *used = i;
            return rc;
        }
    }
    *used = len;
    return head->err ? head->err : AK_PENDING;
}

/* Splits the next line off a complete head (which ends with "\n"): NUL-terminates it in
   place, without its CR LF. Returns 0 at the blank line that ends the head. */
AK_PRIVATE int ak__head_next_line(char *head, size_t *pos, char **line, size_t *len) {
    char *s = head + *pos, *e = s;
    while (*e != '\n') e++;
    *pos += (size_t)(e - s) + 1;
    if (e > s && e[-1] == '\r') e--;
    *e = 0;
    *line = s;
    *len = (size_t)(e - s);
    return *len != 0;
}

/* name ":" OWS value OWS, NUL-terminating name and value in place. */
AK_PRIVATE ak_result ak__http_split_field(char *line, size_t n, ak_header *out, size_t *name_len,
                                          size_t *value_len, ak_error *err) {
    size_t i = 0, vs, ve;
    if (ak__http_ows(line[0]))
        return ak_error_set(err, AK_ERR_HTTP, "obsolete header line folding is not supported");
    while (i < n && ak__http_tchar(AK__U8(line[i]))) i++;
    if (i == 0 || i == n || line[i] != ':')
        return ak_error_set(err, AK_ERR_HTTP, "malformed header line (name, ':' and value expected)");
    vs = i + 1;
    while (vs < n && ak__http_ows(line[vs])) vs++;
    ve = n;
    while (ve > vs && ak__http_ows(line[ve - 1])) ve--;
    if (!ak__http_value_ok(line + vs, ve - vs))
        return ak_error_set(err, AK_ERR_HTTP, "header %.*s has a control character in its value",
                            (int)i, line);
    line[i] = 0;
    line[ve] = 0;
    out->name = line;
    out->value = line + vs;
    *name_len = i;
    *value_len = ve - vs;
    return AK_OK;
}

/* What the framing-relevant headers of a message say. */
typedef struct ak__http_fields {
    int has_length, te_seen, te_chunked_last, te_chunked_count, te_other;
    int conn_close, conn_keep_alive, host_count, expect_continue, has_connection;
    uint64_t length;
} ak__http_fields;

AK_PRIVATE int ak__http_te_element(void *ud, const char *e, size_t len) {
    ak__http_fields *f = (ak__http_fields *)ud;
    int chunked = ak__ieqn(e, len, "chunked");
    f->te_seen = 1;
    f->te_chunked_count += chunked;
    f->te_other |= !chunked;
    f->te_chunked_last = chunked;
    return 0;
}

AK_PRIVATE int ak__http_conn_element(void *ud, const char *e, size_t len) {
    ak__http_fields *f = (ak__http_fields *)ud;
    f->conn_close |= ak__ieqn(e, len, "close");
    f->conn_keep_alive |= ak__ieqn(e, len, "keep-alive");
    return 0;
}

/* Content-Length: one number, or a list of identical numbers (RFC 9110 8.6). */
AK_PRIVATE ak_result ak__http_content_length(ak__http_fields *f, const char *v, size_t n,
                                             ak_error *err) {
    size_t i = 0;
    int seen = 0;
    while (i < n) {
        size_t s;
        uint64_t x;
        while (i < n && (ak__http_ows(v[i]) || v[i] == ',')) i++;
        if (i == n) break;
        for (s = i; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
        }
        if (!ak__parse_u64(v + s, i - s, &x) || (i < n && !ak__http_ows(v[i]) && v[i] != ','))
            return ak_error_set(err, AK_ERR_HTTP, "invalid Content-Length \"%.*s\"",
                                (int)AK__MIN(n, 40), v);
        if (f->has_length && x != f->length)
            return ak_error_set(err, AK_ERR_HTTP, "conflicting Content-Length values");
        f->has_length = seen = 1;
        f->length = x;
    }
    if (!seen) return ak_error_set(err, AK_ERR_HTTP, "empty Content-Length");
    return AK_OK;
}

AK_PRIVATE ak_result ak__http_note_field(ak__http_fields *f, const ak_header *h, size_t nlen,
                                         size_t vlen, ak_error *err) {
    if (ak__ieqn(h->name, nlen, "content-length"))
        return ak__http_content_length(f, h->value, vlen, err);
    if (ak__ieqn(h->name, nlen, "transfer-encoding")) {
        ak__http_each_element(h->value, vlen, ak__http_te_element, f);
        if (!f->te_seen) return ak_error_set(err, AK_ERR_HTTP, "empty Transfer-Encoding");
    } else if (ak__ieqn(h->name, nlen, "connection")) {
        f->has_connection = 1;
        ak__http_each_element(h->value, vlen, ak__http_conn_element, f);
    } else if (ak__ieqn(h->name, nlen, "host")) {
        f->host_count++;
    } else if (ak__ieqn(h->name, nlen, "expect")) {
        f->expect_continue = ak__ieqn(h->value, vlen, "100-continue");
    }
    return AK_OK;
}

/* ---- body decoding (both parsers) --------------------------------------------------------- */

enum {
    AK__CK_SIZE, AK__CK_SIZE_WS, AK__CK_EXT, AK__CK_SIZE_LF, AK__CK_DATA, AK__CK_DATA_CR,
    AK__CK_DATA_LF, AK__CK_TRAILER_START, AK__CK_TRAILER, AK__CK_END_LF
};

/* Where decoded body bytes go; an error return stops the decoder with that error. */
typedef ak_result (*ak__body_emit)(void *ud, const char *data, size_t len);

/* After the hex digits of a chunk size: optional whitespace, extensions, CRLF. */
AK_PRIVATE ak_result ak__chunk_size_end(ak_http_body_state *b, unsigned char c, ak_error *err) {
    b->chunk_state = AK__CK_SIZE_WS;
    if (ak__http_ows((char)c)) return AK_PENDING;
    if (c == ';') b->chunk_state = AK__CK_EXT;
    else if (c == '\r') b->chunk_state = AK__CK_SIZE_LF;
    else return ak_error_set(err, AK_ERR_HTTP, "malformed chunk size line");
    return AK_PENDING;
}

/* Trailer lines are checked against the header byte limit and dropped. */
AK_PRIVATE ak_result ak__chunk_trailer_byte(ak_http_body_state *b, unsigned char c,
                                            size_t max_trailer, ak_error *err) {
    int at_start = b->chunk_state == AK__CK_TRAILER_START;
    if (++b->trailer_bytes > max_trailer)
        return ak_error_set(err, AK_ERR_HTTP, "chunked trailers exceed %zu bytes", max_trailer);
    if (c == '\n') {
        if (at_start) return AK_OK; /* a blank line: the message ends */
        b->chunk_state = AK__CK_TRAILER_START;
    } else if (at_start && c == '\r') {
        b->chunk_state = AK__CK_END_LF;
    } else if (c == 0) {
        return ak_error_set(err, AK_ERR_HTTP, "NUL byte in a chunked trailer");
    } else {
        b->chunk_state = AK__CK_TRAILER;
    }
    return AK_PENDING;
}

/* Bounds of a body being decoded: trailer bytes, and body bytes in all. */
typedef struct ak__body_limits {
    size_t max_trailer;
    uint64_t max_total;
} ak__body_limits;

/* One byte of chunked framing (anything but chunk data). Chunk lines need CRLF: a bare LF
   there is how request smuggling between lenient and strict parsers starts. A chunk that
   would take the body over its limit is refused at its size line, before its data. */
AK_PRIVATE ak_result ak__chunk_byte(ak_http_body_state *b, unsigned char c, const ak__body_limits *lim,
                                    ak_error *err) {
    int hex;
    switch (b->chunk_state) {
    case AK__CK_SIZE:
        hex = ak__hexval(c);
        if (hex < 0) {
            if (b->chunk_digits == 0) return ak_error_set(err, AK_ERR_HTTP, "malformed chunk size");
            return ak__chunk_size_end(b, c, err);
        }
        if (++b->chunk_digits > 15) return ak_error_set(err, AK_ERR_HTTP, "chunk size too large");
        b->remaining = b->remaining * 16 + (uint64_t)hex;
        return AK_PENDING;
    case AK__CK_SIZE_WS:
        return ak__chunk_size_end(b, c, err);
    case AK__CK_EXT:
        if (++b->line_bytes > AK_HTTP_MAX_CHUNK_LINE)
            return ak_error_set(err, AK_ERR_HTTP, "chunk extensions too long");
        if (c == '\r') b->chunk_state = AK__CK_SIZE_LF;
        else if ((c < 0x20 && c != '\t') || c == 0x7F)
            return ak_error_set(err, AK_ERR_HTTP, "control character in a chunk extension");
        return AK_PENDING;
    case AK__CK_SIZE_LF:
        if (c != '\n') return ak_error_set(err, AK_ERR_HTTP, "chunk size line not ended by CRLF");
        if (b->remaining > lim->max_total - b->total)
            return ak_error_set(err, AK_ERR_LIMIT, "a chunk of %llu bytes exceeds the body limit",
                                (unsigned long long)b->remaining);
        b->chunk_state = b->remaining ? AK__CK_DATA : AK__CK_TRAILER_START;
        b->line_bytes = 0;
        return AK_PENDING;
    case AK__CK_DATA_CR:
        if (c != '\r') return ak_error_set(err, AK_ERR_HTTP, "chunk data not followed by CRLF");
        b->chunk_state = AK__CK_DATA_LF;
        return AK_PENDING;
    case AK__CK_DATA_LF:
        if (c != '\n') return ak_error_set(err, AK_ERR_HTTP, "chunk data not followed by CRLF");
        b->chunk_state = AK__CK_SIZE;
        b->chunk_digits = 0;
        b->remaining = 0;
        return AK_PENDING;
    case AK__CK_TRAILER_START:
    case AK__CK_TRAILER:
        return ak__chunk_trailer_byte(b, c, lim->max_trailer, err);
    case AK__CK_END_LF:
        if (c != '\n') return ak_error_set(err, AK_ERR_HTTP, "last chunk not ended by CRLF");
        return AK_OK;
    }
    return ak_error_set(err, AK_ERR_INTERNAL, "bad chunk decoder state");
}

/* Emits min(remaining, len) bytes of a Content-Length body or of a chunk. */
AK_PRIVATE ak_result ak__body_take(ak_http_body_state *b, const char *data, size_t len,
                                   size_t *n, ak__body_emit emit, void *ud) {
    *n = b->remaining < (uint64_t)len ? (size_t)b->remaining : len;
    b->remaining -= *n;
    b->total += *n;
    return *n ? emit(ud, data, *n) : AK_OK;
}

/* Feeds body bytes. AK_OK: the body is complete (*used bytes taken, the rest is not this
   message's); AK_PENDING: all taken, more needed; otherwise the framing's or emit's error. */
AK_PRIVATE ak_result ak__body_feed(ak_http_body_state *b, const ak__body_limits *lim,
                                   const char *data, size_t len, size_t *used, ak__body_emit emit,
                                   void *ud, ak_error *err) {
    size_t i = 0, n;
    ak_result rc = AK_PENDING;
    *used = 0;
    if (b->mode == AK__BODY_NONE) return AK_OK;
    if (b->mode == AK__BODY_CLOSE) {
        *used = len;
        rc = len ? emit(ud, data, len) : AK_OK;
        return rc == AK_OK ? AK_PENDING : rc;
    }
    if (b->mode == AK__BODY_LENGTH) {
        rc = ak__body_take(b, data, len, used, emit, ud);
        return rc != AK_OK ? rc : b->remaining ? AK_PENDING : AK_OK;
    }
    while (i < len && rc == AK_PENDING) {
        if (b->chunk_state != AK__CK_DATA) {
            rc = ak__chunk_byte(b, AK__U8(data[i++]), lim, err);
            continue;
        }
        rc = ak__body_take(b, data + i, len - i, &n, emit, ud);
        i += n;
        if (rc != AK_OK) break;
        rc = AK_PENDING;
        if (!b->remaining) b->chunk_state = AK__CK_DATA_CR;
    }
    *used = i;
    return rc;
}

/* ---- response parser ------------------------------------------------------------------------ */

AKDEF void ak_http_response_parser_init(ak_http_response_parser *p, ak_http_sink *sink,
                                        const ak_allocator *alloc, const ak_http_limits *limits,
                                        int head_request) {
    AK_MEMSET(p, 0, sizeof *p);
    p->sink = sink;
    ak__http_limits_init(&p->limits, limits);
    ak_buf_init(&p->head, alloc);
    p->head_request = head_request;
    p->state = AK__PARSE_HEAD;
}

AKDEF void ak_http_response_parser_free(ak_http_response_parser *p) { ak_buf_free(&p->head); }

AK_PRIVATE ak_result ak__resp_fail(ak_http_response_parser *p, ak_result rc) {
    p->state = AK__PARSE_ERROR;
    p->error = rc;
    return rc;
}

/* A sink callback's result: anything but AK_OK means the library stopped listening. */
AK_PRIVATE ak_result ak__resp_sink(ak_http_response_parser *p, ak_result rc, ak_error *err) {
    if (rc == AK_OK) return AK_OK;
    p->sink_stopped = 1;
    return ak_error_set(err, rc, "the response sink stopped the response (%s)", ak_result_str(rc));
}

/* "HTTP/1.x SSS reason" (the reason phrase and the space before it may be missing) */
AK_PRIVATE ak_result ak__resp_status_line(ak_http_response_parser *p, const char *s, size_t n,
                                          ak_error *err) {
    uint64_t code = 0;
    if (n < 12 || !ak__eqn(s, 7, "HTTP/1.") || s[7] < '0' || s[7] > '9' || s[8] != ' ' ||
        (n > 12 && s[12] != ' ') || !ak__parse_u64(s + 9, 3, &code))
        return ak_error_set(err, AK_ERR_HTTP, "malformed status line \"%.*s\"",
                            (int)AK__MIN(n, 60), s);
    if (code < 100 || code > 599)
        return ak_error_set(err, AK_ERR_HTTP, "invalid status code %d", (int)code);
    if (n > 13 && !ak__http_value_ok(s + 13, n - 13))
        return ak_error_set(err, AK_ERR_HTTP, "control character in the status line");
    p->status = (int)code;
    p->keep_alive = s[7] != '0';
    return AK_OK;
}

AK_PRIVATE ak_result ak__resp_body_mode(ak_http_response_parser *p, const ak__http_fields *f,
                                        ak_error *err) {
    if (f->conn_close) p->keep_alive = 0;
    else if (f->conn_keep_alive) p->keep_alive = 1;
    if (p->head_request || p->status == 204 || p->status == 304) {
        p->bs.mode = AK__BODY_NONE;
    } else if (f->te_seen) {
        /* Only chunked is decoded; a body in another coding cannot be delimited or read. */
        if (f->te_other || f->te_chunked_count != 1)
            return ak_error_set(err, AK_ERR_HTTP, "unsupported Transfer-Encoding (only chunked is)");
        p->bs.mode = AK__BODY_CHUNKED;
        if (f->has_length) p->keep_alive = 0; /* RFC 9112 6.3: chunked wins, do not reuse */
    } else if (f->has_length) {
        p->bs.mode = AK__BODY_LENGTH;
        p->bs.remaining = f->length;
    } else {
        p->bs.mode = AK__BODY_CLOSE;
        p->keep_alive = 0;
    }
    return AK_OK;
}

/* The whole head is in p->head: status, each header, then the body framing. AK_PENDING
   means it was an interim (1xx) response, skipped. */
AK_PRIVATE ak_result ak__resp_head(ak_http_response_parser *p, ak_error *err) {
    ak_http_sink *k = p->sink;
    ak__http_fields f;
    size_t pos = 0, len, nl, vl;
    char *line;
    ak_header h;
    ak_result rc;
    AK_MEMSET(&f, 0, sizeof f);
    ak__head_next_line(p->head.ptr, &pos, &line, &len);
    if ((rc = ak__resp_status_line(p, line, len, err)) != AK_OK) return rc;
    if (p->status < 200) {
        if (p->status == 101) return ak_error_set(err, AK_ERR_HTTP, "unexpected 101 Switching Protocols");
        if (++p->interim > AK_HTTP_MAX_INTERIM)
            return ak_error_set(err, AK_ERR_HTTP, "more than %d interim (1xx) responses", AK_HTTP_MAX_INTERIM);
        return AK_PENDING;
    }
    if (k && k->on_status && (rc = ak__resp_sink(p, k->on_status(k, p->status), err)) != AK_OK)
        return rc;
    while (ak__head_next_line(p->head.ptr, &pos, &line, &len)) {
        if ((rc = ak__http_split_field(line, len, &h, &nl, &vl, err)) != AK_OK) return rc;
        if ((rc = ak__http_note_field(&f, &h, nl, vl, err)) != AK_OK) return rc;
        if (k && k->on_header &&
            (rc = ak__resp_sink(p, k->on_header(k, h.name, nl, h.value, vl), err)) != AK_OK)
            return rc;
    }
    return ak__resp_body_mode(p, &f, err);
}

AK_PRIVATE ak_result ak__resp_feed_head(ak_http_response_parser *p, const char *data, size_t len,
                                        size_t *used, ak_error *err) {
    ak_result rc = ak__head_feed(&p->hs, &p->head, &p->limits, AK__START_RESPONSE, data, len, used);
    if (rc == AK_PENDING) return rc;
    if (rc == AK_ERR_LIMIT && p->hs.why == AK__HEAD_TOO_MANY_LINES)
        return ak_error_set(err, AK_ERR_HTTP, "response has more than %zu headers", p->limits.max_headers);
    if (rc == AK_ERR_LIMIT)
        return ak_error_set(err, AK_ERR_HTTP, "response head exceeds %zu bytes", p->limits.max_header_bytes);
    if (rc == AK_ERR_HTTP && p->hs.why == AK__HEAD_NOT_HTTP)
        return ak_error_set(err, rc, "the server did not answer with HTTP (a TLS server behind an http:// URL?)");
    if (rc == AK_ERR_HTTP) return ak_error_set(err, rc, "response starts with a blank line");
    if (rc != AK_OK) return ak_error_set(err, rc, "out of memory reading the response head");
    rc = ak__resp_head(p, err);
    AK_MEMSET(&p->hs, 0, sizeof p->hs);
    if (rc == AK_PENDING) { /* an interim response: collect the next head */
        ak_buf_clear(&p->head);
        return AK_PENDING;
    }
    if (rc == AK_OK) p->state = AK__PARSE_BODY;
    return rc == AK_OK ? AK_PENDING : rc;
}

AK_PRIVATE ak_result ak__resp_emit(void *ud, const char *data, size_t len) {
    ak_http_response_parser *p = (ak_http_response_parser *)ud;
    ak_result rc = AK_OK;
    p->body_bytes += len;
    if (p->sink && p->sink->on_body) rc = p->sink->on_body(p->sink, data, len);
    if (rc != AK_OK) p->sink_stopped = 1;
    return rc;
}

AKDEF ak_result ak_http_response_parser_feed(ak_http_response_parser *p, const char *data,
                                             size_t len, size_t *consumed, ak_error *err) {
    size_t done = 0, used = 0;
    ak_result rc = AK_PENDING;
    if (consumed) *consumed = 0;
    if (p->state == AK__PARSE_ERROR)
        return ak_error_set(err, p->error, "the response was already rejected (%s)", ak_result_str(p->error));
    if (p->state == AK__PARSE_DONE) return AK_OK;
    if (len && !data) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "data is NULL");
    while (p->state == AK__PARSE_HEAD && done < len && rc == AK_PENDING) {
        rc = ak__resp_feed_head(p, data + done, len - done, &used, err);
        done += used;
    }
    if (rc == AK_PENDING && p->state == AK__PARSE_BODY) {
        ak__body_limits lim;
        lim.max_trailer = p->limits.max_header_bytes;
        lim.max_total = UINT64_MAX; /* the sink decides how much it wants */
        rc = ak__body_feed(&p->bs, &lim, data + done, len - done, &used, ak__resp_emit, p, err);
        done += used;
        if (rc == AK_OK) p->state = AK__PARSE_DONE;
        else if (rc != AK_PENDING && p->sink_stopped) rc = ak__resp_sink(p, rc, err);
    }
    if (consumed) *consumed = done;
    if (rc != AK_OK && rc != AK_PENDING) return ak__resp_fail(p, rc);
    return rc;
}

AKDEF ak_result ak_http_response_parser_eof(ak_http_response_parser *p, ak_error *err) {
    int started = p->head.len || p->interim;
    switch (p->state) {
    case AK__PARSE_DONE:
        return AK_OK;
    case AK__PARSE_ERROR:
        return ak_error_set(err, p->error, "the response was already rejected (%s)", ak_result_str(p->error));
    case AK__PARSE_HEAD:
        ak__resp_fail(p, started ? AK_ERR_TRUNCATED : AK_ERR_CLOSED);
        if (started) return ak_error_set(err, AK_ERR_TRUNCATED, "connection closed inside the response head");
        return ak_error_set(err, AK_ERR_CLOSED, "connection closed before a response arrived");
    }
    if (p->bs.mode == AK__BODY_CLOSE) {
        p->state = AK__PARSE_DONE;
        return AK_OK;
    }
    ak__resp_fail(p, AK_ERR_TRUNCATED);
    if (p->bs.mode == AK__BODY_LENGTH)
        return ak_error_set(err, AK_ERR_TRUNCATED, "connection closed after %llu body bytes, %llu short of Content-Length",
                            (unsigned long long)p->body_bytes, (unsigned long long)p->bs.remaining);
    return ak_error_set(err, AK_ERR_TRUNCATED, "connection closed after %llu body bytes, before the last chunk",
                        (unsigned long long)p->body_bytes);
}

/* ---- request parser (server) ---------------------------------------------------------------- */

AKDEF void ak_http_request_parser_init(ak_http_request_parser *p, const ak_allocator *alloc,
                                       const ak_http_limits *limits) {
    AK_MEMSET(p, 0, sizeof *p);
    ak__http_limits_init(&p->limits, limits);
    ak_buf_init(&p->head, alloc);
    ak_buf_init(&p->body, alloc);
    p->state = AK__PARSE_HEAD;
}

AKDEF void ak_http_request_parser_reset(ak_http_request_parser *p) {
    ak_buf_clear(&p->head);
    /* An idle keep-alive connection should not sit on a big upload's memory. */
    if (p->body.cap > 65536) ak_buf_free(&p->body);
    ak_buf_clear(&p->body);
    AK_MEMSET(&p->hs, 0, sizeof p->hs);
    AK_MEMSET(&p->bs, 0, sizeof p->bs);
    AK_MEMSET(&p->req, 0, sizeof p->req);
    p->state = AK__PARSE_HEAD;
    p->error = AK_OK;
    p->error_status = 0;
    p->expect_continue = 0;
}

AKDEF void ak_http_request_parser_free(ak_http_request_parser *p) {
    ak_free(p->head.alloc, p->headers, p->header_cap * sizeof *p->headers);
    p->headers = NULL;
    p->header_cap = 0;
    ak_buf_free(&p->head);
    ak_buf_free(&p->body);
}

/* Records the failure and the status to answer with; err was filled by the caller. */
AK_PRIVATE ak_result ak__req_fail(ak_http_request_parser *p, ak_result rc, int status) {
    p->state = AK__PARSE_ERROR;
    p->error = rc;
    p->error_status = status;
    return rc;
}

AK_PRIVATE ak_result ak__req_bad(ak_http_request_parser *p, ak_error *err, const char *msg) {
    ak_error_set(err, AK_ERR_HTTP, "%s", msg);
    return ak__req_fail(p, AK_ERR_HTTP, 400);
}

/* The target: origin form "/path?query", "*" for OPTIONS, or absolute form "http://h/p?q".
   Splits path and query in place. */
AK_PRIVATE ak_result ak__req_target(ak_http_request_parser *p, char *t, size_t n, ak_error *err) {
    size_t i;
    ak_url u;
    for (i = 0; i < n; i++)
        if (AK__U8(t[i]) <= 0x20 || AK__U8(t[i]) >= 0x7F || t[i] == '#')
            return ak__req_bad(p, err, "invalid character in the request target");
    p->req.query = "";
    if (t[0] == '/') {
        p->req.path = t;
        for (i = 0; i < n && t[i] != '?'; i++) {
        }
        if (i < n) {
            t[i] = 0;
            p->req.query = t + i + 1;
        }
        return AK_OK;
    }
    if (n == 1 && t[0] == '*' && ak__streq(p->req.method, "OPTIONS")) {
        p->req.path = t;
        return AK_OK;
    }
    if (ak_url_parse(t, n, &u, NULL) != AK_OK)
        return ak__req_bad(p, err, "request target is neither a path nor an absolute URL");
    p->req.path = u.path_len ? u.path : "/";
    if (u.query) {
        p->req.query = u.query;
        AK__UNCONST(char *, u.query)[u.query_len] = 0;
    }
    if (u.path_len) AK__UNCONST(char *, u.path)[u.path_len] = 0;
    return AK_OK;
}

/* method SP target SP HTTP/1.x */
AK_PRIVATE ak_result ak__req_line(ak_http_request_parser *p, char *s, size_t n, ak_error *err) {
    size_t m = 0, t, te;
    const char *v;
    while (m < n && ak__http_tchar(AK__U8(s[m]))) m++;
    if (m == 0 || m == n || s[m] != ' ') return ak__req_bad(p, err, "malformed request line");
    for (t = te = m + 1; te < n && s[te] != ' '; te++) {
    }
    if (te == t || te == n) return ak__req_bad(p, err, "malformed request line");
    v = s + te + 1;
    if (n - te - 1 != 8 || !ak__eqn(v, 5, "HTTP/") || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return ak__req_bad(p, err, "malformed HTTP version in the request line");
    if (v[5] != '1') {
        ak_error_set(err, AK_ERR_UNSUPPORTED, "HTTP version %.3s is not supported", v + 5);
        return ak__req_fail(p, AK_ERR_UNSUPPORTED, 505);
    }
    if (te - t > p->limits.max_target) {
        ak_error_set(err, AK_ERR_LIMIT, "request target exceeds %zu bytes", p->limits.max_target);
        return ak__req_fail(p, AK_ERR_LIMIT, 414);
    }
    p->req.version_minor = v[7] == '0' ? 0 : 1; /* 1.2+ is read as 1.1 (RFC 9110 2.5) */
    s[m] = 0;
    s[te] = 0;
    p->req.method = s;
    return ak__req_target(p, s + t, te - t, err);
}

AK_PRIVATE ak_result ak__req_headers(ak_http_request_parser *p, size_t *pos, ak__http_fields *f,
                                     ak_error *err) {
    size_t need = p->hs.lines, n = 0, len, nl, vl;
    char *line;
    if (need > p->header_cap) {
        ak_header *h = (ak_header *)ak_realloc(p->head.alloc, p->headers,
                                               p->header_cap * sizeof *h, need * sizeof *h);
        if (!h) {
            ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory for the request headers");
            return ak__req_fail(p, AK_ERR_OUT_OF_MEMORY, 503);
        }
        p->headers = h;
        p->header_cap = need;
    }
    while (ak__head_next_line(p->head.ptr, pos, &line, &len)) {
        ak_header *h = &p->headers[n++];
        if (ak__http_split_field(line, len, h, &nl, &vl, err) != AK_OK ||
            ak__http_note_field(f, h, nl, vl, err) != AK_OK)
            return ak__req_fail(p, AK_ERR_HTTP, 400);
    }
    p->req.headers = p->headers;
    p->req.header_count = n;
    return AK_OK;
}

/* How the body is delimited, and whether the connection may carry another request. The
   ambiguous combinations are refused: they are how requests get smuggled past proxies. */
AK_PRIVATE ak_result ak__req_framing(ak_http_request_parser *p, const ak__http_fields *f,
                                     ak_error *err) {
    if (f->host_count > 1 || (p->req.version_minor == 1 && f->host_count == 0))
        return ak__req_bad(p, err, f->host_count ? "more than one Host header" : "missing Host header");
    if (f->has_length && f->te_seen)
        return ak__req_bad(p, err, "both Content-Length and Transfer-Encoding");
    if (f->te_seen && (!f->te_chunked_last || f->te_chunked_count != 1))
        return ak__req_bad(p, err, "Transfer-Encoding must end with a single chunked");
    if (f->te_other) {
        ak_error_set(err, AK_ERR_UNSUPPORTED, "transfer codings other than chunked are not supported");
        return ak__req_fail(p, AK_ERR_UNSUPPORTED, 501);
    }
    if (f->has_length && f->length > (uint64_t)p->limits.max_body) {
        ak_error_set(err, AK_ERR_LIMIT, "request body of %llu bytes exceeds %zu",
                     (unsigned long long)f->length, p->limits.max_body);
        return ak__req_fail(p, AK_ERR_LIMIT, 413);
    }
    p->bs.mode = f->te_seen ? AK__BODY_CHUNKED : f->has_length && f->length ? AK__BODY_LENGTH
                                                                          : AK__BODY_NONE;
    p->bs.remaining = f->has_length ? f->length : 0;
    p->req.keep_alive = !f->conn_close && (p->req.version_minor == 1 || f->conn_keep_alive);
    p->expect_continue = f->expect_continue && p->req.version_minor == 1 && p->bs.mode != AK__BODY_NONE;
    return AK_OK;
}

AK_PRIVATE ak_result ak__req_head_failed(ak_http_request_parser *p, ak_result rc, ak_error *err) {
    if (rc == AK_ERR_OUT_OF_MEMORY) {
        ak_error_set(err, rc, "out of memory reading the request head");
        return ak__req_fail(p, rc, 503);
    }
    if (p->hs.why == AK__HEAD_BLANK_START) return ak__req_bad(p, err, "too many blank lines before the request");
    if (p->hs.why == AK__HEAD_NOT_HTTP)
        return ak__req_bad(p, err, "the request line is not HTTP (a TLS handshake on a plain port?)");
    if (p->hs.why == AK__HEAD_LINE1_TOO_BIG) {
        ak_error_set(err, AK_ERR_LIMIT, "request line exceeds %zu bytes", p->limits.max_header_bytes);
        return ak__req_fail(p, AK_ERR_LIMIT, 414);
    }
    if (p->hs.why == AK__HEAD_TOO_MANY_LINES)
        ak_error_set(err, AK_ERR_LIMIT, "more than %zu request headers", p->limits.max_headers);
    else
        ak_error_set(err, AK_ERR_LIMIT, "request head exceeds %zu bytes", p->limits.max_header_bytes);
    return ak__req_fail(p, AK_ERR_LIMIT, 431);
}

AK_PRIVATE ak_result ak__req_head(ak_http_request_parser *p, ak_error *err) {
    ak__http_fields f;
    size_t pos = 0, len;
    char *line;
    ak_result rc;
    AK_MEMSET(&f, 0, sizeof f);
    ak__head_next_line(p->head.ptr, &pos, &line, &len);
    if ((rc = ak__req_line(p, line, len, err)) != AK_OK) return rc;
    if ((rc = ak__req_headers(p, &pos, &f, err)) != AK_OK) return rc;
    return ak__req_framing(p, &f, err);
}

AK_PRIVATE ak_result ak__req_emit(void *ud, const char *data, size_t len) {
    ak_http_request_parser *p = (ak_http_request_parser *)ud;
    if (len > p->limits.max_body - p->body.len) return AK_ERR_LIMIT;
    ak_buf_append(&p->body, data, len);
    return p->body.err;
}

AK_PRIVATE ak_result ak__req_feed_body(ak_http_request_parser *p, const char *data, size_t len,
                                       size_t *used, ak_error *err) {
    ak__body_limits lim;
    ak_result rc;
    lim.max_trailer = p->limits.max_header_bytes;
    lim.max_total = p->limits.max_body;
    rc = ak__body_feed(&p->bs, &lim, data, len, used, ak__req_emit, p, err);
    if (rc == AK_OK) {
        p->state = AK__PARSE_DONE;
        p->expect_continue = 0;
        p->req.body = p->body.ptr ? p->body.ptr : "";
        p->req.body_len = p->body.len;
    } else if (rc == AK_ERR_LIMIT) {
        ak_error_set(err, rc, "request body exceeds %zu bytes", p->limits.max_body);
        return ak__req_fail(p, rc, 413);
    } else if (rc == AK_ERR_OUT_OF_MEMORY) {
        ak_error_set(err, rc, "out of memory reading the request body");
        return ak__req_fail(p, rc, 503);
    } else if (rc != AK_PENDING) {
        return ak__req_fail(p, rc, 400);
    }
    return rc;
}

AKDEF ak_result ak_http_request_parser_feed(ak_http_request_parser *p, const char *data,
                                            size_t len, size_t *consumed, ak_error *err) {
    size_t done = 0, used = 0;
    ak_result rc;
    if (consumed) *consumed = 0;
    if (p->state == AK__PARSE_ERROR)
        return ak_error_set(err, p->error, "the request was already rejected (%s)", ak_result_str(p->error));
    if (p->state == AK__PARSE_DONE) return AK_OK;
    if (len && !data) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "data is NULL");
    if (p->state == AK__PARSE_HEAD) {
        rc = ak__head_feed(&p->hs, &p->head, &p->limits, AK__START_REQUEST, data, len, &done);
        if (consumed) *consumed = done;
        if (rc == AK_PENDING) return rc;
        if (rc != AK_OK) return ak__req_head_failed(p, rc, err);
        if ((rc = ak__req_head(p, err)) != AK_OK) return rc;
        p->state = AK__PARSE_BODY;
    }
    rc = ak__req_feed_body(p, data + done, len - done, &used, err);
    if (consumed) *consumed = done + used;
    return rc;
}

/* ---- response framer (server) --------------------------------------------------------------- */

AKDEF void ak_http_framer_init(ak_http_response_framer *f, const ak_http_server_request *req) {
    AK_MEMSET(f, 0, sizeof *f);
    f->version_minor = req ? req->version_minor : 1;
    f->keep_alive = req ? req->keep_alive : 0;
    f->head_request = req && req->method && ak__streq(req->method, "HEAD");
}

/* Checks the caller's headers and reads the ones that decide the framing. */
AK_PRIVATE ak_result ak__framer_fields(const ak_header *h, size_t n, ak__http_fields *f,
                                       ak_error *err) {
    size_t i;
    AK_MEMSET(f, 0, sizeof *f);
    if (n && !h) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "headers is NULL");
    for (i = 0; i < n; i++) {
        size_t nl, vl;
        if (!h[i].name || !h[i].value)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "header %zu has a NULL name or value", i);
        nl = ak__strlen(h[i].name);
        vl = ak__strlen(h[i].value);
        if (!ak__http_token(h[i].name, nl) || !ak__http_value_ok(h[i].value, vl))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT,
                                "header \"%s\" has an invalid name or a control character in its value",
                                h[i].name);
        if (ak__ieqn(h[i].name, nl, "transfer-encoding"))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "Transfer-Encoding is chosen by the framer");
        if (ak__http_note_field(f, &h[i], nl, vl, err) != AK_OK)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "invalid Content-Length \"%s\"", h[i].value);
    }
    return AK_OK;
}

AK_PRIVATE void ak__framer_mode(ak_http_response_framer *f, int status, const ak__http_fields *fl) {
    if (fl->conn_close) f->keep_alive = 0;
    if (f->head_request || status == 204 || status == 304) {
        f->body_mode = AK__BODY_NONE;
    } else if (fl->has_length) {
        f->body_mode = AK__BODY_LENGTH;
        f->remaining = fl->length;
    } else if (f->version_minor >= 1) {
        f->body_mode = AK__BODY_CHUNKED;
    } else {
        f->body_mode = AK__BODY_CLOSE; /* HTTP/1.0 knows no chunks: the close ends the body */
        f->keep_alive = 0;
    }
}

AKDEF ak_result ak_http_framer_start(ak_http_response_framer *f, ak_buf *out, int status,
                                     const ak_header *headers, size_t count, ak_error *err) {
    ak__http_fields fl;
    size_t mark = out->len;
    ak_result rc;
    if (f->state != 0) return ak_error_set(err, AK_ERR_STATE, "the response was already started");
    if (status < 200 || status > 999)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "response status %d is not 200..999", status);
    if ((rc = ak__framer_fields(headers, count, &fl, err)) != AK_OK) return rc;
    if (status == 204 && fl.has_length)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "a 204 response has no Content-Length");
    ak__framer_mode(f, status, &fl);
    ak_buf_printf(out, "HTTP/1.1 %d %s\r\n", status, ak_http_status_reason(status));
    ak__http_put_headers(out, headers, count);
    if (f->body_mode == AK__BODY_CHUNKED) ak_buf_puts(out, "Transfer-Encoding: chunked\r\n");
    if (!fl.has_connection && !f->keep_alive) ak_buf_puts(out, "Connection: close\r\n");
    if (!fl.has_connection && f->keep_alive && f->version_minor == 0)
        ak_buf_puts(out, "Connection: keep-alive\r\n");
    ak_buf_append(out, "\r\n", 2);
    if (out->err) {
        out->len = mark;
        if (out->ptr) out->ptr[mark] = 0;
        f->keep_alive = 0;
        return ak_error_set(err, out->err, "cannot build the response head: %s", ak_result_str(out->err));
    }
    f->state = 1;
    return AK_OK;
}

AKDEF ak_result ak_http_framer_write(ak_http_response_framer *f, ak_buf *out, const char *data,
                                     size_t len, ak_error *err) {
    if (f->state != 1)
        return ak_error_set(err, AK_ERR_STATE, f->state ? "the response has ended" : "the response was not started");
    if (!len || f->body_mode == AK__BODY_NONE) return AK_OK;
    if (!data) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "data is NULL");
    if (f->body_mode == AK__BODY_LENGTH) {
        if ((uint64_t)len > f->remaining)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "%zu body bytes, but Content-Length leaves %llu",
                                len, (unsigned long long)f->remaining);
        f->remaining -= len;
    }
    if (f->body_mode == AK__BODY_CHUNKED) ak_buf_printf(out, "%zx\r\n", len);
    ak_buf_append(out, data, len);
    if (f->body_mode == AK__BODY_CHUNKED) ak_buf_append(out, "\r\n", 2);
    if (out->err) {
        f->keep_alive = 0; /* part of the framing may be missing: the connection cannot be reused */
        return ak_error_set(err, out->err, "cannot buffer the response body: %s", ak_result_str(out->err));
    }
    return AK_OK;
}

AKDEF ak_result ak_http_framer_end(ak_http_response_framer *f, ak_buf *out, ak_error *err) {
    if (f->state != 1)
        return ak_error_set(err, AK_ERR_STATE, f->state ? "the response has ended" : "the response was not started");
    f->state = 2;
    if (f->body_mode == AK__BODY_LENGTH && f->remaining) {
        f->keep_alive = 0;
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "response ended %llu bytes short of its Content-Length",
                            (unsigned long long)f->remaining);
    }
    if (f->body_mode == AK__BODY_CHUNKED) ak_buf_append(out, "0\r\n\r\n", 5);
    if (out->err) {
        f->keep_alive = 0;
        return ak_error_set(err, out->err, "cannot buffer the end of the response: %s", ak_result_str(out->err));
    }
    return AK_OK;
}

AKDEF ak_result ak_http_respond(ak_http_writer *w, int status, const char *content_type,
                                const char *body, size_t len) {
    ak_header h[2];
    char length[24];
    ak_buf b;
    size_t n = 0;
    ak_result rc, end_rc;
    ak_buf_init_fixed(&b, length, sizeof length);
    ak_buf_put_u64(&b, (uint64_t)len);
    if (content_type) {
        h[n].name = "Content-Type";
        h[n++].value = content_type;
    }
    h[n].name = "Content-Length";
    h[n++].value = length;
    rc = w->start(w->ud, status, h, n);
    if (rc == AK_OK && len) rc = w->write(w->ud, body, len);
    end_rc = w->end(w->ud); /* always: end() is what releases the writer */
    return rc != AK_OK ? rc : end_rc;
}
/* ---- end src/http.c ---- */

#if !defined(AK_NO_REPLAY)
/* ---- begin src/replay.c ---- */
/* >>replay implementation: the scripted test transport */


struct ak_replay_script {
    ak_replay_response res;    /* pointers into the replay's arena */
    int used;
    ak_replay_script *next;
};

enum { AK__CALL_CONNECTING, AK__CALL_BODY, AK__CALL_FINISHED };

struct ak_replay_call {
    ak_http_request req;       /* deep copy */
    ak_http_sink *sink;
    const ak_replay_response *res;
    int64_t started_ms;
    size_t sent;               /* body bytes delivered */
    int state;
    ak_replay_call *next;
};

AKDEF ak_result ak_replay_init(ak_replay *r, ak_context *ctx, ak_replay_mode mode) {
    if (!r || !ctx) return AK_ERR_INVALID_ARGUMENT;
    AK_MEMSET(r, 0, sizeof *r);
    r->ctx = ctx;
    r->mode = mode;
    ak_arena_init(&r->arena, ak_context_allocator(ctx), 0);
    return AK_OK;
}

AKDEF void ak_replay_free(ak_replay *r) {
    if (!r) return;
    ak_arena_free(&r->arena);
    r->scripts = r->scripts_tail = NULL;
    r->calls = r->calls_tail = r->cursor = NULL;
    r->call_count = 0;
}

/* ---- copies into the arena (NULL when it is exhausted) -------------------------------------- */

AK_PRIVATE char *ak__replay_dup(ak_arena *a, const char *s, size_t len) {
    return ak_arena_strdup(a, s ? s : "", s ? len : 0);
}

AK_PRIVATE ak_header *ak__replay_dup_headers(ak_arena *a, const ak_header *h, size_t n) {
    ak_header *copy;
    size_t i;
    if (!n) return NULL;
    if (n > (size_t)-1 / sizeof *copy) return NULL;
    copy = (ak_header *)ak_arena_alloc(a, n * sizeof *copy);
    for (i = 0; copy && i < n; i++) {
        copy[i].name = ak__replay_dup(a, h[i].name, ak__strlen(h[i].name));
        copy[i].value = ak__replay_dup(a, h[i].value, ak__strlen(h[i].value));
        if (!copy[i].name || !copy[i].value) return NULL;
    }
    return copy;
}

AK_PRIVATE int ak__headers_ok(const ak_header *h, size_t n) {
    size_t i;
    if (n && !h) return 0;
    for (i = 0; i < n; i++)
        if (!h[i].name || !h[i].value) return 0;
    return 1;
}

/* ---- scripting ------------------------------------------------------------------------------ */

AKDEF ak_result ak_replay_add(ak_replay *r, const ak_replay_response *res, ak_error *err) {
    ak_arena_mark mark;
    ak_replay_script *s;
    size_t body_len;
    if (!r || !r->ctx || !res)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_replay_add: NULL replay or response");
    if (!ak__headers_ok(res->headers, res->header_count) || (unsigned)res->fault > (unsigned)AK_REPLAY_FAULT_TRUNCATE)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_replay_add: NULL header string or unknown fault");
    body_len = res->body && !res->body_len ? ak__strlen(res->body) : res->body_len;
    if (!res->body && body_len)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_replay_add: body_len without a body");
    mark = ak_arena_save(&r->arena);
    s = (ak_replay_script *)ak_arena_zalloc(&r->arena, sizeof *s);
    if (s) {
        s->res = *res;
        s->res.status = AK__DEF(res->status, 200);
        s->res.body_len = body_len;
        s->res.body = ak__replay_dup(&r->arena, res->body, body_len);
        s->res.match = res->match ? ak__replay_dup(&r->arena, res->match, ak__strlen(res->match)) : NULL;
        s->res.headers = ak__replay_dup_headers(&r->arena, res->headers, res->header_count);
    }
    if (!s || !s->res.body || (res->match && !s->res.match) || (res->header_count && !s->res.headers)) {
        ak_arena_restore(&r->arena, mark);
        return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "ak_replay_add: out of memory");
    }
    if (r->scripts_tail) r->scripts_tail->next = s;
    else r->scripts = s;
    r->scripts_tail = s;
    return AK_OK;
}

/* Whether needle occurs in hay (both NUL-terminated). */
AK_PRIVATE int ak__contains(const char *hay, const char *needle) {
    size_t h = ak__strlen(hay), n = ak__strlen(needle), i;
    for (i = 0; n <= h && i <= h - n; i++)
        if (AK_MEMCMP(hay + i, needle, n) == 0) return 1;
    return 0;
}

AK_PRIVATE const ak_replay_response *ak__replay_take(ak_replay *r, const char *url) {
    ak_replay_script *s;
    for (s = r->scripts; s; s = s->next) {
        if (s->used || (s->res.match && !ak__contains(url, s->res.match))) continue;
        s->used = 1;
        return &s->res;
    }
    return NULL;
}

AKDEF size_t ak_replay_unused(const ak_replay *r) {
    const ak_replay_script *s;
    size_t n = 0;
    for (s = r ? r->scripts : NULL; s; s = s->next) n += !s->used;
    return n;
}

/* ---- recorded requests ---------------------------------------------------------------------- */

AK_PRIVATE ak_replay_call *ak__replay_record(ak_replay *r, const ak_http_request *req) {
    ak_arena_mark mark = ak_arena_save(&r->arena);
    ak_replay_call *c = (ak_replay_call *)ak_arena_zalloc(&r->arena, sizeof *c);
    if (c) {
        c->req = *req;
        c->req.method = ak__replay_dup(&r->arena, req->method, ak__strlen(req->method));
        c->req.url = ak__replay_dup(&r->arena, req->url, ak__strlen(req->url));
        c->req.body = ak__replay_dup(&r->arena, req->body, req->body_len);
        c->req.headers = ak__replay_dup_headers(&r->arena, req->headers, req->header_count);
    }
    if (!c || !c->req.method || !c->req.url || !c->req.body ||
        (req->header_count && !c->req.headers)) {
        ak_arena_restore(&r->arena, mark);
        return NULL;
    }
    c->state = AK__CALL_FINISHED;
    if (r->calls_tail) r->calls_tail->next = c;
    else r->calls = c;
    r->calls_tail = c;
    r->call_count++;
    return c;
}

AKDEF size_t ak_replay_request_count(const ak_replay *r) { return r ? r->call_count : 0; }

AKDEF const ak_http_request *ak_replay_request(const ak_replay *r, size_t index) {
    const ak_replay_call *c;
    for (c = r ? r->calls : NULL; c; c = c->next)
        if (!index--) return &c->req;
    return NULL;
}

AKDEF size_t ak_replay_active(const ak_replay *r) {
    const ak_replay_call *c;
    size_t n = 0;
    for (c = r ? r->calls : NULL; c; c = c->next) n += c->state != AK__CALL_FINISHED;
    return n;
}

/* ---- delivery ------------------------------------------------------------------------------- */

/* A sink callback's answer: anything but AK_OK means the consumer stopped listening. The
   callback may also have cancelled the call itself. Returns whether to go on. */
AK_PRIVATE int ak__replay_heard(ak_replay_call *c, ak_result rc) {
    if (rc != AK_OK) c->state = AK__CALL_FINISHED;
    return c->state != AK__CALL_FINISHED;
}

AK_PRIVATE void ak__replay_done(ak_replay_call *c, ak_result rc, const char *msg) {
    ak_http_sink *sink = c->sink;
    c->state = AK__CALL_FINISHED; /* before the call: on_done may free the sink or restart */
    sink->on_done(sink, rc, msg);
}

AK_PRIVATE void ak__replay_status(ak_replay_call *c) {
    const ak_replay_response *res = c->res;
    size_t i;
    if (res->fault == AK_REPLAY_FAULT_CONNECT) {
        ak__replay_done(c, AK_ERR_CONNECT, "connection refused (replay fault)");
        return;
    }
    if (!ak__replay_heard(c, c->sink->on_status(c->sink, res->status))) return;
    for (i = 0; i < res->header_count; i++) {
        const ak_header *h = &res->headers[i];
        if (!ak__replay_heard(c, c->sink->on_header(c->sink, h->name, ak__strlen(h->name), h->value,
                                                    ak__strlen(h->value))))
            return;
    }
    c->state = AK__CALL_BODY;
}

/* Where the body stops: its end, or the byte a reset or truncation fault cuts it at. */
AK_PRIVATE size_t ak__replay_body_end(const ak_replay_response *res) {
    if (res->fault == AK_REPLAY_FAULT_RESET || res->fault == AK_REPLAY_FAULT_TRUNCATE)
        return AK__MIN(res->fault_at, res->body_len);
    return res->body_len;
}

AK_PRIVATE void ak__replay_body(ak_replay_call *c) {
    const ak_replay_response *res = c->res;
    size_t end = ak__replay_body_end(res), n;
    if (c->sent < end) {
        n = res->chunk ? AK__MIN(res->chunk, end - c->sent) : end - c->sent;
        c->sent += n;
        ak__replay_heard(c, c->sink->on_body(c->sink, res->body + c->sent - n, n));
    } else if (res->fault == AK_REPLAY_FAULT_RESET) {
        ak__replay_done(c, AK_ERR_CLOSED, "connection reset by peer (replay fault)");
    } else {
        ak__replay_done(c, AK_OK, NULL);
    }
}

/* One delivery step: the status with its headers, one body chunk, or the end. */
AK_PRIVATE void ak__replay_step(ak_replay_call *c) {
    if (c->state == AK__CALL_CONNECTING) ak__replay_status(c);
    else if (c->state == AK__CALL_BODY) ak__replay_body(c);
}

AK_PRIVATE int ak__replay_ready(ak_replay *r, const ak_replay_call *c) {
    if (c->state == AK__CALL_FINISHED) return 0;
    return c->state != AK__CALL_CONNECTING || c->res->delay_ms <= 0 ||
           ak_mono_ms(r->ctx) - c->started_ms >= c->res->delay_ms;
}

/* SYNC: the whole exchange now. A delay is not waited for; it only decides a timeout. */
AK_PRIVATE void ak__replay_run(ak_replay_call *c) {
    int64_t timeout = c->req.timeout_ms, delay = c->res->delay_ms;
    if (timeout > 0 && delay >= timeout) {
        ak__replay_done(c, AK_ERR_TIMEOUT, "timed out (replay delay exceeds the request timeout)");
        return;
    }
    while (c->state != AK__CALL_FINISHED) ak__replay_step(c);
}

/* ---- the transport -------------------------------------------------------------------------- */

AK_PRIVATE int ak__request_ok(const ak_http_request *req, const ak_http_sink *s) {
    return req && req->method && req->url && (req->body || !req->body_len) &&
           ak__headers_ok(req->headers, req->header_count) && s && s->on_status &&
           s->on_header && s->on_body && s->on_done;
}

AK_PRIVATE ak_result ak__replay_start(void *ud, const ak_http_request *req, ak_http_sink *sink,
                                      void **handle) {
    ak_replay *r = (ak_replay *)ud;
    const ak_replay_response *res;
    ak_replay_call *c;
    if (handle) *handle = NULL;
    if (!r || !handle || !ak__request_ok(req, sink)) return AK_ERR_INVALID_ARGUMENT;
    c = ak__replay_record(r, req);
    if (!c) return AK_ERR_OUT_OF_MEMORY;
    res = ak__replay_take(r, req->url);
    if (!res) {
        r->unmatched++;
        return AK_ERR_NOT_FOUND;
    }
    if (res->fault == AK_REPLAY_FAULT_REFUSE) return AK_ERR_CONNECT;
    c->sink = sink;
    c->res = res;
    c->started_ms = ak_mono_ms(r->ctx);
    c->state = AK__CALL_CONNECTING;
    *handle = c;
    if (r->mode == AK_REPLAY_SYNC) ak__replay_run(c);
    return AK_OK;
}

AK_PRIVATE void ak__replay_cancel(void *ud, void *handle) {
    ak_replay *r = (ak_replay *)ud;
    ak_replay_call *c;
    for (c = r ? r->calls : NULL; c; c = c->next) /* only handles this replay gave out */
        if (c == handle) c->state = AK__CALL_FINISHED;
}

/* PUMPED: one step for the next ready request after the one served last. Never waits. */
AK_PRIVATE ak_result ak__replay_poll(void *ud, int timeout_ms) {
    ak_replay *r = (ak_replay *)ud;
    ak_replay_call *c, *start;
    AK__UNUSED(timeout_ms);
    if (!r || !r->calls) return AK_OK;
    start = r->cursor && r->cursor->next ? r->cursor->next : r->calls;
    c = start;
    do {
        if (ak__replay_ready(r, c)) {
            r->cursor = c;
            ak__replay_step(c);
            return AK_OK;
        }
        c = c->next ? c->next : r->calls;
    } while (c != start);
    return AK_OK;
}

AKDEF ak_transport ak_replay_transport(ak_replay *r) {
    ak_transport t;
    t.start = ak__replay_start;
    t.cancel = ak__replay_cancel;
    t.poll = r && r->mode == AK_REPLAY_PUMPED ? ak__replay_poll : NULL;
    t.ud = r;
    return t;
}
/* ---- end src/replay.c ---- */
#endif /* src/replay.c */

/* ---- begin src/posix.c ---- */
/* >>posix.c: POSIX sockets (AK_ENABLE_POSIX): the TCP byte stream, the HTTP client transport
   and the HTTP server loop */


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
/* ---- end src/posix.c ---- */

/* ---- begin src/tls.c ---- */
/* >>tls.c: TLS client streams with mbedTLS (AK_ENABLE_MBEDTLS): verification on by default,
   CAs from a file, memory or the system bundle, SNI, a DRBG seeded from ak_random() */


#ifdef AK_ENABLE_MBEDTLS
#ifndef AK_ENABLE_POSIX
#error "agentkit.h: AK_ENABLE_MBEDTLS needs AK_ENABLE_POSIX"
#endif

#include <mbedtls/version.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/error.h>
#if MBEDTLS_VERSION_NUMBER >= 0x03000000 && (defined(MBEDTLS_USE_PSA_CRYPTO) || defined(MBEDTLS_SSL_PROTO_TLS1_3))
#include <psa/crypto.h>
#define AK__TLS_PSA 1 /* 3.x: TLS 1.3 and USE_PSA builds need the PSA core up */
#endif

/* Where Linux distributions and BSDs keep the system's trusted CAs, when none is given. */
static const char *const ak__ca_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Arch, Alpine */
    "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
    "/etc/ssl/ca-bundle.pem",             /* openSUSE */
    "/etc/ssl/cert.pem",                  /* macOS, OpenBSD, FreeBSD */
};

struct ak_tls {
    ak_context *ctx;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_ctr_drbg_context drbg;
    char server_name[256];     /* cfg.server_name, copied; "" = the URL host */
};

typedef struct ak__tls_stream {
    ak_net_stream base;        /* first, so an ak_net_stream* is an ak__tls_stream* */
    ak_net_stream *inner;
    ak_tls *tls;
    mbedtls_ssl_context ssl;
    int ready;                 /* handshake done */
    ak_result io_rc;           /* what the inner stream last failed with */
    ak_error io_err;
    char name[256];            /* the name verified and sent as SNI */
} ak__tls_stream;

/* mbedTLS's text for an error code, or just the code when it was built without them. */
AK_PRIVATE void ak__tls_strerror(int code, char *out, size_t cap) {
#ifdef MBEDTLS_ERROR_C
    mbedtls_strerror(code, out, cap);
#else
    ak_buf b;
    ak_buf_init_fixed(&b, out, cap);
    ak_buf_printf(&b, "mbedTLS error");
#endif
}

AK_PRIVATE ak_result ak__tls_fail(ak_error *err, const char *what, int code) {
    char text[128];
    ak__tls_strerror(code, text, sizeof text);
    return ak_error_set(err, AK_ERR_TLS, "%s: %s (-0x%x)", what, text, (unsigned)-code);
}

/* The DRBG's entropy is the context's random hook: no global entropy pool. */
AK_PRIVATE int ak__tls_entropy(void *ud, unsigned char *out, size_t len) {
    return ak_random((ak_context *)ud, out, len) == AK_OK ? 0 : MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}

/* CA certificates in memory: DER (a SEQUENCE, first byte 0x30) as is; PEM must end with a
   NUL that its length counts, so a PEM buffer without one is copied and terminated. */
AK_PRIVATE ak_result ak__tls_load_pem(ak_tls *tls, const char *pem, size_t len, ak_error *err) {
    const ak_allocator *a = ak_context_allocator(tls->ctx);
    char *copy;
    int rc;
    if ((len && pem[len - 1] == 0) || (len && AK__U8(pem[0]) == 0x30)) {
        rc = mbedtls_x509_crt_parse(&tls->ca, (const unsigned char *)pem, len);
    } else {
        copy = (char *)ak_alloc(a, len + 1);
        if (!copy) return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory for the CA certificates");
        AK_MEMCPY(copy, pem, len);
        copy[len] = 0;
        rc = mbedtls_x509_crt_parse(&tls->ca, (const unsigned char *)copy, len + 1);
        ak_free(a, copy, len + 1);
    }
    if (rc < 0) return ak__tls_fail(err, "cannot parse the CA certificates", rc);
    return AK_OK;
}

/* Loads the trusted CAs: the file, the memory buffer, or the first system bundle found. */
AK_PRIVATE ak_result ak__tls_load_cas(ak_tls *tls, const ak_tls_config *cfg, ak_error *err) {
    size_t i;
    int rc;
    if (cfg->ca_pem) return ak__tls_load_pem(tls, cfg->ca_pem, cfg->ca_pem_len, err);
#ifdef MBEDTLS_FS_IO
    if (cfg->ca_file) {
        rc = mbedtls_x509_crt_parse_file(&tls->ca, cfg->ca_file);
        if (rc < 0) {
            char what[300];
            ak_buf b;
            ak_buf_init_fixed(&b, what, sizeof what);
            ak_buf_printf(&b, "cannot load CA file %s", cfg->ca_file);
            return ak__tls_fail(err, what, rc);
        }
        return AK_OK;
    }
    for (i = 0; i < AK__COUNTOF(ak__ca_bundles); i++)
        if (mbedtls_x509_crt_parse_file(&tls->ca, ak__ca_bundles[i]) >= 0) return AK_OK;
#else
    AK__UNUSED(i), AK__UNUSED(rc);
    if (cfg->ca_file)
        return ak_error_set(err, AK_ERR_UNSUPPORTED, "this mbedTLS has no file support: use tls.ca_pem");
#endif
    return ak_error_set(err, AK_ERR_TLS, "no trusted CA certificates found: set tls.ca_file or tls.ca_pem");
}

AK_PRIVATE ak_result ak__tls_configure(ak_tls *tls, const ak_tls_config *cfg, ak_error *err) {
    static const char personal[] = "agentkit.h tls";
    int rc;
    ak_result r;
#ifdef AK__TLS_PSA
    if (psa_crypto_init() != PSA_SUCCESS) return ak_error_set(err, AK_ERR_TLS, "psa_crypto_init failed");
#endif
    rc = mbedtls_ctr_drbg_seed(&tls->drbg, ak__tls_entropy, tls->ctx, (const unsigned char *)personal,
                               sizeof personal - 1);
    if (rc) return ak__tls_fail(err, "cannot seed the TLS random generator from ak_random", rc);
    rc = mbedtls_ssl_config_defaults(&tls->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                     MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc) return ak__tls_fail(err, "cannot set up TLS", rc);
    mbedtls_ssl_conf_rng(&tls->conf, mbedtls_ctr_drbg_random, &tls->drbg);
#if MBEDTLS_VERSION_NUMBER >= 0x03020000 /* 3.2 replaced the (major, minor) form */
    mbedtls_ssl_conf_min_tls_version(&tls->conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
    mbedtls_ssl_conf_min_version(&tls->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
    if (cfg->dangerously_skip_verification) {
        mbedtls_ssl_conf_authmode(&tls->conf, MBEDTLS_SSL_VERIFY_NONE);
        ak_log(tls->ctx, AK_LOG_WARN, "TLS: certificate verification is DISABLED");
        return AK_OK;
    }
    if ((r = ak__tls_load_cas(tls, cfg, err)) != AK_OK) return r;
    mbedtls_ssl_conf_authmode(&tls->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&tls->conf, &tls->ca, NULL);
    return AK_OK;
}

AKDEF ak_result ak_tls_new(ak_context *ctx, const ak_tls_config *cfg, ak_tls **out, ak_error *err) {
    ak_tls_config none;
    ak_tls *tls;
    ak_result rc;
    size_t n;
    *out = NULL;
    if (!ctx) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "TLS needs a context");
    if (!cfg) {
        AK_MEMSET(&none, 0, sizeof none);
        cfg = &none;
    }
    n = cfg->server_name ? ak__strlen(cfg->server_name) : 0;
    if (n >= sizeof tls->server_name) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "TLS server name too long");
    tls = (ak_tls *)ak_alloc(ak_context_allocator(ctx), sizeof *tls);
    if (!tls) return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory for TLS");
    AK_MEMSET(tls, 0, sizeof *tls);
    tls->ctx = ctx;
    if (n) AK_MEMCPY(tls->server_name, cfg->server_name, n);
    mbedtls_ssl_config_init(&tls->conf);
    mbedtls_x509_crt_init(&tls->ca);
    mbedtls_ctr_drbg_init(&tls->drbg);
    if ((rc = ak__tls_configure(tls, cfg, err)) != AK_OK) {
        ak_tls_free(tls);
        return rc;
    }
    *out = tls;
    return AK_OK;
}

AKDEF void ak_tls_free(ak_tls *tls) {
    if (!tls) return;
    mbedtls_ssl_config_free(&tls->conf);
    mbedtls_x509_crt_free(&tls->ca);
    mbedtls_ctr_drbg_free(&tls->drbg);
    ak_free(ak_context_allocator(tls->ctx), tls, sizeof *tls);
}

/* ---- the TLS stream: mbedTLS over the inner stream ---- */

/* mbedTLS's I/O callbacks: the inner stream's results in mbedTLS terms. An inner error is
   kept so the caller sees "connection reset", not a generic TLS failure. */
AK_PRIVATE int ak__tls_io_rc(ak__tls_stream *t, ak_result rc, size_t n, int want_code) {
    if (rc == AK_OK) return (int)n;
    if (rc == AK_PENDING) return want_code;
    t->io_rc = rc;
    return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
}

AK_PRIVATE int ak__tls_send(void *ud, const unsigned char *buf, size_t len) {
    ak__tls_stream *t = (ak__tls_stream *)ud;
    size_t sent = 0;
    ak_result rc;
    if (len > 0x7FFFFFFF) len = 0x7FFFFFFF;
    rc = t->inner->vt->write(t->inner, buf, len, &sent, &t->io_err);
    return ak__tls_io_rc(t, rc, sent, MBEDTLS_ERR_SSL_WANT_WRITE);
}

AK_PRIVATE int ak__tls_recv(void *ud, unsigned char *buf, size_t len) {
    ak__tls_stream *t = (ak__tls_stream *)ud;
    size_t got = 0;
    ak_result rc;
    if (len > 0x7FFFFFFF) len = 0x7FFFFFFF;
    rc = t->inner->vt->read(t->inner, buf, len, &got, &t->io_err);
    return ak__tls_io_rc(t, rc, got, MBEDTLS_ERR_SSL_WANT_READ);
}

/* WANT_READ / WANT_WRITE become AK_PENDING with the matching wish. */
AK_PRIVATE int ak__tls_would_block(ak__tls_stream *t, int rc) {
    t->base.fd = t->inner->fd;
    if (rc == MBEDTLS_ERR_SSL_WANT_READ) t->base.want = AK_NET_WANT_READ;
    else if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) t->base.want = AK_NET_WANT_WRITE;
    else return 0;
    return 1;
}

/* A failed handshake: the certificate problem in mbedTLS's words when there is one. */
AK_PRIVATE ak_result ak__tls_handshake_error(ak__tls_stream *t, int rc, ak_error *err) {
    uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
    char info[512], *p;
    if (t->io_rc != AK_OK) return ak_error_set(err, t->io_rc, "TLS handshake with %s: %s", t->name, t->io_err.message);
    if (flags && flags != (uint32_t)-1) {
#if !defined(MBEDTLS_X509_REMOVE_INFO)
        if (mbedtls_x509_crt_verify_info(info, sizeof info, "", flags) < 0) info[0] = 0;
        for (p = info; *p; p++) /* one line: ';' between the reasons */
            if (*p == '\n') *p = p[1] ? ';' : 0;
#else
        ak_buf b;
        ak_buf_init_fixed(&b, info, sizeof info);
        ak_buf_printf(&b, "verify flags 0x%x", (unsigned)flags);
        AK__UNUSED(p);
#endif
        return ak_error_set(err, AK_ERR_TLS, "certificate verification failed for %s: %s", t->name, info);
    }
    {
        char what[300];
        ak_buf b;
        ak_buf_init_fixed(&b, what, sizeof what);
        ak_buf_printf(&b, "TLS handshake with %s failed", t->name);
        return ak__tls_fail(err, what, rc);
    }
}

AK_PRIVATE ak_result ak__tls_connect(ak_net_stream *s, ak_error *err) {
    ak__tls_stream *t = (ak__tls_stream *)s;
    ak_result rc;
    int r;
    if (t->ready) return AK_OK;
    rc = t->inner->vt->connect(t->inner, err);
    s->fd = t->inner->fd;
    s->want = t->inner->want;
    if (rc != AK_OK) return rc;
    r = mbedtls_ssl_handshake(&t->ssl);
    if (r == 0) {
        t->ready = 1;
        return AK_OK;
    }
    if (ak__tls_would_block(t, r)) return AK_PENDING;
    return ak__tls_handshake_error(t, r, err);
}

AK_PRIVATE ak_result ak__tls_error(ak__tls_stream *t, int r, const char *what, ak_error *err) {
    if (t->io_rc != AK_OK) return ak_error_set(err, t->io_rc, "%s", t->io_err.message);
    return ak__tls_fail(err, what, r);
}

AK_PRIVATE ak_result ak__tls_read(ak_net_stream *s, void *buf, size_t cap, size_t *got, ak_error *err) {
    ak__tls_stream *t = (ak__tls_stream *)s;
    int r;
    *got = 0;
    for (;;) {
        r = mbedtls_ssl_read(&t->ssl, (unsigned char *)buf, cap);
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
        if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) continue; /* TLS 1.3 (3.x) */
#endif
        break;
    }
    if (r > 0) {
        *got = (size_t)r;
        return AK_OK;
    }
    if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return AK_OK; /* the end */
    /* The TCP connection ended without a close_notify: not a clean end (the bytes before
       may be cut short), but a closed connection, which is what a stale keep-alive
       connection looks like and what a reused one may be retried after. */
    if (r == MBEDTLS_ERR_SSL_CONN_EOF && t->io_rc == AK_OK)
        return ak_error_set(err, AK_ERR_CLOSED, "connection closed without a TLS close_notify");
    if (ak__tls_would_block(t, r)) return AK_PENDING;
    return ak__tls_error(t, r, "TLS read failed", err);
}

AK_PRIVATE ak_result ak__tls_write(ak_net_stream *s, const void *buf, size_t len, size_t *sent,
                                   ak_error *err) {
    ak__tls_stream *t = (ak__tls_stream *)s;
    int r = mbedtls_ssl_write(&t->ssl, (const unsigned char *)buf, len);
    *sent = 0;
    if (r >= 0) {
        *sent = (size_t)r;
        return AK_OK;
    }
    if (ak__tls_would_block(t, r)) return AK_PENDING;
    return ak__tls_error(t, r, "TLS write failed", err);
}

AK_PRIVATE void ak__tls_close(ak_net_stream *s) {
    ak__tls_stream *t = (ak__tls_stream *)s;
    if (t->ready) (void)mbedtls_ssl_close_notify(&t->ssl); /* best effort, never waits */
    mbedtls_ssl_free(&t->ssl);
    t->inner->vt->close(t->inner);
    ak_free(ak_context_allocator(t->tls->ctx), t, sizeof *t);
}

static const ak_net_stream_vtable ak__tls_vtable = {
    ak__tls_connect, ak__tls_read, ak__tls_write, ak__tls_close
};

AKDEF ak_result ak_tls_stream_wrap(ak_tls *tls, ak_net_stream *inner, const char *host,
                                   size_t host_len, ak_net_stream **out, ak_error *err) {
    ak__tls_stream *t;
    int rc;
    *out = NULL;
    if (!tls || !inner || (!tls->server_name[0] && (!host || !host_len || host_len >= sizeof t->name))) {
        if (inner) inner->vt->close(inner);
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "TLS needs a stream and a host name");
    }
    t = (ak__tls_stream *)ak_alloc(ak_context_allocator(tls->ctx), sizeof *t);
    if (!t) {
        inner->vt->close(inner);
        return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory for a TLS stream");
    }
    AK_MEMSET(t, 0, sizeof *t);
    t->base.vt = &ak__tls_vtable;
    t->base.fd = inner->fd;
    t->inner = inner;
    t->tls = tls;
    if (tls->server_name[0]) AK_MEMCPY(t->name, tls->server_name, ak__strlen(tls->server_name));
    else AK_MEMCPY(t->name, host, host_len);
    mbedtls_ssl_init(&t->ssl);
    *out = &t->base; /* from here on, closing it cleans up everything */
    if ((rc = mbedtls_ssl_setup(&t->ssl, &tls->conf)) != 0) goto fail;
    if ((rc = mbedtls_ssl_set_hostname(&t->ssl, t->name)) != 0) goto fail; /* SNI + name check */
    mbedtls_ssl_set_bio(&t->ssl, t, ak__tls_send, ak__tls_recv, NULL);
    return AK_OK;
fail:
    ak__tls_close(&t->base);
    *out = NULL;
    return ak__tls_fail(err, "cannot set up a TLS session", rc);
}

/* The transport's https: one shared ak_tls, made on first use. */
AK_PRIVATE ak_result ak__transport_wrap_tls(ak_posix_transport *t, const ak_url *u,
                                            ak_net_stream **s, ak_error *err) {
    ak_net_stream *inner = *s;
    ak_result rc;
    *s = NULL;
    if (!t->tls) {
        ak_tls *tls;
        if ((rc = ak_tls_new(t->desc.ctx, &t->desc.tls, &tls, err)) != AK_OK) {
            inner->vt->close(inner);
            return rc;
        }
        t->tls = tls;
    }
    return ak_tls_stream_wrap((ak_tls *)t->tls, inner, u->host, u->host_len, s, err);
}

#endif /* AK_ENABLE_MBEDTLS */
/* ---- end src/tls.c ---- */

/* ---- begin src/model.c ---- */
/* >>model implementation: data model helpers, the call driver with retries, the adapter
   engine (decoder + HTTP model) */


/* ---- finish reasons ------------------------------------------------------------------- */

static const char *const ak__finish_names[] = {"unknown", "stop",    "length",   "blocked", "interrupted",
                                                "other",   "aborted", "detached", "failed"};

AKDEF const char *ak_finish_reason_name(ak_finish_reason r) {
    return (unsigned)r < AK__COUNTOF(ak__finish_names) ? ak__finish_names[r] : "unknown";
}

AKDEF ak_finish_reason ak_finish_reason_from_name(const char *name) {
    unsigned i;
    for (i = 0; name && i < AK__COUNTOF(ak__finish_names); i++)
        if (ak__streq(name, ak__finish_names[i])) return (ak_finish_reason)i;
    return AK_FINISH_UNKNOWN;
}

/* ---- messages and parts --------------------------------------------------------------- */

/* Part kinds by key; a part is identified by the first of these keys it has. */
static const struct { const char *key; ak_part_kind kind; } ak__part_keys[] = {
    {"text", AK_PART_TEXT},         {"media", AK_PART_MEDIA},
    {"toolRequest", AK_PART_TOOL_REQUEST}, {"toolResponse", AK_PART_TOOL_RESPONSE},
    {"reasoning", AK_PART_REASONING}, {"data", AK_PART_DATA},
    {"custom", AK_PART_CUSTOM},     {"resource", AK_PART_RESOURCE},
};

AKDEF ak_part_kind ak_part_kind_of(const ak_json *part) {
    unsigned i;
    for (i = 0; i < AK__COUNTOF(ak__part_keys); i++)
        if (ak_json_get(part, ak__part_keys[i].key)) return ak__part_keys[i].kind;
    return AK_PART_UNKNOWN;
}

AKDEF const char *ak_msg_role(const ak_json *msg) { return ak_json_get_str(msg, "role"); }

AKDEF void ak_msg_text(const ak_json *msg, ak_buf *out) {
    const ak_json *p;
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next) {
        const ak_json *t = ak_json_get(p, "text");
        if (ak_json_is(t, AK_JSON_STRING)) ak_buf_append(out, t->u.str, t->len);
    }
}

AKDEF ak_json *ak_msg_new(ak_json_doc *d, const char *role) {
    ak_json *m = ak_json_new_object(d);
    if (!m || ak_json_set_str(d, m, "role", role) != AK_OK ||
        ak_json_set(d, m, "content", ak_json_new_array(d)) != AK_OK)
        return NULL;
    return m;
}

AKDEF ak_result ak_msg_add(ak_json *msg, ak_json *part) {
    return ak_json_push(ak_json_get(msg, "content"), part);
}

/* {key: value} */
AK_PRIVATE ak_json *ak__single(ak_json_doc *d, const char *key, ak_json *value) {
    ak_json *o = ak_json_new_object(d);
    return o && ak_json_set(d, o, key, value) == AK_OK ? o : NULL;
}

AKDEF ak_json *ak_part_textn(ak_json_doc *d, const char *text, size_t len) {
    return ak__single(d, "text", ak_json_new_strn(d, text, len));
}

AKDEF ak_json *ak_part_text(ak_json_doc *d, const char *text) {
    return ak__single(d, "text", ak_json_new_str(d, text));
}

AKDEF ak_json *ak_part_reasoning(ak_json_doc *d, const char *text) {
    return ak__single(d, "reasoning", ak_json_new_str(d, text));
}

AKDEF ak_json *ak_part_media(ak_json_doc *d, const char *url, const char *content_type) {
    ak_json *m = ak_json_new_object(d);
    if (!m || ak_json_set_str(d, m, "url", url) != AK_OK) return NULL;
    if (content_type && ak_json_set_str(d, m, "contentType", content_type) != AK_OK) return NULL;
    return ak__single(d, "media", m);
}

/* {<kind>: {name, ref?, <value_key>?}}: the key order Genkit 1.42.0 writes, so our JSON is
   byte-identical to theirs. */
AK_PRIVATE ak_json *ak__tool_part(ak_json_doc *d, const char *kind, const char *name,
                                  const char *ref, const char *value_key, const ak_json *value) {
    ak_json *t = ak_json_new_object(d);
    if (!t || ak_json_set_str(d, t, "name", name) != AK_OK) return NULL;
    if (ref && ak_json_set_str(d, t, "ref", ref) != AK_OK) return NULL;
    if (value && ak_json_set(d, t, value_key, ak_json_copy(d, value)) != AK_OK) return NULL;
    return ak__single(d, kind, t);
}

AKDEF ak_json *ak_part_tool_request(ak_json_doc *d, const char *name, const char *ref,
                                    const ak_json *input) {
    return ak__tool_part(d, "toolRequest", name, ref, "input", input);
}

AKDEF ak_json *ak_part_tool_response(ak_json_doc *d, const char *name, const char *ref,
                                     const ak_json *output) {
    return ak__tool_part(d, "toolResponse", name, ref, "output", output);
}

AK_PRIVATE ak_result ak__part_invalid(ak_error *err, const char *what) {
    return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "%s", what);
}

/* The named member, when present, must be a string. */
AK_PRIVATE int ak__opt_str(const ak_json *o, const char *key) {
    const ak_json *v = ak_json_get(o, key);
    return !v || v->type == AK_JSON_STRING;
}

AKDEF ak_result ak_part_validate(const ak_json *part, ak_error *err) {
    unsigned i, kinds = 0;
    const ak_json *v;
    if (!ak_json_is(part, AK_JSON_OBJECT)) return ak__part_invalid(err, "a part must be an object");
    for (i = 0; i < AK__COUNTOF(ak__part_keys); i++) kinds += ak_json_get(part, ak__part_keys[i].key) != NULL;
    if (kinds != 1)
        return ak__part_invalid(err, "a part needs exactly one of text, media, toolRequest, toolResponse, "
                                     "reasoning, data, custom, resource");
    if (!ak__opt_str(part, "text") || !ak__opt_str(part, "reasoning"))
        return ak__part_invalid(err, "text and reasoning must be strings");
    v = ak_json_get(part, "metadata");
    if (v && v->type != AK_JSON_OBJECT) return ak__part_invalid(err, "metadata must be an object");
    if ((v = ak_json_get(part, "media")) != NULL &&
        (!ak_json_is(v, AK_JSON_OBJECT) || !ak_json_get_str(v, "url") || !ak__opt_str(v, "contentType")))
        return ak__part_invalid(err, "media needs a string url");
    if ((v = ak_json_get(part, "toolRequest")) == NULL) v = ak_json_get(part, "toolResponse");
    if (v && (!ak_json_is(v, AK_JSON_OBJECT) || !ak_json_get_str(v, "name") || !ak__opt_str(v, "ref")))
        return ak__part_invalid(err, "tool requests and responses need a string name (and a string ref)");
    if ((v = ak_json_get(part, "custom")) != NULL && v->type != AK_JSON_OBJECT)
        return ak__part_invalid(err, "custom must be an object");
    if ((v = ak_json_get(part, "resource")) != NULL && !ak_json_get_str(v, "uri"))
        return ak__part_invalid(err, "resource needs a string uri");
    return AK_OK;
}

AKDEF ak_result ak_msg_validate(const ak_json *msg, ak_error *err) {
    static const char *const roles[] = {"user", "model", "system", "tool"};
    const char *role = ak_msg_role(msg);
    const ak_json *content = ak_json_get(msg, "content"), *p, *md = ak_json_get(msg, "metadata");
    size_t i = 0, r = 0;
    if (!ak_json_is(msg, AK_JSON_OBJECT)) return ak__part_invalid(err, "a message must be an object");
    while (role && r < AK__COUNTOF(roles) && !ak__streq(role, roles[r])) r++;
    if (!role || r == AK__COUNTOF(roles)) return ak__part_invalid(err, "role must be one of user, model, system, tool");
    if (!ak_json_is(content, AK_JSON_ARRAY)) return ak__part_invalid(err, "content must be an array of parts");
    if (md && md->type != AK_JSON_OBJECT) return ak__part_invalid(err, "metadata must be an object");
    for (p = content->u.first; p; p = p->next, i++) {
        ak_error inner;
        if (ak_part_validate(p, &inner) != AK_OK)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "content[%zu]: %s", i, inner.message);
    }
    return AK_OK;
}

AKDEF ak_result ak_data_url_split(const char *url, const char **mime, size_t *mime_len,
                                  const char **data, size_t *data_len) {
    const char *p, *comma, *b64 = NULL;
    if (!url || !ak__starts_with(url, "data:")) return AK_ERR_INVALID_ARGUMENT;
    for (comma = url + 5; *comma && *comma != ','; comma++)
        if (*comma == ';') b64 = comma;
    if (!*comma || !b64 || comma - b64 != 7 || AK_MEMCMP(b64, ";base64", 7) != 0)
        return AK_ERR_INVALID_ARGUMENT;
    for (p = url + 5; p < b64 && *p != ';'; p++) {
    }
    *mime = url + 5;
    *mime_len = (size_t)(p - (url + 5));
    *data = comma + 1;
    *data_len = ak__strlen(comma + 1);
    return AK_OK;
}

/* ---- model call driver ---------------------------------------------------------------- */

AKDEF void ak_model_call_init(ak_model_call *call, ak_context *ctx, const ak_json *request,
                              ak_json_doc *out) {
    const ak_json *msgs = ak_json_get(request, "messages"), *m;
    AK_MEMSET(call, 0, sizeof *call);
    call->ctx = ctx;
    call->request = request;
    call->out = out;
    call->retry_after_ms = -1;
    if (ak_json_len(msgs) && out) {
        const ak_json **arr = (const ak_json **)ak_arena_alloc(&out->arena, msgs->len * sizeof *arr);
        size_t i = 0;
        if (!arr) {
            out->err = AK_ERR_OUT_OF_MEMORY;
            return;
        }
        for (m = msgs->u.first; m; m = m->next) arr[i++] = m;
        call->messages = arr;
        call->message_count = i;
    }
}

AKDEF ak_json *ak_model_request_json(const ak_model_call *call, ak_json_doc *d) {
    ak_json *r = ak_json_new_object(d), *msgs = ak_json_new_array(d), *tail = NULL;
    const ak_json *m;
    size_t i;
    if (!r || !msgs || ak_json_set(d, r, "messages", msgs) != AK_OK) return NULL;
    for (i = 0; i < call->message_count; i++) {
        ak_json *c = ak_json_copy(d, call->messages[i]);
        if (!c) return NULL;
        if (tail) tail->next = c;
        else msgs->u.first = c;
        tail = c;
        msgs->len++;
    }
    for (m = ak_json_first(call->request); m; m = m->next)
        if (!ak__eqn(m->key, m->key_len, "messages") && ak_json_add(d, r, m->key, m->key_len, ak_json_copy(d, m)) != AK_OK)
            return NULL;
    return r;
}

AKDEF ak_result ak_model_call_emit(ak_model_call *call, const ak_json *chunk) {
    ak_result rc = AK_OK;
    if (call->stream && call->on_chunk) rc = call->on_chunk(call->chunk_ud, chunk);
    call->chunks++;
    return rc;
}

AKDEF void ak_model_call_succeed(ak_model_call *call, ak_json *response) {
    call->response = response;
    call->state = AK_CALL_DONE;
}

AKDEF void ak_model_call_fail(ak_model_call *call, ak_status status, int retryable,
                              int64_t retry_after_ms, const char *fmt, ...) {
    ak_buf b;
    va_list ap;
    call->state = AK_CALL_FAILED;
    call->retryable = retryable;
    call->retry_after_ms = retry_after_ms;
    call->error.code = AK_ERR_MODEL;
    call->error.status = status;
    call->error.offset = 0;
    ak_buf_init_fixed(&b, call->error.message, sizeof call->error.message);
    va_start(ap, fmt);
    ak__vfmt(&b, fmt, ap);
    va_end(ap);
}

/* Delay before attempt n+1 after n failed attempts. */
AK_PRIVATE int64_t ak__retry_delay(ak_model_call *call) {
    const ak_retry_policy *p = &call->retry;
    int64_t max = AK__DEF(p->max_delay_ms, 30000), d = AK__DEF(p->initial_delay_ms, 500);
    int i;
    if (call->retry_after_ms >= 0) return AK__MIN(call->retry_after_ms, max);
    for (i = 1; i < call->attempts && d < max; i++) d *= 2;
    d = AK__MIN(d, max);
    if (!p->no_jitter) {
        /* "Equal jitter": half the delay fixed, half random, so retries spread out but never
           come back sooner than half the backoff. */
        uint32_t r;
        if (ak_random(call->ctx, &r, sizeof r) == AK_OK) d = d / 2 + (int64_t)((uint64_t)(d / 2) * r / 0xFFFFFFFFu);
    }
    return d;
}

/* After an attempt ended: schedule a retry when allowed, else report the outcome. */
AK_PRIVATE ak_result ak__call_settle(ak_model_call *call) {
    int max_attempts = AK__DEF(call->retry.max_attempts, 3);
    if (call->state == AK_CALL_FAILED && call->retryable && call->chunks == 0 &&
        call->attempts < max_attempts) {
        int64_t delay = ak__retry_delay(call);
        ak_log(call->ctx, AK_LOG_INFO, "model %s: %s (%s), retry %d/%d in %lld ms",
               call->model->name ? call->model->name : "?", call->error.message,
               ak_status_name(call->error.status), call->attempts, max_attempts - 1, (long long)delay);
        call->state = AK_CALL_WAITING;
        call->wake_at = ak_mono_ms(call->ctx) + delay;
        return AK_PENDING;
    }
    return AK_OK;
}

AK_PRIVATE ak_result ak__call_attempt(ak_model_call *call) {
    ak_result rc;
    call->attempts++;
    call->retryable = 0;
    call->retry_after_ms = -1;
    call->response = NULL;
    ak_error_clear(&call->error);
    call->state = AK_CALL_RUNNING;
    rc = call->model->start(call->model, call);
    if (rc == AK_PENDING && call->state == AK_CALL_RUNNING) return AK_PENDING;
    if (rc != AK_OK && rc != AK_PENDING && call->state == AK_CALL_RUNNING)
        ak_model_call_fail(call, ak_result_status(rc), 0, -1, "%s", ak_result_str(rc));
    return ak__call_settle(call);
}

AKDEF ak_result ak_model_call_start(ak_model_call *call, ak_model *model) {
    if (!call || !model || !model->start || !call->request || !call->out)
        return AK_ERR_INVALID_ARGUMENT;
    if (call->out->err) return call->out->err;
    call->model = model;
    call->attempts = 0;
    call->chunks = 0;
    return ak__call_attempt(call);
}

AKDEF ak_result ak_model_call_poll(ak_model_call *call, int wait_ms) {
    ak_result rc;
    switch (call->state) {
    case AK_CALL_RUNNING:
        rc = call->model->poll ? call->model->poll(call->model, call, wait_ms) : AK_OK;
        if (rc == AK_PENDING && call->state == AK_CALL_RUNNING) return AK_PENDING;
        if (call->state == AK_CALL_RUNNING) /* a poll that returns done must have settled */
            ak_model_call_fail(call, AK_STATUS_INTERNAL, 0, -1, "model %s ended a call without a result",
                               call->model->name ? call->model->name : "?");
        return ak__call_settle(call);
    case AK_CALL_WAITING: {
        int64_t left = call->wake_at - ak_mono_ms(call->ctx);
        if (left > 0 && wait_ms > 0) {
            ak_sleep_ms(call->ctx, AK__MIN(left, (int64_t)wait_ms));
            left = call->wake_at - ak_mono_ms(call->ctx);
        }
        return left > 0 ? AK_PENDING : ak__call_attempt(call);
    }
    case AK_CALL_DONE: case AK_CALL_FAILED: return AK_OK;
    case AK_CALL_IDLE: break;
    }
    return AK_ERR_STATE;
}

AKDEF void ak_model_call_cancel(ak_model_call *call) {
    if (call->state == AK_CALL_RUNNING && call->model->cancel) call->model->cancel(call->model, call);
    if (call->state == AK_CALL_RUNNING || call->state == AK_CALL_WAITING || call->state == AK_CALL_IDLE)
        ak_model_call_fail(call, AK_STATUS_CANCELLED, 0, -1, "the model call was cancelled");
}

AKDEF ak_result ak_model_generate(ak_context *ctx, ak_model *model, const ak_json *request,
                                  ak_json_doc *out, ak_json **response, ak_error *err) {
    ak_model_call call;
    ak_result rc;
    ak_model_call_init(&call, ctx, request, out);
    *response = NULL;
    rc = ak_model_call_start(&call, model);
    while (rc == AK_PENDING) rc = ak_model_call_poll(&call, 50);
    if (rc != AK_OK) return ak_error_set(err, rc, "%s", ak_result_str(rc));
    if (call.state != AK_CALL_DONE) {
        if (err) *err = call.error;
        return AK_ERR_MODEL;
    }
    *response = call.response;
    return AK_OK;
}

/* ---- the adapter engine: response decoding ------------------------------------------ */

#ifndef AK_MAX_RESPONSE_BODY
#define AK_MAX_RESPONSE_BODY ((size_t)16 << 20)
#endif

/* ASCII case-insensitive a[0..n) == b (NUL-terminated, lower case). */
AK_PRIVATE int ak__ieq(const char *a, size_t n, const char *b) {
    size_t i;
    for (i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != b[i] || !b[i]) return 0;
    }
    return b[n] == 0;
}

/* A non-negative decimal (fraction allowed: "1.5"), scaled by `scale` (1 or 1000: the
   fraction's part stays below 2^32); -1 if not one. */
AK_PRIVATE int64_t ak__parse_delay(const char *s, size_t n, int64_t scale) {
    int64_t whole = 0;
    uint32_t frac = 0, div = 1; /* six digits at most: 32-bit arithmetic is enough */
    size_t i = 0;
    int digits = 0;
    while (i < n && s[i] == ' ') i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++)
        if (whole < INT64_C(1) << 40) whole = whole * 10 + (s[i] - '0');
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++)
            if (div < 1000000) frac = frac * 10 + (uint32_t)(s[i] - '0'), div *= 10;
    while (i < n && s[i] == ' ') i++;
    if (!digits || i != n) return -1;
    return whole * scale + (int64_t)(frac * (uint32_t)scale / div);
}

/* "<adapter>: out of memory" (shared by the adapters). */
AK_PRIVATE ak_result ak__decode_oom(ak_decode *dc) {
    return ak_decode_fail(dc, AK_STATUS_RESOURCE_EXHAUSTED, "%s: out of memory", dc->adapter->name);
}

/* SSE / NDJSON callbacks: parse the event as JSON when it is JSON, hand it to the adapter. */
AK_PRIVATE ak_result ak__decode_event(ak_decode *dc, const char *name, const char *data, size_t len) {
    ak_json *json = NULL;
    size_t i = 0;
    ak_result rc;
    while (i < len && AK__JWS(data[i])) i++;
    if (i < len && (data[i] == '{' || data[i] == '[')) {
        ak_error e;
        if ((rc = ak_json_parse_value(&dc->scratch, data, len, NULL, &json, &e)) == AK_ERR_OUT_OF_MEMORY)
            return ak__decode_oom(dc);
        if (rc != AK_OK) json = NULL;
    }
    rc = dc->adapter->event(dc, name, data, len, json);
    ak_json_doc_reset(&dc->scratch);
    if (rc == AK_OK && dc->failed) rc = AK_ERR_MODEL; /* the adapter ended the stream */
    return rc;
}

AK_PRIVATE ak_result ak__decode_sse(void *ud, const ak_sse_event *ev) {
    int named = !ak__eqn(ev->event, ev->event_len, "message");
    return ak__decode_event((ak_decode *)ud, named ? ev->event : NULL, ev->data, ev->data_len);
}

AK_PRIVATE ak_result ak__decode_line(void *ud, const char *line, size_t len) {
    return ak__decode_event((ak_decode *)ud, NULL, line, len);
}

AKDEF ak_result ak_decode_init(ak_decode *dc, ak_context *ctx, const ak_adapter *adapter, int stream,
                               ak_json_doc *out) {
    const ak_allocator *a = ak_context_allocator(ctx);
    AK_MEMSET(dc, 0, sizeof *dc);
    dc->ctx = ctx;
    dc->adapter = adapter;
    dc->out = out;
    dc->stream = stream;
    dc->retry_after_ms = -1;
    dc->max_body = AK_MAX_RESPONSE_BODY;
    ak_json_doc_init(&dc->scratch, a);
    ak_buf_init(&dc->body, a);
    if (adapter->state_size && !(dc->state = ak_alloc(a, adapter->state_size))) return AK_ERR_OUT_OF_MEMORY;
    if (dc->state) AK_MEMSET(dc->state, 0, adapter->state_size);
    if (stream) {
        size_t size = adapter->format == AK_STREAM_NDJSON ? sizeof(ak_ndjson_parser) : sizeof(ak_sse_parser);
        if (!(dc->framing = ak_alloc(a, size))) return AK_ERR_OUT_OF_MEMORY;
        if (adapter->format == AK_STREAM_NDJSON) ak_ndjson_init((ak_ndjson_parser *)dc->framing, a, ak__decode_line, dc);
        else ak_sse_init((ak_sse_parser *)dc->framing, a, ak__decode_sse, dc);
    }
    if (adapter->init) adapter->init(dc);
    return AK_OK;
}

AKDEF void ak_decode_free(ak_decode *dc) {
    const ak_allocator *a = ak_context_allocator(dc->ctx);
    if (dc->adapter && dc->adapter->cleanup && dc->state) dc->adapter->cleanup(dc);
    if (dc->framing) {
        if (dc->adapter->format == AK_STREAM_NDJSON) {
            ak_ndjson_free((ak_ndjson_parser *)dc->framing);
            ak_free(a, dc->framing, sizeof(ak_ndjson_parser));
        } else {
            ak_sse_free((ak_sse_parser *)dc->framing);
            ak_free(a, dc->framing, sizeof(ak_sse_parser));
        }
    }
    if (dc->state) ak_free(a, dc->state, dc->adapter->state_size);
    ak_buf_free(&dc->body);
    ak_json_doc_free(&dc->scratch);
    dc->framing = dc->state = NULL;
}

AK_PRIVATE int ak__decode_ok(const ak_decode *dc) { return dc->status >= 200 && dc->status < 300; }

AKDEF ak_result ak_decode_status(ak_decode *dc, int status) {
    dc->status = status;
    return AK_OK;
}

AKDEF ak_result ak_decode_header(ak_decode *dc, const char *name, size_t name_len, const char *value,
                                 size_t value_len) {
    int64_t ms;
    if (ak__ieq(name, name_len, "retry-after-ms")) {
        if ((ms = ak__parse_delay(value, value_len, 1)) >= 0) dc->retry_after_ms = ms;
    } else if (ak__ieq(name, name_len, "retry-after")) {
        /* retry-after-ms, when also sent, is the more precise of the two */
        if (dc->retry_after_ms < 0 && (ms = ak__parse_delay(value, value_len, 1000)) >= 0) dc->retry_after_ms = ms;
    } else if (ak__ieq(name, name_len, "x-should-retry")) {
        if (ak__ieq(value, value_len, "false")) dc->no_retry = 1;
    }
    return AK_OK;
}

AKDEF ak_result ak_decode_emit(ak_decode *dc, const ak_json *chunk) {
    dc->chunks++;
    return dc->on_chunk ? dc->on_chunk(dc->chunk_ud, chunk) : AK_OK;
}

AKDEF ak_result ak_decode_fail(ak_decode *dc, ak_status status, const char *fmt, ...) {
    va_list ap;
    if (dc->failed) return AK_ERR_MODEL; /* the first failure is the one reported */
    dc->failed = 1;
    dc->response = NULL;
    va_start(ap, fmt);
    ak__error_vset(&dc->error, AK_ERR_MODEL, status, fmt, ap);
    va_end(ap);
    return AK_ERR_MODEL;
}

/* Appends base (def when NULL or empty) without trailing slashes, then path. */
AK_PRIVATE void ak__model_url(ak_buf *url, const char *base, const char *def, const char *path) {
    size_t n;
    if (!base || !*base) base = def;
    n = ak__strlen(base);
    while (n && base[n - 1] == '/') n--;
    ak_buf_append(url, base, n);
    ak_buf_puts(url, path);
}

/* data[0..len) without surrounding (JSON) whitespace equals s. */
AK_PRIVATE int ak__model_trim_eq(const char *data, size_t len, const char *s) {
    while (len && AK__JWS(*data)) data++, len--;
    while (len && AK__JWS(data[len - 1])) len--;
    return ak__eqn(data, len, s);
}

/* The stream ended without its end marker: a cut connection, so UNAVAILABLE and retryable
   (the driver retries only while nothing has been streamed). */
AK_PRIVATE ak_result ak__decode_truncated(ak_decode *dc, const char *message) {
    ak_decode_fail(dc, AK_STATUS_UNAVAILABLE, "%s", message);
    dc->retryable = 1;
    return AK_ERR_MODEL;
}

AKDEF ak_result ak_decode_body(ak_decode *dc, const char *data, size_t len) {
    ak_error e;
    ak_result rc;
    if (dc->failed) return AK_ERR_MODEL;
    if (dc->stream && ak__decode_ok(dc)) {
        ak_error_clear(&e); /* a chunk consumer that stops the parser leaves it alone */
        rc = dc->adapter->format == AK_STREAM_NDJSON ? ak_ndjson_feed((ak_ndjson_parser *)dc->framing, data, len, &e)
                                                    : ak_sse_feed((ak_sse_parser *)dc->framing, data, len, &e);
        if (rc == AK_ERR_CANCELLED && !dc->failed)
            ak_decode_fail(dc, AK_STATUS_CANCELLED, "%s: the chunk consumer cancelled the call", dc->adapter->name);
        else if (rc != AK_OK && !dc->failed)
            ak_decode_fail(dc, rc == AK_ERR_OUT_OF_MEMORY ? AK_STATUS_RESOURCE_EXHAUSTED : AK_STATUS_INTERNAL,
                           "malformed %s stream: %s", dc->adapter->name, e.message[0] ? e.message : ak_result_str(rc));
        return dc->failed ? AK_ERR_MODEL : AK_OK;
    }
    dc->body.max = dc->max_body;
    ak_buf_append(&dc->body, data, len);
    if (dc->body.err == AK_ERR_LIMIT)
        return ak_decode_fail(dc, AK_STATUS_RESOURCE_EXHAUSTED, "%s response body larger than %zu bytes",
                              dc->adapter->name, dc->max_body);
    if (dc->body.err) return ak__decode_oom(dc);
    return AK_OK;
}

/* A non-2xx answer: the provider's own message and hints, Genkit's status for the code. */
AK_PRIVATE void ak__decode_http_error(ak_decode *dc) {
    ak_json *json = NULL;
    int s = dc->status;
    ak_json_parse_value(&dc->scratch, dc->body.ptr ? dc->body.ptr : "", dc->body.len, NULL, &json, NULL);
    ak_decode_fail(dc, ak_status_from_http(s), "%s returned HTTP %d", dc->adapter->name, s);
    dc->failed = 0; /* let the adapter replace the message */
    dc->adapter->error(dc, s, dc->body.ptr ? dc->body.ptr : "", dc->body.len, json);
    dc->failed = 1;
    dc->error.code = AK_ERR_MODEL;
    dc->retryable = (s == 408 || s == 429 || s >= 500) && !dc->no_retry;
}

AK_PRIVATE void ak__decode_transport_error(ak_decode *dc, ak_result rc, const char *msg) {
    ak_status st = rc == AK_ERR_TIMEOUT ? AK_STATUS_DEADLINE_EXCEEDED
                   : rc == AK_ERR_CANCELLED ? AK_STATUS_CANCELLED : AK_STATUS_UNAVAILABLE;
    ak_decode_fail(dc, st, "%s: %s%s%s", dc->adapter->name, ak_result_str(rc), msg ? ": " : "", msg ? msg : "");
    /* a connection that failed or dropped may work next time; TLS and certificate trouble will not */
    dc->retryable = rc == AK_ERR_CONNECT || rc == AK_ERR_CLOSED || rc == AK_ERR_TIMEOUT || rc == AK_ERR_TRUNCATED;
}

AKDEF ak_result ak_decode_done(ak_decode *dc, ak_result rc, const char *msg) {
    ak_error e;
    if (dc->failed) return AK_ERR_MODEL;
    if (rc != AK_OK && !(rc == AK_ERR_TRUNCATED && dc->stream && ak__decode_ok(dc))) {
        ak__decode_transport_error(dc, rc, msg);
        return AK_ERR_MODEL;
    }
    if (!ak__decode_ok(dc)) {
        ak__decode_http_error(dc);
        return AK_ERR_MODEL;
    }
    if (dc->stream) {
        ak_result frc = dc->adapter->format == AK_STREAM_NDJSON ? ak_ndjson_finish((ak_ndjson_parser *)dc->framing, &e)
                                                               : ak_sse_finish((ak_sse_parser *)dc->framing, &e);
        if (frc != AK_OK && !dc->failed) ak_decode_fail(dc, AK_STATUS_INTERNAL, "malformed stream: %s", e.message);
        if (!dc->failed) dc->adapter->end(dc);
        /* a stream cut by the network is only reported as such when the adapter saw no end */
        if (dc->failed && rc == AK_ERR_TRUNCATED) dc->retryable = dc->chunks == 0;
    } else {
        ak_json *json = NULL;
        ak_result prc = ak_json_parse_value(&dc->scratch, dc->body.ptr ? dc->body.ptr : "", dc->body.len, NULL, &json, &e);
        if (prc == AK_ERR_OUT_OF_MEMORY)
            ak__decode_oom(dc);
        else if (prc != AK_OK)
            ak_decode_fail(dc, AK_STATUS_INTERNAL, "%s returned a body that is not JSON: %s", dc->adapter->name, e.message);
        else
            dc->adapter->body(dc, json);
    }
    if (!dc->failed && !dc->response)
        ak_decode_fail(dc, AK_STATUS_INTERNAL, "%s response ended without a result", dc->adapter->name);
    return dc->failed ? AK_ERR_MODEL : AK_OK;
}

AKDEF ak_result ak_decode_finish(ak_decode *dc, ak_json *message, ak_finish_reason reason,
                                 const char *finish_message, ak_json *usage) {
    ak_json_doc *d = dc->out;
    ak_json *r = ak_json_new_object(d);
    ak_json_set(d, r, "message", message);
    ak_json_set_str(d, r, "finishReason", ak_finish_reason_name(reason));
    if (finish_message) ak_json_set_str(d, r, "finishMessage", finish_message);
    if (usage) ak_json_set(d, r, "usage", usage);
    if (d->err || !message) return ak_decode_fail(dc, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    dc->response = r;
    return AK_OK;
}

/* ---- request building ----------------------------------------------------------------- */

AKDEF void ak_http_out_init(ak_http_out *o, const ak_allocator *a) {
    AK_MEMSET(o, 0, sizeof *o);
    ak_buf_init(&o->url, a);
    ak_buf_init(&o->body, a);
    ak_buf_init(&o->header_text, a);
    o->method = "POST";
}

AKDEF void ak_http_out_free(ak_http_out *o) {
    ak_buf_free(&o->url);
    ak_buf_free(&o->body);
    ak_buf_free(&o->header_text);
    o->header_count = 0;
}

/* Header strings live in header_text, which may move as it grows: record offsets while
   building, turn them into pointers once (ak__http_out_seal). */
AKDEF ak_result ak_http_out_header(ak_http_out *o, const char *name, const char *value) {
    if (o->header_count >= AK_MAX_REQUEST_HEADERS) return AK_ERR_LIMIT;
    o->headers[o->header_count].name = (const char *)(uintptr_t)o->header_text.len;
    ak_buf_append(&o->header_text, name, ak__strlen(name) + 1);
    o->headers[o->header_count].value = (const char *)(uintptr_t)o->header_text.len;
    ak_buf_append(&o->header_text, value ? value : "", value ? ak__strlen(value) + 1 : 1);
    o->header_count++;
    return o->header_text.err;
}

AK_PRIVATE void ak__http_out_seal(ak_http_out *o) {
    size_t i;
    for (i = 0; i < o->header_count; i++) {
        o->headers[i].name = o->header_text.ptr + (uintptr_t)o->headers[i].name;
        o->headers[i].value = o->header_text.ptr + (uintptr_t)o->headers[i].value;
    }
}

/* ---- HTTP models ---------------------------------------------------------------------- */

/* What one attempt of an HTTP model call holds while it runs. */
typedef struct ak__http_attempt {
    ak_http_model *m;
    ak_model_call *call;
    ak_decode dc;
    ak_http_out out;
    ak_http_sink sink;
    ak_http_request req;
    void *handle;
    int done;                    /* the transport finished (on_done ran) */
    int64_t deadline;
} ak__http_attempt;

AK_PRIVATE ak_result ak__attempt_chunk(void *ud, const ak_json *chunk) {
    ak__http_attempt *at = (ak__http_attempt *)ud;
    return ak_model_call_emit(at->call, chunk);
}

AK_PRIVATE ak_result ak__sink_status(ak_http_sink *s, int status) {
    return ak_decode_status(&((ak__http_attempt *)s->ud)->dc, status);
}
AK_PRIVATE ak_result ak__sink_header(ak_http_sink *s, const char *n, size_t nl, const char *v, size_t vl) {
    return ak_decode_header(&((ak__http_attempt *)s->ud)->dc, n, nl, v, vl);
}
AK_PRIVATE ak_result ak__sink_body(ak_http_sink *s, const char *data, size_t len) {
    ak__http_attempt *at = (ak__http_attempt *)s->ud;
    ak_result rc = ak_decode_body(&at->dc, data, len);
    /* refusing the body (an in-stream error, a malformed stream) ends the exchange: the
       transport calls nothing more on this sink, on_done included */
    if (rc != AK_OK) at->done = 1;
    return rc;
}
AK_PRIVATE void ak__sink_done(ak_http_sink *s, ak_result rc, const char *msg) {
    ak__http_attempt *at = (ak__http_attempt *)s->ud;
    ak_decode_done(&at->dc, rc, msg);
    at->done = 1;
}

AK_PRIVATE void ak__attempt_free(ak__http_attempt *at) {
    const ak_allocator *a = ak_context_allocator(at->m->ctx);
    ak_decode_free(&at->dc);
    ak_http_out_free(&at->out);
    ak_free(a, at, sizeof *at);
}

/* Hands the attempt's outcome to the call and frees the attempt. */
AK_PRIVATE ak_result ak__attempt_settle(ak__http_attempt *at) {
    ak_model_call *call = at->call;
    ak_decode *dc = &at->dc;
    if (dc->response) ak_model_call_succeed(call, dc->response);
    else ak_model_call_fail(call, dc->error.status ? dc->error.status : AK_STATUS_UNKNOWN, dc->retryable,
                            dc->retry_after_ms, "%s", dc->error.message);
    call->impl = NULL;
    ak__attempt_free(at);
    return AK_OK;
}

AK_PRIVATE ak_result ak__http_model_start(ak_model *model, ak_model_call *call) {
    ak_http_model *m = (ak_http_model *)model->ud;
    const ak_allocator *a = ak_context_allocator(m->ctx);
    ak__http_attempt *at = (ak__http_attempt *)ak_alloc(a, sizeof *at);
    ak_error e;
    size_t i;
    ak_result rc;
    if (!at) {
        ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "out of memory");
        return AK_OK;
    }
    AK_MEMSET(at, 0, sizeof *at);
    at->m = m;
    at->call = call;
    ak_http_out_init(&at->out, a);
    if ((rc = ak_decode_init(&at->dc, m->ctx, m->adapter, call->stream, call->out)) != AK_OK) {
        ak__attempt_free(at);
        ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "out of memory");
        return AK_OK;
    }
    at->dc.on_chunk = ak__attempt_chunk;
    at->dc.chunk_ud = at;
    rc = m->adapter->build(&m->cfg, call->request, call->messages, call->message_count, call->stream, &at->out, &e);
    for (i = 0; rc == AK_OK && i < m->cfg.header_count; i++)
        rc = ak_http_out_header(&at->out, m->cfg.headers[i].name, m->cfg.headers[i].value);
    if (rc == AK_OK && (at->out.url.err || at->out.body.err || at->out.header_text.err)) rc = AK_ERR_OUT_OF_MEMORY;
    if (rc != AK_OK) {
        ak_model_call_fail(call, ak_result_status(rc), 0, -1, "%s: cannot build the request: %s", model->name,
                           rc == AK_ERR_OUT_OF_MEMORY ? "out of memory" : e.message);
        ak__attempt_free(at);
        return AK_OK;
    }
    ak__http_out_seal(&at->out);
    at->req.method = at->out.method;
    at->req.url = at->out.url.ptr;
    at->req.headers = at->out.headers;
    at->req.header_count = at->out.header_count;
    at->req.body = at->out.body.ptr;
    at->req.body_len = at->out.body.len;
    at->req.timeout_ms = call->timeout_ms ? call->timeout_ms : AK__DEF(m->cfg.timeout_ms, 120000);
    at->req.streaming = call->stream;
    at->deadline = ak_mono_ms(m->ctx) + at->req.timeout_ms;
    at->sink.on_status = ak__sink_status;
    at->sink.on_header = ak__sink_header;
    at->sink.on_body = ak__sink_body;
    at->sink.on_done = ak__sink_done;
    at->sink.ud = at;
    call->impl = at;
    rc = m->cfg.transport->start(m->cfg.transport->ud, &at->req, &at->sink, &at->handle);
    if (rc != AK_OK) {
        call->impl = NULL;
        ak_model_call_fail(call, rc == AK_ERR_CONNECT ? AK_STATUS_UNAVAILABLE : ak_result_status(rc),
                           rc == AK_ERR_CONNECT, -1, "%s: cannot send the request: %s", model->name, ak_result_str(rc));
        ak__attempt_free(at);
        return AK_OK;
    }
    return at->done ? ak__attempt_settle(at) : AK_PENDING;
}

AK_PRIVATE ak_result ak__http_model_poll(ak_model *model, ak_model_call *call, int wait_ms) {
    ak_http_model *m = (ak_http_model *)model->ud;
    ak__http_attempt *at = (ak__http_attempt *)call->impl;
    ak_transport *t = m->cfg.transport;
    if (!at) return AK_OK;
    if (!at->done && t->poll) t->poll(t->ud, wait_ms);
    if (at->done) return ak__attempt_settle(at);
    if (ak_mono_ms(m->ctx) >= at->deadline) {
        if (t->cancel) t->cancel(t->ud, at->handle);
        ak__decode_transport_error(&at->dc, AK_ERR_TIMEOUT, "no answer in time");
        return ak__attempt_settle(at);
    }
    return AK_PENDING;
}

AK_PRIVATE void ak__http_model_cancel(ak_model *model, ak_model_call *call) {
    ak_http_model *m = (ak_http_model *)model->ud;
    ak__http_attempt *at = (ak__http_attempt *)call->impl;
    if (!at) return;
    if (!at->done && m->cfg.transport->cancel) m->cfg.transport->cancel(m->cfg.transport->ud, at->handle);
    call->impl = NULL;
    ak__attempt_free(at);
}

AKDEF ak_result ak_http_model_init(ak_http_model *m, ak_context *ctx, const ak_adapter *adapter,
                                   const ak_provider_config *cfg) {
    ak_buf b;
    AK_MEMSET(m, 0, sizeof *m);
    if (!ctx || !adapter || !cfg || !cfg->transport || !cfg->transport->start || !cfg->model)
        return AK_ERR_INVALID_ARGUMENT;
    m->ctx = ctx;
    m->adapter = adapter;
    m->cfg = *cfg;
    ak_buf_init_fixed(&b, m->name, sizeof m->name);
    ak_buf_printf(&b, "%s/%s", adapter->name, cfg->model);
    m->model.name = m->name;
    m->model.start = ak__http_model_start;
    m->model.poll = ak__http_model_poll;
    m->model.cancel = ak__http_model_cancel;
    m->model.ud = m;
    return AK_OK;
}

/* The built-in adapters; NULL where a switch (AK_NO_OPENAI, ...) compiled one out. */
#ifdef AK_NO_OPENAI
#define AK__ADAPTER_OPENAI NULL
#else
#define AK__ADAPTER_OPENAI ak_adapter_openai
#endif
#ifdef AK_NO_ANTHROPIC
#define AK__ADAPTER_ANTHROPIC NULL
#else
#define AK__ADAPTER_ANTHROPIC ak_adapter_anthropic
#endif
#ifdef AK_NO_GEMINI
#define AK__ADAPTER_GEMINI NULL
#else
#define AK__ADAPTER_GEMINI ak_adapter_gemini
#endif
#ifdef AK_NO_OLLAMA
#define AK__ADAPTER_OLLAMA NULL
#else
#define AK__ADAPTER_OLLAMA ak_adapter_ollama
#endif
typedef const ak_adapter *(*ak__adapter_fn)(void);

#ifndef AK_FREESTANDING
AK_PRIVATE const char *ak__env(const char *name) {
    const char *v = name ? getenv(name) : NULL;
    return v && *v ? v : NULL;
}

/* What ak_http_model_from_env looks for, in the order it looks. */
typedef struct ak__env_provider {
    const char *key_var, *url_var; /* either selects the provider; NULL = not used */
    const char *model_var, *default_model;
    const char *switch_name;       /* the macro that compiles the adapter out */
    ak__adapter_fn adapter;        /* NULL when compiled out */
} ak__env_provider;

static const ak__env_provider ak__env_providers[] = {
    {"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "gpt-4o-mini", "AK_NO_OPENAI", AK__ADAPTER_OPENAI},
    {"ANTHROPIC_API_KEY", NULL, "ANTHROPIC_MODEL", "claude-sonnet-4-5", "AK_NO_ANTHROPIC", AK__ADAPTER_ANTHROPIC},
    {"GEMINI_API_KEY", NULL, "GEMINI_MODEL", "gemini-2.5-flash", "AK_NO_GEMINI", AK__ADAPTER_GEMINI},
    {NULL, "OLLAMA_HOST", "OLLAMA_MODEL", "llama3.2", "AK_NO_OLLAMA", AK__ADAPTER_OLLAMA}};

AKDEF ak_result ak_http_model_from_env(ak_http_model *m, ak_context *ctx, ak_transport *transport,
                                       ak_error *err) {
    const ak__env_provider *p, *left_out = NULL;
    const char *left_out_var = NULL;
    ak_provider_config cfg;
    const ak_adapter *adapter;
    ak_result rc;
    size_t i;
    for (i = 0; i < AK__COUNTOF(ak__env_providers); i++) {
        p = &ak__env_providers[i];
        if (!ak__env(p->key_var) && !ak__env(p->url_var)) continue;
        if (!p->adapter) { /* configured, but not in this build: a later provider may be */
            if (!left_out) left_out = p, left_out_var = ak__env(p->key_var) ? p->key_var : p->url_var;
            continue;
        }
        adapter = p->adapter();
        AK_MEMSET(&cfg, 0, sizeof cfg);
        cfg.transport = transport;
        cfg.api_key = ak__env(p->key_var);
        cfg.base_url = ak__env(p->url_var);
        cfg.model = ak__env(p->model_var) ? ak__env(p->model_var) : p->default_model;
        if ((rc = ak_http_model_init(m, ctx, adapter, &cfg)) != AK_OK)
            return ak_error_set(err, rc, "cannot set up the %s model", adapter->name);
        return AK_OK;
    }
    if (left_out)
        return ak_error_set(err, AK_ERR_UNSUPPORTED, "%s is set, but this build has no adapter for it (%s)",
                            left_out_var, left_out->switch_name);
    return ak_error_set(err, AK_ERR_NOT_FOUND, "no provider configured: set OPENAI_API_KEY (or OPENAI_BASE_URL), "
                                              "ANTHROPIC_API_KEY, GEMINI_API_KEY or OLLAMA_HOST");
}
#endif

AKDEF const ak_adapter *ak_adapter_find(const char *name) {
    static const ak__adapter_fn all[] = {AK__ADAPTER_OPENAI, AK__ADAPTER_ANTHROPIC, AK__ADAPTER_GEMINI,
                                         AK__ADAPTER_OLLAMA};
    size_t i;
    for (i = 0; name && i < AK__COUNTOF(all); i++)
        if (all[i] && ak__streq(all[i]()->name, name)) return all[i]();
    return NULL;
}
/* ---- end src/model.c ---- */

#if !defined(AK_NO_OPENAI) || !defined(AK_NO_OLLAMA)
/* ---- begin src/openai.c ---- */
/* >>openai: the OpenAI Chat Completions adapter (also llama.cpp, Ollama /v1, vLLM and the
   other compatible servers), preceded by what ollama.c shares with it: building provider
   JSON from Genkit requests (ak__wire_*) and assembling a streamed answer (ak__acc_*). */


/* ==== shared: request building ========================================================= */

/* Where an adapter puts a Genkit config key: under `to` (NULL: not sent at all), in the
   request itself or where the adapter keeps options (see ak__wire_config). */
typedef struct ak__wire_key {
    const char *from;
    const char *to;
} ak__wire_key;

/* What converting one request needs. */
typedef struct ak__wire {
    ak_json_doc *d;              /* the provider request is built here */
    ak_json *msgs;               /* the provider's message array */
    unsigned flags;
    size_t requests, responses;  /* tool requests / responses without a ref so far */
    char ref[32];                /* the last generated ref */
    ak_error *err;
} ak__wire;

static const char *const ak__wire_part_names[] = {"unknown",   "text", "media",  "toolRequest", "toolResponse",
                                                  "reasoning", "data", "custom", "resource"};

#define AK__PART_BIT(kind) (1u << (unsigned)(kind))

/* Fails unless every part of message i has a kind in `allowed`. */
AK_PRIVATE ak_result ak__wire_parts_allowed(ak__wire *w, const ak_json *msg, size_t i, unsigned allowed,
                                            const char *provider) {
    const ak_json *p;
    size_t j = 0;
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next, j++) {
        ak_part_kind k = ak_part_kind_of(p);
        if (!(allowed & AK__PART_BIT(k)))
            return ak_error_set(w->err, AK_ERR_INVALID_ARGUMENT,
                                "messages[%zu].content[%zu]: %s takes no %s parts in %s messages", i, j, provider,
                                ak__wire_part_names[k], ak_msg_role(msg));
    }
    return AK_OK;
}

/* Checks the shape of request and messages, so the converters can rely on it. */
AK_PRIVATE ak_result ak__wire_validate(const ak_json *request, const ak_json *const *messages, size_t count,
                                       ak_error *err) {
    static const struct { const char *key; ak_json_type type; } shape[] = {
        {"config", AK_JSON_OBJECT}, {"tools", AK_JSON_ARRAY},
        {"toolChoice", AK_JSON_STRING}, {"output", AK_JSON_OBJECT}};
    size_t i;
    for (i = 0; i < AK__COUNTOF(shape); i++) {
        const ak_json *v = ak_json_get(request, shape[i].key);
        if (v && v->type != AK_JSON_NULL && v->type != (uint8_t)shape[i].type)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "request.%s has the wrong type", shape[i].key);
    }
    for (i = 0; i < count; i++) {
        ak_error inner;
        if (ak_msg_validate(messages[i], &inner) != AK_OK)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "messages[%zu]: %s", i, inner.message);
    }
    return AK_OK;
}

/* URL, Content-Type, "Authorization: Bearer <key>" when there is a key, and the body. */
AK_PRIVATE ak_result ak__wire_send(const ak_provider_config *cfg, const char *def_base, const char *path,
                                   const ak_json *body, ak_http_out *out, ak_error *err) {
    ak_result rc;
    ak__model_url(&out->url, cfg->base_url, def_base, path);
    rc = ak_http_out_header(out, "Content-Type", "application/json");
    if (rc == AK_OK && cfg->api_key && *cfg->api_key) {
        ak_buf v;
        ak_buf_init(&v, out->body.alloc);
        ak_buf_puts(&v, "Bearer ");
        ak_buf_puts(&v, cfg->api_key);
        rc = v.err ? v.err : ak_http_out_header(out, "Authorization", v.ptr);
        ak_buf_free(&v);
    }
    if (rc == AK_OK) rc = ak_json_write(body, &out->body);
    if (rc == AK_OK && out->url.err) rc = out->url.err;
    if (rc == AK_ERR_LIMIT) return ak_error_set(err, rc, "more than %d request headers", AK_MAX_REQUEST_HEADERS);
    return rc == AK_OK ? AK_OK : ak__oom(err);
}

/* Builds the body of one provider's request into w->d. */
typedef ak_result (*ak__wire_body_fn)(ak__wire *w, const ak_provider_config *cfg, const ak_json *request,
                                      const ak_json *const *messages, size_t count, int stream, ak_json *body);

/* The whole build of an adapter: checks, the body (made by `body`), URL and headers. */
AK_PRIVATE ak_result ak__wire_build(ak__wire_body_fn body_fn, const char *def_base, const char *path,
                                    const ak_provider_config *cfg, const ak_json *request,
                                    const ak_json *const *messages, size_t count, int stream, ak_http_out *out,
                                    ak_error *err) {
    ak_json_doc d;
    ak__wire w;
    ak_json *body;
    ak_result rc = ak__wire_validate(request, messages, count, err);
    if (rc != AK_OK) return rc;
    if (!cfg->model || !*cfg->model) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "no model id configured");
    ak_json_doc_init(&d, out->body.alloc);
    AK_MEMSET(&w, 0, sizeof w);
    w.d = &d;
    w.flags = cfg->flags;
    w.err = err;
    body = ak_json_new_object(&d);
    rc = body_fn(&w, cfg, request, messages, count, stream, body);
    if (rc == AK_OK) rc = ak__wire_send(cfg, def_base, path, body, out, err);
    ak_json_doc_free(&d);
    return rc;
}

/* JSON.stringify(v) as a string value of d (NULL gives "{}": a tool call without input). */
AK_PRIVATE ak_json *ak__wire_stringify(ak_json_doc *d, const ak_json *v) {
    ak_buf b;
    ak_json *s = NULL;
    ak_buf_init(&b, d->arena.alloc);
    if (!v) ak_buf_puts(&b, "{}");
    else ak_json_write(v, &b);
    if (b.err) d->err = b.err;
    else s = ak_json_new_strn(d, b.ptr, b.len);
    ak_buf_free(&b);
    return s;
}

/* The text of a message's `key` parts ("text" or "reasoning"), and of its data parts as
   JSON when with_data. */
AK_PRIVATE ak_json *ak__wire_text(ak_json_doc *d, const ak_json *msg, const char *key, int with_data) {
    const ak_json *p;
    ak_json *s = NULL;
    ak_buf b;
    ak_buf_init(&b, d->arena.alloc);
    ak_buf_reserve(&b, 1);
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next) {
        const ak_json *t = ak_json_get(p, key);
        if (ak_json_is(t, AK_JSON_STRING)) ak_buf_append(&b, t->u.str, t->len);
        else if (with_data && ak_part_kind_of(p) == AK_PART_DATA) ak_json_write(ak_json_get(p, "data"), &b);
    }
    if (b.err) d->err = b.err;
    else s = ak_json_new_strn(d, b.ptr, b.len);
    ak_buf_free(&b);
    return s;
}

/* Appends {role, content: <the message's text>} to the provider messages; returns it so
   the caller can add fields. */
AK_PRIVATE ak_json *ak__wire_text_msg(ak__wire *w, const char *role, const ak_json *msg, int with_data) {
    ak_json *m = ak_json_new_object(w->d);
    ak_json_set_str(w->d, m, "role", role);
    ak_json_set(w->d, m, "content", ak__wire_text(w->d, msg, "text", with_data));
    ak_json_push(w->msgs, m);
    return m;
}

/* Whether a message holds a part of this kind. */
AK_PRIVATE int ak__wire_has(const ak_json *msg, ak_part_kind kind) {
    const ak_json *p;
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next)
        if (ak_part_kind_of(p) == kind) return 1;
    return 0;
}

/* The ref of a toolRequest / toolResponse, or "call_<n>" for the n-th one without one (see
   model.h). Valid until the next call. */
AK_PRIVATE const char *ak__wire_ref(ak__wire *w, const ak_json *tool, int response) {
    const char *ref = ak_json_get_str(tool, "ref");
    ak_buf b;
    if (ref && *ref) return ref;
    ak_buf_init_fixed(&b, w->ref, sizeof w->ref);
    ak_buf_printf(&b, "call_%zu", response ? w->responses++ : w->requests++);
    return w->ref;
}

/* A tool response's output as message text: a string as it is, anything else as JSON. */
AK_PRIVATE ak_json *ak__wire_tool_output(ak_json_doc *d, const ak_json *response) {
    const ak_json *out = ak_json_get(response, "output");
    if (ak_json_is(out, AK_JSON_STRING)) return ak_json_copy(d, out);
    return out ? ak__wire_stringify(d, out) : ak_json_new_str(d, "null");
}

/* Copies the config into the request: known Genkit keys under the adapter's names (map[i] to
   top when bit i of top_keys is set, else to options), the others as they are to options.
   JSON null means "not set". */
AK_PRIVATE void ak__wire_config(ak_json_doc *d, const ak_json *config, const ak__wire_key *map, size_t n,
                                unsigned top_keys, ak_json *top, ak_json *options) {
    const ak_json *m;
    for (m = ak_json_first(config); m; m = m->next) {
        size_t i = 0;
        if (m->type == AK_JSON_NULL) continue;
        while (i < n && !ak__eqn(m->key, m->key_len, map[i].from)) i++;
        if (i == n) ak_json_setn(d, options, m->key, m->key_len, ak_json_copy(d, m));
        else if (map[i].to) ak_json_set(d, (top_keys >> i) & 1u ? top : options, map[i].to, ak_json_copy(d, m));
    }
}

/* The model id: config.version (Genkit's per-request model version) or cfg->model. */
AK_PRIVATE const char *ak__wire_model(const ak_provider_config *cfg, const ak_json *request) {
    const char *v = ak_json_get_str(ak_json_get(request, "config"), "version");
    return v && *v ? v : cfg->model;
}

/* o (a new object when NULL) with type: `type` and, when value is set, the value under the
   same name: the {type: "function", function: {...}} shape OpenAI uses for tools, calls,
   content parts and response formats. */
AK_PRIVATE ak_json *ak__wire_typed(ak_json_doc *d, ak_json *o, const char *type, ak_json *value) {
    if (!o) o = ak_json_new_object(d);
    ak_json_set_str(d, o, "type", type);
    if (value) ak_json_set(d, o, type, value);
    return o;
}

/* [{type: "function", function: {name, description?, parameters}}] from Genkit tool
   definitions; OpenAI and Ollama share the shape. */
AK_PRIVATE ak_result ak__wire_tools(ak_json_doc *d, const ak_json *tools, ak_json **out, ak_error *err) {
    const ak_json *t;
    size_t i = 0;
    ak_json *arr = ak_json_new_array(d);
    for (t = ak_json_first(tools); t; t = t->next, i++) {
        const char *name = ak_json_get_str(t, "name");
        const ak_json *desc = ak_json_get(t, "description"), *schema = ak_json_get(t, "inputSchema");
        ak_json *fn = ak_json_new_object(d), *params;
        if (!name || !*name) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "tools[%zu] needs a name", i);
        ak_json_set_str(d, fn, "name", name);
        if (ak_json_is(desc, AK_JSON_STRING)) ak_json_set(d, fn, "description", ak_json_copy(d, desc));
        if (ak_json_is(schema, AK_JSON_OBJECT)) {
            params = ak_json_copy(d, schema);
        } else { /* a tool without input still needs an object schema */
            params = ak_json_new_object(d);
            ak_json_set_str(d, params, "type", "object");
            ak_json_set(d, params, "properties", ak_json_new_object(d));
        }
        ak_json_set(d, fn, "parameters", params);
        ak_json_push(arr, ak__wire_typed(d, NULL, "function", fn));
    }
    *out = arr;
    return d->err ? ak__oom(err) : AK_OK;
}

/* ==== shared: assembling an answer ===================================================== */

/* A tool call being received: its id, name and argument text (JSON). */
typedef struct ak__acc_call {
    ak_buf id, name, args;
    int64_t index;               /* the provider's index, -1 when it sent none */
} ak__acc_call;

enum { AK__USE_IN, AK__USE_OUT, AK__USE_TOTAL, AK__USE_THOUGHTS, AK__USE_CACHED, AK__USE_N };

/* Everything of one answer so far. */
typedef struct ak__acc {
    ak_buf text, reasoning;
    ak__acc_call *calls;
    size_t count, cap;
    size_t emitted;              /* calls already streamed as a chunk */
    int64_t usage[AK__USE_N];    /* -1 = not reported */
} ak__acc;

AK_PRIVATE void ak__acc_buf(ak_decode *dc, ak_buf *b) { ak_buf_init(b, ak_context_allocator(dc->ctx)); }

AK_PRIVATE void ak__acc_init(ak_decode *dc, ak__acc *a) {
    int i;
    ak__acc_buf(dc, &a->text);
    ak__acc_buf(dc, &a->reasoning);
    for (i = 0; i < AK__USE_N; i++) a->usage[i] = -1;
}

AK_PRIVATE void ak__acc_free(ak_decode *dc, ak__acc *a) {
    size_t i;
    for (i = 0; i < a->count; i++) {
        ak_buf_free(&a->calls[i].id);
        ak_buf_free(&a->calls[i].name);
        ak_buf_free(&a->calls[i].args);
    }
    ak_free(ak_context_allocator(dc->ctx), a->calls, a->cap * sizeof *a->calls);
    ak_buf_free(&a->text);
    ak_buf_free(&a->reasoning);
    a->calls = NULL;
    a->count = a->cap = 0;
}

/* Fails the response when b could not grow: the size limit, or out of memory. */
AK_PRIVATE ak_result ak__acc_check(ak_decode *dc, const ak_buf *b) {
    if (!b->err) return AK_OK;
    if (b->err == AK_ERR_LIMIT)
        return ak_decode_fail(dc, AK_STATUS_RESOURCE_EXHAUSTED, "%s: the answer is larger than %zu bytes",
                              dc->adapter->name, b->max);
    return ak__decode_oom(dc);
}

/* Replaces (replace set) or extends b with s[0..n), within the size limit. */
AK_PRIVATE ak_result ak__acc_put(ak_decode *dc, ak_buf *b, const char *s, size_t n, int replace) {
    if (replace) ak_buf_clear(b);
    b->max = dc->max_body; /* what one answer may accumulate, like a whole body */
    ak_buf_append(b, s, n);
    return ak__acc_check(dc, b);
}

/* A count from the provider, -1 if it is not a non-negative integer. */
AK_PRIVATE int64_t ak__acc_count(const ak_json *v) {
    int64_t n;
    return ak_json_int64(v, &n) == AK_OK && n >= 0 ? n : -1;
}

/* {content: []} in scratch, *parts its array. */
AK_PRIVATE ak_json *ak__acc_chunk(ak_decode *dc, ak_json **parts) {
    ak_json *chunk = ak_json_new_object(&dc->scratch);
    *parts = ak_json_new_array(&dc->scratch);
    ak_json_set(&dc->scratch, chunk, "content", *parts);
    return chunk;
}

AK_PRIVATE ak_result ak__acc_emit(ak_decode *dc, const ak_json *chunk) {
    if (dc->scratch.err)
        return ak__decode_oom(dc);
    return ak_decode_emit(dc, chunk);
}

/* A text (or reasoning) delta: kept for the final message, streamed as a chunk. */
AK_PRIVATE ak_result ak__acc_text(ak_decode *dc, ak__acc *a, int reasoning, const ak_json *s) {
    ak_json *chunk, *parts;
    if (!ak_json_is(s, AK_JSON_STRING) || !s->len) return AK_OK;
    if (ak__acc_put(dc, reasoning ? &a->reasoning : &a->text, s->u.str, s->len, 0) != AK_OK) return AK_ERR_MODEL;
    if (!dc->stream) return AK_OK;
    chunk = ak__acc_chunk(dc, &parts);
    ak_json_push(parts, ak__single(&dc->scratch, reasoning ? "reasoning" : "text",
                                   ak_json_new_strn(&dc->scratch, s->u.str, s->len)));
    return ak__acc_emit(dc, chunk);
}

/* A new tool call slot. NULL (response failed) beyond AK_MAX_TOOL_CALLS or out of memory. */
AK_PRIVATE ak__acc_call *ak__acc_new_call(ak_decode *dc, ak__acc *a, int64_t index) {
    ak__acc_call *c;
    if (a->count >= AK_MAX_TOOL_CALLS) {
        ak_decode_fail(dc, AK_STATUS_RESOURCE_EXHAUSTED, "%s: more than %d tool calls in one answer",
                       dc->adapter->name, AK_MAX_TOOL_CALLS);
        return NULL;
    }
    if (a->count == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4;
        void *p = ak_realloc(ak_context_allocator(dc->ctx), a->calls, a->cap * sizeof *a->calls,
                             cap * sizeof *a->calls);
        if (!p) {
            ak__decode_oom(dc);
            return NULL;
        }
        a->calls = (ak__acc_call *)p;
        a->cap = cap;
    }
    c = &a->calls[a->count++];
    ak__acc_buf(dc, &c->id);
    ak__acc_buf(dc, &c->name);
    ak__acc_buf(dc, &c->args);
    c->index = index;
    return c;
}

/* Sets the call's id from a string or number (some servers send integers). */
AK_PRIVATE ak_result ak__acc_set_id(ak_decode *dc, ak__acc_call *c, const ak_json *id) {
    if (!(ak_json_is(id, AK_JSON_STRING) || ak_json_is(id, AK_JSON_NUMBER)) || !id->len) return AK_OK;
    return ak__acc_put(dc, &c->id, id->u.str, id->len, 1);
}

/* Parses a call's arguments ("" is {}) into d; NULL if they are not JSON. */
AK_PRIVATE ak_json *ak__acc_input(ak_json_doc *d, const ak__acc_call *c, ak_error *e) {
    ak_json *v = NULL;
    if (!c->args.len) return ak_json_new_object(d);
    return ak_json_parse_value(d, c->args.ptr, c->args.len, NULL, &v, e) == AK_OK ? v : NULL;
}

/* Appends toolRequest parts for calls [from, count) to arr, built in d. Calls without an id
   get the ref "call_<position>". */
AK_PRIVATE ak_result ak__acc_tool_parts(ak_decode *dc, ak__acc *a, size_t from, ak_json_doc *d, ak_json *arr) {
    size_t i;
    for (i = from; i < a->count; i++) {
        ak__acc_call *c = &a->calls[i];
        char ref[32];
        ak_buf rb;
        ak_error e;
        ak_json *input;
        if (!c->name.len)
            return ak_decode_fail(dc, AK_STATUS_INTERNAL, "%s: tool call %zu has no name", dc->adapter->name, i);
        if (!(input = ak__acc_input(d, c, &e)))
            return d->err ? ak__decode_oom(dc)
                          : ak_decode_fail(dc, AK_STATUS_INTERNAL, "%s: the arguments of tool call %s are not JSON: %s",
                                           dc->adapter->name, c->name.ptr, e.message);
        ak_buf_init_fixed(&rb, ref, sizeof ref);
        ak_buf_printf(&rb, "call_%zu", i);
        ak_json_push(arr, ak_part_tool_request(d, c->name.ptr, c->id.len ? c->id.ptr : ref, input));
    }
    return d->err ? ak__decode_oom(dc) : AK_OK;
}

/* Streams the calls completed since the last time as one chunk. */
AK_PRIVATE ak_result ak__acc_emit_calls(ak_decode *dc, ak__acc *a) {
    ak_json *chunk, *parts;
    size_t from = a->emitted;
    if (from == a->count || !dc->stream) return AK_OK;
    a->emitted = a->count;
    chunk = ak__acc_chunk(dc, &parts);
    if (ak__acc_tool_parts(dc, a, from, &dc->scratch, parts) != AK_OK) return AK_ERR_MODEL;
    return ak__acc_emit(dc, chunk);
}

/* {inputTokens, outputTokens, totalTokens, thoughtsTokens?, cachedContentTokens?} in
   dc->out from what the provider reported (NULL when nothing); the last two only when
   non-zero, the total derived when missing. */
AK_PRIVATE ak_json *ak__acc_usage(ak_decode *dc, ak__acc *a) {
    static const char *const keys[AK__USE_N] = {"inputTokens", "outputTokens", "totalTokens", "thoughtsTokens",
                                                "cachedContentTokens"};
    int64_t *u = a->usage;
    ak_json *o;
    int i;
    if (u[AK__USE_IN] < 0 && u[AK__USE_OUT] < 0 && u[AK__USE_TOTAL] < 0) return NULL;
    if (u[AK__USE_TOTAL] < 0 && u[AK__USE_IN] >= 0 && u[AK__USE_OUT] >= 0)
        u[AK__USE_TOTAL] = u[AK__USE_IN] + u[AK__USE_OUT];
    o = ak_json_new_object(dc->out);
    for (i = 0; i < AK__USE_N; i++)
        if (u[i] > 0 || (u[i] == 0 && i < AK__USE_THOUGHTS)) ak_json_set_int(dc->out, o, keys[i], u[i]);
    return o;
}

/* The final response: {role: model, content: [reasoning?, text?, toolRequest...]}. */
AK_PRIVATE ak_result ak__acc_finish(ak_decode *dc, ak__acc *a, ak_finish_reason reason, const char *finish_message) {
    ak_json_doc *d = dc->out;
    ak_json *msg = ak_msg_new(d, "model"), *content = ak_json_get(msg, "content");
    if (a->reasoning.len)
        ak_json_push(content, ak__single(d, "reasoning", ak_json_new_strn(d, a->reasoning.ptr, a->reasoning.len)));
    if (a->text.len) ak_json_push(content, ak_part_textn(d, a->text.ptr, a->text.len));
    if (ak__acc_tool_parts(dc, a, 0, d, content) != AK_OK) return AK_ERR_MODEL;
    return ak_decode_finish(dc, msg, reason, finish_message, ak__acc_usage(dc, a));
}

/* ---- provider errors ------------------------------------------------------------------ */

/* The fields of an error object in any of the shapes OpenAI-style servers send:
   {error: {message, type, code}} (code a string at OpenAI, a number at llama.cpp),
   vLLM's flat {object: "error", message, type, code}, and {error: "text"} (Ollama). `flat`:
   the value is known to be an error (an SSE event named "error"), so flat fields count. */
typedef struct ak__wire_error {
    const char *message, *type, *code;
    int64_t code_num;            /* -1 if none */
} ak__wire_error;

AK_PRIVATE int ak__wire_error_of(const ak_json *json, int flat, ak__wire_error *e) {
    const ak_json *er = ak_json_get(json, "error"), *src = NULL, *code;
    const char *object = ak_json_get_str(json, "object");
    AK_MEMSET(e, 0, sizeof *e);
    e->code_num = -1;
    if (ak_json_is(er, AK_JSON_STRING)) {
        e->message = er->u.str;
        return 1;
    }
    if (ak_json_is(er, AK_JSON_OBJECT)) src = er;
    else if (flat || (object && ak__streq(object, "error"))) src = json;
    if (!src) return 0;
    e->message = ak_json_get_str(src, "message");
    e->type = ak_json_get_str(src, "type");
    code = ak_json_get(src, "code");
    if (ak_json_is(code, AK_JSON_STRING)) e->code = code->u.str;
    else e->code_num = ak__acc_count(code);
    return 1;
}

AK_PRIVATE const char *ak__wire_error_text(const ak__wire_error *e) {
    return e->message && *e->message ? e->message : e->type ? e->type : e->code ? e->code : "unknown error";
}

/* 429 insufficient_quota: retrying does not bring money back. */
AK_PRIVATE int ak__wire_error_is_quota(const ak__wire_error *e) {
    return (e->code && ak__streq(e->code, "insufficient_quota")) ||
           (e->type && ak__streq(e->type, "insufficient_quota"));
}

/* The status of an error that arrived inside a 200 stream: its HTTP-like code, else what
   its type or code says. */
AK_PRIVATE ak_status ak__wire_error_status(const ak__wire_error *e) {
    /* the names of each status, NUL-separated and ended by an empty one */
    static const struct { ak_status status; const char *names; } kinds[] = {
        {AK_STATUS_INVALID_ARGUMENT,
         "invalid_request_error\0BadRequestError\0exceed_context_size_error\0context_length_exceeded\0"},
        {AK_STATUS_UNAUTHENTICATED, "authentication_error\0invalid_api_key\0"},
        {AK_STATUS_PERMISSION_DENIED, "permission_error\0"},
        {AK_STATUS_NOT_FOUND, "not_found_error\0NotFoundError\0model_not_found\0"},
        {AK_STATUS_RESOURCE_EXHAUSTED, "rate_limit_exceeded\0insufficient_quota\0"},
        {AK_STATUS_UNAVAILABLE, "unavailable_error\0overloaded_error\0"},
        {AK_STATUS_UNIMPLEMENTED, "not_supported_error\0"},
        {AK_STATUS_INTERNAL, "server_error\0api_error\0InternalServerError\0"}};
    size_t i;
    const char *n;
    if (e->code_num >= 400 && e->code_num <= 599) return ak_status_from_http((int)e->code_num);
    for (i = 0; i < AK__COUNTOF(kinds); i++)
        for (n = kinds[i].names; *n; n += ak__strlen(n) + 1)
            if ((e->code && ak__streq(e->code, n)) || (e->type && ak__streq(e->type, n))) return kinds[i].status;
    return AK_STATUS_UNKNOWN;
}

/* An error inside a 200 stream ends the answer; overload and server trouble may be retried
   (the driver only does so when nothing was streamed yet). */
AK_PRIVATE ak_result ak__wire_stream_error(ak_decode *dc, const ak__wire_error *e) {
    ak_status st = ak__wire_error_status(e);
    ak_decode_fail(dc, st, "%s: %s", dc->adapter->name, ak__wire_error_text(e));
    dc->retryable = !ak__wire_error_is_quota(e) && (st == AK_STATUS_UNAVAILABLE || st == AK_STATUS_INTERNAL ||
                                                    st == AK_STATUS_RESOURCE_EXHAUSTED);
    return AK_ERR_MODEL;
}

/* A non-2xx answer: the provider's message when its body says one. */
AK_PRIVATE void ak__wire_http_error(ak_decode *dc, int status, const char *body, size_t len, const ak_json *json) {
    ak__wire_error e;
    AK__UNUSED(body);
    AK__UNUSED(len);
    if (!ak__wire_error_of(json, 0, &e)) return; /* the engine's "<name> returned HTTP n" stands */
    if (ak__wire_error_is_quota(&e)) dc->no_retry = 1;
    ak_decode_fail(dc, ak_status_from_http(status), "%s HTTP %d: %s", dc->adapter->name, status,
                   ak__wire_error_text(&e));
}

/* An event or line that is not JSON: a short, valid UTF-8 excerpt for the message. */
AK_PRIVATE ak_result ak__wire_not_json(ak_decode *dc, const char *data, size_t len) {
    size_t n = ak_utf8_valid_prefix(data, len < 48 ? len : 48);
    return ak_decode_fail(dc, AK_STATUS_INTERNAL, "%s sent something that is not JSON: %.*s", dc->adapter->name,
                          (int)n, data);
}

/* The shared parts above stay for ollama.c when only the OpenAI adapter is compiled out. */
#ifndef AK_NO_OPENAI

/* ==== OpenAI Chat Completions: the request ============================================= */

enum { AK__OAI_KEY_TOPK = 2, AK__OAI_KEY_MAX = 3 };
static const ak__wire_key ak__oai_keys[] = {
    {"temperature", "temperature"}, {"topP", "top_p"},   {"topK", NULL},
    {"maxOutputTokens", "max_completion_tokens"},         {"stopSequences", "stop"},
    {"version", NULL},              {"apiKey", NULL},    {"model", NULL},
    {"messages", NULL},             {"stream", NULL}};

/* A media part as a user content part: image_url (https or data URL), file (PDF data URL)
   or input_audio (wav / mp3 data URL). */
AK_PRIVATE ak_json *ak__oai_media(ak__wire *w, const ak_json *part, size_t i, size_t j) {
    ak_json_doc *d = w->d;
    const ak_json *media = ak_json_get(part, "media");
    const char *url = ak_json_get_str(media, "url"), *ct = ak_json_get_str(media, "contentType"), *mime = ct, *data;
    size_t mime_len = ct ? ak__strlen(ct) : 0, data_len;
    int is_data = ak_data_url_split(url, &mime, &mime_len, &data, &data_len) == AK_OK;
    ak_json *inner = ak_json_new_object(d);
    const char *type;
    if (ct) mime = ct, mime_len = ak__strlen(ct);
    if (!mime || (mime_len >= 6 && AK_MEMCMP(mime, "image/", 6) == 0)) {
        type = "image_url";
        ak_json_set_str(d, inner, "url", url);
    } else if (is_data && ak__eqn(mime, mime_len, "application/pdf")) {
        type = "file";
        ak_json_set_str(d, inner, "filename", "document.pdf");
        ak_json_set_str(d, inner, "file_data", url);
    } else if (is_data && (ak__eqn(mime, mime_len, "audio/wav") || ak__eqn(mime, mime_len, "audio/x-wav") ||
                           ak__eqn(mime, mime_len, "audio/mpeg") || ak__eqn(mime, mime_len, "audio/mp3"))) {
        type = "input_audio";
        ak_json_set(d, inner, "data", ak_json_new_strn(d, data, data_len));
        ak_json_set_str(d, inner, "format", mime[6] == 'm' ? "mp3" : "wav");
    } else {
        ak_error_set(w->err, AK_ERR_INVALID_ARGUMENT,
                     "messages[%zu].content[%zu]: openai takes images, and PDFs or wav/mp3 audio as base64 data URLs, "
                     "not %.*s%s", i, j, (int)AK__MIN(mime_len, 64), mime, is_data ? "" : " URLs");
        return NULL;
    }
    return ak__wire_typed(d, NULL, type, inner);
}

/* A user message: a plain string when it is at most one text part, else typed parts. */
AK_PRIVATE ak_result ak__oai_user(ak__wire *w, const ak_json *msg, size_t i) {
    const ak_json *content = ak_json_get(msg, "content"), *p;
    ak_json *m, *parts;
    size_t j = 0;
    if (ak__wire_parts_allowed(w, msg, i, AK__PART_BIT(AK_PART_TEXT) | AK__PART_BIT(AK_PART_MEDIA), "openai") != AK_OK)
        return AK_ERR_INVALID_ARGUMENT;
    if (content->len <= 1 && !ak__wire_has(msg, AK_PART_MEDIA)) {
        ak__wire_text_msg(w, "user", msg, 0);
        return AK_OK;
    }
    m = ak_json_new_object(w->d);
    parts = ak_json_new_array(w->d);
    ak_json_set_str(w->d, m, "role", "user");
    ak_json_set(w->d, m, "content", parts);
    for (p = content->u.first; p; p = p->next, j++) {
        ak_json *o;
        if (ak_part_kind_of(p) == AK_PART_MEDIA) {
            if (!(o = ak__oai_media(w, p, i, j))) return w->d->err ? ak__oom(w->err) : AK_ERR_INVALID_ARGUMENT;
        } else {
            o = ak__wire_typed(w->d, NULL, "text", ak_json_copy(w->d, ak_json_get(p, "text")));
        }
        ak_json_push(parts, o);
    }
    ak_json_push(w->msgs, m);
    return AK_OK;
}

/* A model message: its text (data parts as JSON) and tool requests as tool_calls.
   Reasoning and custom parts are not sent back (Chat Completions has no place for them). */
AK_PRIVATE ak_result ak__oai_assistant(ak__wire *w, const ak_json *msg, size_t i) {
    ak_json_doc *d = w->d;
    const ak_json *p;
    ak_json *m, *calls = NULL;
    unsigned allowed = AK__PART_BIT(AK_PART_TEXT) | AK__PART_BIT(AK_PART_DATA) | AK__PART_BIT(AK_PART_TOOL_REQUEST) |
                       AK__PART_BIT(AK_PART_REASONING) | AK__PART_BIT(AK_PART_CUSTOM);
    if (ak__wire_parts_allowed(w, msg, i, allowed, "openai") != AK_OK) return AK_ERR_INVALID_ARGUMENT;
    m = ak__wire_text_msg(w, "assistant", msg, 1);
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next) {
        const ak_json *tr = ak_json_get(p, "toolRequest");
        ak_json *call, *fn;
        if (!tr) continue;
        if (!calls) ak_json_set(d, m, "tool_calls", calls = ak_json_new_array(d));
        call = ak_json_new_object(d);
        fn = ak_json_new_object(d);
        ak_json_set_str(d, call, "id", ak__wire_ref(w, tr, 0));
        ak_json_set_str(d, fn, "name", ak_json_get_str(tr, "name"));
        ak_json_set(d, fn, "arguments", ak__wire_stringify(d, ak_json_get(tr, "input")));
        ak_json_push(calls, ak__wire_typed(d, call, "function", fn));
    }
    /* with tool calls and no text, content is null as the API writes it */
    if (calls && !ak_json_len(ak_json_get(m, "content"))) ak_json_set(d, m, "content", ak_json_new_null(d));
    return AK_OK;
}

/* A tool message: one {role: tool, tool_call_id, content} per tool response. */
AK_PRIVATE ak_result ak__oai_tool(ak__wire *w, const ak_json *msg, size_t i) {
    ak_json_doc *d = w->d;
    const ak_json *p;
    if (ak__wire_parts_allowed(w, msg, i, AK__PART_BIT(AK_PART_TOOL_RESPONSE), "openai") != AK_OK)
        return AK_ERR_INVALID_ARGUMENT;
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next) {
        const ak_json *tr = ak_json_get(p, "toolResponse");
        ak_json *m = ak_json_new_object(d);
        ak_json_set_str(d, m, "role", "tool");
        ak_json_set_str(d, m, "tool_call_id", ak__wire_ref(w, tr, 1));
        ak_json_set(d, m, "content", ak__wire_tool_output(d, tr));
        ak_json_push(w->msgs, m);
    }
    return AK_OK;
}

AK_PRIVATE ak_result ak__oai_messages(ak__wire *w, const ak_json *const *messages, size_t count) {
    size_t i;
    for (i = 0; i < count; i++) {
        const char *role = ak_msg_role(messages[i]);
        ak_result rc;
        if (ak__streq(role, "system")) {
            const char *as = w->flags & AK_OPENAI_DEVELOPER_ROLE ? "developer" : "system";
            rc = ak__wire_parts_allowed(w, messages[i], i, AK__PART_BIT(AK_PART_TEXT), "openai");
            if (rc == AK_OK) ak__wire_text_msg(w, as, messages[i], 0);
        } else if (ak__streq(role, "user")) {
            rc = ak__oai_user(w, messages[i], i);
        } else if (ak__streq(role, "model")) {
            rc = ak__oai_assistant(w, messages[i], i);
        } else {
            rc = ak__oai_tool(w, messages[i], i);
        }
        if (rc != AK_OK) return rc;
    }
    return AK_OK;
}

/* response_format for output {format: "json", schema?}. */
AK_PRIVATE void ak__oai_output(ak_json_doc *d, ak_json *body, const ak_json *output) {
    const char *format = ak_json_get_str(output, "format");
    const ak_json *schema = ak_json_get(output, "schema");
    ak_json *rf;
    if (!format || !ak__streq(format, "json")) return;
    if (ak_json_is(schema, AK_JSON_OBJECT)) {
        ak_json *js = ak_json_new_object(d);
        ak_json_set_str(d, js, "name", "output");
        ak_json_set(d, js, "schema", ak_json_copy(d, schema));
        rf = ak__wire_typed(d, NULL, "json_schema", js);
    } else {
        rf = ak__wire_typed(d, NULL, "json_object", NULL);
    }
    ak_json_set(d, body, "response_format", rf);
}

AK_PRIVATE ak_result ak__oai_tool_choice(ak_json_doc *d, ak_json *body, const char *choice, ak_error *err) {
    static const char *const choices[] = {"auto", "required", "none"};
    size_t i = 0;
    if (!choice) return AK_OK;
    while (i < AK__COUNTOF(choices) && !ak__streq(choice, choices[i])) i++;
    if (i == AK__COUNTOF(choices))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "toolChoice must be auto, required or none");
    ak_json_set_str(d, body, "tool_choice", choice);
    return AK_OK;
}

AK_PRIVATE ak_result ak__oai_body(ak__wire *w, const ak_provider_config *cfg, const ak_json *request,
                                  const ak_json *const *messages, size_t count, int stream, ak_json *body) {
    ak_json_doc *d = w->d;
    const ak_json *tools = ak_json_get(request, "tools");
    ak__wire_key keys[AK__COUNTOF(ak__oai_keys)];
    ak_result rc;
    ak_json_set_str(d, body, "model", ak__wire_model(cfg, request));
    ak_json_set(d, body, "messages", w->msgs = ak_json_new_array(d));
    if ((rc = ak__oai_messages(w, messages, count)) != AK_OK) return rc;
    if (ak_json_len(tools)) {
        ak_json *defs = NULL; /* set on every path; GCC -Os for Cortex-M cannot tell */
        if ((rc = ak__wire_tools(d, tools, &defs, w->err)) != AK_OK) return rc;
        ak_json_set(d, body, "tools", defs);
        rc = ak__oai_tool_choice(d, body, ak_json_get_str(request, "toolChoice"), w->err);
        if (rc != AK_OK) return rc;
    }
    ak__oai_output(d, body, ak_json_get(request, "output"));
    AK_MEMCPY(keys, ak__oai_keys, sizeof keys);
    if (cfg->flags & AK_OPENAI_MAX_TOKENS) keys[AK__OAI_KEY_MAX].to = "max_tokens";
    if (cfg->flags & AK_OPENAI_TOP_K) keys[AK__OAI_KEY_TOPK].to = "top_k";
    ak__wire_config(d, ak_json_get(request, "config"), keys, AK__COUNTOF(keys), 0, body, body);
    if (stream) {
        ak_json_set_bool(d, body, "stream", 1);
        if (!(cfg->flags & AK_OPENAI_NO_STREAM_OPTIONS)) {
            ak_json *so = ak_json_new_object(d);
            ak_json_set_bool(d, so, "include_usage", 1);
            ak_json_set(d, body, "stream_options", so);
        }
    }
    return d->err ? ak__oom(w->err) : AK_OK;
}

AK_PRIVATE ak_result ak__oai_build(const ak_provider_config *cfg, const ak_json *request,
                                   const ak_json *const *messages, size_t count, int stream, ak_http_out *out,
                                   ak_error *err) {
    return ak__wire_build(ak__oai_body, "https://api.openai.com/v1", "/chat/completions", cfg, request, messages,
                          count, stream, out, err);
}

/* ==== OpenAI Chat Completions: the response ============================================ */

typedef struct ak__oai {
    ak__acc acc;
    ak_buf refusal;
    ak_finish_reason reason;
    int finished;                /* choice 0 had its finish_reason */
    int done;                    /* [DONE] arrived */
} ak__oai;

AK_PRIVATE void ak__oai_init(ak_decode *dc) {
    ak__oai *st = (ak__oai *)dc->state;
    ak__acc_init(dc, &st->acc);
    ak__acc_buf(dc, &st->refusal);
}

AK_PRIVATE void ak__oai_cleanup(ak_decode *dc) {
    ak__oai *st = (ak__oai *)dc->state;
    ak__acc_free(dc, &st->acc);
    ak_buf_free(&st->refusal);
}

AK_PRIVATE ak_finish_reason ak__oai_reason(const char *r) {
    static const struct { const char *name; ak_finish_reason reason; } reasons[] = {
        {"stop", AK_FINISH_STOP}, {"tool_calls", AK_FINISH_STOP}, {"function_call", AK_FINISH_STOP},
        {"length", AK_FINISH_LENGTH}, {"content_filter", AK_FINISH_BLOCKED}};
    size_t i;
    for (i = 0; i < AK__COUNTOF(reasons); i++)
        if (ak__streq(r, reasons[i].name)) return reasons[i].reason;
    return AK_FINISH_OTHER;
}

AK_PRIVATE void ak__oai_usage(ak__acc *a, const ak_json *u) {
    static const char *const paths[AK__USE_N] = {"prompt_tokens", "completion_tokens", "total_tokens",
                                                 "completion_tokens_details.reasoning_tokens",
                                                 "prompt_tokens_details.cached_tokens"};
    int i;
    for (i = 0; i < AK__USE_N; i++) a->usage[i] = ak__acc_count(ak_json_path(u, paths[i]));
}

/* Whether the arguments received so far are a complete JSON value. */
AK_PRIVATE int ak__oai_args_complete(ak_decode *dc, const ak__acc_call *c) {
    ak_json *v;
    return c->args.len && ak_json_parse_value(&dc->scratch, c->args.ptr, c->args.len, NULL, &v, NULL) == AK_OK;
}

/* The call a tool_calls delta continues, or a new one. Deltas are matched by index; a new
   id at an index whose arguments are already complete starts a new call (servers that send
   every parallel call with index 0), while a new id on unfinished arguments does not
   (servers that put a fresh id on every delta). Without an index, a delta with an id or a
   name starts a call and one with neither continues the last. */
AK_PRIVATE ak__acc_call *ak__oai_call_for(ak_decode *dc, ak__acc *a, int64_t index, const ak_json *id, int named) {
    int has_id = (ak_json_is(id, AK_JSON_STRING) || ak_json_is(id, AK_JSON_NUMBER)) && id->len;
    ak__acc_call *c = NULL;
    size_t i = a->count;
    if (index >= 0) {
        while (i-- && !c)
            if (a->calls[i].index == index) c = &a->calls[i];
    } else if (a->count && !has_id && !named) {
        c = &a->calls[a->count - 1];
    }
    if (c && has_id && c->id.len && !ak__eqn(id->u.str, id->len, c->id.ptr) && ak__oai_args_complete(dc, c)) c = NULL;
    return c ? c : ak__acc_new_call(dc, a, index);
}

AK_PRIVATE ak_result ak__oai_tool_delta(ak_decode *dc, ak__oai *st, const ak_json *tc) {
    const ak_json *fn = ak_json_get(tc, "function"), *id = ak_json_get(tc, "id"), *args = ak_json_get(fn, "arguments");
    const ak_json *name = ak_json_get(fn, "name");
    int named = ak_json_is(name, AK_JSON_STRING) && name->len;
    int64_t index;
    ak__acc_call *c;
    if (ak_json_int64(ak_json_get(tc, "index"), &index) != AK_OK || index < 0) index = -1;
    if (!(c = ak__oai_call_for(dc, &st->acc, index, id, named))) return AK_ERR_MODEL;
    if (!c->id.len && ak__acc_set_id(dc, c, id) != AK_OK) return AK_ERR_MODEL;
    /* the name is assigned, never appended: some gateways repeat it on every delta */
    if (named && ak__acc_put(dc, &c->name, name->u.str, name->len, 1) != AK_OK) return AK_ERR_MODEL;
    if (ak_json_is(args, AK_JSON_STRING)) return ak__acc_put(dc, &c->args, args->u.str, args->len, 0);
    if (ak_json_is(args, AK_JSON_OBJECT)) { /* some servers send the arguments as an object */
        c->args.max = dc->max_body;
        ak_json_write(args, &c->args);
        return ak__acc_check(dc, &c->args);
    }
    return AK_OK;
}

/* A delta (streaming) or a message (non-streaming): content, reasoning, refusal, calls. */
AK_PRIVATE ak_result ak__oai_delta(ak_decode *dc, ak__oai *st, const ak_json *delta) {
    const ak_json *reasoning = ak_json_get(delta, "reasoning_content"), *refusal = ak_json_get(delta, "refusal"), *tc;
    ak_result rc;
    /* llama.cpp and DeepSeek say reasoning_content, Ollama and OpenRouter reasoning; servers
       in transition send both with the same text */
    if (!ak_json_is(reasoning, AK_JSON_STRING) || !reasoning->len) reasoning = ak_json_get(delta, "reasoning");
    if ((rc = ak__acc_text(dc, &st->acc, 1, reasoning)) != AK_OK) return rc;
    if ((rc = ak__acc_text(dc, &st->acc, 0, ak_json_get(delta, "content"))) != AK_OK) return rc;
    if (ak_json_is(refusal, AK_JSON_STRING) &&
        (rc = ak__acc_put(dc, &st->refusal, refusal->u.str, refusal->len, 0)) != AK_OK)
        return rc;
    for (tc = ak_json_first(ak_json_get(delta, "tool_calls")); tc; tc = tc->next)
        if ((rc = ak__oai_tool_delta(dc, st, tc)) != AK_OK) return rc;
    return AK_OK;
}

/* The first choice with index 0 (choices may be empty: the usage chunk, Azure's first). */
AK_PRIVATE const ak_json *ak__oai_choice(const ak_json *json) {
    const ak_json *c;
    for (c = ak_json_first(ak_json_get(json, "choices")); c; c = c->next)
        if (ak_json_int_or(ak_json_get(c, "index"), 0) == 0) return c;
    return NULL;
}

AK_PRIVATE ak_result ak__oai_chunk(ak_decode *dc, ak__oai *st, const ak_json *json) {
    const ak_json *usage = ak_json_get(json, "usage"), *c = ak__oai_choice(json);
    const char *reason;
    ak_result rc;
    /* usage may come on the finish chunk (older llama.cpp), on its own chunk, or on every
       chunk (vLLM continuous_usage_stats): the last one counts */
    if (ak_json_is(usage, AK_JSON_OBJECT)) ak__oai_usage(&st->acc, usage);
    if (!c || st->finished) return AK_OK;
    if ((rc = ak__oai_delta(dc, st, ak_json_get(c, "delta"))) != AK_OK) return rc;
    /* some gateways send "" rather than null while the answer goes on */
    if (!(reason = ak_json_get_str(c, "finish_reason")) || !*reason) return AK_OK;
    st->finished = 1;
    st->reason = ak__oai_reason(reason);
    return ak__acc_emit_calls(dc, &st->acc);
}

AK_PRIVATE ak_result ak__oai_event(ak_decode *dc, const char *name, const char *data, size_t len, const ak_json *json) {
    ak__oai *st = (ak__oai *)dc->state;
    ak__wire_error e;
    if (st->done) return AK_OK; /* nothing after [DONE] means anything */
    if (!json) {
        if (ak__model_trim_eq(data, len, "[DONE]")) st->done = 1;
        else if (!ak__model_trim_eq(data, len, "")) return ak__wire_not_json(dc, data, len);
        return AK_OK; /* an empty data: is a keep-alive */
    }
    if (ak__wire_error_of(json, name && ak__streq(name, "error"), &e)) return ak__wire_stream_error(dc, &e);
    return ak__oai_chunk(dc, st, json);
}

AK_PRIVATE ak_result ak__oai_complete(ak_decode *dc, ak__oai *st) {
    const char *refusal = st->refusal.len ? st->refusal.ptr : NULL;
    return ak__acc_finish(dc, &st->acc, refusal ? AK_FINISH_BLOCKED : st->reason, refusal);
}

AK_PRIVATE ak_result ak__oai_end(ak_decode *dc) {
    ak__oai *st = (ak__oai *)dc->state;
    if (!st->done) return ak__decode_truncated(dc, "openai: the stream ended before [DONE] (truncated)");
    /* what llama.cpp builds before Sept 2025 do after an error: [DONE] without a finish */
    if (!st->finished)
        return ak_decode_fail(dc, AK_STATUS_UNKNOWN, "openai: the stream ended without a finish_reason (incomplete)");
    return ak__oai_complete(dc, st);
}

AK_PRIVATE ak_result ak__oai_body_json(ak_decode *dc, const ak_json *json) {
    ak__oai *st = (ak__oai *)dc->state;
    const ak_json *c = ak__oai_choice(json), *usage = ak_json_get(json, "usage");
    const char *reason;
    ak__wire_error e;
    if (ak__wire_error_of(json, 0, &e)) return ak__wire_stream_error(dc, &e);
    if (!c) return ak_decode_fail(dc, AK_STATUS_INTERNAL, "openai: the response has no choices");
    if (ak__oai_delta(dc, st, ak_json_get(c, "message")) != AK_OK) return AK_ERR_MODEL; /* no consumer here */
    if (ak_json_is(usage, AK_JSON_OBJECT)) ak__oai_usage(&st->acc, usage);
    reason = ak_json_get_str(c, "finish_reason");
    st->reason = reason && *reason ? ak__oai_reason(reason) : AK_FINISH_UNKNOWN;
    return ak__oai_complete(dc, st);
}

static const ak_adapter ak__openai_adapter = {"openai",          AK_STREAM_SSE,    sizeof(ak__oai),
                                              ak__oai_init,      ak__oai_cleanup,  ak__oai_build,
                                              ak__oai_event,     ak__oai_body_json, ak__oai_end,
                                              ak__wire_http_error};

AKDEF const ak_adapter *ak_adapter_openai(void) { return &ak__openai_adapter; }
#endif /* AK_NO_OPENAI */
/* ---- end src/openai.c ---- */
#endif /* src/openai.c */

#if !defined(AK_NO_OLLAMA)
/* ---- begin src/ollama.c ---- */
/* >>ollama: the Ollama native chat adapter (POST /api/chat, NDJSON streaming); it builds on
   the request and answer helpers of openai.c */


/* ==== the request ====================================================================== */

static const ak__wire_key ak__ollama_keys[] = {
    {"temperature", "temperature"}, {"topP", "top_p"},     {"topK", "top_k"},
    {"maxOutputTokens", "num_predict"}, {"stopSequences", "stop"}, {"version", NULL},
    {"apiKey", NULL},               {"think", "think"},    {"keep_alive", "keep_alive"},
    {"model", NULL},                {"messages", NULL},    {"stream", NULL}};
/* think and keep_alive go in the request itself, the others under options */
#define AK__OLLAMA_TOP_KEYS (1u << 7 | 1u << 8)

/* The images of a user message as raw base64 (Ollama fetches no URLs). */
AK_PRIVATE ak_result ak__ollama_images(ak__wire *w, const ak_json *msg, size_t i, ak_json *m) {
    const ak_json *p;
    ak_json *images = NULL;
    size_t j = 0;
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next, j++) {
        const ak_json *media = ak_json_get(p, "media");
        const char *ct = ak_json_get_str(media, "contentType"), *mime, *data;
        size_t mime_len, data_len;
        if (!media) continue;
        if (ak_data_url_split(ak_json_get_str(media, "url"), &mime, &mime_len, &data, &data_len) != AK_OK)
            return ak_error_set(w->err, AK_ERR_INVALID_ARGUMENT,
                                "messages[%zu].content[%zu]: ollama takes images as base64 data URLs only", i, j);
        if (ct) mime = ct, mime_len = ak__strlen(ct);
        if (mime_len < 6 || AK_MEMCMP(mime, "image/", 6) != 0)
            return ak_error_set(w->err, AK_ERR_INVALID_ARGUMENT,
                                "messages[%zu].content[%zu]: ollama takes images only, not %.*s", i, j,
                                (int)AK__MIN(mime_len, 64), mime);
        if (!images) ak_json_set(w->d, m, "images", images = ak_json_new_array(w->d));
        ak_json_push(images, ak_json_new_strn(w->d, data, data_len));
    }
    return AK_OK;
}

/* A model message: text (data parts as JSON), thinking, and tool calls with object
   arguments. Custom parts are not sent back. */
AK_PRIVATE ak_result ak__ollama_assistant(ak__wire *w, const ak_json *msg, size_t i) {
    ak_json_doc *d = w->d;
    const ak_json *p;
    ak_json *m, *calls = NULL;
    unsigned allowed = AK__PART_BIT(AK_PART_TEXT) | AK__PART_BIT(AK_PART_DATA) | AK__PART_BIT(AK_PART_TOOL_REQUEST) |
                       AK__PART_BIT(AK_PART_REASONING) | AK__PART_BIT(AK_PART_CUSTOM);
    if (ak__wire_parts_allowed(w, msg, i, allowed, "ollama") != AK_OK) return AK_ERR_INVALID_ARGUMENT;
    m = ak__wire_text_msg(w, "assistant", msg, 1);
    if (ak__wire_has(msg, AK_PART_REASONING)) ak_json_set(d, m, "thinking", ak__wire_text(d, msg, "reasoning", 0));
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next) {
        const ak_json *tr = ak_json_get(p, "toolRequest"), *input = ak_json_get(tr, "input");
        const char *ref = ak_json_get_str(tr, "ref");
        ak_json *call, *fn;
        if (!tr) continue;
        if (!calls) ak_json_set(d, m, "tool_calls", calls = ak_json_new_array(d));
        call = ak_json_new_object(d);
        fn = ak_json_new_object(d);
        if (ref && *ref) ak_json_set_str(d, call, "id", ref);
        ak_json_set_str(d, fn, "name", ak_json_get_str(tr, "name"));
        ak_json_set(d, fn, "arguments", input ? ak_json_copy(d, input) : ak_json_new_object(d));
        ak_json_set(d, call, "function", fn);
        ak_json_push(calls, call);
    }
    return AK_OK;
}

/* A tool message: one {role: tool, content, tool_name, tool_call_id?} per response. */
AK_PRIVATE ak_result ak__ollama_tool(ak__wire *w, const ak_json *msg, size_t i) {
    ak_json_doc *d = w->d;
    const ak_json *p;
    if (ak__wire_parts_allowed(w, msg, i, AK__PART_BIT(AK_PART_TOOL_RESPONSE), "ollama") != AK_OK)
        return AK_ERR_INVALID_ARGUMENT;
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next) {
        const ak_json *tr = ak_json_get(p, "toolResponse");
        const char *ref = ak_json_get_str(tr, "ref");
        ak_json *m = ak_json_new_object(d);
        ak_json_set_str(d, m, "role", "tool");
        ak_json_set(d, m, "content", ak__wire_tool_output(d, tr));
        ak_json_set_str(d, m, "tool_name", ak_json_get_str(tr, "name"));
        if (ref && *ref) ak_json_set_str(d, m, "tool_call_id", ref);
        ak_json_push(w->msgs, m);
    }
    return AK_OK;
}

AK_PRIVATE ak_result ak__ollama_messages(ak__wire *w, const ak_json *const *messages, size_t count) {
    size_t i;
    for (i = 0; i < count; i++) {
        const char *role = ak_msg_role(messages[i]);
        ak_result rc;
        if (ak__streq(role, "system")) {
            rc = ak__wire_parts_allowed(w, messages[i], i, AK__PART_BIT(AK_PART_TEXT), "ollama");
            if (rc == AK_OK) ak__wire_text_msg(w, "system", messages[i], 0);
        } else if (ak__streq(role, "user")) {
            unsigned allowed = AK__PART_BIT(AK_PART_TEXT) | AK__PART_BIT(AK_PART_MEDIA);
            rc = ak__wire_parts_allowed(w, messages[i], i, allowed, "ollama");
            if (rc == AK_OK) rc = ak__ollama_images(w, messages[i], i, ak__wire_text_msg(w, "user", messages[i], 0));
        } else if (ak__streq(role, "model")) {
            rc = ak__ollama_assistant(w, messages[i], i);
        } else {
            rc = ak__ollama_tool(w, messages[i], i);
        }
        if (rc != AK_OK) return rc;
    }
    return AK_OK;
}

AK_PRIVATE ak_result ak__ollama_body(ak__wire *w, const ak_provider_config *cfg, const ak_json *request,
                                     const ak_json *const *messages, size_t count, int stream, ak_json *body) {
    ak_json_doc *d = w->d;
    const ak_json *tools = ak_json_get(request, "tools"), *output = ak_json_get(request, "output");
    const char *choice = ak_json_get_str(request, "toolChoice"), *format = ak_json_get_str(output, "format");
    ak_json *options;
    ak_result rc;
    ak_json_set_str(d, body, "model", ak__wire_model(cfg, request));
    ak_json_set(d, body, "messages", w->msgs = ak_json_new_array(d));
    if ((rc = ak__ollama_messages(w, messages, count)) != AK_OK) return rc;
    /* Ollama cannot be told how to use tools; "none" is honoured by not offering them */
    if (ak_json_len(tools) && !(choice && ak__streq(choice, "none"))) {
        ak_json *defs;
        if ((rc = ak__wire_tools(d, tools, &defs, w->err)) != AK_OK) return rc;
        ak_json_set(d, body, "tools", defs);
    }
    if (format && ak__streq(format, "json")) {
        const ak_json *schema = ak_json_get(output, "schema");
        ak_json_set(d, body, "format",
                    ak_json_is(schema, AK_JSON_OBJECT) ? ak_json_copy(d, schema) : ak_json_new_str(d, "json"));
    }
    ak_json_set(d, body, "options", options = ak_json_new_object(d));
    ak__wire_config(d, ak_json_get(request, "config"), ak__ollama_keys, AK__COUNTOF(ak__ollama_keys),
                    AK__OLLAMA_TOP_KEYS, body, options);
    if (!ak_json_len(options)) ak_json_remove(body, "options");
    ak_json_set_bool(d, body, "stream", stream); /* Ollama streams unless told not to */
    return d->err ? ak__oom(w->err) : AK_OK;
}

AK_PRIVATE ak_result ak__ollama_build(const ak_provider_config *cfg, const ak_json *request,
                                      const ak_json *const *messages, size_t count, int stream, ak_http_out *out,
                                      ak_error *err) {
    return ak__wire_build(ak__ollama_body, "http://localhost:11434", "/api/chat", cfg, request, messages, count,
                          stream, out, err);
}

/* ==== the response ===================================================================== */

typedef struct ak__ollama {
    ak__acc acc;
    ak_finish_reason reason;
    int64_t total_ns;            /* total_duration, -1 if not reported */
    int done;                    /* the done:true line arrived */
} ak__ollama;

AK_PRIVATE void ak__ollama_init(ak_decode *dc) {
    ak__ollama *st = (ak__ollama *)dc->state;
    ak__acc_init(dc, &st->acc);
    st->reason = AK_FINISH_UNKNOWN;
    st->total_ns = -1;
}

AK_PRIVATE void ak__ollama_cleanup(ak_decode *dc) { ak__acc_free(dc, &((ak__ollama *)dc->state)->acc); }

/* Servers before done_reason existed only said done: that was a normal stop. */
AK_PRIVATE ak_finish_reason ak__ollama_reason(const char *r) {
    if (!r || !*r || ak__streq(r, "stop")) return AK_FINISH_STOP;
    return ak__streq(r, "length") ? AK_FINISH_LENGTH : AK_FINISH_OTHER;
}

/* Tool calls arrive complete (arguments as an object), so they stream at once. */
AK_PRIVATE ak_result ak__ollama_calls(ak_decode *dc, ak__ollama *st, const ak_json *calls) {
    const ak_json *tc;
    for (tc = ak_json_first(calls); tc; tc = tc->next) {
        const ak_json *fn = ak_json_get(tc, "function"), *name = ak_json_get(fn, "name");
        const ak_json *args = ak_json_get(fn, "arguments");
        ak__acc_call *c = ak__acc_new_call(dc, &st->acc, -1);
        if (!c || ak__acc_set_id(dc, c, ak_json_get(tc, "id")) != AK_OK) return AK_ERR_MODEL;
        if (ak_json_is(name, AK_JSON_STRING) && ak__acc_put(dc, &c->name, name->u.str, name->len, 1) != AK_OK)
            return AK_ERR_MODEL;
        c->args.max = dc->max_body;
        if (ak_json_is(args, AK_JSON_STRING)) ak_buf_append(&c->args, args->u.str, args->len);
        else if (args && args->type != AK_JSON_NULL) ak_json_write(args, &c->args);
        if (ak__acc_check(dc, &c->args) != AK_OK) return AK_ERR_MODEL;
    }
    return ak__acc_emit_calls(dc, &st->acc);
}

/* One line of the stream, or the whole non-streaming answer. Absent counts are zero
   (Ollama omits them, e.g. a prompt served from its cache). */
AK_PRIVATE ak_result ak__ollama_line(ak_decode *dc, ak__ollama *st, const ak_json *json) {
    const ak_json *msg = ak_json_get(json, "message");
    ak__wire_error e;
    ak_result rc;
    if (ak__wire_error_of(json, 0, &e)) return ak__wire_stream_error(dc, &e);
    if ((rc = ak__acc_text(dc, &st->acc, 1, ak_json_get(msg, "thinking"))) != AK_OK ||
        (rc = ak__acc_text(dc, &st->acc, 0, ak_json_get(msg, "content"))) != AK_OK ||
        (rc = ak__ollama_calls(dc, st, ak_json_get(msg, "tool_calls"))) != AK_OK)
        return rc;
    if (!ak_json_bool(ak_json_get(json, "done"), 0)) return AK_OK;
    st->done = 1;
    st->reason = ak__ollama_reason(ak_json_get_str(json, "done_reason"));
    st->acc.usage[AK__USE_IN] = AK__MAX(ak__acc_count(ak_json_get(json, "prompt_eval_count")), 0);
    st->acc.usage[AK__USE_OUT] = AK__MAX(ak__acc_count(ak_json_get(json, "eval_count")), 0);
    st->total_ns = ak__acc_count(ak_json_get(json, "total_duration"));
    return AK_OK;
}

/* The response, with total_duration (nanoseconds) as Genkit's latencyMs. */
AK_PRIVATE ak_result ak__ollama_complete(ak_decode *dc, ak__ollama *st) {
    char num[48];
    ak_buf b;
    int64_t frac = st->total_ns % 1000000;
    int digits = 6;
    if (ak__acc_finish(dc, &st->acc, st->reason, NULL) != AK_OK) return AK_ERR_MODEL;
    if (st->total_ns < 0) return AK_OK;
    while (digits && frac % 10 == 0) frac /= 10, digits--;
    ak_buf_init_fixed(&b, num, sizeof num);
    ak_buf_put_i64(&b, st->total_ns / 1000000);
    if (digits) {
        int64_t scale = 1;
        int k;
        ak_buf_putc(&b, '.');
        for (k = 1; k < digits; k++) scale *= 10;
        for (; scale; scale /= 10) ak_buf_putc(&b, (char)('0' + frac / scale % 10));
    }
    ak_json_set(dc->out, dc->response, "latencyMs", ak_json_new_number(dc->out, b.ptr, b.len));
    return dc->out->err ? ak_decode_fail(dc, AK_STATUS_RESOURCE_EXHAUSTED, "ollama: out of memory") : AK_OK;
}

AK_PRIVATE ak_result ak__ollama_event(ak_decode *dc, const char *name, const char *data, size_t len,
                                      const ak_json *json) {
    ak__ollama *st = (ak__ollama *)dc->state;
    AK__UNUSED(name);
    if (st->done) return AK_OK; /* nothing after done:true means anything */
    if (!json) return ak__wire_not_json(dc, data, len);
    return ak__ollama_line(dc, st, json);
}

AK_PRIVATE ak_result ak__ollama_end(ak_decode *dc) {
    ak__ollama *st = (ak__ollama *)dc->state;
    /* also how an error after the first line looks when the {"error"} line was lost */
    if (!st->done) return ak__decode_truncated(dc, "ollama: the stream ended before done:true (truncated)");
    return ak__ollama_complete(dc, st);
}

AK_PRIVATE ak_result ak__ollama_body_json(ak_decode *dc, const ak_json *json) {
    ak__ollama *st = (ak__ollama *)dc->state;
    if (ak__ollama_line(dc, st, json) != AK_OK) return AK_ERR_MODEL;
    return ak__ollama_complete(dc, st);
}

static const ak_adapter ak__ollama_adapter = {"ollama",          AK_STREAM_NDJSON,   sizeof(ak__ollama),
                                              ak__ollama_init,   ak__ollama_cleanup, ak__ollama_build,
                                              ak__ollama_event,  ak__ollama_body_json, ak__ollama_end,
                                              ak__wire_http_error};

AKDEF const ak_adapter *ak_adapter_ollama(void) { return &ak__ollama_adapter; }
/* ---- end src/ollama.c ---- */
#endif /* src/ollama.c */

#if !defined(AK_NO_ANTHROPIC) || !defined(AK_NO_GEMINI)
/* ---- begin src/anthropic.c ---- */
/* >>anthropic: the Anthropic Messages adapter (POST /v1/messages, SSE streaming), preceded
   by the helpers gemini.c shares with it (ak__prov_*) */


/* ---- shared with gemini.c ------------------------------------------------------------------ */

/* The bodies are written straight into the request buffer, never built as a DOM first:
   a conversation holding base64 images is copied once, not twice. Objects are written
   member by member; `n` counts the members already written so commas come out right. */

AK_PRIVATE void ak__prov_key(ak_buf *b, int *n, const char *key) {
    if ((*n)++) ak_buf_putc(b, ',');
    ak_json_write_str(b, key, ak__strlen(key));
    ak_buf_putc(b, ':');
}

/* A JSON string value keeps its exact bytes (it may hold NUL), hence len, not strlen. */
AK_PRIVATE void ak__prov_jstr(ak_buf *b, const ak_json *s) {
    ak_json_write_str(b, s->u.str, s->len);
}

AK_PRIVATE void ak__prov_str(ak_buf *b, int *n, const char *key, const char *s, size_t len) {
    ak__prov_key(b, n, key);
    ak_json_write_str(b, s, len);
}

/* A NUL-terminated string value. */
AK_PRIVATE void ak__prov_cstr(ak_buf *b, int *n, const char *key, const char *s) {
    ak__prov_str(b, n, key, s, ak__strlen(s));
}

AK_PRIVATE void ak__prov_value(ak_buf *b, int *n, const char *key, const ak_json *v) {
    ak__prov_key(b, n, key);
    ak_json_write(v, b);
}

/* v written as JSON text inside a JSON string ("{\"a\":1}"), for fields that only take
   strings (Anthropic tool results, data parts sent as text). */
AK_PRIVATE void ak__prov_json_text(ak_buf *b, const ak_json *v) {
    ak_buf tmp;
    ak_buf_init(&tmp, b->alloc);
    if (ak_json_write(v, &tmp) == AK_OK) ak_json_write_str(b, tmp.ptr, tmp.len);
    else if (!b->err) b->err = tmp.err;
    ak_buf_free(&tmp);
}

AK_PRIVATE int ak__prov_in(const char *key, size_t len, const char *const *list, size_t count) {
    size_t i;
    for (i = 0; i < count; i++)
        if (ak__eqn(key, len, list[i])) return 1;
    return 0;
}

/* Genkit's own config keys. Every other config member is the provider's and passes through
   to the request unchanged; apiKey is never sent anywhere (keys come from the provider
   config only). */
AK_PRIVATE int ak__prov_common_key(const char *key, size_t len) {
    static const char *const common[] = {"temperature", "maxOutputTokens", "topP", "topK",
                                         "stopSequences", "version", "apiKey"};
    return ak__prov_in(key, len, common, AK__COUNTOF(common));
}

/* A provider-native member the config passes through itself wins over the one the
   adapter would derive (config.max_tokens over maxOutputTokens, ...). Names Genkit uses
   itself (Gemini's temperature) are Genkit's, never an override. */
AK_PRIVATE int ak__prov_overridden(const ak_json *config, const char *key) {
    return !ak__prov_common_key(key, ak__strlen(key)) && ak_json_get(config, key) != NULL;
}

/* Writes config's pass-through members that `want` picks. */
AK_PRIVATE void ak__prov_passthrough(ak_buf *b, int *n, const ak_json *config,
                                     int (*want)(const char *key, size_t len)) {
    const ak_json *m;
    for (m = ak_json_first(config); m; m = m->next) {
        if (ak__prov_common_key(m->key, m->key_len) || !want(m->key, m->key_len)) continue;
        if ((*n)++) ak_buf_putc(b, ',');
        ak_json_write_str(b, m->key, m->key_len);
        ak_buf_putc(b, ':');
        ak_json_write(m, b);
    }
}

/* A common config value (temperature, ...) under the provider's name. */
AK_PRIVATE void ak__prov_config(ak_buf *b, int *n, const ak_json *config, const char *genkit_key,
                                const char *wire_key) {
    const ak_json *v = ak_json_get(config, genkit_key);
    if (v && v->type != AK_JSON_NULL && !ak__prov_overridden(config, wire_key)) ak__prov_value(b, n, wire_key, v);
}

/* Adds a header whose value comes from the caller. Control bytes would let a value start a
   header of its own; the message never repeats the value (it may be an API key). */
AK_PRIVATE ak_result ak__prov_header(ak_http_out *out, const char *name, const char *value, ak_error *err) {
    const char *p;
    for (p = value; *p; p++)
        if (AK__U8(*p) < 0x20 || *p == 0x7f)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "the %s header value has a control character", name);
    return ak_http_out_header(out, name, value);
}

/* The request asks for JSON output (format json, or contentType application/json). */
AK_PRIVATE int ak__prov_wants_json(const ak_json *request) {
    const ak_json *output = ak_json_get(request, "output");
    const char *format = ak_json_get_str(output, "format"), *ct = ak_json_get_str(output, "contentType");
    return (format && ak__streq(format, "json")) || (ct && ak__streq(ct, "application/json"));
}

/* The data of a media part: a base64 data URL splits into mime + data (the URL's own mime,
   else the part's contentType); any other URL is passed by reference. */
typedef struct ak__prov_media {
    const char *url;             /* NULL when the part has no string url */
    const char *mime, *data;     /* data URLs: the split parts; else mime = contentType */
    size_t mime_len, data_len;
    int inline_data;             /* 1: a base64 data URL */
} ak__prov_media;

AK_PRIVATE ak_result ak__prov_media_of(const ak_json *part, ak__prov_media *m, ak_error *err) {
    const ak_json *media = ak_json_get(part, "media");
    const char *ct = ak_json_get_str(media, "contentType");
    AK_MEMSET(m, 0, sizeof *m);
    m->url = ak_json_get_str(media, "url");
    if (!m->url) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "a media part needs a string url");
    if (ak__starts_with(m->url, "data:")) {
        if (ak_data_url_split(m->url, &m->mime, &m->mime_len, &m->data, &m->data_len) != AK_OK)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "a data: media url must be base64 (data:<type>;base64,<data>)");
        m->inline_data = 1;
        if (!m->mime_len && ct) m->mime = ct, m->mime_len = ak__strlen(ct);
    } else if (ct) {
        m->mime = ct, m->mime_len = ak__strlen(ct);
    }
    return AK_OK;
}

/* Part metadata's thoughtSignature (Anthropic signature, Gemini thoughtSignature), if any. */
AK_PRIVATE const ak_json *ak__prov_signature(const ak_json *part) {
    const ak_json *s = ak_json_get(ak_json_get(part, "metadata"), "thoughtSignature");
    return ak_json_is(s, AK_JSON_STRING) ? s : NULL;
}

/* {reasoning|text: text, metadata?: {thoughtSignature}} built in d (len bytes of text). */
AK_PRIVATE ak_json *ak__prov_signed_part(ak_json_doc *d, const char *kind, const char *text, size_t len,
                                         const char *sig, size_t sig_len) {
    ak_json *p = ak_json_new_object(d), *md;
    ak_json_set(d, p, kind, ak_json_new_strn(d, text, len));
    if (sig_len) {
        md = ak_json_new_object(d);
        ak_json_set(d, md, "thoughtSignature", ak_json_new_strn(d, sig, sig_len));
        ak_json_set(d, p, "metadata", md);
    }
    return d->err ? NULL : p;
}

/* The response message in dc->out, made on first use. */
AK_PRIVATE ak_json *ak__prov_message(ak_decode *dc, ak_json **msg) {
    if (!*msg) *msg = ak_msg_new(dc->out, "model");
    return *msg;
}

/* Adds part (built in dc->out) to the response message. */
AK_PRIVATE ak_result ak__prov_keep(ak_decode *dc, ak_json **msg, ak_json *part) {
    if (!part || !ak__prov_message(dc, msg) || ak_msg_add(*msg, part) != AK_OK)
        return ak__decode_oom(dc);
    return AK_OK;
}

/* Emits {content: [part]} with a copy of part made in scratch. */
AK_PRIVATE ak_result ak__prov_emit_part(ak_decode *dc, const ak_json *part) {
    ak_json_doc *s = &dc->scratch;
    ak_json *content = ak_json_new_array(s), *chunk = ak_json_new_object(s);
    ak_json_push(content, ak_json_copy(s, part));
    ak_json_set(s, chunk, "content", content);
    if (s->err) return ak__decode_oom(dc);
    return ak_decode_emit(dc, chunk);
}

/* Appends to a buffer the response is assembled in. The decoder's size limit applies to
   each such buffer (read at every append: a user of ak_decode may lower it after init). */
AK_PRIVATE ak_result ak__prov_append(ak_decode *dc, ak_buf *b, const char *s, size_t n, const char *what) {
    b->max = dc->max_body;
    ak_buf_append(b, s, n);
    if (b->err == AK_ERR_LIMIT)
        return ak_decode_fail(dc, AK_STATUS_RESOURCE_EXHAUSTED, "%s: %s is larger than %zu bytes", dc->adapter->name, what,
                              dc->max_body);
    if (b->err) return ak__decode_oom(dc);
    return AK_OK;
}

/* Genkit's toolChoice (auto, required, none) under the provider's names[0..2]. */
AK_PRIVATE ak_result ak__prov_tool_choice(const ak_json *choice, const char *const names[3], const char **out,
                                          ak_error *err) {
    static const char *const genkit[3] = {"auto", "required", "none"};
    const char *c = ak_json_str(choice);
    int i;
    *out = NULL; /* set on every path: GCC cannot see that the error path returns non-zero */
    for (i = 0; c && i < 3; i++)
        if (ak__streq(c, genkit[i])) return *out = names[i], AK_OK;
    return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "toolChoice must be auto, required or none");
}

/* The request's tool definitions: NULL when there are none; an error unless each has a
   string name. */
AK_PRIVATE ak_result ak__prov_tools(const ak_json *request, const ak_json **tools, ak_error *err) {
    const ak_json *t, *all = ak_json_get(request, "tools");
    *tools = NULL;
    if (all && !ak_json_is(all, AK_JSON_ARRAY)) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "tools must be an array");
    for (t = ak_json_first(all); t; t = t->next)
        if (!ak_json_get_str(t, "name")) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "a tool needs a string name");
    if (ak_json_len(all)) *tools = all;
    return AK_OK;
}

/* Calls each(ud, text) for the text parts of the system messages, in order. Neither
   provider takes anything but text there. */
AK_PRIVATE ak_result ak__prov_system(const ak_json *const *messages, size_t count,
                                     void (*each)(void *ud, const ak_json *text), void *ud, ak_error *err) {
    const ak_json *p, *text;
    size_t i;
    for (i = 0; i < count; i++) {
        const char *role = ak_msg_role(messages[i]);
        if (!role || !ak__streq(role, "system")) continue;
        for (p = ak_json_first(ak_json_get(messages[i], "content")); p; p = p->next) {
            if (!ak_json_is(text = ak_json_get(p, "text"), AK_JSON_STRING))
                return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "messages[%zu]: system messages may only hold text", i);
            each(ud, text);
        }
    }
    return AK_OK;
}

/* Puts where a part failed in front of its message (err may be NULL). */
AK_PRIVATE ak_result ak__prov_part_error(ak_error *err, ak_result rc, size_t msg, size_t part) {
    char what[AK_ERROR_MAX];
    if (!err) return rc;
    AK_MEMCPY(what, err->message, sizeof what);
    return ak_error_set(err, rc, "messages[%zu].content[%zu]: %s", msg, part, what);
}

/* The shared part above stays for gemini.c when only the Anthropic adapter is compiled out. */
#ifndef AK_NO_ANTHROPIC

/* ---- Anthropic: request ------------------------------------------------------------------- */

#ifndef AK_ANTHROPIC_DEFAULT_MAX_TOKENS
#define AK_ANTHROPIC_DEFAULT_MAX_TOKENS 4096 /* max_tokens is required; Genkit's default */
#endif

/* The system prompt: Anthropic takes it top-level. Several system messages (or parts) are
   joined by blank lines; empty ones add nothing. */
AK_PRIVATE void ak__anth_system_part(void *ud, const ak_json *text) {
    ak_buf *b = (ak_buf *)ud;
    if (b->len) ak_buf_puts(b, "\n\n");
    ak_buf_append(b, text->u.str, text->len);
}

AK_PRIVATE ak_result ak__anth_system(ak_buf *b, int *n, const ak_json *const *messages, size_t count,
                                     ak_error *err) {
    ak_buf text;
    ak_result rc;
    ak_buf_init(&text, b->alloc);
    rc = ak__prov_system(messages, count, ak__anth_system_part, &text, err);
    if (rc == AK_OK && text.len) ak__prov_str(b, n, "system", text.ptr, text.len);
    if (text.err && !b->err) b->err = text.err;
    ak_buf_free(&text);
    return rc;
}

AK_PRIVATE ak_result ak__anth_media(ak_buf *b, const ak_json *part, ak_error *err) {
    ak__prov_media m;
    int n = 0, src = 0, image;
    ak_result rc = ak__prov_media_of(part, &m, err);
    if (rc != AK_OK) return rc;
    /* images are "image" blocks (also links without a type); PDFs and the rest documents */
    image = !m.mime || (m.mime_len >= 6 && AK_MEMCMP(m.mime, "image/", 6) == 0);
    ak__prov_cstr(b, &n, "type", image ? "image" : "document");
    ak__prov_key(b, &n, "source");
    ak_buf_putc(b, '{');
    if (m.inline_data) {
        ak__prov_cstr(b, &src, "type", "base64");
        ak__prov_str(b, &src, "media_type", m.mime, m.mime_len);
        ak__prov_str(b, &src, "data", m.data, m.data_len);
    } else {
        ak__prov_cstr(b, &src, "type", "url");
        ak__prov_cstr(b, &src, "url", m.url);
    }
    ak_buf_putc(b, '}');
    return AK_OK;
}

AK_PRIVATE ak_result ak__anth_tool_use(ak_buf *b, const ak_json *part, ak_error *err) {
    const ak_json *tr = ak_json_get(part, "toolRequest"), *name = ak_json_get(tr, "name"),
                  *ref = ak_json_get(tr, "ref"), *input = ak_json_get(tr, "input");
    int n = 0;
    if (!ak_json_is(name, AK_JSON_STRING) || !ak_json_is(ref, AK_JSON_STRING))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "a toolRequest needs a string name and ref");
    ak__prov_cstr(b, &n, "type", "tool_use");
    ak__prov_key(b, &n, "id"), ak__prov_jstr(b, ref);
    ak__prov_key(b, &n, "name"), ak__prov_jstr(b, name);
    ak__prov_key(b, &n, "input");
    if (input && input->type != AK_JSON_NULL) ak_json_write(input, b);
    else ak_buf_puts(b, "{}");
    return AK_OK;
}

AK_PRIVATE ak_result ak__anth_tool_result(ak_buf *b, const ak_json *part, ak_error *err) {
    const ak_json *tr = ak_json_get(part, "toolResponse"), *ref = ak_json_get(tr, "ref"),
                  *output = ak_json_get(tr, "output");
    int n = 0;
    if (!ak_json_is(ref, AK_JSON_STRING))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "a toolResponse needs a string ref");
    ak__prov_cstr(b, &n, "type", "tool_result");
    ak__prov_key(b, &n, "tool_use_id"), ak__prov_jstr(b, ref);
    if (output) {
        ak__prov_key(b, &n, "content");
        if (output->type == AK_JSON_STRING) ak__prov_jstr(b, output);
        else ak__prov_json_text(b, output);
    }
    return AK_OK;
}

/* Writes the content block of one part; *wrote is 0 for parts Anthropic has no block for
   (reasoning without a signature: the API refuses unsigned thinking, and another
   provider's thoughts mean nothing to Claude). */
AK_PRIVATE ak_result ak__anth_block(ak_buf *b, const ak_json *part, int *wrote, ak_error *err) {
    const ak_json *v, *sig;
    int n = 0;
    *wrote = 1;
    if ((v = ak_json_get(part, "text")) != NULL && v->type == AK_JSON_STRING) {
        ak__prov_cstr(b, &n, "type", "text");
        ak__prov_key(b, &n, "text"), ak__prov_jstr(b, v);
    } else if (ak_json_get(part, "media")) {
        return ak__anth_media(b, part, err);
    } else if (ak_json_get(part, "toolRequest")) {
        return ak__anth_tool_use(b, part, err);
    } else if (ak_json_get(part, "toolResponse")) {
        return ak__anth_tool_result(b, part, err);
    } else if ((v = ak_json_get(part, "reasoning")) != NULL && v->type == AK_JSON_STRING &&
               (sig = ak__prov_signature(part)) != NULL) {
        ak__prov_cstr(b, &n, "type", "thinking");
        ak__prov_key(b, &n, "thinking"), ak__prov_jstr(b, v);
        ak__prov_key(b, &n, "signature"), ak__prov_jstr(b, sig);
    } else if ((v = ak_json_get(ak_json_get(part, "custom"), "redactedThinking")) != NULL &&
               v->type == AK_JSON_STRING) {
        ak__prov_cstr(b, &n, "type", "redacted_thinking");
        ak__prov_key(b, &n, "data"), ak__prov_jstr(b, v);
    } else if ((v = ak_json_get(part, "data")) != NULL) {
        ak__prov_cstr(b, &n, "type", "text");
        ak__prov_key(b, &n, "text"), ak__prov_json_text(b, v);
    } else {
        *wrote = 0;
    }
    return AK_OK;
}

/* Message i of the conversation; messages without any block are left out (the API rejects
   empty content). */
AK_PRIVATE ak_result ak__anth_message(ak_buf *b, int *count, const ak_json *msg, size_t i, ak_error *err) {
    const char *role = ak_msg_role(msg), *wire_role;
    const ak_json *p;
    size_t mark = b->len, j = 0;
    int n = 0, blocks = 0, wrote;
    if (!role || ak__streq(role, "system")) return AK_OK;
    wire_role = ak__streq(role, "model") ? "assistant" : "user"; /* tool results go in user turns */
    if (*count) ak_buf_putc(b, ',');
    ak_buf_putc(b, '{');
    ak__prov_cstr(b, &n, "role", wire_role);
    ak__prov_key(b, &n, "content");
    ak_buf_putc(b, '[');
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next, j++) {
        size_t at = b->len;
        ak_result rc;
        if (blocks) ak_buf_putc(b, ',');
        ak_buf_putc(b, '{');
        if ((rc = ak__anth_block(b, p, &wrote, err)) != AK_OK) return ak__prov_part_error(err, rc, i, j);
        if (wrote) ak_buf_putc(b, '}'), blocks++;
        else b->len = at;
    }
    ak_buf_puts(b, "]}");
    if (blocks) (*count)++;
    else b->len = mark;
    return AK_OK;
}

/* A tool definition; input_schema must be an object schema, so a schema without a type
   gets "type":"object" first. */
AK_PRIVATE void ak__anth_tool(ak_buf *b, const ak_json *tool) {
    const ak_json *schema = ak_json_get(tool, "inputSchema"), *m;
    const ak_json *name = ak_json_get(tool, "name"), *desc = ak_json_get(tool, "description");
    int n = 0, s = 0;
    ak_buf_putc(b, '{');
    if (ak_json_is(name, AK_JSON_STRING)) ak__prov_key(b, &n, "name"), ak__prov_jstr(b, name);
    if (ak_json_is(desc, AK_JSON_STRING)) ak__prov_key(b, &n, "description"), ak__prov_jstr(b, desc);
    ak__prov_key(b, &n, "input_schema");
    ak_buf_putc(b, '{');
    if (!ak_json_get(schema, "type")) ak__prov_cstr(b, &s, "type", "object");
    for (m = ak_json_first(ak_json_is(schema, AK_JSON_OBJECT) ? schema : NULL); m; m = m->next) {
        if (s++) ak_buf_putc(b, ',');
        ak_json_write_str(b, m->key, m->key_len);
        ak_buf_putc(b, ':');
        ak_json_write(m, b);
    }
    ak_buf_puts(b, "}}");
}

AK_PRIVATE ak_result ak__anth_tools(ak_buf *b, int *n, const ak_json *request, ak_error *err) {
    static const char *const choices[3] = {"auto", "any", "none"};
    const ak_json *tools, *t, *choice = ak_json_get(request, "toolChoice");
    const char *type;
    ak_result rc = ak__prov_tools(request, &tools, err);
    if (rc != AK_OK) return rc;
    if (tools) {
        ak__prov_key(b, n, "tools");
        ak_buf_putc(b, '[');
        for (t = tools->u.first; t; t = t->next) {
            ak__anth_tool(b, t);
            if (t->next) ak_buf_putc(b, ',');
        }
        ak_buf_putc(b, ']');
    }
    if (choice && !ak__prov_overridden(ak_json_get(request, "config"), "tool_choice")) {
        if ((rc = ak__prov_tool_choice(choice, choices, &type, err)) != AK_OK) return rc;
        ak__prov_key(b, n, "tool_choice");
        ak_buf_puts(b, "{\"type\":");
        ak_json_write_str(b, type, ak__strlen(type));
        ak_buf_putc(b, '}');
    }
    return AK_OK;
}

/* JSON output with a schema uses structured outputs; without one the prompt asks. */
AK_PRIVATE void ak__anth_output(ak_buf *b, int *n, const ak_json *request) {
    const ak_json *schema = ak_json_get(ak_json_get(request, "output"), "schema");
    if (!ak__prov_wants_json(request) || !ak_json_is(schema, AK_JSON_OBJECT) ||
        ak__prov_overridden(ak_json_get(request, "config"), "output_config"))
        return;
    ak__prov_key(b, n, "output_config");
    ak_buf_puts(b, "{\"format\":{\"type\":\"json_schema\",\"schema\":");
    ak_json_write(schema, b);
    ak_buf_puts(b, "}}");
}

/* Config members that may pass through: all but what the adapter alone writes. */
AK_PRIVATE int ak__anth_passes(const char *key, size_t len) {
    static const char *const own[] = {"model", "messages", "tools", "stream"};
    return !ak__prov_in(key, len, own, AK__COUNTOF(own));
}

AK_PRIVATE ak_result ak__anth_build(const ak_provider_config *cfg, const ak_json *request,
                                    const ak_json *const *messages, size_t count, int stream,
                                    ak_http_out *out, ak_error *err) {
    const ak_json *config = ak_json_get(request, "config"), *max = ak_json_get(config, "maxOutputTokens");
    ak_buf *b = &out->body;
    int n = 0, written = 0;
    size_t i;
    ak_result rc;
    if (!cfg->model) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "no model id");
    ak__model_url(&out->url, cfg->base_url, "https://api.anthropic.com", "/v1/messages");
    if ((rc = ak_http_out_header(out, "content-type", "application/json")) != AK_OK ||
        (cfg->api_key && (rc = ak__prov_header(out, "x-api-key", cfg->api_key, err)) != AK_OK) ||
        (rc = ak_http_out_header(out, "anthropic-version", "2023-06-01")) != AK_OK)
        return rc;
    ak_buf_putc(b, '{');
    ak__prov_cstr(b, &n, "model", cfg->model);
    if (!ak__prov_overridden(config, "max_tokens")) {
        ak__prov_key(b, &n, "max_tokens");
        if (ak_json_is(max, AK_JSON_NUMBER)) ak_json_write(max, b);
        else ak_buf_put_i64(b, AK_ANTHROPIC_DEFAULT_MAX_TOKENS);
    }
    if (!ak__prov_overridden(config, "system") && (rc = ak__anth_system(b, &n, messages, count, err)) != AK_OK)
        return rc;
    ak__prov_key(b, &n, "messages");
    ak_buf_putc(b, '[');
    for (i = 0; i < count; i++)
        if ((rc = ak__anth_message(b, &written, messages[i], i, err)) != AK_OK) return rc;
    ak_buf_putc(b, ']');
    if ((rc = ak__anth_tools(b, &n, request, err)) != AK_OK) return rc;
    ak__prov_config(b, &n, config, "temperature", "temperature");
    ak__prov_config(b, &n, config, "topP", "top_p");
    ak__prov_config(b, &n, config, "topK", "top_k");
    ak__prov_config(b, &n, config, "stopSequences", "stop_sequences");
    ak__anth_output(b, &n, request);
    ak__prov_passthrough(b, &n, config, ak__anth_passes);
    if (stream) ak__prov_key(b, &n, "stream"), ak_buf_puts(b, "true");
    ak_buf_putc(b, '}');
    return b->err;
}

/* ---- Anthropic: response -------------------------------------------------------------- */

/* The kind of the content block being streamed. */
enum { AK__ANTH_NONE = 0, AK__ANTH_TEXT, AK__ANTH_THINKING, AK__ANTH_TOOL, AK__ANTH_SKIPPED };

/* Usage counters, in the order of ak__anth_usage_keys. */
enum { AK__ANTH_IN, AK__ANTH_OUT, AK__ANTH_CACHE_WRITE, AK__ANTH_CACHE_READ, AK__ANTH_USAGE_N };
static const char *const ak__anth_usage_keys[AK__ANTH_USAGE_N] = {
    "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"};

typedef struct ak__anth_state {
    ak_json *message;            /* the response message in dc->out */
    int block;                   /* AK__ANTH_* of the open content block */
    int64_t block_index;
    ak_buf text;                 /* the open block's text, thinking, or tool input JSON */
    ak_buf signature;            /* the open thinking block's signature */
    ak_json *tool_id, *tool_name; /* the open tool_use block's, kept in dc->out */
    int64_t usage[AK__ANTH_USAGE_N];
    unsigned usage_set;          /* bit i: usage[i] was reported */
    ak_finish_reason reason;
    int saw_stop;                /* message_stop arrived */
} ak__anth_state;

static const struct { const char *stop_reason; ak_finish_reason reason; } ak__anth_stops[] = {
    {"end_turn", AK_FINISH_STOP},   {"stop_sequence", AK_FINISH_STOP},
    {"tool_use", AK_FINISH_STOP},   {"max_tokens", AK_FINISH_LENGTH},
    {"model_context_window_exceeded", AK_FINISH_LENGTH}, {"refusal", AK_FINISH_BLOCKED},
};

/* A tool turn is told by its toolRequest parts, so tool_use maps to stop like end_turn;
   null (not yet known) is unknown, anything new is other. */
AK_PRIVATE ak_finish_reason ak__anth_finish(const ak_json *stop_reason) {
    size_t i;
    if (!ak_json_is(stop_reason, AK_JSON_STRING)) return AK_FINISH_UNKNOWN;
    for (i = 0; i < AK__COUNTOF(ak__anth_stops); i++)
        if (ak__eqn(stop_reason->u.str, stop_reason->len, ak__anth_stops[i].stop_reason)) return ak__anth_stops[i].reason;
    return AK_FINISH_OTHER;
}

/* Error types of bodies and in-stream error events, and the status each stands for. */
static const struct { const char *type; ak_status status; int retry; } ak__anth_errors[] = {
    {"invalid_request_error", AK_STATUS_INVALID_ARGUMENT, 0}, {"authentication_error", AK_STATUS_UNAUTHENTICATED, 0},
    {"billing_error", AK_STATUS_FAILED_PRECONDITION, 0},      {"permission_error", AK_STATUS_PERMISSION_DENIED, 0},
    {"not_found_error", AK_STATUS_NOT_FOUND, 0},              {"request_too_large", AK_STATUS_RESOURCE_EXHAUSTED, 0},
    {"rate_limit_error", AK_STATUS_RESOURCE_EXHAUSTED, 1},    {"api_error", AK_STATUS_INTERNAL, 1},
    {"timeout_error", AK_STATUS_DEADLINE_EXCEEDED, 1},        {"overloaded_error", AK_STATUS_UNAVAILABLE, 1},
};

/* Fails dc with the error object of body ({type:"error", error:{type, message}}):
   fallback is the status when the type is unknown. Returns 1 when the body had one. */
AK_PRIVATE int ak__anth_fail_with(ak_decode *dc, const ak_json *body, ak_status fallback, const char *where) {
    const ak_json *e = ak_json_get(body, "error");
    const char *type = ak_json_get_str(e, "type"), *msg = ak_json_get_str(e, "message");
    size_t i;
    if (!ak_json_is(e, AK_JSON_OBJECT)) return 0;
    for (i = 0; type && i < AK__COUNTOF(ak__anth_errors); i++)
        if (ak__streq(type, ak__anth_errors[i].type)) break;
    ak_decode_fail(dc, type && i < AK__COUNTOF(ak__anth_errors) ? ak__anth_errors[i].status : fallback,
                   "anthropic%s: %s: %s", where, type ? type : "error", msg ? msg : "(no message)");
    dc->retryable = type && i < AK__COUNTOF(ak__anth_errors) && ak__anth_errors[i].retry;
    return 1;
}

AK_PRIVATE void ak__anth_error(ak_decode *dc, int status, const char *body, size_t len, const ak_json *json) {
    char where[32];
    ak_buf w;
    AK__UNUSED(body), AK__UNUSED(len);
    ak_buf_init_fixed(&w, where, sizeof where);
    ak_buf_printf(&w, " HTTP %d", status);
    /* a body that is not Anthropic's (the CDN's 413 page) keeps the engine's message */
    ak__anth_fail_with(dc, json, dc->error.status, where);
}

AK_PRIVATE void ak__anth_read_usage(ak__anth_state *st, const ak_json *usage) {
    int64_t v;
    int i;
    for (i = 0; i < AK__ANTH_USAGE_N; i++)
        if (ak_json_int64(ak_json_get(usage, ak__anth_usage_keys[i]), &v) == AK_OK && v >= 0)
            st->usage[i] = v, st->usage_set |= 1u << i;
}

/* Genkit usage: input and output as reported (input excludes cache reads and writes, as
   in Genkit's plugin), their sum, cache reads as cachedContentTokens and both cache
   counters under custom. NULL when nothing was reported. */
AK_PRIVATE ak_json *ak__anth_usage(ak_decode *dc, const ak__anth_state *st) {
    ak_json_doc *d = dc->out;
    ak_json *u, *custom;
    int i;
    if (!st->usage_set) return NULL;
    u = ak_json_new_object(d);
    ak_json_set_int(d, u, "inputTokens", st->usage[AK__ANTH_IN]);
    ak_json_set_int(d, u, "outputTokens", st->usage[AK__ANTH_OUT]);
    /* both are non-negative int64: saturate rather than overflow on absurd counts */
    ak_json_set_int(d, u, "totalTokens", st->usage[AK__ANTH_IN] > INT64_MAX - st->usage[AK__ANTH_OUT]
                                             ? INT64_MAX : st->usage[AK__ANTH_IN] + st->usage[AK__ANTH_OUT]);
    if (st->usage_set & (1u << AK__ANTH_CACHE_READ))
        ak_json_set_int(d, u, "cachedContentTokens", st->usage[AK__ANTH_CACHE_READ]);
    if (st->usage_set & (3u << AK__ANTH_CACHE_WRITE)) {
        custom = ak_json_new_object(d);
        for (i = AK__ANTH_CACHE_WRITE; i < AK__ANTH_USAGE_N; i++)
            if (st->usage_set & (1u << i)) ak_json_set_int(d, custom, ak__anth_usage_keys[i], st->usage[i]);
        ak_json_set(d, u, "custom", custom);
    }
    return u;
}

AK_PRIVATE ak_result ak__anth_finish_response(ak_decode *dc, ak__anth_state *st) {
    if (!ak__prov_message(dc, &st->message))
        return ak_decode_fail(dc, AK_STATUS_RESOURCE_EXHAUSTED, "anthropic: out of memory");
    return ak_decode_finish(dc, st->message, st->reason, NULL, ak__anth_usage(dc, st));
}

/* {custom: {redactedThinking: data}} in d */
AK_PRIVATE ak_json *ak__anth_redacted_part(ak_json_doc *d, const ak_json *data) {
    ak_json *p = ak_json_new_object(d), *c = ak_json_new_object(d);
    ak_json_set(d, c, "redactedThinking", ak_json_copy(d, data));
    ak_json_set(d, p, "custom", c);
    return d->err ? NULL : p;
}

/* Keeps a finished part in the message and, when streaming, emits it as a chunk. */
AK_PRIVATE ak_result ak__anth_keep(ak_decode *dc, ak__anth_state *st, ak_json *part, int emit) {
    ak_result rc = ak__prov_keep(dc, &st->message, part);
    return rc == AK_OK && emit ? ak__prov_emit_part(dc, part) : rc;
}

/* A complete tool_use block: input parsed from the concatenated partial_json fragments
   (fragments end anywhere, even inside an escape, so only the whole is parsed); the
   start event's input:{} is a placeholder and no fragments at all means {}. */
AK_PRIVATE ak_result ak__anth_tool_done(ak_decode *dc, ak__anth_state *st) {
    ak_json *input = NULL;
    ak_error e;
    if (ak__model_trim_eq(st->text.ptr, st->text.len, "")) input = ak_json_new_object(&dc->scratch);
    else if (ak_json_parse_value(&dc->scratch, st->text.ptr, st->text.len, NULL, &input, &e) != AK_OK)
        return ak_decode_fail(dc, AK_STATUS_INTERNAL, "anthropic: the input of tool call %s is not valid JSON: %s",
                              ak_json_str_or(st->tool_name, "?"), e.message);
    return ak__anth_keep(dc, st, ak_part_tool_request(dc->out, ak_json_str(st->tool_name), ak_json_str(st->tool_id), input), 1);
}

AK_PRIVATE ak_result ak__anth_ev_message_start(ak_decode *dc, ak__anth_state *st, const ak_json *ev) {
    AK__UNUSED(dc);
    ak__anth_read_usage(st, ak_json_path(ev, "message.usage"));
    return AK_OK;
}

AK_PRIVATE ak_result ak__anth_ev_block_start(ak_decode *dc, ak__anth_state *st, const ak_json *ev) {
    const ak_json *block = ak_json_get(ev, "content_block");
    const char *type = ak_json_get_str(block, "type");
    if (st->block != AK__ANTH_NONE)
        return ak_decode_fail(dc, AK_STATUS_INTERNAL, "anthropic: content block %lld started before block %lld stopped",
                              (long long)ak_json_int_or(ak_json_get(ev, "index"), -1), (long long)st->block_index);
    st->block_index = ak_json_int_or(ak_json_get(ev, "index"), -1);
    ak_buf_clear(&st->text);
    ak_buf_clear(&st->signature);
    st->block = AK__ANTH_SKIPPED; /* server tools, citations blocks and future types */
    if (!type) return AK_OK;
    if (ak__streq(type, "text") || ak__streq(type, "thinking")) {
        const ak_json *t = ak_json_get(block, ak__streq(type, "text") ? "text" : "thinking");
        st->block = ak__streq(type, "text") ? AK__ANTH_TEXT : AK__ANTH_THINKING;
        if (ak_json_is(t, AK_JSON_STRING)) return ak__prov_append(dc, &st->text, t->u.str, t->len, "a content block");
    } else if (ak__streq(type, "tool_use")) {
        st->block = AK__ANTH_TOOL;
        st->tool_id = ak_json_copy(dc->out, ak_json_get(block, "id"));
        st->tool_name = ak_json_copy(dc->out, ak_json_get(block, "name"));
        if (!ak_json_is(st->tool_name, AK_JSON_STRING))
            return ak_decode_fail(dc, AK_STATUS_INTERNAL, "anthropic: a tool_use block without a name");
    } else if (ak__streq(type, "redacted_thinking")) {
        /* arrives whole, no deltas follow */
        const ak_json *data = ak_json_get(block, "data");
        if (ak_json_is(data, AK_JSON_STRING)) return ak__anth_keep(dc, st, ak__anth_redacted_part(dc->out, data), 1);
    }
    return AK_OK;
}

/* Appends a delta to the open block; text and thinking go out as chunks at once. */
AK_PRIVATE ak_result ak__anth_ev_block_delta(ak_decode *dc, ak__anth_state *st, const ak_json *ev) {
    const ak_json *delta = ak_json_get(ev, "delta"), *v;
    const char *type = ak_json_get_str(delta, "type");
    ak_result rc;
    if (st->block == AK__ANTH_NONE || ak_json_int_or(ak_json_get(ev, "index"), -1) != st->block_index)
        return ak_decode_fail(dc, AK_STATUS_INTERNAL, "anthropic: a delta for content block %lld, which is not open",
                              (long long)ak_json_int_or(ak_json_get(ev, "index"), -1));
    if (!type || st->block == AK__ANTH_SKIPPED) return AK_OK;
    if (ak__streq(type, "text_delta") && st->block == AK__ANTH_TEXT) v = ak_json_get(delta, "text");
    else if (ak__streq(type, "thinking_delta") && st->block == AK__ANTH_THINKING) v = ak_json_get(delta, "thinking");
    else if (ak__streq(type, "input_json_delta") && st->block == AK__ANTH_TOOL) v = ak_json_get(delta, "partial_json");
    else if (ak__streq(type, "signature_delta") && st->block == AK__ANTH_THINKING) {
        v = ak_json_get(delta, "signature");
        return ak_json_is(v, AK_JSON_STRING) ? ak__prov_append(dc, &st->signature, v->u.str, v->len, "a signature") : AK_OK;
    } else {
        return AK_OK; /* citations and future delta types */
    }
    if (!ak_json_is(v, AK_JSON_STRING)) return AK_OK;
    if ((rc = ak__prov_append(dc, &st->text, v->u.str, v->len, "a content block")) != AK_OK) return rc;
    if (st->block == AK__ANTH_TOOL || !v->len) return AK_OK;
    return ak__prov_emit_part(dc, st->block == AK__ANTH_TEXT ? ak_part_textn(&dc->scratch, v->u.str, v->len)
                                                             : ak__prov_signed_part(&dc->scratch, "reasoning", v->u.str, v->len, "", 0));
}

AK_PRIVATE ak_result ak__anth_ev_block_stop(ak_decode *dc, ak__anth_state *st, const ak_json *ev) {
    int block = st->block;
    const char *text = st->text.ptr ? st->text.ptr : "";
    if (block == AK__ANTH_NONE || ak_json_int_or(ak_json_get(ev, "index"), -1) != st->block_index)
        return ak_decode_fail(dc, AK_STATUS_INTERNAL, "anthropic: content block %lld stopped but is not open",
                              (long long)ak_json_int_or(ak_json_get(ev, "index"), -1));
    st->block = AK__ANTH_NONE;
    switch (block) {
    case AK__ANTH_TEXT: return ak__anth_keep(dc, st, ak_part_textn(dc->out, text, st->text.len), 0);
    case AK__ANTH_THINKING:
        return ak__anth_keep(dc, st, ak__prov_signed_part(dc->out, "reasoning", text, st->text.len,
                                                          st->signature.ptr, st->signature.len), 0);
    case AK__ANTH_TOOL: return ak__anth_tool_done(dc, st);
    }
    return AK_OK;
}

AK_PRIVATE ak_result ak__anth_ev_message_delta(ak_decode *dc, ak__anth_state *st, const ak_json *ev) {
    const ak_json *delta = ak_json_get(ev, "delta");
    AK__UNUSED(dc);
    if (ak_json_get(delta, "stop_reason")) st->reason = ak__anth_finish(ak_json_get(delta, "stop_reason"));
    /* cumulative and final: it overrides message_start, input tokens included */
    ak__anth_read_usage(st, ak_json_get(ev, "usage"));
    return AK_OK;
}

AK_PRIVATE ak_result ak__anth_ev_message_stop(ak_decode *dc, ak__anth_state *st, const ak_json *ev) {
    AK__UNUSED(dc), AK__UNUSED(ev);
    st->saw_stop = 1;
    return AK_OK;
}

AK_PRIVATE ak_result ak__anth_ev_error(ak_decode *dc, ak__anth_state *st, const ak_json *ev) {
    AK__UNUSED(st);
    if (!ak__anth_fail_with(dc, ev, AK_STATUS_UNKNOWN, " stream error"))
        ak_decode_fail(dc, AK_STATUS_UNKNOWN, "anthropic stream error without details");
    return AK_ERR_MODEL;
}

static const struct {
    const char *type;
    ak_result (*fn)(ak_decode *dc, ak__anth_state *st, const ak_json *ev);
} ak__anth_events[] = {
    {"message_start", ak__anth_ev_message_start},       {"content_block_start", ak__anth_ev_block_start},
    {"content_block_delta", ak__anth_ev_block_delta},   {"content_block_stop", ak__anth_ev_block_stop},
    {"message_delta", ak__anth_ev_message_delta},       {"message_stop", ak__anth_ev_message_stop},
    {"error", ak__anth_ev_error},
};

/* One SSE event; the JSON type names it (the SSE event name is the same, when a proxy kept
   it). ping and unknown types are ignored, as Anthropic's versioning policy asks. */
AK_PRIVATE ak_result ak__anth_event(ak_decode *dc, const char *name, const char *data, size_t len,
                                    const ak_json *json) {
    ak__anth_state *st = (ak__anth_state *)dc->state;
    const char *type = ak_json_get_str(json, "type");
    size_t i;
    if (ak__model_trim_eq(data, len, "")) return AK_OK;
    if (!ak_json_is(json, AK_JSON_OBJECT))
        return ak_decode_fail(dc, AK_STATUS_INTERNAL, "anthropic sent an event that is not a JSON object");
    if (!type) type = name;
    if (st->saw_stop || !type) return AK_OK;
    for (i = 0; i < AK__COUNTOF(ak__anth_events); i++)
        if (ak__streq(type, ak__anth_events[i].type)) return ak__anth_events[i].fn(dc, st, json);
    return AK_OK;
}

AK_PRIVATE ak_result ak__anth_end(ak_decode *dc) {
    ak__anth_state *st = (ak__anth_state *)dc->state;
    if (!st->saw_stop) return ak__decode_truncated(dc, "anthropic stream ended before message_stop (truncated)");
    return ak__anth_finish_response(dc, st);
}

/* One content block of a whole (non-streamed) message. */
AK_PRIVATE ak_result ak__anth_body_block(ak_decode *dc, ak__anth_state *st, const ak_json *block) {
    const char *type = ak_json_get_str(block, "type");
    const ak_json *v, *sig;
    ak_json_doc *d = dc->out;
    if (!type) return AK_OK;
    if (ak__streq(type, "text") && ak_json_is(v = ak_json_get(block, "text"), AK_JSON_STRING))
        return ak__anth_keep(dc, st, ak_part_textn(d, v->u.str, v->len), 0);
    if (ak__streq(type, "thinking") && ak_json_is(v = ak_json_get(block, "thinking"), AK_JSON_STRING)) {
        sig = ak_json_get(block, "signature");
        return ak__anth_keep(dc, st, ak__prov_signed_part(d, "reasoning", v->u.str, v->len,
                                                          ak_json_is(sig, AK_JSON_STRING) ? sig->u.str : "",
                                                          ak_json_is(sig, AK_JSON_STRING) ? sig->len : 0), 0);
    }
    if (ak__streq(type, "redacted_thinking") && ak_json_is(v = ak_json_get(block, "data"), AK_JSON_STRING))
        return ak__anth_keep(dc, st, ak__anth_redacted_part(d, v), 0);
    if (ak__streq(type, "tool_use")) {
        if (!ak_json_get_str(block, "name"))
            return ak_decode_fail(dc, AK_STATUS_INTERNAL, "anthropic: a tool_use block without a name");
        v = ak_json_get(block, "input");
        return ak__anth_keep(dc, st, ak_part_tool_request(d, ak_json_get_str(block, "name"), ak_json_get_str(block, "id"),
                                                          v && v->type != AK_JSON_NULL ? v : ak_json_new_object(&dc->scratch)), 0);
    }
    return AK_OK;
}

AK_PRIVATE ak_result ak__anth_body(ak_decode *dc, const ak_json *json) {
    ak__anth_state *st = (ak__anth_state *)dc->state;
    const ak_json *b;
    ak_result rc = AK_OK;
    if (ak__anth_fail_with(dc, json, AK_STATUS_UNKNOWN, " error")) return AK_ERR_MODEL;
    if (!ak_json_is(ak_json_get(json, "content"), AK_JSON_ARRAY))
        return ak_decode_fail(dc, AK_STATUS_INTERNAL, "anthropic returned a message without content");
    for (b = ak_json_first(ak_json_get(json, "content")); b && rc == AK_OK; b = b->next)
        rc = ak__anth_body_block(dc, st, b);
    if (rc != AK_OK) return rc;
    st->reason = ak__anth_finish(ak_json_get(json, "stop_reason"));
    ak__anth_read_usage(st, ak_json_get(json, "usage"));
    return ak__anth_finish_response(dc, st);
}

AK_PRIVATE void ak__anth_init(ak_decode *dc) {
    ak__anth_state *st = (ak__anth_state *)dc->state;
    const ak_allocator *a = ak_context_allocator(dc->ctx);
    ak_buf_init(&st->text, a);
    ak_buf_init(&st->signature, a);
}

AK_PRIVATE void ak__anth_cleanup(ak_decode *dc) {
    ak__anth_state *st = (ak__anth_state *)dc->state;
    ak_buf_free(&st->text);
    ak_buf_free(&st->signature);
}

AKDEF const ak_adapter *ak_adapter_anthropic(void) {
    static const ak_adapter adapter = {"anthropic", AK_STREAM_SSE, sizeof(ak__anth_state), ak__anth_init,
                                       ak__anth_cleanup, ak__anth_build, ak__anth_event, ak__anth_body,
                                       ak__anth_end, ak__anth_error};
    return &adapter;
}
#endif /* AK_NO_ANTHROPIC */
/* ---- end src/anthropic.c ---- */
#endif /* src/anthropic.c */

#if !defined(AK_NO_GEMINI)
/* ---- begin src/gemini.c ---- */
/* >>gemini: the Google Gemini API adapter (generateContent, streamGenerateContent?alt=sse) */


/* Refs this adapter makes up for function calls that came without an id (the Gemini API
   sends none). They are never sent back as ids: Gemini matches results by order and name. */
#define AK__GEM_REF_PREFIX "gemini-call-"

/* ---- Gemini: request ------------------------------------------------------------------ */

/* Gemini function names may not hold '/', which Genkit uses for namespaced tools: like
   Genkit's plugin, write it as "__" and read "__" back as '/'. */
AK_PRIVATE void ak__gem_write_name(ak_buf *b, const ak_json *name) {
    ak_buf tmp;
    size_t i;
    ak_buf_init(&tmp, b->alloc);
    for (i = 0; i < name->len; i++)
        if (name->u.str[i] == '/') ak_buf_puts(&tmp, "__");
        else ak_buf_putc(&tmp, name->u.str[i]);
    if (!tmp.err) ak_json_write_str(b, tmp.ptr ? tmp.ptr : "", tmp.len);
    else if (!b->err) b->err = tmp.err;
    ak_buf_free(&tmp);
}

/* An id worth echoing: one Gemini sent, not one made up here. */
AK_PRIVATE int ak__gem_real_id(const ak_json *ref) {
    return ak_json_is(ref, AK_JSON_STRING) && !ak__starts_with(ref->u.str, AK__GEM_REF_PREFIX);
}

AK_PRIVATE ak_result ak__gem_media(ak_buf *b, int *n, const ak_json *part, ak_error *err) {
    ak__prov_media m;
    int k = 0;
    ak_result rc = ak__prov_media_of(part, &m, err);
    if (rc != AK_OK) return rc;
    ak__prov_key(b, n, m.inline_data ? "inlineData" : "fileData");
    ak_buf_putc(b, '{');
    if (m.mime) ak__prov_str(b, &k, "mimeType", m.mime, m.mime_len);
    if (m.inline_data) ak__prov_str(b, &k, "data", m.data, m.data_len);
    else ak__prov_cstr(b, &k, "fileUri", m.url);
    ak_buf_putc(b, '}');
    return AK_OK;
}

AK_PRIVATE ak_result ak__gem_function_call(ak_buf *b, int *n, const ak_json *part, ak_error *err) {
    const ak_json *tr = ak_json_get(part, "toolRequest"), *name = ak_json_get(tr, "name"),
                  *ref = ak_json_get(tr, "ref"), *input = ak_json_get(tr, "input");
    int k = 0;
    if (!ak_json_is(name, AK_JSON_STRING))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "a toolRequest needs a string name");
    ak__prov_key(b, n, "functionCall");
    ak_buf_putc(b, '{');
    ak__prov_key(b, &k, "name"), ak__gem_write_name(b, name);
    ak__prov_key(b, &k, "args");
    if (input && input->type != AK_JSON_NULL) ak_json_write(input, b);
    else ak_buf_puts(b, "{}");
    if (ak__gem_real_id(ref)) ak__prov_key(b, &k, "id"), ak__prov_jstr(b, ref);
    ak_buf_putc(b, '}');
    return AK_OK;
}

/* The response must be an object: Genkit's wrapping {name, content: output} makes one. */
AK_PRIVATE ak_result ak__gem_function_response(ak_buf *b, int *n, const ak_json *part, ak_error *err) {
    const ak_json *tr = ak_json_get(part, "toolResponse"), *name = ak_json_get(tr, "name"),
                  *ref = ak_json_get(tr, "ref"), *output = ak_json_get(tr, "output");
    int k = 0, r = 0;
    if (!ak_json_is(name, AK_JSON_STRING))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "a toolResponse needs a string name");
    ak__prov_key(b, n, "functionResponse");
    ak_buf_putc(b, '{');
    ak__prov_key(b, &k, "name"), ak__gem_write_name(b, name);
    if (ak__gem_real_id(ref)) ak__prov_key(b, &k, "id"), ak__prov_jstr(b, ref);
    ak__prov_key(b, &k, "response");
    ak_buf_putc(b, '{');
    ak__prov_key(b, &r, "name"), ak__prov_jstr(b, name);
    if (output) ak__prov_value(b, &r, "content", output);
    ak_buf_puts(b, "}}");
    return AK_OK;
}

/* Writes the members of one Gemini part (the caller writes the braces); *n stays 0 for
   parts Gemini has no form for. The part's thoughtSignature goes back on the same part. */
AK_PRIVATE ak_result ak__gem_part(ak_buf *b, int *n, const ak_json *part, ak_error *err) {
    const ak_json *v, *custom = ak_json_get(part, "custom"), *sig = ak__prov_signature(part);
    ak_result rc = AK_OK;
    if ((v = ak_json_get(part, "text")) != NULL && v->type == AK_JSON_STRING) {
        ak__prov_key(b, n, "text"), ak__prov_jstr(b, v);
    } else if ((v = ak_json_get(part, "reasoning")) != NULL && v->type == AK_JSON_STRING) {
        ak__prov_key(b, n, "text"), ak__prov_jstr(b, v);
        ak__prov_key(b, n, "thought"), ak_buf_puts(b, "true");
    } else if (ak_json_get(part, "media")) {
        rc = ak__gem_media(b, n, part, err);
    } else if (ak_json_get(part, "toolRequest")) {
        rc = ak__gem_function_call(b, n, part, err);
    } else if (ak_json_get(part, "toolResponse")) {
        rc = ak__gem_function_response(b, n, part, err);
    } else if ((v = ak_json_get(custom, "executableCode")) != NULL ||
               (v = ak_json_get(custom, "codeExecutionResult")) != NULL) {
        ak__prov_key(b, n, ak_json_get(custom, "executableCode") ? "executableCode" : "codeExecutionResult");
        ak_json_write(v, b);
    } else if ((v = ak_json_get(part, "data")) != NULL) {
        ak__prov_key(b, n, "text"), ak__prov_json_text(b, v);
    }
    if (rc == AK_OK && *n && sig) ak__prov_key(b, n, "thoughtSignature"), ak__prov_jstr(b, sig);
    return rc;
}

/* The "parts":[...] member for message i; the number written goes to *count. */
AK_PRIVATE ak_result ak__gem_parts(ak_buf *b, const ak_json *msg, size_t i, int *count, ak_error *err) {
    const ak_json *p;
    size_t j = 0;
    ak_result rc;
    ak_buf_puts(b, "\"parts\":[");
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next, j++) {
        size_t at = b->len;
        int n = 0;
        if (*count) ak_buf_putc(b, ',');
        ak_buf_putc(b, '{');
        if ((rc = ak__gem_part(b, &n, p, err)) != AK_OK) return ak__prov_part_error(err, rc, i, j);
        if (n) ak_buf_putc(b, '}'), (*count)++;
        else b->len = at;
    }
    ak_buf_putc(b, ']');
    return AK_OK;
}

/* systemInstruction: one part per text part of the system messages. */
typedef struct ak__gem_system_writer {
    ak_buf *b;
    int parts;
} ak__gem_system_writer;

AK_PRIVATE void ak__gem_system_part(void *ud, const ak_json *text) {
    ak__gem_system_writer *w = (ak__gem_system_writer *)ud;
    int n = 0;
    if (w->parts++) ak_buf_putc(w->b, ',');
    ak_buf_putc(w->b, '{');
    ak__prov_key(w->b, &n, "text"), ak__prov_jstr(w->b, text);
    ak_buf_putc(w->b, '}');
}

AK_PRIVATE ak_result ak__gem_system(ak_buf *b, int *n, const ak_json *const *messages, size_t count,
                                    ak_error *err) {
    ak__gem_system_writer w;
    size_t mark = b->len;
    int k = *n;
    ak_result rc;
    w.b = b, w.parts = 0;
    ak__prov_key(b, &k, "systemInstruction");
    ak_buf_puts(b, "{\"parts\":[");
    if ((rc = ak__prov_system(messages, count, ak__gem_system_part, &w, err)) != AK_OK) return rc;
    ak_buf_puts(b, "]}");
    if (w.parts) *n = k;
    else b->len = mark;
    return AK_OK;
}

AK_PRIVATE ak_result ak__gem_contents(ak_buf *b, int *n, const ak_json *const *messages, size_t count,
                                      ak_error *err) {
    size_t i;
    int written = 0;
    ak_result rc;
    ak__prov_key(b, n, "contents");
    ak_buf_putc(b, '[');
    for (i = 0; i < count; i++) {
        const char *role = ak_msg_role(messages[i]), *wire_role;
        size_t mark = b->len;
        int parts = 0, k = 0;
        if (!role || ak__streq(role, "system")) continue;
        wire_role = ak__streq(role, "model") ? "model" : "user"; /* tool results travel in user turns */
        if (written) ak_buf_putc(b, ',');
        ak_buf_putc(b, '{');
        ak__prov_cstr(b, &k, "role", wire_role);
        ak_buf_putc(b, ',');
        if ((rc = ak__gem_parts(b, messages[i], i, &parts, err)) != AK_OK) return rc;
        ak_buf_putc(b, '}');
        if (parts) written++;
        else b->len = mark; /* the API rejects turns without parts */
    }
    ak_buf_putc(b, ']');
    return AK_OK;
}

AK_PRIVATE ak_result ak__gem_tools(ak_buf *b, int *n, const ak_json *request, ak_error *err) {
    static const char *const modes[3] = {"AUTO", "ANY", "NONE"};
    const ak_json *tools, *t, *choice = ak_json_get(request, "toolChoice");
    const char *mode;
    ak_result rc = ak__prov_tools(request, &tools, err);
    if (rc != AK_OK) return rc;
    if (tools) {
        ak__prov_key(b, n, "tools");
        ak_buf_puts(b, "[{\"functionDeclarations\":[");
        for (t = tools->u.first; t; t = t->next) {
            const ak_json *desc = ak_json_get(t, "description"), *schema = ak_json_get(t, "inputSchema");
            int k = 0;
            ak_buf_putc(b, '{');
            ak__prov_key(b, &k, "name"), ak__gem_write_name(b, ak_json_get(t, "name"));
            if (ak_json_is(desc, AK_JSON_STRING)) ak__prov_key(b, &k, "description"), ak__prov_jstr(b, desc);
            /* the full JSON Schema dialect, so Genkit's schemas need no rewriting */
            if (ak_json_is(schema, AK_JSON_OBJECT)) ak__prov_value(b, &k, "parametersJsonSchema", schema);
            ak_buf_putc(b, '}');
            if (t->next) ak_buf_putc(b, ',');
        }
        ak_buf_puts(b, "]}]");
    }
    if (choice && !ak__prov_overridden(ak_json_get(request, "config"), "toolConfig")) {
        if ((rc = ak__prov_tool_choice(choice, modes, &mode, err)) != AK_OK) return rc;
        ak__prov_key(b, n, "toolConfig");
        ak_buf_puts(b, "{\"functionCallingConfig\":{\"mode\":");
        ak_json_write_str(b, mode, ak__strlen(mode));
        ak_buf_puts(b, "}}");
    }
    return AK_OK;
}

/* Config members that belong at the top level of the request; the rest are generation
   settings (thinkingConfig, responseModalities, seed, ...). */
AK_PRIVATE int ak__gem_top_level(const char *key, size_t len) {
    static const char *const top[] = {"safetySettings", "cachedContent", "labels", "toolConfig"};
    return ak__prov_in(key, len, top, AK__COUNTOF(top));
}

AK_PRIVATE int ak__gem_generation(const char *key, size_t len) { return !ak__gem_top_level(key, len); }

AK_PRIVATE void ak__gem_generation_config(ak_buf *b, int *n, const ak_json *request) {
    const ak_json *config = ak_json_get(request, "config");
    const ak_json *schema = ak_json_get(ak_json_get(request, "output"), "schema");
    size_t mark = b->len;
    int k = *n, g = 0;
    ak__prov_key(b, &k, "generationConfig");
    ak_buf_putc(b, '{');
    ak__prov_config(b, &g, config, "temperature", "temperature");
    ak__prov_config(b, &g, config, "topP", "topP");
    ak__prov_config(b, &g, config, "topK", "topK");
    ak__prov_config(b, &g, config, "maxOutputTokens", "maxOutputTokens");
    ak__prov_config(b, &g, config, "stopSequences", "stopSequences");
    if (ak__prov_wants_json(request)) {
        if (!ak__prov_overridden(config, "responseMimeType")) ak__prov_cstr(b, &g, "responseMimeType", "application/json");
        if (ak_json_is(schema, AK_JSON_OBJECT) && !ak__prov_overridden(config, "responseJsonSchema") &&
            !ak__prov_overridden(config, "responseSchema"))
            ak__prov_value(b, &g, "responseJsonSchema", schema);
    }
    ak__prov_passthrough(b, &g, config, ak__gem_generation);
    ak_buf_putc(b, '}');
    if (g) *n = k;
    else b->len = mark;
}

/* The resource path of the model: "gemini-2.5-flash" is models/gemini-2.5-flash; names with
   a collection ("models/x", "tunedModels/y") are used as given. Only URL-safe characters,
   and no "..", so the id cannot change the request's path. */
AK_PRIVATE ak_result ak__gem_model_path(ak_buf *url, const char *model, ak_error *err) {
    const char *p;
    int slash = 0;
    if (!model || !*model) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "no model id");
    for (p = model; *p; p++) {
        char c = *p;
        if (c == '/') slash = 1;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.' || c == '/') || (c == '.' && p[1] == '.'))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "model id \"%s\" has characters a URL path cannot carry",
                                model);
    }
    ak_buf_puts(url, slash ? "/" : "/models/");
    ak_buf_puts(url, model);
    return AK_OK;
}

AK_PRIVATE ak_result ak__gem_build(const ak_provider_config *cfg, const ak_json *request,
                                   const ak_json *const *messages, size_t count, int stream,
                                   ak_http_out *out, ak_error *err) {
    const ak_json *config = ak_json_get(request, "config");
    ak_buf *b = &out->body;
    int n = 0;
    ak_result rc;
    ak__model_url(&out->url, cfg->base_url, "https://generativelanguage.googleapis.com", "/v1beta");
    if ((rc = ak__gem_model_path(&out->url, cfg->model, err)) != AK_OK) return rc;
    ak_buf_puts(&out->url, stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
    if ((rc = ak_http_out_header(out, "content-type", "application/json")) != AK_OK ||
        (cfg->api_key && (rc = ak__prov_header(out, "x-goog-api-key", cfg->api_key, err)) != AK_OK))
        return rc;
    ak_buf_putc(b, '{');
    if ((rc = ak__gem_system(b, &n, messages, count, err)) != AK_OK ||
        (rc = ak__gem_contents(b, &n, messages, count, err)) != AK_OK ||
        (rc = ak__gem_tools(b, &n, request, err)) != AK_OK)
        return rc;
    ak__gem_generation_config(b, &n, request);
    ak__prov_passthrough(b, &n, config, ak__gem_top_level);
    ak_buf_putc(b, '}');
    return b->err;
}

/* ---- Gemini: response --------------------------------------------------------------------- */

enum { AK__GEM_NONE = 0, AK__GEM_TEXT, AK__GEM_THOUGHT };

/* usageMetadata counters and their Genkit names; the first three are always reported. */
enum { AK__GEM_USAGE_N = 5 };
static const char *const ak__gem_usage_keys[AK__GEM_USAGE_N][2] = {
    {"promptTokenCount", "inputTokens"},      {"candidatesTokenCount", "outputTokens"},
    {"totalTokenCount", "totalTokens"},       {"thoughtsTokenCount", "thoughtsTokens"},
    {"cachedContentTokenCount", "cachedContentTokens"}};

typedef struct ak__gem_state {
    ak_json *message;            /* the response message in dc->out */
    ak_buf run;                  /* text of the open run of consecutive text (or thought) deltas */
    int run_kind;                /* AK__GEM_*: what the run is */
    int64_t usage[AK__GEM_USAGE_N];
    unsigned usage_seen;         /* 1: some usageMetadata arrived; bit i+1: usage[i] was in the last */
    ak_finish_reason reason;
    int finished;                /* a finishReason (or a blocked prompt) arrived: the stream's end */
    ak_json *finish_message;     /* string in dc->out, or NULL */
    unsigned calls;              /* function calls so far, for made-up refs */
} ak__gem_state;

static const struct { const char *name; ak_finish_reason reason; } ak__gem_finishes[] = {
    {"STOP", AK_FINISH_STOP},
    {"MAX_TOKENS", AK_FINISH_LENGTH},
    {"SAFETY", AK_FINISH_BLOCKED},          {"RECITATION", AK_FINISH_BLOCKED},
    {"LANGUAGE", AK_FINISH_BLOCKED},        {"BLOCKLIST", AK_FINISH_BLOCKED},
    {"PROHIBITED_CONTENT", AK_FINISH_BLOCKED}, {"SPII", AK_FINISH_BLOCKED},
    {"IMAGE_SAFETY", AK_FINISH_BLOCKED},    {"IMAGE_PROHIBITED_CONTENT", AK_FINISH_BLOCKED},
    {"IMAGE_RECITATION", AK_FINISH_BLOCKED},
    {"OTHER", AK_FINISH_OTHER},             {"MALFORMED_FUNCTION_CALL", AK_FINISH_OTHER},
    {"MISSING_THOUGHT_SIGNATURE", AK_FINISH_OTHER}, {"UNEXPECTED_TOOL_CALL", AK_FINISH_OTHER},
    {"TOO_MANY_TOOL_CALLS", AK_FINISH_OTHER}, {"IMAGE_OTHER", AK_FINISH_OTHER},
    {"NO_IMAGE", AK_FINISH_OTHER},
};

/* Tool turns end with STOP too: they are told by their toolRequest parts. */
AK_PRIVATE ak_finish_reason ak__gem_finish(const ak_json *name) {
    size_t i;
    for (i = 0; i < AK__COUNTOF(ak__gem_finishes); i++)
        if (ak__eqn(name->u.str, name->len, ak__gem_finishes[i].name)) return ak__gem_finishes[i].reason;
    return AK_FINISH_UNKNOWN;
}

AK_PRIVATE int ak__gem_retryable(ak_status s) {
    return s == AK_STATUS_RESOURCE_EXHAUSTED || s == AK_STATUS_UNAVAILABLE || s == AK_STATUS_INTERNAL ||
           s == AK_STATUS_DEADLINE_EXCEEDED;
}

/* A google.rpc.RetryInfo delay ("34s", "1.5s") in ms, or -1. */
AK_PRIVATE int64_t ak__gem_retry_delay(const ak_json *details) {
    const ak_json *d, *delay;
    for (d = ak_json_first(details); d; d = d->next) {
        const char *type = ak_json_get_str(d, "@type");
        delay = ak_json_get(d, "retryDelay");
        if (type && ak__streq(type, "type.googleapis.com/google.rpc.RetryInfo") && ak_json_is(delay, AK_JSON_STRING) &&
            delay->len > 1 && delay->u.str[delay->len - 1] == 's')
            return ak__parse_delay(delay->u.str, delay->len - 1, 1000);
    }
    return -1;
}

/* A bad key is a 400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID. */
AK_PRIVATE int ak__gem_bad_key(const ak_json *details) {
    const ak_json *d;
    for (d = ak_json_first(details); d; d = d->next) {
        const char *reason = ak_json_get_str(d, "reason");
        if (reason && ak__streq(reason, "API_KEY_INVALID")) return 1;
    }
    return 0;
}

/* Fails dc with a google.rpc.Status ({code, message, status, details}); fallback is the
   status when the body names none Genkit knows. Returns 1 when e was one. */
AK_PRIVATE int ak__gem_fail_with(ak_decode *dc, const ak_json *e, ak_status fallback, const char *where) {
    const ak_json *name = ak_json_get(e, "status"), *details = ak_json_get(e, "details");
    const char *msg = ak_json_get_str(e, "message");
    ak_status st = ak_json_is(name, AK_JSON_STRING) ? ak_status_from_name(name->u.str, name->len) : AK_STATUS_UNKNOWN;
    int64_t delay;
    if (!ak_json_is(e, AK_JSON_OBJECT)) return 0;
    /* the status name is Genkit's own code set (gRPC); else the HTTP-style code */
    if ((st == AK_STATUS_UNKNOWN || st == AK_STATUS_OK) && ak_json_get(e, "code"))
        st = ak_status_from_http((int)ak_json_int_or(ak_json_get(e, "code"), 0));
    if (st == AK_STATUS_UNKNOWN || st == AK_STATUS_OK) st = fallback;
    if (ak__gem_bad_key(details)) st = AK_STATUS_UNAUTHENTICATED;
    ak_decode_fail(dc, st, "gemini%s: %s: %s", where, ak_status_name(st), msg ? msg : "(no message)");
    dc->retryable = ak__gem_retryable(st);
    if (dc->retry_after_ms < 0 && (delay = ak__gem_retry_delay(details)) >= 0) dc->retry_after_ms = delay;
    return 1;
}

AK_PRIVATE void ak__gem_error(ak_decode *dc, int status, const char *body, size_t len, const ak_json *json) {
    char where[32];
    ak_buf w;
    AK__UNUSED(body), AK__UNUSED(len);
    ak_buf_init_fixed(&w, where, sizeof where);
    ak_buf_printf(&w, " HTTP %d", status);
    /* the non-SSE streaming call wraps it in an array */
    if (ak_json_is(json, AK_JSON_ARRAY)) json = ak_json_first(json);
    ak__gem_fail_with(dc, ak_json_get(json, "error"), dc->error.status, where);
}

AK_PRIVATE void ak__gem_read_usage(ak__gem_state *st, const ak_json *usage) {
    int64_t v;
    int i;
    if (!ak_json_is(usage, AK_JSON_OBJECT)) return;
    st->usage_seen = 1; /* each report replaces the last: they are running totals */
    for (i = 0; i < AK__GEM_USAGE_N; i++)
        if (ak_json_int64(ak_json_get(usage, ak__gem_usage_keys[i][0]), &v) == AK_OK && v >= 0)
            st->usage[i] = v, st->usage_seen |= 1u << (i + 1);
        else
            st->usage[i] = 0;
}

AK_PRIVATE ak_json *ak__gem_usage(ak_decode *dc, const ak__gem_state *st) {
    ak_json_doc *d = dc->out;
    ak_json *u;
    int i;
    if (!st->usage_seen) return NULL;
    u = ak_json_new_object(d);
    for (i = 0; i < AK__GEM_USAGE_N; i++)
        if (i < 3 || (st->usage_seen & (1u << (i + 1)))) ak_json_set_int(d, u, ak__gem_usage_keys[i][1], st->usage[i]);
    return u;
}

/* Ends the open text run: it becomes one part (with the signature that closed it). */
AK_PRIVATE ak_result ak__gem_flush(ak_decode *dc, ak__gem_state *st, const ak_json *sig) {
    int kind = st->run_kind;
    ak_json *part;
    if (kind == AK__GEM_NONE) return AK_OK;
    st->run_kind = AK__GEM_NONE;
    part = ak__prov_signed_part(dc->out, kind == AK__GEM_THOUGHT ? "reasoning" : "text", st->run.ptr ? st->run.ptr : "",
                                st->run.len, sig ? sig->u.str : "", sig ? sig->len : 0);
    ak_buf_clear(&st->run);
    return ak__prov_keep(dc, &st->message, part);
}

/* The thoughtSignature of a response part, when it has one. */
AK_PRIVATE const ak_json *ak__gem_sig(const ak_json *part) {
    const ak_json *s = ak_json_get(part, "thoughtSignature");
    return ak_json_is(s, AK_JSON_STRING) && s->len ? s : NULL;
}

/* A text or thought delta. Consecutive deltas of one kind merge into one part; a delta
   carrying a signature closes its part so the signature stays with the text it came with,
   and a signature on an empty part makes a part of its own ({text: "", metadata}). */
AK_PRIVATE ak_result ak__gem_text(ak_decode *dc, ak__gem_state *st, const ak_json *part, const ak_json *text,
                                  ak_json *chunk) {
    const ak_json *sig = ak__gem_sig(part);
    int kind = ak_json_bool(ak_json_get(part, "thought"), 0) ? AK__GEM_THOUGHT : AK__GEM_TEXT;
    ak_result rc = AK_OK;
    if (!text->len && !sig) return AK_OK;
    if (st->run_kind != kind || !text->len) rc = ak__gem_flush(dc, st, NULL);
    if (rc == AK_OK) {
        st->run_kind = kind;
        rc = ak__prov_append(dc, &st->run, text->u.str, text->len, "a text part");
        if (rc == AK_OK && sig) rc = ak__gem_flush(dc, st, sig);
    }
    if (rc == AK_OK && chunk)
        ak_json_push(chunk, ak__prov_signed_part(&dc->scratch, kind == AK__GEM_THOUGHT ? "reasoning" : "text",
                                                 text->u.str, text->len, sig ? sig->u.str : "", sig ? sig->len : 0));
    return rc;
}

/* "a__b" back to the tool name "a/b" (see ak__gem_write_name), rewritten in place in the
   copy made for it. */
AK_PRIVATE ak_json *ak__gem_read_name(ak_json_doc *d, const ak_json *name) {
    ak_json *s = ak_json_new_strn(d, name->u.str, name->len);
    char *w;
    uint32_t i, j = 0;
    if (!s) return NULL;
    w = AK__UNCONST(char *, s->u.str);
    for (i = 0; i < s->len; i++, j++) {
        if (w[i] == '_' && i + 1 < s->len && w[i + 1] == '_') w[j] = '/', i++;
        else w[j] = w[i];
    }
    w[j] = 0;
    s->len = j;
    return s;
}

/* A whole function call (the Gemini API never splits them) as a toolRequest; a call
   without an id gets a made-up ref, unique within the response. */
AK_PRIVATE ak_json *ak__gem_tool_request(ak_decode *dc, ak__gem_state *st, const ak_json *fc) {
    const ak_json *id = ak_json_get(fc, "id"), *args = ak_json_get(fc, "args");
    ak_json *name = ak__gem_read_name(&dc->scratch, ak_json_get(fc, "name"));
    const char *ref = ak_json_is(id, AK_JSON_STRING) && id->len ? id->u.str : NULL;
    char made[32];
    ak_buf r;
    if (!ref) {
        ak_buf_init_fixed(&r, made, sizeof made);
        ak_buf_printf(&r, "%s%u", AK__GEM_REF_PREFIX, st->calls);
        ref = made;
    }
    st->calls++;
    if (!name) return NULL;
    return ak_part_tool_request(dc->out, name->u.str, ref,
                                ak_json_is(args, AK_JSON_OBJECT) ? args : ak_json_new_object(&dc->scratch));
}

/* inlineData as a data URL; fileData by its URI (the caller checked the shape). NULL when
   the decode failed (out of memory, or the URL is beyond the response limit). */
AK_PRIVATE ak_json *ak__gem_media_part(ak_decode *dc, const ak_json *inline_data, const ak_json *file_data) {
    ak_json_doc *d = dc->out;
    const ak_json *src = inline_data ? inline_data : file_data;
    const ak_json *mime = ak_json_get(src, "mimeType"), *v = ak_json_get(src, inline_data ? "data" : "fileUri");
    ak_json *media = NULL, *part = NULL;
    ak_result rc = AK_OK;
    ak_buf url;
    ak_buf_init(&url, ak_context_allocator(dc->ctx));
    if (inline_data) {
        rc = ak__prov_append(dc, &url, "data:", 5, "inline data");
        if (rc == AK_OK && mime) rc = ak__prov_append(dc, &url, mime->u.str, mime->len, "inline data");
        if (rc == AK_OK) rc = ak__prov_append(dc, &url, ";base64,", 8, "inline data");
    }
    if (rc == AK_OK) rc = ak__prov_append(dc, &url, v->u.str, v->len, "inline data");
    if (rc == AK_OK) {
        media = ak_json_new_object(d);
        part = ak_json_new_object(d);
        ak_json_set(d, media, "url", ak_json_new_strn(d, url.ptr, url.len));
        if (mime) ak_json_set(d, media, "contentType", ak_json_copy(d, mime));
        ak_json_set(d, part, "media", media);
    }
    ak_buf_free(&url);
    return rc == AK_OK && !d->err ? part : NULL;
}

/* {custom: {executableCode | codeExecutionResult: value}} */
AK_PRIVATE ak_json *ak__gem_custom_part(ak_json_doc *d, const ak_json *member) {
    ak_json *part = ak_json_new_object(d), *custom = ak_json_new_object(d);
    ak_json_setn(d, custom, member->key, member->key_len, ak_json_copy(d, member));
    ak_json_set(d, part, "custom", custom);
    return d->err ? NULL : part;
}

/* Any part but text: ends the text run, keeps the part with its signature, adds a copy to
   the chunk. */
AK_PRIVATE ak_result ak__gem_other(ak_decode *dc, ak__gem_state *st, const ak_json *src, ak_json *part,
                                   ak_json *chunk) {
    const ak_json *sig = ak__gem_sig(src);
    ak_json *md;
    ak_result rc = ak__gem_flush(dc, st, NULL);
    if (rc != AK_OK) return rc;
    if (part && sig) {
        md = ak_json_new_object(dc->out);
        ak_json_set(dc->out, md, "thoughtSignature", ak_json_copy(dc->out, sig));
        ak_json_set(dc->out, part, "metadata", md);
    }
    if ((rc = ak__prov_keep(dc, &st->message, part)) == AK_OK && chunk) ak_json_push(chunk, ak_json_copy(&dc->scratch, part));
    return rc;
}

AK_PRIVATE ak_result ak__gem_part_in(ak_decode *dc, ak__gem_state *st, const ak_json *part, ak_json *chunk) {
    const ak_json *v;
    if (ak_json_is(v = ak_json_get(part, "text"), AK_JSON_STRING)) return ak__gem_text(dc, st, part, v, chunk);
    if ((v = ak_json_get(part, "functionCall")) != NULL) {
        /* Vertex's streamFunctionCallArguments sends calls in pieces; the Gemini API never does */
        if (ak_json_get(v, "partialArgs") || ak_json_bool(ak_json_get(v, "willContinue"), 0))
            return ak_decode_fail(dc, AK_STATUS_UNIMPLEMENTED, "gemini: streamed function call arguments are not supported");
        if (!ak_json_is(ak_json_get(v, "name"), AK_JSON_STRING))
            return ak_decode_fail(dc, AK_STATUS_INTERNAL, "gemini: a functionCall without a name");
        return ak__gem_other(dc, st, part, ak__gem_tool_request(dc, st, v), chunk);
    }
    if ((v = ak_json_get(part, "inlineData")) != NULL || (v = ak_json_get(part, "fileData")) != NULL) {
        const ak_json *mime = ak_json_get(v, "mimeType");
        int is_inline = ak_json_get(part, "inlineData") != NULL;
        if (!ak_json_is(ak_json_get(v, is_inline ? "data" : "fileUri"), AK_JSON_STRING) ||
            (mime && !ak_json_is(mime, AK_JSON_STRING)))
            return AK_OK; /* not a usable media part */
        return ak__gem_other(dc, st, part, ak__gem_media_part(dc, is_inline ? v : NULL, is_inline ? NULL : v), chunk);
    }
    if ((v = ak_json_get(part, "executableCode")) != NULL || (v = ak_json_get(part, "codeExecutionResult")) != NULL)
        return ak__gem_other(dc, st, part, ak__gem_custom_part(dc->out, v), chunk);
    return AK_OK; /* empty parts {}, functionResponse echoes, future kinds */
}

AK_PRIVATE ak_result ak__gem_candidate(ak_decode *dc, ak__gem_state *st, const ak_json *cand, ak_json *chunk) {
    const ak_json *p, *reason = ak_json_get(cand, "finishReason"), *msg = ak_json_get(cand, "finishMessage");
    ak_result rc = AK_OK;
    for (p = ak_json_first(ak_json_path(cand, "content.parts")); p && rc == AK_OK; p = p->next)
        rc = ak__gem_part_in(dc, st, p, chunk);
    if (rc != AK_OK) return rc;
    if (ak_json_is(reason, AK_JSON_STRING)) {
        st->finished = 1;
        st->reason = ak__gem_finish(reason);
        /* say which kind of block or failure it was when Gemini does not */
        if (!msg && st->reason != AK_FINISH_STOP && st->reason != AK_FINISH_LENGTH) msg = reason;
    }
    if (ak_json_is(msg, AK_JSON_STRING)) st->finish_message = ak_json_copy(dc->out, msg);
    return AK_OK;
}

/* One GenerateContentResponse: a whole body, or one event of a stream holding only the
   new parts. chunk (scratch) collects what the event adds, NULL when not streaming. */
AK_PRIVATE ak_result ak__gem_response(ak_decode *dc, ak__gem_state *st, const ak_json *r, ak_json *chunk) {
    const ak_json *c, *block = ak_json_path(r, "promptFeedback.blockReason");
    if (ak__gem_fail_with(dc, ak_json_get(r, "error"), AK_STATUS_UNKNOWN, chunk ? " stream error" : " error"))
        return AK_ERR_MODEL;
    ak__gem_read_usage(st, ak_json_get(r, "usageMetadata"));
    if (ak_json_is(block, AK_JSON_STRING)) {
        /* the prompt itself was refused: no candidates come */
        ak_buf m;
        char text[96];
        ak_buf_init_fixed(&m, text, sizeof text);
        ak_buf_printf(&m, "prompt blocked: %.*s", (int)AK__MIN(block->len, 64u), block->u.str);
        st->finished = 1;
        st->reason = AK_FINISH_BLOCKED;
        st->finish_message = ak_json_new_str(dc->out, text);
    }
    /* one answer is asked for (candidateCount 1): the first candidate is it */
    for (c = ak_json_first(ak_json_get(r, "candidates")); c; c = c->next)
        if (ak_json_int_or(ak_json_get(c, "index"), 0) == 0) return ak__gem_candidate(dc, st, c, chunk);
    return AK_OK;
}

AK_PRIVATE ak_result ak__gem_finish_response(ak_decode *dc, ak__gem_state *st) {
    ak_result rc = ak__gem_flush(dc, st, NULL);
    if (rc != AK_OK) return rc;
    if (!ak__prov_message(dc, &st->message)) return ak_decode_fail(dc, AK_STATUS_RESOURCE_EXHAUSTED, "gemini: out of memory");
    return ak_decode_finish(dc, st->message, st->reason, ak_json_str(st->finish_message), ak__gem_usage(dc, st));
}

AK_PRIVATE ak_result ak__gem_event(ak_decode *dc, const char *name, const char *data, size_t len, const ak_json *json) {
    ak__gem_state *st = (ak__gem_state *)dc->state;
    ak_json *chunk, *content;
    ak_result rc;
    AK__UNUSED(name);
    if (ak__model_trim_eq(data, len, "")) return AK_OK;
    if (!ak_json_is(json, AK_JSON_OBJECT))
        return ak_decode_fail(dc, AK_STATUS_INTERNAL, "gemini sent an event that is not a JSON object");
    content = ak_json_new_array(&dc->scratch);
    if ((rc = ak__gem_response(dc, st, json, content)) != AK_OK) return rc;
    if (!ak_json_len(content)) return AK_OK;
    chunk = ak_json_new_object(&dc->scratch);
    if (ak_json_set(&dc->scratch, chunk, "content", content) != AK_OK || dc->scratch.err)
        return ak_decode_fail(dc, AK_STATUS_RESOURCE_EXHAUSTED, "gemini: out of memory");
    return ak_decode_emit(dc, chunk);
}

AK_PRIVATE ak_result ak__gem_end(ak_decode *dc) {
    ak__gem_state *st = (ak__gem_state *)dc->state;
    if (!st->finished) return ak__decode_truncated(dc, "gemini stream ended without a finishReason (truncated)");
    return ak__gem_finish_response(dc, st);
}

AK_PRIVATE ak_result ak__gem_body(ak_decode *dc, const ak_json *json) {
    ak__gem_state *st = (ak__gem_state *)dc->state;
    ak_result rc;
    if (!ak_json_is(json, AK_JSON_OBJECT)) return ak_decode_fail(dc, AK_STATUS_INTERNAL, "gemini returned a body that is not an object");
    if ((rc = ak__gem_response(dc, st, json, NULL)) != AK_OK) return rc;
    return ak__gem_finish_response(dc, st);
}

AK_PRIVATE void ak__gem_init(ak_decode *dc) {
    ak__gem_state *st = (ak__gem_state *)dc->state;
    ak_buf_init(&st->run, ak_context_allocator(dc->ctx));
}

AK_PRIVATE void ak__gem_cleanup(ak_decode *dc) { ak_buf_free(&((ak__gem_state *)dc->state)->run); }

AKDEF const ak_adapter *ak_adapter_gemini(void) {
    static const ak_adapter adapter = {"gemini", AK_STREAM_SSE, sizeof(ak__gem_state), ak__gem_init,
                                       ak__gem_cleanup, ak__gem_build, ak__gem_event, ak__gem_body,
                                       ak__gem_end, ak__gem_error};
    return &adapter;
}
/* ---- end src/gemini.c ---- */
#endif /* src/gemini.c */

#if !defined(AK_NO_LOCAL_MODELS)
/* ---- begin src/model_local.c ---- */
/* >>model_local: models implemented in C without a network: the programmable model of the
   conformance harness and the deterministic scripted model of the interop agents and the
   offline demo */


/* ---- programmable model --------------------------------------------------------------- */

AK_PRIVATE ak_result ak__prog_start(ak_model *model, ak_model_call *call) {
    ak_programmable_model *m = (ak_programmable_model *)model->ud;
    const ak_json *resp = ak_json_at(m->responses, m->next), *c;
    ak_json *copy;
    /* Remember the request with its messages, so tests can check what the agent sent. */
    ak_json_doc_reset(&m->request_doc);
    m->last_request = ak_model_request_json(call, &m->request_doc);
    if (!resp) {
        ak_model_call_fail(call, AK_STATUS_INTERNAL, 0, -1,
                           "programmable model %s: no response queued for call %zu", model->name, m->next + 1);
        return AK_OK;
    }
    for (c = ak_json_first(ak_json_at(m->chunks, m->next)); c; c = c->next)
        if (ak_model_call_emit(call, c) != AK_OK) {
            ak_model_call_fail(call, AK_STATUS_CANCELLED, 0, -1, "cancelled by the chunk receiver");
            return AK_OK;
        }
    m->next++;
    if (!(copy = ak_json_copy(call->out, resp))) {
        ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "out of memory");
        return AK_OK;
    }
    ak_model_call_succeed(call, copy);
    return AK_OK;
}

AKDEF void ak_programmable_model_init(ak_programmable_model *m, const ak_allocator *alloc,
                                      const char *name) {
    AK_MEMSET(m, 0, sizeof *m);
    ak_json_doc_init(&m->doc, alloc);
    ak_json_doc_init(&m->request_doc, alloc);
    m->model.name = name ? name : "programmableModel";
    m->model.start = ak__prog_start;
    m->model.ud = m;
}

AKDEF void ak_programmable_model_free(ak_programmable_model *m) {
    ak_json_doc_free(&m->doc);
    ak_json_doc_free(&m->request_doc);
    m->responses = m->chunks = m->last_request = NULL;
}

AKDEF ak_result ak_programmable_model_set(ak_programmable_model *m, const ak_json *responses,
                                          const ak_json *chunks) {
    if (responses && responses->type != AK_JSON_ARRAY) return AK_ERR_JSON_TYPE;
    if (chunks && chunks->type != AK_JSON_ARRAY) return AK_ERR_JSON_TYPE;
    ak_json_doc_reset(&m->doc);
    m->next = 0;
    m->responses = responses ? ak_json_copy(&m->doc, responses) : ak_json_new_array(&m->doc);
    m->chunks = chunks ? ak_json_copy(&m->doc, chunks) : NULL;
    return m->doc.err;
}

/* ---- scripted model ------------------------------------------------------------------- */

/* What the scripted model decided to do with a request. */
typedef struct ak__script {
    const ak_json *last;         /* last message */
    ak_buf text;                 /* trimmed text of the last user message */
    const char *cmd, *arg;       /* first word, the rest joined by single spaces */
    size_t cmd_len;
} ak__script;

AK_PRIVATE int ak__is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Collapses whitespace runs to single spaces and trims, in place. */
AK_PRIVATE void ak__normalize_words(ak_buf *b) {
    size_t i, o = 0;
    int space = 0;
    for (i = 0; i < b->len; i++) {
        if (ak__is_space(b->ptr[i])) {
            space = o > 0;
            continue;
        }
        if (space) b->ptr[o++] = ' ', space = 0;
        b->ptr[o++] = b->ptr[i];
    }
    b->len = o;
    if (b->ptr) b->ptr[o] = 0;
}

AK_PRIVATE void ak__script_parse(ak__script *s, const ak_model_call *call) {
    const ak_json *user = NULL;
    const char *sp;
    size_t i;
    for (i = 0; i < call->message_count; i++) {
        const ak_json *m = call->messages[i];
        s->last = m;
        if (ak_msg_role(m) && ak__streq(ak_msg_role(m), "user")) user = m;
    }
    ak_msg_text(user, &s->text);
    ak__normalize_words(&s->text);
    s->cmd = s->text.ptr ? s->text.ptr : "";
    for (sp = s->cmd; *sp && *sp != ' '; sp++) {
    }
    s->cmd_len = (size_t)(sp - s->cmd);
    s->arg = *sp ? sp + 1 : sp;
}

AK_PRIVATE int ak__script_is(const ak__script *s, const char *cmd) { return ak__eqn(s->cmd, s->cmd_len, cmd); }

/* The final response {message: {role: model, content: [parts]}, finishReason: stop}. */
AK_PRIVATE ak_json *ak__script_response(ak_json_doc *d, ak_json *content) {
    ak_json *r = ak_json_new_object(d), *msg = ak_json_new_object(d);
    if (!content || ak_json_set_str(d, msg, "role", "model") != AK_OK ||
        ak_json_set(d, msg, "content", content) != AK_OK || ak_json_set(d, r, "message", msg) != AK_OK ||
        ak_json_set_str(d, r, "finishReason", "stop") != AK_OK)
        return NULL;
    return r;
}

AK_PRIVATE ak_json *ak__script_text(ak_json_doc *d, const char *prefix, const char *text, size_t len) {
    ak_buf b;
    ak_json *content = ak_json_new_array(d);
    ak_buf_init(&b, d->arena.alloc);
    ak_buf_puts(&b, prefix);
    ak_buf_append(&b, text, len);
    if (b.err || ak_json_push(content, ak_part_textn(d, b.ptr, b.len)) != AK_OK) content = NULL;
    ak_buf_free(&b);
    return content;
}

/* A toolRequest part {name, input: {key: value}, ref}. */
AK_PRIVATE ak_result ak__script_tool(ak_json_doc *d, ak_json *content, const char *name, const char *key,
                                     ak_json *value, const char *ref) {
    ak_json *input = ak_json_new_object(d);
    if (!input || ak_json_set(d, input, key, value) != AK_OK) return AK_ERR_OUT_OF_MEMORY;
    return ak_json_push(content, ak_part_tool_request(d, name, ref, input));
}

/* "tool result: [outputs...]" for a request ending in a tool message. */
AK_PRIVATE ak_json *ak__script_tool_result(ak_json_doc *d, const ak_json *tool_msg) {
    ak_json_doc tmp;
    ak_json *outputs, *content = NULL;
    const ak_json *p;
    ak_buf b;
    ak_json_doc_init(&tmp, d->arena.alloc);
    ak_buf_init(&b, d->arena.alloc);
    outputs = ak_json_new_array(&tmp);
    for (p = ak_json_first(ak_json_get(tool_msg, "content")); p; p = p->next) {
        const ak_json *tr = ak_json_get(p, "toolResponse");
        if (tr) ak_json_push(outputs, ak_json_copy(&tmp, ak_json_get(tr, "output")));
    }
    if (tmp.err == AK_OK && ak_json_write(outputs, &b) == AK_OK)
        content = ak__script_text(d, "tool result: ", b.ptr, b.len);
    ak_buf_free(&b);
    ak_json_doc_free(&tmp);
    return content;
}

AK_PRIVATE size_t ak__count_non_system(const ak_model_call *call) {
    size_t i, n = 0;
    for (i = 0; i < call->message_count; i++)
        if (!ak_msg_role(call->messages[i]) || !ak__streq(ak_msg_role(call->messages[i]), "system")) n++;
    return n;
}

/* Streams one chunk {content: [{text}]}. */
AK_PRIVATE ak_result ak__script_emit_text(ak_model_call *call, const char *text, size_t len) {
    ak_json_doc tmp;
    ak_json *chunk, *content;
    ak_result rc;
    ak_json_doc_init(&tmp, call->out->arena.alloc);
    chunk = ak_json_new_object(&tmp);
    content = ak_json_new_array(&tmp);
    ak_json_push(content, ak_part_textn(&tmp, text, len));
    ak_json_set(&tmp, chunk, "content", content);
    rc = tmp.err ? tmp.err : ak_model_call_emit(call, chunk);
    ak_json_doc_free(&tmp);
    return rc;
}

/* "stream w1 w2 ... wn": one chunk per word ("w1 ", ..., "wn"), then the joined text. */
AK_PRIVATE ak_json *ak__script_stream(ak_model_call *call, const char *words) {
    const char *p = words;
    while (*p) {
        const char *end = p;
        while (*end && *end != ' ') end++;
        if (ak__script_emit_text(call, p, (size_t)(end - p) + (*end == ' ')) != AK_OK) return NULL;
        p = *end ? end + 1 : end;
    }
    return ak__script_text(call->out, "", words, ak__strlen(words));
}

#define AK__SLOWSTREAM_MS 10000

/* Decides and answers; returns AK_PENDING only for slowstream. */
AK_PRIVATE ak_result ak__script_answer(ak_model_call *call, ak__script *s) {
    ak_json_doc *d = call->out;
    const char *last_role = ak_msg_role(s->last);
    ak_json *content = NULL, *num;
    char tmp[48];
    ak_buf b;
    if (last_role && ak__streq(last_role, "tool")) {
        content = ak__script_tool_result(d, s->last);
    } else if (ak__script_is(s, "stream") && *s->arg) {
        content = ak__script_stream(call, s->arg);
    } else if (ak__script_is(s, "slowstream")) {
        if (ak__script_emit_text(call, "tick 1", 6) != AK_OK) return AK_ERR_CANCELLED;
        call->timer = ak_mono_ms(call->ctx) + AK__SLOWSTREAM_MS;
        return AK_PENDING;
    } else if (ak__script_is(s, "weather") || ak__script_is(s, "delete")) {
        int weather = ak__script_is(s, "weather");
        content = ak_json_new_array(d);
        if (ak__script_tool(d, content, weather ? "getWeather" : "deleteFile", weather ? "city" : "path",
                            ak_json_new_str(d, s->arg), weather ? "w1" : "d1") != AK_OK)
            content = NULL;
    } else if (ak__script_is(s, "transfer")) {
        content = ak_json_new_array(d);
        /* Number(arg) in the reference app: not a number becomes null */
        num = ak_json_new_number(d, s->arg, ak__strlen(s->arg));
        if (!num) d->err = AK_OK, num = ak_json_new_null(d);
        if (ak__script_tool(d, content, "approveTransfer", "amount", num, "t1") != AK_OK) content = NULL;
    } else if (ak__script_is(s, "both")) {
        content = ak_json_new_array(d);
        if (ak__script_tool(d, content, "getWeather", "city", ak_json_new_str(d, "Oslo"), "w1") != AK_OK ||
            ak__script_tool(d, content, "approveTransfer", "amount", ak_json_new_int(d, 5), "t1") != AK_OK)
            content = NULL;
    } else if (ak__script_is(s, "count")) {
        ak_buf_init_fixed(&b, tmp, sizeof tmp);
        ak_buf_put_u64(&b, ak__count_non_system(call));
        content = ak__script_text(d, "history=", tmp, b.len);
    } else if (ak__script_is(s, "system?")) {
        const ak_json *sys = NULL;
        size_t i;
        ak_buf_init(&b, d->arena.alloc);
        for (i = 0; i < call->message_count && !sys; i++)
            if (ak_msg_role(call->messages[i]) && ak__streq(ak_msg_role(call->messages[i]), "system"))
                sys = call->messages[i];
        if (sys) ak_msg_text(sys, &b);
        content = sys ? ak__script_text(d, "system=", b.ptr ? b.ptr : "", b.len)
                      : ak__script_text(d, "system=none", "", 0);
        ak_buf_free(&b);
    } else if (ak__script_is(s, "modelfail")) {
        ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "model on fire");
        return AK_OK;
    } else {
        content = ak__script_text(d, "echo: ", s->text.ptr ? s->text.ptr : "", s->text.len);
    }
    if (!content) {
        ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "out of memory");
        return AK_OK;
    }
    ak_model_call_succeed(call, ak__script_response(d, content));
    if (!call->response) ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "out of memory");
    return AK_OK;
}

AK_PRIVATE ak_result ak__script_start(ak_model *model, ak_model_call *call) {
    ak__script s;
    ak_result rc;
    AK__UNUSED(model);
    AK_MEMSET(&s, 0, sizeof s);
    ak_buf_init(&s.text, call->out->arena.alloc);
    ak__script_parse(&s, call);
    /* a text lost to a failed allocation must not be answered as if it were empty */
    rc = s.text.err ? AK_ERR_OUT_OF_MEMORY : ak__script_answer(call, &s);
    ak_buf_free(&s.text);
    if (rc == AK_ERR_OUT_OF_MEMORY) ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "out of memory");
    if (rc == AK_ERR_CANCELLED) ak_model_call_fail(call, AK_STATUS_CANCELLED, 0, -1, "cancelled");
    return rc == AK_PENDING ? AK_PENDING : AK_OK;
}

/* Only slowstream is ever pending: it finishes when its ten seconds are up. */
AK_PRIVATE ak_result ak__script_poll(ak_model *model, ak_model_call *call, int wait_ms) {
    int64_t left = call->timer - ak_mono_ms(call->ctx);
    ak_json *content;
    AK__UNUSED(model);
    if (left > 0 && wait_ms > 0) {
        ak_sleep_ms(call->ctx, AK__MIN(left, (int64_t)wait_ms));
        left = call->timer - ak_mono_ms(call->ctx);
    }
    if (left > 0) return AK_PENDING;
    content = ak__script_text(call->out, "slow done", "", 0);
    ak_model_call_succeed(call, content ? ak__script_response(call->out, content) : NULL);
    if (!call->response) ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "out of memory");
    return AK_OK;
}

AK_PRIVATE void ak__script_cancel(ak_model *model, ak_model_call *call) {
    AK__UNUSED(model);
    AK__UNUSED(call); /* the only pending state is the deadline in call->timer */
}

AKDEF void ak_scripted_model_init(ak_model *m) {
    AK_MEMSET(m, 0, sizeof *m);
    m->name = "scripted";
    m->start = ak__script_start;
    m->poll = ak__script_poll;
    m->cancel = ak__script_cancel;
}
/* ---- end src/model_local.c ---- */
#endif /* src/model_local.c */

/* ---- begin src/session.c ---- */
/* >>session implementation: message lists, session state, snapshots and their JSON */


static const char *const ak__snapshot_status_names[] = {NULL, "pending", "completed", "aborted", "failed", "expired"};

AKDEF const char *ak_snapshot_status_name(ak_snapshot_status s) {
    return (unsigned)s < AK__COUNTOF(ak__snapshot_status_names) ? ak__snapshot_status_names[s] : NULL;
}

AKDEF ak_snapshot_status ak_snapshot_status_from_name(const char *name) {
    unsigned i;
    for (i = 1; name && i < AK__COUNTOF(ak__snapshot_status_names); i++)
        if (ak__streq(name, ak__snapshot_status_names[i])) return (ak_snapshot_status)i;
    return AK_SNAPSHOT_NONE;
}

AKDEF int ak_id_is_safe(const char *id) {
    size_t n = 0;
    if (!id || !*id || ak__streq(id, ".") || ak__streq(id, "..")) return 0;
    for (; id[n]; n++) {
        unsigned char c = AK__U8(id[n]);
        if (n >= AK_ID_MAX || c < 0x20 || c >= 0x7F || c == '/' || c == '\\') return 0;
    }
    return 1;
}

AK_PRIVATE char *ak__strdup(const ak_allocator *a, const char *s) {
    size_t n;
    char *p;
    if (!s) return NULL;
    n = ak__strlen(s);
    p = (char *)ak_alloc(a, n + 1);
    if (p) AK_MEMCPY(p, s, n + 1);
    return p;
}

AK_PRIVATE void ak__strfree(const ak_allocator *a, char *s) {
    if (s) ak_free(a, s, ak__strlen(s) + 1);
}

/* ---- message lists -------------------------------------------------------------------- */

AKDEF size_t ak_msgs_count(const ak_msgs *m) { return m ? m->count : 0; }

AKDEF const ak_json *ak_msgs_at(const ak_msgs *m, size_t i) {
    const ak_json *v;
    if (!m || i >= m->count) return NULL;
    while (i < m->prev_count) m = m->prev;
    for (v = m->first, i -= m->prev_count; v && i; i--) v = v->next;
    return v;
}

AKDEF void ak_msgs_collect(const ak_msgs *m, const ak_json **out) {
    size_t limit = ak_msgs_count(m);
    /* Top segment first; each contributes its own messages below the current limit. */
    for (; m && limit; m = m->prev) {
        const ak_json *v = m->first;
        size_t i = m->prev_count;
        for (; v && i < limit; v = v->next) out[i++] = v;
        if (limit > m->prev_count) limit = m->prev_count;
    }
}

AKDEF ak_msgs *ak_msgs_retain(ak_msgs *m) {
    if (m) m->refs++;
    return m;
}

AKDEF void ak_msgs_release(ak_msgs *m) {
    /* Iterative: a long conversation is a long chain of segments. */
    while (m && --m->refs == 0) {
        ak_msgs *prev = m->prev;
        ak_json_doc_free(&m->doc);
        ak_free(m->alloc, m, sizeof *m);
        m = prev;
    }
}

/* A new empty segment on top of the first prev_count messages of prev (reference taken). */
AK_PRIVATE ak_msgs *ak__msgs_segment(const ak_allocator *a, ak_msgs *prev, size_t prev_count, size_t hint) {
    ak_msgs *m = (ak_msgs *)ak_alloc(a, sizeof *m);
    if (!m) return NULL;
    AK_MEMSET(m, 0, sizeof *m);
    m->refs = 1;
    m->alloc = a;
    m->prev = prev;
    m->prev_count = m->count = prev_count;
    ak_json_doc_init(&m->doc, a);
    m->doc.arena.next_size = AK__MAX(hint, 256);
    return m;
}

/* Makes *m a segment this caller alone may append to. */
AK_PRIVATE ak_result ak__msgs_own(const ak_allocator *a, ak_msgs **m, size_t hint) {
    ak_msgs *top;
    if (*m && (*m)->refs == 1) return AK_OK;
    /* The caller's reference to the shared list moves into the new segment's prev. */
    top = ak__msgs_segment(a, *m, ak_msgs_count(*m), hint);
    if (!top) return AK_ERR_OUT_OF_MEMORY;
    *m = top;
    return AK_OK;
}

AKDEF ak_result ak_msgs_append(const ak_allocator *a, ak_msgs **m, const ak_json *msg) {
    ak_json *copy;
    ak_result rc = ak__msgs_own(a, m, ak_json_copy_size(msg) * 2);
    if (rc != AK_OK) return rc;
    copy = ak_json_copy(&(*m)->doc, msg);
    if (!copy) return AK_ERR_OUT_OF_MEMORY;
    copy->next = NULL;
    if ((*m)->last) (*m)->last->next = copy;
    else (*m)->first = copy;
    (*m)->last = copy;
    (*m)->count++;
    return AK_OK;
}

AKDEF ak_result ak_msgs_compact(const ak_allocator *a, ak_msgs *m) {
    ak_json_doc packed;
    ak_json *v, *first = NULL, *last = NULL;
    size_t need = 0;
    if (!m || m->refs != 1 || !m->first) return AK_OK;
    for (v = m->first; v; v = v->next) need += ak_json_copy_size(v);
    if (ak_arena_capacity(&m->doc.arena) <= need + need / 8) return AK_OK; /* already tight */
    ak_arena_init(&packed.arena, a, need);
    packed.root = NULL;
    packed.err = AK_OK;
    for (v = m->first; v; v = v->next) {
        ak_json *c = ak_json_copy(&packed, v);
        if (!c) {
            ak_json_doc_free(&packed);
            return AK_ERR_OUT_OF_MEMORY; /* the list is unchanged */
        }
        if (last) last->next = c;
        else first = c;
        last = c;
    }
    ak_json_doc_free(&m->doc);
    m->doc = packed;
    m->first = first;
    m->last = last;
    return AK_OK;
}

AKDEF ak_result ak_msgs_truncate(const ak_allocator *a, ak_msgs **m, size_t n) {
    ak_msgs *top;
    size_t own;
    if (n > ak_msgs_count(*m)) return AK_ERR_INVALID_ARGUMENT;
    if (n == ak_msgs_count(*m)) return AK_OK;
    if ((*m)->refs == 1 && n >= (*m)->prev_count) {
        /* Drop own messages in place (their memory goes with the segment). */
        ak_json *v = (*m)->first;
        for (own = n - (*m)->prev_count; own > 1; own--) v = v->next;
        if (n == (*m)->prev_count) (*m)->first = (*m)->last = NULL;
        else v->next = NULL, (*m)->last = v;
        (*m)->count = n;
        return AK_OK;
    }
    /* Shared, or cutting into an older segment: a new empty view of the first n. */
    top = ak__msgs_segment(a, *m, n, 0);
    if (!top) return AK_ERR_OUT_OF_MEMORY;
    *m = top;
    return AK_OK;
}

AKDEF ak_result ak_msgs_from_json(const ak_allocator *a, const ak_json *array, ak_msgs **out) {
    const ak_json *v;
    *out = NULL;
    for (v = ak_json_first(array); v; v = v->next) {
        ak_result rc = ak_msgs_append(a, out, v);
        if (rc != AK_OK) {
            ak_msgs_release(*out);
            *out = NULL;
            return rc;
        }
    }
    return AK_OK;
}

AKDEF ak_json *ak_msgs_to_json(const ak_msgs *m, ak_json_doc *d) {
    ak_json *arr = ak_json_new_array(d), *tail = NULL;
    size_t i, n = ak_msgs_count(m);
    for (i = 0; arr && i < n; i++) {
        ak_json *c = ak_json_copy(d, ak_msgs_at(m, i));
        if (!c) return NULL;
        /* link directly: ak_json_push would walk the list every time */
        if (tail) tail->next = c;
        else arr->u.first = c;
        tail = c;
        arr->len++;
    }
    return arr;
}

/* ---- session state -------------------------------------------------------------------- */

AKDEF ak_result ak_session_state_copy(const ak_allocator *a, const ak_session_state *from,
                                      ak_session_state *to) {
    AK_MEMSET(to, 0, sizeof *to);
    if (!from) return AK_OK;
    if (from->session_id && !(to->session_id = ak__strdup(a, from->session_id))) return AK_ERR_OUT_OF_MEMORY;
    to->messages = ak_msgs_retain(from->messages);
    to->custom = ak_jref_retain(from->custom);
    to->artifacts = ak_jref_retain(from->artifacts);
    return AK_OK;
}

AKDEF void ak_session_state_free(const ak_allocator *a, ak_session_state *s) {
    ak__strfree(a, s->session_id);
    ak_msgs_release(s->messages);
    ak_jref_release(s->custom);
    ak_jref_release(s->artifacts);
    AK_MEMSET(s, 0, sizeof *s);
}

AKDEF ak_result ak_session_state_set_id(const ak_allocator *a, ak_session_state *s, const char *id) {
    char *copy = ak__strdup(a, id);
    if (!copy) return AK_ERR_OUT_OF_MEMORY;
    ak__strfree(a, s->session_id);
    s->session_id = copy;
    return AK_OK;
}

AKDEF ak_json *ak_session_state_to_json(const ak_session_state *s, ak_json_doc *d) {
    ak_json *o = ak_json_new_object(d);
    if (!o) return NULL;
    /* Genkit writes these keys in this order. */
    if (s->custom) ak_json_set(d, o, "custom", ak_json_copy(d, s->custom->value));
    ak_json_set(d, o, "artifacts", s->artifacts ? ak_json_copy(d, s->artifacts->value) : ak_json_new_array(d));
    ak_json_set(d, o, "messages", ak_msgs_to_json(s->messages, d));
    if (s->session_id) ak_json_set_str(d, o, "sessionId", s->session_id);
    return d->err ? NULL : o;
}

AK_PRIVATE ak_result ak__artifacts_validate(const ak_json *arr, ak_error *err) {
    const ak_json *a, *p;
    size_t i = 0;
    if (!ak_json_is(arr, AK_JSON_ARRAY)) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "artifacts must be an array");
    for (a = arr->u.first; a; a = a->next, i++) {
        const ak_json *name = ak_json_get(a, "name"), *parts = ak_json_get(a, "parts");
        if (!ak_json_is(a, AK_JSON_OBJECT) || (name && name->type != AK_JSON_STRING) ||
            !ak_json_is(parts, AK_JSON_ARRAY))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "artifacts[%zu]: an artifact is {name?, parts: [...]}", i);
        for (p = parts->u.first; p; p = p->next) {
            ak_error inner;
            if (ak_part_validate(p, &inner) != AK_OK)
                return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "artifacts[%zu]: %s", i, inner.message);
        }
    }
    return AK_OK;
}

AKDEF ak_result ak_session_state_from_json(const ak_allocator *a, const ak_json *v,
                                           ak_session_state *out, ak_error *err) {
    const ak_json *sid = ak_json_get(v, "sessionId"), *msgs = ak_json_get(v, "messages"),
                  *custom = ak_json_get(v, "custom"), *arts = ak_json_get(v, "artifacts"), *m;
    size_t i = 0;
    ak_result rc;
    AK_MEMSET(out, 0, sizeof *out);
    if (!ak_json_is(v, AK_JSON_OBJECT)) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "state must be an object");
    if (sid && (sid->type != AK_JSON_STRING || sid->len == 0))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "state.sessionId must be a non-empty string");
    if (msgs && msgs->type != AK_JSON_ARRAY)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "state.messages must be an array");
    for (m = ak_json_first(msgs); m; m = m->next, i++) {
        ak_error inner;
        if (ak_msg_validate(m, &inner) != AK_OK)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "state.messages[%zu]: %s", i, inner.message);
    }
    if (arts && (rc = ak__artifacts_validate(arts, err)) != AK_OK) return rc;
    if ((sid && !(out->session_id = ak__strdup(a, sid->u.str))) ||
        ak_msgs_from_json(a, msgs, &out->messages) != AK_OK ||
        (custom && !(out->custom = ak_jref_new(a, custom))) ||
        (arts && arts->len && !(out->artifacts = ak_jref_new(a, arts)))) {
        ak_session_state_free(a, out);
        return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory loading session state");
    }
    return AK_OK;
}

/* ---- snapshots ------------------------------------------------------------------------ */

AK_PRIVATE void ak__snapshot_destroy(ak_snapshot *s) {
    const ak_allocator *a = s->alloc;
    ak__strfree(a, s->id);
    ak__strfree(a, s->session_id);
    ak__strfree(a, s->parent_id);
    ak_jref_release(s->error);
    ak_session_state_free(a, &s->state);
    ak_free(a, s, sizeof *s);
}

AKDEF ak_snapshot *ak_snapshot_new(const ak_allocator *a, const char *id, const char *session_id,
                                   const char *parent_id, const ak_session_state *state) {
    ak_snapshot *s = (ak_snapshot *)ak_alloc(a, sizeof *s);
    if (!s) return NULL;
    AK_MEMSET(s, 0, sizeof *s);
    s->refs = 1;
    s->alloc = a;
    if ((id && !(s->id = ak__strdup(a, id))) || (session_id && !(s->session_id = ak__strdup(a, session_id))) ||
        (parent_id && !(s->parent_id = ak__strdup(a, parent_id))) ||
        ak_session_state_copy(a, state, &s->state) != AK_OK) {
        ak__snapshot_destroy(s);
        return NULL;
    }
    return s;
}

AKDEF ak_snapshot *ak_snapshot_clone(const ak_snapshot *from) {
    ak_snapshot *s = ak_snapshot_new(from->alloc, from->id, from->session_id, from->parent_id, &from->state);
    if (!s) return NULL;
    s->created_at = from->created_at;
    s->updated_at = from->updated_at;
    s->heartbeat_at = from->heartbeat_at;
    s->status = from->status;
    s->finish_reason = from->finish_reason;
    s->has_finish_reason = from->has_finish_reason;
    s->error = ak_jref_retain(from->error);
    return s;
}

AKDEF ak_snapshot *ak_snapshot_retain(ak_snapshot *s) {
    if (s) s->refs++;
    return s;
}

AKDEF void ak_snapshot_release(ak_snapshot *s) {
    if (s && --s->refs == 0) ak__snapshot_destroy(s);
}

AKDEF ak_result ak_snapshot_set_error(ak_snapshot *s, ak_status status, const char *message,
                                      const ak_json *details) {
    ak_json_doc d;
    ak_json *e;
    ak_jref *r;
    ak_json_doc_init(&d, s->alloc);
    e = ak_json_new_object(&d);
    ak_json_set_str(&d, e, "status", ak_status_name(status));
    ak_json_set_str(&d, e, "message", message ? message : "");
    if (details) ak_json_set(&d, e, "details", ak_json_copy(&d, details));
    r = d.err ? NULL : ak_jref_new(s->alloc, e);
    ak_json_doc_free(&d);
    if (!r) return AK_ERR_OUT_OF_MEMORY;
    ak_jref_release(s->error);
    s->error = r;
    return AK_OK;
}

AK_PRIVATE void ak__set_time(ak_json_doc *d, ak_json *o, const char *key, int64_t ms) {
    char ts[25];
    ak_iso8601(ms, ts);
    ak_json_set_str(d, o, key, ts);
}

AKDEF ak_json *ak_snapshot_to_json(const ak_snapshot *s, ak_snapshot_status status_override,
                                   ak_json_doc *d) {
    ak_json *o = ak_json_new_object(d);
    ak_snapshot_status st = status_override ? status_override : s->status;
    if (!o) return NULL;
    /* Genkit's key order, so stored and served snapshots read the same */
    ak_json_set_str(d, o, "snapshotId", s->id ? s->id : "");
    if (s->session_id) ak_json_set_str(d, o, "sessionId", s->session_id);
    ak__set_time(d, o, "createdAt", s->created_at);
    if (s->updated_at) ak__set_time(d, o, "updatedAt", s->updated_at);
    ak_json_set(d, o, "state", ak_session_state_to_json(&s->state, d));
    if (s->parent_id) ak_json_set_str(d, o, "parentId", s->parent_id);
    if (st) ak_json_set_str(d, o, "status", ak_snapshot_status_name(st));
    if (s->has_finish_reason) ak_json_set_str(d, o, "finishReason", ak_finish_reason_name(s->finish_reason));
    if (s->error) ak_json_set(d, o, "error", ak_json_copy(d, s->error->value));
    if (s->heartbeat_at) ak__set_time(d, o, "heartbeatAt", s->heartbeat_at);
    return d->err ? NULL : o;
}

AK_PRIVATE int ak__digits(const char *s, int n, int *out) {
    int i, v = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* Days from 1970-01-01 to y-m-d (the inverse of ak__civil). */
AK_PRIVATE int64_t ak__days_from_civil(int y, int m, int d) {
    int64_t era;
    unsigned yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

AKDEF ak_result ak_iso8601_parse(const char *s, size_t len, int64_t *ms) {
    int y, mo, d, h, mi, sec, frac = 0;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':' || !ak__digits(s, 4, &y) || !ak__digits(s + 5, 2, &mo) || !ak__digits(s + 8, 2, &d) ||
        !ak__digits(s + 11, 2, &h) || !ak__digits(s + 14, 2, &mi) || !ak__digits(s + 17, 2, &sec))
        return AK_ERR_INVALID_ARGUMENT;
    if (s[19] == '.') {
        size_t i = 20;
        int scale = 100;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10) frac += (s[i] - '0') * scale;
        if (i == 20) return AK_ERR_INVALID_ARGUMENT;
        s += i - 19, len -= i - 19;
    }
    if (len != 20 || (s[19] != 'Z' && s[19] != 'z') || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
        mi > 59 || sec > 60)
        return AK_ERR_INVALID_ARGUMENT;
    *ms = ((ak__days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + frac;
    return AK_OK;
}

/* Reads an optional timestamp member; 0 when absent. */
AK_PRIVATE ak_result ak__get_time(const ak_json *o, const char *key, int64_t *out, ak_error *err) {
    const ak_json *v = ak_json_get(o, key);
    *out = 0;
    if (!v) return AK_OK;
    if (v->type != AK_JSON_STRING || ak_iso8601_parse(v->u.str, v->len, out) != AK_OK)
        return ak_error_set(err, AK_ERR_DATA_LOSS, "snapshot: %s is not an ISO-8601 timestamp", key);
    return AK_OK;
}

AK_PRIVATE ak_result ak__opt_id(const ak_json *o, const char *key, const char **out, ak_error *err) {
    const ak_json *v = ak_json_get(o, key);
    *out = NULL;
    if (!v) return AK_OK;
    if (v->type != AK_JSON_STRING || v->len == 0 || v->len > AK_ID_MAX)
        return ak_error_set(err, AK_ERR_DATA_LOSS, "snapshot: %s must be a string of 1..%d bytes", key, AK_ID_MAX);
    *out = v->u.str;
    return AK_OK;
}

AKDEF ak_result ak_snapshot_from_json(const ak_allocator *a, const ak_json *v, ak_snapshot **out,
                                      ak_error *err) {
    const char *id, *sid, *pid, *st, *fr;
    ak_session_state state;
    const ak_json *e = ak_json_get(v, "error");
    ak_snapshot *s;
    ak_result rc;
    *out = NULL;
    if (!ak_json_is(v, AK_JSON_OBJECT)) return ak_error_set(err, AK_ERR_DATA_LOSS, "snapshot: not an object");
    if ((rc = ak__opt_id(v, "snapshotId", &id, err)) != AK_OK || (rc = ak__opt_id(v, "sessionId", &sid, err)) != AK_OK ||
        (rc = ak__opt_id(v, "parentId", &pid, err)) != AK_OK)
        return rc;
    if (!id) return ak_error_set(err, AK_ERR_DATA_LOSS, "snapshot: snapshotId is missing");
    st = ak_json_get_str(v, "status");
    fr = ak_json_get_str(v, "finishReason");
    if ((ak_json_get(v, "status") && !ak_snapshot_status_from_name(st)) ||
        (ak_json_get(v, "finishReason") && !fr) || (e && !ak_json_is(e, AK_JSON_OBJECT)))
        return ak_error_set(err, AK_ERR_DATA_LOSS, "snapshot %s: bad status, finishReason or error", id);
    if ((rc = ak_session_state_from_json(a, ak_json_get(v, "state") ? ak_json_get(v, "state") : v, &state, err)) != AK_OK) {
        if (rc == AK_ERR_OUT_OF_MEMORY) return rc; /* the row may be fine: not data loss */
        if (err) err->code = AK_ERR_DATA_LOSS, err->status = AK_STATUS_DATA_LOSS;
        return AK_ERR_DATA_LOSS;
    }
    if (!sid) sid = state.session_id; /* older rows keep it only in the state */
    s = ak_snapshot_new(a, id, sid, pid, &state);
    ak_session_state_free(a, &state);
    if (!s) return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory loading snapshot");
    s->status = ak_snapshot_status_from_name(st);
    s->has_finish_reason = fr != NULL;
    s->finish_reason = ak_finish_reason_from_name(fr);
    if ((rc = ak__get_time(v, "createdAt", &s->created_at, err)) != AK_OK ||
        (rc = ak__get_time(v, "updatedAt", &s->updated_at, err)) != AK_OK ||
        (rc = ak__get_time(v, "heartbeatAt", &s->heartbeat_at, err)) != AK_OK ||
        (e && !(s->error = ak_jref_new(a, e)))) {
        ak_snapshot_release(s);
        return rc ? rc : ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory loading snapshot");
    }
    *out = s;
    return AK_OK;
}

#define AK__HEARTBEAT_TIMEOUT_MS 60000

AKDEF ak_snapshot_status ak_snapshot_read_status(const ak_snapshot *s, int64_t now_ms) {
    if (s->status == AK_SNAPSHOT_PENDING && s->heartbeat_at && now_ms - s->heartbeat_at > AK__HEARTBEAT_TIMEOUT_MS)
        return AK_SNAPSHOT_EXPIRED;
    return s->status;
}
/* ---- end src/session.c ---- */

/* ---- begin src/memstore.c ---- */
/* >>memstore: the in-memory snapshot store, in compact rows.

   A row is what one save added: the snapshot's fields, a binary id when the id is a UUID,
   its parent's id, how many of the parent's messages it keeps, and the messages after those
   as compact JSON text (with Genkit's fixed message prefixes folded into single bytes).
   Custom state, artifacts and errors are shared references. The AK_MEMSTORE_HOT most recent
   rows also hold their parsed message list, so resuming a live conversation costs nothing;
   an older row rebuilds its list from its ancestors when it is read. */


/* 32-bit FNV-1a: cheap on a 32-bit MCU. Both hash tables have a power of two buckets, so
   a bucket is the hash's low bits. */
AK_PRIVATE uint32_t ak__mem_fnv(const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint32_t h = 2166136261u;
    while (n--) h = (h ^ *b++) * 16777619u;
    return h;
}

/* ---- ids: UUIDs as 16 bytes, anything else as text ------------------------------------- */

typedef struct ak__memid {
    unsigned char bin[16];
    const char *str;             /* set for ids that are not canonical UUIDs */
    size_t len;
} ak__memid;

AK_PRIVATE int ak__mem_hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A lowercase 8-4-4-4-12 UUID as 16 bytes; anything else is kept as text. */
AK_PRIVATE void ak__memid_parse(const char *s, ak__memid *id) {
    size_t n = ak__strlen(s), i, o = 0;
    id->str = s;
    id->len = n;
    if (n != 36) return;
    for (i = 0; i < 36; i++) {
        int hi, lo;
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return;
            continue;
        }
        if ((hi = ak__mem_hexval(s[i])) < 0 || (lo = ak__mem_hexval(s[i + 1])) < 0) return;
        id->bin[o++] = (unsigned char)(hi << 4 | lo);
        i++;
    }
    id->str = NULL;
}

AK_PRIVATE void ak__memid_format(const unsigned char *bin, char out[37]) {
    static const char hex[] = "0123456789abcdef";
    int i, o = 0;
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[bin[i] >> 4];
        out[o++] = hex[bin[i] & 15];
    }
    out[o] = 0;
}

/* The hash of an id given as text (`text` set) or as 16 bytes. */
AK_PRIVATE uint32_t ak__memid_hash_of(const void *p, size_t n, int text) {
    return ak__mem_fnv(p, text ? n : 16) ^ (uint32_t)(text != 0);
}

AK_PRIVATE uint32_t ak__memid_hash(const ak__memid *id) {
    return id->str ? ak__memid_hash_of(id->str, id->len, 1) : ak__memid_hash_of(id->bin, 16, 0);
}

/* ---- the message text codec ------------------------------------------------------------ */

/* Compact JSON never contains raw bytes below 0x20 (the writer escapes them), so 0x01..0x06
   can stand for the prefixes nearly every Genkit message starts with. */
static const char *const ak__memtok[] = {
    NULL,
    "{\"role\":\"user\",\"content\":[{\"text\":\"",
    "{\"role\":\"model\",\"content\":[{\"text\":\"",
    "\"}]}",
    "{\"role\":\"tool\",\"content\":[{\"toolResponse\":{\"name\":\"",
    "{\"role\":\"model\",\"content\":[{\"toolRequest\":{\"name\":\"",
    "{\"role\":\"system\",\"content\":[{\"text\":\"",
};

AK_PRIVATE void ak__memtext_encode(ak_buf *out, const char *s, size_t n) {
    size_t i = 0, t;
    while (i < n) {
        for (t = 1; t < AK__COUNTOF(ak__memtok); t++) {
            size_t tl = ak__strlen(ak__memtok[t]);
            if (tl <= n - i && AK_MEMCMP(s + i, ak__memtok[t], tl) == 0) break;
        }
        if (t < AK__COUNTOF(ak__memtok)) {
            ak_buf_putc(out, (char)t);
            i += ak__strlen(ak__memtok[t]);
        } else {
            size_t j = i + 1;
            while (j < n && s[j] != '{' && s[j] != '"') j++; /* tokens start with { or " */
            ak_buf_append(out, s + i, j - i);
            i = j;
        }
    }
}

AK_PRIVATE void ak__memtext_decode(ak_buf *out, const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = AK__U8(s[i]);
        if (c > 0 && c < AK__COUNTOF(ak__memtok)) ak_buf_puts(out, ak__memtok[c]);
        else ak_buf_putc(out, s[i]);
    }
}

/* ---- rows and sessions ----------------------------------------------------------------- */

/* What few rows have: custom state, artifacts, an error, a heartbeat, a finish message. */
typedef struct ak__memaux {
    ak_jref *custom, *artifacts, *error;
    int64_t heartbeat_at;
} ak__memaux;

struct ak__memrow {
    ak__memrow *next_id;         /* hash chain by id */
    ak__memrow *next_in_session; /* the session's rows */
    ak__memsess *session;
    ak_msgs *hot;                /* parsed message list while hot (a reference), else NULL */
    ak__memaux *aux;             /* NULL for plain turns */
    int64_t created_at;
    uint32_t updated_delta;      /* updated_at - created_at; UINT32_MAX = no updatedAt */
    uint32_t seq;                /* write order: breaks createdAt ties */
    uint32_t keep;               /* messages taken from the parent's list */
    uint32_t own;                /* messages in text */
    uint32_t text_len;
    uint16_t id_len, parent_len; /* 0 = binary UUID; else length of the text id after text */
    uint8_t status, finish, flags, mark;
    unsigned char id[16], parent[16];
    /* followed by: text (encoded messages), then the id and parent id when not UUIDs */
};

#define AK__ROW_HAS_PARENT 0x01u
#define AK__ROW_HAS_FINISH 0x02u
#define AK__ROW_IN_RING 0x04u

struct ak__memsess {
    ak__memsess *next;
    ak__memrow *rows;
    size_t len;
    char id[1];                  /* NUL-terminated, allocated with the struct */
};

AK_PRIVATE const char *ak__row_text(const ak__memrow *r) { return (const char *)(r + 1); }

/* The row's id (parent set: its parent's id) as text. */
AK_PRIVATE void ak__row_id(const ak__memrow *r, int parent, char out[AK_ID_MAX + 1]) {
    size_t len = parent ? r->parent_len : r->id_len;
    if (!len) ak__memid_format(parent ? r->parent : r->id, out);
    else AK_MEMCPY(out, ak__row_text(r) + r->text_len + (parent ? r->id_len : 0), len), out[len] = 0;
}

/* The same hash as ak__memid_hash of the row's id. */
AK_PRIVATE uint32_t ak__row_hash(const ak__memrow *r) {
    return r->id_len ? ak__memid_hash_of(ak__row_text(r) + r->text_len, r->id_len, 1)
                     : ak__memid_hash_of(r->id, 16, 0);
}

AK_PRIVATE int ak__row_is(const ak__memrow *r, const ak__memid *id) {
    if (id->str) return r->id_len == id->len && AK_MEMCMP(ak__row_text(r) + r->text_len, id->str, id->len) == 0;
    return !r->id_len && AK_MEMCMP(r->id, id->bin, 16) == 0;
}

AK_PRIVATE size_t ak__row_size(const ak__memrow *r) {
    return sizeof *r + r->text_len + r->id_len + r->parent_len;
}

AK_PRIVATE const ak_allocator *ak__mem_alloc(const ak_memstore *m) { return ak_context_allocator(m->ctx); }

AK_PRIVATE void ak__aux_free(ak_memstore *m, ak__memaux *aux) {
    if (!aux) return;
    ak_jref_release(aux->custom);
    ak_jref_release(aux->artifacts);
    ak_jref_release(aux->error);
    ak_free(ak__mem_alloc(m), aux, sizeof *aux);
}

AK_PRIVATE void ak__row_unhot(ak_memstore *m, ak__memrow *r) {
    size_t i;
    ak_msgs_release(r->hot);
    r->hot = NULL;
    if (r->flags & AK__ROW_IN_RING)
        for (i = 0; i < AK_MEMSTORE_HOT; i++)
            if (m->hot[i] == r) m->hot[i] = NULL;
    r->flags &= (uint8_t)~AK__ROW_IN_RING;
}

AK_PRIVATE void ak__row_free(ak_memstore *m, ak__memrow *r) {
    ak__row_unhot(m, r);
    ak__aux_free(m, r->aux);
    ak_free(ak__mem_alloc(m), r, ak__row_size(r));
}

/* Keeps r's message list parsed; the oldest hot row goes cold to make room. */
AK_PRIVATE void ak__row_make_hot(ak_memstore *m, ak__memrow *r, ak_msgs *list) {
    ak__memrow *old;
    if (r->hot) {
        ak_msgs_release(list);
        return;
    }
    r->hot = list;
    if ((old = m->hot[m->hot_next]) != NULL) {
        ak_msgs_release(old->hot);
        old->hot = NULL;
        old->flags &= (uint8_t)~AK__ROW_IN_RING;
    }
    m->hot[m->hot_next] = r;
    r->flags |= AK__ROW_IN_RING;
    m->hot_next = (m->hot_next + 1) % AK_MEMSTORE_HOT;
}

#define AK__ROW_BUCKET(m, id) (&(m)->rows[ak__memid_hash(id) & ((m)->row_buckets - 1)])

AK_PRIVATE ak__memrow *ak__mem_find(const ak_memstore *m, const ak__memid *id) {
    ak__memrow *r;
    if (!m->row_buckets) return NULL;
    for (r = *AK__ROW_BUCKET(m, id); r; r = r->next_id)
        if (ak__row_is(r, id)) return r;
    return NULL;
}

AK_PRIVATE ak__memrow *ak__mem_find_str(const ak_memstore *m, const char *s) {
    ak__memid id;
    ak__memid_parse(s, &id);
    return ak__mem_find(m, &id);
}

/* The row's parent row, when it has a parent that is stored. */
AK_PRIVATE ak__memrow *ak__row_parent_row(const ak_memstore *m, const ak__memrow *r) {
    char pid[AK_ID_MAX + 1];
    if (!(r->flags & AK__ROW_HAS_PARENT)) return NULL;
    ak__row_id(r, 1, pid);
    return ak__mem_find_str(m, pid);
}

AK_PRIVATE ak__memsess *ak__mem_session(ak_memstore *m, const char *sid, int create) {
    size_t n = ak__strlen(sid);
    uint32_t h = ak__mem_fnv(sid, n);
    ak__memsess *s;
    if (m->session_buckets)
        for (s = m->sessions[h & (m->session_buckets - 1)]; s; s = s->next)
            if (ak__streq(s->id, sid)) return s;
    if (!create) return NULL;
    if (m->session_count >= m->session_buckets) {
        size_t nb = m->session_buckets ? m->session_buckets * 2 : 64, i;
        ak__memsess **b = (ak__memsess **)ak_alloc(ak__mem_alloc(m), nb * sizeof *b);
        if (!b) return NULL;
        AK_MEMSET(b, 0, nb * sizeof *b);
        for (i = 0; i < m->session_buckets; i++)
            while (m->sessions[i]) {
                ak__memsess *x = m->sessions[i];
                ak__memsess **to = &b[ak__mem_fnv(x->id, x->len) & (nb - 1)];
                m->sessions[i] = x->next;
                x->next = *to;
                *to = x;
            }
        ak_free(ak__mem_alloc(m), m->sessions, m->session_buckets * sizeof *m->sessions);
        m->sessions = b;
        m->session_buckets = nb;
    }
    if (!(s = (ak__memsess *)ak_alloc(ak__mem_alloc(m), sizeof *s + n))) return NULL;
    s->rows = NULL;
    s->len = n;
    AK_MEMCPY(s->id, sid, n + 1);
    s->next = m->sessions[h & (m->session_buckets - 1)];
    m->sessions[h & (m->session_buckets - 1)] = s;
    m->session_count++;
    return s;
}

AK_PRIVATE ak_result ak__mem_grow(ak_memstore *m) {
    size_t n = m->row_buckets ? m->row_buckets * 2 : 64, i;
    ak__memrow **b = (ak__memrow **)ak_alloc(ak__mem_alloc(m), n * sizeof *b);
    if (!b) return AK_ERR_OUT_OF_MEMORY;
    AK_MEMSET(b, 0, n * sizeof *b);
    for (i = 0; i < m->row_buckets; i++)
        while (m->rows[i]) {
            ak__memrow *r = m->rows[i], **to = &b[ak__row_hash(r) & (n - 1)];
            m->rows[i] = r->next_id;
            r->next_id = *to;
            *to = r;
        }
    ak_free(ak__mem_alloc(m), m->rows, m->row_buckets * sizeof *m->rows);
    m->rows = b;
    m->row_buckets = n;
    return AK_OK;
}

/* ---- rebuilding a row's message list --------------------------------------------------- */

/* Appends the row's own messages (decoded from its text) to *list. */
AK_PRIVATE ak_result ak__row_append_own(ak_memstore *m, const ak__memrow *r, ak_msgs **list) {
    const ak_allocator *a = ak__mem_alloc(m);
    ak_json_doc d;
    ak_json *arr = NULL;
    const ak_json *msg;
    ak_buf b;
    ak_result rc = AK_OK;
    if (!r->own) return AK_OK;
    ak_buf_init(&b, a);
    ak_buf_putc(&b, '[');
    ak__memtext_decode(&b, ak__row_text(r), r->text_len);
    ak_buf_putc(&b, ']');
    ak_json_doc_init(&d, a);
    if (b.err || ak_json_parse_value(&d, b.ptr, b.len, NULL, &arr, NULL) != AK_OK) rc = b.err ? b.err : AK_ERR_DATA_LOSS;
    for (msg = ak_json_first(arr); rc == AK_OK && msg; msg = msg->next) rc = ak_msgs_append(a, list, msg);
    if (rc == AK_OK) ak_msgs_compact(a, *list);
    ak_json_doc_free(&d);
    ak_buf_free(&b);
    return rc;
}

/* A new reference to the full message list of r, rebuilt from its ancestors if it is cold.
   Iterative: a long conversation is a long chain. */
AK_PRIVATE ak_result ak__row_messages(ak_memstore *m, ak__memrow *r, ak_msgs **out) {
    const ak_allocator *a = ak__mem_alloc(m);
    ak__memrow **chain = NULL, *p;
    size_t n = 0, cap = 0, i;
    ak_msgs *list = NULL;
    ak_result rc = AK_OK;
    *out = NULL;
    /* walk up to the nearest hot row (or the root), remembering the cold ones */
    for (p = r; p && !p->hot; p = p->keep ? ak__row_parent_row(m, p) : NULL) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            ak__memrow **c = (ak__memrow **)ak_realloc(a, chain, cap * sizeof *chain, nc * sizeof *chain);
            if (!c) {
                rc = AK_ERR_OUT_OF_MEMORY;
                break;
            }
            chain = c, cap = nc;
        }
        if (n > m->count) {
            rc = AK_ERR_DATA_LOSS; /* a parent loop */
            break;
        }
        chain[n++] = p;
        if (p->keep && !ak__row_parent_row(m, p)) {
            rc = AK_ERR_DATA_LOSS; /* it keeps messages of a parent that is gone */
            break;
        }
    }
    if (rc == AK_OK && p) list = ak_msgs_retain(p->hot);
    /* then rebuild downwards: each row keeps `keep` of its parent's messages, adds its own */
    for (i = n; rc == AK_OK && i-- > 0;) {
        ak__memrow *row = chain[i];
        if (ak_msgs_count(list) < row->keep) rc = AK_ERR_DATA_LOSS;
        else if ((rc = ak_msgs_truncate(a, &list, row->keep)) == AK_OK) rc = ak__row_append_own(m, row, &list);
        if (rc == AK_OK) ak__row_make_hot(m, row, ak_msgs_retain(list));
    }
    ak_free(a, chain, cap * sizeof *chain);
    if (rc != AK_OK) {
        ak_msgs_release(list);
        return rc;
    }
    *out = list;
    return AK_OK;
}

/* ---- rows <-> snapshots ---------------------------------------------------------------- */

AK_PRIVATE ak_result ak__row_to_snapshot(ak_memstore *m, ak__memrow *r, ak_snapshot **out, ak_error *err) {
    char id[AK_ID_MAX + 1], pid[AK_ID_MAX + 1];
    ak_session_state st;
    ak_snapshot *s;
    ak_result rc;
    *out = NULL;
    AK_MEMSET(&st, 0, sizeof st);
    if ((rc = ak__row_messages(m, r, &st.messages)) != AK_OK)
        return ak_error_setst(err, rc, rc == AK_ERR_OUT_OF_MEMORY ? AK_STATUS_RESOURCE_EXHAUSTED : AK_STATUS_DATA_LOSS,
                              "cannot rebuild the messages of snapshot: %s", ak_result_str(rc));
    st.session_id = r->session->id; /* borrowed for the copy below */
    if (r->aux) st.custom = r->aux->custom, st.artifacts = r->aux->artifacts;
    ak__row_id(r, 0, id);
    if (r->flags & AK__ROW_HAS_PARENT) ak__row_id(r, 1, pid);
    s = ak_snapshot_new(ak__mem_alloc(m), id, r->session->id, (r->flags & AK__ROW_HAS_PARENT) ? pid : NULL, &st);
    ak_msgs_release(st.messages);
    if (!s) return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory reading a snapshot");
    s->created_at = r->created_at;
    s->updated_at = r->updated_delta == 0xFFFFFFFFu ? 0 : r->created_at + r->updated_delta;
    s->status = (ak_snapshot_status)r->status;
    s->has_finish_reason = (r->flags & AK__ROW_HAS_FINISH) != 0;
    s->finish_reason = (ak_finish_reason)r->finish;
    if (r->aux) s->error = ak_jref_retain(r->aux->error), s->heartbeat_at = r->aux->heartbeat_at;
    *out = s;
    return AK_OK;
}

/* Number of leading messages two lists share (by identity first, then by value). */
AK_PRIVATE size_t ak__common_prefix(const ak_msgs *a, const ak_msgs *b) {
    size_t n = ak_msgs_count(a), i;
    if (ak_msgs_count(b) < n) n = ak_msgs_count(b);
    if (b && b->prev == a && b->prev_count == n) return n; /* the usual case: one turn on top */
    for (i = 0; i < n; i++) {
        const ak_json *x = ak_msgs_at(a, i), *y = ak_msgs_at(b, i);
        if (x != y && !ak_json_equal(x, y)) break;
    }
    return i;
}

/* Stores an id in a row: 16 bytes in bin for a UUID (returns 0), else its text at text
   (returns its length). */
AK_PRIVATE uint16_t ak__memid_store(const ak__memid *id, unsigned char bin[16], char *text) {
    size_t n = id->str ? id->len : sizeof id->bin;
    AK_MEMCPY(id->str ? (void *)text : bin, id->str ? (const void *)id->str : id->bin, n); /* one copy call */
    return (uint16_t)(id->str ? n : 0);
}

/* Encodes s as a row: what its parent row's list lacks, and the rest of its fields. */
AK_PRIVATE ak_result ak__row_from_snapshot(ak_memstore *m, const ak_snapshot *s, const ak__memid *rid, ak__memrow **out) {
    const ak_allocator *a = ak__mem_alloc(m);
    ak__memid pid;
    ak__memrow *parent = NULL, *r;
    ak_msgs *plist = NULL;
    size_t keep = 0, count = ak_msgs_count(s->state.messages), i, text_len;
    ak_buf text, json;
    ak_result rc = AK_OK;
    const char *sid = s->session_id ? s->session_id : s->state.session_id;
    *out = NULL;
    if (!sid) return AK_ERR_INVALID_ARGUMENT; /* every agent snapshot names its session */
    if (s->parent_id) {
        ak__memid_parse(s->parent_id, &pid);
        parent = ak__mem_find(m, &pid);
    }
    if (parent && ak__row_messages(m, parent, &plist) == AK_OK) keep = ak__common_prefix(plist, s->state.messages);
    ak_msgs_release(plist);
    ak_buf_init(&text, a);
    ak_buf_init(&json, a);
    for (i = keep; i < count; i++) {
        ak_buf_clear(&json);
        if (i > keep) ak_buf_putc(&text, ',');
        ak_json_write(ak_msgs_at(s->state.messages, i), &json);
        if (json.ptr) ak__memtext_encode(&text, json.ptr, json.len);
    }
    text_len = text.len;
    if (text.err || json.err || text_len > 0xFFFFFFFFu) rc = AK_ERR_OUT_OF_MEMORY;
    r = rc == AK_OK ? (ak__memrow *)ak_alloc(a, sizeof *r + text_len + (rid->str ? rid->len : 0) +
                                                    (s->parent_id && pid.str ? pid.len : 0))
                    : NULL;
    if (!r) {
        ak_buf_free(&text), ak_buf_free(&json);
        return AK_ERR_OUT_OF_MEMORY;
    }
    AK_MEMSET(r, 0, sizeof *r);
    r->created_at = s->created_at;
    r->updated_delta = s->updated_at && s->updated_at >= s->created_at && s->updated_at - s->created_at < 0xFFFFFFFFll
                           ? (uint32_t)(s->updated_at - s->created_at) : 0xFFFFFFFFu;
    r->keep = (uint32_t)keep;
    r->own = (uint32_t)(count - keep);
    r->text_len = (uint32_t)text_len;
    r->status = (uint8_t)s->status;
    r->finish = (uint8_t)s->finish_reason;
    if (s->has_finish_reason) r->flags |= AK__ROW_HAS_FINISH;
    if (text_len) AK_MEMCPY((char *)(r + 1), text.ptr, text_len);
    r->id_len = ak__memid_store(rid, r->id, (char *)(r + 1) + text_len);
    if (s->parent_id) {
        r->flags |= AK__ROW_HAS_PARENT;
        r->parent_len = ak__memid_store(&pid, r->parent, (char *)(r + 1) + text_len + r->id_len);
    }
    ak_buf_free(&text);
    ak_buf_free(&json);
    if (s->state.custom || s->state.artifacts || s->error || s->heartbeat_at) {
        if (!(r->aux = (ak__memaux *)ak_alloc(a, sizeof *r->aux))) {
            ak_free(a, r, ak__row_size(r));
            return AK_ERR_OUT_OF_MEMORY;
        }
        r->aux->custom = ak_jref_retain(s->state.custom);
        r->aux->artifacts = ak_jref_retain(s->state.artifacts);
        r->aux->error = ak_jref_retain(s->error);
        r->aux->heartbeat_at = s->heartbeat_at;
    }
    if (!(r->session = ak__mem_session(m, sid, 1))) {
        ak__row_free(m, r);
        return AK_ERR_OUT_OF_MEMORY;
    }
    *out = r;
    return AK_OK;
}

/* ---- the store interface --------------------------------------------------------------- */

struct ak_memstore_watch {
    ak_memstore_watch *next;
    char *id;
    ak_store_listener fn;
    void *ud;
};

/* The session's latest leaf: rows of the session no other row of it names as parent. */
AK_PRIVATE ak_result ak__mem_latest_leaf(ak_memstore *m, const char *sid, ak__memrow **out, ak_error *err) {
    ak__memsess *s = ak__mem_session(m, sid, 0);
    ak__memrow *r, *best = NULL;
    size_t leaves = 0;
    *out = NULL;
    if (!s || !s->rows) return AK_OK;
    for (r = s->rows; r; r = r->next_in_session) r->mark = 0;
    for (r = s->rows; r; r = r->next_in_session) {
        ak__memrow *p = ak__row_parent_row(m, r);
        if (p && p->session == s) p->mark = 1;
    }
    for (r = s->rows; r; r = r->next_in_session) {
        if (r->mark || ak__row_parent_row(m, r) == r) continue; /* a row naming itself is cyclic */
        leaves++;
        if (!best || r->created_at > best->created_at || (r->created_at == best->created_at && r->seq > best->seq))
            best = r;
    }
    if (!best)
        return ak_error_setst(err, AK_ERR_STATE, AK_STATUS_FAILED_PRECONDITION,
                              "Session '%s' has no leaf snapshot (corrupt or cyclic history).", sid);
    if (leaves > 1 && m->reject_branching)
        return ak_error_setst(err, AK_ERR_STATE, AK_STATUS_FAILED_PRECONDITION,
                              "Session '%s' has branched into %zu leaves.", sid, leaves);
    *out = best;
    return AK_OK;
}

AK_PRIVATE ak_result ak__mem_get(ak_store *st, const char *snapshot_id, const char *session_id,
                                 const ak_json *context, ak_snapshot **out, ak_error *err) {
    ak_memstore *m = (ak_memstore *)st->ud;
    ak__memrow *r = NULL;
    ak_result rc;
    AK__UNUSED(context);
    *out = NULL;
    if ((snapshot_id == NULL) == (session_id == NULL) || (session_id && !*session_id))
        return ak_error_setst(err, AK_ERR_INVALID_ARGUMENT, AK_STATUS_INVALID_ARGUMENT,
                              "Exactly one of snapshotId or sessionId is required.");
    if (session_id) {
        if ((rc = ak__mem_latest_leaf(m, session_id, &r, err)) != AK_OK) return rc;
    } else if (ak__strlen(snapshot_id) <= AK_ID_MAX) {
        r = ak__mem_find_str(m, snapshot_id);
    }
    return r ? ak__row_to_snapshot(m, r, out, err) : AK_OK;
}

AK_PRIVATE void ak__mem_notify(ak_memstore *m, const ak_snapshot *snap) {
    ak_memstore_watch *w, *next;
    for (w = m->watches; w; w = next) {
        next = w->next;
        if (w->fn && ak__streq(w->id, snap->id)) w->fn(w->ud, snap);
    }
}

/* Puts r in place of `old` (or adds it), keeping the hash and session chains. */
AK_PRIVATE void ak__mem_link(ak_memstore *m, ak__memrow *r, ak__memrow *old, const ak__memid *id) {
    ak__memrow **link;
    if (old) {
        for (link = AK__ROW_BUCKET(m, id); *link != old; link = &(*link)->next_id) {
        }
        *link = old->next_id;
        for (link = &old->session->rows; *link; link = &(*link)->next_in_session)
            if (*link == old) {
                *link = old->next_in_session;
                break;
            }
        ak__row_free(m, old);
        m->count--;
    }
    r->next_id = *AK__ROW_BUCKET(m, id);
    *AK__ROW_BUCKET(m, id) = r;
    r->next_in_session = r->session->rows;
    r->session->rows = r;
    r->seq = ++m->seq;
    m->count++;
}

AK_PRIVATE ak_result ak__mem_save(ak_store *st, const char *snapshot_id, ak_store_mutator fn, void *fn_ud,
                                  const ak_json *context, char written_id[AK_ID_MAX + 1], ak_error *err) {
    ak_memstore *m = (ak_memstore *)st->ud;
    ak__memrow *old = NULL, *r;
    ak_snapshot *current = NULL, *next = NULL;
    ak__memid id;
    char fresh[37];
    const char *name;
    ak_result rc;
    AK__UNUSED(context);
    written_id[0] = 0;
    if (snapshot_id && ak__strlen(snapshot_id) <= AK_ID_MAX) { /* parsed once: it names the row written */
        ak__memid_parse(snapshot_id, &id);
        old = ak__mem_find(m, &id);
    }
    if (old && (rc = ak__row_to_snapshot(m, old, &current, err)) != AK_OK) return rc;
    rc = fn(fn_ud, current, &next);
    ak_snapshot_release(current);
    if (rc != AK_OK) return ak_error_set(err, rc, "memory store: the save was refused: %s", ak_result_str(rc));
    if (!next) return AK_OK;
    name = snapshot_id ? snapshot_id : next->id;
    if (!name) {
        if ((rc = ak_uuid4(m->ctx, fresh)) != AK_OK) {
            ak_snapshot_release(next);
            return ak_error_set(err, rc, "cannot make a snapshot id: %s", ak_result_str(rc));
        }
        name = fresh;
    }
    if (!*name || ak__strlen(name) > AK_ID_MAX) {
        ak_snapshot_release(next);
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "snapshot ids are 1..%d bytes", AK_ID_MAX);
    }
    if (!snapshot_id) {
        ak__memid_parse(name, &id);
        old = ak__mem_find(m, &id);
    }
    if (m->count >= m->row_buckets && ak__mem_grow(m) != AK_OK) rc = AK_ERR_OUT_OF_MEMORY;
    else rc = ak__row_from_snapshot(m, next, &id, &r);
    if (rc != AK_OK) {
        ak_snapshot_release(next);
        return rc == AK_ERR_INVALID_ARGUMENT ? ak_error_set(err, rc, "snapshot %s has no sessionId", name)
                                             : ak_error_set(err, rc, "out of memory saving a snapshot");
    }
    ak__mem_link(m, r, old, &id);
    /* the list just written is the one its next turn will read: keep it parsed */
    ak__row_make_hot(m, r, ak_msgs_retain(next->state.messages));
    AK_MEMCPY(written_id, name, ak__strlen(name) + 1);
    if (!next->id || !ak__streq(next->id, name)) {
        char *copy = ak__strdup(next->alloc, name);
        if (copy) ak__strfree(next->alloc, next->id), next->id = copy;
    }
    ak__mem_notify(m, next);
    ak_snapshot_release(next);
    return AK_OK;
}

AK_PRIVATE ak_result ak__mem_watch(ak_store *st, const char *snapshot_id, ak_store_listener fn, void *fn_ud,
                                   const ak_json *context, void **token) {
    ak_memstore *m = (ak_memstore *)st->ud;
    const ak_allocator *a = ak__mem_alloc(m);
    ak_memstore_watch *w = (ak_memstore_watch *)ak_alloc(a, sizeof *w);
    AK__UNUSED(context);
    if (!w) return AK_ERR_OUT_OF_MEMORY;
    if (!(w->id = ak__strdup(a, snapshot_id))) {
        ak_free(a, w, sizeof *w);
        return AK_ERR_OUT_OF_MEMORY;
    }
    w->fn = fn, w->ud = fn_ud;
    w->next = m->watches;
    m->watches = w;
    *token = w;
    return AK_OK;
}

AK_PRIVATE void ak__mem_unwatch(ak_store *st, void *token) {
    ak_memstore *m = (ak_memstore *)st->ud;
    ak_memstore_watch **link;
    for (link = &m->watches; *link; link = &(*link)->next)
        if (*link == token) {
            ak_memstore_watch *w = *link;
            *link = w->next;
            ak__strfree(ak__mem_alloc(m), w->id);
            ak_free(ak__mem_alloc(m), w, sizeof *w);
            return;
        }
}

AKDEF ak_result ak_memstore_init(ak_memstore *m, ak_context *ctx) {
    AK_MEMSET(m, 0, sizeof *m);
    m->ctx = ctx;
    m->store.get = ak__mem_get;
    m->store.save = ak__mem_save;
    m->store.watch = ak__mem_watch;
    m->store.unwatch = ak__mem_unwatch;
    m->store.ud = m;
    return AK_OK;
}

AKDEF void ak_memstore_free(ak_memstore *m) {
    const ak_allocator *a = ak__mem_alloc(m);
    size_t i;
    for (i = 0; i < m->row_buckets; i++)
        while (m->rows[i]) {
            ak__memrow *r = m->rows[i];
            m->rows[i] = r->next_id;
            ak__row_free(m, r);
        }
    for (i = 0; i < m->session_buckets; i++)
        while (m->sessions[i]) {
            ak__memsess *s = m->sessions[i];
            m->sessions[i] = s->next;
            ak_free(a, s, sizeof *s + s->len);
        }
    ak_free(a, m->rows, m->row_buckets * sizeof *m->rows);
    ak_free(a, m->sessions, m->session_buckets * sizeof *m->sessions);
    while (m->watches) ak__mem_unwatch(&m->store, m->watches);
    m->rows = NULL;
    m->sessions = NULL;
    m->row_buckets = m->session_buckets = m->count = m->session_count = 0;
}
/* ---- end src/memstore.c ---- */

/* ---- begin src/filestore.c ---- */
/* >>filestore: snapshots as files (atomic replace, message deltas, cross-process locks,
   per-session pointers, watch by polling)

   On disk, under dir/<prefix>/:
     <id>.json             one row: a Genkit SessionSnapshot. A delta row keeps only its own
                           messages in state.messages, and "akFile" says where the others are:
                           {"v":1,"base":<parentId>,"baseHash":<16 hex>,"keep":N,"depth":D,
                           "linear":true} = the first N messages of the base, then these.
                           A checkpoint has no "base" (and no akFile unless it is linear).
     .pointers/<hex>.json  {currentSnapshotId, updatedAt, sessionId}: the session's latest row
     .lock                 locked exclusively by saves, shared by reads (ak_file_ops.lock)
     .tmp.*                a write in progress (or abandoned by a crash; harmless)

   Invariants the code keeps, and why:
   - A delta's base existed before the delta was first written, and an overwrite stays a
     delta only on the same base, so bases are older than their deltas: no cycles.
   - The first N messages of a row never change while a delta takes them: a save that
     rewrites a row's messages other than by appending first turns its delta children
     into checkpoints.
   - "linear" = when the row was first written its parent was the session's pointer.
     The pointer moves to a new row before that row is written, so a row has at most one
     linear child, and only a linear row may be a delta on it. Pruning relies on this: a row
     whose child on the chain is linear has no other delta child to break. */


#ifndef AK_NO_STDIO

#if !defined(AK_FREESTANDING) && defined(_WIN32)
#define AK__FS_WIN32 1
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#elif !defined(AK_FREESTANDING) && (defined(__unix__) || defined(__unix) || defined(__APPLE__))
#define AK__FS_POSIX 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

/* ---- default file operations ---------------------------------------------------------- */

#if defined(AK__FS_POSIX) || defined(AK__FS_WIN32)
/* How many bytes the next read may add to out: 0 at out->max (then one probe byte tells
   "end of file" from "too big"). */
AK_PRIVATE size_t ak__fs_read_room(ak_buf *out) {
    size_t room = 65536;
    if (out->max) room = AK__MIN(room, out->max - AK__MIN(out->len, out->max));
    return room && ak_buf_reserve(out, room) == AK_OK ? room : 0;
}

/* Appends n bytes just read into the reserved room (n <= room). */
AK_PRIVATE void ak__fs_read_commit(ak_buf *out, size_t n) {
    out->len += n;
    out->ptr[out->len] = 0;
}
#endif

#ifdef AK__FS_POSIX
/* Handles are file descriptors + 1, so that a zero handle never looks valid. */
#define AK__FD_HANDLE(fd) ((void *)(intptr_t)((fd) + 1))
#define AK__HANDLE_FD(h) ((int)((intptr_t)(h)-1))
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

AK_PRIVATE int ak__px_open(const char *path, int flags, int mode) {
    int fd;
    do fd = open(path, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

AK_PRIVATE int ak__px_fsync(int fd) {
#ifdef F_FULLFSYNC
    /* macOS: fsync reaches only the drive's cache */
    if (fcntl(fd, F_FULLFSYNC) == 0) return 0;
#endif
    while (fsync(fd) != 0)
        if (errno != EINTR) return -1;
    return 0;
}

AK_PRIVATE int ak__px_open_write(void *ud, const char *path, void **file) {
    /* rows hold conversations and bearer ids: owner-only */
    int fd = ak__px_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    AK__UNUSED(ud);
    if (fd < 0) return -1;
    *file = AK__FD_HANDLE(fd);
    return 0;
}

AK_PRIVATE int ak__px_write(void *ud, void *file, const void *data, size_t len) {
    const char *p = (const char *)data;
    AK__UNUSED(ud);
    while (len) {
        ssize_t n = write(AK__HANDLE_FD(file), p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n, len -= (size_t)n;
    }
    return 0;
}

AK_PRIVATE int ak__px_sync(void *ud, void *file) {
    AK__UNUSED(ud);
    return ak__px_fsync(AK__HANDLE_FD(file));
}

AK_PRIVATE int ak__px_close(void *ud, void *file) {
    AK__UNUSED(ud);
    return close(AK__HANDLE_FD(file)) == 0 ? 0 : -1;
}

AK_PRIVATE int ak__px_read_file(void *ud, const char *path, ak_buf *out) {
    int fd = ak__px_open(path, O_RDONLY, 0), rc = 0;
    AK__UNUSED(ud);
    if (fd < 0) return errno == ENOENT ? 1 : -1;
    for (;;) {
        char probe;
        size_t room = ak__fs_read_room(out);
        ssize_t n = room ? read(fd, out->ptr + out->len, room) : read(fd, &probe, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = n < 0 ? -1 : 0;
            break;
        }
        if (!room) { /* more bytes than out may hold */
            if (!out->err) out->err = AK_ERR_LIMIT;
            rc = -1;
            break;
        }
        ak__fs_read_commit(out, (size_t)n);
    }
    close(fd);
    return rc;
}

AK_PRIVATE int ak__px_rename(void *ud, const char *from, const char *to) {
    AK__UNUSED(ud);
    return rename(from, to) == 0 ? 0 : -1;
}

AK_PRIVATE int ak__px_remove(void *ud, const char *path) {
    AK__UNUSED(ud);
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

AK_PRIVATE int ak__px_sync_dir(void *ud, const char *dir) {
    int fd = ak__px_open(dir, O_RDONLY, 0), rc;
    AK__UNUSED(ud);
    if (fd < 0) return -1;
    rc = ak__px_fsync(fd);
    /* Some file systems cannot sync a directory; their renames are as durable as they get. */
    if (rc != 0 && errno == EINVAL) rc = 0;
    close(fd);
    return rc;
}

AK_PRIVATE int ak__px_make_dir(void *ud, const char *dir) {
    AK__UNUSED(ud);
    if (mkdir(dir, 0700) == 0) return 0;
    return errno == EEXIST ? 1 : -1;
}

AK_PRIVATE int ak__px_list_dir(void *ud, const char *dir, int (*fn)(void *fud, const char *name), void *fud) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;
    AK__UNUSED(ud);
    if (!d) return errno == ENOENT ? 1 : -1;
    for (;;) {
        errno = 0;
        if ((e = readdir(d)) == NULL) {
            if (errno) rc = -1;
            break;
        }
        if (fn(fud, e->d_name)) {
            rc = -1;
            break;
        }
    }
    closedir(d);
    return rc;
}

AK_PRIVATE int ak__px_lock(void *ud, const char *path, int exclusive, void **handle) {
    int fd = ak__px_open(path, O_RDWR | O_CREAT, 0600), rc;
    AK__UNUSED(ud);
    if (fd < 0) return errno == ENOENT ? 1 : -1;
#ifdef LOCK_EX
    /* flock locks belong to the open file, so they also exclude other stores of this process */
    do rc = flock(fd, exclusive ? LOCK_EX : LOCK_SH);
    while (rc != 0 && errno == EINTR);
#else
    {
        /* POSIX record locks: other processes only (see ak_file_ops.lock) */
        struct flock fl;
        AK_MEMSET(&fl, 0, sizeof fl);
        fl.l_type = exclusive ? F_WRLCK : F_RDLCK;
        fl.l_whence = SEEK_SET;
        do rc = fcntl(fd, F_SETLKW, &fl);
        while (rc != 0 && errno == EINTR);
    }
#endif
    if (rc != 0) {
        close(fd);
        return -1;
    }
    *handle = AK__FD_HANDLE(fd);
    return 0;
}

AK_PRIVATE void ak__px_unlock(void *ud, void *handle) {
    AK__UNUSED(ud);
    close(AK__HANDLE_FD(handle)); /* closing releases the lock */
}
#endif /* AK__FS_POSIX */

#ifdef AK__FS_WIN32
AK_PRIVATE int ak__w32_missing(void) {
    DWORD e = GetLastError();
    return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND;
}

AK_PRIVATE HANDLE ak__w32_open(const char *path, DWORD access, DWORD disposition) {
    return CreateFileA(path, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                       disposition, FILE_ATTRIBUTE_NORMAL, NULL);
}

AK_PRIVATE int ak__w32_open_write(void *ud, const char *path, void **file) {
    HANDLE h = ak__w32_open(path, GENERIC_WRITE, CREATE_ALWAYS);
    AK__UNUSED(ud);
    if (h == INVALID_HANDLE_VALUE) return -1;
    *file = h;
    return 0;
}

AK_PRIVATE int ak__w32_write(void *ud, void *file, const void *data, size_t len) {
    const char *p = (const char *)data;
    AK__UNUSED(ud);
    while (len) {
        DWORD n = len > 0x40000000u ? 0x40000000u : (DWORD)len, done = 0;
        if (!WriteFile((HANDLE)file, p, n, &done, NULL) || done == 0) return -1;
        p += done, len -= done;
    }
    return 0;
}

AK_PRIVATE int ak__w32_sync(void *ud, void *file) {
    AK__UNUSED(ud);
    return FlushFileBuffers((HANDLE)file) ? 0 : -1;
}

AK_PRIVATE int ak__w32_close(void *ud, void *file) {
    AK__UNUSED(ud);
    return CloseHandle((HANDLE)file) ? 0 : -1;
}

AK_PRIVATE int ak__w32_read_file(void *ud, const char *path, ak_buf *out) {
    HANDLE h = ak__w32_open(path, GENERIC_READ, OPEN_EXISTING);
    int rc = 0;
    AK__UNUSED(ud);
    if (h == INVALID_HANDLE_VALUE) return ak__w32_missing() ? 1 : -1;
    for (;;) {
        char probe;
        size_t room = ak__fs_read_room(out);
        DWORD want = room > 0x40000000u ? 0x40000000u : (DWORD)room, got = 0;
        if (!ReadFile(h, room ? out->ptr + out->len : &probe, room ? want : 1, &got, NULL)) {
            rc = -1;
            break;
        }
        if (got == 0) break;
        if (!room) {
            if (!out->err) out->err = AK_ERR_LIMIT;
            rc = -1;
            break;
        }
        ak__fs_read_commit(out, got);
    }
    CloseHandle(h);
    return rc;
}

AK_PRIVATE int ak__w32_rename(void *ud, const char *from, const char *to) {
    AK__UNUSED(ud);
    return MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) ? 0 : -1;
}

AK_PRIVATE int ak__w32_remove(void *ud, const char *path) {
    AK__UNUSED(ud);
    return DeleteFileA(path) || ak__w32_missing() ? 0 : -1;
}

AK_PRIVATE int ak__w32_sync_dir(void *ud, const char *dir) {
    /* Windows cannot flush a directory; MOVEFILE_WRITE_THROUGH made the rename durable. */
    AK__UNUSED(ud), AK__UNUSED(dir);
    return 0;
}

AK_PRIVATE int ak__w32_make_dir(void *ud, const char *dir) {
    AK__UNUSED(ud);
    if (CreateDirectoryA(dir, NULL)) return 0;
    return GetLastError() == ERROR_ALREADY_EXISTS ? 1 : -1;
}

AK_PRIVATE int ak__w32_list_dir(void *ud, const char *dir, int (*fn)(void *fud, const char *name), void *fud) {
    char pattern[MAX_PATH];
    size_t n = ak__strlen(dir);
    WIN32_FIND_DATAA fd;
    HANDLE h;
    int rc = 0;
    AK__UNUSED(ud);
    if (n + 3 > sizeof pattern) return -1;
    AK_MEMCPY(pattern, dir, n);
    AK_MEMCPY(pattern + n, "/*", 3);
    h = FindFirstFileA(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE) return GetLastError() == ERROR_FILE_NOT_FOUND ? 0 : ak__w32_missing() ? 1 : -1;
    do {
        if (fn(fud, fd.cFileName)) {
            rc = -1;
            break;
        }
    } while (FindNextFileA(h, &fd));
    FindClose(h);
    return rc;
}

AK_PRIVATE int ak__w32_lock(void *ud, const char *path, int exclusive, void **handle) {
    HANDLE h = ak__w32_open(path, GENERIC_READ | GENERIC_WRITE, OPEN_ALWAYS);
    OVERLAPPED ov;
    AK__UNUSED(ud);
    if (h == INVALID_HANDLE_VALUE) return ak__w32_missing() ? 1 : -1;
    AK_MEMSET(&ov, 0, sizeof ov);
    if (!LockFileEx(h, exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0, 0, 1, 0, &ov)) {
        CloseHandle(h);
        return -1;
    }
    *handle = h;
    return 0;
}

AK_PRIVATE void ak__w32_unlock(void *ud, void *handle) {
    OVERLAPPED ov;
    AK__UNUSED(ud);
    AK_MEMSET(&ov, 0, sizeof ov);
    UnlockFileEx((HANDLE)handle, 0, 1, 0, &ov);
    CloseHandle((HANDLE)handle);
}
#endif /* AK__FS_WIN32 */

#define AK__FS_SET_OPS(o, p)                                                                     \
    ((o)->open_write = ak__##p##_open_write, (o)->write = ak__##p##_write, (o)->sync = ak__##p##_sync, \
     (o)->close = ak__##p##_close, (o)->read_file = ak__##p##_read_file, (o)->rename_file = ak__##p##_rename, \
     (o)->remove_file = ak__##p##_remove, (o)->sync_dir = ak__##p##_sync_dir, (o)->make_dir = ak__##p##_make_dir, \
     (o)->list_dir = ak__##p##_list_dir, (o)->lock = ak__##p##_lock, (o)->unlock = ak__##p##_unlock)

AKDEF ak_result ak_file_ops_default(ak_file_ops *ops) {
    AK_MEMSET(ops, 0, sizeof *ops);
#if defined(AK__FS_POSIX)
    AK__FS_SET_OPS(ops, px);
    return AK_OK;
#elif defined(AK__FS_WIN32)
    AK__FS_SET_OPS(ops, w32);
    return AK_OK;
#else
    return AK_ERR_UNSUPPORTED;
#endif
}

/* ---- small helpers -------------------------------------------------------------------- */

/* FNV-1a over a file's bytes: names one version of a row. */
AK_PRIVATE uint64_t ak__fs_hash(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    while (n--) h = (h ^ AK__U8(*p++)) * 1099511628211ull;
    return h;
}

AK_PRIVATE void ak__fs_put_hex(ak_buf *b, uint64_t v) {
    static const char hex[] = "0123456789abcdef";
    int shift;
    for (shift = 60; shift >= 0; shift -= 4) ak_buf_putc(b, hex[(v >> shift) & 15]);
}

AK_PRIVATE int ak__fs_parse_hex(const char *s, size_t n, uint64_t *out) {
    uint64_t v = 0;
    size_t i;
    if (n != 16) return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16u;
        if (d > 15) return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

/* Both NULL, or equal strings. */
AK_PRIVATE int ak__fs_same(const char *a, const char *b) { return a == b || (a && b && ak__streq(a, b)); }

/* A row id: a safe file name that does not start with '.', the store's own files do. */
AK_PRIVATE int ak__fs_id_ok(const char *id) { return ak_id_is_safe(id) && id[0] != '.'; }

AK_PRIVATE ak_result ak__fs_bad_id(ak_error *err, const char *what) {
    return ak_error_set(err, AK_ERR_INVALID_ARGUMENT,
                        "%s must be 1..%d printable ASCII characters without '/' or '\\', not starting with '.'", what,
                        AK_ID_MAX);
}

AK_PRIVATE ak_result ak__fs_oom(ak_error *err) { return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "file store: out of memory"); }

AK_PRIVATE ak_result ak__fs_io(ak_error *err, const char *what, const char *path) {
    return ak_error_set(err, AK_ERR_IO, "file store: cannot %s %s", what, path ? path : "(path)");
}

/* ---- tenants and paths ------------------------------------------------------------------ */

/* One operation's view of dir/<prefix>. */
typedef struct ak__fs_tenant {
    ak_filestore *f;
    const ak_file_ops *ops;
    const ak_allocator *a;
    ak_buf dir;                  /* root/prefix */
} ak__fs_tenant;

AK_PRIVATE void ak__fs_tenant_at(ak_filestore *f, ak__fs_tenant *t) {
    t->f = f;
    t->ops = &f->desc.ops;
    t->a = ak_context_allocator(f->ctx);
    ak_buf_init(&t->dir, t->a);
}

AK_PRIVATE ak_result ak__fs_tenant_open(ak_filestore *f, const ak_json *context, ak__fs_tenant *t, ak_error *err) {
    const char *prefix = f->desc.prefix ? f->desc.prefix(f->desc.prefix_ud, context) : "global";
    ak__fs_tenant_at(f, t);
    if (!prefix || !ak_id_is_safe(prefix))
        return ak_error_setst(err, AK_ERR_STORE, AK_STATUS_PERMISSION_DENIED,
                              "file store: the snapshot path prefix for this caller is not a plain directory name");
    ak_buf_printf(&t->dir, "%s/%s", f->dir, prefix);
    return t->dir.err ? ak__fs_oom(err) : AK_OK;
}

AK_PRIVATE void ak__fs_tenant_close(ak__fs_tenant *t) { ak_buf_free(&t->dir); }

/* "<tenant>[/<sub>]/<pre><name><ext>" into b (cleared first); NULL when out of memory. */
AK_PRIVATE const char *ak__fs_path(ak__fs_tenant *t, ak_buf *b, const char *sub, const char *pre, const char *name,
                                   const char *ext) {
    ak_buf_clear(b);
    ak_buf_append(b, t->dir.ptr, t->dir.len);
    if (sub) ak_buf_printf(b, "/%s", sub);
    ak_buf_printf(b, "/%s%s%s", pre, name, ext);
    return b->err ? NULL : b->ptr;
}

AK_PRIVATE const char *ak__fs_row_path(ak__fs_tenant *t, ak_buf *b, const char *id) {
    return ak__fs_path(t, b, NULL, "", id, ".json");
}

/* Reads a whole file into b (cleared first): AK_OK, AK_ERR_NOT_FOUND, DATA_LOSS (too big) or IO. */
AK_PRIVATE ak_result ak__fs_read(ak__fs_tenant *t, const char *path, ak_buf *b, ak_error *err) {
    int rc;
    ak_buf_clear(b);
    b->max = AK_FILESTORE_MAX_FILE;
    rc = t->ops->read_file(t->ops->ud, path, b);
    t->f->files_read++;
    if (rc == 1) return AK_ERR_NOT_FOUND;
    if (b->err == AK_ERR_LIMIT)
        return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s is larger than AK_FILESTORE_MAX_FILE", path);
    if (b->err) return ak__fs_oom(err);
    return rc ? ak__fs_io(err, "read", path) : AK_OK;
}

/* Replaces path with data the crash-safe way: a temp file beside it, written, synced and
   closed, renamed over path, then the directory synced so the rename survives power loss. */
AK_PRIVATE ak_result ak__fs_replace(ak__fs_tenant *t, const char *dir, const char *tmp, const char *path,
                                    const ak_buf *data, ak_error *err) {
    const ak_file_ops *o = t->ops;
    void *h = NULL;
    const char *failed = NULL;
    if (o->open_write(o->ud, tmp, &h) != 0) return ak__fs_io(err, "create", tmp);
    if (o->write(o->ud, h, data->ptr, data->len) != 0) failed = "write";
    else if (o->sync(o->ud, h) != 0) failed = "sync";
    if (o->close(o->ud, h) != 0 && !failed) failed = "close";
    if (!failed && o->rename_file(o->ud, tmp, path) != 0) failed = "rename";
    if (failed) {
        o->remove_file(o->ud, tmp);
        return ak__fs_io(err, failed, tmp);
    }
    t->f->bytes_written += data->len;
    return o->sync_dir(o->ud, dir) != 0 ? ak__fs_io(err, "sync the directory of", path) : AK_OK;
}

/* Creates dir (and makes its creation durable in its parent). */
AK_PRIVATE ak_result ak__fs_make_dir(ak__fs_tenant *t, const char *dir, const char *parent, ak_error *err) {
    int rc = t->ops->make_dir(t->ops->ud, dir);
    if (rc < 0) return ak__fs_io(err, "create the directory", dir);
    if (rc == 0 && t->ops->sync_dir(t->ops->ud, parent) != 0) return ak__fs_io(err, "sync the directory", parent);
    return AK_OK;
}

/* Takes the tenant's lock. Shared locks of a tenant with no directory yet give *handle NULL
   (nothing is stored); exclusive ones create the directory. */
AK_PRIVATE ak_result ak__fs_lock(ak__fs_tenant *t, int exclusive, void **handle, ak_error *err) {
    ak_buf path;
    ak_result rc = AK_OK;
    int lrc;
    *handle = NULL;
    if (exclusive && (rc = ak__fs_make_dir(t, t->dir.ptr, t->f->dir, err)) != AK_OK) return rc;
    ak_buf_init(&path, t->a);
    if (!ak__fs_path(t, &path, NULL, "", ".lock", "")) {
        ak_buf_free(&path);
        return ak__fs_oom(err);
    }
    lrc = t->ops->lock(t->ops->ud, path.ptr, exclusive, handle);
    if (lrc < 0 || (lrc == 1 && exclusive)) rc = ak__fs_io(err, "lock", path.ptr);
    if (lrc) *handle = NULL;
    ak_buf_free(&path);
    return rc;
}

AK_PRIVATE void ak__fs_unlock(ak__fs_tenant *t, void *handle) {
    if (handle) t->ops->unlock(t->ops->ud, handle);
}

/* ---- rows: what a file says about how it is stored ---------------------------------------- */

typedef struct ak__fs_meta {
    char base[AK_ID_MAX + 1];    /* delta base (always the parent); "" = checkpoint */
    uint64_t base_hash;          /* hash of the base file the delta was made against */
    size_t keep;                 /* messages taken from the base */
    int depth;                   /* deltas since the last checkpoint (0 = checkpoint) */
    int linear;                  /* first written while its parent was the session's pointer */
} ak__fs_meta;

/* A parsed row file. For a delta, tail holds its own messages, detached from state. */
typedef struct ak__fs_row {
    ak_json_doc doc;
    ak_json *root;
    ak_json *tail;
    ak__fs_meta meta;
    uint64_t hash;
} ak__fs_row;

AK_PRIVATE ak_result ak__fs_corrupt(ak_error *err, const char *path, const char *why) {
    return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s is corrupt: %s", path, why);
}

/* Reads the "akFile" member (absent: a checkpoint nobody depends on being linear). */
AK_PRIVATE ak_result ak__fs_parse_meta(const ak_json *x, const char *path, ak__fs_meta *m, ak_error *err) {
    const ak_json *base = ak_json_get(x, "base"), *linear = ak_json_get(x, "linear");
    int64_t v = 0, keep = 0, depth = 0;
    AK_MEMSET(m, 0, sizeof *m);
    if (!x) return AK_OK;
    if (!ak_json_is(x, AK_JSON_OBJECT) || ak_json_int64(ak_json_get(x, "v"), &v) != AK_OK)
        return ak__fs_corrupt(err, path, "akFile is not {\"v\":1,...}");
    if (v != 1) return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s was written by a newer version (akFile.v %lld)", path, (long long)v);
    if (linear && linear->type != AK_JSON_BOOL) return ak__fs_corrupt(err, path, "akFile.linear is not a boolean");
    m->linear = ak_json_bool(linear, 0);
    if (!base) return AK_OK;
    if (base->type != AK_JSON_STRING || !ak__fs_id_ok(base->u.str) ||
        !ak__fs_parse_hex(ak_json_get_str(x, "baseHash"), ak_json_len(ak_json_get(x, "baseHash")), &m->base_hash) ||
        ak_json_int64(ak_json_get(x, "keep"), &keep) != AK_OK || keep < 0 ||
        ak_json_int64(ak_json_get(x, "depth"), &depth) != AK_OK || depth < 1 || depth > AK_FILESTORE_MAX_DELTAS)
        return ak__fs_corrupt(err, path, "akFile has a bad base, baseHash, keep or depth");
    AK_MEMCPY(m->base, base->u.str, base->len + 1);
    m->keep = (size_t)keep;
    if ((int64_t)m->keep != keep) return ak__fs_corrupt(err, path, "akFile.keep is too large");
    m->depth = (int)depth;
    return AK_OK;
}

/* Parses the bytes of row `id` (file `path`) into r. */
AK_PRIVATE ak_result ak__fs_parse_row(ak__fs_tenant *t, const char *path, const char *id, const ak_buf *bytes,
                                      ak__fs_row *r, ak_error *err) {
    ak_error inner;
    ak_result rc;
    ak_json *state;
    ak_json_doc_init(&r->doc, t->a);
    r->root = r->tail = NULL;
    r->hash = ak__fs_hash(bytes->ptr, bytes->len);
    rc = ak_json_parse(&r->doc, bytes->ptr, bytes->len, &inner);
    if (rc == AK_ERR_OUT_OF_MEMORY) return ak__fs_oom(err);
    if (rc != AK_OK)
        return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s is corrupt or truncated: %s", path, inner.message);
    r->root = r->doc.root;
    if (!ak_json_is(r->root, AK_JSON_OBJECT)) return ak__fs_corrupt(err, path, "not a snapshot object");
    if (!ak__fs_same(ak_json_get_str(r->root, "snapshotId"), id))
        return ak__fs_corrupt(err, path, "it holds another snapshotId");
    if ((rc = ak__fs_parse_meta(ak_json_get(r->root, "akFile"), path, &r->meta, err)) != AK_OK || !r->meta.base[0])
        return rc;
    state = ak_json_get(r->root, "state");
    if (!ak_json_is(state, AK_JSON_OBJECT)) return ak__fs_corrupt(err, path, "a delta without state");
    r->tail = ak_json_remove(state, "messages");
    if (r->tail && r->tail->type != AK_JSON_ARRAY) return ak__fs_corrupt(err, path, "state.messages is not an array");
    return AK_OK;
}

/* The snapshot of a parsed row without the messages of its base. */
AK_PRIVATE ak_result ak__fs_row_snapshot(ak__fs_tenant *t, const char *path, const ak__fs_row *r, ak_snapshot **out,
                                         ak_error *err) {
    ak_error inner;
    ak_result rc = ak_snapshot_from_json(t->a, r->root, out, &inner);
    if (rc == AK_ERR_OUT_OF_MEMORY) return ak__fs_oom(err);
    if (rc != AK_OK) return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s: %s", path, inner.message);
    return AK_OK;
}

/* Makes snap's messages the first meta.keep of base's, then the row's own (validated). */
AK_PRIVATE ak_result ak__fs_apply_delta(ak__fs_tenant *t, const char *path, const ak__fs_row *r,
                                        const ak_snapshot *base, ak_snapshot *snap, ak_error *err) {
    ak_msgs *m = ak_msgs_retain(base->state.messages);
    const ak_json *v;
    size_t i = 0;
    if (r->meta.keep > ak_msgs_count(m)) {
        ak_msgs_release(m);
        return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s takes %zu messages from %s, which has %zu", path,
                            r->meta.keep, r->meta.base, ak_msgs_count(base->state.messages));
    }
    if (ak_msgs_truncate(t->a, &m, r->meta.keep) != AK_OK) goto oom;
    for (v = ak_json_first(r->tail); v; v = v->next, i++) {
        ak_error inner;
        if (ak_msg_validate(v, &inner) != AK_OK) {
            ak_msgs_release(m);
            return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s: state.messages[%zu]: %s", path, i, inner.message);
        }
        if (ak_msgs_append(t->a, &m, v) != AK_OK) goto oom;
    }
    ak_msgs_release(snap->state.messages);
    snap->state.messages = m;
    return AK_OK;
oom:
    ak_msgs_release(m);
    return ak__fs_oom(err);
}

/* ---- the cache of rows ------------------------------------------------------------------ */

struct ak_filestore_entry {
    char *path;                  /* owned; NULL = free slot */
    uint64_t hash;               /* the file version the snapshot was read from or written as */
    uint64_t used;               /* LRU clock */
    ak_snapshot *snap;
    ak__fs_meta meta;
};

AK_PRIVATE void ak__fs_entry_clear(ak_filestore *f, ak_filestore_entry *e) {
    ak__strfree(ak_context_allocator(f->ctx), e->path);
    ak_snapshot_release(e->snap);
    AK_MEMSET(e, 0, sizeof *e);
}

/* The entry for path (any version), or NULL. */
AK_PRIVATE ak_filestore_entry *ak__fs_cache_slot(ak_filestore *f, const char *path) {
    size_t i;
    for (i = 0; f->cache && i < AK_FILESTORE_CACHE; i++)
        if (f->cache[i].path && ak__streq(f->cache[i].path, path)) return &f->cache[i];
    return NULL;
}

/* The entry for this version of path, or NULL. */
AK_PRIVATE ak_filestore_entry *ak__fs_cache_find(ak_filestore *f, const char *path, uint64_t hash) {
    ak_filestore_entry *e = ak__fs_cache_slot(f, path);
    if (!e || e->hash != hash) return NULL;
    e->used = ++f->cache_clock;
    return e;
}

/* Remembers a row version; a failure to remember only costs a later read. */
AK_PRIVATE void ak__fs_cache_put(ak_filestore *f, const char *path, uint64_t hash, ak_snapshot *snap,
                                 const ak__fs_meta *meta) {
    ak_filestore_entry *e = ak__fs_cache_slot(f, path);
    size_t i;
    char *copy;
    if (!f->cache || AK_FILESTORE_CACHE == 0) return;
    if (!e) {
        e = &f->cache[0];
        for (i = 1; i < AK_FILESTORE_CACHE; i++)
            if (!f->cache[i].path || (e->path && f->cache[i].used < e->used)) e = &f->cache[i];
    }
    copy = ak__strdup(ak_context_allocator(f->ctx), path);
    ak_snapshot_retain(snap); /* before the clear: the slot may hold the last other reference */
    ak__fs_entry_clear(f, e);
    if (!copy) {
        ak_snapshot_release(snap);
        return;
    }
    e->path = copy;
    e->hash = hash;
    e->used = ++f->cache_clock;
    e->snap = snap;
    e->meta = *meta;
}

AK_PRIVATE void ak__fs_cache_drop(ak_filestore *f, const char *path) {
    ak_filestore_entry *e = ak__fs_cache_slot(f, path);
    if (e) ak__fs_entry_clear(f, e);
}

/* ---- loading a row and its delta chain ---------------------------------------------------- */

/* What ak__fs_load found: the snapshot (NULL = no such row), how it is stored, its version. */
typedef struct ak__fs_loaded {
    ak_snapshot *snap;
    ak__fs_meta meta;
    uint64_t hash;
} ak__fs_loaded;

/* The rows read on the way down a delta chain, newest first. */
typedef struct ak__fs_link {
    ak__fs_row row;
    char *path;
} ak__fs_link;

typedef struct ak__fs_chain {
    ak__fs_link *v;
    size_t count, cap;
} ak__fs_chain;

AK_PRIVATE void ak__fs_chain_free(ak__fs_tenant *t, ak__fs_chain *c) {
    size_t i;
    for (i = 0; i < c->count; i++) {
        ak_json_doc_free(&c->v[i].row.doc);
        ak__strfree(t->a, c->v[i].path);
    }
    ak_free(t->a, c->v, c->cap * sizeof *c->v);
}

/* A new link at the end of the chain for the row read from path. */
AK_PRIVATE ak__fs_row *ak__fs_chain_push(ak__fs_tenant *t, ak__fs_chain *c, const char *path) {
    ak__fs_link *l;
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        ak__fs_link *v = (ak__fs_link *)ak_realloc(t->a, c->v, c->cap * sizeof *v, cap * sizeof *v);
        if (!v) return NULL;
        c->v = v, c->cap = cap;
    }
    l = &c->v[c->count];
    if (!(l->path = ak__strdup(t->a, path))) return NULL;
    ak_json_doc_init(&l->row.doc, t->a);
    c->count++;
    return &l->row;
}

/* Reads rows from `id` down its delta chain until a checkpoint or a row version already in
   the cache (*base then holds it, retained). */
AK_PRIVATE ak_result ak__fs_read_chain(ak__fs_tenant *t, const char *id, ak__fs_chain *c, ak_filestore_entry **base,
                                       ak_error *err) {
    ak_buf path, bytes;
    char cur[AK_ID_MAX + 1]; /* a copy: the chain's array moves as it grows */
    uint64_t expect = 0;
    int have_expect = 0;
    ak_result rc = AK_OK;
    AK_MEMCPY(cur, id, ak__strlen(id) + 1);
    ak_buf_init(&path, t->a);
    ak_buf_init(&bytes, t->a);
    *base = NULL;
    for (;;) {
        ak__fs_row *r;
        if (!ak__fs_row_path(t, &path, cur)) {
            rc = ak__fs_oom(err);
            break;
        }
        /* a base version we hold already needs no read at all */
        if (have_expect && (*base = ak__fs_cache_find(t->f, path.ptr, expect)) != NULL) break;
        rc = ak__fs_read(t, path.ptr, &bytes, err);
        if (rc == AK_ERR_NOT_FOUND && c->count)
            rc = ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s needs %s, which is missing", c->v[c->count - 1].path,
                              path.ptr);
        if (rc != AK_OK) break;
        if ((*base = ak__fs_cache_find(t->f, path.ptr, ak__fs_hash(bytes.ptr, bytes.len))) != NULL) break;
        if (c->count > AK_FILESTORE_MAX_DELTAS) {
            rc = ak__fs_corrupt(err, c->v[0].path, "its delta chain is cyclic or longer than AK_FILESTORE_MAX_DELTAS");
            break;
        }
        if (!(r = ak__fs_chain_push(t, c, path.ptr))) {
            rc = ak__fs_oom(err);
            break;
        }
        if ((rc = ak__fs_parse_row(t, path.ptr, cur, &bytes, r, err)) != AK_OK || !r->meta.base[0]) break;
        AK_MEMCPY(cur, r->meta.base, ak__strlen(r->meta.base) + 1);
        expect = r->meta.base_hash, have_expect = 1;
    }
    ak_buf_free(&path);
    ak_buf_free(&bytes);
    return rc;
}

/* Loads row `id` (out->snap NULL when it does not exist), building its messages on its
   base's list so that loaded snapshots share memory as live ones do. Every row read is
   cached. Call with the tenant locked. */
AK_PRIVATE ak_result ak__fs_load(ak__fs_tenant *t, const char *id, ak__fs_loaded *out, ak_error *err) {
    ak__fs_chain c;
    ak_filestore_entry *hit;
    ak_snapshot *below = NULL;
    ak_result rc;
    size_t i;
    AK_MEMSET(&c, 0, sizeof c);
    AK_MEMSET(out, 0, sizeof *out);
    rc = ak__fs_read_chain(t, id, &c, &hit, err);
    if (rc == AK_ERR_NOT_FOUND) rc = AK_OK;
    if (rc == AK_OK && hit) {
        below = ak_snapshot_retain(hit->snap); /* the cache may evict it while we build */
        out->meta = hit->meta;
        out->hash = hit->hash;
    }
    /* oldest first: each row is built on the one below it */
    for (i = c.count; rc == AK_OK && i-- > 0;) {
        ak__fs_row *r = &c.v[i].row;
        const char *path = c.v[i].path;
        ak_snapshot *s;
        if ((rc = ak__fs_row_snapshot(t, path, r, &s, err)) != AK_OK) break;
        if (r->meta.base[0] && (rc = ak__fs_apply_delta(t, path, r, below, s, err)) != AK_OK) {
            ak_snapshot_release(s);
            break;
        }
        ak__fs_cache_put(t->f, path, r->hash, s, &r->meta);
        ak_snapshot_release(below);
        below = s;
        out->meta = r->meta;
        out->hash = r->hash;
    }
    if (rc == AK_OK) out->snap = below;
    else ak_snapshot_release(below);
    ak__fs_chain_free(t, &c);
    return rc;
}

/* ---- row headers (for scans and pruning) --------------------------------------------------- */

typedef struct ak__fs_head {
    char parent[AK_ID_MAX + 1];  /* "" = none */
    char session[AK_ID_MAX + 1]; /* "" = none */
    int64_t created_at;
    ak__fs_meta meta;
} ak__fs_head;

AK_PRIVATE void ak__fs_head_from(ak__fs_head *h, const ak_snapshot *s, const ak__fs_meta *meta) {
    /* ids of parsed snapshots are at most AK_ID_MAX bytes (ak_snapshot_from_json checks) */
    h->parent[0] = h->session[0] = 0;
    if (s->parent_id) AK_MEMCPY(h->parent, s->parent_id, ak__strlen(s->parent_id) + 1);
    if (s->session_id) AK_MEMCPY(h->session, s->session_id, ak__strlen(s->session_id) + 1);
    h->created_at = s->created_at;
    h->meta = *meta;
}

/* Reads the header of row `id` without building its messages: AK_OK, AK_ERR_NOT_FOUND,
   DATA_LOSS or another error. bytes and path are scratch buffers. */
AK_PRIVATE ak_result ak__fs_head_read(ak__fs_tenant *t, const char *id, ak_buf *path, ak_buf *bytes, ak__fs_head *h,
                                      ak_error *err) {
    ak_filestore_entry *e;
    ak__fs_row r;
    ak_snapshot *s = NULL;
    ak_result rc;
    if (!ak__fs_row_path(t, path, id)) return ak__fs_oom(err);
    if ((rc = ak__fs_read(t, path->ptr, bytes, err)) != AK_OK) return rc;
    if ((e = ak__fs_cache_find(t->f, path->ptr, ak__fs_hash(bytes->ptr, bytes->len))) != NULL) {
        ak__fs_head_from(h, e->snap, &e->meta);
        return AK_OK;
    }
    rc = ak__fs_parse_row(t, path->ptr, id, bytes, &r, err);
    if (rc == AK_OK) rc = ak__fs_row_snapshot(t, path->ptr, &r, &s, err);
    if (rc == AK_OK) ak__fs_head_from(h, s, &r.meta);
    ak_snapshot_release(s);
    ak_json_doc_free(&r.doc);
    return rc;
}

/* ---- scanning a tenant -------------------------------------------------------------------- */

typedef struct ak__fs_name {
    struct ak__fs_name *next;
    char id[1];                  /* allocated longer */
} ak__fs_name;

typedef struct ak__fs_names {
    ak_arena *arena;
    ak__fs_name *first;
    int oom;
} ak__fs_names;

AK_PRIVATE int ak__fs_collect_name(void *ud, const char *name) {
    ak__fs_names *ns = (ak__fs_names *)ud;
    size_t n = ak__strlen(name);
    ak__fs_name *e;
    if (n <= 5 || !ak__streq(name + n - 5, ".json")) return 0;
    n -= 5;
    if (n > AK_ID_MAX) return 0;
    if (!(e = (ak__fs_name *)ak_arena_alloc(ns->arena, sizeof *e + n))) {
        ns->oom = 1;
        return 1;
    }
    AK_MEMCPY(e->id, name, n);
    e->id[n] = 0;
    if (!ak__fs_id_ok(e->id)) return 0; /* temp files, the store's own files, strangers */
    e->next = ns->first;
    ns->first = e;
    return 0;
}

typedef ak_result (*ak__fs_visit)(void *ud, const char *id, const ak__fs_head *h, ak_error *err);

/* Calls visit for each readable row of the tenant. Rows that cannot be parsed are skipped
   and logged: their session and lineage are unknowable, and one damaged file must not hide
   every other row. */
AK_PRIVATE ak_result ak__fs_scan(ak__fs_tenant *t, ak__fs_visit visit, void *ud, ak_error *err) {
    ak_arena arena;
    ak__fs_names ns;
    ak__fs_name *n;
    ak_buf path, bytes;
    ak_result rc = AK_OK;
    int lrc;
    ak_arena_init(&arena, t->a, 4096);
    ns.arena = &arena, ns.first = NULL, ns.oom = 0;
    lrc = t->ops->list_dir(t->ops->ud, t->dir.ptr, ak__fs_collect_name, &ns);
    if (ns.oom) rc = ak__fs_oom(err);
    else if (lrc < 0) rc = ak__fs_io(err, "list", t->dir.ptr);
    ak_buf_init(&path, t->a);
    ak_buf_init(&bytes, t->a);
    for (n = ns.first; rc == AK_OK && lrc == 0 && n; n = n->next) {
        ak__fs_head h;
        ak_error inner;
        rc = ak__fs_head_read(t, n->id, &path, &bytes, &h, &inner);
        if (rc == AK_ERR_NOT_FOUND || rc == AK_ERR_DATA_LOSS) {
            if (rc == AK_ERR_DATA_LOSS) ak_log(t->f->ctx, AK_LOG_WARN, "%s (skipped)", inner.message);
            rc = AK_OK;
            continue;
        }
        if (rc != AK_OK) {
            if (err) *err = inner;
            break;
        }
        rc = visit(ud, n->id, &h, err);
    }
    ak_buf_free(&path);
    ak_buf_free(&bytes);
    ak_arena_free(&arena);
    return rc;
}

/* ---- session pointers ------------------------------------------------------------------- */

/* .pointers/<name>.json: the session id in hex (any bytes become a file name), or for ids
   too long for that, '~' and a hash (collisions are caught by the id kept inside). */
AK_PRIVATE const char *ak__fs_pointer_path(ak__fs_tenant *t, ak_buf *b, const char *sid, const char *pre) {
    static const char hex[] = "0123456789abcdef";
    ak_buf name;
    size_t n = ak__strlen(sid), i;
    const char *p;
    ak_buf_init(&name, t->a);
    if (n > 100) {
        ak_buf_putc(&name, '~');
        ak__fs_put_hex(&name, ak__fs_hash(sid, n));
    }
    for (i = 0; n <= 100 && i < n; i++) {
        ak_buf_putc(&name, hex[AK__U8(sid[i]) >> 4]);
        ak_buf_putc(&name, hex[AK__U8(sid[i]) & 15]);
    }
    p = name.err ? NULL : ak__fs_path(t, b, ".pointers", pre, name.ptr, ".json");
    ak_buf_free(&name);
    return p;
}

/* The session's pointer target into out ("" when there is no usable pointer: it is a hint,
   so a missing, unreadable or foreign one just means "scan"). */
AK_PRIVATE ak_result ak__fs_pointer_read(ak__fs_tenant *t, const char *sid, char out[AK_ID_MAX + 1], ak_error *err) {
    ak_buf path, bytes;
    ak_json_doc d;
    ak_result rc = AK_OK;
    out[0] = 0;
    ak_buf_init(&path, t->a);
    ak_buf_init(&bytes, t->a);
    ak_json_doc_init(&d, t->a);
    if (!ak__fs_pointer_path(t, &path, sid, "")) rc = ak__fs_oom(err);
    else if (ak__fs_read(t, path.ptr, &bytes, NULL) == AK_OK) {
        const char *cur;
        if (ak_json_parse(&d, bytes.ptr, bytes.len, NULL) == AK_ERR_OUT_OF_MEMORY) rc = ak__fs_oom(err);
        cur = ak_json_get_str(d.root, "currentSnapshotId");
        if (cur && ak__fs_id_ok(cur) && ak__fs_same(ak_json_get_str(d.root, "sessionId"), sid))
            AK_MEMCPY(out, cur, ak__strlen(cur) + 1);
    } else if (bytes.err == AK_ERR_OUT_OF_MEMORY) {
        rc = ak__fs_oom(err);
    }
    ak_json_doc_free(&d);
    ak_buf_free(&path);
    ak_buf_free(&bytes);
    return rc;
}

AK_PRIVATE ak_result ak__fs_pointer_write(ak__fs_tenant *t, const char *sid, const char *id, ak_error *err) {
    ak_buf path, tmp, dir, body;
    ak_json_doc d;
    ak_json *o;
    char ts[25];
    ak_result rc = AK_OK;
    ak_buf_init(&path, t->a), ak_buf_init(&tmp, t->a), ak_buf_init(&dir, t->a), ak_buf_init(&body, t->a);
    ak_json_doc_init(&d, t->a);
    ak_iso8601(ak_now_ms(t->f->ctx), ts);
    o = ak_json_new_object(&d);
    ak_json_set_str(&d, o, "currentSnapshotId", id);
    ak_json_set_str(&d, o, "updatedAt", ts);
    ak_json_set_str(&d, o, "sessionId", sid);
    if (d.err || !ak__fs_pointer_path(t, &path, sid, "") || !ak__fs_pointer_path(t, &tmp, sid, ".tmp.") ||
        !ak__fs_path(t, &dir, NULL, "", ".pointers", "") || ak_json_write(o, &body) != AK_OK)
        rc = ak__fs_oom(err);
    if (rc == AK_OK) rc = ak__fs_make_dir(t, dir.ptr, t->dir.ptr, err);
    if (rc == AK_OK) rc = ak__fs_replace(t, dir.ptr, tmp.ptr, path.ptr, &body, err);
    ak_json_doc_free(&d);
    ak_buf_free(&path), ak_buf_free(&tmp), ak_buf_free(&dir), ak_buf_free(&body);
    return rc;
}

/* Removes a pointer that may have gone stale (the next lookup scans and nothing is lost). */
AK_PRIVATE ak_result ak__fs_pointer_drop(ak__fs_tenant *t, const char *sid, ak_error *err) {
    ak_buf path;
    ak_result rc = AK_OK;
    ak_buf_init(&path, t->a);
    if (!ak__fs_pointer_path(t, &path, sid, "")) rc = ak__fs_oom(err);
    else if (t->ops->remove_file(t->ops->ud, path.ptr) != 0) rc = ak__fs_io(err, "remove", path.ptr);
    ak_buf_free(&path);
    return rc;
}

/* ---- latest leaf of a session ----------------------------------------------------------- */

typedef struct ak__fs_member {
    const char *id, *parent;     /* in the scan's arena */
    int64_t created_at;
    int has_child;
} ak__fs_member;

typedef struct ak__fs_members {
    const char *sid;
    const ak_allocator *a;
    ak__fs_member *v;
    size_t count, cap;
    ak_arena strings;
} ak__fs_members;

AK_PRIVATE ak_result ak__fs_add_member(void *ud, const char *id, const ak__fs_head *h, ak_error *err) {
    ak__fs_members *ms = (ak__fs_members *)ud;
    ak__fs_member *m;
    if (!ak__streq(h->session, ms->sid)) return AK_OK;
    if (ms->count == ms->cap) {
        size_t cap = ms->cap ? ms->cap * 2 : 16;
        ak__fs_member *v = cap > ((size_t)-1) / sizeof *v ? NULL
                         : (ak__fs_member *)ak_realloc(ms->a, ms->v, ms->cap * sizeof *v, cap * sizeof *v);
        if (!v) return ak__fs_oom(err);
        ms->v = v, ms->cap = cap;
    }
    m = &ms->v[ms->count];
    m->id = ak_arena_strdup(&ms->strings, id, ak__strlen(id));
    m->parent = h->parent[0] ? ak_arena_strdup(&ms->strings, h->parent, ak__strlen(h->parent)) : NULL;
    if (!m->id || (h->parent[0] && !m->parent)) return ak__fs_oom(err);
    m->created_at = h->created_at;
    m->has_child = 0;
    ms->count++;
    return AK_OK;
}

/* Byte order of two strings, for a deterministic choice between equally new leaves. */
AK_PRIVATE int ak__fs_cmp(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return (int)AK__U8(*a) - (int)AK__U8(*b);
}

/* Marks every member some other member names as parent, through an open-addressing table
   of member indices by id (a session may have thousands of rows). */
AK_PRIVATE ak_result ak__fs_mark_parents(ak__fs_members *ms, ak_error *err) {
    size_t size = 16, i, *slots;
    while (size < ms->count * 2) size *= 2;
    if (size > ((size_t)-1) / sizeof *slots || !(slots = (size_t *)ak_arena_alloc(&ms->strings, size * sizeof *slots)))
        return ak__fs_oom(err);
    for (i = 0; i < size; i++) slots[i] = (size_t)-1;
    for (i = 0; i < ms->count; i++) {
        size_t s = (size_t)ak__fs_hash(ms->v[i].id, ak__strlen(ms->v[i].id)) & (size - 1);
        while (slots[s] != (size_t)-1) s = (s + 1) & (size - 1);
        slots[s] = i;
    }
    for (i = 0; i < ms->count; i++) {
        const char *p = ms->v[i].parent;
        size_t s;
        if (!p || ak__streq(p, ms->v[i].id)) continue;
        for (s = (size_t)ak__fs_hash(p, ak__strlen(p)) & (size - 1); slots[s] != (size_t)-1; s = (s + 1) & (size - 1))
            if (ak__streq(ms->v[slots[s]].id, p)) ms->v[slots[s]].has_child = 1;
    }
    return AK_OK;
}

/* Genkit's rule: among the session's rows nobody names as parent (a row naming itself is no
   leaf either), the newest createdAt; ties go to the greater id. */
AK_PRIVATE ak_result ak__fs_pick_leaf(ak_filestore *f, ak__fs_members *ms, const char **best, ak_error *err) {
    size_t i, leaves = 0;
    const ak__fs_member *b = NULL;
    ak_result rc = ak__fs_mark_parents(ms, err);
    *best = NULL;
    if (rc != AK_OK) return rc;
    for (i = 0; i < ms->count; i++) {
        const ak__fs_member *m = &ms->v[i];
        if (m->has_child || (m->parent && ak__streq(m->parent, m->id))) continue;
        leaves++;
        if (!b || m->created_at > b->created_at || (m->created_at == b->created_at && ak__fs_cmp(m->id, b->id) > 0))
            b = m;
    }
    if (ms->count && !b)
        return ak_error_setst(err, AK_ERR_STATE, AK_STATUS_FAILED_PRECONDITION,
                              "Session '%s' has no leaf snapshot (corrupt or cyclic history).", ms->sid);
    if (leaves > 1 && f->desc.reject_branching)
        return ak_error_setst(err, AK_ERR_STATE, AK_STATUS_FAILED_PRECONDITION, "Session '%s' has branched into %zu leaves.",
                              ms->sid, leaves);
    *best = b ? b->id : NULL;
    return AK_OK;
}

/* The latest leaf by reading every row of the tenant. */
AK_PRIVATE ak_result ak__fs_scan_leaf(ak__fs_tenant *t, const char *sid, ak_snapshot **out, ak_error *err) {
    ak__fs_members ms;
    const char *best = NULL;
    ak_result rc;
    AK_MEMSET(&ms, 0, sizeof ms);
    ms.sid = sid;
    ms.a = t->a;
    ak_arena_init(&ms.strings, t->a, 4096);
    rc = ak__fs_scan(t, ak__fs_add_member, &ms, err);
    if (rc == AK_OK) rc = ak__fs_pick_leaf(t->f, &ms, &best, err);
    if (rc == AK_OK && best) {
        ak__fs_loaded l;
        rc = ak__fs_load(t, best, &l, err);
        *out = l.snap;
    }
    ak_free(t->a, ms.v, ms.cap * sizeof *ms.v);
    ak_arena_free(&ms.strings);
    return rc;
}

/* The latest leaf: the pointer's row when it exists, belongs to the session and is no
   detached self-parent, else a scan (always with reject_branching). */
AK_PRIVATE ak_result ak__fs_latest(ak__fs_tenant *t, const char *sid, ak_snapshot **out, ak_error *err) {
    char id[AK_ID_MAX + 1];
    ak_result rc;
    id[0] = 0;
    if (!t->f->desc.reject_branching && (rc = ak__fs_pointer_read(t, sid, id, err)) != AK_OK) return rc;
    if (id[0]) {
        ak__fs_loaded l;
        if ((rc = ak__fs_load(t, id, &l, err)) != AK_OK) return rc;
        if (l.snap && ak__fs_same(l.snap->session_id, sid) && !ak__fs_same(l.snap->parent_id, l.snap->id)) {
            *out = l.snap;
            return AK_OK;
        }
        ak_snapshot_release(l.snap);
    }
    return ak__fs_scan_leaf(t, sid, out, err);
}

/* ---- writing rows ----------------------------------------------------------------------- */

/* The messages of m from index `from` on, as a JSON array in d. Only the segments holding
   them are walked, so writing a delta costs what the turn added, not the history. */
AK_PRIVATE ak_json *ak__fs_tail_json(const ak_msgs *m, size_t from, ak_json_doc *d) {
    size_t count = ak_msgs_count(m), limit = count, n = count - from, i;
    const ak_json **v;
    ak_json *arr = ak_json_new_array(d), *last = NULL;
    if (!arr || !n) return arr;
    if (n > ((size_t)-1) / sizeof *v || !(v = (const ak_json **)ak_arena_alloc(&d->arena, n * sizeof *v))) {
        d->err = AK_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    for (; m && limit > from; m = m->prev) {
        const ak_json *x = m->first;
        for (i = m->prev_count; x && i < limit; x = x->next, i++)
            if (i >= from) v[i - from] = x;
        if (limit > m->prev_count) limit = m->prev_count;
    }
    for (i = 0; i < n; i++) {
        ak_json *c = ak_json_copy(d, v[i]);
        if (!c) return NULL;
        if (last) last->next = c; /* linked directly: ak_json_push walks the list */
        else arr->u.first = c;
        last = c;
        arr->len++;
    }
    return arr;
}

/* The bytes of snap's row stored as meta says. */
AK_PRIVATE ak_result ak__fs_encode(ak__fs_tenant *t, const ak_snapshot *snap, const ak__fs_meta *meta, ak_buf *out,
                                   ak_error *err) {
    ak_snapshot view = *snap; /* read-only copy: a delta's state is written without the base's messages */
    ak_json_doc d;
    ak_json *o, *x;
    ak_result rc = AK_OK;
    ak_json_doc_init(&d, t->a);
    if (meta->base[0]) view.state.messages = NULL;
    o = ak_snapshot_to_json(&view, AK_SNAPSHOT_NONE, &d);
    if (o && meta->base[0])
        ak_json_set(&d, ak_json_get(o, "state"), "messages", ak__fs_tail_json(snap->state.messages, meta->keep, &d));
    if (o && (meta->base[0] || meta->linear)) {
        ak_buf hex;
        char h[17];
        ak_buf_init_fixed(&hex, h, sizeof h);
        x = ak_json_new_object(&d);
        ak_json_set_int(&d, x, "v", 1);
        if (meta->base[0]) {
            ak__fs_put_hex(&hex, meta->base_hash);
            ak_json_set_str(&d, x, "base", meta->base);
            ak_json_set_str(&d, x, "baseHash", h);
            ak_json_set_int(&d, x, "keep", (int64_t)meta->keep);
            ak_json_set_int(&d, x, "depth", meta->depth);
        }
        if (meta->linear) ak_json_set_bool(&d, x, "linear", 1);
        ak_json_set(&d, o, "akFile", x);
    }
    ak_buf_clear(out);
    if (!o || d.err || ak_json_write(o, out) != AK_OK) rc = ak__fs_oom(err);
    ak_json_doc_free(&d);
    return rc;
}

/* Writes snap as row file snap->id and caches it; *hash names the version written. */
AK_PRIVATE ak_result ak__fs_put_row(ak__fs_tenant *t, ak_snapshot *snap, const ak__fs_meta *meta, uint64_t *hash,
                                    ak_error *err) {
    ak_buf path, tmp, body;
    ak_result rc = AK_OK;
    ak_buf_init(&path, t->a), ak_buf_init(&tmp, t->a), ak_buf_init(&body, t->a);
    if (!ak__fs_row_path(t, &path, snap->id) || !ak__fs_path(t, &tmp, NULL, ".tmp.", snap->id, ".json"))
        rc = ak__fs_oom(err);
    if (rc == AK_OK) rc = ak__fs_encode(t, snap, meta, &body, err);
    if (rc == AK_OK) {
        *hash = ak__fs_hash(body.ptr, body.len);
        ak__fs_cache_drop(t->f, path.ptr); /* whatever happens next, the old version is no longer ours */
        rc = ak__fs_replace(t, t->dir.ptr, tmp.ptr, path.ptr, &body, err);
        if (rc == AK_OK) ak__fs_cache_put(t->f, path.ptr, *hash, snap, meta);
    }
    ak_buf_free(&path), ak_buf_free(&tmp), ak_buf_free(&body);
    return rc;
}

/* Writes compactly into the scratch buffers and compares: the same message, byte for byte. */
AK_PRIVATE int ak__fs_same_json(const ak_json *a, const ak_json *b, ak_buf *x, ak_buf *y) {
    ak_buf_clear(x), ak_buf_clear(y);
    return ak_json_write(a, x) == AK_OK && ak_json_write(b, y) == AK_OK && x->len == y->len &&
           AK_MEMCMP(x->ptr, y->ptr, x->len) == 0;
}

/* 1 when the messages of p are the first messages of n: by identity when n was built on p
   (the usual case, a few pointer steps), else compared one by one. Out of memory says 0,
   which only costs a checkpoint. */
AK_PRIVATE int ak__fs_is_prefix(const ak_allocator *a, const ak_msgs *p, const ak_msgs *n) {
    size_t np = ak_msgs_count(p), limit = ak_msgs_count(n), i, steps = 0, bytes;
    const ak_msgs *m = n;
    const ak_json **pv, **nv;
    ak_buf x, y;
    int same = 1;
    if (np > limit) return 0;
    if (!np) return 1;
    for (; m && limit >= np && steps < 16; m = m->prev, steps++) {
        if (m == p) return 1;
        limit = AK__MIN(limit, m->prev_count);
    }
    if (ak_msgs_count(n) > ((size_t)-1) / sizeof *pv) return 0;
    bytes = ak_msgs_count(n) * sizeof *pv;
    pv = (const ak_json **)ak_alloc(a, np * sizeof *pv);
    nv = (const ak_json **)ak_alloc(a, bytes);
    ak_buf_init(&x, a), ak_buf_init(&y, a);
    if (!pv || !nv) same = 0;
    if (same) ak_msgs_collect(p, pv), ak_msgs_collect(n, nv);
    for (i = 0; same && i < np; i++) same = pv[i] == nv[i] || ak__fs_same_json(pv[i], nv[i], &x, &y);
    ak_free(a, pv, np * sizeof *pv);
    ak_free(a, nv, bytes);
    ak_buf_free(&x), ak_buf_free(&y);
    return same;
}

/* Rows between checkpoints: checkpoint_every, or max_chain when that is smaller, so that
   pruning never waits long for a checkpoint. */
AK_PRIVATE int ak__fs_interval(const ak_filestore *f) {
    int n = f->desc.checkpoint_every;
    return f->desc.max_chain > 0 && f->desc.max_chain < n ? f->desc.max_chain : n;
}

/* Decides how to store `next`, which replaces `cur` (NULL for a new row). A delta on the
   parent when the parent loads, its messages start next's, the chain since the last
   checkpoint is short enough, and the invariants in the file comment allow it. */
AK_PRIVATE ak_result ak__fs_plan(ak__fs_tenant *t, const ak_snapshot *next, const ak__fs_loaded *cur,
                                 const char *pointer, ak__fs_meta *meta, ak_error *err) {
    const char *parent = next->parent_id;
    int same_lineage = cur->snap && ak__fs_same(cur->snap->parent_id, parent) &&
                       ak__fs_same(cur->snap->session_id, next->session_id);
    int may_delta;
    ak__fs_loaded p;
    ak_error inner;
    ak_result rc;
    AK_MEMSET(meta, 0, sizeof *meta);
    if (cur->snap) meta->linear = same_lineage && cur->meta.linear;
    else meta->linear = parent && ak__fs_same(pointer, parent);
    may_delta = parent && ak__fs_id_ok(parent) && !ak__streq(parent, next->id) && ak__fs_interval(t->f) > 1 &&
                (cur->snap ? same_lineage && ak__streq(cur->meta.base, parent) : meta->linear);
    if (!may_delta) return AK_OK;
    rc = ak__fs_load(t, parent, &p, &inner);
    if (rc == AK_ERR_OUT_OF_MEMORY) return ak__fs_oom(err);
    if (rc != AK_OK || !p.snap) return AK_OK; /* a parent that is gone or damaged: write in full */
    if (p.meta.depth + 1 < ak__fs_interval(t->f) && ak__fs_is_prefix(t->a, p.snap->state.messages, next->state.messages)) {
        AK_MEMCPY(meta->base, parent, ak__strlen(parent) + 1);
        meta->base_hash = p.hash;
        meta->keep = ak_msgs_count(p.snap->state.messages);
        meta->depth = p.meta.depth + 1;
    }
    ak_snapshot_release(p.snap);
    return AK_OK;
}

/* Rewrites as checkpoints the rows whose delta takes messages from `id` (before `id` stops
   having them). Needs a scan, but only a save that rewrites a row's messages other than by
   appending gets here, which agents never do. */
typedef struct ak__fs_dependents {
    ak__fs_tenant *t;
    const char *id;
} ak__fs_dependents;

AK_PRIVATE ak_result ak__fs_materialise(void *ud, const char *id, const ak__fs_head *h, ak_error *err) {
    ak__fs_dependents *d = (ak__fs_dependents *)ud;
    ak__fs_loaded l;
    ak__fs_meta meta;
    uint64_t hash;
    ak_result rc;
    if (!ak__streq(h->meta.base, d->id)) return AK_OK;
    if ((rc = ak__fs_load(d->t, id, &l, err)) != AK_OK || !l.snap) return rc;
    AK_MEMSET(&meta, 0, sizeof meta);
    meta.linear = l.meta.linear;
    rc = ak__fs_put_row(d->t, l.snap, &meta, &hash, err);
    ak_snapshot_release(l.snap);
    return rc;
}

/* Deletes the ancestors of the row just written that are more than max_chain back, newest
   first (so a crash midway leaves only loadable rows), keeping every row a kept row's delta
   needs: a row goes when its child on the chain is linear (it has no other delta child) and
   does not take messages from it (is a checkpoint, or is going too). The walk ends where
   earlier saves stopped, at most max_chain + interval rows back. Failures only log. */
AK_PRIVATE void ak__fs_prune(ak__fs_tenant *t, const ak_snapshot *snap, const ak__fs_meta *meta) {
    ak_buf path, bytes;
    ak__fs_head h;
    char cur[AK_ID_MAX + 1];
    int k, limit = t->f->desc.max_chain + ak__fs_interval(t->f) + 1, child_linear = meta->linear, removed = 0;
    int child_needs = meta->base[0] != 0, child_gone = 0;
    ak_buf_init(&path, t->a), ak_buf_init(&bytes, t->a);
    cur[0] = 0;
    if (snap->parent_id && ak__fs_id_ok(snap->parent_id)) AK_MEMCPY(cur, snap->parent_id, ak__strlen(snap->parent_id) + 1);
    for (k = 1; cur[0] && k <= limit; k++) {
        ak_error e;
        int gone;
        if (ak__fs_head_read(t, cur, &path, &bytes, &h, &e) != AK_OK) break;
        gone = k >= t->f->desc.max_chain && child_linear && (child_gone || !child_needs);
        if (gone) {
            if (t->ops->remove_file(t->ops->ud, path.ptr) != 0) {
                ak_log(t->f->ctx, AK_LOG_WARN, "file store: cannot remove %s while pruning", path.ptr);
                break;
            }
            ak__fs_cache_drop(t->f, path.ptr);
            removed = 1;
        }
        child_linear = h.meta.linear;
        child_needs = h.meta.base[0] != 0;
        child_gone = gone;
        if (!h.parent[0] || !ak__fs_id_ok(h.parent)) break;
        AK_MEMCPY(cur, h.parent, ak__strlen(h.parent) + 1);
    }
    if (removed && t->ops->sync_dir(t->ops->ud, t->dir.ptr) != 0)
        ak_log(t->f->ctx, AK_LOG_WARN, "file store: cannot sync %s after pruning", t->dir.ptr);
    ak_buf_free(&path), ak_buf_free(&bytes);
}

/* Writes `next` over `cur` (cur->snap NULL: a new row): decides delta or checkpoint, keeps
   dependents and pointers right, then replaces the file. */
AK_PRIVATE ak_result ak__fs_write_row(ak__fs_tenant *t, ak_snapshot *next, const ak__fs_loaded *cur, uint64_t *hash,
                                      ak__fs_meta *meta, ak_error *err) {
    const char *sid = next->session_id;
    char pointer[AK_ID_MAX + 1];
    ak_result rc;
    pointer[0] = 0;
    if (sid && (rc = ak__fs_pointer_read(t, sid, pointer, err)) != AK_OK) return rc;
    if ((rc = ak__fs_plan(t, next, cur, pointer, meta, err)) != AK_OK) return rc;
    if (cur->snap && !ak__fs_is_prefix(t->a, cur->snap->state.messages, next->state.messages)) {
        ak__fs_dependents d;
        d.t = t, d.id = next->id;
        if ((rc = ak__fs_scan(t, ak__fs_materialise, &d, err)) != AK_OK) return rc;
    }
    if (!cur->snap && sid) {
        /* before the row: a crash in between leaves a pointer to nothing (a scan follows),
           never a row its session's pointer does not know about */
        if ((rc = ak__fs_pointer_write(t, sid, next->id, err)) != AK_OK) return rc;
    } else if (cur->snap && (!ak__fs_same(cur->snap->parent_id, next->parent_id) ||
                             !ak__fs_same(cur->snap->session_id, sid))) {
        /* a row that moved in the lineage may make either session's pointer stale */
        if ((sid && (rc = ak__fs_pointer_drop(t, sid, err)) != AK_OK) ||
            (cur->snap->session_id && (rc = ak__fs_pointer_drop(t, cur->snap->session_id, err)) != AK_OK))
            return rc;
    }
    return ak__fs_put_row(t, next, meta, hash, err);
}

/* ---- saving ------------------------------------------------------------------------------ */

/* Gives *next the id it is stored under (the caller's, else its own, else a new UUID) and
   checks the ids the file will hold, so every row written can be read back. A snapshot
   others hold too (the cache, say) is copied rather than renamed under them. */
AK_PRIVATE ak_result ak__fs_claim_id(ak__fs_tenant *t, const char *snapshot_id, ak_snapshot **pnext, ak_error *err) {
    ak_snapshot *next = *pnext;
    const char *id = snapshot_id ? snapshot_id : next->id;
    char fresh[37];
    ak_result rc;
    if (!id) {
        if ((rc = ak_uuid4(t->f->ctx, fresh)) != AK_OK)
            return ak_error_set(err, rc, "cannot make a snapshot id: %s", ak_result_str(rc));
        id = fresh;
    }
    if (!ak__fs_id_ok(id)) return ak__fs_bad_id(err, "snapshotId");
    if ((next->session_id && (!*next->session_id || ak__strlen(next->session_id) > AK_ID_MAX)) ||
        (next->parent_id && (!*next->parent_id || ak__strlen(next->parent_id) > AK_ID_MAX)))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "sessionId and parentId must be 1..%d bytes", AK_ID_MAX);
    if (!next->id || !ak__streq(next->id, id)) {
        char *copy;
        if (next->refs > 1) {
            ak_snapshot *own = ak_snapshot_clone(next);
            if (!own) return ak__fs_oom(err);
            ak_snapshot_release(next);
            *pnext = next = own;
        }
        if (!(copy = ak__strdup(next->alloc, id))) return ak__fs_oom(err);
        ak__strfree(next->alloc, next->id);
        next->id = copy;
    }
    return AK_OK;
}

/* The read-modify-write of one row, under the tenant's exclusive lock. *saved receives the
   snapshot written (a reference), NULL when the mutator skipped. */
AK_PRIVATE ak_result ak__fs_save_locked(ak__fs_tenant *t, const char *snapshot_id, ak_store_mutator fn, void *fn_ud,
                                        ak_snapshot **saved, uint64_t *hash, ak_error *err) {
    ak__fs_loaded cur;
    ak__fs_meta meta;
    ak_snapshot *next = NULL;
    ak_result rc = AK_OK;
    AK_MEMSET(&cur, 0, sizeof cur);
    if (snapshot_id) rc = ak__fs_load(t, snapshot_id, &cur, err);
    if (rc == AK_OK && (rc = fn(fn_ud, cur.snap, &next)) != AK_OK)
        ak_error_set(err, rc, "file store: the save was refused: %s", ak_result_str(rc));
    if (rc == AK_OK && next) rc = ak__fs_claim_id(t, snapshot_id, &next, err);
    /* the mutator's own id may name an existing row, which this write replaces */
    if (rc == AK_OK && next && !snapshot_id) rc = ak__fs_load(t, next->id, &cur, err);
    if (rc == AK_OK && next) rc = ak__fs_write_row(t, next, &cur, hash, &meta, err);
    if (rc == AK_OK && next && t->f->desc.max_chain > 0) ak__fs_prune(t, next, &meta);
    ak_snapshot_release(cur.snap);
    if (rc == AK_OK) *saved = next;
    else ak_snapshot_release(next);
    return rc;
}

/* ---- watches ---------------------------------------------------------------------------- */

struct ak_filestore_watch {
    ak_filestore_watch *next;
    char *dir;                   /* the tenant directory */
    char *id;
    uint64_t hash;               /* the version last reported (or current when watched) */
    int have_hash;
    int dead;                    /* unwatched while listeners ran: freed by the next sweep */
    ak_store_listener fn;
    void *ud;
};

AK_PRIVATE void ak__fs_sweep(ak_filestore *f) {
    const ak_allocator *a = ak_context_allocator(f->ctx);
    ak_filestore_watch **link = &f->watches;
    if (f->notifying) return;
    while (*link) {
        ak_filestore_watch *w = *link;
        if (!w->dead) {
            link = &w->next;
            continue;
        }
        *link = w->next;
        ak__strfree(a, w->dir);
        ak__strfree(a, w->id);
        ak_free(a, w, sizeof *w);
    }
}

/* Tells the watchers of snap's row about the version `hash` (a save through this store). */
AK_PRIVATE void ak__fs_notify(ak_filestore *f, const char *dir, const ak_snapshot *snap, uint64_t hash) {
    ak_filestore_watch *w;
    f->notifying++;
    for (w = f->watches; w; w = w->next) {
        if (w->dead || !ak__streq(w->dir, dir) || !ak__streq(w->id, snap->id)) continue;
        w->hash = hash, w->have_hash = 1;
        w->fn(w->ud, snap);
    }
    f->notifying--;
    ak__fs_sweep(f);
}

/* The watched row when its file changed since last reported (*snap NULL otherwise). */
AK_PRIVATE ak_result ak__fs_poll_one(ak_filestore *f, const ak_filestore_watch *w, ak_snapshot **snap, uint64_t *hash) {
    ak__fs_tenant t;
    ak__fs_loaded l;
    void *lock = NULL;
    ak_result rc;
    *snap = NULL;
    ak__fs_tenant_at(f, &t);
    ak_buf_puts(&t.dir, w->dir);
    rc = t.dir.err ? AK_ERR_OUT_OF_MEMORY : ak__fs_lock(&t, 0, &lock, NULL);
    if (rc == AK_OK && lock) {
        rc = ak__fs_load(&t, w->id, &l, NULL);
        ak__fs_unlock(&t, lock);
        if (rc == AK_OK && l.snap && (!w->have_hash || l.hash != w->hash)) *snap = l.snap, *hash = l.hash;
        else ak_snapshot_release(l.snap);
    }
    ak__fs_tenant_close(&t);
    return rc;
}

/* ---- the store interface ------------------------------------------------------------------ */

AK_PRIVATE ak_result ak__fs_get(ak_store *s, const char *snapshot_id, const char *session_id, const ak_json *context,
                                ak_snapshot **out, ak_error *err) {
    ak_filestore *f = (ak_filestore *)s->ud;
    ak__fs_tenant t;
    void *lock = NULL;
    ak_result rc;
    *out = NULL;
    if ((snapshot_id == NULL) == (session_id == NULL) || (session_id && !*session_id))
        return ak_error_setst(err, AK_ERR_INVALID_ARGUMENT, AK_STATUS_INVALID_ARGUMENT,
                              "Exactly one of snapshotId or sessionId is required.");
    if (snapshot_id && !ak__fs_id_ok(snapshot_id)) return ak__fs_bad_id(err, "snapshotId");
    rc = ak__fs_tenant_open(f, context, &t, err);
    if (rc == AK_OK && !(session_id && ak__strlen(session_id) > AK_ID_MAX)) /* else no row can have it */
        rc = ak__fs_lock(&t, 0, &lock, err);
    if (rc == AK_OK && lock) {
        if (session_id) {
            rc = ak__fs_latest(&t, session_id, out, err);
        } else {
            ak__fs_loaded l;
            rc = ak__fs_load(&t, snapshot_id, &l, err);
            *out = l.snap;
        }
        ak__fs_unlock(&t, lock);
    }
    ak__fs_tenant_close(&t);
    return rc;
}

AK_PRIVATE ak_result ak__fs_save(ak_store *s, const char *snapshot_id, ak_store_mutator fn, void *fn_ud,
                                 const ak_json *context, char written_id[AK_ID_MAX + 1], ak_error *err) {
    ak_filestore *f = (ak_filestore *)s->ud;
    ak__fs_tenant t;
    ak_snapshot *saved = NULL;
    uint64_t hash = 0;
    void *lock = NULL;
    ak_result rc;
    written_id[0] = 0;
    if (snapshot_id && !ak__fs_id_ok(snapshot_id)) return ak__fs_bad_id(err, "snapshotId");
    rc = ak__fs_tenant_open(f, context, &t, err);
    if (rc == AK_OK) rc = ak__fs_lock(&t, 1, &lock, err);
    if (rc == AK_OK) {
        rc = ak__fs_save_locked(&t, snapshot_id, fn, fn_ud, &saved, &hash, err);
        ak__fs_unlock(&t, lock);
    }
    if (saved) {
        AK_MEMCPY(written_id, saved->id, ak__strlen(saved->id) + 1);
        ak__fs_notify(f, t.dir.ptr, saved, hash); /* unlocked: listeners may save */
        ak_snapshot_release(saved);
    }
    ak__fs_tenant_close(&t);
    return rc;
}

AK_PRIVATE ak_result ak__fs_watch(ak_store *s, const char *snapshot_id, ak_store_listener fn, void *fn_ud,
                                  const ak_json *context, void **token) {
    ak_filestore *f = (ak_filestore *)s->ud;
    const ak_allocator *a = ak_context_allocator(f->ctx);
    ak__fs_tenant t;
    ak_filestore_watch *w = NULL;
    ak_buf path, bytes;
    ak_result rc;
    if (!fn || !ak__fs_id_ok(snapshot_id)) return AK_ERR_INVALID_ARGUMENT;
    ak_buf_init(&path, a), ak_buf_init(&bytes, a);
    rc = ak__fs_tenant_open(f, context, &t, NULL);
    if (rc == AK_OK && (w = (ak_filestore_watch *)ak_alloc(a, sizeof *w)) == NULL) rc = AK_ERR_OUT_OF_MEMORY;
    if (rc == AK_OK) {
        AK_MEMSET(w, 0, sizeof *w);
        w->fn = fn, w->ud = fn_ud;
        w->dir = ak__strdup(a, t.dir.ptr);
        w->id = ak__strdup(a, snapshot_id);
        if (!w->dir || !w->id || !ak__fs_row_path(&t, &path, snapshot_id)) rc = AK_ERR_OUT_OF_MEMORY;
    }
    /* report changes from now on: remember the version there is (one file, read whole) */
    if (rc == AK_OK && ak__fs_read(&t, path.ptr, &bytes, NULL) == AK_OK)
        w->hash = ak__fs_hash(bytes.ptr, bytes.len), w->have_hash = 1;
    if (rc == AK_OK) {
        w->next = f->watches;
        f->watches = w;
        *token = w;
    } else if (w) {
        ak__strfree(a, w->dir), ak__strfree(a, w->id);
        ak_free(a, w, sizeof *w);
    }
    ak_buf_free(&path), ak_buf_free(&bytes);
    ak__fs_tenant_close(&t);
    return rc;
}

AK_PRIVATE void ak__fs_unwatch(ak_store *s, void *token) {
    ak_filestore *f = (ak_filestore *)s->ud;
    ak_filestore_watch *w;
    for (w = f->watches; w; w = w->next)
        if (w == token) w->dead = 1;
    ak__fs_sweep(f);
}

/* Reads every watched row (its file, whole: cheap for the small rows deltas are) and tells
   the listeners of those whose content changed, after releasing the lock. */
AK_PRIVATE ak_result ak__fs_poll(ak_store *s) {
    ak_filestore *f = (ak_filestore *)s->ud;
    ak_filestore_watch *w;
    ak_result first = AK_OK;
    f->notifying++;
    for (w = f->watches; w; w = w->next) {
        ak_snapshot *snap;
        uint64_t hash = 0;
        ak_result rc;
        if (w->dead) continue;
        rc = ak__fs_poll_one(f, w, &snap, &hash);
        if (rc != AK_OK && first == AK_OK) first = rc;
        if (snap && !w->dead) {
            w->hash = hash, w->have_hash = 1;
            w->fn(w->ud, snap);
        }
        ak_snapshot_release(snap);
    }
    f->notifying--;
    ak__fs_sweep(f);
    return first;
}

/* ---- init / free ------------------------------------------------------------------------ */

/* NULL members of o become the platform defaults; without defaults they must all be set. */
AK_PRIVATE ak_result ak__fs_fill_ops(ak_file_ops *o, ak_error *err) {
    ak_file_ops d;
    int have = ak_file_ops_default(&d) == AK_OK;
#define AK__FS_FILL(m)                                                                                  \
    do {                                                                                                \
        if (o->m) break;                                                                                \
        if (!have)                                                                                      \
            return ak_error_set(err, AK_ERR_UNSUPPORTED,                                                \
                                "file store: no default file operations on this platform: set ops." #m); \
        o->m = d.m;                                                                                     \
    } while (0)
    AK__FS_FILL(open_write);
    AK__FS_FILL(write);
    AK__FS_FILL(sync);
    AK__FS_FILL(close);
    AK__FS_FILL(read_file);
    AK__FS_FILL(rename_file);
    AK__FS_FILL(remove_file);
    AK__FS_FILL(sync_dir);
    AK__FS_FILL(make_dir);
    AK__FS_FILL(list_dir);
    AK__FS_FILL(lock);
    AK__FS_FILL(unlock);
#undef AK__FS_FILL
    return AK_OK;
}

AK_PRIVATE int ak__fs_ignore_name(void *ud, const char *name) {
    AK__UNUSED(ud), AK__UNUSED(name);
    return 0;
}

AKDEF ak_result ak_filestore_init(ak_filestore *f, ak_context *ctx, const ak_filestore_desc *desc, ak_error *err) {
    const ak_allocator *a;
    size_t n;
    ak_result rc;
    AK_MEMSET(f, 0, sizeof *f);
    if (!ctx || !desc || !desc->dir || !*desc->dir)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "file store: desc.dir is required");
    if (desc->max_chain < 0 || desc->checkpoint_every < 0 || desc->checkpoint_every > AK_FILESTORE_MAX_DELTAS)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "file store: max_chain must be >= 0 and checkpoint_every 0..%d",
                            AK_FILESTORE_MAX_DELTAS);
    f->desc = *desc;
    f->desc.checkpoint_every = AK__DEF(desc->checkpoint_every, 16);
    if ((rc = ak__fs_fill_ops(&f->desc.ops, err)) != AK_OK) return rc;
    a = ak_context_allocator(ctx);
    for (n = ak__strlen(desc->dir); n > 1 && desc->dir[n - 1] == '/'; n--) {
    }
    if (!(f->dir = (char *)ak_alloc(a, n + 1))) return ak__fs_oom(err);
    AK_MEMCPY(f->dir, desc->dir, n);
    f->dir[n] = 0;
    f->desc.dir = f->dir;
    f->ctx = ctx;
    if (AK_FILESTORE_CACHE > 0) {
        f->cache = (ak_filestore_entry *)ak_alloc(a, AK_FILESTORE_CACHE * sizeof *f->cache);
        if (!f->cache) rc = ak__fs_oom(err);
        else AK_MEMSET(f->cache, 0, AK_FILESTORE_CACHE * sizeof *f->cache);
    }
    if (rc == AK_OK && (f->desc.ops.make_dir(f->desc.ops.ud, f->dir) < 0 ||
                        f->desc.ops.list_dir(f->desc.ops.ud, f->dir, ak__fs_ignore_name, NULL) != 0))
        rc = ak__fs_io(err, "create or open the directory", f->dir);
    if (rc != AK_OK) {
        ak_filestore_free(f);
        return rc;
    }
    f->store.get = ak__fs_get;
    f->store.save = ak__fs_save;
    f->store.watch = ak__fs_watch;
    f->store.unwatch = ak__fs_unwatch;
    f->store.poll = ak__fs_poll;
    f->store.ud = f;
    return AK_OK;
}

AKDEF void ak_filestore_free(ak_filestore *f) {
    const ak_allocator *a;
    ak_filestore_watch *w;
    size_t i;
    if (!f->ctx) return;
    a = ak_context_allocator(f->ctx);
    for (i = 0; f->cache && i < AK_FILESTORE_CACHE; i++) ak__fs_entry_clear(f, &f->cache[i]);
    ak_free(a, f->cache, AK_FILESTORE_CACHE * sizeof *f->cache);
    for (w = f->watches; w; w = w->next) w->dead = 1;
    f->notifying = 0;
    ak__fs_sweep(f);
    ak__strfree(a, f->dir);
    AK_MEMSET(f, 0, sizeof *f);
}

#endif /* AK_NO_STDIO */
/* ---- end src/filestore.c ---- */

/* ---- begin src/tools.c ---- */
/* >>tools: tool-call outcomes and the handle table of tools answering later */


enum { AK__TOOL_IDLE = 0, AK__TOOL_RUNNING, AK__TOOL_DONE, AK__TOOL_FAILED, AK__TOOL_INTERRUPTED };

struct ak__tool_slot {
    uint32_t generation;         /* bumped on release: old handles stop matching */
    ak_tool_call *call;          /* NULL = free */
};

AKDEF ak_result ak_tool_return(ak_tool_call *call, ak_json *output) {
    call->output = output ? output : ak_json_new_null(call->doc);
    call->state = call->output ? AK__TOOL_DONE : AK__TOOL_FAILED;
    if (!call->output)
        ak_error_setst(&call->error, AK_ERR_OUT_OF_MEMORY, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return AK_OK;
}

AKDEF ak_result ak_tool_fail(ak_tool_call *call, ak_status status, const char *fmt, ...) {
    va_list ap;
    call->state = AK__TOOL_FAILED;
    va_start(ap, fmt);
    ak__error_vset(&call->error, AK_ERR_AGENT, status, fmt, ap);
    va_end(ap);
    return AK_ERR_AGENT;
}

AKDEF ak_result ak_tool_interrupt(ak_tool_call *call, const ak_json *metadata) {
    call->interrupt = metadata ? ak_json_copy(call->doc, metadata) : ak_json_new_bool(call->doc, 1);
    call->state = call->interrupt ? AK__TOOL_INTERRUPTED : AK__TOOL_FAILED;
    if (!call->interrupt)
        ak_error_setst(&call->error, AK_ERR_OUT_OF_MEMORY, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return AK_OK;
}

/* A handle packs the slot index (low 16 bits, +1 so 0 is never valid) and generation. */
#define AK__HANDLE(i, gen) (((uint32_t)(gen) << 16) | ((uint32_t)(i) + 1))

/* Gives a pending call a handle; AK_ERR_OUT_OF_MEMORY / AK_ERR_LIMIT when none is free. */
AK_PRIVATE ak_result ak__slot_acquire(ak_agent *a, ak_tool_call *call) {
    uint32_t i;
    for (i = 0; i < a->slot_count && a->slots[i].call; i++) {
    }
    if (i == a->slot_count) {
        uint32_t n = a->slot_count ? a->slot_count * 2 : 16;
        ak__tool_slot *s;
        if (n > 0xFFFF) return AK_ERR_LIMIT;
        s = (ak__tool_slot *)ak_realloc(ak_context_allocator(a->ctx), a->slots, a->slot_count * sizeof *s,
                                        n * sizeof *s);
        if (!s) return AK_ERR_OUT_OF_MEMORY;
        AK_MEMSET(s + a->slot_count, 0, (n - a->slot_count) * sizeof *s);
        a->slots = s;
        a->slot_count = n;
    }
    a->slots[i].call = call;
    call->handle.id = AK__HANDLE(i, a->slots[i].generation & 0xFFFF);
    return AK_OK;
}

AK_PRIVATE void ak__slot_release(ak_agent *a, ak_tool_call *call) {
    uint32_t i = (call->handle.id & 0xFFFF) - 1;
    if (call->handle.id && i < a->slot_count && a->slots[i].call == call) {
        a->slots[i].call = NULL;
        a->slots[i].generation++;
    }
    call->handle.id = 0;
}

AK_PRIVATE ak_tool_call *ak__slot_find(ak_agent *a, ak_tool_handle h) {
    uint32_t i = (h.id & 0xFFFF) - 1;
    if (!h.id || i >= a->slot_count || !a->slots[i].call ||
        AK__HANDLE(i, a->slots[i].generation & 0xFFFF) != h.id)
        return NULL;
    return a->slots[i].call;
}

AKDEF ak_result ak_agent_tool_return(ak_agent *a, ak_tool_handle h, const ak_json *output) {
    ak_tool_call *call = ak__slot_find(a, h);
    if (!call) return AK_ERR_NOT_FOUND;
    ak__slot_release(a, call);
    return ak_tool_return(call, ak_json_copy(call->doc, output));
}

AKDEF ak_result ak_agent_tool_fail(ak_agent *a, ak_tool_handle h, ak_status status, const char *message) {
    ak_tool_call *call = ak__slot_find(a, h);
    if (!call) return AK_ERR_NOT_FOUND;
    ak__slot_release(a, call);
    ak_tool_fail(call, status, "%s", message ? message : "tool failed");
    return AK_OK;
}

AKDEF ak_result ak_agent_tool_interrupt(ak_agent *a, ak_tool_handle h, const ak_json *metadata) {
    ak_tool_call *call = ak__slot_find(a, h);
    if (!call) return AK_ERR_NOT_FOUND;
    ak__slot_release(a, call);
    return ak_tool_interrupt(call, metadata);
}
/* ---- end src/tools.c ---- */

/* ---- begin src/runner.c ---- */
/* >>runner: agents, invocations (the turn loop around each turn), the session runner API,
   snapshot writes, detach/abort/heartbeat, output assembly */


#define AK__HEARTBEAT_MS 30000

enum { AK__INV_IDLE = 0, AK__INV_TURN, AK__INV_FINISH, AK__INV_DONE };

/* One tool request of the model message a prompt turn is answering. */
typedef struct ak__ptool {
    const ak_json *part;         /* the toolRequest part */
    ak_tool_call call;
    int tool;                    /* index in desc.tools, -1 unknown */
    const ak_json *response;     /* a respond entry or pending output answering it */
    int restart;                 /* 1: re-run because of a restart entry */
    int pending_output;          /* 1: answered by its metadata.pendingOutput */
    int traced;                  /* 1: a trace span began (at `started`) and must end */
    int64_t started;
} ak__ptool;

/* The prompt-agent turn machine (prompt.c). */
typedef struct ak__prompt {
    int step;
    int iteration;               /* tool rounds done in this turn */
    int msg_index;               /* modelChunk index */
    ak_model_call call;
    ak_json *model_msg;          /* the model message whose tool requests are answered */
    ak__ptool *tools;
    size_t tool_count;
    int64_t model_started;
} ak__prompt;

struct ak_invocation {
    ak_agent *agent;
    ak_invocation *next;
    ak_context *ctx;
    const ak_allocator *alloc;
    ak_agent_chunk_fn on_chunk;
    void *chunk_ud;
    ak_json_doc io;              /* context, queued inputs, the output */
    ak_json *context;
    ak_json *queue, *queue_tail; /* inputs not yet taken */
    int closed, caller_gone, resolved, rejected, failed, phase;
    ak_json *output;
    ak_error thrown;
    /* the session */
    ak_session_state state;      /* live */
    ak_session_state good;       /* as of the last successful turn */
    char *good_id;               /* last written snapshot */
    char *parent_id;             /* parent of the next snapshot */
    unsigned version, saved_version;
    int turn_index;
    ak_finish_reason last_reason;
    int has_last_reason;
    ak_jref *last_error;
    /* the turn in progress */
    const ak_json *input;
    char turn_id[AK_ID_MAX + 1]; /* reserved snapshot id ("" = none) */
    ak_json_doc turn_doc;
    void *turn_state;
    size_t turn_state_size;
    ak_finish_reason reason;
    int has_reason;
    ak_error turn_error;
    int turn_failed;
    int error_prefixed;          /* library errors carry "STATUS: " in their message, as Genkit's do */
    ak_jref *error_details;
    ak_jref *sent_custom;        /* custom state as last streamed */
    int first_patch;
    int64_t turn_started;
    /* detached */
    int detached, aborted;
    int64_t next_beat;
    void *watch;
    ak__prompt pt;
    int64_t wake_at;             /* a custom turn waiting for a time (ak_runner_wait_until) */
    int64_t started;
};

AK_PRIVATE ak_result ak__prompt_turn(ak_runner *r, const ak_json *input, const ak_turn_info *turn, void *ud);
AK_PRIVATE void ak__prompt_release(ak_invocation *inv);

/* ---- small helpers -------------------------------------------------------------------- */

AK_PRIVATE int ak__server_managed(const ak_invocation *inv) { return inv->agent->desc.store != NULL; }

AK_PRIVATE void ak__set_str(const ak_allocator *a, char **slot, const char *v) {
    char *copy = v ? ak__strdup(a, v) : NULL;
    ak__strfree(a, *slot);
    *slot = copy;
}

AK_PRIVATE void ak__trace(ak_invocation *inv, ak_trace_kind kind, int end, const char *name, int64_t started,
                          ak_status st, const ak_json *attrs) {
    ak_agent *a = inv->agent;
    if (!a->desc.trace) return;
    a->desc.trace(a->desc.trace_ud, kind, end, name, end ? ak_mono_ms(inv->ctx) - started : 0, st, attrs);
}

/* Parses JSON text owned by the agent description into the agent's document. */
AK_PRIVATE ak_result ak__parse_desc_json(ak_agent *a, const char *text, const char *what, ak_json **out,
                                         ak_error *err) {
    ak_error e;
    *out = NULL;
    if (!text) return AK_OK;
    if (ak_json_parse_value(&a->doc, text, ak__strlen(text), NULL, out, &e) != AK_OK)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "agent '%s': %s is not valid JSON: %s", a->desc.name, what,
                            e.message);
    return AK_OK;
}

/* Checks value against a schema the agent parsed (NULL: anything goes). Built without the
   validator (AK_NO_SCHEMA), tool input schemas are only sent to the model and tools check
   their input themselves; state schemas, which are only for checking, are refused at init. */
AK_PRIVATE ak_result ak__agent_schema_check(const ak_json *schema, const ak_json *value, ak_error *err) {
#ifdef AK_NO_SCHEMA
    AK__UNUSED(schema), AK__UNUSED(value), AK__UNUSED(err);
    return AK_OK;
#else
    return schema ? ak_json_schema_validate(schema, value, err) : AK_OK;
#endif
}

/* The part of every model request that does not change: config, tools, output. */
AK_PRIVATE ak_result ak__build_request(ak_agent *a, ak_error *err) {
    ak_json_doc *d = &a->doc;
    ak_json *config = NULL, *tools, *schema = NULL;
    size_t i;
    ak_result rc;
    a->request = ak_json_new_object(d);
    if ((rc = ak__parse_desc_json(a, a->desc.config, "config", &config, err)) != AK_OK) return rc;
    if (config) ak_json_set(d, a->request, "config", config);
    a->input_schemas = (ak_json **)ak_arena_zalloc(&d->arena, (a->desc.tool_count + 1) * sizeof *a->input_schemas);
    if (!a->input_schemas) return AK_ERR_OUT_OF_MEMORY;
    if (a->desc.tool_count) {
        tools = ak_json_new_array(d);
        ak_json_set(d, a->request, "tools", tools);
        for (i = 0; i < a->desc.tool_count; i++) {
            const ak_tool *t = &a->desc.tools[i];
            ak_json *def = ak_json_new_object(d), *out_schema = NULL;
            if (!t->name || (!t->fn && !t->interrupt))
                return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "agent '%s': tool %zu needs a name and a function",
                                    a->desc.name, i);
            if ((rc = ak__parse_desc_json(a, t->input_schema, "a tool input schema", &a->input_schemas[i], err)) != AK_OK ||
                (rc = ak__parse_desc_json(a, t->output_schema, "a tool output schema", &out_schema, err)) != AK_OK)
                return rc;
            ak_json_set_str(d, def, "name", t->name);
            ak_json_set_str(d, def, "description", t->description ? t->description : "");
            ak_json_set(d, def, "inputSchema", a->input_schemas[i] ? ak_json_copy(d, a->input_schemas[i])
                                                                    : ak_json_new_object(d));
            if (out_schema) ak_json_set(d, def, "outputSchema", out_schema);
            ak_json_push(tools, def);
        }
    }
    if (a->desc.output_format || a->desc.output_schema) {
        ak_json *out = ak_json_new_object(d);
        if ((rc = ak__parse_desc_json(a, a->desc.output_schema, "output schema", &schema, err)) != AK_OK) return rc;
        ak_json_set_str(d, out, "format", a->desc.output_format ? a->desc.output_format : "json");
        if (schema) ak_json_set(d, out, "schema", schema);
        ak_json_set(d, a->request, "output", out);
    }
    return d->err;
}

AKDEF ak_result ak_agent_init(ak_agent *a, ak_context *ctx, const ak_agent_desc *desc, ak_error *err) {
    ak_result rc;
    AK_MEMSET(a, 0, sizeof *a);
    if (!ctx || !desc || !desc->name || !*desc->name)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "an agent needs a context and a name");
    if (!desc->turn && !desc->model)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "agent '%s' needs a model (prompt agent) or a turn function (custom agent)",
                            desc->name);
#ifdef AK_NO_SCHEMA
    if (desc->state_schema)
        return ak_error_set(err, AK_ERR_UNSUPPORTED, "agent '%s' has a state schema, but this build has no JSON "
                            "Schema validator (AK_NO_SCHEMA)", desc->name);
#endif
    a->ctx = ctx;
    a->desc = *desc;
    if (a->desc.max_turns <= 0) a->desc.max_turns = 5;
    ak_json_doc_init(&a->doc, ak_context_allocator(ctx));
    if ((rc = ak__build_request(a, err)) != AK_OK ||
        (rc = ak__parse_desc_json(a, desc->state_schema, "state schema", &a->state_schema, err)) != AK_OK) {
        ak_json_doc_free(&a->doc);
        return rc == AK_ERR_OUT_OF_MEMORY ? ak__oom(err) : rc;
    }
    if (desc->system) {
        ak_json_doc *d = &a->doc;
        ak_json *md = ak_json_new_object(d);
        a->system_msg = ak_msg_new(d, "system");
        ak_msg_add(a->system_msg, ak_part_text(d, desc->system));
        /* Genkit tags rendered prompt messages this way, and models see it. */
        ak_json_set_bool(d, md, "agentPreamble", 1);
        ak_json_set(d, a->system_msg, "metadata", md);
        if (d->err) {
            ak_json_doc_free(&a->doc);
            return ak__oom(err);
        }
    }
    return AK_OK;
}

AK_PRIVATE void ak__inv_destroy(ak_invocation *inv);

AKDEF void ak_agent_free(ak_agent *a) {
    while (a->invocations) ak__inv_destroy(a->invocations);
    ak_free(ak_context_allocator(a->ctx), a->slots, a->slot_count * sizeof *a->slots);
    ak_json_doc_free(&a->doc);
    AK_MEMSET(a, 0, sizeof *a);
}

/* ---- errors --------------------------------------------------------------------------- */

/* {status, message, details?} for an error. */
AK_PRIVATE ak_json *ak__error_json(ak_json_doc *d, ak_status st, const char *message, int prefixed,
                                   const ak_json *details) {
    ak_json *e = ak_json_new_object(d);
    ak_buf b;
    ak_buf_init(&b, d->arena.alloc);
    if (prefixed) ak_buf_printf(&b, "%s: ", ak_status_name(st));
    ak_buf_puts(&b, message);
    ak_json_set_str(d, e, "status", ak_status_name(st));
    ak_json_set(d, e, "message", ak_json_new_strn(d, b.ptr ? b.ptr : "", b.len));
    if (details) ak_json_set(d, e, "details", ak_json_copy(d, details));
    ak_buf_free(&b);
    return d->err ? NULL : e;
}

/* Fails the turn in progress with a library error (Genkit-style "STATUS: message"). */
AK_PRIVATE ak_result ak__turn_error(ak_invocation *inv, ak_status st, const char *fmt, ...) {
    va_list ap;
    inv->turn_failed = 1;
    inv->error_prefixed = 1;
    va_start(ap, fmt);
    ak__error_vset(&inv->turn_error, AK_ERR_AGENT, st, fmt, ap);
    va_end(ap);
    return AK_ERR_AGENT;
}

AK_PRIVATE ak_result ak__turn_oom(ak_invocation *inv) {
    return ak__turn_error(inv, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

AKDEF ak_result ak_runner_fail(ak_runner *r, ak_status status, const char *fmt, ...) {
    va_list ap;
    r->turn_failed = 1;
    r->error_prefixed = 0; /* like a plain Error thrown by a handler: the message as given */
    va_start(ap, fmt);
    ak__error_vset(&r->turn_error, AK_ERR_AGENT, status, fmt, ap);
    va_end(ap);
    return AK_ERR_AGENT;
}

/* Rejects the invocation (Genkit's thrown errors: HTTP 4xx / an error frame). */
AK_PRIVATE ak_result ak__reject(ak_invocation *inv, ak_status st, const char *fmt, ...) {
    va_list ap;
    inv->rejected = 1;
    inv->resolved = 1;
    va_start(ap, fmt);
    ak__error_vset(&inv->thrown, AK_ERR_AGENT, st, fmt, ap);
    va_end(ap);
    return AK_ERR_AGENT;
}

/* ---- chunks --------------------------------------------------------------------------- */

/* Sends {key: value} to the caller, through the client transform, and frees d, where value
   was built (NULL: out of memory, nothing is sent). Returns 0 when the chunk could not be
   built. */
AK_PRIVATE int ak__emit_in(ak_invocation *inv, ak_json_doc *d, const char *key, ak_json *value) {
    const ak_client_transform *t = &inv->agent->desc.transform;
    ak_json *chunk = ak_json_new_object(d);
    int built = value && ak_json_set(d, chunk, key, value) == AK_OK;
    if (built && (!t->chunk || t->chunk(t->ud, d, &chunk)) && chunk) inv->on_chunk(inv->chunk_ud, chunk);
    ak_json_doc_free(d);
    return built;
}

/* ak__emit_in with a copy of value; nothing while detached. */
AK_PRIVATE int ak__emit(ak_invocation *inv, const char *key, ak_json *value) {
    ak_json_doc d;
    if (inv->detached || !inv->on_chunk || !value) return 1;
    ak_json_doc_init(&d, inv->alloc);
    return ak__emit_in(inv, &d, key, ak_json_copy(&d, value));
}

/* {role, index?, content, custom?} from a model chunk or parts. */
AK_PRIVATE void ak__emit_model_chunk(ak_invocation *inv, const char *role, int index, const ak_json *content,
                                     const ak_json *custom) {
    ak_json_doc d;
    ak_json *mc;
    if (inv->detached || !inv->on_chunk) return;
    ak_json_doc_init(&d, inv->alloc);
    mc = ak_json_new_object(&d);
    ak_json_set_str(&d, mc, "role", role);
    if (index >= 0) ak_json_set_int(&d, mc, "index", index);
    ak_json_set(&d, mc, "content", content ? ak_json_copy(&d, content) : ak_json_new_array(&d));
    if (custom) ak_json_set(&d, mc, "custom", ak_json_copy(&d, custom));
    ak__emit_in(inv, &d, "modelChunk", d.err ? NULL : mc);
}

AK_PRIVATE void ak__emit_turn_end(ak_invocation *inv, const char *snapshot_id, int has_reason, ak_finish_reason r) {
    ak_json_doc d;
    ak_json *te;
    if (inv->detached || !inv->on_chunk) return;
    ak_json_doc_init(&d, inv->alloc);
    te = ak_json_new_object(&d);
    if (snapshot_id && *snapshot_id) ak_json_set_str(&d, te, "snapshotId", snapshot_id);
    if (has_reason) ak_json_set_str(&d, te, "finishReason", ak_finish_reason_name(r));
    ak__emit_in(inv, &d, "turnEnd", te);
}

/* The state as clients see it (clientTransform.state applied), built in d. */
AK_PRIVATE ak_json *ak__client_state(ak_agent *a, const ak_session_state *s, ak_json_doc *d) {
    ak_json *st = ak_session_state_to_json(s, d);
    if (st && a->desc.transform.state && a->desc.transform.state(a->desc.transform.ud, d, &st) != AK_OK) return NULL;
    return st;
}

/* Streams the custom state: the first patch of a turn replaces the root, later ones diff. */
AK_PRIVATE ak_result ak__emit_custom_patch(ak_invocation *inv) {
    ak_json_doc d;
    ak_json *now, *patch = NULL;
    int sent_ok = 1;
    if (inv->detached || !inv->on_chunk) return AK_OK;
    ak_json_doc_init(&d, inv->alloc);
    if (inv->agent->desc.transform.state)
        now = ak_json_get(ak__client_state(inv->agent, &inv->state, &d), "custom");
    else
        now = inv->state.custom ? inv->state.custom->value : NULL;
    if (inv->first_patch) {
        ak_json *op = ak_json_new_object(&d);
        patch = ak_json_new_array(&d);
        ak_json_set_str(&d, op, "op", "replace");
        ak_json_set_str(&d, op, "path", "");
        ak_json_set(&d, op, "value", ak_json_copy(&d, now));
        ak_json_push(patch, op);
    } else if (ak_json_diff(&d, inv->sent_custom ? inv->sent_custom->value : NULL, now, &patch) != AK_OK) {
        patch = NULL;
    }
    if (!patch || d.err) {
        sent_ok = 0;
    } else if (ak_json_len(patch)) {
        ak_jref *sent = ak_jref_new(inv->alloc, now);
        sent_ok = sent && ak__emit(inv, "customPatch", patch);
        if (sent_ok) {
            ak_jref_release(inv->sent_custom);
            inv->sent_custom = sent;
            inv->first_patch = 0;
        } else {
            ak_jref_release(sent);
        }
    }
    ak_json_doc_free(&d);
    /* a listener that missed a patch would track the wrong custom state from then on */
    if (sent_ok) return AK_OK;
    if (!inv->turn_failed) ak__turn_error(inv, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory streaming the custom state");
    return AK_ERR_OUT_OF_MEMORY;
}

/* ---- snapshot writes ------------------------------------------------------------------ */

/* The row a turn writes, handed to the store through an abort-aware mutator: a row that was
   aborted meanwhile is never overwritten. */
typedef struct ak__write {
    ak_snapshot *snap;
    int abort_aware;
} ak__write;

AK_PRIVATE ak_result ak__write_mutator(void *ud, const ak_snapshot *current, ak_snapshot **next) {
    ak__write *w = (ak__write *)ud;
    if (w->abort_aware && current && current->status == AK_SNAPSHOT_ABORTED) return AK_OK;
    *next = ak_snapshot_retain(w->snap);
    return AK_OK;
}

/* Writes a row of state under id: a turn's (AK_OK when written or skipped) or the pending
   row of a detach, which is the one an abort may mark. Returns the store's error. */
AK_PRIVATE ak_result ak__save_row(ak_invocation *inv, const char *id, const ak_session_state *state,
                                  ak_snapshot_status status, int has_reason, ak_finish_reason reason,
                                  const ak_json *error, ak_error *err) {
    ak_store *store = inv->agent->desc.store;
    char written[AK_ID_MAX + 1];
    ak__write w;
    ak_result rc;
    int64_t now = ak_now_ms(inv->ctx);
    /* the snapshot freezes the turn's messages: store them without growth slack */
    ak_msgs_compact(inv->alloc, state->messages);
    w.snap = ak_snapshot_new(inv->alloc, id, state->session_id, inv->parent_id, state);
    w.abort_aware = status != AK_SNAPSHOT_PENDING;
    if (!w.snap) return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory writing snapshot");
    w.snap->created_at = w.snap->updated_at = now;
    if (status == AK_SNAPSHOT_PENDING) w.snap->heartbeat_at = now;
    w.snap->status = status;
    w.snap->has_finish_reason = has_reason;
    w.snap->finish_reason = reason;
    if (error && !(w.snap->error = ak_jref_new(inv->alloc, error))) {
        ak_snapshot_release(w.snap);
        return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory writing snapshot");
    }
    rc = store->save(store, id, ak__write_mutator, &w, inv->context, written, err);
    ak_snapshot_release(w.snap);
    return rc;
}

/* ---- session resolution (Genkit's resolveSession) -------------------------------------- */

AK_PRIVATE ak_result ak__validate_custom(ak_invocation *inv, const ak_jref *custom, ak_error *err) {
    ak_error e;
    if (!inv->agent->state_schema || !custom) return AK_OK;
    if (ak__agent_schema_check(inv->agent->state_schema, custom->value, &e) != AK_OK)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "Schema validation failed for custom state: %s",
                              e.message);
    return AK_OK;
}

/* Resolves the output of a failed load (graceful: the invocation resolves, no chunks). */
AK_PRIVATE void ak__resolve_load_failure(ak_invocation *inv, const ak_error *e, const ak_json *init_state) {
    ak_json_doc *d = &inv->io;
    ak_json *o = ak_json_new_object(d);
    ak_json_set_str(d, o, "finishReason", "failed");
    ak_json_set(d, o, "error", ak__error_json(d, e->status, e->message, 1, NULL));
    if (init_state) ak_json_set(d, o, "state", ak_json_copy(d, init_state));
    inv->output = o;
    inv->failed = 1;
    inv->resolved = 1;
    inv->phase = AK__INV_DONE;
}

/* A store that could not load the session resolves the invocation with its error. */
AK_PRIVATE ak_result ak__resolve_store_failure(ak_invocation *inv, ak_result rc, ak_error *e) {
    e->code = AK_ERR_AGENT;
    if (e->status == AK_STATUS_OK) e->status = ak_result_status(rc);
    ak__resolve_load_failure(inv, e, NULL);
    return AK_OK;
}

AK_PRIVATE ak_result ak__adopt_snapshot(ak_invocation *inv, const ak_snapshot *snap) {
    ak_session_state_free(inv->alloc, &inv->state);
    if (ak_session_state_copy(inv->alloc, &snap->state, &inv->state) != AK_OK) return AK_ERR_OUT_OF_MEMORY;
    if (!inv->state.session_id && snap->session_id &&
        ak_session_state_set_id(inv->alloc, &inv->state, snap->session_id) != AK_OK)
        return AK_ERR_OUT_OF_MEMORY;
    ak__set_str(inv->alloc, &inv->good_id, snap->id);
    ak__set_str(inv->alloc, &inv->parent_id, snap->id);
    return AK_OK;
}

/* snapshotId: load it, check ownership (thrown) and status (graceful). */
AK_PRIVATE ak_result ak__resolve_snapshot(ak_invocation *inv, const char *id, const char *sid, ak_error *err) {
    ak_store *store = inv->agent->desc.store;
    ak_snapshot *snap = NULL;
    ak_error e;
    ak_result rc = store->get(store, id, NULL, inv->context, &snap, &e);
    const char *owner;
    if (rc != AK_OK) return ak__resolve_store_failure(inv, rc, &e);
    if (!snap) {
        ak_error_setst(&e, AK_ERR_AGENT, AK_STATUS_NOT_FOUND, "Snapshot %s not found", id);
        ak__resolve_load_failure(inv, &e, NULL);
        return AK_OK;
    }
    owner = snap->session_id ? snap->session_id : snap->state.session_id;
    if (sid && (!owner || !ak__streq(owner, sid))) {
        rc = ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT,
                            "Snapshot %s does not belong to session %s (it belongs to %s).", id, sid,
                            owner ? owner : "no session");
        ak_snapshot_release(snap);
        return rc;
    }
    if (snap->status != AK_SNAPSHOT_COMPLETED && snap->status != AK_SNAPSHOT_NONE) {
        ak_error_setst(&e, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT,
                       "Snapshot %s is not resumable (status: %s). Only 'completed' snapshots can be resumed.", id,
                       ak_snapshot_status_name(snap->status));
        ak__resolve_load_failure(inv, &e, NULL);
    } else if (ak__validate_custom(inv, snap->state.custom, &e) != AK_OK) {
        ak__resolve_load_failure(inv, &e, NULL);
    } else if (ak__adopt_snapshot(inv, snap) != AK_OK) {
        ak_snapshot_release(snap);
        return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory loading snapshot");
    }
    ak_snapshot_release(snap);
    return AK_OK;
}

/* sessionId: the latest leaf, walking back past rows that are not completed. */
AK_PRIVATE ak_result ak__resolve_session(ak_invocation *inv, const char *sid, ak_error *err) {
    ak_store *store = inv->agent->desc.store;
    ak_snapshot *snap = NULL;
    ak_error e;
    int hops = 0;
    ak_result rc = store->get(store, NULL, sid, inv->context, &snap, &e);
    while (rc == AK_OK && snap && snap->status != AK_SNAPSHOT_COMPLETED && snap->status != AK_SNAPSHOT_NONE) {
        ak_snapshot *parent = NULL;
        if (!snap->parent_id || ak__streq(snap->parent_id, snap->id) || ++hops > 100000) {
            ak_snapshot_release(snap);
            snap = NULL;
            if (hops > 100000) rc = ak_error_setst(&e, AK_ERR_STATE, AK_STATUS_FAILED_PRECONDITION,
                                                 "Session %s has cyclic history.", sid);
            break;
        }
        rc = store->get(store, snap->parent_id, NULL, inv->context, &parent, &e);
        ak_snapshot_release(snap);
        snap = parent;
    }
    if (rc != AK_OK) return ak__resolve_store_failure(inv, rc, &e);
    if (!snap) /* a new session with the id the caller chose */
        return ak_session_state_set_id(inv->alloc, &inv->state, sid) == AK_OK
                   ? AK_OK : ak__oom(err);
    if (ak__validate_custom(inv, snap->state.custom, &e) != AK_OK) ak__resolve_load_failure(inv, &e, NULL);
    else if (ak__adopt_snapshot(inv, snap) != AK_OK) rc = ak__oom(err);
    ak_snapshot_release(snap);
    return rc;
}

/* Genkit's init handling (§4.4): misuse is rejected; load failures resolve gracefully. */
AK_PRIVATE ak_result ak__resolve_init(ak_invocation *inv, const ak_json *init, ak_error *err) {
    ak_agent *a = inv->agent;
    const ak_json *jid = ak_json_get(init, "snapshotId"), *jsid = ak_json_get(init, "sessionId"),
                  *jstate = ak_json_get(init, "state");
    const char *id = ak_json_str(jid), *sid = ak_json_str(jsid);
    ak_result rc;
    if (init && !ak_json_is(init, AK_JSON_OBJECT))
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "init must be an object");
    if ((jid && (!id || !*id || jid->len > AK_ID_MAX)) || (jsid && (!sid || !*sid || jsid->len > AK_ID_MAX)))
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT,
                              "init.snapshotId and init.sessionId must be non-empty strings of at most %d bytes",
                              AK_ID_MAX);
    if ((id || sid) && !a->desc.store)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_FAILED_PRECONDITION,
                              "Cannot use '%s' with agent '%s': this agent has no store configured (client-managed "
                              "state). Send 'state' instead.", id ? "snapshotId" : "sessionId", a->desc.name);
    if (jstate && a->desc.store)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_FAILED_PRECONDITION,
                              "Cannot send 'state' to agent '%s': this agent uses a server-managed store. Send "
                              "'snapshotId' or 'sessionId' instead.", a->desc.name);
    if (id) {
        if ((rc = ak__resolve_snapshot(inv, id, sid, err)) != AK_OK) return rc;
    } else if (sid) {
        if ((rc = ak__resolve_session(inv, sid, err)) != AK_OK) return rc;
    } else if (jstate) {
        ak_error e;
        ak_session_state st;
        if ((rc = ak_session_state_from_json(inv->alloc, jstate, &st, &e)) != AK_OK)
            return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "init.state: %s", e.message);
        ak_session_state_free(inv->alloc, &inv->state);
        inv->state = st;
        if (ak__validate_custom(inv, st.custom, &e) != AK_OK) ak__resolve_load_failure(inv, &e, jstate);
    }
    if (!inv->resolved && !inv->state.session_id) {
        /* a new server-managed session needs its first snapshot id too: both at once */
        int with_turn = ak__server_managed(inv) && !inv->turn_id[0];
        char uuid[37];
        if ((rc = ak_uuid4_pair(inv->ctx, uuid, with_turn ? inv->turn_id : NULL)) != AK_OK)
            return ak_error_set(err, rc, "cannot make a session id: %s", ak_result_str(rc));
        if (ak_session_state_set_id(inv->alloc, &inv->state, uuid) != AK_OK)
            return ak__oom(err);
    }
    if (ak_session_state_copy(inv->alloc, &inv->state, &inv->good) != AK_OK)
        return ak__oom(err);
    return AK_OK;
}

/* ---- invocations ---------------------------------------------------------------------- */

AK_PRIVATE void ak__turn_release(ak_invocation *inv) {
    if (!inv->agent->desc.turn) ak__prompt_release(inv);
    if (inv->turn_state) ak_free(inv->alloc, inv->turn_state, inv->turn_state_size);
    inv->turn_state = NULL;
    inv->turn_state_size = 0;
    ak_jref_release(inv->error_details);
    inv->error_details = NULL;
    ak_json_doc_reset(&inv->turn_doc);
}

AK_PRIVATE void ak__stop_watch(ak_invocation *inv) {
    ak_store *store = inv->agent->desc.store;
    if (inv->watch && store && store->unwatch) store->unwatch(store, inv->watch);
    inv->watch = NULL;
}

AK_PRIVATE void ak__inv_destroy(ak_invocation *inv) {
    ak_invocation **link;
    for (link = &inv->agent->invocations; *link; link = &(*link)->next)
        if (*link == inv) {
            *link = inv->next;
            break;
        }
    ak__turn_release(inv);
    ak__stop_watch(inv);
    ak_session_state_free(inv->alloc, &inv->state);
    ak_session_state_free(inv->alloc, &inv->good);
    ak__strfree(inv->alloc, inv->good_id);
    ak__strfree(inv->alloc, inv->parent_id);
    ak_jref_release(inv->last_error);
    ak_jref_release(inv->sent_custom);
    ak_json_doc_free(&inv->turn_doc);
    ak_json_doc_free(&inv->io);
    ak_free(inv->alloc, inv, sizeof *inv);
}

AKDEF ak_result ak_agent_invoke(ak_agent *a, const ak_json *init, const ak_invoke_opts *opts,
                                ak_invocation **out, ak_error *err) {
    const ak_allocator *alloc = ak_context_allocator(a->ctx);
    ak_invocation *inv = (ak_invocation *)ak_alloc(alloc, sizeof *inv);
    ak_result rc;
    *out = NULL;
    if (!inv) return ak__oom(err);
    AK_MEMSET(inv, 0, sizeof *inv);
    inv->agent = a;
    inv->ctx = a->ctx;
    inv->alloc = alloc;
    inv->started = ak_mono_ms(a->ctx);
    ak_json_doc_init(&inv->io, alloc);
    ak_json_doc_init(&inv->turn_doc, alloc);
    if (opts) {
        inv->on_chunk = opts->on_chunk;
        inv->chunk_ud = opts->chunk_ud;
        if (opts->context) inv->context = ak_json_copy(&inv->io, opts->context);
    }
    inv->next = a->invocations;
    a->invocations = inv;
    rc = ak__resolve_init(inv, init, err);
    if (rc == AK_OK && inv->io.err) rc = ak__oom(err);
    if (rc != AK_OK) {
        ak__inv_destroy(inv);
        return rc;
    }
    ak__trace(inv, AK_TRACE_INVOCATION, 0, a->desc.name, 0, AK_STATUS_OK, NULL);
    *out = inv;
    return AK_OK;
}

AK_PRIVATE int ak__has_payload(const ak_json *input) {
    const ak_json *resume = ak_json_get(input, "resume");
    return ak_json_get(input, "message") || ak_json_len(ak_json_get(resume, "respond")) ||
           ak_json_len(ak_json_get(resume, "restart"));
}

/* Every entry of input.resume.<what> must be a valid part of this kind. */
AK_PRIVATE ak_result ak__validate_resume_list(const ak_json *list, ak_part_kind kind, const char *what,
                                              const char *kind_name, ak_error *err) {
    const ak_json *p;
    ak_error e;
    size_t i = 0;
    for (p = ak_json_first(list); p; p = p->next, i++)
        if (ak_part_kind_of(p) != kind || ak_part_validate(p, &e) != AK_OK)
            return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT,
                                  "input.resume.%s[%zu] must be a %s part", what, i, kind_name);
    return AK_OK;
}

/* Checks an AgentInput's shape (the action layer's schema validation). */
AK_PRIVATE ak_result ak__validate_input(const ak_json *input, ak_error *err) {
    const ak_json *msg = ak_json_get(input, "message"), *resume = ak_json_get(input, "resume");
    const ak_json *detach = ak_json_get(input, "detach");
    ak_error e;
    ak_result rc;
    if (!ak_json_is(input, AK_JSON_OBJECT))
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "an agent input must be an object");
    if (msg && ak_msg_validate(msg, &e) != AK_OK)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "input.message: %s", e.message);
    if (detach && detach->type != AK_JSON_BOOL)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "input.detach must be a boolean");
    if (resume) {
        const ak_json *respond = ak_json_get(resume, "respond"), *restart = ak_json_get(resume, "restart");
        if (!ak_json_is(resume, AK_JSON_OBJECT) || (respond && respond->type != AK_JSON_ARRAY) ||
            (restart && restart->type != AK_JSON_ARRAY))
            return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT,
                                  "input.resume must be {respond?: [...], restart?: [...]}");
        if ((rc = ak__validate_resume_list(respond, AK_PART_TOOL_RESPONSE, "respond", "toolResponse", err)) != AK_OK)
            return rc;
        return ak__validate_resume_list(restart, AK_PART_TOOL_REQUEST, "restart", "toolRequest", err);
    }
    return AK_OK;
}

AKDEF ak_result ak_invocation_send(ak_invocation *inv, const ak_json *input, ak_error *err) {
    ak_json *copy;
    ak_result rc;
    if (inv->closed) return ak_error_set(err, AK_ERR_STATE, "the invocation is closed");
    if ((rc = ak__validate_input(input, err)) != AK_OK) return rc;
    if (inv->resolved) return AK_OK; /* a resolved invocation takes no more turns */
    if (!(copy = ak_json_copy(&inv->io, input))) return ak__oom(err);
    if (inv->queue_tail) inv->queue_tail->next = copy;
    else inv->queue = copy;
    inv->queue_tail = copy;
    return AK_OK;
}

AKDEF void ak_invocation_close(ak_invocation *inv) { inv->closed = 1; }

AK_PRIVATE ak_json *ak__queue_pop(ak_invocation *inv) {
    ak_json *in = inv->queue;
    if (in) {
        inv->queue = in->next;
        if (!inv->queue) inv->queue_tail = NULL;
        in->next = NULL;
    }
    return in;
}

AK_PRIVATE void ak__on_store_write(void *ud, const ak_snapshot *snap) {
    ak_invocation *inv = (ak_invocation *)ud;
    if (snap->status == AK_SNAPSHOT_ABORTED) inv->aborted = 1;
}

/* Reserves the snapshot id the next turn writes, if none is reserved yet. */
AK_PRIVATE ak_result ak__reserve_id(ak_invocation *inv) {
    if (inv->turn_id[0] || !ak__server_managed(inv)) return AK_OK;
    return ak_uuid4(inv->ctx, inv->turn_id);
}

/* A detach input (Genkit §5.7): write the pending row and resolve at once; the work goes on
   in the background. */
AK_PRIVATE ak_result ak__inv_detach(ak_invocation *inv) {
    ak_store *store = inv->agent->desc.store;
    ak_json_doc *d = &inv->io;
    ak_error e;
    ak_json *o;
    ak_result rc;
    if (!store) return ak__reject(inv, AK_STATUS_FAILED_PRECONDITION, "Detach is only supported when a session store is provided.");
    if (inv->detached) return AK_OK;
    if ((rc = ak__reserve_id(inv)) != AK_OK) return ak__reject(inv, AK_STATUS_INTERNAL, "cannot make a snapshot id");
    /* the row holds the state before the detached turn */
    rc = ak__save_row(inv, inv->turn_id, inv->phase == AK__INV_TURN ? &inv->good : &inv->state, AK_SNAPSHOT_PENDING,
                      0, AK_FINISH_UNKNOWN, NULL, &e);
    if (rc != AK_OK) return ak__reject(inv, e.status ? e.status : ak_result_status(rc), "%s", e.message);
    inv->detached = 1;
    inv->next_beat = ak_mono_ms(inv->ctx) + AK__HEARTBEAT_MS;
    if (store->watch) store->watch(store, inv->turn_id, ak__on_store_write, inv, inv->context, &inv->watch);
    o = ak_json_new_object(d);
    ak_json_set_str(d, o, "sessionId", inv->state.session_id);
    ak_json_set_str(d, o, "snapshotId", inv->turn_id);
    ak_json_set_str(d, o, "finishReason", "detached");
    inv->output = o;
    inv->resolved = 1;
    return d->err ? ak__reject(inv, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory") : AK_OK;
}

/* Keeps a pending row's heartbeat fresh while its detached work runs. */
AK_PRIVATE ak_result ak__beat_mutator(void *ud, const ak_snapshot *current, ak_snapshot **next) {
    ak_invocation *inv = (ak_invocation *)ud;
    if (!current || current->status != AK_SNAPSHOT_PENDING) return AK_OK;
    if (!(*next = ak_snapshot_clone(current))) return AK_ERR_OUT_OF_MEMORY;
    (*next)->heartbeat_at = ak_now_ms(inv->ctx);
    return AK_OK;
}

AK_PRIVATE void ak__heartbeat(ak_invocation *inv) {
    ak_store *store = inv->agent->desc.store;
    char written[AK_ID_MAX + 1];
    if (!inv->detached || inv->phase >= AK__INV_FINISH || ak_mono_ms(inv->ctx) < inv->next_beat) return;
    inv->next_beat += AK__HEARTBEAT_MS;
    store->save(store, inv->turn_id, ak__beat_mutator, inv, inv->context, written, NULL);
}

/* Takes the next input; detach inputs are handled as soon as they arrive, even while a turn
   runs (Genkit's input pump). Returns 1 when a turn should start with *input. */
AK_PRIVATE int ak__take_input(ak_invocation *inv, ak_json **input) {
    while (inv->queue) {
        ak_json *in = inv->queue;
        int detach = ak_json_bool(ak_json_get(in, "detach"), 0);
        if (detach) {
            if (ak__inv_detach(inv) != AK_OK) return 0;
            if (!ak__has_payload(in)) {
                ak__queue_pop(inv); /* a pure detach runs nothing */
                continue;
            }
            ak_json_remove(in, "detach");
        }
        if (inv->phase == AK__INV_TURN) return 0; /* the next turn waits */
        *input = ak__queue_pop(inv);
        return 1;
    }
    return 0;
}

AK_PRIVATE ak_result ak__turn_begin(ak_invocation *inv, const ak_json *input) {
    const ak_json *msg = ak_json_get(input, "message");
    if (msg && ak_msgs_append(inv->alloc, &inv->state.messages, msg) != AK_OK)
        return ak__turn_oom(inv);
    if (msg) inv->version++;
    if (ak__reserve_id(inv) != AK_OK) return ak__turn_error(inv, AK_STATUS_INTERNAL, "cannot make a snapshot id");
    inv->input = input;
    inv->first_patch = 1;
    inv->has_reason = 0;
    inv->turn_failed = 0;
    inv->phase = AK__INV_TURN;
    inv->turn_started = ak_mono_ms(inv->ctx);
    inv->wake_at = 0;
    AK_MEMSET(&inv->pt, 0, sizeof inv->pt);
    ak__trace(inv, AK_TRACE_TURN, 0, "runTurn", 0, AK_STATUS_OK, NULL);
    return AK_OK;
}

/* A successful turn: write its snapshot, then turnEnd (so the snapshot is readable). */
AK_PRIVATE void ak__turn_commit(ak_invocation *inv) {
    ak_error e;
    if (ak__server_managed(inv) &&
        ak__save_row(inv, inv->turn_id, &inv->state, AK_SNAPSHOT_COMPLETED, inv->has_reason, inv->reason, NULL, &e) != AK_OK) {
        ak__turn_error(inv, e.status ? e.status : AK_STATUS_INTERNAL, "%s", e.message);
        return;
    }
    ak_session_state_free(inv->alloc, &inv->good);
    ak_session_state_copy(inv->alloc, &inv->state, &inv->good);
    if (ak__server_managed(inv)) {
        ak__set_str(inv->alloc, &inv->good_id, inv->turn_id);
        ak__set_str(inv->alloc, &inv->parent_id, inv->turn_id);
    }
    inv->saved_version = inv->version;
    ak__emit_turn_end(inv, ak__server_managed(inv) ? inv->turn_id : NULL, inv->has_reason, inv->reason);
    ak__trace(inv, AK_TRACE_TURN, 1, "runTurn", inv->turn_started, AK_STATUS_OK, NULL);
    inv->last_reason = inv->reason;
    inv->has_last_reason = inv->has_reason;
    inv->turn_index++;
    inv->turn_id[0] = 0;
    inv->phase = AK__INV_IDLE;
    ak__turn_release(inv);
}

/* A failed turn: write a failed row with the partial state, turnEnd, and stop taking inputs.
   A detached turn stopped by an abort writes nothing (the row already says aborted). */
AK_PRIVATE void ak__turn_fail(ak_invocation *inv) {
    ak_json_doc d;
    ak_json *ej;
    ak_status st = inv->turn_error.status ? inv->turn_error.status : AK_STATUS_INTERNAL;
    ak__trace(inv, AK_TRACE_TURN, 1, "runTurn", inv->turn_started, st, NULL);
    inv->phase = AK__INV_FINISH;
    if (inv->aborted) {
        inv->last_reason = AK_FINISH_ABORTED, inv->has_last_reason = 1;
        ak__turn_release(inv);
        return;
    }
    ak_json_doc_init(&d, inv->alloc);
    ej = ak__error_json(&d, st, inv->turn_error.message, inv->error_prefixed,
                        inv->error_details ? inv->error_details->value : NULL);
    if (ej) {
        ak_jref_release(inv->last_error);
        inv->last_error = ak_jref_new(inv->alloc, ej);
    }
    if (ak__server_managed(inv))
        ak__save_row(inv, inv->turn_id, &inv->state, AK_SNAPSHOT_FAILED, 1, AK_FINISH_FAILED, ej, NULL);
    ak_json_doc_free(&d);
    ak__emit_turn_end(inv, ak__server_managed(inv) ? inv->turn_id : NULL, 1, AK_FINISH_FAILED);
    inv->last_reason = AK_FINISH_FAILED;
    inv->has_last_reason = 1;
    inv->failed = 1;
    ak__turn_release(inv);
}

AK_PRIVATE ak_result ak__turn_step(ak_invocation *inv) {
    ak_turn_info info;
    ak_agent *a = inv->agent;
    ak_result rc;
    info.snapshot_id = inv->turn_id[0] ? inv->turn_id : NULL;
    info.parent_snapshot_id = inv->parent_id;
    info.turn_index = inv->turn_index;
    if (inv->turn_failed) rc = AK_ERR_AGENT; /* failed while starting */
    else if (a->desc.turn) rc = a->desc.turn(inv, inv->input, &info, a->desc.ud);
    else rc = ak__prompt_turn(inv, inv->input, &info, NULL);
    if (rc == AK_PENDING) return AK_PENDING;
    if (rc != AK_OK && !inv->turn_failed)
        ak__turn_error(inv, ak_result_status(rc), "%s", ak_result_str(rc));
    if (inv->turn_failed || inv->aborted) {
        if (inv->aborted && !inv->turn_failed) ak__turn_error(inv, AK_STATUS_CANCELLED, "The agent run was aborted.");
        ak__turn_fail(inv);
    } else {
        ak__turn_commit(inv);
        if (inv->turn_failed) ak__turn_fail(inv); /* the snapshot write failed */
    }
    return AK_OK;
}

/* The result a handler returns after its last turn. */
AK_PRIVATE ak_result ak__default_result(ak_runner *r, ak_json_doc *d, ak_json **message, ak_json **artifacts,
                                        ak_finish_reason *reason) {
    size_t n = ak_msgs_count(r->state.messages);
    *message = n ? ak_json_copy(d, ak_msgs_at(r->state.messages, n - 1)) : NULL;
    *artifacts = r->state.artifacts ? ak_json_copy(d, r->state.artifacts->value) : NULL;
    *reason = AK_FINISH_UNKNOWN;
    return d->err;
}

/* Builds the AgentOutput (Genkit §5.8). */
AK_PRIVATE void ak__build_output(ak_invocation *inv, ak_json *message, ak_json *artifacts, ak_finish_reason reason) {
    ak_json_doc *d = &inv->io;
    ak_json *o = ak_json_new_object(d);
    /* a failed invocation answers with the state of its last good turn */
    const ak_session_state *st = inv->failed ? &inv->good : &inv->state;
    ak_json_set_str(d, o, "sessionId", inv->state.session_id);
    if (inv->failed) {
        size_t n = ak_msgs_count(st->messages);
        ak_json_set_str(d, o, "finishReason", "failed");
        if (inv->last_error) ak_json_set(d, o, "error", ak_json_copy(d, inv->last_error->value));
        message = n ? ak_json_copy(d, ak_msgs_at(st->messages, n - 1)) : NULL;
    }
    if (ak_json_len(artifacts)) ak_json_set(d, o, "artifacts", artifacts);
    if (message) ak_json_set(d, o, "message", message);
    if (!inv->failed && (reason != AK_FINISH_UNKNOWN || inv->has_last_reason))
        ak_json_set_str(d, o, "finishReason",
                        ak_finish_reason_name(reason != AK_FINISH_UNKNOWN ? reason : inv->last_reason));
    if (!ak__server_managed(inv)) ak_json_set(d, o, "state", ak__client_state(inv->agent, st, d));
    else if (inv->good_id) ak_json_set_str(d, o, "snapshotId", inv->good_id);
    inv->output = o;
}

/* After the last input: the handler's result, a final snapshot if the session changed since
   the last one, then the output. */
AK_PRIVATE void ak__finish(ak_invocation *inv) {
    ak_agent *a = inv->agent;
    ak_json *message = NULL, *artifacts = NULL;
    ak_finish_reason reason = AK_FINISH_UNKNOWN;
    ak_json_doc *d = &inv->io;
    if (!inv->aborted) {
        if (a->desc.result) a->desc.result(inv, d, &message, &artifacts, &reason, a->desc.ud);
        else ak__default_result(inv, d, &message, &artifacts, &reason);
    }
    if (!inv->failed && !inv->aborted && ak__server_managed(inv) && inv->version != inv->saved_version) {
        char id[37];
        if (ak_uuid4(inv->ctx, id) == AK_OK &&
            ak__save_row(inv, id, &inv->state, AK_SNAPSHOT_COMPLETED, inv->has_last_reason, inv->last_reason, NULL, NULL) == AK_OK) {
            ak__set_str(inv->alloc, &inv->good_id, id);
            ak__set_str(inv->alloc, &inv->parent_id, id);
            inv->saved_version = inv->version;
        }
    }
    ak__stop_watch(inv);
    if (!inv->resolved) {
        ak__build_output(inv, message, artifacts, reason);
        inv->resolved = 1;
        if (d->err) ak__reject(inv, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory building the output");
    }
    inv->phase = AK__INV_DONE;
    ak__trace(inv, AK_TRACE_INVOCATION, 1, a->desc.name, inv->started, inv->failed ? AK_STATUS_INTERNAL : AK_STATUS_OK, NULL);
}

/* Runs the invocation as far as it can go without waiting. */
AK_PRIVATE ak_result ak__advance(ak_invocation *inv) {
    for (;;) {
        ak_json *input = NULL;
        ak__heartbeat(inv);
        switch (inv->phase) {
        case AK__INV_IDLE:
            if (ak__take_input(inv, &input)) {
                if (ak__turn_begin(inv, input) != AK_OK) ak__turn_fail(inv);
                continue;
            }
            if (inv->rejected) return AK_OK;
            if (!inv->closed || inv->queue) return AK_PENDING; /* waiting for input */
            inv->phase = AK__INV_FINISH;
            continue;
        case AK__INV_TURN:
            ak__take_input(inv, &input); /* a detach may arrive mid-turn */
            if (inv->rejected) return AK_OK;
            if (ak__turn_step(inv) == AK_PENDING) return AK_PENDING;
            continue;
        case AK__INV_FINISH: ak__finish(inv); continue;
        case AK__INV_DONE: return AK_OK;
        }
    }
}

/* Waits, up to wait_ms, for what a pending turn waits on: its model call's I/O, or the time
   a custom turn asked to be woken at. Tools answering later are the host's business. */
AK_PRIVATE void ak__wait(ak_invocation *inv, int wait_ms) {
    int64_t left;
    if (wait_ms <= 0 || inv->phase != AK__INV_TURN) return;
    if (inv->pt.call.state == AK_CALL_RUNNING || inv->pt.call.state == AK_CALL_WAITING) {
        ak_model_call_poll(&inv->pt.call, wait_ms);
        return;
    }
    left = inv->wake_at - ak_mono_ms(inv->ctx);
    if (inv->agent->desc.turn && left > 0) ak_sleep_ms(inv->ctx, AK__MIN(left, (int64_t)wait_ms));
}

AKDEF ak_result ak_invocation_step(ak_invocation *inv, int wait_ms, ak_error *err) {
    ak_result rc;
    if (inv->resolved) {
        if (inv->rejected) {
            if (err) *err = inv->thrown;
            return AK_ERR_AGENT;
        }
        /* a detached invocation keeps working; the output is already there */
        if (inv->phase != AK__INV_DONE) ak__advance(inv);
        return AK_OK;
    }
    rc = ak__advance(inv);
    if (rc == AK_PENDING && !inv->resolved) {
        ak__wait(inv, wait_ms);
        rc = ak__advance(inv);
    }
    if (inv->rejected) {
        if (err) *err = inv->thrown;
        return AK_ERR_AGENT;
    }
    return inv->resolved ? AK_OK : AK_PENDING;
}

AKDEF const ak_json *ak_invocation_output(const ak_invocation *inv) { return inv->resolved ? inv->output : NULL; }

AKDEF void ak_invocation_free(ak_invocation *inv) {
    if (!inv) return;
    /* detached work goes on in the background: the agent finishes and frees it */
    if (inv->detached && !inv->rejected && inv->phase != AK__INV_DONE) {
        inv->caller_gone = 1;
        inv->on_chunk = NULL;
        return;
    }
    ak__inv_destroy(inv);
}

AKDEF ak_result ak_agent_pump(ak_agent *a, int wait_ms) {
    ak_invocation *inv, *next;
    int pending = 0;
    ak_store *store = a->desc.store;
    if (store && store->poll) store->poll(store);
    for (inv = a->invocations; inv; inv = next) {
        next = inv->next;
        if (!inv->caller_gone) continue;
        if (ak__advance(inv) == AK_OK && inv->phase == AK__INV_DONE) ak__inv_destroy(inv);
        else pending++;
    }
    if (pending && wait_ms > 0) {
        for (inv = a->invocations; inv; inv = inv->next)
            if (inv->caller_gone && inv->phase == AK__INV_TURN) {
                ak__wait(inv, wait_ms);
                break;
            }
    }
    return pending ? AK_PENDING : AK_OK;
}

AKDEF ak_result ak_agent_run(ak_agent *a, const ak_json *init, const ak_json *inputs,
                             const ak_invoke_opts *opts, ak_json_doc *d, ak_json **output,
                             ak_error *err) {
    ak_invocation *inv;
    const ak_json *in;
    ak_result rc = ak_agent_invoke(a, init, opts, &inv, err);
    *output = NULL;
    if (rc != AK_OK) return rc;
    for (in = ak_json_first(inputs); in && rc == AK_OK; in = in->next) rc = ak_invocation_send(inv, in, err);
    ak_invocation_close(inv);
    while (rc == AK_OK && (rc = ak_invocation_step(inv, 50, err)) == AK_PENDING)
        rc = AK_OK; /* not finished: pump again */
    if (rc == AK_OK && !(*output = ak_json_copy(d, ak_invocation_output(inv))))
        rc = ak__oom(err);
    ak_invocation_free(inv);
    return rc;
}

/* ---- companion actions ---------------------------------------------------------------- */

AK_PRIVATE ak_result ak__need_store(ak_agent *a, const char *what, ak_error *err) {
    if (a->desc.store) return AK_OK;
    return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_FAILED_PRECONDITION,
                          "%s requires a persistent store. Provide a 'store' when defining '%s'.", what, a->desc.name);
}

AKDEF ak_result ak_agent_get_snapshot(ak_agent *a, const char *snapshot_id, const char *session_id,
                                      const ak_json *context, ak_json_doc *d, ak_json **out, ak_error *err) {
    ak_store *store = a->desc.store;
    ak_snapshot *snap = NULL;
    ak_json *st;
    ak_result rc;
    *out = NULL;
    if ((rc = ak__need_store(a, "getSnapshotData", err)) != AK_OK) return rc;
    if (snapshot_id && !*snapshot_id) snapshot_id = NULL;
    if (session_id && !*session_id) session_id = NULL;
    if ((snapshot_id == NULL) == (session_id == NULL))
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT,
                              "getSnapshot requires exactly one of 'snapshotId' or 'sessionId' (got %s).",
                              snapshot_id ? "snapshotId and sessionId" : "neither");
    if ((rc = store->get(store, snapshot_id, session_id, context, &snap, err)) != AK_OK) {
        if (err) err->code = AK_ERR_AGENT;
        return AK_ERR_AGENT;
    }
    if (!snap)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_NOT_FOUND, "Snapshot '%s' not found for agent '%s'.",
                              snapshot_id ? snapshot_id : session_id, a->desc.name);
    *out = ak_snapshot_to_json(snap, ak_snapshot_read_status(snap, ak_now_ms(a->ctx)), d);
    ak_snapshot_release(snap);
    if (*out && a->desc.transform.state && (st = ak_json_get(*out, "state")) != NULL) {
        ak_json *t = st;
        if (a->desc.transform.state(a->desc.transform.ud, d, &t) == AK_OK && t && t != st) ak_json_set(d, *out, "state", t);
    }
    return *out && !d->err ? AK_OK : ak__oom(err);
}

typedef struct ak__abort {
    ak_snapshot_status previous;
} ak__abort;

AK_PRIVATE ak_result ak__abort_mutator(void *ud, const ak_snapshot *current, ak_snapshot **next) {
    ak__abort *ab = (ak__abort *)ud;
    ab->previous = current ? (current->status ? current->status : AK_SNAPSHOT_COMPLETED) : AK_SNAPSHOT_NONE;
    if (!current || ab->previous == AK_SNAPSHOT_COMPLETED || ab->previous == AK_SNAPSHOT_FAILED ||
        ab->previous == AK_SNAPSHOT_ABORTED)
        return AK_OK;
    if (!(*next = ak_snapshot_clone(current))) return AK_ERR_OUT_OF_MEMORY;
    (*next)->status = AK_SNAPSHOT_ABORTED;
    return AK_OK;
}

AKDEF ak_result ak_agent_abort(ak_agent *a, const char *snapshot_id, const ak_json *context,
                               const char **previous, ak_error *err) {
    ak_store *store = a->desc.store;
    ak__abort ab;
    char written[AK_ID_MAX + 1];
    ak_result rc;
    *previous = NULL;
    if ((rc = ak__need_store(a, "abort", err)) != AK_OK) return rc;
    if (!snapshot_id || !*snapshot_id || ak__strlen(snapshot_id) > AK_ID_MAX)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "abort requires a 'snapshotId'.");
    ab.previous = AK_SNAPSHOT_NONE;
    if ((rc = store->save(store, snapshot_id, ak__abort_mutator, &ab, context, written, err)) != AK_OK) {
        if (err) err->code = AK_ERR_AGENT;
        return AK_ERR_AGENT;
    }
    *previous = ak_snapshot_status_name(ab.previous);
    return AK_OK;
}

/* ---- the session runner API ----------------------------------------------------------- */

AKDEF size_t ak_runner_message_count(const ak_runner *r) { return ak_msgs_count(r->state.messages); }
AKDEF const ak_json *ak_runner_message(const ak_runner *r, size_t i) { return ak_msgs_at(r->state.messages, i); }

AKDEF ak_result ak_runner_add_message(ak_runner *r, const ak_json *msg) {
    ak_result rc = ak_msgs_append(r->alloc, &r->state.messages, msg);
    if (rc == AK_OK) r->version++;
    return rc;
}

AKDEF ak_result ak_runner_set_messages(ak_runner *r, const ak_json *array) {
    ak_msgs *m;
    ak_result rc = ak_msgs_from_json(r->alloc, array, &m);
    if (rc != AK_OK) return rc;
    ak_msgs_release(r->state.messages);
    r->state.messages = m;
    r->version++;
    return AK_OK;
}

AKDEF const ak_json *ak_runner_custom(const ak_runner *r) { return r->state.custom ? r->state.custom->value : NULL; }

AKDEF ak_result ak_runner_set_custom(ak_runner *r, const ak_json *custom) {
    ak_jref *c;
    ak_error e;
    if (!custom) return AK_ERR_INVALID_ARGUMENT;
    /* Checked now, not at the next load, so a bad value never reaches a snapshot. */
    if (r->agent->state_schema && ak__agent_schema_check(r->agent->state_schema, custom, &e) != AK_OK) {
        ak_log(r->agent->ctx, AK_LOG_WARN, "custom state refused: %s", e.message);
        return AK_ERR_SCHEMA;
    }
    if (!(c = ak_jref_new(r->alloc, custom))) return AK_ERR_OUT_OF_MEMORY;
    ak_jref_release(r->state.custom);
    r->state.custom = c;
    r->version++;
    return ak__emit_custom_patch(r);
}

AKDEF const ak_json *ak_runner_artifacts(const ak_runner *r) {
    static const ak_json empty = {AK_JSON_ARRAY, 0, 0, 0, 0, NULL, {NULL}, NULL};
    return r->state.artifacts ? r->state.artifacts->value : &empty;
}

/* Index of the artifact named like a (same name) in arr, or -1. */
AK_PRIVATE long ak__artifact_index(const ak_json *arr, const ak_json *a) {
    const ak_json *name = ak_json_get(a, "name"), *x;
    long i = 0;
    if (!ak_json_is(name, AK_JSON_STRING)) return -1;
    for (x = ak_json_first(arr); x; x = x->next, i++) {
        const ak_json *n = ak_json_get(x, "name");
        if (ak_json_is(n, AK_JSON_STRING) && ak_json_equal(n, name)) return i;
    }
    return -1;
}

AKDEF ak_result ak_runner_add_artifacts(ak_runner *r, const ak_json *artifacts) {
    ak_json_doc d;
    ak_json *arr, *one = NULL, *replaced, *added;
    const ak_json *list = artifacts, *a;
    ak_jref *next;
    ak_error e;
    ak_result rc;
    ak_json_doc_init(&d, r->alloc);
    if (ak_json_is(artifacts, AK_JSON_OBJECT)) {
        one = ak_json_new_array(&d);
        ak_json_push(one, ak_json_copy(&d, artifacts));
        list = one;
    }
    if ((rc = ak__artifacts_validate(list, &e)) != AK_OK) {
        ak_json_doc_free(&d);
        return rc;
    }
    arr = ak_json_copy(&d, ak_runner_artifacts(r));
    added = ak_json_new_array(&d);
    replaced = ak_json_new_array(&d);
    for (a = ak_json_first(list); a; a = a->next) {
        long i = ak__artifact_index(arr, a);
        if (i >= 0) {
            ak_json_replace_at(arr, (size_t)i, ak_json_copy(&d, a));
            ak_json_push(replaced, ak_json_copy(&d, a));
        } else {
            ak_json_push(arr, ak_json_copy(&d, a));
            ak_json_push(added, ak_json_copy(&d, a));
        }
    }
    next = d.err ? NULL : ak_jref_new(r->alloc, arr);
    if (next) {
        ak_jref_release(r->state.artifacts);
        r->state.artifacts = next;
        r->version++;
        /* new artifacts are announced before the replaced ones, as Genkit does */
        for (a = ak_json_first(added); a; a = a->next) ak__emit(r, "artifact", AK__UNCONST(ak_json *, a));
        for (a = ak_json_first(replaced); a; a = a->next) ak__emit(r, "artifact", AK__UNCONST(ak_json *, a));
    }
    ak_json_doc_free(&d);
    return next ? AK_OK : AK_ERR_OUT_OF_MEMORY;
}

AKDEF ak_result ak_runner_send_chunk(ak_runner *r, const ak_json *chunk) {
    ak__emit_model_chunk(r, "model", r->pt.msg_index, ak_json_get(chunk, "content"), ak_json_get(chunk, "custom"));
    return AK_OK;
}

AKDEF int ak_runner_aborted(const ak_runner *r) { return r->aborted; }
AKDEF const char *ak_runner_session_id(const ak_runner *r) { return r->state.session_id; }
AKDEF ak_finish_reason ak_runner_last_finish_reason(const ak_runner *r) {
    return r->has_last_reason ? r->last_reason : AK_FINISH_UNKNOWN;
}
AKDEF const ak_json *ak_runner_last_error(const ak_runner *r) { return r->last_error ? r->last_error->value : NULL; }

AKDEF void ak_runner_set_finish_reason(ak_runner *r, ak_finish_reason reason) {
    r->reason = reason;
    r->has_reason = 1;
}

AKDEF void *ak_runner_turn_state(ak_runner *r, size_t size) {
    if (r->turn_state) return size <= r->turn_state_size ? r->turn_state : NULL;
    r->turn_state = ak_alloc(r->alloc, size);
    if (r->turn_state) {
        AK_MEMSET(r->turn_state, 0, size);
        r->turn_state_size = size;
    }
    return r->turn_state;
}

AKDEF ak_json_doc *ak_runner_doc(ak_runner *r) { return &r->turn_doc; }
AKDEF ak_context *ak_runner_context(const ak_runner *r) { return r->ctx; }
AKDEF const ak_json *ak_runner_auth(const ak_runner *r) { return r->context; }

AKDEF ak_result ak_runner_wait_until(ak_runner *r, int64_t until) {
    if (r->aborted) return AK_ERR_CANCELLED;
    if (ak_mono_ms(r->ctx) >= until) return AK_OK;
    r->wake_at = until;
    return AK_PENDING;
}
/* ---- end src/runner.c ---- */

/* ---- begin src/prompt.c ---- */
/* >>prompt: the prompt-agent turn (Genkit's defineAgent + generate's tool loop) as a state
   machine: resume handling, model calls over the shared history, parallel tools,
   interrupts, maxTurns */


enum { AK__P_BEGIN = 0, AK__P_RESUME_TOOLS, AK__P_MODEL, AK__P_MODEL_WAIT, AK__P_TOOLS };

/* The toolRequest object of a part, and its name/ref. */
AK_PRIVATE const ak_json *ak__treq(const ak_json *part) { return ak_json_get(part, "toolRequest"); }
AK_PRIVATE const char *ak__tname(const ak_json *tr) { return ak_json_get_str(tr, "name"); }
AK_PRIVATE const char *ak__tref(const ak_json *tr) { return ak_json_get_str(tr, "ref"); }

/* Same tool name and the same ref (both absent counts as the same). */
AK_PRIVATE int ak__same_tool(const ak_json *a, const ak_json *b) {
    const char *ra = ak__tref(a), *rb = ak__tref(b), *na = ak__tname(a), *nb = ak__tname(b);
    return na && nb && ak__streq(na, nb) && (ra == rb || (ra && rb && ak__streq(ra, rb)));
}

AK_PRIVATE int ak__tool_index(const ak_agent *a, const char *name) {
    size_t i;
    for (i = 0; name && i < a->desc.tool_count; i++)
        if (ak__streq(a->desc.tools[i].name, name)) return (int)i;
    return -1;
}

/* The newest tool request in the history's model messages matching name + ref. */
AK_PRIVATE const ak_json *ak__history_tool_request(const ak_invocation *inv, const ak_json *want) {
    size_t i = ak_msgs_count(inv->state.messages);
    while (i--) {
        const ak_json *m = ak_msgs_at(inv->state.messages, i), *p;
        if (!ak_msg_role(m) || !ak__streq(ak_msg_role(m), "model")) continue;
        for (p = ak_json_first(ak_json_get(m, "content")); p; p = p->next)
            if (ak__treq(p) && ak__same_tool(ak__treq(p), want)) return ak__treq(p);
    }
    return NULL;
}

/* Fails the turn with "<what> '<name>'[ (ref: <ref>)]<why>" about a resume entry. */
AK_PRIVATE ak_result ak__resume_error(ak_invocation *inv, const char *what, const ak_json *tr, const char *why) {
    const char *ref = ak__tref(tr);
    return ak__turn_error(inv, AK_STATUS_INVALID_ARGUMENT, "%s '%s'%s%s%s%s", what, ak__tname(tr),
                          ref ? " (ref: " : "", ref ? ref : "", ref ? ")" : "", why);
}

/* Genkit's validateResumeAgainstHistory: forged or unknown resumes fail the turn. */
AK_PRIVATE ak_result ak__validate_resume(ak_invocation *inv, const ak_json *respond, const ak_json *restart) {
    static const char not_found[] = " which was not found in session history.";
    const ak_json *p;
    for (p = ak_json_first(restart); p; p = p->next) {
        const ak_json *tr = ak__treq(p), *orig = ak__history_tool_request(inv, tr);
        if (!orig) return ak__resume_error(inv, "resume.restart references tool", tr, not_found);
        if (!ak_json_equal(ak_json_get(tr, "input"), ak_json_get(orig, "input")))
            return ak__resume_error(inv, "resume.restart for tool", tr,
                                    " has modified inputs that do not match the original tool request in session "
                                    "history. Restart inputs must exactly match the interrupted tool request.");
    }
    for (p = ak_json_first(respond); p; p = p->next) {
        const ak_json *tr = ak_json_get(p, "toolResponse");
        if (!ak__history_tool_request(inv, tr))
            return ak__resume_error(inv, "resume.respond references tool", tr, not_found);
    }
    return AK_OK;
}

/* The entry of list (toolRequest or toolResponse parts) answering tool request tr. */
AK_PRIVATE const ak_json *ak__find_entry(const ak_json *list, const char *key, const ak_json *tr) {
    const ak_json *p;
    for (p = ak_json_first(list); p; p = p->next)
        if (ak__same_tool(ak_json_get(p, key), tr)) return p;
    return NULL;
}

/* Sets (or removes, value NULL) metadata[key] of a part, dropping an empty metadata. */
AK_PRIVATE void ak__part_meta(ak_json_doc *d, ak_json *part, const char *key, ak_json *value) {
    ak_json *md = ak_json_get(part, "metadata");
    if (value) {
        if (!md) ak_json_set(d, part, "metadata", md = ak_json_new_object(d));
        ak_json_set(d, md, key, value);
    } else if (md) {
        ak_json_remove(md, key);
        if (!md->len) ak_json_remove(part, "metadata");
    }
}

/* Moves metadata.interrupt of a resolved part to metadata.resolvedInterrupt. */
AK_PRIVATE void ak__mark_resolved(ak_json_doc *d, ak_json *part) {
    ak_json *md = ak_json_get(part, "metadata"), *intr = ak_json_get(md, "interrupt");
    if (!intr) return;
    ak_json_remove(md, "interrupt");
    ak_json_set(d, md, "resolvedInterrupt", intr);
}

/* Replaces the last history message (the model message being answered) with msg. */
AK_PRIVATE ak_result ak__replace_last(ak_invocation *inv, const ak_json *msg) {
    size_t n = ak_msgs_count(inv->state.messages);
    if (ak_msgs_truncate(inv->alloc, &inv->state.messages, n - 1) != AK_OK ||
        ak_msgs_append(inv->alloc, &inv->state.messages, msg) != AK_OK)
        return ak__turn_oom(inv);
    inv->version++;
    return AK_OK;
}

/* ---- tool calls ----------------------------------------------------------------------- */

AK_PRIVATE void ak__tool_start(ak_invocation *inv, ak__ptool *t, const ak_json *resumed) {
    ak_agent *a = inv->agent;
    const ak_json *tr = ak__treq(t->part);
    const ak_tool *tool = t->tool >= 0 ? &a->desc.tools[t->tool] : NULL;
    ak_tool_call *c = &t->call;
    ak_error e;
    ak_result rc;
    AK_MEMSET(c, 0, sizeof *c);
    c->tool = tool;
    c->ctx = inv->ctx;
    c->input = ak_json_get(tr, "input");
    c->resumed = resumed;
    c->ref = ak__tref(tr);
    c->context = inv->context;
    c->session = inv;
    c->doc = &inv->turn_doc;
    if (!tool) {
        c->state = AK__TOOL_FAILED;
        ak_error_setst(&c->error, AK_ERR_NOT_FOUND, AK_STATUS_NOT_FOUND, "Tool %s not found", ak__tname(tr));
        return;
    }
    c->ud = tool->ud;
    if (!tool->interrupt) { /* a span covers validation too, as Genkit's tool action does */
        t->traced = 1;
        t->started = ak_mono_ms(inv->ctx);
        ak__trace(inv, AK_TRACE_TOOL, 0, tool->name, 0, AK_STATUS_OK, c->input);
    }
    if (ak__agent_schema_check(a->input_schemas[t->tool], c->input, &e) != AK_OK) {
        c->state = AK__TOOL_FAILED;
        ak_error_setst(&c->error, AK_ERR_SCHEMA, AK_STATUS_INVALID_ARGUMENT,
                       "Schema validation failed for input of tool '%s'. Parse Errors: %s", tool->name, e.message);
        return;
    }
    if (tool->interrupt) { /* a pure interrupt never runs */
        ak_tool_interrupt(c, NULL);
        return;
    }
    /* the handle exists before the call, so a tool can keep it and answer later */
    if (ak__slot_acquire(a, c) != AK_OK) {
        ak_tool_fail(c, AK_STATUS_RESOURCE_EXHAUSTED, "too many tools answering later");
        c->error.code = AK_ERR_LIMIT;
        return;
    }
    rc = tool->fn(c);
    if (rc == AK_PENDING && c->state == AK__TOOL_IDLE) {
        c->state = AK__TOOL_RUNNING;
        return;
    }
    ak__slot_release(a, c);
    if (c->state == AK__TOOL_IDLE) { /* the tool returned without saying how it went */
        if (rc == AK_OK) ak_tool_return(c, NULL);
        else ak_tool_fail(c, ak_result_status(rc), "%s", ak_result_str(rc));
    }
}

/* 1 while any of the tools still runs. */
AK_PRIVATE int ak__tools_running(const ak__prompt *pt) {
    size_t i;
    for (i = 0; i < pt->tool_count; i++)
        if (pt->tools[i].call.state == AK__TOOL_RUNNING) return 1;
    return 0;
}

/* Ends every tool's trace span: a failed tool with its status, others with their output
   (an interrupting tool's output is NULL). */
AK_PRIVATE void ak__tools_trace_end(ak_invocation *inv) {
    ak__prompt *pt = &inv->pt;
    size_t i;
    for (i = 0; i < pt->tool_count; i++) {
        ak__ptool *t = &pt->tools[i];
        int failed = t->call.state == AK__TOOL_FAILED;
        if (!t->traced) continue;
        t->traced = 0;
        ak__trace(inv, AK_TRACE_TOOL, 1, t->call.tool->name, t->started, failed ? t->call.error.status : AK_STATUS_OK,
                  failed ? NULL : t->call.output);
    }
}

/* Fails the turn with the first failed tool, if any. */
AK_PRIVATE int ak__tools_failed(ak_invocation *inv) {
    ak__prompt *pt = &inv->pt;
    size_t i;
    for (i = 0; i < pt->tool_count; i++) {
        ak_tool_call *c = &pt->tools[i].call;
        if (c->state != AK__TOOL_FAILED) continue;
        ak__turn_error(inv, c->error.status ? c->error.status : AK_STATUS_INTERNAL, "%s", c->error.message);
        /* a tool's own failure reads like a thrown Error; library checks carry the status */
        inv->error_prefixed = c->error.code != AK_ERR_AGENT;
        return 1;
    }
    return 0;
}

/* One ak__ptool per toolRequest part of the model message. */
AK_PRIVATE ak_result ak__collect_tools(ak_invocation *inv, ak_json *msg) {
    ak__prompt *pt = &inv->pt;
    ak_json *p;
    size_t n = 0;
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next) n += ak__treq(p) != NULL;
    pt->tools = (ak__ptool *)ak_arena_zalloc(&inv->turn_doc.arena, (n ? n : 1) * sizeof *pt->tools);
    if (!pt->tools) return ak__turn_oom(inv);
    pt->tool_count = 0;
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next) {
        ak__ptool *t;
        if (!ak__treq(p)) continue;
        t = &pt->tools[pt->tool_count++];
        t->part = p;
        t->tool = ak__tool_index(inv->agent, ak__tname(ak__treq(p)));
    }
    pt->model_msg = msg;
    return AK_OK;
}

/* {toolResponse: {name, ref, output}} for a finished call. */
AK_PRIVATE ak_json *ak__response_part(ak_invocation *inv, const ak__ptool *t) {
    const ak_json *tr = ak__treq(t->part);
    return ak_part_tool_response(&inv->turn_doc, ak__tname(tr), ak__tref(tr), t->call.output);
}

/* Appends the tool message and streams it as one chunk. */
AK_PRIVATE ak_result ak__append_tool_message(ak_invocation *inv, ak_json *content, int resumed) {
    ak_json_doc *d = &inv->turn_doc;
    ak_json *msg = ak_json_new_object(d);
    ak_json_set_str(d, msg, "role", "tool");
    ak_json_set(d, msg, "content", content);
    if (resumed) {
        ak_json *md = ak_json_new_object(d);
        ak_json_set_bool(d, md, "resumed", 1);
        ak_json_set(d, msg, "metadata", md);
    }
    if (d->err || ak_runner_add_message(inv, msg) != AK_OK)
        return ak__turn_oom(inv);
    ak__emit_model_chunk(inv, "tool", inv->pt.msg_index++, content, NULL);
    return AK_OK;
}

/* ---- resume --------------------------------------------------------------------------- */

AK_PRIVATE ak_result ak__resume_begin(ak_invocation *inv, const ak_json *resume) {
    ak__prompt *pt = &inv->pt;
    const ak_json *respond = ak_json_get(resume, "respond"), *restart = ak_json_get(resume, "restart");
    const ak_json *last = ak_msgs_at(inv->state.messages, ak_msgs_count(inv->state.messages) - 1);
    ak_json *msg;
    size_t i;
    ak_result rc;
    if ((rc = ak__validate_resume(inv, respond, restart)) != AK_OK) return rc;
    if (!last || !ak_msg_role(last) || !ak__streq(ak_msg_role(last), "model"))
        last = NULL;
    if (!(msg = ak_json_copy(&inv->turn_doc, last)) || (last && ak__collect_tools(inv, msg) != AK_OK))
        return inv->turn_failed ? AK_ERR_AGENT : ak__turn_oom(inv);
    if (!last || !pt->tool_count)
        return ak__turn_error(inv, AK_STATUS_FAILED_PRECONDITION, "Cannot 'resume' generation unless the previous "
                                                                  "message is a model message with at least one tool request.");
    for (i = 0; i < pt->tool_count; i++) {
        ak__ptool *t = &pt->tools[i];
        const ak_json *tr = ak__treq(t->part), *entry;
        ak_json *pending = ak_json_get(ak_json_get(t->part, "metadata"), "pendingOutput");
        if (pending) {
            ak_json *resp = ak_part_tool_response(&inv->turn_doc, ak__tname(tr), ak__tref(tr), pending);
            ak__part_meta(&inv->turn_doc, resp, "source", ak_json_new_str(&inv->turn_doc, "pending"));
            ak__part_meta(&inv->turn_doc, AK__UNCONST(ak_json *, t->part), "pendingOutput", NULL);
            t->response = resp;
            t->pending_output = 1;
        } else if ((entry = ak__find_entry(respond, "toolResponse", tr)) != NULL) {
            t->response = entry;
        } else if ((entry = ak__find_entry(restart, "toolRequest", tr)) != NULL) {
            t->restart = 1;
            ak__tool_start(inv, t, ak_json_get(ak_json_get(entry, "metadata"), "resumed"));
        } else {
            const char *ref = ak__tref(tr);
            return ak__turn_error(inv, AK_STATUS_INVALID_ARGUMENT,
                                  "Unresolved tool request '%s%s%s' was not handled by the 'resume' argument. You "
                                  "must supply replies or restarts for all interrupted tool requests.'",
                                  ak__tname(tr), ref ? "#" : "", ref ? ref : "");
        }
    }
    pt->step = AK__P_RESUME_TOOLS;
    return AK_OK;
}

/* All answers are in: rewrite the model message, add the tool message, call the model. */
AK_PRIVATE ak_result ak__resume_finish(ak_invocation *inv) {
    ak__prompt *pt = &inv->pt;
    ak_json_doc *d = &inv->turn_doc;
    ak_json *content = ak_json_new_array(d);
    size_t i;
    ak__tools_trace_end(inv);
    if (ak__tools_failed(inv)) return AK_ERR_AGENT;
    for (i = 0; i < pt->tool_count; i++) {
        ak__ptool *t = &pt->tools[i];
        if (t->restart && t->call.state == AK__TOOL_INTERRUPTED)
            return ak__turn_error(inv, AK_STATUS_FAILED_PRECONDITION,
                                  "Tool '%s' interrupted again when restarted. Restart it with metadata.resumed set, "
                                  "or respond to it instead.", ak__tname(ak__treq(t->part)));
        if (!t->pending_output) ak__mark_resolved(d, AK__UNCONST(ak_json *, t->part));
        ak_json_push(content, t->restart ? ak__response_part(inv, t) : ak_json_copy(d, t->response));
    }
    if (d->err) return ak__turn_oom(inv);
    if (ak__replace_last(inv, pt->model_msg) != AK_OK || ak__append_tool_message(inv, content, 1) != AK_OK)
        return AK_ERR_AGENT;
    pt->step = AK__P_MODEL;
    return AK_OK;
}

/* ---- the model call ------------------------------------------------------------------- */

AK_PRIVATE ak_result ak__on_model_chunk(void *ud, const ak_json *chunk) {
    ak_invocation *inv = (ak_invocation *)ud;
    ak__emit_model_chunk(inv, "model", inv->pt.msg_index, ak_json_get(chunk, "content"), ak_json_get(chunk, "custom"));
    return inv->aborted ? AK_ERR_CANCELLED : AK_OK;
}

AK_PRIVATE ak_result ak__model_start(ak_invocation *inv) {
    ak_agent *a = inv->agent;
    ak__prompt *pt = &inv->pt;
    size_t n = ak_msgs_count(inv->state.messages), sys = a->system_msg != NULL;
    const ak_json **msgs = (const ak_json **)ak_arena_alloc(&inv->turn_doc.arena, (n + sys + 1) * sizeof *msgs);
    ak_model_call *call = &pt->call;
    if (!msgs) return ak__turn_oom(inv);
    /* the history is shared, not copied: the model reads the session's own messages */
    if (sys) msgs[0] = a->system_msg;
    ak_msgs_collect(inv->state.messages, msgs + sys);
    ak_model_call_init(call, inv->ctx, a->request, &inv->turn_doc);
    call->messages = msgs;
    call->message_count = n + sys;
    call->stream = inv->on_chunk != NULL || a->desc.stream_model;
    call->on_chunk = ak__on_model_chunk;
    call->chunk_ud = inv;
    call->retry = a->desc.retry;
    pt->model_started = ak_mono_ms(inv->ctx);
    ak__trace(inv, AK_TRACE_MODEL, 0, a->desc.model->name, 0, AK_STATUS_OK, NULL);
    pt->step = AK__P_MODEL_WAIT;
    return ak_model_call_start(call, a->desc.model);
}

/* The model answered: finish the turn, or run the tools it asked for. */
AK_PRIVATE ak_result ak__model_done(ak_invocation *inv) {
    ak__prompt *pt = &inv->pt;
    ak_model_call *call = &pt->call;
    ak_json *msg, *reason;
    ak_status st = call->state == AK_CALL_DONE ? AK_STATUS_OK : call->error.status;
    size_t i;
    ak__trace(inv, AK_TRACE_MODEL, 1, inv->agent->desc.model->name, pt->model_started, st, call->response);
    if (call->chunks) pt->msg_index++;
    if (call->state != AK_CALL_DONE)
        return ak__turn_error(inv, call->error.status ? call->error.status : AK_STATUS_UNKNOWN, "%s", call->error.message);
    msg = ak_json_get(call->response, "message");
    if (!ak_json_is(msg, AK_JSON_OBJECT) || !ak_json_is(ak_json_get(msg, "content"), AK_JSON_ARRAY))
        return ak__turn_error(inv, AK_STATUS_INTERNAL, "model %s returned no message", inv->agent->desc.model->name);
    if (!ak_json_get(msg, "role")) ak_json_set_str(&inv->turn_doc, msg, "role", "model");
    if (ak_runner_add_message(inv, msg) != AK_OK) return ak__turn_oom(inv);
    if (ak__collect_tools(inv, msg) != AK_OK) return AK_ERR_AGENT;
    if (!pt->tool_count) {
        reason = ak_json_get(call->response, "finishReason");
        if (ak_json_is(reason, AK_JSON_STRING)) ak_runner_set_finish_reason(inv, ak_finish_reason_from_name(reason->u.str));
        return AK_OK;
    }
    if (pt->iteration + 1 > inv->agent->desc.max_turns)
        return ak__turn_error(inv, AK_STATUS_ABORTED, "Exceeded maximum tool call iterations (%d)",
                              inv->agent->desc.max_turns);
    for (i = 0; i < pt->tool_count; i++) ak__tool_start(inv, &pt->tools[i], NULL);
    pt->step = AK__P_TOOLS;
    return AK_PENDING;
}

/* Every tool settled: interrupt, fail, or answer the model and loop. */
AK_PRIVATE ak_result ak__tools_done(ak_invocation *inv) {
    ak__prompt *pt = &inv->pt;
    ak_json_doc *d = &inv->turn_doc;
    ak_json *content;
    size_t i;
    int interrupted = 0;
    ak__tools_trace_end(inv);
    if (ak__tools_failed(inv)) return AK_ERR_AGENT;
    for (i = 0; i < pt->tool_count; i++) interrupted |= pt->tools[i].call.state == AK__TOOL_INTERRUPTED;
    if (interrupted) {
        /* interrupted requests carry metadata.interrupt; finished siblings their output */
        content = ak_json_new_array(d);
        for (i = 0; i < pt->tool_count; i++) {
            ak__ptool *t = &pt->tools[i];
            ak_json *part = AK__UNCONST(ak_json *, t->part);
            if (t->call.state == AK__TOOL_INTERRUPTED) ak__part_meta(d, part, "interrupt", t->call.interrupt);
            else ak__part_meta(d, part, "pendingOutput", t->call.output);
            ak_json_push(content, ak_json_copy(d, part));
        }
        if (d->err || ak__replace_last(inv, pt->model_msg) != AK_OK)
            return inv->turn_failed ? AK_ERR_AGENT : ak__turn_oom(inv);
        ak__emit_model_chunk(inv, "tool", -1, content, NULL);
        ak_runner_set_finish_reason(inv, AK_FINISH_INTERRUPTED);
        return AK_OK;
    }
    content = ak_json_new_array(d);
    for (i = 0; i < pt->tool_count; i++) ak_json_push(content, ak__response_part(inv, &pt->tools[i]));
    if (d->err) return ak__turn_oom(inv);
    if (ak__append_tool_message(inv, content, 0) != AK_OK) return AK_ERR_AGENT;
    pt->iteration++;
    pt->step = AK__P_MODEL;
    return AK_PENDING;
}

AK_PRIVATE ak_result ak__prompt_turn(ak_runner *inv, const ak_json *input, const ak_turn_info *turn, void *ud) {
    ak__prompt *pt = &inv->pt;
    const ak_json *resume = ak_json_get(input, "resume");
    ak_result rc;
    AK__UNUSED(turn), AK__UNUSED(ud);
    for (;;) {
        if (inv->aborted) {
            if (pt->call.state == AK_CALL_RUNNING || pt->call.state == AK_CALL_WAITING) ak_model_call_cancel(&pt->call);
            return ak__turn_error(inv, AK_STATUS_CANCELLED, "The agent run was aborted.");
        }
        switch (pt->step) {
        case AK__P_BEGIN:
            if (ak_json_len(ak_json_get(resume, "respond")) || ak_json_len(ak_json_get(resume, "restart"))) {
                if ((rc = ak__resume_begin(inv, resume)) != AK_OK) return rc;
            } else {
                pt->step = AK__P_MODEL;
            }
            continue;
        case AK__P_RESUME_TOOLS:
        case AK__P_TOOLS:
            if (ak__tools_running(pt)) return AK_PENDING;
            if (pt->step == AK__P_RESUME_TOOLS) {
                if ((rc = ak__resume_finish(inv)) != AK_OK) return rc;
            } else if ((rc = ak__tools_done(inv)) != AK_PENDING) {
                return rc;
            }
            continue;
        case AK__P_MODEL:
            rc = ak__model_start(inv);
            if (inv->turn_failed) return AK_ERR_AGENT;
            if (pt->call.state == AK_CALL_RUNNING || pt->call.state == AK_CALL_WAITING) return AK_PENDING;
            if (pt->call.state != AK_CALL_DONE && pt->call.state != AK_CALL_FAILED)
                return ak__turn_error(inv, ak_result_status(rc), "cannot call model %s: %s",
                                      inv->agent->desc.model->name, ak_result_str(rc));
            if ((rc = ak__model_done(inv)) != AK_PENDING) return rc;
            continue;
        case AK__P_MODEL_WAIT:
            if (ak_model_call_poll(&pt->call, 0) == AK_PENDING) return AK_PENDING;
            if ((rc = ak__model_done(inv)) != AK_PENDING) return rc;
            continue;
        }
        return ak__turn_error(inv, AK_STATUS_INTERNAL, "bad prompt turn state");
    }
}

/* Leaves nothing running: cancels the model call and forgets tools answering later. */
AK_PRIVATE void ak__prompt_release(ak_invocation *inv) {
    ak__prompt *pt = &inv->pt;
    size_t i;
    if (pt->call.state == AK_CALL_RUNNING || pt->call.state == AK_CALL_WAITING) ak_model_call_cancel(&pt->call);
    for (i = 0; i < pt->tool_count; i++) ak__slot_release(inv->agent, &pt->tools[i].call);
    AK_MEMSET(pt, 0, sizeof *pt);
}
/* ---- end src/prompt.c ---- */

/* ---- begin src/chat.c ---- */
/* >>chat: Genkit's AgentChat (reference §5.10) over a backend: local agents here, remote
   agents in the serve layer */


/* ---- the local backend ---------------------------------------------------------------- */

AK_PRIVATE ak_result ak__local_start(void *ud, const ak_json *init, const ak_json *input, ak_agent_chunk_fn on_chunk,
                                     void *chunk_ud, void **turn, ak_error *err) {
    ak_invoke_opts opts;
    ak_invocation *inv;
    ak_result rc;
    AK_MEMSET(&opts, 0, sizeof opts);
    opts.on_chunk = on_chunk;
    opts.chunk_ud = chunk_ud;
    if ((rc = ak_agent_invoke((ak_agent *)ud, init, &opts, &inv, err)) != AK_OK) return rc;
    if ((rc = ak_invocation_send(inv, input, err)) != AK_OK) {
        ak_invocation_free(inv);
        return rc;
    }
    ak_invocation_close(inv);
    *turn = inv;
    return AK_OK;
}

AK_PRIVATE ak_result ak__local_poll(void *ud, void *turn, int wait_ms, ak_json_doc *d, ak_json **output, ak_error *err) {
    ak_invocation *inv = (ak_invocation *)turn;
    ak_result rc = ak_invocation_step(inv, wait_ms, err);
    AK__UNUSED(ud);
    if (rc == AK_PENDING) return rc;
    if (rc == AK_OK && !(*output = ak_json_copy(d, ak_invocation_output(inv))))
        rc = ak__oom(err);
    ak_invocation_free(inv);
    return rc;
}

AK_PRIVATE void ak__local_cancel(void *ud, void *turn) {
    AK__UNUSED(ud);
    ak_invocation_free((ak_invocation *)turn);
}

AK_PRIVATE ak_result ak__local_get_snapshot(void *ud, const char *snapshot_id, const char *session_id, ak_json_doc *d,
                                            ak_json **out, ak_error *err) {
    return ak_agent_get_snapshot((ak_agent *)ud, snapshot_id, session_id, NULL, d, out, err);
}

AK_PRIVATE ak_result ak__local_abort(void *ud, const char *snapshot_id, const char **previous, ak_error *err) {
    return ak_agent_abort((ak_agent *)ud, snapshot_id, NULL, previous, err);
}

AK_PRIVATE ak_chat_backend ak__local_backend(ak_agent *a) {
    ak_chat_backend b;
    b.start = ak__local_start;
    b.poll = ak__local_poll;
    b.cancel = ak__local_cancel;
    b.get_snapshot = ak__local_get_snapshot;
    b.abort = ak__local_abort;
    b.ud = a;
    return b;
}

/* ---- tracked state -------------------------------------------------------------------- */

/* Replaces *slot with a shared copy of v (NULL clears it). */
AK_PRIVATE ak_result ak__track(ak_chat *c, ak_jref **slot, const ak_json *v) {
    ak_jref *r = v ? ak_jref_new(ak_context_allocator(c->ctx), v) : NULL;
    if (v && !r) return AK_ERR_OUT_OF_MEMORY;
    ak_jref_release(*slot);
    *slot = r;
    return AK_OK;
}

AK_PRIVATE void ak__copy_id(char *dst, const char *src) {
    size_t n = src ? ak__strlen(src) : 0;
    if (n > AK_ID_MAX) n = 0; /* never cut an id: drop what cannot be one */
    if (n) AK_MEMCPY(dst, src, n);
    dst[n] = 0;
}

/* Adopts a SessionState: messages, custom state, artifacts. */
AK_PRIVATE ak_result ak__track_state(ak_chat *c, const ak_json *state) {
    if (ak__track(c, &c->messages, ak_json_get(state, "messages")) != AK_OK ||
        ak__track(c, &c->custom, ak_json_get(state, "custom")) != AK_OK ||
        ak__track(c, &c->artifacts, ak_json_get(state, "artifacts")) != AK_OK)
        return AK_ERR_OUT_OF_MEMORY;
    if (ak_json_get_str(state, "sessionId")) ak__copy_id(c->session_id, ak_json_get_str(state, "sessionId"));
    return AK_OK;
}

AKDEF ak_result ak_chat_init_backend(ak_chat *c, ak_context *ctx, const ak_chat_backend *backend,
                                     const ak_json *init, ak_error *err) {
    const ak_json *state = ak_json_get(init, "state");
    AK_MEMSET(c, 0, sizeof *c);
    c->ctx = ctx;
    c->backend = *backend;
    ak_json_doc_init(&c->turn_doc, ak_context_allocator(ctx));
    if (init && !ak_json_is(init, AK_JSON_OBJECT)) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "init must be an object");
    ak__copy_id(c->snapshot_id, ak_json_get_str(init, "snapshotId"));
    ak__copy_id(c->session_id, ak_json_get_str(init, "sessionId"));
    if ((init && ak__track(c, &c->init, init) != AK_OK) ||
        (state && (ak__track(c, &c->client_state, state) != AK_OK || ak__track_state(c, state) != AK_OK))) {
        ak_chat_free(c);
        return ak__oom(err);
    }
    return AK_OK;
}

AKDEF ak_result ak_chat_init(ak_chat *c, ak_agent *a, const ak_json *init, ak_error *err) {
    ak_chat_backend b = ak__local_backend(a);
    return ak_chat_init_backend(c, a->ctx, &b, init, err);
}

AKDEF void ak_chat_free(ak_chat *c) {
    if (c->turn && c->backend.cancel) c->backend.cancel(c->backend.ud, c->turn);
    c->turn = NULL;
    ak_jref_release(c->init);
    ak_jref_release(c->client_state);
    ak_jref_release(c->custom);
    ak_jref_release(c->messages);
    ak_jref_release(c->artifacts);
    c->init = c->client_state = c->custom = c->messages = c->artifacts = NULL;
    ak_json_doc_free(&c->turn_doc);
}

AKDEF const char *ak_chat_snapshot_id(const ak_chat *c) { return c->snapshot_id[0] ? c->snapshot_id : NULL; }
AKDEF const char *ak_chat_session_id(const ak_chat *c) { return c->session_id[0] ? c->session_id : NULL; }
AKDEF const ak_json *ak_chat_custom(const ak_chat *c) {
    if (c->turn && c->turn_custom) return c->turn_custom;
    return c->custom ? c->custom->value : NULL;
}
AKDEF const ak_json *ak_chat_messages(const ak_chat *c) { return c->messages ? c->messages->value : NULL; }
AKDEF const ak_json *ak_chat_artifacts(const ak_chat *c) { return c->artifacts ? c->artifacts->value : NULL; }

/* What the next turn sends as init: the snapshot, else the client state, else the original. */
AK_PRIVATE ak_json *ak__chat_init_json(ak_chat *c, ak_json_doc *d) {
    ak_json *init = ak_json_new_object(d);
    if (c->snapshot_id[0]) ak_json_set_str(d, init, "snapshotId", c->snapshot_id);
    else if (c->client_state) ak_json_set(d, init, "state", ak_json_copy(d, c->client_state->value));
    else if (c->init) init = ak_json_copy(d, c->init->value);
    return init;
}

/* messages (+ msg, or truncated to keep) as the new tracked list. */
AK_PRIVATE ak_result ak__chat_messages(ak_chat *c, const ak_json *msg, size_t keep) {
    ak_json_doc d;
    ak_json *arr;
    ak_result rc;
    ak_json_doc_init(&d, ak_context_allocator(c->ctx));
    arr = ak_json_copy(&d, c->messages ? c->messages->value : NULL);
    if (!ak_json_is(arr, AK_JSON_ARRAY)) arr = ak_json_new_array(&d); /* none yet, or out of memory */
    while (arr && arr->len > keep) ak_json_remove_at(arr, arr->len - 1);
    if (msg) ak_json_push(arr, ak_json_copy(&d, msg));
    rc = d.err ? d.err : ak__track(c, &c->messages, arr);
    ak_json_doc_free(&d);
    return rc;
}

/* Merges artifacts by name into the tracked list (same name replaces). */
AK_PRIVATE ak_result ak__chat_merge_artifacts(ak_chat *c, const ak_json *arts) {
    ak_json_doc d;
    ak_json *arr;
    const ak_json *a;
    ak_result rc;
    if (!ak_json_is(arts, AK_JSON_ARRAY) || !ak_json_len(arts)) return AK_OK; /* a remote agent may send anything */
    ak_json_doc_init(&d, ak_context_allocator(c->ctx));
    arr = ak_json_copy(&d, c->artifacts ? c->artifacts->value : NULL);
    if (!ak_json_is(arr, AK_JSON_ARRAY)) arr = ak_json_new_array(&d);
    for (a = ak_json_first(arts); a; a = a->next) {
        long i = ak__artifact_index(arr, a);
        if (i >= 0) ak_json_replace_at(arr, (size_t)i, ak_json_copy(&d, a));
        else ak_json_push(arr, ak_json_copy(&d, a));
    }
    rc = d.err ? d.err : ak__track(c, &c->artifacts, arr);
    ak_json_doc_free(&d);
    return rc;
}

/* Applies streamed custom-state patches to the chat's view before the user sees the chunk. */
AK_PRIVATE void ak__chat_on_chunk(void *ud, const ak_json *chunk) {
    ak_chat *c = (ak_chat *)ud;
    const ak_json *patch = ak_json_get(chunk, "customPatch");
    if (patch) {
        ak_json *doc = c->turn_custom;
        if (ak_json_patch(&c->turn_doc, &doc, patch, AK_PATCH_LENIENT, NULL) == AK_OK) c->turn_custom = doc;
    }
    if (c->on_chunk) c->on_chunk(c->chunk_ud, chunk);
}

AKDEF ak_result ak_chat_start(ak_chat *c, const ak_json *input, ak_agent_chunk_fn on_chunk, void *ud, ak_error *err) {
    ak_json_doc *d = &c->turn_doc;
    ak_json *in, *init;
    const ak_json *msg = ak_json_get(input, "message");
    ak_result rc;
    if (c->turn) return ak_error_set(err, AK_ERR_STATE, "a turn is already running on this chat");
    ak_json_doc_reset(d);
    c->cancelled = 0;
    c->on_chunk = on_chunk;
    c->chunk_ud = ud;
    in = ak_json_copy(d, input);
    init = ak__chat_init_json(c, d);
    c->turn_custom = c->custom ? ak_json_copy(d, c->custom->value) : NULL;
    c->messages_before = ak_json_len(ak_chat_messages(c));
    if (d->err || (msg && ak__chat_messages(c, msg, c->messages_before) != AK_OK))
        return ak__oom(err);
    rc = c->backend.start(c->backend.ud, init, in, ak__chat_on_chunk, c, &c->turn, err);
    if (rc != AK_OK) {
        c->turn = NULL;
        ak__chat_messages(c, NULL, c->messages_before);
    }
    return rc;
}

AKDEF void ak_chat_cancel(ak_chat *c) {
    if (c->turn && c->backend.cancel) c->backend.cancel(c->backend.ud, c->turn);
    c->turn = NULL;
    c->cancelled = 1;
}

/* The status of a failed output: error.status, else an "ALL_CAPS:" prefix of the message. */
AK_PRIVATE ak_status ak__output_status(const ak_json *error) {
    const char *s = ak_json_get_str(error, "status"), *m = ak_json_get_str(error, "message"), *p;
    if (s) return ak_status_from_name(s, ak__strlen(s));
    for (p = m; p && ((*p >= 'A' && *p <= 'Z') || *p == '_'); p++) {
    }
    return p && p != m && *p == ':' ? ak_status_from_name(m, (size_t)(p - m)) : AK_STATUS_UNKNOWN;
}

/* Fills the response from an output (everything copied into r->doc). */
AK_PRIVATE void ak__fill_response(ak_chat *c, ak_response *r, const ak_json *output) {
    ak_json_doc *d = &r->doc;
    const ak_json *state = ak_json_get(output, "state"), *p, *err = ak_json_get(output, "error");
    const char *fr = ak_json_get_str(output, "finishReason");
    ak_buf text;
    r->raw = ak_json_copy(d, output);
    r->message = ak_json_get(r->raw, "message");
    r->finish_reason = fr ? ak_finish_reason_from_name(fr) : AK_FINISH_UNKNOWN;
    ak_buf_init(&text, ak_context_allocator(c->ctx));
    ak_msg_text(r->message, &text);
    r->text = ak_arena_strdup(&d->arena, text.ptr ? text.ptr : "", text.len);
    ak_buf_free(&text);
    r->snapshot_id = ak_json_get_str(r->raw, "snapshotId");
    r->session_id = ak_json_get_str(r->raw, "sessionId");
    r->interrupts = ak_json_new_array(d);
    for (p = ak_json_first(ak_json_get(r->message, "content")); p; p = p->next)
        if (ak_json_get(p, "toolRequest") && ak_json_get(ak_json_get(p, "metadata"), "interrupt") &&
            !ak_json_is_empty(ak_json_get(ak_json_get(p, "metadata"), "interrupt")))
            ak_json_push(r->interrupts, ak_json_copy(d, p));
    r->state = state && ak_json_get(state, "custom") ? ak_json_copy(d, ak_json_get(state, "custom"))
                                                     : ak_json_copy(d, ak_chat_custom(c));
    if (!state && !ak_chat_custom(c)) r->state = NULL;
    r->artifacts = ak_json_get(output, "artifacts")   ? ak_json_copy(d, ak_json_get(output, "artifacts"))
                   : ak_json_get(state, "artifacts") ? ak_json_copy(d, ak_json_get(state, "artifacts"))
                                                     : ak_json_new_array(d);
    if (err) {
        r->error_status = ak__output_status(err);
        r->error_message = ak_json_get_str(ak_json_get(r->raw, "error"), "message");
    }
}

/* Applies a turn's output to what the chat tracks (Genkit's AgentChatImpl). */
AK_PRIVATE ak_result ak__chat_apply(ak_chat *c, const ak_json *output) {
    const ak_json *state = ak_json_get(output, "state"), *msg = ak_json_get(output, "message");
    const char *fr = ak_json_get_str(output, "finishReason");
    int ended_badly = fr && (ak__streq(fr, "failed") || ak__streq(fr, "aborted"));
    ak_result rc = AK_OK;
    if (ended_badly && !ak_json_get(state, "messages") && !msg) rc = ak__chat_messages(c, NULL, c->messages_before);
    if (ak_json_get_str(output, "snapshotId")) ak__copy_id(c->snapshot_id, ak_json_get_str(output, "snapshotId"));
    if (ak_json_get_str(output, "sessionId")) ak__copy_id(c->session_id, ak_json_get_str(output, "sessionId"));
    if (state) {
        if (ak__track(c, &c->client_state, state) != AK_OK || ak__track_state(c, state) != AK_OK) return AK_ERR_OUT_OF_MEMORY;
        return rc;
    }
    if (rc == AK_OK && msg) rc = ak__chat_messages(c, msg, ak_json_len(ak_chat_messages(c)));
    if (rc == AK_OK) rc = ak__chat_merge_artifacts(c, ak_json_get(output, "artifacts"));
    /* server-managed: the custom state is what the streamed patches made of it */
    if (rc == AK_OK && c->turn_custom) rc = ak__track(c, &c->custom, c->turn_custom);
    return rc;
}

AKDEF void ak_response_free(ak_response *r) {
    ak_json_doc_free(&r->doc);
    AK_MEMSET(r, 0, sizeof *r);
}

AKDEF ak_result ak_chat_poll(ak_chat *c, int wait_ms, ak_response *r, ak_error *err) {
    ak_json_doc tmp;
    ak_json *output = NULL;
    ak_result rc;
    if (!c->turn) {
        AK_MEMSET(r, 0, sizeof *r);
        if (!c->cancelled) return ak_error_set(err, AK_ERR_STATE, "no turn is running on this chat");
        rc = AK_OK; /* cancelled: resolves aborted, as Genkit's abortSignal does */
    } else {
        ak_json_doc_init(&tmp, ak_context_allocator(c->ctx));
        rc = c->backend.poll(c->backend.ud, c->turn, wait_ms, &tmp, &output, err);
        if (rc == AK_PENDING) {
            ak_json_doc_free(&tmp);
            return rc;
        }
        c->turn = NULL;
        AK_MEMSET(r, 0, sizeof *r); /* finished: r is always safe to free from here on */
        if (rc != AK_OK) {
            ak_json_doc_free(&tmp);
            ak__chat_messages(c, NULL, c->messages_before);
            return rc;
        }
        rc = ak__chat_apply(c, output);
        if (rc == AK_OK) ak_json_doc_init(&r->doc, ak_context_allocator(c->ctx)), ak__fill_response(c, r, output);
        ak_json_doc_free(&tmp);
        if (rc != AK_OK) return ak_error_set(err, rc, "out of memory");
        if (r->doc.err) return ak__oom(err);
        if (r->finish_reason == AK_FINISH_FAILED)
            return ak_error_setst(err, AK_ERR_AGENT, r->error_status,
                                  "%s", r->error_message && *r->error_message ? r->error_message : "the turn failed");
        return AK_OK;
    }
    c->cancelled = 0;
    ak__chat_messages(c, NULL, c->messages_before);
    ak_json_doc_init(&r->doc, ak_context_allocator(c->ctx));
    output = ak_json_new_object(&r->doc);
    ak_json_set_str(&r->doc, output, "finishReason", "aborted");
    ak__fill_response(c, r, output);
    return AK_OK;
}

AKDEF ak_result ak_chat_send_input(ak_chat *c, const ak_json *input, ak_response *r, ak_error *err) {
    ak_result rc;
    AK_MEMSET(r, 0, sizeof *r);
    rc = ak_chat_start(c, input, NULL, NULL, err);
    while (rc == AK_OK && (rc = ak_chat_poll(c, 50, r, err)) == AK_PENDING)
        rc = AK_OK; /* not finished: pump again */
    return rc;
}

AKDEF ak_json *ak_input_text(ak_json_doc *d, const char *text) {
    ak_json *input = ak_json_new_object(d), *msg = ak_msg_new(d, "user");
    ak_msg_add(msg, ak_part_text(d, text ? text : ""));
    ak_json_set(d, input, "message", msg);
    return d->err ? NULL : input;
}

AKDEF ak_result ak_chat_send(ak_chat *c, const char *text, ak_response *r, ak_error *err) {
    ak_json_doc d;
    ak_json *input;
    ak_result rc;
    AK_MEMSET(r, 0, sizeof *r);
    ak_json_doc_init(&d, ak_context_allocator(c->ctx));
    input = ak_input_text(&d, text);
    rc = !input ? ak__oom(err) : ak_chat_send_input(c, input, r, err);
    ak_json_doc_free(&d);
    return rc;
}

AKDEF ak_result ak_chat_resume(ak_chat *c, const ak_json *respond, const ak_json *restart, ak_response *r, ak_error *err) {
    ak_json_doc d;
    ak_json *input, *resume;
    ak_result rc;
    AK_MEMSET(r, 0, sizeof *r);
    ak_json_doc_init(&d, ak_context_allocator(c->ctx));
    input = ak_json_new_object(&d);
    resume = ak_json_new_object(&d);
    if (respond) ak_json_set(&d, resume, "respond", ak_json_copy(&d, respond));
    if (restart) ak_json_set(&d, resume, "restart", ak_json_copy(&d, restart));
    ak_json_set(&d, input, "resume", resume);
    rc = d.err ? ak__oom(err) : ak_chat_send_input(c, input, r, err);
    ak_json_doc_free(&d);
    return rc;
}

AKDEF ak_result ak_chat_detach(ak_chat *c, const ak_json *input, char id[AK_ID_MAX + 1], ak_error *err) {
    ak_json_doc d;
    ak_json *in;
    ak_response r;
    ak_result rc;
    id[0] = 0;
    ak_json_doc_init(&d, ak_context_allocator(c->ctx));
    in = ak_json_copy(&d, input);
    if (!ak_json_is(in, AK_JSON_OBJECT)) in = ak_json_new_object(&d);
    ak_json_set_bool(&d, in, "detach", 1);
    AK_MEMSET(&r, 0, sizeof r);
    rc = d.err ? ak__oom(err) : ak_chat_send_input(c, in, &r, err);
    ak_json_doc_free(&d);
    if (rc != AK_OK) {
        ak_response_free(&r); /* a failed turn fills it too */
        return rc;
    }
    if (!r.snapshot_id) rc = ak_error_set(err, AK_ERR_AGENT, "detach did not return a snapshotId.");
    else ak__copy_id(id, r.snapshot_id);
    ak_response_free(&r);
    return rc;
}

AKDEF ak_result ak_chat_abort(ak_chat *c, const char **previous, ak_error *err) {
    *previous = NULL;
    if (!c->snapshot_id[0]) return AK_OK; /* Genkit: nothing to abort */
    return c->backend.abort(c->backend.ud, c->snapshot_id, previous, err);
}

AKDEF ak_result ak_chat_get_snapshot(ak_chat *c, const char *snapshot_id, ak_json_doc *d, ak_json **out, ak_error *err) {
    const char *id = snapshot_id ? snapshot_id : ak_chat_snapshot_id(c);
    if (!id) return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_FAILED_PRECONDITION, "the chat has no snapshot yet");
    return c->backend.get_snapshot(c->backend.ud, id, NULL, d, out, err);
}

AKDEF ak_result ak_chat_load_backend(ak_chat *c, ak_context *ctx, const ak_chat_backend *backend, const char *snapshot_id,
                                     const char *session_id, ak_error *err) {
    ak_json_doc d;
    ak_json *snap = NULL, *init;
    ak_result rc;
    ak_json_doc_init(&d, ak_context_allocator(ctx));
    rc = backend->get_snapshot(backend->ud, snapshot_id, session_id, &d, &snap, err);
    if (rc == AK_OK) {
        init = ak_json_new_object(&d);
        ak_json_set_str(&d, init, "snapshotId", ak_json_get_str(snap, "snapshotId"));
        if (ak_json_get_str(snap, "sessionId")) ak_json_set_str(&d, init, "sessionId", ak_json_get_str(snap, "sessionId"));
        rc = ak_chat_init_backend(c, ctx, backend, init, err);
        if (rc == AK_OK && ak__track_state(c, ak_json_get(snap, "state")) != AK_OK)
            rc = ak__oom(err);
    }
    ak_json_doc_free(&d);
    return rc;
}

AKDEF ak_result ak_chat_load(ak_chat *c, ak_agent *a, const char *snapshot_id, const char *session_id, ak_error *err) {
    ak_chat_backend b = ak__local_backend(a);
    return ak_chat_load_backend(c, a->ctx, &b, snapshot_id, session_id, err);
}
/* ---- end src/chat.c ---- */

#if !defined(AK_NO_SERVE)
/* ---- begin src/serve.c ---- */
/* >>serve implementation: the Genkit agent HTTP protocol server (any host HTTP server) and
   the remote-agent client (any transport) */


/* ---- server: exchanges ---------------------------------------------------------------- */

struct ak__exchange {
    ak__exchange *next;
    ak_serve *s;
    ak_http_writer *w;
    ak_invocation *inv;
    ak_json_doc doc;             /* the request body and context */
    ak_buf frame;
    int streaming, started, ended, gone;
};

AK_PRIVATE int ak__serve_ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a, y = *b;
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
        if (x != y) return 0;
    }
    return *a == *b;
}

AKDEF const char *ak_serve_header(const ak_serve_request *req, const char *name) {
    size_t i;
    for (i = 0; i < req->header_count; i++)
        if (req->headers[i].name && ak__serve_ieq(req->headers[i].name, name)) return req->headers[i].value;
    return NULL;
}

/* Case-insensitive substring search (for Accept). */
AK_PRIVATE int ak__serve_has(const char *hay, const char *needle) {
    size_t n = ak__strlen(needle), i;
    for (; hay && *hay; hay++) {
        for (i = 0; i < n && hay[i]; i++) {
            char x = hay[i];
            if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
            if (x != needle[i]) break;
        }
        if (i == n) return 1;
    }
    return 0;
}

/* stream=true in the query string (Genkit JS: exactly "true"). */
AK_PRIVATE int ak__serve_stream_query(const char *q) {
    while (q && *q) {
        const char *amp = q;
        while (*amp && *amp != '&') amp++;
        if ((size_t)(amp - q) == 11 && AK_MEMCMP(q, "stream=true", 11) == 0) return 1;
        q = *amp ? amp + 1 : amp;
    }
    return 0;
}

AKDEF ak_result ak_serve_init(ak_serve *s, ak_context *ctx, const ak_serve_desc *desc) {
    AK_MEMSET(s, 0, sizeof *s);
    if (!ctx || !desc || (desc->agent_count && !desc->agents)) return AK_ERR_INVALID_ARGUMENT;
    s->ctx = ctx;
    s->desc = *desc;
    if (!s->desc.prefixes[0]) s->desc.prefixes[0] = "/agents", s->desc.prefixes[1] = "/api";
    if (!s->desc.max_body) s->desc.max_body = AK_SERVE_MAX_BODY;
    if (!s->desc.max_depth) s->desc.max_depth = AK_SERVE_MAX_DEPTH;
    return AK_OK;
}

/* Writes the frame in x->frame; a gone client stops all further writes. */
AK_PRIVATE void ak__serve_send_frame(ak__exchange *x) {
    if (x->gone || x->frame.err) return;
    if (x->w->write(x->w->ud, x->frame.ptr, x->frame.len) != AK_OK) x->gone = 1;
}

/* Starts an answer: status, content type, Content-Length (or none: chunked), the trace
   headers Genkit adds to action results, CORS when configured, and any extra header. */
AK_PRIVATE ak_result ak__serve_start(ak__exchange *x, int status, const char *content_type, const char *length,
                                     int trace, const ak_header *extra) {
    ak_header h[8];
    size_t n = 0;
    char trace_id[33], span_id[17];
    static const char hex[] = "0123456789abcdef";
    h[n].name = "Content-Type", h[n++].value = content_type;
    if (length) h[n].name = "Content-Length", h[n++].value = length;
    if (trace) {
        unsigned char r[24];
        int i;
        if (ak_random(x->s->ctx, r, sizeof r) != AK_OK) AK_MEMSET(r, 0, sizeof r);
        for (i = 0; i < 16; i++) trace_id[2 * i] = hex[r[i] >> 4], trace_id[2 * i + 1] = hex[r[i] & 15];
        for (i = 0; i < 8; i++) span_id[2 * i] = hex[r[16 + i] >> 4], span_id[2 * i + 1] = hex[r[16 + i] & 15];
        trace_id[32] = span_id[16] = 0;
        h[n].name = "x-genkit-trace-id", h[n++].value = trace_id;
        h[n].name = "x-genkit-span-id", h[n++].value = span_id;
    }
    if (x->s->desc.cors_origin) {
        h[n].name = "Access-Control-Allow-Origin", h[n++].value = x->s->desc.cors_origin;
        h[n].name = "Access-Control-Expose-Headers", h[n++].value = "x-genkit-trace-id, x-genkit-span-id";
    }
    if (extra) h[n++] = *extra;
    x->started = 1;
    return x->w->start(x->w->ud, status, h, n);
}

/* A whole JSON answer (the body is in x->frame). */
AK_PRIVATE void ak__serve_json(ak__exchange *x, int status, int trace, const ak_header *extra) {
    char len[24];
    ak_buf b;
    if (x->gone || x->frame.err) return;
    ak_buf_init_fixed(&b, len, sizeof len);
    ak_buf_put_u64(&b, x->frame.len);
    if (ak__serve_start(x, status, "application/json; charset=utf-8", len, trace, extra) == AK_OK) ak__serve_send_frame(x);
}

AK_PRIVATE void ak__serve_end(ak__exchange *x) {
    if (x->ended) return;
    x->ended = 1;
    x->w->end(x->w->ud);
}

/* `<prefix>: {"<key>": value}` + blank line, as Genkit's express handler writes it. */
AK_PRIVATE void ak__serve_frame(ak__exchange *x, const char *prefix, const char *key, const ak_json *value) {
    ak_buf_clear(&x->frame);
    ak_buf_puts(&x->frame, prefix);
    ak_buf_puts(&x->frame, ": {");
    ak_json_write_str(&x->frame, key, ak__strlen(key));
    ak_buf_putc(&x->frame, ':');
    ak_json_write(value, &x->frame);
    ak_buf_puts(&x->frame, "}\n\n");
    ak__serve_send_frame(x);
}

AK_PRIVATE void ak__serve_on_chunk(void *ud, const ak_json *chunk) {
    ak__serve_frame((ak__exchange *)ud, "data", "message", chunk);
}

/* {"status", "message", "details"?} */
AK_PRIVATE ak_json *ak__serve_error_json(ak_json_doc *d, ak_status st, const char *message) {
    ak_json *e = ak_json_new_object(d);
    ak_json_set_str(d, e, "status", ak_status_name(st));
    ak_json_set_str(d, e, "message", message);
    return e;
}

/* Answers with an error: a frame once streaming headers are out, else an HTTP status + JSON
   body (auth and body problems come before any headers, as in Genkit). http 0 = the
   status's own code. */
AK_PRIVATE void ak__serve_fail_http(ak__exchange *x, int http, ak_status st, const char *message,
                                    const ak_header *extra) {
    ak_json *e = ak__serve_error_json(&x->doc, st, message);
    x->s->failed++;
    if (x->started) {
        ak__serve_frame(x, "error", "error", e);
    } else {
        ak_buf_clear(&x->frame);
        ak_json_write(e, &x->frame);
        ak__serve_json(x, http ? http : ak_status_http(st), 0, extra);
    }
    ak__serve_end(x);
}

AK_PRIVATE void ak__serve_fail(ak__exchange *x, ak_status st, const char *message) {
    ak__serve_fail_http(x, 0, st, message, NULL);
}

/* Answers with {"result": v}. */
AK_PRIVATE void ak__serve_result(ak__exchange *x, const ak_json *v) {
    x->s->served++;
    if (x->started) {
        ak__serve_frame(x, "data", "result", v);
    } else {
        ak_buf_clear(&x->frame);
        ak_buf_puts(&x->frame, "{\"result\":");
        ak_json_write(v, &x->frame);
        ak_buf_putc(&x->frame, '}');
        ak__serve_json(x, 200, 1, NULL);
    }
    ak__serve_end(x);
}

AK_PRIVATE void ak__serve_free_exchange(ak__exchange *x) {
    const ak_allocator *a = ak_context_allocator(x->s->ctx);
    ak__exchange **link;
    for (link = &x->s->live; *link; link = &(*link)->next)
        if (*link == x) {
            *link = x->next;
            break;
        }
    ak_invocation_free(x->inv); /* a detached turn lives on in its agent */
    ak_json_doc_free(&x->doc);
    ak_buf_free(&x->frame);
    ak_free(a, x, sizeof *x);
}

/* ---- server: routes ------------------------------------------------------------------- */

AK_PRIVATE ak_agent *ak__serve_agent(ak_serve *s, const char *name, size_t len) {
    size_t i;
    for (i = 0; i < s->desc.agent_count; i++)
        if (ak__eqn(name, len, s->desc.agents[i]->desc.name)) return s->desc.agents[i];
    return NULL;
}

/* What follows "<prefix>/" in path, or NULL. Compares no further than path's NUL: a path
   may be shorter than the prefix. */
AK_PRIVATE const char *ak__serve_under(const char *path, const char *prefix) {
    while (*prefix && *path == *prefix) path++, prefix++;
    return !*prefix && *path == '/' ? path + 1 : NULL;
}

/* Splits path into agent + action ("", "getSnapshot", "abort"); 0 if it is not ours. */
AK_PRIVATE int ak__serve_route(ak_serve *s, const char *path, ak_agent **agent, const char **action) {
    int i;
    for (i = 0; i < 4 && s->desc.prefixes[i]; i++) {
        const char *rest = ak__serve_under(path, s->desc.prefixes[i]), *slash;
        if (!rest) continue;
        for (slash = rest; *slash && *slash != '/'; slash++) {
        }
        *agent = ak__serve_agent(s, rest, (size_t)(slash - rest));
        *action = *slash ? slash + 1 : "";
        return 1;
    }
    return 0;
}

AK_PRIVATE ak_result ak__serve_health(ak_serve *s, ak__exchange *x) {
    ak_json_doc *d = &x->doc;
    ak_json *o = ak_json_new_object(d), *names = ak_json_new_array(d);
    size_t i;
    ak_json_set_bool(d, o, "ok", 1);
    for (i = 0; i < s->desc.agent_count; i++) ak_json_push(names, ak_json_new_str(d, s->desc.agents[i]->desc.name));
    ak_json_set(d, o, "agents", names);
    ak_buf_clear(&x->frame);
    ak_json_write(o, &x->frame);
    ak__serve_json(x, 200, 0, NULL);
    ak__serve_end(x);
    return AK_OK;
}

AK_PRIVATE void ak__serve_preflight(ak_serve *s, ak__exchange *x) {
    ak_header h[4];
    x->started = 1;
    h[0].name = "Access-Control-Allow-Origin", h[0].value = s->desc.cors_origin;
    h[1].name = "Access-Control-Allow-Methods", h[1].value = "POST, GET, OPTIONS";
    h[2].name = "Access-Control-Allow-Headers", h[2].value = "Content-Type, Authorization, Accept";
    h[3].name = "Access-Control-Max-Age", h[3].value = "600";
    x->w->start(x->w->ud, 204, h, 4);
    ak__serve_end(x);
}

/* getSnapshot and abort: {data: {snapshotId | sessionId}}. */
AK_PRIVATE void ak__serve_companion(ak__exchange *x, ak_agent *a, const char *action, const ak_json *data,
                                    const ak_json *context) {
    ak_error e;
    const ak_json *id = ak_json_get(data, "snapshotId"), *sid = ak_json_get(data, "sessionId");
    if (!ak_json_is(data, AK_JSON_OBJECT) || (id && id->type != AK_JSON_STRING) || (sid && sid->type != AK_JSON_STRING)) {
        ak__serve_fail(x, AK_STATUS_INVALID_ARGUMENT, "data must be an object with a string snapshotId or sessionId");
        return;
    }
    if (ak__streq(action, "getSnapshot")) {
        ak_json *snap;
        if (ak_agent_get_snapshot(a, ak_json_str(id), ak_json_str(sid), context, &x->doc, &snap, &e) != AK_OK)
            ak__serve_fail(x, e.status, e.message);
        else
            ak__serve_result(x, snap);
    } else {
        const char *prev = NULL;
        ak_json *r;
        if (ak_agent_abort(a, ak_json_str(id), context, &prev, &e) != AK_OK) {
            ak__serve_fail(x, e.status, e.message);
            return;
        }
        r = ak_json_new_object(&x->doc);
        ak_json_set_str(&x->doc, r, "snapshotId", ak_json_str(id));
        if (prev) ak_json_set_str(&x->doc, r, "status", prev);
        ak__serve_result(x, r);
    }
}

/* Moves an exchange whose turn resolved to its answer. Returns 1 when it is finished. */
AK_PRIVATE int ak__serve_step(ak__exchange *x, int wait_ms) {
    ak_error e;
    ak_result rc = ak_invocation_step(x->inv, wait_ms, &e);
    if (rc == AK_PENDING) return 0;
    if (rc == AK_OK) ak__serve_result(x, ak_invocation_output(x->inv));
    else ak__serve_fail(x, e.status ? e.status : AK_STATUS_INTERNAL, e.message);
    return 1;
}

AK_PRIVATE void ak__serve_turn(ak__exchange *x, ak_agent *a, const ak_json *body, const ak_json *context) {
    const ak_json *data = ak_json_get(body, "data"), *init = ak_json_get(body, "init");
    ak_invoke_opts opts;
    ak_error e;
    /* Genkit validates the envelope: an input object and an init object are required */
    if (!ak_json_is(data, AK_JSON_OBJECT) || !ak_json_is(init, AK_JSON_OBJECT)) {
        ak__serve_fail(x, AK_STATUS_INVALID_ARGUMENT,
                       !data ? "Schema validation failed: 'data' (the agent input) is required"
                       : !init ? "Schema validation failed: 'init' is required (send {} for a new conversation)"
                               : "Schema validation failed: 'data' and 'init' must be objects");
        return;
    }
    AK_MEMSET(&opts, 0, sizeof opts);
    opts.on_chunk = x->streaming ? ak__serve_on_chunk : NULL;
    opts.chunk_ud = x;
    opts.context = context;
    if (ak_agent_invoke(a, init, &opts, &x->inv, &e) != AK_OK || ak_invocation_send(x->inv, data, &e) != AK_OK) {
        ak__serve_fail(x, e.status ? e.status : AK_STATUS_INTERNAL, e.message);
        return;
    }
    ak_invocation_close(x->inv);
    if (!ak__serve_step(x, 0)) { /* still running: ak_serve_pump finishes it */
        x->next = x->s->live;
        x->s->live = x;
    }
}

/* Parses the body and runs auth; fails x and returns 0 when either says no. */
AK_PRIVATE int ak__serve_prepare(ak_serve *s, ak__exchange *x, const ak_serve_request *req, ak_json **body,
                                 ak_json **context) {
    ak_json_parse_opts po;
    ak_error e;
    *body = *context = NULL;
    if (req->body_len > s->desc.max_body) {
        ak__serve_fail_http(x, 413, AK_STATUS_RESOURCE_EXHAUSTED, "Request body is too large.", NULL);
        return 0;
    }
    if (s->desc.auth && s->desc.auth(s->desc.auth_ud, req, &x->doc, context, &e) != AK_OK) {
        ak__serve_fail(x, e.status ? e.status : AK_STATUS_UNAUTHENTICATED, e.message);
        return 0;
    }
    AK_MEMSET(&po, 0, sizeof po);
    po.max_depth = s->desc.max_depth;
    if (ak_json_parse_value(&x->doc, req->body ? req->body : "", req->body_len, &po, body, &e) != AK_OK) {
        ak__serve_fail(x, AK_STATUS_INVALID_ARGUMENT,
                       e.code == AK_ERR_JSON_DEPTH ? "Request body is nested too deeply." : "Request body is not valid JSON.");
        return 0;
    }
    if (!ak_json_is(*body, AK_JSON_OBJECT)) {
        ak__serve_fail(x, AK_STATUS_INVALID_ARGUMENT, "the request body must be a JSON object {\"data\": ..., \"init\": ...}");
        return 0;
    }
    return 1;
}

/* 404 "Cannot POST /x", as Express words it. */
AK_PRIVATE void ak__serve_not_found(ak__exchange *x, const ak_serve_request *req) {
    char msg[AK_ERROR_MAX];
    ak_buf b;
    ak_buf_init_fixed(&b, msg, sizeof msg);
    ak_buf_printf(&b, "Cannot %s %s", req->method ? req->method : "?", req->path);
    ak__serve_fail(x, AK_STATUS_NOT_FOUND, msg);
}

AKDEF ak_result ak_serve_handle(ak_serve *s, const ak_serve_request *req, ak_http_writer *w) {
    const ak_allocator *a = ak_context_allocator(s->ctx);
    ak__exchange *x;
    ak_agent *agent = NULL;
    const char *action = NULL;
    ak_json *body, *context;
    int post = req->method && ak__streq(req->method, "POST");
    int health = !s->desc.no_health && req->path && ak__streq(req->path, "/healthz");
    if (!req->path || (!health && !ak__serve_route(s, req->path, &agent, &action))) return AK_ERR_NOT_FOUND;
    if (!(x = (ak__exchange *)ak_alloc(a, sizeof *x))) return AK_ERR_OUT_OF_MEMORY;
    AK_MEMSET(x, 0, sizeof *x);
    x->s = s;
    x->w = w;
    ak_json_doc_init(&x->doc, a);
    ak_buf_init(&x->frame, a);
    if (health) {
        if (req->method && ak__streq(req->method, "GET")) ak__serve_health(s, x);
        else ak__serve_not_found(x, req);
    } else if (req->method && ak__streq(req->method, "OPTIONS") && s->desc.cors_origin) {
        ak__serve_preflight(s, x);
    } else if (!agent || (*action && !ak__streq(action, "getSnapshot") && !ak__streq(action, "abort"))) {
        ak__serve_not_found(x, req);
    } else if (!post) {
        ak_header allow;
        char msg[AK_ERROR_MAX];
        ak_buf b;
        ak_buf_init_fixed(&b, msg, sizeof msg);
        ak_buf_printf(&b, "Method %s is not allowed on %s; use POST.", req->method ? req->method : "?", req->path);
        allow.name = "Allow", allow.value = "POST";
        ak__serve_fail_http(x, 405, AK_STATUS_UNIMPLEMENTED, msg, &allow);
    } else {
        x->streaming = ak__serve_has(ak_serve_header(req, "accept"), "text/event-stream") ||
                       ak__serve_stream_query(req->query);
        /* auth and body problems are reported before any streaming headers, as Genkit does */
        if (ak__serve_prepare(s, x, req, &body, &context)) {
            /* Genkit's express handler streams as text/plain, chunked; its client does not care */
            if (x->streaming && ak__serve_start(x, 200, "text/plain", NULL, 0, NULL) != AK_OK) x->gone = 1;
            if (*action) ak__serve_companion(x, agent, action, ak_json_get(body, "data"), context);
            else ak__serve_turn(x, agent, body, context);
        }
    }
    if (x->ended) ak__serve_free_exchange(x);
    return AK_OK;
}

AKDEF ak_result ak_serve_pump(ak_serve *s, int wait_ms) {
    ak__exchange *x, *next;
    size_t i;
    int background = 0;
    for (x = s->live; x; x = next) {
        next = x->next;
        if (ak__serve_step(x, 0)) ak__serve_free_exchange(x);
    }
    for (i = 0; i < s->desc.agent_count; i++)
        if (ak_agent_pump(s->desc.agents[i], 0) == AK_PENDING) background = 1;
    /* nothing finished: let the oldest exchange wait for its model's I/O */
    if (s->live && wait_ms > 0 && ak__serve_step(s->live, wait_ms)) ak__serve_free_exchange(s->live);
    return s->live || background ? AK_PENDING : AK_OK;
}

AKDEF void ak_serve_abandon(ak_serve *s, ak_http_writer *w) {
    ak__exchange *x;
    for (x = s->live; x; x = x->next)
        if (x->w == w) {
            x->gone = 1;
            ak__serve_end(x); /* the turn runs on, like Genkit's does after a client leaves */
        }
}

AKDEF void ak_serve_free(ak_serve *s) {
    while (s->live) {
        ak__exchange *x = s->live;
        if (x->streaming && !x->ended) ak__serve_fail(x, AK_STATUS_UNAVAILABLE, "the server is shutting down");
        else ak__serve_end(x);
        ak__serve_free_exchange(x);
    }
}

/* ---- remote agents -------------------------------------------------------------------- */

#ifndef AK_REMOTE_MAX_FRAME
#define AK_REMOTE_MAX_FRAME ((size_t)16 << 20)
#endif

/* One request to a remote agent: a streamed turn, or a JSON call (getSnapshot / abort). */
typedef struct ak__remote_call {
    ak_remote_agent *ra;
    ak_buf body;
    ak_header headers[AK_MAX_REQUEST_HEADERS];
    ak_http_request req;
    ak_http_sink sink;
    void *handle;
    int status, done, streaming, finished;
    ak_buf in;                   /* frames not yet complete, or the whole JSON body */
    ak_agent_chunk_fn on_chunk;
    void *chunk_ud;
    ak_json_doc doc;             /* the result */
    ak_json *result;
    ak_error error;
    int failed;
    int64_t deadline;
} ak__remote_call;

AK_PRIVATE void ak__remote_fail(ak__remote_call *rc, ak_status st, const char *fmt, const char *arg) {
    if (rc->failed || rc->result) return;
    rc->failed = 1;
    ak_error_setst(&rc->error, AK_ERR_AGENT, st, fmt, arg ? arg : "");
}

/* {"status","message"} or {"error":{...}} -> rc->error. */
AK_PRIVATE void ak__remote_error_from(ak__remote_call *rc, const ak_json *e, int http) {
    const char *st = ak_json_get_str(e, "status"), *msg = ak_json_get_str(e, "message");
    ak_status status = st ? ak_status_from_name(st, ak__strlen(st)) : ak_status_from_http(http);
    if (rc->failed || rc->result) return;
    rc->failed = 1;
    ak_error_setst(&rc->error, AK_ERR_AGENT, status, "%s", msg && *msg ? msg : "the remote agent failed");
}

/* One frame: "<field>: <json>" where the JSON holds message, result or error. `last`: the
   bytes the stream ended with, without the blank line that ends a frame; when they are no
   frame, the stream was cut. */
AK_PRIVATE void ak__remote_frame(ak__remote_call *rc, const char *f, size_t n, int last) {
    ak_json_doc tmp;
    ak_json *v, *x;
    size_t i = 0;
    while (i < n && f[i] != ':') i++;
    ak_json_doc_init(&tmp, ak_context_allocator(rc->ra->ctx));
    if (i == n || ak_json_parse_value(&tmp, f + i + 1, n - i - 1, NULL, &v, NULL) != AK_OK || !ak_json_is(v, AK_JSON_OBJECT)) {
        if (last) ak__remote_fail(rc, AK_STATUS_UNAVAILABLE, "the remote agent's stream was cut in the middle of a frame%s", NULL);
        else ak__remote_fail(rc, AK_STATUS_INTERNAL, "the remote agent sent a frame that is not JSON%s", NULL);
    } else if ((x = ak_json_get(v, "message")) != NULL) {
        /* callbacks read chunks as objects, as local turns make them */
        if (!ak_json_is(x, AK_JSON_OBJECT))
            ak__remote_fail(rc, AK_STATUS_INTERNAL, "the remote agent sent a chunk that is not an object%s", NULL);
        else if (rc->on_chunk && !rc->failed && !rc->result) rc->on_chunk(rc->chunk_ud, x);
    } else if ((x = ak_json_get(v, "result")) != NULL) {
        if (!rc->failed && !rc->result) rc->result = ak_json_copy(&rc->doc, x);
    } else if ((x = ak_json_get(v, "error")) != NULL) {
        ak__remote_error_from(rc, x, 500);
    } else {
        ak__remote_fail(rc, AK_STATUS_INTERNAL, "unknown frame from the remote agent%s", NULL);
    }
    ak_json_doc_free(&tmp);
}

/* Splits rc->in into frames at blank lines (LF or CRLF). */
AK_PRIVATE void ak__remote_frames(ak__remote_call *rc) {
    size_t start = 0, i;
    for (i = 0; i + 1 < rc->in.len; i++) {
        size_t end = i, skip;
        if (rc->in.ptr[i] == '\n' && rc->in.ptr[i + 1] == '\n') skip = 2;
        else if (i + 3 < rc->in.len && AK_MEMCMP(rc->in.ptr + i, "\r\n\r\n", 4) == 0) skip = 4;
        else continue;
        if (end > start) ak__remote_frame(rc, rc->in.ptr + start, end - start, 0);
        start = i + skip;
        i = start - 1;
    }
    ak_buf_consume(&rc->in, start);
}

AK_PRIVATE ak_result ak__remote_status(ak_http_sink *s, int status) {
    ((ak__remote_call *)s->ud)->status = status;
    return AK_OK;
}

AK_PRIVATE ak_result ak__remote_header(ak_http_sink *s, const char *n, size_t nl, const char *v, size_t vl) {
    AK__UNUSED(s), AK__UNUSED(n), AK__UNUSED(nl), AK__UNUSED(v), AK__UNUSED(vl);
    return AK_OK;
}

AK_PRIVATE ak_result ak__remote_body(ak_http_sink *s, const char *data, size_t len) {
    ak__remote_call *rc = (ak__remote_call *)s->ud;
    rc->in.max = AK_REMOTE_MAX_FRAME;
    ak_buf_append(&rc->in, data, len);
    if (rc->in.err) {
        ak__remote_fail(rc, AK_STATUS_RESOURCE_EXHAUSTED, "the remote agent's answer is too large%s", NULL);
        return AK_ERR_LIMIT;
    }
    if (rc->streaming && rc->status == 200) ak__remote_frames(rc);
    return AK_OK;
}

AK_PRIVATE void ak__remote_done(ak_http_sink *s, ak_result r, const char *msg) {
    ak__remote_call *rc = (ak__remote_call *)s->ud;
    ak_json *v = NULL;
    rc->done = 1;
    if (r != AK_OK) {
        ak__remote_fail(rc, r == AK_ERR_TIMEOUT ? AK_STATUS_DEADLINE_EXCEEDED : AK_STATUS_UNAVAILABLE,
                        "cannot reach the remote agent: %s", msg ? msg : ak_result_str(r));
        return;
    }
    if (rc->status == 200 && rc->streaming) {
        if (rc->in.len) ak__remote_frame(rc, rc->in.ptr, rc->in.len, 1); /* a last frame without its blank line */
        if (!rc->result) ak__remote_fail(rc, AK_STATUS_UNAVAILABLE, "the remote agent's stream ended without a result%s", NULL);
        return;
    }
    ak_json_parse_value(&rc->doc, rc->in.ptr ? rc->in.ptr : "", rc->in.len, NULL, &v, NULL);
    if (rc->status == 200 && ak_json_get(v, "result")) rc->result = ak_json_get(v, "result");
    else if (rc->status == 200 && ak_json_get(v, "error")) ak__remote_error_from(rc, ak_json_get(v, "error"), 500);
    else if (ak_json_is(v, AK_JSON_OBJECT) && ak_json_get(v, "message")) ak__remote_error_from(rc, v, rc->status);
    else {
        char code[16];
        ak_buf b;
        ak_buf_init_fixed(&b, code, sizeof code);
        ak_buf_put_i64(&b, rc->status);
        ak__remote_fail(rc, ak_status_from_http(rc->status), "the remote agent answered HTTP %s", code);
    }
}

AK_PRIVATE void ak__remote_call_free(ak__remote_call *rc) {
    const ak_allocator *a = ak_context_allocator(rc->ra->ctx);
    if (!rc->done && rc->ra->desc.transport->cancel) rc->ra->desc.transport->cancel(rc->ra->desc.transport->ud, rc->handle);
    ak_buf_free(&rc->body);
    ak_buf_free(&rc->in);
    ak_json_doc_free(&rc->doc);
    ak_free(a, rc, sizeof *rc);
}

/* Starts POST url with {"data": data, "init"?: init}. */
AK_PRIVATE ak_result ak__remote_start(ak_remote_agent *ra, const char *url, const ak_json *data, const ak_json *init,
                                      int streaming, ak_agent_chunk_fn on_chunk, void *chunk_ud, ak__remote_call **out,
                                      ak_error *err) {
    const ak_allocator *a = ak_context_allocator(ra->ctx);
    ak__remote_call *rc = (ak__remote_call *)ak_alloc(a, sizeof *rc);
    size_t i, n = 0;
    ak_result r;
    *out = NULL;
    if (!rc) return ak__oom(err);
    AK_MEMSET(rc, 0, sizeof *rc);
    rc->ra = ra;
    rc->streaming = streaming;
    /* set before the transport starts: a blocking one delivers every frame inside start() */
    rc->on_chunk = on_chunk;
    rc->chunk_ud = chunk_ud;
    ak_buf_init(&rc->body, a);
    ak_buf_init(&rc->in, a);
    ak_json_doc_init(&rc->doc, a);
    ak_buf_puts(&rc->body, "{\"data\":");
    ak_json_write(data, &rc->body);
    if (init) ak_buf_puts(&rc->body, ",\"init\":"), ak_json_write(init, &rc->body);
    ak_buf_putc(&rc->body, '}');
    rc->headers[n].name = "Content-Type", rc->headers[n++].value = "application/json";
    if (streaming) rc->headers[n].name = "Accept", rc->headers[n++].value = "text/event-stream";
    for (i = 0; i < ra->desc.header_count && n < AK_MAX_REQUEST_HEADERS; i++) rc->headers[n++] = ra->desc.headers[i];
    rc->req.method = "POST";
    rc->req.url = url;
    rc->req.headers = rc->headers;
    rc->req.header_count = n;
    rc->req.body = rc->body.ptr;
    rc->req.body_len = rc->body.len;
    rc->req.timeout_ms = AK__DEF(ra->desc.timeout_ms, 300000);
    rc->req.streaming = streaming;
    rc->deadline = ak_mono_ms(ra->ctx) + rc->req.timeout_ms;
    rc->sink.on_status = ak__remote_status;
    rc->sink.on_header = ak__remote_header;
    rc->sink.on_body = ak__remote_body;
    rc->sink.on_done = ak__remote_done;
    rc->sink.ud = rc;
    if (rc->body.err) {
        ak__remote_call_free(rc);
        return ak__oom(err);
    }
    *out = rc;
    r = ra->desc.transport->start(ra->desc.transport->ud, &rc->req, &rc->sink, &rc->handle);
    if (r != AK_OK) {
        rc->done = 1;
        ak__remote_call_free(rc);
        *out = NULL;
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_UNAVAILABLE, "cannot reach the remote agent at %s: %s", url,
                              ak_result_str(r));
    }
    return AK_OK;
}

/* Advances a call: AK_PENDING, or AK_OK / AK_ERR_AGENT once it finished. */
AK_PRIVATE ak_result ak__remote_poll(ak__remote_call *rc, int wait_ms, ak_error *err) {
    ak_transport *t = rc->ra->desc.transport;
    if (!rc->done && t->poll) t->poll(t->ud, wait_ms);
    if (!rc->done && ak_mono_ms(rc->ra->ctx) >= rc->deadline) {
        if (t->cancel) t->cancel(t->ud, rc->handle);
        rc->done = 1;
        ak__remote_fail(rc, AK_STATUS_DEADLINE_EXCEEDED, "the remote agent did not answer in time%s", NULL);
    }
    if (!rc->done) return AK_PENDING;
    if (rc->failed) {
        if (err) *err = rc->error;
        return AK_ERR_AGENT;
    }
    return AK_OK;
}

/* A JSON call to completion (getSnapshot, abort): needs a transport that finishes inside
   start() or has poll(). */
AK_PRIVATE ak_result ak__remote_json(ak_remote_agent *ra, const char *url, const ak_json *data, ak__remote_call **out,
                                     ak_error *err) {
    ak_result r = ak__remote_start(ra, url, data, NULL, 0, NULL, NULL, out, err);
    while (r == AK_OK && (r = ak__remote_poll(*out, 50, err)) == AK_PENDING)
        r = AK_OK; /* not finished: poll again */
    if (r != AK_OK && *out) {
        ak__remote_call_free(*out);
        *out = NULL;
    }
    return r;
}

AK_PRIVATE ak_result ak__rb_start(void *ud, const ak_json *init, const ak_json *input, ak_agent_chunk_fn on_chunk,
                                  void *chunk_ud, void **turn, ak_error *err) {
    ak_remote_agent *ra = (ak_remote_agent *)ud;
    ak__remote_call *rc;
    /* remoteAgent() always streams: even send() is a drained stream (reference §3.7) */
    ak_result r = ak__remote_start(ra, ra->turn_url, input, init, 1, on_chunk, chunk_ud, &rc, err);
    if (r != AK_OK) return r;
    *turn = rc;
    return AK_OK;
}

AK_PRIVATE ak_result ak__rb_poll(void *ud, void *turn, int wait_ms, ak_json_doc *d, ak_json **output, ak_error *err) {
    ak__remote_call *rc = (ak__remote_call *)turn;
    ak_result r = ak__remote_poll(rc, wait_ms, err);
    AK__UNUSED(ud);
    if (r == AK_PENDING) return r;
    if (r == AK_OK && !(*output = ak_json_copy(d, rc->result))) r = ak__oom(err);
    ak__remote_call_free(rc);
    return r;
}

AK_PRIVATE void ak__rb_cancel(void *ud, void *turn) {
    AK__UNUSED(ud);
    ak__remote_call_free((ak__remote_call *)turn);
}

/* POSTs {snapshotId?, sessionId?} to url: the getSnapshot and abort companions. */
AK_PRIVATE ak_result ak__remote_ids(ak_remote_agent *ra, const char *url, const char *snapshot_id,
                                    const char *session_id, ak__remote_call **rc, ak_error *err) {
    ak_json_doc tmp;
    ak_json *data;
    ak_result r;
    ak_json_doc_init(&tmp, ak_context_allocator(ra->ctx));
    data = ak_json_new_object(&tmp);
    if (snapshot_id) ak_json_set_str(&tmp, data, "snapshotId", snapshot_id);
    if (session_id) ak_json_set_str(&tmp, data, "sessionId", session_id);
    r = tmp.err ? ak__oom(err) : ak__remote_json(ra, url, data, rc, err);
    ak_json_doc_free(&tmp);
    return r;
}

AKDEF ak_result ak_remote_get_snapshot(ak_remote_agent *ra, const char *snapshot_id, const char *session_id,
                                       ak_json_doc *d, ak_json **out, ak_error *err) {
    ak__remote_call *rc;
    ak_result r;
    *out = NULL;
    if ((r = ak__remote_ids(ra, ra->snapshot_url, snapshot_id, session_id, &rc, err)) != AK_OK) return r;
    if (!(*out = ak_json_copy(d, rc->result))) r = ak__oom(err);
    ak__remote_call_free(rc);
    return r;
}

AKDEF ak_result ak_remote_abort(ak_remote_agent *ra, const char *snapshot_id, const char **previous, ak_error *err) {
    ak__remote_call *rc;
    ak_result r;
    *previous = NULL;
    if ((r = ak__remote_ids(ra, ra->abort_url, snapshot_id ? snapshot_id : "", NULL, &rc, err)) != AK_OK) return r;
    *previous = ak_snapshot_status_name(ak_snapshot_status_from_name(ak_json_get_str(rc->result, "status")));
    ak__remote_call_free(rc);
    return AK_OK;
}

AK_PRIVATE ak_result ak__rb_get_snapshot(void *ud, const char *snapshot_id, const char *session_id, ak_json_doc *d,
                                         ak_json **out, ak_error *err) {
    return ak_remote_get_snapshot((ak_remote_agent *)ud, snapshot_id, session_id, d, out, err);
}

AK_PRIVATE ak_result ak__rb_abort(void *ud, const char *snapshot_id, const char **previous, ak_error *err) {
    return ak_remote_abort((ak_remote_agent *)ud, snapshot_id, previous, err);
}

AKDEF ak_result ak_remote_agent_init(ak_remote_agent *ra, ak_context *ctx, const ak_remote_desc *desc,
                                     ak_error *err) {
    const ak_allocator *a = ak_context_allocator(ctx);
    size_t ul, sl;
    ak_url parsed;
    ak_result rc;
    ak_buf b;
    AK_MEMSET(ra, 0, sizeof *ra);
    if (!ctx || !desc || !desc->url || !desc->transport || !desc->transport->start)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "remote agent: ctx, url and transport are required");
    if ((rc = ak_url_parse(desc->url, ak__strlen(desc->url), &parsed, err)) != AK_OK) return rc;
    ra->ctx = ctx;
    ra->desc = *desc;
    /* the three URLs in one block: url, url/getSnapshot (or given), url/abort (or given) */
    ak_buf_init(&b, a);
    ak_buf_append(&b, desc->url, ak__strlen(desc->url) + 1);
    ul = b.len;
    if (desc->get_snapshot_url) ak_buf_append(&b, desc->get_snapshot_url, ak__strlen(desc->get_snapshot_url) + 1);
    else ak_buf_puts(&b, desc->url), ak_buf_append(&b, "/getSnapshot", 13);
    sl = b.len;
    if (desc->abort_url) ak_buf_append(&b, desc->abort_url, ak__strlen(desc->abort_url) + 1);
    else ak_buf_puts(&b, desc->url), ak_buf_append(&b, "/abort", 7);
    if (b.err) {
        ak_buf_free(&b);
        return ak__oom(err);
    }
    ra->urls = ak_buf_take(&b, NULL, &ra->urls_size);
    ra->turn_url = ra->urls;
    ra->snapshot_url = ra->urls + ul;
    ra->abort_url = ra->urls + sl;
    ra->backend.start = ak__rb_start;
    ra->backend.poll = ak__rb_poll;
    ra->backend.cancel = ak__rb_cancel;
    ra->backend.get_snapshot = ak__rb_get_snapshot;
    ra->backend.abort = ak__rb_abort;
    ra->backend.ud = ra;
    return AK_OK;
}

AKDEF void ak_remote_agent_free(ak_remote_agent *ra) {
    ak_free(ak_context_allocator(ra->ctx), ra->urls, ra->urls_size);
    ra->urls = NULL;
}

AKDEF ak_result ak_remote_chat(ak_chat *c, ak_remote_agent *ra, const ak_json *init, ak_error *err) {
    return ak_chat_init_backend(c, ra->ctx, &ra->backend, init, err);
}
/* ---- end src/serve.c ---- */
#endif /* src/serve.c */

#endif /* AGENTKIT_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 The agentkit.h authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/
