#!/usr/bin/env python3
# RSS of an in-process-bus node over rounds of 100,000 single-use rooms (one publish each), to show
# that --history-ttl bounds memory by the rooms in use. Usage: history-ttl-memory.py PORT ADMIN_PORT PID
# (start the node with --max-frame-rate 100000: one connection publishes ~30,000 frames/s). Needs websockets.
import asyncio, json, sys, time, websockets
port, admin, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) / 1024
async def main():
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_queue=None) as ws:
        await ws.recv()
        for r in range(3):
            t = time.time()
            for i in range(100_000):
                await ws.send(json.dumps({"op": "publish", "room": f"r{r}-{i}", "data": {"n": i, "pad": "x" * 100}}))
                if i % 5000 == 4999:
                    await ws.send(json.dumps({"op": "presence", "room": "sync", "id": i}))
                    while json.loads(await ws.recv()).get("op") != "presence": pass
            print(f"round {r}: 100000 rooms in {time.time()-t:.1f}s, RSS {rss():.1f} MiB", flush=True)
            await asyncio.sleep(3)
asyncio.run(main())
