/* JSON Pointer, JSON Patch (strict and lenient) and diff: the json-patch-tests suite, error
   messages, all-or-nothing behaviour, allocation failure, and diff round trips over
   generated document pairs. */
#include "test.h"
#include "json_text.h"

/* Parses text as one more value of d (NULL if it does not parse). */
static ak_json *P(ak_json_doc *d, const char *text) {
    ak_json *v = NULL;
    ak_json_parse_value(d, text, strlen(text), NULL, &v, NULL);
    return v;
}

/* Applies patch text to doc text. Returns the result code; *out is the document afterwards
   (compact JSON), msg the error message. */
static ak_result apply(const char *doc, const char *patch, unsigned flags, const char **out, const char **msg) {
    static ak_error e;
    ak_json_doc d;
    ak_json *root, *p;
    ak_result rc;
    t_alloc ta;
    ak_json_doc_init(&d, t_alloc_init(&ta, 0));
    root = P(&d, doc);
    p = P(&d, patch);
    e.message[0] = 0;
    rc = ak_json_patch(&d, &root, p, flags, &e);
    *out = js(root);
    if (msg) *msg = e.message;
    ak_json_doc_free(&d);
    CHECK_EQ(ta.live, 0);
    return rc;
}

/* ---- the json-patch-tests suite ------------------------------------------------------- */

static int run_suite_file(const char *name) {
    char path[4096];
    size_t len, i = 0;
    char *text;
    ak_json_doc suite;
    ak_json *c;
    int cases = 0;
    snprintf(path, sizeof path, "%s/testdata/json-patch-tests/%s", t_shared(), name);
    text = t_read_file(path, &len);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        t_failed++;
        return 0;
    }
    ak_json_doc_init(&suite, NULL);
    if (ak_json_parse(&suite, text, len, NULL) != AK_OK) {
        fprintf(stderr, "%s does not parse\n", path);
        t_failed++;
    }
    for (c = ak_json_first(suite.root); c; c = c->next, i++) {
        const ak_json *patch = ak_json_get(c, "patch"), *expected = ak_json_get(c, "expected");
        ak_json_doc d;
        ak_json *root;
        ak_error e;
        ak_result rc;
        char before[8192], label[300];
        t_alloc ta;
        if (!patch || ak_json_bool(ak_json_get(c, "disabled"), 0)) continue;
        snprintf(label, sizeof label, "%s #%zu: %s", name, i, ak_json_str_or(ak_json_get(c, "comment"), ""));
        t_current = label;
        t_current_failed = 0;
        ak_json_doc_init(&d, t_alloc_init(&ta, 0));
        root = ak_json_copy(&d, ak_json_get(c, "doc"));
        snprintf(before, sizeof before, "%s", js(root));
        rc = ak_json_patch(&d, &root, patch, 0, &e);
        if (expected) {
            CHECK_MSG(rc == AK_OK, "failed: %s", e.message);
            CHECK_MSG(ak_json_equal(root, expected), "got %s, want %s", js(root), js(expected));
        } else {
            CHECK_MSG(rc != AK_OK, "accepted; want error \"%s\"", ak_json_str_or(ak_json_get(c, "error"), ""));
            CHECK_STR(js(root), before); /* untouched, member order included */
        }
        ak_json_doc_free(&d);
        CHECK_EQ(ta.live, 0);
        if (t_current_failed) t_failed++;
        else t_passed++;
        cases++;
    }
    ak_json_doc_free(&suite);
    free(text);
    return cases;
}

/* ---- pointer -------------------------------------------------------------------------- */

static void pointer_resolves_rfc6901_examples(void) {
    static const struct { const char *ptr; const char *want; } cases[] = {
        {"", NULL}, {"/foo", "[\"bar\",\"baz\"]"}, {"/foo/0", "\"bar\""}, {"/", "0"}, {"/a~1b", "1"},
        {"/c%d", "2"}, {"/e^f", "3"}, {"/g|h", "4"}, {"/i\\j", "5"}, {"/k\"l", "6"}, {"/ ", "7"},
        {"/m~0n", "8"},
    };
    const char *text = "{\"foo\":[\"bar\",\"baz\"],\"\":0,\"a/b\":1,\"c%d\":2,\"e^f\":3,\"g|h\":4,"
                       "\"i\\\\j\":5,\"k\\\"l\":6,\" \":7,\"m~n\":8}";
    ak_json_doc d;
    ak_json *v;
    size_t i;
    ak_json_doc_init(&d, NULL);
    CHECK_OK(ak_json_parse(&d, text, strlen(text), NULL));
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_OK(ak_json_pointer(d.root, cases[i].ptr, strlen(cases[i].ptr), &v, NULL));
        CHECK_STR(js(v), cases[i].want ? cases[i].want : js(d.root));
    }
    ak_json_doc_free(&d);
}

static void pointer_rejects_bad_syntax_and_missing_targets(void) {
    static const char *const bad[] = {"a", "/~", "/~2", "/a~", "#/a"};
    static const char *const missing[] = {"/x", "/a/2", "/a/-", "/a/01", "/a/00", "/a/1e0", "/a/-1",
                                          "/a/0/x", "/a/99999999999999999999999", "/b/c"};
    ak_json_doc d;
    ak_json *v;
    ak_error e;
    size_t i;
    ak_json_doc_init(&d, NULL);
    CHECK_OK(ak_json_parse(&d, "{\"a\":[1,2],\"b\":null}", 20, NULL));
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = d.root;
        CHECK_EQ(ak_json_pointer(d.root, bad[i], strlen(bad[i]), &v, &e), AK_ERR_JSON_POINTER);
        CHECK(v == NULL);
        CHECK_MSG(strstr(e.message, "invalid JSON Pointer") != NULL, "%s: %s", bad[i], e.message);
    }
    for (i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        CHECK_EQ(ak_json_pointer(d.root, missing[i], strlen(missing[i]), &v, &e), AK_ERR_JSON_POINTER);
        CHECK_MSG(strstr(e.message, "nothing at") != NULL, "%s: %s", missing[i], e.message);
    }
    CHECK_OK(ak_json_pointer(d.root, "/a/1", 4, &v, NULL));
    CHECK_EQ(ak_json_int_or(v, 0), 2);
    CHECK_OK(ak_json_pointer(d.root, "/a/1/zzz", 4, &v, NULL)); /* len bounds the pointer */
    CHECK_EQ(ak_json_pointer(NULL, "", 0, &v, NULL), AK_ERR_JSON_POINTER);
    CHECK_EQ(ak_json_pointer(d.root, NULL, 3, &v, NULL), AK_ERR_JSON_POINTER);
    ak_json_doc_free(&d);
}

static void pointer_append_escapes(void) {
    ak_buf b;
    ak_buf_init(&b, NULL);
    ak_json_pointer_append(&b, "a/b~c", 5);
    ak_json_pointer_append(&b, "", 0);
    ak_json_pointer_append(&b, "~~//", 4);
    ak_json_pointer_append(&b, "x\0y", 3);
    CHECK_EQ(b.len, 22);
    CHECK(memcmp(b.ptr, "/a~1b~0c//~0~0~1~1/x\0y", 22) == 0);
    ak_buf_free(&b);
}

/* ---- strict patch --------------------------------------------------------------------- */

static void errors_name_the_operation_and_reason(void) {
    static const struct { const char *doc, *patch, *msg; ak_result code; } cases[] = {
        {"{\"a\":{}}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":{}},{\"op\":\"add\",\"path\":\"/b\",\"value\":1},"
                       "{\"op\":\"remove\",\"path\":\"/a/b\"}]",
         "operation 2 (remove): path /a/b does not exist", AK_ERR_JSON_PATCH},
        {"{}", "[1]", "operation 0: not an object", AK_ERR_JSON_PATCH},
        {"{}", "[{\"path\":\"\"}]", "operation 0: missing 'op'", AK_ERR_JSON_PATCH},
        {"{}", "[{\"op\":\"spam\",\"path\":\"\"}]", "operation 0: unknown op 'spam'", AK_ERR_JSON_PATCH},
        {"{}", "[{\"op\":\"add\",\"value\":1}]", "operation 0 (add): missing 'path'", AK_ERR_JSON_PATCH},
        {"{}", "[{\"op\":\"add\",\"path\":5,\"value\":1}]", "operation 0 (add): 'path' is not a string", AK_ERR_JSON_PATCH},
        {"{}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]", "operation 0 (add): 'path' is not a JSON Pointer: 'a'",
         AK_ERR_JSON_PATCH},
        {"{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", "operation 0 (add): missing 'value'", AK_ERR_JSON_PATCH},
        {"{}", "[{\"op\":\"copy\",\"path\":\"/a\"}]", "operation 0 (copy): missing 'from'", AK_ERR_JSON_PATCH},
        {"{}", "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/a\"}]", "operation 0 (move): from /x does not exist",
         AK_ERR_JSON_PATCH},
        {"[1]", "[{\"op\":\"add\",\"path\":\"/x\",\"value\":1}]", "operation 0 (add): path /x: 'x' is not an array index",
         AK_ERR_JSON_PATCH},
        {"[1]", "[{\"op\":\"add\",\"path\":\"/2\",\"value\":1}]",
         "operation 0 (add): path /2: index 2 is beyond the end of an array of 1", AK_ERR_JSON_PATCH},
        {"{\"a\":{\"b\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]",
         "operation 0 (move): cannot move /a into its own child /a/b/c", AK_ERR_JSON_PATCH},
        {"{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":2}]", "operation 0 (test): the value at /a differs",
         AK_ERR_JSON_TEST},
        {"1", "[{\"op\":\"test\",\"path\":\"\",\"value\":2}]", "operation 0 (test): the value at (root) differs",
         AK_ERR_JSON_TEST},
        {"{\"a\":\"s\"}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]", "operation 0 (add): path /a/b does not exist",
         AK_ERR_JSON_PATCH},
        {"{}", "{}", "a JSON Patch must be an array of operations", AK_ERR_JSON_PATCH},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *out, *msg;
        ak_result rc = apply(cases[i].doc, cases[i].patch, 0, &out, &msg);
        CHECK_MSG(rc == cases[i].code, "case %zu: rc %d, want %d (%s)", i, (int)rc, (int)cases[i].code, msg);
        CHECK_STR(msg, cases[i].msg);
        CHECK_STR(out, cases[i].doc);
    }
}

static void failed_patch_leaves_the_document_untouched(void) {
    /* Enough operations to spill the undo journal past its first chunk, touching every kind
       of edit (member and element insert, remove, replace, move, copy, root), then a failure. */
    const char *doc = "{\"a\":[1,2,3],\"b\":{\"x\":1,\"y\":2},\"c\":\"s\",\"d\":{\"d\":{\"d\":{}}}}";
    char patch[8192];
    const char *out, *msg;
    size_t n = 0;
    int i;
    n += (size_t)snprintf(patch + n, sizeof patch - n, "[");
    for (i = 0; i < 20; i++)
        n += (size_t)snprintf(patch + n, sizeof patch - n,
                              "{\"op\":\"add\",\"path\":\"/a/1\",\"value\":%d},{\"op\":\"remove\",\"path\":\"/a/0\"},"
                              "{\"op\":\"move\",\"from\":\"/b/x\",\"path\":\"/b/z\"},{\"op\":\"move\",\"from\":\"/b/z\",\"path\":\"/b/x\"},"
                              "{\"op\":\"copy\",\"from\":\"/d\",\"path\":\"/e%d\"},{\"op\":\"replace\",\"path\":\"/c\",\"value\":%d},",
                              i, i, i);
    n += (size_t)snprintf(patch + n, sizeof patch - n,
                          "{\"op\":\"replace\",\"path\":\"\",\"value\":[]},{\"op\":\"add\",\"path\":\"/-\",\"value\":1},"
                          "{\"op\":\"remove\",\"path\":\"/nope\"}]");
    CHECK_EQ(apply(doc, patch, 0, &out, &msg), AK_ERR_JSON_PATCH);
    CHECK_STR(out, doc);
    CHECK(strstr(msg, "operation 122 (remove)") != NULL);
    /* The same patch without the failing operation applies. */
    strcpy(strstr(patch, ",{\"op\":\"remove\",\"path\":\"/nope\"}"), "]");
    CHECK_OK(apply(doc, patch, 0, &out, &msg));
    CHECK_STR(out, "[1]");
}

static void strict_semantics(void) {
    static const struct { const char *doc, *patch, *want; } cases[] = {
        /* add replaces an existing member in place, keeping member order */
        {"{\"a\":1,\"b\":2}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":3}]", "{\"a\":3,\"b\":2}"},
        /* remove drops duplicate members too, so no older value reappears */
        {"{\"a\":1,\"b\":2,\"a\":3}", "[{\"op\":\"remove\",\"path\":\"/a\"}]", "{\"b\":2}"},
        {"{\"a\":1,\"a\":3}", "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":4}]", "{\"a\":1,\"a\":4}"},
        /* the root */
        {"{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"\"}]", "null"},
        {"{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"\"},{\"op\":\"add\",\"path\":\"\",\"value\":[]}]", "[]"},
        {"[1,2]", "[{\"op\":\"move\",\"from\":\"\",\"path\":\"\"}]", "[1,2]"},
        {"[1,2]", "[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/-\"}]", "[1,2,[1,2]]"},
        {"{\"a\":{\"b\":[1]}}", "[{\"op\":\"move\",\"from\":\"/a/b\",\"path\":\"/a/c\"},{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/x\"}]",
         "{\"x\":{\"c\":[1]}}"},
        /* move keeps identity: later edits through the new path see it */
        {"[[1],[2]]", "[{\"op\":\"move\",\"from\":\"/1\",\"path\":\"/0/-\"},{\"op\":\"add\",\"path\":\"/0/1/-\",\"value\":3}]",
         "[[1,[2,3]]]"},
        /* the path is read after the removal: /1 is the old /2 */
        {"[1,2,3]", "[{\"op\":\"move\",\"from\":\"/0\",\"path\":\"/2\"}]", "[2,3,1]"},
        /* keys with escapes and the empty key */
        {"{}", "[{\"op\":\"add\",\"path\":\"/~0~1\",\"value\":1},{\"op\":\"add\",\"path\":\"/\",\"value\":2}]",
         "{\"~/\":1,\"\":2}"},
        /* test compares numbers by value and objects regardless of order */
        {"{\"n\":[1,{\"a\":1,\"b\":2}]}", "[{\"op\":\"test\",\"path\":\"/n\",\"value\":[1.0,{\"b\":2,\"a\":1e0}]}]",
         "{\"n\":[1,{\"a\":1,\"b\":2}]}"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *out, *msg;
        CHECK_MSG(apply(cases[i].doc, cases[i].patch, 0, &out, &msg) == AK_OK, "case %zu: %s", i, msg);
        CHECK_STR(out, cases[i].want);
    }
}

static void patch_argument_checks(void) {
    ak_json_doc d;
    ak_json *root, *p;
    ak_error e;
    ak_json_doc_init(&d, NULL);
    root = P(&d, "{}");
    p = P(&d, "[]");
    CHECK_EQ(ak_json_patch(NULL, &root, p, 0, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_json_patch(&d, NULL, p, 0, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_json_patch(&d, &root, NULL, 0, NULL), AK_ERR_JSON_PATCH);
    /* An absent document takes add and replace at the root only. */
    root = NULL;
    CHECK_EQ(ak_json_patch(&d, &root, P(&d, "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1}]"), 0, &e), AK_ERR_JSON_PATCH);
    CHECK(root == NULL);
    CHECK_EQ(ak_json_patch(&d, &root, P(&d, "[{\"op\":\"remove\",\"path\":\"\"}]"), 0, &e), AK_ERR_JSON_PATCH);
    CHECK_OK(ak_json_patch(&d, &root, P(&d, "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"a\":1}}]"), 0, &e));
    CHECK_STR(js(root), "{\"a\":1}");
    ak_json_doc_free(&d);
}

static void nesting_is_bounded(void) {
    /* Copying a deep chain into its own leaf would double its depth with each operation. */
    char doc[2000], patch[4000];
    const char *out, *msg;
    size_t n = 0;
    int i;
    for (i = 0; i < 300; i++) doc[i] = '[';
    for (i = 0; i < 300; i++) doc[300 + i] = ']';
    doc[600] = 0;
    n += (size_t)snprintf(patch, sizeof patch, "[{\"op\":\"copy\",\"from\":\"\",\"path\":\"");
    for (i = 0; i < 299; i++) n += (size_t)snprintf(patch + n, sizeof patch - n, "/0");
    snprintf(patch + n, sizeof patch - n, "/-\"}]");
    CHECK_EQ(apply(doc, patch, 0, &out, &msg), AK_ERR_JSON_DEPTH);
    CHECK_STR(out, doc);
    CHECK(strstr(msg, "deeper than 512") != NULL);
    /* Shallow enough: fine. */
    CHECK_OK(apply("[[[]]]", "[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/0/0/-\"}]", 0, &out, &msg));
    CHECK_STR(out, "[[[[[[]]]]]]");
    /* A pointer deeper than the limit cannot be added to. */
    n = (size_t)snprintf(patch, sizeof patch, "[{\"op\":\"add\",\"value\":1,\"path\":\"");
    for (i = 0; i < 513; i++) n += (size_t)snprintf(patch + n, sizeof patch - n, "/a");
    snprintf(patch + n, sizeof patch - n, "\"}]");
    CHECK_EQ(apply("{}", patch, AK_PATCH_LENIENT, &out, &msg), AK_ERR_JSON_DEPTH);
    CHECK_STR(out, "{}");
}

/* Each "copy" of the root into itself doubles the document: 40 of them would need
   terabytes. The copies of one patch may add AK_JSON_PATCH_MAX_COPY bytes, no more. */
static void copy_growth_is_bounded(void) {
    char doc[1100], patch[2000];
    const char *out, *msg;
    size_t n;
    int i;
    snprintf(doc, sizeof doc, "{\"x\":\"%01000d\"}", 0);
    n = (size_t)snprintf(patch, sizeof patch, "[");
    for (i = 0; i < 40; i++)
        n += (size_t)snprintf(patch + n, sizeof patch - n, "%s{\"op\":\"copy\",\"from\":\"\",\"path\":\"/y%d\"}",
                              i ? "," : "", i);
    snprintf(patch + n, sizeof patch - n, "]");
    CHECK_EQ(apply(doc, patch, 0, &out, &msg), AK_ERR_LIMIT);
    CHECK_STR(out, doc);
    CHECK_MSG(strstr(msg, "AK_JSON_PATCH_MAX_COPY") != NULL, "%s", msg);
    CHECK_MSG(strncmp(msg, "operation 13 ", 13) == 0, "%s", msg); /* the 14th copy would pass 16 MiB */
    /* a few copies are fine */
    CHECK_OK(apply("{\"x\":1}", "[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/y\"},"
                                  "{\"op\":\"copy\",\"from\":\"\",\"path\":\"/y\"}]",
                   0, &out, &msg));
    CHECK_STR(out, "{\"x\":1,\"y\":{\"x\":1,\"y\":{\"x\":1}}}");
}

/* ---- lenient patch (Genkit's client applyPatch) ---------------------------------------- */

static void lenient_rules(void) {
    static const struct { const char *doc, *patch, *want; ak_result rc; } cases[] = {
        /* missing parents become objects, also over null and scalars */
        {"{}", "[{\"op\":\"add\",\"path\":\"/a/b/c\",\"value\":1}]", "{\"a\":{\"b\":{\"c\":1}}}", AK_OK},
        {"{\"a\":null,\"b\":5}", "[{\"op\":\"add\",\"path\":\"/a/x\",\"value\":1},{\"op\":\"add\",\"path\":\"/b/y\",\"value\":2}]",
         "{\"a\":{\"x\":1},\"b\":{\"y\":2}}", AK_OK},
        {"[null]", "[{\"op\":\"add\",\"path\":\"/0/k\",\"value\":1}]", "[{\"k\":1}]", AK_OK},
        {"null", "[{\"op\":\"add\",\"path\":\"/status\",\"value\":\"done\"}]", "{\"status\":\"done\"}", AK_OK},
        /* remove and replace of something missing do nothing */
        {"{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/x/y\"},{\"op\":\"remove\",\"path\":\"/b\"}]", "{\"a\":1}", AK_OK},
        {"{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":2},{\"op\":\"replace\",\"path\":\"/x/y\",\"value\":2}]",
         "{\"a\":1}", AK_OK},
        {"[1]", "[{\"op\":\"remove\",\"path\":\"/5\"},{\"op\":\"replace\",\"path\":\"/5\",\"value\":0}]", "[1]", AK_OK},
        {"null", "[{\"op\":\"remove\",\"path\":\"\"}]", "null", AK_OK},
        /* the root is replaced by add and replace */
        {"{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":[1]}]", "[1]", AK_OK},
        /* array indices as JavaScript numbers; add past the end appends, as splice does */
        {"[1,2]", "[{\"op\":\"add\",\"path\":\"/9\",\"value\":3},{\"op\":\"replace\",\"path\":\"/01\",\"value\":0}]",
         "[1,0,3]", AK_OK},
        /* arrays do not grow holes for missing parents */
        {"[]", "[{\"op\":\"add\",\"path\":\"/3/a\",\"value\":1}]", "[]", AK_ERR_JSON_PATCH},
        /* test still throws, also for a missing value */
        {"{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":2}]", "{\"a\":1}", AK_ERR_JSON_TEST},
        {"{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/b\",\"value\":null}]", "{\"a\":1}", AK_ERR_JSON_TEST},
        /* prototype tokens are refused anywhere in path or from */
        {"{}", "[{\"op\":\"add\",\"path\":\"/__proto__/x\",\"value\":1}]", "{}", AK_ERR_JSON_PATCH},
        {"{}", "[{\"op\":\"add\",\"path\":\"/a/constructor\",\"value\":1}]", "{}", AK_ERR_JSON_PATCH},
        {"{\"prototype\":1}", "[{\"op\":\"copy\",\"from\":\"/prototype\",\"path\":\"/a\"}]", "{\"prototype\":1}",
         AK_ERR_JSON_PATCH},
        /* a root scalar has no members to set */
        {"5", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1}]", "5", AK_ERR_JSON_PATCH},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *out, *msg;
        ak_result rc = apply(cases[i].doc, cases[i].patch, AK_PATCH_LENIENT, &out, &msg);
        CHECK_MSG(rc == cases[i].rc, "case %zu: rc %d, want %d (%s)", i, (int)rc, (int)cases[i].rc, msg);
        CHECK_MSG(strcmp(out, cases[i].want) == 0, "case %zu: got %s, want %s", i, out, cases[i].want);
    }
    /* Strict mode treats the same tokens as ordinary keys. */
    {
        const char *out;
        CHECK_OK(apply("{}", "[{\"op\":\"add\",\"path\":\"/__proto__\",\"value\":1}]", 0, &out, NULL));
        CHECK_STR(out, "{\"__proto__\":1}");
    }
}

/* ---- diff ----------------------------------------------------------------------------- */

/* The diff of two JSON texts, as compact JSON. */
static const char *diff(const char *from, const char *to) {
    ak_json_doc d;
    ak_json *patch = NULL;
    const char *out;
    ak_json_doc_init(&d, NULL);
    CHECK_OK(ak_json_diff(&d, from ? P(&d, from) : NULL, to ? P(&d, to) : NULL, &patch));
    out = js(patch);
    ak_json_doc_free(&d);
    return out;
}

static void diff_follows_genkit(void) {
    CHECK_STR(diff("{\"a\":1,\"b\":[1,2]}", "{\"b\":[1,2],\"a\":1.0}"), "[]");
    CHECK_STR(diff("{\"a\":1,\"b\":2,\"c\":3}", "{\"d\":4,\"c\":3,\"a\":5}"),
              "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":5},{\"op\":\"remove\",\"path\":\"/b\"},"
              "{\"op\":\"add\",\"path\":\"/d\",\"value\":4}]");
    CHECK_STR(diff("[1,2]", "[1,3,4,{\"x\":[]}]"),
              "[{\"op\":\"replace\",\"path\":\"/1\",\"value\":3},{\"op\":\"add\",\"path\":\"/-\",\"value\":4},"
              "{\"op\":\"add\",\"path\":\"/-\",\"value\":{\"x\":[]}}]");
    CHECK_STR(diff("{\"l\":[0,1,2,3]}", "{\"l\":[9]}"),
              "[{\"op\":\"replace\",\"path\":\"/l/0\",\"value\":9},{\"op\":\"remove\",\"path\":\"/l/3\"},"
              "{\"op\":\"remove\",\"path\":\"/l/2\"},{\"op\":\"remove\",\"path\":\"/l/1\"}]");
    CHECK_STR(diff("{\"a\":{\"b\":{\"c\":1}}}", "{\"a\":{\"b\":{\"c\":2}}}"),
              "[{\"op\":\"replace\",\"path\":\"/a/b/c\",\"value\":2}]");
    CHECK_STR(diff("{\"a/b\":{\"~\":1}}", "{\"a/b\":{\"~\":2}}"),
              "[{\"op\":\"replace\",\"path\":\"/a~1b/~0\",\"value\":2}]");
    CHECK_STR(diff("{\"a\":1}", "[1]"), "[{\"op\":\"replace\",\"path\":\"\",\"value\":[1]}]");
    CHECK_STR(diff("{\"a\":[1]}", "{\"a\":{\"0\":1}}"), "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":{\"0\":1}}]");
    CHECK_STR(diff("{\"a\":null}", "{\"a\":false}"), "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":false}]");
    CHECK_STR(diff("\"x\"", "\"x\""), "[]");
    CHECK_STR(diff(NULL, NULL), "[]");
    CHECK_STR(diff(NULL, "{\"a\":1}"), "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"a\":1}}]");
    CHECK_STR(diff("{\"a\":1}", NULL), "[{\"op\":\"remove\",\"path\":\"\"}]");
    CHECK_STR(diff(NULL, "null"), "[{\"op\":\"replace\",\"path\":\"\",\"value\":null}]");
    /* duplicate keys: each key once, at its first place, with its last value */
    CHECK_STR(diff("{\"a\":1,\"b\":1,\"a\":2}", "{\"a\":3,\"c\":1,\"c\":2}"),
              "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":3},{\"op\":\"remove\",\"path\":\"/b\"},"
              "{\"op\":\"add\",\"path\":\"/c\",\"value\":2}]");
    /* a long index renders all its digits */
    {
        char from[4000], to[4000];
        size_t n = 0;
        int i;
        n += (size_t)snprintf(from, sizeof from, "[");
        for (i = 0; i < 1234; i++) n += (size_t)snprintf(from + n, sizeof from - n, "%s0", i ? "," : "");
        snprintf(from + n, sizeof from - n, "]");
        strcpy(to, from);
        to[strlen(to) - 2] = '1';
        CHECK_STR(diff(from, to), "[{\"op\":\"replace\",\"path\":\"/1233\",\"value\":1}]");
    }
    CHECK_EQ(ak_json_diff(NULL, NULL, NULL, NULL), AK_ERR_INVALID_ARGUMENT);
}

static uint32_t rng_state;
static uint32_t rnd(uint32_t n) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (rng_state >> 8) % n;
}

static const char *const keys[] = {"a", "b", "c", "~", "/", "a~1", ""};

/* A random value; containers hold up to four children and stop at depth 4. */
static ak_json *gen(ak_json_doc *d, int depth) {
    static const char *const strs[] = {"x", "y", "~/", ""};
    ak_json *v;
    int i, n;
    switch (rnd(depth >= 4 ? 4 : 7)) {
    case 0: return ak_json_new_null(d);
    case 1: return ak_json_new_bool(d, (int)rnd(2));
    case 2: return ak_json_new_int(d, (int64_t)rnd(4));
    case 3: return ak_json_new_str(d, strs[rnd(4)]);
    case 4: case 5:
        v = ak_json_new_object(d);
        for (i = 0, n = (int)rnd(5); i < n; i++) ak_json_set(d, v, keys[rnd(7)], gen(d, depth + 1));
        return v;
    default:
        v = ak_json_new_array(d);
        for (i = 0, n = (int)rnd(5); i < n; i++) ak_json_push(v, gen(d, depth + 1));
        return v;
    }
}

/* A copy of v with random edits, so pairs share structure the diff can recurse into. */
static ak_json *mutate(ak_json_doc *d, const ak_json *v, int depth) {
    ak_json *c, *m;
    if (rnd(6) == 0) return gen(d, depth);
    if (!ak_json_is(v, AK_JSON_OBJECT) && !ak_json_is(v, AK_JSON_ARRAY)) return ak_json_copy(d, v);
    c = v->type == AK_JSON_OBJECT ? ak_json_new_object(d) : ak_json_new_array(d);
    for (m = v->u.first; m; m = m->next) {
        if (rnd(5) == 0) continue; /* dropped */
        if (c->type == AK_JSON_OBJECT) ak_json_add(d, c, m->key, m->key_len, mutate(d, m, depth + 1));
        else ak_json_push(c, mutate(d, m, depth + 1));
    }
    if (rnd(3) == 0) {
        if (c->type == AK_JSON_OBJECT) ak_json_set(d, c, keys[rnd(7)], gen(d, depth + 1));
        else ak_json_push(c, gen(d, depth + 1));
    }
    return c;
}

static void diff_round_trips_on_generated_pairs(void) {
    int i, nonempty = 0;
    rng_state = 12345;
    for (i = 0; i < 3000; i++) {
        ak_json_doc d;
        ak_json *from, *to, *patch, *root;
        ak_error e;
        unsigned mode;
        ak_json_doc_init(&d, NULL);
        from = gen(&d, 0);
        to = i % 4 == 0 ? gen(&d, 0) : mutate(&d, from, 0);
        CHECK_OK(ak_json_diff(&d, from, to, &patch));
        nonempty += ak_json_len(patch) > 0;
        for (mode = 0; mode < 2; mode++) {
            root = ak_json_copy(&d, from);
            CHECK_MSG(ak_json_patch(&d, &root, patch, mode ? AK_PATCH_LENIENT : 0, &e) == AK_OK, "pair %d: %s", i,
                      e.message);
            CHECK_MSG(ak_json_equal(root, to), "pair %d: %s -> %s via %s gave %s", i, js(from), js(to), js(patch),
                      js(root));
        }
        CHECK(ak_json_equal(from, to) == (ak_json_len(patch) == 0));
        ak_json_doc_free(&d);
        if (t_current_failed) break;
    }
    CHECK_MSG(nonempty > 1500, "only %d of 3000 pairs differ", nonempty);
}

/* ---- memory --------------------------------------------------------------------------- */

static void patch_and_diff_survive_every_allocation_failure(void) {
    const char *doc = "{\"a\":[1,2,3],\"b\":{\"x\":\"y\"},\"c\":[[1,2],[3,4]]}";
    const char *patch = "[{\"op\":\"copy\",\"from\":\"/c\",\"path\":\"/d\"},{\"op\":\"add\",\"path\":\"/e\",\"value\":{\"k\":[1,2,3]}},"
                        "{\"op\":\"move\",\"from\":\"/b\",\"path\":\"/a/0\"},{\"op\":\"copy\",\"from\":\"/d\",\"path\":\"/f\"},"
                        "{\"op\":\"add\",\"path\":\"/g/h/i\",\"value\":\"a long enough string to need a new block\"}]";
    const char *want = "{\"a\":[{\"x\":\"y\"},1,2,3],\"c\":[[1,2],[3,4]],\"d\":[[1,2],[3,4]],\"e\":{\"k\":[1,2,3]},"
                       "\"f\":[[1,2],[3,4]],\"g\":{\"h\":{\"i\":\"a long enough string to need a new block\"}}}";
    long long n;
    int ok_seen = 0, failures = 0;
    for (n = 1; n < 200 && !ok_seen; n++) {
        t_alloc ta;
        ak_json_doc d, pd;
        ak_json *root, *p, *dp = NULL;
        ak_error e;
        ak_result rc;
        ak_json_doc_init(&pd, NULL);
        p = P(&pd, patch);
        ak_json_doc_init(&d, t_alloc_init(&ta, 0));
        d.arena.next_size = 32; /* small blocks, filled by the parse: the patch must allocate */
        root = P(&d, doc);
        d.arena.next_size = 32;
        ta.fail_at = ta.count + n;
        rc = ak_json_patch(&d, &root, p, AK_PATCH_LENIENT, &e);
        CHECK(rc == AK_OK || rc == AK_ERR_OUT_OF_MEMORY);
        if (rc == AK_OK) {
            ok_seen = 1;
            CHECK_STR(js(root), want);
        } else {
            failures++;
            CHECK_STR(js(root), doc);
            CHECK(strstr(e.message, "out of memory") != NULL);
            CHECK(d.err == AK_OK);
            /* the document still works after the failure */
            ta.fail_at = 0;
            CHECK_OK(ak_json_diff(&d, root, P(&d, want), &dp));
            CHECK_OK(ak_json_patch(&d, &root, dp, 0, &e));
            CHECK_STR(js(root), want);
        }
        ak_json_doc_free(&d);
        ak_json_doc_free(&pd);
        CHECK_EQ(ta.live, 0);
    }
    CHECK_MSG(ok_seen && failures >= 4, "patch: ok %d, %d failures", ok_seen, failures);
    for (n = 1, ok_seen = 0, failures = 0; n < 200 && !ok_seen; n++) {
        t_alloc ta;
        ak_json_doc d;
        ak_json *from, *to, *dp = NULL;
        ak_result rc;
        size_t used;
        ak_json_doc_init(&d, t_alloc_init(&ta, 0));
        d.arena.next_size = 32;
        from = P(&d, doc);
        to = P(&d, want);
        used = d.arena.used_bytes;
        d.arena.next_size = 32;
        ta.fail_at = ta.count + n;
        rc = ak_json_diff(&d, from, to, &dp);
        CHECK(rc == AK_OK || rc == AK_ERR_OUT_OF_MEMORY);
        if (rc == AK_OK) {
            ok_seen = 1;
            CHECK_EQ(ak_json_len(dp), 9);
        } else {
            failures++;
            CHECK(dp == NULL && d.arena.used_bytes == used && d.err == AK_OK);
        }
        ak_json_doc_free(&d);
        CHECK_EQ(ta.live, 0);
    }
    CHECK_MSG(ok_seen && failures >= 4, "diff: ok %d, %d failures", ok_seen, failures);
}

static void patch_works_in_a_fixed_document(void) {
    static unsigned char mem[2048];
    static char patch[2000];
    ak_json_doc d, pd;
    ak_json *root;
    ak_error e;
    char big[1900];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_OK(ak_json_doc_init_fixed(&d, mem, sizeof mem));
    ak_json_doc_init(&pd, NULL);
    root = P(&d, "{\"a\":[1,2]}");
    CHECK_OK(ak_json_patch(&d, &root, P(&pd, "[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":3}]"), 0, &e));
    CHECK_STR(js(root), "{\"a\":[1,2,3]}");
    /* The second operation does not fit in what is left of the 2 KiB. */
    snprintf(patch, sizeof patch, "[{\"op\":\"remove\",\"path\":\"/a/0\"},{\"op\":\"add\",\"path\":\"/b\",\"value\":\"%s\"}]", big);
    CHECK_EQ(ak_json_patch(&d, &root, P(&pd, patch), 0, &e), AK_ERR_OUT_OF_MEMORY);
    CHECK_STR(e.message, "operation 1 (add): out of memory");
    CHECK_STR(js(root), "{\"a\":[1,2,3]}");
    ak_json_doc_free(&pd);
    ak_json_doc_free(&d);
}

/* ---- regressions found by fuzzing ------------------------------------------------------ */

/* Parses text into a fixed document of exactly ak_json_max_memory bytes. */
static ak_result parse_fixed(const char *text) {
    size_t len = strlen(text), need = ak_json_max_memory(len);
    void *mem = malloc(need);
    ak_json_doc d;
    ak_result rc;
    CHECK_OK(ak_json_doc_init_fixed(&d, mem, need));
    rc = ak_json_parse(&d, text, len, NULL);
    ak_json_doc_free(&d);
    free(mem);
    return rc;
}

static void fuzz_regressions(void) {
    /* fuzz_json_parse: invalid text may need more nodes than valid text of its length; a
       fixed document of the announced size then fails cleanly (here: out of memory). */
    ak_result rc = parse_fixed("[[[[[[[[[]]]]");
    CHECK(rc == AK_ERR_JSON_SYNTAX || rc == AK_ERR_OUT_OF_MEMORY);
    /* The announced size holds for the densest valid documents. */
    CHECK_OK(parse_fixed("[[[[[[[[[]]]]]]]]]"));
    CHECK_OK(parse_fixed("[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"));
    CHECK_OK(parse_fixed("[\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"]"));
    CHECK_OK(parse_fixed("{\"\":0,\"\":0,\"\":0,\"\":0,\"\":0,\"\":0,\"\":0,\"\":0,\"\":0}"));
    CHECK_OK(parse_fixed("0"));
    CHECK_OK(parse_fixed("\"a\\u00e9\\n\""));
}

int main(void) {
    int suite = run_suite_file("tests.json") + run_suite_file("spec_tests.json");
    if (suite < 100) {
        fprintf(stderr, "json-patch-tests: only %d cases ran\n", suite);
        t_failed++;
    }
    RUN(pointer_resolves_rfc6901_examples);
    RUN(pointer_rejects_bad_syntax_and_missing_targets);
    RUN(pointer_append_escapes);
    RUN(errors_name_the_operation_and_reason);
    RUN(failed_patch_leaves_the_document_untouched);
    RUN(strict_semantics);
    RUN(patch_argument_checks);
    RUN(nesting_is_bounded);
    RUN(copy_growth_is_bounded);
    RUN(lenient_rules);
    RUN(diff_follows_genkit);
    RUN(diff_round_trips_on_generated_pairs);
    RUN(patch_and_diff_survive_every_allocation_failure);
    RUN(patch_works_in_a_fixed_document);
    RUN(fuzz_regressions);
    return t_summary();
}
