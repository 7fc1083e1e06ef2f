/* NDJSON line splitter: any cutting gives the same lines; CRLF, blank lines, the last line
   without newline, limits, callback stops, allocation failure. */
#include "test.h"

typedef struct rec {
    char out[8192];
    size_t n;
    int lines, stop_at;
} rec;

/* Each line as "<line>;" with control bytes as \xNN. */
static ak_result rec_line(void *ud, const char *s, size_t len) {
    rec *r = (rec *)ud;
    size_t i;
    for (i = 0; i < len && r->n + 6 < sizeof r->out; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == ';' || c == '\\')
            r->n += (size_t)snprintf(r->out + r->n, sizeof r->out - r->n, "\\x%02X", c);
        else
            r->out[r->n++] = (char)c;
    }
    r->out[r->n++] = ';';
    r->out[r->n] = 0;
    return ++r->lines == r->stop_at ? AK_ERR_CANCELLED : AK_OK;
}

typedef struct run_opts {
    size_t max_line;
    int stop_at;
    const ak_allocator *alloc;
} run_opts;

static ak_result run_cut(const char *s, size_t len, const size_t *cuts, size_t ncut,
                         const run_opts *o, rec *r, ak_error *err) {
    ak_ndjson_parser p;
    ak_result rc = AK_OK;
    size_t i, from = 0;
    memset(r, 0, sizeof *r);
    r->stop_at = o ? o->stop_at : 0;
    ak_ndjson_init(&p, o ? o->alloc : NULL, rec_line, r);
    if (o && o->max_line) p.max_line = o->max_line;
    for (i = 0; i <= ncut && rc == AK_OK; i++) {
        size_t to = i < ncut ? cuts[i] : len;
        rc = ak_ndjson_feed(&p, s + from, to - from, err);
        from = to;
    }
    if (rc == AK_OK) rc = ak_ndjson_finish(&p, err);
    ak_ndjson_free(&p);
    return rc;
}

static ak_result run_pieces(const char *s, size_t len, size_t piece, const run_opts *o, rec *r,
                            ak_error *err) {
    size_t cuts[4096], n = 0, at;
    for (at = piece; at < len && n < sizeof cuts / sizeof cuts[0]; at += piece) cuts[n++] = at;
    return run_cut(s, len, cuts, n, o, r, err);
}

/* Whole, byte by byte, every cut and (short inputs) every pair of cuts. */
static void expect_n(const char *s, size_t len, const char *want, ak_result want_rc, const run_opts *o) {
    static rec r;
    ak_error e0, e;
    size_t i, j, cuts[2];
    ak_result rc = run_cut(s, len, NULL, 0, o, &r, &e0);
    CHECK_MSG(rc == want_rc && strcmp(r.out, want) == 0, "whole: rc %d, got %s want %s", (int)rc, r.out, want);
    rc = run_pieces(s, len, 1, o, &r, &e);
    CHECK_MSG(rc == want_rc && strcmp(r.out, want) == 0, "byte by byte: rc %d, got %s", (int)rc, r.out);
    CHECK(rc != AK_ERR_LIMIT || e.offset == e0.offset);
    for (i = 1; i < len; i++) {
        cuts[0] = i;
        rc = run_cut(s, len, cuts, 1, o, &r, &e);
        CHECK_MSG(rc == want_rc && strcmp(r.out, want) == 0, "cut at %zu: rc %d, got %s", i, (int)rc, r.out);
        CHECK(rc != AK_ERR_LIMIT || e.offset == e0.offset);
        for (j = i + 1; len <= 96 && j < len; j++) {
            cuts[1] = j;
            rc = run_cut(s, len, cuts, 2, o, &r, &e);
            CHECK_MSG(rc == want_rc && strcmp(r.out, want) == 0, "cuts at %zu,%zu: got %s", i, j, r.out);
        }
    }
}

#define EXPECT(lit, want) expect_n(lit, sizeof(lit) - 1, want, AK_OK, NULL)
#define EXPECT_RC(lit, want, rc, o) expect_n(lit, sizeof(lit) - 1, want, rc, o)

static void lines_split_on_lf_only(void) {
    EXPECT("{\"a\":1}\n{\"b\":2}\n", "{\"a\":1};{\"b\":2};");
    EXPECT("{\"a\":1}\r\n{\"b\":2}\r\n", "{\"a\":1};{\"b\":2};");
    /* a lone CR is not a line end; only the one before LF is dropped */
    EXPECT("{\"a\":\r1}\r\r\n", "{\"a\":\\x0D1}\\x0D;");
    EXPECT("\"a\xE2\x80\xA8" "b\"\n", "\"a\xE2\x80\xA8" "b\";");
}

static void blank_lines_are_skipped(void) {
    EXPECT("\n\n{}\n\n \t\r\n\r\n[]\n", "{};[];");
    EXPECT("", "");
    EXPECT("\n", "");
    EXPECT("  {} \n", "  {} ;");
}

static void last_line_without_newline_comes_at_finish(void) {
    EXPECT("{\"done\":false}\n{\"done\":true}", "{\"done\":false};{\"done\":true};");
    EXPECT("{\"done\":true}\r", "{\"done\":true};");
    EXPECT("{\"cut", "{\"cut;");
    EXPECT("{}\n   ", "{};");
}

static void bytes_pass_through_untouched(void) {
    /* the JSON parser, not the splitter, judges UTF-8 and NUL bytes */
    EXPECT("\xFF\xC3\0x\n", "\xFF\xC3\\x00x;");
    EXPECT("{\"message\":{\"content\":\"\xF0\x9F\x98\x80\"},\"done\":false}\n",
           "{\"message\":{\"content\":\"\xF0\x9F\x98\x80\"},\"done\":false};");
}

static void line_limit(void) {
    run_opts o;
    rec r;
    ak_error e;
    memset(&o, 0, sizeof o);
    o.max_line = 8;
    EXPECT_RC("12345678\n1234567\r\n", "12345678;1234567;", AK_OK, &o);
    EXPECT_RC("{}\n123456789\n{}\n", "{};", AK_ERR_LIMIT, &o);
    EXPECT_RC("{}\n123456789", "{};", AK_ERR_LIMIT, &o);
    CHECK_EQ(run_cut("{}\n123456789\n", 13, NULL, 0, &o, &r, &e), AK_ERR_LIMIT);
    CHECK_EQ(e.offset, 3);
    CHECK(strstr(e.message, "NDJSON") != NULL);
    /* the CR of a CRLF counts: the limit is on the bytes received */
    EXPECT_RC("12345678\r\n", "", AK_ERR_LIMIT, &o);
}

static void callback_stop_is_sticky(void) {
    run_opts o;
    ak_ndjson_parser p;
    rec r;
    ak_error e;
    memset(&o, 0, sizeof o);
    o.stop_at = 2;
    EXPECT_RC("1\n2\n3\n", "1;2;", AK_ERR_CANCELLED, &o);
    EXPECT_RC("1\n2", "1;2;", AK_ERR_CANCELLED, &o);
    memset(&r, 0, sizeof r);
    r.stop_at = 1;
    ak_ndjson_init(&p, NULL, rec_line, &r);
    CHECK_EQ(ak_ndjson_feed(&p, "1\n2\n", 4, &e), AK_ERR_CANCELLED);
    CHECK_EQ(ak_ndjson_feed(&p, "3\n", 2, &e), AK_ERR_CANCELLED);
    CHECK_EQ(ak_ndjson_finish(&p, &e), AK_ERR_CANCELLED);
    CHECK_EQ(r.lines, 1);
    ak_ndjson_free(&p);
}

static void survives_every_allocation_failure(void) {
    const char s[] = "{\"message\":{\"content\":\"Hel\"}}\n{\"message\":{\"content\":\"lo\"},\"done\":true}";
    long long n;
    int ok_seen = 0;
    for (n = 1; n < 50 && !ok_seen; n++) {
        t_alloc ta;
        run_opts o;
        rec r;
        ak_error e;
        ak_result rc;
        memset(&o, 0, sizeof o);
        o.alloc = t_alloc_init(&ta, n);
        rc = run_pieces(s, sizeof s - 1, 1, &o, &r, &e);
        CHECK(rc == AK_OK || rc == AK_ERR_OUT_OF_MEMORY);
        if (rc == AK_OK) {
            ok_seen = 1;
            CHECK_STR(r.out, "{\"message\":{\"content\":\"Hel\"}};{\"message\":{\"content\":\"lo\"},\"done\":true};");
        }
        CHECK_EQ(ta.live, 0);
    }
    CHECK(ok_seen);
}

static void whole_lines_are_not_copied(void) {
    t_alloc ta;
    ak_ndjson_parser p;
    rec r;
    memset(&r, 0, sizeof r);
    ak_ndjson_init(&p, t_alloc_init(&ta, 0), rec_line, &r);
    CHECK_OK(ak_ndjson_feed(&p, "{\"a\":1}\n{\"b\":2}\n\n", 17, NULL));
    CHECK_OK(ak_ndjson_finish(&p, NULL));
    CHECK_EQ(ta.count, 0);
    CHECK_EQ(r.lines, 2);
    ak_ndjson_free(&p);
}

static void finish_starts_a_new_stream(void) {
    ak_ndjson_parser p;
    rec r;
    memset(&r, 0, sizeof r);
    ak_ndjson_init(&p, NULL, rec_line, &r);
    CHECK_OK(ak_ndjson_feed(&p, "{\"a\"", 4, NULL));
    CHECK_OK(ak_ndjson_finish(&p, NULL));
    CHECK_OK(ak_ndjson_feed(&p, "{\"b\"}\n", 6, NULL));
    CHECK_OK(ak_ndjson_finish(&p, NULL));
    CHECK_STR(r.out, "{\"a\";{\"b\"};");
    ak_ndjson_free(&p);
}

static void bad_arguments_are_rejected(void) {
    ak_ndjson_parser p;
    ak_error e;
    CHECK_EQ(ak_ndjson_feed(NULL, "x", 1, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_ndjson_finish(NULL, &e), AK_ERR_INVALID_ARGUMENT);
    ak_ndjson_free(NULL);
    ak_ndjson_init(&p, NULL, NULL, NULL);
    CHECK_EQ(ak_ndjson_feed(&p, "x", 1, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK(strstr(e.message, "ak_ndjson_feed") != NULL);
    ak_ndjson_free(&p);
}

int main(void) {
    RUN(lines_split_on_lf_only);
    RUN(blank_lines_are_skipped);
    RUN(last_line_without_newline_comes_at_finish);
    RUN(bytes_pass_through_untouched);
    RUN(line_limit);
    RUN(callback_stop_is_sticky);
    RUN(survives_every_allocation_failure);
    RUN(whole_lines_are_not_copied);
    RUN(finish_starts_a_new_stream);
    RUN(bad_arguments_are_rejected);
    return t_summary();
}
