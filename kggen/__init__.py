"""KG generation through an LLM (`ks-kg generate`) and the reusable OpenAI-compatible endpoint client."""

from .endpoint import Answer, BudgetExceeded, ChatEndpoint, EndpointError, EndpointStats
from .generate import GeneratedKG, GenerationConfig, generate_kg, report_path, write_outputs

__all__ = [
    "Answer", "BudgetExceeded", "ChatEndpoint", "EndpointError", "EndpointStats", "GeneratedKG", "GenerationConfig",
    "generate_kg", "report_path", "write_outputs",
]
