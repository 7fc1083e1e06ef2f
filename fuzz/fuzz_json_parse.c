/* libFuzzer target: the JSON parser. Byte 0 picks options, the rest is the JSON text:
     bits 0-2  depth limit: 0 = AK_JSON_MAX_DEPTH, n = 2^n
     bits 3-7  0 = no failure, n = the nth allocation fails
   Checks: a fixed document of ak_json_max_memory(len) bytes parses whatever the heap
   document parses (and rejects what it rejects, possibly as out of memory); an allocation failure gives AK_ERR_OUT_OF_MEMORY, never a crash or a
   leak; accepted text can be written compact and pretty. */
#define AGENTKIT_IMPLEMENTATION
#include "../agentkit.h"
#include <stdlib.h>
#include <string.h>
#include "fuzz_heap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ak_json_parse_opts opts;
    ak_json_doc d, fixed, failing;
    ak_json *v = NULL, *fv = NULL, *xv = NULL;
    const char *text = (const char *)data + 1;
    size_t len, need;
    ak_result rc, frc, xrc;
    void *mem;
    fz_heap h;
    ak_buf b;
    if (size < 1) return 0;
    len = size - 1;
    memset(&opts, 0, sizeof opts);
    opts.max_depth = (data[0] & 7) ? 1u << (data[0] & 7) : 0;
    ak_json_doc_init(&d, NULL);
    rc = ak_json_parse_value(&d, text, len, &opts, &v, NULL);

    need = ak_json_max_memory(len);
    mem = malloc(need);
    if (ak_json_doc_init_fixed(&fixed, mem, need) != AK_OK) abort();
    frc = ak_json_parse_value(&fixed, text, len, &opts, &fv, NULL);
    /* The announced memory suffices for valid JSON; invalid text may run out of it first. */
    if (rc == AK_OK ? (frc != AK_OK || !ak_json_equal(v, fv)) : (frc != rc && frc != AK_ERR_OUT_OF_MEMORY)) abort();

    ak_json_doc_init(&failing, fz_heap_init(&h, data[0] >> 3));
    failing.arena.next_size = 64; /* many small blocks: many places to fail */
    xrc = ak_json_parse_value(&failing, text, len, &opts, &xv, NULL);
    if (xrc != rc && xrc != AK_ERR_OUT_OF_MEMORY) abort();
    if (xrc == AK_OK && !ak_json_equal(v, xv)) abort();
    ak_json_doc_free(&failing);
    if (h.live != 0) abort();

    if (rc == AK_OK) {
        ak_buf_init(&b, NULL);
        if (ak_json_write(v, &b) != AK_OK || ak_json_write_pretty(v, &b) != AK_OK) abort();
        ak_buf_free(&b);
    }
    ak_json_doc_free(&fixed);
    free(mem);
    ak_json_doc_free(&d);
    return 0;
}
