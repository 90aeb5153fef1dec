import pytest
from ansible_collections.celerystack.platform.plugins.module_utils import rabbitmq_access as access

# Written by RabbitMQ 3.10 itself for guest/guest on a fresh node.
GUEST_HASH = "2S5/avf/LjkDCvg/G1G5FavBC1aFcQTgiG3z56FiBSyjQLxi"


@pytest.mark.parametrize(
    ("password", "stored", "matches"),
    [
        ("guest", GUEST_HASH, True),
        ("Guest", GUEST_HASH, False),
        ("guest", "", False),
        ("guest", None, False),
        ("guest", "not base64!", False),
        ("guest", "c2hvcnQ=", False),
    ],
)
def test_password_matches_rabbitmq_sha256_hashes(password, stored, matches):
    assert access.password_matches(password, stored) is matches


def test_our_hash_is_stable_verifiable_and_salted_per_user():
    first = access.password_hash("celery", "s3cret")
    assert first == access.password_hash("celery", "s3cret")
    assert access.password_matches("s3cret", first)
    assert first != access.password_hash("flower", "s3cret")


def api_user(name, password, tags=()):
    return {
        "name": name,
        "password_hash": access.hash_password(password, b"salt"),
        "hashing_algorithm": access.HASHING_ALGORITHM,
        "tags": list(tags),
    }


def perm(user, vhost, configure=".*", write=".*", read=".*"):
    return {"user": user, "vhost": vhost, "configure": configure, "write": write, "read": read}


CURRENT = {
    "vhosts": ["/", "/celery"],
    "users": [
        api_user("admin", "adm", ["administrator"]),
        api_user("celery", "pw"),
        api_user("guest", "guest", ["administrator"]),
    ],
    "permissions": [perm("admin", "/celery"), perm("celery", "/celery"), perm("guest", "/")],
}
ADMIN = {
    "name": "admin",
    "password": "adm",
    "tags": ["administrator"],
    "permissions": [{"vhost": "/celery"}],
}
CELERY = {"name": "celery", "password": "pw", "permissions": [{"vhost": "/celery"}]}


def lines(changes):
    return [(c["action"], c["kind"], c["name"]) for c in changes]


@pytest.mark.parametrize(
    ("vhosts", "users", "options", "expected"),
    [
        pytest.param(["/celery"], [ADMIN, CELERY], {}, [], id="converged"),
        pytest.param(
            ["/celery", "/other"],
            [ADMIN, CELERY],
            {},
            [("create", "vhost", "/other")],
            id="new vhost",
        ),
        pytest.param(
            ["/celery"],
            [ADMIN, dict(CELERY, password="new")],
            {},
            [("update", "user", "celery")],
            id="password changed",
        ),
        pytest.param(
            ["/celery"],
            [ADMIN, dict(CELERY, tags=["monitoring"])],
            {},
            [("update", "user", "celery")],
            id="tags changed",
        ),
        pytest.param(
            ["/celery"],
            [ADMIN, dict(CELERY, permissions=[{"vhost": "/celery", "configure": "^celery"}])],
            {},
            [("update", "permission", "celery@/celery")],
            id="permission narrowed",
        ),
        pytest.param(
            ["/celery"],
            [ADMIN, dict(CELERY, permissions=[])],
            {},
            [("delete", "permission", "celery@/celery")],
            id="permission dropped",
        ),
        pytest.param(
            ["/celery"],
            [ADMIN, CELERY, {"name": "flower", "password": "f", "tags": ["monitoring"]}],
            {},
            [("create", "user", "flower")],
            id="new user",
        ),
        pytest.param(
            ["/celery"],
            [CELERY],
            {"remove_undeclared_users": True},
            [("delete", "user", "guest")],
            id="guest removed and the login user kept",
        ),
        pytest.param(
            ["/celery"],
            [ADMIN, CELERY],
            {"remove_undeclared_vhosts": True},
            [("delete", "vhost", "/")],
            id="undeclared vhost removed",
        ),
    ],
)
def test_plan(vhosts, users, options, expected):
    assert lines(access.plan(CURRENT, vhosts, users, "admin", **options)) == expected


def test_the_diff_never_holds_a_password():
    changes = access.plan(CURRENT, ["/celery"], [ADMIN, dict(CELERY, password="n3w")], "admin")
    assert changes[0]["before"]["password"] == "set"
    assert changes[0]["after"]["password"] == "changed"
    assert "n3w" not in repr(changes)


@pytest.mark.parametrize(
    ("users", "message"),
    [
        (
            [dict(CELERY, permissions=[{"vhost": "/nowhere"}])],
            "user 'celery' has permissions on vhost '/nowhere', which is neither declared in "
            "vhosts nor present on the broker",
        ),
        ([CELERY, CELERY], "users declared more than once: celery"),
        ([dict(CELERY, password="")], "user 'celery' has an empty password"),
        (
            [dict(CELERY, permissions=[{"vhost": "/celery"}, {"vhost": "/celery"}])],
            "permissions of user 'celery' declared more than once: /celery",
        ),
    ],
)
def test_inconsistent_input_is_refused_before_any_change(users, message):
    with pytest.raises(access.AccessError) as err:
        access.plan(CURRENT, ["/celery"], users, "admin")
    assert str(err.value) == message
