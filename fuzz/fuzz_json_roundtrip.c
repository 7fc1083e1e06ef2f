/* libFuzzer target: write then re-parse. Whatever parses must be written as JSON that
   parses to an equal value and is written again byte for byte the same; the pretty form and
   a deep copy must be equal too. */
#define AGENTKIT_IMPLEMENTATION
#include "../agentkit.h"
#include <stdlib.h>
#include <string.h>

/* Parses text into d; NULL if it is not JSON. */
static ak_json *fz_parse(ak_json_doc *d, const char *text, size_t len) {
    ak_json *v = NULL;
    return ak_json_parse_value(d, text, len, NULL, &v, NULL) == AK_OK ? v : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ak_json_doc d;
    ak_json *v, *again, *pretty, *copy;
    ak_buf w1, w2, p;
    ak_json_doc_init(&d, NULL);
    v = fz_parse(&d, (const char *)data, size);
    if (!v) {
        ak_json_doc_free(&d);
        return 0;
    }
    ak_buf_init(&w1, NULL);
    ak_buf_init(&w2, NULL);
    ak_buf_init(&p, NULL);
    if (ak_json_write(v, &w1) != AK_OK || ak_json_write_pretty(v, &p) != AK_OK) abort();
    again = fz_parse(&d, w1.ptr, w1.len);
    pretty = fz_parse(&d, p.ptr, p.len);
    if (!again || !pretty || !ak_json_equal(v, again) || !ak_json_equal(v, pretty)) abort();
    if (ak_json_write(again, &w2) != AK_OK || w1.len != w2.len || memcmp(w1.ptr, w2.ptr, w1.len) != 0) abort();
    copy = ak_json_copy(&d, v);
    if (!copy || !ak_json_equal(copy, v)) abort();
    ak_buf_clear(&w2);
    if (ak_json_write(copy, &w2) != AK_OK || w1.len != w2.len || memcmp(w1.ptr, w2.ptr, w1.len) != 0) abort();
    ak_buf_free(&w1);
    ak_buf_free(&w2);
    ak_buf_free(&p);
    ak_json_doc_free(&d);
    return 0;
}
