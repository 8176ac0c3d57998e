"""KnowledgeSmith evaluation harness: scoring, interventions, metrics and reports (see README)."""
