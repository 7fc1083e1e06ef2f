/* background.c - turns that run detached: start one, get a snapshot id back at once, poll
   the snapshot until it completes; start another and abort it halfway.

   cc -std=c99 -O2 -I.. background.c -o background -lm

   ./background. The agent stands in for any long job (a research task, a build, a slow
   model): "work 300" takes 300 ms. Prompt agents detach the same way.

   A detached turn needs a store: the caller gets the id of a "pending" snapshot at once,
   the agent keeps the turn, and ak_agent_pump() advances it (a server does that in its
   loop, a game once per frame). Whoever holds the id can read the snapshot (pending, then
   completed, failed or aborted) or abort the turn, in process or over HTTP (serve.c). */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Milliseconds the job takes: the number in "work <ms>". */
static long job_ms(const ak_json *input) {
    ak_buf text;
    long ms;
    ak_buf_init(&text, NULL);
    ak_msg_text(ak_json_get(input, "message"), &text);
    ms = text.ptr ? strtol(text.ptr + strcspn(text.ptr, "0123456789"), NULL, 10) : 0;
    ak_buf_free(&text);
    return ms;
}

/* The job. A turn function that returns AK_PENDING is called again on the next pump, so
   it never blocks; ak_runner_turn_state() is zeroed memory that lasts for the turn. */
static ak_result work_turn(ak_runner *r, const ak_json *input, const ak_turn_info *turn, void *ud) {
    int64_t *until = (int64_t *)ak_runner_turn_state(r, sizeof *until);
    ak_json_doc *d = ak_runner_doc(r);
    ak_json *reply;
    ak_result rc;
    (void)turn, (void)ud;
    if (!until) return ak_runner_fail(r, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    if (*until == 0) *until = ak_mono_ms(ak_runner_context(r)) + job_ms(input); /* first call */
    rc = ak_runner_wait_until(r, *until);
    if (rc == AK_PENDING) return rc; /* not yet */
    if (rc != AK_OK) return ak_runner_fail(r, AK_STATUS_CANCELLED, "aborted");
    reply = ak_msg_new(d, "model");
    ak_msg_add(reply, ak_part_text(d, "job done"));
    if (d->err || ak_runner_add_message(r, reply) != AK_OK) return ak_runner_fail(r, AK_STATUS_INTERNAL, "out of memory");
    ak_runner_set_finish_reason(r, AK_FINISH_STOP);
    return AK_OK;
}

static int fail(const char *what, const ak_error *err) {
    fprintf(stderr, "background: %s: %s\n", what, err->message);
    return 1;
}

/* Detaches a turn with a text message; the pending snapshot's id goes to id. */
static ak_result detach(ak_chat *chat, const char *text, char id[AK_ID_MAX + 1], ak_error *err) {
    ak_json_doc d;
    ak_json *input;
    ak_result rc;
    ak_json_doc_init(&d, NULL);
    input = ak_input_text(&d, text);
    rc = input ? ak_chat_detach(chat, input, id, err) : ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory");
    ak_json_doc_free(&d);
    if (rc == AK_OK) printf("detached \"%s\": snapshot %s\n", text, id);
    return rc;
}

/* Reads the snapshot's status ("pending", "completed", ...) into status and prints it, with
   the answer once the turn completed. */
static void read_status(ak_chat *chat, const char *id, char *status, size_t size) {
    ak_json_doc d;
    ak_json *snap;
    ak_error err;
    ak_json_doc_init(&d, NULL);
    if (ak_chat_get_snapshot(chat, id, &d, &snap, &err) == AK_OK) {
        const ak_json *messages = ak_json_path(snap, "state.messages");
        snprintf(status, size, "%s", ak_json_str_or(ak_json_get(snap, "status"), "completed"));
        printf("  status %s", status);
        if (strcmp(status, "completed") == 0) {
            ak_buf text;
            ak_buf_init(&text, NULL);
            ak_msg_text(ak_json_at(messages, ak_json_len(messages) - 1), &text);
            printf(": %s", text.ptr ? text.ptr : "");
            ak_buf_free(&text);
        }
        putchar('\n');
    } else {
        snprintf(status, size, "unreadable");
        printf("  cannot read the snapshot: %s\n", err.message);
    }
    ak_json_doc_free(&d);
}

int main(void) {
    ak_context ctx;
    ak_memstore store;
    ak_agent agent;
    ak_agent_desc desc;
    ak_chat chat;
    ak_error err;
    char id[AK_ID_MAX + 1], status[32];
    const char *previous;

    ak_context_init(&ctx, NULL);
    ak_memstore_init(&store, &ctx);
    memset(&desc, 0, sizeof desc);
    desc.name = "worker";
    desc.turn = work_turn;
    desc.store = &store.store; /* detaching needs a store: that is where the result goes */
    if (ak_agent_init(&agent, &ctx, &desc, &err) != AK_OK || ak_chat_init(&chat, &agent, NULL, &err) != AK_OK)
        return fail("agent", &err);

    /* 1. Detach a turn, then poll its snapshot, pumping the agent in between. */
    if (detach(&chat, "work 300", id, &err) != AK_OK) return fail("detach", &err);
    for (read_status(&chat, id, status, sizeof status); strcmp(status, "pending") == 0;
         read_status(&chat, id, status, sizeof status))
        ak_agent_pump(&agent, 100); /* a bit of background work; sleeps up to 100 ms if idle */

    /* 2. Detach a long turn and abort it: the turn sees the abort at its next step. */
    if (detach(&chat, "work 60000", id, &err) != AK_OK) return fail("detach", &err);
    ak_agent_pump(&agent, 50);
    read_status(&chat, id, status, sizeof status);
    if (ak_chat_abort(&chat, &previous, &err) != AK_OK) return fail("abort", &err);
    printf("abort: it was %s\n", previous ? previous : "not found");
    while (ak_agent_pump(&agent, 10) == AK_PENDING) { /* until no background work is left */
    }
    read_status(&chat, id, status, sizeof status);

    ak_chat_free(&chat);
    ak_agent_free(&agent);
    ak_memstore_free(&store);
    return 0;
}
