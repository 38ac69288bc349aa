from gisgate.cli import run

run()
