/* >>http.c: HTTP/1.1 framing: URLs, request heads, the response and request parsers, the
   response framer. Pure byte processing: no sockets, freestanding-clean. */

#include "http.h"
#include "base.c"

/* Blank lines a server skips before a request line (RFC 9112 2.2 asks for at least one). */
#define AK__HTTP_MAX_LEADING_BLANKS 8

enum { AK__BODY_NONE, AK__BODY_LENGTH, AK__BODY_CHUNKED, AK__BODY_CLOSE };
enum { AK__PARSE_HEAD, AK__PARSE_BODY, AK__PARSE_DONE, AK__PARSE_ERROR };

/* ---- character classes and small helpers ------------------------------------------------ */

AK_PRIVATE unsigned char ak__ascii_lower(unsigned char c) {
    return (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

/* a[0..alen) equals the NUL-terminated b, ignoring ASCII case */
AK_PRIVATE int ak__ieqn(const char *a, size_t alen, const char *b) {
    size_t i;
    for (i = 0; i < alen; i++)
        if (!b[i] || ak__ascii_lower(AK__U8(a[i])) != ak__ascii_lower(AK__U8(b[i]))) return 0;
    return b[alen] == 0;
}

/* RFC 9110 tchar: the characters of methods, header names and transfer codings. */
AK_PRIVATE int ak__http_tchar(unsigned char c) {
    static const char extra[] = "!#$%&'*+-.^_`|~";
    const char *e;
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    for (e = extra; *e; e++)
        if (AK__U8(*e) == c) return 1;
    return 0;
}

AK_PRIVATE int ak__http_token(const char *s, size_t n) {
    size_t i;
    if (!n) return 0;
    for (i = 0; i < n; i++)
        if (!ak__http_tchar(AK__U8(s[i]))) return 0;
    return 1;
}

/* A field value may hold visible ASCII, spaces, tabs and bytes >= 0x80 (obs-text); never
   CR, LF, NUL or other control bytes, which is what keeps header injection out. */
AK_PRIVATE int ak__http_value_ok(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = AK__U8(s[i]);
        if ((c < 0x20 && c != '\t') || c == 0x7F) return 0;
    }
    return 1;
}

AK_PRIVATE int ak__hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = ak__ascii_lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

AK_PRIVATE int ak__http_ows(char c) { return c == ' ' || c == '\t'; }

/* Parses a decimal uint64 of n > 0 digits; 0 on junk or overflow. */
AK_PRIVATE int ak__parse_u64(const char *s, size_t n, uint64_t *out) {
    uint64_t v = 0;
    size_t i;
    if (!n) return 0;
    for (i = 0; i < n; i++) {
        unsigned d = (unsigned)(AK__U8(s[i]) - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

/* Calls fn on each comma-separated element of value[0..n), trimmed of spaces; stops at the
   first nonzero return and returns it. Empty elements are skipped (RFC 9110 5.6.1). */
AK_PRIVATE int ak__http_each_element(const char *v, size_t n,
                                     int (*fn)(void *ud, const char *e, size_t len), void *ud) {
    size_t i = 0;
    while (i < n) {
        size_t s, e;
        int r;
        while (i < n && (ak__http_ows(v[i]) || v[i] == ',')) i++;
        s = i;
        while (i < n && v[i] != ',') i++;
        e = i;
        while (e > s && ak__http_ows(v[e - 1])) e--;
        if (e > s && (r = fn(ud, v + s, e - s)) != 0) return r;
    }
    return 0;
}

AK_PRIVATE int ak__http_token_is(void *ud, const char *e, size_t len) {
    return ak__ieqn(e, len, (const char *)ud);
}

AK_PRIVATE void ak__http_limits_init(ak_http_limits *dst, const ak_http_limits *src) {
    AK_MEMSET(dst, 0, sizeof *dst);
    if (src) *dst = *src;
    dst->max_header_bytes = AK__DEF(dst->max_header_bytes, (size_t)AK_HTTP_MAX_HEADER_BYTES);
    dst->max_headers = AK__DEF(dst->max_headers, (size_t)AK_HTTP_MAX_HEADERS);
    dst->max_target = AK__DEF(dst->max_target, (size_t)AK_HTTP_MAX_TARGET);
    dst->max_body = AK__DEF(dst->max_body, (size_t)AK_HTTP_MAX_BODY);
}

/* ---- public helpers ---------------------------------------------------------------------- */

/* The phrases are one array in this function (not a table of pointers to literals), so a
   program that never calls it does not keep them: linkers keep merged literals whole. */
AKDEF const char *ak_http_status_reason(int status) {
    static const uint16_t codes[] = {
        100, 101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404,
        405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 417, 422, 429, 431, 499, 500, 501,
        502, 503, 504, 505
    };
    static const char phrases[] =
        "Continue\0Switching Protocols\0OK\0Created\0Accepted\0No Content\0Partial Content\0"
        "Moved Permanently\0Found\0See Other\0Not Modified\0Temporary Redirect\0"
        "Permanent Redirect\0Bad Request\0Unauthorized\0Forbidden\0Not Found\0"
        "Method Not Allowed\0Not Acceptable\0Request Timeout\0Conflict\0Gone\0"
        "Length Required\0Precondition Failed\0Content Too Large\0URI Too Long\0"
        "Unsupported Media Type\0Expectation Failed\0Unprocessable Content\0"
        "Too Many Requests\0Request Header Fields Too Large\0Client Closed Request\0"
        "Internal Server Error\0Not Implemented\0Bad Gateway\0Service Unavailable\0"
        "Gateway Timeout\0HTTP Version Not Supported\0";
    const char *p = phrases;
    size_t i;
    for (i = 0; i < AK__COUNTOF(codes); i++, p += ak__strlen(p) + 1)
        if (codes[i] == status) return p;
    return "";
}

AKDEF const char *ak_http_header_get(const ak_header *headers, size_t count, const char *name) {
    size_t i, n;
    if (!headers || !name) return NULL;
    n = ak__strlen(name);
    for (i = 0; i < count; i++)
        if (headers[i].name && ak__ieqn(name, n, headers[i].name)) return headers[i].value;
    return NULL;
}

AKDEF int ak_http_has_token(const char *value, const char *token) {
    if (!value || !token) return 0;
    return ak__http_each_element(value, ak__strlen(value), ak__http_token_is,
                                 AK__UNCONST(void *, token));
}

AKDEF const char *ak_http_server_request_header(const ak_http_server_request *req,
                                                const char *name) {
    return req ? ak_http_header_get(req->headers, req->header_count, name) : NULL;
}

/* ---- URLs ---------------------------------------------------------------------------------- */

/* Path, query and fragment: printable ASCII only (no spaces, controls or raw UTF-8, which
   would let a caller smuggle bytes into the request line), and every '%' a valid escape. */
AK_PRIVATE ak_result ak__url_chars_ok(const char *s, size_t n, const char *part, ak_error *err) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = AK__U8(s[i]);
        if (c <= 0x20 || c >= 0x7F)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT,
                                "URL %s has a byte 0x%x that must be percent-encoded", part,
                                (unsigned)c);
        if (c == '%' && (i + 2 >= n || ak__hexval(AK__U8(s[i + 1])) < 0 ||
                         ak__hexval(AK__U8(s[i + 2])) < 0))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL %s has a bad %%-escape", part);
    }
    return AK_OK;
}

AK_PRIVATE ak_result ak__url_host(const char *s, size_t n, ak_url *u, ak_error *err) {
    size_t i;
    if (!n) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL has no host");
    if (n > 253) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL host is too long");
    for (i = 0; i < n; i++) {
        unsigned char c = AK__U8(s[i]);
        int ok = u->ipv6 ? (ak__hexval(c) >= 0 || c == ':' || c == '.')
                         : ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                            (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_');
        if (!ok)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL host has an invalid character '%c'",
                                c >= 0x21 && c < 0x7F ? (char)c : '?');
    }
    u->host = s;
    u->host_len = n;
    return AK_OK;
}

/* authority = host [":" port], host = reg-name | IPv4 | "[" IPv6 "]" */
AK_PRIVATE ak_result ak__url_authority(const char *s, size_t n, ak_url *u, ak_error *err) {
    size_t i, host_end;
    uint64_t port = 0;
    ak_result rc;
    for (i = 0; i < n; i++)
        if (s[i] == '@')
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT,
                                "URL has user info (user:password@); pass credentials in headers");
    if (n && s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++) {
        }
        if (i == n) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL has an unterminated [IPv6] host");
        u->ipv6 = 1;
        if ((rc = ak__url_host(s + 1, i - 1, u, err)) != AK_OK) return rc;
        for (host_end = 1; host_end < i && s[host_end] != ':'; host_end++) {
        }
        if (host_end == i) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL [IPv6] host is not an IPv6 address");
        host_end = i + 1;
        if (host_end < n && s[host_end] != ':')
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL has junk after the [IPv6] host");
    } else {
        for (host_end = 0; host_end < n && s[host_end] != ':'; host_end++) {
        }
        if ((rc = ak__url_host(s, host_end, u, err)) != AK_OK) return rc;
    }
    if (host_end < n) { /* ":" port */
        const char *p = s + host_end + 1;
        size_t plen = n - host_end - 1;
        if (!plen || plen > 5 || !ak__parse_u64(p, plen, &port) || port == 0 || port > 65535)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL port must be 1..65535");
        u->port = (uint16_t)port;
        u->port_explicit = 1;
    }
    return AK_OK;
}

AKDEF ak_result ak_url_parse(const char *url, size_t len, ak_url *out, ak_error *err) {
    const char *p, *end, *auth;
    ak_result rc;
    AK_MEMSET(out, 0, sizeof *out);
    if (!url) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL is NULL");
    end = url + len;
    if (len >= 8 && ak__ieqn(url, 8, "https://")) out->https = 1, p = url + 8;
    else if (len >= 7 && ak__ieqn(url, 7, "http://")) p = url + 7;
    else return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "URL must start with http:// or https://");
    out->port = (uint16_t)(out->https ? 443 : 80);
    for (auth = p; p < end && *p != '/' && *p != '?' && *p != '#'; p++) {
    }
    if ((rc = ak__url_chars_ok(auth, (size_t)(p - auth), "authority", err)) != AK_OK) return rc;
    if ((rc = ak__url_authority(auth, (size_t)(p - auth), out, err)) != AK_OK) return rc;
    if ((rc = ak__url_chars_ok(p, (size_t)(end - p), "path", err)) != AK_OK) return rc;
    out->path = p;
    while (p < end && *p != '?' && *p != '#') p++;
    out->path_len = (size_t)(p - out->path);
    if (p < end && *p == '?') {
        out->query = ++p;
        while (p < end && *p != '#') p++;
        out->query_len = (size_t)(p - out->query);
    }
    return AK_OK;
}

/* ---- request head (client) ------------------------------------------------------------------ */

AK_PRIVATE ak_result ak__http_check_fields(const ak_header *h, size_t n, int *has_host,
                                           int *has_connection, ak_error *err) {
    size_t i;
    *has_host = *has_connection = 0;
    if (n && !h) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "headers is NULL");
    for (i = 0; i < n; i++) {
        size_t nlen;
        if (!h[i].name || !h[i].value)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "header %zu has a NULL name or value", i);
        nlen = ak__strlen(h[i].name);
        if (!ak__http_token(h[i].name, nlen))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "header name \"%s\" is not a token", h[i].name);
        if (!ak__http_value_ok(h[i].value, ak__strlen(h[i].value)))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT,
                                "header %s has a control character (CR, LF, NUL...) in its value",
                                h[i].name);
        if (ak__ieqn(h[i].name, nlen, "content-length") || ak__ieqn(h[i].name, nlen, "transfer-encoding"))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "header %s is set by the HTTP layer",
                                h[i].name);
        if (ak__ieqn(h[i].name, nlen, "host")) *has_host = 1;
        if (ak__ieqn(h[i].name, nlen, "connection")) *has_connection = 1;
    }
    return AK_OK;
}

AK_PRIVATE void ak__http_put_headers(ak_buf *out, const ak_header *h, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        ak_buf_puts(out, h[i].name);
        ak_buf_append(out, ": ", 2);
        ak_buf_puts(out, h[i].value);
        ak_buf_append(out, "\r\n", 2);
    }
}

AK_PRIVATE int ak__http_method_has_body(const char *m) {
    return ak__streq(m, "POST") || ak__streq(m, "PUT") || ak__streq(m, "PATCH");
}

AKDEF ak_result ak_http_write_request_head(ak_buf *out, const ak_http_request *req,
                                           const ak_url *url, int close_connection,
                                           ak_error *err) {
    int has_host, has_conn;
    size_t mark = out->len;
    ak_result rc;
    if (!req || !url || !req->method || !ak__http_token(req->method, ak__strlen(req->method)))
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "request method must be a token");
    if (req->body_len && !req->body)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "request body is NULL");
    rc = ak__http_check_fields(req->headers, req->header_count, &has_host, &has_conn, err);
    if (rc != AK_OK) return rc;
    ak_buf_puts(out, req->method);
    ak_buf_putc(out, ' ');
    if (url->path_len) ak_buf_append(out, url->path, url->path_len);
    else ak_buf_putc(out, '/');
    if (url->query) {
        ak_buf_putc(out, '?');
        ak_buf_append(out, url->query, url->query_len);
    }
    ak_buf_append(out, " HTTP/1.1\r\n", 11);
    if (!has_host) {
        ak_buf_append(out, "Host: ", 6);
        if (url->ipv6) ak_buf_putc(out, '[');
        ak_buf_append(out, url->host, url->host_len);
        if (url->ipv6) ak_buf_putc(out, ']');
        if (url->port != (url->https ? 443 : 80)) ak_buf_printf(out, ":%u", (unsigned)url->port);
        ak_buf_append(out, "\r\n", 2);
    }
    ak__http_put_headers(out, req->headers, req->header_count);
    if (req->body_len || ak__http_method_has_body(req->method))
        ak_buf_printf(out, "Content-Length: %zu\r\n", req->body_len);
    if (close_connection && !has_conn) ak_buf_puts(out, "Connection: close\r\n");
    ak_buf_append(out, "\r\n", 2);
    if (out->err) {
        rc = out->err;
        out->len = mark;
        if (out->ptr) out->ptr[mark] = 0;
        return ak_error_set(err, rc, "cannot build the request head: %s", ak_result_str(rc));
    }
    return AK_OK;
}


/* ---- collecting a head ---------------------------------------------------------------------- */

/* Why a head was refused (ak_http_head_state.why). */
enum { AK__HEAD_TOO_BIG = 1, AK__HEAD_LINE1_TOO_BIG, AK__HEAD_TOO_MANY_LINES, AK__HEAD_BLANK_START,
       AK__HEAD_NOT_HTTP };

/* Which start line a head begins with. */
enum { AK__START_REQUEST, AK__START_RESPONSE };

/* Checks bytes of the start line as they arrive, `at` bytes into it, so that something that
   is not HTTP (a TLS handshake on a plain port, binary junk) is refused at once instead of
   after a timeout waiting for a line end that never comes. A request line is printable
   ASCII; a status line starts with "HTTP/". */
AK_PRIVATE int ak__start_line_ok(int kind, const char *seg, size_t n, size_t at) {
    static const char version[] = "HTTP/";
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = AK__U8(seg[i]);
        if (kind == AK__START_RESPONSE) {
            if (at + i >= 5) break;
            if (c != AK__U8(version[at + i])) return 0;
        } else if ((c < 0x20 && c != '\r') || c >= 0x7F) {
            return 0;
        }
    }
    return 1;
}

/* A line of the head ended: keep it, finish the head (a blank line), or drop a blank line
   that came before the start line. */
AK_PRIVATE ak_result ak__head_line_end(ak_http_head_state *s, ak_buf *head, size_t max_lines,
                                       int kind) {
    size_t n = s->line_bytes;
    int blank = n == 0 || (n == 1 && head->ptr[head->len - 1] == '\r');
    s->line_bytes = 0;
    if (blank && s->lines == 0) {
        head->len -= n;
        if (head->ptr) head->ptr[head->len] = 0;
        if (kind == AK__START_REQUEST && ++s->skipped <= AK__HTTP_MAX_LEADING_BLANKS) return AK_PENDING;
        s->why = AK__HEAD_BLANK_START;
        return AK_ERR_HTTP;
    }
    ak_buf_putc(head, '\n');
    if (head->err) return head->err;
    if (blank) return AK_OK;
    if (++s->lines > max_lines + 1) {
        s->why = AK__HEAD_TOO_MANY_LINES;
        return AK_ERR_LIMIT;
    }
    return AK_PENDING;
}

/* Appends data to the head until the blank line that ends it; bare LF ends lines as well as
   CRLF. AK_OK: the head is complete and *used bytes were taken (the rest is body);
   AK_PENDING: all taken; AK_ERR_LIMIT / AK_ERR_HTTP with s->why set; AK_ERR_OUT_OF_MEMORY.
   Every byte is looked at once, however the input is split. */
AK_PRIVATE ak_result ak__head_feed(ak_http_head_state *s, ak_buf *head, const ak_http_limits *lim,
                                   int kind, const char *data, size_t len, size_t *used) {
    size_t i = 0;
    while (i < len) {
        size_t j = i, room = lim->max_header_bytes > head->len ? lim->max_header_bytes - head->len : 0;
        ak_result rc;
        while (j < len && data[j] != '\n') j++;
        /* Only the bytes within the limit are judged, so the verdict is the same however
           the input was split. */
        if (!s->lines && !ak__start_line_ok(kind, data + i, AK__MIN(j - i, room), s->line_bytes)) {
            s->why = AK__HEAD_NOT_HTTP;
            *used = i;
            return AK_ERR_HTTP;
        }
        if ((j - i) + (j < len) > room) {
            s->why = s->lines ? AK__HEAD_TOO_BIG : AK__HEAD_LINE1_TOO_BIG;
            *used = i;
            return AK_ERR_LIMIT;
        }
        ak_buf_append(head, data + i, j - i);
        s->line_bytes += j - i;
        if (j == len) break;
        rc = head->err ? head->err : ak__head_line_end(s, head, lim->max_headers, kind);
        i = j + 1;
        if (rc != AK_PENDING) {
            *used = i;
            return rc;
        }
    }
    *used = len;
    return head->err ? head->err : AK_PENDING;
}

/* Splits the next line off a complete head (which ends with "\n"): NUL-terminates it in
   place, without its CR LF. Returns 0 at the blank line that ends the head. */
AK_PRIVATE int ak__head_next_line(char *head, size_t *pos, char **line, size_t *len) {
    char *s = head + *pos, *e = s;
    while (*e != '\n') e++;
    *pos += (size_t)(e - s) + 1;
    if (e > s && e[-1] == '\r') e--;
    *e = 0;
    *line = s;
    *len = (size_t)(e - s);
    return *len != 0;
}

/* name ":" OWS value OWS, NUL-terminating name and value in place. */
AK_PRIVATE ak_result ak__http_split_field(char *line, size_t n, ak_header *out, size_t *name_len,
                                          size_t *value_len, ak_error *err) {
    size_t i = 0, vs, ve;
    if (ak__http_ows(line[0]))
        return ak_error_set(err, AK_ERR_HTTP, "obsolete header line folding is not supported");
    while (i < n && ak__http_tchar(AK__U8(line[i]))) i++;
    if (i == 0 || i == n || line[i] != ':')
        return ak_error_set(err, AK_ERR_HTTP, "malformed header line (name, ':' and value expected)");
    vs = i + 1;
    while (vs < n && ak__http_ows(line[vs])) vs++;
    ve = n;
    while (ve > vs && ak__http_ows(line[ve - 1])) ve--;
    if (!ak__http_value_ok(line + vs, ve - vs))
        return ak_error_set(err, AK_ERR_HTTP, "header %.*s has a control character in its value",
                            (int)i, line);
    line[i] = 0;
    line[ve] = 0;
    out->name = line;
    out->value = line + vs;
    *name_len = i;
    *value_len = ve - vs;
    return AK_OK;
}

/* What the framing-relevant headers of a message say. */
typedef struct ak__http_fields {
    int has_length, te_seen, te_chunked_last, te_chunked_count, te_other;
    int conn_close, conn_keep_alive, host_count, expect_continue, has_connection;
    uint64_t length;
} ak__http_fields;

AK_PRIVATE int ak__http_te_element(void *ud, const char *e, size_t len) {
    ak__http_fields *f = (ak__http_fields *)ud;
    int chunked = ak__ieqn(e, len, "chunked");
    f->te_seen = 1;
    f->te_chunked_count += chunked;
    f->te_other |= !chunked;
    f->te_chunked_last = chunked;
    return 0;
}

AK_PRIVATE int ak__http_conn_element(void *ud, const char *e, size_t len) {
    ak__http_fields *f = (ak__http_fields *)ud;
    f->conn_close |= ak__ieqn(e, len, "close");
    f->conn_keep_alive |= ak__ieqn(e, len, "keep-alive");
    return 0;
}

/* Content-Length: one number, or a list of identical numbers (RFC 9110 8.6). */
AK_PRIVATE ak_result ak__http_content_length(ak__http_fields *f, const char *v, size_t n,
                                             ak_error *err) {
    size_t i = 0;
    int seen = 0;
    while (i < n) {
        size_t s;
        uint64_t x;
        while (i < n && (ak__http_ows(v[i]) || v[i] == ',')) i++;
        if (i == n) break;
        for (s = i; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
        }
        if (!ak__parse_u64(v + s, i - s, &x) || (i < n && !ak__http_ows(v[i]) && v[i] != ','))
            return ak_error_set(err, AK_ERR_HTTP, "invalid Content-Length \"%.*s\"",
                                (int)AK__MIN(n, 40), v);
        if (f->has_length && x != f->length)
            return ak_error_set(err, AK_ERR_HTTP, "conflicting Content-Length values");
        f->has_length = seen = 1;
        f->length = x;
    }
    if (!seen) return ak_error_set(err, AK_ERR_HTTP, "empty Content-Length");
    return AK_OK;
}

AK_PRIVATE ak_result ak__http_note_field(ak__http_fields *f, const ak_header *h, size_t nlen,
                                         size_t vlen, ak_error *err) {
    if (ak__ieqn(h->name, nlen, "content-length"))
        return ak__http_content_length(f, h->value, vlen, err);
    if (ak__ieqn(h->name, nlen, "transfer-encoding")) {
        ak__http_each_element(h->value, vlen, ak__http_te_element, f);
        if (!f->te_seen) return ak_error_set(err, AK_ERR_HTTP, "empty Transfer-Encoding");
    } else if (ak__ieqn(h->name, nlen, "connection")) {
        f->has_connection = 1;
        ak__http_each_element(h->value, vlen, ak__http_conn_element, f);
    } else if (ak__ieqn(h->name, nlen, "host")) {
        f->host_count++;
    } else if (ak__ieqn(h->name, nlen, "expect")) {
        f->expect_continue = ak__ieqn(h->value, vlen, "100-continue");
    }
    return AK_OK;
}

/* ---- body decoding (both parsers) --------------------------------------------------------- */

enum {
    AK__CK_SIZE, AK__CK_SIZE_WS, AK__CK_EXT, AK__CK_SIZE_LF, AK__CK_DATA, AK__CK_DATA_CR,
    AK__CK_DATA_LF, AK__CK_TRAILER_START, AK__CK_TRAILER, AK__CK_END_LF
};

/* Where decoded body bytes go; an error return stops the decoder with that error. */
typedef ak_result (*ak__body_emit)(void *ud, const char *data, size_t len);

/* After the hex digits of a chunk size: optional whitespace, extensions, CRLF. */
AK_PRIVATE ak_result ak__chunk_size_end(ak_http_body_state *b, unsigned char c, ak_error *err) {
    b->chunk_state = AK__CK_SIZE_WS;
    if (ak__http_ows((char)c)) return AK_PENDING;
    if (c == ';') b->chunk_state = AK__CK_EXT;
    else if (c == '\r') b->chunk_state = AK__CK_SIZE_LF;
    else return ak_error_set(err, AK_ERR_HTTP, "malformed chunk size line");
    return AK_PENDING;
}

/* Trailer lines are checked against the header byte limit and dropped. */
AK_PRIVATE ak_result ak__chunk_trailer_byte(ak_http_body_state *b, unsigned char c,
                                            size_t max_trailer, ak_error *err) {
    int at_start = b->chunk_state == AK__CK_TRAILER_START;
    if (++b->trailer_bytes > max_trailer)
        return ak_error_set(err, AK_ERR_HTTP, "chunked trailers exceed %zu bytes", max_trailer);
    if (c == '\n') {
        if (at_start) return AK_OK; /* a blank line: the message ends */
        b->chunk_state = AK__CK_TRAILER_START;
    } else if (at_start && c == '\r') {
        b->chunk_state = AK__CK_END_LF;
    } else if (c == 0) {
        return ak_error_set(err, AK_ERR_HTTP, "NUL byte in a chunked trailer");
    } else {
        b->chunk_state = AK__CK_TRAILER;
    }
    return AK_PENDING;
}

/* Bounds of a body being decoded: trailer bytes, and body bytes in all. */
typedef struct ak__body_limits {
    size_t max_trailer;
    uint64_t max_total;
} ak__body_limits;

/* One byte of chunked framing (anything but chunk data). Chunk lines need CRLF: a bare LF
   there is how request smuggling between lenient and strict parsers starts. A chunk that
   would take the body over its limit is refused at its size line, before its data. */
AK_PRIVATE ak_result ak__chunk_byte(ak_http_body_state *b, unsigned char c, const ak__body_limits *lim,
                                    ak_error *err) {
    int hex;
    switch (b->chunk_state) {
    case AK__CK_SIZE:
        hex = ak__hexval(c);
        if (hex < 0) {
            if (b->chunk_digits == 0) return ak_error_set(err, AK_ERR_HTTP, "malformed chunk size");
            return ak__chunk_size_end(b, c, err);
        }
        if (++b->chunk_digits > 15) return ak_error_set(err, AK_ERR_HTTP, "chunk size too large");
        b->remaining = b->remaining * 16 + (uint64_t)hex;
        return AK_PENDING;
    case AK__CK_SIZE_WS:
        return ak__chunk_size_end(b, c, err);
    case AK__CK_EXT:
        if (++b->line_bytes > AK_HTTP_MAX_CHUNK_LINE)
            return ak_error_set(err, AK_ERR_HTTP, "chunk extensions too long");
        if (c == '\r') b->chunk_state = AK__CK_SIZE_LF;
        else if ((c < 0x20 && c != '\t') || c == 0x7F)
            return ak_error_set(err, AK_ERR_HTTP, "control character in a chunk extension");
        return AK_PENDING;
    case AK__CK_SIZE_LF:
        if (c != '\n') return ak_error_set(err, AK_ERR_HTTP, "chunk size line not ended by CRLF");
        if (b->remaining > lim->max_total - b->total)
            return ak_error_set(err, AK_ERR_LIMIT, "a chunk of %llu bytes exceeds the body limit",
                                (unsigned long long)b->remaining);
        b->chunk_state = b->remaining ? AK__CK_DATA : AK__CK_TRAILER_START;
        b->line_bytes = 0;
        return AK_PENDING;
    case AK__CK_DATA_CR:
        if (c != '\r') return ak_error_set(err, AK_ERR_HTTP, "chunk data not followed by CRLF");
        b->chunk_state = AK__CK_DATA_LF;
        return AK_PENDING;
    case AK__CK_DATA_LF:
        if (c != '\n') return ak_error_set(err, AK_ERR_HTTP, "chunk data not followed by CRLF");
        b->chunk_state = AK__CK_SIZE;
        b->chunk_digits = 0;
        b->remaining = 0;
        return AK_PENDING;
    case AK__CK_TRAILER_START:
    case AK__CK_TRAILER:
        return ak__chunk_trailer_byte(b, c, lim->max_trailer, err);
    case AK__CK_END_LF:
        if (c != '\n') return ak_error_set(err, AK_ERR_HTTP, "last chunk not ended by CRLF");
        return AK_OK;
    }
    return ak_error_set(err, AK_ERR_INTERNAL, "bad chunk decoder state");
}

/* Emits min(remaining, len) bytes of a Content-Length body or of a chunk. */
AK_PRIVATE ak_result ak__body_take(ak_http_body_state *b, const char *data, size_t len,
                                   size_t *n, ak__body_emit emit, void *ud) {
    *n = b->remaining < (uint64_t)len ? (size_t)b->remaining : len;
    b->remaining -= *n;
    b->total += *n;
    return *n ? emit(ud, data, *n) : AK_OK;
}

/* Feeds body bytes. AK_OK: the body is complete (*used bytes taken, the rest is not this
   message's); AK_PENDING: all taken, more needed; otherwise the framing's or emit's error. */
AK_PRIVATE ak_result ak__body_feed(ak_http_body_state *b, const ak__body_limits *lim,
                                   const char *data, size_t len, size_t *used, ak__body_emit emit,
                                   void *ud, ak_error *err) {
    size_t i = 0, n;
    ak_result rc = AK_PENDING;
    *used = 0;
    if (b->mode == AK__BODY_NONE) return AK_OK;
    if (b->mode == AK__BODY_CLOSE) {
        *used = len;
        rc = len ? emit(ud, data, len) : AK_OK;
        return rc == AK_OK ? AK_PENDING : rc;
    }
    if (b->mode == AK__BODY_LENGTH) {
        rc = ak__body_take(b, data, len, used, emit, ud);
        return rc != AK_OK ? rc : b->remaining ? AK_PENDING : AK_OK;
    }
    while (i < len && rc == AK_PENDING) {
        if (b->chunk_state != AK__CK_DATA) {
            rc = ak__chunk_byte(b, AK__U8(data[i++]), lim, err);
            continue;
        }
        rc = ak__body_take(b, data + i, len - i, &n, emit, ud);
        i += n;
        if (rc != AK_OK) break;
        rc = AK_PENDING;
        if (!b->remaining) b->chunk_state = AK__CK_DATA_CR;
    }
    *used = i;
    return rc;
}

/* ---- response parser ------------------------------------------------------------------------ */

AKDEF void ak_http_response_parser_init(ak_http_response_parser *p, ak_http_sink *sink,
                                        const ak_allocator *alloc, const ak_http_limits *limits,
                                        int head_request) {
    AK_MEMSET(p, 0, sizeof *p);
    p->sink = sink;
    ak__http_limits_init(&p->limits, limits);
    ak_buf_init(&p->head, alloc);
    p->head_request = head_request;
    p->state = AK__PARSE_HEAD;
}

AKDEF void ak_http_response_parser_free(ak_http_response_parser *p) { ak_buf_free(&p->head); }

AK_PRIVATE ak_result ak__resp_fail(ak_http_response_parser *p, ak_result rc) {
    p->state = AK__PARSE_ERROR;
    p->error = rc;
    return rc;
}

/* A sink callback's result: anything but AK_OK means the library stopped listening. */
AK_PRIVATE ak_result ak__resp_sink(ak_http_response_parser *p, ak_result rc, ak_error *err) {
    if (rc == AK_OK) return AK_OK;
    p->sink_stopped = 1;
    return ak_error_set(err, rc, "the response sink stopped the response (%s)", ak_result_str(rc));
}

/* "HTTP/1.x SSS reason" (the reason phrase and the space before it may be missing) */
AK_PRIVATE ak_result ak__resp_status_line(ak_http_response_parser *p, const char *s, size_t n,
                                          ak_error *err) {
    uint64_t code = 0;
    if (n < 12 || !ak__eqn(s, 7, "HTTP/1.") || s[7] < '0' || s[7] > '9' || s[8] != ' ' ||
        (n > 12 && s[12] != ' ') || !ak__parse_u64(s + 9, 3, &code))
        return ak_error_set(err, AK_ERR_HTTP, "malformed status line \"%.*s\"",
                            (int)AK__MIN(n, 60), s);
    if (code < 100 || code > 599)
        return ak_error_set(err, AK_ERR_HTTP, "invalid status code %d", (int)code);
    if (n > 13 && !ak__http_value_ok(s + 13, n - 13))
        return ak_error_set(err, AK_ERR_HTTP, "control character in the status line");
    p->status = (int)code;
    p->keep_alive = s[7] != '0';
    return AK_OK;
}

AK_PRIVATE ak_result ak__resp_body_mode(ak_http_response_parser *p, const ak__http_fields *f,
                                        ak_error *err) {
    if (f->conn_close) p->keep_alive = 0;
    else if (f->conn_keep_alive) p->keep_alive = 1;
    if (p->head_request || p->status == 204 || p->status == 304) {
        p->bs.mode = AK__BODY_NONE;
    } else if (f->te_seen) {
        /* Only chunked is decoded; a body in another coding cannot be delimited or read. */
        if (f->te_other || f->te_chunked_count != 1)
            return ak_error_set(err, AK_ERR_HTTP, "unsupported Transfer-Encoding (only chunked is)");
        p->bs.mode = AK__BODY_CHUNKED;
        if (f->has_length) p->keep_alive = 0; /* RFC 9112 6.3: chunked wins, do not reuse */
    } else if (f->has_length) {
        p->bs.mode = AK__BODY_LENGTH;
        p->bs.remaining = f->length;
    } else {
        p->bs.mode = AK__BODY_CLOSE;
        p->keep_alive = 0;
    }
    return AK_OK;
}

/* The whole head is in p->head: status, each header, then the body framing. AK_PENDING
   means it was an interim (1xx) response, skipped. */
AK_PRIVATE ak_result ak__resp_head(ak_http_response_parser *p, ak_error *err) {
    ak_http_sink *k = p->sink;
    ak__http_fields f;
    size_t pos = 0, len, nl, vl;
    char *line;
    ak_header h;
    ak_result rc;
    AK_MEMSET(&f, 0, sizeof f);
    ak__head_next_line(p->head.ptr, &pos, &line, &len);
    if ((rc = ak__resp_status_line(p, line, len, err)) != AK_OK) return rc;
    if (p->status < 200) {
        if (p->status == 101) return ak_error_set(err, AK_ERR_HTTP, "unexpected 101 Switching Protocols");
        if (++p->interim > AK_HTTP_MAX_INTERIM)
            return ak_error_set(err, AK_ERR_HTTP, "more than %d interim (1xx) responses", AK_HTTP_MAX_INTERIM);
        return AK_PENDING;
    }
    if (k && k->on_status && (rc = ak__resp_sink(p, k->on_status(k, p->status), err)) != AK_OK)
        return rc;
    while (ak__head_next_line(p->head.ptr, &pos, &line, &len)) {
        if ((rc = ak__http_split_field(line, len, &h, &nl, &vl, err)) != AK_OK) return rc;
        if ((rc = ak__http_note_field(&f, &h, nl, vl, err)) != AK_OK) return rc;
        if (k && k->on_header &&
            (rc = ak__resp_sink(p, k->on_header(k, h.name, nl, h.value, vl), err)) != AK_OK)
            return rc;
    }
    return ak__resp_body_mode(p, &f, err);
}

AK_PRIVATE ak_result ak__resp_feed_head(ak_http_response_parser *p, const char *data, size_t len,
                                        size_t *used, ak_error *err) {
    ak_result rc = ak__head_feed(&p->hs, &p->head, &p->limits, AK__START_RESPONSE, data, len, used);
    if (rc == AK_PENDING) return rc;
    if (rc == AK_ERR_LIMIT && p->hs.why == AK__HEAD_TOO_MANY_LINES)
        return ak_error_set(err, AK_ERR_HTTP, "response has more than %zu headers", p->limits.max_headers);
    if (rc == AK_ERR_LIMIT)
        return ak_error_set(err, AK_ERR_HTTP, "response head exceeds %zu bytes", p->limits.max_header_bytes);
    if (rc == AK_ERR_HTTP && p->hs.why == AK__HEAD_NOT_HTTP)
        return ak_error_set(err, rc, "the server did not answer with HTTP (a TLS server behind an http:// URL?)");
    if (rc == AK_ERR_HTTP) return ak_error_set(err, rc, "response starts with a blank line");
    if (rc != AK_OK) return ak_error_set(err, rc, "out of memory reading the response head");
    rc = ak__resp_head(p, err);
    AK_MEMSET(&p->hs, 0, sizeof p->hs);
    if (rc == AK_PENDING) { /* an interim response: collect the next head */
        ak_buf_clear(&p->head);
        return AK_PENDING;
    }
    if (rc == AK_OK) p->state = AK__PARSE_BODY;
    return rc == AK_OK ? AK_PENDING : rc;
}

AK_PRIVATE ak_result ak__resp_emit(void *ud, const char *data, size_t len) {
    ak_http_response_parser *p = (ak_http_response_parser *)ud;
    ak_result rc = AK_OK;
    p->body_bytes += len;
    if (p->sink && p->sink->on_body) rc = p->sink->on_body(p->sink, data, len);
    if (rc != AK_OK) p->sink_stopped = 1;
    return rc;
}

AKDEF ak_result ak_http_response_parser_feed(ak_http_response_parser *p, const char *data,
                                             size_t len, size_t *consumed, ak_error *err) {
    size_t done = 0, used = 0;
    ak_result rc = AK_PENDING;
    if (consumed) *consumed = 0;
    if (p->state == AK__PARSE_ERROR)
        return ak_error_set(err, p->error, "the response was already rejected (%s)", ak_result_str(p->error));
    if (p->state == AK__PARSE_DONE) return AK_OK;
    if (len && !data) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "data is NULL");
    while (p->state == AK__PARSE_HEAD && done < len && rc == AK_PENDING) {
        rc = ak__resp_feed_head(p, data + done, len - done, &used, err);
        done += used;
    }
    if (rc == AK_PENDING && p->state == AK__PARSE_BODY) {
        ak__body_limits lim;
        lim.max_trailer = p->limits.max_header_bytes;
        lim.max_total = UINT64_MAX; /* the sink decides how much it wants */
        rc = ak__body_feed(&p->bs, &lim, data + done, len - done, &used, ak__resp_emit, p, err);
        done += used;
        if (rc == AK_OK) p->state = AK__PARSE_DONE;
        else if (rc != AK_PENDING && p->sink_stopped) rc = ak__resp_sink(p, rc, err);
    }
    if (consumed) *consumed = done;
    if (rc != AK_OK && rc != AK_PENDING) return ak__resp_fail(p, rc);
    return rc;
}

AKDEF ak_result ak_http_response_parser_eof(ak_http_response_parser *p, ak_error *err) {
    int started = p->head.len || p->interim;
    switch (p->state) {
    case AK__PARSE_DONE:
        return AK_OK;
    case AK__PARSE_ERROR:
        return ak_error_set(err, p->error, "the response was already rejected (%s)", ak_result_str(p->error));
    case AK__PARSE_HEAD:
        ak__resp_fail(p, started ? AK_ERR_TRUNCATED : AK_ERR_CLOSED);
        if (started) return ak_error_set(err, AK_ERR_TRUNCATED, "connection closed inside the response head");
        return ak_error_set(err, AK_ERR_CLOSED, "connection closed before a response arrived");
    }
    if (p->bs.mode == AK__BODY_CLOSE) {
        p->state = AK__PARSE_DONE;
        return AK_OK;
    }
    ak__resp_fail(p, AK_ERR_TRUNCATED);
    if (p->bs.mode == AK__BODY_LENGTH)
        return ak_error_set(err, AK_ERR_TRUNCATED, "connection closed after %llu body bytes, %llu short of Content-Length",
                            (unsigned long long)p->body_bytes, (unsigned long long)p->bs.remaining);
    return ak_error_set(err, AK_ERR_TRUNCATED, "connection closed after %llu body bytes, before the last chunk",
                        (unsigned long long)p->body_bytes);
}

/* ---- request parser (server) ---------------------------------------------------------------- */

AKDEF void ak_http_request_parser_init(ak_http_request_parser *p, const ak_allocator *alloc,
                                       const ak_http_limits *limits) {
    AK_MEMSET(p, 0, sizeof *p);
    ak__http_limits_init(&p->limits, limits);
    ak_buf_init(&p->head, alloc);
    ak_buf_init(&p->body, alloc);
    p->state = AK__PARSE_HEAD;
}

AKDEF void ak_http_request_parser_reset(ak_http_request_parser *p) {
    ak_buf_clear(&p->head);
    /* An idle keep-alive connection should not sit on a big upload's memory. */
    if (p->body.cap > 65536) ak_buf_free(&p->body);
    ak_buf_clear(&p->body);
    AK_MEMSET(&p->hs, 0, sizeof p->hs);
    AK_MEMSET(&p->bs, 0, sizeof p->bs);
    AK_MEMSET(&p->req, 0, sizeof p->req);
    p->state = AK__PARSE_HEAD;
    p->error = AK_OK;
    p->error_status = 0;
    p->expect_continue = 0;
}

AKDEF void ak_http_request_parser_free(ak_http_request_parser *p) {
    ak_free(p->head.alloc, p->headers, p->header_cap * sizeof *p->headers);
    p->headers = NULL;
    p->header_cap = 0;
    ak_buf_free(&p->head);
    ak_buf_free(&p->body);
}

/* Records the failure and the status to answer with; err was filled by the caller. */
AK_PRIVATE ak_result ak__req_fail(ak_http_request_parser *p, ak_result rc, int status) {
    p->state = AK__PARSE_ERROR;
    p->error = rc;
    p->error_status = status;
    return rc;
}

AK_PRIVATE ak_result ak__req_bad(ak_http_request_parser *p, ak_error *err, const char *msg) {
    ak_error_set(err, AK_ERR_HTTP, "%s", msg);
    return ak__req_fail(p, AK_ERR_HTTP, 400);
}

/* The target: origin form "/path?query", "*" for OPTIONS, or absolute form "http://h/p?q".
   Splits path and query in place. */
AK_PRIVATE ak_result ak__req_target(ak_http_request_parser *p, char *t, size_t n, ak_error *err) {
    size_t i;
    ak_url u;
    for (i = 0; i < n; i++)
        if (AK__U8(t[i]) <= 0x20 || AK__U8(t[i]) >= 0x7F || t[i] == '#')
            return ak__req_bad(p, err, "invalid character in the request target");
    p->req.query = "";
    if (t[0] == '/') {
        p->req.path = t;
        for (i = 0; i < n && t[i] != '?'; i++) {
        }
        if (i < n) {
            t[i] = 0;
            p->req.query = t + i + 1;
        }
        return AK_OK;
    }
    if (n == 1 && t[0] == '*' && ak__streq(p->req.method, "OPTIONS")) {
        p->req.path = t;
        return AK_OK;
    }
    if (ak_url_parse(t, n, &u, NULL) != AK_OK)
        return ak__req_bad(p, err, "request target is neither a path nor an absolute URL");
    p->req.path = u.path_len ? u.path : "/";
    if (u.query) {
        p->req.query = u.query;
        AK__UNCONST(char *, u.query)[u.query_len] = 0;
    }
    if (u.path_len) AK__UNCONST(char *, u.path)[u.path_len] = 0;
    return AK_OK;
}

/* method SP target SP HTTP/1.x */
AK_PRIVATE ak_result ak__req_line(ak_http_request_parser *p, char *s, size_t n, ak_error *err) {
    size_t m = 0, t, te;
    const char *v;
    while (m < n && ak__http_tchar(AK__U8(s[m]))) m++;
    if (m == 0 || m == n || s[m] != ' ') return ak__req_bad(p, err, "malformed request line");
    for (t = te = m + 1; te < n && s[te] != ' '; te++) {
    }
    if (te == t || te == n) return ak__req_bad(p, err, "malformed request line");
    v = s + te + 1;
    if (n - te - 1 != 8 || !ak__eqn(v, 5, "HTTP/") || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return ak__req_bad(p, err, "malformed HTTP version in the request line");
    if (v[5] != '1') {
        ak_error_set(err, AK_ERR_UNSUPPORTED, "HTTP version %.3s is not supported", v + 5);
        return ak__req_fail(p, AK_ERR_UNSUPPORTED, 505);
    }
    if (te - t > p->limits.max_target) {
        ak_error_set(err, AK_ERR_LIMIT, "request target exceeds %zu bytes", p->limits.max_target);
        return ak__req_fail(p, AK_ERR_LIMIT, 414);
    }
    p->req.version_minor = v[7] == '0' ? 0 : 1; /* 1.2+ is read as 1.1 (RFC 9110 2.5) */
    s[m] = 0;
    s[te] = 0;
    p->req.method = s;
    return ak__req_target(p, s + t, te - t, err);
}

AK_PRIVATE ak_result ak__req_headers(ak_http_request_parser *p, size_t *pos, ak__http_fields *f,
                                     ak_error *err) {
    size_t need = p->hs.lines, n = 0, len, nl, vl;
    char *line;
    if (need > p->header_cap) {
        ak_header *h = (ak_header *)ak_realloc(p->head.alloc, p->headers,
                                               p->header_cap * sizeof *h, need * sizeof *h);
        if (!h) {
            ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory for the request headers");
            return ak__req_fail(p, AK_ERR_OUT_OF_MEMORY, 503);
        }
        p->headers = h;
        p->header_cap = need;
    }
    while (ak__head_next_line(p->head.ptr, pos, &line, &len)) {
        ak_header *h = &p->headers[n++];
        if (ak__http_split_field(line, len, h, &nl, &vl, err) != AK_OK ||
            ak__http_note_field(f, h, nl, vl, err) != AK_OK)
            return ak__req_fail(p, AK_ERR_HTTP, 400);
    }
    p->req.headers = p->headers;
    p->req.header_count = n;
    return AK_OK;
}

/* How the body is delimited, and whether the connection may carry another request. The
   ambiguous combinations are refused: they are how requests get smuggled past proxies. */
AK_PRIVATE ak_result ak__req_framing(ak_http_request_parser *p, const ak__http_fields *f,
                                     ak_error *err) {
    if (f->host_count > 1 || (p->req.version_minor == 1 && f->host_count == 0))
        return ak__req_bad(p, err, f->host_count ? "more than one Host header" : "missing Host header");
    if (f->has_length && f->te_seen)
        return ak__req_bad(p, err, "both Content-Length and Transfer-Encoding");
    if (f->te_seen && (!f->te_chunked_last || f->te_chunked_count != 1))
        return ak__req_bad(p, err, "Transfer-Encoding must end with a single chunked");
    if (f->te_other) {
        ak_error_set(err, AK_ERR_UNSUPPORTED, "transfer codings other than chunked are not supported");
        return ak__req_fail(p, AK_ERR_UNSUPPORTED, 501);
    }
    if (f->has_length && f->length > (uint64_t)p->limits.max_body) {
        ak_error_set(err, AK_ERR_LIMIT, "request body of %llu bytes exceeds %zu",
                     (unsigned long long)f->length, p->limits.max_body);
        return ak__req_fail(p, AK_ERR_LIMIT, 413);
    }
    p->bs.mode = f->te_seen ? AK__BODY_CHUNKED : f->has_length && f->length ? AK__BODY_LENGTH
                                                                          : AK__BODY_NONE;
    p->bs.remaining = f->has_length ? f->length : 0;
    p->req.keep_alive = !f->conn_close && (p->req.version_minor == 1 || f->conn_keep_alive);
    p->expect_continue = f->expect_continue && p->req.version_minor == 1 && p->bs.mode != AK__BODY_NONE;
    return AK_OK;
}

AK_PRIVATE ak_result ak__req_head_failed(ak_http_request_parser *p, ak_result rc, ak_error *err) {
    if (rc == AK_ERR_OUT_OF_MEMORY) {
        ak_error_set(err, rc, "out of memory reading the request head");
        return ak__req_fail(p, rc, 503);
    }
    if (p->hs.why == AK__HEAD_BLANK_START) return ak__req_bad(p, err, "too many blank lines before the request");
    if (p->hs.why == AK__HEAD_NOT_HTTP)
        return ak__req_bad(p, err, "the request line is not HTTP (a TLS handshake on a plain port?)");
    if (p->hs.why == AK__HEAD_LINE1_TOO_BIG) {
        ak_error_set(err, AK_ERR_LIMIT, "request line exceeds %zu bytes", p->limits.max_header_bytes);
        return ak__req_fail(p, AK_ERR_LIMIT, 414);
    }
    if (p->hs.why == AK__HEAD_TOO_MANY_LINES)
        ak_error_set(err, AK_ERR_LIMIT, "more than %zu request headers", p->limits.max_headers);
    else
        ak_error_set(err, AK_ERR_LIMIT, "request head exceeds %zu bytes", p->limits.max_header_bytes);
    return ak__req_fail(p, AK_ERR_LIMIT, 431);
}

AK_PRIVATE ak_result ak__req_head(ak_http_request_parser *p, ak_error *err) {
    ak__http_fields f;
    size_t pos = 0, len;
    char *line;
    ak_result rc;
    AK_MEMSET(&f, 0, sizeof f);
    ak__head_next_line(p->head.ptr, &pos, &line, &len);
    if ((rc = ak__req_line(p, line, len, err)) != AK_OK) return rc;
    if ((rc = ak__req_headers(p, &pos, &f, err)) != AK_OK) return rc;
    return ak__req_framing(p, &f, err);
}

AK_PRIVATE ak_result ak__req_emit(void *ud, const char *data, size_t len) {
    ak_http_request_parser *p = (ak_http_request_parser *)ud;
    if (len > p->limits.max_body - p->body.len) return AK_ERR_LIMIT;
    ak_buf_append(&p->body, data, len);
    return p->body.err;
}

AK_PRIVATE ak_result ak__req_feed_body(ak_http_request_parser *p, const char *data, size_t len,
                                       size_t *used, ak_error *err) {
    ak__body_limits lim;
    ak_result rc;
    lim.max_trailer = p->limits.max_header_bytes;
    lim.max_total = p->limits.max_body;
    rc = ak__body_feed(&p->bs, &lim, data, len, used, ak__req_emit, p, err);
    if (rc == AK_OK) {
        p->state = AK__PARSE_DONE;
        p->expect_continue = 0;
        p->req.body = p->body.ptr ? p->body.ptr : "";
        p->req.body_len = p->body.len;
    } else if (rc == AK_ERR_LIMIT) {
        ak_error_set(err, rc, "request body exceeds %zu bytes", p->limits.max_body);
        return ak__req_fail(p, rc, 413);
    } else if (rc == AK_ERR_OUT_OF_MEMORY) {
        ak_error_set(err, rc, "out of memory reading the request body");
        return ak__req_fail(p, rc, 503);
    } else if (rc != AK_PENDING) {
        return ak__req_fail(p, rc, 400);
    }
    return rc;
}

AKDEF ak_result ak_http_request_parser_feed(ak_http_request_parser *p, const char *data,
                                            size_t len, size_t *consumed, ak_error *err) {
    size_t done = 0, used = 0;
    ak_result rc;
    if (consumed) *consumed = 0;
    if (p->state == AK__PARSE_ERROR)
        return ak_error_set(err, p->error, "the request was already rejected (%s)", ak_result_str(p->error));
    if (p->state == AK__PARSE_DONE) return AK_OK;
    if (len && !data) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "data is NULL");
    if (p->state == AK__PARSE_HEAD) {
        rc = ak__head_feed(&p->hs, &p->head, &p->limits, AK__START_REQUEST, data, len, &done);
        if (consumed) *consumed = done;
        if (rc == AK_PENDING) return rc;
        if (rc != AK_OK) return ak__req_head_failed(p, rc, err);
        if ((rc = ak__req_head(p, err)) != AK_OK) return rc;
        p->state = AK__PARSE_BODY;
    }
    rc = ak__req_feed_body(p, data + done, len - done, &used, err);
    if (consumed) *consumed = done + used;
    return rc;
}

/* ---- response framer (server) --------------------------------------------------------------- */

AKDEF void ak_http_framer_init(ak_http_response_framer *f, const ak_http_server_request *req) {
    AK_MEMSET(f, 0, sizeof *f);
    f->version_minor = req ? req->version_minor : 1;
    f->keep_alive = req ? req->keep_alive : 0;
    f->head_request = req && req->method && ak__streq(req->method, "HEAD");
}

/* Checks the caller's headers and reads the ones that decide the framing. */
AK_PRIVATE ak_result ak__framer_fields(const ak_header *h, size_t n, ak__http_fields *f,
                                       ak_error *err) {
    size_t i;
    AK_MEMSET(f, 0, sizeof *f);
    if (n && !h) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "headers is NULL");
    for (i = 0; i < n; i++) {
        size_t nl, vl;
        if (!h[i].name || !h[i].value)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "header %zu has a NULL name or value", i);
        nl = ak__strlen(h[i].name);
        vl = ak__strlen(h[i].value);
        if (!ak__http_token(h[i].name, nl) || !ak__http_value_ok(h[i].value, vl))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT,
                                "header \"%s\" has an invalid name or a control character in its value",
                                h[i].name);
        if (ak__ieqn(h[i].name, nl, "transfer-encoding"))
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "Transfer-Encoding is chosen by the framer");
        if (ak__http_note_field(f, &h[i], nl, vl, err) != AK_OK)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "invalid Content-Length \"%s\"", h[i].value);
    }
    return AK_OK;
}

AK_PRIVATE void ak__framer_mode(ak_http_response_framer *f, int status, const ak__http_fields *fl) {
    if (fl->conn_close) f->keep_alive = 0;
    if (f->head_request || status == 204 || status == 304) {
        f->body_mode = AK__BODY_NONE;
    } else if (fl->has_length) {
        f->body_mode = AK__BODY_LENGTH;
        f->remaining = fl->length;
    } else if (f->version_minor >= 1) {
        f->body_mode = AK__BODY_CHUNKED;
    } else {
        f->body_mode = AK__BODY_CLOSE; /* HTTP/1.0 knows no chunks: the close ends the body */
        f->keep_alive = 0;
    }
}

AKDEF ak_result ak_http_framer_start(ak_http_response_framer *f, ak_buf *out, int status,
                                     const ak_header *headers, size_t count, ak_error *err) {
    ak__http_fields fl;
    size_t mark = out->len;
    ak_result rc;
    if (f->state != 0) return ak_error_set(err, AK_ERR_STATE, "the response was already started");
    if (status < 200 || status > 999)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "response status %d is not 200..999", status);
    if ((rc = ak__framer_fields(headers, count, &fl, err)) != AK_OK) return rc;
    if (status == 204 && fl.has_length)
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "a 204 response has no Content-Length");
    ak__framer_mode(f, status, &fl);
    ak_buf_printf(out, "HTTP/1.1 %d %s\r\n", status, ak_http_status_reason(status));
    ak__http_put_headers(out, headers, count);
    if (f->body_mode == AK__BODY_CHUNKED) ak_buf_puts(out, "Transfer-Encoding: chunked\r\n");
    if (!fl.has_connection && !f->keep_alive) ak_buf_puts(out, "Connection: close\r\n");
    if (!fl.has_connection && f->keep_alive && f->version_minor == 0)
        ak_buf_puts(out, "Connection: keep-alive\r\n");
    ak_buf_append(out, "\r\n", 2);
    if (out->err) {
        out->len = mark;
        if (out->ptr) out->ptr[mark] = 0;
        f->keep_alive = 0;
        return ak_error_set(err, out->err, "cannot build the response head: %s", ak_result_str(out->err));
    }
    f->state = 1;
    return AK_OK;
}

AKDEF ak_result ak_http_framer_write(ak_http_response_framer *f, ak_buf *out, const char *data,
                                     size_t len, ak_error *err) {
    if (f->state != 1)
        return ak_error_set(err, AK_ERR_STATE, f->state ? "the response has ended" : "the response was not started");
    if (!len || f->body_mode == AK__BODY_NONE) return AK_OK;
    if (!data) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "data is NULL");
    if (f->body_mode == AK__BODY_LENGTH) {
        if ((uint64_t)len > f->remaining)
            return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "%zu body bytes, but Content-Length leaves %llu",
                                len, (unsigned long long)f->remaining);
        f->remaining -= len;
    }
    if (f->body_mode == AK__BODY_CHUNKED) ak_buf_printf(out, "%zx\r\n", len);
    ak_buf_append(out, data, len);
    if (f->body_mode == AK__BODY_CHUNKED) ak_buf_append(out, "\r\n", 2);
    if (out->err) {
        f->keep_alive = 0; /* part of the framing may be missing: the connection cannot be reused */
        return ak_error_set(err, out->err, "cannot buffer the response body: %s", ak_result_str(out->err));
    }
    return AK_OK;
}

AKDEF ak_result ak_http_framer_end(ak_http_response_framer *f, ak_buf *out, ak_error *err) {
    if (f->state != 1)
        return ak_error_set(err, AK_ERR_STATE, f->state ? "the response has ended" : "the response was not started");
    f->state = 2;
    if (f->body_mode == AK__BODY_LENGTH && f->remaining) {
        f->keep_alive = 0;
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "response ended %llu bytes short of its Content-Length",
                            (unsigned long long)f->remaining);
    }
    if (f->body_mode == AK__BODY_CHUNKED) ak_buf_append(out, "0\r\n\r\n", 5);
    if (out->err) {
        f->keep_alive = 0;
        return ak_error_set(err, out->err, "cannot buffer the end of the response: %s", ak_result_str(out->err));
    }
    return AK_OK;
}

AKDEF ak_result ak_http_respond(ak_http_writer *w, int status, const char *content_type,
                                const char *body, size_t len) {
    ak_header h[2];
    char length[24];
    ak_buf b;
    size_t n = 0;
    ak_result rc, end_rc;
    ak_buf_init_fixed(&b, length, sizeof length);
    ak_buf_put_u64(&b, (uint64_t)len);
    if (content_type) {
        h[n].name = "Content-Type";
        h[n++].value = content_type;
    }
    h[n].name = "Content-Length";
    h[n++].value = length;
    rc = w->start(w->ud, status, h, n);
    if (rc == AK_OK && len) rc = w->write(w->ud, body, len);
    end_rc = w->end(w->ud); /* always: end() is what releases the writer */
    return rc != AK_OK ? rc : end_rc;
}
