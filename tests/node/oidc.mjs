// A real OpenID provider (npm `oidc-provider`) on loopback, for the tests of magg's OAuth
// resource-server mode: magg finds it by discovery (`{issuer}/.well-known/openid-configuration`),
// fetches its JWKS and checks the JWT access tokens it issues.
//
//   node tests/node/oidc.mjs --port PORT --key-dir DIR --keys k1,k2 --client ID:SECRET \
//     --resource URL [--resource URL2] [--scopes "mcp:read mcp:admin"] [--ttl SECONDS]
//
// - It listens on 127.0.0.1:PORT (0 = any free port) over plain http; the issuer is
//   `http://127.0.0.1:PORT`. Once listening it prints one line of JSON to stdout,
//   `{"issuer":"http://127.0.0.1:PORT","port":PORT}`, and nothing else: every log, the
//   provider's own notices included, goes to stderr. SIGTERM (or SIGINT) closes it and it exits 0.
// - Signing keys are RSA 2048 for RS256, their `kid` the key's name. Each named key is read from
//   `DIR/<name>.json` (a private JWK) or, when that file is missing, made and saved there, so a
//   restart with `--keys k2,k1` signs with k2 and still publishes k1: a key rotation across
//   restarts. The JWKS publishes the public parts of every listed key; the first one signs.
// - One confidential client, `ID` with `SECRET`, authenticates with `client_secret_basic` (or
//   `client_secret_post`, which oidc-provider takes too) and may use the `client_credentials`
//   grant only.
// - Resource indicators (RFC 8707): `POST /token` with `grant_type=client_credentials`,
//   `resource=URL` (one of the `--resource` values) and `scope=...` returns a JWT access token
//   (`typ: at+jwt`) whose `aud` is that URL, with `iss`, `sub` (the client id, as oidc-provider
//   sets it for this grant), `client_id`, `scope`, `iat`, `exp` (`--ttl`, default 600 s) and
//   `jti`. Another resource is refused with `invalid_target`, two resources at once too, a scope
//   that is not in `--scopes` with `invalid_scope`; without `resource` the token is opaque
//   (oidc-provider's default). A request without `scope` gets a token without the `scope` claim.
//
// oidc-provider 9 warns "Unsupported runtime" on Node 20 (it asks for Node 22 LTS) and works there.
// Bad arguments or an unreadable key file end it with a message on stderr and exit code 2.

import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";

import Provider, { errors } from "oidc-provider";

/** The JWS algorithm of every key and token. */
const ALG = "RS256";

/** The modulus length of the keys this script makes. */
const RSA_BITS = 2048;

/** A key name: what its file and its `kid` are called. */
const KEY_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** The default scopes the provider knows, when `--scopes` is not given. */
const DEFAULT_SCOPES = "mcp:read mcp:write mcp:admin";

/** The default lifetime of access tokens, in seconds. */
const DEFAULT_TTL = 600;

/** The command line's form, for the message about a wrong one. */
const USAGE =
  "--port PORT --key-dir DIR --keys k1,k2 --client ID:SECRET --resource URL [--resource URL2]" +
  ' [--scopes "a b"] [--ttl SECONDS]';

// oidc-provider prints its notices with `console.info`; stdout carries only the ready line.
for (const method of ["log", "info", "debug"]) {
  console[method] = (...args) => console.error(...args);
}

/** Ends the script on a usage or set-up error: `message` on stderr, exit code 2. */
function fail(message) {
  process.stderr.write(`oidc.mjs: ${message}\n`);
  process.exit(2);
}

/** The command line, checked: every value in the form the rest of the script uses. */
function parseCommandLine() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: "string" },
        "key-dir": { type: "string" },
        keys: { type: "string" },
        client: { type: "string" },
        resource: { type: "string", multiple: true },
        scopes: { type: "string", default: DEFAULT_SCOPES },
        ttl: { type: "string", default: String(DEFAULT_TTL) },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    fail(`${error.message}; usage: ${USAGE}`);
  }

  for (const name of ["port", "key-dir", "keys", "client", "resource"]) {
    if (values[name] === undefined) fail(`--${name} is missing`);
  }

  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    fail(`--port ${values.port} is not a port: give a number from 0 (any free port) to 65535`);
  }

  const keys = values.keys.split(",").map((name) => name.trim());
  for (const name of keys) {
    if (!KEY_NAME.test(name)) {
      fail(`--keys: "${name}" is not a key name: use letters, digits, '.', '_' and '-'`);
    }
  }
  if (new Set(keys).size !== keys.length) fail(`--keys ${values.keys} names a key twice`);

  const colon = values.client.indexOf(":");
  if (colon <= 0 || colon === values.client.length - 1) {
    fail("--client must be ID:SECRET, both non-empty");
  }
  const client = { id: values.client.slice(0, colon), secret: values.client.slice(colon + 1) };

  for (const resource of values.resource) {
    let url;
    try {
      url = new URL(resource);
    } catch {
      fail(`--resource ${resource} is not an absolute URL`);
    }
    if (url.hash) fail(`--resource ${resource} has a fragment, which RFC 8707 forbids`);
  }

  const scopes = values.scopes.split(" ").filter(Boolean);
  if (scopes.length === 0) fail("--scopes is empty: give at least one scope");

  const ttl = Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl <= 0) {
    fail(`--ttl ${values.ttl} is not a positive number of seconds`);
  }

  return { port, keyDir: values["key-dir"], keys, client, resources: values.resource, scopes, ttl };
}

/**
 * The private JWK named `name`: read from `dir/<name>.json`, or made (RSA 2048) and saved there
 * when the file does not exist. Its `kid` is `name`, its `alg` RS256 and its `use` sig.
 */
function loadOrMakeKey(dir, name) {
  const path = join(dir, `${name}.json`);
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (error.code !== "ENOENT") fail(`cannot read key ${path}: ${error.message}`);
  }

  if (text === undefined) {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: RSA_BITS });
    const jwk = { ...privateKey.export({ format: "jwk" }), kid: name, alg: ALG, use: "sig" };
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path, `${JSON.stringify(jwk)}\n`, { mode: 0o600, flag: "wx" });
    } catch (error) {
      fail(`cannot save the new key ${path}: ${error.message}`);
    }
    return jwk;
  }

  let jwk;
  try {
    jwk = JSON.parse(text);
  } catch (error) {
    fail(`key ${path} is not JSON (${error.message}): delete it to have a new key made`);
  }
  if (jwk?.kty !== "RSA" || typeof jwk.d !== "string") {
    fail(`key ${path} is not a private RSA JWK: delete it to have a new key made`);
  }
  return { ...jwk, kid: name, alg: ALG, use: "sig" };
}

/** The provider's configuration for `options` (the checked command line). */
function configuration(options, jwks) {
  const resources = new Set(options.resources);
  const known = new Set(options.scopes);
  const signingKid = options.keys[0];

  // oidc-provider drops a scope it does not know without a word; refuse it instead, as
  // RFC 6749 §5.2 has it (`invalid_scope`). Every client_credentials request passes here:
  // through `defaultResource` without `resource`, through `getResourceServerInfo` with it.
  const refuseUnknownScopes = (ctx) => {
    const requested = String(ctx.oidc.params.scope ?? "").split(" ");
    for (const scope of requested.filter(Boolean)) {
      if (!known.has(scope)) throw new errors.InvalidScope("requested scope is not allowed", scope);
    }
  };

  return {
    clients: [
      {
        client_id: options.client.id,
        client_secret: options.client.secret,
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_basic",
        scope: options.scopes.join(" "),
      },
    ],
    jwks: { keys: jwks },
    scopes: options.scopes,
    // Cookies serve only interactions, which this provider has none of; a key silences the
    // notice about the default one.
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource(ctx) {
          refuseUnknownScopes(ctx);
          return undefined;
        },
        getResourceServerInfo(ctx, resourceIndicator) {
          if (!resources.has(resourceIndicator)) {
            throw new errors.InvalidTarget(
              `${resourceIndicator} is not a resource of this provider`,
            );
          }
          refuseUnknownScopes(ctx);
          return {
            scope: options.scopes.join(" "),
            audience: resourceIndicator,
            accessTokenTTL: options.ttl,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg: ALG, kid: signingKid } },
          };
        },
      },
    },
    ttl: {
      AccessToken: options.ttl,
      ClientCredentials: options.ttl,
    },
    findAccount: () => undefined,
  };
}

/** Starts the provider; resolves once it listens and the ready line is printed. */
async function main() {
  const options = parseCommandLine();
  const jwks = options.keys.map((name) => loadOrMakeKey(options.keyDir, name));

  // The issuer names the port, so the server listens first and the provider is made after.
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", resolve);
  }).catch((error) => fail(`cannot listen on 127.0.0.1:${options.port}: ${error.message}`));
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, configuration(options, jwks));
  provider.on("server_error", (_ctx, error) => console.error("oidc.mjs: server error:", error));
  provider.on("grant.error", (_ctx, error) => {
    console.error(`oidc.mjs: token request refused: ${error.error}: ${error.error_description}`);
  });
  server.on("request", provider.callback());

  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);

  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
}

main().catch((error) => fail(error?.stack ?? String(error)));
