import json
import pytest

N = {"id": "a", "handler": "input"}
CASES = {
    "null": b"null",
    "string": b'"x"',
    "list": b"[1]",
    "num": b"5",
    "empty": b"",
    "deep": b"[" * 100000 + b"]" * 100000,
    "cond_int": json.dumps({"name": "x", "dag": {"nodes": [{**N, "condition": 5}]}}).encode(),
    "cond_parens": json.dumps({"name": "x", "dag": {"nodes": [{**N, "condition": "(" * 1000 + "1" + ")" * 1000}]}}).encode(),
    "cond_nots": json.dumps({"name": "x", "dag": {"nodes": [{**N, "condition": "not " * 1000 + "true"}]}}).encode(),
    "cond_list": json.dumps({"name": "x", "dag": {"nodes": [{**N, "condition": "[" * 1000 + "]" * 1000}]}}).encode(),
    "deep_config": ('{"name": "x", "dag": {"nodes": [{"id": "a", "handler": "input", "config": ' + '{"a":' * 900 + "1" + "}" * 900 + "}]}}").encode(),
    "nodes_dict": json.dumps({"name": "x", "dag": {"nodes": {}}}).encode(),
    "nodes_empty": json.dumps({"name": "x", "dag": {"nodes": []}}).encode(),
    "dag_list": json.dumps({"name": "x", "dag": []}).encode(),
    "timeout_nan": b'{"name": "x", "timeout_seconds": NaN, "dag": {"nodes": [{"id": "a", "handler": "input"}]}}',
    "timeout_inf": b'{"name": "x", "timeout_seconds": Infinity, "dag": {"nodes": [{"id": "a", "handler": "input"}]}}',
    "timeout_huge": b'{"name": "x", "timeout_seconds": 1e300, "dag": {"nodes": [{"id": "a", "handler": "input"}]}}',
    "config_nan": b'{"name": "x", "dag": {"nodes": [{"id": "a", "handler": "input", "config": {"v": NaN}}]}}',
    "nul_char": json.dumps({"name": "x\u0000y", "dag": {"nodes": [{**N}]}}).encode(),
    "nul_config": json.dumps({"name": "x", "dag": {"nodes": [{**N, "config": {"k": "a\u0000b"}}]}}).encode(),
    "retry_str": json.dumps({"name": "x", "dag": {"nodes": [{**N, "retry": "x"}]}}).encode(),
    "node_timeout_nan": b'{"name": "x", "dag": {"nodes": [{"id": "a", "handler": "input", "timeout_seconds": NaN}]}}',
    "template_key_nonancestor": json.dumps({"name": "x", "dag": {"nodes": [{**N}, {"id": "b", "handler": "input", "config": {"{{ a.x }}": 1}}]}}).encode(),
    "surrogate": b'{"name": "x\\ud800", "dag": {"nodes": [{"id": "a", "handler": "input"}]}}',
    "bad_utf8": b'{"name": "\xff", "dag": {"nodes": [{"id": "a", "handler": "input"}]}}',
    "cond_ref_params_only": json.dumps({"name": "x", "dag": {"nodes": [{**N, "condition": "{{ params }} == 1"}]}}).encode(),
}

@pytest.mark.django_db
@pytest.mark.parametrize("case", ["cond_parens","cond_nots"])
def test_probe(alice_client, case):
    alice_client.raise_request_exception = True
    r = alice_client.post("/api/v1/workflow", CASES[case], content_type="application/json")
    print(case, r.status_code, r.content[:300])
    with open("/tmp/probe/out.txt", "a") as f:
        f.write(f"{case} {r.status_code} {r.content[:300]!r}\n")
