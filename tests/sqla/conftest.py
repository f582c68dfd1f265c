"""SQLAlchemy's own dialect compliance suite (sqlalchemy.testing.suite, from Debian's
python3-sqlalchemy), run against a URL given with --dburi: scripts/test runs it for
mysql+ambisql, mysql+ambisql_async and, for comparison, mysql+pymysql."""
import pytest

pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402,F401,F403 (the suite's plugin)

import ambisql.provision  # noqa: E402,F401 (what load_provisioning() finds for the ambisql dialects)
