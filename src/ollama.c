/* >>ollama: the Ollama native chat adapter (POST /api/chat, NDJSON streaming); it builds on
   the request and answer helpers of openai.c */

#include "openai.c"

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
