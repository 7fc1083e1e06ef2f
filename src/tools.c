/* >>tools: tool-call outcomes and the handle table of tools answering later */

#include "agent.h"
#include "filestore.c"

enum { AK__TOOL_IDLE = 0, AK__TOOL_RUNNING, AK__TOOL_DONE, AK__TOOL_FAILED, AK__TOOL_INTERRUPTED };

struct ak__tool_slot {
    uint32_t generation;         /* bumped on release: old handles stop matching */
    ak_tool_call *call;          /* NULL = free */
};

AKDEF ak_result ak_tool_return(ak_tool_call *call, ak_json *output) {
    call->output = output ? output : ak_json_new_null(call->doc);
    call->state = call->output ? AK__TOOL_DONE : AK__TOOL_FAILED;
    if (!call->output)
        ak_error_setst(&call->error, AK_ERR_OUT_OF_MEMORY, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return AK_OK;
}

AKDEF ak_result ak_tool_fail(ak_tool_call *call, ak_status status, const char *fmt, ...) {
    va_list ap;
    call->state = AK__TOOL_FAILED;
    va_start(ap, fmt);
    ak__error_vset(&call->error, AK_ERR_AGENT, status, fmt, ap);
    va_end(ap);
    return AK_ERR_AGENT;
}

AKDEF ak_result ak_tool_interrupt(ak_tool_call *call, const ak_json *metadata) {
    call->interrupt = metadata ? ak_json_copy(call->doc, metadata) : ak_json_new_bool(call->doc, 1);
    call->state = call->interrupt ? AK__TOOL_INTERRUPTED : AK__TOOL_FAILED;
    if (!call->interrupt)
        ak_error_setst(&call->error, AK_ERR_OUT_OF_MEMORY, AK_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return AK_OK;
}

/* A handle packs the slot index (low 16 bits, +1 so 0 is never valid) and generation. */
#define AK__HANDLE(i, gen) (((uint32_t)(gen) << 16) | ((uint32_t)(i) + 1))

/* Gives a pending call a handle; AK_ERR_OUT_OF_MEMORY / AK_ERR_LIMIT when none is free. */
AK_PRIVATE ak_result ak__slot_acquire(ak_agent *a, ak_tool_call *call) {
    uint32_t i;
    for (i = 0; i < a->slot_count && a->slots[i].call; i++) {
    }
    if (i == a->slot_count) {
        uint32_t n = a->slot_count ? a->slot_count * 2 : 16;
        ak__tool_slot *s;
        if (n > 0xFFFF) return AK_ERR_LIMIT;
        s = (ak__tool_slot *)ak_realloc(ak_context_allocator(a->ctx), a->slots, a->slot_count * sizeof *s,
                                        n * sizeof *s);
        if (!s) return AK_ERR_OUT_OF_MEMORY;
        AK_MEMSET(s + a->slot_count, 0, (n - a->slot_count) * sizeof *s);
        a->slots = s;
        a->slot_count = n;
    }
    a->slots[i].call = call;
    call->handle.id = AK__HANDLE(i, a->slots[i].generation & 0xFFFF);
    return AK_OK;
}

AK_PRIVATE void ak__slot_release(ak_agent *a, ak_tool_call *call) {
    uint32_t i = (call->handle.id & 0xFFFF) - 1;
    if (call->handle.id && i < a->slot_count && a->slots[i].call == call) {
        a->slots[i].call = NULL;
        a->slots[i].generation++;
    }
    call->handle.id = 0;
}

AK_PRIVATE ak_tool_call *ak__slot_find(ak_agent *a, ak_tool_handle h) {
    uint32_t i = (h.id & 0xFFFF) - 1;
    if (!h.id || i >= a->slot_count || !a->slots[i].call ||
        AK__HANDLE(i, a->slots[i].generation & 0xFFFF) != h.id)
        return NULL;
    return a->slots[i].call;
}

AKDEF ak_result ak_agent_tool_return(ak_agent *a, ak_tool_handle h, const ak_json *output) {
    ak_tool_call *call = ak__slot_find(a, h);
    if (!call) return AK_ERR_NOT_FOUND;
    ak__slot_release(a, call);
    return ak_tool_return(call, ak_json_copy(call->doc, output));
}

AKDEF ak_result ak_agent_tool_fail(ak_agent *a, ak_tool_handle h, ak_status status, const char *message) {
    ak_tool_call *call = ak__slot_find(a, h);
    if (!call) return AK_ERR_NOT_FOUND;
    ak__slot_release(a, call);
    ak_tool_fail(call, status, "%s", message ? message : "tool failed");
    return AK_OK;
}

AKDEF ak_result ak_agent_tool_interrupt(ak_agent *a, ak_tool_handle h, const ak_json *metadata) {
    ak_tool_call *call = ak__slot_find(a, h);
    if (!call) return AK_ERR_NOT_FOUND;
    ak__slot_release(a, call);
    return ak_tool_interrupt(call, metadata);
}
