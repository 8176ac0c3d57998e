"""`ks-publish`: a verified build folder → a Hugging Face Hub dataset repo (staged locally, then one commit).

Staging (`publish_stage`) lays out the repo in a folder; the upload (`hub`) compares it with the repo's head, sends one
commit with `parent_commit` that adds what is new and deletes what is stale — or no commit when nothing changed —
and tags the builder version. User mistakes print one line and exit 2, Hub failures one line and exit 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import KsUserError
from .hub import CommitOutcomeUnknown, HubClient, HubError, Plan, RemoteState, StaleParent, make_plan
from .publish_stage import StagedRepo, check_repo_id, load_build, stage

MAX_ATTEMPTS = 5  # plans per publish: each retry follows a 412, i.e. someone else committed in between


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ks-publish",
        usage="ks-publish DIR --repo-id ORG/NAME [--stage FOLDER] [--dry-run] [--private] [--tag TAG | --no-tag]\n"
              "       ks-publish --domain NAME --repo-id ORG/NAME [options]",
        description="Publish a ks-build output folder as a Hugging Face Hub dataset repo: a dataset card (README.md\n"
                    "with configs mcq — the default, one split per level —, requests, triples, nodes, relations),\n"
                    "Parquet shards under data/, and lm-evaluation-harness task YAMLs under lm_eval/.\n\n"
                    "The repo is staged in a local folder first; the upload is one commit that adds new files and\n"
                    "deletes stale ones, and no commit at all when nothing changed. The token comes from HF_TOKEN\n"
                    "or `hf auth login` and is never printed.",
        epilog="Examples: ks-publish build/hist --repo-id knowledgesmith/hist --dry-run\n"
               "          ks-publish --domain hist --repo-id knowledgesmith/hist --stage stage/hist",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", nargs="?", type=Path, metavar="DIR",
                        help="a folder written by ks-build (default with --domain: build/NAME)")
    parser.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="the Hub dataset repo, e.g. "
                        "knowledgesmith/hist")
    parser.add_argument("--domain", metavar="NAME",
                        help="a shipped domain (bio, econ, hist, phys): publish build/NAME, building it first with "
                             "`ks-build --domain NAME` when it does not exist")
    parser.add_argument("--stage", type=Path, metavar="FOLDER",
                        help="where to lay out the repo (replaced atomically; must be new, empty or an earlier "
                             "stage). Default: a temporary folder, whose path is printed")
    parser.add_argument("--dry-run", action="store_true",
                        help="stage and print the plan (files added, changed, deleted, unchanged against the repo's "
                             "head, read when the Hub can be reached); send nothing")
    parser.add_argument("--private", action="store_true", help="create the repo as private (an existing repo "
                        "keeps its visibility)")
    tag = parser.add_mutually_exclusive_group()
    tag.add_argument("--tag", metavar="TAG", help=f"the tag to put on the published commit (default: v<builder "
                     f"version of the build>, e.g. v{__version__})")
    tag.add_argument("--no-tag", action="store_true", help="do not tag the commit")
    parser.add_argument("--endpoint", metavar="URL",
                        help="another Hub deployment (default: HF_ENDPOINT, else https://huggingface.co)")
    parser.add_argument("--license", dest="license_id", metavar="ID",
                        help="the Hub licence id for the card (default: the shipped domain's, else unknown)")
    parser.add_argument("--message", metavar="TEXT", help="the commit message (default: names the domain and "
                        "builder version)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--version", action="version", version=f"ks-publish {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return _run(args)
    except KsUserError as exc:
        print(f"ks-publish: error: {exc.format()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ks-publish: interrupted; the repo is at its previous commit unless the commit had been sent",
              file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    repo_id = check_repo_id(args.repo_id)
    folder = _build_folder(args)
    build = load_build(folder)
    stage_dir = _stage_dir(args.stage)
    client = HubClient(args.endpoint)
    if args.quiet:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    staged = stage(build, repo_id, stage_dir, license_id=args.license_id, endpoint=client.endpoint,
                   progress=not args.quiet)
    size = sum(f.size for f in staged.files)
    print(f"staged {len(staged.files)} files ({size / 1e6:.1f} MB) in {stage_dir}", file=sys.stderr)
    tag = None if args.no_tag else (args.tag or f"v{staged.builder_version}")

    if args.dry_run:
        try:
            remote = client.remote_state(repo_id)
        except HubError as exc:  # a dry run still plans offline: against an empty repo, and says so
            remote = RemoteState(exists=False, reachable=False, note=str(exc))
        plan = make_plan(staged, remote)
        _print_plan(plan, remote, repo_id, client.endpoint, verbose=True)
        if tag and remote.exists:
            print(f"tag {tag}: " + ("exists" if tag in remote.tags else "would be created"))
        print("dry run: nothing sent")
        return 0

    user = client.whoami()  # fails fast, before any upload, on a missing or refused token
    print(f"publishing to {client.endpoint}/datasets/{repo_id} as {user}", file=sys.stderr)
    client.create_repo(repo_id, private=args.private)
    head = _publish(client, staged, repo_id, message=args.message or _message(build.domain, staged))
    if tag:
        _tag(client, repo_id, tag, head)
    print(f"{client.endpoint}/datasets/{repo_id} at {head}")
    return 0


def _publish(client: HubClient, staged: StagedRepo, repo_id: str, *, message: str) -> str:
    """Plan against the head, commit with it as parent; plan again when the head moved (412). Returns the head."""
    for _ in range(MAX_ATTEMPTS):
        remote = client.remote_state(repo_id)
        plan = make_plan(staged, remote)
        _print_plan(plan, remote, repo_id, client.endpoint, verbose=False)
        if plan.empty:
            print("nothing changed: no commit", file=sys.stderr)
            assert remote.head is not None
            return remote.head
        try:
            head = client.commit(repo_id, plan, message, _description(plan))
        except StaleParent:
            print("the repo moved while uploading (412): planning again from its new head", file=sys.stderr)
            continue
        except CommitOutcomeUnknown as exc:
            # Never resent blindly: the commit may have landed. The Hub's state says whether it did.
            after = client.remote_state(repo_id)
            if after.head != remote.head and make_plan(staged, after).empty:
                print(f"{exc}; the commit did land", file=sys.stderr)
                return str(after.head)
            raise HubError(f"{exc}; the Hub does not show the commit. Run ks-publish again: it plans from the "
                           "Hub's state and sends only what is missing") from None
        print(f"committed {head}", file=sys.stderr)
        return head
    raise HubError(f"{repo_id} kept moving during {MAX_ATTEMPTS} attempts (HTTP 412 each time); try again later")


def _tag(client: HubClient, repo_id: str, tag: str, head: str) -> None:
    tags = client.tags(repo_id)
    if tag not in tags:
        client.tag(repo_id, tag, head)
        print(f"tagged {tag}", file=sys.stderr)
    elif tags[tag] != head:
        # A published tag is a citation target; moving it would silently change what it names.
        print(f"warning: tag {tag} already names commit {tags[tag]}; left as it is (pass --tag NAME to tag this "
              "commit)", file=sys.stderr)


def _print_plan(plan: Plan, remote: RemoteState, repo_id: str, endpoint: str, *, verbose: bool) -> None:
    stream = sys.stdout if verbose else sys.stderr
    if not remote.reachable:
        print(f"could not read {repo_id} ({remote.note}); planning against an empty repo", file=stream)
    elif not remote.exists:
        print(f"{endpoint}/datasets/{repo_id} does not exist yet: it will be created", file=stream)
    else:
        print(f"{repo_id} at {remote.head}: {plan.summary()}", file=stream)
    if verbose:
        for mark, files in (("+", plan.added), ("~", plan.changed), ("=", plan.unchanged)):
            for f in files:
                print(f"  {mark} {f.path} ({f.size} bytes)", file=stream)
        for path in plan.deleted:
            print(f"  - {path}", file=stream)
        print(f"plan: {plan.summary()}", file=stream)


def _message(domain: str, staged: StagedRepo) -> str:
    return f"Publish the {domain} benchmark (KnowledgeSmith {staged.builder_version})"


def _description(plan: Plan) -> str:
    lines = [f"ks-publish {__version__}: {plan.summary()}."]
    lines += [f"+ {f.path}" for f in plan.added] + [f"~ {f.path}" for f in plan.changed]
    lines += [f"- {path}" for path in plan.deleted]
    return "\n".join(lines)


def _build_folder(args: argparse.Namespace) -> Path:
    if args.folder is not None:
        if args.domain:
            raise KsUserError("give the build folder DIR or --domain NAME, not both")
        return args.folder
    if not args.domain:
        raise KsUserError("give the build folder DIR, or --domain NAME to publish a shipped domain")
    folder = Path("build") / args.domain
    if not (folder / "manifest.json").is_file():
        from .cli import main as ks_build

        print(f"{folder} does not exist: building it (ks-build --domain {args.domain} --out {folder})",
              file=sys.stderr)
        code = ks_build(["--domain", args.domain, "--out", str(folder), *(["--quiet"] if args.quiet else [])])
        if code != 0:
            raise KsUserError(f"ks-build --domain {args.domain} failed (exit {code})")
    return folder


def _stage_dir(stage_arg: Path | None) -> Path:
    if stage_arg is None:
        return Path(tempfile.mkdtemp(prefix="ks-publish-")) / "repo"
    if stage_arg.exists():
        if not stage_arg.is_dir():
            raise KsUserError("--stage must be a folder", path=str(stage_arg))
        entries = {p.name for p in stage_arg.iterdir()}
        # The stage is replaced as a whole: refuse to do that to a folder that is not an earlier stage.
        if entries and not (entries <= {"README.md", "data", "lm_eval", ".gitattributes"} and "README.md" in entries):
            raise KsUserError("--stage folder exists and is not an earlier ks-publish stage; give a new or empty "
                              "folder", path=str(stage_arg))
    return stage_arg


if __name__ == "__main__":
    sys.exit(main())
