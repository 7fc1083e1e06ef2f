/* >>session implementation: message lists, session state, snapshots and their JSON */

#include "session.h"
#include "model_local.c"

static const char *const ak__snapshot_status_names[] = {NULL, "pending", "completed", "aborted", "failed", "expired"};

AKDEF const char *ak_snapshot_status_name(ak_snapshot_status s) {
    return (unsigned)s < AK__COUNTOF(ak__snapshot_status_names) ? ak__snapshot_status_names[s] : NULL;
}

AKDEF ak_snapshot_status ak_snapshot_status_from_name(const char *name) {
    unsigned i;
    for (i = 1; name && i < AK__COUNTOF(ak__snapshot_status_names); i++)
        if (ak__streq(name, ak__snapshot_status_names[i])) return (ak_snapshot_status)i;
    return AK_SNAPSHOT_NONE;
}

AKDEF int ak_id_is_safe(const char *id) {
    size_t n = 0;
    if (!id || !*id || ak__streq(id, ".") || ak__streq(id, "..")) return 0;
    for (; id[n]; n++) {
        unsigned char c = AK__U8(id[n]);
        if (n >= AK_ID_MAX || c < 0x20 || c >= 0x7F || c == '/' || c == '\\') return 0;
    }
    return 1;
}

AK_PRIVATE char *ak__strdup(const ak_allocator *a, const char *s) {
    size_t n;
    char *p;
    if (!s) return NULL;
    n = ak__strlen(s);
    p = (char *)ak_alloc(a, n + 1);
    if (p) AK_MEMCPY(p, s, n + 1);
    return p;
}

AK_PRIVATE void ak__strfree(const ak_allocator *a, char *s) {
    if (s) ak_free(a, s, ak__strlen(s) + 1);
}

/* ---- message lists -------------------------------------------------------------------- */

AKDEF size_t ak_msgs_count(const ak_msgs *m) { return m ? m->count : 0; }

AKDEF const ak_json *ak_msgs_at(const ak_msgs *m, size_t i) {
    const ak_json *v;
    if (!m || i >= m->count) return NULL;
    while (i < m->prev_count) m = m->prev;
    for (v = m->first, i -= m->prev_count; v && i; i--) v = v->next;
    return v;
}

AKDEF void ak_msgs_collect(const ak_msgs *m, const ak_json **out) {
    size_t limit = ak_msgs_count(m);
    /* Top segment first; each contributes its own messages below the current limit. */
    for (; m && limit; m = m->prev) {
        const ak_json *v = m->first;
        size_t i = m->prev_count;
        for (; v && i < limit; v = v->next) out[i++] = v;
        if (limit > m->prev_count) limit = m->prev_count;
    }
}

AKDEF ak_msgs *ak_msgs_retain(ak_msgs *m) {
    if (m) m->refs++;
    return m;
}

AKDEF void ak_msgs_release(ak_msgs *m) {
    /* Iterative: a long conversation is a long chain of segments. */
    while (m && --m->refs == 0) {
        ak_msgs *prev = m->prev;
        ak_json_doc_free(&m->doc);
        ak_free(m->alloc, m, sizeof *m);
        m = prev;
    }
}

/* A new empty segment on top of the first prev_count messages of prev (reference taken). */
AK_PRIVATE ak_msgs *ak__msgs_segment(const ak_allocator *a, ak_msgs *prev, size_t prev_count, size_t hint) {
    ak_msgs *m = (ak_msgs *)ak_alloc(a, sizeof *m);
    if (!m) return NULL;
    AK_MEMSET(m, 0, sizeof *m);
    m->refs = 1;
    m->alloc = a;
    m->prev = prev;
    m->prev_count = m->count = prev_count;
    ak_json_doc_init(&m->doc, a);
    m->doc.arena.next_size = AK__MAX(hint, 256);
    return m;
}

/* Makes *m a segment this caller alone may append to. */
AK_PRIVATE ak_result ak__msgs_own(const ak_allocator *a, ak_msgs **m, size_t hint) {
    ak_msgs *top;
    if (*m && (*m)->refs == 1) return AK_OK;
    /* The caller's reference to the shared list moves into the new segment's prev. */
    top = ak__msgs_segment(a, *m, ak_msgs_count(*m), hint);
    if (!top) return AK_ERR_OUT_OF_MEMORY;
    *m = top;
    return AK_OK;
}

AKDEF ak_result ak_msgs_append(const ak_allocator *a, ak_msgs **m, const ak_json *msg) {
    ak_json *copy;
    ak_result rc = ak__msgs_own(a, m, ak_json_copy_size(msg) * 2);
    if (rc != AK_OK) return rc;
    copy = ak_json_copy(&(*m)->doc, msg);
    if (!copy) return AK_ERR_OUT_OF_MEMORY;
    copy->next = NULL;
    if ((*m)->last) (*m)->last->next = copy;
    else (*m)->first = copy;
    (*m)->last = copy;
    (*m)->count++;
    return AK_OK;
}

AKDEF ak_result ak_msgs_compact(const ak_allocator *a, ak_msgs *m) {
    ak_json_doc packed;
    ak_json *v, *first = NULL, *last = NULL;
    size_t need = 0;
    if (!m || m->refs != 1 || !m->first) return AK_OK;
    for (v = m->first; v; v = v->next) need += ak_json_copy_size(v);
    if (ak_arena_capacity(&m->doc.arena) <= need + need / 8) return AK_OK; /* already tight */
    ak_arena_init(&packed.arena, a, need);
    packed.root = NULL;
    packed.err = AK_OK;
    for (v = m->first; v; v = v->next) {
        ak_json *c = ak_json_copy(&packed, v);
        if (!c) {
            ak_json_doc_free(&packed);
            return AK_ERR_OUT_OF_MEMORY; /* the list is unchanged */
        }
        if (last) last->next = c;
        else first = c;
        last = c;
    }
    ak_json_doc_free(&m->doc);
    m->doc = packed;
    m->first = first;
    m->last = last;
    return AK_OK;
}

AKDEF ak_result ak_msgs_truncate(const ak_allocator *a, ak_msgs **m, size_t n) {
    ak_msgs *top;
    size_t own;
    if (n > ak_msgs_count(*m)) return AK_ERR_INVALID_ARGUMENT;
    if (n == ak_msgs_count(*m)) return AK_OK;
    if ((*m)->refs == 1 && n >= (*m)->prev_count) {
        /* Drop own messages in place (their memory goes with the segment). */
        ak_json *v = (*m)->first;
        for (own = n - (*m)->prev_count; own > 1; own--) v = v->next;
        if (n == (*m)->prev_count) (*m)->first = (*m)->last = NULL;
        else v->next = NULL, (*m)->last = v;
        (*m)->count = n;
        return AK_OK;
    }
    /* Shared, or cutting into an older segment: a new empty view of the first n. */
    top = ak__msgs_segment(a, *m, n, 0);
    if (!top) return AK_ERR_OUT_OF_MEMORY;
    *m = top;
    return AK_OK;
}

AKDEF ak_result ak_msgs_from_json(const ak_allocator *a, const ak_json *array, ak_msgs **out) {
    const ak_json *v;
    *out = NULL;
    for (v = ak_json_first(array); v; v = v->next) {
        ak_result rc = ak_msgs_append(a, out, v);
        if (rc != AK_OK) {
            ak_msgs_release(*out);
            *out = NULL;
            return rc;
        }
    }
    return AK_OK;
}

AKDEF ak_json *ak_msgs_to_json(const ak_msgs *m, ak_json_doc *d) {
    ak_json *arr = ak_json_new_array(d), *tail = NULL;
    size_t i, n = ak_msgs_count(m);
    for (i = 0; arr && i < n; i++) {
        ak_json *c = ak_json_copy(d, ak_msgs_at(m, i));
        if (!c) return NULL;
        /* link directly: ak_json_push would walk the list every time */
        if (tail) tail->next = c;
        else arr->u.first = c;
        tail = c;
        arr->len++;
    }
    return arr;
}

/* ---- session state -------------------------------------------------------------------- */

AKDEF ak_result ak_session_state_copy(const ak_allocator *a, const ak_session_state *from,
                                      ak_session_state *to) {
    AK_MEMSET(to, 0, sizeof *to);
    if (!from) return AK_OK;
    if (from->session_id && !(to->session_id = ak__strdup(a, from->session_id))) return AK_ERR_OUT_OF_MEMORY;
    to->messages = ak_msgs_retain(from->messages);
    to->custom = ak_jref_retain(from->custom);
    to->artifacts = ak_jref_retain(from->artifacts);
    return AK_OK;
}

AKDEF void ak_session_state_free(const ak_allocator *a, ak_session_state *s) {
    ak__strfree(a, s->session_id);
    ak_msgs_release(s->messages);
    ak_jref_release(s->custom);
    ak_jref_release(s->artifacts);
    AK_MEMSET(s, 0, sizeof *s);
}

AKDEF ak_result ak_session_state_set_id(const ak_allocator *a, ak_session_state *s, const char *id) {
    char *copy = ak__strdup(a, id);
    if (!copy) return AK_ERR_OUT_OF_MEMORY;
    ak__strfree(a, s->session_id);
    s->session_id = copy;
    return AK_OK;
}

AKDEF ak_json *ak_session_state_to_json(const ak_session_state *s, ak_json_doc *d) {
    ak_json *o = ak_json_new_object(d);
    if (!o) return NULL;
    /* Genkit writes these keys in this order. */
    if (s->custom) ak_json_set(d, o, "custom", ak_json_copy(d, s->custom->value));
    ak_json_set(d, o, "artifacts", s->artifacts ? ak_json_copy(d, s->artifacts->value) : ak_json_new_array(d));
    ak_json_set(d, o, "messages", ak_msgs_to_json(s->messages, d));
    if (s->session_id) ak_json_set_str(d, o, "sessionId", s->session_id);
    return d->err ? NULL : o;
}

AK_PRIVATE ak_result ak__artifacts_validate(const ak_json *arr, ak_error *err) {
    const ak_json *a, *p;
    size_t i = 0;
    if (!ak_json_is(arr, AK_JSON_ARRAY)) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "artifacts must be an array");
    for (a = arr->u.first; a; a = a->next, i++) {
        const ak_json *name = ak_json_get(a, "name"), *parts = ak_json_get(a, "parts");
        if (!ak_json_is(a, AK_JSON_OBJECT) || (name && name->type != AK_JSON_STRING) ||
            !ak_json_is(parts, AK_JSON_ARRAY))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "artifacts[%zu]: an artifact is {name?, parts: [...]}", i);
        for (p = parts->u.first; p; p = p->next) {
            ak_error inner;
            if (ak_part_validate(p, &inner) != AK_OK)
                return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "artifacts[%zu]: %s", i, inner.message);
        }
    }
    return AK_OK;
}

AKDEF ak_result ak_session_state_from_json(const ak_allocator *a, const ak_json *v,
                                           ak_session_state *out, ak_error *err) {
    const ak_json *sid = ak_json_get(v, "sessionId"), *msgs = ak_json_get(v, "messages"),
                  *custom = ak_json_get(v, "custom"), *arts = ak_json_get(v, "artifacts"), *m;
    size_t i = 0;
    ak_result rc;
    AK_MEMSET(out, 0, sizeof *out);
    if (!ak_json_is(v, AK_JSON_OBJECT)) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "state must be an object");
    if (sid && (sid->type != AK_JSON_STRING || sid->len == 0))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "state.sessionId must be a non-empty string");
    if (msgs && msgs->type != AK_JSON_ARRAY)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "state.messages must be an array");
    for (m = ak_json_first(msgs); m; m = m->next, i++) {
        ak_error inner;
        if (ak_msg_validate(m, &inner) != AK_OK)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "state.messages[%zu]: %s", i, inner.message);
    }
    if (arts && (rc = ak__artifacts_validate(arts, err)) != AK_OK) return rc;
    if ((sid && !(out->session_id = ak__strdup(a, sid->u.str))) ||
        ak_msgs_from_json(a, msgs, &out->messages) != AK_OK ||
        (custom && !(out->custom = ak_jref_new(a, custom))) ||
        (arts && arts->len && !(out->artifacts = ak_jref_new(a, arts)))) {
        ak_session_state_free(a, out);
        return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory loading session state");
    }
    return AK_OK;
}

/* ---- snapshots ------------------------------------------------------------------------ */

AK_PRIVATE void ak__snapshot_destroy(ak_snapshot *s) {
    const ak_allocator *a = s->alloc;
    ak__strfree(a, s->id);
    ak__strfree(a, s->session_id);
    ak__strfree(a, s->parent_id);
    ak_jref_release(s->error);
    ak_session_state_free(a, &s->state);
    ak_free(a, s, sizeof *s);
}

AKDEF ak_snapshot *ak_snapshot_new(const ak_allocator *a, const char *id, const char *session_id,
                                   const char *parent_id, const ak_session_state *state) {
    ak_snapshot *s = (ak_snapshot *)ak_alloc(a, sizeof *s);
    if (!s) return NULL;
    AK_MEMSET(s, 0, sizeof *s);
    s->refs = 1;
    s->alloc = a;
    if ((id && !(s->id = ak__strdup(a, id))) || (session_id && !(s->session_id = ak__strdup(a, session_id))) ||
        (parent_id && !(s->parent_id = ak__strdup(a, parent_id))) ||
        ak_session_state_copy(a, state, &s->state) != AK_OK) {
        ak__snapshot_destroy(s);
        return NULL;
    }
    return s;
}

AKDEF ak_snapshot *ak_snapshot_clone(const ak_snapshot *from) {
    ak_snapshot *s = ak_snapshot_new(from->alloc, from->id, from->session_id, from->parent_id, &from->state);
    if (!s) return NULL;
    s->created_at = from->created_at;
    s->updated_at = from->updated_at;
    s->heartbeat_at = from->heartbeat_at;
    s->status = from->status;
    s->finish_reason = from->finish_reason;
    s->has_finish_reason = from->has_finish_reason;
    s->error = ak_jref_retain(from->error);
    return s;
}

AKDEF ak_snapshot *ak_snapshot_retain(ak_snapshot *s) {
    if (s) s->refs++;
    return s;
}

AKDEF void ak_snapshot_release(ak_snapshot *s) {
    if (s && --s->refs == 0) ak__snapshot_destroy(s);
}

AKDEF ak_result ak_snapshot_set_error(ak_snapshot *s, ak_status status, const char *message,
                                      const ak_json *details) {
    ak_json_doc d;
    ak_json *e;
    ak_jref *r;
    ak_json_doc_init(&d, s->alloc);
    e = ak_json_new_object(&d);
    ak_json_set_str(&d, e, "status", ak_status_name(status));
    ak_json_set_str(&d, e, "message", message ? message : "");
    if (details) ak_json_set(&d, e, "details", ak_json_copy(&d, details));
    r = d.err ? NULL : ak_jref_new(s->alloc, e);
    ak_json_doc_free(&d);
    if (!r) return AK_ERR_OUT_OF_MEMORY;
    ak_jref_release(s->error);
    s->error = r;
    return AK_OK;
}

AK_PRIVATE void ak__set_time(ak_json_doc *d, ak_json *o, const char *key, int64_t ms) {
    char ts[25];
    ak_iso8601(ms, ts);
    ak_json_set_str(d, o, key, ts);
}

AKDEF ak_json *ak_snapshot_to_json(const ak_snapshot *s, ak_snapshot_status status_override,
                                   ak_json_doc *d) {
    ak_json *o = ak_json_new_object(d);
    ak_snapshot_status st = status_override ? status_override : s->status;
    if (!o) return NULL;
    /* Genkit's key order, so stored and served snapshots read the same */
    ak_json_set_str(d, o, "snapshotId", s->id ? s->id : "");
    if (s->session_id) ak_json_set_str(d, o, "sessionId", s->session_id);
    ak__set_time(d, o, "createdAt", s->created_at);
    if (s->updated_at) ak__set_time(d, o, "updatedAt", s->updated_at);
    ak_json_set(d, o, "state", ak_session_state_to_json(&s->state, d));
    if (s->parent_id) ak_json_set_str(d, o, "parentId", s->parent_id);
    if (st) ak_json_set_str(d, o, "status", ak_snapshot_status_name(st));
    if (s->has_finish_reason) ak_json_set_str(d, o, "finishReason", ak_finish_reason_name(s->finish_reason));
    if (s->error) ak_json_set(d, o, "error", ak_json_copy(d, s->error->value));
    if (s->heartbeat_at) ak__set_time(d, o, "heartbeatAt", s->heartbeat_at);
    return d->err ? NULL : o;
}

AK_PRIVATE int ak__digits(const char *s, int n, int *out) {
    int i, v = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* Days from 1970-01-01 to y-m-d (the inverse of ak__civil). */
AK_PRIVATE int64_t ak__days_from_civil(int y, int m, int d) {
    int64_t era;
    unsigned yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

AKDEF ak_result ak_iso8601_parse(const char *s, size_t len, int64_t *ms) {
    int y, mo, d, h, mi, sec, frac = 0;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':' || !ak__digits(s, 4, &y) || !ak__digits(s + 5, 2, &mo) || !ak__digits(s + 8, 2, &d) ||
        !ak__digits(s + 11, 2, &h) || !ak__digits(s + 14, 2, &mi) || !ak__digits(s + 17, 2, &sec))
        return AK_ERR_INVALID_ARGUMENT;
    if (s[19] == '.') {
        size_t i = 20;
        int scale = 100;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10) frac += (s[i] - '0') * scale;
        if (i == 20) return AK_ERR_INVALID_ARGUMENT;
        s += i - 19, len -= i - 19;
    }
    if (len != 20 || (s[19] != 'Z' && s[19] != 'z') || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
        mi > 59 || sec > 60)
        return AK_ERR_INVALID_ARGUMENT;
    *ms = ((ak__days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + frac;
    return AK_OK;
}

/* Reads an optional timestamp member; 0 when absent. */
AK_PRIVATE ak_result ak__get_time(const ak_json *o, const char *key, int64_t *out, ak_error *err) {
    const ak_json *v = ak_json_get(o, key);
    *out = 0;
    if (!v) return AK_OK;
    if (v->type != AK_JSON_STRING || ak_iso8601_parse(v->u.str, v->len, out) != AK_OK)
        return ak_error_set(err, AK_ERR_DATA_LOSS, "snapshot: %s is not an ISO-8601 timestamp", key);
    return AK_OK;
}

AK_PRIVATE ak_result ak__opt_id(const ak_json *o, const char *key, const char **out, ak_error *err) {
    const ak_json *v = ak_json_get(o, key);
    *out = NULL;
    if (!v) return AK_OK;
    if (v->type != AK_JSON_STRING || v->len == 0 || v->len > AK_ID_MAX)
        return ak_error_set(err, AK_ERR_DATA_LOSS, "snapshot: %s must be a string of 1..%d bytes", key, AK_ID_MAX);
    *out = v->u.str;
    return AK_OK;
}

AKDEF ak_result ak_snapshot_from_json(const ak_allocator *a, const ak_json *v, ak_snapshot **out,
                                      ak_error *err) {
    const char *id, *sid, *pid, *st, *fr;
    ak_session_state state;
    const ak_json *e = ak_json_get(v, "error");
    ak_snapshot *s;
    ak_result rc;
    *out = NULL;
    if (!ak_json_is(v, AK_JSON_OBJECT)) return ak_error_set(err, AK_ERR_DATA_LOSS, "snapshot: not an object");
    if ((rc = ak__opt_id(v, "snapshotId", &id, err)) != AK_OK || (rc = ak__opt_id(v, "sessionId", &sid, err)) != AK_OK ||
        (rc = ak__opt_id(v, "parentId", &pid, err)) != AK_OK)
        return rc;
    if (!id) return ak_error_set(err, AK_ERR_DATA_LOSS, "snapshot: snapshotId is missing");
    st = ak_json_get_str(v, "status");
    fr = ak_json_get_str(v, "finishReason");
    if ((ak_json_get(v, "status") && !ak_snapshot_status_from_name(st)) ||
        (ak_json_get(v, "finishReason") && !fr) || (e && !ak_json_is(e, AK_JSON_OBJECT)))
        return ak_error_set(err, AK_ERR_DATA_LOSS, "snapshot %s: bad status, finishReason or error", id);
    if ((rc = ak_session_state_from_json(a, ak_json_get(v, "state") ? ak_json_get(v, "state") : v, &state, err)) != AK_OK) {
        if (rc == AK_ERR_OUT_OF_MEMORY) return rc; /* the row may be fine: not data loss */
        if (err) err->code = AK_ERR_DATA_LOSS, err->status = AK_STATUS_DATA_LOSS;
        return AK_ERR_DATA_LOSS;
    }
    if (!sid) sid = state.session_id; /* older rows keep it only in the state */
    s = ak_snapshot_new(a, id, sid, pid, &state);
    ak_session_state_free(a, &state);
    if (!s) return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory loading snapshot");
    s->status = ak_snapshot_status_from_name(st);
    s->has_finish_reason = fr != NULL;
    s->finish_reason = ak_finish_reason_from_name(fr);
    if ((rc = ak__get_time(v, "createdAt", &s->created_at, err)) != AK_OK ||
        (rc = ak__get_time(v, "updatedAt", &s->updated_at, err)) != AK_OK ||
        (rc = ak__get_time(v, "heartbeatAt", &s->heartbeat_at, err)) != AK_OK ||
        (e && !(s->error = ak_jref_new(a, e)))) {
        ak_snapshot_release(s);
        return rc ? rc : ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory loading snapshot");
    }
    *out = s;
    return AK_OK;
}

#define AK__HEARTBEAT_TIMEOUT_MS 60000

AKDEF ak_snapshot_status ak_snapshot_read_status(const ak_snapshot *s, int64_t now_ms) {
    if (s->status == AK_SNAPSHOT_PENDING && s->heartbeat_at && now_ms - s->heartbeat_at > AK__HEARTBEAT_TIMEOUT_MS)
        return AK_SNAPSHOT_EXPIRED;
    return s->status;
}
