"""The SQLAlchemy versions users run, from ../shared/vendor (tarballs of their lib/, with
typing_extensions), unpacked once under the build folder and used by PYTHONPATH, never
installed. Used by test_sqlalchemy_versions.py and tests/sqla/run:
    python3 vendor.py VERSION   prints the PYTHONPATH entries; exit status 2 when
                                ../shared/vendor is absent (a user's clone)."""
import os
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENDOR = os.path.join(os.path.dirname(ROOT), "shared", "vendor")
BUILD = os.environ.get("AMBISQL_BUILD", os.path.join(ROOT, "build"))
VERSIONS = ("2.0.52", "2.1.0b3")


def pythonpath(version):
    """PYTHONPATH entries for SQLAlchemy `version`, or None where ../shared/vendor is absent."""
    if not os.path.isdir(VENDOR):
        return None
    dest = os.path.join(BUILD, "vendor")
    os.makedirs(dest, exist_ok=True)
    entries = []
    for name, inner in (("sqlalchemy-" + version, "lib"), ("typing_extensions-4.15.0", "src")):
        path = os.path.join(dest, name)
        if not os.path.isdir(path):
            with tarfile.open(os.path.join(VENDOR, name + ".tar.gz")) as t:
                t.extractall(dest + ".partial")
            os.replace(os.path.join(dest + ".partial", name), path)  # (whole, or not there)
        entries.append(os.path.join(path, inner))
    return os.pathsep.join(entries)


if __name__ == "__main__":
    p = pythonpath(sys.argv[1])
    if p is None:
        sys.exit(2)
    print(p)
