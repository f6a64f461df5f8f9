"""The GPU check is a script run by hand (tests/gpu/check_gpu.py), never a CI test."""

collect_ignore_glob = ["*.py"]
