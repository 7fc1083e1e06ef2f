/* >>openai: the OpenAI Chat Completions adapter (also llama.cpp, Ollama /v1, vLLM and the
   other compatible servers), preceded by what ollama.c shares with it: building provider
   JSON from Genkit requests (ak__wire_*) and assembling a streamed answer (ak__acc_*). */

#include "model.c"

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
