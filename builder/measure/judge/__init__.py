"""Judging figures: pure decisions on what was taken."""
