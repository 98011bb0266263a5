"""`python -m streamscout` is the `streamscout` command."""

from streamscout.cli import main

main()
