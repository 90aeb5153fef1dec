from celerystack_testlib import (  # noqa: F401  (pytest hooks)
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_makereport,
)
