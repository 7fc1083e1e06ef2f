/* >>base implementation */

#include "base.h"

#include <stdarg.h> /* compiler-provided, also when freestanding */

#if defined(AK_MALLOC) || defined(AK_REALLOC) || defined(AK_FREE)
#if !defined(AK_MALLOC) || !defined(AK_REALLOC) || !defined(AK_FREE)
#error "agentkit.h: define all of AK_MALLOC, AK_REALLOC and AK_FREE, or none of them"
#endif
#endif

#ifdef AK_FREESTANDING
#if defined(__GNUC__) || defined(__clang__)
/* These may still become calls to memcpy/memset/memmove/memcmp, the four functions a
   freestanding GCC or clang program must provide anyway. */
#ifndef AK_MEMCPY
#define AK_MEMCPY __builtin_memcpy
#endif
#ifndef AK_MEMMOVE
#define AK_MEMMOVE __builtin_memmove
#endif
#ifndef AK_MEMSET
#define AK_MEMSET __builtin_memset
#endif
#ifndef AK_MEMCMP
#define AK_MEMCMP __builtin_memcmp
#endif
#endif
#else
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef AK_MALLOC
#define AK_MALLOC(sz) malloc(sz)
#define AK_REALLOC(p, sz) realloc(p, sz)
#define AK_FREE(p) free(p)
#endif
#ifndef AK_MEMCPY
#define AK_MEMCPY memcpy
#endif
#ifndef AK_MEMMOVE
#define AK_MEMMOVE memmove
#endif
#ifndef AK_MEMSET
#define AK_MEMSET memset
#endif
#ifndef AK_MEMCMP
#define AK_MEMCMP memcmp
#endif
#endif /* AK_FREESTANDING */

#if !defined(AK_MEMCPY) || !defined(AK_MEMMOVE) || !defined(AK_MEMSET) || !defined(AK_MEMCMP)
#error "agentkit.h: this freestanding compiler needs AK_MEMCPY, AK_MEMMOVE, AK_MEMSET and AK_MEMCMP"
#endif

/* Internal functions. Some are used only by optional parts, hence "unused" is fine. */
#if defined(__GNUC__) || defined(__clang__)
#define AK_PRIVATE static __attribute__((unused))
#else
#define AK_PRIVATE static
#endif
#define AK__MIN(a, b) ((a) < (b) ? (a) : (b))
#define AK__MAX(a, b) ((a) > (b) ? (a) : (b))
#define AK__DEF(v, d) ((v) ? (v) : (d))
#define AK__COUNTOF(a) (sizeof(a) / sizeof((a)[0]))
#define AK__UNUSED(x) ((void)(x))
/* C and C++ both accept this cast; C++ needs it for void* conversions. */
#define AK__CAST(T, p) ((T)(p))

/* Lookup functions take const containers and hand back mutable children, as strchr does.
   Going through an integer keeps -Wcast-qual quiet about that one deliberate conversion. */
#define AK__UNCONST(T, p) ((T)(uintptr_t)(p))
/* Bytes are compared as unsigned everywhere. */
#define AK__U8(c) ((unsigned char)(c))
/* Keeps a rarely taken slow path out of a hot caller (fewer register saves there). */
#if defined(__GNUC__) || defined(__clang__)
#define AK__NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define AK__NOINLINE __declspec(noinline)
#else
#define AK__NOINLINE
#endif

AK_PRIVATE size_t ak__strlen(const char *s) {
    const char *p = s;
    while (*p) p++;
    return (size_t)(p - s);
}

AK_PRIVATE int ak__streq(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

/* The NUL-terminated s begins with prefix (never reads past the end of s). */
AK_PRIVATE int ak__starts_with(const char *s, const char *prefix) {
    while (*prefix && *s == *prefix) s++, prefix++;
    return !*prefix;
}

/* a[0..alen) equals the NUL-terminated b */
AK_PRIVATE int ak__eqn(const char *a, size_t alen, const char *b) {
    size_t i = 0;
    for (; i < alen; i++)
        if (b[i] != a[i] || !b[i]) return 0;
    return b[alen] == 0;
}

/* overflow-checked a + b */
AK_PRIVATE int ak__add_ok(size_t a, size_t b, size_t *out) {
    if (a > (size_t)-1 - b) return 0;
    *out = a + b;
    return 1;
}

/* ---- results and statuses ------------------------------------------------------------ */

AKDEF const char *ak_version(void) { return AK_VERSION_STRING; }

AKDEF const char *ak_result_str(ak_result r) {
#ifdef AK_NO_ERROR_STRINGS
    return r == AK_OK ? "ok" : "error";
#else
    switch (r) {
    case AK_OK: return "ok";
    case AK_PENDING: return "pending";
    case AK_ERR_INVALID_ARGUMENT: return "invalid argument";
    case AK_ERR_OUT_OF_MEMORY: return "out of memory";
    case AK_ERR_LIMIT: return "limit exceeded";
    case AK_ERR_NOT_FOUND: return "not found";
    case AK_ERR_UNSUPPORTED: return "unsupported";
    case AK_ERR_STATE: return "invalid state for this call";
    case AK_ERR_IO: return "I/O error";
    case AK_ERR_CANCELLED: return "cancelled";
    case AK_ERR_TIMEOUT: return "timed out";
    case AK_ERR_NO_RANDOM: return "no cryptographic random source";
    case AK_ERR_INTERNAL: return "internal error";
    case AK_ERR_ALREADY_EXISTS: return "already exists";
    case AK_ERR_JSON_SYNTAX: return "JSON syntax error";
    case AK_ERR_JSON_DEPTH: return "JSON nesting too deep";
    case AK_ERR_JSON_UTF8: return "invalid UTF-8";
    case AK_ERR_JSON_TYPE: return "JSON value has the wrong type";
    case AK_ERR_JSON_POINTER: return "JSON Pointer error";
    case AK_ERR_JSON_PATCH: return "JSON Patch error";
    case AK_ERR_JSON_TEST: return "JSON Patch test failed";
    case AK_ERR_SCHEMA: return "schema validation failed";
    case AK_ERR_STREAM: return "malformed stream";
    case AK_ERR_HTTP: return "malformed HTTP message";
    case AK_ERR_CONNECT: return "connection failed";
    case AK_ERR_TLS: return "TLS error";
    case AK_ERR_CLOSED: return "connection closed";
    case AK_ERR_TRUNCATED: return "truncated";
    case AK_ERR_HTTP_STATUS: return "HTTP error status";
    case AK_ERR_MODEL: return "model error";
    case AK_ERR_STORE: return "store error";
    case AK_ERR_DATA_LOSS: return "data loss";
    case AK_ERR_AGENT: return "agent error";
    }
    return "unknown result";
#endif
}

AKDEF ak_status ak_result_status(ak_result r) {
    switch (r) {
    case AK_OK: case AK_PENDING: return AK_STATUS_OK;
    case AK_ERR_INVALID_ARGUMENT: case AK_ERR_JSON_SYNTAX: case AK_ERR_JSON_DEPTH:
    case AK_ERR_JSON_UTF8: case AK_ERR_JSON_TYPE: case AK_ERR_JSON_POINTER:
    case AK_ERR_JSON_PATCH: case AK_ERR_SCHEMA: case AK_ERR_HTTP:
        return AK_STATUS_INVALID_ARGUMENT;
    case AK_ERR_JSON_TEST: case AK_ERR_STATE: return AK_STATUS_FAILED_PRECONDITION;
    case AK_ERR_OUT_OF_MEMORY: case AK_ERR_LIMIT: return AK_STATUS_RESOURCE_EXHAUSTED;
    case AK_ERR_NOT_FOUND: return AK_STATUS_NOT_FOUND;
    case AK_ERR_ALREADY_EXISTS: return AK_STATUS_ALREADY_EXISTS;
    case AK_ERR_UNSUPPORTED: return AK_STATUS_UNIMPLEMENTED;
    case AK_ERR_CANCELLED: return AK_STATUS_CANCELLED;
    case AK_ERR_TIMEOUT: return AK_STATUS_DEADLINE_EXCEEDED;
    case AK_ERR_IO: case AK_ERR_STREAM: case AK_ERR_CONNECT: case AK_ERR_TLS:
    case AK_ERR_CLOSED: case AK_ERR_TRUNCATED: case AK_ERR_HTTP_STATUS:
        return AK_STATUS_UNAVAILABLE;
    case AK_ERR_DATA_LOSS: return AK_STATUS_DATA_LOSS;
    case AK_ERR_NO_RANDOM: case AK_ERR_INTERNAL: return AK_STATUS_INTERNAL;
    case AK_ERR_MODEL: case AK_ERR_STORE: case AK_ERR_AGENT: return AK_STATUS_UNKNOWN;
    }
    return AK_STATUS_UNKNOWN;
}

/* Indexed by ak_status; names are Genkit's, HTTP codes those of @genkit-ai/core. */
static const struct { const char *name; int http; } ak__statuses[] = {
    {"OK", 200}, {"CANCELLED", 499}, {"UNKNOWN", 500}, {"INVALID_ARGUMENT", 400},
    {"DEADLINE_EXCEEDED", 504}, {"NOT_FOUND", 404}, {"ALREADY_EXISTS", 409},
    {"PERMISSION_DENIED", 403}, {"RESOURCE_EXHAUSTED", 429}, {"FAILED_PRECONDITION", 400},
    {"ABORTED", 409}, {"OUT_OF_RANGE", 400}, {"UNIMPLEMENTED", 501}, {"INTERNAL", 500},
    {"UNAVAILABLE", 503}, {"DATA_LOSS", 500}, {"UNAUTHENTICATED", 401},
};

AKDEF const char *ak_status_name(ak_status s) {
    if ((unsigned)s >= AK__COUNTOF(ak__statuses)) s = AK_STATUS_UNKNOWN;
    return ak__statuses[s].name;
}

AKDEF int ak_status_http(ak_status s) {
    if ((unsigned)s >= AK__COUNTOF(ak__statuses)) s = AK_STATUS_UNKNOWN;
    return ak__statuses[s].http;
}

AKDEF ak_status ak_status_from_name(const char *name, size_t len) {
    unsigned i;
    if (!name) return AK_STATUS_UNKNOWN;
    for (i = 0; i < AK__COUNTOF(ak__statuses); i++)
        if (ak__eqn(name, len, ak__statuses[i].name)) return (ak_status)i;
    return AK_STATUS_UNKNOWN;
}

AKDEF ak_status ak_status_from_http(int code) {
    switch (code) {
    case 200: case 201: case 204: return AK_STATUS_OK;
    case 400: return AK_STATUS_INVALID_ARGUMENT;
    case 401: return AK_STATUS_UNAUTHENTICATED;
    case 403: return AK_STATUS_PERMISSION_DENIED;
    case 404: return AK_STATUS_NOT_FOUND;
    case 408: case 504: return AK_STATUS_DEADLINE_EXCEEDED;
    case 409: return AK_STATUS_ABORTED;
    case 412: return AK_STATUS_FAILED_PRECONDITION;
    case 413: case 429: return AK_STATUS_RESOURCE_EXHAUSTED;
    case 499: return AK_STATUS_CANCELLED;
    case 501: return AK_STATUS_UNIMPLEMENTED;
    case 500: return AK_STATUS_INTERNAL;
    case 502: case 503: case 529: return AK_STATUS_UNAVAILABLE;
    }
    if (code >= 500) return AK_STATUS_UNAVAILABLE;
    if (code >= 400) return AK_STATUS_INVALID_ARGUMENT;
    return AK_STATUS_UNKNOWN;
}

/* ---- allocator ------------------------------------------------------------------------ */

AKDEF void *ak_alloc(const ak_allocator *a, size_t size) {
    if (size == 0) size = 1;
    if (a && a->alloc) return a->alloc(a->ud, size);
#ifdef AK_MALLOC
    if (!a) return AK_MALLOC(size);
#endif
    return NULL;
}

AKDEF void *ak_realloc(const ak_allocator *a, void *ptr, size_t old_size, size_t new_size) {
    if (!ptr) return ak_alloc(a, new_size);
    if (new_size == 0) new_size = 1;
    if (a && a->realloc) return a->realloc(a->ud, ptr, old_size, new_size);
#ifdef AK_MALLOC
    if (!a) return AK_REALLOC(ptr, new_size);
#endif
    AK__UNUSED(old_size);
    return NULL;
}

AKDEF void ak_free(const ak_allocator *a, void *ptr, size_t size) {
    AK__UNUSED(size);
    if (!ptr) return;
    if (a && a->free) {
        a->free(a->ud, ptr, size);
        return;
    }
#ifdef AK_MALLOC
    if (!a) AK_FREE(ptr);
#endif
}

/* ---- formatting: the printf subset used for errors, logs and buffers -------------------- */

AK_PRIVATE void ak__put_uint(ak_buf *b, uint64_t v, unsigned base) {
    char tmp[24];
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (n) ak_buf_putc(b, tmp[--n]);
}

AK_PRIVATE void ak__vfmt(ak_buf *b, const char *fmt, va_list ap) {
    const char *p = fmt;
    while (*p) {
        const char *s = p;
        int lng = 0, prec = -1;
        while (*p && *p != '%') p++;
        if (p > s) ak_buf_append(b, s, (size_t)(p - s));
        if (!*p) break;
        p++;
        if (p[0] == '.' && p[1] == '*') prec = va_arg(ap, int), p += 2;
        while (*p == 'l') lng++, p++;
        if (*p == 'z') lng = 3, p++;
        switch (*p) {
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str) str = "(null)";
            if (prec >= 0) {
                size_t n = 0;
                while (n < (size_t)prec && str[n]) n++;
                ak_buf_append(b, str, n);
            } else {
                ak_buf_puts(b, str);
            }
            break;
        }
        case 'd': case 'i': {
            int64_t v = lng == 0 ? va_arg(ap, int) : lng == 1 ? va_arg(ap, long)
                      : lng == 2 ? va_arg(ap, long long) : (int64_t)va_arg(ap, size_t);
            ak_buf_put_i64(b, v);
            break;
        }
        case 'u': case 'x': {
            uint64_t v = lng == 0 ? va_arg(ap, unsigned) : lng == 1 ? va_arg(ap, unsigned long)
                       : lng == 2 ? va_arg(ap, unsigned long long) : va_arg(ap, size_t);
            ak__put_uint(b, v, *p == 'x' ? 16u : 10u);
            break;
        }
        case 'c': ak_buf_putc(b, (char)va_arg(ap, int)); break;
        case '%': ak_buf_putc(b, '%'); break;
        case 0: return;
        default: ak_buf_putc(b, '%'); ak_buf_putc(b, *p); break;
        }
        p++;
    }
}

/* ---- errors --------------------------------------------------------------------------- */

AKDEF void ak_error_clear(ak_error *e) {
    if (!e) return;
    e->code = AK_OK;
    e->status = AK_STATUS_OK;
    e->offset = 0;
    e->message[0] = 0;
}

AK_PRIVATE void ak__error_vset(ak_error *e, ak_result code, ak_status st, const char *fmt,
                               va_list ap) {
    ak_buf b;
    e->code = code;
    e->status = st;
    e->offset = 0;
    ak_buf_init_fixed(&b, e->message, sizeof e->message);
    ak__vfmt(&b, fmt, ap); /* a too-long message is cut, never overflows */
}

AKDEF ak_result ak_error_set(ak_error *e, ak_result code, const char *fmt, ...) {
    va_list ap;
    if (!e) return code;
    va_start(ap, fmt);
    ak__error_vset(e, code, ak_result_status(code), fmt, ap);
    va_end(ap);
    return code;
}

AKDEF ak_result ak_error_setst(ak_error *e, ak_result code, ak_status st, const char *fmt, ...) {
    va_list ap;
    if (!e) return code;
    va_start(ap, fmt);
    ak__error_vset(e, code, st, fmt, ap);
    va_end(ap);
    return code;
}

/* The plain allocation failure, shared by every layer that has nothing to add to it. */
AK_PRIVATE ak_result ak__oom(ak_error *err) { return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory"); }

/* ---- arena ---------------------------------------------------------------------------- */

struct ak_arena_block {
    ak_arena_block *prev;
    size_t size; /* usable bytes after the header */
    size_t used;
    int owned;   /* allocated by the arena (else caller memory) */
};

#define AK__ALIGN 8u
#define AK__ALIGN_UP(n) (((n) + (AK__ALIGN - 1)) & ~(size_t)(AK__ALIGN - 1))
#define AK__BLOCK_HDR AK__ALIGN_UP(sizeof(ak_arena_block))
#define AK__BLOCK_DATA(b) ((unsigned char *)(b) + AK__BLOCK_HDR)

AKDEF void ak_arena_init(ak_arena *a, const ak_allocator *alloc, size_t first_block) {
    a->alloc = alloc;
    a->head = NULL;
    a->next_size = first_block ? first_block : 1024;
    a->used_bytes = 0;
    a->fixed = 0;
}

AKDEF ak_result ak_arena_init_fixed(ak_arena *a, void *mem, size_t size) {
    uintptr_t p = (uintptr_t)mem, q = (p + AK__ALIGN - 1) & ~(uintptr_t)(AK__ALIGN - 1);
    ak_arena_block *b;
    a->alloc = NULL;
    a->head = NULL;
    a->next_size = 0;
    a->used_bytes = 0;
    a->fixed = 1;
    if (!mem || size < 64 || size - (size_t)(q - p) < AK__BLOCK_HDR + AK__ALIGN)
        return AK_ERR_INVALID_ARGUMENT;
    b = (ak_arena_block *)q;
    b->prev = NULL;
    b->size = size - (size_t)(q - p) - AK__BLOCK_HDR;
    b->used = 0;
    b->owned = 0;
    a->head = b;
    return AK_OK;
}

AK_PRIVATE ak_arena_block *ak__arena_grow(ak_arena *a, size_t need) {
    size_t size = AK__MAX(a->next_size, need), total;
    ak_arena_block *b;
    if (a->fixed || !ak__add_ok(size, AK__BLOCK_HDR, &total)) return NULL;
    b = (ak_arena_block *)ak_alloc(a->alloc, total);
    if (!b) return NULL;
    b->prev = a->head;
    b->size = size;
    b->used = 0;
    b->owned = 1;
    a->head = b;
    if (a->next_size < ((size_t)1 << 20)) a->next_size *= 2;
    return b;
}

AKDEF void *ak_arena_alloc(ak_arena *a, size_t size) {
    ak_arena_block *b = a->head;
    size_t n = AK__ALIGN_UP(size ? size : 1);
    void *p;
    if (n < size) return NULL; /* overflow */
    if (!b || b->size - b->used < n) {
        b = ak__arena_grow(a, n);
        if (!b) return NULL;
    }
    p = AK__BLOCK_DATA(b) + b->used;
    b->used += n;
    a->used_bytes += n;
    return p;
}

AKDEF void *ak_arena_zalloc(ak_arena *a, size_t size) {
    void *p = ak_arena_alloc(a, size);
    if (p) AK_MEMSET(p, 0, size);
    return p;
}

AKDEF char *ak_arena_strdup(ak_arena *a, const char *s, size_t len) {
    char *p;
    if (len == (size_t)-1) return NULL;
    p = (char *)ak_arena_alloc(a, len + 1);
    if (!p) return NULL;
    if (len) AK_MEMCPY(p, s, len);
    p[len] = 0;
    return p;
}

AKDEF ak_arena_mark ak_arena_save(const ak_arena *a) {
    ak_arena_mark m;
    m.block = a->head;
    m.used = a->head ? a->head->used : 0;
    m.used_bytes = a->used_bytes;
    return m;
}

/* Blocks were given back: the next one is sized from the newest block left, as when that
   block was made, so an arena reset every turn does not grow its blocks turn after turn. */
AK_PRIVATE void ak__arena_rewind(ak_arena *a) {
    if (a->head && !a->fixed && a->head->size < ((size_t)1 << 20)) a->next_size = a->head->size * 2;
}

AKDEF void ak_arena_restore(ak_arena *a, ak_arena_mark m) {
    while (a->head && a->head != m.block) {
        ak_arena_block *b = a->head;
        a->head = b->prev;
        if (b->owned) ak_free(a->alloc, b, AK__BLOCK_HDR + b->size);
    }
    if (a->head) a->head->used = m.used;
    a->used_bytes = m.used_bytes;
    ak__arena_rewind(a);
}

AKDEF void ak_arena_reset(ak_arena *a) {
    ak_arena_block *first = a->head;
    while (first && first->prev) first = first->prev;
    /* Keep the oldest block: the one a fixed arena lives in, or a warm block to reuse. */
    while (a->head && a->head != first) {
        ak_arena_block *b = a->head;
        a->head = b->prev;
        if (b->owned) ak_free(a->alloc, b, AK__BLOCK_HDR + b->size);
    }
    if (a->head) a->head->used = 0;
    a->used_bytes = 0;
    ak__arena_rewind(a);
}

AKDEF void ak_arena_free(ak_arena *a) {
    while (a->head) {
        ak_arena_block *b = a->head;
        a->head = b->prev;
        if (b->owned) ak_free(a->alloc, b, AK__BLOCK_HDR + b->size);
    }
    a->used_bytes = 0;
}

AKDEF size_t ak_arena_capacity(const ak_arena *a) {
    const ak_arena_block *b;
    size_t n = 0;
    for (b = a->head; b; b = b->prev) n += b->size;
    return n;
}

/* ---- buffer --------------------------------------------------------------------------- */

AKDEF void ak_buf_init(ak_buf *b, const ak_allocator *alloc) {
    b->ptr = NULL;
    b->len = b->cap = b->max = 0;
    b->alloc = alloc;
    b->err = AK_OK;
    b->fixed = 0;
}

AKDEF void ak_buf_init_fixed(ak_buf *b, void *mem, size_t cap) {
    ak_buf_init(b, NULL);
    b->fixed = 1;
    if (!mem || !cap) {
        b->err = AK_ERR_OUT_OF_MEMORY;
        return;
    }
    b->ptr = (char *)mem;
    b->cap = cap;
    b->ptr[0] = 0;
}

AKDEF void ak_buf_free(ak_buf *b) {
    if (!b->fixed) ak_free(b->alloc, b->ptr, b->cap);
    if (!b->fixed) b->ptr = NULL, b->cap = 0;
    b->len = 0;
    b->err = AK_OK;
}

AKDEF void ak_buf_clear(ak_buf *b) {
    b->len = 0;
    b->err = AK_OK;
    if (b->ptr) b->ptr[0] = 0;
}

AKDEF ak_result ak_buf_reserve(ak_buf *b, size_t extra) {
    size_t need, cap;
    char *p;
    if (b->err) return b->err;
    if (!ak__add_ok(b->len, extra, &need) || !ak__add_ok(need, 1, &need))
        return b->err = AK_ERR_OUT_OF_MEMORY;
    if (b->max && need > b->max + 1) return b->err = AK_ERR_LIMIT;
    if (need <= b->cap) return AK_OK;
    if (b->fixed) return b->err = AK_ERR_OUT_OF_MEMORY;
    cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
    if (b->max && cap > b->max + 1) cap = b->max + 1;
    p = (char *)ak_realloc(b->alloc, b->ptr, b->cap, cap);
    if (!p) return b->err = AK_ERR_OUT_OF_MEMORY;
    b->ptr = p;
    b->cap = cap;
    return AK_OK;
}

AKDEF void ak_buf_append(ak_buf *b, const void *p, size_t n) {
    if (b->err) return;
    if (ak_buf_reserve(b, n) != AK_OK) {
        /* A fixed buffer keeps what fits, so cut error messages stay readable. */
        if (b->fixed && b->cap > b->len + 1) {
            size_t room = b->cap - b->len - 1, back = 0;
            /* ...and cut between characters, so valid UTF-8 stays valid */
            while (back < 3 && back < room && (AK__U8(((const char *)p)[room - back]) & 0xC0) == 0x80) back++;
            if ((AK__U8(((const char *)p)[room - back]) & 0xC0) != 0x80) room -= back;
            AK_MEMCPY(b->ptr + b->len, p, room);
            b->len += room;
            b->ptr[b->len] = 0;
        }
        return;
    }
    if (n) AK_MEMCPY(b->ptr + b->len, p, n);
    b->len += n;
    b->ptr[b->len] = 0;
}

AKDEF void ak_buf_puts(ak_buf *b, const char *s) { ak_buf_append(b, s, ak__strlen(s)); }

AKDEF void ak_buf_putc(ak_buf *b, char c) {
    if (b->err == AK_OK && b->len + 1 < b->cap) { /* fast path */
        b->ptr[b->len++] = c;
        b->ptr[b->len] = 0;
        return;
    }
    ak_buf_append(b, &c, 1);
}

AKDEF void ak_buf_put_u64(ak_buf *b, uint64_t v) { ak__put_uint(b, v, 10); }

AKDEF void ak_buf_put_i64(ak_buf *b, int64_t v) {
    if (v < 0) {
        ak_buf_putc(b, '-');
        ak__put_uint(b, (uint64_t)0 - (uint64_t)v, 10);
    } else {
        ak__put_uint(b, (uint64_t)v, 10);
    }
}

AKDEF void ak_buf_printf(ak_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ak__vfmt(b, fmt, ap);
    va_end(ap);
}

AKDEF void ak_buf_consume(ak_buf *b, size_t n) {
    if (n >= b->len) {
        ak_buf_clear(b);
        return;
    }
    AK_MEMMOVE(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
    b->ptr[b->len] = 0;
}

AKDEF char *ak_buf_take(ak_buf *b, size_t *len, size_t *cap) {
    char *p = b->ptr;
    if (len) *len = b->len;
    if (cap) *cap = b->cap;
    b->ptr = NULL;
    b->len = b->cap = 0;
    return p;
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

AKDEF size_t ak_utf8_decode(const char *s, size_t len, uint32_t *cp) {
    const unsigned char *p = (const unsigned char *)s;
    uint32_t c;
    size_t n, i;
    if (!len) return 0;
    c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2) return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0) n = 2, c &= 0x1F;
    else if (c < 0xF0) n = 3, c &= 0x0F;
    else if (c < 0xF5) n = 4, c &= 0x07;
    else return 0;
    if (len < n) return 0;
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF))) return 0;
    if (c >= 0xD800 && c <= 0xDFFF) return 0;
    *cp = c;
    return n;
}

AKDEF size_t ak_utf8_valid_prefix(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n;
        /* ASCII runs are the common case: skip eight bytes at a time. */
        while (i + 8 <= len) {
            uint32_t w0, w1;
            AK_MEMCPY(&w0, s + i, 4);
            AK_MEMCPY(&w1, s + i + 4, 4);
            if ((w0 | w1) & 0x80808080u) break;
            i += 8;
        }
        if (i >= len) break;
        if (AK__U8(s[i]) < 0x80) {
            i++;
            continue;
        }
        n = ak_utf8_decode(s + i, len - i, &cp);
        if (!n) return i;
        i += n;
    }
    return len;
}

AKDEF int ak_utf8_valid(const char *s, size_t len) { return ak_utf8_valid_prefix(s, len) == len; }

AKDEF size_t ak_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) return 0;
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

AKDEF void ak_utf8_sanitize(ak_buf *b, const char *s, size_t len) {
    while (len) {
        size_t ok = ak_utf8_valid_prefix(s, len);
        ak_buf_append(b, s, ok);
        s += ok, len -= ok;
        if (len) {
            /* One replacement per maximal invalid subpart, as WHATWG decoders do. */
            size_t skip = 1;
            unsigned char c = AK__U8(s[0]);
            size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 1;
            while (skip < want && skip < len && (AK__U8(s[skip]) & 0xC0) == 0x80) {
                /* stop where the sequence stops being a valid prefix */
                unsigned char s1 = AK__U8(s[1]);
                if (skip == 1 && ((c == 0xE0 && s1 < 0xA0) || (c == 0xED && s1 > 0x9F) ||
                                  (c == 0xF0 && s1 < 0x90) || (c == 0xF4 && s1 > 0x8F) ||
                                  c > 0xF4))
                    break;
                skip++;
            }
            ak_buf_append(b, "\xEF\xBF\xBD", 3);
            s += skip, len -= skip;
        }
    }
}
