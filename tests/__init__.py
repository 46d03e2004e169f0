"""The test suite.

Bytecode is cached for the suite and every process it starts (the gateway, the benchmarks' servers,
xdist's workers), whatever ``PYTHONDONTWRITEBYTECODE`` the shell set: without a cache each of them
compiles its modules again, and pytest rewrites the asserts of every test module again in every worker
(~10 s of CPU a worker, a third of the collection). This package is imported with the first conftest,
before xdist starts its workers, so they inherit the setting. It changes nothing a test observes.
"""

import os
import sys

os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
