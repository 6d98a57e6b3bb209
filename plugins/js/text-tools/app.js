// text-tools: a magg tool provider in JavaScript with tools for regular expressions,
// Base64, URLs and text counts, run inside magg as a server of its own. It needs no grants.
//
// Tools:
// - `regex_search` {pattern, text, flags?, limit?}: every match (text, index, groups).
// - `regex_replace` {pattern, text, replacement, flags?}: the text with matches replaced
//   (`$1`, `$<name>` and `$&` in the replacement, as JavaScript's String.replace reads them).
// - `base64` {text, decode?}: encodes UTF-8 text as Base64, or decodes Base64 to text.
// - `parse_url` {url}: scheme, host, port, path, query parameters and fragment.
// - `count_text` {text}: characters, words, lines and bytes (UTF-8).
//
// A result is a JSON object in structured content, with the same JSON as text. A mistake in
// the arguments is a result with `isError` set that names the argument and what it needs.
//
// Built with componentize-js against the `tool-provider-plugin` world of wit/plugin.wit; see
// ../../build-py-js.sh.

/** The longest text a tool reads, in UTF-16 code units. */
const MAX_TEXT = 1 << 20;
/** How many matches `regex_search` returns at most. */
const MAX_MATCHES = 1000;

class ToolError extends Error {}

const readOnly = JSON.stringify({ readOnlyHint: true, idempotentHint: true, openWorldHint: false });

const TOOLS = [
  {
    name: 'regex_search',
    title: 'Regex search',
    description:
      'Finds every match of a JavaScript regular expression in a text, with its index and ' +
      'capture groups. Use it to extract or check patterns exactly. Example: ' +
      '{"pattern": "(\\\\d+)-(\\\\d+)", "text": "pages 10-20", "flags": "i"}.',
    inputSchema: {
      type: 'object',
      properties: {
        pattern: { type: 'string', description: 'The regular expression, without slashes.' },
        text: { type: 'string', description: 'The text to search.' },
        flags: { type: 'string', description: 'Flags among i, m, s, u, y (g is implied).', default: '' },
        limit: { type: 'integer', minimum: 1, maximum: MAX_MATCHES, default: 100, description: 'Most matches returned.' },
      },
      required: ['pattern', 'text'],
      additionalProperties: false,
    },
    outputSchema: {
      type: 'object',
      properties: {
        count: { type: 'integer' },
        truncated: { type: 'boolean' },
        matches: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              match: { type: 'string' },
              index: { type: 'integer' },
              groups: { type: 'array', items: { type: ['string', 'null'] } },
              named: { type: 'object', additionalProperties: { type: ['string', 'null'] } },
            },
            required: ['match', 'index', 'groups'],
          },
        },
      },
      required: ['count', 'truncated', 'matches'],
    },
    run: regexSearch,
  },
  {
    name: 'regex_replace',
    title: 'Regex replace',
    description:
      'Replaces every match of a JavaScript regular expression in a text. The replacement may ' +
      'use $1, $<name> and $&. Example: {"pattern": "\\\\s+", "text": "a  b   c", "replacement": " "}.',
    inputSchema: {
      type: 'object',
      properties: {
        pattern: { type: 'string', description: 'The regular expression, without slashes.' },
        text: { type: 'string', description: 'The text to change.' },
        replacement: { type: 'string', description: 'What each match becomes.' },
        flags: { type: 'string', description: 'Flags among i, m, s, u, y (g is implied).', default: '' },
      },
      required: ['pattern', 'text', 'replacement'],
      additionalProperties: false,
    },
    outputSchema: {
      type: 'object',
      properties: { text: { type: 'string' }, replaced: { type: 'integer' } },
      required: ['text', 'replaced'],
    },
    run: regexReplace,
  },
  {
    name: 'base64',
    title: 'Base64',
    description:
      'Encodes UTF-8 text as Base64, or decodes Base64 (standard or URL-safe alphabet) back to ' +
      'text. Example: {"text": "aGVsbG8=", "decode": true}.',
    inputSchema: {
      type: 'object',
      properties: {
        text: { type: 'string', description: 'The text to encode, or the Base64 to decode.' },
        decode: { type: 'boolean', default: false, description: 'Decode instead of encode.' },
      },
      required: ['text'],
      additionalProperties: false,
    },
    outputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
    run: base64,
  },
  {
    name: 'parse_url',
    title: 'Parse a URL',
    description:
      'Splits a URL into scheme, user, host, port, path, query parameters (decoded) and ' +
      'fragment. Example: {"url": "https://example.com:8443/a/b?q=1&q=2#top"}.',
    inputSchema: {
      type: 'object',
      properties: { url: { type: 'string', description: 'An absolute URL.' } },
      required: ['url'],
      additionalProperties: false,
    },
    outputSchema: {
      type: 'object',
      properties: {
        scheme: { type: 'string' },
        user: { type: ['string', 'null'] },
        host: { type: 'string' },
        port: { type: ['integer', 'null'] },
        path: { type: 'string' },
        query: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
        fragment: { type: ['string', 'null'] },
      },
      required: ['scheme', 'host', 'path', 'query'],
    },
    run: parseUrl,
  },
  {
    name: 'count_text',
    title: 'Count text',
    description:
      'Counts the characters (Unicode code points), words (runs of non-space characters), ' +
      'lines and UTF-8 bytes of a text. ' +
      'Example: {"text": "one two\\nthree"}.',
    inputSchema: {
      type: 'object',
      properties: { text: { type: 'string', description: 'The text to count.' } },
      required: ['text'],
      additionalProperties: false,
    },
    outputSchema: {
      type: 'object',
      properties: {
        characters: { type: 'integer' },
        words: { type: 'integer' },
        lines: { type: 'integer' },
        bytes: { type: 'integer' },
      },
      required: ['characters', 'words', 'lines', 'bytes'],
    },
    run: countText,
  },
];

const BY_NAME = new Map(TOOLS.map((tool) => [tool.name, tool]));

function text(args, key) {
  const value = args[key];
  if (typeof value !== 'string') {
    throw new ToolError(`\`${key}\` must be a string`);
  }
  if (value.length > MAX_TEXT) {
    throw new ToolError(`\`${key}\` is longer than ${MAX_TEXT} characters`);
  }
  return value;
}

function regex(args) {
  const pattern = text(args, 'pattern');
  const flags = args.flags ?? '';
  if (typeof flags !== 'string' || !/^[imsuy]*$/.test(flags)) {
    throw new ToolError('`flags` must be a string of the flags i, m, s, u and y (g is implied)');
  }
  try {
    return new RegExp(pattern, `${flags}g`);
  } catch (e) {
    throw new ToolError(`\`pattern\` is not a valid regular expression: ${e.message}`);
  }
}

function regexSearch(args) {
  const re = regex(args);
  const input = text(args, 'text');
  const limit = args.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_MATCHES) {
    throw new ToolError(`\`limit\` must be an integer from 1 to ${MAX_MATCHES}`);
  }
  const matches = [];
  let truncated = false;
  for (const m of input.matchAll(re)) {
    if (matches.length === limit) {
      truncated = true;
      break;
    }
    const found = { match: m[0], index: m.index, groups: m.slice(1).map((g) => g ?? null) };
    if (m.groups) {
      found.named = Object.fromEntries(Object.entries(m.groups).map(([k, v]) => [k, v ?? null]));
    }
    matches.push(found);
  }
  return { count: matches.length, truncated, matches };
}

function regexReplace(args) {
  const re = regex(args);
  const input = text(args, 'text');
  const replacement = text(args, 'replacement');
  let replaced = 0;
  const out = input.replace(re, (...m) => {
    replaced += 1;
    // Expand $1, $<name> and $& as String.replace would with a string replacement.
    const groups = typeof m[m.length - 1] === 'object' ? m[m.length - 1] : undefined;
    const captures = m.slice(1, groups ? -3 : -2);
    return replacement.replace(/\$(\$|&|\d{1,2}|<([^>]*)>)/g, (token, what, name) => {
      if (what === '$') return '$';
      if (what === '&') return m[0];
      if (name !== undefined) return groups?.[name] ?? '';
      const index = Number(what);
      return index >= 1 && index <= captures.length ? (captures[index - 1] ?? '') : token;
    });
  });
  return { text: out, replaced };
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function base64(args) {
  const input = text(args, 'text');
  if (args.decode !== undefined && typeof args.decode !== 'boolean') {
    throw new ToolError('`decode` must be true or false');
  }
  if (!args.decode) {
    const bytes = new TextEncoder().encode(input);
    let out = '';
    for (let i = 0; i < bytes.length; i += 3) {
      const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
      out += BASE64[(n >> 18) & 63] + BASE64[(n >> 12) & 63];
      out += i + 1 < bytes.length ? BASE64[(n >> 6) & 63] : '=';
      out += i + 2 < bytes.length ? BASE64[n & 63] : '=';
    }
    return { text: out };
  }
  const clean = input.replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]*$/.test(clean) || clean.length % 4 === 1) {
    throw new ToolError('`text` is not Base64 (standard or URL-safe alphabet)');
  }
  const bytes = [];
  for (let i = 0; i < clean.length; i += 4) {
    const chunk = clean.slice(i, i + 4);
    let n = 0;
    for (let j = 0; j < 4; j += 1) {
      n = (n << 6) | (j < chunk.length ? BASE64.indexOf(chunk[j]) : 0);
    }
    bytes.push((n >> 16) & 255);
    if (chunk.length > 2) bytes.push((n >> 8) & 255);
    if (chunk.length > 3) bytes.push(n & 255);
  }
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes)) };
  } catch {
    throw new ToolError('the decoded bytes are not UTF-8 text');
  }
}

const URL_PARTS = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(?:([^@/?#]*)@)?(\[[^\]]*\]|[^:/?#]*)(?::(\d*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/;

function decodePart(part, what) {
  try {
    return decodeURIComponent(part.replace(/\+/g, ' '));
  } catch {
    throw new ToolError(`the URL's ${what} has a bad percent-escape: ${part}`);
  }
}

function parseUrl(args) {
  const url = text(args, 'url').trim();
  const m = URL_PARTS.exec(url);
  if (!m || m[3] === '') {
    throw new ToolError('`url` must be an absolute URL such as https://example.com/path');
  }
  const [, scheme, user, host, port, path, query, fragment] = m;
  const params = {};
  if (query) {
    for (const pair of query.split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const key = decodePart(eq < 0 ? pair : pair.slice(0, eq), 'query');
      const value = eq < 0 ? '' : decodePart(pair.slice(eq + 1), 'query');
      (params[key] ??= []).push(value);
    }
  }
  const portNumber = port ? Number(port) : null;
  if (portNumber !== null && portNumber > 65535) {
    throw new ToolError(`the URL's port ${port} is above 65535`);
  }
  return {
    scheme: scheme.toLowerCase(),
    user: user ?? null,
    host: host.toLowerCase(),
    port: portNumber,
    path: path || '/',
    query: params,
    fragment: fragment ?? null,
  };
}

function countText(args) {
  const input = text(args, 'text');
  // Words are runs of characters other than white space.
  const words = input.match(/\S+/g);
  return {
    characters: [...input].length,
    words: words ? words.length : 0,
    lines: input === '' ? 0 : input.split(/\r\n|\r|\n/).length,
    bytes: new TextEncoder().encode(input).length,
  };
}

function result(value) {
  const json = JSON.stringify(value);
  return {
    content: JSON.stringify([{ type: 'text', text: json }]),
    structuredContent: json,
    isError: false,
  };
}

function failure(message) {
  return {
    content: JSON.stringify([{ type: 'text', text: message }]),
    structuredContent: undefined,
    isError: true,
  };
}

export const toolProvider = {
  listTools() {
    return TOOLS.map((tool) => ({
      name: tool.name,
      title: tool.title,
      description: tool.description,
      inputSchema: JSON.stringify(tool.inputSchema),
      outputSchema: JSON.stringify(tool.outputSchema),
      annotations: readOnly,
    }));
  },

  callTool(name, argumentsText) {
    const tool = BY_NAME.get(name);
    if (!tool) {
      return failure(`unknown tool \`${name}\`; this server has: ${TOOLS.map((t) => t.name).join(', ')}`);
    }
    let args;
    try {
      args = argumentsText.trim() === '' ? {} : JSON.parse(argumentsText);
    } catch (e) {
      return failure(`the arguments are not JSON: ${e.message}`);
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      return failure('the arguments must be a JSON object');
    }
    try {
      return result(tool.run(args));
    } catch (e) {
      if (e instanceof ToolError) {
        return failure(e.message);
      }
      throw e;
    }
  },
};
