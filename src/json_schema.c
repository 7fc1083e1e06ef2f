/* >>json_schema: validation against the draft-07 subset Genkit tool and state schemas use */

#include "json.h"
#include "json_patch.c"

/* Subschemas applied inside one another (properties, items, combinators, $ref). A schema
   that refers to itself without consuming the value ends here instead of recursing
   forever. */
#ifndef AK_JSON_SCHEMA_MAX_DEPTH
#define AK_JSON_SCHEMA_MAX_DEPTH 256
#endif
/* Subschemas applied in one validation: nested anyOf/oneOf can fan out exponentially, so a
   hostile schema costs at most this much work. */
#ifndef AK_JSON_SCHEMA_MAX_STEPS
#define AK_JSON_SCHEMA_MAX_STEPS 1000000
#endif

typedef struct ak__validator {
    const ak_json *root;   /* the whole schema, which $ref points into */
    ak_error *err;         /* NULL while trying the branches of anyOf, oneOf and not */
    size_t steps;
} ak__validator;

AK_PRIVATE ak_result ak__sv(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at,
                            size_t depth);

/* Fills the error as "<pointer>: <what>", the pointer "(root)" for the value itself. */
AK_PRIVATE ak_result ak__sfail(ak__validator *sv, const ak__jpath *at, ak_result code, const char *fmt, ...) {
    ak_buf b;
    va_list ap;
    if (!sv->err) return code;
    ak_error_set(sv->err, code, "");
    ak_buf_init_fixed(&b, sv->err->message, sizeof sv->err->message);
    if (at) ak__jpath_append(&b, at);
    else ak_buf_puts(&b, "(root)");
    ak_buf_append(&b, ": ", 2);
    va_start(ap, fmt);
    ak__vfmt(&b, fmt, ap);
    va_end(ap);
    return code;
}

/* Appends v as compact JSON to the message the last ak__sfail wrote. */
AK_PRIVATE void ak__sfail_show(ak__validator *sv, const ak_json *v) {
    ak_buf b;
    size_t n;
    if (!sv->err) return;
    n = ak__strlen(sv->err->message);
    ak_buf_init_fixed(&b, sv->err->message + n, sizeof sv->err->message - n);
    ak_json_write(v, &b);
}

AK_PRIVATE ak_result ak__bad_schema(ak__validator *sv, const char *keyword, const char *what) {
    return sv->err ? ak_error_set(sv->err, AK_ERR_INVALID_ARGUMENT, "invalid schema: '%s' %s", keyword, what)
                   : AK_ERR_INVALID_ARGUMENT;
}

/* A number with an integral value: 5 and 5.0 both are, as in JavaScript. */
AK_PRIVATE int ak__json_is_integer(const ak_json *v) {
    double x;
    if (!ak_json_is(v, AK_JSON_NUMBER)) return 0;
    if (v->flags & AK_JSON_F_INT) return 1;
    x = ak__strtod(v->u.str, v->len);
    if (ak__isnan_or_inf(x)) return 0;
    if (x >= 9007199254740992.0 || x <= -9007199254740992.0) return 1; /* no fraction bits left */
    return (double)(int64_t)x == x;
}

AK_PRIVATE int ak__type_is(const ak_json *v, const ak_json *name, int *known) {
    static const char *const names[7] = {"null", "boolean", "number", "string", "array", "object", "integer"};
    int i;
    *known = 1;
    for (i = 0; i < 7; i++)
        if (ak__eqn(name->u.str, name->len, names[i]))
            return i == 6 ? ak__json_is_integer(v) : ak_json_typeof(v) == (ak_json_type)i;
    *known = 0;
    return 0;
}

/* "type": a name or an array of names. */
AK_PRIVATE ak_result ak__sv_type(ak__validator *sv, const ak_json *type, const ak_json *v, const ak__jpath *at) {
    const ak_json *t = ak_json_is(type, AK_JSON_ARRAY) ? type->u.first : type;
    char names[160];
    ak_buf b;
    int known;
    ak_buf_init_fixed(&b, names, sizeof names);
    for (; t; t = type->type == AK_JSON_ARRAY ? t->next : NULL) {
        if (!ak_json_is(t, AK_JSON_STRING)) return ak__bad_schema(sv, "type", "must be a name or an array of names");
        if (ak__type_is(v, t, &known)) return AK_OK;
        if (!known) return ak__bad_schema(sv, "type", "names an unknown type");
        if (b.len) ak_buf_puts(&b, " or ");
        ak_buf_append(&b, t->u.str, t->len);
    }
    return ak__sfail(sv, at, AK_ERR_SCHEMA, "must be %s", b.len ? names : "of no type (empty type list)");
}

AK_PRIVATE ak_result ak__sv_enum_const(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at) {
    const ak_json *e = ak_json_get(s, "enum"), *c = ak_json_get(s, "const"), *x;
    ak_result rc;
    if (c && !ak_json_equal(c, v)) {
        rc = ak__sfail(sv, at, AK_ERR_SCHEMA, "must be equal to ");
        ak__sfail_show(sv, c);
        return rc;
    }
    if (!e) return AK_OK;
    if (!ak_json_is(e, AK_JSON_ARRAY)) return ak__bad_schema(sv, "enum", "must be an array");
    for (x = e->u.first; x; x = x->next)
        if (ak_json_equal(x, v)) return AK_OK;
    rc = ak__sfail(sv, at, AK_ERR_SCHEMA, "must be one of ");
    ak__sfail_show(sv, e);
    return rc;
}

/* A count keyword (minLength, maxItems, ...): a non-negative integer; *n = -1 when absent. */
AK_PRIVATE ak_result ak__count_kw(ak__validator *sv, const ak_json *s, const char *keyword, int64_t *n) {
    const ak_json *k = ak_json_get(s, keyword);
    *n = -1;
    if (!k) return AK_OK;
    if (ak_json_int64(k, n) != AK_OK || *n < 0) return ak__bad_schema(sv, keyword, "must be a non-negative integer");
    return AK_OK;
}

/* Checks count against minKw/maxKw; `unit` names what is counted in messages. */
AK_PRIVATE ak_result ak__sv_counts(ak__validator *sv, const ak_json *s, const char *min_kw, const char *max_kw,
                                   size_t count, const char *unit, const ak__jpath *at) {
    int64_t lo, hi;
    ak_result rc;
    if ((rc = ak__count_kw(sv, s, min_kw, &lo)) != AK_OK || (rc = ak__count_kw(sv, s, max_kw, &hi)) != AK_OK)
        return rc;
    if (lo >= 0 && (uint64_t)count < (uint64_t)lo)
        return ak__sfail(sv, at, AK_ERR_SCHEMA, "must have at least %lld %s", (long long)lo, unit);
    if (hi >= 0 && (uint64_t)count > (uint64_t)hi)
        return ak__sfail(sv, at, AK_ERR_SCHEMA, "must have at most %lld %s", (long long)hi, unit);
    return AK_OK;
}

/* One bound: minimum/maximum (inclusive) or exclusiveMinimum/exclusiveMaximum, which are
   numbers in draft-07 and booleans modifying minimum/maximum in draft-04. */
AK_PRIVATE ak_result ak__sv_bound(ak__validator *sv, const ak_json *s, double x, int upper, const ak__jpath *at) {
    const ak_json *inc = ak_json_get(s, upper ? "maximum" : "minimum");
    const ak_json *exc = ak_json_get(s, upper ? "exclusiveMaximum" : "exclusiveMinimum");
    const char *kw = upper ? "maximum" : "minimum";
    double b;
    int exclusive = ak_json_bool(exc, 0);
    if (inc && ak_json_double(inc, &b) != AK_OK) return ak__bad_schema(sv, kw, "must be a number");
    if (inc && (upper ? (x > b || (exclusive && x == b)) : (x < b || (exclusive && x == b))))
        return ak__sfail(sv, at, AK_ERR_SCHEMA, "must be %s%s %.*s", upper ? "<" : ">", exclusive ? "" : "=",
                         (int)inc->len, inc->u.str);
    if (!exc || exc->type == AK_JSON_BOOL) return AK_OK;
    if (ak_json_double(exc, &b) != AK_OK) return ak__bad_schema(sv, upper ? "exclusiveMaximum" : "exclusiveMinimum", "must be a number");
    if (upper ? x >= b : x <= b)
        return ak__sfail(sv, at, AK_ERR_SCHEMA, "must be %s %.*s", upper ? "<" : ">", (int)exc->len, exc->u.str);
    return AK_OK;
}

AK_PRIVATE ak_result ak__sv_number(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at) {
    double x;
    ak_result rc;
    if (ak_json_double(v, &x) != AK_OK) return AK_OK;
    if ((rc = ak__sv_bound(sv, s, x, 0, at)) != AK_OK) return rc;
    return ak__sv_bound(sv, s, x, 1, at);
}

/* Code points of valid UTF-8: the bytes that are not continuation bytes. */
AK_PRIVATE size_t ak__utf8_count(const char *s, size_t len) {
    size_t i, n = 0;
    for (i = 0; i < len; i++) n += (AK__U8(s[i]) & 0xC0) != 0x80;
    return n;
}

AK_PRIVATE ak_result ak__sv_string(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at) {
    if (!ak_json_is(v, AK_JSON_STRING)) return AK_OK;
    return ak__sv_counts(sv, s, "minLength", "maxLength", ak__utf8_count(v->u.str, v->len), "characters", at);
}

AK_PRIVATE int ak__is_schema(const ak_json *s) { return ak_json_is(s, AK_JSON_OBJECT) || ak_json_is(s, AK_JSON_BOOL); }

/* "items" as one schema for every element, or (tuple form) one per position followed by
   "additionalItems" for the rest. */
AK_PRIVATE ak_result ak__sv_array(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at,
                                  size_t depth) {
    const ak_json *items = ak_json_get(s, "items"), *more = ak_json_get(s, "additionalItems");
    const ak_json *tuple = ak_json_is(items, AK_JSON_ARRAY) ? items->u.first : NULL, *e;
    ak__jpath here;
    ak_result rc;
    if (!ak_json_is(v, AK_JSON_ARRAY)) return AK_OK;
    if ((rc = ak__sv_counts(sv, s, "minItems", "maxItems", v->len, "items", at)) != AK_OK) return rc;
    if (items && !ak__is_schema(items) && !ak_json_is(items, AK_JSON_ARRAY))
        return ak__bad_schema(sv, "items", "must be a schema or an array of schemas");
    if (!ak_json_is(items, AK_JSON_ARRAY)) more = items; /* one schema for all */
    if (more && !ak__is_schema(more)) return ak__bad_schema(sv, "additionalItems", "must be a schema");
    here.up = at, here.key = NULL, here.key_len = 0, here.index = 0;
    for (e = v->u.first; e; e = e->next, here.index++) {
        const ak_json *es = tuple ? tuple : more;
        if (tuple) tuple = tuple->next;
        if (es && (rc = ak__sv(sv, es, e, &here, depth + 1)) != AK_OK) return rc;
    }
    return AK_OK;
}

AK_PRIVATE ak_result ak__sv_required(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at) {
    const ak_json *req = ak_json_get(s, "required"), *r;
    if (!req) return AK_OK;
    if (!ak_json_is(req, AK_JSON_ARRAY)) return ak__bad_schema(sv, "required", "must be an array of names");
    for (r = req->u.first; r; r = r->next) {
        if (!ak_json_is(r, AK_JSON_STRING)) return ak__bad_schema(sv, "required", "must be an array of names");
        if (!ak_json_getn(v, r->u.str, r->len))
            return ak__sfail(sv, at, AK_ERR_SCHEMA, "missing required property '%.*s'", (int)AK__MIN(r->len, 80),
                             r->u.str);
    }
    return AK_OK;
}

/* properties, additionalProperties, required, minProperties, maxProperties */
AK_PRIVATE ak_result ak__sv_object(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at,
                                   size_t depth) {
    const ak_json *props = ak_json_get(s, "properties"), *more = ak_json_get(s, "additionalProperties"), *m;
    ak__jpath here;
    ak_result rc;
    if (!ak_json_is(v, AK_JSON_OBJECT)) return AK_OK;
    if ((rc = ak__sv_required(sv, s, v, at)) != AK_OK ||
        (rc = ak__sv_counts(sv, s, "minProperties", "maxProperties", v->len, "properties", at)) != AK_OK)
        return rc;
    if (props && !ak_json_is(props, AK_JSON_OBJECT)) return ak__bad_schema(sv, "properties", "must be an object");
    if (more && !ak__is_schema(more)) return ak__bad_schema(sv, "additionalProperties", "must be a schema");
    here.up = at, here.index = 0;
    for (m = v->u.first; m; m = m->next) {
        const ak_json *ps;
        here.key = m->key ? m->key : "", here.key_len = m->key_len;
        ps = ak_json_getn(props, here.key, here.key_len);
        if (!ps && ak_json_is(more, AK_JSON_BOOL) && !ak_json_bool(more, 1))
            return ak__sfail(sv, at, AK_ERR_SCHEMA, "property '%.*s' is not allowed", (int)AK__MIN(m->key_len, 80),
                             here.key);
        if (!ps) ps = more;
        if (ps && !ak__is_schema(ps)) return ak__bad_schema(sv, "properties", "must hold schemas");
        if (ps && (rc = ak__sv(sv, ps, m, &here, depth + 1)) != AK_OK) return rc;
    }
    return AK_OK;
}

/* Runs one branch of anyOf/oneOf/not quietly: only whether it matched matters. A broken
   schema or a limit is not a mismatch: it is run again loudly so its message is reported. */
AK_PRIVATE ak_result ak__sv_try(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at,
                                size_t depth, int *matched) {
    ak_error *err = sv->err;
    ak_result rc;
    sv->err = NULL;
    rc = ak__sv(sv, s, v, at, depth + 1);
    sv->err = err;
    *matched = rc == AK_OK;
    if (rc == AK_OK || rc == AK_ERR_SCHEMA) return AK_OK;
    return err ? ak__sv(sv, s, v, at, depth + 1) : rc;
}

/* The array of schemas under keyword in *out (NULL when absent). */
AK_PRIVATE ak_result ak__schema_list(ak__validator *sv, const ak_json *s, const char *keyword, const ak_json **out) {
    *out = ak_json_get(s, keyword);
    if (*out && (!ak_json_is(*out, AK_JSON_ARRAY) || (*out)->len == 0))
        return ak__bad_schema(sv, keyword, "must be a non-empty array of schemas");
    return AK_OK;
}

AK_PRIVATE ak_result ak__sv_combinators(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at,
                                        size_t depth) {
    const ak_json *all, *any, *one, *x, *not_s = ak_json_get(s, "not");
    ak_result rc;
    int matched, count;
    if ((rc = ak__schema_list(sv, s, "allOf", &all)) != AK_OK || (rc = ak__schema_list(sv, s, "anyOf", &any)) != AK_OK ||
        (rc = ak__schema_list(sv, s, "oneOf", &one)) != AK_OK)
        return rc;
    for (x = ak_json_first(all); x; x = x->next)
        if ((rc = ak__sv(sv, x, v, at, depth + 1)) != AK_OK) return rc;
    for (x = ak_json_first(any), matched = 0; x && !matched; x = x->next)
        if ((rc = ak__sv_try(sv, x, v, at, depth, &matched)) != AK_OK) return rc;
    if (any && !matched) return ak__sfail(sv, at, AK_ERR_SCHEMA, "must match at least one schema in anyOf");
    for (x = ak_json_first(one), count = 0; x && count < 2; x = x->next) {
        if ((rc = ak__sv_try(sv, x, v, at, depth, &matched)) != AK_OK) return rc;
        count += matched;
    }
    if (one && count != 1)
        return ak__sfail(sv, at, AK_ERR_SCHEMA, "must match exactly one schema in oneOf (%s matched)",
                         count ? "more than one" : "none");
    if (!not_s) return AK_OK;
    if ((rc = ak__sv_try(sv, not_s, v, at, depth, &matched)) != AK_OK) return rc;
    return matched ? ak__sfail(sv, at, AK_ERR_SCHEMA, "must not match the schema in not") : AK_OK;
}

/* "$ref": only local references, "#" or a JSON Pointer fragment such as
   "#/definitions/Address" or "#/$defs/Address" (no percent-decoding). */
AK_PRIVATE ak_result ak__sv_ref(ak__validator *sv, const ak_json *ref, const ak_json *v, const ak__jpath *at,
                                size_t depth) {
    ak_json *target;
    if (!ak_json_is(ref, AK_JSON_STRING) || ref->len == 0 || ref->u.str[0] != '#' ||
        ak_json_pointer(sv->root, ref->u.str + 1, ref->len - 1, &target, NULL) != AK_OK || !ak__is_schema(target))
        return sv->err ? ak_error_set(sv->err, AK_ERR_INVALID_ARGUMENT, "invalid schema: cannot resolve $ref '%.*s'",
                                      (int)AK__MIN(ak_json_len(ref), 120), ak_json_str_or(ref, ""))
                       : AK_ERR_INVALID_ARGUMENT;
    return ak__sv(sv, target, v, at, depth + 1);
}

AK_PRIVATE ak_result ak__sv(ak__validator *sv, const ak_json *s, const ak_json *v, const ak__jpath *at,
                            size_t depth) {
    const ak_json *ref, *type;
    ak_result rc;
    if (depth > AK_JSON_SCHEMA_MAX_DEPTH)
        return ak__sfail(sv, at, AK_ERR_LIMIT, "schema applied more than %d levels deep (a $ref loop?)",
                         (int)AK_JSON_SCHEMA_MAX_DEPTH);
    if (++sv->steps > AK_JSON_SCHEMA_MAX_STEPS)
        return ak__sfail(sv, at, AK_ERR_LIMIT, "validation needs more than %lu steps", (unsigned long)AK_JSON_SCHEMA_MAX_STEPS);
    if (ak_json_is(s, AK_JSON_BOOL))
        return ak_json_bool(s, 0) ? AK_OK : ak__sfail(sv, at, AK_ERR_SCHEMA, "no value is allowed here");
    if (!ak_json_is(s, AK_JSON_OBJECT))
        return sv->err ? ak_error_set(sv->err, AK_ERR_INVALID_ARGUMENT, "invalid schema: not an object or boolean")
                       : AK_ERR_INVALID_ARGUMENT;
    if ((ref = ak_json_get(s, "$ref")) != NULL && (rc = ak__sv_ref(sv, ref, v, at, depth)) != AK_OK) return rc;
    if ((type = ak_json_get(s, "type")) != NULL && (rc = ak__sv_type(sv, type, v, at)) != AK_OK) return rc;
    if ((rc = ak__sv_enum_const(sv, s, v, at)) != AK_OK || (rc = ak__sv_number(sv, s, v, at)) != AK_OK ||
        (rc = ak__sv_string(sv, s, v, at)) != AK_OK || (rc = ak__sv_array(sv, s, v, at, depth)) != AK_OK ||
        (rc = ak__sv_object(sv, s, v, at, depth)) != AK_OK)
        return rc;
    return ak__sv_combinators(sv, s, v, at, depth);
}

AKDEF ak_result ak_json_schema_validate(const ak_json *schema, const ak_json *value, ak_error *err) {
    ak__validator sv;
    if (!schema) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "NULL schema");
    sv.root = schema;
    sv.err = err;
    sv.steps = 0;
    return ak__sv(&sv, schema, value, NULL, 0);
}
