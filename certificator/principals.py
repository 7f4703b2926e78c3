"""Who may get a certificate: users of the cluster only, never root or a service account (swift, mysql, ...).

The rule comes from the site file's `certificates:` key (`users`, `group`, `min_uid`, `max_uid`): the name must be
an account of this host's user database (the cluster's, on a real site through NSS/LDAP) with a uid in range,
and, where given, in the list and a member of the group. Any other principal is refused with 403, whatever the
token says: a token's `unix_username` claim is only as good as the realm that issued it.
"""

from __future__ import annotations

import grp
import pwd
from dataclasses import dataclass

from common.errors import Forbidden


class NotAClusterUser(Forbidden):
    pass


@dataclass(frozen=True)
class Principals:
    min_uid: int = 1000  # below: root and the system's service accounts
    max_uid: int = 60000  # above: nobody (65534) and other reserved ids
    users: frozenset[str] | None = None  # only these names, if given
    group: str | None = None  # only members of this group, if given

    def check(self, user: str) -> None:
        """Raises NotAClusterUser unless `user` may get a certificate."""
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise self._refuse(user, "no such account") from None
        if not self.min_uid <= entry.pw_uid <= self.max_uid:
            raise self._refuse(user, "a system account")
        if self.users is not None and user not in self.users:
            raise self._refuse(user, "not in the site's list of users")
        if self.group is not None and not self._member(entry, self.group):
            raise self._refuse(user, f"not in the group {self.group}")

    @staticmethod
    def _member(entry: pwd.struct_passwd, group: str) -> bool:
        try:
            g = grp.getgrnam(group)
        except KeyError:
            return False  # a missing group admits no one
        return entry.pw_gid == g.gr_gid or entry.pw_name in g.gr_mem

    @staticmethod
    def _refuse(user: str, why: str) -> NotAClusterUser:
        return NotAClusterUser(f"No certificate for '{user[:64]}': not a user of this cluster ({why})")


def parse(raw: dict | None) -> Principals:
    """The `certificates:` key of the site file; missing entries keep their safe defaults, and its other entries
    (`ca_key`, `validity_minutes`, `resume_window_s`) are not this rule's."""
    raw = raw or {}
    users = raw.get("users")
    if users is not None and not (isinstance(users, list) and all(isinstance(u, str) for u in users)):
        raise ValueError("certificates.users must be a list of names")
    policy = Principals(
        min_uid=int(raw.get("min_uid", Principals.min_uid)),
        max_uid=int(raw.get("max_uid", Principals.max_uid)),
        users=frozenset(users) if users is not None else None,
        group=str(raw["group"]) if raw.get("group") else None,
    )
    if policy.min_uid < 1 or policy.max_uid < policy.min_uid:
        raise ValueError("certificates.min_uid must be at least 1 (root never gets a certificate) and <= max_uid")
    return policy
