#!/bin/sh
# check.sh: everything `make check` verifies beyond `make test`. Each step prints one line;
# the script fails if any step fails. Steps needing a missing tool fail, they do not skip.
set -u
cd "$(dirname "$0")/.."
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
WARN="-Wall -Wextra -Werror -pedantic"

step() { # name command...
  name=$1; shift
  if "$@" >"$tmp/log" 2>&1; then
    echo "ok    $name"
  else
    echo "FAIL  $name"
    sed 's/^/      /' "$tmp/log" | tail -n 40
    fails=$((fails + 1))
  fi
}

amalgamation_fresh() {
  ./amalgamate && git diff --exit-code -- agentkit.h
}

impl_tu() { # file: a TU with the implementation
  printf '#define AGENTKIT_IMPLEMENTATION\n#include "agentkit.h"\nint ak_check_main(void);\nint ak_check_main(void) { return ak_version()[0] == 0; }\n' > "$1"
}

compile_matrix() {
  impl_tu "$tmp/impl.c"
  cp "$tmp/impl.c" "$tmp/impl.cpp"
  for cc in "gcc -std=c99" "gcc -std=c11" "clang -std=c99" "clang -std=c11" \
            "g++ -std=c++11" "g++ -std=c++17" "g++ -std=c++20" "clang++ -std=c++11" "clang++ -std=c++17"; do
    src=$tmp/impl.c; case "$cc" in *++*) src=$tmp/impl.cpp;; esac
    $cc $WARN -Wshadow -Wcast-qual -I. -c "$src" -o "$tmp/impl.o" || { echo "with: $cc"; return 1; }
    $cc $WARN -Wshadow -I. -DAK_FREESTANDING -c "$src" -o "$tmp/impl.o" 2>/dev/null || true
  done
  gcc -std=c99 $WARN -Wc++-compat -I. -c "$tmp/impl.c" -o "$tmp/impl.o"
}

compile_tcc() {
  impl_tu "$tmp/impl.c"
  tcc -I. -c "$tmp/impl.c" -o "$tmp/tcc.o"
}

two_tu_link() {
  impl_tu "$tmp/a.c"
  printf '#include "agentkit.h"\nint ak_check_main(void);\nint main(void) { return ak_check_main() + (ak_status_http(AK_STATUS_NOT_FOUND) != 404); }\n' > "$tmp/b.c"
  printf '#define AGENTKIT_IMPLEMENTATION\n#include "agentkit.h"\n#include "agentkit.h"\n' > "$tmp/twice.c"
  gcc -std=c99 $WARN -I. -c "$tmp/twice.c" -o "$tmp/twice.o" &&
  gcc -std=c99 $WARN -I. "$tmp/a.c" "$tmp/b.c" -o "$tmp/two" && "$tmp/two"
}

static_build() {
  for f in a b; do
    printf '#define AK_STATIC\n#define AGENTKIT_IMPLEMENTATION\n#include "agentkit.h"\nint %s_status(void) { return ak_status_http(AK_STATUS_OK); }\n' $f > "$tmp/s_$f.c"
  done
  printf 'int a_status(void); int b_status(void);\nint main(void) { return a_status() + b_status() != 400; }\n' > "$tmp/s_main.c"
  gcc -std=c99 $WARN -I. "$tmp/s_a.c" "$tmp/s_b.c" "$tmp/s_main.c" -o "$tmp/static" && "$tmp/static"
}

mingw_build() {
  impl_tu "$tmp/impl.c"
  x86_64-w64-mingw32-gcc -std=c99 $WARN -I. -c "$tmp/impl.c" -o "$tmp/win.o"
}

# Freestanding core for Cortex-M4: only the memory primitives and libgcc helpers may be
# undefined.
cortex_m_freestanding() {
  impl_tu "$tmp/impl.c"
  arm-none-eabi-gcc -std=c99 $WARN -Os -mthumb -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16 \
    -ffreestanding -DAK_FREESTANDING -I. -c "$tmp/impl.c" -o "$tmp/m4.o" || return 1
  undefined=$(arm-none-eabi-nm -u "$tmp/m4.o" | awk '{print $2}' | grep -v -E '^(memcpy|memmove|memset|memcmp|__aeabi_[a-z0-9_]+|__gnu_[a-z0-9_]+)$' || true)
  [ -z "$undefined" ] || { echo "libc symbols pulled in: $undefined"; return 1; }
  arm-none-eabi-size "$tmp/m4.o"
}

exported_symbols() {
  [ -f build/ak.o ] || make build/ak.o >/dev/null
  bad=$(nm -g --defined-only build/ak.o | awk '{print $3}' | grep -v '^ak_' || true)
  [ -z "$bad" ] || { echo "exported without ak_ prefix: $bad"; return 1; }
}

sanitizers() {
  make -s BUILD=build/asan CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
    LDLIBS="-lm -lmbedtls -lmbedx509 -lmbedcrypto -fsanitize=address,undefined" all >/dev/null &&
  ASAN_OPTIONS=detect_leaks=1 sh tests/run.sh build/asan
}

under_valgrind() {
  make -s all >/dev/null &&
  AK_VALGRIND=1 AK_RUNNER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=all --show-leak-kinds=definite,indirect,possible" \
    sh tests/run.sh build
}

step "amalgamation up to date" amalgamation_fresh
step "header: gcc/clang C99 C11 C++11 C++17 C++20, -Werror -pedantic" compile_matrix
step "header: tcc" compile_tcc
step "two translation units + double include" two_tu_link
step "AK_STATIC in two translation units" static_build
step "mingw-w64 cross-compile" mingw_build
step "Cortex-M4 freestanding: no libc symbols" cortex_m_freestanding
step "exported symbols all start with ak_" exported_symbols
for extra in tests/check_*.sh; do
  [ -f "$extra" ] || continue
  step "$(basename "$extra" .sh)" sh "$extra"
done
step "unit tests under ASan+UBSan" sanitizers
step "unit tests under valgrind" under_valgrind

echo
if [ "$fails" -eq 0 ]; then echo "check: all steps passed"; else echo "check: $fails step(s) failed"; fi
[ "$fails" -eq 0 ]
