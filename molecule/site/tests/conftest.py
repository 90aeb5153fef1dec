pytest_plugins = ["celerystack_testlib"]
