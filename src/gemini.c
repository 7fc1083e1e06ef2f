/* >>gemini: the Google Gemini API adapter (generateContent, streamGenerateContent?alt=sse) */

#include "anthropic.c"

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
