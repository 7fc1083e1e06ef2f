/* agent_bench: agentkit's side of bench/agent. In process, on the deterministic scripted
   model (the same decisions as genkit_bench.cjs's model): median microseconds per
   single-text turn (client-managed, state in and out), per tool turn (2 model calls + 1
   tool), per turn at turns 1/10/25/50 of a server-managed conversation resumed by snapshot
   id, and bytes per live session (1,000 sessions x 10 turns in an in-memory store, counted
   by the context's allocator). Prints one JSON object. */
#define AGENTKIT_IMPLEMENTATION
#include "../../agentkit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static ak_result get_weather(ak_tool_call *c) {
    ak_json *o = ak_json_new_object(c->doc);
    ak_json_set_str(c->doc, o, "city", ak_json_get_str(c->input, "city"));
    ak_json_set_int(c->doc, o, "tempC", 21);
    ak_json_set_str(c->doc, o, "sky", "clear");
    return ak_tool_return(c, o);
}

static const ak_tool tools[] = {{"getWeather", "Weather for a city",
                                 "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}",
                                 NULL, get_weather, NULL, 0}};

static ak_json *input(ak_json_doc *d, const char *text) {
    ak_json *arr = ak_json_new_array(d), *in = ak_json_new_object(d), *msg = ak_msg_new(d, "user");
    ak_msg_add(msg, ak_part_text(d, text));
    ak_json_set(d, in, "message", msg);
    ak_json_push(arr, in);
    return arr;
}

/* One client-managed turn: the state goes in and comes back out. */
static double client_turn(ak_agent *a, const char *text, int reps) {
    double *t = (double *)malloc(sizeof(double) * (size_t)reps), med;
    ak_json_doc d;
    ak_json *init, *out, *in;
    ak_error e;
    int i;
    ak_json_doc_init(&d, NULL);
    in = input(&d, text);
    init = ak_json_new_object(&d);
    for (i = 0; i < reps; i++) {
        ak_json_doc turn;
        double t0;
        ak_json_doc_init(&turn, NULL);
        t0 = now_us();
        if (ak_agent_run(a, init, in, NULL, &turn, &out, &e) != AK_OK) {
            fprintf(stderr, "turn failed: %s\n", e.message);
            exit(1);
        }
        t[i] = now_us() - t0;
        ak_json_doc_free(&turn);
    }
    med = median(t, reps);
    free(t);
    ak_json_doc_free(&d);
    return med;
}

/* A server-managed conversation: turn k resumes from turn k-1's snapshot. Returns the
   median time of turn `at` over `convs` conversations. */
static void server_turns(ak_agent *a, int convs, const int *at, int nat, double *out) {
    double *t = (double *)malloc(sizeof(double) * (size_t)convs * (size_t)nat);
    ak_json_doc d;
    ak_json *in;
    ak_error e;
    int c, k, j, last = at[nat - 1];
    ak_json_doc_init(&d, NULL);
    in = input(&d, "hello there");
    for (c = 0; c < convs; c++) {
        char snap[AK_ID_MAX + 1] = "";
        for (k = 1; k <= last; k++) {
            ak_json_doc turn;
            ak_json *init, *o;
            double t0, dt;
            ak_json_doc_init(&turn, NULL);
            init = ak_json_new_object(&turn);
            if (snap[0]) ak_json_set_str(&turn, init, "snapshotId", snap);
            t0 = now_us();
            if (ak_agent_run(a, init, in, NULL, &turn, &o, &e) != AK_OK) {
                fprintf(stderr, "turn failed: %s\n", e.message);
                exit(1);
            }
            dt = now_us() - t0;
            snprintf(snap, sizeof snap, "%s", ak_json_get_str(o, "snapshotId"));
            for (j = 0; j < nat; j++)
                if (at[j] == k) t[j * convs + c] = dt;
            ak_json_doc_free(&turn);
        }
    }
    for (j = 0; j < nat; j++) out[j] = median(t + j * convs, convs);
    free(t);
    ak_json_doc_free(&d);
}

static void setup(ak_agent *a, ak_context *ctx, ak_model *m, ak_store *store, int with_tools) {
    ak_agent_desc desc;
    ak_error e;
    memset(&desc, 0, sizeof desc);
    desc.name = "benchAgent";
    desc.model = m;
    desc.system = "You are a deterministic test agent.";
    desc.store = store;
    if (with_tools) desc.tools = tools, desc.tool_count = 1;
    if (ak_agent_init(a, ctx, &desc, &e) != AK_OK) {
        fprintf(stderr, "agent: %s\n", e.message);
        exit(1);
    }
}

int main(int argc, char **argv) {
    ak_context ctx;
    ak_model model;
    ak_memstore store;
    ak_agent plain, tooled, stored;
    int at[4] = {1, 10, 25, 50}, sessions = argc > 1 ? atoi(argv[1]) : 1000, s, k;
    double single, tool, turns[4];
    size_t before, per_session;
    ak_context_init(&ctx, NULL);
    ak_scripted_model_init(&model);
    ak_memstore_init(&store, &ctx);
    setup(&plain, &ctx, &model, NULL, 0);
    setup(&tooled, &ctx, &model, NULL, 1);
    setup(&stored, &ctx, &model, &store.store, 0);

    client_turn(&plain, "hello there", 2000); /* warm up */
    single = client_turn(&plain, "hello there", 20000);
    tool = client_turn(&tooled, "weather Oslo", 20000);
    server_turns(&stored, 400, at, 4, turns);

    /* memory per live session: a fresh store holding 1,000 sessions of 10 turns each */
    ak_agent_free(&stored);
    ak_memstore_free(&store);
    ak_memstore_init(&store, &ctx);
    setup(&stored, &ctx, &model, &store.store, 0);
    before = ctx.mem_in_use;
    {
        ak_json_doc d;
        ak_json *in;
        ak_error e;
        ak_json_doc_init(&d, NULL);
        in = input(&d, "hello there");
        for (s = 0; s < sessions; s++) {
            char snap[AK_ID_MAX + 1] = "";
            for (k = 0; k < 10; k++) {
                ak_json_doc turn;
                ak_json *init, *o;
                ak_json_doc_init(&turn, NULL);
                init = ak_json_new_object(&turn);
                if (snap[0]) ak_json_set_str(&turn, init, "snapshotId", snap);
                if (ak_agent_run(&stored, init, in, NULL, &turn, &o, &e) != AK_OK) return 1;
                snprintf(snap, sizeof snap, "%s", ak_json_get_str(o, "snapshotId"));
                ak_json_doc_free(&turn);
            }
        }
        ak_json_doc_free(&d);
    }
    per_session = (ctx.mem_in_use - before) / (size_t)sessions;
    printf("{\"singleTurnUs\":%.2f,\"toolTurnUs\":%.2f,\"serverTurnUs\":{\"1\":%.2f,\"10\":%.2f,\"25\":%.2f,\"50\":%.2f},"
           "\"bytesPerSession\":%zu,\"sessions\":%d,\"turnsPerSession\":10}\n",
           single, tool, turns[0], turns[1], turns[2], turns[3], per_session, sessions);
    ak_agent_free(&plain);
    ak_agent_free(&tooled);
    ak_agent_free(&stored);
    ak_memstore_free(&store);
    return 0;
}
