/* remote_scenarios URL_BASE: the agentkit remote client (ak_remote_agent over the POSIX
   transport) driving a server that hosts the interop agents (../shared/interop-agents.md):
   the Genkit JS reference server or `akdriver serve`. The same assertions must hold for
   both. Prints one line per scenario and "N passed, N failed". */
#include "../agentkit.h"
#include "json_text.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *base;
static ak_context ctx;
static ak_posix_transport tr;
static int failures;
static char why[1024];

#define EXPECT(cond, ...) do { if (!(cond) && !failures) { failures = 1; snprintf(why, sizeof why, __VA_ARGS__); } } while (0)

static ak_json *parse(ak_json_doc *d, const char *text) {
    ak_json *v = NULL;
    if (ak_json_parse_value(d, text, strlen(text), NULL, &v, NULL) != AK_OK) abort();
    return v;
}

static void agent(ak_remote_agent *ra, const char *name) {
    static char url[8][256];
    static int n;
    ak_remote_desc rd;
    memset(&rd, 0, sizeof rd);
    snprintf(url[n % 8], sizeof url[0], "%s/%s", base, name);
    rd.url = url[n++ % 8];
    rd.transport = &tr.transport;
    rd.timeout_ms = 20000;
    if (ak_remote_agent_init(ra, &ctx, &rd, NULL) != AK_OK) abort();
}

static char chunks[8192];
static void log_chunk(void *ud, const ak_json *c) {
    (void)ud;
    if (strlen(chunks) + 600 < sizeof chunks) strcat(chunks, js(c)), strcat(chunks, "\n");
}

static ak_error last; /* the error of the last say() */

/* Sends text; checks the outcome text (or the error status when want_status is set). */
static void say(ak_chat *c, const char *text, const char *want, ak_status want_status, ak_response *r) {
    ak_error e;
    ak_result rc = ak_chat_send(c, text, r, &e);
    last = e;
    if (want_status) EXPECT(rc == AK_ERR_AGENT && e.status == want_status, "'%s': expected %s, got rc %d %s: %s", text,
                            ak_status_name(want_status), (int)rc, ak_status_name(e.status), e.message);
    else EXPECT(rc == AK_OK && r->text && strcmp(r->text, want) == 0, "'%s': expected \"%s\", got rc %d \"%s\" (%s)", text,
                want, (int)rc, r->text ? r->text : "", rc ? e.message : "");
}

static void plain_and_streamed_turns(void) {
    ak_remote_agent ra;
    ak_chat c;
    ak_response r;
    ak_error e;
    ak_json_doc d;
    agent(&ra, "chatAgent");
    ak_json_doc_init(&d, NULL);
    ak_remote_chat(&c, &ra, NULL, &e);
    say(&c, "  hello  ", "echo: hello", 0, &r);
    ak_response_free(&r);
    chunks[0] = 0;
    ak_chat_start(&c, parse(&d, "{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"stream a b c\"}]}}"), log_chunk, NULL, &e);
    while (ak_chat_poll(&c, 20, &r, &e) == AK_PENDING) {
    }
    EXPECT(r.text && !strcmp(r.text, "a b c"), "stream text: %s", r.text ? r.text : "");
    EXPECT(!strcmp(chunks, "{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"a \"}]}}\n"
                           "{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"b \"}]}}\n"
                           "{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"c\"}]}}\n"
                           "{\"turnEnd\":{\"finishReason\":\"stop\"}}\n"),
           "stream chunks:\n%s", chunks);
    ak_response_free(&r);
    say(&c, "count", "history=5", 0, &r); /* hello, echo, stream, a b c, count */
    ak_response_free(&r);
    say(&c, "system?", "system=You are a deterministic test agent.", 0, &r);
    EXPECT(ak_chat_snapshot_id(&c) == NULL && ak_chat_session_id(&c) != NULL, "client-managed chat ids");
    ak_response_free(&r);
    ak_chat_free(&c);
    ak_remote_agent_free(&ra);
    ak_json_doc_free(&d);
}

static void tools_and_interrupts(void) {
    ak_remote_agent ra, tool;
    ak_chat c;
    ak_response r;
    ak_error e;
    ak_json_doc d;
    ak_json_doc_init(&d, NULL);
    agent(&tool, "toolAgent");
    ak_remote_chat(&c, &tool, NULL, &e);
    say(&c, "weather Oslo", "tool result: [{\"city\":\"Oslo\",\"tempC\":21,\"sky\":\"clear\"}]", 0, &r);
    ak_response_free(&r);
    ak_chat_free(&c);
    agent(&ra, "interruptAgent");
    ak_remote_chat(&c, &ra, NULL, &e);
    ak_chat_send(&c, "transfer 100", &r, &e);
    EXPECT(r.finish_reason == AK_FINISH_INTERRUPTED && ak_json_len(r.interrupts) == 1, "transfer: %s", js(r.raw));
    EXPECT(!strcmp(js(ak_json_path(r.interrupts, "[0]")),
                   "{\"toolRequest\":{\"name\":\"approveTransfer\",\"ref\":\"t1\",\"input\":{\"amount\":100}},\"metadata\":{\"interrupt\":true}}"),
           "interrupt part: %s", js(ak_json_path(r.interrupts, "[0]")));
    ak_response_free(&r);
    ak_chat_resume(&c, parse(&d, "[{\"toolResponse\":{\"name\":\"approveTransfer\",\"ref\":\"t1\",\"output\":{\"approved\":true}}}]"), NULL, &r, &e);
    EXPECT(r.text && !strcmp(r.text, "tool result: [{\"approved\":true}]"), "respond: %s", js(r.raw));
    ak_response_free(&r);
    ak_chat_send(&c, "delete /tmp/x", &r, &e);
    EXPECT(!strcmp(js(ak_json_path(r.interrupts, "[0].metadata.interrupt")), "{\"reason\":\"confirm delete\",\"path\":\"/tmp/x\"}"),
           "delete interrupt: %s", js(r.raw));
    ak_response_free(&r);
    EXPECT(ak_chat_resume(&c, NULL, parse(&d, "[{\"toolRequest\":{\"name\":\"deleteFile\",\"ref\":\"d1\",\"input\":{\"path\":\"/etc\"}},"
                                              "\"metadata\":{\"resumed\":true}}]"), &r, &e) == AK_ERR_AGENT &&
               e.status == AK_STATUS_INVALID_ARGUMENT && strstr(e.message, "modified inputs"),
           "forged restart: %s", e.message);
    ak_response_free(&r);
    ak_chat_resume(&c, NULL, parse(&d, "[{\"toolRequest\":{\"name\":\"deleteFile\",\"ref\":\"d1\",\"input\":{\"path\":\"/tmp/x\"}},"
                                       "\"metadata\":{\"resumed\":{\"ok\":true}}}]"), &r, &e);
    EXPECT(r.text && !strcmp(r.text, "tool result: [{\"deleted\":\"/tmp/x\",\"resumed\":{\"ok\":true}}]"), "restart: %s", js(r.raw));
    ak_response_free(&r);
    ak_chat_free(&c);
    /* both: one tool completes (pendingOutput), one interrupts */
    ak_remote_chat(&c, &ra, NULL, &e);
    ak_chat_send(&c, "both", &r, &e);
    EXPECT(!strcmp(js(ak_json_path(r.message, "content[0].metadata")), "{\"pendingOutput\":{\"city\":\"Oslo\",\"tempC\":21,\"sky\":\"clear\"}}"),
           "both: %s", js(r.message));
    ak_response_free(&r);
    ak_chat_resume(&c, parse(&d, "[{\"toolResponse\":{\"name\":\"approveTransfer\",\"ref\":\"t1\",\"output\":{\"approved\":false}}}]"), NULL, &r, &e);
    EXPECT(r.text && !strcmp(r.text, "tool result: [{\"city\":\"Oslo\",\"tempC\":21,\"sky\":\"clear\"},{\"approved\":false}]"),
           "both resumed: %s", js(r.raw));
    ak_response_free(&r);
    ak_chat_free(&c);
    ak_remote_agent_free(&ra);
    ak_remote_agent_free(&tool);
    ak_json_doc_free(&d);
}

static void snapshots_branching_and_load(void) {
    ak_remote_agent ra;
    ak_chat c, b;
    ak_response r;
    ak_error e;
    ak_json_doc d;
    ak_json *snap;
    char first[AK_ID_MAX + 1];
    ak_json_doc_init(&d, NULL);
    agent(&ra, "storeAgent");
    ak_remote_chat(&c, &ra, NULL, &e);
    say(&c, "one", "echo: one", 0, &r);
    snprintf(first, sizeof first, "%s", r.snapshot_id ? r.snapshot_id : "");
    ak_response_free(&r);
    say(&c, "two", "echo: two", 0, &r);
    ak_response_free(&r);
    EXPECT(ak_remote_get_snapshot(&ra, first, NULL, &d, &snap, &e) == AK_OK &&
               !strcmp(ak_json_str_or(ak_json_get(snap, "status"), ""), "completed") &&
               ak_json_len(ak_json_path(snap, "state.messages")) == 2,
           "getSnapshot by id: %s", js(snap));
    EXPECT(ak_remote_get_snapshot(&ra, NULL, ak_chat_session_id(&c), &d, &snap, &e) == AK_OK &&
               !strcmp(ak_json_str_or(ak_json_get(snap, "parentId"), ""), first),
           "getSnapshot by session: %s", js(snap));
    EXPECT(ak_chat_load_backend(&b, &ctx, &ra.backend, first, NULL, &e) == AK_OK && ak_json_len(ak_chat_messages(&b)) == 2,
           "loadChat: %s", e.message);
    say(&b, "count", "history=3", 0, &r);
    ak_response_free(&r);
    ak_chat_free(&b);
    EXPECT(ak_remote_get_snapshot(&ra, "no-such-snapshot", NULL, &d, &snap, &e) == AK_ERR_AGENT && e.status == AK_STATUS_NOT_FOUND,
           "missing snapshot: %s %s", ak_status_name(e.status), e.message);
    ak_chat_free(&c);
    ak_remote_agent_free(&ra);
    ak_json_doc_free(&d);
}

static void init_misuse_and_failures(void) {
    ak_remote_agent chat_a, store_a, state_a;
    ak_chat c;
    ak_response r;
    ak_error e;
    ak_json_doc d;
    ak_json_doc_init(&d, NULL);
    agent(&chat_a, "chatAgent");
    agent(&store_a, "storeAgent");
    agent(&state_a, "stateAgent");
    ak_remote_chat(&c, &chat_a, parse(&d, "{\"snapshotId\":\"x\"}"), &e);
    EXPECT(ak_chat_send(&c, "hi", &r, &e) == AK_ERR_AGENT && e.status == AK_STATUS_FAILED_PRECONDITION &&
               strstr(e.message, "Cannot use 'snapshotId' with agent 'chatAgent'"),
           "snapshotId to client-managed: %s", e.message);
    ak_response_free(&r);
    ak_chat_free(&c);
    ak_remote_chat(&c, &store_a, parse(&d, "{\"state\":{}}"), &e);
    EXPECT(ak_chat_send(&c, "hi", &r, &e) == AK_ERR_AGENT && e.status == AK_STATUS_FAILED_PRECONDITION &&
               strstr(e.message, "Cannot send 'state' to agent 'storeAgent'"),
           "state to server-managed: %s", e.message);
    ak_response_free(&r);
    ak_chat_free(&c);
    ak_remote_chat(&c, &store_a, NULL, &e);
    say(&c, "modelfail", NULL, AK_STATUS_RESOURCE_EXHAUSTED, &r);
    EXPECT(!strcmp(last.message, "RESOURCE_EXHAUSTED: model on fire"), "model failure message: %s", last.message);
    ak_response_free(&r);
    ak_chat_free(&c);
    ak_remote_chat(&c, &state_a, NULL, &e);
    say(&c, "fail", NULL, AK_STATUS_INTERNAL, &r);
    EXPECT(!strcmp(last.message, "intentional failure"), "handler failure message: %s", last.message);
    ak_response_free(&r);
    ak_chat_free(&c);
    ak_remote_agent_free(&chat_a);
    ak_remote_agent_free(&store_a);
    ak_remote_agent_free(&state_a);
    ak_json_doc_free(&d);
}

static void custom_state_artifacts_detach_abort(void) {
    ak_remote_agent ra, client;
    ak_chat c;
    ak_response r;
    ak_error e;
    ak_json_doc d;
    ak_json *snap = NULL;
    char id[AK_ID_MAX + 1];
    const char *prev;
    int i;
    ak_json_doc_init(&d, NULL);
    agent(&ra, "stateAgent");
    agent(&client, "clientStateAgent");
    ak_remote_chat(&c, &ra, NULL, &e);
    chunks[0] = 0;
    ak_chat_start(&c, parse(&d, "{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"go\"}]}}"), log_chunk, NULL, &e);
    while (ak_chat_poll(&c, 20, &r, &e) == AK_PENDING) {
    }
    EXPECT(r.text && !strcmp(r.text, "counter=1 turn=0"), "state turn: %s", js(r.raw));
    EXPECT(strstr(chunks, "{\"customPatch\":[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"counter\":1,\"status\":\"working\"}}]}\n"
                          "{\"modelChunk\":{\"role\":\"model\",\"index\":0,\"content\":[{\"text\":\"working on go\"}]}}\n"
                          "{\"customPatch\":[{\"op\":\"replace\",\"path\":\"/status\",\"value\":\"done\"}]}\n"
                          "{\"artifact\":{\"name\":\"report-1.md\",\"parts\":[{\"text\":\"report 1\"}]}}\n{\"turnEnd\":{\"snapshotId\":\"") == chunks,
           "state chunks:\n%s", chunks);
    EXPECT(!strcmp(js(ak_chat_custom(&c)), "{\"counter\":1,\"status\":\"done\"}"), "tracked custom: %s", js(ak_chat_custom(&c)));
    ak_response_free(&r);
    say(&c, "again", "counter=2 turn=0", 0, &r);
    EXPECT(ak_json_len(ak_chat_artifacts(&c)) == 2, "artifacts: %s", js(ak_chat_artifacts(&c)));
    ak_response_free(&r);
    /* detach go: completes in the background */
    EXPECT(ak_chat_detach(&c, parse(&d, "{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"go\"}]}}"), id, &e) == AK_OK,
           "detach: %s", e.message);
    for (i = 0; i < 200; i++) {
        ak_json_doc_reset(&d);
        if (ak_remote_get_snapshot(&ra, id, NULL, &d, &snap, &e) == AK_OK &&
            strcmp(ak_json_str_or(ak_json_get(snap, "status"), ""), "pending") != 0)
            break;
        ak_sleep_ms(&ctx, 25);
    }
    EXPECT(snap && !strcmp(ak_json_str_or(ak_json_get(snap, "status"), ""), "completed") &&
               !strcmp(js(ak_json_path(snap, "state.custom")), "{\"counter\":3,\"status\":\"done\"}"),
           "detached completion: %s", js(snap));
    ak_chat_free(&c);
    /* detach slow, then abort */
    ak_remote_chat(&c, &ra, NULL, &e);
    EXPECT(ak_chat_detach(&c, parse(&d, "{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"slow\"}]}}"), id, &e) == AK_OK,
           "detach slow: %s", e.message);
    EXPECT(ak_remote_abort(&ra, id, &prev, &e) == AK_OK && prev && !strcmp(prev, "pending"), "abort: %s", prev ? prev : e.message);
    EXPECT(ak_remote_abort(&ra, id, &prev, &e) == AK_OK && prev && !strcmp(prev, "aborted"), "abort again: %s", prev ? prev : "");
    ak_json_doc_reset(&d);
    EXPECT(ak_remote_get_snapshot(&ra, id, NULL, &d, &snap, &e) == AK_OK &&
               !strcmp(ak_json_str_or(ak_json_get(snap, "status"), ""), "aborted"),
           "aborted snapshot: %s", js(snap));
    EXPECT(ak_remote_abort(&ra, "never-existed", &prev, &e) == AK_OK && prev == NULL, "abort missing");
    ak_chat_free(&c);
    /* client-managed custom state round trip */
    ak_remote_chat(&c, &client, NULL, &e);
    say(&c, "a", "counter=1 turn=0", 0, &r);
    ak_response_free(&r);
    say(&c, "b", "counter=2 turn=0", 0, &r);
    EXPECT(!strcmp(js(ak_chat_custom(&c)), "{\"counter\":2,\"status\":\"done\"}"), "client custom: %s", js(ak_chat_custom(&c)));
    ak_response_free(&r);
    ak_chat_free(&c);
    ak_remote_agent_free(&ra);
    ak_remote_agent_free(&client);
    ak_json_doc_free(&d);
}

static int passed, failed;
static void run(const char *name, void (*fn)(void)) {
    failures = 0;
    fn();
    if (failures) printf("FAIL %s: %s\n", name, why), failed++;
    else printf("ok   %s\n", name), passed++;
    fflush(stdout);
}

int main(int argc, char **argv) {
    ak_posix_transport_desc td;
    ak_error e;
    if (argc < 2) {
        fprintf(stderr, "usage: remote_scenarios http://127.0.0.1:PORT/api\n");
        return 2;
    }
    base = argv[1];
    ak_context_init(&ctx, NULL);
    memset(&td, 0, sizeof td);
    td.ctx = &ctx;
    if (ak_posix_transport_init(&tr, &td, &e) != AK_OK) {
        fprintf(stderr, "transport: %s\n", e.message);
        return 2;
    }
    run("plain and streamed turns", plain_and_streamed_turns);
    run("tools and interrupts", tools_and_interrupts);
    run("snapshots, branching, loadChat", snapshots_branching_and_load);
    run("init misuse and failures", init_misuse_and_failures);
    run("custom state, artifacts, detach, abort", custom_state_artifacts_detach_abort);
    ak_posix_transport_free(&tr);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
