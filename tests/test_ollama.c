/* The Ollama native adapter (/api/chat): NDJSON fixtures (tests/fixtures/ollama) decoded
   whole, byte by byte and cut at every offset; request building against golden bodies and
   refused input; allocation failure; and end to end through the POSIX transport against a
   mock server (streamed, not streamed, 429 with Retry-After on a fake clock, 401). */
#include "adapter_check.h"

#define FIXTURES "tests/fixtures/ollama"

static void fixtures_decode_the_same_however_cut(void) {
    int count = 0, bad = mf_check_dir(ak_adapter_ollama(), FIXTURES, &count);
    CHECK_EQ(bad, 0);
    CHECK_EQ(count, 14);
}

static void decoding_survives_allocation_failures(void) {
    ac_fixture_survives_alloc_failures("ollama", "tool_calls_stream.ndjson", 5);
    ac_fixture_survives_alloc_failures("ollama", "text_thinking_stream.ndjson", 5);
    ac_fixture_survives_alloc_failures("ollama", "chat.json", 5);
}

/* ---- request building ------------------------------------------------------------------------ */

static ac_built built;

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
    CHECK_OK(ac_build_text(&built, ak_adapter_ollama(), &cfg,
                   "{" CONVERSATION ",\"tools\":[{\"name\":\"zoom\",\"description\":\"Zoom in\",\"inputSchema\":{\"type\":\"object\","
                   "\"properties\":{\"factor\":{\"type\":\"number\"}}}},{\"name\":\"now\"}],\"toolChoice\":\"required\","
                   "\"output\":{\"format\":\"json\",\"schema\":{\"type\":\"object\"}},"
                   "\"config\":{\"temperature\":0.2,\"topP\":0.9,\"topK\":40,\"maxOutputTokens\":512,\"stopSequences\":[\"END\",\"STOP\"],"
                   "\"seed\":7,\"num_ctx\":8192,\"think\":\"high\",\"keep_alive\":\"5m\",\"apiKey\":\"leak\"}}",
                   1));
    CHECK_STR(built.url, "http://localhost:11434/api/chat");
    CHECK_STR(built.headers, "Content-Type: application/json\n");
    CHECK_STR(built.body,
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
    CHECK_OK(ac_build_text(&built, ak_adapter_ollama(), &cfg, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}],\"tools\":[{\"name\":\"t\"}],"
                         "\"toolChoice\":\"none\",\"output\":{\"format\":\"json\"},\"config\":{\"version\":\"gpt-oss:120b\"}}", 0));
    CHECK_STR(built.url, "https://ollama.com/api/chat");
    CHECK_STR(built.headers, "Content-Type: application/json\nAuthorization: Bearer olk\n");
    CHECK_STR(built.body, "{\"model\":\"gpt-oss:120b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"format\":\"json\",\"stream\":false}");
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
        CHECK_EQ(ac_build_text(&built, ak_adapter_ollama(), &cfg, cases[i].request, 0), AK_ERR_INVALID_ARGUMENT);
        CHECK_STR(built.err.message, cases[i].message);
    }
}

static void request_building_survives_allocation_failures(void) {
    ak_provider_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.model = "llama3.2";
    cfg.api_key = "k";
    ac_build_survives_alloc_failures(ak_adapter_ollama(), &cfg, "{" CONVERSATION ",\"config\":{\"temperature\":1,\"think\":true}}", 0);
}

/* ---- end to end over the POSIX transport ------------------------------------------------------- */

#define E2E_REQUEST "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hi\"}]}]}"

/* What e2e gives: the call, the fixture's expected outcome and chunks, the body of the last
   request the server read. */
typedef struct e2e_result {
    ac_mock_call mc;
    char want_out[4096], want_chunks[4096], body[4096];
} e2e_result;

/* Serves `first` (if any) and then the fixture `name`; returns the rendered outcome. */
static const char *e2e(const mock_response *first, const char *name, int stream, e2e_result *res) {
    ac_endpoint ep;
    mock_response r[2];
    ac_files f;
    size_t n = 0;
    ac_files_load(&f, "ollama", name);
    snprintf(res->want_out, sizeof res->want_out, "%s", f.out);
    snprintf(res->want_chunks, sizeof res->want_chunks, "%s", f.chunks);
    memset(r, 0, sizeof r);
    if (first) r[n++] = *first;
    r[n].content_type = stream ? "application/x-ndjson" : "application/json";
    r[n].body = f.body;
    r[n].chunked = stream;
    r[n].piece = 11;
    n++;
    memset(&ep, 0, sizeof ep);
    ep.adapter = ak_adapter_ollama();
    ep.model = "qwen3:8b";
    ep.base_path = "";
    ac_mock_call_run(&res->mc, &ep, r, n, E2E_REQUEST, stream);
    res->body[0] = 0;
    if (res->mc.served) {
        const mock_request *q = &res->mc.m.req[res->mc.served - 1];
        CHECK_STR(q->method, "POST");
        CHECK_STR(q->path, "/api/chat");
        CHECK(mock_header(q, "authorization") == NULL);
        snprintf(res->body, sizeof res->body, "%s", q->body);
    }
    mock_free(&res->mc.m);
    ac_files_free(&f);
    return res->mc.out;
}

static void e2e_streaming_and_not(void) {
    e2e_result res;
    CHECK_STR(e2e(NULL, "text_thinking_stream.ndjson", 1, &res), res.want_out);
    CHECK_STR(res.mc.chunks, res.want_chunks);
    CHECK_STR(res.body, "{\"model\":\"qwen3:8b\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"stream\":true}");
    CHECK_STR(e2e(NULL, "tool_calls_stream.ndjson", 1, &res), res.want_out);
    CHECK_STR(res.mc.chunks, res.want_chunks);
    CHECK_STR(e2e(NULL, "chat.json", 0, &res), res.want_out);
    CHECK_STR(res.mc.chunks, "");
    CHECK_STR(res.body, "{\"model\":\"qwen3:8b\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"stream\":false}");
    CHECK_EQ(res.mc.attempts, 1);
}

static void e2e_rate_limit_then_success(void) {
    mock_response r;
    e2e_result res;
    memset(&r, 0, sizeof r);
    r.status = 429;
    r.headers = "Retry-After: 1.25\r\n";
    r.body = "{\"error\":\"too many requests\"}";
    CHECK_STR(e2e(&r, "tool_calls_stream.ndjson", 1, &res), res.want_out);
    CHECK_EQ(res.mc.attempts, 2);
    CHECK_EQ(res.mc.served, 2);
    CHECK_EQ(res.mc.slept, 1250);
}

static void e2e_unauthorized_is_final(void) {
    mock_response r;
    e2e_result res;
    memset(&r, 0, sizeof r);
    r.status = 401;
    r.body = "{\"error\":\"unauthorized\"}";
    CHECK_STR(e2e(&r, "chat.json", 0, &res), "{\"error\":{\"status\":\"UNAUTHENTICATED\",\"message\":\"ollama HTTP 401: unauthorized\"}}");
    CHECK_EQ(res.mc.attempts, 1);
    CHECK_EQ(res.mc.served, 1);
    CHECK_EQ(res.mc.slept, 0);
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
