/* libFuzzer target: the JSON Schema validator on the JSON array [schema, value]. Checks: it
   ends (depth and step limits), answers the same with and without error detail, and only
   with the documented results. */
#define AGENTKIT_IMPLEMENTATION
#include "../agentkit.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ak_json_doc d;
    ak_json *input = NULL;
    ak_result rc;
    ak_error err;
    ak_json_doc_init(&d, NULL);
    if (ak_json_parse_value(&d, (const char *)data, size, NULL, &input, NULL) == AK_OK &&
        ak_json_is(input, AK_JSON_ARRAY) && ak_json_len(input) == 2) {
        rc = ak_json_schema_validate(ak_json_at(input, 0), ak_json_at(input, 1), &err);
        if (rc != AK_OK && rc != AK_ERR_SCHEMA && rc != AK_ERR_LIMIT && rc != AK_ERR_INVALID_ARGUMENT) abort();
        if (rc != AK_OK && (err.code != rc || strlen(err.message) >= sizeof err.message)) abort();
        if (ak_json_schema_validate(ak_json_at(input, 0), ak_json_at(input, 1), NULL) != rc) abort();
    }
    ak_json_doc_free(&d);
    return 0;
}
