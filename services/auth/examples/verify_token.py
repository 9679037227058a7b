#!/usr/bin/env python3
"""Verify a Slipway access token the way a service in another language would: with PyJWT,
using nothing but the published JWKS document.

    python3 verify_token.py JWKS_FILE TOKEN ISSUER AUDIENCE

Prints the verified claims as JSON and exits 0; exits 1 if the token does not verify.
In a running service, fetch the JWKS from auth's /.well-known/jwks.json (PyJWKClient does it
and caches it) instead of reading a file.
"""
import json
import sys

import jwt  # pip install "pyjwt[crypto]"


def main() -> int:
    jwks_file, token, issuer, audience = sys.argv[1:5]
    with open(jwks_file) as f:
        jwks = jwt.PyJWKSet.from_dict(json.load(f))
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    try:
        claims = jwt.decode(token, key.key, algorithms=["EdDSA"], issuer=issuer, audience=audience,
                            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]})
    except jwt.InvalidTokenError as e:
        print(f"invalid token: {e}", file=sys.stderr)
        return 1
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
