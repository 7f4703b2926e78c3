# The certificator: the services image plus ssh-keygen, which signs the users' certificates
# (certificator/signing.py) and which the services image does not carry. Copied from the cluster image (the same
# Debian 12 base; ssh-keygen needs libcrypto 3, libselinux and libpcre2, all in the services image), so the build
# needs no package mirror. Built by deploy/docker/compose/up after the two images it starts from.
FROM firecrest/cluster:dev AS openssh
FROM firecrest/services:dev
COPY --from=openssh /usr/bin/ssh-keygen /usr/bin/ssh-keygen
# Kept from the services image only in the docker format (podman build --format docker); spelled out again.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/bin/python3", "/usr/local/lib/firecrest/healthcheck.py"]
