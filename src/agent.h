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
