/* akdriver conformance SPEC.json [--filter SUBSTRING]
   Runs Genkit's cross-language agent conformance spec against agentkit agents. The harness
   (agents, tools, programmable model) follows ../shared/conformance/README.md; assertions
   follow Genkit's own JS runner (js/ai/tests/agents_spec_test.ts): message, chunk and state
   checks are "contains" matches with nulls ignored, arrays are ordered subsequences. */
#include "akdriver.h"
#include "json_text.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- the harness ---------------------------------------------------------------------- */

typedef struct harness {
    ak_context ctx;
    ak_programmable_model pm;
    ak_memstore stores[8];
    int store_count;
    ak_agent agents[16];
    const char *names[16];
    int agent_count;
    ak_json_doc doc; /* captures, chunks */
} harness;

static ak_json *tool_output(ak_tool_call *c, const char *key, const char *value) {
    ak_json *o = ak_json_new_object(c->doc);
    ak_json_set_str(c->doc, o, key, value);
    return o;
}

static ak_result test_tool(ak_tool_call *c) { return ak_tool_return(c, ak_json_new_str(c->doc, "tool called")); }

/* Interrupts unless re-run with metadata.resumed. */
static ak_result restart_tool(ak_tool_call *c) {
    if (!c->resumed) return ak_tool_interrupt(c, NULL);
    return ak_tool_return(c, tool_output(c, "result", ak_json_get_str(c->input, "action")));
}

static const ak_tool harness_tools[] = {
    {"testTool", "A simple test tool", NULL, NULL, test_tool, NULL, 0},
    {"interruptTool", "An interrupt tool",
     "{\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\"}},\"required\":[\"query\"]}",
     "{\"type\":\"object\",\"properties\":{\"answer\":{\"type\":\"string\"}},\"required\":[\"answer\"]}", NULL, NULL, 1},
    {"restartTool", "A tool that interrupts unless resumed",
     "{\"type\":\"object\",\"properties\":{\"action\":{\"type\":\"string\"}},\"required\":[\"action\"]}",
     "{\"type\":\"object\",\"properties\":{\"result\":{\"type\":\"string\"}},\"required\":[\"result\"]}", restart_tool,
     NULL, 0},
};

static ak_json *text_message(ak_json_doc *d, const char *text) {
    ak_json *m = ak_msg_new(d, "model");
    ak_msg_add(m, ak_part_text(d, text));
    return m;
}

/* Result: a fixed message, the session's artifacts. */
static ak_result result_text(ak_runner *r, ak_json_doc *d, ak_json **message, ak_json **artifacts,
                             ak_finish_reason *reason, void *ud) {
    *message = text_message(d, (const char *)ud);
    *artifacts = ak_json_copy(d, ak_runner_artifacts(r));
    *reason = AK_FINISH_UNKNOWN;
    return d->err;
}

static ak_result turn_blocking(ak_runner *r, const ak_json *in, const ak_turn_info *t, void *ud) {
    (void)in, (void)t, (void)ud;
    return ak_runner_aborted(r) ? AK_OK : AK_PENDING; /* blocks until aborted */
}

static ak_result turn_failing(ak_runner *r, const ak_json *in, const ak_turn_info *t, void *ud) {
    (void)in, (void)t, (void)ud;
    return ak_runner_fail(r, AK_STATUS_INTERNAL, "intentional failure");
}

static ak_result add_artifact(ak_runner *r, const char *name, const char *text) {
    ak_json_doc *d = ak_runner_doc(r);
    ak_json *a = ak_json_new_object(d), *parts = ak_json_new_array(d);
    ak_json_set_str(d, a, "name", name);
    ak_json_push(parts, ak_part_text(d, text));
    ak_json_set(d, a, "parts", parts);
    return ak_runner_add_artifacts(r, a);
}

static ak_result turn_artifacts(ak_runner *r, const ak_json *in, const ak_turn_info *t, void *ud) {
    (void)in, (void)t, (void)ud;
    add_artifact(r, "doc1", "v1");
    add_artifact(r, "doc1", "v2");
    return add_artifact(r, "doc2", "other");
}

static ak_result turn_artifacts_store(ak_runner *r, const ak_json *in, const ak_turn_info *t, void *ud) {
    char name[32], text[32];
    size_t n = ak_json_len(ak_runner_artifacts(r)) + 1;
    (void)in, (void)t, (void)ud;
    snprintf(name, sizeof name, "doc%zu", n);
    snprintf(text, sizeof text, "content%zu", n);
    return add_artifact(r, name, text);
}

/* custom = {counter: (previous or 0) + 1, [status]} */
static ak_result set_counter(ak_runner *r, int64_t counter, const char *status) {
    ak_json_doc *d = ak_runner_doc(r);
    ak_json *c = ak_json_new_object(d);
    ak_json_set_int(d, c, "counter", counter);
    if (status) ak_json_set_str(d, c, "status", status);
    return ak_runner_set_custom(r, c);
}

static ak_result turn_counter(ak_runner *r, const ak_json *in, const ak_turn_info *t, void *ud) {
    (void)in, (void)t, (void)ud;
    return set_counter(r, ak_json_int_or(ak_json_get(ak_runner_custom(r), "counter"), 0) + 1, NULL);
}

static ak_result turn_multi_counter(ak_runner *r, const ak_json *in, const ak_turn_info *t, void *ud) {
    (void)in, (void)t, (void)ud;
    set_counter(r, 1, "working");
    set_counter(r, 2, "working");
    return set_counter(r, 2, "done");
}

static ak_store *new_store(harness *h) {
    ak_memstore *m = &h->stores[h->store_count++];
    ak_memstore_init(m, &h->ctx);
    return &m->store;
}

static void add_agent(harness *h, const char *name, ak_agent_desc *d) {
    ak_error e;
    d->name = name;
    if (ak_agent_init(&h->agents[h->agent_count], &h->ctx, d, &e) != AK_OK) {
        fprintf(stderr, "harness agent %s: %s\n", name, e.message);
        exit(2);
    }
    h->names[h->agent_count++] = name;
}

static void prompt_agent(harness *h, const char *name, int store, int tool) {
    ak_agent_desc d;
    memset(&d, 0, sizeof d);
    d.model = &h->pm.model;
    d.config = "{\"temperature\":1}";
    if (store) d.store = new_store(h);
    if (tool >= 0) d.tools = &harness_tools[tool], d.tool_count = 1;
    add_agent(h, name, &d);
}

static void custom_agent(harness *h, const char *name, int store, ak_turn_fn turn, const char *reply) {
    ak_agent_desc d;
    memset(&d, 0, sizeof d);
    d.turn = turn;
    d.result = result_text;
    d.ud = (void *)reply;
    if (store) d.store = new_store(h);
    add_agent(h, name, &d);
}

static void harness_init(harness *h) {
    memset(h, 0, sizeof *h);
    ak_context_init(&h->ctx, NULL);
    ak_programmable_model_init(&h->pm, ak_context_allocator(&h->ctx), "programmableModel");
    ak_json_doc_init(&h->doc, NULL);
    prompt_agent(h, "promptAgent", 0, -1);
    prompt_agent(h, "promptAgentWithStore", 1, -1);
    prompt_agent(h, "promptAgentWithTools", 0, 0);
    prompt_agent(h, "promptAgentWithInterrupt", 1, 1);
    prompt_agent(h, "promptAgentWithRestartTool", 1, 2);
    custom_agent(h, "customAgentBlocking", 1, turn_blocking, "unblocked");
    custom_agent(h, "customAgentFailing", 1, turn_failing, "unreachable");
    custom_agent(h, "customAgentWithArtifacts", 0, turn_artifacts, "done");
    custom_agent(h, "customAgentWithCustomState", 0, turn_counter, "done");
    custom_agent(h, "customAgentWithMultiCustomState", 0, turn_multi_counter, "done");
    custom_agent(h, "customAgentWithArtifactsStore", 1, turn_artifacts_store, "done");
    custom_agent(h, "customAgentWithCustomStateStore", 1, turn_counter, "done");
}

static void harness_free(harness *h) {
    int i;
    for (i = 0; i < h->agent_count; i++) ak_agent_free(&h->agents[i]);
    for (i = 0; i < h->store_count; i++) ak_memstore_free(&h->stores[i]);
    ak_programmable_model_free(&h->pm);
    ak_json_doc_free(&h->doc);
}

static ak_agent *find_agent(harness *h, const char *name) {
    int i;
    for (i = 0; name && i < h->agent_count; i++)
        if (strcmp(h->names[i], name) == 0) return &h->agents[i];
    return NULL;
}

/* ---- failures ------------------------------------------------------------------------- */

static char why[2048];
static int failed;

static void fail(const char *fmt, ...) {
    va_list ap;
    if (failed) return; /* keep the first reason */
    failed = 1;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
}

/* ---- assertions (Genkit's assertContains) ---------------------------------------------- */

static int contains(const ak_json *actual, const ak_json *expected);

/* Every expected item matches a later actual item, in order. */
static int contains_subsequence(const ak_json *actual, const ak_json *expected) {
    const ak_json *a = ak_json_first(actual), *e;
    for (e = ak_json_first(expected); e; e = e->next) {
        while (a && !contains(a, e)) a = a->next;
        if (!a) return 0;
        a = a->next;
    }
    return 1;
}

static int contains(const ak_json *actual, const ak_json *expected) {
    const ak_json *m;
    if (!expected || expected->type == AK_JSON_NULL) return 1; /* nulls are stripped */
    if (expected->type == AK_JSON_ARRAY) return ak_json_is(actual, AK_JSON_ARRAY) && contains_subsequence(actual, expected);
    if (expected->type == AK_JSON_OBJECT) {
        if (!ak_json_is(actual, AK_JSON_OBJECT)) return 0;
        for (m = expected->u.first; m; m = m->next)
            if (!contains(ak_json_getn(actual, m->key, m->key_len), m)) return 0;
        return 1;
    }
    return ak_json_equal(actual, expected);
}

static void check_contains(const char *what, const ak_json *actual, const ak_json *expected) {
    if (!contains(actual, expected)) fail("%s: expected %s, got %s", what, js(expected), js(actual));
}

static void check_str(const char *what, const char *actual, const ak_json *expected) {
    const char *want = ak_json_str(expected);
    if (!expected || expected->type == AK_JSON_NULL) return;
    if (!want || !actual || strcmp(actual, want) != 0)
        fail("%s: expected %s, got \"%s\"", what, js(expected), actual ? actual : "(absent)");
}

static void check_error_contains(const char *what, const ak_json *error, const ak_json *expected) {
    const char *msg = ak_json_get_str(error, "message"), *want = ak_json_get_str(expected, "message");
    if (!expected) return;
    if (!error) {
        fail("%s: expected an error, got none", what);
        return;
    }
    check_str(what, ak_json_get_str(error, "status"), ak_json_get(expected, "status"));
    if (want && (!msg || !strstr(msg, want))) fail("%s: message \"%s\" does not contain \"%s\"", what, msg ? msg : "", want);
}

/* ---- templates ------------------------------------------------------------------------ */

/* Replaces "{{name}}" strings with captured values, in place (copies come from h->doc). */
static ak_json *resolve(harness *h, ak_json_doc *d, const ak_json *v, const ak_json *captures) {
    ak_json *c, *out;
    if (ak_json_is(v, AK_JSON_STRING) && v->len > 4 && strncmp(v->u.str, "{{", 2) == 0 &&
        strcmp(v->u.str + v->len - 2, "}}") == 0) {
        ak_json *cap = ak_json_getn(captures, v->u.str + 2, v->len - 4);
        if (!cap) fail("template %s was never captured", v->u.str);
        return ak_json_copy(d, cap);
    }
    if (!ak_json_is(v, AK_JSON_ARRAY) && !ak_json_is(v, AK_JSON_OBJECT)) return ak_json_copy(d, v);
    out = v->type == AK_JSON_ARRAY ? ak_json_new_array(d) : ak_json_new_object(d);
    for (c = v->u.first; c; c = c->next) {
        ak_json *r = resolve(h, d, c, captures);
        if (v->type == AK_JSON_ARRAY) ak_json_push(out, r);
        else ak_json_add(d, out, c->key, c->key_len, r);
    }
    return out;
}

/* ---- steps ---------------------------------------------------------------------------- */

typedef struct collector {
    ak_json_doc *d;
    ak_json *chunks;
} collector;

static void collect(void *ud, const ak_json *chunk) {
    collector *c = (collector *)ud;
    ak_json_push(c->chunks, ak_json_copy(c->d, chunk));
}

static void check_chunks(const ak_json *actual, const ak_json *expected) {
    const ak_json *a, *e;
    size_t i = 0;
    char what[64];
    if (!expected) return;
    if (ak_json_len(actual) != ak_json_len(expected)) {
        fail("expected %zu chunks, got %zu: %s", ak_json_len(expected), ak_json_len(actual), js(actual));
        return;
    }
    for (a = ak_json_first(actual), e = ak_json_first(expected); a && e; a = a->next, e = e->next, i++) {
        snprintf(what, sizeof what, "chunk[%zu]", i);
        if (ak_json_get(e, "turnEnd")) {
            if (!ak_json_get(a, "turnEnd")) fail("%s: expected turnEnd, got %s", what, js(a));
            else check_str(what, ak_json_get_str(ak_json_get(a, "turnEnd"), "finishReason"),
                           ak_json_get(ak_json_get(e, "turnEnd"), "finishReason"));
        } else {
            check_contains(what, a, e);
        }
    }
}

static void check_output(const ak_json *out, const ak_json *expect) {
    const ak_json *v, *arts = ak_json_get(out, "artifacts");
    if (!expect) return;
    if ((v = ak_json_get(expect, "message")) != NULL) check_contains("output.message", ak_json_get(out, "message"), v);
    if (ak_json_bool(ak_json_get(expect, "hasSnapshotId"), 0) && ak_json_len(ak_json_get(out, "snapshotId")) == 0)
        fail("expected output.snapshotId, got %s", js(out));
    if (ak_json_bool(ak_json_get(expect, "hasSessionId"), 0) &&
        !ak_json_get_str(ak_json_get(out, "state"), "sessionId") && !ak_json_get_str(out, "sessionId"))
        fail("expected a sessionId, got %s", js(out));
    if ((v = ak_json_get(expect, "stateContains")) != NULL) {
        if (!ak_json_get(out, "state")) fail("expected output.state, got %s", js(out));
        else check_contains("output.state", ak_json_get(out, "state"), v);
    }
    for (v = ak_json_first(ak_json_get(expect, "artifactsContain")); v; v = v->next) {
        const ak_json *a;
        for (a = ak_json_first(arts); a; a = a->next)
            if (ak_json_equal(ak_json_get(a, "name"), ak_json_get(v, "name"))) break;
        if (!a) fail("artifact %s not in output: %s", js(ak_json_get(v, "name")), js(arts));
        else check_contains("artifact", a, v);
    }
    check_str("output.finishReason", ak_json_get_str(out, "finishReason"), ak_json_get(expect, "finishReason"));
    check_error_contains("output.error", ak_json_get(out, "error"), ak_json_get(expect, "errorContains"));
}

static void capture(harness *h, ak_json *captures, const ak_json *step, const ak_json *out) {
    const char *name;
    if ((name = ak_json_get_str(step, "captureSnapshotId")) != NULL) {
        if (!ak_json_get(out, "snapshotId")) fail("cannot capture %s: no snapshotId in %s", name, js(out));
        ak_json_set(&h->doc, captures, name, ak_json_copy(&h->doc, ak_json_get(out, "snapshotId")));
    }
    if ((name = ak_json_get_str(step, "captureState")) != NULL) {
        if (!ak_json_get(out, "state")) fail("cannot capture %s: no state in %s", name, js(out));
        ak_json_set(&h->doc, captures, name, ak_json_copy(&h->doc, ak_json_get(out, "state")));
    }
    if ((name = ak_json_get_str(step, "captureSessionId")) != NULL) {
        const ak_json *sid = ak_json_get(ak_json_get(out, "state"), "sessionId");
        if (!sid) sid = ak_json_get(out, "sessionId");
        ak_json_set(&h->doc, captures, name, ak_json_copy(&h->doc, sid));
    }
}

static void step_send(harness *h, ak_agent *a, const ak_json *s, ak_json *captures) {
    ak_json_doc d;
    collector col;
    ak_invoke_opts opts;
    ak_invocation *inv = NULL;
    ak_error e;
    const ak_json *in, *expect_error = ak_json_get(s, "expectError");
    ak_result rc;
    ak_json_doc_init(&d, NULL);
    ak_programmable_model_set(&h->pm, ak_json_get(s, "modelResponses"), ak_json_get(s, "streamChunks"));
    col.d = &d;
    col.chunks = ak_json_new_array(&d);
    memset(&opts, 0, sizeof opts);
    opts.on_chunk = collect;
    opts.chunk_ud = &col;
    rc = ak_agent_invoke(a, ak_json_get(s, "init"), &opts, &inv, &e);
    if (rc == AK_OK) {
        for (in = ak_json_first(ak_json_get(s, "inputs")); in && rc == AK_OK; in = in->next)
            rc = ak_invocation_send(inv, in, &e);
        ak_invocation_close(inv);
        while (rc == AK_OK && (rc = ak_invocation_step(inv, 20, &e)) == AK_PENDING) {
        }
    }
    if (expect_error) {
        if (rc == AK_OK) fail("expected an error, got output %s", js(ak_invocation_output(inv)));
        else {
            ak_json *err = ak_json_new_object(&d);
            ak_json_set_str(&d, err, "status", ak_status_name(e.status));
            ak_json_set_str(&d, err, "message", e.message);
            check_error_contains("error", err, expect_error);
        }
    } else if (rc != AK_OK) {
        fail("send failed: %s: %s", ak_status_name(e.status), e.message);
    } else {
        const ak_json *out = ak_invocation_output(inv);
        check_chunks(col.chunks, ak_json_get(s, "expectChunks"));
        check_output(out, ak_json_get(s, "expectOutput"));
        capture(h, captures, s, out);
    }
    ak_invocation_free(inv);
    ak_json_doc_free(&d);
}

static void check_snapshot(const ak_json *snap, const ak_json *expect) {
    const ak_json *v;
    if (!expect) return;
    check_str("snapshot.parentId", ak_json_get_str(snap, "parentId"), ak_json_get(expect, "parentId"));
    check_str("snapshot.status", ak_json_get_str(snap, "status"), ak_json_get(expect, "status"));
    check_str("snapshot.finishReason", ak_json_get_str(snap, "finishReason"), ak_json_get(expect, "finishReason"));
    if (ak_json_bool(ak_json_get(expect, "hasSessionId"), 0) && !ak_json_get_str(snap, "sessionId") &&
        !ak_json_get_str(ak_json_get(snap, "state"), "sessionId"))
        fail("expected a sessionId in %s", js(snap));
    if ((v = ak_json_get(expect, "stateContains")) != NULL) check_contains("snapshot.state", ak_json_get(snap, "state"), v);
    check_error_contains("snapshot.error", ak_json_get(snap, "error"), ak_json_get(expect, "errorContains"));
}

static void step_get_snapshot(ak_agent *a, const ak_json *s) {
    ak_json_doc d;
    ak_json *snap;
    ak_error e;
    const char *want = ak_json_get_str(s, "expectError");
    ak_result rc;
    ak_json_doc_init(&d, NULL);
    rc = ak_agent_get_snapshot(a, ak_json_get_str(s, "snapshotId"), ak_json_get_str(s, "sessionId"), NULL, &d, &snap, &e);
    if (want) {
        if (rc == AK_OK) fail("expected error \"%s\", got %s", want, js(snap));
        else if (!strstr(e.message, want)) fail("error \"%s\" does not contain \"%s\"", e.message, want);
    } else if (rc != AK_OK) {
        fail("getSnapshotData failed: %s", e.message);
    } else {
        check_snapshot(snap, ak_json_get(s, "expectSnapshot"));
    }
    ak_json_doc_free(&d);
}

static void step_abort(ak_agent *a, const ak_json *s) {
    const char *prev = NULL;
    ak_error e;
    const ak_json *want = ak_json_get(s, "expectPreviousStatus");
    if (ak_agent_abort(a, ak_json_get_str(s, "snapshotId"), NULL, &prev, &e) != AK_OK) {
        fail("abort failed: %s", e.message);
        return;
    }
    if (want && want->type == AK_JSON_NULL && prev) fail("abort: expected no previous status, got %s", prev);
    if (want && want->type == AK_JSON_STRING) check_str("abort previous status", prev, want);
}

static void step_wait(ak_agent *a, const ak_json *s) {
    ak_json_doc d;
    ak_json *snap = NULL;
    ak_error e;
    int64_t deadline = ak_mono_ms(a->ctx) + ak_json_int_or(ak_json_get(s, "timeoutMs"), 5000);
    const char *st = NULL;
    ak_json_doc_init(&d, NULL);
    for (;;) {
        ak_agent_pump(a, 10);
        ak_json_doc_reset(&d);
        if (ak_agent_get_snapshot(a, ak_json_get_str(s, "snapshotId"), NULL, NULL, &d, &snap, &e) == AK_OK) {
            st = ak_json_get_str(snap, "status");
            if (st && (!strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "aborted"))) break;
        }
        if (ak_mono_ms(a->ctx) > deadline) {
            fail("snapshot did not finish in time (status %s)", st ? st : "unknown");
            break;
        }
    }
    if (!failed) check_snapshot(snap, ak_json_get(s, "expectSnapshot"));
    ak_json_doc_free(&d);
}

static void run_test(const ak_json *t) {
    harness h;
    ak_agent *a;
    ak_json *captures;
    const ak_json *s;
    int i = 0;
    harness_init(&h);
    captures = ak_json_new_object(&h.doc);
    a = find_agent(&h, ak_json_get_str(t, "agent"));
    if (!a) fail("unknown agent %s", ak_json_get_str(t, "agent"));
    for (s = ak_json_first(ak_json_get(t, "steps")); s && !failed; s = s->next, i++) {
        ak_json_doc sd;
        ak_json *step;
        const char *type;
        ak_json_doc_init(&sd, NULL);
        step = resolve(&h, &sd, s, captures);
        type = ak_json_get_str(step, "type");
        if (!failed) {
            if (!strcmp(type, "send")) step_send(&h, a, step, captures);
            else if (!strcmp(type, "getSnapshotData")) step_get_snapshot(a, step);
            else if (!strcmp(type, "abort")) step_abort(a, step);
            else if (!strcmp(type, "waitUntilCompleted")) step_wait(a, step);
            else fail("unknown step type %s", type);
            if (failed) {
                char prefix[64];
                size_t n = (size_t)snprintf(prefix, sizeof prefix, "step %d (%s): ", i, type);
                if (n < sizeof prefix && strlen(why) + n < sizeof why) {
                    memmove(why + n, why, strlen(why) + 1);
                    memcpy(why, prefix, n);
                }
            }
        }
        ak_json_doc_free(&sd);
    }
    harness_free(&h);
}

int drv_conformance(int argc, char **argv) {
    ak_json_doc spec;
    ak_error e;
    const ak_json *t;
    const char *filter = NULL;
    char *text;
    size_t len;
    int i, passed = 0, nfailed = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: akdriver conformance SPEC.json [--filter SUBSTRING]\n");
        return 2;
    }
    for (i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    if (drv_read_all(argv[1], &text, &len) != 0) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    ak_json_doc_init(&spec, NULL);
    if (ak_json_parse(&spec, text, len, &e) != AK_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], e.message);
        return 2;
    }
    for (t = ak_json_first(ak_json_get(spec.root, "tests")); t; t = t->next) {
        const char *name = ak_json_get_str(t, "name");
        if (filter && (!name || !strstr(name, filter))) continue;
        failed = 0;
        why[0] = 0;
        run_test(t);
        if (failed) printf("FAIL %s: %s\n", name, why), nfailed++;
        else printf("ok   %s\n", name), passed++;
    }
    printf("%d passed, %d failed\n", passed, nfailed);
    ak_json_doc_free(&spec);
    free(text);
    return nfailed ? 1 : 0;
}
