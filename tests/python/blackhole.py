"""A path to the test server that vanishes on demand: the ambisql_blackhole helper that
the C++ partition tests use too (tests/support/blackhole.cpp; scripts/test exports its
path as AMBISQL_BLACKHOLE). It relays through a veth link into a network namespace;
down() takes the link away (no FIN, no RST: packets lost), up() brings it back."""
import os
import signal
import subprocess


class Blackhole:
    def __init__(self):
        self.why = None
        self.proc = None
        exe = os.environ.get("AMBISQL_BLACKHOLE")
        if not exe or not os.path.exists(exe):
            self.why = "AMBISQL_BLACKHOLE does not name the ambisql_blackhole helper (run through scripts/test)"
            return
        self.proc = subprocess.Popen([exe, "127.0.0.1", os.environ["AMBISQL_TEST_PORT"]],
                                     stdout=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().strip()
        if first.startswith("READY "):
            _, self.host, port = first.split()
            self.port = int(port)
        else:
            self.why = first[len("UNAVAILABLE "):] if first.startswith("UNAVAILABLE ") else "helper said %r" % first

    def _signal(self, sig, want):
        self.proc.send_signal(sig)
        line = self.proc.stdout.readline().strip()
        assert line == want, line

    def down(self):
        self._signal(signal.SIGUSR1, "DOWN")

    def up(self):
        self._signal(signal.SIGUSR2, "UP")

    def close(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
