"""Run by deploy/docker/compose/check inside a services container on the compose network "services": alice, with a
certificate signed by the compose site's user CA, connects to the login node by name, its host key pinned from
known_hosts (paramiko, as common/ssh.py), and runs each command given through the login node's wrapper."""

import sys

import paramiko

DIR = "/check"


def main() -> int:
    key = paramiko.Ed25519Key.from_private_key_file(f"{DIR}/alice")
    key.load_certificate(f"{DIR}/alice-cert.pub")
    client = paramiko.SSHClient()
    client.load_host_keys(f"{DIR}/known_hosts")
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("login", port=22, username="alice", pkey=key, allow_agent=False, look_for_keys=False, timeout=10)
    worst = 0
    for command in sys.argv[1:]:
        _, stdout, stderr = client.exec_command(command, timeout=60)
        out = stdout.read().decode().strip()
        err = stderr.read().decode().strip()
        rc = stdout.channel.recv_exit_status()
        print(f"$ {command}  -> rc {rc}")
        if out:
            print(out)
        if err:
            print(f"stderr: {err}")
        worst = max(worst, rc)
    client.close()
    return worst


if __name__ == "__main__":
    sys.exit(main())
