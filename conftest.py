"""trustgate's pytest entry point: the plugin (options, hooks) and the fixtures."""

pytest_plugins = ["trustgate.plugin", "fixtures.models", "fixtures.gate"]
