/* The Gemini adapter: response fixtures cut every way, request golden files, retry hints
   (RetryInfo in the body) through the real call driver, hostile input, allocation failures,
   and end to end over the POSIX transport against a mock server. */
#include "adapter_check.h"

static void response_fixtures_whole_bytewise_and_cut_everywhere(void) {
    int count = 0;
    CHECK_EQ(mf_check_dir(ak_adapter_gemini(), "tests/fixtures/gemini", &count), 0);
    CHECK(count >= 15);
}

static void request_golden_files(void) { CHECK(ac_check_requests("gemini") >= 5); }

static const char *const hello = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hi\"}]}]}";

/* Builds hello for model id `model` at base; returns the URL (static) or the error. */
static const char *url_for(const char *model, const char *base, int stream) {
    static char url[512];
    ak_provider_config cfg;
    ak_http_out o;
    ak_json_doc d;
    ak_json *req = NULL;
    const ak_json *msg;
    ak_error e;
    ak_json_doc_init(&d, NULL);
    ak_json_parse_value(&d, hello, strlen(hello), NULL, &req, NULL);
    msg = ak_json_at(ak_json_get(req, "messages"), 0);
    memset(&cfg, 0, sizeof cfg);
    cfg.model = model;
    cfg.base_url = base;
    ak_http_out_init(&o, NULL);
    if (ak_adapter_gemini()->build(&cfg, req, &msg, 1, stream, &o, &e) == AK_OK) snprintf(url, sizeof url, "%s", o.url.ptr);
    else snprintf(url, sizeof url, "ERR %s", e.message);
    ak_http_out_free(&o);
    ak_json_doc_free(&d);
    return url;
}

static void model_ids_and_base_urls(void) {
    CHECK_STR(url_for("gemini-2.5-pro", "http://127.0.0.1:9/", 1),
              "http://127.0.0.1:9/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse");
    CHECK_STR(url_for("models/gemini-2.5-flash-lite", NULL, 0),
              "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash-lite:generateContent");
    CHECK_STR(url_for("tunedModels/my-model-1", NULL, 0),
              "https://generativelanguage.googleapis.com/v1beta/tunedModels/my-model-1:generateContent");
    /* an id must not be able to change the path, the query or the host */
    CHECK(strncmp(url_for("../../v1/secrets", NULL, 0), "ERR ", 4) == 0);
    CHECK(strncmp(url_for("gemini?key=x", NULL, 0), "ERR ", 4) == 0);
    CHECK(strncmp(url_for("gemini pro", NULL, 0), "ERR ", 4) == 0);
    CHECK(strncmp(url_for("", NULL, 0), "ERR ", 4) == 0);
    CHECK(strncmp(url_for(NULL, NULL, 0), "ERR ", 4) == 0);
}

/* A made-up ref survives a round trip: the call comes back with it, the result goes out
   with the same name and without an id. */
static void synthesized_refs_round_trip(void) {
    static const char turn2_fmt[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Weather?\"}]},{\"role\":\"model\",\"content\":%s},"
        "{\"role\":\"tool\",\"content\":[{\"toolResponse\":{\"name\":\"get_weather\",\"ref\":\"gemini-call-0\",\"output\":18}},"
        "{\"toolResponse\":{\"name\":\"weather/forecast\",\"ref\":\"gemini-call-1\",\"output\":{\"d\":1}}}]}]}";
    ak_buf req;
    ak_buf_init(&req, NULL);
    ac_next_turn("gemini", "function_calls.sse", turn2_fmt, &req);
    CHECK(strstr(req.ptr, "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\",\"units\":{\"temp\":\"C\"}}},"
                          "\"thoughtSignature\":\"CiQBVKhc7wVk4D+P/sig==\"}") != NULL);
    CHECK(strstr(req.ptr, "{\"functionCall\":{\"name\":\"weather__forecast\",\"args\":{}}}") != NULL);
    CHECK(strstr(req.ptr, "{\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"name\":\"get_weather\",\"content\":18}}}") != NULL);
    CHECK(strstr(req.ptr, "gemini-call") == NULL);
    ak_buf_free(&req);
}

static void allocation_failures_are_clean(void) {
    static const char *const files[] = {"text.sse", "function_calls.sse", "signatures.sse", "response.json", "error_429.json"};
    ac_alloc_failures_are_clean("gemini", files, sizeof files / sizeof files[0]);
}

static void hostile_streams_fail_cleanly(void) {
    static const char long_run[] =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"0123456789\"}]}}]}\r\n\r\n"
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"0123456789\"}]},\"finishReason\":\"STOP\"}]}\r\n\r\n";
    static const char big_image[] =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"QUFBQUFBQUFBQUFB\"}}]},"
        "\"finishReason\":\"STOP\"}]}\r\n\r\n";
    static const char bad_call[] = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"args\":{}}}]}}]}\r\n\r\n";
    static const char odd_types[] =
        "data: {\"candidates\":{\"x\":1},\"usageMetadata\":[1],\"promptFeedback\":{\"blockReason\":7}}\r\n\r\n"
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":5},{\"thought\":true},{\"inlineData\":{\"data\":1}},"
        "{\"functionCall\":{\"name\":\"f\",\"args\":[1]}}]},\"finishReason\":\"NEW_REASON\",\"finishMessage\":3}]}\r\n\r\n";
    static const char not_object[] = "data: \"hello\"\r\n\r\n";

    CHECK_STR(ac_decode_limited("gemini", 1, long_run, 15),
              "{\"error\":{\"status\":\"RESOURCE_EXHAUSTED\",\"message\":\"gemini: a text part is larger than 15 bytes\"}}");
    CHECK(strstr(ac_decode_limited("gemini", 1, long_run, 20), "{\"text\":\"01234567890123456789\"}") != NULL);
    CHECK(strstr(ac_decode_limited("gemini", 1, big_image, 20), "RESOURCE_EXHAUSTED") != NULL);
    CHECK(strstr(ac_decode_limited("gemini", 1, bad_call, 1000), "functionCall without a name") != NULL);

    /* wrong JSON types are skipped, never trusted */
    CHECK_STR(ac_decode_limited("gemini", 1, odd_types, 1000),
              "{\"message\":{\"role\":\"model\",\"content\":[{\"toolRequest\":{\"name\":\"f\",\"ref\":\"gemini-call-0\","
              "\"input\":{}}}]},\"finishReason\":\"unknown\"}");

    CHECK(strstr(ac_decode_limited("gemini", 1, not_object, 1000), "not a JSON object") != NULL);
}

/* Retries through the real driver and engine, on the replay transport with a fake clock. */
static void retry_hints_drive_the_retry_policy(void) {
    static const char ok[] = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}]},\"finishReason\":\"STOP\"}]}";
    static const char quota[] =
        "{\"error\":{\"code\":429,\"message\":\"quota\",\"status\":\"RESOURCE_EXHAUSTED\",\"details\":["
        "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"1.5s\"}]}}";
    ak_context ctx;
    ak_replay rp;
    ak_replay_response res[2];
    ac_e2e r;
    ak_context_init(&ctx, NULL);

    /* RetryInfo in the body (no header): 1.5 s, then success */
    memset(res, 0, sizeof res);
    res[0].status = 429, res[0].body = quota;
    res[1].body = ok;
    ac_replay_call("gemini", &ctx, &rp, res, 2, hello, 0, &r);
    CHECK_EQ(r.attempts, 2);
    CHECK_EQ(r.waited_ms, 1500);
    CHECK(strstr(r.out.ptr, "\"text\":\"ok\"") != NULL);
    CHECK_STR(ak_http_header_get(ak_replay_request(&rp, 0)->headers, ak_replay_request(&rp, 0)->header_count,
                                 "x-goog-api-key"), "test-key");
    ac_e2e_free(&r);
    ak_replay_free(&rp);

    /* an in-stream UNAVAILABLE before any output is retried (backoff 500 ms, no hint) */
    memset(res, 0, sizeof res);
    res[0].body = "data: {\"error\":{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n";
    res[1].body = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}]},\"finishReason\":\"STOP\"}]}\r\n\r\n";
    ac_replay_call("gemini", &ctx, &rp, res, 2, hello, 1, &r);
    CHECK_EQ(r.attempts, 2);
    CHECK_EQ(r.waited_ms, 500);
    CHECK_STR(r.chunks.ptr, "{\"content\":[{\"text\":\"ok\"}]}\n");
    ac_e2e_free(&r);
    ak_replay_free(&rp);

    /* a bad key is final */
    memset(res, 0, sizeof res);
    res[0].status = 400;
    res[0].body = "{\"error\":{\"code\":400,\"message\":\"API key not valid.\",\"status\":\"INVALID_ARGUMENT\",\"details\":["
                  "{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\"}]}}";
    ac_replay_call("gemini", &ctx, &rp, res, 1, hello, 0, &r);
    CHECK_EQ(r.attempts, 1);
    CHECK_STR(r.out.ptr, "ERR UNAUTHENTICATED: gemini HTTP 400: UNAUTHENTICATED: API key not valid.");
    ac_e2e_free(&r);
    ak_replay_free(&rp);
}

static void check_sent(const mock_request *q, int stream) {
    CHECK_STR(q->method, "POST");
    CHECK_STR(q->path, stream ? "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
                              : "/v1beta/models/gemini-2.5-flash:generateContent");
    CHECK_STR(mock_header(q, "x-goog-api-key"), "test-key");
    CHECK(strstr(q->body, "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]}]") != NULL);
}

static void end_to_end_over_posix_sockets(void) {
    ac_files sse, json, quota;
    mock_response rs[2];
    mock_server m;
    const mock_request *q;
    ac_e2e r;
    ac_files_load(&sse, "gemini", "text.sse");
    ac_files_load(&json, "gemini", "response.json");
    ac_files_load(&quota, "gemini", "error_429.json");

    /* streamed (CRLF framing), 5 bytes per HTTP chunk */
    memset(rs, 0, sizeof rs);
    rs[0].body = sse.body, rs[0].content_type = "text/event-stream", rs[0].chunked = 1, rs[0].piece = 5;
    q = ac_e2e_mock("gemini", &m, rs, 1, hello, 1, &r);
    CHECK_STR(r.out.ptr, sse.out);
    CHECK_STR(r.chunks.ptr, sse.chunks);
    if (q) check_sent(q, 1);
    mock_free(&m);
    ac_e2e_free(&r);

    /* 429 with RetryInfo 1.5 s in the body, then the answer */
    memset(rs, 0, sizeof rs);
    rs[0].status = 429, rs[0].body = quota.body;
    rs[1].body = json.body;
    q = ac_e2e_mock("gemini", &m, rs, 2, hello, 0, &r);
    CHECK_STR(r.out.ptr, json.out);
    CHECK_EQ(r.attempts, 2);
    CHECK_EQ(r.waited_ms, 1500);
    if (q) check_sent(q, 0);
    mock_free(&m);
    ac_e2e_free(&r);

    /* 401 (a bad OAuth token on a proxy): final at once */
    memset(rs, 0, sizeof rs);
    rs[0].status = 401;
    rs[0].body = "{\"error\":{\"code\":401,\"message\":\"Request had invalid authentication credentials.\",\"status\":\"UNAUTHENTICATED\"}}";
    CHECK(mock_start(&m, rs, 1) == 0);
    ac_e2e_run("gemini", m.url, hello, 1, &r);
    CHECK_STR(r.out.ptr, "ERR UNAUTHENTICATED: gemini HTTP 401: UNAUTHENTICATED: Request had invalid authentication credentials.");
    CHECK_EQ(r.attempts, 1);
    mock_free(&m);
    ac_e2e_free(&r);
    ac_files_free(&sse);
    ac_files_free(&json);
    ac_files_free(&quota);
}

int main(void) {
    RUN(response_fixtures_whole_bytewise_and_cut_everywhere);
    RUN(request_golden_files);
    RUN(model_ids_and_base_urls);
    RUN(synthesized_refs_round_trip);
    RUN(allocation_failures_are_clean);
    RUN(hostile_streams_fail_cleanly);
    RUN(retry_hints_drive_the_retry_policy);
    RUN(end_to_end_over_posix_sockets);
    return t_summary();
}
