'use strict';
// Drives a Genkit-protocol agent server with the OFFICIAL Genkit JS client (remoteAgent() from
// genkit/beta/client 1.42.0), plus raw fetch where the client cannot express a case.
//
//   node scenarios.cjs --url http://127.0.0.1:PORT [--prefix /agents] [--filter SUBSTR]
//
// The server must host the agents of ../shared/interop-agents.md. Every assertion is an exact
// value taken from interop-agents.md and reference/genkit-agents.md (and confirmed against the
// Genkit JS 1.42.0 reference server, genkit_server.cjs). Prints `ok <name>` or
// `FAIL <name>: why` per scenario, then `N passed, N failed`; exits 1 on any failure.

const { isDeepStrictEqual } = require('node:util');
const { remoteAgent } = require('genkit/beta/client');

const SCENARIO_TIMEOUT_MS = 30000;
const POLL_MS = 50;
const SYSTEM_PROMPT = 'You are a deterministic test agent.';
const AGENT_NAMES = ['chatAgent', 'toolAgent', 'interruptAgent', 'storeAgent', 'stateAgent', 'clientStateAgent'];
const WEATHER_OSLO = { city: 'Oslo', tempC: 21, sky: 'clear' };
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// ---------------------------------------------------------------------------------------------
// Transport guard. The official client never checks for end-of-stream: a 200 stream that ends
// without a result/error frame makes it spin forever on an already-finished reader, starving
// the event loop (reference §3.5). The client stops reading at the terminal frame, so turning
// EOF into a stream error changes nothing for a correct server and turns that hang into a
// clean failure for a broken one.
const realFetch = globalThis.fetch;
globalThis.fetch = async (url, init) => {
  const res = await realFetch(url, init);
  const accept = init && init.headers && init.headers.Accept;
  if (res.status !== 200 || !res.body || accept !== 'text/event-stream') return res;
  const reader = res.body.getReader();
  const body = new ReadableStream({
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) controller.error(new Error('stream ended without a result or error frame'));
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
};

// ---------------------------------------------------------------------------------------------
// Assertions

class Mismatch extends Error {}

function show(v) {
  const s = v === undefined ? 'undefined' : JSON.stringify(v);
  return s.length > 700 ? `${s.slice(0, 700)}…` : s;
}

function eq(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new Mismatch(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

function check(cond, what, actual) {
  if (!cond) throw new Mismatch(arguments.length > 2 ? `${what} (got ${show(actual)})` : what);
}

function isId(v) {
  return typeof v === 'string' && v.length > 0;
}

function keysOf(obj) {
  return Object.keys(obj || {}).sort();
}

// Exact key set of a wire object (absent optionals are omitted, never null: reference §2).
function eqKeys(obj, keys, what) {
  eq(keysOf(obj), [...keys].sort(), `${what} keys`);
}

function userMsg(text) {
  return { role: 'user', content: [{ text }] };
}

function modelMsg(text) {
  return { role: 'model', content: [{ text }] };
}

function textChunk(text) {
  return { modelChunk: { role: 'model', index: 0, content: [{ text }] } };
}

// Expects an AgentError with this status whose message contains `includes`.
function eqAgentError(err, status, includes, what) {
  check(err, `${what}: expected the call to fail with ${status}, it succeeded`);
  check(err.name === 'AgentError', `${what}: expected an AgentError`, err.message);
  eq(err.status, status, `${what} status`);
  check(err.message.includes(includes), `${what}: message should contain ${show(includes)}`, err.message);
}

// runFlow (getSnapshot/abort) throws `Server returned: <code>: <body>`; checks code and body.
function eqHttpError(err, code, body, what) {
  check(err, `${what}: expected HTTP ${code}, the call succeeded`);
  const m = /^Server returned: (\d+): ([\s\S]*)$/.exec(err.message);
  check(m, `${what}: unexpected error`, err.message);
  eq(Number(m[1]), code, `${what} HTTP status`);
  let parsed;
  try {
    parsed = JSON.parse(m[2]);
  } catch {
    throw new Mismatch(`${what}: error body is not JSON: ${show(m[2])}`);
  }
  eq(parsed, body, `${what} body`);
}

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  return undefined;
}

// Drains an AgentTurn: raw chunks in order, then the response or the error it rejected with.
async function collect(turn) {
  const chunks = [];
  const customs = [];
  try {
    for await (const c of turn.stream) {
      chunks.push(c.raw);
      customs.push(c.custom);
    }
  } catch {
    // A failed turn re-throws from the stream after the last chunk; `response` has the error.
  }
  let response;
  let error;
  try {
    response = await turn.response;
  } catch (e) {
    error = e;
  }
  return { chunks, customs, response, error };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// Scenario context: one remoteAgent per agent plus raw HTTP helpers.

function makeContext(baseUrl, prefix) {
  const agentUrl = (name) => `${baseUrl}${prefix}/${name}`;
  const agents = {};
  const agent = (name) => (agents[name] = agents[name] || remoteAgent({ url: agentUrl(name) }));
  // One raw POST. `stream`: Accept text/event-stream, body split into frames.
  async function post(path, body, { stream = false } = {}) {
    const headers = { 'Content-Type': 'application/json' };
    if (stream) headers.Accept = 'text/event-stream';
    const res = await realFetch(`${baseUrl}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, contentType: res.headers.get('content-type'), text };
  }
  async function postJson(path, body) {
    const r = await post(path, body);
    let json;
    try {
      json = JSON.parse(r.text);
    } catch {
      throw new Mismatch(`POST ${path}: body is not JSON: ${show(r.text)}`);
    }
    return { status: r.status, contentType: r.contentType, json };
  }
  // Parses a streamed body into [{prefix, json}] frames; each frame is one line + blank line.
  function frames(text, what) {
    check(text.endsWith('\n\n'), `${what}: stream must end with a blank line`, text.slice(-40));
    return text
      .slice(0, -2)
      .split('\n\n')
      .map((f) => {
        const m = /^(data|error): (.*)$/.exec(f);
        check(m, `${what}: bad frame`, f);
        return { prefix: m[1], json: JSON.parse(m[2]) };
      });
  }
  return { baseUrl, prefix, agent, agentUrl, post, postJson, frames };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const scenarios = [];
function scenario(name, fn) {
  scenarios.push({ name, fn });
}

scenario('healthz', async (ctx) => {
  const res = await realFetch(`${ctx.baseUrl}/healthz`);
  eq(res.status, 200, 'status');
  eq(await res.json(), { ok: true, agents: AGENT_NAMES }, 'body');
});

scenario('plain turn (client-managed)', async (ctx) => {
  const chat = ctx.agent('chatAgent').chat();
  const res = await chat.send('  hello  ');
  const raw = res.raw;
  eqKeys(raw, ['sessionId', 'message', 'finishReason', 'state'], 'output');
  check(isId(raw.sessionId), 'output.sessionId is a non-empty string', raw.sessionId);
  eq(raw.message, modelMsg('echo: hello'), 'output.message');
  eq(raw.finishReason, 'stop', 'finishReason');
  eq(raw.state, { artifacts: [], messages: [userMsg('  hello  '), modelMsg('echo: hello')], sessionId: raw.sessionId }, 'output.state');
  eq(res.text, 'echo: hello', 'response.text');
  eq(chat.sessionId, raw.sessionId, 'chat.sessionId');
});

scenario('system prompt', async (ctx) => {
  const res = await ctx.agent('chatAgent').chat().send('system?');
  eq(res.text, `system=${SYSTEM_PROMPT}`, 'text');
});

scenario('streamed turn', async (ctx) => {
  const chat = ctx.agent('chatAgent').chat();
  const { chunks, response, error } = await collect(chat.sendStream('stream a b c'));
  check(!error, 'turn failed', error && error.message);
  eq(chunks, [textChunk('a '), textChunk('b '), textChunk('c'), { turnEnd: { finishReason: 'stop' } }], 'chunks');
  eq(response.text, 'a b c', 'final text');
  eq(response.finishReason, 'stop', 'finishReason');
  eq(response.raw.state.messages, [userMsg('stream a b c'), modelMsg('a b c')], 'state.messages');
  // send() is the same streaming request, drained.
  eq((await chat.send('stream x y')).text, 'x y', 'drained send text');
});

scenario('client-managed state round trip', async (ctx) => {
  const chat = ctx.agent('chatAgent').chat();
  const r1 = await chat.send('count');
  const r2 = await chat.send('count');
  const r3 = await chat.send('count');
  eq([r1.text, r2.text, r3.text], ['history=1', 'history=3', 'history=5'], 'history growth');
  eq(r3.raw.sessionId, r1.raw.sessionId, 'sessionId stable across turns');
  eq(r3.raw.state.sessionId, r1.raw.sessionId, 'state.sessionId');
  eq(r3.raw.state.messages.length, 6, 'state.messages length');
  eq(chat.messages.length, 6, 'chat.messages length');
  // The server must take history from init.state, not from anywhere else.
  const seed = { sessionId: 'seed-session', messages: [userMsg('a'), modelMsg('echo: a')], artifacts: [] };
  const raw = await ctx.postJson(`${ctx.prefix}/chatAgent`, { data: { message: userMsg('count') }, init: { state: seed } });
  eq(raw.status, 200, 'raw status');
  eq(raw.json.result.message, modelMsg('history=3'), 'history from init.state');
  eq(raw.json.result.sessionId, 'seed-session', 'sessionId taken from init.state');
});

scenario('tool turn', async (ctx) => {
  const chat = ctx.agent('toolAgent').chat();
  const { chunks, response, error } = await collect(chat.sendStream('weather Oslo'));
  check(!error, 'turn failed', error && error.message);
  const toolResponse = { toolResponse: { name: 'getWeather', ref: 'w1', output: WEATHER_OSLO } };
  eq(chunks, [{ modelChunk: { role: 'tool', index: 0, content: [toolResponse] } }, { turnEnd: { finishReason: 'stop' } }], 'chunks');
  const text = `tool result: ${JSON.stringify([WEATHER_OSLO])}`;
  eq(response.text, text, 'text');
  eq(
    response.raw.state.messages,
    [
      userMsg('weather Oslo'),
      { role: 'model', content: [{ toolRequest: { name: 'getWeather', ref: 'w1', input: { city: 'Oslo' } } }] },
      { role: 'tool', content: [toolResponse] },
      modelMsg(text),
    ],
    'state.messages'
  );
});

// Sends `text` to a fresh interruptAgent chat; expects one interrupt notice chunk + turnEnd.
async function interruptTurn(ctx, text, requestPart) {
  const chat = ctx.agent('interruptAgent').chat();
  const { chunks, response, error } = await collect(chat.sendStream(text));
  check(!error, 'interrupting turn failed', error && error.message);
  const s1 = response.snapshotId;
  check(isId(s1), 'interrupted turn has a snapshotId', s1);
  eq(chunks, [{ modelChunk: { role: 'tool', content: [requestPart] } }, { turnEnd: { snapshotId: s1, finishReason: 'interrupted' } }], 'interrupt chunks');
  eq(response.finishReason, 'interrupted', 'finishReason');
  eqKeys(response.raw, ['sessionId', 'message', 'finishReason', 'snapshotId'], 'interrupted output');
  eq(response.raw.message, { role: 'model', content: [requestPart] }, 'interrupted message');
  return { chat, response, s1 };
}

const TRANSFER_100 = { toolRequest: { name: 'approveTransfer', ref: 't1', input: { amount: 100 } }, metadata: { interrupt: true } };
const DELETE_X = {
  toolRequest: { name: 'deleteFile', ref: 'd1', input: { path: '/tmp/x' } },
  metadata: { interrupt: { reason: 'confirm delete', path: '/tmp/x' } },
};

scenario('interrupt + respond', async (ctx) => {
  const { chat, response, s1 } = await interruptTurn(ctx, 'transfer 100', TRANSFER_100);
  eq(response.interrupts.length, 1, 'interrupts');
  const intr = response.interrupts[0];
  eq([intr.name, intr.ref, intr.input], ['approveTransfer', 't1', { amount: 100 }], 'interrupt');
  const { chunks, response: r2, error } = await collect(chat.resumeStream({ respond: [intr.respond({ approved: true })] }));
  check(!error, 'resume failed', error && error.message);
  const s2 = r2.snapshotId;
  check(isId(s2) && s2 !== s1, 'resume wrote a new snapshot', s2);
  const answer = { toolResponse: { name: 'approveTransfer', ref: 't1', output: { approved: true } } };
  eq(chunks, [{ modelChunk: { role: 'tool', index: 0, content: [answer] } }, { turnEnd: { snapshotId: s2, finishReason: 'stop' } }], 'resume chunks');
  eq(r2.text, 'tool result: [{"approved":true}]', 'text');
  const snap = await ctx.agent('interruptAgent').getSnapshot(s2);
  eq([snap.parentId, snap.status, snap.finishReason], [s1, 'completed', 'stop'], 'snapshot parentId/status/finishReason');
  eq(
    snap.state.messages,
    [
      userMsg('transfer 100'),
      { role: 'model', content: [{ toolRequest: TRANSFER_100.toolRequest, metadata: { resolvedInterrupt: true } }] },
      { role: 'tool', content: [answer], metadata: { resumed: true } },
      modelMsg('tool result: [{"approved":true}]'),
    ],
    'snapshot state.messages'
  );
});

scenario('interrupt + restart with metadata.resumed', async (ctx) => {
  const { chat, response, s1 } = await interruptTurn(ctx, 'delete /tmp/x', DELETE_X);
  const restart = { ...response.interrupts[0].restart(), metadata: { resumed: { approved: true } } };
  const { chunks, response: r2, error } = await collect(chat.resumeStream({ restart: [restart] }));
  check(!error, 'restart failed', error && error.message);
  const output = { deleted: '/tmp/x', resumed: { approved: true } };
  eq(
    chunks,
    [
      { modelChunk: { role: 'tool', index: 0, content: [{ toolResponse: { name: 'deleteFile', ref: 'd1', output } }] } },
      { turnEnd: { snapshotId: r2.snapshotId, finishReason: 'stop' } },
    ],
    'restart chunks'
  );
  eq(r2.text, `tool result: ${JSON.stringify([output])}`, 'text');
  const snap = await ctx.agent('interruptAgent').getSnapshot(r2.snapshotId);
  eq(snap.parentId, s1, 'parentId');
  eq(snap.state.messages[1].content[0].metadata, { resolvedInterrupt: DELETE_X.metadata.interrupt }, 'resolvedInterrupt');
});

scenario('forged restart rejected', async (ctx) => {
  const { chat, s1 } = await interruptTurn(ctx, 'delete /tmp/x', DELETE_X);
  const forged = { toolRequest: { name: 'deleteFile', ref: 'd1', input: { path: '/etc/passwd' } }, metadata: { resumed: true } };
  const { chunks, error } = await collect(chat.resumeStream({ restart: [forged] }));
  eqAgentError(error, 'INVALID_ARGUMENT', "resume.restart for tool 'deleteFile' (ref: d1) has modified inputs", 'forged restart');
  const raw = error.response.raw;
  eq(raw.finishReason, 'failed', 'finishReason');
  eq(raw.snapshotId, s1, 'output points at the last good snapshot');
  eq(raw.message, { role: 'model', content: [DELETE_X] }, 'output.message = last good message');
  eq(chunks.length, 1, 'one chunk (turnEnd)');
  const failedId = chunks[0].turnEnd && chunks[0].turnEnd.snapshotId;
  eq(chunks[0], { turnEnd: { snapshotId: failedId, finishReason: 'failed' } }, 'turnEnd');
  check(isId(failedId) && failedId !== s1, 'the failed turn has its own snapshot', failedId);
  const snap = await ctx.agent('interruptAgent').getSnapshot(failedId);
  eq([snap.status, snap.finishReason, snap.parentId, snap.error.status], ['failed', 'failed', s1, 'INVALID_ARGUMENT'], 'failed snapshot');
  check(snap.error.message.includes('has modified inputs'), 'failed snapshot error message', snap.error.message);
});

scenario('respond to unknown ref rejected', async (ctx) => {
  const { chat, s1 } = await interruptTurn(ctx, 'transfer 100', TRANSFER_100);
  const bogus = { toolResponse: { name: 'approveTransfer', ref: 'zz', output: { approved: true } } };
  const err = await rejection(chat.resume({ respond: [bogus] }));
  eqAgentError(err, 'INVALID_ARGUMENT', "resume.respond references tool 'approveTransfer' (ref: zz) which was not found in session history.", 'unknown ref');
  eq(err.response.raw.snapshotId, s1, 'output points at the last good snapshot');
});

scenario('both: one tool completes, one interrupts', async (ctx) => {
  const weather = { toolRequest: { name: 'getWeather', ref: 'w1', input: { city: 'Oslo' } }, metadata: { pendingOutput: WEATHER_OSLO } };
  const transfer = { toolRequest: { name: 'approveTransfer', ref: 't1', input: { amount: 5 } }, metadata: { interrupt: true } };
  const chat = ctx.agent('interruptAgent').chat();
  const { chunks, response } = await collect(chat.sendStream('both'));
  eq(chunks, [{ modelChunk: { role: 'tool', content: [weather, transfer] } }, { turnEnd: { snapshotId: response.snapshotId, finishReason: 'interrupted' } }], 'chunks');
  eq(response.interrupts.map((i) => i.name), ['approveTransfer'], 'only the interrupting tool is an interrupt');
  const { chunks: c2, response: r2, error } = await collect(chat.resumeStream({ respond: [response.interrupts[0].respond({ approved: false })] }));
  check(!error, 'resume failed', error && error.message);
  const responses = [
    { toolResponse: { name: 'getWeather', ref: 'w1', output: WEATHER_OSLO }, metadata: { source: 'pending' } },
    { toolResponse: { name: 'approveTransfer', ref: 't1', output: { approved: false } } },
  ];
  eq(c2, [{ modelChunk: { role: 'tool', index: 0, content: responses } }, { turnEnd: { snapshotId: r2.snapshotId, finishReason: 'stop' } }], 'resume chunks');
  eq(r2.text, `tool result: ${JSON.stringify([WEATHER_OSLO, { approved: false }])}`, 'text');
});

// Two turns on storeAgent; returns the chat and both snapshot ids.
async function twoStoreTurns(ctx) {
  const chat = ctx.agent('storeAgent').chat();
  const r1 = await chat.send('one');
  const r2 = await chat.send('two');
  eqKeys(r2.raw, ['sessionId', 'message', 'finishReason', 'snapshotId'], 'server-managed output');
  check(isId(r1.snapshotId) && isId(r2.snapshotId) && r1.snapshotId !== r2.snapshotId, 'two distinct snapshot ids', [r1.snapshotId, r2.snapshotId]);
  eq(r2.sessionId, r1.sessionId, 'sessionId stable');
  return { chat, s1: r1.snapshotId, s2: r2.snapshotId, sessionId: r1.sessionId };
}

scenario('getSnapshot by snapshotId and by sessionId', async (ctx) => {
  const { s1, s2, sessionId } = await twoStoreTurns(ctx);
  const agent = ctx.agent('storeAgent');
  const snap = await agent.getSnapshot(s2);
  eqKeys(snap, ['snapshotId', 'sessionId', 'createdAt', 'updatedAt', 'state', 'parentId', 'status', 'finishReason'], 'snapshot');
  eq([snap.snapshotId, snap.sessionId, snap.parentId, snap.status, snap.finishReason], [s2, sessionId, s1, 'completed', 'stop'], 'snapshot fields');
  check(ISO_TIME.test(snap.createdAt) && ISO_TIME.test(snap.updatedAt), 'ISO-8601 timestamps', [snap.createdAt, snap.updatedAt]);
  eq(snap.state, { artifacts: [], messages: [userMsg('one'), modelMsg('echo: one'), userMsg('two'), modelMsg('echo: two')], sessionId }, 'snapshot state');
  const first = await agent.getSnapshot({ snapshotId: s1 });
  check(!('parentId' in first), 'first snapshot has no parentId', first.parentId);
  eq((await agent.getSnapshot({ sessionId })).snapshotId, s2, 'sessionId resolves to the latest snapshot');
});

scenario('branching: two children of one snapshot', async (ctx) => {
  const { s1, sessionId } = await twoStoreTurns(ctx);
  const agent = ctx.agent('storeAgent');
  const left = await agent.chat({ snapshotId: s1 }).send('left');
  await sleep(5); // createdAt has millisecond resolution; the newest leaf must be unambiguous
  const right = await agent.chat({ snapshotId: s1 }).send('right');
  eq([left.sessionId, right.sessionId], [sessionId, sessionId], 'branches keep the sessionId');
  const l = await agent.getSnapshot(left.snapshotId);
  const r = await agent.getSnapshot(right.snapshotId);
  eq([l.parentId, r.parentId], [s1, s1], 'both branches are children of the same snapshot');
  eq(r.state.messages, [userMsg('one'), modelMsg('echo: one'), userMsg('right'), modelMsg('echo: right')], 'branch history');
  eq((await agent.getSnapshot({ sessionId })).snapshotId, right.snapshotId, 'sessionId resolves to the newest leaf');
});

scenario('loadChat and continue', async (ctx) => {
  const { s2, sessionId } = await twoStoreTurns(ctx);
  const agent = ctx.agent('storeAgent');
  const chat = await agent.loadChat({ snapshotId: s2 });
  eq([chat.snapshotId, chat.sessionId, chat.messages.length], [s2, sessionId, 4], 'loaded chat');
  const r3 = await chat.send('count');
  eq(r3.text, 'history=5', 'continued history');
  eq((await agent.getSnapshot(r3.snapshotId)).parentId, s2, 'continuation parentId');
  const bySession = await agent.loadChat({ sessionId });
  eq(bySession.snapshotId, r3.snapshotId, 'loadChat by sessionId picks the latest');
  eq((await bySession.send('count')).text, 'history=7', 'continued again');
});

scenario('missing snapshot -> NOT_FOUND', async (ctx) => {
  const agent = ctx.agent('storeAgent');
  const notFound = { status: 'NOT_FOUND', message: "Snapshot 'no-such-snapshot' not found for agent 'storeAgent'." };
  eqHttpError(await rejection(agent.getSnapshot('no-such-snapshot')), 404, notFound, 'getSnapshot');
  eqHttpError(await rejection(agent.loadChat({ snapshotId: 'no-such-snapshot' })), 404, notFound, 'loadChat');
  // Resuming from it is a graceful failed turn: no chunks, no sessionId (reference §4.4).
  const { chunks, error } = await collect(agent.chat({ snapshotId: 'no-such-snapshot' }).sendStream('hi'));
  eqAgentError(error, 'NOT_FOUND', 'NOT_FOUND: Snapshot no-such-snapshot not found', 'turn');
  eq(chunks, [], 'chunks');
  eq(error.response.raw, { finishReason: 'failed', error: { status: 'NOT_FOUND', message: 'NOT_FOUND: Snapshot no-such-snapshot not found' } }, 'output');
  const both = await ctx.postJson(`${ctx.prefix}/storeAgent/getSnapshot`, { data: { snapshotId: 'a', sessionId: 'b' } });
  eq(both.status, 400, 'both ids: HTTP status');
  eq(both.json.status, 'INVALID_ARGUMENT', 'both ids: status');
});

scenario('client-managed agent given snapshotId -> FAILED_PRECONDITION', async (ctx) => {
  const { chunks, error } = await collect(ctx.agent('chatAgent').chat({ snapshotId: 'some-id' }).sendStream('hi'));
  const message = "Cannot use 'snapshotId' with agent 'chatAgent': this agent has no store configured (client-managed state). Send 'state' instead.";
  eqAgentError(error, 'FAILED_PRECONDITION', message, 'turn');
  eq(chunks, [], 'chunks');
  const raw = await ctx.postJson(`${ctx.prefix}/chatAgent`, { data: { message: userMsg('hi') }, init: { sessionId: 's' } });
  eq(raw.status, 400, 'non-streaming HTTP status');
  eq(raw.json, { status: 'FAILED_PRECONDITION', message: message.replace("'snapshotId'", "'sessionId'") }, 'non-streaming body');
  eqHttpError(
    await rejection(ctx.agent('chatAgent').getSnapshot('x')),
    400,
    { status: 'FAILED_PRECONDITION', message: "getSnapshotData requires a persistent store. Provide a 'store' when defining 'chatAgent'." },
    'getSnapshot on a client-managed agent'
  );
});

scenario('server-managed agent given state -> FAILED_PRECONDITION', async (ctx) => {
  const chat = ctx.agent('storeAgent').chat({ state: { messages: [userMsg('x'), modelMsg('echo: x')] } });
  const { chunks, error } = await collect(chat.sendStream('hi'));
  const message = "Cannot send 'state' to agent 'storeAgent': this agent uses a server-managed store. Send 'snapshotId' or 'sessionId' instead.";
  eqAgentError(error, 'FAILED_PRECONDITION', message, 'turn');
  eq(chunks, [], 'chunks');
  const raw = await ctx.post(`${ctx.prefix}/storeAgent`, { data: { message: userMsg('hi') }, init: { state: {} } }, { stream: true });
  eq(raw.status, 200, 'streaming init misuse is a 200');
  eq(ctx.frames(raw.text, 'stream'), [{ prefix: 'error', json: { error: { status: 'FAILED_PRECONDITION', message } } }], 'error frame');
});

scenario('ownership guard', async (ctx) => {
  const { s1, sessionId } = await twoStoreTurns(ctx);
  const raw = await ctx.postJson(`${ctx.prefix}/storeAgent`, { data: { message: userMsg('hi') }, init: { snapshotId: s1, sessionId: 'someone-else' } });
  eq(raw.status, 400, 'HTTP status');
  eq(raw.json, { status: 'INVALID_ARGUMENT', message: `Snapshot ${s1} does not belong to session someone-else (it belongs to ${sessionId}).` }, 'body');
});

// Expected chunks of one stateAgent/clientStateAgent turn with input `text`.
function customTurnChunks(counter, text, snapshotId) {
  return [
    { customPatch: [{ op: 'replace', path: '', value: { counter, status: 'working' } }] },
    textChunk(`working on ${text}`),
    { customPatch: [{ op: 'replace', path: '/status', value: 'done' }] },
    { artifact: { name: `report-${counter}.md`, parts: [{ text: `report ${counter}` }] } },
    { turnEnd: { ...(snapshotId && { snapshotId }), finishReason: 'stop' } },
  ];
}

function reports(n) {
  return Array.from({ length: n }, (_, i) => ({ name: `report-${i + 1}.md`, parts: [{ text: `report ${i + 1}` }] }));
}

scenario('custom state patches and artifacts (server-managed)', async (ctx) => {
  const chat = ctx.agent('stateAgent').chat();
  const t1 = await collect(chat.sendStream('  go  '));
  check(!t1.error, 'turn 1 failed', t1.error && t1.error.message);
  eq(t1.chunks, customTurnChunks(1, 'go', t1.response.snapshotId), 'turn 1 chunks');
  eq(t1.customs, [{ counter: 1, status: 'working' }, undefined, { counter: 1, status: 'done' }, undefined, undefined], 'chunk.custom');
  eqKeys(t1.response.raw, ['sessionId', 'artifacts', 'message', 'finishReason', 'snapshotId'], 'output');
  eq(t1.response.raw.message, modelMsg('counter=1 turn=0'), 'turn 1 message');
  eq(t1.response.raw.artifacts, reports(1), 'turn 1 artifacts');
  eq(chat.state, { counter: 1, status: 'done' }, 'chat.state after turn 1');
  const t2 = await collect(chat.sendStream('again'));
  check(!t2.error, 'turn 2 failed', t2.error && t2.error.message);
  eq(t2.chunks, customTurnChunks(2, 'again', t2.response.snapshotId), 'turn 2 chunks (first patch re-bases with a root replace)');
  eq(t2.response.text, 'counter=2 turn=0', 'turn 2 text');
  eq(t2.response.raw.artifacts, reports(2), 'artifacts accumulate across turns');
  eq(chat.state, { counter: 2, status: 'done' }, 'chat.state after turn 2');
  const snap = await ctx.agent('stateAgent').getSnapshot(t2.response.snapshotId);
  eq([snap.parentId, snap.state.custom, snap.state.artifacts], [t1.response.snapshotId, { counter: 2, status: 'done' }, reports(2)], 'snapshot');
});

scenario('custom state round trip (client-managed)', async (ctx) => {
  const chat = ctx.agent('clientStateAgent').chat();
  const t1 = await collect(chat.sendStream('go'));
  check(!t1.error, 'turn 1 failed', t1.error && t1.error.message);
  eq(t1.chunks, customTurnChunks(1, 'go'), 'turn 1 chunks');
  eq(t1.response.raw.state.custom, { counter: 1, status: 'done' }, 'state.custom');
  const t2 = await collect(chat.sendStream('again'));
  check(!t2.error, 'turn 2 failed', t2.error && t2.error.message);
  eq(t2.chunks, customTurnChunks(2, 'again'), 'turn 2 chunks');
  eq(t2.response.raw.state.artifacts, reports(2), 'state.artifacts');
  eq(t2.response.raw.state.messages, [userMsg('go'), modelMsg('counter=1 turn=0'), userMsg('again'), modelMsg('counter=2 turn=0')], 'state.messages');
  eq(chat.state, { counter: 2, status: 'done' }, 'chat.state');
});

scenario('custom state schema enforced on init.state', async (ctx) => {
  const bad = { custom: { counter: 'not a number', status: 'done' }, messages: [], artifacts: [] };
  const raw = await ctx.postJson(`${ctx.prefix}/clientStateAgent`, { data: { message: userMsg('go') }, init: { state: bad } });
  eq(raw.status, 200, 'graceful failure is HTTP 200');
  const out = raw.json.result;
  eqKeys(out, ['finishReason', 'error', 'state'], 'output');
  eq([out.finishReason, out.error.status], ['failed', 'INVALID_ARGUMENT'], 'failure');
  eq(out.state, bad, 'init.state echoed back');
});

scenario('detach + poll until completed', async (ctx) => {
  const agent = ctx.agent('storeAgent');
  const chat = agent.chat();
  const s1 = (await chat.send('first')).snapshotId;
  const task = await chat.detach('background');
  check(isId(task.snapshotId) && task.snapshotId !== s1, 'detach returns a new pending snapshot id', task.snapshotId);
  eq(chat.snapshotId, task.snapshotId, 'chat follows the detached snapshot');
  const seen = [];
  for await (const snap of task.poll({ intervalMs: POLL_MS })) seen.push(snap.status);
  check(seen.every((s, i) => (i < seen.length - 1 ? s === 'pending' : s === 'completed')), 'statuses: pending* then completed', seen);
  const done = await agent.getSnapshot(task.snapshotId);
  eq([done.status, done.finishReason], ['completed', 'stop'], 'final status');
  eq(done.state.messages, [userMsg('first'), modelMsg('echo: first'), userMsg('background'), modelMsg('echo: background')], 'final state');
  // Genkit 1.42.0 records the detached row as its own parent (reference §4.5); the intended
  // lineage is the snapshot the detach started from. Either is accepted, nothing else.
  check(done.parentId === s1 || done.parentId === task.snapshotId, 'parentId: previous snapshot (or itself, Genkit 1.42.0 quirk)', done.parentId);
  eq((await chat.send('after')).text, 'echo: after', 'conversation continues from the detached turn');
  // On the wire: no chunks, just the result frame with finishReason detached.
  const raw = await ctx.post(`${ctx.prefix}/storeAgent`, { data: { message: userMsg('x'), detach: true }, init: { snapshotId: s1 } }, { stream: true });
  const frames = ctx.frames(raw.text, 'detach stream');
  eq(frames.length, 1, 'one frame');
  const out = frames[0].json.result;
  eqKeys(out, ['sessionId', 'snapshotId', 'finishReason'], 'detached output');
  eq(out.finishReason, 'detached', 'finishReason');
  const noStore = await ctx.postJson(`${ctx.prefix}/chatAgent`, { data: { message: userMsg('x'), detach: true }, init: {} });
  eq([noStore.status, noStore.json], [400, { status: 'FAILED_PRECONDITION', message: 'Detach is only supported when a session store is provided.' }], 'detach without a store');
});

scenario('detach slow then abort', async (ctx) => {
  const agent = ctx.agent('stateAgent');
  const chat = agent.chat();
  const r1 = await chat.send('go');
  const task = await chat.detach('slow');
  const pending = await agent.getSnapshot(task.snapshotId);
  eq([pending.status, pending.parentId], ['pending', r1.snapshotId], 'pending snapshot');
  check(ISO_TIME.test(pending.heartbeatAt), 'pending snapshot has heartbeatAt', pending.heartbeatAt);
  eq(pending.state.messages, [userMsg('go'), modelMsg('counter=1 turn=0')], 'pending state = state before the detached turn');
  const started = Date.now();
  eq(await task.abort(), 'pending', 'abort returns the previous status');
  const final = await task.wait({ intervalMs: POLL_MS });
  check(Date.now() - started < 5000, 'abort settles well before the 10 s wait ends', Date.now() - started);
  eq(final.status, 'aborted', 'snapshot status');
  check(!('finishReason' in final), 'aborted snapshot has no finishReason', final.finishReason);
  eq(final.state, pending.state, 'aborted snapshot keeps the pending-time state');
  eq(await task.abort(), 'aborted', 'abort of an aborted snapshot');
  eq(await agent.abort(r1.snapshotId), 'completed', 'abort of a completed snapshot');
  eq(await agent.abort('no-such-snapshot'), undefined, 'abort of a missing snapshot');
  eq((await agent.getSnapshot(r1.snapshotId)).status, 'completed', 'abort does not change a completed snapshot');
});

scenario('detach slowstream then abort (model cancelled)', async (ctx) => {
  const agent = ctx.agent('storeAgent');
  const chat = agent.chat();
  await chat.send('hello');
  const task = await chat.detach('slowstream');
  eq(await task.abort(), 'pending', 'abort returns the previous status');
  const final = await task.wait({ intervalMs: POLL_MS });
  eq(final.status, 'aborted', 'snapshot status');
  eq(final.state.messages, [userMsg('hello'), modelMsg('echo: hello')], 'aborted snapshot keeps the pending-time state');
});

scenario('slowstream streams tick 1 first', async (ctx) => {
  // The model then waits 10 s; a foreground abort only cancels the request client-side
  // (reference §1 #15), so the client stops after the first chunk and resolves `aborted`.
  const controller = new AbortController();
  const turn = ctx.agent('chatAgent').chat().sendStream('slowstream', { abortSignal: controller.signal });
  const chunks = [];
  for await (const c of turn.stream) {
    chunks.push(c.raw);
    controller.abort();
  }
  eq(chunks, [textChunk('tick 1')], 'chunks before the abort');
  eq((await turn.response).finishReason, 'aborted', 'client-side finishReason');
});

scenario('model failure keeps last-good state', async (ctx) => {
  const chat = ctx.agent('chatAgent').chat();
  const good = await chat.send('hello');
  const { chunks, error } = await collect(chat.sendStream('modelfail'));
  eqAgentError(error, 'RESOURCE_EXHAUSTED', 'model on fire', 'modelfail');
  eq(error.message, 'RESOURCE_EXHAUSTED: model on fire', 'error message (status prefix kept)');
  eq(chunks, [{ turnEnd: { finishReason: 'failed' } }], 'chunks');
  const raw = error.response.raw;
  eqKeys(raw, ['sessionId', 'finishReason', 'error', 'message', 'state'], 'failed output');
  eq(raw.error, { status: 'RESOURCE_EXHAUSTED', message: 'RESOURCE_EXHAUSTED: model on fire' }, 'output.error');
  eq(raw.state, good.raw.state, 'state = last good state');
  eq(raw.message, modelMsg('echo: hello'), 'message = last good message');
  eq((await chat.send('count')).text, 'history=3', 'the failed turn left no trace in the history');
  // Server-managed: the output points at the last good snapshot, the failed row is recorded.
  const store = ctx.agent('storeAgent').chat();
  const s1 = (await store.send('hello')).snapshotId;
  const failed = await collect(store.sendStream('modelfail'));
  eqAgentError(failed.error, 'RESOURCE_EXHAUSTED', 'model on fire', 'server-managed modelfail');
  eq(failed.error.response.raw.snapshotId, s1, 'snapshotId = last good');
  const failedId = failed.chunks.length === 1 && failed.chunks[0].turnEnd && failed.chunks[0].turnEnd.snapshotId;
  eq(failed.chunks, [{ turnEnd: { snapshotId: failedId, finishReason: 'failed' } }], 'server-managed chunks');
  const snap = await ctx.agent('storeAgent').getSnapshot(failedId);
  eq([snap.status, snap.finishReason, snap.parentId, snap.error], ['failed', 'failed', s1, { status: 'RESOURCE_EXHAUSTED', message: 'RESOURCE_EXHAUSTED: model on fire' }], 'failed snapshot');
  eq((await ctx.agent('storeAgent').getSnapshot({ sessionId: store.sessionId })).snapshotId, failedId, 'getSnapshot by sessionId returns the failed leaf');
  eq((await ctx.agent('storeAgent').chat({ sessionId: store.sessionId }).send('count')).text, 'history=3', 'a sessionId resume skips back to the last good snapshot');
});

scenario('custom handler failure', async (ctx) => {
  const chat = ctx.agent('stateAgent').chat();
  const good = await chat.send('go');
  const { chunks, error } = await collect(chat.sendStream('fail'));
  eqAgentError(error, 'INTERNAL', 'intentional failure', 'fail');
  const failedId = chunks.length === 3 && chunks[2].turnEnd && chunks[2].turnEnd.snapshotId;
  eq(
    chunks,
    [
      { customPatch: [{ op: 'replace', path: '', value: { counter: 2, status: 'working' } }] },
      textChunk('working on fail'),
      { turnEnd: { snapshotId: failedId, finishReason: 'failed' } },
    ],
    'chunks'
  );
  const raw = error.response.raw;
  eqKeys(raw, ['sessionId', 'finishReason', 'error', 'artifacts', 'message', 'snapshotId'], 'failed output');
  eq(raw.error, { status: 'INTERNAL', message: 'intentional failure' }, 'output.error');
  eq([raw.snapshotId, raw.message, raw.artifacts], [good.snapshotId, modelMsg('counter=1 turn=0'), reports(1)], 'last good snapshot, message, artifacts');
  const snap = await ctx.agent('stateAgent').getSnapshot(failedId);
  eq([snap.status, snap.parentId, snap.error, snap.state.custom], ['failed', good.snapshotId, { status: 'INTERNAL', message: 'intentional failure' }, { counter: 2, status: 'working' }], 'failed snapshot keeps the partial state');
  const next = await chat.send('go');
  eq(next.text, 'counter=2 turn=0', 'next turn resumes from the last good state');
  // Client-managed: the last good state comes back instead.
  const cchat = ctx.agent('clientStateAgent').chat();
  const cgood = await cchat.send('go');
  const cerr = await rejection(cchat.send('fail'));
  eqAgentError(cerr, 'INTERNAL', 'intentional failure', 'client-managed fail');
  eq(cerr.response.raw.state, cgood.raw.state, 'client-managed: state = last good state');
});

// ---------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = { url: undefined, prefix: '/agents', filter: '' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (value === undefined || !['--url', '--prefix', '--filter'].includes(key)) {
      throw new Error(`usage: node scenarios.cjs --url http://127.0.0.1:PORT [--prefix /agents] [--filter SUBSTR] (bad argument '${key}')`);
    }
    opts[key.slice(2)] = value;
  }
  if (!opts.url) throw new Error('--url is required');
  opts.url = opts.url.replace(/\/+$/, '');
  opts.prefix = `/${opts.prefix.replace(/^\/+|\/+$/g, '')}`;
  return opts;
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Mismatch(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  }
  const ctx = makeContext(opts.url, opts.prefix);
  let passed = 0;
  let failed = 0;
  for (const { name, fn } of scenarios) {
    if (!name.includes(opts.filter)) continue;
    try {
      await withTimeout(fn(ctx), SCENARIO_TIMEOUT_MS);
      passed++;
      console.log(`ok ${name}`);
    } catch (e) {
      failed++;
      const why = e instanceof Mismatch ? e.message : `${e.name}: ${e.message}`;
      console.log(`FAIL ${name}: ${why.replace(/\n/g, ' ')}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
