"""Protocol constants, importable as MySQLdb's and PyMySQL's are."""
from . import CLIENT, FIELD_TYPE, FLAG, SERVER_STATUS  # noqa: F401
