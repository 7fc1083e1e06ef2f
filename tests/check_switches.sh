#!/bin/sh
# check_switches.sh: the compile-out switches (AK_NO_*) alone and together. Each build
# compiles the header with the implementation (gcc -std=c99 and g++ -std=c++17, -Werror
# -pedantic) and links it into a program: a library function that calls a part a switch
# removed shows up as an undefined reference. Then the header as C++11/17/20 without
# exceptions and RTTI, as game engines build it. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
WARN="-Wall -Wextra -Werror -pedantic"
pass=0
fail=0

SWITCHES="AK_NO_OPENAI AK_NO_OLLAMA AK_NO_ANTHROPIC AK_NO_GEMINI AK_NO_SERVE AK_NO_REPLAY
AK_NO_SCHEMA AK_NO_LOCAL_MODELS AK_NO_STDIO AK_NO_ERROR_STRINGS"
CORE="-DAK_NO_OLLAMA -DAK_NO_ANTHROPIC -DAK_NO_GEMINI -DAK_NO_SERVE -DAK_NO_REPLAY -DAK_NO_STDIO"
all=""
for s in $SWITCHES; do all="$all -D$s"; done

# The program every build links: it takes the address of the entry points that stay in every
# configuration, so the library's object is linked in whole.
cat > "$tmp/main.c" <<'EOF'
#include "agentkit.h"
int main(void) {
    ak_context ctx;
    ak_error err;
    ak_http_model m;
    int r = ak_context_init(&ctx, NULL) != AK_OK;
    r += ak_adapter_find("no such adapter") != NULL;
#ifndef AK_NO_OPENAI
    r += ak_adapter_find("openai") != ak_adapter_openai();
#endif
    r += ak_http_model_from_env(&m, &ctx, NULL, &err) == AK_OK && 0;
    return r;
}
EOF
printf '#define AGENTKIT_IMPLEMENTATION\n#include "agentkit.h"\n' > "$tmp/impl.c"
cp "$tmp/impl.c" "$tmp/impl.cpp"
cp "$tmp/main.c" "$tmp/main.cpp"

check() { # name command...
  name=$1; shift
  if "$@" >"$tmp/log" 2>&1; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $name"
    tail -n 20 "$tmp/log" | sed 's/^/  /'
  fi
}

# build CC STD EXT DEFS...: compile the implementation and the program, link, run.
build() {
  cc=$1 std=$2 ext=$3; shift 3
  $cc $std $WARN -I. "$@" -c "$tmp/impl.$ext" -o "$tmp/impl.o" &&
  $cc $std $WARN -I. "$@" -c "$tmp/main.$ext" -o "$tmp/main.o" &&
  $cc "$tmp/impl.o" "$tmp/main.o" -o "$tmp/prog" -lm &&
  "$tmp/prog"
}

both() { # name DEFS...
  name=$1; shift
  check "$name (gcc -std=c99)" build gcc -std=c99 c "$@"
  check "$name (g++ -std=c++17)" build g++ -std=c++17 cpp "$@"
}

both "no switch"
for s in $SWITCHES; do both "$s" "-D$s"; done
both "core + one adapter" $CORE
both "all switches" $all
# The optional POSIX transport and server loop must not need a part a switch removes.
both "all switches + AK_ENABLE_POSIX" $all -DAK_ENABLE_POSIX

# A switch leaves its code out, not only the calls to it: built without optimization (which
# keeps every static function, called or not), the object holds no symbol of the part a switch
# removed, and still holds the helpers a sibling adapter shares with it (anthropic.c's ak__prov_*
# serve gemini.c, openai.c's ak__wire_* and ak__acc_* serve ollama.c).
parts() { # absent-regex present-regex DEFS...: symbols of the implementation built with DEFS
  absent=$1 present=$2; shift 2
  gcc -std=c99 $WARN -I. "$@" -c "$tmp/impl.c" -o "$tmp/parts.o" && nm "$tmp/parts.o" > "$tmp/parts.nm" || return 1
  if grep -E " ($absent)" "$tmp/parts.nm"; then echo "still compiled in: $absent"; return 1; fi
  [ -z "$present" ] || grep -Eq " ($present)" "$tmp/parts.nm" || { echo "missing: $present"; return 1; }
}
check "no switch: the Anthropic code is there (so the checks below can fail)" \
  parts 'ak_no_such_symbol' 'ak__anth_build'
check "no switch: the OpenAI code is there" parts 'ak_no_such_symbol' 'ak__oai_build'
check "AK_NO_ANTHROPIC leaves the Anthropic code out, keeps what Gemini shares" \
  parts 'ak__anth_|ak_adapter_anthropic' 'ak__prov_key' -DAK_NO_ANTHROPIC
check "AK_NO_ANTHROPIC AK_NO_GEMINI leave the shared helpers out too" \
  parts 'ak__anth_|ak__gem_|ak__prov_|ak_adapter_anthropic|ak_adapter_gemini' '' -DAK_NO_ANTHROPIC -DAK_NO_GEMINI
check "AK_NO_OPENAI leaves the OpenAI code out, keeps what Ollama shares" \
  parts 'ak__oai_|ak_adapter_openai' 'ak__wire_build' -DAK_NO_OPENAI
check "AK_NO_OPENAI AK_NO_OLLAMA leave the shared helpers out too" \
  parts 'ak__oai_|ak__ollama_|ak__wire_|ak__acc_|ak_adapter_openai|ak_adapter_ollama' '' -DAK_NO_OPENAI -DAK_NO_OLLAMA

# What a switch compiled out is refused with AK_ERR_UNSUPPORTED, not silently skipped; the
# same program built with and without the switches checks both sides.
cat > "$tmp/behaviour.c" <<'EOF'
#define AGENTKIT_IMPLEMENTATION
#include "agentkit.h"
#include <stdio.h>
#include <string.h>
#define EXPECT(cond) do { if (!(cond)) { printf("line %d: %s (%s)\n", __LINE__, #cond, err.message); return 1; } } while (0)
static int ran;
static ak_result transfer(ak_tool_call *c) {
    ran = 1;
    return ak_tool_return(c, ak_json_new_bool(c->doc, 1));
}
int main(void) {
    ak_context ctx;
    ak_error err;
    ak_http_model m;
    ak_model scripted;
    ak_agent agent;
    ak_agent_desc d;
    ak_tool tool;
    ak_chat chat;
    ak_response r;
    ak_result rc;
    ak_context_init(&ctx, NULL);
    ak_error_clear(&err);
    /* an OpenAI key in the environment */
    rc = ak_http_model_from_env(&m, &ctx, NULL, &err);
#ifdef AK_NO_OPENAI
    EXPECT(rc == AK_ERR_UNSUPPORTED && strstr(err.message, "OPENAI_API_KEY is set") && strstr(err.message, "AK_NO_OPENAI"));
    EXPECT(!ak_adapter_find("openai") && ak_adapter_find("ollama"));
#else
    EXPECT(rc == AK_ERR_INVALID_ARGUMENT && ak_adapter_find("openai") == ak_adapter_openai()); /* no transport */
#endif
    /* "transfer abc" makes the scripted model call approveTransfer with {amount: null} */
    memset(&tool, 0, sizeof tool);
    tool.name = "approveTransfer", tool.fn = transfer;
    tool.input_schema = "{\"type\":\"object\",\"properties\":{\"amount\":{\"type\":\"number\"}},\"required\":[\"amount\"]}";
    memset(&d, 0, sizeof d);
    ak_scripted_model_init(&scripted);
    d.name = "a", d.model = &scripted, d.tools = &tool, d.tool_count = 1, d.state_schema = "{}";
    rc = ak_agent_init(&agent, &ctx, &d, &err);
#ifdef AK_NO_SCHEMA
    EXPECT(rc == AK_ERR_UNSUPPORTED && strstr(err.message, "AK_NO_SCHEMA")); /* a state schema only checks */
    d.state_schema = NULL;
    EXPECT(ak_agent_init(&agent, &ctx, &d, &err) == AK_OK);
#else
    EXPECT(rc == AK_OK);
#endif
    EXPECT(ak_chat_init(&chat, &agent, NULL, &err) == AK_OK);
    rc = ak_chat_send(&chat, "transfer abc", &r, &err);
#ifdef AK_NO_SCHEMA
    EXPECT(rc == AK_OK && ran); /* the schema went to the model; the tool checks its input */
#else
    EXPECT(rc == AK_ERR_AGENT && !ran && strstr(err.message, "Schema validation failed"));
#endif
    ak_response_free(&r);
    ak_chat_free(&chat);
    ak_agent_free(&agent);
    return 0;
}
EOF
behaviour() { # DEFS...
  gcc -std=c99 $WARN -I. "$@" "$tmp/behaviour.c" -o "$tmp/behaviour" -lm && OPENAI_API_KEY=sk-test "$tmp/behaviour"
}
check "compiled-out parts are refused, not skipped (AK_NO_OPENAI AK_NO_SCHEMA)" behaviour -DAK_NO_OPENAI -DAK_NO_SCHEMA
check "the same program with both parts in" behaviour

# C++ without exceptions and RTTI, as game engines build it.
for std in c++11 c++17 c++20; do
  for cxx in g++ clang++; do
    check "$cxx -std=$std -fno-exceptions -fno-rtti" \
      $cxx -std=$std -fno-exceptions -fno-rtti $WARN -I. -DAK_ENABLE_POSIX -c "$tmp/impl.cpp" -o "$tmp/nx.o"
  done
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
