"""Two systems in one site file: each may have its own user CA (the certificator signs with the CA of the system
asked for); a system without one uses the site's."""

from __future__ import annotations

from common.config import parse

SITE = """
systems:
  - name: cluster
    login: {host: 127.0.0.1, port: 2222, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"}
    partitions: [normal, xfer]
  - name: cluster2
    login: {host: 127.0.0.1, port: 2223, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"}
    partitions: [debug, xfer]
    ca_key: /ca/cluster2-user_ca
auth: {issuer: "http://issuer.test/realms/x", audience: firecrest}
certificates: {ca_key: /ca/user_ca}
"""


def test_each_system_has_its_login_node_partitions_and_ca():
    site = parse(SITE, {})
    assert list(site.systems) == ["cluster", "cluster2"] and site.default_system == "cluster"
    one, two = site.systems["cluster"], site.systems["cluster2"]
    assert (one.port, two.port) == (2222, 2223) and one.host_key != two.host_key
    assert (one.partitions, two.partitions) == (("normal", "xfer"), ("debug", "xfer"))
    assert (site.ca_key_of("cluster"), site.ca_key_of("cluster2")) == ("/ca/user_ca", "/ca/cluster2-user_ca")


def test_the_certificator_holds_one_ca_per_system():
    from certificator.app import create
    from certificator.routes import CA_KEY

    app = create(site=parse(SITE, {}))
    assert {name: str(key) for name, key in app.extensions[CA_KEY].items()} == {
        "cluster": "/ca/user_ca", "cluster2": "/ca/cluster2-user_ca"}
