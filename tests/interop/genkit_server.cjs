'use strict';
// Genkit JS 1.42.0 reference server for agentkit.h interop tests.
//
//   node genkit_server.cjs [--port N] [--host H]
//
// Serves the agents of ../shared/interop-agents.md at POST /agents/<name> and POST /api/<name>,
// each with /getSnapshot and /abort companions, plus GET /healthz. Prints `listening <port>`
// on stdout once ready (--port 0 picks an ephemeral port) and exits 0 on SIGTERM/SIGINT.
//
// Everything Genkit answers comes from the real @genkit-ai/express handler. The app itself only
// decides what Express would otherwise answer with HTML pages, answering with Genkit-style JSON
// error bodies instead: unknown routes (404 NOT_FOUND), a non-POST method on an agent route
// (405 with `Allow: POST`), a body that is not JSON (400 INVALID_ARGUMENT) or too large (413).

const express = require('express');
const { expressHandler } = require('@genkit-ai/express');
const { logger } = require('genkit/logging');
const { AGENT_NAMES, createInteropApp } = require('./interop_app.cjs');

const PREFIXES = ['/agents', '/api'];

function parseArgs(argv) {
  const opts = { port: 0, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === '--port' && value !== undefined && /^\d+$/.test(value) && Number(value) < 65536) {
      opts.port = Number(value);
      i++;
    } else if (argv[i] === '--host' && value) {
      opts.host = value;
      i++;
    } else {
      throw new Error(`usage: node genkit_server.cjs [--port N] [--host H] (bad argument '${argv[i]}')`);
    }
  }
  return opts;
}

function sendError(res, httpStatus, status, message) {
  res.status(httpStatus).json({ status, message });
}

function mountAgentRoutes(app, agents) {
  for (const prefix of PREFIXES) {
    for (const name of AGENT_NAMES) {
      const agent = agents[name];
      const base = `${prefix}/${name}`;
      app.post(base, expressHandler(agent));
      app.post(`${base}/getSnapshot`, expressHandler(agent.getSnapshotDataAction));
      app.post(`${base}/abort`, expressHandler(agent.abortAgentAction));
      for (const path of [base, `${base}/getSnapshot`, `${base}/abort`]) {
        app.all(path, (req, res) => {
          res.set('Allow', 'POST');
          sendError(res, 405, 'UNIMPLEMENTED', `Method ${req.method} is not allowed on ${req.path}; use POST.`);
        });
      }
    }
  }
}

function buildExpressApp(agents) {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (req, res) => {
    res.json({ ok: true, agents: AGENT_NAMES });
  });
  app.use(express.json());
  mountAgentRoutes(app, agents);
  app.use((req, res) => {
    sendError(res, 404, 'NOT_FOUND', `Cannot ${req.method} ${req.path}`);
  });
  // Body-parser failures; Express's default handler would answer an HTML page with a stack.
  app.use((err, req, res, next) => {
    if (res.headersSent) {
      next(err);
    } else if (err && err.type === 'entity.parse.failed') {
      sendError(res, 400, 'INVALID_ARGUMENT', 'Request body is not valid JSON.');
    } else if (err && err.type === 'entity.too.large') {
      sendError(res, 413, 'RESOURCE_EXHAUSTED', 'Request body is too large.');
    } else {
      sendError(res, 500, 'INTERNAL', 'Internal Error');
    }
  });
  return app;
}

function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  }
  // Genkit logs expected request failures with stacks; keep stdout for the ready line only.
  logger.setLogLevel('error');
  const { agents } = createInteropApp();
  const server = buildExpressApp(agents).listen(opts.port, opts.host, () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });
  server.on('error', (e) => {
    process.stderr.write(`genkit_server: ${e.message}\n`);
    process.exit(1);
  });
  const stop = () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
