/* test_embedded.c - the embedded promises on the development machine (and so under ASan and
   valgrind in `make check`): the firmware of tests/embedded runs its conversation out of its
   64 KiB pool, arenas that are reset every turn keep their block sizes, and a turn that runs
   out of memory at any allocation fails cleanly and gives every byte back. The same firmware
   runs on an emulated Cortex-M4 in tests/check_embedded.sh. */
#include "test.h"

/* ---- the firmware, with this file as its board ------------------------------------------ */

#include "embedded/board.h"

static char t_out[16384];
static size_t t_out_len;

void board_write(const char *s, size_t len) {
    if (len > sizeof t_out - 1 - t_out_len) len = sizeof t_out - 1 - t_out_len;
    memcpy(t_out + t_out_len, s, len);
    t_out_len += len;
    t_out[t_out_len] = 0;
}
size_t board_stack_used(void) { return 0; }
size_t board_stack_size(void) { return 0; }

#include "embedded/firmware.c"

/* The lines that say and answer something (turn N> ..., agent> ...), as expected.txt has them. */
static void t_transcript(const char *out, char *dst, size_t cap) {
    const char *line = out;
    size_t n = 0;
    while (*line) {
        const char *end = strchr(line, '\n'), *gt = strstr(line, "> ");
        size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
        if (gt && gt < line + len && line[0] != ' ' && n + len < cap) memcpy(dst + n, line, len), n += len;
        line += len;
    }
    dst[n] = 0;
}

static void test_firmware_on_host(void) {
    size_t len = 0;
    char *expected = t_read_file("tests/embedded/expected.txt", &len);
    static char transcript[8192];
    int rc;
    t_out_len = 0;
    rc = firmware_main();
    CHECK_EQ(rc, 0);
    CHECK(strstr(t_out, "ok: 11 of 11 answers as expected") != NULL);
    CHECK(strstr(t_out, ", 0 failed\n") != NULL); /* no allocation failed in the pool */
    t_transcript(t_out, transcript, sizeof transcript);
    CHECK(expected != NULL);
    if (expected) CHECK_STR(transcript, expected);
    if (rc) fputs(t_out, stderr);
    free(expected);
}

/* ---- arenas reset every turn ------------------------------------------------------------ */

/* A document reset between turns (what a chat's turn document is) needs a second block each
   turn; the blocks must not double turn after turn. */
static void test_arena_reset_keeps_block_sizes(void) {
    t_alloc ta;
    ak_arena a;
    int turn;
    ak_arena_init(&a, t_alloc_init(&ta, 0), 1024);
    for (turn = 0; turn < 40; turn++) {
        ak_arena_mark m;
        CHECK(ak_arena_alloc(&a, 900) != NULL);
        m = ak_arena_save(&a);
        CHECK(ak_arena_alloc(&a, 900) != NULL); /* a second block */
        CHECK(ak_arena_alloc(&a, 900) != NULL); /* a third */
        ak_arena_restore(&a, m);
        CHECK(ak_arena_alloc(&a, 900) != NULL);
        ak_arena_reset(&a);
    }
    /* first block 1 KiB, then 2 and 4 KiB: never more than the three at once */
    CHECK_MSG(ta.peak <= 7 * 1024 + 3 * 64, "peak %lld bytes after 40 resets", ta.peak);
    ak_arena_free(&a);
    CHECK_EQ(ta.live, 0);
}

/* ---- running out of memory -------------------------------------------------------------- */

/* One tool-calling turn (model -> tool -> model -> store) with the Nth allocation failing.
   Returns 1 when the turn got through without reaching allocation N. */
static int t_turn_failing_at(long long n, int *answered) {
    t_alloc ta;
    ak_context_desc cd;
    ak_context c;
    ak_memstore ms;
    ak_model m;
    ak_agent ag;
    ak_agent_desc d;
    ak_chat ch;
    ak_response r;
    ak_error err;
    ak_result rc = AK_ERR_OUT_OF_MEMORY;
    int ok;
    memset(&cd, 0, sizeof cd);
    cd.allocator = *t_alloc_init(&ta, n);
    ak_context_init(&c, &cd);
    memset(&d, 0, sizeof d);
    ak_scripted_model_init(&m);
    d.name = "stationAgent", d.model = &m, d.tools = fw_tools, d.tool_count = 1, d.store = &ms.store;
    memset(&r, 0, sizeof r);
    ak_memstore_init(&ms, &c);
    if (ak_agent_init(&ag, &c, &d, &err) == AK_OK) {
        if (ak_chat_init(&ch, &ag, NULL, &err) == AK_OK) {
            rc = ak_chat_send(&ch, "weather Oslo", &r, &err);
            /* a failure must say what failed */
            if (rc != AK_OK) CHECK_MSG(err.message[0] != 0, "fail at %lld: result %d without a message", n, rc);
            ak_response_free(&r);
            ak_chat_free(&ch);
        }
        ak_agent_free(&ag);
    }
    ak_memstore_free(&ms);
    CHECK_MSG(ta.live == 0, "fail at %lld: %lld bytes leaked", n, ta.live);
    ok = ta.count < n;
    if (ok) *answered = rc == AK_OK;
    return ok;
}

static void test_turn_out_of_memory_anywhere(void) {
    long long n;
    int answered = 0;
    for (n = 1; n < 5000 && !t_turn_failing_at(n, &answered); n++) {
    }
    CHECK_MSG(n < 5000, "the turn never got through");
    CHECK(answered);
}

/* A memory budget on the context: with every budget from 1 KB up, the turn either runs or
   fails with a clean out-of-memory error, never more memory than the budget, never a leak. */
static void test_memory_budget(void) {
    size_t budget;
    int failed = 0, passed = 0;
    for (budget = 1000; budget <= 40000 && !passed; budget += 500) {
        ak_context_desc cd;
        ak_context c;
        ak_model m;
        ak_agent ag;
        ak_agent_desc d;
        ak_chat ch;
        ak_response r;
        ak_error err;
        ak_result rc = AK_ERR_OUT_OF_MEMORY;
        memset(&cd, 0, sizeof cd);
        cd.memory_budget = budget;
        CHECK_OK(ak_context_init(&c, &cd));
        memset(&d, 0, sizeof d);
        memset(&r, 0, sizeof r);
        ak_scripted_model_init(&m);
        d.name = "a", d.model = &m;
        if (ak_agent_init(&ag, &c, &d, &err) == AK_OK) {
            if (ak_chat_init(&ch, &ag, NULL, &err) == AK_OK) {
                rc = ak_chat_send(&ch, "hello", &r, &err);
                ak_response_free(&r);
                ak_chat_free(&ch);
            }
            ak_agent_free(&ag);
        }
        if (rc == AK_OK) {
            passed = 1;
        } else {
            failed++;
            CHECK_MSG(strstr(err.message, "out of memory") != NULL, "budget %zu: %s", budget, err.message);
        }
        CHECK_EQ(c.mem_in_use, 0);
        CHECK(c.mem_peak <= budget);
    }
    CHECK(failed > 0 && passed);
}

int main(void) {
    RUN(test_firmware_on_host);
    RUN(test_arena_reset_keeps_block_sizes);
    RUN(test_turn_out_of_memory_anywhere);
    RUN(test_memory_budget);
    return t_summary();
}
