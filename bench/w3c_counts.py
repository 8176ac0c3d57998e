"""Print, per W3C syntax suite, how many valid files ks-build accepts and how many invalid ones it rejects.

    python bench/w3c_counts.py [KG_SOURCES_CACHE]

The suites come from the rdflib 7.6.0 sdist, fetched by ../shared/kg-sources/fetch.sh into KG_SOURCES_CACHE (default:
$KS_KG_SOURCES, else ~/.cache/knowledgesmith/kg-sources, as in the tests). Positive files (PositiveSyntax and Eval
tests) are checked at the parse stage; negative ones (NegativeSyntax) through the real CLI, which must exit with 2.
For comparison it also counts what rdflib alone (Graph().parse, Dataset().parse for N-Quads and TriG) does.
Exits 1 if the builder gets any case wrong. The case list and the checks are those of tests/test_w3c_syntax.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from w3c_suites import format_tally, suites_root, tally  # noqa: E402 - needs the sys.path entry above


def main(argv: list[str]) -> int:
    default = Path(os.environ.get("KS_KG_SOURCES", Path.home() / ".cache" / "knowledgesmith" / "kg-sources"))
    cache = Path(argv[0]) if argv else default
    subprocess.run(["bash", str(REPO.parent / "shared" / "kg-sources" / "fetch.sh"), str(cache), "rdflib"],
                   check=True, stdout=subprocess.DEVNULL)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        tallies = tally(suites_root(cache), Path(scratch))
    print(format_tally(tallies))
    print(f"({time.perf_counter() - started:.1f} s)")
    return 1 if any(t.wrong for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
