/* >>json_patch: JSON Pointer (RFC 6901), JSON Patch apply (RFC 6902) and diff */

#include "json.h"
#include "json.c"

/* ---- pointer tokens ------------------------------------------------------------------- */

/* One reference token of a pointer, still escaped ("a~1b"). */
typedef struct ak__ptok {
    const char *s;
    size_t len;
} ak__ptok;

/* Checks the syntax of ptr[0..len): empty (the root) or '/'-separated tokens in which every
   '~' is followed by '0' or '1'. Counts the tokens into *count. */
AK_PRIVATE int ak__ptr_syntax_ok(const char *ptr, size_t len, size_t *count) {
    size_t i;
    *count = 0;
    if (len == 0) return 1;
    if (!ptr || ptr[0] != '/') return 0;
    for (i = 0; i < len; i++) {
        if (ptr[i] == '/') ++*count;
        else if (ptr[i] == '~' && (i + 1 >= len || (ptr[i + 1] != '0' && ptr[i + 1] != '1'))) return 0;
    }
    return 1;
}

/* Takes the next token of a syntax-checked pointer from *p (which sits on a '/').
   Returns 0 when there are no more. */
AK_PRIVATE int ak__ptr_next(const char **p, const char *end, ak__ptok *t) {
    const char *s;
    if (*p >= end) return 0;
    s = ++*p;
    while (*p < end && **p != '/') ++*p;
    t->s = s;
    t->len = (size_t)(*p - s);
    return 1;
}

/* The token, unescaped, equals key[0..key_len). */
AK_PRIVATE int ak__ptok_is(const ak__ptok *t, const char *key, size_t key_len) {
    size_t i, k = 0;
    for (i = 0; i < t->len; i++, k++) {
        char c = t->s[i];
        if (c == '~') c = t->s[++i] == '0' ? '~' : '/';
        if (k >= key_len || key[k] != c) return 0;
    }
    return k == key_len;
}

AK_PRIVATE int ak__ptok_is_dash(const ak__ptok *t) { return t->len == 1 && t->s[0] == '-'; }

/* Parses an array index token. RFC 6901 allows no leading zeros; Genkit's lenient client
   reads the token as a JavaScript number would, so "01" passes there. Indices too large for
   any array saturate (they are out of range either way). */
AK_PRIVATE int ak__ptok_index(const ak__ptok *t, int lenient, size_t *out) {
    uint64_t v = 0;
    size_t i;
    if (t->len == 0 || (!lenient && t->len > 1 && t->s[0] == '0')) return 0;
    for (i = 0; i < t->len; i++) {
        if (!ak__isdigit(t->s[i])) return 0;
        if (v <= 0xFFFFFFFFu) v = v * 10 + (uint64_t)(t->s[i] - '0');
    }
    *out = v > (uint64_t)(size_t)-1 ? (size_t)-1 : (size_t)v;
    return 1;
}

/* Copies the unescaped token into the arena (NUL-terminated). */
AK_PRIVATE char *ak__ptok_key(ak_arena *a, const ak__ptok *t, size_t *len) {
    char *k = (char *)ak_arena_alloc(a, t->len + 1);
    size_t i, n = 0;
    if (!k) return NULL;
    for (i = 0; i < t->len; i++) {
        char c = t->s[i];
        if (c == '~') c = t->s[++i] == '0' ? '~' : '/';
        k[n++] = c;
    }
    k[n] = 0;
    *len = n;
    return k;
}

/* The child of container c that t names (in an object the last member with that key, as
   ak_json_get sees it) and the sibling before it in *prev (NULL for the first child). */
AK_PRIVATE ak_json *ak__ptr_child(const ak_json *c, const ak__ptok *t, int lenient, ak_json **prev) {
    ak_json *m, *p = NULL, *found = NULL;
    size_t i;
    *prev = NULL;
    if (!c) return NULL;
    if (c->type == AK_JSON_OBJECT) {
        for (m = c->u.first; m; p = m, m = m->next)
            if (ak__ptok_is(t, m->key, m->key_len)) found = m, *prev = p;
        return found;
    }
    if (c->type != AK_JSON_ARRAY || !ak__ptok_index(t, lenient, &i) || i >= c->len) return NULL;
    for (m = c->u.first; i; i--) p = m, m = m->next;
    *prev = p;
    return m;
}

AKDEF ak_result ak_json_pointer(const ak_json *root, const char *ptr, size_t len, ak_json **out,
                                ak_error *err) {
    const char *p = ptr;
    const ak_json *v = root;
    ak_json *prev;
    ak__ptok t;
    size_t count;
    if (out) *out = NULL;
    if (!ak__ptr_syntax_ok(ptr, len, &count))
        return ak_error_set(err, AK_ERR_JSON_POINTER,
                            "invalid JSON Pointer '%.*s': it must be empty or start with '/', and "
                            "'~' must be followed by 0 or 1", (int)AK__MIN(len, 160), ptr ? ptr : "");
    while (v && ak__ptr_next(&p, ptr + len, &t)) v = ak__ptr_child(v, &t, 0, &prev);
    if (!v)
        return ak_error_set(err, AK_ERR_JSON_POINTER, "nothing at '%.*s'", (int)AK__MIN(len, 160), ptr);
    if (out) *out = AK__UNCONST(ak_json *, v);
    return AK_OK;
}

AKDEF void ak_json_pointer_append(ak_buf *ptr, const char *key, size_t key_len) {
    size_t i, run = 0;
    ak_buf_putc(ptr, '/');
    for (i = 0; i < key_len; i++) {
        if (key[i] != '~' && key[i] != '/') continue;
        ak_buf_append(ptr, key + run, i - run);
        ak_buf_append(ptr, key[i] == '~' ? "~0" : "~1", 2);
        run = i + 1;
    }
    ak_buf_append(ptr, key + run, key_len - run);
}

/* ---- patch: an undo journal makes a patch all or nothing ------------------------------- */

/* Strict mode is RFC 6902. AK_PATCH_LENIENT follows Genkit's client applyPatch
   (genkit-agents.md 5.5) where it is defined, and errs on the safe side where JavaScript
   would only produce something odd:
   - add creates missing, null or scalar intermediate values as {} (an absent or null
     document too); in arrays only existing elements are replaced, no holes are made;
   - add past the end of an array appends, as splice does; indices may have leading zeros;
   - remove and replace of something missing (member, element or parent) do nothing;
   - test of something missing fails as a mismatch;
   - the tokens __proto__, prototype and constructor are refused in path and from;
   - move and copy still need an existing from, and malformed operations are errors. */

/* Before a node is changed its fields are saved here; a failed patch writes them back
   newest first, which restores every container, sibling link and key exactly. The first
   chunk lives on the stack, so the usual small patch costs no memory; more come from the
   document's arena and are released with it. */
#define AK__UNDO_CHUNK 16

typedef struct ak__undo_entry {
    ak_json *node;
    ak_json saved;
} ak__undo_entry;

typedef struct ak__undo_chunk ak__undo_chunk;
struct ak__undo_chunk {
    ak__undo_chunk *prev;
    size_t n;
    ak__undo_entry e[AK__UNDO_CHUNK];
};

enum { AK__OP_ADD, AK__OP_REMOVE, AK__OP_REPLACE, AK__OP_MOVE, AK__OP_COPY, AK__OP_TEST };
static const char *const ak__op_names[6] = {"add", "remove", "replace", "move", "copy", "test"};

typedef struct ak__patcher {
    ak_json_doc *d;
    ak_json *root;        /* the document being patched; stored in the caller's *root on success */
    int lenient;
    ak__undo_chunk *undo; /* newest chunk */
    size_t index;         /* operation being applied, for messages */
    size_t copied;        /* bytes of values "copy" operations added so far */
    const char *op;       /* its name, or NULL before it is known */
    ak_error *err;
} ak__patcher;

/* One operation, checked: path and from are STRING values holding valid pointers. */
typedef struct ak__patch_op {
    int kind;
    const ak_json *path, *from, *value;
    size_t depth;         /* tokens in path */
} ak__patch_op;

/* Location a pointer names: the container (NULL for the root), the child there if any, and
   the sibling before it. */
typedef struct ak__loc {
    ak_json *parent, *target, *prev;
    ak__ptok last;
} ak__loc;

/* Pointer text for messages: "(root)" for the empty pointer, long ones cut. */
#define AK__PTR_SHOW(v) (v)->len ? "" : "(root)", (int)AK__MIN((v)->len, 160), (v)->u.str

AK_PRIVATE ak_result ak__pfail(ak__patcher *pp, ak_result code, const char *fmt, ...) {
    ak_buf b;
    va_list ap;
    if (!pp->err) return code;
    ak_error_set(pp->err, code, "");
    ak_buf_init_fixed(&b, pp->err->message, sizeof pp->err->message);
    if (pp->op) ak_buf_printf(&b, "operation %zu (%s): ", pp->index, pp->op);
    else ak_buf_printf(&b, "operation %zu: ", pp->index);
    va_start(ap, fmt);
    ak__vfmt(&b, fmt, ap);
    va_end(ap);
    return code;
}

AK_PRIVATE ak_result ak__patch_oom(ak__patcher *pp) {
    return ak__pfail(pp, AK_ERR_OUT_OF_MEMORY, "out of memory");
}

AK_PRIVATE ak_result ak__undo_save(ak__patcher *pp, ak_json *n) {
    ak__undo_chunk *c = pp->undo;
    if (c->n == AK__UNDO_CHUNK) {
        c = (ak__undo_chunk *)ak_arena_alloc(&pp->d->arena, sizeof *c);
        if (!c) return ak__patch_oom(pp);
        c->prev = pp->undo;
        c->n = 0;
        pp->undo = c;
    }
    c->e[c->n].node = n;
    c->e[c->n].saved = *n;
    c->n++;
    return AK_OK;
}

AK_PRIVATE void ak__undo_all(ak__patcher *pp) {
    ak__undo_chunk *c;
    for (c = pp->undo; c; c = c->prev)
        while (c->n) {
            c->n--;
            *c->e[c->n].node = c->e[c->n].saved;
        }
}

/* The slot holding the child after prev (the first child when prev is NULL). */
AK_PRIVATE ak_json **ak__slot(ak_json *c, ak_json *prev) { return prev ? &prev->next : &c->u.first; }

/* Unlinks the child after prev from container c. */
AK_PRIVATE ak_result ak__detach(ak__patcher *pp, ak_json *c, ak_json *prev, ak_json **out) {
    ak_json **slot = ak__slot(c, prev), *n = *slot;
    ak_result rc;
    if ((rc = ak__undo_save(pp, c)) != AK_OK || (prev && (rc = ak__undo_save(pp, prev)) != AK_OK) ||
        (rc = ak__undo_save(pp, n)) != AK_OK)
        return rc;
    *slot = n->next;
    n->next = NULL;
    c->len--;
    *out = n;
    return AK_OK;
}

/* Links v into container c after prev, as member `key` (NULL inside arrays). */
AK_PRIVATE ak_result ak__attach(ak__patcher *pp, ak_json *c, ak_json *prev, ak_json *v,
                                const char *key, size_t key_len) {
    ak_json **slot = ak__slot(c, prev);
    ak_result rc;
    if (c->len == 0xFFFFFFFFu) return ak__pfail(pp, AK_ERR_LIMIT, "container is full");
    if ((rc = ak__undo_save(pp, c)) != AK_OK || (prev && (rc = ak__undo_save(pp, prev)) != AK_OK) ||
        (rc = ak__undo_save(pp, v)) != AK_OK)
        return rc;
    v->key = key;
    v->key_len = (uint32_t)key_len;
    v->next = *slot;
    *slot = v;
    c->len++;
    return AK_OK;
}

AK_PRIVATE ak_json *ak__last_child(const ak_json *c) {
    ak_json *m = c->u.first;
    while (m && m->next) m = m->next;
    return m;
}

/* Swaps the child after prev for v, which takes over its key. */
AK_PRIVATE ak_result ak__swap(ak__patcher *pp, ak_json *c, ak_json *prev, ak_json *v) {
    ak_json *old;
    ak_result rc = ak__detach(pp, c, prev, &old);
    return rc != AK_OK ? rc : ak__attach(pp, c, prev, v, old->key, old->key_len);
}

AK_PRIVATE int ak__is_container_value(const ak_json *v) {
    return v && (v->type == AK_JSON_OBJECT || v->type == AK_JSON_ARRAY);
}

/* Nesting of v (containers on its deepest branch), counted no further than limit + 1, so
   the recursion is bounded even for a value built deeper than the parser allows. */
AK_PRIVATE size_t ak__nesting(const ak_json *v, size_t limit) {
    const ak_json *c;
    size_t best = 0;
    if (!ak__is_container_value(v)) return 0;
    if (limit == 0) return 1;
    for (c = v->u.first; c && best < limit; c = c->next) {
        size_t n = ak__nesting(c, limit - 1);
        if (n > best) best = n;
    }
    return best + 1;
}

/* A value put at a location `depth` tokens down must keep the document within
   AK_JSON_MAX_DEPTH: copy, move and add could otherwise nest a document in itself until
   the recursive consumers (copy, equal, write) ran out of stack. */
AK_PRIVATE ak_result ak__check_fit(ak__patcher *pp, const ak__patch_op *o, const ak_json *v) {
    if (o->depth > AK_JSON_MAX_DEPTH || ak__nesting(v, AK_JSON_MAX_DEPTH - o->depth) > AK_JSON_MAX_DEPTH - o->depth)
        return ak__pfail(pp, AK_ERR_JSON_DEPTH, "the result would nest deeper than %d levels",
                         (int)AK_JSON_MAX_DEPTH);
    return AK_OK;
}

/* Bytes v takes in a document (nodes, keys, text), counting no further than limit + 1. */
AK_PRIVATE size_t ak__footprint(const ak_json *v, size_t limit) {
    size_t n = sizeof *v + v->key_len + (ak__is_container_value(v) ? 0 : v->len);
    const ak_json *c;
    if (ak__is_container_value(v))
        for (c = v->u.first; c && n <= limit; c = c->next) n += ak__footprint(c, limit - n);
    return n;
}

/* Each "copy" can double a document, so twenty of them in a short patch would ask for
   gigabytes: together they may add AK_JSON_PATCH_MAX_COPY bytes. Other operations add
   only values the patch itself holds. */
AK_PRIVATE ak_result ak__check_copy_growth(ak__patcher *pp, const ak_json *v) {
    size_t room = AK_JSON_PATCH_MAX_COPY - pp->copied, n = ak__footprint(v, room);
    if (n > room)
        return ak__pfail(pp, AK_ERR_LIMIT, "copies would add more than %zu bytes (AK_JSON_PATCH_MAX_COPY)",
                         (size_t)AK_JSON_PATCH_MAX_COPY);
    pp->copied += n;
    return AK_OK;
}

/* Lenient mode creates a missing (or null, or scalar) intermediate value as {}: it replaces
   what is there, or becomes a new member of an object. */
AK_PRIVATE ak_result ak__create_parent(ak__patcher *pp, ak_json *c, const ak__ptok *t, ak_json *child,
                                       ak_json *prev, ak_json **out) {
    ak_json *o = ak_json_new_object(pp->d);
    char *key;
    size_t key_len;
    if (!o) return ak__patch_oom(pp);
    *out = o;
    if (child) return ak__swap(pp, c, prev, o);
    if (c->type != AK_JSON_OBJECT) return AK_ERR_NOT_FOUND; /* arrays do not grow holes */
    if (!(key = ak__ptok_key(&pp->d->arena, t, &key_len))) return ak__patch_oom(pp);
    return ak__attach(pp, c, ak__last_child(c), o, key, key_len);
}

/* Finds where ptr points. Every token but the last must name an existing container (or,
   with create, one is made); AK_ERR_NOT_FOUND otherwise, which the caller reports. */
AK_PRIVATE ak_result ak__locate(ak__patcher *pp, const ak_json *ptr, int create, ak__loc *loc) {
    const char *p = ptr->u.str, *end = p + ptr->len;
    ak_json *cur;
    ak__ptok t;
    ak_result rc;
    loc->parent = loc->prev = NULL;
    loc->target = pp->root;
    if (!ak__ptr_next(&p, end, &t)) return AK_OK; /* the root */
    if (create && (!pp->root || pp->root->type == AK_JSON_NULL) &&
        !(pp->root = ak_json_new_object(pp->d)))
        return ak__patch_oom(pp);
    cur = pp->root;
    for (;;) {
        ak__ptok next;
        const char *q = p;
        ak_json *prev, *child;
        if (!ak__is_container_value(cur)) return AK_ERR_NOT_FOUND;
        child = ak__ptr_child(cur, &t, pp->lenient, &prev);
        if (!ak__ptr_next(&q, end, &next)) {
            loc->parent = cur, loc->target = child, loc->prev = prev, loc->last = t;
            return AK_OK;
        }
        if (create && !ak__is_container_value(child) &&
            (rc = ak__create_parent(pp, cur, &t, child, prev, &child)) != AK_OK)
            return rc;
        cur = child, p = q, t = next;
    }
}

AK_PRIVATE ak_result ak__path_missing(ak__patcher *pp, const char *what, const ak_json *ptr) {
    return ak__pfail(pp, AK_ERR_JSON_PATCH, "%s %s%.*s does not exist", what, AK__PTR_SHOW(ptr));
}

/* add: v (detached, owned by the document) goes in at o->path. */
AK_PRIVATE ak_result ak__op_add(ak__patcher *pp, const ak__patch_op *o, ak_json *v) {
    ak__loc loc;
    ak_result rc = ak__locate(pp, o->path, pp->lenient, &loc);
    size_t index;
    if (rc == AK_ERR_NOT_FOUND) return ak__path_missing(pp, "path", o->path);
    if (rc != AK_OK) return rc;
    if (!loc.parent) {
        if ((rc = ak__undo_save(pp, v)) != AK_OK) return rc;
        v->key = NULL, v->key_len = 0, v->next = NULL;
        pp->root = v;
        return AK_OK;
    }
    if (loc.parent->type == AK_JSON_OBJECT) {
        char *key;
        size_t key_len;
        if (loc.target) return ak__swap(pp, loc.parent, loc.prev, v);
        if (!(key = ak__ptok_key(&pp->d->arena, &loc.last, &key_len))) return ak__patch_oom(pp);
        return ak__attach(pp, loc.parent, ak__last_child(loc.parent), v, key, key_len);
    }
    if (ak__ptok_is_dash(&loc.last)) return ak__attach(pp, loc.parent, ak__last_child(loc.parent), v, NULL, 0);
    if (!ak__ptok_index(&loc.last, pp->lenient, &index))
        return ak__pfail(pp, AK_ERR_JSON_PATCH, "path %.*s: '%.*s' is not an array index",
                         (int)AK__MIN(o->path->len, 160), o->path->u.str, (int)AK__MIN(loc.last.len, 40),
                         loc.last.s);
    if (index > loc.parent->len) {
        if (!pp->lenient)
            return ak__pfail(pp, AK_ERR_JSON_PATCH, "path %.*s: index %zu is beyond the end of an array of %u",
                             (int)AK__MIN(o->path->len, 160), o->path->u.str, index, (unsigned)loc.parent->len);
        index = loc.parent->len; /* as JavaScript's splice does */
    }
    if (index == 0) return ak__attach(pp, loc.parent, NULL, v, NULL, 0);
    return ak__attach(pp, loc.parent, ak_json_at(loc.parent, index - 1), v, NULL, 0);
}

/* remove: unlinks the value at ptr into *out (NULL when lenient and nothing was there).
   Removing an object member removes its duplicates too, so no older one reappears. */
AK_PRIVATE ak_result ak__op_remove(ak__patcher *pp, const ak_json *ptr, const char *what, ak_json **out) {
    ak__loc loc;
    ak_result rc = ak__locate(pp, ptr, 0, &loc);
    *out = NULL;
    if (rc != AK_OK && rc != AK_ERR_NOT_FOUND) return rc;
    if (rc == AK_ERR_NOT_FOUND || !loc.target) return pp->lenient ? AK_OK : ak__path_missing(pp, what, ptr);
    if (!loc.parent) {
        *out = pp->root;
        pp->root = NULL;
        return AK_OK;
    }
    if ((rc = ak__detach(pp, loc.parent, loc.prev, out)) != AK_OK) return rc;
    while (loc.parent->type == AK_JSON_OBJECT && (loc.target = ak__ptr_child(loc.parent, &loc.last, 0, &loc.prev))) {
        ak_json *dup;
        if ((rc = ak__detach(pp, loc.parent, loc.prev, &dup)) != AK_OK) return rc;
    }
    return AK_OK;
}

AK_PRIVATE ak_result ak__op_replace(ak__patcher *pp, const ak__patch_op *o, ak_json *v) {
    ak__loc loc;
    ak_result rc = ak__locate(pp, o->path, 0, &loc);
    if (rc != AK_OK && rc != AK_ERR_NOT_FOUND) return rc;
    if (rc == AK_OK && !loc.parent) {
        pp->root = v; /* the root can always be replaced, even when absent */
        return AK_OK;
    }
    if (rc == AK_ERR_NOT_FOUND || !loc.target)
        return pp->lenient ? AK_OK : ak__path_missing(pp, "path", o->path);
    return ak__swap(pp, loc.parent, loc.prev, v);
}

AK_PRIVATE ak_result ak__op_test(ak__patcher *pp, const ak__patch_op *o) {
    ak__loc loc;
    ak_result rc = ak__locate(pp, o->path, 0, &loc);
    if (rc != AK_OK && rc != AK_ERR_NOT_FOUND) return rc;
    if ((rc == AK_ERR_NOT_FOUND || !loc.target) && !pp->lenient)
        return ak__path_missing(pp, "path", o->path);
    /* Lenient mode compares like Genkit's client: a missing value never equals anything. */
    if (rc == AK_ERR_NOT_FOUND || !loc.target || !ak_json_equal(loc.target, o->value))
        return ak__pfail(pp, AK_ERR_JSON_TEST, "the value at %s%.*s differs", AK__PTR_SHOW(o->path));
    return AK_OK;
}

/* The value at o->from, which must exist in both modes (there is nothing to move or copy
   otherwise). */
AK_PRIVATE ak_result ak__source(ak__patcher *pp, const ak__patch_op *o, ak_json **out) {
    ak__loc loc;
    ak_result rc = ak__locate(pp, o->from, 0, &loc);
    if (rc != AK_OK && rc != AK_ERR_NOT_FOUND) return rc;
    if (rc == AK_ERR_NOT_FOUND || !loc.target) return ak__path_missing(pp, "from", o->from);
    *out = loc.target;
    return AK_OK;
}

/* path lies strictly inside from */
AK_PRIVATE int ak__ptr_inside(const ak_json *path, const ak_json *from) {
    return path->len > from->len && AK_MEMCMP(path->u.str, from->u.str, from->len) == 0 &&
           path->u.str[from->len] == '/';
}

AK_PRIVATE ak_result ak__op_move(ak__patcher *pp, const ak__patch_op *o) {
    ak_json *v;
    ak_result rc = ak__source(pp, o, &v);
    if (rc != AK_OK) return rc;
    if (o->path->len == o->from->len && AK_MEMCMP(o->path->u.str, o->from->u.str, o->path->len) == 0)
        return AK_OK;
    if (ak__ptr_inside(o->path, o->from))
        return ak__pfail(pp, AK_ERR_JSON_PATCH, "cannot move %s%.*s into its own child %.*s",
                         AK__PTR_SHOW(o->from), (int)AK__MIN(o->path->len, 160), o->path->u.str);
    if ((rc = ak__check_fit(pp, o, v)) != AK_OK) return rc;
    if ((rc = ak__op_remove(pp, o->from, "from", &v)) != AK_OK) return rc;
    return ak__op_add(pp, o, v);
}

/* A copy of v in the document, if it fits where o puts it and, for a "copy" (whose value
   comes from the document, not the patch), within what copies may add. The depth check
   goes first: it bounds the recursion of the growth check. */
AK_PRIVATE ak_result ak__copy_for(ak__patcher *pp, const ak__patch_op *o, const ak_json *v, ak_json **out) {
    ak_result rc = ak__check_fit(pp, o, v);
    if (rc == AK_OK && o->kind == AK__OP_COPY) rc = ak__check_copy_growth(pp, v);
    if (rc != AK_OK) return rc;
    if (!(*out = ak_json_copy(pp->d, v))) return ak__patch_oom(pp);
    return AK_OK;
}

/* Lenient mode refuses the tokens that reach JavaScript prototypes, as Genkit's client does. */
AK_PRIVATE const char *ak__forbidden_token(const ak_json *ptr) {
    static const char *const names[3] = {"__proto__", "prototype", "constructor"};
    const char *p = ptr->u.str, *end = p + ptr->len;
    ak__ptok t;
    int i;
    while (ak__ptr_next(&p, end, &t))
        for (i = 0; i < 3; i++)
            if (ak__ptok_is(&t, names[i], ak__strlen(names[i]))) return names[i];
    return NULL;
}

/* Checks one pointer member ("path" or "from") of an operation. */
AK_PRIVATE ak_result ak__op_pointer(ak__patcher *pp, const ak_json *op, const char *name, const ak_json **out,
                                    size_t *depth) {
    const ak_json *v = ak_json_get(op, name);
    const char *bad;
    if (!v) return ak__pfail(pp, AK_ERR_JSON_PATCH, "missing '%s'", name);
    if (v->type != AK_JSON_STRING) return ak__pfail(pp, AK_ERR_JSON_PATCH, "'%s' is not a string", name);
    if (!ak__ptr_syntax_ok(v->u.str, v->len, depth))
        return ak__pfail(pp, AK_ERR_JSON_PATCH, "'%s' is not a JSON Pointer: '%.*s'", name,
                         (int)AK__MIN(v->len, 160), v->u.str);
    if (pp->lenient && (bad = ak__forbidden_token(v)) != NULL)
        return ak__pfail(pp, AK_ERR_JSON_PATCH, "'%s' uses the forbidden token '%s'", name, bad);
    *out = v;
    return AK_OK;
}

/* Reads and checks one operation object. */
AK_PRIVATE ak_result ak__parse_op(ak__patcher *pp, const ak_json *op, ak__patch_op *o) {
    const ak_json *name = ak_json_get(op, "op");
    size_t from_depth;
    ak_result rc;
    int k;
    pp->op = NULL;
    if (!ak_json_is(op, AK_JSON_OBJECT)) return ak__pfail(pp, AK_ERR_JSON_PATCH, "not an object");
    if (!ak_json_is(name, AK_JSON_STRING)) return ak__pfail(pp, AK_ERR_JSON_PATCH, "missing 'op'");
    for (k = 0; k < 6 && !ak__eqn(name->u.str, name->len, ak__op_names[k]); k++) {}
    if (k == 6)
        return ak__pfail(pp, AK_ERR_JSON_PATCH, "unknown op '%.*s'", (int)AK__MIN(name->len, 40), name->u.str);
    pp->op = ak__op_names[k];
    o->kind = k;
    o->from = NULL;
    o->value = ak_json_get(op, "value");
    if ((rc = ak__op_pointer(pp, op, "path", &o->path, &o->depth)) != AK_OK) return rc;
    if ((k == AK__OP_MOVE || k == AK__OP_COPY) &&
        (rc = ak__op_pointer(pp, op, "from", &o->from, &from_depth)) != AK_OK)
        return rc;
    if ((k == AK__OP_ADD || k == AK__OP_REPLACE || k == AK__OP_TEST) && !o->value)
        return ak__pfail(pp, AK_ERR_JSON_PATCH, "missing 'value'");
    return AK_OK;
}

AK_PRIVATE ak_result ak__apply_op(ak__patcher *pp, const ak_json *op) {
    ak__patch_op o;
    ak_json *v;
    ak_result rc = ak__parse_op(pp, op, &o);
    if (rc != AK_OK) return rc;
    switch (o.kind) {
    case AK__OP_ADD:
        if ((rc = ak__copy_for(pp, &o, o.value, &v)) != AK_OK) return rc;
        return ak__op_add(pp, &o, v);
    case AK__OP_REMOVE: return ak__op_remove(pp, o.path, "path", &v);
    case AK__OP_REPLACE:
        if ((rc = ak__copy_for(pp, &o, o.value, &v)) != AK_OK) return rc;
        return ak__op_replace(pp, &o, v);
    case AK__OP_MOVE: return ak__op_move(pp, &o);
    case AK__OP_COPY:
        if ((rc = ak__source(pp, &o, &v)) != AK_OK || (rc = ak__copy_for(pp, &o, v, &v)) != AK_OK) return rc;
        return ak__op_add(pp, &o, v);
    default: return ak__op_test(pp, &o);
    }
}

AKDEF ak_result ak_json_patch(ak_json_doc *d, ak_json **root, const ak_json *patch,
                              unsigned flags, ak_error *err) {
    ak__patcher pp;
    ak__undo_chunk first;
    ak_arena_mark mark;
    ak_result rc = AK_OK, doc_err;
    const ak_json *op;
    if (!d || !root) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "NULL document or root");
    if (!ak_json_is(patch, AK_JSON_ARRAY))
        return ak_error_set(err, AK_ERR_JSON_PATCH, "a JSON Patch must be an array of operations");
    first.prev = NULL;
    first.n = 0;
    pp.d = d, pp.root = *root, pp.lenient = (flags & AK_PATCH_LENIENT) != 0;
    pp.undo = &first, pp.index = 0, pp.copied = 0, pp.op = NULL, pp.err = err;
    mark = ak_arena_save(&d->arena);
    doc_err = d->err;
    for (op = patch->u.first; op && rc == AK_OK; op = op->next, pp.index++) rc = ak__apply_op(&pp, op);
    if (rc != AK_OK) {
        /* Put every changed node back, then drop everything this patch allocated. */
        ak__undo_all(&pp);
        ak_arena_restore(&d->arena, mark);
        d->err = doc_err;
        return rc;
    }
    *root = pp.root;
    return AK_OK;
}

/* ---- diff ----------------------------------------------------------------------------- */

/* A location inside a value, as a chain through the C stack of a recursive walk (the diff
   here, the schema validator later). It is rendered as a pointer only when needed, so
   walking costs nothing. */
typedef struct ak__jpath ak__jpath;
struct ak__jpath {
    const ak__jpath *up;   /* NULL at the root */
    const char *key;       /* member name, or NULL for an array index */
    size_t key_len;
    size_t index;
};

/* Appends the pointer of p (nothing for the root). Recursion is as deep as the walk. */
AK_PRIVATE void ak__jpath_append(ak_buf *b, const ak__jpath *p) {
    if (!p) return;
    ak__jpath_append(b, p->up);
    if (p->key) {
        ak_json_pointer_append(b, p->key, p->key_len);
    } else {
        ak_buf_putc(b, '/');
        ak_buf_put_u64(b, p->index);
    }
}

typedef struct ak__differ {
    ak_json_doc *d;
    ak_json *ops;
} ak__differ;

AK_PRIVATE size_t ak__jpath_token_len(const ak__jpath *p) {
    size_t n = 1, i, v;
    if (!p->key) {
        for (v = p->index; v >= 10; v /= 10) n++;
        return n + 1;
    }
    for (i = 0; i < p->key_len; i++) n += (p->key[i] == '~' || p->key[i] == '/') ? 2 : 1;
    return n;
}

/* Writes p's token (with its '/') so that it ends at end; returns where it starts. */
AK_PRIVATE char *ak__jpath_token_put(const ak__jpath *p, char *end) {
    size_t i;
    if (!p->key) {
        size_t v = p->index;
        do *--end = (char)('0' + v % 10);
        while ((v /= 10) != 0);
    } else {
        for (i = p->key_len; i-- > 0;) {
            char c = p->key[i];
            if (c == '~' || c == '/') { /* "~0" and "~1", written backwards */
                *--end = c == '~' ? '0' : '1';
                c = '~';
            }
            *--end = c;
        }
    }
    *--end = '/';
    return end;
}

/* A string value holding the pointer of p ("" for the root), built from the leaf up. */
AK_PRIVATE ak_json *ak__jpath_string(ak__differ *df, const ak__jpath *p) {
    const ak__jpath *q;
    size_t len = 0;
    char *s, *end;
    ak_json *v;
    for (q = p; q; q = q->up)
        if (!ak__add_ok(len, ak__jpath_token_len(q), &len) || len > 0xFFFFFFFEu) return NULL;
    if (!(s = (char *)ak_arena_alloc(&df->d->arena, len + 1)) || !(v = ak__json_node(df->d, AK_JSON_STRING)))
        return NULL;
    end = s + len;
    *end = 0;
    for (q = p; q; q = q->up) end = ak__jpath_token_put(q, end);
    v->u.str = s;
    v->len = (uint32_t)len;
    return v;
}

/* Appends {"op":op,"path":<p>[,"value":<copy of value>]} to the patch. */
AK_PRIVATE ak_result ak__diff_emit(ak__differ *df, const char *op, const ak__jpath *p, const ak_json *value) {
    ak_json_doc *d = df->d;
    ak_json *o = ak_json_new_object(d), *path = ak__jpath_string(df, p);
    if (!o || !path || ak_json_add(d, o, "op", 2, ak_json_new_str(d, op)) != AK_OK ||
        ak_json_add(d, o, "path", 4, path) != AK_OK ||
        (value && ak_json_add(d, o, "value", 5, ak_json_copy(d, value)) != AK_OK) ||
        ak_json_push(df->ops, o) != AK_OK)
        return AK_ERR_OUT_OF_MEMORY;
    return AK_OK;
}

/* m is the first member of obj with its key (later duplicates are the same member as
   JavaScript sees it). */
AK_PRIVATE int ak__first_of_key(const ak_json *obj, const ak_json *m) {
    const ak_json *x;
    for (x = obj->u.first; x != m; x = x->next)
        if (ak__key_is(x, m->key, m->key_len)) return 0;
    return 1;
}

AK_PRIVATE ak_result ak__diff_at(ak__differ *df, const ak_json *from, const ak_json *to,
                                 const ak__jpath *p, size_t depth);

AK_PRIVATE ak_result ak__diff_objects(ak__differ *df, const ak_json *from, const ak_json *to,
                                      const ak__jpath *p, size_t depth) {
    const ak_json *m;
    ak__jpath child;
    ak_result rc = AK_OK;
    child.up = p, child.index = 0;
    for (m = from->u.first; m && rc == AK_OK; m = m->next) {
        const ak_json *t;
        if (!ak__first_of_key(from, m)) continue;
        child.key = m->key ? m->key : "", child.key_len = m->key_len;
        t = ak_json_getn(to, child.key, child.key_len);
        rc = t ? ak__diff_at(df, ak_json_getn(from, child.key, child.key_len), t, &child, depth + 1)
               : ak__diff_emit(df, "remove", &child, NULL);
    }
    for (m = to->u.first; m && rc == AK_OK; m = m->next) {
        if (!ak__first_of_key(to, m) || ak_json_getn(from, m->key ? m->key : "", m->key_len)) continue;
        child.key = m->key ? m->key : "", child.key_len = m->key_len;
        rc = ak__diff_emit(df, "add", &child, ak_json_getn(to, child.key, child.key_len));
    }
    return rc;
}

AK_PRIVATE ak_result ak__diff_arrays(ak__differ *df, const ak_json *from, const ak_json *to,
                                     const ak__jpath *p, size_t depth) {
    const ak_json *x = from->u.first, *y = to->u.first;
    ak__jpath child;
    ak_result rc = AK_OK;
    child.up = p, child.key = NULL, child.key_len = 0, child.index = 0;
    for (; x && y && rc == AK_OK; x = x->next, y = y->next, child.index++)
        rc = ak__diff_at(df, x, y, &child, depth + 1);
    if (rc != AK_OK) return rc;
    if (y) {
        child.key = "-", child.key_len = 1;
        for (; y && rc == AK_OK; y = y->next) rc = ak__diff_emit(df, "add", &child, y);
    }
    for (child.index = from->len; child.index > to->len && rc == AK_OK;) {
        child.index--;
        rc = ak__diff_emit(df, "remove", &child, NULL);
    }
    return rc;
}

/* Genkit's diff (reference §5.5). Deeper than AK_JSON_MAX_DEPTH it stops descending and
   replaces the whole subtree: still a correct patch, and the recursion stays bounded. */
AK_PRIVATE ak_result ak__diff_at(ak__differ *df, const ak_json *from, const ak_json *to,
                                 const ak__jpath *p, size_t depth) {
    ak_json_type ft = ak_json_typeof(from), tt = ak_json_typeof(to);
    if (depth < AK_JSON_MAX_DEPTH && from && to && ft == tt && ft == AK_JSON_OBJECT)
        return ak__diff_objects(df, from, to, p, depth);
    if (depth < AK_JSON_MAX_DEPTH && from && to && ft == tt && ft == AK_JSON_ARRAY)
        return ak__diff_arrays(df, from, to, p, depth);
    if ((!from && !to) || (from && to && ak_json_equal(from, to))) return AK_OK;
    if (!to) return ak__diff_emit(df, "remove", p, NULL);
    return ak__diff_emit(df, "replace", p, to);
}

AKDEF ak_result ak_json_diff(ak_json_doc *d, const ak_json *from, const ak_json *to,
                             ak_json **patch) {
    ak__differ df;
    ak_arena_mark mark;
    ak_result rc, doc_err;
    if (patch) *patch = NULL;
    if (!d || !patch) return AK_ERR_INVALID_ARGUMENT;
    mark = ak_arena_save(&d->arena);
    doc_err = d->err;
    df.d = d;
    rc = (df.ops = ak_json_new_array(d)) ? ak__diff_at(&df, from, to, NULL, 0) : AK_ERR_OUT_OF_MEMORY;
    if (rc != AK_OK) {
        ak_arena_restore(&d->arena, mark); /* nothing of a failed diff stays */
        d->err = doc_err;
        return rc;
    }
    *patch = df.ops;
    return AK_OK;
}
