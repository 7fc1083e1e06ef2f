/* SSE parse throughput on realistic token streams, fed whole and in 7-byte and 1-byte
   pieces (how a slow network delivers them). Prints the median of several runs. */
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 7

static const char *const tokens[] = {
    "Hello", ",", " world", "!", " The", " quick", " brown", " fox", " caf\xC3\xA9", " \xE4\xB8\xAD\xE6\x96\x87",
    " jumps", " over", "\\n\\n", " the", " lazy", " dog", " \xF0\x9F\x91\x8B", " \\\"quoted\\\"", "42", ".",
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* About `bytes` of stream in the given provider's framing; returns the event count. */
static size_t make_stream(ak_buf *b, int anthropic, size_t bytes) {
    size_t events = 0, i = 0;
    while (b->len < bytes) {
        const char *t = tokens[i++ % (sizeof tokens / sizeof tokens[0])];
        if (anthropic)
            ak_buf_printf(b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                             "\"delta\":{\"type\":\"text_delta\",\"text\":\"%s\"}}\n\n", t);
        else
            ak_buf_printf(b, "data: {\"id\":\"chatcmpl-9abcDEFghiJKL\",\"object\":\"chat.completion.chunk\","
                             "\"created\":1700000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_123\","
                             "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"logprobs\":null,"
                             "\"finish_reason\":null}]}\n\n", t);
        if (i % 50 == 0) ak_buf_puts(b, ": keep-alive\n\n");
        events++;
    }
    return events;
}

static ak_result count(void *ud, const ak_sse_event *ev) {
    *(size_t *)ud += ev->data_len;
    return AK_OK;
}

static double parse_seconds(const ak_buf *s, size_t piece) {
    ak_sse_parser p;
    size_t sink = 0, at;
    double t0 = now_s();
    ak_sse_init(&p, NULL, count, &sink);
    for (at = 0; at < s->len; at += piece)
        if (ak_sse_feed(&p, s->ptr + at, s->len - at < piece ? s->len - at : piece, NULL) != AK_OK) abort();
    ak_sse_finish(&p, NULL);
    ak_sse_free(&p);
    if (!sink) abort();
    return now_s() - t0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_seconds(const ak_buf *s, size_t piece) {
    double t[RUNS];
    int i;
    for (i = 0; i < RUNS; i++) t[i] = parse_seconds(s, piece);
    qsort(t, RUNS, sizeof t[0], cmp_double);
    return t[RUNS / 2];
}

int main(int argc, char **argv) {
    size_t mb = argc > 1 ? (size_t)atoi(argv[1]) : 4;
    int anthropic;
    printf("%-10s %8s %8s %10s %10s %14s\n", "stream", "MB", "events", "feed", "MB/s", "ns/event");
    for (anthropic = 0; anthropic < 2; anthropic++) {
        static const size_t pieces[3] = {0, 7, 1};
        double whole = 0;
        ak_buf s;
        size_t events;
        int k;
        ak_buf_init(&s, NULL);
        events = make_stream(&s, anthropic, mb << 20);
        for (k = 0; k < 3; k++) {
            size_t piece = pieces[k] ? pieces[k] : s.len;
            double t = median_seconds(&s, piece);
            char feed[16];
            if (!k) whole = t;
            snprintf(feed, sizeof feed, k ? "%zu-byte" : "whole", piece);
            printf("%-10s %8.2f %8zu %10s %10.0f %14.1f", anthropic ? "anthropic" : "openai",
                   (double)s.len / 1e6, events, feed, (double)s.len / 1e6 / t, t * 1e9 / (double)events);
            if (k) printf("   (%.1fx whole)", t / whole);
            printf("\n");
        }
        ak_buf_free(&s);
    }
    return 0;
}
