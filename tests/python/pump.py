"""Copies one socket's bytes to another until either side ends, then shuts both down:
half of a test relay (the tests' own proxies, plain threads or greenlets)."""
import socket


def pump(a, b):
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
