/* bench_store: what a conversation costs the file store, with message deltas (agentkit.h's
   format) and with the full state written on every turn (what Genkit's FileSessionStore
   does; here the same store with checkpoint_every = 1, so only the format differs).
   Each turn appends a user message (~200 bytes) and a model message (~800 bytes) to the
   previous snapshot's list and saves a new snapshot whose parentId is the previous one.

   usage: bench_store [TURNS]   (default 50; run from the repository root)
   The stores live in $BENCH_DIR (default build/); a tmpfs there shows the CPU cost alone. */
#define AGENTKIT_IMPLEMENTATION
#include "../../agentkit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TURNS 1000

typedef struct run {
    const char *name;
    int checkpoint_every;
    char dir[256];
    uint64_t bytes[MAX_TURNS + 1];   /* bytes written by turn i's save */
    double save_us[MAX_TURNS], save_nosync_us[MAX_TURNS], warm_us[MAX_TURNS], cold_us[MAX_TURNS];
} run;

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n ? v[n / 2] : 0;
}

static void die(const char *what, ak_result rc) {
    fprintf(stderr, "bench_store: %s: %s\n", what, ak_result_str(rc));
    exit(1);
}

static void add_msg(ak_msgs **m, const char *role, int turn, size_t size) {
    char text[1024];
    ak_json_doc d;
    ak_json *o, *c, *p;
    size_t i;
    snprintf(text, sizeof text, "turn %d (%s): ", turn, role);
    for (i = strlen(text); i < size && i < sizeof text - 1; i++) text[i] = (char)('a' + (i * 7 + (size_t)turn) % 26);
    text[i] = 0;
    ak_json_doc_init(&d, NULL);
    o = ak_json_new_object(&d), c = ak_json_new_array(&d), p = ak_json_new_object(&d);
    ak_json_set_str(&d, p, "text", text);
    ak_json_push(c, p);
    ak_json_set_str(&d, o, "role", role);
    ak_json_set(&d, o, "content", c);
    if (ak_msgs_append(NULL, m, o) != AK_OK) die("append", AK_ERR_OUT_OF_MEMORY);
    ak_json_doc_free(&d);
}

static ak_result put(void *ud, const ak_snapshot *cur, ak_snapshot **next) {
    (void)cur;
    *next = ak_snapshot_retain((ak_snapshot *)ud);
    return AK_OK;
}

static int skip_sync(void *ud, void *file) { (void)ud, (void)file; return 0; }
static int skip_sync_dir(void *ud, const char *dir) { (void)ud, (void)dir; return 0; }

static void open_store(ak_filestore *f, ak_context *ctx, const run *r, int durable) {
    ak_filestore_desc d;
    ak_result rc;
    memset(&d, 0, sizeof d);
    d.dir = r->dir;
    d.checkpoint_every = r->checkpoint_every;
    if (!durable) d.ops.sync = skip_sync, d.ops.sync_dir = skip_sync_dir;
    if ((rc = ak_filestore_init(f, ctx, &d, NULL)) != AK_OK) die("init", rc);
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_store: could not remove %s\n", dir);
}

/* One conversation of `turns` turns, with real fsyncs (bytes, save and load times) or
   without (the save time without waiting for the disk). */
static void conversation(run *r, int turns, int durable) {
    const char *base = getenv("BENCH_DIR");
    ak_context ctx;
    ak_filestore f;
    ak_snapshot *prev = NULL;
    char written[AK_ID_MAX + 1];
    int t;
    snprintf(r->dir, sizeof r->dir, "%s/bench-store-XXXXXX", base && *base ? base : "build");
    if (!mkdtemp(r->dir)) die("mkdtemp", AK_ERR_IO);
    ak_context_init(&ctx, NULL);
    open_store(&f, &ctx, r, durable);
    for (t = 1; t <= turns; t++) {
        char id[32];
        ak_snapshot *s;
        uint64_t before = f.bytes_written;
        double t0;
        ak_result rc;
        snprintf(id, sizeof id, "turn-%d", t);
        s = ak_snapshot_new(NULL, id, "bench-session", prev ? prev->id : NULL, prev ? &prev->state : NULL);
        if (!s) die("snapshot", AK_ERR_OUT_OF_MEMORY);
        if (!prev) ak_session_state_set_id(NULL, &s->state, "bench-session");
        add_msg(&s->state.messages, "user", t, 200);
        add_msg(&s->state.messages, "model", t, 800);
        s->created_at = s->updated_at = ak_now_ms(&ctx);
        s->status = AK_SNAPSHOT_COMPLETED;
        t0 = now_us();
        if ((rc = f.store.save(&f.store, id, put, s, NULL, written, NULL)) != AK_OK) die("save", rc);
        if (durable) r->save_us[t - 1] = now_us() - t0, r->bytes[t] = f.bytes_written - before;
        else r->save_nosync_us[t - 1] = now_us() - t0;
        ak_snapshot_release(prev);
        prev = s;
        if (durable) { /* resuming the session in the process that wrote it */
            ak_snapshot *got = NULL;
            t0 = now_us();
            if ((rc = f.store.get(&f.store, NULL, "bench-session", NULL, &got, NULL)) != AK_OK || !got) die("get", rc);
            r->warm_us[t - 1] = now_us() - t0;
            ak_snapshot_release(got);
        }
    }
    ak_snapshot_release(prev);
    ak_filestore_free(&f);
    if (durable) { /* resuming in a fresh process: a new store, nothing cached */
        for (t = 0; t < turns; t++) {
            ak_snapshot *got = NULL;
            double t0 = now_us();
            ak_result rc;
            open_store(&f, &ctx, r, 1);
            if ((rc = f.store.get(&f.store, NULL, "bench-session", NULL, &got, NULL)) != AK_OK || !got) die("cold get", rc);
            r->cold_us[t] = now_us() - t0;
            ak_snapshot_release(got);
            ak_filestore_free(&f);
        }
    }
    rm_rf(r->dir);
}

static void row(const char *what, double delta, double full, const char *unit) {
    printf("%-34s %14.0f %14.0f %8.1fx  %s\n", what, delta, full, delta > 0 ? full / delta : 0.0, unit);
}

int main(int argc, char **argv) {
    static run runs[2];
    int turns = argc > 1 ? atoi(argv[1]) : 50, i;
    uint64_t total[2] = {0, 0};
    char label[64];
    if (turns < 10 || turns > MAX_TURNS) {
        fprintf(stderr, "usage: bench_store [TURNS 10..%d]\n", MAX_TURNS);
        return 2;
    }
    runs[0].name = "delta (agentkit.h)", runs[0].checkpoint_every = 16;
    runs[1].name = "full state (Genkit)", runs[1].checkpoint_every = 1;
    for (i = 0; i < 2; i++) {
        int t;
        conversation(&runs[i], turns, 1);
        conversation(&runs[i], turns, 0);
        for (t = 1; t <= turns; t++) total[i] += runs[i].bytes[t];
    }
    printf("file store: %d-turn conversation, user ~200 B + model ~800 B per turn\n", turns);
    printf("%-34s %14s %14s %9s\n", "", "delta", "full state", "full/delta");
    row("bytes written by the turn-1 save", (double)runs[0].bytes[1], (double)runs[1].bytes[1], "bytes");
    row("bytes written by the turn-10 save", (double)runs[0].bytes[10], (double)runs[1].bytes[10], "bytes");
    snprintf(label, sizeof label, "bytes written by the turn-%d save", turns);
    row(label, (double)runs[0].bytes[turns], (double)runs[1].bytes[turns], "bytes");
    snprintf(label, sizeof label, "bytes written, all %d turns", turns);
    row(label, (double)total[0], (double)total[1], "bytes");
    row("median save (fsync)", median(runs[0].save_us, turns), median(runs[1].save_us, turns), "us");
    row("median save (no fsync)", median(runs[0].save_nosync_us, turns), median(runs[1].save_nosync_us, turns), "us");
    row("median load-latest, same store", median(runs[0].warm_us, turns), median(runs[1].warm_us, turns), "us");
    row("median load-latest, fresh store", median(runs[0].cold_us, turns), median(runs[1].cold_us, turns), "us");
    printf("(bytes include the session pointer file each save rewrites; a checkpoint every 16 turns)\n");
    return 0;
}
