"""Prompt templates, one Markdown file per agent role, loaded by name."""
