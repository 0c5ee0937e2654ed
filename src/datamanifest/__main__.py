from datamanifest.cli import main

# one program name whether run as `datamanifest` or `python -m datamanifest`: it names the
# completion variable _DATAMANIFEST_COMPLETE and the usage lines
main(prog_name="datamanifest")
