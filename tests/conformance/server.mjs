// A stdio MCP server with every tool, resource, prompt and completion the server scenarios of
// the MCP conformance suite (@modelcontextprotocol/conformance) ask for, under the names and with
// the behaviour their scenario descriptions give. magg's conformance test puts it behind
// `magg serve --http` without a prefix and runs the suite against magg.
//
// It uses the SDK's low-level Server, so the schemas on the wire are exactly the ones written
// here (JSON Schema 2020-12 keywords included).

import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";

/** A 1x1 red PNG. */
const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

/** A tiny WAV file: 8 silent samples of 8-bit mono PCM at 8 kHz. */
const WAV = (() => {
  const samples = Buffer.alloc(8, 0x80);
  const header = Buffer.alloc(44);
  header.write("RIFF", 0);
  header.writeUInt32LE(36 + samples.length, 4);
  header.write("WAVE", 8);
  header.write("fmt ", 12);
  header.writeUInt32LE(16, 16); // fmt chunk size
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(8000, 24); // sample rate
  header.writeUInt32LE(8000, 28); // byte rate
  header.writeUInt16LE(1, 32); // block align
  header.writeUInt16LE(8, 34); // bits per sample
  header.write("data", 36);
  header.writeUInt32LE(samples.length, 40);
  return Buffer.concat([header, samples]).toString("base64");
})();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const text = (t) => ({ type: "text", text: t });

const noArgs = { type: "object", properties: {} };

const server = new Server(
  { name: "magg-conformance-backend", version: "1.0.0" },
  {
    capabilities: {
      tools: {},
      resources: { subscribe: true },
      prompts: {},
      logging: {},
      completions: {},
    },
  },
);

// ---- tools ----

/** The tools, as `tools/list` reports them. */
const TOOLS = [
  {
    name: "test_simple_text",
    description: "Returns a simple text response",
    inputSchema: noArgs,
  },
  {
    name: "test_image_content",
    description: "Returns an image (a 1x1 red PNG)",
    inputSchema: noArgs,
  },
  {
    name: "test_audio_content",
    description: "Returns audio (a tiny WAV file)",
    inputSchema: noArgs,
  },
  {
    name: "test_embedded_resource",
    description: "Returns an embedded text resource",
    inputSchema: noArgs,
  },
  {
    name: "test_multiple_content_types",
    description: "Returns text, an image and an embedded resource",
    inputSchema: noArgs,
  },
  {
    name: "test_tool_with_logging",
    description: "Sends three info log messages while it runs",
    inputSchema: noArgs,
  },
  {
    name: "test_error_handling",
    description: "Always fails with a tool error",
    inputSchema: noArgs,
  },
  {
    name: "test_tool_with_progress",
    description: "Reports progress 0, 50 and 100 of 100 while it runs",
    inputSchema: noArgs,
  },
  {
    name: "test_sampling",
    description: "Asks the client's LLM to answer a prompt",
    inputSchema: {
      type: "object",
      properties: { prompt: { type: "string", description: "The prompt to send to the LLM" } },
      required: ["prompt"],
    },
  },
  {
    name: "test_elicitation",
    description: "Asks the user for a username and an email address",
    inputSchema: {
      type: "object",
      properties: { message: { type: "string", description: "The message to show the user" } },
      required: ["message"],
    },
  },
  {
    name: "test_elicitation_sep1034_defaults",
    description: "Elicits a form whose fields of every primitive type have defaults (SEP-1034)",
    inputSchema: noArgs,
  },
  {
    name: "test_elicitation_sep1330_enums",
    description: "Elicits a form with all five kinds of enum field (SEP-1330)",
    inputSchema: noArgs,
  },
  {
    name: "json_schema_2020_12_tool",
    description: "Tool with JSON Schema 2020-12 features",
    inputSchema: {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      $defs: {
        address: {
          type: "object",
          properties: { street: { type: "string" }, city: { type: "string" } },
        },
      },
      properties: {
        name: { type: "string" },
        address: { $ref: "#/$defs/address" },
      },
      additionalProperties: false,
    },
  },
  {
    name: "test_reconnection",
    description:
      "Takes a moment to answer (an HTTP server would close the SSE stream meanwhile; a stdio one cannot)",
    inputSchema: noArgs,
  },
];

/** Sends a log message at `level`, unless the client's `logging/setLevel` filters it out. */
async function log(extra, level, data) {
  await server.sendLoggingMessage({ level, data }, extra.sessionId);
}

/** Sends `elicitation/create` for a form, or returns null when the client cannot elicit. */
async function elicit(extra, message, requestedSchema) {
  if (!server.getClientCapabilities()?.elicitation) {
    return null;
  }
  return extra.sendRequest(
    { method: "elicitation/create", params: { message, requestedSchema } },
    ElicitResultSchema,
  );
}

const noElicitation = {
  isError: true,
  content: [text("The client does not support elicitation")],
};

/** The result of a tool that asked the user: what they did and what they entered. */
function elicitationOutcome(result) {
  if (!result) {
    return noElicitation;
  }
  return {
    content: [
      text(
        `Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`,
      ),
    ],
  };
}

/** Each tool's implementation: (arguments, request extra) => CallToolResult. */
const HANDLERS = {
  test_simple_text: async () => ({
    content: [text("This is a simple text response for testing.")],
  }),

  test_image_content: async () => ({
    content: [{ type: "image", data: PNG, mimeType: "image/png" }],
  }),

  test_audio_content: async () => ({
    content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }],
  }),

  test_embedded_resource: async () => ({
    content: [
      {
        type: "resource",
        resource: {
          uri: "test://embedded-resource",
          mimeType: "text/plain",
          text: "This is an embedded resource content.",
        },
      },
    ],
  }),

  test_multiple_content_types: async () => ({
    content: [
      text("Multiple content types test:"),
      { type: "image", data: PNG, mimeType: "image/png" },
      {
        type: "resource",
        resource: {
          uri: "test://mixed-content-resource",
          mimeType: "application/json",
          text: JSON.stringify({ test: "data", value: 123 }),
        },
      },
    ],
  }),

  test_tool_with_logging: async (_args, extra) => {
    await log(extra, "info", "Tool execution started");
    await sleep(50);
    await log(extra, "info", "Tool processing data");
    await sleep(50);
    await log(extra, "info", "Tool execution completed");
    return { content: [text("Tool with logging executed successfully")] };
  },

  test_error_handling: async () => ({
    isError: true,
    content: [text("This tool intentionally returns an error for testing")],
  }),

  test_tool_with_progress: async (_args, extra) => {
    const progressToken = extra._meta?.progressToken;
    const steps = [0, 50, 100];
    for (const [i, progress] of steps.entries()) {
      if (i > 0) {
        await sleep(50);
      }
      if (progressToken !== undefined) {
        await extra.sendNotification({
          method: "notifications/progress",
          params: { progressToken, progress, total: 100 },
        });
      }
    }
    return { content: [text("Tool with progress executed successfully")] };
  },

  test_sampling: async (args, extra) => {
    if (!server.getClientCapabilities()?.sampling) {
      return { isError: true, content: [text("The client does not support sampling")] };
    }
    const result = await extra.sendRequest(
      {
        method: "sampling/createMessage",
        params: {
          messages: [{ role: "user", content: text(String(args.prompt ?? "")) }],
          maxTokens: 100,
        },
      },
      CreateMessageResultSchema,
    );
    const answer =
      result.content?.type === "text" ? result.content.text : JSON.stringify(result.content);
    return { content: [text(`LLM response: ${answer}`)] };
  },

  test_elicitation: async (args, extra) => {
    const result = await elicit(extra, String(args.message ?? ""), {
      type: "object",
      properties: {
        username: { type: "string", description: "User's response" },
        email: { type: "string", description: "User's email address" },
      },
      required: ["username", "email"],
    });
    if (!result) {
      return noElicitation;
    }
    return {
      content: [
        text(`User response: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`),
      ],
    };
  },

  test_elicitation_sep1034_defaults: async (_args, extra) => {
    const result = await elicit(extra, "Please review and update the form fields with defaults", {
      type: "object",
      properties: {
        name: { type: "string", description: "User name", default: "John Doe" },
        age: { type: "integer", description: "User age", default: 30 },
        score: { type: "number", description: "User score", default: 95.5 },
        status: {
          type: "string",
          description: "User status",
          enum: ["active", "inactive", "pending"],
          default: "active",
        },
        verified: { type: "boolean", description: "Verification status", default: true },
      },
      required: [],
    });
    return elicitationOutcome(result);
  },

  test_elicitation_sep1330_enums: async (_args, extra) => {
    const result = await elicit(extra, "Please select options from the enum fields", {
      type: "object",
      properties: {
        untitledSingle: {
          type: "string",
          description: "Untitled single-select enum",
          enum: ["option1", "option2", "option3"],
        },
        titledSingle: {
          type: "string",
          description: "Titled single-select enum",
          oneOf: [
            { const: "value1", title: "First Option" },
            { const: "value2", title: "Second Option" },
            { const: "value3", title: "Third Option" },
          ],
        },
        legacyEnum: {
          type: "string",
          description: "Legacy titled enum (enumNames, deprecated)",
          enum: ["opt1", "opt2", "opt3"],
          enumNames: ["Option One", "Option Two", "Option Three"],
        },
        untitledMulti: {
          type: "array",
          description: "Untitled multi-select enum",
          items: { type: "string", enum: ["option1", "option2", "option3"] },
        },
        titledMulti: {
          type: "array",
          description: "Titled multi-select enum",
          items: {
            anyOf: [
              { const: "value1", title: "First Choice" },
              { const: "value2", title: "Second Choice" },
              { const: "value3", title: "Third Choice" },
            ],
          },
        },
      },
      required: [],
    });
    return elicitationOutcome(result);
  },

  json_schema_2020_12_tool: async (args) => ({
    content: [text(`Received: ${JSON.stringify(args ?? {})}`)],
  }),

  test_reconnection: async () => {
    await sleep(100);
    return { content: [text("Reconnection test completed successfully")] };
  },
};

server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));

server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
  const handler = HANDLERS[request.params.name];
  if (!handler) {
    throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
  }
  try {
    return await handler(request.params.arguments ?? {}, extra);
  } catch (error) {
    // A request of the tool's own that failed (the client refused sampling or elicitation, say)
    // is the tool's error.
    return { isError: true, content: [text(error instanceof Error ? error.message : String(error))] };
  }
});

// ---- resources ----

/** The direct resources and their contents. */
const RESOURCES = {
  "test://static-text": {
    listing: {
      name: "static-text",
      description: "A static text resource",
      mimeType: "text/plain",
    },
    contents: { mimeType: "text/plain", text: "This is the content of the static text resource." },
  },
  "test://static-binary": {
    listing: {
      name: "static-binary",
      description: "A static binary resource (a 1x1 red PNG)",
      mimeType: "image/png",
    },
    contents: { mimeType: "image/png", blob: PNG },
  },
  "test://watched-resource": {
    listing: {
      name: "watched-resource",
      description: "A resource to subscribe to",
      mimeType: "text/plain",
    },
    contents: { mimeType: "text/plain", text: "This resource can be watched for updates." },
  },
};

const TEMPLATE = /^test:\/\/template\/([^/]+)\/data$/;

/** The URIs the client subscribed to. */
const subscriptions = new Set();

server.setRequestHandler(ListResourcesRequestSchema, async () => ({
  resources: Object.entries(RESOURCES).map(([uri, r]) => ({ uri, ...r.listing })),
}));

server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
  resourceTemplates: [
    {
      uriTemplate: "test://template/{id}/data",
      name: "template-data",
      description: "JSON data for an id",
      mimeType: "application/json",
    },
  ],
}));

server.setRequestHandler(ReadResourceRequestSchema, async (request) => {
  const { uri } = request.params;
  const resource = RESOURCES[uri];
  if (resource) {
    return { contents: [{ uri, ...resource.contents }] };
  }
  const match = TEMPLATE.exec(uri);
  if (match) {
    const id = decodeURIComponent(match[1]);
    return {
      contents: [
        {
          uri,
          mimeType: "application/json",
          text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
        },
      ],
    };
  }
  throw new McpError(-32002, `Resource not found: ${uri}`, { uri });
});

server.setRequestHandler(SubscribeRequestSchema, async (request) => {
  const { uri } = request.params;
  subscriptions.add(uri);
  // One update shortly after subscribing, if the client is still subscribed then.
  setTimeout(() => {
    if (subscriptions.has(uri)) {
      server.sendResourceUpdated({ uri }).catch(() => {});
    }
  }, 100);
  return {};
});

server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
  subscriptions.delete(request.params.uri);
  return {};
});

// ---- prompts ----

const PROMPTS = [
  { name: "test_simple_prompt", description: "A simple prompt without arguments" },
  {
    name: "test_prompt_with_arguments",
    description: "A prompt with two required arguments",
    arguments: [
      { name: "arg1", description: "First test argument", required: true },
      { name: "arg2", description: "Second test argument", required: true },
    ],
  },
  {
    name: "test_prompt_with_embedded_resource",
    description: "A prompt that embeds a resource",
    arguments: [
      { name: "resourceUri", description: "URI of the resource to embed", required: true },
    ],
  },
  { name: "test_prompt_with_image", description: "A prompt with an image" },
];

/** Throws InvalidParams unless `args` has every name in `names`. */
function requireArgs(prompt, args, names) {
  const missing = names.filter((n) => typeof args[n] !== "string");
  if (missing.length > 0) {
    throw new McpError(
      ErrorCode.InvalidParams,
      `Prompt ${prompt} needs argument(s): ${missing.join(", ")}`,
    );
  }
}

server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: PROMPTS }));

server.setRequestHandler(GetPromptRequestSchema, async (request) => {
  const { name } = request.params;
  const args = request.params.arguments ?? {};
  switch (name) {
    case "test_simple_prompt":
      return {
        messages: [{ role: "user", content: text("This is a simple prompt for testing.") }],
      };
    case "test_prompt_with_arguments":
      requireArgs(name, args, ["arg1", "arg2"]);
      return {
        messages: [
          {
            role: "user",
            content: text(`Prompt with arguments: arg1='${args.arg1}', arg2='${args.arg2}'`),
          },
        ],
      };
    case "test_prompt_with_embedded_resource":
      requireArgs(name, args, ["resourceUri"]);
      return {
        messages: [
          {
            role: "user",
            content: {
              type: "resource",
              resource: {
                uri: args.resourceUri,
                mimeType: "text/plain",
                text: "Embedded resource content for testing.",
              },
            },
          },
          { role: "user", content: text("Please process the embedded resource above.") },
        ],
      };
    case "test_prompt_with_image":
      return {
        messages: [
          { role: "user", content: { type: "image", data: PNG, mimeType: "image/png" } },
          { role: "user", content: text("Please analyze the image above.") },
        ],
      };
    default:
      throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${name}`);
  }
});

// ---- completion ----

/** Completion candidates for each prompt argument and template variable. */
const COMPLETIONS = {
  "ref/prompt:test_prompt_with_arguments:arg1": ["paris", "park", "party", "test1", "test2"],
  "ref/prompt:test_prompt_with_arguments:arg2": ["alpha", "beta", "gamma"],
  "ref/resource:test://template/{id}/data:id": ["1", "2", "3", "123"],
};

server.setRequestHandler(CompleteRequestSchema, async (request) => {
  const { ref, argument } = request.params;
  const key = `${ref.type}:${ref.type === "ref/prompt" ? ref.name : ref.uri}:${argument.name}`;
  const values = (COMPLETIONS[key] ?? []).filter((v) => v.startsWith(argument.value));
  return { completion: { values, total: values.length, hasMore: false } };
});

await server.connect(new StdioServerTransport());
