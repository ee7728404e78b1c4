"""Whole-system tests: many processes at once."""
