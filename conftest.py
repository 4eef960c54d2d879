"""trustgate's pytest entry point: the plugin (options, hooks; also an installed entry point)
and the fixtures. pytest puts this folder on sys.path, which is how `fixtures` and
`compressors` are found: they are repository folders, not installed packages."""

pytest_plugins = ["trustgate.plugin", "fixtures.models", "fixtures.gate"]
