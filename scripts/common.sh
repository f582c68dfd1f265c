# Shared by the scripts: paths, the build, the server.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_root=${AMBISQL_BUILD:-$root/build}
export AMBISQL_BUILD=$build_root
jobs=$(nproc 2>/dev/null || echo 2)

build_main() {
  cmake -S "$root" -B "$build_root/main" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS="-g" >/dev/null
  ninja -C "$build_root/main" -j "$jobs" "$@"
}

start_server() {
  "$root/scripts/server" start
  eval "$("$root/scripts/server" env)"
}
