"""The Chromium test's side of the page (Tests/GatewayTests/BrowserTests.swift): serves clients/js on
127.0.0.1 and turns the page's POSTs into lines on stdout for the test to read.

  python3 serve.py ROOT DRAIN_PID
  stdout: "PORT n" once listening, then "LOG <text>", "DRAIN <pid>" and finally "RESULT <json>" (then exits)

POST /drain sends SIGTERM to DRAIN_PID (the page's node), so the page decides when the drain starts.
"""
import http.server, os, signal, sys, threading

# The server answers each request on its own thread: a line is written whole under a lock, or two
# threads' `print`s interleave (text, text, newline, newline) and "RESULT" no longer starts a line.
out_lock = threading.Lock()

def say(line):
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

root, drain_pid = sys.argv[1], int(sys.argv[2])

class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)

    def log_message(self, *a):
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
        self.send_response(204)
        self.end_headers()
        if self.path == "/drain":
            os.kill(drain_pid, signal.SIGTERM)
            say(f"DRAIN {drain_pid}")
        elif self.path == "/log":
            say("LOG " + body.replace("\n", " "))
        elif self.path == "/result":
            say("RESULT " + body.replace("\n", " "))
            threading.Thread(target=server.shutdown).start()

Handler.extensions_map[".js"] = "text/javascript"
Handler.extensions_map[".mjs"] = "text/javascript"
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
say(f"PORT {server.server_address[1]}")
server.serve_forever()
