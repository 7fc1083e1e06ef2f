/* agentkit.h - v0.1.0 - Genkit's Agents API in one C header - MIT licence (end of file)

   Define an agent (model, system prompt, tools), chat with it in process or over HTTP,
   stream its output, pause it for human approval and resume, persist and branch its
   sessions, run turns in the background and abort them. Speaks Genkit's wire protocol.

   DO THIS
   -------
   In exactly one C or C++ file:

       #define AGENTKIT_IMPLEMENTATION
       #include "agentkit.h"

   Everywhere else include "agentkit.h" without the define.

   OPTIONS (define before including; layout-changing ones belong in AK_CONFIG_FILE)
   -------
   AK_STATIC              every function static (one translation unit uses the library)
   AKDEF                  linkage/visibility of public functions (default extern)
   AK_CONFIG_FILE         "file.h" included first by every translation unit
   AK_FREESTANDING        no libc at all: supply an allocator, clock and random source;
                          numbers use the built-in conversions unless AK_STRTOD/AK_DTOA
   AK_NO_PLATFORM         hosted, but no default clock or random source
   AK_MALLOC/AK_REALLOC/AK_FREE   default allocator (all three or none)
   AK_MEMCPY/AK_MEMMOVE/AK_MEMSET/AK_MEMCMP   memory primitives
   AK_STRTOD(s, len)      decimal text -> double (freestanding)
   AK_DTOA(v, digits, &n) shortest digits of v > 0, returns count, n = decimal exponent
   AK_NO_ERROR_STRINGS    ak_result_str() returns only "ok"/"error" (smaller)
   AK_ERROR_MAX           size of ak_error.message (240)
   AK_JSON_MAX_DEPTH      default JSON nesting limit (512)

   MANUAL
   ------
   1. Conventions. Every function that can fail returns ak_result (AK_OK = 0, errors are
      negative) and takes an optional ak_error* for details; there is no "last error".
      Every byte comes from an ak_allocator; ak_context wraps it with accounting and an
      optional budget. No globals, no threads, no hidden I/O.

   2. JSON. ak_json_doc owns values in an arena. ak_json_parse is strict RFC 8259 and
      keeps number lexemes, so big integers survive. Build with ak_json_new_* and
      ak_json_set/ak_json_push, read with ak_json_get/ak_json_at/ak_json_path, write with
      ak_json_write. JSON Pointer, JSON Patch (+ diff) and a JSON Schema subset come with it.

           ak_json_doc d;
           ak_json_doc_init(&d, NULL);
           if (ak_json_parse(&d, text, len, &err) == AK_OK)
               puts(ak_json_str_or(ak_json_path(d.root, "choices[0].delta.content"), ""));
           ak_json_doc_free(&d);
*/
