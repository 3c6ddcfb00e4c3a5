from soravid.cli import main

main()
