from gisgate.cli import main

main()
