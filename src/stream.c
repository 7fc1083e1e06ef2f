/* >>stream implementation: SSE and NDJSON push parsers */

#include "base.c"
#include "stream.h"

/* ---- shared by both parsers: line ends, cut lines, errors --------------------------------- */

#define AK__ONES UINT64_C(0x0101010101010101)
#define AK__HIGHS UINT64_C(0x8080808080808080)
/* Nonzero when a byte of w equals the byte repeated in rep (the classic zero-byte test on
   w ^ rep; exact as a yes/no answer). */
#define AK__HAS_BYTE(w, rep) ((((w) ^ (rep)) - AK__ONES) & ~((w) ^ (rep)) & AK__HIGHS)

/* Index of the first line end in s[i..n): LF, and CR too when cr is set; n if none. Event
   lines are mostly long runs of JSON, so eight bytes are tested at a time. */
AK_PRIVATE size_t ak__find_eol(const char *s, size_t i, size_t n, int cr) {
    const uint64_t lf = AK__ONES * '\n', crs = AK__ONES * (cr ? '\r' : '\n');
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        AK_MEMCPY(&w, s + i, 8);
        if (AK__HAS_BYTE(w, lf) | AK__HAS_BYTE(w, crs)) break;
    }
    for (; i < n; i++)
        if (s[i] == '\n' || (cr && s[i] == '\r')) break;
    return i;
}

AK_PRIVATE ak_result ak__stream_error(ak_error *err, ak_result rc, const char *who,
                                      const char *what, size_t at, size_t max) {
    if (rc != AK_ERR_LIMIT) return ak_error_set(err, rc, "%s: out of memory", who);
    ak_error_set(err, rc, "%s: %s at byte %zu is longer than the limit of %zu bytes", who, what,
                 at, max);
    if (err) err->offset = at;
    return rc;
}

/* A parser that failed or was stopped by its callback answers every later call so. */
AK_PRIVATE ak_result ak__stream_stopped(ak_error *err, ak_result rc, const char *who) {
    return ak_error_set(err, rc, "%s: the parser stopped earlier (%s)", who, ak_result_str(rc));
}

/* Keeps s[0..n), the start of a line cut by the end of a feed, in held; the line starts at
   stream offset at when nothing was held yet. Fails when the line outgrows max. */
AK_PRIVATE ak_result ak__hold(ak_buf *held, size_t *held_pos, size_t max, const char *s,
                              size_t n, size_t at) {
    if (!held->len) *held_pos = at;
    if (n > max || held->len > max - n) return AK_ERR_LIMIT;
    ak_buf_append(held, s, n);
    return held->err ? AK_ERR_OUT_OF_MEMORY : AK_OK;
}

/* The line ending with s[0..n): s itself when nothing is held (no copy), else the held
   start plus s. The caller clears held after using the line. */
AK_PRIVATE ak_result ak__join_line(ak_buf *held, size_t *held_pos, size_t max, const char *s,
                                   size_t n, size_t at, const char **line, size_t *line_len) {
    ak_result rc;
    if (!held->len) {
        *held_pos = at;
        *line = s, *line_len = n;
        return n > max ? AK_ERR_LIMIT : AK_OK;
    }
    rc = ak__hold(held, held_pos, max, s, n, at);
    *line = held->ptr, *line_len = held->len;
    return rc;
}

/* ---- SSE ---------------------------------------------------------------------------------- */

enum { AK__SSE_IGNORED, AK__SSE_DATA, AK__SSE_EVENT, AK__SSE_ID, AK__SSE_RETRY };

AKDEF void ak_sse_init(ak_sse_parser *p, const ak_allocator *alloc, ak_sse_cb cb, void *ud) {
    AK_MEMSET(p, 0, sizeof *p);
    p->max_event = AK_SSE_MAX_EVENT;
    p->retry = -1;
    p->cb = cb;
    p->ud = ud;
    ak_buf_init(&p->line, alloc);
    ak_buf_init(&p->data, alloc);
    ak_buf_init(&p->event, alloc);
    ak_buf_init(&p->id, alloc);
    ak_buf_init(&p->clean, alloc);
}

AKDEF void ak_sse_free(ak_sse_parser *p) {
    if (!p) return;
    ak_buf_free(&p->line);
    ak_buf_free(&p->data);
    ak_buf_free(&p->event);
    ak_buf_free(&p->id);
    ak_buf_free(&p->clean);
}

AK_PRIVATE size_t ak__sse_max(const ak_sse_parser *p) {
    return AK__DEF(p->max_event, AK_SSE_MAX_EVENT);
}

AK_PRIVATE ak_result ak__sse_oom(ak_error *err) {
    return ak__stream_error(err, AK_ERR_OUT_OF_MEMORY, "SSE", NULL, 0, 0);
}

AK_PRIVATE int ak__sse_field(const char *name, size_t len) {
    if (ak__eqn(name, len, "data")) return AK__SSE_DATA;
    if (ak__eqn(name, len, "event")) return AK__SSE_EVENT;
    if (ak__eqn(name, len, "id")) return AK__SSE_ID;
    if (ak__eqn(name, len, "retry")) return AK__SSE_RETRY;
    return AK__SSE_IGNORED; /* unknown fields, e.g. old llama.cpp "error:", are ignored */
}

/* Replaces b's text with the value, invalid UTF-8 replaced (as a browser decodes it). */
AK_PRIVATE ak_result ak__sse_set(ak_buf *b, const char *v, size_t n, ak_error *err) {
    ak_buf_clear(b);
    ak_utf8_sanitize(b, v, n);
    return b->err ? ak__sse_oom(err) : AK_OK;
}

AK_PRIVATE int ak__has_nul(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!s[i]) return 1;
    return 0;
}

/* "retry" sets the reconnection time when the value is all ASCII digits; anything else,
   including a number too big for int64, is ignored. */
AK_PRIVATE void ak__sse_retry(ak_sse_parser *p, const char *v, size_t n) {
    int64_t ms = 0;
    size_t i;
    if (!n) return;
    for (i = 0; i < n; i++) {
        int d = v[i] - '0';
        if (d < 0 || d > 9 || ms > (INT64_MAX - d) / 10) return;
        ms = ms * 10 + d;
    }
    p->retry = ms;
    p->retry_new = 1;
}

AK_PRIVATE ak_result ak__sse_data(ak_sse_parser *p, const char *v, size_t n, size_t at,
                                  ak_error *err) {
    ak_buf *b = &p->data;
    size_t max = ak__sse_max(p);
    /* b holds the earlier lines, each with its "\n"; the last one's "\n" is not delivered */
    if (n > max || b->len > max - n)
        return ak__stream_error(err, AK_ERR_LIMIT, "SSE", "event data up to the line", at, max);
    if (ak_buf_reserve(b, n + 1) != AK_OK) return ak__sse_oom(err);
    if (n) AK_MEMCPY(b->ptr + b->len, v, n);
    b->len += n;
    b->ptr[b->len++] = '\n';
    b->ptr[b->len] = 0;
    return AK_OK;
}

/* An empty line: hands the assembled event to the callback, then starts the next one.
   No data line, no event (only the type is reset). */
AK_PRIVATE ak_result ak__sse_dispatch(ak_sse_parser *p, ak_error *err) {
    ak_sse_event ev;
    ak_result rc;
    if (!p->data.len) {
        ak_buf_clear(&p->event);
        return AK_OK;
    }
    p->data.ptr[--p->data.len] = 0;
    ev.data = p->data.ptr;
    ev.data_len = p->data.len;
    /* Validated per event, not per feed: a feed may end inside a UTF-8 sequence. */
    if (!ak_utf8_valid(ev.data, ev.data_len)) {
        ak_buf_clear(&p->clean);
        ak_utf8_sanitize(&p->clean, ev.data, ev.data_len);
        if (p->clean.err) return ak__sse_oom(err);
        ev.data = p->clean.ptr;
        ev.data_len = p->clean.len;
    }
    ev.event = p->event.len ? p->event.ptr : "message";
    ev.event_len = p->event.len ? p->event.len : 7;
    ev.id = p->id.len ? p->id.ptr : "";
    ev.id_len = p->id.len;
    ev.retry = p->retry_new ? p->retry : -1;
    p->retry_new = 0;
    rc = p->cb(p->ud, &ev);
    ak_buf_clear(&p->data);
    ak_buf_clear(&p->event);
    return rc;
}

/* One complete line (without its end), starting at stream offset at. */
AK_PRIVATE ak_result ak__sse_line(ak_sse_parser *p, const char *s, size_t n, size_t at,
                                  ak_error *err) {
    size_t name_len = 0;
    const char *v;
    size_t vn;
    if (!n) return ak__sse_dispatch(p, err);
    if (s[0] == ':') return AK_OK; /* a comment: keep-alives like ": ping" */
    while (name_len < n && s[name_len] != ':') name_len++;
    v = s + name_len, vn = n - name_len; /* no colon: the whole line names a field, value "" */
    if (vn) v++, vn--;
    if (vn && v[0] == ' ') v++, vn--;
    switch (ak__sse_field(s, name_len)) {
    case AK__SSE_DATA: return ak__sse_data(p, v, vn, at, err);
    case AK__SSE_EVENT: return ak__sse_set(&p->event, v, vn, err);
    case AK__SSE_ID: return ak__has_nul(v, vn) ? AK_OK : ak__sse_set(&p->id, v, vn, err);
    case AK__SSE_RETRY: ak__sse_retry(p, v, vn); return AK_OK;
    default: return AK_OK;
    }
}

AK_PRIVATE ak_result ak__sse_hold(ak_sse_parser *p, const char *s, size_t n, size_t at,
                                  ak_error *err) {
    ak_result rc = ak__hold(&p->line, &p->line_pos, ak__sse_max(p), s, n, at);
    if (rc == AK_OK) return AK_OK;
    return ak__stream_error(err, rc, "SSE", "line", p->line_pos, ak__sse_max(p));
}

AK_PRIVATE ak_result ak__sse_end_line(ak_sse_parser *p, const char *s, size_t n, size_t at,
                                      ak_error *err) {
    const char *line;
    size_t len;
    ak_result rc = ak__join_line(&p->line, &p->line_pos, ak__sse_max(p), s, n, at, &line, &len);
    if (rc != AK_OK)
        return ak__stream_error(err, rc, "SSE", "line", p->line_pos, ak__sse_max(p));
    rc = ak__sse_line(p, line, len, p->line_pos, err);
    ak_buf_clear(&p->line);
    return rc;
}

/* Strips a UTF-8 BOM at the very start of the stream, which may arrive a byte per feed.
   Returns how many bytes of s it took. A start that turns out not to be a BOM is kept as
   the beginning of the first line. */
AK_PRIVATE size_t ak__sse_bom(ak_sse_parser *p, const char *s, size_t n, ak_result *rc,
                              ak_error *err) {
    static const char bom[] = "\xEF\xBB\xBF";
    size_t i = 0;
    while (p->bom < 3 && i < n) {
        if (s[i] == bom[p->bom]) {
            p->bom++, i++;
            continue;
        }
        if (p->bom) *rc = ak__sse_hold(p, bom, p->bom, 0, err);
        p->bom = 3;
    }
    return i;
}

/* What the fast path below may append to the held line: nothing while a CR may be followed
   by its LF, a BOM may be in progress or the parser has stopped; else what fits both the
   line's memory (and its NUL) and the size limit. Set at the end of every slow-path feed. */
AK_PRIVATE size_t ak__sse_room(const ak_sse_parser *p) {
    const ak_buf *b = &p->line;
    size_t max = ak__sse_max(p), room;
    if (p->err || p->after_cr || p->bom != 3 || !b->cap || b->len >= max) return 0;
    room = b->cap - b->len - 1;
    return max - b->len < room ? max - b->len : room;
}

/* A slow link delivers a few bytes per read, mostly in the middle of a line. This handles
   such a feed in a few instructions when it fits the room left and ends no line (a line's
   first bytes too); returns 0 (having changed nothing) for anything else. */
AK_PRIVATE int ak__sse_extend(ak_sse_parser *p, const char *s, size_t n) {
    ak_buf *b = &p->line;
    size_t len = b->len, i;
    char *dst;
    if (!n || n > 15 || n > p->room) return 0;
    for (i = 0; i < n; i++)
        if (s[i] == '\n' || s[i] == '\r') return 0;
    dst = b->ptr + len;
    for (i = 0; i < n; i++) dst[i] = s[i];
    dst[n] = 0;
    b->len = len + n;
    p->room -= n;
    p->pos += n;
    return 1;
}

/* The general path, kept out of ak_sse_feed so the fast path above does not pay for the
   register saves this loop needs (it makes byte-at-a-time feeding half again as fast). */
AK__NOINLINE AK_PRIVATE ak_result ak__sse_feed_lines(ak_sse_parser *p, const char *data,
                                                     size_t len, ak_error *err) {
    ak_result rc = AK_OK;
    size_t i = ak__sse_bom(p, data, len, &rc, err);
    while (rc == AK_OK && i < len) {
        size_t end;
        if (p->after_cr) { /* the LF of a CRLF whose CR ended the previous line */
            p->after_cr = 0;
            if (data[i] == '\n' && ++i == len) break;
        }
        end = ak__find_eol(data, i, len, 1);
        if (end == len) {
            rc = ak__sse_hold(p, data + i, len - i, p->pos + i, err);
            break;
        }
        rc = ak__sse_end_line(p, data + i, end - i, p->pos + i, err);
        p->after_cr = data[end] == '\r';
        i = end + 1;
    }
    p->pos += len;
    p->err = rc;
    p->room = ak__sse_room(p);
    if (!p->line.len) p->line_pos = p->pos; /* where a line the fast path starts begins */
    return rc;
}

AKDEF ak_result ak_sse_feed(ak_sse_parser *p, const char *data, size_t len, ak_error *err) {
    if (p && data && ak__sse_extend(p, data, len)) return AK_OK; /* room is 0 until checked below */
    if (!p || !p->cb || (!data && len))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_sse_feed: NULL parser, callback or data");
    if (p->err) return ak__stream_stopped(err, p->err, "SSE");
    return ak__sse_feed_lines(p, data, len, err);
}

AKDEF ak_result ak_sse_finish(ak_sse_parser *p, ak_error *err) {
    if (!p) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_sse_finish: NULL parser");
    if (p->err) return ak__stream_stopped(err, p->err, "SSE");
    ak_buf_clear(&p->line);
    ak_buf_clear(&p->data);
    ak_buf_clear(&p->event);
    p->pos = 0;
    p->bom = 0;
    p->after_cr = 0;
    p->room = 0;
    return AK_OK;
}

/* ---- NDJSON ------------------------------------------------------------------------------- */

AKDEF void ak_ndjson_init(ak_ndjson_parser *p, const ak_allocator *alloc, ak_ndjson_cb cb,
                          void *ud) {
    AK_MEMSET(p, 0, sizeof *p);
    p->max_line = AK_NDJSON_MAX_LINE;
    p->cb = cb;
    p->ud = ud;
    ak_buf_init(&p->line, alloc);
}

AKDEF void ak_ndjson_free(ak_ndjson_parser *p) {
    if (p) ak_buf_free(&p->line);
}

AK_PRIVATE size_t ak__ndjson_max(const ak_ndjson_parser *p) {
    return AK__DEF(p->max_line, AK_NDJSON_MAX_LINE);
}

AK_PRIVATE int ak__blank(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

AK_PRIVATE ak_result ak__ndjson_line(ak_ndjson_parser *p, const char *s, size_t n) {
    if (n && s[n - 1] == '\r') n--;
    return ak__blank(s, n) ? AK_OK : p->cb(p->ud, s, n);
}

AK_PRIVATE ak_result ak__ndjson_fail(ak_ndjson_parser *p, ak_result rc, ak_error *err) {
    return ak__stream_error(err, rc, "NDJSON", "line", p->line_pos, ak__ndjson_max(p));
}

AK_PRIVATE ak_result ak__ndjson_end_line(ak_ndjson_parser *p, const char *s, size_t n,
                                         size_t at, ak_error *err) {
    const char *line;
    size_t len;
    ak_result rc = ak__join_line(&p->line, &p->line_pos, ak__ndjson_max(p), s, n, at, &line, &len);
    if (rc != AK_OK) return ak__ndjson_fail(p, rc, err);
    rc = ak__ndjson_line(p, line, len);
    ak_buf_clear(&p->line);
    return rc;
}

AKDEF ak_result ak_ndjson_feed(ak_ndjson_parser *p, const char *data, size_t len, ak_error *err) {
    ak_result rc = AK_OK;
    size_t i = 0;
    if (!p || !p->cb || (!data && len))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_ndjson_feed: NULL parser, callback or data");
    if (p->err) return ak__stream_stopped(err, p->err, "NDJSON");
    while (rc == AK_OK && i < len) {
        size_t end = ak__find_eol(data, i, len, 0);
        if (end == len) {
            rc = ak__hold(&p->line, &p->line_pos, ak__ndjson_max(p), data + i, len - i, p->pos + i);
            if (rc != AK_OK) rc = ak__ndjson_fail(p, rc, err);
            break;
        }
        rc = ak__ndjson_end_line(p, data + i, end - i, p->pos + i, err);
        i = end + 1;
    }
    p->pos += len;
    p->err = rc;
    return rc;
}

AKDEF ak_result ak_ndjson_finish(ak_ndjson_parser *p, ak_error *err) {
    ak_result rc;
    if (!p) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "ak_ndjson_finish: NULL parser");
    if (p->err) return ak__stream_stopped(err, p->err, "NDJSON");
    rc = ak__ndjson_line(p, p->line.ptr, p->line.len);
    ak_buf_clear(&p->line);
    p->pos = 0;
    p->err = rc;
    return rc;
}
