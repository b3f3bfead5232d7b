"""A TCP proxy on 127.0.0.1 that tests put between Switchboard and its database to cut it off.

`TcpProxy(host, port).start()` listens on an ephemeral port (`.port`) and forwards every
connection to (host, port), bytes passed through unchanged both ways. `.cut()` ends every live
connection at once and refuses new ones (accepted, then closed straight away, so clients fail
fast instead of hanging) until `.restore()`. `.stop()` ends everything.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable

# How long a thread waits on its sockets before it looks at the stop and cut flags again.
POLL_SLICE = 0.05
BUFFER = 65536


def _nodelay(sock: socket.socket) -> None:
    # Small protocol messages (PostgreSQL's) must go through at once, not wait for Nagle.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _shut(sock: socket.socket) -> None:
    """Shut both directions of `sock` and close it; it may already be closed."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected any more: closing is all that is left
    sock.close()


class _Link:
    """One client connection and its connection to the target."""

    def __init__(self, client: socket.socket, target: socket.socket) -> None:
        self.client = client
        self.target = target

    def shut(self) -> None:
        # Shut both first so both peers see the end at the same moment.
        for sock in (self.client, self.target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the pump thread
        self.client.close()
        self.target.close()


class TcpProxy:
    """Forwards 127.0.0.1:`port` to (target_host, target_port); see the module docstring.

    Every thread is a daemon and waits at most POLL_SLICE before checking whether it should
    stop. `connect_timeout` bounds the connection to the target; `send_timeout` bounds a write
    to a peer that does not read.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        connect_timeout: float = 2.0,
        send_timeout: float = 10.0,
    ) -> None:
        self.target = (target_host, target_port)
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self.port = 0
        self.accepted = 0  # connections accepted, forwarded or refused
        self.lock = threading.Lock()
        self._links: set[_Link] = set()
        self._cut = False
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def live(self) -> int:
        """How many connections are being forwarded now."""
        with self.lock:
            return len(self._links)

    @property
    def is_cut(self) -> bool:
        return self._cut

    def start(self) -> TcpProxy:
        """Listen on an ephemeral port of 127.0.0.1 (sets `.port`) and start forwarding."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self._thread.start()
        return self

    def cut(self) -> None:
        """End every live connection both ways now, and refuse new ones until restore()."""
        with self.lock:
            self._cut = True
            links = list(self._links)
            self._links.clear()
        for link in links:
            link.shut()

    def restore(self) -> None:
        """Forward new connections normally again."""
        with self.lock:
            self._cut = False

    def stop(self, timeout: float = 2.0) -> None:
        """End every connection and stop listening; waits up to `timeout` for the thread."""
        self._stopping.set()
        self.cut()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._listener is not None:
            self._listener.close()

    # ---- threads ------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        poller = select.poll()
        poller.register(self._listener, select.POLLIN)
        while not self._stopping.is_set():
            if not poller.poll(POLL_SLICE * 1000):
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue  # the client gave up before we accepted: nothing to do
            with self.lock:
                self.accepted += 1
                refuse = self._cut
            if refuse:
                _shut(client)
                continue
            threading.Thread(
                target=self._forward, args=(client,), name="tcp-proxy-link", daemon=True
            ).start()

    def _forward(self, client: socket.socket) -> None:
        try:
            target = socket.create_connection(self.target, timeout=self.connect_timeout)
        except OSError:
            _shut(client)
            return
        for sock in (client, target):
            _nodelay(sock)
            sock.settimeout(self.send_timeout)
        link = _Link(client, target)
        with self.lock:
            # A cut that came while we were connecting must win.
            refuse = self._cut or self._stopping.is_set()
            if not refuse:
                self._links.add(link)
        if refuse:
            link.shut()
            return
        try:
            self._pump(link)
        finally:
            with self.lock:
                self._links.discard(link)
            link.shut()

    def _pump(self, link: _Link) -> None:
        """Copy bytes both ways until both directions ended, an error, a cut or stop."""
        peer = {link.client.fileno(): link.target, link.target.fileno(): link.client}
        source = {link.client.fileno(): link.client, link.target.fileno(): link.target}
        poller = select.poll()
        for fd in source:
            poller.register(fd, select.POLLIN)
        open_reads = set(source)
        while open_reads and not self._stopping.is_set():
            for fd, _ in poller.poll(POLL_SLICE * 1000):
                try:
                    data = source[fd].recv(BUFFER)
                except (BlockingIOError, TimeoutError, InterruptedError):
                    continue  # spurious wake-up: nothing to read after all
                except OSError:
                    return  # reset, or closed by cut(): the link is over
                if data:
                    try:
                        peer[fd].sendall(data)
                    except OSError:
                        return
                    continue
                # End of stream one way: pass the half close on and keep the other way going.
                poller.unregister(fd)
                open_reads.discard(fd)
                try:
                    peer[fd].shutdown(socket.SHUT_WR)
                except OSError:
                    return


def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    """Poll `predicate()` every 10 ms for up to `timeout` seconds; whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
