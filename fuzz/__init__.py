"""Fuzzing for aiofasthttp's response parsers (see fuzz/README.md).

``python -m fuzz --seconds N [--target coverage|differential] [--seed S]``

- :mod:`fuzz.differential`: the compiled parser against its pure-Python twin,
  on mutated seeds at random splits; any difference is a finding.
- :mod:`fuzz.coverage_target`: a coverage-guided (atheris/libFuzzer) target for
  the compiled parser, built with sanitizer coverage and ASan when it can be.

Findings go to ``fuzz/findings/``, one JSON file (differential) or libFuzzer
artifact (coverage) each; every one found becomes a case in
``tests/test_parser_fuzz_regressions.py``.
"""
