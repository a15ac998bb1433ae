from exman.cli import main

main()
