"""Tests that need one server: the session's shared server."""
