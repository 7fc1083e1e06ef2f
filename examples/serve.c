/* serve.c - an agent served over HTTP with Genkit's protocol, on the built-in POSIX server.
   Genkit clients (remoteAgent() in JS, remote.c here, the Dev UI) and curl can use it.

   cc -std=c99 -O2 -I.. -DAK_ENABLE_POSIX -DAK_ENABLE_MBEDTLS serve.c -o serve -lmbedtls -lmbedx509 -lmbedcrypto -lm

   ./serve [PORT]   (default 3400; 0 picks a free one) serves "assistant" on 127.0.0.1 until
   Ctrl-C, with a provider from the environment as in chat.c, else offline on the scripted
   model. The routes, as a shell session (replies shown are the offline ones):

     A=http://127.0.0.1:3400/api/assistant; J='Content-Type: application/json'
     sid() { grep -o '"snapshotId":"[^"]*"' | cut -d'"' -f4; }
     curl -s http://127.0.0.1:3400/healthz
     curl -s $A -H "$J" -d '{"init":{},"data":{"message":{"role":"user","content":[{"text":"weather Oslo"}]}}}'
     curl -sN $A -H "$J" -H 'Accept: text/event-stream' -d '{"init":{},"data":{"message":{"role":"user","content":[{"text":"stream one two three"}]}}}'
     ID=$(curl -s $A -H "$J" -d '{"init":{},"data":{"message":{"role":"user","content":[{"text":"transfer 250"}]}}}' | sid)
     curl -s $A -H "$J" -d '{"init":{"snapshotId":"'$ID'"},"data":{"resume":{"respond":[{"toolResponse":{"name":"approveTransfer","ref":"t1","output":{"approved":true}}}]}}}'
     curl -s $A/getSnapshot -H "$J" -d '{"data":{"snapshotId":"'$ID'"}}'
     ID=$(curl -s $A -H "$J" -d '{"init":{},"data":{"message":{"role":"user","content":[{"text":"slowstream"}]},"detach":true}}' | sid)
     curl -s $A/abort -H "$J" -d '{"data":{"snapshotId":"'$ID'"}}'

   In order: the health check {"ok":true,"agents":["assistant"]}; a turn with a tool call
   (the reply is {"result": AgentOutput}); the same streamed as server-sent events
   (data: {"message": chunk} ... data: {"result": ...}); a turn that stops for approval
   (finishReason "interrupted", a snapshotId to continue from); its resumption, approved;
   that snapshot read back; a detached turn (finishReason "detached"); its abort
   ({"result":{"status":"pending"}}: the status it had). Routes are also served under
   /agents/assistant. The state is server-managed (a store): clients send a snapshotId in
   "init" to continue a conversation. */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static ak_result get_weather(ak_tool_call *call) {
    ak_json *out = ak_json_new_object(call->doc);
    ak_json_set_str(call->doc, out, "city", ak_json_get_str(call->input, "city"));
    ak_json_set_int(call->doc, out, "tempC", 21);
    ak_json_set_str(call->doc, out, "sky", "clear");
    return ak_tool_return(call, out);
}

static const ak_tool tools[] = {
    {"getWeather", "Current weather for a city.",
     "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}", NULL, get_weather,
     NULL, 0},
    {"approveTransfer", "Ask the user to approve a money transfer.",
     "{\"type\":\"object\",\"properties\":{\"amount\":{\"type\":\"number\"}},\"required\":[\"amount\"]}",
     "{\"type\":\"object\",\"properties\":{\"approved\":{\"type\":\"boolean\"}}}", NULL, NULL, 1},
};

/* The glue between the HTTP server and the agent protocol: hand every complete request to
   ak_serve; it answers at once or keeps the writer and streams into it while we pump. */
static void handle(void *ud, const ak_http_server_request *req, ak_http_writer *w) {
    ak_serve *serve = (ak_serve *)ud;
    ak_serve_request sr;
    sr.method = req->method;
    sr.path = req->path;
    sr.query = req->query[0] ? req->query : NULL;
    sr.headers = req->headers;
    sr.header_count = req->header_count;
    sr.body = req->body;
    sr.body_len = req->body_len;
    if (ak_serve_handle(serve, &sr, w) == AK_ERR_NOT_FOUND) /* not an agent route */
        ak_http_respond(w, 404, "application/json", "{\"status\":\"NOT_FOUND\",\"message\":\"no such route\"}", 48);
}

/* A client hung up while its turn streams: the turn goes on, its output goes nowhere. */
static void on_close(void *ud, ak_http_writer *w) { ak_serve_abandon((ak_serve *)ud, w); }

static int fail(const char *what, const ak_error *err) {
    fprintf(stderr, "serve: %s: %s\n", what, err->message);
    return 1;
}

int main(int argc, char **argv) {
    ak_context ctx;
    ak_posix_transport net;
    ak_posix_transport_desc net_desc;
    ak_http_model provider;
    ak_model scripted;
    ak_memstore store;
    ak_agent agent;
    ak_agent *agents[1];
    ak_agent_desc desc;
    ak_serve serve;
    ak_serve_desc serve_desc;
    ak_http_server http;
    ak_http_server_desc http_desc;
    ak_error err;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    ak_context_init(&ctx, NULL);
    memset(&net_desc, 0, sizeof net_desc);
    net_desc.ctx = &ctx;
    net_desc.nonblocking = 1; /* a model call must not stall the other clients */
    if (ak_posix_transport_init(&net, &net_desc, &err) != AK_OK) return fail("transport", &err);
    ak_memstore_init(&store, &ctx); /* in memory; see persistence.c for files */
    memset(&desc, 0, sizeof desc);
    desc.name = "assistant"; /* served at /api/assistant and /agents/assistant */
    desc.system = "You are a helpful assistant. Use getWeather for weather; call approveTransfer before any transfer.";
    desc.tools = tools;
    desc.tool_count = 2;
    desc.store = &store.store;
    if (ak_http_model_from_env(&provider, &ctx, &net.transport, NULL) == AK_OK) {
        desc.model = &provider.model;
    } else {
        ak_scripted_model_init(&scripted);
        desc.model = &scripted;
    }
    if (ak_agent_init(&agent, &ctx, &desc, &err) != AK_OK) return fail("agent", &err);

    agents[0] = &agent;
    memset(&serve_desc, 0, sizeof serve_desc);
    serve_desc.agents = agents;
    serve_desc.agent_count = 1;
    ak_serve_init(&serve, &ctx, &serve_desc);
    memset(&http_desc, 0, sizeof http_desc);
    http_desc.ctx = &ctx;
    http_desc.port = argc > 1 ? atoi(argv[1]) : 3400; /* host NULL: 127.0.0.1 only */
    http_desc.handler = handle;
    http_desc.on_close = on_close;
    http_desc.ud = &serve;
    if (ak_http_server_init(&http, &http_desc, &err) != AK_OK) return fail("listen", &err);
    printf("serving http://127.0.0.1:%d/api/%s on model %s\n", ak_http_server_port(&http), desc.name,
           desc.model->name);
    fflush(stdout);

    /* The whole server is this loop: the network, then the agents (answers being streamed
       and background turns). Waits stay short so that turns keep moving. */
    while (!stop) {
        int streaming = ak_serve_pump(&serve, 0) == AK_PENDING;
        ak_http_server_poll(&http, streaming ? 1 : 10);
    }
    ak_http_server_shutdown(&http, 2000); /* finish what is in flight, for up to 2 s */
    while (ak_http_server_poll(&http, 10) == AK_PENDING) ak_serve_pump(&serve, 0);
    ak_serve_free(&serve);
    ak_http_server_free(&http);
    ak_agent_free(&agent);
    ak_memstore_free(&store);
    ak_posix_transport_free(&net);
    return 0;
}
