"""The API fuzzed from its own OpenAPI document by a generic fuzzer (schemathesis, from PyPI),
against a real Apache, bounded in time: no 5xx, every status, content type, header and body
as the document says, schema-violating input refused, undeclared methods answered 405, and
no route that works without its key.

One check is left out on purpose: `positive_data_acceptance` expects every schema-valid
request to succeed, but a request can be valid in shape and still rightly refused by state
(an offer that does not exist, an `Idempotency-Key` the fuzzer reuses with another body).
"""
from __future__ import annotations

import subprocess

from lkserver import admin_ok, integrity_check
from servers import running

CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
          "response_schema_conformance", "negative_data_rejection", "unsupported_method", "ignored_auth"]


def test_schemathesis_finds_nothing_wrong_with_the_api_from_its_document(latchkey_path):
    with running("apache", {"api": {"rate_limit": {"count": 1000000, "window": "1m"}}}, offer="gold") as server:
        key = admin_ok(server.site, "api-key", "add", "fuzzer", "--scopes",
                       "people:read,people:write,access:write,mail:send,links:read").stdout.strip()
        run = subprocess.run(["schemathesis", "run", server.url + "/cgi-bin/api/v1/openapi.json",
                              "--header", f"Authorization: Bearer {key}", "--checks", ",".join(CHECKS),
                              "--max-examples", "10", "--max-time", "60", "--seed", "1", "--warnings", "off", "--no-color"],
                             capture_output=True, text=True, timeout=240)
        assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
        assert " passed" in run.stdout and "generated" in run.stdout, run.stdout[-2000:]
        assert integrity_check(server.site) == "ok"
        assert "latchkey api: error" not in server.error_log()
