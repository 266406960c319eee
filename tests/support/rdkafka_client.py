"""A librdkafka client for the end-to-end tests, configured by a librdkafka `key=value` file
(what `clusterctl client-config --format librdkafka` writes). Exits non-zero with the error
text on any failure, so the test sees refusals (authorization, authentication) as they are.

  rdkafka_client.py CONFIG produce TOPIC      lines of stdin as records, acks=all
  rdkafka_client.py CONFIG consume TOPIC N    N records from the beginning (group from argv)
  rdkafka_client.py CONFIG metadata           the broker ids
"""
import sys
import time

import confluent_kafka
import confluent_kafka.admin


def config(path):
    conf = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                k, v = line.split("=", 1)
                conf[k] = v
    return conf


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    conf = config(sys.argv[1])
    cmd = sys.argv[2]
    errors = []
    conf["error_cb"] = lambda e: errors.append(str(e))
    if cmd == "produce":
        conf["acks"] = "all"
        conf["message.timeout.ms"] = "20000"
        p = confluent_kafka.Producer(conf)
        failed = []

        def report(err, _msg):
            if err is not None:
                failed.append(str(err))

        for line in sys.stdin:
            p.produce(sys.argv[3], line.rstrip("\n").encode(), on_delivery=report)
            p.poll(0)
        left = p.flush(30)
        if failed or left:
            fail(f"{len(failed)} failed, {left} undelivered: {'; '.join(failed[:3])}")
        print("delivered")
    elif cmd == "consume":
        topic, want, group = sys.argv[3], int(sys.argv[4]), sys.argv[5]
        conf.update({"group.id": group, "auto.offset.reset": "earliest"})
        c = confluent_kafka.Consumer(conf)
        c.subscribe([topic])
        got = []
        deadline = time.time() + 60
        while len(got) < want and time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                fail(str(m.error()))
            got.append(m.value().decode())
        c.close()
        print("\n".join(got))
        if len(got) < want:
            fail(f"{len(got)} of {want} records within 60 s; errors: {errors[:3]}")
    elif cmd == "metadata":
        a = confluent_kafka.admin.AdminClient(conf)
        try:
            md = a.list_topics(timeout=15)
        except Exception as e:  # the client's own refusal, as text
            for _ in range(5):  # error callbacks are served by poll
                a.poll(0.5)
            fail(f"{e}; errors: {errors[:3]}")
        print(" ".join(str(b) for b in sorted(md.brokers)))
    else:
        fail(f"unknown command {cmd}")


main()
