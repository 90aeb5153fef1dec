# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a host is reached, from the inventory first: the one rule behind the host_addresses
filter (MariaDB grants per client address), the rabbitmq_cluster filter (the brokers' /etc/hosts
block) and the ip_address test."""

from __future__ import annotations

import ipaddress


def literal_ip(value) -> bool:
    """True for a literal IPv4 or IPv6 address given as a string; False for a name or anything
    else."""
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def address_of(variables) -> str | None:
    """The address other hosts reach a host at, from its variables: its celerystack_address (set
    in the inventory, so certain, needing no facts), its ansible_host when that is a literal IP
    address, else the IPv4 address of its default route from its gathered facts. None when
    nothing certain is known (its facts were not gathered, say because a --limit left it out,
    and its inventory entry is a DNS name)."""
    explicit = variables.get("celerystack_address")
    if explicit:
        return str(explicit)
    if literal_ip(variables.get("ansible_host")):
        return str(variables["ansible_host"])
    facts = variables.get("ansible_facts") or {}
    address = (facts.get("default_ipv4") or {}).get("address")
    return str(address) if address else None
