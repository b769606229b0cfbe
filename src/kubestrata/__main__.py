from kubestrata.cli.entry import main

main()
