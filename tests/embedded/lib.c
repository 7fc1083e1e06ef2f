/* lib.c - the library's implementation in a translation unit of its own, so the size table
   can tell the library's bytes from the firmware's. */
#define AGENTKIT_IMPLEMENTATION
#include "../../agentkit.h"
