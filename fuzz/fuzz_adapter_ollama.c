/* libFuzzer target: the Ollama native adapter's response assembly (and, with option
   bit 4, its request building). Harness and input format: fuzz_adapter.h. */
#define FUZZ_ADAPTER ak_adapter_ollama
#include "fuzz_adapter.h"
