/* The OpenAI Chat Completions adapter: recorded-style response fixtures (tests/fixtures/openai)
   decoded whole, byte by byte and cut at every offset; request building against golden
   bodies, compatible-server flags and refused input; decoder limits, cancellation and
   allocation failure; and end to end through the POSIX transport against a mock server
   (streamed and not, 429 with a retry delay on a fake clock, 401, insufficient_quota, a
   connection reset before and after the first chunk, non-blocking mode). */
#include "adapter_check.h"

#define FIXTURES "tests/fixtures/openai"

/* ---- fixtures ----------------------------------------------------------------------------- */

static void fixtures_decode_the_same_however_cut(void) {
    int count = 0, bad = mf_check_dir(ak_adapter_openai(), FIXTURES, &count);
    CHECK_EQ(bad, 0);
    CHECK_EQ(count, 30);
}

static void decoding_survives_allocation_failures(void) {
    ac_fixture_survives_alloc_failures("openai", "tool_calls_parallel.sse", 7);
    ac_fixture_survives_alloc_failures("openai", "crlf_comments_reasoning.sse", 7);
    ac_fixture_survives_alloc_failures("openai", "tool_calls.json", 7);
}

/* Decodes body as OpenAI's answer with HTTP status (streamed when 200), the size limit
   max_body (0 = default) and, while cancel_after is set, a chunk callback that cancels at
   the cancel_after-th chunk; returns the rendered outcome and the retry hints. */
static int cancel_after;
static ak_result cancel_chunk(void *ud, const ak_json *chunk) {
    (void)ud;
    (void)chunk;
    return --cancel_after > 0 ? AK_OK : AK_ERR_CANCELLED;
}

static const char *decode(const char *body, size_t max_body, int status, int *no_retry, int *retryable) {
    ac_decode_run run;
    const char *line;
    memset(&run, 0, sizeof run);
    run.status = status;
    run.max_body = max_body;
    run.on_chunk = cancel_after ? cancel_chunk : NULL;
    line = ac_decode_as("openai", status == 200, body, &run);
    if (no_retry) *no_retry = run.no_retry;
    if (retryable) *retryable = run.retryable;
    return line;
}

#define DELTA(x) "data: {\"choices\":[{\"index\":0,\"delta\":" x ",\"finish_reason\":null}]}\n\n"
#define FINISH "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"

static void decoder_limits_hints_and_cancellation(void) {
    char *many;
    size_t i, at = 0;
    int no_retry = 0, retryable = 0;
    /* the answer as a whole is bounded like a body */
    CHECK_STR(decode(DELTA("{\"content\":\"0123456789012345678901234567890123456789\"}")
                     DELTA("{\"content\":\"0123456789012345678901234567890123456789\"}") FINISH, 64, 200, NULL, NULL),
              "{\"error\":{\"status\":\"RESOURCE_EXHAUSTED\",\"message\":\"openai: the answer is larger than 64 bytes\"}}");
    CHECK_STR(decode(DELTA("{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":"
                           "\"{\\\"a\\\":\\\"0123456789012345678901234567890123456789012345678901234567890123456789\\\"}\"}}]}")
                         FINISH, 64, 200, NULL, NULL),
              "{\"error\":{\"status\":\"RESOURCE_EXHAUSTED\",\"message\":\"openai: the answer is larger than 64 bytes\"}}");
    /* so is the number of tool calls */
    many = (char *)malloc(200 * 128 + 200);
    for (i = 0; i <= AK_MAX_TOOL_CALLS; i++)
        at += (size_t)sprintf(many + at, DELTA("{\"tool_calls\":[{\"index\":%lu,\"id\":\"c%lu\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}"),
                              (unsigned long)i, (unsigned long)i);
    strcpy(many + at, FINISH);
    CHECK_STR(decode(many, 0, 200, NULL, NULL),
              "{\"error\":{\"status\":\"RESOURCE_EXHAUSTED\",\"message\":\"openai: more than 128 tool calls in one answer\"}}");
    free(many);
    /* a chunk consumer that says stop */
    cancel_after = 2;
    CHECK_STR(decode(DELTA("{\"content\":\"a\"}") DELTA("{\"content\":\"b\"}") DELTA("{\"content\":\"c\"}") FINISH, 0, 200,
                     NULL, NULL),
              "{\"error\":{\"status\":\"CANCELLED\",\"message\":\"openai: the chunk consumer cancelled the call\"}}");
    cancel_after = 0;
    /* insufficient_quota must not be retried; rate limits and in-stream server errors may */
    decode("{\"error\":{\"message\":\"quota\",\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}", 0, 429,
           &no_retry, &retryable);
    CHECK_EQ(no_retry, 1);
    CHECK_EQ(retryable, 0);
    decode("{\"error\":{\"message\":\"slow down\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}}", 0, 429, &no_retry,
           &retryable);
    CHECK_EQ(no_retry, 0);
    CHECK_EQ(retryable, 1);
    decode("data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n", 0, 200, NULL, &retryable);
    CHECK_EQ(retryable, 1);
    decode("data: {\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\"}}\n\n", 0, 200, NULL, &retryable);
    CHECK_EQ(retryable, 0);
}

/* ---- request building ------------------------------------------------------------------------ */

static ac_built built;

static ak_provider_config config(const char *model, const char *base, const char *key, unsigned flags) {
    ak_provider_config c;
    memset(&c, 0, sizeof c);
    c.model = model;
    c.base_url = base;
    c.api_key = key;
    c.flags = flags;
    return c;
}

#define CONVERSATION                                                                                                    \
    "\"messages\":[{\"role\":\"system\",\"content\":[{\"text\":\"You are \"},{\"text\":\"terse.\"}]},"                    \
    "{\"role\":\"user\",\"content\":[{\"text\":\"Weather in Paris?\"},{\"media\":{\"url\":\"data:image/png;base64,iVBOR\","  \
    "\"contentType\":\"image/png\"}},{\"media\":{\"url\":\"https://x.test/cat.jpg\"}}]},"                                  \
    "{\"role\":\"model\",\"content\":[{\"reasoning\":\"hmm\",\"metadata\":{\"x\":1}},{\"text\":\"Checking.\"},"             \
    "{\"toolRequest\":{\"name\":\"get_weather\",\"ref\":\"call_abc\",\"input\":{\"city\":\"Paris\"}}},"                     \
    "{\"toolRequest\":{\"name\":\"get_time\"}},{\"custom\":{\"x\":1}}]},"                                                  \
    "{\"role\":\"tool\",\"content\":[{\"toolResponse\":{\"name\":\"get_weather\",\"ref\":\"call_abc\",\"output\":{\"temp_c\":18}}}," \
    "{\"toolResponse\":{\"name\":\"get_time\",\"output\":\"noon\"}}]},"                                                    \
    "{\"role\":\"model\",\"content\":[{\"data\":{\"ok\":true}}]},{\"role\":\"user\",\"content\":[{\"text\":\"Thanks\"}]}]"

#define TOOLS                                                                                                           \
    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather\",\"inputSchema\":{\"type\":\"object\",\"properties\":" \
    "{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}},{\"name\":\"get_time\"}]"

static void request_golden_full_conversation(void) {
    ak_provider_config cfg = config("gpt-4o-mini", NULL, "sk-test", 0);
    CHECK_OK(ac_build_text(&built, ak_adapter_openai(), &cfg,
                   "{" CONVERSATION "," TOOLS ",\"toolChoice\":\"required\",\"output\":{\"format\":\"json\",\"schema\":{\"type\":\"object\"}},"
                   "\"config\":{\"temperature\":0.2,\"maxOutputTokens\":512,\"topK\":3,\"topP\":1,\"stopSequences\":[\"\\n\\n\"],"
                   "\"seed\":7,\"apiKey\":\"leak\",\"frequency_penalty\":null}}",
                   1));
    CHECK_STR(built.url, "https://api.openai.com/v1/chat/completions");
    CHECK_STR(built.headers, "Content-Type: application/json\nAuthorization: Bearer sk-test\n");
    CHECK_STR(built.body,
              "{\"model\":\"gpt-4o-mini\",\"messages\":["
              "{\"role\":\"system\",\"content\":\"You are terse.\"},"
              "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris?\"},"
              "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBOR\"}},"
              "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/cat.jpg\"}}]},"
              "{\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":["
              "{\"id\":\"call_abc\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
              "{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]},"
              "{\"role\":\"tool\",\"tool_call_id\":\"call_abc\",\"content\":\"{\\\"temp_c\\\":18}\"},"
              "{\"role\":\"tool\",\"tool_call_id\":\"call_0\",\"content\":\"noon\"},"
              "{\"role\":\"assistant\",\"content\":\"{\\\"ok\\\":true}\"},"
              "{\"role\":\"user\",\"content\":\"Thanks\"}],"
              "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\",\"parameters\":"
              "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}},"
              "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}],"
              "\"tool_choice\":\"required\","
              "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"output\",\"schema\":{\"type\":\"object\"}}},"
              "\"temperature\":0.2,\"max_completion_tokens\":512,\"top_p\":1,\"stop\":[\"\\n\\n\"],\"seed\":7,"
              "\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    /* not streaming: no stream fields; the API key never goes into a body */
    CHECK_OK(ac_build_text(&built, ak_adapter_openai(), &cfg, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}],"
                                              "\"config\":{\"apiKey\":\"leak\"}}", 0));
    CHECK_STR(built.body, "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
}

static void request_compatible_server_flags(void) {
    ak_provider_config cfg = config("qwen", "http://127.0.0.1:8080/v1//", NULL,
                                    AK_OPENAI_MAX_TOKENS | AK_OPENAI_DEVELOPER_ROLE | AK_OPENAI_NO_STREAM_OPTIONS | AK_OPENAI_TOP_K);
    CHECK_OK(ac_build_text(&built, ak_adapter_openai(), &cfg,
                   "{\"messages\":[{\"role\":\"system\",\"content\":[{\"text\":\"s\"}]},{\"role\":\"user\",\"content\":[]}],"
                   "\"config\":{\"maxOutputTokens\":9,\"topK\":4,\"version\":\"qwen-2\",\"reasoning_effort\":\"low\","
                   "\"stream\":false,\"model\":\"x\",\"response_format\":{\"type\":\"text\"}},"
                   "\"output\":{\"format\":\"json\"},\"tools\":[],\"toolChoice\":\"none\"}",
                   1));
    CHECK_STR(built.url, "http://127.0.0.1:8080/v1/chat/completions");
    CHECK_STR(built.headers, "Content-Type: application/json\n"); /* no key: no Authorization */
    /* pass-through keys replace what the adapter built (response_format), except the
       adapter's own model, messages and stream */
    CHECK_STR(built.body, "{\"model\":\"qwen-2\",\"messages\":[{\"role\":\"developer\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"\"}],"
                      "\"response_format\":{\"type\":\"text\"},\"max_tokens\":9,\"top_k\":4,\"reasoning_effort\":\"low\",\"stream\":true}");
}

static void request_media_kinds(void) {
    ak_provider_config cfg = config("gpt-4o", NULL, "k", 0);
    CHECK_OK(ac_build_text(&built, ak_adapter_openai(), &cfg,
                   "{\"messages\":[{\"role\":\"user\",\"content\":[{\"media\":{\"url\":\"data:application/pdf;base64,JVBER\"}},"
                   "{\"media\":{\"url\":\"data:audio/wav;base64,UklGR\"}},{\"media\":{\"url\":\"data:audio/mpeg;base64,SUQz\"}},"
                   "{\"media\":{\"url\":\"data:;base64,AAAA\",\"contentType\":\"image/webp\"}}]}]}",
                   0));
    CHECK_STR(built.body, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":["
                      "{\"type\":\"file\",\"file\":{\"filename\":\"document.pdf\",\"file_data\":\"data:application/pdf;base64,JVBER\"}},"
                      "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"UklGR\",\"format\":\"wav\"}},"
                      "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"SUQz\",\"format\":\"mp3\"}},"
                      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:;base64,AAAA\"}}]}]}");
    CHECK_EQ(ac_build_text(&built, ak_adapter_openai(), &cfg,
                   "{\"messages\":[{\"role\":\"user\",\"content\":[{\"media\":{\"url\":\"https://x/a.pdf\",\"contentType\":\"application/pdf\"}}]}]}", 0),
             AK_ERR_INVALID_ARGUMENT);
    CHECK_STR(built.err.message, "messages[0].content[0]: openai takes images, and PDFs or wav/mp3 audio as base64 data URLs, "
                             "not application/pdf URLs");
    CHECK_EQ(ac_build_text(&built, ak_adapter_openai(), &cfg,
                   "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"a\"},{\"media\":{\"url\":\"data:text/plain;base64,aGk=\"}}]}]}", 0),
             AK_ERR_INVALID_ARGUMENT);
    CHECK_STR(built.err.message, "messages[0].content[1]: openai takes images, and PDFs or wav/mp3 audio as base64 data URLs, not text/plain");
}

static void request_refuses_bad_input(void) {
    ak_provider_config cfg = config("m", NULL, NULL, 0);
    static const struct { const char *request, *message; } cases[] = {
        {"{\"messages\":[{\"role\":\"robot\",\"content\":[]}]}", "messages[0]: role must be one of user, model, system, tool"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":5}]}]}", "messages[0]: content[0]: text and reasoning must be strings"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":[{\"media\":{\"url\":\"https://x/y.png\"}}]}]}",
         "messages[0].content[0]: openai takes no media parts in system messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"toolResponse\":{\"name\":\"f\"}}]}]}",
         "messages[0].content[0]: openai takes no toolResponse parts in user messages"},
        {"{\"messages\":[{\"role\":\"tool\",\"content\":[{\"text\":\"x\"}]}]}", "messages[0].content[0]: openai takes no text parts in tool messages"},
        {"{\"messages\":[{\"role\":\"model\",\"content\":[{\"media\":{\"url\":\"https://x/y.png\"}}]}]}",
         "messages[0].content[0]: openai takes no media parts in model messages"},
        {"{\"messages\":[],\"tools\":[{\"name\":\"a\"},{\"description\":\"no name\"}]}", "tools[1] needs a name"},
        {"{\"messages\":[],\"tools\":{}}", "request.tools has the wrong type"},
        {"{\"messages\":[],\"config\":[1]}", "request.config has the wrong type"},
        {"{\"messages\":[],\"tools\":[{\"name\":\"a\"}],\"toolChoice\":\"any\"}", "toolChoice must be auto, required or none"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ(ac_build_text(&built, ak_adapter_openai(), &cfg, cases[i].request, 0), AK_ERR_INVALID_ARGUMENT);
        CHECK_STR(built.err.message, cases[i].message);
    }
    cfg.model = NULL;
    CHECK_EQ(ac_build_text(&built, ak_adapter_openai(), &cfg, "{\"messages\":[]}", 0), AK_ERR_INVALID_ARGUMENT);
    CHECK_STR(built.err.message, "no model id configured");
    /* a tool choice without tools is not sent (the API rejects it) */
    cfg.model = "m";
    CHECK_OK(ac_build_text(&built, ak_adapter_openai(), &cfg, "{\"messages\":[],\"toolChoice\":\"auto\"}", 0));
    CHECK_STR(built.body, "{\"model\":\"m\",\"messages\":[]}");
}

static void request_building_survives_allocation_failures(void) {
    ak_provider_config cfg = config("gpt-4o-mini", NULL, "sk-test", 0);
    ac_build_survives_alloc_failures(ak_adapter_openai(), &cfg, "{" CONVERSATION "," TOOLS ",\"config\":{\"temperature\":1}}", 500);
}

/* ---- end to end over the POSIX transport ------------------------------------------------------- */

#define E2E_REQUEST "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hello\"}]}],\"config\":{\"temperature\":0}}"

/* The OpenAI API on the mock server: under /v1, key sk-test. */
static ac_endpoint openai_at(const char *model, int nonblocking) {
    ac_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.adapter = ak_adapter_openai();
    ep.model = model;
    ep.api_key = "sk-test";
    ep.base_path = "/v1";
    ep.nonblocking = nonblocking;
    return ep;
}

static void e2e_streams_and_records_the_request(int nonblocking) {
    ac_endpoint ep = openai_at("gpt-4o-mini", nonblocking);
    mock_response r[1];
    ac_mock_call mc;
    ac_files f;
    ac_files_load(&f, "openai", "tool_calls_parallel.sse");
    memset(r, 0, sizeof r);
    r[0].content_type = "text/event-stream";
    r[0].body = f.body;
    r[0].chunked = 1;
    r[0].piece = 7;
    r[0].delay_ms = nonblocking; /* drip-fed: the non-blocking pump sees partial events */
    ac_mock_call_run(&mc, &ep, r, 1, E2E_REQUEST, 1);
    CHECK_STR(mc.out, f.out);
    CHECK_STR(mc.chunks, f.chunks);
    CHECK_EQ(mc.attempts, 1);
    CHECK_EQ(mc.served, 1);
    if (mc.served == 1) {
        const mock_request *q = &mc.m.req[0];
        CHECK_STR(q->method, "POST");
        CHECK_STR(q->path, "/v1/chat/completions");
        CHECK_STR(mock_header(q, "authorization"), "Bearer sk-test");
        CHECK_STR(mock_header(q, "content-type"), "application/json");
        CHECK_STR(q->body, "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],"
                           "\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    }
    mock_free(&mc.m);
    ac_files_free(&f);
}

static void e2e_streaming_blocking(void) { e2e_streams_and_records_the_request(0); }
static void e2e_streaming_nonblocking(void) { e2e_streams_and_records_the_request(1); }

static void e2e_not_streaming(void) {
    ac_endpoint ep = openai_at("gpt-4o", 0);
    mock_response r[1];
    ac_mock_call mc;
    ac_files f;
    ac_files_load(&f, "openai", "tool_calls.json");
    memset(r, 0, sizeof r);
    r[0].body = f.body;
    ac_mock_call_run(&mc, &ep, r, 1, E2E_REQUEST, 0);
    CHECK_STR(mc.out, f.out);
    CHECK_STR(mc.chunks, "");
    CHECK_EQ(mc.served, 1);
    if (mc.served == 1) CHECK(strstr(mc.m.req[0].body, "\"stream\"") == NULL);
    mock_free(&mc.m);
    ac_files_free(&f);
}

/* Serves `first` and then the text stream (whose outcome a call that succeeds must give);
   mc gets the outcome, attempts, requests served and fake time slept. Returns mc->out. */
static const char *e2e_after(const mock_response *first, ac_mock_call *mc) {
    ac_endpoint ep = openai_at("gpt-4o-mini", 0);
    mock_response r[2];
    ac_files f;
    ac_files_load(&f, "openai", "text_stream.sse");
    r[0] = *first;
    memset(&r[1], 0, sizeof r[1]);
    r[1].content_type = "text/event-stream";
    r[1].body = f.body;
    ac_mock_call_run(mc, &ep, r, 2, E2E_REQUEST, 1);
    if (mc->done) CHECK_STR(mc->out, f.out);
    mock_free(&mc->m);
    ac_files_free(&f);
    return mc->out;
}

static void e2e_rate_limit_waits_the_hinted_delay(void) {
    mock_response r;
    ac_mock_call mc;
    memset(&r, 0, sizeof r);
    r.status = 429;
    r.headers = "retry-after: 9\r\nretry-after-ms: 2000\r\n";
    r.body = "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}}";
    e2e_after(&r, &mc);
    CHECK(strstr(mc.out, "\"finishReason\":\"stop\"") != NULL);
    CHECK_EQ(mc.attempts, 2);
    CHECK_EQ(mc.served, 2);
    CHECK_EQ(mc.slept, 2000); /* retry-after-ms wins over retry-after, through the retry policy */
}

static void e2e_unauthenticated_is_not_retried(void) {
    mock_response r;
    ac_mock_call mc;
    memset(&r, 0, sizeof r);
    r.status = 401;
    r.body = "{\"error\":{\"message\":\"Incorrect API key provided: sk-test.\",\"type\":\"invalid_request_error\","
             "\"param\":null,\"code\":\"invalid_api_key\"}}";
    CHECK_STR(e2e_after(&r, &mc),
              "{\"error\":{\"status\":\"UNAUTHENTICATED\",\"message\":\"openai HTTP 401: Incorrect API key provided: sk-test.\"}}");
    CHECK_EQ(mc.attempts, 1);
    CHECK_EQ(mc.served, 1);
    CHECK_EQ(mc.slept, 0);
    /* out of quota: a 429 that waiting does not fix */
    r.status = 429;
    r.body = "{\"error\":{\"message\":\"You exceeded your current quota.\",\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}";
    CHECK_STR(e2e_after(&r, &mc),
              "{\"error\":{\"status\":\"RESOURCE_EXHAUSTED\",\"message\":\"openai HTTP 429: You exceeded your current quota.\"}}");
    CHECK_EQ(mc.attempts, 1);
    CHECK_EQ(mc.served, 1);
}

static void e2e_connection_resets(void) {
    mock_response r;
    ac_mock_call mc;
    /* reset before a byte of the stream: retried with backoff (500 ms, no hint) */
    memset(&r, 0, sizeof r);
    r.content_type = "text/event-stream";
    r.body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lost\"},\"finish_reason\":null}]}\n\n";
    r.chunked = 1;
    r.reset = 1;
    r.reset_at = 0;
    e2e_after(&r, &mc);
    CHECK(strstr(mc.out, "\"finishReason\":\"stop\"") != NULL);
    CHECK_EQ(mc.attempts, 2);
    CHECK_EQ(mc.served, 2);
    CHECK(mc.slept >= 250 && mc.slept <= 500);
    /* reset after a chunk reached the caller: never retried, the caller saw output */
    r.reset_at = strlen(r.body);
    CHECK(strstr(e2e_after(&r, &mc), "\"status\":\"UNAVAILABLE\"") != NULL);
    CHECK_EQ(mc.attempts, 1);
    CHECK_EQ(mc.served, 1);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(fixtures_decode_the_same_however_cut);
    RUN(decoding_survives_allocation_failures);
    RUN(decoder_limits_hints_and_cancellation);
    RUN(request_golden_full_conversation);
    RUN(request_compatible_server_flags);
    RUN(request_media_kinds);
    RUN(request_refuses_bad_input);
    RUN(request_building_survives_allocation_failures);
    RUN(e2e_streaming_blocking);
    RUN(e2e_streaming_nonblocking);
    RUN(e2e_not_streaming);
    RUN(e2e_rate_limit_waits_the_hinted_delay);
    RUN(e2e_unauthenticated_is_not_retried);
    RUN(e2e_connection_resets);
    return t_summary();
}
