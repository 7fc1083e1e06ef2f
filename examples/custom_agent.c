/* custom_agent.c - an agent whose turns are your own C code (Genkit's defineCustomAgent),
   with custom state and artifacts streamed to the client as they change.

   cc -std=c99 -O2 -I.. custom_agent.c -o custom_agent -lm

   ./custom_agent. No model and no network: a to-do list keeper ("add milk, eggs"). Its
   custom state is {"items": [...]}; a turn that adds items re-renders the artifact
   "todo.md". The chat streams {"customPatch": [JSON Patch ops]} when the state changes,
   {"artifact": ...} when an artifact is added or replaced, {"modelChunk": ...} for text,
   and {"turnEnd": ...} at the end of each turn.
   A custom turn may also call models itself (ak_model_generate) and take many pumps:
   return AK_PENDING and keep progress in ak_runner_turn_state(). */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdio.h>
#include <string.h>

/* Streams a piece of text to whoever listens. */
static ak_result say(ak_runner *r, const char *text) {
    ak_json_doc *d = ak_runner_doc(r); /* per-turn scratch document, reset between turns */
    ak_json *chunk = ak_json_new_object(d), *content = ak_json_new_array(d);
    ak_json_push(content, ak_part_text(d, text));
    ak_json_set(d, chunk, "content", content);
    return d->err ? d->err : ak_runner_send_chunk(r, chunk);
}

/* The artifact: the list as Markdown, {"name": "todo.md", "parts": [{"text": ...}]}. */
static ak_result render_todo(ak_runner *r, const ak_json *items) {
    ak_json_doc *d = ak_runner_doc(r);
    ak_json *artifact = ak_json_new_object(d), *parts = ak_json_new_array(d);
    const ak_json *item;
    ak_buf md;
    ak_buf_init(&md, NULL);
    ak_buf_puts(&md, "# To do\n");
    for (item = ak_json_first(items); item; item = item->next) ak_buf_printf(&md, "- [ ] %s\n", ak_json_str(item));
    ak_json_push(parts, ak_part_textn(d, md.ptr, md.len));
    ak_buf_free(&md);
    ak_json_set_str(d, artifact, "name", "todo.md");
    ak_json_set(d, artifact, "parts", parts);
    return d->err ? d->err : ak_runner_add_artifacts(r, artifact); /* same name: replaced */
}

/* Adds each comma-separated item of list, one at a time, as if each took some work: every
   change is streamed (the turn's first as the whole state, later ones as a JSON diff). */
static ak_result add_items(ak_runner *r, ak_json *state, ak_json *items, const char *list) {
    ak_json_doc *d = ak_runner_doc(r);
    ak_result rc = AK_OK;
    size_t len;
    while (rc == AK_OK && *list) {
        list += strspn(list, ", ");
        len = strcspn(list, ",");
        if (len) {
            ak_json_push(items, ak_json_new_strn(d, list, len));
            rc = d->err ? d->err : ak_runner_set_custom(r, state); /* copied; streams a customPatch */
        }
        list += len;
    }
    return rc;
}

/* One turn. "add a, b" puts items on the list; anything else just reports it. The user's
   message is already in the history; the turn adds the model's reply. */
static ak_result todo_turn(ak_runner *r, const ak_json *input, const ak_turn_info *turn, void *ud) {
    ak_json_doc *d = ak_runner_doc(r);
    const ak_json *current = ak_runner_custom(r); /* NULL on the first turn */
    ak_json *state, *items, *reply;
    ak_result rc = AK_OK;
    ak_buf text, line;
    (void)turn, (void)ud;
    ak_buf_init(&text, NULL);
    ak_buf_init(&line, NULL);
    ak_msg_text(ak_json_get(input, "message"), &text);
    state = current ? ak_json_copy(d, current) : ak_json_new_object(d); /* a copy to change */
    if (!(items = ak_json_get(state, "items"))) ak_json_set(d, state, "items", items = ak_json_new_array(d));
    if (text.len > 4 && strncmp(text.ptr, "add ", 4) == 0) {
        rc = say(r, "Adding... ");
        if (rc == AK_OK) rc = add_items(r, state, items, text.ptr + 4);
        if (rc == AK_OK) rc = render_todo(r, items);
    }
    ak_buf_printf(&line, "%zu item(s) on the list.", ak_json_len(items));
    reply = ak_msg_new(d, "model");
    ak_msg_add(reply, ak_part_text(d, line.ptr));
    if (rc == AK_OK) rc = d->err ? d->err : ak_runner_add_message(r, reply);
    ak_buf_free(&text);
    ak_buf_free(&line);
    if (rc != AK_OK) return ak_runner_fail(r, AK_STATUS_INTERNAL, "cannot update the list: %s", ak_result_str(rc));
    ak_runner_set_finish_reason(r, AK_FINISH_STOP);
    return AK_OK; /* the turn is over; AK_PENDING would call again on the next pump */
}

static void print_json(const char *label, const ak_json *v) {
    ak_buf out;
    ak_buf_init(&out, NULL);
    ak_json_write(v, &out);
    printf("%s %s\n", label, out.ptr);
    ak_buf_free(&out);
}

/* Shows every chunk as it streams. */
static void show_chunk(void *ud, const ak_json *chunk) {
    (void)ud;
    print_json("  stream", chunk);
}

int main(void) {
    static const char *inputs[] = {"add milk", "add eggs, bread", "what is left?"};
    ak_context ctx;
    ak_agent agent;
    ak_agent_desc desc;
    ak_chat chat;
    ak_error err;
    size_t i;

    ak_context_init(&ctx, NULL);
    memset(&desc, 0, sizeof desc);
    desc.name = "todoAgent";
    desc.turn = todo_turn; /* a custom agent: no model, no system prompt */
    /* checked whenever a state is loaded (from a client or a store) */
    desc.state_schema = "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}";
    if (ak_agent_init(&agent, &ctx, &desc, &err) != AK_OK || ak_chat_init(&chat, &agent, NULL, &err) != AK_OK) {
        fprintf(stderr, "custom_agent: %s\n", err.message);
        return 1;
    }
    for (i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        ak_json_doc d;
        ak_json *input;
        ak_response r;
        ak_result rc;
        memset(&r, 0, sizeof r); /* freed below even when the turn never started */
        ak_json_doc_init(&d, NULL);
        printf("you> %s\n", inputs[i]);
        input = ak_input_text(&d, inputs[i]);
        rc = input ? ak_chat_start(&chat, input, show_chunk, NULL, &err)
                   : ak_error_set(&err, AK_ERR_OUT_OF_MEMORY, "out of memory");
        if (rc == AK_OK)
            while ((rc = ak_chat_poll(&chat, 0, &r, &err)) == AK_PENDING) {
            }
        if (rc == AK_OK) printf("agent> %s\n", r.text);
        else printf("error: %s\n", err.message);
        ak_response_free(&r);
        ak_json_doc_free(&d);
    }
    /* The chat tracks the state and artifacts the stream told it about. */
    print_json("state", ak_chat_custom(&chat));
    print_json("artifacts", ak_chat_artifacts(&chat));
    ak_chat_free(&chat);
    ak_agent_free(&agent);
    return 0;
}
