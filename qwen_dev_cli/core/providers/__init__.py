"""Providers: the OpenAI-compatible HTTP one and the in-process llama.cpp one."""
