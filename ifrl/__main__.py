from ifrl.cli import entry

entry()
