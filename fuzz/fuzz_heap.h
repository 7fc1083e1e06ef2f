/* fuzz_heap.h - the allocator the fuzz targets hand the library: it counts the bytes live
   (a target aborts when anything is still live after an input: a leak) and can fail one
   call, the fail_at-th (0 = none), so an input byte can put an allocation failure anywhere.
   Include it after agentkit.h. Not a target itself: fuzz/run.sh builds only fuzz_*.c. */
#ifndef FUZZ_HEAP_H
#define FUZZ_HEAP_H
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define FZ_UNUSED __attribute__((unused))
#else
#define FZ_UNUSED
#endif

typedef struct fz_heap {
    long long live, calls, fail_at; /* bytes live, allocation calls so far, the call to fail */
    ak_allocator a;                 /* filled by fz_heap_init; its ud is the heap */
} fz_heap;

FZ_UNUSED static void *fz_alloc(void *ud, size_t n) {
    fz_heap *h = (fz_heap *)ud;
    void *p;
    if (++h->calls == h->fail_at) return NULL;
    if ((p = malloc(n)) != NULL) h->live += (long long)n;
    return p;
}

FZ_UNUSED static void *fz_realloc(void *ud, void *ptr, size_t old, size_t n) {
    fz_heap *h = (fz_heap *)ud;
    void *p;
    if (++h->calls == h->fail_at) return NULL;
    if ((p = realloc(ptr, n)) != NULL) h->live += (long long)n - (long long)old;
    return p;
}

FZ_UNUSED static void fz_free(void *ud, void *ptr, size_t n) {
    fz_heap *h = (fz_heap *)ud;
    free(ptr);
    h->live -= (long long)n;
}

/* Empties h (nothing live, no calls yet), arms it to fail its fail_at-th call (0 = never)
   and returns its allocator, which points back at h: h must not move while in use. */
FZ_UNUSED static const ak_allocator *fz_heap_init(fz_heap *h, long long fail_at) {
    memset(h, 0, sizeof *h);
    h->fail_at = fail_at;
    h->a.alloc = fz_alloc, h->a.realloc = fz_realloc, h->a.free = fz_free, h->a.ud = h;
    return &h->a;
}

#endif
