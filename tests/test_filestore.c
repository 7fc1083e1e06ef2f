/* file store: persistence across processes, delta chains and checkpoints, branches, session
   pointers and scans, corrupt files, hostile ids, tenants, pruning, watch + poll, allocation
   failures, crash injection at every step of a save, two processes saving at once. */
#include "test_dirs.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- temp directories ------------------------------------------------------------------ */

static char root[512]; /* the current test's store directory */

/* Copies a store directory tree (no fsync: test fixtures only). */
static void copy_tree(const char *from, const char *to) {
    DIR *d = opendir(from);
    struct dirent *e;
    mkdir(to, 0700);
    while (d && (e = readdir(d)) != NULL) {
        char a[1024], b[1024];
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(a, sizeof a, "%s/%s", from, e->d_name);
        snprintf(b, sizeof b, "%s/%s", to, e->d_name);
        if (stat(a, &st) == 0 && S_ISDIR(st.st_mode)) {
            copy_tree(a, b);
        } else {
            size_t n = 0;
            char *text = t_read_file(a, &n);
            FILE *f = fopen(b, "wb");
            if (f && text) fwrite(text, 1, n, f);
            if (f) fclose(f);
            free(text);
        }
    }
    if (d) closedir(d);
}

static void make_dir_under_build(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "build/%s-XXXXXX", name);
    if (!mkdtemp(out)) t_make_dir(out, cap, name);
}

static void fresh_root(void) { make_dir_under_build(root, sizeof root, "akfs"); }

static char *file_at(const char *rel, size_t *len) {
    char path[1024];
    size_t n;
    snprintf(path, sizeof path, "%s/%s", root, rel);
    return t_read_file(path, len ? len : &n);
}

static void write_at(const char *rel, const char *text, size_t len) {
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", root, rel);
    f = fopen(path, "wb");
    if (!f) abort();
    fwrite(text, 1, len, f);
    fclose(f);
}

static int exists_at(const char *rel) {
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", root, rel);
    return stat(path, &st) == 0;
}

/* Number of row files (NAME.json, not dot files) in root/DIR. */
static int count_rows(const char *dir) {
    char path[1024];
    DIR *d;
    struct dirent *e;
    int n = 0;
    snprintf(path, sizeof path, "%s/%s", root, dir);
    if (!(d = opendir(path))) return 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] != '.' && len > 5 && !strcmp(e->d_name + len - 5, ".json")) n++;
    }
    closedir(d);
    return n;
}

/* "delta", "checkpoint" or "missing" for row ID of the global tenant. */
static const char *row_kind(const char *id) {
    static char kind[16];
    char rel[256];
    char *text;
    snprintf(rel, sizeof rel, "global/%s.json", id);
    text = file_at(rel, NULL);
    snprintf(kind, sizeof kind, "%s", !text ? "missing" : strstr(text, "\"base\":") ? "delta" : "checkpoint");
    free(text);
    return kind;
}

/* ---- file operations that count, fail or crash ------------------------------------------ */

typedef struct inj {
    ak_file_ops real;
    int steps;     /* operations so far (unlock is not one) */
    int fail_at;   /* this step fails (0 = none) */
    int crash_at;  /* the process dies at this step (0 = none) */
    int reads, lists, syncs;
    int no_sync;   /* skip fsync (tests that do not test durability run faster) */
} inj;

static int inj_step(inj *x) {
    x->steps++;
    if (x->steps == x->crash_at) kill(getpid(), SIGKILL);
    return x->steps == x->fail_at;
}

static int inj_open_write(void *ud, const char *path, void **file) {
    inj *x = (inj *)ud;
    return inj_step(x) ? -1 : x->real.open_write(x->real.ud, path, file);
}
static int inj_write(void *ud, void *file, const void *data, size_t len) {
    inj *x = (inj *)ud;
    if (x->steps + 1 == x->crash_at) x->real.write(x->real.ud, file, data, len / 2); /* torn temp file */
    return inj_step(x) ? -1 : x->real.write(x->real.ud, file, data, len);
}
static int inj_sync(void *ud, void *file) {
    inj *x = (inj *)ud;
    x->syncs++;
    return inj_step(x) ? -1 : x->no_sync ? 0 : x->real.sync(x->real.ud, file);
}
static int inj_close(void *ud, void *file) {
    inj *x = (inj *)ud;
    int failed = inj_step(x);
    int rc = x->real.close(x->real.ud, file); /* the handle goes either way */
    return failed ? -1 : rc;
}
static int inj_read_file(void *ud, const char *path, ak_buf *out) {
    inj *x = (inj *)ud;
    x->reads++;
    return inj_step(x) ? -1 : x->real.read_file(x->real.ud, path, out);
}
static int inj_rename(void *ud, const char *from, const char *to) {
    inj *x = (inj *)ud;
    return inj_step(x) ? -1 : x->real.rename_file(x->real.ud, from, to);
}
static int inj_remove(void *ud, const char *path) {
    inj *x = (inj *)ud;
    return inj_step(x) ? -1 : x->real.remove_file(x->real.ud, path);
}
static int inj_sync_dir(void *ud, const char *dir) {
    inj *x = (inj *)ud;
    x->syncs++;
    return inj_step(x) ? -1 : x->no_sync ? 0 : x->real.sync_dir(x->real.ud, dir);
}
static int inj_make_dir(void *ud, const char *dir) {
    inj *x = (inj *)ud;
    return inj_step(x) ? -1 : x->real.make_dir(x->real.ud, dir);
}
static int inj_list_dir(void *ud, const char *dir, int (*fn)(void *, const char *), void *fud) {
    inj *x = (inj *)ud;
    x->lists++;
    return inj_step(x) ? -1 : x->real.list_dir(x->real.ud, dir, fn, fud);
}
static int inj_lock(void *ud, const char *path, int exclusive, void **handle) {
    inj *x = (inj *)ud;
    return inj_step(x) ? -1 : x->real.lock(x->real.ud, path, exclusive, handle);
}
static void inj_unlock(void *ud, void *handle) {
    inj *x = (inj *)ud;
    x->real.unlock(x->real.ud, handle);
}

static void inj_ops(inj *x, ak_file_ops *o) {
    memset(o, 0, sizeof *o);
    if (ak_file_ops_default(&x->real) != AK_OK) abort();
    o->open_write = inj_open_write, o->write = inj_write, o->sync = inj_sync, o->close = inj_close;
    o->read_file = inj_read_file, o->rename_file = inj_rename, o->remove_file = inj_remove;
    o->sync_dir = inj_sync_dir, o->make_dir = inj_make_dir, o->list_dir = inj_list_dir;
    o->lock = inj_lock, o->unlock = inj_unlock;
    o->ud = x;
}

/* ---- a store on root with counting allocator and operations ------------------------------ */

static int warnings; /* WARN lines logged (skipped rows) */
static char last_warning[512];
static void on_log(void *ud, ak_log_level level, const char *msg) {
    (void)ud;
    if (level >= AK_LOG_WARN) warnings++, snprintf(last_warning, sizeof last_warning, "%s", msg);
}

static const char *tenant_of(void *ud, const ak_json *context) {
    (void)ud;
    return ak_json_get_str(context, "tenant");
}

typedef struct fx {
    t_alloc ta;
    ak_context ctx;
    inj io;
    ak_filestore fs;
    ak_store *st;
    ak_filestore_desc desc;
} fx;

static int64_t clock_ms = 1795255200000LL; /* createdAt of the next snapshot made here */

#define FX_DURABLE 1 /* real fsyncs (else skipped: tests that do not test durability run faster) */
#define FX_REJECT 2  /* reject_branching */
#define FX_TENANT 4  /* prefix from context.tenant */

/* Opens a store on root with checkpoint_every, max_chain and FX_* flags. */
static ak_result fx_open(fx *x, int checkpoint_every, int max_chain, int flags) {
    ak_context_desc cd;
    ak_error e;
    ak_result rc;
    memset(x, 0, sizeof *x);
    memset(&cd, 0, sizeof cd);
    cd.allocator = *t_alloc_init(&x->ta, 0);
    cd.log = on_log;
    cd.log_level = AK_LOG_WARN;
    ak_context_init(&x->ctx, &cd);
    x->desc.dir = root;
    x->desc.checkpoint_every = checkpoint_every;
    x->desc.max_chain = max_chain;
    x->desc.reject_branching = (flags & FX_REJECT) != 0;
    if (flags & FX_TENANT) x->desc.prefix = tenant_of;
    inj_ops(&x->io, &x->desc.ops);
    x->io.no_sync = !(flags & FX_DURABLE);
    rc = ak_filestore_init(&x->fs, &x->ctx, &x->desc, &e);
    x->st = &x->fs.store;
    return rc;
}

static void fx_close(fx *x) {
    ak_filestore_free(&x->fs);
    CHECK_EQ(x->ta.live, 0);
}

static const ak_allocator *fx_alloc(fx *x) { return ak_context_allocator(&x->ctx); }

static ak_json *parse(ak_json_doc *d, const char *text) {
    ak_json *v = NULL;
    if (ak_json_parse_value(d, text, strlen(text), NULL, &v, NULL) != AK_OK) abort();
    return v;
}

static const char *msg_text(const ak_json *m) { return ak_json_str(ak_json_path(m, "content[0].text")); }

/* Appends {"role":ROLE,"content":[{"text":TEXT}]} to *m. */
static void add_msg(const ak_allocator *a, ak_msgs **m, const char *role, const char *text) {
    ak_json_doc d;
    ak_json *o, *c, *p;
    ak_json_doc_init(&d, NULL);
    o = ak_json_new_object(&d);
    c = ak_json_new_array(&d);
    p = ak_json_new_object(&d);
    ak_json_set_str(&d, p, "text", text);
    ak_json_push(c, p);
    ak_json_set_str(&d, o, "role", role);
    ak_json_set(&d, o, "content", c);
    if (ak_msgs_append(a, m, o) != AK_OK) abort();
    ak_json_doc_free(&d);
}

/* A completed snapshot: the parent's state plus one user and one model message tagged TAG
   (no messages when TAG is NULL). */
static ak_snapshot *turn_of(const ak_allocator *a, const ak_snapshot *parent, const char *id, const char *sid,
                            const char *tag) {
    ak_snapshot *s = ak_snapshot_new(a, id, sid, parent ? parent->id : NULL, parent ? &parent->state : NULL);
    char text[256];
    if (!s) abort();
    if (!s->state.session_id && sid) ak_session_state_set_id(a, &s->state, sid);
    if (tag) {
        snprintf(text, sizeof text, "%s: question", tag);
        add_msg(a, &s->state.messages, "user", text);
        snprintf(text, sizeof text, "%s: answer", tag);
        add_msg(a, &s->state.messages, "model", text);
    }
    s->created_at = s->updated_at = ++clock_ms;
    s->status = AK_SNAPSHOT_COMPLETED;
    return s;
}

static ak_result put(void *ud, const ak_snapshot *cur, ak_snapshot **next) {
    (void)cur;
    *next = ak_snapshot_retain((ak_snapshot *)ud);
    return AK_OK;
}

static ak_result save_ctx(fx *x, ak_snapshot *s, const ak_json *context, ak_error *e) {
    char written[AK_ID_MAX + 1];
    ak_result rc = x->st->save(x->st, s->id, put, s, context, written, e);
    if (rc == AK_OK && strcmp(written, s->id) != 0) return AK_ERR_INTERNAL;
    return rc;
}

static ak_result save(fx *x, ak_snapshot *s) { return save_ctx(x, s, NULL, NULL); }

static ak_snapshot *get_id(fx *x, const char *id, ak_result *rc, ak_error *e) {
    ak_snapshot *s = NULL;
    ak_result r = x->st->get(x->st, id, NULL, NULL, &s, e);
    if (rc) *rc = r;
    return s;
}

static ak_snapshot *get_session(fx *x, const char *sid, ak_result *rc, ak_error *e) {
    ak_snapshot *s = NULL;
    ak_result r = x->st->get(x->st, NULL, sid, NULL, &s, e);
    if (rc) *rc = r;
    return s;
}

/* Saves a linear chain PREFIX0..PREFIX(n-1) in session SID; returns the last (a reference). */
static ak_snapshot *chain(fx *x, const char *prefix, const char *sid, int n, ak_snapshot *from) {
    ak_snapshot *prev = ak_snapshot_retain(from);
    int i;
    for (i = 0; i < n; i++) {
        char id[64];
        ak_snapshot *s;
        snprintf(id, sizeof id, "%s%d", prefix, i);
        s = turn_of(fx_alloc(x), prev, id, sid, id);
        CHECK_OK(save(x, s));
        ak_snapshot_release(prev);
        prev = s;
    }
    return prev;
}

/* The JSON text of a snapshot, for comparing a loaded one with what was saved. */
static char *snap_text(const ak_snapshot *s) {
    ak_json_doc d;
    ak_buf b;
    char *out;
    ak_json_doc_init(&d, NULL);
    ak_buf_init(&b, NULL);
    ak_json_write(ak_snapshot_to_json(s, AK_SNAPSHOT_NONE, &d), &b);
    out = strdup(b.ptr ? b.ptr : "");
    ak_buf_free(&b);
    ak_json_doc_free(&d);
    return out;
}

static int same_snapshot(const ak_snapshot *a, const ak_snapshot *b) {
    char *x, *y;
    int same;
    if (!a || !b) return a == b;
    x = snap_text(a), y = snap_text(b);
    same = strcmp(x, y) == 0;
    free(x), free(y);
    return same;
}

/* ---- basics -------------------------------------------------------------------------------- */

static void init_validates_its_desc(void) {
    fx x;
    ak_context ctx;
    ak_filestore fs;
    ak_filestore_desc d;
    ak_file_ops ops;
    ak_error e;
    fresh_root();
    ak_context_init(&ctx, NULL);
    memset(&d, 0, sizeof d);
    CHECK_EQ(ak_filestore_init(&fs, &ctx, &d, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK(strstr(e.message, "dir") != NULL);
    d.dir = root;
    d.checkpoint_every = AK_FILESTORE_MAX_DELTAS + 1;
    CHECK_EQ(ak_filestore_init(&fs, &ctx, &d, &e), AK_ERR_INVALID_ARGUMENT);
    d.checkpoint_every = 0;
    d.max_chain = -1;
    CHECK_EQ(ak_filestore_init(&fs, &ctx, &d, &e), AK_ERR_INVALID_ARGUMENT);
    ak_filestore_free(&fs); /* harmless after a failed init */
    /* a file where the directory should be */
    write_at("plain", "x", 1);
    {
        char path[600];
        snprintf(path, sizeof path, "%s/plain", root);
        d.max_chain = 0;
        d.dir = path;
        CHECK_EQ(ak_filestore_init(&fs, &ctx, &d, &e), AK_ERR_IO);
        CHECK(strstr(e.message, "plain") != NULL);
    }
    CHECK_OK(ak_file_ops_default(&ops));
    CHECK(ops.open_write && ops.lock && ops.list_dir && ops.ud == NULL);
    /* a missing root is created, nested one level */
    {
        char path[600];
        snprintf(path, sizeof path, "%s/made/", root);
        d.dir = path;
        CHECK_OK(ak_filestore_init(&fs, &ctx, &d, &e));
        CHECK_STR(fs.dir + strlen(fs.dir) - 5, "/made"); /* trailing slash dropped */
        ak_filestore_free(&fs);
        CHECK(exists_at("made"));
    }
    CHECK_OK(fx_open(&x, 0, 0, 0));
    CHECK_EQ(x.fs.desc.checkpoint_every, 16);
    fx_close(&x);
    t_rm_rf(root);
}

static void rows_round_trip_and_checkpoints_are_genkit_snapshots(void) {
    fx x, y;
    ak_snapshot *s, *got;
    ak_json_doc d;
    ak_error e;
    char *text;
    size_t len;
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 0, FX_DURABLE));
    s = turn_of(fx_alloc(&x), NULL, "r1", "sess", "hello \xE2\x9C\x93 \"quoted\"");
    ak_json_doc_init(&d, NULL);
    s->state.custom = ak_jref_new(fx_alloc(&x), parse(&d, "{\"counter\":3,\"big\":12345678901234567890}"));
    s->state.artifacts = ak_jref_new(fx_alloc(&x), parse(&d, "[{\"name\":\"a\",\"parts\":[{\"text\":\"x\"}]}]"));
    s->status = AK_SNAPSHOT_FAILED;
    s->has_finish_reason = 1;
    s->finish_reason = ak_finish_reason_from_name("failed");
    s->heartbeat_at = s->created_at + 5;
    CHECK_OK(ak_snapshot_set_error(s, AK_STATUS_INTERNAL, "boom", NULL));
    CHECK_OK(save(&x, s));
    CHECK(x.fs.bytes_written > 0);
    /* a second store (cold cache) reads the same thing */
    CHECK_OK(fx_open(&y, 0, 0, 0));
    got = get_id(&y, "r1", NULL, &e);
    CHECK(same_snapshot(got, s));
    ak_snapshot_release(got);
    got = get_session(&y, "sess", NULL, &e);
    CHECK_STR(got ? got->id : NULL, "r1");
    ak_snapshot_release(got);
    CHECK(get_id(&y, "nope", NULL, NULL) == NULL);
    CHECK(get_session(&y, "nobody", NULL, NULL) == NULL);
    CHECK_EQ(y.st->get(y.st, "r1", "sess", NULL, &got, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(y.st->get(y.st, NULL, "", NULL, &got, &e), AK_ERR_INVALID_ARGUMENT);
    fx_close(&y);
    /* the first row of a session is a plain SessionSnapshot file */
    text = file_at("global/r1.json", &len);
    CHECK(text && strstr(text, "akFile") == NULL);
    if (text) {
        ak_json_doc_reset(&d);
        CHECK_OK(ak_snapshot_from_json(NULL, parse(&d, text), &got, &e));
        CHECK(same_snapshot(got, s));
        ak_snapshot_release(got);
    }
    free(text);
    /* the pointer names it */
    text = file_at("global/.pointers/73657373.json", NULL); /* hex("sess") */
    CHECK(text && strstr(text, "\"currentSnapshotId\":\"r1\"") && strstr(text, "\"updatedAt\""));
    free(text);
    /* rows Genkit's FileSessionStore wrote (pretty, no akFile) read as checkpoints */
    {
        static const char gk[] =
            "{\n  \"snapshotId\": \"gk\",\n  \"createdAt\": \"2026-01-01T00:00:00.000Z\",\n  \"state\": {\n"
            "    \"sessionId\": \"gs\",\n    \"messages\": [{\"role\": \"user\", \"content\": [{\"text\": \"hi\"}]}],\n"
            "    \"artifacts\": []\n  }\n}\n";
        write_at("global/gk.json", gk, strlen(gk));
    }
    got = get_id(&x, "gk", NULL, &e);
    CHECK(got && got->session_id && strcmp(got->session_id, "gs") == 0 && ak_msgs_count(got->state.messages) == 1);
    ak_snapshot_release(got);
    got = get_session(&x, "gs", NULL, &e); /* no pointer: found by the scan */
    CHECK_STR(got ? got->id : NULL, "gk");
    ak_snapshot_release(got);
    ak_snapshot_release(s);
    ak_json_doc_free(&d);
    fx_close(&x);
    t_rm_rf(root);
}

static void deltas_store_only_new_messages_with_periodic_checkpoints(void) {
    fx x, y;
    ak_snapshot *prev = NULL, *l20, *l21;
    uint64_t before, sizes[40];
    int i;
    char id[16];
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 0, 0));
    for (i = 0; i < 40; i++) {
        ak_snapshot *s;
        snprintf(id, sizeof id, "t%d", i);
        s = turn_of(fx_alloc(&x), prev, id, "conv", id);
        before = x.fs.bytes_written;
        CHECK_OK(save(&x, s));
        sizes[i] = x.fs.bytes_written - before;
        ak_snapshot_release(prev);
        prev = s;
    }
    for (i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "t%d", i);
        CHECK_STR(row_kind(id), i % 16 == 0 ? "checkpoint" : "delta");
    }
    /* a delta turn costs what it added: turn 39 writes no more than turn 3 did (+ digits) */
    CHECK_MSG(sizes[39] < sizes[3] + 16, "turn 3 wrote %llu bytes, turn 39 %llu", (unsigned long long)sizes[3],
              (unsigned long long)sizes[39]);
    CHECK(sizes[32] > 3 * sizes[31]); /* a checkpoint carries the whole history */
    /* a cold store rebuilds every turn exactly, sharing the parent's list */
    CHECK_OK(fx_open(&y, 0, 0, 0));
    for (i = 39; i >= 0; i--) {
        ak_snapshot *want, *got;
        snprintf(id, sizeof id, "t%d", i);
        got = get_id(&y, id, NULL, NULL);
        want = get_id(&x, id, NULL, NULL);
        CHECK_MSG(same_snapshot(got, want), "turn %d differs", i);
        CHECK(got && ak_msgs_count(got->state.messages) == (size_t)(2 * i + 2));
        ak_snapshot_release(got);
        ak_snapshot_release(want);
    }
    l20 = get_id(&y, "t20", NULL, NULL);
    l21 = get_id(&y, "t21", NULL, NULL);
    CHECK(l20 && l21 && l21->state.messages->prev == l20->state.messages);
    CHECK_STR(msg_text(ak_msgs_at(l21->state.messages, 41)), "t20: answer");
    ak_snapshot_release(l20);
    ak_snapshot_release(l21);
    fx_close(&y);
    ak_snapshot_release(prev);
    fx_close(&x);
    /* checkpoint_every 1 writes full rows every time (what Genkit does) */
    t_rm_rf(root);
    fresh_root();
    CHECK_OK(fx_open(&x, 1, 0, 0));
    prev = chain(&x, "f", "full", 3, NULL);
    CHECK_STR(row_kind("f2"), "checkpoint");
    ak_snapshot_release(prev);
    fx_close(&x);
    t_rm_rf(root);
}

static void a_child_process_writes_and_the_parent_reads(void) {
    fx x;
    pid_t pid;
    int status = 0, i;
    fresh_root();
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        fx c;
        ak_snapshot *last;
        int ok = fx_open(&c, 4, 0, FX_DURABLE) == AK_OK;
        last = chain(&c, "p", "proc", 10, NULL);
        ak_snapshot_release(last);
        ok = ok && t_failed == 0 && t_current_failed == 0;
        ak_filestore_free(&c.fs);
        _exit(ok && c.ta.live == 0 ? 0 : 1);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_OK(fx_open(&x, 4, 0, 0));
    {
        ak_snapshot *got = get_session(&x, "proc", NULL, NULL);
        CHECK_STR(got ? got->id : NULL, "p9");
        CHECK(got && ak_msgs_count(got->state.messages) == 20);
        for (i = 0; got && i < 10; i++) {
            char want[32];
            snprintf(want, sizeof want, "p%d: question", i);
            CHECK_STR(msg_text(ak_msgs_at(got->state.messages, (size_t)(2 * i))), want);
        }
        ak_snapshot_release(got);
    }
    fx_close(&x);
    t_rm_rf(root);
}

static void branches_and_edits_are_checkpoints(void) {
    fx x, r;
    ak_snapshot *a3, *a2, *e, *b, *got;
    ak_error err;
    ak_result rc;
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 0, 0));
    a3 = chain(&x, "a", "s", 4, NULL);
    CHECK_STR(row_kind("a3"), "delta");
    /* an edit: same parent, but the last message rewritten (setMessages) */
    e = turn_of(fx_alloc(&x), a3, "e", "s", NULL);
    CHECK_OK(ak_msgs_truncate(fx_alloc(&x), &e->state.messages, 7));
    add_msg(fx_alloc(&x), &e->state.messages, "model", "a3: edited answer");
    CHECK_OK(save(&x, e));
    CHECK_STR(row_kind("e"), "checkpoint");
    /* a branch from a2 while the session's latest is e */
    a2 = get_id(&x, "a2", NULL, NULL);
    b = turn_of(fx_alloc(&x), a2, "b", "s", "branch");
    CHECK_OK(save(&x, b));
    CHECK_STR(row_kind("b"), "checkpoint");
    got = get_session(&x, "s", NULL, NULL);
    CHECK_STR(got ? got->id : NULL, "b");
    ak_snapshot_release(got);
    /* every row still reads as written, from a cold store too */
    CHECK_OK(fx_open(&r, 0, 0, 0));
    got = get_id(&r, "e", NULL, NULL);
    CHECK(same_snapshot(got, e));
    CHECK_STR(got ? msg_text(ak_msgs_at(got->state.messages, 7)) : NULL, "a3: edited answer");
    ak_snapshot_release(got);
    got = get_id(&r, "b", NULL, NULL);
    CHECK(same_snapshot(got, b));
    ak_snapshot_release(got);
    got = get_id(&r, "a3", NULL, NULL);
    CHECK(same_snapshot(got, a3));
    ak_snapshot_release(got);
    fx_close(&r);
    /* reject_branching always scans: leaves e and b */
    CHECK_OK(fx_open(&r, 0, 0, FX_REJECT));
    got = get_session(&r, "s", &rc, &err);
    CHECK_EQ(rc, AK_ERR_STATE);
    CHECK_EQ(err.status, AK_STATUS_FAILED_PRECONDITION);
    CHECK(strstr(err.message, "branched into 2 leaves") != NULL);
    CHECK(got == NULL);
    fx_close(&r);
    ak_snapshot_release(a3), ak_snapshot_release(a2), ak_snapshot_release(e), ak_snapshot_release(b);
    fx_close(&x);
    t_rm_rf(root);
}

/* ---- sessions: pointer, scan, odd session ids --------------------------------------------- */

#define ID128 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" \
              "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void session_lookup_uses_the_pointer_and_falls_back_to_a_scan(void) {
    static const char *sids[] = {"plain-session", "a/b", "../../etc/passwd", "sp ace\ttab", "caf\xC3\xA9",
                                 "x\\y", ".", (ID128)};
    fx x;
    ak_snapshot *last, *got;
    ak_error e;
    size_t i;
    int lists;
    char big[AK_ID_MAX + 8];
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 0, 0));
    CHECK_EQ(strlen(sids[7]), AK_ID_MAX);
    for (i = 0; i < sizeof sids / sizeof *sids; i++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "s%zu-", i);
        last = chain(&x, prefix, sids[i], 3, NULL);
        lists = x.io.lists;
        got = get_session(&x, sids[i], NULL, &e);
        CHECK_MSG(got && strcmp(got->id, last->id) == 0, "session %zu by pointer", i);
        CHECK_EQ(x.io.lists, lists); /* no directory scan */
        ak_snapshot_release(got);
        ak_snapshot_release(last);
    }
    /* without the pointer directory every lookup scans and still finds the same rows */
    {
        char ptrs[700];
        snprintf(ptrs, sizeof ptrs, "%s/global/.pointers", root);
        t_rm_rf(ptrs);
    }
    for (i = 0; i < sizeof sids / sizeof *sids; i++) {
        char want[16];
        snprintf(want, sizeof want, "s%zu-2", i);
        lists = x.io.lists;
        got = get_session(&x, sids[i], NULL, &e);
        CHECK_MSG(got && strcmp(got->id, want) == 0, "session %zu by scan", i);
        CHECK_EQ(x.io.lists, lists + 1);
        ak_snapshot_release(got);
    }
    /* a stale pointer (to a row that is gone) and a foreign one (another session's id) scan */
    last = get_id(&x, "s0-2", NULL, NULL);
    got = turn_of(fx_alloc(&x), last, "s0-3", "plain-session", "next");
    CHECK_OK(save(&x, got));
    ak_snapshot_release(got);
    ak_snapshot_release(last);
    CHECK(exists_at("global/s0-3.json"));
    {
        char path[700];
        snprintf(path, sizeof path, "%s/global/s0-3.json", root);
        unlink(path);
    }
    got = get_session(&x, "plain-session", NULL, &e);
    CHECK_STR(got ? got->id : NULL, "s0-2");
    ak_snapshot_release(got);
    write_at("global/.pointers/706c61696e2d73657373696f6e.json", "{\"currentSnapshotId\":\"s1-2\",\"sessionId\":\"plain-session\"}", 56);
    got = get_session(&x, "plain-session", NULL, &e);
    CHECK_STR(got ? got->id : NULL, "s0-2");
    ak_snapshot_release(got);
    write_at("global/.pointers/706c61696e2d73657373696f6e.json", "{not json", 9);
    got = get_session(&x, "plain-session", NULL, &e);
    CHECK_STR(got ? got->id : NULL, "s0-2");
    ak_snapshot_release(got);
    /* session ids longer than any row may hold match nothing */
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK(get_session(&x, big, NULL, &e) == NULL);
    fx_close(&x);
    t_rm_rf(root);
}

/* ---- damage ------------------------------------------------------------------------------- */

static void corrupt_and_truncated_rows_are_data_loss_and_hide_nothing(void) {
    static const struct { const char *name, *text; } junk[] = {
        {"global/j1.json", ""},
        {"global/j2.json", "not json"},
        {"global/j3.json", "[1,2,3]"},
        {"global/j4.json", "{\"snapshotId\":\"j4\",\"state\":{\"messages\":\"many\"}}"},
        {"global/j5.json", "{\"snapshotId\":\"j5\",\"createdAt\":\"\xFF\xFE\"}"},
        {"global/j6.json", "{\"snapshotId\":\"other\"}"},
    };
    fx x, y;
    ak_snapshot *c, *d, *got;
    ak_error e;
    ak_result rc;
    char *text;
    size_t len, i;
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 0, 0));
    c = chain(&x, "a", "s", 3, NULL);
    d = chain(&x, "d", "other", 2, NULL);
    CHECK_STR(row_kind("a1"), "delta");
    /* a1 cut in half: a1 and its delta child a2 are DATA_LOSS naming a1's file */
    text = file_at("global/a1.json", &len);
    write_at("global/a1.json", text, len / 2);
    free(text);
    CHECK_OK(fx_open(&y, 0, 0, 0));
    got = get_id(&y, "a1", &rc, &e);
    CHECK_EQ(rc, AK_ERR_DATA_LOSS);
    CHECK_EQ(e.status, AK_STATUS_DATA_LOSS);
    CHECK(got == NULL && strstr(e.message, "a1.json") != NULL);
    got = get_id(&y, "a2", &rc, &e);
    CHECK_EQ(rc, AK_ERR_DATA_LOSS);
    CHECK(strstr(e.message, "a1.json") != NULL);
    /* the others are fine */
    got = get_id(&y, "a0", &rc, &e);
    CHECK(rc == AK_OK && got != NULL);
    ak_snapshot_release(got);
    got = get_session(&y, "other", &rc, &e);
    CHECK_STR(got ? got->id : NULL, "d1");
    ak_snapshot_release(got);
    /* the session whose latest row is damaged says so */
    got = get_session(&y, "s", &rc, &e);
    CHECK_EQ(rc, AK_ERR_DATA_LOSS);
    /* unparseable strangers are skipped by scans (and logged), DATA_LOSS by id */
    for (i = 0; i < sizeof junk / sizeof *junk; i++) {
        char id[8];
        write_at(junk[i].name, junk[i].text, strlen(junk[i].text));
        snprintf(id, sizeof id, "j%zu", i + 1);
        got = get_id(&y, id, &rc, &e);
        CHECK_MSG(rc == AK_ERR_DATA_LOSS && got == NULL && strstr(e.message, id), "%s: %d %s", id, (int)rc, e.message);
    }
    write_at("global/notes.txt", "ignored", 7);
    write_at("global/.tmp.a9.json", "{\"snap", 6);
    warnings = 0;
    {
        char ptrs[700];
        snprintf(ptrs, sizeof ptrs, "%s/global/.pointers", root);
        t_rm_rf(ptrs);
    }
    got = get_session(&y, "other", &rc, &e);
    CHECK(rc == AK_OK && got && strcmp(got->id, "d1") == 0);
    ak_snapshot_release(got);
    CHECK_EQ(warnings, 7); /* j1..j6 and a1 */
    CHECK(strstr(last_warning, "skipped") != NULL);
    /* by scan, the damaged session's newest leaf a2 still fails loudly rather than
       quietly resuming an older row */
    got = get_session(&y, "s", &rc, &e);
    CHECK_EQ(rc, AK_ERR_DATA_LOSS);
    /* saving over a row that cannot be read fails (the mutator could not see it) */
    CHECK_EQ(save_ctx(&y, c, NULL, &e), AK_ERR_DATA_LOSS); /* a2: its base is damaged */
    {
        ak_snapshot *over = turn_of(fx_alloc(&y), NULL, "a1", "s", "x");
        CHECK_EQ(save_ctx(&y, over, NULL, &e), AK_ERR_DATA_LOSS);
        CHECK(strstr(e.message, "a1.json") != NULL);
        ak_snapshot_release(over);
        over = turn_of(fx_alloc(&y), NULL, "fresh", "s", "x");
        CHECK_OK(save_ctx(&y, over, NULL, &e));
        ak_snapshot_release(over);
    }
    fx_close(&y);
    ak_snapshot_release(c);
    ak_snapshot_release(d);
    fx_close(&x);
    t_rm_rf(root);
}

static void hostile_delta_files_fail_cleanly(void) {
    static const struct { const char *id, *text, *why; } rows[] = {
        {"c1", "{\"snapshotId\":\"c1\",\"state\":{\"messages\":[]},\"akFile\":{\"v\":1,\"base\":\"c2\",\"baseHash\":\"0000000000000000\",\"keep\":0,\"depth\":1}}", "cyclic"},
        {"c2", "{\"snapshotId\":\"c2\",\"state\":{\"messages\":[]},\"akFile\":{\"v\":1,\"base\":\"c1\",\"baseHash\":\"0000000000000000\",\"keep\":0,\"depth\":1}}", "cyclic"},
        {"k1", "{\"snapshotId\":\"k1\",\"state\":{\"messages\":[]},\"akFile\":{\"v\":1,\"base\":\"ok\",\"baseHash\":\"0000000000000000\",\"keep\":99,\"depth\":1}}", "takes 99"},
        {"m1", "{\"snapshotId\":\"m1\",\"state\":{\"messages\":[]},\"akFile\":{\"v\":1,\"base\":\"gone\",\"baseHash\":\"0000000000000000\",\"keep\":0,\"depth\":1}}", "missing"},
        {"v2", "{\"snapshotId\":\"v2\",\"state\":{},\"akFile\":{\"v\":2}}", "newer version"},
        {"h1", "{\"snapshotId\":\"h1\",\"state\":{},\"akFile\":{\"v\":1,\"base\":\"ok\",\"baseHash\":\"xyz\",\"keep\":0,\"depth\":1}}", "baseHash"},
        {"p1", "{\"snapshotId\":\"p1\",\"state\":{},\"akFile\":{\"v\":1,\"base\":\"../ok\",\"baseHash\":\"0000000000000000\",\"keep\":0,\"depth\":1}}", "base"},
        {"n1", "{\"snapshotId\":\"n1\",\"state\":{},\"akFile\":{\"v\":1,\"base\":\"ok\",\"baseHash\":\"0000000000000000\",\"keep\":-1,\"depth\":1}}", "keep"},
        {"d1", "{\"snapshotId\":\"d1\",\"state\":{},\"akFile\":{\"v\":1,\"base\":\"ok\",\"baseHash\":\"0000000000000000\",\"keep\":0,\"depth\":100000}}", "depth"},
        {"s1", "{\"snapshotId\":\"s1\",\"akFile\":{\"v\":1,\"base\":\"ok\",\"baseHash\":\"0000000000000000\",\"keep\":0,\"depth\":1}}", "without state"},
        {"b1", "{\"snapshotId\":\"b1\",\"state\":{\"messages\":[{\"role\":\"bot\"}]},\"akFile\":{\"v\":1,\"base\":\"ok\",\"baseHash\":\"0000000000000000\",\"keep\":0,\"depth\":1}}", "messages[0]"},
        {"l1", "{\"snapshotId\":\"l1\",\"state\":{},\"akFile\":{\"v\":1,\"linear\":\"yes\"}}", "linear"},
        {"x1", "{\"snapshotId\":\"x1\",\"state\":{},\"akFile\":[]}", "akFile"},
    };
    fx x;
    ak_snapshot *ok, *got;
    ak_error e;
    ak_result rc;
    size_t i;
    char deep[4000];
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 0, 0));
    ok = turn_of(fx_alloc(&x), NULL, "ok", "s", "base");
    CHECK_OK(save(&x, ok));
    for (i = 0; i < sizeof rows / sizeof *rows; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "global/%s.json", rows[i].id);
        write_at(rel, rows[i].text, strlen(rows[i].text));
    }
    for (i = 0; i < sizeof rows / sizeof *rows; i++) {
        got = get_id(&x, rows[i].id, &rc, &e);
        CHECK_MSG(rc == AK_ERR_DATA_LOSS && got == NULL && strstr(e.message, rows[i].why),
                  "%s: %d %s", rows[i].id, (int)rc, e.message);
        ak_snapshot_release(got);
    }
    /* nesting beyond the parser's limit */
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    write_at("global/deep.json", deep, strlen(deep));
    got = get_id(&x, "deep", &rc, &e);
    CHECK(rc == AK_ERR_DATA_LOSS && got == NULL);
    got = get_id(&x, "ok", &rc, &e);
    CHECK(rc == AK_OK && same_snapshot(got, ok));
    ak_snapshot_release(got);
    ak_snapshot_release(ok);
    fx_close(&x);
    t_rm_rf(root);
}

/* ---- ids and tenants ---------------------------------------------------------------------- */

static ak_result put_unsafe(void *ud, const ak_snapshot *cur, ak_snapshot **next) {
    (void)cur;
    *next = ak_snapshot_new(NULL, (const char *)ud, "s", NULL, NULL);
    return *next ? AK_OK : AK_ERR_OUT_OF_MEMORY;
}

static void unsafe_ids_and_prefixes_are_rejected(void) {
    static const char *bad[] = {"../x", "a/b", "a\\b", ".", "..", ".hidden", ".lock", "", "tab\there", "caf\xC3\xA9",
                                (ID128 "x")};
    fx x;
    ak_snapshot *s, *got;
    ak_error e;
    char written[AK_ID_MAX + 1];
    size_t i;
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 0, 0));
    s = turn_of(fx_alloc(&x), NULL, "fine", "s", "x");
    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_EQ(x.st->get(x.st, bad[i], NULL, NULL, &got, &e), AK_ERR_INVALID_ARGUMENT);
        CHECK_EQ(e.status, AK_STATUS_INVALID_ARGUMENT);
        CHECK_EQ(x.st->save(x.st, bad[i], put, s, NULL, written, &e), AK_ERR_INVALID_ARGUMENT);
        CHECK_EQ(x.st->save(x.st, NULL, put_unsafe, (void *)bad[i], NULL, written, &e), AK_ERR_INVALID_ARGUMENT);
        CHECK(written[0] == 0);
    }
    CHECK_EQ(count_rows("global"), 0);
    CHECK(!exists_at("x"));
    /* a parentId or sessionId no row could hold back */
    {
        char longid[AK_ID_MAX + 2];
        memset(longid, 'p', sizeof longid - 1);
        longid[sizeof longid - 1] = 0;
        got = ak_snapshot_new(fx_alloc(&x), "ok1", longid, NULL, NULL);
        CHECK_EQ(save_ctx(&x, got, NULL, &e), AK_ERR_INVALID_ARGUMENT);
        ak_snapshot_release(got);
    }
    ak_snapshot_release(s);
    fx_close(&x);
    t_rm_rf(root);
}

static void ignore_change(void *ud, const ak_snapshot *s) { (void)ud, (void)s; }

static void tenants_are_separate_directories(void) {
    fx x;
    ak_json_doc d;
    ak_snapshot *a, *b, *got;
    ak_error e;
    ak_result rc;
    void *tok;
    const ak_json *ta, *tb, *evil, *dots, *none;
    char written[AK_ID_MAX + 1];
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 0, FX_TENANT));
    ak_json_doc_init(&d, NULL);
    ta = parse(&d, "{\"tenant\":\"alice\"}");
    tb = parse(&d, "{\"tenant\":\"bob\"}");
    evil = parse(&d, "{\"tenant\":\"../alice\"}");
    dots = parse(&d, "{\"tenant\":\"..\"}");
    none = parse(&d, "{}");
    a = turn_of(fx_alloc(&x), NULL, "same", "s", "alice's");
    b = turn_of(fx_alloc(&x), NULL, "same", "s", "bob's");
    CHECK_OK(save_ctx(&x, a, ta, &e));
    CHECK_OK(save_ctx(&x, b, tb, &e));
    CHECK(exists_at("alice/same.json") && exists_at("bob/same.json"));
    CHECK_OK(x.st->get(x.st, "same", NULL, ta, &got, &e));
    CHECK(same_snapshot(got, a));
    ak_snapshot_release(got);
    CHECK_OK(x.st->get(x.st, NULL, "s", tb, &got, &e));
    CHECK(same_snapshot(got, b));
    ak_snapshot_release(got);
    /* a tenant with nothing stored yet */
    CHECK_OK(x.st->get(x.st, "same", NULL, parse(&d, "{\"tenant\":\"carol\"}"), &got, &e));
    CHECK(got == NULL && !exists_at("carol"));
    /* prefixes that are no plain directory name, or none at all, are denied */
    rc = x.st->get(x.st, "same", NULL, evil, &got, &e);
    CHECK(rc == AK_ERR_STORE && e.status == AK_STATUS_PERMISSION_DENIED);
    rc = x.st->save(x.st, "same", put, a, dots, written, &e);
    CHECK(rc == AK_ERR_STORE && e.status == AK_STATUS_PERMISSION_DENIED);
    rc = x.st->get(x.st, NULL, "s", none, &got, &e);
    CHECK(rc == AK_ERR_STORE && e.status == AK_STATUS_PERMISSION_DENIED);
    rc = x.st->get(x.st, NULL, "s", NULL, &got, &e);
    CHECK(rc == AK_ERR_STORE && e.status == AK_STATUS_PERMISSION_DENIED);
    rc = x.st->watch(x.st, "same", ignore_change, NULL, evil, &tok);
    CHECK_EQ(rc, AK_ERR_STORE);
    ak_snapshot_release(a);
    ak_snapshot_release(b);
    ak_json_doc_free(&d);
    fx_close(&x);
    t_rm_rf(root);
}

/* ---- pruning and rewriting -------------------------------------------------------------- */

static void pruning_keeps_what_deltas_need(void) {
    fx x, y;
    ak_snapshot *a5, *retry, *last, *got;
    int i, kept;
    char id[16];
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 4, 0));
    last = chain(&x, "t", "s", 30, NULL);
    /* newest 4 always there; at most max_chain + interval - 1 = 7 rows */
    for (i = 26; i < 30; i++) {
        snprintf(id, sizeof id, "t%d", i);
        CHECK_MSG(strcmp(row_kind(id), "missing") != 0, "%s kept", id);
    }
    kept = count_rows("global");
    CHECK_MSG(kept >= 4 && kept <= 7, "%d rows kept", kept);
    CHECK_STR(row_kind("t0"), "missing");
    CHECK_STR(row_kind("t20"), "missing");
    /* every row left loads, from a cold store */
    CHECK_OK(fx_open(&y, 0, 4, 0));
    for (i = 0; i < 30; i++) {
        ak_result rc;
        snprintf(id, sizeof id, "t%d", i);
        got = get_id(&y, id, &rc, NULL);
        CHECK_MSG(rc == AK_OK && (got != NULL) == (strcmp(row_kind(id), "missing") != 0), "%s loads", id);
        CHECK(!got || ak_msgs_count(got->state.messages) == (size_t)(2 * i + 2));
        ak_snapshot_release(got);
    }
    fx_close(&y);
    ak_snapshot_release(last);
    fx_close(&x);
    t_rm_rf(root);
    /* a delta off the main line (a retried turn) keeps its base alive */
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 3, 0));
    a5 = chain(&x, "a", "s", 5, NULL); /* a3 is a checkpoint (interval 3), a4 a delta */
    retry = turn_of(fx_alloc(&x), a5, "retry", "s", "first try");
    CHECK_OK(save(&x, retry));
    CHECK_STR(row_kind("retry"), "delta");
    last = turn_of(fx_alloc(&x), a5, "b0", "s", "second try"); /* session's latest is retry: a branch */
    CHECK_OK(save(&x, last));
    CHECK_STR(row_kind("b0"), "checkpoint");
    ak_snapshot_release(chain(&x, "c", "s", 20, last));
    ak_snapshot_release(last);
    CHECK_STR(row_kind("c0"), "missing");
    CHECK_OK(fx_open(&y, 0, 3, 0));
    got = get_id(&y, "retry", NULL, NULL);
    CHECK(same_snapshot(got, retry));
    ak_snapshot_release(got);
    CHECK(strcmp(row_kind("a4"), "missing") != 0); /* retry's base */
    CHECK_STR(row_kind("a0"), "missing");
    fx_close(&y);
    ak_snapshot_release(a5);
    ak_snapshot_release(retry);
    fx_close(&x);
    t_rm_rf(root);
}

static void rewriting_a_rows_messages_keeps_its_children_loadable(void) {
    fx x, y;
    ak_snapshot *p, *c, *shorter, *got;
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 0, 0));
    p = chain(&x, "p", "s", 3, NULL);
    c = turn_of(fx_alloc(&x), p, "c", "s", "child");
    CHECK_OK(save(&x, c));
    CHECK_STR(row_kind("c"), "delta");
    /* p2 rewritten with fewer messages: c must keep the ones it was built on */
    shorter = ak_snapshot_clone(p);
    CHECK_OK(ak_msgs_truncate(fx_alloc(&x), &shorter->state.messages, 2));
    CHECK_OK(save(&x, shorter));
    CHECK_STR(row_kind("c"), "checkpoint");
    CHECK_OK(fx_open(&y, 0, 0, 0));
    got = get_id(&y, "c", NULL, NULL);
    CHECK(same_snapshot(got, c));
    ak_snapshot_release(got);
    got = get_id(&y, "p2", NULL, NULL);
    CHECK(same_snapshot(got, shorter) && ak_msgs_count(got->state.messages) == 2);
    ak_snapshot_release(got);
    /* appending to a row (pending -> completed) keeps its delta child a delta */
    ak_snapshot_release(shorter);
    shorter = ak_snapshot_clone(c);
    got = turn_of(fx_alloc(&x), c, "cc", "s", "grandchild");
    CHECK_OK(save(&x, got));
    add_msg(fx_alloc(&x), &shorter->state.messages, "model", "more");
    CHECK_OK(save(&x, shorter));
    CHECK_STR(row_kind("cc"), "delta");
    ak_snapshot_release(got);
    got = get_id(&y, "cc", NULL, NULL);
    CHECK(got && ak_msgs_count(got->state.messages) == 10);
    ak_snapshot_release(got);
    fx_close(&y);
    ak_snapshot_release(p), ak_snapshot_release(c), ak_snapshot_release(shorter);
    fx_close(&x);
    t_rm_rf(root);
}

/* ---- watch and poll ------------------------------------------------------------------------ */

typedef struct heard {
    int calls;
    ak_snapshot_status last;
    ak_store *unwatch_from;
    void *token;
} heard;

static void on_change(void *ud, const ak_snapshot *s) {
    heard *h = (heard *)ud;
    h->calls++;
    h->last = s->status;
    if (h->unwatch_from) h->unwatch_from->unwatch(h->unwatch_from, h->token);
}

static const char *self_path; /* argv[0]: children re-execute this binary */

/* Rewrites row ID of the store at DIR with STATUS through its own store: what another
   process does (run by `test_filestore set-status DIR ID STATUS`). */
static int set_status_main(const char *dir, const char *id, const char *status) {
    fx c;
    ak_snapshot *cur, *next;
    int ok;
    snprintf(root, sizeof root, "%s", dir);
    ok = fx_open(&c, 0, 0, 0) == AK_OK;
    cur = ok ? get_id(&c, id, NULL, NULL) : NULL;
    next = cur ? ak_snapshot_clone(cur) : NULL;
    if (next) next->status = ak_snapshot_status_from_name(status);
    ok = next && save(&c, next) == AK_OK;
    ak_snapshot_release(cur), ak_snapshot_release(next);
    ak_filestore_free(&c.fs);
    return ok && c.ta.live == 0 ? 0 : 1;
}

/* In a fresh process (a re-execution: nothing of this one's heap), rewrite row ID with STATUS. */
static int child_sets_status(const char *id, ak_snapshot_status status) {
    pid_t pid;
    int st = 0;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        execl(self_path, self_path, "set-status", root, id, ak_snapshot_status_name(status), (char *)NULL);
        _exit(127);
    }
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void watch_and_poll_see_other_processes(void) {
    fx x;
    ak_snapshot *w, *next;
    heard h, h2;
    void *tok, *tok2;
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 0, 0));
    w = turn_of(fx_alloc(&x), NULL, "w", "s", "detached");
    w->status = AK_SNAPSHOT_PENDING;
    CHECK_OK(save(&x, w));
    memset(&h, 0, sizeof h);
    memset(&h2, 0, sizeof h2);
    CHECK_OK(x.st->watch(x.st, "w", on_change, &h, NULL, &tok));
    CHECK_OK(x.st->watch(x.st, "later", on_change, &h2, NULL, &tok2)); /* not written yet */
    CHECK_OK(x.st->poll(x.st));
    CHECK_EQ(h.calls, 0);
    /* another process aborts it: poll notices once */
    CHECK(child_sets_status("w", AK_SNAPSHOT_ABORTED));
    CHECK_OK(x.st->poll(x.st));
    CHECK_EQ(h.calls, 1);
    CHECK_EQ(h.last, AK_SNAPSHOT_ABORTED);
    CHECK_OK(x.st->poll(x.st));
    CHECK_EQ(h.calls, 1);
    /* the same content written again is no change */
    CHECK(child_sets_status("w", AK_SNAPSHOT_ABORTED));
    CHECK_OK(x.st->poll(x.st));
    CHECK_EQ(h.calls, 1);
    /* saves through this store notify at once, and poll does not repeat them */
    next = ak_snapshot_clone(w);
    next->status = AK_SNAPSHOT_COMPLETED;
    CHECK_OK(save(&x, next));
    CHECK_EQ(h.calls, 2);
    CHECK_EQ(h.last, AK_SNAPSHOT_COMPLETED);
    CHECK_OK(x.st->poll(x.st));
    CHECK_EQ(h.calls, 2);
    /* a row created after the watch is reported */
    ak_snapshot_release(next);
    next = turn_of(fx_alloc(&x), NULL, "later", "s2", "x");
    CHECK(child_sets_status("w", AK_SNAPSHOT_FAILED)); /* and another change to w */
    CHECK_OK(save(&x, next));
    CHECK_EQ(h2.calls, 1);
    /* a listener may unwatch itself while being called */
    h.unwatch_from = x.st, h.token = tok;
    CHECK_OK(x.st->poll(x.st));
    CHECK_EQ(h.calls, 3);
    CHECK_EQ(h.last, AK_SNAPSHOT_FAILED);
    CHECK(child_sets_status("w", AK_SNAPSHOT_ABORTED));
    CHECK_OK(x.st->poll(x.st));
    CHECK_EQ(h.calls, 3);
    x.st->unwatch(x.st, tok2);
    CHECK_EQ(x.st->watch(x.st, "../w", on_change, &h, NULL, &tok), AK_ERR_INVALID_ARGUMENT);
    ak_snapshot_release(next);
    ak_snapshot_release(w);
    fx_close(&x);
    t_rm_rf(root);
}

/* ---- the cache -------------------------------------------------------------------------- */

static void the_cache_spares_reads_when_resuming(void) {
    fx x, y;
    ak_snapshot *last, *got, *next;
    int reads;
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 0, 0));
    last = chain(&x, "t", "s", 12, NULL);
    /* resuming in the writing process: the pointer and the row, nothing else */
    reads = x.io.reads;
    got = get_session(&x, "s", NULL, NULL);
    CHECK(got == last); /* the very snapshot saved: shares everything */
    CHECK_EQ(x.io.reads - reads, 2);
    ak_snapshot_release(got);
    /* a cold store reads the chain once, then only the pointer and the row */
    CHECK_OK(fx_open(&y, 0, 0, 0));
    got = get_session(&y, "s", NULL, NULL);
    CHECK(y.io.reads >= 12);
    reads = y.io.reads;
    next = turn_of(fx_alloc(&y), got, "t12", "s", "t12");
    ak_snapshot_release(got);
    CHECK_OK(save(&y, next));
    CHECK_STR(row_kind("t12"), "delta");
    got = get_session(&y, "s", NULL, NULL);
    CHECK(got == next);
    CHECK_MSG(y.io.reads - reads <= 5, "%d reads to save a turn and resume", y.io.reads - reads);
    ak_snapshot_release(got);
    ak_snapshot_release(next);
    fx_close(&y);
    ak_snapshot_release(last);
    fx_close(&x);
    t_rm_rf(root);
}

/* ---- Genkit edge cases ------------------------------------------------------------------- */

static ak_result put_without_id(void *ud, const ak_snapshot *cur, ak_snapshot **next) {
    (void)cur;
    *next = ak_snapshot_new((const ak_allocator *)ud, NULL, "anon", NULL, NULL);
    return *next ? AK_OK : AK_ERR_OUT_OF_MEMORY;
}
static ak_result skip_write(void *ud, const ak_snapshot *cur, ak_snapshot **next) {
    *(int *)ud = cur ? (int)cur->status : -1;
    *next = NULL;
    return AK_OK;
}
static ak_result refuse(void *ud, const ak_snapshot *cur, ak_snapshot **next) {
    (void)ud, (void)cur, (void)next;
    return AK_ERR_CANCELLED;
}

static void ids_skips_and_self_parents(void) {
    fx x;
    ak_snapshot *a, *d, *healed, *got;
    ak_error e;
    ak_result rc;
    char written[AK_ID_MAX + 1];
    int seen = 0;
    fresh_root();
    CHECK_OK(fx_open(&x, 0, 0, 0));
    /* no id anywhere: a new UUID */
    CHECK_OK(x.st->save(x.st, NULL, put_without_id, (void *)fx_alloc(&x), NULL, written, &e));
    CHECK_EQ(strlen(written), 36);
    got = get_id(&x, written, NULL, NULL);
    CHECK(got && got->session_id && strcmp(got->session_id, "anon") == 0);
    ak_snapshot_release(got);
    /* the mutator's own id, also over an existing row */
    a = turn_of(fx_alloc(&x), NULL, "chosen", "s", "one");
    CHECK_OK(x.st->save(x.st, NULL, put, a, NULL, written, &e));
    CHECK_STR(written, "chosen");
    CHECK_OK(x.st->save(x.st, NULL, put, a, NULL, written, &e));
    CHECK_STR(written, "chosen");
    /* a snapshot others hold, stored under another id: copied, theirs keeps its id */
    got = get_id(&x, "chosen", NULL, NULL);
    CHECK_OK(x.st->save(x.st, "copy", put, got, NULL, written, &e));
    CHECK_STR(got ? got->id : NULL, "chosen");
    ak_snapshot_release(got);
    got = get_id(&x, "copy", NULL, NULL);
    CHECK_STR(got ? got->id : NULL, "copy");
    ak_snapshot_release(got);
    got = get_id(&x, "chosen", NULL, NULL);
    CHECK_STR(got ? got->id : NULL, "chosen");
    ak_snapshot_release(got);
    /* a mutator sees the current row and may skip or refuse */
    CHECK_OK(x.st->save(x.st, "chosen", skip_write, &seen, NULL, written, &e));
    CHECK(seen == AK_SNAPSHOT_COMPLETED && written[0] == 0);
    CHECK_OK(x.st->save(x.st, "absent", skip_write, &seen, NULL, written, &e));
    CHECK(seen == -1 && !exists_at("global/absent.json"));
    CHECK_EQ(x.st->save(x.st, "absent", refuse, NULL, NULL, written, &e), AK_ERR_CANCELLED);
    CHECK(!exists_at("global/absent.json"));
    /* Genkit's detached final row names itself as parent: readable by id, no leaf by session */
    d = turn_of(fx_alloc(&x), NULL, "d", "solo", "detached");
    d->status = AK_SNAPSHOT_PENDING;
    CHECK_OK(save(&x, d));
    healed = ak_snapshot_new(fx_alloc(&x), "d", "solo", "d", &d->state);
    healed->created_at = d->created_at + 1;
    healed->status = AK_SNAPSHOT_COMPLETED;
    CHECK_OK(save(&x, healed));
    CHECK_STR(row_kind("d"), "checkpoint");
    got = get_id(&x, "d", &rc, &e);
    CHECK(rc == AK_OK && same_snapshot(got, healed));
    ak_snapshot_release(got);
    got = get_session(&x, "solo", &rc, &e);
    CHECK_EQ(rc, AK_ERR_STATE);
    CHECK(got == NULL && strstr(e.message, "no leaf") != NULL);
    ak_snapshot_release(a), ak_snapshot_release(d), ak_snapshot_release(healed);
    fx_close(&x);
    t_rm_rf(root);
}

/* ---- allocation failures -------------------------------------------------------------------- */

static void allocation_failures_leak_nothing(void) {
    char tmpl[512];
    int n, saved = 0, loaded = 0;
    fx x;
    make_dir_under_build(tmpl, sizeof tmpl, "akfs-tmpl");
    snprintf(root, sizeof root, "%s", tmpl);
    CHECK_OK(fx_open(&x, 0, 0, 0));
    ak_snapshot_release(chain(&x, "a", "s", 10, NULL));
    fx_close(&x);
    fresh_root();
    for (n = 1; n < 5000 && !saved; n++) {
        ak_snapshot *prev, *s;
        ak_result rc;
        t_rm_rf(root);
        copy_tree(tmpl, root);
        CHECK_OK(fx_open(&x, 0, 0, 0));
        prev = get_id(&x, "a9", NULL, NULL);
        s = turn_of(fx_alloc(&x), prev, "a10", "s", "a10");
        x.ta.fail_at = x.ta.count + n;
        rc = save(&x, s);
        x.ta.fail_at = 0;
        CHECK_MSG(rc == AK_OK || rc == AK_ERR_OUT_OF_MEMORY, "save failing allocation %d: %d", n, (int)rc);
        saved = rc == AK_OK;
        ak_snapshot_release(prev), ak_snapshot_release(s);
        fx_close(&x);
        /* whatever happened, the store reads the old or the new state */
        CHECK_OK(fx_open(&x, 0, 0, 0));
        s = get_session(&x, "s", &rc, NULL);
        CHECK_MSG(rc == AK_OK && s && (!strcmp(s->id, "a9") || !strcmp(s->id, "a10")) &&
                      ak_msgs_count(s->state.messages) == (strcmp(s->id, "a9") ? 22u : 20u),
                  "after failing allocation %d", n);
        ak_snapshot_release(s);
        fx_close(&x);
    }
    CHECK(saved);
    for (n = 1; n < 5000 && !loaded; n++) {
        ak_snapshot *s;
        ak_result rc;
        CHECK_OK(fx_open(&x, 0, 0, 0)); /* cold: reads the whole chain */
        x.ta.fail_at = x.ta.count + n;
        s = get_session(&x, "s", &rc, NULL);
        x.ta.fail_at = 0;
        CHECK_MSG(rc == AK_OK || rc == AK_ERR_OUT_OF_MEMORY, "load failing allocation %d: %d", n, (int)rc);
        loaded = rc == AK_OK;
        CHECK(!loaded || (s && ak_msgs_count(s->state.messages) == 22));
        ak_snapshot_release(s);
        fx_close(&x);
    }
    CHECK(loaded);
    t_rm_rf(root);
    t_rm_rf(tmpl);
}

/* ---- crash injection ------------------------------------------------------------------------ */

/* A save to try at every step: rows made by setup, then `target` saved. Afterwards the store
   must hold the old or the new target (count_old / count_new messages, status), every other
   row must load with its messages, and the session's latest must be one of two rows. */
typedef struct scenario {
    const char *name;
    int max_chain;
    int setup_rows;                      /* chain a0..a(n-1) in session "s" */
    void (*setup_more)(fx *x);
    ak_snapshot *(*prepare)(fx *x);      /* the snapshot to save */
    const char *target;
    int old_count, new_count;            /* messages; -1 = no such row */
    ak_snapshot_status old_status, new_status;
    const char *latest_old, *latest_new; /* session "s" (or "fresh") */
} scenario;

static ak_snapshot *next_turn(fx *x, const char *parent, const char *id, const char *sid) {
    ak_snapshot *p = parent ? get_id(x, parent, NULL, NULL) : NULL, *s = turn_of(fx_alloc(x), p, id, sid, id);
    ak_snapshot_release(p);
    return s;
}
static ak_snapshot *prep_append(fx *x) { return next_turn(x, "a4", "a5", "s"); }
static ak_snapshot *prep_prune(fx *x) { return next_turn(x, "a6", "a7", "s"); }
static ak_snapshot *prep_first(fx *x) { return next_turn(x, NULL, "n0", "fresh"); }
static ak_snapshot *prep_abort(fx *x) {
    ak_snapshot *cur = get_id(x, "a4", NULL, NULL), *s = ak_snapshot_clone(cur);
    s->status = AK_SNAPSHOT_ABORTED;
    ak_snapshot_release(cur);
    return s;
}
static ak_snapshot *prep_edit(fx *x) {
    ak_snapshot *cur = get_id(x, "a4", NULL, NULL), *s = ak_snapshot_clone(cur);
    ak_msgs_truncate(fx_alloc(x), &s->state.messages, 2);
    ak_snapshot_release(cur);
    return s;
}
static void setup_pending(fx *x) {
    ak_snapshot *s = next_turn(x, "a3", "a4", "s");
    s->status = AK_SNAPSHOT_PENDING;
    CHECK_OK(save(x, s));
    ak_snapshot_release(s);
}
static void setup_child(fx *x) {
    ak_snapshot *s = next_turn(x, "a4", "c", "s");
    CHECK_OK(save(x, s));
    CHECK_STR(row_kind("c"), "delta");
    ak_snapshot_release(s);
}

static const scenario scenarios[] = {
    {"append a turn", 0, 5, NULL, prep_append, "a5", -1, 12, AK_SNAPSHOT_NONE, AK_SNAPSHOT_COMPLETED, "a4", "a5"},
    {"abort a pending row", 0, 4, setup_pending, prep_abort, "a4", 10, 10, AK_SNAPSHOT_PENDING, AK_SNAPSHOT_ABORTED, "a4", "a4"},
    {"rewrite messages under a delta child", 0, 5, setup_child, prep_edit, "a4", 10, 2, AK_SNAPSHOT_COMPLETED,
     AK_SNAPSHOT_COMPLETED, "c", "c"},
    {"append and prune", 3, 7, NULL, prep_prune, "a7", -1, 16, AK_SNAPSHOT_NONE, AK_SNAPSHOT_COMPLETED, "a6", "a7"},
    {"first row of a new tenant", 0, 0, NULL, prep_first, "n0", -1, 2, AK_SNAPSHOT_NONE, AK_SNAPSHOT_COMPLETED, NULL, "n0"},
};

/* Messages row `id` must have (the target aside). */
static int expected_count(const char *id) {
    if (id[0] == 'a') return 2 * atoi(id + 1) + 2;
    return !strcmp(id, "c") ? 12 : -1;
}

/* 0 = old state, 1 = new state, -1 = neither. */
static int check_state(const scenario *sc, const char *what) {
    fx x;
    ak_snapshot *t, *latest;
    ak_result rc;
    ak_error e;
    DIR *d;
    struct dirent *ent;
    char dir[700];
    int outcome = -1, count;
    CHECK_OK(fx_open(&x, 0, sc->max_chain, 0));
    t = get_id(&x, sc->target, &rc, &e);
    CHECK_MSG(rc == AK_OK, "%s: %s: target: %s", sc->name, what, e.message);
    count = t ? (int)ak_msgs_count(t->state.messages) : -1;
    if (count == sc->old_count && (!t || t->status == sc->old_status)) outcome = 0;
    else if (count == sc->new_count && t && t->status == sc->new_status) outcome = 1;
    CHECK_MSG(outcome >= 0, "%s: %s: target has %d messages", sc->name, what, count);
    /* every row on disk loads with its messages */
    snprintf(dir, sizeof dir, "%s/global", root);
    for (d = opendir(dir); d && (ent = readdir(d)) != NULL;) {
        char id[256];
        size_t len = strlen(ent->d_name);
        ak_snapshot *r;
        if (ent->d_name[0] == '.' || len < 6 || strcmp(ent->d_name + len - 5, ".json")) continue;
        snprintf(id, sizeof id, "%.*s", (int)(len - 5), ent->d_name);
        r = get_id(&x, id, &rc, &e);
        CHECK_MSG(rc == AK_OK && r, "%s: %s: row %s: %s", sc->name, what, id, e.message);
        if (r && strcmp(id, sc->target) != 0 && expected_count(id) >= 0)
            CHECK_MSG((int)ak_msgs_count(r->state.messages) == expected_count(id), "%s: %s: row %s", sc->name, what, id);
        ak_snapshot_release(r);
    }
    if (d) closedir(d);
    latest = get_session(&x, sc->latest_new[0] == 'n' ? "fresh" : "s", &rc, &e);
    CHECK_MSG(rc == AK_OK, "%s: %s: latest: %s", sc->name, what, e.message);
    CHECK_MSG((latest && !strcmp(latest->id, sc->latest_new)) ||
                  (sc->latest_old ? latest && !strcmp(latest->id, sc->latest_old) : !latest),
              "%s: %s: latest is %s", sc->name, what, latest ? latest->id : "(none)");
    /* and the store goes on working */
    if (latest) {
        ak_snapshot *more = turn_of(fx_alloc(&x), latest, "after", latest->session_id, "after"), *back;
        CHECK_OK(save(&x, more));
        back = get_id(&x, "after", &rc, &e);
        CHECK(rc == AK_OK && same_snapshot(back, more));
        ak_snapshot_release(more), ak_snapshot_release(back);
    }
    ak_snapshot_release(latest);
    ak_snapshot_release(t);
    fx_close(&x);
    return outcome;
}

static void try_every_step(const scenario *sc, int crash) {
    char tmpl[512], what[64];
    fx x;
    ak_snapshot *s;
    int steps, k, outcomes[2] = {0, 0};
    make_dir_under_build(tmpl, sizeof tmpl, "akfs-tmpl");
    snprintf(root, sizeof root, "%s", tmpl);
    CHECK_OK(fx_open(&x, 0, sc->max_chain, 0));
    if (sc->setup_rows) ak_snapshot_release(chain(&x, "a", "s", sc->setup_rows, NULL));
    if (sc->setup_more) sc->setup_more(&x);
    fx_close(&x);
    /* how many steps the save takes */
    fresh_root();
    copy_tree(tmpl, root);
    CHECK_OK(fx_open(&x, 0, sc->max_chain, 0));
    s = sc->prepare(&x);
    steps = x.io.steps;
    CHECK_OK(save(&x, s));
    steps = x.io.steps - steps;
    ak_snapshot_release(s);
    fx_close(&x);
    CHECK_EQ(check_state(sc, "clean run"), 1);
    for (k = 1; k <= steps; k++) {
        t_rm_rf(root);
        copy_tree(tmpl, root);
        snprintf(what, sizeof what, "%s at step %d of %d", crash ? "crash" : "failure", k, steps);
        if (!crash) {
            CHECK_OK(fx_open(&x, 0, sc->max_chain, 0));
            s = sc->prepare(&x);
            x.io.fail_at = x.io.steps + k;
            save(&x, s);
            ak_snapshot_release(s);
            fx_close(&x);
        } else {
            pid_t pid;
            int status = 0;
            fflush(NULL);
            if ((pid = fork()) == 0) {
                fx c;
                if (fx_open(&c, 0, sc->max_chain, 0) != AK_OK) _exit(1);
                s = sc->prepare(&c);
                c.io.crash_at = c.io.steps + k;
                save(&c, s);
                _exit(2); /* every step is before the save returns */
            }
            CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
            CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s: %s: no crash", sc->name, what);
        }
        {
            int o = check_state(sc, what);
            if (o >= 0) outcomes[o]++;
        }
    }
    /* both outcomes happen: early steps leave the old state, late ones the new */
    CHECK_MSG(outcomes[0] > 0 && outcomes[1] > 0, "%s: %d old, %d new", sc->name, outcomes[0], outcomes[1]);
    t_rm_rf(root);
    t_rm_rf(tmpl);
}

static void every_failed_step_leaves_old_or_new(void) {
    size_t i;
    for (i = 0; i < sizeof scenarios / sizeof *scenarios; i++) try_every_step(&scenarios[i], 0);
}

static void every_crashed_step_leaves_old_or_new(void) {
    size_t i;
    for (i = 0; i < sizeof scenarios / sizeof *scenarios; i++) try_every_step(&scenarios[i], 1);
}

/* ---- two processes at once ------------------------------------------------------------------ */

static ak_result increment(void *ud, const ak_snapshot *cur, ak_snapshot **next) {
    const ak_allocator *a = (const ak_allocator *)ud;
    ak_json_doc d;
    int64_t n = cur && cur->state.custom ? ak_json_int_or(ak_json_get(cur->state.custom->value, "n"), 0) : 0;
    ak_json *o;
    *next = cur ? ak_snapshot_clone(cur) : ak_snapshot_new(a, "counter", "counters", NULL, NULL);
    if (!*next) return AK_ERR_OUT_OF_MEMORY;
    ak_json_doc_init(&d, a);
    o = ak_json_new_object(&d);
    ak_json_set_int(&d, o, "n", n + 1);
    ak_jref_release((*next)->state.custom);
    (*next)->state.custom = ak_jref_new(a, o);
    ak_json_doc_free(&d);
    return (*next)->state.custom ? AK_OK : AK_ERR_OUT_OF_MEMORY;
}

static int hammer(int who, int rounds) {
    fx x;
    int i, ok = fx_open(&x, 0, 0, 0) == AK_OK;
    clock_ms += who; /* the two processes' clocks differ */
    for (i = 0; ok && i < rounds; i++) {
        char id[32], written[AK_ID_MAX + 1];
        ak_result rc;
        ak_snapshot *latest = get_session(&x, "hammer", &rc, NULL), *s;
        snprintf(id, sizeof id, "p%d-%d", who, i);
        s = turn_of(fx_alloc(&x), latest, id, "hammer", id);
        clock_ms++;
        ok = rc == AK_OK && save(&x, s) == AK_OK &&
             x.st->save(x.st, "counter", increment, (void *)fx_alloc(&x), NULL, written, NULL) == AK_OK;
        ak_snapshot_release(latest), ak_snapshot_release(s);
    }
    ak_filestore_free(&x.fs);
    return ok && x.ta.live == 0;
}

static void two_processes_hammering_one_session_lose_nothing(void) {
    int rounds = getenv("AK_VALGRIND") ? 40 : 200, who, i, rows = 0, deltas = 0;
    pid_t pids[2];
    fx x;
    ak_snapshot *counter, *latest;
    ak_result rc;
    ak_error e;
    fresh_root();
    fflush(NULL);
    for (who = 0; who < 2; who++)
        if ((pids[who] = fork()) == 0) _exit(hammer(who, rounds) ? 0 : 1);
    for (who = 0; who < 2; who++) {
        int status = 0;
        CHECK(pids[who] > 0 && waitpid(pids[who], &status, 0) == pids[who]);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %d failed a save", who);
    }
    CHECK_OK(fx_open(&x, 0, 0, 0));
    counter = get_id(&x, "counter", &rc, &e);
    CHECK(rc == AK_OK && counter && counter->state.custom);
    CHECK_EQ(counter ? ak_json_int_or(ak_json_get(counter->state.custom->value, "n"), -1) : -1, 2 * rounds);
    ak_snapshot_release(counter);
    /* every row is there and is its parent's messages plus its own turn */
    for (who = 0; who < 2; who++)
        for (i = 0; i < rounds; i++) {
            char id[32], want[48];
            ak_snapshot *s, *p = NULL;
            size_t n, j;
            snprintf(id, sizeof id, "p%d-%d", who, i);
            s = get_id(&x, id, &rc, &e);
            CHECK_MSG(rc == AK_OK && s, "%s: %s", id, e.message);
            if (!s) continue;
            rows++;
            deltas += !strcmp(row_kind(id), "delta");
            if (s->parent_id) p = get_id(&x, s->parent_id, &rc, &e);
            CHECK_MSG(!s->parent_id || p, "%s: parent %s", id, s->parent_id);
            n = ak_msgs_count(p ? p->state.messages : NULL);
            CHECK_EQ(ak_msgs_count(s->state.messages), n + 2);
            snprintf(want, sizeof want, "%s: answer", id);
            CHECK_STR(msg_text(ak_msgs_at(s->state.messages, n + 1)), want);
            for (j = 0; p && j < n; j++)
                if (!ak_json_equal(ak_msgs_at(p->state.messages, j), ak_msgs_at(s->state.messages, j))) {
                    CHECK_MSG(0, "%s: message %zu differs from its parent's", id, j);
                    break;
                }
            ak_snapshot_release(s), ak_snapshot_release(p);
        }
    CHECK_EQ(rows, 2 * rounds);
    CHECK(deltas > 0);
    latest = get_session(&x, "hammer", &rc, &e);
    CHECK(rc == AK_OK && latest);
    ak_snapshot_release(latest);
    fx_close(&x);
    t_rm_rf(root);
}

int main(int argc, char **argv) {
    self_path = argv[0];
    if (argc == 5 && !strcmp(argv[1], "set-status")) return set_status_main(argv[2], argv[3], argv[4]);
    RUN(init_validates_its_desc);
    RUN(rows_round_trip_and_checkpoints_are_genkit_snapshots);
    RUN(deltas_store_only_new_messages_with_periodic_checkpoints);
    RUN(a_child_process_writes_and_the_parent_reads);
    RUN(branches_and_edits_are_checkpoints);
    RUN(session_lookup_uses_the_pointer_and_falls_back_to_a_scan);
    RUN(corrupt_and_truncated_rows_are_data_loss_and_hide_nothing);
    RUN(hostile_delta_files_fail_cleanly);
    RUN(unsafe_ids_and_prefixes_are_rejected);
    RUN(tenants_are_separate_directories);
    RUN(pruning_keeps_what_deltas_need);
    RUN(rewriting_a_rows_messages_keeps_its_children_loadable);
    RUN(watch_and_poll_see_other_processes);
    RUN(the_cache_spares_reads_when_resuming);
    RUN(ids_skips_and_self_parents);
    RUN(allocation_failures_leak_nothing);
    RUN(every_failed_step_leaves_old_or_new);
    RUN(every_crashed_step_leaves_old_or_new);
    RUN(two_processes_hammering_one_session_lose_nothing);
    return t_summary();
}
