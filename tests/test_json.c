/* JSON core: parser, writer, builder, accessors, equality, memory behaviour */
#include "test.h"

/* Parses text and returns its compact rewrite in a static buffer ("ERR <code>" on failure). */
static const char *rewrite(const char *text) {
    static char out[4096];
    ak_json_doc d;
    ak_buf b;
    ak_error e;
    ak_json_doc_init(&d, NULL);
    if (ak_json_parse(&d, text, strlen(text), &e) != AK_OK) {
        snprintf(out, sizeof out, "ERR %d", (int)e.code);
    } else {
        ak_buf_init_fixed(&b, out, sizeof out);
        ak_json_write(d.root, &b);
    }
    ak_json_doc_free(&d);
    return out;
}

static void parse_and_write_round_trip(void) {
    CHECK_STR(rewrite(" {\"a\" : [1, 2.50, -0, 1e400, true, false, null], \"b\":{}}\n"),
              "{\"a\":[1,2.50,-0,1e400,true,false,null],\"b\":{}}");
    CHECK_STR(rewrite("[]"), "[]");
    CHECK_STR(rewrite("\"\""), "\"\"");
    CHECK_STR(rewrite("123456789012345678901234567890"), "123456789012345678901234567890");
    CHECK_STR(rewrite("[[[[]]],{\"x\":[{}]}]"), "[[[[]]],{\"x\":[{}]}]");
    CHECK_STR(rewrite("{\"k\":1,\"k\":2}"), "{\"k\":1,\"k\":2}"); /* duplicates kept in order */
}

static void strings_are_unescaped_and_re_escaped(void) {
    ak_json_doc d;
    const char *text = "[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\ud83d\\ude00\\u0000z\"]";
    ak_json_doc_init(&d, NULL);
    CHECK_OK(ak_json_parse(&d, text, strlen(text), NULL));
    CHECK_EQ(ak_json_len(ak_json_at(d.root, 0)), 24);
    if (!d.root) return;
    CHECK(memcmp(ak_json_str(ak_json_at(d.root, 0)), "a\"b\\c/d\b\f\n\r\tA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\0z", 24) == 0);
    ak_json_doc_free(&d);
    /* The writer escapes what JSON.stringify escapes: quote, backslash, control chars. */
    CHECK_STR(rewrite("\"\\u0001\\u001f\\/\\u007f\xE2\x80\xA8\""), "\"\\u0001\\u001f/\x7f\xE2\x80\xA8\"");
    CHECK_STR(rewrite("{\"\\n\":\"\\t\"}"), "{\"\\n\":\"\\t\"}");
}

static void bad_input_is_rejected_with_offsets(void) {
    static const struct { const char *text; ak_result code; size_t offset; } cases[] = {
        {"", AK_ERR_JSON_SYNTAX, 0},
        {"[1,]", AK_ERR_JSON_SYNTAX, 3},
        {"{\"a\" 1}", AK_ERR_JSON_SYNTAX, 5},
        {"{\"a\":1,}", AK_ERR_JSON_SYNTAX, 7},
        {"[01]", AK_ERR_JSON_SYNTAX, 2},
        {"[1.]", AK_ERR_JSON_SYNTAX, 1},
        {"[.5]", AK_ERR_JSON_SYNTAX, 1},
        {"[1e]", AK_ERR_JSON_SYNTAX, 1},
        {"[-]", AK_ERR_JSON_SYNTAX, 1},
        {"[NaN]", AK_ERR_JSON_SYNTAX, 1},
        {"[tru]", AK_ERR_JSON_SYNTAX, 1},
        {"\"abc", AK_ERR_JSON_SYNTAX, 0},
        {"\"a\tb\"", AK_ERR_JSON_SYNTAX, 2},
        {"\"\\x\"", AK_ERR_JSON_SYNTAX, 1},
        {"\"\\u12\"", AK_ERR_JSON_SYNTAX, 1},
        {"\"\\ud800\"", AK_ERR_JSON_UTF8, 1},
        {"\"\\udc00\"", AK_ERR_JSON_UTF8, 1},
        {"\"\\ud800\\u0041\"", AK_ERR_JSON_UTF8, 1},
        {"\"\xC0\xAF\"", AK_ERR_JSON_UTF8, 1},
        {"\"\xED\xA0\x80\"", AK_ERR_JSON_UTF8, 1},
        {"1 2", AK_ERR_JSON_SYNTAX, 2},
        {"\xEF\xBB\xBF{}", AK_ERR_JSON_SYNTAX, 0},
        {"[1]x", AK_ERR_JSON_SYNTAX, 3},
        {"{\"a\":[}", AK_ERR_JSON_SYNTAX, 6},
        {"[}", AK_ERR_JSON_SYNTAX, 1},
        {"{1:2}", AK_ERR_JSON_SYNTAX, 1},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ak_json_doc d;
        ak_error e;
        ak_result rc;
        ak_json_doc_init(&d, NULL);
        rc = ak_json_parse(&d, cases[i].text, strlen(cases[i].text), &e);
        CHECK_MSG(rc == cases[i].code, "case %zu (%s): rc %d, want %d", i, cases[i].text, (int)rc, (int)cases[i].code);
        CHECK_MSG(rc == AK_OK || e.offset == cases[i].offset, "case %zu (%s): offset %zu, want %zu (%s)", i,
                  cases[i].text, e.offset, cases[i].offset, e.message);
        CHECK(d.root == NULL);
        ak_json_doc_free(&d);
    }
}

static void depth_and_size_limits(void) {
    char deep[2000];
    ak_json_doc d;
    ak_json_parse_opts o;
    ak_json *v;
    ak_error e;
    int i;
    for (i = 0; i < 600; i++) deep[i] = '[';
    for (i = 0; i < 600; i++) deep[600 + i] = ']';
    ak_json_doc_init(&d, NULL);
    CHECK_EQ(ak_json_parse(&d, deep, 1200, &e), AK_ERR_JSON_DEPTH);
    CHECK_EQ(e.offset, AK_JSON_MAX_DEPTH);
    memset(&o, 0, sizeof o);
    o.max_depth = 1000;
    CHECK_OK(ak_json_parse_value(&d, deep, 1200, &o, &v, &e));
    o.max_depth = 3;
    CHECK_EQ(ak_json_parse_value(&d, "[[[1]]]", 7, &o, &v, &e), AK_OK);
    CHECK_EQ(ak_json_parse_value(&d, "[[[[1]]]]", 9, &o, &v, &e), AK_ERR_JSON_DEPTH);
    o.max_depth = 0;
    o.max_bytes = 4;
    CHECK_EQ(ak_json_parse_value(&d, "[1,2]", 5, &o, &v, &e), AK_ERR_LIMIT);
    ak_json_doc_free(&d);
}

static void accessors_and_path(void) {
    const char *text = "{\"choices\":[{\"delta\":{\"content\":\"hi\",\"n\":-42,\"f\":2.5,\"big\":9223372036854775808,"
                       "\"e\":5e2,\"t\":true}}],\"a.b\":1,\"dup\":1,\"dup\":2}";
    ak_json_doc d;
    int64_t i64 = 0;
    double dv = 0;
    ak_json *delta;
    ak_json_doc_init(&d, NULL);
    CHECK_OK(ak_json_parse(&d, text, strlen(text), NULL));
    CHECK_STR(ak_json_str(ak_json_path(d.root, "choices[0].delta.content")), "hi");
    CHECK_STR(ak_json_str(ak_json_path(d.root, "$.choices[0].delta.content")), "hi");
    CHECK(ak_json_path(d.root, "choices[1].delta") == NULL);
    CHECK(ak_json_path(d.root, "choices[x]") == NULL);
    CHECK(ak_json_path(d.root, "choices.delta") == NULL);
    delta = ak_json_path(d.root, "choices[0].delta");
    CHECK_OK(ak_json_int64(ak_json_get(delta, "n"), &i64));
    CHECK_EQ(i64, -42);
    CHECK_EQ(ak_json_int64(ak_json_get(delta, "f"), &i64), AK_ERR_JSON_TYPE);
    CHECK_EQ(ak_json_int64(ak_json_get(delta, "big"), &i64), AK_ERR_JSON_TYPE);
    CHECK_EQ(ak_json_int_or(ak_json_get(delta, "e"), 0), 500);
    CHECK_OK(ak_json_double(ak_json_get(delta, "f"), &dv));
    CHECK(dv == 2.5);
    CHECK_EQ(ak_json_int64(ak_json_get(delta, "content"), &i64), AK_ERR_JSON_TYPE);
    CHECK(ak_json_bool(ak_json_get(delta, "t"), 0) == 1);
    CHECK(ak_json_bool(ak_json_get(delta, "n"), 7) == 7);
    CHECK_EQ(ak_json_int_or(ak_json_get(d.root, "dup"), 0), 2); /* last one wins, as in JS */
    CHECK(ak_json_get(d.root, "missing") == NULL);
    CHECK(ak_json_get(NULL, "x") == NULL && ak_json_at(NULL, 0) == NULL && ak_json_str(NULL) == NULL);
    CHECK_EQ(ak_json_len(ak_json_get(d.root, "choices")), 1);
    {
        ak_json m;
        memset(&m, 0, sizeof m);
        m.type = AK_JSON_NUMBER, m.u.str = "-9223372036854775808", m.len = 20, m.flags = AK_JSON_F_INT;
        CHECK_OK(ak_json_int64(&m, &i64));
        CHECK(i64 == INT64_MIN);
    }
    ak_json_doc_free(&d);
}

static void builder_creates_and_edits_values(void) {
    ak_json_doc d;
    ak_json *o, *a, *removed;
    ak_buf b;
    ak_json_doc_init(&d, NULL);
    o = ak_json_new_object(&d);
    a = ak_json_new_array(&d);
    CHECK_OK(ak_json_set_str(&d, o, "role", "model"));
    CHECK_OK(ak_json_set(&d, o, "content", a));
    CHECK_OK(ak_json_push(a, ak_json_new_int(&d, -7)));
    CHECK_OK(ak_json_push(a, ak_json_new_double(&d, 0.1)));
    CHECK_OK(ak_json_push(a, ak_json_new_double(&d, 1e21)));
    CHECK_OK(ak_json_push(a, ak_json_new_double(&d, 1.5e-7)));
    CHECK_OK(ak_json_push(a, ak_json_new_double(&d, 123456.789)));
    CHECK_OK(ak_json_push(a, ak_json_new_double(&d, 0.000001)));
    CHECK_OK(ak_json_push(a, ak_json_new_double(&d, 100)));
    CHECK_OK(ak_json_push(a, ak_json_new_double(&d, 0.0 / 1.0 * 0)));
    CHECK_OK(ak_json_insert(a, 0, ak_json_new_str(&d, "bad\xFF")));
    CHECK_OK(ak_json_push(a, ak_json_new_number(&d, "12345678901234567890", 20)));
    CHECK(ak_json_new_number(&d, "12a", 3) == NULL);
    CHECK_EQ(d.err, AK_ERR_JSON_SYNTAX);
    d.err = AK_OK;
    CHECK_OK(ak_json_set_bool(&d, o, "ok", 1));
    CHECK_OK(ak_json_set_int(&d, o, "role", 5)); /* replaces in place */
    CHECK_EQ(ak_json_push(a, NULL), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_json_push(o, ak_json_new_null(&d)), AK_ERR_JSON_TYPE);
    ak_buf_init(&b, NULL);
    ak_json_write(o, &b);
    CHECK_STR(b.ptr, "{\"role\":5,\"content\":[\"bad\xEF\xBF\xBD\",-7,0.1,1e+21,1.5e-7,123456.789,0.000001,100,0,"
                     "12345678901234567890],\"ok\":true}");
    removed = ak_json_remove_at(a, 1);
    CHECK_EQ(ak_json_int_or(removed, 0), -7);
    CHECK_OK(ak_json_replace_at(a, 0, ak_json_new_null(&d)));
    CHECK(ak_json_remove(o, "ok") != NULL);
    CHECK(ak_json_remove(o, "ok") == NULL);
    ak_buf_clear(&b);
    ak_json_write(o, &b);
    CHECK_STR(b.ptr, "{\"role\":5,\"content\":[null,0.1,1e+21,1.5e-7,123456.789,0.000001,100,0,12345678901234567890]}");
    ak_buf_free(&b);
    ak_json_doc_free(&d);
}

static void copy_outlives_its_source(void) {
    ak_json_doc src, dst;
    ak_json *c;
    ak_buf b;
    const char *text = "{\"a\":[1,{\"b\":\"x\\ny\"}],\"c\":null}";
    ak_json_doc_init(&src, NULL);
    ak_json_doc_init(&dst, NULL);
    CHECK_OK(ak_json_parse(&src, text, strlen(text), NULL));
    c = ak_json_copy(&dst, src.root);
    CHECK(ak_json_equal(c, src.root));
    ak_json_doc_free(&src);
    ak_buf_init(&b, NULL);
    ak_json_write(c, &b);
    CHECK_STR(b.ptr, text);
    ak_buf_free(&b);
    ak_json_doc_free(&dst);
}

static int eq(const char *x, const char *y) {
    ak_json_doc d;
    ak_json *a, *b;
    int r;
    ak_json_doc_init(&d, NULL);
    if (ak_json_parse_value(&d, x, strlen(x), NULL, &a, NULL) != AK_OK ||
        ak_json_parse_value(&d, y, strlen(y), NULL, &b, NULL) != AK_OK) {
        ak_json_doc_free(&d);
        return -1;
    }
    r = ak_json_equal(a, b);
    ak_json_doc_free(&d);
    return r;
}

static void deep_equality_is_javascript_like(void) {
    CHECK_EQ(eq("{\"a\":1,\"b\":[1,2]}", "{\"b\":[1,2],\"a\":1}"), 1);
    CHECK_EQ(eq("{\"a\":1}", "{\"a\":1,\"b\":2}"), 0);
    CHECK_EQ(eq("{\"a\":1,\"c\":2}", "{\"a\":1,\"b\":2}"), 0);
    CHECK_EQ(eq("[1,2]", "[2,1]"), 0);
    CHECK_EQ(eq("1", "1.0"), 1);
    CHECK_EQ(eq("100", "1e2"), 1);
    CHECK_EQ(eq("-0", "0"), 1);
    CHECK_EQ(eq("12345678901234567890123", "12345678901234567890124"), 0);
    CHECK_EQ(eq("\"a\"", "\"a\""), 1);
    CHECK_EQ(eq("null", "false"), 0);
    CHECK_EQ(eq("true", "true"), 1);
    CHECK(ak_json_equal(NULL, NULL));
}

static void parse_survives_every_allocation_failure(void) {
    const char *text = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi \\u00e9\"}]}],\"n\":[1,2,3]}";
    long long n;
    int ok_seen = 0;
    for (n = 1; n < 50 && !ok_seen; n++) {
        t_alloc ta;
        ak_json_doc d;
        ak_error e;
        ak_result rc;
        ak_json_doc_init(&d, t_alloc_init(&ta, n));
        d.arena.next_size = 64; /* many small blocks: many allocations to fail */
        rc = ak_json_parse(&d, text, strlen(text), &e);
        CHECK(rc == AK_OK || rc == AK_ERR_OUT_OF_MEMORY);
        if (rc == AK_OK) {
            ok_seen = 1;
            CHECK(ak_json_len(ak_json_get(d.root, "n")) == 3);
        }
        else CHECK(d.root == NULL);
        ak_json_doc_free(&d);
        CHECK_EQ(ta.live, 0);
    }
    CHECK(ok_seen);
}

static void fixed_document_parses_within_the_announced_memory(void) {
    const char *text = "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]";
    size_t need = ak_json_max_memory(strlen(text));
    unsigned char *mem = (unsigned char *)malloc(need);
    ak_json_doc d;
    CHECK_OK(ak_json_doc_init_fixed(&d, mem, need));
    CHECK_OK(ak_json_parse(&d, text, strlen(text), NULL));
    CHECK_EQ(ak_json_len(d.root), 21);
    ak_json_doc_free(&d);
    CHECK_OK(ak_json_doc_init_fixed(&d, mem, 200));
    CHECK_EQ(ak_json_parse(&d, text, strlen(text), NULL), AK_ERR_OUT_OF_MEMORY);
    free(mem);
}

static void pretty_writer_indents(void) {
    ak_json_doc d;
    ak_buf b;
    ak_json_doc_init(&d, NULL);
    ak_buf_init(&b, NULL);
    CHECK_OK(ak_json_parse(&d, "{\"a\":[1,{}],\"b\":[]}", 19, NULL));
    ak_json_write_pretty(d.root, &b);
    CHECK_STR(b.ptr, "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}");
    ak_buf_free(&b);
    ak_json_doc_free(&d);
}

int main(void) {
    RUN(parse_and_write_round_trip);
    RUN(strings_are_unescaped_and_re_escaped);
    RUN(bad_input_is_rejected_with_offsets);
    RUN(depth_and_size_limits);
    RUN(accessors_and_path);
    RUN(builder_creates_and_edits_values);
    RUN(copy_outlives_its_source);
    RUN(deep_equality_is_javascript_like);
    RUN(parse_survives_every_allocation_failure);
    RUN(fixed_document_parses_within_the_announced_memory);
    RUN(pretty_writer_indents);
    return t_summary();
}
