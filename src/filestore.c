/* >>filestore: snapshots as files (atomic replace, message deltas, cross-process locks,
   per-session pointers, watch by polling)

   On disk, under dir/<prefix>/:
     <id>.json             one row: a Genkit SessionSnapshot. A delta row keeps only its own
                           messages in state.messages, and "akFile" says where the others are:
                           {"v":1,"base":<parentId>,"baseHash":<16 hex>,"keep":N,"depth":D,
                           "linear":true} = the first N messages of the base, then these.
                           A checkpoint has no "base" (and no akFile unless it is linear).
     .pointers/<hex>.json  {currentSnapshotId, updatedAt, sessionId}: the session's latest row
     .lock                 locked exclusively by saves, shared by reads (ak_file_ops.lock)
     .tmp.*                a write in progress (or abandoned by a crash; harmless)

   Invariants the code keeps, and why:
   - A delta's base existed before the delta was first written, and an overwrite stays a
     delta only on the same base, so bases are older than their deltas: no cycles.
   - The first N messages of a row never change while a delta takes them: a save that
     rewrites a row's messages other than by appending first turns its delta children
     into checkpoints.
   - "linear" = when the row was first written its parent was the session's pointer.
     The pointer moves to a new row before that row is written, so a row has at most one
     linear child, and only a linear row may be a delta on it. Pruning relies on this: a row
     whose child on the chain is linear has no other delta child to break. */

#include "memstore.c"

#ifndef AK_NO_STDIO

#if !defined(AK_FREESTANDING) && defined(_WIN32)
#define AK__FS_WIN32 1
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#elif !defined(AK_FREESTANDING) && (defined(__unix__) || defined(__unix) || defined(__APPLE__))
#define AK__FS_POSIX 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

/* ---- default file operations ---------------------------------------------------------- */

#if defined(AK__FS_POSIX) || defined(AK__FS_WIN32)
/* How many bytes the next read may add to out: 0 at out->max (then one probe byte tells
   "end of file" from "too big"). */
AK_PRIVATE size_t ak__fs_read_room(ak_buf *out) {
    size_t room = 65536;
    if (out->max) room = AK__MIN(room, out->max - AK__MIN(out->len, out->max));
    return room && ak_buf_reserve(out, room) == AK_OK ? room : 0;
}

/* Appends n bytes just read into the reserved room (n <= room). */
AK_PRIVATE void ak__fs_read_commit(ak_buf *out, size_t n) {
    out->len += n;
    out->ptr[out->len] = 0;
}
#endif

#ifdef AK__FS_POSIX
/* Handles are file descriptors + 1, so that a zero handle never looks valid. */
#define AK__FD_HANDLE(fd) ((void *)(intptr_t)((fd) + 1))
#define AK__HANDLE_FD(h) ((int)((intptr_t)(h)-1))
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

AK_PRIVATE int ak__px_open(const char *path, int flags, int mode) {
    int fd;
    do fd = open(path, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

AK_PRIVATE int ak__px_fsync(int fd) {
#ifdef F_FULLFSYNC
    /* macOS: fsync reaches only the drive's cache */
    if (fcntl(fd, F_FULLFSYNC) == 0) return 0;
#endif
    while (fsync(fd) != 0)
        if (errno != EINTR) return -1;
    return 0;
}

AK_PRIVATE int ak__px_open_write(void *ud, const char *path, void **file) {
    /* rows hold conversations and bearer ids: owner-only */
    int fd = ak__px_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    AK__UNUSED(ud);
    if (fd < 0) return -1;
    *file = AK__FD_HANDLE(fd);
    return 0;
}

AK_PRIVATE int ak__px_write(void *ud, void *file, const void *data, size_t len) {
    const char *p = (const char *)data;
    AK__UNUSED(ud);
    while (len) {
        ssize_t n = write(AK__HANDLE_FD(file), p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n, len -= (size_t)n;
    }
    return 0;
}

AK_PRIVATE int ak__px_sync(void *ud, void *file) {
    AK__UNUSED(ud);
    return ak__px_fsync(AK__HANDLE_FD(file));
}

AK_PRIVATE int ak__px_close(void *ud, void *file) {
    AK__UNUSED(ud);
    return close(AK__HANDLE_FD(file)) == 0 ? 0 : -1;
}

AK_PRIVATE int ak__px_read_file(void *ud, const char *path, ak_buf *out) {
    int fd = ak__px_open(path, O_RDONLY, 0), rc = 0;
    AK__UNUSED(ud);
    if (fd < 0) return errno == ENOENT ? 1 : -1;
    for (;;) {
        char probe;
        size_t room = ak__fs_read_room(out);
        ssize_t n = room ? read(fd, out->ptr + out->len, room) : read(fd, &probe, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = n < 0 ? -1 : 0;
            break;
        }
        if (!room) { /* more bytes than out may hold */
            if (!out->err) out->err = AK_ERR_LIMIT;
            rc = -1;
            break;
        }
        ak__fs_read_commit(out, (size_t)n);
    }
    close(fd);
    return rc;
}

AK_PRIVATE int ak__px_rename(void *ud, const char *from, const char *to) {
    AK__UNUSED(ud);
    return rename(from, to) == 0 ? 0 : -1;
}

AK_PRIVATE int ak__px_remove(void *ud, const char *path) {
    AK__UNUSED(ud);
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

AK_PRIVATE int ak__px_sync_dir(void *ud, const char *dir) {
    int fd = ak__px_open(dir, O_RDONLY, 0), rc;
    AK__UNUSED(ud);
    if (fd < 0) return -1;
    rc = ak__px_fsync(fd);
    /* Some file systems cannot sync a directory; their renames are as durable as they get. */
    if (rc != 0 && errno == EINVAL) rc = 0;
    close(fd);
    return rc;
}

AK_PRIVATE int ak__px_make_dir(void *ud, const char *dir) {
    AK__UNUSED(ud);
    if (mkdir(dir, 0700) == 0) return 0;
    return errno == EEXIST ? 1 : -1;
}

AK_PRIVATE int ak__px_list_dir(void *ud, const char *dir, int (*fn)(void *fud, const char *name), void *fud) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;
    AK__UNUSED(ud);
    if (!d) return errno == ENOENT ? 1 : -1;
    for (;;) {
        errno = 0;
        if ((e = readdir(d)) == NULL) {
            if (errno) rc = -1;
            break;
        }
        if (fn(fud, e->d_name)) {
            rc = -1;
            break;
        }
    }
    closedir(d);
    return rc;
}

AK_PRIVATE int ak__px_lock(void *ud, const char *path, int exclusive, void **handle) {
    int fd = ak__px_open(path, O_RDWR | O_CREAT, 0600), rc;
    AK__UNUSED(ud);
    if (fd < 0) return errno == ENOENT ? 1 : -1;
#ifdef LOCK_EX
    /* flock locks belong to the open file, so they also exclude other stores of this process */
    do rc = flock(fd, exclusive ? LOCK_EX : LOCK_SH);
    while (rc != 0 && errno == EINTR);
#else
    {
        /* POSIX record locks: other processes only (see ak_file_ops.lock) */
        struct flock fl;
        AK_MEMSET(&fl, 0, sizeof fl);
        fl.l_type = exclusive ? F_WRLCK : F_RDLCK;
        fl.l_whence = SEEK_SET;
        do rc = fcntl(fd, F_SETLKW, &fl);
        while (rc != 0 && errno == EINTR);
    }
#endif
    if (rc != 0) {
        close(fd);
        return -1;
    }
    *handle = AK__FD_HANDLE(fd);
    return 0;
}

AK_PRIVATE void ak__px_unlock(void *ud, void *handle) {
    AK__UNUSED(ud);
    close(AK__HANDLE_FD(handle)); /* closing releases the lock */
}
#endif /* AK__FS_POSIX */

#ifdef AK__FS_WIN32
AK_PRIVATE int ak__w32_missing(void) {
    DWORD e = GetLastError();
    return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND;
}

AK_PRIVATE HANDLE ak__w32_open(const char *path, DWORD access, DWORD disposition) {
    return CreateFileA(path, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                       disposition, FILE_ATTRIBUTE_NORMAL, NULL);
}

AK_PRIVATE int ak__w32_open_write(void *ud, const char *path, void **file) {
    HANDLE h = ak__w32_open(path, GENERIC_WRITE, CREATE_ALWAYS);
    AK__UNUSED(ud);
    if (h == INVALID_HANDLE_VALUE) return -1;
    *file = h;
    return 0;
}

AK_PRIVATE int ak__w32_write(void *ud, void *file, const void *data, size_t len) {
    const char *p = (const char *)data;
    AK__UNUSED(ud);
    while (len) {
        DWORD n = len > 0x40000000u ? 0x40000000u : (DWORD)len, done = 0;
        if (!WriteFile((HANDLE)file, p, n, &done, NULL) || done == 0) return -1;
        p += done, len -= done;
    }
    return 0;
}

AK_PRIVATE int ak__w32_sync(void *ud, void *file) {
    AK__UNUSED(ud);
    return FlushFileBuffers((HANDLE)file) ? 0 : -1;
}

AK_PRIVATE int ak__w32_close(void *ud, void *file) {
    AK__UNUSED(ud);
    return CloseHandle((HANDLE)file) ? 0 : -1;
}

AK_PRIVATE int ak__w32_read_file(void *ud, const char *path, ak_buf *out) {
    HANDLE h = ak__w32_open(path, GENERIC_READ, OPEN_EXISTING);
    int rc = 0;
    AK__UNUSED(ud);
    if (h == INVALID_HANDLE_VALUE) return ak__w32_missing() ? 1 : -1;
    for (;;) {
        char probe;
        size_t room = ak__fs_read_room(out);
        DWORD want = room > 0x40000000u ? 0x40000000u : (DWORD)room, got = 0;
        if (!ReadFile(h, room ? out->ptr + out->len : &probe, room ? want : 1, &got, NULL)) {
            rc = -1;
            break;
        }
        if (got == 0) break;
        if (!room) {
            if (!out->err) out->err = AK_ERR_LIMIT;
            rc = -1;
            break;
        }
        ak__fs_read_commit(out, got);
    }
    CloseHandle(h);
    return rc;
}

AK_PRIVATE int ak__w32_rename(void *ud, const char *from, const char *to) {
    AK__UNUSED(ud);
    return MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) ? 0 : -1;
}

AK_PRIVATE int ak__w32_remove(void *ud, const char *path) {
    AK__UNUSED(ud);
    return DeleteFileA(path) || ak__w32_missing() ? 0 : -1;
}

AK_PRIVATE int ak__w32_sync_dir(void *ud, const char *dir) {
    /* Windows cannot flush a directory; MOVEFILE_WRITE_THROUGH made the rename durable. */
    AK__UNUSED(ud), AK__UNUSED(dir);
    return 0;
}

AK_PRIVATE int ak__w32_make_dir(void *ud, const char *dir) {
    AK__UNUSED(ud);
    if (CreateDirectoryA(dir, NULL)) return 0;
    return GetLastError() == ERROR_ALREADY_EXISTS ? 1 : -1;
}

AK_PRIVATE int ak__w32_list_dir(void *ud, const char *dir, int (*fn)(void *fud, const char *name), void *fud) {
    char pattern[MAX_PATH];
    size_t n = ak__strlen(dir);
    WIN32_FIND_DATAA fd;
    HANDLE h;
    int rc = 0;
    AK__UNUSED(ud);
    if (n + 3 > sizeof pattern) return -1;
    AK_MEMCPY(pattern, dir, n);
    AK_MEMCPY(pattern + n, "/*", 3);
    h = FindFirstFileA(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE) return GetLastError() == ERROR_FILE_NOT_FOUND ? 0 : ak__w32_missing() ? 1 : -1;
    do {
        if (fn(fud, fd.cFileName)) {
            rc = -1;
            break;
        }
    } while (FindNextFileA(h, &fd));
    FindClose(h);
    return rc;
}

AK_PRIVATE int ak__w32_lock(void *ud, const char *path, int exclusive, void **handle) {
    HANDLE h = ak__w32_open(path, GENERIC_READ | GENERIC_WRITE, OPEN_ALWAYS);
    OVERLAPPED ov;
    AK__UNUSED(ud);
    if (h == INVALID_HANDLE_VALUE) return ak__w32_missing() ? 1 : -1;
    AK_MEMSET(&ov, 0, sizeof ov);
    if (!LockFileEx(h, exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0, 0, 1, 0, &ov)) {
        CloseHandle(h);
        return -1;
    }
    *handle = h;
    return 0;
}

AK_PRIVATE void ak__w32_unlock(void *ud, void *handle) {
    OVERLAPPED ov;
    AK__UNUSED(ud);
    AK_MEMSET(&ov, 0, sizeof ov);
    UnlockFileEx((HANDLE)handle, 0, 1, 0, &ov);
    CloseHandle((HANDLE)handle);
}
#endif /* AK__FS_WIN32 */

#define AK__FS_SET_OPS(o, p)                                                                     \
    ((o)->open_write = ak__##p##_open_write, (o)->write = ak__##p##_write, (o)->sync = ak__##p##_sync, \
     (o)->close = ak__##p##_close, (o)->read_file = ak__##p##_read_file, (o)->rename_file = ak__##p##_rename, \
     (o)->remove_file = ak__##p##_remove, (o)->sync_dir = ak__##p##_sync_dir, (o)->make_dir = ak__##p##_make_dir, \
     (o)->list_dir = ak__##p##_list_dir, (o)->lock = ak__##p##_lock, (o)->unlock = ak__##p##_unlock)

AKDEF ak_result ak_file_ops_default(ak_file_ops *ops) {
    AK_MEMSET(ops, 0, sizeof *ops);
#if defined(AK__FS_POSIX)
    AK__FS_SET_OPS(ops, px);
    return AK_OK;
#elif defined(AK__FS_WIN32)
    AK__FS_SET_OPS(ops, w32);
    return AK_OK;
#else
    return AK_ERR_UNSUPPORTED;
#endif
}

/* ---- small helpers -------------------------------------------------------------------- */

/* FNV-1a over a file's bytes: names one version of a row. */
AK_PRIVATE uint64_t ak__fs_hash(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    while (n--) h = (h ^ AK__U8(*p++)) * 1099511628211ull;
    return h;
}

AK_PRIVATE void ak__fs_put_hex(ak_buf *b, uint64_t v) {
    static const char hex[] = "0123456789abcdef";
    int shift;
    for (shift = 60; shift >= 0; shift -= 4) ak_buf_putc(b, hex[(v >> shift) & 15]);
}

AK_PRIVATE int ak__fs_parse_hex(const char *s, size_t n, uint64_t *out) {
    uint64_t v = 0;
    size_t i;
    if (n != 16) return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16u;
        if (d > 15) return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

/* Both NULL, or equal strings. */
AK_PRIVATE int ak__fs_same(const char *a, const char *b) { return a == b || (a && b && ak__streq(a, b)); }

/* A row id: a safe file name that does not start with '.', the store's own files do. */
AK_PRIVATE int ak__fs_id_ok(const char *id) { return ak_id_is_safe(id) && id[0] != '.'; }

AK_PRIVATE ak_result ak__fs_bad_id(ak_error *err, const char *what) {
    return ak_error_set(err, AK_ERR_INVALID_ARGUMENT,
                        "%s must be 1..%d printable ASCII characters without '/' or '\\', not starting with '.'", what,
                        AK_ID_MAX);
}

AK_PRIVATE ak_result ak__fs_oom(ak_error *err) { return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "file store: out of memory"); }

AK_PRIVATE ak_result ak__fs_io(ak_error *err, const char *what, const char *path) {
    return ak_error_set(err, AK_ERR_IO, "file store: cannot %s %s", what, path ? path : "(path)");
}

/* ---- tenants and paths ------------------------------------------------------------------ */

/* One operation's view of dir/<prefix>. */
typedef struct ak__fs_tenant {
    ak_filestore *f;
    const ak_file_ops *ops;
    const ak_allocator *a;
    ak_buf dir;                  /* root/prefix */
} ak__fs_tenant;

AK_PRIVATE void ak__fs_tenant_at(ak_filestore *f, ak__fs_tenant *t) {
    t->f = f;
    t->ops = &f->desc.ops;
    t->a = ak_context_allocator(f->ctx);
    ak_buf_init(&t->dir, t->a);
}

AK_PRIVATE ak_result ak__fs_tenant_open(ak_filestore *f, const ak_json *context, ak__fs_tenant *t, ak_error *err) {
    const char *prefix = f->desc.prefix ? f->desc.prefix(f->desc.prefix_ud, context) : "global";
    ak__fs_tenant_at(f, t);
    if (!prefix || !ak_id_is_safe(prefix))
        return ak_error_setst(err, AK_ERR_STORE, AK_STATUS_PERMISSION_DENIED,
                              "file store: the snapshot path prefix for this caller is not a plain directory name");
    ak_buf_printf(&t->dir, "%s/%s", f->dir, prefix);
    return t->dir.err ? ak__fs_oom(err) : AK_OK;
}

AK_PRIVATE void ak__fs_tenant_close(ak__fs_tenant *t) { ak_buf_free(&t->dir); }

/* "<tenant>[/<sub>]/<pre><name><ext>" into b (cleared first); NULL when out of memory. */
AK_PRIVATE const char *ak__fs_path(ak__fs_tenant *t, ak_buf *b, const char *sub, const char *pre, const char *name,
                                   const char *ext) {
    ak_buf_clear(b);
    ak_buf_append(b, t->dir.ptr, t->dir.len);
    if (sub) ak_buf_printf(b, "/%s", sub);
    ak_buf_printf(b, "/%s%s%s", pre, name, ext);
    return b->err ? NULL : b->ptr;
}

AK_PRIVATE const char *ak__fs_row_path(ak__fs_tenant *t, ak_buf *b, const char *id) {
    return ak__fs_path(t, b, NULL, "", id, ".json");
}

/* Reads a whole file into b (cleared first): AK_OK, AK_ERR_NOT_FOUND, DATA_LOSS (too big) or IO. */
AK_PRIVATE ak_result ak__fs_read(ak__fs_tenant *t, const char *path, ak_buf *b, ak_error *err) {
    int rc;
    ak_buf_clear(b);
    b->max = AK_FILESTORE_MAX_FILE;
    rc = t->ops->read_file(t->ops->ud, path, b);
    t->f->files_read++;
    if (rc == 1) return AK_ERR_NOT_FOUND;
    if (b->err == AK_ERR_LIMIT)
        return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s is larger than AK_FILESTORE_MAX_FILE", path);
    if (b->err) return ak__fs_oom(err);
    return rc ? ak__fs_io(err, "read", path) : AK_OK;
}

/* Replaces path with data the crash-safe way: a temp file beside it, written, synced and
   closed, renamed over path, then the directory synced so the rename survives power loss. */
AK_PRIVATE ak_result ak__fs_replace(ak__fs_tenant *t, const char *dir, const char *tmp, const char *path,
                                    const ak_buf *data, ak_error *err) {
    const ak_file_ops *o = t->ops;
    void *h = NULL;
    const char *failed = NULL;
    if (o->open_write(o->ud, tmp, &h) != 0) return ak__fs_io(err, "create", tmp);
    if (o->write(o->ud, h, data->ptr, data->len) != 0) failed = "write";
    else if (o->sync(o->ud, h) != 0) failed = "sync";
    if (o->close(o->ud, h) != 0 && !failed) failed = "close";
    if (!failed && o->rename_file(o->ud, tmp, path) != 0) failed = "rename";
    if (failed) {
        o->remove_file(o->ud, tmp);
        return ak__fs_io(err, failed, tmp);
    }
    t->f->bytes_written += data->len;
    return o->sync_dir(o->ud, dir) != 0 ? ak__fs_io(err, "sync the directory of", path) : AK_OK;
}

/* Creates dir (and makes its creation durable in its parent). */
AK_PRIVATE ak_result ak__fs_make_dir(ak__fs_tenant *t, const char *dir, const char *parent, ak_error *err) {
    int rc = t->ops->make_dir(t->ops->ud, dir);
    if (rc < 0) return ak__fs_io(err, "create the directory", dir);
    if (rc == 0 && t->ops->sync_dir(t->ops->ud, parent) != 0) return ak__fs_io(err, "sync the directory", parent);
    return AK_OK;
}

/* Takes the tenant's lock. Shared locks of a tenant with no directory yet give *handle NULL
   (nothing is stored); exclusive ones create the directory. */
AK_PRIVATE ak_result ak__fs_lock(ak__fs_tenant *t, int exclusive, void **handle, ak_error *err) {
    ak_buf path;
    ak_result rc = AK_OK;
    int lrc;
    *handle = NULL;
    if (exclusive && (rc = ak__fs_make_dir(t, t->dir.ptr, t->f->dir, err)) != AK_OK) return rc;
    ak_buf_init(&path, t->a);
    if (!ak__fs_path(t, &path, NULL, "", ".lock", "")) {
        ak_buf_free(&path);
        return ak__fs_oom(err);
    }
    lrc = t->ops->lock(t->ops->ud, path.ptr, exclusive, handle);
    if (lrc < 0 || (lrc == 1 && exclusive)) rc = ak__fs_io(err, "lock", path.ptr);
    if (lrc) *handle = NULL;
    ak_buf_free(&path);
    return rc;
}

AK_PRIVATE void ak__fs_unlock(ak__fs_tenant *t, void *handle) {
    if (handle) t->ops->unlock(t->ops->ud, handle);
}

/* ---- rows: what a file says about how it is stored ---------------------------------------- */

typedef struct ak__fs_meta {
    char base[AK_ID_MAX + 1];    /* delta base (always the parent); "" = checkpoint */
    uint64_t base_hash;          /* hash of the base file the delta was made against */
    size_t keep;                 /* messages taken from the base */
    int depth;                   /* deltas since the last checkpoint (0 = checkpoint) */
    int linear;                  /* first written while its parent was the session's pointer */
} ak__fs_meta;

/* A parsed row file. For a delta, tail holds its own messages, detached from state. */
typedef struct ak__fs_row {
    ak_json_doc doc;
    ak_json *root;
    ak_json *tail;
    ak__fs_meta meta;
    uint64_t hash;
} ak__fs_row;

AK_PRIVATE ak_result ak__fs_corrupt(ak_error *err, const char *path, const char *why) {
    return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s is corrupt: %s", path, why);
}

/* Reads the "akFile" member (absent: a checkpoint nobody depends on being linear). */
AK_PRIVATE ak_result ak__fs_parse_meta(const ak_json *x, const char *path, ak__fs_meta *m, ak_error *err) {
    const ak_json *base = ak_json_get(x, "base"), *linear = ak_json_get(x, "linear");
    int64_t v = 0, keep = 0, depth = 0;
    AK_MEMSET(m, 0, sizeof *m);
    if (!x) return AK_OK;
    if (!ak_json_is(x, AK_JSON_OBJECT) || ak_json_int64(ak_json_get(x, "v"), &v) != AK_OK)
        return ak__fs_corrupt(err, path, "akFile is not {\"v\":1,...}");
    if (v != 1) return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s was written by a newer version (akFile.v %lld)", path, (long long)v);
    if (linear && linear->type != AK_JSON_BOOL) return ak__fs_corrupt(err, path, "akFile.linear is not a boolean");
    m->linear = ak_json_bool(linear, 0);
    if (!base) return AK_OK;
    if (base->type != AK_JSON_STRING || !ak__fs_id_ok(base->u.str) ||
        !ak__fs_parse_hex(ak_json_get_str(x, "baseHash"), ak_json_len(ak_json_get(x, "baseHash")), &m->base_hash) ||
        ak_json_int64(ak_json_get(x, "keep"), &keep) != AK_OK || keep < 0 ||
        ak_json_int64(ak_json_get(x, "depth"), &depth) != AK_OK || depth < 1 || depth > AK_FILESTORE_MAX_DELTAS)
        return ak__fs_corrupt(err, path, "akFile has a bad base, baseHash, keep or depth");
    AK_MEMCPY(m->base, base->u.str, base->len + 1);
    m->keep = (size_t)keep;
    if ((int64_t)m->keep != keep) return ak__fs_corrupt(err, path, "akFile.keep is too large");
    m->depth = (int)depth;
    return AK_OK;
}

/* Parses the bytes of row `id` (file `path`) into r. */
AK_PRIVATE ak_result ak__fs_parse_row(ak__fs_tenant *t, const char *path, const char *id, const ak_buf *bytes,
                                      ak__fs_row *r, ak_error *err) {
    ak_error inner;
    ak_result rc;
    ak_json *state;
    ak_json_doc_init(&r->doc, t->a);
    r->root = r->tail = NULL;
    r->hash = ak__fs_hash(bytes->ptr, bytes->len);
    rc = ak_json_parse(&r->doc, bytes->ptr, bytes->len, &inner);
    if (rc == AK_ERR_OUT_OF_MEMORY) return ak__fs_oom(err);
    if (rc != AK_OK)
        return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s is corrupt or truncated: %s", path, inner.message);
    r->root = r->doc.root;
    if (!ak_json_is(r->root, AK_JSON_OBJECT)) return ak__fs_corrupt(err, path, "not a snapshot object");
    if (!ak__fs_same(ak_json_get_str(r->root, "snapshotId"), id))
        return ak__fs_corrupt(err, path, "it holds another snapshotId");
    if ((rc = ak__fs_parse_meta(ak_json_get(r->root, "akFile"), path, &r->meta, err)) != AK_OK || !r->meta.base[0])
        return rc;
    state = ak_json_get(r->root, "state");
    if (!ak_json_is(state, AK_JSON_OBJECT)) return ak__fs_corrupt(err, path, "a delta without state");
    r->tail = ak_json_remove(state, "messages");
    if (r->tail && r->tail->type != AK_JSON_ARRAY) return ak__fs_corrupt(err, path, "state.messages is not an array");
    return AK_OK;
}

/* The snapshot of a parsed row without the messages of its base. */
AK_PRIVATE ak_result ak__fs_row_snapshot(ak__fs_tenant *t, const char *path, const ak__fs_row *r, ak_snapshot **out,
                                         ak_error *err) {
    ak_error inner;
    ak_result rc = ak_snapshot_from_json(t->a, r->root, out, &inner);
    if (rc == AK_ERR_OUT_OF_MEMORY) return ak__fs_oom(err);
    if (rc != AK_OK) return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s: %s", path, inner.message);
    return AK_OK;
}

/* Makes snap's messages the first meta.keep of base's, then the row's own (validated). */
AK_PRIVATE ak_result ak__fs_apply_delta(ak__fs_tenant *t, const char *path, const ak__fs_row *r,
                                        const ak_snapshot *base, ak_snapshot *snap, ak_error *err) {
    ak_msgs *m = ak_msgs_retain(base->state.messages);
    const ak_json *v;
    size_t i = 0;
    if (r->meta.keep > ak_msgs_count(m)) {
        ak_msgs_release(m);
        return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s takes %zu messages from %s, which has %zu", path,
                            r->meta.keep, r->meta.base, ak_msgs_count(base->state.messages));
    }
    if (ak_msgs_truncate(t->a, &m, r->meta.keep) != AK_OK) goto oom;
    for (v = ak_json_first(r->tail); v; v = v->next, i++) {
        ak_error inner;
        if (ak_msg_validate(v, &inner) != AK_OK) {
            ak_msgs_release(m);
            return ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s: state.messages[%zu]: %s", path, i, inner.message);
        }
        if (ak_msgs_append(t->a, &m, v) != AK_OK) goto oom;
    }
    ak_msgs_release(snap->state.messages);
    snap->state.messages = m;
    return AK_OK;
oom:
    ak_msgs_release(m);
    return ak__fs_oom(err);
}

/* ---- the cache of rows ------------------------------------------------------------------ */

struct ak_filestore_entry {
    char *path;                  /* owned; NULL = free slot */
    uint64_t hash;               /* the file version the snapshot was read from or written as */
    uint64_t used;               /* LRU clock */
    ak_snapshot *snap;
    ak__fs_meta meta;
};

AK_PRIVATE void ak__fs_entry_clear(ak_filestore *f, ak_filestore_entry *e) {
    ak__strfree(ak_context_allocator(f->ctx), e->path);
    ak_snapshot_release(e->snap);
    AK_MEMSET(e, 0, sizeof *e);
}

/* The entry for path (any version), or NULL. */
AK_PRIVATE ak_filestore_entry *ak__fs_cache_slot(ak_filestore *f, const char *path) {
    size_t i;
    for (i = 0; f->cache && i < AK_FILESTORE_CACHE; i++)
        if (f->cache[i].path && ak__streq(f->cache[i].path, path)) return &f->cache[i];
    return NULL;
}

/* The entry for this version of path, or NULL. */
AK_PRIVATE ak_filestore_entry *ak__fs_cache_find(ak_filestore *f, const char *path, uint64_t hash) {
    ak_filestore_entry *e = ak__fs_cache_slot(f, path);
    if (!e || e->hash != hash) return NULL;
    e->used = ++f->cache_clock;
    return e;
}

/* Remembers a row version; a failure to remember only costs a later read. */
AK_PRIVATE void ak__fs_cache_put(ak_filestore *f, const char *path, uint64_t hash, ak_snapshot *snap,
                                 const ak__fs_meta *meta) {
    ak_filestore_entry *e = ak__fs_cache_slot(f, path);
    size_t i;
    char *copy;
    if (!f->cache || AK_FILESTORE_CACHE == 0) return;
    if (!e) {
        e = &f->cache[0];
        for (i = 1; i < AK_FILESTORE_CACHE; i++)
            if (!f->cache[i].path || (e->path && f->cache[i].used < e->used)) e = &f->cache[i];
    }
    copy = ak__strdup(ak_context_allocator(f->ctx), path);
    ak_snapshot_retain(snap); /* before the clear: the slot may hold the last other reference */
    ak__fs_entry_clear(f, e);
    if (!copy) {
        ak_snapshot_release(snap);
        return;
    }
    e->path = copy;
    e->hash = hash;
    e->used = ++f->cache_clock;
    e->snap = snap;
    e->meta = *meta;
}

AK_PRIVATE void ak__fs_cache_drop(ak_filestore *f, const char *path) {
    ak_filestore_entry *e = ak__fs_cache_slot(f, path);
    if (e) ak__fs_entry_clear(f, e);
}

/* ---- loading a row and its delta chain ---------------------------------------------------- */

/* What ak__fs_load found: the snapshot (NULL = no such row), how it is stored, its version. */
typedef struct ak__fs_loaded {
    ak_snapshot *snap;
    ak__fs_meta meta;
    uint64_t hash;
} ak__fs_loaded;

/* The rows read on the way down a delta chain, newest first. */
typedef struct ak__fs_link {
    ak__fs_row row;
    char *path;
} ak__fs_link;

typedef struct ak__fs_chain {
    ak__fs_link *v;
    size_t count, cap;
} ak__fs_chain;

AK_PRIVATE void ak__fs_chain_free(ak__fs_tenant *t, ak__fs_chain *c) {
    size_t i;
    for (i = 0; i < c->count; i++) {
        ak_json_doc_free(&c->v[i].row.doc);
        ak__strfree(t->a, c->v[i].path);
    }
    ak_free(t->a, c->v, c->cap * sizeof *c->v);
}

/* A new link at the end of the chain for the row read from path. */
AK_PRIVATE ak__fs_row *ak__fs_chain_push(ak__fs_tenant *t, ak__fs_chain *c, const char *path) {
    ak__fs_link *l;
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        ak__fs_link *v = (ak__fs_link *)ak_realloc(t->a, c->v, c->cap * sizeof *v, cap * sizeof *v);
        if (!v) return NULL;
        c->v = v, c->cap = cap;
    }
    l = &c->v[c->count];
    if (!(l->path = ak__strdup(t->a, path))) return NULL;
    ak_json_doc_init(&l->row.doc, t->a);
    c->count++;
    return &l->row;
}

/* Reads rows from `id` down its delta chain until a checkpoint or a row version already in
   the cache (*base then holds it, retained). */
AK_PRIVATE ak_result ak__fs_read_chain(ak__fs_tenant *t, const char *id, ak__fs_chain *c, ak_filestore_entry **base,
                                       ak_error *err) {
    ak_buf path, bytes;
    char cur[AK_ID_MAX + 1]; /* a copy: the chain's array moves as it grows */
    uint64_t expect = 0;
    int have_expect = 0;
    ak_result rc = AK_OK;
    AK_MEMCPY(cur, id, ak__strlen(id) + 1);
    ak_buf_init(&path, t->a);
    ak_buf_init(&bytes, t->a);
    *base = NULL;
    for (;;) {
        ak__fs_row *r;
        if (!ak__fs_row_path(t, &path, cur)) {
            rc = ak__fs_oom(err);
            break;
        }
        /* a base version we hold already needs no read at all */
        if (have_expect && (*base = ak__fs_cache_find(t->f, path.ptr, expect)) != NULL) break;
        rc = ak__fs_read(t, path.ptr, &bytes, err);
        if (rc == AK_ERR_NOT_FOUND && c->count)
            rc = ak_error_set(err, AK_ERR_DATA_LOSS, "file store: %s needs %s, which is missing", c->v[c->count - 1].path,
                              path.ptr);
        if (rc != AK_OK) break;
        if ((*base = ak__fs_cache_find(t->f, path.ptr, ak__fs_hash(bytes.ptr, bytes.len))) != NULL) break;
        if (c->count > AK_FILESTORE_MAX_DELTAS) {
            rc = ak__fs_corrupt(err, c->v[0].path, "its delta chain is cyclic or longer than AK_FILESTORE_MAX_DELTAS");
            break;
        }
        if (!(r = ak__fs_chain_push(t, c, path.ptr))) {
            rc = ak__fs_oom(err);
            break;
        }
        if ((rc = ak__fs_parse_row(t, path.ptr, cur, &bytes, r, err)) != AK_OK || !r->meta.base[0]) break;
        AK_MEMCPY(cur, r->meta.base, ak__strlen(r->meta.base) + 1);
        expect = r->meta.base_hash, have_expect = 1;
    }
    ak_buf_free(&path);
    ak_buf_free(&bytes);
    return rc;
}

/* Loads row `id` (out->snap NULL when it does not exist), building its messages on its
   base's list so that loaded snapshots share memory as live ones do. Every row read is
   cached. Call with the tenant locked. */
AK_PRIVATE ak_result ak__fs_load(ak__fs_tenant *t, const char *id, ak__fs_loaded *out, ak_error *err) {
    ak__fs_chain c;
    ak_filestore_entry *hit;
    ak_snapshot *below = NULL;
    ak_result rc;
    size_t i;
    AK_MEMSET(&c, 0, sizeof c);
    AK_MEMSET(out, 0, sizeof *out);
    rc = ak__fs_read_chain(t, id, &c, &hit, err);
    if (rc == AK_ERR_NOT_FOUND) rc = AK_OK;
    if (rc == AK_OK && hit) {
        below = ak_snapshot_retain(hit->snap); /* the cache may evict it while we build */
        out->meta = hit->meta;
        out->hash = hit->hash;
    }
    /* oldest first: each row is built on the one below it */
    for (i = c.count; rc == AK_OK && i-- > 0;) {
        ak__fs_row *r = &c.v[i].row;
        const char *path = c.v[i].path;
        ak_snapshot *s;
        if ((rc = ak__fs_row_snapshot(t, path, r, &s, err)) != AK_OK) break;
        if (r->meta.base[0] && (rc = ak__fs_apply_delta(t, path, r, below, s, err)) != AK_OK) {
            ak_snapshot_release(s);
            break;
        }
        ak__fs_cache_put(t->f, path, r->hash, s, &r->meta);
        ak_snapshot_release(below);
        below = s;
        out->meta = r->meta;
        out->hash = r->hash;
    }
    if (rc == AK_OK) out->snap = below;
    else ak_snapshot_release(below);
    ak__fs_chain_free(t, &c);
    return rc;
}

/* ---- row headers (for scans and pruning) --------------------------------------------------- */

typedef struct ak__fs_head {
    char parent[AK_ID_MAX + 1];  /* "" = none */
    char session[AK_ID_MAX + 1]; /* "" = none */
    int64_t created_at;
    ak__fs_meta meta;
} ak__fs_head;

AK_PRIVATE void ak__fs_head_from(ak__fs_head *h, const ak_snapshot *s, const ak__fs_meta *meta) {
    /* ids of parsed snapshots are at most AK_ID_MAX bytes (ak_snapshot_from_json checks) */
    h->parent[0] = h->session[0] = 0;
    if (s->parent_id) AK_MEMCPY(h->parent, s->parent_id, ak__strlen(s->parent_id) + 1);
    if (s->session_id) AK_MEMCPY(h->session, s->session_id, ak__strlen(s->session_id) + 1);
    h->created_at = s->created_at;
    h->meta = *meta;
}

/* Reads the header of row `id` without building its messages: AK_OK, AK_ERR_NOT_FOUND,
   DATA_LOSS or another error. bytes and path are scratch buffers. */
AK_PRIVATE ak_result ak__fs_head_read(ak__fs_tenant *t, const char *id, ak_buf *path, ak_buf *bytes, ak__fs_head *h,
                                      ak_error *err) {
    ak_filestore_entry *e;
    ak__fs_row r;
    ak_snapshot *s = NULL;
    ak_result rc;
    if (!ak__fs_row_path(t, path, id)) return ak__fs_oom(err);
    if ((rc = ak__fs_read(t, path->ptr, bytes, err)) != AK_OK) return rc;
    if ((e = ak__fs_cache_find(t->f, path->ptr, ak__fs_hash(bytes->ptr, bytes->len))) != NULL) {
        ak__fs_head_from(h, e->snap, &e->meta);
        return AK_OK;
    }
    rc = ak__fs_parse_row(t, path->ptr, id, bytes, &r, err);
    if (rc == AK_OK) rc = ak__fs_row_snapshot(t, path->ptr, &r, &s, err);
    if (rc == AK_OK) ak__fs_head_from(h, s, &r.meta);
    ak_snapshot_release(s);
    ak_json_doc_free(&r.doc);
    return rc;
}

/* ---- scanning a tenant -------------------------------------------------------------------- */

typedef struct ak__fs_name {
    struct ak__fs_name *next;
    char id[1];                  /* allocated longer */
} ak__fs_name;

typedef struct ak__fs_names {
    ak_arena *arena;
    ak__fs_name *first;
    int oom;
} ak__fs_names;

AK_PRIVATE int ak__fs_collect_name(void *ud, const char *name) {
    ak__fs_names *ns = (ak__fs_names *)ud;
    size_t n = ak__strlen(name);
    ak__fs_name *e;
    if (n <= 5 || !ak__streq(name + n - 5, ".json")) return 0;
    n -= 5;
    if (n > AK_ID_MAX) return 0;
    if (!(e = (ak__fs_name *)ak_arena_alloc(ns->arena, sizeof *e + n))) {
        ns->oom = 1;
        return 1;
    }
    AK_MEMCPY(e->id, name, n);
    e->id[n] = 0;
    if (!ak__fs_id_ok(e->id)) return 0; /* temp files, the store's own files, strangers */
    e->next = ns->first;
    ns->first = e;
    return 0;
}

typedef ak_result (*ak__fs_visit)(void *ud, const char *id, const ak__fs_head *h, ak_error *err);

/* Calls visit for each readable row of the tenant. Rows that cannot be parsed are skipped
   and logged: their session and lineage are unknowable, and one damaged file must not hide
   every other row. */
AK_PRIVATE ak_result ak__fs_scan(ak__fs_tenant *t, ak__fs_visit visit, void *ud, ak_error *err) {
    ak_arena arena;
    ak__fs_names ns;
    ak__fs_name *n;
    ak_buf path, bytes;
    ak_result rc = AK_OK;
    int lrc;
    ak_arena_init(&arena, t->a, 4096);
    ns.arena = &arena, ns.first = NULL, ns.oom = 0;
    lrc = t->ops->list_dir(t->ops->ud, t->dir.ptr, ak__fs_collect_name, &ns);
    if (ns.oom) rc = ak__fs_oom(err);
    else if (lrc < 0) rc = ak__fs_io(err, "list", t->dir.ptr);
    ak_buf_init(&path, t->a);
    ak_buf_init(&bytes, t->a);
    for (n = ns.first; rc == AK_OK && lrc == 0 && n; n = n->next) {
        ak__fs_head h;
        ak_error inner;
        rc = ak__fs_head_read(t, n->id, &path, &bytes, &h, &inner);
        if (rc == AK_ERR_NOT_FOUND || rc == AK_ERR_DATA_LOSS) {
            if (rc == AK_ERR_DATA_LOSS) ak_log(t->f->ctx, AK_LOG_WARN, "%s (skipped)", inner.message);
            rc = AK_OK;
            continue;
        }
        if (rc != AK_OK) {
            if (err) *err = inner;
            break;
        }
        rc = visit(ud, n->id, &h, err);
    }
    ak_buf_free(&path);
    ak_buf_free(&bytes);
    ak_arena_free(&arena);
    return rc;
}

/* ---- session pointers ------------------------------------------------------------------- */

/* .pointers/<name>.json: the session id in hex (any bytes become a file name), or for ids
   too long for that, '~' and a hash (collisions are caught by the id kept inside). */
AK_PRIVATE const char *ak__fs_pointer_path(ak__fs_tenant *t, ak_buf *b, const char *sid, const char *pre) {
    static const char hex[] = "0123456789abcdef";
    ak_buf name;
    size_t n = ak__strlen(sid), i;
    const char *p;
    ak_buf_init(&name, t->a);
    if (n > 100) {
        ak_buf_putc(&name, '~');
        ak__fs_put_hex(&name, ak__fs_hash(sid, n));
    }
    for (i = 0; n <= 100 && i < n; i++) {
        ak_buf_putc(&name, hex[AK__U8(sid[i]) >> 4]);
        ak_buf_putc(&name, hex[AK__U8(sid[i]) & 15]);
    }
    p = name.err ? NULL : ak__fs_path(t, b, ".pointers", pre, name.ptr, ".json");
    ak_buf_free(&name);
    return p;
}

/* The session's pointer target into out ("" when there is no usable pointer: it is a hint,
   so a missing, unreadable or foreign one just means "scan"). */
AK_PRIVATE ak_result ak__fs_pointer_read(ak__fs_tenant *t, const char *sid, char out[AK_ID_MAX + 1], ak_error *err) {
    ak_buf path, bytes;
    ak_json_doc d;
    ak_result rc = AK_OK;
    out[0] = 0;
    ak_buf_init(&path, t->a);
    ak_buf_init(&bytes, t->a);
    ak_json_doc_init(&d, t->a);
    if (!ak__fs_pointer_path(t, &path, sid, "")) rc = ak__fs_oom(err);
    else if (ak__fs_read(t, path.ptr, &bytes, NULL) == AK_OK) {
        const char *cur;
        if (ak_json_parse(&d, bytes.ptr, bytes.len, NULL) == AK_ERR_OUT_OF_MEMORY) rc = ak__fs_oom(err);
        cur = ak_json_get_str(d.root, "currentSnapshotId");
        if (cur && ak__fs_id_ok(cur) && ak__fs_same(ak_json_get_str(d.root, "sessionId"), sid))
            AK_MEMCPY(out, cur, ak__strlen(cur) + 1);
    } else if (bytes.err == AK_ERR_OUT_OF_MEMORY) {
        rc = ak__fs_oom(err);
    }
    ak_json_doc_free(&d);
    ak_buf_free(&path);
    ak_buf_free(&bytes);
    return rc;
}

AK_PRIVATE ak_result ak__fs_pointer_write(ak__fs_tenant *t, const char *sid, const char *id, ak_error *err) {
    ak_buf path, tmp, dir, body;
    ak_json_doc d;
    ak_json *o;
    char ts[25];
    ak_result rc = AK_OK;
    ak_buf_init(&path, t->a), ak_buf_init(&tmp, t->a), ak_buf_init(&dir, t->a), ak_buf_init(&body, t->a);
    ak_json_doc_init(&d, t->a);
    ak_iso8601(ak_now_ms(t->f->ctx), ts);
    o = ak_json_new_object(&d);
    ak_json_set_str(&d, o, "currentSnapshotId", id);
    ak_json_set_str(&d, o, "updatedAt", ts);
    ak_json_set_str(&d, o, "sessionId", sid);
    if (d.err || !ak__fs_pointer_path(t, &path, sid, "") || !ak__fs_pointer_path(t, &tmp, sid, ".tmp.") ||
        !ak__fs_path(t, &dir, NULL, "", ".pointers", "") || ak_json_write(o, &body) != AK_OK)
        rc = ak__fs_oom(err);
    if (rc == AK_OK) rc = ak__fs_make_dir(t, dir.ptr, t->dir.ptr, err);
    if (rc == AK_OK) rc = ak__fs_replace(t, dir.ptr, tmp.ptr, path.ptr, &body, err);
    ak_json_doc_free(&d);
    ak_buf_free(&path), ak_buf_free(&tmp), ak_buf_free(&dir), ak_buf_free(&body);
    return rc;
}

/* Removes a pointer that may have gone stale (the next lookup scans and nothing is lost). */
AK_PRIVATE ak_result ak__fs_pointer_drop(ak__fs_tenant *t, const char *sid, ak_error *err) {
    ak_buf path;
    ak_result rc = AK_OK;
    ak_buf_init(&path, t->a);
    if (!ak__fs_pointer_path(t, &path, sid, "")) rc = ak__fs_oom(err);
    else if (t->ops->remove_file(t->ops->ud, path.ptr) != 0) rc = ak__fs_io(err, "remove", path.ptr);
    ak_buf_free(&path);
    return rc;
}

/* ---- latest leaf of a session ----------------------------------------------------------- */

typedef struct ak__fs_member {
    const char *id, *parent;     /* in the scan's arena */
    int64_t created_at;
    int has_child;
} ak__fs_member;

typedef struct ak__fs_members {
    const char *sid;
    const ak_allocator *a;
    ak__fs_member *v;
    size_t count, cap;
    ak_arena strings;
} ak__fs_members;

AK_PRIVATE ak_result ak__fs_add_member(void *ud, const char *id, const ak__fs_head *h, ak_error *err) {
    ak__fs_members *ms = (ak__fs_members *)ud;
    ak__fs_member *m;
    if (!ak__streq(h->session, ms->sid)) return AK_OK;
    if (ms->count == ms->cap) {
        size_t cap = ms->cap ? ms->cap * 2 : 16;
        ak__fs_member *v = cap > ((size_t)-1) / sizeof *v ? NULL
                         : (ak__fs_member *)ak_realloc(ms->a, ms->v, ms->cap * sizeof *v, cap * sizeof *v);
        if (!v) return ak__fs_oom(err);
        ms->v = v, ms->cap = cap;
    }
    m = &ms->v[ms->count];
    m->id = ak_arena_strdup(&ms->strings, id, ak__strlen(id));
    m->parent = h->parent[0] ? ak_arena_strdup(&ms->strings, h->parent, ak__strlen(h->parent)) : NULL;
    if (!m->id || (h->parent[0] && !m->parent)) return ak__fs_oom(err);
    m->created_at = h->created_at;
    m->has_child = 0;
    ms->count++;
    return AK_OK;
}

/* Byte order of two strings, for a deterministic choice between equally new leaves. */
AK_PRIVATE int ak__fs_cmp(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return (int)AK__U8(*a) - (int)AK__U8(*b);
}

/* Marks every member some other member names as parent, through an open-addressing table
   of member indices by id (a session may have thousands of rows). */
AK_PRIVATE ak_result ak__fs_mark_parents(ak__fs_members *ms, ak_error *err) {
    size_t size = 16, i, *slots;
    while (size < ms->count * 2) size *= 2;
    if (size > ((size_t)-1) / sizeof *slots || !(slots = (size_t *)ak_arena_alloc(&ms->strings, size * sizeof *slots)))
        return ak__fs_oom(err);
    for (i = 0; i < size; i++) slots[i] = (size_t)-1;
    for (i = 0; i < ms->count; i++) {
        size_t s = (size_t)ak__fs_hash(ms->v[i].id, ak__strlen(ms->v[i].id)) & (size - 1);
        while (slots[s] != (size_t)-1) s = (s + 1) & (size - 1);
        slots[s] = i;
    }
    for (i = 0; i < ms->count; i++) {
        const char *p = ms->v[i].parent;
        size_t s;
        if (!p || ak__streq(p, ms->v[i].id)) continue;
        for (s = (size_t)ak__fs_hash(p, ak__strlen(p)) & (size - 1); slots[s] != (size_t)-1; s = (s + 1) & (size - 1))
            if (ak__streq(ms->v[slots[s]].id, p)) ms->v[slots[s]].has_child = 1;
    }
    return AK_OK;
}

/* Genkit's rule: among the session's rows nobody names as parent (a row naming itself is no
   leaf either), the newest createdAt; ties go to the greater id. */
AK_PRIVATE ak_result ak__fs_pick_leaf(ak_filestore *f, ak__fs_members *ms, const char **best, ak_error *err) {
    size_t i, leaves = 0;
    const ak__fs_member *b = NULL;
    ak_result rc = ak__fs_mark_parents(ms, err);
    *best = NULL;
    if (rc != AK_OK) return rc;
    for (i = 0; i < ms->count; i++) {
        const ak__fs_member *m = &ms->v[i];
        if (m->has_child || (m->parent && ak__streq(m->parent, m->id))) continue;
        leaves++;
        if (!b || m->created_at > b->created_at || (m->created_at == b->created_at && ak__fs_cmp(m->id, b->id) > 0))
            b = m;
    }
    if (ms->count && !b)
        return ak_error_setst(err, AK_ERR_STATE, AK_STATUS_FAILED_PRECONDITION,
                              "Session '%s' has no leaf snapshot (corrupt or cyclic history).", ms->sid);
    if (leaves > 1 && f->desc.reject_branching)
        return ak_error_setst(err, AK_ERR_STATE, AK_STATUS_FAILED_PRECONDITION, "Session '%s' has branched into %zu leaves.",
                              ms->sid, leaves);
    *best = b ? b->id : NULL;
    return AK_OK;
}

/* The latest leaf by reading every row of the tenant. */
AK_PRIVATE ak_result ak__fs_scan_leaf(ak__fs_tenant *t, const char *sid, ak_snapshot **out, ak_error *err) {
    ak__fs_members ms;
    const char *best = NULL;
    ak_result rc;
    AK_MEMSET(&ms, 0, sizeof ms);
    ms.sid = sid;
    ms.a = t->a;
    ak_arena_init(&ms.strings, t->a, 4096);
    rc = ak__fs_scan(t, ak__fs_add_member, &ms, err);
    if (rc == AK_OK) rc = ak__fs_pick_leaf(t->f, &ms, &best, err);
    if (rc == AK_OK && best) {
        ak__fs_loaded l;
        rc = ak__fs_load(t, best, &l, err);
        *out = l.snap;
    }
    ak_free(t->a, ms.v, ms.cap * sizeof *ms.v);
    ak_arena_free(&ms.strings);
    return rc;
}

/* The latest leaf: the pointer's row when it exists, belongs to the session and is no
   detached self-parent, else a scan (always with reject_branching). */
AK_PRIVATE ak_result ak__fs_latest(ak__fs_tenant *t, const char *sid, ak_snapshot **out, ak_error *err) {
    char id[AK_ID_MAX + 1];
    ak_result rc;
    id[0] = 0;
    if (!t->f->desc.reject_branching && (rc = ak__fs_pointer_read(t, sid, id, err)) != AK_OK) return rc;
    if (id[0]) {
        ak__fs_loaded l;
        if ((rc = ak__fs_load(t, id, &l, err)) != AK_OK) return rc;
        if (l.snap && ak__fs_same(l.snap->session_id, sid) && !ak__fs_same(l.snap->parent_id, l.snap->id)) {
            *out = l.snap;
            return AK_OK;
        }
        ak_snapshot_release(l.snap);
    }
    return ak__fs_scan_leaf(t, sid, out, err);
}

/* ---- writing rows ----------------------------------------------------------------------- */

/* The messages of m from index `from` on, as a JSON array in d. Only the segments holding
   them are walked, so writing a delta costs what the turn added, not the history. */
AK_PRIVATE ak_json *ak__fs_tail_json(const ak_msgs *m, size_t from, ak_json_doc *d) {
    size_t count = ak_msgs_count(m), limit = count, n = count - from, i;
    const ak_json **v;
    ak_json *arr = ak_json_new_array(d), *last = NULL;
    if (!arr || !n) return arr;
    if (n > ((size_t)-1) / sizeof *v || !(v = (const ak_json **)ak_arena_alloc(&d->arena, n * sizeof *v))) {
        d->err = AK_ERR_OUT_OF_MEMORY;
        return NULL;
    }
    for (; m && limit > from; m = m->prev) {
        const ak_json *x = m->first;
        for (i = m->prev_count; x && i < limit; x = x->next, i++)
            if (i >= from) v[i - from] = x;
        if (limit > m->prev_count) limit = m->prev_count;
    }
    for (i = 0; i < n; i++) {
        ak_json *c = ak_json_copy(d, v[i]);
        if (!c) return NULL;
        if (last) last->next = c; /* linked directly: ak_json_push walks the list */
        else arr->u.first = c;
        last = c;
        arr->len++;
    }
    return arr;
}

/* The bytes of snap's row stored as meta says. */
AK_PRIVATE ak_result ak__fs_encode(ak__fs_tenant *t, const ak_snapshot *snap, const ak__fs_meta *meta, ak_buf *out,
                                   ak_error *err) {
    ak_snapshot view = *snap; /* read-only copy: a delta's state is written without the base's messages */
    ak_json_doc d;
    ak_json *o, *x;
    ak_result rc = AK_OK;
    ak_json_doc_init(&d, t->a);
    if (meta->base[0]) view.state.messages = NULL;
    o = ak_snapshot_to_json(&view, AK_SNAPSHOT_NONE, &d);
    if (o && meta->base[0])
        ak_json_set(&d, ak_json_get(o, "state"), "messages", ak__fs_tail_json(snap->state.messages, meta->keep, &d));
    if (o && (meta->base[0] || meta->linear)) {
        ak_buf hex;
        char h[17];
        ak_buf_init_fixed(&hex, h, sizeof h);
        x = ak_json_new_object(&d);
        ak_json_set_int(&d, x, "v", 1);
        if (meta->base[0]) {
            ak__fs_put_hex(&hex, meta->base_hash);
            ak_json_set_str(&d, x, "base", meta->base);
            ak_json_set_str(&d, x, "baseHash", h);
            ak_json_set_int(&d, x, "keep", (int64_t)meta->keep);
            ak_json_set_int(&d, x, "depth", meta->depth);
        }
        if (meta->linear) ak_json_set_bool(&d, x, "linear", 1);
        ak_json_set(&d, o, "akFile", x);
    }
    ak_buf_clear(out);
    if (!o || d.err || ak_json_write(o, out) != AK_OK) rc = ak__fs_oom(err);
    ak_json_doc_free(&d);
    return rc;
}

/* Writes snap as row file snap->id and caches it; *hash names the version written. */
AK_PRIVATE ak_result ak__fs_put_row(ak__fs_tenant *t, ak_snapshot *snap, const ak__fs_meta *meta, uint64_t *hash,
                                    ak_error *err) {
    ak_buf path, tmp, body;
    ak_result rc = AK_OK;
    ak_buf_init(&path, t->a), ak_buf_init(&tmp, t->a), ak_buf_init(&body, t->a);
    if (!ak__fs_row_path(t, &path, snap->id) || !ak__fs_path(t, &tmp, NULL, ".tmp.", snap->id, ".json"))
        rc = ak__fs_oom(err);
    if (rc == AK_OK) rc = ak__fs_encode(t, snap, meta, &body, err);
    if (rc == AK_OK) {
        *hash = ak__fs_hash(body.ptr, body.len);
        ak__fs_cache_drop(t->f, path.ptr); /* whatever happens next, the old version is no longer ours */
        rc = ak__fs_replace(t, t->dir.ptr, tmp.ptr, path.ptr, &body, err);
        if (rc == AK_OK) ak__fs_cache_put(t->f, path.ptr, *hash, snap, meta);
    }
    ak_buf_free(&path), ak_buf_free(&tmp), ak_buf_free(&body);
    return rc;
}

/* Writes compactly into the scratch buffers and compares: the same message, byte for byte. */
AK_PRIVATE int ak__fs_same_json(const ak_json *a, const ak_json *b, ak_buf *x, ak_buf *y) {
    ak_buf_clear(x), ak_buf_clear(y);
    return ak_json_write(a, x) == AK_OK && ak_json_write(b, y) == AK_OK && x->len == y->len &&
           AK_MEMCMP(x->ptr, y->ptr, x->len) == 0;
}

/* 1 when the messages of p are the first messages of n: by identity when n was built on p
   (the usual case, a few pointer steps), else compared one by one. Out of memory says 0,
   which only costs a checkpoint. */
AK_PRIVATE int ak__fs_is_prefix(const ak_allocator *a, const ak_msgs *p, const ak_msgs *n) {
    size_t np = ak_msgs_count(p), limit = ak_msgs_count(n), i, steps = 0, bytes;
    const ak_msgs *m = n;
    const ak_json **pv, **nv;
    ak_buf x, y;
    int same = 1;
    if (np > limit) return 0;
    if (!np) return 1;
    for (; m && limit >= np && steps < 16; m = m->prev, steps++) {
        if (m == p) return 1;
        limit = AK__MIN(limit, m->prev_count);
    }
    if (ak_msgs_count(n) > ((size_t)-1) / sizeof *pv) return 0;
    bytes = ak_msgs_count(n) * sizeof *pv;
    pv = (const ak_json **)ak_alloc(a, np * sizeof *pv);
    nv = (const ak_json **)ak_alloc(a, bytes);
    ak_buf_init(&x, a), ak_buf_init(&y, a);
    if (!pv || !nv) same = 0;
    if (same) ak_msgs_collect(p, pv), ak_msgs_collect(n, nv);
    for (i = 0; same && i < np; i++) same = pv[i] == nv[i] || ak__fs_same_json(pv[i], nv[i], &x, &y);
    ak_free(a, pv, np * sizeof *pv);
    ak_free(a, nv, bytes);
    ak_buf_free(&x), ak_buf_free(&y);
    return same;
}

/* Rows between checkpoints: checkpoint_every, or max_chain when that is smaller, so that
   pruning never waits long for a checkpoint. */
AK_PRIVATE int ak__fs_interval(const ak_filestore *f) {
    int n = f->desc.checkpoint_every;
    return f->desc.max_chain > 0 && f->desc.max_chain < n ? f->desc.max_chain : n;
}

/* Decides how to store `next`, which replaces `cur` (NULL for a new row). A delta on the
   parent when the parent loads, its messages start next's, the chain since the last
   checkpoint is short enough, and the invariants in the file comment allow it. */
AK_PRIVATE ak_result ak__fs_plan(ak__fs_tenant *t, const ak_snapshot *next, const ak__fs_loaded *cur,
                                 const char *pointer, ak__fs_meta *meta, ak_error *err) {
    const char *parent = next->parent_id;
    int same_lineage = cur->snap && ak__fs_same(cur->snap->parent_id, parent) &&
                       ak__fs_same(cur->snap->session_id, next->session_id);
    int may_delta;
    ak__fs_loaded p;
    ak_error inner;
    ak_result rc;
    AK_MEMSET(meta, 0, sizeof *meta);
    if (cur->snap) meta->linear = same_lineage && cur->meta.linear;
    else meta->linear = parent && ak__fs_same(pointer, parent);
    may_delta = parent && ak__fs_id_ok(parent) && !ak__streq(parent, next->id) && ak__fs_interval(t->f) > 1 &&
                (cur->snap ? same_lineage && ak__streq(cur->meta.base, parent) : meta->linear);
    if (!may_delta) return AK_OK;
    rc = ak__fs_load(t, parent, &p, &inner);
    if (rc == AK_ERR_OUT_OF_MEMORY) return ak__fs_oom(err);
    if (rc != AK_OK || !p.snap) return AK_OK; /* a parent that is gone or damaged: write in full */
    if (p.meta.depth + 1 < ak__fs_interval(t->f) && ak__fs_is_prefix(t->a, p.snap->state.messages, next->state.messages)) {
        AK_MEMCPY(meta->base, parent, ak__strlen(parent) + 1);
        meta->base_hash = p.hash;
        meta->keep = ak_msgs_count(p.snap->state.messages);
        meta->depth = p.meta.depth + 1;
    }
    ak_snapshot_release(p.snap);
    return AK_OK;
}

/* Rewrites as checkpoints the rows whose delta takes messages from `id` (before `id` stops
   having them). Needs a scan, but only a save that rewrites a row's messages other than by
   appending gets here, which agents never do. */
typedef struct ak__fs_dependents {
    ak__fs_tenant *t;
    const char *id;
} ak__fs_dependents;

AK_PRIVATE ak_result ak__fs_materialise(void *ud, const char *id, const ak__fs_head *h, ak_error *err) {
    ak__fs_dependents *d = (ak__fs_dependents *)ud;
    ak__fs_loaded l;
    ak__fs_meta meta;
    uint64_t hash;
    ak_result rc;
    if (!ak__streq(h->meta.base, d->id)) return AK_OK;
    if ((rc = ak__fs_load(d->t, id, &l, err)) != AK_OK || !l.snap) return rc;
    AK_MEMSET(&meta, 0, sizeof meta);
    meta.linear = l.meta.linear;
    rc = ak__fs_put_row(d->t, l.snap, &meta, &hash, err);
    ak_snapshot_release(l.snap);
    return rc;
}

/* Deletes the ancestors of the row just written that are more than max_chain back, newest
   first (so a crash midway leaves only loadable rows), keeping every row a kept row's delta
   needs: a row goes when its child on the chain is linear (it has no other delta child) and
   does not take messages from it (is a checkpoint, or is going too). The walk ends where
   earlier saves stopped, at most max_chain + interval rows back. Failures only log. */
AK_PRIVATE void ak__fs_prune(ak__fs_tenant *t, const ak_snapshot *snap, const ak__fs_meta *meta) {
    ak_buf path, bytes;
    ak__fs_head h;
    char cur[AK_ID_MAX + 1];
    int k, limit = t->f->desc.max_chain + ak__fs_interval(t->f) + 1, child_linear = meta->linear, removed = 0;
    int child_needs = meta->base[0] != 0, child_gone = 0;
    ak_buf_init(&path, t->a), ak_buf_init(&bytes, t->a);
    cur[0] = 0;
    if (snap->parent_id && ak__fs_id_ok(snap->parent_id)) AK_MEMCPY(cur, snap->parent_id, ak__strlen(snap->parent_id) + 1);
    for (k = 1; cur[0] && k <= limit; k++) {
        ak_error e;
        int gone;
        if (ak__fs_head_read(t, cur, &path, &bytes, &h, &e) != AK_OK) break;
        gone = k >= t->f->desc.max_chain && child_linear && (child_gone || !child_needs);
        if (gone) {
            if (t->ops->remove_file(t->ops->ud, path.ptr) != 0) {
                ak_log(t->f->ctx, AK_LOG_WARN, "file store: cannot remove %s while pruning", path.ptr);
                break;
            }
            ak__fs_cache_drop(t->f, path.ptr);
            removed = 1;
        }
        child_linear = h.meta.linear;
        child_needs = h.meta.base[0] != 0;
        child_gone = gone;
        if (!h.parent[0] || !ak__fs_id_ok(h.parent)) break;
        AK_MEMCPY(cur, h.parent, ak__strlen(h.parent) + 1);
    }
    if (removed && t->ops->sync_dir(t->ops->ud, t->dir.ptr) != 0)
        ak_log(t->f->ctx, AK_LOG_WARN, "file store: cannot sync %s after pruning", t->dir.ptr);
    ak_buf_free(&path), ak_buf_free(&bytes);
}

/* Writes `next` over `cur` (cur->snap NULL: a new row): decides delta or checkpoint, keeps
   dependents and pointers right, then replaces the file. */
AK_PRIVATE ak_result ak__fs_write_row(ak__fs_tenant *t, ak_snapshot *next, const ak__fs_loaded *cur, uint64_t *hash,
                                      ak__fs_meta *meta, ak_error *err) {
    const char *sid = next->session_id;
    char pointer[AK_ID_MAX + 1];
    ak_result rc;
    pointer[0] = 0;
    if (sid && (rc = ak__fs_pointer_read(t, sid, pointer, err)) != AK_OK) return rc;
    if ((rc = ak__fs_plan(t, next, cur, pointer, meta, err)) != AK_OK) return rc;
    if (cur->snap && !ak__fs_is_prefix(t->a, cur->snap->state.messages, next->state.messages)) {
        ak__fs_dependents d;
        d.t = t, d.id = next->id;
        if ((rc = ak__fs_scan(t, ak__fs_materialise, &d, err)) != AK_OK) return rc;
    }
    if (!cur->snap && sid) {
        /* before the row: a crash in between leaves a pointer to nothing (a scan follows),
           never a row its session's pointer does not know about */
        if ((rc = ak__fs_pointer_write(t, sid, next->id, err)) != AK_OK) return rc;
    } else if (cur->snap && (!ak__fs_same(cur->snap->parent_id, next->parent_id) ||
                             !ak__fs_same(cur->snap->session_id, sid))) {
        /* a row that moved in the lineage may make either session's pointer stale */
        if ((sid && (rc = ak__fs_pointer_drop(t, sid, err)) != AK_OK) ||
            (cur->snap->session_id && (rc = ak__fs_pointer_drop(t, cur->snap->session_id, err)) != AK_OK))
            return rc;
    }
    return ak__fs_put_row(t, next, meta, hash, err);
}

/* ---- saving ------------------------------------------------------------------------------ */

/* Gives *next the id it is stored under (the caller's, else its own, else a new UUID) and
   checks the ids the file will hold, so every row written can be read back. A snapshot
   others hold too (the cache, say) is copied rather than renamed under them. */
AK_PRIVATE ak_result ak__fs_claim_id(ak__fs_tenant *t, const char *snapshot_id, ak_snapshot **pnext, ak_error *err) {
    ak_snapshot *next = *pnext;
    const char *id = snapshot_id ? snapshot_id : next->id;
    char fresh[37];
    ak_result rc;
    if (!id) {
        if ((rc = ak_uuid4(t->f->ctx, fresh)) != AK_OK)
            return ak_error_set(err, rc, "cannot make a snapshot id: %s", ak_result_str(rc));
        id = fresh;
    }
    if (!ak__fs_id_ok(id)) return ak__fs_bad_id(err, "snapshotId");
    if ((next->session_id && (!*next->session_id || ak__strlen(next->session_id) > AK_ID_MAX)) ||
        (next->parent_id && (!*next->parent_id || ak__strlen(next->parent_id) > AK_ID_MAX)))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "sessionId and parentId must be 1..%d bytes", AK_ID_MAX);
    if (!next->id || !ak__streq(next->id, id)) {
        char *copy;
        if (next->refs > 1) {
            ak_snapshot *own = ak_snapshot_clone(next);
            if (!own) return ak__fs_oom(err);
            ak_snapshot_release(next);
            *pnext = next = own;
        }
        if (!(copy = ak__strdup(next->alloc, id))) return ak__fs_oom(err);
        ak__strfree(next->alloc, next->id);
        next->id = copy;
    }
    return AK_OK;
}

/* The read-modify-write of one row, under the tenant's exclusive lock. *saved receives the
   snapshot written (a reference), NULL when the mutator skipped. */
AK_PRIVATE ak_result ak__fs_save_locked(ak__fs_tenant *t, const char *snapshot_id, ak_store_mutator fn, void *fn_ud,
                                        ak_snapshot **saved, uint64_t *hash, ak_error *err) {
    ak__fs_loaded cur;
    ak__fs_meta meta;
    ak_snapshot *next = NULL;
    ak_result rc = AK_OK;
    AK_MEMSET(&cur, 0, sizeof cur);
    if (snapshot_id) rc = ak__fs_load(t, snapshot_id, &cur, err);
    if (rc == AK_OK && (rc = fn(fn_ud, cur.snap, &next)) != AK_OK)
        ak_error_set(err, rc, "file store: the save was refused: %s", ak_result_str(rc));
    if (rc == AK_OK && next) rc = ak__fs_claim_id(t, snapshot_id, &next, err);
    /* the mutator's own id may name an existing row, which this write replaces */
    if (rc == AK_OK && next && !snapshot_id) rc = ak__fs_load(t, next->id, &cur, err);
    if (rc == AK_OK && next) rc = ak__fs_write_row(t, next, &cur, hash, &meta, err);
    if (rc == AK_OK && next && t->f->desc.max_chain > 0) ak__fs_prune(t, next, &meta);
    ak_snapshot_release(cur.snap);
    if (rc == AK_OK) *saved = next;
    else ak_snapshot_release(next);
    return rc;
}

/* ---- watches ---------------------------------------------------------------------------- */

struct ak_filestore_watch {
    ak_filestore_watch *next;
    char *dir;                   /* the tenant directory */
    char *id;
    uint64_t hash;               /* the version last reported (or current when watched) */
    int have_hash;
    int dead;                    /* unwatched while listeners ran: freed by the next sweep */
    ak_store_listener fn;
    void *ud;
};

AK_PRIVATE void ak__fs_sweep(ak_filestore *f) {
    const ak_allocator *a = ak_context_allocator(f->ctx);
    ak_filestore_watch **link = &f->watches;
    if (f->notifying) return;
    while (*link) {
        ak_filestore_watch *w = *link;
        if (!w->dead) {
            link = &w->next;
            continue;
        }
        *link = w->next;
        ak__strfree(a, w->dir);
        ak__strfree(a, w->id);
        ak_free(a, w, sizeof *w);
    }
}

/* Tells the watchers of snap's row about the version `hash` (a save through this store). */
AK_PRIVATE void ak__fs_notify(ak_filestore *f, const char *dir, const ak_snapshot *snap, uint64_t hash) {
    ak_filestore_watch *w;
    f->notifying++;
    for (w = f->watches; w; w = w->next) {
        if (w->dead || !ak__streq(w->dir, dir) || !ak__streq(w->id, snap->id)) continue;
        w->hash = hash, w->have_hash = 1;
        w->fn(w->ud, snap);
    }
    f->notifying--;
    ak__fs_sweep(f);
}

/* The watched row when its file changed since last reported (*snap NULL otherwise). */
AK_PRIVATE ak_result ak__fs_poll_one(ak_filestore *f, const ak_filestore_watch *w, ak_snapshot **snap, uint64_t *hash) {
    ak__fs_tenant t;
    ak__fs_loaded l;
    void *lock = NULL;
    ak_result rc;
    *snap = NULL;
    ak__fs_tenant_at(f, &t);
    ak_buf_puts(&t.dir, w->dir);
    rc = t.dir.err ? AK_ERR_OUT_OF_MEMORY : ak__fs_lock(&t, 0, &lock, NULL);
    if (rc == AK_OK && lock) {
        rc = ak__fs_load(&t, w->id, &l, NULL);
        ak__fs_unlock(&t, lock);
        if (rc == AK_OK && l.snap && (!w->have_hash || l.hash != w->hash)) *snap = l.snap, *hash = l.hash;
        else ak_snapshot_release(l.snap);
    }
    ak__fs_tenant_close(&t);
    return rc;
}

/* ---- the store interface ------------------------------------------------------------------ */

AK_PRIVATE ak_result ak__fs_get(ak_store *s, const char *snapshot_id, const char *session_id, const ak_json *context,
                                ak_snapshot **out, ak_error *err) {
    ak_filestore *f = (ak_filestore *)s->ud;
    ak__fs_tenant t;
    void *lock = NULL;
    ak_result rc;
    *out = NULL;
    if ((snapshot_id == NULL) == (session_id == NULL) || (session_id && !*session_id))
        return ak_error_setst(err, AK_ERR_INVALID_ARGUMENT, AK_STATUS_INVALID_ARGUMENT,
                              "Exactly one of snapshotId or sessionId is required.");
    if (snapshot_id && !ak__fs_id_ok(snapshot_id)) return ak__fs_bad_id(err, "snapshotId");
    rc = ak__fs_tenant_open(f, context, &t, err);
    if (rc == AK_OK && !(session_id && ak__strlen(session_id) > AK_ID_MAX)) /* else no row can have it */
        rc = ak__fs_lock(&t, 0, &lock, err);
    if (rc == AK_OK && lock) {
        if (session_id) {
            rc = ak__fs_latest(&t, session_id, out, err);
        } else {
            ak__fs_loaded l;
            rc = ak__fs_load(&t, snapshot_id, &l, err);
            *out = l.snap;
        }
        ak__fs_unlock(&t, lock);
    }
    ak__fs_tenant_close(&t);
    return rc;
}

AK_PRIVATE ak_result ak__fs_save(ak_store *s, const char *snapshot_id, ak_store_mutator fn, void *fn_ud,
                                 const ak_json *context, char written_id[AK_ID_MAX + 1], ak_error *err) {
    ak_filestore *f = (ak_filestore *)s->ud;
    ak__fs_tenant t;
    ak_snapshot *saved = NULL;
    uint64_t hash = 0;
    void *lock = NULL;
    ak_result rc;
    written_id[0] = 0;
    if (snapshot_id && !ak__fs_id_ok(snapshot_id)) return ak__fs_bad_id(err, "snapshotId");
    rc = ak__fs_tenant_open(f, context, &t, err);
    if (rc == AK_OK) rc = ak__fs_lock(&t, 1, &lock, err);
    if (rc == AK_OK) {
        rc = ak__fs_save_locked(&t, snapshot_id, fn, fn_ud, &saved, &hash, err);
        ak__fs_unlock(&t, lock);
    }
    if (saved) {
        AK_MEMCPY(written_id, saved->id, ak__strlen(saved->id) + 1);
        ak__fs_notify(f, t.dir.ptr, saved, hash); /* unlocked: listeners may save */
        ak_snapshot_release(saved);
    }
    ak__fs_tenant_close(&t);
    return rc;
}

AK_PRIVATE ak_result ak__fs_watch(ak_store *s, const char *snapshot_id, ak_store_listener fn, void *fn_ud,
                                  const ak_json *context, void **token) {
    ak_filestore *f = (ak_filestore *)s->ud;
    const ak_allocator *a = ak_context_allocator(f->ctx);
    ak__fs_tenant t;
    ak_filestore_watch *w = NULL;
    ak_buf path, bytes;
    ak_result rc;
    if (!fn || !ak__fs_id_ok(snapshot_id)) return AK_ERR_INVALID_ARGUMENT;
    ak_buf_init(&path, a), ak_buf_init(&bytes, a);
    rc = ak__fs_tenant_open(f, context, &t, NULL);
    if (rc == AK_OK && (w = (ak_filestore_watch *)ak_alloc(a, sizeof *w)) == NULL) rc = AK_ERR_OUT_OF_MEMORY;
    if (rc == AK_OK) {
        AK_MEMSET(w, 0, sizeof *w);
        w->fn = fn, w->ud = fn_ud;
        w->dir = ak__strdup(a, t.dir.ptr);
        w->id = ak__strdup(a, snapshot_id);
        if (!w->dir || !w->id || !ak__fs_row_path(&t, &path, snapshot_id)) rc = AK_ERR_OUT_OF_MEMORY;
    }
    /* report changes from now on: remember the version there is (one file, read whole) */
    if (rc == AK_OK && ak__fs_read(&t, path.ptr, &bytes, NULL) == AK_OK)
        w->hash = ak__fs_hash(bytes.ptr, bytes.len), w->have_hash = 1;
    if (rc == AK_OK) {
        w->next = f->watches;
        f->watches = w;
        *token = w;
    } else if (w) {
        ak__strfree(a, w->dir), ak__strfree(a, w->id);
        ak_free(a, w, sizeof *w);
    }
    ak_buf_free(&path), ak_buf_free(&bytes);
    ak__fs_tenant_close(&t);
    return rc;
}

AK_PRIVATE void ak__fs_unwatch(ak_store *s, void *token) {
    ak_filestore *f = (ak_filestore *)s->ud;
    ak_filestore_watch *w;
    for (w = f->watches; w; w = w->next)
        if (w == token) w->dead = 1;
    ak__fs_sweep(f);
}

/* Reads every watched row (its file, whole: cheap for the small rows deltas are) and tells
   the listeners of those whose content changed, after releasing the lock. */
AK_PRIVATE ak_result ak__fs_poll(ak_store *s) {
    ak_filestore *f = (ak_filestore *)s->ud;
    ak_filestore_watch *w;
    ak_result first = AK_OK;
    f->notifying++;
    for (w = f->watches; w; w = w->next) {
        ak_snapshot *snap;
        uint64_t hash = 0;
        ak_result rc;
        if (w->dead) continue;
        rc = ak__fs_poll_one(f, w, &snap, &hash);
        if (rc != AK_OK && first == AK_OK) first = rc;
        if (snap && !w->dead) {
            w->hash = hash, w->have_hash = 1;
            w->fn(w->ud, snap);
        }
        ak_snapshot_release(snap);
    }
    f->notifying--;
    ak__fs_sweep(f);
    return first;
}

/* ---- init / free ------------------------------------------------------------------------ */

/* NULL members of o become the platform defaults; without defaults they must all be set. */
AK_PRIVATE ak_result ak__fs_fill_ops(ak_file_ops *o, ak_error *err) {
    ak_file_ops d;
    int have = ak_file_ops_default(&d) == AK_OK;
#define AK__FS_FILL(m)                                                                                  \
    do {                                                                                                \
        if (o->m) break;                                                                                \
        if (!have)                                                                                      \
            return ak_error_set(err, AK_ERR_UNSUPPORTED,                                                \
                                "file store: no default file operations on this platform: set ops." #m); \
        o->m = d.m;                                                                                     \
    } while (0)
    AK__FS_FILL(open_write);
    AK__FS_FILL(write);
    AK__FS_FILL(sync);
    AK__FS_FILL(close);
    AK__FS_FILL(read_file);
    AK__FS_FILL(rename_file);
    AK__FS_FILL(remove_file);
    AK__FS_FILL(sync_dir);
    AK__FS_FILL(make_dir);
    AK__FS_FILL(list_dir);
    AK__FS_FILL(lock);
    AK__FS_FILL(unlock);
#undef AK__FS_FILL
    return AK_OK;
}

AK_PRIVATE int ak__fs_ignore_name(void *ud, const char *name) {
    AK__UNUSED(ud), AK__UNUSED(name);
    return 0;
}

AKDEF ak_result ak_filestore_init(ak_filestore *f, ak_context *ctx, const ak_filestore_desc *desc, ak_error *err) {
    const ak_allocator *a;
    size_t n;
    ak_result rc;
    AK_MEMSET(f, 0, sizeof *f);
    if (!ctx || !desc || !desc->dir || !*desc->dir)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "file store: desc.dir is required");
    if (desc->max_chain < 0 || desc->checkpoint_every < 0 || desc->checkpoint_every > AK_FILESTORE_MAX_DELTAS)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "file store: max_chain must be >= 0 and checkpoint_every 0..%d",
                            AK_FILESTORE_MAX_DELTAS);
    f->desc = *desc;
    f->desc.checkpoint_every = AK__DEF(desc->checkpoint_every, 16);
    if ((rc = ak__fs_fill_ops(&f->desc.ops, err)) != AK_OK) return rc;
    a = ak_context_allocator(ctx);
    for (n = ak__strlen(desc->dir); n > 1 && desc->dir[n - 1] == '/'; n--) {
    }
    if (!(f->dir = (char *)ak_alloc(a, n + 1))) return ak__fs_oom(err);
    AK_MEMCPY(f->dir, desc->dir, n);
    f->dir[n] = 0;
    f->desc.dir = f->dir;
    f->ctx = ctx;
    if (AK_FILESTORE_CACHE > 0) {
        f->cache = (ak_filestore_entry *)ak_alloc(a, AK_FILESTORE_CACHE * sizeof *f->cache);
        if (!f->cache) rc = ak__fs_oom(err);
        else AK_MEMSET(f->cache, 0, AK_FILESTORE_CACHE * sizeof *f->cache);
    }
    if (rc == AK_OK && (f->desc.ops.make_dir(f->desc.ops.ud, f->dir) < 0 ||
                        f->desc.ops.list_dir(f->desc.ops.ud, f->dir, ak__fs_ignore_name, NULL) != 0))
        rc = ak__fs_io(err, "create or open the directory", f->dir);
    if (rc != AK_OK) {
        ak_filestore_free(f);
        return rc;
    }
    f->store.get = ak__fs_get;
    f->store.save = ak__fs_save;
    f->store.watch = ak__fs_watch;
    f->store.unwatch = ak__fs_unwatch;
    f->store.poll = ak__fs_poll;
    f->store.ud = f;
    return AK_OK;
}

AKDEF void ak_filestore_free(ak_filestore *f) {
    const ak_allocator *a;
    ak_filestore_watch *w;
    size_t i;
    if (!f->ctx) return;
    a = ak_context_allocator(f->ctx);
    for (i = 0; f->cache && i < AK_FILESTORE_CACHE; i++) ak__fs_entry_clear(f, &f->cache[i]);
    ak_free(a, f->cache, AK_FILESTORE_CACHE * sizeof *f->cache);
    for (w = f->watches; w; w = w->next) w->dead = 1;
    f->notifying = 0;
    ak__fs_sweep(f);
    ak__strfree(a, f->dir);
    AK_MEMSET(f, 0, sizeof *f);
}

#endif /* AK_NO_STDIO */
