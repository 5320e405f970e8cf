"""A minimal blocking RFC 6455 client over raw sockets for the benchmark drivers (no third-party
package): handshake, masked frames out, unmasked frames in, pings answered. Not a general client:
it assumes a well-behaved server (Switchboard) and text messages."""
import base64, os, re, socket, struct, time, zlib

def handshake(port, path="/ws", host="127.0.0.1", headers=""):
    """Opens a socket and upgrades it: (socket, bytes read past the 101's head, the head). `headers`: extra
    request lines, each ending in CRLF. ConnectionError for anything but 101."""
    s = socket.create_connection((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk: raise ConnectionError("closed during the handshake")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    if b" 101 " not in head.split(b"\r\n")[0]: raise ConnectionError(head.decode(errors="replace"))
    return s, rest, head

class WS:
    def __init__(self, port, path="/ws", host="127.0.0.1", deflate=None):
        """deflate: a permessage-deflate offer (e.g. "permessage-deflate; client_max_window_bits"). When the
        server accepts it, compressed messages are inflated as RFC 7692 §7.2.2 says: with one window for the
        connection, or message by message when the response has server_no_context_takeover. `wire_bytes`
        counts frame bytes received, `message_bytes` what a plain frame of each message would have taken."""
        self.s, self.buf, head = handshake(port, path, host, f"Sec-WebSocket-Extensions: {deflate}\r\n" if deflate else "")
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        m = re.search(rb"(?im)^sec-websocket-extensions:(.*)$", head)
        self.extension = m.group(1).strip().decode() if m else None
        bits = re.search(r"server_max_window_bits=(\d+)", self.extension or "")
        self._window = -int(bits.group(1)) if bits else -15
        self._fresh = "server_no_context_takeover" in (self.extension or "")
        self._inflater = zlib.decompressobj(self._window)
        self.wire_bytes = self.message_bytes = self.compressed = 0

    @staticmethod
    def frame(payload, opcode=1, zero_mask=False):
        """A client frame. zero_mask: the all-zero masking key (valid, RFC 6455 §5.3 only asks clients to
        pick it unpredictably), so a 1 MiB payload needs no XOR pass in Python."""
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126: head += bytes([0x80 | n])
        elif n < 65536: head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else: head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        if zero_mask or n == 0: return head + b"\0\0\0\0" + payload
        mask = os.urandom(4)
        m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        return head + mask + (int.from_bytes(payload, "big") ^ m).to_bytes(n, "big")

    def send(self, text, zero_mask=False):
        self.s.sendall(self.frame(text.encode() if isinstance(text, str) else text, zero_mask=zero_mask))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(1 << 16)
            if not chunk: raise ConnectionError("closed")
            self.buf += chunk

    def recv(self):
        """The next text message (str); answers pings; raises ConnectionError on close."""
        while True:
            self._need(2)
            b0, b1 = self.buf[0], self.buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126: self._need(4); n, off = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127: self._need(10); n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
            self._need(off + n)
            payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
            op = b0 & 0x0F
            if op in (1, 2):
                self.wire_bytes += off + n
                if b0 & 0x40:
                    inflater = zlib.decompressobj(self._window) if self._fresh else self._inflater
                    payload = inflater.decompress(payload + b"\0\0\xff\xff")
                    self.compressed += 1
                self.message_bytes += (2 if len(payload) < 126 else 4 if len(payload) < 65536 else 10) + len(payload)
            if op == 9: self.s.sendall(self.frame(payload, opcode=10))
            elif op == 8: raise ConnectionError(f"close {payload[:2].hex()} {payload[2:].decode(errors='replace')}")
            elif op in (1, 2): return payload.decode()

def http_get(port, path, host="127.0.0.1"):
    """(status, body, seconds) of a GET on a fresh connection."""
    t = time.perf_counter()
    s = socket.create_connection((host, port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        c = s.recv(65536)
        if not c: break
        data += c
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace"), time.perf_counter() - t

def rss_mib(pid):
    return rss_bytes(pid) / 1048576

def rss_bytes(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1]) * 1024

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
