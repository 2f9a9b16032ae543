"""aiofasthttp's benchmark suite (see README.md in this directory)."""
