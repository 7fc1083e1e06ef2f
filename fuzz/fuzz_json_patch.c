/* libFuzzer target: JSON Patch and diff. Byte 0 picks options, the rest is the JSON array
   [document, patch]:
     bit 0     AK_PATCH_LENIENT
     bits 1-7  0 = no failure, n = the nth allocation during the patch fails
   Checks: a failed patch leaves the document byte for byte as it was and leaks nothing; a
   successful one can be reproduced by applying ak_json_diff(before, after) to a copy of
   the document, strictly and leniently. */
#define AGENTKIT_IMPLEMENTATION
#include "../agentkit.h"
#include <stdlib.h>
#include <string.h>
#include "fuzz_heap.h"

/* Compact JSON of v (malloc'd). */
static char *fz_text(const ak_json *v) {
    ak_buf b;
    ak_buf_init(&b, NULL);
    if (ak_json_write(v, &b) != AK_OK) abort();
    return b.ptr;
}

/* Applies the diff from -> to onto a copy of from in d and checks it reproduces to. The
   one allowed failure: lenient mode refuses paths through __proto__, prototype or
   constructor (as Genkit's client does), and then the copy must be untouched. */
static void fz_check_diff(ak_json_doc *d, const ak_json *from, const ak_json *to) {
    ak_json *patch, *copy;
    unsigned flags;
    ak_error err;
    if (ak_json_diff(d, from, to, &patch) != AK_OK) abort();
    for (flags = 0; flags <= AK_PATCH_LENIENT; flags += AK_PATCH_LENIENT) {
        copy = from ? ak_json_copy(d, from) : NULL;
        if (ak_json_patch(d, &copy, patch, flags, &err) != AK_OK) {
            if (!flags || !strstr(err.message, "forbidden token") || !ak_json_equal(copy, from)) abort();
            continue;
        }
        if (!ak_json_equal(copy, to) || !copy != !to) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ak_json_doc in, work;
    ak_json *input = NULL, *root;
    const ak_json *doc, *patch;
    char *before, *after;
    unsigned flags;
    ak_result rc;
    ak_error err;
    fz_heap h;
    if (size < 1) return 0;
    flags = data[0] & 1 ? AK_PATCH_LENIENT : 0;
    ak_json_doc_init(&in, NULL);
    if (ak_json_parse_value(&in, (const char *)data + 1, size - 1, NULL, &input, NULL) != AK_OK ||
        ak_json_len(input) != 2 || !ak_json_is(input, AK_JSON_ARRAY)) {
        ak_json_doc_free(&in);
        return 0;
    }
    doc = ak_json_at(input, 0);
    patch = ak_json_at(input, 1);
    ak_json_doc_init(&work, fz_heap_init(&h, 0));
    work.arena.next_size = 64;
    root = ak_json_copy(&work, doc);
    before = fz_text(root);
    if (data[0] >> 1) h.fail_at = h.calls + (data[0] >> 1);
    rc = ak_json_patch(&work, &root, patch, flags, &err);
    h.fail_at = 0;
    after = fz_text(root);
    if (rc != AK_OK) {
        if (strcmp(before, after) != 0 || work.err != AK_OK) abort();
        if (strlen(err.message) >= sizeof err.message) abort();
    } else {
        fz_check_diff(&work, doc, root);
    }
    free(before);
    free(after);
    ak_json_doc_free(&work);
    if (h.live != 0) abort();
    ak_json_doc_free(&in);
    return 0;
}
