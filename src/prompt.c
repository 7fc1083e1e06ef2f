/* >>prompt: the prompt-agent turn (Genkit's defineAgent + generate's tool loop) as a state
   machine: resume handling, model calls over the shared history, parallel tools,
   interrupts, maxTurns */

#include "runner.c"

enum { AK__P_BEGIN = 0, AK__P_RESUME_TOOLS, AK__P_MODEL, AK__P_MODEL_WAIT, AK__P_TOOLS };

/* The toolRequest object of a part, and its name/ref. */
AK_PRIVATE const ak_json *ak__treq(const ak_json *part) { return ak_json_get(part, "toolRequest"); }
AK_PRIVATE const char *ak__tname(const ak_json *tr) { return ak_json_get_str(tr, "name"); }
AK_PRIVATE const char *ak__tref(const ak_json *tr) { return ak_json_get_str(tr, "ref"); }

/* Same tool name and the same ref (both absent counts as the same). */
AK_PRIVATE int ak__same_tool(const ak_json *a, const ak_json *b) {
    const char *ra = ak__tref(a), *rb = ak__tref(b), *na = ak__tname(a), *nb = ak__tname(b);
    return na && nb && ak__streq(na, nb) && (ra == rb || (ra && rb && ak__streq(ra, rb)));
}

AK_PRIVATE int ak__tool_index(const ak_agent *a, const char *name) {
    size_t i;
    for (i = 0; name && i < a->desc.tool_count; i++)
        if (ak__streq(a->desc.tools[i].name, name)) return (int)i;
    return -1;
}

/* The newest tool request in the history's model messages matching name + ref. */
AK_PRIVATE const ak_json *ak__history_tool_request(const ak_invocation *inv, const ak_json *want) {
    size_t i = ak_msgs_count(inv->state.messages);
    while (i--) {
        const ak_json *m = ak_msgs_at(inv->state.messages, i), *p;
        if (!ak_msg_role(m) || !ak__streq(ak_msg_role(m), "model")) continue;
        for (p = ak_json_first(ak_json_get(m, "content")); p; p = p->next)
            if (ak__treq(p) && ak__same_tool(ak__treq(p), want)) return ak__treq(p);
    }
    return NULL;
}

/* Fails the turn with "<what> '<name>'[ (ref: <ref>)]<why>" about a resume entry. */
AK_PRIVATE ak_result ak__resume_error(ak_invocation *inv, const char *what, const ak_json *tr, const char *why) {
    const char *ref = ak__tref(tr);
    return ak__turn_error(inv, AK_STATUS_INVALID_ARGUMENT, "%s '%s'%s%s%s%s", what, ak__tname(tr),
                          ref ? " (ref: " : "", ref ? ref : "", ref ? ")" : "", why);
}

/* Genkit's validateResumeAgainstHistory: forged or unknown resumes fail the turn. */
AK_PRIVATE ak_result ak__validate_resume(ak_invocation *inv, const ak_json *respond, const ak_json *restart) {
    static const char not_found[] = " which was not found in session history.";
    const ak_json *p;
    for (p = ak_json_first(restart); p; p = p->next) {
        const ak_json *tr = ak__treq(p), *orig = ak__history_tool_request(inv, tr);
        if (!orig) return ak__resume_error(inv, "resume.restart references tool", tr, not_found);
        if (!ak_json_equal(ak_json_get(tr, "input"), ak_json_get(orig, "input")))
            return ak__resume_error(inv, "resume.restart for tool", tr,
                                    " has modified inputs that do not match the original tool request in session "
                                    "history. Restart inputs must exactly match the interrupted tool request.");
    }
    for (p = ak_json_first(respond); p; p = p->next) {
        const ak_json *tr = ak_json_get(p, "toolResponse");
        if (!ak__history_tool_request(inv, tr))
            return ak__resume_error(inv, "resume.respond references tool", tr, not_found);
    }
    return AK_OK;
}

/* The entry of list (toolRequest or toolResponse parts) answering tool request tr. */
AK_PRIVATE const ak_json *ak__find_entry(const ak_json *list, const char *key, const ak_json *tr) {
    const ak_json *p;
    for (p = ak_json_first(list); p; p = p->next)
        if (ak__same_tool(ak_json_get(p, key), tr)) return p;
    return NULL;
}

/* Sets (or removes, value NULL) metadata[key] of a part, dropping an empty metadata. */
AK_PRIVATE void ak__part_meta(ak_json_doc *d, ak_json *part, const char *key, ak_json *value) {
    ak_json *md = ak_json_get(part, "metadata");
    if (value) {
        if (!md) ak_json_set(d, part, "metadata", md = ak_json_new_object(d));
        ak_json_set(d, md, key, value);
    } else if (md) {
        ak_json_remove(md, key);
        if (!md->len) ak_json_remove(part, "metadata");
    }
}

/* Moves metadata.interrupt of a resolved part to metadata.resolvedInterrupt. */
AK_PRIVATE void ak__mark_resolved(ak_json_doc *d, ak_json *part) {
    ak_json *md = ak_json_get(part, "metadata"), *intr = ak_json_get(md, "interrupt");
    if (!intr) return;
    ak_json_remove(md, "interrupt");
    ak_json_set(d, md, "resolvedInterrupt", intr);
}

/* Replaces the last history message (the model message being answered) with msg. */
AK_PRIVATE ak_result ak__replace_last(ak_invocation *inv, const ak_json *msg) {
    size_t n = ak_msgs_count(inv->state.messages);
    if (ak_msgs_truncate(inv->alloc, &inv->state.messages, n - 1) != AK_OK ||
        ak_msgs_append(inv->alloc, &inv->state.messages, msg) != AK_OK)
        return ak__turn_oom(inv);
    inv->version++;
    return AK_OK;
}

/* ---- tool calls ----------------------------------------------------------------------- */

AK_PRIVATE void ak__tool_start(ak_invocation *inv, ak__ptool *t, const ak_json *resumed) {
    ak_agent *a = inv->agent;
    const ak_json *tr = ak__treq(t->part);
    const ak_tool *tool = t->tool >= 0 ? &a->desc.tools[t->tool] : NULL;
    ak_tool_call *c = &t->call;
    ak_error e;
    ak_result rc;
    AK_MEMSET(c, 0, sizeof *c);
    c->tool = tool;
    c->ctx = inv->ctx;
    c->input = ak_json_get(tr, "input");
    c->resumed = resumed;
    c->ref = ak__tref(tr);
    c->context = inv->context;
    c->session = inv;
    c->doc = &inv->turn_doc;
    if (!tool) {
        c->state = AK__TOOL_FAILED;
        ak_error_setst(&c->error, AK_ERR_NOT_FOUND, AK_STATUS_NOT_FOUND, "Tool %s not found", ak__tname(tr));
        return;
    }
    c->ud = tool->ud;
    if (!tool->interrupt) { /* a span covers validation too, as Genkit's tool action does */
        t->traced = 1;
        t->started = ak_mono_ms(inv->ctx);
        ak__trace(inv, AK_TRACE_TOOL, 0, tool->name, 0, AK_STATUS_OK, c->input);
    }
    if (ak__agent_schema_check(a->input_schemas[t->tool], c->input, &e) != AK_OK) {
        c->state = AK__TOOL_FAILED;
        ak_error_setst(&c->error, AK_ERR_SCHEMA, AK_STATUS_INVALID_ARGUMENT,
                       "Schema validation failed for input of tool '%s'. Parse Errors: %s", tool->name, e.message);
        return;
    }
    if (tool->interrupt) { /* a pure interrupt never runs */
        ak_tool_interrupt(c, NULL);
        return;
    }
    /* the handle exists before the call, so a tool can keep it and answer later */
    if (ak__slot_acquire(a, c) != AK_OK) {
        ak_tool_fail(c, AK_STATUS_RESOURCE_EXHAUSTED, "too many tools answering later");
        c->error.code = AK_ERR_LIMIT;
        return;
    }
    rc = tool->fn(c);
    if (rc == AK_PENDING && c->state == AK__TOOL_IDLE) {
        c->state = AK__TOOL_RUNNING;
        return;
    }
    ak__slot_release(a, c);
    if (c->state == AK__TOOL_IDLE) { /* the tool returned without saying how it went */
        if (rc == AK_OK) ak_tool_return(c, NULL);
        else ak_tool_fail(c, ak_result_status(rc), "%s", ak_result_str(rc));
    }
}

/* 1 while any of the tools still runs. */
AK_PRIVATE int ak__tools_running(const ak__prompt *pt) {
    size_t i;
    for (i = 0; i < pt->tool_count; i++)
        if (pt->tools[i].call.state == AK__TOOL_RUNNING) return 1;
    return 0;
}

/* Ends every tool's trace span: a failed tool with its status, others with their output
   (an interrupting tool's output is NULL). */
AK_PRIVATE void ak__tools_trace_end(ak_invocation *inv) {
    ak__prompt *pt = &inv->pt;
    size_t i;
    for (i = 0; i < pt->tool_count; i++) {
        ak__ptool *t = &pt->tools[i];
        int failed = t->call.state == AK__TOOL_FAILED;
        if (!t->traced) continue;
        t->traced = 0;
        ak__trace(inv, AK_TRACE_TOOL, 1, t->call.tool->name, t->started, failed ? t->call.error.status : AK_STATUS_OK,
                  failed ? NULL : t->call.output);
    }
}

/* Fails the turn with the first failed tool, if any. */
AK_PRIVATE int ak__tools_failed(ak_invocation *inv) {
    ak__prompt *pt = &inv->pt;
    size_t i;
    for (i = 0; i < pt->tool_count; i++) {
        ak_tool_call *c = &pt->tools[i].call;
        if (c->state != AK__TOOL_FAILED) continue;
        ak__turn_error(inv, c->error.status ? c->error.status : AK_STATUS_INTERNAL, "%s", c->error.message);
        /* a tool's own failure reads like a thrown Error; library checks carry the status */
        inv->error_prefixed = c->error.code != AK_ERR_AGENT;
        return 1;
    }
    return 0;
}

/* One ak__ptool per toolRequest part of the model message. */
AK_PRIVATE ak_result ak__collect_tools(ak_invocation *inv, ak_json *msg) {
    ak__prompt *pt = &inv->pt;
    ak_json *p;
    size_t n = 0;
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next) n += ak__treq(p) != NULL;
    pt->tools = (ak__ptool *)ak_arena_zalloc(&inv->turn_doc.arena, (n ? n : 1) * sizeof *pt->tools);
    if (!pt->tools) return ak__turn_oom(inv);
    pt->tool_count = 0;
    for (p = ak_json_first(ak_json_get(msg, "content")); p; p = p->next) {
        ak__ptool *t;
        if (!ak__treq(p)) continue;
        t = &pt->tools[pt->tool_count++];
        t->part = p;
        t->tool = ak__tool_index(inv->agent, ak__tname(ak__treq(p)));
    }
    pt->model_msg = msg;
    return AK_OK;
}

/* {toolResponse: {name, ref, output}} for a finished call. */
AK_PRIVATE ak_json *ak__response_part(ak_invocation *inv, const ak__ptool *t) {
    const ak_json *tr = ak__treq(t->part);
    return ak_part_tool_response(&inv->turn_doc, ak__tname(tr), ak__tref(tr), t->call.output);
}

/* Appends the tool message and streams it as one chunk. */
AK_PRIVATE ak_result ak__append_tool_message(ak_invocation *inv, ak_json *content, int resumed) {
    ak_json_doc *d = &inv->turn_doc;
    ak_json *msg = ak_json_new_object(d);
    ak_json_set_str(d, msg, "role", "tool");
    ak_json_set(d, msg, "content", content);
    if (resumed) {
        ak_json *md = ak_json_new_object(d);
        ak_json_set_bool(d, md, "resumed", 1);
        ak_json_set(d, msg, "metadata", md);
    }
    if (d->err || ak_runner_add_message(inv, msg) != AK_OK)
        return ak__turn_oom(inv);
    ak__emit_model_chunk(inv, "tool", inv->pt.msg_index++, content, NULL);
    return AK_OK;
}

/* ---- resume --------------------------------------------------------------------------- */

AK_PRIVATE ak_result ak__resume_begin(ak_invocation *inv, const ak_json *resume) {
    ak__prompt *pt = &inv->pt;
    const ak_json *respond = ak_json_get(resume, "respond"), *restart = ak_json_get(resume, "restart");
    const ak_json *last = ak_msgs_at(inv->state.messages, ak_msgs_count(inv->state.messages) - 1);
    ak_json *msg;
    size_t i;
    ak_result rc;
    if ((rc = ak__validate_resume(inv, respond, restart)) != AK_OK) return rc;
    if (!last || !ak_msg_role(last) || !ak__streq(ak_msg_role(last), "model"))
        last = NULL;
    if (!(msg = ak_json_copy(&inv->turn_doc, last)) || (last && ak__collect_tools(inv, msg) != AK_OK))
        return inv->turn_failed ? AK_ERR_AGENT : ak__turn_oom(inv);
    if (!last || !pt->tool_count)
        return ak__turn_error(inv, AK_STATUS_FAILED_PRECONDITION, "Cannot 'resume' generation unless the previous "
                                                                  "message is a model message with at least one tool request.");
    for (i = 0; i < pt->tool_count; i++) {
        ak__ptool *t = &pt->tools[i];
        const ak_json *tr = ak__treq(t->part), *entry;
        ak_json *pending = ak_json_get(ak_json_get(t->part, "metadata"), "pendingOutput");
        if (pending) {
            ak_json *resp = ak_part_tool_response(&inv->turn_doc, ak__tname(tr), ak__tref(tr), pending);
            ak__part_meta(&inv->turn_doc, resp, "source", ak_json_new_str(&inv->turn_doc, "pending"));
            ak__part_meta(&inv->turn_doc, AK__UNCONST(ak_json *, t->part), "pendingOutput", NULL);
            t->response = resp;
            t->pending_output = 1;
        } else if ((entry = ak__find_entry(respond, "toolResponse", tr)) != NULL) {
            t->response = entry;
        } else if ((entry = ak__find_entry(restart, "toolRequest", tr)) != NULL) {
            t->restart = 1;
            ak__tool_start(inv, t, ak_json_get(ak_json_get(entry, "metadata"), "resumed"));
        } else {
            const char *ref = ak__tref(tr);
            return ak__turn_error(inv, AK_STATUS_INVALID_ARGUMENT,
                                  "Unresolved tool request '%s%s%s' was not handled by the 'resume' argument. You "
                                  "must supply replies or restarts for all interrupted tool requests.'",
                                  ak__tname(tr), ref ? "#" : "", ref ? ref : "");
        }
    }
    pt->step = AK__P_RESUME_TOOLS;
    return AK_OK;
}

/* All answers are in: rewrite the model message, add the tool message, call the model. */
AK_PRIVATE ak_result ak__resume_finish(ak_invocation *inv) {
    ak__prompt *pt = &inv->pt;
    ak_json_doc *d = &inv->turn_doc;
    ak_json *content = ak_json_new_array(d);
    size_t i;
    ak__tools_trace_end(inv);
    if (ak__tools_failed(inv)) return AK_ERR_AGENT;
    for (i = 0; i < pt->tool_count; i++) {
        ak__ptool *t = &pt->tools[i];
        if (t->restart && t->call.state == AK__TOOL_INTERRUPTED)
            return ak__turn_error(inv, AK_STATUS_FAILED_PRECONDITION,
                                  "Tool '%s' interrupted again when restarted. Restart it with metadata.resumed set, "
                                  "or respond to it instead.", ak__tname(ak__treq(t->part)));
        if (!t->pending_output) ak__mark_resolved(d, AK__UNCONST(ak_json *, t->part));
        ak_json_push(content, t->restart ? ak__response_part(inv, t) : ak_json_copy(d, t->response));
    }
    if (d->err) return ak__turn_oom(inv);
    if (ak__replace_last(inv, pt->model_msg) != AK_OK || ak__append_tool_message(inv, content, 1) != AK_OK)
        return AK_ERR_AGENT;
    pt->step = AK__P_MODEL;
    return AK_OK;
}

/* ---- the model call ------------------------------------------------------------------- */

AK_PRIVATE ak_result ak__on_model_chunk(void *ud, const ak_json *chunk) {
    ak_invocation *inv = (ak_invocation *)ud;
    ak__emit_model_chunk(inv, "model", inv->pt.msg_index, ak_json_get(chunk, "content"), ak_json_get(chunk, "custom"));
    return inv->aborted ? AK_ERR_CANCELLED : AK_OK;
}

AK_PRIVATE ak_result ak__model_start(ak_invocation *inv) {
    ak_agent *a = inv->agent;
    ak__prompt *pt = &inv->pt;
    size_t n = ak_msgs_count(inv->state.messages), sys = a->system_msg != NULL;
    const ak_json **msgs = (const ak_json **)ak_arena_alloc(&inv->turn_doc.arena, (n + sys + 1) * sizeof *msgs);
    ak_model_call *call = &pt->call;
    if (!msgs) return ak__turn_oom(inv);
    /* the history is shared, not copied: the model reads the session's own messages */
    if (sys) msgs[0] = a->system_msg;
    ak_msgs_collect(inv->state.messages, msgs + sys);
    ak_model_call_init(call, inv->ctx, a->request, &inv->turn_doc);
    call->messages = msgs;
    call->message_count = n + sys;
    call->stream = inv->on_chunk != NULL || a->desc.stream_model;
    call->on_chunk = ak__on_model_chunk;
    call->chunk_ud = inv;
    call->retry = a->desc.retry;
    pt->model_started = ak_mono_ms(inv->ctx);
    ak__trace(inv, AK_TRACE_MODEL, 0, a->desc.model->name, 0, AK_STATUS_OK, NULL);
    pt->step = AK__P_MODEL_WAIT;
    return ak_model_call_start(call, a->desc.model);
}

/* The model answered: finish the turn, or run the tools it asked for. */
AK_PRIVATE ak_result ak__model_done(ak_invocation *inv) {
    ak__prompt *pt = &inv->pt;
    ak_model_call *call = &pt->call;
    ak_json *msg, *reason;
    ak_status st = call->state == AK_CALL_DONE ? AK_STATUS_OK : call->error.status;
    size_t i;
    ak__trace(inv, AK_TRACE_MODEL, 1, inv->agent->desc.model->name, pt->model_started, st, call->response);
    if (call->chunks) pt->msg_index++;
    if (call->state != AK_CALL_DONE)
        return ak__turn_error(inv, call->error.status ? call->error.status : AK_STATUS_UNKNOWN, "%s", call->error.message);
    msg = ak_json_get(call->response, "message");
    if (!ak_json_is(msg, AK_JSON_OBJECT) || !ak_json_is(ak_json_get(msg, "content"), AK_JSON_ARRAY))
        return ak__turn_error(inv, AK_STATUS_INTERNAL, "model %s returned no message", inv->agent->desc.model->name);
    if (!ak_json_get(msg, "role")) ak_json_set_str(&inv->turn_doc, msg, "role", "model");
    if (ak_runner_add_message(inv, msg) != AK_OK) return ak__turn_oom(inv);
    if (ak__collect_tools(inv, msg) != AK_OK) return AK_ERR_AGENT;
    if (!pt->tool_count) {
        reason = ak_json_get(call->response, "finishReason");
        if (ak_json_is(reason, AK_JSON_STRING)) ak_runner_set_finish_reason(inv, ak_finish_reason_from_name(reason->u.str));
        return AK_OK;
    }
    if (pt->iteration + 1 > inv->agent->desc.max_turns)
        return ak__turn_error(inv, AK_STATUS_ABORTED, "Exceeded maximum tool call iterations (%d)",
                              inv->agent->desc.max_turns);
    for (i = 0; i < pt->tool_count; i++) ak__tool_start(inv, &pt->tools[i], NULL);
    pt->step = AK__P_TOOLS;
    return AK_PENDING;
}

/* Every tool settled: interrupt, fail, or answer the model and loop. */
AK_PRIVATE ak_result ak__tools_done(ak_invocation *inv) {
    ak__prompt *pt = &inv->pt;
    ak_json_doc *d = &inv->turn_doc;
    ak_json *content;
    size_t i;
    int interrupted = 0;
    ak__tools_trace_end(inv);
    if (ak__tools_failed(inv)) return AK_ERR_AGENT;
    for (i = 0; i < pt->tool_count; i++) interrupted |= pt->tools[i].call.state == AK__TOOL_INTERRUPTED;
    if (interrupted) {
        /* interrupted requests carry metadata.interrupt; finished siblings their output */
        content = ak_json_new_array(d);
        for (i = 0; i < pt->tool_count; i++) {
            ak__ptool *t = &pt->tools[i];
            ak_json *part = AK__UNCONST(ak_json *, t->part);
            if (t->call.state == AK__TOOL_INTERRUPTED) ak__part_meta(d, part, "interrupt", t->call.interrupt);
            else ak__part_meta(d, part, "pendingOutput", t->call.output);
            ak_json_push(content, ak_json_copy(d, part));
        }
        if (d->err || ak__replace_last(inv, pt->model_msg) != AK_OK)
            return inv->turn_failed ? AK_ERR_AGENT : ak__turn_oom(inv);
        ak__emit_model_chunk(inv, "tool", -1, content, NULL);
        ak_runner_set_finish_reason(inv, AK_FINISH_INTERRUPTED);
        return AK_OK;
    }
    content = ak_json_new_array(d);
    for (i = 0; i < pt->tool_count; i++) ak_json_push(content, ak__response_part(inv, &pt->tools[i]));
    if (d->err) return ak__turn_oom(inv);
    if (ak__append_tool_message(inv, content, 0) != AK_OK) return AK_ERR_AGENT;
    pt->iteration++;
    pt->step = AK__P_MODEL;
    return AK_PENDING;
}

AK_PRIVATE ak_result ak__prompt_turn(ak_runner *inv, const ak_json *input, const ak_turn_info *turn, void *ud) {
    ak__prompt *pt = &inv->pt;
    const ak_json *resume = ak_json_get(input, "resume");
    ak_result rc;
    AK__UNUSED(turn), AK__UNUSED(ud);
    for (;;) {
        if (inv->aborted) {
            if (pt->call.state == AK_CALL_RUNNING || pt->call.state == AK_CALL_WAITING) ak_model_call_cancel(&pt->call);
            return ak__turn_error(inv, AK_STATUS_CANCELLED, "The agent run was aborted.");
        }
        switch (pt->step) {
        case AK__P_BEGIN:
            if (ak_json_len(ak_json_get(resume, "respond")) || ak_json_len(ak_json_get(resume, "restart"))) {
                if ((rc = ak__resume_begin(inv, resume)) != AK_OK) return rc;
            } else {
                pt->step = AK__P_MODEL;
            }
            continue;
        case AK__P_RESUME_TOOLS:
        case AK__P_TOOLS:
            if (ak__tools_running(pt)) return AK_PENDING;
            if (pt->step == AK__P_RESUME_TOOLS) {
                if ((rc = ak__resume_finish(inv)) != AK_OK) return rc;
            } else if ((rc = ak__tools_done(inv)) != AK_PENDING) {
                return rc;
            }
            continue;
        case AK__P_MODEL:
            rc = ak__model_start(inv);
            if (inv->turn_failed) return AK_ERR_AGENT;
            if (pt->call.state == AK_CALL_RUNNING || pt->call.state == AK_CALL_WAITING) return AK_PENDING;
            if (pt->call.state != AK_CALL_DONE && pt->call.state != AK_CALL_FAILED)
                return ak__turn_error(inv, ak_result_status(rc), "cannot call model %s: %s",
                                      inv->agent->desc.model->name, ak_result_str(rc));
            if ((rc = ak__model_done(inv)) != AK_PENDING) return rc;
            continue;
        case AK__P_MODEL_WAIT:
            if (ak_model_call_poll(&pt->call, 0) == AK_PENDING) return AK_PENDING;
            if ((rc = ak__model_done(inv)) != AK_PENDING) return rc;
            continue;
        }
        return ak__turn_error(inv, AK_STATUS_INTERNAL, "bad prompt turn state");
    }
}

/* Leaves nothing running: cancels the model call and forgets tools answering later. */
AK_PRIVATE void ak__prompt_release(ak_invocation *inv) {
    ak__prompt *pt = &inv->pt;
    size_t i;
    if (pt->call.state == AK_CALL_RUNNING || pt->call.state == AK_CALL_WAITING) ak_model_call_cancel(&pt->call);
    for (i = 0; i < pt->tool_count; i++) ak__slot_release(inv->agent, &pt->tools[i].call);
    AK_MEMSET(pt, 0, sizeof *pt);
}
