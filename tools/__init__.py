"""The project's own tools: the sync-code generator, the compatibility runner, and the servers that tests and benchmarks use."""
