from omicsflow.cli.main import main

main()
