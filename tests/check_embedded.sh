#!/bin/sh
# check_embedded.sh: agentkit.h on microcontrollers (also `make size`). Builds the firmware of
# tests/embedded in four configurations (below) for three targets:
#   m4-bare   Cortex-M4F, -ffreestanding -DAK_FREESTANDING, no libc at all
#   m4-nano   Cortex-M4F, newlib-nano with semihosting (a hosted firmware SDK)
#   rv32-bare RISC-V rv32imac, -ffreestanding -DAK_FREESTANDING (linked, not run: CI has no
#             RISC-V emulator)
# runs the Cortex-M4 images on QEMU mps2-an386 with a timeout, checks the transcript against
# tests/embedded/expected.txt and the exit status, and prints the size and RAM table
# (markdown, for the README) and the largest library functions, and checks the issue's goal:
# the library surface of core + one adapter in under 64 KiB of Cortex-M4 flash. Ends with
# "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
E=tests/embedded
pass=0
fail=0

# "core + one adapter" is what an application with one OpenAI-compatible agent links: JSON
# (parse, write, build, pointer, patch, schema validation), the HTTP parser and SSE, the model
# layer and the OpenAI adapter, sessions, agents, tools, the runner, prompts, chat and the
# memory store; no serve, file store, replay transport or other adapters. Two builds of it:
#   core  the runnable firmware: also links the scripted test model its ten offline turns
#         talk to (test scaffolding, not part of the library surface)
#   lib   the library surface alone: the same firmware built with AK_NO_LOCAL_MODELS runs
#         only its OpenAI part, which calls every library function the runnable one does but
#         the scripted model (the figure the issue's 64 KiB goal is about)
# "noschema" is core without the JSON Schema validator (AK_NO_SCHEMA); "everything" is every
# part that builds without an OS. All with 1 KiB first blocks for JSON documents.
CONFIGS="core lib noschema all"
flags_core="-DAK_NO_OLLAMA -DAK_NO_ANTHROPIC -DAK_NO_GEMINI -DAK_NO_SERVE -DAK_NO_REPLAY -DAK_NO_STDIO"
flags_lib="$flags_core -DAK_NO_LOCAL_MODELS"
flags_noschema="$flags_core -DAK_NO_SCHEMA"
flags_all=""
label_core="core + one adapter, runnable firmware (+ scripted test model)"
label_lib="core + one adapter, library surface (AK_NO_LOCAL_MODELS)"
label_noschema="core + one adapter without JSON Schema (AK_NO_SCHEMA)"
label_all="everything"
# The issue's goal: core + one adapter in under 64 KiB of Cortex-M4 flash.
GOAL_CFG=lib
GOAL_BYTES=65536

M4="-mthumb -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16"
COMMON="-std=c99 -Wall -Wextra -Werror -pedantic -Os -ffunction-sections -fdata-sections -DAK_JSON_DOC_BLOCK=1024"
FREE="-ffreestanding -DAK_FREESTANDING"

TARGETS="m4-bare m4-nano rv32-bare"
cc_m4_bare=arm-none-eabi-gcc;    cflags_m4_bare="$M4 $FREE";   board_m4_bare="bare.c cm4_bare.c"
link_m4_bare="-nostdlib -T $E/cm4.ld -lgcc"
cc_m4_nano=arm-none-eabi-gcc;    cflags_m4_nano="$M4";          board_m4_nano="cm4_newlib.c"
link_m4_nano="--specs=nano.specs --specs=rdimon.specs -T $E/cm4.ld"
RV32="-march=rv32imac -mabi=ilp32 -msave-restore" # the usual RISC-V size option: shared register save code
cc_rv32_bare=riscv64-unknown-elf-gcc; cflags_rv32_bare="$RV32 $FREE"; board_rv32_bare="bare.c rv32_bare.c"
link_rv32_bare="-nostdlib -T $E/rv32.ld -lgcc"

check() { # name command...: one counted check; the log of a failure is shown
  name=$1; shift
  if "$@" >"$tmp/log" 2>&1; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $name"
    tail -n 30 "$tmp/log" | sed 's/^/  /'
  fi
}

var() { eval "printf '%s' \"\$$1\""; }

# build TARGET CONFIG: $tmp/TARGET-CONFIG/{lib.o,fw.elf,fw.map}
build() {
  bt=$(echo "$1" | tr - _) cfg=$2 dir=$tmp/$1-$2
  cc=$(var "cc_$bt") flags="$(var "cflags_$bt") $(var "flags_$cfg")"
  mkdir -p "$dir"
  objs="$dir/lib.o $dir/firmware.o"
  # shellcheck disable=SC2086
  $cc $COMMON $flags -c $E/lib.c -o "$dir/lib.o" &&
  $cc $COMMON $flags -c $E/firmware.c -o "$dir/firmware.o" || return 1
  for b in $(var "board_$bt"); do
    $cc $COMMON $flags -c "$E/$b" -o "$dir/${b%.c}.o" || return 1
    objs="$objs $dir/${b%.c}.o"
  done
  # shellcheck disable=SC2086
  $cc $flags $objs -Wl,--gc-sections -Wl,-Map="$dir/fw.map" $(var "link_$bt") -o "$dir/fw.elf"
}

# The transcript (what was said and answered) must match expected.txt (from its OpenAI part
# on when the build has no scripted model); the status must be 0.
run_qemu() { # dir config
  timeout 60 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -kernel "$1/fw.elf" >"$1/out.txt" 2>&1
  status=$?
  cat "$1/out.txt"
  [ "$status" -eq 0 ] || { echo "exit status $status"; return 1; }
  grep -E '^[a-z0-9 ]+> ' "$1/out.txt" > "$1/transcript.txt"
  case " $(var "flags_$2") " in
    *" -DAK_NO_LOCAL_MODELS "*) sed -n '/^openai> /,$p' "$E/expected.txt" > "$1/expected.txt";;
    *) cp "$E/expected.txt" "$1/expected.txt";;
  esac
  diff "$1/expected.txt" "$1/transcript.txt"
}

# awk (POSIX, no gawk extensions): the value of a hex number, with or without 0x.
HEX='function hex(s,   i, n, c) {
  n = 0; sub(/^0x/, "", s)
  for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", tolower(substr(s, i, 1))); n = n * 16 + c - 1 }
  return n
}'

# Bytes of the image by where they come from (lib.o, libgcc, libc, the firmware itself) and
# where they go (flash: code and constants; data; bss), from the linker map.
map_sizes() { # map -> lines "origin flash data bss"
  awk -v ours="$tmp/" "$HEX"'
    /^Linker script and memory map/ { on = 1; next }
    !on { next }
    /^[.][A-Za-z_]/ { out = $1 }
    function add(size, file,   origin, kind) {
      if (out == ".data" || out == ".bss") kind = substr(out, 2)
      else if (out ~ /^[.](text|ARM[.]ex|preinit_array|init_array|fini_array)/) kind = "flash"
      else return  # the stack, and what is not loaded: debug info, attributes, comments
      if (index(file, ours) == 1) origin = file ~ /[/]lib[.]o$/ ? "library" : "firmware"
      else origin = file ~ /libgcc[.]a/ ? "libgcc" : "libc"  # the C library and start files
      sum[origin, kind] += hex(size)
    }
    pending && NF == 3 && $2 ~ /^0x/ { add($2, $3); pending = 0; next }
    { pending = 0 }
    /^ [.A-Z]/ && NF == 1 { pending = 1; next }
    /^ [.A-Z]/ && NF >= 4 && $3 ~ /^0x/ { add($3, $4) }
    END {
      n = split("library libgcc libc firmware", o, " ")
      for (i = 1; i <= n; i++) print o[i], sum[o[i], "flash"] + 0, sum[o[i], "data"] + 0, sum[o[i], "bss"] + 0
    }' "$1"
}

field() { # file origin column
  awk -v o="$2" -v c="$3" '$1 == o { print $c }' "$1"
}

kib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }

for t in $TARGETS; do
  for cfg in $CONFIGS; do
    check "build $t $cfg" build "$t" "$cfg"
    case $t in m4-*) check "run $t $cfg on QEMU mps2-an386" run_qemu "$tmp/$t-$cfg" "$cfg";; esac
  done
done

# ---- the table ----
echo
echo "| target | configuration | library object, text/data/bss | library in the image: flash / RAM | libgcc + libc in the image | whole firmware image, text/data/bss | pool peak (high water) | stack peak |"
echo "|---|---|---|---|---|---|---|---|"
for t in $TARGETS; do
  for cfg in $CONFIGS; do
    dir=$tmp/$t-$cfg
    [ -f "$dir/fw.elf" ] || continue
    case $t in rv32*) size=riscv64-unknown-elf-size;; *) size=arm-none-eabi-size;; esac
    map_sizes "$dir/fw.map" > "$dir/sizes.txt"
    obj=$($size "$dir/lib.o" | awk 'NR == 2 { print $1 "/" $2 "/" $3 }')
    img=$($size "$dir/fw.elf" | awk 'NR == 2 { print $1 "/" $2 "/" $3 }')
    lf=$(field "$dir/sizes.txt" library 2); ld=$(field "$dir/sizes.txt" library 3); lb=$(field "$dir/sizes.txt" library 4)
    rt=$(( $(field "$dir/sizes.txt" libgcc 2) + $(field "$dir/sizes.txt" libc 2) ))
    peak="not run"; stack="not run"
    if [ -f "$dir/out.txt" ]; then
      peak=$(sed -n 's/^pool: peak \([0-9]*\) B of [0-9]* B (high water \([0-9]*\) B.*/\1 B (\2 B)/p' "$dir/out.txt")
      stack=$(sed -n 's/^stack: \([0-9]*\) B used.*/\1 B/p' "$dir/out.txt")
      [ -n "$stack" ] || stack="not measured"
    fi
    echo "| $t | $(var "label_$cfg") | $obj | $lf B ($(kib "$lf") KiB) / $((ld + lb)) B | $rt B | $img | $peak | $stack |"
  done
done
echo
echo "Built with $COMMON, linked with --gc-sections."
echo "Cortex-M4: $M4; RISC-V: $RV32. Library = the bytes of lib.o the"
echo "image keeps; libgcc = the helpers it needs (64-bit division, double arithmetic); m4-nano adds"
echo "newlib-nano (stdio for the firmware's output, malloc for the default allocator)."
echo "Pool: every byte the library allocated came from the firmware's fixed 64 KiB pool; peak = most"
echo "bytes held at once, high water = pool space touched (block headers and gaps included)."
echo "RAM outside the pool: the library's objects in .bss (context, agent, chat, store, model):"
grep '^static:' "$tmp/m4-bare-core/out.txt" 2>/dev/null | sed 's/^static: /  /'
echo
echo "Largest library functions, m4-bare $(var "label_$GOAL_CFG") (bytes):"
if [ -f "$tmp/m4-bare-$GOAL_CFG/fw.elf" ]; then
  arm-none-eabi-nm -S --size-sort "$tmp/m4-bare-$GOAL_CFG/fw.elf" |
    awk "$HEX"'$3 ~ /^[tTrR]$/ && $4 ~ /^ak_/ { print hex($2), $4 }' | sort -rn | head -n 12 | sed 's/^/  /'
fi
echo

lf=$(field "$tmp/m4-bare-$GOAL_CFG/sizes.txt" library 2 2>/dev/null)
lg=$(field "$tmp/m4-bare-$GOAL_CFG/sizes.txt" libgcc 2 2>/dev/null)
echo "Goal: m4-bare $(var "label_$GOAL_CFG") in ${lf:-?} B of library flash, under $GOAL_BYTES B"
echo "  (with the libgcc helpers it needs: $(( ${lf:-0} + ${lg:-0} )) B)"
check "the issue's goal: core + one adapter under 64 KiB of Cortex-M4 flash" test "${lf:-$GOAL_BYTES}" -lt "$GOAL_BYTES"
echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
