/* >>memstore: the in-memory snapshot store (process-local; shares state with callers) */

#include "session.c"

struct ak_memstore_entry {
    ak_memstore_entry *next_id;      /* bucket chain by snapshot id */
    ak_memstore_entry *next_session; /* bucket chain by session id */
    ak_snapshot *snap;
    uint64_t seq;                    /* write order: breaks createdAt ties */
    uint64_t mark;                   /* "has a child" marker of the leaf search */
};

struct ak_memstore_watch {
    ak_memstore_watch *next;
    char *id;
    ak_store_listener fn;
    void *ud;
};

/* FNV-1a */
AK_PRIVATE uint64_t ak__hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ AK__U8(*s++)) * 1099511628211ull;
    return h;
}

/* Two chains per bucket index: buckets[2i] by id, buckets[2i+1] by session. */
#define AK__ID_BUCKET(m, id) (&(m)->buckets[2 * (ak__hash(id) % (m)->bucket_count)])
#define AK__SESSION_BUCKET(m, sid) (&(m)->buckets[2 * (ak__hash(sid) % (m)->bucket_count) + 1])

AK_PRIVATE ak_memstore_entry *ak__mem_find(const ak_memstore *m, const char *id) {
    ak_memstore_entry *e;
    if (!m->bucket_count) return NULL;
    for (e = *AK__ID_BUCKET(m, id); e; e = e->next_id)
        if (ak__streq(e->snap->id, id)) return e;
    return NULL;
}

AK_PRIVATE void ak__mem_link(ak_memstore *m, ak_memstore_entry *e) {
    ak_memstore_entry **b = AK__ID_BUCKET(m, e->snap->id);
    e->next_id = *b, *b = e;
    e->next_session = NULL;
    if (e->snap->session_id) {
        b = AK__SESSION_BUCKET(m, e->snap->session_id);
        e->next_session = *b, *b = e;
    }
}

AK_PRIVATE void ak__mem_unlink_session(ak_memstore *m, ak_memstore_entry *e) {
    ak_memstore_entry **link;
    if (!e->snap->session_id) return;
    for (link = AK__SESSION_BUCKET(m, e->snap->session_id); *link; link = &(*link)->next_session)
        if (*link == e) {
            *link = e->next_session;
            return;
        }
}

AK_PRIVATE ak_result ak__mem_grow(ak_memstore *m) {
    size_t n = m->bucket_count ? m->bucket_count * 2 : 64, i;
    const ak_allocator *a = ak_context_allocator(m->ctx);
    ak_memstore_entry **old = m->buckets, *e, *next;
    size_t old_count = m->bucket_count;
    m->buckets = (ak_memstore_entry **)ak_alloc(a, 2 * n * sizeof *m->buckets);
    if (!m->buckets) {
        m->buckets = old;
        return AK_ERR_OUT_OF_MEMORY;
    }
    AK_MEMSET(m->buckets, 0, 2 * n * sizeof *m->buckets);
    m->bucket_count = n;
    for (i = 0; i < old_count; i++)
        for (e = old[2 * i]; e; e = next) next = e->next_id, ak__mem_link(m, e);
    ak_free(a, old, 2 * old_count * sizeof *old);
    return AK_OK;
}

/* The session's latest leaf: snapshots of the session no other snapshot names as parent. */
AK_PRIVATE ak_result ak__mem_latest_leaf(ak_memstore *m, const char *sid, ak_snapshot **out, ak_error *err) {
    ak_memstore_entry *e, *best = NULL, *first;
    uint64_t gen = ++m->seq; /* a fresh marker value, so marks never need clearing */
    size_t members = 0, leaves = 0;
    if (!m->bucket_count) return AK_OK;
    first = *AK__SESSION_BUCKET(m, sid);
    for (e = first; e; e = e->next_session) {
        ak_memstore_entry *p;
        if (!ak__streq(e->snap->session_id, sid)) continue;
        members++;
        if (e->snap->parent_id && (p = ak__mem_find(m, e->snap->parent_id)) != NULL && p != e &&
            p->snap->session_id && ak__streq(p->snap->session_id, sid))
            p->mark = gen;
    }
    for (e = first; e; e = e->next_session) {
        if (!ak__streq(e->snap->session_id, sid) || e->mark == gen) continue;
        /* a snapshot naming itself as parent is not a leaf either (cyclic) */
        if (e->snap->parent_id && ak__streq(e->snap->parent_id, e->snap->id)) continue;
        leaves++;
        if (!best || e->snap->created_at > best->snap->created_at ||
            (e->snap->created_at == best->snap->created_at && e->seq > best->seq))
            best = e;
    }
    if (members && !best)
        return ak_error_setst(err, AK_ERR_STATE, AK_STATUS_FAILED_PRECONDITION,
                              "Session '%s' has no leaf snapshot (corrupt or cyclic history).", sid);
    if (leaves > 1 && m->reject_branching)
        return ak_error_setst(err, AK_ERR_STATE, AK_STATUS_FAILED_PRECONDITION,
                              "Session '%s' has branched into %zu leaves.", sid, leaves);
    *out = best ? ak_snapshot_retain(best->snap) : NULL;
    return AK_OK;
}

AK_PRIVATE ak_result ak__mem_get(ak_store *s, const char *snapshot_id, const char *session_id,
                                 const ak_json *context, ak_snapshot **out, ak_error *err) {
    ak_memstore *m = (ak_memstore *)s->ud;
    ak_memstore_entry *e;
    AK__UNUSED(context);
    *out = NULL;
    if ((snapshot_id == NULL) == (session_id == NULL) || (session_id && !*session_id))
        return ak_error_setst(err, AK_ERR_INVALID_ARGUMENT, AK_STATUS_INVALID_ARGUMENT,
                              "Exactly one of snapshotId or sessionId is required.");
    if (session_id) return ak__mem_latest_leaf(m, session_id, out, err);
    e = ak__mem_find(m, snapshot_id);
    if (e) *out = ak_snapshot_retain(e->snap);
    return AK_OK;
}

AK_PRIVATE void ak__mem_notify(ak_memstore *m, const ak_snapshot *snap) {
    ak_memstore_watch *w, *next;
    for (w = m->watches; w; w = next) {
        next = w->next;
        if (w->fn && ak__streq(w->id, snap->id)) w->fn(w->ud, snap);
    }
}

AK_PRIVATE ak_result ak__mem_save(ak_store *s, const char *snapshot_id, ak_store_mutator fn, void *fn_ud,
                                  const ak_json *context, char written_id[AK_ID_MAX + 1], ak_error *err) {
    ak_memstore *m = (ak_memstore *)s->ud;
    ak_memstore_entry *e = snapshot_id ? ak__mem_find(m, snapshot_id) : NULL;
    ak_snapshot *next = NULL;
    char fresh[37];
    const char *id;
    ak_result rc;
    AK__UNUSED(context);
    written_id[0] = 0;
    if ((rc = fn(fn_ud, e ? e->snap : NULL, &next)) != AK_OK) return rc;
    if (!next) return AK_OK;
    id = snapshot_id ? snapshot_id : next->id;
    if (id && ak__strlen(id) > AK_ID_MAX) {
        ak_snapshot_release(next);
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "snapshot id longer than %d bytes", AK_ID_MAX);
    }
    if (!id) {
        if ((rc = ak_uuid4(m->ctx, fresh)) != AK_OK) {
            ak_snapshot_release(next);
            return ak_error_set(err, rc, "cannot make a snapshot id: %s", ak_result_str(rc));
        }
        id = fresh;
    }
    if (!next->id || !ak__streq(next->id, id)) {
        /* the stored id wins over whatever the mutator put in */
        char *copy = ak__strdup(next->alloc, id);
        if (!copy) {
            ak_snapshot_release(next);
            return AK_ERR_OUT_OF_MEMORY;
        }
        ak__strfree(next->alloc, next->id);
        next->id = copy;
    }
    if (!e) e = ak__mem_find(m, id);
    if (e) {
        ak__mem_unlink_session(m, e);
        ak_snapshot_release(e->snap);
        e->snap = next;
        if (next->session_id) {
            ak_memstore_entry **b = AK__SESSION_BUCKET(m, next->session_id);
            e->next_session = *b, *b = e;
        }
    } else {
        if (m->count >= m->bucket_count && ak__mem_grow(m) != AK_OK) {
            ak_snapshot_release(next);
            return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory saving snapshot");
        }
        e = (ak_memstore_entry *)ak_alloc(ak_context_allocator(m->ctx), sizeof *e);
        if (!e) {
            ak_snapshot_release(next);
            return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory saving snapshot");
        }
        AK_MEMSET(e, 0, sizeof *e);
        e->snap = next;
        ak__mem_link(m, e);
        m->count++;
    }
    e->seq = ++m->seq;
    AK_MEMCPY(written_id, id, ak__strlen(id) + 1);
    ak__mem_notify(m, e->snap);
    return AK_OK;
}

AK_PRIVATE ak_result ak__mem_watch(ak_store *s, const char *snapshot_id, ak_store_listener fn, void *fn_ud,
                                   const ak_json *context, void **token) {
    ak_memstore *m = (ak_memstore *)s->ud;
    const ak_allocator *a = ak_context_allocator(m->ctx);
    ak_memstore_watch *w = (ak_memstore_watch *)ak_alloc(a, sizeof *w);
    AK__UNUSED(context);
    if (!w) return AK_ERR_OUT_OF_MEMORY;
    if (!(w->id = ak__strdup(a, snapshot_id))) {
        ak_free(a, w, sizeof *w);
        return AK_ERR_OUT_OF_MEMORY;
    }
    w->fn = fn, w->ud = fn_ud;
    w->next = m->watches;
    m->watches = w;
    *token = w;
    return AK_OK;
}

AK_PRIVATE void ak__mem_unwatch(ak_store *s, void *token) {
    ak_memstore *m = (ak_memstore *)s->ud;
    ak_memstore_watch **link;
    const ak_allocator *a = ak_context_allocator(m->ctx);
    for (link = &m->watches; *link; link = &(*link)->next)
        if (*link == token) {
            ak_memstore_watch *w = *link;
            *link = w->next;
            ak__strfree(a, w->id);
            ak_free(a, w, sizeof *w);
            return;
        }
}

AKDEF ak_result ak_memstore_init(ak_memstore *m, ak_context *ctx) {
    AK_MEMSET(m, 0, sizeof *m);
    m->ctx = ctx;
    m->store.get = ak__mem_get;
    m->store.save = ak__mem_save;
    m->store.watch = ak__mem_watch;
    m->store.unwatch = ak__mem_unwatch;
    m->store.ud = m;
    return AK_OK;
}

AKDEF void ak_memstore_free(ak_memstore *m) {
    const ak_allocator *a = ak_context_allocator(m->ctx);
    size_t i;
    for (i = 0; i < m->bucket_count; i++) {
        ak_memstore_entry *e = m->buckets[2 * i], *next;
        for (; e; e = next) {
            next = e->next_id;
            ak_snapshot_release(e->snap);
            ak_free(a, e, sizeof *e);
        }
    }
    ak_free(a, m->buckets, 2 * m->bucket_count * sizeof *m->buckets);
    while (m->watches) ak__mem_unwatch(&m->store, m->watches);
    m->buckets = NULL;
    m->bucket_count = m->count = 0;
}
