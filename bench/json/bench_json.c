/* bench_json DIR: agentkit.h's JSON parser and writer side by side with cJSON on the
   nativejson-benchmark documents (twitter, citm_catalog, canada) in DIR. Prints parse and
   parse+write throughput (median of several runs, alternating the two libraries) and the
   peak live bytes each needs to hold the parsed document (counted through an allocator
   for agentkit.h, through cJSON_InitHooks for cJSON). */
#define AGENTKIT_IMPLEMENTATION
#include "../../agentkit.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 9            /* runs per measurement; the median is reported */
#define RUN_SECONDS 0.08  /* each run repeats the work for at least this long */

/* CPU time of this process: steadier than wall time on a shared machine, and it still
   counts the kernel's part (page faults of fresh memory). */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) free(buf), buf = NULL;
    fclose(f);
    if (buf) buf[n] = 0, *len = (size_t)n;
    return buf;
}

/* ---- the work being timed (one parse, or parse + write) --------------------------------- */

typedef struct job {
    const char *text;
    size_t len;
    int write;
} job;

static void ak_once(const job *j) {
    ak_json_doc d;
    ak_json_doc_init(&d, NULL);
    if (ak_json_parse(&d, j->text, j->len, NULL) != AK_OK) abort();
    if (j->write) {
        ak_buf b;
        ak_buf_init(&b, NULL);
        if (ak_json_write(d.root, &b) != AK_OK) abort();
        ak_buf_free(&b);
    }
    ak_json_doc_free(&d);
}

static void cjson_once(const job *j) {
    cJSON *v = cJSON_ParseWithLength(j->text, j->len);
    if (!v) abort();
    if (j->write) {
        char *s = cJSON_PrintUnformatted(v);
        if (!s) abort();
        cJSON_free(s);
    }
    cJSON_Delete(v);
}

/* MB/s of one run: repeat fn for at least RUN_SECONDS. */
static double run_mbps(void (*fn)(const job *), const job *j) {
    double start = now_s(), t;
    long n = 0;
    do {
        fn(j);
        n++;
    } while ((t = now_s() - start) < RUN_SECONDS);
    return (double)j->len * (double)n / t / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median MB/s of both libraries, runs interleaved so both see the same machine state. */
static void measure(const job *j, double *ak, double *cj) {
    double a[RUNS], c[RUNS];
    int i;
    ak_once(j), cjson_once(j); /* warm caches and the heap */
    for (i = 0; i < RUNS; i++) {
        a[i] = run_mbps(ak_once, j);
        c[i] = run_mbps(cjson_once, j);
    }
    qsort(a, RUNS, sizeof a[0], cmp_double);
    qsort(c, RUNS, sizeof c[0], cmp_double);
    *ak = a[RUNS / 2], *cj = c[RUNS / 2];
}

/* ---- peak memory ------------------------------------------------------------------------ */

static size_t live, peak;

static void count(size_t add, size_t sub) {
    live = live + add - sub;
    if (live > peak) peak = live;
}

static void *ak_count_alloc(void *ud, size_t n) {
    (void)ud;
    count(n, 0);
    return malloc(n);
}
static void *ak_count_realloc(void *ud, void *p, size_t old, size_t n) {
    (void)ud;
    count(n, old);
    return realloc(p, n);
}
static void ak_count_free(void *ud, void *p, size_t n) {
    (void)ud;
    count(0, n);
    free(p);
}

/* cJSON's free hook gets no size, so each block carries it in a header (not counted). */
#define HDR 16
static void *cj_count_malloc(size_t n) {
    unsigned char *p = (unsigned char *)malloc(n + HDR);
    if (!p) return NULL;
    memcpy(p, &n, sizeof n);
    count(n, 0);
    return p + HDR;
}
static void cj_count_free(void *q) {
    size_t n;
    if (!q) return;
    memcpy(&n, (unsigned char *)q - HDR, sizeof n);
    count(0, n);
    free((unsigned char *)q - HDR);
}

static size_t ak_peak(const job *j) {
    ak_allocator a;
    ak_json_doc d;
    a.alloc = ak_count_alloc, a.realloc = ak_count_realloc, a.free = ak_count_free, a.ud = NULL;
    live = peak = 0;
    ak_json_doc_init(&d, &a);
    if (ak_json_parse(&d, j->text, j->len, NULL) != AK_OK) abort();
    ak_json_doc_free(&d);
    return peak;
}

static size_t cjson_peak(const job *j) {
    cJSON_Hooks h;
    cJSON *v;
    h.malloc_fn = cj_count_malloc, h.free_fn = cj_count_free;
    cJSON_InitHooks(&h);
    live = peak = 0;
    v = cJSON_ParseWithLength(j->text, j->len);
    if (!v) abort();
    cJSON_Delete(v);
    cJSON_InitHooks(NULL);
    return peak;
}

int main(int argc, char **argv) {
    static const char *const docs[] = {"twitter", "citm_catalog", "canada"};
    const char *dir = argc > 1 ? argv[1] : "../shared/testdata/nativejson-benchmark";
    double min_ratio = 1e9;
    size_t i;
    printf("%-13s| %8s | %8s | %5s | %10s | %10s | %5s | %10s | %10s | %5s\n", "doc (MB/s)", "ak parse", "cJSON",
           "ratio", "ak p+write", "cJSON p+pr", "ratio", "ak peak", "cJSON peak", "ratio");
    for (i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        char path[4096];
        job j;
        double ap, cp, aw, cw;
        size_t am, cm;
        char *text;
        snprintf(path, sizeof path, "%s/%s.json", dir, docs[i]);
        if (!(text = read_file(path, &j.len))) {
            fprintf(stderr, "cannot read %s\n", path);
            return 1;
        }
        j.text = text;
        j.write = 0;
        measure(&j, &ap, &cp);
        j.write = 1;
        measure(&j, &aw, &cw);
        am = ak_peak(&j), cm = cjson_peak(&j);
        printf("%-13s| %8.1f | %8.1f | %5.2f | %10.1f | %10.1f | %5.2f | %8.2fMB | %8.2fMB | %5.2f\n", docs[i], ap, cp,
               ap / cp, aw, cw, aw / cw, (double)am / 1e6, (double)cm / 1e6, (double)am / (double)cm);
        if (ap / cp < min_ratio) min_ratio = ap / cp;
        free(text);
    }
    printf("medians of %d runs; peak = live bytes while parsing; cJSON %s\n", RUNS, cJSON_Version());
    printf("lowest parse ratio: %.2fx (goal: 1.5x)\n", min_ratio);
    return 0;
}
