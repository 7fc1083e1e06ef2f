/* SSE parser: the WHATWG event-stream rules, each input fed whole, a byte at a time and cut
   at every offset (and every pair of offsets for short inputs); limits, hostile bytes,
   callback stops, allocation failure, linear cost of byte-by-byte feeding. */
#include "test.h"
#include <time.h>

/* ---- harness: run a stream with a given cutting, record the events as text ------------ */

typedef struct rec {
    char out[16384];
    size_t n;
    int events, stop_at;      /* stop_at: the callback returns AK_ERR_CANCELLED on that event */
    int bad_termination;      /* some string was not NUL-terminated */
} rec;

static void rec_put(rec *r, const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n && r->n + 5 < sizeof r->out; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '\\' || c == '|' || c == ';')
            r->n += (size_t)snprintf(r->out + r->n, sizeof r->out - r->n, "\\x%02X", c);
        else
            r->out[r->n++] = (char)c;
    }
    r->out[r->n] = 0;
}

static void rec_lit(rec *r, const char *s) {
    size_t n = strlen(s);
    if (r->n + n >= sizeof r->out) return;
    memcpy(r->out + r->n, s, n + 1);
    r->n += n;
}

/* Each event as "event|data|id|retry;" with control bytes and separators as \xNN. */
static ak_result rec_event(void *ud, const ak_sse_event *ev) {
    rec *r = (rec *)ud;
    char num[32];
    if (ev->event[ev->event_len] || ev->data[ev->data_len] || ev->id[ev->id_len])
        r->bad_termination = 1;
    rec_put(r, ev->event, ev->event_len);
    rec_lit(r, "|");
    rec_put(r, ev->data, ev->data_len);
    rec_lit(r, "|");
    rec_put(r, ev->id, ev->id_len);
    snprintf(num, sizeof num, "|%lld;", (long long)ev->retry);
    rec_lit(r, num);
    return ++r->events == r->stop_at ? AK_ERR_CANCELLED : AK_OK;
}

typedef struct run_opts {
    size_t max_event;         /* 0 = default */
    int stop_at;
    const ak_allocator *alloc;
} run_opts;

/* Feeds s[0..len) cut at the sorted offsets cuts[0..ncut), then finishes. */
static ak_result run_cut(const char *s, size_t len, const size_t *cuts, size_t ncut,
                         const run_opts *o, rec *r, ak_error *err) {
    ak_sse_parser p;
    ak_result rc = AK_OK;
    size_t i, from = 0;
    memset(r, 0, sizeof *r);
    r->stop_at = o ? o->stop_at : 0;
    ak_sse_init(&p, o ? o->alloc : NULL, rec_event, r);
    if (o && o->max_event) p.max_event = o->max_event;
    for (i = 0; i <= ncut && rc == AK_OK; i++) {
        size_t to = i < ncut ? cuts[i] : len;
        rc = ak_sse_feed(&p, s + from, to - from, err);
        from = to;
    }
    if (rc == AK_OK) rc = ak_sse_finish(&p, err);
    ak_sse_free(&p);
    return rc;
}

static ak_result run_pieces(const char *s, size_t len, size_t piece, const run_opts *o, rec *r,
                            ak_error *err) {
    size_t cuts[1 << 14], n = 0, at;
    for (at = piece; at < len && n < sizeof cuts / sizeof cuts[0]; at += piece) cuts[n++] = at;
    return run_cut(s, len, cuts, n, o, r, err);
}

/* Parses s whole, byte by byte, cut once at every offset and (when short) twice at every
   pair of offsets; every way must give `want` and return want_rc (error offsets agree). */
static void expect_n(const char *s, size_t len, const char *want, ak_result want_rc, const run_opts *o) {
    static rec r;
    ak_error e0, e;
    size_t i, j, cuts[2];
    ak_result rc = run_cut(s, len, NULL, 0, o, &r, &e0);
    CHECK_MSG(rc == want_rc, "rc %d, want %d for [%.*s]", (int)rc, (int)want_rc, (int)len, s);
    CHECK_MSG(strcmp(r.out, want) == 0, "whole: got\n    %s\n  want\n    %s", r.out, want);
    CHECK(!r.bad_termination);
    rc = run_pieces(s, len, 1, o, &r, &e);
    CHECK_MSG(rc == want_rc && strcmp(r.out, want) == 0, "byte by byte: rc %d, got %s", (int)rc, r.out);
    CHECK(rc == AK_OK || rc == AK_ERR_CANCELLED || e.offset == e0.offset);
    for (i = 1; i < len; i++) {
        cuts[0] = i;
        rc = run_cut(s, len, cuts, 1, o, &r, &e);
        CHECK_MSG(rc == want_rc && strcmp(r.out, want) == 0, "cut at %zu: rc %d, got %s", i, (int)rc, r.out);
        CHECK(rc == AK_OK || rc == AK_ERR_CANCELLED || e.offset == e0.offset);
        for (j = i + 1; len <= 96 && j < len; j++) {
            cuts[1] = j;
            rc = run_cut(s, len, cuts, 2, o, &r, &e);
            CHECK_MSG(rc == want_rc && strcmp(r.out, want) == 0, "cuts at %zu,%zu: rc %d, got %s", i, j,
                      (int)rc, r.out);
        }
    }
}

#define EXPECT(lit, want) expect_n(lit, sizeof(lit) - 1, want, AK_OK, NULL)
#define EXPECT_RC(lit, want, rc, o) expect_n(lit, sizeof(lit) - 1, want, rc, o)
#define FEED(p, lit) ak_sse_feed(p, lit, sizeof(lit) - 1, NULL)
#define RUN_WHOLE(lit, o, r, e) run_cut(lit, sizeof(lit) - 1, NULL, 0, o, r, e)

/* ---- the WHATWG rules ------------------------------------------------------------------ */

static void line_ends_lf_cr_crlf(void) {
    EXPECT("data: hello\n\n", "message|hello||-1;");
    EXPECT("data: a\r\rdata: b\r\n\r\ndata: c\n\n", "message|a||-1;message|b||-1;message|c||-1;");
    EXPECT("data: a\r\n\rdata:b\n\r", "message|a||-1;message|b||-1;");
    /* LF CR: two line ends, so an empty line right away */
    EXPECT("data: x\n\rdata: y\r\n\r\n", "message|x||-1;message|y||-1;");
    /* CR CR LF: line end, empty line, then the LF belongs to the second CR */
    EXPECT("data: x\r\r\ndata: y\r\n\n", "message|x||-1;message|y||-1;");
    /* Gemini's CRLF framing */
    EXPECT("data: {\"a\":1}\r\n\r\ndata: {\"b\":2}\r\n\r\n", "message|{\"a\":1}||-1;message|{\"b\":2}||-1;");
}

static void bom_only_at_the_very_start(void) {
    EXPECT("\xEF\xBB\xBF" "data: x\n\n", "message|x||-1;");
    EXPECT("\xEF\xBB\xBF\n" "data: x\n\n", "message|x||-1;");
    /* a second BOM is part of the first field name, which is then unknown */
    EXPECT("\xEF\xBB\xBF\xEF\xBB\xBF" "data: x\n\ndata: y\n\n", "message|y||-1;");
    EXPECT("data: x\n\n\xEF\xBB\xBF" "data: y\n\ndata: z\n\n", "message|x||-1;message|z||-1;");
    /* the start of a BOM that is not one stays in the line */
    EXPECT("\xEF\xBB" "data: x\n\ndata: y\n\n", "message|y||-1;");
    EXPECT("\xEF\xBB\ndata: x\n\n", "message|x||-1;");
    EXPECT("\xEF\ndata: x\n\n", "message|x||-1;");
    EXPECT("\xEF\xBB" ":c\n\n", "");
    EXPECT("\xEF\xBB\xBF:comment\ndata:1\n\n", "message|1||-1;");
}

static void comments_and_fields_without_colon(void) {
    EXPECT(": ping - 2026-01-01 00:05:00.000125+00:00\n\ndata: x\n\n", "message|x||-1;");
    EXPECT(":\n:\n\n: OPENROUTER PROCESSING\ndata: x\n:mid\ndata: y\n\n", "message|x\\x0Ay||-1;");
    /* "data" alone appends an empty line; the web platform test for the data field */
    EXPECT("data:\n\ndata\ndata\n\ndata:test\n\n", "message|||-1;message|\\x0A||-1;message|test||-1;");
    EXPECT("event\ndata\n\n", "message|||-1;");
}

static void one_optional_space_after_the_colon(void) {
    EXPECT("data:no-space\n\n", "message|no-space||-1;");
    EXPECT("data:  two\n\n", "message| two||-1;");
    EXPECT("data:\tx\n\n", "message|\\x09x||-1;");
    EXPECT("data: a: b\n\n", "message|a: b||-1;");
    EXPECT("data: \n\n", "message|||-1;");
}

static void data_lines_join_with_newlines(void) {
    EXPECT("data: a\ndata: b\ndata: c\n\n", "message|a\\x0Ab\\x0Ac||-1;");
    EXPECT("data: {\"a\":\ndata: 1}\n\n", "message|{\"a\":\\x0A1}||-1;");
    EXPECT("data:\ndata:\n\n", "message|\\x0A||-1;");
    /* the web platform "unknown fields and parsing fun" test */
    EXPECT("data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n",
           "message|test\\x0A\\x0Atest||-1;");
}

static void event_type_and_its_reset(void) {
    EXPECT("event: add\ndata: 1\n\ndata: 2\n\n", "add|1||-1;message|2||-1;");
    EXPECT("event:\ndata: x\n\n", "message|x||-1;");
    EXPECT("event: \ndata:data\n\n", "message|data||-1;");
    /* an event without data dispatches nothing and forgets its type */
    EXPECT("event: x\n\ndata: y\n\n", "message|y||-1;");
    EXPECT("data: y\nevent: a\nevent: b\n\n", "b|y||-1;");
    EXPECT("event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n",
           "message_start|{\"type\":\"message_start\"}||-1;ping|{\"type\": \"ping\"}||-1;");
}

static void id_persists_and_nul_ids_are_ignored(void) {
    EXPECT("id: 1\ndata: a\n\ndata: b\n\n", "message|a|1|-1;message|b|1|-1;");
    EXPECT("id: 7\n\ndata: a\n\n", "message|a|7|-1;");
    EXPECT("id: 1\ndata: a\n\nid\ndata: b\n\n", "message|a|1|-1;message|b||-1;");
    EXPECT("id: 1\ndata: a\n\nid: x\0y\ndata: b\n\n", "message|a|1|-1;message|b|1|-1;");
    EXPECT("data: a\nid: 5\n\n", "message|a|5|-1;");
    EXPECT("id:  sp\ndata: a\n\n", "message|a| sp|-1;");
}

static void retry_takes_digits_only(void) {
    EXPECT("retry: 1000\ndata: a\n\ndata: b\n\n", "message|a||1000;message|b||-1;");
    EXPECT("retry: 5\n\ndata: x\n\n", "message|x||5;");
    EXPECT("retry: 10a\ndata: x\n\n", "message|x||-1;");
    EXPECT("retry:\ndata: x\n\n", "message|x||-1;");
    EXPECT("retry: -5\ndata: x\n\n", "message|x||-1;");
    EXPECT("retry: 1.5\ndata: x\n\n", "message|x||-1;");
    EXPECT("retry:  5\ndata: x\n\n", "message|x||-1;");
    EXPECT("retry: 99999999999999999999\ndata: x\n\n", "message|x||-1;");
    EXPECT("retry: 9223372036854775807\ndata: x\n\n", "message|x||9223372036854775807;");
    EXPECT("retry: 0\nretry: 20\ndata: x\n\n", "message|x||20;");
}

static void retry_value_persists_in_the_parser(void) {
    ak_sse_parser p;
    rec r;
    memset(&r, 0, sizeof r);
    ak_sse_init(&p, NULL, rec_event, &r);
    CHECK_EQ(p.retry, -1);
    CHECK_OK(FEED(&p, "retry: 250\n"));
    CHECK_EQ(p.retry, 250);
    CHECK_OK(FEED(&p, "retry: x\n\n"));
    CHECK_EQ(p.retry, 250);
    CHECK_EQ(r.events, 0);
    ak_sse_free(&p);
}

static void unknown_fields_are_ignored(void) {
    EXPECT("foo: bar\ndata: x\nerror: {\"message\":\"boom\"}\n\n", "message|x||-1;");
    EXPECT("Data: x\nDATA: y\n\n", "");
    EXPECT("error: {\"a\":1}\n\n", "");
    /* the web platform "field parsing" test: names are exact, NUL is data */
    EXPECT("data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n",
           "message|\\x00\\x0A 2\\x0A1\\x0A3\\x0A\\x0A4||-1;");
}

static void empty_data_buffer_dispatches_nothing(void) {
    EXPECT("\n\n\n\r\r\n", "");
    EXPECT("event: x\n\n", "");
    EXPECT("id: 1\nretry: 3\n\n", "");
    EXPECT("", "");
}

static void unterminated_final_event_is_discarded(void) {
    EXPECT("data: a\n\ndata: b\n", "message|a||-1;");
    EXPECT("data: a\n\ndata: b", "message|a||-1;");
    EXPECT("data: a\n\ndata: b\r", "message|a||-1;");
    EXPECT("data: a\r\n\r\ndata: b\r\n", "message|a||-1;");
}

static void invalid_utf8_becomes_replacement_characters(void) {
    EXPECT("data: \xFF\xC3(\n\n", "message|\xEF\xBF\xBD\xEF\xBF\xBD(||-1;");
    EXPECT("data: \xED\xA0\x80z\n\n", "message|\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz||-1;");
    EXPECT("data: \xF0\x9F\x98\x80 \xE4\xB8\xAD\n\n", "message|\xF0\x9F\x98\x80 \xE4\xB8\xAD||-1;");
    /* a sequence cut by a line end is invalid on both lines */
    EXPECT("data: \xE2\x82\ndata: \xAC\n\n", "message|\xEF\xBF\xBD\\x0A\xEF\xBF\xBD||-1;");
    EXPECT("event: \xC0x\nid: \xFF\ndata: 1\n\n", "\xEF\xBF\xBDx|1|\xEF\xBF\xBD|-1;");
}

static void unicode_separators_do_not_end_lines(void) {
    EXPECT("data: a\xE2\x80\xA8" "b\xE2\x80\xA9" "c\xC2\x85" "d\x0B\x0C" "e\n\n",
           "message|a\xE2\x80\xA8" "b\xE2\x80\xA9" "c\xC2\x85" "d\\x0B\\x0C" "e||-1;");
}

/* ---- provider streams ------------------------------------------------------------------ */

static void openai_anthropic_and_gemini_streams(void) {
    EXPECT("data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
           ": keep-alive\n\n"
           "data: {\"choices\":[{\"delta\":{\"content\":\"lo \xF0\x9F\x91\x8B\"}}]}\n\n"
           "data: [DONE]\n\n",
           "message|{\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}||-1;"
           "message|{\"choices\":[{\"delta\":{\"content\":\"lo \xF0\x9F\x91\x8B\"}}]}||-1;"
           "message|[DONE]||-1;");
    EXPECT("event: content_block_delta\n"
           "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
           "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
           "content_block_delta|{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}||-1;"
           "message_stop|{\"type\":\"message_stop\"}||-1;");
    EXPECT("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\\u003cb\\u003e\"}]}}]}\r\n\r\n"
           "data: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\r\n\r\n",
           "message|{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\\x5Cu003cb\\x5Cu003e\"}]}}]}||-1;"
           "message|{\"candidates\":[{\"finishReason\":\"STOP\"}]}||-1;");
}

/* ---- stopping, limits, hostile input ------------------------------------------------------- */

static void callback_stop_is_sticky(void) {
    const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    run_opts o;
    ak_sse_parser p;
    ak_error e;
    rec r;
    memset(&o, 0, sizeof o);
    o.stop_at = 2;
    expect_n(s, sizeof s - 1, "message|1||-1;message|2||-1;", AK_ERR_CANCELLED, &o);
    memset(&r, 0, sizeof r);
    r.stop_at = 1;
    ak_sse_init(&p, NULL, rec_event, &r);
    CHECK_EQ(ak_sse_feed(&p, s, sizeof s - 1, &e), AK_ERR_CANCELLED);
    CHECK_EQ(ak_sse_feed(&p, s, sizeof s - 1, &e), AK_ERR_CANCELLED);
    CHECK(strstr(e.message, "stopped earlier") != NULL);
    CHECK_EQ(ak_sse_finish(&p, &e), AK_ERR_CANCELLED);
    CHECK_EQ(r.events, 1);
    ak_sse_free(&p);
}

static void line_and_event_limits(void) {
    run_opts o;
    ak_sse_parser p;
    ak_error e;
    rec r;
    memset(&o, 0, sizeof o);
    o.max_event = 16;
    /* exactly 16 bytes of line and of data pass */
    EXPECT_RC("data:01234567890\n\n", "message|01234567890||-1;", AK_OK, &o);
    EXPECT_RC("data:0123456\ndata:0123456\n\n", "message|0123456\\x0A0123456||-1;", AK_OK, &o);
    /* a 17-byte line fails at its start offset, however it is fed */
    EXPECT_RC("data: 1\n\ndata:012345678901\n\ndata: 2\n\n", "message|1||-1;", AK_ERR_LIMIT, &o);
    RUN_WHOLE("data: 1\n\ndata:012345678901\n\n", &o, &r, &e);
    CHECK_EQ(e.code, AK_ERR_LIMIT);
    CHECK_EQ(e.offset, 9);
    CHECK(strstr(e.message, "limit of 16 bytes") != NULL);
    /* an unterminated long line fails too, before its end ever comes */
    EXPECT_RC("data: 1\n\n:01234567890123456789", "message|1||-1;", AK_ERR_LIMIT, &o);
    /* data of 17 bytes over three lines (16 pass, as above) */
    EXPECT_RC("data: 1\n\ndata:01234\ndata:01234\ndata:01234\n\n", "message|1||-1;", AK_ERR_LIMIT, &o);
    CHECK_EQ(RUN_WHOLE("data:01234\ndata:01234\ndata:01234\n\n", &o, &r, &e), AK_ERR_LIMIT);
    CHECK_EQ(e.offset, 22);
    /* the limit counts stream bytes after the BOM */
    EXPECT_RC("\xEF\xBB\xBF" "data:01234567890\n\n", "message|01234567890||-1;", AK_OK, &o);
    /* and max_event 0 means the default */
    memset(&r, 0, sizeof r);
    ak_sse_init(&p, NULL, rec_event, &r);
    p.max_event = 0;
    CHECK_OK(FEED(&p, "data: x\n\n"));
    CHECK_EQ(r.events, 1);
    ak_sse_free(&p);
}

static void huge_line_fails_in_bounded_memory(void) {
    size_t n = (size_t)3 << 20, i;
    char *big = (char *)malloc(n);
    t_alloc ta;
    ak_sse_parser p;
    ak_error e;
    ak_result rc = AK_OK;
    rec r;
    memcpy(big, "data: ", 6);
    memset(big + 6, 'a', n - 6);
    memset(&r, 0, sizeof r);
    ak_sse_init(&p, t_alloc_init(&ta, 0), rec_event, &r);
    p.max_event = (size_t)1 << 20;
    for (i = 0; i < n && rc == AK_OK; i += 4096) rc = ak_sse_feed(&p, big + i, 4096, &e);
    CHECK_EQ(rc, AK_ERR_LIMIT);
    CHECK_EQ(e.offset, 0);
    CHECK(ta.peak <= (long long)(2 << 20) + 64);
    ak_sse_free(&p);
    CHECK_EQ(ta.live, 0);
    free(big);
}

static void cr_storms_and_comment_floods_use_no_memory(void) {
    size_t n = (size_t)1 << 20, i;
    char *s = (char *)malloc(n);
    t_alloc ta;
    ak_sse_parser p;
    rec r;
    memset(&r, 0, sizeof r);
    ak_sse_init(&p, t_alloc_init(&ta, 0), rec_event, &r);
    memset(s, '\r', n);
    CHECK_OK(ak_sse_feed(&p, s, n, NULL));
    for (i = 0; i < n; i++) s[i] = i % 3 == 2 ? '\n' : ':';
    CHECK_OK(ak_sse_feed(&p, s, n - n % 3, NULL));
    for (i = 0; i < n; i++) s[i] = i % 2 ? '\n' : '\r';
    for (i = 0; i < 4096; i++) CHECK_OK(ak_sse_feed(&p, s + i, 1, NULL));
    CHECK_EQ(r.events, 0);
    CHECK_EQ(ta.count, 0);
    CHECK_OK(FEED(&p, "data: x\n\n"));
    CHECK_EQ(r.events, 1);
    ak_sse_free(&p);
    CHECK_EQ(ta.live, 0);
    free(s);
}

/* Random bytes from an alphabet rich in separators: whole, byte by byte and random cuts
   must always agree. */
static void random_streams_agree_however_cut(void) {
    static const char alphabet[] = "data:event:id:retry: \r\n\n\r::x1\xEF\xBB\xBF\xFF\xC3\xA9\0";
    static char s[600];
    static rec whole, cut;
    unsigned seed = 12345;
    int round;
    for (round = 0; round < 300; round++) {
        size_t len = (size_t)(round * 2 % (int)sizeof s), i, cuts[40], ncut = 0;
        ak_result rc1, rc2, rc3;
        ak_error e1, e2;
        run_opts o;
        memset(&o, 0, sizeof o);
        o.max_event = round % 3 == 0 ? 24 : 0;
        for (i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            s[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        for (i = 1; i < len && ncut < 40; i += 1 + (seed >> 20) % 37, seed = seed * 1103515245u + 12345u)
            cuts[ncut++] = i;
        rc1 = run_cut(s, len, NULL, 0, &o, &whole, &e1);
        rc2 = run_cut(s, len, cuts, ncut, &o, &cut, &e2);
        CHECK_MSG(rc1 == rc2 && strcmp(whole.out, cut.out) == 0, "round %d: %d/%d", round, (int)rc1, (int)rc2);
        CHECK(rc1 == AK_OK || e1.offset == e2.offset);
        rc3 = run_pieces(s, len, 1, &o, &cut, &e2);
        CHECK_MSG(rc1 == rc3 && strcmp(whole.out, cut.out) == 0, "round %d bytewise", round);
    }
}

static void survives_every_allocation_failure(void) {
    /* needs every buffer: a held line, data, event, id, and the sanitized copy */
    const char s[] = "\xEF\xBB\xBFid: 42\nevent: delta\ndata: {\"text\":\"\xFF caf\xC3\xA9\"}\ndata: more\n\n"
                     "event: b\ndata: 2\n\n";
    long long n;
    int ok_seen = 0;
    for (n = 1; n < 100 && !ok_seen; n++) {
        size_t piece;
        for (piece = 1; piece <= 64; piece *= 4) {
            t_alloc ta;
            run_opts o;
            rec r;
            ak_error e;
            ak_result rc;
            memset(&o, 0, sizeof o);
            o.alloc = t_alloc_init(&ta, n);
            rc = run_pieces(s, sizeof s - 1, piece, &o, &r, &e);
            CHECK_MSG(rc == AK_OK || rc == AK_ERR_OUT_OF_MEMORY, "n=%lld piece=%zu rc=%d", n, piece, (int)rc);
            if (rc == AK_ERR_OUT_OF_MEMORY) CHECK(strstr(e.message, "out of memory") != NULL);
            if (rc == AK_OK && piece == 1) {
                ok_seen = 1;
                CHECK_STR(r.out, "delta|{\"text\":\"\xEF\xBF\xBD caf\xC3\xA9\"}\\x0Amore|42|-1;b|2|42|-1;");
            }
            CHECK_EQ(ta.live, 0);
        }
    }
    CHECK(ok_seen);
}

static void finish_starts_a_new_stream_keeping_the_id(void) {
    ak_sse_parser p;
    rec r;
    memset(&r, 0, sizeof r);
    ak_sse_init(&p, NULL, rec_event, &r);
    CHECK_OK(FEED(&p, "\xEF\xBB\xBFid: 9\nretry: 70\ndata: a\n\ndata: partial"));
    CHECK_OK(ak_sse_finish(&p, NULL));
    CHECK_OK(FEED(&p, "\xEF\xBB\xBF" "data: b\r"));
    CHECK_OK(ak_sse_finish(&p, NULL));
    /* the CR above ended the previous stream: this LF is an empty line of the new one */
    CHECK_OK(FEED(&p, "\ndata: c\n\n"));
    CHECK_STR(r.out, "message|a|9|70;message|c|9|-1;");
    CHECK_EQ(p.retry, 70);
    ak_sse_free(&p);
}

static void bad_arguments_are_rejected(void) {
    ak_sse_parser p;
    ak_error e;
    rec r;
    CHECK_EQ(ak_sse_feed(NULL, "x", 1, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_sse_finish(NULL, &e), AK_ERR_INVALID_ARGUMENT);
    ak_sse_free(NULL);
    memset(&r, 0, sizeof r);
    ak_sse_init(&p, NULL, rec_event, &r);
    CHECK_EQ(ak_sse_feed(&p, NULL, 3, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_OK(ak_sse_feed(&p, NULL, 0, &e));
    ak_sse_free(&p);
    ak_sse_init(&p, NULL, NULL, NULL);
    CHECK_EQ(ak_sse_feed(&p, "x", 1, NULL), AK_ERR_INVALID_ARGUMENT);
    ak_sse_free(&p);
}

/* Feeding a byte at a time must cost time linear in the line length: eight times the bytes
   may take about eight times as long, never sixty-four. */
static double byte_feed_seconds(size_t n) {
    char *s = (char *)malloc(n);
    double best = 1e9;
    int rep;
    memset(s, 'x', n);
    memcpy(s, "data: ", 6);
    for (rep = 0; rep < 3; rep++) {
        ak_sse_parser p;
        rec r;
        size_t i;
        clock_t t0 = clock();
        memset(&r, 0, sizeof r);
        ak_sse_init(&p, NULL, rec_event, &r);
        for (i = 0; i < n; i++) ak_sse_feed(&p, s + i, 1, NULL);
        ak_sse_feed(&p, "\n\n", 2, NULL);
        if ((double)(clock() - t0) / CLOCKS_PER_SEC < best) best = (double)(clock() - t0) / CLOCKS_PER_SEC;
        CHECK_EQ(r.events, 1);
        ak_sse_free(&p);
    }
    free(s);
    return best;
}

static void byte_by_byte_feeding_is_linear(void) {
    double small, large;
    if (getenv("AK_VALGRIND")) return; /* timing means nothing under valgrind */
    small = byte_feed_seconds((size_t)1 << 17);
    large = byte_feed_seconds((size_t)1 << 20);
    CHECK_MSG(large < 24 * small + 0.01, "128 KiB: %.4fs, 1 MiB: %.4fs", small, large);
}

int main(void) {
    RUN(line_ends_lf_cr_crlf);
    RUN(bom_only_at_the_very_start);
    RUN(comments_and_fields_without_colon);
    RUN(one_optional_space_after_the_colon);
    RUN(data_lines_join_with_newlines);
    RUN(event_type_and_its_reset);
    RUN(id_persists_and_nul_ids_are_ignored);
    RUN(retry_takes_digits_only);
    RUN(retry_value_persists_in_the_parser);
    RUN(unknown_fields_are_ignored);
    RUN(empty_data_buffer_dispatches_nothing);
    RUN(unterminated_final_event_is_discarded);
    RUN(invalid_utf8_becomes_replacement_characters);
    RUN(unicode_separators_do_not_end_lines);
    RUN(openai_anthropic_and_gemini_streams);
    RUN(callback_stop_is_sticky);
    RUN(line_and_event_limits);
    RUN(huge_line_fails_in_bounded_memory);
    RUN(cr_storms_and_comment_floods_use_no_memory);
    RUN(random_streams_agree_however_cut);
    RUN(survives_every_allocation_failure);
    RUN(finish_starts_a_new_stream_keeping_the_id);
    RUN(bad_arguments_are_rejected);
    RUN(byte_by_byte_feeding_is_linear);
    return t_summary();
}
