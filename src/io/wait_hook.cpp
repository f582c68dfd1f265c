#include "ambisql/wait_hook.hpp"

namespace ambisql {

namespace {
thread_local wait_hook* current = nullptr;
}

wait_hook* set_wait_hook(wait_hook* hook) noexcept {
    wait_hook* prev = current;
    current = hook;
    return prev;
}

wait_hook* current_wait_hook() noexcept { return current; }

}  // namespace ambisql
