/* >>session: session state, snapshots, the store interface, the in-memory and file stores.

   A session's state is {sessionId, messages, custom?, artifacts} (Genkit's SessionState).
   Everything in it is immutable once written and shared by reference: a snapshot taken after
   turn 50 shares turns 1..49 with the snapshot before it, so saving a turn costs what the
   turn added, not the whole history. Messages live in an ak_msgs list (shared prefixes);
   custom state and artifacts in ak_jref values (copy on write).

   Snapshots (Genkit's SessionSnapshot) are reference-counted immutable records. A store
   keeps them: get by snapshot id or by session id (the latest leaf), and save through an
   atomic read-modify-write that calls a mutator with the current row. */

#ifdef __cplusplus
extern "C" {
#endif

/* Longest snapshot or session id accepted from outside (clients, files). */
#ifndef AK_ID_MAX
#define AK_ID_MAX 128
#endif

typedef enum ak_snapshot_status {
    AK_SNAPSHOT_NONE = 0,
    AK_SNAPSHOT_PENDING,
    AK_SNAPSHOT_COMPLETED,
    AK_SNAPSHOT_ABORTED,
    AK_SNAPSHOT_FAILED,
    AK_SNAPSHOT_EXPIRED          /* read-time only: pending with a heartbeat older than 60 s */
} ak_snapshot_status;

AKDEF const char *ak_snapshot_status_name(ak_snapshot_status s); /* "pending", ...; NULL for NONE */
AKDEF ak_snapshot_status ak_snapshot_status_from_name(const char *name);

/* ---- message lists -------------------------------------------------------------------- */

/* An immutable message list made of segments: the first prev_count messages of `prev`, then
   this segment's own messages. Appending to a list somebody else also holds starts a new
   segment on top; nothing is ever copied twice. */
typedef struct ak_msgs ak_msgs;
struct ak_msgs {
    uint32_t refs;
    const ak_allocator *alloc;
    ak_msgs *prev;               /* retained */
    size_t prev_count;
    size_t count;                /* prev_count + own messages */
    ak_json_doc doc;             /* owns this segment's messages */
    ak_json *first, *last;       /* own messages, linked through next */
};

AKDEF size_t ak_msgs_count(const ak_msgs *m);                 /* NULL = 0 */
/* The i-th message (0-based), or NULL. O(segments + messages of its segment). */
AKDEF const ak_json *ak_msgs_at(const ak_msgs *m, size_t i);
/* Fills out[0..count) with every message in order (out has room for ak_msgs_count). */
AKDEF void ak_msgs_collect(const ak_msgs *m, const ak_json **out);
/* Appends a copy of msg to *m, starting a new segment when *m is shared. */
AKDEF ak_result ak_msgs_append(const ak_allocator *a, ak_msgs **m, const ak_json *msg);
/* Repacks the top segment's own messages into one exact-size block when this caller holds
   the only reference (segments grow geometrically while a turn appends; call this before
   sharing the list, e.g. when a snapshot takes it). Costs what the segment holds. */
AKDEF ak_result ak_msgs_compact(const ak_allocator *a, ak_msgs *m);
/* Keeps the first n messages (n <= count). */
AKDEF ak_result ak_msgs_truncate(const ak_allocator *a, ak_msgs **m, size_t n);
/* A new list with copies of the messages of a JSON array (NULL or [] gives an empty list). */
AKDEF ak_result ak_msgs_from_json(const ak_allocator *a, const ak_json *array, ak_msgs **out);
/* Builds the JSON array of the messages in d. */
AKDEF ak_json *ak_msgs_to_json(const ak_msgs *m, ak_json_doc *d);
AKDEF ak_msgs *ak_msgs_retain(ak_msgs *m);
AKDEF void ak_msgs_release(ak_msgs *m);

/* ---- session state -------------------------------------------------------------------- */

typedef struct ak_session_state {
    char *session_id;            /* owned, NUL-terminated; NULL until known */
    ak_msgs *messages;           /* NULL = none */
    ak_jref *custom;             /* NULL = absent (the key is left out) */
    ak_jref *artifacts;          /* JSON array; NULL = [] */
} ak_session_state;

/* A second reference to the same state (shares everything). */
AKDEF ak_result ak_session_state_copy(const ak_allocator *a, const ak_session_state *from,
                                      ak_session_state *to);
AKDEF void ak_session_state_free(const ak_allocator *a, ak_session_state *s);
AKDEF ak_result ak_session_state_set_id(const ak_allocator *a, ak_session_state *s, const char *id);
/* {"custom"?:...,"artifacts":[...],"messages":[...],"sessionId":...} in d (Genkit's order). */
AKDEF ak_json *ak_session_state_to_json(const ak_session_state *s, ak_json_doc *d);
/* From a SessionState value (validated: messages must be valid messages, artifacts an
   array of {name?, parts}); the state is copied. */
AKDEF ak_result ak_session_state_from_json(const ak_allocator *a, const ak_json *v,
                                           ak_session_state *out, ak_error *err);

/* ---- snapshots ------------------------------------------------------------------------ */

typedef struct ak_snapshot {
    uint32_t refs;
    const ak_allocator *alloc;
    char *id;                    /* all strings owned by the snapshot */
    char *session_id;
    char *parent_id;             /* NULL = none */
    int64_t created_at;          /* ms since the epoch */
    int64_t updated_at;          /* 0 = absent */
    int64_t heartbeat_at;        /* 0 = absent */
    ak_snapshot_status status;   /* NONE = absent (treated as completed) */
    ak_finish_reason finish_reason; /* UNKNOWN with has_finish_reason 0 = absent */
    int has_finish_reason;
    ak_jref *error;              /* {status, message, details?} or NULL */
    ak_session_state state;
} ak_snapshot;

/* A new snapshot (refs 1) with copies of the ids (parent_id may be NULL) and a shared copy of
   the state (may be NULL for an empty one). */
AKDEF ak_snapshot *ak_snapshot_new(const ak_allocator *a, const char *id, const char *session_id,
                                   const char *parent_id, const ak_session_state *state);
/* A copy sharing everything, to change fields of before saving (refs 1). */
AKDEF ak_snapshot *ak_snapshot_clone(const ak_snapshot *s);
AKDEF ak_snapshot *ak_snapshot_retain(ak_snapshot *s);
AKDEF void ak_snapshot_release(ak_snapshot *s);
AKDEF ak_result ak_snapshot_set_error(ak_snapshot *s, ak_status status, const char *message,
                                      const ak_json *details);
/* SessionSnapshot JSON in d, in Genkit's key order: {snapshotId, sessionId, createdAt,
   updatedAt?, state, parentId?, status?, finishReason?, error?, heartbeatAt?}.
   status_override (NONE = keep) lets readers report "expired". */
AKDEF ak_json *ak_snapshot_to_json(const ak_snapshot *s, ak_snapshot_status status_override,
                                   ak_json_doc *d);
/* Parses a SessionSnapshot (as stored or sent); AK_ERR_DATA_LOSS with a message saying what
   is wrong when it is not one. */
AKDEF ak_result ak_snapshot_from_json(const ak_allocator *a, const ak_json *v, ak_snapshot **out,
                                      ak_error *err);
/* The status a reader sees at time now_ms: pending with a heartbeat older than 60 s reads as
   expired. */
AKDEF ak_snapshot_status ak_snapshot_read_status(const ak_snapshot *s, int64_t now_ms);

/* Parses "2026-11-21T10:00:00.123Z" (what ak_iso8601 writes; also without milliseconds) to
   ms since the epoch. */
AKDEF ak_result ak_iso8601_parse(const char *s, size_t len, int64_t *ms);

/* ---- stores --------------------------------------------------------------------------- */

typedef struct ak_store ak_store;

/* Called by save with the current row (NULL when there is none). Set *next to the snapshot
   to write (a new reference the store takes over) or leave it NULL to skip the write. An
   error return aborts the save with that error. May be called more than once by retrying
   stores, so it must not have side effects. */
typedef ak_result (*ak_store_mutator)(void *ud, const ak_snapshot *current, ak_snapshot **next);
/* Told about each write to a watched id (the snapshot is only valid during the call). */
typedef void (*ak_store_listener)(void *ud, const ak_snapshot *snap);

struct ak_store {
    /* Exactly one of snapshot_id / session_id. By session: the latest leaf (snapshots of that
       session nobody names as parent; several: the newest createdAt; none:
       AK_ERR_STATE "corrupt or cyclic history"). *out is a new reference, or NULL when
       nothing matches (still AK_OK). `context` is the caller's auth context (may be NULL),
       for per-tenant stores. */
    ak_result (*get)(ak_store *s, const char *snapshot_id, const char *session_id,
                     const ak_json *context, ak_snapshot **out, ak_error *err);
    /* Atomic read-modify-write of snapshot_id (NULL: the mutator's id, else a new UUID).
       Writes the id it stored into written_id (empty when the mutator skipped). */
    ak_result (*save)(ak_store *s, const char *snapshot_id, ak_store_mutator fn, void *fn_ud,
                      const ak_json *context, char written_id[AK_ID_MAX + 1], ak_error *err);
    /* Optional (makes agents abortable): call fn after every write to snapshot_id until
       unwatch(token). */
    ak_result (*watch)(ak_store *s, const char *snapshot_id, ak_store_listener fn, void *fn_ud,
                       const ak_json *context, void **token);
    void (*unwatch)(ak_store *s, void *token);
    /* Optional: notice writes made elsewhere (another process) and call the listeners. */
    ak_result (*poll)(ak_store *s);
    void *ud;
};

/* Validates an id that names a file or key: 1..AK_ID_MAX bytes of printable ASCII without
   '/', '\\', or NUL, and not "." or "..". */
AKDEF int ak_id_is_safe(const char *id);

/* ---- in-memory store ------------------------------------------------------------------ */

/* How many recently written or read snapshots keep their message list parsed ("hot"). Older
   ones keep only what their turn added, as compact JSON text, and are rebuilt when read. */
#ifndef AK_MEMSTORE_HOT
#define AK_MEMSTORE_HOT 64
#endif

typedef struct ak__memrow ak__memrow;
typedef struct ak__memsess ak__memsess;
typedef struct ak_memstore_watch ak_memstore_watch;

/* Snapshots live as compact rows: a binary id (for UUIDs), the parent's id, the messages the
   turn added as compact JSON text, and shared references to custom state and artifacts. A
   conversation of N turns costs N small rows, not N copies of its history. */
typedef struct ak_memstore {
    ak_store store;              /* hand &store to agents */
    ak_context *ctx;
    ak__memrow **rows;           /* hash table by snapshot id */
    size_t row_buckets, count;
    ak__memsess **sessions;      /* hash table by session id */
    size_t session_buckets, session_count;
    ak__memrow *hot[AK_MEMSTORE_HOT]; /* ring of rows whose message list is kept parsed */
    size_t hot_next;
    ak_memstore_watch *watches;
    uint32_t seq;                /* write counter */
    int reject_branching;        /* sessionId lookups with several leaves fail */
} ak_memstore;

AKDEF ak_result ak_memstore_init(ak_memstore *m, ak_context *ctx);
AKDEF void ak_memstore_free(ak_memstore *m);

/* ---- file store ----------------------------------------------------------------------- */

#ifndef AK_NO_STDIO
/* Snapshots as files: dir/<prefix>/<snapshotId>.json, one per row, replaced atomically (temp
   file, fsync, rename, fsync of the directory), so a crash leaves the old row or the new one,
   never a torn file. A row that adds messages to its parent's list stores only the new ones
   ("the first N messages of <parentId> + these"), with a full checkpoint every
   checkpoint_every rows of a chain; a checkpoint is a plain Genkit SessionSnapshot, and rows
   written by Genkit's FileSessionStore read as checkpoints. Saves are serialised across
   processes by an exclusive lock on dir/<prefix>/.lock (reads take it shared), so two
   processes saving the same row lose nothing. dir/<prefix>/.pointers/ holds one small file
   per session naming its latest row, so a sessionId lookup reads one file instead of the
   whole directory.

   Corrupt or truncated rows (only outside damage makes them) read as AK_ERR_DATA_LOSS
   naming the file; they never hide other rows. A sessionId scan skips rows it cannot parse
   (their session is unknown) and logs each at WARN; a row of the session that parses but
   whose delta chain is broken fails the lookup with DATA_LOSS. Snapshot ids must pass
   ak_id_is_safe and may not start with '.' (the store's own files do). Watch listeners run
   inside save (for this store's writes) and poll (for other processes' writes, noticed by
   content), after the lock is released, so they may call the store. */

/* Rows kept in memory (recently read or written): resuming the latest snapshot neither
   re-reads nor re-parses its chain. */
#ifndef AK_FILESTORE_CACHE
#define AK_FILESTORE_CACHE 32
#endif
/* Largest file read (DoS guard); a bigger row reads as DATA_LOSS. */
#ifndef AK_FILESTORE_MAX_FILE
#define AK_FILESTORE_MAX_FILE (64u << 20)
#endif
/* Longest delta chain a reader follows, and the largest checkpoint_every accepted. */
#ifndef AK_FILESTORE_MAX_DELTAS
#define AK_FILESTORE_MAX_DELTAS 1024
#endif

/* File operations. The defaults use POSIX (open/write/fsync/rename/mkdir/opendir/flock) or
   Win32; on other platforms, or with AK_FREESTANDING, there are none and every member must be
   set (the names follow FatFs and littlefs: f_open/f_write/f_sync/f_close map one to one).
   Tests wrap them to fail or "crash" at any step. Unless said otherwise each returns 0 on
   success and nonzero on failure. Paths use '/' separators. */
typedef struct ak_file_ops {
    /* Creates or truncates path for writing; *file is the handle the next three take. */
    int (*open_write)(void *ud, const char *path, void **file);
    int (*write)(void *ud, void *file, const void *data, size_t len); /* all len bytes */
    int (*sync)(void *ud, void *file);                               /* to stable storage */
    int (*close)(void *ud, void *file);          /* releases the handle even when it fails */
    /* Appends the whole file to out (respecting out->max); 1 = it does not exist. */
    int (*read_file)(void *ud, const char *path, ak_buf *out);
    int (*rename_file)(void *ud, const char *from, const char *to);  /* atomic replace */
    int (*remove_file)(void *ud, const char *path);                  /* missing is success */
    int (*sync_dir)(void *ud, const char *dir);  /* makes renames and removals in dir durable */
    int (*make_dir)(void *ud, const char *dir);  /* 0 = created, 1 = existed already */
    /* Calls fn(fud, name) for each entry of dir; 1 = dir does not exist. When fn returns
       nonzero the listing stops and fails (-1). */
    int (*list_dir)(void *ud, const char *dir, int (*fn)(void *fud, const char *name), void *fud);
    /* Locks path (a lock file, created when missing) exclusively or shared, waiting as long
       as needed; 1 = its directory does not exist. Must exclude other processes and other
       handles of the same process. */
    int (*lock)(void *ud, const char *path, int exclusive, void **handle);
    void (*unlock)(void *ud, void *handle);
    void *ud;
} ak_file_ops;

/* Fills ops with the platform defaults (ud NULL). AK_ERR_UNSUPPORTED where there are none. */
AKDEF ak_result ak_file_ops_default(ak_file_ops *ops);

typedef struct ak_filestore_desc {
    const char *dir;             /* root directory (required; created if missing) */
    /* Per-tenant subdirectory from the caller's context (NULL hook: "global"). A result that
       is NULL or fails ak_id_is_safe fails the call with PERMISSION_DENIED. */
    const char *(*prefix)(void *ud, const ak_json *context);
    void *prefix_ud;
    /* >0: after each save, keep the newest max_chain rows of the saved row's parent chain
       (itself included) and delete older ancestors, except rows a kept delta still needs:
       at most max_chain + interval - 1 rows stay, and a session that branched also keeps
       its branch points. Costs a read of each kept row per save. 0 = keep everything. */
    int max_chain;
    /* A full checkpoint every N rows of a chain (default 16; 1 = always full, like Genkit;
       at most AK_FILESTORE_MAX_DELTAS). The interval used is the smaller of this and
       max_chain, so that pruning never waits long for a checkpoint. */
    int checkpoint_every;
    int reject_branching;        /* sessionId lookups always scan and fail on several leaves */
    ak_file_ops ops;             /* NULL members: the platform defaults */
} ak_filestore_desc;

typedef struct ak_filestore_entry ak_filestore_entry;
typedef struct ak_filestore_watch ak_filestore_watch;

typedef struct ak_filestore {
    ak_store store;              /* hand &store to agents */
    ak_context *ctx;
    ak_filestore_desc desc;      /* defaults filled in; desc.dir points at dir */
    char *dir;                   /* owned copy of the root directory */
    ak_filestore_entry *cache;   /* AK_FILESTORE_CACHE slots */
    uint64_t cache_clock;        /* least-recently-used order */
    ak_filestore_watch *watches;
    int notifying;               /* >0 while listeners run (unwatch then only marks) */
    uint64_t bytes_written;      /* statistics: bytes written by saves (rows and pointers) */
    uint64_t files_read;         /* statistics: files read */
} ak_filestore;

/* Opens a file store on desc->dir (created if missing). ctx supplies memory, clock, random
   ids and the WARN log for skipped rows; it must outlive f. Fails with INVALID_ARGUMENT for a
   missing dir or an out-of-range option, UNSUPPORTED when the platform has no default file
   operations and desc->ops leaves one unset, IO when dir cannot be created. Thread safety:
   one thread at a time per store; any number of stores and processes may share dir. */
AKDEF ak_result ak_filestore_init(ak_filestore *f, ak_context *ctx, const ak_filestore_desc *desc,
                                  ak_error *err);
/* Releases the cache and the watches (f may have failed init; then nothing happens). */
AKDEF void ak_filestore_free(ak_filestore *f);
#endif

#ifdef __cplusplus
}
#endif
