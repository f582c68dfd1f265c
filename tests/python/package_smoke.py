"""Run by scripts/python-package with the virtual environment's python, outside the source
tree: the installed wheel works as users get it (the test server from scripts/server env)."""
import importlib.metadata
import os
import sys

venv = os.path.realpath(sys.argv[1])
checks = []


def check(what, ok):
    checks.append((what, bool(ok)))
    print(("ok    " if ok else "FAIL  ") + what)


import ambisql  # noqa: E402

here = os.path.dirname(os.path.realpath(ambisql.__file__))
check("ambisql is the venv's (%s)" % here, here.startswith(venv))
check("py.typed and the compiled module's stubs are installed",
      os.path.isfile(os.path.join(here, "py.typed")) and os.path.isfile(os.path.join(here, "_ambisql.pyi")))
url = "mysql://ambisql:%s@127.0.0.1:%s/ambisql_test" % (os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw"),
                                                          os.environ["AMBISQL_TEST_PORT"])
conn = ambisql.connect(url=url)
cur = conn.cursor()
cur.execute("SELECT %s + 1", (41,))
check("a query", cur.fetchone() == (42,))
conn.close()
check("ambisql.green and ambisql.aio after a plain import", callable(ambisql.green.patch_gevent) and
      callable(ambisql.aio.connect))
eps = {ep.name: ep.value for ep in importlib.metadata.distribution("ambisql").entry_points
       if ep.group == "sqlalchemy.dialects"}
check("the SQLAlchemy entry points (%s)" % ", ".join(sorted(eps)),
      set(eps) == {"mysql.ambisql", "mysql.ambisql_async", "mariadb.ambisql", "mariadb.ambisql_async"})
import sqlalchemy  # noqa: E402

engine = sqlalchemy.create_engine("mysql+ambisql://" + url.split("://", 1)[1])
with engine.connect() as c:
    check("create_engine('mysql+ambisql://...') through the entry point",
          c.execute(sqlalchemy.text("SELECT 7")).scalar() == 7 and
          os.path.realpath(sys.modules[type(engine.dialect).__module__].__file__).startswith(venv))
engine.dispose()
failed = sum(1 for _, ok in checks if not ok)
print("package smoke: %d passed, %d failed" % (len(checks) - failed, failed))
sys.exit(1 if failed else 0)
