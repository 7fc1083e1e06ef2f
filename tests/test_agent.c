/* agent layer beyond the conformance spec: maxTurns, tool failures and schemas, tools that
   answer later, client transforms, heartbeats and expiry, the chat API, allocation failure */
#include "test.h"
#include "json_text.h"

static int64_t now_ms = 1700000000000LL;
static int64_t fake_clock(void *ud) { (void)ud; return now_ms; }
static void fake_sleep(void *ud, int64_t ms) { (void)ud; now_ms += ms; }

static void fake_context(ak_context *ctx, const ak_allocator *a) {
    ak_context_desc desc;
    memset(&desc, 0, sizeof desc);
    if (a) desc.allocator = *a;
    desc.now_ms = fake_clock;
    desc.mono_ms = fake_clock;
    desc.sleep_ms = fake_sleep;
    ak_context_init(ctx, &desc);
}

#define USER(t) "{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"" t "\"}]}}"
#define TOOLCALL(name, input) "{\"message\":{\"role\":\"model\",\"content\":[{\"toolRequest\":{\"name\":\"" name "\",\"input\":" input ",\"ref\":\"r1\"}}]},\"finishReason\":\"stop\"}"
#define ANSWER(t) "{\"message\":{\"role\":\"model\",\"content\":[{\"text\":\"" t "\"}]},\"finishReason\":\"stop\"}"

/* ---- tools ---------------------------------------------------------------------------- */

static ak_result echo_tool(ak_tool_call *c) { return ak_tool_return(c, ak_json_copy(c->doc, c->input)); }
static ak_result failing_tool(ak_tool_call *c) { return ak_tool_fail(c, AK_STATUS_PERMISSION_DENIED, "no access to %s", ak_json_get_str(c->input, "city")); }

static ak_tool_handle later_handle;
static int later_calls;
static ak_result later_tool(ak_tool_call *c) {
    later_handle = c->handle;
    later_calls++;
    return AK_PENDING; /* the host answers later */
}

/* Sets custom state and adds an artifact through the session the tool runs in. */
static ak_result session_tool(ak_tool_call *c) {
    ak_json_doc *d = c->doc;
    ak_runner_set_custom(c->session, t_parse(d, "{\"touched\":true,\"secret\":\"s3cr3t\"}"));
    ak_runner_add_artifacts(c->session, t_parse(d, "{\"name\":\"notes\",\"parts\":[{\"text\":\"from a tool\"}]}"));
    return ak_tool_return(c, ak_json_new_str(d, "ok"));
}

static ak_result slow_tool(ak_tool_call *c) {
    now_ms += 25; /* the tool takes 25 ms on the fake clock */
    return ak_tool_return(c, ak_json_new_str(c->doc, "slow done"));
}

static const ak_tool tools[] = {
    {"echo", "echoes its input", "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}",
     NULL, echo_tool, NULL, 0},
    {"fails", "always fails", NULL, NULL, failing_tool, NULL, 0},
    {"later", "answers later", NULL, NULL, later_tool, NULL, 0},
    {"session", "touches the session", NULL, NULL, session_tool, NULL, 0},
    {"slow", "takes a while", NULL, NULL, slow_tool, NULL, 0},
};

static ak_trace_fn fixture_trace; /* set by the trace test only */

typedef struct fixture {
    ak_context ctx;
    ak_programmable_model pm;
    ak_memstore store;
    ak_agent agent;
    ak_json_doc d;
} fixture;

static void fixture_init(fixture *f, const ak_allocator *a, int with_store, const ak_client_transform *t) {
    ak_agent_desc desc;
    ak_error e;
    fake_context(&f->ctx, a);
    ak_programmable_model_init(&f->pm, ak_context_allocator(&f->ctx), NULL);
    ak_memstore_init(&f->store, &f->ctx);
    ak_json_doc_init(&f->d, NULL);
    memset(&desc, 0, sizeof desc);
    desc.name = "tester";
    desc.model = &f->pm.model;
    desc.system = "Be brief.";
    desc.tools = tools;
    desc.tool_count = sizeof tools / sizeof tools[0];
    if (with_store) desc.store = &f->store.store;
    if (t) desc.transform = *t;
    desc.trace = fixture_trace;
    desc.trace_ud = f;
    CHECK_OK(ak_agent_init(&f->agent, &f->ctx, &desc, &e));
}

static void fixture_free(fixture *f) {
    ak_agent_free(&f->agent);
    ak_memstore_free(&f->store);
    ak_programmable_model_free(&f->pm);
    ak_json_doc_free(&f->d);
}

/* One invocation with one input; returns the output (in f->d). */
static ak_json *run(fixture *f, const char *init, const char *input, const char *responses, ak_error *e) {
    ak_json *out = NULL, *inputs = ak_json_new_array(&f->d);
    ak_json_push(inputs, t_parse(&f->d, input));
    ak_programmable_model_set(&f->pm, t_parse(&f->d, responses), NULL);
    if (ak_agent_run(&f->agent, init ? t_parse(&f->d, init) : NULL, inputs, NULL, &f->d, &out, e) != AK_OK) return NULL;
    return out;
}

static void max_turns_fails_the_turn_with_aborted(void) {
    fixture f;
    ak_error e;
    ak_json *out;
    fixture_init(&f, NULL, 0, NULL);
    out = run(&f, NULL, USER("loop"),
              "[" TOOLCALL("echo", "{\"city\":\"a\"}") "," TOOLCALL("echo", "{\"city\":\"a\"}") "," TOOLCALL("echo", "{\"city\":\"a\"}")
              "," TOOLCALL("echo", "{\"city\":\"a\"}") "," TOOLCALL("echo", "{\"city\":\"a\"}") "," TOOLCALL("echo", "{\"city\":\"a\"}") "]",
              &e);
    CHECK(out != NULL);
    CHECK_STR(ak_json_get_str(out, "finishReason"), "failed");
    CHECK_STR(ak_json_str(ak_json_path(out, "error.status")), "ABORTED");
    CHECK_STR(ak_json_str(ak_json_path(out, "error.message")), "ABORTED: Exceeded maximum tool call iterations (5)");
    /* the last good state is the one before the turn: nothing */
    CHECK_EQ(ak_json_len(ak_json_path(out, "state.messages")), 0);
    CHECK_EQ(f.pm.next, 6);
    fixture_free(&f);
}

static void tool_failures_and_schemas_fail_the_turn(void) {
    fixture f;
    ak_error e;
    ak_json *out;
    fixture_init(&f, NULL, 0, NULL);
    out = run(&f, NULL, USER("x"), "[" TOOLCALL("fails", "{\"city\":\"Oslo\"}") "]", &e);
    CHECK_STR(ak_json_str(ak_json_path(out, "error.status")), "PERMISSION_DENIED");
    CHECK_STR(ak_json_str(ak_json_path(out, "error.message")), "no access to Oslo");
    out = run(&f, NULL, USER("x"), "[" TOOLCALL("nope", "{}") "]", &e);
    CHECK_STR(ak_json_str(ak_json_path(out, "error.message")), "NOT_FOUND: Tool nope not found");
    out = run(&f, NULL, USER("x"), "[" TOOLCALL("echo", "{\"city\":7}") "]", &e);
    CHECK_STR(ak_json_str(ak_json_path(out, "error.status")), "INVALID_ARGUMENT");
    CHECK(strstr(ak_json_str_or(ak_json_path(out, "error.message"), ""), "/city") != NULL);
    /* a valid call: the tool message and the answer are in the state */
    out = run(&f, NULL, USER("x"), "[" TOOLCALL("echo", "{\"city\":\"Oslo\"}") "," ANSWER("done") "]", &e);
    CHECK_STR(ak_json_get_str(out, "finishReason"), "stop");
    CHECK_STR(js(ak_json_path(out, "state.messages[2]")),
              "{\"role\":\"tool\",\"content\":[{\"toolResponse\":{\"name\":\"echo\",\"ref\":\"r1\",\"output\":{\"city\":\"Oslo\"}}}]}");
    /* the model saw the system prompt, tagged as Genkit tags it, and the tool definitions */
    CHECK_STR(js(ak_json_path(f.pm.last_request, "messages[0]")),
              "{\"role\":\"system\",\"content\":[{\"text\":\"Be brief.\"}],\"metadata\":{\"agentPreamble\":true}}");
    CHECK_STR(ak_json_str(ak_json_path(f.pm.last_request, "tools[0].name")), "echo");
    CHECK_EQ(ak_json_len(ak_json_get(f.pm.last_request, "messages")), 4);
    fixture_free(&f);
}

static void tools_can_answer_later_while_the_host_pumps(void) {
    fixture f;
    ak_invocation *inv;
    ak_error e;
    ak_tool_handle stale;
    int steps;
    fixture_init(&f, NULL, 0, NULL);
    ak_programmable_model_set(&f.pm, t_parse(&f.d, "[" TOOLCALL("later", "{}") "," ANSWER("thanks") "]"), NULL);
    CHECK_OK(ak_agent_invoke(&f.agent, NULL, NULL, &inv, &e));
    CHECK_OK(ak_invocation_send(inv, t_parse(&f.d, USER("go")), &e));
    ak_invocation_close(inv);
    for (steps = 0; steps < 5; steps++) CHECK_EQ(ak_invocation_step(inv, 0, &e), AK_PENDING);
    CHECK_EQ(later_calls, 1);
    CHECK_OK(ak_agent_tool_return(&f.agent, later_handle, t_parse(&f.d, "{\"answered\":\"later\"}")));
    stale = later_handle;
    CHECK_EQ(ak_agent_tool_return(&f.agent, stale, NULL), AK_ERR_NOT_FOUND); /* used up */
    CHECK_OK(ak_invocation_step(inv, 0, &e));
    CHECK_STR(ak_json_str(ak_json_path(ak_invocation_output(inv), "message.content[0].text")), "thanks");
    CHECK_STR(js(ak_json_path(ak_invocation_output(inv), "state.messages[2].content[0].toolResponse.output")),
              "{\"answered\":\"later\"}");
    ak_invocation_free(inv);
    /* a turn abandoned while its tool waits: the handle goes stale */
    ak_programmable_model_set(&f.pm, t_parse(&f.d, "[" TOOLCALL("later", "{}") "]"), NULL);
    CHECK_OK(ak_agent_invoke(&f.agent, NULL, NULL, &inv, &e));
    CHECK_OK(ak_invocation_send(inv, t_parse(&f.d, USER("go")), &e));
    CHECK_EQ(ak_invocation_step(inv, 0, &e), AK_PENDING);
    ak_invocation_free(inv);
    CHECK_EQ(ak_agent_tool_return(&f.agent, later_handle, NULL), AK_ERR_NOT_FOUND);
    fixture_free(&f);
}

/* Drops "secret" from the custom state clients see; drops every artifact chunk. */
static ak_result redact_state(void *ud, ak_json_doc *d, ak_json **state) {
    (void)ud, (void)d;
    ak_json_remove(ak_json_get(*state, "custom"), "secret");
    return AK_OK;
}
static int drop_artifacts(void *ud, ak_json_doc *d, ak_json **chunk) {
    (void)ud, (void)d;
    return ak_json_get(*chunk, "artifact") == NULL;
}

static char chunk_log[8192];
static void log_chunk(void *ud, const ak_json *chunk) {
    (void)ud;
    strcat(chunk_log, js(chunk));
    strcat(chunk_log, "\n");
}

static void client_transforms_redact_state_and_chunks(void) {
    fixture f;
    ak_client_transform t;
    ak_invoke_opts opts;
    ak_json *out, *inputs, *snap;
    ak_error e;
    memset(&t, 0, sizeof t);
    t.state = redact_state;
    t.chunk = drop_artifacts;
    fixture_init(&f, NULL, 0, &t);
    memset(&opts, 0, sizeof opts);
    opts.on_chunk = log_chunk;
    chunk_log[0] = 0;
    inputs = ak_json_new_array(&f.d);
    ak_json_push(inputs, t_parse(&f.d, USER("go")));
    ak_programmable_model_set(&f.pm, t_parse(&f.d, "[" TOOLCALL("session", "{}") "," ANSWER("ok") "]"), NULL);
    CHECK_OK(ak_agent_run(&f.agent, NULL, inputs, &opts, &f.d, &out, &e));
    CHECK_STR(js(ak_json_path(out, "state.custom")), "{\"touched\":true}");
    CHECK(strstr(chunk_log, "secret") == NULL);
    CHECK(strstr(chunk_log, "artifact") == NULL);
    CHECK(strstr(chunk_log, "{\"customPatch\":[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"touched\":true}}]}") != NULL);
    /* the next turn starts from the client's (redacted) state */
    fixture_free(&f);

    /* server-managed: the stored snapshot keeps the secret, getSnapshot hides it */
    fixture_init(&f, NULL, 1, &t);
    out = run(&f, NULL, USER("go"), "[" TOOLCALL("session", "{}") "," ANSWER("ok") "]", &e);
    CHECK(ak_json_get_str(out, "snapshotId") != NULL);
    CHECK_OK(ak_agent_get_snapshot(&f.agent, ak_json_get_str(out, "snapshotId"), NULL, NULL, &f.d, &snap, &e));
    CHECK_STR(js(ak_json_path(snap, "state.custom")), "{\"touched\":true}");
    {
        ak_snapshot *raw = NULL;
        CHECK_OK(f.store.store.get(&f.store.store, ak_json_get_str(out, "snapshotId"), NULL, NULL, &raw, &e));
        CHECK(raw && strstr(js(raw->state.custom->value), "s3cr3t") != NULL);
        ak_snapshot_release(raw);
    }
    fixture_free(&f);
}

/* A custom turn that waits (until aborted or 100 s later). */
static ak_result waiting_turn(ak_runner *r, const ak_json *in, const ak_turn_info *t, void *ud) {
    int64_t *until = (int64_t *)ak_runner_turn_state(r, sizeof *until);
    (void)in, (void)t, (void)ud;
    if (!*until) *until = ak_mono_ms(ak_runner_context(r)) + 100000;
    return ak_runner_wait_until(r, *until) == AK_PENDING ? AK_PENDING : AK_OK;
}

static void heartbeats_and_expiry_follow_the_clock(void) {
    ak_context ctx;
    ak_memstore store;
    ak_agent agent;
    ak_agent_desc desc;
    ak_json_doc d;
    ak_json *out, *inputs, *snap;
    ak_error e;
    const char *prev;
    char id[64];
    fake_context(&ctx, NULL);
    ak_memstore_init(&store, &ctx);
    ak_json_doc_init(&d, NULL);
    memset(&desc, 0, sizeof desc);
    desc.name = "waiter";
    desc.turn = waiting_turn;
    desc.store = &store.store;
    CHECK_OK(ak_agent_init(&agent, &ctx, &desc, &e));
    inputs = t_parse(&d, "[{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"go\"}]},\"detach\":true}]");
    CHECK_OK(ak_agent_run(&agent, NULL, inputs, NULL, &d, &out, &e));
    CHECK_STR(ak_json_get_str(out, "finishReason"), "detached");
    snprintf(id, sizeof id, "%s", ak_json_get_str(out, "snapshotId"));
    /* 40 s of pumping: one heartbeat at 30 s */
    now_ms += 40000;
    CHECK_EQ(ak_agent_pump(&agent, 0), AK_PENDING);
    CHECK_OK(ak_agent_get_snapshot(&agent, id, NULL, NULL, &d, &snap, &e));
    CHECK_STR(ak_json_get_str(snap, "status"), "pending");
    CHECK(ak_json_get(snap, "heartbeatAt") != NULL);
    /* the worker stops beating (nobody pumps) for 61 s: readers see expired, the row is untouched */
    now_ms += 61000;
    CHECK_OK(ak_agent_get_snapshot(&agent, id, NULL, NULL, &d, &snap, &e));
    CHECK_STR(ak_json_get_str(snap, "status"), "expired");
    /* abort still sees the stored status */
    CHECK_OK(ak_agent_abort(&agent, id, NULL, &prev, &e));
    CHECK_STR(prev, "pending");
    CHECK_OK(ak_agent_get_snapshot(&agent, id, NULL, NULL, &d, &snap, &e));
    CHECK_STR(ak_json_get_str(snap, "status"), "aborted");
    /* the aborted worker stops at its next step and writes nothing more */
    CHECK_OK(ak_agent_pump(&agent, 0));
    CHECK_OK(ak_agent_get_snapshot(&agent, id, NULL, NULL, &d, &snap, &e));
    CHECK_STR(ak_json_get_str(snap, "status"), "aborted");
    /* misuse: getSnapshot with both or neither id, abort of a missing snapshot */
    CHECK_EQ(ak_agent_get_snapshot(&agent, id, "s", NULL, &d, &snap, &e), AK_ERR_AGENT);
    CHECK_EQ(e.status, AK_STATUS_INVALID_ARGUMENT);
    CHECK_EQ(ak_agent_get_snapshot(&agent, "missing", NULL, NULL, &d, &snap, &e), AK_ERR_AGENT);
    CHECK_EQ(e.status, AK_STATUS_NOT_FOUND);
    CHECK_STR(e.message, "Snapshot 'missing' not found for agent 'waiter'.");
    CHECK_OK(ak_agent_abort(&agent, "missing", NULL, &prev, &e));
    CHECK(prev == NULL);
    ak_agent_free(&agent);
    ak_memstore_free(&store);
    ak_json_doc_free(&d);
}

/* ---- the chat API on the scripted model ----------------------------------------------- */

static ak_result weather(ak_tool_call *c) {
    ak_json *o = ak_json_new_object(c->doc);
    ak_json_set_str(c->doc, o, "city", ak_json_get_str(c->input, "city"));
    ak_json_set_int(c->doc, o, "tempC", 21);
    ak_json_set_str(c->doc, o, "sky", "clear");
    return ak_tool_return(c, o);
}

static ak_result delete_file(ak_tool_call *c) {
    ak_json *o;
    if (!c->resumed) {
        o = ak_json_new_object(c->doc);
        ak_json_set_str(c->doc, o, "reason", "confirm delete");
        ak_json_set_str(c->doc, o, "path", ak_json_get_str(c->input, "path"));
        return ak_tool_interrupt(c, o);
    }
    o = ak_json_new_object(c->doc);
    ak_json_set_str(c->doc, o, "deleted", ak_json_get_str(c->input, "path"));
    ak_json_set(c->doc, o, "resumed", ak_json_copy(c->doc, c->resumed));
    return ak_tool_return(c, o);
}

static const ak_tool interop_tools[] = {
    {"getWeather", "Weather", "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}",
     NULL, weather, NULL, 0},
    {"approveTransfer", "Approve", "{\"type\":\"object\",\"properties\":{\"amount\":{\"type\":\"number\"}}}",
     "{\"type\":\"object\",\"properties\":{\"approved\":{\"type\":\"boolean\"}}}", NULL, NULL, 1},
    {"deleteFile", "Delete", "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"}}}", NULL, delete_file, NULL, 0},
};

static void chat_api_runs_turns_resumes_and_loads(void) {
    ak_context ctx;
    ak_model model;
    ak_memstore store;
    ak_agent agent;
    ak_agent_desc desc;
    ak_chat chat, again;
    ak_response r;
    ak_error e;
    ak_json_doc d;
    char snap1[AK_ID_MAX + 1];
    fake_context(&ctx, NULL);
    ak_scripted_model_init(&model);
    ak_memstore_init(&store, &ctx);
    ak_json_doc_init(&d, NULL);
    memset(&desc, 0, sizeof desc);
    desc.name = "interruptAgent";
    desc.model = &model;
    desc.system = "You are a deterministic test agent.";
    desc.tools = interop_tools;
    desc.tool_count = 3;
    desc.store = &store.store;
    CHECK_OK(ak_agent_init(&agent, &ctx, &desc, &e));
    CHECK_OK(ak_chat_init(&chat, &agent, NULL, &e));

    CHECK_OK(ak_chat_send(&chat, "hello", &r, &e));
    CHECK_STR(r.text, "echo: hello");
    CHECK_EQ(r.finish_reason, AK_FINISH_STOP);
    CHECK(r.snapshot_id != NULL && ak_chat_snapshot_id(&chat) != NULL);
    snprintf(snap1, sizeof snap1, "%s", r.snapshot_id);
    ak_response_free(&r);

    CHECK_OK(ak_chat_send(&chat, "weather Oslo", &r, &e));
    CHECK_STR(r.text, "tool result: [{\"city\":\"Oslo\",\"tempC\":21,\"sky\":\"clear\"}]");
    ak_response_free(&r);

    /* an interrupt, answered with respond */
    CHECK_OK(ak_chat_send(&chat, "transfer 100", &r, &e));
    CHECK_EQ(r.finish_reason, AK_FINISH_INTERRUPTED);
    CHECK_EQ(ak_json_len(r.interrupts), 1);
    CHECK_STR(js(ak_json_path(r.interrupts, "[0].toolRequest")), "{\"name\":\"approveTransfer\",\"ref\":\"t1\",\"input\":{\"amount\":100}}");
    ak_response_free(&r);
    CHECK_OK(ak_chat_resume(&chat, t_parse(&d, "[{\"toolResponse\":{\"name\":\"approveTransfer\",\"ref\":\"t1\",\"output\":{\"approved\":true}}}]"),
                            NULL, &r, &e));
    CHECK_STR(r.text, "tool result: [{\"approved\":true}]");
    ak_response_free(&r);

    /* an interrupt, answered with restart + resumed; then a forged restart */
    CHECK_OK(ak_chat_send(&chat, "delete /tmp/x", &r, &e));
    CHECK_STR(js(ak_json_path(r.interrupts, "[0].metadata.interrupt")), "{\"reason\":\"confirm delete\",\"path\":\"/tmp/x\"}");
    ak_response_free(&r);
    CHECK_EQ(ak_chat_resume(&chat, NULL, t_parse(&d, "[{\"toolRequest\":{\"name\":\"deleteFile\",\"ref\":\"d1\",\"input\":{\"path\":\"/etc\"}},"
                                                   "\"metadata\":{\"resumed\":{\"ok\":1}}}]"), &r, &e), AK_ERR_AGENT);
    CHECK_EQ(e.status, AK_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(e.message, "modified inputs") != NULL);
    CHECK_EQ(r.finish_reason, AK_FINISH_FAILED);
    ak_response_free(&r);
    CHECK_OK(ak_chat_resume(&chat, NULL, t_parse(&d, "[{\"toolRequest\":{\"name\":\"deleteFile\",\"ref\":\"d1\",\"input\":{\"path\":\"/tmp/x\"}},"
                                               "\"metadata\":{\"resumed\":{\"ok\":1}}}]"), &r, &e));
    CHECK_STR(r.text, "tool result: [{\"deleted\":\"/tmp/x\",\"resumed\":{\"ok\":1}}]");
    ak_response_free(&r);

    /* model failure: graceful, status and message kept, last good snapshot stays */
    CHECK_EQ(ak_chat_send(&chat, "modelfail", &r, &e), AK_ERR_AGENT);
    CHECK_EQ(e.status, AK_STATUS_RESOURCE_EXHAUSTED);
    CHECK_STR(e.message, "RESOURCE_EXHAUSTED: model on fire");
    ak_response_free(&r);

    /* a branch from the first snapshot sees only that history */
    CHECK_OK(ak_chat_load(&again, &agent, snap1, NULL, &e));
    CHECK_OK(ak_chat_send(&again, "count", &r, &e));
    CHECK_STR(r.text, "history=3");
    ak_response_free(&r);
    ak_chat_free(&again);
    CHECK_OK(ak_chat_load(&again, &agent, NULL, ak_chat_session_id(&chat), &e));
    CHECK_OK(ak_chat_send(&again, "count", &r, &e));
    CHECK(strcmp(r.text, "history=3") != 0); /* the newest leaf is the other branch */
    ak_response_free(&r);
    ak_chat_free(&again);
    CHECK_EQ(ak_chat_load(&again, &agent, "no-such-snapshot", NULL, &e), AK_ERR_AGENT);
    CHECK_EQ(e.status, AK_STATUS_NOT_FOUND);

    ak_chat_free(&chat);
    ak_agent_free(&agent);
    ak_memstore_free(&store);
    ak_json_doc_free(&d);
}

static void chat_streams_and_tracks_client_state(void) {
    ak_context ctx;
    ak_model model;
    ak_agent agent;
    ak_agent_desc desc;
    ak_chat chat;
    ak_response r;
    ak_error e;
    int polls = 0;
    ak_context_init(&ctx, NULL);
    ak_scripted_model_init(&model);
    memset(&desc, 0, sizeof desc);
    desc.name = "chatAgent";
    desc.model = &model;
    CHECK_OK(ak_agent_init(&agent, &ctx, &desc, &e));
    CHECK_OK(ak_chat_init(&chat, &agent, NULL, &e));
    chunk_log[0] = 0;
    {
        ak_json_doc d;
        ak_json_doc_init(&d, NULL);
        CHECK_OK(ak_chat_start(&chat, t_parse(&d, USER("stream a b c")), log_chunk, NULL, &e));
        while (ak_chat_poll(&chat, 0, &r, &e) == AK_PENDING) polls++;
        ak_json_doc_free(&d);
    }
    CHECK_STR(chunk_log, "{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"a \"}]}}\n"
                         "{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"b \"}]}}\n"
                         "{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"c\"}]}}\n"
                         "{\"turnEnd\":{\"finishReason\":\"stop\"}}\n");
    CHECK_STR(r.text, "a b c");
    ak_response_free(&r);
    CHECK_OK(ak_chat_send(&chat, "count", &r, &e));
    CHECK_STR(r.text, "history=3");
    CHECK_EQ(ak_json_len(ak_chat_messages(&chat)), 4);
    ak_response_free(&r);
    /* client-managed: snapshots and aborts are misuse */
    {
        const char *prev;
        CHECK_EQ(ak_agent_abort(&agent, "x", NULL, &prev, &e), AK_ERR_AGENT);
        CHECK_EQ(e.status, AK_STATUS_FAILED_PRECONDITION);
    }
    ak_chat_free(&chat);
    ak_agent_free(&agent);
}

/* A whole conversation, failing the Nth allocation for every N: errors or success, no leak. */
static int conversation(const ak_allocator *a) {
    ak_context ctx;
    ak_model model;
    ak_memstore store;
    ak_agent agent;
    ak_agent_desc desc;
    ak_chat chat;
    ak_response r;
    ak_error e;
    int ok = 0;
    fake_context(&ctx, a);
    ak_scripted_model_init(&model);
    ak_memstore_init(&store, &ctx);
    memset(&desc, 0, sizeof desc);
    desc.name = "interruptAgent";
    desc.model = &model;
    desc.tools = interop_tools;
    desc.tool_count = 3;
    desc.store = &store.store;
    if (ak_agent_init(&agent, &ctx, &desc, &e) == AK_OK) {
        if (ak_chat_init(&chat, &agent, NULL, &e) == AK_OK) {
            if (ak_chat_send(&chat, "hello", &r, &e) == AK_OK) ok++;
            ak_response_free(&r);
            if (ak_chat_send(&chat, "both", &r, &e) == AK_OK && r.finish_reason == AK_FINISH_INTERRUPTED) ok++;
            ak_response_free(&r);
            if (ak_chat_send(&chat, "count", &r, &e) == AK_OK) ok++;
            ak_response_free(&r);
        }
        ak_chat_free(&chat);
        ak_agent_free(&agent);
    }
    ak_memstore_free(&store);
    return ok;
}

static void conversation_survives_every_allocation_failure(void) {
    t_alloc ta;
    long long n, total;
    int completed = 0;
    t_alloc_init(&ta, 0);
    CHECK_EQ(conversation(&ta.a), 3);
    total = ta.count;
    CHECK_EQ(ta.live, 0);
    for (n = 1; n <= total; n++) {
        t_alloc_init(&ta, n);
        completed += conversation(&ta.a) == 3;
        CHECK_MSG(ta.live == 0, "failing allocation %lld of %lld leaked %lld bytes", n, total, ta.live);
    }
    CHECK(completed < total); /* failures did happen */
}

/* ---- trace events --------------------------------------------------------------------- */

static char trace_log[2048];

static void record_trace(void *ud, ak_trace_kind kind, int end, const char *name, int64_t duration_ms, ak_status st,
                         const ak_json *attrs) {
    static const char *kinds[] = {"invocation", "turn", "model", "tool"};
    char line[256];
    (void)ud;
    if (!end) snprintf(line, sizeof line, "+%s %s%s%s\n", kinds[kind], name, attrs ? " " : "", attrs ? js(attrs) : "");
    else if (kind == AK_TRACE_MODEL) snprintf(line, sizeof line, "-%s %s %lldms %s\n", kinds[kind], name, (long long)duration_ms, ak_status_name(st));
    else snprintf(line, sizeof line, "-%s %s %lldms %s%s%s\n", kinds[kind], name, (long long)duration_ms, ak_status_name(st),
                  attrs ? " " : "", attrs ? js(attrs) : "");
    strncat(trace_log, line, sizeof trace_log - strlen(trace_log) - 1);
}

static void trace_spans_nest_and_time_each_step(void) {
    fixture f;
    ak_error e;
    ak_json *out;
    fixture_trace = record_trace;
    fixture_init(&f, NULL, 0, NULL);
    trace_log[0] = 0;
    out = run(&f, NULL, USER("x"),
              "[{\"message\":{\"role\":\"model\",\"content\":[{\"toolRequest\":{\"name\":\"slow\",\"input\":{},\"ref\":\"a\"}},"
              "{\"toolRequest\":{\"name\":\"echo\",\"input\":{\"city\":\"Oslo\"},\"ref\":\"b\"}}]},\"finishReason\":\"stop\"},"
              ANSWER("done") "]", &e);
    CHECK_STR(ak_json_get_str(out, "finishReason"), "stop");
    CHECK_STR(trace_log, "+invocation tester\n+turn runTurn\n+model programmableModel\n-model programmableModel 0ms OK\n"
                         "+tool slow {}\n+tool echo {\"city\":\"Oslo\"}\n"
                         "-tool slow 25ms OK \"slow done\"\n-tool echo 0ms OK {\"city\":\"Oslo\"}\n"
                         "+model programmableModel\n-model programmableModel 0ms OK\n-turn runTurn 25ms OK\n-invocation tester 25ms OK\n");
    /* a tool whose input fails its schema: its span still closes, with the status */
    trace_log[0] = 0;
    out = run(&f, NULL, USER("x"), "[" TOOLCALL("echo", "{\"town\":1}") "]", &e);
    CHECK_STR(ak_json_get_str(out, "finishReason"), "failed");
    CHECK(strstr(trace_log, "+tool echo {\"town\":1}\n-tool echo 0ms INVALID_ARGUMENT\n") != NULL);
    CHECK(strstr(trace_log, "-turn runTurn 0ms INVALID_ARGUMENT\n") != NULL);
    fixture_free(&f);
    fixture_trace = NULL;
}

/* ---- custom state is checked when it is set ---------------------------------------------- */

static ak_result set_bad_then_good(ak_runner *r, const ak_json *input, const ak_turn_info *turn, void *ud) {
    ak_json_doc *d = ak_runner_doc(r);
    int *results = (int *)ud;
    (void)input, (void)turn;
    results[0] = ak_runner_set_custom(r, t_parse(d, "{\"count\":\"many\"}")); /* wrong type */
    results[1] = ak_runner_set_custom(r, NULL);
    results[2] = ak_runner_custom(r) == NULL;                                    /* unchanged */
    results[3] = ak_runner_set_custom(r, t_parse(d, "{\"count\":3}"));
    return AK_OK;
}

static void custom_state_is_checked_when_set(void) {
    ak_context ctx;
    ak_agent agent;
    ak_agent_desc desc;
    ak_json_doc d;
    ak_json *out = NULL, *inputs;
    ak_error e;
    int results[4] = {0, 0, 0, 0};
    fake_context(&ctx, NULL);
    ak_json_doc_init(&d, NULL);
    memset(&desc, 0, sizeof desc);
    desc.name = "counter";
    desc.turn = set_bad_then_good;
    desc.ud = results;
    desc.state_schema = "{\"type\":\"object\",\"properties\":{\"count\":{\"type\":\"integer\"}}}";
    CHECK_OK(ak_agent_init(&agent, &ctx, &desc, &e));
    inputs = ak_json_new_array(&d);
    ak_json_push(inputs, ak_input_text(&d, "go"));
    CHECK_STR(js(ak_json_at(inputs, 0)), USER("go"));
    CHECK_OK(ak_agent_run(&agent, NULL, inputs, NULL, &d, &out, &e));
    CHECK_EQ(results[0], AK_ERR_SCHEMA);
    CHECK_EQ(results[1], AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(results[2], 1);
    CHECK_EQ(results[3], AK_OK);
    CHECK_STR(js(ak_json_path(out, "state.custom")), "{\"count\":3}");
    ak_agent_free(&agent);
    ak_json_doc_free(&d);
}

int main(void) {
    RUN(max_turns_fails_the_turn_with_aborted);
    RUN(tool_failures_and_schemas_fail_the_turn);
    RUN(tools_can_answer_later_while_the_host_pumps);
    RUN(client_transforms_redact_state_and_chunks);
    RUN(heartbeats_and_expiry_follow_the_clock);
    RUN(chat_api_runs_turns_resumes_and_loads);
    RUN(chat_streams_and_tracks_client_state);
    RUN(conversation_survives_every_allocation_failure);
    RUN(trace_spans_nest_and_time_each_step);
    RUN(custom_state_is_checked_when_set);
    return t_summary();
}
