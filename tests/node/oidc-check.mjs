// Checks the OpenID provider of `oidc.mjs` the way magg's OAuth tests use it:
// `node tests/node/oidc-check.mjs` (after `npm ci --prefix tests/node`).
//
// It starts the provider on a free port with two new keys, reads discovery, gets a token with
// client_credentials + resource + scope, verifies the token's RS256 signature against the JWKS
// with node:crypto alone (not with the provider's own JOSE library) and checks its claims, checks
// the refusals (unknown scope, unknown resource, wrong secret), then restarts it with the keys in
// the other order and checks that the new first key signs while the old one is still published,
// both read back from their files. It prints each check and ends with "N passed, N failed";
// its exit code is 1 when any check failed.

import { spawn } from "node:child_process";
import { createPublicKey, verify } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The provider script under check. */
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "oidc.mjs");

/** The protected resource the tokens are for. */
const RESOURCE = "http://127.0.0.1:9/mcp";

/** The client of the provider. */
const CLIENT = { id: "magg-test", secret: "s3cret" };

/** The longest wait for the provider to start or stop, in milliseconds. */
const PROCESS_TIMEOUT_MS = 15_000;

let passed = 0;
let failed = 0;

/** Records one check: `ok` true passes; otherwise `detail` says what was seen. */
function check(name, ok, detail = "") {
  if (ok) {
    passed += 1;
    console.log(`ok   ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ""}`);
  }
}

/** Starts `oidc.mjs` with `keys`; resolves to the child and its ready line, parsed. */
function startProvider(keyDir, keys) {
  const child = spawn(
    process.execPath,
    [
      SCRIPT,
      "--port",
      "0",
      "--key-dir",
      keyDir,
      "--keys",
      keys.join(","),
      "--client",
      `${CLIENT.id}:${CLIENT.secret}`,
      "--resource",
      RESOURCE,
      "--resource",
      "http://127.0.0.1:9/other",
      "--scopes",
      "mcp:read mcp:admin",
      "--ttl",
      "300",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("the provider printed no ready line")),
      PROCESS_TIMEOUT_MS,
    );
    child.once("exit", (code) =>
      reject(new Error(`the provider exited (${code}) before it was ready`)),
    );
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolve({ child, ready: JSON.parse(line), lines });
    });
  });
}

/** Sends SIGTERM to the provider; resolves to its exit code. */
function stopProvider({ child }) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("the provider did not exit on SIGTERM")),
      PROCESS_TIMEOUT_MS,
    );
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
    child.kill("SIGTERM");
  });
}

/** POSTs a client_credentials request to `tokenEndpoint`; resolves to status and JSON body. */
async function requestToken(tokenEndpoint, { resource, scope, secret = CLIENT.secret }) {
  const body = new URLSearchParams({ grant_type: "client_credentials" });
  if (resource) body.set("resource", resource);
  if (scope) body.set("scope", scope);
  const response = await fetch(tokenEndpoint, {
    method: "POST",
    headers: { authorization: `Basic ${Buffer.from(`${CLIENT.id}:${secret}`).toString("base64")}` },
    body,
  });
  return { status: response.status, body: await response.json() };
}

/** Splits a compact JWS; resolves to its header and payload once its signature checks out. */
function verifyJwt(token, jwks) {
  const [header64, payload64, signature64] = token.split(".");
  const header = JSON.parse(Buffer.from(header64, "base64url").toString());
  const payload = JSON.parse(Buffer.from(payload64, "base64url").toString());
  const jwk = jwks.keys.find((key) => key.kid === header.kid);
  const valid =
    jwk !== undefined &&
    header.alg === "RS256" &&
    verify(
      "RSA-SHA256",
      Buffer.from(`${header64}.${payload64}`),
      createPublicKey({ key: jwk, format: "jwk" }),
      Buffer.from(signature64, "base64url"),
    );
  return { header, payload, valid };
}

/** One run of the provider: discovery, JWKS, a token and the refusals. */
async function checkRun(keyDir, keys, label) {
  const provider = await startProvider(keyDir, keys);
  const { issuer, port } = provider.ready;
  try {
    check(
      `${label}: ready line names the issuer and port`,
      issuer === `http://127.0.0.1:${port}` && port > 0,
      JSON.stringify(provider.ready),
    );

    const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    check(`${label}: discovery names the issuer`, discovery.issuer === issuer, discovery.issuer);
    check(
      `${label}: discovery offers client_credentials`,
      discovery.grant_types_supported?.includes("client_credentials"),
    );

    const jwks = await (await fetch(discovery.jwks_uri)).json();
    const kids = jwks.keys.map((key) => key.kid);
    check(
      `${label}: JWKS publishes ${keys.join(", ")}`,
      JSON.stringify([...kids].sort()) === JSON.stringify([...keys].sort()),
      kids.join(", "),
    );
    check(
      `${label}: JWKS has no private part`,
      jwks.keys.every((key) => key.d === undefined && key.p === undefined),
    );

    const before = Math.floor(Date.now() / 1000);
    const granted = await requestToken(discovery.token_endpoint, {
      resource: RESOURCE,
      scope: "mcp:read mcp:admin",
    });
    check(`${label}: token request succeeds`, granted.status === 200, JSON.stringify(granted.body));
    const { header, payload, valid } = verifyJwt(granted.body.access_token ?? "..", jwks);
    console.log(`     header ${JSON.stringify(header)}`);
    console.log(`     claims ${JSON.stringify(payload)}`);
    check(`${label}: token signature verifies against the JWKS`, valid);
    check(
      `${label}: token signed by ${keys[0]}`,
      header.kid === keys[0] && header.typ === "at+jwt",
      JSON.stringify(header),
    );
    check(
      `${label}: token claims`,
      payload.iss === issuer &&
        payload.aud === RESOURCE &&
        payload.scope === "mcp:read mcp:admin" &&
        payload.client_id === CLIENT.id &&
        payload.sub === CLIENT.id &&
        typeof payload.jti === "string" &&
        payload.iat >= before - 1 &&
        payload.exp === payload.iat + 300,
      JSON.stringify(payload),
    );

    const unknownScope = await requestToken(discovery.token_endpoint, {
      resource: RESOURCE,
      scope: "mcp:read mcp:write",
    });
    check(
      `${label}: a scope not offered is refused`,
      unknownScope.status === 400 && unknownScope.body.error === "invalid_scope",
      JSON.stringify(unknownScope.body),
    );
    const unknownResource = await requestToken(discovery.token_endpoint, {
      resource: "http://127.0.0.1:9/else",
      scope: "mcp:read",
    });
    check(
      `${label}: an unknown resource is refused`,
      unknownResource.status === 400 && unknownResource.body.error === "invalid_target",
      JSON.stringify(unknownResource.body),
    );
    const wrongSecret = await requestToken(discovery.token_endpoint, {
      resource: RESOURCE,
      scope: "mcp:read",
      secret: "wrong",
    });
    check(
      `${label}: a wrong secret is refused`,
      wrongSecret.status === 401 && wrongSecret.body.error === "invalid_client",
      JSON.stringify(wrongSecret.body),
    );

    return jwks;
  } finally {
    const exit = await stopProvider(provider);
    check(`${label}: exits 0 on SIGTERM`, exit === 0, String(exit));
  }
}

const keyDir = mkdtempSync(join(tmpdir(), "oidc-check-"));
try {
  const first = await checkRun(keyDir, ["k1", "k2"], "first run");
  const second = await checkRun(keyDir, ["k2", "k1"], "rotated");
  const k1 = (jwks) => JSON.stringify(jwks.keys.find((key) => key.kid === "k1"));
  check("k1 is the same key after the restart", k1(first) === k1(second));
} catch (error) {
  check("the provider runs", false, error.message);
} finally {
  rmSync(keyDir, { recursive: true, force: true });
}

console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
