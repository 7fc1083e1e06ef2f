/* firmware.c - a real agent on a microcontroller, embedded the way a firmware project would
   do it: every byte from one fixed 64 KiB pool, the clock and the random source through the
   context hooks, no libc (the bare boards build it with -DAK_FREESTANDING).

   Part 1: ten turns with a prompt agent on the scripted model (the deterministic model of
   the interop agents), an in-memory session store and a getWeather tool the model calls.
   Part 2: one turn through the OpenAI adapter, with the same store and tool. The transport
   (on a device: esp_http_client, lwIP, a modem's AT stack) answers from flash with recorded
   Chat Completions event streams, a streamed tool call and then the streamed answer, fed in
   small pieces as a network does.

   Built with -DAK_NO_LOCAL_MODELS (the test models compiled out), it runs part 2 alone: the
   same library calls without the scripted model, which is test scaffolding a product does not
   link. tests/check_embedded.sh reports both builds' sizes.

   Each turn prints its answer and the pool in use; the run ends with the peak use of the
   pool and of the stack, and exits 0 only when every answer was the expected one and
   everything was given back to the pool. It uses the public API only: the implementation is
   built on its own from lib.c, so the size table can tell the library's bytes from these.
   Boards: see board.h; tests/check_embedded.sh builds and runs it on QEMU, and
   tests/test_embedded.c runs it on the development machine. */
#include "../../agentkit.h"
#include "board.h"

#define COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

/* No libc here: the few string helpers the program needs. */
static size_t fw_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

static int fw_streq(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

static void fw_zero(void *p, size_t n) {
    unsigned char *c = (unsigned char *)p;
    while (n--) *c++ = 0;
}

/* ---- output ----------------------------------------------------------------------------- */

#define SAY(...)                                                                                   \
    do {                                                                                           \
        char say_line_[400];                                                                       \
        ak_buf say_b_;                                                                             \
        ak_buf_init_fixed(&say_b_, say_line_, sizeof say_line_);                                   \
        ak_buf_printf(&say_b_, __VA_ARGS__);                                                       \
        board_write(say_b_.ptr, say_b_.len);                                                       \
    } while (0)

/* ---- the memory pool: a first-fit allocator over one static block ---------------------- */

/* All the library may use. */
#define FW_POOL_BYTES (64u * 1024u)

/* Every block starts with a header (8 bytes on a 32-bit MCU) holding its size, header
   included; free blocks are kept in address order and merge with their neighbours, so a
   long conversation does not fragment the pool. */
typedef union fw_hdr {
    struct {
        size_t size;
        union fw_hdr *next;      /* next free block (free blocks only) */
    } h;
    uint64_t align;
} fw_hdr;

static fw_hdr fw_pool[FW_POOL_BYTES / sizeof(fw_hdr)];

typedef struct fw_heap {
    fw_hdr *free_list;
    size_t live, peak;           /* bytes the library holds (as it asked for them) */
    size_t turn_peak;            /* peak since the last fw_heap_turn() */
    size_t high_water;           /* highest pool offset handed out: headers and gaps included */
    size_t allocs, failures;
} fw_heap;

static void fw_heap_init(fw_heap *h) {
    fw_zero(h, sizeof *h);
    fw_pool[0].h.size = sizeof fw_pool;
    fw_pool[0].h.next = NULL;
    h->free_list = fw_pool;
}

static size_t fw_block_bytes(size_t n) {
    return (n + 2 * sizeof(fw_hdr) - 1) / sizeof(fw_hdr) * sizeof(fw_hdr);
}

static void fw_account(fw_heap *h, fw_hdr *b, size_t add, size_t sub) {
    size_t end = (size_t)((b + b->h.size / sizeof *b) - fw_pool) * sizeof *b;
    h->live = h->live - sub + add;
    if (h->live > h->peak) h->peak = h->live;
    if (h->live > h->turn_peak) h->turn_peak = h->live;
    if (end > h->high_water) h->high_water = end;
}

static void *fw_alloc(void *ud, size_t n) {
    fw_heap *h = (fw_heap *)ud;
    fw_hdr **link, *b;
    size_t need = fw_block_bytes(n);
    if (n >= sizeof fw_pool) {
        h->failures++;
        return NULL;
    }
    for (link = &h->free_list; (b = *link) != NULL; link = &b->h.next) {
        if (b->h.size < need) continue;
        if (b->h.size - need >= 2 * sizeof *b) { /* split: the tail stays free */
            fw_hdr *rest = b + need / sizeof *b;
            rest->h.size = b->h.size - need;
            rest->h.next = b->h.next;
            *link = rest;
            b->h.size = need;
        } else {
            *link = b->h.next;
        }
        h->allocs++;
        fw_account(h, b, n, 0);
        return b + 1;
    }
    h->failures++;
    return NULL;
}

static void fw_free(void *ud, void *p, size_t n) {
    fw_heap *h = (fw_heap *)ud;
    fw_hdr *b = (fw_hdr *)p - 1, **link = &h->free_list, *prev = NULL;
    h->live -= n;
    while (*link && *link < b) prev = *link, link = &(*link)->h.next;
    b->h.next = *link;
    *link = b;
    if (b->h.next && b + b->h.size / sizeof *b == b->h.next) {
        b->h.size += b->h.next->h.size;
        b->h.next = b->h.next->h.next;
    }
    if (prev && prev + prev->h.size / sizeof *prev == b) {
        prev->h.size += b->h.size;
        prev->h.next = b->h.next;
    }
}

static void *fw_realloc(void *ud, void *p, size_t old_n, size_t n) {
    fw_heap *h = (fw_heap *)ud;
    fw_hdr *b = (fw_hdr *)p - 1;
    void *q;
    if (fw_block_bytes(n) <= b->h.size) { /* still fits */
        fw_account(h, b, n, old_n);
        return p;
    }
    if (!(q = fw_alloc(ud, n))) return NULL;
    {
        const unsigned char *from = (const unsigned char *)p;
        unsigned char *to = (unsigned char *)q;
        size_t k;
        for (k = 0; k < old_n && k < n; k++) to[k] = from[k];
    }
    fw_free(ud, p, old_n);
    return q;
}

/* ---- the board's clock and random source, through the context hooks --------------------- */

typedef struct fw_platform {
    fw_heap heap;
    int64_t ms;                  /* time since boot */
    uint64_t rng;
} fw_platform;

/* Every look at the clock moves it on by a millisecond: time passes, the same way each run. */
static int64_t fw_mono_ms(void *ud) { return ++((fw_platform *)ud)->ms; }

static int64_t fw_now_ms(void *ud) { return INT64_C(1767225600000) + ((fw_platform *)ud)->ms; }

/* Deterministic so that every run prints the same thing. A device reads its TRNG here: the
   library makes session and snapshot ids from it and refuses to run without the hook. */
static ak_result fw_random(void *ud, void *buf, size_t len) {
    fw_platform *p = (fw_platform *)ud;
    unsigned char *out = (unsigned char *)buf;
    while (len--) {
        p->rng ^= p->rng >> 12, p->rng ^= p->rng << 25, p->rng ^= p->rng >> 27;
        *out++ = (unsigned char)((p->rng * UINT64_C(2685821657736338717)) >> 56);
    }
    return AK_OK;
}

/* ---- the tool: the device reads its own sensors ----------------------------------------- */

/* The input schema below goes to the model, and the library checks the model's input against
   it before the tool runs; a build without the validator (AK_NO_SCHEMA) does not, so the tool
   checks what it needs itself. */
static ak_result get_weather(ak_tool_call *call) {
    const char *city = ak_json_get_str(call->input, "city");
    ak_json *out;
    if (!city) return ak_tool_fail(call, AK_STATUS_INVALID_ARGUMENT, "getWeather needs a city");
    out = ak_json_new_object(call->doc);
    ak_json_set_str(call->doc, out, "city", city);
    ak_json_set_int(call->doc, out, "tempC", fw_streq(city, "Oslo") ? 4 : fw_streq(city, "Bergen") ? 7 : 21);
    ak_json_set_str(call->doc, out, "sky", "clear");
    if (call->doc->err) return ak_tool_fail(call, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return ak_tool_return(call, out);
}

static const ak_tool fw_tools[] = {
    {"getWeather", "Current weather for a city.",
     "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}", NULL,
     get_weather, NULL, 0}};

/* ---- part 2's transport: recorded OpenAI answers from flash ------------------------------ */

#define FW_CHUNK_HEAD "data: {\"id\":\"chatcmpl-fw\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"

static const char fw_sse_tool_call[] =
    FW_CHUNK_HEAD "\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_1\","
                  "\"type\":\"function\",\"function\":{\"name\":\"getWeather\",\"arguments\":\"\"}}]},"
                  "\"finish_reason\":null}]}\n\n" FW_CHUNK_HEAD
                  "\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},"
                  "\"finish_reason\":null}]}\n\n" FW_CHUNK_HEAD
                  "\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Oslo\\\"}\"}}]},"
                  "\"finish_reason\":null}]}\n\n" FW_CHUNK_HEAD "\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
                  "data: [DONE]\n\n";

static const char fw_sse_answer[] =
    FW_CHUNK_HEAD "\"delta\":{\"role\":\"assistant\",\"content\":\"It is 4 degrees\"},\"finish_reason\":null}]}\n\n" FW_CHUNK_HEAD
                  "\"delta\":{\"content\":\" and clear in Oslo.\"},\"finish_reason\":null}]}\n\n" FW_CHUNK_HEAD
                  "\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":61,\"completion_tokens\":9,"
                  "\"total_tokens\":70}}\n\ndata: [DONE]\n\n";

typedef struct fw_canned {
    ak_transport transport;
    int calls;
    int unexpected;              /* requests unlike what the adapter should send */
} fw_canned;

static int fw_contains(const char *s, size_t len, const char *what) {
    size_t n = fw_strlen(what), i, k;
    for (i = 0; i + n <= len; i++) {
        for (k = 0; k < n && s[i + k] == what[k]; k++) {
        }
        if (k == n) return 1;
    }
    return 0;
}

/* A blocking transport: the whole exchange happens inside start(). The body arrives 17 bytes
   at a time, so events and JSON values are split at arbitrary places. */
static ak_result fw_canned_start(void *ud, const ak_http_request *req, ak_http_sink *sink, void **handle) {
    fw_canned *c = (fw_canned *)ud;
    const char *body = c->calls == 0 ? fw_sse_tool_call : fw_sse_answer;
    size_t len = fw_strlen(body), off, url_len = fw_strlen(req->url);
    static const char path[] = "/v1/chat/completions";
    if (!fw_streq(req->method, "POST") || url_len < sizeof path - 1 ||
        !fw_streq(req->url + url_len - (sizeof path - 1), path) || !req->streaming ||
        (c->calls == 1 && !fw_contains(req->body, req->body_len, "\"tool_call_id\":\"call_1\"")))
        c->unexpected++;
    c->calls++;
    *handle = c;
    if (sink->on_status(sink, 200) != AK_OK ||
        sink->on_header(sink, "Content-Type", 12, "text/event-stream", 17) != AK_OK)
        return AK_OK;
    for (off = 0; off < len; off += 17)
        if (sink->on_body(sink, body + off, len - off < 17 ? len - off : 17) != AK_OK) return AK_OK;
    sink->on_done(sink, AK_OK, NULL);
    return AK_OK;
}

static void fw_canned_cancel(void *ud, void *handle) {
    (void)ud, (void)handle; /* nothing outlives start() */
}

/* ---- the run ---------------------------------------------------------------------------- */

#ifndef AK_NO_LOCAL_MODELS
static const struct {
    const char *say, *expect;
} fw_turns[] = {
    {"hello", "echo: hello"},
    {"weather Oslo", "tool result: [{\"city\":\"Oslo\",\"tempC\":4,\"sky\":\"clear\"}]"},
    {"count", "history=7"},
    {"stream one two three", "one two three"},
    {"system?", "system=You are the assistant of a weather station."},
    {"weather Bergen", "tool result: [{\"city\":\"Bergen\",\"tempC\":7,\"sky\":\"clear\"}]"},
    {"count", "history=17"},
    {"how are you", "echo: how are you"},
    {"stream bye for now", "bye for now"},
    {"count", "history=23"},
};
#define FW_TURNS COUNTOF(fw_turns)
#else
#define FW_TURNS 0
#endif

/* Everything the library keeps between calls lives here, in .bss. */
static fw_platform fw;
static ak_context ctx;
static ak_memstore store;
static ak_agent agent;
static ak_chat chat;
static fw_canned canned;
static ak_http_model openai;

static int fw_chunks;

static void fw_on_chunk(void *ud, const ak_json *chunk) {
    (void)ud;
    if (ak_json_get(chunk, "modelChunk")) fw_chunks++;
}

/* One turn: prints the answer, returns 1 when it is the expected one. */
static int fw_turn(ak_chat *c, const char *label, const char *say, const char *expect) {
    ak_response r;
    ak_error err;
    ak_json_doc d;
    ak_json *input, *msg;
    int ok;
    fw.heap.turn_peak = fw.heap.live;
    fw_chunks = 0;
    SAY("%s> %s\n", label, say);
    /* streamed, so the chunks a display would show go through the callback */
    ak_json_doc_init(&d, ak_context_allocator(&ctx));
    input = ak_json_new_object(&d);
    msg = ak_msg_new(&d, "user");
    ak_msg_add(msg, ak_part_text(&d, say));
    ak_json_set(&d, input, "message", msg);
    if (d.err) {
        SAY("  error: out of memory\n");
        ak_json_doc_free(&d);
        return 0;
    }
    ok = ak_chat_start(c, input, fw_on_chunk, NULL, &err) == AK_OK;
    ak_json_doc_free(&d);
    if (ok) {
        ak_result rc;
        while ((rc = ak_chat_poll(c, 0, &r, &err)) == AK_PENDING) {
        }
        ok = rc == AK_OK;
    }
    if (!ok) {
        SAY("  error: %s\n", err.message);
        return 0;
    }
    SAY("agent> %s\n", r.text);
    ok = fw_streq(r.text, expect);
    if (!ok) SAY("  expected: %s\n", expect);
    ak_response_free(&r);
    SAY("  pool: %zu B in use, turn peak %zu B, %d chunks\n", fw.heap.live, fw.heap.turn_peak, fw_chunks);
    return ok;
}

/* The agent of both parts: the weather tool, sessions kept in the in-memory store. Returns 1
   when the store, the agent and the chat are ready. */
static int fw_agent_start(const char *name, ak_model *model, int stream) {
    ak_agent_desc desc;
    ak_error err;
    fw_zero(&desc, sizeof desc);
    desc.name = name;
    desc.system = "You are the assistant of a weather station.";
    desc.model = model;
    desc.tools = fw_tools;
    desc.tool_count = COUNTOF(fw_tools);
    desc.store = &store.store;
    desc.stream_model = stream;
    if (ak_memstore_init(&store, &ctx) != AK_OK) {
        SAY("%s: store setup failed\n", name);
        return 0;
    }
    if (ak_agent_init(&agent, &ctx, &desc, &err) != AK_OK) {
        SAY("%s: agent setup failed: %s\n", name, err.message);
        ak_memstore_free(&store);
        return 0;
    }
    if (ak_chat_init(&chat, &agent, NULL, &err) != AK_OK) {
        SAY("%s: chat setup failed: %s\n", name, err.message);
        ak_agent_free(&agent);
        ak_memstore_free(&store);
        return 0;
    }
    return 1;
}

static void fw_agent_stop(void) {
    SAY("session %s: %zu snapshots in the store\n", ak_chat_session_id(&chat), store.count);
    ak_chat_free(&chat);
    ak_agent_free(&agent);
    ak_memstore_free(&store);
}

#ifndef AK_NO_LOCAL_MODELS
static int fw_part1(void) {
    static ak_model scripted;
    size_t i;
    int good = 0;
    ak_scripted_model_init(&scripted);
    if (!fw_agent_start("stationAgent", &scripted, 0)) return 0;
    for (i = 0; i < FW_TURNS; i++) {
        char label[16];
        ak_buf b;
        ak_buf_init_fixed(&b, label, sizeof label);
        ak_buf_printf(&b, "turn %zu", i + 1);
        good += fw_turn(&chat, label, fw_turns[i].say, fw_turns[i].expect);
    }
    fw_agent_stop();
    return good;
}
#endif

static int fw_part2(void) {
    ak_provider_config cfg;
    int good;
    fw_zero(&canned, sizeof canned);
    canned.transport.start = fw_canned_start;
    canned.transport.cancel = fw_canned_cancel;
    canned.transport.ud = &canned;
    fw_zero(&cfg, sizeof cfg);
    cfg.model = "gpt-4o-mini";
    cfg.base_url = "http://192.168.1.10:8080/v1"; /* a llama.cpp server on the LAN */
    cfg.transport = &canned.transport;
    if (ak_http_model_init(&openai, &ctx, ak_adapter_openai(), &cfg) != AK_OK) {
        SAY("openai setup failed\n");
        return 0;
    }
    if (!fw_agent_start("deviceAgent", &openai.model, 1)) return 0;
    good = fw_turn(&chat, "openai", "What is the weather in Oslo?", "It is 4 degrees and clear in Oslo.");
    if (canned.calls != 2 || canned.unexpected) {
        SAY("  the adapter sent %d requests, %d unexpected\n", canned.calls, canned.unexpected);
        good = 0;
    }
    fw_agent_stop();
    return good;
}

int firmware_main(void) {
    ak_context_desc cd;
    int good = 0, expected = (int)FW_TURNS + 1;
    fw_heap_init(&fw.heap);
    fw.rng = UINT64_C(0x9E3779B97F4A7C15);
    fw_zero(&cd, sizeof cd);
    cd.allocator.alloc = fw_alloc;
    cd.allocator.realloc = fw_realloc;
    cd.allocator.free = fw_free;
    cd.allocator.ud = &fw.heap;
    cd.now_ms = fw_now_ms;
    cd.mono_ms = fw_mono_ms;
    cd.random = fw_random;
    cd.user_data = &fw;
    if (ak_context_init(&ctx, &cd) != AK_OK) {
        SAY("context setup failed\n");
        return 1;
    }
    SAY("agentkit %s on a %zu-bit target, pool %u B\n", ak_version(), sizeof(void *) * 8, FW_POOL_BYTES);
#ifndef AK_NO_LOCAL_MODELS
    good = fw_part1();
#endif
    good += fw_part2();
    SAY("pool: peak %zu B of %u B (high water %zu B with headers and gaps), %zu allocations, %zu failed\n",
        fw.heap.peak, FW_POOL_BYTES, fw.heap.high_water, fw.heap.allocs, fw.heap.failures);
    if (board_stack_size()) SAY("stack: %zu B used of %zu B\n", board_stack_used(), board_stack_size());
    SAY("static: context %zu B, agent %zu B, chat %zu B, memstore %zu B, http model %zu B\n", sizeof ctx,
        sizeof agent, sizeof chat, sizeof store, sizeof openai);
    if (fw.heap.live) SAY("leak: %zu B still in use\n", fw.heap.live);
    SAY("%s: %d of %d answers as expected\n", good == expected && !fw.heap.live ? "ok" : "FAILED", good, expected);
    return good == expected && !fw.heap.live ? 0 : 1;
}
