from datamanifest.cli import main

main()
