"""Judging evidence: pure functions from what a run recorded to what it means."""
