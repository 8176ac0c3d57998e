"""Package data: see README.md in this folder."""
