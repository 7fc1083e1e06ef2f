/* akdriver sse [--chunk N]: parses an event stream from stdin, fed N bytes at a time
   (default: all at once), and prints one compact JSON line per dispatched event:
       {"event":..,"data":..,"id":..?,"retry":..?}
   - event: the event type, "message" when the stream named none (as EventSource does);
   - id: the stream's last event id, which persists across events; present only when it is
     not empty. WHATWG has no "unset" state: the id starts as "" and "id:" resets it to "",
     and EventSource's lastEventId is "" in both cases, so "" is printed as absent;
   - retry: the reconnection time (ms) of a valid retry field seen since the previous
     dispatched event. WHATWG applies retry to the connection at once, even when no event
     follows; attaching it to the next event is how a line-per-event output can show it.
   Exit 0 after the stream ended cleanly (an unterminated last event is discarded, per
   WHATWG); 1 with a one-line reason on stderr when the parser fails; 2 for bad usage. */
#include "akdriver.h"
#include <stdlib.h>
#include <string.h>

typedef struct drv_sse_out {
    ak_json_doc doc;
    ak_buf line;
} drv_sse_out;

static ak_result drv_sse_print(void *ud, const ak_sse_event *ev) {
    drv_sse_out *o = (drv_sse_out *)ud;
    ak_json *obj;
    ak_json_doc_reset(&o->doc);
    ak_buf_clear(&o->line);
    obj = ak_json_new_object(&o->doc);
    ak_json_set(&o->doc, obj, "event", ak_json_new_strn(&o->doc, ev->event, ev->event_len));
    ak_json_set(&o->doc, obj, "data", ak_json_new_strn(&o->doc, ev->data, ev->data_len));
    if (ev->id_len) ak_json_set(&o->doc, obj, "id", ak_json_new_strn(&o->doc, ev->id, ev->id_len));
    if (ev->retry >= 0) ak_json_set_int(&o->doc, obj, "retry", ev->retry);
    if (o->doc.err) return o->doc.err;
    if (ak_json_write(obj, &o->line) != AK_OK) return o->line.err;
    drv_print_line(&o->line);
    return AK_OK;
}

static int drv_sse_usage(void) {
    fprintf(stderr, "usage: akdriver sse [--chunk N]\n");
    return 2;
}

int drv_sse(int argc, char **argv) {
    drv_sse_out out;
    ak_sse_parser p;
    ak_error err;
    ak_result rc = AK_OK;
    size_t chunk = 0, len, at;
    char *text, *end;
    if (argc == 3 && strcmp(argv[1], "--chunk") == 0) {
        unsigned long n = strtoul(argv[2], &end, 10);
        if (!*argv[2] || *end || n == 0) return drv_sse_usage();
        chunk = (size_t)n;
    } else if (argc != 1) {
        return drv_sse_usage();
    }
    if (drv_read_all(NULL, &text, &len) != 0) {
        fprintf(stderr, "cannot read stdin\n");
        return 2;
    }
    if (!chunk) chunk = len ? len : 1;
    ak_error_clear(&err); /* a failing callback leaves err alone */
    ak_json_doc_init(&out.doc, NULL);
    ak_buf_init(&out.line, NULL);
    ak_sse_init(&p, NULL, drv_sse_print, &out);
    for (at = 0; at < len && rc == AK_OK; at += chunk)
        rc = ak_sse_feed(&p, text + at, len - at < chunk ? len - at : chunk, &err);
    if (rc == AK_OK) rc = ak_sse_finish(&p, &err);
    if (rc != AK_OK) fprintf(stderr, "%s\n", err.message[0] ? err.message : ak_result_str(rc));
    fflush(stdout);
    ak_sse_free(&p);
    ak_buf_free(&out.line);
    ak_json_doc_free(&out.doc);
    free(text);
    return rc == AK_OK ? 0 : 1;
}
