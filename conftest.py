pytest_plugins = ["ehub_core.pytest_plugin"]
