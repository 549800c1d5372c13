"""A stand-in for /kaniko/executor (no Kaniko image can be pulled on the
project's machines), for tests/stand_in_kaniko.rs. It takes the arguments
the kaniko backend's Job passes and does what Kaniko does with them, for the
instructions of base-images/*/Dockerfile: reads the context from
--context=tar://FILE, pulls the FROM image's manifest and config from its
registry, turns each COPY into a layer, applies ARG/ENV/WORKDIR/ENTRYPOINT/
CMD/LABEL/USER, pushes blobs and manifest to --destination and writes the
digest to --digest-file, logging as Kaniko does (INFO lines, `error
building image: …` and exit 1 on failure).

What it cannot do is run RUN steps (there is no container runtime in the
pod): it skips them, and fails when one would install dependencies
(requirements.txt, package.json or DEPENDENCY_INSTALL_CMD), so it never
pushes an image that lacks what Kaniko would have put in. No layer cache
(--cache-repo is ignored) and no registry credentials.
"""
import fnmatch
import gzip
import hashlib
import io
import json
import os
import shlex
import signal
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

MANIFEST_TYPES = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
]
START = time.time()


def info(message):
    print(f"INFO[{int(time.time() - START):04d}] {message}", flush=True)


class Failed(Exception):
    pass


class Registry:
    """The v2 API of one registry host (HTTP for --insecure-registry hosts)."""

    def __init__(self, host, insecure):
        self.host = host
        self.base = f"{'http' if host in insecure else 'https'}://{host}/v2/"

    def call(self, method, path, body=None, headers=None, ok=(200, 201, 202)):
        url = path if path.startswith("http") else self.base + path
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=600) as res:
                return res.status, res.headers, res.read()
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return e.code, e.headers, e.read()
            detail = e.read().decode(errors="replace").strip()
            try:
                errors = json.loads(detail).get("errors", [])
                detail = "; ".join(f"{x.get('code')}: {x.get('message')}" for x in errors) or detail
            except ValueError:
                pass
            raise Failed(f"{method} {url}: {detail or e.reason}")
        except (urllib.error.URLError, OSError) as e:
            raise Failed(f"{method} {url}: {getattr(e, 'reason', e)}")

    def manifest(self, repo, ref):
        _, headers, body = self.call("GET", f"{repo}/manifests/{ref}", headers={"Accept": ", ".join(MANIFEST_TYPES)})
        manifest = json.loads(body)
        media = manifest.get("mediaType") or headers.get("Content-Type", "")
        if "list" in media or "index" in media:
            wanted = [m for m in manifest["manifests"] if m.get("platform", {}).get("architecture") == "amd64"]
            return self.manifest(repo, (wanted or manifest["manifests"])[0]["digest"])
        return manifest

    def has_blob(self, repo, digest):
        status, _, _ = self.call("HEAD", f"{repo}/blobs/{digest}", ok=(200, 404))
        return status == 200

    def upload(self, repo, digest, data):
        _, headers, _ = self.call("POST", f"{repo}/blobs/uploads/")
        location = headers["Location"]
        if not location.startswith("http"):
            location = self.base[: -len("/v2/")] + location
        sep = "&" if "?" in location else "?"
        self.call("PUT", f"{location}{sep}digest={digest}", body=data,
                  headers={"Content-Type": "application/octet-stream"})

    def mount(self, repo, digest, source_repo):
        status, _, _ = self.call("POST", f"{repo}/blobs/uploads/?mount={digest}&from={source_repo}")
        return status == 201


def split_reference(reference):
    """`host/repo:tag` (or `@digest`) as (host, repo, ref)."""
    first, _, rest = reference.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        first, rest = "index.docker.io", reference if "/" in reference else f"library/{reference}"
    if "@" in rest:
        repo, ref = rest.split("@", 1)
    elif ":" in rest.rsplit("/", 1)[-1]:
        repo, ref = rest.rsplit(":", 1)
    else:
        repo, ref = rest, "latest"
    return first, repo, ref


def substitute(text, variables):
    out, i = "", 0
    while i < len(text):
        if text[i] == "$":
            if text[i + 1:i + 2] == "{":
                end = text.index("}", i)
                name, i = text[i + 2:end], end + 1
            else:
                j = i + 1
                while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                    j += 1
                name, i = text[i + 1:j], j
            out += variables.get(name, "")
        else:
            out, i = out + text[i], i + 1
    return out


def instructions(dockerfile):
    """(INSTRUCTION, rest) per logical line: continuations joined, comments dropped."""
    logical = ""
    for line in dockerfile.splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            logical += line.rstrip()[:-1] + " "
            continue
        logical += line
        keyword, _, rest = logical.strip().partition(" ")
        yield keyword.upper(), rest.strip()
        logical = ""


def layer(context, sources, dest, reproducible):
    """A gzipped tar of COPY `sources` to `dest`; (blob, diff_id)."""
    matched = []
    for pattern in sources:
        found = sorted(p for p in walk_top(context) if fnmatch.fnmatchcase(p, pattern.rstrip("/")))
        matched += found
    if not matched:
        raise Failed(f"COPY failed: no source files were specified: {' '.join(sources)}")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        added = set()

        def add(path, arcname):
            parent = os.path.dirname(arcname)
            if parent and parent not in added:
                add_dir(parent)
            info_ = tar.gettarinfo(path, arcname)
            info_.uid = info_.gid = 0
            info_.uname = info_.gname = ""
            if reproducible:
                info_.mtime = 0
            with open(path, "rb") if info_.isfile() else io.BytesIO() as f:
                tar.addfile(info_, f if info_.isfile() else None)
            added.add(arcname)

        def add_dir(arcname):
            parent = os.path.dirname(arcname)
            if parent and parent not in added:
                add_dir(parent)
            entry = tarfile.TarInfo(arcname)
            entry.type, entry.mode, entry.mtime = tarfile.DIRTYPE, 0o755, 0 if reproducible else int(time.time())
            tar.addfile(entry)
            added.add(arcname)

        target = dest.lstrip("/").rstrip("/")
        into_dir = dest.endswith("/") or len(matched) > 1
        for source in matched:
            full = os.path.join(context, source)
            if os.path.isdir(full):
                if target:
                    add_dir(target)
                for root, dirs, files in os.walk(full):
                    dirs.sort()
                    rel = os.path.relpath(root, full)
                    for name in sorted(dirs) + sorted(files):
                        arc = os.path.normpath(os.path.join(target, rel, name))
                        if name in dirs:
                            add_dir(arc)
                        else:
                            add(os.path.join(root, name), arc)
            else:
                add(full, os.path.join(target, os.path.basename(source)) if into_dir else target)
    data = raw.getvalue()
    blob = gzip.compress(data, mtime=0)
    return blob, "sha256:" + hashlib.sha256(data).hexdigest()


def walk_top(context):
    """Every path in the context, relative to it."""
    for root, dirs, files in os.walk(context):
        for name in dirs + files:
            yield os.path.relpath(os.path.join(root, name), context)


def build(args):
    flags = {}
    for arg in args:
        key, _, value = arg.partition("=")
        flags.setdefault(key, []).append(value)
    one = lambda key, default=None: (flags.get(key) or [default])[-1]
    build_args = dict(a.split("=", 1) for a in flags.get("--build-arg", []))
    insecure = set(flags.get("--insecure-registry", []))
    reproducible = "--reproducible" in flags
    if "--cache-repo" in flags:
        info(f"stand-in: no layer cache (--cache-repo={one('--cache-repo')} is not used)")
    context = tempfile.mkdtemp()
    archive = one("--context", "").removeprefix("tar://")
    with tarfile.open(archive) as tar:
        tar.extractall(context)
    with open(os.path.join(context, one("--dockerfile", "Dockerfile"))) as f:
        dockerfile = f.read()

    variables, base, config, layers, history = {}, None, None, [], []
    global_args = {}
    for keyword, rest in instructions(dockerfile):
        if keyword == "ARG":
            name, has_default, default = rest.partition("=")
            value = build_args.get(name, default if has_default else global_args.get(name, ""))
            (variables if base else global_args)[name] = value
        elif keyword == "FROM":
            reference = substitute(rest, global_args)
            info(f"Retrieving image manifest {reference}")
            host, repo, ref = split_reference(reference)
            registry = Registry(host, insecure)
            manifest = registry.manifest(repo, ref)
            info(f"Retrieving image {reference} from registry {host}")
            _, _, body = registry.call("GET", f"{repo}/blobs/{manifest['config']['digest']}")
            base, config = (registry, repo, manifest), json.loads(body)
            config.setdefault("config", {})
            variables = {}
        elif keyword == "COPY":
            parts = shlex.split(substitute(rest, variables))
            info(f"COPY {' '.join(parts)}")
            blob, diff_id = layer(context, parts[:-1], parts[-1], reproducible)
            info("Taking snapshot of files...")
            layers.append((blob, diff_id))
            history.append(f"COPY {' '.join(parts)}")
        elif keyword == "RUN":
            deps = build_args.get("DEPENDENCY_INSTALL_CMD") or any(
                os.path.exists(os.path.join(context, "code", f)) for f in ("requirements.txt", "package.json"))
            if deps:
                raise Failed("the stand-in Kaniko cannot run RUN steps, and this build installs dependencies")
            info(f"RUN {' '.join(rest.split())[:60]}... (stand-in: not run, nothing to install)")
        elif keyword == "ENV":
            env = dict(e.split("=", 1) for e in config["config"].get("Env") or [])
            for pair in shlex.split(substitute(rest, {**variables, **env})):
                key, _, value = pair.partition("=")
                env[key] = value
            config["config"]["Env"] = [f"{k}={v}" for k, v in env.items()]
        elif keyword == "WORKDIR":
            config["config"]["WorkingDir"] = substitute(rest, variables)
        elif keyword in ("ENTRYPOINT", "CMD"):
            value = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
            config["config"]["Entrypoint" if keyword == "ENTRYPOINT" else "Cmd"] = value
            if keyword == "ENTRYPOINT":
                config["config"]["Cmd"] = None
        elif keyword == "LABEL":
            for pair in shlex.split(substitute(rest, variables)):
                key, _, value = pair.partition("=")
                config["config"].setdefault("Labels", {})[key] = value
        elif keyword == "USER":
            config["config"]["User"] = substitute(rest, variables)
        else:
            raise Failed(f"the stand-in Kaniko does not know the instruction {keyword}")
    if base is None:
        raise Failed("the Dockerfile has no FROM")
    return push(base, config, layers, history, one("--destination"), insecure, reproducible)


def push(base, config, layers, history, destination, insecure, reproducible):
    base_registry, base_repo, manifest = base
    oci = "oci" in manifest.get("mediaType", "")
    layer_type = "application/vnd.oci.image.layer.v1.tar+gzip" if oci else \
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    created = "1970-01-01T00:00:00Z" if reproducible else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    config["created"] = created
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"] += [d for _, d in layers]
    config["history"] = config.get("history", []) + [{"created": created, "created_by": h} for h in history]
    config_blob = json.dumps(config, separators=(",", ":")).encode()

    host, repo, tag = split_reference(destination)
    target = Registry(host, insecure)
    info(f"Pushing image to {destination}")
    for entry in manifest["layers"]:
        digest = entry["digest"]
        if target.has_blob(repo, digest):
            continue
        if host == base_registry.host and target.mount(repo, digest, base_repo):
            continue
        _, _, data = base_registry.call("GET", f"{base_repo}/blobs/{digest}")
        target.upload(repo, digest, data)
    new_layers = []
    for blob, _ in layers:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        if not target.has_blob(repo, digest):
            target.upload(repo, digest, blob)
        new_layers.append({"mediaType": layer_type, "size": len(blob), "digest": digest})
    config_digest = "sha256:" + hashlib.sha256(config_blob).hexdigest()
    target.upload(repo, config_digest, config_blob)
    media = manifest.get("mediaType", MANIFEST_TYPES[0])
    out = {
        "schemaVersion": 2,
        "mediaType": media,
        "config": {"mediaType": manifest["config"]["mediaType"], "size": len(config_blob), "digest": config_digest},
        "layers": manifest["layers"] + new_layers,
    }
    body = json.dumps(out, separators=(",", ":")).encode()
    target.call("PUT", f"{repo}/manifests/{tag}", body=body, headers={"Content-Type": media})
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    info(f"Pushed {host}/{repo}@{digest}")
    return digest


def main():
    # PID 1 of its container: end on SIGTERM (a deleted Job) as Kaniko does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = sys.argv[1:]
    digest_file = next((a.split("=", 1)[1] for a in args if a.startswith("--digest-file=")), None)
    try:
        digest = build(args)
    except Failed as e:
        print(f"error building image: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    if digest_file:
        with open(digest_file, "w") as f:
            f.write(digest)


if __name__ == "__main__":
    main()
