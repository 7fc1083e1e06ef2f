/* The Ollama native adapter (/api/chat): NDJSON fixtures (tests/fixtures/ollama) decoded
   whole, byte by byte and cut at every offset; request building against golden bodies and
   refused input; allocation failure; and end to end through the POSIX transport against a
   mock server (streamed, not streamed, 429 with Retry-After on a fake clock, 401). */
#include "test.h"
#include "model_fixtures.h"
#include "mockserver.h"

#define FIXTURES "tests/fixtures/ollama"

static ak_json *parse(ak_json_doc *d, const char *text) {
    ak_json *v = NULL;
    ak_error e;
    if (ak_json_parse_value(d, text, strlen(text), NULL, &v, &e) != AK_OK) {
        fprintf(stderr, "bad test JSON: %s\n%s\n", e.message, text);
        abort();
    }
    return v;
}

static void fixtures_decode_the_same_however_cut(void) {
    int count = 0, bad = mf_check_dir(ak_adapter_ollama(), FIXTURES, &count);
    CHECK_EQ(bad, 0);
    CHECK_EQ(count, 14);
}

static void decoding_survives_allocation_failures(void) {
    static const char *const names[] = {"tool_calls_stream.ndjson", "text_thinking_stream.ndjson", "chat.json"};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[256];
        size_t len;
        char *body, *want;
        mf_case c;
        long long n;
        snprintf(path, sizeof path, FIXTURES "/%s", names[i]);
        body = mf_read(path, &len);
        snprintf(path, sizeof path, FIXTURES "/%.*s.out", (int)(strrchr(names[i], '.') - names[i]), names[i]);
        want = mf_read(path, NULL);
        CHECK(body && want);
        if (!body || !want) return;
        memset(&c, 0, sizeof c);
        c.adapter = ak_adapter_ollama();
        c.stream = strstr(names[i], ".ndjson") != NULL;
        c.body = body;
        c.len = len;
        for (n = 1; n < 5000; n++) {
            t_alloc ta;
            ak_buf out;
            int rc;
            ak_buf_init(&out, NULL);
            rc = mf_run(&c, 5, 0, t_alloc_init(&ta, n), &out, NULL);
            ak_buf_putc(&out, '\n');
            CHECK_EQ(ta.live, 0);
            if (rc != -1 && strcmp(out.ptr, want) != 0)
                CHECK_MSG(strstr(out.ptr, "RESOURCE_EXHAUSTED") && strstr(out.ptr, "memory"), "fail_at %lld: %s", n, out.ptr);
            ak_buf_free(&out);
            if (ta.count < n) break;
        }
        CHECK(n < 5000);
        free(body);
        free(want);
    }
}

/* ---- request building ------------------------------------------------------------------------ */

static char b_url[512], b_headers[1024], b_body[16384];
static ak_error b_err;

static ak_result build(const ak_provider_config *cfg, const char *request, int stream) {
    ak_context ctx;
    ak_json_doc d;
    ak_model_call call;
    ak_http_out out;
    ak_result rc;
    size_t i;
    ak_context_init(&ctx, NULL);
    ak_json_doc_init(&d, NULL);
    ak_model_call_init(&call, &ctx, parse(&d, request), &d);
    ak_http_out_init(&out, NULL);
    ak_error_clear(&b_err);
    b_url[0] = b_headers[0] = b_body[0] = 0;
    rc = ak_adapter_ollama()->build(cfg, call.request, call.messages, call.message_count, stream, &out, &b_err);
    if (rc == AK_OK) {
        snprintf(b_url, sizeof b_url, "%s", out.url.ptr);
        snprintf(b_body, sizeof b_body, "%s", out.body.ptr);
        for (i = 0; i < out.header_count; i++)
            snprintf(b_headers + strlen(b_headers), sizeof b_headers - strlen(b_headers), "%s: %s\n",
                     out.header_text.ptr + (uintptr_t)out.headers[i].name, out.header_text.ptr + (uintptr_t)out.headers[i].value);
    }
    ak_http_out_free(&out);
    ak_json_doc_free(&d);
    return rc;
}

#define CONVERSATION                                                                                                    \
    "\"messages\":[{\"role\":\"system\",\"content\":[{\"text\":\"Be brief.\"}]},"                                          \
    "{\"role\":\"user\",\"content\":[{\"text\":\"What is \"},{\"media\":{\"url\":\"data:image/png;base64,iVBORw0K\"}},"     \
    "{\"text\":\"this?\"},{\"media\":{\"url\":\"data:application/octet-stream;base64,AAAA\",\"contentType\":\"image/jpeg\"}}]}," \
    "{\"role\":\"model\",\"content\":[{\"reasoning\":\"Look \"},{\"reasoning\":\"closer.\"},"                               \
    "{\"toolRequest\":{\"name\":\"zoom\",\"ref\":\"call_x7k2m9qa\",\"input\":{\"factor\":2}}},{\"toolRequest\":{\"name\":\"now\"}}]}," \
    "{\"role\":\"tool\",\"content\":[{\"toolResponse\":{\"name\":\"zoom\",\"ref\":\"call_x7k2m9qa\",\"output\":{\"ok\":true}}}," \
    "{\"toolResponse\":{\"name\":\"now\",\"output\":\"noon\"}}]}]"

static void request_golden(void) {
    ak_provider_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.model = "qwen3:8b";
    CHECK_OK(build(&cfg,
                   "{" CONVERSATION ",\"tools\":[{\"name\":\"zoom\",\"description\":\"Zoom in\",\"inputSchema\":{\"type\":\"object\","
                   "\"properties\":{\"factor\":{\"type\":\"number\"}}}},{\"name\":\"now\"}],\"toolChoice\":\"required\","
                   "\"output\":{\"format\":\"json\",\"schema\":{\"type\":\"object\"}},"
                   "\"config\":{\"temperature\":0.2,\"topP\":0.9,\"topK\":40,\"maxOutputTokens\":512,\"stopSequences\":[\"END\",\"STOP\"],"
                   "\"seed\":7,\"num_ctx\":8192,\"think\":\"high\",\"keep_alive\":\"5m\",\"apiKey\":\"leak\"}}",
                   1));
    CHECK_STR(b_url, "http://localhost:11434/api/chat");
    CHECK_STR(b_headers, "Content-Type: application/json\n");
    CHECK_STR(b_body,
              "{\"model\":\"qwen3:8b\",\"messages\":["
              "{\"role\":\"system\",\"content\":\"Be brief.\"},"
              "{\"role\":\"user\",\"content\":\"What is this?\",\"images\":[\"iVBORw0K\",\"AAAA\"]},"
              "{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"Look closer.\",\"tool_calls\":["
              "{\"id\":\"call_x7k2m9qa\",\"function\":{\"name\":\"zoom\",\"arguments\":{\"factor\":2}}},"
              "{\"function\":{\"name\":\"now\",\"arguments\":{}}}]},"
              "{\"role\":\"tool\",\"content\":\"{\\\"ok\\\":true}\",\"tool_name\":\"zoom\",\"tool_call_id\":\"call_x7k2m9qa\"},"
              "{\"role\":\"tool\",\"content\":\"noon\",\"tool_name\":\"now\"}],"
              "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"zoom\",\"description\":\"Zoom in\",\"parameters\":"
              "{\"type\":\"object\",\"properties\":{\"factor\":{\"type\":\"number\"}}}}},"
              "{\"type\":\"function\",\"function\":{\"name\":\"now\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}],"
              "\"format\":{\"type\":\"object\"},"
              "\"options\":{\"temperature\":0.2,\"top_p\":0.9,\"top_k\":40,\"num_predict\":512,\"stop\":[\"END\",\"STOP\"],"
              "\"seed\":7,\"num_ctx\":8192},\"think\":\"high\",\"keep_alive\":\"5m\",\"stream\":true}");
    /* "none" leaves the tools out; json without schema; no options; stream:false spelled out;
       a key and a base URL (ollama.com cloud) */
    cfg.api_key = "olk";
    cfg.base_url = "https://ollama.com/";
    CHECK_OK(build(&cfg, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}],\"tools\":[{\"name\":\"t\"}],"
                         "\"toolChoice\":\"none\",\"output\":{\"format\":\"json\"},\"config\":{\"version\":\"gpt-oss:120b\"}}", 0));
    CHECK_STR(b_url, "https://ollama.com/api/chat");
    CHECK_STR(b_headers, "Content-Type: application/json\nAuthorization: Bearer olk\n");
    CHECK_STR(b_body, "{\"model\":\"gpt-oss:120b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"format\":\"json\",\"stream\":false}");
}

static void request_refuses_bad_input(void) {
    ak_provider_config cfg;
    static const struct { const char *request, *message; } cases[] = {
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"media\":{\"url\":\"https://x/cat.png\"}}]}]}",
         "messages[0].content[0]: ollama takes images as base64 data URLs only"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"a\"},{\"media\":{\"url\":\"data:application/pdf;base64,JVBE\"}}]}]}",
         "messages[0].content[1]: ollama takes images only, not application/pdf"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":[{\"reasoning\":\"x\"}]}]}",
         "messages[0].content[0]: ollama takes no reasoning parts in system messages"},
        {"{\"messages\":[{\"role\":\"tool\",\"content\":[{\"toolRequest\":{\"name\":\"f\"}}]}]}",
         "messages[0].content[0]: ollama takes no toolRequest parts in tool messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":{}}]}", "messages[0]: content must be an array of parts"},
        {"{\"messages\":[],\"tools\":[{\"name\":\"\"}]}", "tools[0] needs a name"},
        {"{\"messages\":[],\"output\":\"json\"}", "request.output has the wrong type"},
    };
    size_t i;
    memset(&cfg, 0, sizeof cfg);
    cfg.model = "m";
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ(build(&cfg, cases[i].request, 0), AK_ERR_INVALID_ARGUMENT);
        CHECK_STR(b_err.message, cases[i].message);
    }
}

static void request_building_survives_allocation_failures(void) {
    ak_provider_config cfg;
    ak_json_doc d;
    ak_context ctx;
    ak_model_call call;
    long long n;
    memset(&cfg, 0, sizeof cfg);
    cfg.model = "llama3.2";
    cfg.api_key = "k";
    ak_context_init(&ctx, NULL);
    ak_json_doc_init(&d, NULL);
    ak_model_call_init(&call, &ctx, parse(&d, "{" CONVERSATION ",\"config\":{\"temperature\":1,\"think\":true}}"), &d);
    for (n = 1; n < 2000; n++) {
        t_alloc ta;
        ak_http_out out;
        ak_error e;
        ak_result rc;
        ak_http_out_init(&out, t_alloc_init(&ta, n));
        rc = ak_adapter_ollama()->build(&cfg, call.request, call.messages, call.message_count, 1, &out, &e);
        CHECK(rc == AK_OK || (rc == AK_ERR_OUT_OF_MEMORY && strcmp(e.message, "out of memory") == 0));
        ak_http_out_free(&out);
        CHECK_EQ(ta.live, 0);
        if (ta.count < n) break;
    }
    CHECK(n < 2000);
    ak_json_doc_free(&d);
}

/* ---- end to end over the POSIX transport ------------------------------------------------------- */

#define E2E_REQUEST "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hi\"}]}]}"

static char rendered[4096];

/* Serves `first` (if any) and then the fixture `name`; returns the rendered outcome and
   fills the stats. */
typedef struct e2e_result {
    int attempts;
    size_t served;
    int64_t slept;
    char chunks[4096], want_out[4096], want_chunks[4096], body[4096];
} e2e_result;

static const char *e2e(const mock_response *first, const char *name, int stream, e2e_result *res) {
    mock_response r[2];
    mock_server m;
    mf_e2e e;
    ak_model_call call;
    ak_json_doc doc;
    ak_buf b;
    char path[256], *body, *want_out, *want_chunks;
    const char *dot = strrchr(name, '.');
    size_t n = 0, len;
    snprintf(path, sizeof path, FIXTURES "/%s", name);
    body = mf_read(path, &len);
    snprintf(path, sizeof path, FIXTURES "/%.*s.out", (int)(dot - name), name);
    want_out = mf_read(path, NULL);
    snprintf(path, sizeof path, FIXTURES "/%.*s.chunks", (int)(dot - name), name);
    want_chunks = mf_read(path, NULL);
    if (!body || !want_out || !want_chunks) abort();
    want_out[strlen(want_out) - 1] = 0;
    snprintf(res->want_out, sizeof res->want_out, "%s", want_out);
    snprintf(res->want_chunks, sizeof res->want_chunks, "%s", want_chunks);
    memset(r, 0, sizeof r);
    if (first) r[n++] = *first;
    r[n].content_type = stream ? "application/x-ndjson" : "application/json";
    r[n].body = body;
    r[n].chunked = stream;
    r[n].piece = 11;
    n++;
    if (mock_start(&m, r, n) != 0) abort();
    CHECK(mf_e2e_init(&e, ak_adapter_ollama(), "qwen3:8b", m.url, NULL, 0) == 0);
    ak_json_doc_init(&doc, NULL);
    mf_e2e_call(&e, E2E_REQUEST, stream, 3, &call, &doc);
    ak_buf_init_fixed(&b, rendered, sizeof rendered);
    mf_render_call(&call, &b);
    snprintf(res->chunks, sizeof res->chunks, "%s", e.chunks.ptr ? e.chunks.ptr : "");
    res->attempts = call.attempts;
    res->slept = e.slept;
    mock_stop(&m);
    res->served = m.count;
    res->body[0] = 0;
    if (m.count) {
        CHECK_STR(m.req[m.count - 1].method, "POST");
        CHECK_STR(m.req[m.count - 1].path, "/api/chat");
        CHECK(mock_header(&m.req[m.count - 1], "authorization") == NULL);
        snprintf(res->body, sizeof res->body, "%s", m.req[m.count - 1].body);
    }
    mock_free(&m);
    mf_e2e_free(&e);
    ak_json_doc_free(&doc);
    free(body);
    free(want_out);
    free(want_chunks);
    return rendered;
}

static void e2e_streaming_and_not(void) {
    e2e_result res;
    CHECK_STR(e2e(NULL, "text_thinking_stream.ndjson", 1, &res), res.want_out);
    CHECK_STR(res.chunks, res.want_chunks);
    CHECK_STR(res.body, "{\"model\":\"qwen3:8b\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"stream\":true}");
    CHECK_STR(e2e(NULL, "tool_calls_stream.ndjson", 1, &res), res.want_out);
    CHECK_STR(res.chunks, res.want_chunks);
    CHECK_STR(e2e(NULL, "chat.json", 0, &res), res.want_out);
    CHECK_STR(res.chunks, "");
    CHECK_STR(res.body, "{\"model\":\"qwen3:8b\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"stream\":false}");
    CHECK_EQ(res.attempts, 1);
}

static void e2e_rate_limit_then_success(void) {
    mock_response r;
    e2e_result res;
    memset(&r, 0, sizeof r);
    r.status = 429;
    r.headers = "Retry-After: 1.25\r\n";
    r.body = "{\"error\":\"too many requests\"}";
    CHECK_STR(e2e(&r, "tool_calls_stream.ndjson", 1, &res), res.want_out);
    CHECK_EQ(res.attempts, 2);
    CHECK_EQ(res.served, 2);
    CHECK_EQ(res.slept, 1250);
}

static void e2e_unauthorized_is_final(void) {
    mock_response r;
    e2e_result res;
    memset(&r, 0, sizeof r);
    r.status = 401;
    r.body = "{\"error\":\"unauthorized\"}";
    CHECK_STR(e2e(&r, "chat.json", 0, &res), "{\"error\":{\"status\":\"UNAUTHENTICATED\",\"message\":\"ollama HTTP 401: unauthorized\"}}");
    CHECK_EQ(res.attempts, 1);
    CHECK_EQ(res.served, 1);
    CHECK_EQ(res.slept, 0);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(fixtures_decode_the_same_however_cut);
    RUN(decoding_survives_allocation_failures);
    RUN(request_golden);
    RUN(request_refuses_bad_input);
    RUN(request_building_survives_allocation_failures);
    RUN(e2e_streaming_and_not);
    RUN(e2e_rate_limit_then_success);
    RUN(e2e_unauthorized_is_final);
    return t_summary();
}
