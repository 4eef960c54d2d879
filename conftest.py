"""The gate's fixtures. The plugin (options, hooks) is the installed pytest11 entry point
`trustgate`, loaded before the command line is read, so it is not listed here (listing it would
load it under a second name that `-p no:trustgate` does not turn off). pytest puts this folder
on sys.path, which is how `fixtures` and `compressors` are found: they are repository folders,
not installed packages."""

pytest_plugins = ["fixtures.models", "fixtures.gate"]
