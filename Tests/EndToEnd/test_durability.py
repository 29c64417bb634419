"""kill -9 while writes are in flight: every acknowledged write survives, the chain verifies."""
import json
import threading
import time


def test_kill_9_during_puts_loses_no_acknowledged_write(daemon):
    acknowledged = []  # (name, version) the daemon answered 200 for
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker):
        n = 0
        while not stop.is_set():
            name = f"w{worker}-{n}"
            try:
                status, body = daemon.http("PUT", f"/v1/secrets/{name}", {"type": "static", "fields": {"v": str(n)}}, timeout=5)
            except OSError:
                return
            if status == 200:
                with lock:
                    acknowledged.append((name, body["version"]))
            elif status is None:
                return
            n += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    deadline = time.time() + 10
    while len(acknowledged) < 200 and time.time() < deadline:
        time.sleep(0.01)
    daemon.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acknowledged) >= 200, "the load did not get going"

    daemon.start()
    assert daemon.unseal().returncode == 0
    stored = {s["name"]: s for s in json.loads(daemon.cli("secret", "list", "--json", check=0).out)["secrets"]}
    lost = [(name, version) for name, version in acknowledged if name not in stored or stored[name]["version"] < version]
    assert lost == [], f"{len(lost)} acknowledged writes lost"
    assert not any("error" in s for s in stored.values())
    verify = daemon.cli("audit", "verify", check=0)
    assert "audit chain OK" in verify.out
    exported = [json.loads(line) for line in daemon.cli("audit", "export", check=0).out.splitlines()]
    puts = [r for r in exported if r["action"] == "secret.put"]
    assert len(puts) >= len(acknowledged), "every acknowledged write has its audit record"
