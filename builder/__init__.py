"""KnowledgeSmith builder: knowledge graphs in, hierarchy-tagged tables (and later probes and MCQ) out."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("knowledgesmith")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

from .build import BuildConfig, ingest, run_build  # noqa: E402
from .errors import KsUserError  # noqa: E402
from .formats import KgFormat, detect_format  # noqa: E402
from .graph import NODES_SCHEMA, RELATIONS_SCHEMA, TRIPLES_SCHEMA, KnowledgeGraph  # noqa: E402

__all__ = [
    "BuildConfig", "KgFormat", "KnowledgeGraph", "KsUserError", "NODES_SCHEMA", "RELATIONS_SCHEMA", "TRIPLES_SCHEMA",
    "__version__", "detect_format", "ingest", "run_build",
]
