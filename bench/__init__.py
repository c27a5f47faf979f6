"""DeployBot's benchmark: speed targets are checked here (`make bench`), never by timed tests."""
