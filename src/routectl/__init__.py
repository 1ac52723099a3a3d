"""routectl: routing as code for LLM gateways."""

__version__ = "0.1.0"
