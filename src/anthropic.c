/* >>anthropic: the Anthropic Messages adapter (POST /v1/messages, SSE streaming), preceded
   by the helpers gemini.c shares with it (ak__prov_*) */

#include "model.c"

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
