"""Suite YAML files (one per suite) and concept definitions (``concepts/*.yaml``), read by ``benchmark.suites``."""
