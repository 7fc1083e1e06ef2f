/* libFuzzer target: the Anthropic Messages adapter's response assembly (and, with option bit 4,
   its request building). Harness and input format: fuzz_adapter.h. */
#define FUZZ_ADAPTER ak_adapter_anthropic
#include "fuzz_adapter.h"
