"""Runs Schemathesis against a running Flagstream API, with the API's own OpenAPI document,
once per role (viewer, analyst, admin). Creates the viewer and analyst users through the
API as the bootstrap admin, logs each role in, and fails when any run finds a 5xx, an
undocumented status code, a wrong content type or a response off its schema.

Usage: contract.py BASE_URL ADMIN_USER ADMIN_PASSWORD MAX_EXAMPLES
"""

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request


def call(base, method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(request, data, timeout=30) as response:
        return json.load(response)


def main():
    base, admin, password, examples = sys.argv[1:5]
    admin_token = call(base, "POST", "/api/v1/auth/login",
                       {"username": admin, "password": password})["token"]
    # The default pack's rules, so rule reads, versions, diffs and restores find some.
    packs = call(base, "GET", "/api/v1/rules/templates", token=admin_token)["packs"]
    for rule in next(p for p in packs if p["name"] == "default")["rules"]:
        call(base, "POST", "/api/v1/rules", rule, admin_token)
    tokens = {}
    for role in ("viewer", "analyst"):
        role_password = secrets.token_urlsafe(18)
        call(base, "POST", "/api/v1/admin/users",
             {"username": "contract-" + role, "password": role_password, "role": role},
             admin_token)
        tokens[role] = call(base, "POST", "/api/v1/auth/login",
                            {"username": "contract-" + role, "password": role_password})["token"]
    # The admin runs with API keys: the run may change the admin's password, which ends its
    # sessions (as it should). Schemathesis reuses ids it has seen in responses, so it finds
    # the run's own key in the key list and revokes it: that one operation runs last, with
    # a key of its own. The viewer and analyst run first, as the admin run changes users.
    def admin_key():
        return call(base, "POST", "/api/v1/admin/api-keys",
                    {"name": "contract-" + secrets.token_hex(4), "role": "admin"},
                    admin_token)["key"]
    revoke = "DELETE /api/v1/admin/api-keys/{id}"
    runs = [
        ("viewer", tokens["viewer"], [], True),
        ("analyst", tokens["analyst"], [], True),
        ("admin", admin_key(), ["--exclude-operation-id", revoke], True),
        ("admin (key revocation)", admin_key(), ["--include-operation-id", revoke], False),
    ]
    st = os.path.join(os.path.dirname(sys.executable), "st")
    failed = []
    for role, token, selection, keeps_credential in runs:
        print(f"==> Schemathesis as {role}", flush=True)
        run = subprocess.run([
            st, "run", base + "/api/v1/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,"
                        "content_type_conformance,response_schema_conformance",
            "--header", "Authorization: Bearer " + token,
            "--max-examples", examples,
            "--phases", "examples,coverage,fuzzing",
            "--seed", "1",
            "--workers", "2",
            "--generation-database", "none",
            # Otherwise it may send a made-up X-API-Key beside our Authorization header,
            # and the API reads the X-API-Key first.
            "--generation-with-security-parameters", "false",
            "--no-color",
            *selection,
        ])
        if run.returncode != 0:
            failed.append(role)
        # A run that lost its credential part-way tested little: make that a failure.
        if keeps_credential:
            try:
                call(base, "GET", "/api/v1/auth/me", token=token)
            except urllib.error.HTTPError as e:
                print(f"the {role} credential stopped working during the run: {e}", flush=True)
                failed.append(role)
    if failed:
        sys.exit("contract test failed for: " + ", ".join(failed))


if __name__ == "__main__":
    main()
