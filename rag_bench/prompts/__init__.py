"""Prompt templates shipped with rag-bench (package data)."""
