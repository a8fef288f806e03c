"""`python -m langchain_tokenopt.cli`: the `tokenopt` command line."""

import sys

from langchain_tokenopt.cli.app import main

sys.exit(main())
