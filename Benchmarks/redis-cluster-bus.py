#!/usr/bin/env python3
"""Redis-side cost of the room bus: one Redis vs a three-master cluster (three replicas), same bench.

Starts a standalone redis-server and a 3+3 cluster on loopback (ports from --base, default 23000), loads the
publish script (docs/redis.md, v5) and its sharded twin (SPUBLISH), subscribes one client per room (members
on one node: one subscriber per room), then runs three redis-benchmark processes at once, one room each
(on the cluster: one room per shard, each benchmark talking to that room's primary):

    python3 Benchmarks/redis-cluster-bus.py [--requests 100000] [--clients 20] [--pipeline 16]

Prints publishes/s (sum of the three), deliveries/s (messages the subscribers received per second), Redis
CPU per publish (INFO commandstats, usec_per_call of EVALSHA) and cluster-bus messages per publish for
PUBLISH vs SPUBLISH (CLUSTER INFO cluster_stats_messages_publish*_sent summed over all six nodes).
Needs a quiet machine for meaningful throughput; the per-call CPU and the message counts are stable anyway.
"""
import argparse, os, re, shutil, subprocess, sys, tempfile, time

def crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc

def slot(key: str) -> int:
    k = key.encode()
    s = k.find(b"{")
    if s >= 0:
        e = k.find(b"}", s + 1)
        if e > s + 1:
            k = k[s + 1:e]
    return crc16(k) % 16384

def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout.strip()

def start(port, work, cluster):
    args = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
            "--daemonize", "no", "--loglevel", "warning", "--protected-mode", "no", "--repl-diskless-sync-delay", "0"]
    if cluster:
        args += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "2000"]
    return subprocess.Popen(args, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def publish_script(root):
    text = open(os.path.join(root, "docs/redis.md")).read()
    m = re.search(r"```lua\n(-- switchboard publish v5.*?)\n```", text, re.S)
    return m.group(1)

def bench(jobs, requests, clients, pipeline):
    """jobs: [(port, sha, room_keys)] run at once; returns summed requests/s."""
    procs = []
    for port, sha, (hist, meta, chan) in jobs:
        procs.append(subprocess.Popen(["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", str(clients), "-P", str(pipeline),
                                       "-q", "EVALSHA", sha, "2", hist, meta, chan, '{"text":"hello"}', "1000"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    total = 0.0
    for p in procs:
        out = p.communicate()[0]
        m = re.findall(r"([\d.]+) requests per second", out)
        total += float(m[-1]) if m else 0
    return total

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", type=int, default=23000)
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--pipeline", type=int, default=16)
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    work = tempfile.mkdtemp(prefix="sb-cluster-bench-")
    procs, subs = [], []
    try:
        single = a.base
        nodes = [a.base + 1 + i for i in range(6)]
        procs.append(start(single, work, False))
        procs += [start(p, work, True) for p in nodes]
        time.sleep(0.5)
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in nodes], "--cluster-replicas", "1", "--cluster-yes"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        for _ in range(100):
            if all("cluster_state:ok" in cli(p, "CLUSTER", "INFO") for p in nodes) and cli(nodes[0], "CLUSTER", "SHARDS").count("\nonline") == 6:
                break
            time.sleep(0.1)
        source = publish_script(root)
        sharded = source.replace("redis.call('PUBLISH', ARGV[1],", "redis.call('SPUBLISH', ARGV[1],")
        # Primaries and their slot ranges.
        masters = {}
        for line in cli(nodes[0], "CLUSTER", "NODES").splitlines():
            f = line.split()
            if "master" in f[2] and len(f) > 8:
                port = int(f[1].split(":")[1].split("@")[0])
                lo, hi = map(int, f[8].split("-"))
                masters[port] = (lo, hi)
        # One room per shard; standalone uses the same three rooms.
        rooms = {}
        i = 0
        while len(rooms) < 3:
            name = f"bench{i}"
            s = slot(name)
            for port, (lo, hi) in masters.items():
                if lo <= s <= hi and port not in rooms:
                    rooms[port] = name
            i += 1
        def std_keys(r): return (f"sb:history:{r}", f"sb:meta:{r}", f"sb:room:{r}")
        def cl_keys(r): return (f"sb:history:{{{r}}}", f"sb:meta:{{{r}}}", f"sb:room:{{{r}}}")
        sha_single = cli(single, "SCRIPT", "LOAD", source)
        sha_sharded = {p: cli(p, "SCRIPT", "LOAD", sharded) for p in masters}
        # One subscriber per room (members on one node).
        counts = []
        for port, r in rooms.items():
            f1 = open(os.path.join(work, f"sub-single-{r}"), "w")
            subs.append(subprocess.Popen(["redis-cli", "-p", str(single), "SUBSCRIBE", std_keys(r)[2]], stdout=f1, stderr=subprocess.DEVNULL))
            f2 = open(os.path.join(work, f"sub-cluster-{r}"), "w")
            subs.append(subprocess.Popen(["redis-cli", "-p", str(port), "SSUBSCRIBE", cl_keys(r)[2]], stdout=f2, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        def received(kind):
            n = 0
            for r in rooms.values():
                n += open(os.path.join(work, f"sub-{kind}-{r}")).read().count(f"\n{'message' if kind == 'single' else 'smessage'}\n")
            return n
        t = time.time()
        single_rate = bench([(single, sha_single, std_keys(r)) for r in rooms.values()], a.requests, a.clients, a.pipeline)
        time.sleep(0.5)
        single_deliveries = received("single") / max(time.time() - t - 0.5, 1e-9)
        t = time.time()
        cluster_rate = bench([(p, sha_sharded[p], cl_keys(r)) for p, r in rooms.items()], a.requests, a.clients, a.pipeline)
        time.sleep(0.5)
        cluster_deliveries = received("cluster") / max(time.time() - t - 0.5, 1e-9)
        def usec(port):
            m = re.search(r"cmdstat_evalsha:calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)", cli(port, "INFO", "commandstats"))
            return float(m.group(3)) if m else float("nan")
        # Cluster-bus messages per publish: PUBLISH vs SPUBLISH, 1000 each, counters summed over all nodes.
        def bus_sent():
            total = {"publish": 0, "publishshard": 0}
            for p in nodes:
                info = cli(p, "CLUSTER", "INFO")
                for k in total:
                    m = re.search(rf"cluster_stats_messages_{k}_sent:(\d+)", info)
                    total[k] += int(m.group(1)) if m else 0
            return total
        r0 = list(rooms.items())[0]
        before = bus_sent()
        subprocess.run(["redis-benchmark", "-p", str(r0[0]), "-n", "1000", "-c", "1", "-q", "PUBLISH", cl_keys(r0[1])[2], "x"], stdout=subprocess.DEVNULL)
        mid = bus_sent()
        subprocess.run(["redis-benchmark", "-p", str(r0[0]), "-n", "1000", "-c", "1", "-q", "SPUBLISH", cl_keys(r0[1])[2], "x"], stdout=subprocess.DEVNULL)
        after = bus_sent()
        print(f"rooms (one per shard): {rooms}")
        print(f"one Redis:        {single_rate:10.0f} publishes/s  {single_deliveries:10.0f} deliveries/s  {usec(single):.2f} us Redis CPU per publish")
        print(f"3-shard cluster:  {cluster_rate:10.0f} publishes/s  {cluster_deliveries:10.0f} deliveries/s  "
              + "  ".join(f"{usec(p):.2f}" for p in masters) + " us per publish (per primary)")
        print(f"cluster-bus messages per publish: PUBLISH {(mid['publish'] - before['publish']) / 1000:.2f}, "
              f"SPUBLISH {(after['publishshard'] - mid['publishshard']) / 1000:.2f} (6 nodes: 3 primaries, 3 replicas)")
    finally:
        for p in subs + procs:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
