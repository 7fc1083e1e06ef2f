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
