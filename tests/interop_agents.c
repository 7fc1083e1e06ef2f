/* The interop agents (../shared/interop-agents.md): chatAgent, toolAgent, interruptAgent,
   storeAgent, stateAgent, clientStateAgent, on the scripted model. */
#include "interop_agents.h"
#include <stdio.h>
#include <string.h>

#define SYSTEM "You are a deterministic test agent."
#define SLOW_MS 10000

/* getWeather: {city} -> {city, tempC: 21, sky: "clear"} */
static ak_result get_weather(ak_tool_call *c) {
    ak_json *o = ak_json_new_object(c->doc);
    ak_json_set_str(c->doc, o, "city", ak_json_get_str(c->input, "city"));
    ak_json_set_int(c->doc, o, "tempC", 21);
    ak_json_set_str(c->doc, o, "sky", "clear");
    return ak_tool_return(c, o);
}

/* deleteFile: interrupts with {reason, path} unless restarted with metadata.resumed. */
static ak_result delete_file(ak_tool_call *c) {
    ak_json *o = ak_json_new_object(c->doc);
    if (!c->resumed) {
        ak_json_set_str(c->doc, o, "reason", "confirm delete");
        ak_json_set_str(c->doc, o, "path", ak_json_get_str(c->input, "path"));
        return ak_tool_interrupt(c, o);
    }
    ak_json_set_str(c->doc, o, "deleted", ak_json_get_str(c->input, "path"));
    ak_json_set(c->doc, o, "resumed", ak_json_copy(c->doc, c->resumed));
    return ak_tool_return(c, o);
}

static const ak_tool tools[] = {
    {"getWeather", "Get the weather for a city.",
     "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}", NULL, get_weather,
     NULL, 0},
    {"approveTransfer", "Ask a human to approve a money transfer.",
     "{\"type\":\"object\",\"properties\":{\"amount\":{\"type\":\"number\"}},\"required\":[\"amount\"]}",
     "{\"type\":\"object\",\"properties\":{\"approved\":{\"type\":\"boolean\"}},\"required\":[\"approved\"]}", NULL, NULL,
     1},
    {"deleteFile", "Delete a file (asks for confirmation first).",
     "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"}},\"required\":[\"path\"]}", NULL, delete_file,
     NULL, 0},
};

/* The custom handler's per-turn progress. */
typedef struct state_turn {
    int step;
    int64_t counter;
    int64_t until;
    char text[256];
} state_turn;

static ak_result set_custom(ak_runner *r, int64_t counter, const char *status) {
    ak_json_doc *d = ak_runner_doc(r);
    ak_json *c = ak_json_new_object(d);
    ak_json_set_int(d, c, "counter", counter);
    ak_json_set_str(d, c, "status", status);
    return d->err ? d->err : ak_runner_set_custom(r, c);
}

/* Steps 1-3: text, {counter+1, working}, the "working on" chunk. */
static ak_result state_begin(ak_runner *r, const ak_json *input, state_turn *st) {
    ak_json_doc *d = ak_runner_doc(r);
    const ak_json *msg = ak_json_get(input, "message");
    ak_json *chunk = ak_json_new_object(d), *content = ak_json_new_array(d);
    ak_buf text;
    size_t b, e;
    char line[300];
    ak_buf_init(&text, NULL);
    if (msg) ak_msg_text(msg, &text);
    else ak_buf_puts(&text, "resume");
    for (b = 0; b < text.len && (text.ptr[b] == ' ' || text.ptr[b] == '\n' || text.ptr[b] == '\t'); b++) {
    }
    for (e = text.len; e > b && (text.ptr[e - 1] == ' ' || text.ptr[e - 1] == '\n' || text.ptr[e - 1] == '\t'); e--) {
    }
    if (e - b >= sizeof st->text) e = b + sizeof st->text - 1;
    if (e > b) memcpy(st->text, text.ptr + b, e - b);
    st->text[e - b] = 0;
    ak_buf_free(&text);
    st->counter = ak_json_int_or(ak_json_get(ak_runner_custom(r), "counter"), 0) + 1;
    if (set_custom(r, st->counter, "working") != AK_OK) return ak_runner_fail(r, AK_STATUS_INTERNAL, "out of memory");
    snprintf(line, sizeof line, "working on %s", st->text);
    ak_json_push(content, ak_part_text(d, line));
    ak_json_set(d, chunk, "content", content);
    return ak_runner_send_chunk(r, chunk);
}

/* Steps 6-8: status done, the report artifact, the counter message. */
static ak_result state_end(ak_runner *r, const ak_turn_info *turn, state_turn *st) {
    ak_json_doc *d = ak_runner_doc(r);
    ak_json *art = ak_json_new_object(d), *parts = ak_json_new_array(d), *msg;
    char name[64], line[96];
    set_custom(r, st->counter, "done");
    snprintf(name, sizeof name, "report-%lld.md", (long long)st->counter);
    snprintf(line, sizeof line, "report %lld", (long long)st->counter);
    ak_json_set_str(d, art, "name", name);
    ak_json_push(parts, ak_part_text(d, line));
    ak_json_set(d, art, "parts", parts);
    ak_runner_add_artifacts(r, art);
    snprintf(line, sizeof line, "counter=%lld turn=%d", (long long)st->counter, turn->turn_index);
    msg = ak_msg_new(d, "model");
    ak_msg_add(msg, ak_part_text(d, line));
    if (d->err || ak_runner_add_message(r, msg) != AK_OK) return ak_runner_fail(r, AK_STATUS_INTERNAL, "out of memory");
    ak_runner_set_finish_reason(r, AK_FINISH_STOP);
    return AK_OK;
}

static ak_result state_turn_fn(ak_runner *r, const ak_json *input, const ak_turn_info *turn, void *ud) {
    state_turn *st = (state_turn *)ak_runner_turn_state(r, sizeof *st);
    ak_result rc;
    (void)ud;
    if (!st) return ak_runner_fail(r, AK_STATUS_INTERNAL, "out of memory");
    if (st->step == 0) {
        if ((rc = state_begin(r, input, st)) != AK_OK) return rc;
        st->step = 1;
        st->until = ak_mono_ms(ak_runner_context(r)) + SLOW_MS;
    }
    if (strcmp(st->text, "slow") == 0) {
        rc = ak_runner_wait_until(r, st->until);
        if (rc == AK_PENDING) return rc;
        if (rc != AK_OK) return ak_runner_fail(r, AK_STATUS_CANCELLED, "The agent run was aborted.");
    }
    if (strcmp(st->text, "fail") == 0) return ak_runner_fail(r, AK_STATUS_INTERNAL, "intentional failure");
    return state_end(r, turn, st);
}

static ak_result add(interop_agents *ia, int i, ak_context *ctx, const char *name, ak_agent_desc *d) {
    ak_error e;
    d->name = name;
    ia->list[i] = &ia->agents[i];
    return ak_agent_init(&ia->agents[i], ctx, d, &e);
}

static void prompt_desc(interop_agents *ia, ak_agent_desc *d, size_t tool_count, ak_store *store) {
    memset(d, 0, sizeof *d);
    d->model = &ia->model;
    d->system = SYSTEM;
    d->tools = tool_count ? tools : NULL;
    d->tool_count = tool_count;
    d->store = store;
}

static void custom_desc(ak_agent_desc *d, ak_store *store) {
    memset(d, 0, sizeof *d);
    d->turn = state_turn_fn;
    d->store = store;
    d->state_schema = "{\"type\":\"object\",\"properties\":{\"counter\":{\"type\":\"number\"},\"status\":{\"type\":\"string\"}}}";
}

ak_result interop_agents_init(interop_agents *ia, ak_context *ctx) {
    ak_agent_desc d;
    ak_result rc = AK_OK;
    int i;
    memset(ia, 0, sizeof *ia);
    ak_scripted_model_init(&ia->model);
    for (i = 0; i < 3; i++) ak_memstore_init(&ia->stores[i], ctx);
    prompt_desc(ia, &d, 0, NULL);
    if (!rc) rc = add(ia, 0, ctx, "chatAgent", &d);
    prompt_desc(ia, &d, 1, NULL);
    if (!rc) rc = add(ia, 1, ctx, "toolAgent", &d);
    prompt_desc(ia, &d, 3, &ia->stores[0].store);
    if (!rc) rc = add(ia, 2, ctx, "interruptAgent", &d);
    prompt_desc(ia, &d, 0, &ia->stores[1].store);
    if (!rc) rc = add(ia, 3, ctx, "storeAgent", &d);
    custom_desc(&d, &ia->stores[2].store);
    if (!rc) rc = add(ia, 4, ctx, "stateAgent", &d);
    custom_desc(&d, NULL);
    if (!rc) rc = add(ia, 5, ctx, "clientStateAgent", &d);
    return rc;
}

void interop_agents_free(interop_agents *ia) {
    int i;
    for (i = 0; i < INTEROP_AGENT_COUNT; i++)
        if (ia->agents[i].ctx) ak_agent_free(&ia->agents[i]);
    for (i = 0; i < 3; i++) ak_memstore_free(&ia->stores[i]);
}
