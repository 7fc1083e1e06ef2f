/* approval.c - a human in the loop: before money moves, the agent stops and asks you.

   cc -std=c99 -O2 -I.. -DAK_ENABLE_POSIX -DAK_ENABLE_MBEDTLS approval.c -o approval -lmbedtls -lmbedx509 -lmbedcrypto -lm

   ./approval, then type a request; when the agent wants to transfer money it asks
   "approve? [y/n]". Offline (no provider in the environment, see chat.c) the scripted model
   asks for approval on "transfer <amount>": try "transfer 250", then y.

   approveTransfer is an interrupt (Genkit's defineInterrupt): a tool with no code. When the
   model calls it the turn ends with finishReason "interrupted" and the pending tool request
   in r.interrupts. You answer it with ak_chat_resume: `respond` supplies the tool's output
   (here {approved: true|false}), which the model then reads. (The other answer, `restart`,
   runs a real tool again with metadata.resumed set: for tools that act once approved.) */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdio.h>
#include <string.h>

static const ak_tool tools[] = {{
    "approveTransfer", "Ask the user to approve a money transfer. Always call it before transferring.",
    "{\"type\":\"object\",\"properties\":{\"amount\":{\"type\":\"number\"}},\"required\":[\"amount\"]}",
    "{\"type\":\"object\",\"properties\":{\"approved\":{\"type\":\"boolean\"}},\"required\":[\"approved\"]}",
    NULL, NULL, 1 /* no function: a pure interrupt */
}};

static int fail(const char *what, const ak_error *err) {
    fprintf(stderr, "approval: %s: %s\n", what, err->message);
    return 1;
}

/* Reads one line from the terminal without its newline; 0 at the end of input. */
static int read_line(const char *prompt, char *line, size_t size) {
    fputs(prompt, stdout);
    fflush(stdout);
    if (!fgets(line, (int)size, stdin)) return 0;
    line[strcspn(line, "\r\n")] = 0;
    return 1;
}

/* Asks about each interrupted tool request and builds the answers: toolResponse parts
   {name, ref, output: {approved}} in d. Returns NULL at the end of input. */
static ak_json *ask_human(ak_json_doc *d, const ak_json *interrupts) {
    ak_json *answers = ak_json_new_array(d), *output;
    const ak_json *part;
    char line[64];
    ak_buf input;
    for (part = ak_json_first(interrupts); part; part = part->next) {
        const ak_json *req = ak_json_get(part, "toolRequest");
        ak_buf_init(&input, NULL);
        ak_json_write(ak_json_get(req, "input"), &input);
        printf("agent wants to call %s %s\n", ak_json_get_str(req, "name"), input.ptr);
        ak_buf_free(&input);
        if (!read_line("approve? [y/n] ", line, sizeof line)) return NULL;
        output = ak_json_new_object(d);
        ak_json_set_bool(d, output, "approved", line[0] == 'y' || line[0] == 'Y');
        ak_json_push(answers, ak_part_tool_response(d, ak_json_get_str(req, "name"), ak_json_get_str(req, "ref"), output));
    }
    return answers;
}

int main(void) {
    ak_context ctx;
    ak_posix_transport net;
    ak_posix_transport_desc net_desc;
    ak_http_model provider;
    ak_model scripted;
    ak_agent agent;
    ak_agent_desc desc;
    ak_chat chat;
    ak_response r;
    ak_error err;
    ak_result rc;
    char line[4096];

    ak_context_init(&ctx, NULL);
    memset(&net_desc, 0, sizeof net_desc);
    net_desc.ctx = &ctx;
    if (ak_posix_transport_init(&net, &net_desc, &err) != AK_OK) return fail("transport", &err);
    memset(&desc, 0, sizeof desc);
    desc.name = "bankAgent";
    desc.system = "You move money for the user. Call approveTransfer for every transfer.";
    desc.tools = tools;
    desc.tool_count = 1;
    if (ak_http_model_from_env(&provider, &ctx, &net.transport, NULL) == AK_OK) {
        desc.model = &provider.model;
    } else {
        ak_scripted_model_init(&scripted); /* offline: "transfer <n>" calls approveTransfer */
        desc.model = &scripted;
    }
    if (ak_agent_init(&agent, &ctx, &desc, &err) != AK_OK || ak_chat_init(&chat, &agent, NULL, &err) != AK_OK)
        return fail("agent", &err);

    while (read_line("you> ", line, sizeof line)) {
        if (!line[0]) continue;
        rc = ak_chat_send(&chat, line, &r, &err);
        /* A resumed turn may be interrupted again: keep asking until it finishes. */
        while (rc == AK_OK && r.finish_reason == AK_FINISH_INTERRUPTED) {
            ak_json_doc d;
            ak_json *answers;
            ak_json_doc_init(&d, NULL);
            answers = ask_human(&d, r.interrupts);
            ak_response_free(&r);
            rc = answers ? ak_chat_resume(&chat, answers, NULL, &r, &err) : AK_ERR_CANCELLED;
            ak_json_doc_free(&d);
        }
        if (rc == AK_OK) printf("agent> %s\n", r.text);
        else if (rc != AK_ERR_CANCELLED) printf("error: %s\n", err.message);
        ak_response_free(&r);
        if (rc == AK_ERR_CANCELLED) break; /* input ended while a question was open */
    }
    putchar('\n');
    ak_chat_free(&chat);
    ak_agent_free(&agent);
    ak_posix_transport_free(&net);
    return 0;
}
