from explr.cli import entry

entry()
