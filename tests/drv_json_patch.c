/* akdriver json-patch DOC PATCH: applies the RFC 6902 patch file to the document file.
   ok: exit 0 and the compact result on stdout; error: exit 1 and one line on stderr. */
#include "akdriver.h"
#include <stdlib.h>

/* Parses one file into d; prints why not and returns 0 on failure. */
static int load(ak_json_doc *d, const char *path, ak_json **out) {
    char *text;
    size_t len;
    ak_error err;
    int ok;
    if (drv_read_all(path, &text, &len) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        return 0;
    }
    ok = ak_json_parse_value(d, text, len, NULL, out, &err) == AK_OK;
    if (!ok) fprintf(stderr, "%s: %s\n", path, err.message);
    free(text);
    return ok;
}

int drv_json_patch(int argc, char **argv) {
    ak_json_doc d;
    ak_json *doc, *patch;
    ak_error err;
    ak_buf out;
    int rc = 1;
    if (argc != 3) {
        fprintf(stderr, "usage: akdriver json-patch DOC PATCH\n");
        return 2;
    }
    ak_json_doc_init(&d, NULL);
    ak_buf_init(&out, NULL);
    if (load(&d, argv[1], &doc) && load(&d, argv[2], &patch)) {
        if (ak_json_patch(&d, &doc, patch, 0, &err) != AK_OK) {
            fprintf(stderr, "%s\n", err.message);
        } else if (ak_json_write(doc, &out) != AK_OK) {
            fprintf(stderr, "write failed: %s\n", ak_result_str(out.err));
        } else {
            drv_print_line(&out);
            rc = 0;
        }
    }
    ak_buf_free(&out);
    ak_json_doc_free(&d);
    return rc;
}
