/* session layer: message lists, state/snapshot JSON, ids, timestamps, the in-memory store */
#include "test.h"

static ak_json *parse(ak_json_doc *d, const char *text) {
    ak_json *v = NULL;
    if (ak_json_parse_value(d, text, strlen(text), NULL, &v, NULL) != AK_OK) abort();
    return v;
}

static const char *write_json(const ak_json *v) {
    static char out[16384];
    ak_buf b;
    ak_buf_init_fixed(&b, out, sizeof out);
    ak_json_write(v, &b);
    return out;
}

static const char *msg_text(const ak_json *m) { return ak_json_str(ak_json_path(m, "content[0].text")); }

static void message_lists_share_prefixes(void) {
    t_alloc ta;
    const ak_allocator *a = t_alloc_init(&ta, 0);
    ak_json_doc d;
    ak_msgs *m = NULL, *snap, *branch;
    const ak_json *all[8];
    char text[64];
    int i;
    ak_json_doc_init(&d, NULL);
    for (i = 0; i < 3; i++) {
        snprintf(text, sizeof text, "{\"role\":\"user\",\"content\":[{\"text\":\"m%d\"}]}", i);
        CHECK_OK(ak_msgs_append(a, &m, parse(&d, text)));
    }
    snap = ak_msgs_retain(m); /* a snapshot holds the list */
    CHECK_OK(ak_msgs_append(a, &m, parse(&d, "{\"role\":\"model\",\"content\":[{\"text\":\"m3\"}]}")));
    CHECK(m != snap && m->prev == snap && m->prev_count == 3);
    CHECK_EQ(ak_msgs_count(m), 4);
    CHECK_EQ(ak_msgs_count(snap), 3);
    CHECK_STR(msg_text(ak_msgs_at(m, 3)), "m3");
    CHECK_STR(msg_text(ak_msgs_at(m, 1)), "m1");
    CHECK(ak_msgs_at(m, 4) == NULL);
    ak_msgs_collect(m, all);
    for (i = 0; i < 4; i++) {
        snprintf(text, sizeof text, "m%d", i);
        CHECK_STR(msg_text(all[i]), text);
    }
    /* a branch from the snapshot: drop the last message, add another */
    branch = ak_msgs_retain(snap);
    CHECK_OK(ak_msgs_truncate(a, &branch, 2));
    CHECK_OK(ak_msgs_append(a, &branch, parse(&d, "{\"role\":\"user\",\"content\":[{\"text\":\"b\"}]}")));
    CHECK_EQ(ak_msgs_count(branch), 3);
    ak_msgs_collect(branch, all);
    CHECK_STR(msg_text(all[0]), "m0");
    CHECK_STR(msg_text(all[1]), "m1");
    CHECK_STR(msg_text(all[2]), "b");
    CHECK_STR(msg_text(ak_msgs_at(snap, 2)), "m2"); /* untouched */
    /* exclusive truncation works in place */
    CHECK_OK(ak_msgs_truncate(a, &m, 3));
    CHECK_EQ(ak_msgs_count(m), 3);
    CHECK_STR(write_json(ak_msgs_to_json(branch, &d)),
              "[{\"role\":\"user\",\"content\":[{\"text\":\"m0\"}]},{\"role\":\"user\",\"content\":[{\"text\":\"m1\"}]},"
              "{\"role\":\"user\",\"content\":[{\"text\":\"b\"}]}]");
    CHECK_EQ(ak_msgs_truncate(a, &m, 9), AK_ERR_INVALID_ARGUMENT);
    ak_msgs_release(m);
    ak_msgs_release(snap);
    ak_msgs_release(branch);
    CHECK_EQ(ta.live, 0);
    ak_json_doc_free(&d);
}

static void state_and_snapshot_round_trip_json(void) {
    t_alloc ta;
    const ak_allocator *a = t_alloc_init(&ta, 0);
    ak_json_doc d;
    ak_session_state st;
    ak_snapshot *s, *back;
    ak_error e;
    const char *state_json = "{\"custom\":{\"counter\":2},\"artifacts\":[{\"name\":\"a\",\"parts\":[{\"text\":\"x\"}]}],"
                             "\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}],\"sessionId\":\"s1\"}";
    const char *snap_json = "{\"snapshotId\":\"id1\",\"sessionId\":\"s1\",\"createdAt\":\"2026-11-21T10:00:00.123Z\","
                            "\"updatedAt\":\"2026-11-21T10:00:00.123Z\",\"state\":{\"artifacts\":[],\"messages\":[],\"sessionId\":\"s1\"},"
                            "\"parentId\":\"id0\",\"status\":\"failed\",\"finishReason\":\"failed\","
                            "\"error\":{\"status\":\"INTERNAL\",\"message\":\"boom\"}}";
    ak_json_doc_init(&d, NULL);
    CHECK_OK(ak_session_state_from_json(a, parse(&d, state_json), &st, &e));
    CHECK_STR(st.session_id, "s1");
    CHECK_STR(write_json(ak_session_state_to_json(&st, &d)), state_json);
    ak_session_state_free(a, &st);
    CHECK_EQ(ak_session_state_from_json(a, parse(&d, "{\"messages\":[{\"role\":\"bot\",\"content\":[]}]}"), &st, &e),
             AK_ERR_INVALID_ARGUMENT);
    CHECK(strstr(e.message, "messages[0]") != NULL);
    CHECK_EQ(ak_session_state_from_json(a, parse(&d, "{\"artifacts\":[{\"parts\":7}]}"), &st, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_session_state_from_json(a, parse(&d, "{\"sessionId\":\"\"}"), &st, &e), AK_ERR_INVALID_ARGUMENT);

    CHECK_OK(ak_snapshot_from_json(a, parse(&d, snap_json), &s, &e));
    CHECK_EQ(s->status, AK_SNAPSHOT_FAILED);
    CHECK_EQ(s->created_at, 1795255200123LL);
    CHECK_STR(write_json(ak_snapshot_to_json(s, AK_SNAPSHOT_NONE, &d)), snap_json);
    back = ak_snapshot_clone(s);
    CHECK_OK(ak_snapshot_set_error(back, AK_STATUS_ABORTED, "x", NULL));
    CHECK_STR(write_json(s->error->value), "{\"status\":\"INTERNAL\",\"message\":\"boom\"}");
    ak_snapshot_release(back);
    s->status = AK_SNAPSHOT_PENDING;
    s->heartbeat_at = 1000;
    CHECK_EQ(ak_snapshot_read_status(s, 60000), AK_SNAPSHOT_PENDING);
    CHECK_EQ(ak_snapshot_read_status(s, 61001), AK_SNAPSHOT_EXPIRED);
    ak_snapshot_release(s);
    /* corrupt rows are DATA_LOSS with a reason, never a crash */
    CHECK_EQ(ak_snapshot_from_json(a, parse(&d, "[]"), &s, &e), AK_ERR_DATA_LOSS);
    CHECK_EQ(ak_snapshot_from_json(a, parse(&d, "{\"sessionId\":\"x\"}"), &s, &e), AK_ERR_DATA_LOSS);
    CHECK_EQ(ak_snapshot_from_json(a, parse(&d, "{\"snapshotId\":\"x\",\"createdAt\":\"yesterday\"}"), &s, &e), AK_ERR_DATA_LOSS);
    CHECK_EQ(ak_snapshot_from_json(a, parse(&d, "{\"snapshotId\":\"x\",\"status\":\"weird\"}"), &s, &e), AK_ERR_DATA_LOSS);
    CHECK_EQ(ak_snapshot_from_json(a, parse(&d, "{\"snapshotId\":\"x\",\"state\":{\"messages\":5}}"), &s, &e), AK_ERR_DATA_LOSS);
    CHECK(s == NULL);
    CHECK_EQ(ta.live, 0);
    ak_json_doc_free(&d);
}

static void timestamps_and_ids(void) {
    int64_t ms = 0;
    char ts[25];
    CHECK_OK(ak_iso8601_parse("1970-01-01T00:00:00Z", 20, &ms));
    CHECK_EQ(ms, 0);
    CHECK_OK(ak_iso8601_parse("2000-02-29T23:59:59.5Z", 22, &ms));
    ak_iso8601(ms, ts);
    CHECK_STR(ts, "2000-02-29T23:59:59.500Z");
    CHECK_EQ(ak_iso8601_parse("2000-13-01T00:00:00Z", 20, &ms), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_iso8601_parse("2000-01-01 00:00:00Z", 20, &ms), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_iso8601_parse("2000-01-01T00:00:00.Z", 21, &ms), AK_ERR_INVALID_ARGUMENT);
    CHECK(ak_id_is_safe("6f1c2e4a-0b1d-4c5e-9f00-123456789abc"));
    CHECK(ak_id_is_safe("my-app-session-123"));
    CHECK(!ak_id_is_safe("../etc/passwd"));
    CHECK(!ak_id_is_safe("a/b"));
    CHECK(!ak_id_is_safe("a\\b"));
    CHECK(!ak_id_is_safe(".."));
    CHECK(!ak_id_is_safe(""));
    CHECK(!ak_id_is_safe("caf\xC3\xA9"));
}

/* mutator that writes a prepared snapshot */
static ak_result put(void *ud, const ak_snapshot *cur, ak_snapshot **next) {
    (void)cur;
    *next = ak_snapshot_retain((ak_snapshot *)ud);
    return AK_OK;
}
/* Records the id of the current row (the snapshot is only valid during the call). */
static ak_result skip(void *ud, const ak_snapshot *cur, ak_snapshot **next) {
    snprintf((char *)ud, 64, "%s", cur ? cur->id : "(none)");
    *next = NULL;
    return AK_OK;
}

static int watch_calls;
static void on_write(void *ud, const ak_snapshot *s) { (void)ud; watch_calls += s->status == AK_SNAPSHOT_ABORTED; }

static ak_result save_snap(ak_memstore *m, const char *id, const char *sid, const char *parent, int64_t created) {
    char written[AK_ID_MAX + 1];
    ak_snapshot *s = ak_snapshot_new(ak_context_allocator(m->ctx), id, sid, parent, NULL);
    ak_result rc;
    if (!s) return AK_ERR_OUT_OF_MEMORY;
    s->created_at = created;
    s->status = AK_SNAPSHOT_COMPLETED;
    rc = m->store.save(&m->store, id, put, s, NULL, written, NULL);
    ak_snapshot_release(s);
    return rc;
}

static void memstore_finds_snapshots_and_latest_leaves(void) {
    ak_context ctx;
    ak_context_desc desc;
    t_alloc ta;
    ak_memstore m;
    ak_snapshot *got, *abort_snap;
    char seen[64] = "";
    ak_error e;
    void *tok;
    char written[AK_ID_MAX + 1], id[32];
    int i;
    memset(&desc, 0, sizeof desc);
    desc.allocator = *t_alloc_init(&ta, 0);
    ak_context_init(&ctx, &desc);
    ak_memstore_init(&m, &ctx);
    CHECK_OK(save_snap(&m, "a", "s", NULL, 100));
    CHECK_OK(save_snap(&m, "b", "s", "a", 200));
    CHECK_OK(m.store.get(&m.store, NULL, "s", NULL, &got, &e));
    CHECK_STR(got ? got->id : NULL, "b");
    ak_snapshot_release(got);
    /* branch: c and d both children of b; d newer */
    CHECK_OK(save_snap(&m, "c", "s", "b", 300));
    CHECK_OK(save_snap(&m, "d", "s", "b", 400));
    CHECK_OK(m.store.get(&m.store, NULL, "s", NULL, &got, &e));
    CHECK_STR(got ? got->id : NULL, "d");
    ak_snapshot_release(got);
    /* same createdAt: the later write wins */
    CHECK_OK(save_snap(&m, "e", "s", "b", 400));
    CHECK_OK(m.store.get(&m.store, NULL, "s", NULL, &got, &e));
    CHECK_STR(got ? got->id : NULL, "e");
    ak_snapshot_release(got);
    m.reject_branching = 1;
    CHECK_EQ(m.store.get(&m.store, NULL, "s", NULL, &got, &e), AK_ERR_STATE);
    CHECK_EQ(e.status, AK_STATUS_FAILED_PRECONDITION);
    m.reject_branching = 0;
    /* unknown ids and sessions are not errors */
    CHECK_OK(m.store.get(&m.store, "zzz", NULL, NULL, &got, &e));
    CHECK(got == NULL);
    CHECK_OK(m.store.get(&m.store, NULL, "nobody", NULL, &got, &e));
    CHECK(got == NULL);
    CHECK_EQ(m.store.get(&m.store, "a", "s", NULL, &got, &e), AK_ERR_INVALID_ARGUMENT);
    /* a cycle has no leaf */
    CHECK_OK(save_snap(&m, "x", "cyc", "y", 1));
    CHECK_OK(save_snap(&m, "y", "cyc", "x", 2));
    CHECK_EQ(m.store.get(&m.store, NULL, "cyc", NULL, &got, &e), AK_ERR_STATE);
    CHECK(strstr(e.message, "cyclic") != NULL);
    CHECK_OK(save_snap(&m, "self", "me", "self", 1)); /* Genkit's detached parentId == own id */
    CHECK_EQ(m.store.get(&m.store, NULL, "me", NULL, &got, &e), AK_ERR_STATE);
    /* a mutator sees the current row and may skip */
    CHECK_OK(m.store.save(&m.store, "b", skip, seen, NULL, written, &e));
    CHECK(strcmp(seen, "b") == 0 && written[0] == 0);
    /* watchers hear writes to their id */
    CHECK_OK(m.store.watch(&m.store, "b", on_write, NULL, NULL, &tok));
    abort_snap = ak_snapshot_new(ak_context_allocator(&ctx), "b", "s", "a", NULL);
    abort_snap->status = AK_SNAPSHOT_ABORTED;
    CHECK_OK(m.store.save(&m.store, "b", put, abort_snap, NULL, written, &e));
    CHECK_STR(written, "b");
    CHECK_EQ(watch_calls, 1);
    m.store.unwatch(&m.store, tok);
    CHECK_OK(m.store.save(&m.store, "b", put, abort_snap, NULL, written, &e));
    CHECK_EQ(watch_calls, 1);
    ak_snapshot_release(abort_snap);
    /* many snapshots: the table grows */
    for (i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "n%d", i);
        CHECK_OK(save_snap(&m, id, "big", i ? written : NULL, i));
        snprintf(written, sizeof written, "%s", id);
    }
    CHECK_OK(m.store.get(&m.store, NULL, "big", NULL, &got, &e));
    CHECK_STR(got ? got->id : NULL, "n499");
    ak_snapshot_release(got);
    CHECK_OK(m.store.get(&m.store, "n250", NULL, NULL, &got, &e));
    CHECK_STR(got ? got->parent_id : NULL, "n249");
    ak_snapshot_release(got);
    ak_memstore_free(&m);
    CHECK_EQ(ta.live, 0);
}

static void memstore_survives_allocation_failures(void) {
    long long n;
    int ok = 0;
    for (n = 1; n < 2000 && !ok; n++) {
        ak_context ctx;
        ak_context_desc desc;
        t_alloc ta;
        ak_memstore m;
        ak_snapshot *got = NULL;
        char id[16];
        int i, saved = 0;
        memset(&desc, 0, sizeof desc);
        desc.allocator = *t_alloc_init(&ta, n);
        ak_context_init(&ctx, &desc);
        ak_memstore_init(&m, &ctx);
        for (i = 0; i < 70; i++) {
            snprintf(id, sizeof id, "s%d", i);
            if (save_snap(&m, id, "sess", NULL, i) == AK_OK) saved++;
        }
        if (saved == 70 && m.store.get(&m.store, "s69", NULL, NULL, &got, NULL) == AK_OK && got) ok = 1;
        ak_snapshot_release(got);
        ak_memstore_free(&m);
        CHECK_EQ(ta.live, 0);
    }
    CHECK(ok);
}

/* A snapshot whose list is parent's first `keep` messages plus one new message. */
static ak_snapshot *turn_snap(ak_context *ctx, ak_json_doc *d, const char *id, const char *parent, const ak_snapshot *from,
                              size_t keep, const char *text) {
    const ak_allocator *a = ak_context_allocator(ctx);
    ak_snapshot *s = ak_snapshot_new(a, id, "sess", parent, from ? &from->state : NULL);
    ak_json *msg = ak_msg_new(d, "user");
    ak_msg_add(msg, ak_part_text(d, text));
    if (from) ak_msgs_truncate(a, &s->state.messages, keep);
    ak_msgs_append(a, &s->state.messages, msg);
    s->status = AK_SNAPSHOT_COMPLETED;
    return s;
}

static void memstore_rebuilds_cold_rows_exactly(void) {
    ak_context ctx;
    ak_memstore m;
    ak_json_doc d;
    ak_snapshot *prev = NULL, *s, *got;
    char id[64], parent[64] = "", text[128], written[AK_ID_MAX + 1];
    const char *odd = "tab\t quote\" emoji \xF0\x9F\x98\x80 ctrl \x01 {\"role\":\"user\" \"}]}";
    int i;
    ak_context_init(&ctx, NULL);
    ak_memstore_init(&m, &ctx);
    ak_json_doc_init(&d, NULL);
    /* 3 x AK_MEMSTORE_HOT turns: the early rows go cold and must rebuild from their ancestors */
    for (i = 0; i < 3 * AK_MEMSTORE_HOT; i++) {
        if (i % 2) snprintf(id, sizeof id, "%08x-0000-4000-8000-%012x", i, i); /* UUIDs */
        else snprintf(id, sizeof id, "turn-%d", i);                          /* and not */
        snprintf(text, sizeof text, "message %d %s", i, i == 5 ? odd : "");
        s = turn_snap(&ctx, &d, id, i ? parent : NULL, prev, (size_t)i, text);
        CHECK_OK(m.store.save(&m.store, id, put, s, NULL, written, NULL));
        CHECK_STR(written, id);
        ak_snapshot_release(prev);
        prev = s;
        snprintf(parent, sizeof parent, "%s", id);
    }
    ak_snapshot_release(prev);
    CHECK_OK(m.store.get(&m.store, "turn-6", NULL, NULL, &got, NULL));
    CHECK(got != NULL);
    if (got) {
        CHECK_EQ(ak_msgs_count(got->state.messages), 7);
        CHECK_STR(ak_json_str(ak_json_path(ak_msgs_at(got->state.messages, 5), "content[0].text")),
                  "message 5 tab\t quote\" emoji \xF0\x9F\x98\x80 ctrl \x01 {\"role\":\"user\" \"}]}");
        CHECK_STR(got->parent_id, "00000005-0000-4000-8000-000000000005");
        CHECK_STR(got->session_id, "sess");
    }
    /* a branch from turn-6 keeping only 3 of its messages */
    s = turn_snap(&ctx, &d, "branch", "turn-6", got, 3, "branched");
    CHECK_OK(m.store.save(&m.store, "branch", put, s, NULL, written, NULL));
    ak_snapshot_release(s);
    ak_snapshot_release(got);
    /* push everything cold again, then read the branch */
    for (i = 0; i < AK_MEMSTORE_HOT; i++) {
        CHECK_OK(m.store.get(&m.store, i % 2 ? "turn-100" : "turn-150", NULL, NULL, &got, NULL));
        ak_snapshot_release(got);
    }
    CHECK_OK(m.store.get(&m.store, "branch", NULL, NULL, &got, NULL));
    CHECK(got && ak_msgs_count(got->state.messages) == 4);
    if (got) CHECK_STR(ak_json_str(ak_json_path(ak_msgs_at(got->state.messages, 3), "content[0].text")), "branched");
    ak_snapshot_release(got);
    CHECK_OK(m.store.get(&m.store, NULL, "sess", NULL, &got, NULL)); /* the newest leaf */
    CHECK(got && strcmp(got->id, "branch") == 0);
    ak_snapshot_release(got);
    ak_memstore_free(&m);
    ak_json_doc_free(&d);
    CHECK_EQ(ctx.mem_in_use, 0);
}

int main(void) {
    RUN(message_lists_share_prefixes);
    RUN(state_and_snapshot_round_trip_json);
    RUN(timestamps_and_ids);
    RUN(memstore_finds_snapshots_and_latest_leaves);
    RUN(memstore_survives_allocation_failures);
    RUN(memstore_rebuilds_cold_rows_exactly);
    return t_summary();
}
