/* demo.c - what `make demo` runs: agentkit.h in five steps, with narration.

   cc -std=c99 -O2 -I.. -DAK_ENABLE_POSIX -DAK_ENABLE_MBEDTLS demo.c -o demo -lmbedtls -lmbedx509 -lmbedcrypto -lm

   ./demo [DIR]   (DIR: where the session files go; default ./demo-sessions)
   One conversation: a streamed answer, a tool call, a pause for human approval, a snapshot
   saved to disk, and the conversation resumed from that file by a fresh agent. Offline it
   runs on the scripted model (deterministic commands like "weather Oslo"); with a provider
   in the environment (listed at the end of the output) the same steps run against a real
   model with plain-language requests. */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdio.h>
#include <string.h>

typedef struct demo {
    ak_context ctx;
    int offline;                 /* on the scripted model */
    const char *dir;             /* the file store's directory */
    int streamed;                /* text of the current turn was printed while streaming */
} demo;

/* What a step says: a command for the scripted model, or plain language for a real one. */
static const char *say(const demo *dm, const char *scripted, const char *real) { return dm->offline ? scripted : real; }

static void narrate(const char *title, const char *what) { printf("\n== %s\n   %s\n", title, what); }

static void print_json(const char *label, const ak_json *v) {
    ak_buf out;
    ak_buf_init(&out, NULL);
    ak_json_write(v, &out);
    printf("%s%s\n", label, out.ptr);
    ak_buf_free(&out);
}

/* ---- the agent ------------------------------------------------------------------------- */

static ak_result get_weather(ak_tool_call *call) {
    ak_json *out = ak_json_new_object(call->doc);
    print_json("   [tool] getWeather ", call->input);
    ak_json_set_str(call->doc, out, "city", ak_json_get_str(call->input, "city"));
    ak_json_set_int(call->doc, out, "tempC", 21);
    ak_json_set_str(call->doc, out, "sky", "clear");
    return ak_tool_return(call, out);
}

static const ak_tool tools[] = {
    {"getWeather", "Current weather for a city.",
     "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}", NULL, get_weather,
     NULL, 0},
    /* no code: calling it pauses the turn until a human answers */
    {"approveTransfer", "Ask the user to approve a money transfer. Call it before every transfer.",
     "{\"type\":\"object\",\"properties\":{\"amount\":{\"type\":\"number\"}},\"required\":[\"amount\"]}",
     "{\"type\":\"object\",\"properties\":{\"approved\":{\"type\":\"boolean\"}},\"required\":[\"approved\"]}", NULL, NULL,
     1},
};

/* A file store in dir and an agent using it. */
static ak_result open_agent(demo *dm, ak_model *model, ak_filestore *store, ak_agent *agent, ak_error *err) {
    ak_filestore_desc sd;
    ak_agent_desc desc;
    ak_result rc;
    memset(&sd, 0, sizeof sd);
    sd.dir = dm->dir;
    if ((rc = ak_filestore_init(store, &dm->ctx, &sd, err)) != AK_OK) return rc;
    memset(&desc, 0, sizeof desc);
    desc.name = "demoAgent";
    desc.model = model;
    desc.system = "You are a concise assistant. Use getWeather for weather. Call approveTransfer before any transfer.";
    desc.tools = tools;
    desc.tool_count = 2;
    desc.store = &store->store;
    if ((rc = ak_agent_init(agent, &dm->ctx, &desc, err)) != AK_OK) ak_filestore_free(store);
    return rc;
}

/* ---- turns ----------------------------------------------------------------------------- */

/* Prints streamed text as it arrives (offline slowed down, so that you see it stream). */
static void print_chunk(void *ud, const ak_json *chunk) {
    demo *dm = (demo *)ud;
    ak_buf text;
    if (strcmp(ak_json_str_or(ak_json_path(chunk, "modelChunk.role"), ""), "model") != 0) return;
    ak_buf_init(&text, NULL);
    ak_msg_text(ak_json_get(chunk, "modelChunk"), &text);
    if (text.len) {
        printf("%s%s", dm->streamed ? "" : "   agent> ", text.ptr);
        fflush(stdout);
        dm->streamed = 1;
        if (dm->offline) ak_sleep_ms(&dm->ctx, 150);
    }
    ak_buf_free(&text);
}

/* One streamed turn; r is filled when the turn ran. */
static ak_result turn(demo *dm, ak_chat *chat, const char *text, ak_response *r, ak_error *err) {
    ak_json_doc d;
    ak_json *input;
    ak_result rc;
    printf("   you>   %s\n", text);
    dm->streamed = 0;
    ak_json_doc_init(&d, NULL);
    input = ak_input_text(&d, text);
    rc = input ? ak_chat_start(chat, input, print_chunk, dm, err) : ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory");
    if (rc == AK_OK)
        while ((rc = ak_chat_poll(chat, 100, r, err)) == AK_PENDING) {
        }
    ak_json_doc_free(&d);
    if (dm->streamed) putchar('\n');
    else if (rc == AK_OK && r->text[0]) printf("   agent> %s\n", r->text); /* not streamed (after a tool) */
    if (rc != AK_OK) printf("   error: %s\n", err->message);
    return rc;
}

/* Answers every interrupt of r with {approved: true}, as a person would at a prompt (see
   approval.c), until the turn finishes. */
static ak_result approve_all(ak_chat *chat, ak_response *r, ak_error *err) {
    ak_result rc = AK_OK;
    while (rc == AK_OK && r->finish_reason == AK_FINISH_INTERRUPTED) {
        ak_json_doc d;
        ak_json *answers, *output;
        const ak_json *part;
        ak_json_doc_init(&d, NULL);
        answers = ak_json_new_array(&d);
        for (part = ak_json_first(r->interrupts); part; part = part->next) {
            const ak_json *req = ak_json_get(part, "toolRequest");
            printf("   [paused] the agent asks to run %s; ", ak_json_get_str(req, "name"));
            print_json("input ", ak_json_get(req, "input"));
            printf("   [you]    approved (the demo answers for you)\n");
            output = ak_json_new_object(&d);
            ak_json_set_bool(&d, output, "approved", 1);
            ak_json_push(answers, ak_part_tool_response(&d, ak_json_get_str(req, "name"), ak_json_get_str(req, "ref"), output));
        }
        ak_response_free(r);
        rc = d.err ? d.err : ak_chat_resume(chat, answers, NULL, r, err);
        ak_json_doc_free(&d);
        if (rc == AK_OK) printf("   agent> %s\n", r->text);
    }
    if (rc != AK_OK) printf("   error: %s\n", err->message);
    return rc;
}

/* Bytes of a file, -1 when it cannot be opened. */
static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (f) fclose(f);
    return size;
}

static int fail(const char *what, const ak_error *err) {
    fprintf(stderr, "demo: %s: %s\n", what, err->message);
    return 1;
}

int main(int argc, char **argv) {
    demo dm;
    ak_posix_transport net;
    ak_posix_transport_desc net_desc;
    ak_http_model provider;
    ak_model scripted, *model;
    ak_filestore store;
    ak_agent agent;
    ak_chat chat;
    ak_response r;
    ak_error err;
    char snapshot[AK_ID_MAX + 1], path[1024];

    memset(&dm, 0, sizeof dm);
    dm.dir = argc > 1 ? argv[1] : "demo-sessions";
    ak_context_init(&dm.ctx, NULL);
    memset(&net_desc, 0, sizeof net_desc);
    net_desc.ctx = &dm.ctx;
    if (ak_posix_transport_init(&net, &net_desc, &err) != AK_OK) return fail("transport", &err);
    if (ak_http_model_from_env(&provider, &dm.ctx, &net.transport, NULL) == AK_OK) {
        model = &provider.model;
    } else {
        ak_scripted_model_init(&scripted);
        model = &scripted;
        dm.offline = 1;
    }
    printf("agentkit.h %s demo on model %s%s\n", ak_version(), model->name,
           dm.offline ? " (offline: a deterministic stand-in, no network)" : "");
    if (open_agent(&dm, model, &store, &agent, &err) != AK_OK) return fail(dm.dir, &err);
    if (ak_chat_init(&chat, &agent, NULL, &err) != AK_OK) return fail("chat", &err);

    narrate("1. Streaming", "The answer prints chunk by chunk while the model writes it.");
    if (turn(&dm, &chat, say(&dm, "stream Agents are loops of a model, tools and memory.",
                             "In two short sentences: what is an AI agent?"), &r, &err) != AK_OK) return 1;
    ak_response_free(&r);

    narrate("2. A tool", "The model asks for getWeather; a C function answers; the model uses the answer.");
    if (turn(&dm, &chat, say(&dm, "weather Oslo", "What's the weather in Oslo right now?"), &r, &err) != AK_OK) return 1;
    ak_response_free(&r);

    narrate("3. Human approval", "approveTransfer is an interrupt: the turn pauses until a person answers.");
    if (turn(&dm, &chat, say(&dm, "transfer 250", "Please transfer 250 euros to Alice."), &r, &err) != AK_OK ||
        approve_all(&chat, &r, &err) != AK_OK) return 1;
    ak_response_free(&r);

    narrate("4. Saved to disk", "Every turn was written to the file store as a snapshot; the process could stop here.");
    snprintf(snapshot, sizeof snapshot, "%s", ak_chat_snapshot_id(&chat));
    snprintf(path, sizeof path, "%s/global/%s.json", dm.dir, snapshot); /* the store's layout */
    printf("   latest snapshot %s\n   file %s (%ld bytes)\n", snapshot, path, file_size(path));
    ak_chat_free(&chat);
    ak_agent_free(&agent);
    ak_filestore_free(&store);

    narrate("5. Resumed", "A fresh store and agent load that snapshot from the file and carry on.");
    if (open_agent(&dm, model, &store, &agent, &err) != AK_OK) return fail(dm.dir, &err);
    if (ak_chat_load(&chat, &agent, snapshot, NULL, &err) != AK_OK) return fail("load", &err);
    printf("   loaded %zu messages\n", ak_json_len(ak_chat_messages(&chat)));
    if (turn(&dm, &chat, say(&dm, "count", "How many messages have we exchanged so far, and what did I ask first?"), &r,
             &err) != AK_OK) return 1;
    if (dm.offline) printf("   (the scripted model counts what it was sent: the history from the file, and \"count\")\n");
    ak_response_free(&r);
    ak_chat_free(&chat);
    ak_agent_free(&agent);
    ak_filestore_free(&store);
    ak_posix_transport_free(&net);

    printf("\nThat was %s. The model comes from the first of these that is set:\n"
           "   OPENAI_API_KEY=sk-... make demo                        (OPENAI_MODEL, default gpt-4o-mini)\n"
           "   OPENAI_BASE_URL=http://localhost:8080/v1 make demo     any OpenAI-compatible server: llama.cpp,\n"
           "                                                          Ollama (http://localhost:11434/v1), vLLM\n"
           "   ANTHROPIC_API_KEY=... make demo   GEMINI_API_KEY=... make demo   OLLAMA_HOST=http://localhost:11434 make demo\n"
           "Next: examples/ (chat, tools, approval, custom agents, persistence, background turns, HTTP\n"
           "serving, remote agents, your own transport), each one file and one cc command.\n",
           dm.offline ? "the offline scripted model" : model->name);
    return 0;
}
