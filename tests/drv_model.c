/* akdriver model-response / model-request: the provider adapters (ak_adapter_find) from the
   command line, for any of openai, anthropic, gemini, ollama.

   model-response PROVIDER [--stream] [--chunk N] [--status CODE] [--header 'K: V']... [FILE]
     Decodes a raw response body (SSE / NDJSON with --stream) fed N bytes at a time and
     prints the Genkit GenerateResponse, or {"error":{"status","message"},"retryAfterMs"?}
     and exits 1.
   model-request PROVIDER [--stream] [FILE]
     Reads a Genkit GenerateRequest and prints the provider HTTP request
     {"method","url","headers":{...},"body":<JSON>}, built with placeholder settings (the
     provider's default URL, model below, API key "test-key"); a request the adapter
     refuses prints the reason on stderr and exits 1. --stream builds the streaming form.
   Exit 2 for bad usage or unreadable input. */
#include "akdriver.h"
#include "model_fixtures.h"
#include <stdlib.h>
#include <string.h>

static const struct { const char *provider, *model; } drv_models[] = {
    {"openai", "gpt-4o-mini"}, {"anthropic", "claude-sonnet-4-5"}, {"gemini", "gemini-2.5-flash"}, {"ollama", "llama3.2"}};

static int drv_model_usage(void) {
    fprintf(stderr, "usage: akdriver model-response PROVIDER [--stream] [--chunk N] [--status CODE] [--header 'K: V']... [FILE]\n"
                    "       akdriver model-request PROVIDER [--stream] [FILE]\n"
                    "PROVIDER: openai | anthropic | gemini | ollama\n");
    return 2;
}

/* A positive integer argument, or 0. */
static size_t drv_model_num(const char *s) {
    char *end;
    unsigned long n = strtoul(s, &end, 10);
    return *s && !*end ? (size_t)n : 0;
}

int drv_model_response(int argc, char **argv) {
    const ak_adapter *adapter = argc >= 2 ? ak_adapter_find(argv[1]) : NULL;
    const char *file = NULL;
    ak_buf headers, out;
    mf_case c;
    size_t chunk = 0;
    char *body;
    int i, rc;
    if (!adapter) return drv_model_usage();
    memset(&c, 0, sizeof c);
    c.adapter = adapter;
    ak_buf_init(&headers, NULL);
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--stream") == 0) {
            c.stream = 1;
        } else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc && (chunk = drv_model_num(argv[i + 1])) != 0) {
            i++;
        } else if (strcmp(argv[i], "--status") == 0 && i + 1 < argc && drv_model_num(argv[i + 1]) - 100 < 900) {
            c.status = (int)drv_model_num(argv[++i]);
        } else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc && strchr(argv[i + 1], ':')) {
            ak_buf_printf(&headers, "%s\n", argv[++i]);
        } else if (!file && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
            file = argv[i];
        } else {
            ak_buf_free(&headers);
            return drv_model_usage();
        }
    }
    if (drv_read_all(file, &body, &c.len) != 0) {
        fprintf(stderr, "cannot read %s\n", file ? file : "stdin");
        ak_buf_free(&headers);
        return 2;
    }
    c.body = body;
    c.headers = headers.ptr;
    ak_buf_init(&out, NULL);
    rc = mf_run(&c, chunk, 0, NULL, &out, NULL);
    if (rc >= 0) drv_print_line(&out);
    else fprintf(stderr, "out of memory\n");
    ak_buf_free(&out);
    ak_buf_free(&headers);
    free(body);
    return rc < 0 ? 2 : rc;
}

/* {"method","url","headers":{name: value},"body":<parsed>} */
static void drv_model_print_request(const ak_http_out *o) {
    ak_json_doc d;
    ak_json *r, *h, *body = NULL;
    ak_buf line;
    size_t i;
    ak_json_doc_init(&d, NULL);
    r = ak_json_new_object(&d);
    h = ak_json_new_object(&d);
    ak_json_set_str(&d, r, "method", o->method);
    ak_json_set_str(&d, r, "url", o->url.ptr);
    for (i = 0; i < o->header_count; i++) {
        /* ak_http_out keeps offsets into header_text until the engine seals them */
        const char *name = o->header_text.ptr + (uintptr_t)o->headers[i].name;
        const char *value = o->header_text.ptr + (uintptr_t)o->headers[i].value;
        ak_json_add(&d, h, name, strlen(name), ak_json_new_str(&d, value));
    }
    ak_json_set(&d, r, "headers", h);
    if (ak_json_parse_value(&d, o->body.ptr ? o->body.ptr : "", o->body.len, NULL, &body, NULL) != AK_OK)
        body = ak_json_new_strn(&d, o->body.ptr ? o->body.ptr : "", o->body.len);
    ak_json_set(&d, r, "body", body);
    ak_buf_init(&line, NULL);
    ak_json_write(r, &line);
    drv_print_line(&line);
    ak_buf_free(&line);
    ak_json_doc_free(&d);
}

int drv_model_request(int argc, char **argv) {
    const ak_adapter *adapter = argc >= 2 ? ak_adapter_find(argv[1]) : NULL;
    const char *file = NULL;
    ak_provider_config cfg;
    ak_context ctx;
    ak_json_doc doc;
    ak_model_call call;
    ak_http_out out;
    ak_error err;
    ak_json *request = NULL;
    size_t len, i;
    char *text;
    int stream = 0, rc;
    if (!adapter) return drv_model_usage();
    for (i = 2; i < (size_t)argc; i++) {
        if (strcmp(argv[i], "--stream") == 0) stream = 1;
        else if (!file) file = argv[i];
        else return drv_model_usage();
    }
    if (drv_read_all(file, &text, &len) != 0) {
        fprintf(stderr, "cannot read %s\n", file ? file : "stdin");
        return 2;
    }
    ak_context_init(&ctx, NULL);
    ak_json_doc_init(&doc, NULL);
    memset(&cfg, 0, sizeof cfg);
    for (i = 0; i < sizeof drv_models / sizeof drv_models[0]; i++)
        if (strcmp(drv_models[i].provider, adapter->name) == 0) cfg.model = drv_models[i].model;
    cfg.api_key = "test-key";
    ak_http_out_init(&out, NULL);
    if (ak_json_parse_value(&doc, text, len, NULL, &request, &err) != AK_OK) {
        fprintf(stderr, "the request is not JSON: %s\n", err.message);
        rc = 2;
    } else {
        ak_model_call_init(&call, &ctx, request, &doc);
        rc = adapter->build(&cfg, request, call.messages, call.message_count, stream, &out, &err) == AK_OK ? 0 : 1;
        if (rc == 0) drv_model_print_request(&out);
        else fprintf(stderr, "%s\n", err.message);
    }
    ak_http_out_free(&out);
    ak_json_doc_free(&doc);
    free(text);
    return rc;
}
