#!/usr/bin/env python3
"""Starts the local peers behind the demo's dynamic credentials, the same ones the end-to-end
tests use (Tests/EndToEnd/peers.py): moto_server on loopback as AWS IAM/STS with signature
checking on, and a throwaway PostgreSQL cluster run by an unprivileged system user. Prints one
JSON line (the secrets to store: the broker's IAM key and PostgreSQL login, plus the role ARN),
then keeps both running until stdin closes or SIGTERM arrives, and removes them.

Run with the test virtualenv's python (scripts/bootstrap makes it); PostgreSQL needs root."""
import json
import os
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "EndToEnd"))
from peers import Moto, Postgres  # noqa: E402


def main():
    directory = tempfile.mkdtemp(prefix="mlcred-peers-")
    moto = Moto.start(directory)
    postgres = Postgres.start()

    def stop(*_):
        postgres.stop()
        moto.stop()
        shutil.rmtree(directory, ignore_errors=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(json.dumps({
        "aws": {"access_key_id": moto.access_key_id, "secret_access_key": moto.secret_access_key,
                "region": moto.region, "endpoint_url": moto.endpoint_url},
        "role_arn": moto.role_arn,
        "postgres": postgres.secret_fields(),
        "postgres_admin": {"socket_dir": postgres.socket_dir, "port": postgres.port, "bin_dir": postgres.bin_dir},
    }), flush=True)
    sys.stdin.read()
    stop()


if __name__ == "__main__":
    main()
