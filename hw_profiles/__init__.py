"""Hardware profiles (data), their loader and a local profiler."""
