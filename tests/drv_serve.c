/* akdriver serve --port N [--host H]
   Serves the interop agents (../shared/interop-agents.md) at /agents/<name> and
   /api/<name> (+ /getSnapshot, /abort) and GET /healthz on the built-in POSIX server,
   until SIGINT or SIGTERM. Prints "listening <port>" once ready (port 0 = any free one). */
#include "akdriver.h"
#include "interop_agents.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig, stop = 1; }

typedef struct server {
    ak_serve serve;
    ak_http_server http;
} server;

static void handle(void *ud, const ak_http_server_request *req, ak_http_writer *w) {
    server *s = (server *)ud;
    ak_serve_request sr;
    sr.method = req->method;
    sr.path = req->path;
    sr.query = req->query && *req->query ? req->query : NULL;
    sr.headers = req->headers;
    sr.header_count = req->header_count;
    sr.body = req->body;
    sr.body_len = req->body_len;
    if (ak_serve_handle(&s->serve, &sr, w) == AK_ERR_NOT_FOUND) {
        char body[512];
        int n = snprintf(body, sizeof body, "{\"status\":\"NOT_FOUND\",\"message\":\"Cannot %.16s %.200s\"}", req->method,
                         req->path);
        ak_http_respond(w, 404, "application/json; charset=utf-8", body, (size_t)n);
    }
}

static void on_close(void *ud, ak_http_writer *w) { ak_serve_abandon(&((server *)ud)->serve, w); }

int drv_serve(int argc, char **argv) {
    ak_context ctx;
    interop_agents ia;
    server s;
    ak_serve_desc sd;
    ak_http_server_desc hd;
    ak_error e;
    const char *host = NULL;
    int i, port = -1;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
        else port = -2;
    }
    if (port < 0) {
        fprintf(stderr, "usage: akdriver serve --port N [--host H]\n");
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    ak_context_init(&ctx, NULL);
    if (interop_agents_init(&ia, &ctx) != AK_OK) {
        fprintf(stderr, "cannot set up the interop agents\n");
        return 1;
    }
    memset(&sd, 0, sizeof sd);
    sd.agents = ia.list;
    sd.agent_count = INTEROP_AGENT_COUNT;
    ak_serve_init(&s.serve, &ctx, &sd);
    memset(&hd, 0, sizeof hd);
    hd.ctx = &ctx;
    hd.host = host;
    hd.port = port;
    hd.handler = handle;
    hd.on_close = on_close;
    hd.ud = &s;
    if (ak_http_server_init(&s.http, &hd, &e) != AK_OK) {
        fprintf(stderr, "cannot listen: %s\n", e.message);
        return 1;
    }
    printf("listening %d\n", ak_http_server_port(&s.http));
    fflush(stdout);
    while (!stop) {
        /* short waits keep streaming and background turns moving between requests */
        ak_http_server_poll(&s.http, s.serve.live ? 1 : 10);
        ak_serve_pump(&s.serve, 0);
    }
    ak_http_server_shutdown(&s.http, 2000);
    while (ak_http_server_poll(&s.http, 10) == AK_PENDING) ak_serve_pump(&s.serve, 0);
    ak_serve_free(&s.serve);
    ak_http_server_free(&s.http);
    interop_agents_free(&ia);
    return 0;
}
