/* The agents of ../shared/interop-agents.md, built on the scripted model: shared by
   `akdriver serve`, the serve tests and the benchmarks. */
#ifndef INTEROP_AGENTS_H
#define INTEROP_AGENTS_H
#include "../agentkit.h"

enum { INTEROP_AGENT_COUNT = 6 };

typedef struct interop_agents {
    ak_model model;
    ak_memstore stores[3];
    ak_agent agents[INTEROP_AGENT_COUNT];
    ak_agent *list[INTEROP_AGENT_COUNT]; /* for ak_serve_desc.agents */
} interop_agents;

/* Sets up the six agents on ctx; returns AK_OK or the first error. */
ak_result interop_agents_init(interop_agents *ia, ak_context *ctx);
void interop_agents_free(interop_agents *ia);
#endif
