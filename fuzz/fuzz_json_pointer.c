/* libFuzzer target: JSON Pointer. Byte 0 is the length n of the pointer in bytes 1..n, the
   rest is a JSON document. Checks: resolving never crashes and agrees with a reference walk
   written here in the simplest way; and every value in the document is found again through
   the pointer ak_json_pointer_append builds for it. */
#define AGENTKIT_IMPLEMENTATION
#include "../agentkit.h"
#include <stdlib.h>
#include <string.h>

/* Reference: unescape each token into a buffer, then look it up with the public accessors. */
static const ak_json *fz_reference(const ak_json *v, const char *p, size_t len, int *valid) {
    char tok[256];
    size_t i = 0;
    *valid = 1;
    if (len == 0) return v;
    if (p[0] != '/') return *valid = 0, NULL;
    while (i < len) {
        size_t n = 0, idx = 0, k;
        int digits = 1;
        for (i++; i < len && p[i] != '/'; i++) {
            char c = p[i];
            if (c == '~') {
                if (i + 1 >= len || (p[i + 1] != '0' && p[i + 1] != '1')) return *valid = 0, NULL;
                c = p[++i] == '0' ? '~' : '/';
            }
            tok[n++] = c; /* the pointer is at most 255 bytes */
        }
        if (ak_json_is(v, AK_JSON_OBJECT)) {
            v = ak_json_getn(v, tok, n);
            continue;
        }
        if (n == 0 || (n > 1 && tok[0] == '0')) digits = 0;
        for (k = 0; k < n && digits; k++) {
            if (tok[k] < '0' || tok[k] > '9' || idx > 100000000) digits = 0;
            else idx = idx * 10 + (size_t)(tok[k] - '0');
        }
        v = digits ? ak_json_at(v, idx) : NULL;
    }
    return v;
}

/* Every value under v must come back through its own pointer, except a member shadowed by a
   later one with the same key: the pointer names the last, as ak_json_get does. */
static void fz_check_all(const ak_json *root, const ak_json *parent, const ak_json *v, ak_buf *ptr) {
    const ak_json *c;
    size_t i = 0, mark = ptr->len;
    ak_json *found;
    if (ak_json_pointer(root, ptr->ptr ? ptr->ptr : "", ptr->len, &found, NULL) != AK_OK) abort();
    if (found != v) {
        if (!ak_json_is(parent, AK_JSON_OBJECT) || found != ak_json_getn(parent, v->key, v->key_len)) abort();
        return;
    }
    for (c = ak_json_first(v); c; c = c->next, i++) {
        if (ak_json_is(v, AK_JSON_OBJECT)) {
            ak_json_pointer_append(ptr, c->key, c->key_len);
        } else {
            ak_buf_putc(ptr, '/');
            ak_buf_put_u64(ptr, i);
        }
        if (ptr->err) abort();
        fz_check_all(root, v, c, ptr);
        ptr->len = mark;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ak_json_doc d;
    ak_json *root = NULL, *got = NULL;
    const ak_json *want;
    const char *ptr = (const char *)data + 1;
    size_t plen;
    ak_result rc;
    ak_error err;
    ak_buf b;
    int valid;
    if (size < 1) return 0;
    plen = data[0] < size - 1 ? data[0] : size - 1;
    ak_json_doc_init(&d, NULL);
    if (ak_json_parse_value(&d, ptr + plen, size - 1 - plen, NULL, &root, NULL) != AK_OK) {
        ak_json_doc_free(&d);
        return 0;
    }
    rc = ak_json_pointer(root, ptr, plen, &got, &err);
    want = fz_reference(root, ptr, plen, &valid);
    if (rc == AK_OK ? (got != want || !got) : (rc != AK_ERR_JSON_POINTER || got || (valid && want))) abort();
    ak_buf_init(&b, NULL);
    fz_check_all(root, NULL, root, &b);
    ak_buf_free(&b);
    ak_json_doc_free(&d);
    return 0;
}
