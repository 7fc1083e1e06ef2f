/* game_loop.c - an agent in a 60 fps game loop. The NPC's turn is pumped once per frame and no
   frame ever waits for the network: the model's answer streams in over HTTP, a little each
   frame, and the tool the model calls runs on the game thread, inside the pump. The program
   times every call into the library and prints the longest one and the median per frame.

   cc -std=c99 -O2 -I.. -DAK_ENABLE_POSIX game_loop.c -o game_loop -lm

   ./game_loop [--frames N] [--max-call-ms MS]
     --frames N        most frames to run (default 600, 10 s); it stops when the NPC is done
     --max-call-ms MS  exit 2 when a library call took longer (default: only report)
   The model: OPENAI_BASE_URL (any OpenAI-compatible server, e.g. http://localhost:8080/v1
   for llama.cpp; OPENAI_API_KEY and OPENAI_MODEL if it needs them; https also needs
   -DAK_ENABLE_MBEDTLS -lmbedtls -lmbedx509 -lmbedcrypto), else a slow OpenAI-compatible
   server this program starts on 127.0.0.1 and serves from the same loop: it sends one
   event of its answer per frame, as a busy provider would. */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FRAME_NS 16666667L /* 60 fps */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ==== the game ========================================================================== */

typedef struct item {
    const char *name;
    int x, y;
} item;

typedef struct world {
    int frame;
    int npc_x, npc_y;
    item items[3];
    int tool_frame;              /* when the tool last ran (-1: never) */
    char tool_input[128];
    ak_buf speech;               /* what the NPC has said so far this turn */
} world;

/* The tool: it reads the game world, so it must run on the game thread, and it does: the
   library calls it from inside ak_chat_poll, which the loop below calls. */
static ak_result look_around(ak_tool_call *call) {
    world *w = (world *)call->ud;
    int64_t radius = ak_json_int_or(ak_json_get(call->input, "radius"), 5);
    ak_json *out = ak_json_new_object(call->doc), *found = ak_json_new_array(call->doc);
    ak_buf in;
    size_t i;
    for (i = 0; i < sizeof w->items / sizeof w->items[0]; i++) {
        int dx = w->items[i].x - w->npc_x, dy = w->items[i].y - w->npc_y;
        if (dx * dx + dy * dy <= radius * radius) {
            ak_json *it = ak_json_new_object(call->doc);
            ak_json_set_str(call->doc, it, "name", w->items[i].name);
            ak_json_set_int(call->doc, it, "x", w->items[i].x);
            ak_json_set_int(call->doc, it, "y", w->items[i].y);
            ak_json_push(found, it);
        }
    }
    ak_json_set(call->doc, out, "items", found);
    if (call->doc->err) return ak_tool_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    w->tool_frame = w->frame; /* printed after the frame: no I/O inside the library's time */
    ak_buf_init_fixed(&in, w->tool_input, sizeof w->tool_input);
    ak_json_write(call->input, &in);
    return ak_tool_return(call, out);
}

static const char look_schema[] =
    "{\"type\":\"object\",\"properties\":{\"radius\":{\"type\":\"integer\",\"minimum\":1}},\"required\":[\"radius\"]}";

/* Streamed chunks go to the speech bubble (drawn by the game, not printed here). */
static void on_chunk(void *ud, const ak_json *chunk) {
    const ak_json *mc = ak_json_get(chunk, "modelChunk");
    if (mc) ak_msg_text(mc, &((world *)ud)->speech);
}

/* ==== the slow OpenAI-compatible server (stands in for a remote provider) ============== */

#define MAX_STREAMS 4

typedef struct stream {
    ak_http_writer *w;
    ak_buf events;               /* the whole answer, events separated by a blank line */
    size_t sent;
} stream;

typedef struct server {
    ak_http_server http;
    stream streams[MAX_STREAMS];
    int requests;
} server;

static void sse(ak_buf *b, const char *delta_json, const char *finish) {
    ak_buf_printf(b, "data: {\"id\":\"chatcmpl-game\",\"object\":\"chat.completion.chunk\",\"model\":\"npc-1\","
                     "\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":%s}]}\n\n",
                  delta_json, finish);
}

/* Text as one event per word. */
static void sse_words(ak_buf *b, const char *text) {
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ' ');
        size_t n = end ? (size_t)(end - p) + 1 : strlen(p);
        ak_buf delta;
        ak_buf_init(&delta, NULL);
        ak_buf_puts(&delta, "{\"content\":");
        ak_json_write_str(&delta, p, n);
        ak_buf_putc(&delta, '}');
        sse(b, delta.ptr, "null");
        ak_buf_free(&delta);
        p += n;
    }
}

/* What the NPC's model says: look around when asked about the key, then describe what the
   tool found, else wish the player luck. */
static void answer(const ak_json *req, ak_buf *b) {
    const ak_json *msgs = ak_json_get(req, "messages"), *last = ak_json_at(msgs, ak_json_len(msgs) - 1);
    const char *role = ak_json_get_str(last, "role"), *text = ak_json_get_str(last, "content");
    sse(b, "{\"role\":\"assistant\",\"content\":\"\"}", "null");
    if (role && strcmp(role, "tool") == 0) {
        ak_json_doc d;
        const ak_json *key;
        char line[160];
        ak_json_doc_init(&d, NULL);
        key = ak_json_parse(&d, text ? text : "", text ? strlen(text) : 0, NULL) == AK_OK
                  ? ak_json_at(ak_json_get(d.root, "items"), 0) : NULL;
        if (key)
            snprintf(line, sizeof line, "I see the %s at %d, %d, just past the old well. Take the east path.",
                     ak_json_get_str(key, "name"), (int)ak_json_int_or(ak_json_get(key, "x"), 0),
                     (int)ak_json_int_or(ak_json_get(key, "y"), 0));
        else
            snprintf(line, sizeof line, "I see nothing around here.");
        sse_words(b, line);
        ak_json_doc_free(&d);
        sse(b, "{}", "\"stop\"");
    } else if (text && strstr(text, "key")) {
        sse(b, "{\"tool_calls\":[{\"index\":0,\"id\":\"call_look\",\"type\":\"function\","
               "\"function\":{\"name\":\"lookAround\",\"arguments\":\"\"}}]}", "null");
        sse(b, "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"radius\\\"\"}}]}", "null");
        sse(b, "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\": 6}\"}}]}", "null");
        sse(b, "{}", "\"tool_calls\"");
    } else {
        sse_words(b, "Good luck, traveller. Mind the wolves after dark.");
        sse(b, "{}", "\"stop\"");
    }
    ak_buf_puts(b, "data: [DONE]\n\n");
}

static void serve_request(void *ud, const ak_http_server_request *req, ak_http_writer *w) {
    server *s = (server *)ud;
    ak_header h[1];
    ak_json_doc d;
    int i;
    for (i = 0; i < MAX_STREAMS && s->streams[i].w; i++) {
    }
    ak_json_doc_init(&d, NULL);
    if (strcmp(req->method, "POST") != 0 || strstr(req->path, "/chat/completions") == NULL || i == MAX_STREAMS ||
        ak_json_parse(&d, req->body, req->body_len, NULL) != AK_OK) {
        ak_http_respond(w, 400, "application/json", "{\"error\":{\"message\":\"bad request\"}}", 36);
        ak_json_doc_free(&d);
        return;
    }
    s->requests++;
    ak_buf_init(&s->streams[i].events, NULL);
    answer(d.root, &s->streams[i].events);
    ak_json_doc_free(&d);
    h[0].name = "Content-Type", h[0].value = "text/event-stream";
    if (w->start(w->ud, 200, h, 1) != AK_OK) {
        w->end(w->ud);
        ak_buf_free(&s->streams[i].events);
        return;
    }
    s->streams[i].w = w; /* kept: one event goes out per frame */
    s->streams[i].sent = 0;
}

static void stream_end(stream *st) {
    st->w->end(st->w->ud);
    st->w = NULL;
    ak_buf_free(&st->events);
}

static void serve_close(void *ud, ak_http_writer *w) {
    server *s = (server *)ud;
    int i;
    for (i = 0; i < MAX_STREAMS; i++)
        if (s->streams[i].w == w) stream_end(&s->streams[i]);
}

/* One frame of the server: accept and read requests, then one more event of each answer. */
static void server_frame(server *s) {
    int i;
    ak_http_server_poll(&s->http, 0);
    for (i = 0; i < MAX_STREAMS; i++) {
        stream *st = &s->streams[i];
        const char *ev, *end;
        if (!st->w) continue;
        ev = st->events.ptr + st->sent;
        end = strstr(ev, "\n\n");
        end = end ? end + 2 : ev + strlen(ev);
        if (st->w->write(st->w->ud, ev, (size_t)(end - ev)) != AK_OK) {
            stream_end(st);
            continue;
        }
        st->sent = (size_t)(end - st->events.ptr);
        if (st->sent == st->events.len) stream_end(st);
    }
}

/* ==== the loop ========================================================================== */

/* Time spent in library calls, per call and per frame. */
typedef struct timing {
    int64_t longest_call, longest_frame, frame_sum;
    const char *longest_what;
    int64_t *frames;
    int frame_count;
} timing;

/* frame_sum is -1 in a frame without library calls */
static void timed(timing *t, const char *what, int64_t started) {
    int64_t d = now_ns() - started;
    t->frame_sum = (t->frame_sum < 0 ? 0 : t->frame_sum) + d;
    if (d > t->longest_call) t->longest_call = d, t->longest_what = what;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static const char *const lines[] = {"Have you seen my key anywhere?", "Thanks, I will go there now."};

int main(int argc, char **argv) {
    ak_context ctx;
    ak_posix_transport net;
    ak_posix_transport_desc nd;
    ak_http_server_desc sd;
    ak_provider_config cfg;
    ak_http_model model;
    ak_agent agent;
    ak_agent_desc ad;
    ak_chat chat;
    ak_error err;
    ak_tool tool;
    static server srv;
    world w;
    timing tm;
    char url[64];
    const char *base = getenv("OPENAI_BASE_URL");
    int frames = 600, line = 0, next_line = 0, running = 0, answered = 0, failed = 0, local = !base, i;
    double max_call_ms = 0;
    int64_t next_frame, server_longest = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc) frames = atoi(argv[++i]);
        else if (strcmp(argv[i], "--max-call-ms") == 0 && i + 1 < argc) max_call_ms = atof(argv[++i]);
        else return fprintf(stderr, "usage: %s [--frames N] [--max-call-ms MS]\n", argv[0]), 1;
    }
    if (frames < 1) frames = 1;
    ak_context_init(&ctx, NULL);
    memset(&w, 0, sizeof w);
    w.npc_x = 1, w.npc_y = 1, w.tool_frame = -1;
    w.items[0].name = "key", w.items[0].x = 4, w.items[0].y = 3;
    w.items[1].name = "lantern", w.items[1].x = 30, w.items[1].y = 2;
    w.items[2].name = "bucket", w.items[2].x = 2, w.items[2].y = 5;
    ak_buf_init(&w.speech, NULL);

    if (local) { /* no provider named: serve the slow one ourselves */
        memset(&sd, 0, sizeof sd);
        sd.ctx = &ctx, sd.port = 0, sd.handler = serve_request, sd.on_close = serve_close, sd.ud = &srv;
        if (ak_http_server_init(&srv.http, &sd, &err) != AK_OK) return fprintf(stderr, "server: %s\n", err.message), 1;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", ak_http_server_port(&srv.http));
        base = url;
    }
    memset(&nd, 0, sizeof nd);
    nd.ctx = &ctx;
    nd.nonblocking = 1; /* start() and poll() return at once */
    if (ak_posix_transport_init(&net, &nd, &err) != AK_OK) return fprintf(stderr, "transport: %s\n", err.message), 1;
    memset(&cfg, 0, sizeof cfg);
    cfg.model = getenv("OPENAI_MODEL") ? getenv("OPENAI_MODEL") : "npc-1";
    cfg.base_url = base;
    cfg.api_key = getenv("OPENAI_API_KEY");
    cfg.transport = &net.transport;
    memset(&tool, 0, sizeof tool);
    tool.name = "lookAround";
    tool.description = "Lists the items the NPC can see within radius steps.";
    tool.input_schema = look_schema;
    tool.fn = look_around;
    tool.ud = &w;
    memset(&ad, 0, sizeof ad);
    ad.name = "guard";
    ad.system = "You are the village guard. Use lookAround to find things for the player. Answer in one sentence.";
    ad.model = &model.model;
    ad.tools = &tool;
    ad.tool_count = 1;
    if (ak_http_model_init(&model, &ctx, ak_adapter_openai(), &cfg) != AK_OK ||
        ak_agent_init(&agent, &ctx, &ad, &err) != AK_OK || ak_chat_init(&chat, &agent, NULL, &err) != AK_OK)
        return fprintf(stderr, "agent: %s\n", err.message), 1;
    printf("guard on %s, %d fps\n", base, (int)((1000000000L + FRAME_NS / 2) / FRAME_NS));

    memset(&tm, 0, sizeof tm);
    tm.longest_what = "nothing";
    tm.frames = (int64_t *)calloc((size_t)frames, sizeof *tm.frames);
    next_frame = now_ns();
    for (w.frame = 0; w.frame < frames && line < 2; w.frame++) {
        ak_response r;
        ak_result rc = AK_PENDING;
        int64_t t0;
        /* the server stands in for another machine: its time is not the game's */
        if (local) {
            t0 = now_ns();
            server_frame(&srv);
            if (now_ns() - t0 > server_longest) server_longest = now_ns() - t0;
        }
        /* the game's frame: start the next line of dialogue, or pump the one running */
        tm.frame_sum = -1;
        if (!running && w.frame >= next_line) {
            ak_json_doc d;
            ak_json *input, *msg;
            ak_json_doc_init(&d, NULL);
            input = ak_json_new_object(&d);
            msg = ak_msg_new(&d, "user");
            ak_msg_add(msg, ak_part_text(&d, lines[line]));
            ak_json_set(&d, input, "message", msg);
            printf("[frame %3d] player> %s\n", w.frame, lines[line]);
            ak_buf_clear(&w.speech);
            t0 = now_ns();
            rc = ak_chat_start(&chat, input, on_chunk, &w, &err);
            timed(&tm, "ak_chat_start", t0);
            ak_json_doc_free(&d);
            if (rc != AK_OK) {
                printf("error: %s\n", err.message);
                failed = 1;
                break;
            }
            running = 1;
        } else if (running) {
            int tool_before = w.tool_frame;
            t0 = now_ns();
            rc = ak_chat_poll(&chat, 0, &r, &err); /* 0: never wait for the network */
            timed(&tm, "ak_chat_poll", t0);
            if (w.tool_frame != tool_before)
                printf("[frame %3d] the guard calls lookAround %s on the game thread\n", w.frame, w.tool_input);
            if (rc != AK_PENDING) {
                running = 0;
                if (rc == AK_OK) {
                    printf("[frame %3d] guard> %s\n", w.frame, r.text);
                    answered++;
                } else {
                    printf("[frame %3d] error: %s\n", w.frame, err.message);
                    failed = 1;
                }
                ak_response_free(&r);
                line++;
                next_line = w.frame + 30; /* the player reads, then answers */
            }
        }
        /* the rest of the game: the guard wanders, the frame is drawn (here: nothing) */
        w.npc_x += w.frame % 120 < 60 ? (w.frame % 20 == 0) : -(w.frame % 20 == 0);
        if (tm.frame_sum >= 0) tm.frames[tm.frame_count++] = tm.frame_sum; /* frames that called it */
        if (tm.frame_sum > tm.longest_frame) tm.longest_frame = tm.frame_sum;
        next_frame += FRAME_NS;
        if (now_ns() < next_frame) {
            struct timespec ts;
            int64_t left = next_frame - now_ns();
            ts.tv_sec = (time_t)(left / 1000000000), ts.tv_nsec = (long)(left % 1000000000);
            nanosleep(&ts, NULL);
        }
    }

    qsort(tm.frames, (size_t)tm.frame_count, sizeof *tm.frames, cmp_i64);
    printf("%d frames, %d of 2 answers, the tool ran on the game thread: %s\n", w.frame, answered,
           w.tool_frame >= 0 ? "yes" : "no");
    printf("library time in the %d frames that called it: median %.3f ms, longest %.3f ms; longest call %.3f ms (%s)\n",
           tm.frame_count, tm.frame_count ? tm.frames[tm.frame_count / 2] / 1e6 : 0.0, tm.longest_frame / 1e6,
           tm.longest_call / 1e6, tm.longest_what);
    if (local) printf("the stand-in server's longest frame: %.3f ms\n", server_longest / 1e6);
    printf("goal, no library call over 1 ms: %s\n", tm.longest_call <= 1000000 ? "met" : "missed");

    free(tm.frames);
    ak_chat_free(&chat);
    ak_agent_free(&agent);
    ak_posix_transport_free(&net);
    ak_buf_free(&w.speech);
    if (local) {
        for (i = 0; i < MAX_STREAMS; i++)
            if (srv.streams[i].w) stream_end(&srv.streams[i]);
        ak_http_server_free(&srv.http);
    }
    if (failed || answered < 2 || w.tool_frame < 0) return 1;
    return max_call_ms > 0 && tm.longest_call > (int64_t)(max_call_ms * 1e6) ? 2 : 0;
}
