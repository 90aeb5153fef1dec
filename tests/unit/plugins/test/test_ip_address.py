import pytest
from ansible_collections.celerystack.platform.plugins.test.ip_address import (
    TestModule as IpAddressTests,
)
from ansible_collections.celerystack.platform.plugins.test.ip_address import ip_address


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1", True),
        ("10.89.0.4", True),
        ("::1", True),
        ("fe80::1", True),
        ("0.0.0.0", True),  # noqa: S104 (a literal under test, not a bind)
        ("10.0.0.999", False),
        ("10.0.0.0/8", False),
        ("redis.example", False),
        ("", False),
        (None, False),
        (6379, False),
    ],
)
def test_ip_address(value, expected):
    assert ip_address(value) is expected


def test_registered_under_its_name():
    assert IpAddressTests().tests()["ip_address"] is ip_address
