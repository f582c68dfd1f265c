"""Every Python block of the README is a complete program: each is run as written against
the test server (DATABASE_URL), so the README cannot drift from what works. A block whose
first line is `# SQLAlchemy 2.x` runs on the vendored SQLAlchemy 2.0.52 (skipped where
../shared/vendor is absent)."""
import os
import re
import subprocess
import sys

import pytest

import vendor

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")
with open(README, encoding="utf-8") as f:
    BLOCKS = re.findall(r"^```python\n(.*?)^```$", f.read(), flags=re.S | re.M)

# What each block prints when it works (a substring of its output per block, in order).
EXPECTED = [
    ["(1, 'Ada')", "(2, 'Grace')", "500000500000", "('Edsger',)"],
    ["True in"],
    ["(42,)"],
    ["(42,)", "5000050000"],
    ["((42,),)", "30 sleeps at once", "84", "cancelled", "('direct',)"],
    ["(42,)", "cancelled: True", "('still usable',)", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9] in "],
    ["['Notes']\n['Notes']"],
    ["['Notes']\n['Notes']\nNotes"],
]


def test_every_python_block_is_known_here():
    assert len(BLOCKS) == len(EXPECTED), "a README block was added or removed: say here what it prints"


@pytest.mark.parametrize("index", range(len(EXPECTED)))
def test_a_readme_python_block_runs_as_written(index):
    url = "mysql://ambisql:%s@127.0.0.1:%s/ambisql_test" % (
        os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw"), os.environ["AMBISQL_TEST_PORT"])
    env = dict(os.environ, DATABASE_URL=url)
    if BLOCKS[index].startswith("# SQLAlchemy 2.x"):
        path = vendor.pythonpath("2.0.52")
        if path is None:
            pytest.skip("../shared/vendor is absent: the SQLAlchemy 2.x block is not run")
        env.update(PYTHONPATH=os.pathsep.join(filter(None, [path, os.environ.get("PYTHONPATH")])),
                   DISABLE_SQLALCHEMY_CEXT_RUNTIME="1")
    p = subprocess.run([sys.executable, "-c", BLOCKS[index]], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, BLOCKS[index] + "\n" + p.stderr[-3000:]
    for want in EXPECTED[index]:
        assert want in p.stdout, (want, p.stdout)
