#!/usr/bin/env python3
"""Benchmark clusterctl on the 3-node container lab. Prints figures; asserts nothing.

For RUNS fresh labs: cold apply (artifacts already in the local cache, JDK from the OS package
inside the nodes), then no-op re-applies and status calls on the running cluster, then a rolling
restart of the 3 brokers next to the sum of its unavoidable parts (each node's stop, start and
ISR catch-up as the roller measured them). Reports medians, and clusterctl's peak RSS over every
measured run (from wait4's rusage).

    bench/run.py [--runs 3] [--repeats 5] [--flavor jvm|nisshi] [--baseline BIN] [--bin BIN]
                 [--by-rack]
    bench/run.py --rebalance [--throttle MB/s] [--data MB]
    bench/run.py --migrate [--runs 3]
    bench/run.py --secure [--runs 3] [--repeats 5]
`--baseline BIN`: another clusterctl build (e.g. the last release) runs its own no-op apply and
status right after each of this build's, on the same labs, so a change's cost shows as a ratio
measured in one run. Only for builds that render the same files: otherwise each apply rewrites
what the other wrote and rolls the cluster. Time such a build on its own with `--bin BIN`.

`--by-rack`: 6-node labs (ZooKeeper on 3), the brokers in 3 racks of 2 (`rack:` written into
the lab's inventory before the cold apply, so every topic is placed rack-aware); after the
one-at-a-time roll, `restart --rolling --service kafka --by-rack` on the same cluster, timed next
to it.

`--flavor nisshi`: 4-node labs, PostgreSQL on one node (from Debian's package) and the nisshi
broker on 3 (the binary from scripts/nisshi.sh's cache).

`--rebalance`: instead, one 4-node KRaft lab: 3 brokers get DATA MB in a topic with replication
factor 3 (kcat), a 4th broker joins, and `rebalance --throttle` moves its share to it. Reports the
bytes that landed on the new broker (its partitions' segment files, over OpenSSH) per second of
the rebalance, next to the throttle.

`--migrate`: instead, for RUNS fresh 6-node labs, a ZooKeeper-mode cluster on Kafka 3.9.1 (ZooKeeper
and brokers on n1..n3) gets controllers on n4..n6 and is migrated: `migrate` to the soak point, then
`migrate --finalize`, each timed next to the sum of its unavoidable parts (each node's stop, start
and ISR catch-up as the roller measured them, and each gate's wait as migrate printed it).

`--secure`: instead, for RUNS rounds, two fresh 3-node KRaft labs one after the other, one as
`lab up --kraft` writes it (PLAINTEXT) and one as `lab up --kraft --secure` (SASL_SSL on every
listener, a managed CA, SCRAM users, the authorizer): cold apply, then REPEATS no-op applies and
status calls on each, so the cost of TLS handshakes and SCRAM logins shows as a ratio measured in
one run.

Needs what scripts/setup-machine.sh and scripts/fixtures.sh provide (and scripts/nisshi.sh for
the nisshi flavor), and a release build (`cargo build --release`; under $CARGO_TARGET_DIR if set). Containers and networks are removed at the end, pass or fail.
"""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "clusterctl")


def run(args, env, out=None, bin=BIN):
    """Run clusterctl; return (seconds, peak RSS in KiB, exit code). `out` collects stdout."""
    start = time.monotonic()
    proc = subprocess.Popen([bin] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, err = proc.stdout.read(), proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    if out is not None:
        out.append(stdout.decode(errors="replace"))
    code = os.waitstatus_to_exitcode(status)
    if code not in (0,):
        sys.stderr.write(f"clusterctl {' '.join(args)} exited {code}:\n{err}\n")
    return elapsed, usage.ru_maxrss, code


def per_node(text):
    """(start, back in sync) seconds of each node restart line of `restart`'s output."""
    return [(float(a), float(b)) for a, b in
            re.findall(r"start ([0-9.]+)s, back in sync ([0-9.]+)s", text)]


def write_racks(inv, racks):
    """Gives the lab's hosts racks r1..rN in turn (n1 r1, n2 r2, ...): with ZooKeeper on the
    first 3 nodes, each rack holds one ZooKeeper member and racks x 2 brokers in all."""
    with open(inv) as f:
        text = f.read()
    count = [0]

    def rack(m):
        count[0] += 1
        return f"{m.group(0)}\n    rack: r{(count[0] - 1) % racks + 1}"

    text = re.sub(r"^    address: \S+$", rack, text, flags=re.M)
    with open(inv, "w") as f:
        f.write(text)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="fresh labs (cold applies)")
    ap.add_argument("--repeats", type=int, default=5, help="no-op applies and status calls per lab")
    ap.add_argument("--flavor", choices=["jvm", "nisshi"], default="jvm")
    ap.add_argument("--baseline", help="another clusterctl binary to time beside this build")
    ap.add_argument("--bin", default=BIN, help="the clusterctl binary to time (default: this release build)")
    ap.add_argument("--rebalance", action="store_true", help="time a throttled rebalance instead")
    ap.add_argument("--throttle", type=float, default=5.0, help="--rebalance: the throttle, MB/s")
    ap.add_argument("--data", type=int, default=120, help="--rebalance: MB written before scaling out")
    ap.add_argument("--migrate", action="store_true",
                    help="time migrate and migrate --finalize (ZooKeeper to KRaft) instead")
    ap.add_argument("--secure", action="store_true",
                    help="time no-op apply and status on a SASL_SSL KRaft lab next to a PLAINTEXT one")
    ap.add_argument("--by-rack", action="store_true",
                    help="6 brokers in 3 racks: time restart --rolling --by-rack next to one at a time")
    a = ap.parse_args()
    bin = os.path.abspath(a.bin)
    if a.by_rack and a.flavor == "nisshi":
        sys.exit("--by-rack: nisshi brokers have no racks")
    nodes = 6 if a.by_rack else 3
    lab_args = ["--nodes", "4", "--nisshi"] if a.flavor == "nisshi" else ["--nodes", str(nodes)]
    if not os.path.exists(bin):
        sys.exit("build first: cargo build --release")
    mirror_dir = subprocess.run([os.path.join(ROOT, "scripts", "fixtures.sh")], check=True,
                                capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "-d", mirror_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, CLUSTERCTL_MIRROR=f"http://127.0.0.1:{port}")
    if a.rebalance or a.migrate or a.secure:
        try:
            time.sleep(0.5)
            subprocess.run([bin, "lab", "image"], check=True, env=env)
            if a.secure:
                secure_bench(bin, env, a.runs, a.repeats)
            elif a.migrate:
                migrate_bench(bin, env, a.runs)
            else:
                rebalance_bench(bin, env, a.throttle, a.data)
        finally:
            server.kill()
            server.wait()
        return
    cold, noop, status, rss, roll, parts, rack_roll = [], [], [], [], [], [], []
    # Per node, as the roller measured it: (start, back in sync) one at a time and by rack.
    node_parts = {"one": [], "rack": []}
    base_noop, base_status = [], []
    try:
        time.sleep(0.5)
        subprocess.run([BIN, "lab", "image"], check=True, env=env)
        for i in range(a.runs):
            with tempfile.TemporaryDirectory() as tmp:
                inv = os.path.join(tmp, "bench.yaml")
                subprocess.run([BIN, "lab", "up", inv, *lab_args], check=True, env=env,
                               stderr=subprocess.DEVNULL)
                if a.by_rack:
                    write_racks(inv, 3)
                try:
                    t, r, code = run(["apply", inv], env, bin=bin)
                    if code != 0:
                        sys.exit("cold apply failed")
                    cold.append(t)
                    rss.append(r)
                    print(f"run {i + 1}: cold apply {t:.1f}s", flush=True)
                    for _ in range(a.repeats):
                        t, r, code = run(["apply", inv], env, bin=bin)
                        noop.append(t)
                        rss.append(r)
                        t, r, code = run(["status", inv], env, bin=bin)
                        status.append(t)
                        rss.append(r)
                        if a.baseline:
                            t, _, code = run(["apply", inv], env, bin=a.baseline)
                            base_noop.append(t)
                            t, _, code = run(["status", inv], env, bin=a.baseline)
                            base_status.append(t)
                    # Rolling restart of the 3 brokers, and the sum of each node's stop, start and
                    # catch-up as the roller measured them, in the same run.
                    text = []
                    t, r, code = run(["restart", "--rolling", "--service", "kafka", inv], env, text, bin=bin)
                    rss.append(r)
                    m = re.search(r"rolled in ([0-9.]+)s \(stop \+ start \+ catch-up of each: ([0-9.]+)s\)", text[0])
                    if code != 0 or not m:
                        sys.exit("rolling restart failed")
                    roll.append(t)
                    parts.append(float(m.group(2)))
                    node_parts["one"].extend(per_node(text[0]))
                    print(f"run {i + 1}: rolling restart {t:.1f}s, parts {parts[-1]:.1f}s", flush=True)
                    if a.by_rack:
                        # The same cluster, right after: the brokers of a rack together.
                        text = []
                        t, r, code = run(["restart", "--rolling", "--service", "kafka", "--by-rack", inv],
                                         env, text, bin=bin)
                        rss.append(r)
                        together = text[0].count("together with")
                        if code != 0 or together == 0:
                            sys.exit(f"--by-rack roll failed or fell back to one at a time:\n{text[0]}")
                        rack_roll.append(t)
                        node_parts["rack"].extend(per_node(text[0]))
                        print(f"run {i + 1}: --by-rack rolling restart {t:.1f}s "
                              f"({together} brokers restarted with their rack)", flush=True)
                finally:
                    subprocess.run([BIN, "lab", "down", inv], env=env,
                                   stderr=subprocess.DEVNULL)
    finally:
        server.kill()
        server.wait()

    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    print()
    what = ("nisshi: PostgreSQL + 3 brokers" if a.flavor == "nisshi"
            else "6-node lab, brokers in 3 racks of 2" if a.by_rack else "3-node lab")
    print(f"{what}, {a.runs} cold applies, {len(noop)} no-op applies, {len(status)} status calls")
    print(f"cold apply (artifacts cached)  median {med(cold):6.2f} s   (min {min(cold):.2f}, max {max(cold):.2f})")
    print(f"no-op re-apply                 median {med(noop):6.2f} s   (target <= 3 s)")
    print(f"status                         median {med(status):6.2f} s   (target <= 1 s)")
    ratios = [t / p for t, p in zip(roll, parts)]
    # nisshi brokers have nothing to catch up: "catch-up" is until the broker answers again.
    brokers = 3 if a.flavor == "nisshi" else nodes
    print(f"rolling restart, {brokers} brokers     median {med(roll):6.2f} s   sum of stop+start+catch-up {med(parts):.2f} s")
    print(f"roll / unavoidable parts       median {med(ratios):6.2f}     (target <= 1.3)")
    if a.by_rack:
        print(f"--by-rack roll, same cluster   median {med(rack_roll):6.2f} s   by rack / one at a time "
              f"{med(rack_roll) / med(roll):.2f}")
        for mode, label in (("one", "one at a time"), ("rack", "by rack")):
            starts = [a for a, _ in node_parts[mode]]
            syncs = [b for _, b in node_parts[mode]]
            print(f"  per broker, {label:13}  median start {med(starts):5.2f} s, back in sync {med(syncs):5.2f} s")
    print(f"clusterctl peak RSS            max    {max(rss) / 1024:6.1f} MiB")
    if a.baseline:
        print(f"baseline {a.baseline}:")
        print(f"  no-op re-apply               median {med(base_noop):6.2f} s   this build / baseline "
              f"{med(noop) / med(base_noop):.2f}")
        print(f"  status                       median {med(base_status):6.2f} s   this build / baseline "
              f"{med(status) / med(base_status):.2f}")


def ssh(lab_dir, addr, cmd):
    """OpenSSH with the lab's key: an observer independent of clusterctl."""
    return subprocess.run(["ssh", "-i", os.path.join(lab_dir, "id_ed25519"),
                           "-o", f"UserKnownHostsFile={os.path.join(lab_dir, 'known_hosts')}",
                           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                           f"root@{addr}", cmd], check=True, capture_output=True, text=True).stdout


def rebalance_bench(bin, env, throttle, data_mb):
    with tempfile.TemporaryDirectory() as tmp:
        inv = os.path.join(tmp, "bench.yaml")
        lab_dir = os.path.join(tmp, "bench.lab")
        subprocess.run([bin, "lab", "up", inv, "--nodes", "4", "--kraft"], check=True, env=env,
                       stderr=subprocess.DEVNULL)
        try:
            four = open(inv).read().replace("kafka:\n  heap: 256m\n", "kafka:\n  heap: 256m\n  version: 4.4.0\n")
            addrs = re.findall(r"^  (n\d+):\n    address: (\S+)", four, re.M)
            n4 = dict(addrs)["n4"]
            bootstrap = f"{dict(addrs)['n1']}:9092"
            open(inv, "w").write(four.replace("  kafka: [n1, n2, n3, n4]\n", "  kafka: [n1, n2, n3]\n"))
            if run(["apply", inv], env, bin=bin)[2] != 0:
                sys.exit("apply (3 brokers) failed")
            if run(["topics", inv, "create", "bulk", "--partitions", "8", "--replication-factor", "3"],
                   env, bin=bin)[2] != 0:
                sys.exit("topic create failed")
            # 1000-byte records, incompressible enough not to shrink on disk.
            record = (os.urandom(500).hex() + "\n").encode()
            kcat = subprocess.Popen(["kcat", "-P", "-b", bootstrap, "-t", "bulk", "-X", "acks=all"],
                                    stdin=subprocess.PIPE)
            for _ in range(data_mb * 1000):
                kcat.stdin.write(record)
            kcat.stdin.close()
            if kcat.wait() != 0:
                sys.exit("kcat failed")
            open(inv, "w").write(four)
            if run(["apply", inv], env, bin=bin)[2] != 0:
                sys.exit("apply (4 brokers) failed")
            t, rss, code = run(["rebalance", inv, "--throttle", str(throttle)], env, bin=bin)
            if code != 0:
                sys.exit("rebalance failed")
            # Segment files only: each partition's active index files are preallocated (10 MB
            # apparent size) and were never copied.
            moved = int(ssh(lab_dir, n4, "cat /var/lib/kafka/data/bulk-*/*.log | wc -c"))
            print()
            print(f"4-node KRaft lab, {data_mb} MB in topic bulk (8 partitions, replication factor 3)")
            print(f"rebalance onto the 4th broker   {t:6.1f} s   {moved / 1e6:.1f} MB landed on it")
            print(f"moved bytes per second          {moved / t / 1e6:6.2f} MB/s   throttle {throttle:.2f} MB/s"
                  f"   ({moved / t / 1e6 / throttle:.2f} of it)")
            print(f"clusterctl peak RSS             {rss / 1024:6.1f} MiB")
        finally:
            subprocess.run([bin, "lab", "down", inv], env=env, stderr=subprocess.DEVNULL)


def secure_bench(bin, env, runs, repeats):
    figures = {kind: {"cold": [], "noop": [], "status": [], "rss": []} for kind in ("plain", "secure")}
    for i in range(runs):
        for kind, flags in (("plain", ["--kraft"]), ("secure", ["--kraft", "--secure"])):
            with tempfile.TemporaryDirectory() as tmp:
                inv = os.path.join(tmp, f"{kind}.yaml")
                subprocess.run([bin, "lab", "up", inv, "--nodes", "3", *flags], check=True, env=env,
                               stderr=subprocess.DEVNULL)
                f = figures[kind]
                try:
                    t, r, code = run(["apply", inv], env, bin=bin)
                    if code != 0:
                        sys.exit(f"cold apply of the {kind} lab failed")
                    f["cold"].append(t)
                    f["rss"].append(r)
                    for _ in range(repeats):
                        for key, args in (("noop", ["apply", inv]), ("status", ["status", inv])):
                            t, r, code = run(args, env, bin=bin)
                            if code != 0:
                                sys.exit(f"{args[0]} on the {kind} lab failed")
                            f[key].append(t)
                            f["rss"].append(r)
                    print(f"run {i + 1}: {kind}: cold apply {f['cold'][-1]:.1f}s", flush=True)
                finally:
                    subprocess.run([bin, "lab", "down", inv], env=env, stderr=subprocess.DEVNULL)
    med = statistics.median
    p, s = figures["plain"], figures["secure"]
    print()
    print(f"3-node KRaft labs, {runs} round(s), {len(s['noop'])} no-op applies and status calls each")
    print(f"{'':24} {'PLAINTEXT':>10} {'SASL_SSL':>10} {'ratio':>7}")
    for key, label in (("cold", "cold apply"), ("noop", "no-op re-apply"), ("status", "status")):
        print(f"{label + ' (median s)':24} {med(p[key]):10.2f} {med(s[key]):10.2f} {med(s[key]) / med(p[key]):7.2f}")
    print(f"{'peak RSS (MiB)':24} {max(p['rss']) / 1024:10.1f} {max(s['rss']) / 1024:10.1f}")


def migration_parts(text):
    """Seconds migrate's output accounts for: each node's stop + start + catch-up, each gate's wait."""
    nodes = [float(a) + float(b) + float(c) for a, b, c in
             re.findall(r"stop ([0-9.]+)s, start ([0-9.]+)s, back in sync ([0-9.]+)s", text)]
    gates = [float(w) for w in re.findall(r"gate: .*\(waited ([0-9.]+)s;", text)]
    return sum(nodes) + sum(gates), len(nodes), len(gates)


def migrate_bench(bin, env, runs):
    med = statistics.median
    figures = {"migrate": [], "finalize": []}
    rss = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            inv = os.path.join(tmp, "bench.yaml")
            subprocess.run([bin, "lab", "up", inv, "--nodes", "6"], check=True, env=env,
                           stderr=subprocess.DEVNULL)
            try:
                text = open(inv).read().replace("kafka:\n  heap: 256m\n", "kafka:\n  heap: 256m\n  version: 3.9.1\n")
                zk = re.sub(r"  kafka: \[[^\]]*\]\n", "  kafka: [n1, n2, n3]\n", text)
                if zk == text or "version: 3.9.1" not in zk:
                    sys.exit(f"unexpected lab inventory:\n{text}")
                open(inv, "w").write(zk)
                if run(["apply", inv], env, bin=bin)[2] != 0:
                    sys.exit("apply (ZooKeeper mode) failed")
                open(inv, "w").write(zk.replace("  kafka: [n1, n2, n3]\n",
                                                "  kafka: [n1, n2, n3]\n  controller: [n4, n5, n6]\n"))
                for step, args in [("migrate", ["migrate", inv]), ("finalize", ["migrate", inv, "--finalize"])]:
                    out = []
                    t, r, code = run(args, env, out, bin=bin)
                    if code != 0:
                        sys.exit(f"{step} failed:\n{out[0]}")
                    parts, nodes, gates = migration_parts(out[0])
                    figures[step].append((t, parts))
                    rss.append(r)
                    phases = re.findall(r"; ([0-9.]+)s for the phase\)", out[0])
                    print(f"run {i + 1}: {step} {t:.1f}s, parts {parts:.1f}s "
                          f"({nodes} node restarts, {gates} gates; phases {', '.join(phases)} s)",
                          flush=True)
            finally:
                subprocess.run([bin, "lab", "down", inv], env=env, stderr=subprocess.DEVNULL)
    print()
    print(f"6-node lab, Kafka 3.9.1: 3 brokers with ZooKeeper, 3 new controllers; {runs} run(s)")
    for step, label in [("migrate", "migrate to the soak point"), ("finalize", "migrate --finalize")]:
        walls = [t for t, _ in figures[step]]
        parts = [p for _, p in figures[step]]
        ratios = [t / p for t, p in figures[step]]
        print(f"{label:26} median {med(walls):6.2f} s   unavoidable parts {med(parts):6.2f} s   "
              f"ratio {med(ratios):.2f}")
    print(f"clusterctl peak RSS        max    {max(rss) / 1024:6.1f} MiB")


if __name__ == "__main__":
    main()
