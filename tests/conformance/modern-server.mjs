// A backend of protocol 2026-07-28, built on the TypeScript SDK v2 (@modelcontextprotocol/server),
// served over streamable HTTP: the tools and the prompt the conformance suite's
// `input-required-result-*` scenarios call, which answer `input_required` (SEP-2322) instead of
// sending the client requests. The conformance test mounts it in magg beside server.mjs (the
// session-era backend with everything else), so the suite finds every tool it needs through magg.
//
// Usage: node modern-server.mjs   (prints `listening <port>` on stdout once it serves at
//                                   http://127.0.0.1:<port>/mcp)

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

import { toNodeHandler } from '@modelcontextprotocol/node';
import {
  createMcpHandler,
  inputRequired,
  McpServer,
  MissingRequiredClientCapabilityError,
  ProtocolError,
} from '@modelcontextprotocol/server';
import { z } from 'zod';

const KEY = randomBytes(32);

/** `payload`, signed: `<payload>.<hmac>`, so a tampered state is refused. */
function seal(payload) {
  const mac = createHmac('sha256', KEY).update(payload).digest('base64url');
  return `${payload}.${mac}`;
}

/** The payload of a state `seal` made, or null when it was changed. */
function unseal(state) {
  if (typeof state !== 'string') return null;
  const at = state.lastIndexOf('.');
  if (at < 0) return null;
  const payload = state.slice(0, at);
  const want = Buffer.from(createHmac('sha256', KEY).update(payload).digest('base64url'));
  const got = Buffer.from(state.slice(at + 1));
  return want.length === got.length && timingSafeEqual(want, got) ? payload : null;
}

const textSchema = (field) => ({
  type: 'object',
  properties: { [field]: { type: 'string' } },
  required: [field],
});

const text = (t) => ({ content: [{ type: 'text', text: t }] });

/** The accepted form content of the response `key`, or undefined. */
function accepted(responses, key) {
  const response = responses?.[key];
  return response && response.action === 'accept' && typeof response.content === 'object'
    ? response.content
    : undefined;
}

function elicit(message, field) {
  return { method: 'elicitation/create', params: { message, requestedSchema: textSchema(field) } };
}

const invalid = (message) => new ProtocolError(-32602, message);

/** Tools and prompts the list-mutation hooks added, so every request's instance serves them. */
const added = { tools: 0, prompts: 0 };

function build() {
  const server = new McpServer(
    { name: 'magg-modern-test-server', version: '1.0.0' },
    {
      capabilities: { tools: {}, prompts: {} },
      // Every state this server mints is signed; a changed one is refused with -32602.
      requestState: {
        verify: (state) => {
          if (unseal(state) === null) throw new Error('requestState failed its integrity check');
        },
      },
    },
  );
  const tool = (name, description, handler) =>
    server.registerTool(name, { description, inputSchema: z.object({}).passthrough() }, handler);

  tool('test_input_required_result_elicitation', 'Asks the user for a name.', async (_a, ctx) => {
    const responses = ctx.mcpReq.inputResponses;
    if (responses !== undefined && (typeof responses !== 'object' || Array.isArray(responses))) {
      throw invalid('inputResponses must be an object of responses by key');
    }
    const got = responses?.user_name;
    if (got !== undefined && (typeof got !== 'object' || got === null || !('action' in got))) {
      throw invalid('inputResponses.user_name must be an elicitation result');
    }
    const content = accepted(responses, 'user_name');
    if (!content) {
      return inputRequired({ inputRequests: { user_name: elicit('What is your name?', 'name') } });
    }
    return text(`Hello, ${content.name}!`);
  });

  tool('test_input_required_result_sampling', 'Asks the client LLM a question.', async (_a, ctx) => {
    const answer = ctx.mcpReq.inputResponses?.capital_question;
    if (!answer) {
      return inputRequired({
        inputRequests: {
          capital_question: {
            method: 'sampling/createMessage',
            params: {
              messages: [{ role: 'user', content: { type: 'text', text: 'What is the capital of France?' } }],
              maxTokens: 100,
            },
          },
        },
      });
    }
    return text(`The model said: ${answer.content?.text ?? ''}`);
  });

  tool('test_input_required_result_list_roots', "Asks the client's roots.", async (_a, ctx) => {
    const roots = ctx.mcpReq.inputResponses?.client_roots?.roots;
    if (!Array.isArray(roots)) {
      return inputRequired({ inputRequests: { client_roots: { method: 'roots/list', params: {} } } });
    }
    return text(`Roots: ${roots.map((r) => r.uri).join(', ')}`);
  });

  tool('test_input_required_result_request_state', 'Round-trips a request state.', async (_a, ctx) => {
    const state = ctx.mcpReq.inputResponses?.confirm ? unseal(ctx.mcpReq.requestState()) : null;
    if (state !== 'confirm') {
      return inputRequired({
        inputRequests: {
          confirm: {
            method: 'elicitation/create',
            params: {
              message: 'Please confirm',
              requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
            },
          },
        },
        requestState: seal('confirm'),
      });
    }
    return text('state-ok: confirmed');
  });

  tool('test_input_required_result_multiple_inputs', 'Asks three things at once.', async (_a, ctx) => {
    const r = ctx.mcpReq.inputResponses ?? {};
    if (!(r.user_name && r.greeting && r.client_roots) || unseal(ctx.mcpReq.requestState()) !== 'many') {
      return inputRequired({
        inputRequests: {
          user_name: elicit('What is your name?', 'name'),
          greeting: {
            method: 'sampling/createMessage',
            params: {
              messages: [{ role: 'user', content: { type: 'text', text: 'Generate a greeting' } }],
              maxTokens: 50,
            },
          },
          client_roots: { method: 'roots/list', params: {} },
        },
        requestState: seal('many'),
      });
    }
    return text(`name=${accepted(r, 'user_name')?.name} roots=${r.client_roots.roots?.length ?? 0}`);
  });

  tool('test_input_required_result_multi_round', 'Asks a name, then a color.', async (_a, ctx) => {
    const state = unseal(ctx.mcpReq.requestState());
    const r = ctx.mcpReq.inputResponses;
    if (state?.startsWith('name:') && accepted(r, 'step2')) {
      return text(`${state.slice(5)} likes ${accepted(r, 'step2').color}`);
    }
    if (state === 'step1' && accepted(r, 'step1')) {
      return inputRequired({
        inputRequests: { step2: elicit('Step 2: What is your favorite color?', 'color') },
        requestState: seal(`name:${accepted(r, 'step1').name}`),
      });
    }
    return inputRequired({
      inputRequests: { step1: elicit('Step 1: What is your name?', 'name') },
      requestState: seal('step1'),
    });
  });

  tool('test_input_required_result_tampered_state', 'Refuses a changed state.', async (_a, ctx) => {
    if (ctx.mcpReq.requestState() === undefined) {
      return inputRequired({
        inputRequests: { confirm: elicit('Confirm?', 'ok') },
        requestState: seal('untampered'),
      });
    }
    return text('state intact');
  });

  tool('test_input_required_result_capabilities', 'Asks only what the client can answer.', async (_a, ctx) => {
    const envelope = ctx.mcpReq.envelope ?? {};
    const caps =
      envelope.clientCapabilities ?? envelope['io.modelcontextprotocol/clientCapabilities'] ?? {};
    const requests = {};
    if (caps.sampling) {
      requests.sample = {
        method: 'sampling/createMessage',
        params: { messages: [{ role: 'user', content: { type: 'text', text: 'Hi' } }], maxTokens: 10 },
      };
    }
    if (caps.elicitation) requests.ask = elicit('Your name?', 'name');
    if (caps.roots) requests.roots = { method: 'roots/list', params: {} };
    if (Object.keys(requests).length === 0 || ctx.mcpReq.inputResponses) {
      return text('done');
    }
    return inputRequired({ inputRequests: requests });
  });

  // Diagnostic tools of the stateless scenario (server-stateless). test_missing_capability is
  // refused before it runs when the client lacks sampling (see `refuseUndeclared`).
  tool('test_missing_capability', 'Needs sampling, which the client must declare.', async () =>
    text('the client declared sampling'),
  );
  tool('test_streaming_elicitation', 'Reports progress, then asks for a name.', async (_a, ctx) => {
    if (ctx.mcpReq.inputResponses?.name) return text('thanks');
    const token = ctx.mcpReq._meta?.progressToken;
    if (token !== undefined) {
      await ctx.mcpReq.notify({
        method: 'notifications/progress',
        params: { progressToken: token, progress: 1, total: 2 },
      });
    }
    return inputRequired({ inputRequests: { name: elicit('What is your name?', 'name') } });
  });
  tool('test_logging_tool', 'Logs a message at info level.', async (_a, ctx) => {
    await ctx.mcpReq.log('info', 'a log message from test_logging_tool');
    return text('logged');
  });
  tool('test_trigger_tool_change', 'Adds a tool.', async () => {
    added.tools += 1;
    handler.notify.toolsChanged();
    return text(`tools added: ${added.tools}`);
  });
  tool('test_trigger_prompt_change', 'Adds a prompt.', async () => {
    added.prompts += 1;
    handler.notify.promptsChanged();
    return text(`prompts added: ${added.prompts}`);
  });
  for (let i = 1; i <= added.tools; i++) {
    tool(`added_tool_${i}`, 'A tool test_trigger_tool_change added.', async () => text(`added ${i}`));
  }
  for (let i = 1; i <= added.prompts; i++) {
    server.registerPrompt(`added_prompt_${i}`, { description: 'An added prompt.' }, async () => ({
      messages: [{ role: 'user', content: { type: 'text', text: `added ${i}` } }],
    }));
  }

  server.registerPrompt(
    'test_input_required_result_prompt',
    { description: 'A prompt that asks for its context first.' },
    async (ctx) => {
      const content = accepted(ctx.mcpReq.inputResponses, 'user_context');
      if (!content) {
        return inputRequired({
          inputRequests: { user_context: elicit('What context should the prompt use?', 'context') },
        });
      }
      return {
        messages: [{ role: 'user', content: { type: 'text', text: `Context: ${content.context}` } }],
      };
    },
  );
  return server;
}

/**
 * Answers a tools/call of test_missing_capability from a client that did not declare sampling
 * with MissingRequiredClientCapabilityError (-32021, HTTP 400), before any tool runs; true when
 * it did.
 */
function refuseUndeclared(message, res) {
  if (message?.method !== 'tools/call' || message.params?.name !== 'test_missing_capability') {
    return false;
  }
  const caps = message.params?._meta?.['io.modelcontextprotocol/clientCapabilities'] ?? {};
  if (caps.sampling) return false;
  const error = new MissingRequiredClientCapabilityError(
    { requiredCapabilities: { sampling: {} } },
    'test_missing_capability needs the sampling capability',
  );
  res.writeHead(400, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      jsonrpc: '2.0',
      id: message.id ?? null,
      error: { code: error.code, message: error.message, data: error.data },
    }),
  );
  return true;
}

const handler = createMcpHandler(build);
const node = toNodeHandler(handler);
const http = createServer((req, res) => {
  if (!req.url?.startsWith('/mcp')) {
    res.writeHead(404).end();
    return;
  }
  if (req.method !== 'POST') {
    node(req, res);
    return;
  }
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      body = undefined;
    }
    if (!refuseUndeclared(body, res)) node(req, res, body);
  });
});
http.listen(0, '127.0.0.1', () => {
  console.log(`listening ${http.address().port}`);
});
const stop = () => http.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
