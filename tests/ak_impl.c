/* The one translation unit of the test builds that holds the implementation. */
#define AGENTKIT_IMPLEMENTATION
#include "../agentkit.h"
