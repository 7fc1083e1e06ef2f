'use strict';
// The Genkit JS 1.42.0 side of the agent benchmark: in process (no HTTP), with the same scripted
// model, tools and agents the interop server hosts (tests/interop/interop_app.cjs, which also
// provides the pinned node_modules: run `npm ci` in tests/interop first).
//
//   node bench/agent/genkit_bench.cjs [--quick]
//
// Prints one JSON object on stdout (all times are medians in microseconds):
//   text_turn_us     one text turn of a client-managed agent (chatAgent), the session state
//                    passed in (init.state) and out (output.state), history of 2 messages
//   tool_turn_us     one tool turn (toolAgent `weather Oslo`: 2 model calls + 1 tool), same setup
//   server_turn_us   {1,10,25,50}: the Nth turn of a server-managed conversation (storeAgent,
//                    InMemorySessionStore), each turn resumed by snapshotId
//   session_bytes    heap per live server-managed session: 1,000 sessions x 10 turns, heap
//                    delta after forced GC divided by 1,000
// --quick cuts the repetitions (for smoke tests); the figures are then noisier.

const path = require('node:path');
const v8 = require('node:v8');
const vm = require('node:vm');

const INTEROP_DIR = path.join(__dirname, '..', '..', 'tests', 'interop');
let createInteropApp;
let GENKIT_VERSION;
try {
  ({ createInteropApp, GENKIT_VERSION } = require(path.join(INTEROP_DIR, 'interop_app.cjs')));
} catch (e) {
  process.stderr.write(`genkit_bench: cannot load Genkit (${e.message}); run: (cd tests/interop && npm ci)\n`);
  process.exit(2);
}

const QUICK = process.argv.includes('--quick');
const TURN_WARMUP = QUICK ? 50 : 500;
const TURN_SAMPLES = QUICK ? 200 : 3000;
const CONVERSATIONS = QUICK ? 5 : 40;
const CONVERSATION_TURNS = 50;
const SAMPLED_TURNS = [1, 10, 25, 50];
const MEMORY_SESSIONS = 1000;
const MEMORY_TURNS = 10;

// A real gc() even without --expose-gc on the command line.
v8.setFlagsFromString('--expose-gc');
const gc = global.gc || vm.runInNewContext('gc');

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function round(us) {
  return Math.round(us * 10) / 10;
}

async function timeUs(fn) {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1000;
}

function expectText(res, text) {
  if (res.text !== text) throw new Error(`benchmark turn answered ${JSON.stringify(res.text)}, expected ${JSON.stringify(text)}`);
}

// Median time of `turn()` after warming up.
async function medianTurnUs(turn) {
  for (let i = 0; i < TURN_WARMUP; i++) await turn();
  const samples = [];
  for (let i = 0; i < TURN_SAMPLES; i++) samples.push(await timeUs(turn));
  return median(samples);
}

// Client-managed turns from a fixed 2-message state, so every sample sees the same history.
async function clientManagedTurnUs(agent, prompt, expected) {
  const seed = (await agent.chat().send('hello')).raw.state;
  return medianTurnUs(async () => {
    const res = await agent.chat({ state: seed }).send(prompt);
    expectText(res, expected);
  });
}

// Median time of turns 1/10/25/50 over CONVERSATIONS server-managed conversations.
async function serverTurnsUs(agent) {
  const samples = Object.fromEntries(SAMPLED_TURNS.map((n) => [n, []]));
  for (let c = 0; c < CONVERSATIONS + 1; c++) {
    let snapshotId;
    for (let n = 1; n <= CONVERSATION_TURNS; n++) {
      const chat = snapshotId ? agent.chat({ snapshotId }) : agent.chat();
      let res;
      const us = await timeUs(async () => {
        res = await chat.send(`turn ${n}`);
      });
      expectText(res, `echo: turn ${n}`);
      snapshotId = res.snapshotId;
      if (c > 0 && samples[n]) samples[n].push(us); // conversation 0 warms up
    }
  }
  return Object.fromEntries(SAMPLED_TURNS.map((n) => [n, round(median(samples[n]))]));
}

function heapUsed() {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

// Heap per live session: a fresh app, so the store holds only the measured sessions.
async function sessionBytes() {
  const { agents } = createInteropApp();
  const agent = agents.storeAgent;
  await agent.chat().send('warm up');
  const chats = [];
  const before = heapUsed();
  for (let s = 0; s < MEMORY_SESSIONS; s++) {
    let snapshotId;
    for (let n = 1; n <= MEMORY_TURNS; n++) {
      const res = await (snapshotId ? agent.chat({ snapshotId }) : agent.chat()).send(`turn ${n}`);
      snapshotId = res.snapshotId;
    }
    chats.push(snapshotId);
  }
  const after = heapUsed();
  if (chats.length !== MEMORY_SESSIONS) throw new Error('sessions lost');
  return Math.round((after - before) / MEMORY_SESSIONS);
}

async function main() {
  const { agents } = createInteropApp();
  const result = {
    runtime: 'genkit-js',
    genkit: GENKIT_VERSION,
    node: process.version,
    text_turn_us: round(await clientManagedTurnUs(agents.chatAgent, 'hello again', 'echo: hello again')),
    tool_turn_us: round(
      await clientManagedTurnUs(agents.toolAgent, 'weather Oslo', 'tool result: [{"city":"Oslo","tempC":21,"sky":"clear"}]')
    ),
    server_turn_us: await serverTurnsUs(agents.storeAgent),
    session_bytes: await sessionBytes(),
    samples: {
      turn: TURN_SAMPLES,
      conversations: CONVERSATIONS,
      memory_sessions: MEMORY_SESSIONS,
      memory_turns_per_session: MEMORY_TURNS,
    },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e) => {
  process.stderr.write(`genkit_bench: ${e.stack || e.message}\n`);
  process.exit(1);
});
