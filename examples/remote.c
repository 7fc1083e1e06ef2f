/* remote.c - talk to an agent served over HTTP as if it were local: the same ak_chat calls,
   over Genkit's protocol. Works against serve.c, `akdriver serve` and Genkit JS servers.

   cc -std=c99 -O2 -I.. -DAK_ENABLE_POSIX -DAK_ENABLE_MBEDTLS remote.c -o remote -lmbedtls -lmbedx509 -lmbedcrypto -lm

   ./serve &  then  ./remote [URL]   (default http://127.0.0.1:3400/api/assistant)
   It streams a turn, lets the agent call a tool, approves a transfer, and reads the
   conversation back from the server's store. The inputs are the offline scripted model's
   commands; against a real model they read as ordinary requests. */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdio.h>
#include <string.h>

static void print_chunk(void *ud, const ak_json *chunk) {
    ak_buf text;
    (void)ud;
    ak_buf_init(&text, NULL);
    ak_msg_text(ak_json_get(chunk, "modelChunk"), &text); /* turnEnd etc. have no text */
    if (text.len) printf("[%s]", text.ptr);
    fflush(stdout);
    ak_buf_free(&text);
}

/* One turn with a text message, streamed: the chunks print as they arrive. */
static ak_result stream_turn(ak_chat *chat, const char *text, ak_response *r, ak_error *err) {
    ak_json_doc d;
    ak_json *input;
    ak_result rc;
    ak_json_doc_init(&d, NULL);
    input = ak_input_text(&d, text);
    rc = input ? ak_chat_start(chat, input, print_chunk, NULL, err) : ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory");
    if (rc == AK_OK)
        while ((rc = ak_chat_poll(chat, 100, r, err)) == AK_PENDING) {
        }
    ak_json_doc_free(&d);
    return rc;
}

/* The answer to an approveTransfer interrupt: [{toolResponse: {name, ref, output}}]. */
static ak_json *approve(ak_json_doc *d, const ak_json *interrupt) {
    const ak_json *req = ak_json_get(interrupt, "toolRequest");
    ak_json *answers = ak_json_new_array(d), *output = ak_json_new_object(d);
    ak_json_set_bool(d, output, "approved", 1);
    ak_json_push(answers, ak_part_tool_response(d, ak_json_get_str(req, "name"), ak_json_get_str(req, "ref"), output));
    return answers;
}

static int fail(const char *what, const ak_error *err) {
    fprintf(stderr, "remote: %s: %s\n", what, err->message);
    return 1;
}

int main(int argc, char **argv) {
    ak_context ctx;
    ak_posix_transport net;
    ak_posix_transport_desc net_desc;
    ak_remote_agent remote;
    ak_remote_desc remote_desc;
    ak_chat chat;
    ak_response r;
    ak_json_doc d;
    ak_json *snapshot;
    ak_error err;

    ak_context_init(&ctx, NULL);
    memset(&net_desc, 0, sizeof net_desc);
    net_desc.ctx = &ctx; /* blocking: each request completes inside the call that sends it */
    if (ak_posix_transport_init(&net, &net_desc, &err) != AK_OK) return fail("transport", &err);
    memset(&remote_desc, 0, sizeof remote_desc);
    remote_desc.url = argc > 1 ? argv[1] : "http://127.0.0.1:3400/api/assistant";
    remote_desc.transport = &net.transport; /* any ak_transport: see curl_transport.c */
    if (ak_remote_agent_init(&remote, &ctx, &remote_desc, &err) != AK_OK) return fail("agent", &err);
    if (ak_remote_chat(&chat, &remote, NULL, &err) != AK_OK) return fail("chat", &err);

    printf("you> stream one two three\nagent> ");
    if (stream_turn(&chat, "stream one two three", &r, &err) != AK_OK) return fail("turn", &err);
    printf(" -> %s\n", r.text);
    ak_response_free(&r);

    printf("you> weather Oslo\n");
    if (ak_chat_send(&chat, "weather Oslo", &r, &err) != AK_OK) return fail("turn", &err);
    printf("agent> %s\n", r.text);
    ak_response_free(&r);

    printf("you> transfer 250\n");
    if (ak_chat_send(&chat, "transfer 250", &r, &err) != AK_OK) return fail("turn", &err);
    if (r.finish_reason == AK_FINISH_INTERRUPTED) { /* the server paused the turn for us */
        ak_json *answers;
        printf("agent> (asks to approve %s) approved\n", ak_json_get_str(ak_json_path(r.interrupts, "[0].toolRequest"), "name"));
        ak_json_doc_init(&d, NULL);
        answers = approve(&d, ak_json_at(r.interrupts, 0)); /* copies what it needs from r */
        ak_response_free(&r);
        if (ak_chat_resume(&chat, answers, NULL, &r, &err) != AK_OK) return fail("resume", &err);
        ak_json_doc_free(&d);
    }
    printf("agent> %s\n", r.text);
    ak_response_free(&r);

    /* The server keeps the state (its store); the chat only tracks the snapshot id. */
    ak_json_doc_init(&d, NULL);
    if (ak_remote_get_snapshot(&remote, ak_chat_snapshot_id(&chat), NULL, &d, &snapshot, &err) == AK_OK)
        printf("snapshot %s on the server: status %s, %zu messages\n", ak_json_get_str(snapshot, "snapshotId"),
               ak_json_get_str(snapshot, "status"), ak_json_len(ak_json_path(snapshot, "state.messages")));
    else
        printf("no snapshot to read: %s\n", err.message); /* a client-managed agent has none */
    ak_json_doc_free(&d);

    ak_chat_free(&chat);
    ak_remote_agent_free(&remote);
    ak_posix_transport_free(&net);
    return 0;
}
