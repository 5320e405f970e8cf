"""Bus messages per publish with a room's members on 1 of 3 gateway nodes: one Redis vs a three-master Redis
Cluster (issue 16). Counts, not rates, so any machine and any build will do.

  python3 Benchmarks/redis-cluster-bus-messages.py [--bin .build/debug/switchboard] [--publishes 500]

Per mode: three gateway nodes a, b, c on the bus; 5 members of room `chat` on node a; a client on node b
publishes --publishes messages to `chat` (waiting for each ack); node c has no member. Every member must get
every message once. Then, from each node's /metrics: the room messages it received from Redis
(`switchboard_bus_messages_received_total` on one Redis, `switchboard_redis_cluster_messages_delivered_total`
on the cluster: both count each message once per node), and from each Redis: the commands it ran
(`INFO commandstats`: the publish script, PUBLISH/SPUBLISH). Prints messages per publish per node.
Every process started here is stopped by pid on exit.
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import wsraw

procs = []

def start(args, log):
    p = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    procs.append(p)
    return p

def redis(port, out, *extra):
    start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
           "--protected-mode", "no", "--dir", out, *extra], f"{out}/redis-{port}.log")
    for _ in range(100):
        if subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True).stdout.strip() == "PONG": return
        time.sleep(0.05)
    raise SystemExit(f"redis-server on {port} did not start")

def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout

def metrics(admin):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", text, re.M)}

def commandstats(port):
    out = {}
    for line in cli(port, "INFO", "commandstats").splitlines():
        m = re.match(r"cmdstat_([a-z|]+):calls=(\d+)", line)
        if m: out[m.group(1)] = int(m.group(2))
    return out

def run(binary, mode, bus_flags, redis_ports, n, out):
    nodes = {}
    for name in "abc":
        port, admin = wsraw.free_port(), wsraw.free_port()
        p = start([binary, "--port", str(port), "--admin-port", str(admin), "--threads", "1", "--node-id", name,
                   "--prefix", f"msgs-{mode}:", "--max-frame-rate", "0", "--log-level", "warn", *bus_flags], f"{out}/gw-{mode}-{name}.log")
        nodes[name] = (port, admin, p)
    for name, (port, admin, _) in nodes.items():
        for _ in range(200):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1).status == 200: break
            except Exception: time.sleep(0.1)
        else: raise SystemExit(f"{mode}: node {name} never ready")
    members = [wsraw.WS(nodes["a"][0]) for _ in range(5)]
    for m in members:
        json.loads(m.recv())
        m.send('{"op":"join","room":"chat"}')
        while json.loads(m.recv()).get("op") != "joined": pass
    pub = wsraw.WS(nodes["b"][0]); json.loads(pub.recv())
    before = {name: metrics(a) for name, (_, a, _) in nodes.items()}
    stats0 = {p: commandstats(p) for p in redis_ports}
    for i in range(n):
        pub.send(json.dumps({"op": "publish", "room": "chat", "data": {"n": i}, "id": i}))
        while json.loads(pub.recv()).get("op") != "ack": pass
    for m in members:
        got = []
        while len(got) < n:
            msg = json.loads(m.recv())
            if msg.get("op") == "message": got.append(msg["data"]["n"])
        if got != list(range(n)): raise SystemExit(f"{mode}: a member's messages differ")
    time.sleep(0.5)
    key = "switchboard_bus_messages_received_total" if mode == "redis" else "switchboard_redis_cluster_messages_delivered_total"
    print(f"{mode}: {n} publishes, 5 members on node a, the publisher on node b, none on node c")
    for name, (_, admin, p) in nodes.items():
        got = metrics(admin).get(key, 0) - before[name].get(key, 0)
        print(f"   node {name}: {got:6.0f} room messages from the bus = {got / n:.2f} per publish")
        p.kill(); p.wait()
    calls = {}
    for port in redis_ports:
        for cmd, c in commandstats(port).items():
            d = c - stats0[port].get(cmd, 0)
            if d and cmd in ("evalsha", "eval", "publish", "spublish", "fcall"): calls[cmd] = calls.get(cmd, 0) + d
    print("   Redis commands per publish (all servers): " + ", ".join(f"{c} {v / n:.2f}" for c, v in sorted(calls.items())))

if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))    # so `finally` stops every process started here
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/debug/switchboard")
    ap.add_argument("--publishes", type=int, default=500)
    a = ap.parse_args()
    out = tempfile.mkdtemp(prefix="switchboard-bus-messages-")
    try:
        base = wsraw.free_port()
        one = wsraw.free_port()
        redis(one, out)
        cluster = []
        for i in range(3):
            port = wsraw.free_port(); cluster.append(port)
            redis(port, out, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "2000")
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in cluster], "--cluster-yes"],
                       capture_output=True, timeout=30, check=True)
        for _ in range(100):
            if "cluster_state:ok" in cli(cluster[0], "CLUSTER", "INFO"): break
            time.sleep(0.1)
        run(a.bin, "redis", ["--redis-url", f"redis://127.0.0.1:{one}/0"], [one], a.publishes, out)
        run(a.bin, "cluster", ["--redis-cluster", ",".join(f"127.0.0.1:{p}" for p in cluster)], cluster, a.publishes, out)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(out, ignore_errors=True)
