"""qwen-dev: a terminal coding assistant for Qwen models and any OpenAI-compatible endpoint."""

__version__ = "0.1.0"
