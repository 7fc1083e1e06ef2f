/* model layer: data model helpers, the call driver with retries, the local models */
#include "test.h"

static const char *write_json(const ak_json *v) {
    static char out[8192];
    ak_buf b;
    ak_buf_init_fixed(&b, out, sizeof out);
    ak_json_write(v, &b);
    return out;
}

static void finish_reasons_and_parts(void) {
    ak_json_doc d;
    ak_json *m, *p;
    ak_buf b;
    ak_error e;
    CHECK_STR(ak_finish_reason_name(AK_FINISH_INTERRUPTED), "interrupted");
    CHECK_EQ(ak_finish_reason_from_name("detached"), AK_FINISH_DETACHED);
    CHECK_EQ(ak_finish_reason_from_name("nope"), AK_FINISH_UNKNOWN);
    ak_json_doc_init(&d, NULL);
    m = ak_msg_new(&d, "model");
    CHECK_OK(ak_msg_add(m, ak_part_text(&d, "hello ")));
    CHECK_OK(ak_msg_add(m, ak_part_tool_request(&d, "getWeather", "w1", t_parse(&d, "{\"city\":\"Oslo\"}"))));
    CHECK_OK(ak_msg_add(m, ak_part_text(&d, "world")));
    CHECK_OK(ak_msg_add(m, ak_part_media(&d, "data:image/png;base64,AAAA", "image/png")));
    CHECK_STR(write_json(m), "{\"role\":\"model\",\"content\":[{\"text\":\"hello \"},{\"toolRequest\":{\"name\":\"getWeather\","
              "\"ref\":\"w1\",\"input\":{\"city\":\"Oslo\"}}},{\"text\":\"world\"},{\"media\":{\"url\":\"data:image/png;base64,AAAA\","
              "\"contentType\":\"image/png\"}}]}");
    ak_buf_init(&b, NULL);
    ak_msg_text(m, &b);
    CHECK_STR(b.ptr, "hello world");
    ak_buf_free(&b);
    p = ak_json_at(ak_json_get(m, "content"), 1);
    CHECK_EQ(ak_part_kind_of(p), AK_PART_TOOL_REQUEST);
    CHECK_OK(ak_msg_validate(m, &e));
    CHECK_EQ(ak_msg_validate(t_parse(&d, "{\"role\":\"robot\",\"content\":[]}"), &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_msg_validate(t_parse(&d, "{\"role\":\"user\"}"), &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_msg_validate(t_parse(&d, "{\"role\":\"user\",\"content\":[{\"text\":\"a\",\"data\":1}]}"), &e),
             AK_ERR_INVALID_ARGUMENT);
    CHECK(strstr(e.message, "content[0]") != NULL);
    CHECK_EQ(ak_msg_validate(t_parse(&d, "{\"role\":\"user\",\"content\":[{\"text\":5}]}"), &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_msg_validate(t_parse(&d, "{\"role\":\"user\",\"content\":[{\"toolRequest\":{}}]}"), &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_OK(ak_msg_validate(t_parse(&d, "{\"role\":\"user\",\"content\":[{\"custom\":{},\"metadata\":{\"x\":1}}],\"metadata\":{}}"), &e));
    ak_json_doc_free(&d);
}

static void data_urls_split(void) {
    const char *mime, *data;
    size_t ml, dl;
    CHECK_OK(ak_data_url_split("data:image/png;base64,iVBOR", &mime, &ml, &data, &dl));
    CHECK(ml == 9 && memcmp(mime, "image/png", 9) == 0 && dl == 5 && memcmp(data, "iVBOR", 5) == 0);
    CHECK_OK(ak_data_url_split("data:image/jpeg;name=x.jpg;base64,AA", &mime, &ml, &data, &dl));
    CHECK(ml == 10 && dl == 2);
    CHECK_EQ(ak_data_url_split("https://x/y.png", &mime, &ml, &data, &dl), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_data_url_split("data:text/plain,hello", &mime, &ml, &data, &dl), AK_ERR_INVALID_ARGUMENT);
}

/* A fake clock and a flaky model: fails `fails` times (retryable, with a retry hint) then answers. */
static int64_t clock_now;
static int64_t fake_clock(void *ud) { (void)ud; return clock_now; }
static void fake_sleep(void *ud, int64_t ms) { (void)ud; clock_now += ms; }

typedef struct flaky { int fails, calls, pending; int64_t hint; ak_status status; int retryable; } flaky;

static ak_result flaky_finish(ak_model *m, ak_model_call *call) {
    flaky *f = (flaky *)m->ud;
    if (f->calls <= f->fails) {
        ak_model_call_fail(call, f->status, f->retryable, f->hint, "attempt %d failed", f->calls);
    } else {
        ak_json_doc *d = call->out;
        ak_json *r = ak_json_new_object(d), *msg = ak_msg_new(d, "model");
        ak_msg_add(msg, ak_part_text(d, "ok"));
        ak_json_set(d, r, "message", msg);
        ak_json_set_str(d, r, "finishReason", "stop");
        ak_model_call_succeed(call, r);
    }
    return AK_OK;
}
static ak_result flaky_start(ak_model *m, ak_model_call *call) {
    flaky *f = (flaky *)m->ud;
    f->calls++;
    return f->pending ? AK_PENDING : flaky_finish(m, call);
}
static ak_result flaky_poll(ak_model *m, ak_model_call *call, int wait_ms) {
    (void)wait_ms;
    return flaky_finish(m, call);
}

static void driver_retries_with_backoff_and_hints(void) {
    ak_context ctx;
    ak_context_desc desc;
    ak_model model;
    flaky f;
    ak_json_doc d;
    ak_json *req, *resp;
    ak_error e;
    int64_t start;
    memset(&desc, 0, sizeof desc);
    desc.mono_ms = fake_clock;
    desc.now_ms = fake_clock;
    desc.sleep_ms = fake_sleep;
    ak_context_init(&ctx, &desc);
    ak_json_doc_init(&d, NULL);
    req = t_parse(&d, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}]}");
    memset(&model, 0, sizeof model);
    model.name = "flaky";
    model.start = flaky_start;
    model.poll = flaky_poll;
    model.ud = &f;

    /* two retryable failures with a 1500 ms hint, then success: 3 attempts, 3 s of waiting */
    memset(&f, 0, sizeof f);
    f.fails = 2, f.hint = 1500, f.status = AK_STATUS_RESOURCE_EXHAUSTED, f.retryable = 1;
    start = clock_now = 1000;
    CHECK_OK(ak_model_generate(&ctx, &model, req, &d, &resp, &e));
    CHECK_EQ(f.calls, 3);
    CHECK_EQ(clock_now - start, 3000);
    CHECK_STR(ak_json_str(ak_json_path(resp, "message.content[0].text")), "ok");

    /* exponential backoff without hints (no jitter): 500 + 1000 + 2000 before the 4th attempt */
    {
        ak_model_call call;
        memset(&f, 0, sizeof f);
        f.fails = 3, f.hint = -1, f.status = AK_STATUS_UNAVAILABLE, f.retryable = 1;
        ak_model_call_init(&call, &ctx, req, &d);
        call.retry.max_attempts = 4;
        call.retry.no_jitter = 1;
        start = clock_now;
        CHECK_EQ(ak_model_call_start(&call, &model), AK_PENDING);
        CHECK_EQ(call.state, AK_CALL_WAITING);
        CHECK_EQ(ak_model_call_poll(&call, 0), AK_PENDING); /* no time passed: still waiting */
        while (ak_model_call_poll(&call, 10000) == AK_PENDING) {
        }
        CHECK_EQ(call.state, AK_CALL_DONE);
        CHECK_EQ(call.attempts, 4);
        CHECK_EQ(clock_now - start, 3500);
    }

    /* attempts exhausted: the last error is reported */
    memset(&f, 0, sizeof f);
    f.fails = 10, f.hint = 10, f.status = AK_STATUS_UNAVAILABLE, f.retryable = 1;
    CHECK_EQ(ak_model_generate(&ctx, &model, req, &d, &resp, &e), AK_ERR_MODEL);
    CHECK_EQ(f.calls, 3);
    CHECK_EQ(e.status, AK_STATUS_UNAVAILABLE);
    CHECK_STR(e.message, "attempt 3 failed");

    /* not retryable: one attempt */
    memset(&f, 0, sizeof f);
    f.fails = 1, f.hint = -1, f.status = AK_STATUS_UNAUTHENTICATED, f.retryable = 0;
    CHECK_EQ(ak_model_generate(&ctx, &model, req, &d, &resp, &e), AK_ERR_MODEL);
    CHECK_EQ(f.calls, 1);
    CHECK_EQ(e.status, AK_STATUS_UNAUTHENTICATED);

    /* pending model + cancel */
    {
        ak_model_call call;
        memset(&f, 0, sizeof f);
        f.pending = 1;
        ak_model_call_init(&call, &ctx, req, &d);
        CHECK_EQ(ak_model_call_start(&call, &model), AK_PENDING);
        ak_model_call_cancel(&call);
        CHECK_EQ(call.state, AK_CALL_FAILED);
        CHECK_EQ(call.error.status, AK_STATUS_CANCELLED);
    }
    ak_json_doc_free(&d);
}

static void programmable_model_replays_queued_responses(void) {
    ak_programmable_model pm;
    ak_json_doc d, out;
    ak_json *resp;
    ak_error e;
    t_alloc ta;
    ak_context ctx;
    ak_context_init(&ctx, NULL);
    ak_json_doc_init(&d, NULL);
    ak_json_doc_init(&out, NULL);
    ak_programmable_model_init(&pm, t_alloc_init(&ta, 0), NULL);
    CHECK_OK(ak_programmable_model_set(&pm,
        t_parse(&d, "[{\"message\":{\"role\":\"model\",\"content\":[{\"text\":\"one\"}]},\"finishReason\":\"stop\"},"
                  "{\"message\":{\"role\":\"model\",\"content\":[{\"text\":\"two\"}]},\"finishReason\":\"length\"}]"),
        t_parse(&d, "[[{\"content\":[{\"text\":\"o\"}]},{\"content\":[{\"text\":\"ne\"}]}]]")));
    CHECK_OK(ak_model_generate(&ctx, &pm.model, t_parse(&d, "{\"messages\":[]}"), &out, &resp, &e));
    CHECK_STR(write_json(resp), "{\"message\":{\"role\":\"model\",\"content\":[{\"text\":\"one\"}]},\"finishReason\":\"stop\"}");
    CHECK_OK(ak_model_generate(&ctx, &pm.model, t_parse(&d, "{\"messages\":[1]}"), &out, &resp, &e));
    CHECK_STR(ak_json_get_str(resp, "finishReason"), "length");
    CHECK_STR(write_json(pm.last_request), "{\"messages\":[1]}");
    CHECK_EQ(ak_model_generate(&ctx, &pm.model, t_parse(&d, "{\"messages\":[]}"), &out, &resp, &e), AK_ERR_MODEL);
    CHECK_EQ(e.status, AK_STATUS_INTERNAL);
    ak_programmable_model_free(&pm);
    CHECK_EQ(ta.live, 0);
    ak_json_doc_free(&d);
    ak_json_doc_free(&out);
}

/* Runs the scripted model on messages; returns the response (or "ERR STATUS: msg") and the
   concatenated chunks. */
static char chunks_seen[1024];
static ak_result collect_chunk(void *ud, const ak_json *chunk) {
    (void)ud;
    strcat(chunks_seen, write_json(chunk));
    return AK_OK;
}

static const char *scripted(const char *messages) {
    static char out[4096];
    ak_context ctx;
    ak_model model;
    ak_model_call call;
    ak_json_doc d;
    char req[4096];
    ak_result rc;
    ak_context_init(&ctx, NULL);
    ak_scripted_model_init(&model);
    ak_json_doc_init(&d, NULL);
    snprintf(req, sizeof req, "{\"messages\":%s}", messages);
    chunks_seen[0] = 0;
    ak_model_call_init(&call, &ctx, t_parse(&d, req), &d);
    call.stream = 1;
    call.on_chunk = collect_chunk;
    rc = ak_model_call_start(&call, &model);
    CHECK_EQ(rc, AK_OK);
    if (call.state == AK_CALL_DONE) snprintf(out, sizeof out, "%s", write_json(call.response));
    else snprintf(out, sizeof out, "ERR %s: %s", ak_status_name(call.error.status), call.error.message);
    ak_json_doc_free(&d);
    return out;
}

#define USER(t) "{\"role\":\"user\",\"content\":[{\"text\":\"" t "\"}]}"
#define SYS(t) "{\"role\":\"system\",\"content\":[{\"text\":\"" t "\"}]}"
#define ANSWER(t) "{\"message\":{\"role\":\"model\",\"content\":[{\"text\":\"" t "\"}]},\"finishReason\":\"stop\"}"
#define TOOLREQ(...) "{\"message\":{\"role\":\"model\",\"content\":[" __VA_ARGS__ "]},\"finishReason\":\"stop\"}"

static void scripted_model_follows_the_interop_table(void) {
    CHECK_STR(scripted("[" USER("  hello   there ") "]"), ANSWER("echo: hello there"));
    CHECK_STR(scripted("[" USER("stream a b c") "]"), ANSWER("a b c"));
    CHECK_STR(chunks_seen, "{\"content\":[{\"text\":\"a \"}]}{\"content\":[{\"text\":\"b \"}]}{\"content\":[{\"text\":\"c\"}]}");
    CHECK_STR(scripted("[" USER("weather Oslo") "]"),
              TOOLREQ("{\"toolRequest\":{\"name\":\"getWeather\",\"ref\":\"w1\",\"input\":{\"city\":\"Oslo\"}}}"));
    CHECK_STR(scripted("[" USER("transfer 100") "]"),
              TOOLREQ("{\"toolRequest\":{\"name\":\"approveTransfer\",\"ref\":\"t1\",\"input\":{\"amount\":100}}}"));
    CHECK_STR(scripted("[" USER("transfer lots") "]"),
              TOOLREQ("{\"toolRequest\":{\"name\":\"approveTransfer\",\"ref\":\"t1\",\"input\":{\"amount\":null}}}"));
    CHECK_STR(scripted("[" USER("delete /tmp/x y") "]"),
              TOOLREQ("{\"toolRequest\":{\"name\":\"deleteFile\",\"ref\":\"d1\",\"input\":{\"path\":\"/tmp/x y\"}}}"));
    CHECK_STR(scripted("[" USER("both") "]"),
              TOOLREQ("{\"toolRequest\":{\"name\":\"getWeather\",\"ref\":\"w1\",\"input\":{\"city\":\"Oslo\"}}},"
                      "{\"toolRequest\":{\"name\":\"approveTransfer\",\"ref\":\"t1\",\"input\":{\"amount\":5}}}"));
    CHECK_STR(scripted("[" SYS("be nice") "," USER("a") ",{\"role\":\"model\",\"content\":[]}," USER("count") "]"),
              ANSWER("history=3"));
    CHECK_STR(scripted("[" SYS("be nice") "," USER("system?") "]"), ANSWER("system=be nice"));
    CHECK_STR(scripted("[" USER("system?") "]"), ANSWER("system=none"));
    CHECK_STR(scripted("[" USER("modelfail") "]"), "ERR RESOURCE_EXHAUSTED: model on fire");
    CHECK_STR(scripted("[" USER("weather Oslo") ",{\"role\":\"model\",\"content\":[]},{\"role\":\"tool\",\"content\":["
                       "{\"toolResponse\":{\"name\":\"getWeather\",\"ref\":\"w1\",\"output\":{\"city\":\"Oslo\",\"tempC\":21}}},"
                       "{\"toolResponse\":{\"name\":\"x\",\"output\":\"y\"}}]}]"),
              ANSWER("tool result: [{\\\"city\\\":\\\"Oslo\\\",\\\"tempC\\\":21},\\\"y\\\"]"));
    CHECK_STR(scripted("[]"), ANSWER("echo: "));
}

static void scripted_slowstream_waits_and_can_be_cancelled(void) {
    ak_context ctx;
    ak_context_desc desc;
    ak_model model;
    ak_model_call call;
    ak_json_doc d;
    memset(&desc, 0, sizeof desc);
    desc.mono_ms = fake_clock;
    desc.sleep_ms = fake_sleep;
    ak_context_init(&ctx, &desc);
    ak_scripted_model_init(&model);
    ak_json_doc_init(&d, NULL);
    clock_now = 0;
    chunks_seen[0] = 0;
    ak_model_call_init(&call, &ctx, t_parse(&d, "{\"messages\":[" USER("slowstream") "]}"), &d);
    call.stream = 1;
    call.on_chunk = collect_chunk;
    CHECK_EQ(ak_model_call_start(&call, &model), AK_PENDING);
    CHECK_STR(chunks_seen, "{\"content\":[{\"text\":\"tick 1\"}]}");
    clock_now += 9000;
    CHECK_EQ(ak_model_call_poll(&call, 0), AK_PENDING);
    clock_now += 1000;
    CHECK_EQ(ak_model_call_poll(&call, 0), AK_OK);
    CHECK_STR(write_json(call.response), ANSWER("slow done"));
    ak_model_call_init(&call, &ctx, t_parse(&d, "{\"messages\":[" USER("slowstream") "]}"), &d);
    CHECK_EQ(ak_model_call_start(&call, &model), AK_PENDING);
    ak_model_call_cancel(&call);
    CHECK_EQ(call.error.status, AK_STATUS_CANCELLED);
    ak_json_doc_free(&d);
}

int main(void) {
    RUN(finish_reasons_and_parts);
    RUN(data_urls_split);
    RUN(driver_retries_with_backoff_and_hints);
    RUN(programmable_model_replays_queued_responses);
    RUN(scripted_model_follows_the_interop_table);
    RUN(scripted_slowstream_waits_and_can_be_cancelled);
    return t_summary();
}
