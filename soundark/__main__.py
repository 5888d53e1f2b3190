from soundark.cli import main

main()
