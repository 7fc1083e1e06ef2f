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
