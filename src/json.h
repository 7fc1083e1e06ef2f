/* >>json: RFC 8259 DOM (parse, write, build, access, compare), JSON Pointer, JSON Patch,
   diff, JSON Schema subset */

#ifdef __cplusplus
extern "C" {
#endif

/* Default nesting limit of the parser (arrays + objects). The parser does not recurse, so
   the limit guards memory and the recursive consumers (copy, equal, write), not the stack. */
#ifndef AK_JSON_MAX_DEPTH
#define AK_JSON_MAX_DEPTH 512
#endif

/* Size of a document's first arena block (later ones double). Smaller saves RAM on devices
   where most documents are small, at the cost of more allocations for big ones. */
#ifndef AK_JSON_DOC_BLOCK
#define AK_JSON_DOC_BLOCK 4096
#endif

typedef enum ak_json_type {
    AK_JSON_NULL = 0,
    AK_JSON_BOOL,
    AK_JSON_NUMBER,
    AK_JSON_STRING,
    AK_JSON_ARRAY,
    AK_JSON_OBJECT
} ak_json_type;

/* Node flags. */
#define AK_JSON_F_TRUE 0x01u   /* BOOL: the value is true */
#define AK_JSON_F_INT 0x02u    /* NUMBER: lexeme has no fraction and no exponent */

/* One value. Transparent, but prefer the accessors below. Containers hold their children in
   a NULL-terminated list (first child in u.first, then next); `len` counts them. Strings
   and keys are NUL-terminated (and may contain NUL: use len / key_len). A number keeps its
   lexeme exactly as parsed or built, so big integers and long fractions survive a round
   trip; convert on demand with ak_json_int64 / ak_json_double. */
typedef struct ak_json ak_json;
struct ak_json {
    uint8_t type;              /* ak_json_type */
    uint8_t flags;             /* AK_JSON_F_* */
    uint16_t reserved;
    uint32_t len;              /* string/number bytes, or child count */
    uint32_t key_len;
    const char *key;           /* member name inside an object, else NULL */
    union {
        const char *str;       /* STRING text, NUMBER lexeme */
        ak_json *first;        /* ARRAY / OBJECT first child */
    } u;
    ak_json *next;             /* next sibling */
};

/* A document owns the memory of its values (an arena): values are freed all at once with
   the document. Values of one document must not be linked into another: copy them with
   ak_json_copy. Builder calls that run out of memory return NULL and make `err` sticky, so a
   sequence of builds needs one check at the end. */
typedef struct ak_json_doc {
    ak_arena arena;
    ak_json *root;
    ak_result err;
} ak_json_doc;

AKDEF void ak_json_doc_init(ak_json_doc *d, const ak_allocator *alloc);
/* Document on caller memory: never allocates. See ak_json_max_memory. */
AKDEF ak_result ak_json_doc_init_fixed(ak_json_doc *d, void *mem, size_t size);
AKDEF void ak_json_doc_free(ak_json_doc *d);
AKDEF void ak_json_doc_reset(ak_json_doc *d); /* drop all values, keep memory for reuse */
/* Memory ak_json_parse needs at most for `len` bytes of valid JSON (for fixed documents). */
AKDEF size_t ak_json_max_memory(size_t len);

/* A reference-counted, immutable JSON value with its own document: how sessions, snapshots
   and stores share messages, custom state and artifacts without copying them. Create with
   ak_jref_new (copies v in one exact-size allocation), share with ak_jref_retain, drop with
   ak_jref_release (frees at zero). Never modify ->value. */
typedef struct ak_jref {
    uint32_t refs;
    const ak_allocator *alloc;
    ak_json_doc doc;
    ak_json *value;
} ak_jref;

AKDEF ak_jref *ak_jref_new(const ak_allocator *alloc, const ak_json *v);
AKDEF ak_jref *ak_jref_retain(ak_jref *r); /* NULL-safe */
AKDEF void ak_jref_release(ak_jref *r);   /* NULL-safe */

/* ---- parsing -------------------------------------------------------------------------- */

typedef struct ak_json_parse_opts {
    uint32_t max_depth;        /* 0 = AK_JSON_MAX_DEPTH */
    size_t max_bytes;          /* 0 = no limit; longer input fails with AK_ERR_LIMIT */
} ak_json_parse_opts;

/* Parses exactly one JSON text (RFC 8259, strict: no BOM, no comments, no trailing commas,
   no NaN, UTF-8 validated, lone surrogate escapes rejected) from src[0..len) into d and
   stores it in *out. The input is copied into the document, so src may be freed right
   after. On failure err->offset is the byte offset of the problem; d keeps its earlier
   values. opts may be NULL. */
AKDEF ak_result ak_json_parse_value(ak_json_doc *d, const char *src, size_t len,
                                    const ak_json_parse_opts *opts, ak_json **out, ak_error *err);
/* Same, storing the value as d->root. */
AKDEF ak_result ak_json_parse(ak_json_doc *d, const char *src, size_t len, ak_error *err);

/* ---- writing -------------------------------------------------------------------------- */

/* Appends compact JSON for v (NULL writes null) to out; returns out->err. Member order and
   number lexemes are kept; strings are escaped as JSON.stringify does. */
AKDEF ak_result ak_json_write(const ak_json *v, ak_buf *out);
/* Same with two-space indentation (for files people read). */
AKDEF ak_result ak_json_write_pretty(const ak_json *v, ak_buf *out);
/* Appends s as a quoted JSON string. */
AKDEF void ak_json_write_str(ak_buf *out, const char *s, size_t len);

/* ---- building (values live in d; NULL on out-of-memory, and d->err is set) ------------- */

AKDEF ak_json *ak_json_new_null(ak_json_doc *d);
AKDEF ak_json *ak_json_new_bool(ak_json_doc *d, int value);
AKDEF ak_json *ak_json_new_int(ak_json_doc *d, int64_t value);
/* NaN and infinities become null, as in JSON.stringify. */
AKDEF ak_json *ak_json_new_double(ak_json_doc *d, double value);
/* A number from its lexeme; NULL (and AK_ERR_JSON_SYNTAX in d->err) if it is not one. */
AKDEF ak_json *ak_json_new_number(ak_json_doc *d, const char *lexeme, size_t len);
/* Strings are copied; invalid UTF-8 is replaced by U+FFFD. */
AKDEF ak_json *ak_json_new_str(ak_json_doc *d, const char *s);
AKDEF ak_json *ak_json_new_strn(ak_json_doc *d, const char *s, size_t len);
AKDEF ak_json *ak_json_new_array(ak_json_doc *d);
AKDEF ak_json *ak_json_new_object(ak_json_doc *d);
/* Deep copy of v (from any document) into d. */
AKDEF ak_json *ak_json_copy(ak_json_doc *d, const ak_json *v);
/* Bytes of arena ak_json_copy(d, v) uses: a document whose first block has this size holds
   the copy in one allocation. */
AKDEF size_t ak_json_copy_size(const ak_json *v);

/* Container edits. A value may be in one container only; add a copy to put it in two.
   These return AK_ERR_INVALID_ARGUMENT for a NULL value (so a failed ak_json_new_* passed
   straight in is caught), AK_ERR_JSON_TYPE for the wrong container type. */
AKDEF ak_result ak_json_push(ak_json *arr, ak_json *v);                      /* append */
AKDEF ak_result ak_json_insert(ak_json *arr, size_t index, ak_json *v);      /* index <= len */
AKDEF ak_json *ak_json_remove_at(ak_json *arr, size_t index);                /* detached value */
AKDEF ak_result ak_json_replace_at(ak_json *arr, size_t index, ak_json *v);
/* Sets obj[key] = v: replaces the member with that key (the last one, if duplicated) in
   place, or appends a new member. The key is copied into d. */
AKDEF ak_result ak_json_set(ak_json_doc *d, ak_json *obj, const char *key, ak_json *v);
AKDEF ak_result ak_json_setn(ak_json_doc *d, ak_json *obj, const char *key, size_t key_len,
                             ak_json *v);
/* Appends a member without looking for an existing one (duplicates allowed). */
AKDEF ak_result ak_json_add(ak_json_doc *d, ak_json *obj, const char *key, size_t key_len,
                            ak_json *v);
/* Removes every member with that key; returns the last one removed (detached) or NULL. */
AKDEF ak_json *ak_json_remove(ak_json *obj, const char *key);
AKDEF ak_json *ak_json_removen(ak_json *obj, const char *key, size_t key_len);
/* Shorthands for ak_json_set(d, obj, key, ak_json_new_*(d, ...)). */
AKDEF ak_result ak_json_set_str(ak_json_doc *d, ak_json *obj, const char *key, const char *s);
AKDEF ak_result ak_json_set_int(ak_json_doc *d, ak_json *obj, const char *key, int64_t v);
AKDEF ak_result ak_json_set_bool(ak_json_doc *d, ak_json *obj, const char *key, int v);

/* ---- access (all accept NULL and then return NULL / 0 / the default) ------------------ */

AKDEF ak_json_type ak_json_typeof(const ak_json *v); /* NULL counts as AK_JSON_NULL */
AKDEF int ak_json_is(const ak_json *v, ak_json_type t);
AKDEF size_t ak_json_len(const ak_json *v);          /* string bytes or child count */
AKDEF ak_json *ak_json_first(const ak_json *v);      /* first child of a container */
/* Member lookup returns the last member with the key, as JavaScript's JSON.parse keeps it. */
AKDEF ak_json *ak_json_get(const ak_json *obj, const char *key);
AKDEF ak_json *ak_json_getn(const ak_json *obj, const char *key, size_t key_len);
AKDEF ak_json *ak_json_at(const ak_json *arr, size_t index);
/* Path lookup for the common case: "choices[0].delta.content", optionally starting with "$"
   or "$.". Keys may not contain '.' or '['; use JSON Pointer for those. */
AKDEF ak_json *ak_json_path(const ak_json *root, const char *path);
/* The string of a STRING value (NUL-terminated), else NULL / def. */
AKDEF const char *ak_json_str(const ak_json *v);
AKDEF const char *ak_json_str_or(const ak_json *v, const char *def);
/* Shorthand: ak_json_str(ak_json_get(obj, key)). */
AKDEF const char *ak_json_get_str(const ak_json *obj, const char *key);
AKDEF int ak_json_bool(const ak_json *v, int def);
/* Integer value: AK_ERR_JSON_TYPE unless v is a number with an exact int64 value. */
AKDEF ak_result ak_json_int64(const ak_json *v, int64_t *out);
AKDEF int64_t ak_json_int_or(const ak_json *v, int64_t def);
/* Nearest double; AK_ERR_JSON_TYPE if v is not a number. */
AKDEF ak_result ak_json_double(const ak_json *v, double *out);
AKDEF double ak_json_double_or(const ak_json *v, double def);
/* Deep equality as JavaScript deep-equal sees it: object member order does not matter,
   numbers compare by value (1 == 1.0), big integers by their digits. */
AKDEF int ak_json_equal(const ak_json *a, const ak_json *b);
/* 1 if v is NULL, JSON null, or an empty string, array or object. */
AKDEF int ak_json_is_empty(const ak_json *v);

/* ---- JSON Pointer (RFC 6901) ---------------------------------------------------------- */

/* Resolves ptr ("" is the root, "/a/0/b~1c" ...) against root. AK_ERR_JSON_POINTER when
   ptr is malformed or names nothing. */
AKDEF ak_result ak_json_pointer(const ak_json *root, const char *ptr, size_t len, ak_json **out,
                                ak_error *err);
/* Appends the pointer token for key (escaping ~ and /), with its leading slash. */
AKDEF void ak_json_pointer_append(ak_buf *ptr, const char *key, size_t key_len);

/* ---- JSON Patch (RFC 6902) ------------------------------------------------------------ */

/* Strict RFC 6902 (default) or the lenient rules of Genkit's client applyPatch: missing
   parents are created as objects, remove/replace of a missing member is a no-op, and the
   tokens __proto__, prototype and constructor are refused. */
#define AK_PATCH_LENIENT 0x01u

/* The most bytes (values, keys, text) the "copy" operations of one patch may add to a
   document; more is AK_ERR_LIMIT. Each copy can double a document. */
#ifndef AK_JSON_PATCH_MAX_COPY
#define AK_JSON_PATCH_MAX_COPY (16u * 1024u * 1024u)
#endif

/* Applies the operation array `patch` to *root (a value of d; may be NULL for an absent
   document) and stores the new root in *root. All or nothing: on failure *root is
   unchanged and err says which operation failed and why. Values from the patch are copied
   into d. */
AKDEF ak_result ak_json_patch(ak_json_doc *d, ak_json **root, const ak_json *patch,
                              unsigned flags, ak_error *err);

/* Builds in d the patch that turns `from` into `to`, using only add, remove and replace,
   the way Genkit streams custom state: objects member-wise (keys of from, then new keys of
   to), arrays index-wise over the common prefix then "add" at "/-" for extra elements or
   "remove" from the highest index down, anything else a "replace" (root pointer ""). NULL
   from/to mean absent. Equal inputs give an empty array. */
AKDEF ak_result ak_json_diff(ak_json_doc *d, const ak_json *from, const ak_json *to,
                             ak_json **patch);

/* ---- JSON Schema (the draft-07 subset tool and state schemas use) --------------------- */

/* Validates value against schema: type (name or array of names; "integer" included),
   properties, required, additionalProperties (bool or schema), items (also the tuple form
   with additionalItems), enum, const, anyOf, oneOf, allOf, not, minimum, maximum,
   exclusiveMinimum, exclusiveMaximum, minLength, maxLength (in code points), minItems,
   maxItems, minProperties, maxProperties, boolean schemas, and $ref to "#",
   "#/definitions/..." or "#/$defs/...". Unknown keywords are ignored. On failure returns
   AK_ERR_SCHEMA and err's message names the JSON Pointer of the first offending value and
   what was expected, e.g. "/city: must be string". AK_ERR_LIMIT: the schema nests deeper
   than AK_JSON_SCHEMA_MAX_DEPTH (a $ref loop) or needs more than AK_JSON_SCHEMA_MAX_STEPS
   subschema checks; AK_ERR_INVALID_ARGUMENT: the schema itself is malformed. */
AKDEF ak_result ak_json_schema_validate(const ak_json *schema, const ak_json *value, ak_error *err);

#ifdef __cplusplus
}
#endif
