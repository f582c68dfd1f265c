"""ambisql for Python: the extension on the C++ core, which the build compiles itself.

- `pip install ./python` (or the sdist, or `python3 -m build --no-isolation python`: an
  sdist and a wheel, offline): the core's sources (python/core in an sdist, the repository
  beside python/ in a checkout) are built with CMake into the build folder, and the
  extension is linked with that static library.
- AMBISQL_PREFIX=<where `cmake --install` put a core> uses that one instead
  (scripts/python-install and the sanitizer builds do, to test the core they built).
Needs Debian's build dependencies (scripts/setup): cmake, ninja, pkg-config, a C++20
compiler, Boost (headers, context), OpenSSL, zlib, libsodium, pybind11."""
import os
import shlex
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext
from setuptools.command.sdist import sdist as _sdist

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CORE_PARTS = ("CMakeLists.txt", "cmake", "include", "src")  # what the core's library build needs


def core_sources():
    bundled = os.path.join(HERE, "core")
    if os.path.isfile(os.path.join(bundled, "CMakeLists.txt")):
        return bundled
    if all(os.path.exists(os.path.join(REPO, p)) for p in CORE_PARTS):
        return REPO
    raise SystemExit("ambisql: the C++ core's sources are missing (python/core in an sdist, or the repository "
                     "around python/), and AMBISQL_PREFIX does not name a built core")


def pkg_config(prefix, *args):
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    return shlex.split(subprocess.check_output(["pkg-config", *args, "ambisql"], env=env, text=True))


class sdist(_sdist):
    """The sdist carries the core's sources (python/core), copied from the repository."""

    def run(self):
        if REPO != HERE and all(os.path.exists(os.path.join(REPO, p)) for p in CORE_PARTS):
            dest = os.path.join(HERE, "core")
            shutil.rmtree(dest, ignore_errors=True)
            for p in CORE_PARTS:
                src = os.path.join(REPO, p)
                if os.path.isdir(src):
                    shutil.copytree(src, os.path.join(dest, p))
                else:
                    os.makedirs(dest, exist_ok=True)
                    shutil.copy2(src, os.path.join(dest, p))
        super().run()


class build_ext(_build_ext):
    """Builds the core (unless AMBISQL_PREFIX names one), then the extension against it."""

    def run(self):
        prefix = os.environ.get("AMBISQL_PREFIX")
        if not prefix:
            prefix = os.path.abspath(os.path.join(self.build_temp, "core-install"))
            build = os.path.abspath(os.path.join(self.build_temp, "core"))
            gen = ["-G", "Ninja"] if shutil.which("ninja") else []
            subprocess.check_call(["cmake", "-S", core_sources(), "-B", build, *gen, "-DCMAKE_BUILD_TYPE=Release",
                                   "-DAMBISQL_TESTS=OFF", "-DAMBISQL_BENCH=OFF", "-DAMBISQL_EXAMPLES=OFF"])
            subprocess.check_call(["cmake", "--build", build, "--target", "ambisql"])
            subprocess.check_call(["cmake", "--install", build, "--prefix", prefix])
        cflags = pkg_config(prefix, "--cflags")
        libs = pkg_config(prefix, "--libs", "--static")
        for ext in self.extensions:
            ext.extra_compile_args = [f for f in cflags if f != "-std=c++20"] + ["-std=c++20", "-O2",
                                                                                "-fvisibility=hidden"]
            ext.extra_link_args = libs
        super().run()


import pybind11  # Debian's python3-pybind11

ext = Extension(
    "ambisql._ambisql",
    sources=[os.path.join("src", f) for f in ("module.cpp", "errors.cpp", "options.cpp", "cursor.cpp", "drive.cpp",
                                                      "green_wait.cpp", "values.cpp", "params.cpp")],
    include_dirs=[pybind11.get_include()],
    language="c++",
)

setup(
    name="ambisql",
    version="0.1.0",
    description="MySQL/MariaDB driver on a C++ core: C speed, cooperative with gevent, eventlet and asyncio",
    packages=["ambisql", "ambisql.constants"],
    package_data={"ambisql": ["py.typed", "*.pyi"]},
    ext_modules=[ext],
    cmdclass={"build_ext": build_ext, "sdist": sdist},
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
