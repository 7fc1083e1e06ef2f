/* >>runner: agents, invocations (the turn loop around each turn), the session runner API,
   snapshot writes, detach/abort/heartbeat, output assembly */

#include "tools.c"

#define AK__HEARTBEAT_MS 30000

enum { AK__INV_IDLE = 0, AK__INV_TURN, AK__INV_FINISH, AK__INV_DONE };

/* One tool request of the model message a prompt turn is answering. */
typedef struct ak__ptool {
    const ak_json *part;         /* the toolRequest part */
    ak_tool_call call;
    int tool;                    /* index in desc.tools, -1 unknown */
    const ak_json *response;     /* a respond entry or pending output answering it */
    int restart;                 /* 1: re-run because of a restart entry */
    int pending_output;          /* 1: answered by its metadata.pendingOutput */
    int traced;                  /* 1: a trace span began (at `started`) and must end */
    int64_t started;
} ak__ptool;

/* The prompt-agent turn machine (prompt.c). */
typedef struct ak__prompt {
    int step;
    int iteration;               /* tool rounds done in this turn */
    int msg_index;               /* modelChunk index */
    ak_model_call call;
    ak_json *model_msg;          /* the model message whose tool requests are answered */
    ak__ptool *tools;
    size_t tool_count;
    int64_t model_started;
} ak__prompt;

struct ak_invocation {
    ak_agent *agent;
    ak_invocation *next;
    ak_context *ctx;
    const ak_allocator *alloc;
    ak_agent_chunk_fn on_chunk;
    void *chunk_ud;
    ak_json_doc io;              /* context, queued inputs, the output */
    ak_json *context;
    ak_json *queue, *queue_tail; /* inputs not yet taken */
    int closed, caller_gone, resolved, rejected, failed, phase;
    ak_json *output;
    ak_error thrown;
    /* the session */
    ak_session_state state;      /* live */
    ak_session_state good;       /* as of the last successful turn */
    char *good_id;               /* last written snapshot */
    char *parent_id;             /* parent of the next snapshot */
    unsigned version, saved_version;
    int turn_index;
    ak_finish_reason last_reason;
    int has_last_reason;
    ak_jref *last_error;
    /* the turn in progress */
    const ak_json *input;
    char turn_id[AK_ID_MAX + 1]; /* reserved snapshot id ("" = none) */
    ak_json_doc turn_doc;
    void *turn_state;
    size_t turn_state_size;
    ak_finish_reason reason;
    int has_reason;
    ak_error turn_error;
    int turn_failed;
    int error_prefixed;          /* library errors carry "STATUS: " in their message, as Genkit's do */
    ak_jref *error_details;
    ak_jref *sent_custom;        /* custom state as last streamed */
    int first_patch;
    int64_t turn_started;
    /* detached */
    int detached, aborted;
    int64_t next_beat;
    void *watch;
    ak__prompt pt;
    int64_t wake_at;             /* a custom turn waiting for a time (ak_runner_wait_until) */
    int64_t started;
};

AK_PRIVATE ak_result ak__prompt_turn(ak_runner *r, const ak_json *input, const ak_turn_info *turn, void *ud);
AK_PRIVATE void ak__prompt_release(ak_invocation *inv);

/* ---- small helpers -------------------------------------------------------------------- */

AK_PRIVATE int ak__server_managed(const ak_invocation *inv) { return inv->agent->desc.store != NULL; }

AK_PRIVATE void ak__set_str(const ak_allocator *a, char **slot, const char *v) {
    char *copy = v ? ak__strdup(a, v) : NULL;
    ak__strfree(a, *slot);
    *slot = copy;
}

AK_PRIVATE void ak__trace(ak_invocation *inv, ak_trace_kind kind, int end, const char *name, int64_t started,
                          ak_status st, const ak_json *attrs) {
    ak_agent *a = inv->agent;
    if (!a->desc.trace) return;
    a->desc.trace(a->desc.trace_ud, kind, end, name, end ? ak_mono_ms(inv->ctx) - started : 0, st, attrs);
}

/* Parses JSON text owned by the agent description into the agent's document. */
AK_PRIVATE ak_result ak__parse_desc_json(ak_agent *a, const char *text, const char *what, ak_json **out,
                                         ak_error *err) {
    ak_error e;
    *out = NULL;
    if (!text) return AK_OK;
    if (ak_json_parse_value(&a->doc, text, ak__strlen(text), NULL, out, &e) != AK_OK)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "agent '%s': %s is not valid JSON: %s", a->desc.name, what,
                            e.message);
    return AK_OK;
}

/* Checks value against a schema the agent parsed (NULL: anything goes). Built without the
   validator (AK_NO_SCHEMA), tool input schemas are only sent to the model and tools check
   their input themselves; state schemas, which are only for checking, are refused at init. */
AK_PRIVATE ak_result ak__agent_schema_check(const ak_json *schema, const ak_json *value, ak_error *err) {
#ifdef AK_NO_SCHEMA
    AK__UNUSED(schema), AK__UNUSED(value), AK__UNUSED(err);
    return AK_OK;
#else
    return schema ? ak_json_schema_validate(schema, value, err) : AK_OK;
#endif
}

/* The part of every model request that does not change: config, tools, output. */
AK_PRIVATE ak_result ak__build_request(ak_agent *a, ak_error *err) {
    ak_json_doc *d = &a->doc;
    ak_json *config = NULL, *tools, *schema = NULL;
    size_t i;
    ak_result rc;
    a->request = ak_json_new_object(d);
    if ((rc = ak__parse_desc_json(a, a->desc.config, "config", &config, err)) != AK_OK) return rc;
    if (config) ak_json_set(d, a->request, "config", config);
    a->input_schemas = (ak_json **)ak_arena_zalloc(&d->arena, (a->desc.tool_count + 1) * sizeof *a->input_schemas);
    if (!a->input_schemas) return AK_ERR_OUT_OF_MEMORY;
    if (a->desc.tool_count) {
        tools = ak_json_new_array(d);
        ak_json_set(d, a->request, "tools", tools);
        for (i = 0; i < a->desc.tool_count; i++) {
            const ak_tool *t = &a->desc.tools[i];
            ak_json *def = ak_json_new_object(d), *out_schema = NULL;
            if (!t->name || (!t->fn && !t->interrupt))
                return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "agent '%s': tool %zu needs a name and a function",
                                    a->desc.name, i);
            if ((rc = ak__parse_desc_json(a, t->input_schema, "a tool input schema", &a->input_schemas[i], err)) != AK_OK ||
                (rc = ak__parse_desc_json(a, t->output_schema, "a tool output schema", &out_schema, err)) != AK_OK)
                return rc;
            ak_json_set_str(d, def, "name", t->name);
            ak_json_set_str(d, def, "description", t->description ? t->description : "");
            ak_json_set(d, def, "inputSchema", a->input_schemas[i] ? ak_json_copy(d, a->input_schemas[i])
                                                                    : ak_json_new_object(d));
            if (out_schema) ak_json_set(d, def, "outputSchema", out_schema);
            ak_json_push(tools, def);
        }
    }
    if (a->desc.output_format || a->desc.output_schema) {
        ak_json *out = ak_json_new_object(d);
        if ((rc = ak__parse_desc_json(a, a->desc.output_schema, "output schema", &schema, err)) != AK_OK) return rc;
        ak_json_set_str(d, out, "format", a->desc.output_format ? a->desc.output_format : "json");
        if (schema) ak_json_set(d, out, "schema", schema);
        ak_json_set(d, a->request, "output", out);
    }
    return d->err;
}

AKDEF ak_result ak_agent_init(ak_agent *a, ak_context *ctx, const ak_agent_desc *desc, ak_error *err) {
    ak_result rc;
    AK_MEMSET(a, 0, sizeof *a);
    if (!ctx || !desc || !desc->name || !*desc->name)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "an agent needs a context and a name");
    if (!desc->turn && !desc->model)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "agent '%s' needs a model (prompt agent) or a turn function (custom agent)",
                            desc->name);
#ifdef AK_NO_SCHEMA
    if (desc->state_schema)
        return ak_error_set(err, AK_ERR_UNSUPPORTED, "agent '%s' has a state schema, but this build has no JSON "
                            "Schema validator (AK_NO_SCHEMA)", desc->name);
#endif
    a->ctx = ctx;
    a->desc = *desc;
    if (a->desc.max_turns <= 0) a->desc.max_turns = 5;
    ak_json_doc_init(&a->doc, ak_context_allocator(ctx));
    if ((rc = ak__build_request(a, err)) != AK_OK ||
        (rc = ak__parse_desc_json(a, desc->state_schema, "state schema", &a->state_schema, err)) != AK_OK) {
        ak_json_doc_free(&a->doc);
        return rc == AK_ERR_OUT_OF_MEMORY ? ak__oom(err) : rc;
    }
    if (desc->system) {
        ak_json_doc *d = &a->doc;
        ak_json *md = ak_json_new_object(d);
        a->system_msg = ak_msg_new(d, "system");
        ak_msg_add(a->system_msg, ak_part_text(d, desc->system));
        /* Genkit tags rendered prompt messages this way, and models see it. */
        ak_json_set_bool(d, md, "agentPreamble", 1);
        ak_json_set(d, a->system_msg, "metadata", md);
        if (d->err) {
            ak_json_doc_free(&a->doc);
            return ak__oom(err);
        }
    }
    return AK_OK;
}

AK_PRIVATE void ak__inv_destroy(ak_invocation *inv);

AKDEF void ak_agent_free(ak_agent *a) {
    while (a->invocations) ak__inv_destroy(a->invocations);
    ak_free(ak_context_allocator(a->ctx), a->slots, a->slot_count * sizeof *a->slots);
    ak_json_doc_free(&a->doc);
    AK_MEMSET(a, 0, sizeof *a);
}

/* ---- errors --------------------------------------------------------------------------- */

/* {status, message, details?} for an error. */
AK_PRIVATE ak_json *ak__error_json(ak_json_doc *d, ak_status st, const char *message, int prefixed,
                                   const ak_json *details) {
    ak_json *e = ak_json_new_object(d);
    ak_buf b;
    ak_buf_init(&b, d->arena.alloc);
    if (prefixed) ak_buf_printf(&b, "%s: ", ak_status_name(st));
    ak_buf_puts(&b, message);
    ak_json_set_str(d, e, "status", ak_status_name(st));
    ak_json_set(d, e, "message", ak_json_new_strn(d, b.ptr ? b.ptr : "", b.len));
    if (details) ak_json_set(d, e, "details", ak_json_copy(d, details));
    ak_buf_free(&b);
    return d->err ? NULL : e;
}

/* Fails the turn in progress with a library error (Genkit-style "STATUS: message"). */
AK_PRIVATE ak_result ak__turn_error(ak_invocation *inv, ak_status st, const char *fmt, ...) {
    va_list ap;
    inv->turn_failed = 1;
    inv->error_prefixed = 1;
    va_start(ap, fmt);
    ak__error_vset(&inv->turn_error, AK_ERR_AGENT, st, fmt, ap);
    va_end(ap);
    return AK_ERR_AGENT;
}

AK_PRIVATE ak_result ak__turn_oom(ak_invocation *inv) {
    return ak__turn_error(inv, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

AKDEF ak_result ak_runner_fail(ak_runner *r, ak_status status, const char *fmt, ...) {
    va_list ap;
    r->turn_failed = 1;
    r->error_prefixed = 0; /* like a plain Error thrown by a handler: the message as given */
    va_start(ap, fmt);
    ak__error_vset(&r->turn_error, AK_ERR_AGENT, status, fmt, ap);
    va_end(ap);
    return AK_ERR_AGENT;
}

/* Rejects the invocation (Genkit's thrown errors: HTTP 4xx / an error frame). */
AK_PRIVATE ak_result ak__reject(ak_invocation *inv, ak_status st, const char *fmt, ...) {
    va_list ap;
    inv->rejected = 1;
    inv->resolved = 1;
    va_start(ap, fmt);
    ak__error_vset(&inv->thrown, AK_ERR_AGENT, st, fmt, ap);
    va_end(ap);
    return AK_ERR_AGENT;
}

/* ---- chunks --------------------------------------------------------------------------- */

/* Sends {key: value} to the caller, through the client transform, and frees d, where value
   was built (NULL: out of memory, nothing is sent). Returns 0 when the chunk could not be
   built. */
AK_PRIVATE int ak__emit_in(ak_invocation *inv, ak_json_doc *d, const char *key, ak_json *value) {
    const ak_client_transform *t = &inv->agent->desc.transform;
    ak_json *chunk = ak_json_new_object(d);
    int built = value && ak_json_set(d, chunk, key, value) == AK_OK;
    if (built && (!t->chunk || t->chunk(t->ud, d, &chunk)) && chunk) inv->on_chunk(inv->chunk_ud, chunk);
    ak_json_doc_free(d);
    return built;
}

/* ak__emit_in with a copy of value; nothing while detached. */
AK_PRIVATE int ak__emit(ak_invocation *inv, const char *key, ak_json *value) {
    ak_json_doc d;
    if (inv->detached || !inv->on_chunk || !value) return 1;
    ak_json_doc_init(&d, inv->alloc);
    return ak__emit_in(inv, &d, key, ak_json_copy(&d, value));
}

/* {role, index?, content, custom?} from a model chunk or parts. */
AK_PRIVATE void ak__emit_model_chunk(ak_invocation *inv, const char *role, int index, const ak_json *content,
                                     const ak_json *custom) {
    ak_json_doc d;
    ak_json *mc;
    if (inv->detached || !inv->on_chunk) return;
    ak_json_doc_init(&d, inv->alloc);
    mc = ak_json_new_object(&d);
    ak_json_set_str(&d, mc, "role", role);
    if (index >= 0) ak_json_set_int(&d, mc, "index", index);
    ak_json_set(&d, mc, "content", content ? ak_json_copy(&d, content) : ak_json_new_array(&d));
    if (custom) ak_json_set(&d, mc, "custom", ak_json_copy(&d, custom));
    ak__emit_in(inv, &d, "modelChunk", d.err ? NULL : mc);
}

AK_PRIVATE void ak__emit_turn_end(ak_invocation *inv, const char *snapshot_id, int has_reason, ak_finish_reason r) {
    ak_json_doc d;
    ak_json *te;
    if (inv->detached || !inv->on_chunk) return;
    ak_json_doc_init(&d, inv->alloc);
    te = ak_json_new_object(&d);
    if (snapshot_id && *snapshot_id) ak_json_set_str(&d, te, "snapshotId", snapshot_id);
    if (has_reason) ak_json_set_str(&d, te, "finishReason", ak_finish_reason_name(r));
    ak__emit_in(inv, &d, "turnEnd", te);
}

/* The state as clients see it (clientTransform.state applied), built in d. */
AK_PRIVATE ak_json *ak__client_state(ak_agent *a, const ak_session_state *s, ak_json_doc *d) {
    ak_json *st = ak_session_state_to_json(s, d);
    if (st && a->desc.transform.state && a->desc.transform.state(a->desc.transform.ud, d, &st) != AK_OK) return NULL;
    return st;
}

/* Streams the custom state: the first patch of a turn replaces the root, later ones diff. */
AK_PRIVATE ak_result ak__emit_custom_patch(ak_invocation *inv) {
    ak_json_doc d;
    ak_json *now, *patch = NULL;
    int sent_ok = 1;
    if (inv->detached || !inv->on_chunk) return AK_OK;
    ak_json_doc_init(&d, inv->alloc);
    if (inv->agent->desc.transform.state)
        now = ak_json_get(ak__client_state(inv->agent, &inv->state, &d), "custom");
    else
        now = inv->state.custom ? inv->state.custom->value : NULL;
    if (inv->first_patch) {
        ak_json *op = ak_json_new_object(&d);
        patch = ak_json_new_array(&d);
        ak_json_set_str(&d, op, "op", "replace");
        ak_json_set_str(&d, op, "path", "");
        ak_json_set(&d, op, "value", ak_json_copy(&d, now));
        ak_json_push(patch, op);
    } else if (ak_json_diff(&d, inv->sent_custom ? inv->sent_custom->value : NULL, now, &patch) != AK_OK) {
        patch = NULL;
    }
    if (!patch || d.err) {
        sent_ok = 0;
    } else if (ak_json_len(patch)) {
        ak_jref *sent = ak_jref_new(inv->alloc, now);
        sent_ok = sent && ak__emit(inv, "customPatch", patch);
        if (sent_ok) {
            ak_jref_release(inv->sent_custom);
            inv->sent_custom = sent;
            inv->first_patch = 0;
        } else {
            ak_jref_release(sent);
        }
    }
    ak_json_doc_free(&d);
    /* a listener that missed a patch would track the wrong custom state from then on */
    if (sent_ok) return AK_OK;
    if (!inv->turn_failed) ak__turn_error(inv, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory streaming the custom state");
    return AK_ERR_OUT_OF_MEMORY;
}

/* ---- snapshot writes ------------------------------------------------------------------ */

/* The row a turn writes, handed to the store through an abort-aware mutator: a row that was
   aborted meanwhile is never overwritten. */
typedef struct ak__write {
    ak_snapshot *snap;
    int abort_aware;
} ak__write;

AK_PRIVATE ak_result ak__write_mutator(void *ud, const ak_snapshot *current, ak_snapshot **next) {
    ak__write *w = (ak__write *)ud;
    if (w->abort_aware && current && current->status == AK_SNAPSHOT_ABORTED) return AK_OK;
    *next = ak_snapshot_retain(w->snap);
    return AK_OK;
}

/* Writes a row of state under id: a turn's (AK_OK when written or skipped) or the pending
   row of a detach, which is the one an abort may mark. Returns the store's error. */
AK_PRIVATE ak_result ak__save_row(ak_invocation *inv, const char *id, const ak_session_state *state,
                                  ak_snapshot_status status, int has_reason, ak_finish_reason reason,
                                  const ak_json *error, ak_error *err) {
    ak_store *store = inv->agent->desc.store;
    char written[AK_ID_MAX + 1];
    ak__write w;
    ak_result rc;
    int64_t now = ak_now_ms(inv->ctx);
    /* the snapshot freezes the turn's messages: store them without growth slack */
    ak_msgs_compact(inv->alloc, state->messages);
    w.snap = ak_snapshot_new(inv->alloc, id, state->session_id, inv->parent_id, state);
    w.abort_aware = status != AK_SNAPSHOT_PENDING;
    if (!w.snap) return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory writing snapshot");
    w.snap->created_at = w.snap->updated_at = now;
    if (status == AK_SNAPSHOT_PENDING) w.snap->heartbeat_at = now;
    w.snap->status = status;
    w.snap->has_finish_reason = has_reason;
    w.snap->finish_reason = reason;
    if (error && !(w.snap->error = ak_jref_new(inv->alloc, error))) {
        ak_snapshot_release(w.snap);
        return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory writing snapshot");
    }
    rc = store->save(store, id, ak__write_mutator, &w, inv->context, written, err);
    ak_snapshot_release(w.snap);
    return rc;
}

/* ---- session resolution (Genkit's resolveSession) -------------------------------------- */

AK_PRIVATE ak_result ak__validate_custom(ak_invocation *inv, const ak_jref *custom, ak_error *err) {
    ak_error e;
    if (!inv->agent->state_schema || !custom) return AK_OK;
    if (ak__agent_schema_check(inv->agent->state_schema, custom->value, &e) != AK_OK)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "Schema validation failed for custom state: %s",
                              e.message);
    return AK_OK;
}

/* Resolves the output of a failed load (graceful: the invocation resolves, no chunks). */
AK_PRIVATE void ak__resolve_load_failure(ak_invocation *inv, const ak_error *e, const ak_json *init_state) {
    ak_json_doc *d = &inv->io;
    ak_json *o = ak_json_new_object(d);
    ak_json_set_str(d, o, "finishReason", "failed");
    ak_json_set(d, o, "error", ak__error_json(d, e->status, e->message, 1, NULL));
    if (init_state) ak_json_set(d, o, "state", ak_json_copy(d, init_state));
    inv->output = o;
    inv->failed = 1;
    inv->resolved = 1;
    inv->phase = AK__INV_DONE;
}

/* A store that could not load the session resolves the invocation with its error. */
AK_PRIVATE ak_result ak__resolve_store_failure(ak_invocation *inv, ak_result rc, ak_error *e) {
    e->code = AK_ERR_AGENT;
    if (e->status == AK_STATUS_OK) e->status = ak_result_status(rc);
    ak__resolve_load_failure(inv, e, NULL);
    return AK_OK;
}

AK_PRIVATE ak_result ak__adopt_snapshot(ak_invocation *inv, const ak_snapshot *snap) {
    ak_session_state_free(inv->alloc, &inv->state);
    if (ak_session_state_copy(inv->alloc, &snap->state, &inv->state) != AK_OK) return AK_ERR_OUT_OF_MEMORY;
    if (!inv->state.session_id && snap->session_id &&
        ak_session_state_set_id(inv->alloc, &inv->state, snap->session_id) != AK_OK)
        return AK_ERR_OUT_OF_MEMORY;
    ak__set_str(inv->alloc, &inv->good_id, snap->id);
    ak__set_str(inv->alloc, &inv->parent_id, snap->id);
    return AK_OK;
}

/* snapshotId: load it, check ownership (thrown) and status (graceful). */
AK_PRIVATE ak_result ak__resolve_snapshot(ak_invocation *inv, const char *id, const char *sid, ak_error *err) {
    ak_store *store = inv->agent->desc.store;
    ak_snapshot *snap = NULL;
    ak_error e;
    ak_result rc = store->get(store, id, NULL, inv->context, &snap, &e);
    const char *owner;
    if (rc != AK_OK) return ak__resolve_store_failure(inv, rc, &e);
    if (!snap) {
        ak_error_setst(&e, AK_ERR_AGENT, AK_STATUS_NOT_FOUND, "Snapshot %s not found", id);
        ak__resolve_load_failure(inv, &e, NULL);
        return AK_OK;
    }
    owner = snap->session_id ? snap->session_id : snap->state.session_id;
    if (sid && (!owner || !ak__streq(owner, sid))) {
        rc = ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT,
                            "Snapshot %s does not belong to session %s (it belongs to %s).", id, sid,
                            owner ? owner : "no session");
        ak_snapshot_release(snap);
        return rc;
    }
    if (snap->status != AK_SNAPSHOT_COMPLETED && snap->status != AK_SNAPSHOT_NONE) {
        ak_error_setst(&e, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT,
                       "Snapshot %s is not resumable (status: %s). Only 'completed' snapshots can be resumed.", id,
                       ak_snapshot_status_name(snap->status));
        ak__resolve_load_failure(inv, &e, NULL);
    } else if (ak__validate_custom(inv, snap->state.custom, &e) != AK_OK) {
        ak__resolve_load_failure(inv, &e, NULL);
    } else if (ak__adopt_snapshot(inv, snap) != AK_OK) {
        ak_snapshot_release(snap);
        return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory loading snapshot");
    }
    ak_snapshot_release(snap);
    return AK_OK;
}

/* sessionId: the latest leaf, walking back past rows that are not completed. */
AK_PRIVATE ak_result ak__resolve_session(ak_invocation *inv, const char *sid, ak_error *err) {
    ak_store *store = inv->agent->desc.store;
    ak_snapshot *snap = NULL;
    ak_error e;
    int hops = 0;
    ak_result rc = store->get(store, NULL, sid, inv->context, &snap, &e);
    while (rc == AK_OK && snap && snap->status != AK_SNAPSHOT_COMPLETED && snap->status != AK_SNAPSHOT_NONE) {
        ak_snapshot *parent = NULL;
        if (!snap->parent_id || ak__streq(snap->parent_id, snap->id) || ++hops > 100000) {
            ak_snapshot_release(snap);
            snap = NULL;
            if (hops > 100000) rc = ak_error_setst(&e, AK_ERR_STATE, AK_STATUS_FAILED_PRECONDITION,
                                                 "Session %s has cyclic history.", sid);
            break;
        }
        rc = store->get(store, snap->parent_id, NULL, inv->context, &parent, &e);
        ak_snapshot_release(snap);
        snap = parent;
    }
    if (rc != AK_OK) return ak__resolve_store_failure(inv, rc, &e);
    if (!snap) /* a new session with the id the caller chose */
        return ak_session_state_set_id(inv->alloc, &inv->state, sid) == AK_OK
                   ? AK_OK : ak__oom(err);
    if (ak__validate_custom(inv, snap->state.custom, &e) != AK_OK) ak__resolve_load_failure(inv, &e, NULL);
    else if (ak__adopt_snapshot(inv, snap) != AK_OK) rc = ak__oom(err);
    ak_snapshot_release(snap);
    return rc;
}

/* Genkit's init handling (§4.4): misuse is rejected; load failures resolve gracefully. */
AK_PRIVATE ak_result ak__resolve_init(ak_invocation *inv, const ak_json *init, ak_error *err) {
    ak_agent *a = inv->agent;
    const ak_json *jid = ak_json_get(init, "snapshotId"), *jsid = ak_json_get(init, "sessionId"),
                  *jstate = ak_json_get(init, "state");
    const char *id = ak_json_str(jid), *sid = ak_json_str(jsid);
    ak_result rc;
    if (init && !ak_json_is(init, AK_JSON_OBJECT))
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "init must be an object");
    if ((jid && (!id || !*id || jid->len > AK_ID_MAX)) || (jsid && (!sid || !*sid || jsid->len > AK_ID_MAX)))
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT,
                              "init.snapshotId and init.sessionId must be non-empty strings of at most %d bytes",
                              AK_ID_MAX);
    if ((id || sid) && !a->desc.store)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_FAILED_PRECONDITION,
                              "Cannot use '%s' with agent '%s': this agent has no store configured (client-managed "
                              "state). Send 'state' instead.", id ? "snapshotId" : "sessionId", a->desc.name);
    if (jstate && a->desc.store)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_FAILED_PRECONDITION,
                              "Cannot send 'state' to agent '%s': this agent uses a server-managed store. Send "
                              "'snapshotId' or 'sessionId' instead.", a->desc.name);
    if (id) {
        if ((rc = ak__resolve_snapshot(inv, id, sid, err)) != AK_OK) return rc;
    } else if (sid) {
        if ((rc = ak__resolve_session(inv, sid, err)) != AK_OK) return rc;
    } else if (jstate) {
        ak_error e;
        ak_session_state st;
        if ((rc = ak_session_state_from_json(inv->alloc, jstate, &st, &e)) != AK_OK)
            return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "init.state: %s", e.message);
        ak_session_state_free(inv->alloc, &inv->state);
        inv->state = st;
        if (ak__validate_custom(inv, st.custom, &e) != AK_OK) ak__resolve_load_failure(inv, &e, jstate);
    }
    if (!inv->resolved && !inv->state.session_id) {
        /* a new server-managed session needs its first snapshot id too: both at once */
        int with_turn = ak__server_managed(inv) && !inv->turn_id[0];
        char uuid[37];
        if ((rc = ak_uuid4_pair(inv->ctx, uuid, with_turn ? inv->turn_id : NULL)) != AK_OK)
            return ak_error_set(err, rc, "cannot make a session id: %s", ak_result_str(rc));
        if (ak_session_state_set_id(inv->alloc, &inv->state, uuid) != AK_OK)
            return ak__oom(err);
    }
    if (ak_session_state_copy(inv->alloc, &inv->state, &inv->good) != AK_OK)
        return ak__oom(err);
    return AK_OK;
}

/* ---- invocations ---------------------------------------------------------------------- */

AK_PRIVATE void ak__turn_release(ak_invocation *inv) {
    if (!inv->agent->desc.turn) ak__prompt_release(inv);
    if (inv->turn_state) ak_free(inv->alloc, inv->turn_state, inv->turn_state_size);
    inv->turn_state = NULL;
    inv->turn_state_size = 0;
    ak_jref_release(inv->error_details);
    inv->error_details = NULL;
    ak_json_doc_reset(&inv->turn_doc);
}

AK_PRIVATE void ak__stop_watch(ak_invocation *inv) {
    ak_store *store = inv->agent->desc.store;
    if (inv->watch && store && store->unwatch) store->unwatch(store, inv->watch);
    inv->watch = NULL;
}

AK_PRIVATE void ak__inv_destroy(ak_invocation *inv) {
    ak_invocation **link;
    for (link = &inv->agent->invocations; *link; link = &(*link)->next)
        if (*link == inv) {
            *link = inv->next;
            break;
        }
    ak__turn_release(inv);
    ak__stop_watch(inv);
    ak_session_state_free(inv->alloc, &inv->state);
    ak_session_state_free(inv->alloc, &inv->good);
    ak__strfree(inv->alloc, inv->good_id);
    ak__strfree(inv->alloc, inv->parent_id);
    ak_jref_release(inv->last_error);
    ak_jref_release(inv->sent_custom);
    ak_json_doc_free(&inv->turn_doc);
    ak_json_doc_free(&inv->io);
    ak_free(inv->alloc, inv, sizeof *inv);
}

AKDEF ak_result ak_agent_invoke(ak_agent *a, const ak_json *init, const ak_invoke_opts *opts,
                                ak_invocation **out, ak_error *err) {
    const ak_allocator *alloc = ak_context_allocator(a->ctx);
    ak_invocation *inv = (ak_invocation *)ak_alloc(alloc, sizeof *inv);
    ak_result rc;
    *out = NULL;
    if (!inv) return ak__oom(err);
    AK_MEMSET(inv, 0, sizeof *inv);
    inv->agent = a;
    inv->ctx = a->ctx;
    inv->alloc = alloc;
    inv->started = ak_mono_ms(a->ctx);
    ak_json_doc_init(&inv->io, alloc);
    ak_json_doc_init(&inv->turn_doc, alloc);
    if (opts) {
        inv->on_chunk = opts->on_chunk;
        inv->chunk_ud = opts->chunk_ud;
        if (opts->context) inv->context = ak_json_copy(&inv->io, opts->context);
    }
    inv->next = a->invocations;
    a->invocations = inv;
    rc = ak__resolve_init(inv, init, err);
    if (rc == AK_OK && inv->io.err) rc = ak__oom(err);
    if (rc != AK_OK) {
        ak__inv_destroy(inv);
        return rc;
    }
    ak__trace(inv, AK_TRACE_INVOCATION, 0, a->desc.name, 0, AK_STATUS_OK, NULL);
    *out = inv;
    return AK_OK;
}

AK_PRIVATE int ak__has_payload(const ak_json *input) {
    const ak_json *resume = ak_json_get(input, "resume");
    return ak_json_get(input, "message") || ak_json_len(ak_json_get(resume, "respond")) ||
           ak_json_len(ak_json_get(resume, "restart"));
}

/* Every entry of input.resume.<what> must be a valid part of this kind. */
AK_PRIVATE ak_result ak__validate_resume_list(const ak_json *list, ak_part_kind kind, const char *what,
                                              const char *kind_name, ak_error *err) {
    const ak_json *p;
    ak_error e;
    size_t i = 0;
    for (p = ak_json_first(list); p; p = p->next, i++)
        if (ak_part_kind_of(p) != kind || ak_part_validate(p, &e) != AK_OK)
            return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT,
                                  "input.resume.%s[%zu] must be a %s part", what, i, kind_name);
    return AK_OK;
}

/* Checks an AgentInput's shape (the action layer's schema validation). */
AK_PRIVATE ak_result ak__validate_input(const ak_json *input, ak_error *err) {
    const ak_json *msg = ak_json_get(input, "message"), *resume = ak_json_get(input, "resume");
    const ak_json *detach = ak_json_get(input, "detach");
    ak_error e;
    ak_result rc;
    if (!ak_json_is(input, AK_JSON_OBJECT))
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "an agent input must be an object");
    if (msg && ak_msg_validate(msg, &e) != AK_OK)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "input.message: %s", e.message);
    if (detach && detach->type != AK_JSON_BOOL)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "input.detach must be a boolean");
    if (resume) {
        const ak_json *respond = ak_json_get(resume, "respond"), *restart = ak_json_get(resume, "restart");
        if (!ak_json_is(resume, AK_JSON_OBJECT) || (respond && respond->type != AK_JSON_ARRAY) ||
            (restart && restart->type != AK_JSON_ARRAY))
            return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT,
                                  "input.resume must be {respond?: [...], restart?: [...]}");
        if ((rc = ak__validate_resume_list(respond, AK_PART_TOOL_RESPONSE, "respond", "toolResponse", err)) != AK_OK)
            return rc;
        return ak__validate_resume_list(restart, AK_PART_TOOL_REQUEST, "restart", "toolRequest", err);
    }
    return AK_OK;
}

AKDEF ak_result ak_invocation_send(ak_invocation *inv, const ak_json *input, ak_error *err) {
    ak_json *copy;
    ak_result rc;
    if (inv->closed) return ak_error_set(err, AK_ERR_STATE, "the invocation is closed");
    if ((rc = ak__validate_input(input, err)) != AK_OK) return rc;
    if (inv->resolved) return AK_OK; /* a resolved invocation takes no more turns */
    if (!(copy = ak_json_copy(&inv->io, input))) return ak__oom(err);
    if (inv->queue_tail) inv->queue_tail->next = copy;
    else inv->queue = copy;
    inv->queue_tail = copy;
    return AK_OK;
}

AKDEF void ak_invocation_close(ak_invocation *inv) { inv->closed = 1; }

AK_PRIVATE ak_json *ak__queue_pop(ak_invocation *inv) {
    ak_json *in = inv->queue;
    if (in) {
        inv->queue = in->next;
        if (!inv->queue) inv->queue_tail = NULL;
        in->next = NULL;
    }
    return in;
}

AK_PRIVATE void ak__on_store_write(void *ud, const ak_snapshot *snap) {
    ak_invocation *inv = (ak_invocation *)ud;
    if (snap->status == AK_SNAPSHOT_ABORTED) inv->aborted = 1;
}

/* Reserves the snapshot id the next turn writes, if none is reserved yet. */
AK_PRIVATE ak_result ak__reserve_id(ak_invocation *inv) {
    if (inv->turn_id[0] || !ak__server_managed(inv)) return AK_OK;
    return ak_uuid4(inv->ctx, inv->turn_id);
}

/* A detach input (Genkit §5.7): write the pending row and resolve at once; the work goes on
   in the background. */
AK_PRIVATE ak_result ak__inv_detach(ak_invocation *inv) {
    ak_store *store = inv->agent->desc.store;
    ak_json_doc *d = &inv->io;
    ak_error e;
    ak_json *o;
    ak_result rc;
    if (!store) return ak__reject(inv, AK_STATUS_FAILED_PRECONDITION, "Detach is only supported when a session store is provided.");
    if (inv->detached) return AK_OK;
    if ((rc = ak__reserve_id(inv)) != AK_OK) return ak__reject(inv, AK_STATUS_INTERNAL, "cannot make a snapshot id");
    /* the row holds the state before the detached turn */
    rc = ak__save_row(inv, inv->turn_id, inv->phase == AK__INV_TURN ? &inv->good : &inv->state, AK_SNAPSHOT_PENDING,
                      0, AK_FINISH_UNKNOWN, NULL, &e);
    if (rc != AK_OK) return ak__reject(inv, e.status ? e.status : ak_result_status(rc), "%s", e.message);
    inv->detached = 1;
    inv->next_beat = ak_mono_ms(inv->ctx) + AK__HEARTBEAT_MS;
    if (store->watch) store->watch(store, inv->turn_id, ak__on_store_write, inv, inv->context, &inv->watch);
    o = ak_json_new_object(d);
    ak_json_set_str(d, o, "sessionId", inv->state.session_id);
    ak_json_set_str(d, o, "snapshotId", inv->turn_id);
    ak_json_set_str(d, o, "finishReason", "detached");
    inv->output = o;
    inv->resolved = 1;
    return d->err ? ak__reject(inv, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory") : AK_OK;
}

/* Keeps a pending row's heartbeat fresh while its detached work runs. */
AK_PRIVATE ak_result ak__beat_mutator(void *ud, const ak_snapshot *current, ak_snapshot **next) {
    ak_invocation *inv = (ak_invocation *)ud;
    if (!current || current->status != AK_SNAPSHOT_PENDING) return AK_OK;
    if (!(*next = ak_snapshot_clone(current))) return AK_ERR_OUT_OF_MEMORY;
    (*next)->heartbeat_at = ak_now_ms(inv->ctx);
    return AK_OK;
}

AK_PRIVATE void ak__heartbeat(ak_invocation *inv) {
    ak_store *store = inv->agent->desc.store;
    char written[AK_ID_MAX + 1];
    if (!inv->detached || inv->phase >= AK__INV_FINISH || ak_mono_ms(inv->ctx) < inv->next_beat) return;
    inv->next_beat += AK__HEARTBEAT_MS;
    store->save(store, inv->turn_id, ak__beat_mutator, inv, inv->context, written, NULL);
}

/* Takes the next input; detach inputs are handled as soon as they arrive, even while a turn
   runs (Genkit's input pump). Returns 1 when a turn should start with *input. */
AK_PRIVATE int ak__take_input(ak_invocation *inv, ak_json **input) {
    while (inv->queue) {
        ak_json *in = inv->queue;
        int detach = ak_json_bool(ak_json_get(in, "detach"), 0);
        if (detach) {
            if (ak__inv_detach(inv) != AK_OK) return 0;
            if (!ak__has_payload(in)) {
                ak__queue_pop(inv); /* a pure detach runs nothing */
                continue;
            }
            ak_json_remove(in, "detach");
        }
        if (inv->phase == AK__INV_TURN) return 0; /* the next turn waits */
        *input = ak__queue_pop(inv);
        return 1;
    }
    return 0;
}

AK_PRIVATE ak_result ak__turn_begin(ak_invocation *inv, const ak_json *input) {
    const ak_json *msg = ak_json_get(input, "message");
    if (msg && ak_msgs_append(inv->alloc, &inv->state.messages, msg) != AK_OK)
        return ak__turn_oom(inv);
    if (msg) inv->version++;
    if (ak__reserve_id(inv) != AK_OK) return ak__turn_error(inv, AK_STATUS_INTERNAL, "cannot make a snapshot id");
    inv->input = input;
    inv->first_patch = 1;
    inv->has_reason = 0;
    inv->turn_failed = 0;
    inv->phase = AK__INV_TURN;
    inv->turn_started = ak_mono_ms(inv->ctx);
    inv->wake_at = 0;
    AK_MEMSET(&inv->pt, 0, sizeof inv->pt);
    ak__trace(inv, AK_TRACE_TURN, 0, "runTurn", 0, AK_STATUS_OK, NULL);
    return AK_OK;
}

/* A successful turn: write its snapshot, then turnEnd (so the snapshot is readable). */
AK_PRIVATE void ak__turn_commit(ak_invocation *inv) {
    ak_error e;
    if (ak__server_managed(inv) &&
        ak__save_row(inv, inv->turn_id, &inv->state, AK_SNAPSHOT_COMPLETED, inv->has_reason, inv->reason, NULL, &e) != AK_OK) {
        ak__turn_error(inv, e.status ? e.status : AK_STATUS_INTERNAL, "%s", e.message);
        return;
    }
    ak_session_state_free(inv->alloc, &inv->good);
    ak_session_state_copy(inv->alloc, &inv->state, &inv->good);
    if (ak__server_managed(inv)) {
        ak__set_str(inv->alloc, &inv->good_id, inv->turn_id);
        ak__set_str(inv->alloc, &inv->parent_id, inv->turn_id);
    }
    inv->saved_version = inv->version;
    ak__emit_turn_end(inv, ak__server_managed(inv) ? inv->turn_id : NULL, inv->has_reason, inv->reason);
    ak__trace(inv, AK_TRACE_TURN, 1, "runTurn", inv->turn_started, AK_STATUS_OK, NULL);
    inv->last_reason = inv->reason;
    inv->has_last_reason = inv->has_reason;
    inv->turn_index++;
    inv->turn_id[0] = 0;
    inv->phase = AK__INV_IDLE;
    ak__turn_release(inv);
}

/* A failed turn: write a failed row with the partial state, turnEnd, and stop taking inputs.
   A detached turn stopped by an abort writes nothing (the row already says aborted). */
AK_PRIVATE void ak__turn_fail(ak_invocation *inv) {
    ak_json_doc d;
    ak_json *ej;
    ak_status st = inv->turn_error.status ? inv->turn_error.status : AK_STATUS_INTERNAL;
    ak__trace(inv, AK_TRACE_TURN, 1, "runTurn", inv->turn_started, st, NULL);
    inv->phase = AK__INV_FINISH;
    if (inv->aborted) {
        inv->last_reason = AK_FINISH_ABORTED, inv->has_last_reason = 1;
        ak__turn_release(inv);
        return;
    }
    ak_json_doc_init(&d, inv->alloc);
    ej = ak__error_json(&d, st, inv->turn_error.message, inv->error_prefixed,
                        inv->error_details ? inv->error_details->value : NULL);
    if (ej) {
        ak_jref_release(inv->last_error);
        inv->last_error = ak_jref_new(inv->alloc, ej);
    }
    if (ak__server_managed(inv))
        ak__save_row(inv, inv->turn_id, &inv->state, AK_SNAPSHOT_FAILED, 1, AK_FINISH_FAILED, ej, NULL);
    ak_json_doc_free(&d);
    ak__emit_turn_end(inv, ak__server_managed(inv) ? inv->turn_id : NULL, 1, AK_FINISH_FAILED);
    inv->last_reason = AK_FINISH_FAILED;
    inv->has_last_reason = 1;
    inv->failed = 1;
    ak__turn_release(inv);
}

AK_PRIVATE ak_result ak__turn_step(ak_invocation *inv) {
    ak_turn_info info;
    ak_agent *a = inv->agent;
    ak_result rc;
    info.snapshot_id = inv->turn_id[0] ? inv->turn_id : NULL;
    info.parent_snapshot_id = inv->parent_id;
    info.turn_index = inv->turn_index;
    if (inv->turn_failed) rc = AK_ERR_AGENT; /* failed while starting */
    else if (a->desc.turn) rc = a->desc.turn(inv, inv->input, &info, a->desc.ud);
    else rc = ak__prompt_turn(inv, inv->input, &info, NULL);
    if (rc == AK_PENDING) return AK_PENDING;
    if (rc != AK_OK && !inv->turn_failed)
        ak__turn_error(inv, ak_result_status(rc), "%s", ak_result_str(rc));
    if (inv->turn_failed || inv->aborted) {
        if (inv->aborted && !inv->turn_failed) ak__turn_error(inv, AK_STATUS_CANCELLED, "The agent run was aborted.");
        ak__turn_fail(inv);
    } else {
        ak__turn_commit(inv);
        if (inv->turn_failed) ak__turn_fail(inv); /* the snapshot write failed */
    }
    return AK_OK;
}

/* The result a handler returns after its last turn. */
AK_PRIVATE ak_result ak__default_result(ak_runner *r, ak_json_doc *d, ak_json **message, ak_json **artifacts,
                                        ak_finish_reason *reason) {
    size_t n = ak_msgs_count(r->state.messages);
    *message = n ? ak_json_copy(d, ak_msgs_at(r->state.messages, n - 1)) : NULL;
    *artifacts = r->state.artifacts ? ak_json_copy(d, r->state.artifacts->value) : NULL;
    *reason = AK_FINISH_UNKNOWN;
    return d->err;
}

/* Builds the AgentOutput (Genkit §5.8). */
AK_PRIVATE void ak__build_output(ak_invocation *inv, ak_json *message, ak_json *artifacts, ak_finish_reason reason) {
    ak_json_doc *d = &inv->io;
    ak_json *o = ak_json_new_object(d);
    /* a failed invocation answers with the state of its last good turn */
    const ak_session_state *st = inv->failed ? &inv->good : &inv->state;
    ak_json_set_str(d, o, "sessionId", inv->state.session_id);
    if (inv->failed) {
        size_t n = ak_msgs_count(st->messages);
        ak_json_set_str(d, o, "finishReason", "failed");
        if (inv->last_error) ak_json_set(d, o, "error", ak_json_copy(d, inv->last_error->value));
        message = n ? ak_json_copy(d, ak_msgs_at(st->messages, n - 1)) : NULL;
    }
    if (ak_json_len(artifacts)) ak_json_set(d, o, "artifacts", artifacts);
    if (message) ak_json_set(d, o, "message", message);
    if (!inv->failed && (reason != AK_FINISH_UNKNOWN || inv->has_last_reason))
        ak_json_set_str(d, o, "finishReason",
                        ak_finish_reason_name(reason != AK_FINISH_UNKNOWN ? reason : inv->last_reason));
    if (!ak__server_managed(inv)) ak_json_set(d, o, "state", ak__client_state(inv->agent, st, d));
    else if (inv->good_id) ak_json_set_str(d, o, "snapshotId", inv->good_id);
    inv->output = o;
}

/* After the last input: the handler's result, a final snapshot if the session changed since
   the last one, then the output. */
AK_PRIVATE void ak__finish(ak_invocation *inv) {
    ak_agent *a = inv->agent;
    ak_json *message = NULL, *artifacts = NULL;
    ak_finish_reason reason = AK_FINISH_UNKNOWN;
    ak_json_doc *d = &inv->io;
    if (!inv->aborted) {
        if (a->desc.result) a->desc.result(inv, d, &message, &artifacts, &reason, a->desc.ud);
        else ak__default_result(inv, d, &message, &artifacts, &reason);
    }
    if (!inv->failed && !inv->aborted && ak__server_managed(inv) && inv->version != inv->saved_version) {
        char id[37];
        if (ak_uuid4(inv->ctx, id) == AK_OK &&
            ak__save_row(inv, id, &inv->state, AK_SNAPSHOT_COMPLETED, inv->has_last_reason, inv->last_reason, NULL, NULL) == AK_OK) {
            ak__set_str(inv->alloc, &inv->good_id, id);
            ak__set_str(inv->alloc, &inv->parent_id, id);
            inv->saved_version = inv->version;
        }
    }
    ak__stop_watch(inv);
    if (!inv->resolved) {
        ak__build_output(inv, message, artifacts, reason);
        inv->resolved = 1;
        if (d->err) ak__reject(inv, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory building the output");
    }
    inv->phase = AK__INV_DONE;
    ak__trace(inv, AK_TRACE_INVOCATION, 1, a->desc.name, inv->started, inv->failed ? AK_STATUS_INTERNAL : AK_STATUS_OK, NULL);
}

/* Runs the invocation as far as it can go without waiting. */
AK_PRIVATE ak_result ak__advance(ak_invocation *inv) {
    for (;;) {
        ak_json *input = NULL;
        ak__heartbeat(inv);
        switch (inv->phase) {
        case AK__INV_IDLE:
            if (ak__take_input(inv, &input)) {
                if (ak__turn_begin(inv, input) != AK_OK) ak__turn_fail(inv);
                continue;
            }
            if (inv->rejected) return AK_OK;
            if (!inv->closed || inv->queue) return AK_PENDING; /* waiting for input */
            inv->phase = AK__INV_FINISH;
            continue;
        case AK__INV_TURN:
            ak__take_input(inv, &input); /* a detach may arrive mid-turn */
            if (inv->rejected) return AK_OK;
            if (ak__turn_step(inv) == AK_PENDING) return AK_PENDING;
            continue;
        case AK__INV_FINISH: ak__finish(inv); continue;
        case AK__INV_DONE: return AK_OK;
        }
    }
}

/* Waits, up to wait_ms, for what a pending turn waits on: its model call's I/O, or the time
   a custom turn asked to be woken at. Tools answering later are the host's business. */
AK_PRIVATE void ak__wait(ak_invocation *inv, int wait_ms) {
    int64_t left;
    if (wait_ms <= 0 || inv->phase != AK__INV_TURN) return;
    if (inv->pt.call.state == AK_CALL_RUNNING || inv->pt.call.state == AK_CALL_WAITING) {
        ak_model_call_poll(&inv->pt.call, wait_ms);
        return;
    }
    left = inv->wake_at - ak_mono_ms(inv->ctx);
    if (inv->agent->desc.turn && left > 0) ak_sleep_ms(inv->ctx, AK__MIN(left, (int64_t)wait_ms));
}

AKDEF ak_result ak_invocation_step(ak_invocation *inv, int wait_ms, ak_error *err) {
    ak_result rc;
    if (inv->resolved) {
        if (inv->rejected) {
            if (err) *err = inv->thrown;
            return AK_ERR_AGENT;
        }
        /* a detached invocation keeps working; the output is already there */
        if (inv->phase != AK__INV_DONE) ak__advance(inv);
        return AK_OK;
    }
    rc = ak__advance(inv);
    if (rc == AK_PENDING && !inv->resolved) {
        ak__wait(inv, wait_ms);
        rc = ak__advance(inv);
    }
    if (inv->rejected) {
        if (err) *err = inv->thrown;
        return AK_ERR_AGENT;
    }
    return inv->resolved ? AK_OK : AK_PENDING;
}

AKDEF const ak_json *ak_invocation_output(const ak_invocation *inv) { return inv->resolved ? inv->output : NULL; }

AKDEF void ak_invocation_free(ak_invocation *inv) {
    if (!inv) return;
    /* detached work goes on in the background: the agent finishes and frees it */
    if (inv->detached && !inv->rejected && inv->phase != AK__INV_DONE) {
        inv->caller_gone = 1;
        inv->on_chunk = NULL;
        return;
    }
    ak__inv_destroy(inv);
}

AKDEF ak_result ak_agent_pump(ak_agent *a, int wait_ms) {
    ak_invocation *inv, *next;
    int pending = 0;
    ak_store *store = a->desc.store;
    if (store && store->poll) store->poll(store);
    for (inv = a->invocations; inv; inv = next) {
        next = inv->next;
        if (!inv->caller_gone) continue;
        if (ak__advance(inv) == AK_OK && inv->phase == AK__INV_DONE) ak__inv_destroy(inv);
        else pending++;
    }
    if (pending && wait_ms > 0) {
        for (inv = a->invocations; inv; inv = inv->next)
            if (inv->caller_gone && inv->phase == AK__INV_TURN) {
                ak__wait(inv, wait_ms);
                break;
            }
    }
    return pending ? AK_PENDING : AK_OK;
}

AKDEF ak_result ak_agent_run(ak_agent *a, const ak_json *init, const ak_json *inputs,
                             const ak_invoke_opts *opts, ak_json_doc *d, ak_json **output,
                             ak_error *err) {
    ak_invocation *inv;
    const ak_json *in;
    ak_result rc = ak_agent_invoke(a, init, opts, &inv, err);
    *output = NULL;
    if (rc != AK_OK) return rc;
    for (in = ak_json_first(inputs); in && rc == AK_OK; in = in->next) rc = ak_invocation_send(inv, in, err);
    ak_invocation_close(inv);
    while (rc == AK_OK && (rc = ak_invocation_step(inv, 50, err)) == AK_PENDING)
        rc = AK_OK; /* not finished: pump again */
    if (rc == AK_OK && !(*output = ak_json_copy(d, ak_invocation_output(inv))))
        rc = ak__oom(err);
    ak_invocation_free(inv);
    return rc;
}

/* ---- companion actions ---------------------------------------------------------------- */

AK_PRIVATE ak_result ak__need_store(ak_agent *a, const char *what, ak_error *err) {
    if (a->desc.store) return AK_OK;
    return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_FAILED_PRECONDITION,
                          "%s requires a persistent store. Provide a 'store' when defining '%s'.", what, a->desc.name);
}

AKDEF ak_result ak_agent_get_snapshot(ak_agent *a, const char *snapshot_id, const char *session_id,
                                      const ak_json *context, ak_json_doc *d, ak_json **out, ak_error *err) {
    ak_store *store = a->desc.store;
    ak_snapshot *snap = NULL;
    ak_json *st;
    ak_result rc;
    *out = NULL;
    if ((rc = ak__need_store(a, "getSnapshotData", err)) != AK_OK) return rc;
    if (snapshot_id && !*snapshot_id) snapshot_id = NULL;
    if (session_id && !*session_id) session_id = NULL;
    if ((snapshot_id == NULL) == (session_id == NULL))
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT,
                              "getSnapshot requires exactly one of 'snapshotId' or 'sessionId' (got %s).",
                              snapshot_id ? "snapshotId and sessionId" : "neither");
    if ((rc = store->get(store, snapshot_id, session_id, context, &snap, err)) != AK_OK) {
        if (err) err->code = AK_ERR_AGENT;
        return AK_ERR_AGENT;
    }
    if (!snap)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_NOT_FOUND, "Snapshot '%s' not found for agent '%s'.",
                              snapshot_id ? snapshot_id : session_id, a->desc.name);
    *out = ak_snapshot_to_json(snap, ak_snapshot_read_status(snap, ak_now_ms(a->ctx)), d);
    ak_snapshot_release(snap);
    if (*out && a->desc.transform.state && (st = ak_json_get(*out, "state")) != NULL) {
        ak_json *t = st;
        if (a->desc.transform.state(a->desc.transform.ud, d, &t) == AK_OK && t && t != st) ak_json_set(d, *out, "state", t);
    }
    return *out && !d->err ? AK_OK : ak__oom(err);
}

typedef struct ak__abort {
    ak_snapshot_status previous;
} ak__abort;

AK_PRIVATE ak_result ak__abort_mutator(void *ud, const ak_snapshot *current, ak_snapshot **next) {
    ak__abort *ab = (ak__abort *)ud;
    ab->previous = current ? (current->status ? current->status : AK_SNAPSHOT_COMPLETED) : AK_SNAPSHOT_NONE;
    if (!current || ab->previous == AK_SNAPSHOT_COMPLETED || ab->previous == AK_SNAPSHOT_FAILED ||
        ab->previous == AK_SNAPSHOT_ABORTED)
        return AK_OK;
    if (!(*next = ak_snapshot_clone(current))) return AK_ERR_OUT_OF_MEMORY;
    (*next)->status = AK_SNAPSHOT_ABORTED;
    return AK_OK;
}

AKDEF ak_result ak_agent_abort(ak_agent *a, const char *snapshot_id, const ak_json *context,
                               const char **previous, ak_error *err) {
    ak_store *store = a->desc.store;
    ak__abort ab;
    char written[AK_ID_MAX + 1];
    ak_result rc;
    *previous = NULL;
    if ((rc = ak__need_store(a, "abort", err)) != AK_OK) return rc;
    if (!snapshot_id || !*snapshot_id || ak__strlen(snapshot_id) > AK_ID_MAX)
        return ak_error_setst(err, AK_ERR_AGENT, AK_STATUS_INVALID_ARGUMENT, "abort requires a 'snapshotId'.");
    ab.previous = AK_SNAPSHOT_NONE;
    if ((rc = store->save(store, snapshot_id, ak__abort_mutator, &ab, context, written, err)) != AK_OK) {
        if (err) err->code = AK_ERR_AGENT;
        return AK_ERR_AGENT;
    }
    *previous = ak_snapshot_status_name(ab.previous);
    return AK_OK;
}

/* ---- the session runner API ----------------------------------------------------------- */

AKDEF size_t ak_runner_message_count(const ak_runner *r) { return ak_msgs_count(r->state.messages); }
AKDEF const ak_json *ak_runner_message(const ak_runner *r, size_t i) { return ak_msgs_at(r->state.messages, i); }

AKDEF ak_result ak_runner_add_message(ak_runner *r, const ak_json *msg) {
    ak_result rc = ak_msgs_append(r->alloc, &r->state.messages, msg);
    if (rc == AK_OK) r->version++;
    return rc;
}

AKDEF ak_result ak_runner_set_messages(ak_runner *r, const ak_json *array) {
    ak_msgs *m;
    ak_result rc = ak_msgs_from_json(r->alloc, array, &m);
    if (rc != AK_OK) return rc;
    ak_msgs_release(r->state.messages);
    r->state.messages = m;
    r->version++;
    return AK_OK;
}

AKDEF const ak_json *ak_runner_custom(const ak_runner *r) { return r->state.custom ? r->state.custom->value : NULL; }

AKDEF ak_result ak_runner_set_custom(ak_runner *r, const ak_json *custom) {
    ak_jref *c;
    ak_error e;
    if (!custom) return AK_ERR_INVALID_ARGUMENT;
    /* Checked now, not at the next load, so a bad value never reaches a snapshot. */
    if (r->agent->state_schema && ak__agent_schema_check(r->agent->state_schema, custom, &e) != AK_OK) {
        ak_log(r->agent->ctx, AK_LOG_WARN, "custom state refused: %s", e.message);
        return AK_ERR_SCHEMA;
    }
    if (!(c = ak_jref_new(r->alloc, custom))) return AK_ERR_OUT_OF_MEMORY;
    ak_jref_release(r->state.custom);
    r->state.custom = c;
    r->version++;
    return ak__emit_custom_patch(r);
}

AKDEF const ak_json *ak_runner_artifacts(const ak_runner *r) {
    static const ak_json empty = {AK_JSON_ARRAY, 0, 0, 0, 0, NULL, {NULL}, NULL};
    return r->state.artifacts ? r->state.artifacts->value : &empty;
}

/* Index of the artifact named like a (same name) in arr, or -1. */
AK_PRIVATE long ak__artifact_index(const ak_json *arr, const ak_json *a) {
    const ak_json *name = ak_json_get(a, "name"), *x;
    long i = 0;
    if (!ak_json_is(name, AK_JSON_STRING)) return -1;
    for (x = ak_json_first(arr); x; x = x->next, i++) {
        const ak_json *n = ak_json_get(x, "name");
        if (ak_json_is(n, AK_JSON_STRING) && ak_json_equal(n, name)) return i;
    }
    return -1;
}

AKDEF ak_result ak_runner_add_artifacts(ak_runner *r, const ak_json *artifacts) {
    ak_json_doc d;
    ak_json *arr, *one = NULL, *replaced, *added;
    const ak_json *list = artifacts, *a;
    ak_jref *next;
    ak_error e;
    ak_result rc;
    ak_json_doc_init(&d, r->alloc);
    if (ak_json_is(artifacts, AK_JSON_OBJECT)) {
        one = ak_json_new_array(&d);
        ak_json_push(one, ak_json_copy(&d, artifacts));
        list = one;
    }
    if ((rc = ak__artifacts_validate(list, &e)) != AK_OK) {
        ak_json_doc_free(&d);
        return rc;
    }
    arr = ak_json_copy(&d, ak_runner_artifacts(r));
    added = ak_json_new_array(&d);
    replaced = ak_json_new_array(&d);
    for (a = ak_json_first(list); a; a = a->next) {
        long i = ak__artifact_index(arr, a);
        if (i >= 0) {
            ak_json_replace_at(arr, (size_t)i, ak_json_copy(&d, a));
            ak_json_push(replaced, ak_json_copy(&d, a));
        } else {
            ak_json_push(arr, ak_json_copy(&d, a));
            ak_json_push(added, ak_json_copy(&d, a));
        }
    }
    next = d.err ? NULL : ak_jref_new(r->alloc, arr);
    if (next) {
        ak_jref_release(r->state.artifacts);
        r->state.artifacts = next;
        r->version++;
        /* new artifacts are announced before the replaced ones, as Genkit does */
        for (a = ak_json_first(added); a; a = a->next) ak__emit(r, "artifact", AK__UNCONST(ak_json *, a));
        for (a = ak_json_first(replaced); a; a = a->next) ak__emit(r, "artifact", AK__UNCONST(ak_json *, a));
    }
    ak_json_doc_free(&d);
    return next ? AK_OK : AK_ERR_OUT_OF_MEMORY;
}

AKDEF ak_result ak_runner_send_chunk(ak_runner *r, const ak_json *chunk) {
    ak__emit_model_chunk(r, "model", r->pt.msg_index, ak_json_get(chunk, "content"), ak_json_get(chunk, "custom"));
    return AK_OK;
}

AKDEF int ak_runner_aborted(const ak_runner *r) { return r->aborted; }
AKDEF const char *ak_runner_session_id(const ak_runner *r) { return r->state.session_id; }
AKDEF ak_finish_reason ak_runner_last_finish_reason(const ak_runner *r) {
    return r->has_last_reason ? r->last_reason : AK_FINISH_UNKNOWN;
}
AKDEF const ak_json *ak_runner_last_error(const ak_runner *r) { return r->last_error ? r->last_error->value : NULL; }

AKDEF void ak_runner_set_finish_reason(ak_runner *r, ak_finish_reason reason) {
    r->reason = reason;
    r->has_reason = 1;
}

AKDEF void *ak_runner_turn_state(ak_runner *r, size_t size) {
    if (r->turn_state) return size <= r->turn_state_size ? r->turn_state : NULL;
    r->turn_state = ak_alloc(r->alloc, size);
    if (r->turn_state) {
        AK_MEMSET(r->turn_state, 0, size);
        r->turn_state_size = size;
    }
    return r->turn_state;
}

AKDEF ak_json_doc *ak_runner_doc(ak_runner *r) { return &r->turn_doc; }
AKDEF ak_context *ak_runner_context(const ak_runner *r) { return r->ctx; }
AKDEF const ak_json *ak_runner_auth(const ak_runner *r) { return r->context; }

AKDEF ak_result ak_runner_wait_until(ak_runner *r, int64_t until) {
    if (r->aborted) return AK_ERR_CANCELLED;
    if (ak_mono_ms(r->ctx) >= until) return AK_OK;
    r->wake_at = until;
    return AK_PENDING;
}
