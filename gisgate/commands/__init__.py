"""The commands behind the CLI: each module holds what one `gisgate` command does, as a library call
(`cli.py` only parses options and prints what these return).

    watch · status · retry · init · doctor · deliver · report · hostkey
"""
