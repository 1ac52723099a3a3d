"""Tests of the pull-request review tools (issue 5)."""
