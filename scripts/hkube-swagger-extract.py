#!/usr/bin/env python3
"""Extract what the tests need from HKube's API definition.

HKube's swagger (HKube 2.10.0, MIT licence, https://github.com/kube-HPC/hkube)
lives outside this repository (../shared/spec/hkube/swagger.json), but tests
run from a clean clone, so the parts they read are vendored into
fixtures/hkube/swagger-extract.json:

- every operation (method and path, with its summary and parameters), which
  tests/hkube_swagger.rs walks against a real server;
- the JSON schemas of the 200 answers of exec/status and exec/results, with
  every $ref resolved, which our answers are validated against.

Usage: scripts/hkube-swagger-extract.py [SWAGGER] [OUT]
  SWAGGER defaults to $DK_HKUBE_SWAGGER, then /work/shared/spec/hkube/swagger.json;
  OUT defaults to fixtures/hkube/swagger-extract.json. With --check, OUT is
  compared with a fresh extract and the exit code says whether it is current.
"""

import json
import os
import sys

METHODS = ("get", "post", "put", "delete", "patch")
SCHEMAS = {
    "execStatus": ("/exec/status/{jobId}", "get"),
    "execResults": ("/exec/results/{jobId}", "get"),
}


def default_swagger():
    return os.environ.get("DK_HKUBE_SWAGGER") or "/work/shared/spec/hkube/swagger.json"


def resolve(node, root, seen=()):
    """`node` with each {"$ref": "#/a/b"} replaced by what it points to."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref in seen:
                raise SystemExit(f"circular $ref {ref}")
            target = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return resolve(target, root, seen + (ref,))
        return {k: resolve(v, root, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, root, seen) for v in node]
    return node


def extract(swagger):
    operations = []
    for path, item in swagger["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = resolve(op.get("parameters", []), swagger)
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "parameters": [{"name": p["name"], "in": p["in"]} for p in params],
                }
            )
    schemas = {}
    for key, (path, method) in SCHEMAS.items():
        answer = swagger["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        schemas[key] = resolve(answer, swagger)
    info = swagger["info"]
    return {
        "origin": "HKube's API definition (swagger.json of HKube "
        + info["version"]
        + ", https://github.com/kube-HPC/hkube), extracted by scripts/hkube-swagger-extract.py",
        "license": info.get("license", {}).get("name", ""),
        "version": info["version"],
        "operations": operations,
        "schemas": schemas,
    }


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    source = args[0] if args else default_swagger()
    out = args[1] if len(args) > 1 else os.path.join(os.path.dirname(__file__), "..", "fixtures", "hkube", "swagger-extract.json")
    with open(source) as f:
        text = json.dumps(extract(json.load(f)), indent=1, sort_keys=True) + "\n"
    if check:
        with open(out) as f:
            if f.read() != text:
                print(f"{out} is out of date with {source}: run scripts/hkube-swagger-extract.py", file=sys.stderr)
                return 1
        return 0
    with open(out, "w") as f:
        f.write(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
