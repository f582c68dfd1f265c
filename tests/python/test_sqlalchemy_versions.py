"""The dialects on the SQLAlchemy versions users run: Debian's 1.4, and 2.0.52 and 2.1.0b3
from ../shared/vendor (vendor.py: unpacked under the build folder, used by PYTHONPATH,
installed nowhere), each in a process of its own (sqla_worker.py), any SQLAlchemy warning
an error."""
import json
import os
import subprocess
import sys

import pytest

import vendor

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("version", ["1.4", "2.0.52", "2.1.0b3"])
def test_the_dialects_sync_and_async_on_each_version(version):
    # 2.0 warned on every create_engine (dbapi() renamed import_dbapi()), its async engine
    # failed on the first execute (no _async_soft_close on the cursor), and 2.1 could not
    # import the dialect (it imported the private sqlalchemy.util._concurrency_py3k).
    env = dict(os.environ, DISABLE_SQLALCHEMY_CEXT_RUNTIME="1")
    if version != "1.4":
        path = vendor.pythonpath(version)
        if path is None:
            pytest.skip("../shared/vendor is absent: SQLAlchemy %s is not tested (Debian's 1.4 is)" % version)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, os.environ.get("PYTHONPATH")]))
    p = subprocess.run([sys.executable, os.path.join(HERE, "sqla_worker.py")], capture_output=True, text=True,
                       timeout=180, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["version"].startswith(version), r
    notes = ["Notes 0", "Notes 1", "Notes 2"]
    assert r["sync_select"] == 1 and r["sync_lazy"] == notes and r["sync_stream"] == 500500, r
    assert (r["async_execute"], r["async_scalar"], r["async_stream"], r["async_run_sync"]) == (2, 3, 500500, 4), r
    assert r["async_get"] == "Ada" and r["async_scalars"] == notes and r["async_run_sync_lazy"] == notes, r
    assert r["async_session_stream"] == notes, r
    if version != "1.4":
        assert r["async_awaitable_attrs"] == notes, r
        assert r["sync_returning"] and r["orm_bulk_ids"], r
    assert r["isolation"] == {
        "READ COMMITTED": ["READ-COMMITTED", 0], "SERIALIZABLE": ["SERIALIZABLE", 0],
        "AUTOCOMMIT": ["REPEATABLE-READ", 1]}, r
    assert r["pre_ping"] and r["async_autocommit"] == 1 and r["terminated"], r
    # 50 tasks of SLEEP(0.05) on 5 connections: 0.5 s at the least; serialized 2.5 s
    assert r["async_50"][0] and r["async_50"][1] < 2.0, r
    assert r["async_cancel"] == "cancelled" and r["async_cancel_running"] == 0, r
    assert r["async_after_cancel"] == 5, r
    assert r["async_killed_invalidated"] == [True] and r["async_after_kill"] == 7, r
