"""The scenario (python/examples/orm_scenario.py): one synchronous ORM data-access layer with
lazy loading serves 200 concurrent requests, each SLEEP(0.05) then a lazy load, from asyncio
(AsyncSession.run_sync, ambisql.aio.run_sync with the plain sync engine), eventlet and
gevent. Serialized that is more than 10 s; each model must finish in under 3 s."""
import os
import subprocess
import sys

import pytest

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "python", "examples", "orm_scenario.py")


@pytest.fixture(scope="module", autouse=True)
def data():
    sys.path.insert(0, os.path.dirname(EXAMPLE))
    import orm_scenario

    orm_scenario.setup(os.environ["AMBISQL_TEST_SOCKET"])
    sys.path.pop(0)


@pytest.mark.parametrize("mode", ["a", "a2", "b", "c"])
def test_two_hundred_requests_run_concurrently(mode):
    out = subprocess.run([sys.executable, EXAMPLE, "--socket", os.environ["AMBISQL_TEST_SOCKET"], "--requests", "200",
                          "--mode", mode], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    took = float(out.stdout.strip().splitlines()[-1])
    assert took < 3.0
