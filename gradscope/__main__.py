from gradscope.cli import entry

entry()
