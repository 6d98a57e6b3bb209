"""Magg's side of bearer-token compatibility, for the end-to-end tests of `magg auth`.

Each command does what Magg 1.3 does with the same key, with the libraries Magg uses
(PyJWT and `cryptography`; FastMCP's `JWTVerifier` where Magg is installed):

  sign KEY_FILE CLAIMS_JSON            print a token signed as Magg's create_token signs it
  verify KEY_FILE TOKEN ISSUER AUD     check a token as PyJWT does; print its claims as JSON
  magg-verify KEY_FILE TOKEN ISSUER AUD  check a token with FastMCP's JWTVerifier, as Magg's
                                       server does for every HTTP request (needs `magg`)
  public KEY_FILE                      print the public key as Magg derives it: PEM, then the
                                       OpenSSH line Magg writes to `{audience}.key.pub`
  keygen DIR AUDIENCE                  write a key pair as `magg auth init` (Magg) writes it

KEY_FILE is a private key in PEM. Exits 1 with the reason on stderr when a check fails.
"""

import asyncio
import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def private_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def public_pem(key):
    return key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode()


def main(argv):
    command, args = argv[0], argv[1:]
    if command == "sign":
        print(jwt.encode(json.loads(args[1]), private_key(args[0]), algorithm="RS256"))
    elif command == "verify":
        key = private_key(args[0]).public_key()
        claims = jwt.decode(args[1], key, algorithms=["RS256"], issuer=args[2], audience=args[3])
        print(json.dumps(claims))
    elif command == "magg-verify":
        from fastmcp.server.auth.providers.jwt import JWTVerifier

        verifier = JWTVerifier(public_key=public_pem(private_key(args[0])), issuer=args[2], audience=args[3])
        token = asyncio.run(verifier.load_access_token(args[1]))
        if token is None:
            print("FastMCP's JWTVerifier refused the token", file=sys.stderr)
            return 1
        print(json.dumps(token.claims))
    elif command == "public":
        key = private_key(args[0])
        print(public_pem(key), end="")
        ssh = key.public_key().public_bytes(
            encoding=serialization.Encoding.OpenSSH, format=serialization.PublicFormat.OpenSSH
        )
        print(ssh.decode())
    elif command == "keygen":
        directory, audience = args
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        path = os.path.join(directory, f"{audience}.key")
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(
                key.private_bytes(
                    encoding=serialization.Encoding.PEM,
                    format=serialization.PrivateFormat.TraditionalOpenSSL,
                    encryption_algorithm=serialization.NoEncryption(),
                )
            )
        with open(path + ".pub", "wb") as f:
            f.write(
                key.public_key().public_bytes(
                    encoding=serialization.Encoding.OpenSSH, format=serialization.PublicFormat.OpenSSH
                )
            )
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except jwt.PyJWTError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
