/* The Anthropic Messages adapter: response fixtures cut every way, request golden files,
   retry hints through the real call driver, hostile input, allocation failures, and end to
   end over the POSIX transport against a mock server. */
#include "adapter_check.h"

static void response_fixtures_whole_bytewise_and_cut_everywhere(void) {
    int count = 0;
    CHECK_EQ(mf_check_dir(ak_adapter_anthropic(), "tests/fixtures/anthropic", &count), 0);
    CHECK(count >= 16);
}

static void request_golden_files(void) { CHECK(ac_check_requests("anthropic") >= 7); }

static const char *const hello = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hi\"}]}]}";

/* Requests the fixtures cannot express: keys, base URLs, the model id. */
static void request_settings(void) {
    ak_provider_config cfg;
    ak_http_out o;
    ak_json_doc d;
    ak_json *req = NULL;
    const ak_json *msg;
    ak_error e;
    ak_json_doc_init(&d, NULL);
    CHECK_OK(ak_json_parse_value(&d, hello, strlen(hello), NULL, &req, &e));
    msg = ak_json_at(ak_json_get(req, "messages"), 0);
    memset(&cfg, 0, sizeof cfg);
    cfg.model = "claude-haiku-4-5";
    cfg.base_url = "http://127.0.0.1:8080/proxy//";
    ak_http_out_init(&o, NULL);
    CHECK_OK(ak_adapter_anthropic()->build(&cfg, req, &msg, 1, 0, &o, &e));
    CHECK_STR(o.url.ptr, "http://127.0.0.1:8080/proxy/v1/messages");
    CHECK_EQ(o.header_count, 2); /* no key, no x-api-key header */
    CHECK(strstr(o.body.ptr, "\"model\":\"claude-haiku-4-5\"") != NULL);
    ak_http_out_free(&o);

    /* a key that would smuggle in a header is refused, and never repeated in the message */
    cfg.api_key = "sk-secret\r\nX-Evil: 1";
    ak_http_out_init(&o, NULL);
    CHECK_EQ(ak_adapter_anthropic()->build(&cfg, req, &msg, 1, 0, &o, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK(strstr(e.message, "control character") != NULL && strstr(e.message, "secret") == NULL);
    ak_http_out_free(&o);

    cfg.api_key = NULL;
    cfg.model = NULL;
    ak_http_out_init(&o, NULL);
    CHECK_EQ(ak_adapter_anthropic()->build(&cfg, req, &msg, 1, 0, &o, &e), AK_ERR_INVALID_ARGUMENT);
    ak_http_out_free(&o);
    ak_json_doc_free(&d);
}

/* Thinking signatures and redacted thinking go back byte for byte in the next request. */
static void signatures_round_trip(void) {
    static const char turn2_fmt[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Q\"}]},{\"role\":\"model\",\"content\":%s},"
        "{\"role\":\"user\",\"content\":[{\"text\":\"more\"}]}]}";
    ak_buf req;
    ak_buf_init(&req, NULL);
    ac_next_turn("anthropic", "thinking.sse", turn2_fmt, &req);
    CHECK(strstr(req.ptr, "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Let me think step by step.\","
                          "\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+/==\"},"
                          "{\"type\":\"redacted_thinking\",\"data\":\"EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP\"},"
                          "{\"type\":\"text\",\"text\":\"42.\"}]}") != NULL);
    ak_buf_free(&req);
}

/* Every allocation of a decode or a request build may fail: a clean error and nothing leaked. */
static void allocation_failures_are_clean(void) {
    static const char *const files[] = {"tool_use.sse", "thinking.sse", "message.json", "error_429.json", "truncated.sse"};
    ac_alloc_failures_are_clean("anthropic", files, sizeof files / sizeof files[0]);
}

static void hostile_streams_fail_cleanly(void) {
    static const char big_delta[] =
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"0123456789\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"0123456789\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    static const char bad_utf8[] =
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\xff\xc3\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    static const char twice[] =
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\"}}\n\n"
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\"}}\n\n";
    static const char scalar[] = "event: message_start\ndata: [1,2]\n\n";
    static const char nameless[] =
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\"}}\n\n";

    /* the text of one block is bounded by the decoder's response limit */
    CHECK_STR(ac_decode_limited("anthropic", 1, big_delta, 15),
              "{\"error\":{\"status\":\"RESOURCE_EXHAUSTED\",\"message\":\"anthropic: a content block is larger than 15 bytes\"}}");
    CHECK(strstr(ac_decode_limited("anthropic", 1, big_delta, 20), "\"text\":\"01234567890123456789\"") != NULL);

    /* invalid UTF-8 reaches the message as U+FFFD, never as raw bytes */
    CHECK(strstr(ac_decode_limited("anthropic", 1, bad_utf8, 1000), "\"text\":\"a\xef\xbf\xbd") != NULL);

    CHECK(strstr(ac_decode_limited("anthropic", 1, twice, 1000), "content block 1 started before block 0 stopped") != NULL);
    CHECK(strstr(ac_decode_limited("anthropic", 1, scalar, 1000), "not a JSON object") != NULL);
    CHECK(strstr(ac_decode_limited("anthropic", 1, nameless, 1000), "tool_use block without a name") != NULL);

    /* a 200 body that is not a message */
    CHECK(strstr(ac_decode_limited("anthropic", 0, "{\"type\":\"message\"}", 1000), "message without content") != NULL);
}

/* Retries through the real driver and engine, on the replay transport with a fake clock. */
static void retry_hints_drive_the_retry_policy(void) {
    static const char ok[] = "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"stop_reason\":\"end_turn\"}";
    static const char err_overloaded[] = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    static const char err_invalid[] = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"no\"}}\n\n";
    static const ak_header retry_after[] = {{"retry-after", "2"}};
    static const ak_header no_retry[] = {{"x-should-retry", "false"}};
    ak_context ctx;
    ak_replay rp;
    ak_replay_response res[3];
    ac_e2e r;
    ak_context_init(&ctx, NULL);

    /* 429 + retry-after: 2 s, then success: two attempts, exactly 2 s of (fake) waiting */
    memset(res, 0, sizeof res);
    res[0].status = 429, res[0].headers = retry_after, res[0].header_count = 1;
    res[0].body = "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}";
    res[1].body = ok;
    ac_replay_call("anthropic", &ctx, &rp, res, 2, hello, 0, &r);
    CHECK_EQ(r.attempts, 2);
    CHECK_EQ(r.waited_ms, 2000);
    CHECK(strstr(r.out.ptr, "\"text\":\"ok\"") != NULL);
    CHECK_STR(ak_replay_request(&rp, 1)->url, "https://api.anthropic.com/v1/messages");
    ac_e2e_free(&r);
    ak_replay_free(&rp);

    /* 500 with x-should-retry: false is final */
    memset(res, 0, sizeof res);
    res[0].status = 500, res[0].headers = no_retry, res[0].header_count = 1;
    res[0].body = "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"boom\"}}";
    ac_replay_call("anthropic", &ctx, &rp, res, 1, hello, 0, &r);
    CHECK_EQ(r.attempts, 1);
    CHECK_STR(r.out.ptr, "ERR INTERNAL: anthropic HTTP 500: api_error: boom");
    ac_e2e_free(&r);
    ak_replay_free(&rp);

    /* an overloaded_error event before any output is retried; invalid_request_error is not */
    memset(res, 0, sizeof res);
    res[0].body = err_overloaded;
    res[1].body = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    ac_replay_call("anthropic", &ctx, &rp, res, 2, hello, 1, &r);
    CHECK_EQ(r.attempts, 2);
    CHECK_STR(r.out.ptr, "{\"message\":{\"role\":\"model\",\"content\":[]},\"finishReason\":\"unknown\"}");
    ac_e2e_free(&r);
    ak_replay_free(&rp);

    memset(res, 0, sizeof res);
    res[0].body = err_invalid;
    ac_replay_call("anthropic", &ctx, &rp, res, 1, hello, 1, &r);
    CHECK_EQ(r.attempts, 1);
    CHECK_STR(r.out.ptr, "ERR INVALID_ARGUMENT: anthropic stream error: invalid_request_error: no");
    ac_e2e_free(&r);
    ak_replay_free(&rp);

    /* a stream cut before message_stop (reset, or closed cleanly) with nothing streamed yet
       is retried; once text went out, the cut is the caller's error */
    memset(res, 0, sizeof res);
    res[0].body = "event: ping\ndata: {\"type\":\"ping\"}\n\nevent: mess";
    res[0].fault = AK_REPLAY_FAULT_RESET, res[0].fault_at = 40;
    res[1].body = res[0].body;
    res[1].fault = AK_REPLAY_FAULT_TRUNCATE, res[1].fault_at = 40;
    res[2].body = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    ac_replay_call("anthropic", &ctx, &rp, res, 3, hello, 1, &r);
    CHECK_EQ(r.attempts, 3);
    CHECK_EQ(ak_replay_unused(&rp), 0);
    ac_e2e_free(&r);
    ak_replay_free(&rp);

    memset(res, 0, sizeof res);
    res[0].body = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                  "{\"type\":\"text\",\"text\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                  "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n";
    ac_replay_call("anthropic", &ctx, &rp, res, 1, hello, 1, &r);
    CHECK_EQ(r.attempts, 1);
    CHECK_STR(r.chunks.ptr, "{\"content\":[{\"text\":\"Hel\"}]}\n");
    CHECK_STR(r.out.ptr, "ERR UNAVAILABLE: anthropic stream ended before message_stop (truncated)");
    ac_e2e_free(&r);
    ak_replay_free(&rp);
}

/* The request the mock server received: path, the auth headers, the body's stream flag. */
static void check_sent(const mock_request *q, int stream) {
    CHECK_STR(q->method, "POST");
    CHECK_STR(q->path, "/v1/messages");
    CHECK_STR(mock_header(q, "x-api-key"), "test-key");
    CHECK_STR(mock_header(q, "anthropic-version"), "2023-06-01");
    CHECK(strstr(q->body, "\"model\":\"claude-sonnet-4-5\"") != NULL);
    CHECK((strstr(q->body, "\"stream\":true") != NULL) == stream);
}

static void end_to_end_over_posix_sockets(void) {
    ac_files sse, json;
    mock_response rs[4];
    mock_server m;
    const mock_request *q;
    ac_e2e r;
    ac_files_load(&sse, "anthropic", "thinking.sse");
    ac_files_load(&json, "anthropic", "message.json");

    /* streamed, drip-fed 7 bytes at a time in HTTP chunks */
    memset(rs, 0, sizeof rs);
    rs[0].body = sse.body, rs[0].content_type = "text/event-stream", rs[0].chunked = 1, rs[0].piece = 7;
    q = ac_e2e_mock("anthropic", &m, rs, 1, hello, 1, &r);
    CHECK_STR(r.out.ptr, sse.out);
    CHECK_STR(r.chunks.ptr, sse.chunks);
    if (q) check_sent(q, 1);
    mock_free(&m);
    ac_e2e_free(&r);

    /* 429 with retry-after: the delay is waited out (fake clock), then the answer */
    memset(rs, 0, sizeof rs);
    rs[0].status = 429, rs[0].headers = "retry-after: 3\r\nx-should-retry: true\r\n";
    rs[0].body = "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}";
    rs[1].body = json.body;
    q = ac_e2e_mock("anthropic", &m, rs, 2, hello, 0, &r);
    CHECK_STR(r.out.ptr, json.out);
    CHECK_EQ(r.attempts, 2);
    CHECK_EQ(r.waited_ms, 3000);
    if (q) check_sent(q, 0);
    mock_free(&m);
    ac_e2e_free(&r);

    /* 401: final at once */
    memset(rs, 0, sizeof rs);
    rs[0].status = 401;
    rs[0].body = "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key\"}}";
    CHECK(mock_start(&m, rs, 1) == 0);
    ac_e2e_run("anthropic", m.url, hello, 1, &r);
    CHECK_STR(r.out.ptr, "ERR UNAUTHENTICATED: anthropic HTTP 401: authentication_error: invalid x-api-key");
    CHECK_EQ(r.attempts, 1);
    mock_free(&m);
    CHECK_EQ(m.count, 0); /* mock_free collected and released it */
    ac_e2e_free(&r);
    ac_files_free(&sse);
    ac_files_free(&json);
}

int main(void) {
    RUN(response_fixtures_whole_bytewise_and_cut_everywhere);
    RUN(request_golden_files);
    RUN(request_settings);
    RUN(signatures_round_trip);
    RUN(allocation_failures_are_clean);
    RUN(hostile_streams_fail_cleanly);
    RUN(retry_hints_drive_the_retry_policy);
    RUN(end_to_end_over_posix_sockets);
    return t_summary();
}
