/* tools.c - an agent with a tool: the model asks for the weather, your C function answers,
   the model uses the answer.

   cc -std=c99 -O2 -I.. -DAK_ENABLE_POSIX -DAK_ENABLE_MBEDTLS tools.c -o tools -lmbedtls -lmbedx509 -lmbedcrypto -lm

   ./tools ["question"]   (provider from the environment as in chat.c; offline otherwise,
                          where the scripted model calls the tool for "weather <city>") */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdio.h>
#include <string.h>

/* The tool. The library calls it inside the turn, on your thread, with the input the model
   sent, already checked against the input schema below. Build the output in call->doc. */
static ak_result get_weather(ak_tool_call *call) {
    const char *city = ak_json_get_str(call->input, "city");
    ak_json *out = ak_json_new_object(call->doc);
    printf("  [tool] getWeather(%s)\n", city);
    ak_json_set_str(call->doc, out, "city", city);
    ak_json_set_int(call->doc, out, "tempC", strcmp(city, "Oslo") == 0 ? 4 : 21); /* ask a real service here */
    ak_json_set_str(call->doc, out, "sky", "clear");
    if (call->doc->err) return ak_tool_fail(call, AK_STATUS_INTERNAL, "out of memory"); /* fails the turn */
    return ak_tool_return(call, out);
}

static const ak_tool tools[] = {{
    "getWeather",                                       /* name the model sees */
    "Current weather for a city.",                      /* tells the model when to use it */
    "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}",
    NULL,                                               /* output schema (informational) */
    get_weather, NULL, 0                                /* function, its ud, not an interrupt */
}};

static int fail(const char *what, const ak_error *err) {
    fprintf(stderr, "tools: %s: %s\n", what, err->message);
    return 1;
}

/* Prints each message of the conversation as JSON: what the model and the tool exchanged. */
static void print_history(const ak_json *messages) {
    const ak_json *m;
    ak_buf line;
    ak_buf_init(&line, NULL);
    for (m = ak_json_first(messages); m; m = m->next) {
        ak_buf_clear(&line);
        ak_json_write(m, &line);
        printf("  %s\n", line.ptr);
    }
    ak_buf_free(&line);
}

int main(int argc, char **argv) {
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
    const char *question;

    ak_context_init(&ctx, NULL);
    memset(&net_desc, 0, sizeof net_desc);
    net_desc.ctx = &ctx;
    if (ak_posix_transport_init(&net, &net_desc, &err) != AK_OK) return fail("transport", &err);
    memset(&desc, 0, sizeof desc);
    desc.name = "weatherAgent";
    desc.system = "Answer weather questions with the getWeather tool.";
    desc.tools = tools;
    desc.tool_count = sizeof tools / sizeof tools[0];
    if (ak_http_model_from_env(&provider, &ctx, &net.transport, NULL) == AK_OK) {
        desc.model = &provider.model;
        question = argc > 1 ? argv[1] : "What is the weather like in Oslo right now?";
    } else {
        ak_scripted_model_init(&scripted); /* offline: "weather <city>" calls the tool */
        desc.model = &scripted;
        question = argc > 1 ? argv[1] : "weather Oslo";
    }
    if (ak_agent_init(&agent, &ctx, &desc, &err) != AK_OK || ak_chat_init(&chat, &agent, NULL, &err) != AK_OK)
        return fail("agent", &err);

    printf("you> %s\n", question);
    /* One turn runs the whole tool loop: model -> tool -> model, up to desc.max_turns rounds. */
    if (ak_chat_send(&chat, question, &r, &err) == AK_OK) printf("agent> %s\n", r.text);
    else printf("error: %s\n", err.message);
    ak_response_free(&r);
    printf("the conversation:\n");
    print_history(ak_chat_messages(&chat));

    ak_chat_free(&chat);
    ak_agent_free(&agent);
    ak_posix_transport_free(&net);
    return 0;
}
