/* base layer: statuses, errors, arena, buffer, UTF-8, context hooks, ids */
#include "test.h"

static void statuses_map_to_genkit_names_and_http(void) {
    CHECK_STR(ak_status_name(AK_STATUS_NOT_FOUND), "NOT_FOUND");
    CHECK_EQ(ak_status_http(AK_STATUS_NOT_FOUND), 404);
    CHECK_EQ(ak_status_http(AK_STATUS_RESOURCE_EXHAUSTED), 429);
    CHECK_EQ(ak_status_http(AK_STATUS_FAILED_PRECONDITION), 400);
    CHECK_EQ(ak_status_http(AK_STATUS_CANCELLED), 499);
    CHECK_EQ(ak_status_http(AK_STATUS_UNAUTHENTICATED), 401);
    CHECK_EQ(ak_status_http((ak_status)99), 500);
    CHECK_EQ(ak_status_from_name("ABORTED", 7), AK_STATUS_ABORTED);
    CHECK_EQ(ak_status_from_name("ABORTEDX", 8), AK_STATUS_UNKNOWN);
    CHECK_EQ(ak_status_from_name("ABORT", 5), AK_STATUS_UNKNOWN);
    CHECK_EQ(ak_status_from_http(429), AK_STATUS_RESOURCE_EXHAUSTED);
    CHECK_EQ(ak_status_from_http(529), AK_STATUS_UNAVAILABLE);
    CHECK_EQ(ak_status_from_http(502), AK_STATUS_UNAVAILABLE);
    CHECK_EQ(ak_status_from_http(401), AK_STATUS_UNAUTHENTICATED);
    CHECK_STR(ak_result_str(AK_ERR_JSON_DEPTH), "JSON nesting too deep");
    CHECK_EQ(ak_result_status(AK_ERR_TIMEOUT), AK_STATUS_DEADLINE_EXCEEDED);
}

static void error_messages_are_formatted_and_cut_safely(void) {
    ak_error e;
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_EQ(ak_error_set(&e, AK_ERR_LIMIT, "%s=%d/%u/%zu/%lld/%x/%c/%.*s%%", "a", -5, 7u,
                          (size_t)9, -123456789012LL, 255u, 'q', 2, "xyz"), AK_ERR_LIMIT);
    CHECK_STR(e.message, "a=-5/7/9/-123456789012/ff/q/xy%");
    CHECK_EQ(e.status, AK_STATUS_RESOURCE_EXHAUSTED);
    ak_error_setst(&e, AK_ERR_AGENT, AK_STATUS_ABORTED, "long %s", big);
    CHECK_EQ(strlen(e.message), AK_ERROR_MAX - 1);
    CHECK_EQ(e.status, AK_STATUS_ABORTED);
    CHECK_EQ(ak_error_set(NULL, AK_ERR_IO, "ignored"), AK_ERR_IO);
}

static void arena_bumps_marks_and_frees_everything(void) {
    t_alloc ta;
    const ak_allocator *a = t_alloc_init(&ta, 0);
    ak_arena ar;
    ak_arena_mark m;
    char *p, *q;
    int i;
    ak_arena_init(&ar, a, 64);
    p = (char *)ak_arena_alloc(&ar, 10);
    CHECK(p && ((uintptr_t)p & 7) == 0);
    m = ak_arena_save(&ar);
    for (i = 0; i < 100; i++) CHECK(ak_arena_alloc(&ar, 100) != NULL);
    CHECK(ta.live > 10000);
    ak_arena_restore(&ar, m);
    q = (char *)ak_arena_alloc(&ar, 10);
    CHECK(q == p + 16);
    CHECK_STR(ak_arena_strdup(&ar, "hello", 3), "hel");
    ak_arena_reset(&ar);
    CHECK(ak_arena_alloc(&ar, 8) != NULL);
    CHECK(ak_arena_alloc(&ar, (size_t)-1) == NULL); /* overflow is refused */
    ak_arena_free(&ar);
    CHECK_EQ(ta.live, 0);
}

static void fixed_arena_never_allocates(void) {
    unsigned char mem[256];
    ak_arena ar;
    int n = 0;
    CHECK_OK(ak_arena_init_fixed(&ar, mem + 1, sizeof mem - 1)); /* misaligned on purpose */
    while (ak_arena_alloc(&ar, 16)) n++;
    CHECK(n >= 10 && n <= 16);
    ak_arena_reset(&ar);
    CHECK(ak_arena_alloc(&ar, 16) != NULL);
    ak_arena_free(&ar);
    CHECK_EQ(ak_arena_init_fixed(&ar, mem, 8), AK_ERR_INVALID_ARGUMENT);
}

static void buffer_grows_and_errors_are_sticky(void) {
    t_alloc ta;
    const ak_allocator *a = t_alloc_init(&ta, 0);
    ak_buf b;
    char fixed[8];
    int i;
    ak_buf_init(&b, a);
    for (i = 0; i < 1000; i++) ak_buf_putc(&b, 'a');
    ak_buf_put_i64(&b, INT64_MIN);
    CHECK_EQ(b.len, 1000 + 20);
    CHECK_STR(b.ptr + 1000, "-9223372036854775808");
    ak_buf_consume(&b, 998);
    CHECK_STR(b.ptr, "aa-9223372036854775808");
    ak_buf_printf(&b, "/%s", "x");
    CHECK_STR(b.ptr + b.len - 2, "/x");
    b.max = 30;
    ak_buf_puts(&b, "this is too long for the limit");
    CHECK_EQ(b.err, AK_ERR_LIMIT);
    ak_buf_putc(&b, 'z'); /* sticky */
    CHECK_EQ(b.err, AK_ERR_LIMIT);
    ak_buf_free(&b);
    CHECK_EQ(ta.live, 0);

    ak_buf_init_fixed(&b, fixed, sizeof fixed);
    ak_buf_puts(&b, "abcdefghij");
    CHECK_EQ(b.err, AK_ERR_OUT_OF_MEMORY);
    CHECK_STR(fixed, "abcdefg");

    t_alloc_init(&ta, 1); /* the first allocation fails */
    ak_buf_init(&b, &ta.a);
    ak_buf_puts(&b, "x");
    CHECK_EQ(b.err, AK_ERR_OUT_OF_MEMORY);
    ak_buf_free(&b);
}

static void utf8_validation_follows_the_unicode_rules(void) {
    uint32_t cp = 0;
    char out[4];
    ak_buf b;
    CHECK(ak_utf8_valid("plain ascii text", 16));
    CHECK(ak_utf8_valid("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9)); /* é € 😀 */
    CHECK(!ak_utf8_valid("\xC0\xAF", 2));         /* overlong */
    CHECK(!ak_utf8_valid("\xE0\x80\xAF", 3));     /* overlong */
    CHECK(!ak_utf8_valid("\xED\xA0\x80", 3));     /* surrogate */
    CHECK(!ak_utf8_valid("\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!ak_utf8_valid("\xF0\x9F\x98", 3));     /* truncated */
    CHECK(!ak_utf8_valid("\x80", 1));
    CHECK_EQ(ak_utf8_valid_prefix("abcdefghij\xFFk", 12), 10);
    CHECK_EQ(ak_utf8_decode("\xF0\x9F\x98\x80", 4, &cp), 4);
    CHECK_EQ(cp, 0x1F600);
    CHECK_EQ(ak_utf8_encode(0x20AC, out), 3);
    CHECK(memcmp(out, "\xE2\x82\xAC", 3) == 0);
    CHECK_EQ(ak_utf8_encode(0xD800, out), 0);
    ak_buf_init(&b, NULL);
    ak_utf8_sanitize(&b, "a\xFF" "b\xF0\x9F\x98" "c\xED\xA0\x80", 10);
    /* one U+FFFD for FF, one for the truncated emoji, one per byte of the surrogate (ED A0 is
       not a valid prefix) */
    CHECK_STR(b.ptr, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    ak_buf_free(&b);
}

static int64_t fake_now(void *ud) { return *(int64_t *)ud; }
static ak_result no_random(void *ud, void *buf, size_t len) { (void)ud, (void)buf, (void)len; return AK_ERR_NO_RANDOM; }

static void context_hooks_budget_and_ids(void) {
    ak_context ctx;
    ak_context_desc desc;
    int64_t now = 1700000000123LL;
    char id[37], ts[25], id2[37];
    void *p, *q;
    memset(&desc, 0, sizeof desc);
    desc.now_ms = fake_now;
    desc.user_data = &now;
    desc.memory_budget = 1000;
    CHECK_OK(ak_context_init(&ctx, &desc));
    CHECK_EQ(ak_now_ms(&ctx), now);
    CHECK_EQ(ak_mono_ms(&ctx), now); /* falls back to the wall hook */
    p = ak_alloc(ak_context_allocator(&ctx), 600);
    CHECK(p != NULL);
    CHECK(ak_alloc(ak_context_allocator(&ctx), 600) == NULL); /* over budget */
    q = ak_realloc(ak_context_allocator(&ctx), p, 600, 900);
    CHECK(q != NULL);
    CHECK_EQ(ctx.mem_in_use, 900);
    ak_free(ak_context_allocator(&ctx), q, 900);
    CHECK_EQ(ctx.mem_in_use, 0);
    CHECK_EQ(ctx.mem_peak, 900);

    CHECK_OK(ak_uuid4(&ctx, id));
    CHECK_OK(ak_uuid4(&ctx, id2));
    CHECK_EQ(strlen(id), 36);
    CHECK(id[14] == '4' && strchr("89ab", id[19]) != NULL);
    CHECK(strcmp(id, id2) != 0);
    ak_iso8601(now, ts);
    CHECK_STR(ts, "2023-11-14T22:13:20.123Z");
    ak_iso8601(0, ts);
    CHECK_STR(ts, "1970-01-01T00:00:00.000Z");
    ak_iso8601(951782400000LL, ts); /* leap day */
    CHECK_STR(ts, "2000-02-29T00:00:00.000Z");

    desc.random = no_random; /* no weak fallback: id generation fails */
    CHECK_OK(ak_context_init(&ctx, &desc));
    CHECK_EQ(ak_uuid4(&ctx, id), AK_ERR_NO_RANDOM);
    CHECK_STR(id, "");
}

static int log_calls;
static char log_last[128];
static void capture_log(void *ud, ak_log_level level, const char *msg) {
    (void)ud, (void)level;
    log_calls++;
    snprintf(log_last, sizeof log_last, "%s", msg);
}

static void logging_is_silent_without_a_sink_and_filtered_by_level(void) {
    ak_context ctx;
    ak_context_desc desc;
    ak_context_init(&ctx, NULL);
    ak_log(&ctx, AK_LOG_ERROR, "nobody hears this");
    memset(&desc, 0, sizeof desc);
    desc.log = capture_log;
    desc.log_level = AK_LOG_WARN;
    ak_context_init(&ctx, &desc);
    ak_log(&ctx, AK_LOG_INFO, "dropped");
    ak_log(&ctx, AK_LOG_ERROR, "kept %d", 42);
    CHECK_EQ(log_calls, 1);
    CHECK_STR(log_last, "kept 42");
}

int main(void) {
    RUN(statuses_map_to_genkit_names_and_http);
    RUN(error_messages_are_formatted_and_cut_safely);
    RUN(arena_bumps_marks_and_frees_everything);
    RUN(fixed_arena_never_allocates);
    RUN(buffer_grows_and_errors_are_sticky);
    RUN(utf8_validation_follows_the_unicode_rules);
    RUN(context_hooks_budget_and_ids);
    RUN(logging_is_silent_without_a_sink_and_filtered_by_level);
    return t_summary();
}
