/* quickstart.c - the README's 30-line agent: a system prompt, one tool, one question.
   cc -std=c99 -I.. -DAK_ENABLE_POSIX quickstart.c -o quickstart -lm
   OPENAI_BASE_URL=http://localhost:11434/v1 OPENAI_MODEL=llama3.2 ./quickstart   (offline without) */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdio.h>
#include <string.h>

static ak_result get_weather(ak_tool_call *call) { /* runs on your thread, input checked */
    ak_json *out = ak_json_new_object(call->doc);
    ak_json_set_str(call->doc, out, "city", ak_json_get_str(call->input, "city"));
    ak_json_set_int(call->doc, out, "tempC", 21);
    return ak_tool_return(call, out);
}

int main(void) {
    static const ak_tool tools[] = {{"getWeather", "Current weather for a city.",
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}",
        NULL, get_weather, NULL, 0}};
    ak_context ctx; ak_posix_transport net; ak_posix_transport_desc nd;
    ak_http_model provider; ak_model offline; ak_agent agent; ak_agent_desc desc;
    ak_chat chat; ak_response r; ak_error err;
    ak_context_init(&ctx, NULL);
    memset(&nd, 0, sizeof nd), memset(&desc, 0, sizeof desc);
    nd.ctx = &ctx;
    ak_posix_transport_init(&net, &nd, NULL);
    desc.name = "weatherAgent";
    desc.system = "Answer weather questions with the getWeather tool.";
    desc.tools = tools, desc.tool_count = 1;
    if (ak_http_model_from_env(&provider, &ctx, &net.transport, NULL) == AK_OK) desc.model = &provider.model;
    else ak_scripted_model_init(&offline), desc.model = &offline; /* says "weather <city>" */
    if (ak_agent_init(&agent, &ctx, &desc, &err) != AK_OK || ak_chat_init(&chat, &agent, NULL, &err) != AK_OK ||
        ak_chat_send(&chat, desc.model == &offline ? "weather Oslo" : "Weather in Oslo?", &r, &err) != AK_OK)
        return fprintf(stderr, "error: %s\n", err.message), 1;
    printf("%s\n", r.text);
    ak_response_free(&r), ak_chat_free(&chat), ak_agent_free(&agent), ak_posix_transport_free(&net);
    return 0;
}
