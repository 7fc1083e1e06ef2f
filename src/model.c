/* >>model implementation: data model helpers, the call driver with retries, the adapter
   engine (decoder + HTTP model) */

#include "model.h"
#include "replay.c"

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
