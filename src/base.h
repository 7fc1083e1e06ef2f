/* >>base: configuration, results, errors, allocator, arena, buffer, UTF-8, context */

#define AK_VERSION_MAJOR 0
#define AK_VERSION_MINOR 1
#define AK_VERSION_PATCH 0
#define AK_VERSION_NUM 0x000100
#define AK_VERSION_STRING "0.1.0"

/* Options that change struct layout must be identical in every translation unit, so they
   belong in one config header named by AK_CONFIG_FILE. */
#ifdef AK_CONFIG_FILE
#include AK_CONFIG_FILE /* amalgamate: keep */
#endif

/* A strict ISO build (-std=c99) hides clock_gettime; the implementation needs POSIX 2008.
   Only set when nothing chose feature macros already. */
#if defined(AGENTKIT_IMPLEMENTATION) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && \
    !defined(_GNU_SOURCE) && !defined(_XOPEN_SOURCE) && !defined(_WIN32) && !defined(AK_FREESTANDING)
#define _POSIX_C_SOURCE 200809L
#endif

#include <stddef.h>
#include <stdint.h>

#ifndef AKDEF
#ifdef AK_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define AKDEF static __attribute__((unused))
#else
#define AKDEF static
#endif
#else
#define AKDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Size of the message buffer in ak_error. */
#ifndef AK_ERROR_MAX
#define AK_ERROR_MAX 240
#endif

/* ---------------------------------------------------------------------------------------
   Results. Zero is success, AK_PENDING means "not finished: pump again later", negative
   values are errors grouped in bands of 100 by layer. ak_result_str() names each one.
   --------------------------------------------------------------------------------------- */
typedef enum ak_result {
    AK_OK = 0,
    AK_PENDING = 1,

    /* generic */
    AK_ERR_INVALID_ARGUMENT = -1, /* a parameter is wrong (API misuse) */
    AK_ERR_OUT_OF_MEMORY = -2,    /* allocator, arena or memory budget exhausted */
    AK_ERR_LIMIT = -3,            /* a configured size, count or depth limit was hit */
    AK_ERR_NOT_FOUND = -4,
    AK_ERR_UNSUPPORTED = -5,      /* not compiled in, or not available on this platform */
    AK_ERR_STATE = -6,            /* the call is not valid in the object's current state */
    AK_ERR_IO = -7,
    AK_ERR_CANCELLED = -8,
    AK_ERR_TIMEOUT = -9,
    AK_ERR_NO_RANDOM = -10,       /* no cryptographic random source: set ak_context_desc.random */
    AK_ERR_INTERNAL = -11,
    AK_ERR_ALREADY_EXISTS = -12,

    /* JSON */
    AK_ERR_JSON_SYNTAX = -100,
    AK_ERR_JSON_DEPTH = -101,
    AK_ERR_JSON_UTF8 = -102,      /* invalid UTF-8 or a lone surrogate escape */
    AK_ERR_JSON_TYPE = -103,      /* value has another type than the one asked for */
    AK_ERR_JSON_POINTER = -104,   /* malformed JSON Pointer, or it names nothing */
    AK_ERR_JSON_PATCH = -105,     /* malformed patch operation or one that cannot apply */
    AK_ERR_JSON_TEST = -106,      /* a patch "test" operation did not match */
    AK_ERR_SCHEMA = -107,         /* value does not match its JSON Schema */

    /* streams and transport */
    AK_ERR_STREAM = -200,         /* malformed event stream or line too long */
    AK_ERR_HTTP = -201,           /* malformed HTTP message */
    AK_ERR_CONNECT = -202,        /* could not resolve or connect */
    AK_ERR_TLS = -203,            /* handshake or certificate failure */
    AK_ERR_CLOSED = -204,         /* peer closed or reset the connection */
    AK_ERR_TRUNCATED = -205,      /* body or stream ended before its end marker */
    AK_ERR_HTTP_STATUS = -206,    /* the server answered with an error status */

    /* models */
    AK_ERR_MODEL = -300,          /* the model call failed; ak_error.status says how */

    /* sessions and stores */
    AK_ERR_STORE = -400,          /* the store failed; ak_error.status says how */
    AK_ERR_DATA_LOSS = -401,      /* stored data is corrupt or truncated */

    /* agents */
    AK_ERR_AGENT = -500           /* a Genkit-status error from the agent layer */
} ak_result;

/* Genkit's canonical statuses (gRPC codes). */
typedef enum ak_status {
    AK_STATUS_OK = 0,
    AK_STATUS_CANCELLED = 1,
    AK_STATUS_UNKNOWN = 2,
    AK_STATUS_INVALID_ARGUMENT = 3,
    AK_STATUS_DEADLINE_EXCEEDED = 4,
    AK_STATUS_NOT_FOUND = 5,
    AK_STATUS_ALREADY_EXISTS = 6,
    AK_STATUS_PERMISSION_DENIED = 7,
    AK_STATUS_RESOURCE_EXHAUSTED = 8,
    AK_STATUS_FAILED_PRECONDITION = 9,
    AK_STATUS_ABORTED = 10,
    AK_STATUS_OUT_OF_RANGE = 11,
    AK_STATUS_UNIMPLEMENTED = 12,
    AK_STATUS_INTERNAL = 13,
    AK_STATUS_UNAVAILABLE = 14,
    AK_STATUS_DATA_LOSS = 15,
    AK_STATUS_UNAUTHENTICATED = 16
} ak_status;

AKDEF const char *ak_result_str(ak_result r);          /* static text, never NULL */
AKDEF ak_status ak_result_status(ak_result r);         /* the status a result maps to */
AKDEF const char *ak_status_name(ak_status s);          /* "NOT_FOUND"; "UNKNOWN" if out of range */
AKDEF int ak_status_http(ak_status s);                  /* 404 for NOT_FOUND, ... */
AKDEF ak_status ak_status_from_name(const char *name, size_t len); /* UNKNOWN if unrecognised */
AKDEF ak_status ak_status_from_http(int code);          /* 429 -> RESOURCE_EXHAUSTED, ... */

/* Error detail, owned by the caller; every function taking one accepts NULL. Filled only on
   failure. The message is always NUL-terminated and never needs freeing. */
typedef struct ak_error {
    ak_result code;
    ak_status status;
    size_t offset;              /* byte offset into the input, when the error has one */
    char message[AK_ERROR_MAX];
} ak_error;

/* Clears e (e may be NULL). */
AKDEF void ak_error_clear(ak_error *e);
/* Fills e with a formatted message (printf subset: %s %.*s %d %u %ld %lu %lld %llu %zu
   %x %c %%) and returns code. Status defaults to ak_result_status(code). */
AKDEF ak_result ak_error_set(ak_error *e, ak_result code, const char *fmt, ...);
AKDEF ak_result ak_error_setst(ak_error *e, ak_result code, ak_status st, const char *fmt, ...);

/* ---------------------------------------------------------------------------------------
   Allocator. Every byte the library uses comes from one of these. Sizes are always passed
   back on realloc and free, which makes pool and arena backends possible. A NULL
   `const ak_allocator *` means the default (AK_MALLOC/AK_REALLOC/AK_FREE, malloc by
   default); in AK_FREESTANDING builds there is no default and NULL fails allocations.
   --------------------------------------------------------------------------------------- */
typedef struct ak_allocator {
    void *(*alloc)(void *ud, size_t size);
    void *(*realloc)(void *ud, void *ptr, size_t old_size, size_t new_size);
    void (*free)(void *ud, void *ptr, size_t size);
    void *ud;
} ak_allocator;

AKDEF void *ak_alloc(const ak_allocator *a, size_t size);
AKDEF void *ak_realloc(const ak_allocator *a, void *ptr, size_t old_size, size_t new_size);
AKDEF void ak_free(const ak_allocator *a, void *ptr, size_t size);

/* ---------------------------------------------------------------------------------------
   Arena: bump allocation from caller memory (fixed) or from allocator-backed blocks that
   grow geometrically. Exhaustion returns NULL and never falls back to malloc. Everything
   allocated is released together by reset/free, or back to a mark.
   --------------------------------------------------------------------------------------- */
typedef struct ak_arena_block ak_arena_block;

typedef struct ak_arena {
    const ak_allocator *alloc; /* NULL and fixed: caller memory only */
    ak_arena_block *head;      /* current block; older blocks chain through prev */
    size_t next_size;          /* size of the next block to allocate */
    size_t used_bytes;         /* bytes handed out (statistics) */
    int fixed;                 /* 1: memory came from ak_arena_init_fixed */
} ak_arena;

typedef struct ak_arena_mark {
    ak_arena_block *block;
    size_t used;
    size_t used_bytes;
} ak_arena_mark;

/* Allocator-backed arena. first_block 0 = 1 KiB; blocks double up to 1 MiB. */
AKDEF void ak_arena_init(ak_arena *a, const ak_allocator *alloc, size_t first_block);
/* Arena on caller memory (at least 64 bytes, any alignment). Never allocates. */
AKDEF ak_result ak_arena_init_fixed(ak_arena *a, void *mem, size_t size);
AKDEF void *ak_arena_alloc(ak_arena *a, size_t size);          /* 8-byte aligned, or NULL */
AKDEF void *ak_arena_zalloc(ak_arena *a, size_t size);         /* zeroed */
AKDEF char *ak_arena_strdup(ak_arena *a, const char *s, size_t len); /* NUL-terminated copy */
AKDEF ak_arena_mark ak_arena_save(const ak_arena *a);
AKDEF void ak_arena_restore(ak_arena *a, ak_arena_mark m);    /* frees blocks made since m */
AKDEF void ak_arena_reset(ak_arena *a);                       /* keeps the first block */
AKDEF void ak_arena_free(ak_arena *a);
/* Bytes the arena holds in its blocks (used or not). */
AKDEF size_t ak_arena_capacity(const ak_arena *a);

/* ---------------------------------------------------------------------------------------
   Growable byte buffer / string builder. Always NUL-terminated when ptr is non-NULL. Errors
   are sticky: appends after a failure do nothing, and `err` says what went wrong, so a
   sequence of appends needs one check at the end.
   --------------------------------------------------------------------------------------- */
typedef struct ak_buf {
    char *ptr;
    size_t len;
    size_t cap;
    size_t max;                /* 0 = unlimited; growing beyond it fails with AK_ERR_LIMIT */
    const ak_allocator *alloc;
    ak_result err;
    int fixed;                 /* memory from ak_buf_init_fixed: never grown or freed */
} ak_buf;

AKDEF void ak_buf_init(ak_buf *b, const ak_allocator *alloc);
AKDEF void ak_buf_init_fixed(ak_buf *b, void *mem, size_t cap);
AKDEF void ak_buf_free(ak_buf *b);
AKDEF void ak_buf_clear(ak_buf *b);                      /* len = 0, keeps memory */
AKDEF ak_result ak_buf_reserve(ak_buf *b, size_t extra);  /* room for extra more bytes */
AKDEF void ak_buf_append(ak_buf *b, const void *p, size_t n);
AKDEF void ak_buf_puts(ak_buf *b, const char *s);
AKDEF void ak_buf_putc(ak_buf *b, char c);
AKDEF void ak_buf_put_i64(ak_buf *b, int64_t v);
AKDEF void ak_buf_put_u64(ak_buf *b, uint64_t v);
AKDEF void ak_buf_printf(ak_buf *b, const char *fmt, ...); /* the ak_error_set subset */
AKDEF void ak_buf_consume(ak_buf *b, size_t n);          /* drop n bytes from the front */
/* Hands the memory to the caller (free it with ak_free(alloc, p, *cap)); b becomes empty. */
AKDEF char *ak_buf_take(ak_buf *b, size_t *len, size_t *cap);

/* ---------------------------------------------------------------------------------------
   UTF-8.
   --------------------------------------------------------------------------------------- */
/* Returns the length of the longest valid UTF-8 prefix of s (== len when all valid).
   Overlong forms, surrogates and code points above U+10FFFF are invalid. */
AKDEF size_t ak_utf8_valid_prefix(const char *s, size_t len);
AKDEF int ak_utf8_valid(const char *s, size_t len);
/* Decodes one code point at s[0..len). Returns bytes used (1..4), or 0 when invalid or
   incomplete; *cp is set only on success. */
AKDEF size_t ak_utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Encodes cp into out (room for 4 bytes). Returns bytes written, 0 for an invalid cp. */
AKDEF size_t ak_utf8_encode(uint32_t cp, char *out);
/* Appends s to b with every invalid sequence replaced by U+FFFD. */
AKDEF void ak_utf8_sanitize(ak_buf *b, const char *s, size_t len);

/* ---------------------------------------------------------------------------------------
   Context: the allocator, clocks, random source and logger every higher object uses.
   No globals: several contexts may live in one process. A context and the objects made
   from it are used by one thread at a time.
   --------------------------------------------------------------------------------------- */
typedef enum ak_log_level {
    AK_LOG_DEBUG = 0,
    AK_LOG_INFO = 1,
    AK_LOG_WARN = 2,
    AK_LOG_ERROR = 3
} ak_log_level;

typedef struct ak_context_desc {
    ak_allocator allocator;      /* zero = default malloc family (required when freestanding) */
    size_t memory_budget;        /* 0 = unlimited; beyond it allocations fail cleanly */
    /* Wall clock, milliseconds since the Unix epoch. NULL = the platform clock. */
    int64_t (*now_ms)(void *ud);
    /* Monotonic clock in milliseconds, for timeouts and backoff. NULL = platform clock. */
    int64_t (*mono_ms)(void *ud);
    /* Cryptographic random bytes. NULL = getrandom/arc4random/BCryptGenRandom. Ids are
       never made from a weak source: without one, id generation fails with
       AK_ERR_NO_RANDOM. */
    ak_result (*random)(void *ud, void *buf, size_t len);
    /* Sleep for ms milliseconds; used only by blocking convenience calls (waiting out a
       retry delay). NULL = the platform's sleep; freestanding builds without one spin on
       mono_ms. */
    void (*sleep_ms)(void *ud, int64_t ms);
    /* Log sink; NULL = silent. Secrets (API keys) are never passed here. */
    void (*log)(void *ud, ak_log_level level, const char *msg);
    ak_log_level log_level;      /* minimum level passed to log (default DEBUG) */
    void *user_data;             /* passed as ud to the four hooks above */
} ak_context_desc;

typedef struct ak_context {
    ak_context_desc desc;
    ak_allocator alloc;          /* what objects use: the caller's, wrapped for accounting */
    size_t mem_in_use;
    size_t mem_peak;
    size_t alloc_count;          /* number of successful allocations (statistics) */
} ak_context;

/* desc may be NULL (all defaults). Fails only for a freestanding build without allocator. */
AKDEF ak_result ak_context_init(ak_context *ctx, const ak_context_desc *desc);
AKDEF const ak_allocator *ak_context_allocator(ak_context *ctx);
AKDEF int64_t ak_now_ms(ak_context *ctx);
AKDEF int64_t ak_mono_ms(ak_context *ctx);
AKDEF ak_result ak_random(ak_context *ctx, void *buf, size_t len);
AKDEF void ak_sleep_ms(ak_context *ctx, int64_t ms);
/* Writes a random (v4) UUID, 36 chars + NUL, into out. */
AKDEF ak_result ak_uuid4(ak_context *ctx, char out[37]);
/* Two of them (b may be NULL) from one read of the random source: a system call saved. */
AKDEF ak_result ak_uuid4_pair(ak_context *ctx, char a[37], char b[37]);
/* Formats ms since the epoch as ISO-8601 with milliseconds and Z, 24 chars + NUL. */
AKDEF void ak_iso8601(int64_t ms, char out[25]);
AKDEF void ak_log(ak_context *ctx, ak_log_level level, const char *fmt, ...);

AKDEF const char *ak_version(void);

#ifdef __cplusplus
}
#endif
