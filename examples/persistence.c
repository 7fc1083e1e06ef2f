/* persistence.c - a chat that survives restarts: every turn is saved to disk, and the next
   run picks the conversation up where it stopped.

   cc -std=c99 -O2 -I.. -DAK_ENABLE_POSIX -DAK_ENABLE_MBEDTLS persistence.c -o persistence -lmbedtls -lmbedx509 -lmbedcrypto -lm

   ./persistence [DIR [SESSION]]   (DIR default ./sessions, SESSION default "my-chat")
   Type a few lines, quit with Ctrl-D, run it again: it says how many messages it loaded,
   and "count" (offline, on the scripted model) shows the model sees the whole history.
   Provider from the environment as in chat.c.

   The agent has a store, so its state is server-managed: each turn writes a snapshot
   (DIR/global/<snapshotId>.json, replaced atomically, safe across crashes and processes)
   and the chat keeps only ids. A conversation is found again by its session id (the
   latest snapshot of the session) or by any snapshot id (to branch from an older turn). */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdio.h>
#include <string.h>

static int fail(const char *what, const ak_error *err) {
    fprintf(stderr, "persistence: %s: %s\n", what, err->message);
    return 1;
}

/* Continues the session from the store, or starts it under that id when it is new. */
static ak_result open_chat(ak_chat *chat, ak_agent *agent, const char *session, ak_error *err) {
    ak_json_doc d;
    ak_json *init;
    ak_result rc = ak_chat_load(chat, agent, NULL, session, err);
    if (rc != AK_ERR_AGENT || err->status != AK_STATUS_NOT_FOUND) return rc;
    ak_json_doc_init(&d, NULL);
    init = ak_json_new_object(&d); /* AgentInit {"sessionId": ...}: a new session, our id */
    ak_json_set_str(&d, init, "sessionId", session);
    rc = d.err ? d.err : ak_chat_init(chat, agent, init, err);
    ak_json_doc_free(&d);
    return rc;
}

/* Replays the conversation so far: "  user: ...", "  model: ...". */
static void print_history(const ak_json *messages) {
    const ak_json *m;
    ak_buf text;
    ak_buf_init(&text, NULL);
    for (m = ak_json_first(messages); m; m = m->next) {
        ak_buf_clear(&text);
        ak_msg_text(m, &text);
        if (text.len) printf("  %s: %s\n", ak_msg_role(m), text.ptr);
    }
    ak_buf_free(&text);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "sessions", *session = argc > 2 ? argv[2] : "my-chat";
    ak_context ctx;
    ak_posix_transport net;
    ak_posix_transport_desc net_desc;
    ak_http_model provider;
    ak_model scripted;
    ak_filestore store;
    ak_filestore_desc store_desc;
    ak_agent agent;
    ak_agent_desc desc;
    ak_chat chat;
    ak_response r;
    ak_error err;
    char line[4096];

    ak_context_init(&ctx, NULL);
    memset(&net_desc, 0, sizeof net_desc);
    net_desc.ctx = &ctx;
    if (ak_posix_transport_init(&net, &net_desc, &err) != AK_OK) return fail("transport", &err);
    memset(&store_desc, 0, sizeof store_desc);
    store_desc.dir = dir; /* created when missing */
    if (ak_filestore_init(&store, &ctx, &store_desc, &err) != AK_OK) return fail(dir, &err);
    memset(&desc, 0, sizeof desc);
    desc.name = "notebook";
    desc.system = "You are a helpful assistant with a good memory. Keep answers short.";
    desc.store = &store.store; /* this is all it takes to persist */
    if (ak_http_model_from_env(&provider, &ctx, &net.transport, NULL) == AK_OK) {
        desc.model = &provider.model;
    } else {
        ak_scripted_model_init(&scripted);
        desc.model = &scripted;
    }
    if (ak_agent_init(&agent, &ctx, &desc, &err) != AK_OK) return fail("agent", &err);
    if (open_chat(&chat, &agent, session, &err) != AK_OK) return fail(session, &err);

    printf("session %s in %s: %zu message(s) so far; Ctrl-D to quit\n", session, dir,
           ak_json_len(ak_chat_messages(&chat)));
    print_history(ak_chat_messages(&chat));
    for (;;) {
        fputs("you> ", stdout);
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin)) break;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        if (ak_chat_send(&chat, line, &r, &err) == AK_OK)
            printf("agent> %s\n       (saved as snapshot %s)\n", r.text, r.snapshot_id);
        else
            printf("error: %s\n", err.message);
        ak_response_free(&r);
    }
    putchar('\n');
    ak_chat_free(&chat);
    ak_agent_free(&agent);
    ak_filestore_free(&store);
    ak_posix_transport_free(&net);
    return 0;
}
