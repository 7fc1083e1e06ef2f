/* chat.c - a terminal chat that prints the agent's answer while it is being written.

   cc -std=c99 -O2 -I.. -DAK_ENABLE_POSIX -DAK_ENABLE_MBEDTLS chat.c -o chat -lmbedtls -lmbedx509 -lmbedcrypto -lm

   ./chat, then type; Ctrl-D ends. The model is the first provider the environment names:
     OPENAI_API_KEY=sk-... ./chat                      OpenAI (OPENAI_MODEL, default gpt-4o-mini)
     OPENAI_BASE_URL=http://localhost:8080/v1 ./chat   any OpenAI-compatible server: llama.cpp,
                                                       Ollama (http://localhost:11434/v1), vLLM
     ANTHROPIC_API_KEY=... ./chat   GEMINI_API_KEY=... ./chat   OLLAMA_HOST=http://localhost:11434 ./chat
   With none of them it runs offline on the scripted model: try "hello", "stream one two
   three" and "count". Without mbedTLS, drop -DAK_ENABLE_MBEDTLS and the -lmbed* libraries:
   plain http:// servers (a local llama.cpp or Ollama) still work. */
#define AGENTKIT_IMPLEMENTATION /* this file holds the library's implementation */
#include "agentkit.h"           /* include it before any system header */
#include <stdio.h>
#include <string.h>

/* A provider named in the environment, else the offline scripted model. */
static ak_model *pick_model(ak_context *ctx, ak_posix_transport *net, ak_http_model *provider,
                            ak_model *scripted) {
    if (ak_http_model_from_env(provider, ctx, &net->transport, NULL) == AK_OK) return &provider->model;
    ak_scripted_model_init(scripted);
    return scripted;
}

/* Called for every chunk of the turn as it arrives: print the model's text at once. */
static void print_chunk(void *ud, const ak_json *chunk) {
    const ak_json *mc = ak_json_get(chunk, "modelChunk");
    ak_buf text;
    if (!mc || strcmp(ak_json_str_or(ak_json_get(mc, "role"), ""), "model") != 0) return;
    ak_buf_init(&text, NULL);
    ak_msg_text(mc, &text); /* a chunk has a message's shape: {role, content: [parts]} */
    if (text.len) {
        fwrite(text.ptr, 1, text.len, stdout);
        fflush(stdout);
        *(int *)ud = 1; /* something was shown */
    }
    ak_buf_free(&text);
}

/* One streamed turn: start it, then poll until it ends (the chunks print meanwhile). */
static void turn(ak_chat *chat, const char *text) {
    ak_json_doc d;
    ak_response r;
    ak_error err;
    ak_json *input;
    ak_result rc;
    int streamed = 0;
    memset(&r, 0, sizeof r); /* freed below even when the turn never started */
    ak_json_doc_init(&d, NULL);
    fputs("agent> ", stdout);
    input = ak_input_text(&d, text);
    rc = input ? ak_chat_start(chat, input, print_chunk, &streamed, &err)
               : ak_error_set(&err, AK_ERR_OUT_OF_MEMORY, "out of memory");
    if (rc == AK_OK)
        while ((rc = ak_chat_poll(chat, 100, &r, &err)) == AK_PENDING) {
        }
    if (rc == AK_OK && !streamed) fputs(r.text, stdout); /* an answer that was not streamed */
    if (rc != AK_OK) printf("[error: %s]", err.message);
    putchar('\n');
    ak_response_free(&r);
    ak_json_doc_free(&d);
}

static int fail(const char *what, const ak_error *err) {
    fprintf(stderr, "chat: %s: %s\n", what, err->message);
    return 1;
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
    ak_error err;
    char line[4096];

    ak_context_init(&ctx, NULL); /* default allocator, clock and random source */
    memset(&net_desc, 0, sizeof net_desc);
    net_desc.ctx = &ctx;
    if (ak_posix_transport_init(&net, &net_desc, &err) != AK_OK) return fail("transport", &err);
    memset(&desc, 0, sizeof desc); /* every field has a zero default */
    desc.name = "chat";
    desc.model = pick_model(&ctx, &net, &provider, &scripted);
    desc.system = "You are a helpful assistant. Keep your answers short.";
    /* the chat keeps the conversation between turns */
    if (ak_agent_init(&agent, &ctx, &desc, &err) != AK_OK || ak_chat_init(&chat, &agent, NULL, &err) != AK_OK)
        return fail("agent", &err);

    printf("model %s; type a message, Ctrl-D to quit\n", desc.model->name);
    for (;;) {
        fputs("you> ", stdout);
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin)) break;
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) turn(&chat, line);
    }
    putchar('\n');
    ak_chat_free(&chat);
    ak_agent_free(&agent);
    ak_posix_transport_free(&net);
    return 0;
}
