"""The erasers shipped with erasebench, one plugin per file."""
