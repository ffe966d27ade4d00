#!/usr/bin/env python3
"""Checks docs/openapi.yaml against the server it describes.

1. The routes: every row of the route table (src/server/routes.cc), of the capture routes
   (src/capture/capture_api.cc) and of the projection routes (src/project/projections_api.cc)
   is an operation of the description, and every operation of the
   description is a route.
2. The answers: a real `timetrail serve` on a fresh data directory gets real requests for the
   main endpoints, and each answer's status must be one the description lists for that path and
   method, its Content-Type the described media type, and its body valid against the described
   schema (JSON Schema 2020-12, as OpenAPI 3.1 uses).

Usage: openapi_test.py --bin path/to/timetrail --source-dir path/to/timetrail/source
Needs PyYAML and jsonschema (Debian: python3-yaml, python3-jsonschema).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

try:
    import jsonschema
    import yaml
except ImportError as e:
    sys.exit(f"{e}: this test needs PyYAML and jsonschema (Debian: python3-yaml, "
             "python3-jsonschema; scripts/install-deps.sh installs them)")

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
ROUTE_ROW = re.compile(r'\{\s*"(GET|POST|PUT|DELETE|PATCH)"\s*,\s*"(/[^"]*)"')

failures = []


def fail(what):
    failures.append(what)
    print("FAIL: " + what, file=sys.stderr)


def code_routes(path):
    """(METHOD, path) of every route-table row in a C++ source file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    rows = set(ROUTE_ROW.findall(text))
    if not rows:
        fail(f"no route rows found in {path}: has the table's format changed?")
    return rows


def described_routes(spec):
    return {(m.upper(), p) for p, item in spec["paths"].items() for m in item if m in METHODS}


def check_routes(spec, source_dir):
    in_code = code_routes(os.path.join(source_dir, "src/server/routes.cc"))
    in_code |= code_routes(os.path.join(source_dir, "src/capture/capture_api.cc"))
    in_code |= code_routes(os.path.join(source_dir, "src/project/projections_api.cc"))
    described = described_routes(spec)
    for method, path in sorted(in_code - described):
        fail(f"route {method} {path} is served but not described in docs/openapi.yaml")
    for method, path in sorted(described - in_code):
        fail(f"docs/openapi.yaml describes {method} {path}, which is no route of the server")
    # Path parameters: each {name} of a path is declared as a path parameter, and vice versa.
    for path, item in spec["paths"].items():
        in_path = set(re.findall(r"\{([^}]+)\}", path))
        for method in (m for m in item if m in METHODS):
            params = [resolve(spec, p) for p in item.get("parameters", []) + item[method].get(
                "parameters", [])]
            declared = {p["name"] for p in params if p["in"] == "path"}
            if declared != in_path:
                fail(f"{method.upper()} {path}: path parameters {sorted(declared)} "
                     f"!= {sorted(in_path)}")
    print(f"routes: {len(in_code)} served, {len(described)} described")


HANDLER_ROW = re.compile(r'\{\s*"(GET|POST|PUT|DELETE|PATCH)"\s*,\s*"(/[^"]*)"\s*,[^,{}]*,[^,{}]*,'
                         r'\s*(\w+)\s*\}')
HANDLER_DEF = re.compile(r"^ApiResponse (\w+)\(RequestContext& rc\) \{$(.*?)^\}$",
                         re.MULTILINE | re.DOTALL)
# Parameters every GET takes (the dispatcher waits for min_position before any handler runs).
EVERY_GET = {"min_position", "timeout_ms"}


def query_params_read(body):
    """The query parameters a handler's body reads, by the RequestContext calls it makes."""
    names = set(re.findall(r'(?:QueryParam|TimeParam|UintParam)\("(\w+)"\)', body))
    if "LimitParam(" in body:
        names.add("limit")
    if "FilterParams()" in body:
        names |= {"stream_prefix", "types"}
    for call in re.findall(r"PointParam\(rc,([^;]*)\)", body):
        names |= set(re.findall(r'"(\w+)"', call))
    if "valid_at" in names:
        names.add("known_at")  # PointParam reads it with valid_at
    return names


def check_query_params(spec, source_dir):
    """The query parameters each route's handler reads are the ones its operation declares."""
    server_dir = os.path.join(source_dir, "src/server")
    with open(os.path.join(server_dir, "routes.cc"), encoding="utf-8") as f:
        rows = HANDLER_ROW.findall(f.read())
    bodies = {}
    for name in sorted(os.listdir(server_dir)):
        if name.startswith("routes") and name.endswith(".cc"):
            with open(os.path.join(server_dir, name), encoding="utf-8") as f:
                bodies.update(dict(HANDLER_DEF.findall(f.read())))
    checked = 0
    for method, path, handler in rows:
        op = spec["paths"].get(path, {}).get(method.lower())
        if op is None or handler not in bodies:
            continue  # an undescribed route is reported by check_routes
        params = [resolve(spec, p) for p in spec["paths"][path].get("parameters", []) +
                  op.get("parameters", [])]
        declared = {p["name"] for p in params if p["in"] == "query"}
        read = query_params_read(bodies[handler])
        if method == "GET":
            read |= EVERY_GET
        for name in sorted(read - declared):
            fail(f"{method} {path} ({handler}) reads query parameter '{name}', not described")
        for name in sorted(declared - read):
            fail(f"{method} {path} ({handler}): described query parameter '{name}' is never "
                 "read")
        checked += 1
    print(f"query parameters: {checked} handlers compared with their operations")


def resolve(spec, node):
    """Follows a local $ref ("#/components/...") of the description."""
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


class Validator:
    def __init__(self, spec):
        self.spec = spec
        self.checked = set()  # (METHOD, path template, status)
        jsonschema.Draft202012Validator.check_schema(
            {"components": {"schemas": spec["components"]["schemas"]}})

    def response_spec(self, method, template, status):
        op = self.spec["paths"].get(template, {}).get(method.lower())
        if op is None:
            return None
        responses = op["responses"]
        r = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get(
            "default")
        return None if r is None else resolve(self.spec, r)

    def check_request(self, method, template, body):
        """Validates a request body the test sends against the described request body."""
        op = self.spec["paths"].get(template, {}).get(method.lower())
        rb = resolve(self.spec, op.get("requestBody")) if op else None
        schema = rb and rb.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            fail(f"{method} {template}: sends a JSON body, but no application/json request body "
                 "is described")
            return
        self.validate(f"{method} {template} request", schema, body)

    def check(self, method, template, status, content_type, body, headers=()):
        where = f"{method} {template} -> {status}"
        r = self.response_spec(method, template, status)
        if r is None:
            fail(f"{where}: not described (body: {body[:300]!r})")
            return
        self.checked.add((method, template, status))
        for name in r.get("headers", {}):
            if name.lower() not in {h.lower() for h in headers}:
                fail(f"{where}: the described header {name} is missing")
        content = r.get("content")
        if not content:
            return
        media = (content_type or "").split(";")[0].strip()
        if media not in content:
            fail(f"{where}: Content-Type {content_type!r}, described: {sorted(content)}")
            return
        schema = content[media].get("schema")
        if schema is None:
            return
        if media == "application/json":
            try:
                value = json.loads(body)
            except ValueError as e:
                fail(f"{where}: body is not JSON ({e}): {body[:300]!r}")
                return
        else:
            value = body.decode("utf-8")
        self.validate(where, schema, value)

    def validate(self, where, schema, value):
        # Local $refs resolve against the root schema: give it the description's components.
        root = dict(schema)
        root["components"] = self.spec["components"]
        validator = jsonschema.Draft202012Validator(root)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        for e in errors[:5]:
            path = "/".join(str(p) for p in e.absolute_path)
            fail(f"{where}: at '/{path}': {e.message}")
        if errors:
            print(f"  body: {json.dumps(value)[:600]}", file=sys.stderr)


class Server:
    def __init__(self, binary, data, backup_dir, extra=()):
        cmd = [binary, "serve", "--data", data, "--listen", "127.0.0.1:0", *extra]
        if backup_dir:
            cmd += ["--backup-dir", backup_dir]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        m = re.match(r"listening on (http://\S+)$", line)
        if not m:
            self.stop()
            raise RuntimeError(f"server did not say where it listens: {line!r}; stderr: "
                               f"{self.proc.stderr.read()[:2000]}")
        self.url = m.group(1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Client:
    def __init__(self, server, validator):
        self.server = server
        self.v = validator

    def error_outside_operations(self, method, path, expect, header=None):
        """A request no operation describes (a wrong method, an unknown path): the answer must
        be the described Error object."""
        req = urllib.request.Request(self.server.url + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, got, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, got, raw = e.code, e.headers, e.read()
        where = f"{method} {path} -> {status}"
        if status != expect:
            fail(f"{where}: expected {expect}")
        if header and got.get(header) is None:
            fail(f"{where}: no {header} header")
        try:
            self.v.validate(where, {"$ref": "#/components/schemas/Error"}, json.loads(raw))
        except ValueError:
            fail(f"{where}: body is not JSON: {raw[:300]!r}")

    def call(self, method, template, params=None, query=None, body=None, headers=None,
             expect=None):
        """Requests template with its {params} filled in; checks the answer against the
        description and (if given) the expected status. Returns (status, parsed JSON or text)."""
        path = template
        for name, value in (params or {}).items():
            path = path.replace("{" + name + "}", urllib.parse.quote(str(value), safe=""))
        url = self.server.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, got, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, got, raw = e.code, e.headers, e.read()
        self.v.check(method, template, status, got.get("Content-Type"), raw, got.keys())
        if isinstance(body, dict) and 200 <= status < 300:
            self.v.check_request(method, template, body)  # a body the server took
        if expect is not None and status != expect:
            fail(f"{method} {path}: status {status}, expected {expect}: {raw[:300]!r}")
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def subscribe_first_event(self, query):
        """Opens /v1/subscribe, checks its status and media type and validates the first
        event's data against the Event schema."""
        template = "/v1/subscribe"
        url = self.server.url + template + "?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=30) as resp:
            self.v.check("GET", template, resp.status, resp.headers.get("Content-Type"), b"")
            while True:
                line = resp.fp.readline().decode("utf-8")
                if not line:
                    fail("subscribe: the stream ended before an event")
                    return
                if line.startswith("data:"):
                    event = json.loads(line[len("data:"):].strip())
                    self.v.validate("GET /v1/subscribe data", {
                        "$ref": "#/components/schemas/Event"}, event)
                    return event


def exercise(c):
    s = "friend-1"
    # Writing.
    st, r = c.call("POST", "/v1/streams/{stream}", {"stream": s}, body={
        "expected_revision": "no_stream",
        "events": [{"type": "$put", "data": {"name": "Rachel", "location": "New York"},
                    "metadata": {"actor": "joey", "reason": "we met"}}]}, expect=201)
    event_id = "6f1b2a7e-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
    append = {"events": [{"id": event_id, "type": "$patch", "data": {"location": "Paris"},
                          "metadata": {"actor": "joey"}}]}
    c.call("POST", "/v1/streams/{stream}", {"stream": s}, body=append,
           headers={"If-Match": '"0"'}, expect=201)
    c.call("POST", "/v1/streams/{stream}", {"stream": s}, body=append, expect=200)  # replay
    c.call("POST", "/v1/streams/{stream}", {"stream": s}, body={
        "expected_revision": "no_stream", "events": [{"type": "$put", "data": {}}]}, expect=409)
    c.call("POST", "/v1/streams/{stream}", {"stream": "orders/1"},
           body={"events": [{"type": "placed", "data": {"n": 1}}]}, expect=201)
    c.call("POST", "/v1/streams/{stream}", {"stream": s}, body=b"{not json", expect=400)
    c.call("POST", "/v1/streams/{stream}", {"stream": s}, body=b"{}",
           headers={"Content-Type": "text/plain"}, expect=415)
    c.call("POST", "/v1/streams/{stream}", {"stream": "bad\x01name"},
           body={"events": [{"type": "x"}]}, expect=400)  # a control character
    c.call("POST", "/v1/streams/{stream}", {"stream": "$audit"},
           body={"events": [{"type": "x"}]}, expect=400)
    c.call("POST", "/v1/transactions", body={"appends": [
        {"stream": "account/a", "expected_revision": "no_stream",
         "events": [{"type": "debited", "data": {"amount": 10}}]},
        {"stream": "account/b", "expected_revision": "any",
         "events": [{"type": "credited", "data": {"amount": 10}}]}]}, expect=201)
    c.call("POST", "/v1/transactions", body={"appends": [
        {"stream": "account/a", "expected_revision": 7, "events": [{"type": "debited"}]}]},
        expect=409)
    c.call("POST", "/v1/transactions/batch", body={"transactions": [
        {"appends": [{"stream": "acct/c", "expected_revision": "no_stream",
                      "events": [{"type": "opened"}]}]}]}, expect=200)
    c.call("POST", "/v1/transactions/batch", body={"transactions": [
        {"appends": [{"stream": "acct/d", "expected_revision": "no_stream",
                      "events": [{"type": "opened"}]}]},
        {"appends": [{"stream": "acct/d", "expected_revision": 7,
                      "events": [{"type": "closed"}]}]}]}, expect=409)
    c.call("POST", "/v1/transactions/batch", body={"transactions": [{"bad": 1}]}, expect=400)

    # Reading.
    c.call("GET", "/v1/streams/{stream}", {"stream": s}, expect=200)
    c.call("GET", "/v1/streams/{stream}", {"stream": s}, query={"limit": 1}, expect=200)
    c.call("GET", "/v1/streams/{stream}", {"stream": s},
           query={"direction": "backward", "limit": 1}, expect=200)
    c.call("GET", "/v1/streams/{stream}", {"stream": "nobody"}, expect=404)
    c.call("GET", "/v1/streams/{stream}", {"stream": s}, query={"limit": 0}, expect=400)
    c.call("GET", "/v1/streams/{stream}/info", {"stream": s}, expect=200)
    c.call("GET", "/v1/streams/{stream}/info", {"stream": "nobody"}, expect=200)
    c.call("GET", "/v1/log", expect=200)
    c.call("GET", "/v1/log", query={"from": 1, "limit": 2, "stream_prefix": "account/",
                                    "types": "debited,credited"}, expect=200)
    c.call("GET", "/v1/events/{id}", {"id": event_id}, expect=200)
    c.call("GET", "/v1/events/{id}", {"id": "0f1b2a7e-3c4d-4e5f-8a9b-0c1d2e3f4a5b"}, expect=404)
    c.call("GET", "/v1/events/{id}", {"id": "not-a-uuid"}, expect=400)
    c.call("GET", "/v1/entities/{stream}", {"stream": s}, query={"min_position": 10**9,
                                                               "timeout_ms": 50}, expect=504)

    # Subscriptions and consumers.
    c.subscribe_first_event({"from": 1, "stream_prefix": "friend-"})
    c.call("POST", "/v1/consumers/{name}/ack", {"name": "mailer"}, body={"position": 1},
           expect=200)
    c.call("GET", "/v1/consumers/{name}", {"name": "mailer"}, expect=200)
    c.call("GET", "/v1/consumers/{name}", {"name": "never"}, expect=404)
    c.call("POST", "/v1/consumers/{name}/ack", {"name": "mailer"}, body={"position": 10**9},
           expect=400)

    # Consumer groups.
    g = {"name": "billing"}
    c.call("PUT", "/v1/groups/{name}", g, body={"stream_prefix": "friend-", "max_retries": 2,
                                                "lease_ms": 60000}, expect=201)
    c.call("PUT", "/v1/groups/{name}", g, body={"stream_prefix": "friend-", "max_retries": 3},
           expect=200)
    c.call("PUT", "/v1/groups/{name}", g, body={"stream_prefix": "other-"}, expect=400)
    c.call("PUT", "/v1/groups/{name}", {"name": "late"}, body={"start_position": "end"},
           expect=201)
    c.call("PUT", "/v1/groups/{name}", {"name": "x"}, body={"max_retries": 0}, expect=400)
    c.call("GET", "/v1/groups", expect=200)
    c.call("GET", "/v1/groups/{name}", {"name": "nope"}, expect=404)
    st, got = c.call("POST", "/v1/groups/{name}/read", g,
                     body={"member": "worker-1", "max": 2, "wait_ms": 1000}, expect=200)
    held = [e["position"] for e in got["events"]] if st == 200 else []
    if len(held) != 2:
        fail(f"POST /v1/groups/billing/read: expected 2 events, got {got}")
    else:
        c.call("POST", "/v1/groups/{name}/ack", g, body={"positions": held[:1]}, expect=200)
        c.call("POST", "/v1/groups/{name}/ack", g, body={"positions": held[:1]}, expect=409)
        c.call("POST", "/v1/groups/{name}/nack", g,
               body={"positions": held[1:], "action": "park", "reason": "test"}, expect=200)
    c.call("POST", "/v1/groups/{name}/read", g, body={"member": "bad name"}, expect=400)
    c.call("POST", "/v1/groups/{name}/read", {"name": "nope"}, body={"member": "w"},
           expect=404)
    c.call("POST", "/v1/groups/{name}/ack", g, body={"positions": []}, expect=400)
    c.call("POST", "/v1/groups/{name}/nack", g, body={"positions": [1], "action": "later"},
           expect=400)
    c.call("POST", "/v1/groups/{name}/replay-parked", g, expect=200)
    c.call("POST", "/v1/groups/{name}/replay-parked", {"name": "nope"}, expect=404)
    c.call("GET", "/v1/groups/{name}", g, expect=200)
    c.call("DELETE", "/v1/groups/{name}", {"name": "late"}, expect=200)
    c.call("DELETE", "/v1/groups/{name}", {"name": "late"}, expect=404)

    # Temporal queries.
    c.call("GET", "/v1/entities/{stream}", {"stream": s}, expect=200)
    c.call("GET", "/v1/entities/{stream}", {"stream": s}, query={"at_revision": 0}, expect=200)
    c.call("GET", "/v1/entities/{stream}", {"stream": s}, query={"as_of": "2000-01-01"},
           expect=200)  # before it existed
    c.call("GET", "/v1/entities/{stream}", {"stream": s},
           query={"at_revision": 0, "as_of": "2000-01-01"}, expect=400)
    c.call("GET", "/v1/entities/{stream}/history", {"stream": s}, query={"path": "/location"},
           expect=200)
    st, page = c.call("GET", "/v1/entities/{stream}/history", {"stream": s},
                      query={"path": "/location", "limit": 1}, expect=200)
    if isinstance(page, dict) and page.get("cursor"):
        c.call("GET", "/v1/entities/{stream}/history", {"stream": s},
               query={"path": "/location", "limit": 1, "cursor": page["cursor"]}, expect=200)
    c.call("GET", "/v1/entities/{stream}/history", {"stream": s},
           query={"path": "/nothing", "valid_time": "true"}, expect=200)
    c.call("GET", "/v1/entities/{stream}/diff", {"stream": s}, query={"from": 0, "to": 1},
           expect=200)
    c.call("GET", "/v1/entities/{stream}/diff", {"stream": s},
           query={"from": 0, "events": "true", "limit": 1}, expect=200)
    c.call("GET", "/v1/entities/{stream}/diff", {"stream": s}, expect=400)
    c.call("POST", "/v1/entities/{stream}/revert", {"stream": s}, body={
        "to_revision": 0, "expected_revision": 1, "actor": "monica", "reason": "a mistake"},
        expect=201)
    c.call("POST", "/v1/entities/{stream}/revert", {"stream": s}, body={
        "to_revision": 0, "expected_revision": 1}, expect=409)
    c.call("GET", "/v1/activity", expect=200)
    c.call("GET", "/v1/activity", query={"actor": "joey", "since": "2000-01-01", "limit": 1},
           expect=200)

    # Administration and operations.
    c.call("GET", "/v1/integrity", expect=200)
    c.call("POST", "/v1/integrity/verify", expect=200)
    c.call("POST", "/v1/backup", body={"to": "first"}, expect=201)
    c.call("POST", "/v1/backup", body={"to": "../up"}, expect=400)
    st, created = c.call("POST", "/v1/tokens", body={
        "name": "order-service", "scopes": ["read", "append"], "prefixes": ["orders/"],
        "expires_at": "2999-06-30T00:00:00Z"}, expect=201)
    c.call("GET", "/v1/tokens", expect=200)
    c.call("GET", "/v1/whoami", expect=200)
    if isinstance(created, dict) and "id" in created:
        c.call("DELETE", "/v1/tokens/{id}", {"id": created["id"]}, expect=200)
    c.call("DELETE", "/v1/tokens/{id}", {"id": "000000000000"}, expect=404)
    c.call("GET", "/healthz", expect=200)
    c.call("GET", "/metrics", expect=200)
    c.error_outside_operations("PUT", "/healthz", 405, header="Allow")
    c.error_outside_operations("GET", "/v1/no-such-endpoint", 404)
    # The capture endpoints answer 404 when no capture runs.
    c.call("GET", "/v1/capture", expect=404)
    c.call("POST", "/v1/capture/revert", body={"table": "public.t", "changes_by": "x"},
           expect=404)
    # So do the projection endpoints when no projection runs (serve --project is tested with
    # PostgreSQL in tests/cli/project_test.sh).
    c.call("GET", "/v1/projections", expect=404)
    c.call("GET", "/v1/projections/{name}", {"name": "changes"}, expect=404)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="the timetrail command")
    ap.add_argument("--source-dir", required=True, help="the timetrail source tree")
    args = ap.parse_args()
    with open(os.path.join(args.source_dir, "docs/openapi.yaml"), encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    if not str(spec.get("openapi", "")).startswith("3.1"):
        fail("docs/openapi.yaml is not OpenAPI 3.1 (its schemas are checked as JSON Schema "
             "2020-12)")
    check_routes(spec, args.source_dir)
    check_query_params(spec, args.source_dir)
    validator = Validator(spec)
    tmp = tempfile.mkdtemp(prefix="timetrail-openapi-")
    server = None
    try:
        backups = os.path.join(tmp, "backups")
        os.mkdir(backups)
        server = Server(args.bin, os.path.join(tmp, "data"), backups)
        exercise(Client(server, validator))
    finally:
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    # Authentication on, and no token: every request but /healthz is refused with 401.
    tmp = tempfile.mkdtemp(prefix="timetrail-openapi-auth-")
    server = None
    try:
        server = Server(args.bin, os.path.join(tmp, "data"), None, ["--auth", "on"])
        c = Client(server, validator)
        c.call("GET", "/healthz", expect=200)
        c.call("GET", "/v1/log", expect=401)
        c.call("POST", "/v1/streams/{stream}", {"stream": "s"},
               body={"events": [{"type": "x"}]}, expect=401)
        c.call("GET", "/metrics", expect=401)
    finally:
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    ops = {(m, p) for m, p, _ in validator.checked}
    print(f"answers: {len(validator.checked)} (operation, status) pairs checked over "
          f"{len(ops)} of {len(described_routes(spec))} operations")
    if failures:
        print(f"{len(failures)} disagreement(s) between docs/openapi.yaml and the server",
              file=sys.stderr)
        return 1
    print("docs/openapi.yaml agrees with the server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
