"""Transparency harness: other projects' own test suites, run plainly and instrumented, must agree."""
