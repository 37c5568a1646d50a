"""The files of cases/ are user code for mypy to check (tests/typing/test_cases.py), never
run: some lines are mistakes on purpose."""

collect_ignore = ["cases"]
