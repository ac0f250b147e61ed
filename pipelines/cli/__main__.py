from pipelines.cli.main import _entry

_entry()
