/* JSON Schema subset: every keyword's pass and fail, messages with pointers, $ref, loops
   and fan-out limits, malformed schemas. */
#include "test.h"

/* Validates value text against schema text; returns the result, message in *msg. */
static ak_result validate(const char *schema, const char *value, const char **msg) {
    static ak_error e;
    ak_json_doc d;
    ak_json *s = NULL, *v = NULL;
    ak_result rc;
    ak_json_doc_init(&d, NULL);
    CHECK_OK(ak_json_parse_value(&d, schema, strlen(schema), NULL, &s, NULL));
    CHECK_OK(ak_json_parse_value(&d, value, strlen(value), NULL, &v, NULL));
    e.code = (ak_result)12345; /* untouched on success */
    strcpy(e.message, "untouched");
    rc = ak_json_schema_validate(s, v, &e);
    if (rc == AK_OK) CHECK_MSG(e.code == (ak_result)12345 && strcmp(e.message, "untouched") == 0,
                               "error written on success: %s", e.message);
    CHECK_EQ(ak_json_schema_validate(s, v, NULL), rc); /* same verdict without error detail */
    *msg = e.message;
    ak_json_doc_free(&d);
    return rc;
}

typedef struct schema_case {
    const char *schema, *value;
    ak_result rc;
    const char *msg; /* exact message when rc != AK_OK */
} schema_case;

static void run_cases(const schema_case *c, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        const char *msg;
        ak_result rc = validate(c[i].schema, c[i].value, &msg);
        CHECK_MSG(rc == c[i].rc, "case %zu: %s against %s: rc %d, want %d (%s)", i, c[i].value, c[i].schema, (int)rc,
                  (int)c[i].rc, msg);
        if (rc != AK_OK && c[i].msg)
            CHECK_MSG(strcmp(msg, c[i].msg) == 0, "case %zu: message \"%s\", want \"%s\"", i, msg, c[i].msg);
    }
}

static void types(void) {
    static const schema_case c[] = {
        {"{\"type\":\"string\"}", "\"x\"", AK_OK, NULL},
        {"{\"type\":\"string\"}", "5", AK_ERR_SCHEMA, "(root): must be string"},
        {"{\"type\":[\"string\",\"null\"]}", "null", AK_OK, NULL},
        {"{\"type\":[\"string\",\"null\"]}", "false", AK_ERR_SCHEMA, "(root): must be string or null"},
        {"{\"type\":\"integer\"}", "5", AK_OK, NULL},
        {"{\"type\":\"integer\"}", "5.0", AK_OK, NULL},
        {"{\"type\":\"integer\"}", "-1e2", AK_OK, NULL},
        {"{\"type\":\"integer\"}", "123456789012345678901234567890", AK_OK, NULL},
        {"{\"type\":\"integer\"}", "1e300", AK_OK, NULL},
        {"{\"type\":\"integer\"}", "5.5", AK_ERR_SCHEMA, "(root): must be integer"},
        {"{\"type\":\"integer\"}", "1e400", AK_ERR_SCHEMA, "(root): must be integer"},
        {"{\"type\":\"integer\"}", "\"5\"", AK_ERR_SCHEMA, "(root): must be integer"},
        {"{\"type\":\"number\"}", "5.5", AK_OK, NULL},
        {"{\"type\":\"boolean\"}", "true", AK_OK, NULL},
        {"{\"type\":\"boolean\"}", "0", AK_ERR_SCHEMA, "(root): must be boolean"},
        {"{\"type\":\"array\"}", "[]", AK_OK, NULL},
        {"{\"type\":\"object\"}", "[]", AK_ERR_SCHEMA, "(root): must be object"},
        {"{\"type\":\"null\"}", "null", AK_OK, NULL},
        {"{\"type\":[]}", "null", AK_ERR_SCHEMA, "(root): must be of no type (empty type list)"},
        {"{}", "{\"anything\":[1]}", AK_OK, NULL},
        {"true", "1", AK_OK, NULL},
        {"false", "1", AK_ERR_SCHEMA, "(root): no value is allowed here"},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

static void objects(void) {
    static const char *const tool =
        "{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"type\":\"object\",\"properties\":{"
        "\"city\":{\"type\":\"string\",\"description\":\"City name\"},\"units\":{\"type\":\"string\",\"enum\":[\"c\",\"f\"]},"
        "\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":14},\"address\":{\"type\":\"object\",\"properties\":"
        "{\"zip\":{\"type\":\"string\"}},\"required\":[\"zip\"]}},\"required\":[\"city\"],\"additionalProperties\":false}";
    const schema_case c[] = {
        {tool, "{\"city\":\"Oslo\",\"units\":\"c\",\"days\":3,\"address\":{\"zip\":\"0150\"}}", AK_OK, NULL},
        {tool, "{\"city\":5}", AK_ERR_SCHEMA, "/city: must be string"},
        {tool, "{\"units\":\"c\"}", AK_ERR_SCHEMA, "(root): missing required property 'city'"},
        {tool, "{\"city\":\"x\",\"units\":\"k\"}", AK_ERR_SCHEMA, "/units: must be one of [\"c\",\"f\"]"},
        {tool, "{\"city\":\"x\",\"days\":0}", AK_ERR_SCHEMA, "/days: must be >= 1"},
        {tool, "{\"city\":\"x\",\"days\":15}", AK_ERR_SCHEMA, "/days: must be <= 14"},
        {tool, "{\"city\":\"x\",\"days\":2.5}", AK_ERR_SCHEMA, "/days: must be integer"},
        {tool, "{\"city\":\"x\",\"address\":{}}", AK_ERR_SCHEMA, "/address: missing required property 'zip'"},
        {tool, "{\"city\":\"x\",\"address\":{\"zip\":1}}", AK_ERR_SCHEMA, "/address/zip: must be string"},
        {tool, "{\"city\":\"x\",\"extra\":1}", AK_ERR_SCHEMA, "(root): property 'extra' is not allowed"},
        {tool, "[]", AK_ERR_SCHEMA, "(root): must be object"},
        {"{\"additionalProperties\":{\"type\":\"number\"},\"properties\":{\"a\":{}}}", "{\"a\":\"s\",\"b\":1}", AK_OK, NULL},
        {"{\"additionalProperties\":{\"type\":\"number\"}}", "{\"b\":1,\"c\":\"s\"}", AK_ERR_SCHEMA, "/c: must be number"},
        {"{\"properties\":{\"a/b\":{\"properties\":{\"~\":{\"type\":\"null\"}}}}}", "{\"a/b\":{\"~\":1}}", AK_ERR_SCHEMA,
         "/a~1b/~0: must be null"},
        {"{\"properties\":{\"x\":false}}", "{\"x\":1}", AK_ERR_SCHEMA, "/x: no value is allowed here"},
        {"{\"properties\":{\"x\":false}}", "{}", AK_OK, NULL},
        {"{\"minProperties\":1,\"maxProperties\":2}", "{}", AK_ERR_SCHEMA, "(root): must have at least 1 properties"},
        {"{\"minProperties\":1,\"maxProperties\":2}", "{\"a\":1,\"b\":2,\"c\":3}", AK_ERR_SCHEMA,
         "(root): must have at most 2 properties"},
        {"{\"required\":[\"a\"]}", "\"not an object\"", AK_OK, NULL}, /* object keywords ignore other types */
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

static void arrays_strings_numbers(void) {
    static const schema_case c[] = {
        {"{\"items\":{\"type\":\"string\"}}", "[\"a\",\"b\"]", AK_OK, NULL},
        {"{\"properties\":{\"tags\":{\"items\":{\"type\":\"string\"}}}}", "{\"tags\":[\"a\",2]}", AK_ERR_SCHEMA,
         "/tags/1: must be string"},
        {"{\"minItems\":2,\"maxItems\":3}", "[1]", AK_ERR_SCHEMA, "(root): must have at least 2 items"},
        {"{\"minItems\":2,\"maxItems\":3}", "[1,2,3,4]", AK_ERR_SCHEMA, "(root): must have at most 3 items"},
        {"{\"items\":[{\"type\":\"string\"},{\"type\":\"number\"}],\"additionalItems\":false}", "[\"a\",1]", AK_OK, NULL},
        {"{\"items\":[{\"type\":\"string\"},{\"type\":\"number\"}],\"additionalItems\":false}", "[\"a\",1,null]",
         AK_ERR_SCHEMA, "/2: no value is allowed here"},
        {"{\"items\":[{\"type\":\"string\"}],\"additionalItems\":{\"type\":\"null\"}}", "[\"a\",null,0]", AK_ERR_SCHEMA,
         "/2: must be null"},
        {"{\"items\":[{\"type\":\"string\"}]}", "[1]", AK_ERR_SCHEMA, "/0: must be string"},
        {"{\"minLength\":2,\"maxLength\":4}", "\"h\\u00e9llo\"", AK_ERR_SCHEMA, "(root): must have at most 4 characters"},
        {"{\"maxLength\":5}", "\"h\\u00e9llo\"", AK_OK, NULL},
        {"{\"maxLength\":2}", "\"\\ud83d\\ude00\\ud83d\\ude00\"", AK_OK, NULL}, /* code points, not bytes or UTF-16 */
        {"{\"minLength\":3}", "\"\\ud83d\\ude00\\ud83d\\ude00\"", AK_ERR_SCHEMA, "(root): must have at least 3 characters"},
        {"{\"minimum\":1}", "1", AK_OK, NULL},
        {"{\"minimum\":1.5}", "1", AK_ERR_SCHEMA, "(root): must be >= 1.5"},
        {"{\"exclusiveMinimum\":0}", "0", AK_ERR_SCHEMA, "(root): must be > 0"},
        {"{\"exclusiveMinimum\":0}", "1e-9", AK_OK, NULL},
        {"{\"exclusiveMaximum\":5}", "5.0", AK_ERR_SCHEMA, "(root): must be < 5"},
        {"{\"minimum\":0,\"exclusiveMinimum\":true}", "0", AK_ERR_SCHEMA, "(root): must be > 0"}, /* draft-04 */
        {"{\"maximum\":10,\"exclusiveMaximum\":true}", "10", AK_ERR_SCHEMA, "(root): must be < 10"},
        {"{\"maximum\":10,\"exclusiveMaximum\":false}", "10", AK_OK, NULL},
        {"{\"minimum\":1}", "\"text\"", AK_OK, NULL},
        {"{\"const\":{\"a\":[1,2]}}", "{\"a\":[1.0,2]}", AK_OK, NULL},
        {"{\"const\":{\"a\":[1,2]}}", "{\"a\":[2,1]}", AK_ERR_SCHEMA, "(root): must be equal to {\"a\":[1,2]}"},
        {"{\"enum\":[null,1,\"x\"]}", "1.0", AK_OK, NULL},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

static void combinators(void) {
    static const schema_case c[] = {
        {"{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}", "null", AK_OK, NULL},
        {"{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}", "1", AK_ERR_SCHEMA,
         "(root): must match at least one schema in anyOf"},
        {"{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}", "1.5", AK_OK, NULL},
        {"{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}", "1", AK_ERR_SCHEMA,
         "(root): must match exactly one schema in oneOf (more than one matched)"},
        {"{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}", "\"s\"", AK_ERR_SCHEMA,
         "(root): must match exactly one schema in oneOf (none matched)"},
        {"{\"allOf\":[{\"minimum\":1},{\"maximum\":3}]}", "2", AK_OK, NULL},
        {"{\"allOf\":[{\"minimum\":1},{\"maximum\":3}]}", "4", AK_ERR_SCHEMA, "(root): must be <= 3"},
        {"{\"not\":{\"type\":\"string\"}}", "1", AK_OK, NULL},
        {"{\"not\":{\"type\":\"string\"}}", "\"s\"", AK_ERR_SCHEMA, "(root): must not match the schema in not"},
        {"{\"properties\":{\"p\":{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"k\":{\"const\":1}},\"required\":[\"k\"]},"
         "{\"type\":\"array\"}]}}}", "{\"p\":{\"k\":2}}", AK_ERR_SCHEMA, "/p: must match at least one schema in anyOf"},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

static void refs(void) {
    static const char *const tree =
        "{\"$ref\":\"#/definitions/node\",\"definitions\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":"
        "{\"type\":\"integer\"},\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/definitions/node\"}}},"
        "\"required\":[\"v\"]}}}";
    const schema_case c[] = {
        {tree, "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":3,\"kids\":[{\"v\":4}]}]}", AK_OK, NULL},
        {tree, "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":3,\"kids\":[{\"v\":\"x\"}]}]}", AK_ERR_SCHEMA,
         "/kids/1/kids/0/v: must be integer"},
        {tree, "{\"v\":1,\"kids\":[{}]}", AK_ERR_SCHEMA, "/kids/0: missing required property 'v'"},
        {"{\"$defs\":{\"s\":{\"type\":\"string\"}},\"properties\":{\"a\":{\"$ref\":\"#/$defs/s\"}}}", "{\"a\":1}",
         AK_ERR_SCHEMA, "/a: must be string"},
        {"{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}", "[[],[[]]]", AK_OK, NULL},
        {"{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}", "[[],[[1]]]", AK_ERR_SCHEMA, "/1/0/0: must be array"},
        /* siblings of $ref apply too (as in Ajv and draft 2019-09) */
        {"{\"$defs\":{\"n\":{\"type\":\"number\"}},\"$ref\":\"#/$defs/n\",\"maximum\":3}", "4", AK_ERR_SCHEMA,
         "(root): must be <= 3"},
        /* loops that do not consume the value end at the depth limit */
        {"{\"$ref\":\"#\"}", "1", AK_ERR_LIMIT, NULL},
        {"{\"$ref\":\"#/definitions/a\",\"definitions\":{\"a\":{\"$ref\":\"#/definitions/b\"},\"b\":{\"$ref\":\"#/definitions/a\"}}}",
         "1", AK_ERR_LIMIT, NULL},
        {"{\"anyOf\":[{\"$ref\":\"#\"}]}", "1", AK_ERR_LIMIT, NULL},
        {"{\"not\":{\"$ref\":\"#\"}}", "1", AK_ERR_LIMIT, NULL},
    };
    const char *msg;
    run_cases(c, sizeof c / sizeof c[0]);
    CHECK_EQ(validate("{\"$ref\":\"#\"}", "1", &msg), AK_ERR_LIMIT);
    CHECK_STR(msg, "(root): schema applied more than 256 levels deep (a $ref loop?)");
}

static void fan_out_is_bounded(void) {
    /* x0 = anyOf[x1, x1], ..., x40 = {"type":"string"}: every branch fails, shallowly, and
       there are 2^40 of them without the step budget. */
    static char schema[4000];
    size_t n = 0;
    int i;
    const char *msg;
    if (getenv("AK_VALGRIND")) return; /* a million steps: seconds under valgrind */
    n += (size_t)snprintf(schema, sizeof schema, "{\"$ref\":\"#/definitions/x0\",\"definitions\":{");
    for (i = 0; i < 40; i++)
        n += (size_t)snprintf(schema + n, sizeof schema - n,
                              "\"x%d\":{\"anyOf\":[{\"$ref\":\"#/definitions/x%d\"},{\"$ref\":\"#/definitions/x%d\"}]},", i,
                              i + 1, i + 1);
    snprintf(schema + n, sizeof schema - n, "\"x40\":{\"type\":\"string\"}}}");
    CHECK_EQ(validate(schema, "1", &msg), AK_ERR_LIMIT);
    CHECK_STR(msg, "(root): validation needs more than 1000000 steps");
    CHECK_EQ(validate(schema, "\"s\"", &msg), AK_OK); /* the first path matches at once */
}

static void malformed_schemas_are_reported(void) {
    static const schema_case c[] = {
        {"{\"type\":\"strin\"}", "1", AK_ERR_INVALID_ARGUMENT, "invalid schema: 'type' names an unknown type"},
        {"{\"type\":5}", "1", AK_ERR_INVALID_ARGUMENT, "invalid schema: 'type' must be a name or an array of names"},
        {"{\"$ref\":\"#/definitions/missing\"}", "1", AK_ERR_INVALID_ARGUMENT,
         "invalid schema: cannot resolve $ref '#/definitions/missing'"},
        {"{\"$ref\":\"http://example.com/s.json\"}", "1", AK_ERR_INVALID_ARGUMENT, NULL},
        {"{\"$ref\":5}", "1", AK_ERR_INVALID_ARGUMENT, "invalid schema: cannot resolve $ref ''"},
        {"{\"required\":\"a\"}", "{}", AK_ERR_INVALID_ARGUMENT, "invalid schema: 'required' must be an array of names"},
        {"{\"required\":[1]}", "{}", AK_ERR_INVALID_ARGUMENT, NULL},
        {"{\"minLength\":-1}", "\"\"", AK_ERR_INVALID_ARGUMENT, "invalid schema: 'minLength' must be a non-negative integer"},
        {"{\"maxItems\":1.5}", "[]", AK_ERR_INVALID_ARGUMENT, NULL},
        {"{\"minimum\":\"1\"}", "1", AK_ERR_INVALID_ARGUMENT, "invalid schema: 'minimum' must be a number"},
        {"{\"exclusiveMaximum\":\"1\"}", "1", AK_ERR_INVALID_ARGUMENT, NULL},
        {"{\"enum\":1}", "1", AK_ERR_INVALID_ARGUMENT, "invalid schema: 'enum' must be an array"},
        {"{\"anyOf\":[]}", "1", AK_ERR_INVALID_ARGUMENT, "invalid schema: 'anyOf' must be a non-empty array of schemas"},
        {"{\"allOf\":{}}", "1", AK_ERR_INVALID_ARGUMENT, NULL},
        {"{\"anyOf\":[1]}", "1", AK_ERR_INVALID_ARGUMENT, "invalid schema: not an object or boolean"},
        {"{\"oneOf\":[{\"type\":\"nope\"}]}", "1", AK_ERR_INVALID_ARGUMENT, NULL},
        {"{\"properties\":[]}", "{}", AK_ERR_INVALID_ARGUMENT, NULL},
        {"{\"properties\":{\"a\":1}}", "{\"a\":1}", AK_ERR_INVALID_ARGUMENT, NULL},
        {"{\"additionalProperties\":1}", "{}", AK_ERR_INVALID_ARGUMENT, NULL},
        {"{\"items\":1}", "[]", AK_ERR_INVALID_ARGUMENT, NULL},
        {"5", "1", AK_ERR_INVALID_ARGUMENT, NULL},
        {"{\"unknownKeyword\":{\"type\":\"string\"},\"format\":\"email\",\"pattern\":\"^x\"}", "1", AK_OK, NULL},
    };
    run_cases(c, sizeof c / sizeof c[0]);
    CHECK_EQ(ak_json_schema_validate(NULL, NULL, NULL), AK_ERR_INVALID_ARGUMENT);
}

static void deep_values_and_long_pointers(void) {
    /* A long pointer is cut to the message size, never overflowing it. */
    static char value[4000], schema[200];
    size_t n = 0;
    int i;
    ak_json_doc d;
    ak_json *s, *v;
    ak_error e;
    for (i = 0; i < 100; i++) n += (size_t)snprintf(value + n, sizeof value - n, "{\"key_%03d\":", i);
    n += (size_t)snprintf(value + n, sizeof value - n, "1");
    for (i = 0; i < 100; i++) value[n++] = '}';
    value[n] = 0;
    snprintf(schema, sizeof schema, "{\"additionalProperties\":{\"$ref\":\"#\"},\"type\":\"object\"}");
    ak_json_doc_init(&d, NULL);
    CHECK_OK(ak_json_parse_value(&d, schema, strlen(schema), NULL, &s, NULL));
    CHECK_OK(ak_json_parse_value(&d, value, strlen(value), NULL, &v, NULL));
    CHECK_EQ(ak_json_schema_validate(s, v, &e), AK_ERR_SCHEMA);
    CHECK_EQ(strlen(e.message), AK_ERROR_MAX - 1);
    CHECK(strncmp(e.message, "/key_000/key_001/", 17) == 0);
    /* Deeper than the schema depth limit: a clean limit error. */
    n = 0;
    for (i = 0; i < 300; i++) value[n++] = '[';
    for (i = 0; i < 300; i++) value[n++] = ']';
    value[n] = 0;
    CHECK_OK(ak_json_parse_value(&d, "{\"items\":{\"$ref\":\"#\"}}", 22, NULL, &s, NULL));
    CHECK_OK(ak_json_parse_value(&d, value, n, NULL, &v, NULL));
    CHECK_EQ(ak_json_schema_validate(s, v, &e), AK_ERR_LIMIT);
    /* An absent value is validated as null. */
    CHECK_OK(ak_json_parse_value(&d, "{\"type\":\"null\"}", 15, NULL, &s, NULL));
    CHECK_OK(ak_json_schema_validate(s, NULL, &e));
    ak_json_doc_free(&d);
}

int main(void) {
    RUN(types);
    RUN(objects);
    RUN(arrays_strings_numbers);
    RUN(combinators);
    RUN(refs);
    RUN(fan_out_is_bounded);
    RUN(malformed_schemas_are_reported);
    RUN(deep_values_and_long_pointers);
    return t_summary();
}
