from kubestrata.cli.main import main

main()
