"""Tests of prompts: registry, files, templates, scenario tests, promotion, canary and statistics."""
