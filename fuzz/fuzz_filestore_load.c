/* libFuzzer target: the file store's loader (and a save on top of what it loaded).

   Input: byte 0 = options, byte 1 = the allocation to fail (0 = none), then up to five
   files separated by 0xFF bytes (which valid JSON never holds), served from memory through
   ak_file_ops: rows a, b, c, d of tenant "global" and the pointer file of session "s":
       m/global/a.json  m/global/b.json  m/global/c.json  m/global/d.json
       m/global/.pointers/73.json
     bit 0   after loading, save twice: row b rewritten with one more message, and a new
             row e under a (a delta, a branch, pointers moving, dependents made checkpoints)
     bit 1   checkpoint_every 1 (every row written in full) instead of the default 16
   Each row is loaded by id twice (the second time from the store's cache), then session "s"
   (its pointer) and session "x" (no pointer: a scan of the directory).

   Checks: every load ends in a snapshot or a clean error (DATA_LOSS, NOT_FOUND, STATE,
   OUT_OF_MEMORY) with a message in valid UTF-8; a snapshot is the one asked for and survives
   a JSON round trip; the cached load equals the first; a save never loses data: every row
   that loaded before loads after it (read by a fresh store) exactly as before, except b,
   which is its old or its new version; nothing leaks. */
#define AGENTKIT_IMPLEMENTATION
#include "../agentkit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_heap.h"

/* ---- a file system in memory ---------------------------------------------------------------- */

#define FZ_FILES 32

typedef struct fz_file {
    char *path; /* NULL = free slot */
    char *data;
    size_t len;
} fz_file;

typedef struct fz_fs {
    fz_file f[FZ_FILES];
} fz_fs;

static fz_file *fz_find(fz_fs *fs, const char *path) {
    int i;
    for (i = 0; i < FZ_FILES; i++)
        if (fs->f[i].path && strcmp(fs->f[i].path, path) == 0) return &fs->f[i];
    return NULL;
}

static fz_file *fz_create(fz_fs *fs, const char *path) {
    fz_file *f = fz_find(fs, path);
    int i;
    for (i = 0; !f && i < FZ_FILES; i++)
        if (!fs->f[i].path) {
            f = &fs->f[i];
            f->path = strdup(path);
        }
    if (!f) return NULL;
    free(f->data);
    f->data = NULL;
    f->len = 0;
    return f;
}

static void fz_remove(fz_file *f) {
    free(f->path);
    free(f->data);
    memset(f, 0, sizeof *f);
}

static void fz_fs_free(fz_fs *fs) {
    int i;
    for (i = 0; i < FZ_FILES; i++)
        if (fs->f[i].path) fz_remove(&fs->f[i]);
}

static int fz_open_write(void *ud, const char *path, void **file) {
    fz_file *f = fz_create((fz_fs *)ud, path);
    *file = f;
    return f ? 0 : -1;
}
static int fz_write(void *ud, void *file, const void *data, size_t len) {
    fz_file *f = (fz_file *)file;
    char *p = (char *)realloc(f->data, f->len + len + 1);
    (void)ud;
    if (!p) return -1;
    if (len) memcpy(p + f->len, data, len);
    f->data = p;
    f->len += len;
    return 0;
}
static int fz_ok_file(void *ud, void *file) {
    (void)ud, (void)file;
    return 0;
}
static int fz_read_file(void *ud, const char *path, ak_buf *out) {
    fz_file *f = fz_find((fz_fs *)ud, path);
    if (!f) return 1;
    ak_buf_append(out, f->data, f->len);
    return out->err ? -1 : 0;
}
static int fz_rename(void *ud, const char *from, const char *to) {
    fz_fs *fs = (fz_fs *)ud;
    fz_file *src = fz_find(fs, from), *dst = fz_find(fs, to);
    char *p;
    if (!src) return -1;
    if (dst && dst != src) fz_remove(dst);
    if (!(p = strdup(to))) return -1;
    free(src->path);
    src->path = p;
    return 0;
}
static int fz_remove_file(void *ud, const char *path) {
    fz_file *f = fz_find((fz_fs *)ud, path);
    if (f) fz_remove(f);
    return 0;
}
static int fz_ok_dir(void *ud, const char *dir) {
    (void)ud, (void)dir;
    return 0;
}
static int fz_make_dir(void *ud, const char *dir) {
    (void)ud, (void)dir;
    return 1; /* every directory exists */
}
static int fz_list_dir(void *ud, const char *dir, int (*fn)(void *fud, const char *name), void *fud) {
    fz_fs *fs = (fz_fs *)ud;
    size_t n = strlen(dir);
    int i;
    for (i = 0; i < FZ_FILES; i++) {
        const char *p = fs->f[i].path;
        if (!p || strncmp(p, dir, n) != 0 || p[n] != '/' || strchr(p + n + 1, '/')) continue;
        if (fn(fud, p + n + 1)) return -1;
    }
    return 0;
}
static int fz_lock(void *ud, const char *path, int exclusive, void **handle) {
    (void)path, (void)exclusive;
    *handle = ud;
    return 0;
}
static void fz_unlock(void *ud, void *handle) { (void)ud, (void)handle; }

static void fz_ops(ak_file_ops *o, fz_fs *fs) {
    memset(o, 0, sizeof *o);
    o->open_write = fz_open_write, o->write = fz_write, o->sync = fz_ok_file, o->close = fz_ok_file;
    o->read_file = fz_read_file, o->rename_file = fz_rename, o->remove_file = fz_remove_file;
    o->sync_dir = fz_ok_dir, o->make_dir = fz_make_dir, o->list_dir = fz_list_dir;
    o->lock = fz_lock, o->unlock = fz_unlock;
    o->ud = fs;
}

/* ---- a deterministic context ------------------------------------------------------------------ */

static int64_t fz_now(void *ud) {
    (void)ud;
    return 1700000000000LL;
}
static ak_result fz_random(void *ud, void *buf, size_t len) {
    uint32_t *state = (uint32_t *)ud;
    size_t i;
    for (i = 0; i < len; i++) {
        *state = *state * 1664525u + 1013904223u;
        ((unsigned char *)buf)[i] = (unsigned char)(*state >> 24);
    }
    return AK_OK;
}

typedef struct fz_env {
    fz_heap heap;
    uint32_t seed;
    ak_context ctx;
    ak_filestore fs;
} fz_env;

static void fz_open(fz_env *e, fz_fs *fs, long long fail_at, int options) {
    ak_context_desc cd;
    ak_filestore_desc fd;
    ak_error err;
    fz_heap_init(&e->heap, fail_at);
    e->seed = 1;
    memset(&cd, 0, sizeof cd);
    cd.allocator = e->heap.a;
    cd.now_ms = fz_now, cd.mono_ms = fz_now, cd.random = fz_random, cd.user_data = &e->seed;
    ak_context_init(&e->ctx, &cd);
    memset(&fd, 0, sizeof fd);
    fd.dir = "m";
    fd.checkpoint_every = (options & 2) ? 1 : 0;
    fz_ops(&fd.ops, fs);
    if (ak_filestore_init(&e->fs, &e->ctx, &fd, &err) != AK_OK && err.code != AK_ERR_OUT_OF_MEMORY) abort();
}

static void fz_close(fz_env *e) {
    ak_filestore_free(&e->fs);
    if (e->heap.live != 0) abort();
}

/* ---- checks ---------------------------------------------------------------------------------- */

static void fz_check_error(ak_result rc, const ak_error *err) {
    if (rc != AK_ERR_DATA_LOSS && rc != AK_ERR_NOT_FOUND && rc != AK_ERR_STATE && rc != AK_ERR_OUT_OF_MEMORY) abort();
    if (err->code != rc || !err->message[0] || !ak_utf8_valid(err->message, strlen(err->message))) abort();
}

/* The snapshot as JSON text (appended to out), checked to read back as a snapshot. */
static void fz_snapshot_text(const ak_snapshot *s, ak_buf *out) {
    ak_json_doc d;
    ak_json *j;
    ak_snapshot *back = NULL;
    ak_error err;
    ak_json_doc_init(&d, NULL);
    j = ak_snapshot_to_json(s, AK_SNAPSHOT_NONE, &d);
    if (!j || d.err) abort();
    if (ak_snapshot_from_json(NULL, j, &back, &err) != AK_OK) abort();
    ak_snapshot_release(back);
    ak_json_write(j, out);
    ak_json_doc_free(&d);
}

/* Loads row id (or session sid); appends what came out to out ("" when it is absent or
   failed). Returns the result. */
static ak_result fz_load(fz_env *e, const char *id, const char *sid, ak_buf *out) {
    ak_snapshot *s = NULL;
    ak_error err;
    ak_result rc;
    if (!e->fs.ctx) return AK_ERR_OUT_OF_MEMORY; /* the store did not open */
    rc = e->fs.store.get(&e->fs.store, id, sid, NULL, &s, &err);
    if (rc != AK_OK) {
        fz_check_error(rc, &err);
        if (s) abort();
        return rc;
    }
    if (s) {
        if (id && strcmp(s->id, id) != 0) abort();
        if (sid && (!s->session_id || strcmp(s->session_id, sid) != 0)) abort();
        fz_snapshot_text(s, out);
        ak_snapshot_release(s);
    }
    return AK_OK;
}

/* ---- the save: b rewritten with one more message, e added under a ---------------------------- */

typedef struct fz_edit {
    const ak_snapshot *base; /* e's parent (a), or NULL to append to the current row */
    const char *id;
} fz_edit;

static ak_result fz_mutate(void *ud, const ak_snapshot *current, ak_snapshot **next) {
    fz_edit *ed = (fz_edit *)ud;
    const ak_snapshot *from = ed->base ? ed->base : current;
    ak_snapshot *n;
    ak_json_doc d;
    ak_json *msg;
    ak_result rc;
    if (!from) return AK_OK; /* nothing to append to: skip */
    n = ed->base ? ak_snapshot_new(from->alloc, ed->id, from->session_id, from->id, &from->state)
                 : ak_snapshot_clone(from);
    if (!n) return AK_ERR_OUT_OF_MEMORY;
    ak_json_doc_init(&d, from->alloc);
    msg = ak_msg_new(&d, "user");
    ak_msg_add(msg, ak_part_text(&d, "one more"));
    rc = d.err ? d.err : ak_msgs_append(from->alloc, &n->state.messages, msg);
    ak_json_doc_free(&d);
    if (rc != AK_OK) {
        ak_snapshot_release(n);
        return rc;
    }
    n->status = AK_SNAPSHOT_COMPLETED;
    *next = n;
    return AK_OK;
}

static ak_result fz_save(fz_env *e, const char *id, const ak_snapshot *base) {
    fz_edit ed;
    char written[AK_ID_MAX + 1];
    ak_error err;
    ak_result rc;
    ed.base = base, ed.id = id;
    rc = e->fs.store.save(&e->fs.store, id, fz_mutate, &ed, NULL, written, &err);
    if (rc != AK_OK && (!err.message[0] || !ak_utf8_valid(err.message, strlen(err.message)))) abort();
    return rc;
}

/* ---- the target ------------------------------------------------------------------------------ */

static const char *const fz_rows[4] = {"a", "b", "c", "d"};

static void fz_load_files(fz_fs *fs, const uint8_t *data, size_t size) {
    static const char *const paths[5] = {"m/global/a.json", "m/global/b.json", "m/global/c.json", "m/global/d.json",
                                         "m/global/.pointers/73.json"};
    size_t start = 0, i;
    int k = 0;
    memset(fs, 0, sizeof *fs);
    for (i = 0; i <= size && k < 5; i++) {
        if (i < size && data[i] != 0xFF) continue;
        {
            fz_file *f = fz_create(fs, paths[k++]);
            fz_write(fs, f, data + start, i - start);
        }
        start = i + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_fs fs;
    fz_env e, fresh;
    ak_buf first[4], again;
    int options, i, loaded[4];
    if (size < 2) return 0;
    options = data[0];
    fz_load_files(&fs, data + 2, size - 2);
    fz_open(&e, &fs, data[1], options);
    ak_buf_init(&again, NULL);
    for (i = 0; i < 4; i++) {
        ak_buf_init(&first[i], NULL);
        loaded[i] = fz_load(&e, fz_rows[i], NULL, &first[i]) == AK_OK && first[i].len;
        ak_buf_clear(&again);
        if (loaded[i] && fz_load(&e, fz_rows[i], NULL, &again) == AK_OK &&
            (again.len != first[i].len || memcmp(again.ptr, first[i].ptr, again.len) != 0))
            abort(); /* the cache answered something else */
    }
    fz_load(&e, NULL, "s", &again);
    fz_load(&e, NULL, "x", &again);
    if ((options & 1) && e.fs.ctx) {
        ak_snapshot *a = NULL;
        ak_error err;
        fz_save(&e, "b", NULL);
        if (e.fs.store.get(&e.fs.store, "a", NULL, NULL, &a, &err) == AK_OK && a) fz_save(&e, "e", a);
        ak_snapshot_release(a);
    }
    fz_close(&e);
    /* what loaded before loads the same now (b: the old or the new version) */
    fz_open(&fresh, &fs, 0, options);
    for (i = 0; i < 4; i++) {
        ak_buf_clear(&again);
        if (loaded[i] && fz_load(&fresh, fz_rows[i], NULL, &again) != AK_OK) abort();
        if (loaded[i] && i != 1 && (again.len != first[i].len || memcmp(again.ptr, first[i].ptr, again.len) != 0))
            abort();
        ak_buf_free(&first[i]);
    }
    fz_close(&fresh);
    ak_buf_free(&again);
    fz_fs_free(&fs);
    return 0;
}
