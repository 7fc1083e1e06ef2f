/* >>chat: Genkit's AgentChat (reference §5.10) over a backend: local agents here, remote
   agents in the serve layer */

#include "prompt.c"

/* ---- the local backend ---------------------------------------------------------------- */

AK_PRIVATE ak_result ak__local_start(void *ud, const ak_json *init, const ak_json *input, ak_agent_chunk_fn on_chunk,
                                     void *chunk_ud, void **turn, ak_error *err) {
    ak_invoke_opts opts;
    ak_invocation *inv;
    ak_result rc;
    AK_MEMSET(&opts, 0, sizeof opts);
    opts.on_chunk = on_chunk;
    opts.chunk_ud = chunk_ud;
    if ((rc = ak_agent_invoke((ak_agent *)ud, init, &opts, &inv, err)) != AK_OK) return rc;
    if ((rc = ak_invocation_send(inv, input, err)) != AK_OK) {
        ak_invocation_free(inv);
        return rc;
    }
    ak_invocation_close(inv);
    *turn = inv;
    return AK_OK;
}

AK_PRIVATE ak_result ak__local_poll(void *ud, void *turn, int wait_ms, ak_json_doc *d, ak_json **output, ak_error *err) {
    ak_invocation *inv = (ak_invocation *)turn;
    ak_result rc = ak_invocation_step(inv, wait_ms, err);
    AK__UNUSED(ud);
    if (rc == AK_PENDING) return rc;
    if (rc == AK_OK && !(*output = ak_json_copy(d, ak_invocation_output(inv))))
        rc = ak__oom(err);
    ak_invocation_free(inv);
    return rc;
}

AK_PRIVATE void ak__local_cancel(void *ud, void *turn) {
    AK__UNUSED(ud);
    ak_invocation_free((ak_invocation *)turn);
}

AK_PRIVATE ak_result ak__local_get_snapshot(void *ud, const char *snapshot_id, const char *session_id, ak_json_doc *d,
                                            ak_json **out, ak_error *err) {
    return ak_agent_get_snapshot((ak_agent *)ud, snapshot_id, session_id, NULL, d, out, err);
}

AK_PRIVATE ak_result ak__local_abort(void *ud, const char *snapshot_id, const char **previous, ak_error *err) {
    return ak_agent_abort((ak_agent *)ud, snapshot_id, NULL, previous, err);
}

AK_PRIVATE ak_chat_backend ak__local_backend(ak_agent *a) {
    ak_chat_backend b;
    b.start = ak__local_start;
    b.poll = ak__local_poll;
    b.cancel = ak__local_cancel;
    b.get_snapshot = ak__local_get_snapshot;
    b.abort = ak__local_abort;
    b.ud = a;
    return b;
}

/* ---- tracked state -------------------------------------------------------------------- */

/* Replaces *slot with a shared copy of v (NULL clears it). */
AK_PRIVATE ak_result ak__track(ak_chat *c, ak_jref **slot, const ak_json *v) {
    ak_jref *r = v ? ak_jref_new(ak_context_allocator(c->ctx), v) : NULL;
    if (v && !r) return AK_ERR_OUT_OF_MEMORY;
    ak_jref_release(*slot);
    *slot = r;
    return AK_OK;
}

AK_PRIVATE void ak__copy_id(char *dst, const char *src) {
    size_t n = src ? ak__strlen(src) : 0;
    if (n > AK_ID_MAX) n = 0; /* never cut an id: drop what cannot be one */
    if (n) AK_MEMCPY(dst, src, n);
    dst[n] = 0;
}

/* Adopts a SessionState: messages, custom state, artifacts. */
AK_PRIVATE ak_result ak__track_state(ak_chat *c, const ak_json *state) {
    if (ak__track(c, &c->messages, ak_json_get(state, "messages")) != AK_OK ||
        ak__track(c, &c->custom, ak_json_get(state, "custom")) != AK_OK ||
        ak__track(c, &c->artifacts, ak_json_get(state, "artifacts")) != AK_OK)
        return AK_ERR_OUT_OF_MEMORY;
    if (ak_json_get_str(state, "sessionId")) ak__copy_id(c->session_id, ak_json_get_str(state, "sessionId"));
    return AK_OK;
}

AKDEF ak_result ak_chat_init_backend(ak_chat *c, ak_context *ctx, const ak_chat_backend *backend,
                                     const ak_json *init, ak_error *err) {
    const ak_json *state = ak_json_get(init, "state");
    AK_MEMSET(c, 0, sizeof *c);
    c->ctx = ctx;
    c->backend = *backend;
    ak_json_doc_init(&c->turn_doc, ak_context_allocator(ctx));
    if (init && !ak_json_is(init, AK_JSON_OBJECT)) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "init must be an object");
    ak__copy_id(c->snapshot_id, ak_json_get_str(init, "snapshotId"));
    ak__copy_id(c->session_id, ak_json_get_str(init, "sessionId"));
    if ((init && ak__track(c, &c->init, init) != AK_OK) ||
        (state && (ak__track(c, &c->client_state, state) != AK_OK || ak__track_state(c, state) != AK_OK))) {
        ak_chat_free(c);
        return ak__oom(err);
    }
    return AK_OK;
}

AKDEF ak_result ak_chat_init(ak_chat *c, ak_agent *a, const ak_json *init, ak_error *err) {
    ak_chat_backend b = ak__local_backend(a);
    return ak_chat_init_backend(c, a->ctx, &b, init, err);
}

AKDEF void ak_chat_free(ak_chat *c) {
    if (c->turn && c->backend.cancel) c->backend.cancel(c->backend.ud, c->turn);
    c->turn = NULL;
    ak_jref_release(c->init);
    ak_jref_release(c->client_state);
    ak_jref_release(c->custom);
    ak_jref_release(c->messages);
    ak_jref_release(c->artifacts);
    c->init = c->client_state = c->custom = c->messages = c->artifacts = NULL;
    ak_json_doc_free(&c->turn_doc);
}

AKDEF const char *ak_chat_snapshot_id(const ak_chat *c) { return c->snapshot_id[0] ? c->snapshot_id : NULL; }
AKDEF const char *ak_chat_session_id(const ak_chat *c) { return c->session_id[0] ? c->session_id : NULL; }
AKDEF const ak_json *ak_chat_custom(const ak_chat *c) {
    if (c->turn && c->turn_custom) return c->turn_custom;
    return c->custom ? c->custom->value : NULL;
}
AKDEF const ak_json *ak_chat_messages(const ak_chat *c) { return c->messages ? c->messages->value : NULL; }
AKDEF const ak_json *ak_chat_artifacts(const ak_chat *c) { return c->artifacts ? c->artifacts->value : NULL; }

/* What the next turn sends as init: the snapshot, else the client state, else the original. */
AK_PRIVATE ak_json *ak__chat_init_json(ak_chat *c, ak_json_doc *d) {
    ak_json *init = ak_json_new_object(d);
    if (c->snapshot_id[0]) ak_json_set_str(d, init, "snapshotId", c->snapshot_id);
    else if (c->client_state) ak_json_set(d, init, "state", ak_json_copy(d, c->client_state->value));
    else if (c->init) init = ak_json_copy(d, c->init->value);
    return init;
}

/* messages (+ msg, or truncated to keep) as the new tracked list. */
AK_PRIVATE ak_result ak__chat_messages(ak_chat *c, const ak_json *msg, size_t keep) {
    ak_json_doc d;
    ak_json *arr;
    ak_result rc;
    ak_json_doc_init(&d, ak_context_allocator(c->ctx));
    arr = ak_json_copy(&d, c->messages ? c->messages->value : NULL);
    if (!ak_json_is(arr, AK_JSON_ARRAY)) arr = ak_json_new_array(&d); /* none yet, or out of memory */
    while (arr && arr->len > keep) ak_json_remove_at(arr, arr->len - 1);
    if (msg) ak_json_push(arr, ak_json_copy(&d, msg));
    rc = d.err ? d.err : ak__track(c, &c->messages, arr);
    ak_json_doc_free(&d);
    return rc;
}

/* Merges artifacts by name into the tracked list (same name replaces). */
AK_PRIVATE ak_result ak__chat_merge_artifacts(ak_chat *c, const ak_json *arts) {
    ak_json_doc d;
    ak_json *arr;
    const ak_json *a;
    ak_result rc;
    if (!ak_json_is(arts, AK_JSON_ARRAY) || !ak_json_len(arts)) return AK_OK; /* a remote agent may send anything */
    ak_json_doc_init(&d, ak_context_allocator(c->ctx));
    arr = ak_json_copy(&d, c->artifacts ? c->artifacts->value : NULL);
    if (!ak_json_is(arr, AK_JSON_ARRAY)) arr = ak_json_new_array(&d);
    for (a = ak_json_first(arts); a; a = a->next) {
        long i = ak__artifact_index(arr, a);
        if (i >= 0) ak_json_replace_at(arr, (size_t)i, ak_json_copy(&d, a));
        else ak_json_push(arr, ak_json_copy(&d, a));
    }
    rc = d.err ? d.err : ak__track(c, &c->artifacts, arr);
    ak_json_doc_free(&d);
    return rc;
}

/* Applies streamed custom-state patches to the chat's view before the user sees the chunk. */
AK_PRIVATE void ak__chat_on_chunk(void *ud, const ak_json *chunk) {
    ak_chat *c = (ak_chat *)ud;
    const ak_json *patch = ak_json_get(chunk, "customPatch");
    if (patch) {
        ak_json *doc = c->turn_custom;
        if (ak_json_patch(&c->turn_doc, &doc, patch, AK_PATCH_LENIENT, NULL) == AK_OK) c->turn_custom = doc;
    }
    if (c->on_chunk) c->on_chunk(c->chunk_ud, chunk);
}

AKDEF ak_result ak_chat_start(ak_chat *c, const ak_json *input, ak_agent_chunk_fn on_chunk, void *ud, ak_error *err) {
    ak_json_doc *d = &c->turn_doc;
    ak_json *in, *init;
    const ak_json *msg = ak_json_get(input, "message");
    ak_result rc;
    if (c->turn) return ak_error_set(err, AK_ERR_STATE, "a turn is already running on this chat");
    ak_json_doc_reset(d);
    c->cancelled = 0;
    c->on_chunk = on_chunk;
    c->chunk_ud = ud;
    in = ak_json_copy(d, input);
    init = ak__chat_init_json(c, d);
    c->turn_custom = c->custom ? ak_json_copy(d, c->custom->value) : NULL;
    c->messages_before = ak_json_len(ak_chat_messages(c));
    if (d->err || (msg && ak__chat_messages(c, msg, c->messages_before) != AK_OK))
        return ak__oom(err);
    rc = c->backend.start(c->backend.ud, init, in, ak__chat_on_chunk, c, &c->turn, err);
    if (rc != AK_OK) {
        c->turn = NULL;
        ak__chat_messages(c, NULL, c->messages_before);
    }
    return rc;
}

AKDEF void ak_chat_cancel(ak_chat *c) {
    if (c->turn && c->backend.cancel) c->backend.cancel(c->backend.ud, c->turn);
    c->turn = NULL;
    c->cancelled = 1;
}

/* The status of a failed output: error.status, else an "ALL_CAPS:" prefix of the message. */
AK_PRIVATE ak_status ak__output_status(const ak_json *error) {
    const char *s = ak_json_get_str(error, "status"), *m = ak_json_get_str(error, "message"), *p;
    if (s) return ak_status_from_name(s, ak__strlen(s));
    for (p = m; p && ((*p >= 'A' && *p <= 'Z') || *p == '_'); p++) {
    }
    return p && p != m && *p == ':' ? ak_status_from_name(m, (size_t)(p - m)) : AK_STATUS_UNKNOWN;
}

/* Fills the response from an output (everything copied into r->doc). */
AK_PRIVATE void ak__fill_response(ak_chat *c, ak_response *r, const ak_json *output) {
    ak_json_doc *d = &r->doc;
    const ak_json *state = ak_json_get(output, "state"), *p, *err = ak_json_get(output, "error");
    const char *fr = ak_json_get_str(output, "finishReason");
    ak_buf text;
    r->raw = ak_json_copy(d, output);
    r->message = ak_json_get(r->raw, "message");
    r->finish_reason = fr ? ak_finish_reason_from_name(fr) : AK_FINISH_UNKNOWN;
    ak_buf_init(&text, ak_context_allocator(c->ctx));
    ak_msg_text(r->message, &text);
    r->text = ak_arena_strdup(&d->arena, text.ptr ? text.ptr : "", text.len);
    ak_buf_free(&text);
    r->snapshot_id = ak_json_get_str(r->raw, "snapshotId");
    r->session_id = ak_json_get_str(r->raw, "sessionId");
    r->interrupts = ak_json_new_array(d);
    for (p = ak_json_first(ak_json_get(r->message, "content")); p; p = p->next)
        if (ak_json_get(p, "toolRequest") && ak_json_get(ak_json_get(p, "metadata"), "interrupt") &&
            !ak_json_is_empty(ak_json_get(ak_json_get(p, "metadata"), "interrupt")))
            ak_json_push(r->interrupts, ak_json_copy(d, p));
    r->state = state && ak_json_get(state, "custom") ? ak_json_copy(d, ak_json_get(state, "custom"))
                                                     : ak_json_copy(d, ak_chat_custom(c));
    if (!state && !ak_chat_custom(c)) r->state = NULL;
    r->artifacts = ak_json_get(output, "artifacts")   ? ak_json_copy(d, ak_json_get(output, "artifacts"))
                   : ak_json_get(state, "artifacts") ? ak_json_copy(d, ak_json_get(state, "artifacts"))
                                                     : ak_json_new_array(d);
    if (err) {
        r->error_status = ak__output_status(err);
        r->error_message = ak_json_get_str(ak_json_get(r->raw, "error"), "message");
    }
}

/* Applies a turn's output to what the chat tracks (Genkit's AgentChatImpl). */
AK_PRIVATE ak_result ak__chat_apply(ak_chat *c, const ak_json *output) {
    const ak_json *state = ak_json_get(output, "state"), *msg = ak_json_get(output, "message");
    const char *fr = ak_json_get_str(output, "finishReason");
    int ended_badly = fr && (ak__streq(fr, "failed") || ak__streq(fr, "aborted"));
    ak_result rc = AK_OK;
    if (ended_badly && !ak_json_get(state, "messages") && !msg) rc = ak__chat_messages(c, NULL, c->messages_before);
    if (ak_json_get_str(output, "snapshotId")) ak__copy_id(c->snapshot_id, ak_json_get_str(output, "snapshotId"));
    if (ak_json_get_str(output, "sessionId")) ak__copy_id(c->session_id, ak_json_get_str(output, "sessionId"));
    if (state) {
        if (ak__track(c, &c->client_state, state) != AK_OK || ak__track_state(c, state) != AK_OK) return AK_ERR_OUT_OF_MEMORY;
        return rc;
    }
    if (rc == AK_OK && msg) rc = ak__chat_messages(c, msg, ak_json_len(ak_chat_messages(c)));
    if (rc == AK_OK) rc = ak__chat_merge_artifacts(c, ak_json_get(output, "artifacts"));
    /* server-managed: the custom state is what the streamed patches made of it */
    if (rc == AK_OK && c->turn_custom) rc = ak__track(c, &c->custom, c->turn_custom);
    return rc;
}

AKDEF void ak_response_free(ak_response *r) {
    ak_json_doc_free(&r->doc);
    AK_MEMSET(r, 0, sizeof *r);
}

AKDEF ak_result ak_chat_poll(ak_chat *c, int wait_ms, ak_response *r, ak_error *err) {
    ak_json_doc tmp;
    ak_json *output = NULL;
    ak_result rc;
    if (!c->turn) {
        AK_MEMSET(r, 0, sizeof *r);
        if (!c->cancelled) return ak_error_set(err, AK_ERR_STATE, "no turn is running on this chat");
        rc = AK_OK; /* cancelled: resolves aborted, as Genkit's abortSignal does */
    } else {
        ak_json_doc_init(&tmp, ak_context_allocator(c->ctx));
        rc = c->backend.poll(c->backend.ud, c->turn, wait_ms, &tmp, &output, err);
        if (rc == AK_PENDING) {
            ak_json_doc_free(&tmp);
            return rc;
        }
        c->turn = NULL;
        AK_MEMSET(r, 0, sizeof *r); /* finished: r is always safe to free from here on */
        if (rc != AK_OK) {
            ak_json_doc_free(&tmp);
            ak__chat_messages(c, NULL, c->messages_before);
            return rc;
        }
        rc = ak__chat_apply(c, output);
        if (rc == AK_OK) ak_json_doc_init(&r->doc, ak_context_allocator(c->ctx)), ak__fill_response(c, r, output);
        ak_json_doc_free(&tmp);
        if (rc != AK_OK) return ak_error_set(err, rc, "out of memory");
        if (r->doc.err) return ak__oom(err);
        if (r->finish_reason == AK_FINISH_FAILED)
            return ak_error_setst(err, AK_ERR_AGENT, r->error_status,
                                  "%s", r->error_message && *r->error_message ? r->error_message : "the turn failed");
        return AK_OK;
    }
    c->cancelled = 0;
    ak__chat_messages(c, NULL, c->messages_before);
    ak_json_doc_init(&r->doc, ak_context_allocator(c->ctx));
    output = ak_json_new_object(&r->doc);
    ak_json_set_str(&r->doc, output, "finishReason", "aborted");
    ak__fill_response(c, r, output);
    return AK_OK;
}

AKDEF ak_result ak_chat_send_input(ak_chat *c, const ak_json *input, ak_response *r, ak_error *err) {
    ak_result rc;
    AK_MEMSET(r, 0, sizeof *r);
    rc = ak_chat_start(c, input, NULL, NULL, err);
    while (rc == AK_OK && (rc = ak_chat_poll(c, 50, r, err)) == AK_PENDING)
        rc = AK_OK; /* not finished: pump again */
    return rc;
}

AKDEF ak_json *ak_input_text(ak_json_doc *d, const char *text) {
    ak_json *input = ak_json_new_object(d), *msg = ak_msg_new(d, "user");
    ak_msg_add(msg, ak_part_text(d, text ? text : ""));
    ak_json_set(d, input, "message", msg);
    return d->err ? NULL : input;
}

AKDEF ak_result ak_chat_send(ak_chat *c, const char *text, ak_response *r, ak_error *err) {
    ak_json_doc d;
    ak_json *input;
    ak_result rc;
    AK_MEMSET(r, 0, sizeof *r);
    ak_json_doc_init(&d, ak_context_allocator(c->ctx));
    input = ak_input_text(&d, text);
    rc = !input ? ak__oom(err) : ak_chat_send_input(c, input, r, err);
    ak_json_doc_free(&d);
    return rc;
}

AKDEF ak_result ak_chat_resume(ak_chat *c, const ak_json *respond, const ak_json *restart, ak_response *r, ak_error *err) {
    ak_json_doc d;
    ak_json *input, *resume;
    ak_result rc;
    AK_MEMSET(r, 0, sizeof *r);
    ak_json_doc_init(&d, ak_context_allocator(c->ctx));
    input = ak_json_new_object(&d);
    resume = ak_json_new_object(&d);
    if (respond) ak_json_set(&d, resume, "respond", ak_json_copy(&d, respond));
    if (restart) ak_json_set(&d, resume, "restart", ak_json_copy(&d, restart));
    ak_json_set(&d, input, "resume", resume);
    rc = d.err ? ak__oom(err) : ak_chat_send_input(c, input, r, err);
    ak_json_doc_free(&d);
    return rc;
}

AKDEF ak_result ak_chat_detach(ak_chat *c, const ak_json *input, char id[AK_ID_MAX + 1], ak_error *err) {
    ak_json_doc d;
    ak_json *in;
    ak_response r;
    ak_result rc;
    id[0] = 0;
    ak_json_doc_init(&d, ak_context_allocator(c->ctx));
    in = ak_json_copy(&d, input);
    if (!ak_json_is(in, AK_JSON_OBJECT)) in = ak_json_new_object(&d);
    ak_json_set_bool(&d, in, "detach", 1);
    AK_MEMSET(&r, 0, sizeof r);
    rc = d.err ? ak__oom(err) : ak_chat_send_input(c, in, &r, err);
    ak_json_doc_free(&d);
    if (rc != AK_OK) {
        ak_response_free(&r); /* a failed turn fills it too */
        return rc;
    }
    if (!r.snapshot_id) rc = ak_error_set(err, AK_ERR_AGENT, "detach did not return a snapshotId.");
    else ak__copy_id(id, r.snapshot_id);
    ak_response_free(&r);
    return rc;
}

AKDEF ak_result ak_chat_abort(ak_chat *c, const char **previous, ak_error *err) {
    *previous = NULL;
    if (!c->snapshot_id[0]) return AK_OK; /* Genkit: nothing to abort */
    return c->backend.abort(c->backend.ud, c->snapshot_id, previous, err);
}

AKDEF ak_result ak_chat_get_snapshot(ak_chat *c, const char *snapshot_id, ak_json_doc *d, ak_json **out, ak_error *err) {
    const char *id = snapshot_id ? snapshot_id : ak_chat_snapshot_id(c);
    if (!id) return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_FAILED_PRECONDITION, "the chat has no snapshot yet");
    return c->backend.get_snapshot(c->backend.ud, id, NULL, d, out, err);
}

AKDEF ak_result ak_chat_load_backend(ak_chat *c, ak_context *ctx, const ak_chat_backend *backend, const char *snapshot_id,
                                     const char *session_id, ak_error *err) {
    ak_json_doc d;
    ak_json *snap = NULL, *init;
    ak_result rc;
    ak_json_doc_init(&d, ak_context_allocator(ctx));
    rc = backend->get_snapshot(backend->ud, snapshot_id, session_id, &d, &snap, err);
    if (rc == AK_OK) {
        init = ak_json_new_object(&d);
        ak_json_set_str(&d, init, "snapshotId", ak_json_get_str(snap, "snapshotId"));
        if (ak_json_get_str(snap, "sessionId")) ak_json_set_str(&d, init, "sessionId", ak_json_get_str(snap, "sessionId"));
        rc = ak_chat_init_backend(c, ctx, backend, init, err);
        if (rc == AK_OK && ak__track_state(c, ak_json_get(snap, "state")) != AK_OK)
            rc = ak__oom(err);
    }
    ak_json_doc_free(&d);
    return rc;
}

AKDEF ak_result ak_chat_load(ak_chat *c, ak_agent *a, const char *snapshot_id, const char *session_id, ak_error *err) {
    ak_chat_backend b = ak__local_backend(a);
    return ak_chat_load_backend(c, a->ctx, &b, snapshot_id, session_id, err);
}
