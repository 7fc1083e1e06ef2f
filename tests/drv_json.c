/* akdriver json-parse [FILE] and json-patch DOC PATCH */
#include "akdriver.h"
#include <stdlib.h>

int drv_json_parse(int argc, char **argv) {
    ak_json_doc d;
    ak_error err;
    ak_buf out;
    char *text;
    size_t len;
    int rc = 1;
    if (drv_read_all(argc > 1 ? argv[1] : NULL, &text, &len) != 0) {
        fprintf(stderr, "cannot read %s\n", argc > 1 ? argv[1] : "stdin");
        return 2;
    }
    ak_json_doc_init(&d, NULL);
    ak_buf_init(&out, NULL);
    if (ak_json_parse(&d, text, len, &err) != AK_OK) {
        fprintf(stderr, "%s\n", err.message);
    } else if (ak_json_write(d.root, &out) != AK_OK) {
        fprintf(stderr, "write failed: %s\n", ak_result_str(out.err));
    } else {
        drv_print_line(&out);
        rc = 0;
    }
    ak_buf_free(&out);
    ak_json_doc_free(&d);
    free(text);
    return rc;
}
