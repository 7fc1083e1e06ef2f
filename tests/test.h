/* test.h - the unit-test harness: one binary per tests/test_*.c, one summary line each.
   A test is a function; it passes when none of its checks fail. The last line printed is
   "N passed, N failed", which tests/run.sh adds up. */
#ifndef AK_TEST_H
#define AK_TEST_H

#include "../agentkit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define T_UNUSED __attribute__((unused))
#else
#define T_UNUSED
#endif

static int t_passed, t_failed, t_current_failed;
static const char *t_current;

T_UNUSED static void t_fail_at(const char *file, int line, const char *what) {
    if (!t_current_failed) fprintf(stderr, "FAIL %s\n", t_current);
    fprintf(stderr, "  %s:%d: %s\n", file, line, what);
    t_current_failed = 1;
}

#define CHECK(cond) do { if (!(cond)) t_fail_at(__FILE__, __LINE__, #cond); } while (0)
#define CHECK_MSG(cond, ...) do { if (!(cond)) { char t_m_[512]; snprintf(t_m_, sizeof t_m_, __VA_ARGS__); \
    t_fail_at(__FILE__, __LINE__, t_m_); } } while (0)
#define CHECK_EQ(a, b) do { long long t_a_ = (long long)(a), t_b_ = (long long)(b); if (t_a_ != t_b_) { \
    char t_m_[256]; snprintf(t_m_, sizeof t_m_, "%s == %s (%lld vs %lld)", #a, #b, t_a_, t_b_); \
    t_fail_at(__FILE__, __LINE__, t_m_); } } while (0)
#define CHECK_STR(a, b) do { const char *t_a_ = (a), *t_b_ = (b); \
    if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) { char t_m_[1024]; \
    snprintf(t_m_, sizeof t_m_, "%s == %s (\"%s\" vs \"%s\")", #a, #b, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); \
    t_fail_at(__FILE__, __LINE__, t_m_); } } while (0)
#define CHECK_OK(expr) do { ak_result t_r_ = (expr); if (t_r_ != AK_OK) { char t_m_[256]; \
    snprintf(t_m_, sizeof t_m_, "%s returned %d (%s)", #expr, (int)t_r_, ak_result_str(t_r_)); \
    t_fail_at(__FILE__, __LINE__, t_m_); } } while (0)

T_UNUSED static void t_run(const char *name, void (*fn)(void)) {
    t_current = name;
    t_current_failed = 0;
    fn();
    if (t_current_failed) t_failed++;
    else t_passed++;
}
#define RUN(fn) t_run(#fn, fn)

T_UNUSED static int t_summary(void) {
    printf("%d passed, %d failed\n", t_passed, t_failed);
    return t_failed ? 1 : 0;
}

/* Parses test JSON that must be valid into d; aborts (saying why) when it is not. */
T_UNUSED static ak_json *t_parse(ak_json_doc *d, const char *text) {
    ak_json *v = NULL;
    ak_error e;
    if (ak_json_parse_value(d, text, strlen(text), NULL, &v, &e) != AK_OK) {
        fprintf(stderr, "bad test JSON (%s): %s\n", e.message, text);
        abort();
    }
    return v;
}

/* Where ../shared is: $AK_SHARED, else ../shared relative to the repository root. */
T_UNUSED static const char *t_shared(void) {
    const char *s = getenv("AK_SHARED");
    return s && *s ? s : "../shared";
}

/* Reads a whole file; NULL if it cannot. Free with free(). */
T_UNUSED static char *t_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) buf[n] = 0, *len = (size_t)n;
    return buf;
}

/* An allocator that counts live bytes (leaks show as live != 0 at the end) and can fail the
   Nth allocation (fail_at = N, 1-based; 0 = never). */
typedef struct t_alloc {
    long long live, peak, count, fail_at;
    ak_allocator a;
} t_alloc;

T_UNUSED static void *t_alloc_fn(void *ud, size_t n) {
    t_alloc *t = (t_alloc *)ud;
    void *p;
    if (t->fail_at && ++t->count == t->fail_at) return NULL;
    if (!t->fail_at) t->count++;
    p = malloc(n);
    if (p) { t->live += (long long)n; if (t->live > t->peak) t->peak = t->live; }
    return p;
}
T_UNUSED static void *t_realloc_fn(void *ud, void *ptr, size_t old, size_t n) {
    t_alloc *t = (t_alloc *)ud;
    void *p;
    if (t->fail_at && ++t->count == t->fail_at) return NULL;
    if (!t->fail_at) t->count++;
    p = realloc(ptr, n);
    if (p) { t->live += (long long)n - (long long)old; if (t->live > t->peak) t->peak = t->live; }
    return p;
}
T_UNUSED static void t_free_fn(void *ud, void *ptr, size_t n) {
    t_alloc *t = (t_alloc *)ud;
    free(ptr);
    t->live -= (long long)n;
}
T_UNUSED static const ak_allocator *t_alloc_init(t_alloc *t, long long fail_at) {
    memset(t, 0, sizeof *t);
    t->fail_at = fail_at;
    t->a.alloc = t_alloc_fn;
    t->a.realloc = t_realloc_fn;
    t->a.free = t_free_fn;
    t->a.ud = t;
    return &t->a;
}

#endif
