"""Differential compatibility suite: the same scenarios under the real exman 0.1.9 and under ours."""
