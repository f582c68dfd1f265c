"""psycopg2-style async connections driven from one `selectors` loop: ten connections each
run SELECT SLEEP(0.5) at the same time on one thread (~0.5 s in all, not 5 s).
    /usr/bin/python3 python/examples/selectors_demo.py 'mysql://user:pw@127.0.0.1:3306/db'"""
import selectors
import sys
import time

import ambisql

url = sys.argv[1]
sel = selectors.DefaultSelector()
pending = {}  # connection -> its cursor once the query was sent


def step(conn):
    """Polls `conn` as far as it goes; False when its query is done."""
    while True:
        state = conn.poll()
        if state == ambisql.POLL_OK:
            if conn not in pending:  # connected: send the query
                pending[conn] = conn.cursor()
                pending[conn].execute("SELECT SLEEP(0.5), CONNECTION_ID()")
                continue
            print("connection %d: %r" % (conn.thread_id(), pending[conn].fetchone()))
            return False
        ev = selectors.EVENT_READ if state == ambisql.POLL_READ else selectors.EVENT_WRITE
        sel.register(conn.fileno(), ev, conn)
        return True


t0 = time.time()
conns = [ambisql.connect(url=url, async_=True) for _ in range(10)]
running = sum(step(c) for c in conns)
while running:
    for key, _ in sel.select():
        sel.unregister(key.fd)
        if not step(key.data):
            running -= 1
print("10 x SLEEP(0.5) in %.2f s on one thread" % (time.time() - t0))
