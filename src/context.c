/* >>context: default platform hooks (clock, random), ids, timestamps, logging */

#include "base.c"

#if !defined(AK_FREESTANDING) && !defined(AK_NO_PLATFORM)
#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <bcrypt.h> /* link with -lbcrypt */
#define AK__HAVE_PLATFORM 1
#elif defined(__unix__) || defined(__unix) || defined(__APPLE__)
#if defined(__linux__) && defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
#include <sys/random.h>
#define AK__HAVE_GETRANDOM 1
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
#define AK__HAVE_ARC4RANDOM 1 /* arc4random_buf, declared in <stdlib.h> */
#endif
#define AK__HAVE_PLATFORM 1
#endif
#endif

#ifdef AK__HAVE_PLATFORM
#if defined(_WIN32)
AK_PRIVATE int64_t ak__platform_now_ms(void *ud) {
    FILETIME ft;
    uint64_t t;
    AK__UNUSED(ud);
    GetSystemTimeAsFileTime(&ft);
    t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime; /* 100 ns since 1601 */
    return (int64_t)(t / 10000u) - INT64_C(11644473600000);
}

AK_PRIVATE int64_t ak__platform_mono_ms(void *ud) {
    AK__UNUSED(ud);
    return (int64_t)GetTickCount64();
}

AK_PRIVATE void ak__platform_sleep(int64_t ms) { Sleep((DWORD)ms); }

AK_PRIVATE ak_result ak__platform_random(void *ud, void *buf, size_t len) {
    AK__UNUSED(ud);
    while (len) {
        ULONG n = len > 0x10000000u ? 0x10000000u : (ULONG)len;
        if (BCryptGenRandom(NULL, (PUCHAR)buf, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return AK_ERR_NO_RANDOM;
        buf = (char *)buf + n, len -= n;
    }
    return AK_OK;
}
#else
AK_PRIVATE int64_t ak__clock_ms(int monotonic) {
#if defined(CLOCK_MONOTONIC) && defined(CLOCK_REALTIME)
    struct timespec ts;
    if (clock_gettime(monotonic ? CLOCK_MONOTONIC : CLOCK_REALTIME, &ts) == 0)
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#elif defined(TIME_UTC)
    struct timespec ts;
    if (timespec_get(&ts, TIME_UTC) == TIME_UTC)
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#endif
    AK__UNUSED(monotonic);
    return (int64_t)time(NULL) * 1000;
}

AK_PRIVATE int64_t ak__platform_now_ms(void *ud) {
    AK__UNUSED(ud);
    return ak__clock_ms(0);
}

AK_PRIVATE void ak__platform_sleep(int64_t ms) {
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
#else
    int64_t end = ak__clock_ms(1) + ms;
    while (ak__clock_ms(1) < end) {
    }
#endif
}

AK_PRIVATE int64_t ak__platform_mono_ms(void *ud) {
    AK__UNUSED(ud);
    return ak__clock_ms(1);
}

AK_PRIVATE ak_result ak__platform_random(void *ud, void *buf, size_t len) {
    unsigned char *p = (unsigned char *)buf;
    AK__UNUSED(ud);
#if defined(AK__HAVE_GETRANDOM)
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n <= 0) return AK_ERR_NO_RANDOM; /* EINTR only interrupts > 256 bytes */
        p += n, len -= (size_t)n;
    }
    return AK_OK;
#elif defined(AK__HAVE_ARC4RANDOM)
    arc4random_buf(p, len);
    return AK_OK;
#else
    {
        /* The kernel's CSPRNG through the file system: still the OS source, not a weak one. */
        FILE *f = fopen("/dev/urandom", "rb");
        size_t got;
        if (!f) return AK_ERR_NO_RANDOM;
        got = fread(p, 1, len, f);
        fclose(f);
        return got == len ? AK_OK : AK_ERR_NO_RANDOM;
    }
#endif
}
#endif
#endif /* AK__HAVE_PLATFORM */

/* The context's allocator wraps the caller's to count bytes and enforce the budget. */
AK_PRIVATE int ak__budget_ok(ak_context *c, size_t add) {
    return !c->desc.memory_budget || (c->mem_in_use <= c->desc.memory_budget &&
                                      add <= c->desc.memory_budget - c->mem_in_use);
}

AK_PRIVATE void ak__ctx_account(ak_context *c, size_t add, size_t sub) {
    c->mem_in_use = c->mem_in_use - sub + add;
    if (c->mem_in_use > c->mem_peak) c->mem_peak = c->mem_in_use;
}

AK_PRIVATE const ak_allocator *ak__ctx_inner(ak_context *c) {
    return c->desc.allocator.alloc ? &c->desc.allocator : NULL;
}

AK_PRIVATE void *ak__ctx_alloc(void *ud, size_t size) {
    ak_context *c = (ak_context *)ud;
    void *p;
    if (!ak__budget_ok(c, size)) return NULL;
    p = ak_alloc(ak__ctx_inner(c), size);
    if (p) ak__ctx_account(c, size, 0), c->alloc_count++;
    return p;
}

AK_PRIVATE void *ak__ctx_realloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    ak_context *c = (ak_context *)ud;
    void *p;
    if (new_size > old_size && !ak__budget_ok(c, new_size - old_size)) return NULL;
    p = ak_realloc(ak__ctx_inner(c), ptr, old_size, new_size);
    if (p) ak__ctx_account(c, new_size, old_size), c->alloc_count++;
    return p;
}

AK_PRIVATE void ak__ctx_free(void *ud, void *ptr, size_t size) {
    ak_context *c = (ak_context *)ud;
    ak_free(ak__ctx_inner(c), ptr, size);
    ak__ctx_account(c, 0, size);
}

AKDEF ak_result ak_context_init(ak_context *ctx, const ak_context_desc *desc) {
    AK_MEMSET(ctx, 0, sizeof *ctx);
    if (desc) ctx->desc = *desc;
#ifndef AK_MALLOC
    if (!ctx->desc.allocator.alloc) return AK_ERR_INVALID_ARGUMENT;
#endif
    if (ctx->desc.allocator.alloc &&
        (!ctx->desc.allocator.realloc || !ctx->desc.allocator.free))
        return AK_ERR_INVALID_ARGUMENT;
    ctx->alloc.alloc = ak__ctx_alloc;
    ctx->alloc.realloc = ak__ctx_realloc;
    ctx->alloc.free = ak__ctx_free;
    ctx->alloc.ud = ctx;
    return AK_OK;
}

AKDEF const ak_allocator *ak_context_allocator(ak_context *ctx) { return &ctx->alloc; }

AKDEF int64_t ak_now_ms(ak_context *ctx) {
    if (ctx->desc.now_ms) return ctx->desc.now_ms(ctx->desc.user_data);
#ifdef AK__HAVE_PLATFORM
    return ak__platform_now_ms(NULL);
#else
    return 0;
#endif
}

AKDEF int64_t ak_mono_ms(ak_context *ctx) {
    if (ctx->desc.mono_ms) return ctx->desc.mono_ms(ctx->desc.user_data);
    if (ctx->desc.now_ms) return ctx->desc.now_ms(ctx->desc.user_data);
#ifdef AK__HAVE_PLATFORM
    return ak__platform_mono_ms(NULL);
#else
    return 0;
#endif
}

AKDEF ak_result ak_random(ak_context *ctx, void *buf, size_t len) {
    if (ctx->desc.random) return ctx->desc.random(ctx->desc.user_data, buf, len);
#ifdef AK__HAVE_PLATFORM
    return ak__platform_random(NULL, buf, len);
#else
    AK__UNUSED(buf), AK__UNUSED(len);
    return AK_ERR_NO_RANDOM;
#endif
}

AKDEF void ak_sleep_ms(ak_context *ctx, int64_t ms) {
    if (ms <= 0) return;
    if (ctx->desc.sleep_ms) {
        ctx->desc.sleep_ms(ctx->desc.user_data, ms);
        return;
    }
#ifdef AK__HAVE_PLATFORM
    ak__platform_sleep(ms);
#else
    {
        int64_t end = ak_mono_ms(ctx) + ms;
        while (ak_mono_ms(ctx) < end) {
        }
    }
#endif
}

/* 16 random bytes as a version 4 UUID. */
AK_PRIVATE void ak__uuid_format(unsigned char r[16], char out[37]) {
    static const char hex[] = "0123456789abcdef";
    int i, o = 0;
    r[6] = (unsigned char)((r[6] & 0x0F) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[r[i] >> 4];
        out[o++] = hex[r[i] & 15];
    }
    out[o] = 0;
}

AKDEF ak_result ak_uuid4(ak_context *ctx, char out[37]) {
    return ak_uuid4_pair(ctx, out, NULL);
}

AKDEF ak_result ak_uuid4_pair(ak_context *ctx, char a[37], char b[37]) {
    unsigned char r[32];
    ak_result rc = ak_random(ctx, r, b ? 32 : 16);
    a[0] = 0;
    if (b) b[0] = 0;
    if (rc != AK_OK) return rc;
    ak__uuid_format(r, a);
    if (b) ak__uuid_format(r + 16, b);
    return AK_OK;
}

/* Days since 1970-01-01 to a civil date (the proleptic Gregorian algorithm by H. Hinnant). */
AK_PRIVATE void ak__civil(int64_t days, int *y, unsigned *m, unsigned *d) {
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

AKDEF void ak_iso8601(int64_t ms, char out[25]) {
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rem = ms - days * 86400000;
    unsigned mon, day, v[7];
    int year, i, o = 0;
    static const int width[7] = {4, 2, 2, 2, 2, 2, 3};
    static const char sep[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
    ak__civil(days, &year, &mon, &day);
    if (year < 0) year = 0;
    if (year > 9999) year = 9999;
    v[0] = (unsigned)year, v[1] = mon, v[2] = day;
    v[3] = (unsigned)(rem / 3600000), v[4] = (unsigned)(rem / 60000 % 60);
    v[5] = (unsigned)(rem / 1000 % 60), v[6] = (unsigned)(rem % 1000);
    for (i = 0; i < 7; i++) {
        unsigned x = v[i], div = width[i] == 4 ? 1000 : width[i] == 3 ? 100 : 10;
        for (; div; div /= 10) out[o++] = (char)('0' + x / div % 10);
        out[o++] = sep[i];
    }
    out[o] = 0;
}

AKDEF void ak_log(ak_context *ctx, ak_log_level level, const char *fmt, ...) {
    char msg[512];
    ak_buf b;
    va_list ap;
    if (!ctx || !ctx->desc.log || level < ctx->desc.log_level) return;
    ak_buf_init_fixed(&b, msg, sizeof msg);
    va_start(ap, fmt);
    ak__vfmt(&b, fmt, ap);
    va_end(ap);
    ctx->desc.log(ctx->desc.user_data, level, msg);
}
