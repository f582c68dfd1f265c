"""Implicit async: gevent and eventlet through their own wait primitives (each run in a
process of its own, since monkey patching is per process)."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def worker(lib, *args):
    p = subprocess.run([sys.executable, os.path.join(HERE, "green_worker.py"), lib, *map(str, args)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_two_hundred_sleeps_run_concurrently(lib):
    r = worker(lib, "sleeps", 200, 0.5)
    # Serialized, 200 x 0.5 s would take 100 s.
    assert r["elapsed"] < 5.0, r
    assert r["ticks"] >= 5, "the hub kept running other greenlets"


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_a_timed_out_greenlet_gets_its_query_killed(lib):
    r = worker(lib, "timeout")
    assert r["timed_out"] and r["elapsed"] < 2.0, r
    assert r["after"] == "usable"
    assert r["still_running"] == 0


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_two_greenlets_on_one_connection_get_a_clear_error(lib):
    r = worker(lib, "two_on_one")
    assert r["errors"] == [["ProgrammingError", 2014]], r
    assert r["after"] == "in step"


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_closing_a_connection_wakes_the_greenlet_waiting_on_it_with_an_error(lib):
    # Another greenlet closes the connection while one waits for its query's answer: the
    # waiting greenlet fails at once with a lost-connection error (it used to wait on a
    # watcher nobody would ever fire).
    r = worker(lib, "closed_while_waiting")
    assert r["got"] == [["OperationalError", 2013]], r
    assert r["woke_after"] < 1.0, r
    assert r["after"] == "after"


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_closing_a_connection_wakes_a_greenlet_waiting_to_send_on_it(lib):
    # Its 32 MB query waits to be written (the peer stopped reading) when another greenlet
    # closes the connection: it fails at once with a lost connection. It used to wait on a
    # watcher of a closed socket until its write timeout (6 s here; none by default).
    r = worker(lib, "closed_while_writing")
    assert r["got"] == [["OperationalError", 2013]], r
    assert r["woke_after"] < 1.0, r


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_closing_a_connection_wakes_a_greenlet_waiting_on_its_querys_kill(lib):
    # Timed out, its KILL's side connection waits on a server that does not answer, when
    # another greenlet closes the connection: its timeout surfaces at once. It used to wait
    # for the side connection's connect timeout (6 s here).
    r = worker(lib, "closed_while_killing")
    assert r["got"] == [["Timeout"]], r
    assert r["woke_after"] < 1.0, r


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_closing_a_connection_wakes_a_greenlet_reconnecting_it(lib):
    # ping(reconnect=True) connects anew (to a server that does not answer, connect timeout
    # 6 s) when another greenlet closes the connection: the ping fails at once with the
    # connect error, and the connection stays closed (no new session left behind).
    r = worker(lib, "closed_while_reconnecting")
    assert r["got"] == [["OperationalError", 2003]], r
    assert r["woke_after"] < 1.0, r
    assert r["open"] is False, r


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_a_greenlet_resumed_otherwise_before_the_closes_wake_up_gets_no_stray_switch(lib):
    # Thrown into (killed, timed out) and its connection closed in the same pass: the
    # wake-up meant for its query's wait must not reach it once it waits on something else
    # (it cut a later sleep short, or raised gevent's InvalidSwitchError there). Which comes
    # first is the hub's choice: the throw, then a whole sleep; or the close's wake-up,
    # then the throw, in the sleep.
    r = worker(lib, "thrown_then_closed")
    assert r["got"] in (["ValueError", 0.3], ["OperationalError", "ValueError"]), r


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_a_greenlet_killed_again_while_its_kill_waits_closes_the_connection_without_blocking_the_hub(lib):
    # Timed out, its KILL's side connection waits (a server that does not answer: up to the
    # connect timeout, 3 s here), and it is killed again: the connection is closed at once.
    # It used to wait out the KILL blocking the hub, every other greenlet stopped.
    r = worker(lib, "killed_twice")
    assert r["kill_took"] < 0.5 and r["longest_gap"] < 0.5, r
    assert r["got"] == ["GreenletExit"], r
    assert r["open"] is False, r


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_a_kill_the_server_never_answers_gives_up_at_the_cancel_timeout(lib):
    # Timed out at 0.3 s, its KILL's side connection is never answered: the core's rule
    # closes the connection at cancel_timeout (0.5 s), through the hub, instead of
    # waiting out the side connection's connect timeout (3 s).
    r = worker(lib, "kill_gives_up")
    assert r["got"] == "Timeout", r
    assert 0.7 <= r["elapsed"] < 1.8, r
    assert r["longest_gap"] < 0.5, r
    assert r["open"] is False, r


def test_a_query_from_a_gevent_hub_callback_fails_instead_of_blocking_the_hub():
    # The hub cannot wait on itself: gevent's BlockingSwitchOutError (patch_gevent's wait
    # switches to the hub without gevent's Waiter), and the connection stays in step.
    r = worker("gevent", "from_hub")
    assert r["result"] == ["BlockingSwitchOutError"], r
    assert r["after"] == "in step"


def test_a_gevent_greenlets_switch_out_hook_runs_when_a_query_waits():
    # gevent's hub.switch() calls the current greenlet's switch_out() before it leaves it;
    # patch_gevent's wait switches to the hub itself and must keep that hook.
    r = worker("gevent", "switch_out")
    assert r["result"] == 0, r
    assert r["switch_outs"] >= 1, r


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_a_connection_closed_by_the_server_between_queries_neither_spins_the_hub_nor_sticks(lib):
    # The standing read watch sees the socket readable (EOF) with nobody waiting.
    r = worker(lib, "killed_between")
    assert r["idle_cpu_share"] < 0.3, r  # spinning on the readable socket would use a core
    assert r["error"] in (2006, 2013), r
    assert r["other"] == ["other", None], r  # the failed connection's socket is closed
    assert r["after"] == "reconnected"


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_a_closed_connections_descriptor_number_serves_the_next_socket(lib):
    # Nothing of the closed connection stays registered with the hub under its number
    # (eventlet would refuse a second reader on it).
    r = worker(lib, "fd_reuse")
    assert r["reused"] == [True, True], r
    assert r["got"] == ["through the hub"], r
    assert r["after"] == "second"


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_the_read_timeout_expires_through_the_hub(lib):
    r = worker(lib, "read_timeout")
    assert r["error"] == 2013, r
    assert 0.3 < r["elapsed"] < 2.0, r
    assert r["ticks"] >= 4, "the hub kept running other greenlets"
    assert r["after"] == "fine"


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_a_monkey_patched_process_gets_the_hubs_wait_callback_without_asking(lib):
    # As PyMySQL's green sockets would: code moving over from it only changes the driver.
    r = worker(lib, "auto", 50, 0.3)
    assert r["elapsed"] < 2.0, r  # serialized: 15 s
    assert r["ticks"] >= 4, r


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_set_wait_callback_none_before_connecting_keeps_blocking_waits(lib):
    r = worker(lib, "auto_declined", 4, 0.3)
    assert r["elapsed"] >= 1.1, r  # 4 x 0.3 s, one after another


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_a_timed_out_querys_kill_waits_through_the_hub_too(lib):
    # Blocking for the KILL would freeze every greenlet meanwhile: here the proxy the
    # KILL has to pass is itself a greenlet, so a blocking KILL would not get through.
    r = worker(lib, "kill_via_hub")
    assert r["timed_out"] and r["elapsed"] < 2.0, r
    assert r["after"] == "usable", r
    assert r["still_running"] == 0, r


@pytest.mark.parametrize("lib", ["gevent", "eventlet"])
def test_tls_connections_run_concurrently_through_the_hub(lib):
    # Large results arrive in TLS records OpenSSL decrypts ahead of what was asked for: a
    # wait on the socket for bytes already decrypted would hang.
    r = worker(lib, "tls")
    assert r["done"] == 10 and r["versions"] and r["versions"][0].startswith("TLSv1"), r
    assert r["elapsed"] < 4.0, r  # the ten SLEEP(0.5) alone, serialized: 5 s
