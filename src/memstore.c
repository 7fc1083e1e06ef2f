/* >>memstore: the in-memory snapshot store, in compact rows.

   A row is what one save added: the snapshot's fields, a binary id when the id is a UUID,
   its parent's id, how many of the parent's messages it keeps, and the messages after those
   as compact JSON text (with Genkit's fixed message prefixes folded into single bytes).
   Custom state, artifacts and errors are shared references. The AK_MEMSTORE_HOT most recent
   rows also hold their parsed message list, so resuming a live conversation costs nothing;
   an older row rebuilds its list from its ancestors when it is read. */

#include "session.c"

/* 32-bit FNV-1a: cheap on a 32-bit MCU. Both hash tables have a power of two buckets, so
   a bucket is the hash's low bits. */
AK_PRIVATE uint32_t ak__mem_fnv(const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint32_t h = 2166136261u;
    while (n--) h = (h ^ *b++) * 16777619u;
    return h;
}

/* ---- ids: UUIDs as 16 bytes, anything else as text ------------------------------------- */

typedef struct ak__memid {
    unsigned char bin[16];
    const char *str;             /* set for ids that are not canonical UUIDs */
    size_t len;
} ak__memid;

AK_PRIVATE int ak__mem_hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A lowercase 8-4-4-4-12 UUID as 16 bytes; anything else is kept as text. */
AK_PRIVATE void ak__memid_parse(const char *s, ak__memid *id) {
    size_t n = ak__strlen(s), i, o = 0;
    id->str = s;
    id->len = n;
    if (n != 36) return;
    for (i = 0; i < 36; i++) {
        int hi, lo;
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return;
            continue;
        }
        if ((hi = ak__mem_hexval(s[i])) < 0 || (lo = ak__mem_hexval(s[i + 1])) < 0) return;
        id->bin[o++] = (unsigned char)(hi << 4 | lo);
        i++;
    }
    id->str = NULL;
}

AK_PRIVATE void ak__memid_format(const unsigned char *bin, char out[37]) {
    static const char hex[] = "0123456789abcdef";
    int i, o = 0;
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[bin[i] >> 4];
        out[o++] = hex[bin[i] & 15];
    }
    out[o] = 0;
}

/* The hash of an id given as text (`text` set) or as 16 bytes. */
AK_PRIVATE uint32_t ak__memid_hash_of(const void *p, size_t n, int text) {
    return ak__mem_fnv(p, text ? n : 16) ^ (uint32_t)(text != 0);
}

AK_PRIVATE uint32_t ak__memid_hash(const ak__memid *id) {
    return id->str ? ak__memid_hash_of(id->str, id->len, 1) : ak__memid_hash_of(id->bin, 16, 0);
}

/* ---- the message text codec ------------------------------------------------------------ */

/* Compact JSON never contains raw bytes below 0x20 (the writer escapes them), so 0x01..0x06
   can stand for the prefixes nearly every Genkit message starts with. */
static const char *const ak__memtok[] = {
    NULL,
    "{\"role\":\"user\",\"content\":[{\"text\":\"",
    "{\"role\":\"model\",\"content\":[{\"text\":\"",
    "\"}]}",
    "{\"role\":\"tool\",\"content\":[{\"toolResponse\":{\"name\":\"",
    "{\"role\":\"model\",\"content\":[{\"toolRequest\":{\"name\":\"",
    "{\"role\":\"system\",\"content\":[{\"text\":\"",
};

AK_PRIVATE void ak__memtext_encode(ak_buf *out, const char *s, size_t n) {
    size_t i = 0, t;
    while (i < n) {
        for (t = 1; t < AK__COUNTOF(ak__memtok); t++) {
            size_t tl = ak__strlen(ak__memtok[t]);
            if (tl <= n - i && AK_MEMCMP(s + i, ak__memtok[t], tl) == 0) break;
        }
        if (t < AK__COUNTOF(ak__memtok)) {
            ak_buf_putc(out, (char)t);
            i += ak__strlen(ak__memtok[t]);
        } else {
            size_t j = i + 1;
            while (j < n && s[j] != '{' && s[j] != '"') j++; /* tokens start with { or " */
            ak_buf_append(out, s + i, j - i);
            i = j;
        }
    }
}

AK_PRIVATE void ak__memtext_decode(ak_buf *out, const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = AK__U8(s[i]);
        if (c > 0 && c < AK__COUNTOF(ak__memtok)) ak_buf_puts(out, ak__memtok[c]);
        else ak_buf_putc(out, s[i]);
    }
}

/* ---- rows and sessions ----------------------------------------------------------------- */

/* What few rows have: custom state, artifacts, an error, a heartbeat, a finish message. */
typedef struct ak__memaux {
    ak_jref *custom, *artifacts, *error;
    int64_t heartbeat_at;
} ak__memaux;

struct ak__memrow {
    ak__memrow *next_id;         /* hash chain by id */
    ak__memrow *next_in_session; /* the session's rows */
    ak__memsess *session;
    ak_msgs *hot;                /* parsed message list while hot (a reference), else NULL */
    ak__memaux *aux;             /* NULL for plain turns */
    int64_t created_at;
    uint32_t updated_delta;      /* updated_at - created_at; UINT32_MAX = no updatedAt */
    uint32_t seq;                /* write order: breaks createdAt ties */
    uint32_t keep;               /* messages taken from the parent's list */
    uint32_t own;                /* messages in text */
    uint32_t text_len;
    uint16_t id_len, parent_len; /* 0 = binary UUID; else length of the text id after text */
    uint8_t status, finish, flags, mark;
    unsigned char id[16], parent[16];
    /* followed by: text (encoded messages), then the id and parent id when not UUIDs */
};

#define AK__ROW_HAS_PARENT 0x01u
#define AK__ROW_HAS_FINISH 0x02u
#define AK__ROW_IN_RING 0x04u

struct ak__memsess {
    ak__memsess *next;
    ak__memrow *rows;
    size_t len;
    char id[1];                  /* NUL-terminated, allocated with the struct */
};

AK_PRIVATE const char *ak__row_text(const ak__memrow *r) { return (const char *)(r + 1); }

/* The row's id (parent set: its parent's id) as text. */
AK_PRIVATE void ak__row_id(const ak__memrow *r, int parent, char out[AK_ID_MAX + 1]) {
    size_t len = parent ? r->parent_len : r->id_len;
    if (!len) ak__memid_format(parent ? r->parent : r->id, out);
    else AK_MEMCPY(out, ak__row_text(r) + r->text_len + (parent ? r->id_len : 0), len), out[len] = 0;
}

/* The same hash as ak__memid_hash of the row's id. */
AK_PRIVATE uint32_t ak__row_hash(const ak__memrow *r) {
    return r->id_len ? ak__memid_hash_of(ak__row_text(r) + r->text_len, r->id_len, 1)
                     : ak__memid_hash_of(r->id, 16, 0);
}

AK_PRIVATE int ak__row_is(const ak__memrow *r, const ak__memid *id) {
    if (id->str) return r->id_len == id->len && AK_MEMCMP(ak__row_text(r) + r->text_len, id->str, id->len) == 0;
    return !r->id_len && AK_MEMCMP(r->id, id->bin, 16) == 0;
}

AK_PRIVATE size_t ak__row_size(const ak__memrow *r) {
    return sizeof *r + r->text_len + r->id_len + r->parent_len;
}

AK_PRIVATE const ak_allocator *ak__mem_alloc(const ak_memstore *m) { return ak_context_allocator(m->ctx); }

AK_PRIVATE void ak__aux_free(ak_memstore *m, ak__memaux *aux) {
    if (!aux) return;
    ak_jref_release(aux->custom);
    ak_jref_release(aux->artifacts);
    ak_jref_release(aux->error);
    ak_free(ak__mem_alloc(m), aux, sizeof *aux);
}

AK_PRIVATE void ak__row_unhot(ak_memstore *m, ak__memrow *r) {
    size_t i;
    ak_msgs_release(r->hot);
    r->hot = NULL;
    if (r->flags & AK__ROW_IN_RING)
        for (i = 0; i < AK_MEMSTORE_HOT; i++)
            if (m->hot[i] == r) m->hot[i] = NULL;
    r->flags &= (uint8_t)~AK__ROW_IN_RING;
}

AK_PRIVATE void ak__row_free(ak_memstore *m, ak__memrow *r) {
    ak__row_unhot(m, r);
    ak__aux_free(m, r->aux);
    ak_free(ak__mem_alloc(m), r, ak__row_size(r));
}

/* Keeps r's message list parsed; the oldest hot row goes cold to make room. */
AK_PRIVATE void ak__row_make_hot(ak_memstore *m, ak__memrow *r, ak_msgs *list) {
    ak__memrow *old;
    if (r->hot) {
        ak_msgs_release(list);
        return;
    }
    r->hot = list;
    if ((old = m->hot[m->hot_next]) != NULL) {
        ak_msgs_release(old->hot);
        old->hot = NULL;
        old->flags &= (uint8_t)~AK__ROW_IN_RING;
    }
    m->hot[m->hot_next] = r;
    r->flags |= AK__ROW_IN_RING;
    m->hot_next = (m->hot_next + 1) % AK_MEMSTORE_HOT;
}

#define AK__ROW_BUCKET(m, id) (&(m)->rows[ak__memid_hash(id) & ((m)->row_buckets - 1)])

AK_PRIVATE ak__memrow *ak__mem_find(const ak_memstore *m, const ak__memid *id) {
    ak__memrow *r;
    if (!m->row_buckets) return NULL;
    for (r = *AK__ROW_BUCKET(m, id); r; r = r->next_id)
        if (ak__row_is(r, id)) return r;
    return NULL;
}

AK_PRIVATE ak__memrow *ak__mem_find_str(const ak_memstore *m, const char *s) {
    ak__memid id;
    ak__memid_parse(s, &id);
    return ak__mem_find(m, &id);
}

/* The row's parent row, when it has a parent that is stored. */
AK_PRIVATE ak__memrow *ak__row_parent_row(const ak_memstore *m, const ak__memrow *r) {
    char pid[AK_ID_MAX + 1];
    if (!(r->flags & AK__ROW_HAS_PARENT)) return NULL;
    ak__row_id(r, 1, pid);
    return ak__mem_find_str(m, pid);
}

AK_PRIVATE ak__memsess *ak__mem_session(ak_memstore *m, const char *sid, int create) {
    size_t n = ak__strlen(sid);
    uint32_t h = ak__mem_fnv(sid, n);
    ak__memsess *s;
    if (m->session_buckets)
        for (s = m->sessions[h & (m->session_buckets - 1)]; s; s = s->next)
            if (ak__streq(s->id, sid)) return s;
    if (!create) return NULL;
    if (m->session_count >= m->session_buckets) {
        size_t nb = m->session_buckets ? m->session_buckets * 2 : 64, i;
        ak__memsess **b = (ak__memsess **)ak_alloc(ak__mem_alloc(m), nb * sizeof *b);
        if (!b) return NULL;
        AK_MEMSET(b, 0, nb * sizeof *b);
        for (i = 0; i < m->session_buckets; i++)
            while (m->sessions[i]) {
                ak__memsess *x = m->sessions[i];
                ak__memsess **to = &b[ak__mem_fnv(x->id, x->len) & (nb - 1)];
                m->sessions[i] = x->next;
                x->next = *to;
                *to = x;
            }
        ak_free(ak__mem_alloc(m), m->sessions, m->session_buckets * sizeof *m->sessions);
        m->sessions = b;
        m->session_buckets = nb;
    }
    if (!(s = (ak__memsess *)ak_alloc(ak__mem_alloc(m), sizeof *s + n))) return NULL;
    s->rows = NULL;
    s->len = n;
    AK_MEMCPY(s->id, sid, n + 1);
    s->next = m->sessions[h & (m->session_buckets - 1)];
    m->sessions[h & (m->session_buckets - 1)] = s;
    m->session_count++;
    return s;
}

AK_PRIVATE ak_result ak__mem_grow(ak_memstore *m) {
    size_t n = m->row_buckets ? m->row_buckets * 2 : 64, i;
    ak__memrow **b = (ak__memrow **)ak_alloc(ak__mem_alloc(m), n * sizeof *b);
    if (!b) return AK_ERR_OUT_OF_MEMORY;
    AK_MEMSET(b, 0, n * sizeof *b);
    for (i = 0; i < m->row_buckets; i++)
        while (m->rows[i]) {
            ak__memrow *r = m->rows[i], **to = &b[ak__row_hash(r) & (n - 1)];
            m->rows[i] = r->next_id;
            r->next_id = *to;
            *to = r;
        }
    ak_free(ak__mem_alloc(m), m->rows, m->row_buckets * sizeof *m->rows);
    m->rows = b;
    m->row_buckets = n;
    return AK_OK;
}

/* ---- rebuilding a row's message list --------------------------------------------------- */

/* Appends the row's own messages (decoded from its text) to *list. */
AK_PRIVATE ak_result ak__row_append_own(ak_memstore *m, const ak__memrow *r, ak_msgs **list) {
    const ak_allocator *a = ak__mem_alloc(m);
    ak_json_doc d;
    ak_json *arr = NULL;
    const ak_json *msg;
    ak_buf b;
    ak_result rc = AK_OK;
    if (!r->own) return AK_OK;
    ak_buf_init(&b, a);
    ak_buf_putc(&b, '[');
    ak__memtext_decode(&b, ak__row_text(r), r->text_len);
    ak_buf_putc(&b, ']');
    ak_json_doc_init(&d, a);
    if (b.err || ak_json_parse_value(&d, b.ptr, b.len, NULL, &arr, NULL) != AK_OK) rc = b.err ? b.err : AK_ERR_DATA_LOSS;
    for (msg = ak_json_first(arr); rc == AK_OK && msg; msg = msg->next) rc = ak_msgs_append(a, list, msg);
    if (rc == AK_OK) ak_msgs_compact(a, *list);
    ak_json_doc_free(&d);
    ak_buf_free(&b);
    return rc;
}

/* A new reference to the full message list of r, rebuilt from its ancestors if it is cold.
   Iterative: a long conversation is a long chain. */
AK_PRIVATE ak_result ak__row_messages(ak_memstore *m, ak__memrow *r, ak_msgs **out) {
    const ak_allocator *a = ak__mem_alloc(m);
    ak__memrow **chain = NULL, *p;
    size_t n = 0, cap = 0, i;
    ak_msgs *list = NULL;
    ak_result rc = AK_OK;
    *out = NULL;
    /* walk up to the nearest hot row (or the root), remembering the cold ones */
    for (p = r; p && !p->hot; p = p->keep ? ak__row_parent_row(m, p) : NULL) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            ak__memrow **c = (ak__memrow **)ak_realloc(a, chain, cap * sizeof *chain, nc * sizeof *chain);
            if (!c) {
                rc = AK_ERR_OUT_OF_MEMORY;
                break;
            }
            chain = c, cap = nc;
        }
        if (n > m->count) {
            rc = AK_ERR_DATA_LOSS; /* a parent loop */
            break;
        }
        chain[n++] = p;
        if (p->keep && !ak__row_parent_row(m, p)) {
            rc = AK_ERR_DATA_LOSS; /* it keeps messages of a parent that is gone */
            break;
        }
    }
    if (rc == AK_OK && p) list = ak_msgs_retain(p->hot);
    /* then rebuild downwards: each row keeps `keep` of its parent's messages, adds its own */
    for (i = n; rc == AK_OK && i-- > 0;) {
        ak__memrow *row = chain[i];
        if (ak_msgs_count(list) < row->keep) rc = AK_ERR_DATA_LOSS;
        else if ((rc = ak_msgs_truncate(a, &list, row->keep)) == AK_OK) rc = ak__row_append_own(m, row, &list);
        if (rc == AK_OK) ak__row_make_hot(m, row, ak_msgs_retain(list));
    }
    ak_free(a, chain, cap * sizeof *chain);
    if (rc != AK_OK) {
        ak_msgs_release(list);
        return rc;
    }
    *out = list;
    return AK_OK;
}

/* ---- rows <-> snapshots ---------------------------------------------------------------- */

AK_PRIVATE ak_result ak__row_to_snapshot(ak_memstore *m, ak__memrow *r, ak_snapshot **out, ak_error *err) {
    char id[AK_ID_MAX + 1], pid[AK_ID_MAX + 1];
    ak_session_state st;
    ak_snapshot *s;
    ak_result rc;
    *out = NULL;
    AK_MEMSET(&st, 0, sizeof st);
    if ((rc = ak__row_messages(m, r, &st.messages)) != AK_OK)
        return ak_error_setst(err, rc, rc == AK_ERR_OUT_OF_MEMORY ? AK_STATUS_RESOURCE_EXHAUSTED : AK_STATUS_DATA_LOSS,
                              "cannot rebuild the messages of snapshot: %s", ak_result_str(rc));
    st.session_id = r->session->id; /* borrowed for the copy below */
    if (r->aux) st.custom = r->aux->custom, st.artifacts = r->aux->artifacts;
    ak__row_id(r, 0, id);
    if (r->flags & AK__ROW_HAS_PARENT) ak__row_id(r, 1, pid);
    s = ak_snapshot_new(ak__mem_alloc(m), id, r->session->id, (r->flags & AK__ROW_HAS_PARENT) ? pid : NULL, &st);
    ak_msgs_release(st.messages);
    if (!s) return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory reading a snapshot");
    s->created_at = r->created_at;
    s->updated_at = r->updated_delta == 0xFFFFFFFFu ? 0 : r->created_at + r->updated_delta;
    s->status = (ak_snapshot_status)r->status;
    s->has_finish_reason = (r->flags & AK__ROW_HAS_FINISH) != 0;
    s->finish_reason = (ak_finish_reason)r->finish;
    if (r->aux) s->error = ak_jref_retain(r->aux->error), s->heartbeat_at = r->aux->heartbeat_at;
    *out = s;
    return AK_OK;
}

/* Number of leading messages two lists share (by identity first, then by value). */
AK_PRIVATE size_t ak__common_prefix(const ak_msgs *a, const ak_msgs *b) {
    size_t n = ak_msgs_count(a), i;
    if (ak_msgs_count(b) < n) n = ak_msgs_count(b);
    if (b && b->prev == a && b->prev_count == n) return n; /* the usual case: one turn on top */
    for (i = 0; i < n; i++) {
        const ak_json *x = ak_msgs_at(a, i), *y = ak_msgs_at(b, i);
        if (x != y && !ak_json_equal(x, y)) break;
    }
    return i;
}

/* Stores an id in a row: 16 bytes in bin for a UUID (returns 0), else its text at text
   (returns its length). */
AK_PRIVATE uint16_t ak__memid_store(const ak__memid *id, unsigned char bin[16], char *text) {
    size_t n = id->str ? id->len : sizeof id->bin;
    AK_MEMCPY(id->str ? (void *)text : bin, id->str ? (const void *)id->str : id->bin, n); /* one copy call */
    return (uint16_t)(id->str ? n : 0);
}

/* Encodes s as a row: what its parent row's list lacks, and the rest of its fields. */
AK_PRIVATE ak_result ak__row_from_snapshot(ak_memstore *m, const ak_snapshot *s, const ak__memid *rid, ak__memrow **out) {
    const ak_allocator *a = ak__mem_alloc(m);
    ak__memid pid;
    ak__memrow *parent = NULL, *r;
    ak_msgs *plist = NULL;
    size_t keep = 0, count = ak_msgs_count(s->state.messages), i, text_len;
    ak_buf text, json;
    ak_result rc = AK_OK;
    const char *sid = s->session_id ? s->session_id : s->state.session_id;
    *out = NULL;
    if (!sid) return AK_ERR_INVALID_ARGUMENT; /* every agent snapshot names its session */
    if (s->parent_id) {
        ak__memid_parse(s->parent_id, &pid);
        parent = ak__mem_find(m, &pid);
    }
    if (parent && ak__row_messages(m, parent, &plist) == AK_OK) keep = ak__common_prefix(plist, s->state.messages);
    ak_msgs_release(plist);
    ak_buf_init(&text, a);
    ak_buf_init(&json, a);
    for (i = keep; i < count; i++) {
        ak_buf_clear(&json);
        if (i > keep) ak_buf_putc(&text, ',');
        ak_json_write(ak_msgs_at(s->state.messages, i), &json);
        if (json.ptr) ak__memtext_encode(&text, json.ptr, json.len);
    }
    text_len = text.len;
    if (text.err || json.err || text_len > 0xFFFFFFFFu) rc = AK_ERR_OUT_OF_MEMORY;
    r = rc == AK_OK ? (ak__memrow *)ak_alloc(a, sizeof *r + text_len + (rid->str ? rid->len : 0) +
                                                    (s->parent_id && pid.str ? pid.len : 0))
                    : NULL;
    if (!r) {
        ak_buf_free(&text), ak_buf_free(&json);
        return AK_ERR_OUT_OF_MEMORY;
    }
    AK_MEMSET(r, 0, sizeof *r);
    r->created_at = s->created_at;
    r->updated_delta = s->updated_at && s->updated_at >= s->created_at && s->updated_at - s->created_at < 0xFFFFFFFFll
                           ? (uint32_t)(s->updated_at - s->created_at) : 0xFFFFFFFFu;
    r->keep = (uint32_t)keep;
    r->own = (uint32_t)(count - keep);
    r->text_len = (uint32_t)text_len;
    r->status = (uint8_t)s->status;
    r->finish = (uint8_t)s->finish_reason;
    if (s->has_finish_reason) r->flags |= AK__ROW_HAS_FINISH;
    if (text_len) AK_MEMCPY((char *)(r + 1), text.ptr, text_len);
    r->id_len = ak__memid_store(rid, r->id, (char *)(r + 1) + text_len);
    if (s->parent_id) {
        r->flags |= AK__ROW_HAS_PARENT;
        r->parent_len = ak__memid_store(&pid, r->parent, (char *)(r + 1) + text_len + r->id_len);
    }
    ak_buf_free(&text);
    ak_buf_free(&json);
    if (s->state.custom || s->state.artifacts || s->error || s->heartbeat_at) {
        if (!(r->aux = (ak__memaux *)ak_alloc(a, sizeof *r->aux))) {
            ak_free(a, r, ak__row_size(r));
            return AK_ERR_OUT_OF_MEMORY;
        }
        r->aux->custom = ak_jref_retain(s->state.custom);
        r->aux->artifacts = ak_jref_retain(s->state.artifacts);
        r->aux->error = ak_jref_retain(s->error);
        r->aux->heartbeat_at = s->heartbeat_at;
    }
    if (!(r->session = ak__mem_session(m, sid, 1))) {
        ak__row_free(m, r);
        return AK_ERR_OUT_OF_MEMORY;
    }
    *out = r;
    return AK_OK;
}

/* ---- the store interface --------------------------------------------------------------- */

struct ak_memstore_watch {
    ak_memstore_watch *next;
    char *id;
    ak_store_listener fn;
    void *ud;
};

/* The session's latest leaf: rows of the session no other row of it names as parent. */
AK_PRIVATE ak_result ak__mem_latest_leaf(ak_memstore *m, const char *sid, ak__memrow **out, ak_error *err) {
    ak__memsess *s = ak__mem_session(m, sid, 0);
    ak__memrow *r, *best = NULL;
    size_t leaves = 0;
    *out = NULL;
    if (!s || !s->rows) return AK_OK;
    for (r = s->rows; r; r = r->next_in_session) r->mark = 0;
    for (r = s->rows; r; r = r->next_in_session) {
        ak__memrow *p = ak__row_parent_row(m, r);
        if (p && p->session == s) p->mark = 1;
    }
    for (r = s->rows; r; r = r->next_in_session) {
        if (r->mark || ak__row_parent_row(m, r) == r) continue; /* a row naming itself is cyclic */
        leaves++;
        if (!best || r->created_at > best->created_at || (r->created_at == best->created_at && r->seq > best->seq))
            best = r;
    }
    if (!best)
        return ak_error_setst(err, AK_ERR_STATE, AK_STATUS_FAILED_PRECONDITION,
                              "Session '%s' has no leaf snapshot (corrupt or cyclic history).", sid);
    if (leaves > 1 && m->reject_branching)
        return ak_error_setst(err, AK_ERR_STATE, AK_STATUS_FAILED_PRECONDITION,
                              "Session '%s' has branched into %zu leaves.", sid, leaves);
    *out = best;
    return AK_OK;
}

AK_PRIVATE ak_result ak__mem_get(ak_store *st, const char *snapshot_id, const char *session_id,
                                 const ak_json *context, ak_snapshot **out, ak_error *err) {
    ak_memstore *m = (ak_memstore *)st->ud;
    ak__memrow *r = NULL;
    ak_result rc;
    AK__UNUSED(context);
    *out = NULL;
    if ((snapshot_id == NULL) == (session_id == NULL) || (session_id && !*session_id))
        return ak_error_setst(err, AK_ERR_INVALID_ARGUMENT, AK_STATUS_INVALID_ARGUMENT,
                              "Exactly one of snapshotId or sessionId is required.");
    if (session_id) {
        if ((rc = ak__mem_latest_leaf(m, session_id, &r, err)) != AK_OK) return rc;
    } else if (ak__strlen(snapshot_id) <= AK_ID_MAX) {
        r = ak__mem_find_str(m, snapshot_id);
    }
    return r ? ak__row_to_snapshot(m, r, out, err) : AK_OK;
}

AK_PRIVATE void ak__mem_notify(ak_memstore *m, const ak_snapshot *snap) {
    ak_memstore_watch *w, *next;
    for (w = m->watches; w; w = next) {
        next = w->next;
        if (w->fn && ak__streq(w->id, snap->id)) w->fn(w->ud, snap);
    }
}

/* Puts r in place of `old` (or adds it), keeping the hash and session chains. */
AK_PRIVATE void ak__mem_link(ak_memstore *m, ak__memrow *r, ak__memrow *old, const ak__memid *id) {
    ak__memrow **link;
    if (old) {
        for (link = AK__ROW_BUCKET(m, id); *link != old; link = &(*link)->next_id) {
        }
        *link = old->next_id;
        for (link = &old->session->rows; *link; link = &(*link)->next_in_session)
            if (*link == old) {
                *link = old->next_in_session;
                break;
            }
        ak__row_free(m, old);
        m->count--;
    }
    r->next_id = *AK__ROW_BUCKET(m, id);
    *AK__ROW_BUCKET(m, id) = r;
    r->next_in_session = r->session->rows;
    r->session->rows = r;
    r->seq = ++m->seq;
    m->count++;
}

AK_PRIVATE ak_result ak__mem_save(ak_store *st, const char *snapshot_id, ak_store_mutator fn, void *fn_ud,
                                  const ak_json *context, char written_id[AK_ID_MAX + 1], ak_error *err) {
    ak_memstore *m = (ak_memstore *)st->ud;
    ak__memrow *old = NULL, *r;
    ak_snapshot *current = NULL, *next = NULL;
    ak__memid id;
    char fresh[37];
    const char *name;
    ak_result rc;
    AK__UNUSED(context);
    written_id[0] = 0;
    if (snapshot_id && ak__strlen(snapshot_id) <= AK_ID_MAX) { /* parsed once: it names the row written */
        ak__memid_parse(snapshot_id, &id);
        old = ak__mem_find(m, &id);
    }
    if (old && (rc = ak__row_to_snapshot(m, old, &current, err)) != AK_OK) return rc;
    rc = fn(fn_ud, current, &next);
    ak_snapshot_release(current);
    if (rc != AK_OK) return ak_error_set(err, rc, "memory store: the save was refused: %s", ak_result_str(rc));
    if (!next) return AK_OK;
    name = snapshot_id ? snapshot_id : next->id;
    if (!name) {
        if ((rc = ak_uuid4(m->ctx, fresh)) != AK_OK) {
            ak_snapshot_release(next);
            return ak_error_set(err, rc, "cannot make a snapshot id: %s", ak_result_str(rc));
        }
        name = fresh;
    }
    if (!*name || ak__strlen(name) > AK_ID_MAX) {
        ak_snapshot_release(next);
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "snapshot ids are 1..%d bytes", AK_ID_MAX);
    }
    if (!snapshot_id) {
        ak__memid_parse(name, &id);
        old = ak__mem_find(m, &id);
    }
    if (m->count >= m->row_buckets && ak__mem_grow(m) != AK_OK) rc = AK_ERR_OUT_OF_MEMORY;
    else rc = ak__row_from_snapshot(m, next, &id, &r);
    if (rc != AK_OK) {
        ak_snapshot_release(next);
        return rc == AK_ERR_INVALID_ARGUMENT ? ak_error_set(err, rc, "snapshot %s has no sessionId", name)
                                             : ak_error_set(err, rc, "out of memory saving a snapshot");
    }
    ak__mem_link(m, r, old, &id);
    /* the list just written is the one its next turn will read: keep it parsed */
    ak__row_make_hot(m, r, ak_msgs_retain(next->state.messages));
    AK_MEMCPY(written_id, name, ak__strlen(name) + 1);
    if (!next->id || !ak__streq(next->id, name)) {
        char *copy = ak__strdup(next->alloc, name);
        if (copy) ak__strfree(next->alloc, next->id), next->id = copy;
    }
    ak__mem_notify(m, next);
    ak_snapshot_release(next);
    return AK_OK;
}

AK_PRIVATE ak_result ak__mem_watch(ak_store *st, const char *snapshot_id, ak_store_listener fn, void *fn_ud,
                                   const ak_json *context, void **token) {
    ak_memstore *m = (ak_memstore *)st->ud;
    const ak_allocator *a = ak__mem_alloc(m);
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

AK_PRIVATE void ak__mem_unwatch(ak_store *st, void *token) {
    ak_memstore *m = (ak_memstore *)st->ud;
    ak_memstore_watch **link;
    for (link = &m->watches; *link; link = &(*link)->next)
        if (*link == token) {
            ak_memstore_watch *w = *link;
            *link = w->next;
            ak__strfree(ak__mem_alloc(m), w->id);
            ak_free(ak__mem_alloc(m), w, sizeof *w);
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
    const ak_allocator *a = ak__mem_alloc(m);
    size_t i;
    for (i = 0; i < m->row_buckets; i++)
        while (m->rows[i]) {
            ak__memrow *r = m->rows[i];
            m->rows[i] = r->next_id;
            ak__row_free(m, r);
        }
    for (i = 0; i < m->session_buckets; i++)
        while (m->sessions[i]) {
            ak__memsess *s = m->sessions[i];
            m->sessions[i] = s->next;
            ak_free(a, s, sizeof *s + s->len);
        }
    ak_free(a, m->rows, m->row_buckets * sizeof *m->rows);
    ak_free(a, m->sessions, m->session_buckets * sizeof *m->sessions);
    while (m->watches) ak__mem_unwatch(&m->store, m->watches);
    m->rows = NULL;
    m->sessions = NULL;
    m->row_buckets = m->session_buckets = m->count = m->session_count = 0;
}
