"""Reliability and security suite (issue 6): faults tried on real processes and files."""
