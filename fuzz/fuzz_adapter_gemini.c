/* libFuzzer target: the Gemini adapter's response assembly (and, with option bit 4,
   its request building). Harness and input format: fuzz_adapter.h. */
#define FUZZ_ADAPTER ak_adapter_gemini
#include "fuzz_adapter.h"
