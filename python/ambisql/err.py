"""PEP 249 exceptions, chosen for server errors as PyMySQL chooses them, so that error
filters written for it (SQLAlchemy's, oslo.db's) work unchanged: args == (errno, message)."""


class MySQLError(Exception):
    """Base of everything ambisql raises."""


class Warning(Warning, MySQLError):  # noqa: A001 - the PEP 249 name
    pass


class Error(MySQLError):
    pass


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


# Server error numbers and their classes (the rest: InternalError below 1000,
# OperationalError from 1000 on).
_by_class = {
    ProgrammingError: (1007, 1149, 1064, 1146, 1102, 1103, 1110, 1111, 1112, 1113, 1179, 1166),
    DataError: (1265, 1263, 1264, 1230, 1171, 1406, 1441, 1366, 1367),
    IntegrityError: (1062, 1216, 1452, 1217, 1451, 1215, 1048),
    NotSupportedError: (1196, 1235, 1289, 1286),
    OperationalError: (1044, 1045, 1040, 1142, 1143, 4025, 1213),
}
error_map = {code: cls for cls, codes in _by_class.items() for code in codes}

_client_kinds = {
    "operational": OperationalError,
    "programming": ProgrammingError,
    "interface": InterfaceError,
    "data": DataError,
    "integrity": IntegrityError,
    "internal": InternalError,
    "notsupported": NotSupportedError,
}


def _class_for(errno):
    cls = error_map.get(errno)
    if cls is None:
        cls = InternalError if errno < 1000 else OperationalError
    return cls


def _from_driver(errno, message, kind, sent=None):
    """Called by the C++ module for every failure; `sent`: the connection's record of what
    had been sent (statements, in_transaction, commit, galera), for ambisql.classify()."""
    cls = _class_for(errno) if kind == "server" else _client_kinds.get(kind, OperationalError)
    e = cls(errno, message)
    if sent is not None:
        e._ambisql_sent = sent
    return e


class ErrorClasses:
    """The exception classes as attributes of a connection (MySQLdb's spellings)."""

    Warning = Warning
    Error = Error
    InterfaceError = InterfaceError
    DatabaseError = DatabaseError
    DataError = DataError
    OperationalError = OperationalError
    IntegrityError = IntegrityError
    InternalError = InternalError
    ProgrammingError = ProgrammingError
    NotSupportedError = NotSupportedError
