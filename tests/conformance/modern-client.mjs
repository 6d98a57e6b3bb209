// A client of protocol 2026-07-28 built on the TypeScript SDK v2 (@modelcontextprotocol/client),
// talking to `magg serve --http` in front of magg-test-backend `--modern` (prefix `m`): it
// answers the backend's questions (elicitation, sampling, roots) from its own handlers as the
// SDK fulfils `input_required` results, and checks what a user would.
//
// Usage: node modern-client.mjs URL   (prints `ts client: ok`; exits non-zero with the reason)

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const url = process.argv[2];
const asked = [];
const answers = { name: 'Ada', color: 'teal', topic: 'owls' };

function check(condition, what) {
  if (!condition) throw new Error(what);
}

const client = new Client(
  { name: 'ts-modern', version: '1.0.0' },
  {
    capabilities: { elicitation: { form: {} }, sampling: {}, roots: {} },
    versionNegotiation: { mode: 'auto' },
  },
);
client.setRequestHandler('elicitation/create', async (request) => {
  const field = Object.keys(request.params.requestedSchema.properties)[0];
  asked.push(request.params.message);
  return { action: 'accept', content: { [field]: answers[field] } };
});
client.setRequestHandler('sampling/createMessage', async () => {
  asked.push('sampling');
  return { role: 'assistant', content: { type: 'text', text: 'Paris' }, model: 'ts', stopReason: 'endTurn' };
});
client.setRequestHandler('roots/list', async () => {
  asked.push('roots');
  return { roots: [{ uri: 'file:///ts-root' }] };
});

await client.connect(new StreamableHTTPClientTransport(new URL(url)));
const discovered = client.getDiscoverResult?.();
check(discovered?.supportedVersions?.includes('2026-07-28'), `discover: ${JSON.stringify(discovered)}`);

const { tools } = await client.listTools();
const names = tools.map((t) => t.name);
check(names.includes('m_ask_twice') && names.includes('magg_status'), `tools: ${names}`);

const text = (result) => result.content.map((c) => c.text).join('');
let result = await client.callTool({ name: 'm_ask_twice', arguments: {} });
check(text(result) === 'name=Ada color=teal', `ask_twice: ${JSON.stringify(result)}`);
result = await client.callTool({ name: 'm_sample', arguments: { prompt: 'capital?' } });
check(text(result) === 'sampled: Paris', `sample: ${JSON.stringify(result)}`);
result = await client.callTool({ name: 'm_roots', arguments: {} });
check(text(result) === 'file:///ts-root', `roots: ${JSON.stringify(result)}`);
const prompt = await client.getPrompt({ name: 'm_ask_prompt' });
check(prompt.messages[0].content.text === 'Tell me about owls.', `prompt: ${JSON.stringify(prompt)}`);
check(asked.includes('What is your favorite color?'), `asked: ${asked}`);
await client.close();
console.log('ts client: ok');
