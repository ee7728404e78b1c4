"""Tests against real servers, by feature."""
