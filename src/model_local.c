/* >>model_local: models implemented in C without a network: the programmable model of the
   conformance harness and the deterministic scripted model of the interop agents and the
   offline demo */

#include "model.c"

/* ---- programmable model --------------------------------------------------------------- */

AK_PRIVATE ak_result ak__prog_start(ak_model *model, ak_model_call *call) {
    ak_programmable_model *m = (ak_programmable_model *)model->ud;
    const ak_json *resp = ak_json_at(m->responses, m->next), *c;
    ak_json *copy;
    /* Remember the request with its messages, so tests can check what the agent sent. */
    ak_json_doc_reset(&m->request_doc);
    m->last_request = ak_model_request_json(call, &m->request_doc);
    if (!resp) {
        ak_model_call_fail(call, AK_STATUS_INTERNAL, 0, -1,
                           "programmable model %s: no response queued for call %zu", model->name, m->next + 1);
        return AK_OK;
    }
    for (c = ak_json_first(ak_json_at(m->chunks, m->next)); c; c = c->next)
        if (ak_model_call_emit(call, c) != AK_OK) {
            ak_model_call_fail(call, AK_STATUS_CANCELLED, 0, -1, "cancelled by the chunk receiver");
            return AK_OK;
        }
    m->next++;
    if (!(copy = ak_json_copy(call->out, resp))) {
        ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "out of memory");
        return AK_OK;
    }
    ak_model_call_succeed(call, copy);
    return AK_OK;
}

AKDEF void ak_programmable_model_init(ak_programmable_model *m, const ak_allocator *alloc,
                                      const char *name) {
    AK_MEMSET(m, 0, sizeof *m);
    ak_json_doc_init(&m->doc, alloc);
    ak_json_doc_init(&m->request_doc, alloc);
    m->model.name = name ? name : "programmableModel";
    m->model.start = ak__prog_start;
    m->model.ud = m;
}

AKDEF void ak_programmable_model_free(ak_programmable_model *m) {
    ak_json_doc_free(&m->doc);
    ak_json_doc_free(&m->request_doc);
    m->responses = m->chunks = m->last_request = NULL;
}

AKDEF ak_result ak_programmable_model_set(ak_programmable_model *m, const ak_json *responses,
                                          const ak_json *chunks) {
    if (responses && responses->type != AK_JSON_ARRAY) return AK_ERR_JSON_TYPE;
    if (chunks && chunks->type != AK_JSON_ARRAY) return AK_ERR_JSON_TYPE;
    ak_json_doc_reset(&m->doc);
    m->next = 0;
    m->responses = responses ? ak_json_copy(&m->doc, responses) : ak_json_new_array(&m->doc);
    m->chunks = chunks ? ak_json_copy(&m->doc, chunks) : NULL;
    return m->doc.err;
}

/* ---- scripted model ------------------------------------------------------------------- */

/* What the scripted model decided to do with a request. */
typedef struct ak__script {
    const ak_json *last;         /* last message */
    ak_buf text;                 /* trimmed text of the last user message */
    const char *cmd, *arg;       /* first word, the rest joined by single spaces */
    size_t cmd_len;
} ak__script;

AK_PRIVATE int ak__is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Collapses whitespace runs to single spaces and trims, in place. */
AK_PRIVATE void ak__normalize_words(ak_buf *b) {
    size_t i, o = 0;
    int space = 0;
    for (i = 0; i < b->len; i++) {
        if (ak__is_space(b->ptr[i])) {
            space = o > 0;
            continue;
        }
        if (space) b->ptr[o++] = ' ', space = 0;
        b->ptr[o++] = b->ptr[i];
    }
    b->len = o;
    if (b->ptr) b->ptr[o] = 0;
}

AK_PRIVATE void ak__script_parse(ak__script *s, const ak_model_call *call) {
    const ak_json *user = NULL;
    const char *sp;
    size_t i;
    for (i = 0; i < call->message_count; i++) {
        const ak_json *m = call->messages[i];
        s->last = m;
        if (ak_msg_role(m) && ak__streq(ak_msg_role(m), "user")) user = m;
    }
    ak_msg_text(user, &s->text);
    ak__normalize_words(&s->text);
    s->cmd = s->text.ptr ? s->text.ptr : "";
    for (sp = s->cmd; *sp && *sp != ' '; sp++) {
    }
    s->cmd_len = (size_t)(sp - s->cmd);
    s->arg = *sp ? sp + 1 : sp;
}

AK_PRIVATE int ak__script_is(const ak__script *s, const char *cmd) { return ak__eqn(s->cmd, s->cmd_len, cmd); }

/* The final response {message: {role: model, content: [parts]}, finishReason: stop}. */
AK_PRIVATE ak_json *ak__script_response(ak_json_doc *d, ak_json *content) {
    ak_json *r = ak_json_new_object(d), *msg = ak_json_new_object(d);
    if (!content || ak_json_set_str(d, msg, "role", "model") != AK_OK ||
        ak_json_set(d, msg, "content", content) != AK_OK || ak_json_set(d, r, "message", msg) != AK_OK ||
        ak_json_set_str(d, r, "finishReason", "stop") != AK_OK)
        return NULL;
    return r;
}

AK_PRIVATE ak_json *ak__script_text(ak_json_doc *d, const char *prefix, const char *text, size_t len) {
    ak_buf b;
    ak_json *content = ak_json_new_array(d);
    ak_buf_init(&b, d->arena.alloc);
    ak_buf_puts(&b, prefix);
    ak_buf_append(&b, text, len);
    if (b.err || ak_json_push(content, ak_part_textn(d, b.ptr, b.len)) != AK_OK) content = NULL;
    ak_buf_free(&b);
    return content;
}

/* A toolRequest part {name, input: {key: value}, ref}. */
AK_PRIVATE ak_result ak__script_tool(ak_json_doc *d, ak_json *content, const char *name, const char *key,
                                     ak_json *value, const char *ref) {
    ak_json *input = ak_json_new_object(d);
    if (!input || ak_json_set(d, input, key, value) != AK_OK) return AK_ERR_OUT_OF_MEMORY;
    return ak_json_push(content, ak_part_tool_request(d, name, ref, input));
}

/* "tool result: [outputs...]" for a request ending in a tool message. */
AK_PRIVATE ak_json *ak__script_tool_result(ak_json_doc *d, const ak_json *tool_msg) {
    ak_json_doc tmp;
    ak_json *outputs, *content = NULL;
    const ak_json *p;
    ak_buf b;
    ak_json_doc_init(&tmp, d->arena.alloc);
    ak_buf_init(&b, d->arena.alloc);
    outputs = ak_json_new_array(&tmp);
    for (p = ak_json_first(ak_json_get(tool_msg, "content")); p; p = p->next) {
        const ak_json *tr = ak_json_get(p, "toolResponse");
        if (tr) ak_json_push(outputs, ak_json_copy(&tmp, ak_json_get(tr, "output")));
    }
    if (tmp.err == AK_OK && ak_json_write(outputs, &b) == AK_OK)
        content = ak__script_text(d, "tool result: ", b.ptr, b.len);
    ak_buf_free(&b);
    ak_json_doc_free(&tmp);
    return content;
}

AK_PRIVATE size_t ak__count_non_system(const ak_model_call *call) {
    size_t i, n = 0;
    for (i = 0; i < call->message_count; i++)
        if (!ak_msg_role(call->messages[i]) || !ak__streq(ak_msg_role(call->messages[i]), "system")) n++;
    return n;
}

/* Streams one chunk {content: [{text}]}. */
AK_PRIVATE ak_result ak__script_emit_text(ak_model_call *call, const char *text, size_t len) {
    ak_json_doc tmp;
    ak_json *chunk, *content;
    ak_result rc;
    ak_json_doc_init(&tmp, call->out->arena.alloc);
    chunk = ak_json_new_object(&tmp);
    content = ak_json_new_array(&tmp);
    ak_json_push(content, ak_part_textn(&tmp, text, len));
    ak_json_set(&tmp, chunk, "content", content);
    rc = tmp.err ? tmp.err : ak_model_call_emit(call, chunk);
    ak_json_doc_free(&tmp);
    return rc;
}

/* "stream w1 w2 ... wn": one chunk per word ("w1 ", ..., "wn"), then the joined text. */
AK_PRIVATE ak_json *ak__script_stream(ak_model_call *call, const char *words) {
    const char *p = words;
    while (*p) {
        const char *end = p;
        while (*end && *end != ' ') end++;
        if (ak__script_emit_text(call, p, (size_t)(end - p) + (*end == ' ')) != AK_OK) return NULL;
        p = *end ? end + 1 : end;
    }
    return ak__script_text(call->out, "", words, ak__strlen(words));
}

#define AK__SLOWSTREAM_MS 10000

/* Decides and answers; returns AK_PENDING only for slowstream. */
AK_PRIVATE ak_result ak__script_answer(ak_model_call *call, ak__script *s) {
    ak_json_doc *d = call->out;
    const char *last_role = ak_msg_role(s->last);
    ak_json *content = NULL, *num;
    char tmp[48];
    ak_buf b;
    if (last_role && ak__streq(last_role, "tool")) {
        content = ak__script_tool_result(d, s->last);
    } else if (ak__script_is(s, "stream") && *s->arg) {
        content = ak__script_stream(call, s->arg);
    } else if (ak__script_is(s, "slowstream")) {
        if (ak__script_emit_text(call, "tick 1", 6) != AK_OK) return AK_ERR_CANCELLED;
        call->timer = ak_mono_ms(call->ctx) + AK__SLOWSTREAM_MS;
        return AK_PENDING;
    } else if (ak__script_is(s, "weather") || ak__script_is(s, "delete")) {
        int weather = ak__script_is(s, "weather");
        content = ak_json_new_array(d);
        if (ak__script_tool(d, content, weather ? "getWeather" : "deleteFile", weather ? "city" : "path",
                            ak_json_new_str(d, s->arg), weather ? "w1" : "d1") != AK_OK)
            content = NULL;
    } else if (ak__script_is(s, "transfer")) {
        content = ak_json_new_array(d);
        /* Number(arg) in the reference app: not a number becomes null */
        num = ak_json_new_number(d, s->arg, ak__strlen(s->arg));
        if (!num) d->err = AK_OK, num = ak_json_new_null(d);
        if (ak__script_tool(d, content, "approveTransfer", "amount", num, "t1") != AK_OK) content = NULL;
    } else if (ak__script_is(s, "both")) {
        content = ak_json_new_array(d);
        if (ak__script_tool(d, content, "getWeather", "city", ak_json_new_str(d, "Oslo"), "w1") != AK_OK ||
            ak__script_tool(d, content, "approveTransfer", "amount", ak_json_new_int(d, 5), "t1") != AK_OK)
            content = NULL;
    } else if (ak__script_is(s, "count")) {
        ak_buf_init_fixed(&b, tmp, sizeof tmp);
        ak_buf_put_u64(&b, ak__count_non_system(call));
        content = ak__script_text(d, "history=", tmp, b.len);
    } else if (ak__script_is(s, "system?")) {
        const ak_json *sys = NULL;
        size_t i;
        ak_buf_init(&b, d->arena.alloc);
        for (i = 0; i < call->message_count && !sys; i++)
            if (ak_msg_role(call->messages[i]) && ak__streq(ak_msg_role(call->messages[i]), "system"))
                sys = call->messages[i];
        if (sys) ak_msg_text(sys, &b);
        content = sys ? ak__script_text(d, "system=", b.ptr ? b.ptr : "", b.len)
                      : ak__script_text(d, "system=none", "", 0);
        ak_buf_free(&b);
    } else if (ak__script_is(s, "modelfail")) {
        ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "model on fire");
        return AK_OK;
    } else {
        content = ak__script_text(d, "echo: ", s->text.ptr ? s->text.ptr : "", s->text.len);
    }
    if (!content) {
        ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "out of memory");
        return AK_OK;
    }
    ak_model_call_succeed(call, ak__script_response(d, content));
    if (!call->response) ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "out of memory");
    return AK_OK;
}

AK_PRIVATE ak_result ak__script_start(ak_model *model, ak_model_call *call) {
    ak__script s;
    ak_result rc;
    AK__UNUSED(model);
    AK_MEMSET(&s, 0, sizeof s);
    ak_buf_init(&s.text, call->out->arena.alloc);
    ak__script_parse(&s, call);
    /* a text lost to a failed allocation must not be answered as if it were empty */
    rc = s.text.err ? AK_ERR_OUT_OF_MEMORY : ak__script_answer(call, &s);
    ak_buf_free(&s.text);
    if (rc == AK_ERR_OUT_OF_MEMORY) ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "out of memory");
    if (rc == AK_ERR_CANCELLED) ak_model_call_fail(call, AK_STATUS_CANCELLED, 0, -1, "cancelled");
    return rc == AK_PENDING ? AK_PENDING : AK_OK;
}

/* Only slowstream is ever pending: it finishes when its ten seconds are up. */
AK_PRIVATE ak_result ak__script_poll(ak_model *model, ak_model_call *call, int wait_ms) {
    int64_t left = call->timer - ak_mono_ms(call->ctx);
    ak_json *content;
    AK__UNUSED(model);
    if (left > 0 && wait_ms > 0) {
        ak_sleep_ms(call->ctx, AK__MIN(left, (int64_t)wait_ms));
        left = call->timer - ak_mono_ms(call->ctx);
    }
    if (left > 0) return AK_PENDING;
    content = ak__script_text(call->out, "slow done", "", 0);
    ak_model_call_succeed(call, content ? ak__script_response(call->out, content) : NULL);
    if (!call->response) ak_model_call_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, 0, -1, "out of memory");
    return AK_OK;
}

AK_PRIVATE void ak__script_cancel(ak_model *model, ak_model_call *call) {
    AK__UNUSED(model);
    AK__UNUSED(call); /* the only pending state is the deadline in call->timer */
}

AKDEF void ak_scripted_model_init(ak_model *m) {
    AK_MEMSET(m, 0, sizeof *m);
    m->name = "scripted";
    m->start = ak__script_start;
    m->poll = ak__script_poll;
    m->cancel = ak__script_cancel;
}
