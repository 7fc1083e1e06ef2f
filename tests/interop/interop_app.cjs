'use strict';
// The interop agents of ../shared/interop-agents.md, defined with the real Genkit JS 1.42.0 API.
// Shared by genkit_server.cjs (served over HTTP) and bench/agent/genkit_bench.cjs (in process),
// so both sides run exactly the same model, tools and agents.
//
// CommonJS on purpose: @genkit-ai/express 1.42.0 resolves to its CJS build even from ESM, and
// its error mapping only recognises GenkitErrors from the CJS genkit (reference §3.6).

const { genkit, z, GenkitError, InMemorySessionStore, GENKIT_VERSION } = require('genkit/beta');

const SYSTEM_PROMPT = 'You are a deterministic test agent.';
const SLOW_WAIT_MS = 10000;

// Agent names in the order /healthz lists them.
const AGENT_NAMES = [
  'chatAgent',
  'toolAgent',
  'interruptAgent',
  'storeAgent',
  'stateAgent',
  'clientStateAgent',
];

// ASCII whitespace only, so a C implementation trims and splits exactly the same way
// (String.prototype.trim would also strip Unicode spaces such as U+00A0).
const ASCII_SPACE = /[ \t\n\v\f\r]+/;
function asciiTrim(s) {
  return s.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '');
}

function textOf(parts) {
  return (parts || [])
    .filter((p) => typeof p.text === 'string')
    .map((p) => p.text)
    .join('');
}

function lastUserText(messages) {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role === 'user') return textOf(messages[i].content);
  }
  return '';
}

function parseCommand(text) {
  const trimmed = asciiTrim(text);
  const words = trimmed === '' ? [] : trimmed.split(ASCII_SPACE);
  return { trimmed, command: words[0] || '', args: words.slice(1) };
}

function textResponse(text) {
  return { message: { role: 'model', content: [{ text }] }, finishReason: 'stop' };
}

function toolRequestResponse(requests) {
  return {
    message: {
      role: 'model',
      content: requests.map(([name, ref, input]) => ({ toolRequest: { name, ref, input } })),
    },
    finishReason: 'stop',
  };
}

// Resolves after `ms`, or rejects with `makeError()` as soon as `signal` aborts.
function abortableWait(ms, signal, makeError) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(makeError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(makeError());
    };
    const timer = setTimeout(() => {
      if (signal) signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
  });
}

// The deterministic model `scripted` (interop-agents.md, conditions checked in table order).
async function scriptedModel(request, { sendChunk, abortSignal }) {
  const messages = request.messages || [];
  const last = messages[messages.length - 1];
  if (last && last.role === 'tool') {
    const outputs = last.content.filter((p) => p.toolResponse).map((p) => p.toolResponse.output);
    return textResponse(`tool result: ${JSON.stringify(outputs)}`);
  }
  const { trimmed, command, args } = parseCommand(lastUserText(messages));
  switch (command) {
    case 'stream':
      if (args.length === 0) break;
      args.forEach((word, i) => {
        sendChunk({ content: [{ text: i < args.length - 1 ? `${word} ` : word }] });
      });
      return textResponse(args.join(' '));
    case 'slowstream':
      sendChunk({ content: [{ text: 'tick 1' }] });
      await abortableWait(
        SLOW_WAIT_MS,
        abortSignal,
        () => new GenkitError({ status: 'CANCELLED', message: 'slowstream cancelled' })
      );
      return textResponse('slow done');
    case 'weather':
      return toolRequestResponse([['getWeather', 'w1', { city: args.join(' ') }]]);
    case 'transfer': {
      const amount = Number(args.join(' '));
      if (args.length === 0 || !Number.isFinite(amount)) break;
      return toolRequestResponse([['approveTransfer', 't1', { amount }]]);
    }
    case 'delete':
      return toolRequestResponse([['deleteFile', 'd1', { path: args.join(' ') }]]);
    case 'both':
      return toolRequestResponse([
        ['getWeather', 'w1', { city: 'Oslo' }],
        ['approveTransfer', 't1', { amount: 5 }],
      ]);
    case 'count':
      return textResponse(`history=${messages.filter((m) => m.role !== 'system').length}`);
    case 'system?': {
      const system = messages.find((m) => m.role === 'system');
      return textResponse(`system=${system ? textOf(system.content) : 'none'}`);
    }
    case 'modelfail':
      throw new GenkitError({ status: 'RESOURCE_EXHAUSTED', message: 'model on fire' });
    default:
      break;
  }
  return textResponse(`echo: ${trimmed}`);
}

function defineTools(ai) {
  ai.defineTool(
    {
      name: 'getWeather',
      description: 'Current weather for a city.',
      inputSchema: z.object({ city: z.string() }),
      outputSchema: z.object({ city: z.string(), tempC: z.number(), sky: z.string() }),
    },
    async ({ city }) => ({ city, tempC: 21, sky: 'clear' })
  );
  ai.defineInterrupt({
    name: 'approveTransfer',
    description: 'Asks a human to approve a money transfer.',
    inputSchema: z.object({ amount: z.number() }),
    outputSchema: z.object({ approved: z.boolean() }),
  });
  ai.defineTool(
    {
      name: 'deleteFile',
      description: 'Deletes a file after the user confirms.',
      inputSchema: z.object({ path: z.string() }),
      outputSchema: z.any(),
    },
    async ({ path }, { interrupt, resumed }) => {
      if (!resumed) interrupt({ reason: 'confirm delete', path });
      return { deleted: path, resumed };
    }
  );
}

const CustomStateSchema = z.object({ counter: z.number(), status: z.string() });

// The custom handler of interop-agents.md (steps 1-8), shared by stateAgent and clientStateAgent.
async function customHandler(sess, { sendChunk, abortSignal }) {
  await sess.run(async (input, turn) => {
    const text = input.message ? asciiTrim(textOf(input.message.content)) : 'resume';
    const counter = ((sess.getCustom() && sess.getCustom().counter) || 0) + 1;
    sess.updateCustom(() => ({ counter, status: 'working' }));
    sendChunk({ modelChunk: { role: 'model', index: 0, content: [{ text: `working on ${text}` }] } });
    if (text === 'slow') {
      await abortableWait(SLOW_WAIT_MS, abortSignal, () => new Error('turn aborted'));
    }
    if (text === 'fail') throw new Error('intentional failure');
    sess.updateCustom((custom) => ({ ...custom, status: 'done' }));
    sess.addArtifacts([{ name: `report-${counter}.md`, parts: [{ text: `report ${counter}` }] }]);
    sess.addMessages([
      { role: 'model', content: [{ text: `counter=${counter} turn=${turn.turnIndex}` }] },
    ]);
    return { finishReason: 'stop' };
  });
  const messages = sess.getMessages();
  return {
    message: messages[messages.length - 1],
    artifacts: sess.getArtifacts(),
    finishReason: sess.lastTurnFinishReason,
  };
}

// Builds a Genkit instance with the scripted model, the tools and all six agents.
// Returns { ai, agents } where agents maps each name of AGENT_NAMES to its Agent.
function createInteropApp() {
  const ai = genkit({});
  ai.defineModel(
    { name: 'scripted', apiVersion: 'v2', supports: { multiturn: true, tools: true, systemRole: true } },
    scriptedModel
  );
  defineTools(ai);
  const prompt = (name, tools, store) =>
    ai.defineAgent({
      name,
      model: 'scripted',
      system: SYSTEM_PROMPT,
      ...(tools && { tools }),
      ...(store && { store }),
    });
  const agents = {
    chatAgent: prompt('chatAgent'),
    toolAgent: prompt('toolAgent', ['getWeather']),
    interruptAgent: prompt(
      'interruptAgent',
      ['getWeather', 'approveTransfer', 'deleteFile'],
      new InMemorySessionStore()
    ),
    storeAgent: prompt('storeAgent', undefined, new InMemorySessionStore()),
    stateAgent: ai.defineCustomAgent(
      { name: 'stateAgent', stateSchema: CustomStateSchema, store: new InMemorySessionStore() },
      customHandler
    ),
    clientStateAgent: ai.defineCustomAgent(
      { name: 'clientStateAgent', stateSchema: CustomStateSchema },
      customHandler
    ),
  };
  return { ai, agents };
}

module.exports = { AGENT_NAMES, GENKIT_VERSION, SYSTEM_PROMPT, createInteropApp };
