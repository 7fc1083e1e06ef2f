/* json_text.h - js(v): the compact JSON of v for test comparisons and messages, in one of
   four rotating static buffers (so one printf can show four), cut at 8 KiB. Include it
   after agentkit.h. */
#ifndef AK_JSON_TEXT_H
#define AK_JSON_TEXT_H

static const char *js(const ak_json *v) {
    static char out[4][8192];
    static int slot;
    ak_buf b;
    slot = (slot + 1) % 4;
    ak_buf_init_fixed(&b, out[slot], sizeof out[slot]);
    ak_json_write(v, &b);
    return out[slot];
}

#endif
