"""SQLAlchemy's dialect compliance suite, as shipped in Debian's python3-sqlalchemy."""
from sqlalchemy.testing.suite import *  # noqa: F401,F403
from sqlalchemy.testing.suite import ServerSideCursorsTest as _ServerSideCursorsTest


class ServerSideCursorsTest(_ServerSideCursorsTest):
    # The suite recognizes server-side cursors only of the drivers it names ("a huge issue
    # as it prevents these tests from being usable by third party dialects", it says).
    def _is_server_side(self, cursor):
        if self.engine.dialect.driver in ("ambisql", "ambisql_async"):
            from ambisql.cursors import SSCursor

            return isinstance(cursor, SSCursor)
        return super()._is_server_side(cursor)
