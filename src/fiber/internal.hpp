#pragma once
// What the fiber primitives need from the hub (implemented in hub.cpp).
#include <functional>

#include "ambisql/wait_hook.hpp"

namespace ambisql::detail {

struct fiber_rec;
fiber_rec* running_fiber() noexcept;  // the fiber running on this thread, or nullptr
void suspend_running_fiber();         // back to the loop until resumed
void resume_fiber(fiber_rec* f);      // on the fiber's loop, never from a fiber
void post_resume(fiber_rec* f);       // from anywhere: resumes f from its loop
// On f's loop: runs on_expiry at `deadline` unless restarted or cancelled first.
void start_fiber_timer(fiber_rec* f, clock::time_point deadline, std::function<void()> on_expiry);
void cancel_fiber_timer(fiber_rec* f);
// On f: keep f's loop running (it has work) until release_loop, e.g. while f waits for a
// wake-up that another thread will post.
void hold_loop(fiber_rec* f);
void release_loop(fiber_rec* f);

}  // namespace ambisql::detail
