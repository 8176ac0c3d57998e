"""The Hub, behind a narrow interface: what a repo holds, one commit with `parent_commit`, and tags.

Everything `ks-publish` needs from `huggingface_hub` goes through `HubClient`, so the rest of the code deals in plain
records (`RemoteState`, `Plan`) and in our own errors. The token is whatever `huggingface_hub` finds (`HF_TOKEN`,
else the stored login); it is never read, printed or logged here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import KsUserError
from .publish_stage import StagedFile, StagedRepo

# Folders ks-publish owns in a repo: a remote file there that the staged folder lacks is stale and deleted. Files
# elsewhere (.gitattributes, anything the owner added by hand) are left alone.
MANAGED_PREFIXES = ("data/", "lm_eval/")
MANAGED_FILES = ("README.md",)


class HubError(KsUserError):
    """The Hub refused or failed a request: one line for the user, exit code 1 (2 is for bad arguments)."""

    exit_code = 1


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    git_oid: str
    sha256: str | None  # the LFS object id, for files stored through LFS or Xet


@dataclass
class RemoteState:
    exists: bool
    head: str | None = None
    files: dict[str, RemoteFile] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # tag name -> commit id
    reachable: bool = True
    note: str = ""  # why the state is a guess (unreachable Hub, offline mode)


@dataclass
class Plan:
    added: list[StagedFile]
    changed: list[StagedFile]
    unchanged: list[StagedFile]
    deleted: list[str]
    parent: str | None

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.deleted)

    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.changed)} changed, {len(self.deleted)} deleted, "
                f"{len(self.unchanged)} unchanged")


def _managed(path: str) -> bool:
    return path in MANAGED_FILES or path.startswith(MANAGED_PREFIXES)


def same_content(local: StagedFile, remote: RemoteFile) -> bool:
    """An LFS/Xet file is named by the sha256 of its content, a regular one by its git blob id."""
    if remote.sha256 is not None:
        return remote.sha256 == local.sha256 and remote.size == local.size
    return remote.git_oid == local.git_oid


def make_plan(staged: StagedRepo, remote: RemoteState) -> Plan:
    plan = Plan([], [], [], [], remote.head)
    for local in staged.files:
        theirs = remote.files.get(local.path)
        if theirs is None:
            plan.added.append(local)
        elif same_content(local, theirs):
            plan.unchanged.append(local)
        else:
            plan.changed.append(local)
    ours = {f.path for f in staged.files}
    plan.deleted = sorted(path for path in remote.files if _managed(path) and path not in ours)
    return plan


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


class HubClient:
    """The few Hub calls ks-publish makes, through the real `huggingface_hub` client."""

    def __init__(self, endpoint: str | None = None) -> None:
        from huggingface_hub import HfApi

        self.api = HfApi(endpoint=endpoint)
        self.endpoint = self.api.endpoint

    # Errors are translated in one place, so that every failure reaches the user as one line without the token.
    def _fail(self, exc: BaseException, doing: str) -> HubError:
        from huggingface_hub.errors import LocalTokenNotFoundError, OfflineModeIsEnabled, RepositoryNotFoundError

        status = _status(exc)
        if isinstance(exc, LocalTokenNotFoundError):
            return HubError(f"{doing}: no Hub token; set HF_TOKEN or run `hf auth login`")
        if isinstance(exc, OfflineModeIsEnabled):
            return HubError(f"{doing}: HF_HUB_OFFLINE is set; unset it to publish (or use --dry-run)")
        if status == 401:
            return HubError(f"{doing}: the Hub at {self.endpoint} refused the token (401 Unauthorized); check HF_TOKEN "
                            "or run `hf auth login`")
        if status == 403:
            return HubError(f"{doing}: the token may not write there (403 Forbidden); it needs write access to the "
                            "repo's namespace")
        if isinstance(exc, RepositoryNotFoundError) or status == 404:
            return HubError(f"{doing}: repository not found at {self.endpoint} (404)")
        if status is not None:
            return HubError(f"{doing}: the Hub answered {status}: {_first_line(exc)}")
        if _is_transport_error(exc):
            return HubError(f"{doing}: cannot reach {self.endpoint}: {type(exc).__name__}: {_first_line(exc)}")
        return HubError(f"{doing}: {type(exc).__name__}: {_first_line(exc)}")

    def whoami(self) -> str:
        try:
            return str(self.api.whoami(cache=True).get("name", "?"))
        except Exception as exc:  # noqa: BLE001 - translated into one line for the user
            raise self._fail(exc, "checking the token") from None

    def remote_state(self, repo_id: str) -> RemoteState:
        """The head of `main`, its files and the repo's tags (`exists=False` when there is no such repo)."""
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
        from huggingface_hub.hf_api import RepoFile

        try:
            info = self.api.repo_info(repo_id, repo_type="dataset", revision="main")
        except (RepositoryNotFoundError, RevisionNotFoundError):
            return RemoteState(exists=False)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"reading {repo_id}") from None
        try:
            head = info.sha
            files = {}
            # Listed at the commit, not at `main`, so that files and head agree even if someone pushes meanwhile.
            for entry in self.api.list_repo_tree(repo_id, repo_type="dataset", revision=head, recursive=True):
                if isinstance(entry, RepoFile):
                    files[entry.path] = RemoteFile(entry.path, entry.size, entry.blob_id,
                                                   entry.lfs.sha256 if entry.lfs else None)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"reading {repo_id}") from None
        return RemoteState(True, head, files, self.tags(repo_id))

    def tags(self, repo_id: str) -> dict[str, str]:
        """Tag name → commit id."""
        try:
            return {tag.name: tag.target_commit for tag in self.api.list_repo_refs(repo_id, repo_type="dataset").tags}
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"reading the tags of {repo_id}") from None

    def create_repo(self, repo_id: str, *, private: bool) -> None:
        try:
            self.api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"creating {repo_id}") from None

    def commit(self, repo_id: str, plan: Plan, message: str, description: str) -> str:
        """One commit: the plan's new and changed files, its deletions, on top of `plan.parent` (the Hub answers 412
        if `main` moved since). Returns the new commit id. Raises `StaleParent` on 412, `CommitOutcomeUnknown` when
        the connection failed after the request may have reached the Hub."""
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        operations: list = [CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=str(f.local))
                            for f in (*plan.added, *plan.changed)]
        operations += [CommitOperationDelete(path_in_repo=path) for path in plan.deleted]
        try:
            info = self.api.create_commit(repo_id, operations, commit_message=message,
                                          commit_description=description, repo_type="dataset",
                                          parent_commit=plan.parent)
        except Exception as exc:  # noqa: BLE001
            if _status(exc) == 412:
                raise StaleParent(f"{repo_id}: main moved past {plan.parent}") from None
            if _status(exc) is None and _is_transport_error(exc):
                raise CommitOutcomeUnknown(f"committing to {repo_id}: {type(exc).__name__}") from None
            raise self._fail(exc, f"committing to {repo_id}") from None
        return str(info.oid)

    def tag(self, repo_id: str, tag: str, commit: str) -> None:
        try:
            self.api.create_tag(repo_id, tag=tag, revision=commit, repo_type="dataset",
                                tag_message=f"KnowledgeSmith {tag}")
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, f"tagging {repo_id} {tag}") from None


class StaleParent(Exception):
    """The repo moved between planning and committing (HTTP 412): plan again from the new head."""


class CommitOutcomeUnknown(Exception):
    """The commit request may or may not have landed (a timeout or dropped connection)."""


def _is_transport_error(exc: BaseException) -> bool:
    """A connection-level failure of the client's HTTP library (httpx, or requests in older clients), by name so as
    not to import either."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "TimeoutException", "ConnectionError", "Timeout", "ReadTimeout"})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__

