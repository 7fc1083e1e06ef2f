/* >>tls.c: TLS client streams with mbedTLS (AK_ENABLE_MBEDTLS): verification on by default,
   CAs from a file, memory or the system bundle, SNI, a DRBG seeded from ak_random() */

#include "posix.c"

#ifdef AK_ENABLE_MBEDTLS
#ifndef AK_ENABLE_POSIX
#error "agentkit.h: AK_ENABLE_MBEDTLS needs AK_ENABLE_POSIX"
#endif

#include <mbedtls/version.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/error.h>
#if MBEDTLS_VERSION_NUMBER >= 0x03000000 && (defined(MBEDTLS_USE_PSA_CRYPTO) || defined(MBEDTLS_SSL_PROTO_TLS1_3))
#include <psa/crypto.h>
#define AK__TLS_PSA 1 /* 3.x: TLS 1.3 and USE_PSA builds need the PSA core up */
#endif

/* Where Linux distributions and BSDs keep the system's trusted CAs, when none is given. */
static const char *const ak__ca_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Arch, Alpine */
    "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
    "/etc/ssl/ca-bundle.pem",             /* openSUSE */
    "/etc/ssl/cert.pem",                  /* macOS, OpenBSD, FreeBSD */
};

struct ak_tls {
    ak_context *ctx;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_ctr_drbg_context drbg;
    char server_name[256];     /* cfg.server_name, copied; "" = the URL host */
};

typedef struct ak__tls_stream {
    ak_net_stream base;        /* first, so an ak_net_stream* is an ak__tls_stream* */
    ak_net_stream *inner;
    ak_tls *tls;
    mbedtls_ssl_context ssl;
    int ready;                 /* handshake done */
    ak_result io_rc;           /* what the inner stream last failed with */
    ak_error io_err;
    char name[256];            /* the name verified and sent as SNI */
} ak__tls_stream;

/* mbedTLS's text for an error code, or just the code when it was built without them. */
AK_PRIVATE void ak__tls_strerror(int code, char *out, size_t cap) {
#ifdef MBEDTLS_ERROR_C
    mbedtls_strerror(code, out, cap);
#else
    ak_buf b;
    ak_buf_init_fixed(&b, out, cap);
    ak_buf_printf(&b, "mbedTLS error");
#endif
}

AK_PRIVATE ak_result ak__tls_fail(ak_error *err, const char *what, int code) {
    char text[128];
    ak__tls_strerror(code, text, sizeof text);
    return ak_error_set(err, AK_ERR_TLS, "%s: %s (-0x%x)", what, text, (unsigned)-code);
}

/* The DRBG's entropy is the context's random hook: no global entropy pool. */
AK_PRIVATE int ak__tls_entropy(void *ud, unsigned char *out, size_t len) {
    return ak_random((ak_context *)ud, out, len) == AK_OK ? 0 : MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}

/* CA certificates in memory: DER (a SEQUENCE, first byte 0x30) as is; PEM must end with a
   NUL that its length counts, so a PEM buffer without one is copied and terminated. */
AK_PRIVATE ak_result ak__tls_load_pem(ak_tls *tls, const char *pem, size_t len, ak_error *err) {
    const ak_allocator *a = ak_context_allocator(tls->ctx);
    char *copy;
    int rc;
    if ((len && pem[len - 1] == 0) || (len && AK__U8(pem[0]) == 0x30)) {
        rc = mbedtls_x509_crt_parse(&tls->ca, (const unsigned char *)pem, len);
    } else {
        copy = (char *)ak_alloc(a, len + 1);
        if (!copy) return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory for the CA certificates");
        AK_MEMCPY(copy, pem, len);
        copy[len] = 0;
        rc = mbedtls_x509_crt_parse(&tls->ca, (const unsigned char *)copy, len + 1);
        ak_free(a, copy, len + 1);
    }
    if (rc < 0) return ak__tls_fail(err, "cannot parse the CA certificates", rc);
    return AK_OK;
}

/* Loads the trusted CAs: the file, the memory buffer, or the first system bundle found. */
AK_PRIVATE ak_result ak__tls_load_cas(ak_tls *tls, const ak_tls_config *cfg, ak_error *err) {
    size_t i;
    int rc;
    if (cfg->ca_pem) return ak__tls_load_pem(tls, cfg->ca_pem, cfg->ca_pem_len, err);
#ifdef MBEDTLS_FS_IO
    if (cfg->ca_file) {
        rc = mbedtls_x509_crt_parse_file(&tls->ca, cfg->ca_file);
        if (rc < 0) {
            char what[300];
            ak_buf b;
            ak_buf_init_fixed(&b, what, sizeof what);
            ak_buf_printf(&b, "cannot load CA file %s", cfg->ca_file);
            return ak__tls_fail(err, what, rc);
        }
        return AK_OK;
    }
    for (i = 0; i < AK__COUNTOF(ak__ca_bundles); i++)
        if (mbedtls_x509_crt_parse_file(&tls->ca, ak__ca_bundles[i]) >= 0) return AK_OK;
#else
    AK__UNUSED(i), AK__UNUSED(rc);
    if (cfg->ca_file)
        return ak_error_set(err, AK_ERR_UNSUPPORTED, "this mbedTLS has no file support: use tls.ca_pem");
#endif
    return ak_error_set(err, AK_ERR_TLS, "no trusted CA certificates found: set tls.ca_file or tls.ca_pem");
}

AK_PRIVATE ak_result ak__tls_configure(ak_tls *tls, const ak_tls_config *cfg, ak_error *err) {
    static const char personal[] = "agentkit.h tls";
    int rc;
    ak_result r;
#ifdef AK__TLS_PSA
    if (psa_crypto_init() != PSA_SUCCESS) return ak_error_set(err, AK_ERR_TLS, "psa_crypto_init failed");
#endif
    rc = mbedtls_ctr_drbg_seed(&tls->drbg, ak__tls_entropy, tls->ctx, (const unsigned char *)personal,
                               sizeof personal - 1);
    if (rc) return ak__tls_fail(err, "cannot seed the TLS random generator from ak_random", rc);
    rc = mbedtls_ssl_config_defaults(&tls->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                     MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc) return ak__tls_fail(err, "cannot set up TLS", rc);
    mbedtls_ssl_conf_rng(&tls->conf, mbedtls_ctr_drbg_random, &tls->drbg);
#if MBEDTLS_VERSION_NUMBER >= 0x03020000 /* 3.2 replaced the (major, minor) form */
    mbedtls_ssl_conf_min_tls_version(&tls->conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
    mbedtls_ssl_conf_min_version(&tls->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
    if (cfg->dangerously_skip_verification) {
        mbedtls_ssl_conf_authmode(&tls->conf, MBEDTLS_SSL_VERIFY_NONE);
        ak_log(tls->ctx, AK_LOG_WARN, "TLS: certificate verification is DISABLED");
        return AK_OK;
    }
    if ((r = ak__tls_load_cas(tls, cfg, err)) != AK_OK) return r;
    mbedtls_ssl_conf_authmode(&tls->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&tls->conf, &tls->ca, NULL);
    return AK_OK;
}

AKDEF ak_result ak_tls_new(ak_context *ctx, const ak_tls_config *cfg, ak_tls **out, ak_error *err) {
    ak_tls_config none;
    ak_tls *tls;
    ak_result rc;
    size_t n;
    *out = NULL;
    if (!ctx) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "TLS needs a context");
    if (!cfg) {
        AK_MEMSET(&none, 0, sizeof none);
        cfg = &none;
    }
    n = cfg->server_name ? ak__strlen(cfg->server_name) : 0;
    if (n >= sizeof tls->server_name) return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "TLS server name too long");
    tls = (ak_tls *)ak_alloc(ak_context_allocator(ctx), sizeof *tls);
    if (!tls) return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory for TLS");
    AK_MEMSET(tls, 0, sizeof *tls);
    tls->ctx = ctx;
    if (n) AK_MEMCPY(tls->server_name, cfg->server_name, n);
    mbedtls_ssl_config_init(&tls->conf);
    mbedtls_x509_crt_init(&tls->ca);
    mbedtls_ctr_drbg_init(&tls->drbg);
    if ((rc = ak__tls_configure(tls, cfg, err)) != AK_OK) {
        ak_tls_free(tls);
        return rc;
    }
    *out = tls;
    return AK_OK;
}

AKDEF void ak_tls_free(ak_tls *tls) {
    if (!tls) return;
    mbedtls_ssl_config_free(&tls->conf);
    mbedtls_x509_crt_free(&tls->ca);
    mbedtls_ctr_drbg_free(&tls->drbg);
    ak_free(ak_context_allocator(tls->ctx), tls, sizeof *tls);
}

/* ---- the TLS stream: mbedTLS over the inner stream ---- */

/* mbedTLS's I/O callbacks: the inner stream's results in mbedTLS terms. An inner error is
   kept so the caller sees "connection reset", not a generic TLS failure. */
AK_PRIVATE int ak__tls_io_rc(ak__tls_stream *t, ak_result rc, size_t n, int want_code) {
    if (rc == AK_OK) return (int)n;
    if (rc == AK_PENDING) return want_code;
    t->io_rc = rc;
    return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
}

AK_PRIVATE int ak__tls_send(void *ud, const unsigned char *buf, size_t len) {
    ak__tls_stream *t = (ak__tls_stream *)ud;
    size_t sent = 0;
    ak_result rc;
    if (len > 0x7FFFFFFF) len = 0x7FFFFFFF;
    rc = t->inner->vt->write(t->inner, buf, len, &sent, &t->io_err);
    return ak__tls_io_rc(t, rc, sent, MBEDTLS_ERR_SSL_WANT_WRITE);
}

AK_PRIVATE int ak__tls_recv(void *ud, unsigned char *buf, size_t len) {
    ak__tls_stream *t = (ak__tls_stream *)ud;
    size_t got = 0;
    ak_result rc;
    if (len > 0x7FFFFFFF) len = 0x7FFFFFFF;
    rc = t->inner->vt->read(t->inner, buf, len, &got, &t->io_err);
    return ak__tls_io_rc(t, rc, got, MBEDTLS_ERR_SSL_WANT_READ);
}

/* WANT_READ / WANT_WRITE become AK_PENDING with the matching wish. */
AK_PRIVATE int ak__tls_would_block(ak__tls_stream *t, int rc) {
    t->base.fd = t->inner->fd;
    if (rc == MBEDTLS_ERR_SSL_WANT_READ) t->base.want = AK_NET_WANT_READ;
    else if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) t->base.want = AK_NET_WANT_WRITE;
    else return 0;
    return 1;
}

/* A failed handshake: the certificate problem in mbedTLS's words when there is one. */
AK_PRIVATE ak_result ak__tls_handshake_error(ak__tls_stream *t, int rc, ak_error *err) {
    uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
    char info[512], *p;
    if (t->io_rc != AK_OK) return ak_error_set(err, t->io_rc, "TLS handshake with %s: %s", t->name, t->io_err.message);
    if (flags && flags != (uint32_t)-1) {
#if !defined(MBEDTLS_X509_REMOVE_INFO)
        if (mbedtls_x509_crt_verify_info(info, sizeof info, "", flags) < 0) info[0] = 0;
        for (p = info; *p; p++) /* one line: ';' between the reasons */
            if (*p == '\n') *p = p[1] ? ';' : 0;
#else
        ak_buf b;
        ak_buf_init_fixed(&b, info, sizeof info);
        ak_buf_printf(&b, "verify flags 0x%x", (unsigned)flags);
        AK__UNUSED(p);
#endif
        return ak_error_set(err, AK_ERR_TLS, "certificate verification failed for %s: %s", t->name, info);
    }
    {
        char what[300];
        ak_buf b;
        ak_buf_init_fixed(&b, what, sizeof what);
        ak_buf_printf(&b, "TLS handshake with %s failed", t->name);
        return ak__tls_fail(err, what, rc);
    }
}

AK_PRIVATE ak_result ak__tls_connect(ak_net_stream *s, ak_error *err) {
    ak__tls_stream *t = (ak__tls_stream *)s;
    ak_result rc;
    int r;
    if (t->ready) return AK_OK;
    rc = t->inner->vt->connect(t->inner, err);
    s->fd = t->inner->fd;
    s->want = t->inner->want;
    if (rc != AK_OK) return rc;
    r = mbedtls_ssl_handshake(&t->ssl);
    if (r == 0) {
        t->ready = 1;
        return AK_OK;
    }
    if (ak__tls_would_block(t, r)) return AK_PENDING;
    return ak__tls_handshake_error(t, r, err);
}

AK_PRIVATE ak_result ak__tls_error(ak__tls_stream *t, int r, const char *what, ak_error *err) {
    if (t->io_rc != AK_OK) return ak_error_set(err, t->io_rc, "%s", t->io_err.message);
    return ak__tls_fail(err, what, r);
}

AK_PRIVATE ak_result ak__tls_read(ak_net_stream *s, void *buf, size_t cap, size_t *got, ak_error *err) {
    ak__tls_stream *t = (ak__tls_stream *)s;
    int r;
    *got = 0;
    for (;;) {
        r = mbedtls_ssl_read(&t->ssl, (unsigned char *)buf, cap);
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
        if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) continue; /* TLS 1.3 (3.x) */
#endif
        break;
    }
    if (r > 0) {
        *got = (size_t)r;
        return AK_OK;
    }
    if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return AK_OK; /* the end */
    /* The TCP connection ended without a close_notify: not a clean end (the bytes before
       may be cut short), but a closed connection, which is what a stale keep-alive
       connection looks like and what a reused one may be retried after. */
    if (r == MBEDTLS_ERR_SSL_CONN_EOF && t->io_rc == AK_OK)
        return ak_error_set(err, AK_ERR_CLOSED, "connection closed without a TLS close_notify");
    if (ak__tls_would_block(t, r)) return AK_PENDING;
    return ak__tls_error(t, r, "TLS read failed", err);
}

AK_PRIVATE ak_result ak__tls_write(ak_net_stream *s, const void *buf, size_t len, size_t *sent,
                                   ak_error *err) {
    ak__tls_stream *t = (ak__tls_stream *)s;
    int r = mbedtls_ssl_write(&t->ssl, (const unsigned char *)buf, len);
    *sent = 0;
    if (r >= 0) {
        *sent = (size_t)r;
        return AK_OK;
    }
    if (ak__tls_would_block(t, r)) return AK_PENDING;
    return ak__tls_error(t, r, "TLS write failed", err);
}

AK_PRIVATE void ak__tls_close(ak_net_stream *s) {
    ak__tls_stream *t = (ak__tls_stream *)s;
    if (t->ready) (void)mbedtls_ssl_close_notify(&t->ssl); /* best effort, never waits */
    mbedtls_ssl_free(&t->ssl);
    t->inner->vt->close(t->inner);
    ak_free(ak_context_allocator(t->tls->ctx), t, sizeof *t);
}

static const ak_net_stream_vtable ak__tls_vtable = {
    ak__tls_connect, ak__tls_read, ak__tls_write, ak__tls_close
};

AKDEF ak_result ak_tls_stream_wrap(ak_tls *tls, ak_net_stream *inner, const char *host,
                                   size_t host_len, ak_net_stream **out, ak_error *err) {
    ak__tls_stream *t;
    int rc;
    *out = NULL;
    if (!tls || !inner || (!tls->server_name[0] && (!host || !host_len || host_len >= sizeof t->name))) {
        if (inner) inner->vt->close(inner);
        return ak_error_set(err, AK_ERR_INVALID_ARGUMENT, "TLS needs a stream and a host name");
    }
    t = (ak__tls_stream *)ak_alloc(ak_context_allocator(tls->ctx), sizeof *t);
    if (!t) {
        inner->vt->close(inner);
        return ak_error_set(err, AK_ERR_OUT_OF_MEMORY, "out of memory for a TLS stream");
    }
    AK_MEMSET(t, 0, sizeof *t);
    t->base.vt = &ak__tls_vtable;
    t->base.fd = inner->fd;
    t->inner = inner;
    t->tls = tls;
    if (tls->server_name[0]) AK_MEMCPY(t->name, tls->server_name, ak__strlen(tls->server_name));
    else AK_MEMCPY(t->name, host, host_len);
    mbedtls_ssl_init(&t->ssl);
    *out = &t->base; /* from here on, closing it cleans up everything */
    if ((rc = mbedtls_ssl_setup(&t->ssl, &tls->conf)) != 0) goto fail;
    if ((rc = mbedtls_ssl_set_hostname(&t->ssl, t->name)) != 0) goto fail; /* SNI + name check */
    mbedtls_ssl_set_bio(&t->ssl, t, ak__tls_send, ak__tls_recv, NULL);
    return AK_OK;
fail:
    ak__tls_close(&t->base);
    *out = NULL;
    return ak__tls_fail(err, "cannot set up a TLS session", rc);
}

/* The transport's https: one shared ak_tls, made on first use. */
AK_PRIVATE ak_result ak__transport_wrap_tls(ak_posix_transport *t, const ak_url *u,
                                            ak_net_stream **s, ak_error *err) {
    ak_net_stream *inner = *s;
    ak_result rc;
    *s = NULL;
    if (!t->tls) {
        ak_tls *tls;
        if ((rc = ak_tls_new(t->desc.ctx, &t->desc.tls, &tls, err)) != AK_OK) {
            inner->vt->close(inner);
            return rc;
        }
        t->tls = tls;
    }
    return ak_tls_stream_wrap((ak_tls *)t->tls, inner, u->host, u->host_len, s, err);
}

#endif /* AK_ENABLE_MBEDTLS */
