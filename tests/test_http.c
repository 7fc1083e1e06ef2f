/* HTTP/1.1 framing: URLs, request heads, the response and request parsers (whole, one byte at
   a time, split at every offset), limits, hostile input, allocation failure, the framer. */
#include "test.h"

/* ---- URLs ---------------------------------------------------------------------------------- */

static void urls_are_split_into_parts(void) {
    static const struct { const char *url; int https, ipv6, port, explicit_port; const char *host, *path, *query; } cases[] = {
        {"http://example.com", 0, 0, 80, 0, "example.com", "", NULL},
        {"HTTPS://API.openai.com/v1/chat/completions", 1, 0, 443, 0, "API.openai.com", "/v1/chat/completions", NULL},
        {"http://127.0.0.1:8080/a?b=1&c=%20#frag", 0, 0, 8080, 1, "127.0.0.1", "/a", "b=1&c=%20"},
        {"https://[::1]:8443/x", 1, 1, 8443, 1, "::1", "/x", NULL},
        {"http://[2001:db8::7]/", 0, 1, 80, 0, "2001:db8::7", "/", NULL},
        {"http://h?q", 0, 0, 80, 0, "h", "", "q"},
        {"http://h/?", 0, 0, 80, 0, "h", "/", ""},
        {"https://generativelanguage.googleapis.com/v1beta/models/gemini:streamGenerateContent?alt=sse",
         1, 0, 443, 0, "generativelanguage.googleapis.com", "/v1beta/models/gemini:streamGenerateContent", "alt=sse"},
        {"http://my_host.local:1/", 0, 0, 1, 1, "my_host.local", "/", NULL},
        {"http://h:65535", 0, 0, 65535, 1, "h", "", NULL},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ak_url u;
        ak_error e;
        ak_result rc = ak_url_parse(cases[i].url, strlen(cases[i].url), &u, &e);
        CHECK_MSG(rc == AK_OK, "%s: %s", cases[i].url, e.message);
        if (rc != AK_OK) continue;
        CHECK_EQ(u.https, cases[i].https);
        CHECK_EQ(u.ipv6, cases[i].ipv6);
        CHECK_EQ(u.port, cases[i].port);
        CHECK_EQ(u.port_explicit, cases[i].explicit_port);
        CHECK(u.host_len == strlen(cases[i].host) && memcmp(u.host, cases[i].host, u.host_len) == 0);
        CHECK(u.path_len == strlen(cases[i].path) && memcmp(u.path, cases[i].path, u.path_len) == 0);
        if (cases[i].query) CHECK(u.query && u.query_len == strlen(cases[i].query) && memcmp(u.query, cases[i].query, u.query_len) == 0);
        else CHECK(u.query == NULL);
    }
}

static void junk_urls_are_rejected_with_reasons(void) {
    static const struct { const char *url; const char *why; } cases[] = {
        {"ftp://h/", "must start with"},
        {"http:/h", "must start with"},
        {"h/path", "must start with"},
        {"http://", "no host"},
        {"http:///path", "no host"},
        {"http://user:pw@h/", "user info"},
        {"http://h:0/", "port"},
        {"http://h:65536/", "port"},
        {"http://h:/", "port"},
        {"http://h:80a/", "port"},
        {"http://h:123456/", "port"},
        {"http://[::1/", "unterminated"},
        {"http://[1.2.3.4]/", "not an IPv6"},
        {"http://[::1]x/", "junk after"},
        {"http://[fe80::1%25eth0]/", "invalid character"},
        {"http://ho st/", "0x20"},
        {"http://h/a b", "0x20"},
        {"http://h/a\r\nX: y", "0xd"},
        {"http://h/\xC3\xA9", "0xc3"},
        {"http://h/%zz", "bad %-escape"},
        {"http://h/%4", "bad %-escape"},
        {"http://h\x7F/", "0x7f"},
        {"http://h!/", "invalid character"},
    };
    size_t i;
    ak_url u;
    ak_error e;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ak_result rc = ak_url_parse(cases[i].url, strlen(cases[i].url), &u, &e);
        CHECK_MSG(rc == AK_ERR_INVALID_ARGUMENT, "%s accepted", cases[i].url);
        CHECK_MSG(rc == AK_OK || strstr(e.message, cases[i].why), "%s: \"%s\" lacks \"%s\"", cases[i].url, e.message, cases[i].why);
    }
    CHECK_EQ(ak_url_parse("http://h/\0x", 10, &u, &e), AK_ERR_INVALID_ARGUMENT); /* NUL inside */
    CHECK_EQ(ak_url_parse(NULL, 0, &u, NULL), AK_ERR_INVALID_ARGUMENT);
    {
        char longhost[300];
        memset(longhost, 'a', sizeof longhost);
        memcpy(longhost, "http://", 7);
        CHECK_EQ(ak_url_parse(longhost, sizeof longhost, &u, &e), AK_ERR_INVALID_ARGUMENT);
        CHECK(strstr(e.message, "too long") != NULL);
    }
}

/* ---- request heads ------------------------------------------------------------------------------ */

static const char *head_of(const char *method, const char *url, const ak_header *h, size_t n,
                           const char *body, int close_conn, ak_error *e) {
    static char out[2048];
    ak_http_request req;
    ak_url u;
    ak_buf b;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.url = url;
    req.headers = h;
    req.header_count = n;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    if (ak_url_parse(url, strlen(url), &u, e) != AK_OK) return "URL";
    ak_buf_init_fixed(&b, out, sizeof out);
    if (ak_http_write_request_head(&b, &req, &u, close_conn, e) != AK_OK) return "ERR";
    return out;
}

static void request_heads_are_written(void) {
    ak_header h[3];
    ak_error e;
    CHECK_STR(head_of("GET", "http://example.com", NULL, 0, NULL, 0, &e),
              "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    CHECK_STR(head_of("GET", "https://h:443/p?q=1#frag", NULL, 0, NULL, 1, &e),
              "GET /p?q=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    CHECK_STR(head_of("GET", "http://h?x", NULL, 0, NULL, 0, &e), "GET /?x HTTP/1.1\r\nHost: h\r\n\r\n");
    h[0].name = "Authorization";
    h[0].value = "Bearer k";
    h[1].name = "Content-Type";
    h[1].value = "application/json";
    CHECK_STR(head_of("POST", "http://[::1]:8080/v1", h, 2, "{}", 0, &e),
              "POST /v1 HTTP/1.1\r\nHost: [::1]:8080\r\nAuthorization: Bearer k\r\n"
              "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n");
    CHECK_STR(head_of("POST", "http://h/", NULL, 0, NULL, 0, &e),
              "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    h[0].name = "host";
    h[0].value = "override";
    h[1].name = "Connection";
    h[1].value = "keep-alive";
    CHECK_STR(head_of("DELETE", "http://h/", h, 2, NULL, 1, &e),
              "DELETE / HTTP/1.1\r\nhost: override\r\nConnection: keep-alive\r\n\r\n");
}

static void request_heads_refuse_injection(void) {
    ak_header h[1];
    ak_error e;
    ak_http_request req;
    ak_url u;
    ak_buf b;
    char small[16];
    h[0].name = "X";
    h[0].value = "a\r\nInjected: 1";
    CHECK_STR(head_of("GET", "http://h/", h, 1, NULL, 0, &e), "ERR");
    CHECK(strstr(e.message, "control character") != NULL);
    h[0].value = "a\nb";
    CHECK_STR(head_of("GET", "http://h/", h, 1, NULL, 0, &e), "ERR");
    h[0].name = "Bad Name";
    h[0].value = "v";
    CHECK_STR(head_of("GET", "http://h/", h, 1, NULL, 0, &e), "ERR");
    h[0].name = "Content-Length";
    CHECK_STR(head_of("GET", "http://h/", h, 1, NULL, 0, &e), "ERR");
    CHECK(strstr(e.message, "set by the HTTP layer") != NULL);
    h[0].name = "transfer-encoding";
    CHECK_STR(head_of("GET", "http://h/", h, 1, NULL, 0, &e), "ERR");
    h[0].name = NULL;
    CHECK_STR(head_of("GET", "http://h/", h, 1, NULL, 0, &e), "ERR");
    CHECK_STR(head_of("G T", "http://h/", NULL, 0, NULL, 0, &e), "ERR");
    CHECK_STR(head_of("", "http://h/", NULL, 0, NULL, 0, &e), "ERR");
    /* Out of room: an error, and the buffer is left as it was. */
    memset(&req, 0, sizeof req);
    req.method = "GET";
    ak_url_parse("http://example.com/long/path", 28, &u, NULL);
    ak_buf_init_fixed(&b, small, sizeof small);
    ak_buf_puts(&b, "keep");
    CHECK_EQ(ak_http_write_request_head(&b, &req, &u, 0, &e), AK_ERR_OUT_OF_MEMORY);
    CHECK_EQ(b.len, 4);
    CHECK_STR(b.ptr, "keep");
    req.body_len = 3; /* a length without a body */
    CHECK_EQ(ak_http_write_request_head(&b, &req, &u, 0, &e), AK_ERR_INVALID_ARGUMENT);
}

/* ---- response parser -------------------------------------------------------------------------- */

/* A sink that writes what it sees as a transcript: S<status> H<name>=<value> B<body bytes>. */
typedef struct rec_sink {
    ak_http_sink sink;
    char log[8192];
    size_t len;
    int stop_on_body;          /* return AK_ERR_CANCELLED from on_body */
    int calls_after_stop;
    int stopped;
} rec_sink;

static void rec_put(rec_sink *r, const char *s, size_t n) {
    if (r->len + n >= sizeof r->log) n = sizeof r->log - 1 - r->len;
    memcpy(r->log + r->len, s, n);
    r->len += n;
    r->log[r->len] = 0;
}

static ak_result rec_status(ak_http_sink *s, int status) {
    rec_sink *r = (rec_sink *)s->ud;
    char t[16];
    if (r->stopped) r->calls_after_stop++;
    snprintf(t, sizeof t, "S%d ", status);
    rec_put(r, t, strlen(t));
    return AK_OK;
}

static ak_result rec_header(ak_http_sink *s, const char *n, size_t nl, const char *v, size_t vl) {
    rec_sink *r = (rec_sink *)s->ud;
    if (r->stopped) r->calls_after_stop++;
    /* The parser promises NUL-terminated name and value too. */
    if (n[nl] != 0 || v[vl] != 0) rec_put(r, "!NUL", 4);
    rec_put(r, "H", 1);
    rec_put(r, n, nl);
    rec_put(r, "=", 1);
    rec_put(r, v, vl);
    rec_put(r, " ", 1);
    return AK_OK;
}

static ak_result rec_body(ak_http_sink *s, const char *d, size_t n) {
    rec_sink *r = (rec_sink *)s->ud;
    if (r->stopped) r->calls_after_stop++;
    if (r->stop_on_body) {
        r->stopped = 1;
        return AK_ERR_CANCELLED;
    }
    rec_put(r, d, n); /* body bytes are concatenated: the transcript ignores the split */
    return AK_OK;
}

static void rec_init(rec_sink *r) {
    memset(r, 0, sizeof *r);
    r->sink.on_status = rec_status;
    r->sink.on_header = rec_header;
    r->sink.on_body = rec_body;
    r->sink.ud = r;
}

typedef struct resp_result {
    ak_result rc;              /* feed result, or eof's when the feed wanted more */
    size_t consumed;
    char log[8192];
    char msg[AK_ERROR_MAX];
} resp_result;

/* Feeds `text` in pieces: step 0 = whole, else `step` bytes at a time, or split once at
   `split` when step < 0. Calls eof when the feeds end with AK_PENDING. */
static void resp_run(const char *text, size_t len, int head, const ak_http_limits *lim, long step,
                     size_t split, resp_result *out) {
    ak_http_response_parser p;
    rec_sink r;
    ak_error e;
    size_t off = 0;
    ak_result rc = AK_PENDING;
    rec_init(&r);
    ak_http_response_parser_init(&p, &r.sink, NULL, lim, head);
    e.message[0] = 0;
    while (rc == AK_PENDING && off < len) {
        size_t n = step == 0 ? len - off : step > 0 ? (size_t)step : off < split ? split - off : len - off;
        size_t used = 0;
        if (n > len - off) n = len - off;
        rc = ak_http_response_parser_feed(&p, text + off, n, &used, &e);
        off += used;
        if (rc == AK_PENDING && used != n) { rc = AK_ERR_INTERNAL; break; } /* must take all */
    }
    if (rc == AK_PENDING) rc = ak_http_response_parser_eof(&p, &e);
    out->rc = rc;
    out->consumed = off;
    snprintf(out->log, sizeof out->log, "%s", r.log);
    snprintf(out->msg, sizeof out->msg, "%s", rc == AK_OK ? "" : e.message);
    ak_http_response_parser_free(&p);
}

/* How much a parser took is only defined when it did not fail. */
static int same_consumed(const ak_result *rc, size_t a, size_t b) {
    return (*rc != AK_OK && *rc != AK_PENDING) || a == b;
}

/* The result must not depend on how the bytes were split. */
static void resp_expect_n(const char *text, size_t len, int head, const ak_http_limits *lim,
                          ak_result want_rc, const char *want_log, const char *want_msg) {
    size_t split;
    resp_result whole, piece;
    resp_run(text, len, head, lim, 0, 0, &whole);
    CHECK_MSG(whole.rc == want_rc, "[%s]: rc %d want %d (%s)", text, (int)whole.rc, (int)want_rc, whole.msg);
    if (want_log) CHECK_MSG(strcmp(whole.log, want_log) == 0, "[%s]: log \"%s\" want \"%s\"", text, whole.log, want_log);
    if (want_msg) CHECK_MSG(strstr(whole.msg, want_msg) != NULL, "[%s]: message \"%s\" lacks \"%s\"", text, whole.msg, want_msg);
    resp_run(text, len, head, lim, 1, 0, &piece);
    CHECK_MSG(piece.rc == whole.rc && strcmp(piece.log, whole.log) == 0 && same_consumed(&piece.rc, piece.consumed, whole.consumed),
              "[%s] byte by byte: rc %d log \"%s\"", text, (int)piece.rc, piece.log);
    for (split = 1; split < len; split++) {
        resp_run(text, len, head, lim, -1, split, &piece);
        if (piece.rc != whole.rc || strcmp(piece.log, whole.log) != 0 || !same_consumed(&piece.rc, piece.consumed, whole.consumed)) {
            CHECK_MSG(0, "[%s] split at %zu: rc %d log \"%s\"", text, split, (int)piece.rc, piece.log);
            break;
        }
    }
}

static void resp_expect(const char *text, int head, const ak_http_limits *lim, ak_result want_rc,
                        const char *want_log, const char *want_msg) {
    resp_expect_n(text, strlen(text), head, lim, want_rc, want_log, want_msg);
}

/* A string literal and its length, NULs included. */
#define T(s) s, sizeof(s) - 1

static void responses_parse_the_same_however_split(void) {
    resp_expect("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  v  \r\n\r\nhello", 0, NULL, AK_OK,
                "S200 HContent-Length=5 HX-A=v hello", NULL);
    resp_expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5;ext=1;q=\"x\"\r\nhello\r\n1b \r\n, and twenty-six more bytes\r\n0\r\nTrailer: t\r\n\r\n",
                0, NULL, AK_OK, "S200 HTransfer-Encoding=chunked hello, and twenty-six more bytes", NULL);
    resp_expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, NULL, AK_OK,
                "S200 HTransfer-Encoding=chunked ", NULL);
    resp_expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\n", 0, NULL, AK_OK,
                NULL, NULL);
    /* No length: the body runs to the close. */
    resp_expect("HTTP/1.0 200 ok\r\nContent-type: text/html\r\n\r\n<html>body</html>", 0, NULL, AK_OK,
                "S200 HContent-type=text/html <html>body</html>", NULL);
    /* Interim responses are skipped; only the final status reaches the sink. */
    resp_expect("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
                "HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok", 0, NULL, AK_OK,
                "S201 Hcontent-length=2 ok", NULL);
    /* Bodiless: HEAD, 204, 304, whatever the headers say. */
    resp_expect("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 1, NULL, AK_OK, "S200 HContent-Length=100 ", NULL);
    resp_expect("HTTP/1.1 204 No Content\r\n\r\n", 0, NULL, AK_OK, "S204 ", NULL);
    resp_expect("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 0, NULL, AK_OK, NULL, NULL);
    /* Bare LF line ends, a missing reason phrase, an empty header value, obs-text. */
    resp_expect("HTTP/1.1 404\nA:\nB: \xC3\xA9\nContent-Length: 0\n\n", 0, NULL, AK_OK,
                "S404 HA= HB=\xC3\xA9 HContent-Length=0 ", NULL);
    resp_expect("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc", 0, NULL, AK_OK, NULL, NULL);
    resp_expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nContent-Length: 99\r\n\r\n1\r\nx\r\n0\r\n\r\n",
                0, NULL, AK_OK, NULL, NULL);
}

static void malformed_responses_are_refused(void) {
    static const struct { const char *text; size_t len; const char *why; } cases[] = {
        {T("HTTP/2 200 OK\r\n\r\n"), "malformed status line"},
        {T("HTTP/1.1 20 OK\r\n\r\n"), "malformed status line"},
        {T("HTTP/1.1 2000 OK\r\n\r\n"), "malformed status line"},
        {T("HTTP/1.1 099 Low\r\n\r\n"), "invalid status code"},
        {T("HTTP/1.1 600 High\r\n\r\n"), "invalid status code"},
        {T("HTTP/1.1 200 O\x01K\r\n\r\n"), "control character"},
        {T("ICY 200 OK\r\n\r\n"), "did not answer with HTTP"},
        {T("\r\nHTTP/1.1 200 OK\r\n\r\n"), "did not answer with HTTP"},
        {T("\nHTTP/1.1 200 OK\r\n\r\n"), "blank line"},
        {T("HTTP/1.1 101 Switching Protocols\r\n\r\n"), "101"},
        {T("HTTP/1.1 200 OK\r\nA: b\r\n  folded\r\n\r\n"), "folding"},
        {T("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"), "malformed header line"},
        {T("HTTP/1.1 200 OK\r\nName : v\r\n\r\n"), "malformed header line"},
        {T("HTTP/1.1 200 OK\r\n: v\r\n\r\n"), "malformed header line"},
        {T("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n"), "control character"},
        {T("HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n"), "control character"},
        {T("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"), "invalid Content-Length"},
        {T("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), "invalid Content-Length"},
        {T("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"), "invalid Content-Length"},
        {T("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), "conflicting"},
        {T("HTTP/1.1 200 OK\r\nContent-Length: ,\r\n\r\n"), "empty Content-Length"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), "Transfer-Encoding"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), "Transfer-Encoding"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n"), "empty Transfer-Encoding"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), "malformed chunk size"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n"), "malformed chunk size"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n"), "too large"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc"), "chunk size line"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n"), "CRLF"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\rx"), "CRLF"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\n"), "chunk size line"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a\x01\r\n"), "control character"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\rx"), "last chunk"},
        {T("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: \0\r\n\r\n"), "NUL"},
        /* Not HTTP at all: refused on the first wrong byte, no line end needed. */
        {T("\x15\x03\x03\x00\x02\x02\x46"), "did not answer with HTTP"},
        {T("HTTX"), "did not answer with HTTP"},
        {T("http/1.1 200 OK\r\n\r\n"), "did not answer with HTTP"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        resp_expect_n(cases[i].text, cases[i].len, 0, NULL, AK_ERR_HTTP, NULL, cases[i].why);
}

static void response_limits_hold(void) {
    ak_http_limits lim;
    char big[200];
    size_t i;
    memset(&lim, 0, sizeof lim);
    lim.max_header_bytes = 64;
    lim.max_headers = 3;
    resp_expect("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 0\r\n\r\n", 0, &lim,
                AK_ERR_HTTP, NULL, "more than 3 headers");
    resp_expect("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0, &lim, AK_OK, NULL, NULL);
    resp_expect("HTTP/1.1 200 OK\r\nA: 01234567890123456789012345678901234567890\r\n\r\n", 0, &lim,
                AK_ERR_HTTP, NULL, "exceeds 64 bytes");
    /* Exactly at the limit is fine: 64 bytes including the final blank line. */
    strcpy(big, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: ");
    for (i = strlen(big); i < 64 - 4; i++) big[i] = 'x';
    strcpy(big + i, "\r\n\r\n");
    CHECK_EQ(strlen(big), 64);
    resp_expect(big, 0, &lim, AK_OK, NULL, NULL);
    resp_expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 0123456789012345678901234567890123456789"
                "0123456789012345678901234567890123456789\r\n\r\n", 0, &lim, AK_ERR_HTTP, NULL, "trailers exceed");
    {
        char many[2048] = "";
        for (i = 0; i < AK_HTTP_MAX_INTERIM + 1; i++) strcat(many, "HTTP/1.1 100 Continue\r\n\r\n");
        strcat(many, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        resp_expect(many, 0, NULL, AK_ERR_HTTP, NULL, "interim");
    }
    {
        char ext[AK_HTTP_MAX_CHUNK_LINE + 200];
        strcpy(ext, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;");
        for (i = strlen(ext); i < sizeof ext - 3; i++) ext[i] = 'e';
        strcpy(ext + i, "\r\n");
        resp_expect(ext, 0, NULL, AK_ERR_HTTP, NULL, "extensions too long");
    }
}

static void cut_responses_are_truncated_not_complete(void) {
    resp_expect("", 0, NULL, AK_ERR_CLOSED, "", "before a response");
    resp_expect("HTTP/1.1 200 OK\r\nContent-Le", 0, NULL, AK_ERR_TRUNCATED, "", "inside the response head");
    resp_expect("HTTP/1.1 100 Continue\r\n\r\n", 0, NULL, AK_ERR_TRUNCATED, "", "head");
    resp_expect("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, NULL, AK_ERR_TRUNCATED,
                "S200 HContent-Length=10 abc", "after 3 body bytes, 7 short");
    resp_expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 0, NULL, AK_ERR_TRUNCATED,
                NULL, "before the last chunk");
    resp_expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", 0, NULL, AK_ERR_TRUNCATED, NULL, NULL);
}

static void bytes_after_a_response_are_left_alone(void) {
    const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
    resp_result r;
    resp_run(two, strlen(two), 0, NULL, 0, 0, &r);
    CHECK_EQ(r.rc, AK_OK);
    CHECK_EQ(r.consumed, strlen(two) - strlen("HTTP/1.1 200 OK\r\n"));
    two = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nNEXT";
    resp_run(two, strlen(two), 0, NULL, 0, 0, &r);
    CHECK_EQ(r.rc, AK_OK);
    CHECK_EQ(r.consumed, strlen(two) - 4);
}

static void a_stopped_sink_is_never_called_again(void) {
    const char *text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n";
    ak_http_response_parser p;
    rec_sink r;
    ak_error e;
    size_t i, used;
    ak_result rc = AK_PENDING;
    rec_init(&r);
    r.stop_on_body = 1;
    ak_http_response_parser_init(&p, &r.sink, NULL, NULL, 0);
    for (i = 0; i < strlen(text) && rc == AK_PENDING; i++) rc = ak_http_response_parser_feed(&p, text + i, 1, &used, &e);
    CHECK_EQ(rc, AK_ERR_CANCELLED);
    CHECK_EQ(p.sink_stopped, 1);
    CHECK(strstr(e.message, "sink stopped") != NULL);
    CHECK_EQ(ak_http_response_parser_feed(&p, text + i, strlen(text) - i, &used, &e), AK_ERR_CANCELLED);
    CHECK_EQ(ak_http_response_parser_eof(&p, &e), AK_ERR_CANCELLED);
    CHECK_EQ(r.calls_after_stop, 0);
    ak_http_response_parser_free(&p);
}

static void response_parser_survives_allocation_failure(void) {
    const char *text = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: 0123456789012345678901234567890123456789"
                       "0123456789012345678901234567890123456789\r\n\r\nok";
    long long n;
    int saw_oom = 0, saw_ok = 0;
    for (n = 1; n < 20; n++) {
        t_alloc ta;
        ak_http_response_parser p;
        rec_sink r;
        ak_error e;
        size_t i, used;
        ak_result rc = AK_PENDING;
        rec_init(&r);
        ak_http_response_parser_init(&p, &r.sink, t_alloc_init(&ta, n), NULL, 0);
        for (i = 0; i < strlen(text) && rc == AK_PENDING; i += 7)
            rc = ak_http_response_parser_feed(&p, text + i, strlen(text) - i < 7 ? strlen(text) - i : 7, &used, &e);
        if (rc == AK_ERR_OUT_OF_MEMORY) saw_oom = 1;
        else if (rc == AK_OK) saw_ok = 1;
        else CHECK_MSG(0, "fail_at %lld: rc %d", n, (int)rc);
        ak_http_response_parser_free(&p);
        CHECK_EQ(ta.live, 0);
    }
    CHECK(saw_oom && saw_ok);
}

/* ---- request parser ----------------------------------------------------------------------------- */

typedef struct req_result {
    ak_result rc;
    int status;
    size_t consumed;
    int expect_continue;
    char log[8192];
    char msg[AK_ERROR_MAX];
} req_result;

static void req_describe(const ak_http_server_request *q, char *out, size_t cap) {
    size_t i, n;
    n = (size_t)snprintf(out, cap, "%s %s ?%s 1.%d ka=%d", q->method, q->path, q->query, q->version_minor, q->keep_alive);
    for (i = 0; i < q->header_count && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, " [%s=%s]", q->headers[i].name, q->headers[i].value);
    if (n < cap) n += (size_t)snprintf(out + n, cap - n, " body(%zu)=", q->body_len);
    if (n < cap) snprintf(out + n, cap - n, "%.*s", (int)q->body_len, q->body);
}

static void req_run(const char *text, size_t len, const ak_http_limits *lim, long step, size_t split,
                    req_result *out) {
    ak_http_request_parser p;
    ak_error e;
    size_t off = 0;
    ak_result rc = AK_PENDING;
    ak_http_request_parser_init(&p, NULL, lim);
    e.message[0] = 0;
    out->expect_continue = 0;
    while (rc == AK_PENDING && off < len) {
        size_t n = step == 0 ? len - off : step > 0 ? (size_t)step : off < split ? split - off : len - off;
        size_t used = 0;
        if (n > len - off) n = len - off;
        rc = ak_http_request_parser_feed(&p, text + off, n, &used, &e);
        off += used;
        out->expect_continue |= p.expect_continue;
        if (rc == AK_PENDING && used != n) { rc = AK_ERR_INTERNAL; break; }
    }
    out->rc = rc;
    out->status = p.error_status;
    out->consumed = off;
    out->log[0] = 0;
    if (rc == AK_OK) req_describe(&p.req, out->log, sizeof out->log);
    snprintf(out->msg, sizeof out->msg, "%s", rc == AK_OK || rc == AK_PENDING ? "" : e.message);
    ak_http_request_parser_free(&p);
}

static void req_expect_n(const char *text, size_t len, const ak_http_limits *lim, ak_result want_rc,
                         int want_status, const char *want_log, const char *want_msg) {
    size_t split;
    req_result whole, piece;
    req_run(text, len, lim, 0, 0, &whole);
    CHECK_MSG(whole.rc == want_rc && whole.status == want_status, "[%.80s]: rc %d/%d want %d/%d (%s)", text,
              (int)whole.rc, whole.status, (int)want_rc, want_status, whole.msg);
    if (want_log) CHECK_MSG(strcmp(whole.log, want_log) == 0, "[%.80s]: \"%s\" want \"%s\"", text, whole.log, want_log);
    if (want_msg) CHECK_MSG(strstr(whole.msg, want_msg) != NULL, "[%.80s]: message \"%s\" lacks \"%s\"", text, whole.msg, want_msg);
    req_run(text, len, lim, 1, 0, &piece);
    CHECK_MSG(piece.rc == whole.rc && piece.status == whole.status && strcmp(piece.log, whole.log) == 0 &&
              same_consumed(&piece.rc, piece.consumed, whole.consumed), "[%.80s] byte by byte: rc %d status %d \"%s\"", text,
              (int)piece.rc, piece.status, piece.log);
    for (split = 1; split < len; split++) {
        req_run(text, len, lim, -1, split, &piece);
        if (piece.rc != whole.rc || piece.status != whole.status || strcmp(piece.log, whole.log) != 0 ||
            !same_consumed(&piece.rc, piece.consumed, whole.consumed)) {
            CHECK_MSG(0, "[%.80s] split at %zu: rc %d \"%s\"", text, split, (int)piece.rc, piece.log);
            break;
        }
    }
}

static void req_expect(const char *text, const ak_http_limits *lim, ak_result want_rc, int want_status,
                       const char *want_log, const char *want_msg) {
    req_expect_n(text, strlen(text), lim, want_rc, want_status, want_log, want_msg);
}

static void requests_parse_the_same_however_split(void) {
    req_expect("GET /agents/x?a=1&b=%20 HTTP/1.1\r\nHost: h\r\nAccept:  */* \r\n\r\n", NULL, AK_OK, 0,
               "GET /agents/x ?a=1&b=%20 1.1 ka=1 [Host=h] [Accept=*/*] body(0)=", NULL);
    req_expect("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", NULL, AK_OK, 0,
               "POST /p ? 1.1 ka=1 [Host=h] [Content-Length=5] body(5)=hello", NULL);
    req_expect("POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               "4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n", NULL, AK_OK, 0,
               "POST /p ? 1.1 ka=0 [Host=h] [Transfer-Encoding=chunked] [Connection=close] body(9)=wikipedia", NULL);
    /* Leading blank lines are ignored; bare LF ends lines. */
    req_expect("\r\n\nGET / HTTP/1.0\nConnection: Keep-Alive\n\n", NULL, AK_OK, 0,
               "GET / ? 1.0 ka=1 [Connection=Keep-Alive] body(0)=", NULL);
    req_expect("GET / HTTP/1.0\r\n\r\n", NULL, AK_OK, 0, "GET / ? 1.0 ka=0 body(0)=", NULL);
    req_expect("GET http://h:8080/abs?q=1 HTTP/1.1\r\nHost: h:8080\r\n\r\n", NULL, AK_OK, 0,
               "GET /abs ?q=1 1.1 ka=1 [Host=h:8080] body(0)=", NULL);
    req_expect("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", NULL, AK_OK, 0, "GET / ? 1.1 ka=1 [Host=h] body(0)=", NULL);
    req_expect("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", NULL, AK_OK, 0, "OPTIONS * ? 1.1 ka=1 [Host=h] body(0)=", NULL);
    req_expect("GET / HTTP/1.2\r\nHost: h\r\n\r\n", NULL, AK_OK, 0, NULL, NULL); /* a later 1.x is 1.1 */
    req_expect("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", NULL, AK_OK, 0, NULL, NULL);
    req_expect_n("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\na\0b", 52, NULL, AK_OK, 0, NULL, NULL);
}

static void bad_requests_get_the_right_status(void) {
    static const struct { const char *text; ak_result rc; int status; const char *why; } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", AK_ERR_HTTP, 400, "missing Host"},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", AK_ERR_HTTP, 400, "more than one Host"},
        {"GET /  HTTP/1.1\r\nHost: h\r\n\r\n", AK_ERR_HTTP, 400, "malformed"},
        {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", AK_ERR_HTTP, 400, "malformed request line"},
        {"GET /\r\n\r\n", AK_ERR_HTTP, 400, "malformed request line"},
        {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", AK_ERR_HTTP, 400, "malformed request line"},
        {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", AK_ERR_HTTP, 400, "malformed HTTP version"},
        {"GET / http/1.1\r\nHost: h\r\n\r\n", AK_ERR_HTTP, 400, "malformed HTTP version"},
        {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", AK_ERR_UNSUPPORTED, 505, "not supported"},
        {"GET / HTTP/0.9\r\nHost: h\r\n\r\n", AK_ERR_UNSUPPORTED, 505, "not supported"},
        {"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", AK_ERR_HTTP, 400, "invalid character"},
        {"GET /\xC3\xA9 HTTP/1.1\r\nHost: h\r\n\r\n", AK_ERR_HTTP, 400, "not HTTP"},
        {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", AK_ERR_HTTP, 400, "neither a path"},
        {"GET x HTTP/1.1\r\nHost: h\r\n\r\n", AK_ERR_HTTP, 400, "neither a path"},
        {"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", AK_ERR_HTTP, 400, "folding"},
        {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", AK_ERR_HTTP, 400, "malformed header"},
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", AK_ERR_HTTP, 400, "control character"},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", AK_ERR_HTTP, 400, "both"},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", AK_ERR_HTTP, 400, "conflicting"},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", AK_ERR_HTTP, 400, "invalid Content-Length"},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", AK_ERR_HTTP, 400, "end with"},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", AK_ERR_HTTP, 400, "end with"},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", AK_ERR_HTTP, 400, "single chunked"},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", AK_ERR_UNSUPPORTED, 501, "not supported"},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n", AK_ERR_HTTP, 400, "chunk size"},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n", AK_ERR_HTTP, 400, "chunk size line"},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy", AK_ERR_HTTP, 400, "CRLF"},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n\r\n", AK_ERR_LIMIT, 413, "exceeds"},
        {"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", AK_ERR_HTTP, 400, "blank lines"},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", AK_ERR_HTTP, 400, "not HTTP"},
        {"GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", AK_ERR_HTTP, 400, "not HTTP"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        req_expect(cases[i].text, NULL, cases[i].rc, cases[i].status, NULL, cases[i].why);
}

static void request_limits_get_413_414_431(void) {
    ak_http_limits lim;
    char text[512];
    memset(&lim, 0, sizeof lim);
    lim.max_header_bytes = 100;
    lim.max_headers = 2;
    lim.max_target = 20;
    lim.max_body = 8;
    req_expect("GET /0123456789012345678901234567890 HTTP/1.1\r\nHost: h\r\n\r\n", &lim, AK_ERR_LIMIT, 414, NULL, "target exceeds 20");
    req_expect("GET /0123456789012345678 HTTP/1.1\r\nHost: h\r\n\r\n", &lim, AK_OK, 0, NULL, NULL); /* 20 bytes exactly */
    memset(text, 'a', sizeof text);
    memcpy(text, "GET /", 5);
    text[200] = 0; /* a request line longer than the whole head limit */
    req_expect(text, &lim, AK_ERR_LIMIT, 414, NULL, "request line exceeds");
    req_expect("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", &lim, AK_ERR_LIMIT, 431, NULL, "more than 2 request headers");
    req_expect("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n", &lim, AK_OK, 0, NULL, NULL);
    req_expect("GET / HTTP/1.1\r\nHost: h\r\nA: 012345678901234567890123456789012345678901234567890123456789012345678901234567890\r\n\r\n",
               &lim, AK_ERR_LIMIT, 431, NULL, "head exceeds 100");
    req_expect("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n123456789", &lim, AK_ERR_LIMIT, 413, NULL, NULL);
    req_expect("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n12345678", &lim, AK_OK, 0, NULL, NULL);
    req_expect("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n4\r\n6789\r\n0\r\n\r\n",
               &lim, AK_ERR_LIMIT, 413, NULL, "body exceeds 8");
    /* A chunk too big for the limit is refused at its size line, before any of its data. */
    req_expect("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n", &lim, AK_ERR_LIMIT, 413, NULL,
               "body exceeds 8");
    req_expect("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n3\r\n678\r\n0\r\n\r\n",
               &lim, AK_OK, 0, NULL, NULL);
}

static void pipelined_requests_parse_one_after_another(void) {
    const char *text = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c";
    ak_http_request_parser p;
    ak_error e;
    size_t used, off = 0;
    ak_http_request_parser_init(&p, NULL, NULL);
    CHECK_EQ(ak_http_request_parser_feed(&p, text, strlen(text), &used, &e), AK_OK);
    CHECK_STR(p.req.path, "/a");
    CHECK_STR(p.req.body, "hi");
    off += used;
    CHECK_EQ(ak_http_request_parser_feed(&p, text + off, strlen(text) - off, &used, &e), AK_OK); /* repeats */
    CHECK_EQ(used, 0);
    ak_http_request_parser_reset(&p);
    CHECK_EQ(ak_http_request_parser_feed(&p, text + off, strlen(text) - off, &used, &e), AK_OK);
    CHECK_STR(p.req.path, "/b");
    CHECK_EQ(p.req.body_len, 0);
    CHECK_STR(p.req.body, "");
    CHECK_STR(ak_http_server_request_header(&p.req, "HOST"), "h");
    CHECK(ak_http_server_request_header(&p.req, "missing") == NULL);
    off += used;
    ak_http_request_parser_reset(&p);
    CHECK_EQ(ak_http_request_parser_feed(&p, text + off, strlen(text) - off, &used, &e), AK_PENDING);
    CHECK_EQ(off + used, strlen(text));
    ak_http_request_parser_free(&p);
}

static void expect_continue_is_flagged_while_the_body_is_owed(void) {
    req_result r;
    const char *t = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    ak_http_request_parser p;
    size_t used;
    req_run(t, strlen(t), NULL, 0, 0, &r);
    CHECK_EQ(r.rc, AK_PENDING);
    CHECK_EQ(r.expect_continue, 1);
    ak_http_request_parser_init(&p, NULL, NULL);
    CHECK_EQ(ak_http_request_parser_feed(&p, t, strlen(t), &used, NULL), AK_PENDING);
    CHECK_EQ(p.expect_continue, 1);
    CHECK_EQ(ak_http_request_parser_feed(&p, "abc", 3, &used, NULL), AK_OK);
    CHECK_EQ(p.expect_continue, 0);
    ak_http_request_parser_free(&p);
    t = "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"; /* no body: nothing to continue */
    req_run(t, strlen(t), NULL, 0, 0, &r);
    CHECK_EQ(r.rc, AK_OK);
    CHECK_EQ(r.expect_continue, 0);
}

static void request_parser_survives_allocation_failure(void) {
    const char *text = "POST /x HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n0\r\n\r\n";
    long long n;
    int saw_oom = 0, saw_ok = 0;
    for (n = 1; n < 30; n++) {
        t_alloc ta;
        ak_http_request_parser p;
        ak_error e;
        size_t i, used;
        ak_result rc = AK_PENDING;
        ak_http_request_parser_init(&p, t_alloc_init(&ta, n), NULL);
        for (i = 0; i < strlen(text) && rc == AK_PENDING; i += used)
            rc = ak_http_request_parser_feed(&p, text + i, strlen(text) - i < 5 ? strlen(text) - i : 5, &used, &e);
        if (rc == AK_ERR_OUT_OF_MEMORY) {
            saw_oom = 1;
            CHECK_EQ(p.error_status, 503);
        } else if (rc == AK_OK) {
            saw_ok = 1;
            CHECK_EQ(p.req.body_len, 64);
        } else {
            CHECK_MSG(0, "fail_at %lld: rc %d", n, (int)rc);
        }
        ak_http_request_parser_free(&p);
        CHECK_EQ(ta.live, 0);
    }
    CHECK(saw_oom && saw_ok);
}

/* ---- response framer ------------------------------------------------------------------------------ */

static ak_http_server_request fake_req(const char *method, int minor, int keep_alive) {
    ak_http_server_request q;
    memset(&q, 0, sizeof q);
    q.method = method;
    q.version_minor = minor;
    q.keep_alive = keep_alive;
    return q;
}

static void framer_picks_the_framing(void) {
    ak_http_response_framer f;
    ak_http_server_request q = fake_req("GET", 1, 1);
    ak_header h[2];
    ak_buf b;
    ak_error e;
    ak_buf_init(&b, NULL);
    /* No length on HTTP/1.1: chunked, keep-alive. */
    ak_http_framer_init(&f, &q);
    h[0].name = "Content-Type";
    h[0].value = "text/event-stream";
    CHECK_OK(ak_http_framer_start(&f, &b, 200, h, 1, &e));
    CHECK_OK(ak_http_framer_write(&f, &b, "data: 1\n\n", 9, &e));
    CHECK_OK(ak_http_framer_write(&f, &b, "", 0, &e));
    CHECK_OK(ak_http_framer_write(&f, &b, "0123456789abcdefX", 17, &e));
    CHECK_OK(ak_http_framer_end(&f, &b, &e));
    CHECK_STR(b.ptr, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "9\r\ndata: 1\n\n\r\n11\r\n0123456789abcdefX\r\n0\r\n\r\n");
    CHECK_EQ(f.keep_alive, 1);
    CHECK_EQ(ak_http_framer_write(&f, &b, "x", 1, &e), AK_ERR_STATE);
    CHECK_EQ(ak_http_framer_end(&f, &b, &e), AK_ERR_STATE);
    /* Content-Length given: the body is sent as is, and must match. */
    ak_buf_clear(&b);
    ak_http_framer_init(&f, &q);
    h[0].name = "Content-Length";
    h[0].value = "5";
    CHECK_OK(ak_http_framer_start(&f, &b, 404, h, 1, &e));
    CHECK_EQ(ak_http_framer_start(&f, &b, 404, h, 1, &e), AK_ERR_STATE);
    CHECK_OK(ak_http_framer_write(&f, &b, "abc", 3, &e));
    CHECK_EQ(ak_http_framer_write(&f, &b, "def", 3, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_OK(ak_http_framer_write(&f, &b, "de", 2, &e));
    CHECK_OK(ak_http_framer_end(&f, &b, &e));
    CHECK_STR(b.ptr, "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nabcde");
    /* Short of the length: an error, and the connection cannot be kept. */
    ak_buf_clear(&b);
    ak_http_framer_init(&f, &q);
    CHECK_OK(ak_http_framer_start(&f, &b, 200, h, 1, &e));
    CHECK_EQ(ak_http_framer_end(&f, &b, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(f.keep_alive, 0);
    /* HTTP/1.0 without a length: the close delimits the body. */
    ak_buf_clear(&b);
    q = fake_req("GET", 0, 1);
    ak_http_framer_init(&f, &q);
    CHECK_OK(ak_http_framer_start(&f, &b, 200, NULL, 0, &e));
    CHECK_OK(ak_http_framer_write(&f, &b, "raw", 3, &e));
    CHECK_OK(ak_http_framer_end(&f, &b, &e));
    CHECK_STR(b.ptr, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nraw");
    CHECK_EQ(f.keep_alive, 0);
    /* HTTP/1.0 keep-alive with a length: say so. */
    ak_buf_clear(&b);
    ak_http_framer_init(&f, &q);
    h[0].value = "0";
    CHECK_OK(ak_http_framer_start(&f, &b, 200, h, 1, &e));
    CHECK_STR(b.ptr, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
    /* HEAD and 204/304: headers only. */
    ak_buf_clear(&b);
    q = fake_req("HEAD", 1, 1);
    ak_http_framer_init(&f, &q);
    CHECK_OK(ak_http_framer_start(&f, &b, 200, NULL, 0, &e));
    CHECK_OK(ak_http_framer_write(&f, &b, "dropped", 7, &e));
    CHECK_OK(ak_http_framer_end(&f, &b, &e));
    CHECK_STR(b.ptr, "HTTP/1.1 200 OK\r\n\r\n");
    ak_buf_clear(&b);
    q = fake_req("GET", 1, 1);
    ak_http_framer_init(&f, &q);
    CHECK_OK(ak_http_framer_start(&f, &b, 204, NULL, 0, &e));
    CHECK_OK(ak_http_framer_end(&f, &b, &e));
    CHECK_STR(b.ptr, "HTTP/1.1 204 No Content\r\n\r\n");
    /* The caller's Connection: close ends keep-alive. */
    ak_buf_clear(&b);
    ak_http_framer_init(&f, &q);
    h[0].name = "Connection";
    h[0].value = "close";
    h[1].name = "Content-Length";
    h[1].value = "0";
    CHECK_OK(ak_http_framer_start(&f, &b, 200, h, 2, &e));
    CHECK_EQ(f.keep_alive, 0);
    CHECK_STR(b.ptr, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    ak_buf_free(&b);
}

static void framer_refuses_bad_heads(void) {
    ak_http_response_framer f;
    ak_http_server_request q = fake_req("GET", 1, 1);
    ak_header h[1];
    ak_buf b;
    ak_error e;
    char small[8];
    ak_buf_init(&b, NULL);
    ak_http_framer_init(&f, &q);
    CHECK_EQ(ak_http_framer_write(&f, &b, "x", 1, &e), AK_ERR_STATE);
    CHECK_EQ(ak_http_framer_end(&f, &b, &e), AK_ERR_STATE);
    CHECK_EQ(ak_http_framer_start(&f, &b, 100, NULL, 0, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_http_framer_start(&f, &b, 1000, NULL, 0, &e), AK_ERR_INVALID_ARGUMENT);
    h[0].name = "Transfer-Encoding";
    h[0].value = "chunked";
    CHECK_EQ(ak_http_framer_start(&f, &b, 200, h, 1, &e), AK_ERR_INVALID_ARGUMENT);
    h[0].name = "X";
    h[0].value = "a\r\nSet-Cookie: evil";
    CHECK_EQ(ak_http_framer_start(&f, &b, 200, h, 1, &e), AK_ERR_INVALID_ARGUMENT);
    h[0].name = "X Y";
    h[0].value = "v";
    CHECK_EQ(ak_http_framer_start(&f, &b, 200, h, 1, &e), AK_ERR_INVALID_ARGUMENT);
    h[0].name = "Content-Length";
    h[0].value = "abc";
    CHECK_EQ(ak_http_framer_start(&f, &b, 200, h, 1, &e), AK_ERR_INVALID_ARGUMENT);
    h[0].value = "0";
    CHECK_EQ(ak_http_framer_start(&f, &b, 204, h, 1, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(ak_http_framer_start(&f, &b, 200, NULL, 1, &e), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(b.len, 0);
    ak_buf_free(&b);
    ak_buf_init_fixed(&b, small, sizeof small);
    CHECK_EQ(ak_http_framer_start(&f, &b, 200, NULL, 0, &e), AK_ERR_OUT_OF_MEMORY);
    CHECK_EQ(b.len, 0);
    CHECK_EQ(f.keep_alive, 0);
}

/* A writer that frames into a buffer, to run ak_http_respond and the round trip. */
typedef struct buf_writer {
    ak_http_response_framer f;
    ak_buf out;
    int ended;
} buf_writer;
static ak_result bw_start(void *ud, int st, const ak_header *h, size_t n) {
    buf_writer *w = (buf_writer *)ud;
    return ak_http_framer_start(&w->f, &w->out, st, h, n, NULL);
}
static ak_result bw_write(void *ud, const char *d, size_t n) {
    buf_writer *w = (buf_writer *)ud;
    return ak_http_framer_write(&w->f, &w->out, d, n, NULL);
}
static ak_result bw_end(void *ud) {
    buf_writer *w = (buf_writer *)ud;
    w->ended++;
    return ak_http_framer_end(&w->f, &w->out, NULL);
}

static void framed_responses_parse_back(void) {
    buf_writer bw;
    ak_http_writer w;
    ak_http_server_request q = fake_req("GET", 1, 1);
    resp_result r;
    w.start = bw_start;
    w.write = bw_write;
    w.end = bw_end;
    w.ud = &bw;
    memset(&bw, 0, sizeof bw);
    ak_buf_init(&bw.out, NULL);
    ak_http_framer_init(&bw.f, &q);
    CHECK_OK(ak_http_respond(&w, 200, "application/json", "{\"ok\":true}", 11));
    CHECK_EQ(bw.ended, 1);
    resp_run(bw.out.ptr, bw.out.len, 0, NULL, 0, 0, &r);
    CHECK_EQ(r.rc, AK_OK);
    CHECK_STR(r.log, "S200 HContent-Type=application/json HContent-Length=11 {\"ok\":true}");
    /* A failing start still ends the writer, and the first error is returned. */
    ak_buf_clear(&bw.out);
    bw.ended = 0;
    ak_http_framer_init(&bw.f, &q);
    CHECK_EQ(ak_http_respond(&w, 42, NULL, "x", 1), AK_ERR_INVALID_ARGUMENT);
    CHECK_EQ(bw.ended, 1);
    /* Chunked streaming output parses back to the same bytes. */
    ak_buf_clear(&bw.out);
    ak_http_framer_init(&bw.f, &q);
    CHECK_OK(w.start(w.ud, 200, NULL, 0));
    CHECK_OK(w.write(w.ud, "alpha ", 6));
    CHECK_OK(w.write(w.ud, "beta", 4));
    CHECK_OK(w.end(w.ud));
    resp_run(bw.out.ptr, bw.out.len, 0, NULL, 1, 0, &r);
    CHECK_EQ(r.rc, AK_OK);
    CHECK_STR(r.log, "S200 HTransfer-Encoding=chunked alpha beta");
    ak_buf_free(&bw.out);
}

static void small_helpers(void) {
    ak_header h[2];
    CHECK_STR(ak_http_status_reason(431), "Request Header Fields Too Large");
    CHECK_STR(ak_http_status_reason(299), "");
    h[0].name = "Content-Type";
    h[0].value = "a";
    h[1].name = "content-type";
    h[1].value = "b";
    CHECK_STR(ak_http_header_get(h, 2, "CONTENT-TYPE"), "a");
    CHECK(ak_http_header_get(h, 2, "content") == NULL);
    CHECK(ak_http_header_get(NULL, 0, "x") == NULL);
    CHECK(ak_http_has_token("keep-alive, Upgrade", "upgrade"));
    CHECK(ak_http_has_token(" ,close ,", "close"));
    CHECK(!ak_http_has_token("closed", "close"));
    CHECK(!ak_http_has_token(NULL, "close"));
}

int main(void) {
    RUN(urls_are_split_into_parts);
    RUN(junk_urls_are_rejected_with_reasons);
    RUN(request_heads_are_written);
    RUN(request_heads_refuse_injection);
    RUN(responses_parse_the_same_however_split);
    RUN(malformed_responses_are_refused);
    RUN(response_limits_hold);
    RUN(cut_responses_are_truncated_not_complete);
    RUN(bytes_after_a_response_are_left_alone);
    RUN(a_stopped_sink_is_never_called_again);
    RUN(response_parser_survives_allocation_failure);
    RUN(requests_parse_the_same_however_split);
    RUN(bad_requests_get_the_right_status);
    RUN(request_limits_get_413_414_431);
    RUN(pipelined_requests_parse_one_after_another);
    RUN(expect_continue_is_flagged_while_the_body_is_owed);
    RUN(request_parser_survives_allocation_failure);
    RUN(framer_picks_the_framing);
    RUN(framer_refuses_bad_heads);
    RUN(framed_responses_parse_back);
    RUN(small_helpers);
    return t_summary();
}
