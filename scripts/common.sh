# Shared by the scripts: paths, the build, the server.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_root=${AMBISQL_BUILD:-$root/build}
export AMBISQL_BUILD=$build_root
jobs=$(nproc 2>/dev/null || echo 2)
if [ -z "${AMBISQL_EXTERNAL_SERVER+x}" ]; then
  if [ -n "${AMBISQL_TEST_URL:-}" ]; then export AMBISQL_EXTERNAL_SERVER=1; else export AMBISQL_EXTERNAL_SERVER=; fi
fi

build_main() {
  cmake -S "$root" -B "$build_root/main" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS="-g" >/dev/null
  ninja -C "$build_root/main" -j "$jobs" "$@"
}

start_server() {
  "$root/scripts/server" start
  eval "$("$root/scripts/server" env)"
  # Tests that restart the server find the script here (unset for an external server).
  [ -n "$AMBISQL_EXTERNAL_SERVER" ] || export AMBISQL_SERVER_SCRIPT="$root/scripts/server"
}
