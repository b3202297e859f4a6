"""Checks: the same tests run against the learner's katas (default) or the reference."""
