/* >>json implementation: document, parser, writer, builder, accessors, equality */

#include "json.h"
#include "context.c"

/* ---- document ------------------------------------------------------------------------- */

AKDEF void ak_json_doc_init(ak_json_doc *d, const ak_allocator *alloc) {
    ak_arena_init(&d->arena, alloc, AK_JSON_DOC_BLOCK);
    d->root = NULL;
    d->err = AK_OK;
}

AKDEF ak_result ak_json_doc_init_fixed(ak_json_doc *d, void *mem, size_t size) {
    d->root = NULL;
    d->err = ak_arena_init_fixed(&d->arena, mem, size);
    return d->err;
}

AKDEF void ak_json_doc_free(ak_json_doc *d) {
    ak_arena_free(&d->arena);
    d->root = NULL;
    d->err = AK_OK;
}

AKDEF void ak_json_doc_reset(ak_json_doc *d) {
    ak_arena_reset(&d->arena);
    d->root = NULL;
    d->err = AK_OK;
}

AKDEF size_t ak_json_max_memory(size_t len) {
    /* Valid JSON has at most one value per two input bytes ("[0,0,0...]"). Each value is a
       node plus, for strings and numbers, its text with a NUL, rounded up to 8 bytes; text
       never exceeds the input it came from. Plus a block header and alignment. */
    size_t nodes = len / 2 + 1;
    return len + 64 + nodes * (AK__ALIGN_UP(sizeof(ak_json)) + 8);
}

/* A fresh value of type t: no key, no children, no sibling. */
AK_PRIVATE ak_json *ak__json_blank(ak_json *v, ak_json_type t) {
    v->type = (uint8_t)t;
    v->flags = 0;
    v->reserved = 0;
    v->len = 0;
    v->key_len = 0;
    v->key = NULL;
    v->u.first = NULL;
    v->next = NULL;
    return v;
}

AK_PRIVATE ak_json *ak__json_node(ak_json_doc *d, ak_json_type t) {
    ak_json *v = (ak_json *)ak_arena_alloc(&d->arena, sizeof(ak_json));
    if (!v) {
        d->err = AK_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    return ak__json_blank(v, t);
}

/* ---- parser --------------------------------------------------------------------------- */

/* Character classes, computed (a 256-byte table costs more flash than the compares): JSON
   whitespace, and the bytes that need attention inside a string (quote, backslash, control
   character or non-ASCII). */
AK_PRIVATE int ak__jws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
AK_PRIVATE int ak__jstr_byte(unsigned char c) { return c < 0x20 || c >= 0x80 || c == '"' || c == '\\'; }
#define AK__JWS(c) ak__jws(AK__U8(c))
#define AK__JSTR(c) ak__jstr_byte(AK__U8(c))

/* A machine word of bytes at a time: eight on 64-bit hosts, four on 32-bit MCUs, where
   64-bit arithmetic takes register pairs and much more code (byte order does not matter:
   only "any byte" is asked). */
typedef size_t ak__word;
#define AK__WORD sizeof(ak__word)
#define AK__JONES ((ak__word)-1 / 0xFF)
#define AK__JHIGHS (AK__JONES * 0x80)
#define AK__JHAS_BELOW(w, n) (((w) - AK__JONES * (n)) & ~(w))

/* How many bytes precede the first flagged one (its high bit set) in a mask from the tests
   below: the lowest flag is always exact, as borrows only run upwards. Elsewhere (other
   compilers, big-endian, or 32-bit targets, where the builtin is a libgcc call) it is 0 and
   the byte loop that follows finds the byte. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && __SIZEOF_POINTER__ == 8
#define AK__FIRST_FLAGGED(m) ((size_t)__builtin_ctzll(m) >> 3)
#else
#define AK__FIRST_FLAGGED(m) ((size_t)0)
#endif

AK_PRIVATE ak__word ak__loadw(const char *p) {
    ak__word w;
    AK_MEMCPY(&w, p, AK__WORD);
    return w;
}

/* Nonzero when a byte of w is '"', '\\', a control character or non-ASCII. */
AK_PRIVATE ak__word ak__jstr_special(ak__word w) {
    ak__word q = w ^ (AK__JONES * '"'), b = w ^ (AK__JONES * '\\');
    return (AK__JHAS_BELOW(q, 1) | AK__JHAS_BELOW(b, 1) | AK__JHAS_BELOW(w, 0x20) | w) & AK__JHIGHS;
}

/* The parser reads the caller's input in place and copies only the text of strings, keys
   and numbers into the document, so a document holds no whitespace or punctuation. Values
   and text are bumped from the arena's current block without a call per value; `cur` and
   `avail` mirror that block and are written back by ak__jsync. */
typedef struct ak__jparser {
    const char *p, *end, *base; /* base: start of the input, for error offsets */
    ak_json_doc *d;
    ak_error *err;
    unsigned char *cur;
    size_t avail;
    size_t block_cap;           /* largest block the parse asks for (bounds the slack) */
} ak__jparser;

AK_PRIVATE void ak__jload(ak__jparser *jp) {
    ak_arena_block *b = jp->d->arena.head;
    jp->cur = b ? AK__BLOCK_DATA(b) + b->used : NULL;
    jp->avail = b ? b->size - b->used : 0;
}

AK_PRIVATE void ak__jsync(ak__jparser *jp) {
    ak_arena_block *b = jp->d->arena.head;
    if (b && jp->cur) {
        size_t used = (size_t)(jp->cur - AK__BLOCK_DATA(b));
        jp->d->arena.used_bytes += used - b->used;
        b->used = used;
    }
}

/* The block is full: let the arena add one. Blocks double as usual, but the parse lets them
   grow past neither block_cap nor the size the document already asked for, so the unused
   end of the last one stays small next to the document. */
AK__NOINLINE AK_PRIVATE void *ak__jalloc_slow(ak__jparser *jp, size_t n) {
    ak_arena *a = &jp->d->arena;
    size_t before = a->next_size;
    void *p;
    ak__jsync(jp);
    p = ak_arena_alloc(a, n);
    if (a->next_size > before && a->next_size > jp->block_cap) a->next_size = AK__MAX(before, jp->block_cap);
    ak__jload(jp);
    return p;
}

/* n bytes, 8-byte aligned; n is a multiple of 8. */
AK_PRIVATE void *ak__jalloc(ak__jparser *jp, size_t n) {
    void *p;
    if (n > jp->avail) return ak__jalloc_slow(jp, n);
    p = jp->cur;
    jp->cur += n;
    jp->avail -= n;
    return p;
}

/* Copies the n bytes of text at src into dst, whose room is n + 1 rounded up to 8. Short text
   goes a word at a time instead of through a memcpy call; those reads may pass the text,
   never the input. */
AK_PRIVATE void ak__jcopy(const ak__jparser *jp, char *dst, const char *src, size_t n) {
    size_t i;
    if (n > 64 || (size_t)(jp->end - src) < AK__ALIGN_UP(n)) {
        AK_MEMCPY(dst, src, n);
        return;
    }
    for (i = 0; i < n; i += AK__WORD) {
        ak__word w = ak__loadw(src + i);
        AK_MEMCPY(dst + i, &w, AK__WORD);
    }
}

AK_PRIVATE ak_result ak__jfail(ak__jparser *jp, ak_result code, const char *p, const char *what) {
    if (jp->err) {
        ak_error_set(jp->err, code, "%s at offset %zu", what, (size_t)(p - jp->base));
        jp->err->offset = (size_t)(p - jp->base);
    }
    return code;
}

AK_PRIVATE ak_json *ak__jnode(ak__jparser *jp) {
    ak_json *v = (ak_json *)ak__jalloc(jp, AK__ALIGN_UP(sizeof(ak_json)));
    return v ? ak__json_blank(v, AK_JSON_NULL) : NULL;
}

AK_PRIVATE void ak__jskip_ws_run(ak__jparser *jp) {
    const char *p = jp->p, *end = jp->end;
    while (p < end && AK__JWS(*p)) {
        p++;
        /* Indentation comes in runs of spaces. */
        while ((size_t)(end - p) >= AK__WORD && ak__loadw(p) == AK__JONES * ' ') p += AK__WORD;
    }
    jp->p = p;
}

/* Compact JSON has no whitespace between tokens: that case costs no call. */
#define AK__JSKIP_WS(jp) \
    do { \
        if ((jp)->p < (jp)->end && AK__JWS(*(jp)->p)) ak__jskip_ws_run(jp); \
    } while (0)

AK_PRIVATE int ak__hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* Decodes the escape at *pp (just after the backslash) into w. Advances *pp past the escape
   and returns the bytes written, or 0 on error (*rc says which). */
AK_PRIVATE size_t ak__jescape(const char **pp, const char *end, char *w, ak_result *rc) {
    const char *p = *pp;
    uint32_t cp, lo;
    *rc = AK_ERR_JSON_SYNTAX;
    if (p >= end) return 0;
    switch (*p) {
    case '"': *w = '"'; break;
    case '\\': *w = '\\'; break;
    case '/': *w = '/'; break;
    case 'b': *w = '\b'; break;
    case 'f': *w = '\f'; break;
    case 'n': *w = '\n'; break;
    case 'r': *w = '\r'; break;
    case 't': *w = '\t'; break;
    case 'u':
        if (end - p < 5 || !ak__hex4(p + 1, &cp)) return 0;
        p += 5;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            *rc = AK_ERR_JSON_UTF8; /* a low surrogate with no high one before it */
            return 0;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !ak__hex4(p + 2, &lo) || lo < 0xDC00 ||
                lo > 0xDFFF) {
                *rc = AK_ERR_JSON_UTF8;
                return 0;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        *pp = p;
        return ak_utf8_encode(cp, w);
    default: return 0;
    }
    *pp = p + 1;
    return 1;
}

/* Scans from p to the closing quote of a string that has escapes; p itself ends there.
   Returns NULL if the input ends first. */
AK_PRIVATE const char *ak__jstring_end(const char *p, const char *end) {
    for (; p < end && *p != '"'; p++)
        if (*p == '\\' && ++p == end) break;
    return p < end ? p : NULL;
}

/* Unescapes raw[0..n) (which needs escapes) into w; returns the bytes written. */
AK_PRIVATE ak_result ak__junescape(ak__jparser *jp, const char *raw, const char *end, char *w, size_t *out) {
    char *start = w;
    ak_result rc;
    while (raw < end) {
        char c = *raw;
        if (c == '\\') {
            const char *esc = raw++;
            size_t n = ak__jescape(&raw, end, w, &rc);
            if (!n)
                return ak__jfail(jp, rc, esc, rc == AK_ERR_JSON_UTF8 ? "lone surrogate escape" : "invalid escape");
            w += n;
        } else if (AK__U8(c) < 0x20) {
            return ak__jfail(jp, AK_ERR_JSON_SYNTAX, raw, "control character in string");
        } else if (AK__U8(c) >= 0x80) {
            uint32_t cp;
            size_t n = ak_utf8_decode(raw, (size_t)(end - raw), &cp);
            if (!n) return ak__jfail(jp, AK_ERR_JSON_UTF8, raw, "invalid UTF-8 in string");
            AK_MEMCPY(w, raw, n);
            w += n, raw += n;
        } else {
            *w++ = c, raw++;
        }
    }
    *out = (size_t)(w - start);
    return AK_OK;
}

/* Copies the string whose opening quote is at jp->p into the document, unescaped and
   NUL-terminated. */
AK_PRIVATE ak_result ak__jstring(ak__jparser *jp, const char **out, uint32_t *out_len) {
    const char *start = jp->p + 1, *p = start, *end = jp->end, *close;
    size_t n = 0, room;
    char *text;
    ak_result rc;
    /* Fast path: no escapes, so the text is copied as it is. */
    for (;;) {
        while ((size_t)(end - p) >= AK__WORD) {
            ak__word special = ak__jstr_special(ak__loadw(p));
            if (special) {
                p += AK__FIRST_FLAGGED(special);
                break;
            }
            p += AK__WORD;
        }
        while (p < end && !AK__JSTR(*p)) p++;
        if (p >= end) return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "unterminated string");
        if (AK__U8(*p) >= 0x80) {
            uint32_t cp;
            size_t k = ak_utf8_decode(p, (size_t)(end - p), &cp);
            if (!k) return ak__jfail(jp, AK_ERR_JSON_UTF8, p, "invalid UTF-8 in string");
            p += k;
            continue;
        }
        break;
    }
    if (*p == '"') {
        close = p, n = (size_t)(p - start);
        if (n > 0xFFFFFFFFu) return ak__jfail(jp, AK_ERR_LIMIT, jp->p, "string longer than 4 GiB");
        if (!(text = (char *)ak__jalloc(jp, AK__ALIGN_UP(n + 1))))
            return ak__jfail(jp, AK_ERR_OUT_OF_MEMORY, jp->p, "out of memory");
        ak__jcopy(jp, text, start, n);
    } else if (AK__U8(*p) < 0x20) {
        return ak__jfail(jp, AK_ERR_JSON_SYNTAX, p, "control character in string");
    } else {
        /* Escapes: room for the raw text, then what the unescaped text leaves is given back. */
        if (!(close = ak__jstring_end(p, end))) return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "unterminated string");
        room = AK__ALIGN_UP((size_t)(close - start) + 1);
        if (!(text = (char *)ak__jalloc(jp, room))) return ak__jfail(jp, AK_ERR_OUT_OF_MEMORY, jp->p, "out of memory");
        AK_MEMCPY(text, start, (size_t)(p - start));
        if ((rc = ak__junescape(jp, p, close, text + (p - start), &n)) != AK_OK) return rc;
        n += (size_t)(p - start);
        if (n > 0xFFFFFFFFu) return ak__jfail(jp, AK_ERR_LIMIT, jp->p, "string longer than 4 GiB");
        jp->cur -= room - AK__ALIGN_UP(n + 1);
        jp->avail += room - AK__ALIGN_UP(n + 1);
    }
    text[n] = 0;
    *out = text;
    *out_len = (uint32_t)n;
    jp->p = close + 1;
    return AK_OK;
}

AK_PRIVATE int ak__isdigit(char c) { return c >= '0' && c <= '9'; }

/* Scans the number lexeme at p: returns its end, or NULL if there is none. *flags gets
   AK_JSON_F_INT for a plain integer. */
AK_PRIVATE const char *ak__jnumber_scan(const char *p, const char *end, uint8_t *flags) {
    *flags = AK_JSON_F_INT;
    if (p < end && *p == '-') p++;
    if (p >= end || !ak__isdigit(*p)) return NULL;
    if (*p == '0') p++;
    else while (p < end && ak__isdigit(*p)) p++;
    if (p < end && *p == '.') {
        p++, *flags = 0;
        if (p >= end || !ak__isdigit(*p)) return NULL;
        while (p < end && ak__isdigit(*p)) p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++, *flags = 0;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !ak__isdigit(*p)) return NULL;
        while (p < end && ak__isdigit(*p)) p++;
    }
    return p;
}

/* Validates the number at jp->p and copies its lexeme into the document. */
AK_PRIVATE ak_result ak__jnumber(ak__jparser *jp, ak_json *v) {
    const char *s = jp->p, *e = ak__jnumber_scan(s, jp->end, &v->flags);
    char *text;
    size_t n;
    if (!e) return ak__jfail(jp, AK_ERR_JSON_SYNTAX, s, "invalid number");
    n = (size_t)(e - s);
    if (n > 0xFFFFFFFFu) return ak__jfail(jp, AK_ERR_LIMIT, s, "number too long");
    if (!(text = (char *)ak__jalloc(jp, AK__ALIGN_UP(n + 1)))) return ak__jfail(jp, AK_ERR_OUT_OF_MEMORY, s, "out of memory");
    ak__jcopy(jp, text, s, n);
    text[n] = 0;
    v->u.str = text;
    v->len = (uint32_t)n;
    jp->p = e;
    return AK_OK;
}

AK_PRIVATE ak_result ak__jliteral(ak__jparser *jp, ak_json *v) {
    static const char *const words[3] = {"null", "true", "false"};
    size_t i, n, avail = (size_t)(jp->end - jp->p);
    for (i = 0; i < 3; i++) {
        n = i == 2 ? 5 : 4;
        if (avail >= n && AK_MEMCMP(jp->p, words[i], n) == 0) {
            v->type = (uint8_t)(i == 0 ? AK_JSON_NULL : AK_JSON_BOOL);
            v->flags = (uint8_t)(i == 1 ? AK_JSON_F_TRUE : 0);
            jp->p += n;
            return AK_OK;
        }
    }
    return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "unexpected character");
}

/* Parses the member key at jp->p (a string), then the ':' after it. */
AK_PRIVATE ak_result ak__jkey(ak__jparser *jp, const char **key, uint32_t *key_len) {
    ak_result rc;
    if (jp->p >= jp->end || *jp->p != '"')
        return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "expected a string key");
    if ((rc = ak__jstring(jp, key, key_len)) != AK_OK) return rc;
    AK__JSKIP_WS(jp);
    if (jp->p >= jp->end || *jp->p != ':')
        return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "expected ':' after key");
    jp->p++;
    AK__JSKIP_WS(jp);
    return AK_OK;
}

/* The parser does not recurse. While a container is open, its `next` field points to its
   parent container and its children form a ring through `next` with u.first pointing at
   the last one, so appending costs no walk; closing it opens the ring and links the
   container into its parent. */
AK_PRIVATE void ak__jappend(ak_json *parent, ak_json *v) {
    ak_json *last = parent->u.first;
    v->next = last ? last->next : v;
    if (last) last->next = v;
    parent->u.first = v;
}

AK_PRIVATE ak_result ak__jparse(ak__jparser *jp, uint32_t max_depth, ak_json **out) {
    ak_json *parent = NULL, *v;
    const char *key = NULL;
    uint32_t key_len = 0, depth = 0;
    ak_result rc;
    AK__JSKIP_WS(jp);
    for (;;) {
        /* a value starts at jp->p */
        if (jp->p >= jp->end) return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "unexpected end of input");
        if (!(v = ak__jnode(jp))) return ak__jfail(jp, AK_ERR_OUT_OF_MEMORY, jp->p, "out of memory");
        v->key = key, v->key_len = key_len;
        switch (*jp->p) {
        case '{': case '[':
            if (++depth > max_depth) return ak__jfail(jp, AK_ERR_JSON_DEPTH, jp->p, "nesting too deep");
            v->type = (uint8_t)(*jp->p == '{' ? AK_JSON_OBJECT : AK_JSON_ARRAY);
            v->next = parent;
            parent = v;
            jp->p++;
            AK__JSKIP_WS(jp);
            if (jp->p < jp->end && *jp->p == (v->type == AK_JSON_OBJECT ? '}' : ']')) {
                jp->p++;
                goto close; /* empty container */
            }
            key = NULL, key_len = 0;
            if (v->type == AK_JSON_OBJECT && (rc = ak__jkey(jp, &key, &key_len)) != AK_OK) return rc;
            continue;
        case '"':
            v->type = AK_JSON_STRING;
            if ((rc = ak__jstring(jp, &v->u.str, &v->len)) != AK_OK) return rc;
            break;
        case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6':
        case '7': case '8': case '9':
            v->type = AK_JSON_NUMBER;
            if ((rc = ak__jnumber(jp, v)) != AK_OK) return rc;
            break;
        default:
            if ((rc = ak__jliteral(jp, v)) != AK_OK) return rc;
            break;
        }
        /* v is complete: attach it, then look for ',' or the end of its container */
        for (;;) {
            if (!parent) {
                *out = v;
                return AK_OK;
            }
            ak__jappend(parent, v);
            if (++parent->len == 0) return ak__jfail(jp, AK_ERR_LIMIT, jp->p, "too many members");
            AK__JSKIP_WS(jp);
            if (jp->p >= jp->end) return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p, "unexpected end of input");
            if (*jp->p == ',') {
                jp->p++;
                AK__JSKIP_WS(jp);
                key = NULL, key_len = 0;
                if (parent->type == AK_JSON_OBJECT && (rc = ak__jkey(jp, &key, &key_len)) != AK_OK)
                    return rc;
                break; /* next value */
            }
            if (*jp->p != (parent->type == AK_JSON_OBJECT ? '}' : ']'))
                return ak__jfail(jp, AK_ERR_JSON_SYNTAX, jp->p,
                                 parent->type == AK_JSON_OBJECT ? "expected ',' or '}'" : "expected ',' or ']'");
            jp->p++;
            v = parent;
        close:
            if (v->u.first) { /* open the ring: the last child's next is the first */
                ak_json *last = v->u.first;
                v->u.first = last->next;
                last->next = NULL;
            }
            parent = v->next;
            v->next = NULL;
            depth--;
        }
    }
}

AKDEF ak_result ak_json_parse_value(ak_json_doc *d, const char *src, size_t len,
                                    const ak_json_parse_opts *opts, ak_json **out, ak_error *err) {
    ak__jparser jp;
    ak_arena_mark mark = ak_arena_save(&d->arena);
    ak_json *v = NULL;
    uint32_t max_depth = opts && opts->max_depth ? opts->max_depth : AK_JSON_MAX_DEPTH;
    ak_result rc;
    if (out) *out = NULL;
    if (!src && len) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "NULL input");
    if (opts && opts->max_bytes && len > opts->max_bytes)
        return ak_error_set(err, AK_ERR_LIMIT, "JSON text of %zu bytes exceeds the limit of %zu",
                            len, opts->max_bytes);
    jp.p = jp.base = src ? src : "";
    jp.end = jp.p + len;
    jp.d = d;
    jp.err = err;
    /* Blocks no larger than the input (AK_JSON_DOC_BLOCK to 1 MiB): few allocations, and what
       the last one leaves unused stays small next to the document. */
    jp.block_cap = AK__MIN(AK__MAX(len, (size_t)AK_JSON_DOC_BLOCK), (size_t)1 << 20);
    ak__jload(&jp);
    rc = ak__jparse(&jp, max_depth, &v);
    if (rc == AK_OK) {
        AK__JSKIP_WS(&jp);
        if (jp.p != jp.end) rc = ak__jfail(&jp, AK_ERR_JSON_SYNTAX, jp.p, "unexpected data after the JSON value");
    }
    ak__jsync(&jp);
    if (rc != AK_OK) {
        ak_arena_restore(&d->arena, mark); /* nothing of a failed parse stays */
        return rc;
    }
    if (out) *out = v;
    return AK_OK;
}

AKDEF ak_result ak_json_parse(ak_json_doc *d, const char *src, size_t len, ak_error *err) {
    ak_json *v;
    ak_result rc = ak_json_parse_value(d, src, len, NULL, &v, err);
    if (rc == AK_OK) d->root = v;
    return rc;
}

/* ---- numbers: text <-> binary --------------------------------------------------------- */

#if defined(AK_FREESTANDING) && !defined(AK_STRTOD)
/* Without libc: exact for up to 19 significant digits with |exponent| <= 22 (every number a
   model or a tool usually sends), within an ulp or two otherwise. Define AK_STRTOD and
   AK_DTOA for correctly rounded conversions. */
AK_PRIVATE double ak__pow10(int e) {
    double r = 1, b = 10;
    int n = e < 0 ? -e : e;
    while (n) {
        if (n & 1) r *= b;
        b *= b, n >>= 1;
    }
    return e < 0 ? 1 / r : r;
}

AK_PRIVATE double ak__strtod(const char *s, size_t len) {
    uint64_t m = 0;
    int digits = 0, exp10 = 0, neg = 0, eneg = 0, e = 0;
    size_t i = 0;
    if (i < len && s[i] == '-') neg = 1, i++;
    for (; i < len && ak__isdigit(s[i]); i++) {
        if (digits < 19) m = m * 10 + (uint64_t)(s[i] - '0'), digits += m != 0;
        else exp10++;
    }
    if (i < len && s[i] == '.')
        for (i++; i < len && ak__isdigit(s[i]); i++)
            if (digits < 19) m = m * 10 + (uint64_t)(s[i] - '0'), digits += m != 0, exp10--;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) eneg = s[i] == '-', i++;
        for (; i < len && ak__isdigit(s[i]); i++)
            if (e < 100000) e = e * 10 + (s[i] - '0');
    }
    exp10 += eneg ? -e : e;
    if (m == 0) return neg ? -0.0 : 0.0;
    if (exp10 < -400) return neg ? -0.0 : 0.0;
    if (exp10 > 400) return neg ? -1e308 * 10 : 1e308 * 10;
    {
        double v = (double)m;
        v = exp10 < -300 ? v * ak__pow10(exp10 + 300) * 1e-300 : v * ak__pow10(exp10);
        return neg ? -v : v;
    }
}
#elif !defined(AK_STRTOD)
AK_PRIVATE double ak__strtod(const char *s, size_t len) {
    /* strtod needs a terminated string; lexemes are not. 800 significant digits decide any
       double, so longer mantissas lose only digits that cannot change the result. */
    char tmp[832];
    size_t n = len, i, o = 0, exp_at = len;
    for (i = 0; i < len; i++)
        if (s[i] == 'e' || s[i] == 'E') {
            exp_at = i;
            break;
        }
    if (n < sizeof tmp) {
        AK_MEMCPY(tmp, s, n);
        tmp[n] = 0;
        return strtod(tmp, NULL);
    }
    {
        /* Keep the first 800 mantissa characters and fold the dropped integer digits into
           the exponent. */
        size_t keep = exp_at < 800 ? exp_at : 800, dot = exp_at;
        long extra = 0, e = 0;
        int eneg = 0;
        for (i = 0; i < exp_at; i++)
            if (s[i] == '.') dot = i;
        AK_MEMCPY(tmp, s, keep);
        o = keep;
        if (dot > keep) extra = (long)(dot - keep);
        if (exp_at < len) {
            i = exp_at + 1;
            if (i < len && (s[i] == '+' || s[i] == '-')) eneg = s[i] == '-', i++;
            for (; i < len; i++)
                if (e < 100000) e = e * 10 + (s[i] - '0');
        }
        e = (eneg ? -e : e) + extra;
        tmp[o++] = 'e';
        {
            ak_buf b;
            ak_buf_init_fixed(&b, tmp + o, sizeof tmp - o);
            ak_buf_put_i64(&b, e);
        }
        return strtod(tmp, NULL);
    }
}
#else
AK_PRIVATE double ak__strtod(const char *s, size_t len) { return AK_STRTOD(s, len); }
#endif

AK_PRIVATE int ak__isnan_or_inf(double v) { return v != v || v - v != 0; }

/* Shortest round-trip digits of v > 0: writes them to digits (no dot), returns the count and
   stores the decimal exponent n such that v = 0.DIGITS x 10^n. */
#if defined(AK_FREESTANDING) && !defined(AK_DTOA)
AK_PRIVATE int ak__shortest(double v, char *digits, int *n) {
    /* Scale into [1e16, 1e17), then take 17 digits and trim trailing zeros. Good to about
       one ulp; define AK_DTOA for shortest correctly rounded output. */
    int e = 0, k, len = 17;
    uint64_t m;
    while (v >= 1e17) v /= 10, e++;
    while (v < 1e16) v *= 10, e--;
    m = (uint64_t)(v + 0.5);
    if (m >= 100000000000000000ull) m /= 10, e++;
    for (k = 16; k >= 0; k--) digits[k] = (char)('0' + m % 10), m /= 10;
    while (len > 1 && digits[len - 1] == '0') len--;
    *n = e + 17;
    return len;
}
#elif !defined(AK_DTOA)
AK_PRIVATE int ak__shortest(double v, char *digits, int *n) {
    char tmp[40];
    int prec, len = 0, i;
    for (prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (prec == 17 || strtod(tmp, NULL) == v) break;
    }
    /* tmp is "d.ddddde[+-]xx" */
    for (i = 0; tmp[i] && tmp[i] != 'e'; i++)
        if (tmp[i] != '.') digits[len++] = tmp[i];
    while (len > 1 && digits[len - 1] == '0') len--;
    *n = atoi(tmp + i + 1) + 1;
    return len;
}
#else
AK_PRIVATE int ak__shortest(double v, char *digits, int *n) { return AK_DTOA(v, digits, n); }
#endif

/* Formats v as JavaScript's Number.prototype.toString does. */
AK_PRIVATE void ak__format_double(ak_buf *b, double v) {
    char dg[32];
    int k, n, i;
    if (ak__isnan_or_inf(v)) {
        ak_buf_puts(b, "null");
        return;
    }
    if (v == 0) {
        ak_buf_putc(b, '0');
        return;
    }
    if (v < 0) ak_buf_putc(b, '-'), v = -v;
    k = ak__shortest(v, dg, &n);
    if (k <= n && n <= 21) {
        ak_buf_append(b, dg, (size_t)k);
        for (i = k; i < n; i++) ak_buf_putc(b, '0');
    } else if (0 < n && n <= 21) {
        ak_buf_append(b, dg, (size_t)n);
        ak_buf_putc(b, '.');
        ak_buf_append(b, dg + n, (size_t)(k - n));
    } else if (-6 < n && n <= 0) {
        ak_buf_puts(b, "0.");
        for (i = 0; i < -n; i++) ak_buf_putc(b, '0');
        ak_buf_append(b, dg, (size_t)k);
    } else {
        ak_buf_putc(b, dg[0]);
        if (k > 1) ak_buf_putc(b, '.'), ak_buf_append(b, dg + 1, (size_t)(k - 1));
        ak_buf_putc(b, 'e');
        ak_buf_putc(b, n - 1 < 0 ? '-' : '+');
        ak_buf_put_i64(b, n - 1 < 0 ? 1 - n : n - 1);
    }
}

/* ---- writer --------------------------------------------------------------------------- */

AKDEF void ak_json_write_str(ak_buf *out, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, run = 0;
    ak_buf_putc(out, '"');
    for (; i < len; i++) {
        unsigned char c = AK__U8(s[i]);
        const char *esc = NULL;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        ak_buf_append(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        }
        if (esc) {
            ak_buf_append(out, esc, 2);
        } else {
            char u[6] = {'\\', 'u', '0', '0', 0, 0};
            u[4] = hex[c >> 4], u[5] = hex[c & 15];
            ak_buf_append(out, u, 6);
        }
    }
    ak_buf_append(out, s + run, len - run);
    ak_buf_putc(out, '"');
}

AK_PRIVATE void ak__jindent(ak_buf *out, int indent) {
    int i;
    ak_buf_putc(out, '\n');
    for (i = 0; i < indent; i++) ak_buf_append(out, "  ", 2);
}

/* Recursion depth is the nesting depth of v (bounded by the parser's limit for parsed
   values). indent < 0 writes compact JSON. */
AK_PRIVATE void ak__jwrite(const ak_json *v, ak_buf *out, int indent) {
    const ak_json *c;
    int obj;
    if (out->err) return;
    switch (v ? (ak_json_type)v->type : AK_JSON_NULL) {
    case AK_JSON_NULL: ak_buf_append(out, "null", 4); return;
    case AK_JSON_BOOL:
        if (v->flags & AK_JSON_F_TRUE) ak_buf_append(out, "true", 4);
        else ak_buf_append(out, "false", 5);
        return;
    case AK_JSON_NUMBER: ak_buf_append(out, v->u.str, v->len); return;
    case AK_JSON_STRING: ak_json_write_str(out, v->u.str, v->len); return;
    case AK_JSON_ARRAY: case AK_JSON_OBJECT: break;
    }
    obj = v->type == AK_JSON_OBJECT;
    ak_buf_putc(out, obj ? '{' : '[');
    for (c = v->u.first; c; c = c->next) {
        if (indent >= 0) ak__jindent(out, indent + 1);
        if (obj) {
            ak_json_write_str(out, c->key ? c->key : "", c->key_len);
            ak_buf_putc(out, ':');
            if (indent >= 0) ak_buf_putc(out, ' ');
        }
        ak__jwrite(c, out, indent >= 0 ? indent + 1 : -1);
        if (c->next) ak_buf_putc(out, ',');
    }
    if (indent >= 0 && v->u.first) ak__jindent(out, indent);
    ak_buf_putc(out, obj ? '}' : ']');
}

AKDEF ak_result ak_json_write(const ak_json *v, ak_buf *out) {
    ak__jwrite(v, out, -1);
    return out->err;
}

AKDEF ak_result ak_json_write_pretty(const ak_json *v, ak_buf *out) {
    ak__jwrite(v, out, 0);
    return out->err;
}

/* ---- builder -------------------------------------------------------------------------- */

AKDEF ak_json *ak_json_new_null(ak_json_doc *d) { return ak__json_node(d, AK_JSON_NULL); }

AKDEF ak_json *ak_json_new_bool(ak_json_doc *d, int value) {
    ak_json *v = ak__json_node(d, AK_JSON_BOOL);
    if (v && value) v->flags = AK_JSON_F_TRUE;
    return v;
}

AK_PRIVATE ak_json *ak__json_number_from_buf(ak_json_doc *d, ak_buf *b, uint8_t flags) {
    ak_json *v;
    if (b->err) return NULL;
    v = ak__json_node(d, AK_JSON_NUMBER);
    if (!v) return NULL;
    if (!(v->u.str = ak_arena_strdup(&d->arena, b->ptr, b->len))) {
        d->err = AK_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    v->len = (uint32_t)b->len;
    v->flags = flags;
    return v;
}

AKDEF ak_json *ak_json_new_int(ak_json_doc *d, int64_t value) {
    char tmp[24];
    ak_buf b;
    ak_buf_init_fixed(&b, tmp, sizeof tmp);
    ak_buf_put_i64(&b, value);
    return ak__json_number_from_buf(d, &b, AK_JSON_F_INT);
}

AKDEF ak_json *ak_json_new_double(ak_json_doc *d, double value) {
    char tmp[40];
    ak_buf b;
    uint8_t flags = AK_JSON_F_INT;
    size_t i;
    if (ak__isnan_or_inf(value)) return ak_json_new_null(d);
    ak_buf_init_fixed(&b, tmp, sizeof tmp);
    ak__format_double(&b, value);
    for (i = 0; i < b.len; i++)
        if (tmp[i] == '.' || tmp[i] == 'e') flags = 0;
    return ak__json_number_from_buf(d, &b, flags);
}

AKDEF ak_json *ak_json_new_number(ak_json_doc *d, const char *lexeme, size_t len) {
    ak_json *v;
    uint8_t flags;
    if (!lexeme || ak__jnumber_scan(lexeme, lexeme + len, &flags) != lexeme + len) {
        if (d->err == AK_OK) d->err = AK_ERR_JSON_SYNTAX;
        return NULL;
    }
    if (len > 0xFFFFFFFFu) {
        d->err = AK_ERR_LIMIT;
        return NULL;
    }
    if (!(v = ak__json_node(d, AK_JSON_NUMBER))) return NULL;
    if (!(v->u.str = ak_arena_strdup(&d->arena, lexeme, len))) {
        d->err = AK_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    v->len = (uint32_t)len;
    v->flags = flags;
    return v;
}

AKDEF ak_json *ak_json_new_strn(ak_json_doc *d, const char *s, size_t len) {
    ak_json *v;
    char *copy;
    if (!s) s = "", len = 0;
    if (len > 0xFFFFFFFFu) {
        d->err = AK_ERR_LIMIT;
        return NULL;
    }
    if (ak_utf8_valid(s, len)) {
        copy = ak_arena_strdup(&d->arena, s, len);
    } else {
        ak_buf b;
        ak_buf_init(&b, d->arena.alloc);
        ak_utf8_sanitize(&b, s, len);
        copy = b.err ? NULL : ak_arena_strdup(&d->arena, b.ptr, b.len);
        len = b.len;
        ak_buf_free(&b);
    }
    if (!copy || !(v = ak__json_node(d, AK_JSON_STRING))) {
        d->err = AK_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    v->u.str = copy;
    v->len = (uint32_t)len;
    return v;
}

AKDEF ak_json *ak_json_new_str(ak_json_doc *d, const char *s) {
    return ak_json_new_strn(d, s, s ? ak__strlen(s) : 0);
}

AKDEF ak_json *ak_json_new_array(ak_json_doc *d) { return ak__json_node(d, AK_JSON_ARRAY); }
AKDEF ak_json *ak_json_new_object(ak_json_doc *d) { return ak__json_node(d, AK_JSON_OBJECT); }

/* Copies scalars by value; text is copied into d too, so the copy outlives the source. */
AKDEF ak_json *ak_json_copy(ak_json_doc *d, const ak_json *v) {
    ak_json *c, *tail = NULL;
    const ak_json *s;
    if (!v) return ak_json_new_null(d);
    if (!(c = ak__json_node(d, (ak_json_type)v->type))) return NULL;
    c->flags = v->flags;
    if (v->type == AK_JSON_STRING || v->type == AK_JSON_NUMBER) {
        if (!(c->u.str = ak_arena_strdup(&d->arena, v->u.str, v->len))) {
            d->err = AK_ERR_OUT_OF_MEMORY;
            return NULL;
        }
        c->len = v->len;
        return c;
    }
    if (v->type != AK_JSON_ARRAY && v->type != AK_JSON_OBJECT) return c;
    for (s = v->u.first; s; s = s->next) {
        ak_json *k = ak_json_copy(d, s);
        if (!k) return NULL;
        if (s->key && !(k->key = ak_arena_strdup(&d->arena, s->key, s->key_len))) {
            d->err = AK_ERR_OUT_OF_MEMORY;
            return NULL;
        }
        k->key_len = s->key_len;
        if (tail) tail->next = k;
        else c->u.first = k;
        tail = k;
        c->len++;
    }
    return c;
}

AKDEF size_t ak_json_copy_size(const ak_json *v) {
    const ak_json *c;
    size_t n = AK__ALIGN_UP(sizeof(ak_json));
    if (!v) return n;
    if (v->type == AK_JSON_STRING || v->type == AK_JSON_NUMBER) return n + AK__ALIGN_UP((size_t)v->len + 1);
    if (v->type != AK_JSON_ARRAY && v->type != AK_JSON_OBJECT) return n;
    for (c = v->u.first; c; c = c->next) {
        n += ak_json_copy_size(c);
        if (c->key) n += AK__ALIGN_UP((size_t)c->key_len + 1);
    }
    return n;
}

AKDEF ak_jref *ak_jref_new(const ak_allocator *alloc, const ak_json *v) {
    ak_jref *r = (ak_jref *)ak_alloc(alloc, sizeof *r);
    if (!r) return NULL;
    r->refs = 1;
    r->alloc = alloc;
    /* One block sized for the copy (plus the arena's header slack). */
    ak_arena_init(&r->doc.arena, alloc, ak_json_copy_size(v));
    r->doc.root = NULL;
    r->doc.err = AK_OK;
    r->value = ak_json_copy(&r->doc, v);
    if (!r->value) {
        ak_json_doc_free(&r->doc);
        ak_free(alloc, r, sizeof *r);
        return NULL;
    }
    return r;
}

AKDEF ak_jref *ak_jref_retain(ak_jref *r) {
    if (r) r->refs++;
    return r;
}

AKDEF void ak_jref_release(ak_jref *r) {
    if (!r || --r->refs) return;
    ak_json_doc_free(&r->doc);
    ak_free(r->alloc, r, sizeof *r);
}

AK_PRIVATE int ak__is_container(const ak_json *v, ak_json_type t) { return v && v->type == t; }

AKDEF ak_result ak_json_push(ak_json *arr, ak_json *v) {
    return ak_json_insert(arr, arr ? arr->len : 0, v);
}

/* Points to the link (first or a next field) that holds the index-th child. */
AK_PRIVATE ak_json **ak__jlink(ak_json *c, size_t index) {
    ak_json **link = &c->u.first;
    while (index-- && *link) link = &(*link)->next;
    return link;
}

AKDEF ak_result ak_json_insert(ak_json *arr, size_t index, ak_json *v) {
    ak_json **link;
    if (!v) return AK_ERR_INVALID_ARGUMENT;
    if (!ak__is_container(arr, AK_JSON_ARRAY)) return AK_ERR_JSON_TYPE;
    if (index > arr->len) return AK_ERR_INVALID_ARGUMENT;
    if (arr->len == 0xFFFFFFFFu) return AK_ERR_LIMIT;
    link = ak__jlink(arr, index);
    v->key = NULL, v->key_len = 0;
    v->next = *link;
    *link = v;
    arr->len++;
    return AK_OK;
}

AKDEF ak_json *ak_json_remove_at(ak_json *arr, size_t index) {
    ak_json **link, *v;
    if (!ak__is_container(arr, AK_JSON_ARRAY) || index >= arr->len) return NULL;
    link = ak__jlink(arr, index);
    v = *link;
    *link = v->next;
    v->next = NULL;
    arr->len--;
    return v;
}

AKDEF ak_result ak_json_replace_at(ak_json *arr, size_t index, ak_json *v) {
    ak_json **link;
    if (!v) return AK_ERR_INVALID_ARGUMENT;
    if (!ak__is_container(arr, AK_JSON_ARRAY)) return AK_ERR_JSON_TYPE;
    if (index >= arr->len) return AK_ERR_INVALID_ARGUMENT;
    link = ak__jlink(arr, index);
    v->key = NULL, v->key_len = 0;
    v->next = (*link)->next;
    (*link)->next = NULL;
    *link = v;
    return AK_OK;
}

AK_PRIVATE int ak__key_is(const ak_json *m, const char *key, size_t key_len) {
    return m->key_len == key_len && (key_len == 0 || AK_MEMCMP(m->key, key, key_len) == 0);
}

AKDEF ak_result ak_json_add(ak_json_doc *d, ak_json *obj, const char *key, size_t key_len,
                            ak_json *v) {
    ak_json **link;
    char *k;
    if (!v || !key) return AK_ERR_INVALID_ARGUMENT;
    if (!ak__is_container(obj, AK_JSON_OBJECT)) return AK_ERR_JSON_TYPE;
    if (obj->len == 0xFFFFFFFFu || key_len > 0xFFFFFFFFu) return AK_ERR_LIMIT;
    if (!(k = ak_arena_strdup(&d->arena, key, key_len))) return d->err = AK_ERR_OUT_OF_MEMORY;
    link = ak__jlink(obj, obj->len);
    v->key = k;
    v->key_len = (uint32_t)key_len;
    v->next = NULL;
    *link = v;
    obj->len++;
    return AK_OK;
}

AKDEF ak_result ak_json_setn(ak_json_doc *d, ak_json *obj, const char *key, size_t key_len,
                             ak_json *v) {
    ak_json **link, **found = NULL;
    if (!v || !key) return AK_ERR_INVALID_ARGUMENT;
    if (!ak__is_container(obj, AK_JSON_OBJECT)) return AK_ERR_JSON_TYPE;
    for (link = &obj->u.first; *link; link = &(*link)->next)
        if (ak__key_is(*link, key, key_len)) found = link;
    if (!found) return ak_json_add(d, obj, key, key_len, v);
    v->key = (*found)->key; /* same key text: reuse it */
    v->key_len = (*found)->key_len;
    v->next = (*found)->next;
    (*found)->next = NULL;
    *found = v;
    return AK_OK;
}

AKDEF ak_result ak_json_set(ak_json_doc *d, ak_json *obj, const char *key, ak_json *v) {
    return ak_json_setn(d, obj, key, key ? ak__strlen(key) : 0, v);
}

AKDEF ak_json *ak_json_removen(ak_json *obj, const char *key, size_t key_len) {
    ak_json **link, *last = NULL;
    if (!ak__is_container(obj, AK_JSON_OBJECT) || !key) return NULL;
    link = &obj->u.first;
    while (*link) {
        ak_json *m = *link;
        if (ak__key_is(m, key, key_len)) {
            *link = m->next;
            m->next = NULL;
            obj->len--;
            last = m;
        } else {
            link = &m->next;
        }
    }
    return last;
}

AKDEF ak_json *ak_json_remove(ak_json *obj, const char *key) {
    return ak_json_removen(obj, key, key ? ak__strlen(key) : 0);
}

AKDEF ak_result ak_json_set_str(ak_json_doc *d, ak_json *obj, const char *key, const char *s) {
    return ak_json_set(d, obj, key, ak_json_new_str(d, s));
}

AKDEF ak_result ak_json_set_int(ak_json_doc *d, ak_json *obj, const char *key, int64_t v) {
    return ak_json_set(d, obj, key, ak_json_new_int(d, v));
}

AKDEF ak_result ak_json_set_bool(ak_json_doc *d, ak_json *obj, const char *key, int v) {
    return ak_json_set(d, obj, key, ak_json_new_bool(d, v));
}

/* ---- access --------------------------------------------------------------------------- */

AKDEF ak_json_type ak_json_typeof(const ak_json *v) {
    return v ? (ak_json_type)v->type : AK_JSON_NULL;
}

AKDEF int ak_json_is(const ak_json *v, ak_json_type t) { return v && v->type == (uint8_t)t; }

AKDEF size_t ak_json_len(const ak_json *v) {
    return v && v->type >= AK_JSON_STRING ? v->len : 0;
}

AKDEF ak_json *ak_json_first(const ak_json *v) {
    return v && (v->type == AK_JSON_ARRAY || v->type == AK_JSON_OBJECT) ? v->u.first : NULL;
}

AKDEF ak_json *ak_json_getn(const ak_json *obj, const char *key, size_t key_len) {
    ak_json *m, *found = NULL;
    if (!ak__is_container(obj, AK_JSON_OBJECT) || !key) return NULL;
    for (m = obj->u.first; m; m = m->next)
        if (ak__key_is(m, key, key_len)) found = m;
    return found;
}

AKDEF ak_json *ak_json_get(const ak_json *obj, const char *key) {
    return key ? ak_json_getn(obj, key, ak__strlen(key)) : NULL;
}

AKDEF ak_json *ak_json_at(const ak_json *arr, size_t index) {
    ak_json *c;
    if (!ak__is_container(arr, AK_JSON_ARRAY) || index >= arr->len) return NULL;
    for (c = arr->u.first; index; index--) c = c->next;
    return c;
}

AKDEF ak_json *ak_json_path(const ak_json *root, const char *path) {
    const ak_json *v = root;
    const char *p = path;
    if (!p) return NULL;
    if (*p == '$') p++;
    while (v && *p) {
        if (*p == '.') p++;
        if (*p == '[') {
            size_t idx = 0;
            int any = 0;
            for (p++; *p >= '0' && *p <= '9'; p++, any = 1) {
                if (idx > ((size_t)-1) / 10 - 1) return NULL;
                idx = idx * 10 + (size_t)(*p - '0');
            }
            if (!any || *p != ']') return NULL;
            p++;
            v = ak_json_at(v, idx);
        } else {
            const char *k = p;
            while (*p && *p != '.' && *p != '[') p++;
            if (p == k) return NULL;
            v = ak_json_getn(v, k, (size_t)(p - k));
        }
    }
    return AK__UNCONST(ak_json *, v);
}

AKDEF const char *ak_json_str(const ak_json *v) {
    return v && v->type == AK_JSON_STRING ? v->u.str : NULL;
}

AKDEF const char *ak_json_str_or(const ak_json *v, const char *def) {
    return v && v->type == AK_JSON_STRING ? v->u.str : def;
}

AKDEF const char *ak_json_get_str(const ak_json *obj, const char *key) {
    return ak_json_str(ak_json_get(obj, key));
}

AKDEF int ak_json_bool(const ak_json *v, int def) {
    return v && v->type == AK_JSON_BOOL ? (v->flags & AK_JSON_F_TRUE) != 0 : def;
}

AKDEF ak_result ak_json_int64(const ak_json *v, int64_t *out) {
    if (!v || v->type != AK_JSON_NUMBER) return AK_ERR_JSON_TYPE;
    if (v->flags & AK_JSON_F_INT) {
        const char *p = v->u.str, *end = p + v->len;
        /* the magnitude limit, INT64_MAX or its negation's, is 10 * tens + last */
        const uint64_t tens = (uint64_t)INT64_MAX / 10;
        uint64_t m = 0;
        int neg = *p == '-';
        unsigned last = (unsigned)((uint64_t)INT64_MAX % 10) + (neg ? 1u : 0u);
        if (neg) p++;
        for (; p < end; p++) {
            unsigned dgt = (unsigned)(*p - '0');
            if (m > tens || (m == tens && dgt > last)) return AK_ERR_JSON_TYPE; /* out of range */
            m = m * 10 + dgt;
        }
        *out = neg ? (int64_t)(0 - m) : (int64_t)m;
        return AK_OK;
    }
    {
        /* 1.0 or 5e2: accept when the value is an exact integer in range */
        double dv = ak__strtod(v->u.str, v->len);
        if (dv != dv || dv < -9223372036854775808.0 || dv >= 9223372036854775808.0 ||
            (double)(int64_t)dv != dv)
            return AK_ERR_JSON_TYPE;
        *out = (int64_t)dv;
        return AK_OK;
    }
}

AKDEF int64_t ak_json_int_or(const ak_json *v, int64_t def) {
    int64_t x;
    return ak_json_int64(v, &x) == AK_OK ? x : def;
}

AKDEF ak_result ak_json_double(const ak_json *v, double *out) {
    if (!v || v->type != AK_JSON_NUMBER) return AK_ERR_JSON_TYPE;
    *out = ak__strtod(v->u.str, v->len);
    return AK_OK;
}

AKDEF double ak_json_double_or(const ak_json *v, double def) {
    double x;
    return ak_json_double(v, &x) == AK_OK ? x : def;
}

AKDEF int ak_json_is_empty(const ak_json *v) {
    if (!v || v->type == AK_JSON_NULL) return 1;
    if (v->type == AK_JSON_STRING || v->type == AK_JSON_ARRAY || v->type == AK_JSON_OBJECT)
        return v->len == 0;
    return 0;
}

AK_PRIVATE int ak__num_equal(const ak_json *a, const ak_json *b) {
    if (a->len == b->len && AK_MEMCMP(a->u.str, b->u.str, a->len) == 0) return 1;
    if ((a->flags & b->flags & AK_JSON_F_INT) && (a->len > 16 || b->len > 16)) {
        /* big integers: equal digits, or both zero ("-0" vs "0") */
        const char *x = a->u.str, *y = b->u.str;
        size_t xl = a->len, yl = b->len;
        if (*x == '-' && *y == '-') x++, y++, xl--, yl--;
        return xl == yl && AK_MEMCMP(x, y, xl) == 0;
    }
    return ak__strtod(a->u.str, a->len) == ak__strtod(b->u.str, b->len);
}

AKDEF int ak_json_equal(const ak_json *a, const ak_json *b) {
    const ak_json *x, *y;
    ak_json_type t = ak_json_typeof(a);
    if (t != ak_json_typeof(b)) return 0;
    if (!a || !b) return a == b || t == AK_JSON_NULL;
    switch (t) {
    case AK_JSON_NULL: return 1;
    case AK_JSON_BOOL: return (a->flags & AK_JSON_F_TRUE) == (b->flags & AK_JSON_F_TRUE);
    case AK_JSON_NUMBER: return ak__num_equal(a, b);
    case AK_JSON_STRING: return a->len == b->len && AK_MEMCMP(a->u.str, b->u.str, a->len) == 0;
    case AK_JSON_ARRAY:
        if (a->len != b->len) return 0;
        for (x = a->u.first, y = b->u.first; x && y; x = x->next, y = y->next)
            if (!ak_json_equal(x, y)) return 0;
        return 1;
    case AK_JSON_OBJECT:
        if (a->len != b->len) return 0;
        /* Same key order is the common case and costs one pass. */
        for (x = a->u.first, y = b->u.first; x && y; x = x->next, y = y->next)
            if (!ak__key_is(y, x->key, x->key_len) || !ak_json_equal(x, y)) break;
        if (!x) return 1;
        for (x = a->u.first; x; x = x->next)
            if (!ak_json_equal(ak_json_getn(a, x->key, x->key_len), ak_json_getn(b, x->key, x->key_len)) ||
                !ak_json_getn(b, x->key, x->key_len))
                return 0;
        return 1;
    }
    return 0;
}
