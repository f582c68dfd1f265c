"""Builds ambisql for Python against the installed C++ library (AMBISQL_PREFIX: where
`cmake --install` put it; scripts/python-install does both). Offline, no build isolation:
pip install --no-build-isolation ./python"""
import os
import shlex
import subprocess

from setuptools import Extension, setup

prefix = os.environ.get("AMBISQL_PREFIX")
if not prefix:
    raise SystemExit("set AMBISQL_PREFIX to an installed ambisql (scripts/python-install does)")


def pkg_config(*args):
    env = dict(os.environ)
    libdir = os.path.join(prefix, "lib")
    env["PKG_CONFIG_PATH"] = os.path.join(libdir, "pkgconfig")
    return shlex.split(subprocess.check_output(["pkg-config", *args, "ambisql"], env=env, text=True))


import pybind11  # Debian's python3-pybind11

cflags = pkg_config("--cflags")
libs = pkg_config("--libs", "--static")
here = os.path.dirname(os.path.abspath(__file__))

ext = Extension(
    "ambisql._ambisql",
    sources=[os.path.join("src", f) for f in ("module.cpp", "errors.cpp", "options.cpp", "cursor.cpp", "drive.cpp",
                                                      "green_wait.cpp", "values.cpp", "params.cpp")],
    include_dirs=[pybind11.get_include()],
    language="c++",
    extra_compile_args=[f for f in cflags if f != "-std=c++20"] + ["-std=c++20", "-O2", "-fvisibility=hidden"],
    extra_link_args=libs,
)

setup(
    name="ambisql",
    version="0.1.0",
    description="MySQL/MariaDB driver on a C++ core: C speed, cooperative with gevent, eventlet and asyncio",
    packages=["ambisql", "ambisql.constants"],
    ext_modules=[ext],
    python_requires=">=3.11",
    zip_safe=False,
    # create_engine("mysql+ambisql://...") and create_async_engine("mysql+ambisql_async://...")
    entry_points={
        "sqlalchemy.dialects": [
            "mysql.ambisql = ambisql.dialect:AmbisqlDialect",
            "mysql.ambisql_async = ambisql.dialect:AmbisqlDialect_async",
            "mariadb.ambisql = ambisql.dialect:MariaDBDialect_ambisql",
            "mariadb.ambisql_async = ambisql.dialect:MariaDBDialect_ambisql_async",
        ],
    },
)
