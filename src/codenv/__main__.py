from codenv.cli.main import run

run()
