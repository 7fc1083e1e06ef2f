/* HTTPS through the POSIX transport and mbedTLS, against `openssl s_server` started by the
   test on 127.0.0.1 with a CA and certificates the test makes with the openssl CLI in a
   temporary directory. The server is killed by PID and the directory removed at exit. */
#include "test.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static int slow = 1;
static char dir[512];
static pid_t server_pid, node_pid;
static int server_port, node_port;

/* Every file the test makes, so cleanup can remove them with unlink(), which a signal
   handler may call (a shell "rm -rf" it may not). */
static const char *const made[] = {"ca.crt", "ca.key", "ca.srl", "node.log", "openssl.log", "rogue.crt", "rogue.key",
                                   "s_server.log", "server.crt", "server.csr", "server.ext", "server.key"};
static char made_paths[sizeof made / sizeof made[0]][600];

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Stops the server and removes the directory: at exit, and on SIGINT/SIGTERM/SIGHUP/
   SIGALRM (async-signal-safe calls only). */
static void stop(pid_t *pid) {
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
    }
    *pid = 0;
}

static void cleanup(void) {
    size_t i;
    stop(&server_pid);
    stop(&node_pid);
    if (!dir[0]) return;
    for (i = 0; i < sizeof made / sizeof made[0]; i++) unlink(made_paths[i]);
    rmdir(dir);
    dir[0] = 0;
}

static void on_signal(int sig) {
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

/* Runs an openssl command in the temporary directory; 0 on success. */
static int openssl(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && openssl %s >>openssl.log 2>&1", dir, args);
    return system(cmd);
}

/* A CA, a server certificate for localhost signed by it, and a second CA nobody trusts. */
static int make_certs(void) {
    FILE *f;
    char ext[600];
    path_of(ext, sizeof ext, "server.ext");
    f = fopen(ext, "w");
    if (!f) return -1;
    fputs("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
          "subjectAltName=DNS:localhost,IP:127.0.0.1\n", f);
    fclose(f);
    return openssl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt "
                   "-days 2 -subj /CN=agentkit-test-CA -addext basicConstraints=critical,CA:TRUE "
                   "-addext keyUsage=critical,keyCertSign,cRLSign") ||
           openssl("req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr "
                   "-subj /CN=localhost") ||
           openssl("x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 "
                   "-extfile server.ext") ||
           openssl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout rogue.key -out rogue.crt "
                   "-days 2 -subj /CN=rogue-CA");
}

/* Runs argv (a server) with its output going to the log `log_name`, and reads its port
   from the "ACCEPT 127.0.0.1:<port>" line it prints there. */
static int spawn_server(char *const argv[], const char *log_name, pid_t *pid, int *port) {
    char log[600];
    long long end;
    path_of(log, sizeof log, log_name);
    *pid = fork();
    if (*pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with the test, even a SIGKILLed one */
#endif
        if (fd < 0) _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (*pid < 0) return -1;
    end = now_ms() + 10000;
    while (now_ms() < end) {
        size_t len;
        char *text = t_read_file(log, &len);
        const char *p = text ? strstr(text, "ACCEPT 127.0.0.1:") : NULL;
        if (p && strchr(p, '\n')) *port = atoi(p + 17);
        free(text);
        if (*port > 0) return 0;
        usleep(20000);
    }
    return -1;
}

/* `openssl s_server -www`: one HTTP/1.0 answer per connection. */
static int start_server(void) {
    char cert[600], key[600];
    char *argv[] = {(char *)"openssl", (char *)"s_server", (char *)"-accept", (char *)"127.0.0.1:0", (char *)"-cert",
                    cert, (char *)"-key", key, (char *)"-www", NULL};
    path_of(cert, sizeof cert, "server.crt");
    path_of(key, sizeof key, "server.key");
    return spawn_server(argv, "s_server.log", &server_pid, &server_port);
}

/* Node's HTTPS server, which keeps connections alive. Each answer says which connection
   (numbered as they are accepted) and which request on it it was. After "/arm", the next
   request on that connection is met with a close without a TLS close_notify; after "/bye"
   the server closes the connection (cleanly, without saying so in the response). */
static const char node_server[] =
    "const fs = require('fs'), https = require('https'); let conns = 0;"
    "const srv = https.createServer({cert: fs.readFileSync(process.argv[1]), key: fs.readFileSync(process.argv[2])},"
    "  (req, res) => { const s = req.socket; s.reqs = (s.reqs || 0) + 1;"
    "    if (s.armed) { s.destroy(); return; }"
    "    s.armed = req.url === '/arm';"
    "    const body = 'conn=' + s.conn + ' req=' + s.reqs;"
    "    res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': body.length});"
    "    res.end(body);"
    "    if (req.url === '/bye') res.on('finish', () => s.end()); });"
    "srv.on('secureConnection', s => { s.conn = ++conns; });"
    "srv.keepAliveTimeout = 60000;"
    "srv.listen(0, '127.0.0.1', () => console.log('ACCEPT 127.0.0.1:' + srv.address().port));";

static int start_node_server(void) {
    char cert[600], key[600];
    char *argv[] = {(char *)"node", (char *)"-e", (char *)node_server, cert, key, NULL};
    if (node_pid > 0) return 0;
    path_of(cert, sizeof cert, "server.crt");
    path_of(key, sizeof key, "server.key");
    return spawn_server(argv, "node.log", &node_pid, &node_port);
}

/* ---- one HTTPS exchange ---------------------------------------------------------------------- */

typedef struct tsink {
    ak_http_sink sink;
    int status, done;
    ak_result rc;
    char msg[AK_ERROR_MAX];
    char body[8192];
    size_t body_len;
} tsink;

static ak_result ts_status(ak_http_sink *s, int status) {
    ((tsink *)s->ud)->status = status;
    return AK_OK;
}
static ak_result ts_body(ak_http_sink *s, const char *d, size_t n) {
    tsink *t = (tsink *)s->ud;
    if (n > sizeof t->body - 1 - t->body_len) n = sizeof t->body - 1 - t->body_len;
    memcpy(t->body + t->body_len, d, n);
    t->body_len += n;
    t->body[t->body_len] = 0;
    return AK_OK;
}
static void ts_done(ak_http_sink *s, ak_result rc, const char *msg) {
    tsink *t = (tsink *)s->ud;
    t->done++;
    t->rc = rc;
    snprintf(t->msg, sizeof t->msg, "%s", msg ? msg : "");
}

typedef struct env {
    t_alloc ta;
    ak_context ctx;
    int random_calls;
    int random_fails;
} env;

static ak_result counting_random(void *ud, void *buf, size_t len) {
    env *e = (env *)ud;
    size_t i;
    e->random_calls++;
    if (e->random_fails) return AK_ERR_NO_RANDOM;
    for (i = 0; i < len; i++) ((unsigned char *)buf)[i] = (unsigned char)rand(); /* a test: any bytes do */
    return AK_OK;
}

static void env_init(env *e) {
    ak_context_desc d;
    memset(&d, 0, sizeof d);
    memset(e, 0, sizeof *e);
    d.allocator = *t_alloc_init(&e->ta, 0);
    d.random = counting_random;
    d.user_data = e;
    ak_context_init(&e->ctx, &d);
}

static void tsink_init(tsink *s) {
    memset(s, 0, sizeof *s);
    s->sink.on_status = ts_status;
    s->sink.on_body = ts_body;
    s->sink.on_done = ts_done;
    s->sink.ud = s;
    s->rc = AK_PENDING;
}

static void transport_init(ak_posix_transport *t, const ak_tls_config *tls, int nonblocking, env *e) {
    ak_posix_transport_desc d;
    memset(&d, 0, sizeof d);
    d.ctx = &e->ctx;
    d.nonblocking = nonblocking;
    if (tls) d.tls = *tls;
    CHECK_OK(ak_posix_transport_init(t, &d, NULL));
}

/* GETs url through t; the sink's result is in s. */
static void get_on(ak_posix_transport *t, const char *url, tsink *s) {
    ak_http_request req;
    long long end;
    tsink_init(s);
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.url = url;
    req.timeout_ms = 10000 * slow;
    CHECK_OK(t->transport.start(t->transport.ud, &req, &s->sink, NULL));
    end = now_ms() + 10000 * slow;
    while (!s->done && now_ms() < end) ak_posix_transport_poll(t, 20);
    CHECK_EQ(s->done, 1);
}

/* GETs url through a fresh transport with `tls`; returns the sink's result. */
static void https_get(const char *url, const ak_tls_config *tls, int nonblocking, tsink *s, env *e) {
    ak_posix_transport t;
    transport_init(&t, tls, nonblocking, e);
    get_on(&t, url, s);
    ak_posix_transport_free(&t);
    CHECK_EQ(e->ta.live, 0);
}

static void url_of(char *url, size_t cap, const char *host) {
    snprintf(url, cap, "https://%s:%d/", host, server_port);
}

static ak_tls_config trusting(const char *ca, const char *name) {
    static char path[600];
    ak_tls_config c;
    memset(&c, 0, sizeof c);
    path_of(path, sizeof path, ca);
    c.ca_file = path;
    c.server_name = name;
    return c;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void handshake_and_data_with_a_trusted_ca(void) {
    env e;
    tsink s;
    char url[128];
    ak_tls_config c = trusting("ca.crt", "localhost");
    env_init(&e);
    url_of(url, sizeof url, "127.0.0.1"); /* 2.28 cannot match IP SANs: verify "localhost" */
    https_get(url, &c, 0, &s, &e);
    CHECK_MSG(s.rc == AK_OK, "%s", s.msg);
    CHECK_EQ(s.status, 200);
    CHECK_MSG(strstr(s.body, "s_server") != NULL, "body: %.200s", s.body);
    CHECK(e.random_calls > 0); /* the DRBG was seeded from the context's random hook */
    https_get(url, &c, 1, &s, &e); /* non-blocking: the handshake advances in poll() */
    CHECK_MSG(s.rc == AK_OK, "%s", s.msg);
    CHECK_EQ(s.status, 200);
}

static void the_url_host_is_verified_by_default(void) {
    env e;
    tsink s;
    char url[128];
    ak_tls_config c = trusting("ca.crt", NULL);
    env_init(&e);
    url_of(url, sizeof url, "localhost"); /* resolves to ::1 and 127.0.0.1: the second answers */
    https_get(url, &c, 0, &s, &e);
    CHECK_MSG(s.rc == AK_OK, "%s", s.msg);
    CHECK_EQ(s.status, 200);
}

static void cas_load_from_memory(void) {
    env e;
    tsink s;
    char url[128], path[600];
    size_t len;
    char *pem;
    ak_tls_config c;
    env_init(&e);
    path_of(path, sizeof path, "ca.crt");
    pem = t_read_file(path, &len);
    CHECK(pem != NULL);
    if (!pem) return;
    memset(&c, 0, sizeof c);
    c.ca_pem = pem;
    c.ca_pem_len = len; /* without the NUL mbedTLS wants: copied and terminated */
    c.server_name = "localhost";
    url_of(url, sizeof url, "127.0.0.1");
    https_get(url, &c, 0, &s, &e);
    CHECK_MSG(s.rc == AK_OK, "%s", s.msg);
    c.ca_pem_len = len + 1; /* with it */
    https_get(url, &c, 0, &s, &e);
    CHECK_MSG(s.rc == AK_OK, "%s", s.msg);
    c.ca_pem_len = len / 2; /* cut */
    https_get(url, &c, 0, &s, &e);
    CHECK_EQ(s.rc, AK_ERR_TLS);
    CHECK_MSG(strstr(s.msg, "cannot parse the CA certificates") != NULL, "%s", s.msg);
    free(pem);
}

static void an_untrusted_ca_is_rejected(void) {
    env e;
    tsink s;
    char url[128];
    ak_tls_config c = trusting("rogue.crt", "localhost");
    env_init(&e);
    url_of(url, sizeof url, "127.0.0.1");
    https_get(url, &c, 0, &s, &e);
    CHECK_EQ(s.rc, AK_ERR_TLS);
    CHECK_MSG(strstr(s.msg, "certificate verification failed for localhost") != NULL, "%s", s.msg);
    CHECK_MSG(strstr(s.msg, "not correctly signed by the trusted CA") != NULL, "%s", s.msg);
    CHECK_EQ(s.status, 0);
}

static void a_wrong_host_name_is_rejected(void) {
    env e;
    tsink s;
    char url[128];
    ak_tls_config c = trusting("ca.crt", "api.example.com");
    env_init(&e);
    url_of(url, sizeof url, "127.0.0.1");
    https_get(url, &c, 0, &s, &e);
    CHECK_EQ(s.rc, AK_ERR_TLS);
    CHECK_MSG(strstr(s.msg, "api.example.com") != NULL && strstr(s.msg, "(CN) does not match") != NULL, "%s", s.msg);
}

static void skipping_verification_takes_a_loud_opt_out(void) {
    env e;
    tsink s;
    char url[128];
    ak_tls_config c = trusting("rogue.crt", "whatever");
    c.dangerously_skip_verification = 1;
    env_init(&e);
    url_of(url, sizeof url, "127.0.0.1");
    https_get(url, &c, 0, &s, &e);
    CHECK_MSG(s.rc == AK_OK, "%s", s.msg);
    CHECK_EQ(s.status, 200);
}

static void setup_failures_are_clear(void) {
    env e;
    tsink s;
    char url[128];
    ak_tls_config c = trusting("missing.crt", "localhost");
    ak_tls *tls = NULL;
    ak_error err;
    env_init(&e);
    url_of(url, sizeof url, "127.0.0.1");
    https_get(url, &c, 0, &s, &e);
    CHECK_EQ(s.rc, AK_ERR_TLS);
    CHECK_MSG(strstr(s.msg, "cannot load CA file") && strstr(s.msg, "missing.crt"), "%s", s.msg);
    /* No entropy, no TLS: the DRBG is only ever seeded from the context's source. */
    c = trusting("ca.crt", "localhost");
    e.random_fails = 1;
    CHECK_EQ(ak_tls_new(&e.ctx, &c, &tls, &err), AK_ERR_TLS);
    CHECK_MSG(strstr(err.message, "cannot seed") != NULL, "%s", err.message);
    CHECK(tls == NULL);
    e.random_fails = 0;
    CHECK_EQ(ak_tls_new(NULL, &c, &tls, &err), AK_ERR_INVALID_ARGUMENT);
    c.server_name = NULL; /* so the stream needs a host name */
    CHECK_OK(ak_tls_new(&e.ctx, &c, &tls, &err));
    {
        ak_net_stream *st = NULL, *inner = NULL;
        CHECK_OK(ak_tcp_stream_open(NULL, "127.0.0.1", 9, 1, &inner, &err));
        CHECK_EQ(ak_tls_stream_wrap(tls, inner, NULL, 0, &st, &err), AK_ERR_INVALID_ARGUMENT);
        CHECK(st == NULL); /* inner was closed by the failed wrap */
    }
    ak_tls_free(tls);
    CHECK_EQ(e.ta.live, 0);
}

static void plain_http_to_a_tls_server_fails_fast(void) {
    env e;
    tsink s;
    char url[128];
    long long t0 = now_ms();
    env_init(&e);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", server_port);
    https_get(url, NULL, 0, &s, &e);
    /* OpenSSL 3.0 closes without a word; versions that send an alert get "not HTTP". */
    CHECK_MSG((s.rc == AK_ERR_HTTP && strstr(s.msg, "did not answer with HTTP")) ||
              (s.rc == AK_ERR_CLOSED && strstr(s.msg, "before a response")), "%d %s", (int)s.rc, s.msg);
    CHECK(now_ms() - t0 < 3000 * slow);
}

static void plain_handler(void *ud, const ak_http_server_request *req, ak_http_writer *w) {
    (void)ud;
    (void)req;
    ak_http_respond(w, 200, "text/plain", "plain", 5);
}

/* Our own plain HTTP server, in process: it answers the ClientHello with a 400. */
static void a_server_that_speaks_no_tls_fails_the_handshake(void) {
    env e;
    tsink s;
    char url[128];
    ak_tls_config c = trusting("ca.crt", "localhost");
    ak_http_server srv;
    ak_http_server_desc d;
    ak_posix_transport t;
    ak_posix_transport_desc td;
    ak_http_request req;
    long long end;
    env_init(&e);
    memset(&d, 0, sizeof d);
    d.ctx = &e.ctx;
    d.handler = plain_handler;
    CHECK_OK(ak_http_server_init(&srv, &d, NULL));
    memset(&td, 0, sizeof td);
    td.ctx = &e.ctx;
    td.nonblocking = 1;
    td.tls = c;
    CHECK_OK(ak_posix_transport_init(&t, &td, NULL));
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", ak_http_server_port(&srv));
    memset(&s, 0, sizeof s);
    s.sink.on_status = ts_status;
    s.sink.on_body = ts_body;
    s.sink.on_done = ts_done;
    s.sink.ud = &s;
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.url = url;
    CHECK_OK(t.transport.start(t.transport.ud, &req, &s.sink, NULL));
    end = now_ms() + 5000 * slow;
    while (!s.done && now_ms() < end) {
        ak_posix_transport_poll(&t, 5);
        ak_http_server_poll(&srv, 5);
    }
    CHECK_EQ(s.done, 1);
    CHECK_EQ(s.rc, AK_ERR_TLS);
    CHECK_MSG(strstr(s.msg, "TLS handshake with localhost failed") != NULL, "%s", s.msg);
    ak_posix_transport_free(&t);
    ak_http_server_free(&srv);
    CHECK_EQ(e.ta.live, 0);
}

/* Against a keep-alive HTTPS server: requests share one TLS connection (one handshake);
   a connection the server closed while idle is replaced; a kept connection closed without
   a close_notify when the next request arrives gets that request sent again, once, on a
   new connection. */
static void a_kept_tls_connection_serves_the_next_request(void) {
    static const char *const want[] = {"conn=1 req=1", "conn=1 req=2", "conn=1 req=3", "conn=2 req=1",
                                       "conn=2 req=2", "conn=3 req=1", "conn=3 req=2", "conn=3 req=3"};
    static const char *const paths[] = {"/", "/", "/bye", "/", "/arm", "/", "/", "/"};
    int mode;
    if (start_node_server() != 0) {
        CHECK_MSG(0, "cannot start node's HTTPS server");
        return;
    }
    for (mode = 0; mode < 2; mode++) {
        env e;
        tsink s;
        ak_posix_transport t;
        ak_tls_config c = trusting("ca.crt", "localhost");
        char url[128];
        size_t i;
        env_init(&e);
        transport_init(&t, &c, mode, &e);
        for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
            char want_conn[16];
            snprintf(url, sizeof url, "https://127.0.0.1:%d%s", node_port, paths[i]);
            if (i == 3) usleep(100000 * slow); /* the "/bye" close has arrived */
            get_on(&t, url, &s);
            CHECK_MSG(s.rc == AK_OK, "%s: %s", paths[i], s.msg);
            /* each transport gets its own numbers: the second starts where the first ended */
            snprintf(want_conn, sizeof want_conn, "conn=%d", atoi(want[i] + 5) + 3 * mode);
            CHECK_MSG(strncmp(s.body, want_conn, strlen(want_conn)) == 0 && strstr(s.body, strchr(want[i], ' ')),
                      "%s: got %s, want %s %s", paths[i], s.body, want_conn, strchr(want[i], ' ') + 1);
        }
        CHECK_EQ(ak_posix_transport_idle(&t), 1);
        ak_posix_transport_free(&t);
        CHECK_EQ(e.ta.live, 0);
    }
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    if (getenv("AK_VALGRIND")) slow = 5;
    snprintf(dir, sizeof dir, "%s/ak_tls_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp failed: %s\n", strerror(errno));
        return 1;
    }
    {
        size_t i;
        for (i = 0; i < sizeof made / sizeof made[0]; i++) path_of(made_paths[i], sizeof made_paths[i], made[i]);
    }
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGALRM, on_signal);
    if (make_certs() != 0 || start_server() != 0) {
        char log[600];
        size_t len;
        char *text;
        path_of(log, sizeof log, "openssl.log");
        text = t_read_file(log, &len);
        fprintf(stderr, "cannot set up openssl: %s\n", text ? text : "(no log)");
        free(text);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    RUN(handshake_and_data_with_a_trusted_ca);
    RUN(the_url_host_is_verified_by_default);
    RUN(cas_load_from_memory);
    RUN(an_untrusted_ca_is_rejected);
    RUN(a_wrong_host_name_is_rejected);
    RUN(skipping_verification_takes_a_loud_opt_out);
    RUN(setup_failures_are_clear);
    RUN(a_server_that_speaks_no_tls_fails_the_handshake);
    RUN(plain_http_to_a_tls_server_fails_fast);
    RUN(a_kept_tls_connection_serves_the_next_request);
    cleanup();
    return t_summary();
}
