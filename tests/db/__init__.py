"""Tests of the generated PostgreSQL seed and migrations (issue 4)."""
