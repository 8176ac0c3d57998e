"""TEST CODE ONLY — a small stand-in for the Hugging Face Hub's HTTP API, served on 127.0.0.1 for the ks-publish tests.

The real Hub cannot be reached from the test machines, so the tests point the real `huggingface_hub` client at this
server (`--endpoint` / `HF_ENDPOINT`). It speaks the wire contract that client (2.x) uses when ks-publish publishes,
as read from its source (`hf_api.py`, `_commit_api.py`, `lfs.py`):

- `GET /api/whoami-v2`; `POST /api/repos/create` (409 with the repo's url when it exists); `POST /api/validate-yaml`;
- `GET /api/datasets/{repo}[/revision/{rev}]` (repo info with `sha`), `GET /api/datasets/{repo}/tree/{rev}[/{path}]`
  (`recursive`; files carry git blob `oid` and, for LFS files, `lfs: {oid, size, pointerSize}`),
  `GET /api/datasets/{repo}/refs`;
- `POST /api/datasets/{repo}/preupload/{rev}` (`uploadMode` "lfs" for binary, large or `.gitattributes`-matched
  files, as the Hub decides, and the remote `oid`);
- the Git LFS batch API `POST /datasets/{repo}.git/info/lfs/objects/batch` ("basic" transfer: an upload `href` on
  this server, which stands in for the object store, and a `verify` action), `PUT` of the object, verify `POST`;
- `POST /api/datasets/{repo}/commit/{rev}` with an NDJSON body (header with `parentCommit`, `file`, `lfsFile`,
  `deletedFile`, `deletedFolder`): 412 when `parentCommit` is not the branch head, 422 when an LFS object was
  never uploaded; the commit is applied atomically or not at all;
- `POST /api/datasets/{repo}/tag/{rev}` (409 when the tag exists); `GET /datasets/{repo}/resolve/{rev}/{path}`.

Every request needs a known `Authorization: Bearer` token (401 otherwise), except the object-store PUT, which the
Hub presigns. It does not speak Xet: the client is run with `HF_HUB_DISABLE_XET=1`, which selects its LFS path.
Repos, commits and objects live in memory. Hooks let a test slow the object PUT (to kill an upload midway), slip
a foreign commit in before the next commit (to provoke a 412), or apply a commit and hang up without answering (the
outcome a client cannot know).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from localserver import QuietHTTPServer

GITATTRIBUTES = b"""*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
"""
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores anything larger through LFS
DATE = "2026-01-01T00:00:00.000Z"


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


@dataclass(frozen=True)
class Blob:
    data: bytes | None = None  # a regular file's content
    lfs_oid: str | None = None  # an LFS file's sha256 (content in FakeHub.objects)
    size: int = 0

    @property
    def git_oid(self) -> str:
        if self.lfs_oid is not None:
            return git_blob_id(lfs_pointer(self.lfs_oid, self.size))
        assert self.data is not None
        return git_blob_id(self.data)


@dataclass
class Commit:
    sha: str
    parent: str | None
    message: str
    files: dict[str, Blob]


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    main: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def history(self) -> list[Commit]:
        """Commits of main, newest first."""
        out, sha = [], self.main
        while sha:
            out.append(self.commits[sha])
            sha = self.commits[sha].parent or ""
        return out


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class DropConnection(Exception):
    """Close the connection without a response, as a proxy timing out after the Hub applied the request would."""


class FakeHub:
    """The server and its state. `start()` returns the endpoint URL; `stop()` shuts it down."""

    def __init__(self, tokens: dict[str, str] | None = None, orgs: tuple[str, ...] = ("knowledgesmith",)) -> None:
        self.tokens = tokens or {"hf_test_write_token": "tester"}
        self.orgs = orgs
        self.repos: dict[str, Repo] = {}
        self.objects: dict[str, bytes] = {}  # the LFS object store, by sha256
        self.log: list[tuple[str, str, int]] = []  # (method, path, status) of every request
        self.lock = threading.RLock()
        self.put_delay = 0.0  # seconds each object PUT waits before answering
        self.put_started = threading.Event()
        self.before_commit: Callable[[Repo], None] | None = None  # runs once, inside the next commit request
        self.drop_commit_response = False  # apply the next commit, then hang up without answering
        self._counter = 0
        self._server: QuietHTTPServer | None = None
        self.url = ""

    # ------------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ------------------------------------------------------------------------------------------------ inspection
    def head(self, repo_id: str) -> str:
        return self.repos[repo_id].main

    def commits(self, repo_id: str) -> list[Commit]:
        return self.repos[repo_id].history()

    def files(self, repo_id: str, rev: str = "main") -> dict[str, bytes]:
        """Path → content at a revision (LFS content resolved from the object store)."""
        with self.lock:
            commit = self._resolve(self.repos[repo_id], rev)
            return {path: blob.data if blob.data is not None else self.objects[blob.lfs_oid]  # type: ignore[index]
                    for path, blob in commit.files.items()}

    def lfs_paths(self, repo_id: str, rev: str = "main") -> set[str]:
        commit = self._resolve(self.repos[repo_id], rev)
        return {path for path, blob in commit.files.items() if blob.lfs_oid is not None}

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for m, path, _ in self.log if m == method and re.search(pattern, path))

    # ------------------------------------------------------------------------------------------------ state changes
    def _new_commit(self, repo: Repo, parent: str | None, message: str, files: dict[str, Blob]) -> Commit:
        self._counter += 1
        seed = json.dumps([parent, message, sorted((p, b.git_oid) for p, b in files.items()), self._counter])
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), parent, message, files)
        repo.commits[commit.sha] = commit
        repo.main = commit.sha
        return commit

    def create_repo(self, repo_id: str, private: bool = False) -> Repo:
        repo = Repo(repo_id, private)
        self._new_commit(repo, None, "initial commit", {".gitattributes": Blob(data=GITATTRIBUTES,
                                                                               size=len(GITATTRIBUTES))})
        self.repos[repo_id] = repo
        return repo

    def push_foreign_commit(self, repo: Repo, path: str, data: bytes) -> None:
        """Someone else commits to main (used to provoke a 412)."""
        files = dict(repo.commits[repo.main].files)
        files[path] = Blob(data=data, size=len(data))
        self._new_commit(repo, repo.main, f"foreign commit: {path}", files)

    def _resolve(self, repo: Repo, rev: str) -> Commit:
        rev = unquote(rev)
        sha = repo.main if rev in ("main", "refs/heads/main") else repo.tags.get(rev, rev)
        if sha not in repo.commits:
            raise HttpError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return repo.commits[sha]

    def _repo(self, repo_id: str, user: str | None) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and user is None):
            raise HttpError(404, "Repository not found", "RepoNotFound")
        return repo

    # ------------------------------------------------------------------------------------------------ routes
    def route(self, method: str, path: str, query: dict[str, list[str]], body: bytes,
              user: str | None) -> tuple[int, Any, dict[str, str]]:
        repo_part = r"(?P<repo>[^/]+/[^/]+)"
        routes: list[tuple[str, str, Callable[..., Any], bool]] = [
            ("GET", r"/api/whoami-v2", self._whoami, True),
            ("POST", r"/api/repos/create", self._create, True),
            ("POST", r"/api/validate-yaml", self._validate_yaml, True),
            ("GET", rf"/api/datasets/{repo_part}/refs", self._refs, False),
            ("GET", rf"/api/datasets/{repo_part}/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?", self._tree, False),
            ("GET", rf"/api/datasets/{repo_part}(?:/revision/(?P<rev>[^/]+))?", self._info, False),
            ("POST", rf"/api/datasets/{repo_part}/preupload/(?P<rev>[^/]+)", self._preupload, True),
            ("POST", rf"/datasets/{repo_part}\.git/info/lfs/objects/batch", self._lfs_batch, True),
            ("PUT", rf"/objects/{repo_part}/(?P<oid>[0-9a-f]{{64}})", self._lfs_put, False),
            ("POST", rf"/objects-verify/{repo_part}", self._lfs_verify, True),
            ("POST", rf"/api/datasets/{repo_part}/commit/(?P<rev>[^/]+)", self._commit, True),
            ("POST", rf"/api/datasets/{repo_part}/tag/(?P<rev>[^/]+)", self._tag, True),
            ("GET", rf"/datasets/{repo_part}/resolve/(?P<rev>[^/]+)/(?P<sub>.+)", self._resolve_file, False),
            ("HEAD", rf"/datasets/{repo_part}/resolve/(?P<rev>[^/]+)/(?P<sub>.+)", self._resolve_file, False),
        ]
        for verb, pattern, handler, needs_user in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                if needs_user and user is None:
                    raise HttpError(401, "Invalid credentials in Authorization header")
                args = {k: v for k, v in match.groupdict().items() if v is not None}
                return handler(body=body, query=query, user=user, **args)
        raise HttpError(404, f"no route for {method} {path} in the test Hub")

    def _whoami(self, user: str, **_: Any) -> tuple[int, Any, dict[str, str]]:
        return 200, {"type": "user", "name": user, "fullname": user, "orgs": [{"name": o} for o in self.orgs],
                     "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}}, {}

    def _create(self, body: bytes, user: str, **_: Any) -> tuple[int, Any, dict[str, str]]:
        payload = json.loads(body)
        namespace = payload.get("organization") or user
        repo_id = f"{namespace}/{payload['name']}"
        url = f"{self.url}/datasets/{repo_id}"
        if payload.get("type") != "dataset":
            raise HttpError(400, "the test Hub only hosts datasets")
        if namespace not in (user, *self.orgs):
            raise HttpError(403, f"You don't have the rights to create a dataset under the namespace {namespace}")
        with self.lock:
            if repo_id in self.repos:
                return 409, {"error": "You already created this dataset repo", "url": url}, {}
            private = payload.get("visibility") == "private" or bool(payload.get("private"))
            self.create_repo(repo_id, private)
        return 200, {"url": url, "name": repo_id}, {}

    def _validate_yaml(self, body: bytes, **_: Any) -> tuple[int, Any, dict[str, str]]:
        content = json.loads(body)["content"]
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            meta = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as exc:
            return 400, {"errors": [{"message": f"invalid YAML: {exc}"}], "warnings": []}, {}
        if not isinstance(meta, dict):
            return 400, {"errors": [{"message": "metadata must be a mapping"}], "warnings": []}, {}
        return 200, {"errors": [], "warnings": []}, {}

    def _info(self, repo: str, user: str | None, rev: str = "main", **_: Any) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            r = self._repo(repo, user)
            commit = self._resolve(r, rev)
            return 200, {"_id": hashlib.sha1(repo.encode()).hexdigest()[:24], "id": repo, "author": repo.split("/")[0],
                         "sha": commit.sha, "private": r.private, "disabled": False, "gated": False, "downloads": 0,
                         "likes": 0, "tags": [], "lastModified": DATE, "createdAt": DATE,
                         "siblings": [{"rfilename": p} for p in sorted(commit.files)]}, {}

    def _tree(self, repo: str, rev: str, user: str | None, query: dict[str, list[str]], sub: str = "",
              **_: Any) -> tuple[int, Any, dict[str, str]]:
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = unquote(sub).strip("/")
        prefix = prefix + "/" if prefix else ""
        with self.lock:
            commit = self._resolve(self._repo(repo, user), rev)
            entries: dict[str, dict[str, Any]] = {}
            for path, blob in sorted(commit.files.items()):
                if not path.startswith(prefix):
                    continue
                rest = path[len(prefix):].split("/")
                for depth in range(1, len(rest)):
                    folder = prefix + "/".join(rest[:depth])
                    if recursive or depth == 1:
                        entries.setdefault(folder, {"type": "directory", "path": folder, "size": 0,
                                                    "oid": hashlib.sha1(folder.encode()).hexdigest()})
                if recursive or len(rest) == 1:
                    entry: dict[str, Any] = {"type": "file", "path": path, "size": blob.size, "oid": blob.git_oid}
                    if blob.lfs_oid is not None:
                        entry["lfs"] = {"oid": blob.lfs_oid, "size": blob.size,
                                        "pointerSize": len(lfs_pointer(blob.lfs_oid, blob.size))}
                    entries[path] = entry
        return 200, list(entries.values()), {}

    def _refs(self, repo: str, user: str | None, **_: Any) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            r = self._repo(repo, user)
            tags = [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": sha} for t, sha in r.tags.items()]
            branches = [{"name": "main", "ref": "refs/heads/main", "targetCommit": r.main}]
            return 200, {"branches": branches, "converts": [], "tags": tags}, {}

    def _preupload(self, repo: str, rev: str, body: bytes, user: str, **_: Any) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            commit = self._resolve(self._repo(repo, user), rev)
            attributes = commit.files.get(".gitattributes")
            patterns = [line.split()[0] for line in (attributes.data or b"").decode().splitlines()
                        if "filter=lfs" in line] if attributes else []
            out = []
            for item in json.loads(body)["files"]:
                sample = base64.b64decode(item["sample"])
                lfs = (item["size"] > LFS_THRESHOLD or b"\x00" in sample
                       or any(fnmatch.fnmatch(item["path"].rsplit("/", 1)[-1], p) for p in patterns))
                existing = commit.files.get(item["path"])
                oid = None
                if existing is not None:
                    oid = existing.lfs_oid if existing.lfs_oid is not None else existing.git_oid
                out.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                            "oid": oid})
        return 200, {"files": out, "commitOid": commit.sha}, {}

    def _lfs_batch(self, repo: str, body: bytes, user: str, **_: Any) -> tuple[int, Any, dict[str, str]]:
        payload = json.loads(body)
        if payload.get("operation") != "upload":
            raise HttpError(400, "the test Hub only accepts uploads through the batch API")
        self._repo(repo, user)
        objects = []
        for obj in payload["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.url}/objects/{repo}/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{self.url}/objects-verify/{repo}", "header": {}},
                }
            objects.append(entry)
        return 200, {"transfer": "basic", "objects": objects}, {"Content-Type": "application/vnd.git-lfs+json"}

    def _lfs_put(self, repo: str, oid: str, body: bytes, **_: Any) -> tuple[int, Any, dict[str, str]]:
        self.put_started.set()
        if self.put_delay:
            time.sleep(self.put_delay)
        if hashlib.sha256(body).hexdigest() != oid:
            raise HttpError(400, "object content does not match its oid")
        with self.lock:
            self.objects[oid] = body
        return 200, b"", {}

    def _lfs_verify(self, body: bytes, **_: Any) -> tuple[int, Any, dict[str, str]]:
        obj = json.loads(body)
        if self.objects.get(obj["oid"]) is None or len(self.objects[obj["oid"]]) != obj["size"]:
            raise HttpError(404, "object not found")
        return 200, {}, {}

    def _commit(self, repo: str, rev: str, body: bytes, user: str, **_: Any) -> tuple[int, Any, dict[str, str]]:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HttpError(400, "the commit payload must start with a header line")
        header = lines[0]["value"]
        with self.lock:
            r = self._repo(repo, user)
            if self.before_commit is not None:
                hook, self.before_commit = self.before_commit, None
                hook(r)
            head = self._resolve(r, rev)
            parent = header.get("parentCommit")
            if parent is not None and parent != head.sha:
                raise HttpError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(head.files)
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                path = value["path"]
                if key == "file":
                    data = base64.b64decode(value["content"])
                    files[path] = Blob(data=data, size=len(data))
                elif key == "lfsFile":
                    if value["oid"] not in self.objects:
                        raise HttpError(422, f"Your push was rejected because an LFS pointer pointed to a file that "
                                             f"does not exist ({path})")
                    files[path] = Blob(lfs_oid=value["oid"], size=len(self.objects[value["oid"]]))
                elif key == "deletedFile":
                    if path not in files:
                        raise HttpError(404, "A file with this name doesn't exist", "EntryNotFound")
                    del files[path]
                elif key == "deletedFolder":
                    for existing in [p for p in files if p.startswith(path.rstrip("/") + "/")]:
                        del files[existing]
                else:
                    raise HttpError(400, f"unknown commit operation {key!r}")
            commit = self._new_commit(r, head.sha, header.get("summary", ""), files)
            if self.drop_commit_response:
                self.drop_commit_response = False
                raise DropConnection()
        return 200, {"success": True, "commitOid": commit.sha, "commitUrl": f"{self.url}/datasets/{repo}/commit/"
                     f"{commit.sha}", "hookOutput": ""}, {}

    def _tag(self, repo: str, rev: str, body: bytes, user: str, **_: Any) -> tuple[int, Any, dict[str, str]]:
        payload = json.loads(body)
        with self.lock:
            r = self._repo(repo, user)
            commit = self._resolve(r, rev)
            if payload["tag"] in r.tags:
                raise HttpError(409, f"Tag {payload['tag']} already exists")
            r.tags[payload["tag"]] = commit.sha
        return 200, {}, {}

    def _resolve_file(self, repo: str, rev: str, sub: str, user: str | None,
                      **_: Any) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            commit = self._resolve(self._repo(repo, user), rev)
            blob = commit.files.get(unquote(sub))
            if blob is None:
                raise HttpError(404, "Entry not found", "EntryNotFound")
            data = blob.data if blob.data is not None else self.objects[blob.lfs_oid]  # type: ignore[index]
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{blob.git_oid}"'}
        if blob.lfs_oid is not None:  # the Hub names LFS content by its sha256 (and redirects to the CDN)
            headers.update({"X-Linked-Etag": f'"{blob.lfs_oid}"', "X-Linked-Size": str(blob.size)})
        return 200, data, headers


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep the test output quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        body = self._body()
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        user = self.hub.tokens.get(token) if token else None
        try:
            if token is not None and user is None:
                raise HttpError(401, "Invalid credentials in Authorization header")
            status, payload, headers = self.hub.route(method, parts.path, parse_qs(parts.query), body, user)
        except DropConnection:
            self.hub.log.append((method, parts.path, 0))
            self.close_connection = True
            return
        except HttpError as exc:
            status, payload, headers = exc.status, {"error": exc.message}, ({"X-Error-Code": exc.code} if exc.code
                                                                              else {})
            headers["X-Error-Message"] = exc.message
        self.hub.log.append((method, parts.path, status))
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        content_type = "application/octet-stream" if isinstance(payload, bytes) else "application/json"
        self.send_header("Content-Type", headers.pop("Content-Type", content_type))
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")


def main() -> None:
    """`python tests/hubserver.py`: serve until interrupted (token hf_test_write_token), for trying ks-publish."""
    hub = FakeHub()
    print(f"test Hub at {hub.start()} (token hf_test_write_token); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub.stop()


if __name__ == "__main__":
    main()
