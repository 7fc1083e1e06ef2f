/* allocation failure, end to end: one scripted conversation (a tool that changes custom
   state and adds an artifact, an interrupt and its resume, a detached turn, every turn
   saved to a file store in a temporary directory), run once to count its allocations and
   then again failing the Nth allocation, for every N up to that count. Every run must end
   in success or clean errors (a status and a message, never AK_PENDING), leak nothing, and
   leave a store that a fresh store with a healthy allocator reads completely: the last
   snapshot a turn reported is there, completed, ending with the text that turn returned,
   and no row is torn. Under valgrind ($AK_VALGRIND set) every 5th N is run instead. */
#include "test_dirs.h"
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the temporary store directory ------------------------------------------------------- */

static char root[512];

static void make_root(void) { t_make_dir(root, sizeof root, "akoom"); }

/* ---- the conversation ---------------------------------------------------------------------- */

static int64_t now_ms = 1700000000000LL;
static int64_t fake_clock(void *ud) { (void)ud; return now_ms; }
static void fake_sleep(void *ud, int64_t ms) { (void)ud; now_ms += ms; }

/* Durability is test_filestore's business: skipping fsync keeps hundreds of runs fast. */
static int no_sync(void *ud, void *file) { (void)ud, (void)file; return 0; }
static int no_sync_dir(void *ud, const char *dir) { (void)ud, (void)dir; return 0; }

/* getWeather: counts visits in the custom state, files a report artifact, answers. */
static ak_result get_weather(ak_tool_call *c) {
    ak_json_doc *d = c->doc;
    const char *city = ak_json_get_str(c->input, "city");
    ak_json *custom = ak_json_new_object(d), *art = ak_json_new_object(d), *parts = ak_json_new_array(d);
    ak_json *out = ak_json_new_object(d);
    ak_json_set_int(d, custom, "visits", ak_json_int_or(ak_json_get(ak_runner_custom(c->session), "visits"), 0) + 1);
    ak_json_set_str(d, art, "name", "weather.md");
    ak_json_push(parts, ak_part_text(d, city ? city : "?"));
    ak_json_set(d, art, "parts", parts);
    ak_json_set_str(d, out, "city", city);
    ak_json_set_int(d, out, "tempC", 21);
    if (d->err || ak_runner_set_custom(c->session, custom) != AK_OK || ak_runner_add_artifacts(c->session, art) != AK_OK)
        return ak_tool_fail(c, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return ak_tool_return(c, out);
}

static const ak_tool tools[] = {
    {"getWeather", "Weather for a city.",
     "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}", NULL, get_weather,
     NULL, 0},
    {"approveTransfer", "Asks a human.", "{\"type\":\"object\",\"properties\":{\"amount\":{\"type\":\"number\"}}}", NULL,
     NULL, NULL, 1},
};

/* What one run achieved. */
typedef struct outcome {
    int steps;                   /* steps that succeeded */
    int failures;                /* steps that failed cleanly */
    char good[AK_ID_MAX + 1];    /* the last snapshot a finished turn reported */
    char good_text[64];          /* the text that turn returned */
    char session[AK_ID_MAX + 1];
    char view[2048];             /* what the chat tracks at the end: messages, custom, artifacts */
    const char *unclean;         /* a step that ended badly, or NULL */
} outcome;

/* Records a step's result: success, or a clean error. */
static int step_done(outcome *o, const char *what, ak_result rc, const ak_error *e) {
    if (rc == AK_OK) {
        o->steps++;
        return 1;
    }
    o->failures++;
    if (rc == AK_PENDING || !e->message[0] || !ak_utf8_valid(e->message, strlen(e->message))) o->unclean = what;
    return 0;
}

/* A turn that finished: its snapshot is the last good one. */
static void turn_done(outcome *o, const char *what, ak_chat *chat, ak_response *r, ak_result rc, const ak_error *e) {
    if (step_done(o, what, rc, e) && r->snapshot_id) {
        snprintf(o->good, sizeof o->good, "%s", r->snapshot_id);
        snprintf(o->good_text, sizeof o->good_text, "%s", r->text);
    }
    if (ak_chat_session_id(chat)) snprintf(o->session, sizeof o->session, "%s", ak_chat_session_id(chat));
    ak_response_free(r);
}

/* The JSON of a step's input; NULL when out of memory (the step is then skipped, which
   counts as a clean failure). */
static ak_json *parse(outcome *o, ak_json_doc *d, const char *text) {
    ak_json *v = NULL;
    if (ak_json_parse_value(d, text, strlen(text), NULL, &v, NULL) != AK_OK) o->failures++;
    return v;
}

/* The detached turn: runs in the background while the agent is pumped, then its row says
   how it went. */
static void detached_turn(outcome *o, ak_agent *agent, ak_chat *chat, ak_json_doc *d) {
    char id[AK_ID_MAX + 1];
    ak_error e;
    ak_json *snap = NULL, *in = parse(o, d, "{\"message\":{\"role\":\"user\",\"content\":[{\"text\":\"stream a b c\"}]}}");
    int pumps = 0;
    if (!in || !step_done(o, "detach", ak_chat_detach(chat, in, id, &e), &e)) return;
    while (ak_agent_pump(agent, 0) == AK_PENDING && ++pumps < 1000) now_ms += 100;
    if (step_done(o, "read the detached turn", ak_chat_get_snapshot(chat, id, d, &snap, &e), &e) &&
        ak_json_get_str(snap, "status") &&
        !strcmp(ak_json_get_str(snap, "status"), "completed")) {
        snprintf(o->good, sizeof o->good, "%s", id);
        snprintf(o->good_text, sizeof o->good_text, "a b c");
    }
}

/* The chat's view as JSON text: a run in which no step failed must end with the very same
   view as a healthy run (an allocation failure swallowed on the way would show here). */
static void chat_view(outcome *o, const ak_chat *chat) {
    ak_buf b;
    ak_buf_init_fixed(&b, o->view, sizeof o->view);
    ak_json_write(ak_chat_messages(chat), &b);
    ak_json_write(ak_chat_custom(chat), &b);
    ak_json_write(ak_chat_artifacts(chat), &b);
}

static void open_store(ak_filestore *fs, ak_context *ctx, outcome *o) {
    ak_filestore_desc fd;
    ak_error e;
    memset(&fd, 0, sizeof fd);
    fd.dir = root;
    fd.checkpoint_every = 3; /* deltas and checkpoints both */
    ak_file_ops_default(&fd.ops);
    fd.ops.sync = no_sync, fd.ops.sync_dir = no_sync_dir;
    step_done(o, "open the store", ak_filestore_init(fs, ctx, &fd, &e), &e);
}

static void conversation(const ak_allocator *a, outcome *o) {
    ak_context ctx;
    ak_context_desc cd;
    ak_model model;
    ak_filestore fs;
    ak_agent agent;
    ak_agent_desc desc;
    ak_chat chat;
    ak_response r;
    ak_error e;
    ak_json_doc d;
    ak_json *respond;
    memset(o, 0, sizeof *o);
    memset(&cd, 0, sizeof cd);
    cd.allocator = *a;
    cd.now_ms = fake_clock, cd.mono_ms = fake_clock, cd.sleep_ms = fake_sleep;
    ak_context_init(&ctx, &cd);
    ak_scripted_model_init(&model);
    open_store(&fs, &ctx, o);
    if (!fs.ctx) return;
    ak_json_doc_init(&d, a);
    memset(&desc, 0, sizeof desc);
    desc.name = "oomAgent";
    desc.model = &model;
    desc.system = "You are a deterministic test agent.";
    desc.tools = tools;
    desc.tool_count = 2;
    desc.store = &fs.store;
    if (step_done(o, "agent init", ak_agent_init(&agent, &ctx, &desc, &e), &e)) {
        if (step_done(o, "chat init", ak_chat_init(&chat, &agent, NULL, &e), &e)) {
            turn_done(o, "hello", &chat, &r, ak_chat_send(&chat, "hello", &r, &e), &e);
            turn_done(o, "tool", &chat, &r, ak_chat_send(&chat, "weather Oslo", &r, &e), &e);
            turn_done(o, "interrupt", &chat, &r, ak_chat_send(&chat, "transfer 5", &r, &e), &e);
            respond = parse(o, &d, "[{\"toolResponse\":{\"name\":\"approveTransfer\",\"ref\":\"t1\",\"output\":{\"approved\":true}}}]");
            if (respond) turn_done(o, "resume", &chat, &r, ak_chat_resume(&chat, respond, NULL, &r, &e), &e);
            detached_turn(o, &agent, &chat, &d);
            chat_view(o, &chat);
            ak_chat_free(&chat);
        }
        ak_agent_free(&agent);
    }
    ak_json_doc_free(&d);
    ak_filestore_free(&fs);
}

/* ---- what a healthy reader finds afterwards -------------------------------------------------- */

/* Returns NULL when the store holds the last good snapshot and every row reads, else what
   is wrong (a static string). */
static const char *store_check(const outcome *o) {
    static char why[256];
    ak_context ctx;
    ak_filestore fs;
    ak_filestore_desc fd;
    ak_snapshot *s = NULL;
    ak_error e;
    ak_buf text;
    char dir[600];
    DIR *dp;
    struct dirent *de;
    why[0] = 0;
    ak_context_init(&ctx, NULL);
    memset(&fd, 0, sizeof fd);
    fd.dir = root;
    if (ak_filestore_init(&fs, &ctx, &fd, &e) != AK_OK) return "the store does not open";
    if (o->good[0]) {
        ak_buf_init(&text, NULL);
        if (fs.store.get(&fs.store, o->good, NULL, NULL, &s, &e) != AK_OK || !s)
            snprintf(why, sizeof why, "the last good snapshot does not load: %s", s ? "" : e.message);
        else if (s->status != AK_SNAPSHOT_COMPLETED)
            snprintf(why, sizeof why, "the last good snapshot is %s", ak_snapshot_status_name(s->status));
        else if (ak_msg_text(ak_msgs_at(s->state.messages, ak_msgs_count(s->state.messages) - 1), &text),
                 strcmp(text.ptr ? text.ptr : "", o->good_text) != 0)
            snprintf(why, sizeof why, "the last good snapshot ends with '%s', not '%s'", text.ptr ? text.ptr : "", o->good_text);
        ak_snapshot_release(s);
        ak_buf_free(&text);
    }
    if (!why[0] && o->session[0] && fs.store.get(&fs.store, NULL, o->session, NULL, &s, &e) != AK_OK)
        snprintf(why, sizeof why, "the session does not load: %s", e.message);
    else if (!why[0])
        ak_snapshot_release(s);
    /* every row reads: nothing torn */
    snprintf(dir, sizeof dir, "%s/global", root);
    dp = opendir(dir);
    while (!why[0] && dp && (de = readdir(dp)) != NULL) {
        size_t n = strlen(de->d_name);
        char id[256];
        if (de->d_name[0] == '.' || n <= 5 || n - 5 >= sizeof id || strcmp(de->d_name + n - 5, ".json") != 0) continue;
        memcpy(id, de->d_name, n - 5);
        id[n - 5] = 0;
        s = NULL;
        if (fs.store.get(&fs.store, id, NULL, NULL, &s, &e) != AK_OK || !s)
            snprintf(why, sizeof why, "row %s does not load: %s", id, e.message);
        ak_snapshot_release(s);
    }
    if (dp) closedir(dp);
    ak_filestore_free(&fs);
    return why[0] ? why : NULL;
}

/* ---- the tests ------------------------------------------------------------------------------- */

static long long total_allocations;
static char healthy_view[2048];

static void conversation_runs_whole_with_a_healthy_allocator(void) {
    t_alloc ta;
    outcome o;
    make_root();
    conversation(t_alloc_init(&ta, 0), &o);
    total_allocations = ta.count;
    CHECK_EQ(o.failures, 0);
    CHECK_EQ(o.steps, 9);
    CHECK(o.unclean == NULL);
    CHECK_STR(o.good_text, "a b c");
    CHECK(strstr(o.view, "{\"visits\":1}[{\"name\":\"weather.md\",\"parts\":[{\"text\":\"Oslo\"}]}]") != NULL);
    snprintf(healthy_view, sizeof healthy_view, "%s", o.view);
    CHECK_EQ(ta.live, 0);
    CHECK(store_check(&o) == NULL);
    CHECK(total_allocations > 300); /* the failure points the next test walks through */
    t_rm_rf(root);
}

static void every_allocation_failure_ends_cleanly_and_keeps_the_store(void) {
    long long n, step = getenv("AK_VALGRIND") ? 5 : 1, runs = 0, failed_runs = 0;
    t_alloc ta;
    outcome o;
    for (n = 1; n <= total_allocations; n += step) {
        const char *bad;
        make_root();
        conversation(t_alloc_init(&ta, n), &o);
        runs++;
        failed_runs += o.failures > 0;
        CHECK_MSG(ta.live == 0, "failing allocation %lld of %lld leaked %lld bytes", n, total_allocations, ta.live);
        CHECK_MSG(o.unclean == NULL, "failing allocation %lld: '%s' did not end cleanly", n, o.unclean);
        CHECK_MSG(o.failures || !strcmp(o.view, healthy_view), "failing allocation %lld: nothing failed, yet the chat ended with %s",
                  n, o.view);
        bad = store_check(&o);
        CHECK_MSG(bad == NULL, "failing allocation %lld: %s", n, bad);
        t_rm_rf(root);
        if (t_current_failed) break; /* one report is enough */
    }
    CHECK(failed_runs > runs / 2); /* the failures did reach the conversation */
    printf("%lld allocations, %lld failure points run, %lld ended with a failed step\n", total_allocations, runs,
           failed_runs);
}

int main(void) {
    RUN(conversation_runs_whole_with_a_healthy_allocator);
    RUN(every_allocation_failure_ends_cleanly_and_keeps_the_store);
    return t_summary();
}
