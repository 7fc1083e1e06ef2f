/* libFuzzer target: the remote-agent client's handling of what a server answers. The bytes
   are an agent server's response body (stream frames, or a JSON body), delivered through
   the replay transport to ak_remote_agent and a chat on it, with the faults real networks
   add.

   Input: byte 0 = options, byte 1 = delivery, byte 2 = the allocation to fail (0 = none),
   the rest = the response body (queued for every request the client makes).
     bits 0-1  what the client does: 0 one streamed turn (ak_chat_start/poll), 1 two turns
               on the same chat (the second sends back what the first tracked), 2 getSnapshot,
               3 abort
     bits 2-4  HTTP status: 200 200 200 404 429 500 503 401
     bits 5-6  fault: none, reset after some body bytes, a clean close after some body
               bytes (truncated), connection refused
     bit 7     pumped transport (answers arrive on later polls) with a delay of byte1 * 50 ms
               against a 5 s request timeout, on a fake clock; else synchronous
   Byte 1 also sets the piece size (byte1 % 32; 0 = whole) and where a fault cuts the body.

   Checks: every call ends, within bounded polls, in a result or a clean error (a status
   and a non-empty UTF-8 message); a finished turn gives a response with UTF-8 text, and the
   chat keeps only ids it can hold (1..AK_ID_MAX bytes) and an array of messages; every
   request the client sent has a JSON body (a hostile answer never corrupts the next
   request); nothing leaks. */
#define AGENTKIT_IMPLEMENTATION
#include "../agentkit.h"
#include <stdlib.h>
#include <string.h>
#include "fuzz_heap.h"

typedef struct fz_env {
    fz_heap heap;
    int64_t now;
    ak_context ctx;
} fz_env;

/* Time passes a millisecond per look, so a loop that waits on the clock always ends. */
static int64_t fz_clock(void *ud) { return ((fz_env *)ud)->now++; }
static void fz_sleep(void *ud, int64_t ms) { ((fz_env *)ud)->now += ms; }

static void fz_env_init(fz_env *e, long long fail_at) {
    ak_context_desc cd;
    memset(e, 0, sizeof *e);
    e->now = 1700000000000LL;
    memset(&cd, 0, sizeof cd);
    cd.allocator = *fz_heap_init(&e->heap, fail_at);
    cd.now_ms = fz_clock, cd.mono_ms = fz_clock, cd.sleep_ms = fz_sleep;
    cd.user_data = e;
    ak_context_init(&e->ctx, &cd);
}

static void fz_check_error(ak_result rc, const ak_error *err) {
    if (rc >= 0 || !err->message[0] || !ak_utf8_valid(err->message, strlen(err->message))) abort();
    if ((int)err->status < 0 || (int)err->status > 16) abort();
}

static int fz_chunks;
static void fz_on_chunk(void *ud, const ak_json *chunk) {
    (void)ud;
    if (!ak_json_is(chunk, AK_JSON_OBJECT)) abort();
    fz_chunks++;
}

static void fz_check_id(const char *id) {
    if (id && (!*id || strlen(id) > AK_ID_MAX)) abort();
}

/* One streamed turn; polls advance the fake clock so delays and deadlines play out. */
static void fz_turn(fz_env *e, ak_chat *chat, ak_json_doc *d, const char *text) {
    ak_json *input = ak_json_new_object(d), *msg = ak_msg_new(d, "user");
    ak_response r;
    ak_error err;
    ak_result rc;
    int polls = 0;
    ak_msg_add(msg, ak_part_text(d, text));
    ak_json_set(d, input, "message", msg);
    if (d->err) return;
    memset(&r, 0, sizeof r);
    rc = ak_chat_start(chat, input, fz_on_chunk, NULL, &err);
    while (rc == AK_OK && (rc = ak_chat_poll(chat, 0, &r, &err)) == AK_PENDING) {
        if (++polls > 1000) abort(); /* the request deadline must end it */
        e->now += 100;
        rc = AK_OK;
    }
    if (rc == AK_OK || rc == AK_ERR_AGENT) {
        if (!r.text || !ak_utf8_valid(r.text, strlen(r.text))) {
            if (rc == AK_OK) abort(); /* a turn rejected before it ran leaves r empty */
        }
    }
    if (rc != AK_OK) fz_check_error(rc, &err);
    if (!ak_json_is(ak_chat_messages(chat), AK_JSON_ARRAY) && ak_chat_messages(chat)) abort();
    fz_check_id(ak_chat_snapshot_id(chat));
    fz_check_id(ak_chat_session_id(chat));
    ak_response_free(&r);
}

/* Every request body the client sent is JSON. */
static void fz_check_requests(const ak_replay *rp) {
    size_t i;
    for (i = 0; i < ak_replay_request_count(rp); i++) {
        const ak_http_request *q = ak_replay_request(rp, i);
        ak_json_doc d;
        ak_json_doc_init(&d, NULL);
        if (ak_json_parse(&d, q->body, q->body_len, NULL) != AK_OK) abort();
        ak_json_doc_free(&d);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int statuses[8] = {200, 200, 200, 404, 429, 500, 503, 401};
    static const ak_replay_fault faults[4] = {AK_REPLAY_FAULT_NONE, AK_REPLAY_FAULT_RESET, AK_REPLAY_FAULT_TRUNCATE,
                                              AK_REPLAY_FAULT_REFUSE};
    fz_env e;
    ak_replay rp;
    ak_replay_response res;
    ak_transport t;
    ak_remote_agent ra;
    ak_remote_desc rd;
    ak_json_doc d;
    ak_error err;
    int opts, action, i;
    size_t len;
    if (size < 3) return 0;
    opts = data[0], action = opts & 3;
    len = size - 3;
    fz_env_init(&e, data[2]);
    ak_json_doc_init(&d, NULL);
    if (ak_replay_init(&rp, &e.ctx, (opts & 128) ? AK_REPLAY_PUMPED : AK_REPLAY_SYNC) != AK_OK) abort();
    memset(&res, 0, sizeof res);
    res.status = statuses[(opts >> 2) & 7];
    res.body = len ? (const char *)data + 3 : "";
    res.body_len = len;
    res.chunk = data[1] % 32;
    res.fault = faults[(opts >> 5) & 3];
    res.fault_at = len ? (size_t)data[1] * 13 % (len + 1) : 0;
    res.delay_ms = (opts & 128) ? (int64_t)data[1] * 50 : 0;
    for (i = 0; i < 2; i++)
        if (ak_replay_add(&rp, &res, &err) != AK_OK && err.code != AK_ERR_OUT_OF_MEMORY) abort();
    t = ak_replay_transport(&rp);
    memset(&rd, 0, sizeof rd);
    rd.url = "http://agents.test/api/chatAgent";
    rd.transport = &t;
    rd.timeout_ms = 5000;
    if (ak_remote_agent_init(&ra, &e.ctx, &rd, NULL) == AK_OK) {
        if (action <= 1) {
            ak_chat chat;
            ak_result rc = ak_remote_chat(&chat, &ra, NULL, &err);
            if (rc == AK_OK) {
                fz_turn(&e, &chat, &d, "hello");
                if (action == 1) fz_turn(&e, &chat, &d, "again");
            } else {
                fz_check_error(rc, &err);
            }
            ak_chat_free(&chat);
        } else if (action == 2) {
            ak_json *snap = NULL;
            ak_result rc = ak_remote_get_snapshot(&ra, "snap-1", NULL, &d, &snap, &err);
            if (rc == AK_OK && !snap) abort();
            if (rc != AK_OK) fz_check_error(rc, &err);
        } else {
            const char *prev = NULL;
            ak_result rc = ak_remote_abort(&ra, "snap-1", &prev, &err);
            if (rc == AK_OK && prev && ak_snapshot_status_from_name(prev) == AK_SNAPSHOT_NONE) abort();
            if (rc != AK_OK) fz_check_error(rc, &err);
        }
        ak_remote_agent_free(&ra);
    }
    fz_check_requests(&rp);
    ak_replay_free(&rp);
    ak_json_doc_free(&d);
    if (e.heap.live != 0) abort();
    return 0;
}
