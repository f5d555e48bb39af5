"""gradscope's commands, one module each: `run` (headless, `live` for the UI),
`view` and `diff`. `gradscope.cli` parses the command line and imports only the
module of the command given, so `--help` stays instant."""
