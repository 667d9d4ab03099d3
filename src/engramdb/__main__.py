from engramdb.cli.main import main

main()
