/* What connection reuse buys the POSIX client transport, next to libcurl doing the same.
   Sequential GETs of a small JSON answer (a non-streamed model reply) from a keep-alive
   server on 127.0.0.1, over http and https, in four configurations:

       agentkit, reuse on     the default desc: the connection (and TLS session) is kept
       agentkit, reuse off    desc.max_idle = -1: a connection per request, Connection: close
       libcurl, reused        one easy handle: its connection cache keeps the connection
       libcurl, fresh         a new easy handle per request: a new connection each time
                              (and a new CA load; agentkit's transport keeps its parsed CA)

   Both clients block per request (agentkit's desc.nonblocking = 0, curl_easy_perform).
   Every request is timed on its own; each row prints the median and the p99 in
   microseconds. The four configurations run interleaved in ROUNDS rounds after a short
   untimed warm-up each, so a burst of load on the machine hits them alike.

   Every response is checked: status 200, the exact body, and the server's count of
   requests on the connection (X-Request-On-Connection): above 1 when the configuration
   reuses, 1 when it does not, so a row measures what its label says. The failures column
   counts warm-up requests too; any failure makes the exit status 1.

   Run it with bench/http/run.sh, which makes the certificates, starts the servers and
   passes: bench_http HTTP_PORT HTTPS_PORT CA_FILE BODY_FILE [SCALE]
   (SCALE multiplies the request counts: 2000 per row for http, 500 for https). */
#ifndef AK_ENABLE_POSIX
#define AK_ENABLE_POSIX
#endif
#ifndef AK_ENABLE_MBEDTLS
#define AK_ENABLE_MBEDTLS
#endif
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <curl/curl.h>
#include <mbedtls/version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ROUNDS 5
#define WARMUP 10
#define HTTP_GETS 2000
#define HTTPS_GETS 500
#define MAX_BODY 4096
#define TIMEOUT_MS 10000
#define CONN_HEADER "X-Request-On-Connection"

enum { AK_REUSE, AK_FRESH, CURL_REUSE, CURL_FRESH, KINDS };

static const char *const labels[KINDS] = {
    "agentkit, reuse on (default desc)", "agentkit, reuse off (max_idle -1)",
    "libcurl, easy handle reused", "libcurl, fresh handle per request",
};

/* One server: where to reach it and how to trust it. */
typedef struct target {
    const char *name;          /* "http" or "https" */
    int https;
    int port;
    const char *ca_file;
    char ak_url[64];           /* 127.0.0.1 (verified as "localhost" over TLS) */
    char curl_url[64];         /* localhost, resolved to 127.0.0.1 by CURLOPT_RESOLVE */
    const char *body;          /* the answer every request must get */
    size_t body_len;
} target;

/* What one GET brought back. */
typedef struct reply {
    int ok;                    /* the client reported success */
    int status;
    long on_conn;              /* the server's X-Request-On-Connection, 0 if missing */
    char body[MAX_BODY];
    size_t body_len;
    size_t body_seen;          /* bytes received, also past MAX_BODY */
    char why[256];             /* the client's error message */
} reply;

/* One configuration against one target, with its samples. */
typedef struct side {
    int kind;
    const target *tg;
    ak_context ctx;
    ak_posix_transport t;      /* agentkit kinds */
    ak_http_sink sink;
    CURL *curl;                /* CURL_REUSE: the kept handle */
    struct curl_slist *resolve;
    reply r;
    double *us;
    size_t n, cap;
    int failures;
    char first_failure[320];
} side;

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static void reply_reset(reply *r) {
    r->ok = 0;
    r->status = 0;
    r->on_conn = 0;
    r->body_len = r->body_seen = 0;
    r->why[0] = 0;
}

static void reply_body(reply *r, const char *data, size_t len) {
    size_t room = sizeof r->body - r->body_len;
    size_t n = len < room ? len : room;
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body_seen += len;
}

/* Records the connection count header when (name, value) is it. */
static void reply_header(reply *r, const char *name, size_t name_len, const char *value) {
    if (name_len == sizeof CONN_HEADER - 1 && !strncasecmp(name, CONN_HEADER, name_len))
        r->on_conn = strtol(value, NULL, 10);
}

/* ---- agentkit ------------------------------------------------------------------------------- */

static ak_result ak_on_status(ak_http_sink *s, int status) {
    ((reply *)s->ud)->status = status;
    return AK_OK;
}

static ak_result ak_on_header(ak_http_sink *s, const char *name, size_t name_len, const char *value,
                              size_t value_len) {
    char v[32];
    snprintf(v, sizeof v, "%.*s", (int)value_len, value);
    reply_header((reply *)s->ud, name, name_len, v);
    return AK_OK;
}

static ak_result ak_on_body(ak_http_sink *s, const char *data, size_t len) {
    reply_body((reply *)s->ud, data, len);
    return AK_OK;
}

static void ak_on_done(ak_http_sink *s, ak_result rc, const char *msg) {
    reply *r = (reply *)s->ud;
    r->ok = rc == AK_OK;
    if (!r->ok) snprintf(r->why, sizeof r->why, "%s", msg ? msg : "failed");
}

static int ak_open(side *sd) {
    ak_posix_transport_desc d;
    ak_error err;
    memset(&d, 0, sizeof d);
    ak_context_init(&sd->ctx, NULL);
    d.ctx = &sd->ctx;
    d.nonblocking = 0;
    d.max_idle = sd->kind == AK_FRESH ? -1 : 0;
    d.tls.ca_file = sd->tg->ca_file;
    d.tls.server_name = "localhost";
    if (ak_posix_transport_init(&sd->t, &d, &err) != AK_OK) {
        fprintf(stderr, "%s: %s\n", labels[sd->kind], err.message);
        return -1;
    }
    sd->sink.on_status = ak_on_status;
    sd->sink.on_header = ak_on_header;
    sd->sink.on_body = ak_on_body;
    sd->sink.on_done = ak_on_done;
    sd->sink.ud = &sd->r;
    return 0;
}

/* Blocking mode: the whole exchange happens inside start(). */
static void ak_get(side *sd) {
    ak_http_request req;
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.url = sd->tg->ak_url;
    req.timeout_ms = TIMEOUT_MS;
    if (sd->t.transport.start(sd->t.transport.ud, &req, &sd->sink, NULL) != AK_OK)
        snprintf(sd->r.why, sizeof sd->r.why, "start() failed");
}

/* ---- libcurl -------------------------------------------------------------------------------- */

static size_t curl_on_body(char *data, size_t size, size_t n, void *ud) {
    reply_body((reply *)ud, data, size * n);
    return size * n;
}

static size_t curl_on_header(char *line, size_t size, size_t n, void *ud) {
    size_t len = size * n;
    const char *colon = (const char *)memchr(line, ':', len);
    char v[32];
    if (colon && (size_t)(line + len - colon) < sizeof v) {
        snprintf(v, sizeof v, "%.*s", (int)(line + len - colon - 1), colon + 1);
        reply_header((reply *)ud, line, (size_t)(colon - line), v);
    }
    return len;
}

static CURL *curl_handle(side *sd) {
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    curl_easy_setopt(h, CURLOPT_URL, sd->tg->curl_url);
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* ignore *_proxy in the environment */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sd->r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, curl_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &sd->r);
    curl_easy_setopt(h, CURLOPT_RESOLVE, sd->resolve);
    if (sd->tg->https) curl_easy_setopt(h, CURLOPT_CAINFO, sd->tg->ca_file); /* verification stays on */
    return h;
}

static int curl_open(side *sd) {
    char entry[64];
    snprintf(entry, sizeof entry, "localhost:%d:127.0.0.1", sd->tg->port);
    sd->resolve = curl_slist_append(NULL, entry);
    if (!sd->resolve) return -1;
    if (sd->kind == CURL_FRESH) return 0;
    sd->curl = curl_handle(sd);
    return sd->curl ? 0 : -1;
}

/* CURL_FRESH times the handle's setup and cleanup too: that is the price of not keeping it. */
static void curl_get(side *sd) {
    CURL *h = sd->kind == CURL_FRESH ? curl_handle(sd) : sd->curl;
    CURLcode rc;
    long status = 0;
    if (!h) {
        snprintf(sd->r.why, sizeof sd->r.why, "curl_easy_init failed");
        return;
    }
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    sd->r.status = (int)status;
    sd->r.ok = rc == CURLE_OK;
    if (!sd->r.ok) snprintf(sd->r.why, sizeof sd->r.why, "%s", curl_easy_strerror(rc));
    if (sd->kind == CURL_FRESH) curl_easy_cleanup(h);
}

/* ---- one configuration ---------------------------------------------------------------------- */

static int is_agentkit(const side *sd) { return sd->kind == AK_REUSE || sd->kind == AK_FRESH; }
static int reuses(const side *sd) { return sd->kind == AK_REUSE || sd->kind == CURL_REUSE; }

/* On failure nothing is left to close. */
static int side_open(side *sd, int kind, const target *tg, size_t n) {
    memset(sd, 0, sizeof *sd);
    sd->kind = kind;
    sd->tg = tg;
    sd->cap = n;
    sd->us = (double *)malloc(n * sizeof *sd->us);
    if (sd->us && (is_agentkit(sd) ? ak_open(sd) : curl_open(sd)) == 0) return 0;
    curl_slist_free_all(sd->resolve);
    free(sd->us);
    return -1;
}

static void side_close(side *sd) {
    if (is_agentkit(sd)) ak_posix_transport_free(&sd->t);
    if (sd->curl) curl_easy_cleanup(sd->curl);
    curl_slist_free_all(sd->resolve);
    free(sd->us);
}

/* NULL when r is the answer this configuration must get, else what is wrong with it.
   Warm-up requests may open the connection a reusing configuration keeps. */
static const char *reply_problem(const side *sd, const reply *r, int warmup) {
    if (!r->ok) return r->why[0] ? r->why : "request failed";
    if (r->status != 200) return "status is not 200";
    if (r->body_seen != sd->tg->body_len || memcmp(r->body, sd->tg->body, sd->tg->body_len))
        return "wrong body";
    if (r->on_conn < 1) return "no " CONN_HEADER " header";
    if (reuses(sd) && !warmup && r->on_conn == 1) return "the connection was not reused";
    if (!reuses(sd) && r->on_conn != 1) return "a connection was reused";
    return NULL;
}

/* One GET, checked; returns its duration in microseconds. */
static double side_get(side *sd, int warmup) {
    const char *problem;
    double t0, us;
    reply_reset(&sd->r);
    t0 = now_us();
    if (is_agentkit(sd)) ak_get(sd);
    else curl_get(sd);
    us = now_us() - t0;
    problem = reply_problem(sd, &sd->r, warmup);
    if (problem && !sd->failures++)
        snprintf(sd->first_failure, sizeof sd->first_failure, "%s (status %d, %zu body bytes, request %ld on its connection)",
                 problem, sd->r.status, sd->r.body_seen, sd->r.on_conn);
    return us;
}

static void side_warm_up(side *sd) {
    int i;
    for (i = 0; i < WARMUP; i++) side_get(sd, 1);
}

static void side_measure(side *sd, size_t count) {
    while (count-- && sd->n < sd->cap) sd->us[sd->n++] = side_get(sd, 0);
}

/* ---- figures -------------------------------------------------------------------------------- */

typedef struct figures {
    double median, p99;
} figures;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static figures side_figures(side *sd) {
    figures f = {0, 0};
    size_t p99;
    if (!sd->n) return f;
    qsort(sd->us, sd->n, sizeof sd->us[0], cmp_double);
    p99 = (sd->n * 99 + 99) / 100; /* nearest rank: ceil(0.99 n) */
    f.median = sd->n % 2 ? sd->us[sd->n / 2] : (sd->us[sd->n / 2 - 1] + sd->us[sd->n / 2]) / 2;
    f.p99 = sd->us[p99 - 1];
    return f;
}

static void print_ratio(const char *label, figures a, figures b, const char *note) {
    printf("  %-34s %7.2fx %9.2fx   %s\n", label, b.median > 0 ? a.median / b.median : 0,
           b.p99 > 0 ? a.p99 / b.p99 : 0, note);
}

static void print_table(const target *tg, side *sides, size_t n) {
    figures f[KINDS];
    int k;
    printf("%s://127.0.0.1 (%zu GETs per row in %d interleaved rounds, %zu-byte JSON body)\n", tg->name, n, ROUNDS,
           tg->body_len);
    printf("  %-34s %8s %10s %9s\n", "", "median us", "p99 us", "failures");
    for (k = 0; k < KINDS; k++) {
        f[k] = side_figures(&sides[k]);
        printf("  %-34s %8.1f %10.1f %9d\n", labels[k], f[k].median, f[k].p99, sides[k].failures);
    }
    printf("  %-34s %8s %10s\n", "ratios", "median", "p99");
    print_ratio("agentkit reuse off / on", f[AK_FRESH], f[AK_REUSE], "what reuse buys agentkit");
    print_ratio("libcurl fresh / reused", f[CURL_FRESH], f[CURL_REUSE], "what reuse buys libcurl");
    print_ratio("agentkit / libcurl, reuse", f[AK_REUSE], f[CURL_REUSE], "below 1: agentkit faster");
    print_ratio("agentkit / libcurl, no reuse", f[AK_FRESH], f[CURL_FRESH], "below 1: agentkit faster");
    for (k = 0; k < KINDS; k++)
        if (sides[k].failures) printf("  FAILED: %s: %d, first: %s\n", labels[k], sides[k].failures, sides[k].first_failure);
}

/* Runs the four configurations against tg, interleaved; returns the failures. */
static int bench_target(const target *tg, size_t n) {
    side sides[KINDS];
    int k, round, opened = 0, failures = 0;
    for (; opened < KINDS; opened++)
        if (side_open(&sides[opened], opened, tg, n) != 0) break;
    if (opened < KINDS) {
        fprintf(stderr, "%s: cannot set up \"%s\"\n", tg->name, labels[opened]);
        for (k = 0; k < opened; k++) side_close(&sides[k]);
        return 1;
    }
    for (k = 0; k < KINDS; k++) side_warm_up(&sides[k]);
    for (round = 0; round < ROUNDS; round++) {
        size_t count = n * (size_t)(round + 1) / ROUNDS - n * (size_t)round / ROUNDS;
        for (k = 0; k < KINDS; k++) side_measure(&sides[(round + k) % KINDS], count);
    }
    print_table(tg, sides, n);
    for (k = 0; k < KINDS; k++) {
        failures += sides[k].failures;
        side_close(&sides[k]);
    }
    return failures;
}

/* ---- main ----------------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long size;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && size <= MAX_BODY && fseek(f, 0, SEEK_SET) == 0 &&
        (text = (char *)malloc((size_t)size)) != NULL && fread(text, 1, (size_t)size, f) != (size_t)size) {
        free(text);
        text = NULL;
    }
    fclose(f);
    *len = text ? (size_t)size : 0;
    return text;
}

static void target_init(target *tg, int https, int port, const char *ca_file, const char *body, size_t body_len) {
    memset(tg, 0, sizeof *tg);
    tg->name = https ? "https" : "http";
    tg->https = https;
    tg->port = port;
    tg->ca_file = ca_file;
    tg->body = body;
    tg->body_len = body_len;
    snprintf(tg->ak_url, sizeof tg->ak_url, "%s://127.0.0.1:%d/v1/answer", tg->name, port);
    snprintf(tg->curl_url, sizeof tg->curl_url, "%s://localhost:%d/v1/answer", tg->name, port);
}

static size_t scaled(size_t n, double scale) {
    double v = (double)n * scale;
    return v < 1 ? 1 : (size_t)v;
}

int main(int argc, char **argv) {
    target http, https;
    size_t body_len;
    char *body;
    double scale = argc > 5 ? atof(argv[5]) : 1.0;
    int failures;
    if (argc < 5 || scale <= 0) {
        fprintf(stderr, "usage: %s HTTP_PORT HTTPS_PORT CA_FILE BODY_FILE [SCALE]\n", argv[0]);
        return 2;
    }
    body = read_file(argv[4], &body_len);
    if (!body) {
        fprintf(stderr, "%s: cannot read a body of 1..%d bytes\n", argv[4], MAX_BODY);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 2;
    target_init(&http, 0, atoi(argv[1]), argv[3], body, body_len);
    target_init(&https, 1, atoi(argv[2]), argv[3], body, body_len);
    printf("agentkit.h %s with mbedTLS %s; libcurl %s with %s; sequential blocking GETs, %d untimed first\n\n",
           ak_version(), MBEDTLS_VERSION_STRING, curl_version_info(CURLVERSION_NOW)->version,
           curl_version_info(CURLVERSION_NOW)->ssl_version, WARMUP);
    failures = bench_target(&http, scaled(HTTP_GETS, scale));
    printf("\n");
    failures += bench_target(&https, scaled(HTTPS_GETS, scale));
    curl_global_cleanup();
    free(body);
    if (failures) printf("\n%d failed requests\n", failures);
    return failures ? 1 : 0;
}
