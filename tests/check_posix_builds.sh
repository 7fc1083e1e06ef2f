#!/bin/sh
# check_posix_builds.sh: the optional networking (AK_ENABLE_POSIX, AK_ENABLE_MBEDTLS) compiles
# as cleanly as the core: C99, C11, C++11, C++17, C++20 with gcc and clang, -Werror -pedantic
# -Wshadow -Wcast-qual (-Wc++-compat for C); tcc with AK_ENABLE_POSIX alone (Debian's mbedTLS
# headers refuse tcc); and a program using the transport, the server and TLS links.
cd "$(dirname "$0")/.." || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
WARN="-Wall -Wextra -Werror -pedantic -Wshadow -Wcast-qual"
DEFS="-DAK_ENABLE_POSIX -DAK_ENABLE_MBEDTLS"
LIBS="-lmbedtls -lmbedx509 -lmbedcrypto"
printf '#define AGENTKIT_IMPLEMENTATION\n#include "agentkit.h"\n' > "$tmp/impl.c"
cp "$tmp/impl.c" "$tmp/impl.cpp"
rc=0
for cc in "gcc -std=c99" "gcc -std=c11" "clang -std=c99" "clang -std=c11" \
          "g++ -std=c++11" "g++ -std=c++17" "g++ -std=c++20" "clang++ -std=c++11" "clang++ -std=c++17"; do
  src=$tmp/impl.c; case "$cc" in *++*) src=$tmp/impl.cpp;; esac
  $cc $WARN $DEFS -I. -c "$src" -o "$tmp/impl.o" || { echo "FAILED with: $cc $DEFS"; rc=1; }
done
gcc -std=c99 $WARN -Wc++-compat $DEFS -I. -c "$tmp/impl.c" -o "$tmp/impl.o" || { echo "FAILED with -Wc++-compat"; rc=1; }
tcc -DAK_ENABLE_POSIX -I. -c "$tmp/impl.c" -o "$tmp/tcc.o" || { echo "FAILED with tcc -DAK_ENABLE_POSIX"; rc=1; }
cat > "$tmp/use.c" <<'C'
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
static void handle(void *ud, const ak_http_server_request *req, ak_http_writer *w) {
    (void)ud, (void)req;
    ak_http_respond(w, 200, "text/plain", "ok", 2);
}
int main(void) {
    ak_context ctx;
    ak_posix_transport t;
    ak_posix_transport_desc td;
    ak_http_server s;
    ak_http_server_desc sd;
    ak_tls *tls = NULL;
    ak_tls_config cfg;
    memset(&td, 0, sizeof td);
    memset(&sd, 0, sizeof sd);
    memset(&cfg, 0, sizeof cfg);
    if (ak_context_init(&ctx, NULL) != AK_OK) return 1;
    td.ctx = &ctx;
    sd.ctx = &ctx;
    sd.handler = handle;
    if (ak_posix_transport_init(&t, &td, NULL) != AK_OK || ak_http_server_init(&s, &sd, NULL) != AK_OK) return 1;
    cfg.dangerously_skip_verification = 1;
    if (ak_tls_new(&ctx, &cfg, &tls, NULL) != AK_OK) return 1;
    ak_tls_free(tls);
    ak_http_server_free(&s);
    ak_posix_transport_free(&t);
    return 0;
}
C
gcc -std=c99 $WARN -D_DEFAULT_SOURCE $DEFS -I. "$tmp/use.c" -o "$tmp/use" $LIBS && "$tmp/use" ||
  { echo "FAILED: a program using the transport, server and TLS does not link or run"; rc=1; }
[ $rc -eq 0 ] && echo "posix + mbedTLS parts: 9 compilers/standards, -Wc++-compat, tcc, link + run: clean"
exit $rc
